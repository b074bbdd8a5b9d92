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

/// An observer that watches nothing and never stops the layout.
pub struct Unobserved;

impl LayoutObserver for Unobserved {
    fn progress(&mut self, _phase: &str, _done: usize, _total: usize) -> bool {
        true
    }
}
