//! The Diff view's job: the open dataset embedded with two encoders (their embeddings in the
//! workspace reused, else computed), compared item by item and listing by listing
//! ([`natview_train::diff_run`]), both layouts brought into one frame, and the regressed
//! listings made into a review queue. The embeddings themselves are not kept (at a million
//! images each set is gigabytes).

use crate::work::JobInputs;
use natview_analysis::diff::{DiffParams, EncoderDiff};
use natview_analysis::layout::JobObserver;
use natview_analysis::projection::ProjectionMethod;
use natview_analysis::review::{regressed_queue, ReviewQueue};
use natview_core::jobs::{CancelFlag, Progress, ProgressSink};
use natview_encoder::EncoderSpec;
use natview_pipeline::embed_dataset;
use natview_train::diff_run::{aligned_layouts, AlignedLayouts, DiffRun};
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
    /// Both layouts in A's frame; the reason when they could not be made.
    pub layouts: Result<AlignedLayouts, String>,
    /// The regressed listings' views as a review queue (rows of the open session); `None`
    /// when the diff's images are not the session's.
    pub regressed: Option<ReviewQueue>,
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

/// Embeds with `from` and `to` (named `names`), diffs them and lays both out with `method`.
pub fn compute_diff(
    inputs: &JobInputs,
    (from, to): (&EncoderSpec, &EncoderSpec),
    names: (String, String),
    method: ProjectionMethod,
    progress: &dyn ProgressSink,
    cancel: &CancelFlag,
) -> Result<DiffResult, String> {
    let started = Instant::now();
    let total = 4;
    let mut sets = Vec::new();
    for (i, spec) in [from, to].into_iter().enumerate() {
        progress.report(Progress {
            phase: format!(
                "embedding with {}",
                if i == 0 { &names.0 } else { &names.1 }
            ),
            done: i,
            total,
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
    progress.report(Progress {
        phase: "comparing neighbourhoods".into(),
        done: 2,
        total,
    });
    let (Some(b), Some(a)) = (sets.pop(), sets.pop()) else {
        return Err("an embedding run returned nothing".into());
    };
    let run = DiffRun::new((a, b), names, to.weights.as_deref(), DiffParams::default())
        .map_err(|e| e.to_string())?;
    let same_rows = run.a.items.iter().map(|i| &i.path).eq(inputs
        .set
        .items
        .iter()
        .map(|i| &i.path));
    let regressed = same_rows
        .then(|| {
            // Every pair: the Review view shows as many as its limit asks.
            regressed_queue(&run.diff, &run.a.matrix, &run.b.matrix, usize::MAX)
        })
        .transpose()
        .map_err(|e| e.to_string())?;
    progress.report(Progress {
        phase: format!("{} layouts", method.label()),
        done: 3,
        total,
    });
    let mut observer = JobObserver::new(progress, cancel);
    let layouts =
        aligned_layouts(&run, &inputs.workspace, method, &mut observer).map_err(|e| e.to_string());
    if cancel.is_cancelled() {
        return Err("cancelled".into());
    }
    let DiffRun {
        from,
        to,
        diff,
        listing_names,
        heldout,
        ..
    } = run;
    Ok(DiffResult {
        from,
        to,
        diff,
        listing_names,
        heldout,
        layouts,
        regressed,
        seconds: started.elapsed().as_secs_f64(),
    })
}
