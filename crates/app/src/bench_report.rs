//! What `natview-bench gui` reports: frame-time summaries, the report itself, resident memory.

use super::frame_stats::percentile;
use serde::Serialize;

/// Frame times of one phase, in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FrameTimes {
    /// Frames measured.
    pub frames: usize,
    /// eframe's CPU time per frame (UI, tessellation, GL calls): median.
    pub cpu_p50_ms: f64,
    /// … 95th percentile.
    pub cpu_p95_ms: f64,
    /// … maximum.
    pub cpu_max_ms: f64,
    /// Time between frame starts: median.
    pub interval_p50_ms: f64,
    /// … 95th percentile.
    pub interval_p95_ms: f64,
}

/// What was measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GuiBenchReport {
    /// The dataset.
    pub dataset: String,
    /// Images and listings.
    pub images: usize,
    /// Listings.
    pub listings: usize,
    /// The encoder.
    pub encoder: String,
    /// Whether the app embedded the dataset (no fresh embeddings in the workspace).
    pub embedded_now: bool,
    /// From start to the first frame showing the gallery (a preview while embedding).
    pub first_gallery_ms: f64,
    /// … to the first screen of gallery thumbnails drawn.
    pub gallery_thumbnails_ms: f64,
    /// … to the dataset's full session (embedded, indexed, thumbnail file): neighbours work.
    pub session_ms: Option<f64>,
    /// … to every job idle (the PCA and the quadrant chart started on opening done too);
    /// `None` if stopped early.
    pub ready_ms: Option<f64>,
    /// Images per second embedded by the app's open job (when it embedded).
    pub app_embedding_images_per_s: Option<f64>,
    /// When the open job entered each of its phases (ms from start).
    pub open_phases: Vec<(String, f64)>,
    /// Listings left by the gallery filter, and its time.
    pub filter_listings: usize,
    /// Gallery filtering time (ms).
    pub filter_ms: f64,
    /// From start to the projection drawn.
    pub projection_ms: Option<f64>,
    /// Dragging the projection with every point in view.
    pub pan_all: FrameTimes,
    /// Points in view then.
    pub pan_all_in_view: usize,
    /// Dragging zoomed in, with thumbnails on the points.
    pub pan_zoomed: FrameTimes,
    /// Points in view then, and thumbnails drawn on them.
    pub pan_zoomed_in_view: usize,
    /// Thumbnails drawn on points (last zoomed frame).
    pub thumbnails_on_points: usize,
    /// Click on a point → its neighbours drawn, per click (ms).
    pub click_to_neighbours_ms: Vec<f64>,
    /// A lasso drawn over the zoomed-out projection: frame times while drawing it.
    pub lasso: FrameTimes,
    /// Items the lasso selected, and the time to find them (ms).
    pub lasso_selected: usize,
    /// Time to find the lasso's items (ms).
    pub lasso_ms: f64,
    /// Resident memory at the end (MB), and the peak.
    pub rss_mb: f64,
    /// Peak resident memory (MB).
    pub peak_rss_mb: f64,
    /// Resident memory when the dataset was ready, and after the projection was drawn (MB).
    pub rss_at_ready_mb: f64,
    /// Resident memory after the projection was drawn (MB).
    pub rss_after_projection_mb: f64,
    /// The embedding matrix in memory (MB): the part of the memory that grows with N × dim.
    pub embeddings_mb: f64,
    /// Thumbnails held in the window's atlas at the end.
    pub atlas_thumbnails: usize,
    /// The error the window showed at the end, if any.
    pub error: Option<String>,
}

pub(super) fn frame_times(cpu: &[f64], intervals: &[f64]) -> FrameTimes {
    FrameTimes {
        frames: cpu.len(),
        cpu_p50_ms: percentile(cpu, 0.5),
        cpu_p95_ms: percentile(cpu, 0.95),
        cpu_max_ms: percentile(cpu, 1.0),
        interval_p50_ms: percentile(intervals, 0.5),
        interval_p95_ms: percentile(intervals, 0.95),
    }
}

/// Resident and peak resident memory in MB (Linux `/proc/self/status`).
pub(super) fn memory_mb() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}
