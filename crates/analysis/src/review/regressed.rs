//! The "regressed" queue: after a fine-tune (or against another encoder), the views whose
//! listing got worse — each paired with the view of its own listing it was nearest to under
//! encoder A, which encoder B has pushed away. Judging the pair "same" confirms the listing (and
//! the verdict feeds the next fine-tune as a positive); "different" says B was right to split
//! it. Most regressed listings first.

use super::{ReviewKind, ReviewPair, ReviewQueue};
use crate::diff::{Change, EncoderDiff};
use crate::AnalysisError;
use natview_core::linalg::{dot, Matrix};

/// The regressed queue of `diff`, made from A's rows `a` and B's rows `b` (unit rows, the
/// diff's items); at most `limit` pairs.
pub fn regressed_queue(
    diff: &EncoderDiff,
    a: &Matrix,
    b: &Matrix,
    limit: usize,
) -> Result<ReviewQueue, AnalysisError> {
    if a.rows != diff.items.len() || b.rows != diff.items.len() {
        return Err(AnalysisError::BadInput(format!(
            "the diff covers {} images but the embeddings hold {} and {}",
            diff.items.len(),
            a.rows,
            b.rows
        )));
    }
    let rank = |r: Option<usize>| r.map_or_else(|| "none".to_string(), |r| r.to_string());
    let mut pairs = Vec::new();
    // `listings` is ranked most improved first: the most regressed are at its end.
    for listing in diff.with_change(Change::Regressed).rev() {
        for &view in &listing.items {
            let change = &diff.items[view];
            let worse = match (change.rank_a, change.rank_b) {
                (Some(ra), Some(rb)) => rb > ra,
                (Some(_), None) => true,
                _ => false,
            };
            if !worse {
                continue;
            }
            let Some(partner) = listing
                .items
                .iter()
                .copied()
                .filter(|&j| j != view)
                .max_by(|&x, &y| dot(a.row(view), a.row(x)).total_cmp(&dot(a.row(view), a.row(y))))
            else {
                continue;
            };
            pairs.push(ReviewPair {
                a: view,
                b: partner,
                similarity: dot(b.row(view), b.row(partner)),
                score: (listing.mrr.0 - listing.mrr.1) as f32,
                cluster: None,
                why: format!(
                    "rank of its nearest same-listing view {} → {} under B; listing MRR {:.2} → {:.2}",
                    rank(change.rank_a),
                    rank(change.rank_b),
                    listing.mrr.0,
                    listing.mrr.1
                ),
            });
        }
    }
    let total = pairs.len();
    let listings = diff.counts.1;
    let mut queue = ReviewQueue {
        kind: ReviewKind::Regressed,
        pairs,
        clusters: Vec::new(),
        summary: format!(
            "{total} view(s) of {listings} regressed listing(s), each beside the view of its listing it was nearest to before; judge whether they show one item"
        ),
        histogram: None,
    };
    queue.keep_first(limit);
    Ok(queue)
}
