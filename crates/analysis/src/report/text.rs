//! Text drawn into RGB images with the bundled DejaVu Sans font (ab_glyph), for charts.

use ab_glyph::{point, Font, FontRef, PxScale, ScaleFont};
use image::RgbImage;

/// The bundled DejaVu Sans font (Bitstream Vera licence, see assets/fonts/).
pub static BUNDLED_FONT: &[u8] = include_bytes!("../../../../assets/fonts/DejaVuSans.ttf");

/// Draws text with the bundled font.
pub struct TextPainter {
    font: FontRef<'static>,
}

impl TextPainter {
    /// Loads the bundled font.
    pub fn new() -> Self {
        // The font is compiled into the binary; it parses or the build is broken.
        #[expect(
            clippy::expect_used,
            reason = "BUNDLED_FONT is DejaVuSans.ttf compiled in by include_bytes!: the same \
                      bytes in every run, and they parse (the report tests draw with them)"
        )]
        let font = FontRef::try_from_slice(BUNDLED_FONT).expect("bundled DejaVu Sans font parses");
        Self { font }
    }

    /// Width in pixels of `text` at `size_px`.
    pub fn width(&self, text: &str, size_px: f32) -> f32 {
        let scaled = self.font.as_scaled(PxScale::from(size_px));
        let mut width = 0.0;
        let mut previous = None;
        for c in text.chars() {
            let id = scaled.glyph_id(c);
            if let Some(p) = previous {
                width += scaled.kern(p, id);
            }
            width += scaled.h_advance(id);
            previous = Some(id);
        }
        width
    }

    /// Draws `text` with its top-left corner at (`x`, `y`), blending `colour` over the image.
    pub fn draw(
        &self,
        image: &mut RgbImage,
        text: &str,
        x: f32,
        y: f32,
        size_px: f32,
        colour: [u8; 3],
    ) {
        let scale = PxScale::from(size_px);
        let scaled = self.font.as_scaled(scale);
        let baseline = y + scaled.ascent();
        let mut caret = x;
        let mut previous = None;
        for c in text.chars() {
            let id = scaled.glyph_id(c);
            if let Some(p) = previous {
                caret += scaled.kern(p, id);
            }
            let glyph = id.with_scale_and_position(scale, point(caret, baseline));
            caret += scaled.h_advance(id);
            previous = Some(id);
            let Some(outlined) = self.font.outline_glyph(glyph) else {
                continue;
            };
            let bounds = outlined.px_bounds();
            outlined.draw(|gx, gy, coverage| {
                let px = bounds.min.x as i64 + gx as i64;
                let py = bounds.min.y as i64 + gy as i64;
                if px < 0 || py < 0 || px >= image.width() as i64 || py >= image.height() as i64 {
                    return;
                }
                let pixel = image.get_pixel_mut(px as u32, py as u32);
                let a = coverage.clamp(0.0, 1.0);
                for ch in 0..3 {
                    pixel[ch] =
                        (pixel[ch] as f32 * (1.0 - a) + colour[ch] as f32 * a).round() as u8;
                }
            });
        }
    }
}

impl Default for TextPainter {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_leaves_ink_inside_its_measured_box() {
        let painter = TextPainter::new();
        let mut img = RgbImage::from_pixel(100, 30, image::Rgb([255, 255, 255]));
        painter.draw(&mut img, "AUC 0.9", 2.0, 2.0, 14.0, [0, 0, 0]);
        let width = painter.width("AUC 0.9", 14.0);
        assert!(width > 30.0 && width < 80.0, "{width}");
        let dark: Vec<u32> = img
            .enumerate_pixels()
            .filter(|(_, _, p)| p[0] < 128)
            .map(|(x, _, _)| x)
            .collect();
        assert!(!dark.is_empty());
        assert!(dark.iter().all(|&x| (x as f32) < 2.0 + width + 1.0));
    }
}
