//! Dense vector maths on row-major f32 matrices: dot products, normalisation, blocked
//! similarity (A·Bᵀ through candle's gemm) and top-k selection.

use candle_core::{Device, Tensor};

/// Dot product, written so the compiler vectorises it (8 independent accumulators).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let chunks = n / 8;
    for i in 0..chunks {
        let (x, y) = (&a[i * 8..i * 8 + 8], &b[i * 8..i * 8 + 8]);
        for j in 0..8 {
            acc[j] += x[j] * y[j];
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for i in chunks * 8..n {
        sum += a[i] * b[i];
    }
    sum
}

/// Scales `v` to unit length (a zero vector stays zero).
pub fn l2_normalise(v: &mut [f32]) {
    let norm = dot(v, v).sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// A row-major matrix of `rows` vectors of length `dim`.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    /// Number of rows.
    pub rows: usize,
    /// Length of each row.
    pub dim: usize,
    /// `rows * dim` values.
    pub data: Vec<f32>,
}

impl Matrix {
    /// Builds a matrix from rows of equal length (`None` if lengths differ).
    pub fn from_rows(rows: &[Vec<f32>]) -> Option<Self> {
        let dim = rows.first().map_or(0, Vec::len);
        if rows.iter().any(|r| r.len() != dim) {
            return None;
        }
        Some(Self {
            rows: rows.len(),
            dim,
            data: rows.concat(),
        })
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// The rows listed in `ids`, in that order.
    pub fn select_rows(&self, ids: &[usize]) -> Matrix {
        let mut data = Vec::with_capacity(ids.len() * self.dim);
        for &i in ids {
            data.extend_from_slice(self.row(i));
        }
        Matrix {
            rows: ids.len(),
            dim: self.dim,
            data,
        }
    }
}

/// `a · bᵀ` as a row-major `a.rows × b.rows` matrix (cosine similarities for unit rows).
pub fn similarity(a: &Matrix, b: &Matrix) -> Result<Vec<f32>, candle_core::Error> {
    if a.rows == 0 || b.rows == 0 {
        return Ok(Vec::new());
    }
    let ta = Tensor::from_slice(&a.data, (a.rows, a.dim), &Device::Cpu)?;
    let tb = Tensor::from_slice(&b.data, (b.rows, b.dim), &Device::Cpu)?;
    ta.matmul(&tb.t()?)?.flatten_all()?.to_vec1::<f32>()
}

/// The `k` largest scores as `(index, score)`, best first, leaving out `exclude`.
pub fn top_k(scores: &[f32], k: usize, exclude: Option<usize>) -> Vec<(usize, f32)> {
    let mut candidates: Vec<(usize, f32)> = scores
        .iter()
        .copied()
        .enumerate()
        .filter(|(i, s)| Some(*i) != exclude && !s.is_nan())
        .collect();
    let by_score_desc =
        |x: &(usize, f32), y: &(usize, f32)| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0));
    if candidates.len() > k && k > 0 {
        candidates.select_nth_unstable_by(k - 1, by_score_desc);
        candidates.truncate(k);
    }
    candidates.sort_by(by_score_desc);
    candidates.truncate(k);
    candidates
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_a_plain_sum_on_odd_lengths() {
        let a: Vec<f32> = (0..19).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..19).map(|i| 1.0 - i as f32 * 0.1).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-4);
    }

    #[test]
    fn similarity_is_a_times_b_transposed() {
        let a = Matrix::from_rows(&[vec![1.0, 0.0], vec![0.0, 2.0]]).expect("rows");
        let b = Matrix::from_rows(&[vec![3.0, 4.0]]).expect("rows");
        assert_eq!(similarity(&a, &b).expect("matmul"), vec![3.0, 8.0]);
    }

    #[test]
    fn top_k_orders_best_first_and_skips_the_excluded_index() {
        let scores = [0.1, 0.9, 0.5, 0.95, 0.3];
        let top = top_k(&scores, 2, Some(3));
        assert_eq!(top, vec![(1, 0.9), (2, 0.5)]);
        assert_eq!(top_k(&scores, 10, None).len(), 5);
    }
}
