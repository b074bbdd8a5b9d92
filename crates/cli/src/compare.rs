//! `natview compare DATASET --methods simsiam,infonce,byol,moby,swav`: each method fine-tuned
//! from the same starting weights, seed, steps and batch, on the same training listings, and
//! evaluated on the same held-out listings (retrieval, intra/inter gap and AUC, the low-shot
//! probes where the images have labels, and a quadrant chart per method on the same listings);
//! one table (terminal and Markdown) and JSON.

use super::commands::load;
use super::compare_eval::{quadrant_charts, ChartFile, HeldOut, ProbeReport};
use super::finetune::{model_and_start, BarObserver};
use super::CommonArgs;
use clap::Args;
use natview_core::jobs::CancelFlag;
use natview_core::workspace::Workspace;
use natview_encoder::{EncoderSpec, ModelKind};
use natview_train::{
    finetune, EvalSummary, Method, Outcome, StartFrom, TrainConfig, TrainReport, TrainRequest,
};
use std::path::PathBuf;

/// `natview compare` arguments.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Dataset: a folder of listings, a flat folder, or a .csv/.jsonl manifest.
    dataset: PathBuf,
    /// The methods, comma-separated: simsiam, infonce, byol, moby, swav.
    #[arg(long, default_value = "simsiam,infonce,byol,moby,swav")]
    methods: String,
    /// Optimiser steps of each run.
    #[arg(long, default_value_t = 100)]
    steps: usize,
    /// Peak learning rate of every run.
    #[arg(long, default_value_t = 0.05)]
    lr: f64,
    /// Fraction of listings held out (the same for every method).
    #[arg(long, default_value_t = 0.2)]
    heldout: f64,
    /// Starting weights, as for `natview finetune --from`.
    #[arg(long)]
    from: Option<String>,
    /// Where the runs, the table (compare.md) and compare.json go (default: compare/ in the
    /// workspace, with the trained weights as `finetuned.compare-<method>.<model>.safetensors`
    /// in the workspace itself, so that the app's Model menu and Metrics view list them).
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
}

/// One method's run.
#[derive(serde::Serialize)]
struct MethodResult {
    method: &'static str,
    steps: usize,
    train_secs: f64,
    steps_per_sec: f64,
    before: EvalSummary,
    after: Option<EvalSummary>,
    weights: PathBuf,
    /// The low-shot probes on the held-out images (where they have labels).
    probe: Option<ProbeReport>,
    /// Its quadrant chart of the held-out listings.
    chart: Option<ChartFile>,
}

/// The probe and chart of an encoder that was not trained here (the start, raw pixels).
#[derive(serde::Serialize)]
struct Reference {
    summary: Option<EvalSummary>,
    probe: Option<ProbeReport>,
    chart: Option<ChartFile>,
}

/// Runs `natview compare`.
pub fn run(args: &CompareArgs, common: &CommonArgs) -> anyhow::Result<()> {
    let methods: Vec<Method> = args
        .methods
        .split(',')
        .map(|m| m.trim().parse::<Method>().map_err(|e| anyhow::anyhow!(e)))
        .collect::<anyhow::Result<_>>()?;
    if methods.is_empty() {
        anyhow::bail!("--methods names no method");
    }
    let (model, start) = model_and_start(args.from.as_deref(), common)?;
    let dataset = load(&args.dataset)?;
    let workspace = Workspace::for_dataset(&dataset, common.workspace.as_deref());
    workspace.create()?;
    let out_dir = args
        .out_dir
        .clone()
        .unwrap_or_else(|| workspace.dir().join("compare"));
    std::fs::create_dir_all(&out_dir)?;
    let size = common.size.unwrap_or(model.default_input_size_px());
    let cancel = CancelFlag::new();
    let mut results = Vec::new();
    let mut pixels = None;
    for &method in &methods {
        let config = TrainConfig {
            input_size_px: size,
            steps: args.steps,
            batch_size: common.batch.unwrap_or(64),
            learning_rate: args.lr,
            warmup_steps: (args.steps / 10).clamp(1, 20),
            seed: common.seed,
            heldout_fraction: args.heldout,
            ..TrainConfig::new(method, model, start.clone())
        };
        let name = method.name();
        eprintln!("compare: {} ({} steps)", method.label(), args.steps);
        let observer = BarObserver::new(common.quiet, args.steps);
        let weights = match &args.out_dir {
            Some(dir) => dir.join(format!("{name}.{}.safetensors", model.name())),
            None => workspace.dir().join(format!(
                "finetuned.compare-{name}.{}.safetensors",
                model.name()
            )),
        };
        let request = TrainRequest {
            config,
            dataset: &dataset,
            checkpoint: out_dir.join(format!("{name}.{}.ckpt.safetensors", model.name())),
            out: weights.clone(),
            resume: false,
            force_cpu: common.cpu,
        };
        let report: TrainReport = finetune(&request, &observer, &cancel)?;
        observer.bar.finish_and_clear();
        if report.outcome != Outcome::Finished {
            anyhow::bail!("{}: the run stopped after step {}", name, report.steps_done);
        }
        pixels = Some(report.pixels);
        results.push(MethodResult {
            method: name,
            steps: report.steps_done,
            train_secs: report.train_secs,
            steps_per_sec: report.steps_per_sec,
            before: report.before,
            after: report.after,
            weights,
            probe: None,
            chart: None,
        });
    }
    // The same held-out images through every encoder: probes and quadrant charts.
    let held = HeldOut::new(&dataset, args.heldout, common.seed, size)?;
    let spec = |weights: Option<PathBuf>, model: ModelKind, size: u32| EncoderSpec {
        model,
        input_size_px: size,
        weights,
        seed: common.seed,
        weights_key: None,
        pool: None,
        precision: natview_encoder::Precision::F32,
    };
    let start_weights = match &start {
        StartFrom::Weights(path) => Some(path.clone()),
        StartFrom::Scratch => None,
    };
    let mut encoders = vec![(
        "start".to_string(),
        format!("{} (start)", model.name()),
        held.embed(&spec(start_weights, model, size), common.cpu)?,
    )];
    for r in &results {
        encoders.push((
            r.method.to_string(),
            format!("{} after {} {} steps", model.name(), r.method, r.steps),
            held.embed(&spec(Some(r.weights.clone()), model, size), common.cpu)?,
        ));
    }
    encoders.push((
        "pixels".to_string(),
        "raw pixels".to_string(),
        held.embed(&spec(None, ModelKind::Pixels, 32), common.cpu)?,
    ));
    let mut charts = quadrant_charts(&held, &encoders, common.seed, &out_dir)?.into_iter();
    let mut probes = encoders
        .iter()
        .map(|(_, _, m)| held.probe(m, common.seed))
        .collect::<Vec<_>>()
        .into_iter();
    let start_ref = Reference {
        summary: results.first().map(|r| r.before),
        probe: probes.next().flatten(),
        chart: charts.next(),
    };
    for r in &mut results {
        r.probe = probes.next().flatten();
        r.chart = charts.next();
    }
    let pixels_ref = Reference {
        summary: pixels,
        probe: probes.next().flatten(),
        chart: charts.next(),
    };
    let table = markdown_table(&results, &start_ref, &pixels_ref);
    natview_core::workspace::write_atomic(&out_dir.join("compare.md"), table.as_bytes())?;
    let json = serde_json::json!({
        "dataset": dataset.source,
        "model": model.name(),
        "steps": args.steps,
        "heldout": args.heldout,
        "seed": common.seed,
        "heldout_images": held.len(),
        "start": start_ref,
        "pixels": pixels_ref,
        "methods": results,
    });
    natview_core::workspace::write_json_atomic(&out_dir.join("compare.json"), &json)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        print!("{table}");
        println!(
            "→ {} (quadrant charts: quadrant-<method>.png beside it)",
            out_dir.join("compare.md").display()
        );
    }
    Ok(())
}

/// The comparison as a Markdown table: held-out figures after training, the start first and
/// raw pixels last; the probe columns where the held-out images have labels.
fn markdown_table(results: &[MethodResult], start: &Reference, pixels: &Reference) -> String {
    let probed = start.probe.is_some();
    let mut out =
        String::from("| method | recall@1 | recall@5 | recall@10 | mAP@10 | gap | ROC AUC |");
    if probed {
        out.push_str(" kNN 10 % | linear 10 % | linear 100 % |");
    }
    out.push_str(" train s | steps/s |\n|---|---|---|---|---|---|---|");
    if probed {
        out.push_str("---|---|---|");
    }
    out.push_str("---|---|\n");
    let row = |name: &str, s: &EvalSummary, probe: Option<&ProbeReport>, timing: String| {
        let mut line = format!(
            "| {name} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
            s.recall_at_1, s.recall_at_5, s.recall_at_10, s.map_at_10, s.gap, s.auc
        );
        if probed {
            line.push_str(&probe_cells(probe));
        }
        line.push_str(&timing);
        line.push('\n');
        line
    };
    let none = " - | - |".to_string();
    if let Some(s) = &start.summary {
        out.push_str(&row("(start)", s, start.probe.as_ref(), none.clone()));
    }
    for r in results {
        match &r.after {
            Some(after) => out.push_str(&row(
                r.method,
                after,
                r.probe.as_ref(),
                format!(" {:.0} | {:.2} |", r.train_secs, r.steps_per_sec),
            )),
            None => out.push_str(&format!("| {} | (no held-out listings) |\n", r.method)),
        }
    }
    if let Some(s) = &pixels.summary {
        out.push_str(&row("raw pixels", s, pixels.probe.as_ref(), none));
    }
    out
}

/// The probe cells: kNN and linear accuracy at 10 % of the pool, linear at 100 %.
fn probe_cells(probe: Option<&ProbeReport>) -> String {
    let at = |fraction: f64| {
        probe.and_then(|p| p.rows.iter().find(|r| (r.fraction - fraction).abs() < 1e-9))
    };
    let cell = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
    format!(
        " {} | {} | {} |",
        cell(at(0.1).map(|r| r.knn)),
        cell(at(0.1).map(|r| r.linear)),
        cell(at(1.0).map(|r| r.linear))
    )
}
