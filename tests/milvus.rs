//! natview against a real Milvus server (cargo feature `milvus`): `.ci/run` runs these tests
//! twice — against milvus-lite and against a Milvus 2.3 standalone with authentication — with
//! `NATVIEW_TEST_MILVUS_URI` naming the server and `NATVIEW_TEST_MILVUS_AUTH` saying whether it
//! checks credentials (`none`, or `required`: then `NATVIEW_MILVUS_TOKEN` holds a valid
//! `user:password`). Without the variables the tests say so and check nothing else; under CI
//! (`CI` set) a missing one fails them.

// Tests may unwrap and expect: a failed test is the error report.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(feature = "milvus")]

mod common;
#[cfg(feature = "gui")]
mod gui_support;

use common::{natview, natview_env, text};
use natview::index::{exact_neighbours, HnswParams};
use natview::interop::milvus::{Milvus, MilvusTarget, PASSWORD_VAR, TOKEN_VAR, USER_VAR};
use natview::jobs::{CancelFlag, NoProgress};
use natview::linalg::Matrix;
use natview::pipeline::EmbeddingSet;
use natview::workspace::{EmbeddingStore, Workspace};
use std::path::{Path, PathBuf};
use std::time::Duration;

const MODEL: [&str; 5] = ["--model", "compact", "--size", "32", "--untrained"];
/// Another encoder of the same dimension (the compact model at another input size).
const OTHER_MODEL: [&str; 5] = ["--model", "compact", "--size", "48", "--untrained"];
/// The embeddings file `MODEL` writes.
const EMBEDDINGS: &str = ".natview/embeddings.compact-untrained-32px.safetensors";

/// The server the CI started, if any.
fn server() -> Option<String> {
    common::required_env(
        "NATVIEW_TEST_MILVUS_URI",
        "the tests against a Milvus server",
    )
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
    let matrix = EmbeddingStore::load(&root.join(EMBEDDINGS))
        .expect("embeddings")
        .0;
    (root, matrix)
}

/// `milvus://host:port/collection` of `collection` on the server `uri`.
fn backend(uri: &str, collection: &str) -> String {
    format!("{}/{collection}", uri.replace("http://", "milvus://"))
}

/// `natview neighbours ROOT --backend … --id ID` with `extra` arguments.
fn ask(dir: &Path, root: &Path, backend: &str, id: usize, extra: &[&str]) -> std::process::Output {
    let id = id.to_string();
    let mut args = vec!["neighbours", s(root), "--backend", backend, "--id", &id];
    args.extend(extra);
    natview(&args, dir)
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
    let filter = format!("listing == \"{listing}\"");
    let mut extra = vec!["-k", "10", "--filter", &filter, "--json"];
    extra.extend(MODEL);
    let out = ask(dir.path(), &root, &backend(&uri, &name), 0, &extra);
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
fn no_server_is_a_clear_error_naming_the_uri() {
    // A port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 2);
    let target = format!("milvus://127.0.0.1:{port}/nothing");
    let out = ask(dir.path(), &root, &target, 0, &MODEL);
    assert_ne!(out.status.code(), Some(0));
    let err = text(&out.stderr);
    assert!(err.contains(&target) && err.contains("Milvus"), "{err}");
}

#[test]
fn a_collection_of_other_embeddings_is_refused_naming_the_difference() {
    let Some(uri) = server() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let name = collection("other");
    let (root, _) = exported(dir.path(), &uri, &name, 4);
    let target = backend(&uri, &name);
    // The same dimension from another encoder: refused, naming both encoders.
    let out = ask(dir.path(), &root, &target, 0, &OTHER_MODEL);
    assert_ne!(out.status.code(), Some(0));
    let err = text(&out.stderr);
    assert!(
        err.contains(&target)
            && err.contains("compact-untrained-32px")
            && err.contains("compact-untrained-48px"),
        "{err}"
    );
    // Another dataset embedded by the same encoder: refused, naming its items.
    let other_dir = tempfile::tempdir().expect("tempdir");
    let other_root = common::demo_slice(other_dir.path(), 3);
    let out = ask(other_dir.path(), &other_root, &target, 0, &MODEL);
    assert_ne!(out.status.code(), Some(0));
    let err = text(&out.stderr);
    assert!(
        err.contains("it holds other embeddings: dataset") && err.contains(" items "),
        "{err}"
    );
    // Exporting other embeddings into it is refused too, unless --restart replaces them.
    let mut args = vec!["export", s(&root), "--milvus", &uri, "--collection", &name];
    args.extend(OTHER_MODEL);
    let out = natview(&args, dir.path());
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("--restart"),
        "{}",
        text(&out.stderr)
    );
    args.push("--restart");
    let out = natview(&args, dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = ask(dir.path(), &root, &target, 0, &OTHER_MODEL);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = ask(dir.path(), &root, &target, 0, &MODEL);
    assert_ne!(
        out.status.code(),
        Some(0),
        "the first encoder's rows are gone"
    );
    connect(&uri, &name).drop_collection().expect("drop");
}

#[test]
fn answers_whose_paths_are_not_the_datasets_are_refused() {
    let Some(uri) = server() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let name = collection("paths");
    let (root, matrix) = exported(dir.path(), &uri, &name, 4);
    // The same embeddings and record, with items 0 and 1 swapped in the stored paths (as if
    // written from another copy of the dataset whose listing order differs).
    let (mut items, _) = Workspace::at(&root.join(".natview"))
        .read_items()
        .expect("items");
    let (first, second) = (items[0].path.clone(), items[1].path.clone());
    items[0].path = second.clone();
    items[1].path = first.clone();
    let meta = EmbeddingStore::load(&root.join(EMBEDDINGS))
        .expect("embeddings")
        .1
        .expect("natview's metadata");
    let set = EmbeddingSet {
        items,
        matrix: matrix.clone(),
        meta,
        clusters: None,
    };
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let milvus = connect(&uri, &name);
    milvus
        .export(
            &set,
            &Workspace::at(elsewhere.path()),
            HnswParams::default(),
            true,
            &NoProgress,
            &CancelFlag::new(),
        )
        .expect("export");
    let k = (matrix.rows - 1).to_string();
    let mut extra = vec!["-k", &k];
    extra.extend(MODEL);
    let out = ask(dir.path(), &root, &backend(&uri, &name), 2, &extra);
    assert_ne!(out.status.code(), Some(0));
    let err = text(&out.stderr);
    let (first, second) = (first.to_string_lossy(), second.to_string_lossy());
    assert!(
        (err.contains("row 0") && err.contains(&*second) && err.contains(&*first))
            || (err.contains("row 1") && err.contains(&*first) && err.contains(&*second)),
        "{err}"
    );
    milvus.drop_collection().expect("drop");
}

/// Credentials from the environment only: a wrong token and none at all are clear errors that
/// never show the secret, and a user with a password works like the token.
#[test]
fn credentials_come_from_the_environment_and_a_wrong_one_is_a_clear_error() {
    let Some(uri) = server() else { return };
    let Some(auth) = common::required_env(
        "NATVIEW_TEST_MILVUS_AUTH",
        "the authentication test (`none` for a server without it)",
    ) else {
        return;
    };
    if auth == "none" {
        eprintln!("{uri} checks no credentials: authentication not tested against it");
        return;
    }
    assert_eq!(
        auth, "required",
        "NATVIEW_TEST_MILVUS_AUTH is `none` or `required`"
    );
    let token = std::env::var(TOKEN_VAR).expect("NATVIEW_MILVUS_TOKEN: the server's user:password");
    let (user, password) = token.split_once(':').expect("user:password");
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 2);
    let name = collection("auth");
    let mut args = vec!["export", s(&root), "--milvus", &uri, "--collection", &name];
    args.extend(MODEL);
    let wrong = format!("{user}:n0t-{password}");
    for (env, sent) in [
        (
            [
                (TOKEN_VAR, Some(wrong.as_str())),
                (USER_VAR, None),
                (PASSWORD_VAR, None),
            ],
            "NATVIEW_MILVUS_TOKEN",
        ),
        (
            [(TOKEN_VAR, None), (USER_VAR, None), (PASSWORD_VAR, None)],
            "no credentials",
        ),
    ] {
        let out = natview_env(&args, dir.path(), &env);
        assert_ne!(out.status.code(), Some(0));
        let err = text(&out.stderr);
        assert!(
            err.contains("refused the login")
                && err.contains(sent)
                && err.contains(&uri.replace("http://", "milvus://")),
            "{err}"
        );
        assert!(!err.contains(&wrong), "the secret is shown: {err}");
    }
    let env = [
        (TOKEN_VAR, None),
        (USER_VAR, Some(user)),
        (PASSWORD_VAR, Some(password)),
    ];
    let out = natview_env(&args, dir.path(), &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    connect(&uri, &name).drop_collection().expect("drop");
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
