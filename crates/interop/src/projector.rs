//! TensorBoard's Embedding Projector files: `vectors.tsv` (one tab-separated vector per line),
//! `metadata.tsv` (a header line, then one row per vector), `sprite.png` (the thumbnails in a
//! square grid, row by row) and `projector_config.pbtxt` tying them together. Load the folder
//! in TensorBoard (`tensorboard --logdir DIR`) or the standalone projector.

use super::InteropError;
use image::RgbImage;
use natview_core::workspace::write_atomic;
use natview_pipeline::thumbs::ThumbnailStore;
use natview_pipeline::EmbeddingSet;
use std::fmt::Write as _;
use std::path::Path;

/// The projector's largest sprite side (pixels): larger sprites are not shown.
const MAX_SPRITE_SIDE: u32 = 8192;

/// Thumbnails are drawn at most this large in the sprite.
const MAX_CELL: u32 = 64;

/// Below this cell size a sprite is left out (nothing recognisable at that size).
const MIN_CELL: u32 = 8;

/// A metadata field as one TSV cell: tabs and line breaks become spaces (the format has no
/// quoting), and an empty value a placeholder (the projector drops empty trailing cells).
fn cell(value: &str) -> String {
    let cleaned: String = value
        .chars()
        .map(|c| {
            if matches!(c, '\t' | '\n' | '\r') {
                ' '
            } else {
                c
            }
        })
        .collect();
    if cleaned.is_empty() {
        "-".into()
    } else {
        cleaned
    }
}

/// `metadata.tsv`: `id`, `path`, `listing`, `label` and every metadata column of the set.
pub fn metadata_tsv(set: &EmbeddingSet) -> String {
    let mut columns: Vec<&str> = set
        .items
        .iter()
        .flat_map(|item| item.metadata.iter().map(|(k, _)| k.as_str()))
        .collect();
    columns.sort_unstable();
    columns.dedup();
    let mut out = String::from("id\tpath\tlisting\tlabel");
    for column in &columns {
        out.push('\t');
        out.push_str(&cell(column));
    }
    out.push('\n');
    for item in &set.items {
        let _ = write!(
            out,
            "{}\t{}\t{}\t{}",
            item.id,
            cell(&item.path.to_string_lossy()),
            cell(&item.listing),
            cell(item.label.as_deref().unwrap_or(""))
        );
        for column in &columns {
            out.push('\t');
            out.push_str(&cell(item.metadata.get(column).map_or("", String::as_str)));
        }
        out.push('\n');
    }
    out
}

/// `vectors.tsv`: each row's values, tab-separated, in full precision.
pub fn vectors_tsv(set: &EmbeddingSet) -> String {
    let mut out = String::with_capacity(set.matrix.data.len() * 11);
    for row in set.matrix.data.chunks_exact(set.matrix.dim.max(1)) {
        for (i, value) in row.iter().enumerate() {
            if i > 0 {
                out.push('\t');
            }
            let _ = write!(out, "{value}");
        }
        out.push('\n');
    }
    out
}

/// Cells per side of the square sprite of `count` thumbnails: ⌈√count⌉, at least 1.
#[expect(
    clippy::cast_possible_truncation,
    reason = "the square root of a usize is at most 2^32, and a float-to-int `as` saturates at \
              u32::MAX"
)]
fn sprite_side(count: usize) -> u32 {
    (count as f64).sqrt().ceil().max(1.0) as u32
}

/// The sprite's cell side for `count` thumbnails (`None`: too many to show).
pub fn sprite_cell(count: usize) -> Option<u32> {
    let per_side = sprite_side(count);
    let cell = (MAX_SPRITE_SIDE / per_side).min(MAX_CELL);
    (cell >= MIN_CELL).then_some(cell)
}

/// The sprite: thumbnail `i` at column `i % side`, row `i / side` (grey where none is stored).
fn sprite(thumbnails: &ThumbnailStore, count: usize, cell: u32) -> RgbImage {
    let per_side = sprite_side(count);
    let mut sprite = RgbImage::from_pixel(per_side * cell, per_side * cell, image::Rgb([128; 3]));
    // The cells in reading order: cell i is (i % per_side, i / per_side), with no u32 index.
    let cells = (0..per_side).flat_map(|row| (0..per_side).map(move |column| (column, row)));
    for (i, (column, row)) in cells.take(count).enumerate() {
        let Some(thumbnail) = thumbnails.get(i) else {
            continue;
        };
        let fitted = natview_core::pixels::resize_rgb(&thumbnail, cell, cell);
        let (x, y) = (column * cell, row * cell);
        image::imageops::replace(&mut sprite, &fitted, i64::from(x), i64::from(y));
    }
    sprite
}

/// Writes the projector folder; returns whether a sprite was included.
pub fn write_projector(
    set: &EmbeddingSet,
    thumbnails: Option<&ThumbnailStore>,
    dir: &Path,
    tensor_name: &str,
) -> Result<bool, InteropError> {
    std::fs::create_dir_all(dir).map_err(|e| InteropError::io(dir, e))?;
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        write_atomic(&path, bytes).map_err(|e| InteropError::io(&path, e))
    };
    write("vectors.tsv", vectors_tsv(set).as_bytes())?;
    write("metadata.tsv", metadata_tsv(set).as_bytes())?;
    let count = set.items.len();
    let cell = thumbnails.and_then(|t| sprite_cell(count).map(|cell| (t, cell)));
    let mut config = format!(
        "embeddings {{\n  tensor_name: \"{}\"\n  tensor_path: \"vectors.tsv\"\n  metadata_path: \"metadata.tsv\"\n",
        tensor_name.replace('"', "'")
    );
    if let Some((thumbnails, cell)) = cell {
        let image = sprite(thumbnails, count, cell);
        let mut png = std::io::Cursor::new(Vec::new());
        image
            .write_to(&mut png, image::ImageFormat::Png)
            .map_err(|e| InteropError::io(&dir.join("sprite.png"), e))?;
        write("sprite.png", png.get_ref())?;
        let _ = write!(
            config,
            "  sprite {{\n    image_path: \"sprite.png\"\n    single_image_dim: {cell}\n    single_image_dim: {cell}\n  }}\n"
        );
    }
    config.push_str("}\n");
    write("projector_config.pbtxt", config.as_bytes())?;
    Ok(cell.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_lose_tabs_and_never_are_empty() {
        assert_eq!(cell("a\tb\nc"), "a b c");
        assert_eq!(cell(""), "-");
    }

    #[test]
    fn the_sprite_fits_the_projectors_limit() {
        assert_eq!(sprite_cell(1), Some(64));
        assert_eq!(sprite_cell(16_384), Some(64));
        let cell = sprite_cell(100_000).expect("a sprite");
        assert!(317 * cell <= MAX_SPRITE_SIDE && cell >= MIN_CELL, "{cell}");
        assert_eq!(sprite_cell(2_000_000), None);
    }
}
