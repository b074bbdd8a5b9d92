//! Intra- vs inter-listing similarity statistics: means, medians, their gap and the ROC AUC of
//! separating intra pairs (same listing) from inter pairs.

use super::AnalysisError;
use natview_core::linalg::{dot, Matrix};
use natview_core::rng::SplitMix64;
use serde::Serialize;

/// Summary of intra- and inter-listing pair similarities.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PairStats {
    /// Mean cosine similarity of pairs of views of one listing.
    pub intra_mean: f64,
    /// Median of the same.
    pub intra_median: f64,
    /// Mean cosine similarity of pairs from different listings.
    pub inter_mean: f64,
    /// Median of the same.
    pub inter_median: f64,
    /// `intra_mean − inter_mean`.
    pub gap: f64,
    /// Probability that a random intra pair is more similar than a random inter pair
    /// (ties count one half).
    pub auc: f64,
    /// Number of intra pairs used.
    pub intra_pairs: usize,
    /// Number of inter pairs used.
    pub inter_pairs: usize,
    /// Whether the inter pairs are a random sample rather than all of them.
    pub inter_sampled: bool,
}

fn mean(values: &[f32]) -> f64 {
    values.iter().map(|&v| v as f64).sum::<f64>() / values.len().max(1) as f64
}

fn median(values: &mut [f32]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f32::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2] as f64
    } else {
        (values[n / 2 - 1] as f64 + values[n / 2] as f64) / 2.0
    }
}

/// ROC AUC of `positives` against `negatives` (Mann–Whitney U with average ranks for ties).
pub fn roc_auc(positives: &[f32], negatives: &[f32]) -> f64 {
    if positives.is_empty() || negatives.is_empty() {
        return f64::NAN;
    }
    let mut all: Vec<(f32, bool)> = positives
        .iter()
        .map(|&v| (v, true))
        .chain(negatives.iter().map(|&v| (v, false)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut positive_rank_sum = 0f64;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j < all.len() && all[j].0 == all[i].0 {
            j += 1;
        }
        // Ranks i+1 ..= j share their average.
        let average_rank = (i + 1 + j) as f64 / 2.0;
        let positives_here = all[i..j].iter().filter(|(_, p)| *p).count();
        positive_rank_sum += average_rank * positives_here as f64;
        i = j;
    }
    let np = positives.len() as f64;
    let nn = negatives.len() as f64;
    (positive_rank_sum - np * (np + 1.0) / 2.0) / (np * nn)
}

/// Statistics of the given intra and inter similarities.
pub fn pair_stats(intra: &[f32], inter: &[f32], inter_sampled: bool) -> PairStats {
    let intra_mean = mean(intra);
    let inter_mean = mean(inter);
    PairStats {
        intra_mean,
        intra_median: median(&mut intra.to_vec()),
        inter_mean,
        inter_median: median(&mut inter.to_vec()),
        gap: intra_mean - inter_mean,
        auc: roc_auc(intra, inter),
        intra_pairs: intra.len(),
        inter_pairs: inter.len(),
        inter_sampled,
    }
}

/// Pair statistics over a whole embedding matrix: every intra-listing pair, and every
/// inter-listing pair when there are at most `max_inter_pairs` of them, else that many drawn at
/// random with `seed`.
pub fn dataset_pair_stats(
    matrix: &Matrix,
    listings: &[usize],
    max_inter_pairs: usize,
    seed: u64,
) -> Result<PairStats, AnalysisError> {
    let n = matrix.rows;
    let groups = super::rows_by_listing(listings);
    let mut intra = Vec::new();
    for group in &groups {
        for (a, &i) in group.iter().enumerate() {
            for &j in &group[a + 1..] {
                intra.push(dot(matrix.row(i), matrix.row(j)));
            }
        }
    }
    let all_pairs = n * n.saturating_sub(1) / 2;
    let inter_total = all_pairs - intra.len();
    if intra.is_empty() || inter_total == 0 {
        return Err(AnalysisError::NotEnoughData(
            "intra/inter statistics need at least one listing with two views and two listings"
                .into(),
        ));
    }
    let sampled = inter_total > max_inter_pairs;
    let inter: Vec<f32> = if sampled {
        let mut rng = SplitMix64::new(seed);
        let mut values = Vec::with_capacity(max_inter_pairs);
        while values.len() < max_inter_pairs {
            let (i, j) = (rng.below(n), rng.below(n));
            if listings[i] != listings[j] {
                values.push(dot(matrix.row(i), matrix.row(j)));
            }
        }
        values
    } else {
        use rayon::prelude::*;
        (0..n)
            .into_par_iter()
            .flat_map_iter(|i| {
                ((i + 1)..n)
                    .filter(move |&j| listings[i] != listings[j])
                    .map(move |j| dot(matrix.row(i), matrix.row(j)))
            })
            .collect()
    };
    Ok(pair_stats(&intra, &inter, sampled))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_ties_as_one_half() {
        assert_eq!(roc_auc(&[0.9, 0.8], &[0.1, 0.2]), 1.0);
        assert_eq!(roc_auc(&[0.1], &[0.9]), 0.0);
        // pos {0.5, 0.7}, neg {0.5, 0.6}: pairs (0.5,0.5)=½, (0.5,0.6)=0, (0.7,·)=1+1 → 2.5/4.
        assert_eq!(roc_auc(&[0.5, 0.7], &[0.5, 0.6]), 0.625);
    }

    #[test]
    fn hand_computed_statistics_on_three_unit_vectors() {
        // Rows a, b (listing 0) and c (listing 1) in 2-D.
        let s = std::f32::consts::FRAC_1_SQRT_2;
        let m = Matrix {
            rows: 3,
            dim: 2,
            data: vec![1.0, 0.0, s, s, 0.0, 1.0],
        };
        let stats = dataset_pair_stats(&m, &[0, 0, 1], 100, 0).expect("stats");
        // intra: a·b = 0.7071; inter: a·c = 0, b·c = 0.7071.
        assert_eq!(stats.intra_pairs, 1);
        assert_eq!(stats.inter_pairs, 2);
        assert!((stats.intra_mean - 0.70710677).abs() < 1e-6);
        assert!((stats.inter_mean - 0.35355338).abs() < 1e-6);
        assert!((stats.inter_median - 0.35355338).abs() < 1e-6);
        assert!((stats.gap - 0.35355338).abs() < 1e-6);
        assert!((stats.auc - 0.75).abs() < 1e-12);
        assert!(!stats.inter_sampled);
    }
}
