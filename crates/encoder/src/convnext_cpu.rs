//! ConvNeXt's block in evaluation on the CPU, fused: candle runs its element-wise operations
//! (bias adds, the erf GELU, the layer-scale multiply, the permutes) on one thread each, which
//! left a 2-core machine at 0.44× PyTorch's images/s. Here the depthwise convolution (our
//! kernel, bias in its epilogue), the move to channels-last with the LayerNorm, the bias + GELU
//! and the bias + layer scale + residual with the move back are each one parallel pass; the two
//! matrix products stay candle's (multi-threaded gemm).

use super::depthwise_cpu::{self, DepthwiseGeometry, Epilogue};
use candle_core::{Device, Result, Tensor};
use rayon::prelude::*;

/// Rows per parallel task of the bias + GELU pass.
const TILE: usize = 64;

/// The values a block needs, as flat f32 (kernels and vectors) and candle matrices (`Wᵀ`).
#[derive(Debug)]
pub(crate) struct FusedBlock {
    pub dw_kernel: Vec<f32>,
    pub dw_bias: Vec<f32>,
    pub ln_weight: Vec<f32>,
    pub ln_bias: Vec<f32>,
    pub eps: f32,
    pub fc1_t: Tensor,
    pub fc1_bias: Vec<f32>,
    pub fc2_t: Tensor,
    pub fc2_bias: Vec<f32>,
    pub scale: Vec<f32>,
}

impl FusedBlock {
    /// `x + γ · (GELU(LN(dw(x)) W₁ᵀ + b₁) W₂ᵀ + b₂)` of an NCHW batch `x` `[n, c, h, w]`.
    pub fn forward(&self, x: &[f32], n: usize, h: usize, w: usize) -> Result<Vec<f32>> {
        let c = self.dw_bias.len();
        let hw = h * w;
        let geometry = DepthwiseGeometry::same(&[n, c, h, w], &[c, 1, 7, 7], 1)
            .map_err(candle_core::Error::msg)?;
        let dw = depthwise_cpu::forward(
            &geometry,
            x,
            &self.dw_kernel,
            Epilogue {
                bias: Some(&self.dw_bias),
                lo: f32::NEG_INFINITY,
                hi: f32::INFINITY,
            },
        );
        let rows = self.channels_last_normalised(&dw, n, c, hw);
        // The MLP over the whole batch: one image at a time was slower (6.9 against 7.8
        // images/s for ConvNeXt-T on 2 cores, BENCHMARKS.md).
        let hidden = Tensor::from_vec(rows, (n * hw, c), &Device::Cpu)?.matmul(&self.fc1_t)?;
        let mut hidden = hidden.flatten_all()?.to_vec1::<f32>()?;
        let width = self.fc1_bias.len();
        hidden.par_chunks_mut(width * TILE).for_each(|chunk| {
            for row in chunk.chunks_mut(width) {
                for (v, b) in row.iter_mut().zip(&self.fc1_bias) {
                    *v = gelu(*v + b);
                }
            }
        });
        let out = Tensor::from_vec(hidden, (n * hw, width), &Device::Cpu)?.matmul(&self.fc2_t)?;
        let out = out.flatten_all()?.to_vec1::<f32>()?;
        Ok(self.residual_channels_first(x, &out, c, hw))
    }

    /// `[n·hw, c]` rows: each pixel's channels, LayerNorm-ed.
    fn channels_last_normalised(&self, dw: &[f32], n: usize, c: usize, hw: usize) -> Vec<f32> {
        let mut rows = vec![0f32; n * hw * c];
        // Pixels in parallel; a thread's consecutive pixels share the cache lines it reads.
        rows.par_chunks_mut(c).enumerate().for_each(|(r, row)| {
            let (image, pixel) = (r / hw, r % hw);
            let plane = &dw[image * c * hw..(image + 1) * c * hw];
            for (ch, v) in row.iter_mut().enumerate() {
                *v = plane[ch * hw + pixel];
            }
            let mean = row.iter().sum::<f32>() / c as f32;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / c as f32;
            let inv = 1.0 / (var + self.eps).sqrt();
            for ((v, g), b) in row.iter_mut().zip(&self.ln_weight).zip(&self.ln_bias) {
                *v = (*v - mean) * inv * g + b;
            }
        });
        rows
    }

    /// `x + γ · (out + b₂)`, `out` channels-last, the result channels-first.
    fn residual_channels_first(&self, x: &[f32], out: &[f32], c: usize, hw: usize) -> Vec<f32> {
        let mut result = x.to_vec();
        result
            .par_chunks_mut(hw)
            .enumerate()
            .for_each(|(plane, values)| {
                let (image, ch) = (plane / c, plane % c);
                let (gamma, bias) = (self.scale[ch], self.fc2_bias[ch]);
                let rows = &out[image * hw * c..(image + 1) * hw * c];
                for (pixel, v) in values.iter_mut().enumerate() {
                    *v += gamma * (rows[pixel * c + ch] + bias);
                }
            });
        result
    }
}

/// GELU with the error function, `x · Φ(x)`, through Abramowitz & Stegun's 7.1.26 (absolute
/// error of erf below 1.5e-7).
#[inline]
pub(crate) fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

#[inline]
fn erf(x: f32) -> f32 {
    let sign = if x < 0.0 { -1.0 } else { 1.0 };
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152_1 + t * 1.061_405_4))));
    sign * (1.0 - poly * (-a * a).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gelu_matches_candles_erf_gelu() {
        let xs: Vec<f32> = (-400..=400).map(|i| i as f32 / 50.0).collect();
        let reference = Tensor::new(xs.as_slice(), &Device::Cpu)
            .and_then(|t| t.gelu_erf())
            .and_then(|t| t.to_vec1::<f32>())
            .expect("candle");
        for (x, r) in xs.iter().zip(&reference) {
            assert!((gelu(*x) - r).abs() < 1e-6, "{x}: {} vs {r}", gelu(*x));
        }
    }
}
