//! natview-core: what every other natview crate stands on — items and datasets (listings of
//! views, manifests, image decoding), the workspace beside a dataset (its paths, the one atomic
//! writer, the lock), the dense matrix and its kernels, `.npy` files, seeded randomness, weights
//! and demo location at run time, and the background jobs (progress, cancel).
//!
//! It knows nothing of encoders, indexes or analyses: those crates build on it.

// This crate reads files: a size that does not fit is an error, never a silent truncation.
#![deny(clippy::cast_possible_truncation)]

pub mod dataset;
pub mod jobs;
pub mod linalg;
pub mod locate;
pub mod npy;
pub mod pixels;
pub mod rng;
pub mod workspace;
