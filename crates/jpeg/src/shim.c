/* natview's bridge to libjpeg(-turbo): header facts, and decoding at a DCT scale (1/1, 1/2,
 * 1/4 or 1/8) into RGB8, with libjpeg's errors turned into messages (setjmp/longjmp, as its
 * documentation describes) instead of exit(). CMYK and YCCK files are converted to RGB here
 * (Adobe's inverted CMYK recognised by its marker). A truncated file is an error, not a grey
 * bottom. Everything the Rust side reads goes through the two functions below. */
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>

struct natview_error {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char *message;
    size_t message_len;
};

static void natview_error_exit(j_common_ptr cinfo) {
    struct natview_error *err = (struct natview_error *)cinfo->err;
    char buffer[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, buffer);
    if (err->message_len > 0) {
        snprintf(err->message, err->message_len, "%s", buffer);
    }
    longjmp(err->jump, 1);
}

/* Warnings are ignored, except the end of the data arriving before the image does. */
static void natview_emit_message(j_common_ptr cinfo, int level) {
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
        natview_error_exit(cinfo);
    }
}

/* Routes `cinfo`'s errors to `err` (its message into `message`); the caller sets the jump. */
static void natview_error_init(struct jpeg_decompress_struct *cinfo, struct natview_error *err,
                               char *message, unsigned long message_len) {
    memset(cinfo, 0, sizeof(*cinfo));
    cinfo->err = jpeg_std_error(&err->pub);
    err->pub.error_exit = natview_error_exit;
    err->pub.emit_message = natview_emit_message;
    err->message = message;
    err->message_len = message_len;
}

/* Whether the file stores inks (CMYK, or YCCK that libjpeg turns into CMYK). */
static int natview_is_cmyk(const struct jpeg_decompress_struct *cinfo) {
    return cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK;
}

/* The ICC profile of APP2 "ICC_PROFILE" markers, its chunks put in their sequence order, at
 * most icc_cap bytes (*icc_len 0 when there is none, or it is larger, or a chunk is missing). */
static void natview_icc(struct jpeg_decompress_struct *cinfo, unsigned char *icc,
                        unsigned long icc_cap, unsigned long *icc_len) {
    jpeg_saved_marker_ptr marker;
    unsigned int count = 0, seq;
    unsigned long total = 0;
    *icc_len = 0;
    for (marker = cinfo->marker_list; marker != NULL; marker = marker->next) {
        if (marker->marker == JPEG_APP0 + 2 && marker->data_length > 14 &&
            memcmp(marker->data, "ICC_PROFILE\0", 12) == 0) {
            count = marker->data[13];
        }
    }
    for (seq = 1; seq <= count; seq++) {
        int found = 0;
        for (marker = cinfo->marker_list; marker != NULL; marker = marker->next) {
            if (marker->marker == JPEG_APP0 + 2 && marker->data_length > 14 &&
                memcmp(marker->data, "ICC_PROFILE\0", 12) == 0 && marker->data[12] == seq) {
                unsigned long n = marker->data_length - 14;
                if (total + n > icc_cap) {
                    return;
                }
                memcpy(icc + total, marker->data + 14, n);
                total += n;
                found = 1;
                break;
            }
        }
        if (!found) {
            return;
        }
    }
    *icc_len = total;
}

/* Header facts: size, components, colour space, the EXIF block (after "Exif\0\0", at most
 * exif_cap bytes; *exif_len 0 when there is none) and the ICC profile (natview_icc). Returns
 * 0, or 1 with `message` set. */
int natview_jpeg_info(const unsigned char *data, unsigned long len, unsigned int *width,
                      unsigned int *height, int *components, int *cmyk, unsigned char *exif,
                      unsigned long exif_cap, unsigned long *exif_len, unsigned char *icc,
                      unsigned long icc_cap, unsigned long *icc_len, char *message,
                      unsigned long message_len) {
    struct jpeg_decompress_struct cinfo;
    struct natview_error err;
    jpeg_saved_marker_ptr marker;
    natview_error_init(&cinfo, &err, message, message_len);
    *exif_len = 0;
    *icc_len = 0;
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&cinfo);
        return 1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, len);
    jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xffff);
    jpeg_save_markers(&cinfo, JPEG_APP0 + 2, 0xffff);
    jpeg_read_header(&cinfo, TRUE);
    natview_icc(&cinfo, icc, icc_cap, icc_len);
    *width = cinfo.image_width;
    *height = cinfo.image_height;
    *components = cinfo.num_components;
    *cmyk = natview_is_cmyk(&cinfo);
    for (marker = cinfo.marker_list; marker != NULL; marker = marker->next) {
        if (marker->marker == JPEG_APP0 + 1 && marker->data_length > 6 &&
            memcmp(marker->data, "Exif\0\0", 6) == 0) {
            unsigned long n = marker->data_length - 6;
            if (n > exif_cap) {
                n = exif_cap;
            }
            memcpy(exif, marker->data + 6, n);
            *exif_len = n;
            break;
        }
    }
    jpeg_destroy_decompress(&cinfo);
    return 0;
}

/* Decodes at 1/scale_denom (1, 2, 4 or 8) into `out`, RGB8 rows of *width × 3 bytes, which
 * must hold exactly out_len = width × height × 3 of the scaled size (the caller checked the
 * header's size against its limits when it made `out`); `max_memory` bounds libjpeg's own
 * working memory. Returns 0, or 1 with `message` set. */
int natview_jpeg_decode(const unsigned char *data, unsigned long len, unsigned int scale_denom,
                        unsigned long max_memory, unsigned char *out,
                        unsigned long out_len, unsigned int *width, unsigned int *height,
                        char *message, unsigned long message_len) {
    struct jpeg_decompress_struct cinfo;
    struct natview_error err;
    JSAMPARRAY cmyk_row = NULL;
    int cmyk, adobe;
    natview_error_init(&cinfo, &err, message, message_len);
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&cinfo);
        return 1;
    }
    jpeg_create_decompress(&cinfo);
    if (max_memory > 0) {
        cinfo.mem->max_memory_to_use = (long)max_memory;
    }
    jpeg_mem_src(&cinfo, data, len);
    jpeg_read_header(&cinfo, TRUE);
    cmyk = natview_is_cmyk(&cinfo);
    adobe = cinfo.saw_Adobe_marker;
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    cinfo.scale_num = 1;
    cinfo.scale_denom = scale_denom;
    cinfo.dct_method = JDCT_ISLOW;
    jpeg_start_decompress(&cinfo);
    *width = cinfo.output_width;
    *height = cinfo.output_height;
    if ((unsigned long long)cinfo.output_width * cinfo.output_height * 3 != out_len) {
        snprintf(message, message_len, "scaled size %u × %u is not the expected one",
                 cinfo.output_width, cinfo.output_height);
        jpeg_destroy_decompress(&cinfo);
        return 1;
    }
    if (cmyk) {
        cmyk_row = (*cinfo.mem->alloc_sarray)((j_common_ptr)&cinfo, JPOOL_IMAGE,
                                              cinfo.output_width * 4, 1);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        unsigned char *row = out + (unsigned long)cinfo.output_scanline * cinfo.output_width * 3;
        if (!cmyk) {
            jpeg_read_scanlines(&cinfo, &row, 1);
            continue;
        }
        jpeg_read_scanlines(&cinfo, cmyk_row, 1);
        for (unsigned int x = 0; x < cinfo.output_width; x++) {
            const unsigned char *p = cmyk_row[0] + 4 * x;
            /* Adobe stores inks inverted (255: none); others store ink amounts. */
            unsigned int c = adobe ? p[0] : 255u - p[0];
            unsigned int m = adobe ? p[1] : 255u - p[1];
            unsigned int y = adobe ? p[2] : 255u - p[2];
            unsigned int k = adobe ? p[3] : 255u - p[3];
            row[3 * x] = (unsigned char)((c * k + 127) / 255);
            row[3 * x + 1] = (unsigned char)((m * k + 127) / 255);
            row[3 * x + 2] = (unsigned char)((y * k + 127) / 255);
        }
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    return 0;
}
