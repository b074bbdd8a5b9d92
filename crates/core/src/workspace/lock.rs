//! The workspace lock: one process (or one job of a process) writes a workspace at a time. The
//! lock is an advisory file lock on `<workspace>/lock` (released by the operating system when
//! its holder exits, however it exits); the file says who holds it, so that a second writer can
//! tell the user whom it waits for.

use super::{Workspace, WorkspaceError};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

/// Who holds a workspace lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    /// Its process id.
    pub pid: u32,
    /// What it is doing ("embedding with effnet-lite0", …).
    pub purpose: String,
    /// When it took the lock (seconds since the Unix epoch).
    pub since_unix_secs: u64,
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let same = if self.pid == std::process::id() {
            " (this process)"
        } else {
            ""
        };
        write!(
            f,
            "process {}{same}, {}, for {} s",
            self.pid,
            self.purpose,
            now.saturating_sub(self.since_unix_secs)
        )
    }
}

/// A held workspace lock; dropping it releases the lock.
#[derive(Debug)]
pub struct WorkspaceLock {
    file: File,
    path: PathBuf,
}

impl WorkspaceLock {
    /// Takes the lock of `workspace` if it is free; else says who holds it (`Err(holder)`;
    /// `None` when the holder has not written its name yet).
    pub fn try_acquire(
        workspace: &Workspace,
        purpose: &str,
    ) -> Result<Result<Self, Option<LockHolder>>, WorkspaceError> {
        workspace.create()?;
        let path = workspace.dir().join("lock");
        let io = |e: std::io::Error| WorkspaceError::io(&path, e);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let holder = file
                    .read_to_string(&mut text)
                    .ok()
                    .and_then(|_| serde_json::from_str(&text).ok());
                return Ok(Err(holder));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let holder = LockHolder {
            pid: std::process::id(),
            purpose: purpose.to_string(),
            since_unix_secs: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        };
        let text = serde_json::to_string(&holder).map_err(|e| WorkspaceError::io(&path, e))?;
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)?;
        Ok(Ok(Self { file, path }))
    }

    /// The lock file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

impl Drop for WorkspaceLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_is_told_who_holds_the_lock_until_it_is_released() {
        let dir = tempfile::tempdir().expect("tempdir");
        let workspace = Workspace::at(dir.path());
        let first = WorkspaceLock::try_acquire(&workspace, "embedding with compact")
            .expect("io")
            .expect("free");
        let holder = WorkspaceLock::try_acquire(&workspace, "another job")
            .expect("io")
            .expect_err("held");
        let holder = holder.expect("the holder wrote its name");
        assert_eq!(holder.pid, std::process::id());
        assert_eq!(holder.purpose, "embedding with compact");
        assert!(holder.to_string().contains("embedding with compact"));
        drop(first);
        assert!(WorkspaceLock::try_acquire(&workspace, "another job")
            .expect("io")
            .is_ok());
    }
}
