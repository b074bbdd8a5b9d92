//! An embedding run loses no work: killed (`kill -9`) half-way, it continues from its last saved
//! chunk and ends with files byte-identical to an uninterrupted run; a second run on the same
//! workspace waits for the first and says who holds it; a failure while saving the final files
//! keeps every chunk.

// Tests may unwrap and expect: a failed test is the error report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use natview::workspace::{Workspace, WorkspaceLock};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The arguments of one embedding run into `workspace` (small chunks, so that a kill lands
/// between two of them).
fn embed_args(data: &Path, workspace: &Path) -> Vec<String> {
    [
        "embed",
        &data.to_string_lossy(),
        "--model",
        "effnet-lite0",
        "--size",
        "96",
        "--batch",
        "4",
        "--checkpoint-every",
        "8",
        "--workspace",
        &workspace.to_string_lossy(),
        "--cpu",
    ]
    .map(String::from)
    .to_vec()
}

/// A dataset of 24 demo listings (120 images) with one unreadable file.
fn dataset(dir: &Path) -> PathBuf {
    let data = common::demo_slice(dir, 24);
    common::add_bad_files(&data);
    data
}

/// The workspace files a finished run leaves, with their bytes.
fn outputs(workspace: &Path) -> Vec<(String, Vec<u8>)> {
    [
        "embeddings.effnet-lite0-96px.safetensors",
        "items.jsonl",
        "thumbnails.64.bin",
        "skipped.json",
    ]
    .iter()
    .map(|name| {
        let bytes = std::fs::read(workspace.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        (name.to_string(), bytes)
    })
    .collect()
}

fn chunks(workspace: &Path) -> Vec<PathBuf> {
    let dir = workspace.join("partial/effnet-lite0-96px");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "bin"))
        .collect();
    files.sort();
    files
}

#[test]
fn a_run_killed_half_way_continues_and_ends_byte_identical() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dataset(dir.path());
    let whole = dir.path().join("ws-whole");
    let out = Command::new(env!("CARGO_BIN_EXE_natview"))
        .args(embed_args(&data, &whole))
        .arg("--quiet")
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", common::text(&out.stderr));

    let killed = dir.path().join("ws-killed");
    let mut child = Command::new(env!("CARGO_BIN_EXE_natview"))
        .args(embed_args(&data, &killed))
        .arg("--quiet")
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    // Killed as soon as its second chunk is saved (a deadline only guards against a hang).
    let deadline = Instant::now() + Duration::from_secs(300);
    while chunks(&killed).len() < 2 {
        assert!(child.try_wait().expect("wait").is_none(), "ended unkilled");
        assert!(Instant::now() < deadline, "no chunk saved");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("kill -9");
    child.wait().expect("reaped");
    let saved = chunks(&killed).len();
    assert!(saved >= 2);
    assert!(
        !killed
            .join("embeddings.effnet-lite0-96px.safetensors")
            .exists(),
        "killed before the end"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_natview"))
        .args(embed_args(&data, &killed))
        .arg("--quiet")
        .output()
        .expect("runs");
    let stderr = common::text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("continuing a stopped run from image"),
        "{stderr}"
    );
    assert_eq!(outputs(&killed), outputs(&whole));
    assert!(chunks(&killed).is_empty(), "chunks removed when done");
    let leftovers: Vec<_> = std::fs::read_dir(&killed)
        .expect("list")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_second_run_on_one_workspace_waits_and_names_the_holder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = common::demo_slice(dir.path(), 2);
    let ws = dir.path().join("ws");
    let lock = WorkspaceLock::try_acquire(&Workspace::at(&ws), "a test holding it")
        .expect("io")
        .expect("free");
    let mut child = Command::new(env!("CARGO_BIN_EXE_natview"))
        .args([
            "embed",
            &data.to_string_lossy(),
            "--model",
            "pixels",
            "--workspace",
            &ws.to_string_lossy(),
            "--quiet",
            "--cpu",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    // The dataset summary comes first; the wait is said before anything is embedded.
    for _ in 0..5 {
        line.clear();
        stderr.read_line(&mut line).expect("a line");
        if line.contains("waiting") {
            break;
        }
    }
    assert!(
        line.contains("waiting for the workspace")
            && line.contains(&format!("process {}", std::process::id()))
            && line.contains("a test holding it"),
        "{line}"
    );
    assert!(
        child.try_wait().expect("wait").is_none(),
        "it waits while the lock is held"
    );
    drop(lock);
    let status = child.wait().expect("ends");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).expect("rest");
    assert!(status.success(), "{rest}");
    assert!(ws.join("embeddings.pixels.safetensors").is_file());
}

#[test]
fn a_failure_while_saving_keeps_every_chunk_and_the_rerun_embeds_nothing_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = common::demo_slice(dir.path(), 3);
    let ws = dir.path().join("ws");
    // The final file cannot be written (a folder is in its way: the same error path as a full
    // disk at the end of a long run).
    let target = ws.join("embeddings.effnet-lite0-96px.safetensors");
    std::fs::create_dir_all(target.join("in-the-way")).expect("obstacle");
    let out = Command::new(env!("CARGO_BIN_EXE_natview"))
        .args(embed_args(&data, &ws))
        .arg("--quiet")
        .output()
        .expect("runs");
    let stderr = common::text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("embeddings.effnet-lite0-96px.safetensors"),
        "{stderr}"
    );
    assert_eq!(chunks(&ws).len(), 2, "15 images in chunks of 8");
    std::fs::remove_dir_all(&target).expect("clear");
    let out = Command::new(env!("CARGO_BIN_EXE_natview"))
        .args(embed_args(&data, &ws))
        .arg("--quiet")
        .output()
        .expect("runs");
    let stderr = common::text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("continuing a stopped run from image 15 of 15"),
        "{stderr}"
    );
    assert!(target.is_file());
}
