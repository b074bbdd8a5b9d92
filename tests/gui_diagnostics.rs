//! The app's diagnostics under egui_kittest: the Metrics view's health section shows the
//! library's verdict for the open embeddings and runs the augmentation-shortcut probe, and the Diff view compares two encoders, lists
//! the listings that moved and selects an image when its thumbnail is clicked.

// Tests may unwrap and expect: a failed test is the error report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod gui_support;

use egui_kittest::kittest::Queryable;
use gui_support::{opened_app, wait_idle};
use natview::analysis::diff::Change;
use natview::app::{Command, Query};

#[test]
fn metrics_show_the_health_verdict_of_the_open_embeddings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 12);
    let mut harness = opened_app(&root);
    harness.get_by_label("Metrics").click();
    wait_idle(&mut harness);
    let session = harness.state().session().expect("open");
    let listings = natview::analysis::listing_numbers(&session.set.items);
    let expected =
        natview::analysis::health::health(&session.set.matrix, &listings, Default::default())
            .expect("health");
    harness.get_by_label("Representation health");
    harness.get_by_label(&expected.verdict.text);
    harness.get_by_label(&format!("{:.1}", expected.effective_rank));
    // The augmentation-shortcut probe runs when asked, and shows its verdict.
    harness.get_by_label("Augmentation-shortcut probe");
    harness.state_mut().send(Command::ComputeShortcut);
    wait_idle(&mut harness);
    let probe = harness
        .state()
        .results()
        .shortcut
        .clone()
        .unwrap_or_else(|| panic!("no probe: {:?}", harness.state().error()));
    assert_eq!(probe.report.natural.values.len(), 12);
    harness.get_by_label(&probe.report.text);
    harness.get_by_label("two natural views of one listing");
}

/// Compares raw pixels (A) with the open encoder (B), PCA layouts, and waits for the diff;
/// returns B's name.
fn diff_pixels_against_current(
    harness: &mut egui_kittest::Harness<'static, natview::app::NatviewApp>,
) -> String {
    let current = harness
        .state()
        .session()
        .expect("open")
        .set
        .meta
        .encoder
        .workspace_key();
    harness.state_mut().send(Command::ComputeDiff {
        from: "pixels".into(),
        to: current.clone(),
        layout: natview::analysis::projection::ProjectionMethod::Pca,
    });
    wait_idle(harness);
    current
}

#[test]
fn the_diff_view_compares_two_encoders_and_a_thumbnail_selects_its_image() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 12);
    let mut harness = opened_app(&root);
    harness.get_by_label("Diff").click();
    harness.run();
    harness.get_by_label("Compare");
    let current = diff_pixels_against_current(&mut harness);
    let result = harness.state().results().diff.clone().expect("a diff");
    assert_eq!(
        (result.from.as_str(), result.to.as_str()),
        ("pixels", current.as_str())
    );
    let (improved, regressed, unchanged) = result.diff.counts;
    assert_eq!(improved + regressed + unchanged, 12);
    harness.get_by_label(&format!("Improved ({improved})"));
    harness.get_by_label(&format!("Regressed ({regressed})"));
    // Both layouts in one frame: B's fitted onto A's, one point per image, its disparity shown.
    let layouts = result.layouts.as_ref().expect("aligned layouts");
    assert_eq!((layouts.a.len(), layouts.b.points.len()), (60, 60));
    assert!((0.0..=1.0).contains(&layouts.b.disparity));
    harness.get_by_label("Both layouts in one frame");
    harness.get_by_label_contains(&format!(
        "disparity after the fit {:.3}",
        layouts.b.disparity
    ));
    // The regressed listings become the Review view's queue: each pair two views of one listing
    // of those the diff calls regressed.
    let queue = result.regressed.clone().expect("the session's rows");
    let regressed_views: usize = result
        .diff
        .with_change(Change::Regressed)
        .map(|l| l.items.len())
        .sum();
    assert!(queue.pairs.len() <= regressed_views);
    assert_eq!(regressed > 0, !queue.pairs.is_empty());
    harness.state_mut().send(Command::ReviewRegressed);
    wait_idle(&mut harness);
    let shown = harness.state().results().review.clone().expect("a queue");
    assert_eq!(
        shown.queue.kind,
        natview::analysis::review::ReviewKind::Regressed
    );
    assert_eq!(shown.queue.pairs, queue.pairs);
    harness.get_by_label_contains("regressed listing(s)");
    harness.get_by_label("Diff").click();
    harness.run();
    // The first listing of the shown tab is listed with its figures; its first view's
    // thumbnail selects that image.
    let first = result
        .diff
        .with_change(Change::Improved)
        .next()
        .or_else(|| result.diff.with_change(Change::Unchanged).next());
    if let Some(listing) = first {
        if listing.change == Change::Unchanged {
            harness
                .get_by_label(&format!("Unchanged ({unchanged})"))
                .click();
            harness.run();
        }
        let name = &result.listing_names[listing.listing];
        harness.get_by_label(name);
        let item = listing.items[0];
        harness.state_mut().send(Command::Select(item));
        harness.run();
        let selected = harness
            .state()
            .session()
            .and_then(|s| s.selection.as_ref())
            .map(|sel| matches!(sel.query, Query::Item(i) if i == item));
        assert_eq!(selected, Some(true));
    }
}

#[test]
fn the_gallery_puts_the_least_coherent_listing_first_when_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 12);
    let mut harness = opened_app(&root);
    let session = harness.state().session().expect("open");
    let (least, score) = session
        .coherence
        .iter()
        .enumerate()
        .filter_map(|(l, c)| c.map(|c| (l, c)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .expect("listings of several views");
    let caption = format!("{} · {score:.2}", session.listings[least].0);
    // Coherence is on the median listing's scale: some listing sits at or above 1, all
    // below the median are under it.
    assert!(session.coherence.iter().flatten().any(|&c| c >= 0.99));
    harness.get_by_label("least coherent first").click();
    harness.run();
    harness.get_by_label(&caption);
}

#[test]
fn the_projection_colours_points_by_the_neighbourhood_the_layout_keeps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 12);
    let mut harness = opened_app(&root);
    harness.get_by_label("Projection").click();
    wait_idle(&mut harness);
    harness.get_by_label("colour by").click();
    harness.run();
    harness.get_by_label("neighbourhood kept").click();
    wait_idle(&mut harness);
    // The job ran: one share per image, each a count of the 10 neighbours over 10, and the
    // same as the library computes for this layout.
    let kept = harness
        .state()
        .layout_faithfulness()
        .unwrap_or_else(|| panic!("measured: {:?}", harness.state().error()))
        .to_vec();
    let session = harness.state().session().expect("open");
    assert_eq!(kept.len(), session.set.items.len());
    assert!(kept
        .iter()
        .all(|&k| (0.0..=1.0).contains(&k) && (k * 10.0).fract() < 1e-4));
    let projection = harness
        .state()
        .results()
        .projection
        .as_ref()
        .expect("layout");
    let graph = natview::analysis::knn::knn_graph(
        &session.set.matrix,
        10,
        &mut natview::analysis::layout::Unobserved,
    )
    .expect("graph");
    let expected = natview::analysis::quality::point_faithfulness(
        &graph,
        &projection.points,
        &projection.grid,
    )
    .expect("faithfulness");
    assert_eq!(kept, expected);
}

#[test]
fn file_export_report_writes_the_html_report_with_the_last_diff() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 12);
    let mut harness = opened_app(&root);
    diff_pixels_against_current(&mut harness);
    let out = dir.path().join("shared/report.html");
    harness.state_mut().send(Command::ExportReport(out.clone()));
    wait_idle(&mut harness);
    assert_eq!(harness.state().error(), None);
    let html = std::fs::read_to_string(&out).expect("the report");
    for section in [
        "Listing retrieval",
        "Representation health",
        "What changed: pixels →",
    ] {
        assert!(html.contains(section), "no `{section}`");
    }
}
