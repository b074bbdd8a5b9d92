//! An open dataset: its items, embeddings, index, where its thumbnails come from and its label
//! store, plus the current query and its neighbours. While a dataset is still being embedded
//! the app shows a *preview* session: the items found by the scan, thumbnails decoded from the
//! files, no embeddings yet. Runtime data only; nothing here is persisted by eframe.

use natview_core::dataset::{Dataset, Skipped};
use natview_core::workspace::Workspace;
use natview_index::{Neighbour, NeighbourIndex};
use natview_labels::{ItemRef, LabelStore};
use natview_pipeline::store::EmbeddingsMeta;
use natview_pipeline::thumbs::ThumbnailSource;
use natview_pipeline::EmbeddingSet;
use std::path::PathBuf;
use std::sync::Arc;

/// An open dataset.
pub struct Session {
    /// The dataset as loaded (shared with background jobs).
    pub dataset: Arc<Dataset>,
    /// Its workspace.
    pub workspace: Workspace,
    /// Embedded items and their vectors (shared with background jobs).
    pub set: Arc<EmbeddingSet>,
    /// The HNSW index of `set` (`None` in a preview, before the embeddings exist).
    pub index: Option<Arc<NeighbourIndex>>,
    /// Where the items' thumbnails are read from (on demand, by the window's loader).
    pub thumbnails: ThumbnailSource,
    /// Files left out when the dataset was embedded.
    pub skipped: Vec<Skipped>,
    /// Listings (name, item ids) in dataset order.
    pub listings: Vec<(String, Vec<usize>)>,
    /// Each listing's coherence (same order as `listings`; `None` under two views): its views'
    /// mean cosine on a scale where 0 is any two images of the dataset and 1 the median
    /// listing (`natview_analysis::review::listing_coherence`).
    pub coherence: Vec<Option<f32>>,
    /// Why the dataset can have no quadrant chart (too few listings with several views), in
    /// words; `None` when it can.
    pub quadrant_unavailable: Option<String>,
    /// Distinct item labels (class labels of the manifest), sorted.
    pub distinct_labels: Vec<String>,
    /// Metadata columns present on any item, sorted.
    pub metadata_columns: Vec<String>,
    /// Each item's key in the label store: its dataset-relative path.
    pub item_keys: Arc<Vec<String>>,
    /// The analysts' labels (`None` if the store could not be opened; the error was shown).
    pub labels: Option<LabelStore>,
    /// The current query and its neighbours.
    pub selection: Option<Selection>,
    /// Label changes made in this session, the last one undone first.
    pub label_undo: Vec<natview_labels::LabelChange>,
    /// The encoders on offer for this dataset (the model picker), found while opening.
    pub encoders: Vec<natview_train::catalogue::AvailableEncoder>,
    /// What opening it has to tell the user: a stale or damaged cache recomputed, a stopped
    /// run continued, thumbnails not saved.
    pub open_notes: Vec<String>,
    /// Whether the encoder can rank the dataset by a text: its text tower in one line, or why
    /// not (found while opening).
    pub text_search: Result<String, String>,
    /// The dataset ranked by the last text searched for.
    pub text_matches: Option<crate::text_search::TextMatches>,
    /// What opening had to leave out (a label store that cannot be opened), for the window
    /// to show as an error.
    pub open_error: Option<String>,
}

/// What the neighbours were searched for.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    /// An item of the dataset.
    Item(usize),
    /// An image file from outside the dataset.
    Image {
        /// The file.
        path: PathBuf,
        /// Its thumbnail.
        thumbnail: Option<egui::ColorImage>,
    },
    /// A text, through the encoder's text tower.
    Text {
        /// The text.
        text: String,
    },
}

/// The current query and its nearest neighbours.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// What was searched for.
    pub query: Query,
    /// The neighbours, best first (an item query excludes itself).
    pub neighbours: Vec<Neighbour>,
    /// Search time in milliseconds.
    pub search_ms: f64,
    /// What answered: `HNSW` (in process), or the neighbour backend.
    pub source: String,
}

impl Selection {
    /// The queried item, when the query is an item of the dataset.
    pub fn item(&self) -> Option<usize> {
        match self.query {
            Query::Item(id) => Some(id),
            Query::Image { .. } | Query::Text { .. } => None,
        }
    }
}

/// Neighbours shown for a selection.
pub const NEIGHBOURS_K: usize = 12;

impl Session {
    /// A preview of a dataset being embedded with `spec`: its items (ids = dataset order),
    /// thumbnails from the workspace's file when one was made from this dataset (a reopen),
    /// else decoded from the image files; no embeddings or index yet.
    pub fn preview(
        dataset: Arc<Dataset>,
        workspace: Workspace,
        spec: natview_encoder::EncoderSpec,
    ) -> Self {
        let mut items = dataset.items.clone();
        for (id, item) in items.iter_mut().enumerate() {
            item.id = id;
        }
        // A thumbnail file made from this very dataset (a reopen) already holds every item in
        // this order; else the image files are decoded.
        let path = workspace.thumbnails_path();
        let stored = if path.exists() {
            natview_pipeline::thumbs::ThumbnailStore::open_for_dataset(
                &path,
                &dataset.fingerprint(),
                items.len(),
            )
        } else {
            Err(natview_core::workspace::WorkspaceError::io(
                &path,
                "no thumbnail file yet",
            ))
        };
        let thumbnails = match stored {
            Ok(store) => ThumbnailSource::Store(Arc::new(store)),
            Err(_) => ThumbnailSource::Files(Arc::new(
                items.iter().map(|i| dataset.item_path(i)).collect(),
            )),
        };
        let set = EmbeddingSet {
            items,
            matrix: natview_core::linalg::Matrix {
                rows: 0,
                dim: 0,
                data: Vec::new(),
            },
            meta: EmbeddingsMeta {
                encoder: spec,
                weights_fingerprint: String::new(),
                dataset_fingerprint: String::new(),
                items_fingerprint: format!("preview of {}", dataset.source.display()),
                embeddings_fingerprint: String::new(),
                image_pipeline: String::new(),
            },
            clusters: None,
        };
        let skipped = dataset.skipped.clone();
        let labels = LabelStore::open(&workspace.labels_path()).ok();
        Self::new(
            dataset,
            workspace,
            Arc::new(set),
            None,
            thumbnails,
            skipped,
            labels,
        )
    }

    /// Whether the embeddings and the index exist (not a preview).
    pub fn is_embedded(&self) -> bool {
        self.index.is_some()
    }

    /// Assembles a session.
    pub fn new(
        dataset: Arc<Dataset>,
        workspace: Workspace,
        set: Arc<EmbeddingSet>,
        index: Option<Arc<NeighbourIndex>>,
        thumbnails: ThumbnailSource,
        skipped: Vec<Skipped>,
        mut labels: Option<LabelStore>,
    ) -> Self {
        if let Some(store) = labels.as_mut() {
            // Labels record the encoder in use (none yet in a preview).
            let embedded = set.matrix.rows > 0;
            store.set_model(embedded.then(|| set.meta.encoder.describe()));
        }
        let listings = natview_core::dataset::group_by_listing(&set.items);
        let coherence = coherence_of(&set, listings.len());
        let quadrant_unavailable = natview_analysis::why_no_quadrant_chart(&listings);
        let item_keys = Arc::new(
            set.items
                .iter()
                .map(|i| i.path.to_string_lossy().into_owned())
                .collect(),
        );
        let distinct_labels: std::collections::BTreeSet<&str> = set
            .items
            .iter()
            .filter_map(|i| i.label.as_deref())
            .collect();
        let distinct_labels: Vec<String> =
            distinct_labels.into_iter().map(str::to_string).collect();
        let metadata_columns: std::collections::BTreeSet<String> = set
            .items
            .iter()
            .fold(
                std::collections::BTreeSet::<&str>::new(),
                |mut seen, item| {
                    seen.extend(item.metadata.keys().map(String::as_str));
                    seen
                },
            )
            .into_iter()
            .map(str::to_string)
            .collect();
        let encoders = natview_train::catalogue::available_encoders(&workspace);
        Self {
            encoders,
            distinct_labels,
            metadata_columns: metadata_columns.into_iter().collect(),
            dataset,
            workspace,
            set,
            index,
            thumbnails,
            skipped,
            listings,
            coherence,
            quadrant_unavailable,
            item_keys,
            labels,
            selection: None,
            label_undo: Vec::new(),
            open_notes: Vec::new(),
            open_error: None,
            text_search: Err("the dataset is not embedded yet".into()),
            text_matches: None,
        }
    }

    /// Selects an item and finds its neighbours with the index (none yet in a preview).
    pub fn select(&mut self, item: usize) -> Result<(), String> {
        if item >= self.set.items.len() {
            return Err(format!("no item {item}"));
        }
        let started = std::time::Instant::now();
        let neighbours = match &self.index {
            Some(index) => index
                .search_excluding(self.set.matrix.row(item), item, NEIGHBOURS_K, None)
                .map_err(|e| e.to_string())?,
            None => Vec::new(),
        };
        self.selection = Some(Selection {
            query: Query::Item(item),
            neighbours,
            search_ms: started.elapsed().as_secs_f64() * 1000.0,
            source: "HNSW".into(),
        });
        Ok(())
    }

    /// Shows what the neighbour backend answered, when its item is still the one selected; an
    /// answer whose stored paths are not the set's items' is refused.
    pub fn show_backend_answer(
        &mut self,
        answer: super::backend_job::BackendAnswer,
    ) -> Result<(), String> {
        let Some(selection) = &mut self.selection else {
            return Ok(());
        };
        if selection.item() != Some(answer.item) {
            return Ok(());
        }
        answer.check_paths(&self.set.items)?;
        selection.neighbours = answer.neighbours;
        selection.search_ms = answer.search_ms;
        selection.source = answer.source;
        Ok(())
    }

    /// Makes an external image (already embedded) the query.
    pub fn select_image(
        &mut self,
        path: PathBuf,
        vector: &[f32],
        thumbnail: Option<egui::ColorImage>,
    ) -> Result<(), String> {
        let started = std::time::Instant::now();
        let index = self
            .index
            .as_ref()
            .ok_or_else(|| format!("{}: the dataset is still being embedded", path.display()))?;
        let neighbours = index
            .search(vector, NEIGHBOURS_K, None)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        self.selection = Some(Selection {
            query: Query::Image { path, thumbnail },
            neighbours,
            search_ms: started.elapsed().as_secs_f64() * 1000.0,
            source: "HNSW".into(),
        });
        Ok(())
    }

    /// How the label store refers to item `id`.
    pub fn item_ref(&self, id: usize) -> ItemRef<'_> {
        let item = &self.set.items[id];
        ItemRef {
            path: &self.item_keys[id],
            listing: &item.listing,
        }
    }

    /// The cosine similarity of items `a` and `b` under the session's encoder (`None` in a
    /// preview).
    pub fn similarity(&self, a: usize, b: usize) -> Option<f32> {
        let m = &self.set.matrix;
        (a < m.rows && b < m.rows).then(|| natview_core::linalg::dot(m.row(a), m.row(b)))
    }

    /// The label store's key of item `id` (its dataset-relative path).
    pub fn item_key(&self, id: usize) -> &str {
        &self.item_keys[id]
    }
}

/// Each listing's coherence, in first-appearance order (that of `group_by_listing`); none for
/// embeddings not computed yet (a preview).
fn coherence_of(set: &EmbeddingSet, listings: usize) -> Vec<Option<f32>> {
    if set.matrix.rows == 0 || set.matrix.rows != set.items.len() {
        return vec![None; listings];
    }
    let numbers = natview_analysis::listing_numbers(&set.items);
    let none = |_: usize, _: usize| false;
    let input = natview_analysis::review::ReviewInput {
        matrix: &set.matrix,
        listing: &numbers,
        neighbours: &natview_analysis::review::BruteForce,
        judged: &none,
    };
    let mut coherence = natview_analysis::review::listing_coherence(&input);
    coherence.resize(listings, None);
    coherence
}
