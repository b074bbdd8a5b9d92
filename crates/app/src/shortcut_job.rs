//! The augmentation-shortcut probe of the current encoder, on a worker
//! (`natview_train::shortcut`): about a thousand images embedded, so it runs when asked.

use crate::work::JobInputs;
use natview_core::jobs::{CancelFlag, Progress, ProgressSink};
use natview_encoder::{choose_device, Encoder};
use natview_train::shortcut::{shortcut_probe, ShortcutParams, ShortcutReport};

/// A finished probe and the encoder it ran on.
#[derive(Debug, Clone)]
pub struct ShortcutResult {
    /// The encoder's workspace key.
    pub encoder: String,
    /// The report.
    pub report: ShortcutReport,
}

/// Runs the probe with the encoder of the open embeddings.
pub fn compute_shortcut(
    inputs: &JobInputs,
    progress: &dyn ProgressSink,
    cancel: &CancelFlag,
) -> Result<ShortcutResult, String> {
    let spec = &inputs.set.meta.encoder;
    progress.report(Progress {
        phase: "augmenting and embedding sampled listings".into(),
        done: 0,
        total: 1,
    });
    let encoder =
        Encoder::new(spec, &choose_device(inputs.run.force_cpu)).map_err(|e| e.to_string())?;
    let report = shortcut_probe(&inputs.dataset, &encoder, ShortcutParams::default())
        .map_err(|e| e.to_string())?;
    if cancel.is_cancelled() {
        return Err("cancelled".into());
    }
    Ok(ShortcutResult {
        encoder: spec.workspace_key(),
        report,
    })
}
