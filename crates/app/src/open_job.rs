//! The work of opening a dataset: load → (preview) → embed (or reuse) → index (or reload) →
//! thumbnail file (or reuse) → label store. Runs on a worker thread (see [`super::jobs`]) and
//! stops between batches when cancelled. As soon as the dataset is scanned it hands the window a
//! preview, so the gallery shows while the rest runs.

use super::session::Session;
use natview_core::dataset::{decode_rgb_covering, load_dataset};
use natview_core::jobs::{CancelFlag, ProgressSink};
use natview_encoder::{square_resize, EncoderSpec};
use natview_index::HnswParams;
use natview_labels::LabelStore;
use natview_pipeline::thumbs::ThumbnailSource;
use natview_pipeline::PipelineError;
use natview_pipeline::{embed_dataset, ensure_shared_index, ensure_thumbnails, RunSettings};
use std::sync::{Arc, Mutex};

/// Side of the gallery thumbnails in pixels.
pub const THUMBNAIL_PX: u32 = natview_pipeline::thumbs::THUMBNAIL_PX;

/// Where an open job leaves its preview session for the window to take (built on the worker:
/// at a million items that is a second of work the window must not do in a frame).
pub type PreviewSlot = Arc<Mutex<Option<Session>>>;

/// Opens `path` with the encoder `spec` (`None`: the default for the dataset, see
/// [`default_encoder_for`](natview_train::catalogue::default_encoder_for)): the work of a
/// [`JobKind::Open`](super::JobKind) job. A preview session goes into `preview` (if given)
/// once the dataset is scanned.
pub fn open_dataset(
    path: &std::path::Path,
    spec: Option<EncoderSpec>,
    run: &RunSettings,
    preview: Option<&PreviewSlot>,
    progress: &dyn ProgressSink,
    cancel: &CancelFlag,
) -> Result<Session, String> {
    progress.report(natview_core::jobs::Progress {
        phase: "scanning".into(),
        done: 0,
        total: 1,
    });
    let dataset = Arc::new(load_dataset(path).map_err(|e| e.to_string())?);
    let spec = match spec {
        Some(spec) => spec,
        // The dataset's default, in the precision the command line asked for.
        None => run.in_precision(
            natview_train::catalogue::default_encoder_for(&dataset).map_err(|e| e.to_string())?,
        ),
    };
    let workspace = run.workspace_for(&dataset);
    if let Some(slot) = preview {
        let session = Session::preview(dataset.clone(), workspace.clone(), spec.clone());
        *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(session);
    }
    let request = run.embed_request(spec);
    let (set, report) = embed_dataset(&dataset, &workspace, &request, progress, cancel)
        .map_err(|e| e.to_string())?;
    let set = Arc::new(set);
    let (index, index_report) =
        ensure_shared_index(&workspace, &set, HnswParams::default(), progress, cancel)
            .map_err(|e| e.to_string())?;
    let thumbnails = match ensure_thumbnails(&dataset, &workspace, &set, progress, cancel) {
        Ok(store) => ThumbnailSource::Store(Arc::new(store)),
        Err(PipelineError::Cancelled) => return Err("cancelled".into()),
        // The thumbnail file could not be written (e.g. a read-only workspace): decode the
        // image files on demand instead.
        Err(_) => ThumbnailSource::Files(Arc::new(
            set.items.iter().map(|i| dataset.item_path(i)).collect(),
        )),
    };
    // A store that cannot be opened (damaged, locked) is left as it is: the dataset opens
    // without labels and the window says why.
    let (labels, labels_error) = match LabelStore::open(&workspace.labels_path()) {
        Ok(store) => (Some(store), None),
        Err(e) => (None, Some(format!("labels unavailable: {e}"))),
    };
    let notices: Vec<String> = [
        report
            .stale_reason
            .map(|reason| format!("embeddings recomputed ({reason})")),
        index_report
            .rebuilt_because
            .map(|reason| format!("index rebuilt ({reason})")),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut session = Session::new(
        dataset,
        workspace,
        set,
        Some(Arc::new(index)),
        thumbnails,
        report.skipped,
        labels,
    );
    session.open_notes = notices;
    session.text_search = natview_encoder::TextEncoder::availability(&session.set.meta.encoder);
    if let Some(done) = report.resumed_from {
        session.open_notes.push(format!(
            "continued the stopped embedding run from image {done} of {}",
            session.dataset.items.len()
        ));
    }
    session.open_notes.extend(report.warnings);
    session.open_error = labels_error;
    Ok(session)
}

/// A square thumbnail of an image file (`None` if it cannot be decoded).
pub fn thumbnail_of(path: &std::path::Path) -> Option<egui::ColorImage> {
    decode_rgb_covering(path, THUMBNAIL_PX, THUMBNAIL_PX)
        .map(|decoded| square_resize(&decoded.image, THUMBNAIL_PX))
        .map(|rgb| {
            egui::ColorImage::from_rgb([THUMBNAIL_PX as usize, THUMBNAIL_PX as usize], rgb.as_raw())
        })
        .ok()
}
