//! `natview-bench gui`: the real window (eframe, glow) driven by injected input, measuring what
//! a user waits for — the first gallery frame, thumbnails on screen, the dataset ready, gallery
//! filtering, frame times while dragging the projection (all points in view, then zoomed in with
//! thumbnails on the points), click → neighbours drawn — and the resident memory at the end.
//! Run under Xvfb on a machine without a display.

pub use super::bench_report::GuiBenchReport;
use super::bench_report::{frame_times, memory_mb};
use super::{Command, JobKind, NatviewApp, View};
use natview_encoder::EncoderSpec;
use std::path::PathBuf;
use std::time::Instant;

/// What to measure.
#[derive(Debug, Clone)]
pub struct GuiBenchOptions {
    /// The dataset to open.
    pub dataset: PathBuf,
    /// The encoder (`None`: the dataset's default).
    pub spec: Option<EncoderSpec>,
    /// Frames dragged in each panning phase.
    pub pan_frames: usize,
    /// When the dataset must be embedded first: stop after this many seconds of embedding and
    /// report the app's embedding rate (0: wait for the whole job).
    pub embed_seconds: f64,
    /// Text typed into the gallery filter.
    pub filter: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Opening,
    Filtering {
        since: usize,
    },
    Projection,
    PanAll {
        frame: usize,
    },
    Lasso {
        frame: usize,
    },
    Zooming {
        frame: usize,
    },
    PanZoomed {
        frame: usize,
    },
    Clicking {
        clicks: usize,
        waiting: Option<(usize, Instant)>,
    },
    Done,
}

struct Bench {
    app: NatviewApp,
    options: GuiBenchOptions,
    started: Instant,
    phase: Phase,
    frame: usize,
    inject: Vec<egui::Event>,
    last_frame_start: Option<Instant>,
    cpu: Vec<f64>,
    intervals: Vec<f64>,
    report: GuiBenchReport,
    embed_started: Option<(Instant, usize)>,
    /// A click whose neighbours were drawn in the last frame (timed when it is painted).
    painted_after: Option<Instant>,
    /// The item the pointer was moved onto for the next click, and in which frame.
    pointed_at: Option<usize>,
    pointed_frame: usize,
    /// The frame the clicking phase began (it gives up after 900 frames).
    clicking_since: usize,
    result: std::sync::Arc<std::sync::Mutex<Option<GuiBenchReport>>>,
}

/// The primary button going down or up at `pos`.
fn primary(pos: egui::Pos2, pressed: bool) -> egui::Event {
    egui::Event::PointerButton {
        pos,
        button: egui::PointerButton::Primary,
        pressed,
        modifiers: egui::Modifiers::NONE,
    }
}

impl Bench {
    fn ms(&self) -> f64 {
        self.started.elapsed().as_secs_f64() * 1000.0
    }

    /// The centre of the projection canvas (the central panel left of the neighbours panel).
    fn canvas_centre(ctx: &egui::Context) -> egui::Pos2 {
        let screen = ctx.content_rect();
        egui::pos2((screen.width() - 380.0) / 2.0, screen.height() / 2.0 + 20.0)
    }

    fn drag_step(&mut self, ctx: &egui::Context, frame: usize, frames: usize) {
        let centre = Self::canvas_centre(ctx);
        let angle = frame as f32 / 30.0 * std::f32::consts::TAU;
        let at = centre + egui::vec2(angle.cos(), angle.sin()) * 80.0;
        if frame == 0 {
            self.inject.push(egui::Event::PointerMoved(centre));
            self.inject.push(primary(centre, true));
        } else if frame + 1 >= frames {
            self.inject.push(primary(at, false));
        } else {
            self.inject.push(egui::Event::PointerMoved(at));
        }
    }

    fn step(&mut self, ctx: &egui::Context, frame_cpu_ms: Option<f64>) {
        let now = Instant::now();
        let interval = self
            .last_frame_start
            .map(|t| now.duration_since(t).as_secs_f64() * 1000.0);
        self.last_frame_start = Some(now);
        let measuring = matches!(
            self.phase,
            Phase::PanAll { frame } | Phase::PanZoomed { frame } | Phase::Lasso { frame } if frame > 2
        );
        if measuring {
            if let Some(cpu) = frame_cpu_ms {
                self.cpu.push(cpu);
            }
            if let Some(i) = interval {
                self.intervals.push(i);
            }
        }
        let frames = self.options.pan_frames.max(10);
        match self.phase {
            Phase::Opening => {
                if let Some(_session) = self.app.session() {
                    if self.report.first_gallery_ms == 0.0 {
                        self.report.first_gallery_ms = self.ms();
                    }
                    if self.report.gallery_thumbnails_ms == 0.0
                        && self.app.thumbnails_in_atlas() > 0
                        && !self.app.is_loading_thumbnails()
                    {
                        self.report.gallery_thumbnails_ms = self.ms();
                    }
                }
                if let Some(p) = self.app.job_progress(JobKind::Open) {
                    if self.report.open_phases.last().map(|(phase, _)| phase) != Some(&p.phase) {
                        let at = self.ms();
                        self.report.open_phases.push((p.phase.clone(), at));
                    }
                    if p.phase == "embedding" && p.done > 0 {
                        self.report.embedded_now = true;
                        let (t0, d0) = *self.embed_started.get_or_insert((now, p.done));
                        let secs = now.duration_since(t0).as_secs_f64();
                        if secs > 1.0 {
                            self.report.app_embedding_images_per_s =
                                Some((p.done - d0) as f64 / secs);
                        }
                        if self.options.embed_seconds > 0.0 && secs >= self.options.embed_seconds {
                            self.phase = Phase::Done;
                        }
                    }
                }
                let embedded = self.app.session().is_some_and(|s| s.is_embedded());
                if embedded && self.report.session_ms.is_none() {
                    self.report.session_ms = Some(self.ms());
                }
                let ready = self.app.session().is_some_and(|s| s.is_embedded())
                    && self.app.job_progress(JobKind::Open).is_none()
                    && !self.app.is_busy();
                if ready && self.report.gallery_thumbnails_ms > 0.0 {
                    self.report.ready_ms = Some(self.ms());
                    self.report.rss_at_ready_mb = memory_mb().0;
                    self.app.set_gallery_filter(&self.options.filter.clone());
                    self.phase = Phase::Filtering { since: self.frame };
                }
            }
            Phase::Filtering { since } => {
                if self.frame > since + 2 {
                    let (listings, ms) = self.app.gallery_filter_result();
                    self.report.filter_listings = listings;
                    self.report.filter_ms = ms;
                    self.app.set_gallery_filter("");
                    self.app.send(Command::ShowView(View::Scatter));
                    self.phase = Phase::Projection;
                }
            }
            Phase::Projection => {
                let drawn = self.app.scatter_canvas().in_view().is_some()
                    && !self.app.is_drawing_scatter()
                    && !self.app.is_busy();
                if drawn {
                    self.report.projection_ms = Some(self.ms());
                    self.report.rss_after_projection_mb = memory_mb().0;
                    self.report.pan_all_in_view = self.app.scatter_canvas().in_view().unwrap_or(0);
                    self.phase = Phase::PanAll { frame: 0 };
                }
            }
            Phase::PanAll { frame } => {
                self.drag_step(ctx, frame, frames);
                if frame + 1 >= frames {
                    self.report.pan_all = frame_times(&self.cpu, &self.intervals);
                    self.cpu.clear();
                    self.intervals.clear();
                    self.phase = Phase::Zooming { frame: 0 };
                } else {
                    self.phase = Phase::PanAll { frame: frame + 1 };
                }
            }
            Phase::Zooming { frame } => {
                let in_view = self.app.scatter_canvas().in_view().unwrap_or(usize::MAX);
                let settled = !self.app.is_drawing_scatter();
                // Zoomed in far enough (or given up after 600 frames): pan there.
                if (in_view <= 8_000 && settled && frame > 5) || frame > 600 {
                    self.phase = Phase::PanZoomed { frame: 0 };
                } else {
                    if frame % 4 == 0 && in_view > 8_000 {
                        let centre = Self::canvas_centre(ctx);
                        self.inject.push(egui::Event::PointerMoved(centre));
                        self.inject.push(egui::Event::MouseWheel {
                            unit: egui::MouseWheelUnit::Point,
                            delta: egui::vec2(0.0, 400.0),
                            phase: egui::TouchPhase::Move,
                            source: egui::MouseWheelSource::Wheel,
                            modifiers: egui::Modifiers::NONE,
                        });
                    }
                    self.phase = Phase::Zooming { frame: frame + 1 };
                }
            }
            Phase::PanZoomed { frame } => {
                self.drag_step(ctx, frame, frames);
                if frame + 1 >= frames {
                    self.report.pan_zoomed = frame_times(&self.cpu, &self.intervals);
                    self.cpu.clear();
                    self.intervals.clear();
                    self.report.pan_zoomed_in_view =
                        self.app.scatter_canvas().in_view().unwrap_or(0);
                    self.report.thumbnails_on_points =
                        self.app.scatter_canvas().drawn_thumbnails().len();
                    self.clicking_since = self.frame;
                    self.phase = Phase::Clicking {
                        clicks: 0,
                        waiting: None,
                    };
                } else {
                    self.phase = Phase::PanZoomed { frame: frame + 1 };
                }
            }
            Phase::Clicking { clicks, waiting } => match waiting {
                Some((id, clicked)) => {
                    let shown = self
                        .app
                        .session()
                        .and_then(|s| s.selection.as_ref())
                        .is_some_and(|s| s.item() == Some(id));
                    if shown {
                        // This frame applied the selection and drew its neighbours: it is
                        // timed once painted, when the next frame starts.
                        self.painted_after = Some(clicked);
                        self.phase = Phase::Clicking {
                            clicks: clicks + 1,
                            waiting: None,
                        };
                    } else if clicked.elapsed().as_secs() > 5 {
                        // The click missed (e.g. the thumbnail moved): pick another one.
                        self.pointed_at = None;
                        self.phase = Phase::Clicking {
                            clicks,
                            waiting: None,
                        };
                    }
                }
                None if (clicks >= 5 || self.frame > self.clicking_since + 900)
                    && self.painted_after.is_none() =>
                {
                    // Back to every point, then a lasso.
                    self.app.scatter_state().reset_view();
                    self.app.scatter_state().set_tool(crate::ui::Tool::Lasso);
                    self.phase = Phase::Lasso { frame: 0 };
                }
                None if self.painted_after.is_some() => {}
                None => {
                    let thumbs = self.app.scatter_canvas().drawn_thumbnails();
                    let current = self
                        .app
                        .session()
                        .and_then(|s| s.selection.as_ref())
                        .and_then(|s| s.item());
                    let target = thumbs
                        .iter()
                        .filter(|(_, id)| Some(*id) != current)
                        .nth(clicks * 3)
                        .or_else(|| thumbs.iter().find(|(_, id)| Some(*id) != current))
                        .copied();
                    match target {
                        // The pointer goes there first; the click follows two frames later
                        // (as a hand would: a click in the frame the pointer jumps could land
                        // on the tooltip still drawn where the pointer was).
                        Some((rect, id)) if self.pointed_at != Some(id) => {
                            self.inject.push(egui::Event::PointerMoved(rect.center()));
                            self.pointed_at = Some(id);
                            self.pointed_frame = self.frame;
                        }
                        Some(_) if self.frame < self.pointed_frame + 2 => {}
                        Some((rect, id)) => {
                            let pos = rect.center();
                            for pressed in [true, false] {
                                self.inject.push(primary(pos, pressed));
                            }
                            self.phase = Phase::Clicking {
                                clicks,
                                waiting: Some((id, Instant::now())),
                            };
                        }
                        // No thumbnail drawn right now (being read): try again next frame.
                        None => {}
                    }
                }
            },
            Phase::Lasso { frame } => {
                // A few frames for the full view to be drawn, then a star-shaped lasso.
                let start = 8;
                let frames = 90;
                if frame >= start {
                    let k = frame - start;
                    let centre = Self::canvas_centre(ctx);
                    let angle = k as f32 / (frames - 1) as f32 * std::f32::consts::TAU;
                    let radius = if k % 2 == 0 { 220.0 } else { 120.0 };
                    let at = centre + egui::vec2(angle.cos(), angle.sin()) * radius;
                    let button = |pressed| primary(at, pressed);
                    self.inject.push(egui::Event::PointerMoved(at));
                    if k == 0 {
                        self.inject.push(button(true));
                    } else if k + 1 == frames {
                        self.inject.push(button(false));
                    }
                }
                // Done once the selection (found on a worker) has arrived.
                let selected = self.app.scatter_state().last_selection().is_some();
                if frame >= start + frames + 3 && (selected || frame > start + frames + 300) {
                    self.report.lasso = frame_times(&self.cpu, &self.intervals);
                    self.cpu.clear();
                    self.intervals.clear();
                    if let Some((n, ms)) = self.app.scatter_state().last_selection() {
                        self.report.lasso_selected = n;
                        self.report.lasso_ms = ms;
                    }
                    self.app.scatter_state().set_tool(crate::ui::Tool::Pan);
                    self.phase = Phase::Done;
                } else {
                    self.phase = Phase::Lasso { frame: frame + 1 };
                }
            }
            Phase::Done => {}
        }
        if self.phase == Phase::Done {
            self.finish(ctx);
        }
    }

    fn finish(&mut self, ctx: &egui::Context) {
        if let Some(session) = self.app.session() {
            self.report.images = session.set.items.len();
            self.report.listings = session.listings.len();
            self.report.encoder = session.set.meta.encoder.describe();
            self.report.embeddings_mb =
                (session.set.matrix.data.len() * 4) as f64 / (1024.0 * 1024.0);
        }
        let (rss, peak) = memory_mb();
        self.report.rss_mb = rss;
        self.report.peak_rss_mb = peak;
        self.report.atlas_thumbnails = self.app.thumbnails_in_atlas();
        self.report.error = self.app.error().map(str::to_string);
        *self.result.lock().unwrap_or_else(|e| e.into_inner()) = Some(self.report.clone());
        ctx.send_viewport_cmd(egui::ViewportCommand::Close);
    }
}

impl eframe::App for Bench {
    fn clear_color(&self, visuals: &egui::Visuals) -> [f32; 4] {
        eframe::App::clear_color(&self.app, visuals)
    }

    fn raw_input_hook(&mut self, _ctx: &egui::Context, raw_input: &mut egui::RawInput) {
        // A click is timed from when the window receives it.
        if let Phase::Clicking {
            waiting: Some((_, clicked)),
            ..
        } = &mut self.phase
        {
            if !self.inject.is_empty() {
                *clicked = Instant::now();
            }
        }
        raw_input.events.append(&mut self.inject);
        if let Some(clicked) = self.painted_after.take() {
            // The frame that showed the neighbours has been painted by now.
            self.report
                .click_to_neighbours_ms
                .push(clicked.elapsed().as_secs_f64() * 1000.0);
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        let cpu = frame.info().cpu_usage.map(|s| f64::from(s) * 1000.0);
        let ctx = ui.ctx().clone();
        if self.frame == 0 {
            let path = self.options.dataset.clone();
            self.app.open(&ctx, path);
        }
        self.app.show(ui);
        if self.phase != Phase::Done {
            self.step(&ctx, cpu);
            if self.phase == Phase::Opening {
                // While the dataset opens, the window repaints as it would for a user watching
                // (progress every 250 ms, thumbnails as they come), not as fast as it can: the
                // app's embedding rate is measured then.
                ctx.request_repaint_after(std::time::Duration::from_millis(250));
            } else {
                ctx.request_repaint();
            }
        }
        self.frame += 1;
    }
}

/// Opens the window on the dataset, runs the measurements and returns them (the window closes
/// when done).
pub fn run_gui_bench(options: GuiBenchOptions) -> Result<GuiBenchReport, String> {
    let result = std::sync::Arc::new(std::sync::Mutex::new(None));
    let native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("natview-bench")
            .with_inner_size([1280.0, 800.0]),
        glow_options: eframe::egui_glow::GlowConfiguration {
            vsync: false,
            ..Default::default()
        },
        persist_window: false,
        ..Default::default()
    };
    let started = Instant::now();
    let worker_result = result.clone();
    let spec = options.spec.clone();
    let dataset_name = options.dataset.display().to_string();
    eframe::run_native(
        "natview-bench",
        native,
        Box::new(move |_cc| {
            let mut app = NatviewApp::empty(spec.clone().unwrap_or_else(super::fallback_spec));
            app.set_encoder_choice(spec.is_some());
            Ok(Box::new(Bench {
                app,
                options,
                started,
                phase: Phase::Opening,
                frame: 0,
                inject: Vec::new(),
                last_frame_start: None,
                cpu: Vec::new(),
                intervals: Vec::new(),
                report: GuiBenchReport {
                    dataset: dataset_name,
                    ..GuiBenchReport::default()
                },
                embed_started: None,
                painted_after: None,
                pointed_at: None,
                pointed_frame: 0,
                clicking_since: 0,
                result: worker_result,
            }))
        }),
    )
    .map_err(|e| format!("the window could not open: {e}"))?;
    let report = result.lock().unwrap_or_else(|e| e.into_inner()).take();
    report.ok_or_else(|| "the window closed before the measurements finished".into())
}
