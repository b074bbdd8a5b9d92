//! The background job that opens a dataset: load → embed (or reuse) → index (or reload) →
//! thumbnails. Runs on a named worker thread, reports progress over a channel, asks the UI to
//! repaint, and stops between batches when cancelled.

use super::session::Session;
use crate::dataset::{decode_rgb, load_dataset};
use crate::encoder::{square_resize, EncoderSpec};
use crate::index::HnswParams;
use crate::jobs::{CancelFlag, Progress, ProgressSink};
use crate::pipeline::{embed_dataset, ensure_index, EmbedRequest};
use crate::workspace::Workspace;
use rayon::prelude::*;
use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver, Sender};

/// Side of the gallery thumbnails in pixels.
pub const THUMBNAIL_PX: u32 = 64;

/// Thumbnails decoded (in parallel) between two progress reports.
const THUMBNAIL_CHUNK: usize = 256;

/// What the worker sends to the UI.
pub enum JobMessage {
    /// Progress of the current phase.
    Progress(Progress),
    /// The dataset is open.
    Done(Box<Session>),
    /// The job failed (one line, naming the file) or was cancelled.
    Failed(String),
}

/// A running job: its messages and its cancel flag.
pub struct JobHandle {
    /// Messages from the worker.
    pub messages: Receiver<JobMessage>,
    /// Set to stop the worker.
    pub cancel: CancelFlag,
    /// What the job does, for the status bar.
    pub title: String,
}

struct ChannelProgress {
    sender: Sender<JobMessage>,
    ctx: egui::Context,
}

impl ProgressSink for ChannelProgress {
    fn report(&self, progress: Progress) {
        let _ = self.sender.send(JobMessage::Progress(progress));
        self.ctx.request_repaint();
    }
}

/// Starts opening `path` with the encoder `spec` on a worker thread.
pub fn start_open(path: PathBuf, spec: EncoderSpec, ctx: &egui::Context) -> JobHandle {
    let (sender, messages) = channel();
    let cancel = CancelFlag::new();
    let title = format!("opening {}", path.display());
    let worker_cancel = cancel.clone();
    let worker_ctx = ctx.clone();
    let spawned = std::thread::Builder::new()
        .name("natview-open".into())
        .spawn(move || {
            let progress = ChannelProgress {
                sender: sender.clone(),
                ctx: worker_ctx.clone(),
            };
            let message = match open(&path, spec, &progress, &worker_cancel) {
                Ok(session) => JobMessage::Done(Box::new(session)),
                Err(e) => JobMessage::Failed(e),
            };
            let _ = sender.send(message);
            worker_ctx.request_repaint();
        });
    if let Err(e) = spawned {
        let (failed_sender, failed) = channel();
        let _ = failed_sender.send(JobMessage::Failed(format!("cannot start a worker: {e}")));
        return JobHandle {
            messages: failed,
            cancel,
            title,
        };
    }
    JobHandle {
        messages,
        cancel,
        title,
    }
}

fn open(
    path: &std::path::Path,
    spec: EncoderSpec,
    progress: &ChannelProgress,
    cancel: &CancelFlag,
) -> Result<Session, String> {
    let dataset = load_dataset(path).map_err(|e| e.to_string())?;
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
        thumbnails.par_extend(chunk.par_iter().map(|item| {
            decode_rgb(&dataset.item_path(item), THUMBNAIL_PX)
                .map(|rgb| square_resize(&rgb, THUMBNAIL_PX))
                .map(|rgb| {
                    egui::ColorImage::from_rgb(
                        [THUMBNAIL_PX as usize, THUMBNAIL_PX as usize],
                        rgb.as_raw(),
                    )
                })
                .ok()
        }));
    }
    Ok(Session::new(
        dataset,
        workspace,
        set,
        index,
        thumbnails,
        report.skipped,
    ))
}
