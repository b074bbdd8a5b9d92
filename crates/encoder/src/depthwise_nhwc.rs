//! The depthwise convolution on channels-last (`[h, w, c]`) images for inference, with its
//! bias and clamp (ReLU6) in the pass that writes the output: TensorFlow "SAME" padding, any
//! kernel side and stride.
//!
//! Channels are contiguous, so one tap of a block of [`LANES`] channels is one vector
//! multiply-add; each output pixel's taps are clipped to the image (no padded copy of the
//! input), and inside the image [`PIXELS`] neighbouring output pixels are computed together,
//! so that every weight vector loaded serves several independent accumulators (at the borders,
//! four blocks of channels of one pixel are). The kernel runs
//! through `pulp::Arch::dispatch`, compiled for the best instruction set the CPU has
//! (AVX-512, AVX2 + FMA, or none), chosen at run time.

use super::depthwise_cpu::same_padding;

/// Channels handled together (one AVX-512 vector, two AVX2 ones).
const LANES: usize = 16;
/// Output pixels of one row computed together inside the image.
const PIXELS: usize = 8;

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
        let mut taps = vec![0f32; k * k * c];
        for ch in 0..c {
            for tap in 0..k * k {
                taps[tap * c + ch] = kernel[ch * k * k + tap];
            }
        }
        Ok(Self {
            taps,
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
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let Rows {
            layer,
            x,
            plan: p,
            clamp,
            out,
        } = self;
        let (k, s, c) = (layer.k, layer.stride, layer.channels());
        // Output columns whose taps all lie inside the image: ox·s − pad_left ≥ 0 and
        // ox·s − pad_left + k ≤ w.
        let inner_start = p.pad_left.div_ceil(s).min(p.w_out);
        let inner_end = if p.w + p.pad_left >= k {
            ((p.w + p.pad_left - k) / s + 1).clamp(inner_start, p.w_out)
        } else {
            inner_start
        };
        for (oy, row) in out.chunks_exact_mut(p.w_out * c).take(p.h_out).enumerate() {
            let top = oy * s; // padded row of tap 0
            let ky = p.pad_top.saturating_sub(top)..k.min(p.h + p.pad_top - top);
            let iy0 = top + ky.start - p.pad_top; // input row of tap ky.start
            let at = Geometry {
                x,
                w: p.w,
                c,
                iy0,
                ky: (ky.start, ky.len()),
                k,
            };
            for ox in (0..inner_start).chain(inner_end..p.w_out) {
                border_pixel(layer, &at, &p, ox, clamp, &mut row[ox * c..(ox + 1) * c]);
            }
            let mut ox = inner_start;
            while ox + PIXELS <= inner_end {
                let ix0 = ox * s - p.pad_left;
                let dst = &mut row[ox * c..(ox + PIXELS) * c];
                let cols = kernels::Columns {
                    ix0,
                    stride: s,
                    kx: (0, k),
                };
                kernels::inner::<PIXELS>(layer, &at, cols, clamp, dst);
                ox += PIXELS;
            }
            for ox in ox..inner_end {
                border_pixel(layer, &at, &p, ox, clamp, &mut row[ox * c..(ox + 1) * c]);
            }
        }
    }
}

/// Output pixel `ox` of the row `at` describes, its tap columns clipped to the image.
#[inline(always)]
fn border_pixel(
    layer: &DepthwiseNhwc,
    at: &Geometry,
    p: &Plan,
    ox: usize,
    clamp: (f32, f32),
    out: &mut [f32],
) {
    let (k, s) = (layer.k, layer.stride);
    let left = ox * s;
    let kx = p.pad_left.saturating_sub(left)..k.min(p.w + p.pad_left - left);
    let ix0 = left + kx.start - p.pad_left;
    let cols = kernels::Columns {
        ix0,
        stride: s,
        kx: (kx.start, kx.len()),
    };
    kernels::border::<4>(layer, at, cols, clamp, out);
}

/// Where one output row's taps read: input `x` (`[h, w, c]`), the input row of the first tap
/// inside the image and the tap rows `(first, count)` inside it.
struct Geometry<'a> {
    x: &'a [f32],
    w: usize,
    c: usize,
    iy0: usize,
    ky: (usize, usize),
    k: usize,
}

/// The kernel: plain loops over fixed-size arrays, inlined into the dispatched function above
/// and vectorised there.
mod kernels {
    use super::{DepthwiseNhwc, Geometry, LANES};

    /// Where a call's pixels read: input columns `ix0 + p·stride` for tap column `kx.0`, tap
    /// columns `kx.0 .. kx.0 + kx.1`.
    #[derive(Clone, Copy)]
    pub(super) struct Columns {
        pub ix0: usize,
        pub stride: usize,
        pub kx: (usize, usize),
    }

    /// `P` neighbouring output pixels (`out`: `P × c` values) with every tap column, one
    /// block of [`LANES`] channels at a time (each weight vector loaded serves `P`
    /// accumulators), then single channels.
    #[inline(always)]
    pub(super) fn inner<const P: usize>(
        layer: &DepthwiseNhwc,
        at: &Geometry,
        cols: Columns,
        clamp: (f32, f32),
        out: &mut [f32],
    ) {
        let c = at.c;
        let mut start = 0;
        while start + LANES <= c {
            let mut acc = [[0f32; LANES]; P];
            for a in &mut acc {
                *a = *lanes(&layer.bias, start);
            }
            for dy in 0..at.ky.1 {
                let row = (at.iy0 + dy) * at.w + cols.ix0;
                let tap_row = (at.ky.0 + dy) * at.k + cols.kx.0;
                for dx in 0..cols.kx.1 {
                    let w = lanes(&layer.taps, (tap_row + dx) * c + start);
                    for (p, a) in acc.iter_mut().enumerate() {
                        let v = lanes(&at.x, (row + p * cols.stride + dx) * c + start);
                        for i in 0..LANES {
                            a[i] = v[i].mul_add(w[i], a[i]);
                        }
                    }
                }
            }
            for (p, a) in acc.iter().enumerate() {
                store(a, clamp, &mut out[p * c + start..]);
            }
            start += LANES;
        }
        single_channels(layer, at, cols, clamp, (start, P), out);
    }

    /// One output pixel (`out`: `c` values), its tap columns clipped: `B` blocks of
    /// [`LANES`] channels at a time while they last (`B` independent accumulators), then
    /// single blocks, then single channels.
    #[inline(always)]
    pub(super) fn border<const B: usize>(
        layer: &DepthwiseNhwc,
        at: &Geometry,
        cols: Columns,
        clamp: (f32, f32),
        out: &mut [f32],
    ) {
        let c = at.c;
        let mut start = 0;
        while start + B * LANES <= c {
            blocks::<B>(layer, at, cols, clamp, start, out);
            start += B * LANES;
        }
        while start + LANES <= c {
            blocks::<1>(layer, at, cols, clamp, start, out);
            start += LANES;
        }
        single_channels(layer, at, cols, clamp, (start, 1), out);
    }

    /// Channels `start .. start + B·LANES` of one pixel.
    #[inline(always)]
    fn blocks<const B: usize>(
        layer: &DepthwiseNhwc,
        at: &Geometry,
        cols: Columns,
        clamp: (f32, f32),
        start: usize,
        out: &mut [f32],
    ) {
        let c = at.c;
        let mut acc = [[0f32; LANES]; B];
        for (b, a) in acc.iter_mut().enumerate() {
            *a = *lanes(&layer.bias, start + b * LANES);
        }
        for dy in 0..at.ky.1 {
            let row = (at.iy0 + dy) * at.w + cols.ix0;
            let tap_row = (at.ky.0 + dy) * at.k + cols.kx.0;
            for dx in 0..cols.kx.1 {
                let (src, tap) = ((row + dx) * c + start, (tap_row + dx) * c + start);
                for (b, a) in acc.iter_mut().enumerate() {
                    let v = lanes(&at.x, src + b * LANES);
                    let w = lanes(&layer.taps, tap + b * LANES);
                    for i in 0..LANES {
                        a[i] = v[i].mul_add(w[i], a[i]);
                    }
                }
            }
        }
        for (b, a) in acc.iter().enumerate() {
            store(a, clamp, &mut out[start + b * LANES..]);
        }
    }

    /// Channels `start..c` of `pixels` pixels, one value at a time.
    #[inline(always)]
    fn single_channels(
        layer: &DepthwiseNhwc,
        at: &Geometry,
        cols: Columns,
        (lo, hi): (f32, f32),
        (start, pixels): (usize, usize),
        out: &mut [f32],
    ) {
        let c = at.c;
        for ch in start..c {
            for p in 0..pixels {
                let mut acc = layer.bias[ch];
                for dy in 0..at.ky.1 {
                    let iy = at.iy0 + dy;
                    for dx in 0..cols.kx.1 {
                        let tap = ((at.ky.0 + dy) * at.k + cols.kx.0 + dx) * c + ch;
                        let src = (iy * at.w + cols.ix0 + p * cols.stride + dx) * c + ch;
                        acc = at.x[src].mul_add(layer.taps[tap], acc);
                    }
                }
                out[p * c + ch] = acc.max(lo).min(hi);
            }
        }
    }

    /// `values[at .. at + LANES]` as an array (callers pass indices inside the buffers).
    #[inline(always)]
    fn lanes(values: &[f32], at: usize) -> &[f32; LANES] {
        match values[at..].first_chunk::<LANES>() {
            Some(v) => v,
            None => unreachable!("fewer than LANES values"),
        }
    }

    /// Writes `acc`, clamped, to the first [`LANES`] values of `out`.
    #[inline(always)]
    fn store(acc: &[f32; LANES], (lo, hi): (f32, f32), out: &mut [f32]) {
        let dst = match out.first_chunk_mut::<LANES>() {
            Some(d) => d,
            None => unreachable!("fewer than LANES values"),
        };
        for i in 0..LANES {
            dst[i] = acc[i].max(lo).min(hi);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::depthwise_cpu::{forward, DepthwiseGeometry, Epilogue};

    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut rng = natview_core::rng::SplitMix64::new(seed);
        (0..len)
            .map(|_| rng.next_f64() as f32 * 2.0 - 1.0)
            .collect()
    }

    /// `[c, h, w]` → `[h, w, c]` and back.
    fn to_nhwc(x: &[f32], c: usize, hw: usize) -> Vec<f32> {
        (0..hw * c).map(|i| x[(i % c) * hw + i / c]).collect()
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
                    let mut got = vec![f32::NAN; plan.h_out * plan.w_out * c];
                    layer.forward(&to_nhwc(&x, c, h * w), plan, (-0.5, 0.7), &mut got);
                    let want = to_nhwc(&want_nchw, c, g.h_out * g.w_out);
                    assert!(got.iter().all(|v| v.is_finite()), "every output written");
                    let worst = got
                        .iter()
                        .zip(&want)
                        .map(|(a, b)| (a - b).abs())
                        .fold(0f32, f32::max);
                    assert!(worst < 1e-5, "c {c}, {h}×{w}, k {k}, s {stride}: {worst}");
                }
            }
        }
    }

    #[test]
    fn a_kernel_of_the_wrong_size_is_refused() {
        assert!(DepthwiseNhwc::new(&[0.0; 17], vec![0.0; 2], 3, 1).is_err());
        assert!(DepthwiseNhwc::new(&[0.0; 18], vec![0.0; 2], 3, 0).is_err());
    }
}
