//! natview-report: a shareable report on an encoder of a dataset — one self-contained HTML file
//! with its listing-retrieval metrics beside raw pixels, its representation health, the
//! quadrant chart, a PCA layout, sample neighbours with thumbnails and, when a second encoder
//! is named, what changed between them (the diff with both layouts in one frame). The CLI
//! (`natview report`) and the app (File → Export report) both call [`gather_report`] and
//! [`write_report`].

#![forbid(unsafe_code)]

mod gather;
mod html;
mod thumbs;

pub use gather::{
    gather_report, DiffListing, DiffSection, NeighbourRow, ReportData, ReportRequest, Thumb,
};
pub use html::{escape, render_html};

use std::path::{Path, PathBuf};

/// Errors of making a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Embedding or evaluating failed.
    #[error(transparent)]
    Pipeline(#[from] natview_pipeline::PipelineError),
    /// An analysis failed.
    #[error(transparent)]
    Analysis(#[from] natview_analysis::AnalysisError),
    /// The diff failed.
    #[error(transparent)]
    Diff(#[from] natview_train::diff_run::DiffRunError),
    /// The report could not be written.
    #[error("{path}: {message}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Stopped by the caller.
    #[error("cancelled")]
    Cancelled,
    /// Anything else, described.
    #[error("{0}")]
    Other(String),
}

/// Renders `data` and writes it to `out` (temp file + rename); returns the page's size in
/// bytes.
pub fn write_report(data: &ReportData, out: &Path) -> Result<usize, ReportError> {
    let page = render_html(data);
    let error = |message: String| ReportError::Write {
        path: out.to_path_buf(),
        message,
    };
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| error(e.to_string()))?;
    }
    natview_core::workspace::write_atomic(out, page.as_bytes())
        .map_err(|e| error(e.to_string()))?;
    Ok(page.len())
}

/// `image` encoded as PNG.
pub(crate) fn png_bytes(image: &image::RgbImage) -> Result<Vec<u8>, String> {
    let mut png = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| format!("cannot encode PNG: {e}"))?;
    Ok(png)
}
