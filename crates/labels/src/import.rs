//! Imports of label exports (CSV or JSONL, as [`export_labels`](super::export_labels) writes
//! them) into a store, so labels move between machines and datasets by dataset-relative path.
//! Each record keeps who made it and when; where the store already has the same fact the later
//! one wins, so importing the same file twice changes nothing.

use super::export::{csv_uncell, CSV_HEADER};
use super::store::database_error;
use super::{clean_tag, LabelError, LabelRecord, LabelStore, Verdict};
use rusqlite::{params, OptionalExtension};
use std::path::Path;

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportReport {
    /// Records in the file.
    pub records: usize,
    /// Records added to the store.
    pub added: usize,
    /// Records that replaced an older one.
    pub updated: usize,
    /// Records the store already had (the same, or a later one).
    pub unchanged: usize,
    /// Records naming an item the dataset does not have (left out).
    pub not_in_dataset: usize,
    /// Paths of the first few items not in the dataset, for the message.
    pub missing_examples: Vec<String>,
}

/// Reads the records of a label export: JSONL when the first non-blank character is `{`,
/// else CSV with [`CSV_HEADER`]'s columns (`model` and `similarity` may be missing, as in
/// exports from before they existed). Errors name the file and the line.
pub fn parse_records(path: &Path) -> Result<Vec<LabelRecord>, LabelError> {
    let fail = |message: String| LabelError::Import {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    if text.trim_start().starts_with('{') {
        return text
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(i, line)| {
                serde_json::from_str(line).map_err(|e| fail(format!("line {}: {e}", i + 1)))
            })
            .collect();
    }
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader.headers().map_err(|e| fail(e.to_string()))?.clone();
    for required in &CSV_HEADER[..8] {
        if !header.iter().any(|h| h == *required) {
            return Err(fail(format!(
                "not a natview label export: no `{required}` column (expected {})",
                CSV_HEADER.join(", ")
            )));
        }
    }
    let mut records = Vec::new();
    for (i, row) in reader.deserialize::<CsvRecord>().enumerate() {
        let row = row.map_err(|e| fail(format!("line {}: {e}", i + 2)))?;
        records.push(row.into_record());
    }
    Ok(records)
}

/// A CSV row (empty cells are absent values).
#[derive(serde::Deserialize)]
struct CsvRecord {
    kind: String,
    path: String,
    listing: String,
    #[serde(default)]
    other_path: String,
    #[serde(default)]
    other_listing: String,
    value: String,
    who: String,
    at: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    similarity: String,
}

impl CsvRecord {
    /// The record, each text cell's formula guard (see [`csv_cell`](super::export)) taken off.
    fn into_record(self) -> LabelRecord {
        let some = |s: String| Some(csv_uncell(s)).filter(|s| !s.is_empty());
        LabelRecord {
            kind: csv_uncell(self.kind),
            path: csv_uncell(self.path),
            listing: csv_uncell(self.listing),
            other_path: some(self.other_path),
            other_listing: some(self.other_listing),
            value: csv_uncell(self.value),
            who: csv_uncell(self.who),
            at: csv_uncell(self.at),
            model: some(self.model),
            similarity: self.similarity.parse().ok(),
        }
    }
}

/// Imports the records of `file` into `store`. `listing_of(path)` gives the listing of a
/// dataset item by its dataset-relative path (`None`: not in this dataset, the record is left
/// out and counted); the target dataset's listing replaces the exported one.
pub fn import_labels(
    store: &mut LabelStore,
    file: &Path,
    listing_of: &dyn Fn(&str) -> Option<String>,
) -> Result<ImportReport, LabelError> {
    let records = parse_records(file)?;
    let bad = |line: usize, message: String| LabelError::Import {
        path: file.to_path_buf(),
        message: format!("record {line}: {message}"),
    };
    let mut report = ImportReport {
        records: records.len(),
        ..ImportReport::default()
    };
    let store_path = store.path().to_path_buf();
    let db = |e: rusqlite::Error| database_error(&store_path, e);
    // IMMEDIATE: take the write lock first (a deferred transaction that reads first could
    // not be upgraded once another window has written).
    let transaction = store
        .connection_mut()
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(db)?;
    for (i, record) in records.iter().enumerate() {
        let line = i + 1;
        if !super::timestamp::is_utc_timestamp(&record.at) {
            return Err(bad(
                line,
                format!(
                    "`at` is `{}`, not a UTC time as natview writes them (YYYY-MM-DDTHH:MM:SSZ)",
                    record.at
                ),
            ));
        }
        let Some(listing) = listing_of(&record.path) else {
            report.note_missing(&record.path);
            continue;
        };
        let outcome = match record.kind.as_str() {
            "tag" => {
                let tag = clean_tag(&record.value).map_err(|e| bad(line, e.to_string()))?;
                let at: Option<String> = transaction
                    .query_row(
                        "SELECT at FROM item_tags WHERE path = ?1 AND tag = ?2",
                        params![record.path, tag],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(db)?;
                write_if_newer(at, &record.at, || {
                    transaction.execute(
                        "INSERT OR REPLACE INTO item_tags (path, listing, tag, who, at, model)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![
                            record.path,
                            listing,
                            tag,
                            record.who,
                            record.at,
                            record.model
                        ],
                    )
                })
                .map_err(db)?
            }
            "note" => {
                let at: Option<String> = transaction
                    .query_row(
                        "SELECT at FROM item_notes WHERE path = ?1",
                        params![record.path],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(db)?;
                write_if_newer(at, &record.at, || {
                    transaction.execute(
                        "INSERT OR REPLACE INTO item_notes (path, listing, note, who, at)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![
                            record.path,
                            listing,
                            record.value.trim(),
                            record.who,
                            record.at
                        ],
                    )
                })
                .map_err(db)?
            }
            "pair" => {
                let other = record
                    .other_path
                    .as_deref()
                    .ok_or_else(|| bad(line, "a pair without `other_path`".into()))?;
                let Some(other_listing) = listing_of(other) else {
                    report.note_missing(other);
                    continue;
                };
                let verdict = Verdict::parse(&record.value).ok_or_else(|| {
                    bad(
                        line,
                        format!(
                            "unknown verdict `{}` (same, different or near-duplicate)",
                            record.value
                        ),
                    )
                })?;
                let ((a, la), (b, lb)) = if record.path.as_str() <= other {
                    ((record.path.as_str(), &listing), (other, &other_listing))
                } else {
                    ((other, &other_listing), (record.path.as_str(), &listing))
                };
                let at: Option<String> = transaction
                    .query_row(
                        "SELECT at FROM pair_verdicts WHERE path_a = ?1 AND path_b = ?2",
                        params![a, b],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(db)?;
                write_if_newer(at, &record.at, || {
                    transaction.execute(
                        "INSERT OR REPLACE INTO pair_verdicts
                         (path_a, path_b, listing_a, listing_b, verdict, who, at, model, similarity)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                        params![
                            a,
                            b,
                            la,
                            lb,
                            verdict.as_str(),
                            record.who,
                            record.at,
                            record.model,
                            record.similarity
                        ],
                    )
                })
                .map_err(db)?
            }
            other => {
                return Err(bad(
                    line,
                    format!("unknown kind `{other}` (tag, note or pair)"),
                ))
            }
        };
        match outcome {
            Written::Added => report.added += 1,
            Written::Updated => report.updated += 1,
            Written::Unchanged => report.unchanged += 1,
        }
    }
    transaction.commit().map_err(db)?;
    store.refresh_now()?;
    Ok(report)
}

impl ImportReport {
    fn note_missing(&mut self, path: &str) {
        self.not_in_dataset += 1;
        if self.missing_examples.len() < 5 {
            self.missing_examples.push(path.to_string());
        }
    }
}

enum Written {
    Added,
    Updated,
    Unchanged,
}

/// Writes unless the store's fact (made at `existing`) is as late as the record's (`at`;
/// ISO 8601 UTC strings compare in time order).
fn write_if_newer(
    existing: Option<String>,
    at: &str,
    write: impl FnOnce() -> rusqlite::Result<usize>,
) -> rusqlite::Result<Written> {
    match existing {
        None => write().map(|_| Written::Added),
        Some(old) if old.as_str() < at => write().map(|_| Written::Updated),
        Some(_) => Ok(Written::Unchanged),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{export_labels, ExportFormat, ItemRef};
    use super::*;

    #[test]
    fn an_export_imports_into_another_store_and_dataset_by_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut source = LabelStore::open(&dir.path().join("a.sqlite")).expect("open");
        source.set_model(Some("compact @64px".into()));
        let a = ItemRef {
            path: "shoes/1.jpg",
            listing: "shoes",
        };
        let b = ItemRef {
            path: "bags/2.jpg",
            listing: "bags",
        };
        let gone = ItemRef {
            path: "gone/3.jpg",
            listing: "gone",
        };
        source.add_tag(a, "blurry").expect("tag");
        source.add_tag(gone, "blurry").expect("tag");
        source.set_note(b, "strap, \"torn\"").expect("note");
        source
            .set_verdict(a, b, Some(Verdict::Different), Some(0.31))
            .expect("verdict");
        for format in [ExportFormat::Csv, ExportFormat::Jsonl] {
            let file = dir.path().join(format!("labels.{}", format.extension()));
            export_labels(&source, format, &file).expect("export");
            let mut target =
                LabelStore::open(&dir.path().join(format!("b-{}.sqlite", format.extension())))
                    .expect("open");
            // The other dataset has the same relative paths in other listings, and no gone/3.
            let listing_of =
                |path: &str| (!path.starts_with("gone/")).then(|| format!("new-{}", &path[..4]));
            let report = import_labels(&mut target, &file, &listing_of).expect("import");
            assert_eq!(report.records, 4, "{format:?}");
            assert_eq!(report.added, 3);
            assert_eq!(report.not_in_dataset, 1);
            assert_eq!(report.missing_examples, vec!["gone/3.jpg".to_string()]);
            assert!(target.has_tag("shoes/1.jpg", "blurry"));
            assert_eq!(target.note_of("bags/2.jpg"), Some("strap, \"torn\""));
            assert_eq!(
                target.verdict_of("shoes/1.jpg", "bags/2.jpg"),
                Some(Verdict::Different)
            );
            let similarity = target
                .verdict_similarity("shoes/1.jpg", "bags/2.jpg")
                .expect("read")
                .expect("kept");
            assert!((similarity - 0.31).abs() < 1e-5);
            // The round trip keeps every field but the listing (the target's).
            let mut exported = source.records().expect("records");
            exported.retain(|r| !r.path.starts_with("gone/"));
            let imported = target.records().expect("records");
            assert_eq!(imported.len(), exported.len());
            for (x, y) in exported.iter().zip(&imported) {
                assert_eq!(
                    (&x.kind, &x.path, &x.value, &x.who, &x.at),
                    (&y.kind, &y.path, &y.value, &y.who, &y.at)
                );
                assert_eq!(x.model, y.model);
                assert!(y.listing.starts_with("new-"));
            }
            // Importing again changes nothing.
            let again = import_labels(&mut target, &file, &listing_of).expect("import");
            assert_eq!((again.added, again.updated, again.unchanged), (0, 0, 3));
        }
    }

    #[test]
    fn cells_guarded_against_spreadsheet_formulas_import_exactly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut source = LabelStore::open(&dir.path().join("a.sqlite")).expect("open");
        fn item(path: &str) -> ItemRef<'_> {
            ItemRef {
                path,
                listing: "=listing",
            }
        }
        let texts = [
            "=HYPERLINK(\"http://x\",\"y\")",
            "+1",
            "-2",
            "@SUM(1)",
            "'=already quoted",
            "'plain",
        ];
        for (i, text) in texts.iter().enumerate() {
            let path = format!("-{i}.jpg");
            source.set_note(item(&path), text).expect("note");
        }
        source.add_tag(item("@tagged.jpg"), "-minus").expect("tag");
        // Notes and tags are trimmed; a path may start with a tab or a carriage return.
        source.add_tag(item("\ttab.jpg"), "x").expect("tag");
        source.add_tag(item("\rreturn.jpg"), "y").expect("tag");
        let file = dir.path().join("labels.csv");
        export_labels(&source, ExportFormat::Csv, &file).expect("export");
        let written = std::fs::read_to_string(&file).expect("read");
        assert!(written.contains("'=HYPERLINK"), "{written}");
        assert!(!written.contains(",=listing"), "{written}");
        let mut target = LabelStore::open(&dir.path().join("b.sqlite")).expect("open");
        let report =
            import_labels(&mut target, &file, &|_| Some("=listing".into())).expect("import");
        assert_eq!(report.added, texts.len() + 3);
        assert_eq!(
            target.records().expect("records"),
            source.records().expect("records")
        );
        for (i, text) in texts.iter().enumerate() {
            assert_eq!(target.note_of(&format!("-{i}.jpg")), Some(*text));
        }
        assert!(target.has_tag("@tagged.jpg", "-minus"));
        assert!(target.has_tag("\ttab.jpg", "x") && target.has_tag("\rreturn.jpg", "y"));
    }

    #[test]
    fn a_file_that_is_not_an_export_is_refused_with_its_name_and_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = LabelStore::open(&dir.path().join("s.sqlite")).expect("open");
        let csv = dir.path().join("other.csv");
        std::fs::write(&csv, "path,label\na.jpg,cat\n").expect("write");
        let error = import_labels(&mut store, &csv, &|_| Some("l".into()))
            .expect_err("refused")
            .to_string();
        assert!(
            error.contains("other.csv") && error.contains("`kind`"),
            "{error}"
        );
        let jsonl = dir.path().join("bad.jsonl");
        std::fs::write(&jsonl, "{\"kind\":\"tag\"}\n").expect("write");
        let error = import_labels(&mut store, &jsonl, &|_| Some("l".into()))
            .expect_err("refused")
            .to_string();
        assert!(
            error.contains("bad.jsonl") && error.contains("line 1"),
            "{error}"
        );
        // A time that would not sort as a time is refused rather than winning every conflict.
        let late = dir.path().join("late.jsonl");
        std::fs::write(
            &late,
            "{\"kind\":\"tag\",\"path\":\"a.jpg\",\"listing\":\"l\",\"value\":\"x\",\"who\":\"me\",\"at\":\"yesterday\"}\n",
        )
        .expect("write");
        let error = import_labels(&mut store, &late, &|_| Some("l".into()))
            .expect_err("refused")
            .to_string();
        assert!(error.contains("`at` is `yesterday`"), "{error}");
        assert_eq!(store.records().expect("records").len(), 0);
    }
}
