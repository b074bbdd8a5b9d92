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
