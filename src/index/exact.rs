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
    blocked_search(base, base, k, true)
}

/// For every row of `queries`, its `k` nearest rows of `base`, best first.
pub fn exact_search(
    base: &Matrix,
    queries: &Matrix,
    k: usize,
) -> Result<Vec<Vec<Neighbour>>, IndexError> {
    if queries.dim != base.dim {
        return Err(IndexError::Dimension {
            expected: base.dim,
            got: queries.dim,
        });
    }
    blocked_search(base, queries, k, false)
}

/// Queries in blocks of [`BLOCK_ROWS`]: one gemm per block, then top-k per row in parallel.
/// With `exclude_self`, query `i` is row `i` of the base and is left out of its own answer.
fn blocked_search(
    base: &Matrix,
    queries: &Matrix,
    k: usize,
    exclude_self: bool,
) -> Result<Vec<Vec<Neighbour>>, IndexError> {
    use rayon::prelude::*;
    let mut out = Vec::with_capacity(queries.rows);
    for start in (0..queries.rows).step_by(BLOCK_ROWS) {
        let ids: Vec<usize> = (start..(start + BLOCK_ROWS).min(queries.rows)).collect();
        let block = queries.select_rows(&ids);
        let scores = similarity(&block, base)?;
        let found: Vec<Vec<Neighbour>> = scores
            .par_chunks(base.rows.max(1))
            .zip(&ids)
            .map(|(row_scores, &id)| {
                top_k(row_scores, k, exclude_self.then_some(id))
                    .into_iter()
                    .map(|(id, similarity)| Neighbour { id, similarity })
                    .collect()
            })
            .collect();
        out.extend(found);
    }
    Ok(out)
}
