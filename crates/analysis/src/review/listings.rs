//! Queues about listings: views that do not belong with the rest of their listing (one stray
//! view, or a listing whose views fall into separate groups — "split"), and pairs of listings
//! the model can hardly tell apart (at worst "merged": nearly as similar between as within); and each
//! listing's coherence. Both work from each listing's sum of unit
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
    let dim = input.matrix.dim;
    let rows = crate::rows_by_listing(input.listing);
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
    pairs.extend(split_pairs(input, &all));
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

/// A listing pair is "merged" when its mean cross cosine gets this far from the dataset's
/// any-pair mean towards the pair's own within-listing cosine.
const MERGED_SHARE: f32 = 0.9;

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
    let (any_pair, _) = reference_cosines(input, &all);
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
            let merged = if inter - any_pair >= MERGED_SHARE * (within - any_pair) {
                "merged: the encoder cannot tell them apart — "
            } else {
                ""
            };
            pairs.push(ReviewPair {
                a,
                b,
                similarity,
                score: inter - within,
                cluster: None,
                why: format!(
                    "{merged}listings' mean cosine between {inter:.3}, within {within:.3} (closest views {similarity:.3})"
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

/// The dataset's reference cosines: the mean over all pairs of images (≈ different listings)
/// and the median of the listings' mean within-listing cosines.
fn reference_cosines(input: &ReviewInput<'_>, all: &Listings) -> (f32, f32) {
    let n = input.matrix.rows as f32;
    let mut total = vec![0f32; input.matrix.dim];
    for sum in &all.sums {
        total.iter_mut().zip(sum).for_each(|(t, s)| *t += s);
    }
    let any_pair = (dot(&total, &total) - n) / (n * (n - 1.0)).max(1.0);
    let mut intra: Vec<f32> = all
        .rows
        .iter()
        .zip(&all.sums)
        .filter(|(m, _)| m.len() >= 2)
        .map(|(m, s)| {
            let k = m.len() as f32;
            (dot(s, s) - k) / (k * (k - 1.0))
        })
        .collect();
    intra.sort_by(f32::total_cmp);
    let median = intra.get(intra.len() / 2).copied().unwrap_or(1.0);
    (any_pair, median)
}

/// Each listing's coherence (by listing number; `None` under two views): its mean
/// within-listing cosine on a scale where 0 is the mean cosine of any two images of the dataset
/// and 1 the median listing's — below ~0.5 its views are spread unusually far apart.
pub fn listing_coherence(input: &ReviewInput<'_>) -> Vec<Option<f32>> {
    let all = listings(input);
    let (any_pair, median) = reference_cosines(input, &all);
    let span = (median - any_pair).max(1e-6);
    all.rows
        .iter()
        .zip(&all.sums)
        .map(|(m, s)| {
            (m.len() >= 2).then(|| {
                let k = m.len() as f32;
                ((dot(s, s) - k) / (k * (k - 1.0)) - any_pair) / span
            })
        })
        .collect()
}

/// Listings of 4+ views whose views fall into separate groups: views joined when their cosine
/// is at least halfway from the dataset's any-pair mean to the median listing's within-listing
/// cosine; two groups of 2+ views make a split listing, shown as its closest pair across the
/// two largest groups.
fn split_pairs(input: &ReviewInput<'_>, all: &Listings) -> Vec<ReviewPair> {
    let (any_pair, median) = reference_cosines(input, all);
    let joined = 0.5 * (any_pair + median);
    all.rows
        .par_iter()
        .filter(|members| members.len() >= 4)
        .filter_map(|members| {
            let n = members.len();
            let cos = |i: usize, j: usize| dot(input.matrix.row(members[i]), input.matrix.row(members[j]));
            let mut group: Vec<usize> = (0..n).collect();
            let find = |group: &mut Vec<usize>, mut x: usize| {
                while group[x] != x {
                    group[x] = group[group[x]];
                    x = group[x];
                }
                x
            };
            for i in 0..n {
                for j in i + 1..n {
                    if cos(i, j) >= joined {
                        let (a, b) = (find(&mut group, i), find(&mut group, j));
                        group[a] = b;
                    }
                }
            }
            let mut groups: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
            for i in 0..n {
                let root = find(&mut group, i);
                groups.entry(root).or_default().push(i);
            }
            let mut big: Vec<Vec<usize>> = groups.into_values().filter(|g| g.len() >= 2).collect();
            if big.len() < 2 {
                return None;
            }
            big.sort_by_key(|g| std::cmp::Reverse(g.len()));
            let (first, second) = (&big[0], &big[1]);
            let mean_within = |g: &[usize]| {
                let mut sum = (0f32, 0usize);
                for (x, &i) in g.iter().enumerate() {
                    for &j in &g[x + 1..] {
                        sum = (sum.0 + cos(i, j), sum.1 + 1);
                    }
                }
                sum.0 / sum.1.max(1) as f32
            };
            let within = 0.5 * (mean_within(first) + mean_within(second));
            let rows = |g: &[usize]| g.iter().map(|&i| members[i]).collect::<Vec<_>>();
            let (a, b, between) = closest_cross_pair(input.matrix, &rows(first), &rows(second));
            Some(ReviewPair {
                a,
                b,
                similarity: between,
                score: between - within,
                cluster: None,
                why: format!(
                    "split: its {n} views form groups of {} and {} (closest views across {between:.3}, within the groups {within:.3})",
                    first.len(),
                    second.len()
                ),
            })
        })
        .collect()
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
