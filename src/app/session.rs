//! An open dataset: its items, embeddings, index and thumbnails, plus the current selection and
//! its neighbours. Runtime data only; nothing here is persisted by eframe.

use crate::dataset::{Dataset, Skipped};
use crate::index::{Neighbour, NeighbourIndex};
use crate::pipeline::EmbeddingSet;
use crate::workspace::Workspace;

/// An open dataset.
pub struct Session {
    /// The dataset as loaded.
    pub dataset: Dataset,
    /// Its workspace.
    pub workspace: Workspace,
    /// Embedded items and their vectors.
    pub set: EmbeddingSet,
    /// The HNSW index of `set`.
    pub index: NeighbourIndex,
    /// One thumbnail per embedded item (`None` if it could not be decoded again).
    pub thumbnails: Vec<Option<egui::ColorImage>>,
    /// Files left out when the dataset was embedded.
    pub skipped: Vec<Skipped>,
    /// Listings (name, item ids) in dataset order.
    pub listings: Vec<(String, Vec<usize>)>,
    /// The selected item and its neighbours.
    pub selection: Option<Selection>,
}

/// The selected item and its nearest neighbours.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// Item id.
    pub item: usize,
    /// Its neighbours, best first (itself excluded).
    pub neighbours: Vec<Neighbour>,
    /// Search time in milliseconds.
    pub search_ms: f64,
}

/// Neighbours shown for a selection.
pub const NEIGHBOURS_K: usize = 12;

impl Session {
    /// Assembles a session.
    pub fn new(
        dataset: Dataset,
        workspace: Workspace,
        set: EmbeddingSet,
        index: NeighbourIndex,
        thumbnails: Vec<Option<egui::ColorImage>>,
        skipped: Vec<Skipped>,
    ) -> Self {
        let listings = crate::dataset::group_by_listing(&set.items);
        Self {
            dataset,
            workspace,
            set,
            index,
            thumbnails,
            skipped,
            listings,
            selection: None,
        }
    }

    /// Selects an item and finds its neighbours with the index.
    pub fn select(&mut self, item: usize) -> Result<(), String> {
        if item >= self.set.items.len() {
            return Err(format!("no item {item}"));
        }
        let started = std::time::Instant::now();
        let neighbours = self
            .index
            .search_excluding(self.set.matrix.row(item), item, NEIGHBOURS_K, None)
            .map_err(|e| e.to_string())?;
        self.selection = Some(Selection {
            item,
            neighbours,
            search_ms: started.elapsed().as_secs_f64() * 1000.0,
        });
        Ok(())
    }
}
