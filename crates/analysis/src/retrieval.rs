//! Listing retrieval: for each image whose listing has another view, is a view of the same
//! listing among its k nearest neighbours (itself excluded)? recall@1/5/10 and mAP@10.

use serde::Serialize;

/// Listing-retrieval metrics.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RetrievalMetrics {
    /// Number of query images (those whose listing has at least two views).
    pub queries: usize,
    /// Fraction of queries with a same-listing view at rank 1.
    pub recall_at_1: f64,
    /// … within the top 5.
    pub recall_at_5: f64,
    /// … within the top 10.
    pub recall_at_10: f64,
    /// Mean average precision over the top 10.
    pub map_at_10: f64,
}

/// Computes the metrics from each item's ranked neighbour ids (itself excluded, best first, at
/// least 10 long where the dataset allows) and each item's listing number.
pub fn listing_retrieval(listings: &[usize], ranked: &[Vec<usize>]) -> RetrievalMetrics {
    listing_retrieval_of(listings, ranked, |_| true)
}

/// [`listing_retrieval`] over the queries that `is_query(item)` picks (e.g. the views of one
/// design); their neighbours still come from every item.
pub fn listing_retrieval_of(
    listings: &[usize],
    ranked: &[Vec<usize>],
    is_query: impl Fn(usize) -> bool,
) -> RetrievalMetrics {
    let mut views_per_listing = std::collections::HashMap::new();
    for &l in listings {
        *views_per_listing.entry(l).or_insert(0usize) += 1;
    }
    let (mut queries, mut hit1, mut hit5, mut hit10, mut ap_sum) = (0usize, 0, 0, 0, 0f64);
    for (item, neighbours) in ranked.iter().enumerate() {
        let relevant = views_per_listing[&listings[item]] - 1;
        if relevant == 0 || !is_query(item) {
            continue;
        }
        queries += 1;
        let hits: Vec<bool> = neighbours
            .iter()
            .take(10)
            .map(|&n| listings[n] == listings[item])
            .collect();
        let first_hit = hits.iter().position(|&h| h);
        hit1 += usize::from(first_hit.is_some_and(|r| r < 1));
        hit5 += usize::from(first_hit.is_some_and(|r| r < 5));
        hit10 += usize::from(first_hit.is_some());
        let mut found = 0usize;
        let mut precision_sum = 0f64;
        for (rank, &h) in hits.iter().enumerate() {
            if h {
                found += 1;
                precision_sum += found as f64 / (rank + 1) as f64;
            }
        }
        ap_sum += precision_sum / relevant.min(10) as f64;
    }
    let q = queries.max(1) as f64;
    RetrievalMetrics {
        queries,
        recall_at_1: hit1 as f64 / q,
        recall_at_5: hit5 as f64 / q,
        recall_at_10: hit10 as f64 / q,
        map_at_10: ap_sum / q,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_can_be_restricted_while_the_gallery_stays_whole() {
        let listings = [0, 0, 1, 1];
        // Rank-1 hits: item 0 only.
        let ranked = vec![vec![1, 2], vec![2, 0], vec![0, 3], vec![0, 2]];
        let all = listing_retrieval(&listings, &ranked);
        assert_eq!(all.queries, 4);
        assert!((all.recall_at_1 - 0.25).abs() < 1e-12);
        let odd = listing_retrieval_of(&listings, &ranked, |i| i % 2 == 1);
        assert_eq!(odd.queries, 2);
        assert_eq!(odd.recall_at_1, 0.0);
        let even = listing_retrieval_of(&listings, &ranked, |i| i % 2 == 0);
        assert_eq!(even.queries, 2);
        assert!((even.recall_at_1 - 0.5).abs() < 1e-12);
    }

    #[test]
    fn hand_computed_recall_and_map() {
        // Items 0,1,2 are listing 0; item 3 is listing 1 (single view, not a query);
        // items 4,5 are listing 2.
        let listings = [0, 0, 0, 1, 2, 2];
        let ranked = vec![
            vec![1, 3, 2, 4, 5], // hits at ranks 1,3: AP = (1/1 + 2/3)/2 = 0.8333
            vec![3, 4, 5, 0, 2], // first hit at rank 4: AP = (1/4 + 2/5)/2 = 0.325
            vec![3, 4, 5, 1, 0], // AP = (1/4 + 2/5)/2 = 0.325
            vec![0, 1, 2, 4, 5], // not a query
            vec![5, 0, 1, 2, 3], // AP = 1
            vec![0, 1, 2, 3, 4], // hit at rank 5: AP = 1/5 = 0.2
        ];
        let m = listing_retrieval(&listings, &ranked);
        assert_eq!(m.queries, 5);
        assert!((m.recall_at_1 - 2.0 / 5.0).abs() < 1e-12);
        assert!((m.recall_at_5 - 5.0 / 5.0).abs() < 1e-12);
        assert!((m.recall_at_10 - 1.0).abs() < 1e-12);
        let expected_map = (5.0 / 6.0 + 0.325 + 0.325 + 1.0 + 0.2) / 5.0;
        assert!(
            (m.map_at_10 - expected_map).abs() < 1e-12,
            "{}",
            m.map_at_10
        );
    }
}
