//! ConvNeXt's stages in evaluation on the CPU, fused and channels-last. A stage's input is
//! moved to channels-last (NHWC) once; each block then runs over tiles of whole image rows,
//! one tile per parallel task, every step of the block on data that stays in the core's cache:
//! the 7×7 depthwise convolution (vectorised over channels, bias in its epilogue) with the
//! LayerNorm of each pixel, `· W₁ᵀ` (gemm on the task's thread), bias + GELU, `· W₂ᵀ`, and the
//! bias + layer scale + residual into the next buffer. The stage's output goes back to NCHW
//! once. candle's path (one pass per operation over the whole batch, permutes between) left a
//! 2-core machine at 0.44× PyTorch's images/s; BENCHMARKS.md has each step's effect.

use crate::scratch::with_scratch;
use crate::transpose::{transpose, transpose_into};
use natview_core::linalg::{matmul, Operand, Output};
use rayon::prelude::*;

/// Side of ConvNeXt's depthwise kernel.
const K: usize = 7;
/// Zeros around the image for the depthwise kernel (`K / 2`: same-size output).
const PAD: usize = K / 2;
/// Bytes of a task's hidden activations (`rows × 4c` floats) aimed at: they are written and
/// read back at once, so they should stay in the core's L2 cache.
const HIDDEN_BYTES: usize = 1 << 20;
/// Channels handled together by the depthwise kernel (accumulators kept in registers).
const LANES: usize = 16;

/// One block's values, laid out for the fused path.
#[derive(Debug)]
pub(crate) struct FusedBlock {
    /// Depthwise kernel, tap-major: `[K·K][c]`.
    dw_taps: Vec<f32>,
    dw_bias: Vec<f32>,
    ln_weight: Vec<f32>,
    ln_bias: Vec<f32>,
    eps: f32,
    /// `W₁ᵀ`, row-major `[c][4c]`.
    fc1_t: Vec<f32>,
    fc1_bias: Vec<f32>,
    /// `W₂ᵀ`, row-major `[4c][c]`.
    fc2_t: Vec<f32>,
    fc2_bias: Vec<f32>,
    scale: Vec<f32>,
}

/// A block's tensors as PyTorch stores them (row-major, flattened).
pub(crate) struct BlockTensors {
    /// Depthwise kernel `[c, 1, 7, 7]`.
    pub dw_kernel: Vec<f32>,
    /// Depthwise bias `[c]`.
    pub dw_bias: Vec<f32>,
    /// LayerNorm weight `[c]`.
    pub ln_weight: Vec<f32>,
    /// LayerNorm bias `[c]`.
    pub ln_bias: Vec<f32>,
    /// LayerNorm epsilon.
    pub eps: f32,
    /// First linear layer's weight `[4c, c]`.
    pub fc1_weight: Vec<f32>,
    /// Its bias `[4c]`.
    pub fc1_bias: Vec<f32>,
    /// Second linear layer's weight `[c, 4c]`.
    pub fc2_weight: Vec<f32>,
    /// Its bias `[c]`.
    pub fc2_bias: Vec<f32>,
    /// Layer scale `[c]`.
    pub scale: Vec<f32>,
}

impl FusedBlock {
    /// Lays out `t` for the fused path; an error when the tensors' sizes do not agree.
    pub fn new(t: BlockTensors) -> Result<Self, String> {
        let c = t.dw_bias.len();
        let hidden = t.fc1_bias.len();
        let sizes_agree = c > 0
            && t.dw_kernel.len() == c * K * K
            && [&t.ln_weight, &t.ln_bias, &t.fc2_bias, &t.scale]
                .iter()
                .all(|v| v.len() == c)
            && t.fc1_weight.len() == hidden * c
            && t.fc2_weight.len() == c * hidden;
        if !sizes_agree {
            return Err(format!(
                "ConvNeXt block: tensor sizes disagree (c = {c}, hidden = {hidden})"
            ));
        }
        Ok(Self {
            dw_taps: transpose(&t.dw_kernel, c, K * K),
            dw_bias: t.dw_bias,
            ln_weight: t.ln_weight,
            ln_bias: t.ln_bias,
            eps: t.eps,
            fc1_t: transpose(&t.fc1_weight, hidden, c),
            fc1_bias: t.fc1_bias,
            fc2_t: transpose(&t.fc2_weight, c, hidden),
            fc2_bias: t.fc2_bias,
            scale: t.scale,
        })
    }

    fn channels(&self) -> usize {
        self.dw_bias.len()
    }

    fn hidden(&self) -> usize {
        self.fc1_bias.len()
    }

    /// `out = x + γ · (GELU(LN(dw(x)) W₁ᵀ + b₁) W₂ᵀ + b₂)` on channels-last `[n, h, w, c]`.
    fn forward_nhwc(&self, x: &[f32], out: &mut [f32], n: usize, h: usize, w: usize) {
        let (c, hidden) = (self.channels(), self.hidden());
        let rows = n * h;
        let by_cache = (HIDDEN_BYTES / (4 * hidden * w)).max(1);
        // At least two tasks a thread, so that both cores stay busy to the end.
        let by_balance = rows.div_ceil(2 * rayon::current_num_threads()).max(1);
        let rows_per_task = by_cache.min(by_balance);
        out.par_chunks_mut(rows_per_task * w * c)
            .enumerate()
            .for_each(|(task, out)| {
                let first_row = task * rows_per_task;
                let pixels = out.len() / c;
                with_scratch(&SCRATCH, pixels * (2 * c + hidden), |scratch| {
                    let (normed, rest) = scratch.split_at_mut(pixels * c);
                    let (activations, mlp_out) = rest.split_at_mut(pixels * hidden);
                    pulp::Arch::new().dispatch(DepthwiseRows {
                        block: self,
                        x,
                        h,
                        w,
                        first_row,
                        out: normed,
                    });
                    matmul(
                        pixels,
                        hidden,
                        c,
                        Output::rows(activations, hidden),
                        Operand::rows(normed, c),
                        Operand::rows(&self.fc1_t, hidden),
                        false,
                    );
                    pulp::Arch::new().dispatch(BiasGelu {
                        values: activations,
                        bias: &self.fc1_bias,
                    });
                    matmul(
                        pixels,
                        c,
                        hidden,
                        Output::rows(mlp_out, c),
                        Operand::rows(activations, hidden),
                        Operand::rows(&self.fc2_t, c),
                        false,
                    );
                    let start = first_row * w * c;
                    pulp::Arch::new().dispatch(Residual {
                        block: self,
                        x: &x[start..start + out.len()],
                        mlp_out,
                        out,
                    });
                });
            });
    }
}

/// Runs a stage's blocks on an NCHW batch `[n, c, h, w]`; the result is NCHW too.
pub(crate) fn forward_stage(
    blocks: &[FusedBlock],
    x: &[f32],
    n: usize,
    h: usize,
    w: usize,
) -> Vec<f32> {
    let Some(c) = blocks.first().map(FusedBlock::channels) else {
        return x.to_vec();
    };
    let mut current = to_channels_last(x, c, h * w);
    let mut next = vec![0f32; current.len()];
    for block in blocks {
        block.forward_nhwc(&current, &mut next, n, h, w);
        std::mem::swap(&mut current, &mut next);
    }
    to_channels_first(&current, c, h * w)
}

/// `[n, c, hw]` → `[n, hw, c]`.
fn to_channels_last(x: &[f32], c: usize, hw: usize) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    out.par_chunks_mut(hw * c)
        .zip(x.par_chunks(c * hw))
        .for_each(|(out, image)| transpose_into(image, c, hw, out));
    out
}

/// `[n, hw, c]` → `[n, c, hw]`.
fn to_channels_first(x: &[f32], c: usize, hw: usize) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    out.par_chunks_mut(c * hw)
        .zip(x.par_chunks(hw * c))
        .for_each(|(out, image)| transpose_into(image, hw, c, out));
    out
}

std::thread_local! {
    /// Each thread's tile buffers, reused between tasks and blocks.
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

// The kernels run through `pulp::Arch::dispatch`, compiled for the best instruction set this
// CPU has (AVX-512, AVX2 + FMA, or none), chosen at run time so that one binary serves every
// x86-64: each `with_simd` below is inlined into pulp's function for that set, and the plain
// loops of `kernels` with it, which the compiler then vectorises for the set. (A closure would
// not do: its body stays a function of its own, compiled for the baseline.)

/// Rows `first_row..` of the batch's depthwise convolution, LayerNorm-ed, into `out`.
struct DepthwiseRows<'a> {
    block: &'a FusedBlock,
    x: &'a [f32],
    h: usize,
    w: usize,
    first_row: usize,
    out: &'a mut [f32],
}

impl pulp::WithSimd for DepthwiseRows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let (h, w, c) = (self.h, self.w, self.block.channels());
        for (r, row_out) in self.out.chunks_exact_mut(w * c).enumerate() {
            let row = self.first_row + r;
            let (image, y) = (row / h, row % h);
            let plane = &self.x[image * h * w * c..(image + 1) * h * w * c];
            kernels::depthwise_row(self.block, plane, h, w, y, row_out);
        }
    }
}

/// `values ← GELU(values + bias)`.
struct BiasGelu<'a> {
    values: &'a mut [f32],
    bias: &'a [f32],
}

impl pulp::WithSimd for BiasGelu<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        kernels::bias_gelu(self.values, self.bias);
    }
}

/// `out = x + γ · (mlp_out + b₂)`.
struct Residual<'a> {
    block: &'a FusedBlock,
    x: &'a [f32],
    mlp_out: &'a [f32],
    out: &'a mut [f32],
}

impl pulp::WithSimd for Residual<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        kernels::residual(self.block, self.x, self.mlp_out, self.out);
    }
}

/// The kernels: plain loops, inlined into the `with_simd` above.
pub(crate) mod kernels {
    use super::{FusedBlock, K, LANES, PAD};

    /// `a · b + acc`, fused (one instruction where the CPU has FMA).
    #[inline(always)]
    fn madd(a: f32, b: f32, acc: f32) -> f32 {
        a.mul_add(b, acc)
    }

    /// Output row `y` of the depthwise convolution of one channels-last image `[h, w, c]`, each
    /// pixel then LayerNorm-ed: `out` is `[w, c]`.
    #[inline(always)]
    pub(super) fn depthwise_row(
        block: &FusedBlock,
        plane: &[f32],
        h: usize,
        w: usize,
        y: usize,
        out: &mut [f32],
    ) {
        let c = block.dw_bias.len();
        let ky_range = PAD.saturating_sub(y)..K.min(h + PAD - y);
        for (x, pixel) in out.chunks_exact_mut(c).enumerate() {
            let kx_range = PAD.saturating_sub(x)..K.min(w + PAD - x);
            // (offset of the input pixel, tap) of every tap inside the image.
            let mut taps = [(0usize, 0usize); K * K];
            let mut count = 0;
            for ky in ky_range.clone() {
                let iy = y + ky - PAD;
                for kx in kx_range.clone() {
                    taps[count] = ((iy * w + x + kx - PAD) * c, (ky * K + kx) * c);
                    count += 1;
                }
            }
            let taps = &taps[..count];
            let mut start = 0;
            while start + LANES <= c {
                let mut acc = [0f32; LANES];
                acc.copy_from_slice(&block.dw_bias[start..start + LANES]);
                for &(src, tap) in taps {
                    let s = &plane[src + start..src + start + LANES];
                    let k = &block.dw_taps[tap + start..tap + start + LANES];
                    for i in 0..LANES {
                        acc[i] = madd(s[i], k[i], acc[i]);
                    }
                }
                pixel[start..start + LANES].copy_from_slice(&acc);
                start += LANES;
            }
            for ch in start..c {
                let mut acc = block.dw_bias[ch];
                for &(src, tap) in taps {
                    acc = madd(plane[src + ch], block.dw_taps[tap + ch], acc);
                }
                pixel[ch] = acc;
            }
            layer_norm(block, pixel);
        }
    }

    #[inline(always)]
    fn layer_norm(block: &FusedBlock, pixel: &mut [f32]) {
        let c = pixel.len() as f32;
        let mean = sum(pixel) / c;
        let mut var = [0f32; 8];
        let mut chunks = pixel.chunks_exact(8);
        for chunk in chunks.by_ref() {
            for i in 0..8 {
                let d = chunk[i] - mean;
                var[i] = madd(d, d, var[i]);
            }
        }
        let tail: f32 = chunks
            .remainder()
            .iter()
            .map(|v| (v - mean) * (v - mean))
            .sum();
        let var = (var.iter().sum::<f32>() + tail) / c;
        let inv = 1.0 / (var + block.eps).sqrt();
        for ((v, g), b) in pixel.iter_mut().zip(&block.ln_weight).zip(&block.ln_bias) {
            *v = madd((*v - mean) * inv, *g, *b);
        }
    }

    #[inline(always)]
    fn sum(values: &[f32]) -> f32 {
        let mut acc = [0f32; 8];
        let mut chunks = values.chunks_exact(8);
        for chunk in chunks.by_ref() {
            for i in 0..8 {
                acc[i] += chunk[i];
            }
        }
        acc.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
    }

    /// `v ← GELU(v + bias)` over rows of `bias.len()` values.
    #[inline(always)]
    pub(super) fn bias_gelu(values: &mut [f32], bias: &[f32]) {
        for row in values.chunks_exact_mut(bias.len()) {
            for (v, b) in row.iter_mut().zip(bias) {
                *v = gelu(*v + b);
            }
        }
    }

    /// `out = x + γ · (mlp_out + b₂)`, row by row.
    #[inline(always)]
    pub(super) fn residual(block: &FusedBlock, x: &[f32], mlp_out: &[f32], out: &mut [f32]) {
        let c = block.scale.len();
        for ((out, x), m) in out
            .chunks_exact_mut(c)
            .zip(x.chunks_exact(c))
            .zip(mlp_out.chunks_exact(c))
        {
            for i in 0..c {
                out[i] = x[i] + block.scale[i] * (m[i] + block.fc2_bias[i]);
            }
        }
    }

    /// GELU with the error function, `x · Φ(x)`, erf by Abramowitz & Stegun's 7.1.26 (absolute
    /// error below 1.5e-7) and `exp` by [`exp_neg`]: branch-free, so the loop vectorises.
    #[inline(always)]
    pub(crate) fn gelu(x: f32) -> f32 {
        let a = x.abs() * std::f32::consts::FRAC_1_SQRT_2;
        let t = 1.0 / madd(0.327_591_1, a, 1.0);
        let mut poly = 1.061_405_4f32;
        for coefficient in [-1.453_152_1, 1.421_413_7, -0.284_496_74, 0.254_829_6] {
            poly = madd(poly, t, coefficient);
        }
        let erf_abs = 1.0 - poly * t * exp_neg(a * a);
        let erf = erf_abs.copysign(x);
        0.5 * x * (1.0 + erf)
    }

    /// `e^(−v)` for `v ≥ 0` (relative error below 5e-7; 0 beyond `v = 87`), without a
    /// library call, so that loops over it vectorise: `v = n·ln 2 + r` with `|r| ≤ ln 2 / 2`
    /// (Cody and Waite's two-part ln 2 keeps `r` exact), `e^(−v) = 2^(−n) · e^(−r)`, the power
    /// of two set in the exponent bits and `e^(−r)` by its Taylor series to degree 7.
    #[inline(always)]
    pub(crate) fn exp_neg(v: f32) -> f32 {
        const LN2_HI: f32 = 0.693_359_4;
        const LN2_LO: f32 = -2.121_944_4e-4;
        let clamped = v.min(87.0);
        let n = (clamped * std::f32::consts::LOG2_E + 0.5).floor();
        let q = madd(n, LN2_LO, madd(n, LN2_HI, -clamped)); // −r
        let mut p = 1.984_127e-4f32;
        for coefficient in [
            1.388_888_9e-3,
            8.333_333e-3,
            4.166_666_8e-2,
            0.166_666_67,
            0.5,
            1.0,
            1.0,
        ] {
            p = madd(p, q, coefficient);
        }
        let scale = f32::from_bits(((127 - n as i32) as u32) << 23);
        if v > 87.0 {
            0.0
        } else {
            p * scale
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(len: usize, seed: u32, scale: f32) -> Vec<f32> {
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state as f32 / u32::MAX as f32 - 0.5) * 2.0 * scale
            })
            .collect()
    }

    fn block(c: usize, seed: u32) -> (FusedBlock, BlockTensors) {
        let tensors = || BlockTensors {
            dw_kernel: values(c * K * K, seed, 0.3),
            dw_bias: values(c, seed + 1, 0.1),
            ln_weight: values(c, seed + 2, 0.5).iter().map(|v| v + 1.0).collect(),
            ln_bias: values(c, seed + 3, 0.1),
            eps: 1e-6,
            fc1_weight: values(4 * c * c, seed + 4, 0.3),
            fc1_bias: values(4 * c, seed + 5, 0.1),
            fc2_weight: values(4 * c * c, seed + 6, 0.3),
            fc2_bias: values(c, seed + 7, 0.1),
            scale: values(c, seed + 8, 0.5),
        };
        (FusedBlock::new(tensors()).expect("sizes agree"), tensors())
    }

    /// The block by its definition, in f64, NCHW.
    fn reference(t: &BlockTensors, x: &[f32], n: usize, h: usize, w: usize) -> Vec<f32> {
        let c = t.dw_bias.len();
        let mut out = x.to_vec();
        for image in 0..n {
            for y in 0..h {
                for xx in 0..w {
                    let mut d = vec![0f64; c];
                    for (ch, d) in d.iter_mut().enumerate() {
                        *d = f64::from(t.dw_bias[ch]);
                        for ky in 0..K {
                            for kx in 0..K {
                                let (iy, ix) = (y + ky, xx + kx);
                                if iy < PAD || ix < PAD || iy - PAD >= h || ix - PAD >= w {
                                    continue;
                                }
                                let v = x[((image * c + ch) * h + iy - PAD) * w + ix - PAD];
                                *d += f64::from(v) * f64::from(t.dw_kernel[ch * 49 + ky * K + kx]);
                            }
                        }
                    }
                    let mean = d.iter().sum::<f64>() / c as f64;
                    let var = d.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / c as f64;
                    let normed: Vec<f64> = (0..c)
                        .map(|ch| {
                            (d[ch] - mean) / (var + f64::from(t.eps)).sqrt()
                                * f64::from(t.ln_weight[ch])
                                + f64::from(t.ln_bias[ch])
                        })
                        .collect();
                    let hidden: Vec<f64> = (0..4 * c)
                        .map(|j| {
                            let z = f64::from(t.fc1_bias[j])
                                + (0..c)
                                    .map(|i| normed[i] * f64::from(t.fc1_weight[j * c + i]))
                                    .sum::<f64>();
                            0.5 * z * (1.0 + erf(z / std::f64::consts::SQRT_2))
                        })
                        .collect();
                    for ch in 0..c {
                        let o = f64::from(t.fc2_bias[ch])
                            + (0..4 * c)
                                .map(|j| hidden[j] * f64::from(t.fc2_weight[ch * 4 * c + j]))
                                .sum::<f64>();
                        let at = ((image * c + ch) * h + y) * w + xx;
                        out[at] = (f64::from(x[at]) + f64::from(t.scale[ch]) * o) as f32;
                    }
                }
            }
        }
        out
    }

    /// erf by its Maclaurin series (|z| ≤ 6 here), to double precision.
    fn erf(z: f64) -> f64 {
        if z.abs() > 5.0 {
            return z.signum();
        }
        let (mut term, mut sum) = (z, z);
        for k in 1..200 {
            term *= -z * z / k as f64;
            sum += term / (2 * k + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn a_fused_stage_matches_the_blocks_definition() {
        // 20 channels: one 16-lane chunk and a remainder; images smaller than the kernel too.
        for &(n, c, h, w) in &[(2, 20, 9, 11), (3, 16, 3, 2), (1, 40, 1, 1)] {
            let (fused, tensors) = block(c, 7);
            let x = values(n * c * h * w, 99, 1.0);
            let got = forward_stage(std::slice::from_ref(&fused), &x, n, h, w);
            let want = reference(&tensors, &x, n, h, w);
            let worst = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs() / b.abs().max(1.0))
                .fold(0f32, f32::max);
            assert!(worst < 1e-4, "{n}×{c}×{h}×{w}: off by {worst}");
        }
    }

    #[test]
    fn gelu_is_candles_in_every_build_and_exp_is_exact_to_float_precision() {
        let xs: Vec<f32> = (-400..=400).map(|i| i as f32 / 50.0).collect();
        let reference = candle_core::Tensor::new(xs.as_slice(), &candle_core::Device::Cpu)
            .and_then(|t| t.gelu_erf())
            .and_then(|t| t.to_vec1::<f32>())
            .expect("candle");
        let mut portable = xs.clone();
        kernels::bias_gelu(&mut portable, &[0.0]);
        let mut fast = xs.clone();
        pulp::Arch::new().dispatch(BiasGelu {
            values: &mut fast,
            bias: &[0.0],
        });
        for ((x, r), (p, f)) in xs.iter().zip(&reference).zip(portable.iter().zip(&fast)) {
            assert!((p - r).abs() < 1e-6, "{x}: {p} vs candle's {r}");
            assert!((f - r).abs() < 1e-6, "{x}: {f} vs candle's {r}");
        }
        for v in [0.0f32, 0.5, 1.0, 10.0, 50.0, 86.0, 87.5, 200.0] {
            let want = (-f64::from(v)).exp();
            let got = f64::from(kernels::exp_neg(v));
            assert!(
                (got - want).abs() <= 5e-7 * want + 1e-38,
                "e^-{v}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn disagreeing_sizes_are_refused() {
        let (_, mut tensors) = block(8, 1);
        tensors.fc2_weight.pop();
        assert!(FusedBlock::new(tensors).is_err());
    }
}
