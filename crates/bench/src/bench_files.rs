//! Benchmarks over `.npy` inputs written by `natview-bench vectors`, the same files the peers
//! (bench/peers.py: PyTorch, FAISS, hnswlib, scikit-learn) read, so every side works on the
//! same numbers. Each prints one line of figures, or a JSON object with `--json` (what
//! bench/run.sh collects).

use crate::bench_data::read_matrix;
use anyhow::{bail, Context};
use clap::Args;
use natview_analysis::{pca_2d, quadrant_chart, QuadrantParams};
use natview_cli::CommonArgs;
use natview_core::dataset::Item;
use natview_core::linalg::Matrix;
use natview_core::npy;
use natview_encoder::{choose_device, Encoder};
use natview_index::{exact_search, HnswParams, NeighbourIndex};
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

/// The middle value (the upper one of an even count); sorts `values`.
pub(super) fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Prints `value` as one JSON line, or `text`.
pub(super) fn emit(json: bool, value: serde_json::Value, text: String) {
    if json {
        println!("{value}");
    } else {
        println!("{text}");
    }
}

/// Arguments of `natview-bench ann`.
#[derive(Debug, Args)]
pub struct AnnArgs {
    /// Vectors to index (`.npy`, rows L2-normalised).
    #[arg(long)]
    base: PathBuf,
    /// Query vectors (`.npy`).
    #[arg(long)]
    queries: PathBuf,
    /// HNSW links per node (M).
    #[arg(long = "m", default_value_t = 16)]
    max_connections: usize,
    /// HNSW build candidate list.
    #[arg(long, default_value_t = 200)]
    ef_construction: usize,
    /// Search candidate lists to sweep.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "10,12,16,20,24,32,40,48,64,96,128,192,256"
    )]
    ef: Vec<usize>,
    /// Neighbours per query.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// HNSW build time (all threads), then single-thread queries/s and recall@k against exact
/// search at each ef.
pub fn ann(args: &AnnArgs) -> anyhow::Result<()> {
    let base = read_matrix(&args.base)?;
    let queries = read_matrix(&args.queries)?;
    if base.dim != queries.dim {
        bail!(
            "{}: queries have {} dims, the base {}",
            args.queries.display(),
            queries.dim,
            base.dim
        );
    }
    let truth = exact_search(&base, &queries, args.k)?;
    let params = HnswParams {
        max_connections: args.max_connections,
        ef_construction: args.ef_construction,
        ef_search: 64,
    };
    let t = Instant::now();
    let index = NeighbourIndex::build(&base, params)?;
    let build_s = t.elapsed().as_secs_f64();
    let mut sweep = Vec::new();
    let mut text = format!(
        "ann: {} × {} base, {} queries, M={} ef_construction={}: build {build_s:.2} s ({} threads)\n{:>6} {:>10} {:>10}",
        base.rows,
        base.dim,
        queries.rows,
        args.max_connections,
        args.ef_construction,
        rayon::current_num_threads(),
        "ef",
        "recall",
        "queries/s"
    );
    for &ef in &args.ef {
        // Searches run on this one thread.
        let t = Instant::now();
        let mut found = Vec::with_capacity(queries.rows);
        for q in 0..queries.rows {
            found.push(index.search(queries.row(q), args.k, Some(ef))?);
        }
        let secs = t.elapsed().as_secs_f64();
        let hits: usize = found
            .iter()
            .zip(&truth)
            .map(|(f, t)| f.iter().filter(|n| t.iter().any(|x| x.id == n.id)).count())
            .sum();
        let recall = hits as f64 / (queries.rows * args.k).max(1) as f64;
        let qps = queries.rows as f64 / secs;
        text.push_str(&format!("\n{ef:>6} {recall:>10.4} {qps:>10.0}"));
        sweep.push(json!({"ef": ef, "recall": recall, "qps": qps}));
    }
    emit(
        args.json,
        json!({"build_s": build_s, "threads": rayon::current_num_threads(), "sweep": sweep}),
        text,
    );
    Ok(())
}

/// Arguments of `natview-bench exact`.
#[derive(Debug, Args)]
pub struct ExactArgs {
    /// Vectors searched (`.npy`).
    #[arg(long)]
    base: PathBuf,
    /// Query vectors (`.npy`).
    #[arg(long)]
    queries: PathBuf,
    /// Neighbours per query.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Views per source image in the base (rows image by image), for the quadrant chart.
    #[arg(long, default_value_t = 14)]
    views_per_image: usize,
    /// Listings of the quadrant chart.
    #[arg(long, default_value_t = 64)]
    listings: usize,
    /// Views per listing of the quadrant chart.
    #[arg(long, default_value_t = 8)]
    views: usize,
    /// Timed repetitions; medians are reported.
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Exact top-k of every query over the base, and the quadrant chart (similarity matrix and
/// intra/inter statistics) of `listings × views` base rows.
pub fn exact(args: &ExactArgs) -> anyhow::Result<()> {
    let base = read_matrix(&args.base)?;
    let queries = read_matrix(&args.queries)?;
    if args.views > args.views_per_image {
        bail!("--views must not exceed --views-per-image");
    }
    let mut search_s = Vec::new();
    let mut checksum = 0.0;
    for _ in 0..args.repeat.max(1) {
        let t = Instant::now();
        let found = exact_search(&base, &queries, args.k)?;
        search_s.push(t.elapsed().as_secs_f64());
        checksum = found.iter().map(|f| f[0].similarity as f64).sum::<f64>();
    }
    // Base rows come image by image; each source image is one listing.
    let listings = base.rows / args.views_per_image;
    let items: Vec<Item> = (0..base.rows)
        .map(|id| Item {
            id,
            path: PathBuf::from(format!("{id}")),
            listing: format!("image-{:06}", id / args.views_per_image),
            label: None,
            metadata: Default::default(),
        })
        .collect();
    let params = QuadrantParams {
        listings: args.listings.min(listings),
        views: Some(args.views),
        ..Default::default()
    };
    let mut quadrant_s = Vec::new();
    let mut stats = None;
    for _ in 0..args.repeat.max(1) {
        let t = Instant::now();
        let chart = quadrant_chart(&base, &items, &params)?;
        quadrant_s.push(t.elapsed().as_secs_f64());
        stats = Some(chart.stats);
    }
    let stats = stats.context("no repetition ran")?;
    let (search, quadrant) = (median(&mut search_s), median(&mut quadrant_s));
    emit(
        args.json,
        json!({
            "search_s": search, "queries": queries.rows, "base": base.rows, "k": args.k,
            "top1_sum": checksum,
            "quadrant_s": quadrant, "quadrant_side": params.listings * args.views,
            "intra_mean": stats.intra_mean, "inter_mean": stats.inter_mean, "auc": stats.auc,
        }),
        format!(
            "exact: top-{} of {} queries over {} × {}: {:.1} ms; quadrant chart {} × {} views: {:.2} ms (intra {:.3}, inter {:.3}, AUC {:.3})",
            args.k, queries.rows, base.rows, base.dim, search * 1e3, params.listings, args.views,
            quadrant * 1e3, stats.intra_mean, stats.inter_mean, stats.auc
        ),
    );
    Ok(())
}

/// Arguments of `natview-bench pca`.
#[derive(Debug, Args)]
pub struct PcaArgs {
    /// Input matrix (`.npy`).
    #[arg(long)]
    input: PathBuf,
    /// Write the 2-D projection here (`.npy`, n × 2).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Timed repetitions; the median is reported.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// PCA to 2-D of the input rows.
pub fn pca(args: &PcaArgs) -> anyhow::Result<()> {
    let matrix = read_matrix(&args.input)?;
    let mut times = Vec::new();
    let mut projection = None;
    for _ in 0..args.repeat.max(1) {
        let t = Instant::now();
        projection = Some(pca_2d(&matrix)?);
        times.push(t.elapsed().as_secs_f64());
    }
    let projection = projection.context("no repetition ran")?;
    if let Some(out) = &args.out {
        let flat: Vec<f32> = projection.points.iter().flatten().copied().collect();
        npy::write(out, &[projection.points.len(), 2], &flat)?;
    }
    let secs = median(&mut times);
    let ratio = projection.explained_variance_ratio;
    emit(
        args.json,
        json!({"seconds": secs, "rows": matrix.rows, "dim": matrix.dim, "explained": ratio}),
        format!(
            "pca: {} × {} → 2-D in {:.3} s (explained variance {:.4} + {:.4})",
            matrix.rows, matrix.dim, secs, ratio[0], ratio[1]
        ),
    );
    Ok(())
}

/// Arguments of `natview-bench forward`.
#[derive(Debug, Args)]
pub struct ForwardArgs {
    /// Preprocessed images (`.npy`, n × 3 × size × size, normalised).
    #[arg(long)]
    input: PathBuf,
    /// Write the L2-normalised embeddings here (`.npy`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Timed passes; the median is reported.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Images/s of the encoder's forward pass on preprocessed input (no decoding, no resizing).
pub fn forward(args: &ForwardArgs, common: &CommonArgs) -> anyhow::Result<()> {
    let array = npy::read(&args.input)?;
    let [n, 3, h, w] = array.shape[..] else {
        bail!(
            "{}: expected n × 3 × size × size, got {:?}",
            args.input.display(),
            array.shape
        );
    };
    let spec = common.spec()?;
    if h != spec.input_size_px as usize || w != h {
        bail!(
            "{}: images are {h} × {w}, the model takes {} px (set --size)",
            args.input.display(),
            spec.input_size_px
        );
    }
    let device = choose_device(common.cpu);
    let encoder = Encoder::new(&spec, &device)?;
    let batch = common.batch.unwrap_or(16).max(1);
    let input = candle_core::Tensor::from_vec(array.data, (n, 3, h, w), &device)?;
    let run = || -> anyhow::Result<Vec<Vec<f32>>> {
        let mut rows = Vec::with_capacity(n);
        for start in (0..n).step_by(batch) {
            let chunk = input.narrow(0, start, batch.min(n - start))?;
            rows.extend(encoder.embed_input(&chunk)?);
        }
        Ok(rows)
    };
    run()?; // warm-up
    let mut rates = Vec::new();
    let mut rows = Vec::new();
    for _ in 0..args.repeat.max(1) {
        let t = Instant::now();
        rows = run()?;
        rates.push(n as f64 / t.elapsed().as_secs_f64());
    }
    if let Some(out) = &args.out {
        let m = Matrix::from_rows(&rows).context("rows of equal length")?;
        npy::write_matrix(out, &m)?;
    }
    let rate = median(&mut rates);
    emit(
        args.json,
        json!({"images_per_s": rate, "batch": batch, "images": n, "threads": rayon::current_num_threads()}),
        format!(
            "forward: {} on {} images at batch {batch}: {rate:.1} images/s ({} threads)",
            spec.describe(),
            n,
            rayon::current_num_threads()
        ),
    );
    Ok(())
}
