//! The rows of an embedding run as they are made: the matrix, items and thumbnails so far
//! ([`Rows`]), and the chunk being filled for the workspace's partial run ([`ChunkBuffer`]).

use super::PipelineError;
use crate::store::{read_chunk, ChunkHeader, PartialRun};
use crate::thumbs::ThumbnailWriter;
use natview_core::dataset::{Dataset, Item, Skipped};
use natview_core::jobs::{Progress, ProgressSink};
use natview_core::workspace::WorkspaceError;
/// What a run has embedded so far: the rows in order, and the thumbnail file being written.
pub(super) struct Rows {
    pub(super) items: Vec<Item>,
    pub(super) data: Vec<f32>,
    pub(super) dim: usize,
    pub(super) clusters: Option<Vec<u32>>,
    pub(super) skipped: Vec<Skipped>,
    pub(super) thumbnails: Option<ThumbnailWriter>,
    pub(super) thumbnail_error: Option<String>,
    /// The next dataset item to embed.
    pub(super) next_item: usize,
}

impl Rows {
    pub(super) fn new(dataset: &Dataset, dim: usize, clustered: bool) -> Self {
        let total = dataset.items.len();
        Self {
            // One buffer for all rows (kept as a vector each and concatenated, they were two
            // copies of the matrix at the end: 6 GB resident embedding 1M images).
            data: Vec::with_capacity(total.saturating_mul(dim)),
            items: Vec::with_capacity(total),
            dim,
            clusters: clustered.then(Vec::new),
            skipped: dataset.skipped.clone(),
            thumbnails: None,
            thumbnail_error: None,
            next_item: 0,
        }
    }

    pub(super) fn start_thumbnails(&mut self, path: &std::path::Path, dataset_fingerprint: &str) {
        match ThumbnailWriter::create(path, dataset_fingerprint) {
            Ok(writer) => self.thumbnails = Some(writer),
            Err(e) => self.thumbnail_error = Some(format!("thumbnails not saved: {e}")),
        }
    }

    /// Appends the next row's thumbnail; a failure stops the thumbnails, not the run.
    pub(super) fn push_thumbnail(&mut self, bytes: Option<&[u8]>) {
        if let Some(writer) = &mut self.thumbnails {
            if let Err(e) = writer.push(bytes) {
                self.thumbnail_error = Some(format!("thumbnails not saved: {e}"));
                self.thumbnails = None;
            }
        }
    }

    pub(super) fn add_row(&mut self, item: &Item, values: &[f32]) {
        let mut item = item.clone();
        item.id = self.items.len();
        self.items.push(item);
        self.data.extend_from_slice(values);
    }

    /// Takes in the chunks a stopped run left, in order, up to the first that is missing,
    /// damaged or does not follow; returns how many were taken and a note about any dropped.
    pub(super) fn resume(
        &mut self,
        partial: &PartialRun,
        dataset: &Dataset,
        progress: &dyn ProgressSink,
    ) -> Result<(usize, Option<String>), PipelineError> {
        let files = partial.chunk_files();
        for (n, path) in files.iter().enumerate() {
            progress.report(Progress {
                phase: "resuming".into(),
                done: n,
                total: files.len(),
            });
            let expected = format!("chunk-{n:06}.bin");
            let chunk = if path.file_name().is_some_and(|f| *f == *expected) {
                read_chunk(path)
            } else {
                Err(WorkspaceError::io(path, "out of sequence"))
            };
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    partial.drop_from(path);
                    return Ok((n, Some(format!("{e}: embedded again"))));
                }
            };
            if let Err(reason) = self.check_chunk(&chunk.header, dataset.items.len()) {
                partial.drop_from(path);
                return Ok((
                    n,
                    Some(format!("{}: {reason}: embedded again", path.display())),
                ));
            }
            let header = &chunk.header;
            for (i, &index) in header.rows.iter().enumerate() {
                self.add_row(
                    &dataset.items[index],
                    &chunk.values[i * self.dim..(i + 1) * self.dim],
                );
            }
            match &chunk.thumbnails {
                Some(thumbnails) => thumbnails
                    .iter()
                    .for_each(|t| self.push_thumbnail((!t.is_empty()).then_some(t.as_slice()))),
                // A run that had no thumbnails to make: they are made when the dataset opens.
                None => self.thumbnails = None,
            }
            if let (Some(all), Some(mine)) = (self.clusters.as_mut(), &header.clusters) {
                all.extend_from_slice(mine);
            }
            self.skipped.extend(header.skipped.iter().cloned());
            self.next_item = header.end_item;
        }
        Ok((files.len(), None))
    }

    /// Whether a chunk continues the rows so far.
    pub(super) fn check_chunk(&self, header: &ChunkHeader, total: usize) -> Result<(), String> {
        if header.first_item != self.next_item || header.end_item > total {
            return Err(format!(
                "covers images {}..{}, expected from {}",
                header.first_item, header.end_item, self.next_item
            ));
        }
        if header.dim != self.dim {
            return Err(format!(
                "rows of {} values, expected {}",
                header.dim, self.dim
            ));
        }
        let in_order = header.rows.windows(2).all(|w| w[0] < w[1]);
        let in_range = header
            .rows
            .iter()
            .all(|&r| r >= header.first_item && r < header.end_item);
        if !in_order || !in_range {
            return Err("rows out of order".into());
        }
        if self.clusters.is_some() != header.clusters.is_some() {
            return Err("SwAV clusters missing".into());
        }
        Ok(())
    }
}

/// The rows embedded since the last saved chunk.
pub(super) struct ChunkBuffer {
    pub(super) header: ChunkHeader,
    pub(super) values: Vec<f32>,
    pub(super) thumbnails: Option<Vec<Vec<u8>>>,
}

impl ChunkBuffer {
    pub(super) fn new(first_item: usize, with_thumbnails: bool, clustered: bool) -> Self {
        Self {
            header: ChunkHeader {
                first_item,
                end_item: first_item,
                rows: Vec::new(),
                dim: 0,
                skipped: Vec::new(),
                clusters: clustered.then(Vec::new),
                thumbnail_lengths: with_thumbnails.then(Vec::new),
            },
            values: Vec::new(),
            thumbnails: with_thumbnails.then(Vec::new),
        }
    }

    pub(super) fn add_item(&mut self, index: usize, thumbnail: Option<Vec<u8>>) {
        self.header.rows.push(index);
        if let (Some(lengths), Some(thumbnails)) = (
            self.header.thumbnail_lengths.as_mut(),
            self.thumbnails.as_mut(),
        ) {
            let thumbnail = thumbnail.unwrap_or_default();
            lengths.push(thumbnail.len() as u32);
            thumbnails.push(thumbnail);
        }
    }

    /// Saves the buffer as the next chunk (nothing when it covers no images).
    pub(super) fn save(
        &mut self,
        partial: &PartialRun,
        next_chunk: &mut usize,
        dim: usize,
    ) -> Result<(), PipelineError> {
        if self.header.end_item == self.header.first_item {
            return Ok(());
        }
        self.header.dim = dim;
        partial.write_chunk(
            *next_chunk,
            &self.header,
            &self.values,
            self.thumbnails.as_deref(),
        )?;
        *next_chunk += 1;
        Ok(())
    }
}
