//! t-SNE (van der Maaten & Hinton) of a k-nearest-neighbour graph, following openTSNE 1.0's
//! defaults and schedule: perplexity-calibrated affinities on the `3 × perplexity` nearest
//! neighbours, a rescaled PCA initialisation, early exaggeration, then plain optimisation,
//! by gradient descent with momentum and delta-bar-delta gains. The repulsive forces are
//! exact for small layouts and approximated by FFT-accelerated interpolation (FIt-SNE's
//! method) for large ones.
//!
//! Parallel with rayon and deterministic: every sum over points is split into fixed
//! chunks added in order, and the grid spreading writes disjoint rows, so the same input,
//! parameters and seed give bit-identical layouts on any number of threads.

mod affinities;
mod descent;
mod exact;
mod fft_repulsion;
#[cfg(test)]
mod tests;

use super::knn::KnnGraph;
use super::layout::LayoutObserver;
use super::AnalysisError;
use natview_core::rng::SplitMix64;
use rayon::prelude::*;

/// Points per chunk of every parallel loop over points (fixed, so that sums are added in
/// the same order whatever the number of threads).
const CHUNK: usize = 1024;

/// Writes `per_point(i, &mut out[i], &mut z)` for every point, in fixed chunks of [`CHUNK`]
/// points run in parallel, and returns the sum of the `z` each chunk accumulated, the chunks'
/// partial sums added in order — so the result is the same on any number of threads.
pub(super) fn chunked_sum(
    out: &mut [[f64; 2]],
    per_point: impl Fn(usize, &mut [f64; 2], &mut f64) + Sync,
) -> f64 {
    let partial: Vec<f64> = out
        .par_chunks_mut(CHUNK)
        .enumerate()
        .map(|(c, chunk)| {
            let mut z = 0.0;
            for (r, o) in chunk.iter_mut().enumerate() {
                per_point(c * CHUNK + r, o, &mut z);
            }
            z
        })
        .collect();
    partial.iter().sum()
}
/// Below this many points [`TsneRepulsion::Auto`] computes the repulsion exactly; from
/// here on by FFT interpolation, whose cost per iteration is about that of the exact sums
/// over 3,000 points.
pub const AUTO_EXACT_LIMIT: usize = 3_000;
/// Momentum of the early-exaggeration phase (openTSNE 1.0's `initial_momentum`).
const EARLY_MOMENTUM: f64 = 0.8;
/// Momentum after early exaggeration (openTSNE 1.0's `final_momentum`).
const FINAL_MOMENTUM: f64 = 0.8;
/// Standard deviation of the first coordinate of the initial layout (openTSNE's `pca`).
const INIT_STD: f64 = 1e-4;
/// Jitter added to the initial layout, relative to [`INIT_STD`] (openTSNE's `jitter`).
const INIT_JITTER: f64 = 0.01;

/// How the repulsive forces are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TsneRepulsion {
    /// Exact below [`AUTO_EXACT_LIMIT`] points, FFT interpolation from there on.
    #[default]
    Auto,
    /// Exact sums over all pairs: O(n²) per iteration, for small layouts and tests.
    Exact,
    /// FFT-accelerated interpolation (FIt-SNE): O(n) per iteration plus a grid FFT.
    Fft,
}

/// t-SNE parameters (openTSNE's defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct TsneParams {
    /// Effective number of neighbours of every point's input distribution (30).
    pub perplexity: f32,
    /// Factor on the attractive forces during the early phase (12).
    pub early_exaggeration: f32,
    /// Iterations of the early-exaggeration phase (250).
    pub early_iterations: usize,
    /// Iterations after the early phase (500).
    pub iterations: usize,
    /// Step size; `None` is openTSNE's "auto": `max(n / exaggeration, 200)` in each phase,
    /// so `n / early_exaggeration` early on and `n` afterwards (for n ≥ 2,400).
    pub learning_rate: Option<f32>,
    /// How the repulsive forces are computed.
    pub repulsion: TsneRepulsion,
    /// Seed of the tiny jitter added to the initial layout (which separates tied points).
    pub seed: u64,
}

impl Default for TsneParams {
    fn default() -> Self {
        Self {
            perplexity: 30.0,
            early_exaggeration: 12.0,
            early_iterations: 250,
            iterations: 500,
            learning_rate: None,
            repulsion: TsneRepulsion::Auto,
            seed: 0,
        }
    }
}

/// Lays out the rows whose kNN graph is `knn` (which needs `knn.k ≥ min(n − 1, ⌊3 ·
/// perplexity⌋)`; the first that many neighbours are used). `init` is the caller's 2-D PCA
/// of the rows (one point per row); t-SNE centres it and rescales it to a standard deviation
/// of 1e-4 on the first axis (openTSNE's `pca` initialisation). Reports the phases
/// "affinities", "early exaggeration" and "optimising" to `observer`, which can stop the
/// layout ([`AnalysisError::Cancelled`]) and take snapshots of it.
pub fn tsne(
    knn: &KnnGraph,
    init: &[[f32; 2]],
    params: &TsneParams,
    observer: &mut dyn LayoutObserver,
) -> Result<Vec<[f32; 2]>, AnalysisError> {
    let k_used = validate(knn, init, params)?;
    let n = knn.n;
    let p = affinities::joint_probabilities(knn, k_used, f64::from(params.perplexity), observer)?;
    let pos = initial_layout(init, params.seed);

    let use_fft = match params.repulsion {
        TsneRepulsion::Auto => n >= AUTO_EXACT_LIMIT,
        TsneRepulsion::Exact => false,
        TsneRepulsion::Fft => true,
    };
    let mut state = descent::Descent::new(p, pos, use_fft);
    let phases = [
        (
            "early exaggeration",
            f64::from(params.early_exaggeration),
            params.early_iterations,
            EARLY_MOMENTUM,
        ),
        ("optimising", 1.0, params.iterations, FINAL_MOMENTUM),
    ];
    for (phase, exaggeration, iterations, momentum) in phases {
        let learning_rate = match params.learning_rate {
            Some(rate) => f64::from(rate),
            None => (n as f64 / exaggeration).max(200.0),
        };
        for done in 0..iterations {
            state.step(exaggeration, learning_rate, momentum);
            if !observer.progress(phase, done + 1, iterations) {
                return Err(AnalysisError::Cancelled);
            }
            if observer.wants_snapshot() {
                observer.snapshot(state.layout());
            }
        }
    }
    if !state.is_finite() {
        return Err(AnalysisError::BadInput(
            "the t-SNE layout diverged (non-finite coordinates); try a smaller learning rate"
                .into(),
        ));
    }
    Ok(state.layout())
}

/// Checks the input; returns the number of neighbours per row the affinities use.
fn validate(
    knn: &KnnGraph,
    init: &[[f32; 2]],
    params: &TsneParams,
) -> Result<usize, AnalysisError> {
    let n = knn.n;
    let bad = |msg: String| Err(AnalysisError::BadInput(msg));
    if n < 2 {
        return Err(AnalysisError::NotEnoughData(format!(
            "t-SNE needs at least 2 points, got {n}"
        )));
    }
    if init.len() != n {
        return bad(format!(
            "the initial layout has {} points but the neighbour graph has {n}",
            init.len()
        ));
    }
    let perplexity = params.perplexity;
    if !perplexity.is_finite() || perplexity <= 0.0 {
        return bad(format!("the perplexity must be positive, got {perplexity}"));
    }
    let k_used = ((3.0 * f64::from(perplexity)) as usize).min(n - 1);
    if f64::from(perplexity) > k_used as f64 {
        return Err(AnalysisError::NotEnoughData(format!(
            "perplexity {perplexity} is too large for {n} points (it needs more than \
             {perplexity} neighbours per point; use at most {})",
            (n - 1) as f64 / 3.0
        )));
    }
    if knn.k < k_used {
        return bad(format!(
            "perplexity {perplexity} needs {k_used} neighbours per point, the graph has {}",
            knn.k
        ));
    }
    if knn.indices.len() != n * knn.k || knn.distances.len() != n * knn.k {
        return bad(format!(
            "the neighbour graph should hold {n} × {} entries, it has {} indices and {} \
             distances",
            knn.k,
            knn.indices.len(),
            knn.distances.len()
        ));
    }
    let ee = params.early_exaggeration;
    if !ee.is_finite() || ee <= 0.0 {
        return bad(format!("the early exaggeration must be positive, got {ee}"));
    }
    if let Some(rate) = params.learning_rate {
        if !rate.is_finite() || rate <= 0.0 {
            return bad(format!("the learning rate must be positive, got {rate}"));
        }
    }
    if let Some(i) = init
        .iter()
        .position(|p| !p[0].is_finite() || !p[1].is_finite())
    {
        return bad(format!(
            "the initial layout of point {i} is not finite: {:?}",
            init[i]
        ));
    }
    let faulty = (0..n).into_par_iter().find_first(|&i| {
        let (ids, dists) = knn.neighbours(i);
        ids[..k_used]
            .iter()
            .zip(&dists[..k_used])
            .any(|(&j, &d)| j as usize >= n || j as usize == i || !d.is_finite() || d < 0.0)
    });
    if let Some(i) = faulty {
        let (ids, dists) = knn.neighbours(i);
        return bad(format!(
            "point {i}'s neighbours are invalid (out of range, itself, or a distance that is \
             negative or not finite): {:?} at {:?}",
            &ids[..k_used.min(8)],
            &dists[..k_used.min(8)]
        ));
    }
    Ok(k_used)
}

/// The centred `init` scaled to [`INIT_STD`] on its first axis, plus a seeded jitter.
fn initial_layout(init: &[[f32; 2]], seed: u64) -> Vec<[f64; 2]> {
    let n = init.len() as f64;
    let mut mean = [0.0f64; 2];
    for p in init {
        mean[0] += f64::from(p[0]);
        mean[1] += f64::from(p[1]);
    }
    mean = [mean[0] / n, mean[1] / n];
    let std_of = |axis: usize| {
        let var = init
            .iter()
            .map(|p| (f64::from(p[axis]) - mean[axis]).powi(2))
            .sum::<f64>()
            / n;
        var.sqrt()
    };
    let mut std = std_of(0);
    if std.is_nan() || std <= 0.0 {
        std = std_of(1);
    }
    let scale = if std > 0.0 { INIT_STD / std } else { 1.0 };
    let mut rng = SplitMix64::new(seed);
    let jitter = INIT_STD * INIT_JITTER;
    init.iter()
        .map(|p| {
            [
                (f64::from(p[0]) - mean[0]) * scale + jitter * rng.next_normal(),
                (f64::from(p[1]) - mean[1]) * scale + jitter * rng.next_normal(),
            ]
        })
        .collect()
}
