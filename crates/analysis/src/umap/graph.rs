//! UMAP's fuzzy simplicial set: per-point smooth kNN distances (`ρ`, `σ`), directed membership
//! strengths, the fuzzy union `a + b − ab` and the pruning of edges too weak to be sampled.

use super::super::knn::KnnGraph;
use rayon::prelude::*;

/// Iterations of the binary search for each `σ` (umap-learn's `n_iter`).
const SMOOTH_ITERATIONS: usize = 64;
/// Tolerance of that search on the membership sum.
const SMOOTH_K_TOLERANCE: f64 = 1e-5;
/// Smallest `σ`, as a fraction of the mean distance.
const MIN_K_DIST_SCALE: f64 = 1e-3;
/// Rows handled by one parallel task.
const ROW_BLOCK: usize = 2048;

/// A symmetric sparse graph in compressed rows: row `i`'s edges are
/// `cols[row_ptr[i]..row_ptr[i + 1]]`, ascending, with `weights` alongside.
#[derive(Debug, Clone)]
pub(super) struct Graph {
    /// Number of vertices.
    pub n: usize,
    /// Row starts, `n + 1` long.
    pub row_ptr: Vec<usize>,
    /// Column (other vertex) of every stored edge.
    pub cols: Vec<u32>,
    /// Weight of every stored edge, in `(0, 1]`.
    pub weights: Vec<f32>,
}

impl Graph {
    /// Row `i`'s columns and weights.
    pub fn row(&self, i: usize) -> (&[u32], &[f32]) {
        let range = self.row_ptr[i]..self.row_ptr[i + 1];
        (&self.cols[range.clone()], &self.weights[range])
    }
}

/// `ρ` (distance to the nearest non-identical neighbour) and `σ` (the bandwidth that makes the
/// memberships of the row sum to `log2(m + 1)`) of one row of `m` distances, with umap-learn's
/// `local_connectivity = 1`. The point itself counts as umap-learn's zero-distance first
/// neighbour, which is why the target and the means use `m + 1`.
fn smooth_row(distances: &[f32], mean_all: f64) -> (f32, f32) {
    let m = distances.len();
    let target = ((m + 1) as f64).log2();
    let rho = distances
        .iter()
        .filter(|&&d| d > 0.0)
        .fold(f64::INFINITY, |best, &d| best.min(f64::from(d)));
    let rho = if rho.is_finite() { rho } else { 0.0 };
    let (mut lo, mut hi, mut mid) = (0.0f64, f64::INFINITY, 1.0f64);
    for _ in 0..SMOOTH_ITERATIONS {
        let psum: f64 = distances
            .iter()
            .map(|&d| {
                let excess = f64::from(d) - rho;
                if excess > 0.0 {
                    (-excess / mid).exp()
                } else {
                    1.0
                }
            })
            .sum();
        if (psum - target).abs() < SMOOTH_K_TOLERANCE {
            break;
        }
        if psum > target {
            hi = mid;
            mid = (lo + hi) / 2.0;
        } else {
            lo = mid;
            mid = if hi.is_infinite() {
                mid * 2.0
            } else {
                (lo + hi) / 2.0
            };
        }
    }
    let floor = if rho > 0.0 {
        let mean_row = distances.iter().map(|&d| f64::from(d)).sum::<f64>() / (m + 1) as f64;
        MIN_K_DIST_SCALE * mean_row
    } else {
        MIN_K_DIST_SCALE * mean_all
    };
    (rho as f32, mid.max(floor) as f32)
}

/// Membership strength of an edge at distance `d` from a point with `ρ`, `σ`.
fn membership(d: f32, rho: f32, sigma: f32) -> f32 {
    let excess = d - rho;
    if excess <= 0.0 || sigma <= 0.0 {
        1.0
    } else {
        (-excess / sigma).exp()
    }
}

/// Splits `data` into consecutive pieces for row blocks of `ROW_BLOCK` rows, following
/// `row_ptr`.
fn split_by_blocks<'a, T>(mut data: &'a mut [T], row_ptr: &[usize]) -> Vec<&'a mut [T]> {
    let n = row_ptr.len() - 1;
    let mut pieces = Vec::with_capacity(n.div_ceil(ROW_BLOCK));
    for start in (0..n).step_by(ROW_BLOCK) {
        let end = (start + ROW_BLOCK).min(n);
        let (piece, rest) = data.split_at_mut(row_ptr[end] - row_ptr[start]);
        pieces.push(piece);
        data = rest;
    }
    pieces
}

/// The fuzzy simplicial set of the first `m` neighbours of every row of `knn`, symmetrised
/// with the fuzzy union and without edges below `max weight / prune_epochs` (as umap-learn
/// prunes before optimising). The knn graph must have been validated (indices `< n`,
/// distances finite and non-negative).
pub(super) fn fuzzy_graph(knn: &KnnGraph, m: usize, prune_epochs: usize) -> Graph {
    let n = knn.n;
    let total: f64 = knn
        .distances
        .par_chunks(knn.k * ROW_BLOCK)
        .map(|block| {
            block
                .chunks(knn.k)
                .map(|row| row[..m].iter().map(|&d| f64::from(d)).sum::<f64>())
                .sum::<f64>()
        })
        .collect::<Vec<f64>>()
        .iter()
        .sum();
    let mean_all = total / (n * (m + 1)) as f64;

    // Directed memberships, every row sorted by column, duplicates merged (kept once with
    // the larger strength) and self-edges given strength 0 (skipped below).
    let mut dir_cols = vec![0u32; n * m];
    let mut dir_vals = vec![0f32; n * m];
    dir_cols
        .par_chunks_mut(m * ROW_BLOCK)
        .zip(dir_vals.par_chunks_mut(m * ROW_BLOCK))
        .enumerate()
        .for_each(|(block, (cols, vals))| {
            let mut row_buf: Vec<(u32, f32)> = Vec::with_capacity(m);
            for (r, (c_out, v_out)) in cols.chunks_mut(m).zip(vals.chunks_mut(m)).enumerate() {
                let i = block * ROW_BLOCK + r;
                let (ids, dists) = knn.neighbours(i);
                let (rho, sigma) = smooth_row(&dists[..m], mean_all);
                row_buf.clear();
                row_buf.extend(ids[..m].iter().zip(&dists[..m]).map(|(&j, &d)| {
                    let v = if j as usize == i {
                        0.0
                    } else {
                        membership(d, rho, sigma)
                    };
                    (j, v)
                }));
                row_buf.sort_unstable_by_key(|&(j, _)| j);
                for t in 1..m {
                    if row_buf[t].0 == row_buf[t - 1].0 {
                        let v = row_buf[t].1.max(row_buf[t - 1].1);
                        row_buf[t].1 = v;
                        row_buf[t - 1].1 = 0.0;
                    }
                }
                for (t, &(j, v)) in row_buf.iter().enumerate() {
                    c_out[t] = j;
                    v_out[t] = v;
                }
            }
        });

    // The transpose, in compressed rows (sources ascending within a row).
    let mut t_ptr = vec![0usize; n + 1];
    for (&j, &v) in dir_cols.iter().zip(&dir_vals) {
        if v > 0.0 {
            t_ptr[j as usize + 1] += 1;
        }
    }
    for i in 0..n {
        t_ptr[i + 1] += t_ptr[i];
    }
    let mut t_cols = vec![0u32; t_ptr[n]];
    let mut t_vals = vec![0f32; t_ptr[n]];
    let mut fill = t_ptr[..n].to_vec();
    for (e, (&j, &v)) in dir_cols.iter().zip(&dir_vals).enumerate() {
        if v > 0.0 {
            let slot = &mut fill[j as usize];
            t_cols[*slot] = (e / m) as u32;
            t_vals[*slot] = v;
            *slot += 1;
        }
    }
    drop(fill);

    // Walks the union of row i of the directed graph and of its transpose, handing every
    // (column, a + b − ab) to `visit`.
    let union_row = |i: usize, visit: &mut dyn FnMut(u32, f32)| {
        let (ac, av) = (&dir_cols[i * m..(i + 1) * m], &dir_vals[i * m..(i + 1) * m]);
        let (tc, tv) = (
            &t_cols[t_ptr[i]..t_ptr[i + 1]],
            &t_vals[t_ptr[i]..t_ptr[i + 1]],
        );
        let (mut p, mut q) = (0, 0);
        loop {
            while p < m && av[p] <= 0.0 {
                p += 1;
            }
            match (p < m, q < tc.len()) {
                (false, false) => break,
                (true, false) => {
                    visit(ac[p], av[p]);
                    p += 1;
                }
                (false, true) => {
                    visit(tc[q], tv[q]);
                    q += 1;
                }
                (true, true) => {
                    if ac[p] < tc[q] {
                        visit(ac[p], av[p]);
                        p += 1;
                    } else if tc[q] < ac[p] {
                        visit(tc[q], tv[q]);
                        q += 1;
                    } else {
                        let (a, b) = (av[p], tv[q]);
                        visit(ac[p], a + b - a * b);
                        p += 1;
                        q += 1;
                    }
                }
            }
        }
    };

    let blocks: Vec<usize> = (0..n).step_by(ROW_BLOCK).collect();
    let max_weight = blocks
        .par_iter()
        .map(|&start| {
            let mut best = 0f32;
            for i in start..(start + ROW_BLOCK).min(n) {
                union_row(i, &mut |_, w| best = best.max(w));
            }
            best
        })
        .reduce(|| 0f32, f32::max);
    let threshold = max_weight / prune_epochs.max(1) as f32;
    let keep = |w: f32| w > 0.0 && w >= threshold;

    let mut row_ptr = vec![0usize; n + 1];
    row_ptr[1..]
        .par_chunks_mut(ROW_BLOCK)
        .enumerate()
        .for_each(|(block, counts)| {
            for (r, count) in counts.iter_mut().enumerate() {
                let mut c = 0;
                union_row(block * ROW_BLOCK + r, &mut |_, w| c += usize::from(keep(w)));
                *count = c;
            }
        });
    for i in 0..n {
        row_ptr[i + 1] += row_ptr[i];
    }
    let edges = row_ptr[n];
    let mut cols = vec![0u32; edges];
    let mut weights = vec![0f32; edges];
    split_by_blocks(&mut cols, &row_ptr)
        .into_par_iter()
        .zip(split_by_blocks(&mut weights, &row_ptr))
        .enumerate()
        .for_each(|(block, (c_out, w_out))| {
            let mut t = 0;
            for i in block * ROW_BLOCK..((block + 1) * ROW_BLOCK).min(n) {
                union_row(i, &mut |j, w| {
                    if keep(w) {
                        c_out[t] = j;
                        w_out[t] = w;
                        t += 1;
                    }
                });
            }
        });
    Graph {
        n,
        row_ptr,
        cols,
        weights,
    }
}

/// Connected components of `graph`: a component number per vertex (numbered by first
/// vertex) and each component's size.
pub(super) fn components(graph: &Graph) -> (Vec<u32>, Vec<usize>) {
    let n = graph.n;
    let mut label = vec![u32::MAX; n];
    let mut sizes = Vec::new();
    let mut stack: Vec<u32> = Vec::new();
    for start in 0..n {
        if label[start] != u32::MAX {
            continue;
        }
        let c = sizes.len() as u32;
        label[start] = c;
        stack.push(start as u32);
        let mut size = 0;
        while let Some(v) = stack.pop() {
            size += 1;
            for &u in graph.row(v as usize).0 {
                if label[u as usize] == u32::MAX {
                    label[u as usize] = c;
                    stack.push(u);
                }
            }
        }
        sizes.push(size);
    }
    (label, sizes)
}
