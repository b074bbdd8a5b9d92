//! Embeddings in the formats other tools read and write: importing vectors computed elsewhere
//! (`.npy`, `.safetensors`, Parquet), exporting a workspace's embeddings with their items
//! (TensorBoard projector, `.npy`, Parquet, JSON lines), and sharded embedding jobs.

mod export;
mod import;
#[cfg(feature = "milvus")]
pub mod milvus;
#[cfg(feature = "parquet")]
mod parquet_io;
mod projector;
mod shard;

pub use export::{export, ExportFormat, ExportReport};
pub use import::{import_embeddings, read_vectors, ImportReport, ImportRequest, Vectors};
pub use shard::{merge_shards, shard_items, MergeReport, Shard};

use std::path::PathBuf;

/// Errors of importing, exporting and merging.
#[derive(Debug, thiserror::Error)]
pub enum InteropError {
    /// A file could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A file was read but its contents cannot be used as asked.
    #[error("{path}: {message}")]
    Invalid {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A workspace or pipeline step failed.
    #[error(transparent)]
    Workspace(#[from] crate::workspace::WorkspaceError),
}

impl InteropError {
    pub(crate) fn io(path: &std::path::Path, message: impl std::fmt::Display) -> Self {
        InteropError::Io {
            path: path.to_path_buf(),
            message: message.to_string(),
        }
    }

    pub(crate) fn invalid(path: &std::path::Path, message: impl std::fmt::Display) -> Self {
        InteropError::Invalid {
            path: path.to_path_buf(),
            message: message.to_string(),
        }
    }
}
