//! Image decoding to RGB8: JPEG through the system's libjpeg-turbo (`natview-jpeg`), at the
//! smallest DCT scale (1/8, 1/4, 1/2) that still covers what the caller needs; every other
//! raster format the `image` crate reads; SVG through resvg. EXIF orientation is applied (unless
//! [`DecodeOptions`] say otherwise, as for the ICC profile below); alpha
//! is composited over white; grey, CMYK and 16-bit become RGB8. A file whose header asks for
//! more than [`MAX_IMAGE_PIXELS`] pixels (or a decoder more than [`MAX_DECODE_BYTES`]) is
//! refused before it is decoded. An embedded ICC colour profile (JPEG, PNG, WebP, TIFF) is
//! applied: the pixels are converted to sRGB (`colour`); without one they are taken as sRGB.
//!
//! An SVG's `<image>` elements are followed only to `data:` URLs and to files in the SVG's own
//! folder or below it (links resolved, so `..` and symbolic links cannot leave it), each at
//! most [`MAX_SVG_BYTES`]. Any other reference is left out and the SVG drawn without it, rather
//! than the whole file skipped: its own drawing is kept in the dataset, and the caller gets the
//! refusals ([`decode_rgb_noting`]) to report beside the skipped files. The SVG's folder, not
//! the dataset root, bounds what it may embed: every caller has the image's path, not all of
//! them its dataset, and thumbnails and embeddings then see the same picture.

use super::DecodeOptions;
use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage, RgbaImage};
use resvg::usvg::{ImageHrefResolver, ImageKind, Options, Tree};
use std::path::Path;
use std::sync::Arc;

/// File extensions natview reads (lower case).
pub const SUPPORTED_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "webp", "gif", "bmp", "tif", "tiff", "svg", "heic", "heif", "avif",
];

/// Extensions of the HEIF family (HEIC, HEIF, AVIF): decoded with the `heif` feature, else
/// listed and skipped with a message naming the feature.
const HEIF_EXTENSIONS: &[&str] = &["heic", "heif", "avif"];

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
    /// An SVG file is larger than natview reads.
    #[error("SVG larger than {} MiB", limit >> 20)]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
}

/// Largest image natview decodes, in pixels (2^28, 268 megapixels: a 200-megapixel phone photo
/// passes, a hostile header of 65,500 × 65,500 does not).
pub const MAX_IMAGE_PIXELS: u64 = 256 << 20;

/// Why an image of `width` × `height` is not decoded, when it is over [`MAX_IMAGE_PIXELS`].
pub(super) fn over_pixel_limit(width: u32, height: u32) -> Option<String> {
    (u64::from(width) * u64::from(height) > MAX_IMAGE_PIXELS).then(|| {
        format!(
            "{width} × {height} pixels is over the limit of {} megapixels",
            MAX_IMAGE_PIXELS / 1_000_000
        )
    })
}

/// Largest working memory a decoder may take for one image (1 GiB).
pub const MAX_DECODE_BYTES: u64 = 1 << 30;

/// How images are decoded and resized, recorded with embeddings so that a workspace made
/// another way is rebuilt rather than mixed: the JPEG decoder and its scale rule, the resizer.
pub const IMAGE_PIPELINE: &str =
    "libjpeg-turbo DCT-scaled to at least twice the target side; ICC profiles to sRGB (moxcms); \
     fast_image_resize bilinear";

/// How much larger than the side it will be resized to a JPEG is decoded: at least twice, so
/// that the resize still averages over several pixels (as at full size) rather than taking
/// the DCT scaling's blockier reduction as it is. Measured on a photograph (tests/jpeg_decode.rs):
/// the 224-px input from a 1/2-scale decode embeds at cosine 0.998 to the full decode's; from
/// the 1/4 scale that covers 224 without a margin, 0.993.
pub const SCALE_MARGIN: u32 = 2;

/// Largest SVG file natview reads, and largest image an SVG may embed (a `data:` URL or a file
/// in its folder): 64 MiB.
pub const MAX_SVG_BYTES: u64 = 64 << 20;

/// Decodes an image file to RGB8 at its natural size (SVGs are rasterised so that their longer
/// side is `svg_size_px`). References an SVG makes to other files are followed only inside its
/// own folder; see [`decode_rgb_noting`] for the ones left out.
pub fn decode_rgb(path: &Path, svg_size_px: u32) -> Result<RgbImage, DecodeError> {
    decode_rgb_noting(path, svg_size_px).map(|decoded| decoded.image)
}

/// Decodes an image file to RGB8 for a caller that will resize it so that its shorter side is
/// `target_short_side` (or crop from that): where the format can decode smaller for less (a
/// JPEG, at 1/2, 1/4 or 1/8 of its size), at the smallest scale whose short side is at least
/// [`SCALE_MARGIN`] × the target; other formats at their natural size; SVGs as [`decode_rgb`].
pub fn decode_rgb_covering(
    path: &Path,
    svg_size_px: u32,
    target_short_side: u32,
) -> Result<Decoded, DecodeError> {
    decode_rgb_covering_with(
        path,
        svg_size_px,
        target_short_side,
        DecodeOptions::default(),
    )
}

/// [`decode_rgb_covering`] with EXIF orientation and ICC profiles applied or not, as `options`
/// say.
pub fn decode_rgb_covering_with(
    path: &Path,
    svg_size_px: u32,
    target_short_side: u32,
    options: DecodeOptions,
) -> Result<Decoded, DecodeError> {
    decode_with(
        path,
        svg_size_px,
        target_short_side.saturating_mul(SCALE_MARGIN),
        options,
    )
}

/// A decoded image and the references inside it (an SVG's `<image>` elements) that were left
/// out.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// The image, RGB8.
    pub image: RgbImage,
    /// Embedded images that were not drawn, and why.
    pub refused: Vec<RefusedReference>,
}

/// An `<image>` reference inside an SVG that natview did not follow: the SVG is drawn without
/// that part. Only `data:` URLs and files in the SVG's own folder (or below it, links
/// resolved) are followed, each up to [`MAX_SVG_BYTES`], so that an image file cannot pull
/// other local files (or an endless one such as `/dev/zero`) into thumbnails and exports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedReference {
    /// The reference as the SVG writes it (a `data:` URL shortened to its type).
    pub href: String,
    /// Why it was not followed.
    pub reason: String,
}

impl std::fmt::Display for RefusedReference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "embedded image `{}` left out ({}); the SVG was drawn without it",
            self.href, self.reason
        )
    }
}

/// [`decode_rgb`], also returning the references of an SVG that were left out.
pub fn decode_rgb_noting(path: &Path, svg_size_px: u32) -> Result<Decoded, DecodeError> {
    decode_with(path, svg_size_px, 0, DecodeOptions::default())
}

fn decode_with(
    path: &Path,
    svg_size_px: u32,
    min_short_side: u32,
    options: DecodeOptions,
) -> Result<Decoded, DecodeError> {
    let len = std::fs::metadata(path)?.len();
    if len == 0 {
        return Err(DecodeError::Empty);
    }
    let is_svg = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("svg"));
    if is_svg && len > MAX_SVG_BYTES {
        return Err(DecodeError::TooLarge {
            limit: MAX_SVG_BYTES,
        });
    }
    let is_heif = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| HEIF_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
    if is_heif {
        return decode_heif(path, options).map(|image| Decoded {
            image,
            refused: Vec::new(),
        });
    }
    if !is_svg {
        if is_jpeg_file(path)? {
            return Ok(Decoded {
                image: decode_jpeg(path, min_short_side, options)?,
                refused: Vec::new(),
            });
        }
        let (image, icc) = decode_raster(path, options)?;
        let image = match image {
            DynamicImage::ImageRgb8(rgb) => rgb,
            other => flatten_on_white(&other.into_rgba8()),
        };
        let image = match icc {
            Some(icc) if options.colour_profile => super::colour::to_srgb(image, &icc),
            _ => image,
        };
        return Ok(Decoded {
            image,
            refused: Vec::new(),
        });
    }
    let bytes = read_at_most(path, MAX_SVG_BYTES)?.ok_or(DecodeError::TooLarge {
        limit: MAX_SVG_BYTES,
    })?;
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let (rgba, refused) = rasterise_svg_in(&bytes, svg_size_px, Some(folder))?;
    Ok(Decoded {
        image: flatten_on_white(&rgba),
        refused,
    })
}

/// The bytes of the file at `path` when it holds at most `limit` of them (`None`: more), read
/// without trusting its reported size (a device or a growing file).
fn read_at_most(path: &Path, limit: u64) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= limit).then_some(bytes))
}

#[cfg(feature = "heif")]
fn decode_heif(path: &Path, options: DecodeOptions) -> Result<RgbImage, DecodeError> {
    super::heif::decode(path, options)
}

#[cfg(not(feature = "heif"))]
fn decode_heif(_path: &Path, _options: DecodeOptions) -> Result<RgbImage, DecodeError> {
    Err(DecodeError::Image(
        "HEIC/HEIF/AVIF needs natview built with the `heif` feature (README, Install)".into(),
    ))
}

/// Whether the file starts as a JPEG does (its extension may say otherwise).
fn is_jpeg_file(path: &Path) -> Result<bool, DecodeError> {
    use std::io::Read;
    let mut magic = [0u8; 3];
    let mut file = std::fs::File::open(path)?;
    Ok(file.read_exact(&mut magic).is_ok() && magic == [0xFF, 0xD8, 0xFF])
}

/// A JPEG through libjpeg-turbo at the smallest scale covering `min_short_side` (0: full),
/// turned upright as its EXIF orientation says and its ICC profile applied (where `options` say
/// so).
fn decode_jpeg(
    path: &Path,
    min_short_side: u32,
    options: DecodeOptions,
) -> Result<RgbImage, DecodeError> {
    let bytes = std::fs::read(path)?;
    let jpeg_error = |e: natview_jpeg::JpegError| DecodeError::Image(format!("JPEG: {e}"));
    let info = natview_jpeg::info(&bytes).map_err(jpeg_error)?;
    let limits = natview_jpeg::Limits {
        max_pixels: MAX_IMAGE_PIXELS,
        max_memory: MAX_DECODE_BYTES,
    };
    let scaled =
        natview_jpeg::decode_scaled(&bytes, &info, min_short_side, limits).map_err(jpeg_error)?;
    let mut image = RgbImage::from_raw(scaled.width, scaled.height, scaled.rgb)
        .ok_or_else(|| DecodeError::Image("JPEG: decoded buffer has the wrong size".into()))?;
    // CMYK files' profiles describe inks, not the RGB natview converted them to.
    if let (Some(icc), false, true) = (info.icc.as_deref(), info.cmyk, options.colour_profile) {
        image = super::colour::to_srgb(image, icc);
    }
    let orientation = info
        .exif
        .as_deref()
        .filter(|_| options.orientation)
        .and_then(image::metadata::Orientation::from_exif_chunk);
    Ok(match orientation {
        None | Some(image::metadata::Orientation::NoTransforms) => image,
        Some(orientation) => {
            let mut dynamic = DynamicImage::ImageRgb8(image);
            dynamic.apply_orientation(orientation);
            dynamic.into_rgb8()
        }
    })
}

/// The image (turned upright where `options` say so) and its ICC profile, if it has one.
fn decode_raster(
    path: &Path,
    options: DecodeOptions,
) -> Result<(DynamicImage, Option<Vec<u8>>), DecodeError> {
    let mut reader = ImageReader::open(path)?
        .with_guessed_format()
        .map_err(DecodeError::Io)?;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    let side = u32::try_from(MAX_IMAGE_PIXELS.isqrt() * 4).unwrap_or(u32::MAX);
    limits.max_image_width = Some(side);
    limits.max_image_height = Some(side);
    reader.limits(limits);
    if reader.format().is_none() {
        return Err(DecodeError::Image("unknown image format".into()));
    }
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| DecodeError::Image(e.to_string()))?;
    let (width, height) = decoder.dimensions();
    if let Some(message) = over_pixel_limit(width, height) {
        return Err(DecodeError::Image(message));
    }
    let orientation = decoder.orientation().ok();
    let icc = decoder.icc_profile().ok().flatten();
    let mut image =
        DynamicImage::from_decoder(decoder).map_err(|e| DecodeError::Image(e.to_string()))?;
    if let (Some(orientation), true) = (orientation, options.orientation) {
        image.apply_orientation(orientation);
    }
    Ok((image, icc))
}

/// Rasterises SVG bytes so that the longer side is `size_px`, on a transparent background.
/// Only `data:` URLs are followed (the bytes have no folder); see [`rasterise_svg_in`].
pub fn rasterise_svg(bytes: &[u8], size_px: u32) -> Result<RgbaImage, DecodeError> {
    rasterise_svg_in(bytes, size_px, None).map(|(image, _)| image)
}

/// Rasterises SVG bytes so that the longer side is `size_px`, on a transparent background.
/// `<image>` references are followed when they are `data:` URLs or files inside `folder` (the
/// SVG's own folder; `None`: no files), each up to [`MAX_SVG_BYTES`]; the others are left out
/// and returned, and the SVG is drawn without them.
pub fn rasterise_svg_in(
    bytes: &[u8],
    size_px: u32,
    folder: Option<&Path>,
) -> Result<(RgbaImage, Vec<RefusedReference>), DecodeError> {
    // Canonical, so that `..` and links in a reference are compared with the folder's real place.
    let folder = folder.and_then(|f| std::fs::canonicalize(f).ok());
    let refused = std::sync::Mutex::new(Vec::new());
    let refuse = |href: String, reason: String| {
        if let Ok(mut refused) = refused.lock() {
            refused.push(RefusedReference { href, reason });
        }
    };
    let data_resolver = ImageHrefResolver::default_data_resolver();
    let options = Options {
        resources_dir: folder.clone(),
        image_href_resolver: ImageHrefResolver {
            resolve_data: Box::new(|mime: &str, data: Arc<Vec<u8>>, options: &Options| {
                if data.len() as u64 > MAX_SVG_BYTES {
                    refuse(
                        format!("data:{mime},…"),
                        format!("larger than {} MiB", MAX_SVG_BYTES >> 20),
                    );
                    return None;
                }
                data_resolver(mime, data, options)
            }),
            resolve_string: Box::new(|href: &str, options: &Options| {
                match local_image(href, folder.as_deref(), options) {
                    Ok(kind) => Some(kind),
                    Err(reason) => {
                        refuse(href.chars().take(200).collect(), reason);
                        None
                    }
                }
            }),
        },
        ..Options::default()
    };
    let tree = Tree::from_data(bytes, &options).map_err(|e| DecodeError::Svg(e.to_string()))?;
    drop(options);
    let refused = refused.into_inner().unwrap_or_else(|e| e.into_inner());
    let size = tree.size();
    let scale = size_px as f32 / size.width().max(size.height()).max(1e-3);
    let width = scaled_side(size.width(), scale);
    let height = scaled_side(size.height(), scale);
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
    let image = RgbaImage::from_raw(width, height, data)
        .ok_or_else(|| DecodeError::Svg("rendered buffer has the wrong size".into()))?;
    Ok((image, refused))
}

/// A side of an SVG's box scaled to whole pixels (at least 1), with `scale` the requested size
/// over the box's longer side.
#[expect(
    clippy::cast_possible_truncation,
    reason = "side * scale is at most the requested size, a u32 (the longer side scales to it); \
              a float-to-int `as` saturates and takes NaN to 0, which .max(1) lifts"
)]
fn scaled_side(side: f32, scale: f32) -> u32 {
    ((side * scale).round() as u32).max(1)
}

/// The image a non-`data:` reference of an SVG names, when it is a regular file of at most
/// [`MAX_SVG_BYTES`] inside `folder` (canonical); `Err` says why not.
fn local_image(href: &str, folder: Option<&Path>, options: &Options) -> Result<ImageKind, String> {
    let Some(folder) = folder else {
        return Err("only data: URLs are followed here".into());
    };
    if has_url_scheme(href) {
        return Err("not a file in the SVG's folder".into());
    }
    let path =
        std::fs::canonicalize(folder.join(href)).map_err(|e| format!("cannot be read: {e}"))?;
    if !path.starts_with(folder) {
        return Err(format!("outside the SVG's folder {}", folder.display()));
    }
    if !std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
        return Err("not a regular file".into());
    }
    let too_large = || format!("larger than {} MiB", MAX_SVG_BYTES >> 20);
    let data = read_at_most(&path, MAX_SVG_BYTES)
        .map_err(|e| format!("cannot be read: {e}"))?
        .ok_or_else(too_large)?;
    let is_svg = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("svg"));
    if is_svg {
        // As usvg does: a nested SVG follows no references to files of its own.
        return Tree::from_data_nested(&data, options)
            .map(ImageKind::SVG)
            .map_err(|e| format!("not a readable SVG: {e}"));
    }
    let data = Arc::new(data);
    match image::guess_format(&data) {
        Ok(image::ImageFormat::Png) => Ok(ImageKind::PNG(data)),
        Ok(image::ImageFormat::Jpeg) => Ok(ImageKind::JPEG(data)),
        Ok(image::ImageFormat::Gif) => Ok(ImageKind::GIF(data)),
        Ok(image::ImageFormat::WebP) => Ok(ImageKind::WEBP(data)),
        _ => Err("not a PNG, JPEG, GIF, WebP or SVG image".into()),
    }
}

/// Whether `href` starts with a URL scheme (`http:`, `file:`, …) rather than naming a path.
fn has_url_scheme(href: &str) -> bool {
    href.split_once(':').is_some_and(|(scheme, _)| {
        // One letter is a Windows drive (`C:`), not a scheme.
        scheme.len() > 1
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    })
}

/// Composites an RGBA image over a white background.
pub fn flatten_on_white(rgba: &RgbaImage) -> RgbImage {
    let mut out = RgbImage::new(rgba.width(), rgba.height());
    for (dst, src) in out.pixels_mut().zip(rgba.pixels()) {
        let a = src[3] as u32;
        for c in 0..3 {
            #[expect(
                clippy::cast_possible_truncation,
                reason = "src[c] and a are at most 255, so the sum is at most 255 * 255 + 127 \
                          and the quotient at most 255"
            )]
            let blended = ((src[c] as u32 * a + 255 * (255 - a) + 127) / 255) as u8;
            dst[c] = blended;
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

    /// An SVG with a blue left half and, over its right half, an `<image>` of `href`.
    fn svg_with_image(href: &str) -> String {
        format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="20" height="10"><rect width="10" height="10" fill="blue"/><image x="10" y="0" width="10" height="10" xlink:href="{href}"/></svg>"#
        )
    }

    const RED_SQUARE: &str = r#"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10" fill="red"/></svg>"#;

    #[test]
    fn an_svg_draws_an_image_from_its_own_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("parts")).expect("mkdir");
        std::fs::write(dir.path().join("parts/red.svg"), RED_SQUARE).expect("write");
        let svg = dir.path().join("main.svg");
        std::fs::write(&svg, svg_with_image("parts/red.svg")).expect("write");
        let decoded = decode_rgb_noting(&svg, 20).expect("decodes");
        assert!(decoded.refused.is_empty(), "{:?}", decoded.refused);
        assert_eq!(decoded.image.get_pixel(2, 5).0, [0, 0, 255]);
        assert_eq!(decoded.image.get_pixel(15, 5).0, [255, 0, 0]);
    }

    #[test]
    fn references_outside_the_svgs_folder_are_left_out_and_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = dir.path().join("outside.svg");
        std::fs::write(&outside, RED_SQUARE).expect("write");
        let folder = dir.path().join("dataset");
        std::fs::create_dir_all(&folder).expect("mkdir");
        let mut hrefs = vec![
            outside.to_str().expect("utf-8").to_string(),
            "/dev/zero".to_string(),
            "../outside.svg".to_string(),
            format!("file://{}", outside.display()),
        ];
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&outside, folder.join("link.svg")).expect("symlink");
            hrefs.push("link.svg".into());
        }
        for (i, href) in hrefs.iter().enumerate() {
            let svg = folder.join(format!("{i}.svg"));
            std::fs::write(&svg, svg_with_image(href)).expect("write");
            let decoded = decode_rgb_noting(&svg, 20).expect("decodes");
            // Drawn without the external part: the right half stays white.
            assert_eq!(decoded.image.get_pixel(2, 5).0, [0, 0, 255], "{href}");
            assert_eq!(decoded.image.get_pixel(15, 5).0, [255, 255, 255], "{href}");
            assert_eq!(decoded.refused.len(), 1, "{href}");
            assert_eq!(&decoded.refused[0].href, href);
            let text = decoded.refused[0].to_string();
            assert!(text.contains("drawn without it"), "{text}");
        }
        // Bytes with no folder follow no files at all.
        let (image, refused) =
            rasterise_svg_in(svg_with_image("parts/red.svg").as_bytes(), 20, None).expect("svg");
        assert_eq!(image.get_pixel(15, 5).0[3], 0);
        assert_eq!(refused[0].reason, "only data: URLs are followed here");
    }

    #[test]
    fn data_urls_are_followed_and_an_oversized_svg_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = format!(
            "data:image/svg+xml,{}",
            RED_SQUARE
                .replace('<', "%3C")
                .replace('>', "%3E")
                .replace('"', "'")
        );
        let svg = dir.path().join("inline.svg");
        std::fs::write(&svg, svg_with_image(&data)).expect("write");
        let decoded = decode_rgb_noting(&svg, 20).expect("decodes");
        assert!(decoded.refused.is_empty(), "{:?}", decoded.refused);
        assert_eq!(decoded.image.get_pixel(15, 5).0, [255, 0, 0]);

        let big = dir.path().join("big.svg");
        let file = std::fs::File::create(&big).expect("create");
        file.set_len(MAX_SVG_BYTES + 1).expect("sparse file");
        let err = decode_rgb(&big, 20).expect_err("too large");
        assert!(matches!(err, DecodeError::TooLarge { .. }), "{err}");
    }

    #[test]
    fn extension_check_is_case_insensitive() {
        assert!(is_supported_extension(Path::new("a/B.JPG")));
        assert!(!is_supported_extension(Path::new("a/notes.txt")));
        assert!(!is_supported_extension(Path::new("a/noext")));
    }
}
