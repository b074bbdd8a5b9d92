//! Background-job plumbing shared by the CLI and the GUI: progress reports, cancellation, and
//! long-lived worker threads ([`Worker`]).

mod worker;

pub use worker::{Mailbox, Worker};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Progress of a job: which phase, how far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// Phase name, e.g. "embedding".
    pub phase: String,
    /// Units done.
    pub done: usize,
    /// Units in all.
    pub total: usize,
}

/// Receives progress reports (a progress bar, a channel to the GUI, or nothing).
pub trait ProgressSink: Send + Sync {
    /// Called after each unit of work (batch).
    fn report(&self, progress: Progress);

    /// Something the user should read once (a run waits for a lock, continues a stopped run);
    /// ignored by default.
    fn notice(&self, _message: &str) {}
}

/// A sink that ignores reports.
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn report(&self, _progress: Progress) {}
}

/// A shared flag a job checks between batches.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    /// A flag that is not set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the job to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether a stop was asked for.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
