//! Values worked out from a file, kept for the process per version of the file (its path, size
//! and modification time) and an optional extra key: a weights file's fingerprint, what a
//! checkpoint holds. The app names the encoder every frame and the CLI looks at a checkpoint
//! before it builds the network; neither should read the file again for that. Errors are not
//! kept.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

/// Versions kept at most; all are dropped when full (a session opens a handful of files).
const CAPACITY: usize = 256;

type Key = (PathBuf, u64, Option<SystemTime>, Option<String>);

/// One kind of value per file version; a `static` of each kind.
pub(crate) struct FileMemo<V> {
    entries: OnceLock<Mutex<HashMap<Key, V>>>,
}

impl<V: Clone> FileMemo<V> {
    /// An empty memo.
    pub(crate) const fn new() -> Self {
        Self {
            entries: OnceLock::new(),
        }
    }

    /// The value kept for this version of `path` (and `extra`), else `compute()`'s, kept when
    /// it is `Ok`. A file whose metadata cannot be read is computed every time (and fails
    /// there, with the caller's message).
    pub(crate) fn get_or_compute<E>(
        &self,
        path: &Path,
        extra: Option<&str>,
        compute: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E> {
        let Ok(meta) = std::fs::metadata(path) else {
            return compute();
        };
        let key: Key = (
            path.to_path_buf(),
            meta.len(),
            meta.modified().ok(),
            extra.map(str::to_string),
        );
        let entries = self.entries.get_or_init(Mutex::default);
        if let Some(value) = entries.lock().ok().and_then(|e| e.get(&key).cloned()) {
            return Ok(value);
        }
        let value = compute()?;
        if let Ok(mut entries) = entries.lock() {
            if entries.len() >= CAPACITY {
                entries.clear();
            }
            entries.insert(key, value.clone());
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unchanged_file_is_read_once_and_a_rewritten_one_again() {
        static MEMO: FileMemo<String> = FileMemo::new();
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("weights.pth");
        std::fs::write(&path, b"first").expect("write");
        let mut computed = 0;
        for _ in 0..3 {
            let got = MEMO.get_or_compute(&path, None, || {
                computed += 1;
                Ok::<_, ()>("A".to_string())
            });
            assert_eq!(got, Ok("A".to_string()));
        }
        assert_eq!(computed, 1);
        std::fs::write(&path, b"second, longer").expect("rewrite");
        let got = MEMO.get_or_compute(&path, None, || Ok::<_, ()>("B".to_string()));
        assert_eq!(got, Ok("B".to_string()));
        let other = MEMO.get_or_compute(&path, Some("encoder_q"), || Ok::<_, ()>("C".into()));
        assert_eq!(other, Ok("C".to_string()));
    }

    #[test]
    fn errors_are_not_kept() {
        static MEMO: FileMemo<u32> = FileMemo::new();
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("bad.pth");
        std::fs::write(&path, b"x").expect("write");
        assert_eq!(MEMO.get_or_compute(&path, None, || Err("bad")), Err("bad"));
        assert_eq!(MEMO.get_or_compute(&path, None, || Ok::<_, &str>(7)), Ok(7));
    }
}
