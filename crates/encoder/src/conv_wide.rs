//! Stride-1 convolutions without an im2col matrix ("shifted windows").
//!
//! With the input zero-padded into planes `wp = w + 2·pad` wide, kernel tap `(ky, kx)` reads,
//! for every output pixel, the padded input at a fixed offset `ky·wp + kx` from the pixel's own
//! position on a grid `wp` wide. So the whole convolution is `k²` gemms — tap `t`'s
//! `c_out × c_in` block of the kernel times the padded input shifted by its offset, a strided
//! view of one buffer — summed into an output `wp` wide, whose `wp − w_out` extra columns per row
//! are thrown away. The gradients are the same products transposed. Compared with im2col this
//! writes no `k²`-times-larger column matrix (forward and kernel gradient) and adds none back
//! (input gradient); the price is `wp / w_out` more multiply-adds, so [`worthwhile`] keeps it
//! to wide enough images and enough channels for gemm to run well on `c_in`-long products.

use super::conv_cpu::{ConvGeometry, SCRATCH};
use crate::scratch::with_scratch;
use natview_core::linalg::{matmul, Operand, Output};
use rayon::prelude::*;

/// Input channels below which a tap's product (`c_in` long) is too short for gemm to pay.
const MIN_CHANNELS: usize = 16;

/// Output width below which the thrown-away columns (`2·pad` per row) and the `k²` short
/// products cost more than im2col saves. Measured per layer (3×3, 2 cores, best of 7): at
/// 32×32×32 (batch 128) forward 25 → 19 ms, kernel gradient 30 → 18 ms; at 16×16×64 12 → 11.5
/// and 15 → 12 ms; at 8×8×128 the forward loses (11 → 15 ms), and at 28×28×128 (batch 16)
/// neither wins.
const MIN_WIDTH: usize = 16;

/// Whether `g` is a convolution this module computes: stride 1, one group, a kernel wider
/// than one pixel.
pub fn applies(g: &ConvGeometry) -> bool {
    g.stride == 1 && g.groups == 1 && g.k > 1
}

/// Whether this module should compute `g` rather than im2col (see [`MIN_CHANNELS`],
/// [`MIN_WIDTH`]).
pub fn worthwhile(g: &ConvGeometry) -> bool {
    applies(g) && g.c_in >= MIN_CHANNELS && g.w_out >= MIN_WIDTH
}

/// The padded layout of one image.
#[derive(Clone, Copy)]
struct Padded {
    /// Padded width.
    wp: usize,
    /// Values per padded channel plane.
    plane: usize,
    /// Values per output row set on the wide grid: `h_out · wp`.
    wide: usize,
    /// Values of the whole padded image, with `k − 1` spare zeros at the end that the last
    /// tap's window reaches into.
    len: usize,
}

impl Padded {
    fn of(g: &ConvGeometry) -> Self {
        let wp = g.w + 2 * g.pad;
        let plane = (g.h + 2 * g.pad) * wp;
        Self {
            wp,
            plane,
            wide: g.h_out * wp,
            len: g.c_in * plane + g.k - 1,
        }
    }

    /// Where tap `t` (`ky·k + kx`) starts reading, relative to the output pixel's position.
    fn offset(&self, g: &ConvGeometry, t: usize) -> usize {
        (t / g.k) * self.wp + t % g.k
    }
}

/// The kernel `[c_out, c_in, k, k]` as `k²` contiguous `c_out × c_in` blocks, one per tap.
fn taps_first(g: &ConvGeometry, kernel: &[f32]) -> Vec<f32> {
    let taps = g.k * g.k;
    let mut out = vec![0f32; kernel.len()];
    for (oc, filter) in kernel.chunks_exact(g.c_in * taps).enumerate() {
        for (c, channel) in filter.chunks_exact(taps).enumerate() {
            for (t, value) in channel.iter().enumerate() {
                out[(t * g.c_out + oc) * g.c_in + c] = *value;
            }
        }
    }
    out
}

/// The inverse of [`taps_first`].
fn taps_last(g: &ConvGeometry, blocks: &[f32]) -> Vec<f32> {
    let taps = g.k * g.k;
    let mut out = vec![0f32; blocks.len()];
    for (t, block) in blocks.chunks_exact(g.c_out * g.c_in).enumerate() {
        for (i, value) in block.iter().enumerate() {
            out[i * taps + t] = *value;
        }
    }
    out
}

/// Writes one image into `padded` (every value, borders and spare tail as zeros).
fn pad_image(g: &ConvGeometry, p: Padded, image: &[f32], padded: &mut [f32]) {
    let (body, tail) = padded.split_at_mut(g.c_in * p.plane);
    tail.fill(0.0);
    for (dst, src) in body
        .chunks_exact_mut(p.plane)
        .zip(image.chunks_exact(g.h * g.w))
    {
        let (top, rest) = dst.split_at_mut(g.pad * p.wp);
        top.fill(0.0);
        let (middle, bottom) = rest.split_at_mut(g.h * p.wp);
        bottom.fill(0.0);
        for (row, src_row) in middle.chunks_exact_mut(p.wp).zip(src.chunks_exact(g.w)) {
            row[..g.pad].fill(0.0);
            row[g.pad..g.pad + g.w].copy_from_slice(src_row);
            row[g.pad + g.w..].fill(0.0);
        }
    }
}

/// Spreads one image's output gradient `[c_out, h_out, w_out]` onto the wide grid, with zeros
/// in the extra columns (so that they add nothing in the gradients).
fn widen(g: &ConvGeometry, p: Padded, grad: &[f32], wide: &mut [f32]) {
    for (dst, src) in wide.chunks_exact_mut(p.wp).zip(grad.chunks_exact(g.w_out)) {
        dst[..g.w_out].copy_from_slice(src);
        dst[g.w_out..].fill(0.0);
    }
}

/// The forward pass: `[n, c_out, h_out, w_out]`, as `conv_cpu::forward`.
pub fn forward(g: &ConvGeometry, input: &[f32], kernel: &[f32]) -> Vec<f32> {
    let p = Padded::of(g);
    let taps = taps_first(g, kernel);
    let block = g.c_out * g.c_in;
    let out_plane = g.c_out * g.h_out * g.w_out;
    let mut out = vec![0f32; g.n * out_plane];
    out.par_chunks_mut(out_plane.max(1))
        .zip(input.par_chunks((g.c_in * g.h * g.w).max(1)))
        .for_each(|(out, image)| {
            with_scratch(&SCRATCH, p.len + g.c_out * p.wide, |scratch| {
                let (padded, wide) = scratch.split_at_mut(p.len);
                pad_image(g, p, image, padded);
                for t in 0..g.k * g.k {
                    matmul(
                        g.c_out,
                        p.wide,
                        g.c_in,
                        Output::rows(wide, p.wide),
                        Operand::rows(&taps[t * block..], g.c_in),
                        Operand::rows(&padded[p.offset(g, t)..], p.plane),
                        t > 0,
                    );
                }
                for (dst, src) in out.chunks_exact_mut(g.w_out).zip(wide.chunks_exact(p.wp)) {
                    dst.copy_from_slice(&src[..g.w_out]);
                }
            })
        });
    out
}

/// The gradient with respect to the input: `[n, c_in, h, w]`, as `conv_cpu::grad_input`.
pub fn grad_input(g: &ConvGeometry, grad_out: &[f32], kernel: &[f32]) -> Vec<f32> {
    let p = Padded::of(g);
    let taps = taps_first(g, kernel);
    let block = g.c_out * g.c_in;
    let (in_plane, out_plane) = (g.c_in * g.h * g.w, g.c_out * g.h_out * g.w_out);
    let mut grad_in = vec![0f32; g.n * in_plane];
    grad_in
        .par_chunks_mut(in_plane.max(1))
        .zip(grad_out.par_chunks(out_plane.max(1)))
        .for_each(|(grad_image, grad)| {
            with_scratch(&SCRATCH, p.len + g.c_out * p.wide, |scratch| {
                let (padded, wide) = scratch.split_at_mut(p.len);
                widen(g, p, grad, wide);
                padded.fill(0.0);
                for t in 0..g.k * g.k {
                    matmul(
                        g.c_in,
                        p.wide,
                        g.c_out,
                        Output::rows(&mut padded[p.offset(g, t)..], p.plane),
                        Operand::transposed(&taps[t * block..], g.c_in),
                        Operand::rows(wide, p.wide),
                        true,
                    );
                }
                for (dst, src) in grad_image
                    .chunks_exact_mut(g.h * g.w)
                    .zip(padded.chunks_exact(p.plane))
                {
                    for (dst_row, src_row) in dst
                        .chunks_exact_mut(g.w)
                        .zip(src[g.pad * p.wp..].chunks_exact(p.wp))
                    {
                        dst_row.copy_from_slice(&src_row[g.pad..g.pad + g.w]);
                    }
                }
            })
        });
    grad_in
}

/// The gradient with respect to the kernel: `[c_out, c_in, k, k]` summed over the batch, as
/// `conv_cpu::grad_kernel`.
pub fn grad_kernel(g: &ConvGeometry, input: &[f32], grad_out: &[f32]) -> Vec<f32> {
    let p = Padded::of(g);
    let block = g.c_out * g.c_in;
    let size = block * g.k * g.k;
    let (in_plane, out_plane) = (g.c_in * g.h * g.w, g.c_out * g.h_out * g.w_out);
    let per_task = g.n.div_ceil(rayon::current_num_threads().max(1)).max(1);
    let images: Vec<usize> = (0..g.n).collect();
    let blocks = images
        .par_chunks(per_task)
        .map(|batch| {
            let mut partial = vec![0f32; size];
            with_scratch(&SCRATCH, p.len + g.c_out * p.wide, |scratch| {
                let (padded, wide) = scratch.split_at_mut(p.len);
                for &i in batch {
                    pad_image(g, p, &input[i * in_plane..(i + 1) * in_plane], padded);
                    widen(g, p, &grad_out[i * out_plane..(i + 1) * out_plane], wide);
                    for t in 0..g.k * g.k {
                        matmul(
                            g.c_out,
                            g.c_in,
                            p.wide,
                            Output::rows(&mut partial[t * block..], g.c_in),
                            Operand::rows(wide, p.wide),
                            Operand::transposed(&padded[p.offset(g, t)..], p.plane),
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
        );
    taps_last(g, &blocks)
}

#[cfg(test)]
mod tests {
    use super::super::conv_cpu;
    use super::*;
    use crate::test_support::uniform as values;

    fn close(a: &[f32], b: &[f32], what: &str, g: &ConvGeometry) {
        assert_eq!(a.len(), b.len(), "{what} {g:?}");
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-3, "{what} {g:?}: {x} vs {y}");
        }
    }

    /// Every stride-1 case, small enough that the im2col path is the reference: odd and even
    /// sizes, no padding, a 5×5 kernel, a single image, more output than input channels.
    #[test]
    fn matches_the_im2col_path_in_all_three_passes() {
        // n, c_in, h, w, c_out, k, pad
        let cases = [
            (2, 3, 9, 7, 4, 3, 1),
            (3, 5, 6, 6, 2, 3, 0),
            (1, 4, 8, 11, 6, 5, 2),
            (2, 2, 5, 5, 3, 3, 2),
            (2, 17, 10, 9, 16, 3, 1),
        ];
        for (n, c_in, h, w, c_out, k, pad) in cases {
            let g = ConvGeometry::grouped(&[n, c_in, h, w], &[c_out, c_in, k, k], 1, pad, 1)
                .expect("geometry");
            assert!(applies(&g));
            let x = values(n * c_in * h * w, 1);
            let kernel = values(c_out * c_in * k * k, 2);
            let r = values(n * c_out * g.h_out * g.w_out, 3);
            close(
                &forward(&g, &x, &kernel),
                &conv_cpu::im2col_forward(&g, &x, &kernel),
                "forward",
                &g,
            );
            close(
                &grad_input(&g, &r, &kernel),
                &conv_cpu::im2col_grad_input(&g, &r, &kernel),
                "grad_input",
                &g,
            );
            close(
                &grad_kernel(&g, &x, &r),
                &conv_cpu::im2col_grad_kernel(&g, &x, &r),
                "grad_kernel",
                &g,
            );
        }
    }

    #[test]
    fn the_tap_layouts_are_inverse() {
        let g = ConvGeometry::grouped(&[1, 3, 5, 5], &[4, 3, 3, 3], 1, 1, 1).expect("geometry");
        let kernel = values(4 * 3 * 9, 7);
        assert_eq!(taps_last(&g, &taps_first(&g, &kernel)), kernel);
    }
}
