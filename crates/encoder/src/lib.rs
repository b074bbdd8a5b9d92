//! natview-encoder: the image encoders — ResNets, RegNetX/Y, ConvNeXt and EfficientNet-B of any
//! size (torchvision tensor names), EfficientNet-Lite0–4 (the PyTorch port's names; ImageNet
//! Lite0 shipped), a compact ResNet for 64–128 px images, and a raw-pixel baseline. Weights come
//! from natview's safetensors, from an analyst's own checkpoint ([`checkpoint`]: PyTorch,
//! Lightning, timm, VISSL, MoCo/BYOL/DINO files as they are) or, for an untrained encoder, from
//! a fixed seed. Outputs are L2-normalised.

// No unsafe code, except the compilation (NVRTC) and launch of natview's CUDA kernels in a
// `cuda` build.
#![cfg_attr(not(feature = "cuda"), forbid(unsafe_code))]
#![cfg_attr(feature = "cuda", deny(unsafe_code))]

mod batch_norm;
mod batch_norm_cpu;
#[cfg(feature = "cuda")]
#[allow(unsafe_code)]
mod batch_norm_cuda;
pub mod checkpoint;
mod cluster_head;
mod conv;
mod conv_cpu;
#[cfg(feature = "cuda")]
#[allow(unsafe_code)]
mod conv_cuda;
mod conv_wide;
mod convnext;
mod convnext_cpu;
#[cfg(test)]
mod cuda_emulator;
#[cfg(test)]
mod cuda_kernel_tests;
#[cfg(feature = "cuda")]
#[allow(unsafe_code)]
mod cuda_launch;
#[cfg(any(feature = "cuda", test))]
mod cuda_source;
mod depthwise;
mod depthwise_cpu;
mod depthwise_nhwc;
mod effnet;
mod effnet_b;
mod effnet_cpu;
mod file_memo;
mod init;
mod layers;
mod precision;
mod preprocess;
mod regnet;
mod resample;
mod residual;
mod resnet;
mod scratch;
mod sentencepiece;
#[cfg(test)]
mod test_support;
mod text;
mod text_encoder;
mod transformer;
mod transformer_cpu;
mod transpose;
mod trunk;
mod vit;

pub use batch_norm::{batch_norm_train, Activation};
pub use cluster_head::{ClusterHead, PROTOTYPES_NAME};
pub use conv::{own_cpu_kernels, Conv2d};
pub use convnext::{ConvNext, ConvNextConfig};
pub use depthwise::depthwise_conv_same;
pub use effnet::{BlockSpec, EffNetConfig, EfficientNet};
pub use effnet_b::{EffNetBConfig, EfficientNetB, MbConvSpec};
pub use effnet_cpu::FusedEffNet;
pub use init::SeededInit;
pub use precision::Precision;
pub use preprocess::{
    images_tensor, images_tensor_cropped, normalise_chw, pixel_vector, square_resize,
    Normalisation, IMAGENET_MEAN, IMAGENET_STD,
};
pub use regnet::{RegNet, RegNetConfig};
pub use resample::PosResample;
pub use resnet::{ResNet, ResNetConfig};
pub use sentencepiece::SentencePiece;
pub use text::{TextConfig, TextReading, TextTower};
pub use text_encoder::TextEncoder;
pub use transformer::TokenActivation;
pub use trunk::{Architecture, Trunk};
pub use vit::{FinalNorm, Vit, VitConfig, VitPool};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use image::RgbImage;
use natview_core::linalg::l2_normalise;
use natview_core::locate::Shipped;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Errors raised while building or running an encoder.
#[derive(Debug, thiserror::Error)]
pub enum EncoderError {
    /// The weights file could not be read or parsed.
    #[error("{path}: cannot read weights: {message}")]
    WeightsFile {
        /// The weights file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The weights file lacks a tensor or has one of the wrong shape.
    #[error("{path}: weights do not fit model `{model}`: {message}")]
    WeightsMismatch {
        /// The weights file.
        path: PathBuf,
        /// The model preset.
        model: String,
        /// Which tensor, and what is wrong with it.
        message: String,
    },
    /// An unknown precision name.
    #[error("unknown precision `{0}` (choose f32, f16 or bf16)")]
    UnknownPrecision(String),
    /// bf16 asked for on the CPU.
    #[error(
        "bf16 runs on a GPU only (candle's CPU kernels have no bf16 matrix product): use \
         --precision f16 or f32 on the CPU"
    )]
    Bf16OnTheCpu,
    /// Half precision where natview computes only in f32.
    #[error("{0} runs in f32 only: embed in half precision (--precision), train in f32")]
    HalfPrecisionUnsupported(String),
    /// An unknown model name.
    #[error(
        "unknown model `{0}` (choose effnet-lite0, effnet-lite1, effnet-lite2, compact, resnet18, resnet50, regnety-400mf, checkpoint or pixels)"
    )]
    UnknownModel(String),
    /// The model's shipped weights are in none of the places natview looks.
    #[error("{0}")]
    MissingWeights(Box<natview_core::locate::NotFound>),
    /// No weights are shipped for the model, and none were given.
    #[error(
        "no weights are shipped for `{0}`: pass --weights FILE (a checkpoint of it), or \
         --untrained for a randomly initialised encoder"
    )]
    NoShippedWeights(String),
    /// Imported vectors have no network to embed new images with.
    #[error("imported embeddings `{0}` have no encoder in natview: query them by item (--id)")]
    ImportedHasNoEncoder(String),
    /// The pixel baseline takes no weights.
    #[error("the `pixels` baseline takes no weights file")]
    PixelsTakeNoWeights,
    /// The pixel baseline works on images, not on preprocessed network input.
    #[error("the `pixels` baseline embeds images, not preprocessed tensors")]
    PixelsTakeNoTensor,
    /// A checkpoint holds no network natview knows, or several (the message lists what it
    /// found).
    #[error("{path}: {message}")]
    Checkpoint {
        /// The weights file.
        path: PathBuf,
        /// What was found, and how to choose.
        message: String,
    },
    /// A tensor operation failed.
    #[error("encoder failed: {0}")]
    Candle(#[from] candle_core::Error),
}

/// The encoder architectures natview knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// EfficientNet-Lite0 (224 px, 1280-d output; ImageNet weights shipped in `models/`).
    #[serde(rename = "effnet-lite0")]
    EffnetLite0,
    /// EfficientNet-Lite1 (240 px, 1280-d output; weights by `scripts/convert-weights.sh`).
    #[serde(rename = "effnet-lite1")]
    EffnetLite1,
    /// EfficientNet-Lite2 (260 px, 1280-d output; weights by `scripts/convert-weights.sh`).
    #[serde(rename = "effnet-lite2")]
    EffnetLite2,
    /// natview's compact ResNet (64–128 px inputs, 256-d output).
    Compact,
    /// torchvision ResNet-18 trunk (512-d output).
    Resnet18,
    /// torchvision ResNet-50 trunk (2048-d output).
    Resnet50,
    /// torchvision RegNetY-400MF trunk (440-d output), the SEER line's architecture family.
    #[serde(rename = "regnety-400mf")]
    RegnetY400mf,
    /// A network read from a checkpoint whose family and size natview works out from the
    /// file itself (any ResNet, RegNetX/Y or EfficientNet-Lite; see [`checkpoint`]).
    Checkpoint,
    /// Raw pixels, mean-centred (a reference point for every metric).
    Pixels,
    /// Vectors computed elsewhere and brought in by `natview import` (no network here: the set
    /// is selected with `--model imported:<name>`, its name kept as the spec's `weights`).
    Imported,
}

impl ModelKind {
    /// The name used on the command line and in file names.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::EffnetLite0 => "effnet-lite0",
            ModelKind::EffnetLite1 => "effnet-lite1",
            ModelKind::EffnetLite2 => "effnet-lite2",
            ModelKind::Compact => "compact",
            ModelKind::Resnet18 => "resnet18",
            ModelKind::Resnet50 => "resnet50",
            ModelKind::RegnetY400mf => "regnety-400mf",
            ModelKind::Checkpoint => "checkpoint",
            ModelKind::Pixels => "pixels",
            ModelKind::Imported => "imported",
        }
    }

    /// The input size used when none is given.
    pub fn default_input_size_px(self) -> u32 {
        match self {
            ModelKind::EffnetLite0 | ModelKind::EffnetLite1 | ModelKind::EffnetLite2 => self
                .architecture()
                .map_or(224, |a| a.default_input_size_px()),
            ModelKind::Compact => 64,
            ModelKind::Resnet18
            | ModelKind::Resnet50
            | ModelKind::RegnetY400mf
            | ModelKind::Checkpoint => 224,
            ModelKind::Pixels => 32,
            ModelKind::Imported => 0,
        }
    }

    /// Whether the model is a network (not the pixel baseline or imported vectors).
    pub fn has_network(self) -> bool {
        !matches!(self, ModelKind::Pixels | ModelKind::Imported)
    }

    /// The network of this preset (`None` for the pixel baseline, imported vectors and a
    /// checkpoint, whose network comes from its file: [`EncoderSpec::architecture`]).
    pub fn architecture(self) -> Option<Architecture> {
        match self {
            ModelKind::EffnetLite0 => Some(Architecture::EffNet(EffNetConfig::lite(0))),
            ModelKind::EffnetLite1 => Some(Architecture::EffNet(EffNetConfig::lite(1))),
            ModelKind::EffnetLite2 => Some(Architecture::EffNet(EffNetConfig::lite(2))),
            ModelKind::Compact => Some(Architecture::ResNet(ResNetConfig::compact())),
            ModelKind::Resnet18 => Some(Architecture::ResNet(ResNetConfig::resnet18())),
            ModelKind::Resnet50 => Some(Architecture::ResNet(ResNetConfig::resnet50())),
            ModelKind::RegnetY400mf => Some(Architecture::RegNet(RegNetConfig::y_400mf())),
            ModelKind::Pixels | ModelKind::Imported | ModelKind::Checkpoint => None,
        }
    }

    /// How this model's input pixels are normalised: the TensorFlow Lite models' `(x − 127) /
    /// 128` for EfficientNet-Lite (the weights were trained so), ImageNet mean/std otherwise.
    pub fn normalisation(self) -> Normalisation {
        match self {
            ModelKind::EffnetLite0 | ModelKind::EffnetLite1 | ModelKind::EffnetLite2 => {
                Normalisation::Centred127
            }
            _ => Normalisation::ImageNet,
        }
    }

    /// The name of the weights file shipped in `models/` for this architecture, if any.
    pub fn shipped_weights_file(self) -> Option<&'static str> {
        match self {
            ModelKind::EffnetLite0 => Some("effnet-lite0.safetensors"),
            ModelKind::EffnetLite2 => Some("effnet-lite2.safetensors"),
            ModelKind::Compact => Some("compact-emoji.safetensors"),
            _ => None,
        }
    }

    /// The weights shipped for this architecture, where they are installed (see
    /// [`natview_core::locate`]); `None` when it has none or they cannot be found.
    pub fn shipped_weights(self) -> Option<PathBuf> {
        natview_core::locate::find(Shipped::Models, self.shipped_weights_file()?).ok()
    }

    /// The weights shipped for this architecture, or an error saying where they were looked
    /// for (they are missing) or that none are shipped, and how to run anyway.
    pub fn require_shipped_weights(self) -> Result<PathBuf, EncoderError> {
        let Some(file) = self.shipped_weights_file() else {
            return Err(EncoderError::NoShippedWeights(self.name().to_string()));
        };
        natview_core::locate::find(Shipped::Models, file).map_err(|mut missing| {
            missing.hint = ". Or pass --weights FILE, or --untrained for a randomly \
                            initialised encoder"
                .into();
            EncoderError::MissingWeights(Box::new(missing))
        })
    }

    /// Every model natview knows, in the order offered to users.
    pub const ALL: [ModelKind; 8] = [
        ModelKind::EffnetLite0,
        ModelKind::EffnetLite1,
        ModelKind::EffnetLite2,
        ModelKind::Compact,
        ModelKind::Resnet18,
        ModelKind::Resnet50,
        ModelKind::RegnetY400mf,
        ModelKind::Pixels,
    ];
}

impl std::str::FromStr for ModelKind {
    type Err = EncoderError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "effnetlite0" | "efficientnetlite0" | "effnet" => Ok(ModelKind::EffnetLite0),
            "effnetlite1" | "efficientnetlite1" => Ok(ModelKind::EffnetLite1),
            "effnetlite2" | "efficientnetlite2" => Ok(ModelKind::EffnetLite2),
            "compact" => Ok(ModelKind::Compact),
            "resnet18" => Ok(ModelKind::Resnet18),
            "resnet50" => Ok(ModelKind::Resnet50),
            "regnety400mf" | "regnety" => Ok(ModelKind::RegnetY400mf),
            "pixels" | "pixel" => Ok(ModelKind::Pixels),
            "checkpoint" | "auto" => Ok(ModelKind::Checkpoint),
            _ => Err(EncoderError::UnknownModel(s.to_string())),
        }
    }
}

/// Everything that determines an encoder's output: recorded with the embeddings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncoderSpec {
    /// Architecture.
    pub model: ModelKind,
    /// Square input side in pixels.
    pub input_size_px: u32,
    /// Weights file; `None` means randomly initialised from `seed` (an untrained encoder).
    pub weights: Option<PathBuf>,
    /// Seed of the random initialisation (used when `weights` is `None`).
    pub seed: u64,
    /// The key prefix of the trunk in a checkpoint holding several networks
    /// (`--weights-key`); `None`: natview finds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights_key: Option<String>,
    /// How a vision transformer's tokens become the embedding (`--pool`); `None`: the
    /// family's default (class token; patch mean for `fc_norm` models; SigLIP's attention).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<VitPool>,
    /// The precision it embeds in (`--precision`; f32 unless asked).
    #[serde(default, skip_serializing_if = "Precision::is_f32")]
    pub precision: Precision,
}

impl EncoderSpec {
    /// A spec with the model's default input size, no weights and seed 0.
    pub fn untrained(model: ModelKind) -> Self {
        Self {
            model,
            input_size_px: model.default_input_size_px(),
            weights: None,
            seed: 0,
            weights_key: None,
            pool: None,
            precision: Precision::F32,
        }
    }

    /// `weights` opened as a checkpoint (family and size from the file), at the input size
    /// its family is trained at unless `input_size_px` is given.
    pub fn checkpoint(
        weights: &Path,
        weights_key: Option<&str>,
        input_size_px: Option<u32>,
    ) -> Result<Self, EncoderError> {
        let info = checkpoint::inspect(weights, weights_key)?;
        Ok(Self {
            model: ModelKind::Checkpoint,
            input_size_px: input_size_px.unwrap_or(info.input_size_px),
            weights: Some(weights.to_path_buf()),
            seed: 0,
            weights_key: weights_key.map(str::to_string),
            pool: None,
            precision: Precision::F32,
        })
    }

    /// The network: the preset's, or the one a checkpoint's tensors describe (with the
    /// `--pool` chosen).
    pub fn architecture(&self) -> Result<Option<Architecture>, EncoderError> {
        match (&self.weights, self.model) {
            (Some(path), ModelKind::Checkpoint) => {
                let found = checkpoint::inspect(path, self.weights_key.as_deref())?.architecture;
                Ok(Some(self.pooled(path, found)?))
            }
            _ => Ok(self.model.architecture()),
        }
    }

    /// `architecture` with this spec's pooling, or an error naming the file when the network
    /// cannot pool that way.
    fn pooled(
        &self,
        path: &Path,
        architecture: Architecture,
    ) -> Result<Architecture, EncoderError> {
        match (self.pool, architecture) {
            (None, a) => Ok(a),
            (Some(pool), Architecture::Vit(config)) => config
                .with_pool(pool)
                .map(Architecture::Vit)
                .map_err(|message| EncoderError::Checkpoint {
                    path: path.to_path_buf(),
                    message,
                }),
            (Some(_), _) => Err(EncoderError::Checkpoint {
                path: path.to_path_buf(),
                message: "--pool applies to vision transformers; this is a CNN (its pooled \
                          feature is the global average)"
                    .into(),
            }),
        }
    }

    /// The embedding set imported under `name` (`natview import`).
    pub fn imported(name: &str) -> Self {
        Self {
            model: ModelKind::Imported,
            input_size_px: 0,
            weights: Some(PathBuf::from(name)),
            seed: 0,
            weights_key: None,
            pool: None,
            precision: Precision::F32,
        }
    }

    /// The name of an imported set (empty for natview's own encoders).
    pub fn imported_name(&self) -> String {
        match (&self.weights, self.model) {
            (Some(name), ModelKind::Imported) => name.to_string_lossy().into_owned(),
            _ => String::new(),
        }
    }

    /// natview's default encoder: the ImageNet-pretrained EfficientNet-Lite0 shipped in
    /// `models/` (an error naming where they were looked for when its weights are missing).
    pub fn default_model() -> Result<Self, EncoderError> {
        Self::pretrained(ModelKind::EffnetLite0)
    }

    /// `model` with its shipped weights; an error when none are shipped or they are missing
    /// (never, silently, a random encoder: that is [`untrained`](Self::untrained)).
    pub fn pretrained(model: ModelKind) -> Result<Self, EncoderError> {
        Ok(Self {
            weights: Some(model.require_shipped_weights()?),
            ..Self::untrained(model)
        })
    }

    /// The name of this encoder's files in a workspace (`embeddings.<key>.safetensors`,
    /// `index.<key>.graph`, …), so that every encoder of a dataset keeps its own: the model
    /// name for its shipped weights (or the pixel baseline), `<model>-untrained` for random
    /// weights, `<model>@<weights file stem>` for other weights, plus `-<px>px` at a
    /// non-default input size.
    pub fn workspace_key(&self) -> String {
        if self.model == ModelKind::Imported {
            return format!("imported-{}", self.imported_name());
        }
        let mut key = self.model.name().to_string();
        match &self.weights {
            _ if self.model == ModelKind::Pixels => {}
            None => key.push_str("-untrained"),
            Some(path) if is_shipped_weights(self.model, path) => {}
            Some(path) => {
                let stem = path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let safe: String = stem
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                key.push('@');
                key.push_str(&safe);
                if let Some(prefix) = &self.weights_key {
                    key.push('#');
                    key.extend(prefix.chars().map(|c| {
                        if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                            c
                        } else {
                            '_'
                        }
                    }));
                }
            }
        }
        if self.input_size_px != self.model.default_input_size_px() {
            key.push_str(&format!("-{}px", self.input_size_px));
        }
        if let Some(pool) = self.pool {
            key.push_str(&format!("-pool-{}", pool.name().replace('+', "-")));
        }
        if !self.precision.is_f32() && self.model.has_network() {
            key.push_str(&format!("-{}", self.precision));
        }
        key
    }

    /// Whether `other` runs the same network at the same input size: the same model, weights
    /// from a file in both (their bytes are compared by fingerprint elsewhere, so the file may
    /// have moved) or the same seed in both.
    pub fn same_network(&self, other: &EncoderSpec) -> bool {
        self.model == other.model
            && self.input_size_px == other.input_size_px
            && self.weights_key == other.weights_key
            && self.pool == other.pool
            && self.precision == other.precision
            && match (&self.weights, &other.weights) {
                (None, None) => self.seed == other.seed,
                (Some(a), Some(b)) if self.model == ModelKind::Imported => a == b,
                (Some(_), Some(_)) => true,
                _ => false,
            }
    }

    /// Whether this is a CNN with random weights (every output must say so).
    pub fn is_untrained(&self) -> bool {
        self.model.has_network() && self.weights.is_none()
    }

    /// A short human description, e.g. "compact @64px, untrained encoder (seed 0)" or
    /// "ResNet-50 @224px, weights moco.pth".
    pub fn describe(&self) -> String {
        if self.model == ModelKind::Imported {
            return format!("imported embeddings `{}`", self.imported_name());
        }
        let weights = match (&self.weights, self.model) {
            (_, ModelKind::Pixels) => "raw-pixel baseline".to_string(),
            (Some(p), _) => format!(
                "weights {}",
                p.file_name().map_or_else(
                    || p.display().to_string(),
                    |n| n.to_string_lossy().into_owned()
                )
            ),
            (None, _) => format!("untrained encoder (random init, seed {})", self.seed),
        };
        let pool = self
            .pool
            .map_or_else(String::new, |p| format!(", {} pooling", p.name()));
        let pool = match self.precision {
            Precision::F32 => pool,
            half => format!("{pool}, {half}"),
        };
        format!(
            "{} @{}px{pool}, {}",
            self.family(),
            self.input_size_px,
            weights
        )
    }

    /// The network's name: the model's, or for a checkpoint the family and size its tensors
    /// form ("ResNet-50"; [`checkpoint::inspect`] remembers it, so this is cheap to repeat).
    pub fn family(&self) -> String {
        match (&self.weights, self.model) {
            (Some(path), ModelKind::Checkpoint) => {
                checkpoint::inspect(path, self.weights_key.as_deref())
                    .map_or_else(|_| self.model.name().to_string(), |info| info.family)
            }
            _ => self.model.name().to_string(),
        }
    }
}

/// Picks the compute device: the first CUDA GPU when built with `cuda` and one is present
/// (unless `force_cpu`), else the CPU — and a CUDA build that finds no GPU says so (once, on
/// standard error, with the reason).
pub fn choose_device(force_cpu: bool) -> Device {
    if force_cpu {
        return Device::Cpu;
    }
    #[cfg(feature = "cuda")]
    {
        match Device::new_cuda(0) {
            Ok(device) => return device,
            Err(e) => {
                // Said once per process: a CUDA build on the CPU is never silent.
                static SAID: std::sync::Once = std::sync::Once::new();
                SAID.call_once(|| {
                    eprintln!(
                        "natview: built with CUDA, but no GPU could be opened ({e}); running on the CPU"
                    );
                });
            }
        }
    }
    Device::Cpu
}

/// A human name for a device.
pub fn device_name(device: &Device) -> &'static str {
    if device.is_cuda() {
        "CUDA GPU"
    } else {
        "CPU"
    }
}

/// The device in words with its memory in use, e.g. "NVIDIA H100 80GB HBM3 (GPU 0), 3.1 of
/// 79.2 GiB in use" for a CUDA device (the whole GPU's use, every process's), "CPU" otherwise.
pub fn device_status(device: &Device) -> String {
    #[cfg(feature = "cuda")]
    if let Ok(cuda) = device.as_cuda_device() {
        let stream = cuda.cuda_stream();
        let context = stream.context();
        let name = context.name().unwrap_or_else(|_| "CUDA GPU".into());
        let gib = |bytes: usize| bytes as f64 / f64::from(1u32 << 30);
        return match context.mem_get_info() {
            Ok((free, total)) => format!(
                "{name} (GPU {}), {:.1} of {:.1} GiB in use",
                context.ordinal(),
                gib(total.saturating_sub(free)),
                gib(total)
            ),
            Err(e) => format!("{name} (GPU {}; memory unknown: {e})", context.ordinal()),
        };
    }
    device_name(device).to_string()
}

enum Network {
    Pixels,
    Cnn(Box<Trunk>),
}

/// The rows of a `[batch, dim]` feature tensor, each L2-normalised.
fn unit_rows(features: &Tensor) -> Result<Vec<Vec<f32>>, EncoderError> {
    let mut rows = features.to_vec2::<f32>()?;
    rows.iter_mut().for_each(|r| l2_normalise(r));
    Ok(rows)
}

/// Unit-length embedding rows, and each row's SwAV cluster when the encoder has the head.
pub type ClusteredRows = (Vec<Vec<f32>>, Option<Vec<u32>>);

/// A ready-to-run encoder.
pub struct Encoder {
    spec: EncoderSpec,
    network: Network,
    device: Device,
    weights_fingerprint: String,
    /// SwAV's projector and prototypes, when the weights carry them.
    cluster_head: Option<ClusterHead>,
    normalisation: Normalisation,
    /// The share of the short side the centre crop keeps (the folder's resize-then-crop).
    crop_fraction: f32,
    summary: String,
}

impl Encoder {
    /// Builds the encoder described by `spec` on `device`, loading its weights if any: natview's
    /// own safetensors for a preset, or any checkpoint [`checkpoint`] reads (for a preset, it
    /// must hold that preset's network).
    pub fn new(spec: &EncoderSpec, device: &Device) -> Result<Self, EncoderError> {
        if spec.model == ModelKind::Imported {
            return Err(EncoderError::ImportedHasNoEncoder(spec.imported_name()));
        }
        if spec.model == ModelKind::Pixels {
            if spec.weights.is_some() {
                return Err(EncoderError::PixelsTakeNoWeights);
            }
            return Ok(Self {
                spec: spec.clone(),
                network: Network::Pixels,
                device: device.clone(),
                weights_fingerprint: "none".into(),
                cluster_head: None,
                normalisation: spec.model.normalisation(),
                crop_fraction: 1.0,
                summary: spec.describe(),
            });
        }
        let mismatch = |path: &Path, message: String| EncoderError::WeightsMismatch {
            path: path.to_path_buf(),
            model: spec.model.name().into(),
            message,
        };
        let mut normalisation = spec.model.normalisation();
        let mut crop_fraction = 1.0;
        let mut summary = spec.describe();
        let mut cluster_head = None;
        // Half precision converts the weights as the network takes them.
        let dtype = spec.precision.dtype();
        if spec.precision == Precision::Bf16 && device.is_cpu() {
            return Err(EncoderError::Bf16OnTheCpu);
        }
        let (architecture, vb, weights_fingerprint) = match &spec.weights {
            Some(path)
                if spec.model == ModelKind::Checkpoint || checkpoint::is_pytorch_file(path) =>
            {
                let (mut info, tensors) =
                    checkpoint::open(path, spec.weights_key.as_deref(), device)?;
                info.architecture = spec.pooled(path, info.architecture)?;
                if let Some(preset) = spec.model.architecture() {
                    if preset != info.architecture {
                        return Err(mismatch(
                            path,
                            format!(
                                "it holds {}; leave out --model (or pass --model checkpoint) \
                                 to embed with it",
                                info.summary
                            ),
                        ));
                    }
                }
                cluster_head = ClusterHead::from_tensors(&tensors)
                    .map_err(|e| mismatch(path, first_line(&e.to_string())))?;
                normalisation = info.normalisation;
                crop_fraction = info.crop_fraction;
                summary = format!("{}; preprocessing: {}", info.summary, info.preprocessing);
                let fingerprint =
                    file_fingerprint(path).map_err(|e| EncoderError::WeightsFile {
                        path: path.clone(),
                        message: e.to_string(),
                    })?;
                (
                    info.architecture,
                    VarBuilder::from_tensors(tensors, dtype, device),
                    fingerprint,
                )
            }
            Some(path) => {
                let (tensors, fingerprint) = load_weights(path, device)?;
                cluster_head = ClusterHead::from_tensors(&tensors)
                    .map_err(|e| mismatch(path, first_line(&e.to_string())))?;
                let architecture = spec
                    .model
                    .architecture()
                    .ok_or_else(|| EncoderError::NoShippedWeights(spec.model.name().into()))?;
                (
                    architecture,
                    VarBuilder::from_tensors(tensors, dtype, device),
                    fingerprint,
                )
            }
            None => (
                spec.model
                    .architecture()
                    .ok_or_else(|| EncoderError::NoShippedWeights(spec.model.name().into()))?,
                VarBuilder::from_backend(
                    Box::new(SeededInit { seed: spec.seed }),
                    dtype,
                    device.clone(),
                ),
                format!("seed:{}", spec.seed),
            ),
        };
        let mut net = architecture.build(vb).map_err(|e| match &spec.weights {
            Some(path) => mismatch(path, first_line(&e.to_string())),
            None => EncoderError::Candle(e),
        })?;
        // natview's fused inference paths are f32 kernels; half precision runs candle's ops.
        if spec.precision.is_f32() {
            net.prepare_inference(device)?;
        }
        Ok(Self {
            spec: spec.clone(),
            network: Network::Cnn(Box::new(net)),
            device: device.clone(),
            weights_fingerprint,
            cluster_head,
            normalisation,
            crop_fraction,
            summary,
        })
    }

    /// The shortest image side this encoder's input needs before it is resized down: the input
    /// size over the crop fraction (a decoder may deliver anything at least this large).
    pub fn input_side_needed(&self) -> u32 {
        let side = f64::from(self.spec.input_size_px) / f64::from(self.crop_fraction.max(0.05));
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "at most 20 × a u32 input size, positive; saturates beyond"
        )]
        let side = side.ceil() as u32;
        side
    }

    /// `image` as this encoder's input: the centred crop its preprocessing keeps, resized to
    /// the input size. [`embed_clustered_prepared`](Self::embed_clustered_prepared) takes these.
    pub fn prepare(&self, image: &RgbImage) -> RgbImage {
        natview_core::pixels::centre_crop_resize(image, self.spec.input_size_px, self.crop_fraction)
    }

    /// [`embed_clustered`](Self::embed_clustered) of images already made inputs by
    /// [`prepare`](Self::prepare) (cropped and resized once, where they were decoded).
    pub fn embed_clustered_prepared(
        &self,
        prepared: &[RgbImage],
    ) -> Result<ClusteredRows, EncoderError> {
        // Already cropped and at the input size: the whole square is the input.
        self.embed_clustered_cropped(prepared, 1.0)
    }

    /// Unit rows (and SwAV clusters) of `images`, each cropped to `crop_fraction` of its short
    /// side and resized to the input size; the pixel baseline has no clusters.
    fn embed_clustered_cropped(
        &self,
        images: &[RgbImage],
        crop_fraction: f32,
    ) -> Result<ClusteredRows, EncoderError> {
        if let Network::Pixels = &self.network {
            return Ok((self.embed(images)?, None));
        }
        let input = images_tensor_cropped(
            images,
            self.spec.input_size_px,
            crop_fraction,
            self.normalisation,
            &self.device,
        )?;
        let features = self.features(&input)?;
        let clusters = match &self.cluster_head {
            Some(head) => Some(head.assign(&features)?),
            None => None,
        };
        Ok((unit_rows(&features)?, clusters))
    }

    /// What the encoder is, in one line: for a checkpoint, the family and size natview found,
    /// its layout, where in the file and what was dropped; else [`EncoderSpec::describe`].
    pub fn summary(&self) -> &str {
        &self.summary
    }

    /// How input pixels are normalised (the family's standard, or the checkpoint's own).
    pub fn normalisation(&self) -> Normalisation {
        self.normalisation
    }

    /// Number of SwAV clusters, when the weights carry SwAV's head.
    pub fn clusters(&self) -> Option<usize> {
        self.cluster_head.as_ref().map(ClusterHead::clusters)
    }

    /// [`embed`](Self::embed), and each image's SwAV cluster when the weights carry the head.
    pub fn embed_clustered(&self, images: &[RgbImage]) -> Result<ClusteredRows, EncoderError> {
        self.embed_clustered_cropped(images, self.crop_fraction)
    }

    /// The spec this encoder was built from.
    pub fn spec(&self) -> &EncoderSpec {
        &self.spec
    }

    /// The device it runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// A fingerprint of the weights (file hash, or the seed).
    pub fn weights_fingerprint(&self) -> &str {
        &self.weights_fingerprint
    }

    /// Output dimension.
    pub fn dim(&self) -> usize {
        match &self.network {
            Network::Pixels => (self.spec.input_size_px * self.spec.input_size_px * 3) as usize,
            Network::Cnn(net) => net.feature_dim(),
        }
    }

    /// Embeds a batch of images; each output row is L2-normalised.
    pub fn embed(&self, images: &[RgbImage]) -> Result<Vec<Vec<f32>>, EncoderError> {
        let size = self.spec.input_size_px;
        let mut rows: Vec<Vec<f32>> = match &self.network {
            Network::Pixels => images.iter().map(|im| pixel_vector(im, size)).collect(),
            Network::Cnn(_) => return self.embed_input(&self.input_tensor(images)?),
        };
        rows.iter_mut().for_each(|r| l2_normalise(r));
        Ok(rows)
    }

    /// Embeds an already preprocessed `[batch, 3, size, size]` input (see
    /// [`input_tensor`](Self::input_tensor)); each output row is L2-normalised. The pixel
    /// baseline has no network and refuses.
    pub fn embed_input(&self, input: &Tensor) -> Result<Vec<Vec<f32>>, EncoderError> {
        unit_rows(&self.features(input)?)
    }

    /// The pooled features `[batch, dim]` (not normalised, f32) of a preprocessed input.
    fn features(&self, input: &Tensor) -> Result<Tensor, EncoderError> {
        Ok(self.features_in_precision(input)?.to_dtype(DType::F32)?)
    }

    /// The pooled features in the encoder's precision (the input converted to it).
    fn features_in_precision(&self, input: &Tensor) -> Result<Tensor, EncoderError> {
        let Network::Cnn(net) = &self.network else {
            return Err(EncoderError::PixelsTakeNoTensor);
        };
        Ok(net.forward_eval(&input.to_dtype(self.spec.precision.dtype())?)?)
    }

    /// ImageNet class logits of each image, for a model whose weights include the classifier
    /// (the shipped EfficientNet-Lite0); `None` otherwise.
    pub fn logits(&self, images: &[RgbImage]) -> Result<Option<Vec<Vec<f32>>>, EncoderError> {
        let Network::Cnn(net) = &self.network else {
            return Ok(None);
        };
        let features = self.features_in_precision(&self.input_tensor(images)?)?;
        Ok(net
            .classify(&features)?
            .map(|t| t.to_dtype(DType::F32).and_then(|t| t.to_vec2::<f32>()))
            .transpose()?)
    }

    /// Preprocesses images into a normalised `[batch, 3, size, size]` tensor on the device.
    pub fn input_tensor(&self, images: &[RgbImage]) -> Result<Tensor, EncoderError> {
        Ok(images_tensor_cropped(
            images,
            self.spec.input_size_px,
            self.crop_fraction,
            self.normalisation,
            &self.device,
        )?)
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}

/// Whether `path` holds the weights shipped for `model`: the shipped file's name and the same
/// bytes as the installed copy (by content, so that moving or installing the models does not
/// make workspaces made with them stale).
pub fn is_shipped_weights(model: ModelKind, path: &Path) -> bool {
    let Some(file) = model.shipped_weights_file() else {
        return false;
    };
    if path.file_name().and_then(|n| n.to_str()) != Some(file) {
        return false;
    }
    let Some(installed) = model.shipped_weights() else {
        return false;
    };
    installed == path
        || matches!(
            (file_fingerprint(path), file_fingerprint(&installed)),
            (Ok(a), Ok(b)) if a == b
        )
}

/// The fingerprint (xxh3 of the bytes) of a weights file, computed once per file version (path,
/// size and modification time) in this process; of a model folder, over its weights and
/// config files.
pub fn file_fingerprint(path: &Path) -> std::io::Result<String> {
    static KNOWN: file_memo::FileMemo<String> = file_memo::FileMemo::new();
    if path.is_dir() {
        let parts = checkpoint::folder_files(path)
            .map_err(std::io::Error::other)?
            .iter()
            .map(|f| file_fingerprint(f))
            .collect::<std::io::Result<Vec<_>>>()?;
        return Ok(fingerprint_bytes(parts.join(",").as_bytes()));
    }
    KNOWN.get_or_compute(path, None, || {
        // Streamed: a large checkpoint is never read into memory whole.
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        let mut file = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(path)?);
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            let n = std::io::Read::read(&mut file, &mut buffer)?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
        }
        Ok(format!("{:016x}", hasher.digest()))
    })
}

fn fingerprint_bytes(bytes: &[u8]) -> String {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(bytes))
}

/// Reads a safetensors weights file into tensors, with a fingerprint of its bytes.
pub fn load_weights(
    path: &Path,
    device: &Device,
) -> Result<(std::collections::HashMap<String, Tensor>, String), EncoderError> {
    let file_error = |message: String| EncoderError::WeightsFile {
        path: path.to_path_buf(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| file_error(e.to_string()))?;
    let fingerprint = fingerprint_bytes(&bytes);
    let tensors = candle_core::safetensors::load_buffer(&bytes, device)
        .map_err(|e| file_error(first_line(&e.to_string())))?;
    Ok((tensors, fingerprint))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_images() -> Vec<RgbImage> {
        (0..3u8)
            .map(|i| {
                RgbImage::from_fn(64, 64, |x, y| {
                    image::Rgb([(x as u8).wrapping_mul(i + 1), y as u8 * 3, 40 * i])
                })
            })
            .collect()
    }

    #[test]
    fn outputs_are_unit_vectors_and_reproducible_for_a_seed() {
        let spec = EncoderSpec::untrained(ModelKind::Compact);
        let a = Encoder::new(&spec, &Device::Cpu).expect("builds");
        let b = Encoder::new(&spec, &Device::Cpu).expect("builds");
        let ea = a.embed(&test_images()).expect("embeds");
        let eb = b.embed(&test_images()).expect("embeds");
        assert_eq!(ea, eb);
        for row in &ea {
            assert_eq!(row.len(), 256);
            let norm: f32 = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-4);
        }
    }

    #[test]
    fn pixel_baseline_has_three_values_per_pixel() {
        let enc =
            Encoder::new(&EncoderSpec::untrained(ModelKind::Pixels), &Device::Cpu).expect("builds");
        let rows = enc.embed(&test_images()).expect("embeds");
        assert_eq!(rows[0].len(), 32 * 32 * 3);
        assert_eq!(enc.dim(), 32 * 32 * 3);
    }

    #[test]
    fn mis_shaped_and_missing_tensors_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("w.safetensors");
        let wrong = Tensor::zeros((8, 3, 3, 3), DType::F32, &Device::Cpu).expect("tensor");
        candle_core::safetensors::save(
            &std::collections::HashMap::from([("conv1.weight".to_string(), wrong)]),
            &path,
        )
        .expect("save");
        let spec = EncoderSpec {
            weights: Some(path.clone()),
            ..EncoderSpec::untrained(ModelKind::Compact)
        };
        let err = Encoder::new(&spec, &Device::Cpu)
            .err()
            .expect("refused")
            .to_string();
        assert!(
            err.contains("w.safetensors") && err.contains("conv1"),
            "{err}"
        );

        std::fs::write(&path, b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":").expect("write");
        let err = Encoder::new(&spec, &Device::Cpu)
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains("w.safetensors: cannot read weights"), "{err}");
    }

    #[test]
    fn model_names_parse() {
        assert_eq!(
            "ResNet-18".parse::<ModelKind>().ok(),
            Some(ModelKind::Resnet18)
        );
        assert_eq!(
            "regnety-400mf".parse::<ModelKind>().ok(),
            Some(ModelKind::RegnetY400mf)
        );
        assert!("vit".parse::<ModelKind>().is_err());
        for model in ModelKind::ALL {
            assert_eq!(model.name().parse::<ModelKind>().ok(), Some(model));
        }
    }
}
