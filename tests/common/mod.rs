//! Helpers shared by the integration tests: small real datasets cut from the committed demo.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the natview binary in `workdir` (quiet, on the CPU).
pub fn natview(args: &[&str], workdir: &Path) -> Output {
    natview_env(args, workdir, &[])
}

/// As [`natview`], with environment variables set (`Some`) or removed (`None`).
pub fn natview_env(args: &[&str], workdir: &Path, env: &[(&str, Option<&str>)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_natview"));
    command
        .args(args)
        .arg("--quiet")
        .arg("--cpu")
        .current_dir(workdir);
    for (name, value) in env {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    command.output().expect("natview runs")
}

/// The value of `var`, which names a server or tool that `what` needs. Under CI (`CI` set) a
/// missing one fails the test, so that CI is green only where the test really ran; elsewhere
/// the test says that it is skipped.
pub fn required_env(var: &str, what: &str) -> Option<String> {
    if let Some(value) = std::env::var(var).ok().filter(|v| !v.is_empty()) {
        return Some(value);
    }
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    assert!(
        !ci,
        "{var} is unset, but CI is: {what} must run in CI (.ci/run sets {var})"
    );
    eprintln!("{var} unset: {what} skipped");
    None
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Copies the first view of the first listing of `root` into the second listing as
/// `reupload.<ext>` (a duplicate across listings); returns the copy's dataset-relative path.
pub fn plant_reupload(root: &Path) -> String {
    let mut listings: Vec<PathBuf> = std::fs::read_dir(root)
        .expect("root")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir() && !p.ends_with(".natview"))
        .collect();
    listings.sort();
    let mut originals: Vec<PathBuf> = std::fs::read_dir(&listings[0])
        .expect("listing")
        .map(|e| e.expect("entry").path())
        .collect();
    originals.sort();
    let extension = originals[0]
        .extension()
        .and_then(|e| e.to_str())
        .expect("extension")
        .to_string();
    let name = format!("reupload.{extension}");
    std::fs::copy(&originals[0], listings[1].join(&name)).expect("copy");
    format!(
        "{}/{name}",
        listings[1].file_name().expect("name").to_string_lossy()
    )
}

/// The committed demo dataset's image folder.
pub fn demo_images() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo/images")
}

/// Copies the first `listings` demo listings (all their views) into `dir/tree/<listing>/…`
/// and returns the tree's root.
pub fn demo_slice(dir: &Path, listings: usize) -> PathBuf {
    demo_slice_views(dir, listings, usize::MAX)
}

/// Copies the first `views` views (in name order) of the first `listings` demo listings into
/// `dir/tree/<listing>/…` and returns the tree's root.
pub fn demo_slice_views(dir: &Path, listings: usize, views: usize) -> PathBuf {
    let root = dir.join("tree");
    let mut names: Vec<PathBuf> = std::fs::read_dir(demo_images())
        .expect("demo images exist")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    names.sort();
    for listing in names.iter().take(listings) {
        let target = root.join(listing.file_name().expect("name"));
        std::fs::create_dir_all(&target).expect("mkdir");
        let mut files: Vec<PathBuf> = std::fs::read_dir(listing)
            .expect("listing folder")
            .map(|view| view.expect("entry").path())
            .collect();
        files.sort();
        for view in files.iter().take(views) {
            std::fs::copy(view, target.join(view.file_name().expect("name"))).expect("copy");
        }
    }
    root
}

/// Adds the bad inputs of the issue to a folder tree: a truncated PNG, a zero-byte file, a text
/// file named .jpg, a folder with no images. Returns their paths (truncated, empty, fake jpg,
/// empty folder).
pub fn add_bad_files(root: &Path) -> [PathBuf; 4] {
    let first_listing = std::fs::read_dir(root)
        .expect("root")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .min()
        .expect("a listing");
    let good = std::fs::read_dir(&first_listing)
        .expect("listing")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .min()
        .expect("a view");
    let bytes = std::fs::read(&good).expect("read");
    let truncated = first_listing.join("truncated.png");
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).expect("write");
    let empty = first_listing.join("empty.png");
    std::fs::write(&empty, b"").expect("write");
    let fake = first_listing.join("notes.jpg");
    std::fs::write(&fake, "this is not a JPEG\n").expect("write");
    let no_images = root.join("no-images-here");
    std::fs::create_dir_all(&no_images).expect("mkdir");
    std::fs::write(no_images.join("README.txt"), "nothing").expect("write");
    [truncated, empty, fake, no_images]
}

/// The cosine similarity of two vectors (for comparing embeddings with a library's).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

/// The mean absolute difference of two same-sized images' bytes, in grey levels.
pub fn mean_abs_diff(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let total: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| u64::from(x.abs_diff(y)))
        .sum();
    total as f64 / a.as_raw().len() as f64
}

/// The first listing folder of a dataset made by [`demo_slice`].
pub fn first_listing(root: &Path) -> PathBuf {
    std::fs::read_dir(root)
        .expect("root")
        .map(|e| e.expect("entry").path())
        .find(|p| p.is_dir())
        .expect("a listing")
}
