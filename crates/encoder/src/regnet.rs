//! RegNetY trunks with torchvision's tensor names (`stem.0`, `trunk_output.block1.block1-0.f.a.0`,
//! `….f.se.fc1`, `….proj.0`, …), so a torchvision `regnet_y_*` `state_dict` saved as safetensors
//! loads as is; the classifier (`fc`) is dropped. Each block is torchvision's
//! `ResBottleneckBlock`: 1×1 → grouped 3×3 (stride) → squeeze-excitation → 1×1, plus a projected
//! shortcut where the width or stride changes. Batch norm runs on batch statistics when asked
//! (`forward_t`), so the same network trains.

use super::batch_norm::Activation;
use super::conv::Conv2d;
use super::resnet::{conv_bn, conv_bn_act};
use super::trunk::forward_stages;
use candle_core::{Result, Tensor, D};
use candle_nn::{batch_norm, BatchNorm, VarBuilder};

/// The shape of a RegNetY: stem width, blocks and widths per stage, group width, SE ratio.
#[derive(Debug, Clone, PartialEq)]
pub struct RegNetConfig {
    /// Channels of the 3×3 stride-2 stem.
    pub stem_width: usize,
    /// Blocks in each of the four stages.
    pub depths: [usize; 4],
    /// Output width of each stage.
    pub widths: [usize; 4],
    /// Channels per group of the 3×3 convolutions (at most the width: a narrower stage has
    /// one group).
    pub group_width: usize,
    /// Squeeze channels as a fraction of the block's input width (RegNetY); `None` for a
    /// RegNetX, which has no squeeze-excitation.
    pub se_ratio: Option<f64>,
}

impl RegNetConfig {
    /// torchvision `regnet_y_400mf`: the widths and depths its `BlockParams.from_init_params`
    /// derives from depth 16, w_0 48, w_a 27.89, w_m 2.09 (checked against torchvision 0.29's
    /// `state_dict` by `bench/regnet_reference.py`), group width 8, SE ratio 0.25.
    pub fn y_400mf() -> Self {
        Self {
            stem_width: 32,
            depths: [1, 3, 6, 6],
            widths: [48, 104, 208, 440],
            group_width: 8,
            se_ratio: Some(0.25),
        }
    }

    /// Dimension of the pooled feature vector.
    pub fn feature_dim(&self) -> usize {
        self.widths[3]
    }
}

/// A convolution and the batch norm after it, named `<prefix>.0` and `<prefix>.1`.
type ConvNorm = (Conv2d, BatchNorm);

fn conv_norm(
    c_in: usize,
    c_out: usize,
    kernel: usize,
    stride: usize,
    groups: usize,
    vb: VarBuilder,
) -> Result<ConvNorm> {
    Ok((
        Conv2d::grouped(c_in, c_out, kernel, stride, kernel / 2, groups, vb.pp("0"))?,
        batch_norm(c_out, 1e-5, vb.pp("1"))?,
    ))
}

/// Squeeze-excitation: channel weights `σ(W₂ relu(W₁ mean(x) + b₁) + b₂)` (torchvision's
/// `SqueezeExcitation`, 1×1 convolutions on the pooled vector, held here as matrices).
#[derive(Debug, Clone)]
struct SqueezeExcite {
    reduce: (Tensor, Tensor),
    expand: (Tensor, Tensor),
}

impl SqueezeExcite {
    fn new(channels: usize, squeeze: usize, vb: VarBuilder) -> Result<Self> {
        let fc = |c_in: usize, c_out: usize, vb: VarBuilder| -> Result<(Tensor, Tensor)> {
            let weight = vb.get_with_hints(
                (c_out, c_in, 1, 1),
                "weight",
                candle_nn::init::DEFAULT_KAIMING_NORMAL,
            )?;
            let bias = vb.get_with_hints(c_out, "bias", candle_nn::init::ZERO)?;
            Ok((weight.reshape((c_out, c_in))?, bias))
        };
        Ok(Self {
            reduce: fc(channels, squeeze, vb.pp("fc1"))?,
            expand: fc(squeeze, channels, vb.pp("fc2"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (n, c, _, _) = x.dims4()?;
        let pooled = x.mean(D::Minus1)?.mean(D::Minus1)?;
        let squeezed = pooled
            .matmul(&self.reduce.0.t()?)?
            .broadcast_add(&self.reduce.1)?
            .relu()?;
        let gate = squeezed
            .matmul(&self.expand.0.t()?)?
            .broadcast_add(&self.expand.1)?;
        let gate = candle_nn::ops::sigmoid(&gate)?.reshape((n, c, 1, 1))?;
        x.broadcast_mul(&gate)
    }
}

/// torchvision's `ResBottleneckBlock` with bottleneck multiplier 1.
#[derive(Debug, Clone)]
struct Block {
    proj: Option<ConvNorm>,
    a: ConvNorm,
    b: ConvNorm,
    se: Option<SqueezeExcite>,
    c: ConvNorm,
}

impl Block {
    fn new(
        c_in: usize,
        c_out: usize,
        stride: usize,
        config: &RegNetConfig,
        vb: VarBuilder,
    ) -> Result<Self> {
        let groups = (c_out / config.group_width).max(1);
        let squeeze = config
            .se_ratio
            .map(|ratio| ((ratio * c_in as f64).round() as usize).max(1));
        let proj = if c_in != c_out || stride != 1 {
            Some(conv_norm(c_in, c_out, 1, stride, 1, vb.pp("proj"))?)
        } else {
            None
        };
        let f = vb.pp("f");
        Ok(Self {
            proj,
            a: conv_norm(c_in, c_out, 1, 1, 1, f.pp("a"))?,
            b: conv_norm(c_out, c_out, 3, stride, groups, f.pp("b"))?,
            se: squeeze
                .map(|squeeze| SqueezeExcite::new(c_out, squeeze, f.pp("se")))
                .transpose()?,
            c: conv_norm(c_out, c_out, 1, 1, 1, f.pp("c"))?,
        })
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let h = conv_bn_act(&self.a.0, &self.a.1, x, train, Activation::Relu)?;
        let h = conv_bn_act(&self.b.0, &self.b.1, &h, train, Activation::Relu)?;
        let h = match &self.se {
            Some(se) => se.forward(&h)?,
            None => h,
        };
        let h = conv_bn(&self.c.0, &self.c.1, &h, train)?;
        let shortcut = match &self.proj {
            Some((conv, norm)) => conv_bn(conv, norm, x, train)?,
            None => x.clone(),
        };
        super::residual::add_relu(&h, &shortcut)
    }
}

/// A RegNetY trunk returning globally average-pooled features `[batch, feature_dim]`.
#[derive(Debug, Clone)]
pub struct RegNet {
    config: RegNetConfig,
    stem: ConvNorm,
    stages: Vec<Vec<Block>>,
}

impl RegNet {
    /// Builds the network, reading (or creating) tensors through `vb` with torchvision names.
    pub fn new(config: &RegNetConfig, vb: VarBuilder) -> Result<Self> {
        let stem = conv_norm(3, config.stem_width, 3, 2, 1, vb.pp("stem"))?;
        let trunk = vb.pp("trunk_output");
        let mut c_in = config.stem_width;
        let mut stages = Vec::with_capacity(4);
        for (stage, (&depth, &width)) in config.depths.iter().zip(&config.widths).enumerate() {
            let name = format!("block{}", stage + 1);
            let stage_vb = trunk.pp(&name);
            let mut blocks = Vec::with_capacity(depth);
            for i in 0..depth {
                let stride = if i == 0 { 2 } else { 1 };
                let block_vb = stage_vb.pp(format!("{name}-{i}"));
                blocks.push(Block::new(c_in, width, stride, config, block_vb)?);
                c_in = width;
            }
            stages.push(blocks);
        }
        Ok(Self {
            config: config.clone(),
            stem,
            stages,
        })
    }

    /// The configuration this network was built from.
    pub fn config(&self) -> &RegNetConfig {
        &self.config
    }

    /// Pooled features of a `[batch, 3, h, w]` normalised image tensor.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_frozen(x, train, 0)
    }

    /// [`forward_t`](Self::forward_t) with the first `frozen` stages (stem = stage 0, then
    /// `block1`…`block4`) fixed: run in evaluation mode and cut from the gradient.
    pub fn forward_frozen(&self, x: &Tensor, train: bool, frozen: usize) -> Result<Tensor> {
        let stem = conv_bn_act(
            &self.stem.0,
            &self.stem.1,
            x,
            train && frozen == 0,
            Activation::Relu,
        )?;
        let h = forward_stages(
            stem,
            &self.stages,
            train,
            frozen,
            |block: &Block, h, train| block.forward_t(h, train),
        )?;
        h.mean(D::Minus1)?.mean(D::Minus1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    /// The network has exactly torchvision's float tensors (names and shapes), less `fc`.
    #[test]
    fn tensor_names_and_shapes_are_torchvisions() {
        let varmap = candle_nn::VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        RegNet::new(&RegNetConfig::y_400mf(), vb).expect("builds");
        let ours: std::collections::BTreeMap<String, Vec<usize>> = varmap
            .data()
            .lock()
            .expect("varmap")
            .iter()
            .map(|(name, var)| (name.clone(), var.dims().to_vec()))
            .collect();
        let listing = include_str!("../../../tests/data/regnet_y_400mf.tensors.txt");
        let theirs: std::collections::BTreeMap<String, Vec<usize>> = listing
            .lines()
            .filter_map(|line| line.split_once(' '))
            .filter(|(name, _)| !name.starts_with("fc."))
            .map(|(name, shape)| {
                let dims = shape
                    .split('x')
                    .filter(|d| !d.is_empty())
                    .map(|d| d.parse().expect("dimension"))
                    .collect();
                (name.to_string(), dims)
            })
            .collect();
        assert_eq!(theirs.len(), 331 - 2, "listing read");
        assert_eq!(ours, theirs);
    }

    /// Uniform values in [0, 1) for tensor `name`, as `bench/regnet_reference.py` makes them.
    fn hashed_uniform(name: &str, count: usize) -> Vec<f64> {
        let base = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        (0..count as u64)
            .map(|i| {
                let mut z = base.wrapping_add((i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^= z >> 31;
                (z >> 40) as f64 / f64::from(1u32 << 24)
            })
            .collect()
    }

    /// The reference script's weights for one tensor.
    fn hashed_tensor(name: &str, dims: &[usize]) -> Tensor {
        let count = dims.iter().product();
        let (module, kind) = name.rsplit_once('.').expect("dotted name");
        let values: Vec<f32> = hashed_uniform(name, count)
            .into_iter()
            .map(|u| {
                let v = match kind {
                    _ if !module.ends_with(".1") && kind == "weight" => {
                        let fan_in: usize = dims[1..].iter().product();
                        (2.0 * u - 1.0) * (6.0 / fan_in as f64).sqrt()
                    }
                    _ if !module.ends_with(".1") => (2.0 * u - 1.0) * 0.1,
                    "weight" | "running_var" => 0.5 + u,
                    _ => (u - 0.5) * 0.4,
                };
                v as f32
            })
            .collect();
        Tensor::from_vec(values, dims, &Device::Cpu).expect("tensor")
    }

    /// With the reference script's weights and input, the features match torchvision's, both in
    /// evaluation mode and on batch statistics.
    #[test]
    fn features_match_torchvision_on_the_same_weights() {
        let listing = include_str!("../../../tests/data/regnet_y_400mf.tensors.txt");
        let tensors: std::collections::HashMap<String, Tensor> = listing
            .lines()
            .filter_map(|line| line.split_once(' '))
            .map(|(name, shape)| {
                let dims: Vec<usize> = shape
                    .split('x')
                    .map(|d| d.parse().expect("dimension"))
                    .collect();
                (name.to_string(), hashed_tensor(name, &dims))
            })
            .collect();
        let device = Device::Cpu;
        let net = RegNet::new(
            &RegNetConfig::y_400mf(),
            VarBuilder::from_tensors(tensors, DType::F32, &device),
        )
        .expect("builds");
        let input: Vec<f32> = hashed_uniform("input", 3 * 3 * 80 * 80)
            .into_iter()
            .map(|u| (2.0 * u - 1.0) as f32)
            .collect();
        let input = Tensor::from_vec(input, (3, 3, 80, 80), &device).expect("input");
        let reference = candle_core::safetensors::load_buffer(
            include_bytes!("../../../tests/data/regnet_y_400mf.reference.safetensors"),
            &device,
        )
        .expect("reference");
        for (mode, train) in [("eval", false), ("train", true)] {
            let ours = net.forward_t(&input, train).expect("forward");
            let theirs = &reference[mode];
            assert_eq!(ours.dims(), theirs.dims());
            let error = crate::test_support::max_abs_diff(&ours, theirs);
            let scale = crate::test_support::max_abs(theirs);
            assert!(
                scale > 0.1 && error <= 1e-4 * scale,
                "{mode}: max |ours − torchvision| {error}, scale {scale}"
            );
        }
    }
}
