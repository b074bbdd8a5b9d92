//! Resizing RGB images, one way for every caller (model inputs, thumbnails, query and review
//! images): `fast_image_resize`'s SIMD convolution with the bilinear (triangle) filter, scaled
//! to the reduction as PIL's and torchvision's antialiased resize are.

use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::RgbImage;
use std::cell::RefCell;

thread_local! {
    /// One resizer per thread: it keeps its scratch buffers between calls.
    static RESIZER: RefCell<Resizer> = RefCell::new(Resizer::new());
}

fn options() -> ResizeOptions {
    ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear))
}

fn resize_with(image: &RgbImage, width: u32, height: u32, options: &ResizeOptions) -> RgbImage {
    let mut out = RgbImage::new(width.max(1), height.max(1));
    let resized = RESIZER.with(|resizer| {
        resizer
            .borrow_mut()
            .resize(image, &mut out, options)
            .is_ok()
    });
    if resized {
        out
    } else {
        // Only an empty source gets here (pixel types always match): a blank image.
        RgbImage::new(width.max(1), height.max(1))
    }
}

/// `image` resized to `width` × `height` (aspect ratio as given).
pub fn resize_rgb(image: &RgbImage, width: u32, height: u32) -> RgbImage {
    if image.dimensions() == (width, height) {
        return image.clone();
    }
    resize_with(image, width, height, &options())
}

/// `image` resized so that it fits in `max_side` × `max_side`, aspect ratio kept; never
/// enlarged.
pub fn fit_within(image: &RgbImage, max_side: u32) -> RgbImage {
    let (w, h) = image.dimensions();
    let long = w.max(h);
    if long <= max_side {
        return image.clone();
    }
    let scale = f64::from(max_side) / f64::from(long);
    resize_rgb(image, scaled(w, scale), scaled(h, scale))
}

#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "side × scale with scale ≤ 1 is at most side, a u32, and never negative"
)]
fn scaled(side: u32, scale: f64) -> u32 {
    ((f64::from(side) * scale).round() as u32).max(1)
}

/// The region `left, top, width, height` (in pixels, fractional allowed) of `image`, resized
/// to `out_width` × `out_height`.
pub fn crop_resize(
    image: &RgbImage,
    (left, top, width, height): (f64, f64, f64, f64),
    out_width: u32,
    out_height: u32,
) -> RgbImage {
    resize_with(
        image,
        out_width,
        out_height,
        &options().crop(left, top, width, height),
    )
}

/// The centred square covering `crop_fraction` of the short side (1.0: the largest centred
/// square), resized to `size_px` × `size_px`. With `crop_fraction` = 224 / 256 this is
/// torchvision's `Resize(256)` then `CenterCrop(224)` in one resampling.
pub fn centre_crop_resize(image: &RgbImage, size_px: u32, crop_fraction: f32) -> RgbImage {
    let (w, h) = image.dimensions();
    let fraction = f64::from(crop_fraction).clamp(0.05, 1.0);
    let side = f64::from(w.min(h)) * fraction;
    let left = (f64::from(w) - side) / 2.0;
    let top = (f64::from(h) - side) / 2.0;
    if w == h && w == size_px && fraction >= 1.0 {
        return image.clone();
    }
    resize_with(
        image,
        size_px,
        size_px,
        &options().crop(left, top, side, side),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flat_colour_stays_flat_and_sizes_are_as_asked() {
        let image = RgbImage::from_pixel(300, 200, image::Rgb([10, 120, 250]));
        let out = centre_crop_resize(&image, 64, 1.0);
        assert_eq!(out.dimensions(), (64, 64));
        assert!(out.pixels().all(|p| p.0 == [10, 120, 250]));
        assert_eq!(resize_rgb(&image, 30, 20).dimensions(), (30, 20));
        assert_eq!(fit_within(&image, 150).dimensions(), (150, 100));
        assert_eq!(fit_within(&image, 400).dimensions(), (300, 200));
    }

    #[test]
    fn the_crop_is_centred_and_covers_the_fraction_asked() {
        // Left third red, middle green, right blue: the centred square of a 300 × 100 image is
        // all green, and a half-size crop of it too.
        let image = RgbImage::from_fn(300, 100, |x, _| match x / 100 {
            0 => image::Rgb([255, 0, 0]),
            1 => image::Rgb([0, 255, 0]),
            _ => image::Rgb([0, 0, 255]),
        });
        for fraction in [1.0, 0.5] {
            let out = centre_crop_resize(&image, 10, fraction);
            assert!(
                out.pixels()
                    .all(|p| p.0[1] > 200 && p.0[0] < 50 && p.0[2] < 50),
                "{fraction}"
            );
        }
        let wide = centre_crop_resize(&image, 30, 1.0);
        assert_eq!(wide.dimensions(), (30, 30));
    }
}
