//! Text search in the app's Gallery: with a CLIP folder as the encoder a typed text ranks the
//! dataset through the text tower (on a worker) and the index, the matches show with their
//! scores and the Neighbours panel shows the text's best matches; with an encoder that has no
//! text tower the box says so.

// Tests may unwrap and expect: a failed test is the error report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod gui_support;

use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use natview::app::{NatviewApp, Query, NEIGHBOURS_K, TEXT_MATCHES_K};
use natview::encoder::EncoderSpec;

fn clip_app(root: &std::path::Path) -> Harness<'static, NatviewApp> {
    let clip = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vit/hf-clip");
    let spec = EncoderSpec::checkpoint(&clip, None, None).expect("the CLIP folder opens");
    let mut harness = Harness::builder()
        .with_size(egui::vec2(1280.0, 800.0))
        .with_max_steps(64)
        .build_ui_state(
            |ui, app: &mut NatviewApp| app.show(ui),
            NatviewApp::empty(spec),
        );
    let ctx = harness.ctx.clone();
    harness.state_mut().open(&ctx, root.to_path_buf());
    gui_support::wait_idle(&mut harness);
    assert!(
        harness.state().session().is_some(),
        "{:?}",
        harness.state().error()
    );
    harness
}

#[test]
fn a_typed_text_ranks_the_gallery_and_feeds_the_neighbours_panel() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 30);
    let mut harness = clip_app(&root);
    let session = harness.state().session().expect("open");
    assert!(session.text_search.is_ok(), "{:?}", session.text_search);
    let images = session.set.items.len();
    let edit = harness.get_by_role_and_label(egui::accesskit::Role::TextInput, "Search by text");
    edit.click();
    edit.type_text("a red heart");
    harness.run();
    harness.key_press(egui::Key::Enter);
    gui_support::wait_idle(&mut harness);
    let app = harness.state();
    assert_eq!(app.error(), None);
    let session = app.session().expect("open");
    let found = session.text_matches.clone().expect("matches");
    assert_eq!(found.text, "a red heart");
    assert_eq!(found.matches.len(), TEXT_MATCHES_K.min(images));
    assert!(found
        .matches
        .windows(2)
        .all(|w| w[0].similarity >= w[1].similarity));
    let selection = session.selection.clone().expect("the text is the query");
    assert_eq!(
        selection.query,
        Query::Text {
            text: "a red heart".into()
        }
    );
    assert_eq!(selection.neighbours.len(), NEIGHBOURS_K);
    assert_eq!(selection.neighbours[..], found.matches[..NEIGHBOURS_K]);
    // The index's ranking is the exact one on this small set.
    let set = &session.set;
    let text = natview::encoder::TextEncoder::open(
        set.meta.encoder.weights.as_deref().expect("weights"),
        None,
        &candle_core::Device::Cpu,
    )
    .expect("text tower");
    let query = text.embed(&["a red heart"]).expect("embeds").remove(0);
    let exact = natview::index::exact_neighbours(&set.matrix, &query, 3, None).expect("exact");
    assert_eq!(exact[0].id, found.matches[0].id);
    let best = found.matches[0];
    harness.get_by_label(&format!(
        "text match 1: item {} ({:.3})",
        best.id, best.similarity
    ));
    harness.get_by_label("Text: “a red heart”");
    harness.get_by_label(&format!(
        "neighbour 1: item {} ({:.3})",
        best.id, best.similarity
    ));
    harness.get_by_label("Clear").click();
    harness.run();
    assert!(harness
        .state()
        .session()
        .expect("open")
        .text_matches
        .is_none());
}

/// Without a text tower the box says so; a Hugging Face CLIP folder dropped on the window
/// becomes the encoder (not a dataset to open) and the box works.
#[test]
fn without_a_text_tower_the_box_says_so_until_a_clip_folder_is_dropped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 6);
    let mut harness = gui_support::opened_app(&root);
    let session = harness.state().session().expect("open");
    let why = session.text_search.clone().expect_err("no text tower");
    assert!(why.contains("has no text tower"), "{why}");
    harness.get_by_label("no text tower");
    let clip = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vit/hf-clip");
    harness
        .input_mut()
        .dropped_files
        .push(std::sync::Arc::new(gui_support::DroppedPath(clip.clone())));
    gui_support::wait_idle(&mut harness);
    let app = harness.state();
    assert_eq!(app.error(), None);
    assert_eq!(app.encoder().weights.as_deref(), Some(clip.as_path()));
    let session = app.session().expect("still open");
    assert_eq!(
        session.dataset.source, root,
        "the folder did not open as a dataset"
    );
    assert!(session.text_search.is_ok(), "{:?}", session.text_search);
    assert!(
        app.notice()
            .is_some_and(|n| n.contains("CLIP ViT-2×64/8 image tower")),
        "{:?}",
        app.notice()
    );
}
