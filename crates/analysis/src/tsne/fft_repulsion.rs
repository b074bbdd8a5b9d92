//! The repulsive term of t-SNE's gradient by FFT-accelerated interpolation (Linderman et
//! al.'s FIt-SNE, with openTSNE's grid choices): the bounding square of the layout is cut
//! into boxes with 3 × 3 Lagrange interpolation nodes each; every point spreads four
//! charges (1, x, y, x² + y²) onto its box's nodes; the squared Cauchy kernel between all
//! pairs of nodes is applied as a 2-D convolution by FFT (zero-padded to twice the grid);
//! the potentials are interpolated back to the points. One kernel gives both the
//! repulsion and the normalisation `Z`, because `q = (1 + d²) q²`.

use rayon::prelude::*;
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};
use std::sync::Arc;

/// Interpolation nodes per box and dimension (openTSNE's `n_interpolation_points`).
const NODES: usize = 3;
/// Fewest boxes per dimension (openTSNE's `min_num_intervals`).
const MIN_BOXES: usize = 50;
/// Most boxes per dimension (openTSNE's cap).
const MAX_BOXES: usize = 1000;
/// Layout units per box (openTSNE's `ints_in_interval`).
const UNITS_PER_BOX: f64 = 1.0;

/// Precision of the FFT grid.
type Real = f32;
type Cplx = Complex<Real>;

/// The FFT plans and grids, kept between iterations (re-planned only when the grid size
/// changes).
pub(super) struct FftRepulsion {
    planner: FftPlanner<Real>,
    /// Padded grid side (`2 × NODES × boxes`) the plans and buffers are for.
    size: usize,
    forward: Option<Arc<dyn Fft<Real>>>,
    inverse: Option<Arc<dyn Fft<Real>>>,
    /// The kernel's spectrum (scaled by the inverse FFT's `1 / size²`).
    kernel: Vec<Cplx>,
    /// Charges 1 (real) and x (imaginary), then their potentials (`m` rows of `size`).
    charges_a: Vec<Cplx>,
    /// Charges y (real) and x² + y² (imaginary), then their potentials.
    charges_b: Vec<Cplx>,
    /// What the kernel spectrum is for: grid nodes a side and their spacing's bits.
    kernel_for: Option<(usize, u64)>,
    /// Transposed work grid (for the kernel's spectrum).
    work: Vec<Cplx>,
    /// The convolved charges, column by column (`size` columns of `m` rows).
    columns_a: Vec<Cplx>,
    columns_b: Vec<Cplx>,
    /// Point numbers sorted by box row, and where each box row starts.
    order: Vec<u32>,
    row_start: Vec<usize>,
}

/// The grid geometry of one evaluation.
#[derive(Clone, Copy)]
struct Geometry {
    lo: f64,
    width: f64,
    boxes: usize,
    centre: f64,
}

impl Geometry {
    /// The box of coordinate `v` and the Lagrange weights of its three nodes.
    fn locate(&self, v: f64) -> (usize, [f64; NODES]) {
        let t = (v - self.lo) / self.width;
        let b = (t.max(0.0) as usize).min(self.boxes - 1);
        let u = t - b as f64;
        // Nodes at 1/6, 1/2, 5/6 of the box.
        let (a0, a1, a2) = (u - 1.0 / 6.0, u - 0.5, u - 5.0 / 6.0);
        (b, [a1 * a2 * 4.5, -a0 * a2 * 9.0, a0 * a1 * 4.5])
    }
}

impl Default for FftRepulsion {
    fn default() -> Self {
        Self::new()
    }
}

impl FftRepulsion {
    /// Empty state; grids are allocated on first use.
    pub(super) fn new() -> Self {
        Self {
            planner: FftPlanner::new(),
            size: 0,
            forward: None,
            inverse: None,
            kernel: Vec::new(),
            charges_a: Vec::new(),
            charges_b: Vec::new(),
            kernel_for: None,
            work: Vec::new(),
            columns_a: Vec::new(),
            columns_b: Vec::new(),
            order: Vec::new(),
            row_start: Vec::new(),
        }
    }

    /// Writes the unnormalised repulsion `Σ_j q_ij² (y_i − y_j)` on every point into `out`
    /// and returns `Z = Σ_{i≠j} q_ij`, both approximated by interpolation.
    pub(super) fn repulsion(&mut self, pos: &[[f64; 2]], out: &mut [[f64; 2]]) -> f64 {
        let n = pos.len();
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for &[x, y] in pos {
            lo = lo.min(x.min(y));
            hi = hi.max(x.max(y));
        }
        let mut extent = hi - lo;
        // Also catches NaN.
        if extent.is_nan() || extent < 1e-12 {
            extent = 1e-12;
        }
        // openTSNE's box count (at least 50, else one per layout unit, rounded up to a fast
        // FFT size). Where openTSNE then stretches the boxes over the extent, here boxes of
        // exactly one unit are centred on the layout, so the kernel's spectrum only changes
        // when the box count does (openTSNE's boxes are at most that wide).
        let wanted = (extent / UNITS_PER_BOX).ceil() as usize;
        let (boxes, width) = if wanted <= MIN_BOXES {
            (MIN_BOXES, extent / MIN_BOXES as f64)
        } else {
            let boxes = smooth_at_least(wanted).min(MAX_BOXES);
            (boxes, UNITS_PER_BOX.max(extent / boxes as f64))
        };
        let centre = lo + 0.5 * extent;
        let geo = Geometry {
            lo: centre - 0.5 * width * boxes as f64,
            width,
            boxes,
            centre,
        };
        let m = NODES * boxes;
        self.prepare(m);
        let size = self.size;
        let spacing = geo.width / NODES as f64;
        if self.kernel_for != Some((m, spacing.to_bits())) {
            self.fill_kernel(m, spacing);
            self.kernel_for = Some((m, spacing.to_bits()));
        }

        // Points grouped by box row (a stable counting sort), so that each box row spreads
        // onto its own three grid rows: disjoint writes, the same order on any thread count.
        self.row_start.clear();
        self.row_start.resize(boxes + 1, 0);
        for &[_, y] in pos {
            self.row_start[geo.locate(y).0 + 1] += 1;
        }
        for r in 0..boxes {
            self.row_start[r + 1] += self.row_start[r];
        }
        self.order.resize(n, 0);
        {
            let mut fill = self.row_start.clone();
            for (i, &[_, y]) in pos.iter().enumerate() {
                let slot = &mut fill[geo.locate(y).0];
                self.order[*slot] = i as u32;
                *slot += 1;
            }
        }
        let (order, row_start) = (&self.order, &self.row_start);
        let band = NODES * size;
        self.charges_a
            .par_chunks_mut(band)
            .zip(self.charges_b.par_chunks_mut(band))
            .enumerate()
            .for_each(|(r, (ga, gb))| {
                ga.fill(Cplx::default());
                gb.fill(Cplx::default());
                for &i in &order[row_start[r]..row_start[r + 1]] {
                    let [x, y] = pos[i as usize];
                    let (bx, wx) = geo.locate(x);
                    let (_, wy) = geo.locate(y);
                    let (cx, cy) = (x - geo.centre, y - geo.centre);
                    let q = [cx, cy, cx * cx + cy * cy];
                    for (a, &wa) in wy.iter().enumerate() {
                        for (b, &wb) in wx.iter().enumerate() {
                            let w = wa * wb;
                            let idx = a * size + NODES * bx + b;
                            ga[idx] += Cplx::new(w as Real, (w * q[0]) as Real);
                            gb[idx] += Cplx::new((w * q[1]) as Real, (w * q[2]) as Real);
                        }
                    }
                }
            });

        self.convolve(m);

        let (ga, gb) = (&self.charges_a, &self.charges_b);
        let total = super::chunked_sum(out, |i, o, z| {
            let [x, y] = pos[i];
            let (bx, wx) = geo.locate(x);
            let (by, wy) = geo.locate(y);
            let mut phi = [0.0f64; 4];
            for (a, &wa) in wy.iter().enumerate() {
                let row = (NODES * by + a) * size + NODES * bx;
                for (b, &wb) in wx.iter().enumerate() {
                    let w = wa * wb;
                    let (va, vb) = (ga[row + b], gb[row + b]);
                    phi[0] += w * f64::from(va.re);
                    phi[1] += w * f64::from(va.im);
                    phi[2] += w * f64::from(vb.re);
                    phi[3] += w * f64::from(vb.im);
                }
            }
            let (cx, cy) = (x - geo.centre, y - geo.centre);
            *z += (1.0 + cx * cx + cy * cy) * phi[0] - 2.0 * (cx * phi[1] + cy * phi[2]) + phi[3];
            *o = [cx * phi[0] - phi[1], cy * phi[0] - phi[2]];
        });
        total - n as f64
    }

    /// Plans and allocates for `m` nodes a side (a padded grid side of `2m`).
    fn prepare(&mut self, m: usize) {
        let size = 2 * m;
        if self.size == size {
            return;
        }
        self.size = size;
        self.kernel_for = None;
        self.forward = Some(self.planner.plan_fft_forward(size));
        self.inverse = Some(self.planner.plan_fft_inverse(size));
        for (grid, len) in [
            (&mut self.kernel, size * size),
            (&mut self.work, size * size),
            (&mut self.charges_a, m * size),
            (&mut self.charges_b, m * size),
            (&mut self.columns_a, m * size),
            (&mut self.columns_b, m * size),
        ] {
            grid.clear();
            grid.shrink_to_fit();
            grid.resize(len, Cplx::default());
        }
    }

    /// The spectrum of the squared Cauchy kernel between nodes `spacing` apart, embedded
    /// circulantly in the padded grid (offsets `−(m−1)..m` in each dimension).
    fn fill_kernel(&mut self, m: usize, spacing: f64) {
        let size = self.size;
        let h2 = spacing * spacing;
        self.kernel
            .par_chunks_mut(size)
            .enumerate()
            .for_each(|(r, row)| {
                let di = if r < m {
                    Some(r)
                } else if r > size - m {
                    Some(size - r)
                } else {
                    None
                };
                for (c, v) in row.iter_mut().enumerate() {
                    let dj = if c < m {
                        Some(c)
                    } else if c > size - m {
                        Some(size - c)
                    } else {
                        None
                    };
                    *v = match (di, dj) {
                        (Some(di), Some(dj)) => {
                            let d2 = h2 * (di * di + dj * dj) as f64;
                            let q = 1.0 / (1.0 + d2);
                            Cplx::new((q * q) as Real, 0.0)
                        }
                        _ => Cplx::default(),
                    };
                }
            });
        let Some(fwd) = self.forward.clone() else {
            return;
        };
        rows_fft(fwd.as_ref(), &mut self.kernel, size);
        transpose_rows(&self.kernel, size, size, &mut self.work);
        rows_fft(fwd.as_ref(), &mut self.work, size);
        // The kernel is symmetric under swapping the axes, so its transposed spectrum is
        // its spectrum.
        std::mem::swap(&mut self.kernel, &mut self.work);
        let scale = 1.0 / (size * size) as Real;
        self.kernel.par_iter_mut().for_each(|v| *v *= scale);
    }

    /// Convolves both charge grids (`m × m` in the top left of `m` rows of `size`) with
    /// the kernel, in place. Rows by FFT in place; then columns in tiles of [`TILE`], each
    /// gathered, transformed, multiplied by the kernel's spectrum and transformed back while
    /// it is in cache; then rows back.
    fn convolve(&mut self, m: usize) {
        let size = self.size;
        let (Some(fwd), Some(inv)) = (self.forward.clone(), self.inverse.clone()) else {
            return;
        };
        rows_fft(fwd.as_ref(), &mut self.charges_a, size);
        rows_fft(fwd.as_ref(), &mut self.charges_b, size);
        let (ga, gb, kernel) = (&self.charges_a, &self.charges_b, &self.kernel);
        let scratch_len = fwd
            .get_inplace_scratch_len()
            .max(inv.get_inplace_scratch_len());
        self.columns_a
            .par_chunks_mut(TILE * m)
            .zip(self.columns_b.par_chunks_mut(TILE * m))
            .enumerate()
            .for_each_init(
                || {
                    (
                        vec![Cplx::default(); TILE * size],
                        vec![Cplx::default(); scratch_len],
                    )
                },
                |(tile, scratch), (t, (ca, cb))| {
                    let c0 = t * TILE;
                    let width = ca.len() / m;
                    let tile = &mut tile[..width * size];
                    for (grid, cols) in [(ga, ca), (gb, cb)] {
                        for r in 0..m {
                            let from = &grid[r * size + c0..r * size + c0 + width];
                            for (dc, &v) in from.iter().enumerate() {
                                tile[dc * size + r] = v;
                            }
                        }
                        for dc in 0..width {
                            tile[dc * size + m..(dc + 1) * size].fill(Cplx::default());
                        }
                        fwd.process_with_scratch(tile, scratch);
                        let spectrum = &kernel[c0 * size..(c0 + width) * size];
                        for (v, k) in tile.iter_mut().zip(spectrum) {
                            *v *= *k;
                        }
                        inv.process_with_scratch(tile, scratch);
                        for dc in 0..width {
                            cols[dc * m..(dc + 1) * m]
                                .copy_from_slice(&tile[dc * size..dc * size + m]);
                        }
                    }
                },
            );
        untranspose_rows(&self.columns_a, m, size, &mut self.charges_a);
        untranspose_rows(&self.columns_b, m, size, &mut self.charges_b);
        rows_fft(inv.as_ref(), &mut self.charges_a, size);
        rows_fft(inv.as_ref(), &mut self.charges_b, size);
    }
}

/// The smallest number ≥ `x` (and ≥ 1) with no prime factor above 7 (fast FFT sizes).
fn smooth_at_least(x: usize) -> usize {
    let mut v = x.max(1);
    loop {
        let mut r = v;
        for p in [2, 3, 5, 7] {
            while r.is_multiple_of(p) {
                r /= p;
            }
        }
        if r == 1 {
            return v;
        }
        v += 1;
    }
}

/// In-place FFT of every `size`-long row of `data`, rows spread over the threads.
fn rows_fft(fft: &dyn Fft<Real>, data: &mut [Cplx], size: usize) {
    let rows = data.len() / size;
    let per_task = rows.div_ceil(4 * rayon::current_num_threads()).max(1);
    data.par_chunks_mut(per_task * size).for_each(|chunk| {
        let mut scratch = vec![Cplx::default(); fft.get_inplace_scratch_len()];
        fft.process_with_scratch(chunk, &mut scratch);
    });
}

/// Columns per task of the transposes.
const TILE: usize = 16;

/// `out[c][r] = src[r][c]` for the `rows` rows of `src` (each `size` long), `out` being
/// `size × size` with zeros after column `rows`.
fn transpose_rows(src: &[Cplx], rows: usize, size: usize, out: &mut [Cplx]) {
    out.par_chunks_mut(TILE * size)
        .enumerate()
        .for_each(|(t, block)| {
            let c0 = t * TILE;
            let width = block.len() / size;
            for r in 0..rows {
                let from = &src[r * size + c0..r * size + c0 + width];
                for (dc, &v) in from.iter().enumerate() {
                    block[dc * size + r] = v;
                }
            }
            for dc in 0..width {
                block[dc * size + rows..(dc + 1) * size].fill(Cplx::default());
            }
        });
}

/// `out[r][c] = src[c][r]`: `src` holds `size` columns of `rows` entries, `out` `rows` rows
/// of `size`.
fn untranspose_rows(src: &[Cplx], rows: usize, size: usize, out: &mut [Cplx]) {
    out.par_chunks_mut(TILE * size)
        .enumerate()
        .for_each(|(t, block)| {
            let r0 = t * TILE;
            let height = block.len() / size;
            for c in 0..size {
                let from = &src[c * rows + r0..c * rows + r0 + height];
                for (dr, &v) in from.iter().enumerate() {
                    block[dr * size + c] = v;
                }
            }
        });
}
