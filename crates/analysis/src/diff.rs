//! What changed between two encoders of the same images (before and after a fine-tune,
//! natview's against an imported model), item by item and listing by listing:
//! - per item, the overlap (Jaccard) of its `k` nearest neighbours under A and under B, and the
//!   rank of its nearest other view of the same listing under each;
//! - per listing, recall@k (the share of its views with another of its views among their `k`
//!   nearest), the mean reciprocal rank of that nearest same-listing view, and the intra/inter
//!   gap (its views' mean cosine to each other minus their mean cosine to other listings'
//!   images), under A and B;
//! - the listings that improved, regressed or stayed, ranked by the change of their mean
//!   reciprocal rank (a listing moves when it changes by at least [`DiffParams::min_change`]).
//!
//! Neighbours come from [`knn_graph`]: exact up to its limit, natview's HNSW above (no n²
//! products at a million images; the time there is not measured yet).

use super::AnalysisError;
use crate::knn::knn_graph;
use crate::layout::Unobserved;
use natview_core::linalg::{dot, Matrix};
use natview_core::rng::SplitMix64;
use serde::Serialize;

/// How a diff is computed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiffParams {
    /// Neighbours compared per item (and the k of recall@k).
    pub k: usize,
    /// Deepest rank searched for an item's nearest same-listing view.
    pub depth: usize,
    /// Smallest change of a listing's mean reciprocal rank that counts as improved or
    /// regressed.
    pub min_change: f64,
    /// Other-listing images sampled per view for the inter-listing side of the gap.
    pub inter_samples: usize,
    /// Seed of that sample.
    pub seed: u64,
}

impl Default for DiffParams {
    fn default() -> Self {
        Self {
            k: 10,
            depth: 50,
            min_change: 0.1,
            inter_samples: 32,
            seed: 0,
        }
    }
}

/// One item under both encoders.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ItemChange {
    /// Row (item id).
    pub item: usize,
    /// `|N_A ∩ N_B| / |N_A ∪ N_B|` of its `k` nearest neighbours under A and B.
    pub jaccard: f64,
    /// Rank (1 = nearest) of its nearest same-listing view under A; `None` when its listing
    /// has no other view or none is within the searched depth.
    pub rank_a: Option<usize>,
    /// The same under B.
    pub rank_b: Option<usize>,
}

/// Whether a listing got better, worse or stayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Its views find each other sooner under B.
    Improved,
    /// Later under B.
    Regressed,
    /// Within the threshold.
    Unchanged,
}

/// One listing under both encoders.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListingChange {
    /// Dense listing number (as given).
    pub listing: usize,
    /// Its views (rows).
    pub items: Vec<usize>,
    /// recall@k under A and B.
    pub recall: (f64, f64),
    /// Mean reciprocal rank of the nearest same-listing view under A and B (0 beyond the
    /// depth).
    pub mrr: (f64, f64),
    /// Intra/inter gap under A and B.
    pub gap: (f64, f64),
    /// The verdict.
    pub change: Change,
}

impl ListingChange {
    /// `mrr.1 − mrr.0`.
    pub fn delta(&self) -> f64 {
        self.mrr.1 - self.mrr.0
    }
}

/// The diff of two encoders over the same rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EncoderDiff {
    /// Neighbours compared per item.
    pub k: usize,
    /// Every item.
    pub items: Vec<ItemChange>,
    /// Listings with at least two views, most improved first, most regressed last.
    pub listings: Vec<ListingChange>,
    /// Mean Jaccard overlap of the items' neighbourhoods.
    pub mean_jaccard: f64,
    /// recall@k over all queries under A and B.
    pub recall: (f64, f64),
    /// How many listings improved, regressed, stayed.
    pub counts: (usize, usize, usize),
}

impl EncoderDiff {
    /// The listings with `change`, in ranked order.
    pub fn with_change(&self, change: Change) -> impl DoubleEndedIterator<Item = &ListingChange> {
        self.listings.iter().filter(move |l| l.change == change)
    }
}

/// Diffs encoder A's rows `a` against encoder B's `b` (unit rows, the same items in the same
/// order); `listings[i]` is row `i`'s dense listing number.
pub fn encoder_diff(
    a: &Matrix,
    b: &Matrix,
    listings: &[usize],
    params: DiffParams,
) -> Result<EncoderDiff, AnalysisError> {
    if a.rows != b.rows || a.rows != listings.len() {
        return Err(AnalysisError::BadInput(format!(
            "A has {} rows, B {} and there are {} listing numbers: a diff needs the same items",
            a.rows,
            b.rows,
            listings.len()
        )));
    }
    let n = a.rows;
    let depth = params.depth.max(params.k).min(n.saturating_sub(1));
    if params.k == 0 || depth < params.k {
        return Err(AnalysisError::NotEnoughData(format!(
            "{} neighbours per item need more than {} items",
            params.k, n
        )));
    }
    // Exact search in gemm tiles up to the kNN graph's limit, natview's HNSW above.
    let ranked_a = knn_graph(a, depth, &mut Unobserved)?;
    let ranked_b = knn_graph(b, depth, &mut Unobserved)?;
    let items: Vec<ItemChange> = (0..n)
        .map(|i| {
            let (near_a, near_b) = (ranked_a.neighbours(i).0, ranked_b.neighbours(i).0);
            ItemChange {
                item: i,
                jaccard: jaccard(&near_a[..params.k], &near_b[..params.k]),
                rank_a: nearest_same(near_a, listings, i),
                rank_b: nearest_same(near_b, listings, i),
            }
        })
        .collect();
    let groups = crate::rows_by_listing(listings);
    let mut rng = SplitMix64::new(params.seed);
    let mut changes: Vec<ListingChange> = groups
        .iter()
        .cloned()
        .enumerate()
        .filter(|(_, rows)| rows.len() >= 2)
        .map(|(listing, rows)| {
            let recall = |rank: fn(&ItemChange) -> Option<usize>| {
                rows.iter()
                    .filter(|&&r| rank(&items[r]).is_some_and(|x| x <= params.k))
                    .count() as f64
                    / rows.len() as f64
            };
            let mrr = |rank: fn(&ItemChange) -> Option<usize>| {
                rows.iter()
                    .map(|&r| rank(&items[r]).map_or(0.0, |x| 1.0 / x as f64))
                    .sum::<f64>()
                    / rows.len() as f64
            };
            let others = sample_others(&rows, listings, params.inter_samples, &mut rng);
            let mrr_pair = (mrr(|c| c.rank_a), mrr(|c| c.rank_b));
            let delta = mrr_pair.1 - mrr_pair.0;
            ListingChange {
                listing,
                recall: (recall(|c| c.rank_a), recall(|c| c.rank_b)),
                mrr: mrr_pair,
                gap: (gap(a, &rows, &others), gap(b, &rows, &others)),
                change: if delta >= params.min_change {
                    Change::Improved
                } else if delta <= -params.min_change {
                    Change::Regressed
                } else {
                    Change::Unchanged
                },
                items: rows,
            }
        })
        .collect();
    changes.sort_by(|x, y| {
        y.delta()
            .total_cmp(&x.delta())
            .then(x.listing.cmp(&y.listing))
    });
    let count = |c: Change| changes.iter().filter(|l| l.change == c).count();
    let queries: Vec<&ItemChange> = items
        .iter()
        .filter(|c| groups[listings[c.item]].len() >= 2)
        .collect();
    let overall = |rank: fn(&ItemChange) -> Option<usize>| {
        queries
            .iter()
            .filter(|c| rank(c).is_some_and(|x| x <= params.k))
            .count() as f64
            / queries.len().max(1) as f64
    };
    Ok(EncoderDiff {
        k: params.k,
        mean_jaccard: items.iter().map(|c| c.jaccard).sum::<f64>() / n.max(1) as f64,
        recall: (overall(|c| c.rank_a), overall(|c| c.rank_b)),
        counts: (
            count(Change::Improved),
            count(Change::Regressed),
            count(Change::Unchanged),
        ),
        items,
        listings: changes,
    })
}

/// `|a ∩ b| / |a ∪ b|` of two neighbour lists (distinct ids each).
fn jaccard(a: &[u32], b: &[u32]) -> f64 {
    let shared = a.iter().filter(|x| b.contains(x)).count();
    let union = a.len() + b.len() - shared;
    if union == 0 {
        1.0
    } else {
        shared as f64 / union as f64
    }
}

/// The 1-based rank of the first neighbour of `item` in its listing.
fn nearest_same(ranked: &[u32], listings: &[usize], item: usize) -> Option<usize> {
    ranked
        .iter()
        .position(|&n| listings[n as usize] == listings[item])
        .map(|p| p + 1)
}

/// Up to `count` rows of other listings, drawn at random (the same for A and B).
fn sample_others(
    rows: &[usize],
    listings: &[usize],
    count: usize,
    rng: &mut SplitMix64,
) -> Vec<usize> {
    let n = listings.len();
    let own = listings[rows[0]];
    if listings.iter().all(|&l| l == own) {
        return Vec::new();
    }
    let mut others = Vec::with_capacity(count);
    while others.len() < count {
        let j = rng.below(n);
        if listings[j] != own {
            others.push(j);
        }
    }
    others
}

/// Mean cosine between the views `rows`, minus their mean cosine to `others`.
fn gap(m: &Matrix, rows: &[usize], others: &[usize]) -> f64 {
    let mut intra = (0f64, 0usize);
    for (x, &i) in rows.iter().enumerate() {
        for &j in &rows[x + 1..] {
            intra.0 += f64::from(dot(m.row(i), m.row(j)));
            intra.1 += 1;
        }
    }
    let mut inter = (0f64, 0usize);
    for &i in rows {
        for &j in others {
            inter.0 += f64::from(dot(m.row(i), m.row(j)));
            inter.1 += 1;
        }
    }
    intra.0 / intra.1.max(1) as f64 - inter.0 / inter.1.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unit rows: listing `l`'s views near a random centre, the views of `scattered` listings
    /// each at a random point of their own instead.
    fn embedding(listings: &[usize], dim: usize, scattered: &[usize], seed: u64) -> Matrix {
        let mut rng = SplitMix64::new(seed);
        let mut data = Vec::new();
        for (row, &l) in listings.iter().enumerate() {
            let mut centre = SplitMix64::new(if scattered.contains(&l) {
                10_000 + row as u64
            } else {
                l as u64
            });
            let v: Vec<f64> = (0..dim)
                .map(|_| centre.next_normal() + 0.25 * rng.next_normal())
                .collect();
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            data.extend(v.iter().map(|x| (x / norm) as f32));
        }
        Matrix {
            rows: listings.len(),
            dim,
            data,
        }
    }

    #[test]
    fn the_regressed_queue_holds_the_regressed_listings_views_beside_their_own() {
        let listings: Vec<usize> = (0..400).map(|i| i / 4).collect();
        let a = embedding(&listings, 32, &[3], 1);
        let b = embedding(&listings, 32, &[8, 60], 2);
        let diff = encoder_diff(&a, &b, &listings, DiffParams::default()).expect("diff");
        let queue = crate::review::regressed_queue(&diff, &a, &b, 1000).expect("queue");
        let mut seen: Vec<usize> = queue.pairs.iter().map(|p| listings[p.a]).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen, vec![8, 60]);
        for pair in &queue.pairs {
            assert_eq!(listings[pair.a], listings[pair.b], "{pair:?}");
            assert_ne!(pair.a, pair.b);
            assert!(pair.why.contains("under B"), "{}", pair.why);
        }
        let short = crate::review::regressed_queue(&diff, &a, &b, 2).expect("queue");
        assert_eq!(short.pairs.len(), 2);
        assert!(short.summary.contains("first 2"), "{}", short.summary);
        assert!(crate::review::regressed_queue(&diff, &a, &a_rows(&a, 10), 10).is_err());
    }

    fn a_rows(m: &Matrix, rows: usize) -> Matrix {
        Matrix {
            rows,
            dim: m.dim,
            data: m.data[..rows * m.dim].to_vec(),
        }
    }

    #[test]
    fn moved_listings_are_exactly_the_improved_and_regressed_ones() {
        let listings: Vec<usize> = (0..400).map(|i| i / 4).collect();
        // A scatters listings 3, 17 and 42; B gathers them and scatters 8 and 60 instead.
        let a = embedding(&listings, 32, &[3, 17, 42], 1);
        let b = embedding(&listings, 32, &[8, 60], 2);
        let diff = encoder_diff(&a, &b, &listings, DiffParams::default()).expect("diff");
        let set = |c: Change| {
            let mut v: Vec<usize> = diff.with_change(c).map(|l| l.listing).collect();
            v.sort_unstable();
            v
        };
        assert_eq!(set(Change::Improved), vec![3, 17, 42]);
        assert_eq!(set(Change::Regressed), vec![8, 60]);
        assert_eq!(diff.counts, (3, 2, 95));
        // Ranked: improvements first, regressions last.
        assert_eq!(diff.listings[0].change, Change::Improved);
        assert_eq!(diff.listings[99].change, Change::Regressed);
        let moved = diff.listings.iter().find(|l| l.listing == 3).expect("3");
        assert!(moved.gap.1 > moved.gap.0 + 0.3, "{:?}", moved.gap);
        assert_eq!(moved.recall.1, 1.0);
        // Items of unmoved listings keep most of their neighbourhood.
        let kept = diff.items[100].jaccard;
        assert!(kept > 0.2, "{kept}");
        assert_eq!(diff.items[100].rank_a, Some(1));
    }

    #[test]
    fn an_encoder_against_itself_changes_nothing() {
        let listings: Vec<usize> = (0..60).map(|i| i / 3).collect();
        let a = embedding(&listings, 16, &[], 5);
        let diff = encoder_diff(&a, &a, &listings, DiffParams::default()).expect("diff");
        assert_eq!(diff.counts, (0, 0, 20));
        assert!((diff.mean_jaccard - 1.0).abs() < 1e-12);
        assert_eq!(diff.recall.0, diff.recall.1);
    }

    #[test]
    fn different_items_are_refused() {
        let listings: Vec<usize> = (0..20).map(|i| i / 2).collect();
        let a = embedding(&listings, 8, &[], 1);
        let b = embedding(&listings[..18], 8, &[], 1);
        assert!(encoder_diff(&a, &b, &listings, DiffParams::default()).is_err());
    }
}
