//! `natview compare DATASET --methods simsiam,infonce,byol,moby,swav`: each method fine-tuned
//! from the same starting weights, seed, steps and batch, on the same training listings, and
//! evaluated on the same held-out listings; one table (terminal and Markdown) and JSON.

use super::commands::load;
use super::finetune::{model_and_start, BarObserver};
use super::CommonArgs;
use clap::Args;
use natview::jobs::CancelFlag;
use natview::train::{
    finetune, EvalSummary, Method, Outcome, TrainConfig, TrainReport, TrainRequest,
};
use natview::workspace::Workspace;
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
    let cancel = CancelFlag::new();
    let mut results = Vec::new();
    let mut pixels = None;
    for &method in &methods {
        let config = TrainConfig {
            input_size_px: common.size.unwrap_or(model.default_input_size_px()),
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
        });
    }
    let table = markdown_table(&results, pixels.as_ref());
    std::fs::write(out_dir.join("compare.md"), &table)?;
    let json = serde_json::json!({
        "dataset": dataset.source,
        "model": model.name(),
        "steps": args.steps,
        "heldout": args.heldout,
        "seed": common.seed,
        "pixels": pixels,
        "methods": results,
    });
    std::fs::write(
        out_dir.join("compare.json"),
        serde_json::to_string_pretty(&json)?,
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        print!("{table}");
        println!("→ {}", out_dir.join("compare.md").display());
    }
    Ok(())
}

/// The comparison as a Markdown table: held-out figures after training (before in the first
/// row, the same for every method), raw pixels last.
fn markdown_table(results: &[MethodResult], pixels: Option<&EvalSummary>) -> String {
    let mut out = String::from(
        "| method | recall@1 | recall@5 | recall@10 | gap | ROC AUC | train s | steps/s |\n|---|---|---|---|---|---|---|---|\n",
    );
    let row = |name: &str, s: &EvalSummary, secs: String, rate: String| {
        format!(
            "| {name} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {secs} | {rate} |\n",
            s.recall_at_1, s.recall_at_5, s.recall_at_10, s.gap, s.auc
        )
    };
    if let Some(first) = results.first() {
        out.push_str(&row("(start)", &first.before, "-".into(), "-".into()));
    }
    for r in results {
        match &r.after {
            Some(after) => out.push_str(&row(
                r.method,
                after,
                format!("{:.0}", r.train_secs),
                format!("{:.2}", r.steps_per_sec),
            )),
            None => out.push_str(&format!("| {} | (no held-out listings) |\n", r.method)),
        }
    }
    if let Some(p) = pixels {
        out.push_str(&row("raw pixels", p, "-".into(), "-".into()));
    }
    out
}
