//! Queues about listings: views that do not belong with the rest of their listing, and pairs
//! of listings the model can hardly tell apart. Both work from each listing's sum of unit
//! vectors `S`: a view's mean cosine to the other views is `(v·S − 1)/(n − 1)`, a listing's
//! mean within-listing cosine `(|S|² − n)/(n(n − 1))`, two listings' mean cross cosine
//! `S_a·S_b/(n_a n_b)`.

use super::{LayoutObserver, ReviewInput, ReviewKind, ReviewPair, ReviewQueue};
use crate::knn::knn_graph;
use crate::AnalysisError;
use natview_core::linalg::{dot, l2_normalise, Matrix};
use rayon::prelude::*;

/// Per listing: its rows and the sum of their vectors.
struct Listings {
    rows: Vec<Vec<usize>>,
    sums: Vec<Vec<f32>>,
}

fn listings(input: &ReviewInput<'_>) -> Listings {
    let count = input.listing.iter().max().map_or(0, |m| m + 1);
    let dim = input.matrix.dim;
    let mut rows = vec![Vec::new(); count];
    for (i, &l) in input.listing.iter().enumerate() {
        rows[l].push(i);
    }
    let sums = rows
        .par_iter()
        .map(|members: &Vec<usize>| {
            let mut sum = vec![0f32; dim];
            for &i in members {
                for (s, v) in sum.iter_mut().zip(input.matrix.row(i)) {
                    *s += v;
                }
            }
            sum
        })
        .collect();
    Listings { rows, sums }
}

/// Views of listings with 3+ views ranked by how much less similar they are to the rest of
/// their listing than its other views are (lowest first), each paired with the listing's most
/// typical view.
pub fn listing_outliers(input: &ReviewInput<'_>) -> Result<ReviewQueue, AnalysisError> {
    let all = listings(input);
    let mut pairs: Vec<ReviewPair> = all
        .rows
        .par_iter()
        .zip(&all.sums)
        .filter(|(members, _)| members.len() >= 3)
        .flat_map_iter(|(members, sum)| {
            let n = members.len() as f32;
            let mean_to_rest: Vec<f32> = members
                .iter()
                .map(|&i| (dot(input.matrix.row(i), sum) - 1.0) / (n - 1.0))
                .collect();
            let total: f32 = mean_to_rest.iter().sum();
            let typical = members[argmax(&mean_to_rest)];
            members
                .iter()
                .zip(&mean_to_rest)
                .filter(|&(&i, _)| i != typical)
                .map(|(&i, &own)| {
                    let others = (total - own) / (n - 1.0);
                    ReviewPair {
                        a: i,
                        b: typical,
                        similarity: dot(input.matrix.row(i), input.matrix.row(typical)),
                        score: own - others,
                        cluster: None,
                        why: format!(
                            "mean cosine to the {} other views of its listing {own:.3}, theirs {others:.3}",
                            members.len() - 1
                        ),
                    }
                })
                .collect::<Vec<_>>()
        })
        .collect();
    pairs.sort_by(|x, y| x.score.total_cmp(&y.score).then(x.a.cmp(&y.a)));
    let listings_looked_at = all.rows.iter().filter(|m| m.len() >= 3).count();
    Ok(ReviewQueue {
        kind: ReviewKind::ListingOutliers,
        summary: if listings_looked_at == 0 {
            "no listing has 3 or more views: outliers need a listing to stand out from".into()
        } else {
            format!(
                "views of {listings_looked_at} listing(s) with 3+ views, least like the rest of their listing first"
            )
        },
        pairs,
        clusters: Vec::new(),
        histogram: None,
    })
}

/// Nearest listings looked at per listing.
const LISTING_NEIGHBOURS: usize = 5;

/// Listing pairs (among each listing's [`LISTING_NEIGHBOURS`] nearest by mean vector) ranked
/// by their mean cross cosine minus the mean of their two within-listing cosines (highest
/// first: as similar between as within). Each is shown as its most similar cross pair of views.
pub fn confusable_listings(
    input: &ReviewInput<'_>,
    observer: &mut dyn LayoutObserver,
) -> Result<ReviewQueue, AnalysisError> {
    let all = listings(input);
    let multi: Vec<usize> = (0..all.rows.len())
        .filter(|&l| all.rows[l].len() >= 2)
        .collect();
    if multi.len() < 2 {
        return Ok(ReviewQueue {
            kind: ReviewKind::ConfusableListings,
            pairs: Vec::new(),
            clusters: Vec::new(),
            histogram: None,
            summary: "fewer than two listings with 2+ views: nothing to confuse".into(),
        });
    }
    let intra = |l: usize| {
        let n = all.rows[l].len() as f32;
        (dot(&all.sums[l], &all.sums[l]) - n) / (n * (n - 1.0))
    };
    let centroids: Vec<Vec<f32>> = multi
        .iter()
        .map(|&l| {
            let mut c = all.sums[l].clone();
            l2_normalise(&mut c);
            c
        })
        .collect();
    let centroids = Matrix::from_rows(&centroids)
        .ok_or_else(|| AnalysisError::BadInput("listing means of unequal length".into()))?;
    let k = LISTING_NEIGHBOURS.min(multi.len() - 1);
    let graph = knn_graph(&centroids, k, observer)?;
    let mut seen = std::collections::HashSet::new();
    let mut pairs: Vec<ReviewPair> = Vec::new();
    for x in 0..multi.len() {
        for &y in graph.neighbours(x).0 {
            let (p, q) = (multi[x], multi[y as usize]);
            if !seen.insert((p.min(q), p.max(q))) {
                continue;
            }
            let (np, nq) = (all.rows[p].len() as f32, all.rows[q].len() as f32);
            let inter = dot(&all.sums[p], &all.sums[q]) / (np * nq);
            let within = 0.5 * (intra(p) + intra(q));
            let (a, b, similarity) = closest_cross_pair(input.matrix, &all.rows[p], &all.rows[q]);
            pairs.push(ReviewPair {
                a,
                b,
                similarity,
                score: inter - within,
                cluster: None,
                why: format!(
                    "listings' mean cosine between {inter:.3}, within {within:.3} (closest views {similarity:.3})"
                ),
            });
        }
    }
    pairs.sort_by(|x, y| y.score.total_cmp(&x.score).then(x.a.cmp(&y.a)));
    Ok(ReviewQueue {
        kind: ReviewKind::ConfusableListings,
        summary: format!(
            "{} listing pair(s) among each listing's {k} nearest, most confusable first",
            pairs.len()
        ),
        pairs,
        clusters: Vec::new(),
        histogram: None,
    })
}

/// The most similar pair of views, one from each listing (its rows, a's first).
fn closest_cross_pair(matrix: &Matrix, a: &[usize], b: &[usize]) -> (usize, usize, f32) {
    let mut best = (a[0], b[0], f32::NEG_INFINITY);
    for &i in a {
        for &j in b {
            let s = dot(matrix.row(i), matrix.row(j));
            if s > best.2 {
                best = (i, j, s);
            }
        }
    }
    best
}

fn argmax(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 {
                (i, v)
            } else {
                best
            }
        })
        .0
}
