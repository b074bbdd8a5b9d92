//! The encoders' 2D convolution: one place where the convolution algorithm is chosen.
//! It runs candle's `conv2d`; an im2col built from candle view ops was measured slower (see
//! BENCHMARKS.md), so a faster CPU path has to be a single-pass im2col custom op.

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

/// A bias-free 2D convolution with square kernel, stride and zero padding.
#[derive(Debug, Clone)]
pub struct Conv2d {
    weight: Tensor,
    stride: usize,
    padding: usize,
}

impl Conv2d {
    /// Reads (or creates) `weight` `[c_out, c_in, k, k]` through `vb` (Kaiming-normal init).
    pub fn new(
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        let weight = vb.get_with_hints(
            (c_out, c_in, kernel, kernel),
            "weight",
            candle_nn::init::DEFAULT_KAIMING_NORMAL,
        )?;
        Ok(Self {
            weight,
            stride,
            padding,
        })
    }

    /// The kernel tensor.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.conv2d(&self.weight, self.padding, self.stride, 1, 1)
    }
}
