//! PCA to two dimensions: covariance through gemm, then subspace iteration with a
//! Rayleigh–Ritz step solved by Jacobi rotations. (linfa-reduction's PCA was measured here at
//! 35× scikit-learn's time and once panicked on NaNs in its eigen-solver; see the README.)

use super::AnalysisError;
use candle_core::{Device, Tensor};
use natview_core::linalg::{dot_kernel, gram, Matrix};
use natview_core::rng::SplitMix64;
use rayon::prelude::*;
use serde::Serialize;

/// A 2D projection of every row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Projection {
    /// Method name ("pca").
    pub method: String,
    /// One `[x, y]` per row.
    pub points: Vec<[f32; 2]>,
    /// Share of the total variance along each axis (PCA; zeros for the other methods).
    pub explained_variance_ratio: [f64; 2],
    /// UMAP and t-SNE: the share of the variance kept by the principal components their
    /// neighbour graph was computed in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_variance_kept: Option<f64>,
}

/// The leading principal axes of a matrix's rows.
#[derive(Debug, Clone, PartialEq)]
pub struct PcaBasis {
    /// Column means.
    pub mean: Vec<f32>,
    /// Unit principal axes, largest variance first (each of the matrix's dimension).
    pub axes: Vec<Vec<f32>>,
    /// The variance along each axis.
    pub variances: Vec<f64>,
    /// The total variance of the rows.
    pub total_variance: f64,
}

impl PcaBasis {
    /// Share of the total variance along each axis.
    pub fn explained_variance_ratio(&self) -> Vec<f64> {
        self.variances
            .iter()
            .map(|&v| {
                if self.total_variance > 0.0 {
                    v / self.total_variance
                } else {
                    0.0
                }
            })
            .collect()
    }

    /// The centred rows of `matrix` in this basis: an `n × axes` matrix.
    pub fn project(&self, matrix: &Matrix) -> Matrix {
        let d = matrix.dim;
        let k = self.axes.len();
        let dot = dot_kernel();
        let offsets: Vec<f32> = self.axes.iter().map(|a| dot(&self.mean, a)).collect();
        let mut data = vec![0f32; matrix.rows * k];
        data.par_chunks_mut(k)
            .zip(matrix.data.par_chunks(d))
            .for_each(|(out, row)| {
                for ((o, axis), offset) in out.iter_mut().zip(&self.axes).zip(&offsets) {
                    *o = dot(row, axis) - offset;
                }
            });
        Matrix {
            rows: matrix.rows,
            dim: k,
            data,
        }
    }
}

/// The first `k` principal axes of the rows of `matrix` (`k` is capped at its dimension).
pub fn pca_basis(matrix: &Matrix, k: usize) -> Result<PcaBasis, AnalysisError> {
    let (n, d) = (matrix.rows, matrix.dim);
    if n < 3 || d < 2 {
        return Err(AnalysisError::NotEnoughData(format!(
            "PCA needs at least 3 rows of dimension ≥ 2, got {n} × {d}"
        )));
    }
    let k = k.clamp(1, d);
    // Column means, row blocks in parallel with f64 sums.
    let block_rows = 4096;
    let mean: Vec<f64> = matrix
        .data
        .par_chunks(block_rows * d)
        .map(|block| {
            let mut sums = vec![0f64; d];
            for row in block.chunks_exact(d) {
                sums.iter_mut().zip(row).for_each(|(s, &v)| *s += v as f64);
            }
            sums
        })
        .reduce(
            || vec![0f64; d],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                a
            },
        )
        .into_iter()
        .map(|s| s / n as f64)
        .collect();
    // Covariance without a centred copy of the data (as scikit-learn's covariance_eigh):
    // C = (XᵀX − n·μμᵀ) / (n − 1).
    let gram_values = gram(&matrix.data, n, d);
    let mut cov_values = vec![0f32; d * d];
    for a in 0..d {
        for b in 0..d {
            let centred = gram_values[a * d + b] as f64 - n as f64 * mean[a] * mean[b];
            cov_values[a * d + b] = (centred / (n - 1) as f64) as f32;
        }
    }
    let total_variance: f64 = (0..d).map(|i| cov_values[i * d + i] as f64).sum();
    let cov = Tensor::from_vec(cov_values, (d, d), &Device::Cpu)?;
    let (variances, vectors) = top_eigenpairs(&cov, d, k)?;
    Ok(PcaBasis {
        mean: mean.iter().map(|&m| m as f32).collect(),
        axes: vectors
            .iter()
            .map(|v| v.iter().map(|&x| x as f32).collect())
            .collect(),
        variances,
        total_variance,
    })
}

/// Projects the rows of `matrix` on their first two principal components.
pub fn pca_2d(matrix: &Matrix) -> Result<Projection, AnalysisError> {
    let basis = pca_basis(matrix, 2)?;
    let projected = basis.project(matrix);
    let ratio = basis.explained_variance_ratio();
    Ok(Projection {
        method: "pca".into(),
        points: projected
            .data
            .chunks_exact(2)
            .map(|p| [p[0], p[1]])
            .collect(),
        explained_variance_ratio: [ratio[0], ratio.get(1).copied().unwrap_or(0.0)],
        input_variance_kept: None,
    })
}

/// `A·Q` for the `d × d` tensor `a` and the vectors `q`, through gemm.
fn times(a: &Tensor, q: &[Vec<f64>], d: usize) -> Result<Vec<Vec<f64>>, AnalysisError> {
    let m = q.len();
    let mut data = vec![0f32; d * m];
    for (j, v) in q.iter().enumerate() {
        for (i, x) in v.iter().enumerate() {
            data[i * m + j] = *x as f32;
        }
    }
    let product = a
        .matmul(&Tensor::from_vec(data, (d, m), &Device::Cpu)?)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    Ok((0..m)
        .map(|j| (0..d).map(|i| product[i * m + j] as f64).collect())
        .collect())
}

/// The `k` largest eigenpairs of the symmetric `d × d` tensor `a`, by subspace iteration (f32
/// gemm, f64 orthonormalisation) and a Rayleigh–Ritz step. Each eigenvector's largest-magnitude
/// entry is made positive (a fixed sign).
fn top_eigenpairs(
    a: &Tensor,
    d: usize,
    k: usize,
) -> Result<(Vec<f64>, Vec<Vec<f64>>), AnalysisError> {
    let m = (k + 6).min(d);
    let k = k.min(m);
    let mut rng = SplitMix64::new(0x5eed);
    let mut q: Vec<Vec<f64>> = (0..m)
        .map(|_| (0..d).map(|_| rng.next_normal()).collect())
        .collect();
    orthonormalise(&mut q);
    let mut previous = vec![0f64; m];
    for _ in 0..300 {
        let mut z = times(a, &q, d)?;
        let rayleigh: Vec<f64> = q.iter().zip(&z).map(|(v, av)| dot64(v, av)).collect();
        orthonormalise(&mut z);
        q = z;
        let converged = rayleigh
            .iter()
            .zip(&previous)
            .take(k)
            .all(|(r, p)| (r - p).abs() <= 1e-7 * r.abs().max(1e-30));
        previous = rayleigh;
        if converged {
            break;
        }
    }
    // Rayleigh–Ritz: T = Qᵀ A Q, eigen-decomposed exactly.
    let aq = times(a, &q, d)?;
    let mut t = vec![0f64; m * m];
    for i in 0..m {
        for j in 0..m {
            t[i * m + j] = dot64(&q[i], &aq[j]);
        }
    }
    let (eigenvalues, eigenvectors) = jacobi_eigen(&t, m);
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&x, &y| eigenvalues[y].total_cmp(&eigenvalues[x]));
    let mut values = Vec::new();
    let mut vectors = Vec::new();
    for &c in order.iter().take(k) {
        let mut v = vec![0f64; d];
        for (i, qi) in q.iter().enumerate() {
            let w = eigenvectors[i * m + c];
            v.iter_mut().zip(qi).for_each(|(x, y)| *x += w * y);
        }
        let pivot = v
            .iter()
            .copied()
            .fold(0f64, |acc, x| if x.abs() > acc.abs() { x } else { acc });
        if pivot < 0.0 {
            v.iter_mut().for_each(|x| *x = -*x);
        }
        values.push(eigenvalues[c]);
        vectors.push(v);
    }
    Ok((values, vectors))
}

fn dot64(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Modified Gram–Schmidt; a vector that collapses is replaced by zeros.
fn orthonormalise(vs: &mut [Vec<f64>]) {
    for i in 0..vs.len() {
        for j in 0..i {
            let (done, rest) = vs.split_at_mut(i);
            let p = dot64(&rest[0], &done[j]);
            rest[0]
                .iter_mut()
                .zip(&done[j])
                .for_each(|(x, y)| *x -= p * y);
        }
        let norm = dot64(&vs[i], &vs[i]).sqrt();
        if norm > 1e-300 {
            vs[i].iter_mut().for_each(|x| *x /= norm);
        } else {
            vs[i].iter_mut().for_each(|x| *x = 0.0);
        }
    }
}

/// Eigen-decomposition of a small symmetric matrix by cyclic Jacobi rotations. Returns the
/// eigenvalues and the eigenvectors as the columns of a row-major `n × n` matrix.
fn jacobi_eigen(a: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = a.to_vec();
    let mut v = vec![0f64; n * n];
    (0..n).for_each(|i| v[i * n + i] = 1.0);
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j].powi(2))
            .sum();
        if off < 1e-30 {
            break;
        }
        for p in 0..n {
            for q in (p + 1)..n {
                let apq = a[p * n + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..n).map(|i| a[i * n + i]).collect(), v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jacobi_diagonalises_a_known_matrix() {
        // [[2,1],[1,2]] has eigenvalues 1 and 3.
        let (mut values, _) = jacobi_eigen(&[2.0, 1.0, 1.0, 2.0], 2);
        values.sort_by(f64::total_cmp);
        assert!((values[0] - 1.0).abs() < 1e-12 && (values[1] - 3.0).abs() < 1e-12);
    }

    #[test]
    fn pca_finds_the_axes_of_an_anisotropic_cloud() {
        let mut rng = SplitMix64::new(4);
        // Variance 9 along (1,1,0)/√2, 1 along (0,0,1), 0.01 along (1,-1,0)/√2.
        let rows: Vec<Vec<f32>> = (0..2000)
            .map(|_| {
                let (a, b, c) = (
                    3.0 * rng.next_normal(),
                    rng.next_normal(),
                    0.1 * rng.next_normal(),
                );
                let s = std::f64::consts::FRAC_1_SQRT_2;
                vec![(a * s + c * s) as f32, (a * s - c * s) as f32, b as f32]
            })
            .collect();
        let m = Matrix::from_rows(&rows).expect("rows");
        let p = pca_2d(&m).expect("pca");
        let r = p.explained_variance_ratio;
        assert!((r[0] - 9.0 / 10.01).abs() < 0.03, "{r:?}");
        assert!((r[1] - 1.0 / 10.01).abs() < 0.02, "{r:?}");
        // The first coordinate carries the (a) factor: variance ≈ 9.
        let var_x: f64 = p.points.iter().map(|q| (q[0] as f64).powi(2)).sum::<f64>() / 2000.0;
        assert!((var_x - 9.0).abs() < 0.8, "{var_x}");
    }
}
