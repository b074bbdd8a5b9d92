//! Finding the images of a dataset: folder tree (`root/<listing>/<image>`), flat folder (each
//! image its own listing) or a CSV/JSONL manifest (`path`, `listing`, optional `label`, other
//! columns kept as metadata). Problems with single files are reported, never fatal.

use super::csv_manifest::load_csv_manifest;
use super::{is_supported_extension, relative_to, Dataset, DatasetError, Item, Metadata, Skipped};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// How a dataset is laid out on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DatasetKind {
    /// `root/<listing>/<image>`: each subfolder is a listing.
    FolderTree,
    /// A folder of images, each its own listing.
    FlatFolder,
    /// A CSV manifest.
    CsvManifest,
    /// A JSON-lines manifest.
    JsonlManifest,
}

/// Loads a dataset from a folder or a manifest file, choosing the layout from what is there.
pub fn load_dataset(path: &Path) -> Result<Dataset, DatasetError> {
    if !path.exists() {
        return Err(DatasetError::NotFound {
            path: path.to_path_buf(),
        });
    }
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let mut dataset = if path.is_file() {
        match extension.as_deref() {
            Some("csv") | Some("tsv") => load_csv_manifest(path)?,
            Some("jsonl") | Some("ndjson") => load_jsonl_manifest(path)?,
            _ => {
                return Err(DatasetError::Manifest {
                    path: path.to_path_buf(),
                    message: "not a dataset: expected a folder or a .csv/.jsonl manifest".into(),
                })
            }
        }
    } else if let Some(manifest) = folder_manifest(path) {
        // A folder that carries its own manifest is that manifest (its listings, labels and
        // metadata), not a flat folder of images.
        return load_dataset(&manifest);
    } else {
        load_folder(path)?
    };
    if dataset.items.is_empty() {
        return Err(DatasetError::Empty {
            path: path.to_path_buf(),
            skipped: dataset.skipped.len(),
        });
    }
    for (id, item) in dataset.items.iter_mut().enumerate() {
        item.id = id;
    }
    Ok(dataset)
}

/// The manifest at a folder's root that describes it: `manifest.csv`, `manifest.tsv`,
/// `manifest.jsonl` or `manifest.ndjson`, the first that exists.
pub fn folder_manifest(dir: &Path) -> Option<PathBuf> {
    [
        "manifest.csv",
        "manifest.tsv",
        "manifest.jsonl",
        "manifest.ndjson",
    ]
    .iter()
    .map(|name| dir.join(name))
    .find(|candidate| candidate.is_file())
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    let entries = std::fs::read_dir(dir).map_err(|source| DatasetError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            !p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'))
        })
        .collect();
    paths.sort();
    Ok(paths)
}

/// Checks one candidate image file; `Err` holds the reason it is skipped.
fn check_image_file(path: &Path) -> Result<(), String> {
    match std::fs::metadata(path) {
        Err(e) if is_supported_extension(path) => Err(format!("cannot read file: {e}")),
        Err(_) => check_extension(path),
        Ok(m) => check_image_metadata(path, &m),
    }
}

fn check_extension(path: &Path) -> Result<(), String> {
    if is_supported_extension(path) {
        return Ok(());
    }
    Err(match path.extension().and_then(|e| e.to_str()) {
        Some(ext) => format!("unsupported file type .{ext}"),
        None => "unsupported file type (no extension)".into(),
    })
}

/// Whether a file whose metadata was read can be an image: a supported extension, not empty.
fn check_image_metadata(path: &Path, metadata: &std::fs::Metadata) -> Result<(), String> {
    check_extension(path)?;
    if metadata.len() == 0 {
        return Err("empty file (0 bytes)".into());
    }
    Ok(())
}

/// `path` with `.` components dropped and `..` taken back where possible (no file system
/// access).
fn lexically_normal(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// A manifest row with its file looked at and its columns sorted out.
pub(super) struct PreparedRow {
    number: usize,
    /// The `path` column (`None`: empty).
    rel: Option<PathBuf>,
    full: PathBuf,
    metadata: std::io::Result<std::fs::Metadata>,
    /// The path with `.` and `..` resolved (duplicates are found by it).
    key: PathBuf,
    listing: String,
    label: Option<String>,
    columns: Metadata,
}

fn prepare_row(root: &Path, mut row: ManifestRow) -> PreparedRow {
    let raw = row.columns.remove("path").unwrap_or_default();
    let listing = row.columns.remove("listing");
    let label = row.columns.remove("label");
    prepare_parts(root, row.number, raw, listing, label, row.columns.into())
}

/// A row from its parts: the file looked at (one `stat`), the listing defaulting to the file
/// name, an empty label dropped.
pub(super) fn prepare_parts(
    root: &Path,
    number: usize,
    raw: String,
    listing: Option<String>,
    label: Option<String>,
    columns: Metadata,
) -> PreparedRow {
    let rel = (!raw.is_empty()).then(|| PathBuf::from(raw));
    let full = match &rel {
        Some(rel) if rel.is_absolute() => rel.clone(),
        Some(rel) => root.join(rel),
        None => root.to_path_buf(),
    };
    let metadata = match &rel {
        Some(_) => std::fs::metadata(&full),
        None => Err(std::io::Error::from(std::io::ErrorKind::NotFound)),
    };
    // Duplicates are found by the path with `.` and `..` resolved; resolving symbolic links
    // too (`canonicalize`, a look at every path component) cost seconds at a million rows and
    // only ever mattered for links.
    let key = lexically_normal(&full);
    let listing = listing.filter(|l| !l.is_empty()).unwrap_or_else(|| {
        rel.as_deref()
            .and_then(Path::file_stem)
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    PreparedRow {
        number,
        rel,
        full,
        metadata,
        key,
        listing,
        label: label.filter(|l| !l.is_empty()),
        columns,
    }
}

fn load_folder(root: &Path) -> Result<Dataset, DatasetError> {
    let entries = read_dir_sorted(root)?;
    let has_subfolders = entries.iter().any(|p| p.is_dir());
    let mut items = Vec::new();
    let mut skipped = Vec::new();
    // Each folder is listed once, however many links lead to it (a link to a parent folder
    // would otherwise list everything again at every depth the system allows).
    let mut listed = ListedFolders::default();
    // The root itself: nothing was listed before it.
    let _ = listed.first_visit(root);
    for entry in entries {
        if entry.is_dir() {
            if let Err(skip) = listed.first_visit(&entry) {
                skipped.push(skip);
                continue;
            }
            let listing = file_name(&entry);
            let mut files = Vec::new();
            collect_files(&entry, &mut files, &mut skipped, &mut listed)?;
            let before = items.len();
            for file in files {
                push_file(root, &file, listing.clone(), &mut items, &mut skipped);
            }
            if items.len() == before {
                skipped.push(Skipped {
                    path: entry.clone(),
                    reason: "folder contains no readable images".into(),
                });
            }
        } else {
            let listing = entry
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            push_file(root, &entry, listing, &mut items, &mut skipped);
        }
    }
    Ok(Dataset {
        source: root.to_path_buf(),
        root: root.to_path_buf(),
        kind: if has_subfolders {
            DatasetKind::FolderTree
        } else {
            DatasetKind::FlatFolder
        },
        items,
        skipped,
        file_stamps: Vec::new(),
    })
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The folders a folder dataset has listed, by their real place (links resolved).
#[derive(Default)]
struct ListedFolders(std::collections::HashSet<PathBuf>);

impl ListedFolders {
    /// Records `dir`; when it was listed before, `Err` holds the report of it to skip. A
    /// folder whose real place cannot be found is listed (its read reports the problem).
    fn first_visit(&mut self, dir: &Path) -> Result<(), Skipped> {
        match std::fs::canonicalize(dir) {
            Ok(real) if self.0.contains(&real) => Err(Skipped {
                path: dir.to_path_buf(),
                reason: format!("folder already listed (it is {})", real.display()),
            }),
            Ok(real) => {
                self.0.insert(real);
                Ok(())
            }
            Err(_) => Ok(()),
        }
    }
}

fn collect_files(
    dir: &Path,
    files: &mut Vec<PathBuf>,
    skipped: &mut Vec<Skipped>,
    listed: &mut ListedFolders,
) -> Result<(), DatasetError> {
    match read_dir_sorted(dir) {
        Ok(entries) => {
            for entry in entries {
                if entry.is_dir() {
                    match listed.first_visit(&entry) {
                        Ok(()) => collect_files(&entry, files, skipped, listed)?,
                        Err(skip) => skipped.push(skip),
                    }
                } else {
                    files.push(entry);
                }
            }
        }
        Err(e) => skipped.push(Skipped {
            path: dir.to_path_buf(),
            reason: e.to_string(),
        }),
    }
    Ok(())
}

fn push_file(
    root: &Path,
    file: &Path,
    listing: String,
    items: &mut Vec<Item>,
    skipped: &mut Vec<Skipped>,
) {
    match check_image_file(file) {
        Ok(()) => items.push(Item {
            id: items.len(),
            path: relative_to(file, root),
            listing,
            label: None,
            metadata: Metadata::default(),
        }),
        Err(reason) => skipped.push(Skipped {
            path: file.to_path_buf(),
            reason,
        }),
    }
}

/// One manifest row as string columns, with its 1-based line/row number.
struct ManifestRow {
    number: usize,
    columns: BTreeMap<String, String>,
}

pub(super) fn manifest_root(path: &Path) -> PathBuf {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

pub(super) fn no_path_column(manifest: &Path, headers: &[String]) -> DatasetError {
    DatasetError::Manifest {
        path: manifest.to_path_buf(),
        message: format!(
            "no `path` column (columns: {})",
            if headers.is_empty() {
                "none".to_string()
            } else {
                headers.join(", ")
            }
        ),
    }
}

fn load_jsonl_manifest(path: &Path) -> Result<Dataset, DatasetError> {
    let text = std::fs::read_to_string(path).map_err(|source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    let mut headers: Vec<String> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(line) {
            Ok(object) => {
                let columns: BTreeMap<String, String> = object
                    .into_iter()
                    .map(|(k, v)| {
                        let value = match v {
                            serde_json::Value::String(s) => s,
                            serde_json::Value::Null => String::new(),
                            other => other.to_string(),
                        };
                        (k, value)
                    })
                    .collect();
                for key in columns.keys() {
                    if !headers.contains(key) {
                        headers.push(key.clone());
                    }
                }
                rows.push(ManifestRow { number, columns });
            }
            Err(e) => skipped.push(Skipped {
                path: PathBuf::from(format!("{}:{number}", path.display())),
                reason: format!("not a JSON object: {e}"),
            }),
        }
    }
    rows_to_dataset(path, DatasetKind::JsonlManifest, &headers, rows, skipped)
}

fn rows_to_dataset(
    manifest: &Path,
    kind: DatasetKind,
    headers: &[String],
    rows: Vec<ManifestRow>,
    skipped: Vec<Skipped>,
) -> Result<Dataset, DatasetError> {
    if !headers.iter().any(|h| h == "path") {
        return Err(no_path_column(manifest, headers));
    }
    let root = manifest_root(manifest);
    // Every row is prepared in parallel — its file looked at (one `stat`), its listing, label
    // and metadata taken out — a million rows take seconds one after another.
    let prepared: Vec<PreparedRow> = {
        use rayon::prelude::*;
        rows.into_par_iter()
            .map(|row| prepare_row(&root, row))
            .collect()
    };
    Ok(prepared_to_dataset(manifest, kind, root, prepared, skipped))
}

/// Takes prepared rows in order, reporting empty, missing, duplicate and unreadable ones.
pub(super) fn prepared_to_dataset(
    manifest: &Path,
    kind: DatasetKind,
    root: PathBuf,
    prepared: Vec<PreparedRow>,
    mut skipped: Vec<Skipped>,
) -> Dataset {
    let mut items = Vec::with_capacity(prepared.len());
    let mut file_stamps = Vec::with_capacity(prepared.len());
    let mut first_row_of_path: HashMap<PathBuf, usize, xxhash_rust::xxh3::Xxh3DefaultBuilder> =
        HashMap::with_capacity_and_hasher(prepared.len(), Default::default());
    for row in prepared {
        let PreparedRow {
            number,
            rel,
            full,
            metadata,
            key,
            listing,
            label,
            columns,
        } = row;
        let Some(rel) = rel else {
            skipped.push(Skipped {
                path: PathBuf::from(format!("{}:{number}", manifest.display())),
                reason: "row has an empty `path`".into(),
            });
            continue;
        };
        let Ok(metadata) = metadata else {
            skipped.push(Skipped {
                path: full,
                reason: format!("file not found (manifest row {number})"),
            });
            continue;
        };
        if let Some(first) = first_row_of_path.get(&key) {
            skipped.push(Skipped {
                path: full,
                reason: format!(
                    "duplicate path (manifest row {number}, first listed in row {first})"
                ),
            });
            continue;
        }
        if let Err(reason) = check_image_metadata(&full, &metadata) {
            skipped.push(Skipped { path: full, reason });
            continue;
        }
        first_row_of_path.insert(key, number);
        file_stamps.push(super::file_stamp(&metadata));
        items.push(Item {
            id: items.len(),
            path: rel,
            listing,
            label,
            metadata: columns,
        });
    }
    Dataset {
        source: manifest.to_path_buf(),
        root,
        kind,
        items,
        skipped,
        file_stamps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_png(path: &Path) {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create dir");
        }
        image::RgbImage::from_pixel(4, 4, image::Rgb([200, 10, 10]))
            .save(path)
            .expect("write png");
    }

    #[test]
    fn folder_tree_groups_views_by_subfolder_and_reports_strays() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_png(&dir.path().join("cat/a.png"));
        write_png(&dir.path().join("cat/b.png"));
        write_png(&dir.path().join("dog/a.png"));
        std::fs::write(dir.path().join("dog/notes.txt"), "hi").expect("write");
        std::fs::create_dir_all(dir.path().join("empty")).expect("mkdir");
        let ds = load_dataset(dir.path()).expect("loads");
        assert_eq!(ds.kind, DatasetKind::FolderTree);
        assert_eq!(ds.items.len(), 3);
        assert_eq!(ds.listing_count(), 2);
        let reasons: Vec<String> = ds.skipped.iter().map(|s| s.to_string()).collect();
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert!(reasons
            .iter()
            .any(|r| r.contains("notes.txt: unsupported file type .txt")));
        assert!(reasons
            .iter()
            .any(|r| r.contains("empty: folder contains no readable images")));
    }

    #[cfg(unix)]
    #[test]
    fn links_to_folders_already_listed_are_followed_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_png(&dir.path().join("cat/a.png"));
        write_png(&dir.path().join("cat/b.png"));
        write_png(&dir.path().join("dog/a.png"));
        // A loop back to the dataset root, one to the listing itself, and a second name for
        // a listing.
        std::os::unix::fs::symlink("..", dir.path().join("cat/up")).expect("symlink");
        std::os::unix::fs::symlink(".", dir.path().join("dog/here")).expect("symlink");
        std::os::unix::fs::symlink("cat", dir.path().join("kitten")).expect("symlink");
        let ds = load_dataset(dir.path()).expect("loads");
        let paths: Vec<String> = ds
            .items
            .iter()
            .map(|i| i.path.display().to_string())
            .collect();
        assert_eq!(paths, vec!["cat/a.png", "cat/b.png", "dog/a.png"]);
        let reasons: Vec<String> = ds.skipped.iter().map(|s| s.to_string()).collect();
        let real = |p: &str| dir.path().join(p).canonicalize().expect("real path");
        assert!(
            reasons.contains(&format!(
                "{}: folder already listed (it is {})",
                dir.path().join("cat/up").display(),
                real(".").display()
            )),
            "{reasons:#?}"
        );
        assert!(
            reasons.contains(&format!(
                "{}: folder already listed (it is {})",
                dir.path().join("kitten").display(),
                real("cat").display()
            )),
            "{reasons:#?}"
        );
        assert!(reasons
            .iter()
            .any(|r| r.contains("dog/here: folder already listed")));
        assert_eq!(reasons.len(), 3, "{reasons:#?}");
    }

    #[test]
    fn csv_manifest_keeps_label_and_metadata_and_skips_bad_rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_png(&dir.path().join("img/1.png"));
        write_png(&dir.path().join("img/2.png"));
        let manifest = dir.path().join("m.csv");
        std::fs::write(
            &manifest,
            "path,listing,label,colour\nimg/1.png,L1,animal,red\nimg/2.png,L1,animal,blue\nimg/missing.png,L2,x,y\nimg/1.png,L3,dup,z\n,L4,,\n",
        )
        .expect("write");
        let ds = load_dataset(&manifest).expect("loads");
        assert_eq!(ds.items.len(), 2);
        assert_eq!(ds.items[1].label.as_deref(), Some("animal"));
        assert_eq!(
            ds.items[1].metadata.get("colour").map(String::as_str),
            Some("blue")
        );
        let reasons: Vec<String> = ds.skipped.iter().map(|s| s.to_string()).collect();
        assert!(reasons
            .iter()
            .any(|r| r.contains("missing.png: file not found (manifest row 4)")));
        assert!(reasons
            .iter()
            .any(|r| r.contains("duplicate path (manifest row 5, first listed in row 2)")));
        assert!(reasons
            .iter()
            .any(|r| r.contains("m.csv:6: row has an empty `path`")));
    }

    #[test]
    fn jsonl_manifest_without_path_column_is_refused_with_the_file_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let manifest = dir.path().join("m.jsonl");
        std::fs::write(&manifest, "{\"file\":\"a.png\"}\n").expect("write");
        let err = load_dataset(&manifest).expect_err("must fail").to_string();
        assert!(
            err.contains("m.jsonl") && err.contains("no `path` column"),
            "{err}"
        );
    }

    #[test]
    fn a_folder_without_images_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("readme.md"), "x").expect("write");
        let err = load_dataset(dir.path()).expect_err("must fail").to_string();
        assert!(err.contains("no images found (1 file(s) skipped)"), "{err}");
    }
}
