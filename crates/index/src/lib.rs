//! natview-index: nearest-neighbour search over L2-normalised embeddings: an HNSW graph (our own, `graph.rs`) with cosine
//! similarity, persisted with its parameters, and exact (brute-force) search beside it.

// This crate reads files: a size that does not fit is an error, never a silent truncation.
#![deny(clippy::cast_possible_truncation)]

mod exact;
mod graph;
mod hnsw;

pub use exact::{exact_neighbours, exact_neighbours_all, exact_search};
pub use graph::SharedRows;
pub use hnsw::{HnswParams, NeighbourIndex, BUILD_CHUNK, MAX_ROWS};

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// One search result.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Neighbour {
    /// Item id.
    pub id: usize,
    /// Cosine similarity to the query.
    pub similarity: f32,
}

/// Errors of the index module.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// Reading or writing index files failed.
    #[error("{path}: {message}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The index on disk does not belong to the current embeddings.
    #[error("{path}: index is stale ({reason})")]
    Stale {
        /// The index parameter file.
        path: PathBuf,
        /// Why it cannot be used.
        reason: String,
    },
    /// The parameters are not usable.
    #[error("invalid index parameters: {0}")]
    Params(String),
    /// A query of the wrong dimension.
    #[error("query has dimension {got}, the index holds {expected}-d vectors")]
    Dimension {
        /// Dimension of the indexed vectors.
        expected: usize,
        /// Dimension of the query.
        got: usize,
    },
    /// More vectors than an index holds (node ids are `u32`).
    #[error(
        "{rows} vectors: an HNSW index holds at most {max} (u32 node ids); search exactly or split the dataset"
    )]
    TooManyRows {
        /// Vectors asked for.
        rows: usize,
        /// The most an index holds.
        max: usize,
    },
    /// The build was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// Vectors handed to an index are not the ones it was built from.
    #[error("the index does not match these embeddings: {0}")]
    Mismatch(String),
    /// A tensor operation failed during exact search.
    #[error("exact search failed: {0}")]
    Candle(#[from] candle_core::Error),
}
