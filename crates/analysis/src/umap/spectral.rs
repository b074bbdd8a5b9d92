//! Spectral initialisation: the two leading non-trivial eigenvectors of the normalised
//! adjacency `D^-1/2 W D^-1/2` of the fuzzy graph (the smallest of its normalised Laplacian
//! after the trivial one), found by LOBPCG with a block of three vectors, deflated against the
//! trivial eigenvector `√deg`. Every reduction runs over fixed chunks in a fixed order, so the
//! result does not depend on the number of threads.

// The small dense matrices read most clearly with explicit indices.
#![allow(clippy::needless_range_loop)]

use super::super::layout::LayoutObserver;
use super::super::AnalysisError;
use super::graph::{components, Graph};
use natview_core::rng::SplitMix64;
use rayon::prelude::*;

/// Block size of LOBPCG (two wanted vectors and one guard vector).
const B: usize = 3;
/// Eigenvectors wanted.
const WANTED: usize = 2;
/// Rows per chunk in the parallel passes (fixed, so sums are added in a fixed order).
const CHUNK: usize = 4096;
/// Largest number of LOBPCG iterations.
const MAX_ITERATIONS: usize = 400;
/// Residual norm (of unit vectors) at which an eigenvector counts as converged.
const TOLERANCE: f64 = 1e-4;
/// Residual norm still accepted after [`MAX_ITERATIONS`]: the vectors are then smooth on the
/// graph, which is all an initial layout needs.
const LOOSE_TOLERANCE: f64 = 1e-2;
/// Smallest share of the points the largest connected component must hold.
const MIN_COMPONENT_SHARE: f64 = 0.9;

type Block = Vec<[f64; B]>;

/// `y = D^-1/2 W D^-1/2 x` for a block `x`.
fn apply(graph: &Graph, isd: &[f64], x: &[[f64; B]]) -> Block {
    let mut y = vec![[0.0; B]; graph.n];
    y.par_chunks_mut(CHUNK).enumerate().for_each(|(c, out)| {
        for (r, yi) in out.iter_mut().enumerate() {
            let i = c * CHUNK + r;
            if isd[i] == 0.0 {
                continue;
            }
            let (cols, weights) = graph.row(i);
            let mut acc = [0.0; B];
            for (&j, &w) in cols.iter().zip(weights) {
                let f = f64::from(w) * isd[j as usize];
                let xj = &x[j as usize];
                for d in 0..B {
                    acc[d] += f * xj[d];
                }
            }
            for d in 0..B {
                yi[d] = acc[d] * isd[i];
            }
        }
    });
    y
}

/// Removes from every column of `x` its component along the unit vector `v0`.
fn deflate(x: &mut [[f64; B]], v0: &[f64]) {
    let partial: Vec<[f64; B]> = x
        .par_chunks(CHUNK)
        .zip(v0.par_chunks(CHUNK))
        .map(|(xs, vs)| {
            let mut acc = [0.0; B];
            for (xi, &v) in xs.iter().zip(vs) {
                for d in 0..B {
                    acc[d] += v * xi[d];
                }
            }
            acc
        })
        .collect();
    let mut coef = [0.0; B];
    for p in &partial {
        for d in 0..B {
            coef[d] += p[d];
        }
    }
    x.par_chunks_mut(CHUNK)
        .zip(v0.par_chunks(CHUNK))
        .for_each(|(xs, vs)| {
            for (xi, &v) in xs.iter_mut().zip(vs) {
                for d in 0..B {
                    xi[d] -= v * coef[d];
                }
            }
        });
}

/// Eigen-decomposition of a small symmetric matrix (cyclic Jacobi): eigenvalues and the
/// eigenvectors as columns of `vectors` (`vectors[row][col]`).
fn symmetric_eigen(mut a: Vec<Vec<f64>>) -> (Vec<f64>, Vec<Vec<f64>>) {
    let m = a.len();
    let mut v = vec![vec![0.0; m]; m];
    for (i, row) in v.iter_mut().enumerate() {
        row[i] = 1.0;
    }
    for _sweep in 0..100 {
        let off: f64 = (0..m)
            .flat_map(|i| (0..m).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i][j] * a[i][j])
            .sum();
        let scale: f64 = (0..m).map(|i| a[i][i] * a[i][i]).sum::<f64>() + off;
        if off <= 1e-30 * scale || off == 0.0 {
            break;
        }
        for p in 0..m {
            for q in p + 1..m {
                if a[p][q] == 0.0 {
                    continue;
                }
                let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..m {
                    let (akp, akq) = (a[k][p], a[k][q]);
                    a[k][p] = c * akp - s * akq;
                    a[k][q] = s * akp + c * akq;
                }
                for k in 0..m {
                    let (apk, aqk) = (a[p][k], a[q][k]);
                    a[p][k] = c * apk - s * aqk;
                    a[q][k] = s * apk + c * aqk;
                }
                for row in v.iter_mut() {
                    let (vkp, vkq) = (row[p], row[q]);
                    row[p] = c * vkp - s * vkq;
                    row[q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..m).map(|i| a[i][i]).collect(), v)
}

/// Rayleigh–Ritz on the basis `S` (columns `ns`) given its Gram matrix `g = SᵀS` and
/// `h = SᵀAS`: the coefficients (`ns × B`, best Ritz pairs first, largest eigenvalue first)
/// and the Ritz values. `None` when the basis has fewer than `B` independent directions.
fn rayleigh_ritz(g: &[Vec<f64>], h: &[Vec<f64>]) -> Option<(Vec<[f64; B]>, [f64; B])> {
    let ns = g.len();
    let d: Vec<f64> = (0..ns)
        .map(|i| {
            if g[i][i] > 1e-300 {
                1.0 / g[i][i].sqrt()
            } else {
                0.0
            }
        })
        .collect();
    let scaled = |m: &[Vec<f64>]| -> Vec<Vec<f64>> {
        (0..ns)
            .map(|i| (0..ns).map(|j| d[i] * m[i][j] * d[j]).collect())
            .collect()
    };
    let (sigma, u) = symmetric_eigen(scaled(g));
    let top = sigma.iter().cloned().fold(0.0, f64::max);
    let kept: Vec<usize> = (0..ns).filter(|&k| sigma[k] > 1e-10 * top).collect();
    if kept.len() < B || !top.is_finite() {
        return None;
    }
    // W = D U_k Σ_k^-1/2 maps reduced coordinates to coefficients on S.
    let w: Vec<Vec<f64>> = (0..ns)
        .map(|i| {
            kept.iter()
                .map(|&k| d[i] * u[i][k] / sigma[k].sqrt())
                .collect()
        })
        .collect();
    let nk = kept.len();
    let reduced: Vec<Vec<f64>> = (0..nk)
        .map(|p| {
            (0..nk)
                .map(|q| {
                    let mut s = 0.0;
                    for i in 0..ns {
                        for j in 0..ns {
                            s += w[i][p] * h[i][j] * w[j][q];
                        }
                    }
                    s
                })
                .collect()
        })
        .collect();
    let (theta, y) = symmetric_eigen(reduced);
    let mut order: Vec<usize> = (0..nk).collect();
    order.sort_by(|&p, &q| theta[q].total_cmp(&theta[p]));
    let mut coef = vec![[0.0; B]; ns];
    let mut values = [0.0; B];
    for (col, &o) in order.iter().take(B).enumerate() {
        values[col] = theta[o];
        for (i, c) in coef.iter_mut().enumerate() {
            c[col] = (0..nk).map(|p| w[i][p] * y[p][o]).sum();
        }
    }
    if coef.iter().flatten().any(|c| !c.is_finite()) {
        return None;
    }
    Some((coef, values))
}

/// `SᵀS` and `SᵀAS` for the basis made of the blocks `s` (and `AS` = `a_s`).
fn grams(s: &[&Block], a_s: &[&Block]) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let ns = s.len() * B;
    let n = s[0].len();
    let chunks: Vec<usize> = (0..n).step_by(CHUNK).collect();
    let partial: Vec<(Vec<f64>, Vec<f64>)> = chunks
        .par_iter()
        .map(|&start| {
            let mut g = vec![0.0; ns * ns];
            let mut h = vec![0.0; ns * ns];
            let mut row = vec![0.0; ns];
            let mut arow = vec![0.0; ns];
            for i in start..(start + CHUNK).min(n) {
                for (b, (blk, ablk)) in s.iter().zip(a_s).enumerate() {
                    row[b * B..(b + 1) * B].copy_from_slice(&blk[i]);
                    arow[b * B..(b + 1) * B].copy_from_slice(&ablk[i]);
                }
                for p in 0..ns {
                    for q in 0..ns {
                        g[p * ns + q] += row[p] * row[q];
                        h[p * ns + q] += row[p] * arow[q];
                    }
                }
            }
            (g, h)
        })
        .collect();
    let mut g = vec![vec![0.0; ns]; ns];
    let mut h = vec![vec![0.0; ns]; ns];
    for (pg, ph) in &partial {
        for p in 0..ns {
            for q in 0..ns {
                g[p][q] += pg[p * ns + q];
                h[p][q] += ph[p * ns + q];
            }
        }
    }
    for p in 0..ns {
        for q in 0..p {
            let sym = 0.5 * (h[p][q] + h[q][p]);
            h[p][q] = sym;
            h[q][p] = sym;
        }
    }
    (g, h)
}

/// Row-wise basis update after Rayleigh–Ritz: `X ← S·C`, `P ← S·C'` (`C'` is `C` without the
/// rows of `X`), and the same for `AX`, `AP`, where `S = [X R P]` (`P` only when `with_p`).
#[allow(clippy::too_many_arguments)]
fn update(
    x: &mut Block,
    r: &Block,
    p: &mut Block,
    ax: &mut Block,
    ar: &Block,
    ap: &mut Block,
    coef: &[[f64; B]],
    with_p: bool,
) {
    let ns = coef.len();
    x.par_chunks_mut(CHUNK)
        .zip(ax.par_chunks_mut(CHUNK))
        .zip(p.par_chunks_mut(CHUNK).zip(ap.par_chunks_mut(CHUNK)))
        .zip(r.par_chunks(CHUNK).zip(ar.par_chunks(CHUNK)))
        .for_each(|(((xs, axs), (ps, aps)), (rs, ars))| {
            let mut row = [0.0; 3 * B];
            let mut arow = [0.0; 3 * B];
            for t in 0..xs.len() {
                row[..B].copy_from_slice(&xs[t]);
                row[B..2 * B].copy_from_slice(&rs[t]);
                arow[..B].copy_from_slice(&axs[t]);
                arow[B..2 * B].copy_from_slice(&ars[t]);
                if with_p {
                    row[2 * B..].copy_from_slice(&ps[t]);
                    arow[2 * B..].copy_from_slice(&aps[t]);
                }
                let (mut nx, mut nax, mut np, mut nap) = ([0.0; B], [0.0; B], [0.0; B], [0.0; B]);
                for (k, c) in coef.iter().enumerate().take(ns) {
                    for d in 0..B {
                        let (sv, av) = (row[k] * c[d], arow[k] * c[d]);
                        nx[d] += sv;
                        nax[d] += av;
                        if k >= B {
                            np[d] += sv;
                            nap[d] += av;
                        }
                    }
                }
                xs[t] = nx;
                axs[t] = nax;
                ps[t] = np;
                aps[t] = nap;
            }
        });
}

/// `X ← X·C`, `AX ← AX·C` for a `B × B` coefficient matrix.
fn rotate(x: &mut Block, ax: &mut Block, coef: &[[f64; B]]) {
    x.par_chunks_mut(CHUNK)
        .zip(ax.par_chunks_mut(CHUNK))
        .for_each(|(xs, axs)| {
            for (xi, axi) in xs.iter_mut().zip(axs.iter_mut()) {
                let (mut nx, mut nax) = ([0.0; B], [0.0; B]);
                for (k, c) in coef.iter().enumerate() {
                    for d in 0..B {
                        nx[d] += xi[k] * c[d];
                        nax[d] += axi[k] * c[d];
                    }
                }
                *xi = nx;
                *axi = nax;
            }
        });
}

/// Least-squares affine map from the PCA coordinates of the points in component `big` to
/// their spectral coordinates, applied to every other point.
fn place_outsiders(coords: &mut [[f64; 2]], pca: &[[f32; 2]], label: &[u32], big: u32) {
    let mut ata = [[0.0f64; 3]; 3];
    let mut atb = [[0.0f64; 2]; 3];
    for i in 0..coords.len() {
        if label[i] != big {
            continue;
        }
        let a = [f64::from(pca[i][0]), f64::from(pca[i][1]), 1.0];
        for p in 0..3 {
            for q in 0..3 {
                ata[p][q] += a[p] * a[q];
            }
            for d in 0..2 {
                atb[p][d] += a[p] * coords[i][d];
            }
        }
    }
    let map = solve3(ata, atb);
    for i in 0..coords.len() {
        if label[i] == big {
            continue;
        }
        let a = [f64::from(pca[i][0]), f64::from(pca[i][1]), 1.0];
        for d in 0..2 {
            coords[i][d] = (0..3).map(|p| a[p] * map[p][d]).sum();
        }
    }
}

/// Solves the 3 × 3 system `m·x = rhs` (two right-hand sides) by Gaussian elimination with
/// partial pivoting; a singular system gives the map to the mean (last row only).
fn solve3(mut m: [[f64; 3]; 3], mut rhs: [[f64; 2]; 3]) -> [[f64; 2]; 3] {
    let scale = m.iter().flatten().fold(0.0f64, |s, v| s.max(v.abs()));
    for col in 0..3 {
        let pivot = (col..3)
            .max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))
            .unwrap_or(col);
        if m[pivot][col].abs() <= 1e-12 * scale {
            let count = m[2][2].max(1.0);
            return [[0.0; 2], [0.0; 2], [rhs[2][0] / count, rhs[2][1] / count]];
        }
        m.swap(col, pivot);
        rhs.swap(col, pivot);
        for row in col + 1..3 {
            let f = m[row][col] / m[col][col];
            for k in col..3 {
                m[row][k] -= f * m[col][k];
            }
            for d in 0..2 {
                rhs[row][d] -= f * rhs[col][d];
            }
        }
    }
    let mut x = [[0.0; 2]; 3];
    for row in (0..3).rev() {
        for d in 0..2 {
            let s: f64 = (row + 1..3).map(|k| m[row][k] * x[k][d]).sum();
            x[row][d] = (rhs[row][d] - s) / m[row][row];
        }
    }
    x
}

/// The spectral layout of `graph`, or why it cannot be had (then the caller falls back to
/// its PCA layout). Points outside the largest connected component (when it holds at least
/// 90 % of them) are placed by an affine map of their PCA coordinates fitted on the
/// component.
pub(super) fn spectral_layout(
    graph: &Graph,
    pca: &[[f32; 2]],
    seed: u64,
    observer: &mut dyn LayoutObserver,
) -> Result<Result<Vec<[f32; 2]>, String>, AnalysisError> {
    let n = graph.n;
    let (label, sizes) = components(graph);
    let (big, &big_size) = sizes
        .iter()
        .enumerate()
        .max_by_key(|&(c, &s)| (s, std::cmp::Reverse(c)))
        .ok_or_else(|| AnalysisError::NotEnoughData("no points".into()))?;
    if (big_size as f64) < MIN_COMPONENT_SHARE * n as f64 {
        return Ok(Err(format!(
            "the fuzzy graph falls into {} components, the largest with {:.0} % of the points",
            sizes.len(),
            100.0 * big_size as f64 / n as f64
        )));
    }
    if big_size < 4 * B {
        return Ok(Err(format!("only {big_size} connected points")));
    }
    let big = big as u32;
    let mut isd = vec![0.0f64; n];
    let mut v0 = vec![0.0f64; n];
    isd.par_chunks_mut(CHUNK)
        .zip(v0.par_chunks_mut(CHUNK))
        .enumerate()
        .for_each(|(c, (is, vs))| {
            for (r, (d_inv, v)) in is.iter_mut().zip(vs.iter_mut()).enumerate() {
                let i = c * CHUNK + r;
                if label[i] != big {
                    continue;
                }
                let deg: f64 = graph.row(i).1.iter().map(|&w| f64::from(w)).sum();
                if deg > 0.0 {
                    *d_inv = 1.0 / deg.sqrt();
                    *v = deg.sqrt();
                }
            }
        });
    let norm = v0
        .par_chunks(CHUNK)
        .map(|c| c.iter().map(|v| v * v).sum::<f64>())
        .collect::<Vec<_>>()
        .iter()
        .sum::<f64>()
        .sqrt();
    if norm.is_nan() || norm <= 0.0 {
        return Ok(Err("the fuzzy graph has no weight".into()));
    }
    v0.par_iter_mut().for_each(|v| *v /= norm);

    // Start from the PCA coordinates (already smooth on the graph) and one random vector.
    let mut rng = SplitMix64::new(seed ^ 0x5eed_5eed_5eed_5eed);
    let mut x: Block = (0..n)
        .map(|i| {
            let r = rng.next_normal();
            if label[i] == big {
                [f64::from(pca[i][0]), f64::from(pca[i][1]), r]
            } else {
                [0.0; B]
            }
        })
        .collect();
    deflate(&mut x, &v0);
    let mut ax = apply(graph, &isd, &x);
    let (g, h) = grams(&[&x], &[&ax]);
    let Some((c, mut lambda)) = rayleigh_ritz(&g, &h) else {
        return Ok(Err("the starting vectors are degenerate".into()));
    };
    rotate(&mut x, &mut ax, &c);

    let mut r: Block = vec![[0.0; B]; n];
    let mut p: Block = vec![[0.0; B]; n];
    let mut ap: Block = vec![[0.0; B]; n];
    let mut with_p = false;
    let mut residual = f64::INFINITY;
    for iteration in 0..MAX_ITERATIONS {
        if !observer.progress("spectral init", iteration, MAX_ITERATIONS) {
            return Err(AnalysisError::Cancelled);
        }
        r.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK).zip(ax.par_chunks(CHUNK)))
            .for_each(|(rs, (xs, axs))| {
                for (ri, (xi, axi)) in rs.iter_mut().zip(xs.iter().zip(axs)) {
                    for d in 0..B {
                        ri[d] = axi[d] - lambda[d] * xi[d];
                    }
                }
            });
        deflate(&mut r, &v0);
        let ar = apply(graph, &isd, &r);
        let (g, h) = if with_p {
            grams(&[&x, &r, &p], &[&ax, &ar, &ap])
        } else {
            grams(&[&x, &r], &[&ax, &ar])
        };
        residual = (0..WANTED)
            .map(|d| g[B + d][B + d].max(0.0).sqrt())
            .fold(0.0, f64::max);
        if !residual.is_finite() {
            return Ok(Err("the eigenvector iteration diverged".into()));
        }
        if residual < TOLERANCE {
            break;
        }
        let mut solved = rayleigh_ritz(&g, &h);
        if solved.is_none() && with_p {
            // The basis lost rank: drop the search directions and retry.
            with_p = false;
            let cut = |m: &[Vec<f64>]| -> Vec<Vec<f64>> {
                m[..2 * B].iter().map(|row| row[..2 * B].to_vec()).collect()
            };
            solved = rayleigh_ritz(&cut(&g), &cut(&h));
        }
        let Some((c, values)) = solved else {
            break;
        };
        lambda = values;
        update(&mut x, &r, &mut p, &mut ax, &ar, &mut ap, &c, with_p);
        with_p = true;
    }
    if residual >= LOOSE_TOLERANCE {
        return Ok(Err(format!(
            "the eigenvectors did not converge (residual {residual:.1e})"
        )));
    }
    let mut coords: Vec<[f64; 2]> = x.iter().map(|xi| [xi[0], xi[1]]).collect();
    if big_size < n {
        place_outsiders(&mut coords, pca, &label, big);
    }
    if coords.iter().flatten().any(|v| !v.is_finite()) {
        return Ok(Err("the eigenvectors are not finite".into()));
    }
    observer.progress("spectral init", MAX_ITERATIONS, MAX_ITERATIONS);
    Ok(Ok(coords
        .iter()
        .map(|c| [c[0] as f32, c[1] as f32])
        .collect()))
}
