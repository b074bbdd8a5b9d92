//! The quadrant chart: L listings × V views, ordered listing by listing, and their cosine
//! similarity matrix; diagonal V×V blocks are intra-listing pairs, the rest inter-listing.

use super::stats::{pair_stats, PairStats};
use super::AnalysisError;
use crate::dataset::{group_by_listing, Item};
use crate::linalg::{similarity, Matrix};
use crate::rng::SplitMix64;
use serde::{Deserialize, Serialize};

/// Which listings and how many views to chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuadrantParams {
    /// Number of listings (L).
    pub listings: usize,
    /// Views per listing (V); listings with fewer views are not eligible.
    pub views: usize,
    /// Seed of the random choice of listings.
    pub seed: u64,
    /// Only listings whose items carry this label.
    pub label: Option<String>,
    /// Exactly these listings (by name), instead of a random choice.
    pub picked: Vec<String>,
}

impl Default for QuadrantParams {
    fn default() -> Self {
        Self {
            listings: 16,
            views: 4,
            seed: 0,
            label: None,
            picked: Vec::new(),
        }
    }
}

/// A computed quadrant chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuadrantChart {
    /// Listing names, in chart order.
    pub listings: Vec<String>,
    /// Views per listing.
    pub views: usize,
    /// Row numbers (into the embedding matrix) in chart order: listing by listing.
    pub rows: Vec<usize>,
    /// Row-major `n × n` cosine similarities, `n = listings × views`.
    pub similarity: Vec<f32>,
    /// Intra/inter statistics over the off-diagonal pairs of the chart.
    pub stats: PairStats,
}

impl QuadrantChart {
    /// Side of the matrix.
    pub fn size(&self) -> usize {
        self.rows.len()
    }

    /// Similarity of chart positions `i` and `j`.
    pub fn at(&self, i: usize, j: usize) -> f32 {
        self.similarity[i * self.size() + j]
    }
}

/// Chooses listings per `params` and computes their similarity matrix and statistics.
pub fn quadrant_chart(
    matrix: &Matrix,
    items: &[Item],
    params: &QuadrantParams,
) -> Result<QuadrantChart, AnalysisError> {
    if params.views < 2 || (params.listings < 2 && params.picked.is_empty()) {
        return Err(AnalysisError::NotEnoughData(
            "a quadrant chart needs at least 2 listings and 2 views per listing".into(),
        ));
    }
    let mut eligible: Vec<(String, Vec<usize>)> = group_by_listing(items)
        .into_iter()
        .filter(|(_, rows)| rows.len() >= params.views)
        .filter(|(_, rows)| match &params.label {
            Some(label) => rows
                .iter()
                .any(|&r| items[r].label.as_deref() == Some(label)),
            None => true,
        })
        .collect();
    let chosen: Vec<(String, Vec<usize>)> = if params.picked.is_empty() {
        SplitMix64::new(params.seed).shuffle(&mut eligible);
        eligible.truncate(params.listings);
        eligible
    } else {
        let mut chosen = Vec::new();
        for name in &params.picked {
            match eligible.iter().find(|(l, _)| l == name) {
                Some(found) => chosen.push(found.clone()),
                None => {
                    return Err(AnalysisError::NotEnoughData(format!(
                        "listing `{name}` does not exist or has fewer than {} views",
                        params.views
                    )))
                }
            }
        }
        chosen
    };
    if chosen.len() < 2 {
        return Err(AnalysisError::NotEnoughData(format!(
            "only {} listing(s) have at least {} views{}",
            chosen.len(),
            params.views,
            params
                .label
                .as_ref()
                .map(|l| format!(" and label `{l}`"))
                .unwrap_or_default()
        )));
    }
    let rows: Vec<usize> = chosen
        .iter()
        .flat_map(|(_, rows)| rows[..params.views].iter().copied())
        .collect();
    let sub = matrix.select_rows(&rows);
    let sim = similarity(&sub, &sub)?;
    let n = rows.len();
    let (mut intra, mut inter) = (Vec::new(), Vec::new());
    for i in 0..n {
        for j in (i + 1)..n {
            if i / params.views == j / params.views {
                intra.push(sim[i * n + j]);
            } else {
                inter.push(sim[i * n + j]);
            }
        }
    }
    Ok(QuadrantChart {
        listings: chosen.into_iter().map(|(l, _)| l).collect(),
        views: params.views,
        rows,
        similarity: sim,
        stats: pair_stats(&intra, &inter, false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(listing: &str) -> Item {
        Item {
            id: 0,
            path: "x.png".into(),
            listing: listing.into(),
            label: None,
            metadata: Default::default(),
        }
    }

    #[test]
    fn picked_listings_give_blocks_in_order_with_exact_statistics() {
        // Listing a: two copies of e1; listing b: two copies of e2; c has one view only.
        let items = vec![item("a"), item("b"), item("a"), item("b"), item("c")];
        let m = Matrix {
            rows: 5,
            dim: 2,
            data: vec![1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0],
        };
        let params = QuadrantParams {
            views: 2,
            picked: vec!["b".into(), "a".into()],
            ..Default::default()
        };
        let chart = quadrant_chart(&m, &items, &params).expect("chart");
        assert_eq!(chart.listings, vec!["b", "a"]);
        assert_eq!(chart.rows, vec![1, 3, 0, 2]);
        assert_eq!(chart.at(0, 1), 1.0);
        assert_eq!(chart.at(0, 2), 0.0);
        assert_eq!(chart.stats.intra_mean, 1.0);
        assert_eq!(chart.stats.inter_mean, 0.0);
        assert_eq!(chart.stats.auc, 1.0);
        let err = quadrant_chart(
            &m,
            &items,
            &QuadrantParams {
                views: 2,
                picked: vec!["c".into(), "a".into()],
                ..Default::default()
            },
        )
        .expect_err("c has one view");
        assert!(err.to_string().contains("`c`"));
    }
}
