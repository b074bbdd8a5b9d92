//! Eigenvalues of a symmetric matrix: Householder reduction to tridiagonal form, then the
//! implicit QL iteration with Wilkinson-style shifts (Golub & Van Loan, §8.3; the classic
//! tred2/tql pair, eigenvalues only). `O(n³)`: a 1,280-wide covariance in about a second —
//! where the Jacobi sweeps the PCA uses for its small matrices would take minutes.

/// The eigenvalues of the symmetric `n × n` row-major matrix `a`, in descending order (`a` is
/// overwritten). Iterations that do not converge leave their value as it stands (never seen
/// on covariance matrices; capped so that a NaN input cannot loop).
pub(crate) fn symmetric_eigenvalues(mut a: Vec<f64>, n: usize) -> Vec<f64> {
    assert_eq!(a.len(), n * n, "symmetric_eigenvalues: a must be n × n");
    if n == 0 {
        return Vec::new();
    }
    let (mut d, mut e) = tridiagonalise(&mut a, n);
    tridiagonal_ql(&mut d, &mut e);
    d.sort_by(|x, y| y.total_cmp(x));
    d
}

/// Householder reduction of `a` (lower triangle used) to a tridiagonal matrix: its diagonal
/// and its sub-diagonal (`e[i]` couples rows `i − 1` and `i`; `e[0] = 0`).
fn tridiagonalise(a: &mut [f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut d = vec![0f64; n];
    let mut e = vec![0f64; n];
    for i in (1..n).rev() {
        let l = i - 1;
        let mut h = 0f64;
        if l > 0 {
            let scale: f64 = a[i * n..i * n + l + 1].iter().map(|v| v.abs()).sum();
            if scale == 0.0 {
                e[i] = a[i * n + l];
            } else {
                for k in 0..=l {
                    a[i * n + k] /= scale;
                    h += a[i * n + k] * a[i * n + k];
                }
                let f = a[i * n + l];
                let g = if f >= 0.0 { -h.sqrt() } else { h.sqrt() };
                e[i] = scale * g;
                h -= f * g;
                a[i * n + l] = f - g;
                let mut f = 0f64;
                for j in 0..=l {
                    let mut g = 0f64;
                    for k in 0..=j {
                        g += a[j * n + k] * a[i * n + k];
                    }
                    for k in j + 1..=l {
                        g += a[k * n + j] * a[i * n + k];
                    }
                    e[j] = g / h;
                    f += e[j] * a[i * n + j];
                }
                let hh = f / (h + h);
                for j in 0..=l {
                    let f = a[i * n + j];
                    let g = e[j] - hh * f;
                    e[j] = g;
                    for k in 0..=j {
                        a[j * n + k] -= f * e[k] + g * a[i * n + k];
                    }
                }
            }
        } else {
            e[i] = a[i * n + l];
        }
        d[i] = h;
    }
    for (i, v) in d.iter_mut().enumerate() {
        *v = a[i * n + i];
    }
    e[0] = 0.0;
    (d, e)
}

/// The implicit QL iteration on the tridiagonal matrix (`d` diagonal, `e` sub-diagonal as
/// [`tridiagonalise`] leaves it): `d` becomes the eigenvalues (unordered).
fn tridiagonal_ql(d: &mut [f64], e: &mut [f64]) {
    let n = d.len();
    for i in 1..n {
        e[i - 1] = e[i];
    }
    e[n - 1] = 0.0;
    for l in 0..n {
        for _ in 0..64 {
            // The first negligible sub-diagonal element at or after l splits the matrix.
            let mut m = l;
            while m + 1 < n {
                let dd = d[m].abs() + d[m + 1].abs();
                if e[m].abs() <= f64::EPSILON * dd {
                    break;
                }
                m += 1;
            }
            if m == l {
                break;
            }
            let mut g = (d[l + 1] - d[l]) / (2.0 * e[l]);
            let r = g.hypot(1.0);
            g = d[m] - d[l] + e[l] / (g + r.copysign(g));
            let (mut s, mut c, mut p) = (1f64, 1f64, 0f64);
            let mut deflated = false;
            for i in (l..m).rev() {
                let f = s * e[i];
                let b = c * e[i];
                let r = f.hypot(g);
                e[i + 1] = r;
                if r == 0.0 {
                    d[i + 1] -= p;
                    e[m] = 0.0;
                    deflated = true;
                    break;
                }
                s = f / r;
                c = g / r;
                let g2 = d[i + 1] - p;
                let r = (d[i] - g2) * s + 2.0 * c * b;
                p = s * r;
                d[i + 1] = g2 + p;
                g = c * r - b;
            }
            if deflated {
                continue;
            }
            d[l] -= p;
            e[l] = g;
            e[m] = 0.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use natview_core::rng::SplitMix64;

    /// `Q diag(λ) Qᵀ` for a random orthogonal `Q` (Gram–Schmidt of random columns).
    fn with_eigenvalues(values: &[f64], seed: u64) -> Vec<f64> {
        let n = values.len();
        let mut rng = SplitMix64::new(seed);
        let mut q: Vec<Vec<f64>> = Vec::new();
        while q.len() < n {
            let mut v: Vec<f64> = (0..n).map(|_| rng.next_normal()).collect();
            for u in &q {
                let dot: f64 = v.iter().zip(u).map(|(a, b)| a * b).sum();
                v.iter_mut().zip(u).for_each(|(a, b)| *a -= dot * b);
            }
            let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
            if norm > 1e-6 {
                q.push(v.into_iter().map(|a| a / norm).collect());
            }
        }
        let mut a = vec![0f64; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] = (0..n).map(|k| q[k][i] * values[k] * q[k][j]).sum();
            }
        }
        a
    }

    #[test]
    fn recovers_known_eigenvalues_repeated_zero_and_negative_ones_too() {
        let cases: Vec<Vec<f64>> = vec![
            vec![5.0],
            vec![3.0, 1.0],
            vec![10.0, 4.0, 4.0, 1.0, 0.0, 0.0, -2.0],
            (0..60).map(|i| (-(i as f64) / 6.0).exp()).collect(),
        ];
        for (seed, mut want) in cases.into_iter().enumerate() {
            let got = symmetric_eigenvalues(with_eigenvalues(&want, seed as u64), want.len());
            want.sort_by(|x, y| y.total_cmp(x));
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-9, "{got:?} vs {want:?}");
            }
        }
        assert!(symmetric_eigenvalues(Vec::new(), 0).is_empty());
    }
}
