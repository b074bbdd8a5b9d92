//! The depthwise convolution on channels-last (`[h, w, c]`) images for inference, with its
//! bias and clamp (ReLU6) in the pass that writes the output: TensorFlow "SAME" padding, any
//! kernel side and stride.
//!
//! Channels are contiguous, so one tap of a block of channels (one SIMD vector: 16 with
//! AVX-512, 8 with AVX2) is one vector multiply-add. The output is made row by row, and within a row block of channels by block:
//! the block's `k·k` tap vectors are copied out once per row, each output pixel's taps are
//! clipped to the image (no padded copy of the input), and inside the image [`PIXELS`]
//! neighbouring output pixels are computed together, so that every tap vector serves several
//! independent accumulators. The kernel runs through `pulp::Arch::dispatch`, compiled for the
//! best instruction set the CPU has (AVX-512, AVX2 + FMA, or none), chosen at run time.

use super::depthwise_cpu::same_padding;
use super::transpose::transpose;

/// Output pixels of one row computed together inside the image.
const PIXELS: usize = 6;

/// One depthwise layer laid out for channels-last input: taps `[k·k][c]`, bias `[c]`.
#[derive(Debug, Clone)]
pub(crate) struct DepthwiseNhwc {
    taps: Vec<f32>,
    bias: Vec<f32>,
    k: usize,
    stride: usize,
}

/// The sizes of one call: input `h × w`, output `h_out × w_out`, and the zeros before the
/// image ("SAME" padding).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output height.
    pub h_out: usize,
    /// Output width.
    pub w_out: usize,
    pad_top: usize,
    pad_left: usize,
}

impl DepthwiseNhwc {
    /// From PyTorch's kernel `[c, 1, k, k]` (flattened) and a per-channel bias.
    pub fn new(kernel: &[f32], bias: Vec<f32>, k: usize, stride: usize) -> Result<Self, String> {
        let c = bias.len();
        if k == 0 || stride == 0 || kernel.len() != c * k * k {
            return Err(format!(
                "depthwise: {} kernel values for {c} channels of {k} × {k} (stride {stride})",
                kernel.len()
            ));
        }
        Ok(Self {
            taps: transpose(kernel, c, k * k),
            bias,
            k,
            stride,
        })
    }

    /// Channels.
    pub fn channels(&self) -> usize {
        self.bias.len()
    }

    /// The output size and padding for an `h × w` input.
    pub fn plan(&self, h: usize, w: usize) -> Plan {
        let (h_out, pad_top, _) = same_padding(h, self.k, self.stride);
        let (w_out, pad_left, _) = same_padding(w, self.k, self.stride);
        Plan {
            h,
            w,
            h_out,
            w_out,
            pad_top,
            pad_left,
        }
    }

    /// `out` (`[h_out, w_out, c]`) = the convolution of `x` (`[h, w, c]`) plus the bias,
    /// clamped to `[lo, hi]`.
    pub fn forward(&self, x: &[f32], plan: Plan, (lo, hi): (f32, f32), out: &mut [f32]) {
        let c = self.channels();
        assert!(
            x.len() >= plan.h * plan.w * c && out.len() >= plan.h_out * plan.w_out * c,
            "depthwise: buffers smaller than the plan"
        );
        pulp::Arch::new().dispatch(Rows {
            layer: self,
            x,
            plan,
            clamp: (lo, hi),
            out,
        });
    }
}

/// The whole output, as one dispatched call (see the module's note).
struct Rows<'a> {
    layer: &'a DepthwiseNhwc,
    x: &'a [f32],
    plan: Plan,
    clamp: (f32, f32),
    out: &'a mut [f32],
}

impl pulp::WithSimd for Rows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let Rows {
            layer,
            x,
            plan: p,
            clamp,
            out,
        } = self;
        let (k, s, c, lanes) = (layer.k, layer.stride, layer.channels(), S::F32_LANES);
        // Output columns whose taps all lie inside the image: ox·s − pad_left ≥ 0 and
        // ox·s − pad_left + k ≤ w.
        let inner_start = p.pad_left.div_ceil(s).min(p.w_out);
        let inner_end = if p.w + p.pad_left >= k {
            ((p.w + p.pad_left - k) / s + 1).clamp(inner_start, p.w_out)
        } else {
            inner_start
        };
        let mut weights = vec![0f32; k * k * lanes];
        for (oy, row) in out.chunks_exact_mut(p.w_out * c).take(p.h_out).enumerate() {
            let top = oy * s; // padded row of tap 0
            let ky = p.pad_top.saturating_sub(top)..k.min(p.h + p.pad_top - top);
            let at = RowTaps {
                x,
                w: p.w,
                c,
                iy0: top + ky.start - p.pad_top, // input row of tap ky.start
                ky: (ky.start, ky.len()),
                k,
                stride: s,
            };
            let mut start = 0;
            while start + lanes <= c {
                for (tap, w) in weights.chunks_exact_mut(lanes).enumerate() {
                    w.copy_from_slice(&layer.taps[tap * c + start..tap * c + start + lanes]);
                }
                let block = kernels::Block {
                    weights: &weights,
                    bias: kernels::load(simd, &layer.bias, start),
                    start,
                    lo: simd.splat_f32s(clamp.0),
                    hi: simd.splat_f32s(clamp.1),
                };
                for ox in (0..inner_start).chain(inner_end..p.w_out) {
                    let (ix0, kx) = border_columns(&p, k, s, ox);
                    kernels::pixels::<S, 1>(simd, &at, &block, (ix0, kx), &mut row[ox * c..]);
                }
                let mut ox = inner_start;
                while ox + PIXELS <= inner_end {
                    let ix0 = ox * s - p.pad_left;
                    let dst = &mut row[ox * c..];
                    kernels::pixels::<S, PIXELS>(simd, &at, &block, (ix0, (0, k)), dst);
                    ox += PIXELS;
                }
                for ox in ox..inner_end {
                    let ix0 = ox * s - p.pad_left;
                    kernels::pixels::<S, 1>(simd, &at, &block, (ix0, (0, k)), &mut row[ox * c..]);
                }
                start += lanes;
            }
            if start < c {
                for ox in 0..p.w_out {
                    let (ix0, kx) = border_columns(&p, k, s, ox);
                    let channels = start..c;
                    kernels::single_channels(layer, &at, (ix0, kx), channels, clamp, row, ox);
                }
            }
        }
    }
}

/// The first input column of output column `ox`'s taps inside the image, and those tap
/// columns `(first, count)`.
#[inline(always)]
fn border_columns(p: &Plan, k: usize, s: usize, ox: usize) -> (usize, (usize, usize)) {
    let left = ox * s;
    let kx = p.pad_left.saturating_sub(left)..k.min(p.w + p.pad_left - left);
    (left + kx.start - p.pad_left, (kx.start, kx.len()))
}

/// Where one output row's taps read: input `x` (`[h, w, c]`), the input row of the first tap
/// inside the image, the tap rows `(first, count)` inside it, the kernel side and stride.
struct RowTaps<'a> {
    x: &'a [f32],
    w: usize,
    c: usize,
    iy0: usize,
    ky: (usize, usize),
    k: usize,
    stride: usize,
}

/// The kernel, on the SIMD vectors of the instruction set chosen at run time (`S::f32s`: 16
/// lanes with AVX-512, 8 with AVX2, 1 without), inlined into the dispatched function above.
mod kernels {
    use super::{DepthwiseNhwc, RowTaps};
    use pulp::Simd;

    /// One block of `S::F32_LANES` channels: its `k·k` tap vectors (flat), bias, first
    /// channel, clamp.
    pub(super) struct Block<'a, S: Simd> {
        pub weights: &'a [f32],
        pub bias: S::f32s,
        pub start: usize,
        pub lo: S::f32s,
        pub hi: S::f32s,
    }

    /// The vector at `values[at..]`.
    #[inline(always)]
    pub(super) fn load<S: Simd>(_: S, values: &[f32], at: usize) -> S::f32s {
        S::as_simd_f32s(&values[at..at + S::F32_LANES]).0[0]
    }

    /// Writes `v` to `values[at..]`.
    #[inline(always)]
    fn store<S: Simd>(values: &mut [f32], at: usize, v: S::f32s) {
        S::as_mut_simd_f32s(&mut values[at..at + S::F32_LANES]).0[0] = v;
    }

    /// `P` neighbouring output pixels of the block's channels (`out` starts at the first
    /// pixel's channel 0), input columns `ix0 + p·stride` for tap column `kx.0`, tap columns
    /// `kx.0 .. kx.0 + kx.1`: each tap's weight vector serves `P` independent accumulators.
    #[inline(always)]
    pub(super) fn pixels<S: Simd, const P: usize>(
        simd: S,
        at: &RowTaps,
        block: &Block<S>,
        (ix0, kx): (usize, (usize, usize)),
        out: &mut [f32],
    ) {
        let (c, start, lanes) = (at.c, block.start, S::F32_LANES);
        let mut acc = [block.bias; P];
        for dy in 0..at.ky.1 {
            let row = (at.iy0 + dy) * at.w + ix0;
            let tap_row = (at.ky.0 + dy) * at.k + kx.0;
            for dx in 0..kx.1 {
                let w = load(simd, block.weights, (tap_row + dx) * lanes);
                for (p, a) in acc.iter_mut().enumerate() {
                    let v = load(simd, at.x, (row + p * at.stride + dx) * c + start);
                    *a = simd.mul_add_f32s(v, w, *a);
                }
            }
        }
        for (p, a) in acc.iter().enumerate() {
            let clamped = simd.min_f32s(simd.max_f32s(*a, block.lo), block.hi);
            store::<S>(out, p * c + start, clamped);
        }
    }

    /// Channels `channels` (fewer than a vector) of output pixel `ox` of `row`, one value at a
    /// time.
    #[inline(always)]
    pub(super) fn single_channels(
        layer: &DepthwiseNhwc,
        at: &RowTaps,
        (ix0, kx): (usize, (usize, usize)),
        channels: std::ops::Range<usize>,
        (lo, hi): (f32, f32),
        row: &mut [f32],
        ox: usize,
    ) {
        let c = at.c;
        for ch in channels {
            let mut acc = layer.bias[ch];
            for dy in 0..at.ky.1 {
                let iy = at.iy0 + dy;
                for dx in 0..kx.1 {
                    let tap = ((at.ky.0 + dy) * at.k + kx.0 + dx) * c + ch;
                    acc = at.x[(iy * at.w + ix0 + dx) * c + ch].mul_add(layer.taps[tap], acc);
                }
            }
            row[ox * c + ch] = acc.max(lo).min(hi);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::depthwise_cpu::{forward, DepthwiseGeometry, Epilogue};
    use crate::test_support::uniform as values;

    /// `[c, h, w]` → `[h, w, c]`.
    fn to_nhwc(x: &[f32], c: usize, hw: usize) -> Vec<f32> {
        transpose(x, c, hw)
    }

    #[test]
    fn matches_the_channels_first_kernel_at_every_size_stride_and_border() {
        // Channels: below one lane block, one block and a remainder; images smaller than the
        // kernel, odd sizes (SAME's extra zero after), strides 1 and 2, kernels 3 and 5.
        for &(c, h, w) in &[
            (5, 7, 9),
            (16, 1, 1),
            (35, 12, 11),
            (48, 2, 3),
            (32, 16, 16),
        ] {
            for k in [3, 5] {
                for stride in [1, 2] {
                    let x = values(c * h * w, (c * h * w * k * stride) as u64);
                    let kernel = values(c * k * k, 7);
                    let bias = values(c, 8);
                    let g = DepthwiseGeometry::same(&[1, c, h, w], &[c, 1, k, k], stride)
                        .expect("geometry");
                    let want_nchw = forward(
                        &g,
                        &x,
                        &kernel,
                        Epilogue {
                            bias: Some(&bias),
                            lo: -0.5,
                            hi: 0.7,
                        },
                    );
                    let layer = DepthwiseNhwc::new(&kernel, bias, k, stride).expect("layer");
                    let plan = layer.plan(h, w);
                    assert_eq!((plan.h_out, plan.w_out), (g.h_out, g.w_out));
                    let want = to_nhwc(&want_nchw, c, g.h_out * g.w_out);
                    let input = to_nhwc(&x, c, h * w);
                    for (set, got) in every_instruction_set(&layer, &input, plan) {
                        assert!(got.iter().all(|v| v.is_finite()), "every output written");
                        let worst = got
                            .iter()
                            .zip(&want)
                            .map(|(a, b)| (a - b).abs())
                            .fold(0f32, f32::max);
                        assert!(
                            worst < 1e-5,
                            "{set}: c {c}, {h}×{w}, k {k}, s {stride}: {worst}"
                        );
                    }
                }
            }
        }
    }

    /// The layer's output under the dispatched instruction set, AVX2 (where the CPU has it)
    /// and plain scalar code: each vector width's blocks and remainders.
    fn every_instruction_set(
        layer: &DepthwiseNhwc,
        x: &[f32],
        plan: Plan,
    ) -> Vec<(&'static str, Vec<f32>)> {
        let run = |set: &dyn Fn(Rows)| {
            let mut out = vec![f32::NAN; plan.h_out * plan.w_out * layer.channels()];
            set(Rows {
                layer,
                x,
                plan,
                clamp: (-0.5, 0.7),
                out: &mut out,
            });
            out
        };
        let mut outputs = vec![
            ("dispatched", run(&|rows| pulp::Arch::new().dispatch(rows))),
            (
                "scalar",
                run(&|rows| pulp::WithSimd::with_simd(rows, pulp::Scalar::new())),
            ),
        ];
        #[cfg(target_arch = "x86_64")]
        if let Some(v3) = pulp::x86::V3::try_new() {
            outputs.push(("AVX2", run(&|rows| pulp::WithSimd::with_simd(rows, v3))));
        }
        outputs
    }

    #[test]
    fn a_kernel_of_the_wrong_size_is_refused() {
        assert!(DepthwiseNhwc::new(&[0.0; 17], vec![0.0; 2], 3, 1).is_err());
        assert!(DepthwiseNhwc::new(&[0.0; 18], vec![0.0; 2], 3, 0).is_err());
    }
}
