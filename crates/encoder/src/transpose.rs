//! Transposing row-major f32 matrices, for the CPU kernels' layouts: weights laid out once at
//! load time (a kernel `[c_out, patch]` as `[patch, c_out]`, a depthwise kernel `[c, k·k]` as
//! `[k·k, c]`) and activations moved between channels-first and channels-last.

/// The transpose of the row-major `rows × cols` matrix `m`.
pub(crate) fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; rows * cols];
    transpose_into(m, rows, cols, &mut out);
    out
}

/// Writes the transpose of the row-major `rows × cols` matrix `m` into `out`, in 32 × 32
/// blocks (both sides stay in cache).
pub(crate) fn transpose_into(m: &[f32], rows: usize, cols: usize, out: &mut [f32]) {
    const B: usize = 32;
    for r0 in (0..rows).step_by(B) {
        for c0 in (0..cols).step_by(B) {
            for r in r0..(r0 + B).min(rows) {
                for col in c0..(c0 + B).min(cols) {
                    out[col * rows + r] = m[r * cols + col];
                }
            }
        }
    }
}
