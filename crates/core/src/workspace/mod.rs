//! The on-disk workspace beside a dataset: items, embeddings (one file per model), the index,
//! projections and reports. Every artefact records what it was made from; files are written to
//! a temporary name and renamed into place, so a half-written file never replaces a good one.

mod atomic;
mod lock;

pub use atomic::{sweep_orphans, write_atomic, AtomicFile};
pub use lock::{LockHolder, WorkspaceLock};

/// Side of the stored thumbnails in pixels.
pub const THUMBNAIL_PX: u32 = 64;

use crate::dataset::{Dataset, DatasetKind, Item, Skipped};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Errors of the workspace module.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// Reading or writing a workspace file failed.
    #[error("{path}: {message}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A workspace file exists but does not match what is asked for.
    #[error("{path}: stale ({reason})")]
    Stale {
        /// The file concerned.
        path: PathBuf,
        /// Why it cannot be used.
        reason: String,
    },
}

impl WorkspaceError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, message: impl std::fmt::Display) -> Self {
        WorkspaceError::Io {
            path: path.to_path_buf(),
            message: message.to_string(),
        }
    }
}

/// Serialises `value` as pretty JSON and writes it atomically.
pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(std::io::Error::other)?;
    write_atomic(path, text.as_bytes())
}

/// The folder holding a dataset's artefacts.
#[derive(Debug, Clone)]
pub struct Workspace {
    dir: PathBuf,
}

impl Workspace {
    /// The workspace for `dataset`: `override_dir` if given, else `<folder>/.natview` for a
    /// folder dataset or `<manifest dir>/.natview-<manifest stem>` for a manifest — unless that
    /// folder cannot be written (a dataset on a read-only disk, the demo of a system-wide
    /// install): then `<user data folder>/workspaces/<dataset name>-<hash of its path>`.
    pub fn for_dataset(dataset: &Dataset, override_dir: Option<&Path>) -> Self {
        if let Some(dir) = override_dir {
            return Self::at(dir);
        }
        let beside = Self::beside(dataset);
        if is_writable_place(&beside.dir) {
            return beside;
        }
        match crate::locate::user_data_dir() {
            Some(data) => Self::at(&data.join("workspaces").join(user_workspace_name(dataset))),
            None => beside,
        }
    }

    /// The default workspace beside the dataset (whether or not it can be written).
    fn beside(dataset: &Dataset) -> Self {
        let dir = match dataset.kind {
            DatasetKind::FolderTree | DatasetKind::FlatFolder => dataset.root.join(".natview"),
            DatasetKind::CsvManifest | DatasetKind::JsonlManifest => {
                let stem = dataset
                    .source
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "manifest".into());
                dataset.root.join(format!(".natview-{stem}"))
            }
        };
        Self { dir }
    }

    /// A workspace at an explicit folder.
    pub fn at(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    /// Its folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates the folder if needed.
    pub fn create(&self) -> Result<(), WorkspaceError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| WorkspaceError::io(&self.dir, e))
    }

    /// `items.jsonl`: the embedded items, in embedding order.
    pub fn items_path(&self) -> PathBuf {
        self.dir.join("items.jsonl")
    }

    /// Embeddings of one model: `embeddings.<model>.safetensors`.
    pub fn embeddings_path(&self, model: &str) -> PathBuf {
        self.dir.join(format!("embeddings.{model}.safetensors"))
    }

    /// Each embedded image's SwAV cluster (JSON array in row order) beside the embeddings of
    /// `model`, for weights that carry SwAV's head.
    pub fn clusters_path(&self, model: &str) -> PathBuf {
        self.dir.join(format!("clusters.{model}.json"))
    }

    /// Base name of the HNSW files of one model (`index.<model>.*`).
    pub fn index_basename(&self, model: &str) -> String {
        format!("index.{model}")
    }

    /// `projection-<method>.<model>.csv`.
    pub fn projection_path(&self, method: &str, model: &str) -> PathBuf {
        self.dir.join(format!("projection-{method}.{model}.csv"))
    }

    /// `thumbnails.64.bin`: the packed thumbnails of the embedded items (see
    /// natview-pipeline's `ThumbnailStore`).
    pub fn thumbnails_path(&self) -> PathBuf {
        self.dir.join(format!("thumbnails.{THUMBNAIL_PX}.bin"))
    }

    /// `labels.sqlite`: the analysts' tags, notes and pair verdicts.
    pub fn labels_path(&self) -> PathBuf {
        self.dir.join("labels.sqlite")
    }

    /// `skipped.json`: every file left out of the last embedding run, with reasons.
    pub fn skipped_path(&self) -> PathBuf {
        self.dir.join("skipped.json")
    }

    /// Writes the items (one JSON object per line) and returns the fingerprint of the text.
    pub fn write_items(&self, items: &[Item]) -> Result<String, WorkspaceError> {
        let mut text = String::new();
        for line in self.item_lines(items)? {
            text.push_str(&line);
            text.push('\n');
        }
        let path = self.items_path();
        write_atomic(&path, text.as_bytes()).map_err(|e| WorkspaceError::io(&path, e))?;
        Ok(items_fingerprint_of(&text))
    }

    /// The lines of `items.jsonl` (one JSON object per item, no newline), made in parallel.
    fn item_lines(&self, items: &[Item]) -> Result<Vec<String>, WorkspaceError> {
        use rayon::prelude::*;
        items
            .par_iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<String>, _>>()
            .map_err(|e| WorkspaceError::io(&self.items_path(), e))
    }

    /// The fingerprint `write_items` would give `items`, without writing them (lines made in
    /// parallel, hashed in order: the same value).
    pub fn items_fingerprint(&self, items: &[Item]) -> Result<String, WorkspaceError> {
        let lines = self.item_lines(items)?;
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        for line in &lines {
            hasher.update(line.as_bytes());
            hasher.update(b"\n");
        }
        Ok(format!("{:016x}", hasher.digest()))
    }

    /// The fingerprint of `items.jsonl` as it is on disk (`None` when it cannot be read),
    /// without parsing it.
    pub fn stored_items_fingerprint(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.items_path()).ok()?;
        Some(items_fingerprint_of(&text))
    }

    /// Reads the items and the fingerprint of the file. Each item's id must be its row (the
    /// ids index the embedding matrix): anything else names the line at fault.
    pub fn read_items(&self) -> Result<(Vec<Item>, String), WorkspaceError> {
        let path = self.items_path();
        let text = std::fs::read_to_string(&path).map_err(|e| WorkspaceError::io(&path, e))?;
        // Parsed in parallel (a million lines take seconds on one core), kept in file order.
        use rayon::prelude::*;
        let lines: Vec<(usize, &str)> = text
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .collect();
        let items = lines
            .par_iter()
            .enumerate()
            .map(|(row, &(n, line))| {
                let at_line = |message: String| {
                    WorkspaceError::io(&path, format!("line {}: {message}", n + 1))
                };
                let item =
                    serde_json::from_str::<Item>(line).map_err(|e| at_line(e.to_string()))?;
                if item.id != row {
                    return Err(at_line(format!("item id {}, expected {row}", item.id)));
                }
                Ok(item)
            })
            .collect::<Result<Vec<Item>, WorkspaceError>>()?;
        Ok((items, items_fingerprint_of(&text)))
    }

    /// Records the skipped files of the last run.
    pub fn write_skipped(&self, skipped: &[Skipped]) -> Result<(), WorkspaceError> {
        let path = self.skipped_path();
        write_json_atomic(&path, &skipped).map_err(|e| WorkspaceError::io(&path, e))
    }

    /// Reads the skipped files of the last run (empty if none were recorded).
    pub fn read_skipped(&self) -> Vec<Skipped> {
        std::fs::read_to_string(self.skipped_path())
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }
}

/// Whether natview can write in `dir`: an existing folder where a file can be created, or a
/// folder that can be created (its nearest existing ancestor is writable).
fn is_writable_place(dir: &Path) -> bool {
    let mut existing = dir;
    while !existing.exists() {
        match existing.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => existing = parent,
            _ => return true,
        }
    }
    if !existing.is_dir() {
        return false;
    }
    let probe = existing.join(format!(
        ".natview-write-probe-{}-{}",
        std::process::id(),
        PROBE_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            true
        }
        Err(_) => false,
    }
}

static PROBE_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The name of a read-only dataset's workspace in the user's data folder: the dataset's name
/// and a hash of its absolute path (two datasets of one name stay apart).
fn user_workspace_name(dataset: &Dataset) -> String {
    let source = dataset
        .source
        .canonicalize()
        .unwrap_or_else(|_| dataset.source.clone());
    let name: String = source
        .file_stem()
        .filter(|s| *s != "manifest")
        .or_else(|| dataset.root.file_name())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dataset".into())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let hash = xxhash_rust::xxh3::xxh3_64(source.as_os_str().as_encoded_bytes());
    format!("{name}-{hash:016x}")
}

fn items_fingerprint_of(text: &str) -> String {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_that_cannot_be_written_is_told_apart() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(is_writable_place(&dir.path().join("a/b/.natview")));
        // Not even root can create files in /proc.
        assert!(!is_writable_place(Path::new("/proc/self/.natview")));
        assert!(!is_writable_place(Path::new("/proc/.natview-x")));
    }

    #[test]
    fn items_round_trip_with_fingerprint() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ws = Workspace::at(dir.path());
        let items = vec![Item {
            id: 0,
            path: "a/b.png".into(),
            listing: "a".into(),
            label: Some("x".into()),
            metadata: [("k".to_string(), "v".to_string())].into_iter().collect(),
        }];
        let fp = ws.write_items(&items).expect("write");
        let (back, fp2) = ws.read_items().expect("read");
        assert_eq!(back, items);
        assert_eq!(fp, fp2);
        assert_eq!(ws.items_fingerprint(&items).expect("fingerprint"), fp);
    }

    fn item(id: usize) -> Item {
        Item {
            id,
            path: format!("l{}/v{id}.png", id / 2).into(),
            listing: format!("l{}", id / 2),
            label: id.is_multiple_of(3).then(|| "x".to_string()),
            metadata: [("k".to_string(), format!("{id}"))].into_iter().collect(),
        }
    }

    #[test]
    fn an_item_out_of_its_row_is_refused_naming_the_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ws = Workspace::at(dir.path());
        ws.write_items(&[item(0), item(2)]).expect("write");
        let err = ws.read_items().expect_err("refused").to_string();
        assert!(
            err.contains("items.jsonl: line 2: item id 2, expected 1"),
            "{err}"
        );
    }

    proptest::proptest! {
        #![proptest_config(natview_testkit::config())]

        #[test]
        fn damaged_items_files_are_refused_or_hold_their_rows(
            changes in natview_testkit::mutations()
        ) {
            let dir = tempfile::tempdir().expect("tempdir");
            let ws = Workspace::at(dir.path());
            ws.write_items(&(0..6).map(item).collect::<Vec<_>>()).expect("write");
            let bytes = std::fs::read(ws.items_path()).expect("read");
            std::fs::write(ws.items_path(), natview_testkit::apply(&bytes, &changes))
                .expect("write");
            if let Ok((items, _)) = ws.read_items() {
                for (row, item) in items.iter().enumerate() {
                    proptest::prop_assert_eq!(item.id, row);
                }
            }
        }
    }
}
