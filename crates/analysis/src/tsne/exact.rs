//! The exact O(n²) repulsive term of t-SNE's gradient, for small layouts and as the
//! reference the FFT approximation is tested against.

use super::chunked_sum;

/// Writes the unnormalised repulsion `Σ_j q_ij² (y_i − y_j)` on every point into `out`
/// (`q_ij = 1 / (1 + |y_i − y_j|²)`) and returns the normalisation `Z = Σ_{i≠j} q_ij`.
/// Deterministic: fixed chunks, their partial sums added in order.
pub(super) fn exact_repulsion(pos: &[[f64; 2]], out: &mut [[f64; 2]]) -> f64 {
    chunked_sum(out, |i, o, z| {
        let [xi, yi] = pos[i];
        let (mut fx, mut fy) = (0.0, 0.0);
        for (j, &[xj, yj]) in pos.iter().enumerate() {
            if j == i {
                continue;
            }
            let (dx, dy) = (xi - xj, yi - yj);
            let q = 1.0 / (1.0 + dx * dx + dy * dy);
            *z += q;
            let q2 = q * q;
            fx += q2 * dx;
            fy += q2 * dy;
        }
        *o = [fx, fy];
    })
}
