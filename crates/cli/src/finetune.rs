//! `natview finetune`: self-supervised training on natural views, with a progress bar (loss,
//! steps/s), clean Ctrl-C (the checkpoint keeps the last step; `--resume` continues), and the
//! held-out report before vs after, beside raw pixels.

use super::commands::load;
use super::CommonArgs;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use natview_core::dataset::group_by_listing;
use natview_core::workspace::Workspace;
use natview_encoder::ModelKind;
use natview_train::{
    finetune, split_listings, DuplicatePolicy, EvalSummary, Judgements, Method, Outcome, StartFrom,
    StepReport, TrainConfig, TrainObserver, TrainReport, TrainRequest,
};
use std::path::{Path, PathBuf};

/// Options of `natview finetune`.
#[derive(Debug, Args)]
pub struct FinetuneArgs {
    /// Dataset: a folder of listings, a flat folder, or a .csv/.jsonl manifest.
    dataset: PathBuf,
    /// simsiam (stop-gradient, predictor), infonce (temperature, in-batch negatives), byol
    /// (predictor, momentum target network, no negatives), moby (momentum target, contrastive
    /// against a queue of its keys) or swav (online clustering, swapped prediction).
    #[arg(long, default_value = "simsiam")]
    method: String,
    /// Optimiser steps (each takes --batch listings, two views each).
    #[arg(long, default_value_t = 300, conflicts_with = "epochs")]
    steps: usize,
    /// Passes over the training listings (instead of --steps).
    #[arg(long)]
    epochs: Option<usize>,
    /// Peak learning rate (SGD, momentum 0.9), after a linear warm-up, then cosine decay.
    #[arg(long, default_value_t = 0.05)]
    lr: f64,
    /// Warm-up steps.
    #[arg(long, default_value_t = 20)]
    warmup: usize,
    /// Weight decay.
    #[arg(long, default_value_t = 1e-4)]
    weight_decay: f64,
    /// MoBY: earlier target keys kept as negatives.
    #[arg(long, default_value_t = natview_train::DEFAULT_QUEUE)]
    queue: usize,
    /// SwAV: number of prototypes (clusters).
    #[arg(long, default_value_t = natview_train::SWAV_PROTOTYPES)]
    prototypes: usize,
    /// BYOL and MoBY: the target network's momentum at the start (it rises to 1).
    #[arg(long, default_value_t = natview_train::DEFAULT_BASE_MOMENTUM)]
    target_momentum: f64,
    /// Softmax temperature of InfoNCE, MoBY and SwAV (default: 0.2; SwAV 0.1).
    #[arg(long)]
    temperature: Option<f64>,
    /// SwAV: Sinkhorn–Knopp's epsilon, the entropy weight of the cluster assignment (smaller:
    /// harder assignments); 0.025 to 1 (below, exp(score/epsilon) underflows in f32).
    #[arg(long, default_value_t = natview_train::DEFAULT_SINKHORN_EPSILON)]
    epsilon: f64,
    /// Steps between two health checks of the embedding (effective rank, alignment,
    /// uniformity on a fixed sample of 256 held-out images; 0: none).
    #[arg(long, default_value_t = natview_train::health_track::DEFAULT_HEALTH_EVERY)]
    health_every: usize,
    /// Keep training when the health checks show a collapse (by default the run stops,
    /// keeping its checkpoint, once the effective rank stays under a quarter of the start's
    /// for three checks in a row).
    #[arg(long)]
    no_collapse_stop: bool,
    /// Fraction of listings held out for evaluation (never trained on).
    #[arg(long, default_value_t = 0.2)]
    heldout: f64,
    /// Start from a model's shipped weights (`effnet-lite0`, `compact`: also picks that
    /// model), `shipped` (the --model's shipped weights), `scratch` (seeded init), or a weights
    /// FILE (natview's safetensors, or a PyTorch/Lightning/timm/VISSL checkpoint, whose network
    /// is read from the file). Default: the model's shipped weights when there are some, else
    /// scratch.
    #[arg(long)]
    from: Option<String>,
    /// Keep the first N stages of the trunk fixed (the stem is stage 0: `--freeze 1` fixes the
    /// stem, `--freeze 3` the stem and two stages); they run in evaluation mode, untrained.
    #[arg(long, default_value_t = 0)]
    freeze: usize,
    /// Never train on one kind of view, e.g. `design=twemoji` (a whole design held out); the
    /// held-out report then also gives recall@1 for queries of that kind (transfer, not
    /// memorisation).
    #[arg(long, value_name = "COLUMN=VALUE")]
    holdout_view: Option<natview_core::dataset::ViewFilter>,
    /// Train with the analysts' verdicts in the dataset's label store: `same` pairs as extra
    /// positives, `different` pairs as hard negatives (in one batch, plus a margin term on the
    /// trunk's features), near-duplicates as --duplicates says. A fifth of the judged pairs is
    /// kept out to show whether the change carries over. Without --labels, verdicts in the
    /// store are only measured.
    #[arg(long)]
    labels: bool,
    /// With --labels: leave out images carrying this tag (repeatable), e.g. `off-topic`.
    #[arg(long, value_name = "TAG", requires = "labels")]
    exclude_tag: Vec<String>,
    /// With --labels: `merge` the listings of near-duplicate pairs, or `drop` the second image.
    #[arg(long, default_value = "merge", requires = "labels")]
    duplicates: String,
    /// With --labels: `different` pairs are pushed until each image's cosine to the other is
    /// this far below its cosine to its own second view.
    #[arg(long, default_value_t = natview_train::DEFAULT_MARGIN, requires = "labels")]
    margin: f64,
    /// Continue the run saved in the checkpoint (same options).
    #[arg(long)]
    resume: bool,
    /// Checkpoint file (default: finetune.<method>.<model>.ckpt.safetensors in the workspace).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Where the trained encoder goes (default: finetuned.<model>.safetensors in the workspace).
    #[arg(long, short)]
    out: Option<PathBuf>,
}

/// The model and starting weights `--from` names (a model name: its shipped weights; `shipped`:
/// the --model's; `scratch`; or a weights file), else the --model with its shipped weights.
pub(super) fn model_and_start(
    from: Option<&str>,
    common: &CommonArgs,
) -> anyhow::Result<(ModelKind, StartFrom)> {
    // A file or a folder (a Hugging Face model folder) on disk is weights, not a model name.
    let from_model = from
        .filter(|f| !Path::new(f).exists())
        .and_then(|f| f.parse::<ModelKind>().ok());
    let from_file = from.map(Path::new).filter(|f| f.exists());
    let model: ModelKind = match (from_model, from_file) {
        (Some(m), _) => m,
        (None, Some(file)) => common.model_kind_for(Some(file))?,
        (None, None) => common.model_kind()?,
    };
    let shipped = || model.require_shipped_weights();
    let start = match from {
        Some("scratch") => StartFrom::Scratch,
        Some("shipped") => StartFrom::Weights(shipped()?),
        Some(_) if from_model.is_some() => StartFrom::Weights(shipped()?),
        Some(file) => StartFrom::Weights(PathBuf::from(file)),
        // A model with shipped weights starts from them (missing ones are an error, not a
        // silent start from scratch); one without starts from scratch.
        None if model.shipped_weights_file().is_some() => StartFrom::Weights(shipped()?),
        None => StartFrom::Scratch,
    };
    Ok((model, start))
}

/// A progress bar for a run: the phase, then loss, learning rate and steps/s.
pub(super) struct BarObserver {
    pub(super) bar: ProgressBar,
}

impl BarObserver {
    /// A bar of `total` steps (hidden with --quiet).
    pub(super) fn new(quiet: bool, total: usize) -> Self {
        let bar = if quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(total as u64)
        };
        if let Ok(style) = ProgressStyle::with_template("[{bar:30}] {pos}/{len} {msg} eta {eta}") {
            bar.set_style(style.progress_chars("=> "));
        }
        Self { bar }
    }
}

impl TrainObserver for BarObserver {
    fn phase(&self, name: &str) {
        self.bar.set_message(name.to_string());
    }

    fn health(&self, p: &natview_train::HealthPoint) {
        let line = format!(
            "step {}: effective rank {:.1}, 95 % of the variance in {} axes, alignment {}, uniformity {:.3}",
            p.step,
            p.effective_rank,
            p.dims_for_95,
            p.alignment.map_or("—".into(), |a| format!("{a:.3}")),
            p.uniformity
        );
        // The checks are results, not progress: printed with --quiet too.
        if self.bar.is_hidden() {
            eprintln!("{line}");
        } else {
            self.bar.println(line);
        }
    }

    fn step(&self, r: &StepReport) {
        self.bar.set_length(r.total as u64);
        self.bar.set_position(r.step as u64);
        self.bar.set_message(format!(
            "loss {:+.4} · lr {:.4} · {:.2} steps/s",
            r.loss, r.learning_rate, r.steps_per_sec
        ));
    }
}

/// `natview finetune`.
pub fn run(args: &FinetuneArgs, common: &CommonArgs) -> anyhow::Result<()> {
    if let Some(precision) = common.precision.filter(|p| !p.is_f32()) {
        anyhow::bail!(
            "--precision {precision}: {}",
            natview_encoder::EncoderError::HalfPrecisionUnsupported("fine-tuning".into())
        );
    }
    let method: Method = args
        .method
        .parse()
        .map_err(|e: String| anyhow::anyhow!(e))?;
    if !(0.0..1.0).contains(&args.target_momentum) {
        anyhow::bail!(
            "--target-momentum {} must be at least 0 and below 1",
            args.target_momentum
        );
    }
    if let Some(t) = args.temperature.filter(|t| !(*t > 0.0 && t.is_finite())) {
        anyhow::bail!("--temperature {t} must be a positive number");
    }
    if !(0.025..=1.0).contains(&args.epsilon) {
        anyhow::bail!("--epsilon {} must be between 0.025 and 1", args.epsilon);
    }
    if args.prototypes < 2 {
        anyhow::bail!("--prototypes {} must be at least 2", args.prototypes);
    }
    let (model, start) = model_and_start(args.from.as_deref(), common)?;
    let dataset = load(&args.dataset)?;
    let workspace = Workspace::for_dataset(&dataset, common.workspace.as_deref());
    workspace.create()?;
    let batch_size = common.batch.unwrap_or(64);
    let steps = match args.epochs {
        Some(epochs) => {
            let names: Vec<String> = group_by_listing(&dataset.items)
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            let train = split_listings(&names, args.heldout, common.seed).0.len();
            epochs * (train / batch_size.min(train).max(1)).max(1)
        }
        None => args.steps,
    };
    let judgements = if args.labels {
        let store_path = workspace.labels_path();
        if !store_path.is_file() {
            anyhow::bail!(
                "{}: no labels yet (judge pairs in the app's Review view first)",
                store_path.display()
            );
        }
        let store = natview_labels::LabelStore::open(&store_path)?;
        let policy: DuplicatePolicy = args
            .duplicates
            .parse()
            .map_err(|e: String| anyhow::anyhow!(e))?;
        for tag in &args.exclude_tag {
            if !store.tag_counts().iter().any(|(t, _)| t == tag) {
                eprintln!("labels: no image carries the tag `{tag}`");
            }
        }
        let mut judged = Judgements::from_store(&store, &args.exclude_tag, policy);
        judged.margin = args.margin;
        if judged.is_empty() {
            anyhow::bail!(
                "{}: no verdicts and no excluded images to train with",
                store_path.display()
            );
        }
        eprintln!("labels: {}", judged.describe());
        Some(judged)
    } else {
        // Without --labels, verdicts in the store are still measured: the report then shows
        // how this run moved the pairs the analysts judged.
        let store_path = workspace.labels_path();
        let measured = store_path
            .is_file()
            .then(|| natview_labels::LabelStore::open(&store_path).ok())
            .flatten()
            .map(|store| {
                Judgements::from_store(&store, &[], DuplicatePolicy::Merge).measured_only()
            })
            .filter(|j| !j.same.is_empty() || !j.different.is_empty() || !j.duplicates.is_empty());
        if let Some(j) = &measured {
            eprintln!("labels: {}", j.describe());
        }
        measured
    };
    let config = TrainConfig {
        method,
        model,
        input_size_px: common.size.unwrap_or(model.default_input_size_px()),
        steps,
        batch_size,
        learning_rate: args.lr,
        warmup_steps: args.warmup.min(steps / 2),
        momentum: 0.9,
        weight_decay: args.weight_decay,
        temperature: args.temperature.unwrap_or(method.default_temperature()),
        seed: common.seed,
        heldout_fraction: args.heldout,
        start,
        freeze: args.freeze,
        holdout_view: args.holdout_view.clone(),
        judgements,
        base_momentum: args.target_momentum,
        queue: args.queue,
        prototypes: args.prototypes,
        sinkhorn_epsilon: args.epsilon,
        pool: common.pool,
        health_every: args.health_every,
        collapse_stop: !args.no_collapse_stop,
    };
    let method_name = method.name();
    let checkpoint = args.checkpoint.clone().unwrap_or_else(|| {
        workspace.dir().join(format!(
            "finetune.{method_name}.{}{}.ckpt.safetensors",
            model.name(),
            if args.labels { ".labels" } else { "" }
        ))
    });
    let out = args.out.clone().unwrap_or_else(|| {
        workspace.dir().join(format!(
            "finetuned.{}{}.safetensors",
            model.name(),
            if args.labels { ".labels" } else { "" }
        ))
    });
    let cancel = super::interrupt_flag()?;
    eprintln!(
        "finetune: {method_name}, {} @{}px, {} steps × {} listings (2 views each), lr {} (warm-up {}), from {}; Ctrl-C stops and keeps the checkpoint",
        model.name(),
        config.input_size_px,
        config.steps,
        config.batch_size,
        config.learning_rate,
        config.warmup_steps,
        match &config.start {
            StartFrom::Scratch => "scratch".to_string(),
            StartFrom::Weights(p) => p.display().to_string(),
        }
    );
    let observer = BarObserver::new(common.quiet, config.steps);
    let bar = observer.bar.clone();
    let request = TrainRequest {
        config,
        dataset: &dataset,
        checkpoint: checkpoint.clone(),
        out: out.clone(),
        resume: args.resume,
        force_cpu: common.cpu,
    };
    let report = finetune(&request, &observer, &cancel)?;
    bar.finish_and_clear();
    print_report(&report, common.cpu);
    match report.outcome {
        Outcome::Finished => {
            println!("trained encoder → {}", out.display());
            println!("checkpoint → {}", checkpoint.display());
        }
        Outcome::Interrupted => {
            println!(
                "interrupted after step {}; checkpoint → {} (continue with --resume)",
                report.steps_done,
                checkpoint.display()
            );
        }
        Outcome::Collapsed => {
            println!(
                "stopped after step {}: {}; checkpoint → {} (--no-collapse-stop trains on)",
                report.steps_done,
                report
                    .collapse
                    .as_deref()
                    .unwrap_or("the embedding collapsed"),
                checkpoint.display()
            );
        }
    }
    Ok(())
}

fn print_report(report: &TrainReport, force_cpu: bool) {
    println!(
        "{} steps in {:.0} s on {} ({:.3} steps/s this run)",
        report.steps_done,
        report.train_secs,
        super::output::device_words(report.device, force_cpu),
        report.steps_per_sec
    );
    if let (Some(first), Some(last)) = (report.loss_curve.first(), report.loss_curve.last()) {
        println!("loss (mean of 10 steps): first {first:+.4}, last {last:+.4}");
    }
    println!(
        "held out: {} listings, {} images (never trained on)",
        report.heldout_listings, report.heldout_images
    );
    let row = |name: &str, value: fn(&EvalSummary) -> f64| {
        let after = report
            .after
            .as_ref()
            .map_or("-".to_string(), |a| format!("{:.3}", value(a)));
        println!(
            "  {name:<10} {:>8.3} {after:>8} {:>8.3}",
            value(&report.before),
            value(&report.pixels)
        );
    };
    println!(
        "  {:<10} {:>8} {:>8} {:>8}",
        "metric", "before", "after", "pixels"
    );
    row("recall@1", |s| s.recall_at_1);
    row("recall@5", |s| s.recall_at_5);
    row("recall@10", |s| s.recall_at_10);
    row("gap", |s| s.gap);
    row("ROC AUC", |s| s.auc);
    if let Some(view) = &report.holdout_view {
        println!("  queries in the held-out kind of view ({view}), never trained on:");
        row("recall@1", |s| s.view_recall_at_1.unwrap_or(f64::NAN));
    }
    print_judged(report);
}

/// The judged pairs' mean cosine before and after, by verdict and by whether the run trained
/// on them (same and near-duplicate pairs should rise, different pairs fall).
fn print_judged(report: &TrainReport) {
    if report.judged.is_empty() {
        return;
    }
    println!("judged pairs, mean cosine:");
    println!(
        "  {:<15} {:<24} {:>6} {:>8} {:>8}  moved",
        "verdict", "", "pairs", "before", "after"
    );
    for row in &report.judged {
        let after = row.after.map_or("-".to_string(), |a| format!("{a:.3}"));
        let moved = row.movement().map_or("-", |m| m.describe());
        println!(
            "  {:<15} {:<24} {:>6} {:>8.3} {after:>8}  {moved}",
            row.verdict.as_str(),
            if row.trained {
                "trained on"
            } else {
                "not trained on"
            },
            row.pairs,
            row.before
        );
    }
    if report.judged_missing > 0 {
        println!(
            "  ({} judged pair(s) name images this run does not have)",
            report.judged_missing
        );
    }
}
