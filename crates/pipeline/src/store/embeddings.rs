//! `embeddings.<model>.safetensors`: the `embeddings` tensor `[N, D]` (f32, L2-normalised) with
//! metadata saying exactly what it was computed from.

use natview_core::linalg::Matrix;
use natview_core::workspace::{AtomicFile, WorkspaceError};
use natview_encoder::EncoderSpec;
use safetensors::tensor::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};
use std::io::{BufWriter, Write};
use std::path::Path;

/// What an embeddings file was computed from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingsMeta {
    /// The encoder, its input size and weights (or seed).
    pub encoder: EncoderSpec,
    /// Fingerprint of the weights' bytes (or `seed:N`).
    pub weights_fingerprint: String,
    /// Fingerprint of the dataset listing at embedding time.
    pub dataset_fingerprint: String,
    /// Fingerprint of `items.jsonl` (row order of the matrix).
    pub items_fingerprint: String,
    /// Fingerprint of the matrix itself (index files refer to it).
    pub embeddings_fingerprint: String,
    /// How the images were decoded and resized ([`natview_core::dataset::IMAGE_PIPELINE`];
    /// empty in files made before it was recorded, and for imported rows).
    #[serde(default)]
    pub image_pipeline: String,
}

/// Reading and writing embedding matrices.
pub struct EmbeddingStore;

impl EmbeddingStore {
    /// Fingerprint of a matrix's shape and values.
    pub fn fingerprint(matrix: &Matrix) -> String {
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        hasher.update(&(matrix.rows as u64).to_le_bytes());
        hasher.update(&(matrix.dim as u64).to_le_bytes());
        for v in &matrix.data {
            hasher.update(&v.to_le_bytes());
        }
        format!("{:016x}", hasher.digest())
    }

    /// Writes the matrix and its metadata atomically, as a safetensors file streamed from the
    /// matrix (no second copy of it in memory: a million rows of 1,280 are 5 GB).
    pub fn save(path: &Path, matrix: &Matrix, meta: &EmbeddingsMeta) -> Result<(), WorkspaceError> {
        let io = |e: std::io::Error| WorkspaceError::io(path, e);
        let expected = matrix.rows.checked_mul(matrix.dim);
        if expected != Some(matrix.data.len()) {
            return Err(WorkspaceError::io(
                path,
                format!(
                    "matrix of {} × {} holds {} values",
                    matrix.rows,
                    matrix.dim,
                    matrix.data.len()
                ),
            ));
        }
        let meta_json = serde_json::to_string(meta).map_err(|e| WorkspaceError::io(path, e))?;
        let data_bytes = matrix.data.len() * 4;
        let mut header = serde_json::json!({
            "__metadata__": { "natview": meta_json },
            "embeddings": {
                "dtype": "F32",
                "shape": [matrix.rows, matrix.dim],
                "data_offsets": [0, data_bytes],
            },
        })
        .to_string()
        .into_bytes();
        // The data starts 8-byte aligned, as the safetensors library writes it.
        header.resize(header.len().next_multiple_of(8), b' ');
        let mut file = BufWriter::with_capacity(1 << 22, AtomicFile::create(path).map_err(io)?);
        file.write_all(&(header.len() as u64).to_le_bytes())
            .map_err(io)?;
        file.write_all(&header).map_err(io)?;
        let mut piece = Vec::with_capacity(1 << 20);
        for values in matrix.data.chunks(1 << 18) {
            piece.clear();
            piece.extend(values.iter().flat_map(|v| v.to_le_bytes()));
            file.write_all(&piece).map_err(io)?;
        }
        let file = file.into_inner().map_err(|e| io(e.into_error()))?;
        file.commit().map_err(io)
    }

    /// Reads a workspace matrix and its metadata (`None` metadata for files made by other
    /// tools). The file is memory-mapped: only for files natview replaces by a rename, never
    /// rewrites in place (a file truncated while mapped would fault on access; read anything
    /// else with [`read_unmapped`](Self::read_unmapped)).
    pub fn load(path: &Path) -> Result<(Matrix, Option<EmbeddingsMeta>), WorkspaceError> {
        let file = std::fs::File::open(path).map_err(|e| WorkspaceError::io(path, e))?;
        // Mapped rather than read: the values are converted straight from the page cache into
        // the matrix, without a second, transient copy of the file (a gigabyte at 1M × 256).
        // SAFETY: workspace embeddings are replaced by renames, never rewritten in place, so
        // the mapped pages stay as they are while mapped.
        let bytes =
            unsafe { memmap2::Mmap::map(&file) }.map_err(|e| WorkspaceError::io(path, e))?;
        decode(path, &bytes, Some(&file))
    }

    /// [`load`](Self::load) for a file natview does not own (an import's input, a shard
    /// copied from another machine), which may be rewritten or truncated while it is read:
    /// read with plain reads, never mapped.
    pub fn read_unmapped(path: &Path) -> Result<(Matrix, Option<EmbeddingsMeta>), WorkspaceError> {
        let bytes = std::fs::read(path).map_err(|e| WorkspaceError::io(path, e))?;
        decode(path, &bytes, None)
    }
}

/// The matrix and metadata of the safetensors `bytes` of `path`: the header checked by the
/// safetensors reader (offsets in the file, sizes that do not overflow, data of the declared
/// shape), the tensor checked to be `[N, D]` floats. With `file` (the file `bytes` are mapped
/// from), f32 values are read from it directly.
fn decode(
    path: &Path,
    bytes: &[u8],
    file: Option<&std::fs::File>,
) -> Result<(Matrix, Option<EmbeddingsMeta>), WorkspaceError> {
    let tensors = SafeTensors::deserialize(bytes)
        .map_err(|e| WorkspaceError::io(path, format!("not a safetensors file: {e}")))?;
    let name = if tensors.names().contains(&"embeddings") {
        "embeddings".to_string()
    } else {
        match tensors.names().as_slice() {
            [only] => only.to_string(),
            _ => {
                return Err(WorkspaceError::io(
                    path,
                    "no tensor named `embeddings` (and more than one tensor)",
                ))
            }
        }
    };
    let view = tensors
        .tensor(&name)
        .map_err(|e| WorkspaceError::io(path, e))?;
    let (rows, dim) = match view.shape() {
        [rows, dim] if *dim > 0 || *rows == 0 => (*rows, *dim),
        other => {
            return Err(WorkspaceError::io(
                path,
                format!("tensor `{name}` has shape {other:?}, expected [N, D] with D ≥ 1"),
            ))
        }
    };
    let data: Vec<f32> = match view.dtype() {
        Dtype::F32 => {
            read_f32s(file, bytes, view.data()).map_err(|e| WorkspaceError::io(path, e))?
        }
        Dtype::F64 => view
            .data()
            .chunks_exact(8)
            .map(|c| {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                f64::from_le_bytes(b) as f32
            })
            .collect(),
        other => {
            return Err(WorkspaceError::io(
                path,
                format!("tensor `{name}` has dtype {other:?}, expected F32 or F64"),
            ))
        }
    };
    // The reader checked the data is exactly the shape's size; kept as an invariant here.
    if rows.checked_mul(dim) != Some(data.len()) {
        return Err(WorkspaceError::io(
            path,
            format!(
                "tensor `{name}` holds {} values, not {rows} × {dim}",
                data.len()
            ),
        ));
    }
    let meta = SafeTensors::read_metadata(bytes)
        .ok()
        .and_then(|(_, m)| m.metadata().clone())
        .and_then(|m| m.get("natview").cloned())
        .and_then(|json| serde_json::from_str(&json).ok());
    Ok((Matrix { rows, dim, data }, meta))
}

/// The little-endian f32 values of `data` (a slice of `mapped`). When `mapped` is the mapped
/// `file`, they are read straight into the vector with `pread`, in 32 MiB pieces on every core,
/// on little-endian machines. What it costs is the page faults of the new gigabyte (about
/// 10 µs per 4 KiB page on this VM), so they are taken on every core: 2.8 s → see
/// BENCHMARKS.md.
fn read_f32s(
    file: Option<&std::fs::File>,
    mapped: &[u8],
    data: &[u8],
) -> std::io::Result<Vec<f32>> {
    let count = data.len() / 4;
    if let Some(file) = file.filter(|_| cfg!(target_endian = "little")) {
        use std::os::unix::fs::FileExt;
        let offset = data.as_ptr() as usize - mapped.as_ptr() as usize;
        let mut values = vec![0f32; count];
        // SAFETY: the vector's buffer is `count` initialised f32s, viewed as their 4 × count
        // bytes; every bit pattern is a valid f32, and the view ends before the vector is used.
        let bytes =
            unsafe { std::slice::from_raw_parts_mut(values.as_mut_ptr().cast::<u8>(), count * 4) };
        use rayon::prelude::*;
        const PIECE: usize = 32 << 20;
        bytes
            .par_chunks_mut(PIECE)
            .enumerate()
            .try_for_each(|(i, piece)| file.read_exact_at(piece, (offset + i * PIECE) as u64))?;
        return Ok(values);
    }
    Ok(data
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use natview_encoder::{EncoderSpec, ModelKind};

    #[test]
    fn embeddings_round_trip_bit_exactly_with_metadata() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("e.safetensors");
        let matrix = Matrix {
            rows: 2,
            dim: 3,
            data: vec![0.1, -0.2, 0.3, 1.0 / 3.0, 0.0, -1.0],
        };
        let meta = EmbeddingsMeta {
            encoder: EncoderSpec::untrained(ModelKind::Compact),
            weights_fingerprint: "seed:0".into(),
            dataset_fingerprint: "d".into(),
            items_fingerprint: "i".into(),
            embeddings_fingerprint: EmbeddingStore::fingerprint(&matrix),
            image_pipeline: "p".into(),
        };
        EmbeddingStore::save(&path, &matrix, &meta).expect("save");
        let (back, back_meta) = EmbeddingStore::load(&path).expect("load");
        assert_eq!(back, matrix);
        assert_eq!(back_meta, Some(meta));
    }

    #[test]
    fn a_truncated_file_is_refused_with_its_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.safetensors");
        std::fs::write(&path, b"\x05").expect("write");
        let err = EmbeddingStore::load(&path)
            .expect_err("refused")
            .to_string();
        assert!(
            err.contains("bad.safetensors: not a safetensors file"),
            "{err}"
        );
    }

    /// A valid embeddings file of 4 × 3 values, in a folder of its own.
    fn valid_file() -> (tempfile::TempDir, std::path::PathBuf, Vec<u8>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("e.safetensors");
        let matrix = Matrix {
            rows: 4,
            dim: 3,
            data: (0..12).map(|i| i as f32 / 12.0).collect(),
        };
        let meta = EmbeddingsMeta {
            encoder: EncoderSpec::untrained(ModelKind::Compact),
            weights_fingerprint: "seed:0".into(),
            dataset_fingerprint: "d".into(),
            items_fingerprint: "i".into(),
            embeddings_fingerprint: EmbeddingStore::fingerprint(&matrix),
            image_pipeline: "p".into(),
        };
        EmbeddingStore::save(&path, &matrix, &meta).expect("save");
        let bytes = std::fs::read(&path).expect("read");
        (dir, path, bytes)
    }

    #[test]
    fn a_file_read_unmapped_is_the_same_as_mapped() {
        let (_dir, path, _) = valid_file();
        let mapped = EmbeddingStore::load(&path).expect("mapped");
        assert_eq!(EmbeddingStore::read_unmapped(&path).expect("read"), mapped);
    }

    proptest::proptest! {
        #![proptest_config(natview_testkit::config())]

        #[test]
        fn damaged_embeddings_files_are_refused_or_consistent(
            changes in natview_testkit::mutations()
        ) {
            let (_dir, path, bytes) = valid_file();
            std::fs::write(&path, natview_testkit::apply(&bytes, &changes)).expect("write");
            let reads = [EmbeddingStore::load(&path), EmbeddingStore::read_unmapped(&path)];
            for (matrix, _) in reads.into_iter().flatten() {
                proptest::prop_assert_eq!(matrix.rows * matrix.dim, matrix.data.len());
            }
        }
    }
}
