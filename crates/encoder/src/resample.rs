//! Bicubic resampling of a vision transformer's position grid, as the libraries do it, written
//! as a matrix so the resampled grid is one matrix product (and stays differentiable in
//! training). PyTorch's `F.interpolate(mode="bicubic")` is separable: each axis is resampled
//! with its own weights, so the 2-D matrix is the Kronecker product of two 1-D ones.
//!
//! Two kernels exist in PyTorch and the libraries differ in which they use:
//! - plain bicubic (`antialias=False`): Keys' cubic with A = −0.75 on the four nearest source
//!   samples, indices clamped at the borders (Meta's DINOv2, Hugging Face's CLIP, ViT, SigLIP);
//! - antialiased bicubic (`antialias=True`): PIL's cubic with A = −0.5, widened by the
//!   downscaling factor and normalised (timm's `resample_abs_pos_embed`, Hugging Face's DINOv2).
//!
//! The source position of output sample `i` is `scale · (i + 0.5) − 0.5` with `scale` the
//! input/output size ratio, or the reciprocal of the caller's `scale_factor` when the library
//! passes one (Meta's DINOv2 asks for `(n + 0.1) / N` to avoid a rounding error).

/// How a library resamples a position grid.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum PosResample {
    /// `F.interpolate(size=…, mode="bicubic", antialias=antialias, align_corners=False)`.
    Bicubic {
        /// PyTorch's `antialias` flag.
        antialias: bool,
    },
    /// Meta's DINOv2: `scale_factor=((n + offset) / N)` per axis, no antialiasing.
    BicubicOffset {
        /// The offset added to the output size (0.1 in DINOv2).
        offset: f64,
    },
}

/// The `[out, in]` row-major matrix resampling one axis of `input` samples to `output`.
pub fn axis_matrix(input: usize, output: usize, how: PosResample) -> Vec<f32> {
    let mut m = vec![0f32; output * input];
    if input == 0 || output == 0 {
        return m;
    }
    let ratio = input as f64 / output as f64;
    match how {
        PosResample::Bicubic { antialias: false } => keys_cubic(&mut m, input, output, ratio),
        PosResample::Bicubic { antialias: true } => antialiased(&mut m, input, output, ratio),
        PosResample::BicubicOffset { offset } => {
            let scale_factor = (output as f64 + offset) / input as f64;
            keys_cubic(&mut m, input, output, 1.0 / scale_factor)
        }
    }
    m
}

/// The `[oh·ow, ih·iw]` matrix resampling a row-major `ih × iw` grid to `oh × ow`.
pub fn grid_matrix(from: (usize, usize), to: (usize, usize), how: PosResample) -> Vec<f32> {
    let rows = axis_matrix(from.0, to.0, how);
    let cols = axis_matrix(from.1, to.1, how);
    let (ih, iw) = from;
    let (oh, ow) = to;
    let mut m = vec![0f32; oh * ow * ih * iw];
    for y in 0..oh {
        for x in 0..ow {
            let out = (y * ow + x) * ih * iw;
            for sy in 0..ih {
                let wy = rows[y * ih + sy];
                if wy == 0.0 {
                    continue;
                }
                for sx in 0..iw {
                    m[out + sy * iw + sx] = wy * cols[x * iw + sx];
                }
            }
        }
    }
    m
}

/// PyTorch's `upsample_bicubic2d` weights (A = −0.75) with source scale `scale`.
fn keys_cubic(m: &mut [f32], input: usize, output: usize, scale: f64) {
    const A: f64 = -0.75;
    let near = |x: f64| ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    let far = |x: f64| ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A;
    let last = input as i64 - 1;
    for i in 0..output {
        let real = scale * (i as f64 + 0.5) - 0.5;
        // PyTorch's guard_index_and_lambda: the index may be −1 at the left border.
        let index = (real.floor() as i64).min(last);
        let t = (real - index as f64).clamp(0.0, 1.0);
        let weights = [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)];
        for (k, w) in weights.iter().enumerate() {
            let source = (index - 1 + k as i64).clamp(0, last) as usize;
            m[i * input + source] += *w as f32;
        }
    }
}

/// PyTorch's `_upsample_bicubic2d_aa` weights (PIL's cubic, A = −0.5, support widened by the
/// downscaling factor, normalised to sum 1).
fn antialiased(m: &mut [f32], input: usize, output: usize, scale: f64) {
    const A: f64 = -0.5;
    let filter = |x: f64| {
        let x = x.abs();
        if x < 1.0 {
            ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
        } else if x < 2.0 {
            (((x - 5.0) * x + 8.0) * x - 4.0) * A
        } else {
            0.0
        }
    };
    let support = if scale >= 1.0 { 2.0 * scale } else { 2.0 };
    let invscale = if scale >= 1.0 { 1.0 / scale } else { 1.0 };
    for i in 0..output {
        let center = scale * (i as f64 + 0.5);
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).clamp(0, input as i64) as usize;
        let weights: Vec<f64> = (xmin..xmax)
            .map(|j| filter((j as f64 - center + 0.5) * invscale))
            .collect();
        let total: f64 = weights.iter().sum();
        for (j, w) in (xmin..xmax).zip(weights) {
            let w = if total != 0.0 { w / total } else { 0.0 };
            m[i * input + j] = w as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_size_is_the_identity_and_rows_sum_to_one() {
        for how in [
            PosResample::Bicubic { antialias: false },
            PosResample::Bicubic { antialias: true },
        ] {
            let m = axis_matrix(5, 5, how);
            for i in 0..5 {
                for j in 0..5 {
                    let expected = if i == j { 1.0 } else { 0.0 };
                    assert!((m[i * 5 + j] - expected).abs() < 1e-6, "{how:?} {i} {j}");
                }
            }
            for (from, to) in [(37, 16), (4, 9), (14, 14), (7, 3)] {
                let m = axis_matrix(from, to, how);
                for row in m.chunks(from) {
                    let sum: f32 = row.iter().sum();
                    assert!((sum - 1.0).abs() < 1e-5, "{how:?} {from}→{to}: {sum}");
                }
            }
        }
    }

    fn resampled(input: &[f32], output: usize, how: PosResample) -> Vec<f32> {
        axis_matrix(input.len(), output, how)
            .chunks(input.len())
            .map(|row| row.iter().zip(input).map(|(w, v)| w * v).sum())
            .collect()
    }

    /// Values PyTorch 2.15 gives for `F.interpolate` of a 1×1×1×n row (align_corners=False):
    /// `arange(4)` to 6 (bicubic) and to 3 (antialiased), and `arange(9)²` with
    /// `scale_factor=(4 + 0.1) / 9` (DINOv2's offset).
    #[test]
    fn ramps_resample_as_pytorch_does() {
        let ramp = [0.0f32, 1.0, 2.0, 3.0];
        let squares: Vec<f32> = (0..9).map(|i| (i * i) as f32).collect();
        for (got, expected) in [
            (
                resampled(&ramp, 6, PosResample::Bicubic { antialias: false }),
                vec![
                    -0.086_805_58,
                    0.40625,
                    1.212_962_7,
                    1.787_037_1,
                    2.59375,
                    3.086_805_8,
                ],
            ),
            (
                resampled(&ramp, 3, PosResample::Bicubic { antialias: true }),
                vec![0.189_931_33, 1.5, 2.810_068_8],
            ),
            (
                resampled(&squares, 4, PosResample::BicubicOffset { offset: 0.1 }),
                vec![0.285_960_3, 7.476_421_4, 24.819_288, 52.579_18],
            ),
        ] {
            for (g, e) in got.iter().zip(&expected) {
                assert!((g - e).abs() < 1e-4, "{got:?} vs {expected:?}");
            }
        }
    }
}
