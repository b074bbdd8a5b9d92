//! EfficientNet-B0…B7 trunks with torchvision's tensor names (`features.0.{0,1}` the stem,
//! `features.S.B.block.I.{0,1}` the MBConv blocks' convolutions and batch norms,
//! `….block.I.fc1/fc2` their squeeze-excitation, `features.{last}` the 1×1 head); the
//! classifier is dropped and the embedding is the pooled head output. Unlike the Lite models,
//! they use SiLU, squeeze-excitation and symmetric padding. Every block's shape (expansion,
//! kernel, squeeze width) is part of the configuration, read from the checkpoint's shapes.

use super::batch_norm::Activation;
use super::conv::Conv2d;
use super::resnet::{conv_bn, conv_bn_act};
use super::trunk::forward_stages;
use candle_core::{Result, Tensor, D};
use candle_nn::{batch_norm, BatchNorm, VarBuilder};

/// torchvision's batch-norm epsilon for EfficientNet-B (v1).
const BN_EPS: f64 = 1e-5;

/// One MBConv block's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MbConvSpec {
    /// Input channels.
    pub c_in: usize,
    /// Channels after the 1×1 expansion (`c_in` when the block has none).
    pub mid: usize,
    /// Output channels.
    pub c_out: usize,
    /// Depthwise kernel side.
    pub kernel: usize,
    /// Depthwise stride.
    pub stride: usize,
    /// Squeeze-excitation width.
    pub squeeze: usize,
}

/// The shape of an EfficientNet-B: stem width, the blocks of each stage, head width.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffNetBConfig {
    /// Stem output channels.
    pub stem: usize,
    /// The blocks of each stage, in order.
    pub stages: Vec<Vec<MbConvSpec>>,
    /// Head (final 1×1 convolution) channels: the feature dimension.
    pub head: usize,
}

/// EfficientNet-B0's stages: (expansion, kernel, stride, in, out, layers).
const B0_STAGES: [(usize, usize, usize, usize, usize, usize); 7] = [
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
];

/// The stride of the first block of each stage (the same in every B size).
pub const STAGE_STRIDES: [usize; 7] = [1, 2, 2, 2, 1, 2, 1];

/// torchvision's `_make_divisible(v, 8)`.
fn divisible(v: f64) -> usize {
    let rounded = (((v + 4.0) / 8.0).floor() as usize * 8).max(8);
    if (rounded as f64) < 0.9 * v {
        rounded + 8
    } else {
        rounded
    }
}

impl EffNetBConfig {
    /// torchvision's `efficientnet_b{variant}` (0–7).
    pub fn b(variant: u8) -> Self {
        let (width, depth) = match variant {
            0 => (1.0, 1.0),
            1 => (1.0, 1.1),
            2 => (1.1, 1.2),
            3 => (1.2, 1.4),
            4 => (1.4, 1.8),
            5 => (1.6, 2.2),
            6 => (1.8, 2.6),
            _ => (2.0, 3.1),
        };
        let mut stages = Vec::new();
        for (expand, kernel, stride, c_in, c_out, layers) in B0_STAGES {
            let (c_in, c_out) = (
                divisible(c_in as f64 * width),
                divisible(c_out as f64 * width),
            );
            let layers = (layers as f64 * depth).ceil() as usize;
            let blocks = (0..layers)
                .map(|i| {
                    let input = if i == 0 { c_in } else { c_out };
                    MbConvSpec {
                        c_in: input,
                        mid: divisible(input as f64 * expand as f64),
                        c_out,
                        kernel,
                        stride: if i == 0 { stride } else { 1 },
                        squeeze: (input / 4).max(1),
                    }
                })
                .collect();
            stages.push(blocks);
        }
        let last = stages
            .last()
            .and_then(|s: &Vec<MbConvSpec>| s.last())
            .map_or(320, |b| b.c_out);
        Self {
            stem: divisible(32.0 * width),
            stages,
            head: 4 * last,
        }
    }

    /// Dimension of the pooled feature vector.
    pub fn feature_dim(&self) -> usize {
        self.head
    }
}

type ConvNorm = (Conv2d, BatchNorm);

fn conv_norm(spec: (usize, usize, usize, usize, usize), vb: VarBuilder) -> Result<ConvNorm> {
    let (c_in, c_out, kernel, stride, groups) = spec;
    Ok((
        Conv2d::grouped(
            c_in,
            c_out,
            kernel,
            stride,
            (kernel - 1) / 2,
            groups,
            vb.pp("0"),
        )?,
        batch_norm(c_out, BN_EPS, vb.pp("1"))?,
    ))
}

fn silu_conv(unit: &ConvNorm, x: &Tensor, train: bool) -> Result<Tensor> {
    conv_bn_act(&unit.0, &unit.1, x, train, Activation::Identity)?.silu()
}

/// One MBConv block.
#[derive(Debug, Clone)]
struct MbConv {
    spec: MbConvSpec,
    expand: Option<ConvNorm>,
    depthwise: ConvNorm,
    se: [(Tensor, Tensor); 2],
    project: ConvNorm,
}

impl MbConv {
    fn new(spec: MbConvSpec, vb: VarBuilder) -> Result<Self> {
        let block = vb.pp("block");
        let has_expand = spec.mid != spec.c_in;
        let at = |i: usize| block.pp((i + usize::from(has_expand)).to_string());
        let expand = if has_expand {
            Some(conv_norm((spec.c_in, spec.mid, 1, 1, 1), block.pp("0"))?)
        } else {
            None
        };
        let fc = |c_in: usize, c_out: usize, vb: VarBuilder| -> Result<(Tensor, Tensor)> {
            let weight = vb.get_with_hints(
                (c_out, c_in, 1, 1),
                "weight",
                candle_nn::init::DEFAULT_KAIMING_NORMAL,
            )?;
            let bias = vb.get_with_hints(c_out, "bias", candle_nn::init::ZERO)?;
            Ok((weight.reshape((c_out, c_in))?.t()?, bias))
        };
        let se_vb = at(1);
        Ok(Self {
            spec,
            expand,
            depthwise: conv_norm(
                (spec.mid, spec.mid, spec.kernel, spec.stride, spec.mid),
                at(0),
            )?,
            se: [
                fc(spec.mid, spec.squeeze, se_vb.pp("fc1"))?,
                fc(spec.squeeze, spec.mid, se_vb.pp("fc2"))?,
            ],
            project: conv_norm((spec.mid, spec.c_out, 1, 1, 1), at(2))?,
        })
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut h = match &self.expand {
            Some(unit) => silu_conv(unit, x, train)?,
            None => x.clone(),
        };
        h = silu_conv(&self.depthwise, &h, train)?;
        let (n, c, _, _) = h.dims4()?;
        let pooled = h.mean(D::Minus1)?.mean(D::Minus1)?;
        let squeezed = pooled
            .matmul(&self.se[0].0)?
            .broadcast_add(&self.se[0].1)?
            .silu()?;
        let gate = squeezed
            .matmul(&self.se[1].0)?
            .broadcast_add(&self.se[1].1)?;
        let gate = candle_nn::ops::sigmoid(&gate)?.reshape((n, c, 1, 1))?;
        h = h.broadcast_mul(&gate)?;
        let out = conv_bn(&self.project.0, &self.project.1, &h, train)?;
        if self.spec.stride == 1 && self.spec.c_in == self.spec.c_out {
            out + x
        } else {
            Ok(out)
        }
    }
}

/// An EfficientNet-B trunk returning globally average-pooled features `[batch, head]`.
#[derive(Debug, Clone)]
pub struct EfficientNetB {
    config: EffNetBConfig,
    stem: ConvNorm,
    stages: Vec<Vec<MbConv>>,
    head: ConvNorm,
}

impl EfficientNetB {
    /// Builds the network, reading (or creating) tensors through `vb` with torchvision names.
    pub fn new(config: &EffNetBConfig, vb: VarBuilder) -> Result<Self> {
        let features = vb.pp("features");
        let stem = conv_norm((3, config.stem, 3, 2, 1), features.pp("0"))?;
        let stages = config
            .stages
            .iter()
            .enumerate()
            .map(|(s, blocks)| {
                let stage_vb = features.pp((s + 1).to_string());
                blocks
                    .iter()
                    .enumerate()
                    .map(|(b, spec)| MbConv::new(*spec, stage_vb.pp(b.to_string())))
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        let last = config
            .stages
            .last()
            .and_then(|s| s.last())
            .map_or(config.stem, |b| b.c_out);
        let head = conv_norm(
            (last, config.head, 1, 1, 1),
            features.pp((config.stages.len() + 1).to_string()),
        )?;
        Ok(Self {
            config: config.clone(),
            stem,
            stages,
            head,
        })
    }

    /// The configuration this network was built from.
    pub fn config(&self) -> &EffNetBConfig {
        &self.config
    }

    /// Number of stages, the stem included.
    pub fn stages(&self) -> usize {
        1 + self.stages.len()
    }

    /// Pooled features of a `[batch, 3, h, w]` normalised image tensor.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_frozen(x, train, 0)
    }

    /// [`forward_t`](Self::forward_t) with the first `frozen` stages (stem = stage 0) fixed.
    pub fn forward_frozen(&self, x: &Tensor, train: bool, frozen: usize) -> Result<Tensor> {
        let stem = silu_conv(&self.stem, x, train && frozen == 0)?;
        let h = forward_stages(
            stem,
            &self.stages,
            train,
            frozen,
            |block: &MbConv, h, train| block.forward_t(h, train),
        )?;
        let h = silu_conv(&self.head, &h, train)?;
        h.mean(D::Minus1)?.mean(D::Minus1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_have_torchvisions_widths() {
        let b0 = EffNetBConfig::b(0);
        assert_eq!(b0.stem, 32);
        assert_eq!(b0.head, 1280);
        assert_eq!(b0.stages.iter().map(Vec::len).sum::<usize>(), 16);
        let b4 = EffNetBConfig::b(4);
        assert_eq!((b4.stem, b4.head), (48, 1792));
        assert_eq!(b4.stages.iter().map(Vec::len).sum::<usize>(), 32);
    }
}
