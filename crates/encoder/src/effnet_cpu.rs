//! EfficientNet-Lite inference on the CPU, fused: every batch norm folded into its convolution
//! at load time, each image run through the whole network on one thread (images of a batch in
//! parallel) in three reused buffers, with bias, ReLU6 and the residual add applied in the pass
//! that writes each layer's output. candle's graph would allocate a new tensor for every
//! convolution, bias, clamp and add (about 100 per image) and run its grouped convolution as one
//! convolution per channel.

use super::depthwise_cpu::{forward_plane, same_padding, DepthwiseGeometry};
use super::effnet::{BlockSpec, EfficientNet, HEAD_CHANNELS, STEM_CHANNELS};
use super::resnet::bn_affine;
use candle_core::{Result, Tensor};
use candle_nn::BatchNorm;
use natview_core::linalg::{matmul, Operand, Output};
use rayon::prelude::*;

/// A convolution with its batch norm folded in: `weight` `[c_out, patch]` and `bias` `[c_out]`.
struct Folded {
    weight: Vec<f32>,
    bias: Vec<f32>,
    c_out: usize,
    patch: usize,
}

impl Folded {
    fn new(kernel: &Tensor, norm: &BatchNorm) -> Result<Self> {
        let (scale, shift) = bn_affine(norm)?;
        let c_out = kernel.dim(0)?;
        let weight = kernel
            .broadcast_mul(&scale.reshape((c_out, 1, 1, 1))?)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        Ok(Self {
            patch: weight.len() / c_out.max(1),
            weight,
            bias: shift.to_vec1::<f32>()?,
            c_out,
        })
    }

    /// `dst[c_out × pixels] = weight · src[patch × pixels]` (no epilogue).
    fn multiply(&self, src: &[f32], pixels: usize, dst: &mut [f32]) {
        matmul(
            self.c_out,
            pixels,
            self.patch,
            Output::rows(dst, pixels),
            Operand::rows(&self.weight, self.patch),
            Operand::rows(src, pixels),
            false,
        );
    }
}

struct FusedBlock {
    spec: BlockSpec,
    expand: Option<Folded>,
    depthwise: Folded,
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

/// Adds each row's bias and clamps to `[0, 6]` (ReLU6), rows of `pixels` values.
fn bias_relu6(out: &mut [f32], bias: &[f32], pixels: usize) {
    for (row, b) in out.chunks_exact_mut(pixels).zip(bias) {
        row.iter_mut().for_each(|v| *v = (*v + b).clamp(0.0, 6.0));
    }
}

/// Adds each row's bias, and the block input when there is a residual connection.
fn bias_residual(out: &mut [f32], bias: &[f32], residual: Option<&[f32]>, pixels: usize) {
    match residual {
        Some(skip) => {
            for ((row, b), skip) in out
                .chunks_exact_mut(pixels)
                .zip(bias)
                .zip(skip.chunks_exact(pixels))
            {
                row.iter_mut().zip(skip).for_each(|(v, s)| *v += b + s);
            }
        }
        None => {
            for (row, b) in out.chunks_exact_mut(pixels).zip(bias) {
                row.iter_mut().for_each(|v| *v += b);
            }
        }
    }
}

/// The stem's patches (`3·3·c` rows of `h_out·w_out`) for a 3×3/2 TF-"SAME" convolution.
fn stem_patches(image: &[f32], c: usize, h: usize, w: usize, cols: &mut [f32]) -> (usize, usize) {
    let (h_out, top, _) = same_padding(h, 3, 2);
    let (w_out, left, _) = same_padding(w, 3, 2);
    let pixels = h_out * w_out;
    for ch in 0..c {
        let plane = &image[ch * h * w..(ch + 1) * h * w];
        for ky in 0..3 {
            for kx in 0..3 {
                let row = &mut cols[((ch * 3 + ky) * 3 + kx) * pixels..][..pixels];
                for oy in 0..h_out {
                    let out = &mut row[oy * w_out..(oy + 1) * w_out];
                    let Some(iy) = (oy * 2 + ky).checked_sub(top).filter(|&iy| iy < h) else {
                        out.fill(0.0);
                        continue;
                    };
                    let src = &plane[iy * w..(iy + 1) * w];
                    for (ox, v) in out.iter_mut().enumerate() {
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
                let (dw, dw_bn) = b.depthwise();
                let (project, project_bn) = b.project();
                Ok(FusedBlock {
                    spec: b.spec(),
                    expand: b
                        .expand()
                        .map(|(c, bn)| Folded::new(c.weight(), bn))
                        .transpose()?,
                    depthwise: Folded::new(dw, dw_bn)?,
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
        let (mut hh, mut ww) = stem_patches(image, 3, h, w, sized(c, 27 * pixels));
        let x = sized(a, STEM_CHANNELS * pixels);
        self.stem.multiply(&c[..27 * pixels], pixels, x);
        bias_relu6(x, &self.stem.bias, pixels);

        for block in &self.blocks {
            let spec = block.spec;
            let (mid, pixels_in) = (spec.mid(), hh * ww);
            // Expansion into `b` (or the input itself).
            let expanded: &[f32] = match &block.expand {
                Some(expand) => {
                    let dst = sized(b, mid * pixels_in);
                    expand.multiply(&a[..spec.c_in * pixels_in], pixels_in, dst);
                    bias_relu6(dst, &expand.bias, pixels_in);
                    &b[..mid * pixels_in]
                }
                None => &a[..spec.c_in * pixels_in],
            };
            // Depthwise into `c`.
            let (h2, _, _) = same_padding(hh, spec.kernel, spec.stride);
            let (w2, _, _) = same_padding(ww, spec.kernel, spec.stride);
            let pixels_out = h2 * w2;
            let geometry = DepthwiseGeometry {
                n: 1,
                c: mid,
                h: hh,
                w: ww,
                k: spec.kernel,
                stride: spec.stride,
                pad_top: same_padding(hh, spec.kernel, spec.stride).1,
                pad_left: same_padding(ww, spec.kernel, spec.stride).1,
                h_out: h2,
                w_out: w2,
            };
            let kk = spec.kernel * spec.kernel;
            let depthwise = sized(c, mid * pixels_out);
            for (ch, out) in depthwise.chunks_exact_mut(pixels_out).enumerate() {
                forward_plane(
                    &geometry,
                    &expanded[ch * pixels_in..(ch + 1) * pixels_in],
                    &block.depthwise.weight[ch * kk..(ch + 1) * kk],
                    block.depthwise.bias[ch],
                    (0.0, 6.0),
                    out,
                );
            }
            // Projection into `b`, then swap so the block output is in `a`.
            let dst = sized(b, spec.c_out * pixels_out);
            block
                .project
                .multiply(&c[..mid * pixels_out], pixels_out, dst);
            let residual = spec.residual().then(|| &a[..spec.c_in * pixels_in]);
            bias_residual(dst, &block.project.bias, residual, pixels_out);
            std::mem::swap(a, b);
            (hh, ww) = (h2, w2);
        }

        // Head, ReLU6, global average pool.
        let pixels = hh * ww;
        let dst = sized(b, HEAD_CHANNELS * pixels);
        self.head
            .multiply(&a[..self.head.patch * pixels], pixels, dst);
        let scale = 1.0 / pixels.max(1) as f32;
        for ((f, row), bias) in features
            .iter_mut()
            .zip(dst.chunks_exact(pixels.max(1)))
            .zip(&self.head.bias)
        {
            *f = row.iter().map(|v| (v + bias).clamp(0.0, 6.0)).sum::<f32>() * scale;
        }
    }
}
