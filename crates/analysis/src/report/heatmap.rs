//! The quadrant chart as a PNG: the similarity matrix on a diverging red → yellow → green
//! scale, borders around listing blocks, listing names, a legend and the statistics.

use super::text::TextPainter;
use crate::QuadrantChart;
use image::{Rgb, RgbImage};

/// Dissimilar end of the scale (ColorBrewer RdYlGn).
pub const RED: [u8; 3] = [215, 48, 39];
/// Middle of the scale.
pub const YELLOW: [u8; 3] = [255, 255, 191];
/// Similar end of the scale.
pub const GREEN: [u8; 3] = [26, 152, 80];
const BORDER: [u8; 3] = [40, 40, 40];
const INK: [u8; 3] = [20, 20, 20];
const MUTED: [u8; 3] = [90, 90, 90];

/// Colour of position `t` in `[0, 1]` on the red → yellow → green scale.
pub fn diverging_colour(t: f32) -> [u8; 3] {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let (from, to, u) = if t < 0.5 {
        (RED, YELLOW, t * 2.0)
    } else {
        (YELLOW, GREEN, (t - 0.5) * 2.0)
    };
    let mut out = [0u8; 3];
    for c in 0..3 {
        out[c] = (from[c] as f32 + (to[c] as f32 - from[c] as f32) * u).round() as u8;
    }
    out
}

/// Options of the rendering.
#[derive(Debug, Clone, Default)]
pub struct HeatmapOptions {
    /// Fixed colour range `(low, high)`; default: the off-diagonal minimum and maximum.
    pub range: Option<(f32, f32)>,
    /// Title line.
    pub title: String,
    /// Extra caption line (e.g. the model description).
    pub note: String,
}

impl HeatmapOptions {
    /// The standard title and caption of `chart`, drawn with the model described by `model`.
    pub fn for_chart(chart: &QuadrantChart, model: &str, range: Option<(f32, f32)>) -> Self {
        Self {
            range,
            title: format!(
                "Quadrant chart: {} listings × {} views",
                chart.listings.len(),
                chart.views
            ),
            note: format!("model: {model}"),
        }
    }
}

/// Where the matrix lies in the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeatmapLayout {
    /// Left edge of the matrix.
    pub left_px: u32,
    /// Top edge of the matrix.
    pub top_px: u32,
    /// Side of one cell.
    pub cell_px: u32,
    /// Cells per side.
    pub cells: u32,
}

impl HeatmapLayout {
    /// Centre pixel of cell (`row`, `col`).
    pub fn cell_centre(&self, row: usize, col: usize) -> (u32, u32) {
        (
            self.left_px + col as u32 * self.cell_px + self.cell_px / 2,
            self.top_px + row as u32 * self.cell_px + self.cell_px / 2,
        )
    }
}

/// The colour range used for a chart: `options.range`, else the 1st to 99th percentile of the
/// off-diagonal similarities (so that one odd image does not wash out the rest; values outside
/// the range take the end colours).
pub fn colour_range(chart: &QuadrantChart, options: &HeatmapOptions) -> (f32, f32) {
    if let Some(range) = options.range {
        return range;
    }
    let n = chart.size();
    let mut values: Vec<f32> = (0..n)
        .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
        .map(|(i, j)| chart.at(i, j))
        .filter(|v| v.is_finite())
        .collect();
    if values.is_empty() {
        return (-1.0, 1.0);
    }
    values.sort_by(f32::total_cmp);
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    let (lo, hi) = (at(0.01), at(0.99));
    if hi - lo < 1e-6 {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    }
}

const LABEL_PX: f32 = 12.0;
const TITLE_PX: f32 = 16.0;
const CAPTION_PX: f32 = 13.0;
const MAX_LABEL_CHARS: usize = 30;

fn short(name: &str) -> String {
    if name.chars().count() <= MAX_LABEL_CHARS {
        name.to_string()
    } else {
        let mut s: String = name.chars().take(MAX_LABEL_CHARS - 1).collect();
        s.push('…');
        s
    }
}

/// Renders the chart; returns the image and where the matrix cells are.
pub fn render_quadrant_chart(
    chart: &QuadrantChart,
    options: &HeatmapOptions,
) -> (RgbImage, HeatmapLayout) {
    let painter = TextPainter::new();
    let n = chart.size() as u32;
    let cell_px = (720 / n.max(1)).clamp(2, 28);
    let matrix_px = cell_px * n;
    let labels: Vec<String> = chart
        .listings
        .iter()
        .enumerate()
        .map(|(i, l)| format!("{} {}", i + 1, short(l)))
        .collect();
    let label_width = labels
        .iter()
        .map(|l| painter.width(l, LABEL_PX))
        .fold(0.0f32, f32::max)
        .ceil() as u32;
    let left_px = label_width + 16;
    let top_px = 76;
    let legend_left = left_px + matrix_px + 24;
    let legend_width = 18;
    let (lo, hi) = colour_range(chart, options);
    let tick_labels = [hi, (lo + hi) / 2.0, lo].map(|v| format!("{v:.2}"));
    let tick_width = tick_labels
        .iter()
        .map(|t| painter.width(t, LABEL_PX))
        .fold(0.0f32, f32::max)
        .ceil() as u32;
    let s = &chart.stats;
    let caption = [
        format!(
            "intra (same listing): mean {:.3}, median {:.3}  |  inter: mean {:.3}, median {:.3}",
            s.intra_mean, s.intra_median, s.inter_mean, s.inter_median
        ),
        format!(
            "gap {:.3}  |  ROC AUC {:.3}  |  {} listings × {} views, {} intra / {} inter pairs",
            s.gap,
            s.auc,
            chart.listings.len(),
            chart.views,
            s.intra_pairs,
            s.inter_pairs
        ),
        options.note.clone(),
    ];
    let caption_width = caption
        .iter()
        .map(|c| painter.width(c, CAPTION_PX))
        .fold(0.0f32, f32::max)
        .ceil() as u32;
    let width = (legend_left + legend_width + 8 + tick_width + 16)
        .max(caption_width + 32)
        .max(painter.width(&options.title, TITLE_PX).ceil() as u32 + 32);
    let height = top_px + matrix_px + 24 + 3 * 20 + 12;
    let mut image = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));

    painter.draw(&mut image, &options.title, 16.0, 10.0, TITLE_PX, INK);
    painter.draw(
        &mut image,
        "rows and columns: listings × views; green = similar, red = dissimilar; colours clamp at the legend's ends",
        16.0,
        30.0,
        LABEL_PX,
        MUTED,
    );

    for i in 0..n {
        for j in 0..n {
            let v = chart.at(i as usize, j as usize);
            let colour = Rgb(diverging_colour((v - lo) / (hi - lo)));
            for y in 0..cell_px {
                for x in 0..cell_px {
                    image.put_pixel(left_px + j * cell_px + x, top_px + i * cell_px + y, colour);
                }
            }
        }
    }
    // Block borders: a line at every listing boundary, and a frame.
    let block_px = cell_px * chart.views as u32;
    for b in 0..=chart.listings.len() as u32 {
        let offset = (b * block_px).min(matrix_px.saturating_sub(1));
        for t in 0..matrix_px {
            image.put_pixel(left_px + offset, top_px + t, Rgb(BORDER));
            image.put_pixel(left_px + t, top_px + offset, Rgb(BORDER));
        }
    }
    // Listing names on the left, block numbers on top.
    // When blocks are shorter than a line of text, name every `label_stride`-th listing.
    let label_stride = ((LABEL_PX * 1.15) / block_px.max(1) as f32).ceil().max(1.0) as usize;
    let widest_number = painter.width(&labels.len().to_string(), LABEL_PX) + 6.0;
    let number_stride = (widest_number / block_px.max(1) as f32).ceil().max(1.0) as usize;
    for (b, label) in labels.iter().enumerate() {
        let centre = top_px as f32 + (b as f32 + 0.5) * block_px as f32;
        let x = left_px as f32 - 8.0 - painter.width(label, LABEL_PX);
        if b % label_stride == 0 {
            painter.draw(&mut image, label, x, centre - LABEL_PX * 0.6, LABEL_PX, INK);
        }
        let number = (b + 1).to_string();
        let number_x = left_px as f32 + (b as f32 + 0.5) * block_px as f32
            - painter.width(&number, LABEL_PX) / 2.0;
        if b % number_stride == 0 {
            painter.draw(
                &mut image,
                &number,
                number_x,
                top_px as f32 - 17.0,
                LABEL_PX,
                MUTED,
            );
        }
    }
    // Legend: a vertical bar from high (top) to low (bottom) with three ticks.
    for y in 0..matrix_px {
        let t = 1.0 - y as f32 / (matrix_px.max(2) - 1) as f32;
        for x in 0..legend_width {
            image.put_pixel(legend_left + x, top_px + y, Rgb(diverging_colour(t)));
        }
    }
    for (k, tick) in tick_labels.iter().enumerate() {
        let y = top_px as f32 + k as f32 * matrix_px as f32 / 2.0 - LABEL_PX * 0.6;
        let y = y.clamp(top_px as f32 - 4.0, (top_px + matrix_px) as f32 - LABEL_PX);
        painter.draw(
            &mut image,
            tick,
            (legend_left + legend_width + 6) as f32,
            y,
            LABEL_PX,
            INK,
        );
    }
    painter.draw(
        &mut image,
        "cosine",
        legend_left as f32 - 4.0,
        top_px as f32 - 20.0,
        LABEL_PX,
        MUTED,
    );
    for (k, line) in caption.iter().enumerate() {
        let y = (top_px + matrix_px + 16 + k as u32 * 20) as f32;
        painter.draw(
            &mut image,
            line,
            16.0,
            y,
            CAPTION_PX,
            if k < 2 { INK } else { MUTED },
        );
    }
    (
        image,
        HeatmapLayout {
            left_px,
            top_px,
            cell_px,
            cells: n,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_runs_red_yellow_green() {
        assert_eq!(diverging_colour(0.0), RED);
        assert_eq!(diverging_colour(0.5), YELLOW);
        assert_eq!(diverging_colour(1.0), GREEN);
        assert_eq!(diverging_colour(f32::NAN), RED);
    }
}
