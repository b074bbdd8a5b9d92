//! EfficientNet-Lite (Google's mobile EfficientNet without squeeze-excitation, ReLU6
//! activations, fixed 32-channel stem and 1280-channel head) with the tensor names of the
//! PyTorch port `efficientnet-lite-pytorch` (`_conv_stem`, `_bn0`, `_blocks.N._expand_conv`,
//! `_blocks.N._depthwise_conv`, `_blocks.N._project_conv`, `_conv_head`, `_bn1`, `_fc`), so its
//! ImageNet `state_dict` converted to safetensors loads as is. Convolutions use TensorFlow's
//! "SAME" padding (the odd zero row/column after), as the weights were trained with.
//!
//! This is the autograd-capable definition (training, and devices other than the CPU); embedding
//! on the CPU runs the same network through [`super::effnet_cpu`], with batch norm folded.

use super::batch_norm::{batch_norm_train, Activation};
use super::conv::Conv2d;
use super::depthwise::depthwise_conv_same;
use super::depthwise_cpu::same_padding;
use super::resnet::{bn_affine, conv_bn, conv_bn_act};
use candle_core::{Module, Result, Tensor, D};
use candle_nn::{batch_norm, BatchNorm, Linear, VarBuilder};

/// Batch-norm epsilon of the TensorFlow originals.
pub const BN_EPS: f64 = 1e-3;

/// One MBConv block's shape: channels in and out, expansion ratio, depthwise kernel and stride.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockSpec {
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Expansion ratio of the inverted bottleneck (1: no expansion convolution).
    pub expand: usize,
    /// Depthwise kernel side.
    pub kernel: usize,
    /// Depthwise stride.
    pub stride: usize,
    /// The stage (1–7) the block belongs to; the stem is stage 0.
    pub stage: usize,
}

impl BlockSpec {
    /// Channels inside the block (after expansion).
    pub fn mid(&self) -> usize {
        self.c_in * self.expand
    }

    /// Whether the block adds its input to its output.
    pub fn residual(&self) -> bool {
        self.stride == 1 && self.c_in == self.c_out
    }
}

/// An EfficientNet-Lite variant.
#[derive(Debug, Clone, PartialEq)]
pub struct EffNetConfig {
    /// 0, 1 or 2 (Lite0: 224 px, Lite1: 240 px, Lite2: 260 px).
    pub variant: u8,
    /// Every block, in order.
    pub blocks: Vec<BlockSpec>,
}

/// Stem output channels (not scaled in the Lite models).
pub const STEM_CHANNELS: usize = 32;
/// Head output channels = feature dimension (not scaled in the Lite models).
pub const HEAD_CHANNELS: usize = 1280;

impl EffNetConfig {
    /// EfficientNet-Lite`variant` (0–4), built as the reference does: B0's stages with widths
    /// scaled and rounded to multiples of 8 and repeats scaled (but the first and last stage's
    /// repeats and the stem/head widths kept).
    pub fn lite(variant: u8) -> Self {
        let (width, depth) = match variant {
            0 => (1.0, 1.0),
            1 => (1.0, 1.1),
            2 => (1.1, 1.2),
            3 => (1.2, 1.4),
            _ => (1.4, 1.8),
        };
        // (repeats, kernel, stride, expand, in, out) of EfficientNet-B0.
        const STAGES: [(usize, usize, usize, usize, usize, usize); 7] = [
            (1, 3, 1, 1, 32, 16),
            (2, 3, 2, 6, 16, 24),
            (2, 5, 2, 6, 24, 40),
            (3, 3, 2, 6, 40, 80),
            (3, 5, 1, 6, 80, 112),
            (4, 5, 2, 6, 112, 192),
            (1, 3, 1, 6, 192, 320),
        ];
        let round_filters = |filters: usize| -> usize {
            let scaled = filters as f64 * width;
            let rounded = (((scaled + 4.0) as usize) / 8 * 8).max(8);
            if (rounded as f64) < 0.9 * scaled {
                rounded + 8
            } else {
                rounded
            }
        };
        let mut blocks = Vec::new();
        for (i, &(repeats, kernel, stride, expand, c_in, c_out)) in STAGES.iter().enumerate() {
            let fixed = i == 0 || i + 1 == STAGES.len();
            let repeats = if fixed {
                repeats
            } else {
                (repeats as f64 * depth).ceil() as usize
            };
            let c_in = if i == 0 {
                STEM_CHANNELS
            } else {
                round_filters(c_in)
            };
            let c_out = round_filters(c_out);
            for r in 0..repeats {
                blocks.push(BlockSpec {
                    c_in: if r == 0 { c_in } else { c_out },
                    c_out,
                    expand,
                    kernel,
                    stride: if r == 0 { stride } else { 1 },
                    stage: i + 1,
                });
            }
        }
        Self {
            variant: variant.min(4),
            blocks,
        }
    }

    /// The input size the variant was trained at.
    pub fn input_size_px(&self) -> u32 {
        [224, 240, 260, 280, 300][usize::from(self.variant.min(4))]
    }

    /// Dimension of the pooled feature vector.
    pub fn feature_dim(&self) -> usize {
        HEAD_CHANNELS
    }

    /// Channels entering the head convolution.
    pub fn last_channels(&self) -> usize {
        self.blocks.last().map_or(STEM_CHANNELS, |b| b.c_out)
    }
}

/// `x` zero-padded for a TF-"SAME" `k × k` convolution with `stride`.
pub fn pad_same(x: &Tensor, k: usize, stride: usize) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let (_, top, bottom) = same_padding(h, k, stride);
    let (_, left, right) = same_padding(w, k, stride);
    if top + bottom + left + right == 0 {
        return Ok(x.clone());
    }
    x.pad_with_zeros(2, top, bottom)?
        .pad_with_zeros(3, left, right)
}

fn relu6(x: &Tensor) -> Result<Tensor> {
    x.clamp(0f32, 6f32)
}

/// One MBConv block: optional 1×1 expansion, depthwise `k × k`, 1×1 projection, residual.
#[derive(Debug, Clone)]
pub struct MbBlock {
    spec: BlockSpec,
    expand: Option<(Conv2d, BatchNorm)>,
    depthwise: Tensor,
    depthwise_bn: BatchNorm,
    project: (Conv2d, BatchNorm),
}

impl MbBlock {
    fn new(spec: BlockSpec, vb: VarBuilder) -> Result<Self> {
        let mid = spec.mid();
        let expand = if spec.expand != 1 {
            Some((
                Conv2d::new(spec.c_in, mid, 1, 1, 0, vb.pp("_expand_conv"))?,
                batch_norm(mid, BN_EPS, vb.pp("_bn0"))?,
            ))
        } else {
            None
        };
        let depthwise = vb.pp("_depthwise_conv").get_with_hints(
            (mid, 1, spec.kernel, spec.kernel),
            "weight",
            candle_nn::init::DEFAULT_KAIMING_NORMAL,
        )?;
        Ok(Self {
            spec,
            expand,
            depthwise,
            depthwise_bn: batch_norm(mid, BN_EPS, vb.pp("_bn1"))?,
            project: (
                Conv2d::new(mid, spec.c_out, 1, 1, 0, vb.pp("_project_conv"))?,
                batch_norm(spec.c_out, BN_EPS, vb.pp("_bn2"))?,
            ),
        })
    }

    /// The block's shape.
    pub fn spec(&self) -> BlockSpec {
        self.spec
    }

    /// The expansion convolution's kernel and batch norm, if the block expands.
    pub fn expand(&self) -> Option<(&Conv2d, &BatchNorm)> {
        self.expand.as_ref().map(|(c, b)| (c, b))
    }

    /// The depthwise kernel `[mid, 1, k, k]` and its batch norm.
    pub fn depthwise(&self) -> (&Tensor, &BatchNorm) {
        (&self.depthwise, &self.depthwise_bn)
    }

    /// The projection convolution's kernel and batch norm.
    pub fn project(&self) -> (&Conv2d, &BatchNorm) {
        (&self.project.0, &self.project.1)
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut h = match &self.expand {
            Some((conv, bn)) => conv_bn_act(conv, bn, x, train, Activation::Relu6)?,
            None => x.clone(),
        };
        h = if train {
            let y = depthwise_conv_same(&h, &self.depthwise, self.spec.stride)?;
            batch_norm_train(&self.depthwise_bn, &y, Activation::Relu6)?
        } else {
            let (scale, shift) = bn_affine(&self.depthwise_bn)?;
            let c = scale.dim(0)?;
            let kernel = self
                .depthwise
                .broadcast_mul(&scale.reshape((c, 1, 1, 1))?)?;
            relu6(
                &depthwise_conv_same(&h, &kernel, self.spec.stride)?
                    .broadcast_add(&shift.reshape((1, c, 1, 1))?)?,
            )?
        };
        h = conv_bn(&self.project.0, &self.project.1, &h, train)?;
        if self.spec.residual() {
            h = (h + x)?;
        }
        Ok(h)
    }
}

/// An EfficientNet-Lite trunk returning globally average-pooled features `[batch, 1280]`; the
/// ImageNet classifier (`_fc`) is loaded when the weights have it.
#[derive(Debug, Clone)]
pub struct EfficientNet {
    config: EffNetConfig,
    stem: (Conv2d, BatchNorm),
    blocks: Vec<MbBlock>,
    head: (Conv2d, BatchNorm),
    classifier: Option<Linear>,
}

impl EfficientNet {
    /// Builds the network, reading (or creating) tensors through `vb` with the PyTorch port's
    /// names.
    pub fn new(config: &EffNetConfig, vb: VarBuilder) -> Result<Self> {
        let stem = (
            Conv2d::new(3, STEM_CHANNELS, 3, 2, 0, vb.pp("_conv_stem"))?,
            batch_norm(STEM_CHANNELS, BN_EPS, vb.pp("_bn0"))?,
        );
        let blocks = config
            .blocks
            .iter()
            .enumerate()
            .map(|(i, spec)| MbBlock::new(*spec, vb.pp(format!("_blocks.{i}"))))
            .collect::<Result<Vec<_>>>()?;
        let head = (
            Conv2d::new(
                config.last_channels(),
                HEAD_CHANNELS,
                1,
                1,
                0,
                vb.pp("_conv_head"),
            )?,
            batch_norm(HEAD_CHANNELS, BN_EPS, vb.pp("_bn1"))?,
        );
        // Only when the weights hold the classifier (an initialiser cannot make one).
        let classifier = if vb.contains_tensor("_fc.weight") {
            let fc = vb.pp("_fc");
            fc.get_unchecked("weight")
                .ok()
                .map(|weight| Linear::new(weight, fc.get_unchecked("bias").ok()))
        } else {
            None
        };
        Ok(Self {
            config: config.clone(),
            stem,
            blocks,
            head,
            classifier,
        })
    }

    /// The configuration this network was built from.
    pub fn config(&self) -> &EffNetConfig {
        &self.config
    }

    /// The stem convolution (3×3/2, TF-"SAME") and its batch norm.
    pub fn stem(&self) -> (&Conv2d, &BatchNorm) {
        (&self.stem.0, &self.stem.1)
    }

    /// The blocks in order.
    pub fn blocks(&self) -> &[MbBlock] {
        &self.blocks
    }

    /// The head convolution (1×1 to 1280 channels) and its batch norm.
    pub fn head(&self) -> (&Conv2d, &BatchNorm) {
        (&self.head.0, &self.head.1)
    }

    /// The ImageNet classifier, when the weights had one.
    pub fn classifier(&self) -> Option<&Linear> {
        self.classifier.as_ref()
    }

    /// Pooled features of a `[batch, 3, h, w]` normalised image tensor.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_frozen(x, train, 0)
    }

    /// [`forward_t`](Self::forward_t) with the first `frozen` stages (the stem is stage 0)
    /// fixed: run in evaluation mode and cut from the gradient.
    pub fn forward_frozen(&self, x: &Tensor, train: bool, frozen: usize) -> Result<Tensor> {
        let stage_output = |h: Tensor, stage: usize| {
            if stage + 1 == frozen {
                h.detach()
            } else {
                h
            }
        };
        let stem = conv_bn_act(
            &self.stem.0,
            &self.stem.1,
            &pad_same(x, 3, 2)?,
            train && frozen == 0,
            Activation::Relu6,
        )?;
        let mut h = stage_output(stem, 0);
        for (i, block) in self.blocks.iter().enumerate() {
            let stage = block.spec.stage;
            h = block.forward_t(&h, train && stage >= frozen)?;
            let last_of_stage = self.blocks.get(i + 1).is_none_or(|b| b.spec.stage != stage);
            if last_of_stage {
                h = stage_output(h, stage);
            }
        }
        let last_stage = self.blocks.last().map_or(0, |b| b.spec.stage);
        h = conv_bn_act(
            &self.head.0,
            &self.head.1,
            &h,
            train && last_stage >= frozen,
            Activation::Relu6,
        )?;
        h.mean(D::Minus1)?.mean(D::Minus1)
    }

    /// ImageNet logits `[batch, 1000]` of pooled features (`None` without a classifier).
    pub fn classify(&self, features: &Tensor) -> Result<Option<Tensor>> {
        self.classifier
            .as_ref()
            .map(|fc| fc.forward(features))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    #[test]
    fn lite_variants_have_the_reference_shapes() {
        let lite0 = EffNetConfig::lite(0);
        assert_eq!(lite0.blocks.len(), 16);
        assert_eq!(lite0.last_channels(), 320);
        assert_eq!(
            lite0.blocks[0],
            BlockSpec {
                c_in: 32,
                c_out: 16,
                expand: 1,
                kernel: 3,
                stride: 1,
                stage: 1,
            }
        );
        let lite2 = EffNetConfig::lite(2);
        assert_eq!(lite2.blocks.len(), 1 + 3 + 3 + 4 + 4 + 5 + 1);
        assert_eq!(lite2.last_channels(), 352);
        assert_eq!(EffNetConfig::lite(1).blocks.len(), 21);
    }

    #[test]
    fn features_have_1280_dimensions() {
        let vb = VarBuilder::zeros(DType::F32, &Device::Cpu);
        let net = EfficientNet::new(&EffNetConfig::lite(0), vb).expect("builds");
        let x = Tensor::zeros((2, 3, 64, 64), DType::F32, &Device::Cpu).expect("input");
        let y = net.forward_t(&x, false).expect("forward");
        assert_eq!(y.dims(), &[2, 1280]);
    }
}
