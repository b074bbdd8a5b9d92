//! Changes to the label store: tags (one item or many at once), notes and pair verdicts, each
//! written to SQLite before the mirror changes, and the [`LabelChange`] that undoes it.
//! Every change first reloads the mirror if another connection wrote, so a toggle acts on
//! what is on disk, not on what this window saw last.

use super::store::{database_error, pair_key};
use super::{clean_tag, utc_timestamp, ItemRef, LabelError, LabelStore, Verdict};
use rusqlite::params;

/// What a change did, so that it can be undone.
#[derive(Debug, Clone, PartialEq)]
pub enum LabelChange {
    /// `tag` was added to (`added`) or removed from the items; each as (path, listing).
    Tags {
        /// The tag.
        tag: String,
        /// Whether it was added (else removed).
        added: bool,
        /// The items whose tags changed (items that already were as asked are not here).
        items: Vec<(String, String)>,
    },
    /// A pair's verdict changed from `before`.
    Verdict {
        /// First item (path, listing).
        a: (String, String),
        /// Second item (path, listing).
        b: (String, String),
        /// The verdict before the change.
        before: Option<Verdict>,
        /// The similarity recorded with `before`, if any.
        before_similarity: Option<f32>,
    },
}

impl LabelChange {
    /// A short description for an undo button or notice ("tag `blurry` on 40 images").
    pub fn describe(&self) -> String {
        match self {
            LabelChange::Tags { tag, added, items } => format!(
                "{} `{tag}` {} {} image{}",
                if *added { "tag" } else { "untag" },
                if *added { "on" } else { "from" },
                items.len(),
                if items.len() == 1 { "" } else { "s" }
            ),
            LabelChange::Verdict { a, b, .. } => format!("verdict on {} ↔ {}", a.0, b.0),
        }
    }
}

impl LabelStore {
    /// Adds `tag` to the item, or removes it if it is there; returns what changed.
    pub fn toggle_tag(&mut self, item: ItemRef<'_>, tag: &str) -> Result<LabelChange, LabelError> {
        let tag = clean_tag(tag)?;
        self.refresh()?;
        let add = !self.has_tag(item.path, &tag);
        self.set_tag_on(&[item], &tag, add)
    }

    /// Adds `tag` to the item (no change if it has it).
    pub fn add_tag(&mut self, item: ItemRef<'_>, tag: &str) -> Result<LabelChange, LabelError> {
        self.set_tag_on(&[item], tag, true)
    }

    /// Adds (`add`) or removes `tag` on every item in one transaction; items already as asked
    /// are left alone. Returns the change (its `items` are the ones that changed).
    pub fn set_tag_on(
        &mut self,
        items: &[ItemRef<'_>],
        tag: &str,
        add: bool,
    ) -> Result<LabelChange, LabelError> {
        let tag = clean_tag(tag)?;
        let (who, at, model) = (self.who().to_string(), utc_timestamp(), self.model.clone());
        let store_path = self.path().to_path_buf();
        let db = |e: rusqlite::Error| database_error(&store_path, e);
        // IMMEDIATE: the write lock is taken (waiting out another window's write) before what
        // is on disk is read, so nothing can change between deciding and writing.
        let transaction = self
            .connection_mut()
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db)?;
        let changing: Vec<(String, String)> = {
            let mut has = transaction
                .prepare("SELECT 1 FROM item_tags WHERE path = ?1 AND tag = ?2")
                .map_err(db)?;
            let mut changing = Vec::new();
            for item in items {
                let there = has.exists(params![item.path, tag]).map_err(db)?;
                if there != add {
                    changing.push((item.path.to_string(), item.listing.to_string()));
                }
            }
            changing
        };
        {
            let mut insert = transaction
                .prepare(
                    "INSERT OR REPLACE INTO item_tags (path, listing, tag, who, at, model)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(db)?;
            let mut delete = transaction
                .prepare("DELETE FROM item_tags WHERE path = ?1 AND tag = ?2")
                .map_err(db)?;
            for (path, listing) in &changing {
                if add {
                    insert.execute(params![path, listing, tag, who, at, model])
                } else {
                    delete.execute(params![path, tag])
                }
                .map_err(db)?;
            }
        }
        transaction.commit().map_err(db)?;
        // Other windows' writes, then this one's.
        self.refresh()?;
        let (tags, _, _) = self.mirror();
        for (path, _) in &changing {
            if add {
                tags.entry(path.clone()).or_default().insert(tag.clone());
            } else if let Some(set) = tags.get_mut(path) {
                set.remove(&tag);
                if set.is_empty() {
                    tags.remove(path);
                }
            }
        }
        Ok(LabelChange::Tags {
            tag,
            added: add,
            items: changing,
        })
    }

    /// Sets the note on an item (an empty or blank note removes it).
    pub fn set_note(&mut self, item: ItemRef<'_>, note: &str) -> Result<(), LabelError> {
        self.refresh()?;
        let note = note.trim();
        if note.is_empty() {
            self.connection_mut()
                .execute("DELETE FROM item_notes WHERE path = ?1", params![item.path])
                .map_err(|e| self.db_error(e))?;
            self.mirror().1.remove(item.path);
            return Ok(());
        }
        if self.note_of(item.path) == Some(note) {
            return Ok(());
        }
        let (who, at) = (self.who().to_string(), utc_timestamp());
        self.connection_mut()
            .execute(
                "INSERT OR REPLACE INTO item_notes (path, listing, note, who, at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![item.path, item.listing, note, who, at],
            )
            .map_err(|e| self.db_error(e))?;
        self.mirror()
            .1
            .insert(item.path.to_string(), note.to_string());
        Ok(())
    }

    /// The verdict on a pair (in either order).
    pub fn verdict_of(&self, a: &str, b: &str) -> Option<Verdict> {
        self.verdict_map().get(&pair_key(a, b)).copied()
    }

    /// Records a verdict on a pair (with the pair's cosine similarity under the current model,
    /// when known), or clears it with `None`. Returns the change.
    pub fn set_verdict(
        &mut self,
        a: ItemRef<'_>,
        b: ItemRef<'_>,
        verdict: Option<Verdict>,
        similarity: Option<f32>,
    ) -> Result<LabelChange, LabelError> {
        self.refresh()?;
        let (first, second) = if a.path <= b.path { (a, b) } else { (b, a) };
        let before = self.verdict_of(first.path, second.path);
        let before_similarity = self.verdict_similarity(first.path, second.path)?;
        let key = (first.path.to_string(), second.path.to_string());
        match verdict {
            None => {
                self.connection_mut()
                    .execute(
                        "DELETE FROM pair_verdicts WHERE path_a = ?1 AND path_b = ?2",
                        params![first.path, second.path],
                    )
                    .map_err(|e| self.db_error(e))?;
                self.mirror().2.remove(&key);
            }
            Some(verdict) => {
                let (who, at, model) =
                    (self.who().to_string(), utc_timestamp(), self.model.clone());
                self.connection_mut()
                    .execute(
                        "INSERT OR REPLACE INTO pair_verdicts
                         (path_a, path_b, listing_a, listing_b, verdict, who, at, model, similarity)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                        params![
                            first.path,
                            second.path,
                            first.listing,
                            second.listing,
                            verdict.as_str(),
                            who,
                            at,
                            model,
                            similarity.map(f64::from)
                        ],
                    )
                    .map_err(|e| self.db_error(e))?;
                self.mirror().2.insert(key, verdict);
            }
        }
        Ok(LabelChange::Verdict {
            a: (first.path.to_string(), first.listing.to_string()),
            b: (second.path.to_string(), second.listing.to_string()),
            before,
            before_similarity,
        })
    }

    /// The similarity recorded with a pair's verdict (`None` if none was recorded).
    pub fn verdict_similarity(&self, a: &str, b: &str) -> Result<Option<f32>, LabelError> {
        let (first, second) = pair_key(a, b);
        let value: Option<Option<f64>> = self
            .connection()
            .query_row(
                "SELECT similarity FROM pair_verdicts WHERE path_a = ?1 AND path_b = ?2",
                params![first, second],
                |r| r.get(0),
            )
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })
            .map_err(|e| self.db_error(e))?;
        // Stored widened from f32 (f64::from), so this narrows back exactly; an imported value
        // rounds to the nearest f32.
        let similarity = value.flatten().map(natview_core::linalg::narrow);
        Ok(similarity)
    }

    /// Undoes a change (as returned by the functions above); returns the change that redoes it.
    pub fn undo(&mut self, change: &LabelChange) -> Result<LabelChange, LabelError> {
        match change {
            LabelChange::Tags { tag, added, items } => {
                let refs: Vec<ItemRef<'_>> = items
                    .iter()
                    .map(|(path, listing)| ItemRef { path, listing })
                    .collect();
                self.set_tag_on(&refs, tag, !added)
            }
            LabelChange::Verdict {
                a,
                b,
                before,
                before_similarity,
            } => self.set_verdict(
                ItemRef {
                    path: &a.0,
                    listing: &a.1,
                },
                ItemRef {
                    path: &b.0,
                    listing: &b.1,
                },
                *before,
                *before_similarity,
            ),
        }
    }
}
