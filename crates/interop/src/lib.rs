//! natview-interop: embeddings in the formats other tools read and write: importing vectors computed elsewhere
//! (`.npy`, `.safetensors`, Parquet), exporting a workspace's embeddings with their items
//! (TensorBoard projector, `.npy`, Parquet, JSON lines), and sharded embedding jobs.

// This crate reads files: a size that does not fit is an error, never a silent truncation.
#![deny(clippy::cast_possible_truncation)]
#![forbid(unsafe_code)]

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

use natview_core::dataset::{Dataset, Item};
use natview_core::linalg::Matrix;
use natview_core::workspace::Workspace;
use natview_encoder::EncoderSpec;
use natview_pipeline::store::{EmbeddingStore, EmbeddingsMeta};
use natview_pipeline::EmbeddingSet;
use std::path::PathBuf;

/// Writes `items` and their `matrix` into `workspace` as `spec`'s embeddings of `dataset`
/// (made with weights `weights_fingerprint`, their images decoded as `image_pipeline` says:
/// empty for rows computed elsewhere); returns the embeddings file and the set.
fn store_set(
    dataset: &Dataset,
    workspace: &Workspace,
    spec: &EncoderSpec,
    (weights_fingerprint, image_pipeline): (String, String),
    (items, matrix): (Vec<Item>, Matrix),
) -> Result<(PathBuf, EmbeddingSet), InteropError> {
    workspace.create()?;
    let items_fingerprint = workspace.write_items(&items)?;
    let meta = EmbeddingsMeta {
        encoder: spec.clone(),
        weights_fingerprint,
        dataset_fingerprint: dataset.fingerprint(),
        items_fingerprint,
        embeddings_fingerprint: EmbeddingStore::fingerprint(&matrix),
        image_pipeline,
    };
    let path = workspace.embeddings_path(&spec.workspace_key());
    EmbeddingStore::save(&path, &matrix, &meta)?;
    let set = EmbeddingSet {
        items,
        matrix,
        meta,
        clusters: None,
    };
    Ok((path, set))
}

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
    Workspace(#[from] natview_core::workspace::WorkspaceError),
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
