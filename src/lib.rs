//! natview: explore what an image encoder learned. Load a dataset of listings (several views
//! of one item each), embed it with a candle encoder, index it with HNSW, and measure and show
//! how close views of one listing are compared with other listings.
//!
//! Only the `app`/`ui` modules (the GUI, behind the default `gui` feature) use egui; everything
//! else runs headless.

pub mod analysis;
#[cfg(feature = "gui")]
pub mod app;
pub mod catalogue;
pub mod dataset;
pub mod encoder;
pub mod index;
pub mod interop;
pub mod jobs;
pub mod labels;
pub mod layouts;
pub mod linalg;
pub mod locate;
#[cfg(test)]
mod mutated_files;
pub mod npy;
pub mod pipeline;
pub mod report;
pub mod rng;
pub mod scatter;
pub mod thumbs;
pub mod train;
#[cfg(feature = "gui")]
pub mod ui;
pub mod workspace;
