//! natview's one atomic writer: every file it writes goes to a temporary file of its own in the
//! target's folder (a unique name per write, so two writers — two jobs of one process, or two
//! processes — never share one), is flushed to disk, renamed over the target, and the folder is
//! flushed too, so that after a crash the target is the old file or the new one, whole.
//! Dropping an unfinished writer removes its own temporary file and nothing else.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The marker in natview's temporary file names: `.<target name>.tmp-<pid>-<n>`.
const TMP_MARKER: &str = ".tmp-";

/// Writes handed out in this process (part of each temporary name).
static WRITES: AtomicU64 = AtomicU64::new(0);

/// A file being written in place of `target`; [`commit`](Self::commit) puts it there.
#[derive(Debug)]
pub struct AtomicFile {
    target: PathBuf,
    tmp: PathBuf,
    file: File,
    committed: bool,
}

impl AtomicFile {
    /// Starts a new file that will replace `target` (its folder is created if needed).
    pub fn create(target: &Path) -> std::io::Result<Self> {
        let dir = parent_dir(target);
        std::fs::create_dir_all(dir)?;
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out".into());
        loop {
            let n = WRITES.fetch_add(1, Ordering::Relaxed);
            let tmp = dir.join(format!(".{name}{TMP_MARKER}{}-{n}", std::process::id()));
            match std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&tmp)
            {
                Ok(file) => {
                    return Ok(Self {
                        target: target.to_path_buf(),
                        tmp,
                        file,
                        committed: false,
                    })
                }
                // Left by a crashed process that had this pid: take the next number.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The temporary file's path (for messages).
    pub fn temporary_path(&self) -> &Path {
        &self.tmp
    }

    /// The file that will replace.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Flushes the file to disk, renames it over the target and flushes the folder.
    pub fn commit(mut self) -> std::io::Result<()> {
        self.file.flush()?;
        self.file.sync_all()?;
        std::fs::rename(&self.tmp, &self.target)?;
        self.committed = true;
        sync_dir(parent_dir(&self.target))
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.file.write_all(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Seek for AtomicFile {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.file.seek(pos)
    }
}

impl Drop for AtomicFile {
    /// An unfinished file (cancelled, failed) leaves nothing behind; once committed, the
    /// temporary name is gone and nothing is removed.
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Writes `bytes` to `path` atomically (see the module documentation).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(bytes)?;
    file.commit()
}

/// Removes the temporary files that processes no longer running left in `dir` (a crash or a
/// kill between create and commit); returns how many were removed. Files of live processes
/// (this one included) are kept.
pub fn sweep_orphans(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(temporary_file_pid) else {
            continue;
        };
        if !process_is_alive(pid) && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// The pid in a natview temporary file name (`.<name>.tmp-<pid>-<n>`), if it is one.
fn temporary_file_pid(name: &str) -> Option<u32> {
    if !name.starts_with('.') {
        return None;
    }
    let (_, tail) = name.rsplit_once(TMP_MARKER)?;
    let (pid, n) = tail.split_once('-')?;
    n.parse::<u64>().ok()?;
    pid.parse().ok()
}

/// Whether a process with this pid runs on this machine (always true where that cannot be
/// told, so that nothing is removed by mistake).
pub fn process_is_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let proc = Path::new("/proc");
    !proc.join("self").exists() || proc.join(pid.to_string()).exists()
}

fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Flushes a folder's entries (a rename in it) to disk.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("list")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replaces_whole_files_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/a.txt");
        write_atomic(&path, b"first").expect("write");
        write_atomic(&path, b"second").expect("write");
        assert_eq!(std::fs::read(&path).expect("read"), b"second");
        assert_eq!(names(&dir.path().join("sub")), ["a.txt"]);
    }

    #[test]
    fn two_overlapping_writers_of_one_file_do_not_touch_each_other() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("thumbnails.bin");
        let mut first = AtomicFile::create(&path).expect("first");
        let mut second = AtomicFile::create(&path).expect("second");
        assert_ne!(first.temporary_path(), second.temporary_path());
        first.write_all(b"cancelled job").expect("write");
        second.write_all(b"new job").expect("write");
        // The cancelled job is dropped while the new one still writes: only its own file goes.
        drop(first);
        assert!(second.temporary_path().exists());
        second.commit().expect("the second job's rename works");
        assert_eq!(std::fs::read(&path).expect("read"), b"new job");
        assert_eq!(names(dir.path()), ["thumbnails.bin"]);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("items.jsonl");
        write_atomic(&path, b"old").expect("write");
        let mut writer = AtomicFile::create(&path).expect("create");
        writer.write_all(b"half of the new").expect("write");
        drop(writer); // e.g. the disk filled up before commit
        assert_eq!(std::fs::read(&path).expect("read"), b"old");
        assert_eq!(names(dir.path()), ["items.jsonl"]);
    }

    #[test]
    fn orphans_of_dead_processes_are_swept_and_live_ones_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Pid 4194305 is above Linux's pid_max limit (2^22): never a live process.
        std::fs::write(dir.path().join(".e.safetensors.tmp-4194305-0"), b"x").expect("w");
        let live = AtomicFile::create(&dir.path().join("e.safetensors")).expect("create");
        std::fs::write(dir.path().join(".notes.tmp-abc"), b"not ours").expect("w");
        assert_eq!(sweep_orphans(dir.path()), 1);
        assert!(live.temporary_path().exists());
        assert!(dir.path().join(".notes.tmp-abc").exists());
    }

    #[test]
    fn temporary_names_are_recognised() {
        assert_eq!(temporary_file_pid(".items.jsonl.tmp-123-4"), Some(123));
        assert_eq!(temporary_file_pid("items.jsonl.tmp-123-4"), None);
        assert_eq!(temporary_file_pid(".x.tmp-123"), None);
    }
}
