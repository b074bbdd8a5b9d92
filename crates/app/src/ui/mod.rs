//! The views of the desktop app, one file each. Views draw from the session and the results of
//! background jobs and push [`Command`](crate::Command)s; they never compute in the frame.

mod diff;
mod diff_layout;
mod finetune;
mod finetune_labels;
mod gallery;
mod health;
mod labelling;
mod menu;
mod metrics;
mod neighbours;
mod probes;
mod quadrant;
mod review;
mod review_images;
mod scatter;
mod scatter_canvas;
mod scatter_overlay;
mod status_bar;
pub mod theme;
mod thumbnails;

pub use diff::{diff_ui, DiffViewState};
pub use finetune::{finetune_report_ui, finetune_ui, FinetuneViewState};
pub use gallery::{gallery_ui, GalleryState};
pub use labelling::{item_labels_ui, labels_view_ui, verdict_ui, LabellingState};
pub use menu::{menu_bar_ui, view_tabs_ui, waiting_for_embeddings_ui, welcome_ui};
pub use metrics::metrics_ui;
pub use neighbours::neighbours_ui;
pub use quadrant::{quadrant_ui, ListingChoice, QuadrantViewState};
pub use review::{bulk_confirm_ui, review_ui, ReviewViewState};
pub use scatter::{scatter_ui, ColourBy, ScatterState, Tool, FAITHFULNESS_K};
pub use scatter_canvas::Canvas;
pub use status_bar::status_bar_ui;
pub use thumbnails::ThumbnailCache;
