//! Image preprocessing shared by the encoders: centre crop to a square, resize, and (for the
//! CNNs) ImageNet normalisation into an NCHW tensor.

use image::RgbImage;
use natview_core::pixels::centre_crop_resize;

/// ImageNet channel means (torchvision convention).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet channel standard deviations (torchvision convention).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Centre-crops to the largest square and resizes to `size_px` × `size_px`
/// ([`centre_crop_resize`] with the whole short side).
pub fn square_resize(image: &RgbImage, size_px: u32) -> RgbImage {
    centre_crop_resize(image, size_px, 1.0)
}

/// How pixel values become network input.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Normalisation {
    /// torchvision's: `(x / 255 − mean) / std` with the ImageNet channel statistics.
    ImageNet,
    /// TensorFlow's EfficientNet-Lite builder's: `(x − 127) / 128` on 0–255 values.
    Centred127,
    /// `(x / 255 − mean) / std` with a checkpoint's own statistics (timm's pretrained config,
    /// e.g. CLIP's or Inception's).
    MeanStd {
        /// Per-channel mean of 0–1 values.
        mean: [f32; 3],
        /// Per-channel standard deviation of 0–1 values.
        std: [f32; 3],
    },
}

impl Normalisation {
    /// The network input for channel `c`'s 0–255 value `x`.
    #[inline]
    fn apply(self, c: usize, x: u8) -> f32 {
        match self {
            Normalisation::ImageNet => (x as f32 / 255.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c],
            Normalisation::Centred127 => (x as f32 - 127.0) / 128.0,
            Normalisation::MeanStd { mean, std } => (x as f32 / 255.0 - mean[c]) / std[c],
        }
    }

    /// A short description, for model cards and reports.
    pub fn describe(self) -> String {
        match self {
            Normalisation::ImageNet => "ImageNet mean/std".into(),
            Normalisation::Centred127 => "(x - 127) / 128".into(),
            Normalisation::MeanStd { mean, std } => format!(
                "mean {:.3}/{:.3}/{:.3}, std {:.3}/{:.3}/{:.3}",
                mean[0], mean[1], mean[2], std[0], std[1], std[2]
            ),
        }
    }
}

/// Writes `image` (already `size_px` square) into `out` as normalised CHW floats.
pub fn normalise_chw(image: &RgbImage, norm: Normalisation, out: &mut [f32]) {
    let plane = (image.width() * image.height()) as usize;
    for (i, px) in image.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + i] = norm.apply(c, px[c]);
        }
    }
}

/// Preprocesses images (any size) into a normalised `[n, 3, size_px, size_px]` tensor on
/// `device`: centre square crop, resize, normalisation; images in parallel.
pub fn images_tensor<I: std::borrow::Borrow<RgbImage> + Sync>(
    images: &[I],
    size_px: u32,
    norm: Normalisation,
    device: &candle_core::Device,
) -> candle_core::Result<candle_core::Tensor> {
    images_tensor_cropped(images, size_px, 1.0, norm, device)
}

/// [`images_tensor`] with the centre crop keeping `crop_fraction` of the short side.
pub fn images_tensor_cropped<I: std::borrow::Borrow<RgbImage> + Sync>(
    images: &[I],
    size_px: u32,
    crop_fraction: f32,
    norm: Normalisation,
    device: &candle_core::Device,
) -> candle_core::Result<candle_core::Tensor> {
    use rayon::prelude::*;
    let size = size_px as usize;
    let per_image = 3 * size * size;
    let mut data = vec![0f32; images.len() * per_image];
    data.par_chunks_mut(per_image.max(1))
        .zip(images.par_iter())
        .for_each(|(out, image)| {
            let input = centre_crop_resize(image.borrow(), size_px, crop_fraction);
            normalise_chw(&input, norm, out);
        });
    candle_core::Tensor::from_vec(data, (images.len(), 3, size, size), device)
}

/// The raw-pixel baseline vector: the image at `size_px`², RGB in `[0, 1]`, minus its own mean
/// (so that cosine similarity is a correlation of pixel values).
pub fn pixel_vector(image: &RgbImage, size_px: u32) -> Vec<f32> {
    let small = square_resize(image, size_px);
    let mut v: Vec<f32> = small.as_raw().iter().map(|&b| b as f32 / 255.0).collect();
    let mean = v.iter().sum::<f32>() / v.len().max(1) as f32;
    v.iter_mut().for_each(|x| *x -= mean);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_square_images_are_centre_cropped() {
        let mut img = RgbImage::from_pixel(30, 10, image::Rgb([0, 0, 0]));
        for y in 0..10 {
            for x in 10..20 {
                img.put_pixel(x, y, image::Rgb([255, 255, 255]));
            }
        }
        let out = square_resize(&img, 10);
        assert!(out.pixels().all(|p| p.0 == [255, 255, 255]));
    }

    #[test]
    fn normalisation_uses_imagenet_statistics() {
        let img = RgbImage::from_pixel(1, 1, image::Rgb([255, 0, 128]));
        let mut out = [0f32; 3];
        normalise_chw(&img, Normalisation::ImageNet, &mut out);
        assert!((out[0] - (1.0 - 0.485) / 0.229).abs() < 1e-6);
        assert!((out[1] - (-0.456 / 0.224)).abs() < 1e-6);
        normalise_chw(&img, Normalisation::Centred127, &mut out);
        assert_eq!(out, [1.0, -127.0 / 128.0, 1.0 / 128.0]);
    }
}
