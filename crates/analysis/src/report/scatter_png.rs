//! A 2-D projection as a PNG for reports: every point drawn by natview's scatter rasteriser
//! (discs, or density shading for very many points), coloured by category, with a title, a
//! caption and the legend.

use super::text::TextPainter;
use crate::scatter::{
    bounds_of, rasterise, Categories, PointGrid, ScatterLayer, ScatterStyle, ScatterView,
};
use image::{Rgb, RgbImage};
use std::sync::Arc;

const PLOT_PX: usize = 900;
const LEGEND_PX: u32 = 300;
const TOP_PX: u32 = 56;
const INK: [u8; 3] = [20, 20, 20];
const MUTED: [u8; 3] = [90, 90, 90];
const BACKGROUND: [u8; 3] = [255, 255, 255];

/// Draws `points` coloured by `categories` with a `title` line and a `note` line.
pub fn render_scatter(
    points: &[[f32; 2]],
    categories: &Categories,
    title: &str,
    note: &str,
) -> RgbImage {
    let width = PLOT_PX as u32 + LEGEND_PX;
    let height = PLOT_PX as u32 + TOP_PX;
    let mut image = RgbImage::from_pixel(width, height, Rgb(BACKGROUND));
    let text = TextPainter::new();
    text.draw(&mut image, title, 16.0, 8.0, 20.0, INK);
    text.draw(&mut image, note, 16.0, 32.0, 14.0, MUTED);
    let b = bounds_of(points);
    if b[0] <= b[2] {
        // A square view around the points with a 3 % margin (layouts have no preferred axis).
        let side = f64::from((b[2] - b[0]).max(b[3] - b[1])).max(1e-6) * 1.06;
        let centre = [f64::from(b[0] + b[2]) / 2.0, f64::from(b[1] + b[3]) / 2.0];
        let view = ScatterView {
            min: [centre[0] - side / 2.0, centre[1] - side / 2.0],
            max: [centre[0] + side / 2.0, centre[1] + side / 2.0],
            width: PLOT_PX,
            height: PLOT_PX,
        };
        let layer = ScatterLayer {
            points: Arc::new(points.to_vec()),
            grid: Arc::new(PointGrid::build(points)),
            colours: categories.colours.clone(),
            palette: crate::scatter::full_palette(),
        };
        let style = ScatterStyle {
            point_radius_px: if points.len() > 20_000 { 1.2 } else { 2.5 },
            discs_below: 400_000,
            thumbnails_below: 0,
            background: BACKGROUND,
            ..ScatterStyle::default()
        };
        let raster = rasterise(&layer, view, style);
        for (i, px) in raster.rgba.chunks_exact(4).enumerate() {
            let (x, y) = ((i % PLOT_PX) as u32, (i / PLOT_PX) as u32 + TOP_PX);
            image.put_pixel(x, y, Rgb([px[0], px[1], px[2]]));
        }
    }
    let mut y = TOP_PX as f32 + 8.0;
    for (name, colour) in &categories.legend {
        if y > height as f32 - 24.0 {
            break;
        }
        let x0 = PLOT_PX as u32 + 12;
        for dy in 0..12 {
            for dx in 0..12 {
                image.put_pixel(x0 + dx, y as u32 + 3 + dy, Rgb(*colour));
            }
        }
        text.draw(&mut image, name, x0 as f32 + 20.0, y, 14.0, INK);
        y += 20.0;
    }
    image
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_land_in_their_colour() {
        let points = vec![[0.0, 0.0], [10.0, 10.0]];
        let categories = crate::scatter::categorical(2, |i| Some(["a", "b"][i]));
        let image = render_scatter(&points, &categories, "title", "note");
        assert_eq!(image.width(), PLOT_PX as u32 + LEGEND_PX);
        let plot_has = |colour: [u8; 3]| {
            (0..PLOT_PX as u32)
                .any(|x| (TOP_PX..image.height()).any(|y| image.get_pixel(x, y).0 == colour))
        };
        assert!(plot_has(categories.legend[0].1) && plot_has(categories.legend[1].1));
    }
}
