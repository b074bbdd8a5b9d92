//! The Neighbours panel asking a neighbour backend — a Milvus collection that `natview export
//! --milvus` filled — instead of the in-process index. Selecting an item shows the local HNSW
//! answer at once; the backend's answer (a network round trip, with an optional filter on the
//! stored fields) comes from a worker and replaces it when it arrives, if the item is still
//! the one selected. The worker first checks that the collection holds the open set's
//! embeddings (encoder, weights, dataset, items); the answer's stored paths are checked
//! against the set's items when it is shown.

use super::{Job, NatviewApp};
use natview_index::Neighbour;

/// A neighbour backend: where to ask, and what to keep.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NeighbourBackend {
    /// `milvus://HOST:PORT/COLLECTION`.
    pub target: String,
    /// A Milvus filter on the stored fields (`label == "animal"`); empty: none.
    pub filter: String,
}

/// What the backend answered for one item.
#[derive(Debug, Clone)]
pub struct BackendAnswer {
    /// The queried item.
    pub item: usize,
    /// Its neighbours, best first (itself left out).
    pub neighbours: Vec<Neighbour>,
    /// The image path stored beside each neighbour, to check against the set's items.
    pub paths: Vec<String>,
    /// Round-trip time in milliseconds.
    pub search_ms: f64,
    /// Where they came from, for the panel.
    pub source: String,
}

/// The Neighbours panel's backend settings: what is being typed, and what is in use.
#[derive(Debug, Clone, Default)]
pub struct BackendEditor {
    /// The target being typed.
    pub target: String,
    /// The filter being typed.
    pub filter: String,
    /// The backend in use (`None`: the in-process index). Changed only by
    /// `Command::SetNeighbourBackend`.
    pub active: Option<NeighbourBackend>,
}

/// What the open set holds, for the backend to be checked against.
#[cfg(feature = "milvus")]
pub type Holds = natview_interop::milvus::CollectionRecord;
/// What the open set holds (nothing to check without the `milvus` feature).
#[cfg(not(feature = "milvus"))]
#[derive(Debug, Clone, Copy)]
pub struct Holds;

/// What `set` holds, for [`ask_backend`].
#[cfg(feature = "milvus")]
pub fn holds(set: &natview_pipeline::EmbeddingSet) -> Holds {
    natview_interop::milvus::CollectionRecord::of(set)
}

/// What `set` holds (nothing to check without the `milvus` feature).
#[cfg(not(feature = "milvus"))]
pub fn holds(_set: &natview_pipeline::EmbeddingSet) -> Holds {
    Holds
}

impl BackendAnswer {
    /// Checks that each neighbour's stored path is that item's in `items` (the error names the
    /// first that is not: the collection was written from other data).
    pub fn check_paths(&self, items: &[natview_core::dataset::Item]) -> Result<(), String> {
        let answer = self.neighbours.iter().map(|n| n.id);
        let pairs = answer.zip(self.paths.iter().map(String::as_str));
        #[cfg(feature = "milvus")]
        return natview_interop::milvus::check_paths(pairs, items)
            .map_err(|e| format!("{}: {e}", self.source));
        #[cfg(not(feature = "milvus"))]
        {
            let _ = (pairs, items);
            Ok(())
        }
    }
}

/// Asks `backend`, once it is known to hold the embeddings `holds` records, for the `k`
/// nearest items to item `item` (whose vector is `vector`).
#[cfg(feature = "milvus")]
pub fn ask_backend(
    backend: &NeighbourBackend,
    holds: &Holds,
    item: usize,
    vector: &[f32],
    k: usize,
) -> Result<BackendAnswer, String> {
    use natview_interop::milvus::{Milvus, MilvusTarget, CONNECT_TIMEOUT};
    let target = MilvusTarget::parse(backend.target.trim())?;
    let milvus = Milvus::connect(&target, CONNECT_TIMEOUT).map_err(|e| e.to_string())?;
    milvus.check_holds(holds).map_err(|e| e.to_string())?;
    let filter = Some(backend.filter.trim()).filter(|f| !f.is_empty());
    let started = std::time::Instant::now();
    let hits = milvus
        .neighbours(vector, Some(item), k, 64, filter)
        .map_err(|e| e.to_string())?;
    let search_ms = started.elapsed().as_secs_f64() * 1000.0;
    let neighbours = hits
        .iter()
        .map(|h| Neighbour {
            id: h.id,
            similarity: h.similarity,
        })
        .collect();
    Ok(BackendAnswer {
        item,
        neighbours,
        paths: hits.into_iter().map(|h| h.path).collect(),
        search_ms,
        source: match filter {
            Some(f) => format!("{}, {f}", target.display()),
            None => target.display(),
        },
    })
}

/// Without the `milvus` feature there is no backend to ask.
#[cfg(not(feature = "milvus"))]
pub fn ask_backend(
    backend: &NeighbourBackend,
    _holds: &Holds,
    _item: usize,
    _vector: &[f32],
    _k: usize,
) -> Result<BackendAnswer, String> {
    Err(format!(
        "{}: this natview was built without Milvus support (cargo feature `milvus`)",
        backend.target
    ))
}

impl NatviewApp {
    /// Uses `backend` for the Neighbours panel from now on (`None`: the in-process index) and
    /// asks it about the current selection.
    pub(super) fn set_neighbour_backend(
        &mut self,
        ctx: &egui::Context,
        backend: Option<NeighbourBackend>,
    ) {
        self.views.backend.active = backend;
        let item = self
            .session
            .as_ref()
            .and_then(|s| s.selection.as_ref()?.item());
        match item {
            Some(item) if self.views.backend.active.is_some() => {
                self.start_backend_query(ctx, item)
            }
            Some(item) => {
                if let Some(session) = &mut self.session {
                    if let Err(e) = session.select(item) {
                        self.error = Some(e);
                    }
                }
            }
            None => {}
        }
    }

    /// Asks the backend in use (if any) about `item` on a worker.
    pub(super) fn start_backend_query(&mut self, ctx: &egui::Context, item: usize) {
        let (Some(backend), Some(session)) = (&self.views.backend.active, &self.session) else {
            return;
        };
        if item >= session.set.items.len() {
            return;
        }
        let backend = backend.clone();
        let holds = holds(&session.set);
        let vector = session.set.matrix.row(item).to_vec();
        let title = format!("asking {} about item {item}", backend.target);
        self.jobs.backend = Some(Job::spawn("neighbour backend", title, ctx, move |_, _| {
            ask_backend(&backend, &holds, item, &vector, super::NEIGHBOURS_K)
        }));
    }
}
