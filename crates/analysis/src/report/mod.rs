//! Rendered reports: the quadrant chart as a PNG, and the text painter it uses.

mod heatmap;
mod scatter_png;
mod text;

pub use heatmap::{
    colour_range, diverging_colour, render_quadrant_chart, HeatmapLayout, HeatmapOptions, GREEN,
    RED, YELLOW,
};
pub use scatter_png::render_scatter;
pub use text::{TextPainter, BUNDLED_FONT};

use crate::{Projection, QuadrantChart};
use std::path::{Path, PathBuf};

/// Errors of writing a report file.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ReportError {
    /// The file concerned.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

/// Renders `chart` and writes it to `out` as PNG (temp file + rename); returns its size in
/// pixels.
pub fn save_quadrant_png(
    chart: &QuadrantChart,
    options: &HeatmapOptions,
    out: &Path,
) -> Result<(u32, u32), ReportError> {
    write_png(&render_quadrant_chart(chart, options).0, out)
}

/// Writes `image` to `out` as PNG (temp file + rename); returns its size in pixels.
fn write_png(image: &image::RgbImage, out: &Path) -> Result<(u32, u32), ReportError> {
    let error = |message: String| ReportError {
        path: out.to_path_buf(),
        message,
    };
    let mut png = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| error(format!("cannot encode PNG: {e}")))?;
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| error(e.to_string()))?;
    }
    natview_core::workspace::write_atomic(out, &png).map_err(|e| error(e.to_string()))?;
    Ok((image.width(), image.height()))
}

/// Writes a projection as CSV `id,x,y` (temp file + rename).
pub fn save_projection_csv(projection: &Projection, out: &Path) -> Result<(), ReportError> {
    crate::write_projection_csv(out, projection).map_err(|e| ReportError {
        path: out.to_path_buf(),
        message: e.to_string(),
    })
}

/// Renders a projection coloured by `categories` (see [`render_scatter`]) and writes it to `out`
/// as PNG (temp file + rename); returns its size in pixels.
pub fn save_scatter_png(
    points: &[[f32; 2]],
    categories: &crate::scatter::Categories,
    title: &str,
    note: &str,
    out: &Path,
) -> Result<(u32, u32), ReportError> {
    write_png(&render_scatter(points, categories, title, note), out)
}
