//! Draws scatters on a worker thread: the window asks for the view it shows (the newest request
//! replaces any not yet started) and keeps drawing the last raster, moved and scaled to the
//! current view, until the new one is ready — so panning a million points never waits.

use super::{rasterise, Raster, ScatterLayer, ScatterStyle, ScatterView};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

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
    stop: bool,
}

struct Shared {
    state: Mutex<State>,
    work: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The worker thread and what it shares with the window.
pub struct ScatterRasteriser {
    shared: Arc<Shared>,
}

impl ScatterRasteriser {
    /// Starts the worker; `wake` is called whenever a raster is ready.
    pub fn new(wake: impl Fn() + Send + 'static) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            work: Condvar::new(),
        });
        let worker = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("natview-scatter".into())
            .spawn(move || run(&worker, &wake));
        if spawned.is_err() {
            shared.lock().stop = true;
        }
        Self { shared }
    }

    /// Asks for `layer` drawn through `view` (replacing a request not yet started).
    pub fn request(&self, layer: Arc<ScatterLayer>, view: ScatterView, style: ScatterStyle) {
        let mut state = self.shared.lock();
        state.request = Some(Request { layer, view, style });
        self.shared.work.notify_all();
    }

    /// Takes the newest finished raster, with the layer it shows.
    pub fn take(&self) -> Option<(Arc<ScatterLayer>, Raster)> {
        self.shared.lock().done.take()
    }

    /// Whether a raster is being drawn or waits to be.
    pub fn is_busy(&self) -> bool {
        let state = self.shared.lock();
        state.busy || state.request.is_some()
    }
}

impl Drop for ScatterRasteriser {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.work.notify_all();
    }
}

fn run(shared: &Shared, wake: &dyn Fn()) {
    loop {
        let request = {
            let mut state = shared.lock();
            while !state.stop && state.request.is_none() {
                state = shared.work.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            if state.stop {
                return;
            }
            state.busy = true;
            state.request.take()
        };
        if let Some(request) = request {
            let raster = rasterise(&request.layer, request.view, request.style);
            let mut state = shared.lock();
            state.done = Some((request.layer, raster));
            state.busy = false;
        }
        wake();
    }
}
