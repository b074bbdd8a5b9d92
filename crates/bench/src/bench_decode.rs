//! `natview-bench decode`: images/s of decoding a folder's images as `natview embed` does (the
//! smallest JPEG DCT scale with the 2× margin over the input side, EXIF orientation, the
//! centred crop resized to the input), on one thread — the per-core figure to set beside
//! Pillow's `draft` mode.

use clap::Args;
use natview_core::dataset::decode_rgb_covering;
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `natview-bench decode`.
#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// A dataset folder: its .jpg/.jpeg images are decoded.
    folder: PathBuf,
    /// The model input side the images are prepared for.
    #[arg(long, default_value_t = 224)]
    size: u32,
    /// Decode at full size instead (libjpeg-turbo at scale 1), for comparison.
    #[arg(long)]
    full: bool,
    /// Use at most this many images.
    #[arg(long, default_value_t = 200)]
    limit: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// The dataset's JPEGs (by extension), in the loader's order.
fn jpegs(folder: &std::path::Path) -> anyhow::Result<Vec<PathBuf>> {
    let dataset = natview_core::dataset::load_dataset(folder)?;
    Ok(dataset
        .items
        .iter()
        .map(|item| dataset.item_path(item))
        .filter(|path| {
            path.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("jpeg"))
        })
        .collect())
}

/// Runs the benchmark (on the calling thread only).
pub fn run(args: &DecodeArgs) -> anyhow::Result<()> {
    let mut files = jpegs(&args.folder)?;
    files.truncate(args.limit);
    anyhow::ensure!(
        !files.is_empty(),
        "no JPEGs under {}",
        args.folder.display()
    );
    let target = if args.full { 0 } else { args.size };
    let started = Instant::now();
    let mut pixels = 0u64;
    for path in &files {
        let decoded = decode_rgb_covering(path, args.size, target)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let prepared = natview_core::pixels::centre_crop_resize(&decoded.image, args.size, 1.0);
        pixels += u64::from(decoded.image.width()) * u64::from(decoded.image.height());
        std::hint::black_box(prepared);
    }
    let secs = started.elapsed().as_secs_f64();
    let per_sec = files.len() as f64 / secs;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "images": files.len(),
                "seconds": secs,
                "images_per_sec": per_sec,
                "mean_decoded_megapixels": pixels as f64 / files.len() as f64 / 1e6,
            })
        );
    } else {
        println!(
            "{} images in {secs:.2} s: {per_sec:.1} images/s on one thread (decoded at {:.2} MP on average)",
            files.len(),
            pixels as f64 / files.len() as f64 / 1e6
        );
    }
    Ok(())
}
