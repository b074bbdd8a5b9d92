//! The window honours the command line's common settings (`--workspace`, `--cpu`, `--batch`),
//! and two overlapping open jobs on one dataset (re-open while embedding, or an encoder switch)
//! both end with valid files, the second's result kept.

// Tests may unwrap and expect: a failed test is the error report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod gui_support;

use egui_kittest::Harness;
use gui_support::{test_spec, wait_idle};
use natview::app::{Command, JobKind, NatviewApp};
use natview::encoder::{EncoderSpec, ModelKind};
use natview::pipeline::RunSettings;
use natview::thumbs::ThumbnailStore;
use natview::workspace::EmbeddingStore;
use std::path::Path;

fn app_with(run: RunSettings) -> Harness<'static, NatviewApp> {
    let mut app = NatviewApp::empty(test_spec());
    app.set_run_settings(run);
    Harness::builder()
        .with_size(egui::vec2(1280.0, 800.0))
        .with_max_steps(64)
        .build_ui_state(|ui, app: &mut NatviewApp| app.show(ui), app)
}

/// Steps until the open job has embedded at least one batch.
fn until_embedding(harness: &mut Harness<'static, NatviewApp>) {
    gui_support::step_until(harness, "embedding started", |app| {
        app.job_progress(JobKind::Open)
            .is_some_and(|p| p.phase == "embedding" && p.done > 0)
    });
}

/// The embeddings and thumbnails of `workspace` for `key` load, and match each other.
fn assert_valid_files(workspace: &Path, key: &str, dataset_fingerprint: &str) -> usize {
    let (matrix, meta) =
        EmbeddingStore::load(&workspace.join(format!("embeddings.{key}.safetensors")))
            .expect("embeddings load");
    assert!(meta.is_some(), "with natview's metadata");
    let store = ThumbnailStore::open_for_dataset(
        &workspace.join("thumbnails.64.bin"),
        dataset_fingerprint,
        matrix.rows,
    )
    .expect("thumbnails load");
    drop(store);
    matrix.rows
}

#[test]
fn the_window_writes_where_workspace_says_and_nothing_beside_the_dataset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 4);
    let ws = dir.path().join("elsewhere");
    let mut harness = app_with(RunSettings {
        workspace: Some(ws.clone()),
        force_cpu: true,
        batch_size: Some(3),
        ..RunSettings::default()
    });
    let ctx = harness.ctx.clone();
    harness.state_mut().open(&ctx, root.clone());
    wait_idle(&mut harness);
    let session = harness.state().session().expect("opened");
    assert_eq!(session.workspace.dir(), ws);
    let fingerprint = session.dataset.fingerprint();
    assert_eq!(assert_valid_files(&ws, "compact", &fingerprint), 20);
    assert!(
        ws.join("labels.sqlite").is_file(),
        "labels go to --workspace"
    );
    assert!(
        !root.join(".natview").exists(),
        "nothing beside the dataset"
    );
}

#[test]
fn reopening_while_embedding_keeps_the_second_run_and_valid_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 40);
    let mut harness = app_with(RunSettings {
        force_cpu: true,
        batch_size: Some(2),
        checkpoint_images: Some(8),
        ..RunSettings::default()
    });
    let ctx = harness.ctx.clone();
    harness.state_mut().open(&ctx, root.clone());
    until_embedding(&mut harness);
    // Opened again mid-run: the first job is cancelled, the second takes over its workspace.
    harness.state_mut().open(&ctx, root.clone());
    wait_idle(&mut harness);
    let app = harness.state();
    assert_eq!(app.error(), None);
    let session = app.session().expect("opened");
    assert_eq!(session.set.items.len(), 200);
    let ws = root.join(".natview");
    assert_eq!(
        assert_valid_files(&ws, "compact", &session.dataset.fingerprint()),
        200
    );
    assert!(
        app.notice()
            .is_some_and(|n| n.contains("continued the stopped embedding run")),
        "{:?}",
        app.notice()
    );
}

#[test]
fn switching_encoder_while_embedding_ends_with_the_new_encoder_and_valid_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 40);
    let mut harness = app_with(RunSettings {
        force_cpu: true,
        batch_size: Some(2),
        ..RunSettings::default()
    });
    let ctx = harness.ctx.clone();
    harness.state_mut().open(&ctx, root.clone());
    until_embedding(&mut harness);
    let pixels = EncoderSpec::untrained(ModelKind::Pixels);
    harness
        .state_mut()
        .send(Command::UseEncoder(pixels.clone()));
    wait_idle(&mut harness);
    let app = harness.state();
    assert_eq!(app.error(), None);
    let session = app.session().expect("opened");
    assert_eq!(session.set.meta.encoder, pixels);
    assert_eq!(
        assert_valid_files(
            &root.join(".natview"),
            "pixels",
            &session.dataset.fingerprint()
        ),
        200
    );
}
