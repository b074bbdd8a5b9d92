//! The desktop app under egui_kittest, on a small real dataset opened by the real worker job.

mod common;

use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use natview::app::{default_spec, Command, NatviewApp, NEIGHBOURS_K};

/// An app harness with `root` opened and the opening job finished.
fn opened_app(root: &std::path::Path) -> Harness<'static, NatviewApp> {
    let mut harness = Harness::builder()
        .with_size(egui::vec2(1280.0, 800.0))
        .build_ui_state(
            |ui, app: &mut NatviewApp| app.show(ui),
            NatviewApp::empty(default_spec()),
        );
    let ctx = harness.ctx.clone();
    harness.state_mut().open(&ctx, root.to_path_buf());
    for _ in 0..2400 {
        harness.step();
        if !harness.state().is_busy() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    assert!(
        !harness.state().is_busy(),
        "opening took more than a minute"
    );
    assert!(
        harness.state().session().is_some(),
        "dataset did not open: {:?}",
        harness.state().error()
    );
    harness.run();
    harness
}

#[test]
fn clicking_an_image_lists_its_neighbours_with_the_right_ids() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 12);
    let mut harness = opened_app(&root);
    let session = harness.state().session().expect("open");
    assert_eq!(session.set.items.len(), 60);
    assert_eq!(session.listings.len(), 12);
    assert_eq!(session.thumbnails.len(), 60);
    assert!(
        session.thumbnails.iter().all(Option::is_some),
        "every item has a thumbnail"
    );
    harness.get_by_label("Click any image to see its nearest neighbours, or drop an image file here.");

    harness.get_by_label("item 7").click();
    harness.run();
    let session = harness.state().session().expect("open");
    let selection = session.selection.clone().expect("an item is selected");
    assert_eq!(selection.item(), Some(7));
    let expected = session
        .index
        .search_excluding(session.set.matrix.row(7), 7, NEIGHBOURS_K, None)
        .expect("search");
    assert_eq!(selection.neighbours, expected);
    assert_eq!(selection.neighbours.len(), NEIGHBOURS_K);
    for (rank, n) in selection.neighbours.iter().enumerate() {
        let label = format!(
            "neighbour {}: item {} ({:.3})",
            rank + 1,
            n.id,
            n.similarity
        );
        harness.get_by_label(&label);
    }
    // Same-listing marks: one per neighbour that shares the query's listing.
    let query_listing = session.set.items[7].listing.clone();
    let same = selection
        .neighbours
        .iter()
        .filter(|n| session.set.items[n.id].listing == query_listing)
        .count();
    assert_eq!(harness.query_all_by_label("same listing").count(), same);

    // Clicking a neighbour makes it the query.
    let first = selection.neighbours[0];
    harness
        .get_by_label(&format!(
            "neighbour 1: item {} ({:.3})",
            first.id, first.similarity
        ))
        .click();
    harness.run();
    let now = harness
        .state()
        .session()
        .and_then(|s| s.selection.clone())
        .expect("selected");
    assert_eq!(now.item(), Some(first.id));
}

#[test]
fn the_gallery_filter_narrows_the_listings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 12);
    let mut harness = opened_app(&root);
    let first_listing = harness.state().session().expect("open").listings[0]
        .0
        .clone();
    harness.get_by_label("12 of 12 listings");
    harness.get_by_label("Filter");
    let edit = harness.get_by_role(egui::accesskit::Role::TextInput);
    edit.click();
    edit.type_text(&first_listing);
    harness.run();
    harness.get_by_label("1 of 12 listings");
}

#[test]
fn a_bad_dataset_shows_one_error_naming_it_and_no_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no-such-folder");
    let mut harness = Harness::builder().build_ui_state(
        |ui, app: &mut NatviewApp| app.show(ui),
        NatviewApp::empty(default_spec()),
    );
    harness.state_mut().send(Command::Open(missing.clone()));
    for _ in 0..400 {
        harness.step();
        if harness.state().error().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    harness.run();
    let error = harness.state().error().expect("an error").to_string();
    assert!(
        error.contains("no-such-folder: no such file or directory"),
        "{error}"
    );
    harness.get_by_label(&error);
    assert!(harness.state().session().is_none());
    harness.get_by_label("Dismiss").click();
    harness.run();
    assert!(harness.state().error().is_none());
}
