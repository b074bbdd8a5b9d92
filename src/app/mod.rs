//! The eframe application: persisted state, the open dataset, background jobs, and the one place
//! where the commands sent by the views are applied. Views live in `crate::ui`.

mod frame_stats;
mod jobs;
mod open_job;
mod session;
mod work;

pub use jobs::{Job, JobKind, JobPoll, JobStatus};
pub use open_job::{open_dataset, thumbnail_of, THUMBNAIL_PX};
pub use session::{Query, Selection, Session, NEIGHBOURS_K};
pub use work::{ImageQuery, MetricsResult, ProjectionResult, QuadrantResult};

use crate::analysis::QuadrantParams;
use crate::dataset::is_supported_extension;
use crate::encoder::EncoderSpec;
use crate::labels::{export_labels, ExportFormat, Verdict, TAG_KEYS};
use crate::ui;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The main views (tabs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum View {
    /// Thumbnails grouped by listing.
    #[default]
    Gallery,
    /// The intra/inter-listing similarity heatmap.
    Quadrant,
    /// The 2D projection scatter.
    Scatter,
    /// Retrieval metrics beside the pixel baseline.
    Metrics,
    /// The label set, label counts and exports.
    Labels,
}

impl View {
    /// Every view, in tab order.
    pub const ALL: [View; 5] = [
        View::Gallery,
        View::Quadrant,
        View::Scatter,
        View::Metrics,
        View::Labels,
    ];

    /// The tab's title.
    pub fn title(self) -> &'static str {
        match self {
            View::Gallery => "Gallery",
            View::Quadrant => "Quadrant chart",
            View::Scatter => "Projection",
            View::Metrics => "Metrics",
            View::Labels => "Labels",
        }
    }
}

/// What is remembered between runs (eframe persistence); big data stays in the workspace.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct PersistedState {
    /// The last dataset opened.
    pub dataset: Option<PathBuf>,
    /// The last view shown.
    pub view: View,
    /// The last quadrant-chart choice.
    #[serde(default)]
    pub quadrant: QuadrantParams,
}

/// Something the user asked for; views push commands, [`NatviewApp::apply`] carries them out.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Open a dataset (folder or manifest).
    Open(PathBuf),
    /// Embed the open dataset with another encoder (or reuse its embeddings) and switch to it.
    UseEncoder(EncoderSpec),
    /// Find the neighbours of an image file from outside the dataset.
    QueryImage(PathBuf),
    /// Select an item and show its neighbours.
    Select(usize),
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
    /// Compute the PCA projection.
    ComputeProjection,
    /// Evaluate the model and the pixel baseline.
    ComputeMetrics,
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
    /// Rename the tag bound to a key (1–9).
    RenameTagKey {
        /// The key.
        key: usize,
        /// The new tag name.
        name: String,
    },
    /// Export the labels into the workspace.
    ExportLabels(ExportFormat),
}

/// The results of analysis jobs for the open session (cleared when another dataset opens).
#[derive(Default)]
pub struct Results {
    /// The last quadrant chart.
    pub quadrant: Option<QuadrantResult>,
    /// The PCA projection.
    pub projection: Option<ProjectionResult>,
    /// Metrics of the model and the pixel baseline.
    pub metrics: Option<MetricsResult>,
}

#[derive(Default)]
struct Jobs {
    open: Option<Job<Session>>,
    quadrant: Option<Job<QuadrantResult>>,
    export: Option<Job<PathBuf>>,
    projection: Option<Job<ProjectionResult>>,
    metrics: Option<Job<MetricsResult>>,
    query: Option<Job<ImageQuery>>,
}

impl Jobs {
    fn statuses(&self) -> Vec<JobStatus> {
        let mut statuses = Vec::new();
        if let Some(j) = &self.open {
            statuses.push(j.status(JobKind::Open));
        }
        if let Some(j) = &self.quadrant {
            statuses.push(j.status(JobKind::Quadrant));
        }
        if let Some(j) = &self.export {
            statuses.push(j.status(JobKind::Export));
        }
        if let Some(j) = &self.projection {
            statuses.push(j.status(JobKind::Projection));
        }
        if let Some(j) = &self.metrics {
            statuses.push(j.status(JobKind::Metrics));
        }
        if let Some(j) = &self.query {
            statuses.push(j.status(JobKind::Query));
        }
        statuses
    }

    fn cancel(&mut self, kind: JobKind) {
        // Dropping a job cancels it; its thread finishes on its own.
        match kind {
            JobKind::Open => self.open = None,
            JobKind::Quadrant => self.quadrant = None,
            JobKind::Export => self.export = None,
            JobKind::Projection => self.projection = None,
            JobKind::Metrics => self.metrics = None,
            JobKind::Query => self.query = None,
        }
    }

    fn cancel_analyses(&mut self) {
        for kind in [
            JobKind::Quadrant,
            JobKind::Export,
            JobKind::Projection,
            JobKind::Metrics,
            JobKind::Query,
        ] {
            self.cancel(kind);
        }
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

/// The per-view state of the views.
#[derive(Default)]
struct ViewStates {
    gallery: ui::GalleryState,
    quadrant: ui::QuadrantViewState,
    scatter: ui::ScatterState,
    labelling: ui::LabellingState,
}

/// The natview desktop application.
pub struct NatviewApp {
    state: PersistedState,
    spec: EncoderSpec,
    session: Option<Session>,
    jobs: Jobs,
    results: Results,
    metrics_requested: bool,
    error: Option<String>,
    notice: Option<String>,
    views: ViewStates,
    thumbnails: ui::ThumbnailCache,
    commands: Vec<Command>,
    fonts_installed: bool,
    frame_stats: frame_stats::FrameStats,
    /// Start of the frame in which an image was clicked (for the click → neighbours timing).
    click_frame_started: Option<std::time::Instant>,
}

impl NatviewApp {
    /// An app with no dataset open yet (call [`open`](Self::open) or let the user pick one).
    pub fn empty(spec: EncoderSpec) -> Self {
        Self {
            state: PersistedState::default(),
            spec,
            session: None,
            jobs: Jobs::default(),
            results: Results::default(),
            metrics_requested: false,
            error: None,
            notice: None,
            views: ViewStates::default(),
            thumbnails: ui::ThumbnailCache::default(),
            commands: Vec::new(),
            fonts_installed: false,
            frame_stats: frame_stats::FrameStats::default(),
            click_frame_started: None,
        }
    }

    /// Creates the app for eframe: restores the persisted state and opens `dataset`, else the
    /// last dataset opened, else the built-in demo.
    pub fn new(
        cc: &eframe::CreationContext<'_>,
        dataset: Option<PathBuf>,
        spec: EncoderSpec,
    ) -> Self {
        let mut app = Self::empty(spec);
        if let Some(storage) = cc.storage {
            if let Some(state) = eframe::get_value::<PersistedState>(storage, eframe::APP_KEY) {
                app.state = state;
            }
        }
        let path = dataset
            .or_else(|| app.state.dataset.clone().filter(|p| p.exists()))
            .unwrap_or_else(crate::dataset::demo_dataset_path);
        app.open(&cc.egui_ctx, path);
        app
    }

    /// Starts opening a dataset on a worker thread (cancelling any running job).
    pub fn open(&mut self, ctx: &egui::Context, path: PathBuf) {
        self.jobs.cancel(JobKind::Open);
        self.error = None;
        self.state.dataset = Some(path.clone());
        let spec = self.spec.clone();
        let title = format!("opening {}", path.display());
        self.jobs.open = Some(Job::spawn("open", title, ctx, move |progress, cancel| {
            open_dataset(&path, spec, progress, cancel)
        }));
    }

    /// The open dataset, if any.
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// The results of the analysis jobs.
    pub fn results(&self) -> &Results {
        &self.results
    }

    /// Whether any job is running.
    pub fn is_busy(&self) -> bool {
        !self.jobs.statuses().is_empty()
    }

    /// The error being shown, if any.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// The notice being shown (e.g. where an export went), if any.
    pub fn notice(&self) -> Option<&str> {
        self.notice.as_deref()
    }

    /// The persisted state.
    pub fn state(&self) -> &PersistedState {
        &self.state
    }

    /// Items the gallery is limited to (by a scatter selection), if any.
    pub fn gallery_subset(&self) -> Option<&[usize]> {
        self.views.gallery.subset()
    }

    /// Queues a command (applied before the next frame is drawn).
    pub fn send(&mut self, command: Command) {
        self.commands.push(command);
    }

    fn job_inputs(&self) -> Option<work::JobInputs> {
        self.session.as_ref().map(|s| work::JobInputs {
            set: s.set.clone(),
            dataset: s.dataset.clone(),
            workspace: s.workspace.clone(),
        })
    }

    fn start_quadrant(&mut self, ctx: &egui::Context, params: QuadrantParams) {
        let Some(inputs) = self.job_inputs() else {
            return;
        };
        self.state.quadrant = params.clone();
        let title = format!(
            "quadrant chart {} × {}",
            params.listings.max(params.picked.len()),
            params.views
        );
        self.jobs.quadrant = Some(Job::spawn("quadrant", title, ctx, move |progress, _| {
            work::compute_quadrant(&inputs.set, params, progress)
        }));
    }

    fn start_projection(&mut self, ctx: &egui::Context) {
        let Some(inputs) = self.job_inputs() else {
            return;
        };
        self.jobs.projection = Some(Job::spawn("projection", "PCA", ctx, move |progress, _| {
            work::compute_projection(&inputs.set, &inputs.workspace, progress)
        }));
    }

    fn start_metrics(&mut self, ctx: &egui::Context) {
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
                    progress,
                    cancel,
                )
            },
        ));
    }

    fn start_export(&mut self, ctx: &egui::Context, out: Option<PathBuf>) {
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

    fn start_query(&mut self, ctx: &egui::Context, path: PathBuf) {
        let Some(session) = &self.session else {
            self.error = Some(format!(
                "{}: open a dataset before querying by image",
                path.display()
            ));
            return;
        };
        let spec = session.set.meta.encoder.clone();
        let title = format!("embedding {}", path.display());
        self.jobs.query = Some(Job::spawn("query", title, ctx, move |_, _| {
            work::embed_image_query(path, &spec)
        }));
    }

    fn with_labels(
        &mut self,
        change: impl FnOnce(&mut crate::labels::LabelStore, &Session) -> Result<(), String>,
    ) {
        let Some(session) = &mut self.session else {
            return;
        };
        let Some(mut store) = session.labels.take() else {
            self.error = Some("the label store is not open".into());
            return;
        };
        if let Err(e) = change(&mut store, session) {
            self.error = Some(e);
        }
        session.labels = Some(store);
    }

    /// Applies one command.
    fn apply(&mut self, ctx: &egui::Context, command: Command) {
        match command {
            Command::Open(path) => self.open(ctx, path),
            Command::UseEncoder(spec) => {
                self.spec = spec;
                if let Some(path) = self.state.dataset.clone() {
                    self.open(ctx, path);
                }
            }
            Command::QueryImage(path) => self.start_query(ctx, path),
            Command::Select(item) => {
                if let Some(session) = &mut self.session {
                    if let Err(e) = session.select(item) {
                        self.error = Some(e);
                    }
                }
            }
            Command::SetGallerySubset(subset) => self.views.gallery.set_subset(subset),
            Command::CancelJob(kind) => self.jobs.cancel(kind),
            Command::ShowView(view) => self.state.view = view,
            Command::DismissError => self.error = None,
            Command::DismissNotice => self.notice = None,
            Command::ComputeQuadrant(params) => self.start_quadrant(ctx, params),
            Command::ExportQuadrant(out) => self.start_export(ctx, out),
            Command::ComputeProjection => self.start_projection(ctx),
            Command::ComputeMetrics => self.start_metrics(ctx),
            Command::ToggleTag { item, tag } => self.with_labels(|store, session| {
                store
                    .toggle_tag(session.item_ref(item), &tag)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }),
            Command::SetNote { item, note } => self.with_labels(|store, session| {
                store
                    .set_note(session.item_ref(item), &note)
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
                    )
                    .map_err(|e| e.to_string())
            }),
            Command::RenameTagKey { key, name } => self.with_labels(|store, _| {
                store.rename_tag_key(key, &name).map_err(|e| e.to_string())
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

    /// Takes what the workers sent: progress, results, errors.
    fn poll_jobs(&mut self, ctx: &egui::Context) {
        match poll_slot(&mut self.jobs.open) {
            Some(Ok(session)) => {
                self.jobs.cancel_analyses();
                self.session = Some(session);
                self.results = Results::default();
                self.metrics_requested = false;
                self.thumbnails = ui::ThumbnailCache::default();
                self.views.gallery.set_subset(None);
                self.views.scatter = ui::ScatterState::default();
                // PCA and the quadrant chart are quick: have them ready when their views open.
                self.start_projection(ctx);
                let params = self.state.quadrant.clone();
                self.start_quadrant(
                    ctx,
                    QuadrantParams {
                        picked: Vec::new(),
                        ..params
                    },
                );
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
            Some(Ok(path)) => self.notice = Some(format!("quadrant chart → {}", path.display())),
            Some(Err(e)) => self.error = Some(e),
            None => {}
        }
        match poll_slot(&mut self.jobs.projection) {
            Some(Ok(result)) => self.results.projection = Some(result),
            Some(Err(e)) => self.error = Some(format!("projection: {e}")),
            None => {}
        }
        match poll_slot(&mut self.jobs.metrics) {
            Some(Ok(result)) => self.results.metrics = Some(result),
            Some(Err(e)) => self.error = Some(format!("metrics: {e}")),
            None => {}
        }
        match poll_slot(&mut self.jobs.query) {
            Some(Ok(query)) => {
                if let Some(session) = &mut self.session {
                    if let Err(e) = session.select_image(query.path, &query.vector, query.thumbnail)
                    {
                        self.error = Some(e);
                    }
                }
            }
            Some(Err(e)) => self.error = Some(e),
            None => {}
        }
    }

    /// Files dropped on the window: an image file is a query, anything else opens as a dataset.
    fn take_dropped_files(&mut self, ctx: &egui::Context) {
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        });
        if let Some(path) = dropped.into_iter().next() {
            if path.is_file() && is_supported_extension(&path) {
                self.commands.push(Command::QueryImage(path));
            } else {
                self.commands.push(Command::Open(path));
            }
        }
    }

    /// Keys 1–9 toggle the tags of the label set on the selected item (when no text field has
    /// the keyboard).
    fn take_tag_keys(&mut self, ctx: &egui::Context) {
        let Some(session) = &self.session else { return };
        let Some(item) = session.selection.as_ref().and_then(Selection::item) else {
            return;
        };
        let Some(store) = &session.labels else { return };
        if ctx.text_edit_focused() {
            return;
        }
        const KEYS: [egui::Key; TAG_KEYS] = [
            egui::Key::Num1,
            egui::Key::Num2,
            egui::Key::Num3,
            egui::Key::Num4,
            egui::Key::Num5,
            egui::Key::Num6,
            egui::Key::Num7,
            egui::Key::Num8,
            egui::Key::Num9,
        ];
        for (slot, key) in KEYS.iter().enumerate() {
            if ctx.input(|i| i.key_pressed(*key) && i.modifiers.is_none()) {
                let tag = store.tag_set()[slot].clone();
                self.commands.push(Command::ToggleTag { item, tag });
            }
        }
    }

    /// Applies queued commands and polls jobs, then draws the whole window.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        self.frame_stats.begin();
        let ctx = ui.ctx().clone();
        if !self.fonts_installed {
            ui::theme::install_fonts(&ctx);
            self.fonts_installed = true;
        }
        self.take_dropped_files(&ctx);
        self.take_tag_keys(&ctx);
        let commands = std::mem::take(&mut self.commands);
        if commands.iter().any(|c| matches!(c, Command::Select(_))) {
            self.frame_stats
                .query_applied(self.click_frame_started.take());
        }
        for command in commands {
            self.apply(&ctx, command);
        }
        self.poll_jobs(&ctx);
        self.draw(ui);
        if !self.commands.is_empty() {
            // What the views asked for is applied at the start of the next frame: have one.
            ctx.request_repaint();
            if self
                .commands
                .iter()
                .any(|c| matches!(c, Command::Select(_)))
            {
                self.click_frame_started = self.frame_stats.frame_started();
            }
        }
        self.frame_stats.end(self.state.view.title());
    }

    /// Draws the window from the current state.
    fn draw(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        if self.state.view == View::Metrics
            && self.session.is_some()
            && !self.metrics_requested
            && self.jobs.metrics.is_none()
        {
            self.start_metrics(&ctx);
        }

        egui::Panel::top("menu").show(ui, |ui| {
            ui::menu_bar_ui(
                ui,
                self.session.as_ref().map(|s| s.encoders.as_slice()),
                &self.spec,
                &mut self.commands,
            );
            if self.session.is_some() {
                ui::view_tabs_ui(ui, self.state.view, &mut self.commands);
            }
        });
        let statuses = self.jobs.statuses();
        egui::Panel::bottom("status").show(ui, |ui| {
            ui::status_bar_ui(
                ui,
                self.session.as_ref(),
                &statuses,
                self.error.as_deref(),
                self.notice.as_deref(),
                &mut self.commands,
            );
        });
        let Some(session) = &self.session else {
            egui::CentralPanel::default().show(ui, |ui| {
                ui::welcome_ui(ui, self.jobs.open.is_some());
            });
            return;
        };
        egui::Panel::right("neighbours")
            .default_size(380.0)
            .resizable(true)
            .show(ui, |ui| {
                ui::neighbours_ui(
                    ui,
                    session,
                    &mut self.views.labelling,
                    &mut self.thumbnails,
                    &mut self.commands,
                );
            });
        let busy = |kind: JobKind| statuses.iter().any(|s| s.kind == kind);
        egui::CentralPanel::default().show(ui, |ui| match self.state.view {
            View::Gallery => ui::gallery_ui(
                ui,
                session,
                &mut self.views.gallery,
                &mut self.thumbnails,
                &mut self.commands,
            ),
            View::Quadrant => ui::quadrant_ui(
                ui,
                session,
                self.results.quadrant.as_ref(),
                busy(JobKind::Quadrant),
                &mut self.views.quadrant,
                &mut self.thumbnails,
                &mut self.commands,
            ),
            View::Scatter => ui::scatter_ui(
                ui,
                session,
                self.results.projection.as_ref(),
                &mut self.views.scatter,
                &mut self.thumbnails,
                &mut self.commands,
            ),
            View::Metrics => ui::metrics_ui(
                ui,
                self.results.metrics.as_ref(),
                busy(JobKind::Metrics),
                &mut self.commands,
            ),
            View::Labels => {
                ui::labels_view_ui(ui, session, &mut self.views.labelling, &mut self.commands)
            }
        });
    }
}

impl eframe::App for NatviewApp {
    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        self.frame_stats.record_frame_cpu(frame.info().cpu_usage);
        self.show(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, eframe::APP_KEY, &self.state);
    }
}

/// The encoder the app uses by default: the shipped model (untrained compact without it).
pub fn default_spec() -> EncoderSpec {
    EncoderSpec::default_model()
}

/// Opens the window (blocking until it is closed).
pub fn run_window(dataset: Option<PathBuf>, spec: EncoderSpec) -> Result<(), eframe::Error> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("natview")
            .with_inner_size([1280.0, 800.0])
            .with_drag_and_drop(true),
        ..Default::default()
    };
    eframe::run_native(
        "natview",
        options,
        Box::new(move |cc| Ok(Box::new(NatviewApp::new(cc, dataset, spec)))),
    )
}
