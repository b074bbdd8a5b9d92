//! `natview compare`: every method trained from one start on one split, one table.

// Tests may unwrap and expect: a failed test is the error report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{natview, text};

#[test]
fn compare_trains_each_method_and_writes_one_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 12);
    let out_dir = dir.path().join("cmp");
    let out = natview(
        &[
            "compare",
            root.to_str().expect("utf-8"),
            "--model",
            "compact",
            "--from",
            "compact",
            "--size",
            "32",
            "--batch",
            "8",
            "--steps",
            "3",
            "--heldout",
            "0.3",
            "--out-dir",
            out_dir.to_str().expect("utf-8"),
            "--json",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_str(&text(&out.stdout)).expect("json");
    let methods: Vec<&str> = report["methods"]
        .as_array()
        .expect("methods")
        .iter()
        .filter_map(|m| m["method"].as_str())
        .collect();
    assert_eq!(methods, ["simsiam", "infonce", "byol", "moby", "swav"]);
    // One start and one split: every run's "before" is the same.
    let before: Vec<&serde_json::Value> = report["methods"]
        .as_array()
        .expect("methods")
        .iter()
        .map(|m| &m["before"])
        .collect();
    assert!(before.windows(2).all(|w| w[0] == w[1]), "{before:?}");
    for m in report["methods"].as_array().expect("methods") {
        assert!(m["after"]["recall_at_1"].as_f64().is_some(), "{m}");
        assert!(m["after"]["map_at_10"].as_f64().is_some(), "{m}");
        assert!(std::path::Path::new(m["weights"].as_str().expect("path")).is_file());
        assert!(m.get("probe").is_some(), "{m}");
    }
    // One quadrant chart per encoder, of the same held-out listings, as PNGs.
    for name in [
        "start", "simsiam", "infonce", "byol", "moby", "swav", "pixels",
    ] {
        let png = out_dir.join(format!("quadrant-{name}.png"));
        let image = image::open(&png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
        assert!(image.width() > 200 && image.height() > 200, "{name}");
    }
    let intra_pairs: Vec<u64> = report["methods"]
        .as_array()
        .expect("methods")
        .iter()
        .map(|m| m["chart"]["stats"]["intra_pairs"].as_u64().expect("pairs"))
        .collect();
    assert!(
        intra_pairs.windows(2).all(|w| w[0] == w[1]) && intra_pairs[0] > 0,
        "{intra_pairs:?}"
    );
    assert!(report["heldout_images"].as_u64().expect("count") > 0);
    let table = std::fs::read_to_string(out_dir.join("compare.md")).expect("table");
    assert!(
        table.contains("| moby |") && table.contains("| raw pixels |") && table.contains("mAP@10"),
        "{table}"
    );

    let out = natview(
        &[
            "compare",
            root.to_str().expect("utf-8"),
            "--methods",
            "simsiam,dino",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("unknown method `dino`"));
}
