//! Delimited manifests: comma-, semicolon- or tab-separated (the delimiter is sniffed from the
//! header line), one row per image with `path`, optional `listing` and `label`, and any other
//! columns kept as metadata. A row whose field count differs from the header's is reported and
//! left out, never read by position.

use super::loader::PreparedRow;
use super::loader::{manifest_root, no_path_column, prepare_parts, prepared_to_dataset};
use super::{Dataset, DatasetError, DatasetKind, Metadata, Skipped};
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// The delimiters a manifest may use, in order of preference on a tie.
const DELIMITERS: [u8; 3] = [b',', b'\t', b';'];

/// The delimiter of a header line: the candidate occurring most often outside double quotes
/// (a comma when none occurs, e.g. a single `path` column).
pub fn sniff_delimiter(header: &str) -> u8 {
    let mut counts = [0usize; DELIMITERS.len()];
    let mut quoted = false;
    for byte in header.bytes() {
        if byte == b'"' {
            quoted = !quoted;
        } else if !quoted {
            if let Some(i) = DELIMITERS.iter().position(|d| *d == byte) {
                counts[i] += 1;
            }
        }
    }
    let best = (0..DELIMITERS.len())
        .max_by_key(|&i| (counts[i], std::cmp::Reverse(i)))
        .unwrap_or(0);
    DELIMITERS[best]
}

/// The first line of `path` (its header), for sniffing.
fn first_line(path: &Path) -> Result<String, DatasetError> {
    let file = std::fs::File::open(path).map_err(|source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut line = String::new();
    std::io::BufReader::new(file)
        .read_line(&mut line)
        .map_err(|source| DatasetError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(line)
}

/// Loads a delimited manifest.
pub(super) fn load_csv_manifest(path: &Path) -> Result<Dataset, DatasetError> {
    let manifest_error = |message: String| DatasetError::Manifest {
        path: path.to_path_buf(),
        message,
    };
    let delimiter = sniff_delimiter(first_line(path)?.trim_start_matches('\u{feff}'));
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_path(path)
        .map_err(|e| manifest_error(e.to_string()))?;
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| manifest_error(e.to_string()))?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_string())
        .collect();
    if !headers.iter().any(|h| h == "path") {
        return Err(no_path_column(path, &headers));
    }
    let row_name = |number: usize| PathBuf::from(format!("{}:{number}", path.display()));
    let mut records = Vec::new();
    let mut skipped = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let number = index + 2; // the header is line 1
        match record {
            Ok(record) if record.len() != headers.len() => skipped.push(Skipped {
                path: row_name(number),
                reason: format!(
                    "row has {} field(s), the header has {} ({})",
                    record.len(),
                    headers.len(),
                    delimiter_name(delimiter)
                ),
            }),
            Ok(record) => records.push((number, record)),
            Err(e) => skipped.push(Skipped {
                path: row_name(number),
                reason: format!("unreadable row: {e}"),
            }),
        }
    }
    let root = manifest_root(path);
    // Each record is prepared in parallel straight from its fields (no map of strings per
    // row: at a million rows that alone took seconds).
    let prepared: Vec<PreparedRow> = {
        use rayon::prelude::*;
        records
            .into_par_iter()
            .map(|(number, record)| prepare_record(&root, &headers, number, &record))
            .collect()
    };
    Ok(prepared_to_dataset(
        path,
        DatasetKind::CsvManifest,
        root,
        prepared,
        skipped,
    ))
}

/// How a delimiter is named in messages.
fn delimiter_name(delimiter: u8) -> &'static str {
    match delimiter {
        b'\t' => "tab-separated",
        b';' => "semicolon-separated",
        _ => "comma-separated",
    }
}

/// A record as a prepared row: `path`, `listing` and `label` by column name, every other
/// column kept as metadata.
fn prepare_record(
    root: &Path,
    headers: &[String],
    number: usize,
    record: &csv::StringRecord,
) -> PreparedRow {
    let (mut raw, mut listing, mut label) = (String::new(), None, None);
    let mut columns = Metadata::default();
    for (header, value) in headers.iter().zip(record.iter()) {
        let value = value.trim();
        match header.as_str() {
            "path" => raw = value.to_string(),
            "listing" => listing = Some(value.to_string()),
            "label" => label = Some(value.to_string()),
            _ => columns.insert(header.clone(), value.to_string()),
        }
    }
    prepare_parts(root, number, raw, listing, label, columns)
}

/// `value` as one field of a comma-separated line: quoted (inner quotes doubled) when it holds
/// a comma, a quote or a line break, as the manifest reader expects.
pub fn csv_field(value: &str) -> std::borrow::Cow<'_, str> {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\"")).into()
    } else {
        value.into()
    }
}

#[cfg(test)]
mod tests {
    use super::super::load_dataset;
    use super::*;

    fn write_png(path: &Path) {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("mkdir");
        }
        image::RgbImage::from_pixel(4, 4, image::Rgb([9, 99, 199]))
            .save(path)
            .expect("png");
    }

    #[test]
    fn the_delimiter_is_sniffed_from_the_header() {
        assert_eq!(sniff_delimiter("path,listing,label\n"), b',');
        assert_eq!(sniff_delimiter("path;listing;label\n"), b';');
        assert_eq!(sniff_delimiter("path\tlisting\tlabel\n"), b'\t');
        // A delimiter inside a quoted header does not count.
        assert_eq!(sniff_delimiter("path;\"a,b,c\";label\n"), b';');
        assert_eq!(sniff_delimiter("path\n"), b',');
    }

    #[test]
    fn semicolon_and_tab_manifests_load_and_bad_rows_are_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in ["a.png", "b.png", "c.png"] {
            write_png(&dir.path().join("img").join(name));
        }
        for (file, sep) in [("m.csv", ";"), ("m.tsv", "\t")] {
            let manifest = dir.path().join(file);
            let rows = [
                ["path", "listing", "label"].join(sep),
                ["img/a.png", "L1", "cat"].join(sep),
                ["img/b.png", "L1", "cat"].join(sep),
                ["img/c.png", "L2"].join(sep),
                ["img/c.png", "L2", "dog", "extra"].join(sep),
            ];
            std::fs::write(&manifest, rows.join("\n") + "\n").expect("write");
            let ds = load_dataset(&manifest).expect("loads");
            assert_eq!(ds.items.len(), 2, "{file}");
            assert_eq!(ds.items[0].listing, "L1");
            assert_eq!(ds.items[0].label.as_deref(), Some("cat"));
            let reasons: Vec<String> = ds.skipped.iter().map(|s| s.to_string()).collect();
            assert!(
                reasons.iter().any(|r| r.contains(&format!("{file}:4"))
                    && r.contains("row has 2 field(s), the header has 3")),
                "{reasons:?}"
            );
            assert!(
                reasons
                    .iter()
                    .any(|r| r.contains(&format!("{file}:5")) && r.contains("row has 4 field(s)")),
                "{reasons:?}"
            );
        }
    }

    #[test]
    fn a_folder_with_a_manifest_at_its_root_opens_as_that_manifest() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in ["a.png", "b.png"] {
            write_png(&dir.path().join("images").join(name));
        }
        std::fs::write(
            dir.path().join("manifest.csv"),
            "path,listing\nimages/a.png,L1\nimages/b.png,L1\n",
        )
        .expect("write");
        let ds = load_dataset(dir.path()).expect("loads");
        assert_eq!(ds.kind, DatasetKind::CsvManifest);
        assert_eq!(ds.items.len(), 2);
        assert!(ds.items.iter().all(|item| item.listing == "L1"));
        assert!(ds.skipped.is_empty(), "{:?}", ds.skipped);
    }
}
