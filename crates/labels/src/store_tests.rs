use super::*;
use crate::LabelChange;

fn item<'a>(path: &'a str, listing: &'a str) -> ItemRef<'a> {
    ItemRef { path, listing }
}

#[test]
fn changes_are_on_disk_as_soon_as_they_are_made() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("labels.sqlite");
    let mut store = LabelStore::open(&path).expect("open");
    assert_eq!(store.tag_set()[0], DEFAULT_TAG_SET[0]);
    store.set_model(Some("compact @64px".into()));
    let change = store
        .toggle_tag(item("a/1.png", "a"), "blurry")
        .expect("tag");
    assert!(matches!(change, LabelChange::Tags { added: true, .. }));
    store
        .add_tag(item("a/2.png", "a"), "my own tag")
        .expect("tag");
    store
        .set_note(item("a/1.png", "a"), "  logo in the corner ")
        .expect("note");
    store
        .set_verdict(
            item("b/1.png", "b"),
            item("a/1.png", "a"),
            Some(Verdict::NearDuplicate),
            Some(0.97),
        )
        .expect("verdict");
    store.rename_tag_key(9, "reshoot").expect("rename");
    assert!(store
        .tagged_at("a/1.png", "blurry")
        .expect("read")
        .is_some_and(|at| at.ends_with('Z')));

    // A second connection (another process, or the app after a crash) sees everything.
    let reopened = LabelStore::open(&path).expect("reopen");
    assert!(reopened.has_tag("a/1.png", "blurry"));
    assert!(reopened.has_tag("a/2.png", "my own tag"));
    assert_eq!(reopened.note_of("a/1.png"), Some("logo in the corner"));
    assert_eq!(
        reopened.verdict_of("a/1.png", "b/1.png"),
        Some(Verdict::NearDuplicate)
    );
    let similarity = reopened
        .verdict_similarity("b/1.png", "a/1.png")
        .expect("read")
        .expect("recorded");
    assert!((similarity - 0.97).abs() < 1e-6);
    let model: Option<String> = reopened
        .connection()
        .query_row(
            "SELECT model FROM pair_verdicts WHERE path_a = 'a/1.png'",
            [],
            |r| r.get(0),
        )
        .expect("model");
    assert_eq!(model.as_deref(), Some("compact @64px"));
    assert_eq!(reopened.tag_set()[8], "reshoot");
    drop(reopened);

    // Toggling again removes; clearing a verdict and a note removes them.
    let change = store
        .toggle_tag(item("a/1.png", "a"), "blurry")
        .expect("untag");
    assert!(matches!(change, LabelChange::Tags { added: false, .. }));
    store
        .set_verdict(item("a/1.png", "a"), item("b/1.png", "b"), None, None)
        .expect("clear");
    store.set_note(item("a/1.png", "a"), " ").expect("clear");
    let reopened = LabelStore::open(&path).expect("reopen");
    assert!(!reopened.has_tag("a/1.png", "blurry"));
    assert_eq!(reopened.verdict_of("b/1.png", "a/1.png"), None);
    assert_eq!(reopened.note_of("a/1.png"), None);
    assert_eq!(reopened.tag_counts(), vec![("my own tag".to_string(), 1)]);
}

#[test]
fn bulk_tags_and_verdicts_undo_exactly_what_they_changed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = LabelStore::open(&dir.path().join("labels.sqlite")).expect("open");
    store
        .add_tag(item("a/1.png", "a"), "off-topic")
        .expect("tag");
    let items = [
        item("a/1.png", "a"),
        item("a/2.png", "a"),
        item("b/1.png", "b"),
    ];
    let change = store.set_tag_on(&items, "off-topic", true).expect("bulk");
    // a/1 already had it: only two changed, and undo must leave a/1 tagged.
    let LabelChange::Tags { items: changed, .. } = &change else {
        panic!("{change:?}")
    };
    assert_eq!(changed.len(), 2);
    assert_eq!(change.describe(), "tag `off-topic` on 2 images");
    store.undo(&change).expect("undo");
    assert!(store.has_tag("a/1.png", "off-topic"));
    assert!(!store.has_tag("a/2.png", "off-topic"));
    assert!(!store.has_tag("b/1.png", "off-topic"));

    let first = store
        .set_verdict(items[0], items[2], Some(Verdict::Same), Some(0.5))
        .expect("verdict");
    let second = store
        .set_verdict(items[2], items[0], Some(Verdict::Different), Some(0.4))
        .expect("verdict");
    store.undo(&second).expect("undo");
    assert_eq!(store.verdict_of("a/1.png", "b/1.png"), Some(Verdict::Same));
    assert_eq!(
        store
            .verdict_similarity("a/1.png", "b/1.png")
            .expect("read"),
        Some(0.5)
    );
    store.undo(&first).expect("undo");
    assert_eq!(store.verdict_of("a/1.png", "b/1.png"), None);
    let reopened = LabelStore::open(store.path()).expect("reopen");
    assert_eq!(reopened.verdict_of("a/1.png", "b/1.png"), None);
    assert_eq!(reopened.tag_counts(), vec![("off-topic".to_string(), 1)]);
}

#[test]
fn two_windows_on_one_store_lose_no_write() {
    // Two connections as two app windows would hold them, writing in turn and at once.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("labels.sqlite");
    let mut one = LabelStore::open(&path).expect("open");
    let mut two = LabelStore::open(&path).expect("open");
    one.add_tag(item("a/1.png", "a"), "blurry").expect("tag");
    // The second window has not seen that tag; toggling must act on the store, not on its
    // stale mirror (a stale toggle would add it again instead of removing it).
    assert!(!two.has_tag("a/1.png", "blurry"));
    let change = two
        .toggle_tag(item("a/1.png", "a"), "blurry")
        .expect("toggle");
    assert!(matches!(change, LabelChange::Tags { added: false, .. }));
    assert!(one.refresh().expect("refresh"));
    assert!(!one.has_tag("a/1.png", "blurry"));

    // Writers on two threads at once: every write lands.
    let threads: Vec<_> = ["x", "y"]
        .into_iter()
        .map(|who| {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut store = LabelStore::open(&path).expect("open");
                for i in 0..100 {
                    let p = format!("{who}/{i}.png");
                    store.add_tag(item(&p, who), "seen").expect("tag");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    one.refresh().expect("refresh");
    assert_eq!(one.tag_counts(), vec![("seen".to_string(), 200)]);
}

#[test]
fn a_store_locked_by_another_writer_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("labels.sqlite");
    let mut store = LabelStore::open(&path).expect("open");
    store
        .connection_mut()
        .busy_timeout(std::time::Duration::from_millis(50))
        .expect("timeout");
    let other = rusqlite::Connection::open(&path).expect("open");
    other.execute_batch("BEGIN IMMEDIATE").expect("lock");
    let error = store
        .add_tag(item("a/1.png", "a"), "blurry")
        .expect_err("locked");
    assert!(matches!(error, LabelError::Locked { .. }), "{error}");
    assert!(error.to_string().contains("labels.sqlite"), "{error}");
    assert!(error.to_string().contains("locked"), "{error}");
    assert!(!store.has_tag("a/1.png", "blurry"));
    other.execute_batch("ROLLBACK").expect("unlock");
    store.add_tag(item("a/1.png", "a"), "blurry").expect("tag");
}

#[test]
fn an_old_store_gains_the_new_columns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("labels.sqlite");
    {
        let old = rusqlite::Connection::open(&path).expect("open");
        old.execute_batch(
            "CREATE TABLE pair_verdicts (path_a TEXT NOT NULL, path_b TEXT NOT NULL,
             listing_a TEXT NOT NULL, listing_b TEXT NOT NULL, verdict TEXT NOT NULL,
             who TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (path_a, path_b));
             INSERT INTO pair_verdicts VALUES ('a', 'b', 'la', 'lb', 'same', 'me', 'now');",
        )
        .expect("old schema");
    }
    let mut store = LabelStore::open(&path).expect("open");
    assert_eq!(store.verdict_of("a", "b"), Some(Verdict::Same));
    assert_eq!(store.verdict_similarity("a", "b").expect("read"), None);
    store
        .set_verdict(
            item("a", "la"),
            item("c", "lc"),
            Some(Verdict::Different),
            Some(0.1),
        )
        .expect("verdict");
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("labels.sqlite");
    std::fs::write(
        &path,
        "this is not a database, just some text\n".repeat(100),
    )
    .expect("write");
    let before = std::fs::read(&path).expect("read");
    let error = LabelStore::open(&path).err().expect("refused").to_string();
    assert!(error.contains("labels.sqlite"), "{error}");
    assert!(error.contains("damaged or not a label store"), "{error}");
    assert_eq!(std::fs::read(&path).expect("read"), before, "left as it is");
}

/// A real store cut short (a full disk, a bad copy) is refused at every length, and its bytes
/// stay exactly as they were: the analysts' work is never overwritten by a new store.
#[test]
fn a_truncated_store_is_refused_and_left_as_it_is() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("labels.sqlite");
    {
        let mut store = LabelStore::open(&path).expect("open");
        for i in 0..400 {
            let path = format!("listing-{}/view-{i}.png", i / 4);
            store.add_tag(item(&path, "l"), "blurry").expect("tag");
            store
                .set_note(item(&path, "l"), &"a long note ".repeat(8))
                .expect("note");
        }
    }
    let whole = std::fs::read(&path).expect("read");
    assert!(
        whole.len() > 8 * 4096,
        "a store of several pages: {}",
        whole.len()
    );
    // One byte is what SQLite itself would take for an empty database and write a new one over.
    for len in [
        whole.len() / 2,
        whole.len() - 4096,
        3 * 4096,
        4096 + 100,
        1000,
        60,
        1,
    ] {
        let cut = &whole[..len];
        std::fs::write(&path, cut).expect("truncate");
        let error = LabelStore::open(&path)
            .err()
            .unwrap_or_else(|| panic!("a store cut to {len} bytes opened"))
            .to_string();
        assert!(error.contains("labels.sqlite"), "{len}: {error}");
        assert_eq!(
            std::fs::read(&path).expect("read"),
            cut,
            "{len}: left as it is"
        );
    }
}
