//! Test inputs shared by the layout tests (UMAP, t-SNE): clustered points, their exact kNN
//! graph, and a stand-in initial layout.

use super::knn::KnnGraph;
use natview_core::rng::SplitMix64;
use rayon::prelude::*;

/// `clusters × per` points in `dim` dimensions: around well-separated random centres, each
/// cluster a 2-D Gaussian in its own random plane plus a little isotropic noise (so that
/// the neighbourhoods can be kept in 2-D).
pub(crate) fn gaussian_clusters(
    clusters: usize,
    per: usize,
    dim: usize,
    seed: u64,
) -> (Vec<f32>, Vec<usize>) {
    let mut rng = SplitMix64::new(seed);
    let mut rows = Vec::with_capacity(clusters * per * dim);
    let mut labels = Vec::with_capacity(clusters * per);
    for c in 0..clusters {
        let centre: Vec<f64> = (0..dim).map(|_| 10.0 * rng.next_normal()).collect();
        let plane: Vec<f64> = (0..2 * dim).map(|_| rng.next_normal()).collect();
        for _ in 0..per {
            let (a, b) = (rng.next_normal(), rng.next_normal());
            for d in 0..dim {
                let v = centre[d] + a * plane[d] + b * plane[dim + d] + 0.05 * rng.next_normal();
                rows.push(v as f32);
            }
            labels.push(c);
        }
    }
    (rows, labels)
}

/// Brute-force kNN graph of `rows` (`dim` columns).
pub(crate) fn brute_knn(rows: &[f32], dim: usize, k: usize) -> KnnGraph {
    let n = rows.len() / dim;
    let lists: Vec<Vec<(u32, f32)>> = (0..n)
        .into_par_iter()
        .map(|i| {
            let a = &rows[i * dim..(i + 1) * dim];
            let mut d: Vec<(u32, f32)> = (0..n)
                .filter(|&j| j != i)
                .map(|j| {
                    let b = &rows[j * dim..(j + 1) * dim];
                    let s: f32 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
                    (j as u32, s.sqrt())
                })
                .collect();
            d.sort_by(|x, y| x.1.total_cmp(&y.1).then(x.0.cmp(&y.0)));
            d.truncate(k);
            d
        })
        .collect();
    KnnGraph {
        n,
        k,
        indices: lists.iter().flatten().map(|e| e.0).collect(),
        distances: lists.iter().flatten().map(|e| e.1).collect(),
    }
}

/// The first two input columns as the initial layout (any projection will do).
pub(crate) fn first_two(rows: &[f32], dim: usize) -> Vec<[f32; 2]> {
    rows.chunks(dim).map(|r| [r[0], r[1]]).collect()
}
