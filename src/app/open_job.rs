//! The work of opening a dataset: load → embed (or reuse) → index (or reload) → thumbnails →
//! label store. Runs on a worker thread (see [`super::jobs`]) and stops between batches when
//! cancelled.

use super::session::Session;
use crate::dataset::{decode_rgb, load_dataset};
use crate::encoder::{square_resize, EncoderSpec};
use crate::index::HnswParams;
use crate::jobs::{CancelFlag, Progress, ProgressSink};
use crate::labels::LabelStore;
use crate::pipeline::{embed_dataset, ensure_index, EmbedRequest};
use crate::workspace::Workspace;
use rayon::prelude::*;

/// Side of the gallery thumbnails in pixels.
pub const THUMBNAIL_PX: u32 = 64;

/// Thumbnails decoded (in parallel) between two progress reports.
const THUMBNAIL_CHUNK: usize = 256;

/// Opens `path` with the encoder `spec` (`None`: the default for the dataset, see
/// [`default_encoder_for`](crate::catalogue::default_encoder_for)): the work of a
/// [`JobKind::Open`](super::JobKind) job.
pub fn open_dataset(
    path: &std::path::Path,
    spec: Option<EncoderSpec>,
    progress: &dyn ProgressSink,
    cancel: &CancelFlag,
) -> Result<Session, String> {
    let dataset = load_dataset(path).map_err(|e| e.to_string())?;
    let spec = spec.unwrap_or_else(|| crate::catalogue::default_encoder_for(&dataset));
    let workspace = Workspace::for_dataset(&dataset, None);
    let request = EmbedRequest {
        spec,
        batch_size: None,
        force_cpu: false,
    };
    let (set, report) = embed_dataset(&dataset, &workspace, &request, progress, cancel)
        .map_err(|e| e.to_string())?;
    let (index, _) = ensure_index(&workspace, &set, HnswParams::default(), progress, cancel)
        .map_err(|e| e.to_string())?;
    let total = set.items.len();
    let mut thumbnails = Vec::with_capacity(total);
    for chunk in set.items.chunks(THUMBNAIL_CHUNK) {
        if cancel.is_cancelled() {
            return Err("cancelled".into());
        }
        progress.report(Progress {
            phase: "thumbnails".into(),
            done: thumbnails.len(),
            total,
        });
        thumbnails.par_extend(
            chunk
                .par_iter()
                .map(|item| thumbnail_of(&dataset.item_path(item))),
        );
    }
    let labels = LabelStore::open(&workspace.labels_path()).map_err(|e| e.to_string())?;
    Ok(Session::new(
        dataset,
        workspace,
        set,
        index,
        thumbnails,
        report.skipped,
        Some(labels),
    ))
}

/// A square thumbnail of an image file (`None` if it cannot be decoded).
pub fn thumbnail_of(path: &std::path::Path) -> Option<egui::ColorImage> {
    decode_rgb(path, THUMBNAIL_PX)
        .map(|rgb| square_resize(&rgb, THUMBNAIL_PX))
        .map(|rgb| {
            egui::ColorImage::from_rgb([THUMBNAIL_PX as usize, THUMBNAIL_PX as usize], rgb.as_raw())
        })
        .ok()
}
