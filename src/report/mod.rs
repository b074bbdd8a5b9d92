//! Rendered reports: the quadrant chart as a PNG, and the text painter it uses.

mod heatmap;
mod text;

pub use heatmap::{
    colour_range, diverging_colour, render_quadrant_chart, HeatmapLayout, HeatmapOptions, GREEN,
    RED, YELLOW,
};
pub use text::{TextPainter, BUNDLED_FONT};

use crate::analysis::{Projection, QuadrantChart};
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
    let error = |message: String| ReportError {
        path: out.to_path_buf(),
        message,
    };
    let (image, _) = render_quadrant_chart(chart, options);
    let mut png = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| error(format!("cannot encode PNG: {e}")))?;
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| error(e.to_string()))?;
    }
    crate::workspace::write_atomic(out, &png).map_err(|e| error(e.to_string()))?;
    Ok((image.width(), image.height()))
}

/// Writes a projection as CSV `id,x,y` (temp file + rename).
pub fn save_projection_csv(projection: &Projection, out: &Path) -> Result<(), ReportError> {
    let mut csv = String::from("id,x,y\n");
    for (id, p) in projection.points.iter().enumerate() {
        csv.push_str(&format!("{id},{},{}\n", p[0], p[1]));
    }
    crate::workspace::write_atomic(out, csv.as_bytes()).map_err(|e| ReportError {
        path: out.to_path_buf(),
        message: e.to_string(),
    })
}
