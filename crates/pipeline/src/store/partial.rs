//! The chunks of an embedding run in progress, kept in `<workspace>/partial/<encoder key>/` so
//! that a run stopped by a crash, a kill or Ctrl-C continues where it stopped.
//!
//! `state.json` says what the run is (dataset, encoder, weights, batch size); each
//! `chunk-NNNNNN.bin` holds the rows of a run of whole batches (each written atomically):
//! magic `NVCHUNK1`, the length of a JSON header (u64 LE), the header ([`ChunkHeader`]), the
//! rows (f32 LE), the thumbnails' bytes back to back, and the xxh3 of everything before it
//! (u64 LE). A chunk that fails any check, and every chunk after it, is dropped and embedded
//! again.

use natview_core::dataset::Skipped;
use natview_core::workspace::{write_atomic, write_json_atomic, Workspace, WorkspaceError};
use natview_encoder::EncoderSpec;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"NVCHUNK1";

/// What an interrupted run was doing: a resumed run must match it exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// The encoder.
    pub encoder: EncoderSpec,
    /// Fingerprint of the weights.
    pub weights_fingerprint: String,
    /// Fingerprint of the dataset.
    pub dataset_fingerprint: String,
    /// Images in the dataset.
    pub total_items: usize,
    /// Images per batch (a resumed run keeps it, so that its rows are bit-identical).
    pub batch_size: usize,
    /// How the images are decoded and resized ([`natview_core::dataset::IMAGE_PIPELINE`]).
    #[serde(default)]
    pub image_pipeline: String,
}

impl RunState {
    /// Whether a run in `self`'s state can be continued as the run `new` (the same network,
    /// weights and dataset; the batch size is taken from `self`).
    pub fn continues(&self, new: &RunState) -> bool {
        self.encoder.same_network(&new.encoder)
            && self.weights_fingerprint == new.weights_fingerprint
            && self.dataset_fingerprint == new.dataset_fingerprint
            && self.total_items == new.total_items
            && self.image_pipeline == new.image_pipeline
    }
}

/// What a chunk holds, besides its rows and thumbnails.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkHeader {
    /// The first dataset item of the chunk.
    pub first_item: usize,
    /// One past the last dataset item of the chunk.
    pub end_item: usize,
    /// The dataset index of each embedded row (items that failed to decode have none).
    pub rows: Vec<usize>,
    /// The width of a row.
    pub dim: usize,
    /// The files of the chunk that could not be read.
    pub skipped: Vec<Skipped>,
    /// Each row's SwAV cluster, when the encoder has the head.
    pub clusters: Option<Vec<u32>>,
    /// Each row's thumbnail length in bytes (`None`: the run made no thumbnails).
    pub thumbnail_lengths: Option<Vec<u32>>,
}

/// A chunk read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// Its header.
    pub header: ChunkHeader,
    /// Its rows, `rows.len() × dim` values.
    pub values: Vec<f32>,
    /// Each row's thumbnail (`None` when the run made none).
    pub thumbnails: Option<Vec<Vec<u8>>>,
}

/// The chunk folder of one encoder's run.
#[derive(Debug, Clone)]
pub struct PartialRun {
    dir: PathBuf,
}

impl PartialRun {
    /// The folder of `key`'s run in `workspace`.
    pub fn new(workspace: &Workspace, key: &str) -> Self {
        Self {
            dir: workspace.dir().join("partial").join(key),
        }
    }

    /// Its folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The state of a run left here, if any can be read.
    pub fn state(&self) -> Option<RunState> {
        let bytes = std::fs::read(self.dir.join("state.json")).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Starts a new run here (anything left is removed).
    pub fn start(&self, state: &RunState) -> Result<(), WorkspaceError> {
        self.remove()?;
        let path = self.dir.join("state.json");
        write_json_atomic(&path, state).map_err(|e| WorkspaceError::io(&path, e))
    }

    /// Removes the run's folder (when the run is complete or starts anew).
    pub fn remove(&self) -> Result<(), WorkspaceError> {
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(WorkspaceError::io(&self.dir, e)),
        }
    }

    /// The chunk files in order (read each with [`read_chunk`]).
    pub fn chunk_files(&self) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("chunk-") && n.ends_with(".bin"))
            })
            .collect();
        paths.sort();
        paths
    }

    /// Removes the chunk files from `path` on (they are embedded again).
    pub fn drop_from(&self, path: &Path) {
        for p in self
            .chunk_files()
            .into_iter()
            .filter(|p| p.as_path() >= path)
        {
            let _ = std::fs::remove_file(p);
        }
    }

    /// Writes the next chunk (number `n`) atomically.
    pub fn write_chunk(
        &self,
        n: usize,
        header: &ChunkHeader,
        values: &[f32],
        thumbnails: Option<&[Vec<u8>]>,
    ) -> Result<PathBuf, WorkspaceError> {
        let path = self.dir.join(format!("chunk-{n:06}.bin"));
        let lengths_match = match (&header.thumbnail_lengths, thumbnails) {
            (None, None) => true,
            (Some(lengths), Some(thumbnails)) => {
                lengths.len() == thumbnails.len()
                    && lengths
                        .iter()
                        .zip(thumbnails)
                        .all(|(&l, t)| l as usize == t.len())
            }
            _ => false,
        };
        if !lengths_match || header.rows.len().checked_mul(header.dim) != Some(values.len()) {
            return Err(WorkspaceError::io(
                &path,
                "chunk header does not describe its rows and thumbnails",
            ));
        }
        let json = serde_json::to_vec(header).map_err(|e| WorkspaceError::io(&path, e))?;
        let thumbnail_bytes: usize = thumbnails.map_or(0, |t| t.iter().map(Vec::len).sum());
        let mut bytes =
            Vec::with_capacity(8 + 8 + json.len() + values.len() * 4 + thumbnail_bytes + 8);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&(json.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&json);
        bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        for thumbnail in thumbnails.into_iter().flatten() {
            bytes.extend_from_slice(thumbnail);
        }
        let sum = xxhash_rust::xxh3::xxh3_64(&bytes);
        bytes.extend_from_slice(&sum.to_le_bytes());
        write_atomic(&path, &bytes).map_err(|e| WorkspaceError::io(&path, e))?;
        Ok(path)
    }
}

/// Reads and checks a chunk file: every size is checked against the file's length and the
/// checksum must match.
pub fn read_chunk(path: &Path) -> Result<Chunk, WorkspaceError> {
    let bytes = std::fs::read(path).map_err(|e| WorkspaceError::io(path, e))?;
    parse_chunk(&bytes).map_err(|reason| WorkspaceError::io(path, reason))
}

fn parse_chunk(bytes: &[u8]) -> Result<Chunk, String> {
    let body_len = bytes
        .len()
        .checked_sub(8)
        .ok_or("shorter than its checksum")?;
    let (body, sum) = bytes.split_at(body_len);
    let sum = u64::from_le_bytes(sum.try_into().map_err(|_| "no checksum")?);
    if xxhash_rust::xxh3::xxh3_64(body) != sum {
        return Err("checksum does not match (a damaged or partly written chunk)".into());
    }
    let rest = body.strip_prefix(MAGIC).ok_or("not a natview chunk")?;
    let (len, rest) = rest.split_at_checked(8).ok_or("no header length")?;
    let len = usize::try_from(u64::from_le_bytes(len.try_into().map_err(|_| "length")?))
        .map_err(|_| "header length too large")?;
    let (json, rest) = rest.split_at_checked(len).ok_or("header past the end")?;
    let header: ChunkHeader =
        serde_json::from_slice(json).map_err(|e| format!("bad header: {e}"))?;
    if header.end_item < header.first_item {
        return Err("chunk ends before it starts".into());
    }
    let value_bytes = header
        .rows
        .len()
        .checked_mul(header.dim)
        .and_then(|n| n.checked_mul(4))
        .ok_or("rows × dim overflows")?;
    let (values, mut rest) = rest
        .split_at_checked(value_bytes)
        .ok_or("rows past the end")?;
    let values = values
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let thumbnails = match &header.thumbnail_lengths {
        None => None,
        Some(lengths) => {
            if lengths.len() != header.rows.len() {
                return Err("thumbnail count differs from row count".into());
            }
            let mut out = Vec::with_capacity(lengths.len());
            for &len in lengths {
                let (thumbnail, tail) = rest
                    .split_at_checked(len as usize)
                    .ok_or("thumbnails past the end")?;
                out.push(thumbnail.to_vec());
                rest = tail;
            }
            Some(out)
        }
    };
    if !rest.is_empty() {
        return Err("bytes after the thumbnails".into());
    }
    if header
        .clusters
        .as_ref()
        .is_some_and(|c| c.len() != header.rows.len())
    {
        return Err("cluster count differs from row count".into());
    }
    Ok(Chunk {
        header,
        values,
        thumbnails,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> ChunkHeader {
        ChunkHeader {
            first_item: 8,
            end_item: 12,
            rows: vec![8, 9, 11],
            dim: 2,
            skipped: vec![Skipped {
                path: "x/10.png".into(),
                reason: "bad".into(),
            }],
            clusters: None,
            thumbnail_lengths: Some(vec![3, 0, 2]),
        }
    }

    #[test]
    fn chunks_round_trip_and_any_damage_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let run = PartialRun::new(&Workspace::at(dir.path()), "compact");
        let values = [0.5, -1.0, 0.25, 2.0, 1e-3, 7.0];
        let thumbs = vec![b"abc".to_vec(), vec![], b"de".to_vec()];
        let path = run
            .write_chunk(0, &header(), &values, Some(&thumbs))
            .expect("write");
        let chunk = read_chunk(&path).expect("read");
        assert_eq!(chunk.header, header());
        assert_eq!(chunk.values, values);
        assert_eq!(chunk.thumbnails, Some(thumbs));
        let bytes = std::fs::read(&path).expect("read");
        for cut in [0, 7, 20, bytes.len() - 1] {
            assert!(parse_chunk(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        for i in (0..bytes.len()).step_by(5) {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x40;
            assert!(parse_chunk(&damaged).is_err(), "byte {i}");
        }
    }

    #[test]
    fn a_new_run_removes_the_old_chunks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let run = PartialRun::new(&Workspace::at(dir.path()), "compact");
        run.write_chunk(0, &header(), &[0.0; 6], None)
            .expect_err("three thumbnail lengths but no thumbnails");
        let state = RunState {
            encoder: EncoderSpec::untrained(natview_encoder::ModelKind::Compact),
            weights_fingerprint: "seed:0".into(),
            dataset_fingerprint: "d".into(),
            total_items: 12,
            batch_size: 4,
            image_pipeline: "p".into(),
        };
        run.start(&state).expect("start");
        assert_eq!(run.state(), Some(state.clone()));
        assert!(run.chunk_files().is_empty());
    }
}
