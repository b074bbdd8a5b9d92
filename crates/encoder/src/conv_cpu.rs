//! CPU kernels of the 2D convolution: a single-pass im2col (and its adjoint, col2im) feeding
//! gemm, for the forward pass and both gradients. Images of a batch run in parallel (rayon), each
//! gemm on one thread, so that small images keep both cores busy. Grouped convolutions (RegNet's
//! 3×3 layers) share the one im2col matrix: group `g`'s rows of it are contiguous, so each group
//! is one gemm on a slice of the kernel, the column matrix and the output.

use super::conv_wide;
use crate::scratch::with_scratch;
use natview_core::linalg::{matmul, Operand, Output};
use rayon::prelude::*;

/// Shapes of one convolution: input `[n, c_in, h, w]`, kernel `[c_out, c_in / groups, k, k]`,
/// output `[n, c_out, h_out, w_out]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Batch size.
    pub n: usize,
    /// Input channels.
    pub c_in: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub c_out: usize,
    /// Kernel side.
    pub k: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding on each side.
    pub pad: usize,
    /// Output height.
    pub h_out: usize,
    /// Output width.
    pub w_out: usize,
    /// Channel groups: output channels of group `g` see only its `c_in / groups` input channels.
    pub groups: usize,
}

impl ConvGeometry {
    /// Checks the shapes (a convolution in `groups` channel groups; 1 for a plain one) and
    /// derives the output size.
    pub fn grouped(
        input: &[usize],
        kernel: &[usize],
        stride: usize,
        pad: usize,
        groups: usize,
    ) -> Result<Self, String> {
        let (&[n, c_in, h, w], &[c_out, kc, k, k2]) = (input, kernel) else {
            return Err(format!(
                "conv2d wants a 4-d input and kernel, got {input:?} and {kernel:?}"
            ));
        };
        if groups == 0
            || kc * groups != c_in
            || !c_out.is_multiple_of(groups)
            || k != k2
            || k == 0
            || stride == 0
        {
            return Err(format!(
                "conv2d: kernel {kernel:?} does not fit input {input:?} (stride {stride}, {groups} groups)"
            ));
        }
        if h + 2 * pad < k || w + 2 * pad < k {
            return Err(format!(
                "conv2d: input {input:?} is smaller than the {k}×{k} kernel with padding {pad}"
            ));
        }
        Ok(Self {
            n,
            c_in,
            h,
            w,
            c_out,
            k,
            stride,
            pad,
            h_out: (h + 2 * pad - k) / stride + 1,
            w_out: (w + 2 * pad - k) / stride + 1,
            groups,
        })
    }

    /// Rows of the column matrix: `c_in · k · k`.
    fn patch_len(&self) -> usize {
        self.c_in * self.k * self.k
    }

    /// Rows of one group's block of the column matrix (the kernel's row length).
    fn group_patch_len(&self) -> usize {
        self.patch_len() / self.groups
    }

    /// Output channels of one group.
    fn group_c_out(&self) -> usize {
        self.c_out / self.groups
    }

    /// Columns of the column matrix: `h_out · w_out`.
    fn out_pixels(&self) -> usize {
        self.h_out * self.w_out
    }

    fn in_plane(&self) -> usize {
        self.c_in * self.h * self.w
    }

    fn out_plane(&self) -> usize {
        self.c_out * self.out_pixels()
    }

    /// A 1×1 convolution with stride 1 and no padding: the input is its own column matrix.
    fn is_pointwise(&self) -> bool {
        self.k == 1 && self.stride == 1 && self.pad == 0
    }

    /// Values in one image's im2col matrix (`patch_len × out_pixels`; none for a pointwise
    /// convolution, which multiplies the image itself).
    fn cols_len(&self) -> usize {
        if self.is_pointwise() {
            0
        } else {
            self.patch_len() * self.out_pixels()
        }
    }

    /// Output columns `ox` whose input column `ox·stride + kx − pad` lies inside the image.
    fn valid_columns(&self, kx: usize) -> (usize, usize) {
        let lo = if self.pad > kx {
            (self.pad - kx).div_ceil(self.stride)
        } else {
            0
        };
        let hi = if self.w + self.pad > kx {
            ((self.w - 1 + self.pad - kx) / self.stride + 1).min(self.w_out)
        } else {
            0
        };
        (lo.min(hi), hi)
    }
}

std::thread_local! {
    /// Each thread's im2col buffer, kept between convolutions: a fresh zeroed buffer per task
    /// cost a memset (and page faults) of up to 7 MB per ResNet layer and image group.
    pub(super) static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// What one image is multiplied as: its im2col matrix (written into `cols`), or the image
/// itself for a pointwise convolution.
fn patches<'a>(g: &ConvGeometry, image: &'a [f32], cols: &'a mut [f32]) -> &'a [f32] {
    if g.is_pointwise() {
        image
    } else {
        im2col(g, image, cols);
        cols
    }
}

/// Fills `cols` (`patch_len × out_pixels`, row `(c, ky, kx)`) with the patches of one image,
/// writing every value (padding as zeros), so `cols` may hold anything beforehand.
fn im2col(g: &ConvGeometry, image: &[f32], cols: &mut [f32]) {
    let pixels = g.out_pixels();
    for c in 0..g.c_in {
        let plane = &image[c * g.h * g.w..(c + 1) * g.h * g.w];
        for ky in 0..g.k {
            for kx in 0..g.k {
                let row = ((c * g.k + ky) * g.k + kx) * pixels;
                let (lo, hi) = g.valid_columns(kx);
                for oy in 0..g.h_out {
                    let out = &mut cols[row + oy * g.w_out..row + (oy + 1) * g.w_out];
                    let iy = (oy * g.stride + ky) as isize - g.pad as isize;
                    if iy < 0 || iy >= g.h as isize {
                        out.fill(0.0);
                        continue;
                    }
                    let src = &plane[iy as usize * g.w..(iy as usize + 1) * g.w];
                    out[..lo].fill(0.0);
                    out[hi..].fill(0.0);
                    if g.stride == 1 {
                        let start = lo + kx - g.pad;
                        out[lo..hi].copy_from_slice(&src[start..start + (hi - lo)]);
                    } else {
                        for (ox, value) in out.iter_mut().enumerate().take(hi).skip(lo) {
                            *value = src[ox * g.stride + kx - g.pad];
                        }
                    }
                }
            }
        }
    }
}

/// Adds the column matrix `cols` back into one image's gradient (the adjoint of [`im2col`]).
fn col2im_add(g: &ConvGeometry, cols: &[f32], image: &mut [f32]) {
    let pixels = g.out_pixels();
    for c in 0..g.c_in {
        let plane = &mut image[c * g.h * g.w..(c + 1) * g.h * g.w];
        for ky in 0..g.k {
            for kx in 0..g.k {
                let row = ((c * g.k + ky) * g.k + kx) * pixels;
                let (lo, hi) = g.valid_columns(kx);
                for oy in 0..g.h_out {
                    let iy = (oy * g.stride + ky) as isize - g.pad as isize;
                    if iy < 0 || iy >= g.h as isize {
                        continue;
                    }
                    let src = &cols[row + oy * g.w_out..row + (oy + 1) * g.w_out];
                    let dst = &mut plane[iy as usize * g.w..(iy as usize + 1) * g.w];
                    if g.stride == 1 {
                        let start = lo + kx - g.pad;
                        for (d, s) in dst[start..start + (hi - lo)].iter_mut().zip(&src[lo..hi]) {
                            *d += *s;
                        }
                    } else {
                        for (ox, value) in src.iter().enumerate().take(hi).skip(lo) {
                            dst[ox * g.stride + kx - g.pad] += *value;
                        }
                    }
                }
            }
        }
    }
}

/// The forward pass: `[n, c_out, h_out, w_out]` from the input and the kernel (both row-major).
pub fn forward(g: &ConvGeometry, input: &[f32], kernel: &[f32]) -> Vec<f32> {
    if conv_wide::worthwhile(g) {
        conv_wide::forward(g, input, kernel)
    } else {
        im2col_forward(g, input, kernel)
    }
}

/// The gradient with respect to the input: `[n, c_in, h, w]` from the output gradient.
pub fn grad_input(g: &ConvGeometry, grad_out: &[f32], kernel: &[f32]) -> Vec<f32> {
    if conv_wide::worthwhile(g) {
        conv_wide::grad_input(g, grad_out, kernel)
    } else {
        im2col_grad_input(g, grad_out, kernel)
    }
}

/// The gradient with respect to the kernel: `[c_out, c_in, k, k]`, summed over the batch.
pub fn grad_kernel(g: &ConvGeometry, input: &[f32], grad_out: &[f32]) -> Vec<f32> {
    if conv_wide::worthwhile(g) {
        conv_wide::grad_kernel(g, input, grad_out)
    } else {
        im2col_grad_kernel(g, input, grad_out)
    }
}

/// [`forward`] through im2col.
pub(super) fn im2col_forward(g: &ConvGeometry, input: &[f32], kernel: &[f32]) -> Vec<f32> {
    let mut out = vec![0f32; g.n * g.out_plane()];
    let (patch, pixels, c_out) = (g.group_patch_len(), g.out_pixels(), g.group_c_out());
    out.par_chunks_mut(g.out_plane().max(1))
        .zip(input.par_chunks(g.in_plane().max(1)))
        .for_each(|(out, image)| {
            with_scratch(&SCRATCH, g.cols_len(), |cols| {
                let cols = patches(g, image, cols);
                for group in 0..g.groups {
                    matmul(
                        c_out,
                        pixels,
                        patch,
                        Output::rows(&mut out[group * c_out * pixels..], pixels),
                        Operand::rows(&kernel[group * c_out * patch..], patch),
                        Operand::rows(&cols[group * patch * pixels..], pixels),
                        false,
                    );
                }
            })
        });
    out
}

/// [`grad_input`] through col2im.
pub(super) fn im2col_grad_input(g: &ConvGeometry, grad_out: &[f32], kernel: &[f32]) -> Vec<f32> {
    let mut grad_in = vec![0f32; g.n * g.in_plane()];
    let (patch, pixels, c_out) = (g.group_patch_len(), g.out_pixels(), g.group_c_out());
    // Group `group`'s rows of the column gradient: its kernel block transposed times its
    // output channels' gradient.
    let column_gradient = |columns: &mut [f32], grad: &[f32]| {
        for group in 0..g.groups {
            matmul(
                patch,
                pixels,
                c_out,
                Output::rows(&mut columns[group * patch * pixels..], pixels),
                Operand::transposed(&kernel[group * c_out * patch..], patch),
                Operand::rows(&grad[group * c_out * pixels..], pixels),
                false,
            );
        }
    };
    grad_in
        .par_chunks_mut(g.in_plane().max(1))
        .zip(grad_out.par_chunks(g.out_plane().max(1)))
        .for_each(|(grad_image, grad)| {
            if g.is_pointwise() {
                column_gradient(grad_image, grad);
            } else {
                with_scratch(&SCRATCH, g.cols_len(), |cols| {
                    column_gradient(cols, grad);
                    col2im_add(g, cols, grad_image);
                });
            }
        });
    grad_in
}

/// [`grad_kernel`] through im2col.
pub(super) fn im2col_grad_kernel(g: &ConvGeometry, input: &[f32], grad_out: &[f32]) -> Vec<f32> {
    let (patch, pixels, c_out) = (g.group_patch_len(), g.out_pixels(), g.group_c_out());
    let size = g.c_out * patch;
    let threads = rayon::current_num_threads().max(1);
    let per_task = g.n.div_ceil(threads).max(1);
    let images: Vec<usize> = (0..g.n).collect();
    images
        .par_chunks(per_task)
        .map(|batch| {
            let mut partial = vec![0f32; size];
            with_scratch(&SCRATCH, g.cols_len(), |cols| {
                for &i in batch {
                    let image = &input[i * g.in_plane()..(i + 1) * g.in_plane()];
                    let grad = &grad_out[i * g.out_plane()..(i + 1) * g.out_plane()];
                    let cols = patches(g, image, cols);
                    for group in 0..g.groups {
                        matmul(
                            c_out,
                            patch,
                            pixels,
                            Output::rows(&mut partial[group * c_out * patch..], patch),
                            Operand::rows(&grad[group * c_out * pixels..], pixels),
                            Operand::transposed(&cols[group * patch * pixels..], pixels),
                            true,
                        );
                    }
                }
            });
            partial
        })
        .reduce(
            || vec![0f32; size],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                a
            },
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::uniform as values;

    /// Direct convolution, the definition itself.
    fn naive_forward(g: &ConvGeometry, x: &[f32], kernel: &[f32]) -> Vec<f32> {
        let mut out = vec![0f32; g.n * g.out_plane()];
        let c_in_group = g.c_in / g.groups;
        for n in 0..g.n {
            for o in 0..g.c_out {
                let first_channel = o / g.group_c_out() * c_in_group;
                for oy in 0..g.h_out {
                    for ox in 0..g.w_out {
                        let mut sum = 0f32;
                        for c in 0..c_in_group {
                            for ky in 0..g.k {
                                for kx in 0..g.k {
                                    let iy = (oy * g.stride + ky) as isize - g.pad as isize;
                                    let ix = (ox * g.stride + kx) as isize - g.pad as isize;
                                    if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize
                                    {
                                        continue;
                                    }
                                    let channel = first_channel + c;
                                    sum += x[((n * g.c_in + channel) * g.h + iy as usize) * g.w
                                        + ix as usize]
                                        * kernel[((o * c_in_group + c) * g.k + ky) * g.k + kx];
                                }
                            }
                        }
                        out[((n * g.c_out + o) * g.h_out + oy) * g.w_out + ox] = sum;
                    }
                }
            }
        }
        out
    }

    fn dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum()
    }

    /// n, c_in, h, w, c_out, k, stride, pad, groups.
    type Case = (
        usize,
        usize,
        usize,
        usize,
        usize,
        usize,
        usize,
        usize,
        usize,
    );

    const CASES: [Case; 10] = [
        (2, 3, 9, 7, 4, 3, 1, 1, 1),
        (3, 2, 8, 8, 5, 3, 2, 1, 1),
        (2, 4, 6, 5, 3, 1, 1, 0, 1),
        (2, 4, 7, 7, 3, 1, 2, 0, 1),
        (1, 3, 11, 10, 2, 7, 2, 3, 1),
        (2, 2, 5, 5, 2, 3, 1, 0, 1),
        (2, 1, 4, 4, 2, 3, 3, 2, 1),
        (2, 6, 7, 6, 6, 3, 1, 1, 3),
        (2, 8, 9, 9, 4, 3, 2, 1, 2),
        (2, 6, 5, 5, 9, 1, 1, 0, 3),
    ];

    fn geometry(case: Case) -> ConvGeometry {
        let (n, c_in, h, w, c_out, k, stride, pad, groups) = case;
        ConvGeometry::grouped(
            &[n, c_in, h, w],
            &[c_out, c_in / groups, k, k],
            stride,
            pad,
            groups,
        )
        .expect("geometry")
    }

    fn kernel_len(g: &ConvGeometry) -> usize {
        g.c_out * g.group_patch_len()
    }

    #[test]
    fn forward_matches_the_definition() {
        for case in CASES {
            let g = geometry(case);
            let x = values(g.n * g.in_plane(), 1);
            let kernel = values(kernel_len(&g), 2);
            let fast = forward(&g, &x, &kernel);
            let slow = naive_forward(&g, &x, &kernel);
            for (a, b) in fast.iter().zip(&slow) {
                assert!((a - b).abs() < 1e-4, "{g:?}: {a} vs {b}");
            }
        }
    }

    /// The gradients are the adjoints of the forward map: for any output gradient `r`,
    /// `⟨r, conv(x, W)⟩ = ⟨grad_input(r), x⟩ = ⟨grad_kernel(r), W⟩`.
    #[test]
    fn gradients_are_the_adjoints_of_the_forward_pass() {
        for case in CASES {
            let g = geometry(case);
            let x = values(g.n * g.in_plane(), 3);
            let kernel = values(kernel_len(&g), 4);
            let r = values(g.n * g.out_plane(), 5);
            let y = naive_forward(&g, &x, &kernel);
            let lhs = dot(&r, &y);
            let via_input = dot(&grad_input(&g, &r, &kernel), &x);
            let via_kernel = dot(&grad_kernel(&g, &x, &r), &kernel);
            assert!((lhs - via_input).abs() < 1e-3 * lhs.abs().max(1.0), "{g:?}");
            assert!(
                (lhs - via_kernel).abs() < 1e-3 * lhs.abs().max(1.0),
                "{g:?}"
            );
        }
    }

    #[test]
    fn mismatched_shapes_are_refused() {
        assert!(ConvGeometry::grouped(&[1, 3, 8, 8], &[4, 2, 3, 3], 1, 1, 1).is_err());
        assert!(ConvGeometry::grouped(&[1, 3, 2, 2], &[4, 3, 5, 5], 1, 0, 1).is_err());
        assert!(ConvGeometry::grouped(&[3, 8, 8], &[4, 3, 3, 3], 1, 1, 1).is_err());
        assert!(ConvGeometry::grouped(&[1, 6, 8, 8], &[4, 3, 3, 3], 1, 1, 3).is_err());
        assert!(ConvGeometry::grouped(&[1, 6, 8, 8], &[6, 3, 3, 3], 1, 1, 3).is_err());
        assert!(ConvGeometry::grouped(&[1, 6, 8, 8], &[6, 2, 3, 3], 1, 1, 3).is_ok());
    }
}
