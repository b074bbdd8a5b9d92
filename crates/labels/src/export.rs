//! Exports of the label store: one record per tag, note and pair verdict, as CSV or JSONL.

use super::{LabelError, LabelStore};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Export file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

impl std::str::FromStr for ExportFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_lowercase().as_str() {
            "csv" => Ok(ExportFormat::Csv),
            "jsonl" | "ndjson" => Ok(ExportFormat::Jsonl),
            other => Err(format!(
                "unknown label export format `{other}` (csv or jsonl)"
            )),
        }
    }
}

impl ExportFormat {
    /// The usual file extension.
    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Jsonl => "jsonl",
        }
    }
}

/// One exported fact. `kind` is `tag`, `note` or `pair`; for pairs `other_path` and
/// `other_listing` name the second item and `value` is the verdict (`same`, `different`,
/// `near-duplicate`); for tags `value` is the tag, for notes the text. `model` is the encoder
/// in use when the label was made and, for pairs, `similarity` the pair's cosine under it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelRecord {
    /// `tag`, `note` or `pair`.
    pub kind: String,
    /// The item's path relative to the dataset root (the first of a pair).
    pub path: String,
    /// Its listing.
    pub listing: String,
    /// The second item of a pair.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_path: Option<String>,
    /// The second item's listing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_listing: Option<String>,
    /// The tag, note text or verdict.
    pub value: String,
    /// Who made it.
    pub who: String,
    /// When (ISO 8601, UTC).
    pub at: String,
    /// The encoder in use when it was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// A pair's cosine similarity under `model` when the verdict was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub similarity: Option<f64>,
}

/// The queries behind [`LabelStore::records`]: each selects `kind, path, listing, other_path,
/// other_listing, value, who, at, model, similarity` (the `other_` columns and `similarity`
/// NULL except for pairs).
const RECORD_QUERIES: [&str; 3] = [
    "SELECT 'tag', path, listing, NULL, NULL, tag, who, at, model, NULL
     FROM item_tags ORDER BY path, tag",
    "SELECT 'note', path, listing, NULL, NULL, note, who, at, NULL, NULL
     FROM item_notes ORDER BY path",
    "SELECT 'pair', path_a, listing_a, path_b, listing_b, verdict, who, at, model, similarity
     FROM pair_verdicts ORDER BY path_a, path_b",
];

/// The CSV header of an export (the field names of [`LabelRecord`]).
pub(super) const CSV_HEADER: [&str; 10] = [
    "kind",
    "path",
    "listing",
    "other_path",
    "other_listing",
    "value",
    "who",
    "at",
    "model",
    "similarity",
];

impl LabelStore {
    /// Every record in the store: tags, then notes, then pairs, each sorted by path.
    pub fn records(&self) -> Result<Vec<LabelRecord>, LabelError> {
        let db = |e: rusqlite::Error| LabelError::Database {
            path: self.path().to_path_buf(),
            message: e.to_string(),
        };
        let mut records = Vec::new();
        for query in RECORD_QUERIES {
            let mut statement = self.connection().prepare(query).map_err(db)?;
            let rows = statement
                .query_map([], |r| {
                    Ok(LabelRecord {
                        kind: r.get(0)?,
                        path: r.get(1)?,
                        listing: r.get(2)?,
                        other_path: r.get(3)?,
                        other_listing: r.get(4)?,
                        value: r.get(5)?,
                        who: r.get(6)?,
                        at: r.get(7)?,
                        model: r.get(8)?,
                        similarity: r.get(9)?,
                    })
                })
                .map_err(db)?;
            for row in rows {
                records.push(row.map_err(db)?);
            }
        }
        Ok(records)
    }
}

/// First characters that make a spreadsheet read a cell as a formula (OWASP, "CSV injection").
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Whether a text cell gets a leading `'` in the CSV export: it starts like a formula, perhaps
/// after quotes of its own (those get one more, so that [`csv_uncell`] is exact).
fn needs_quote(text: &str) -> bool {
    text.trim_start_matches('\'').starts_with(FORMULA_STARTS)
}

/// A text cell as the CSV export writes it: `'` in front of one a spreadsheet would run as a
/// formula (`=…`, `+…`, `-…`, `@…`, a leading tab or carriage return), the rest as it is.
pub(super) fn csv_cell(text: &str) -> std::borrow::Cow<'_, str> {
    if needs_quote(text) {
        format!("'{text}").into()
    } else {
        text.into()
    }
}

/// The text of a cell [`csv_cell`] wrote: its leading `'` taken off where `csv_cell` put one.
pub(super) fn csv_uncell(cell: String) -> String {
    match cell.strip_prefix('\'') {
        Some(rest) if needs_quote(rest) => rest.to_string(),
        _ => cell,
    }
}

/// Serialises records as CSV (with a header) or JSONL. CSV text cells that a spreadsheet would
/// read as formulas get a leading `'` (see [`csv_cell`]; `natview labels import` takes it off);
/// JSONL keeps every value as it is.
pub fn render_records(records: &[LabelRecord], format: ExportFormat) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    match format {
        ExportFormat::Jsonl => {
            for record in records {
                serde_json::to_writer(&mut bytes, record).map_err(|e| e.to_string())?;
                bytes.push(b'\n');
            }
        }
        ExportFormat::Csv => {
            let mut writer = csv::Writer::from_writer(&mut bytes);
            writer.write_record(CSV_HEADER).map_err(|e| e.to_string())?;
            for r in records {
                let similarity = r.similarity.map(|s| format!("{s:.6}")).unwrap_or_default();
                let text = [
                    r.kind.as_str(),
                    &r.path,
                    &r.listing,
                    r.other_path.as_deref().unwrap_or(""),
                    r.other_listing.as_deref().unwrap_or(""),
                    &r.value,
                    &r.who,
                    &r.at,
                    r.model.as_deref().unwrap_or(""),
                ]
                .map(csv_cell);
                // The similarity is a number natview formats (a minus sign is no formula).
                writer
                    .write_record(
                        text.iter()
                            .map(|c| c.as_bytes())
                            .chain([similarity.as_bytes()]),
                    )
                    .map_err(|e| e.to_string())?;
            }
            writer.flush().map_err(|e| e.to_string())?;
        }
    }
    Ok(bytes)
}

/// Writes every record of `store` to `out` (temp file + rename); returns the number of records.
pub fn export_labels(
    store: &LabelStore,
    format: ExportFormat,
    out: &Path,
) -> Result<usize, LabelError> {
    let records = store.records()?;
    let export_error = |message: String| LabelError::Export {
        path: out.to_path_buf(),
        message,
    };
    let bytes = render_records(&records, format).map_err(export_error)?;
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| export_error(e.to_string()))?;
    }
    natview_core::workspace::write_atomic(out, &bytes).map_err(|e| export_error(e.to_string()))?;
    Ok(records.len())
}

#[cfg(test)]
mod tests {
    use super::super::store::ItemRef;
    use super::super::Verdict;
    use super::*;

    #[test]
    fn csv_cells_that_start_like_formulas_get_a_quote_that_comes_off_again() {
        for (text, cell) in [
            ("=SUM(A1:A9)", "'=SUM(A1:A9)"),
            ("+1", "'+1"),
            ("-2", "'-2"),
            ("@cmd", "'@cmd"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("'=x", "''=x"),
            ("'plain", "'plain"),
            ("a=b", "a=b"),
            ("", ""),
        ] {
            assert_eq!(csv_cell(text), cell, "{text:?}");
            assert_eq!(csv_uncell(cell.to_string()), text, "{cell:?}");
        }
    }

    #[test]
    fn csv_and_jsonl_hold_every_record() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = LabelStore::open(&dir.path().join("labels.sqlite")).expect("open");
        let a = ItemRef {
            path: "a/1.png",
            listing: "a",
        };
        let b = ItemRef {
            path: "b/1.png",
            listing: "b, with a comma",
        };
        store.add_tag(a, "blurry").expect("tag");
        store.set_note(b, "line one, \"quoted\"").expect("note");
        store
            .set_verdict(a, b, Some(Verdict::Different), Some(0.25))
            .expect("verdict");

        let csv_path = dir.path().join("out/labels.csv");
        assert_eq!(
            export_labels(&store, ExportFormat::Csv, &csv_path).expect("csv"),
            3
        );
        let mut reader = csv::Reader::from_path(&csv_path).expect("read csv");
        let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
        assert_eq!(rows.len(), 3);
        assert_eq!(&rows[0][0], "tag");
        assert_eq!(&rows[0][5], "blurry");
        assert_eq!(&rows[1][5], "line one, \"quoted\"");
        assert_eq!(&rows[2][0], "pair");
        assert_eq!(&rows[2][4], "b, with a comma");
        assert_eq!(&rows[2][5], "different");
        assert_eq!(&rows[2][9], "0.250000");

        let jsonl_path = dir.path().join("labels.jsonl");
        export_labels(&store, ExportFormat::Jsonl, &jsonl_path).expect("jsonl");
        let text = std::fs::read_to_string(&jsonl_path).expect("read");
        let values: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        assert_eq!(values.len(), 3);
        assert_eq!(values[2]["other_path"], "b/1.png");
        assert_eq!(values[2]["value"], "different");
        assert!(values[0].get("other_path").is_none());
    }
}
