//! A long-lived worker thread and the state it shares with whoever asks it for work (the
//! window): requests are written into the state, the worker waits for something to take out of
//! it, and it stops when its owner is dropped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// The state shared with a worker, and the signal that wakes it.
pub struct Mailbox<S> {
    state: Mutex<S>,
    work: Condvar,
    stop: AtomicBool,
}

impl<S> Mailbox<S> {
    /// The shared state (a panic elsewhere does not make it unusable).
    pub fn lock(&self) -> MutexGuard<'_, S> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the worker to look at the state again.
    pub fn notify(&self) {
        self.work.notify_all();
    }

    /// For the worker: waits until `take` finds work in the state (and returns it), or until
    /// the worker is to stop (`None`).
    pub fn next<T>(&self, mut take: impl FnMut(&mut S) -> Option<T>) -> Option<T> {
        let mut state = self.lock();
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return None;
            }
            if let Some(work) = take(&mut state) {
                return Some(work);
            }
            state = self.work.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn stop(&self) {
        // Under the lock, so that a worker between its check and its wait cannot miss it.
        let _state = self.lock();
        self.stop.store(true, Ordering::SeqCst);
        self.work.notify_all();
    }
}

/// A worker thread running `run` over a shared state; dropping it stops the thread (at its
/// next [`Mailbox::next`]).
pub struct Worker<S> {
    mailbox: Arc<Mailbox<S>>,
}

impl<S: Send + 'static> Worker<S> {
    /// Starts a thread named `name`. If no thread can be started, requests stay in the state
    /// unanswered.
    pub fn spawn(name: &str, state: S, run: impl FnOnce(&Mailbox<S>) + Send + 'static) -> Self {
        let mailbox = Arc::new(Mailbox {
            state: Mutex::new(state),
            work: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let worker = mailbox.clone();
        let spawned = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || run(&worker));
        if spawned.is_err() {
            mailbox.stop();
        }
        Self { mailbox }
    }

    /// The shared state and its signal.
    pub fn mailbox(&self) -> &Mailbox<S> {
        &self.mailbox
    }
}

impl<S> Drop for Worker<S> {
    fn drop(&mut self) {
        self.mailbox.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worker_takes_requests_and_stops_when_dropped() {
        let (send, receive) = std::sync::mpsc::channel();
        let worker = Worker::spawn("natview-test", Vec::<u32>::new(), move |mailbox| {
            while let Some(n) = mailbox.next(|queue| queue.pop()) {
                let _ = send.send(n * 2);
            }
            let _ = send.send(0);
        });
        worker.mailbox().lock().push(21);
        worker.mailbox().notify();
        let timeout = std::time::Duration::from_secs(10);
        assert_eq!(receive.recv_timeout(timeout), Ok(42));
        drop(worker);
        assert_eq!(
            receive.recv_timeout(timeout),
            Ok(0),
            "stopped after the drop"
        );
    }
}
