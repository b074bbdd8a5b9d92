//! `natview export`: a workspace's embeddings with their items (id, path, listing, label and
//! metadata) in the formats other tools read.

use super::{projector, InteropError};
use natview_core::workspace::write_atomic;
use natview_pipeline::thumbs::ThumbnailStore;
use natview_pipeline::EmbeddingSet;
use std::path::{Path, PathBuf};

/// The export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// TensorBoard's Embedding Projector: a folder of `vectors.tsv`, `metadata.tsv`,
    /// `sprite.png` and `projector_config.pbtxt`.
    TbProjector,
    /// A folder of `embeddings.npy` (N × D float32) and `items.jsonl` (one item per row).
    Npy,
    /// One Parquet file: `id`, `path`, `listing`, `label`, `metadata` (JSON) and `embedding`
    /// (a fixed-size list of float32).
    Parquet,
    /// One JSON object per line: the item's fields and its `embedding`.
    Jsonl,
}

impl ExportFormat {
    /// Every format, in the order offered.
    pub const ALL: [ExportFormat; 4] = [
        ExportFormat::TbProjector,
        ExportFormat::Npy,
        ExportFormat::Parquet,
        ExportFormat::Jsonl,
    ];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ExportFormat::TbProjector => "tb-projector",
            ExportFormat::Npy => "npy",
            ExportFormat::Parquet => "parquet",
            ExportFormat::Jsonl => "jsonl",
        }
    }

    /// The default output beside the workspace's files: a folder, or a file with an extension.
    pub fn default_output(self, workspace_dir: &Path, model: &str) -> PathBuf {
        let export = workspace_dir.join("export");
        match self {
            ExportFormat::TbProjector => export.join(format!("projector-{model}")),
            ExportFormat::Npy => export.join(format!("npy-{model}")),
            ExportFormat::Parquet => export.join(format!("{model}.parquet")),
            ExportFormat::Jsonl => export.join(format!("{model}.jsonl")),
        }
    }
}

impl std::str::FromStr for ExportFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ExportFormat::ALL
            .into_iter()
            .find(|f| f.name() == s.to_ascii_lowercase())
            .ok_or_else(|| {
                let names: Vec<&str> = ExportFormat::ALL.iter().map(|f| f.name()).collect();
                format!("unknown export format `{s}` ({})", names.join(", "))
            })
    }
}

/// What an export wrote.
#[derive(Debug, Clone)]
pub struct ExportReport {
    /// The file or folder written.
    pub path: PathBuf,
    /// Rows written.
    pub rows: usize,
    /// TensorBoard: whether a sprite of thumbnails was included.
    pub sprite: bool,
}

/// Writes `set` as `format` to `out` (a folder for the projector and npy, else a file).
pub fn export(
    set: &EmbeddingSet,
    format: ExportFormat,
    out: &Path,
    thumbnails: Option<&ThumbnailStore>,
) -> Result<ExportReport, InteropError> {
    let mut sprite = false;
    match format {
        ExportFormat::TbProjector => {
            sprite = projector::write_projector(set, thumbnails, out, &set.meta.encoder.describe())?
        }
        ExportFormat::Npy => {
            std::fs::create_dir_all(out).map_err(|e| InteropError::io(out, e))?;
            let vectors = out.join("embeddings.npy");
            natview_core::npy::write_matrix(&vectors, &set.matrix)
                .map_err(|e| InteropError::io(&vectors, e))?;
            let items = out.join("items.jsonl");
            write_atomic(&items, jsonl(set, false)?.as_bytes())
                .map_err(|e| InteropError::io(&items, e))?;
        }
        ExportFormat::Jsonl => {
            if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| InteropError::io(dir, e))?;
            }
            write_atomic(out, jsonl(set, true)?.as_bytes())
                .map_err(|e| InteropError::io(out, e))?;
        }
        ExportFormat::Parquet => write_parquet(set, out)?,
    }
    Ok(ExportReport {
        path: out.to_path_buf(),
        rows: set.items.len(),
        sprite,
    })
}

#[cfg(feature = "parquet")]
fn write_parquet(set: &EmbeddingSet, out: &Path) -> Result<(), InteropError> {
    super::parquet_io::write_set(set, out)
}

#[cfg(not(feature = "parquet"))]
fn write_parquet(_set: &EmbeddingSet, out: &Path) -> Result<(), InteropError> {
    Err(InteropError::invalid(
        out,
        "this natview was built without Parquet support (cargo feature `parquet`)",
    ))
}

/// One JSON object per item: `id`, `path`, `listing`, `label`, `metadata` and, with
/// `vectors`, `embedding`.
fn jsonl(set: &EmbeddingSet, vectors: bool) -> Result<String, InteropError> {
    use rayon::prelude::*;
    let dim = set.matrix.dim;
    let lines = set
        .items
        .par_iter()
        .map(|item| {
            let mut object = serde_json::json!({
                "id": item.id,
                "path": item.path.to_string_lossy(),
                "listing": item.listing,
                "label": item.label,
                "metadata": item.metadata.iter().map(|(k, v)| (k.clone(), serde_json::Value::from(v.clone()))).collect::<serde_json::Map<_, _>>(),
            });
            if vectors {
                object["embedding"] =
                    serde_json::Value::from(set.matrix.data[item.id * dim..(item.id + 1) * dim].to_vec());
            }
            serde_json::to_string(&object)
        })
        .collect::<Result<Vec<String>, _>>()
        .map_err(|e| InteropError::invalid(Path::new("items"), e))?;
    let mut text = lines.join("\n");
    text.push('\n');
    Ok(text)
}
