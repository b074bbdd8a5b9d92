//! Embedding a dataset into its workspace, resumably: the rows are saved in chunks as they
//! are made, and a stopped run continues from its last chunk.

use super::embed_rows::{ChunkBuffer, Rows};
use super::{EmbedReport, EmbedRequest, EmbeddingSet, PipelineError};
use crate::store::{EmbeddingStore, EmbeddingsMeta, PartialRun, RunState};
use crate::thumbs::{thumbnail_bytes, ThumbnailStore};
use natview_core::dataset::{decode_rgb_covering_with, Dataset, DecodeOptions, Item, Skipped};
use natview_core::jobs::{CancelFlag, Progress, ProgressSink};
use natview_core::linalg::Matrix;
use natview_core::workspace::{Workspace, WorkspaceError, WorkspaceLock};
use natview_encoder::{choose_device, device_name, Encoder, EncoderSpec};
use rayon::prelude::*;
use std::path::Path;
use std::time::{Duration, Instant};

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
pub(crate) fn svg_size_px(input_px: u32) -> u32 {
    input_px.max(64)
}

/// Images embedded between two saved chunks of a run when none is asked for.
pub const DEFAULT_CHECKPOINT_IMAGES: usize = 4096;

/// The longest time between two saved chunks of a run.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(120);

/// Embeds every image of `dataset` into the workspace, or reuses the embeddings there when
/// they were made from the same dataset, encoder and weights.
///
/// A run saves its rows every [`EmbedRequest::checkpoint_images`] images (or two minutes) in
/// the workspace; a run that was stopped (cancelled, killed, crashed) continues from its last
/// chunk and ends with the same files as an uninterrupted run. The workspace is locked while
/// the run writes it: a second run waits, saying who holds it.
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
    if request.spec.model == natview_encoder::ModelKind::Imported {
        let set = load_imported(dataset, workspace, &request.spec)?;
        let report = EmbedReport {
            reused: true,
            skipped: dataset.skipped.clone(),
            duration_secs: started.elapsed().as_secs_f64(),
            device: "imported",
            ..EmbedReport::default()
        };
        return Ok((set, report));
    }
    workspace.create()?;
    let device = choose_device(request.force_cpu);
    let encoder = Encoder::new(&request.spec, &device)?;
    let dataset_fingerprint = dataset.fingerprint();
    let key = request.spec.workspace_key();
    let path = workspace.embeddings_path(&key);
    let reused = |set: EmbeddingSet| {
        let mut skipped = workspace.read_skipped();
        if skipped.is_empty() {
            skipped = dataset.skipped.clone();
        }
        let report = EmbedReport {
            reused: true,
            skipped,
            duration_secs: started.elapsed().as_secs_f64(),
            device: device_name(&device),
            ..EmbedReport::default()
        };
        (set, report)
    };
    // Without options of its own, the request keeps the workspace's: its embeddings are reused
    // however they were decoded, and a rebuild decodes the same way.
    let mut recorded = None;
    let stale_reason = match fresh_embeddings(
        dataset,
        workspace,
        &path,
        &encoder,
        &dataset_fingerprint,
        (request.decode, &mut recorded),
    ) {
        Ok(set) => return Ok(reused(set)),
        Err(reason) => reason,
    };
    let decode = request.decode.or(recorded).unwrap_or_default();
    let _lock = lock_workspace(
        workspace,
        &format!("embedding with {key}"),
        progress,
        cancel,
    )?;
    // Another process may have finished this very run while this one waited for the lock.
    if let Ok(set) = fresh_embeddings(
        dataset,
        workspace,
        &path,
        &encoder,
        &dataset_fingerprint,
        (Some(decode), &mut recorded),
    ) {
        return Ok(reused(set));
    }
    natview_core::workspace::sweep_orphans(workspace.dir());

    let mut batch_size = request
        .batch_size
        .unwrap_or_else(|| default_batch_size(&device))
        .max(1);
    let state = RunState {
        encoder: request.spec.clone(),
        weights_fingerprint: encoder.weights_fingerprint().to_string(),
        dataset_fingerprint: dataset_fingerprint.clone(),
        total_items: dataset.items.len(),
        batch_size,
        image_pipeline: decode.pipeline(),
    };
    let partial = PartialRun::new(workspace, &key);
    natview_core::workspace::sweep_orphans(partial.dir());
    // The thumbnails are made from the decoded images, unless this dataset has its file
    // already (embedded before with another encoder).
    let thumbnails_path = workspace.thumbnails_path();
    let with_thumbnails = !ThumbnailStore::is_made_from(&thumbnails_path, &dataset_fingerprint);
    let mut rows = Rows::new(dataset, encoder.dim(), encoder.clusters().is_some());
    if with_thumbnails {
        rows.start_thumbnails(&thumbnails_path, &dataset_fingerprint);
    }
    let mut warnings = Vec::new();
    let mut next_chunk = 0;
    let resumable = partial.state().filter(|old| old.continues(&state));
    let resumed_from = match resumable {
        Some(old) => {
            batch_size = old.batch_size;
            let (chunks, note) = rows.resume(&partial, dataset, progress)?;
            next_chunk = chunks;
            warnings.extend(note);
            if rows.next_item > 0 {
                progress.notice(&format!(
                    "continuing a stopped run from image {} of {}",
                    rows.next_item,
                    dataset.items.len()
                ));
            }
            (rows.next_item > 0).then_some(rows.next_item)
        }
        None => {
            partial.start(&state)?;
            None
        }
    };
    let checkpoint_images = request
        .checkpoint_images
        .unwrap_or(DEFAULT_CHECKPOINT_IMAGES)
        .max(1);
    let decoder = BatchDecoder {
        dataset,
        encoder: &encoder,
        svg_px: svg_size_px(request.spec.input_size_px),
        with_thumbnails,
        options: decode,
    };
    let total = dataset.items.len();
    let mut pending = ChunkBuffer::new(rows.next_item, with_thumbnails, rows.clusters.is_some());
    let mut last_save = Instant::now();
    let first = rows.next_item;
    let batches = || dataset.items[first..].chunks(batch_size);
    // The next batch decodes (on the shared thread pool) while this one runs through the
    // network; at most two decoded batches wait, so memory stays bounded at any N.
    std::thread::scope(|scope| -> Result<(), PipelineError> {
        let (sender, decoded_batches) = std::sync::mpsc::sync_channel(1);
        scope.spawn(move || {
            for batch in batches() {
                if cancel.is_cancelled() || sender.send(decoder.decode(batch)).is_err() {
                    break;
                }
            }
        });
        for (batch, decoded) in batches().zip(decoded_batches.iter()) {
            if cancel.is_cancelled() {
                // What was embedded is kept: the next run continues from here.
                pending.save(&partial, &mut next_chunk, encoder.dim())?;
                return Err(PipelineError::Cancelled);
            }
            let mut images = Vec::with_capacity(batch.len());
            for (offset, result) in decoded.into_iter().enumerate() {
                let index = rows.next_item + offset;
                match result {
                    Ok((image, thumbnail, refused)) => {
                        rows.skipped.extend(refused.iter().cloned());
                        pending.header.skipped.extend(refused);
                        rows.push_thumbnail(thumbnail.as_deref());
                        pending.add_item(index, thumbnail);
                        images.push(image);
                    }
                    Err(s) => {
                        rows.skipped.push(s.clone());
                        pending.header.skipped.push(s);
                    }
                }
            }
            if !images.is_empty() {
                let (embedded, batch_clusters) = encoder.embed_clustered_prepared(&images)?;
                for row in &embedded {
                    pending.values.extend_from_slice(row);
                }
                if let (Some(all), Some(mine), Some(new)) = (
                    rows.clusters.as_mut(),
                    pending.header.clusters.as_mut(),
                    batch_clusters,
                ) {
                    all.extend_from_slice(&new);
                    mine.extend(new);
                }
                let dataset_rows =
                    &pending.header.rows[pending.header.rows.len() - embedded.len()..];
                for (row, &index) in embedded.iter().zip(dataset_rows) {
                    rows.add_row(&dataset.items[index], row);
                }
            }
            rows.next_item += batch.len();
            pending.header.end_item = rows.next_item;
            progress.report(Progress {
                phase: "embedding".into(),
                done: rows.next_item,
                total,
            });
            if pending.header.end_item - pending.header.first_item >= checkpoint_images
                || last_save.elapsed() >= CHECKPOINT_INTERVAL
            {
                pending.save(&partial, &mut next_chunk, encoder.dim())?;
                pending =
                    ChunkBuffer::new(rows.next_item, with_thumbnails, rows.clusters.is_some());
                last_save = Instant::now();
            }
        }
        if cancel.is_cancelled() && rows.next_item < total {
            pending.save(&partial, &mut next_chunk, encoder.dim())?;
            return Err(PipelineError::Cancelled);
        }
        Ok(())
    })?;
    // Everything is in the chunks before the final files are written: a failure there (a
    // full disk) loses nothing.
    pending.save(&partial, &mut next_chunk, encoder.dim())?;
    if rows.items.is_empty() {
        return Err(PipelineError::NothingEmbedded {
            path: dataset.source.clone(),
            skipped: rows.skipped.len(),
        });
    }
    let Rows {
        items,
        data,
        clusters,
        skipped,
        thumbnails,
        thumbnail_error,
        ..
    } = rows;
    let matrix = Matrix {
        rows: items.len(),
        dim: encoder.dim(),
        data,
    };
    let items_fingerprint = workspace.write_items(&items)?;
    let meta = EmbeddingsMeta {
        encoder: request.spec.clone(),
        weights_fingerprint: encoder.weights_fingerprint().to_string(),
        dataset_fingerprint,
        items_fingerprint: items_fingerprint.clone(),
        embeddings_fingerprint: EmbeddingStore::fingerprint(&matrix),
        image_pipeline: decode.pipeline(),
    };
    if let Some(clusters) = &clusters {
        let path = workspace.clusters_path(&key);
        natview_core::workspace::write_json_atomic(&path, clusters)
            .map_err(|e| WorkspaceError::io(&path, e))?;
    }
    EmbeddingStore::save(&path, &matrix, &meta)?;
    workspace.write_skipped(&skipped)?;
    // The thumbnails come last: a failure there costs only them (they are made again when the
    // dataset is opened), never the embeddings.
    warnings.extend(thumbnail_error);
    if let Some(writer) = thumbnails {
        if let Err(e) = writer.finish(&items_fingerprint) {
            warnings.push(format!("thumbnails not saved: {e}"));
        }
    }
    if let Err(e) = partial.remove() {
        warnings.push(format!("the finished run's chunks were not removed: {e}"));
    }
    let report = EmbedReport {
        reused: false,
        stale_reason,
        skipped,
        duration_secs: started.elapsed().as_secs_f64(),
        device: device_name(&device),
        resumed_from,
        warnings,
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

/// One decoded image: the encoder's prepared input, its thumbnail, an SVG's refusals.
type DecodedImage = Result<(image::RgbImage, Option<Vec<u8>>, Vec<Skipped>), Skipped>;

/// Decodes a batch of a dataset's images for an encoder: each at the smallest scale its input
/// (and the thumbnail) needs, prepared as the encoder's input, with its thumbnail.
struct BatchDecoder<'a> {
    dataset: &'a Dataset,
    encoder: &'a Encoder,
    svg_px: u32,
    with_thumbnails: bool,
    options: DecodeOptions,
}

impl BatchDecoder<'_> {
    fn decode(&self, batch: &[Item]) -> Vec<DecodedImage> {
        let needed = if self.with_thumbnails {
            self.encoder
                .input_side_needed()
                .max(crate::thumbs::THUMBNAIL_PX)
        } else {
            self.encoder.input_side_needed()
        };
        batch
            .par_iter()
            .map(|item| {
                let path = self.dataset.item_path(item);
                let decoded = decode_rgb_covering_with(&path, self.svg_px, needed, self.options)
                    .map_err(|e| Skipped {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                let thumbnail = self
                    .with_thumbnails
                    .then(|| thumbnail_bytes(&decoded.image))
                    .flatten();
                // An SVG's embedded images that were not followed are reported beside the
                // skipped files (the SVG itself is embedded without them).
                let refused = decoded
                    .refused
                    .iter()
                    .map(|r| Skipped {
                        path: path.clone(),
                        reason: r.to_string(),
                    })
                    .collect();
                Ok((self.encoder.prepare(&decoded.image), thumbnail, refused))
            })
            .collect()
    }
}

/// Takes the workspace's lock, waiting (and saying who holds it) while another run writes it.
fn lock_workspace(
    workspace: &Workspace,
    purpose: &str,
    progress: &dyn ProgressSink,
    cancel: &CancelFlag,
) -> Result<WorkspaceLock, PipelineError> {
    let mut told = false;
    loop {
        match WorkspaceLock::try_acquire(workspace, purpose)? {
            Ok(lock) => return Ok(lock),
            Err(holder) => {
                if cancel.is_cancelled() {
                    return Err(PipelineError::Cancelled);
                }
                let holder = holder.map_or_else(|| "another run".to_string(), |h| h.to_string());
                let message = format!(
                    "waiting for the workspace {} (held by {holder})",
                    workspace.dir().display()
                );
                if !told {
                    progress.notice(&message);
                    told = true;
                }
                progress.report(Progress {
                    phase: message,
                    done: 0,
                    total: 1,
                });
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
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
/// (`None` when there are none). `wanted`: the decoding the caller asks for (`None`: any
/// natview knows); `recorded` receives the decoding the embeddings were made with, when known.
fn fresh_embeddings(
    dataset: &Dataset,
    workspace: &Workspace,
    path: &Path,
    encoder: &Encoder,
    dataset_fingerprint: &str,
    (wanted, recorded): (Option<DecodeOptions>, &mut Option<DecodeOptions>),
) -> Result<EmbeddingSet, Option<String>> {
    if !path.exists() {
        return Err(None);
    }
    let (matrix, meta) = EmbeddingStore::load(path).map_err(|e| Some(e.to_string()))?;
    let meta = meta.ok_or_else(|| Some("no natview metadata".to_string()))?;
    if !meta.encoder.same_network(encoder.spec()) {
        return Err(Some(format!("made with {}", meta.encoder.describe())));
    }
    if meta.weights_fingerprint != encoder.weights_fingerprint() {
        return Err(Some("the weights file changed".into()));
    }
    *recorded = DecodeOptions::of_pipeline(&meta.image_pipeline);
    match (*recorded, wanted) {
        (None, _) => {
            return Err(Some(
                "its images were decoded and resized by an earlier natview".into(),
            ))
        }
        (Some(made), Some(wanted)) if made != wanted => {
            return Err(Some(format!(
                "its images were decoded with {}, this run {}",
                made_with(made),
                made_with(wanted)
            )))
        }
        _ => {}
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

/// How images are decoded under `options`, for a message.
fn made_with(options: DecodeOptions) -> &'static str {
    match options.describe() {
        "" => "EXIF orientation and ICC profiles applied",
        ignored => ignored,
    }
}
