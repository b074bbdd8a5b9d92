//! Hubness: how unevenly rows appear in each other's `k` nearest neighbours. In high
//! dimensions a few rows ("hubs") can be near almost everything — every query then returns
//! them — while others are nobody's neighbour; the k-occurrence `N_k(x)` (how many rows list
//! `x` among their `k` nearest) then has a long right tail, measured by its skewness.

use crate::AnalysisError;
use natview_core::linalg::Matrix;
use natview_index::exact_neighbours_all;
use serde::Serialize;

/// Rows listed in [`Hubness::top`].
const TOP_HUBS: usize = 10;

/// The k-occurrence distribution of a sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hubness {
    /// Neighbours per row.
    pub k: usize,
    /// Skewness of the k-occurrence (0 for a symmetric spread; above ~3 a long tail of hubs).
    pub skewness: f64,
    /// Share of all neighbour-list entries taken by the 1 % of rows listed most often (1 %
    /// when even).
    pub top_percent_share: f64,
    /// Rows that are in no other row's list.
    pub orphans: usize,
    /// The rows listed most often (matrix row numbers), most first.
    pub top: Vec<Hub>,
}

/// One frequently listed row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Hub {
    /// Row of the matrix (the item's id).
    pub row: usize,
    /// Rows of the sample that list it among their `k` nearest.
    pub occurrences: usize,
}

/// The hubness of `sample` (unit rows), whose row `i` is matrix row `rows[i]`.
pub(super) fn hubness(sample: &Matrix, rows: &[usize], k: usize) -> Result<Hubness, AnalysisError> {
    let k = k.clamp(1, sample.rows.saturating_sub(1).max(1));
    let lists =
        exact_neighbours_all(sample, k).map_err(|e| AnalysisError::BadInput(e.to_string()))?;
    let mut counts = vec![0usize; sample.rows];
    for list in &lists {
        for neighbour in list {
            counts[neighbour.id] += 1;
        }
    }
    let n = counts.len() as f64;
    let mean = counts.iter().sum::<usize>() as f64 / n;
    let (mut m2, mut m3) = (0f64, 0f64);
    for &c in &counts {
        let d = c as f64 - mean;
        m2 += d * d;
        m3 += d * d * d;
    }
    let (m2, m3) = (m2 / n, m3 / n);
    let skewness = if m2 > 0.0 { m3 / m2.powf(1.5) } else { 0.0 };
    let mut order: Vec<usize> = (0..counts.len()).collect();
    order.sort_by(|&a, &b| counts[b].cmp(&counts[a]).then(a.cmp(&b)));
    let top_count = counts.len().div_ceil(100);
    let total: usize = counts.iter().sum();
    let top_percent_share =
        order[..top_count].iter().map(|&i| counts[i]).sum::<usize>() as f64 / total.max(1) as f64;
    Ok(Hubness {
        k,
        skewness,
        top_percent_share,
        orphans: counts.iter().filter(|&&c| c == 0).count(),
        top: order
            .iter()
            .take(TOP_HUBS)
            .map(|&i| Hub {
                row: rows[i],
                occurrences: counts[i],
            })
            .collect(),
    })
}
