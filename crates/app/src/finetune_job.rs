//! The app's fine-tune job: the settings the Fine-tune view edits, the live state it draws (loss
//! curve, step, speed), and the worker that runs [`natview_train::finetune`] on the open dataset.
//! Cancelling stops after the current step and keeps the checkpoint, so a run can be resumed.

use natview_core::dataset::{Dataset, ViewFilter};
use natview_core::jobs::{CancelFlag, Progress, ProgressSink};
use natview_core::workspace::Workspace;
use natview_encoder::{EncoderSpec, ModelKind};
use natview_train::{
    finetune, Method, Outcome, StartFrom, StepReport, TrainConfig, TrainObserver, TrainReport,
    TrainRequest,
};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// What the user chose in the Fine-tune view.
#[derive(Debug, Clone, PartialEq)]
pub struct FinetuneSettings {
    /// The objective.
    pub method: Method,
    /// Optimiser steps.
    pub steps: usize,
    /// Listings (positive pairs) per step.
    pub batch_size: usize,
    /// Peak learning rate.
    pub learning_rate: f64,
    /// The encoder to start from (its architecture and weights).
    pub from: EncoderSpec,
    /// Input side while training (and for the fine-tuned encoder's embeddings).
    pub input_size_px: u32,
    /// Leading trunk stages kept fixed.
    pub freeze: usize,
    /// Fraction of listings held out (never trained on).
    pub heldout_fraction: f64,
    /// A kind of view never trained on, e.g. `design=twemoji`.
    pub holdout_view: Option<ViewFilter>,
    /// The analysts' verdicts and exclusions to train with.
    pub judgements: Option<natview_train::Judgements>,
    /// Continue the checkpoint of a run with these same settings.
    pub resume: bool,
    /// Stop the run when its embedding collapses (effective rank under the stated share of the
    /// start's for several checks in a row); off is the CLI's `--no-collapse-stop`.
    pub collapse_stop: bool,
}

impl FinetuneSettings {
    /// Settings that train `from` in minutes on a CPU: InfoNCE (which rose steadily where
    /// SimSiam first fell in our probes); for the ImageNet models a 96-px input, the stem and
    /// the first two stages fixed and a gentler learning rate (the recipe of the shipped
    /// fine-tunes, about 4 s a step on 2 cores).
    pub fn starting_from(from: EncoderSpec) -> Self {
        let (input_size_px, freeze, learning_rate) = match from.model {
            ModelKind::EffnetLite0 | ModelKind::EffnetLite1 | ModelKind::EffnetLite2 => {
                (96, 3, 0.02)
            }
            ModelKind::Resnet18 | ModelKind::Resnet50 | ModelKind::Checkpoint => (96, 2, 0.02),
            // No RegNet weights ship: a random trunk trains whole.
            ModelKind::RegnetY400mf if from.weights.is_none() => (96, 0, 0.05),
            ModelKind::RegnetY400mf => (96, 2, 0.02),
            ModelKind::Compact | ModelKind::Pixels | ModelKind::Imported => {
                (from.model.default_input_size_px(), 0, 0.05)
            }
        };
        Self {
            method: Method::InfoNce,
            steps: 300,
            batch_size: 32,
            learning_rate,
            from,
            input_size_px,
            freeze,
            heldout_fraction: 0.2,
            holdout_view: None,
            judgements: None,
            resume: false,
            collapse_stop: true,
        }
    }

    /// The run these settings define.
    pub fn config(&self) -> TrainConfig {
        let start = self
            .from
            .weights
            .clone()
            .map_or(StartFrom::Scratch, StartFrom::Weights);
        TrainConfig {
            input_size_px: self.input_size_px,
            steps: self.steps,
            batch_size: self.batch_size,
            learning_rate: self.learning_rate,
            warmup_steps: (self.steps / 10).clamp(1, 50),
            heldout_fraction: self.heldout_fraction,
            freeze: self.freeze,
            holdout_view: self.holdout_view.clone(),
            judgements: self.judgements.clone(),
            collapse_stop: self.collapse_stop,
            ..TrainConfig::new(self.method, self.from.model, start)
        }
    }

    /// A file-name stem that tells runs with different settings apart.
    fn stem(&self) -> String {
        let method = self.method.name();
        let start = self
            .from
            .weights
            .as_deref()
            .and_then(|w| w.file_stem())
            .map_or("scratch".to_string(), |s| {
                s.to_string_lossy().replace('.', "-")
            });
        let view = self.holdout_view.as_ref().map_or(String::new(), |v| {
            format!(
                "-without-{}",
                v.to_string()
                    .replace(|c: char| !c.is_ascii_alphanumeric(), "-")
            )
        });
        // Runs with labels are told apart by what they were given (a short hash of it).
        let trained_with = self.judgements.as_ref().filter(|j| j.train);
        let labels = trained_with.map_or(String::new(), |j| {
            let text = serde_json::to_string(j).unwrap_or_default();
            format!(
                "-labels-{:08x}",
                xxhash_rust::xxh3::xxh3_64(text.as_bytes()) as u32
            )
        });
        let view = format!("{view}{labels}");
        format!(
            "{}.{method}.from-{start}.{}x{}.{}px.freeze{}{view}",
            self.from.model.name(),
            self.steps,
            self.batch_size,
            self.input_size_px,
            self.freeze
        )
    }

    /// Where the fine-tuned encoder goes (a `finetuned*` file, so the model picker lists it).
    pub fn weights_path(&self, workspace: &Workspace) -> PathBuf {
        workspace
            .dir()
            .join(format!("finetuned.{}.safetensors", self.stem()))
    }

    /// The run's checkpoint.
    pub fn checkpoint_path(&self, workspace: &Workspace) -> PathBuf {
        workspace
            .dir()
            .join(format!("finetune.{}.ckpt.safetensors", self.stem()))
    }

    /// The encoder the run produces.
    pub fn trained_spec(&self, workspace: &Workspace) -> EncoderSpec {
        EncoderSpec {
            model: self.from.model,
            input_size_px: self.input_size_px,
            weights: Some(self.weights_path(workspace)),
            seed: 0,
            weights_key: None,
            pool: None,
            precision: natview_encoder::Precision::F32,
        }
    }
}

/// What a running fine-tune has done so far (shared between the worker and the view).
#[derive(Debug, Clone, Default)]
pub struct LiveTraining {
    /// What it is doing (decoding, evaluating, training…).
    pub phase: String,
    /// Loss of every step so far.
    pub losses: Vec<f32>,
    /// Steps done.
    pub step: usize,
    /// Steps in all.
    pub total: usize,
    /// Steps per second.
    pub steps_per_sec: f64,
    /// The health checks so far (effective rank and more, every few steps).
    pub health: Vec<natview_train::HealthPoint>,
}

/// The handle the view reads the live state through.
pub type SharedLiveTraining = Arc<Mutex<LiveTraining>>;

/// How a fine-tune ended.
#[derive(Debug, Clone)]
pub struct FinetuneOutcome {
    /// The dataset it trained on.
    pub dataset: PathBuf,
    /// The settings.
    pub settings: FinetuneSettings,
    /// Held-out metrics before / after / pixels, the loss curve, timing.
    pub report: TrainReport,
    /// The fine-tuned encoder (`None` when it was cancelled before the end).
    pub trained: Option<EncoderSpec>,
    /// The checkpoint (kept, also when cancelled).
    pub checkpoint: PathBuf,
}

struct LiveObserver<'a> {
    live: &'a Mutex<LiveTraining>,
    progress: &'a dyn ProgressSink,
}

impl LiveObserver<'_> {
    fn update(&self, change: impl FnOnce(&mut LiveTraining)) -> Progress {
        // A poisoned lock only means a drawing thread panicked; the data is still usable.
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        change(&mut live);
        Progress {
            phase: live.phase.clone(),
            done: live.step,
            total: live.total.max(1),
        }
    }
}

impl TrainObserver for LiveObserver<'_> {
    fn phase(&self, name: &str) {
        let progress = self.update(|live| live.phase = name.to_string());
        self.progress.report(progress);
    }

    fn health(&self, point: &natview_train::HealthPoint) {
        self.update(|live| live.health.push(*point));
    }

    fn step(&self, report: &StepReport) {
        let progress = self.update(|live| {
            live.phase = format!("training · loss {:+.3}", report.loss);
            live.losses.push(report.loss);
            live.step = report.step;
            live.total = report.total;
            live.steps_per_sec = report.steps_per_sec;
        });
        self.progress.report(progress);
    }
}

/// Runs a fine-tune of `dataset` (whose manifest or folder is `dataset_path`) with `settings`:
/// the work of a [`super::JobKind::Finetune`] job. A cancelled run returns its report with the
/// checkpoint kept, not an error.
pub fn run_finetune(
    dataset: &Dataset,
    workspace: &Workspace,
    run: &natview_pipeline::RunSettings,
    settings: FinetuneSettings,
    live: &Mutex<LiveTraining>,
    progress: &dyn ProgressSink,
    cancel: &CancelFlag,
) -> Result<FinetuneOutcome, String> {
    if !settings.from.model.has_network() {
        return Err("raw pixels have nothing to train: start from a model".into());
    }
    workspace.create().map_err(|e| e.to_string())?;
    let checkpoint = settings.checkpoint_path(workspace);
    let request = TrainRequest {
        config: settings.config(),
        dataset,
        checkpoint: checkpoint.clone(),
        out: settings.weights_path(workspace),
        resume: settings.resume,
        force_cpu: run.force_cpu,
    };
    let observer = LiveObserver { live, progress };
    let report = finetune(&request, &observer, cancel).map_err(|e| e.to_string())?;
    let trained = (report.outcome == Outcome::Finished).then(|| settings.trained_spec(workspace));
    Ok(FinetuneOutcome {
        dataset: dataset.source.clone(),
        settings,
        report,
        trained,
        checkpoint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn different_settings_write_different_files_and_the_picker_lists_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let workspace = Workspace::at(dir.path());
        let a = FinetuneSettings::starting_from(
            EncoderSpec::pretrained(ModelKind::EffnetLite0).expect("shipped weights"),
        );
        let b = FinetuneSettings {
            holdout_view: "design=twemoji".parse().ok(),
            ..a.clone()
        };
        // The collapse stop is on unless turned off, and the run's config follows the switch.
        assert!(a.config().collapse_stop);
        let watched_only = FinetuneSettings {
            collapse_stop: false,
            ..a.clone()
        };
        assert!(!watched_only.config().collapse_stop);
        assert_ne!(a.weights_path(&workspace), b.weights_path(&workspace));
        assert_ne!(a.checkpoint_path(&workspace), b.checkpoint_path(&workspace));
        for s in [&a, &b] {
            let name = s.weights_path(&workspace);
            let name = name.file_name().and_then(|n| n.to_str()).unwrap_or("");
            assert!(name.starts_with("finetuned.") && name.ends_with(".safetensors"));
        }
        assert_eq!(a.config().model, ModelKind::EffnetLite0);
        assert!(matches!(a.config().start, StartFrom::Weights(_)));
        let scratch = FinetuneSettings::starting_from(EncoderSpec::untrained(ModelKind::Compact));
        assert_eq!(scratch.config().start, StartFrom::Scratch);
        assert_eq!(scratch.input_size_px, 64);
    }
}
