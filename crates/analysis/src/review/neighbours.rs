//! Each item's nearest neighbours in *other* listings: the candidates of the near-duplicate and
//! hard-pair queues.

use super::{LayoutObserver, ReviewInput};
use crate::AnalysisError;
use natview_core::linalg::{dot, Matrix};
use natview_index::NeighbourIndex;
use rayon::prelude::*;

/// Finds an item's nearest other items (not itself), best first, as (row, cosine).
pub trait NeighbourSource: Sync {
    /// The `k` nearest rows to row `i` of the matrix, excluding `i`.
    fn nearest(&self, matrix: &Matrix, i: usize, k: usize) -> Vec<(usize, f32)>;
}

impl NeighbourSource for NeighbourIndex {
    fn nearest(&self, matrix: &Matrix, i: usize, k: usize) -> Vec<(usize, f32)> {
        // ef a little above k: near-duplicates are the very nearest, found first.
        self.search_excluding(matrix.row(i), i, k, Some((k + k / 2).max(32)))
            .map(|found| found.into_iter().map(|n| (n.id, n.similarity)).collect())
            .unwrap_or_default()
    }
}

/// Exact search by scoring every row (for small sets and tests).
pub struct BruteForce;

impl NeighbourSource for BruteForce {
    fn nearest(&self, matrix: &Matrix, i: usize, k: usize) -> Vec<(usize, f32)> {
        let q = matrix.row(i);
        let mut all: Vec<(usize, f32)> = (0..matrix.rows)
            .filter(|&j| j != i)
            .map(|j| (j, dot(q, matrix.row(j))))
            .collect();
        all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        all.truncate(k);
        all
    }
}

/// Cross-listing neighbour pairs of a dataset.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CrossNeighbours {
    /// Distinct pairs `(a, b, cosine)` with `a < b` from different listings, most similar first.
    pub pairs: Vec<(u32, u32, f32)>,
    /// Each item's similarity to its nearest item of another listing (`NaN`: none found).
    pub nearest: Vec<f32>,
}

/// An item's nearest other-listing cosine and its pairs.
type NearestAndPairs = (f32, Vec<(u32, u32, f32)>);

/// Asks for this many more neighbours than wanted, at most, to see past an item's own listing.
const MAX_EXTRA: usize = 190;

/// For every item, its `per_item` nearest items of other listings (the search asks for as many
/// more as the item's listing has other views, so those do not crowd them out).
pub fn cross_listing_neighbours(
    input: &ReviewInput<'_>,
    per_item: usize,
    observer: &mut dyn LayoutObserver,
) -> Result<CrossNeighbours, AnalysisError> {
    let n = input.matrix.rows;
    let mut listing_size = vec![0usize; input.listing.iter().max().map_or(0, |m| m + 1)];
    for &l in input.listing {
        listing_size[l] += 1;
    }
    let chunk = 8192;
    let mut nearest = Vec::with_capacity(n);
    let mut pairs = Vec::new();
    for start in (0..n).step_by(chunk) {
        if !observer.progress("nearest neighbours in other listings", start, n) {
            return Err(AnalysisError::Cancelled);
        }
        let end = (start + chunk).min(n);
        let found: Vec<NearestAndPairs> = (start..end)
            .into_par_iter()
            .map(|i| {
                let own = input.listing[i];
                let k = (per_item + (listing_size[own] - 1).min(MAX_EXTRA)).min(n - 1);
                let others: Vec<(usize, f32)> = input
                    .neighbours
                    .nearest(input.matrix, i, k)
                    .into_iter()
                    .filter(|&(j, _)| input.listing[j] != own)
                    .take(per_item)
                    .collect();
                let best = others.first().map_or(f32::NAN, |&(_, s)| s);
                let pairs = others
                    .into_iter()
                    .map(|(j, s)| (i.min(j) as u32, i.max(j) as u32, s))
                    .collect();
                (best, pairs)
            })
            .collect();
        for (best, found) in found {
            nearest.push(best);
            pairs.extend(found);
        }
    }
    observer.progress("nearest neighbours in other listings", n, n);
    pairs.par_sort_unstable_by(|x, y| (x.0, x.1).cmp(&(y.0, y.1)));
    pairs.dedup_by(|x, y| (x.0, x.1) == (y.0, y.1));
    pairs.par_sort_by(|x, y| y.2.total_cmp(&x.2).then((x.0, x.1).cmp(&(y.0, y.1))));
    Ok(CrossNeighbours { pairs, nearest })
}
