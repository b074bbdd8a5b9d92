//! `natview review DATASET --kind near-duplicates|outliers|confusable|hard|regressed`: a review
//! queue from the command line (the app's Review view shows the same queue), as a table or
//! JSON. `regressed` diffs the encoder `--from` names against the current one.

use super::commands::{embed, index_for};
use super::diff::embed_named;
use super::output::Bar;
use super::{CommonArgs, HnswArgs};
use clap::Args;
use natview_analysis::diff::DiffParams;
use natview_analysis::listing_numbers;
use natview_analysis::review::{
    regressed_queue, review_queue, ReviewInput, ReviewKind, ReviewOptions, ReviewQueue,
};
use natview_labels::LabelStore;
use natview_train::diff_run::DiffRun;
use std::path::PathBuf;
use std::time::Instant;

/// `natview review` arguments.
#[derive(Debug, Args)]
pub struct ReviewArgs {
    /// Dataset: a folder of listings, a flat folder, or a .csv/.jsonl manifest.
    dataset: PathBuf,
    /// near-duplicates (pairs across listings above --threshold, in clusters), outliers (views
    /// unlike the rest of their listing), confusable (listing pairs as similar between as
    /// within), hard (unjudged pairs nearest the model's decision boundary) or regressed (views
    /// of the listings the current encoder made worse than --from's, each beside the view of its
    /// listing it was nearest to under --from).
    #[arg(long, default_value = "near-duplicates")]
    kind: String,
    /// With --kind regressed: the encoder to compare against (before), as `natview diff
    /// --from` takes it; the current encoder (--model/--weights) is the one after.
    #[arg(long)]
    from: Option<String>,
    /// Near-duplicates: the cosine at or above which two images count as duplicates.
    #[arg(long, default_value_t = 0.95)]
    threshold: f32,
    /// Pairs to list at most.
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Nearest other-listing images looked at per image.
    #[arg(long, default_value_t = 10)]
    neighbours: usize,
    /// Print JSON (every pair with both paths, listings, similarity, reason and verdict).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    hnsw: HnswArgs,
}

/// Runs `natview review`.
pub fn run(args: &ReviewArgs, common: &CommonArgs) -> anyhow::Result<()> {
    let kind = ReviewKind::parse(&args.kind).map_err(|e| anyhow::anyhow!(e))?;
    if !(-1.0..=1.0).contains(&args.threshold) {
        anyhow::bail!(
            "--threshold {} is not a cosine (between -1 and 1)",
            args.threshold
        );
    }
    let embedded = embed(&args.dataset, common)?;
    let index = index_for(&embedded, args.hnsw, common)?;
    let set = &embedded.set;
    let keys: Vec<String> = set
        .items
        .iter()
        .map(|i| i.path.to_string_lossy().into_owned())
        .collect();
    let store_path = embedded.workspace.labels_path();
    let store = if store_path.is_file() {
        Some(LabelStore::open(&store_path)?)
    } else {
        None
    };
    let judged = |a: usize, b: usize| {
        store
            .as_ref()
            .is_some_and(|s| s.verdict_of(&keys[a], &keys[b]).is_some())
    };
    let listing = listing_numbers(&set.items);
    let input = ReviewInput {
        matrix: &set.matrix,
        listing: &listing,
        neighbours: &index,
        judged: &judged,
    };
    let options = ReviewOptions {
        threshold: args.threshold,
        limit: args.limit,
        neighbours: args.neighbours,
    };
    let started = Instant::now();
    let mut bar = Bar::new(common.quiet);
    if kind == ReviewKind::Regressed {
        let Some(from) = &args.from else {
            anyhow::bail!("--kind regressed needs --from (the encoder before)");
        };
        let (a, _) = embed_named(&embedded.dataset, &embedded.workspace, from, common)?;
        let run = DiffRun::new(
            (a, set.clone()),
            (from.clone(), set.meta.encoder.workspace_key()),
            common.weights.as_deref(),
            DiffParams::default(),
        )?;
        let queue = regressed_queue(&run.diff, &run.a.matrix, &run.b.matrix, args.limit)?;
        return print_queue(args, &queue, started, &keys, set, &store);
    }
    let candidates = match kind {
        ReviewKind::NearDuplicates | ReviewKind::HardPairs => {
            Some(natview_analysis::review::cross_listing_neighbours(
                &input,
                options.neighbours,
                &mut bar,
            )?)
        }
        _ => None,
    };
    let queue = review_queue(kind, &input, &options, candidates.as_ref(), &mut bar)?;
    bar.finish();
    print_queue(args, &queue, started, &keys, set, &store)
}

/// Prints `queue` as `--json` asks.
fn print_queue(
    args: &ReviewArgs,
    queue: &ReviewQueue,
    started: Instant,
    keys: &[String],
    set: &natview_pipeline::EmbeddingSet,
    store: &Option<LabelStore>,
) -> anyhow::Result<()> {
    let seconds = started.elapsed().as_secs_f64();
    let verdict_of = |a: usize, b: usize| {
        store
            .as_ref()
            .and_then(|s| s.verdict_of(&keys[a], &keys[b]))
            .map(|v| v.as_str())
    };
    if args.json {
        print_json(queue, args.threshold, seconds, keys, set, &verdict_of)
    } else {
        print_table(queue, seconds, keys, &verdict_of);
        Ok(())
    }
}

fn print_table(
    queue: &ReviewQueue,
    seconds: f64,
    keys: &[String],
    verdict_of: &dyn Fn(usize, usize) -> Option<&'static str>,
) {
    println!("{}: {} ({seconds:.2} s)", queue.kind.label(), queue.summary);
    if let Some(h) = &queue.histogram {
        println!("each image's nearest other-listing cosine:");
        let width = (h.hi - h.lo) / h.counts.len() as f32;
        let peak = h.counts.iter().copied().max().unwrap_or(1).max(1);
        // Five bins to a row keeps the histogram short.
        for (row, counts) in h.counts.chunks(5).enumerate() {
            let from = h.lo + (row * 5) as f32 * width;
            let n: usize = counts.iter().sum();
            let bar = "#".repeat((n * 40).div_ceil(peak * 5).min(40));
            println!("  {from:>6.3} – {:>6.3} {n:>8} {bar}", from + 5.0 * width);
        }
    }
    let judged = queue
        .pairs
        .iter()
        .filter(|p| verdict_of(p.a, p.b).is_some())
        .count();
    println!("{judged} of {} listed pair(s) judged", queue.pairs.len());
    for (rank, p) in queue.pairs.iter().enumerate() {
        println!(
            "{:>4}. {:.3}  {}  ↔  {}  [{}]  {}",
            rank + 1,
            p.similarity,
            keys[p.a],
            keys[p.b],
            verdict_of(p.a, p.b).unwrap_or("unjudged"),
            p.why
        );
    }
}

fn print_json(
    queue: &ReviewQueue,
    threshold: f32,
    seconds: f64,
    keys: &[String],
    set: &natview_pipeline::EmbeddingSet,
    verdict_of: &dyn Fn(usize, usize) -> Option<&'static str>,
) -> anyhow::Result<()> {
    let item = |i: usize| {
        serde_json::json!({
            "id": i,
            "path": keys[i],
            "listing": set.items[i].listing,
        })
    };
    let pairs: Vec<serde_json::Value> = queue
        .pairs
        .iter()
        .map(|p| {
            serde_json::json!({
                "a": item(p.a),
                "b": item(p.b),
                "similarity": p.similarity,
                "score": p.score,
                "cluster": p.cluster,
                "why": p.why,
                "verdict": verdict_of(p.a, p.b),
            })
        })
        .collect();
    let clusters: Vec<Vec<&str>> = queue
        .clusters
        .iter()
        .map(|c| c.iter().map(|&i| keys[i].as_str()).collect())
        .collect();
    let out = serde_json::json!({
        "kind": queue.kind.name(),
        "summary": queue.summary,
        "model": set.meta.encoder.describe(),
        "images": set.items.len(),
        "seconds": seconds,
        "threshold": (queue.kind == ReviewKind::NearDuplicates).then_some(threshold),
        "histogram": queue.histogram,
        "clusters": clusters,
        "pairs": pairs,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
