//! The SQLite label store with an in-memory mirror: reads come from memory (the GUI asks every
//! frame), every change is written through to SQLite at once (WAL, one small transaction).

use super::{clean_tag, utc_timestamp, LabelError, Verdict};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// Number of tags bound to the keys 1–9.
pub const TAG_KEYS: usize = 9;

/// The tag set a new store starts with (key 1 first); analysts rename them as they need.
pub const DEFAULT_TAG_SET: [&str; TAG_KEYS] = [
    "good view",
    "wrong listing",
    "duplicate",
    "blurry",
    "cropped",
    "text or watermark",
    "several items",
    "off-topic",
    "check again",
];

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tag_set (
    key INTEGER PRIMARY KEY CHECK (key BETWEEN 1 AND 9),
    name TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS item_tags (
    path TEXT NOT NULL,
    listing TEXT NOT NULL,
    tag TEXT NOT NULL,
    who TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (path, tag)
);
CREATE TABLE IF NOT EXISTS item_notes (
    path TEXT PRIMARY KEY,
    listing TEXT NOT NULL,
    note TEXT NOT NULL,
    who TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pair_verdicts (
    path_a TEXT NOT NULL,
    path_b TEXT NOT NULL,
    listing_a TEXT NOT NULL,
    listing_b TEXT NOT NULL,
    verdict TEXT NOT NULL,
    who TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (path_a, path_b)
);
";

/// An item as the store knows it: its dataset-relative path and its listing.
#[derive(Debug, Clone, Copy)]
pub struct ItemRef<'a> {
    /// Path relative to the dataset root.
    pub path: &'a str,
    /// Listing name.
    pub listing: &'a str,
}

/// Tags, notes and pair verdicts of one dataset.
pub struct LabelStore {
    connection: Connection,
    path: PathBuf,
    who: String,
    tag_set: Vec<String>,
    tags: HashMap<String, BTreeSet<String>>,
    notes: HashMap<String, String>,
    verdicts: HashMap<(String, String), Verdict>,
}

impl LabelStore {
    /// Opens (creating if needed) the store at `path`, loading everything into memory.
    pub fn open(path: &Path) -> Result<Self, LabelError> {
        let db = |e: rusqlite::Error| LabelError::Database {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let connection = Connection::open(path).map_err(db)?;
        // WAL + NORMAL: each change is one quick commit that survives the app being killed.
        connection
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))
            .map_err(db)?;
        connection
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(db)?;
        connection.execute_batch(SCHEMA).map_err(db)?;
        let mut store = Self {
            connection,
            path: path.to_path_buf(),
            who: analyst_name(),
            tag_set: Vec::new(),
            tags: HashMap::new(),
            notes: HashMap::new(),
            verdicts: HashMap::new(),
        };
        store.load().map_err(db)?;
        Ok(store)
    }

    fn load(&mut self) -> rusqlite::Result<()> {
        let mut tag_set: Vec<String> = DEFAULT_TAG_SET.iter().map(|s| s.to_string()).collect();
        let mut statement = self.connection.prepare("SELECT key, name FROM tag_set")?;
        for row in statement.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))? {
            let (key, name) = row?;
            if (1..=TAG_KEYS as i64).contains(&key) {
                tag_set[(key - 1) as usize] = name;
            }
        }
        self.tag_set = tag_set;
        let mut statement = self.connection.prepare("SELECT path, tag FROM item_tags")?;
        for row in
            statement.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        {
            let (path, tag) = row?;
            self.tags.entry(path).or_default().insert(tag);
        }
        let mut statement = self
            .connection
            .prepare("SELECT path, note FROM item_notes")?;
        for row in
            statement.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        {
            let (path, note) = row?;
            self.notes.insert(path, note);
        }
        let mut statement = self
            .connection
            .prepare("SELECT path_a, path_b, verdict FROM pair_verdicts")?;
        for row in statement.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })? {
            let (a, b, verdict) = row?;
            if let Some(verdict) = Verdict::parse(&verdict) {
                self.verdicts.insert((a, b), verdict);
            }
        }
        Ok(())
    }

    fn db_error(&self, e: rusqlite::Error) -> LabelError {
        LabelError::Database {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Who is recorded as the author of changes (`$NATVIEW_ANALYST`, else `$USER`).
    pub fn who(&self) -> &str {
        &self.who
    }

    /// The tag names bound to keys 1–9 (index 0 = key 1).
    pub fn tag_set(&self) -> &[String] {
        &self.tag_set
    }

    /// Renames the tag bound to `key` (1–9). Items keep the tags they already have.
    pub fn rename_tag_key(&mut self, key: usize, name: &str) -> Result<(), LabelError> {
        let name = clean_tag(name)?;
        if !(1..=TAG_KEYS).contains(&key) {
            return Err(LabelError::InvalidTag(format!("key {key}")));
        }
        self.connection
            .execute(
                "INSERT INTO tag_set (key, name) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET name = excluded.name",
                params![key as i64, name],
            )
            .map_err(|e| self.db_error(e))?;
        self.tag_set[key - 1] = name;
        Ok(())
    }

    /// The tags of an item, sorted.
    pub fn tags_of(&self, path: &str) -> Option<&BTreeSet<String>> {
        self.tags.get(path)
    }

    /// Whether the item carries `tag`.
    pub fn has_tag(&self, path: &str, tag: &str) -> bool {
        self.tags.get(path).is_some_and(|t| t.contains(tag))
    }

    /// Adds `tag` to the item, or removes it if it is there; returns whether it is there now.
    pub fn toggle_tag(&mut self, item: ItemRef<'_>, tag: &str) -> Result<bool, LabelError> {
        let tag = clean_tag(tag)?;
        if self.has_tag(item.path, &tag) {
            self.connection
                .execute(
                    "DELETE FROM item_tags WHERE path = ?1 AND tag = ?2",
                    params![item.path, tag],
                )
                .map_err(|e| self.db_error(e))?;
            if let Some(tags) = self.tags.get_mut(item.path) {
                tags.remove(&tag);
                if tags.is_empty() {
                    self.tags.remove(item.path);
                }
            }
            Ok(false)
        } else {
            self.add_tag(item, &tag)?;
            Ok(true)
        }
    }

    /// Adds `tag` to the item (no change if it has it).
    pub fn add_tag(&mut self, item: ItemRef<'_>, tag: &str) -> Result<(), LabelError> {
        let tag = clean_tag(tag)?;
        self.connection
            .execute(
                "INSERT OR REPLACE INTO item_tags (path, listing, tag, who, at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![item.path, item.listing, tag, self.who, utc_timestamp()],
            )
            .map_err(|e| self.db_error(e))?;
        self.tags
            .entry(item.path.to_string())
            .or_default()
            .insert(tag);
        Ok(())
    }

    /// The note on an item.
    pub fn note_of(&self, path: &str) -> Option<&str> {
        self.notes.get(path).map(String::as_str)
    }

    /// Sets the note on an item (an empty or blank note removes it).
    pub fn set_note(&mut self, item: ItemRef<'_>, note: &str) -> Result<(), LabelError> {
        let note = note.trim();
        if note.is_empty() {
            self.connection
                .execute("DELETE FROM item_notes WHERE path = ?1", params![item.path])
                .map_err(|e| self.db_error(e))?;
            self.notes.remove(item.path);
            return Ok(());
        }
        if self.note_of(item.path) == Some(note) {
            return Ok(());
        }
        self.connection
            .execute(
                "INSERT OR REPLACE INTO item_notes (path, listing, note, who, at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![item.path, item.listing, note, self.who, utc_timestamp()],
            )
            .map_err(|e| self.db_error(e))?;
        self.notes.insert(item.path.to_string(), note.to_string());
        Ok(())
    }

    /// The verdict on a pair (in either order).
    pub fn verdict_of(&self, a: &str, b: &str) -> Option<Verdict> {
        self.verdicts.get(&pair_key(a, b)).copied()
    }

    /// Records a verdict on a pair, or clears it with `None`.
    pub fn set_verdict(
        &mut self,
        a: ItemRef<'_>,
        b: ItemRef<'_>,
        verdict: Option<Verdict>,
    ) -> Result<(), LabelError> {
        let (first, second) = if a.path <= b.path { (a, b) } else { (b, a) };
        let key = (first.path.to_string(), second.path.to_string());
        match verdict {
            None => {
                self.connection
                    .execute(
                        "DELETE FROM pair_verdicts WHERE path_a = ?1 AND path_b = ?2",
                        params![first.path, second.path],
                    )
                    .map_err(|e| self.db_error(e))?;
                self.verdicts.remove(&key);
            }
            Some(verdict) => {
                self.connection
                    .execute(
                        "INSERT OR REPLACE INTO pair_verdicts
                         (path_a, path_b, listing_a, listing_b, verdict, who, at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        params![
                            first.path,
                            second.path,
                            first.listing,
                            second.listing,
                            verdict.as_str(),
                            self.who,
                            utc_timestamp()
                        ],
                    )
                    .map_err(|e| self.db_error(e))?;
                self.verdicts.insert(key, verdict);
            }
        }
        Ok(())
    }

    /// How many items carry each tag, most used first.
    pub fn tag_counts(&self) -> Vec<(String, usize)> {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for tags in self.tags.values() {
            for tag in tags {
                *counts.entry(tag.as_str()).or_default() += 1;
            }
        }
        let mut counts: Vec<(String, usize)> = counts
            .into_iter()
            .map(|(t, n)| (t.to_string(), n))
            .collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        counts
    }

    /// How many pairs carry each verdict (in [`Verdict::ALL`] order).
    pub fn verdict_counts(&self) -> [(Verdict, usize); 3] {
        Verdict::ALL.map(|v| (v, self.verdicts.values().filter(|&&x| x == v).count()))
    }

    /// Number of notes.
    pub fn note_count(&self) -> usize {
        self.notes.len()
    }

    /// The underlying connection, for exports.
    pub(crate) fn connection(&self) -> &Connection {
        &self.connection
    }

    /// Reads the stored timestamp of an item's tag (for tests and exports).
    pub fn tagged_at(&self, path: &str, tag: &str) -> Result<Option<String>, LabelError> {
        self.connection
            .query_row(
                "SELECT at FROM item_tags WHERE path = ?1 AND tag = ?2",
                params![path, tag],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.db_error(e))
    }
}

fn pair_key(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_string(), b.to_string())
    } else {
        (b.to_string(), a.to_string())
    }
}

fn analyst_name() -> String {
    std::env::var("NATVIEW_ANALYST")
        .or_else(|_| std::env::var("USER"))
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "analyst".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item<'a>(path: &'a str, listing: &'a str) -> ItemRef<'a> {
        ItemRef { path, listing }
    }

    #[test]
    fn changes_are_on_disk_as_soon_as_they_are_made() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("labels.sqlite");
        let mut store = LabelStore::open(&path).expect("open");
        assert_eq!(store.tag_set()[0], DEFAULT_TAG_SET[0]);
        assert!(store
            .toggle_tag(item("a/1.png", "a"), "blurry")
            .expect("tag"));
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
        assert_eq!(reopened.tag_set()[8], "reshoot");
        drop(reopened);

        // Toggling again removes; clearing a verdict and a note removes them.
        assert!(!store
            .toggle_tag(item("a/1.png", "a"), "blurry")
            .expect("untag"));
        store
            .set_verdict(item("a/1.png", "a"), item("b/1.png", "b"), None)
            .expect("clear");
        store.set_note(item("a/1.png", "a"), " ").expect("clear");
        let reopened = LabelStore::open(&path).expect("reopen");
        assert!(!reopened.has_tag("a/1.png", "blurry"));
        assert_eq!(reopened.verdict_of("b/1.png", "a/1.png"), None);
        assert_eq!(reopened.note_of("a/1.png"), None);
        assert_eq!(reopened.tag_counts(), vec![("my own tag".to_string(), 1)]);
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
        let error = LabelStore::open(&path).err().expect("refused").to_string();
        assert!(error.contains("labels.sqlite"), "{error}");
    }
}
