//! natview: explore what an image encoder learned. Load a dataset of listings (several views
//! of one item each), embed it with a candle encoder, index it with HNSW, and measure and show
//! how close views of one listing are compared with other listings.
//!
//! This library is the umbrella of natview's crates, under the module names the command line
//! and the integration tests use; each crate says what it is for (see `docs/architecture.md`).
//! Only `natview-app` (the `gui` feature) uses egui; everything else runs headless.

#![forbid(unsafe_code)]

#[cfg(feature = "gui")]
pub use natview_app as app;
#[cfg(feature = "gui")]
pub use natview_app::ui;

pub use natview_analysis as analysis;
pub use natview_analysis::{report, scatter};
pub use natview_core::{dataset, jobs, linalg, locate, npy, rng};
pub use natview_encoder as encoder;
pub use natview_index as index;
pub use natview_interop as interop;
pub use natview_labels as labels;
pub use natview_pipeline as pipeline;
pub use natview_pipeline::{layouts, thumbs};
/// The shareable HTML report (natview-report).
pub use natview_report as html_report;
pub use natview_train as train;
pub use natview_train::catalogue;

/// The workspace beside a dataset: its paths, atomic writer and lock (natview-core), the
/// embedding files (natview-pipeline) and the saved layouts (natview-analysis).
pub mod workspace {
    pub use natview_analysis::{
        read_projection_csv, write_projection_csv, ProjectionFiles, ProjectionMeta, SavedProjection,
    };
    pub use natview_core::workspace::*;
    pub use natview_pipeline::store::*;
}
