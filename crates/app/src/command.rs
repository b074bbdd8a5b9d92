//! The commands the views send, and the one place where they change the app's state.

use super::{FinetuneSettings, JobKind, NatviewApp, Session, View};
use natview_analysis::QuadrantParams;
use natview_encoder::EncoderSpec;
use natview_labels::{export_labels, ExportFormat, Verdict};
use std::path::PathBuf;

/// Something the user asked for; views push commands, [`NatviewApp::apply`] carries them out.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Open a dataset (folder or manifest).
    Open(PathBuf),
    /// Embed the open dataset with another encoder (or reuse its embeddings) and switch to it.
    UseEncoder(EncoderSpec),
    /// Open a weights file (a PyTorch checkpoint or safetensors) as the encoder: natview works
    /// out the network, says what it found, remembers it for the dataset and embeds with it.
    OpenEncoder(PathBuf),
    /// Find the neighbours of an image file from outside the dataset.
    QueryImage(PathBuf),
    /// Rank the dataset by a text through the encoder's text tower.
    SearchText(String),
    /// Forget the text search (the Gallery shows every listing again).
    ClearTextSearch,
    /// Select an item and show its neighbours.
    Select(usize),
    /// Ask this neighbour backend (a Milvus collection) from now on; `None`: the in-process
    /// index.
    SetNeighbourBackend(Option<super::backend_job::NeighbourBackend>),
    /// Show only these items in the gallery (`None`: all of them).
    SetGallerySubset(Option<Vec<usize>>),
    /// Stop a running job.
    CancelJob(JobKind),
    /// Show a view.
    ShowView(View),
    /// Hide the error message.
    DismissError,
    /// Hide the notice.
    DismissNotice,
    /// Compute a quadrant chart.
    ComputeQuadrant(QuadrantParams),
    /// Export the current quadrant chart as PNG (`None`: into the workspace).
    ExportQuadrant(Option<PathBuf>),
    /// Write the shareable HTML report of the current encoder (with the last diff, when its B
    /// is the current encoder) to this file.
    ExportReport(PathBuf),
    /// Compute (or reopen) the 2-D layout made as the spec says.
    ComputeProjection(natview_analysis::projection::ProjectionSpec),
    /// Evaluate the model and the pixel baseline.
    ComputeMetrics,
    /// Run the augmentation-shortcut probe of the current encoder.
    ComputeShortcut,
    /// Measure how well the current projection keeps each point's neighbours.
    ComputeFaithfulness,
    /// Compare two encoders of the open dataset (by workspace key).
    ComputeDiff {
        /// Encoder A (before).
        from: String,
        /// Encoder B (after).
        to: String,
        /// How both are laid out for the aligned scatter.
        layout: natview_analysis::projection::ProjectionMethod,
    },
    /// Build a review queue.
    ComputeReview(super::review_job::ReviewRequest),
    /// Open the Review view on the last diff's regressed listings.
    ReviewRegressed,
    /// Add or remove a tag on an item.
    ToggleTag {
        /// The item.
        item: usize,
        /// The tag.
        tag: String,
    },
    /// Set (or, when blank, remove) the note on an item.
    SetNote {
        /// The item.
        item: usize,
        /// The note.
        note: String,
    },
    /// Record (or clear) a verdict on a pair of items.
    SetVerdict {
        /// The query item.
        query: usize,
        /// The neighbour.
        neighbour: usize,
        /// The verdict, or `None` to clear it.
        verdict: Option<Verdict>,
    },
    /// Add (or remove) a tag on many items at once (a selection, a filter result, a cluster).
    TagMany {
        /// The items.
        items: Vec<usize>,
        /// The tag.
        tag: String,
        /// Add (else remove).
        add: bool,
    },
    /// Undo the last label change of this session.
    UndoLabel,
    /// Rename the tag bound to a key (1–9).
    RenameTagKey {
        /// The key.
        key: usize,
        /// The new tag name.
        name: String,
    },
    /// Export the labels into the workspace.
    ExportLabels(ExportFormat),
    /// Fine-tune an encoder on the open dataset.
    StartFinetune(Box<FinetuneSettings>),
    /// Switch back to the encoder used before the current one.
    FlipEncoder,
}

impl NatviewApp {
    /// Embeds the open dataset with `spec` (or reuses its embeddings) and switches to it,
    /// remembering the encoder it replaces for [`Command::FlipEncoder`].
    pub(super) fn use_encoder(&mut self, ctx: &egui::Context, spec: EncoderSpec) {
        self.spec_chosen = true;
        if spec != self.spec {
            self.previous_spec = Some(std::mem::replace(&mut self.spec, spec));
        }
        if let Some(path) = self.state.dataset.clone() {
            self.open(ctx, path);
        }
    }

    /// [`Command::OpenEncoder`]: reads what the file holds (its pickle and tensor shapes, not
    /// the values: milliseconds), then embeds with it as [`Command::UseEncoder`] does, on a
    /// worker.
    pub(super) fn open_encoder(&mut self, ctx: &egui::Context, path: &std::path::Path) {
        let spec = match natview_train::catalogue::spec_for_weights(path) {
            Ok(spec) => spec,
            Err(e) => {
                self.error = Some(e.to_string());
                return;
            }
        };
        if spec.model == natview_encoder::ModelKind::Checkpoint {
            if let Ok(info) = natview_encoder::checkpoint::inspect(path, None) {
                self.notice = Some(format!(
                    "encoder: {}; preprocessing: {}",
                    info.summary, info.preprocessing
                ));
            }
        }
        if let Some(session) = &self.session {
            if let Err(e) = natview_train::catalogue::remember_checkpoint(&session.workspace, &spec)
            {
                self.error = Some(format!("could not remember the checkpoint: {e}"));
            }
        }
        self.use_encoder(ctx, spec);
    }

    /// Runs a change on the label store; a change it returns goes on the undo stack.
    fn with_labels(
        &mut self,
        change: impl FnOnce(
            &mut natview_labels::LabelStore,
            &Session,
        ) -> Result<Option<natview_labels::LabelChange>, String>,
    ) {
        let Some(session) = &mut self.session else {
            return;
        };
        let Some(mut store) = session.labels.take() else {
            self.error = Some("the label store is not open".into());
            return;
        };
        match change(&mut store, session) {
            Ok(Some(done)) => session.label_undo.push(done),
            Ok(None) => {}
            Err(e) => self.error = Some(e),
        }
        session.labels = Some(store);
    }

    /// Applies one command.
    pub(super) fn apply(&mut self, ctx: &egui::Context, command: Command) {
        match command {
            Command::Open(path) => self.open(ctx, path),
            Command::UseEncoder(spec) => self.use_encoder(ctx, spec),
            Command::OpenEncoder(path) => self.open_encoder(ctx, &path),
            Command::FlipEncoder => {
                if let Some(previous) = self.previous_spec.clone() {
                    self.use_encoder(ctx, previous);
                }
            }
            Command::StartFinetune(settings) => self.start_finetune(ctx, *settings),
            Command::QueryImage(path) => self.start_query(ctx, path),
            Command::SearchText(text) => self.start_text_query(ctx, text),
            Command::ClearTextSearch => {
                if let Some(session) = &mut self.session {
                    session.text_matches = None;
                }
            }
            Command::Select(item) => {
                if let Some(session) = &mut self.session {
                    if let Err(e) = session.select(item) {
                        self.error = Some(e);
                    }
                }
                self.start_backend_query(ctx, item);
            }
            Command::SetNeighbourBackend(backend) => self.set_neighbour_backend(ctx, backend),
            Command::SetGallerySubset(subset) => self.views.gallery.set_subset(subset),
            Command::CancelJob(kind) => self.jobs.cancel(kind),
            Command::ShowView(view) => self.state.view = view,
            Command::DismissError => self.error = None,
            Command::DismissNotice => self.notice = None,
            Command::ComputeQuadrant(params) => self.start_quadrant(ctx, params),
            Command::ExportQuadrant(out) => self.start_export(ctx, out),
            Command::ExportReport(out) => self.start_report(ctx, out),
            Command::ComputeProjection(spec) => self.start_projection(ctx, spec),
            Command::ComputeMetrics => self.start_metrics(ctx),
            Command::ComputeDiff { from, to, layout } => self.start_diff(ctx, from, to, layout),
            Command::ComputeShortcut => self.start_shortcut(ctx),
            Command::ComputeFaithfulness => self.start_faithfulness(ctx),
            Command::ComputeReview(request) => self.start_review(ctx, request),
            Command::ReviewRegressed => {
                self.views.review.request.kind = natview_analysis::review::ReviewKind::Regressed;
                self.views.review.queue_arrived();
                self.state.view = View::Review;
                let request = self.views.review.request;
                self.start_review(ctx, request);
            }
            Command::ToggleTag { item, tag } => self.with_labels(|store, session| {
                store
                    .toggle_tag(session.item_ref(item), &tag)
                    .map(Some)
                    .map_err(|e| e.to_string())
            }),
            Command::TagMany { items, tag, add } => {
                self.with_labels(|store, session| {
                    let refs: Vec<_> = items.iter().map(|&i| session.item_ref(i)).collect();
                    store
                        .set_tag_on(&refs, &tag, add)
                        .map(Some)
                        .map_err(|e| e.to_string())
                });
                if let Some(done) = self.session.as_ref().and_then(|s| s.label_undo.last()) {
                    self.notice = Some(format!("{} (Ctrl+Z undoes)", done.describe()));
                }
            }
            Command::UndoLabel => {
                let Some(change) = self.session.as_mut().and_then(|s| s.label_undo.pop()) else {
                    self.notice = Some("nothing to undo".into());
                    return;
                };
                let described = change.describe();
                let before = self.error.clone();
                self.error = None;
                self.with_labels(|store, _| {
                    store.undo(&change).map(|_| None).map_err(|e| e.to_string())
                });
                if self.error.is_some() {
                    // Not undone (e.g. the store was locked): keep it to try again.
                    if let Some(session) = self.session.as_mut() {
                        session.label_undo.push(change);
                    }
                } else {
                    self.error = before;
                    self.notice = Some(format!("undone: {described}"));
                }
            }
            Command::SetNote { item, note } => self.with_labels(|store, session| {
                store
                    .set_note(session.item_ref(item), &note)
                    .map(|()| None)
                    .map_err(|e| e.to_string())
            }),
            Command::SetVerdict {
                query,
                neighbour,
                verdict,
            } => self.with_labels(|store, session| {
                store
                    .set_verdict(
                        session.item_ref(query),
                        session.item_ref(neighbour),
                        verdict,
                        session.similarity(query, neighbour),
                    )
                    .map(Some)
                    .map_err(|e| e.to_string())
            }),
            Command::RenameTagKey { key, name } => self.with_labels(|store, _| {
                store
                    .rename_tag_key(key, &name)
                    .map(|()| None)
                    .map_err(|e| e.to_string())
            }),
            Command::ExportLabels(format) => {
                let Some(session) = &self.session else { return };
                let Some(store) = &session.labels else { return };
                let out = session
                    .workspace
                    .dir()
                    .join(format!("labels.{}", format.extension()));
                match export_labels(store, format, &out) {
                    Ok(n) => self.notice = Some(format!("{n} label(s) → {}", out.display())),
                    Err(e) => self.error = Some(e.to_string()),
                }
            }
        }
    }
}
