//! The `natview` binary end to end on real demo images: outputs, JSON, exit codes and error
//! messages that name the file.

// Tests may unwrap and expect: a failed test is the error report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{natview, text};

/// A manifest over a demo slice, with a missing file and a duplicate row.
fn manifest_dataset(dir: &Path) -> std::path::PathBuf {
    let root = common::demo_slice(dir, 10);
    let mut csv = String::from("path,listing,label,design\n");
    let mut listings: Vec<_> = std::fs::read_dir(&root)
        .expect("root")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    listings.sort();
    for listing in &listings {
        let name = listing
            .file_name()
            .and_then(|n| n.to_str())
            .expect("name")
            .to_string();
        let mut views: Vec<_> = std::fs::read_dir(listing)
            .expect("listing")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        views.sort();
        for view in views {
            let file = view
                .file_name()
                .and_then(|n| n.to_str())
                .expect("name")
                .to_string();
            let design = file.trim_end_matches(".png").to_string();
            csv.push_str(&format!(
                "tree/{name}/{file},{name},{},{design}\n",
                if name.as_str() < "b" { "early" } else { "late" }
            ));
        }
    }
    csv.push_str("tree/missing/nothing.png,ghost,early,none\n");
    let first = listings[0]
        .file_name()
        .and_then(|n| n.to_str())
        .expect("name")
        .to_string();
    csv.push_str(&format!("tree/{first}/noto.png,dupe,early,noto\n"));
    let manifest = dir.join("manifest.csv");
    std::fs::write(&manifest, csv).expect("write manifest");
    manifest
}

#[test]
fn manifest_pipeline_reports_bad_rows_and_writes_every_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = manifest_dataset(dir.path());
    let m = manifest.to_str().expect("utf-8");

    // The default encoder of an emoji dataset (a `design` column of emoji designs) is the
    // emoji fine-tune shipped in models/, at the size it was trained at.
    let out = natview(&["embed", m], dir.path());
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    let emoji_model = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(natview::catalogue::EMOJI_MODEL_FILE);
    if emoji_model.is_file() {
        assert!(
            err.contains("effnet-lite0 @96px, weights effnet-lite0-emoji.safetensors"),
            "{err}"
        );
        assert!(!err.contains("untrained"), "{err}");
    }
    // --model picks the pretrained EfficientNet-Lite0 with its shipped weights.
    if natview::encoder::ModelKind::EffnetLite0
        .shipped_weights()
        .is_some()
    {
        let out = natview(&["embed", m, "--model", "effnet-lite0"], dir.path());
        let err = text(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert!(
            err.contains("effnet-lite0 @224px, weights effnet-lite0.safetensors"),
            "{err}"
        );
    }

    let out = natview(&["embed", m, "--untrained"], dir.path());
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("50 images in 10 listings"), "{err}");
    assert!(err.contains("untrained encoder"), "{err}");
    assert!(err.contains("skipped 2 file(s)"), "{err}");
    assert!(
        err.contains("nothing.png: file not found (manifest row 52)"),
        "{err}"
    );
    assert!(
        err.contains("duplicate path (manifest row 53, first listed in row 5)"),
        "{err}"
    );

    let out = natview(
        &["eval", m, "--json", "--baseline", "--untrained"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let reports: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        reports.as_array().map(Vec::len),
        Some(2),
        "model and pixel baseline"
    );
    assert_eq!(reports[0]["images"], 50);
    assert_eq!(reports[0]["untrained"], true);
    assert!(reports[1]["model"]
        .as_str()
        .unwrap_or("")
        .contains("raw-pixel baseline"));

    let out = natview(
        &["neighbours", m, "--id", "0", "-k", "4", "--json"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let hnsw: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let out = natview(
        &["neighbours", m, "--id", "0", "-k", "4", "--json", "--exact"],
        dir.path(),
    );
    let exact: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let ids = |v: &serde_json::Value| -> Vec<u64> {
        v["neighbours"]
            .as_array()
            .expect("list")
            .iter()
            .map(|n| n["id"].as_u64().expect("id"))
            .collect()
    };
    assert_eq!(ids(&hnsw).len(), 4);
    assert_eq!(
        ids(&hnsw),
        ids(&exact),
        "HNSW and exact agree on a small set"
    );
    assert!(!ids(&hnsw).contains(&0), "the query itself is excluded");

    let image = common::demo_images().join("airplane/noto.png");
    let out = natview(
        &[
            "neighbours",
            m,
            "--image",
            image.to_str().expect("utf-8"),
            "-k",
            "3",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("neighbours of image"),
        "{}",
        text(&out.stdout)
    );

    let png = dir.path().join("chart.png");
    let out = natview(
        &[
            "heatmap",
            m,
            "--out",
            png.to_str().expect("utf-8"),
            "--listings",
            "5",
            "--views",
            "5",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("5 listings × 5 views"));
    assert!(text(&out.stdout).contains("views: 5 views per listing, as asked"));
    let chart = image::open(&png).expect("a PNG").to_rgb8();
    assert!(chart.width() > 25 * 28 && chart.height() > 25 * 28);

    let out = natview(
        &[
            "heatmap",
            m,
            "--out",
            "x.png",
            "--label",
            "early",
            "--listings",
            "50",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // No --views: chosen from the data, and said so.
    assert!(
        text(&out.stdout).contains(
            "quadrant chart (7 listings × 4 views)"
        ) && text(&out.stdout).contains(
            "views: 4 views per listing, chosen from the data (the median listing has 5 views; at most 4 unless asked)"
        ),
        "{}",
        text(&out.stdout)
    );

    let csv = dir.path().join("proj.csv");
    let out = natview(
        &[
            "project",
            m,
            "--method",
            "pca",
            "--out",
            csv.to_str().expect("utf-8"),
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<String> = std::fs::read_to_string(&csv)
        .expect("csv")
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(lines[0], "id,x,y");
    assert_eq!(lines.len(), 51);
}

#[test]
fn failures_exit_non_zero_with_one_line_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = natview(&["eval", "does/not/exist"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr).trim(),
        "error: does/not/exist: no such file or directory"
    );

    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).expect("mkdir");
    std::fs::write(empty.join("a.txt"), "x").expect("write");
    let out = natview(&["embed", empty.to_str().expect("utf-8")], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("empty: no images found (1 file(s) skipped)"));

    let root = common::demo_slice(dir.path(), 3);
    let weights = dir.path().join("broken.safetensors");
    std::fs::write(&weights, b"\x20\x00\x00\x00").expect("write");
    let out = natview(
        &[
            "embed",
            root.to_str().expect("utf-8"),
            "--weights",
            weights.to_str().expect("utf-8"),
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("broken.safetensors: cannot read weights"),
        "{}",
        text(&out.stderr)
    );

    let out = natview(
        &[
            "heatmap",
            root.to_str().expect("utf-8"),
            "--out",
            "c.png",
            "--views",
            "9",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("have at least 9 views"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn chart_and_input_sizes_past_their_caps_are_refused_before_any_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 3);
    let dataset = root.to_str().expect("utf-8");
    for (args, message) in [
        (
            ["--listings", "5000"],
            "invalid value '5000' for '--listings <LISTINGS>': 5000 is out of range: a quadrant \
             chart takes 2 to 2000 listings (its matrix has listings × views rows on a side, at \
             most 8192)",
        ),
        (
            ["--views", "100"],
            "100 is out of range: a quadrant chart takes 2 to 64 views per listing",
        ),
        (
            ["--size", "100000"],
            "100000 is out of range: the encoder input is 8 to 2048 pixels a side",
        ),
    ] {
        let mut all = vec!["heatmap", dataset, "--out", "c.png"];
        all.extend(args);
        let out = natview(&all, dir.path());
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(text(&out.stderr).contains(message), "{}", text(&out.stderr));
    }
    let out = natview(
        &["neighbours", dataset, "--id", "0", "-k", "99999999999"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("is out of range: a query lists 1 to 10000 neighbours"),
        "{}",
        text(&out.stderr)
    );
    // Nothing was embedded for them.
    assert!(!root.join(".natview").exists());
}

#[test]
fn labels_made_in_the_store_export_as_csv_and_jsonl() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 3);
    let dataset = root.to_str().expect("utf-8");

    // Nothing labelled yet: a clear error naming the store, exit 1.
    let out = natview(&["labels", "export", dataset], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(".natview/labels.sqlite: no labels yet"),
        "{}",
        text(&out.stderr)
    );

    // Labels as the app writes them (the workspace of a folder dataset is <root>/.natview).
    std::fs::create_dir_all(root.join(".natview")).expect("mkdir");
    let mut store =
        natview::labels::LabelStore::open(&root.join(".natview/labels.sqlite")).expect("store");
    let a = natview::labels::ItemRef {
        path: "a/noto.png",
        listing: "a",
    };
    let b = natview::labels::ItemRef {
        path: "b/noto.png",
        listing: "b",
    };
    store.add_tag(a, "blurry").expect("tag");
    store
        .set_verdict(
            a,
            b,
            Some(natview::labels::Verdict::NearDuplicate),
            Some(0.9),
        )
        .expect("verdict");
    drop(store);

    let out = natview(&["labels", "export", dataset], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let csv = std::fs::read_to_string(root.join(".natview/labels.csv")).expect("csv");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "kind,path,listing,other_path,other_listing,value,who,at,model,similarity"
    );
    assert!(lines[1].starts_with("tag,a/noto.png,a,,,blurry,"), "{csv}");
    assert!(
        lines[2].starts_with("pair,a/noto.png,a,b/noto.png,b,near-duplicate,"),
        "{csv}"
    );

    let out = natview(
        &[
            "labels", "export", dataset, "--format", "jsonl", "--out", "-",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let records: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(records.len(), 2);
    assert_eq!(records[1]["value"], "near-duplicate");

    let out = natview(
        &["labels", "export", dataset, "--format", "xml"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("unknown label export format `xml`"));

    // The export imports into a copy of the dataset on "another machine" (its own workspace),
    // matched by path; importing twice adds nothing.
    let other = dir.path().join("elsewhere");
    copy_tree(&root, &other);
    std::fs::remove_dir_all(other.join(".natview")).expect("fresh workspace");
    // Labels on two real images of the dataset (the ones above name made-up paths), exported by
    // the CLI from the first copy.
    let mut listings: Vec<_> = std::fs::read_dir(&root)
        .expect("root")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir() && !p.ends_with(".natview"))
        .collect();
    listings.sort();
    let first_view = |listing: &Path| {
        let mut views: Vec<_> = std::fs::read_dir(listing)
            .expect("listing")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        views.sort();
        let name = listing
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        (format!("{name}/{}", views[0]), name)
    };
    let ((pa, la), (pb, lb)) = (first_view(&listings[0]), first_view(&listings[1]));
    let mut store =
        natview::labels::LabelStore::open(&root.join(".natview/labels.sqlite")).expect("store");
    let real_a = natview::labels::ItemRef {
        path: &pa,
        listing: &la,
    };
    let real_b = natview::labels::ItemRef {
        path: &pb,
        listing: &lb,
    };
    store.add_tag(real_a, "blurry").expect("tag");
    store
        .set_verdict(
            real_a,
            real_b,
            Some(natview::labels::Verdict::NearDuplicate),
            None,
        )
        .expect("verdict");
    drop(store);
    let out = natview(&["labels", "export", dataset], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let export = root.join(".natview/labels.csv");
    let other_str = other.to_str().expect("utf-8");
    let import = |extra: &[&str]| {
        let mut args = vec![
            "labels",
            "import",
            export.to_str().expect("utf-8"),
            other_str,
        ];
        args.extend_from_slice(extra);
        natview(&args, dir.path())
    };
    let out = import(&["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_str(&text(&out.stdout)).expect("json");
    // The two records on made-up paths are counted and left out.
    assert_eq!(
        (
            report["records"].as_u64(),
            report["added"].as_u64(),
            report["not_in_dataset"].as_u64()
        ),
        (Some(4), Some(2), Some(2))
    );
    let out = import(&["--json"]);
    let report: serde_json::Value = serde_json::from_str(&text(&out.stdout)).expect("json");
    assert_eq!(report["unchanged"].as_u64(), Some(2));
    let store =
        natview::labels::LabelStore::open(&other.join(".natview/labels.sqlite")).expect("store");
    assert!(store.has_tag(&pa, "blurry"));
    assert_eq!(
        store.verdict_of(&pb, &pa),
        Some(natview::labels::Verdict::NearDuplicate)
    );
    // A file that is not an export is refused, naming it.
    std::fs::write(dir.path().join("bad.csv"), "x,y\n1,2\n").expect("write");
    let out = natview(&["labels", "import", "bad.csv", other_str], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("bad.csv"),
        "{}",
        text(&out.stderr)
    );
}

/// Copies a folder tree (files and folders only).
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

#[test]
fn help_lists_user_commands_and_no_benchmark() {
    let dir = tempfile::tempdir().unwrap();
    let out = natview(&["--help"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let help = text(&out.stdout);
    for command in ["embed", "neighbours", "finetune", "labels"] {
        assert!(
            help.contains(&format!("  {command}")),
            "{command} missing:\n{help}"
        );
    }
    assert!(
        !help.contains("  bench"),
        "natview --help lists a bench command:\n{help}"
    );
    let bench = natview(&["bench", "embed", "x"], dir.path());
    assert!(!bench.status.success(), "natview bench still runs");
}
