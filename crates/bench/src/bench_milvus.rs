//! `natview-bench milvus`: the same embeddings and queries through a Milvus server and through
//! natview's in-process HNSW — export rate, per-query latency and recall@k against exact search.

use clap::Args;
use natview_cli::commands::{embed_with, load};
use natview_cli::output::Bar;
use natview_cli::CommonArgs;
use natview_core::jobs::CancelFlag;
use natview_core::rng::SplitMix64;
use natview_core::workspace::Workspace;
use natview_index::{exact_neighbours, HnswParams};
use natview_interop::milvus::{
    check_paths, CollectionRecord, Milvus, MilvusTarget, CONNECT_TIMEOUT,
};
use natview_pipeline::ensure_index;
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `natview-bench milvus`.
#[derive(Debug, Args)]
pub struct MilvusArgs {
    /// Dataset whose embeddings are written and queried.
    dataset: PathBuf,
    /// The server.
    #[arg(long, default_value = "milvus://127.0.0.1:19530")]
    milvus: String,
    /// The collection (dropped and written again).
    #[arg(long, default_value = "natview_bench")]
    collection: String,
    /// Queries (random items, seed 0), each asked of both.
    #[arg(long, default_value_t = 500)]
    queries: usize,
    /// Neighbours per query.
    #[arg(short, long, default_value_t = 10)]
    k: usize,
    /// HNSW candidate list while searching (both engines).
    #[arg(long, default_value_t = 64)]
    ef: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Median and 95th percentile of `times` (seconds), in milliseconds.
fn percentiles(times: &mut [f64]) -> (f64, f64) {
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize] * 1e3;
    (at(0.5), at(0.95))
}

/// Runs the benchmark.
pub fn run(args: &MilvusArgs, common: &CommonArgs) -> anyhow::Result<()> {
    let dataset = load(&args.dataset)?;
    let workspace = Workspace::for_dataset(&dataset, common.workspace.as_deref());
    let set = embed_with(&dataset, &workspace, common.spec_for(&dataset)?, common)?;
    let target = MilvusTarget::new(&args.milvus, &args.collection).map_err(anyhow::Error::msg)?;
    let milvus = Milvus::connect(&target, CONNECT_TIMEOUT)?;
    milvus.drop_collection()?;
    let params = HnswParams {
        ef_search: args.ef,
        ..HnswParams::default()
    };
    let bar = Bar::new(common.quiet);
    let export = milvus.export(&set, &workspace, params, true, &bar, &CancelFlag::new())?;
    let (index, _) = ensure_index(&workspace, &set, params, &bar, &CancelFlag::new())?;
    bar.finish();
    milvus.check_holds(&CollectionRecord::of(&set))?;
    let mut rng = SplitMix64::new(0);
    let queries: Vec<usize> = (0..args.queries.max(1))
        .map(|_| rng.below(set.items.len()))
        .collect();
    let (mut milvus_times, mut hnsw_times) = (Vec::new(), Vec::new());
    let (mut milvus_found, mut hnsw_found, mut wanted) = (0usize, 0usize, 0usize);
    for &id in &queries {
        let query = set.matrix.row(id);
        let exact: Vec<usize> = exact_neighbours(&set.matrix, query, args.k, Some(id))?
            .iter()
            .map(|n| n.id)
            .collect();
        let started = Instant::now();
        let hits = milvus.neighbours(query, Some(id), args.k, args.ef, None)?;
        milvus_times.push(started.elapsed().as_secs_f64());
        check_paths(hits.iter().map(|h| (h.id, h.path.as_str())), &set.items)
            .map_err(|e| anyhow::anyhow!("{}: {e}", target.display()))?;
        let started = Instant::now();
        let local = index.search_excluding(query, id, args.k, Some(args.ef))?;
        hnsw_times.push(started.elapsed().as_secs_f64());
        wanted += exact.len();
        milvus_found += exact
            .iter()
            .filter(|e| hits.iter().any(|h| h.id == **e))
            .count();
        hnsw_found += exact
            .iter()
            .filter(|e| local.iter().any(|n| n.id == **e))
            .count();
    }
    let (milvus_median, milvus_p95) = percentiles(&mut milvus_times);
    let (hnsw_median, hnsw_p95) = percentiles(&mut hnsw_times);
    let recall = |found: usize| found as f64 / wanted.max(1) as f64;
    let rows_per_s = export.sent as f64 / export.seconds.max(1e-9);
    if args.json {
        let out = serde_json::json!({
            "rows": set.items.len(),
            "dim": set.matrix.dim,
            "queries": queries.len(),
            "k": args.k,
            "ef": args.ef,
            "export_rows_per_s": rows_per_s,
            "milvus": {"median_ms": milvus_median, "p95_ms": milvus_p95, "recall": recall(milvus_found)},
            "hnsw": {"median_ms": hnsw_median, "p95_ms": hnsw_p95, "recall": recall(hnsw_found)},
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "{} rows × {}: export to {} {:.0} rows/s ({:.1} s); {} queries, k = {}, ef = {}",
        set.items.len(),
        set.matrix.dim,
        target.display(),
        rows_per_s,
        export.seconds,
        queries.len(),
        args.k,
        args.ef
    );
    println!(
        "| engine | median ms/query | p95 ms/query | recall@{} vs exact |",
        args.k
    );
    println!("|---|---|---|---|");
    println!(
        "| Milvus (gRPC, {}) | {milvus_median:.3} | {milvus_p95:.3} | {:.4} |",
        target.display(),
        recall(milvus_found)
    );
    println!(
        "| natview HNSW (in process) | {hnsw_median:.3} | {hnsw_p95:.3} | {:.4} |",
        recall(hnsw_found)
    );
    Ok(())
}
