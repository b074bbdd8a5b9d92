//! `natview import`: vectors computed elsewhere become a workspace embedding set of their own
//! ("model" `imported:<name>`), matched to the dataset's items by row order or by a path
//! column, checked, and L2-normalised as natview's own embeddings are.

use super::InteropError;
use natview_core::dataset::Dataset;
use natview_core::linalg::Matrix;
use natview_core::workspace::Workspace;
use natview_encoder::EncoderSpec;
use natview_pipeline::store::EmbeddingStore;
use natview_pipeline::EmbeddingSet;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Vectors read from a file: one row per vector, and the path of each row's image when the
/// file has a path column.
#[derive(Debug, Clone, PartialEq)]
pub struct Vectors {
    /// The vectors, as read (not normalised).
    pub matrix: Matrix,
    /// Each row's image path, when the file carries one.
    pub paths: Option<Vec<String>>,
}

/// What to import.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    /// The file of vectors: `.npy`, `.safetensors` or `.parquet`.
    pub file: PathBuf,
    /// The name the set is kept under (`imported:<name>`); default: the file's stem.
    pub name: Option<String>,
    /// Parquet: the vector column (default: the only list-of-floats column).
    pub column: Option<String>,
    /// Safetensors: the tensor (default: `embeddings`, or the only tensor).
    pub tensor: Option<String>,
}

/// What an import did.
#[derive(Debug, Clone)]
pub struct ImportReport {
    /// The workspace file written.
    pub path: PathBuf,
    /// The spec that selects the set (`--model imported:<name>`).
    pub spec: EncoderSpec,
    /// Rows matched to items by the file's path column (else by row order).
    pub matched_by_path: bool,
    /// Rows of the file that belong to no item of the dataset (left out).
    pub unmatched_rows: usize,
}

/// Reads the vectors of `path`, choosing the reader by extension.
pub fn read_vectors(path: &Path, request: &ImportRequest) -> Result<Vectors, InteropError> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("npy") => {
            let array =
                natview_core::npy::read(path).map_err(|e| InteropError::invalid(path, e))?;
            if array.shape.len() != 2 {
                return Err(InteropError::invalid(
                    path,
                    format!("array of shape {:?}; expected N × D", array.shape),
                ));
            }
            Ok(Vectors {
                matrix: array.into_matrix(),
                paths: None,
            })
        }
        Some("safetensors") => read_safetensors(path, request.tensor.as_deref()),
        Some("parquet") => read_parquet(path, request.column.as_deref()),
        _ => Err(InteropError::invalid(
            path,
            "unsupported embeddings file: expected .npy, .safetensors or .parquet",
        )),
    }
}

#[cfg(feature = "parquet")]
fn read_parquet(path: &Path, column: Option<&str>) -> Result<Vectors, InteropError> {
    super::parquet_io::read_vectors(path, column)
}

#[cfg(not(feature = "parquet"))]
fn read_parquet(path: &Path, _column: Option<&str>) -> Result<Vectors, InteropError> {
    Err(InteropError::invalid(
        path,
        "this natview was built without Parquet support (cargo feature `parquet`)",
    ))
}

fn read_safetensors(path: &Path, tensor: Option<&str>) -> Result<Vectors, InteropError> {
    if let Some(name) = tensor {
        let bytes = std::fs::read(path).map_err(|e| InteropError::io(path, e))?;
        let tensors = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| InteropError::invalid(path, format!("not a safetensors file: {e}")))?;
        if !tensors.names().contains(&name) {
            let mut names: Vec<&str> = tensors.names();
            names.sort_unstable();
            return Err(InteropError::invalid(
                path,
                format!("no tensor `{name}` (tensors: {})", names.join(", ")),
            ));
        }
        let tensors = candle_core::safetensors::load_buffer(&bytes, &candle_core::Device::Cpu)
            .map_err(|e| InteropError::invalid(path, e))?;
        let t = tensors
            .get(name)
            .ok_or_else(|| InteropError::invalid(path, format!("no tensor `{name}`")))?;
        let (rows, dim) = t
            .dims2()
            .map_err(|_| InteropError::invalid(path, format!("tensor `{name}` is not N × D")))?;
        let data = t
            .to_dtype(candle_core::DType::F32)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| InteropError::invalid(path, e))?;
        return Ok(Vectors {
            matrix: Matrix { rows, dim, data },
            paths: None,
        });
    }
    // The user's file: read, not mapped (it may be rewritten while natview reads it).
    let (matrix, _) = EmbeddingStore::read_unmapped(path)?;
    Ok(Vectors {
        matrix,
        paths: None,
    })
}

/// The set's name: letters, digits, `-` and `_` only.
fn clean_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Checks the vectors (at least one dimension, finite, no zero rows) and puts them in the
/// dataset's item order: by path when the file has paths, else row for row.
fn match_rows(
    file: &Path,
    vectors: Vectors,
    dataset: &Dataset,
) -> Result<(Matrix, usize), InteropError> {
    let Vectors { matrix, paths } = vectors;
    if matrix.dim == 0 || matrix.rows == 0 {
        return Err(InteropError::invalid(
            file,
            format!("{} × {}: no vectors", matrix.rows, matrix.dim),
        ));
    }
    if let Some(bad) = matrix.data.iter().position(|v| !v.is_finite()) {
        return Err(InteropError::invalid(
            file,
            format!(
                "row {} holds a non-finite value ({}) at dimension {}",
                bad / matrix.dim,
                matrix.data[bad],
                bad % matrix.dim
            ),
        ));
    }
    let items = &dataset.items;
    let Some(paths) = paths else {
        if matrix.rows != items.len() {
            return Err(InteropError::invalid(
                file,
                format!(
                    "{} rows for {} images in {}: matched by row order they must be equal \
                     (or give the file a `path` column)",
                    matrix.rows,
                    items.len(),
                    dataset.source.display()
                ),
            ));
        }
        return Ok((matrix, 0));
    };
    let by_path: HashMap<String, usize> = paths
        .iter()
        .enumerate()
        .map(|(row, p)| (normalise_path(p), row))
        .collect();
    // Reserved for no more rows than the file holds (whatever the dataset's size).
    let mut data = Vec::with_capacity(items.len().min(matrix.rows) * matrix.dim);
    let mut missing = Vec::new();
    for item in items {
        let relative = normalise_path(&item.path.to_string_lossy());
        let absolute = normalise_path(&dataset.item_path(item).to_string_lossy());
        match by_path.get(&relative).or_else(|| by_path.get(&absolute)) {
            Some(&row) => data.extend_from_slice(matrix.row(row)),
            None => missing.push(item.path.display().to_string()),
        }
    }
    if !missing.is_empty() {
        return Err(InteropError::invalid(
            file,
            format!(
                "{} of {} images of {} have no row in the `path` column (first: {})",
                missing.len(),
                items.len(),
                dataset.source.display(),
                missing
                    .iter()
                    .take(3)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let unmatched = matrix.rows.saturating_sub(items.len());
    Ok((
        Matrix {
            rows: items.len(),
            dim: matrix.dim,
            data,
        },
        unmatched,
    ))
}

/// A path as compared between a file and the dataset: `/` separators, no leading `./`.
fn normalise_path(path: &str) -> String {
    let path = path.replace('\\', "/");
    path.trim_start_matches("./").to_string()
}

/// Unit rows (cosine similarity is what every view compares); a zero row is an error naming it.
fn normalise_rows(file: &Path, matrix: &mut Matrix) -> Result<(), InteropError> {
    let dim = matrix.dim;
    for (i, row) in matrix.data.chunks_exact_mut(dim).enumerate() {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm == 0.0 {
            return Err(InteropError::invalid(
                file,
                format!("row {i} is all zeros (it has no direction to compare)"),
            ));
        }
        row.iter_mut().for_each(|v| *v /= norm);
    }
    Ok(())
}

/// Imports `request.file` as the dataset's embedding set `imported:<name>` in `workspace`.
pub fn import_embeddings(
    dataset: &Dataset,
    workspace: &Workspace,
    request: &ImportRequest,
) -> Result<(EmbeddingSet, ImportReport), InteropError> {
    let file = &request.file;
    let bytes_fingerprint = {
        let bytes = std::fs::read(file).map_err(|e| InteropError::io(file, e))?;
        format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes))
    };
    let vectors = read_vectors(file, request)?;
    let matched_by_path = vectors.paths.is_some();
    let (mut matrix, unmatched_rows) = match_rows(file, vectors, dataset)?;
    normalise_rows(file, &mut matrix)?;
    let name = clean_name(&request.name.clone().unwrap_or_else(|| {
        file.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "embeddings".into())
    }));
    let spec = EncoderSpec::imported(&name);
    let (path, set) = super::store_set(
        dataset,
        workspace,
        &spec,
        (format!("imported:{bytes_fingerprint}"), String::new()),
        (dataset.items.clone(), matrix),
    )?;
    let report = ImportReport {
        path,
        spec,
        matched_by_path,
        unmatched_rows,
    };
    Ok((set, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cleaned_for_file_names() {
        assert_eq!(clean_name("clip vit/b.32"), "clip_vit_b_32");
    }

    #[test]
    fn zero_and_non_finite_rows_are_refused_by_row() {
        let file = Path::new("x.npy");
        let mut m = Matrix {
            rows: 2,
            dim: 2,
            data: vec![3.0, 4.0, 0.0, 0.0],
        };
        let err = normalise_rows(file, &mut m)
            .expect_err("zero row")
            .to_string();
        assert!(err.contains("x.npy: row 1 is all zeros"), "{err}");
        assert!((m.data[0] - 0.6).abs() < 1e-6);
    }
}
