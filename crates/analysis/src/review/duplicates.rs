//! Near-duplicates across listings: the cross-listing pairs at or above a threshold, grouped
//! into clusters (connected components: a re-upload of one photo in five listings is one
//! cluster of five), with the histogram of each item's nearest other-listing similarity to
//! choose the threshold from.

use super::{CrossNeighbours, ReviewKind, ReviewPair, ReviewQueue};
use serde::Serialize;

/// Counts of similarities in equal bins over `[lo, hi]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimilarityHistogram {
    /// Lower edge of the first bin.
    pub lo: f32,
    /// Upper edge of the last bin.
    pub hi: f32,
    /// Count per bin.
    pub counts: Vec<usize>,
}

impl SimilarityHistogram {
    /// The histogram of the finite `values` in `bins` bins over `[lo, 1]`, `lo` the smallest
    /// value rounded down to a tenth (so the interesting top end gets most bins).
    pub fn of(values: &[f32], bins: usize) -> Self {
        let finite = values.iter().copied().filter(|v| v.is_finite());
        let min = finite.clone().fold(1.0f32, f32::min);
        let lo = ((min * 10.0).floor() / 10.0).clamp(-1.0, 0.9);
        let hi = 1.0f32;
        let bins = bins.max(1);
        let mut counts = vec![0usize; bins];
        for v in finite {
            let t = ((v - lo) / (hi - lo) * bins as f32).floor();
            counts[(t.max(0.0) as usize).min(bins - 1)] += 1;
        }
        Self { lo, hi, counts }
    }

    /// How many values fall in bins starting at or above `threshold`.
    pub fn count_from(&self, threshold: f32) -> usize {
        let width = (self.hi - self.lo) / self.counts.len() as f32;
        self.counts
            .iter()
            .enumerate()
            .filter(|(i, _)| self.lo + *i as f32 * width >= threshold - width * 1e-3)
            .map(|(_, c)| c)
            .sum()
    }
}

/// The near-duplicate pairs at a threshold and their clusters.
#[derive(Debug, Clone, PartialEq)]
pub struct NearDuplicates {
    /// The threshold.
    pub threshold: f32,
    /// Pairs at or above it, most similar first, each with its cluster number.
    pub pairs: Vec<(u32, u32, f32, usize)>,
    /// Clusters (item rows, sorted), largest first (ties: most similar pair first).
    pub clusters: Vec<Vec<usize>>,
    /// Each item's nearest other-listing similarity, binned.
    pub histogram: SimilarityHistogram,
}

/// Bins of the similarity histogram.
pub const HISTOGRAM_BINS: usize = 60;

/// The near-duplicates among `candidates` at `threshold`.
pub fn near_duplicates(candidates: &CrossNeighbours, threshold: f32) -> NearDuplicates {
    let above: Vec<(u32, u32, f32)> = candidates
        .pairs
        .iter()
        .copied()
        .take_while(|&(_, _, s)| s >= threshold)
        .collect();
    // Union-find over the items in those pairs (rows renumbered densely).
    let mut rows: Vec<u32> = above.iter().flat_map(|&(a, b, _)| [a, b]).collect();
    rows.sort_unstable();
    rows.dedup();
    let slot = |r: u32| rows.binary_search(&r).unwrap_or(0);
    let mut parent: Vec<usize> = (0..rows.len()).collect();
    fn root(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    for &(a, b, _) in &above {
        let (ra, rb) = (root(&mut parent, slot(a)), root(&mut parent, slot(b)));
        if ra != rb {
            parent[ra.max(rb)] = ra.min(rb);
        }
    }
    // Clusters in the order their best pair appears (pairs are most similar first), then
    // stably by size: largest first, ties by best pair.
    let mut cluster_of_root = std::collections::HashMap::new();
    let mut clusters: Vec<Vec<usize>> = Vec::new();
    let mut pair_roots = Vec::with_capacity(above.len());
    for &(a, _, _) in &above {
        let r = root(&mut parent, slot(a));
        let next = cluster_of_root.len();
        let c = *cluster_of_root.entry(r).or_insert(next);
        if c == clusters.len() {
            clusters.push(Vec::new());
        }
        pair_roots.push(c);
    }
    for (i, &row) in rows.iter().enumerate() {
        let r = root(&mut parent, i);
        clusters[cluster_of_root[&r]].push(row as usize);
    }
    let mut order: Vec<usize> = (0..clusters.len()).collect();
    order.sort_by_key(|&c| std::cmp::Reverse(clusters[c].len()));
    let mut renumber = vec![0usize; clusters.len()];
    for (new, &old) in order.iter().enumerate() {
        renumber[old] = new;
    }
    let mut sorted_clusters: Vec<Vec<usize>> = order.iter().map(|&c| clusters[c].clone()).collect();
    for c in &mut sorted_clusters {
        c.sort_unstable();
    }
    let mut pairs: Vec<(u32, u32, f32, usize)> = above
        .iter()
        .zip(&pair_roots)
        .map(|(&(a, b, s), &c)| (a, b, s, renumber[c]))
        .collect();
    pairs.sort_by(|x, y| x.3.cmp(&y.3).then(y.2.total_cmp(&x.2)));
    NearDuplicates {
        threshold,
        pairs,
        clusters: sorted_clusters,
        histogram: SimilarityHistogram::of(&candidates.nearest, HISTOGRAM_BINS),
    }
}

impl NearDuplicates {
    /// As a review queue: cluster by cluster (largest first), each cluster's pairs most
    /// similar first.
    pub fn queue(&self) -> ReviewQueue {
        let images: usize = self.clusters.iter().map(Vec::len).sum();
        ReviewQueue {
            kind: ReviewKind::NearDuplicates,
            pairs: self
                .pairs
                .iter()
                .map(|&(a, b, s, c)| ReviewPair {
                    a: a as usize,
                    b: b as usize,
                    similarity: s,
                    score: s,
                    cluster: Some(c),
                    why: format!(
                        "other listings, cosine {s:.3} ≥ {:.3}; cluster {} of {} images",
                        self.threshold,
                        c + 1,
                        self.clusters[c].len()
                    ),
                })
                .collect(),
            clusters: self.clusters.clone(),
            histogram: Some(self.histogram.clone()),
            summary: format!(
                "{} pair(s) from different listings at cosine ≥ {:.3}, in {} cluster(s) of {} images",
                self.pairs.len(),
                self.threshold,
                self.clusters.len(),
                images
            ),
        }
    }
}
