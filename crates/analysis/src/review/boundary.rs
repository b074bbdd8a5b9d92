//! The pairs the model is least sure about. Same-listing pairs should be more similar than an
//! item and its nearest other-listing items; the *decision boundary* is the cosine where as
//! many same-listing pairs fall below it as nearest other-listing pairs rise above it (the
//! equal-error point). The unjudged pairs closest to it, on either side, are the hard pairs.

use super::{CrossNeighbours, ReviewInput, ReviewKind, ReviewPair, ReviewQueue};
use crate::AnalysisError;
use natview_core::linalg::dot;
use rayon::prelude::*;

/// Views per listing whose pairs are looked at (a listing's first ones, in dataset order).
const VIEWS_PER_LISTING: usize = 20;

/// The equal-error cosine between `same` (should be high) and `other` (should be low)
/// similarities; `None` if either is empty.
pub fn decision_boundary(same: &[f32], other: &[f32]) -> Option<f32> {
    if same.is_empty() || other.is_empty() {
        return None;
    }
    let mut same = same.to_vec();
    let mut other = other.to_vec();
    same.sort_by(f32::total_cmp);
    other.sort_by(f32::total_cmp);
    // Candidate thresholds: every value; the error gap is monotone, so a binary search works.
    let gap = |t: f32| {
        let below = same.partition_point(|&s| s < t) as f64 / same.len() as f64;
        let above = (other.len() - other.partition_point(|&s| s < t)) as f64 / other.len() as f64;
        below - above
    };
    let (mut lo, mut hi) = (-1.0f32, 1.0f32);
    for _ in 0..40 {
        let mid = 0.5 * (lo + hi);
        if gap(mid) < 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(0.5 * (lo + hi))
}

/// Unjudged same-listing pairs and nearest other-listing pairs, closest to the decision
/// boundary first.
pub fn hard_pairs(
    input: &ReviewInput<'_>,
    candidates: &CrossNeighbours,
) -> Result<ReviewQueue, AnalysisError> {
    let count = input.listing.iter().max().map_or(0, |m| m + 1);
    let mut members = vec![Vec::new(); count];
    for (i, &l) in input.listing.iter().enumerate() {
        if members[l].len() < VIEWS_PER_LISTING {
            members[l].push(i);
        }
    }
    let same: Vec<(usize, usize, f32)> = members
        .par_iter()
        .flat_map_iter(|rows: &Vec<usize>| {
            let mut pairs = Vec::new();
            for (x, &i) in rows.iter().enumerate() {
                for &j in &rows[x + 1..] {
                    pairs.push((i, j, dot(input.matrix.row(i), input.matrix.row(j))));
                }
            }
            pairs
        })
        .collect();
    let other: Vec<f32> = candidates.pairs.iter().map(|p| p.2).collect();
    let same_values: Vec<f32> = same.iter().map(|p| p.2).collect();
    let Some(boundary) = decision_boundary(&same_values, &other) else {
        return Ok(ReviewQueue {
            kind: ReviewKind::HardPairs,
            pairs: Vec::new(),
            clusters: Vec::new(),
            histogram: None,
            summary: "needs listings with 2+ views and other listings to compare with".into(),
        });
    };
    let mut pairs: Vec<ReviewPair> = same
        .iter()
        .map(|&(a, b, s)| (a, b, s, true))
        .chain(
            candidates
                .pairs
                .iter()
                .map(|&(a, b, s)| (a as usize, b as usize, s, false)),
        )
        .filter(|&(a, b, _, _)| !(input.judged)(a, b))
        .map(|(a, b, s, same_listing)| ReviewPair {
            a,
            b,
            similarity: s,
            score: (s - boundary).abs(),
            cluster: None,
            why: format!(
                "{}, cosine {s:.3}: {} the boundary {boundary:.3}",
                if same_listing {
                    "same listing"
                } else {
                    "other listings"
                },
                match (same_listing, s >= boundary) {
                    (true, true) => "just above",
                    (true, false) => "below (would be missed)",
                    (false, true) => "above (would be confused)",
                    (false, false) => "just below",
                }
            ),
        })
        .collect();
    pairs.par_sort_by(|x, y| {
        x.score
            .total_cmp(&y.score)
            .then((x.a, x.b).cmp(&(y.a, y.b)))
    });
    Ok(ReviewQueue {
        kind: ReviewKind::HardPairs,
        summary: format!(
            "{} unjudged pair(s) ({} same-listing, {} nearest other-listing) around the boundary cosine {boundary:.3}",
            pairs.len(),
            same.len(),
            candidates.pairs.len()
        ),
        pairs,
        clusters: Vec::new(),
            histogram: None,
    })
}
