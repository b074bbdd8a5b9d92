//! `natview review`: the review queues from the command line on small real images.

// Tests may unwrap and expect: a failed test is the error report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{natview, text};

#[test]
fn review_finds_a_planted_reupload_and_names_bad_options() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 8);
    let reupload = common::plant_reupload(&root);
    let dataset = root.to_str().expect("utf-8");
    let review = |extra: &[&str]| {
        let mut args = vec!["review", dataset, "--model", "compact"];
        args.extend_from_slice(extra);
        natview(&args, dir.path())
    };

    let out = review(&[
        "--kind",
        "near-duplicates",
        "--threshold",
        "0.999",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let queue: serde_json::Value = serde_json::from_str(&text(&out.stdout)).expect("json");
    assert_eq!(queue["kind"], "near-duplicates");
    let clusters = queue["clusters"].as_array().expect("clusters");
    assert_eq!(clusters.len(), 1, "{queue}");
    let members: Vec<&str> = clusters[0]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m.as_str())
        .collect();
    assert_eq!(members.len(), 2);
    assert!(members.contains(&reupload.as_str()), "{members:?}");
    let pair = &queue["pairs"][0];
    assert!(pair["similarity"].as_f64().expect("similarity") > 0.999);
    assert_ne!(pair["a"]["listing"], pair["b"]["listing"]);
    let histogram: u64 = queue["histogram"]["counts"]
        .as_array()
        .expect("histogram")
        .iter()
        .filter_map(|c| c.as_u64())
        .sum();
    assert_eq!(Some(histogram), queue["images"].as_u64());

    // The other queues run and list pairs in their order.
    for kind in ["outliers", "confusable", "hard"] {
        let out = review(&["--kind", kind, "--limit", "5"]);
        assert_eq!(out.status.code(), Some(0), "{kind}: {}", text(&out.stderr));
        let table = text(&out.stdout);
        assert!(table.contains("   1. "), "{kind}: {table}");
        assert!(table.contains("judged"), "{kind}: {table}");
    }

    let out = review(&["--kind", "dupes"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("unknown review kind `dupes`"),
        "{}",
        text(&out.stderr)
    );
    let out = review(&["--threshold", "1.5"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("not a cosine"));
}
