//! HEIC/HEIF (iPhones' default) and AVIF, through libheif (the `heif` feature: libheif built
//! from the sources libheif-sys embeds, with the system's libde265 for HEVC and dav1d for AV1).
//! The container's rotation and mirroring are applied by libheif; an ICC profile (an iPhone's
//! Display P3) is converted to sRGB; alpha is composited over white as for every other format.

use super::decode::{flatten_on_white, over_pixel_limit, DecodeError};
use image::{RgbImage, RgbaImage};
use libheif_rs::{ColorSpace, HeifContext, LibHeif, RgbChroma};
use std::path::Path;

fn heif_error(e: impl std::fmt::Display) -> DecodeError {
    DecodeError::Image(format!("HEIF: {e}"))
}

/// Decodes the primary image of a HEIF/AVIF file to RGB8 at its natural size, its colour
/// profile converted to sRGB unless `options` say otherwise.
pub(super) fn decode(path: &Path, options: super::DecodeOptions) -> Result<RgbImage, DecodeError> {
    let path_text = path
        .to_str()
        .ok_or_else(|| heif_error("the path is not UTF-8"))?;
    let context = HeifContext::read_from_file(path_text).map_err(heif_error)?;
    let handle = context.primary_image_handle().map_err(heif_error)?;
    if let Some(message) = over_pixel_limit(handle.width(), handle.height()) {
        return Err(heif_error(message));
    }
    let alpha = handle.has_alpha_channel();
    let chroma = if alpha {
        RgbChroma::Rgba
    } else {
        RgbChroma::Rgb
    };
    let image = LibHeif::new()
        .decode(&handle, ColorSpace::Rgb(chroma), None)
        .map_err(heif_error)?;
    let planes = image.planes();
    let plane = planes
        .interleaved
        .ok_or_else(|| heif_error("no interleaved plane"))?;
    let channels = if alpha { 4 } else { 3 };
    let row_bytes = plane.width as usize * channels;
    let mut packed = Vec::with_capacity(row_bytes * plane.height as usize);
    for row in plane.data.chunks(plane.stride).take(plane.height as usize) {
        packed.extend_from_slice(
            row.get(..row_bytes)
                .ok_or_else(|| heif_error("short row"))?,
        );
    }
    let wrong_size = || heif_error("decoded buffer has the wrong size");
    let rgb = if alpha {
        let rgba = RgbaImage::from_raw(plane.width, plane.height, packed).ok_or_else(wrong_size)?;
        flatten_on_white(&rgba)
    } else {
        RgbImage::from_raw(plane.width, plane.height, packed).ok_or_else(wrong_size)?
    };
    Ok(match handle.color_profile_raw() {
        Some(profile) if options.colour_profile => super::colour::to_srgb(rgb, &profile.data),
        _ => rgb,
    })
}
