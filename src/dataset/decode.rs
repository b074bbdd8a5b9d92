//! Image decoding to RGB8: every raster format the `image` crate reads, plus SVG through resvg.
//! EXIF orientation is applied; alpha is composited over white; grey and 16-bit become RGB8.

use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage, RgbaImage};
use std::path::Path;

/// File extensions natview reads (lower case).
pub const SUPPORTED_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "webp", "gif", "bmp", "tif", "tiff", "svg",
];

/// Whether the file name has an extension natview can decode.
pub fn is_supported_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| SUPPORTED_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        .unwrap_or(false)
}

/// Why an image could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The file could not be read.
    #[error("cannot read file: {0}")]
    Io(#[from] std::io::Error),
    /// The file is empty.
    #[error("empty file (0 bytes)")]
    Empty,
    /// The bytes are not an image of a known format, or are damaged.
    #[error("not a readable image: {0}")]
    Image(String),
    /// An SVG could not be parsed or rendered.
    #[error("not a readable SVG: {0}")]
    Svg(String),
}

/// Decodes an image file to RGB8 at its natural size (SVGs are rasterised so that their longer
/// side is `svg_size_px`).
pub fn decode_rgb(path: &Path, svg_size_px: u32) -> Result<RgbImage, DecodeError> {
    let len = std::fs::metadata(path)?.len();
    if len == 0 {
        return Err(DecodeError::Empty);
    }
    let is_svg = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("svg"));
    let rgba = if is_svg {
        rasterise_svg(&std::fs::read(path)?, svg_size_px)?
    } else {
        decode_raster(path)?.into_rgba8()
    };
    Ok(flatten_on_white(&rgba))
}

fn decode_raster(path: &Path) -> Result<DynamicImage, DecodeError> {
    let reader = ImageReader::open(path)?
        .with_guessed_format()
        .map_err(DecodeError::Io)?;
    if reader.format().is_none() {
        return Err(DecodeError::Image("unknown image format".into()));
    }
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| DecodeError::Image(e.to_string()))?;
    let orientation = decoder.orientation().ok();
    let mut image =
        DynamicImage::from_decoder(decoder).map_err(|e| DecodeError::Image(e.to_string()))?;
    if let Some(orientation) = orientation {
        image.apply_orientation(orientation);
    }
    Ok(image)
}

/// Rasterises SVG bytes so that the longer side is `size_px`, on a transparent background.
pub fn rasterise_svg(bytes: &[u8], size_px: u32) -> Result<RgbaImage, DecodeError> {
    let tree = resvg::usvg::Tree::from_data(bytes, &resvg::usvg::Options::default())
        .map_err(|e| DecodeError::Svg(e.to_string()))?;
    let size = tree.size();
    let scale = size_px as f32 / size.width().max(size.height()).max(1e-3);
    let width = ((size.width() * scale).round() as u32).max(1);
    let height = ((size.height() * scale).round() as u32).max(1);
    let mut pixmap = resvg::tiny_skia::Pixmap::new(width, height)
        .ok_or_else(|| DecodeError::Svg(format!("cannot allocate {width}x{height} pixels")))?;
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    // tiny-skia stores premultiplied RGBA; undo the premultiplication.
    let mut data = pixmap.take();
    for px in data.chunks_exact_mut(4) {
        let a = px[3] as u32;
        if a > 0 && a < 255 {
            for c in &mut px[..3] {
                *c = ((*c as u32 * 255 + a / 2) / a).min(255) as u8;
            }
        }
    }
    RgbaImage::from_raw(width, height, data)
        .ok_or_else(|| DecodeError::Svg("rendered buffer has the wrong size".into()))
}

/// Composites an RGBA image over a white background.
pub fn flatten_on_white(rgba: &RgbaImage) -> RgbImage {
    let mut out = RgbImage::new(rgba.width(), rgba.height());
    for (dst, src) in out.pixels_mut().zip(rgba.pixels()) {
        let a = src[3] as u32;
        for c in 0..3 {
            dst[c] = ((src[c] as u32 * a + 255 * (255 - a) + 127) / 255) as u8;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transparent_pixels_become_white_and_opaque_ones_keep_colour() {
        let mut rgba = RgbaImage::new(2, 1);
        rgba.put_pixel(0, 0, image::Rgba([10, 20, 30, 0]));
        rgba.put_pixel(1, 0, image::Rgba([10, 20, 30, 255]));
        let rgb = flatten_on_white(&rgba);
        assert_eq!(rgb.get_pixel(0, 0).0, [255, 255, 255]);
        assert_eq!(rgb.get_pixel(1, 0).0, [10, 20, 30]);
    }

    #[test]
    fn svg_is_rasterised_at_the_requested_size() {
        let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" width="32" height="16"><rect width="32" height="16" fill="red"/></svg>"#;
        let image = rasterise_svg(svg, 64).expect("valid svg");
        assert_eq!(image.dimensions(), (64, 32));
        assert_eq!(image.get_pixel(10, 10).0, [255, 0, 0, 255]);
    }

    #[test]
    fn extension_check_is_case_insensitive() {
        assert!(is_supported_extension(Path::new("a/B.JPG")));
        assert!(!is_supported_extension(Path::new("a/notes.txt")));
        assert!(!is_supported_extension(Path::new("a/noext")));
    }
}
