//! natview-pipeline: the jobs shared by the CLI and the GUI — embed a dataset (resumably, with
//! its thumbnails; or reuse fresh embeddings), build or reload the index, evaluate, lay out. Each reports progress and can be cancelled.

use crate::store::EmbeddingsMeta;
use crate::thumbs::{thumbnail_bytes, ThumbnailStore, ThumbnailWriter};
use natview_analysis::{dataset_pair_stats, listing_numbers, listing_retrieval_of, AnalysisError};
use natview_analysis::{PairStats, RetrievalMetrics};
use natview_core::dataset::{
    decode_rgb_covering, decode_rgb_covering_with, Dataset, DecodeOptions, Item, Skipped,
    ViewFilter,
};
use natview_core::jobs::{CancelFlag, Progress, ProgressSink};
use natview_core::linalg::Matrix;
use natview_core::workspace::{Workspace, WorkspaceError};
use natview_encoder::{choose_device, Encoder, EncoderError, EncoderSpec};
use natview_index::{exact_neighbours_all, HnswParams, IndexError, NeighbourIndex};
use rayon::prelude::*;
use serde::Serialize;
use std::path::Path;
use std::time::Instant;

mod embed;
mod embed_rows;
pub mod layouts;
pub mod store;
pub mod thumbs;

use embed::svg_size_px;
pub use embed::{default_batch_size, embed_dataset, DEFAULT_CHECKPOINT_IMAGES};

/// Errors of a pipeline job.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The encoder could not be built or run.
    #[error(transparent)]
    Encoder(#[from] EncoderError),
    /// A workspace file could not be read or written.
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    /// The index failed.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// An analysis failed.
    #[error(transparent)]
    Analysis(#[from] AnalysisError),
    /// Every image failed to decode.
    #[error("{path}: none of the {skipped} image(s) could be read")]
    NothingEmbedded {
        /// The dataset.
        path: std::path::PathBuf,
        /// How many were skipped.
        skipped: usize,
    },
    /// A query image could not be read.
    #[error("{path}: {reason}")]
    QueryImage {
        /// The image file.
        path: std::path::PathBuf,
        /// Why it could not be used.
        reason: String,
    },
    /// Imported embeddings are missing or no longer match the dataset.
    #[error("{path}: {reason}; import them again (natview import DATASET --embeddings FILE)")]
    Imported {
        /// The workspace file.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The user cancelled the job.
    #[error("cancelled")]
    Cancelled,
}

/// The options every job of a run shares — the CLI's common flags, which the app takes from its
/// command line too.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSettings {
    /// The workspace folder (`None`: beside the dataset, see [`Workspace::for_dataset`]).
    pub workspace: Option<std::path::PathBuf>,
    /// Run on the CPU even when a GPU is available.
    pub force_cpu: bool,
    /// Images per batch (`None`: [`default_batch_size`] for the device).
    pub batch_size: Option<usize>,
    /// Images between two saved chunks of an embedding run (`None`:
    /// [`DEFAULT_CHECKPOINT_IMAGES`]).
    pub checkpoint_images: Option<usize>,
    /// How images are decoded: EXIF orientation and ICC profiles applied or not (`None`: as
    /// the workspace's embeddings were made, else both applied).
    pub decode: Option<DecodeOptions>,
    /// The precision every encoder the run opens embeds in (`--precision`; `None`: each
    /// encoder's own, f32 unless it was made in another).
    pub precision: Option<natview_encoder::Precision>,
}

impl RunSettings {
    /// `spec` in the run's precision, when one was asked for and the spec has a network
    /// (imported vectors and the pixel baseline have none).
    pub fn in_precision(&self, spec: EncoderSpec) -> EncoderSpec {
        match self.precision {
            Some(precision) if spec.model.has_network() => EncoderSpec { precision, ..spec },
            _ => spec,
        }
    }

    /// The workspace of `dataset` under these settings.
    pub fn workspace_for(&self, dataset: &Dataset) -> Workspace {
        Workspace::for_dataset(dataset, self.workspace.as_deref())
    }

    /// A request to embed with `spec` under these settings.
    pub fn embed_request(&self, spec: EncoderSpec) -> EmbedRequest {
        EmbedRequest {
            spec,
            batch_size: self.batch_size,
            force_cpu: self.force_cpu,
            checkpoint_images: self.checkpoint_images,
            decode: self.decode,
        }
    }
}

/// What to embed with.
#[derive(Debug, Clone)]
pub struct EmbedRequest {
    /// The encoder.
    pub spec: EncoderSpec,
    /// Images per batch (`None`: [`default_batch_size`] for the device).
    pub batch_size: Option<usize>,
    /// Run on the CPU even when a GPU is available.
    pub force_cpu: bool,
    /// Images between two saved chunks of the run (`None`:
    /// [`DEFAULT_CHECKPOINT_IMAGES`]).
    pub checkpoint_images: Option<usize>,
    /// EXIF orientation and ICC profiles applied or not (`None`: as the workspace's
    /// embeddings were made, else both applied).
    pub decode: Option<DecodeOptions>,
}

/// Embedded items, their matrix (row `i` = `items[i]`) and what they were made from.
#[derive(Debug, Clone)]
pub struct EmbeddingSet {
    /// Items in row order; `items[i].id == i`.
    pub items: Vec<Item>,
    /// L2-normalised embeddings.
    pub matrix: Matrix,
    /// Provenance.
    pub meta: EmbeddingsMeta,
    /// Each row's SwAV cluster, when the encoder's weights carry SwAV's head.
    pub clusters: Option<Vec<u32>>,
}

/// How an embedding job went.
#[derive(Debug, Clone, Default)]
pub struct EmbedReport {
    /// Fresh embeddings were found in the workspace and reused.
    pub reused: bool,
    /// Why existing embeddings were not reused (if they existed).
    pub stale_reason: Option<String>,
    /// Every file left out (listing and decoding), with reasons.
    pub skipped: Vec<Skipped>,
    /// Wall time of the job.
    pub duration_secs: f64,
    /// Where it ran ("CPU" or "CUDA GPU").
    pub device: &'static str,
    /// The images a stopped run had embedded already, when this run continued it.
    pub resumed_from: Option<usize>,
    /// What went wrong without stopping the run (thumbnails not saved, damaged chunks).
    pub warnings: Vec<String>,
}

/// Thumbnails decoded (in parallel) between two progress reports of [`ensure_thumbnails`].
const THUMBNAIL_CHUNK: usize = 512;

/// Opens the workspace's thumbnail file for these embeddings, or (when it is missing, stale or
/// damaged) decodes every item again and writes it.
pub fn ensure_thumbnails(
    dataset: &Dataset,
    workspace: &Workspace,
    set: &EmbeddingSet,
    progress: &dyn ProgressSink,
    cancel: &CancelFlag,
) -> Result<ThumbnailStore, PipelineError> {
    let path = workspace.thumbnails_path();
    let dataset_fingerprint = &set.meta.dataset_fingerprint;
    let items_fingerprint = &set.meta.items_fingerprint;
    if let Ok(store) = ThumbnailStore::open(&path, dataset_fingerprint, items_fingerprint) {
        return Ok(store);
    }
    let svg_px = crate::thumbs::THUMBNAIL_PX;
    let mut writer = ThumbnailWriter::create(&path, dataset_fingerprint)?;
    let total = set.items.len();
    for chunk in set.items.chunks(THUMBNAIL_CHUNK) {
        if cancel.is_cancelled() {
            return Err(PipelineError::Cancelled);
        }
        progress.report(Progress {
            phase: "thumbnails".into(),
            done: writer.len(),
            total,
        });
        let encoded: Vec<Option<Vec<u8>>> = chunk
            .par_iter()
            .map(|item| {
                decode_rgb_covering(&dataset.item_path(item), svg_px, thumbs::THUMBNAIL_PX)
                    .ok()
                    .and_then(|decoded| thumbnail_bytes(&decoded.image))
            })
            .collect();
        for bytes in &encoded {
            writer.push(bytes.as_deref())?;
        }
    }
    writer.finish(items_fingerprint)?;
    Ok(ThumbnailStore::open(
        &path,
        dataset_fingerprint,
        items_fingerprint,
    )?)
}

/// How an index job went.
#[derive(Debug, Clone)]
pub struct IndexReport {
    /// A fresh index was reloaded instead of built.
    pub reused: bool,
    /// Why an index on disk was not used (stale or damaged); `None` when there was none.
    pub rebuilt_because: Option<String>,
    /// Wall time of the job.
    pub duration_secs: f64,
}

impl natview_index::SharedRows for EmbeddingSet {
    fn rows_data(&self) -> &[f32] {
        &self.matrix.data
    }
}

/// Reloads the workspace's index for these embeddings, or builds and saves a new one.
pub fn ensure_index(
    workspace: &Workspace,
    set: &EmbeddingSet,
    params: HnswParams,
    progress: &dyn ProgressSink,
    cancel: &CancelFlag,
) -> Result<(NeighbourIndex, IndexReport), PipelineError> {
    ensure_index_over(workspace, set, None, params, progress, cancel)
}

/// [`ensure_index`] for a set that stays in memory beside its index (the app): the index
/// searches the set's own matrix instead of holding a second copy of the vectors.
pub fn ensure_shared_index(
    workspace: &Workspace,
    set: &std::sync::Arc<EmbeddingSet>,
    params: HnswParams,
    progress: &dyn ProgressSink,
    cancel: &CancelFlag,
) -> Result<(NeighbourIndex, IndexReport), PipelineError> {
    let rows: std::sync::Arc<dyn natview_index::SharedRows> = set.clone();
    ensure_index_over(workspace, set, Some(rows), params, progress, cancel)
}

fn ensure_index_over(
    workspace: &Workspace,
    set: &EmbeddingSet,
    shared: Option<std::sync::Arc<dyn natview_index::SharedRows>>,
    params: HnswParams,
    progress: &dyn ProgressSink,
    cancel: &CancelFlag,
) -> Result<(NeighbourIndex, IndexReport), PipelineError> {
    let started = Instant::now();
    let basename = workspace.index_basename(&set.meta.encoder.workspace_key());
    progress.report(Progress {
        phase: "loading index".into(),
        done: 0,
        total: 1,
    });
    let loaded = match &shared {
        Some(rows) => NeighbourIndex::load_sharing(
            workspace.dir(),
            &basename,
            &set.meta.embeddings_fingerprint,
            params,
            rows.clone(),
        ),
        None => NeighbourIndex::load(
            workspace.dir(),
            &basename,
            &set.meta.embeddings_fingerprint,
            params,
        ),
    };
    let rebuilt_because = match loaded {
        Ok(index) => {
            let report = IndexReport {
                reused: true,
                rebuilt_because: None,
                duration_secs: started.elapsed().as_secs_f64(),
            };
            return Ok((index, report));
        }
        Err(_) if !NeighbourIndex::is_saved(workspace.dir(), &basename) => None,
        Err(e) => Some(e.to_string()),
    };
    let total = set.matrix.rows;
    progress.report(Progress {
        phase: "indexing".into(),
        done: 0,
        total,
    });
    let index = NeighbourIndex::build_with_progress(&set.matrix, params, &mut |done| {
        progress.report(Progress {
            phase: "indexing".into(),
            done,
            total,
        });
        !cancel.is_cancelled()
    })
    .map_err(|e| match e {
        IndexError::Cancelled => PipelineError::Cancelled,
        other => PipelineError::Index(other),
    })?;
    index.save(workspace.dir(), &basename, &set.meta.embeddings_fingerprint)?;
    let mut index = index;
    if let Some(rows) = shared {
        index.share_rows(rows)?;
    }
    let report = IndexReport {
        reused: false,
        rebuilt_because,
        duration_secs: started.elapsed().as_secs_f64(),
    };
    Ok((index, report))
}

/// Embeds one external image file with the encoder of `set_meta`'s embeddings, decoded as their
/// images were (for query-by-image).
pub fn embed_query_image(
    path: &Path,
    set_meta: &EmbeddingsMeta,
    force_cpu: bool,
) -> Result<Vec<f32>, PipelineError> {
    let spec = &set_meta.encoder;
    let encoder = Encoder::new(spec, &choose_device(force_cpu))?;
    let needed = encoder.input_side_needed();
    let options = DecodeOptions::of_pipeline(&set_meta.image_pipeline).unwrap_or_default();
    let image = decode_rgb_covering_with(path, svg_size_px(spec.input_size_px), needed, options)
        .map_err(|e| PipelineError::QueryImage {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?
        .image;
    let mut rows = encoder.embed(&[image])?;
    rows.pop().ok_or_else(|| PipelineError::QueryImage {
        path: path.to_path_buf(),
        reason: "the encoder returned nothing".into(),
    })
}

/// Retrieval metrics and intra/inter statistics of an embedding set.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// The encoder, described.
    pub model: String,
    /// Whether the encoder is untrained (random weights).
    pub untrained: bool,
    /// Number of embedded images.
    pub images: usize,
    /// Number of listings.
    pub listings: usize,
    /// Listing retrieval by exact search.
    pub retrieval: RetrievalMetrics,
    /// Intra vs inter similarity.
    pub pairs: PairStats,
    /// Listing retrieval for the queries of one kind of view only (`--queries-where`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub view_retrieval: Option<ViewRetrieval>,
}

/// Retrieval for the queries of one kind of view (the gallery is every image).
#[derive(Debug, Clone, Serialize)]
pub struct ViewRetrieval {
    /// Which queries, as `column=value`.
    pub queries_where: String,
    /// Their listing retrieval.
    pub retrieval: RetrievalMetrics,
}

/// Inter-listing pairs used at most by [`evaluate`] (beyond that they are sampled).
pub const MAX_INTER_PAIRS: usize = 3_000_000;

/// Evaluates an embedding set: listing retrieval (exact search, k = 10) and pair statistics.
pub fn evaluate(set: &EmbeddingSet) -> Result<EvalReport, PipelineError> {
    evaluate_rows(
        &set.items,
        &set.matrix,
        set.meta.encoder.describe(),
        set.meta.encoder.is_untrained(),
    )
}

/// Evaluates unit-norm rows (row `i` embeds `items[i]`): listing retrieval (exact search,
/// k = 10) and pair statistics; `model` describes where the rows came from.
pub fn evaluate_rows(
    items: &[Item],
    matrix: &Matrix,
    model: String,
    untrained: bool,
) -> Result<EvalReport, PipelineError> {
    evaluate_rows_where(items, matrix, model, untrained, None)
}

/// [`evaluate_rows`], plus retrieval for the queries of the kind `queries` picks, if given.
pub fn evaluate_rows_where(
    items: &[Item],
    matrix: &Matrix,
    model: String,
    untrained: bool,
    queries: Option<&ViewFilter>,
) -> Result<EvalReport, PipelineError> {
    let listings = listing_numbers(items);
    let ranked: Vec<Vec<usize>> = exact_neighbours_all(matrix, 10)?
        .into_iter()
        .map(|ns| ns.into_iter().map(|n| n.id).collect())
        .collect();
    let retrieval = listing_retrieval_of(&listings, &ranked, |_| true);
    let view_retrieval = queries.map(|filter| ViewRetrieval {
        queries_where: filter.to_string(),
        retrieval: listing_retrieval_of(&listings, &ranked, |i| filter.matches(&items[i])),
    });
    let pairs = dataset_pair_stats(matrix, &listings, MAX_INTER_PAIRS, 0)?;
    Ok(EvalReport {
        model,
        untrained,
        images: items.len(),
        listings: listings.iter().copied().max().map_or(0, |m| m + 1),
        retrieval,
        pairs,
        view_retrieval,
    })
}
