//! What the iterative 2-D layouts (UMAP, t-SNE) share: the observer that sees their progress,
//! takes intermediate layouts to stream into the app, and can stop them.

/// Watches an iterative layout. The layout calls [`LayoutObserver::progress`] after every
/// iteration (cheap), and hands over a copy of its current points only when
/// [`LayoutObserver::wants_snapshot`] says so (the app asks every few hundred milliseconds).
pub trait LayoutObserver {
    /// `done` of `total` steps of `phase` are finished; returning `false` stops the layout,
    /// which then returns [`super::AnalysisError::Cancelled`].
    fn progress(&mut self, phase: &str, done: usize, total: usize) -> bool;
    /// Whether a copy of the current layout is wanted now.
    fn wants_snapshot(&mut self) -> bool {
        false
    }
    /// The current layout (one `[x, y]` per row), when [`LayoutObserver::wants_snapshot`] said so.
    fn snapshot(&mut self, _points: Vec<[f32; 2]>) {}
}

/// Forwards an analysis's progress to a background job's sink and stops it when the job is
/// cancelled (the app's jobs and the report use it).
pub struct JobObserver<'a> {
    progress: &'a dyn natview_core::jobs::ProgressSink,
    cancel: &'a natview_core::jobs::CancelFlag,
}

impl<'a> JobObserver<'a> {
    /// The observer of a job with this progress sink and cancel flag.
    pub fn new(
        progress: &'a dyn natview_core::jobs::ProgressSink,
        cancel: &'a natview_core::jobs::CancelFlag,
    ) -> Self {
        Self { progress, cancel }
    }
}

impl LayoutObserver for JobObserver<'_> {
    fn progress(&mut self, phase: &str, done: usize, total: usize) -> bool {
        self.progress.report(natview_core::jobs::Progress {
            phase: phase.to_string(),
            done,
            total,
        });
        !self.cancel.is_cancelled()
    }
}

/// An observer that watches nothing and never stops the layout.
pub struct Unobserved;

impl LayoutObserver for Unobserved {
    fn progress(&mut self, _phase: &str, _done: usize, _total: usize) -> bool {
        true
    }
}
