//! `natview shortcut DATASET`: has the encoder learned the item or the augmentations? Cosines
//! of two augmentations of one image, of two natural views of one listing and of two
//! different listings, side by side, with a verdict (`natview_train::shortcut`).

use super::commands::load;
use super::CommonArgs;
use clap::Args;
use natview_encoder::{choose_device, Encoder};
use natview_train::shortcut::{shortcut_probe, Cosines, ShortcutParams};
use natview_train::AugmentParams;
use std::path::PathBuf;

/// `natview shortcut` arguments.
#[derive(Debug, Args)]
pub struct ShortcutArgs {
    /// Dataset: a folder of listings, a flat folder, or a .csv/.jsonl manifest.
    dataset: PathBuf,
    /// Listings sampled (those with two views or more).
    #[arg(long, default_value_t = 200)]
    listings: usize,
    /// The augmentations compared: strong (natview's fine-tuning set for single-view
    /// listings: crops down to 20 % of the image, flips, colour jitter, greyscale, blur) or
    /// natural (its lighter set for natural views).
    #[arg(long, default_value = "strong", value_parser = ["strong", "natural"])]
    augment: String,
    /// Print JSON instead of a summary.
    #[arg(long)]
    json: bool,
}

/// Runs `natview shortcut`.
pub fn run(args: &ShortcutArgs, common: &CommonArgs) -> anyhow::Result<()> {
    let dataset = load(&args.dataset)?;
    let spec = common.spec_for(&dataset)?;
    let encoder = Encoder::new(&spec, &choose_device(common.cpu))?;
    let params = ShortcutParams {
        listings: args.listings.max(1),
        augment: if args.augment == "natural" {
            AugmentParams::natural_views()
        } else {
            AugmentParams::single_view()
        },
        seed: common.seed,
    };
    let report = shortcut_probe(&dataset, &encoder, params)?;
    if args.json {
        let out = serde_json::json!({ "model": spec.describe(), "shortcut": report });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("{}", spec.describe());
    println!("verdict: {}", report.text);
    let line = |name: &str, c: &Cosines| {
        println!(
            "  {name:<34} mean {:.3}  p10 {:.3}  median {:.3}  p90 {:.3}",
            c.mean, c.p10, c.median, c.p90
        );
    };
    println!(
        "cosine similarity over {} listings:",
        report.natural.values.len()
    );
    line("two augmentations of one image", &report.augmented);
    line("two natural views of one listing", &report.natural);
    line("images of different listings", &report.different);
    println!("listings whose views are farthest apart (augmented vs natural cosine):");
    for e in &report.examples {
        println!(
            "  {:<32} {:.3} vs {:.3}  items {} and {}",
            e.listing, e.augmented, e.natural, e.views.0, e.views.1
        );
    }
    Ok(())
}
