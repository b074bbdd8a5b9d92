//! UMAP (McInnes, Healy & Melville 2018) as umap-learn 0.5 computes it, from a kNN graph: the
//! fuzzy simplicial set, a spectral (or PCA) initial layout and the optimisation of the fuzzy
//! cross-entropy by edge and negative sampling.
//!
//! Differences from umap-learn: `neighbours` counts the other points (umap-learn's
//! `n_neighbors` also counts the point itself, so the default 15 here is its 16); the spectral
//! initialisation is done by LOBPCG on the largest connected component (points of small other
//! components are placed by their PCA coordinates), and falls back to the PCA layout when the
//! graph has several large components (umap-learn would lay out the components separately)
//! or the eigenvectors do not converge; the optimisation is parallel yet reproducible (see
//! [`optimise`]), and does not give umap-learn's layout bit for bit.

mod graph;
mod optimise;
mod spectral;
#[cfg(test)]
mod tests;

use super::knn::KnnGraph;
use super::layout::LayoutObserver;
use super::AnalysisError;
use natview_core::rng::SplitMix64;
use rayon::prelude::*;

/// How UMAP's layout starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UmapInit {
    /// The leading eigenvectors of the fuzzy graph's normalised Laplacian (umap-learn's
    /// default), falling back to [`UmapInit::Pca`] when they cannot be had.
    Spectral,
    /// The caller's 2-D PCA of the points.
    Pca,
}

/// UMAP parameters (umap-learn's defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct UmapParams {
    /// Neighbours per point used for the fuzzy graph, not counting the point itself (15).
    pub neighbours: usize,
    /// Smallest distance between points in the layout, relative to `spread` (0.1).
    pub min_dist: f32,
    /// Scale of the layout's clusters (1.0).
    pub spread: f32,
    /// Optimisation epochs; `None` for umap-learn's 500 up to 10 000 points, else 200.
    pub epochs: Option<usize>,
    /// Negative samples per positive sample (5).
    pub negative_samples: usize,
    /// Initial learning rate, decaying linearly to 0 (1.0).
    pub learning_rate: f32,
    /// How the layout starts ([`UmapInit::Spectral`]).
    pub init: UmapInit,
    /// Seed of every random choice (0).
    pub seed: u64,
}

impl Default for UmapParams {
    fn default() -> Self {
        Self {
            neighbours: 15,
            min_dist: 0.1,
            spread: 1.0,
            epochs: None,
            negative_samples: 5,
            learning_rate: 1.0,
            init: UmapInit::Spectral,
            seed: 0,
        }
    }
}

/// Parameters `a`, `b` of the layout's similarity curve `1 / (1 + a·d^2b)`, fitted by least
/// squares (Levenberg–Marquardt) to umap-learn's target curve (1 below `min_dist`, then
/// `exp(−(d − min_dist) / spread)`) on its grid of 300 distances in `[0, 3·spread]`.
fn find_ab_params(spread: f32, min_dist: f32) -> (f32, f32) {
    let (spread, min_dist) = (f64::from(spread), f64::from(min_dist));
    let xs: Vec<f64> = (0..300).map(|t| 3.0 * spread * t as f64 / 299.0).collect();
    let ys: Vec<f64> = xs
        .iter()
        .map(|&x| {
            if x < min_dist {
                1.0
            } else {
                (-(x - min_dist) / spread).exp()
            }
        })
        .collect();
    let cost = |a: f64, b: f64| -> f64 {
        xs.iter()
            .zip(&ys)
            .map(|(&x, &y)| {
                let r = 1.0 / (1.0 + a * x.powf(2.0 * b)) - y;
                r * r
            })
            .sum()
    };
    let (mut a, mut b) = (1.0f64, 1.0f64);
    let mut lambda = 1e-3;
    let mut current = cost(a, b);
    for _ in 0..200 {
        // Normal equations JᵀJ δ = −Jᵀr of the residuals r = f(x) − y.
        let (mut jtj, mut jtr) = ([[0.0f64; 2]; 2], [0.0f64; 2]);
        for (&x, &y) in xs.iter().zip(&ys) {
            if x <= 0.0 {
                continue; // f = 1 and both derivatives vanish at x = 0
            }
            let u = x.powf(2.0 * b);
            let f = 1.0 / (1.0 + a * u);
            let da = -u * f * f;
            let db = -a * u * 2.0 * x.ln() * f * f;
            let r = f - y;
            let j = [da, db];
            for p in 0..2 {
                for q in 0..2 {
                    jtj[p][q] += j[p] * j[q];
                }
                jtr[p] += j[p] * r;
            }
        }
        let mut improved = false;
        for _ in 0..30 {
            let m = [
                [jtj[0][0] * (1.0 + lambda), jtj[0][1]],
                [jtj[1][0], jtj[1][1] * (1.0 + lambda)],
            ];
            let det = m[0][0] * m[1][1] - m[0][1] * m[1][0];
            if det.abs() < 1e-300 {
                lambda *= 10.0;
                continue;
            }
            let da = -(m[1][1] * jtr[0] - m[0][1] * jtr[1]) / det;
            let db = -(m[0][0] * jtr[1] - m[1][0] * jtr[0]) / det;
            let (na, nb) = (a + da, b + db);
            let next = if na > 0.0 && nb > 0.0 {
                cost(na, nb)
            } else {
                f64::INFINITY
            };
            if next < current {
                let converged = (current - next) <= 1e-15 * current.max(1e-300);
                a = na;
                b = nb;
                current = next;
                lambda = (lambda / 10.0).max(1e-12);
                improved = !converged;
                break;
            }
            lambda *= 10.0;
        }
        if !improved {
            break;
        }
    }
    (a as f32, b as f32)
}

/// Checks the kNN graph, the PCA layout and the parameters.
fn validate(
    knn: &KnnGraph,
    pca_init: &[[f32; 2]],
    params: &UmapParams,
) -> Result<(), AnalysisError> {
    let bad = |m: String| Err(AnalysisError::BadInput(m));
    let n = knn.n;
    let m = params.neighbours;
    if m < 2 {
        return bad(format!(
            "UMAP needs at least 2 neighbours per point, got {m}"
        ));
    }
    if knn.k < m {
        return bad(format!(
            "the kNN graph has {} neighbours per point, UMAP was asked to use {m}",
            knn.k
        ));
    }
    if knn.indices.len() != n * knn.k || knn.distances.len() != n * knn.k {
        return bad(format!(
            "the kNN graph holds {} indices and {} distances, {n} points × {} neighbours need {}",
            knn.indices.len(),
            knn.distances.len(),
            knn.k,
            n * knn.k
        ));
    }
    if n <= m {
        return Err(AnalysisError::NotEnoughData(format!(
            "UMAP with {m} neighbours needs more than {m} points, got {n}"
        )));
    }
    if pca_init.len() != n {
        return bad(format!(
            "the PCA layout has {} points, the kNN graph {n}",
            pca_init.len()
        ));
    }
    if let Some(i) = pca_init
        .par_iter()
        .position_first(|p| !(p[0].is_finite() && p[1].is_finite()))
    {
        return bad(format!("the PCA layout of point {i} is not finite"));
    }
    if let Some(i) = (0..n).into_par_iter().position_first(|i| {
        let (ids, dists) = knn.neighbours(i);
        ids[..m].iter().any(|&j| j as usize >= n)
            || dists[..m].iter().any(|&d| !(d.is_finite() && d >= 0.0))
    }) {
        return bad(format!(
            "point {i} of the kNN graph has a neighbour number ≥ {n} or a distance that is \
             negative or not finite"
        ));
    }
    if !(params.spread.is_finite() && params.spread > 0.0) {
        return bad(format!("spread must be positive, got {}", params.spread));
    }
    if !(params.min_dist.is_finite() && params.min_dist >= 0.0) {
        return bad(format!("min_dist must be ≥ 0, got {}", params.min_dist));
    }
    if params.min_dist > params.spread {
        return bad(format!(
            "min_dist ({}) must not exceed spread ({})",
            params.min_dist, params.spread
        ));
    }
    if !(params.learning_rate.is_finite() && params.learning_rate > 0.0) {
        return bad(format!(
            "the learning rate must be positive, got {}",
            params.learning_rate
        ));
    }
    Ok(())
}

/// umap-learn's initial scaling: largest absolute coordinate 10, Gaussian noise of standard
/// deviation 1e-4, then each axis mapped onto `[0, 10]`.
fn scale_initial(points: &mut [[f32; 2]], seed: u64) {
    let max_abs = points.iter().flatten().fold(0.0f32, |m, v| m.max(v.abs()));
    let expansion = if max_abs > 0.0 { 10.0 / max_abs } else { 1.0 };
    let mut rng = SplitMix64::new(seed ^ 0x6e6f_6973_6520_2020);
    for p in points.iter_mut() {
        for v in p.iter_mut() {
            *v = *v * expansion + (1e-4 * rng.next_normal()) as f32;
        }
    }
    for d in 0..2 {
        let (lo, hi) = points
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), p| {
                (lo.min(p[d]), hi.max(p[d]))
            });
        let range = hi - lo;
        let f = if range > 0.0 { 10.0 / range } else { 0.0 };
        for p in points.iter_mut() {
            p[d] = (p[d] - lo) * f;
        }
    }
}

/// Lays out the rows whose kNN graph is `knn` in 2-D by UMAP, using the first
/// `params.neighbours` neighbours of each row. `pca_init` is the caller's 2-D PCA of the same
/// rows, the start for [`UmapInit::Pca`] and the fallback when the spectral start cannot be
/// had (the observer is then told so in the phase text, `"PCA init (…)"`). The observer sees
/// the phases `"fuzzy graph"`, `"spectral init"` and `"optimising"` (after every epoch) and
/// gets a copy of the layout whenever it wants one; returning `false` from
/// [`LayoutObserver::progress`] stops with [`AnalysisError::Cancelled`]. The same seed gives
/// the same layout, bit for bit, whatever the number of threads.
pub fn umap(
    knn: &KnnGraph,
    pca_init: &[[f32; 2]],
    params: &UmapParams,
    observer: &mut dyn LayoutObserver,
) -> Result<Vec<[f32; 2]>, AnalysisError> {
    validate(knn, pca_init, params)?;
    let n = knn.n;
    let default_epochs = if n <= 10_000 { 500 } else { 200 };
    let epochs = params.epochs.unwrap_or(default_epochs);
    let prune_epochs = if epochs > 10 { epochs } else { default_epochs };
    let (a, b) = find_ab_params(params.spread, params.min_dist);

    if !observer.progress("fuzzy graph", 0, 1) {
        return Err(AnalysisError::Cancelled);
    }
    let graph = graph::fuzzy_graph(knn, params.neighbours, prune_epochs);
    if !observer.progress("fuzzy graph", 1, 1) {
        return Err(AnalysisError::Cancelled);
    }

    let mut points = match params.init {
        UmapInit::Pca => pca_init.to_vec(),
        UmapInit::Spectral => {
            match spectral::spectral_layout(&graph, pca_init, params.seed, observer)? {
                Ok(points) => points,
                Err(why) => {
                    let phase = format!("PCA init ({why})");
                    if !observer.progress(&phase, 1, 1) {
                        return Err(AnalysisError::Cancelled);
                    }
                    pca_init.to_vec()
                }
            }
        }
    };
    scale_initial(&mut points, params.seed);
    if observer.wants_snapshot() {
        observer.snapshot(points.clone());
    }
    let schedule = optimise::Schedule {
        a,
        b,
        epochs,
        negative_samples: params.negative_samples,
        learning_rate: params.learning_rate,
        seed: params.seed,
    };
    optimise::optimise(&graph, &mut points, &schedule, observer)?;
    Ok(points)
}
