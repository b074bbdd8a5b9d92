/* Writes tests/fixtures/jpeg/ycck.jpg: the eight flat colour blocks of cmyk-expected.png
 * (white, black, red, green, blue, cyan, magenta, yellow; 16 x 16 each) as a YCCK JPEG with
 * Adobe's marker and inverted inks, as Photoshop writes CMYK JPEGs — the one CMYK kind Pillow
 * cannot write. Built and run by scripts/make-jpeg-fixtures.py (gcc, -ljpeg). */
#include <stdio.h>
#include <stdlib.h>
#include <jpeglib.h>

int main(int argc, char **argv) {
    /* Ink amounts (0 none, 255 full) of C, M, Y, K per block. */
    static const unsigned char inks[8][4] = {
        {0, 0, 0, 0},       {0, 0, 0, 255},   {0, 255, 255, 0}, {255, 0, 255, 0},
        {255, 255, 0, 0},   {255, 0, 0, 0},   {0, 255, 0, 0},   {0, 0, 255, 0}};
    struct jpeg_compress_struct cinfo;
    struct jpeg_error_mgr jerr;
    unsigned char row[128 * 4];
    JSAMPROW rows[1] = {row};
    FILE *out;
    int x, c;
    if (argc != 2 || (out = fopen(argv[1], "wb")) == NULL) {
        fprintf(stderr, "usage: make-ycck-fixture OUT.jpg\n");
        return 1;
    }
    cinfo.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&cinfo);
    jpeg_stdio_dest(&cinfo, out);
    cinfo.image_width = 128;
    cinfo.image_height = 16;
    cinfo.input_components = 4;
    cinfo.in_color_space = JCS_CMYK;
    jpeg_set_defaults(&cinfo);
    jpeg_set_colorspace(&cinfo, JCS_YCCK);
    cinfo.write_Adobe_marker = TRUE;
    jpeg_set_quality(&cinfo, 95, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    for (x = 0; x < 128; x++) {
        for (c = 0; c < 4; c++) {
            row[4 * x + c] = (unsigned char)(255 - inks[x / 16][c]); /* Adobe: inverted */
        }
    }
    while (cinfo.next_scanline < cinfo.image_height) {
        jpeg_write_scanlines(&cinfo, rows, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    fclose(out);
    return 0;
}
