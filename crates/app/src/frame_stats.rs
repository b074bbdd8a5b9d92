//! Frame timing for measuring responsiveness: with `NATVIEW_FRAME_STATS=1` the app prints, every
//! 120 frames, the UI time per frame (our code: median, 95th percentile, max), eframe's whole-frame
//! CPU time (UI + tessellation + GL painting), and the interval between frames; and after each
//! click on an image the time until its neighbours were drawn.

use std::time::Instant;

/// Frames per report.
const WINDOW: usize = 120;

/// Collects frame timings when enabled.
pub struct FrameStats {
    enabled: bool,
    frame_started: Option<Instant>,
    last_frame_end: Option<Instant>,
    ui_ms: Vec<f64>,
    frame_cpu_ms: Vec<f64>,
    interval_ms: Vec<f64>,
    query_started: Option<Instant>,
}

impl Default for FrameStats {
    fn default() -> Self {
        Self {
            enabled: std::env::var_os("NATVIEW_FRAME_STATS").is_some_and(|v| v != "0"),
            frame_started: None,
            last_frame_end: None,
            ui_ms: Vec::with_capacity(WINDOW),
            frame_cpu_ms: Vec::with_capacity(WINDOW),
            interval_ms: Vec::with_capacity(WINDOW),
            query_started: None,
        }
    }
}

/// The `q` quantile (0–1) of `values`, nearest rank (0 when there are none).
pub(super) fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn summary(values: &mut [f64]) -> String {
    format!(
        "median {:.2} ms, p95 {:.2} ms, max {:.2} ms",
        percentile(values, 0.5),
        percentile(values, 0.95),
        percentile(values, 1.0)
    )
}

impl FrameStats {
    /// Call at the start of a frame.
    pub fn begin(&mut self) {
        if self.enabled {
            self.frame_started = Some(Instant::now());
        }
    }

    /// Call when the frame applied a query (a click on an image happened in the frame before):
    /// the time is counted from the start of that earlier frame.
    pub fn query_applied(&mut self, click_frame_started: Option<Instant>) {
        if self.enabled {
            self.query_started = click_frame_started;
        }
    }

    /// Records eframe's CPU time of the previous whole frame (UI, tessellation, painting).
    pub fn record_frame_cpu(&mut self, seconds: Option<f32>) {
        if let (true, Some(seconds)) = (self.enabled, seconds) {
            self.frame_cpu_ms.push(f64::from(seconds) * 1000.0);
        }
    }

    /// When the current frame started (if measuring).
    pub fn frame_started(&self) -> Option<Instant> {
        self.frame_started
    }

    /// Call at the end of a frame; `view` names what was drawn.
    pub fn end(&mut self, view: &str) {
        let (Some(started), true) = (self.frame_started, self.enabled) else {
            return;
        };
        let now = Instant::now();
        self.ui_ms.push((now - started).as_secs_f64() * 1000.0);
        if let Some(last) = self.last_frame_end {
            self.interval_ms.push((now - last).as_secs_f64() * 1000.0);
        }
        self.last_frame_end = Some(now);
        if let Some(query) = self.query_started.take() {
            eprintln!(
                "frame-stats: click → neighbours drawn in {:.2} ms",
                (now - query).as_secs_f64() * 1000.0
            );
        }
        if self.ui_ms.len() >= WINDOW {
            let ui = summary(&mut self.ui_ms);
            let or_na = |values: &mut Vec<f64>| {
                if values.is_empty() {
                    "n/a".to_string()
                } else {
                    summary(values)
                }
            };
            let frame_cpu = or_na(&mut self.frame_cpu_ms);
            let interval = or_na(&mut self.interval_ms);
            eprintln!(
                "frame-stats [{view}] {WINDOW} frames: UI {ui}; whole frame (CPU) {frame_cpu}; between frames {interval}"
            );
            self.ui_ms.clear();
            self.frame_cpu_ms.clear();
            self.interval_ms.clear();
        }
    }
}
