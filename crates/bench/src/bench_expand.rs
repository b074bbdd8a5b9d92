//! `natview-bench expand`: a large dataset for measuring the app at scale (100k–1M images),
//! made reproducibly from a small one. Each new listing is a seeded strong augmentation of a
//! source image (its "item"); its views are light augmentations of that, so listings differ and
//! views of one listing stay alike. Written as PNG files in folders of 1,000 plus a
//! `manifest.csv` (`path,listing,label,source`); nothing is committed.

use anyhow::{bail, Context};
use clap::Args;
use natview_cli::CommonArgs;
use natview_core::dataset::{csv_field, decode_rgb, load_dataset};
use natview_core::rng::SplitMix64;
use natview_train::{augment, AugmentParams};
use rayon::prelude::*;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `natview-bench expand`.
#[derive(Debug, Args)]
pub struct ExpandArgs {
    /// The dataset whose images are the sources (e.g. assets/demo/manifest.csv).
    source: PathBuf,
    /// Output folder (gets `images/` and `manifest.csv`).
    #[arg(long, short)]
    out: PathBuf,
    /// Images to write.
    #[arg(long, default_value_t = 100_000)]
    count: usize,
    /// Views per listing.
    #[arg(long, default_value_t = 4)]
    views: usize,
    /// Side of the written images in pixels, 8 to 4,096.
    #[arg(long, default_value_t = 64, value_parser = natview_cli::limits::written_size)]
    size: u32,
    /// Seed of every random choice (same seed, same files).
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Listings written between two progress lines.
const CHUNK: usize = 4096;

/// Writes the expanded dataset.
pub fn run(args: &ExpandArgs, _common: &CommonArgs) -> anyhow::Result<()> {
    if args.views == 0 || args.count == 0 {
        bail!("--count and --views must be at least 1");
    }
    let started = Instant::now();
    let dataset =
        load_dataset(&args.source).with_context(|| format!("loading {}", args.source.display()))?;
    let sources: Vec<(String, image::RgbImage)> = dataset
        .items
        .par_iter()
        .filter_map(|item| {
            let image = decode_rgb(&dataset.item_path(item), 128).ok()?;
            let label = item.label.clone().unwrap_or_else(|| item.listing.clone());
            Some((format!("{}|{}", label, item.path.display()), image))
        })
        .collect();
    if sources.is_empty() {
        bail!("{}: no readable images", args.source.display());
    }
    let listings = args.count.div_ceil(args.views);
    let images_dir = args.out.join("images");
    std::fs::create_dir_all(&images_dir)
        .with_context(|| format!("creating {}", images_dir.display()))?;
    let manifest_path = args.out.join("manifest.csv");
    let mut manifest = std::io::BufWriter::new(
        natview_core::workspace::AtomicFile::create(&manifest_path)
            .with_context(|| format!("creating {}", manifest_path.display()))?,
    );
    writeln!(manifest, "path,listing,label,source")?;
    let item_params = AugmentParams::single_view();
    let view_params = AugmentParams {
        min_crop_area: 0.7,
        greyscale: 0.0,
        ..AugmentParams::natural_views()
    };
    let mut written = 0usize;
    for start in (0..listings).step_by(CHUNK) {
        let end = (start + CHUNK).min(listings);
        let rows: Vec<Vec<String>> = (start..end)
            .into_par_iter()
            .map(|listing| -> anyhow::Result<Vec<String>> {
                let mut rng = SplitMix64::new(
                    args.seed ^ (listing as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                );
                let (name, source) = &sources[rng.below(sources.len())];
                let base = augment(source, 96, &item_params, &mut rng);
                let folder = format!("{:04}", listing / 1000);
                std::fs::create_dir_all(images_dir.join(&folder))?;
                let views = args.views.min(args.count - listing * args.views);
                let (label, source_path) = name.split_once('|').unwrap_or((name.as_str(), ""));
                let mut rows = Vec::with_capacity(views);
                for v in 0..views {
                    let view = augment(&base, args.size, &view_params, &mut rng);
                    let relative = format!("images/{folder}/{listing:07}-{v}.png");
                    view.save(args.out.join(&relative))
                        .with_context(|| format!("writing {relative}"))?;
                    rows.push(format!(
                        "{relative},l{listing:07},{},{}",
                        csv_field(label),
                        csv_field(source_path)
                    ));
                }
                Ok(rows)
            })
            .collect::<anyhow::Result<_>>()?;
        for row in rows.iter().flatten() {
            writeln!(manifest, "{row}")?;
            written += 1;
        }
        eprintln!(
            "expand: {written}/{} images ({:.0} s)",
            args.count,
            started.elapsed().as_secs_f64()
        );
    }
    manifest
        .into_inner()
        .map_err(|e| e.into_error())
        .and_then(|file| file.commit())
        .with_context(|| format!("writing {}", manifest_path.display()))?;
    println!(
        "wrote {written} images of {listings} listings ({} views each) from {} sources → {} in {:.0} s",
        args.views,
        sources.len(),
        manifest_path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
