//! Exact k-nearest-neighbour search by brute force (blocked matrix products): the reference that
//! HNSW results and retrieval metrics are checked against.

use super::{IndexError, Neighbour};
use crate::linalg::{similarity, top_k, Matrix};

/// Queries per block of the all-pairs search (bounds memory to `BLOCK × n` floats).
const BLOCK_ROWS: usize = 512;

/// The `k` most similar rows of `base` to `query`, leaving out `exclude`.
pub fn exact_neighbours(
    base: &Matrix,
    query: &[f32],
    k: usize,
    exclude: Option<usize>,
) -> Result<Vec<Neighbour>, IndexError> {
    if query.len() != base.dim {
        return Err(IndexError::Dimension {
            expected: base.dim,
            got: query.len(),
        });
    }
    let q = Matrix {
        rows: 1,
        dim: base.dim,
        data: query.to_vec(),
    };
    let scores = similarity(&q, base)?;
    Ok(top_k(&scores, k, exclude)
        .into_iter()
        .map(|(id, similarity)| Neighbour { id, similarity })
        .collect())
}

/// For every row of `base`, its `k` nearest other rows (itself excluded), best first.
pub fn exact_neighbours_all(base: &Matrix, k: usize) -> Result<Vec<Vec<Neighbour>>, IndexError> {
    let mut out = Vec::with_capacity(base.rows);
    for start in (0..base.rows).step_by(BLOCK_ROWS) {
        let ids: Vec<usize> = (start..(start + BLOCK_ROWS).min(base.rows)).collect();
        let block = base.select_rows(&ids);
        let scores = similarity(&block, base)?;
        for (row, &id) in ids.iter().enumerate() {
            let row_scores = &scores[row * base.rows..(row + 1) * base.rows];
            out.push(
                top_k(row_scores, k, Some(id))
                    .into_iter()
                    .map(|(id, similarity)| Neighbour { id, similarity })
                    .collect(),
            );
        }
    }
    Ok(out)
}
