//! JPEG decoding at the scale a job needs. libjpeg(-turbo) decodes a JPEG straight to 1/2, 1/4
//! or 1/8 of its size in the DCT domain, several times faster than decoding it whole and
//! shrinking it: a 12-megapixel photo that feeds a 224-pixel network needs only its 1/8 scale.
//! This crate is natview's one bridge to the system library (a small C shim, `src/shim.c`,
//! turns its errors into messages): [`info`] reads the header (size, EXIF orientation block),
//! [`decode_scaled`] the pixels as RGB8 at the smallest scale that still covers a given short
//! side.

use std::ffi::{c_char, c_int, c_uint, c_ulong};

/// How much EXIF is kept from the header (the orientation tag is near its start).
const EXIF_CAP: usize = 65_536;
/// The largest ICC profile kept (larger ones are ignored: the pixels are taken as sRGB).
const ICC_CAP: usize = 4 << 20;
const MESSAGE_CAP: usize = 256;

extern "C" {
    fn natview_jpeg_info(
        data: *const u8,
        len: c_ulong,
        width: *mut c_uint,
        height: *mut c_uint,
        components: *mut c_int,
        cmyk: *mut c_int,
        exif: *mut u8,
        exif_cap: c_ulong,
        exif_len: *mut c_ulong,
        icc: *mut u8,
        icc_cap: c_ulong,
        icc_len: *mut c_ulong,
        message: *mut c_char,
        message_len: c_ulong,
    ) -> c_int;

    fn natview_jpeg_decode(
        data: *const u8,
        len: c_ulong,
        scale_denom: c_uint,
        max_memory: c_ulong,
        out: *mut u8,
        out_len: c_ulong,
        width: *mut c_uint,
        height: *mut c_uint,
        message: *mut c_char,
        message_len: c_ulong,
    ) -> c_int;
}

/// Why a JPEG could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct JpegError(pub String);

/// What a JPEG's header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JpegInfo {
    /// Full width in pixels.
    pub width: u32,
    /// Full height in pixels.
    pub height: u32,
    /// Colour components (1 grey, 3 YCbCr/RGB, 4 CMYK/YCCK).
    pub components: u8,
    /// Whether the file stores CMYK or YCCK (converted to RGB when decoded).
    pub cmyk: bool,
    /// The EXIF block (its TIFF structure, after `Exif\0\0`), when there is one.
    pub exif: Option<Vec<u8>>,
    /// The embedded ICC colour profile (its APP2 chunks joined), when there is one.
    pub icc: Option<Vec<u8>>,
}

/// Bounds on what a file may make natview allocate: a hostile header (65,500 × 65,500
/// pixels over a few bytes) is refused instead of decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest full-size image, in pixels.
    pub max_pixels: u64,
    /// Largest working memory libjpeg may take (progressive files buffer every coefficient).
    pub max_memory: u64,
}

/// An RGB8 image decoded at a DCT scale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scaled {
    /// Width of the decoded pixels.
    pub width: u32,
    /// Height of the decoded pixels.
    pub height: u32,
    /// The scale's denominator: 1, 2, 4 or 8.
    pub denominator: u32,
    /// `width × height × 3` bytes, rows top to bottom.
    pub rgb: Vec<u8>,
}

fn message(buffer: &[u8]) -> String {
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    String::from_utf8_lossy(&buffer[..end]).into_owned()
}

fn c_len(len: usize) -> Result<c_ulong, JpegError> {
    c_ulong::try_from(len).map_err(|_| JpegError("file too large".into()))
}

/// Reads the header of the JPEG in `bytes`.
pub fn info(bytes: &[u8]) -> Result<JpegInfo, JpegError> {
    let (mut width, mut height, mut components, mut cmyk) = (0, 0, 0, 0);
    let mut exif = vec![0u8; EXIF_CAP];
    let mut exif_len: c_ulong = 0;
    let mut icc = vec![0u8; ICC_CAP];
    let mut icc_len: c_ulong = 0;
    let mut text = [0u8; MESSAGE_CAP];
    // SAFETY: every pointer is to a live local or buffer of the length passed beside it; the
    // shim copies at most those lengths and keeps no pointer after it returns.
    let failed = unsafe {
        natview_jpeg_info(
            bytes.as_ptr(),
            c_len(bytes.len())?,
            &mut width,
            &mut height,
            &mut components,
            &mut cmyk,
            exif.as_mut_ptr(),
            c_len(EXIF_CAP)?,
            &mut exif_len,
            icc.as_mut_ptr(),
            c_len(ICC_CAP)?,
            &mut icc_len,
            text.as_mut_ptr().cast(),
            c_len(MESSAGE_CAP)?,
        )
    };
    if failed != 0 {
        return Err(JpegError(message(&text)));
    }
    exif.truncate(usize::try_from(exif_len).unwrap_or(0).min(EXIF_CAP));
    icc.truncate(usize::try_from(icc_len).unwrap_or(0).min(ICC_CAP));
    Ok(JpegInfo {
        width,
        height,
        components: u8::try_from(components).unwrap_or(0),
        cmyk: cmyk != 0,
        exif: (!exif.is_empty()).then_some(exif),
        icc: (!icc.is_empty()).then_some(icc),
    })
}

/// The smallest DCT scale (its denominator: 8, 4, 2 or 1) at which an image of `width` ×
/// `height` still has a short side of at least `min_short_side` pixels.
pub fn scale_for(width: u32, height: u32, min_short_side: u32) -> u32 {
    let short = width.min(height);
    [8, 4, 2]
        .into_iter()
        .find(|&d| short.div_ceil(d) >= min_short_side)
        .unwrap_or(1)
}

/// Decodes the JPEG in `bytes` (whose header is `info`) at the smallest scale whose short
/// side is at least `min_short_side` (0: full size), within `limits`.
pub fn decode_scaled(
    bytes: &[u8],
    info: &JpegInfo,
    min_short_side: u32,
    limits: Limits,
) -> Result<Scaled, JpegError> {
    let pixels = u64::from(info.width) * u64::from(info.height);
    if pixels > limits.max_pixels {
        return Err(JpegError(format!(
            "{} × {} pixels is over the limit of {} megapixels",
            info.width,
            info.height,
            limits.max_pixels / 1_000_000
        )));
    }
    let denominator = if min_short_side == 0 {
        1
    } else {
        scale_for(info.width, info.height, min_short_side)
    };
    let (width, height) = (
        info.width.div_ceil(denominator),
        info.height.div_ceil(denominator),
    );
    let len = usize::try_from(u64::from(width) * u64::from(height) * 3)
        .map_err(|_| JpegError("image too large".into()))?;
    let mut rgb = vec![0u8; len];
    let (mut got_width, mut got_height) = (0, 0);
    let mut text = [0u8; MESSAGE_CAP];
    let as_c = |v: u64| c_ulong::try_from(v).unwrap_or(c_ulong::MAX);
    // SAFETY: `bytes` and `rgb` are live for the call and their lengths are passed beside
    // them; the shim writes at most `len` bytes into `rgb` (it checks the scaled size against
    // it first) and keeps no pointer after it returns.
    let failed = unsafe {
        natview_jpeg_decode(
            bytes.as_ptr(),
            c_len(bytes.len())?,
            denominator,
            as_c(limits.max_memory),
            rgb.as_mut_ptr(),
            c_len(len)?,
            &mut got_width,
            &mut got_height,
            text.as_mut_ptr().cast(),
            c_len(MESSAGE_CAP)?,
        )
    };
    if failed != 0 {
        return Err(JpegError(message(&text)));
    }
    debug_assert_eq!((got_width, got_height), (width, height));
    Ok(Scaled {
        width,
        height,
        denominator,
        rgb,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scale_is_the_smallest_that_covers_the_short_side() {
        assert_eq!(scale_for(4032, 3024, 224), 8);
        assert_eq!(scale_for(4032, 3024, 400), 4);
        assert_eq!(scale_for(1280, 960, 256), 2);
        assert_eq!(scale_for(300, 200, 224), 1);
        assert_eq!(scale_for(64, 64, 64), 1);
    }

    #[test]
    fn what_is_not_a_jpeg_is_an_error_with_a_message() {
        let err = info(b"not a jpeg at all").expect_err("refused");
        assert!(!err.0.is_empty());
        let err = info(&[]).expect_err("refused");
        assert!(!err.0.is_empty());
    }
}
