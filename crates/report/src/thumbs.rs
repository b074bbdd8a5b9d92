//! The report's images: from the workspace's thumbnail file when it is there and fresh (the
//! app makes it), else decoded from the image file itself — only the few images the report
//! shows, never the whole dataset.

use crate::gather::Thumb;
use natview_core::dataset::decode_rgb_covering;
use natview_core::workspace::Workspace;
use natview_pipeline::thumbs::{thumbnail_bytes, ThumbnailStore, THUMBNAIL_PX};
use natview_pipeline::EmbeddingSet;

/// Where the report's thumbnails come from.
pub(crate) struct Thumbnails<'a> {
    set: &'a EmbeddingSet,
    store: Option<ThumbnailStore>,
}

impl<'a> Thumbnails<'a> {
    /// The thumbnails of `set`'s items.
    pub(crate) fn new(workspace: &Workspace, set: &'a EmbeddingSet) -> Self {
        let store = ThumbnailStore::open(
            &workspace.thumbnails_path(),
            &set.meta.dataset_fingerprint,
            &set.meta.items_fingerprint,
        )
        .ok();
        Self { set, store }
    }

    /// Row `row`'s image as the report shows it.
    pub(crate) fn thumb(&self, row: usize) -> Thumb {
        let item = &self.set.items[row];
        let jpeg = self
            .store
            .as_ref()
            .and_then(|s| s.encoded(row).map(<[u8]>::to_vec))
            .or_else(|| {
                decode_rgb_covering(&item.path, THUMBNAIL_PX, THUMBNAIL_PX)
                    .ok()
                    .and_then(|decoded| thumbnail_bytes(&decoded.image))
            });
        Thumb {
            row,
            listing: item.listing.clone(),
            path: item.path.clone(),
            jpeg,
        }
    }
}
