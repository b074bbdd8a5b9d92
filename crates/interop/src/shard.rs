//! Sharded embedding: `natview embed --shard I/N` embeds a deterministic 1/N of a dataset (a
//! contiguous range of its items, so that N machines or GPUs can share the job) into a shard
//! workspace of its own, and `natview merge` joins the N shards, checked for completeness and
//! consistency, into the dataset's workspace exactly as one run would have written it.

use super::InteropError;
use natview_core::dataset::{Dataset, Item};
use natview_core::linalg::Matrix;
use natview_core::workspace::Workspace;
use natview_encoder::EncoderSpec;
use natview_pipeline::store::{EmbeddingStore, EmbeddingsMeta};
use natview_pipeline::EmbeddingSet;
use std::path::{Path, PathBuf};

/// Shard `index` (0-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which shard, `0..count`.
    pub index: usize,
    /// How many shards share the job.
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    /// `I/N` with `0 ≤ I < N`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{s}`: expected I/N with 0 ≤ I < N, e.g. 0/4");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (usize, usize) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// The item positions of this shard among `total`: a contiguous range.
    pub fn range(self, total: usize) -> std::ops::Range<usize> {
        (self.index * total / self.count)..((self.index + 1) * total / self.count)
    }

    /// The shard's own workspace: `<workspace>/shards/<model key>/<I>-of-<N>`.
    pub fn workspace(self, workspace: &Workspace, spec: &EncoderSpec) -> Workspace {
        Workspace::at(
            &shards_dir(workspace, spec).join(format!("{}-of-{}", self.index, self.count)),
        )
    }
}

/// Where the shards of `spec`'s embeddings live.
fn shards_dir(workspace: &Workspace, spec: &EncoderSpec) -> PathBuf {
    workspace.dir().join("shards").join(spec.workspace_key())
}

/// The dataset restricted to `shard`'s items (renumbered from 0).
pub fn shard_items(dataset: &Dataset, shard: Shard) -> Dataset {
    let mut part = dataset.clone();
    let keep: Vec<usize> = shard.range(dataset.items.len()).collect();
    part.retain_ids(&keep);
    part.skipped.clear();
    part
}

/// What a merge did.
#[derive(Debug, Clone)]
pub struct MergeReport {
    /// The merged embeddings file.
    pub path: PathBuf,
    /// Shards joined.
    pub shards: usize,
    /// Rows in the merged set.
    pub rows: usize,
    /// Images the shards left out (unreadable).
    pub left_out: usize,
}

/// The shard folders present for `spec`, as `(index, count, folder)`.
fn shard_folders(dir: &Path) -> Result<Vec<(usize, usize, PathBuf)>, InteropError> {
    let entries = std::fs::read_dir(dir).map_err(|e| InteropError::io(dir, e))?;
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some((i, n)) = name.split_once("-of-") {
            if let (Ok(i), Ok(n)) = (i.parse::<usize>(), n.parse::<usize>()) {
                found.push((i, n, entry.path()));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Joins the shards of `spec`'s embeddings of `dataset` into `workspace`.
pub fn merge_shards(
    dataset: &Dataset,
    workspace: &Workspace,
    spec: &EncoderSpec,
) -> Result<(EmbeddingSet, MergeReport), InteropError> {
    let dir = shards_dir(workspace, spec);
    let folders = shard_folders(&dir)?;
    let Some(&(_, count, _)) = folders.first() else {
        return Err(InteropError::invalid(
            &dir,
            "no shards (run natview embed --shard I/N)",
        ));
    };
    if let Some((_, other, path)) = folders.iter().find(|(_, n, _)| *n != count) {
        return Err(InteropError::invalid(
            path,
            format!("a shard of {other} beside shards of {count}: one job at a time"),
        ));
    }
    let present: Vec<usize> = folders.iter().map(|(i, _, _)| *i).collect();
    let missing: Vec<String> = (0..count)
        .filter(|i| !present.contains(i))
        .map(|i| format!("{i}/{count}"))
        .collect();
    if !missing.is_empty() {
        return Err(InteropError::invalid(
            &dir,
            format!(
                "shard(s) {} missing: embed them before merging",
                missing.join(", ")
            ),
        ));
    }
    let total = dataset.items.len();
    let (mut items, mut data): (Vec<Item>, Vec<f32>) = (Vec::with_capacity(total), Vec::new());
    let mut first_meta: Option<EmbeddingsMeta> = None;
    let mut dim = 0;
    for (index, _, folder) in &folders {
        let shard = Shard {
            index: *index,
            count,
        };
        let shard_workspace = Workspace::at(folder);
        let path = shard_workspace.embeddings_path(&spec.workspace_key());
        // Shards are often copied in from other machines: read, not mapped (a copy still
        // being written would be truncated under a mapping).
        let (matrix, meta) = EmbeddingStore::read_unmapped(&path)?;
        let meta = meta.ok_or_else(|| InteropError::invalid(&path, "no natview metadata"))?;
        let expected = shard_items(dataset, shard);
        if meta.dataset_fingerprint != expected.fingerprint() {
            return Err(InteropError::invalid(
                &path,
                "made from other images than this shard of the dataset has now (re-embed it)",
            ));
        }
        match &first_meta {
            None => {
                dim = matrix.dim;
                first_meta = Some(meta.clone());
            }
            Some(first)
                if first.encoder != meta.encoder
                    || first.weights_fingerprint != meta.weights_fingerprint
                    || first.image_pipeline != meta.image_pipeline =>
            {
                return Err(InteropError::invalid(
                    &path,
                    format!(
                        "made with {} (weights {}), other shards with {} (weights {})",
                        meta.encoder.describe(),
                        meta.weights_fingerprint,
                        first.encoder.describe(),
                        first.weights_fingerprint
                    ),
                ));
            }
            Some(_) if matrix.dim != dim => {
                return Err(InteropError::invalid(
                    &path,
                    format!("vectors of {} values, other shards {dim}", matrix.dim),
                ));
            }
            Some(_) => {}
        }
        let (shard_items_read, items_fingerprint) = shard_workspace.read_items()?;
        if items_fingerprint != meta.items_fingerprint || shard_items_read.len() != matrix.rows {
            return Err(InteropError::invalid(
                &path,
                "its items.jsonl does not match its rows",
            ));
        }
        let offset = shard.range(total).start;
        for mut item in shard_items_read {
            // Back to the dataset's own item (its id in the whole dataset).
            let whole = dataset
                .items
                .get(offset + item.id)
                .filter(|w| w.path == item.path);
            let Some(whole) = whole else {
                return Err(InteropError::invalid(
                    &path,
                    format!("{}: not in this shard of the dataset", item.path.display()),
                ));
            };
            item = whole.clone();
            item.id = items.len();
            items.push(item);
        }
        data.extend_from_slice(&matrix.data);
    }
    let Some(first) = first_meta else {
        return Err(InteropError::invalid(&dir, "no shards"));
    };
    let matrix = Matrix {
        rows: items.len(),
        dim,
        data,
    };
    let rows = matrix.rows;
    let (path, set) = super::store_set(
        dataset,
        workspace,
        &first.encoder,
        (
            first.weights_fingerprint.clone(),
            first.image_pipeline.clone(),
        ),
        (items, matrix),
    )?;
    let report = MergeReport {
        path,
        shards: count,
        rows,
        left_out: total - rows,
    };
    Ok((set, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_every_item_once() {
        for total in [0, 1, 7, 100] {
            for count in 1..6 {
                let mut covered = Vec::new();
                for index in 0..count {
                    covered.extend(Shard { index, count }.range(total));
                }
                assert_eq!(covered, (0..total).collect::<Vec<_>>(), "{total} {count}");
            }
        }
    }

    #[test]
    fn shard_specs_are_checked() {
        assert_eq!("1/4".parse::<Shard>(), Ok(Shard { index: 1, count: 4 }));
        assert!("4/4".parse::<Shard>().is_err());
        assert!("0/0".parse::<Shard>().is_err());
        assert!("x".parse::<Shard>().is_err());
    }
}
