//! Review queues: where an analyst should look, as pairs of items to judge (same / different /
//! near-duplicate), best candidates first.
//!
//! - [`ReviewKind::NearDuplicates`]: pairs from different listings above a cosine threshold,
//!   grouped into clusters (connected components), from each item's nearest neighbours;
//! - [`ReviewKind::ListingOutliers`]: views far from the rest of their own listing, each shown
//!   beside its listing's most typical view;
//! - [`ReviewKind::ConfusableListings`]: listing pairs whose similarity between them is close
//!   to their similarity within;
//! - [`ReviewKind::HardPairs`]: unjudged pairs nearest the model's decision boundary between
//!   same-listing and other-listing similarities;
//! - [`ReviewKind::Regressed`]: views of the listings an encoder diff found regressed, each
//!   beside the view of its listing it was nearest to before ([`regressed_queue`]; it needs two
//!   encoders, so [`review_queue`] refuses it).
//!
//! Neighbours come from a [`NeighbourSource`] (the HNSW index at scale), so the queues work on
//! a million images.

mod boundary;
mod duplicates;
mod listings;
mod neighbours;
mod regressed;
#[cfg(test)]
mod tests;

pub use boundary::{decision_boundary, hard_pairs};
pub use duplicates::{near_duplicates, NearDuplicates, SimilarityHistogram};
pub use listings::{confusable_listings, listing_coherence, listing_outliers};
pub use neighbours::{cross_listing_neighbours, BruteForce, CrossNeighbours, NeighbourSource};
pub use regressed::regressed_queue;

use super::layout::LayoutObserver;
use super::AnalysisError;
use natview_core::linalg::Matrix;
use serde::Serialize;

/// The kinds of review queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ReviewKind {
    /// Near-duplicate pairs across listings, in clusters.
    #[default]
    NearDuplicates,
    /// Views far from the rest of their listing.
    ListingOutliers,
    /// Listing pairs almost as similar between as within.
    ConfusableListings,
    /// Unjudged pairs the model is least sure about.
    HardPairs,
    /// Views of listings a second encoder made worse (from an encoder diff).
    Regressed,
}

impl ReviewKind {
    /// Every kind, in the order the app lists them.
    pub const ALL: [ReviewKind; 5] = [
        ReviewKind::NearDuplicates,
        ReviewKind::ListingOutliers,
        ReviewKind::ConfusableListings,
        ReviewKind::HardPairs,
        ReviewKind::Regressed,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            ReviewKind::NearDuplicates => "near-duplicates",
            ReviewKind::ListingOutliers => "outliers",
            ReviewKind::ConfusableListings => "confusable",
            ReviewKind::HardPairs => "hard",
            ReviewKind::Regressed => "regressed",
        }
    }

    /// The name shown in the app.
    pub fn label(self) -> &'static str {
        match self {
            ReviewKind::NearDuplicates => "Near-duplicates across listings",
            ReviewKind::ListingOutliers => "Listing outliers",
            ReviewKind::ConfusableListings => "Confusable listings",
            ReviewKind::HardPairs => "Unlabelled hard pairs",
            ReviewKind::Regressed => "Regressed in the last diff",
        }
    }

    /// Parses a command-line name.
    pub fn parse(text: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == text)
            .ok_or_else(|| {
                format!(
                    "unknown review kind `{text}` ({})",
                    Self::ALL.map(|k| k.name()).join(", ")
                )
            })
    }
}

/// One pair to judge.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewPair {
    /// First item (row of the matrix).
    pub a: usize,
    /// Second item.
    pub b: usize,
    /// Their cosine similarity.
    pub similarity: f32,
    /// The queue's ranking score (the queue is sorted by it, most worth a look first).
    pub score: f32,
    /// The duplicate cluster both belong to (near-duplicates only).
    pub cluster: Option<usize>,
    /// Why the pair is in the queue, in words.
    pub why: String,
}

/// A review queue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewQueue {
    /// Its kind.
    pub kind: ReviewKind,
    /// The pairs, most worth a look first.
    pub pairs: Vec<ReviewPair>,
    /// Near-duplicates: the clusters (item rows, largest first).
    pub clusters: Vec<Vec<usize>>,
    /// What the queue is made of, in words (shown above it).
    pub summary: String,
    /// Near-duplicates: each image's nearest other-listing cosine, binned (to pick the
    /// threshold from).
    pub histogram: Option<SimilarityHistogram>,
}

impl ReviewQueue {
    /// Keeps the first `limit` pairs, saying so in the summary when some were cut.
    pub fn keep_first(&mut self, limit: usize) {
        if self.pairs.len() > limit {
            self.summary = format!("{}; the first {limit} listed", self.summary);
            self.pairs.truncate(limit);
        }
    }
}

/// What a queue is built from.
pub struct ReviewInput<'a> {
    /// Unit-length embeddings, one row per item.
    pub matrix: &'a Matrix,
    /// Each item's listing number (`0..L`).
    pub listing: &'a [usize],
    /// Where neighbours come from.
    pub neighbours: &'a dyn NeighbourSource,
    /// Whether a pair already has a verdict (hard pairs leaves those out).
    pub judged: &'a dyn Fn(usize, usize) -> bool,
}

/// Settings of the queues.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReviewOptions {
    /// Near-duplicates: the cosine at or above which two images count as duplicates.
    pub threshold: f32,
    /// Pairs kept in the queue at most.
    pub limit: usize,
    /// Other-listing neighbours looked at per item.
    pub neighbours: usize,
}

impl Default for ReviewOptions {
    fn default() -> Self {
        Self {
            threshold: 0.95,
            limit: 1000,
            neighbours: 10,
        }
    }
}

/// Builds the queue of `kind` (near-duplicates from `candidates` when they were found already,
/// so that moving the threshold does not search again).
pub fn review_queue(
    kind: ReviewKind,
    input: &ReviewInput<'_>,
    options: &ReviewOptions,
    candidates: Option<&CrossNeighbours>,
    observer: &mut dyn LayoutObserver,
) -> Result<ReviewQueue, AnalysisError> {
    if input.matrix.rows != input.listing.len() {
        return Err(AnalysisError::BadInput(format!(
            "{} embeddings but {} listing numbers",
            input.matrix.rows,
            input.listing.len()
        )));
    }
    let found;
    let candidates = match candidates {
        Some(c) => c,
        None if kind == ReviewKind::ListingOutliers || kind == ReviewKind::ConfusableListings => {
            found = CrossNeighbours::default();
            &found
        }
        None => {
            found = cross_listing_neighbours(input, options.neighbours, observer)?;
            &found
        }
    };
    let mut queue = match kind {
        ReviewKind::NearDuplicates => near_duplicates(candidates, options.threshold).queue(),
        ReviewKind::ListingOutliers => listing_outliers(input)?,
        ReviewKind::ConfusableListings => confusable_listings(input, observer)?,
        ReviewKind::HardPairs => hard_pairs(input, candidates)?,
        ReviewKind::Regressed => {
            return Err(AnalysisError::BadInput(
                "the regressed queue compares two encoders: it is made from an encoder diff \
                 (natview review --kind regressed --from A; the app's Diff view)"
                    .into(),
            ))
        }
    };
    queue.keep_first(options.limit);
    Ok(queue)
}
