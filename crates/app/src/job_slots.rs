//! The app's job slots (at most one job of each kind), starting each kind of job with its
//! inputs, and taking what finished jobs hand back.

use super::finetune_job::{run_finetune, FinetuneOutcome, LiveTraining, SharedLiveTraining};
use super::{
    work, FinetuneSettings, Job, JobKind, JobPoll, JobStatus, MetricsResult, NatviewApp,
    ProjectionResult, QuadrantResult, Results, Session,
};
use crate::ui;
use natview_analysis::review::{ReviewKind, ReviewQueue};
use natview_analysis::QuadrantParams;
use std::path::PathBuf;

/// The running jobs, at most one of each kind.
#[derive(Default)]
pub(super) struct Jobs {
    pub(super) open: Option<Job<Session>>,
    /// Where the running open job leaves its preview (replaced when one starts).
    pub(super) open_preview: super::open_job::PreviewSlot,
    quadrant: Option<Job<QuadrantResult>>,
    export: Option<Job<String>>,
    projection: Option<Job<ProjectionResult>>,
    /// Where the running projection job leaves its layout so far (replaced when one starts).
    projection_frames: super::LayoutFrames,
    pub(super) metrics: Option<Job<MetricsResult>>,
    query: Option<Job<work::QueryAnswer>>,
    finetune: Option<Job<FinetuneOutcome>>,
    review: Option<Job<super::review_job::ReviewResult>>,
    diff: Option<Job<super::DiffResult>>,
    shortcut: Option<Job<super::ShortcutResult>>,
    faithfulness: Option<Job<(u64, std::sync::Arc<Vec<f32>>)>>,
    /// The neighbour backend's answer for the selected item.
    pub(super) backend: Option<Job<super::backend_job::BackendAnswer>>,
    /// What the running fine-tune has done so far (replaced when one starts).
    finetune_live: SharedLiveTraining,
}

impl Jobs {
    fn status(&self, kind: JobKind) -> Option<JobStatus> {
        match kind {
            JobKind::Open => self.open.as_ref().map(|j| j.status(kind)),
            JobKind::Quadrant => self.quadrant.as_ref().map(|j| j.status(kind)),
            JobKind::Export => self.export.as_ref().map(|j| j.status(kind)),
            JobKind::Projection => self.projection.as_ref().map(|j| j.status(kind)),
            JobKind::Metrics => self.metrics.as_ref().map(|j| j.status(kind)),
            JobKind::Query => self.query.as_ref().map(|j| j.status(kind)),
            JobKind::Finetune => self.finetune.as_ref().map(|j| j.status(kind)),
            JobKind::Review => self.review.as_ref().map(|j| j.status(kind)),
            JobKind::Backend => self.backend.as_ref().map(|j| j.status(kind)),
            JobKind::Diff => self.diff.as_ref().map(|j| j.status(kind)),
            JobKind::Shortcut => self.shortcut.as_ref().map(|j| j.status(kind)),
            JobKind::Faithfulness => self.faithfulness.as_ref().map(|j| j.status(kind)),
        }
    }

    /// The status of the running job of `kind`, if one runs.
    pub(super) fn status_of(&self, kind: JobKind) -> Option<JobStatus> {
        self.status(kind)
    }

    /// The running jobs, as the status bar lists them.
    pub(super) fn statuses(&self) -> Vec<JobStatus> {
        JobKind::ALL
            .iter()
            .filter_map(|&kind| self.status(kind))
            .collect()
    }

    /// Stops a job. Dropping a job cancels it and its thread finishes on its own; a fine-tune
    /// is only asked to stop, so that it saves its checkpoint and reports how far it got.
    pub(super) fn cancel(&mut self, kind: JobKind) {
        match kind {
            JobKind::Open => self.open = None,
            JobKind::Quadrant => self.quadrant = None,
            JobKind::Export => self.export = None,
            JobKind::Projection => self.projection = None,
            JobKind::Metrics => self.metrics = None,
            JobKind::Query => self.query = None,
            JobKind::Review => self.review = None,
            JobKind::Backend => self.backend = None,
            JobKind::Diff => self.diff = None,
            JobKind::Shortcut => self.shortcut = None,
            JobKind::Faithfulness => self.faithfulness = None,
            JobKind::Finetune => {
                if let Some(job) = &self.finetune {
                    job.cancel();
                }
            }
        }
    }

    /// Stops the jobs that work on the open session's results.
    pub(super) fn cancel_analyses(&mut self) {
        for kind in JobKind::ALL {
            if kind.follows_session() {
                self.cancel(kind);
            }
        }
    }

    /// The live state of the running fine-tune, if one runs.
    pub(super) fn finetune_live(&self) -> Option<LiveTraining> {
        self.finetune.as_ref()?;
        let live = self.finetune_live.lock();
        Some(live.unwrap_or_else(|e| e.into_inner()).clone())
    }
}

/// An item selected in the session being replaced (the preview while the embeddings were
/// made, or the same dataset under another encoder) stays selected in the new one, with its
/// neighbours — so what the Neighbours panel shows, and where the tag keys go, stay the same.
fn carry_selection(old: Option<&Session>, new: &mut Session) {
    let Some(old) = old.filter(|o| o.dataset.source == new.dataset.source) else {
        return;
    };
    let Some(item) = old.selection.as_ref().and_then(|s| s.item()) else {
        return;
    };
    // Only when the id still names the same image.
    if new.item_keys.get(item).map(String::as_str) == old.item_keys.get(item).map(String::as_str) {
        let _ = new.select(item);
    }
}

/// Takes a finished job's outcome out of its slot.
fn poll_slot<T: Send + 'static>(slot: &mut Option<Job<T>>) -> Option<Result<T, String>> {
    let outcome = match slot.as_mut()?.poll() {
        JobPoll::Running => return None,
        JobPoll::Done(result) => Ok(result),
        JobPoll::Failed(error) => Err(error),
    };
    *slot = None;
    Some(outcome)
}

impl NatviewApp {
    fn job_inputs(&self) -> Option<work::JobInputs> {
        let session = self.session.as_ref().filter(|s| s.is_embedded());
        session.map(|s| work::JobInputs {
            set: s.set.clone(),
            dataset: s.dataset.clone(),
            workspace: s.workspace.clone(),
            run: self.run.clone(),
        })
    }

    pub(super) fn start_quadrant(&mut self, ctx: &egui::Context, params: QuadrantParams) {
        let Some(inputs) = self.job_inputs() else {
            return;
        };
        self.state.quadrant = params.clone();
        let title = format!(
            "quadrant chart {} × {}",
            params.listings.max(params.picked.len()),
            params
                .views
                .map_or_else(|| "auto".to_string(), |v| v.to_string())
        );
        self.jobs.quadrant = Some(Job::spawn("quadrant", title, ctx, move |progress, _| {
            work::compute_quadrant(&inputs.set, params, progress)
        }));
    }

    pub(super) fn start_projection(
        &mut self,
        ctx: &egui::Context,
        spec: natview_analysis::projection::ProjectionSpec,
    ) {
        let Some(inputs) = self.job_inputs() else {
            return;
        };
        let frames = super::LayoutFrames::default();
        self.jobs.projection_frames = frames.clone();
        self.jobs.projection = Some(Job::spawn(
            "projection",
            spec.method.label(),
            ctx,
            move |progress, cancel| {
                super::projection_job::compute_projection(
                    &inputs.set,
                    &inputs.workspace,
                    spec,
                    frames,
                    progress,
                    cancel,
                )
            },
        ));
    }

    pub(super) fn start_review(
        &mut self,
        ctx: &egui::Context,
        request: super::review_job::ReviewRequest,
    ) {
        let Some(session) = self.session.as_ref().filter(|s| s.is_embedded()) else {
            return;
        };
        if request.kind == ReviewKind::Regressed {
            // Made by the last encoder diff, not by a job of its own.
            let queue = self
                .results
                .diff
                .as_ref()
                .and_then(|d| d.regressed.clone())
                .map(|mut queue| {
                    queue.keep_first(request.options.limit);
                    queue
                })
                .unwrap_or_else(|| ReviewQueue {
                    kind: request.kind,
                    pairs: Vec::new(),
                    clusters: Vec::new(),
                    summary: "No encoder diff of this dataset yet: compare two encoders in the \
                              Diff view and the views of the listings B made worse are queued \
                              here"
                        .into(),
                    histogram: None,
                });
            self.results.review = Some(super::review_job::ReviewResult {
                request,
                queue,
                candidates: None,
                embeddings_fingerprint: session.set.meta.embeddings_fingerprint.clone(),
                seconds: 0.0,
            });
            return;
        }
        let Some(index) = session.index.clone() else {
            return;
        };
        // Candidates found before for these embeddings and neighbours per item are reused
        // (moving the threshold only regroups them).
        let candidates = self
            .results
            .review
            .as_ref()
            .filter(|r| {
                r.embeddings_fingerprint == session.set.meta.embeddings_fingerprint
                    && r.request.options.neighbours == request.options.neighbours
            })
            .and_then(|r| r.candidates.clone());
        let judged = session
            .labels
            .as_ref()
            .map(|store| {
                store
                    .verdicts()
                    .map(|(a, b, _)| (a.to_string(), b.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let inputs = super::review_job::ReviewInputs {
            set: session.set.clone(),
            index,
            item_keys: session.item_keys.clone(),
            judged,
            candidates,
        };
        self.jobs.review = Some(Job::spawn(
            "review",
            request.kind.label(),
            ctx,
            move |progress, cancel| {
                super::review_job::compute_review(inputs, request, progress, cancel)
            },
        ));
    }

    pub(super) fn start_metrics(&mut self, ctx: &egui::Context) {
        let Some(inputs) = self.job_inputs() else {
            return;
        };
        self.metrics_requested = true;
        self.jobs.metrics = Some(Job::spawn(
            "metrics",
            "metrics",
            ctx,
            move |progress, cancel| {
                work::compute_metrics(
                    &inputs.set,
                    &inputs.dataset,
                    &inputs.workspace,
                    &inputs.run,
                    progress,
                    cancel,
                )
            },
        ));
    }

    pub(super) fn start_diff(
        &mut self,
        ctx: &egui::Context,
        from: String,
        to: String,
        layout: natview_analysis::projection::ProjectionMethod,
    ) {
        let Some(inputs) = self.job_inputs() else {
            return;
        };
        let spec_of = |name: &str| {
            self.session.as_ref().and_then(|s| {
                s.encoders
                    .iter()
                    .find(|e| e.name == name)
                    .map(|e| e.spec.clone())
            })
        };
        let (Some(a), Some(b)) = (spec_of(&from), spec_of(&to)) else {
            self.error = Some(format!("diff: {from} or {to} is no longer on offer"));
            return;
        };
        let title = format!("diff {from} → {to}");
        self.jobs.diff = Some(Job::spawn("diff", title, ctx, move |progress, cancel| {
            super::diff_job::compute_diff(&inputs, (&a, &b), (from, to), layout, progress, cancel)
        }));
    }

    pub(super) fn start_faithfulness(&mut self, ctx: &egui::Context) {
        let (Some(inputs), Some(result)) = (self.job_inputs(), self.results.projection.as_ref())
        else {
            return;
        };
        let (id, points, grid) = (result.id, result.points.clone(), result.grid.clone());
        self.jobs.faithfulness = Some(Job::spawn(
            "faithfulness",
            "neighbourhood kept by the layout",
            ctx,
            move |progress, cancel| {
                let mut observer = natview_analysis::layout::JobObserver::new(progress, cancel);
                let graph = natview_analysis::knn::knn_graph(
                    &inputs.set.matrix,
                    crate::ui::FAITHFULNESS_K,
                    &mut observer,
                )
                .map_err(|e| e.to_string())?;
                let kept = natview_analysis::quality::point_faithfulness(&graph, &points, &grid)
                    .map_err(|e| e.to_string())?;
                Ok((id, std::sync::Arc::new(kept)))
            },
        ));
    }

    pub(super) fn start_shortcut(&mut self, ctx: &egui::Context) {
        let Some(inputs) = self.job_inputs() else {
            return;
        };
        self.jobs.shortcut = Some(Job::spawn(
            "shortcut",
            "augmentation-shortcut probe",
            ctx,
            move |progress, cancel| {
                super::shortcut_job::compute_shortcut(&inputs, progress, cancel)
            },
        ));
    }

    pub(super) fn start_export(&mut self, ctx: &egui::Context, out: Option<PathBuf>) {
        let (Some(session), Some(result)) = (&self.session, &self.results.quadrant) else {
            self.error = Some("no quadrant chart to export yet".into());
            return;
        };
        let out = out.unwrap_or_else(|| {
            session.workspace.dir().join(format!(
                "quadrant.{}.{}x{}.png",
                session.set.meta.encoder.model.name(),
                result.chart.listings.len(),
                result.chart.views
            ))
        });
        // The worker renders from its own copy of the chart.
        let (chart, range, model) = (result.chart.clone(), result.range, result.model.clone());
        let title = format!("exporting {}", out.display());
        self.jobs.export = Some(Job::spawn("export", title, ctx, move |_, _| {
            work::export_quadrant(&chart, range, &model, &out)
        }));
    }

    /// Writes the HTML report of the current encoder to `out` on the export slot; with the
    /// last diff's A as "before" when that diff's B is the current encoder.
    pub(super) fn start_report(&mut self, ctx: &egui::Context, out: PathBuf) {
        let (Some(inputs), Some(session)) = (self.job_inputs(), self.session.as_ref()) else {
            return;
        };
        let spec = session.set.meta.encoder.clone();
        let key = spec.workspace_key();
        let mut request = natview_report::ReportRequest::new(
            session.dataset.source.display().to_string(),
            (key.clone(), spec),
        );
        request.from = self
            .results
            .diff
            .as_ref()
            .filter(|d| d.to == key)
            .and_then(|d| session.encoders.iter().find(|e| e.name == d.from))
            .map(|e| (e.name.clone(), e.spec.clone()));
        let title = format!("report → {}", out.display());
        self.jobs.export = Some(Job::spawn("export", title, ctx, move |progress, cancel| {
            work::export_report(&inputs, &request, &out, progress, cancel)
        }));
    }

    pub(super) fn start_query(&mut self, ctx: &egui::Context, path: PathBuf) {
        let Some(session) = &self.session else {
            self.error = Some(format!(
                "{}: open a dataset before querying by image",
                path.display()
            ));
            return;
        };
        let meta = session.set.meta.clone();
        let force_cpu = self.run.force_cpu;
        let title = format!("embedding {}", path.display());
        self.jobs.query = Some(Job::spawn("query", title, ctx, move |_, _| {
            work::embed_image_query(path, &meta, force_cpu).map(work::QueryAnswer::Image)
        }));
    }

    /// Embeds `text` with the encoder's text tower on a worker, then ranks the dataset by it.
    pub(super) fn start_text_query(&mut self, ctx: &egui::Context, text: String) {
        let Some(session) = &self.session else {
            self.error = Some("open a dataset before searching by text".into());
            return;
        };
        if let Err(why) = &session.text_search {
            self.error = Some(format!("no text search: {why}"));
            return;
        }
        let text = text.trim().to_string();
        if text.is_empty() {
            return;
        }
        let spec = session.set.meta.encoder.clone();
        let cached = self.text_encoder.clone();
        let title = format!("embedding the text {text:?}");
        self.jobs.query = Some(Job::spawn("text query", title, ctx, move |_, _| {
            crate::text_search::embed_text_query(text, &spec, cached).map(work::QueryAnswer::Text)
        }));
    }

    pub(super) fn start_finetune(&mut self, ctx: &egui::Context, settings: FinetuneSettings) {
        let Some(inputs) = self.job_inputs() else {
            return;
        };
        if self.jobs.finetune.is_some() {
            self.error = Some("a fine-tune is already running (cancel it first)".into());
            return;
        }
        let live = SharedLiveTraining::default();
        let worker_live = live.clone();
        let title = format!(
            "fine-tuning {} ({} steps)",
            settings.from.workspace_key(),
            settings.steps
        );
        let job = Job::spawn("finetune", title, ctx, move |progress, cancel| {
            run_finetune(
                &inputs.dataset,
                &inputs.workspace,
                &inputs.run,
                settings,
                &worker_live,
                progress,
                cancel,
            )
        });
        self.jobs.finetune = Some(job);
        self.jobs.finetune_live = live;
    }

    /// Shows the preview of a dataset being opened (the open job only makes one when another
    /// dataset, or none, is open).
    fn take_open_preview(&mut self) {
        let preview = self
            .jobs
            .open_preview
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let Some(preview) = preview else {
            return;
        };
        self.jobs.cancel_analyses();
        // The encoder the dataset is being opened with, named from the start (not the one the
        // window started with).
        self.spec = preview.set.meta.encoder.clone();
        self.session = Some(preview);
        self.results = Results::default();
        self.metrics_requested = false;
        self.review_requested = false;
        self.views.gallery.set_subset(None);
        self.views.scatter = ui::ScatterState::default();
    }

    /// Takes what the workers sent: progress, results, errors.
    pub(super) fn poll_jobs(&mut self, ctx: &egui::Context) {
        if self.jobs.open.is_some() {
            self.take_open_preview();
        }
        match poll_slot(&mut self.jobs.open) {
            Some(Ok(mut session)) => {
                self.jobs.cancel_analyses();
                if let Some(error) = session.open_error.take() {
                    self.error = Some(error);
                }
                // The encoder the dataset opened with (its default, unless one was chosen).
                self.spec = session.set.meta.encoder.clone();
                carry_selection(self.session.as_ref(), &mut session);
                if !session.open_notes.is_empty() {
                    self.notice = Some(session.open_notes.join("; "));
                }
                self.session = Some(session);
                self.results = Results::default();
                self.metrics_requested = false;
                self.review_requested = false;
                self.views.gallery.set_subset(None);
                let spec = self.views.scatter.spec;
                self.views.scatter = ui::ScatterState::default();
                self.views.scatter.spec = spec;
                // The layout (PCA is quick; a saved UMAP / t-SNE reopens at once, a new one
                // streams in) and the quadrant chart: ready when their views open.
                self.start_projection(ctx, spec);
                // The quadrant chart needs two listings with several views; a flat folder (one
                // image per listing) has none, and its view says why when opened. The views
                // per listing are chosen from this dataset (those of the last one need not fit).
                let params = self.state.quadrant.clone();
                let chartable = self
                    .session
                    .as_ref()
                    .is_some_and(|s| s.quadrant_unavailable.is_none());
                if chartable {
                    self.start_quadrant(
                        ctx,
                        QuadrantParams {
                            picked: Vec::new(),
                            views: None,
                            ..params
                        },
                    );
                }
            }
            Some(Err(e)) => self.error = Some(e),
            None => {}
        }
        match poll_slot(&mut self.jobs.quadrant) {
            Some(Ok(result)) => self.results.quadrant = Some(result),
            Some(Err(e)) => self.error = Some(format!("quadrant chart: {e}")),
            None => {}
        }
        match poll_slot(&mut self.jobs.export) {
            Some(Ok(notice)) => self.notice = Some(notice),
            Some(Err(e)) => self.error = Some(e),
            None => {}
        }
        let frame = self
            .jobs
            .projection_frames
            .lock()
            .ok()
            .and_then(|mut f| f.take());
        if let Some(frame) = frame {
            if self.jobs.projection.is_some() {
                self.results.projection = Some(frame);
            }
        }
        match poll_slot(&mut self.jobs.projection) {
            Some(Ok(result)) => self.results.projection = Some(result),
            Some(Err(e)) if e == "cancelled" => {
                if let Some(p) = self
                    .results
                    .projection
                    .as_ref()
                    .filter(|p| p.partial.is_some())
                {
                    self.notice = Some(format!(
                        "{} stopped: showing the layout it had after {:.1} s",
                        p.spec.method.label(),
                        p.duration_secs
                    ));
                }
            }
            Some(Err(e)) => self.error = Some(format!("projection: {e}")),
            None => {}
        }
        match poll_slot(&mut self.jobs.review) {
            Some(Ok(result)) => {
                self.views.review.queue_arrived();
                self.results.review = Some(result);
            }
            Some(Err(e)) if e == "cancelled" => {}
            Some(Err(e)) => self.error = Some(format!("review: {e}")),
            None => {}
        }
        match poll_slot(&mut self.jobs.faithfulness) {
            Some(Ok((id, kept))) => self.views.scatter.set_faithfulness(id, kept),
            Some(Err(e)) if e == "cancelled" => {}
            Some(Err(e)) => self.error = Some(format!("neighbourhood kept: {e}")),
            None => {}
        }
        match poll_slot(&mut self.jobs.shortcut) {
            Some(Ok(result)) => self.results.shortcut = Some(result),
            Some(Err(e)) if e == "cancelled" => {}
            Some(Err(e)) => self.error = Some(format!("shortcut probe: {e}")),
            None => {}
        }
        match poll_slot(&mut self.jobs.diff) {
            Some(Ok(result)) => {
                self.results.diff = Some(result);
                // A regressed queue on show follows the new diff.
                if self
                    .results
                    .review
                    .as_ref()
                    .is_some_and(|r| r.request.kind == ReviewKind::Regressed)
                {
                    self.views.review.queue_arrived();
                    let request = self.views.review.request;
                    self.start_review(ctx, request);
                }
            }
            Some(Err(e)) if e == "cancelled" => {}
            Some(Err(e)) => self.error = Some(format!("diff: {e}")),
            None => {}
        }
        match poll_slot(&mut self.jobs.metrics) {
            Some(Ok(result)) => self.results.metrics = Some(result),
            Some(Err(e)) => self.error = Some(format!("metrics: {e}")),
            None => {}
        }
        match poll_slot(&mut self.jobs.query) {
            Some(Ok(work::QueryAnswer::Image(query))) => {
                if let Some(session) = &mut self.session {
                    if let Err(e) = session.select_image(query.path, &query.vector, query.thumbnail)
                    {
                        self.error = Some(e);
                    }
                }
            }
            Some(Ok(work::QueryAnswer::Text(query))) => {
                self.text_encoder = Some((query.spec.clone(), query.encoder.clone()));
                if let Some(session) = &mut self.session {
                    if session.set.meta.encoder == query.spec {
                        if let Err(e) = session.select_text(query.text, &query.vector) {
                            self.error = Some(format!("text search: {e}"));
                        }
                    }
                }
            }
            Some(Err(e)) => self.error = Some(e),
            None => {}
        }
        match poll_slot(&mut self.jobs.backend) {
            Some(Ok(answer)) => {
                if let Some(session) = &mut self.session {
                    if let Err(e) = session.show_backend_answer(answer) {
                        self.error = Some(format!("neighbour backend: {e}"));
                    }
                }
            }
            Some(Err(e)) => self.error = Some(format!("neighbour backend: {e}")),
            None => {}
        }
        match poll_slot(&mut self.jobs.finetune) {
            Some(Ok(outcome)) => self.finish_finetune(ctx, outcome),
            Some(Err(e)) => self.error = Some(format!("fine-tune: {e}")),
            None => {}
        }
    }

    /// A fine-tune ended: keep its report; when it finished on the open dataset, switch to the
    /// fine-tuned encoder, with the one it started from one flip away.
    fn finish_finetune(&mut self, ctx: &egui::Context, outcome: FinetuneOutcome) {
        let on_open_dataset = self
            .session
            .as_ref()
            .is_some_and(|s| s.dataset.source == outcome.dataset);
        match &outcome.trained {
            Some(trained) => {
                self.notice = Some(format!(
                    "fine-tuned encoder → {}",
                    trained
                        .weights
                        .as_deref()
                        .map_or(String::new(), |w| w.display().to_string())
                ));
                if on_open_dataset {
                    self.use_encoder(ctx, trained.clone());
                    self.previous_spec = Some(outcome.settings.from.clone());
                }
            }
            None => {
                self.notice = Some(format!(
                    "fine-tune stopped after step {}; checkpoint kept → {} (Resume continues it)",
                    outcome.report.steps_done,
                    outcome.checkpoint.display()
                ));
            }
        }
        self.finetune_result = Some(outcome);
    }
}
