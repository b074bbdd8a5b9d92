//! natview-bench: natview's benchmarks, apart from the `natview` binary users run — embedding
//! throughput, HNSW build time and recall against exact search, the cases `bench/run.sh` runs
//! beside their Python peers, the app's frame times (feature `gui`) and the generator of large
//! datasets (`natview-bench expand`). Prints figures; nothing here asserts a speed.

#![forbid(unsafe_code)]

mod bench_data;
mod bench_decode;
mod bench_expand;
mod bench_files;
mod bench_layout;
#[cfg(feature = "milvus")]
mod bench_milvus;

use crate::bench_files::median;
use anyhow::bail;
use clap::{Parser, Subcommand};
use natview_cli::commands::{embed, load};
use natview_cli::CommonArgs;
use natview_core::dataset::decode_rgb;
use natview_core::rng::SplitMix64;
use natview_encoder::{choose_device, device_name, Encoder};
use natview_index::{exact_neighbours_all, HnswParams, NeighbourIndex};
use natview_pipeline::default_batch_size;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// natview's benchmarks: each case prints its figures (and JSON where asked).
#[derive(Debug, Parser)]
#[command(name = "natview-bench", version, about)]
struct BenchArgs {
    #[command(subcommand)]
    kind: BenchKind,
    #[command(flatten)]
    common: CommonArgs,
}

impl BenchArgs {
    /// Whether this benchmark opens the desktop window.
    fn is_gui(&self) -> bool {
        #[cfg(feature = "gui")]
        if matches!(self.kind, BenchKind::Gui { .. }) {
            return true;
        }
        false
    }
}

fn main() {
    natview_cli::process::run_binary(
        BenchArgs::is_gui,
        |args| args.common.threads.map(usize::from),
        |args| run(&args, &args.common),
    );
}

#[derive(Debug, Subcommand)]
enum BenchKind {
    /// Images/s of the encoder on a dataset's images (decoding excluded, timed apart).
    Embed {
        /// Dataset.
        dataset: PathBuf,
        /// Timed passes over the images; the median is reported.
        #[arg(long, default_value_t = 3)]
        repeat: usize,
        /// Use at most this many images.
        #[arg(long, default_value_t = 1024)]
        limit: usize,
    },
    /// HNSW build time, and recall@10 and query time against exact search at several ef.
    Index {
        /// Dataset.
        dataset: PathBuf,
        /// ef values to measure.
        #[arg(long, value_delimiter = ',', default_value = "16,32,64,128")]
        ef: Vec<usize>,
        /// HNSW links per node.
        #[arg(long = "m", default_value_t = 16)]
        max_connections: usize,
        /// HNSW build candidate list.
        #[arg(long, default_value_t = 200)]
        ef_construction: usize,
        /// Number of queries (random items, seed 0).
        #[arg(long, default_value_t = 2000)]
        queries: usize,
    },
    /// The desktop window driven by injected input (run under Xvfb without a display): time to
    /// the first gallery frame and to ready, gallery filtering, frame times while dragging the
    /// projection (all points, then zoomed in with thumbnails), click → neighbours, memory.
    #[cfg(feature = "gui")]
    Gui {
        /// Dataset.
        dataset: PathBuf,
        /// Frames dragged in each panning phase.
        #[arg(long, default_value_t = 240)]
        pan_frames: usize,
        /// When the dataset has to be embedded: stop after this many seconds of it and report
        /// the app's embedding rate (0: wait until ready and measure everything).
        #[arg(long, default_value_t = 0.0)]
        embed_seconds: f64,
        /// Text typed into the gallery filter.
        #[arg(long, default_value = "smil")]
        filter: String,
        /// Also write the report (JSON) here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// A large dataset made from a small one by seeded augmentations (for measuring the app at
    /// 100k–1M images): PNG files and a manifest.
    Expand(crate::bench_expand::ExpandArgs),
    /// Writes the inputs shared with the peer benchmarks (bench/run.sh): embeddings of every
    /// image and of augmented views, queries, a 512-d PCA input and preprocessed images.
    Vectors(crate::bench_data::VectorsArgs),
    /// HNSW on `.npy` vectors: build time, single-thread queries/s and recall at each ef.
    Ann(crate::bench_files::AnnArgs),
    /// Exact top-k search and the quadrant-chart similarity matrix on `.npy` vectors.
    Exact(crate::bench_files::ExactArgs),
    /// PCA to 2-D of a `.npy` matrix.
    Pca(crate::bench_files::PcaArgs),
    /// UMAP or t-SNE of a `.npy` matrix, timed by phase (and its quality with --quality).
    Layout(crate::bench_layout::LayoutArgs),
    /// kNN preservation and trustworthiness of a layout (`.npy`, n × 2) of a `.npy` matrix.
    LayoutQuality(crate::bench_layout::QualityArgs),
    /// Encoder forward pass on preprocessed `.npy` images: images/s, and the embeddings.
    Forward(crate::bench_files::ForwardArgs),
    /// Decoding a folder's JPEGs as `natview embed` does, on one thread: images/s.
    Decode(crate::bench_decode::DecodeArgs),
    /// The same embeddings and queries through a Milvus server and natview's in-process HNSW:
    /// export rows/s, per-query latency, recall against exact search.
    #[cfg(feature = "milvus")]
    Milvus(crate::bench_milvus::MilvusArgs),
    /// Seconds per fine-tuning step (two views of --batch random images, forward, loss,
    /// backward, SGD) — the same step `natview finetune` runs, without data loading.
    Train {
        /// simsiam, infonce, byol, moby or swav.
        #[arg(long, default_value = "infonce")]
        method: String,
        /// Timed steps (after one warm-up step); the median is reported.
        #[arg(long, default_value_t = 8)]
        steps: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a benchmark.
fn run(args: &BenchArgs, common: &CommonArgs) -> anyhow::Result<()> {
    match &args.kind {
        BenchKind::Embed {
            dataset,
            repeat,
            limit,
        } => bench_embed(dataset, *repeat, *limit, common),
        BenchKind::Index {
            dataset,
            ef,
            max_connections,
            ef_construction,
            queries,
        } => bench_index(
            dataset,
            ef,
            *max_connections,
            *ef_construction,
            *queries,
            common,
        ),
        BenchKind::Train {
            method,
            steps,
            json,
        } => bench_train(method, *steps, *json, common),
        BenchKind::Expand(a) => crate::bench_expand::run(a, common),
        #[cfg(feature = "gui")]
        BenchKind::Gui {
            dataset,
            pan_frames,
            embed_seconds,
            filter,
            out,
        } => bench_gui(
            dataset,
            *pan_frames,
            *embed_seconds,
            filter,
            out.as_deref(),
            common,
        ),
        BenchKind::Vectors(a) => crate::bench_data::run(a, common),
        BenchKind::Ann(a) => crate::bench_files::ann(a),
        BenchKind::Exact(a) => crate::bench_files::exact(a),
        BenchKind::Pca(a) => crate::bench_files::pca(a),
        BenchKind::Layout(a) => crate::bench_layout::layout(a),
        BenchKind::LayoutQuality(a) => crate::bench_layout::quality(a),
        BenchKind::Forward(a) => crate::bench_files::forward(a, common),
        BenchKind::Decode(a) => crate::bench_decode::run(a),
        #[cfg(feature = "milvus")]
        BenchKind::Milvus(a) => crate::bench_milvus::run(a, common),
    }
}

fn bench_train(method: &str, steps: usize, json: bool, common: &CommonArgs) -> anyhow::Result<()> {
    use natview_train::{
        finish_step, train_step_judged, JudgedBatch, Method, Sgd, SslModel, StartFrom, Target,
        TrainConfig,
    };
    let method: Method = method.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    let spec = common.spec()?;
    let Some(architecture) = spec.architecture()? else {
        bail!("the pixel baseline has nothing to train");
    };
    let device = choose_device(common.cpu);
    let batch = common.batch.unwrap_or(64);
    let size = spec.input_size_px as usize;
    let config = TrainConfig {
        input_size_px: spec.input_size_px,
        steps: steps + 1,
        batch_size: batch,
        warmup_steps: 0,
        seed: common.seed,
        heldout_fraction: 0.0,
        ..TrainConfig::new(method, spec.model, StartFrom::Scratch)
    };
    let model = SslModel::new(
        &architecture,
        method,
        Default::default(),
        common.seed,
        &device,
    )?;
    // BYOL and MoBY time the whole step: the target's projections, the queue, the EMA.
    let mut target = Target::for_config(&architecture, &model, None, &config, &device)?;
    let mut sgd = Sgd::new(0.9, 1e-4);
    let x1 = candle_core::Tensor::randn(0f32, 1.0, (batch, 3, size, size), &device)?;
    let x2 = candle_core::Tensor::randn(0f32, 1.0, (batch, 3, size, size), &device)?;
    let no_judgements = JudgedBatch::default();
    let mut times = Vec::new();
    for step in 0..=steps {
        let started = Instant::now();
        train_step_judged(
            &model,
            &mut sgd,
            (&x1, &x2),
            &config,
            0.05,
            &no_judgements,
            target.as_mut(),
        )?;
        finish_step(&model, target.as_ref(), step + 1, &config)?;
        if step > 0 {
            times.push(started.elapsed().as_secs_f64());
        }
    }
    let secs = median(&mut times);
    let conv = if natview_encoder::own_cpu_kernels() {
        "natview im2col/gemm"
    } else {
        "candle"
    };
    crate::bench_files::emit(
        json,
        serde_json::json!({
            "model": spec.model.name(), "method": method.name(), "size": size, "batch": batch,
            "s_per_step": secs, "steps": steps, "threads": rayon::current_num_threads(),
            "device": device_name(&device), "conv": conv,
        }),
        format!(
            "train: {} {} @{size}px on {} ({} threads), batch {batch} × 2 views: median {secs:.3} s/step ({:.3} steps/s) over {steps} steps; conv: {conv}",
            spec.model.name(),
            method.label(),
            device_name(&device),
            rayon::current_num_threads(),
            1.0 / secs,
        ),
    );
    Ok(())
}

fn bench_embed(
    path: &Path,
    repeat: usize,
    limit: usize,
    common: &CommonArgs,
) -> anyhow::Result<()> {
    let dataset = load(path)?;
    let spec = common.spec()?;
    let device = choose_device(common.cpu);
    let encoder = Encoder::new(&spec, &device)?;
    let batch = common.batch.unwrap_or_else(|| default_batch_size(&device));
    let started = Instant::now();
    let images: Vec<_> = dataset
        .items
        .iter()
        .take(limit)
        .filter_map(|item| decode_rgb(&dataset.item_path(item), spec.input_size_px.max(64)).ok())
        .collect();
    if images.is_empty() {
        bail!("{}: no decodable images", path.display());
    }
    let decode_secs = started.elapsed().as_secs_f64();
    // Warm-up pass on one batch (allocations, kernel selection).
    encoder.embed(&images[..batch.min(images.len())])?;
    let mut rates = Vec::new();
    for _ in 0..repeat.max(1) {
        let t = Instant::now();
        for chunk in images.chunks(batch.max(1)) {
            encoder.embed(chunk)?;
        }
        rates.push(images.len() as f64 / t.elapsed().as_secs_f64());
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "embed: {} on {} ({} threads), batch {}, {} images: median {:.1} images/s over {} passes (decode: {:.0} images/s)",
        spec.describe(),
        device_name(&device),
        threads,
        batch,
        images.len(),
        median(&mut rates),
        rates.len(),
        images.len() as f64 / decode_secs
    );
    Ok(())
}

fn bench_index(
    path: &Path,
    efs: &[usize],
    max_connections: usize,
    ef_construction: usize,
    queries: usize,
    common: &CommonArgs,
) -> anyhow::Result<()> {
    let embedded = embed(path, common)?;
    let matrix = &embedded.set.matrix;
    let params = HnswParams {
        max_connections,
        ef_construction,
        ef_search: 64,
    };
    let t = Instant::now();
    let index = NeighbourIndex::build(matrix, params)?;
    let build_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let truth = exact_neighbours_all(matrix, 10)?;
    let exact_secs = t.elapsed().as_secs_f64();
    let mut ids: Vec<usize> = (0..matrix.rows).collect();
    SplitMix64::new(0).shuffle(&mut ids);
    ids.truncate(queries.min(matrix.rows));
    println!(
        "index: {} vectors × {} dims, M={max_connections}, ef_construction={ef_construction}: build {:.2} s ({} threads); exact all-pairs top-10 {:.2} s",
        matrix.rows,
        matrix.dim,
        build_secs,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        exact_secs
    );
    println!(
        "{:>6} {:>10} {:>12} {:>10}",
        "ef", "recall@10", "ms/query", "queries/s"
    );
    for &ef in efs {
        let t = Instant::now();
        let mut hits = 0usize;
        let mut wanted = 0usize;
        for &id in &ids {
            let found = index.search_excluding(matrix.row(id), id, 10, Some(ef))?;
            let exact: Vec<usize> = truth[id].iter().map(|n| n.id).collect();
            wanted += exact.len();
            hits += found.iter().filter(|n| exact.contains(&n.id)).count();
        }
        let secs = t.elapsed().as_secs_f64();
        println!(
            "{:>6} {:>10.4} {:>12.3} {:>10.0}",
            ef,
            hits as f64 / wanted.max(1) as f64,
            1000.0 * secs / ids.len() as f64,
            ids.len() as f64 / secs
        );
    }
    Ok(())
}

#[cfg(feature = "gui")]
fn bench_gui(
    dataset: &Path,
    pan_frames: usize,
    embed_seconds: f64,
    filter: &str,
    out: Option<&Path>,
    common: &CommonArgs,
) -> anyhow::Result<()> {
    let spec = if common.chooses_encoder() {
        Some(common.spec()?)
    } else {
        None
    };
    let report = natview_app::run_gui_bench(natview_app::GuiBenchOptions {
        dataset: dataset.to_path_buf(),
        spec,
        pan_frames,
        embed_seconds,
        filter: filter.to_string(),
    })
    .map_err(|e| anyhow::anyhow!(e))?;
    let text = serde_json::to_string_pretty(&report)?;
    println!("{text}");
    if let Some(out) = out {
        natview_core::workspace::write_atomic(out, text.as_bytes())
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", out.display()))?;
    }
    Ok(())
}
