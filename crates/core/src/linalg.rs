//! Dense vector maths on row-major f32 matrices: dot products, normalisation, blocked
//! similarity (A·Bᵀ through candle's gemm) and top-k selection.

use candle_core::{Device, Tensor};

/// A float64 value as the f32 natview computes in: the nearest f32, an infinity beyond f32's
/// range, never a wrapped value (float64 inputs — `.npy`, Parquet, stored similarities — are
/// read this way).
#[inline]
#[expect(
    clippy::cast_possible_truncation,
    reason = "narrowing is the point: `as` rounds to the nearest f32 and saturates to infinity"
)]
pub fn narrow(value: f64) -> f32 {
    value as f32
}

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

/// A dot-product function (see [`dot_kernel`]).
pub type DotFn = fn(&[f32], &[f32]) -> f32;

/// The fastest dot product this CPU runs: AVX2 + FMA when present (checked once, at run time,
/// so one binary serves every x86-64), else the portable [`dot`].
pub fn dot_kernel() -> DotFn {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            return dot_avx2_entry;
        }
    }
    dot
}

#[cfg(target_arch = "x86_64")]
fn dot_avx2_entry(a: &[f32], b: &[f32]) -> f32 {
    // SAFETY: only handed out by `dot_kernel` after checking that the CPU has AVX2 and FMA.
    unsafe { dot_avx2(a, b) }
}

/// Dot product with four 8-lane FMA accumulators.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    // SAFETY (all loads): i + 32 ≤ n, resp. i + 8 ≤ n, keeps every read inside both slices.
    while i + 32 <= n {
        for (j, acc) in acc.iter_mut().enumerate() {
            let x = _mm256_loadu_ps(pa.add(i + 8 * j));
            let y = _mm256_loadu_ps(pb.add(i + 8 * j));
            *acc = _mm256_fmadd_ps(x, y, *acc);
        }
        i += 32;
    }
    while i + 8 <= n {
        acc[0] = _mm256_fmadd_ps(
            _mm256_loadu_ps(pa.add(i)),
            _mm256_loadu_ps(pb.add(i)),
            acc[0],
        );
        i += 8;
    }
    let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let low = _mm256_castps256_ps128(sum);
    let high = _mm256_extractf128_ps(sum, 1);
    let quad = _mm_add_ps(low, high);
    let pair = _mm_add_ps(quad, _mm_movehl_ps(quad, quad));
    let single = _mm_add_ss(pair, _mm_shuffle_ps(pair, pair, 1));
    let mut total = _mm_cvtss_f32(single);
    while i < n {
        total += a[i] * b[i];
        i += 1;
    }
    total
}

/// Scales `v` to unit length (a zero vector stays zero).
#[inline]
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
    #[inline]
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

/// A read-only matrix operand of [`matmul`]: its values and strides (row, column) in elements.
#[derive(Clone, Copy)]
pub struct Operand<'a> {
    data: &'a [f32],
    row_stride: usize,
    col_stride: usize,
}

impl<'a> Operand<'a> {
    /// A row-major matrix with `cols` columns (`data` may start inside a wider row).
    #[inline]
    pub fn rows(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose of a row-major matrix with `cols` columns.
    #[inline]
    pub fn transposed(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            row_stride: 1,
            col_stride: cols,
        }
    }

    /// Whether an `rows × cols` view fits in `data`.
    fn fits(&self, rows: usize, cols: usize) -> bool {
        view_fits(
            self.data.len(),
            rows,
            cols,
            self.row_stride,
            self.col_stride,
        )
    }
}

/// The row-major destination of [`matmul`]: its values and row stride in elements.
pub struct Output<'a> {
    data: &'a mut [f32],
    row_stride: usize,
}

impl<'a> Output<'a> {
    /// Rows `row_stride` values apart (at least the product's column count; wider for a block
    /// of a larger matrix, with `data` starting at the block's first value).
    #[inline]
    pub fn rows(data: &'a mut [f32], row_stride: usize) -> Self {
        Self { data, row_stride }
    }
}

/// Whether a `rows × cols` view with these strides lies inside `len` values and its strides
/// are offsets gemm can take (`isize`). Computed without overflow: a view whose last index
/// does not fit a `usize` does not fit.
fn view_fits(len: usize, rows: usize, cols: usize, row_stride: usize, col_stride: usize) -> bool {
    if isize::try_from(row_stride).is_err() || isize::try_from(col_stride).is_err() {
        return false;
    }
    if rows == 0 || cols == 0 {
        return true;
    }
    let last = (rows - 1)
        .checked_mul(row_stride)
        .zip((cols - 1).checked_mul(col_stride))
        .and_then(|(r, c)| r.checked_add(c));
    last.is_some_and(|last| last < len)
}

/// `dst (m × n) = lhs (m × k) · rhs (k × n)`, or `dst += …` with `accumulate`, on the calling
/// thread (callers parallelise over their own tasks), for natview's kernel crates: the shapes
/// come from their own layers, never from input. Every view is checked against its slice (with
/// overflow-checked arithmetic, in release builds too) before the unchecked gemm runs, and a
/// view that does not fit panics rather than reading or writing out of bounds.
pub fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: Output<'_>,
    lhs: Operand<'_>,
    rhs: Operand<'_>,
    accumulate: bool,
) {
    assert!(
        n <= dst.row_stride || m <= 1,
        "matmul: destination rows overlap"
    );
    assert!(
        view_fits(dst.data.len(), m, n, dst.row_stride, 1),
        "matmul: destination too small"
    );
    assert!(
        lhs.fits(m, k) && rhs.fits(k, n),
        "matmul: operand too small"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for row in dst.data.chunks_mut(dst.row_stride.max(1)).take(m) {
                row[..n].fill(0.0);
            }
        }
        return;
    }
    // SAFETY: the asserts above keep every index gemm touches inside the three slices, `dst`
    // is borrowed mutably (no aliasing) and its rows do not overlap, and the strides are those
    // the views were built with.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.data.as_mut_ptr(),
            1,
            dst.row_stride as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// The Gram matrix `XᵀX` (`d × d`, row-major, symmetric) of the row-major `n × d` matrix `x`.
/// Only the blocks on and above the diagonal are multiplied (gemm); the rest is mirrored — the
/// symmetric rank-k update BLAS calls syrk, at ~5/8 of a full product. The rows are split into
/// chunks that fit in cache and summed per thread, so `x` is read from memory once (splitting
/// the columns instead reads it once per block pair).
pub fn gram(x: &[f32], n: usize, d: usize) -> Vec<f32> {
    use rayon::prelude::*;
    assert_eq!(x.len(), n * d, "gram: x must hold n × d values");
    if d == 0 {
        return Vec::new();
    }
    const BLOCK: usize = 128;
    // Rows per task: 4 MiB of `x` at d = 512, so a chunk stays in cache across its block pairs.
    let chunk_rows = (1 << 20) / d.max(1);
    let starts: Vec<usize> = (0..d).step_by(BLOCK).collect();
    let pairs: Vec<(usize, usize)> = starts
        .iter()
        .enumerate()
        .flat_map(|(i, &a)| starts[i..].iter().map(move |&b| (a, b)))
        .collect();
    let mut g = x
        .par_chunks(chunk_rows.max(1) * d)
        .fold(
            || vec![0f32; d * d],
            |mut acc, chunk| {
                let rows_in_chunk = chunk.len() / d;
                for &(a, b) in &pairs {
                    let (rows, cols) = (BLOCK.min(d - a), BLOCK.min(d - b));
                    // Block (a, b) of XᵀX: columns a.. of the chunk, transposed, times columns
                    // b.., added into the accumulator's rows a.., columns b...
                    matmul(
                        rows,
                        cols,
                        rows_in_chunk,
                        Output::rows(&mut acc[a * d + b..], d),
                        Operand::transposed(&chunk[a..], d),
                        Operand::rows(&chunk[b..], d),
                        true,
                    );
                }
                acc
            },
        )
        .reduce(
            || vec![0f32; d * d],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                a
            },
        );
    // Mirror the upper blocks (including the upper part of the diagonal blocks) downwards.
    for &(a, b) in &pairs {
        let (rows, cols) = (BLOCK.min(d - a), BLOCK.min(d - b));
        for i in 0..rows {
            for j in 0..cols {
                if a != b || j > i {
                    g[(b + j) * d + a + i] = g[(a + i) * d + b + j];
                }
            }
        }
    }
    g
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
    fn the_dispatched_dot_agrees_with_the_portable_one() {
        let kernel = dot_kernel();
        for n in [0, 1, 7, 8, 31, 32, 33, 256, 515] {
            let a: Vec<f32> = (0..n).map(|i| ((i * 7) % 13) as f32 * 0.1 - 0.6).collect();
            let b: Vec<f32> = (0..n).map(|i| ((i * 5) % 11) as f32 * 0.2 - 1.0).collect();
            assert!((kernel(&a, &b) - dot(&a, &b)).abs() < 1e-3, "length {n}");
        }
    }

    #[test]
    fn matmul_writes_a_block_of_a_wider_matrix_and_nothing_else() {
        // lhs 2 × 3, rhs (given transposed) 3 × 2, into columns 1..3 of a 3-wide matrix.
        let lhs = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let rhs_t = [1.0, 0.0, 1.0, 0.0, 1.0, 0.0];
        let mut dst = vec![9.0f32; 6];
        let out = Output::rows(&mut dst[1..], 3);
        matmul(
            2,
            2,
            3,
            out,
            Operand::rows(&lhs, 3),
            Operand::transposed(&rhs_t, 3),
            false,
        );
        assert_eq!(dst, vec![9.0, 4.0, 2.0, 9.0, 10.0, 5.0]);
        // k = 0: an empty sum, zero without `accumulate`, left alone with it.
        matmul(
            2,
            2,
            0,
            Output::rows(&mut dst[1..], 3),
            Operand::rows(&[], 0),
            Operand::rows(&[], 2),
            true,
        );
        assert_eq!(dst, vec![9.0, 4.0, 2.0, 9.0, 10.0, 5.0]);
        matmul(
            2,
            2,
            0,
            Output::rows(&mut dst[1..], 3),
            Operand::rows(&[], 0),
            Operand::rows(&[], 2),
            false,
        );
        assert_eq!(dst, vec![9.0, 0.0, 0.0, 9.0, 0.0, 0.0]);
    }

    #[test]
    fn views_whose_last_index_overflows_do_not_fit() {
        assert!(view_fits(6, 2, 3, 3, 1));
        assert!(!view_fits(6, 2, 4, 3, 1));
        // 2 × 2⁶³ wraps to 0 in unchecked arithmetic: it must not pass as "fits".
        assert!(!view_fits(16, 3, 2, usize::MAX / 2 + 1, 1));
        assert!(!view_fits(16, 2, 2, usize::MAX, usize::MAX));
        // A stride gemm cannot take as an offset, even where only one row is read.
        assert!(!view_fits(16, 1, 2, usize::MAX, 1));
        assert!(view_fits(0, 0, 5, 1, 1));
    }

    #[test]
    #[should_panic(expected = "matmul: operand too small")]
    fn matmul_refuses_an_operand_whose_strides_overflow() {
        let lhs = [1.0f32; 4];
        let rhs = [1.0f32; 4];
        let mut dst = [0.0f32; 6];
        matmul(
            3,
            2,
            2,
            Output::rows(&mut dst, 2),
            Operand::rows(&lhs, usize::MAX / 2 + 1),
            Operand::rows(&rhs, 2),
            false,
        );
    }

    #[test]
    fn gram_equals_x_transposed_times_x() {
        // Three column blocks, the last one partial; 37 rows (one chunk) and 4,000 (two chunks
        // summed across tasks, the last partial).
        assert!(gram(&[], 5, 0).is_empty());
        assert_eq!(gram(&[], 0, 3), vec![0.0; 9]);
        for (n, d) in [(37, 300), (4000, 300)] {
            let x: Vec<f32> = (0..n * d)
                .map(|i| ((i * 31) % 17) as f32 * 0.1 - 0.8)
                .collect();
            let g = gram(&x, n, d);
            for (a, b) in [
                (0, 0),
                (5, 200),
                (200, 5),
                (299, 128),
                (127, 128),
                (130, 129),
            ] {
                let direct: f64 = (0..n)
                    .map(|r| x[r * d + a] as f64 * x[r * d + b] as f64)
                    .sum();
                let error = (g[a * d + b] as f64 - direct).abs();
                assert!(error < 1e-5 * direct.abs().max(1.0), "n {n}: ({a}, {b})");
            }
        }
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
