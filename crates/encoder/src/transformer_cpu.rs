//! The CPU evaluation path of transformer blocks (the vision transformers' and, shape for
//! shape, any pre-norm block): tokens as one row-major `[rows, D]` buffer, every step parallel
//! over row tiles or images, the products by `natview_core::linalg::matmul` on each task's
//! thread with weights transposed once, the element-wise work (LayerNorm, bias + activation,
//! softmax, scaled residuals) in plain loops compiled for the CPU's best instruction set through
//! `pulp`. candle's element-wise operations run on one thread and allocate a tensor each; here
//! nothing but the block's three buffers is allocated per block.

use crate::convnext_cpu::kernels::{exp_neg, gelu};
use crate::scratch::with_scratch;
use crate::transformer::TokenActivation;
use natview_core::linalg::{matmul, Operand, Output};
use rayon::prelude::*;

/// Hidden activations of a tile kept under this size (in cache).
const TILE_BYTES: usize = 1 << 20;

/// One block's values, weights transposed to `[in, out]`.
#[derive(Debug, Clone)]
pub(crate) struct FusedTransformerBlock {
    pub dim: usize,
    pub heads: usize,
    pub eps: f32,
    pub activation: TokenActivation,
    pub ln1: (Vec<f32>, Vec<f32>),
    pub ln2: (Vec<f32>, Vec<f32>),
    /// `[D, 3D]` and `[3D]`: q, k, v side by side.
    pub qkv: (Vec<f32>, Vec<f32>),
    pub proj: (Vec<f32>, Vec<f32>),
    pub fc1: (Vec<f32>, Vec<f32>),
    pub fc2: (Vec<f32>, Vec<f32>),
    /// Layer scales (ones when the block has none).
    pub ls1: Vec<f32>,
    pub ls2: Vec<f32>,
}

impl FusedTransformerBlock {
    fn hidden(&self) -> usize {
        self.fc1.1.len()
    }

    /// Rows per task: the MLP's hidden tile within [`TILE_BYTES`], and at least two tasks a
    /// thread.
    fn tile_rows(&self, rows: usize) -> usize {
        let by_cache = (TILE_BYTES / (4 * self.hidden().max(1))).max(1);
        let by_balance = rows.div_ceil(2 * rayon::current_num_threads()).max(1);
        by_cache.min(by_balance)
    }
}

/// Runs `blocks` on `x`: `images` sequences of `tokens` rows of width D, in place; `causal`:
/// each token attends to itself and the tokens before it only (text towers).
pub(crate) fn forward_blocks(
    blocks: &[FusedTransformerBlock],
    x: &mut [f32],
    images: usize,
    tokens: usize,
    causal: bool,
) {
    let Some(first) = blocks.first() else { return };
    let d = first.dim;
    let rows = images * tokens;
    let mut normed = vec![0f32; rows * d];
    let mut qkv = vec![0f32; rows * 3 * d];
    let mut attended = vec![0f32; rows * d];
    for block in blocks {
        attention_sublayer(
            block,
            x,
            &mut normed,
            &mut qkv,
            &mut attended,
            tokens,
            causal,
        );
        mlp_sublayer(block, x);
    }
}

/// `x += γ₁ · proj(attention(LN₁(x)))`.
fn attention_sublayer(
    block: &FusedTransformerBlock,
    x: &mut [f32],
    normed: &mut [f32],
    qkv: &mut [f32],
    attended: &mut [f32],
    tokens: usize,
    causal: bool,
) {
    let d = block.dim;
    let rows = x.len() / d;
    let tile = block.tile_rows(rows);
    normed
        .par_chunks_mut(tile * d)
        .zip(qkv.par_chunks_mut(tile * 3 * d))
        .zip(x.par_chunks(tile * d))
        .for_each(|((normed, qkv), x)| {
            let n = x.len() / d;
            pulp::Arch::new().dispatch(LayerNormRows {
                x,
                out: normed,
                norm: &block.ln1,
                eps: block.eps,
            });
            matmul(
                n,
                3 * d,
                d,
                Output::rows(qkv, 3 * d),
                Operand::rows(normed, d),
                Operand::rows(&block.qkv.0, 3 * d),
                false,
            );
            pulp::Arch::new().dispatch(BiasAct {
                values: qkv,
                bias: &block.qkv.1,
                activation: None,
            });
        });
    let qkv: &[f32] = qkv;
    attended
        .par_chunks_mut(tokens * d)
        .zip(qkv.par_chunks(tokens * 3 * d))
        .for_each(|(out, qkv)| attend_image(block, qkv, out, tokens, causal));
    let attended: &[f32] = attended;
    x.par_chunks_mut(tile * d)
        .zip(attended.par_chunks(tile * d))
        .for_each(|(x, attended)| {
            let n = x.len() / d;
            with_scratch(&SCRATCH, n * d, |projected| {
                matmul(
                    n,
                    d,
                    d,
                    Output::rows(projected, d),
                    Operand::rows(attended, d),
                    Operand::rows(&block.proj.0, d),
                    false,
                );
                pulp::Arch::new().dispatch(ScaledResidual {
                    x,
                    branch: projected,
                    bias: &block.proj.1,
                    scale: &block.ls1,
                });
            });
        });
}

/// Multi-head attention of one image's tokens: `qkv` is `[tokens, 3D]`, `out` `[tokens, D]`.
fn attend_image(
    block: &FusedTransformerBlock,
    qkv: &[f32],
    out: &mut [f32],
    tokens: usize,
    causal: bool,
) {
    let d = block.dim;
    let hd = d / block.heads.max(1);
    let scale = (hd as f32).powf(-0.5);
    with_scratch(&SCRATCH, 3 * tokens * hd + tokens * tokens, |scratch| {
        let (q, rest) = scratch.split_at_mut(tokens * hd);
        let (k, rest) = rest.split_at_mut(tokens * hd);
        let (v, scores) = rest.split_at_mut(tokens * hd);
        for head in 0..block.heads {
            for t in 0..tokens {
                let row = &qkv[t * 3 * d..(t + 1) * 3 * d];
                let at = head * hd;
                q[t * hd..(t + 1) * hd].copy_from_slice(&row[at..at + hd]);
                k[t * hd..(t + 1) * hd].copy_from_slice(&row[d + at..d + at + hd]);
                v[t * hd..(t + 1) * hd].copy_from_slice(&row[2 * d + at..2 * d + at + hd]);
            }
            matmul(
                tokens,
                tokens,
                hd,
                Output::rows(scores, tokens),
                Operand::rows(q, hd),
                Operand::transposed(k, hd),
                false,
            );
            if causal {
                // Later tokens get no weight: e^(−∞) is 0 in the softmax below.
                for (i, row) in scores.chunks_exact_mut(tokens).enumerate() {
                    row[i + 1..].fill(f32::NEG_INFINITY);
                }
            }
            pulp::Arch::new().dispatch(SoftmaxRows {
                values: scores,
                width: tokens,
                scale,
            });
            matmul(
                tokens,
                hd,
                tokens,
                Output::rows(&mut out[head * hd..], d),
                Operand::rows(scores, tokens),
                Operand::rows(v, hd),
                false,
            );
        }
    });
}

/// `x += γ₂ · fc₂(act(fc₁(LN₂(x))))`, tile by tile.
fn mlp_sublayer(block: &FusedTransformerBlock, x: &mut [f32]) {
    let d = block.dim;
    let hidden = block.hidden();
    let rows = x.len() / d;
    let tile = block.tile_rows(rows);
    x.par_chunks_mut(tile * d).for_each(|x| {
        let n = x.len() / d;
        with_scratch(&SCRATCH, n * (2 * d + hidden), |scratch| {
            let (normed, rest) = scratch.split_at_mut(n * d);
            let (activations, branch) = rest.split_at_mut(n * hidden);
            pulp::Arch::new().dispatch(LayerNormRows {
                x,
                out: normed,
                norm: &block.ln2,
                eps: block.eps,
            });
            matmul(
                n,
                hidden,
                d,
                Output::rows(activations, hidden),
                Operand::rows(normed, d),
                Operand::rows(&block.fc1.0, hidden),
                false,
            );
            pulp::Arch::new().dispatch(BiasAct {
                values: activations,
                bias: &block.fc1.1,
                activation: Some(block.activation),
            });
            matmul(
                n,
                d,
                hidden,
                Output::rows(branch, d),
                Operand::rows(activations, hidden),
                Operand::rows(&block.fc2.0, d),
                false,
            );
            pulp::Arch::new().dispatch(ScaledResidual {
                x,
                branch,
                bias: &block.fc2.1,
                scale: &block.ls2,
            });
        });
    });
}

std::thread_local! {
    /// Each thread's tile buffers, reused between tasks and blocks.
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

// Each step runs through `pulp::Arch::dispatch` as a struct (not a closure), so that its loops
// are compiled inside the function for the CPU's instruction set and vectorised there.

/// `out = LN(x)` row by row.
struct LayerNormRows<'a> {
    x: &'a [f32],
    out: &'a mut [f32],
    norm: &'a (Vec<f32>, Vec<f32>),
    eps: f32,
}

impl pulp::WithSimd for LayerNormRows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let (weight, bias) = self.norm;
        let d = weight.len();
        for (x, out) in self.x.chunks_exact(d).zip(self.out.chunks_exact_mut(d)) {
            let mean = x.iter().sum::<f32>() / d as f32;
            let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / d as f32;
            let inv = 1.0 / (var + self.eps).sqrt();
            for i in 0..d {
                out[i] = (x[i] - mean) * inv * weight[i] + bias[i];
            }
        }
    }
}

/// `values ← act(values + bias)` row by row (`None`: the bias alone).
struct BiasAct<'a> {
    values: &'a mut [f32],
    bias: &'a [f32],
    activation: Option<TokenActivation>,
}

impl pulp::WithSimd for BiasAct<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let width = self.bias.len();
        for row in self.values.chunks_exact_mut(width) {
            for (v, b) in row.iter_mut().zip(self.bias) {
                *v += b;
            }
            match self.activation {
                None => {}
                Some(TokenActivation::Gelu) => row.iter_mut().for_each(|v| *v = gelu(*v)),
                Some(TokenActivation::GeluTanh) => {
                    row.iter_mut().for_each(|v| *v = gelu_tanh(*v));
                }
                Some(TokenActivation::QuickGelu) => {
                    row.iter_mut().for_each(|v| *v = quick_gelu(*v));
                }
            }
        }
    }
}

/// `0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))`, tanh from [`exp_neg`].
#[inline(always)]
fn gelu_tanh(x: f32) -> f32 {
    let u = 0.797_884_6 * (x + 0.044_715 * x * x * x);
    let e = exp_neg(2.0 * u.abs());
    let tanh = ((1.0 - e) / (1.0 + e)).copysign(u);
    0.5 * x * (1.0 + tanh)
}

/// `x · σ(1.702 x)`.
#[inline(always)]
fn quick_gelu(x: f32) -> f32 {
    let z = 1.702 * x;
    let e = exp_neg(z.abs());
    let sigmoid = if z >= 0.0 {
        1.0 / (1.0 + e)
    } else {
        e / (1.0 + e)
    };
    x * sigmoid
}

/// Each row of `values` ← softmax(`scale` · row).
struct SoftmaxRows<'a> {
    values: &'a mut [f32],
    width: usize,
    scale: f32,
}

impl pulp::WithSimd for SoftmaxRows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        for row in self.values.chunks_exact_mut(self.width) {
            let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            let mut sum = 0.0;
            for v in row.iter_mut() {
                *v = exp_neg((max - *v) * self.scale);
                sum += *v;
            }
            let inv = 1.0 / sum;
            row.iter_mut().for_each(|v| *v *= inv);
        }
    }
}

/// `x += scale · (branch + bias)` row by row.
struct ScaledResidual<'a> {
    x: &'a mut [f32],
    branch: &'a [f32],
    bias: &'a [f32],
    scale: &'a [f32],
}

impl pulp::WithSimd for ScaledResidual<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let d = self.bias.len();
        for (x, branch) in self.x.chunks_exact_mut(d).zip(self.branch.chunks_exact(d)) {
            for i in 0..d {
                x[i] += self.scale[i] * (branch[i] + self.bias[i]);
            }
        }
    }
}
