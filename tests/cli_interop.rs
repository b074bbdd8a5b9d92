//! `natview export`, `import`, `embed --shard` and `merge` on real demo images: every export
//! format read back by an independent reader, imports equal to the vectors they came from,
//! bad files refused with their name, and shards merged into exactly one run's embeddings.

// Tests may unwrap and expect: a failed test is the error report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{natview, text};
#[cfg(feature = "parquet")]
use natview::linalg::Matrix;
#[cfg(feature = "parquet")]
use natview::workspace::EmbeddingStore;
use std::path::{Path, PathBuf};

/// An untrained compact encoder at 32 px: real images, seconds to embed.
const MODEL: [&str; 5] = ["--model", "compact", "--size", "32", "--untrained"];

fn run_ok(args: &[&str], dir: &Path) -> String {
    let out = natview(args, dir);
    assert_eq!(
        out.status.code(),
        Some(0),
        "natview {args:?}: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

#[cfg(feature = "parquet")]
fn load(path: &Path) -> Matrix {
    EmbeddingStore::load(path).expect("embeddings load").0
}

/// `(root, workspace)` of a folder tree of 6 demo listings.
fn dataset(dir: &Path) -> (PathBuf, PathBuf) {
    let root = common::demo_slice(dir, 6);
    let workspace = root.join(".natview");
    (root, workspace)
}

/// (Parquet is one of the formats: built with the default `parquet` feature.)
#[cfg(feature = "parquet")]
#[test]
fn every_export_format_reads_back_and_imports_to_the_same_vectors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (root, workspace) = dataset(dir.path());
    let out = dir.path().join("out");
    let targets = [
        ("npy", out.join("npy")),
        ("parquet", out.join("e.parquet")),
        ("jsonl", out.join("e.jsonl")),
        ("tb-projector", out.join("projector")),
    ];
    for (format, target) in &targets {
        let mut args = vec!["export", s(&root), "--format", format, "--out", s(target)];
        args.extend(MODEL);
        run_ok(&args, dir.path());
    }
    let original = load(&workspace.join("embeddings.compact-untrained-32px.safetensors"));

    // Read back by hand: JSON lines and the projector's TSVs.
    let jsonl = std::fs::read_to_string(&targets[2].1).expect("jsonl");
    let rows: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(rows.len(), original.rows);
    for (i, row) in rows.iter().enumerate() {
        let values: Vec<f32> = row["embedding"]
            .as_array()
            .expect("embedding")
            .iter()
            .map(|v| v.as_f64().expect("number") as f32)
            .collect();
        assert_eq!(values, original.row(i), "jsonl row {i}");
        assert_eq!(row["id"].as_u64(), Some(i as u64));
    }
    let tsv = std::fs::read_to_string(targets[3].1.join("vectors.tsv")).expect("vectors.tsv");
    let first: Vec<f32> = tsv
        .lines()
        .next()
        .expect("a line")
        .split('\t')
        .map(|v| v.parse().expect("float"))
        .collect();
    assert_eq!(first, original.row(0));
    assert_eq!(tsv.lines().count(), original.rows);
    let metadata = std::fs::read_to_string(targets[3].1.join("metadata.tsv")).expect("metadata");
    assert!(
        metadata.starts_with("id\tpath\tlisting\tlabel"),
        "{metadata}"
    );
    assert_eq!(metadata.lines().count(), original.rows + 1);
    let sprite = image::open(targets[3].1.join("sprite.png")).expect("sprite");
    assert_eq!(sprite.width(), sprite.height());
    let config =
        std::fs::read_to_string(targets[3].1.join("projector_config.pbtxt")).expect("config");
    assert!(config.contains("single_image_dim"), "{config}");

    // numpy and pyarrow, where the CI's venv provides them (required there: a missing
    // NATVIEW_TEST_PYTHON fails the test when CI is set).
    if let Some(python) = common::required_env("NATVIEW_TEST_PYTHON", "numpy/pyarrow read-back") {
        let helper = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/helpers/read_exports.py");
        let out = std::process::Command::new(python)
            .arg(helper)
            .args(targets.iter().map(|(_, t)| t.as_os_str()))
            .output()
            .expect("python runs");
        assert!(out.status.success(), "{}", text(&out.stderr));
        let summary: serde_json::Value =
            serde_json::from_str(text(&out.stdout).trim()).expect("summary");
        assert_eq!(summary["rows"].as_u64(), Some(original.rows as u64));
        assert_eq!(summary["dim"].as_u64(), Some(original.dim as u64));
    }

    // Imported back (by row order from .npy, by the path column from Parquet, from the
    // workspace's own safetensors): the same unit vectors under their own model name.
    let sources = [
        ("by-npy", targets[0].1.join("embeddings.npy")),
        ("by-parquet", targets[1].1.clone()),
        (
            "by-safetensors",
            workspace.join("embeddings.compact-untrained-32px.safetensors"),
        ),
    ];
    for (name, file) in &sources {
        let said = run_ok(
            &["import", s(&root), "--embeddings", s(file), "--name", name],
            dir.path(),
        );
        assert!(said.contains(&format!("imported:{name}")), "{said}");
        let imported = load(&workspace.join(format!("embeddings.imported-{name}.safetensors")));
        assert_eq!(imported.rows, original.rows, "{name}");
        for (a, b) in imported.data.iter().zip(&original.data) {
            assert!((a - b).abs() < 1e-6, "{name}: {a} vs {b}");
        }
    }
    let said = run_ok(
        &[
            "neighbours",
            s(&root),
            "--model",
            "imported:by-parquet",
            "--id",
            "0",
            "-k",
            "3",
        ],
        dir.path(),
    );
    assert!(said.contains("imported embeddings `by-parquet`"), "{said}");
}

#[test]
fn bad_embedding_files_are_refused_naming_the_file_and_the_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (root, _) = dataset(dir.path());
    let items = std::fs::read_dir(&root)
        .expect("root")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| std::fs::read_dir(e.path()).expect("listing").count())
        .sum::<usize>();
    let cases: [(&str, Vec<usize>, Vec<f32>, &str); 3] = [
        (
            "short.npy",
            vec![items - 1, 4],
            vec![0.5; (items - 1) * 4],
            "rows for",
        ),
        (
            "nan.npy",
            vec![items, 2],
            (0..items * 2)
                .map(|i| if i == 5 { f32::NAN } else { 1.0 })
                .collect(),
            "row 2 holds a non-finite value",
        ),
        ("flat.npy", vec![items], vec![1.0; items], "expected N × D"),
    ];
    for (name, shape, values, message) in cases {
        let file = dir.path().join(name);
        natview::npy::write(&file, &shape, &values).expect("write npy");
        let out = natview(&["import", s(&root), "--embeddings", s(&file)], dir.path());
        assert_ne!(out.status.code(), Some(0), "{name} accepted");
        let err = text(&out.stderr);
        assert!(err.contains(name) && err.contains(message), "{name}: {err}");
    }
    let out = natview(
        &["import", s(&root), "--embeddings", "missing.parquet"],
        dir.path(),
    );
    assert!(
        text(&out.stderr).contains("missing.parquet"),
        "{}",
        text(&out.stderr)
    );
    let out = natview(&["eval", s(&root), "--model", "imported:never"], dir.path());
    assert!(
        text(&out.stderr).contains("no embeddings imported as `never`"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn shards_merge_into_exactly_the_embeddings_of_one_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (root, workspace) = dataset(dir.path());
    let file = workspace.join("embeddings.compact-untrained-32px.safetensors");
    for shard in ["0/3", "2/3"] {
        let mut args = vec!["embed", s(&root), "--shard", shard];
        args.extend(MODEL);
        run_ok(&args, dir.path());
    }
    let mut merge = vec!["merge", s(&root)];
    merge.extend(MODEL);
    let out = natview(&merge, dir.path());
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("shard(s) 1/3 missing"),
        "{}",
        text(&out.stderr)
    );
    let mut args = vec!["embed", s(&root), "--shard", "1/3"];
    args.extend(MODEL);
    run_ok(&args, dir.path());
    run_ok(&merge, dir.path());
    let merged = std::fs::read(&file).expect("merged file");
    std::fs::remove_file(&file).expect("remove");
    let mut whole = vec!["embed", s(&root)];
    whole.extend(MODEL);
    run_ok(&whole, dir.path());
    assert!(
        merged == std::fs::read(&file).expect("one run"),
        "merged ≠ one run"
    );
}
