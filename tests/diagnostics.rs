//! `natview health` and `natview diff` end to end: the shipped models (pretrained and
//! fine-tuned) read "healthy"
//! on demo images, and embeddings built to be collapsed — brought in with `natview import` —
//! read "collapse", with the figures in the JSON; a diff names exactly the listings that moved.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{natview, text};
use std::path::Path;

/// `natview health ROOT ARGS… --json`, parsed.
fn health(root: &Path, args: &[&str], dir: &Path) -> serde_json::Value {
    let root = root.to_str().expect("utf-8");
    let mut all = vec!["health", root, "--json"];
    all.extend_from_slice(args);
    let out = natview(&all, dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// `natview import ROOT --embeddings FILE --name NAME`, which must succeed.
fn import(root: &str, file: &Path, name: &str, dir: &Path) {
    let file = file.to_str().expect("utf-8");
    let out = natview(&["import", root, "--embeddings", file, "--name", name], dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn the_shipped_models_read_healthy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 60);
    let fine_tuned =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("models/effnet-lite0-emoji.safetensors");
    let fine_tuned = fine_tuned.to_str().expect("utf-8");
    for args in [
        &["--model", "effnet-lite0"][..],
        &["--model", "compact"][..],
        &["--weights", fine_tuned][..],
    ] {
        let report = health(&root, args, dir.path());
        let h = &report["health"];
        assert_eq!(
            h["verdict"]["kind"], "healthy",
            "{args:?}: {}",
            h["verdict"]["text"]
        );
        assert!(
            h["effective_rank"].as_f64().expect("rank") > 20.0,
            "{args:?}"
        );
        assert!(
            h["alignment"].as_f64().expect("views") < h["uniformity"].as_f64().unwrap().abs() + 2.0
        );
        assert_eq!(report["hubs"].as_array().expect("hubs").len(), 10);
        assert!(report["hubs"][0]["path"].as_str().is_some());
    }
}

#[test]
fn imported_collapsed_embeddings_read_collapse() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 40);
    let n = 200; // 40 listings × 5 designs
    let dim = 64;
    let mut state = 7u64;
    let mut noise = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.02
    };
    // Every row almost the same direction: complete collapse.
    let point: Vec<f32> = (0..n * dim)
        .map(|i| if i % dim == 0 { 1.0 } else { 0.0 } + noise())
        .collect();
    // Rows in a 2-d plane of 64 dimensions: dimensional collapse.
    let plane: Vec<f32> = (0..n)
        .flat_map(|row| {
            let angle = row as f32 * 0.7;
            (0..dim).map(move |j| match j {
                0 => angle.cos(),
                1 => angle.sin(),
                _ => 0.0,
            })
        })
        .map(|v| v + noise() * 0.1)
        .collect();
    for (name, values, kind) in [
        ("point", point, "complete_collapse"),
        ("plane", plane, "dimensional_collapse"),
    ] {
        let file = dir.path().join(format!("{name}.npy"));
        natview::npy::write(&file, &[n, dim], &values).expect("npy");
        import(root.to_str().expect("utf-8"), &file, name, dir.path());
        let model = format!("imported:{name}");
        let report = health(&root, &["--model", &model], dir.path());
        let verdict = &report["health"]["verdict"];
        assert_eq!(verdict["kind"], kind, "{name}: {}", verdict["text"]);
        assert!(verdict["text"].as_str().expect("text").contains("collapse"));
    }
}

/// `natview diff` between two imported embeddings built so that known listings moved: A
/// scatters the views of three listings, B gathers them and scatters two others. The JSON
/// names exactly those listings as improved and regressed.
#[test]
fn diff_names_exactly_the_listings_that_moved() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 40);
    let root_str = root.to_str().expect("utf-8");
    let listed = natview(
        &[
            "export", root_str, "--format", "npy", "--out", "x", "--model", "pixels",
        ],
        dir.path(),
    );
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    // The items in row order, to know each row's listing.
    let items = std::fs::read_to_string(dir.path().join("x/items.jsonl")).expect("items");
    let listings: Vec<String> = items
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json line");
            v["listing"].as_str().expect("listing").to_string()
        })
        .collect();
    let mut names: Vec<String> = listings.clone();
    names.dedup();
    let (scattered_a, scattered_b) = (&names[0..3], &names[10..12]);
    let dim = 32;
    let embed = |scattered: &[String], seed: u64| -> Vec<f32> {
        let mut state = seed;
        let mut normal = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 3.4
        };
        let mut out = Vec::new();
        for (row, listing) in listings.iter().enumerate() {
            let key = if scattered.contains(listing) {
                10_000 + row
            } else {
                names.iter().position(|n| n == listing).expect("name")
            };
            let mut centre_state = key as u64 * 2_654_435_761 + 17;
            let v: Vec<f64> = (0..dim)
                .map(|_| {
                    centre_state = centre_state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1);
                    ((centre_state >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 3.4 + 0.2 * normal()
                })
                .collect();
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            out.extend(v.iter().map(|x| (x / norm) as f32));
        }
        out
    };
    for (name, values) in [
        ("before", embed(scattered_a, 1)),
        ("after", embed(scattered_b, 2)),
    ] {
        let file = dir.path().join(format!("{name}.npy"));
        natview::npy::write(&file, &[listings.len(), dim], &values).expect("npy");
        import(root_str, &file, name, dir.path());
    }
    let out = natview(
        &[
            "diff",
            root_str,
            "--from",
            "imported:before",
            "--to",
            "imported:after",
            "--json",
            "--layout",
            "pca",
            "--layout-csv",
            "layout.csv",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let with = |change: &str| {
        let mut v: Vec<String> = report["listings"]
            .as_array()
            .expect("listings")
            .iter()
            .filter(|l| l["change"] == change)
            .map(|l| l["listing"].as_str().expect("name").to_string())
            .collect();
        v.sort();
        v
    };
    let sorted = |s: &[String]| {
        let mut v = s.to_vec();
        v.sort();
        v
    };
    assert_eq!(with("improved"), sorted(scattered_a));
    assert_eq!(with("regressed"), sorted(scattered_b));
    assert_eq!(report["unchanged"], 35);
    // Both PCA layouts in A's frame: one row per image; B's fitted onto A's.
    let disparity = report["layout"]["disparity"].as_f64().expect("disparity");
    assert!((0.0..=1.0).contains(&disparity), "{disparity}");
    let csv = std::fs::read_to_string(dir.path().join("layout.csv")).expect("layout CSV");
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("id,listing,path,ax,ay,bx,by,neighbourhood_change")
    );
    assert_eq!(lines.count(), listings.len());
    // The regressed queue: views of exactly the listings B scattered, each beside a view of
    // its own listing.
    let out = natview(
        &[
            "review",
            root_str,
            "--kind",
            "regressed",
            "--from",
            "imported:before",
            "--model",
            "imported:after",
            "--json",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let queue: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(queue["kind"], "regressed");
    let mut seen: Vec<String> = Vec::new();
    for pair in queue["pairs"].as_array().expect("pairs") {
        let listing = pair["a"]["listing"].as_str().expect("listing").to_string();
        assert_eq!(pair["b"]["listing"], listing.as_str());
        if !seen.contains(&listing) {
            seen.push(listing);
        }
    }
    seen.sort();
    assert_eq!(seen, sorted(scattered_b));
}

/// The augmentation-shortcut probe end to end, with EfficientNet-Lite0 (ImageNet). On the demo
/// the designs of one emoji are its natural views: they sit near augmentations of one image
/// ("keys on the item"). A dataset whose "listings" pair two unrelated emoji stands for what a
/// shortcut looks like — augmentations of an image stay together, a listing's views do not —
/// and reads "augmentation shortcut".
#[test]
fn natural_views_that_do_not_map_together_read_as_an_augmentation_shortcut() {
    let dir = tempfile::tempdir().expect("tempdir");
    let real = common::demo_slice(dir.path(), 60);
    let unrelated = dir.path().join("unrelated");
    let mut emoji: Vec<std::path::PathBuf> = std::fs::read_dir(common::demo_images())
        .expect("demo")
        .map(|e| e.expect("entry").path().join("noto.png"))
        .filter(|p| p.is_file())
        .collect();
    emoji.sort();
    for (i, pair) in emoji.chunks_exact(2).take(60).enumerate() {
        let listing = unrelated.join(format!("pair-{i:03}"));
        std::fs::create_dir_all(&listing).expect("mkdir");
        std::fs::copy(&pair[0], listing.join("a.png")).expect("copy");
        std::fs::copy(&pair[1], listing.join("b.png")).expect("copy");
    }
    for (root, kind) in [
        (&real, "keys_on_the_item"),
        (&unrelated, "augmentation_shortcut"),
    ] {
        let root = root.to_str().expect("utf-8");
        let args = [
            "shortcut",
            root,
            "--json",
            "--listings",
            "60",
            "--model",
            "effnet-lite0",
        ];
        let out = natview(&args, dir.path());
        assert!(out.status.success(), "{}", text(&out.stderr));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        let s = &report["shortcut"];
        assert_eq!(s["kind"], kind, "{root}: {}", s["text"]);
        assert_eq!(s["natural"]["values"].as_array().expect("values").len(), 60);
        let mean = |name: &str| s[name]["mean"].as_f64().expect("mean");
        assert!(mean("augmented") > mean("different") + 0.1);
    }
}

/// `natview project --faithfulness`: one share per image, each a count of its 10 neighbours
/// over 10, whose mean is the one printed.
#[test]
fn project_writes_each_images_faithfulness() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 12);
    let out = natview(
        &[
            "project",
            root.to_str().expect("utf-8"),
            "--model",
            "pixels",
            "--faithfulness",
            "kept.csv",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let csv = std::fs::read_to_string(dir.path().join("kept.csv")).expect("CSV");
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("id,listing,path,kept"));
    let kept: Vec<f64> = lines
        .map(|l| l.rsplit(',').next().expect("kept").parse().expect("number"))
        .collect();
    assert_eq!(kept.len(), 60);
    for k in &kept {
        assert!((0.0..=1.0).contains(k) && ((k * 10.0).round() - k * 10.0).abs() < 1e-9);
    }
    let mean = 100.0 * kept.iter().sum::<f64>() / kept.len() as f64;
    let printed = text(&out.stdout);
    assert!(
        printed.contains(&format!("keeps {mean:.1} %")),
        "{printed} (mean {mean:.1})"
    );
}
