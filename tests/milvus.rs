//! natview against a real Milvus server (cargo feature `milvus`): `.ci/run` starts one
//! (milvus-lite, 127.0.0.1) and sets `NATVIEW_TEST_MILVUS_URI`; there these tests must pass.
//! Without the variable they say so and check nothing else.

#![cfg(feature = "milvus")]

mod common;
#[cfg(feature = "gui")]
mod gui_support;

use common::{natview, text};
use natview::index::exact_neighbours;
use natview::interop::milvus::{Milvus, MilvusTarget};
use natview::linalg::Matrix;
use natview::workspace::EmbeddingStore;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const MODEL: [&str; 5] = ["--model", "compact", "--size", "32", "--untrained"];

/// The server the CI started, if any.
fn server() -> Option<String> {
    match std::env::var("NATVIEW_TEST_MILVUS_URI") {
        Ok(uri) => Some(uri),
        Err(_) => {
            eprintln!("NATVIEW_TEST_MILVUS_URI unset: no Milvus server to test against");
            None
        }
    }
}

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// A collection name of its own for each test run.
fn collection(test: &str) -> String {
    format!("natview_{test}_{}", std::process::id())
}

/// `listings` demo listings exported to `collection`; returns (root, the local embeddings).
fn exported(dir: &Path, uri: &str, collection: &str, listings: usize) -> (PathBuf, Matrix) {
    let root = common::demo_slice(dir, listings);
    let mut args = vec![
        "export",
        s(&root),
        "--milvus",
        uri,
        "--collection",
        collection,
    ];
    args.extend(MODEL);
    let out = natview(&args, dir);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("rows to milvus://"),
        "{}",
        text(&out.stdout)
    );
    let file = root.join(".natview/embeddings.compact-untrained-32px.safetensors");
    let matrix = EmbeddingStore::load(&file).expect("embeddings").0;
    (root, matrix)
}

fn connect(uri: &str, collection: &str) -> Milvus {
    let target = MilvusTarget::new(uri, collection).expect("target");
    Milvus::connect(&target, Duration::from_secs(10)).expect("connects")
}

#[test]
fn exported_rows_their_fields_and_self_queries_come_back() {
    let Some(uri) = server() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let name = collection("fields");
    let (root, matrix) = exported(dir.path(), &uri, &name, 6);
    let milvus = connect(&uri, &name);
    assert_eq!(milvus.count().expect("count"), matrix.rows as u64);
    let items = std::fs::read_to_string(root.join(".natview/items.jsonl")).expect("items");
    for (id, line) in items.lines().enumerate() {
        let item: serde_json::Value = serde_json::from_str(line).expect("item");
        let fields = milvus.fields(id).expect("query").expect("stored");
        assert_eq!(fields["path"], item["path"], "{fields}");
        assert_eq!(fields["listing"], item["listing"], "{fields}");
        let hits = milvus.search(matrix.row(id), 3, 64, None).expect("search");
        assert_eq!(hits[0].id, id, "item {id} is not its own nearest: {hits:?}");
        assert!(hits[0].similarity > 0.999, "{hits:?}");
        let stored = milvus.vector(id).expect("vector").expect("stored");
        assert_eq!(stored, matrix.row(id));
    }
    // The CLI's neighbours through the backend, with a filter on a stored field.
    let listing = serde_json::from_str::<serde_json::Value>(items.lines().next().expect("line"))
        .expect("item")["listing"]
        .as_str()
        .expect("listing")
        .to_string();
    let backend = format!("{}/{name}", uri.replace("http://", "milvus://"));
    let filter = format!("listing == \"{listing}\"");
    let out = natview(
        &[
            "neighbours",
            s(&root),
            "--backend",
            &backend,
            "--id",
            "0",
            "-k",
            "10",
            "--filter",
            &filter,
            "--json",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let answer: serde_json::Value = serde_json::from_str(&text(&out.stdout)).expect("json");
    let neighbours = answer["neighbours"].as_array().expect("neighbours");
    assert!(!neighbours.is_empty());
    assert!(
        neighbours.iter().all(|n| n["listing"] == listing.as_str()),
        "{answer}"
    );
    assert!(neighbours.iter().all(|n| n["id"] != 0), "{answer}");
    milvus.drop_collection().expect("drop");
}

#[test]
fn milvus_recall_at_10_against_exact_search_is_at_least_0_95() {
    let Some(uri) = server() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let name = collection("recall");
    let (_, matrix) = exported(dir.path(), &uri, &name, 60);
    let milvus = connect(&uri, &name);
    let (mut found, mut wanted) = (0usize, 0usize);
    for id in 0..matrix.rows {
        let exact: Vec<usize> = exact_neighbours(&matrix, matrix.row(id), 10, None)
            .expect("exact")
            .iter()
            .map(|n| n.id)
            .collect();
        let hits: Vec<usize> = milvus
            .search(matrix.row(id), 10, 64, None)
            .expect("search")
            .iter()
            .map(|h| h.id)
            .collect();
        wanted += exact.len();
        found += exact.iter().filter(|e| hits.contains(e)).count();
    }
    let recall = found as f64 / wanted as f64;
    eprintln!(
        "recall@10 through Milvus vs exact: {recall:.4} over {} queries",
        matrix.rows
    );
    assert!(recall >= 0.95, "recall@10 {recall}");
    milvus.drop_collection().expect("drop");
}

#[test]
fn re_export_adds_no_duplicates_and_a_delete_disappears() {
    let Some(uri) = server() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let name = collection("dedup");
    let (root, matrix) = exported(dir.path(), &uri, &name, 6);
    for extra in [&[][..], &["--restart"][..]] {
        let mut args = vec!["export", s(&root), "--milvus", &uri, "--collection", &name];
        args.extend(MODEL);
        args.extend(extra);
        let out = natview(&args, dir.path());
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    let milvus = connect(&uri, &name);
    assert_eq!(milvus.count().expect("count"), matrix.rows as u64);
    milvus.delete(&[0]).expect("delete");
    assert_eq!(milvus.count().expect("count"), matrix.rows as u64 - 1);
    assert!(milvus.vector(0).expect("query").is_none());
    let hits = milvus.search(matrix.row(0), 5, 64, None).expect("search");
    assert!(hits.iter().all(|h| h.id != 0), "{hits:?}");
    milvus.drop_collection().expect("drop");
}

#[test]
fn no_server_is_a_clear_error_within_seconds() {
    // A port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 2);
    let started = Instant::now();
    let out = natview(
        &[
            "neighbours",
            s(&root),
            "--backend",
            &format!("milvus://127.0.0.1:{port}/nothing"),
            "--id",
            "0",
        ],
        dir.path(),
    );
    let seconds = started.elapsed().as_secs_f64();
    assert_ne!(out.status.code(), Some(0));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("milvus://127.0.0.1:{port}/nothing")) && err.contains("Milvus"),
        "{err}"
    );
    assert!(seconds < 10.0, "took {seconds:.1} s");
}

/// The app's Neighbours panel switched to the collection: the selected item's neighbours come
/// from Milvus through a worker, filtered on a stored field, and the panel says so.
#[cfg(feature = "gui")]
#[test]
fn the_apps_neighbour_panel_asks_milvus_with_a_filter() {
    use egui_kittest::kittest::Queryable;
    use natview::app::{Command, NeighbourBackend};
    let Some(uri) = server() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 12);
    let name = collection("app");
    // The app's test encoder (the shipped compact model), so that the app reuses these rows.
    let out = natview(
        &[
            "export",
            s(&root),
            "--milvus",
            &uri,
            "--collection",
            &name,
            "--model",
            "compact",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut harness = gui_support::opened_app(&root);
    harness.get_by_label("item 7").click();
    harness.run();
    let listing = harness.state().session().expect("open").set.items[7]
        .listing
        .clone();
    let target = format!("{}/{name}", uri.replace("http://", "milvus://"));
    harness
        .state_mut()
        .send(Command::SetNeighbourBackend(Some(NeighbourBackend {
            target: target.clone(),
            filter: format!("listing == \"{listing}\""),
        })));
    gui_support::step_until(&mut harness, "the backend answered", |app| {
        app.session()
            .and_then(|s| s.selection.as_ref())
            .is_some_and(|sel| sel.source.starts_with(&target))
    });
    harness.run();
    let session = harness.state().session().expect("open");
    let selection = session.selection.clone().expect("selected");
    assert_eq!(selection.item(), Some(7));
    assert!(!selection.neighbours.is_empty());
    assert!(
        selection.neighbours.len() <= 4,
        "{:?}",
        selection.neighbours
    );
    for n in &selection.neighbours {
        assert_ne!(n.id, 7);
        assert_eq!(session.set.items[n.id].listing, listing, "{n:?}");
    }
    harness.get_by_label(&format!("Backend: {target}"));
    // Back to this machine's index: the HNSW answer again.
    harness.state_mut().send(Command::SetNeighbourBackend(None));
    harness.run();
    let selection = harness
        .state()
        .session()
        .and_then(|s| s.selection.clone())
        .expect("selected");
    assert_eq!(selection.source, "HNSW");
    connect(&uri, &name).drop_collection().expect("drop");
}
