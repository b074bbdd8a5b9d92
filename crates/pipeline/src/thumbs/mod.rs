//! Thumbnails on demand: a packed file of small JPEGs written once while a dataset is embedded
//! ([`ThumbnailWriter`], [`ThumbnailStore`]) and a worker that reads what the window shows
//! ([`ThumbnailLoader`]), so that memory does not grow with the number of images.

mod loader;
mod store;

pub use loader::{LoadedThumbnail, ThumbnailLoader, ThumbnailSource};
pub use store::{encode_thumbnail, thumbnail_bytes, ThumbnailStore, ThumbnailWriter, THUMBNAIL_PX};
