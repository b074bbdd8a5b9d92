//! Helpers shared by the integration tests: small real datasets cut from the committed demo.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The committed demo dataset's image folder.
pub fn demo_images() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo/images")
}

/// Copies the first `listings` demo listings (all their views) into `dir/tree/<listing>/…`
/// and returns the tree's root.
pub fn demo_slice(dir: &Path, listings: usize) -> PathBuf {
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
        for view in std::fs::read_dir(listing).expect("listing folder") {
            let view = view.expect("entry").path();
            std::fs::copy(&view, target.join(view.file_name().expect("name"))).expect("copy");
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
