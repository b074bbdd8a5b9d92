//! Helpers of the crate's unit tests.

use candle_core::Tensor;

/// The largest absolute value in `t`.
pub(crate) fn max_abs(t: &Tensor) -> f32 {
    t.abs()
        .and_then(|t| t.max_all())
        .and_then(|t| t.to_scalar::<f32>())
        .expect("max")
}

/// The largest absolute difference between `a` and `b` (same shape).
pub(crate) fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    max_abs(&(a - b).expect("difference"))
}

/// `len` seeded values uniform in `[-1, 1)`.
pub(crate) fn uniform(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = natview_core::rng::SplitMix64::new(seed);
    (0..len)
        .map(|_| rng.next_f64() as f32 * 2.0 - 1.0)
        .collect()
}
