//! Datasets: items (images) grouped into listings, loaded from a folder tree, a flat folder or a
//! CSV/JSONL manifest, with a report of every file that was skipped and why.

mod colour;
mod csv_manifest;
mod decode;
mod decode_options;
#[cfg(feature = "heif")]
mod heif;
mod loader;
mod metadata;
mod view_filter;

pub use csv_manifest::csv_field;
pub use decode::{
    decode_rgb, decode_rgb_covering, decode_rgb_covering_with, decode_rgb_noting, flatten_on_white,
    is_supported_extension, rasterise_svg, rasterise_svg_in, DecodeError, Decoded,
    RefusedReference, IMAGE_PIPELINE, MAX_DECODE_BYTES, MAX_IMAGE_PIXELS, MAX_SVG_BYTES,
    SCALE_MARGIN, SUPPORTED_EXTENSIONS,
};
pub use decode_options::DecodeOptions;
pub use loader::{folder_manifest, load_dataset, DatasetKind};
pub use metadata::Metadata;
pub use view_filter::ViewFilter;

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Errors raised while loading a dataset (per-file problems are [`Skipped`], not errors).
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The dataset path does not exist.
    #[error("{path}: no such file or directory")]
    NotFound {
        /// The path that was asked for.
        path: PathBuf,
    },
    /// A file or folder could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The path being read.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A manifest could not be parsed at all (a bad row is skipped instead).
    #[error("{path}: {message}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// Nothing usable was found.
    #[error("{path}: no images found ({skipped} file(s) skipped)")]
    Empty {
        /// The dataset path.
        path: PathBuf,
        /// How many files were skipped.
        skipped: usize,
    },
}

/// One image of the dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// Position of the item in the dataset (and in the embedding matrix).
    pub id: usize,
    /// Path of the image, relative to the dataset root when it lies under it.
    pub path: PathBuf,
    /// The listing (item of the marketplace) this image is a view of.
    pub listing: String,
    /// Optional class label (for colouring and filtering; not used as ground truth).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Any other manifest columns, kept as strings.
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
}

/// A file that was left out, with the reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    /// The file (or manifest row reference) that was skipped.
    pub path: PathBuf,
    /// Why, in words.
    pub reason: String,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

/// A loaded dataset: its items in a stable order and the files that were skipped.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The path the user gave (folder or manifest file).
    pub source: PathBuf,
    /// Folder that item paths are relative to.
    pub root: PathBuf,
    /// How the dataset was laid out.
    pub kind: DatasetKind,
    /// The items, ids `0..len` in order.
    pub items: Vec<Item>,
    /// Files that were left out while listing the dataset.
    pub skipped: Vec<Skipped>,
    /// Each item's file size and modification time as seen while loading (empty: not
    /// recorded); saves [`fingerprint`](Self::fingerprint) a second look at every file.
    pub file_stamps: Vec<FileStamp>,
}

/// A file's size and modification time (nanoseconds since the epoch), where readable.
pub type FileStamp = (Option<u64>, Option<u128>);

/// The stamp of a file whose metadata was read.
pub fn file_stamp(metadata: &std::fs::Metadata) -> FileStamp {
    let modified = metadata
        .modified()
        .ok()
        .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|since| since.as_nanos());
    (Some(metadata.len()), modified)
}

impl Dataset {
    /// Absolute (or root-joined) path of an item's image.
    pub fn item_path(&self, item: &Item) -> PathBuf {
        if item.path.is_absolute() {
            item.path.clone()
        } else {
            self.root.join(&item.path)
        }
    }

    /// Number of distinct listings.
    pub fn listing_count(&self) -> usize {
        self.listing_groups().len()
    }

    /// Item ids grouped by listing, listings in order of first appearance.
    pub fn listing_groups(&self) -> Vec<(String, Vec<usize>)> {
        group_by_listing(&self.items)
    }

    /// Keeps only the items whose ids are in `keep` (in order) and renumbers them `0..`.
    pub fn retain_ids(&mut self, keep: &[usize]) {
        let by_id: HashMap<usize, &Item> = self.items.iter().map(|i| (i.id, i)).collect();
        let items = keep
            .iter()
            .filter_map(|id| by_id.get(id).map(|i| (*i).clone()))
            .enumerate()
            .map(|(new_id, mut item)| {
                item.id = new_id;
                item
            })
            .collect();
        self.items = items;
        self.file_stamps.clear();
    }

    /// A fingerprint of the dataset's content: item paths, listings, labels and each file's
    /// size and modification time. Changes whenever an artefact made from it would.
    pub fn fingerprint(&self) -> String {
        use rayon::prelude::*;
        // The files are looked at in parallel (a million `stat`s take seconds on one core),
        // or not at all when the loader recorded them; the hash is fed in item order, so the
        // value is the same as a sequential pass.
        let looked_up: Vec<FileStamp>;
        let stamps: &[FileStamp] = if self.file_stamps.len() == self.items.len() {
            &self.file_stamps
        } else {
            looked_up = self
                .items
                .par_iter()
                .map(|item| match std::fs::metadata(self.item_path(item)) {
                    Ok(meta) => file_stamp(&meta),
                    Err(_) => (None, None),
                })
                .collect();
            &looked_up
        };
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        for (item, &(len, modified)) in self.items.iter().zip(stamps) {
            hasher.update(item.path.to_string_lossy().as_bytes());
            hasher.update(&[0]);
            hasher.update(item.listing.as_bytes());
            hasher.update(&[0]);
            hasher.update(item.label.as_deref().unwrap_or("").as_bytes());
            hasher.update(&[0]);
            if let Some(len) = len {
                hasher.update(&len.to_le_bytes());
                if let Some(nanos) = modified {
                    hasher.update(&nanos.to_le_bytes());
                }
            }
        }
        format!("{:032x}", hasher.digest128())
    }
}

/// The built-in demo dataset (`manifest.csv` of the demo folder), found where natview's shipped
/// files are installed (see [`crate::locate`]); an error naming every place looked when it is
/// not installed.
pub fn demo_dataset_path() -> Result<PathBuf, crate::locate::NotFound> {
    crate::locate::find(crate::locate::Shipped::Demo, "manifest.csv")
}

/// Groups item ids by listing, listings in order of first appearance.
pub fn group_by_listing(items: &[Item]) -> Vec<(String, Vec<usize>)> {
    let mut order: Vec<(String, Vec<usize>)> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (position, item) in items.iter().enumerate() {
        match index.get(item.listing.as_str()) {
            Some(&g) => order[g].1.push(position),
            None => {
                index.insert(item.listing.as_str(), order.len());
                order.push((item.listing.clone(), vec![position]));
            }
        }
    }
    order
}

/// The path of `path` relative to `root` when it lies under it, else `path` itself.
pub fn relative_to(path: &Path, root: &Path) -> PathBuf {
    path.strip_prefix(root)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| path.to_path_buf())
}
