//! How well a 2-D layout keeps each point's neighbourhood: kNN preservation and
//! trustworthiness (Venna & Kaski), on a seeded sample of query points against all points.

use super::AnalysisError;
use natview_core::linalg::{matmul, Matrix, Operand, Output};
use natview_core::rng::SplitMix64;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Query points measured by default (all of them below this count).
pub const DEFAULT_QUALITY_SAMPLE: usize = 5_000;

/// Neighbourhood preservation of a layout.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LayoutQuality {
    /// Neighbours compared per point.
    pub k: usize,
    /// Query points measured (a seeded sample, or all points).
    pub sampled: usize,
    /// Mean share of each point's `k` nearest in the input space that are among its `k`
    /// nearest in the layout (1 = all kept).
    pub knn_preservation: f64,
    /// Trustworthiness at `k`: 1 minus the normalised rank penalty of the layout's neighbours
    /// that are not neighbours in the input space (1 = no false neighbours).
    pub trustworthiness: f64,
}

/// Measures `layout` (one point per row of `input`) against the rows of `input`, compared by
/// inner product (cosine for unit rows; the rows are what the neighbours are judged in), on
/// `sample` query points drawn with `seed` (all when `sample ≥ n`).
pub fn layout_quality(
    input: &Matrix,
    layout: &[[f32; 2]],
    k: usize,
    sample: usize,
    seed: u64,
) -> Result<LayoutQuality, AnalysisError> {
    let n = input.rows;
    if layout.len() != n {
        return Err(AnalysisError::BadInput(format!(
            "the layout has {} points for {n} rows",
            layout.len()
        )));
    }
    if k == 0 || 3 * k + 1 >= 2 * n {
        return Err(AnalysisError::NotEnoughData(format!(
            "layout quality at k = {k} needs more than {} points, got {n}",
            (3 * k).div_ceil(2)
        )));
    }
    if let Some(row) = layout
        .iter()
        .position(|p| !p[0].is_finite() || !p[1].is_finite())
    {
        return Err(AnalysisError::BadInput(format!(
            "layout point {row} is not finite"
        )));
    }
    let queries = SplitMix64::new(seed).sample_sorted(n, sample.max(1));
    let d = input.dim;
    const CHUNK: usize = 16;
    let per_chunk: Vec<(f64, f64)> = queries
        .par_chunks(CHUNK)
        .map(|chunk| {
            let mut q = Vec::with_capacity(chunk.len() * d);
            for &i in chunk {
                q.extend_from_slice(input.row(i));
            }
            let mut scores = vec![0f32; chunk.len() * n];
            matmul(
                chunk.len(),
                n,
                d,
                Output::rows(&mut scores, n),
                Operand::rows(&q, d),
                Operand::transposed(&input.data, d),
                false,
            );
            let mut sums = (0f64, 0f64);
            let mut low = vec![0f32; n];
            for (row, &i) in scores.chunks_exact(n).zip(chunk) {
                // Higher similarity = nearer; as "distance" use the negated score.
                let high_nearest = nearest(n, k, i, |j| -row[j]);
                let p = layout[i];
                for (l, q) in low.iter_mut().zip(layout) {
                    *l = (q[0] - p[0]).powi(2) + (q[1] - p[1]).powi(2);
                }
                let low_nearest = nearest(n, k, i, |j| low[j]);
                let kept = low_nearest
                    .iter()
                    .filter(|j| high_nearest.contains(j))
                    .count();
                sums.0 += kept as f64 / k as f64;
                for &j in low_nearest.iter().filter(|j| !high_nearest.contains(j)) {
                    // Rank of j among i's neighbours in the input space (1 = nearest).
                    let sj = row[j];
                    let rank = 1 + row
                        .iter()
                        .enumerate()
                        .filter(|&(m, &s)| m != i && (s > sj || (s == sj && m < j)))
                        .count();
                    sums.1 += rank.saturating_sub(k) as f64;
                }
            }
            sums
        })
        .collect();
    let m = queries.len() as f64;
    let (preserved, penalty) = per_chunk
        .iter()
        .fold((0f64, 0f64), |a, b| (a.0 + b.0, a.1 + b.1));
    let (nf, kf) = (n as f64, k as f64);
    Ok(LayoutQuality {
        k,
        sampled: queries.len(),
        knn_preservation: preserved / m,
        trustworthiness: 1.0 - 2.0 / (m * kf * (2.0 * nf - 3.0 * kf - 1.0)) * penalty,
    })
}

/// Each point's share of its nearest neighbours in the input space (`graph`, built on the
/// rows the layout was made from) that are also among as many of its nearest in the layout —
/// where the picture can be trusted (1) and where it lies (0). Points in parallel; the layout's
/// neighbours through `grid`.
pub fn point_faithfulness(
    graph: &crate::knn::KnnGraph,
    layout: &[[f32; 2]],
    grid: &crate::scatter::PointGrid,
) -> Result<Vec<f32>, AnalysisError> {
    if graph.n != layout.len() {
        return Err(AnalysisError::BadInput(format!(
            "the neighbour graph has {} points, the layout {}",
            graph.n,
            layout.len()
        )));
    }
    let k = graph.k;
    Ok((0..graph.n)
        .into_par_iter()
        .map(|i| {
            let high = graph.neighbours(i).0;
            let low = grid.k_nearest(layout, i, k);
            let kept = low.iter().filter(|&&j| high.contains(&(j as u32))).count();
            kept as f32 / k.max(1) as f32
        })
        .collect())
}

/// The `k` points with the smallest `distance` other than `exclude` (ties by index).
fn nearest(n: usize, k: usize, exclude: usize, distance: impl Fn(usize) -> f32) -> Vec<usize> {
    let mut ids: Vec<usize> = (0..n).filter(|&j| j != exclude).collect();
    let order = |a: &usize, b: &usize| distance(*a).total_cmp(&distance(*b)).then(a.cmp(b));
    if ids.len() > k {
        ids.select_nth_unstable_by(k - 1, order);
        ids.truncate(k);
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faithfulness_is_high_where_the_layout_keeps_neighbours_and_low_where_it_shuffles() {
        // Points on a circle (unit rows), laid out along a line by their angle: neighbours are
        // kept (but at the ends, where the circle closes); laid out in a shuffled order they
        // are not.
        let n = 400;
        let angle = |i: usize| i as f32 / n as f32 * std::f32::consts::TAU;
        let rows: Vec<Vec<f32>> = (0..n)
            .map(|i| vec![angle(i).cos(), angle(i).sin()])
            .collect();
        let input = Matrix::from_rows(&rows).expect("rows");
        let graph =
            crate::knn::knn_graph(&input, 10, &mut crate::layout::Unobserved).expect("graph");
        let line: Vec<[f32; 2]> = (0..n).map(|i| [angle(i), 0.0]).collect();
        let kept = point_faithfulness(&graph, &line, &crate::scatter::PointGrid::build(&line))
            .expect("faithfulness");
        assert!(kept[n / 2] == 1.0, "{}", kept[n / 2]);
        let mean = kept.iter().sum::<f32>() / n as f32;
        assert!(mean > 0.9, "{mean}");
        let mut order: Vec<usize> = (0..n).collect();
        SplitMix64::new(3).shuffle(&mut order);
        let shuffled: Vec<[f32; 2]> = order
            .iter()
            .map(|&i| [i as f32, (i * 7 % 13) as f32])
            .collect();
        let kept = point_faithfulness(
            &graph,
            &shuffled,
            &crate::scatter::PointGrid::build(&shuffled),
        )
        .expect("faithfulness");
        let mean = kept.iter().sum::<f32>() / n as f32;
        assert!(mean < 0.2, "{mean}");
        assert!(point_faithfulness(
            &graph,
            &line[1..],
            &crate::scatter::PointGrid::build(&line[1..])
        )
        .is_err());
    }

    fn ring(n: usize) -> (Matrix, Vec<[f32; 2]>) {
        let rows: Vec<Vec<f32>> = (0..n)
            .map(|i| {
                let a = i as f32 / n as f32 * std::f32::consts::TAU;
                vec![a.cos(), a.sin(), 0.0]
            })
            .collect();
        let layout = rows.iter().map(|r| [r[0], r[1]]).collect();
        (Matrix::from_rows(&rows).expect("rows"), layout)
    }

    #[test]
    fn a_layout_that_is_the_input_keeps_every_neighbour() {
        let (input, layout) = ring(200);
        let q = layout_quality(&input, &layout, 10, 1000, 0).expect("quality");
        assert_eq!(q.sampled, 200);
        assert!((q.knn_preservation - 1.0).abs() < 1e-9, "{q:?}");
        assert!((q.trustworthiness - 1.0).abs() < 1e-9, "{q:?}");
    }

    #[test]
    fn a_shuffled_layout_scores_low() {
        let (input, layout) = ring(400);
        let mut shuffled = layout.clone();
        SplitMix64::new(3).shuffle(&mut shuffled);
        let q = layout_quality(&input, &shuffled, 10, 100, 1).expect("quality");
        assert_eq!(q.sampled, 100);
        assert!(q.knn_preservation < 0.15, "{q:?}");
        assert!(q.trustworthiness < 0.65, "{q:?}");
    }

    #[test]
    fn bad_layouts_are_reported() {
        let (input, mut layout) = ring(50);
        assert!(layout_quality(&input, &layout[..49], 10, 50, 0).is_err());
        layout[7][1] = f32::NAN;
        let message = layout_quality(&input, &layout, 10, 50, 0)
            .expect_err("NaN")
            .to_string();
        assert!(message.contains("point 7"), "{message}");
    }
}
