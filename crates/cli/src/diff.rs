//! `natview diff DATASET --from A --to B`: what changed between two encoders of a dataset
//! (before and after a fine-tune, natview's against an imported model) — item by item and
//! listing by listing (`natview_analysis::diff`), held-out listings marked when B's weights
//! record them.

use super::commands::{embed_with, load};
use super::CommonArgs;
use clap::Args;
use natview_analysis::diff::{encoder_diff, Change, DiffParams, EncoderDiff, ListingChange};
use natview_analysis::listing_numbers;
use natview_core::workspace::Workspace;
use natview_pipeline::EmbeddingSet;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// `natview diff` arguments.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Dataset: a folder of listings, a flat folder, or a .csv/.jsonl manifest.
    dataset: PathBuf,
    /// Encoder A (before): a model name (effnet-lite0, imported:NAME, …) or a weights file
    /// or model folder (its network worked out from it, as --weights does).
    #[arg(long)]
    from: String,
    /// Encoder B (after), as --from.
    #[arg(long)]
    to: String,
    /// Neighbours compared per image (and the k of recall@k).
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Smallest change of a listing's mean reciprocal rank that counts as improved or
    /// regressed.
    #[arg(long, default_value_t = 0.1)]
    min_change: f64,
    /// Listings shown in each of the improved and regressed lists.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// Print JSON instead of tables (every listing; with --items every image too).
    #[arg(long)]
    json: bool,
    /// With --json, include each image's neighbourhood overlap and ranks.
    #[arg(long, requires = "json")]
    items: bool,
}

/// Runs `natview diff`.
pub fn run(args: &DiffArgs, common: &CommonArgs) -> anyhow::Result<()> {
    let dataset = load(&args.dataset)?;
    let workspace = Workspace::for_dataset(&dataset, common.workspace.as_deref());
    let side = |text: &str| -> anyhow::Result<(EmbeddingSet, Option<PathBuf>)> {
        let mut side = common.clone();
        let path = Path::new(text);
        let weights = (!text.starts_with("imported:") && path.exists()).then(|| path.to_path_buf());
        match &weights {
            Some(file) => {
                side.weights = Some(file.clone());
                side.model = None;
            }
            None => {
                side.model = Some(text.to_string());
                side.weights = None;
            }
        }
        let spec = side.spec()?;
        Ok((embed_with(&dataset, &workspace, spec, &side)?, weights))
    };
    let (a, _) = side(&args.from)?;
    let (b, b_weights) = side(&args.to)?;
    if a.items
        .iter()
        .map(|i| &i.path)
        .ne(b.items.iter().map(|i| &i.path))
    {
        anyhow::bail!(
            "{} and {} embedded different images of {} (a file was skipped by one of them); \
             embed both again",
            args.from,
            args.to,
            args.dataset.display()
        );
    }
    let listings = listing_numbers(&a.items);
    let params = DiffParams {
        k: args.k.max(1),
        min_change: args.min_change,
        ..DiffParams::default()
    };
    let diff = encoder_diff(&a.matrix, &b.matrix, &listings, params)?;
    let heldout = b_weights
        .as_deref()
        .map(natview_train::checkpoint::heldout_listings)
        .unwrap_or_default();
    let name_of = |change: &ListingChange| a.items[change.items[0]].listing.clone();
    if args.json {
        print_json(args, &diff, &a, &heldout, &name_of)?;
    } else {
        print_tables(args, &diff, &a, &heldout, &name_of);
    }
    Ok(())
}

fn print_json(
    args: &DiffArgs,
    diff: &EncoderDiff,
    a: &EmbeddingSet,
    heldout: &HashSet<String>,
    name_of: &dyn Fn(&ListingChange) -> String,
) -> anyhow::Result<()> {
    let listings: Vec<serde_json::Value> = diff
        .listings
        .iter()
        .map(|l| {
            let name = name_of(l);
            serde_json::json!({
                "listing": name,
                "held_out": heldout.contains(&name),
                "change": l.change,
                "recall": [l.recall.0, l.recall.1],
                "mrr": [l.mrr.0, l.mrr.1],
                "gap": [l.gap.0, l.gap.1],
                "paths": l.items.iter().map(|&i| &a.items[i].path).collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut out = serde_json::json!({
        "from": args.from,
        "to": args.to,
        "k": diff.k,
        "recall": [diff.recall.0, diff.recall.1],
        "mean_jaccard": diff.mean_jaccard,
        "improved": diff.counts.0,
        "regressed": diff.counts.1,
        "unchanged": diff.counts.2,
        "listings": listings,
    });
    if args.items {
        out["items"] = serde_json::to_value(&diff.items)?;
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn print_tables(
    args: &DiffArgs,
    diff: &EncoderDiff,
    a: &EmbeddingSet,
    heldout: &HashSet<String>,
    name_of: &dyn Fn(&ListingChange) -> String,
) {
    println!("A: {}\nB: {}", args.from, args.to);
    println!(
        "recall@{k}: {:.3} → {:.3}; neighbourhoods kept (mean Jaccard of the {k} nearest): {:.3}",
        diff.recall.0,
        diff.recall.1,
        diff.mean_jaccard,
        k = diff.k
    );
    println!(
        "listings: {} improved, {} regressed, {} unchanged (mean reciprocal rank of the \
         nearest same-listing view changed by ≥ {})",
        diff.counts.0, diff.counts.1, diff.counts.2, args.min_change
    );
    if !heldout.is_empty() {
        let held = |change: Change| {
            diff.with_change(change)
                .filter(|l| heldout.contains(&name_of(l)))
                .count()
        };
        let total = diff
            .listings
            .iter()
            .filter(|l| heldout.contains(&name_of(l)))
            .count();
        println!(
            "held-out listings (never trained on): {} improved, {} regressed, {} unchanged",
            held(Change::Improved),
            held(Change::Regressed),
            total - held(Change::Improved) - held(Change::Regressed)
        );
    }
    let row = |l: &ListingChange| {
        let name = name_of(l);
        println!(
            "  {:<28} {:>5.2} → {:<5.2} recall {:.2} → {:.2}  gap {:+.3} → {:+.3}{}  {}",
            name,
            l.mrr.0,
            l.mrr.1,
            l.recall.0,
            l.recall.1,
            l.gap.0,
            l.gap.1,
            if heldout.contains(&name) {
                "  held out"
            } else {
                ""
            },
            a.items[l.items[0]].path.display()
        );
    };
    for (title, change, reversed) in [
        ("most improved", Change::Improved, false),
        ("most regressed", Change::Regressed, true),
    ] {
        let mut listed: Vec<&ListingChange> = diff.with_change(change).collect();
        if reversed {
            listed.reverse();
        }
        if listed.is_empty() {
            continue;
        }
        println!("{title} (listing, mean reciprocal rank A → B, recall@k, gap, first view):");
        listed.iter().take(args.top).for_each(|l| row(l));
    }
}
