//! natview-train: self-supervised fine-tuning on natural views — SimSiam (default), InfoNCE, BYOL,
//! MoBY or SwAV — with positive pairs
//! drawn from two views of one listing (two augmentations of the one image when a listing has a
//! single view). A seeded split of listings is held out; before and after training the encoder
//! is evaluated on it beside raw pixels. Checkpoints hold the whole state, so an interrupted run
//! resumes exactly; the trained trunk is exported as encoder weights.

#![forbid(unsafe_code)]

mod augment;
pub mod catalogue;
pub mod checkpoint;
mod data;
pub mod diff_run;
pub mod health_track;
mod judged;
mod judged_loss;
mod loss;
mod model;
mod momentum;
mod optim;
pub mod shortcut;
mod target;

pub use augment::{augment, AugmentParams};
pub use health_track::{HealthPoint, COLLAPSE_CHECKS, COLLAPSE_SHARE};
pub use judged::{
    DuplicatePolicy, JudgedBatch, JudgedRow, Judgements, Movement, DEFAULT_MARGIN, UNCHANGED_BELOW,
};
pub use loss::{info_nce, l2_normalise_rows, simsiam};
pub use model::{SslModel, HEAD_PREFIX, SWAV_PROTOTYPES};
pub use momentum::{byol, ema, moby, momentum_at, sinkhorn, swav};
pub use optim::{learning_rate, Sgd};
pub use target::Target;

use candle_core::{Device, Tensor};
use image::RgbImage;
use natview_core::dataset::{decode_rgb_covering, group_by_listing, Dataset, Item, ViewFilter};
use natview_core::jobs::CancelFlag;
use natview_core::linalg::{l2_normalise, Matrix};
use natview_core::rng::SplitMix64;
use natview_encoder::{images_tensor, pixel_vector, ModelKind, Normalisation};
use natview_pipeline::{evaluate_rows_where, EvalReport};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Errors of fine-tuning.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A checkpoint or weights file could not be read or written.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The dataset cannot train or evaluate this way.
    #[error("{0}")]
    NotEnoughData(String),
    /// A checkpoint does not belong to this run.
    #[error("{path}: {message}")]
    Mismatch {
        /// The checkpoint.
        path: PathBuf,
        /// How it differs.
        message: String,
    },
    /// The tensor library failed.
    #[error("training: {0}")]
    Candle(#[from] candle_core::Error),
    /// Evaluation failed.
    #[error("evaluation: {0}")]
    Eval(#[from] natview_pipeline::PipelineError),
    /// The encoder could not embed.
    #[error("encoder: {0}")]
    Encoder(#[from] natview_encoder::EncoderError),
}

/// The self-supervised objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// SimSiam: predictor + stop-gradient, negative cosine.
    SimSiam,
    /// InfoNCE (SimCLR/MoBY-style): temperature, in-batch negatives.
    InfoNce,
    /// BYOL: predictor on the online side, a momentum (EMA) target network, no negatives.
    Byol,
    /// MoBY: BYOL's online and momentum networks with a contrastive loss whose negatives are
    /// a queue of earlier target keys.
    Moby,
    /// SwAV: online clustering — each view's Sinkhorn–Knopp assignment to learned prototypes
    /// is the target of the other view's prediction.
    Swav,
}

impl Method {
    /// Every method, in the order the app lists them.
    pub const ALL: [Method; 5] = [
        Method::InfoNce,
        Method::SimSiam,
        Method::Byol,
        Method::Moby,
        Method::Swav,
    ];

    /// The command-line and file name.
    pub fn name(self) -> &'static str {
        match self {
            Method::SimSiam => "simsiam",
            Method::InfoNce => "infonce",
            Method::Byol => "byol",
            Method::Moby => "moby",
            Method::Swav => "swav",
        }
    }

    /// The name shown in the app.
    pub fn label(self) -> &'static str {
        match self {
            Method::SimSiam => "SimSiam",
            Method::InfoNce => "InfoNCE",
            Method::Byol => "BYOL",
            Method::Moby => "MoBY",
            Method::Swav => "SwAV",
        }
    }

    /// Whether the online network has a predictor head.
    pub fn has_predictor(self) -> bool {
        matches!(self, Method::SimSiam | Method::Byol | Method::Moby)
    }

    /// Whether the method trains against a momentum target network.
    pub fn uses_target(self) -> bool {
        matches!(self, Method::Byol | Method::Moby)
    }

    /// The softmax temperature a run of this method uses unless told otherwise: 0.1 for
    /// SwAV's prototype scores (its paper's), 0.2 for InfoNCE and MoBY (SimCLR's, MoBY's).
    /// SimSiam and BYOL have none.
    pub fn default_temperature(self) -> f64 {
        match self {
            Method::Swav => 0.1,
            _ => 0.2,
        }
    }
}

impl std::str::FromStr for Method {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_lowercase().as_str() {
            "simsiam" => Ok(Method::SimSiam),
            "infonce" | "simclr" | "nce" => Ok(Method::InfoNce),
            "byol" => Ok(Method::Byol),
            "moby" => Ok(Method::Moby),
            "swav" => Ok(Method::Swav),
            other => Err(format!(
                "unknown method `{other}` (simsiam, infonce, byol, moby or swav)"
            )),
        }
    }
}

/// Where the trunk's initial weights come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartFrom {
    /// The seeded random init.
    Scratch,
    /// A weights file: natview's safetensors (shipped or fine-tuned), or any checkpoint
    /// [`natview_encoder::checkpoint`] reads.
    Weights(PathBuf),
}

/// Everything that defines a run (stored in its checkpoint).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Objective.
    pub method: Method,
    /// Encoder architecture (a preset, or `checkpoint`: the network the starting weights hold).
    pub model: ModelKind,
    /// Input side in pixels.
    pub input_size_px: u32,
    /// Optimiser steps.
    pub steps: usize,
    /// Listings (positive pairs) per step.
    pub batch_size: usize,
    /// Peak learning rate.
    pub learning_rate: f64,
    /// Linear warm-up steps.
    pub warmup_steps: usize,
    /// SGD momentum.
    pub momentum: f64,
    /// Weight decay.
    pub weight_decay: f64,
    /// Softmax temperature of InfoNCE, MoBY and SwAV ([`Method::default_temperature`]).
    pub temperature: f64,
    /// Seed of the split, the sampling, the augmentations and a fresh init.
    pub seed: u64,
    /// Fraction of listings held out (never trained on).
    pub heldout_fraction: f64,
    /// Initial trunk weights.
    pub start: StartFrom,
    /// Leading trunk stages kept fixed (stem = stage 0; 0 trains everything).
    #[serde(default)]
    pub freeze: usize,
    /// A kind of view never trained on (e.g. `design=twemoji`); the held-out report then also
    /// gives retrieval for queries of that kind.
    #[serde(default)]
    pub holdout_view: Option<ViewFilter>,
    /// The analysts' verdicts and exclusions to train with (`None`: self-supervised only).
    #[serde(default)]
    pub judgements: Option<Judgements>,
    /// BYOL: the target network's momentum at the start (it rises to 1 along a cosine).
    #[serde(default = "default_base_momentum")]
    pub base_momentum: f64,
    /// MoBY: target keys kept as negatives.
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// SwAV: number of prototypes.
    #[serde(default = "default_prototypes")]
    pub prototypes: usize,
    /// SwAV: Sinkhorn–Knopp's epsilon (smaller: harder assignments).
    #[serde(default = "default_sinkhorn_epsilon")]
    pub sinkhorn_epsilon: f64,
    /// How a vision transformer's tokens become the trained embedding (`--pool`); `None`: the
    /// family's. Recorded with the trained weights, which then embed pooled the same way.
    #[serde(default)]
    pub pool: Option<natview_encoder::VitPool>,
    /// Steps between two health checks of the embedding on a fixed sample (0: none; see
    /// [`health_track`]). Not part of what a run trains: a run resumes under another value.
    #[serde(default = "default_health_every")]
    pub health_every: usize,
    /// Stop the run (keeping its checkpoint) when the health checks show a collapse relative
    /// to its start.
    #[serde(default = "default_collapse_stop")]
    pub collapse_stop: bool,
}

fn default_health_every() -> usize {
    health_track::DEFAULT_HEALTH_EVERY
}

fn default_collapse_stop() -> bool {
    true
}

/// SwAV's Sinkhorn–Knopp epsilon (its paper's 0.05).
pub const DEFAULT_SINKHORN_EPSILON: f64 = 0.05;

fn default_sinkhorn_epsilon() -> f64 {
    DEFAULT_SINKHORN_EPSILON
}

fn default_prototypes() -> usize {
    model::SWAV_PROTOTYPES
}

/// MoBY's queue length.
pub const DEFAULT_QUEUE: usize = 4096;

fn default_queue() -> usize {
    DEFAULT_QUEUE
}

/// BYOL's base momentum.
pub const DEFAULT_BASE_MOMENTUM: f64 = 0.99;

fn default_base_momentum() -> f64 {
    DEFAULT_BASE_MOMENTUM
}

impl TrainConfig {
    /// A run of `method` on `model` from `start` with the defaults of `natview finetune`:
    /// the model's input size, 300 steps of 64 listings, peak learning rate 0.05 after 20
    /// warm-up steps, SGD momentum 0.9, weight decay 1e-4, the method's temperature, seed 0,
    /// a fifth of the listings held out, nothing frozen, no labels; set fields to change them.
    pub fn new(method: Method, model: ModelKind, start: StartFrom) -> Self {
        Self {
            method,
            model,
            input_size_px: model.default_input_size_px(),
            steps: 300,
            batch_size: 64,
            learning_rate: 0.05,
            warmup_steps: 20,
            momentum: 0.9,
            weight_decay: 1e-4,
            temperature: method.default_temperature(),
            seed: 0,
            heldout_fraction: 0.2,
            start,
            freeze: 0,
            holdout_view: None,
            judgements: None,
            base_momentum: DEFAULT_BASE_MOMENTUM,
            queue: DEFAULT_QUEUE,
            prototypes: model::SWAV_PROTOTYPES,
            sinkhorn_epsilon: DEFAULT_SINKHORN_EPSILON,
            pool: None,
            health_every: health_track::DEFAULT_HEALTH_EVERY,
            collapse_stop: true,
        }
    }

    /// The network this run trains and how its input is normalised: the preset's, or for a
    /// checkpoint (`ModelKind::Checkpoint`) the one its starting weights hold, pooled as
    /// [`Self::pool`] says (an error where the network cannot pool that way).
    pub fn network(
        &self,
    ) -> Result<
        (
            natview_encoder::Architecture,
            natview_encoder::Normalisation,
        ),
        TrainError,
    > {
        let (architecture, norm) = self.unpooled_network()?;
        let refused = |message: String| match &self.start {
            StartFrom::Weights(path) => TrainError::File {
                path: path.clone(),
                message,
            },
            StartFrom::Scratch => TrainError::NotEnoughData(message),
        };
        match (self.pool, architecture) {
            (None, architecture) => Ok((architecture, norm)),
            (Some(pool), natview_encoder::Architecture::Vit(vit)) => vit
                .with_pool(pool)
                .map(|vit| (natview_encoder::Architecture::Vit(vit), norm))
                .map_err(refused),
            (Some(_), _) => Err(refused(
                "--pool applies to vision transformers; this is a CNN (its pooled feature is \
                 the global average)"
                    .into(),
            )),
        }
    }

    /// [`Self::network`] with the family's own pooling.
    fn unpooled_network(
        &self,
    ) -> Result<
        (
            natview_encoder::Architecture,
            natview_encoder::Normalisation,
        ),
        TrainError,
    > {
        if let Some(architecture) = self.model.architecture() {
            return Ok((architecture, self.model.normalisation()));
        }
        match (&self.start, self.model) {
            (StartFrom::Weights(path), ModelKind::Checkpoint) => {
                let info = natview_encoder::checkpoint::inspect(path, None).map_err(|e| {
                    TrainError::File {
                        path: path.clone(),
                        message: e.to_string(),
                    }
                })?;
                Ok((info.architecture, info.normalisation))
            }
            (_, ModelKind::Checkpoint) => Err(TrainError::NotEnoughData(
                "a checkpoint model trains from its weights: give them with --from FILE".into(),
            )),
            _ => Err(TrainError::NotEnoughData(format!(
                "`{}` has no network to train",
                self.model.name()
            ))),
        }
    }

    /// The configuration that decides what a run trains: judgements that are only measured
    /// (verdicts a run without labels reports on) are left out, so new verdicts do not stop
    /// a plain run from resuming.
    pub fn identity(&self) -> TrainConfig {
        let mut config = self.clone();
        if config.judgements.as_ref().is_some_and(|j| !j.train) {
            config.judgements = None;
        }
        // Watching a run does not change what it trains.
        config.health_every = default_health_every();
        config.collapse_stop = default_collapse_stop();
        config
    }
}

/// The state stored in a checkpoint besides the tensors.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// Steps completed.
    pub step: usize,
    /// The run's configuration.
    pub config: TrainConfig,
    /// Held-out listing names.
    pub heldout: Vec<String>,
    /// Fingerprint of the dataset trained on.
    pub dataset_fingerprint: String,
    /// Evaluation of the starting weights on the held-out listings.
    pub before: EvalSummary,
    /// Mean loss of each block of [`LOSS_BLOCK`] steps so far.
    pub loss_curve: Vec<f32>,
    /// Training time so far, in seconds.
    pub train_secs: f64,
    /// The judged pairs' mean cosines under the starting weights.
    #[serde(default)]
    pub judged_before: Vec<JudgedRow>,
}

/// What exported weights say about themselves.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WeightsMeta {
    /// Architecture.
    pub model: ModelKind,
    /// Input side in pixels.
    pub input_size_px: u32,
    /// How they were trained.
    pub config: TrainConfig,
    /// Held-out listing names (for `eval --heldout`).
    pub heldout: Vec<String>,
    /// Fingerprint of the dataset trained on.
    pub dataset_fingerprint: String,
    /// Steps trained.
    pub steps: usize,
    /// Training time in seconds.
    pub train_secs: f64,
    /// A transformer's settings its tensors' shapes do not carry (heads, activation, …), so
    /// that the weights reopen as the network they were trained as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transformer: Option<natview_encoder::VitConfig>,
    /// How input pixels were normalised in training.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalisation: Option<natview_encoder::Normalisation>,
}

/// The metrics a report compares (a compact, serialisable part of [`EvalReport`]).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct EvalSummary {
    /// recall@1 by listing.
    pub recall_at_1: f64,
    /// recall@5.
    pub recall_at_5: f64,
    /// recall@10.
    pub recall_at_10: f64,
    /// Mean average precision of the first 10 neighbours (other views of the listing count).
    #[serde(default)]
    pub map_at_10: f64,
    /// Intra − inter mean cosine.
    pub gap: f64,
    /// ROC AUC of intra vs inter pairs.
    pub auc: f64,
    /// recall@1 of the queries in the held-out kind of view, when one was held out.
    #[serde(default)]
    pub view_recall_at_1: Option<f64>,
}

impl From<&EvalReport> for EvalSummary {
    fn from(r: &EvalReport) -> Self {
        Self {
            recall_at_1: r.retrieval.recall_at_1,
            recall_at_5: r.retrieval.recall_at_5,
            recall_at_10: r.retrieval.recall_at_10,
            map_at_10: r.retrieval.map_at_10,
            gap: r.pairs.gap,
            auc: r.pairs.auc,
            view_recall_at_1: r.view_retrieval.as_ref().map(|v| v.retrieval.recall_at_1),
        }
    }
}

/// Steps per point of the stored loss curve.
pub const LOSS_BLOCK: usize = 10;

/// Progress of a step, for progress bars.
#[derive(Debug, Clone, Copy)]
pub struct StepReport {
    /// Steps done.
    pub step: usize,
    /// Steps in all.
    pub total: usize,
    /// This step's loss.
    pub loss: f32,
    /// This step's learning rate.
    pub learning_rate: f64,
    /// Steps per second since the run (re)started.
    pub steps_per_sec: f64,
}

/// Receives what the run is doing.
pub trait TrainObserver {
    /// A phase starts (loading, evaluating, …).
    fn phase(&self, name: &str);
    /// A step finished.
    fn step(&self, report: &StepReport);
    /// A health check of the embedding was made (every [`TrainConfig::health_every`] steps).
    fn health(&self, _point: &HealthPoint) {}
}

/// A run to do.
pub struct TrainRequest<'a> {
    /// Its configuration.
    pub config: TrainConfig,
    /// The dataset.
    pub dataset: &'a Dataset,
    /// The checkpoint file (written every [`CHECKPOINT_EVERY`] steps, on interruption, at the end).
    pub checkpoint: PathBuf,
    /// Where the trained trunk goes.
    pub out: PathBuf,
    /// Continue from `checkpoint`.
    pub resume: bool,
    /// Run on the CPU even if a GPU is there.
    pub force_cpu: bool,
}

/// Steps between two checkpoints.
pub const CHECKPOINT_EVERY: usize = 25;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// All steps done; weights exported.
    Finished,
    /// Stopped (Ctrl-C); the checkpoint holds the last completed step.
    Interrupted,
    /// Stopped because the embedding collapsed (see [`health_track`]); the checkpoint holds
    /// the last completed step, [`TrainReport::collapse`] says why.
    Collapsed,
}

/// What a run did and how the held-out metrics moved.
#[derive(Debug, Clone)]
pub struct TrainReport {
    /// How it ended.
    pub outcome: Outcome,
    /// Steps completed in all.
    pub steps_done: usize,
    /// Steps in this invocation per second.
    pub steps_per_sec: f64,
    /// Training time in all (over resumes), seconds.
    pub train_secs: f64,
    /// Loss curve (mean per [`LOSS_BLOCK`] steps).
    pub loss_curve: Vec<f32>,
    /// Held-out listings / images.
    pub heldout_listings: usize,
    /// Held-out images.
    pub heldout_images: usize,
    /// Starting weights on the held-out listings.
    pub before: EvalSummary,
    /// Trained weights on the held-out listings (`None` when interrupted).
    pub after: Option<EvalSummary>,
    /// Raw pixels on the held-out listings.
    pub pixels: EvalSummary,
    /// The device trained on.
    pub device: &'static str,
    /// The kind of view never trained on, if one was held out.
    pub holdout_view: Option<ViewFilter>,
    /// The health checks of the run (this session's, from its start or resumption).
    pub health: Vec<HealthPoint>,
    /// Why the run stopped early, when its embedding collapsed.
    pub collapse: Option<String>,
    /// How the judged pairs' cosines moved (empty without judgements).
    pub judged: Vec<JudgedRow>,
    /// Judged pairs whose images were not found (skipped, or not in this dataset).
    pub judged_missing: usize,
}

/// Splits listing names into (training, held-out): a seeded shuffle, the first
/// `fraction · n` (at least 2 when the fraction is positive and there are 4+ listings) held out.
pub fn split_listings(names: &[String], fraction: f64, seed: u64) -> (Vec<String>, Vec<String>) {
    let mut sorted = names.to_vec();
    sorted.sort();
    SplitMix64::new(seed ^ 0x5eed_5711).shuffle(&mut sorted);
    let mut held = (fraction.clamp(0.0, 0.9) * sorted.len() as f64).round() as usize;
    if fraction > 0.0 && sorted.len() >= 4 {
        held = held.max(2);
    }
    let heldout = sorted[..held].to_vec();
    let train = sorted[held..].to_vec();
    (train, heldout)
}

mod run;
pub use run::{evaluate_encoder_rows, finetune, finish_step, train_step, train_step_judged};
