//! The SQLite label store with an in-memory mirror: reads come from memory (the GUI asks every
//! frame), every change is written through to SQLite at once (WAL, one small transaction).
//! Several windows or processes may hold one store: each waits up to [`BUSY_TIMEOUT`] for
//! another's write, reloads its mirror when another connection has committed (SQLite's
//! `data_version`), and says clearly when the store stays locked.

use super::{clean_tag, LabelError, Verdict};
use rusqlite::{params, Connection, ErrorCode, OptionalExtension};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// How long a write waits for another connection's write to finish before giving up.
pub const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

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

/// Columns added after the first schema (old stores gain them when opened): the encoder in use
/// when a label was made, and the pair's cosine similarity under it at the time of a verdict.
const ADDED_COLUMNS: [(&str, &str, &str); 3] = [
    ("item_tags", "model", "TEXT"),
    ("pair_verdicts", "model", "TEXT"),
    ("pair_verdicts", "similarity", "REAL"),
];

/// Each item's tags, by path.
pub(super) type TagMap = HashMap<String, BTreeSet<String>>;
/// The verdicts, by sorted path pair.
pub(super) type VerdictMap = HashMap<(String, String), Verdict>;

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
    tags: TagMap,
    notes: HashMap<String, String>,
    verdicts: VerdictMap,
    /// The encoder recorded with new labels.
    pub(super) model: Option<String>,
    /// SQLite's `data_version` when the mirror was last loaded.
    data_version: i64,
}

impl LabelStore {
    /// Opens (creating if needed) the store at `path`, loading everything into memory.
    pub fn open(path: &Path) -> Result<Self, LabelError> {
        let db = |e: rusqlite::Error| database_error(path, e);
        check_file_shape(path)?;
        let connection = Connection::open(path).map_err(db)?;
        connection.busy_timeout(BUSY_TIMEOUT).map_err(db)?;
        // Before anything that could write: a damaged store holds the analysts' work and is
        // never rebuilt or overwritten, only refused as it is.
        check_integrity(&connection, path)?;
        // WAL + NORMAL: each change is one quick commit that survives the app being killed,
        // and readers never block the one writer.
        connection
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))
            .map_err(db)?;
        connection
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(db)?;
        connection.execute_batch(SCHEMA).map_err(db)?;
        add_missing_columns(&connection).map_err(db)?;
        let mut store = Self {
            connection,
            path: path.to_path_buf(),
            who: analyst_name(),
            tag_set: Vec::new(),
            tags: HashMap::new(),
            notes: HashMap::new(),
            verdicts: HashMap::new(),
            model: None,
            data_version: 0,
        };
        store.load().map_err(db)?;
        Ok(store)
    }

    /// Sets the encoder recorded with the labels made from now on (e.g. `compact @64px`).
    pub fn set_model(&mut self, model: Option<String>) {
        self.model = model;
    }

    /// Reloads the mirror if another connection (a second window, `natview labels import`)
    /// has written since it was loaded; returns whether it did. Cheap: one pragma read.
    pub fn refresh(&mut self) -> Result<bool, LabelError> {
        let version = self.current_data_version().map_err(|e| self.db_error(e))?;
        if version == self.data_version {
            return Ok(false);
        }
        self.load().map_err(|e| self.db_error(e))?;
        Ok(true)
    }

    /// Reloads the mirror from the file (after this connection wrote around it).
    pub(super) fn refresh_now(&mut self) -> Result<(), LabelError> {
        self.load().map_err(|e| self.db_error(e))
    }

    fn current_data_version(&self) -> rusqlite::Result<i64> {
        self.connection
            .query_row("PRAGMA data_version", [], |r| r.get(0))
    }

    fn load(&mut self) -> rusqlite::Result<()> {
        self.data_version = self.current_data_version()?;
        self.tags.clear();
        self.notes.clear();
        self.verdicts.clear();
        let mut tag_set: Vec<String> = DEFAULT_TAG_SET.iter().map(|s| s.to_string()).collect();
        let mut statement = self.connection.prepare("SELECT key, name FROM tag_set")?;
        for row in statement.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))? {
            let (key, name) = row?;
            // Keys 1..=TAG_KEYS name the tag set's slots; other rows are left out.
            if let Ok(key @ 1..=TAG_KEYS) = usize::try_from(key) {
                tag_set[key - 1] = name;
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

    pub(super) fn db_error(&self, e: rusqlite::Error) -> LabelError {
        database_error(&self.path, e)
    }

    /// The verdicts as (path, path, verdict), the paths of each pair in sorted order.
    pub fn verdicts(&self) -> impl Iterator<Item = (&str, &str, Verdict)> {
        self.verdicts
            .iter()
            .map(|((a, b), &v)| (a.as_str(), b.as_str(), v))
    }

    /// The verdicts keyed by sorted path pair.
    pub(super) fn verdict_map(&self) -> &HashMap<(String, String), Verdict> {
        &self.verdicts
    }

    /// Every tagged item's path with its tags.
    pub fn tagged_items(&self) -> impl Iterator<Item = (&str, &BTreeSet<String>)> {
        self.tags.iter().map(|(p, t)| (p.as_str(), t))
    }

    /// The mirror's tags, notes and verdicts, for the change functions.
    pub(super) fn mirror(
        &mut self,
    ) -> (&mut TagMap, &mut HashMap<String, String>, &mut VerdictMap) {
        (&mut self.tags, &mut self.notes, &mut self.verdicts)
    }

    /// The connection, for the change functions.
    pub(super) fn connection_mut(&mut self) -> &mut Connection {
        &mut self.connection
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
        self.refresh()?;
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

    /// The note on an item.
    pub fn note_of(&self, path: &str) -> Option<&str> {
        self.notes.get(path).map(String::as_str)
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

/// A store error naming the file; a store another connection keeps locked past
/// [`BUSY_TIMEOUT`] gets [`LabelError::Locked`].
pub(super) fn database_error(path: &Path, e: rusqlite::Error) -> LabelError {
    if let rusqlite::Error::SqliteFailure(code, _) = &e {
        if matches!(
            code.code,
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked
        ) {
            return LabelError::Locked {
                path: path.to_path_buf(),
            };
        }
    }
    LabelError::Database {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// The error for a store that is damaged or not a store at all: it names the file and says it
/// was left as it is.
fn damaged(path: &Path, message: &str) -> LabelError {
    LabelError::Database {
        path: path.to_path_buf(),
        message: format!(
            "the label store is damaged or not a label store ({message}); natview left the \
             file as it is: restore it from a backup, or move it away to start a new store"
        ),
    }
}

/// Size of SQLite's file header.
const SQLITE_HEADER_BYTES: usize = 100;

/// Checks what SQLite itself would take on trust: an existing, non-empty store starts with
/// SQLite's header and is a whole number of its pages (a store cut short could otherwise be
/// taken for an empty one, and the schema written over it).
fn check_file_shape(path: &Path) -> Result<(), LabelError> {
    use std::io::Read;
    let Ok(mut file) = std::fs::File::open(path) else {
        return Ok(()); // missing: SQLite creates it (or says why it cannot)
    };
    let len = file
        .metadata()
        .map_err(|e| damaged(path, &e.to_string()))?
        .len();
    if len == 0 {
        return Ok(());
    }
    let mut header = [0u8; SQLITE_HEADER_BYTES];
    if file.read_exact(&mut header).is_err() || !header.starts_with(b"SQLite format 3\0") {
        return Err(damaged(path, "no SQLite header"));
    }
    let page = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536,
        size => u64::from(size),
    };
    if !page.is_power_of_two() || page < 512 || len % page != 0 {
        return Err(damaged(
            path,
            &format!("{len} bytes is not a whole number of {page}-byte pages"),
        ));
    }
    Ok(())
}

/// SQLite's `quick_check` of the store (every page, record and index entry readable; a few
/// milliseconds for a store of thousands of labels). It only reads: a file that is not a
/// store, or a damaged one, is an error naming it and stays exactly as it was.
fn check_integrity(connection: &Connection, path: &Path) -> Result<(), LabelError> {
    let problems: Vec<String> = connection
        .prepare("PRAGMA quick_check")
        .and_then(|mut statement| {
            statement
                .query_map([], |row| row.get::<_, String>(0))?
                .collect::<rusqlite::Result<_>>()
        })
        .map_err(|e| match database_error(path, e) {
            LabelError::Database { message, .. } => damaged(path, &message),
            other => other,
        })?;
    match problems.as_slice() {
        [ok] if ok == "ok" => Ok(()),
        _ => Err(damaged(path, &problems.join("; "))),
    }
}

/// Adds the [`ADDED_COLUMNS`] a store made by an older natview lacks.
fn add_missing_columns(connection: &Connection) -> rusqlite::Result<()> {
    for (table, column, kind) in ADDED_COLUMNS {
        let mut statement = connection.prepare(&format!("PRAGMA table_info({table})"))?;
        let names: Vec<String> = statement
            .query_map([], |r| r.get::<_, String>(1))?
            .collect::<rusqlite::Result<_>>()?;
        if !names.iter().any(|n| n == column) {
            connection.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"))?;
        }
    }
    Ok(())
}

pub(super) fn pair_key(a: &str, b: &str) -> (String, String) {
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
#[path = "store_tests.rs"]
mod tests;
