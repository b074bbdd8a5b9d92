//! The real pipeline on real demo images: load → embed → index → neighbours, metrics, heatmap,
//! with bad inputs mixed in, and re-runs that must reuse or rebuild artefacts correctly.

// Tests may unwrap and expect: a failed test is the error report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use natview::analysis::{quadrant_chart, QuadrantParams};
use natview::dataset::{load_dataset, Dataset};
use natview::encoder::{EncoderSpec, ModelKind};
use natview::index::{exact_neighbours, HnswParams, NeighbourIndex};
use natview::jobs::{CancelFlag, NoProgress};
use natview::pipeline::{
    embed_dataset, ensure_index, evaluate, EmbedReport, EmbedRequest, EmbeddingSet, IndexReport,
    PipelineError,
};
use natview::report::{diverging_colour, render_quadrant_chart, HeatmapOptions};
use natview::workspace::{EmbeddingStore, Workspace};

fn request(model: ModelKind) -> EmbedRequest {
    EmbedRequest {
        spec: EncoderSpec::untrained(model),
        batch_size: Some(16),
        force_cpu: true,
        checkpoint_images: None,
        decode: None,
    }
}

/// Embeds the first `listings` demo listings with `model` in a fresh temporary folder.
fn embed_demo_slice(listings: usize, model: ModelKind) -> (tempfile::TempDir, EmbeddingSet) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), listings);
    let dataset = load_dataset(&root).expect("loads");
    let workspace = Workspace::for_dataset(&dataset, None);
    let (set, _) = embed_dataset(
        &dataset,
        &workspace,
        &request(model),
        &NoProgress,
        &CancelFlag::new(),
    )
    .expect("embeds");
    (dir, set)
}

/// Runs the embedding job without progress or cancellation.
fn embed(
    dataset: &Dataset,
    workspace: &Workspace,
    req: &EmbedRequest,
) -> (EmbeddingSet, EmbedReport) {
    embed_dataset(dataset, workspace, req, &NoProgress, &CancelFlag::new()).expect("embeds")
}

/// Runs the index job with default parameters, without progress or cancellation.
fn index(workspace: &Workspace, set: &EmbeddingSet) -> (NeighbourIndex, IndexReport) {
    ensure_index(
        workspace,
        set,
        HnswParams::default(),
        &NoProgress,
        &CancelFlag::new(),
    )
    .expect("index")
}

#[test]
fn bad_files_are_skipped_with_reasons_and_the_rest_is_embedded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 8);
    let [truncated, empty, fake, no_images] = common::add_bad_files(&root);
    let dataset = load_dataset(&root).expect("loads");
    let workspace = Workspace::for_dataset(&dataset, None);
    let (set, report) = embed_dataset(
        &dataset,
        &workspace,
        &request(ModelKind::Compact),
        &NoProgress,
        &CancelFlag::new(),
    )
    .expect("embeds");
    assert_eq!(set.items.len(), 40, "8 listings × 5 good views");
    assert_eq!(set.matrix.rows, 40);
    let reasons: Vec<String> = report.skipped.iter().map(|s| s.to_string()).collect();
    assert_eq!(reasons.len(), 5, "{reasons:#?}");
    let reason_of = |p: &std::path::Path| {
        reasons
            .iter()
            .find(|r| r.starts_with(&p.display().to_string()))
            .cloned()
            .unwrap_or_else(|| panic!("{} not reported in {reasons:#?}", p.display()))
    };
    assert!(reason_of(&truncated).contains("not a readable image"));
    assert!(reason_of(&empty).contains("empty file (0 bytes)"));
    assert!(reason_of(&fake).contains("not a readable image"));
    assert!(reason_of(&no_images.join("README.txt")).contains("unsupported file type .txt"));
    assert!(reasons.contains(&format!(
        "{}: folder contains no readable images",
        no_images.display()
    )));
    // The skipped list is kept in the workspace for later commands.
    assert_eq!(workspace.read_skipped().len(), 5);
}

#[cfg(unix)]
#[test]
fn an_svg_is_embedded_without_files_outside_its_folder_and_the_refusal_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 2);
    let listing = common::first_listing(&root);
    let svg = listing.join("drawing.svg");
    std::fs::write(
        &svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="8" height="8"><rect width="8" height="8" fill="teal"/><image width="8" height="8" xlink:href="/dev/zero"/></svg>"#,
    )
    .expect("write");
    let dataset = load_dataset(&root).expect("loads");
    let workspace = Workspace::for_dataset(&dataset, None);
    let (set, report) = embed(&dataset, &workspace, &request(ModelKind::Compact));
    assert_eq!(set.items.len(), 11, "2 listings × 5 views and the SVG");
    let reasons: Vec<String> = report.skipped.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        reasons,
        vec![format!(
            "{}: embedded image `/dev/zero` left out (outside the SVG's folder {}); the SVG was drawn without it",
            svg.display(),
            listing.canonicalize().expect("canonical").display()
        )]
    );
    assert_eq!(workspace.read_skipped().len(), 1);
}

#[test]
fn artefacts_are_reused_when_fresh_and_rebuilt_when_stale() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 6);
    let dataset = load_dataset(&root).expect("loads");
    let workspace = Workspace::for_dataset(&dataset, None);
    let req = request(ModelKind::Compact);
    let (first, r1) = embed(&dataset, &workspace, &req);
    assert!(!r1.reused);
    let (second, r2) = embed(&dataset, &workspace, &req);
    assert!(r2.reused, "same dataset and encoder: reused");
    assert_eq!(
        first.matrix, second.matrix,
        "reloaded embeddings are bit-identical"
    );

    // Index: built once, then reloaded; answers identical.
    let (built, i1) = index(&workspace, &first);
    let (reloaded, i2) = index(&workspace, &first);
    assert!(!i1.reused && i2.reused);
    for q in 0..first.matrix.rows {
        let a = built.search(first.matrix.row(q), 5, None).expect("search");
        let b = reloaded
            .search(first.matrix.row(q), 5, None)
            .expect("search");
        assert_eq!(a, b);
    }

    // Another seed is another encoder: the embeddings are stale and recomputed.
    let mut other = req.clone();
    other.spec.seed = 1;
    let (third, r3) = embed(&dataset, &workspace, &other);
    assert!(!r3.reused);
    assert!(r3.stale_reason.is_some());
    assert_ne!(third.matrix, first.matrix);
    // …and the index of the old embeddings is not used for the new ones.
    let (_, i3) = index(&workspace, &third);
    assert!(!i3.reused);

    // A changed dataset (one more view) makes the embeddings stale too.
    let extra = root.join("extra-listing");
    std::fs::create_dir_all(&extra).expect("mkdir");
    let some_view = std::fs::read_dir(common::demo_images().join("airplane"))
        .expect("demo")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .min()
        .expect("view");
    std::fs::copy(&some_view, extra.join("a.png")).expect("copy");
    let dataset2 = load_dataset(&root).expect("loads");
    let (fourth, r4) = embed(&dataset2, &workspace, &other);
    assert!(!r4.reused);
    assert_eq!(fourth.items.len(), first.items.len() + 1);

    // The saved file holds exactly what was returned.
    let (on_disk, meta) =
        EmbeddingStore::load(&workspace.embeddings_path(&other.spec.workspace_key()))
            .expect("load");
    assert_eq!(on_disk, fourth.matrix);
    assert_eq!(
        meta.expect("metadata").dataset_fingerprint,
        dataset2.fingerprint()
    );
}

#[test]
fn hnsw_neighbours_agree_with_exact_search_on_real_embeddings() {
    let (_dir, set) = embed_demo_slice(60, ModelKind::Compact);
    let index = NeighbourIndex::build(&set.matrix, HnswParams::default()).expect("index");
    let (mut agree, mut total) = (0usize, 0usize);
    for q in 0..set.matrix.rows {
        let exact: Vec<usize> = exact_neighbours(&set.matrix, set.matrix.row(q), 10, Some(q))
            .expect("exact")
            .iter()
            .map(|n| n.id)
            .collect();
        let approx = index
            .search_excluding(set.matrix.row(q), q, 10, Some(200))
            .expect("search");
        assert!(approx
            .windows(2)
            .all(|w| w[0].similarity >= w[1].similarity - 1e-6));
        total += exact.len();
        agree += approx.iter().filter(|n| exact.contains(&n.id)).count();
    }
    let recall = agree as f64 / total as f64;
    assert!(recall >= 0.99, "HNSW recall@10 vs exact: {recall}");
}

#[test]
fn evaluation_and_heatmap_on_real_images() {
    let (_dir, set) = embed_demo_slice(20, ModelKind::Pixels);
    let report = evaluate(&set).expect("eval");
    assert_eq!(report.images, 100);
    assert_eq!(report.listings, 20);
    assert_eq!(report.retrieval.queries, 100);
    assert_eq!(report.pairs.intra_pairs, 20 * 10);
    assert_eq!(report.pairs.inter_pairs, 100 * 99 / 2 - 200);
    let r = report.retrieval;
    assert!(r.recall_at_1 <= r.recall_at_5 && r.recall_at_5 <= r.recall_at_10);
    assert!((0.0..=1.0).contains(&report.pairs.auc));

    let params = QuadrantParams {
        listings: 6,
        views: Some(3),
        ..Default::default()
    };
    let chart = quadrant_chart(&set.matrix, &set.items, &params).expect("chart");
    assert_eq!(chart.listings.len(), 6);
    assert_eq!(chart.size(), 18);
    let options = HeatmapOptions {
        range: Some((-0.2, 1.0)),
        title: "test".into(),
        note: String::new(),
    };
    let (image, layout) = render_quadrant_chart(&chart, &options);
    assert_eq!(layout.cells, 18);
    assert_eq!(layout.cell_px, 28);
    assert!(layout.left_px + 18 * layout.cell_px < image.width());
    assert_eq!(image.height(), layout.top_px + 18 * layout.cell_px + 96);
    for (i, j) in [(0, 0), (0, 1), (0, 5), (7, 16), (17, 2)] {
        let (x, y) = layout.cell_centre(i, j);
        let t = (chart.at(i, j) + 0.2) / 1.2;
        assert_eq!(
            image.get_pixel(x, y).0,
            diverging_colour(t),
            "cell ({i}, {j})"
        );
    }
}

#[test]
fn cancelled_jobs_stop_and_leave_no_artefact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 4);
    let dataset = load_dataset(&root).expect("loads");
    let workspace = Workspace::for_dataset(&dataset, None);
    let cancelled = CancelFlag::new();
    cancelled.cancel();
    let req = request(ModelKind::Compact);
    let result = embed_dataset(&dataset, &workspace, &req, &NoProgress, &cancelled);
    assert!(matches!(result, Err(PipelineError::Cancelled)));
    assert!(!workspace.embeddings_path("compact").exists());

    let (set, _) = embed(&dataset, &workspace, &req);
    let result = ensure_index(
        &workspace,
        &set,
        HnswParams::default(),
        &NoProgress,
        &cancelled,
    );
    assert!(matches!(result, Err(PipelineError::Cancelled)));
    assert!(!NeighbourIndex::is_saved(
        workspace.dir(),
        &workspace.index_basename("compact")
    ));
}

#[test]
fn embedding_writes_the_thumbnail_file_once_and_a_damaged_one_is_rebuilt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 6);
    let [_, _, _, _] = common::add_bad_files(&root);
    let dataset = load_dataset(&root).expect("loads");
    let workspace = Workspace::for_dataset(&dataset, None);
    let (set, _) = embed(&dataset, &workspace, &request(ModelKind::Compact));
    let path = workspace.thumbnails_path();
    let fingerprints = (&set.meta.dataset_fingerprint, &set.meta.items_fingerprint);
    let store = natview::thumbs::ThumbnailStore::open(&path, fingerprints.0, fingerprints.1)
        .expect("written while embedding");
    assert_eq!(
        store.len(),
        set.items.len(),
        "one per embedded item, bad files left out"
    );
    // Row i is item i: its thumbnail looks like the image (mean colour within a few levels).
    let mean = |image: &image::RgbImage| {
        let sum: u64 = image
            .pixels()
            .map(|p| u64::from(p.0[0]) + u64::from(p.0[1]))
            .sum();
        sum as f64 / image.pixels().len() as f64
    };
    for row in [0, set.items.len() - 1] {
        let original =
            natview::dataset::decode_rgb(&dataset.item_path(&set.items[row]), 64).expect("decodes");
        let small = natview::encoder::square_resize(&original, 64);
        let stored = store.get(row).expect("stored");
        assert!((mean(&small) - mean(&stored)).abs() < 6.0, "row {row}");
    }
    let written = std::fs::metadata(&path)
        .expect("file")
        .modified()
        .expect("mtime");
    let third = store.encoded(3).map(<[u8]>::to_vec);
    drop(store);

    // Another encoder on the same dataset reuses the file.
    embed(&dataset, &workspace, &request(ModelKind::Pixels));
    let again = std::fs::metadata(&path)
        .expect("file")
        .modified()
        .expect("mtime");
    assert_eq!(written, again);

    // A damaged file is rebuilt (with the same contents) by ensure_thumbnails.
    std::fs::write(&path, b"not a thumbnail file").expect("damage");
    let rebuilt = natview::pipeline::ensure_thumbnails(
        &dataset,
        &workspace,
        &set,
        &NoProgress,
        &CancelFlag::new(),
    )
    .expect("rebuilt");
    assert_eq!(rebuilt.len(), set.items.len());
    assert_eq!(rebuilt.encoded(3).map(<[u8]>::to_vec), third);
}

/// Embeddings record how their images were decoded and resized: a workspace made by an earlier
/// image pipeline (or one that did not record it) is rebuilt, with the reason, not reused.
#[test]
fn embeddings_from_an_earlier_image_pipeline_are_rebuilt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 3);
    let dataset = load_dataset(&root).expect("loads");
    let workspace = Workspace::for_dataset(&dataset, None);
    let req = request(ModelKind::Compact);
    let (first, _) = embed(&dataset, &workspace, &req);
    assert_eq!(first.meta.image_pipeline, natview::dataset::IMAGE_PIPELINE);
    let path = workspace.embeddings_path(&req.spec.workspace_key());
    let (matrix, meta) = EmbeddingStore::load(&path).expect("loads");
    let mut old = meta.expect("meta");
    old.image_pipeline = String::new();
    EmbeddingStore::save(&path, &matrix, &old).expect("saves");
    let (again, report) = embed(&dataset, &workspace, &req);
    assert!(!report.reused);
    let reason = report.stale_reason.expect("a reason");
    assert!(reason.contains("decoded and resized"), "{reason}");
    assert_eq!(
        again.matrix, first.matrix,
        "the same pipeline gives the same rows"
    );
}

/// The decoding options (`--image-metadata`) are recorded: a run that names none reuses the
/// workspace's embeddings however they were decoded (and a rebuild keeps their choice); a run
/// that names another choice re-embeds, saying why.
#[test]
fn the_image_metadata_choice_is_recorded_kept_and_changed_only_when_asked() {
    use natview::dataset::DecodeOptions;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 3);
    let dataset = load_dataset(&root).expect("loads");
    let workspace = Workspace::for_dataset(&dataset, None);
    let as_pil = EmbedRequest {
        decode: Some(DecodeOptions::AS_PIL),
        ..request(ModelKind::Compact)
    };
    let (first, report) = embed(&dataset, &workspace, &as_pil);
    assert!(!report.reused);
    assert_eq!(first.meta.image_pipeline, DecodeOptions::AS_PIL.pipeline());
    let (_, report) = embed(&dataset, &workspace, &request(ModelKind::Compact));
    assert!(report.reused, "no choice named: the workspace's is kept");
    let apply = EmbedRequest {
        decode: Some(DecodeOptions::APPLY_ALL),
        ..request(ModelKind::Compact)
    };
    let (again, report) = embed(&dataset, &workspace, &apply);
    assert!(!report.reused);
    let reason = report.stale_reason.expect("a reason");
    assert!(
        reason.contains("EXIF orientation and ICC profiles ignored"),
        "{reason}"
    );
    assert_eq!(again.meta.image_pipeline, natview::dataset::IMAGE_PIPELINE);
}
