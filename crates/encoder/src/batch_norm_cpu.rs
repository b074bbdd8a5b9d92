//! Kernels of the training-mode batch norm (`batch_norm.rs`) on `[N, C, H·W]` f32 slices:
//! per-channel statistics, the normalisation with its affine map and activation in one pass,
//! and the input gradient through the batch statistics in two passes per channel. Channels run
//! in parallel; within a channel the `N` rows of `H·W` values are contiguous.

use rayon::prelude::*;

/// The activation applied after the affine map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// None.
    Identity,
    /// `max(0, x)`.
    Relu,
    /// `min(max(0, x), 6)`.
    Relu6,
}

impl Activation {
    /// Whether the gradient passes at an output value `y` (1 inside the linear range).
    fn passes(self, y: f32) -> bool {
        match self {
            Activation::Identity => true,
            Activation::Relu => y > 0.0,
            Activation::Relu6 => y > 0.0 && y < 6.0,
        }
    }
}

/// The shape `[n, c, hw]` of a batch-norm input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims {
    /// Batch.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Values per channel and image (`H·W`).
    pub hw: usize,
}

impl Dims {
    /// Values per channel over the batch.
    pub fn per_channel(&self) -> usize {
        self.n * self.hw
    }

    /// The rows of channel `c` (one per image) in a `[n, c, hw]` slice.
    fn rows<'a>(&self, values: &'a [f32], c: usize) -> impl Iterator<Item = &'a [f32]> + 'a {
        let (hw, stride) = (self.hw, self.c * self.hw);
        (0..self.n).map(move |n| &values[n * stride + c * hw..n * stride + (c + 1) * hw])
    }
}

/// `Σ f(v)` over `values` in eight independent lanes, so that the compiler vectorises it (a
/// single running f32 sum is one long dependency chain).
fn lane_sum(values: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0f32; 8];
    let chunks = values.chunks_exact(8);
    let rest: f32 = chunks.remainder().iter().map(|&v| f(v)).sum();
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += f(v);
        }
    }
    lanes.iter().sum::<f32>() + rest
}

/// Per-channel mean and biased variance of `x` (`[n, c, hw]`): per row in f32 lanes, rows
/// added in f64; the variance as the mean squared deviation (two passes, no cancellation).
pub fn statistics(d: Dims, x: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let m = d.per_channel().max(1) as f64;
    (0..d.c)
        .into_par_iter()
        .map(|c| {
            let sum: f64 = d.rows(x, c).map(|row| lane_sum(row, |v| v) as f64).sum();
            let mean = (sum / m) as f32;
            let squares: f64 = d
                .rows(x, c)
                .map(|row| lane_sum(row, |v| (v - mean) * (v - mean)) as f64)
                .sum();
            (mean, (squares / m) as f32)
        })
        .unzip()
}

/// `activation(x·scale[c] + shift[c])` over `[n, c, hw]`.
pub fn normalise(d: Dims, x: &[f32], scale: &[f32], shift: &[f32], act: Activation) -> Vec<f32> {
    match act {
        Activation::Identity => normalise_with(d, x, (scale, shift), |v| v),
        Activation::Relu => normalise_with(d, x, (scale, shift), |v| v.max(0.0)),
        Activation::Relu6 => normalise_with(d, x, (scale, shift), |v| v.clamp(0.0, 6.0)),
    }
}

/// [`normalise`] with the activation as a closure (one copy of the loop per activation).
fn normalise_with(
    d: Dims,
    x: &[f32],
    (scale, shift): (&[f32], &[f32]),
    act: impl Fn(f32) -> f32 + Sync,
) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    out.par_chunks_mut(d.hw.max(1))
        .zip(x.par_chunks(d.hw.max(1)))
        .enumerate()
        .for_each(|(row, (out, x))| {
            let c = row % d.c;
            let (a, b) = (scale[c], shift[c]);
            for (o, &v) in out.iter_mut().zip(x) {
                *o = act(v * a + b);
            }
        });
    out
}

/// What the backward pass needs of the forward one.
#[derive(Debug, Clone)]
pub struct Saved {
    /// The shape.
    pub dims: Dims,
    /// Batch mean per channel.
    pub mean: Vec<f32>,
    /// `1/√(var + ε)` per channel.
    pub inv_std: Vec<f32>,
    /// γ per channel.
    pub gamma: Vec<f32>,
    /// The activation.
    pub activation: Activation,
}

/// Gradients of the loss through the normalisation (batch statistics included): for the input,
/// `dx = γ·σ⁻¹/M · (M·g − Σg − x̂·Σg·x̂)`, and `(dγ, dβ) = (Σg·x̂, Σg)` per channel, where `g` is
/// the output gradient masked by the activation and `x̂ = (x − μ)·σ⁻¹`.
pub fn gradients(s: &Saved, x: &[f32], y: &[f32], grad: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    match s.activation {
        // One copy of the loops per activation, its test inlined.
        Activation::Identity => gradients_with(s, (x, y, grad), |y| Activation::Identity.passes(y)),
        Activation::Relu => gradients_with(s, (x, y, grad), |y| Activation::Relu.passes(y)),
        Activation::Relu6 => gradients_with(s, (x, y, grad), |y| Activation::Relu6.passes(y)),
    }
}

/// [`gradients`] with the activation's pass-through test as a closure.
fn gradients_with(
    s: &Saved,
    (x, y, grad): (&[f32], &[f32], &[f32]),
    passes: impl Fn(f32) -> bool + Sync,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let d = s.dims;
    let m = d.per_channel().max(1) as f32;
    let masked = |y: f32, g: f32| if passes(y) { g } else { 0.0 };
    // Pass 1, per channel: Σg and Σg·(x − μ), in eight lanes per row, rows added in f64.
    let sums: Vec<(f32, f32)> = (0..d.c)
        .into_par_iter()
        .map(|c| {
            let mean = s.mean[c];
            let (mut sum_g, mut sum_gx) = (0f64, 0f64);
            for ((x, y), g) in d.rows(x, c).zip(d.rows(y, c)).zip(d.rows(grad, c)) {
                let (mut a, mut b) = ([0f32; 8], [0f32; 8]);
                let (mut rest_a, mut rest_b) = (0f32, 0f32);
                let whole = x.len() / 8 * 8;
                for ((x, y), g) in x[..whole]
                    .chunks_exact(8)
                    .zip(y[..whole].chunks_exact(8))
                    .zip(g[..whole].chunks_exact(8))
                {
                    for i in 0..8 {
                        let g = masked(y[i], g[i]);
                        a[i] += g;
                        b[i] += g * (x[i] - mean);
                    }
                }
                for i in whole..x.len() {
                    let g = masked(y[i], g[i]);
                    rest_a += g;
                    rest_b += g * (x[i] - mean);
                }
                sum_g += (a.iter().sum::<f32>() + rest_a) as f64;
                sum_gx += (b.iter().sum::<f32>() + rest_b) as f64;
            }
            (sum_g as f32, sum_gx as f32 * s.inv_std[c])
        })
        .collect();
    // Pass 2, per image row: the input gradient.
    let mut dx = vec![0f32; x.len()];
    dx.par_chunks_mut(d.hw.max(1))
        .enumerate()
        .for_each(|(row, out)| {
            let c = row % d.c;
            let start = row * d.hw;
            let (mean, inv_std) = (s.mean[c], s.inv_std[c]);
            let (sum_g, sum_gx) = sums[c];
            let k = s.gamma[c] * inv_std / m;
            // dx = k·(M·g − Σg − (x − μ)·σ⁻¹·Σg·x̂), as one multiply-add per term.
            let (slope, offset) = (inv_std * sum_gx, sum_g - mean * inv_std * sum_gx);
            let range = start..start + d.hw;
            for (((o, &x), &y), &g) in out
                .iter_mut()
                .zip(&x[range.clone()])
                .zip(&y[range.clone()])
                .zip(&grad[range])
            {
                *o = k * (m * masked(y, g) - offset - x * slope);
            }
        });
    let (d_beta, d_gamma) = sums.into_iter().unzip();
    (dx, d_gamma, d_beta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_are_per_channel_over_batch_and_space() {
        // n = 2, c = 2, hw = 2: channel 0 holds 1, 2 (image 0) and 3, 4 (image 1).
        let d = Dims { n: 2, c: 2, hw: 2 };
        let x = [1.0, 2.0, 10.0, 10.0, 3.0, 4.0, 10.0, 14.0];
        let (mean, var) = statistics(d, &x);
        assert_eq!(mean, vec![2.5, 11.0]);
        assert!(
            (var[0] - 1.25).abs() < 1e-6 && (var[1] - 3.0).abs() < 1e-6,
            "{var:?}"
        );
    }

    #[test]
    fn the_activations_clip_and_mask() {
        let d = Dims { n: 1, c: 1, hw: 4 };
        let x = [-1.0, 0.5, 3.0, 7.0];
        assert_eq!(
            normalise(d, &x, &[2.0], &[0.0], Activation::Relu6),
            vec![0.0, 1.0, 6.0, 6.0]
        );
        assert_eq!(
            normalise(d, &x, &[1.0], &[1.0], Activation::Relu),
            vec![0.0, 1.5, 4.0, 8.0]
        );
        assert!(!Activation::Relu6.passes(6.0) && Activation::Relu6.passes(5.9));
    }

    /// The input gradient equals central differences of `L = Σ w·y` through the statistics.
    #[test]
    fn gradients_match_finite_differences() {
        let d = Dims { n: 3, c: 2, hw: 5 };
        let len = d.n * d.c * d.hw;
        let x: Vec<f32> = (0..len)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0)
            .collect();
        let w: Vec<f32> = (0..len)
            .map(|i| ((i * 13 % 17) as f32 - 8.0) / 5.0)
            .collect();
        let (gamma, beta) = ([1.3f32, -0.7], [0.2f32, 0.4]);
        let eps = 1e-5;
        let forward = |x: &[f32], act: Activation| -> (Vec<f32>, Saved) {
            let (mean, var) = statistics(d, x);
            let inv_std: Vec<f32> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
            let scale: Vec<f32> = (0..d.c).map(|c| gamma[c] * inv_std[c]).collect();
            let shift: Vec<f32> = (0..d.c).map(|c| beta[c] - mean[c] * scale[c]).collect();
            let y = normalise(d, x, &scale, &shift, act);
            let saved = Saved {
                dims: d,
                mean,
                inv_std,
                gamma: gamma.to_vec(),
                activation: act,
            };
            (y, saved)
        };
        for act in [Activation::Identity, Activation::Relu] {
            let (y, saved) = forward(&x, act);
            let (dx, d_gamma, d_beta) = gradients(&saved, &x, &y, &w);
            let loss = |x: &[f32]| -> f64 {
                let (y, _) = forward(x, act);
                y.iter().zip(&w).map(|(a, b)| (a * b) as f64).sum()
            };
            for i in [0, 4, 7, 12, 29] {
                let h = 1e-2;
                let (mut up, mut down) = (x.clone(), x.clone());
                up[i] += h;
                down[i] -= h;
                let numeric = (loss(&up) - loss(&down)) / (2.0 * h as f64);
                assert!(
                    (numeric - dx[i] as f64).abs() < 2e-2,
                    "{act:?} dx[{i}]: {} vs {numeric}",
                    dx[i]
                );
            }
            // dβ = Σ masked w; dγ = Σ masked w·x̂.
            let masked = |c: usize| -> Vec<(f32, f32)> {
                (0..len)
                    .filter(|i| (i / d.hw) % d.c == c && act.passes(y[*i]))
                    .map(|i| (w[i], (x[i] - saved.mean[c]) * saved.inv_std[c]))
                    .collect()
            };
            for c in 0..d.c {
                let b: f32 = masked(c).iter().map(|(w, _)| w).sum();
                let g: f32 = masked(c).iter().map(|(w, xh)| w * xh).sum();
                assert!((d_beta[c] - b).abs() < 1e-4 && (d_gamma[c] - g).abs() < 1e-4);
            }
        }
    }
}
