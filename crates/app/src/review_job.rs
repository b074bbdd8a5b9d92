//! The review-queue job: finds each item's nearest other-listing neighbours with the session's
//! HNSW index (once per encoder; moving the near-duplicate threshold reuses them) and builds
//! the queue the Review view steps through.

use natview_analysis::layout::JobObserver;
use natview_analysis::listing_numbers;
use natview_analysis::review::{
    cross_listing_neighbours, review_queue, CrossNeighbours, ReviewInput, ReviewKind,
    ReviewOptions, ReviewQueue,
};
use natview_analysis::AnalysisError;
use natview_core::jobs::{CancelFlag, ProgressSink};
use natview_index::NeighbourIndex;
use natview_pipeline::EmbeddingSet;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

/// What queue to build.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReviewRequest {
    /// The queue's kind.
    pub kind: ReviewKind,
    /// Threshold, limit, neighbours per item.
    pub options: ReviewOptions,
}

impl Default for ReviewRequest {
    fn default() -> Self {
        Self {
            kind: ReviewKind::NearDuplicates,
            options: ReviewOptions::default(),
        }
    }
}

/// A finished queue.
#[derive(Debug, Clone)]
pub struct ReviewResult {
    /// What was asked for.
    pub request: ReviewRequest,
    /// The queue.
    pub queue: ReviewQueue,
    /// The cross-listing candidates it was built from (kept to rebuild at another threshold).
    pub candidates: Option<Arc<CrossNeighbours>>,
    /// The embeddings it was made from (a queue of another encoder is not reused).
    pub embeddings_fingerprint: String,
    /// Seconds it took.
    pub seconds: f64,
}

/// The inputs the worker takes from the session.
pub struct ReviewInputs {
    /// Embeddings.
    pub set: Arc<EmbeddingSet>,
    /// Their index.
    pub index: Arc<NeighbourIndex>,
    /// Each item's label-store key.
    pub item_keys: Arc<Vec<String>>,
    /// The judged pairs, by label-store keys.
    pub judged: Vec<(String, String)>,
    /// Candidates found before for the same embeddings and neighbours per item.
    pub candidates: Option<Arc<CrossNeighbours>>,
}

/// Builds the queue `request` asks for.
pub fn compute_review(
    inputs: ReviewInputs,
    request: ReviewRequest,
    progress: &dyn ProgressSink,
    cancel: &CancelFlag,
) -> Result<ReviewResult, String> {
    let started = Instant::now();
    let set = &inputs.set;
    let row_of: HashMap<&str, usize> = inputs
        .item_keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.as_str(), i))
        .collect();
    let judged: HashSet<(usize, usize)> = inputs
        .judged
        .iter()
        .filter_map(|(a, b)| {
            let (a, b) = (*row_of.get(a.as_str())?, *row_of.get(b.as_str())?);
            Some((a.min(b), a.max(b)))
        })
        .collect();
    let is_judged = |a: usize, b: usize| judged.contains(&(a.min(b), a.max(b)));
    let listing = listing_numbers(&set.items);
    let input = ReviewInput {
        matrix: &set.matrix,
        listing: &listing,
        neighbours: inputs.index.as_ref(),
        judged: &is_judged,
    };
    let mut observer = JobObserver::new(progress, cancel);
    let needs_candidates = matches!(
        request.kind,
        ReviewKind::NearDuplicates | ReviewKind::HardPairs
    );
    let candidates = match (needs_candidates, inputs.candidates) {
        (false, kept) => kept,
        (true, Some(kept)) => Some(kept),
        (true, None) => Some(Arc::new(
            cross_listing_neighbours(&input, request.options.neighbours, &mut observer)
                .map_err(describe)?,
        )),
    };
    let queue = review_queue(
        request.kind,
        &input,
        &request.options,
        candidates.as_deref(),
        &mut observer,
    )
    .map_err(describe)?;
    Ok(ReviewResult {
        request,
        queue,
        candidates,
        embeddings_fingerprint: set.meta.embeddings_fingerprint.clone(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn describe(e: AnalysisError) -> String {
    match e {
        AnalysisError::Cancelled => "cancelled".into(),
        e => e.to_string(),
    }
}
