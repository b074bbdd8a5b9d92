//! Colour profiles: an image that carries an ICC profile (a camera's Display P3, Adobe RGB) is
//! converted to sRGB (relative colorimetric, through moxcms, the colour engine the `image`
//! crate uses), so that it looks — and embeds — as it does in a colour-managed viewer. A
//! profile that cannot be read is ignored and the pixels are taken as sRGB.

use image::RgbImage;
use moxcms::{ColorProfile, Layout, TransformExecutor, TransformOptions};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

type Transform = Arc<dyn TransformExecutor<u8> + Send + Sync>;

/// Transforms made so far, by profile bytes (a photo folder has few distinct profiles).
fn cache() -> &'static Mutex<HashMap<Vec<u8>, Option<Transform>>> {
    static CACHE: OnceLock<Mutex<HashMap<Vec<u8>, Option<Transform>>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

fn transform_for(icc: &[u8]) -> Option<Transform> {
    if let Ok(cache) = cache().lock() {
        if let Some(found) = cache.get(icc) {
            return found.clone();
        }
    }
    let made = ColorProfile::new_from_slice(icc).ok().and_then(|profile| {
        let transform: Transform = profile
            .create_transform_8bit(
                Layout::Rgb,
                &ColorProfile::new_srgb(),
                Layout::Rgb,
                TransformOptions::default(),
            )
            .ok()?;
        Some(transform)
    });
    if let Ok(mut cache) = cache().lock() {
        if cache.len() < 64 {
            cache.insert(icc.to_vec(), made.clone());
        }
    }
    made
}

/// `image` (pixels in the colour space `icc` describes) converted to sRGB; unchanged when the
/// profile is not an RGB profile moxcms reads.
pub(super) fn to_srgb(image: RgbImage, icc: &[u8]) -> RgbImage {
    let Some(transform) = transform_for(icc) else {
        return image;
    };
    let mut out = RgbImage::new(image.width(), image.height());
    match transform.transform(image.as_raw(), &mut out) {
        Ok(()) => out,
        Err(_) => image,
    }
}
