//! Draws scatters on a worker thread: the window asks for the view it shows (the newest request
//! replaces any not yet started) and keeps drawing the last raster, moved and scaled to the
//! current view, until the new one is ready — so panning a million points never waits.

use super::{rasterise, Raster, ScatterLayer, ScatterStyle, ScatterView};
use natview_core::jobs::{Mailbox, Worker};
use std::sync::Arc;

struct Request {
    layer: Arc<ScatterLayer>,
    view: ScatterView,
    style: ScatterStyle,
}

#[derive(Default)]
struct State {
    request: Option<Request>,
    done: Option<(Arc<ScatterLayer>, Raster)>,
    busy: bool,
}

/// The worker thread and what it shares with the window.
pub struct ScatterRasteriser {
    worker: Worker<State>,
}

impl ScatterRasteriser {
    /// Starts the worker; `wake` is called whenever a raster is ready.
    pub fn new(wake: impl Fn() + Send + 'static) -> Self {
        let worker = Worker::spawn("natview-scatter", State::default(), move |mailbox| {
            run(mailbox, &wake)
        });
        Self { worker }
    }

    /// Asks for `layer` drawn through `view` (replacing a request not yet started).
    pub fn request(&self, layer: Arc<ScatterLayer>, view: ScatterView, style: ScatterStyle) {
        let mailbox = self.worker.mailbox();
        mailbox.lock().request = Some(Request { layer, view, style });
        mailbox.notify();
    }

    /// Takes the newest finished raster, with the layer it shows.
    pub fn take(&self) -> Option<(Arc<ScatterLayer>, Raster)> {
        self.worker.mailbox().lock().done.take()
    }

    /// Whether a raster is being drawn or waits to be.
    pub fn is_busy(&self) -> bool {
        let state = self.worker.mailbox().lock();
        state.busy || state.request.is_some()
    }
}

fn run(mailbox: &Mailbox<State>, wake: &dyn Fn()) {
    let take = |state: &mut State| {
        let request = state.request.take()?;
        state.busy = true;
        Some(request)
    };
    while let Some(request) = mailbox.next(take) {
        let raster = rasterise(&request.layer, request.view, request.style);
        {
            let mut state = mailbox.lock();
            state.done = Some((request.layer, raster));
            state.busy = false;
        }
        wake();
    }
}
