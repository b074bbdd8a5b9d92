//! One type for every trunk natview embeds with and trains (ResNets, RegNetX/Y,
//! EfficientNet-Lite and -B, ConvNeXt, vision transformers), so
//! the encoder, the training loop and the benchmarks need not know which one they hold.

use super::conv::own_cpu_kernels;
use super::convnext::{ConvNext, ConvNextConfig};
use super::effnet::{EffNetConfig, EfficientNet};
use super::effnet_b::{EffNetBConfig, EfficientNetB};
use super::effnet_cpu::FusedEffNet;
use super::regnet::{RegNet, RegNetConfig};
use super::resnet::{ResNet, ResNetConfig};
use super::vit::{Vit, VitConfig};
use candle_core::{DType, Result, Tensor};
use candle_nn::VarBuilder;

/// The architecture of a CNN trunk.
#[derive(Debug, Clone, PartialEq)]
pub enum Architecture {
    /// A ResNet (torchvision names).
    ResNet(ResNetConfig),
    /// A RegNetY (torchvision names).
    RegNet(RegNetConfig),
    /// An EfficientNet-Lite (names of the PyTorch port).
    EffNet(EffNetConfig),
    /// A ConvNeXt (torchvision names).
    ConvNext(ConvNextConfig),
    /// An EfficientNet-B (torchvision names).
    EffNetB(EffNetBConfig),
    /// A vision transformer (timm names).
    Vit(VitConfig),
}

impl Architecture {
    /// Dimension of the pooled feature vector.
    pub fn feature_dim(&self) -> usize {
        match self {
            Architecture::ResNet(c) => c.feature_dim(),
            Architecture::RegNet(c) => c.feature_dim(),
            Architecture::EffNet(c) => c.feature_dim(),
            Architecture::ConvNext(c) => c.feature_dim(),
            Architecture::EffNetB(c) => c.feature_dim(),
            Architecture::Vit(c) => c.feature_dim(),
        }
    }

    /// The input size the architecture is meant for.
    pub fn default_input_size_px(&self) -> u32 {
        match self {
            Architecture::ResNet(c) if !c.imagenet_stem => 64,
            Architecture::ResNet(_)
            | Architecture::RegNet(_)
            | Architecture::ConvNext(_)
            | Architecture::EffNetB(_) => 224,
            Architecture::EffNet(c) => c.input_size_px(),
            Architecture::Vit(c) => c.input_size_px(),
        }
    }

    /// Builds the trunk, reading (or creating) its tensors through `vb`.
    pub fn build(&self, vb: VarBuilder) -> Result<Trunk> {
        Ok(match self {
            Architecture::ResNet(c) => Trunk::ResNet(ResNet::new(c, vb)?),
            Architecture::RegNet(c) => Trunk::RegNet(RegNet::new(c, vb)?),
            Architecture::EffNet(c) => Trunk::EffNet {
                net: EfficientNet::new(c, vb)?,
                fused: None,
            },
            Architecture::ConvNext(c) => Trunk::ConvNext(ConvNext::new(c, vb)?),
            Architecture::EffNetB(c) => Trunk::EffNetB(EfficientNetB::new(c, vb)?),
            Architecture::Vit(c) => Trunk::Vit(Vit::new(c, vb)?),
        })
    }
}

/// A CNN trunk returning globally pooled features.
#[derive(Clone)]
pub enum Trunk {
    /// A ResNet.
    ResNet(ResNet),
    /// A RegNetY.
    RegNet(RegNet),
    /// An EfficientNet-Lite, with its fused CPU inference form once prepared.
    EffNet {
        /// The autograd-capable network.
        net: EfficientNet,
        /// Batch norms folded, for CPU inference ([`Trunk::prepare_inference`]).
        fused: Option<std::sync::Arc<FusedEffNet>>,
    },
    /// A ConvNeXt.
    ConvNext(ConvNext),
    /// An EfficientNet-B.
    EffNetB(EfficientNetB),
    /// A vision transformer.
    Vit(Vit),
}

impl Trunk {
    /// Pooled features `[batch, feature_dim]`; `train` runs batch norm on batch statistics.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        match self {
            Trunk::ResNet(net) => net.forward_t(x, train),
            Trunk::RegNet(net) => net.forward_t(x, train),
            Trunk::EffNet { net, .. } => net.forward_t(x, train),
            Trunk::ConvNext(net) => net.forward_t(x, train),
            Trunk::EffNetB(net) => net.forward_t(x, train),
            Trunk::Vit(net) => net.forward_t(x, train),
        }
    }

    /// Pooled features in training mode with the first `frozen` stages (stem = 0) fixed.
    pub fn forward_train(&self, x: &Tensor, frozen: usize) -> Result<Tensor> {
        match self {
            Trunk::ResNet(net) => net.forward_frozen(x, true, frozen),
            Trunk::RegNet(net) => net.forward_frozen(x, true, frozen),
            Trunk::EffNet { net, .. } => net.forward_frozen(x, true, frozen),
            Trunk::ConvNext(net) => net.forward_frozen(x, true, frozen),
            Trunk::EffNetB(net) => net.forward_frozen(x, true, frozen),
            Trunk::Vit(net) => net.forward_frozen(x, true, frozen),
        }
    }

    /// Number of stages, the stem included (the most `--freeze` can fix).
    pub fn stages(&self) -> usize {
        match self {
            Trunk::ResNet(_) | Trunk::RegNet(_) | Trunk::ConvNext(_) => 5,
            Trunk::Vit(net) => net.stages(),
            Trunk::EffNetB(net) => net.stages(),
            Trunk::EffNet { net, .. } => 1 + net.config().blocks.last().map_or(0, |b| b.stage),
        }
    }

    /// Readies the fastest evaluation path for inputs on `device` (EfficientNet on the CPU:
    /// batch norms folded into fused kernels).
    pub fn prepare_inference(&mut self, device: &candle_core::Device) -> Result<()> {
        match self {
            Trunk::EffNet { net, fused }
                if device.is_cpu() && own_cpu_kernels() && fused.is_none() =>
            {
                *fused = Some(std::sync::Arc::new(FusedEffNet::new(net)?));
            }
            Trunk::ConvNext(net) => net.prepare_inference(device)?,
            Trunk::Vit(net) => net.prepare_inference(device)?,
            _ => {}
        }
        Ok(())
    }

    /// Pooled features in evaluation mode, through the fused path where prepared.
    pub fn forward_eval(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Trunk::EffNet {
                fused: Some(fused), ..
            } if x.device().is_cpu() && x.dtype() == DType::F32 => {
                let (n, _, h, w) = x.dims4()?;
                // The input's own storage when it is contiguous (no copy of the batch).
                let (storage, layout) = x.storage_and_layout();
                let out = match (&*storage, layout.contiguous_offsets()) {
                    (candle_core::Storage::Cpu(cpu), Some((start, end))) => {
                        fused.forward(&cpu.as_slice::<f32>()?[start..end], n, h, w)
                    }
                    _ => fused.forward(&x.flatten_all()?.to_vec1::<f32>()?, n, h, w),
                };
                Tensor::from_vec(out, (n, self.feature_dim()), x.device())
            }
            _ => self.forward_t(x, false),
        }
    }

    /// ImageNet logits of pooled features, for a trunk that has its classifier.
    pub fn classify(&self, features: &Tensor) -> Result<Option<Tensor>> {
        match self {
            Trunk::EffNet { net, .. } => net.classify(features),
            Trunk::ResNet(_)
            | Trunk::RegNet(_)
            | Trunk::ConvNext(_)
            | Trunk::EffNetB(_)
            | Trunk::Vit(_) => Ok(None),
        }
    }

    /// Dimension of the pooled feature vector.
    pub fn feature_dim(&self) -> usize {
        match self {
            Trunk::ResNet(net) => net.config().feature_dim(),
            Trunk::RegNet(net) => net.config().feature_dim(),
            Trunk::EffNet { net, .. } => net.config().feature_dim(),
            Trunk::ConvNext(net) => net.config().feature_dim(),
            Trunk::EffNetB(net) => net.config().feature_dim(),
            Trunk::Vit(net) => net.config().feature_dim(),
        }
    }
}

/// The stages after the stem (1, 2, …) of a trunk whose first `frozen` stages (the stem is
/// stage 0) are fixed: a block of stage `s` runs in training mode when `train && s >= frozen`,
/// and the output of the last fixed stage (the stem's when `frozen == 1`) is cut from the
/// gradient. Shared by the ResNets, RegNets and EfficientNet-Bs.
pub(crate) fn forward_stages<'b, B: 'b, S>(
    stem_output: Tensor,
    stages: impl IntoIterator<Item = S>,
    train: bool,
    frozen: usize,
    block_forward: impl Fn(&B, &Tensor, bool) -> Result<Tensor>,
) -> Result<Tensor>
where
    S: IntoIterator<Item = &'b B>,
{
    let mut h = if frozen == 1 {
        stem_output.detach()
    } else {
        stem_output
    };
    for (stage, blocks) in (1..).zip(stages) {
        for block in blocks {
            h = block_forward(block, &h, train && stage >= frozen)?;
        }
        if stage + 1 == frozen {
            h = h.detach();
        }
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SeededInit;
    use candle_core::Device;

    /// The fused CPU path and the candle graph give the same features.
    #[test]
    fn fused_effnet_matches_the_candle_graph() {
        let device = Device::Cpu;
        let vb =
            VarBuilder::from_backend(Box::new(SeededInit { seed: 3 }), DType::F32, device.clone());
        let arch = Architecture::EffNet(EffNetConfig::lite(0));
        let mut trunk = arch.build(vb).expect("builds");
        let x = Tensor::randn(0f32, 1.0, (3, 3, 67, 64), &device).expect("input");
        let reference = trunk.forward_t(&x, false).expect("graph");
        trunk.prepare_inference(&device).expect("fuse");
        let fused = trunk.forward_eval(&x).expect("fused");
        assert_eq!(fused.dims(), &[3, 1280]);
        let error = crate::test_support::max_abs_diff(&fused, &reference);
        let scale = crate::test_support::max_abs(&reference);
        assert!(
            scale > 0.0 && error <= 1e-4 * scale,
            "error {error}, scale {scale}"
        );
    }
}
