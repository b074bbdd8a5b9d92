//! EfficientNet-Lite inference on the CPU, fused and channels-last: every batch norm folded
//! into its convolution at load time, each image run through the whole network on one thread
//! (images of a batch in parallel) in three reused buffers laid out `[pixels, channels]`, with
//! bias, ReLU6 and the residual add applied in the pass that writes each layer's output.
//! Channels-last makes every pointwise convolution one product `[pixels, c_in] · [c_in, c_out]`
//! and lets the depthwise convolution vectorise across channels ([`super::depthwise_nhwc`]).
//! candle's graph would allocate a new tensor for every convolution, bias, clamp and add (about
//! 100 per image) and run its grouped convolution as one convolution per channel.

use super::depthwise_cpu::same_padding;
use super::depthwise_nhwc::DepthwiseNhwc;
use super::effnet::{EfficientNet, HEAD_CHANNELS, STEM_CHANNELS};
use super::resnet::bn_affine;
use super::transpose::transpose;
use candle_core::{Result, Tensor};
use candle_nn::BatchNorm;
use natview_core::linalg::{matmul, Operand, Output};
use rayon::prelude::*;

/// ReLU6's range.
const RELU6: (f32, f32) = (0.0, 6.0);

/// A convolution with its batch norm folded in, as a product on channels-last pixels:
/// `weight_t` `[patch, c_out]` (the kernel transposed) and `bias` `[c_out]`.
struct Folded {
    weight_t: Vec<f32>,
    bias: Vec<f32>,
    c_out: usize,
    patch: usize,
}

/// A kernel with its batch norm folded in: `[c_out, patch]` values and the bias `[c_out]`.
fn fold(kernel: &Tensor, norm: &BatchNorm) -> Result<(Vec<f32>, Vec<f32>)> {
    let (scale, shift) = bn_affine(norm)?;
    let c_out = kernel.dim(0)?;
    let weight = kernel
        .broadcast_mul(&scale.reshape((c_out, 1, 1, 1))?)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    Ok((weight, shift.to_vec1::<f32>()?))
}

impl Folded {
    fn new(kernel: &Tensor, norm: &BatchNorm) -> Result<Self> {
        let (weight, bias) = fold(kernel, norm)?;
        let c_out = bias.len();
        let patch = weight.len() / c_out.max(1);
        Ok(Self {
            weight_t: transpose(&weight, c_out, patch),
            bias,
            c_out,
            patch,
        })
    }

    /// `dst[pixels × c_out] = src[pixels × patch] · weight_t` (no epilogue).
    fn multiply(&self, src: &[f32], pixels: usize, dst: &mut [f32]) {
        matmul(
            pixels,
            self.c_out,
            self.patch,
            Output::rows(dst, self.c_out),
            Operand::rows(src, self.patch),
            Operand::rows(&self.weight_t, self.c_out),
            false,
        );
    }
}

struct FusedBlock {
    c_in: usize,
    mid: usize,
    c_out: usize,
    residual: bool,
    expand: Option<Folded>,
    depthwise: DepthwiseNhwc,
    project: Folded,
}

/// An EfficientNet-Lite with folded batch norms, for CPU inference.
pub struct FusedEffNet {
    stem: Folded,
    blocks: Vec<FusedBlock>,
    head: Folded,
}

std::thread_local! {
    /// Each thread's three activation buffers, kept between images.
    static BUFFERS: std::cell::RefCell<[Vec<f32>; 3]> =
        const { std::cell::RefCell::new([Vec::new(), Vec::new(), Vec::new()]) };
}

/// Grows `v` to at least `len` values and returns the first `len`.
fn sized(v: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if v.len() < len {
        v.resize(len, 0.0);
    }
    &mut v[..len]
}

/// The stem's patches, pixel-major (`h_out·w_out` rows of `c·3·3`, in the kernel's order), for
/// a 3×3/2 TF-"SAME" convolution of the channels-first `image`.
fn stem_patches(image: &[f32], c: usize, h: usize, w: usize, cols: &mut [f32]) -> (usize, usize) {
    let (h_out, top, _) = same_padding(h, 3, 2);
    let (w_out, left, _) = same_padding(w, 3, 2);
    let patch = c * 9;
    for (oy, rows) in cols.chunks_exact_mut(w_out * patch).take(h_out).enumerate() {
        for ch in 0..c {
            let plane = &image[ch * h * w..(ch + 1) * h * w];
            for ky in 0..3 {
                let offset = (ch * 3 + ky) * 3;
                let Some(iy) = (oy * 2 + ky).checked_sub(top).filter(|&iy| iy < h) else {
                    for row in rows.chunks_exact_mut(patch) {
                        row[offset..offset + 3].fill(0.0);
                    }
                    continue;
                };
                let src = &plane[iy * w..(iy + 1) * w];
                for (ox, row) in rows.chunks_exact_mut(patch).enumerate() {
                    let taps = &mut row[offset..offset + 3];
                    match (ox * 2).checked_sub(left) {
                        Some(ix) if ix + 3 <= w => taps.copy_from_slice(&src[ix..ix + 3]),
                        _ => {
                            for (kx, v) in taps.iter_mut().enumerate() {
                                *v = (ox * 2 + kx)
                                    .checked_sub(left)
                                    .and_then(|ix| src.get(ix))
                                    .copied()
                                    .unwrap_or(0.0);
                            }
                        }
                    }
                }
            }
        }
    }
    (h_out, w_out)
}

impl FusedEffNet {
    /// Folds the batch norms of `net` (evaluation mode) into its convolutions.
    pub fn new(net: &EfficientNet) -> Result<Self> {
        let (stem, stem_bn) = net.stem();
        let (head, head_bn) = net.head();
        let blocks = net
            .blocks()
            .iter()
            .map(|b| {
                let spec = b.spec();
                let (dw, dw_bn) = b.depthwise();
                let (dw_weight, dw_bias) = fold(dw, dw_bn)?;
                let (project, project_bn) = b.project();
                Ok(FusedBlock {
                    c_in: spec.c_in,
                    mid: spec.mid(),
                    c_out: spec.c_out,
                    residual: spec.residual(),
                    expand: b
                        .expand()
                        .map(|(c, bn)| Folded::new(c.weight(), bn))
                        .transpose()?,
                    depthwise: DepthwiseNhwc::new(&dw_weight, dw_bias, spec.kernel, spec.stride)
                        .map_err(candle_core::Error::msg)?,
                    project: Folded::new(project.weight(), project_bn)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            stem: Folded::new(stem.weight(), stem_bn)?,
            blocks,
            head: Folded::new(head.weight(), head_bn)?,
        })
    }

    /// Pooled features `[n × 1280]` (row-major) of `n` normalised `3 × h × w` images.
    pub fn forward(&self, input: &[f32], n: usize, h: usize, w: usize) -> Vec<f32> {
        let mut out = vec![0f32; n * HEAD_CHANNELS];
        let per_image = 3 * h * w;
        if per_image == 0 {
            return out;
        }
        out.par_chunks_mut(HEAD_CHANNELS)
            .zip(input.par_chunks(per_image))
            .for_each(|(features, image)| {
                BUFFERS.with(|cell| match cell.try_borrow_mut() {
                    Ok(mut buffers) => self.forward_image(image, h, w, &mut buffers, features),
                    Err(_) => {
                        let mut fresh = [Vec::new(), Vec::new(), Vec::new()];
                        self.forward_image(image, h, w, &mut fresh, features)
                    }
                })
            });
        out
    }

    /// One image through the network on this thread; `features` receives its 1280 pooled values.
    fn forward_image(
        &self,
        image: &[f32],
        h: usize,
        w: usize,
        [a, b, c]: &mut [Vec<f32>; 3],
        features: &mut [f32],
    ) {
        // Stem: patches into `c`, product into `a`.
        let pixels = same_padding(h, 3, 2).0 * same_padding(w, 3, 2).0;
        let patch = self.stem.patch;
        let (mut hh, mut ww) = stem_patches(image, 3, h, w, sized(c, patch * pixels));
        let x = sized(a, STEM_CHANNELS * pixels);
        self.stem.multiply(&c[..patch * pixels], pixels, x);
        epilogue(x, &self.stem.bias, None, RELU6);

        for block in &self.blocks {
            let pixels_in = hh * ww;
            // Expansion into `b` (or the input itself).
            let expanded: &[f32] = match &block.expand {
                Some(expand) => {
                    let dst = sized(b, block.mid * pixels_in);
                    expand.multiply(&a[..block.c_in * pixels_in], pixels_in, dst);
                    epilogue(dst, &expand.bias, None, RELU6);
                    &b[..block.mid * pixels_in]
                }
                None => &a[..block.c_in * pixels_in],
            };
            // Depthwise (bias and ReLU6 in its pass) into `c`.
            let plan = block.depthwise.plan(hh, ww);
            let pixels_out = plan.h_out * plan.w_out;
            let depthwise = sized(c, block.mid * pixels_out);
            block.depthwise.forward(expanded, plan, RELU6, depthwise);
            // Projection into `b`, then swap so the block output is in `a`.
            let dst = sized(b, block.c_out * pixels_out);
            block
                .project
                .multiply(&c[..block.mid * pixels_out], pixels_out, dst);
            let residual = block.residual.then(|| &a[..block.c_in * pixels_in]);
            epilogue(dst, &block.project.bias, residual, NO_CLAMP);
            std::mem::swap(a, b);
            (hh, ww) = (plan.h_out, plan.w_out);
        }

        // Head, ReLU6, global average pool.
        let pixels = hh * ww;
        let dst = sized(b, HEAD_CHANNELS * pixels);
        self.head
            .multiply(&a[..self.head.patch * pixels], pixels, dst);
        epilogue(dst, &self.head.bias, None, RELU6);
        features.fill(0.0);
        pulp::Arch::new().dispatch(ColumnMeans {
            values: dst,
            means: features,
        });
    }
}

/// No clamp.
const NO_CLAMP: (f32, f32) = (f32::NEG_INFINITY, f32::INFINITY);

/// `values ← clamp(values + bias (+ residual))` on rows of `bias.len()` channels.
fn epilogue(values: &mut [f32], bias: &[f32], residual: Option<&[f32]>, clamp: (f32, f32)) {
    pulp::Arch::new().dispatch(Epilogue {
        values,
        bias,
        residual,
        clamp,
    });
}

// The element-wise passes run through `pulp::Arch::dispatch` as structs (not closures), so
// that their loops are compiled for the instruction set chosen at run time.

/// See [`epilogue`].
struct Epilogue<'a> {
    values: &'a mut [f32],
    bias: &'a [f32],
    residual: Option<&'a [f32]>,
    clamp: (f32, f32),
}

impl pulp::WithSimd for Epilogue<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let (lo, hi) = self.clamp;
        let c = self.bias.len().max(1);
        match self.residual {
            Some(skip) => {
                for (row, skip) in self.values.chunks_exact_mut(c).zip(skip.chunks_exact(c)) {
                    for ((v, b), s) in row.iter_mut().zip(self.bias).zip(skip) {
                        *v = (*v + b + s).max(lo).min(hi);
                    }
                }
            }
            None => {
                for row in self.values.chunks_exact_mut(c) {
                    for (v, b) in row.iter_mut().zip(self.bias) {
                        *v = (*v + b).max(lo).min(hi);
                    }
                }
            }
        }
    }
}

/// `means[j]` = the mean of column `j` of the rows of `means.len()` values in `values`.
struct ColumnMeans<'a> {
    values: &'a [f32],
    means: &'a mut [f32],
}

impl pulp::WithSimd for ColumnMeans<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let c = self.means.len().max(1);
        let rows = self.values.len() / c;
        for row in self.values.chunks_exact(c) {
            for (m, v) in self.means.iter_mut().zip(row) {
                *m += v;
            }
        }
        let scale = 1.0 / rows.max(1) as f32;
        self.means.iter_mut().for_each(|m| *m *= scale);
    }
}
