//! The desktop app under egui_kittest, on a small real dataset opened by the real worker job.

// Tests may unwrap and expect: a failed test is the error report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod gui_support;

use gui_support::{opened_app, step_until, test_spec, wait_idle};

use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use natview::app::{Command, NatviewApp, Query, NEIGHBOURS_K};
use natview::labels::LabelStore;

#[test]
fn clicking_an_image_lists_its_neighbours_with_the_right_ids() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 12);
    let mut harness = opened_app(&root);
    let session = harness.state().session().expect("open");
    assert_eq!(session.set.items.len(), 60);
    assert_eq!(session.listings.len(), 12);
    // Thumbnails come from the workspace's thumbnail file, written while embedding.
    let natview::thumbs::ThumbnailSource::Store(store) = &session.thumbnails else {
        panic!("thumbnails should come from the thumbnail file");
    };
    assert_eq!(store.len(), 60);
    assert!(
        (0..60).all(|i| store.get(i).is_some()),
        "every item has a thumbnail"
    );
    harness
        .get_by_label("Click any image to see its nearest neighbours, or drop an image file here.");

    harness.get_by_label("item 7").click();
    harness.run();
    let session = harness.state().session().expect("open");
    let selection = session.selection.clone().expect("an item is selected");
    assert_eq!(selection.item(), Some(7));
    let expected = session
        .index
        .as_ref()
        .expect("embedded")
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
    let edit = harness.get_by_role_and_label(egui::accesskit::Role::TextInput, "Filter");
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
        NatviewApp::empty(test_spec()),
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

#[test]
fn the_quadrant_chart_shows_the_chosen_number_of_blocks_and_exports_a_png() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 12);
    let mut harness = opened_app(&root);
    harness.get_by_label("Quadrant chart").click();
    harness.run();
    // The chart computed on opening: 12 eligible listings (fewer than the default 16).
    harness.get_by_label("12 listings × 4 views = 12 blocks");

    // Choose 6 listings × 3 views with the controls, then Draw.
    let spin: Vec<_> = harness
        .query_all_by_role(egui::accesskit::Role::SpinButton)
        .collect();
    assert_eq!(spin.len(), 3, "listings, views and seed controls");
    spin[0].set_value_accesskit(6.0);
    harness.run();
    let spin: Vec<_> = harness
        .query_all_by_role(egui::accesskit::Role::SpinButton)
        .collect();
    spin[1].set_value_accesskit(3.0);
    harness.run();
    harness.get_by_label("Draw").click();
    wait_idle(&mut harness);
    harness.get_by_label("6 listings × 3 views = 6 blocks");
    harness.get_by_label("quadrant chart: 6 blocks of 3 views");
    let result = harness
        .state()
        .results()
        .quadrant
        .as_ref()
        .expect("a chart");
    assert_eq!(result.chart.listings.len(), 6);
    assert_eq!(result.chart.size(), 18);
    assert_eq!(result.image.size, [18, 18]);

    harness.get_by_label("Export PNG").click();
    wait_idle(&mut harness);
    let notice = harness.state().notice().expect("export notice").to_string();
    let path = notice
        .split("→ ")
        .nth(1)
        .map(std::path::PathBuf::from)
        .expect("the notice names the file");
    let png = image::open(&path).expect("the export is a PNG");
    assert!(png.width() > 300 && png.height() > 300, "{path:?}");
    assert!(path.starts_with(root.join(".natview")), "{path:?}");
}

#[test]
fn a_dataset_of_three_view_listings_gets_a_three_view_chart_and_no_error() {
    // Marketplace listings often have two or three photos: the chart must not ask for four.
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice_views(dir.path(), 6, 3);
    let mut harness = opened_app(&root);
    assert_eq!(harness.state().session().expect("open").set.items.len(), 18);
    harness.get_by_label("Quadrant chart").click();
    harness.run();
    assert_eq!(harness.state().error(), None);
    harness.get_by_label("6 listings × 3 views = 6 blocks");
    harness.get_by_label("quadrant chart: 6 blocks of 3 views");
    harness.get_by_label(
        "3 views per listing, chosen from the data (the median listing has 3 views; at most 4 \
         unless asked)",
    );
    let chart = &harness
        .state()
        .results()
        .quadrant
        .as_ref()
        .expect("a chart")
        .chart;
    assert_eq!(
        (chart.listings.len(), chart.views, chart.size()),
        (6, 3, 18)
    );
}

#[test]
fn a_dataset_of_single_images_explains_why_it_has_no_chart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice_views(dir.path(), 4, 1);
    let mut harness = opened_app(&root);
    harness.get_by_label("Quadrant chart").click();
    harness.run();
    assert_eq!(harness.state().error(), None);
    assert!(harness.state().results().quadrant.is_none());
    let why = harness
        .state()
        .session()
        .and_then(|s| s.quadrant_unavailable.clone())
        .expect("an explanation");
    assert!(why.contains("every listing has a single image"), "{why}");
    harness.get_by_label(&why);
    assert!(harness.query_by_label("Draw").is_none());
}

#[test]
fn a_box_over_the_whole_projection_selects_everything_into_the_gallery() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 12);
    let mut harness = opened_app(&root);
    harness.get_by_label("Projection").click();
    harness.run_steps(2);
    let projection = harness
        .state()
        .results()
        .projection
        .as_ref()
        .expect("PCA computed on opening");
    assert_eq!(projection.projection.points.len(), 60);
    assert!(projection.csv_path.as_ref().is_some_and(|p| p.is_file()));
    let plot = harness.get_by_label("projection of 60 points").rect();

    harness.get_by_label("box select").click();
    harness.run_steps(2);
    let (from, to) = (
        plot.min + egui::vec2(2.0, 2.0),
        plot.max - egui::vec2(2.0, 2.0),
    );
    harness.hover_at(from);
    harness.drag_at(from);
    harness.step();
    for t in [0.25f32, 0.5, 0.75, 1.0] {
        harness.hover_at(from + (to - from) * t);
        harness.step();
    }
    harness.drop_at(to);
    // Workers (the raster, the selection) wake the window: step rather than run to a rest.
    harness.run_steps(2);
    // The selection is found on a worker.
    step_until(&mut harness, "the box selection", |app| {
        app.gallery_subset().is_some()
    });
    let subset = harness
        .state()
        .gallery_subset()
        .expect("a selection")
        .to_vec();
    assert_eq!(subset, (0..60).collect::<Vec<_>>());
    harness.get_by_label("60 selected");

    harness.get_by_label("Show in gallery").click();
    harness.run();
    harness.get_by_label("Showing the 60 image(s) selected in the projection");
    harness.get_by_label("Show all").click();
    harness.run();
    assert!(harness.state().gallery_subset().is_none());
}

#[test]
fn metrics_show_the_model_beside_raw_pixels() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 12);
    let mut harness = opened_app(&root);
    harness.get_by_label("Metrics").click();
    wait_idle(&mut harness);
    let metrics = harness
        .state()
        .results()
        .metrics
        .as_ref()
        .expect("metrics computed when the view opened");
    let session = harness.state().session().expect("open");
    let expected = natview::pipeline::evaluate(&session.set).expect("eval");
    let current = metrics.current().expect("the current model");
    assert_eq!(
        current.retrieval.recall_at_1,
        expected.retrieval.recall_at_1
    );
    let (_, pixels) = metrics.models.last().expect("pixel baseline");
    assert!(metrics.models.len() >= 2);
    assert!(pixels.model.contains("pixels"), "{}", pixels.model);
    let (model_r1, pixel_r1) = (
        format!("{:.3}", current.retrieval.recall_at_1),
        format!("{:.3}", pixels.retrieval.recall_at_1),
    );
    harness.get_by_label("recall@1");
    assert!(harness.query_all_by_label(&model_r1).count() >= 1);
    assert!(harness.query_all_by_label(&pixel_r1).count() >= 1);
}

#[test]
fn tags_by_key_press_and_pair_verdicts_are_in_the_store_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 12);
    let mut harness = opened_app(&root);
    harness.get_by_label("item 7").click();
    harness.run();
    harness.key_press(egui::Key::Num3);
    harness.run();
    let session = harness.state().session().expect("open");
    let store_path = session.workspace.labels_path();
    let key = session.item_key(7).to_string();
    let tag = session.labels.as_ref().expect("store").tag_set()[2].clone();
    let neighbour = session.selection.as_ref().expect("selected").neighbours[0].id;
    let neighbour_key = session.item_key(neighbour).to_string();
    // Read back through a second connection: the tag is on disk, not only in memory.
    assert!(LabelStore::open(&store_path)
        .expect("store")
        .has_tag(&key, &tag));

    // "same" beside the first neighbour records a verdict on the pair.
    harness
        .query_all_by_label("same")
        .next()
        .expect("verdict buttons")
        .click();
    harness.run();
    assert_eq!(
        LabelStore::open(&store_path)
            .expect("store")
            .verdict_of(&key, &neighbour_key),
        Some(natview::labels::Verdict::Same)
    );

    // Pressing the key again removes the tag.
    harness.key_press(egui::Key::Num3);
    harness.run();
    assert!(!LabelStore::open(&store_path)
        .expect("store")
        .has_tag(&key, &tag));

    harness.get_by_label("Labels").click();
    harness.run();
    harness.get_by_label("Export CSV").click();
    harness.run();
    let csv_path = root.join(".natview/labels.csv");
    let text = std::fs::read_to_string(&csv_path).expect("export written");
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.lines().nth(1).is_some_and(|l| l.starts_with("pair,")));
}

#[test]
fn an_external_image_is_embedded_and_queried() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 12);
    let mut harness = opened_app(&root);
    // A view of a listing the slice does not have.
    let mut listings: Vec<_> = std::fs::read_dir(common::demo_images())
        .expect("demo")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    listings.sort();
    let outside = std::fs::read_dir(&listings[20])
        .expect("listing")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .min()
        .expect("a view");
    harness
        .state_mut()
        .send(Command::QueryImage(outside.clone()));
    harness.step();
    wait_idle(&mut harness);
    let session = harness.state().session().expect("open");
    let selection = session.selection.clone().expect("a query");
    assert!(matches!(&selection.query, Query::Image { path, .. } if *path == outside));
    let vector =
        natview::pipeline::embed_query_image(&outside, &session.set.meta, true).expect("embed");
    let expected = session
        .index
        .as_ref()
        .expect("embedded")
        .search(&vector, NEIGHBOURS_K, None)
        .expect("search");
    assert_eq!(selection.neighbours, expected);
    harness.get_by_label("query image");
    harness.get_by_label("Image from outside the dataset");
}

#[test]
fn a_fine_tune_started_in_the_app_can_be_cancelled_keeping_its_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 12);
    let mut harness = opened_app(&root);
    harness.get_by_label("Fine-tune").click();
    harness.run();
    harness.get_by_label("Start fine-tune").click();
    step_until(&mut harness, "two training steps", |app| {
        app.finetune_live().is_some_and(|live| live.step >= 2)
    });
    let live = harness.state().finetune_live().expect("running");
    assert_eq!(live.total, 300, "the form's default steps");
    assert!(live.losses.len() >= 2 && live.losses.iter().all(|l| l.is_finite()));
    harness.get_by_label("Cancel fine-tune").click();
    step_until(&mut harness, "the fine-tune stops", |app| {
        app.finetune_result().is_some()
    });
    wait_idle(&mut harness);
    let outcome = harness.state().finetune_result().expect("ended");
    assert!(
        outcome.trained.is_none(),
        "cancelled: no fine-tuned encoder"
    );
    let done = outcome.report.steps_done;
    assert!((2..300).contains(&done), "stopped at step {done}");
    assert!(
        outcome.checkpoint.is_file(),
        "checkpoint kept: {}",
        outcome.checkpoint.display()
    );
    let meta: natview::train::CheckpointMeta =
        natview::train::checkpoint::read_meta(&outcome.checkpoint).expect("readable checkpoint");
    assert_eq!(meta.step, done);
    // The encoder in use did not change, and the form now offers to resume.
    assert_eq!(*harness.state().encoder(), test_spec());
    assert!(harness
        .query_by_label_contains("the checkpoint is kept")
        .is_some());
    harness.get_by_label("continue the saved checkpoint");
}

#[test]
fn a_finished_fine_tune_switches_encoders_shows_before_after_and_flips_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 12);
    let mut harness = opened_app(&root);
    let settings = natview::app::FinetuneSettings {
        steps: 8,
        batch_size: 6,
        ..natview::app::FinetuneSettings::starting_from(test_spec())
    };
    harness
        .state_mut()
        .send(Command::StartFinetune(Box::new(settings)));
    step_until(&mut harness, "the fine-tune ends", |app| {
        app.finetune_result().is_some()
    });
    wait_idle(&mut harness);
    let outcome = harness.state().finetune_result().expect("ended").clone();
    assert!(outcome.report.after.is_some(), "finished: an after column");
    assert_eq!(outcome.report.steps_done, 8);
    let trained = outcome.trained.clone().expect("a fine-tuned encoder");
    let weights = trained.weights.clone().expect("weights file");
    assert!(weights.is_file(), "{}", weights.display());
    // The app switched to it, and the model picker lists it.
    assert_eq!(*harness.state().encoder(), trained);
    let session = harness.state().session().expect("open");
    assert_eq!(session.set.meta.encoder, trained);
    assert!(session.encoders.iter().any(|e| e.spec == trained));

    // Metrics: the held-out before/after table and both encoders side by side.
    harness.get_by_label("Metrics").click();
    wait_idle(&mut harness);
    assert!(harness
        .query_by_label_contains("Fine-tune of compact: 8 steps")
        .is_some());
    let metrics = harness.state().results().metrics.as_ref().expect("metrics");
    let names: Vec<&str> = metrics.models.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names[0], trained.workspace_key(), "{names:?}");
    assert!(names.contains(&"compact"), "{names:?}");

    // Flip back: the projection follows the encoder.
    harness
        .get_by_label(&format!("⇄ {}", test_spec().workspace_key()))
        .click();
    wait_idle(&mut harness);
    assert_eq!(*harness.state().encoder(), test_spec());
    let projection = harness.state().results().projection.as_ref().expect("PCA");
    assert!(projection
        .csv_path
        .as_ref()
        .expect("saved")
        .to_string_lossy()
        .ends_with(&format!(
            "projection-pca.{}.csv",
            test_spec().workspace_key()
        )));
}

#[test]
fn opening_hands_over_a_preview_with_every_item_and_thumbnails_from_the_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 5);
    let slot = natview::app::PreviewSlot::default();
    let session = natview::app::open_dataset(
        &root,
        Some(test_spec()),
        &natview::pipeline::RunSettings::default(),
        Some(&slot),
        &natview::jobs::NoProgress,
        &natview::jobs::CancelFlag::new(),
    )
    .expect("opens");
    assert!(session.is_embedded());
    let preview = slot
        .lock()
        .expect("slot")
        .take()
        .expect("a preview was handed over");
    assert!(!preview.is_embedded());
    // The window names the preview's encoder while the dataset embeds.
    assert_eq!(preview.set.meta.encoder, test_spec());
    assert_eq!(preview.set.items.len(), 25);
    assert_eq!(preview.listings.len(), 5);
    let natview::thumbs::ThumbnailSource::Files(paths) = &preview.thumbnails else {
        panic!("a preview decodes the image files");
    };
    assert_eq!(paths.len(), 25);
    let thumbnail = preview.thumbnails.load(7).expect("decodes");
    assert_eq!(thumbnail.dimensions(), (64, 64));
    // Reopened, the preview reads the thumbnail file written the first time.
    let again = natview::app::PreviewSlot::default();
    natview::app::open_dataset(
        &root,
        Some(test_spec()),
        &natview::pipeline::RunSettings::default(),
        Some(&again),
        &natview::jobs::NoProgress,
        &natview::jobs::CancelFlag::new(),
    )
    .expect("reopens");
    let reopened = again.lock().expect("slot").take().expect("a preview");
    assert!(
        matches!(&reopened.thumbnails, natview::thumbs::ThumbnailSource::Store(s) if s.len() == 25),
        "the reopened preview uses the thumbnail file"
    );
    // Selecting in a preview works (no neighbours until the embeddings exist).
    let mut preview = preview;
    preview.select(3).expect("selects");
    assert!(preview
        .selection
        .as_ref()
        .is_some_and(|s| s.neighbours.is_empty()));
}

#[test]
fn the_projection_draws_every_point_with_thumbnails_on_them_and_a_click_on_one_queries_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 12);
    let mut harness = opened_app(&root);
    harness.get_by_label("Projection").click();
    harness.run_steps(2);
    // The raster and the thumbnails arrive from workers: step until both are on screen.
    step_until(
        &mut harness,
        "the projection's raster and thumbnails",
        |app| {
            app.scatter_canvas().in_view() == Some(60)
                && !app.scatter_canvas().drawn_thumbnails().is_empty()
                && !app.is_loading_thumbnails()
        },
    );
    let drawn = harness.state().scatter_canvas().drawn_thumbnails().to_vec();
    assert!(
        drawn.len() >= 10,
        "one thumbnail per screen cell with points: {}",
        drawn.len()
    );
    let ids: std::collections::HashSet<usize> = drawn.iter().map(|(_, id)| *id).collect();
    assert_eq!(ids.len(), drawn.len(), "each item at most once");
    assert!(
        harness.state().thumbnails_in_atlas() >= drawn.len(),
        "their images are in the atlas"
    );

    // A thumbnail whose centre no later-drawn (upper) thumbnail covers: the click goes to the
    // image on top.
    let (rect, id) = (0..drawn.len())
        .map(|i| (i, drawn[i]))
        .find(|&(i, (rect, _))| {
            drawn[i + 1..]
                .iter()
                .all(|(above, _)| !above.expand(2.0).contains(rect.center()))
        })
        .map(|(_, d)| d)
        .expect("an uncovered thumbnail");
    harness.hover_at(rect.center());
    harness.run_steps(2);
    harness.get_by_label("projection of 60 points");
    // Press and release on the same spot: a click.
    harness.drag_at(rect.center());
    harness.step();
    harness.drop_at(rect.center());
    harness.run_steps(3);
    let selected = harness
        .state()
        .session()
        .and_then(|s| s.selection.as_ref())
        .and_then(|s| s.item());
    assert_eq!(
        selected,
        Some(id),
        "the thumbnail under the click is queried"
    );
}
