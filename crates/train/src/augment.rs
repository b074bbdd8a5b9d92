//! Seeded image augmentations for self-supervised training: random resized crop, horizontal
//! flip, colour jitter (brightness, contrast, saturation), greyscale and Gaussian blur, applied
//! on the fly to each view.

use image::RgbImage;
use natview_core::rng::SplitMix64;

/// How strongly views are augmented.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AugmentParams {
    /// Smallest crop area as a fraction of the image (the largest is the whole image).
    pub min_crop_area: f64,
    /// Probability of a horizontal flip.
    pub flip: f64,
    /// Probability of colour jitter; strength of each jitter factor (±).
    pub jitter: f64,
    /// Strength of brightness/contrast/saturation jitter (factor in `1 ± strength`).
    pub jitter_strength: f64,
    /// Probability of turning the view grey.
    pub greyscale: f64,
    /// Probability of a Gaussian blur (σ drawn in 0.1–1.5 px at the output size).
    pub blur: f64,
}

impl AugmentParams {
    /// Light augmentations for natural views (two photos of one listing already differ).
    pub fn natural_views() -> Self {
        Self {
            min_crop_area: 0.5,
            flip: 0.5,
            jitter: 0.5,
            jitter_strength: 0.3,
            greyscale: 0.1,
            blur: 0.2,
        }
    }

    /// SimSiam/SimCLR-strength augmentations, for listings with a single view.
    pub fn single_view() -> Self {
        Self {
            min_crop_area: 0.2,
            flip: 0.5,
            jitter: 0.8,
            jitter_strength: 0.4,
            greyscale: 0.2,
            blur: 0.5,
        }
    }
}

/// Produces one augmented `size_px` square view of `image`.
pub fn augment(
    image: &RgbImage,
    size_px: u32,
    params: &AugmentParams,
    rng: &mut SplitMix64,
) -> RgbImage {
    let mut view = random_resized_crop(image, size_px, params.min_crop_area, rng);
    if rng.next_f64() < params.flip {
        image::imageops::flip_horizontal_in_place(&mut view);
    }
    if rng.next_f64() < params.jitter {
        colour_jitter(&mut view, params.jitter_strength, rng);
    }
    if rng.next_f64() < params.greyscale {
        greyscale(&mut view);
    }
    if rng.next_f64() < params.blur {
        let sigma = 0.1 + 1.4 * rng.next_f64();
        view = image::imageops::blur(&view, sigma as f32);
    }
    view
}

/// A crop of random area (`min_area`–1 of the image) and aspect ratio (3/4–4/3), resized to a
/// `size_px` square.
fn random_resized_crop(
    image: &RgbImage,
    size_px: u32,
    min_area: f64,
    rng: &mut SplitMix64,
) -> RgbImage {
    let (w, h) = image.dimensions();
    let area = f64::from(w) * f64::from(h);
    for _ in 0..10 {
        let target = area * (min_area + (1.0 - min_area) * rng.next_f64());
        let log_ratio =
            (3f64 / 4.0).ln() + ((4f64 / 3.0).ln() - (3f64 / 4.0).ln()) * rng.next_f64();
        let ratio = log_ratio.exp();
        let cw = (target * ratio).sqrt().round() as u32;
        let ch = (target / ratio).sqrt().round() as u32;
        if cw >= 1 && ch >= 1 && cw <= w && ch <= h {
            let x = rng.below((w - cw + 1) as usize) as u32;
            let y = rng.below((h - ch + 1) as usize) as u32;
            let region = (f64::from(x), f64::from(y), f64::from(cw), f64::from(ch));
            return natview_core::pixels::crop_resize(image, region, size_px, size_px);
        }
    }
    natview_encoder::square_resize(image, size_px)
}

/// Brightness, contrast and saturation, each scaled by a factor in `1 ± strength`, in random
/// order.
fn colour_jitter(view: &mut RgbImage, strength: f64, rng: &mut SplitMix64) {
    let mut factor = || (1.0 + strength * (2.0 * rng.next_f64() - 1.0)) as f32;
    let (brightness, contrast, saturation) = (factor(), factor(), factor());
    let mut order = [0usize, 1, 2];
    rng.shuffle(&mut order);
    for op in order {
        match op {
            0 => view.pixels_mut().for_each(|p| {
                for c in 0..3 {
                    p[c] = clamp_u8(f32::from(p[c]) * brightness);
                }
            }),
            1 => {
                let n = (view.width() * view.height()).max(1) as f32;
                let mean: f32 = view.pixels().map(|p| luma(p.0)).sum::<f32>() / n;
                view.pixels_mut().for_each(|p| {
                    for c in 0..3 {
                        p[c] = clamp_u8(mean + (f32::from(p[c]) - mean) * contrast);
                    }
                });
            }
            _ => view.pixels_mut().for_each(|p| {
                let grey = luma(p.0);
                for c in 0..3 {
                    p[c] = clamp_u8(grey + (f32::from(p[c]) - grey) * saturation);
                }
            }),
        }
    }
}

fn greyscale(view: &mut RgbImage) {
    view.pixels_mut().for_each(|p| {
        let grey = clamp_u8(luma(p.0));
        *p = image::Rgb([grey, grey, grey]);
    });
}

fn luma(p: [u8; 3]) -> f32 {
    0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2])
}

fn clamp_u8(v: f32) -> u8 {
    v.round().clamp(0.0, 255.0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient() -> RgbImage {
        RgbImage::from_fn(80, 60, |x, y| {
            image::Rgb([(x * 3) as u8, (y * 4) as u8, ((x + y) * 2) as u8])
        })
    }

    #[test]
    fn views_have_the_asked_size_and_the_same_seed_gives_the_same_view() {
        let image = gradient();
        let params = AugmentParams::single_view();
        let a = augment(&image, 64, &params, &mut SplitMix64::new(7));
        let b = augment(&image, 64, &params, &mut SplitMix64::new(7));
        let c = augment(&image, 64, &params, &mut SplitMix64::new(8));
        assert_eq!(a.dimensions(), (64, 64));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn greyscale_makes_channels_equal_and_jitter_keeps_a_grey_image_grey() {
        let mut view = gradient();
        greyscale(&mut view);
        assert!(view.pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
        colour_jitter(&mut view, 0.4, &mut SplitMix64::new(1));
        assert!(view.pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
    }
}
