//! The optimiser: openTSNE's gradient descent with momentum, delta-bar-delta gains and a
//! cap on each point's step. Internally the points are kept sorted along a Z-order curve
//! of the current layout (re-sorted now and then), so that the neighbours the attractive
//! forces visit, and the grid cells the repulsion touches, are mostly close in memory.

use super::affinities::{attractive_forces, SparseP};
use super::exact::exact_repulsion;
use super::fft_repulsion::FftRepulsion;
use super::CHUNK;
use rayon::prelude::*;

/// Smallest gain of the delta-bar-delta update.
const MIN_GAIN: f64 = 0.01;
/// Longest step a point may take in one iteration (openTSNE's `max_step_norm`).
const MAX_STEP: f64 = 5.0;
/// Guards the division by the normalisation `Z`.
const EPSILON: f64 = f64::EPSILON;
/// Iterations between two re-sortings of the points (four times as often before the
/// first of them, while the layout unfolds).
const REORDER_EVERY: usize = 100;

/// The optimiser's state between iterations, the points in their internal order.
pub(super) struct Descent {
    /// The joint probabilities, rows and columns in the internal order.
    p: SparseP,
    pos: Vec<[f64; 2]>,
    /// `pos` in single precision, for the attractive forces (half the memory traffic).
    pos32: Vec<[f32; 2]>,
    update: Vec<[f64; 2]>,
    gains: Vec<[f64; 2]>,
    attraction: Vec<[f64; 2]>,
    repulsion: Vec<[f64; 2]>,
    /// The caller's point number of each internal position.
    original: Vec<u32>,
    fft: Option<FftRepulsion>,
    iteration: usize,
}

impl Descent {
    /// The optimiser starting from `pos` (the caller's order), with the repulsion by FFT
    /// interpolation if `fft`, else exact.
    pub(super) fn new(p: SparseP, pos: Vec<[f64; 2]>, fft: bool) -> Self {
        let n = pos.len();
        Self {
            p,
            pos32: to_f32(&pos),
            pos,
            update: vec![[0.0; 2]; n],
            gains: vec![[1.0; 2]; n],
            attraction: vec![[0.0; 2]; n],
            repulsion: vec![[0.0; 2]; n],
            original: (0..n as u32).collect(),
            fft: fft.then(FftRepulsion::new),
            iteration: 0,
        }
    }

    /// The current layout in the caller's order.
    pub(super) fn layout(&self) -> Vec<[f32; 2]> {
        let mut out = vec![[0.0f32; 2]; self.pos.len()];
        for (&o, p) in self.original.iter().zip(&self.pos) {
            out[o as usize] = [p[0] as f32, p[1] as f32];
        }
        out
    }

    /// Whether every coordinate is finite.
    pub(super) fn is_finite(&self) -> bool {
        self.pos
            .iter()
            .all(|p| p[0].is_finite() && p[1].is_finite())
    }

    /// One iteration of gradient descent (openTSNE's `gradient_descent`).
    pub(super) fn step(&mut self, exaggeration: f64, learning_rate: f64, momentum: f64) {
        let it = self.iteration;
        if it.is_multiple_of(REORDER_EVERY)
            || (it < REORDER_EVERY && it.is_multiple_of(REORDER_EVERY / 4))
        {
            self.reorder();
        }
        self.iteration += 1;
        let z = match &mut self.fft {
            Some(fft) => fft.repulsion(&self.pos, &mut self.repulsion),
            None => exact_repulsion(&self.pos, &mut self.repulsion),
        };
        attractive_forces(&self.p, &self.pos32, exaggeration, &mut self.attraction);
        let inv_z = 1.0 / (z + EPSILON);
        let sums: Vec<[f64; 2]> = self
            .pos
            .par_chunks_mut(CHUNK)
            .zip(self.update.par_chunks_mut(CHUNK))
            .zip(self.gains.par_chunks_mut(CHUNK))
            .zip(self.attraction.par_chunks(CHUNK))
            .zip(self.repulsion.par_chunks(CHUNK))
            .map(|((((pos, update), gains), attr), rep)| {
                let mut sum = [0.0; 2];
                for i in 0..pos.len() {
                    let (u, g) = (&mut update[i], &mut gains[i]);
                    for d in 0..2 {
                        let grad = attr[i][d] - rep[i][d] * inv_z;
                        if sign(u[d]) != sign(grad) {
                            g[d] += 0.2;
                        } else {
                            g[d] = g[d] * 0.8 + MIN_GAIN;
                        }
                        u[d] = momentum * u[d] - learning_rate * g[d] * grad;
                    }
                    let norm = (u[0] * u[0] + u[1] * u[1]).sqrt();
                    if norm > MAX_STEP {
                        u[0] *= MAX_STEP / norm;
                        u[1] *= MAX_STEP / norm;
                    }
                    pos[i][0] += u[0];
                    pos[i][1] += u[1];
                    sum[0] += pos[i][0];
                    sum[1] += pos[i][1];
                }
                sum
            })
            .collect();
        let n = self.pos.len() as f64;
        let mut mean = [0.0; 2];
        for s in &sums {
            mean[0] += s[0];
            mean[1] += s[1];
        }
        mean = [mean[0] / n, mean[1] / n];
        self.pos
            .par_chunks_mut(CHUNK)
            .zip(self.pos32.par_chunks_mut(CHUNK))
            .for_each(|(chunk, chunk32)| {
                for (p, p32) in chunk.iter_mut().zip(chunk32) {
                    p[0] -= mean[0];
                    p[1] -= mean[1];
                    *p32 = [p[0] as f32, p[1] as f32];
                }
            });
    }

    /// Re-sorts the points (and every per-point array, and the rows and columns of P)
    /// along a Z-order curve of the current layout.
    fn reorder(&mut self) {
        let n = self.pos.len();
        let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
        for p in &self.pos {
            for d in 0..2 {
                lo[d] = lo[d].min(p[d]);
                hi[d] = hi[d].max(p[d]);
            }
        }
        let scale = |d: usize| {
            let extent = hi[d] - lo[d];
            if extent > 0.0 {
                65535.0 / extent
            } else {
                0.0
            }
        };
        let (sx, sy) = (scale(0), scale(1));
        let mut keyed: Vec<(u32, u32)> = self
            .pos
            .par_iter()
            .enumerate()
            .map(|(i, p)| {
                let x = ((p[0] - lo[0]) * sx) as u32;
                let y = ((p[1] - lo[1]) * sy) as u32;
                (spread_bits(x) | (spread_bits(y) << 1), i as u32)
            })
            .collect();
        // The keys are unique (ties broken by position), so the order is too.
        keyed.par_sort_unstable();
        let order: Vec<u32> = keyed.into_iter().map(|(_, i)| i).collect();
        let mut new_place = vec![0u32; n];
        for (r, &o) in order.iter().enumerate() {
            new_place[o as usize] = r as u32;
        }
        let permute = |v: &[[f64; 2]]| -> Vec<[f64; 2]> {
            order.par_iter().map(|&o| v[o as usize]).collect()
        };
        self.pos = permute(&self.pos);
        self.pos32 = to_f32(&self.pos);
        self.update = permute(&self.update);
        self.gains = permute(&self.gains);
        self.original = order.iter().map(|&o| self.original[o as usize]).collect();

        let p = &self.p;
        let row = |o: u32| p.indptr[o as usize]..p.indptr[o as usize + 1];
        let mut indptr = Vec::with_capacity(n + 1);
        indptr.push(0usize);
        for &o in &order {
            let len = row(o).len();
            indptr.push(indptr[indptr.len() - 1] + len);
        }
        let mut cols = Vec::with_capacity(p.cols.len());
        let mut vals = Vec::with_capacity(p.vals.len());
        for &o in &order {
            cols.extend(p.cols[row(o)].iter().map(|&c| new_place[c as usize]));
            vals.extend_from_slice(&p.vals[row(o)]);
        }
        self.p = SparseP { indptr, cols, vals };
    }
}

/// The 16 low bits of `v` moved to the even bit positions.
fn spread_bits(v: u32) -> u32 {
    let mut v = v & 0xFFFF;
    v = (v | (v << 8)) & 0x00FF_00FF;
    v = (v | (v << 4)) & 0x0F0F_0F0F;
    v = (v | (v << 2)) & 0x3333_3333;
    (v | (v << 1)) & 0x5555_5555
}

fn to_f32(pos: &[[f64; 2]]) -> Vec<[f32; 2]> {
    pos.iter().map(|p| [p[0] as f32, p[1] as f32]).collect()
}

/// −1, 0 or 1 (NumPy's `sign`).
fn sign(v: f64) -> i8 {
    if v > 0.0 {
        1
    } else if v < 0.0 {
        -1
    } else {
        0
    }
}
