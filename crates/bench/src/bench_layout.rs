//! `natview-bench layout` and `natview-bench layout-quality`: UMAP / t-SNE of a `.npy` matrix timed by
//! phase, and the quality measures of any layout (natview's or a peer's) of that matrix.

use crate::bench_data::read_matrix;
use anyhow::{bail, Context};
use clap::Args;
use natview_analysis::layout::LayoutObserver;
use natview_analysis::projection::{layout_input, project};
use natview_analysis::quality::{layout_quality, DEFAULT_QUALITY_SAMPLE};
use natview_core::npy;
use natview_pipeline::layouts::QUALITY_K;
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `natview-bench layout`.
#[derive(Debug, Args)]
pub struct LayoutArgs {
    /// Input matrix (`.npy`, one embedding per row).
    #[arg(long)]
    input: PathBuf,
    /// umap or tsne (or pca).
    #[arg(long, default_value = "umap")]
    method: String,
    #[command(flatten)]
    params: natview_cli::project::LayoutParams,
    /// Layout seed.
    #[arg(long, default_value_t = 0)]
    layout_seed: u64,
    /// Write the layout here (`.npy`, n × 2).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write the input UMAP and t-SNE lay out (PCA to 50 dimensions, unit rows) here, for the
    /// peers to get the same input, and stop.
    #[arg(long)]
    save_input: Option<PathBuf>,
    /// Also measure the layout's quality (kNN preservation, trustworthiness at k = 10).
    #[arg(long)]
    quality: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Records when each phase began.
struct PhaseClock {
    started: Instant,
    phases: Vec<(String, f64)>,
}

impl LayoutObserver for PhaseClock {
    fn progress(&mut self, phase: &str, _done: usize, _total: usize) -> bool {
        if self.phases.last().map(|(p, _)| p.as_str()) != Some(phase) {
            self.phases
                .push((phase.to_string(), self.started.elapsed().as_secs_f64()));
        }
        true
    }
}

/// Lays out the input, timing each phase.
pub fn layout(args: &LayoutArgs) -> anyhow::Result<()> {
    let matrix = read_matrix(&args.input)?;
    if let Some(path) = &args.save_input {
        let input = layout_input(&matrix)?;
        npy::write_matrix(path, &input.unit_rows)?;
        println!(
            "{}",
            json!({"rows": input.unit_rows.rows, "dim": input.unit_rows.dim,
                   "variance_kept": input.variance_kept, "out": path})
        );
        return Ok(());
    }
    let spec = args.params.spec(&args.method, args.layout_seed)?;
    let mut clock = PhaseClock {
        started: Instant::now(),
        phases: Vec::new(),
    };
    let projection = project(&matrix, &spec, &mut clock)?;
    let seconds = clock.started.elapsed().as_secs_f64();
    if let Some(out) = &args.out {
        let flat: Vec<f32> = projection.points.iter().flatten().copied().collect();
        npy::write(out, &[projection.points.len(), 2], &flat)?;
    }
    let quality = if args.quality {
        Some(layout_quality(
            &matrix,
            &projection.points,
            QUALITY_K,
            DEFAULT_QUALITY_SAMPLE,
            0,
        )?)
    } else {
        None
    };
    // Phase durations: from each phase's start to the next one's (or the end).
    let mut phases = serde_json::Map::new();
    for (i, (name, start)) in clock.phases.iter().enumerate() {
        let end = clock.phases.get(i + 1).map_or(seconds, |p| p.1);
        *phases.entry(name.clone()).or_insert(json!(0.0)) =
            json!(phases.get(name).and_then(|v| v.as_f64()).unwrap_or(0.0) + end - start);
    }
    let value = json!({"seconds": seconds, "rows": matrix.rows, "dim": matrix.dim,
                       "spec": spec, "phases": phases, "quality": quality});
    if args.json {
        println!("{value}");
    } else {
        println!(
            "{} of {} × {} in {seconds:.2} s; phases {}{}",
            spec.describe(),
            matrix.rows,
            matrix.dim,
            serde_json::Value::Object(phases),
            quality.map_or(String::new(), |q| format!(
                "; kNN preservation {:.4}, trustworthiness {:.4}",
                q.knn_preservation, q.trustworthiness
            ))
        );
    }
    Ok(())
}

/// Arguments of `natview-bench layout-quality`.
#[derive(Debug, Args)]
pub struct QualityArgs {
    /// The matrix that was laid out (`.npy`; neighbours are judged by inner product).
    #[arg(long)]
    input: PathBuf,
    /// The layout (`.npy`, n × 2).
    #[arg(long)]
    layout: PathBuf,
    /// Query points sampled.
    #[arg(long, default_value_t = DEFAULT_QUALITY_SAMPLE)]
    sample: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// The quality measures of a layout of the input.
pub fn quality(args: &QualityArgs) -> anyhow::Result<()> {
    let matrix = read_matrix(&args.input)?;
    let layout = npy::read(&args.layout)?;
    if layout.shape.len() != 2 || layout.shape[1] != 2 {
        bail!(
            "{}: expected an n × 2 layout, got shape {:?}",
            args.layout.display(),
            layout.shape
        );
    }
    let points: Vec<[f32; 2]> = layout
        .into_matrix()
        .data
        .chunks_exact(2)
        .map(|p| [p[0], p[1]])
        .collect();
    let q = layout_quality(&matrix, &points, QUALITY_K, args.sample, 0)
        .with_context(|| format!("{}", args.layout.display()))?;
    if args.json {
        println!("{}", json!(q));
    } else {
        println!(
            "k = {} on {} points: kNN preservation {:.4}, trustworthiness {:.4}",
            q.k, q.sampled, q.knn_preservation, q.trustworthiness
        );
    }
    Ok(())
}
