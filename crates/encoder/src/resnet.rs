//! ResNet encoders with torchvision's tensor names (`conv1`, `bn1`, `layer1.0.conv1`,
//! `layer1.0.downsample.0`, …), so a torchvision `state_dict` saved as safetensors loads as is.
//! The classifier (`fc`) is dropped: the encoder returns the globally pooled features.
//! Batch norm runs in training mode when asked (`forward_t`), so the same model can be trained.

use super::batch_norm::{batch_norm_train, Activation};
use super::conv::Conv2d;
use super::trunk::forward_stages;
use candle_core::{Module, Result, Tensor, D};
use candle_nn::{batch_norm, BatchNorm, VarBuilder};

/// The shape of a ResNet: block type, blocks per stage, stage widths and stem.
#[derive(Debug, Clone, PartialEq)]
pub struct ResNetConfig {
    /// Bottleneck blocks (ResNet-50) instead of basic blocks (ResNet-18).
    pub bottleneck: bool,
    /// Number of blocks in each of the four stages.
    pub blocks: [usize; 4],
    /// Width (channels before expansion) of each stage.
    pub widths: [usize; 4],
    /// Channels of the stem convolution.
    pub stem_channels: usize,
    /// `true`: torchvision's 7×7/2 convolution plus 3×3/2 max-pool (for ≥160 px inputs);
    /// `false`: a 3×3/1 convolution and no pool (for 64–128 px inputs).
    pub imagenet_stem: bool,
    /// Stride of the first stage (1 in torchvision; 2 in the compact model).
    pub first_stage_stride: usize,
    /// Output channels of a bottleneck block per channel of its width: 4 in ResNet-50/101/152,
    /// 2 in the wide variants (whose widths are doubled); unused by basic blocks.
    pub expansion: usize,
}

impl ResNetConfig {
    /// torchvision ResNet-18.
    pub fn resnet18() -> Self {
        Self {
            bottleneck: false,
            blocks: [2, 2, 2, 2],
            widths: [64, 128, 256, 512],
            stem_channels: 64,
            imagenet_stem: true,
            first_stage_stride: 1,
            expansion: 4,
        }
    }

    /// torchvision ResNet-50.
    pub fn resnet50() -> Self {
        Self {
            bottleneck: true,
            blocks: [3, 4, 6, 3],
            widths: [64, 128, 256, 512],
            ..Self::resnet18()
        }
    }

    /// natview's compact encoder for 64–128 px images: one basic block per stage, widths
    /// 32–256, a 3×3 stem without pooling; about 65 M multiply-adds at 64 px.
    pub fn compact() -> Self {
        Self {
            bottleneck: false,
            blocks: [1, 1, 1, 1],
            widths: [32, 64, 128, 256],
            stem_channels: 32,
            imagenet_stem: false,
            first_stage_stride: 2,
            expansion: 4,
        }
    }

    /// Dimension of the pooled feature vector.
    pub fn feature_dim(&self) -> usize {
        self.widths[3] * if self.bottleneck { self.expansion } else { 1 }
    }
}

fn conv(c_in: usize, c_out: usize, k: usize, stride: usize, vb: VarBuilder) -> Result<Conv2d> {
    Conv2d::new(c_in, c_out, k, stride, k / 2, vb)
}

fn bn(c: usize, vb: VarBuilder) -> Result<BatchNorm> {
    batch_norm(c, 1e-5, vb)
}

/// The per-channel affine map `(scale, shift)` that an evaluation-mode batch norm applies:
/// `γ/σ` and `β − μ·γ/σ` (running statistics detached).
pub(super) fn bn_affine(norm: &BatchNorm) -> Result<(Tensor, Tensor)> {
    let inv_std = (norm.running_var().detach() + norm.eps())?
        .sqrt()?
        .recip()?;
    let mean = norm.running_mean().detach();
    Ok(match norm.weight_and_bias() {
        Some((gamma, beta)) => {
            let scale = (gamma * &inv_std)?;
            let shift = (beta - (mean * &scale)?)?;
            (scale, shift)
        }
        None => {
            let shift = (mean.neg()? * &inv_std)?;
            (inv_std, shift)
        }
    })
}

/// `norm(conv(x))`. In evaluation the batch norm is a per-channel affine map, so it is folded
/// into the kernel (`w·γ/σ`) and one bias add (`β − μ·γ/σ`): one pass over the output instead of
/// candle's four (subtract, divide, multiply, add, each allocating a new tensor). Built from
/// tensor ops, so gradients still reach the kernel and the batch-norm weights.
pub(super) fn conv_bn(conv: &Conv2d, norm: &BatchNorm, x: &Tensor, train: bool) -> Result<Tensor> {
    conv_bn_act(conv, norm, x, train, Activation::Identity)
}

/// `activation(norm(conv(x)))`: in training the batch norm and the activation are one fused op
/// ([`batch_norm_train`]); in evaluation the norm is folded as in [`conv_bn`].
pub(super) fn conv_bn_act(
    conv: &Conv2d,
    norm: &BatchNorm,
    x: &Tensor,
    train: bool,
    activation: Activation,
) -> Result<Tensor> {
    if train {
        return batch_norm_train(norm, &conv.forward(x)?, activation);
    }
    activation.apply(&conv_bn_eval(conv, norm, x)?)
}

/// [`conv_bn`] in evaluation: the norm folded into the kernel and one bias add.
fn conv_bn_eval(conv: &Conv2d, norm: &BatchNorm, x: &Tensor) -> Result<Tensor> {
    let (scale, shift) = bn_affine(norm)?;
    let channels = scale.dim(0)?;
    let kernel = conv
        .weight()
        .broadcast_mul(&scale.reshape((channels, 1, 1, 1))?)?;
    conv.forward_with_weight(x, &kernel)?
        .broadcast_add(&shift.reshape((1, channels, 1, 1))?)
}

/// A residual block (basic or bottleneck) with an optional projection shortcut.
#[derive(Debug, Clone)]
struct Block {
    convs: Vec<(Conv2d, BatchNorm)>,
    downsample: Option<(Conv2d, BatchNorm)>,
}

impl Block {
    fn new(
        c_in: usize,
        width: usize,
        stride: usize,
        expansion: Option<usize>,
        vb: VarBuilder,
    ) -> Result<(Self, usize)> {
        let (convs, c_out) = if let Some(expansion) = expansion {
            let c_out = width * expansion;
            let convs = vec![
                (
                    conv(c_in, width, 1, 1, vb.pp("conv1"))?,
                    bn(width, vb.pp("bn1"))?,
                ),
                (
                    conv(width, width, 3, stride, vb.pp("conv2"))?,
                    bn(width, vb.pp("bn2"))?,
                ),
                (
                    conv(width, c_out, 1, 1, vb.pp("conv3"))?,
                    bn(c_out, vb.pp("bn3"))?,
                ),
            ];
            (convs, c_out)
        } else {
            let convs = vec![
                (
                    conv(c_in, width, 3, stride, vb.pp("conv1"))?,
                    bn(width, vb.pp("bn1"))?,
                ),
                (
                    conv(width, width, 3, 1, vb.pp("conv2"))?,
                    bn(width, vb.pp("bn2"))?,
                ),
            ];
            (convs, width)
        };
        let downsample = if stride != 1 || c_in != c_out {
            Some((
                conv(c_in, c_out, 1, stride, vb.pp("downsample.0"))?,
                bn(c_out, vb.pp("downsample.1"))?,
            ))
        } else {
            None
        };
        Ok((Self { convs, downsample }, c_out))
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut h = x.clone();
        let last = self.convs.len() - 1;
        for (i, (c, b)) in self.convs.iter().enumerate() {
            let activation = if i != last {
                Activation::Relu
            } else {
                Activation::Identity
            };
            h = conv_bn_act(c, b, &h, train, activation)?;
        }
        let shortcut = match &self.downsample {
            Some((c, b)) => conv_bn(c, b, x, train)?,
            None => x.clone(),
        };
        super::residual::add_relu(&h, &shortcut)
    }
}

/// A ResNet trunk returning globally average-pooled features `[batch, feature_dim]`.
#[derive(Debug, Clone)]
pub struct ResNet {
    config: ResNetConfig,
    stem: (Conv2d, BatchNorm),
    blocks: Vec<Block>,
}

impl ResNet {
    /// Builds the network, reading (or creating) tensors through `vb` with torchvision names.
    pub fn new(config: &ResNetConfig, vb: VarBuilder) -> Result<Self> {
        let stem_kernel = if config.imagenet_stem { 7 } else { 3 };
        let stem_stride = if config.imagenet_stem { 2 } else { 1 };
        let stem = (
            conv(
                3,
                config.stem_channels,
                stem_kernel,
                stem_stride,
                vb.pp("conv1"),
            )?,
            bn(config.stem_channels, vb.pp("bn1"))?,
        );
        let mut blocks = Vec::new();
        let mut c_in = config.stem_channels;
        for stage in 0..4 {
            let stage_vb = vb.pp(format!("layer{}", stage + 1));
            for b in 0..config.blocks[stage] {
                let stride = match (stage, b) {
                    (0, 0) => config.first_stage_stride,
                    (_, 0) => 2,
                    _ => 1,
                };
                let (block, c_out) = Block::new(
                    c_in,
                    config.widths[stage],
                    stride,
                    config.bottleneck.then_some(config.expansion),
                    stage_vb.pp(b.to_string()),
                )?;
                blocks.push(block);
                c_in = c_out;
            }
        }
        Ok(Self {
            config: config.clone(),
            stem,
            blocks,
        })
    }

    /// The configuration this network was built from.
    pub fn config(&self) -> &ResNetConfig {
        &self.config
    }

    /// Pooled features of a `[batch, 3, h, w]` normalised image tensor.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_frozen(x, train, 0)
    }

    /// [`forward_t`](Self::forward_t) with the first `frozen` stages (stem = stage 0, then
    /// `layer1`…`layer4`) fixed: run in evaluation mode and cut from the gradient.
    pub fn forward_frozen(&self, x: &Tensor, train: bool, frozen: usize) -> Result<Tensor> {
        let mut h = conv_bn_act(
            &self.stem.0,
            &self.stem.1,
            x,
            train && frozen == 0,
            Activation::Relu,
        )?;
        if self.config.imagenet_stem {
            h = if train && frozen == 0 {
                // candle has no gradient for overlapping pooling windows.
                max_pool_3x3_stride2_pad1_differentiable(&h)?
            } else {
                max_pool_3x3_stride2_pad1(&h)?
            };
        }
        let mut blocks = self.blocks.iter();
        let stages = self
            .config
            .blocks
            .iter()
            .map(|&count| blocks.by_ref().take(count).collect::<Vec<_>>());
        let h = forward_stages(h, stages, train, frozen, |block: &Block, h, train| {
            block.forward_t(h, train)
        })?;
        h.mean(D::Minus1)?.mean(D::Minus1)
    }
}

/// torchvision's stem pool (`MaxPool2d(3, stride 2, padding 1)`) on non-negative input
/// (post-ReLU), where zero padding equals −∞ padding.
fn max_pool_3x3_stride2_pad1(x: &Tensor) -> Result<Tensor> {
    x.pad_with_zeros(2, 1, 1)?
        .pad_with_zeros(3, 1, 1)?
        .max_pool2d_with_stride(3, 2)
}

/// [`max_pool_3x3_stride2_pad1`] from operations candle can differentiate: the maximum of the
/// nine strided views of the padded input (each a narrow, a reshape that splits rows and
/// columns into pairs, and the pair's first element).
fn max_pool_3x3_stride2_pad1_differentiable(x: &Tensor) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let (oh, ow) = ((h - 1) / 2 + 1, (w - 1) / 2 + 1);
    // Pad to 2·out + 2 on each side so that every window row/column pair exists.
    let padded = x
        .pad_with_zeros(2, 1, 2 * oh + 1 - h)?
        .pad_with_zeros(3, 1, 2 * ow + 1 - w)?;
    let mut out: Option<Tensor> = None;
    for dy in 0..3 {
        let rows = padded
            .narrow(2, dy, 2 * oh)?
            .reshape((n, c, oh, 2, 2 * ow + 2))?
            .narrow(3, 0, 1)?
            .squeeze(3)?;
        for dx in 0..3 {
            let view = rows
                .narrow(3, dx, 2 * ow)?
                .reshape((n, c, oh, ow, 2))?
                .narrow(4, 0, 1)?
                .squeeze(4)?;
            out = Some(match out {
                Some(m) => m.maximum(&view)?,
                None => view,
            });
        }
    }
    out.ok_or_else(|| candle_core::Error::Msg("empty pooling window".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, ModuleT};

    #[test]
    fn compact_and_resnet18_give_features_of_the_documented_size() {
        let device = Device::Cpu;
        for (config, size) in [
            (ResNetConfig::compact(), 64),
            (ResNetConfig::resnet18(), 64),
        ] {
            let vb = VarBuilder::zeros(DType::F32, &device);
            let net = ResNet::new(&config, vb).expect("builds");
            let x = Tensor::zeros((2, 3, size, size), DType::F32, &device).expect("tensor");
            let y = net.forward_t(&x, false).expect("forward");
            assert_eq!(y.dims(), &[2, config.feature_dim()]);
        }
    }

    #[test]
    fn stem_pool_matches_padded_max_pool_output_size() {
        let x = Tensor::arange(0f32, 64., &Device::Cpu)
            .and_then(|t| t.reshape((1, 1, 8, 8)))
            .expect("tensor");
        let y = max_pool_3x3_stride2_pad1(&x).expect("pool");
        assert_eq!(y.dims(), &[1, 1, 4, 4]);
        // Top-left output window covers rows/cols 0..=1 of the input: max is 9.
        let first: f32 = y
            .flatten_all()
            .and_then(|t| t.get(0))
            .and_then(|t| t.to_scalar())
            .expect("value");
        assert_eq!(first, 9.0);
    }

    #[test]
    fn differentiable_stem_pool_equals_the_fast_one_and_has_a_gradient() {
        for (h, w) in [(8, 8), (7, 9), (16, 11)] {
            let x = Tensor::rand(0f32, 1.0, (2, 3, h, w), &Device::Cpu).expect("input");
            let fast = max_pool_3x3_stride2_pad1(&x).expect("fast");
            let var = candle_core::Var::from_tensor(&x).expect("var");
            let slow = max_pool_3x3_stride2_pad1_differentiable(var.as_tensor()).expect("slow");
            assert_eq!(fast.dims(), slow.dims());
            let diff = crate::test_support::max_abs_diff(&fast, &slow);
            assert_eq!(diff, 0.0, "{h}×{w}");
            let grads = slow.sum_all().and_then(|s| s.backward()).expect("backward");
            let g = grads.get(var.as_tensor()).expect("a gradient");
            let total: f32 = g.sum_all().and_then(|t| t.to_scalar()).expect("sum");
            assert!(total >= slow.elem_count() as f32, "{total}");
        }
    }

    #[test]
    fn folded_batch_norm_equals_batch_norm_after_the_convolution() {
        let device = Device::Cpu;
        let (c_in, c_out) = (3, 5);
        let varmap = candle_nn::VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
        let conv = Conv2d::new(c_in, c_out, 3, 2, 1, vb.pp("conv")).expect("conv");
        let channel = |offset: f32, step: f32| {
            Tensor::new(
                (0..c_out)
                    .map(|i| offset + step * i as f32)
                    .collect::<Vec<_>>(),
                &device,
            )
            .expect("tensor")
        };
        let norm = BatchNorm::new(
            c_out,
            channel(-0.3, 0.2),
            channel(0.4, 0.5),
            channel(1.5, -0.3),
            channel(0.1, 0.25),
            1e-5,
        )
        .expect("batch norm");
        let x = Tensor::randn(0f32, 1.0, (2, c_in, 9, 9), &device).expect("input");
        let folded = conv_bn(&conv, &norm, &x, false).expect("folded");
        let reference = norm
            .forward_t(&conv.forward(&x).expect("conv"), false)
            .expect("reference");
        let error = crate::test_support::max_abs_diff(&folded, &reference);
        let scale = crate::test_support::max_abs(&reference);
        assert!(
            scale > 1.0 && error < 1e-5 * scale,
            "error {error}, scale {scale}"
        );
    }
}
