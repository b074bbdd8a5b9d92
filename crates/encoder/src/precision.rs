//! The floating-point precision an encoder embeds in: f32 (the default, and what natview
//! trains in) or half precision — f16 or bf16 — for inference on a GPU, where it halves the
//! memory traffic and runs the matrix products on tensor cores. The weights are converted
//! when the network is built and the input when it is embedded; the pooled features come back
//! as f32 and are normalised in f32. On the CPU half precision is slower than f32 (candle's CPU
//! kernels have no native half arithmetic, and natview's own CPU kernels are f32-only): f16
//! runs there, through candle's device-generic ops, so that it can be tested anywhere; bf16
//! does not (candle 0.11 has no bf16 matrix product on the CPU) and is refused there.

use candle_core::DType;
use serde::{Deserialize, Serialize};

/// An encoder's inference precision (see the module's documentation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit floats.
    #[default]
    F32,
    /// IEEE half precision (10-bit mantissa, range ±65,504).
    F16,
    /// bfloat16 (8-bit mantissa, f32's range).
    Bf16,
}

impl Precision {
    /// Every precision, the default first.
    pub const ALL: [Precision; 3] = [Precision::F32, Precision::F16, Precision::Bf16];

    /// The name the CLI takes and the workspace records ("f32", "f16", "bf16").
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::Bf16 => "bf16",
        }
    }

    /// The candle dtype of the weights and activations.
    pub fn dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::F16 => DType::F16,
            Precision::Bf16 => DType::BF16,
        }
    }

    /// Whether this is the default, full precision.
    pub fn is_f32(&self) -> bool {
        *self == Precision::F32
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Precision {
    type Err = super::EncoderError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "fp32" | "float32" | "float" => Ok(Precision::F32),
            "f16" | "fp16" | "float16" | "half" => Ok(Precision::F16),
            "bf16" | "bfloat16" => Ok(Precision::Bf16),
            _ => Err(super::EncoderError::UnknownPrecision(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        Architecture, ConvNextConfig, EffNetBConfig, EffNetConfig, Encoder, EncoderSpec, ModelKind,
        RegNetConfig, ResNetConfig, SeededInit, VitConfig,
    };
    use candle_core::{Device, Tensor};
    use candle_nn::VarBuilder;

    /// The smallest cosine between matching rows of two `[n, d]` f32 feature tensors.
    fn worst_cosine(a: &Tensor, b: &Tensor) -> f32 {
        let (a, b) = (
            a.to_vec2::<f32>().expect("rows"),
            b.to_vec2::<f32>().expect("rows"),
        );
        a.iter()
            .zip(&b)
            .map(|(a, b)| {
                let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
                let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
                dot / (norm(a) * norm(b)).max(f32::MIN_POSITIVE)
            })
            .fold(1.0, f32::min)
    }

    /// Every network family, built with the same seeded weights in f32 and in f16, gives the
    /// same features to within f16's resolution (candle's device-generic ops: the path a GPU
    /// takes; bf16 has no CPU matrix product in candle, so it is checked on a GPU only).
    #[test]
    fn every_family_embeds_in_half_precision_close_to_f32() {
        let device = Device::Cpu;
        let families = [
            (Architecture::ResNet(ResNetConfig::resnet18()), 64),
            (Architecture::RegNet(RegNetConfig::y_400mf()), 64),
            (Architecture::EffNet(EffNetConfig::lite(0)), 64),
            (Architecture::EffNetB(EffNetBConfig::b(0)), 64),
            (
                Architecture::ConvNext(ConvNextConfig {
                    depths: [1, 1, 2, 1],
                    dims: [16, 32, 64, 128],
                    patch: 4,
                }),
                64,
            ),
            (
                Architecture::Vit(VitConfig {
                    patch: 8,
                    dim: 64,
                    depth: 3,
                    heads: 2,
                    mlp_dim: 128,
                    grid: 4,
                    ..VitConfig::small_16()
                }),
                32,
            ),
        ];
        let x = Tensor::randn(0f32, 1.0, (2, 3, 64, 64), &device).expect("input");
        for (architecture, side) in families {
            let x = x
                .narrow(2, 0, side)
                .and_then(|x| x.narrow(3, 0, side))
                .expect("crop");
            let features = |precision: Precision| {
                let vb = VarBuilder::from_backend(
                    Box::new(SeededInit { seed: 5 }),
                    precision.dtype(),
                    device.clone(),
                );
                let trunk = architecture.build(vb).expect("builds");
                let out = trunk
                    .forward_eval(&x.to_dtype(precision.dtype()).expect("input"))
                    .expect("forward");
                assert_eq!(out.dtype(), precision.dtype(), "{architecture:?}");
                out.to_dtype(DType::F32).expect("f32")
            };
            let reference = features(Precision::F32);
            let cosine = worst_cosine(&features(Precision::F16), &reference);
            assert!(cosine >= 0.999, "{architecture:?}: cosine {cosine} to f32");
        }
    }

    /// An encoder in f16 embeds close to its f32 self, under a workspace key of its own, and
    /// says so in its description.
    #[test]
    fn an_encoder_spec_in_half_precision_embeds_and_keeps_its_own_files() {
        let f32_spec = EncoderSpec::untrained(ModelKind::Compact);
        let f16_spec = EncoderSpec {
            precision: Precision::F16,
            ..f32_spec.clone()
        };
        assert_eq!(
            f16_spec.workspace_key(),
            format!("{}-f16", f32_spec.workspace_key())
        );
        assert!(
            f16_spec.describe().contains("f16"),
            "{}",
            f16_spec.describe()
        );
        assert!(!f16_spec.same_network(&f32_spec));
        let images: Vec<image::RgbImage> = (0..3u8)
            .map(|i| {
                image::RgbImage::from_fn(40, 48, |x, y| {
                    image::Rgb([(x * 6) as u8 ^ (i * 40), (y * 5) as u8, i * 70])
                })
            })
            .collect();
        let embed = |spec: &EncoderSpec| {
            Encoder::new(spec, &Device::Cpu)
                .and_then(|e| e.embed(&images))
                .expect("embeds")
        };
        let (full, half) = (embed(&f32_spec), embed(&f16_spec));
        for (a, b) in full.iter().zip(&half) {
            let cosine: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
            assert!(cosine > 0.999, "cosine {cosine}");
        }
        let bf16_spec = EncoderSpec {
            precision: Precision::Bf16,
            ..f32_spec.clone()
        };
        let refused = Encoder::new(&bf16_spec, &Device::Cpu)
            .err()
            .map(|e| e.to_string());
        assert!(
            refused
                .as_deref()
                .is_some_and(|e| e.contains("bf16") && e.contains("GPU")),
            "{refused:?}"
        );
    }

    #[test]
    fn names_round_trip_and_aliases_parse() {
        for precision in Precision::ALL {
            assert_eq!(precision.name().parse::<Precision>().ok(), Some(precision));
        }
        assert_eq!("FP16".parse::<Precision>().ok(), Some(Precision::F16));
        assert_eq!("bfloat16".parse::<Precision>().ok(), Some(Precision::Bf16));
        let err = "f8".parse::<Precision>().expect_err("unknown");
        assert!(err.to_string().contains("f8") && err.to_string().contains("bf16"));
    }
}
