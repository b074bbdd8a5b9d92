//! The thumbnail file of a workspace: one packed, memory-mapped file holding a small JPEG of
//! every embedded item (row order of the embeddings), written once while the images are decoded
//! for embedding, so that the app reads only what is on screen and never holds them all.
//!
//! Layout (little-endian):
//! - header, 64 bytes: magic `NVTHUMB1`, side in pixels (u32), reserved (u32), item count
//!   (u64), offset of the index (u64), xxh3 of the dataset fingerprint (u64), xxh3 of the
//!   items fingerprint (u64), 16 zero bytes;
//! - the JPEG blobs, back to back;
//! - the index: per item, the blob's offset (u64), its length (u32; 0 = no thumbnail) and a
//!   reserved u32.
//!
//! It is written to a temporary file and renamed into place when complete; a file whose
//! fingerprints do not match the open dataset is stale and rebuilt.

use image::RgbImage;
use natview_core::workspace::{AtomicFile, WorkspaceError};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Side of the stored thumbnails in pixels (the workspace names the file after it).
pub use natview_core::workspace::THUMBNAIL_PX;

/// JPEG quality of the stored thumbnails (sharp enough for emoji edges at 64 px).
const JPEG_QUALITY: u8 = 90;

const MAGIC: &[u8; 8] = b"NVTHUMB1";
const HEADER_BYTES: usize = 64;
const INDEX_ENTRY_BYTES: usize = 16;

/// The key a fingerprint string is stored as.
fn key_of(fingerprint: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(fingerprint.as_bytes())
}

/// Encodes a thumbnail (any size; square ones are what the app shows) as the stored JPEG.
pub fn encode_thumbnail(image: &RgbImage) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::with_capacity(4096);
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, JPEG_QUALITY)
        .encode_image(image)
        .map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// The square thumbnail of a decoded image, encoded for the store (`None` if encoding failed).
pub fn thumbnail_bytes(image: &RgbImage) -> Option<Vec<u8>> {
    encode_thumbnail(&natview_encoder::square_resize(image, THUMBNAIL_PX)).ok()
}

/// Writes a thumbnail file item by item (in row order), then the index, through natview's one
/// atomic writer (a temporary file of its own, removed if the writer is dropped unfinished).
pub struct ThumbnailWriter {
    file: BufWriter<AtomicFile>,
    tmp: PathBuf,
    dataset_key: u64,
    written: u64,
    index: Vec<(u64, u32)>,
}

impl ThumbnailWriter {
    /// Starts the file that will replace `path` when [`finish`](Self::finish)ed.
    pub fn create(path: &Path, dataset_fingerprint: &str) -> Result<Self, WorkspaceError> {
        let file = AtomicFile::create(path).map_err(|e| WorkspaceError::io(path, e))?;
        let tmp = file.temporary_path().to_path_buf();
        let mut file = BufWriter::with_capacity(1 << 20, file);
        file.write_all(&[0u8; HEADER_BYTES])
            .map_err(|e| WorkspaceError::io(&tmp, e))?;
        Ok(Self {
            file,
            tmp,
            dataset_key: key_of(dataset_fingerprint),
            written: HEADER_BYTES as u64,
            index: Vec::new(),
        })
    }

    /// Appends the next item's encoded thumbnail (`None`: it has none).
    pub fn push(&mut self, encoded: Option<&[u8]>) -> Result<(), WorkspaceError> {
        let bytes = encoded.unwrap_or(&[]);
        let len = u32::try_from(bytes.len())
            .map_err(|_| WorkspaceError::io(&self.tmp, "thumbnail larger than 4 GB"))?;
        self.file
            .write_all(bytes)
            .map_err(|e| WorkspaceError::io(&self.tmp, e))?;
        self.index.push((self.written, len));
        self.written += u64::from(len);
        Ok(())
    }

    /// Items pushed so far.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether nothing was pushed yet.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Writes the index and header, and moves the file into place.
    pub fn finish(mut self, items_fingerprint: &str) -> Result<(), WorkspaceError> {
        let tmp = self.tmp.clone();
        let io = |e: std::io::Error| WorkspaceError::io(&tmp, e);
        let index_offset = self.written;
        for &(offset, len) in &self.index {
            self.file.write_all(&offset.to_le_bytes()).map_err(io)?;
            self.file.write_all(&len.to_le_bytes()).map_err(io)?;
            self.file.write_all(&[0u8; 4]).map_err(io)?;
        }
        let mut header = Vec::with_capacity(HEADER_BYTES);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&THUMBNAIL_PX.to_le_bytes());
        header.extend_from_slice(&[0u8; 4]);
        header.extend_from_slice(&(self.index.len() as u64).to_le_bytes());
        header.extend_from_slice(&index_offset.to_le_bytes());
        header.extend_from_slice(&self.dataset_key.to_le_bytes());
        header.extend_from_slice(&key_of(items_fingerprint).to_le_bytes());
        header.resize(HEADER_BYTES, 0);
        let mut file = self.file.into_inner().map_err(|e| io(e.into_error()))?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.write_all(&header).map_err(io)?;
        let target = file.target().to_path_buf();
        file.commit().map_err(|e| WorkspaceError::io(&target, e))
    }
}

/// A thumbnail file opened for reading (memory-mapped: reading one costs a few page faults).
pub struct ThumbnailStore {
    path: PathBuf,
    map: memmap2::Mmap,
    count: usize,
    index_offset: usize,
}

impl std::fmt::Debug for ThumbnailStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThumbnailStore")
            .field("path", &self.path)
            .field("count", &self.count)
            .finish()
    }
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

impl ThumbnailStore {
    /// Opens `path` if it was made for this dataset and these items; a missing, damaged or
    /// stale file is an error saying which.
    pub fn open(
        path: &Path,
        dataset_fingerprint: &str,
        items_fingerprint: &str,
    ) -> Result<Self, WorkspaceError> {
        Self::open_checked(path, dataset_fingerprint, Some(items_fingerprint))
    }

    /// Opens `path` if it was made from this dataset, whatever its items, holding `count` of
    /// them: a dataset where nothing was skipped has its items in dataset order, so a preview
    /// can show them before the embeddings (and their items) are loaded.
    pub fn open_for_dataset(
        path: &Path,
        dataset_fingerprint: &str,
        count: usize,
    ) -> Result<Self, WorkspaceError> {
        let store = Self::open_checked(path, dataset_fingerprint, None)?;
        if store.count != count {
            return Err(WorkspaceError::Stale {
                path: path.to_path_buf(),
                reason: format!("holds {} items, the dataset {count}", store.count),
            });
        }
        Ok(store)
    }

    fn open_checked(
        path: &Path,
        dataset_fingerprint: &str,
        items_fingerprint: Option<&str>,
    ) -> Result<Self, WorkspaceError> {
        let file = std::fs::File::open(path).map_err(|e| WorkspaceError::io(path, e))?;
        // SAFETY: the file is only ever replaced by a rename (never written in place), so the
        // mapped pages do not change under us.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| WorkspaceError::io(path, e))?;
        let stale = |reason: &str| WorkspaceError::Stale {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        if map.len() < HEADER_BYTES || &map[..8] != MAGIC {
            return Err(stale("not a natview thumbnail file"));
        }
        if u32_at(&map, 8) != THUMBNAIL_PX {
            return Err(stale("made at another thumbnail size"));
        }
        // The index must end exactly at the end of the file, after the header: then every
        // index entry read later lies in the file (each blob is checked when it is read).
        let count = usize::try_from(u64_at(&map, 16)).ok();
        let index_offset = usize::try_from(u64_at(&map, 24)).ok();
        let (Some(count), Some(index_offset)) = (count, index_offset) else {
            return Err(stale("truncated or damaged"));
        };
        let index_end = count
            .checked_mul(INDEX_ENTRY_BYTES)
            .and_then(|n| n.checked_add(index_offset));
        if index_end != Some(map.len()) || index_offset < HEADER_BYTES {
            return Err(stale("truncated or damaged"));
        }
        if u64_at(&map, 32) != key_of(dataset_fingerprint) {
            return Err(stale("the dataset changed"));
        }
        if items_fingerprint.is_some_and(|items| u64_at(&map, 40) != key_of(items)) {
            return Err(stale("made for other items"));
        }
        Ok(Self {
            path: path.to_path_buf(),
            map,
            count,
            index_offset,
        })
    }

    /// Whether `path` is a complete thumbnail file made from this dataset (whatever its items:
    /// they follow from the dataset, so a fresh file need not be written again).
    pub fn is_made_from(path: &Path, dataset_fingerprint: &str) -> bool {
        let Ok(mut file) = std::fs::File::open(path) else {
            return false;
        };
        let mut header = [0u8; HEADER_BYTES];
        let complete = std::io::Read::read_exact(&mut file, &mut header).is_ok()
            && &header[..8] == MAGIC
            && u32_at(&header, 8) == THUMBNAIL_PX;
        complete && u64_at(&header, 32) == key_of(dataset_fingerprint)
    }

    /// Number of items in the file.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the file holds no items.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The encoded thumbnail of row `row` (`None`: out of range, none stored, or damaged).
    pub fn encoded(&self, row: usize) -> Option<&[u8]> {
        if row >= self.count {
            return None;
        }
        // In the file: `open` checked that the index of `count` entries ends at its end.
        let at = self.index_offset + row * INDEX_ENTRY_BYTES;
        let offset = usize::try_from(u64_at(&self.map, at)).ok()?;
        let len = u32_at(&self.map, at + 8) as usize;
        let end = offset.checked_add(len)?;
        if len == 0 || offset < HEADER_BYTES || end > self.index_offset {
            return None;
        }
        self.map.get(offset..end)
    }

    /// The decoded thumbnail of row `row`.
    pub fn get(&self, row: usize) -> Option<RgbImage> {
        let bytes = self.encoded(row)?;
        image::load_from_memory_with_format(bytes, image::ImageFormat::Jpeg)
            .ok()
            .map(|i| i.into_rgb8())
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(r: u8, g: u8, b: u8) -> RgbImage {
        RgbImage::from_pixel(THUMBNAIL_PX, THUMBNAIL_PX, image::Rgb([r, g, b]))
    }

    #[test]
    fn thumbnails_round_trip_and_gaps_stay_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("thumbnails.bin");
        let mut writer = ThumbnailWriter::create(&path, "dataset-a").expect("create");
        let red = encode_thumbnail(&solid(250, 10, 10)).expect("encode");
        let blue = encode_thumbnail(&solid(10, 10, 250)).expect("encode");
        writer.push(Some(&red)).expect("push");
        writer.push(None).expect("push");
        writer.push(Some(&blue)).expect("push");
        assert!(!path.exists(), "nothing in place before finish");
        writer.finish("items-a").expect("finish");

        let store = ThumbnailStore::open(&path, "dataset-a", "items-a").expect("open");
        assert_eq!(store.len(), 3);
        let first = store.get(0).expect("row 0");
        assert_eq!(first.dimensions(), (THUMBNAIL_PX, THUMBNAIL_PX));
        let p = first.get_pixel(32, 32).0;
        assert!(p[0] > 230 && p[2] < 30, "red stays red: {p:?}");
        assert!(store.get(1).is_none());
        assert!(store.get(2).expect("row 2").get_pixel(5, 5).0[2] > 230);
        assert!(store.get(3).is_none());
    }

    #[test]
    fn stale_or_damaged_files_are_refused_with_a_reason() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("thumbnails.bin");
        let mut writer = ThumbnailWriter::create(&path, "dataset-a").expect("create");
        writer
            .push(Some(&encode_thumbnail(&solid(1, 2, 3)).expect("encode")))
            .expect("push");
        writer.finish("items-a").expect("finish");
        let err = ThumbnailStore::open(&path, "dataset-b", "items-a").expect_err("stale");
        assert!(err.to_string().contains("the dataset changed"), "{err}");
        let err = ThumbnailStore::open(&path, "dataset-a", "items-b").expect_err("stale");
        assert!(err.to_string().contains("other items"), "{err}");

        let bytes = std::fs::read(&path).expect("read");
        std::fs::write(&path, &bytes[..bytes.len() - 3]).expect("truncate");
        let err = ThumbnailStore::open(&path, "dataset-a", "items-a").expect_err("damaged");
        assert!(err.to_string().contains("truncated"), "{err}");
        std::fs::write(&path, b"garbage").expect("write");
        assert!(ThumbnailStore::open(&path, "dataset-a", "items-a").is_err());
    }

    /// A store written with three thumbnails (one row without), its bytes and its folder.
    fn valid_file() -> (tempfile::TempDir, std::path::PathBuf, Vec<u8>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("thumbnails.bin");
        let mut writer = ThumbnailWriter::create(&path, "d").expect("create");
        for colour in [[200, 0, 0], [0, 0, 0], [0, 0, 200]] {
            let [r, g, b] = colour;
            let encoded =
                (colour != [0, 0, 0]).then(|| encode_thumbnail(&solid(r, g, b)).expect("encode"));
            writer.push(encoded.as_deref()).expect("push");
        }
        writer.finish("i").expect("finish");
        let bytes = std::fs::read(&path).expect("read");
        (dir, path, bytes)
    }

    /// A blob pointing past the end of the file (offset + length overflowing) reads as none.
    #[test]
    fn an_index_entry_out_of_the_file_reads_as_no_thumbnail() {
        let (_dir, path, mut bytes) = valid_file();
        let index_offset = u64_at(&bytes, 24) as usize;
        bytes[index_offset..index_offset + 8].copy_from_slice(&(u64::MAX - 2).to_le_bytes());
        bytes[index_offset + 8..index_offset + 12].copy_from_slice(&100u32.to_le_bytes());
        std::fs::write(&path, &bytes).expect("write");
        let store = ThumbnailStore::open(&path, "d", "i").expect("open");
        assert!(store.encoded(0).is_none());
        assert!(store.get(2).is_some(), "the other rows still read");
    }

    proptest::proptest! {
        #![proptest_config(natview_testkit::config())]

        #[test]
        fn damaged_thumbnail_files_are_refused_or_read_safely(
            changes in natview_testkit::mutations()
        ) {
            let (_dir, path, bytes) = valid_file();
            std::fs::write(&path, natview_testkit::apply(&bytes, &changes)).expect("write");
            for store in [
                ThumbnailStore::open(&path, "d", "i"),
                ThumbnailStore::open_for_dataset(&path, "d", 3),
            ]
            .into_iter()
            .flatten()
            {
                for row in 0..store.len().min(8) + 2 {
                    let _ = store.get(row);
                }
            }
        }
    }

    #[test]
    fn an_unfinished_writer_leaves_no_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("thumbnails.bin");
        {
            let mut writer = ThumbnailWriter::create(&path, "d").expect("create");
            writer.push(None).expect("push");
        }
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 0);
    }
}
