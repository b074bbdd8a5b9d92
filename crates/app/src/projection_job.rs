//! The projection job: a dataset's PCA / UMAP / t-SNE layout made on a worker
//! ([`natview_pipeline::layouts::dataset_layout`]: a saved layout reopens at once), with the layout so far
//! handed to the scatter every few hundred milliseconds while UMAP or t-SNE runs.

use natview_analysis::layout::LayoutObserver;
use natview_analysis::projection::ProjectionSpec;
use natview_analysis::quality::LayoutQuality;
use natview_analysis::scatter::PointGrid;
use natview_analysis::{AnalysisError, Projection};
use natview_core::jobs::{CancelFlag, Progress, ProgressSink};
use natview_core::workspace::Workspace;
use natview_pipeline::layouts::{dataset_layout, LayoutError, LayoutOptions};
use natview_pipeline::EmbeddingSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the layout so far is handed to the scatter.
const FRAME_INTERVAL: Duration = Duration::from_millis(300);

/// A 2-D layout for the scatter: finished, or the layout so far of one still running.
pub struct ProjectionResult {
    /// Unique per result.
    pub id: u64,
    /// The method and parameters.
    pub spec: ProjectionSpec,
    /// The points (one per item, in item order) and explained variance.
    pub projection: Projection,
    /// The points again, shared with the scatter's drawing worker.
    pub points: Arc<Vec<[f32; 2]>>,
    /// A grid over the points for picking and selection.
    pub grid: Arc<PointGrid>,
    /// Where its CSV was written (finished layouts).
    pub csv_path: Option<PathBuf>,
    /// Computing time in seconds (so far, for a layout still running).
    pub duration_secs: f64,
    /// Read back from the workspace.
    pub reused: bool,
    /// `Some((phase, done, total))` for the layout so far of a running (or stopped) job.
    pub partial: Option<(String, usize, usize)>,
    /// Neighbourhood preservation, when measured.
    pub quality: Option<LayoutQuality>,
}

impl ProjectionResult {
    fn new(spec: ProjectionSpec, projection: Projection, duration_secs: f64) -> Self {
        let points = Arc::new(projection.points.clone());
        Self {
            id: super::work::next_result_id(),
            spec,
            grid: Arc::new(PointGrid::build(&points)),
            points,
            projection,
            csv_path: None,
            duration_secs,
            reused: false,
            partial: None,
            quality: None,
        }
    }
}

/// Where the worker leaves the newest layout so far for the window to take.
pub type LayoutFrames = Arc<Mutex<Option<ProjectionResult>>>;

/// Forwards a layout's progress to the job, stops it when the job is cancelled, and leaves a
/// snapshot in `frames` every [`FRAME_INTERVAL`].
struct StreamingObserver<'a> {
    spec: ProjectionSpec,
    progress: &'a dyn ProgressSink,
    cancel: &'a CancelFlag,
    frames: LayoutFrames,
    started: Instant,
    last_frame: Instant,
    phase: (String, usize, usize),
}

impl LayoutObserver for StreamingObserver<'_> {
    fn progress(&mut self, phase: &str, done: usize, total: usize) -> bool {
        self.phase = (phase.to_string(), done, total);
        self.progress.report(Progress {
            phase: phase.to_string(),
            done,
            total,
        });
        !self.cancel.is_cancelled()
    }

    fn wants_snapshot(&mut self) -> bool {
        self.last_frame.elapsed() >= FRAME_INTERVAL
    }

    fn snapshot(&mut self, points: Vec<[f32; 2]>) {
        self.last_frame = Instant::now();
        let projection = Projection {
            method: self.spec.method.name().into(),
            points,
            explained_variance_ratio: [0.0, 0.0],
            input_variance_kept: None,
        };
        let mut frame =
            ProjectionResult::new(self.spec, projection, self.started.elapsed().as_secs_f64());
        frame.partial = Some(self.phase.clone());
        if let Ok(mut slot) = self.frames.lock() {
            *slot = Some(frame);
        }
    }
}

/// Makes (or reopens) the layout of `set` as `spec` says, streaming frames into `frames`.
pub fn compute_projection(
    set: &EmbeddingSet,
    workspace: &Workspace,
    spec: ProjectionSpec,
    frames: LayoutFrames,
    progress: &dyn ProgressSink,
    cancel: &CancelFlag,
) -> Result<ProjectionResult, String> {
    let mut observer = StreamingObserver {
        spec,
        progress,
        cancel,
        frames,
        started: Instant::now(),
        last_frame: Instant::now(),
        phase: (String::new(), 0, 0),
    };
    let layout = dataset_layout(
        set,
        workspace,
        &spec,
        LayoutOptions::default(),
        &mut observer,
    )
    .map_err(|e| match e {
        LayoutError::Analysis(AnalysisError::Cancelled) => "cancelled".to_string(),
        e => e.to_string(),
    })?;
    let mut result = ProjectionResult::new(spec, layout.projection, layout.meta.seconds);
    result.csv_path = Some(layout.csv_path);
    result.reused = layout.reused;
    result.quality = layout.meta.quality;
    Ok(result)
}
