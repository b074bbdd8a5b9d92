//! The jobs of the pipeline, shared by the CLI and the GUI: embed a dataset (or reuse fresh
//! embeddings), build or reload the index, evaluate. Each reports progress and can be cancelled.

use crate::analysis::{dataset_pair_stats, listing_numbers, listing_retrieval_of, AnalysisError};
use crate::analysis::{PairStats, RetrievalMetrics};
use crate::dataset::{decode_rgb, decode_rgb_noting, Dataset, Item, Skipped, ViewFilter};
use crate::encoder::{choose_device, device_name, Encoder, EncoderError, EncoderSpec};
use crate::index::{exact_neighbours_all, HnswParams, IndexError, NeighbourIndex};
use crate::jobs::{CancelFlag, Progress, ProgressSink};
use crate::linalg::Matrix;
use crate::thumbs::{thumbnail_bytes, ThumbnailStore, ThumbnailWriter};
use crate::workspace::{EmbeddingStore, EmbeddingsMeta, Workspace, WorkspaceError};
use rayon::prelude::*;
use serde::Serialize;
use std::path::Path;
use std::time::Instant;

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

/// What to embed with.
#[derive(Debug, Clone)]
pub struct EmbedRequest {
    /// The encoder.
    pub spec: EncoderSpec,
    /// Images per batch (`None`: [`default_batch_size`] for the device).
    pub batch_size: Option<usize>,
    /// Run on the CPU even when a GPU is available.
    pub force_cpu: bool,
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
#[derive(Debug, Clone)]
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
}

/// Batch size used when none is asked for: 16 on the CPU (measured fastest there for the
/// compact encoder: 115 images/s against 95 at 64, see BENCHMARKS.md), 64 on a GPU.
pub fn default_batch_size(device: &candle_core::Device) -> usize {
    if device.is_cuda() {
        64
    } else {
        16
    }
}

/// Size at which SVGs are rasterised for an encoder of input size `input_px`.
fn svg_size_px(input_px: u32) -> u32 {
    input_px.max(64)
}

/// Embeds every image of `dataset` into the workspace, or reuses the embeddings there when
/// they were made from the same dataset, encoder and weights.
pub fn embed_dataset(
    dataset: &Dataset,
    workspace: &Workspace,
    request: &EmbedRequest,
    progress: &dyn ProgressSink,
    cancel: &CancelFlag,
) -> Result<(EmbeddingSet, EmbedReport), PipelineError> {
    let started = Instant::now();
    progress.report(Progress {
        phase: "checking embeddings".into(),
        done: 0,
        total: 1,
    });
    if request.spec.model == crate::encoder::ModelKind::Imported {
        let set = load_imported(dataset, workspace, &request.spec)?;
        let report = EmbedReport {
            reused: true,
            stale_reason: None,
            skipped: dataset.skipped.clone(),
            duration_secs: started.elapsed().as_secs_f64(),
            device: "imported",
        };
        return Ok((set, report));
    }
    workspace.create()?;
    let device = choose_device(request.force_cpu);
    let encoder = Encoder::new(&request.spec, &device)?;
    let dataset_fingerprint = dataset.fingerprint();
    let path = workspace.embeddings_path(&request.spec.workspace_key());
    let stale_reason =
        match fresh_embeddings(dataset, workspace, &path, &encoder, &dataset_fingerprint) {
            Ok(set) => {
                let mut skipped = workspace.read_skipped();
                if skipped.is_empty() {
                    skipped = dataset.skipped.clone();
                }
                let report = EmbedReport {
                    reused: true,
                    stale_reason: None,
                    skipped,
                    duration_secs: started.elapsed().as_secs_f64(),
                    device: device_name(&device),
                };
                return Ok((set, report));
            }
            Err(reason) => reason,
        };

    let batch_size = request
        .batch_size
        .unwrap_or_else(|| default_batch_size(&device))
        .max(1);
    let total = dataset.items.len();
    // Rows go straight into one buffer (kept as a vector each and concatenated, they were two
    // copies of the matrix at the end: 6 GB resident embedding 1M images).
    let mut data: Vec<f32> = Vec::with_capacity(total * encoder.dim());
    let mut row_count = 0usize;
    let mut items: Vec<Item> = Vec::with_capacity(total);
    let mut skipped = dataset.skipped.clone();
    let svg_px = svg_size_px(request.spec.input_size_px);
    // The images are decoded here anyway: keep a thumbnail of each for the app, unless a
    // thumbnail file of this dataset exists already (embedded before with another encoder).
    let thumbnails_path = workspace.thumbnails_path();
    let mut thumbnails = if ThumbnailStore::is_made_from(&thumbnails_path, &dataset_fingerprint) {
        None
    } else {
        Some(ThumbnailWriter::create(
            &thumbnails_path,
            &dataset_fingerprint,
        )?)
    };
    let with_thumbnails = thumbnails.is_some();
    let mut clusters: Vec<u32> = Vec::new();
    for (b, batch) in dataset.items.chunks(batch_size).enumerate() {
        if cancel.is_cancelled() {
            return Err(PipelineError::Cancelled);
        }
        let decoded: Vec<_> = batch
            .par_iter()
            .map(|item| {
                let path = dataset.item_path(item);
                decode_rgb_noting(&path, svg_px)
                    .map(|decoded| {
                        let thumbnail = with_thumbnails
                            .then(|| thumbnail_bytes(&decoded.image))
                            .flatten();
                        // An SVG's embedded images that were not followed are reported beside
                        // the skipped files (the SVG itself is embedded without them).
                        let refused: Vec<Skipped> = decoded
                            .refused
                            .iter()
                            .map(|r| Skipped {
                                path: path.clone(),
                                reason: r.to_string(),
                            })
                            .collect();
                        (decoded.image, thumbnail, refused)
                    })
                    .map_err(|e| Skipped {
                        path,
                        reason: e.to_string(),
                    })
            })
            .collect();
        let mut images = Vec::with_capacity(batch.len());
        for (item, result) in batch.iter().zip(decoded) {
            match result {
                Ok((image, thumbnail, refused)) => {
                    skipped.extend(refused);
                    if let Some(writer) = &mut thumbnails {
                        writer.push(thumbnail.as_deref())?;
                    }
                    images.push(image);
                    let mut item = item.clone();
                    item.id = items.len();
                    items.push(item);
                }
                Err(s) => skipped.push(s),
            }
        }
        if !images.is_empty() {
            let (rows, batch_clusters) = encoder.embed_clustered(&images)?;
            for row in rows {
                data.extend_from_slice(&row);
                row_count += 1;
            }
            clusters.extend(batch_clusters.unwrap_or_default());
        }
        progress.report(Progress {
            phase: "embedding".into(),
            done: ((b + 1) * batch_size).min(total),
            total,
        });
    }
    if items.is_empty() {
        return Err(PipelineError::NothingEmbedded {
            path: dataset.source.clone(),
            skipped: skipped.len(),
        });
    }
    let matrix = Matrix {
        rows: row_count,
        dim: encoder.dim(),
        data,
    };
    let items_fingerprint = workspace.write_items(&items)?;
    if let Some(writer) = thumbnails {
        writer.finish(&items_fingerprint)?;
    }
    let meta = EmbeddingsMeta {
        encoder: request.spec.clone(),
        weights_fingerprint: encoder.weights_fingerprint().to_string(),
        dataset_fingerprint,
        items_fingerprint,
        embeddings_fingerprint: EmbeddingStore::fingerprint(&matrix),
    };
    let clusters = encoder.clusters().map(|_| clusters);
    if let Some(clusters) = &clusters {
        let path = workspace.clusters_path(&request.spec.workspace_key());
        crate::workspace::write_json_atomic(&path, clusters)
            .map_err(|e| crate::workspace::WorkspaceError::io(&path, e))?;
    }
    EmbeddingStore::save(&path, &matrix, &meta)?;
    workspace.write_skipped(&skipped)?;
    let report = EmbedReport {
        reused: false,
        stale_reason,
        skipped,
        duration_secs: started.elapsed().as_secs_f64(),
        device: device_name(&device),
    };
    Ok((
        EmbeddingSet {
            items,
            matrix,
            meta,
            clusters,
        },
        report,
    ))
}

/// The embeddings imported under `spec`'s name, checked against the dataset as it is now.
fn load_imported(
    dataset: &Dataset,
    workspace: &Workspace,
    spec: &EncoderSpec,
) -> Result<EmbeddingSet, PipelineError> {
    let path = workspace.embeddings_path(&spec.workspace_key());
    let fail = |reason: String| PipelineError::Imported {
        path: path.clone(),
        reason,
    };
    if !path.is_file() {
        return Err(fail(format!(
            "no embeddings imported as `{}`",
            spec.imported_name()
        )));
    }
    let (matrix, meta) = EmbeddingStore::load(&path)?;
    let meta = meta.ok_or_else(|| fail("no natview metadata".into()))?;
    if meta.dataset_fingerprint != dataset.fingerprint() {
        return Err(fail("the dataset changed since the import".into()));
    }
    let items = dataset.items.clone();
    if matrix.rows != items.len() || workspace.items_fingerprint(&items)? != meta.items_fingerprint
    {
        return Err(fail("the rows no longer match the dataset's images".into()));
    }
    if workspace.stored_items_fingerprint().as_deref() != Some(&meta.items_fingerprint) {
        // Another encoder that left images out rewrote items.jsonl: these rows are all of them.
        workspace.write_items(&items)?;
    }
    Ok(EmbeddingSet {
        items,
        matrix,
        meta,
        clusters: None,
    })
}

/// Loads the workspace's embeddings for `encoder` if they are fresh; else says why not
/// (`None` when there are none).
fn fresh_embeddings(
    dataset: &Dataset,
    workspace: &Workspace,
    path: &Path,
    encoder: &Encoder,
    dataset_fingerprint: &str,
) -> Result<EmbeddingSet, Option<String>> {
    if !path.exists() {
        return Err(None);
    }
    let (matrix, meta) = EmbeddingStore::load(path).map_err(|e| Some(e.to_string()))?;
    let meta = meta.ok_or_else(|| Some("no natview metadata".to_string()))?;
    if meta.encoder != *encoder.spec() {
        return Err(Some(format!("made with {}", meta.encoder.describe())));
    }
    if meta.weights_fingerprint != encoder.weights_fingerprint() {
        return Err(Some("the weights file changed".into()));
    }
    if meta.dataset_fingerprint != dataset_fingerprint {
        return Err(Some("the dataset changed".into()));
    }
    // When nothing was left out, the rows are the dataset's own items: recognised by their
    // fingerprint (a third of the time of parsing `items.jsonl` back at a million items).
    let own_items = dataset.items.len() == matrix.rows
        && workspace
            .items_fingerprint(&dataset.items)
            .is_ok_and(|fp| fp == meta.items_fingerprint);
    let (items, items_fingerprint) = if own_items {
        (dataset.items.clone(), meta.items_fingerprint.clone())
    } else {
        workspace.read_items().map_err(|e| Some(e.to_string()))?
    };
    if items_fingerprint != meta.items_fingerprint || items.len() != matrix.rows {
        return Err(Some("items.jsonl does not match".into()));
    }
    let clusters = match encoder.clusters() {
        None => None,
        Some(_) => {
            let path = workspace.clusters_path(&encoder.spec().workspace_key());
            let stored: Option<Vec<u32>> = std::fs::read(&path)
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok());
            match stored {
                Some(c) if c.len() == matrix.rows => Some(c),
                _ => {
                    return Err(Some(format!(
                        "{}: no SwAV clusters for these embeddings",
                        path.display()
                    )))
                }
            }
        }
    };
    Ok(EmbeddingSet {
        items,
        matrix,
        meta,
        clusters,
    })
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
                decode_rgb(&dataset.item_path(item), svg_px)
                    .ok()
                    .and_then(|image| thumbnail_bytes(&image))
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

impl crate::index::SharedRows for EmbeddingSet {
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
    let rows: std::sync::Arc<dyn crate::index::SharedRows> = set.clone();
    ensure_index_over(workspace, set, Some(rows), params, progress, cancel)
}

fn ensure_index_over(
    workspace: &Workspace,
    set: &EmbeddingSet,
    shared: Option<std::sync::Arc<dyn crate::index::SharedRows>>,
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

/// Embeds one external image file with the encoder of `spec` (for query-by-image).
pub fn embed_query_image(
    path: &Path,
    spec: &EncoderSpec,
    force_cpu: bool,
) -> Result<Vec<f32>, PipelineError> {
    let encoder = Encoder::new(spec, &choose_device(force_cpu))?;
    let image = decode_rgb(path, svg_size_px(spec.input_size_px)).map_err(|e| {
        PipelineError::QueryImage {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    })?;
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
