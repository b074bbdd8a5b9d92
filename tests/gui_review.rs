//! Labels in the app: a tag goes only to the image shown as selected, the Review view's
//! near-duplicate queue is judged by keys and undone, and bulk tags confirm their count.

// Tests may unwrap and expect: a failed test is the error report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod gui_support;

use egui_kittest::kittest::Queryable;
use gui_support::{opened_app, wait_idle};
use natview::app::{Command, ReviewRequest};
use natview::encoder::{EncoderSpec, ModelKind};
use natview::labels::{LabelStore, Verdict};

#[test]
fn a_label_only_goes_to_the_image_shown_as_selected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 6);
    let store_path = root.join(".natview/labels.sqlite");
    {
        let mut harness = opened_app(&root);
        harness.get_by_label("item 7").click();
        harness.run();
        harness.key_press(egui::Key::Num3);
        harness.run();
    }
    let records = || {
        LabelStore::open(&store_path)
            .expect("store")
            .records()
            .expect("records")
    };
    assert_eq!(records().len(), 1, "the tag made before the restart");

    // After a restart nothing is selected: the panel says so and no tag key writes anything.
    let mut harness = opened_app(&root);
    assert!(harness
        .state()
        .session()
        .is_some_and(|s| s.selection.is_none()));
    assert!(harness.query_by_label_contains("Click any image").is_some());
    for key in [
        egui::Key::Num1,
        egui::Key::Num2,
        egui::Key::Num3,
        egui::Key::Num4,
        egui::Key::Num9,
    ] {
        harness.key_press(key);
        harness.run();
    }
    assert_eq!(
        records().len(),
        1,
        "a key with nothing selected tagged something"
    );

    // An image selected while the dataset is (re-)embedded stays the one shown and tagged.
    harness.get_by_label("item 4").click();
    harness.run();
    harness
        .state_mut()
        .send(Command::UseEncoder(EncoderSpec::untrained(
            ModelKind::Pixels,
        )));
    wait_idle(&mut harness);
    let session = harness.state().session().expect("open");
    assert_eq!(session.set.meta.encoder.model, ModelKind::Pixels);
    let selection = session.selection.as_ref().expect("still selected");
    assert_eq!(selection.item(), Some(4));
    assert!(
        !selection.neighbours.is_empty(),
        "its neighbours under the new encoder"
    );
    let key = session.item_key(4).to_string();
    let tag = session.labels.as_ref().expect("store").tag_set()[1].clone();
    harness.key_press(egui::Key::Num2);
    harness.run();
    assert!(LabelStore::open(&store_path)
        .expect("store")
        .has_tag(&key, &tag));
}

#[test]
fn near_duplicates_are_judged_by_key_undone_and_tagged_as_a_cluster() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 8);
    let reupload = common::plant_reupload(&root);
    let mut harness = opened_app(&root);
    let store_path = harness
        .state()
        .session()
        .expect("open")
        .workspace
        .labels_path();
    harness.get_by_label("Review").click();
    wait_idle(&mut harness);
    // The default queue (cosine ≥ 0.95) was built when the view opened; narrow it to exact
    // copies so the planted pair is the only one.
    let mut request = ReviewRequest::default();
    request.options.threshold = 0.999;
    harness.state_mut().send(Command::ComputeReview(request));
    wait_idle(&mut harness);
    let result = harness.state().results().review.clone().expect("a queue");
    assert_eq!(result.queue.clusters.len(), 1, "{}", result.queue.summary);
    assert_eq!(result.queue.pairs.len(), 1);
    let pair = result.queue.pairs[0].clone();
    let session = harness.state().session().expect("open");
    let (a, b) = (
        session.item_key(pair.a).to_string(),
        session.item_key(pair.b).to_string(),
    );
    let mut names = [a.clone(), b.clone()];
    names.sort();
    assert!(names.contains(&reupload), "{names:?}");
    assert!(pair.similarity > 0.999);
    assert!(harness.query_by_label_contains("0 of 1 judged").is_some());

    // U marks the pair a near-duplicate (with the similarity it had) and moves on.
    harness.key_press(egui::Key::U);
    harness.run();
    let store = LabelStore::open(&store_path).expect("store");
    assert_eq!(store.verdict_of(&a, &b), Some(Verdict::NearDuplicate));
    let similarity = store
        .verdict_similarity(&a, &b)
        .expect("read")
        .expect("recorded");
    assert!(similarity > 0.999, "{similarity}");
    assert!(harness.query_by_label_contains("1 of 1 judged").is_some());
    assert!(harness
        .query_by_label_contains("End of the queue")
        .is_some());

    // Ctrl+Z takes the verdict back and returns to the pair.
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    harness.run();
    assert_eq!(
        LabelStore::open(&store_path)
            .expect("store")
            .verdict_of(&a, &b),
        None
    );
    assert!(harness.query_by_label_contains("Pair 1 of 1").is_some());

    // The whole cluster gets a tag in one action, after a confirmation naming the count.
    harness.get_by_label("Tag all 2 images…").click();
    harness.run();
    assert!(harness.query_by_label_contains("Tag 2 images as").is_some());
    harness.get_by_label("Yes, tag 2").click();
    harness.run();
    let tag = harness
        .state()
        .session()
        .and_then(|s| s.labels.as_ref())
        .expect("store")
        .tag_set()[2]
        .clone();
    let store = LabelStore::open(&store_path).expect("store");
    assert!(store.has_tag(&a, &tag) && store.has_tag(&b, &tag));
    assert!(harness
        .state()
        .notice()
        .is_some_and(|n| n.contains("on 2 images")));
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    harness.run();
    let store = LabelStore::open(&store_path).expect("store");
    assert!(!store.has_tag(&a, &tag) && !store.has_tag(&b, &tag));
}

#[test]
fn the_gallery_tags_what_its_filter_shows_after_naming_the_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 6);
    let mut harness = opened_app(&root);
    let session = harness.state().session().expect("open");
    let (name, ids) = session.listings[2].clone();
    let store_path = session.workspace.labels_path();
    harness.state_mut().set_gallery_filter(&name);
    harness.run();
    assert_eq!(harness.state().gallery_filter_result().0, 1);
    harness.get_by_label("Tag the shown images…").click();
    harness.run();
    let prompt = format!("Yes, tag {}", ids.len());
    harness.get_by_label(&prompt).click();
    harness.run();
    let session = harness.state().session().expect("open");
    let tag = session.labels.as_ref().expect("store").tag_set()[0].clone();
    let store = LabelStore::open(&store_path).expect("store");
    for (id, key) in session.item_keys.iter().enumerate() {
        assert_eq!(store.has_tag(key, &tag), ids.contains(&id), "item {id}");
    }
}

#[test]
fn metrics_show_low_shot_probes_with_the_analysts_tags_as_classes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 12);
    let mut harness = opened_app(&root);
    // A folder dataset has no label column: the probes take the tags. Two classes, by listing.
    let session = harness.state().session().expect("open");
    let tags = session.labels.as_ref().expect("store").tag_set()[..2].to_vec();
    let halves: Vec<Vec<usize>> = [0..6, 6..12]
        .into_iter()
        .map(|range| {
            session.listings[range]
                .iter()
                .flat_map(|(_, ids)| ids.iter().copied())
                .collect()
        })
        .collect();
    for (items, tag) in halves.into_iter().zip(&tags) {
        harness.state_mut().send(Command::TagMany {
            items,
            tag: tag.clone(),
            add: true,
        });
        harness.run();
    }
    harness.get_by_label("Metrics").click();
    wait_idle(&mut harness);
    let result = harness.state().results().metrics.as_ref().expect("metrics");
    let probes = result.probes.as_ref().expect("probes");
    let report = &probes[0].1;
    assert_eq!(report.classes, tags);
    assert_eq!(report.rows.len(), 3);
    assert!(report.rows.iter().all(|r| (0.0..=1.0).contains(&r.knn)));
    harness.get_by_label("Low-shot probes");
    assert!(harness.query_by_label_contains("analysts' tags").is_some());
    assert!(harness.query_by_label("kNN 100%").is_some());
    assert!(harness.query_by_label("linear 1%").is_some());
}
