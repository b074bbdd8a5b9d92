//! `natview health DATASET`: is the encoder's embedding healthy — collapse, effective rank,
//! alignment and uniformity on natural views, per-dimension variance, hubness — with a
//! plain-language verdict (`natview_analysis::health`).

use super::commands::embed;
use super::CommonArgs;
use clap::Args;
use natview_analysis::health::{health, Health, HealthParams};
use natview_analysis::listing_numbers;
use std::path::PathBuf;

/// `natview health` arguments.
#[derive(Debug, Args)]
pub struct HealthArgs {
    /// Dataset: a folder of listings, a flat folder, or a .csv/.jsonl manifest.
    dataset: PathBuf,
    /// Rows sampled for the figures (all when the dataset has fewer).
    #[arg(long, default_value_t = 10_000)]
    sample: usize,
    /// Neighbours per image for hubness.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Seed of the samples.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print JSON instead of a summary.
    #[arg(long)]
    json: bool,
}

/// Runs `natview health`.
pub fn run(args: &HealthArgs, common: &CommonArgs) -> anyhow::Result<()> {
    let embedded = embed(&args.dataset, common)?;
    let set = &embedded.set;
    let listings = listing_numbers(&set.items);
    let params = HealthParams {
        sample: args.sample.max(3),
        k: args.k.max(1),
        seed: args.seed,
        ..HealthParams::default()
    };
    let report = health(&set.matrix, &listings, params)?;
    if args.json {
        let hubs: Vec<serde_json::Value> = report
            .hubness
            .top
            .iter()
            .map(|hub| {
                serde_json::json!({
                    "id": hub.row,
                    "path": set.items[hub.row].path,
                    "listing": set.items[hub.row].listing,
                    "occurrences": hub.occurrences,
                })
            })
            .collect();
        let out = serde_json::json!({
            "model": set.meta.encoder.describe(),
            "health": report,
            "hubs": hubs,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_summary(&report, set);
    }
    Ok(())
}

/// The report as a few lines of text.
fn print_summary(h: &Health, set: &natview_pipeline::EmbeddingSet) {
    println!("{}", set.meta.encoder.describe());
    println!("verdict: {}", h.verdict.text);
    println!("rows: {} of {} ({} dimensions)", h.rows, h.of_rows, h.dim);
    let leading: Vec<String> = h
        .spectrum
        .iter()
        .take(8)
        .map(|v| {
            format!(
                "{:.3}",
                v / h.spectrum.iter().sum::<f64>().max(f64::MIN_POSITIVE)
            )
        })
        .collect();
    println!(
        "spectrum: effective rank {:.1}; 95 % of the variance in {} axes; leading shares {}",
        h.effective_rank,
        h.dims_for_95,
        leading.join(" ")
    );
    println!(
        "spread: total variance {:.3}, mean cosine {:.3}, {} dead dimensions",
        h.total_variance, h.mean_cosine, h.dead_dims
    );
    match h.alignment {
        Some(a) => println!(
            "alignment (natural views, lower is closer) {a:.3}; uniformity {:.3}",
            h.uniformity
        ),
        None => println!(
            "alignment: no listing has two views; uniformity {:.3}",
            h.uniformity
        ),
    }
    println!(
        "hubness (k = {}): skewness {:.2}, the top 1 % fill {:.1} % of the lists, {} images in none",
        h.hubness.k,
        h.hubness.skewness,
        100.0 * h.hubness.top_percent_share,
        h.hubness.orphans
    );
    for hub in h.hubness.top.iter().take(5) {
        println!(
            "  hub: item {} ({}) in {} lists",
            hub.row,
            set.items[hub.row].path.display(),
            hub.occurrences
        );
    }
}
