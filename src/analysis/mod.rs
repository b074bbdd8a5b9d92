//! Analyses of an embedding matrix: intra/inter-listing similarity (the quadrant chart),
//! listing retrieval metrics, and 2D projections.

mod pca;
mod quadrant;
mod retrieval;
mod selection;
mod stats;

pub use pca::{pca_2d, Projection};
pub use quadrant::{quadrant_chart, QuadrantChart, QuadrantParams};
pub use retrieval::{listing_retrieval, listing_retrieval_of, RetrievalMetrics};
pub use selection::{point_in_polygon, points_in_box, points_in_polygon, polygon_bounds};
pub use stats::{dataset_pair_stats, pair_stats, roc_auc, PairStats};

/// Errors of the analysis module.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// Not enough data for the analysis.
    #[error("{0}")]
    NotEnoughData(String),
    /// A tensor operation failed.
    #[error("computation failed: {0}")]
    Candle(#[from] candle_core::Error),
}

/// Dense listing numbers (`0..L`) for each item, in item order.
pub fn listing_numbers(items: &[crate::dataset::Item]) -> Vec<usize> {
    let mut numbers = std::collections::HashMap::new();
    items
        .iter()
        .map(|item| {
            let next = numbers.len();
            *numbers.entry(item.listing.as_str()).or_insert(next)
        })
        .collect()
}
