//! CPU kernels of the depthwise 2D convolution (one `k × k` filter per channel, TensorFlow
//! "SAME" padding, which may put one more zero row/column after than before), forward and both
//! gradients, on NCHW f32 buffers.
//!
//! The forward pass copies each channel plane once into a zero-padded scratch plane, split by
//! column phase for strides above 1 (columns `p, p + s, p + 2s, …` stored together), so that
//! every tap `(ky, kx)` reads one contiguous run of the scratch row and the inner loop is a
//! vectorised multiply-add over the output row. Planes run in parallel (rayon).

use crate::scratch::with_scratch;
use rayon::prelude::*;

/// Shapes of one depthwise convolution: input `[n, c, h, w]`, kernel `[c, 1, k, k]`, output
/// `[n, c, h_out, w_out]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DepthwiseGeometry {
    /// Batch size.
    pub n: usize,
    /// Channels (input = output).
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Kernel side.
    pub k: usize,
    /// Stride.
    pub stride: usize,
    /// Zero rows above the input.
    pub pad_top: usize,
    /// Zero columns left of the input.
    pub pad_left: usize,
    /// Output height.
    pub h_out: usize,
    /// Output width.
    pub w_out: usize,
}

/// TensorFlow's "SAME" padding of one axis: output `⌈size / stride⌉`, and the zeros before and
/// after (the odd one goes after).
pub fn same_padding(size: usize, k: usize, stride: usize) -> (usize, usize, usize) {
    let out = size.div_ceil(stride.max(1));
    let total = ((out.saturating_sub(1)) * stride + k).saturating_sub(size);
    (out, total / 2, total - total / 2)
}

impl DepthwiseGeometry {
    /// Checks the shapes and derives TF-"SAME" padding and the output size.
    pub fn same(input: &[usize], kernel: &[usize], stride: usize) -> Result<Self, String> {
        let (&[n, c, h, w], &[kc, one, k, k2]) = (input, kernel) else {
            return Err(format!(
                "depthwise conv wants a 4-d input and kernel, got {input:?} and {kernel:?}"
            ));
        };
        if kc != c || one != 1 || k != k2 || k == 0 || stride == 0 || h == 0 || w == 0 {
            return Err(format!(
                "depthwise conv: kernel {kernel:?} does not fit input {input:?} (stride {stride})"
            ));
        }
        let (h_out, pad_top, _) = same_padding(h, k, stride);
        let (w_out, pad_left, _) = same_padding(w, k, stride);
        Ok(Self {
            n,
            c,
            h,
            w,
            k,
            stride,
            pad_top,
            pad_left,
            h_out,
            w_out,
        })
    }

    fn in_plane(&self) -> usize {
        self.h * self.w
    }

    fn out_plane(&self) -> usize {
        self.h_out * self.w_out
    }

    /// Rows of the padded plane that any tap reads.
    fn padded_rows(&self) -> usize {
        (self.h_out - 1) * self.stride + self.k
    }

    /// Width of one column phase of the padded plane: every output column plus the taps'
    /// reach within the phase.
    fn phase_width(&self) -> usize {
        self.w_out + (self.k - 1) / self.stride
    }

    /// Values in one padded, phase-split plane.
    fn scratch_len(&self) -> usize {
        self.padded_rows() * self.stride * self.phase_width()
    }

    /// The input coordinate of output `o` at tap `t`, if inside the image.
    fn source(o: usize, t: usize, stride: usize, pad: usize, size: usize) -> Option<usize> {
        (o * stride + t).checked_sub(pad).filter(|&i| i < size)
    }
}

std::thread_local! {
    /// Each thread's padded-plane buffer, reused between planes and layers.
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Copies one input plane into `scratch`: zero padding around it, rows of `stride` phases of
/// `phase_width` values, phase `p` holding padded columns `p, p + stride, …`.
fn fill_padded(g: &DepthwiseGeometry, plane: &[f32], scratch: &mut [f32]) {
    let (s, pw) = (g.stride, g.phase_width());
    for py in 0..g.padded_rows() {
        let row = &mut scratch[py * s * pw..(py + 1) * s * pw];
        let Some(iy) = py.checked_sub(g.pad_top).filter(|&iy| iy < g.h) else {
            row.fill(0.0);
            continue;
        };
        let src = &plane[iy * g.w..(iy + 1) * g.w];
        for (p, phase) in row.chunks_exact_mut(pw).enumerate() {
            for (j, value) in phase.iter_mut().enumerate() {
                // Padded column j·s + p is input column j·s + p − pad_left.
                *value = (j * s + p)
                    .checked_sub(g.pad_left)
                    .and_then(|ix| src.get(ix))
                    .copied()
                    .unwrap_or(0.0);
            }
        }
    }
}

/// The epilogue applied to each output value: `bias` added, then clamped to `[lo, hi]`.
#[derive(Debug, Clone, Copy)]
pub struct Epilogue<'a> {
    /// Per-channel bias (`None`: zero).
    pub bias: Option<&'a [f32]>,
    /// Lower clamp (`f32::NEG_INFINITY` for none).
    pub lo: f32,
    /// Upper clamp (`f32::INFINITY` for none).
    pub hi: f32,
}

impl Epilogue<'_> {
    /// No bias, no clamp: the plain convolution.
    pub const NONE: Epilogue<'static> = Epilogue {
        bias: None,
        lo: f32::NEG_INFINITY,
        hi: f32::INFINITY,
    };
}

/// One plane of the forward pass: `out` (`h_out × w_out`) from one input plane and its `k × k`
/// filter, with `bias` added and the result clamped.
pub fn forward_plane(
    g: &DepthwiseGeometry,
    plane: &[f32],
    filter: &[f32],
    bias: f32,
    (lo, hi): (f32, f32),
    out: &mut [f32],
) {
    with_scratch(&SCRATCH, g.scratch_len(), |scratch| {
        fill_padded(g, plane, scratch);
        let (s, pw, k, wo) = (g.stride, g.phase_width(), g.k, g.w_out);
        for (oy, row) in out.chunks_exact_mut(wo).enumerate() {
            row.fill(bias);
            for ky in 0..k {
                let padded_row = &scratch[(oy * s + ky) * s * pw..(oy * s + ky + 1) * s * pw];
                for kx in 0..k {
                    let weight = filter[ky * k + kx];
                    let start = (kx % s) * pw + kx / s;
                    let src = &padded_row[start..start + wo];
                    for (o, x) in row.iter_mut().zip(src) {
                        *o += weight * x;
                    }
                }
            }
            if lo > f32::NEG_INFINITY || hi < f32::INFINITY {
                row.iter_mut().for_each(|v| *v = v.clamp(lo, hi));
            }
        }
    })
}

/// The forward pass over a batch: `[n, c, h_out, w_out]`, planes in parallel.
pub fn forward(g: &DepthwiseGeometry, input: &[f32], kernel: &[f32], epi: Epilogue) -> Vec<f32> {
    let mut out = vec![0f32; g.n * g.c * g.out_plane()];
    let kk = g.k * g.k;
    out.par_chunks_mut(g.out_plane())
        .zip(input.par_chunks(g.in_plane()))
        .enumerate()
        .for_each(|(i, (out, plane))| {
            let c = i % g.c;
            let bias = epi.bias.map_or(0.0, |b| b[c]);
            forward_plane(
                g,
                plane,
                &kernel[c * kk..(c + 1) * kk],
                bias,
                (epi.lo, epi.hi),
                out,
            );
        });
    out
}

/// The gradient with respect to the input, `[n, c, h, w]`: each output gradient value spread
/// back over the input pixels its taps read (the adjoint of [`forward`]).
pub fn grad_input(g: &DepthwiseGeometry, grad_out: &[f32], kernel: &[f32]) -> Vec<f32> {
    let mut grad_in = vec![0f32; g.n * g.c * g.in_plane()];
    let kk = g.k * g.k;
    grad_in
        .par_chunks_mut(g.in_plane())
        .zip(grad_out.par_chunks(g.out_plane()))
        .enumerate()
        .for_each(|(i, (gi, go))| {
            let filter = &kernel[(i % g.c) * kk..(i % g.c + 1) * kk];
            for_each_tap(g, |ky, kx, oy, (lo, hi), ix0| {
                let weight = filter[ky * g.k + kx];
                let iy = oy * g.stride + ky - g.pad_top;
                let src = &go[oy * g.w_out + lo..oy * g.w_out + hi];
                let dst = &mut gi[iy * g.w..(iy + 1) * g.w];
                for (j, v) in src.iter().enumerate() {
                    dst[ix0 + j * g.stride] += weight * v;
                }
            });
        });
    grad_in
}

/// The gradient with respect to the kernel, `[c, 1, k, k]`, summed over the batch; channels in
/// parallel.
pub fn grad_kernel(g: &DepthwiseGeometry, input: &[f32], grad_out: &[f32]) -> Vec<f32> {
    let kk = g.k * g.k;
    let mut grad = vec![0f32; g.c * kk];
    grad.par_chunks_mut(kk).enumerate().for_each(|(c, gk)| {
        let mut sums = vec![0f64; kk];
        for n in 0..g.n {
            let plane = (n * g.c + c) * g.in_plane();
            let x = &input[plane..plane + g.in_plane()];
            let out = (n * g.c + c) * g.out_plane();
            let go = &grad_out[out..out + g.out_plane()];
            for_each_tap(g, |ky, kx, oy, (lo, hi), ix0| {
                let iy = oy * g.stride + ky - g.pad_top;
                let row = &x[iy * g.w..(iy + 1) * g.w];
                let mut acc = 0f32;
                for (j, v) in go[oy * g.w_out + lo..oy * g.w_out + hi].iter().enumerate() {
                    acc += v * row[ix0 + j * g.stride];
                }
                sums[ky * g.k + kx] += f64::from(acc);
            });
        }
        for (dst, s) in gk.iter_mut().zip(&sums) {
            *dst = *s as f32;
        }
    });
    grad
}

/// Calls `f(ky, kx, oy, (lo, hi), ix0)` for every tap and output row whose input row is inside
/// the image, with the output columns `lo..hi` whose input column is inside too, the first of
/// which reads input column `ix0`.
fn for_each_tap(
    g: &DepthwiseGeometry,
    mut f: impl FnMut(usize, usize, usize, (usize, usize), usize),
) {
    let inside = |ox: usize, kx: usize| {
        DepthwiseGeometry::source(ox, kx, g.stride, g.pad_left, g.w).is_some()
    };
    for kx in 0..g.k {
        let Some(lo) = (0..g.w_out).find(|&ox| inside(ox, kx)) else {
            continue;
        };
        let hi = lo + (lo..g.w_out).take_while(|&ox| inside(ox, kx)).count();
        let ix0 = lo * g.stride + kx - g.pad_left;
        for ky in 0..g.k {
            for oy in 0..g.h_out {
                if DepthwiseGeometry::source(oy, ky, g.stride, g.pad_top, g.h).is_some() {
                    f(ky, kx, oy, (lo, hi), ix0);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::uniform as values;

    /// The definition, with TF-"SAME" padding.
    fn naive(g: &DepthwiseGeometry, x: &[f32], kernel: &[f32]) -> Vec<f32> {
        let mut out = vec![0f32; g.n * g.c * g.out_plane()];
        for n in 0..g.n {
            for c in 0..g.c {
                for oy in 0..g.h_out {
                    for ox in 0..g.w_out {
                        let mut sum = 0f32;
                        for ky in 0..g.k {
                            for kx in 0..g.k {
                                let iy = (oy * g.stride + ky) as isize - g.pad_top as isize;
                                let ix = (ox * g.stride + kx) as isize - g.pad_left as isize;
                                if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
                                    continue;
                                }
                                sum += x[((n * g.c + c) * g.h + iy as usize) * g.w + ix as usize]
                                    * kernel[(c * g.k + ky) * g.k + kx];
                            }
                        }
                        out[((n * g.c + c) * g.h_out + oy) * g.w_out + ox] = sum;
                    }
                }
            }
        }
        out
    }

    /// n, c, h, w, k, stride.
    const CASES: [(usize, usize, usize, usize, usize, usize); 7] = [
        (2, 3, 8, 8, 3, 1),
        (2, 3, 8, 8, 3, 2),
        (1, 4, 9, 7, 5, 2),
        (2, 2, 7, 10, 5, 1),
        (1, 2, 14, 14, 5, 2),
        (1, 1, 3, 3, 5, 1),
        (2, 2, 5, 6, 3, 3),
    ];

    #[test]
    fn same_padding_matches_tensorflow() {
        assert_eq!(same_padding(224, 3, 2), (112, 0, 1));
        assert_eq!(same_padding(112, 3, 1), (112, 1, 1));
        assert_eq!(same_padding(28, 5, 2), (14, 1, 2));
        assert_eq!(same_padding(7, 5, 1), (7, 2, 2));
        assert_eq!(same_padding(7, 3, 2), (4, 1, 1));
    }

    #[test]
    fn forward_matches_the_definition() {
        for (n, c, h, w, k, s) in CASES {
            let g = DepthwiseGeometry::same(&[n, c, h, w], &[c, 1, k, k], s).expect("geometry");
            let x = values(n * c * h * w, 1);
            let kernel = values(c * k * k, 2);
            let fast = forward(&g, &x, &kernel, Epilogue::NONE);
            let slow = naive(&g, &x, &kernel);
            assert_eq!(fast.len(), slow.len());
            for (a, b) in fast.iter().zip(&slow) {
                assert!((a - b).abs() < 1e-5, "{g:?}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn epilogue_adds_the_bias_then_clamps() {
        let g = DepthwiseGeometry::same(&[1, 2, 4, 4], &[2, 1, 3, 3], 1).expect("geometry");
        let x = values(32, 3);
        let kernel = values(18, 4);
        let bias = [0.5f32, -0.25];
        let plain = forward(&g, &x, &kernel, Epilogue::NONE);
        let fused = forward(
            &g,
            &x,
            &kernel,
            Epilogue {
                bias: Some(&bias),
                lo: 0.0,
                hi: 0.6,
            },
        );
        for (i, (p, f)) in plain.iter().zip(&fused).enumerate() {
            let expected = (p + bias[i / 16]).clamp(0.0, 0.6);
            assert!((expected - f).abs() < 1e-6);
        }
    }

    fn dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum()
    }

    /// `⟨r, conv(x, W)⟩ = ⟨grad_input(r), x⟩ = ⟨grad_kernel(r), W⟩` for any `r`.
    #[test]
    fn gradients_are_the_adjoints_of_the_forward_pass() {
        for (n, c, h, w, k, s) in CASES {
            let g = DepthwiseGeometry::same(&[n, c, h, w], &[c, 1, k, k], s).expect("geometry");
            let x = values(n * c * h * w, 5);
            let kernel = values(c * k * k, 6);
            let r = values(n * c * g.out_plane(), 7);
            let lhs = dot(&r, &naive(&g, &x, &kernel));
            let via_input = dot(&grad_input(&g, &r, &kernel), &x);
            let via_kernel = dot(&grad_kernel(&g, &x, &r), &kernel);
            assert!((lhs - via_input).abs() < 1e-4 * lhs.abs().max(1.0), "{g:?}");
            assert!(
                (lhs - via_kernel).abs() < 1e-4 * lhs.abs().max(1.0),
                "{g:?}"
            );
        }
    }

    #[test]
    fn mismatched_shapes_are_refused() {
        assert!(DepthwiseGeometry::same(&[1, 3, 8, 8], &[4, 1, 3, 3], 1).is_err());
        assert!(DepthwiseGeometry::same(&[1, 3, 8, 8], &[3, 2, 3, 3], 1).is_err());
        assert!(DepthwiseGeometry::same(&[3, 8, 8], &[3, 1, 3, 3], 1).is_err());
    }
}
