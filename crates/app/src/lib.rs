//! natview-app: the desktop window, the only crate that uses egui, eframe and rfd — persisted
//! state, the open dataset, background jobs, and the one place where the commands sent by the
//! views are applied. Views live in [`ui`].

#![forbid(unsafe_code)]

mod backend_job;
#[cfg(feature = "bench")]
mod bench_gui;
#[cfg(feature = "bench")]
mod bench_report;
mod command;
mod diff_job;
mod finetune_job;
mod frame_stats;
mod input;
mod job_slots;
mod jobs;
mod open_job;
mod projection_job;
mod review_job;
mod session;
mod shortcut_job;
mod text_search;
pub mod ui;
mod work;

pub use backend_job::{ask_backend, BackendAnswer, BackendEditor, NeighbourBackend};
#[cfg(feature = "bench")]
pub use bench_gui::{run_gui_bench, GuiBenchOptions};
#[cfg(feature = "bench")]
pub use bench_report::{FrameTimes, GuiBenchReport};
pub use command::Command;
pub use diff_job::DiffResult;
pub use finetune_job::{FinetuneOutcome, FinetuneSettings, LiveTraining};
pub use jobs::{Job, JobKind, JobPoll, JobStatus};
pub use open_job::{open_dataset, thumbnail_of, PreviewSlot, THUMBNAIL_PX};
pub use projection_job::{LayoutFrames, ProjectionResult};
pub use review_job::{ReviewRequest, ReviewResult};
pub use session::{Query, Selection, Session, NEIGHBOURS_K};
pub use shortcut_job::ShortcutResult;
pub use text_search::{TextMatches, TEXT_MATCHES_K};
pub use work::{ImageQuery, MetricsResult, QuadrantResult};

use natview_analysis::QuadrantParams;
use natview_encoder::EncoderSpec;
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
    /// Review queues: pairs to judge (near-duplicates, outliers, confusable, hard pairs).
    Review,
    /// Retrieval metrics beside the pixel baseline.
    Metrics,
    /// The label set, label counts and exports.
    Labels,
    /// Fine-tune an encoder on the open dataset.
    Finetune,
    /// Two encoders compared listing by listing.
    Diff,
}

impl View {
    /// Every view, in tab order.
    pub const ALL: [View; 8] = [
        View::Gallery,
        View::Quadrant,
        View::Scatter,
        View::Review,
        View::Metrics,
        View::Diff,
        View::Labels,
        View::Finetune,
    ];

    /// The tab's title.
    pub fn title(self) -> &'static str {
        match self {
            View::Gallery => "Gallery",
            View::Quadrant => "Quadrant chart",
            View::Scatter => "Projection",
            View::Review => "Review",
            View::Metrics => "Metrics",
            View::Labels => "Labels",
            View::Finetune => "Fine-tune",
            View::Diff => "Diff",
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

/// The results of analysis jobs for the open session (cleared when another dataset opens).
#[derive(Default)]
pub struct Results {
    /// The last quadrant chart.
    pub quadrant: Option<QuadrantResult>,
    /// The PCA projection.
    pub projection: Option<ProjectionResult>,
    /// Metrics of the model and the pixel baseline.
    pub metrics: Option<MetricsResult>,
    /// The last review queue.
    pub review: Option<review_job::ReviewResult>,
    /// The last encoder diff.
    pub diff: Option<DiffResult>,
    /// The last augmentation-shortcut probe.
    pub shortcut: Option<ShortcutResult>,
}

/// The per-view state of the views.
#[derive(Default)]
struct ViewStates {
    gallery: ui::GalleryState,
    quadrant: ui::QuadrantViewState,
    scatter: ui::ScatterState,
    labelling: ui::LabellingState,
    finetune: ui::FinetuneViewState,
    review: ui::ReviewViewState,
    diff: ui::DiffViewState,
    backend: backend_job::BackendEditor,
}

/// The natview desktop application.
pub struct NatviewApp {
    state: PersistedState,
    /// The command line's common settings (workspace, device, batch size) for every job.
    run: natview_pipeline::RunSettings,
    spec: EncoderSpec,
    /// Whether `spec` was chosen (on the command line or in the Model menu); if not, each
    /// dataset opens with its own default encoder.
    spec_chosen: bool,
    /// The encoder used before `spec` (for flipping between two).
    previous_spec: Option<EncoderSpec>,
    session: Option<Session>,
    jobs: job_slots::Jobs,
    /// How the last fine-tune of this run ended.
    finetune_result: Option<FinetuneOutcome>,
    results: Results,
    metrics_requested: bool,
    /// Whether the Review view's first queue was asked for (for this session).
    review_requested: bool,
    error: Option<String>,
    notice: Option<String>,
    views: ViewStates,
    thumbnails: ui::ThumbnailCache,
    commands: Vec<Command>,
    fonts_installed: bool,
    frame_stats: frame_stats::FrameStats,
    /// Start of the frame in which an image was clicked (for the click → neighbours timing).
    click_frame_started: Option<std::time::Instant>,
    /// When the label store was last checked for other windows' changes.
    labels_checked: Option<std::time::Instant>,
    /// The last text tower opened, with the encoder it belongs to (opened once per encoder).
    text_encoder: Option<(EncoderSpec, std::sync::Arc<natview_encoder::TextEncoder>)>,
    /// The device jobs run on, in words with its memory in use, and when that was read.
    device_line: Option<(String, std::time::Instant)>,
}

impl NatviewApp {
    /// An app with no dataset open yet (call [`open`](Self::open) or let the user pick one).
    pub fn empty(spec: EncoderSpec) -> Self {
        Self {
            state: PersistedState::default(),
            run: natview_pipeline::RunSettings::default(),
            spec,
            spec_chosen: true,
            previous_spec: None,
            session: None,
            jobs: job_slots::Jobs::default(),
            finetune_result: None,
            results: Results::default(),
            metrics_requested: false,
            review_requested: false,
            error: None,
            notice: None,
            views: ViewStates::default(),
            thumbnails: ui::ThumbnailCache::default(),
            commands: Vec::new(),
            fonts_installed: false,
            frame_stats: frame_stats::FrameStats::default(),
            click_frame_started: None,
            labels_checked: None,
            text_encoder: None,
            device_line: None,
        }
    }

    /// Creates the app for eframe: restores the persisted state and opens `dataset`, else the
    /// last dataset opened, else the built-in demo.
    pub fn new(
        cc: &eframe::CreationContext<'_>,
        dataset: Option<PathBuf>,
        spec: Option<EncoderSpec>,
        run: natview_pipeline::RunSettings,
    ) -> Self {
        let chosen = spec.is_some();
        let mut app = Self::empty(spec.unwrap_or_else(fallback_spec));
        app.spec_chosen = chosen;
        app.run = run;
        if let Some(storage) = cc.storage {
            if let Some(state) = eframe::get_value::<PersistedState>(storage, eframe::APP_KEY) {
                app.state = state;
            }
        }
        let path = dataset.or_else(|| app.state.dataset.clone().filter(|p| p.exists()));
        match path.map_or_else(natview_core::dataset::demo_dataset_path, Ok) {
            Ok(path) => app.open(&cc.egui_ctx, path),
            Err(missing) => app.error = Some(missing.to_string()),
        }
        app
    }

    /// Runs every job of this window with the command line's common settings (its
    /// `--workspace`, `--cpu` and `--batch`).
    pub fn set_run_settings(&mut self, run: natview_pipeline::RunSettings) {
        self.run = run;
    }

    /// Starts opening a dataset on a worker thread (cancelling any running job).
    pub fn open(&mut self, ctx: &egui::Context, path: PathBuf) {
        self.jobs.cancel(JobKind::Open);
        self.error = None;
        self.state.dataset = Some(path.clone());
        let spec = self.spec_chosen.then(|| self.spec.clone());
        let run = self.run.clone();
        let title = format!("opening {}", path.display());
        let preview = open_job::PreviewSlot::default();
        self.jobs.open_preview = preview.clone();
        // Re-embedding the open dataset (another encoder) keeps its session until done; another
        // dataset shows a preview as soon as it is scanned.
        let reopening = self
            .session
            .as_ref()
            .is_some_and(|s| s.dataset.source == path);
        self.jobs.open = Some(Job::spawn("open", title, ctx, move |progress, cancel| {
            let preview = (!reopening).then_some(&preview);
            open_dataset(&path, spec, &run, preview, progress, cancel)
        }));
    }

    /// Whether the encoder given to [`empty`](Self::empty) was chosen (used for every dataset)
    /// or is only a fallback (each dataset opens with its own default encoder).
    pub fn set_encoder_choice(&mut self, chosen: bool) {
        self.spec_chosen = chosen;
    }

    /// The open dataset, if any.
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// The results of the analysis jobs.
    pub fn results(&self) -> &Results {
        &self.results
    }

    /// Whether any job is running or a command waits for the next frame.
    pub fn is_busy(&self) -> bool {
        !self.jobs.statuses().is_empty() || !self.commands.is_empty()
    }

    /// Whether thumbnails on screen are still being read.
    pub fn is_loading_thumbnails(&self) -> bool {
        self.thumbnails.is_loading()
    }

    /// The projection's canvas (what it shows now).
    pub fn scatter_canvas(&self) -> &ui::Canvas {
        self.views.scatter.canvas()
    }

    /// The projection's state (tool, last selection, canvas).
    pub fn scatter_state(&mut self) -> &mut ui::ScatterState {
        &mut self.views.scatter
    }

    /// Sets the gallery's text filter (as typing it would).
    pub fn set_gallery_filter(&mut self, text: &str) {
        self.views.gallery.filter = text.to_string();
    }

    /// The gallery: listings shown and how long the last filtering took (ms).
    pub fn gallery_filter_result(&self) -> (usize, f64) {
        (
            self.views.gallery.visible_listings(),
            self.views.gallery.filter_ms(),
        )
    }

    /// The last progress report of the running job of `kind`, if one runs.
    pub fn job_progress(&self, kind: JobKind) -> Option<natview_core::jobs::Progress> {
        self.jobs
            .statuses()
            .into_iter()
            .find(|s| s.kind == kind)
            .and_then(|s| s.progress)
    }

    /// Whether the projection's canvas is drawing a raster for the current view.
    pub fn is_drawing_scatter(&self) -> bool {
        self.views.scatter.is_drawing()
    }

    /// Thumbnails in the window's atlas now (bounded, whatever the dataset's size).
    pub fn thumbnails_in_atlas(&self) -> usize {
        self.thumbnails.len()
    }

    /// The error being shown, if any.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// The notice being shown (e.g. where an export went), if any.
    pub fn notice(&self) -> Option<&str> {
        self.notice.as_deref()
    }

    /// The encoder in use.
    pub fn encoder(&self) -> &EncoderSpec {
        &self.spec
    }

    /// How the last fine-tune of this run ended, if one did.
    pub fn finetune_result(&self) -> Option<&FinetuneOutcome> {
        self.finetune_result.as_ref()
    }

    /// The live state of the running fine-tune, if one runs.
    pub fn finetune_live(&self) -> Option<LiveTraining> {
        self.jobs.finetune_live()
    }

    /// The persisted state.
    pub fn state(&self) -> &PersistedState {
        &self.state
    }

    /// Items the gallery is limited to (by a scatter selection), if any.
    pub fn gallery_subset(&self) -> Option<&[usize]> {
        self.views.gallery.subset()
    }

    /// Each point's neighbourhood kept by the current projection, once measured.
    pub fn layout_faithfulness(&self) -> Option<&[f32]> {
        let id = self.results.projection.as_ref()?.id;
        self.views.scatter.faithfulness_of(id).map(|v| v.as_slice())
    }

    /// Queues a command (applied before the next frame is drawn).
    pub fn send(&mut self, command: Command) {
        self.commands.push(command);
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
        self.refresh_labels();
        let commands = std::mem::take(&mut self.commands);
        if commands.iter().any(|c| matches!(c, Command::Select(_))) {
            self.frame_stats
                .query_applied(self.click_frame_started.take());
        }
        for command in commands {
            self.apply(&ctx, command);
        }
        self.poll_jobs(&ctx);
        self.thumbnails.begin_frame(&ctx, self.session.as_ref());
        self.draw(ui);
        self.thumbnails.end_frame();
        if !self.commands.is_empty() {
            // What the views asked for is applied at the start of the next pass. A new query
            // is redrawn in a second pass of this frame (this pass is discarded, not painted), so
            // its neighbours show one frame sooner; anything else waits for the next frame.
            if self
                .commands
                .iter()
                .any(|c| matches!(c, Command::Select(_)))
            {
                ctx.request_discard("a new query");
            }
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
            && self.session.as_ref().is_some_and(|s| s.is_embedded())
            && !self.metrics_requested
            && self.jobs.metrics.is_none()
        {
            self.start_metrics(&ctx);
        }
        // The Review view's queue is built when the view first opens on a dataset.
        if self.state.view == View::Review
            && self.session.as_ref().is_some_and(|s| s.is_embedded())
            && self.results.review.is_none()
            && self.jobs.status_of(JobKind::Review).is_none()
            && !self.review_requested
        {
            self.review_requested = true;
            let request = self.views.review.request;
            self.start_review(&ctx, request);
        }

        egui::Panel::top("menu").show(ui, |ui| {
            ui::menu_bar_ui(
                ui,
                self.session.as_ref().map(|s| s.encoders.as_slice()),
                &self.spec,
                self.previous_spec.as_ref(),
                &mut self.commands,
            );
            if self.session.is_some() {
                ui::view_tabs_ui(ui, self.state.view, &mut self.commands);
            }
        });
        let statuses = self.jobs.statuses();
        // The device in the status bar, its memory in use read again every few seconds.
        if self
            .device_line
            .as_ref()
            .is_none_or(|(_, at)| at.elapsed().as_secs() >= 5)
        {
            let device = natview_encoder::choose_device(self.run.force_cpu);
            let line = natview_encoder::device_status(&device);
            self.device_line = Some((line, std::time::Instant::now()));
        }
        let device = self
            .device_line
            .as_ref()
            .map_or("", |(line, _)| line.as_str());
        egui::Panel::bottom("status").show(ui, |ui| {
            ui::status_bar_ui(
                ui,
                self.session.as_ref(),
                device,
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
                    &mut self.views.backend,
                    &mut self.thumbnails,
                    &mut self.commands,
                );
            });
        let busy = |kind: JobKind| statuses.iter().any(|s| s.kind == kind);
        let finetune_live = self.jobs.finetune_live();
        let finetune_result = self
            .finetune_result
            .as_ref()
            .filter(|f| f.dataset == session.dataset.source);
        let waiting =
            !session.is_embedded() && !matches!(self.state.view, View::Gallery | View::Labels);
        // The projection covers its panel with one opaque raster: the panel's own fill (one
        // more full-size layer for a software renderer) is left out; the window is cleared to
        // the same colour.
        let mut central = egui::CentralPanel::default();
        if self.state.view == View::Scatter && !waiting {
            central = central
                .frame(egui::Frame::central_panel(ui.style()).fill(egui::Color32::TRANSPARENT));
        }
        central.show(ui, |ui| match self.state.view {
            _ if waiting => ui::waiting_for_embeddings_ui(ui, self.state.view.title(), &statuses),
            View::Gallery => ui::gallery_ui(
                ui,
                session,
                &mut self.views.gallery,
                &mut self.thumbnails,
                busy(JobKind::Query),
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
                (busy(JobKind::Projection), self.views.gallery.subset()),
                &mut self.thumbnails,
                &mut self.commands,
            ),
            View::Review => scrolled(ui, |ui| {
                ui::review_ui(
                    ui,
                    session,
                    self.results.review.as_ref(),
                    busy(JobKind::Review),
                    &mut self.views.review,
                    &mut self.thumbnails,
                    &mut self.commands,
                )
            }),
            View::Diff => scrolled(ui, |ui| {
                ui::diff_ui(
                    ui,
                    session,
                    self.results.diff.as_ref(),
                    busy(JobKind::Diff),
                    &mut self.views.diff,
                    &mut self.thumbnails,
                    &mut self.commands,
                )
            }),
            View::Metrics => scrolled(ui, |ui| {
                ui::metrics_ui(
                    ui,
                    self.results.metrics.as_ref(),
                    (self.results.shortcut.as_ref(), busy(JobKind::Shortcut)),
                    busy(JobKind::Metrics),
                    finetune_result,
                    &self.spec,
                    &mut self.commands,
                )
            }),
            View::Finetune => scrolled(ui, |ui| {
                ui::finetune_ui(
                    ui,
                    session,
                    &self.spec,
                    finetune_live.as_ref(),
                    finetune_result,
                    &mut self.views.finetune,
                    &mut self.commands,
                )
            }),
            View::Labels => {
                ui::labels_view_ui(ui, session, &mut self.views.labelling, &mut self.commands)
            }
        });
    }
}

/// Draws a view that can be taller or wider than the panel inside scroll bars.
fn scrolled(ui: &mut egui::Ui, view: impl FnOnce(&mut egui::Ui)) {
    egui::ScrollArea::both()
        .auto_shrink([false, false])
        .show(ui, view);
}

impl eframe::App for NatviewApp {
    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        self.frame_stats.record_frame_cpu(frame.info().cpu_usage);
        self.show(ui);
    }

    fn clear_color(&self, visuals: &egui::Visuals) -> [f32; 4] {
        visuals.panel_fill.to_normalized_gamma_f32()
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, eframe::APP_KEY, &self.state);
    }
}

/// Opens the window (blocking until it is closed); `spec: None` opens each dataset with its
/// default encoder.
pub fn run_window(
    dataset: Option<PathBuf>,
    spec: Option<EncoderSpec>,
    run: natview_pipeline::RunSettings,
) -> Result<(), eframe::Error> {
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
        Box::new(move |cc| Ok(Box::new(NatviewApp::new(cc, dataset, spec, run)))),
    )
}

/// The encoder the app names before a dataset has chosen its own: the shipped default where it
/// is installed (each dataset then opens with its own default, or the error saying the weights
/// are missing); never used to embed unless chosen.
pub fn fallback_spec() -> EncoderSpec {
    EncoderSpec::default_model()
        .unwrap_or_else(|_| EncoderSpec::untrained(natview_encoder::ModelKind::EffnetLite0))
}
