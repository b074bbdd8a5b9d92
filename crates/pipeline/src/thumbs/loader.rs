//! Reads thumbnails on a worker thread for what the window shows: the window says which items
//! it wants (replacing what it wanted before, so scrolled-past items are never read), the worker
//! reads them from the thumbnail file — or decodes the image files while no file exists yet —
//! and hands them back, waking the window.

use super::{ThumbnailStore, THUMBNAIL_PX};
use image::RgbImage;
use natview_core::jobs::{Mailbox, Worker};
use rayon::prelude::*;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

/// Where thumbnails come from.
#[derive(Debug, Clone)]
pub enum ThumbnailSource {
    /// The workspace's thumbnail file (row `i` = item `i`).
    Store(Arc<ThumbnailStore>),
    /// The image files themselves, decoded on demand (item `i` = `paths[i]`): used while a
    /// dataset is still being embedded and no thumbnail file exists yet.
    Files(Arc<Vec<PathBuf>>),
}

impl ThumbnailSource {
    /// The thumbnail of item `id` (`None` if it has none or cannot be read).
    pub fn load(&self, id: usize) -> Option<RgbImage> {
        match self {
            ThumbnailSource::Store(store) => store.get(id),
            ThumbnailSource::Files(paths) => {
                let path = paths.get(id)?;
                natview_core::dataset::decode_rgb_covering(path, THUMBNAIL_PX, THUMBNAIL_PX)
                    .ok()
                    .map(|decoded| natview_encoder::square_resize(&decoded.image, THUMBNAIL_PX))
            }
        }
    }

    /// Items read per turn of the worker: decoding files is slow, so they go in parallel.
    fn batch(&self) -> usize {
        match self {
            ThumbnailSource::Store(_) => 32,
            ThumbnailSource::Files(_) => 2 * rayon::current_num_threads().max(1),
        }
    }
}

/// A thumbnail the worker read.
#[derive(Debug)]
pub struct LoadedThumbnail {
    /// The item.
    pub id: usize,
    /// Its pixels (`None`: it has no thumbnail; do not ask again).
    pub image: Option<RgbImage>,
}

#[derive(Default)]
struct State {
    source: Option<ThumbnailSource>,
    /// Changes with the source: results read from an older one are dropped.
    generation: u64,
    wanted: Vec<usize>,
    in_flight: HashSet<usize>,
    ready: Vec<LoadedThumbnail>,
    ready_ids: HashSet<usize>,
}

/// The worker and what it shares with the window.
pub struct ThumbnailLoader {
    worker: Worker<State>,
}

impl ThumbnailLoader {
    /// Starts the worker; `wake` is called whenever thumbnails are ready (e.g. to repaint).
    /// Without a worker thread every request stays pending and the window shows placeholders.
    pub fn new(wake: impl Fn() + Send + 'static) -> Self {
        let worker = Worker::spawn("natview-thumbnails", State::default(), move |mailbox| {
            run(mailbox, &wake)
        });
        Self { worker }
    }

    /// Reads from `source` from now on (forgetting what was wanted from the previous one).
    pub fn set_source(&self, source: ThumbnailSource) {
        let mailbox = self.worker.mailbox();
        let mut state = mailbox.lock();
        state.source = Some(source);
        state.generation += 1;
        state.wanted.clear();
        state.ready.clear();
        state.ready_ids.clear();
        mailbox.notify();
    }

    /// The items wanted now, most important first (replaces the previous request). Items being
    /// read or read and not yet taken are left out.
    pub fn want(&self, ids: &[usize]) {
        let mailbox = self.worker.mailbox();
        let mut state = mailbox.lock();
        let State {
            wanted,
            in_flight,
            ready_ids,
            ..
        } = &mut *state;
        wanted.clear();
        wanted.extend(
            ids.iter()
                .copied()
                .filter(|id| !in_flight.contains(id) && !ready_ids.contains(id)),
        );
        if !wanted.is_empty() {
            mailbox.notify();
        }
    }

    /// Takes what was read since the last call.
    pub fn take_ready(&self) -> Vec<LoadedThumbnail> {
        let mut state = self.worker.mailbox().lock();
        state.ready_ids.clear();
        std::mem::take(&mut state.ready)
    }

    /// Whether anything is wanted or being read.
    pub fn is_busy(&self) -> bool {
        let state = self.worker.mailbox().lock();
        !state.wanted.is_empty() || !state.in_flight.is_empty()
    }
}

fn run(mailbox: &Mailbox<State>, wake: &dyn Fn()) {
    let take = |state: &mut State| {
        let source = state.source.clone().filter(|_| !state.wanted.is_empty())?;
        let count = source.batch().min(state.wanted.len());
        let batch: Vec<usize> = state.wanted.drain(..count).collect();
        state.in_flight.extend(batch.iter().copied());
        Some((source, state.generation, batch))
    };
    while let Some((source, generation, batch)) = mailbox.next(take) {
        let load = |&id: &usize| LoadedThumbnail {
            id,
            image: source.load(id),
        };
        let loaded: Vec<LoadedThumbnail> = match &source {
            ThumbnailSource::Store(_) => batch.iter().map(load).collect(),
            ThumbnailSource::Files(_) => batch.par_iter().map(load).collect(),
        };
        {
            let mut state = mailbox.lock();
            for id in &batch {
                state.in_flight.remove(id);
            }
            if state.generation == generation {
                for thumbnail in loaded {
                    state.ready_ids.insert(thumbnail.id);
                    state.ready.push(thumbnail);
                }
            }
        }
        wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::thumbs::{encode_thumbnail, ThumbnailWriter};
    use std::time::{Duration, Instant};

    fn wait_for(loader: &ThumbnailLoader, n: usize) -> Vec<LoadedThumbnail> {
        let started = Instant::now();
        let mut got = Vec::new();
        while got.len() < n && started.elapsed() < Duration::from_secs(10) {
            got.extend(loader.take_ready());
            std::thread::sleep(Duration::from_millis(2));
        }
        got
    }

    #[test]
    fn wanted_thumbnails_are_read_from_the_store_and_gaps_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.bin");
        let mut writer = ThumbnailWriter::create(&path, "d").expect("create");
        for shade in [10u8, 120, 240] {
            let image = RgbImage::from_pixel(THUMBNAIL_PX, THUMBNAIL_PX, image::Rgb([shade; 3]));
            writer
                .push(Some(&encode_thumbnail(&image).expect("encode")))
                .expect("push");
        }
        writer.push(None).expect("push");
        writer.finish("i").expect("finish");
        let store = ThumbnailStore::open(&path, "d", "i").expect("open");

        let loader = ThumbnailLoader::new(|| {});
        loader.set_source(ThumbnailSource::Store(Arc::new(store)));
        loader.want(&[2, 3, 0]);
        let mut got = wait_for(&loader, 3);
        got.sort_by_key(|t| t.id);
        let ids: Vec<usize> = got.iter().map(|t| t.id).collect();
        assert_eq!(ids, vec![0, 2, 3]);
        let bright = got[1].image.as_ref().expect("item 2").get_pixel(3, 3).0[0];
        assert!(bright > 230, "{bright}");
        assert!(got[2].image.is_none(), "item 3 has no thumbnail");
        assert!(!loader.is_busy());
    }

    #[test]
    fn image_files_are_decoded_while_no_store_exists() {
        let paths = vec![
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../tests/fixtures/photos/coffee.png"
            )),
            PathBuf::from("no/such/file.png"),
        ];
        let loader = ThumbnailLoader::new(|| {});
        loader.set_source(ThumbnailSource::Files(Arc::new(paths)));
        loader.want(&[0, 1]);
        let mut got = wait_for(&loader, 2);
        got.sort_by_key(|t| t.id);
        assert_eq!(got.len(), 2);
        assert!(got[1].image.is_none());
        let image = got[0].image.as_ref().expect("decoded");
        assert_eq!(image.dimensions(), (THUMBNAIL_PX, THUMBNAIL_PX));
    }
}
