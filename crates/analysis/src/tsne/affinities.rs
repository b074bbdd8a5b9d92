//! t-SNE's input affinities: a Gaussian per row whose bandwidth is searched so that the
//! row's conditional distribution over its nearest neighbours has the wanted perplexity,
//! symmetrised into a joint distribution stored as compressed sparse rows. Also the
//! attractive forces, which that sparse matrix alone determines.

use super::super::knn::KnnGraph;
use super::super::layout::LayoutObserver;
use super::super::AnalysisError;
use super::CHUNK;
use rayon::prelude::*;

/// Largest number of bisection steps of the bandwidth search (as openTSNE).
const MAX_SEARCH_STEPS: usize = 200;
/// The search stops when the row's entropy is this close to `ln(perplexity)` (nats).
const ENTROPY_TOLERANCE: f64 = 1e-8;
/// Rows per step of the affinity phase between two progress reports.
const PROGRESS_ROWS: usize = 16_384;

/// The symmetric joint probabilities `p_ij` as compressed sparse rows (each row's columns
/// ascending); the values sum to 1 over the whole matrix.
#[derive(Debug, Clone)]
pub(super) struct SparseP {
    /// Row `i`'s entries are at `indptr[i]..indptr[i + 1]`.
    pub indptr: Vec<usize>,
    /// Column of every entry.
    pub cols: Vec<u32>,
    /// Value of every entry.
    pub vals: Vec<f32>,
}

/// Fills `out` with the conditional probabilities `p_{j|i}` of one row from its neighbours'
/// Euclidean `distances`, the Gaussian's precision found by bisection so that the
/// distribution's perplexity is `perplexity`. Returns the precision found (of the squared
/// distances, `exp(-τ d² / 2)`).
pub(super) fn row_conditional(distances: &[f32], perplexity: f64, out: &mut [f64]) -> f64 {
    let target = perplexity.ln();
    // Shifting the squared distances by the smallest one leaves the normalised
    // distribution unchanged and keeps the largest term at exp(0) = 1 (no underflow).
    let nearest = distances
        .iter()
        .map(|&d| f64::from(d) * f64::from(d))
        .fold(f64::INFINITY, f64::min);
    let shifted = |d: f32| f64::from(d) * f64::from(d) - nearest;
    let mut tau = 1.0f64;
    // The precision is positive: bisection towards 0 halves it.
    let mut lower = 0.0f64;
    let mut upper = f64::INFINITY;
    let mut total = 1.0;
    for _ in 0..MAX_SEARCH_STEPS {
        total = 0.0;
        let (mut m1, mut m2) = (0.0, 0.0);
        for (o, &d) in out.iter_mut().zip(distances) {
            let d2 = shifted(d);
            let e = -0.5 * tau * d2;
            // Below −700 exp underflows (through libm's slow error path); the weight is 0.
            let w = if e > -700.0 { e.exp() } else { 0.0 };
            *o = w;
            total += w;
            m1 += w * d2;
            m2 += w * d2 * d2;
        }
        let (mean, var) = (m1 / total, (m2 / total - (m1 / total).powi(2)).max(0.0));
        let entropy = total.ln() + 0.5 * tau * mean;
        let diff = entropy - target;
        if diff.abs() <= ENTROPY_TOLERANCE {
            break;
        }
        // The entropy falls with the precision: dH/dτ = −τ Var(d²) / 4. A Newton step,
        // kept inside the bracket found so far (else bisection, as openTSNE).
        if diff > 0.0 {
            lower = tau;
        } else {
            upper = tau;
        }
        let newton = tau + 4.0 * diff / (tau * var);
        tau = if newton.is_finite() && newton > lower && newton < upper {
            newton
        } else if diff > 0.0 {
            if upper.is_finite() {
                0.5 * (tau + upper)
            } else {
                tau * 2.0
            }
        } else {
            0.5 * (tau + lower)
        };
    }
    for o in out.iter_mut() {
        *o /= total;
    }
    tau
}

/// The joint probabilities `(p_{j|i} + p_{i|j}) / 2n` from the first `k_used` neighbours of
/// every row of `knn` (already validated: indices in range, no self, finite distances).
pub(super) fn joint_probabilities(
    knn: &KnnGraph,
    k_used: usize,
    perplexity: f64,
    observer: &mut dyn LayoutObserver,
) -> Result<SparseP, AnalysisError> {
    let n = knn.n;
    let k = k_used;
    let mut conditional = vec![0.0f64; n * k];
    let steps = n.div_ceil(PROGRESS_ROWS);
    for (step, block) in conditional.chunks_mut(PROGRESS_ROWS * k).enumerate() {
        if !observer.progress("affinities", step, steps + 1) {
            return Err(AnalysisError::Cancelled);
        }
        let first = step * PROGRESS_ROWS;
        block.par_chunks_mut(k).enumerate().for_each(|(r, out)| {
            let (_, distances) = knn.neighbours(first + r);
            row_conditional(&distances[..k], perplexity, out);
        });
    }
    if !observer.progress("affinities", steps, steps + 1) {
        return Err(AnalysisError::Cancelled);
    }

    // The transpose: for every row i, the rows j that have i among their neighbours, in
    // ascending j (filled in row order, so deterministic).
    let mut in_ptr = vec![0usize; n + 1];
    for i in 0..n {
        for &j in &knn.neighbours(i).0[..k] {
            in_ptr[j as usize + 1] += 1;
        }
    }
    for i in 0..n {
        in_ptr[i + 1] += in_ptr[i];
    }
    let mut fill = in_ptr.clone();
    let mut in_src = vec![0u32; n * k];
    let mut in_val = vec![0.0f64; n * k];
    for i in 0..n {
        let ids = &knn.neighbours(i).0[..k];
        for (&j, &p) in ids.iter().zip(&conditional[i * k..(i + 1) * k]) {
            let slot = &mut fill[j as usize];
            in_src[*slot] = i as u32;
            in_val[*slot] = p;
            *slot += 1;
        }
    }
    drop(fill);

    // Merge each row's own neighbours with its transposed entries.
    let scale = 1.0 / (2.0 * n as f64);
    let blocks: Vec<(Vec<u32>, Vec<f32>, Vec<usize>)> = (0..n.div_ceil(CHUNK))
        .into_par_iter()
        .map(|b| {
            let rows = b * CHUNK..((b + 1) * CHUNK).min(n);
            let mut cols = Vec::with_capacity(rows.len() * k * 3 / 2);
            let mut vals = Vec::with_capacity(rows.len() * k * 3 / 2);
            let mut lens = Vec::with_capacity(rows.len());
            let mut own: Vec<(u32, f64)> = Vec::with_capacity(k);
            for i in rows {
                own.clear();
                let ids = &knn.neighbours(i).0[..k];
                own.extend(
                    ids.iter()
                        .copied()
                        .zip(conditional[i * k..].iter().copied()),
                );
                own.sort_unstable_by_key(|&(j, _)| j);
                let incoming = in_ptr[i]..in_ptr[i + 1];
                let (src, val) = (&in_src[incoming.clone()], &in_val[incoming]);
                let before = cols.len();
                let (mut a, mut t) = (0, 0);
                while a < own.len() || t < src.len() {
                    let ja = own.get(a).map_or(u32::MAX, |e| e.0);
                    let jt = src.get(t).copied().unwrap_or(u32::MAX);
                    let j = ja.min(jt);
                    let mut p = 0.0;
                    while a < own.len() && own[a].0 == j {
                        p += own[a].1;
                        a += 1;
                    }
                    while t < src.len() && src[t] == j {
                        p += val[t];
                        t += 1;
                    }
                    cols.push(j);
                    vals.push((p * scale) as f32);
                }
                lens.push(cols.len() - before);
            }
            (cols, vals, lens)
        })
        .collect();
    drop(conditional);
    drop(in_src);
    drop(in_val);

    let nnz = blocks.iter().map(|b| b.0.len()).sum();
    let mut indptr = Vec::with_capacity(n + 1);
    indptr.push(0usize);
    let mut cols = Vec::with_capacity(nnz);
    let mut vals = Vec::with_capacity(nnz);
    for (c, v, lens) in blocks {
        cols.extend_from_slice(&c);
        vals.extend_from_slice(&v);
        for len in lens {
            let last = indptr[indptr.len() - 1];
            indptr.push(last + len);
        }
    }
    Ok(SparseP { indptr, cols, vals })
}

/// Writes the attractive force on every point, `scale · Σ_j p_ij q_ij (y_i − y_j)` with
/// `q_ij = 1 / (1 + |y_i − y_j|²)`, into `out` (single precision per row: the positions
/// are read as `f32` to halve the memory traffic of this, the costliest loop).
pub(super) fn attractive_forces(p: &SparseP, pos: &[[f32; 2]], scale: f64, out: &mut [[f64; 2]]) {
    out.par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(c, chunk)| {
            for (r, o) in chunk.iter_mut().enumerate() {
                let i = c * CHUNK + r;
                let [xi, yi] = pos[i];
                let (mut gx, mut gy) = (0.0f32, 0.0f32);
                let range = p.indptr[i]..p.indptr[i + 1];
                for (&j, &pij) in p.cols[range.clone()].iter().zip(&p.vals[range]) {
                    let [xj, yj] = pos[j as usize];
                    let (dx, dy) = (xi - xj, yi - yj);
                    let w = pij / (1.0 + dx * dx + dy * dy);
                    gx += w * dx;
                    gy += w * dy;
                }
                *o = [scale * f64::from(gx), scale * f64::from(gy)];
            }
        });
}
