//! Exact k-nearest-neighbour search by brute force (blocked matrix products): the reference that
//! HNSW results and retrieval metrics are checked against.

use super::{IndexError, Neighbour};
use natview_core::linalg::{matmul, similarity, top_k, Matrix, Operand, Output};

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

/// Queries per task of the blocked search.
const QUERY_TILE: usize = 256;
/// Base rows per gemm tile (scores of one tile: `QUERY_TILE × BASE_TILE` floats, 4 MiB;
/// 8,192 rows measured ~4% slower, see BENCHMARKS.md).
const BASE_TILE: usize = 4096;

/// Exact search in tiles, as FAISS's flat index does: each task takes [`QUERY_TILE`] queries,
/// multiplies them with [`BASE_TILE`] base rows at a time (gemm into a reused buffer) and keeps
/// each query's best `k` in a small heap, so no `queries × base` score matrix is ever made.
/// With `exclude_self`, query `i` is row `i` of the base and is left out of its own answer.
fn blocked_search(
    base: &Matrix,
    queries: &Matrix,
    k: usize,
    exclude_self: bool,
) -> Result<Vec<Vec<Neighbour>>, IndexError> {
    use rayon::prelude::*;
    let d = base.dim;
    if k == 0 || base.rows == 0 {
        return Ok(vec![Vec::new(); queries.rows]);
    }
    let tiles: Vec<Vec<Vec<Neighbour>>> = queries
        .data
        .par_chunks(QUERY_TILE * d.max(1))
        .enumerate()
        .map(|(tile, q)| {
            let first = tile * QUERY_TILE;
            let nq = q.len().checked_div(d).unwrap_or(0);
            let mut heaps: Vec<TopK> = (0..nq).map(|_| TopK::new(k)).collect();
            let mut scores = vec![0f32; nq * BASE_TILE.min(base.rows)];
            for start in (0..base.rows).step_by(BASE_TILE) {
                let rows = BASE_TILE.min(base.rows - start);
                let b = &base.data[start * d..(start + rows) * d];
                // scores[i·rows + j] = q_i · b_j
                matmul(
                    nq,
                    rows,
                    d,
                    Output::rows(&mut scores, rows),
                    Operand::rows(q, d),
                    Operand::transposed(b, d),
                    false,
                );
                for (i, heap) in heaps.iter_mut().enumerate() {
                    let skip = exclude_self.then_some(first + i);
                    heap.offer_row(&scores[i * rows..(i + 1) * rows], start, skip);
                }
            }
            heaps.into_iter().map(TopK::into_sorted).collect()
        })
        .collect();
    Ok(tiles.into_iter().flatten().collect())
}

/// Scores per block of the selection scan (eight 8-lane vectors).
const SCAN_BLOCK: usize = 64;

/// The largest value of `block`, ignoring NaN (−∞ for an empty or all-NaN block). Written as
/// eight independent lanes of `if v > m { v } else { m }` (one `maxps` each), so it vectorises.
#[inline]
fn block_max(block: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let mut chunks = block.chunks_exact(8);
    for chunk in &mut chunks {
        for (m, &v) in lanes.iter_mut().zip(chunk) {
            *m = if v > *m { v } else { *m };
        }
    }
    for &v in chunks.remainder() {
        lanes[0] = if v > lanes[0] { v } else { lanes[0] };
    }
    lanes
        .iter()
        .fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m })
}

/// The best `k` (id, score) pairs seen so far: a min-heap on score (NaN never enters).
struct TopK {
    k: usize,
    heap: std::collections::BinaryHeap<std::cmp::Reverse<Scored>>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Scored(f32, usize);
impl Eq for Scored {}
impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scored {
    /// Higher score first; on equal scores the lower id counts as better.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0).then(other.1.cmp(&self.1))
    }
}

impl TopK {
    fn new(k: usize) -> Self {
        Self {
            k,
            heap: std::collections::BinaryHeap::with_capacity(k + 1),
        }
    }

    /// Scores at or below this cannot enter (−∞ until `k` are held).
    #[inline]
    fn threshold(&self) -> f32 {
        if self.heap.len() < self.k {
            f32::NEG_INFINITY
        } else {
            self.heap.peek().map_or(f32::NEG_INFINITY, |r| r.0 .0)
        }
    }

    fn push(&mut self, id: usize, score: f32) {
        self.heap.push(std::cmp::Reverse(Scored(score, id)));
        if self.heap.len() > self.k {
            self.heap.pop();
        }
    }

    /// Offers `row[j]` as id `first_id + j` for every `j`, except the id `skip`. Runs of
    /// [`SCAN_BLOCK`] scores whose maximum cannot enter are passed over with one vectorised
    /// comparison, so the common case costs a fraction of a cycle per score.
    fn offer_row(&mut self, row: &[f32], first_id: usize, skip: Option<usize>) {
        let mut threshold = self.threshold();
        let mut offset = 0;
        for block in row.chunks(SCAN_BLOCK) {
            if block_max(block) > threshold {
                for (j, &score) in block.iter().enumerate() {
                    let id = first_id + offset + j;
                    if score > threshold && Some(id) != skip {
                        self.push(id, score);
                        threshold = self.threshold();
                    }
                }
            }
            offset += block.len();
        }
    }

    fn into_sorted(self) -> Vec<Neighbour> {
        let mut items: Vec<Scored> = self.heap.into_iter().map(|r| r.0).collect();
        items.sort_by(|a, b| b.cmp(a));
        items
            .into_iter()
            .map(|Scored(similarity, id)| Neighbour { id, similarity })
            .collect()
    }
}

#[cfg(test)]
#[allow(
    clippy::cast_possible_truncation,
    reason = "test data: seeded f64 normal draws narrowed to f32"
)]
mod tests {
    use super::*;
    use natview_core::linalg::{similarity, top_k};
    use natview_core::rng::SplitMix64;

    #[test]
    fn tiled_search_equals_sorting_every_score() {
        // More base rows than one tile and more queries than one task, with tied scores.
        let mut rng = SplitMix64::new(3);
        let d = 12;
        let mut rows: Vec<Vec<f32>> = (0..BASE_TILE + 300)
            .map(|_| (0..d).map(|_| rng.next_normal() as f32).collect())
            .collect();
        rows[5] = rows[BASE_TILE + 100].clone();
        let base = Matrix::from_rows(&rows).expect("rows");
        let queries = base.select_rows(
            &(0..QUERY_TILE + 7)
                .map(|i| i * 97 % (BASE_TILE + 300))
                .collect::<Vec<_>>(),
        );
        let found = exact_search(&base, &queries, 7).expect("search");
        let scores = similarity(&queries, &base).expect("scores");
        for (i, f) in found.iter().enumerate() {
            let expected = top_k(&scores[i * base.rows..(i + 1) * base.rows], 7, None);
            let got: Vec<(usize, f32)> = f.iter().map(|n| (n.id, n.similarity)).collect();
            assert_eq!(got.len(), 7);
            for (g, e) in got.iter().zip(&expected) {
                assert!(
                    (g.1 - e.1).abs() < 1e-4,
                    "query {i}: {got:?} vs {expected:?}"
                );
            }
        }
        let all =
            exact_neighbours_all(&base.select_rows(&(0..200).collect::<Vec<_>>()), 3).expect("all");
        assert!(all
            .iter()
            .enumerate()
            .all(|(i, f)| f.iter().all(|n| n.id != i)));
    }

    #[test]
    fn the_block_scan_keeps_what_a_score_by_score_scan_keeps() {
        // Rising scores (most blocks hold a new best), a partial last block, NaNs, and the
        // skipped id among the best.
        let mut rng = SplitMix64::new(11);
        let mut row: Vec<f32> = (0..1000)
            .map(|j| rng.next_normal() as f32 + j as f32 * 0.002)
            .collect();
        row[3] = f32::NAN;
        row[640] = f32::NAN;
        row[999] = 100.0;
        for skip in [None, Some(1000 + 999), Some(1000 + 3)] {
            let mut fast = TopK::new(9);
            fast.offer_row(&row, 1000, skip);
            let mut slow = TopK::new(9);
            for (j, &score) in row.iter().enumerate() {
                if score > slow.threshold() && Some(1000 + j) != skip {
                    slow.push(1000 + j, score);
                }
            }
            let ids = |t: TopK| t.into_sorted().iter().map(|n| n.id).collect::<Vec<_>>();
            let (fast, slow) = (ids(fast), ids(slow));
            assert_eq!(fast.len(), 9);
            assert_eq!(fast, slow, "skip {skip:?}");
            assert_eq!(fast[0] == 1999, skip != Some(1999));
        }
        assert_eq!(block_max(&[]), f32::NEG_INFINITY);
        assert_eq!(block_max(&[f32::NAN, -2.0, f32::NAN]), -2.0);
        assert_eq!(
            block_max(&(0..70).map(|v| v as f32).collect::<Vec<_>>()),
            69.0
        );
    }
}
