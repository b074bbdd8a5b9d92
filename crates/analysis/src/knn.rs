//! The k-nearest-neighbour graph the 2-D layouts start from: every row's `k` nearest other
//! rows with their Euclidean distances, by exact blocked search (gemm tiles) up to
//! [`EXACT_LIMIT`] rows and by natview's HNSW above.

use super::layout::LayoutObserver;
use super::AnalysisError;
use natview_core::linalg::Matrix;
use natview_index::{exact_neighbours_all, HnswParams, NeighbourIndex};
use rayon::prelude::*;

/// Rows up to which the graph is found by exact search; above, by HNSW.
pub const EXACT_LIMIT: usize = 150_000;

/// Every row's `k` nearest other rows, nearest first.
#[derive(Debug, Clone, PartialEq)]
pub struct KnnGraph {
    /// Number of rows.
    pub n: usize,
    /// Neighbours per row.
    pub k: usize,
    /// `n × k` neighbour row numbers, row `i`'s at `i * k..(i + 1) * k`, nearest first.
    pub indices: Vec<u32>,
    /// `n × k` Euclidean distances matching `indices` (ascending within a row).
    pub distances: Vec<f32>,
}

impl KnnGraph {
    /// Row `i`'s neighbours and their distances, nearest first.
    pub fn neighbours(&self, i: usize) -> (&[u32], &[f32]) {
        let range = i * self.k..(i + 1) * self.k;
        (&self.indices[range.clone()], &self.distances[range])
    }

    /// The same graph cut to the `k` nearest of each row (`k` ≤ `self.k`).
    pub fn truncated(&self, k: usize) -> KnnGraph {
        let k = k.min(self.k);
        let mut indices = Vec::with_capacity(self.n * k);
        let mut distances = Vec::with_capacity(self.n * k);
        for i in 0..self.n {
            let (ids, dists) = self.neighbours(i);
            indices.extend_from_slice(&ids[..k]);
            distances.extend_from_slice(&dists[..k]);
        }
        KnnGraph {
            n: self.n,
            k,
            indices,
            distances,
        }
    }
}

/// The `k`-nearest-neighbour graph of unit-length rows (cosine similarity `s` becomes the
/// Euclidean distance `√(2 − 2s)` between the unit vectors).
pub fn knn_graph(
    unit_rows: &Matrix,
    k: usize,
    observer: &mut dyn LayoutObserver,
) -> Result<KnnGraph, AnalysisError> {
    let n = unit_rows.rows;
    if k == 0 || n <= k {
        return Err(AnalysisError::NotEnoughData(format!(
            "{k} neighbours per point need more than {k} points, got {n}"
        )));
    }
    let distance = |similarity: f32| (2.0 - 2.0 * similarity).max(0.0).sqrt();
    let lists: Vec<Vec<(u32, f32)>> = if n <= EXACT_LIMIT {
        if !observer.progress("nearest neighbours", 0, 1) {
            return Err(AnalysisError::Cancelled);
        }
        exact_neighbours_all(unit_rows, k)
            .map_err(|e| AnalysisError::NotEnoughData(e.to_string()))?
            .into_iter()
            .map(|list| {
                list.into_iter()
                    .map(|nb| (nb.id as u32, distance(nb.similarity)))
                    .collect()
            })
            .collect()
    } else {
        if !observer.progress("nearest-neighbour index", 0, 1) {
            return Err(AnalysisError::Cancelled);
        }
        let params = HnswParams {
            max_connections: 16,
            ef_construction: 100,
            ef_search: (2 * k).max(32),
        };
        let index = NeighbourIndex::build(unit_rows, params)
            .map_err(|e| AnalysisError::NotEnoughData(e.to_string()))?;
        let chunk = 16_384;
        let mut lists = Vec::with_capacity(n);
        for start in (0..n).step_by(chunk) {
            if !observer.progress("nearest neighbours", start, n) {
                return Err(AnalysisError::Cancelled);
            }
            let end = (start + chunk).min(n);
            let found: Vec<Vec<(u32, f32)>> = (start..end)
                .into_par_iter()
                .map(|i| {
                    index
                        .search_excluding(unit_rows.row(i), i, k, None)
                        .map(|list| {
                            list.into_iter()
                                .map(|nb| (nb.id as u32, distance(nb.similarity)))
                                .collect()
                        })
                        .unwrap_or_default()
                })
                .collect();
            lists.extend(found);
        }
        lists
    };
    let mut indices = Vec::with_capacity(n * k);
    let mut distances = Vec::with_capacity(n * k);
    for (i, list) in lists.iter().enumerate() {
        if list.len() < k {
            return Err(AnalysisError::NotEnoughData(format!(
                "found {} of {k} neighbours for point {i}",
                list.len()
            )));
        }
        for &(id, d) in &list[..k] {
            indices.push(id);
            distances.push(d);
        }
    }
    observer.progress("nearest neighbours", n, n);
    Ok(KnnGraph {
        n,
        k,
        indices,
        distances,
    })
}
