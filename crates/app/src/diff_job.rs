//! The Diff view's job: the open dataset embedded with two encoders (their embeddings in the
//! workspace reused, else computed) and compared item by item and listing by listing
//! (`natview_analysis::diff`).

use crate::work::JobInputs;
use natview_analysis::diff::{encoder_diff, DiffParams, EncoderDiff};
use natview_core::jobs::{CancelFlag, Progress, ProgressSink};
use natview_encoder::EncoderSpec;
use natview_pipeline::embed_dataset;
use std::collections::HashSet;
use std::time::Instant;

/// A finished diff.
#[derive(Debug, Clone)]
pub struct DiffResult {
    /// Encoder A's name (its workspace key).
    pub from: String,
    /// Encoder B's name.
    pub to: String,
    /// The comparison.
    pub diff: EncoderDiff,
    /// Each dense listing number's name.
    pub listing_names: Vec<String>,
    /// Listings B's weights record as held out (never trained on).
    pub heldout: HashSet<String>,
    /// Seconds it took (embedding included).
    pub seconds: f64,
}

impl DiffResult {
    /// Whether listing number `listing` was held out from B's training.
    pub fn held_out(&self, listing: usize) -> bool {
        self.listing_names
            .get(listing)
            .is_some_and(|name| self.heldout.contains(name))
    }
}

/// Embeds with `from` and `to` (named `names`) and diffs them.
pub fn compute_diff(
    inputs: &JobInputs,
    (from, to): (&EncoderSpec, &EncoderSpec),
    names: (String, String),
    progress: &dyn ProgressSink,
    cancel: &CancelFlag,
) -> Result<DiffResult, String> {
    let started = Instant::now();
    let mut sets = Vec::new();
    for (i, spec) in [from, to].into_iter().enumerate() {
        progress.report(Progress {
            phase: format!(
                "embedding with {}",
                if i == 0 { &names.0 } else { &names.1 }
            ),
            done: i,
            total: 3,
        });
        let request = inputs.run.embed_request(spec.clone());
        let (set, _) = embed_dataset(
            &inputs.dataset,
            &inputs.workspace,
            &request,
            progress,
            cancel,
        )
        .map_err(|e| e.to_string())?;
        sets.push(set);
    }
    if cancel.is_cancelled() {
        return Err("cancelled".into());
    }
    let (a, b) = (&sets[0], &sets[1]);
    if a.items
        .iter()
        .map(|i| &i.path)
        .ne(b.items.iter().map(|i| &i.path))
    {
        return Err(format!(
            "{} and {} embedded different images (a file was skipped by one of them)",
            names.0, names.1
        ));
    }
    progress.report(Progress {
        phase: "comparing neighbourhoods".into(),
        done: 2,
        total: 3,
    });
    let listings = natview_analysis::listing_numbers(&a.items);
    let mut listing_names = vec![String::new(); listings.iter().max().map_or(0, |m| m + 1)];
    for (item, &l) in a.items.iter().zip(&listings) {
        if listing_names[l].is_empty() {
            listing_names[l] = item.listing.clone();
        }
    }
    let diff = encoder_diff(&a.matrix, &b.matrix, &listings, DiffParams::default())
        .map_err(|e| e.to_string())?;
    let heldout = to
        .weights
        .as_deref()
        .map(natview_train::checkpoint::heldout_listings)
        .unwrap_or_default();
    Ok(DiffResult {
        from: names.0,
        to: names.1,
        diff,
        listing_names,
        heldout,
        seconds: started.elapsed().as_secs_f64(),
    })
}
