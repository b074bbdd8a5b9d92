//! The eframe application: persisted state, the open dataset, background jobs, and the one place
//! where the commands sent by the views are applied. Views live in `crate::ui`.

mod open_job;
mod session;

pub use open_job::{start_open, JobHandle, JobMessage, THUMBNAIL_PX};
pub use session::{Selection, Session, NEIGHBOURS_K};

use crate::encoder::{EncoderSpec, ModelKind};
use crate::jobs::Progress;
use crate::ui;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The main views.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum View {
    /// Thumbnails grouped by listing.
    #[default]
    Gallery,
}

/// What is remembered between runs (eframe persistence); big data stays in the workspace.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct PersistedState {
    /// The last dataset opened.
    pub dataset: Option<PathBuf>,
    /// The last view shown.
    pub view: View,
}

/// Something the user asked for; views push commands, [`NatviewApp::apply`] carries them out.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Open a dataset (folder or manifest).
    Open(PathBuf),
    /// Select an item and show its neighbours.
    Select(usize),
    /// Stop the running job.
    CancelJob,
    /// Show a view.
    ShowView(View),
    /// Hide the error message.
    DismissError,
}

/// The natview desktop application.
pub struct NatviewApp {
    state: PersistedState,
    spec: EncoderSpec,
    session: Option<Session>,
    job: Option<JobHandle>,
    progress: Option<Progress>,
    error: Option<String>,
    gallery: ui::GalleryState,
    thumbnails: ui::ThumbnailCache,
    commands: Vec<Command>,
    fonts_installed: bool,
}

impl NatviewApp {
    /// An app with no dataset open yet (call [`open`](Self::open) or let the user pick one).
    pub fn empty(spec: EncoderSpec) -> Self {
        Self {
            state: PersistedState::default(),
            spec,
            session: None,
            job: None,
            progress: None,
            error: None,
            gallery: ui::GalleryState::default(),
            thumbnails: ui::ThumbnailCache::default(),
            commands: Vec::new(),
            fonts_installed: false,
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
        if let Some(job) = self.job.take() {
            job.cancel.cancel();
        }
        self.error = None;
        self.progress = None;
        self.state.dataset = Some(path.clone());
        self.job = Some(start_open(path, self.spec.clone(), ctx));
    }

    /// The open dataset, if any.
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// Whether a job is running.
    pub fn is_busy(&self) -> bool {
        self.job.is_some()
    }

    /// The error being shown, if any.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// The persisted state.
    pub fn state(&self) -> &PersistedState {
        &self.state
    }

    /// Queues a command (applied before the next frame is drawn).
    pub fn send(&mut self, command: Command) {
        self.commands.push(command);
    }

    /// Applies one command.
    fn apply(&mut self, ctx: &egui::Context, command: Command) {
        match command {
            Command::Open(path) => self.open(ctx, path),
            Command::Select(item) => {
                if let Some(session) = &mut self.session {
                    if let Err(e) = session.select(item) {
                        self.error = Some(e);
                    }
                }
            }
            Command::CancelJob => {
                if let Some(job) = &self.job {
                    job.cancel.cancel();
                }
            }
            Command::ShowView(view) => self.state.view = view,
            Command::DismissError => self.error = None,
        }
    }

    /// Takes what the worker sent: progress, the opened session, or an error.
    fn poll_job(&mut self) {
        let Some(job) = &self.job else { return };
        let mut finished = false;
        loop {
            let message = match job.messages.try_recv() {
                Ok(message) => message,
                Err(std::sync::mpsc::TryRecvError::Empty) => break,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    // The worker ended without a result (it panicked): say so, stop waiting.
                    self.error = Some(format!("{}: the job stopped unexpectedly", job.title));
                    finished = true;
                    break;
                }
            };
            match message {
                JobMessage::Progress(p) => self.progress = Some(p),
                JobMessage::Done(session) => {
                    self.session = Some(*session);
                    self.thumbnails = ui::ThumbnailCache::default();
                    finished = true;
                }
                JobMessage::Failed(e) => {
                    self.error = Some(e);
                    finished = true;
                }
            }
            if finished {
                // Done or Failed is the last message; the sender is gone after it.
                break;
            }
        }
        if finished {
            self.job = None;
            self.progress = None;
        }
    }

    /// Files dropped on the window open as datasets.
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
            self.commands.push(Command::Open(path));
        }
    }

    /// Applies queued commands and polls jobs, then draws the whole window.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        if !self.fonts_installed {
            ui::theme::install_fonts(&ctx);
            self.fonts_installed = true;
        }
        self.take_dropped_files(&ctx);
        for command in std::mem::take(&mut self.commands) {
            self.apply(&ctx, command);
        }
        self.poll_job();

        egui::Panel::top("menu").show(ui, |ui| {
            ui::menu_bar_ui(ui, &mut self.commands);
        });
        egui::Panel::bottom("status").show(ui, |ui| {
            let job = self
                .job
                .as_ref()
                .map(|j| (j.title.as_str(), self.progress.as_ref()));
            ui::status_bar_ui(
                ui,
                self.session.as_ref(),
                job,
                self.error.as_deref(),
                &mut self.commands,
            );
        });
        match &self.session {
            Some(session) => {
                egui::Panel::right("neighbours")
                    .default_size(360.0)
                    .resizable(true)
                    .show(ui, |ui| {
                        ui::neighbours_ui(ui, session, &mut self.thumbnails, &mut self.commands);
                    });
                egui::CentralPanel::default().show(ui, |ui| match self.state.view {
                    View::Gallery => ui::gallery_ui(
                        ui,
                        session,
                        &mut self.gallery,
                        &mut self.thumbnails,
                        &mut self.commands,
                    ),
                });
            }
            None => {
                egui::CentralPanel::default().show(ui, |ui| {
                    ui::welcome_ui(ui, self.job.is_some());
                });
            }
        }
    }
}

impl eframe::App for NatviewApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, eframe::APP_KEY, &self.state);
    }
}

/// The encoder the app uses by default.
pub fn default_spec() -> EncoderSpec {
    EncoderSpec::untrained(ModelKind::Compact)
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
