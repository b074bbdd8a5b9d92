//! ConvNeXt trunks with torchvision's tensor names (`features.0.0` the 4×4 patchify stem,
//! `features.0.1` its LayerNorm2d, `features.{1,3,5,7}.N.block.{0,2,3,5}` and
//! `….layer_scale` the blocks, `features.{2,4,6}.{0,1}` the downsamplings, `classifier.0` the
//! final norm); timm's names are renamed to these when a checkpoint is opened. The embedding is
//! the globally pooled, normalised feature (torchvision's and timm's pre-logits); the
//! classifier (`classifier.2`, timm's `head.fc`) is dropped. Each block is
//! `x + γ · Linear(GELU(Linear(LN(dwconv7×7(x)))))`, in channels-last between the convolution
//! and the residual, as the libraries run it.

use super::conv::{own_cpu_kernels, Conv2d};
use super::convnext_cpu::{forward_stage, BlockTensors, FusedBlock};
use super::depthwise::depthwise_conv_same;
use super::layers::{LayerNorm, Linear};
use candle_core::{Module, Result, Tensor, D};
use candle_nn::VarBuilder;

/// LayerNorm's epsilon in ConvNeXt (torchvision and timm).
const LN_EPS: f64 = 1e-6;

/// The shape of a ConvNeXt: blocks and channels per stage, and the stem's patch size.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvNextConfig {
    /// Blocks in each of the four stages.
    pub depths: [usize; 4],
    /// Channels of each stage.
    pub dims: [usize; 4],
    /// Side of the stem's non-overlapping patches (4).
    pub patch: usize,
}

impl ConvNextConfig {
    /// ConvNeXt-T (28 M parameters, 768-d).
    pub fn tiny() -> Self {
        Self {
            depths: [3, 3, 9, 3],
            dims: [96, 192, 384, 768],
            patch: 4,
        }
    }

    /// ConvNeXt-S (50 M parameters, 768-d).
    pub fn small() -> Self {
        Self {
            depths: [3, 3, 27, 3],
            ..Self::tiny()
        }
    }

    /// ConvNeXt-B (89 M parameters, 1024-d).
    pub fn base() -> Self {
        Self {
            depths: [3, 3, 27, 3],
            dims: [128, 256, 512, 1024],
            patch: 4,
        }
    }

    /// Dimension of the pooled feature vector.
    pub fn feature_dim(&self) -> usize {
        self.dims[3]
    }
}

/// One ConvNeXt block.
#[derive(Debug, Clone)]
struct Block {
    dw_weight: Tensor,
    dw_bias: Tensor,
    norm: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    scale: Tensor,
}

impl Block {
    /// This block's values for the fused CPU evaluation path.
    fn fused(&self) -> Result<FusedBlock> {
        let vec = |t: &Tensor| t.flatten_all()?.to_vec1::<f32>();
        let (fc1_weight, fc1_bias) = self.fc1.values()?;
        let (fc2_weight, fc2_bias) = self.fc2.values()?;
        FusedBlock::new(BlockTensors {
            dw_kernel: vec(&self.dw_weight)?,
            dw_bias: vec(&self.dw_bias)?,
            ln_weight: vec(&self.norm.weight)?,
            ln_bias: vec(&self.norm.bias)?,
            eps: LN_EPS as f32,
            fc1_weight,
            fc1_bias,
            fc2_weight,
            fc2_bias,
            scale: vec(&self.scale)?,
        })
        .map_err(candle_core::Error::msg)
    }

    fn new(dim: usize, vb: VarBuilder) -> Result<Self> {
        let block = vb.pp("block");
        let dw = block.pp("0");
        Ok(Self {
            dw_weight: dw.get_with_hints(
                (dim, 1, 7, 7),
                "weight",
                candle_nn::init::DEFAULT_KAIMING_NORMAL,
            )?,
            dw_bias: dw.get_with_hints(dim, "bias", candle_nn::init::ZERO)?,
            norm: LayerNorm::new(dim, LN_EPS, block.pp("2"))?,
            fc1: Linear::new(dim, 4 * dim, block.pp("3"))?,
            fc2: Linear::new(4 * dim, dim, block.pp("5"))?,
            scale: vb.get_with_hints(dim, "layer_scale", candle_nn::init::Init::Const(1e-6))?,
        })
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let dim = self.dw_bias.dim(0)?;
        let h = depthwise_conv_same(x, &self.dw_weight, 1)?
            .broadcast_add(&self.dw_bias.reshape((1, dim, 1, 1))?)?
            .permute((0, 2, 3, 1))?;
        let h = self.norm.forward_t(&h, train)?;
        let h = self.fc1.forward(&h)?.gelu_erf()?;
        let h = self.fc2.forward(&h)?.broadcast_mul(&self.scale)?;
        x + h.permute((0, 3, 1, 2))?
    }
}

/// A downsampling between stages: LayerNorm2d, then a 2×2 stride-2 convolution with bias (or,
/// for the stem, a patch×patch one).
#[derive(Debug, Clone)]
struct Downsample {
    norm_first: bool,
    norm: LayerNorm,
    conv: Conv2d,
    bias: Tensor,
}

impl Downsample {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let c = self.bias.dim(0)?;
        if self.norm_first {
            let h = self.norm.forward_channels(x, train)?;
            return self
                .conv
                .forward(&h)?
                .broadcast_add(&self.bias.reshape((1, c, 1, 1))?);
        }
        let h = self
            .conv
            .forward(x)?
            .broadcast_add(&self.bias.reshape((1, c, 1, 1))?)?;
        self.norm.forward_channels(&h, train)
    }
}

/// A ConvNeXt trunk returning pooled, normalised features `[batch, feature_dim]`.
#[derive(Debug, Clone)]
pub struct ConvNext {
    config: ConvNextConfig,
    /// The stem, then the downsampling before stages 2–4.
    downsamples: Vec<Downsample>,
    stages: Vec<Vec<Block>>,
    head_norm: LayerNorm,
    /// The blocks' fused CPU evaluation form, once prepared.
    fused: Option<std::sync::Arc<Vec<Vec<FusedBlock>>>>,
}

impl ConvNext {
    /// Builds the network, reading (or creating) tensors through `vb` with torchvision names.
    pub fn new(config: &ConvNextConfig, vb: VarBuilder) -> Result<Self> {
        let features = vb.pp("features");
        let mut downsamples = Vec::with_capacity(4);
        let mut stages = Vec::with_capacity(4);
        let mut c_in = 3;
        for (stage, (&depth, &dim)) in config.depths.iter().zip(&config.dims).enumerate() {
            let down_vb = features.pp((2 * stage).to_string());
            let (k, norm_first) = if stage == 0 {
                (config.patch, false)
            } else {
                (2, true)
            };
            let conv_vb = down_vb.pp(if norm_first { "1" } else { "0" });
            let norm_vb = down_vb.pp(if norm_first { "0" } else { "1" });
            downsamples.push(Downsample {
                norm_first,
                norm: LayerNorm::new(if norm_first { c_in } else { dim }, LN_EPS, norm_vb)?,
                conv: Conv2d::new(c_in, dim, k, k, 0, conv_vb.clone())?,
                bias: conv_vb.get_with_hints(dim, "bias", candle_nn::init::ZERO)?,
            });
            let stage_vb = features.pp((2 * stage + 1).to_string());
            let blocks = (0..depth)
                .map(|b| Block::new(dim, stage_vb.pp(b.to_string())))
                .collect::<Result<Vec<_>>>()?;
            stages.push(blocks);
            c_in = dim;
        }
        Ok(Self {
            config: config.clone(),
            downsamples,
            stages,
            head_norm: LayerNorm::new(config.dims[3], LN_EPS, vb.pp("classifier").pp("0"))?,
            fused: None,
        })
    }

    /// Readies the fused evaluation path for f32 inputs on the CPU (our kernels in use).
    pub fn prepare_inference(&mut self, device: &candle_core::Device) -> Result<()> {
        if device.is_cpu() && own_cpu_kernels() && self.fused.is_none() {
            let fused = self
                .stages
                .iter()
                .map(|blocks| blocks.iter().map(Block::fused).collect::<Result<Vec<_>>>())
                .collect::<Result<Vec<_>>>()?;
            self.fused = Some(std::sync::Arc::new(fused));
        }
        Ok(())
    }

    /// A stage's blocks in evaluation through the fused path.
    fn blocks_fused(blocks: &[FusedBlock], h: &Tensor) -> Result<Tensor> {
        let (n, c, height, width) = h.dims4()?;
        let values = h.flatten_all()?.to_vec1::<f32>()?;
        let values = forward_stage(blocks, &values, n, height, width);
        Tensor::from_vec(values, (n, c, height, width), h.device())
    }

    /// The configuration this network was built from.
    pub fn config(&self) -> &ConvNextConfig {
        &self.config
    }

    /// Pooled, normalised features of a `[batch, 3, h, w]` normalised image tensor.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_frozen(x, train, 0)
    }

    /// [`forward_t`](Self::forward_t) with the first `frozen` stages (stem = stage 0, then
    /// the four stages, each with the downsampling before it) fixed: run in evaluation mode and
    /// cut from the gradient.
    pub fn forward_frozen(&self, x: &Tensor, train: bool, frozen: usize) -> Result<Tensor> {
        let mut h = x.clone();
        for (stage, (down, blocks)) in self.downsamples.iter().zip(&self.stages).enumerate() {
            // The stem is stage 0; the downsampling before stage k ≥ 2 belongs to it.
            let down_stage = if stage == 0 { 0 } else { stage + 1 };
            h = down.forward_t(&h, train && down_stage >= frozen)?;
            if stage == 0 && frozen == 1 {
                h = h.detach();
            }
            let train_blocks = train && stage + 1 >= frozen;
            match self.fused.as_deref().and_then(|f| f.get(stage)) {
                Some(fused)
                    if !train_blocks
                        && h.device().is_cpu()
                        && h.dtype() == candle_core::DType::F32 =>
                {
                    h = Self::blocks_fused(fused, &h)?;
                }
                _ => {
                    for block in blocks {
                        h = block.forward_t(&h, train_blocks)?;
                    }
                }
            }
            if stage + 2 == frozen {
                h = h.detach();
            }
        }
        let pooled = h.mean(D::Minus1)?.mean(D::Minus1)?;
        self.head_norm.forward_t(&pooled, train)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    #[test]
    fn tiny_gives_features_of_the_documented_size_and_names() {
        let varmap = candle_nn::VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let config = ConvNextConfig {
            depths: [1, 1, 2, 1],
            dims: [8, 16, 32, 64],
            patch: 4,
        };
        let net = ConvNext::new(&config, vb).expect("builds");
        let x = Tensor::randn(0f32, 1.0, (2, 3, 64, 64), &Device::Cpu).expect("input");
        let train = net.forward_t(&x, true).expect("train");
        let eval = net.forward_t(&x, false).expect("eval");
        assert_eq!(eval.dims(), &[2, 64]);
        let diff = crate::test_support::max_abs_diff(&train, &eval);
        assert!(diff < 1e-4, "layer norm paths differ by {diff}");
        let mut fused_net = net.clone();
        fused_net.prepare_inference(&Device::Cpu).expect("fuse");
        let fused = fused_net.forward_t(&x, false).expect("fused");
        let diff = crate::test_support::max_abs_diff(&fused, &eval);
        assert!(diff < 1e-4, "fused path differs by {diff}");
        let names = varmap.data().lock().expect("lock");
        for name in [
            "features.0.0.weight",
            "features.0.1.bias",
            "features.1.0.block.0.weight",
            "features.1.0.layer_scale",
            "features.2.0.weight",
            "features.2.1.bias",
            "features.5.1.block.5.weight",
            "classifier.0.weight",
        ] {
            assert!(names.contains_key(name), "{name}");
        }
    }
}
