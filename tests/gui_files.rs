//! The desktop app opening a workspace whose files were damaged: a corrupt index cache is
//! rebuilt with a notice, a damaged label store is an error left as it is, and the app keeps
//! working (no crash on a click).

// Tests may unwrap and expect: a failed test is the error report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod gui_support;

use gui_support::opened_app;

use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use natview::app::{NatviewApp, NEIGHBOURS_K};

/// The workspace's one HNSW graph file.
fn graph_file(root: &std::path::Path) -> std::path::PathBuf {
    let found: Vec<_> = std::fs::read_dir(root.join(".natview"))
        .expect("workspace")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "graph"))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found[0].clone()
}

/// Clicks item `id` and checks its neighbours are listed.
fn click_shows_neighbours(harness: &mut Harness<'static, NatviewApp>, id: usize) {
    harness.get_by_label(&format!("item {id}")).click();
    harness.run();
    let session = harness.state().session().expect("open");
    let selection = session.selection.clone().expect("an item is selected");
    assert_eq!(selection.item(), Some(id));
    assert_eq!(selection.neighbours.len(), NEIGHBOURS_K);
    let first = selection.neighbours[0];
    harness.get_by_label(&format!(
        "neighbour 1: item {} ({:.3})",
        first.id, first.similarity
    ));
}

/// A graph file whose header claims a layer above its entry point's (one byte of the header
/// changed) used to load and then crash the first search, on the window's thread.
#[test]
fn a_corrupt_index_is_rebuilt_with_a_notice_and_clicks_still_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 12);
    drop(opened_app(&root));
    let graph = graph_file(&root);
    let mut bytes = std::fs::read(&graph).expect("read graph");
    // Header: magic (8 bytes), then n, dim, M, ef_construction, entry, top layer (u64 each).
    let top_at = 8 + 5 * 8;
    bytes[top_at] = bytes[top_at].wrapping_add(1);
    std::fs::write(&graph, &bytes).expect("damage graph");

    let mut harness = opened_app(&root);
    let notice = harness.state().notice().expect("a notice").to_string();
    assert!(notice.contains("index rebuilt"), "{notice}");
    assert!(
        notice.contains(".graph"),
        "the notice names the file: {notice}"
    );
    assert!(harness.query_by_label_contains("index rebuilt").is_some());
    assert_ne!(
        std::fs::read(&graph).expect("read graph"),
        bytes,
        "the damaged file was replaced"
    );
    click_shows_neighbours(&mut harness, 7);
}

/// Arbitrary bytes in place of the graph: rebuilt the same way.
#[test]
fn a_graph_of_garbage_is_rebuilt_and_a_damaged_label_store_is_left_as_it_is() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 12);
    drop(opened_app(&root));
    let graph = graph_file(&root);
    let len = std::fs::metadata(&graph).expect("graph").len() as usize;
    let garbage: Vec<u8> = (0..len).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(&graph, &garbage).expect("damage graph");
    let labels = root.join(".natview/labels.sqlite");
    let store = b"not a store ".repeat(300);
    std::fs::write(&labels, &store).expect("damage labels");

    let mut harness = opened_app(&root);
    let notice = harness.state().notice().expect("a notice").to_string();
    assert!(notice.contains("index rebuilt"), "{notice}");
    let error = harness.state().error().expect("an error").to_string();
    assert!(error.contains("labels.sqlite"), "{error}");
    assert!(error.contains("left the file as it is"), "{error}");
    assert!(harness.state().session().expect("open").labels.is_none());
    click_shows_neighbours(&mut harness, 3);
    assert_eq!(
        std::fs::read(&labels).expect("read"),
        store,
        "the store is untouched"
    );
}

/// A checkpoint dropped on the window (here lightly's BYOL recipe saved by Lightning) becomes
/// the encoder: natview says what it found, embeds the dataset with it, and the Model menu
/// offers it again for this dataset.
#[test]
fn a_dropped_lightning_checkpoint_becomes_the_encoder_and_is_remembered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 6);
    let checkpoint = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/checkpoints/lightning_byol.ckpt");
    let mut harness = opened_app(&root);
    harness
        .input_mut()
        .dropped_files
        .push(std::sync::Arc::new(gui_support::DroppedPath(
            checkpoint.clone(),
        )));
    gui_support::wait_idle(&mut harness);
    let app = harness.state();
    assert_eq!(app.error(), None);
    let notice = app.notice().expect("a notice").to_string();
    assert!(
        notice.contains("ResNet-18 (width 8)") && notice.contains("Lightning"),
        "{notice}"
    );
    assert_eq!(app.encoder().model, natview::encoder::ModelKind::Checkpoint);
    assert_eq!(app.encoder().weights.as_deref(), Some(checkpoint.as_path()));
    let session = app.session().expect("still open");
    assert_eq!(session.set.meta.encoder, *app.encoder());
    assert_eq!(session.set.matrix.dim, 64);
    let workspace = natview::workspace::Workspace::at(&root.join(".natview"));
    let offered = natview::catalogue::available_encoders(&workspace);
    assert!(
        offered.iter().any(|e| e.spec == *app.encoder()),
        "{:?}",
        offered.iter().map(|e| &e.name).collect::<Vec<_>>()
    );
}
