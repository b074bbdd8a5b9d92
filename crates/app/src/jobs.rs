//! Background jobs of the app: each runs on a named worker thread, reports progress over a
//! channel (asking egui to repaint), checks a cancel flag between batches, and ends with one
//! result or one error message. At most one job of each [`JobKind`] runs at a time.

use natview_core::jobs::{CancelFlag, Progress, ProgressSink};
use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};

/// The kinds of job; starting a job of a kind cancels the one of that kind still running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// Load, embed, index and make thumbnails.
    Open,
    /// Compute a quadrant chart.
    Quadrant,
    /// Render a quadrant chart to a PNG file.
    Export,
    /// Compute a 2D projection.
    Projection,
    /// Evaluate the model and the pixel baseline.
    Metrics,
    /// Embed a query (an image from outside the dataset, or a text) and find its neighbours.
    Query,
    /// Fine-tune an encoder on the open dataset.
    Finetune,
    /// Build a review queue.
    Review,
    /// Ask the neighbour backend (a Milvus collection) about the selected item.
    Backend,
    /// Compare two encoders of the open dataset.
    Diff,
    /// The augmentation-shortcut probe of the current encoder.
    Shortcut,
    /// How well the current projection keeps each point's neighbours.
    Faithfulness,
}

impl JobKind {
    /// Every kind, in the order the status bar lists them.
    pub const ALL: [JobKind; 12] = [
        JobKind::Open,
        JobKind::Quadrant,
        JobKind::Export,
        JobKind::Projection,
        JobKind::Metrics,
        JobKind::Query,
        JobKind::Finetune,
        JobKind::Review,
        JobKind::Backend,
        JobKind::Diff,
        JobKind::Shortcut,
        JobKind::Faithfulness,
    ];

    /// Whether the job works on the open session's results (and is stopped when another
    /// dataset or encoder opens). A fine-tune holds its own copy of its dataset and runs on.
    pub fn follows_session(self) -> bool {
        !matches!(self, JobKind::Open | JobKind::Finetune)
    }
}

/// What a worker sends.
enum JobEvent<T> {
    Progress(Progress),
    Done(T),
    Failed(String),
}

/// A running job producing a `T`.
pub struct Job<T> {
    events: Receiver<JobEvent<T>>,
    cancel: CancelFlag,
    title: String,
    progress: Option<Progress>,
}

/// The outcome of polling a job.
pub enum JobPoll<T> {
    /// Still running.
    Running,
    /// Finished with a result.
    Done(T),
    /// Failed, was cancelled, or the worker died; one line for the user.
    Failed(String),
}

struct ChannelProgress<T> {
    sender: Sender<JobEvent<T>>,
    ctx: egui::Context,
    /// The phase of the last report: a new phase (e.g. a preview handed over before it) is
    /// drawn at once.
    phase: std::sync::Mutex<String>,
}

/// Progress is drawn at most this often: a repaint per batch would make the window (software
/// rendered, on the same two cores) take CPU time from the job it shows.
const PROGRESS_REPAINT: std::time::Duration = std::time::Duration::from_millis(250);

impl<T: Send> ProgressSink for ChannelProgress<T> {
    fn report(&self, progress: Progress) {
        let new_phase = {
            let mut phase = self.phase.lock().unwrap_or_else(|e| e.into_inner());
            let new = *phase != progress.phase;
            if new {
                phase.clone_from(&progress.phase);
            }
            new
        };
        let _ = self.sender.send(JobEvent::Progress(progress));
        if new_phase {
            self.ctx.request_repaint();
        } else {
            self.ctx.request_repaint_after(PROGRESS_REPAINT);
        }
    }
}

impl<T: Send + 'static> Job<T> {
    /// Starts `work` on a thread named `natview-<name>`; `title` is shown in the status bar.
    pub fn spawn(
        name: &str,
        title: impl Into<String>,
        ctx: &egui::Context,
        work: impl FnOnce(&dyn ProgressSink, &CancelFlag) -> Result<T, String> + Send + 'static,
    ) -> Self {
        let (sender, events) = channel();
        let cancel = CancelFlag::new();
        let worker_cancel = cancel.clone();
        let worker_ctx = ctx.clone();
        let worker_sender = sender.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("natview-{name}"))
            .spawn(move || {
                let progress = ChannelProgress {
                    sender: worker_sender.clone(),
                    ctx: worker_ctx.clone(),
                    phase: std::sync::Mutex::new(String::new()),
                };
                let event = match work(&progress, &worker_cancel) {
                    Ok(result) => JobEvent::Done(result),
                    Err(e) => JobEvent::Failed(e),
                };
                let _ = worker_sender.send(event);
                worker_ctx.request_repaint();
            });
        if let Err(e) = spawned {
            let _ = sender.send(JobEvent::Failed(format!("cannot start a worker: {e}")));
        }
        Self {
            events,
            cancel,
            title: title.into(),
            progress: None,
        }
    }

    /// Takes what the worker sent so far.
    pub fn poll(&mut self) -> JobPoll<T> {
        loop {
            match self.events.try_recv() {
                Ok(JobEvent::Progress(p)) => self.progress = Some(p),
                Ok(JobEvent::Done(result)) => return JobPoll::Done(result),
                Ok(JobEvent::Failed(e)) => return JobPoll::Failed(e),
                Err(TryRecvError::Empty) => return JobPoll::Running,
                Err(TryRecvError::Disconnected) => {
                    return JobPoll::Failed(format!("{}: the job stopped unexpectedly", self.title))
                }
            }
        }
    }
}

impl<T> Job<T> {
    /// Asks the worker to stop at its next check.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// What the job does.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// The last progress report.
    pub fn progress(&self) -> Option<&Progress> {
        self.progress.as_ref()
    }
}

impl<T> Drop for Job<T> {
    /// A job nobody waits for any more stops.
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// A running job as the status bar shows it.
#[derive(Debug, Clone)]
pub struct JobStatus {
    /// Its kind (for the cancel button).
    pub kind: JobKind,
    /// What it does.
    pub title: String,
    /// Its last progress report.
    pub progress: Option<Progress>,
}

impl<T> Job<T> {
    /// The status bar's view of this job.
    pub fn status(&self, kind: JobKind) -> JobStatus {
        JobStatus {
            kind,
            title: self.title.clone(),
            progress: self.progress.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait<T: Send + 'static>(job: &mut Job<T>) -> JobPoll<T> {
        for _ in 0..500 {
            match job.poll() {
                JobPoll::Running => std::thread::sleep(std::time::Duration::from_millis(5)),
                other => return other,
            }
        }
        panic!("job did not finish");
    }

    #[test]
    fn a_job_reports_progress_then_its_result() {
        let ctx = egui::Context::default();
        let mut job = Job::spawn("test", "adding", &ctx, |progress, _| {
            progress.report(Progress {
                phase: "adding".into(),
                done: 1,
                total: 2,
            });
            Ok(40 + 2)
        });
        match wait(&mut job) {
            JobPoll::Done(value) => assert_eq!(value, 42),
            _ => panic!("expected a result"),
        }
        assert_eq!(job.progress().map(|p| p.done), Some(1));
    }

    #[test]
    fn a_cancelled_job_stops_and_a_panicking_one_is_reported() {
        let ctx = egui::Context::default();
        let mut job: Job<()> = Job::spawn("test", "waiting", &ctx, |_, cancel| {
            while !cancel.is_cancelled() {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err("cancelled".into())
        });
        job.cancel();
        assert!(matches!(wait(&mut job), JobPoll::Failed(e) if e == "cancelled"));

        let mut job: Job<()> = Job::spawn("test", "crashing", &ctx, |_, _| {
            panic!("worker bug (expected in this test)")
        });
        assert!(
            matches!(wait(&mut job), JobPoll::Failed(e) if e.contains("crashing: the job stopped unexpectedly"))
        );
    }
}
