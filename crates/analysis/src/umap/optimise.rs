//! The layout optimisation: umap-learn's stochastic gradient descent on the fuzzy
//! cross-entropy (edge sampling in proportion to weight, negative sampling, gradient clip 4,
//! learning rate decaying linearly to 0), made parallel and reproducible.
//!
//! Every epoch reads the positions of the previous epoch and writes new ones: each point is
//! moved by its own edges only (in row order, its own position updated after every sample
//! as in umap-learn), while the other ends are read from the previous epoch. The pull that
//! umap-learn's `move_other` gives a point through the reverse edge is folded into a doubled
//! attractive step (the graph is symmetric, so the reverse edge is due in the same epochs).
//! Negative samples come from a generator seeded by (seed, epoch, point), and those of one
//! edge are evaluated at the same position (then applied together). Nothing depends on which
//! thread handles which point, so a seed gives the same layout for any thread count.

use super::super::layout::LayoutObserver;
use super::super::AnalysisError;
use super::graph::Graph;
use natview_core::rng::SplitMix64;
use rayon::prelude::*;

/// Points handled by one parallel task.
const CHUNK: usize = 512;
/// Scale of the attractive step: umap-learn pulls a point once through its own edge and once
/// through the reverse edge (`move_other`); here both pulls are one doubled step (measured:
/// as good as two steps, and cheaper).
const ATTRACTION_FACTOR: f32 = 2.0;
/// Negative samples evaluated at one position before it moves.
const MAX_BATCH: usize = 8;
/// Gradient clip, per coordinate (umap-learn's `clip`).
const CLIP: f32 = 4.0;

/// The settings of one optimisation run.
pub(super) struct Schedule {
    /// Curve parameter `a`.
    pub a: f32,
    /// Curve parameter `b`.
    pub b: f32,
    /// Epochs.
    pub epochs: usize,
    /// Negative samples per positive sample.
    pub negative_samples: usize,
    /// Initial learning rate.
    pub learning_rate: f32,
    /// Seed of the negative sampling.
    pub seed: u64,
}

fn clip(v: f32) -> f32 {
    v.clamp(-CLIP, CLIP)
}

/// `x^y` for `x > 0` from `2^(y·log2 x)` with short polynomials: relative error about 1e-6,
/// several times faster than `powf`, and the same bits on every IEEE-754 machine.
fn fast_pow(x: f32, y: f32) -> f32 {
    let x = if x >= f32::MIN_POSITIVE {
        x
    } else {
        f32::MIN_POSITIVE
    };
    let bits = x.to_bits();
    let mut exponent = ((bits >> 23) & 0xff) as i32 - 127;
    let mut m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    if m > std::f32::consts::SQRT_2 {
        m *= 0.5;
        exponent += 1;
    }
    // ln m = 2 atanh t with t = (m − 1)/(m + 1), |t| ≤ 0.172.
    let t = (m - 1.0) / (m + 1.0);
    let t2 = t * t;
    let ln_m = 2.0 * t * (1.0 + t2 * (1.0 / 3.0 + t2 * (0.2 + t2 * (1.0 / 7.0))));
    let log2_x = exponent as f32 + ln_m * std::f32::consts::LOG2_E;
    let e = (y * log2_x).clamp(-126.0, 126.0);
    // 2^e = 2^k · exp(f·ln 2) with k the nearest integer, |f| ≤ 0.5.
    let k = floor_fast(e + 0.5);
    let f = (e - k) * std::f32::consts::LN_2;
    let p = 1.0 + f * (1.0 + f * (0.5 + f * (1.0 / 6.0 + f * (1.0 / 24.0 + f * (1.0 / 120.0)))));
    p * f32::from_bits(((k as i32 + 127) as u32) << 23)
}

/// `floor` for finite values of moderate size, without a call into libm.
fn floor_fast(v: f32) -> f32 {
    let t = v as i32 as f32;
    if t > v {
        t - 1.0
    } else {
        t
    }
}

/// Uniform integer in `0..n` from 64 random bits (multiply-shift, no division).
fn below(rng: &mut SplitMix64, n: usize) -> usize {
    ((u128::from(rng.next_u64()) * n as u128) >> 64) as usize
}

/// The generator for `point`'s negative samples in `epoch`.
fn point_rng(seed: u64, epoch: usize, point: usize) -> SplitMix64 {
    let mut mix = SplitMix64::new(
        seed ^ (epoch as u64).wrapping_mul(0xD1B5_4A32_D192_ED03)
            ^ (point as u64).wrapping_mul(0x8CB9_2BA7_2F3D_8DD7),
    );
    SplitMix64::new(mix.next_u64())
}

/// Optimises `points` in place over the symmetric fuzzy graph `graph`.
pub(super) fn optimise(
    graph: &Graph,
    points: &mut Vec<[f32; 2]>,
    schedule: &Schedule,
    observer: &mut dyn LayoutObserver,
) -> Result<(), AnalysisError> {
    let n = graph.n;
    let max_weight = graph.weights.iter().cloned().fold(0.0f32, f32::max);
    if n == 0 || max_weight.is_nan() || max_weight <= 0.0 || schedule.epochs == 0 {
        return Ok(());
    }
    // Sampling rate of every edge: sampled once per `max_weight / w` epochs.
    let rates: Vec<f32> = graph.weights.par_iter().map(|&w| w / max_weight).collect();
    let (a, b) = (schedule.a, schedule.b);
    let epochs = schedule.epochs;
    let per_edge = schedule.negative_samples;
    let mut next = points.clone();
    for epoch in 0..epochs {
        // umap-learn's schedule: no edge is due in epoch 0; epoch n uses 1 − (n − 1)/N.
        let alpha = schedule.learning_rate * (1.0 - epoch.saturating_sub(1) as f32 / epochs as f32);
        let step_attract = ATTRACTION_FACTOR * alpha;
        let (now, before) = (epoch as f32, epoch.saturating_sub(1) as f32);
        let current: &[[f32; 2]] = points;
        next.par_chunks_mut(CHUNK).enumerate().for_each(|(c, out)| {
            // Scratch for one point: the other ends of its due edges, then its negative
            // samples, all loaded before any arithmetic so the loads overlap.
            let mut due: Vec<[f32; 2]> = Vec::new();
            let mut negatives: Vec<[f32; 2]> = Vec::new();
            for (t, slot) in out.iter_mut().enumerate() {
                let i = c * CHUNK + t;
                let mut cur = current[i];
                let range = graph.row_ptr[i]..graph.row_ptr[i + 1];
                due.clear();
                for (&j, &r) in graph.cols[range.clone()].iter().zip(&rates[range]) {
                    // Sampled when the count of samples due, ⌊epoch·r⌋, goes up.
                    if (now * r) as u32 > (before * r) as u32 {
                        due.push(current[j as usize]);
                    }
                }
                if due.is_empty() {
                    *slot = cur;
                    continue;
                }
                let mut rng = point_rng(schedule.seed, epoch, i);
                negatives.clear();
                for _ in 0..due.len() * per_edge {
                    let k = below(&mut rng, n);
                    // Sampling the point itself does nothing (as in umap-learn).
                    negatives.push(if k == i { [f32::NAN; 2] } else { current[k] });
                }
                for (e, other) in due.iter().enumerate() {
                    let (dx, dy) = (cur[0] - other[0], cur[1] - other[1]);
                    let d2 = dx * dx + dy * dy;
                    if d2 > 0.0 {
                        let pb = fast_pow(d2, b);
                        let g = -2.0 * a * b * pb / (d2 * (a * pb + 1.0));
                        cur[0] += clip(g * dx) * step_attract;
                        cur[1] += clip(g * dy) * step_attract;
                    }
                    let mine = negatives
                        .get(e * per_edge..(e + 1) * per_edge)
                        .unwrap_or(&[]);
                    for batch in mine.chunks(MAX_BATCH) {
                        // Independent, branch-free work that the compiler vectorises.
                        let mut xs = [cur[0]; MAX_BATCH];
                        let mut ys = [cur[1]; MAX_BATCH];
                        for (t, other) in batch.iter().enumerate() {
                            xs[t] = other[0];
                            ys[t] = other[1];
                        }
                        let mut gx = [0.0f32; MAX_BATCH];
                        let mut gy = [0.0f32; MAX_BATCH];
                        for t in 0..MAX_BATCH {
                            let (dx, dy) = (cur[0] - xs[t], cur[1] - ys[t]);
                            let d2 = dx * dx + dy * dy;
                            let pb = fast_pow(d2, b);
                            let g = 2.0 * b / ((0.001 + d2) * (a * pb + 1.0));
                            // Unused slots (d² = 0) and the point itself (NaN) push nothing.
                            let live = d2 > 0.0;
                            gx[t] = if live { clip(g * dx) } else { 0.0 };
                            gy[t] = if live { clip(g * dy) } else { 0.0 };
                        }
                        cur[0] += gx.iter().sum::<f32>() * alpha;
                        cur[1] += gy.iter().sum::<f32>() * alpha;
                    }
                }
                *slot = cur;
            }
        });
        std::mem::swap(points, &mut next);
        if !observer.progress("optimising", epoch + 1, epochs) {
            return Err(AnalysisError::Cancelled);
        }
        if observer.wants_snapshot() {
            observer.snapshot(points.clone());
        }
    }
    Ok(())
}
