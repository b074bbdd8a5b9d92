//! natview-analysis: what an embedding matrix says — intra/inter-listing similarity (the
//! quadrant chart), listing retrieval metrics, 2-D projections (PCA, UMAP, t-SNE) and their
//! quality, review queues, low-shot probes — and how it is drawn headless (scatter rasters,
//! PNG reports) and saved (layouts in the workspace).

#![forbid(unsafe_code)]

pub mod align;
pub mod diff;
pub mod health;
pub mod knn;
pub mod layout;
mod pca;
pub mod probe;
pub mod projection;
mod quadrant;
pub mod quality;
pub mod report;
mod retrieval;
pub mod review;
mod saved_projection;
pub mod scatter;
mod selection;
mod stats;
#[cfg(test)]
mod test_support;
pub mod tsne;
pub mod umap;

pub use pca::{pca_2d, pca_basis, PcaBasis, Projection};
pub use quadrant::{
    quadrant_chart, why_no_quadrant_chart, QuadrantChart, QuadrantParams, ViewsChoice,
    AUTO_VIEWS_MAX, MAX_CHART_ROWS, MAX_LISTINGS, MAX_VIEWS,
};
pub use retrieval::{listing_retrieval, listing_retrieval_of, RetrievalMetrics};
pub use saved_projection::{
    read_projection_csv, write_projection_csv, ProjectionFiles, ProjectionMeta, SavedProjection,
};
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
    /// The observer stopped the computation.
    #[error("cancelled")]
    Cancelled,
    /// The input cannot be used (names the row or value at fault).
    #[error("{0}")]
    BadInput(String),
}

/// The rows of each listing, by dense listing number (`listings[row]`): `result[l]` holds the
/// rows of listing `l` in ascending order (empty for a number no row has).
pub fn rows_by_listing(listings: &[usize]) -> Vec<Vec<usize>> {
    let mut rows = vec![Vec::new(); listings.iter().max().map_or(0, |m| m + 1)];
    for (row, &l) in listings.iter().enumerate() {
        rows[l].push(row);
    }
    rows
}

/// Dense listing numbers (`0..L`) for each item, in item order.
pub fn listing_numbers(items: &[natview_core::dataset::Item]) -> Vec<usize> {
    let mut numbers = std::collections::HashMap::new();
    items
        .iter()
        .map(|item| {
            let next = numbers.len();
            *numbers.entry(item.listing.as_str()).or_insert(next)
        })
        .collect()
}
