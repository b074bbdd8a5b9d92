//! `natview diff DATASET --from A --to B`: what changed between two encoders of a dataset
//! (before and after a fine-tune, natview's against an imported model) — item by item and
//! listing by listing (`natview_analysis::diff`), held-out listings marked when B's weights
//! record them.

use super::commands::{embed_with, load};
use super::output::Bar;
use super::CommonArgs;
use clap::Args;
use natview_analysis::diff::{Change, DiffParams, ListingChange};
use natview_analysis::projection::ProjectionMethod;
use natview_core::dataset::{csv_field, Dataset};
use natview_core::workspace::Workspace;
use natview_encoder::EncoderSpec;
use natview_pipeline::EmbeddingSet;
use natview_train::diff_run::{aligned_layouts, AlignedLayouts, DiffRun};
use std::path::{Path, PathBuf};
use std::time::Instant;

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
    /// Also lay out both encoders' embeddings with this method (pca, umap, tsne; saved layouts
    /// reused) and fit B's layout onto A's (Procrustes): prints how different the pictures
    /// are.
    #[arg(long, value_parser = parse_method)]
    layout: Option<ProjectionMethod>,
    /// With --layout, write both layouts as CSV: id, listing, path, A's x and y, B's aligned x
    /// and y, and how much the image's neighbourhood changed (1 − Jaccard).
    #[arg(long, requires = "layout")]
    layout_csv: Option<PathBuf>,
}

fn parse_method(text: &str) -> Result<ProjectionMethod, String> {
    ProjectionMethod::parse(text).map_err(|e| e.to_string())
}

/// Runs `natview diff`.
pub fn run(args: &DiffArgs, common: &CommonArgs) -> anyhow::Result<()> {
    let dataset = load(&args.dataset)?;
    let workspace = Workspace::for_dataset(&dataset, common.workspace.as_deref());
    let params = DiffParams {
        k: args.k.max(1),
        min_change: args.min_change,
        ..DiffParams::default()
    };
    let run = diff_run(&dataset, &workspace, (&args.from, &args.to), params, common)?;
    let layouts = match args.layout {
        Some(method) => {
            let started = Instant::now();
            let mut bar = Bar::new(common.quiet);
            let layouts = aligned_layouts(&run, &workspace, method, &mut bar)?;
            bar.finish();
            eprintln!(
                "aligned {} layouts in {:.1} s: B fitted onto A with disparity {:.3} (0 = the same picture)",
                method.label(),
                started.elapsed().as_secs_f64(),
                layouts.b.disparity
            );
            if let Some(out) = &args.layout_csv {
                write_layouts_csv(&run, &layouts, out)?;
                eprintln!("wrote {}", out.display());
            }
            Some(layouts)
        }
        None => None,
    };
    if args.json {
        print_json(args, &run, layouts.as_ref())?;
    } else {
        print_tables(args, &run);
    }
    Ok(())
}

/// Embeds the dataset with encoders `from` and `to` (each a model name or a weights file, as
/// `natview diff` takes them) and diffs them.
pub(crate) fn diff_run(
    dataset: &Dataset,
    workspace: &Workspace,
    (from, to): (&str, &str),
    params: DiffParams,
    common: &CommonArgs,
) -> anyhow::Result<DiffRun> {
    let (a, _) = embed_named(dataset, workspace, from, common)?;
    let (b, b_weights) = embed_named(dataset, workspace, to, common)?;
    Ok(DiffRun::new(
        (a, b),
        (from.to_string(), to.to_string()),
        b_weights.as_deref(),
        params,
    )?)
}

/// The encoder `text` names: a model name (effnet-lite0, imported:NAME, …) or a weights file
/// or model folder (its network worked out from it, as --weights does); with the options that
/// select it and the weights file when one was named.
pub(crate) fn named_spec(
    text: &str,
    common: &CommonArgs,
) -> anyhow::Result<(EncoderSpec, CommonArgs, Option<PathBuf>)> {
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
    Ok((side.spec()?, side, weights))
}

/// Embeds the dataset with the encoder `text` names ([`named_spec`]); returns the embeddings
/// and the weights file when one was named.
pub(crate) fn embed_named(
    dataset: &Dataset,
    workspace: &Workspace,
    text: &str,
    common: &CommonArgs,
) -> anyhow::Result<(EmbeddingSet, Option<PathBuf>)> {
    let (spec, side, weights) = named_spec(text, common)?;
    Ok((embed_with(dataset, workspace, spec, &side)?, weights))
}

/// Writes `id,listing,path,ax,ay,bx,by,neighbourhood_change` (B's layout in A's frame).
fn write_layouts_csv(run: &DiffRun, layouts: &AlignedLayouts, out: &Path) -> anyhow::Result<()> {
    let mut text = String::from("id,listing,path,ax,ay,bx,by,neighbourhood_change\n");
    for (i, item) in run.a.items.iter().enumerate() {
        let (a, b) = (layouts.a[i], layouts.b.points[i]);
        text.push_str(&format!(
            "{i},{},{},{},{},{},{},{:.4}\n",
            csv_field(&item.listing),
            csv_field(&item.path.display().to_string()),
            a[0],
            a[1],
            b[0],
            b[1],
            layouts.change[i]
        ));
    }
    natview_core::workspace::write_atomic(out, text.as_bytes())
        .map_err(|e| anyhow::anyhow!("{}: {e}", out.display()))
}

fn print_json(
    args: &DiffArgs,
    run: &DiffRun,
    layouts: Option<&AlignedLayouts>,
) -> anyhow::Result<()> {
    let diff = &run.diff;
    let listings: Vec<serde_json::Value> = diff
        .listings
        .iter()
        .map(|l| {
            serde_json::json!({
                "listing": run.listing_name(l.listing),
                "held_out": run.held_out(l.listing),
                "change": l.change,
                "recall": [l.recall.0, l.recall.1],
                "mrr": [l.mrr.0, l.mrr.1],
                "gap": [l.gap.0, l.gap.1],
                "paths": l.items.iter().map(|&i| &run.a.items[i].path).collect::<Vec<_>>(),
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
    if let Some(layouts) = layouts {
        out["layout"] = serde_json::json!({
            "method": layouts.method.name(),
            "disparity": layouts.b.disparity,
            "reflected": layouts.b.reflected,
            "angle": layouts.b.angle,
            "scale": layouts.b.scale,
        });
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn print_tables(args: &DiffArgs, run: &DiffRun) {
    let diff = &run.diff;
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
    if !run.heldout.is_empty() {
        let held = |change: Change| {
            diff.with_change(change)
                .filter(|l| run.held_out(l.listing))
                .count()
        };
        let total = diff
            .listings
            .iter()
            .filter(|l| run.held_out(l.listing))
            .count();
        println!(
            "held-out listings (never trained on): {} improved, {} regressed, {} unchanged",
            held(Change::Improved),
            held(Change::Regressed),
            total - held(Change::Improved) - held(Change::Regressed)
        );
    }
    let row = |l: &ListingChange| {
        println!(
            "  {:<28} {:>5.2} → {:<5.2} recall {:.2} → {:.2}  gap {:+.3} → {:+.3}{}  {}",
            run.listing_name(l.listing),
            l.mrr.0,
            l.mrr.1,
            l.recall.0,
            l.recall.1,
            l.gap.0,
            l.gap.1,
            if run.held_out(l.listing) {
                "  held out"
            } else {
                ""
            },
            run.a.items[l.items[0]].path.display()
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
