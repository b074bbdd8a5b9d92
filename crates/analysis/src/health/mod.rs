//! Representation health: whether an embedding has collapsed and how its space is used —
//! the singular-value spectrum and its effective rank (RankMe, Garrido et al. 2023), the
//! dimensions that carry 95 % of the variance, alignment and uniformity on natural-view pairs
//! (Wang & Isola 2020), per-dimension variance, and hubness (the skew of how often each row
//! is among the others' nearest neighbours; Radovanović et al. 2010) — with a plain-language
//! verdict.
//!
//! Computed on a seeded sample of at most [`HealthParams::sample`] rows (the statistics
//! converge well before that), from the unit-length rows natview stores.

mod eigen;
mod hubness;
mod verdict;

pub use hubness::{Hub, Hubness};
pub use verdict::{Verdict, VerdictKind};

use super::AnalysisError;
use natview_core::linalg::{dot, gram, Matrix};
use natview_core::rng::SplitMix64;
use serde::Serialize;

/// How a health report is computed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HealthParams {
    /// Rows sampled (all when fewer).
    pub sample: usize,
    /// Neighbours per row for hubness.
    pub k: usize,
    /// Pairs sampled for alignment and uniformity.
    pub pairs: usize,
    /// Seed of the samples.
    pub seed: u64,
}

impl Default for HealthParams {
    fn default() -> Self {
        Self {
            sample: 10_000,
            k: 10,
            pairs: 50_000,
            seed: 0,
        }
    }
}

/// The health of one embedding matrix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Health {
    /// Rows the figures were computed on (a sample of `of_rows`).
    pub rows: usize,
    /// Rows of the matrix.
    pub of_rows: usize,
    /// Dimensions.
    pub dim: usize,
    /// Variance along each principal axis of the (centred) rows, largest first — the squared
    /// singular values over `rows − 1`; at most `min(rows − 1, dim)` of them.
    pub spectrum: Vec<f64>,
    /// RankMe's effective rank: `exp` of the entropy of the normalised singular values, from 1
    /// (one direction) to `min(rows, dim)` (all equal).
    pub effective_rank: f64,
    /// Principal axes needed for 95 % of the variance.
    pub dims_for_95: usize,
    /// Total variance of the unit rows (`1 − ‖mean‖²`): near 0 when every row points the same
    /// way.
    pub total_variance: f64,
    /// Mean cosine similarity between two different sampled rows.
    pub mean_cosine: f64,
    /// Variance of each dimension of the unit rows.
    pub dim_variance: Vec<f64>,
    /// Dimensions whose variance is below 1e-6 of the largest one's ("dead").
    pub dead_dims: usize,
    /// Alignment: mean squared distance `‖a − b‖²` between two natural views of one listing
    /// (lower: views closer); `None` without a listing of two views.
    pub alignment: Option<f64>,
    /// Uniformity: `log E exp(−2‖a − b‖²)` over random pairs (lower: spread more evenly over
    /// the sphere; −4 is the uniform sphere's limit in high dimension).
    pub uniformity: f64,
    /// Hubness at `k` neighbours.
    pub hubness: Hubness,
    /// What is wrong, if anything, in words.
    pub verdict: Verdict,
}

/// The health of the unit-length rows of `matrix`; `listings[i]` is row `i`'s listing number
/// (for alignment).
pub fn health(
    matrix: &Matrix,
    listings: &[usize],
    params: HealthParams,
) -> Result<Health, AnalysisError> {
    if matrix.rows < 3 || matrix.dim == 0 {
        return Err(AnalysisError::NotEnoughData(format!(
            "a health report needs at least 3 rows, got {} of {} dimensions",
            matrix.rows, matrix.dim
        )));
    }
    if listings.len() != matrix.rows {
        return Err(AnalysisError::BadInput(format!(
            "{} listing numbers for {} rows",
            listings.len(),
            matrix.rows
        )));
    }
    if let Some(row) = (0..matrix.rows).find(|&i| matrix.row(i).iter().any(|v| !v.is_finite())) {
        return Err(AnalysisError::BadInput(format!(
            "row {row} has a value that is not a finite number"
        )));
    }
    let mut rng = SplitMix64::new(params.seed);
    let rows = rng.sample_sorted(matrix.rows, params.sample.max(3));
    let sample = Matrix {
        rows: rows.len(),
        dim: matrix.dim,
        data: rows
            .iter()
            .flat_map(|&i| matrix.row(i).iter().copied())
            .collect(),
    };
    let sample_listings: Vec<usize> = rows.iter().map(|&i| listings[i]).collect();
    let (spectrum, dim_variance) = spectrum(&sample);
    let total_variance: f64 = dim_variance.iter().sum();
    let singular: Vec<f64> = spectrum.iter().map(|v| v.max(0.0).sqrt()).collect();
    let effective_rank = effective_rank(&singular);
    let dims_for_95 = dims_for_share(&spectrum, 0.95);
    let largest = dim_variance.iter().copied().fold(0f64, f64::max);
    let dead_dims = dim_variance
        .iter()
        .filter(|&&v| v <= largest * 1e-6)
        .count();
    let (alignment, uniformity, mean_cosine) =
        alignment_uniformity(&sample, &sample_listings, params.pairs, &mut rng);
    let hubness = hubness::hubness(&sample, &rows, params.k)?;
    let mut health = Health {
        rows: sample.rows,
        of_rows: matrix.rows,
        dim: matrix.dim,
        spectrum,
        effective_rank,
        dims_for_95,
        total_variance,
        mean_cosine,
        dim_variance,
        dead_dims,
        alignment,
        uniformity,
        hubness,
        verdict: Verdict::default(),
    };
    health.verdict = verdict::judge(&health);
    Ok(health)
}

/// The principal variances (descending) and the variance of each dimension.
fn spectrum(sample: &Matrix) -> (Vec<f64>, Vec<f64>) {
    let (n, d) = (sample.rows, sample.dim);
    let mut mean = vec![0f64; d];
    for i in 0..n {
        for (m, &v) in mean.iter_mut().zip(sample.row(i)) {
            *m += f64::from(v);
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let centred: Vec<f32> = (0..n)
        .flat_map(|i| {
            let mean = &mean;
            sample
                .row(i)
                .iter()
                .zip(mean)
                .map(|(&v, &m)| (f64::from(v) - m) as f32)
        })
        .collect();
    let denominator = (n - 1).max(1) as f64;
    // The non-zero eigenvalues of XᵀX and XXᵀ are the same: take the smaller matrix.
    let (g, side) = if d <= n {
        (gram(&centred, n, d), d)
    } else {
        let transposed: Vec<f32> = (0..d)
            .flat_map(|j| (0..n).map(move |i| (i, j)))
            .map(|(i, j)| centred[i * d + j])
            .collect();
        (gram(&transposed, d, n), n)
    };
    let dim_variance: Vec<f64> = (0..d)
        .map(|j| {
            (0..n)
                .map(|i| f64::from(centred[i * d + j]).powi(2))
                .sum::<f64>()
                / denominator
        })
        .collect();
    let values = eigen::symmetric_eigenvalues(g.iter().map(|&v| f64::from(v)).collect(), side);
    let keep = (n - 1).min(d);
    let spectrum = values
        .into_iter()
        .take(keep)
        .map(|v| (v / denominator).max(0.0))
        .collect();
    (spectrum, dim_variance)
}

/// RankMe: `exp(−Σ pₖ log pₖ)` with `pₖ = σₖ / Σσ`.
fn effective_rank(singular: &[f64]) -> f64 {
    let total: f64 = singular.iter().sum();
    if total <= 0.0 {
        return 1.0;
    }
    let entropy: f64 = singular
        .iter()
        .map(|s| s / total)
        .filter(|&p| p > 0.0)
        .map(|p| -p * p.ln())
        .sum();
    entropy.exp()
}

/// How many of the leading principal variances make up `share` of their sum.
fn dims_for_share(spectrum: &[f64], share: f64) -> usize {
    let total: f64 = spectrum.iter().sum();
    if total <= 0.0 {
        return 0;
    }
    let mut running = 0.0;
    for (i, v) in spectrum.iter().enumerate() {
        running += v;
        if running >= share * total {
            return i + 1;
        }
    }
    spectrum.len()
}

/// Alignment over natural-view pairs, uniformity and the mean cosine over random pairs.
fn alignment_uniformity(
    sample: &Matrix,
    listings: &[usize],
    pairs: usize,
    rng: &mut SplitMix64,
) -> (Option<f64>, f64, f64) {
    let n = sample.rows;
    let distance2 = |i: usize, j: usize| 2.0 - 2.0 * f64::from(dot(sample.row(i), sample.row(j)));
    let groups = crate::rows_by_listing(listings);
    let multi: Vec<&Vec<usize>> = groups.iter().filter(|g| g.len() >= 2).collect();
    let alignment = (!multi.is_empty()).then(|| {
        let mut sum = 0f64;
        for _ in 0..pairs {
            let group = multi[rng.below(multi.len())];
            let a = rng.below(group.len());
            let b = (a + 1 + rng.below(group.len() - 1)) % group.len();
            sum += distance2(group[a], group[b]);
        }
        sum / pairs.max(1) as f64
    });
    let (mut exp_sum, mut cos_sum) = (0f64, 0f64);
    for _ in 0..pairs {
        let i = rng.below(n);
        let j = (i + 1 + rng.below(n - 1)) % n;
        let d2 = distance2(i, j);
        exp_sum += (-2.0 * d2).exp();
        cos_sum += 1.0 - d2 / 2.0;
    }
    let count = pairs.max(1) as f64;
    (alignment, (exp_sum / count).ln(), cos_sum / count)
}

#[cfg(test)]
mod tests;
