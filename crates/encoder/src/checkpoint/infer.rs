//! Works out a network's configuration from its tensors' names and shapes (natview names, after
//! a layout's renaming): blocks per stage from the keys, widths, groups, squeeze sizes and
//! kernel sizes from the shapes. The network built from the result then reads every tensor
//! and checks each shape, so a wrong guess is an error, never a silent misfit.

use super::layouts::Family;
use crate::{
    Architecture, ConvNextConfig, EffNetBConfig, EffNetConfig, MbConvSpec, RegNetConfig,
    ResNetConfig,
};
use std::collections::HashMap;

/// Tensor shapes by natview name.
pub(crate) type Shapes = HashMap<String, Vec<usize>>;

/// The network of `family` that `shapes` describe, and its human name
/// ("ResNet-50", "Wide ResNet-50-2", "RegNetY (widths 48-104-208-440, …)").
pub(crate) fn infer(family: Family, shapes: &Shapes) -> Result<(Architecture, String), String> {
    match family {
        Family::ResNet => resnet(shapes),
        Family::RegNet => regnet(shapes),
        Family::EffNetLite => effnet_lite(shapes),
        Family::ConvNext => convnext(shapes),
        Family::EffNetB => effnet_b(shapes),
        Family::Vit(flavour) => super::infer_vit::vit(shapes, flavour),
    }
}

fn shape<'a>(shapes: &'a Shapes, key: &str) -> Result<&'a [usize], String> {
    shapes
        .get(key)
        .map(Vec::as_slice)
        .ok_or_else(|| format!("no tensor `{key}`"))
}

fn dim(shapes: &Shapes, key: &str, index: usize) -> Result<usize, String> {
    shape(shapes, key)?
        .get(index)
        .copied()
        .ok_or_else(|| format!("`{key}` has too few dimensions"))
}

/// How many `format(i)` keys exist for i = 0, 1, 2, …
fn count(shapes: &Shapes, format: impl Fn(usize) -> String) -> usize {
    (0..)
        .take_while(|&i| shapes.contains_key(&format(i)))
        .count()
}

fn resnet(shapes: &Shapes) -> Result<(Architecture, String), String> {
    let stem = shape(shapes, "conv1.weight")?;
    let (stem_channels, stem_kernel) = match stem {
        [c, 3, k, _] => (*c, *k),
        _ => {
            return Err(format!(
                "`conv1.weight` has shape {stem:?}, not [C, 3, k, k]"
            ))
        }
    };
    let bottleneck = shapes.contains_key("layer1.0.conv3.weight");
    let mut blocks = [0usize; 4];
    let mut widths = [0usize; 4];
    for stage in 0..4 {
        blocks[stage] = count(shapes, |b| format!("layer{}.{b}.conv1.weight", stage + 1));
        if blocks[stage] == 0 {
            return Err(format!("no blocks in layer{}", stage + 1));
        }
        widths[stage] = dim(shapes, &format!("layer{}.0.conv1.weight", stage + 1), 0)?;
    }
    let expansion = if bottleneck {
        let out = dim(shapes, "layer1.0.conv3.weight", 0)?;
        if widths[0] == 0 || out % widths[0] != 0 {
            return Err(format!("layer1 widens {} channels to {out}", widths[0]));
        }
        out / widths[0]
    } else {
        1
    };
    let imagenet_stem = stem_kernel == 7;
    let config = ResNetConfig {
        bottleneck,
        blocks,
        widths,
        stem_channels,
        imagenet_stem,
        // natview's compact ResNet (3×3 stem, no pool) halves the size in its first stage.
        first_stage_stride: if imagenet_stem { 1 } else { 2 },
        expansion: if bottleneck { expansion } else { 4 },
    };
    let per_block = if bottleneck { 3 } else { 2 };
    let depth = per_block * blocks.iter().sum::<usize>() + 2;
    // Wide variants keep ResNet-50's block outputs (256 in layer1) with wider insides.
    let standard_outputs = !bottleneck || widths[0] * expansion == 256;
    let name = match (imagenet_stem, widths[0], standard_outputs) {
        (false, _, _) => format!("ResNet-{depth} with a 3×3 stem (natview's compact form)"),
        (true, 64, true) => format!("ResNet-{depth}"),
        (true, w, true) if bottleneck && w % 64 == 0 => format!("Wide ResNet-{depth}-{}", w / 64),
        (true, w, _) => format!("ResNet-{depth} (width {w})"),
    };
    Ok((Architecture::ResNet(config), name))
}

fn regnet(shapes: &Shapes) -> Result<(Architecture, String), String> {
    let stem_width = dim(shapes, "stem.0.weight", 0)?;
    let block = |stage: usize, b: usize| format!("trunk_output.block{stage}.block{stage}-{b}");
    let mut depths = [0usize; 4];
    let mut widths = [0usize; 4];
    for stage in 0..4 {
        depths[stage] = count(shapes, |b| format!("{}.f.a.0.weight", block(stage + 1, b)));
        if depths[stage] == 0 {
            return Err(format!("no blocks in trunk_output.block{}", stage + 1));
        }
        widths[stage] = dim(shapes, &format!("{}.f.a.0.weight", block(stage + 1, 0)), 0)?;
    }
    let group_width = dim(shapes, &format!("{}.f.b.0.weight", block(1, 0)), 1)?;
    let se_key = format!("{}.f.se.fc1.weight", block(1, 0));
    let se_ratio = shapes
        .get(&se_key)
        .map(|s| s.first().copied().unwrap_or(0) as f64 / stem_width as f64);
    let config = RegNetConfig {
        stem_width,
        depths,
        widths,
        group_width,
        se_ratio,
    };
    let join = |v: &[usize; 4]| v.map(|x| x.to_string()).join("-");
    let name = format!(
        "RegNet{} (widths {}, depths {}, group width {group_width})",
        if se_ratio.is_some() { "Y" } else { "X" },
        join(&widths),
        join(&depths)
    );
    Ok((Architecture::RegNet(config), name))
}

fn convnext(shapes: &Shapes) -> Result<(Architecture, String), String> {
    let patch = dim(shapes, "features.0.0.weight", 2)?;
    let mut depths = [0usize; 4];
    let mut dims = [0usize; 4];
    for stage in 0..4 {
        let layer = 2 * stage + 1;
        depths[stage] = count(shapes, |b| format!("features.{layer}.{b}.block.0.weight"));
        if depths[stage] == 0 {
            return Err(format!("no blocks in features.{layer}"));
        }
        dims[stage] = dim(shapes, &format!("features.{layer}.0.block.0.weight"), 0)?;
    }
    let config = ConvNextConfig {
        depths,
        dims,
        patch,
    };
    let name = [
        (ConvNextConfig::tiny(), "ConvNeXt-T"),
        (ConvNextConfig::small(), "ConvNeXt-S"),
        (ConvNextConfig::base(), "ConvNeXt-B"),
    ]
    .into_iter()
    .find(|(preset, _)| *preset == config)
    .map_or_else(
        || {
            let join = |v: &[usize; 4]| v.map(|x| x.to_string()).join("-");
            format!("ConvNeXt (dims {}, depths {})", join(&dims), join(&depths))
        },
        |(_, name)| name.to_string(),
    );
    Ok((Architecture::ConvNext(config), name))
}

/// EfficientNet-B from torchvision's names: every block's expansion, kernel and squeeze width
/// from its shapes, strides from the family's stage table.
fn effnet_b(shapes: &Shapes) -> Result<(Architecture, String), String> {
    let stem = dim(shapes, "features.0.0.weight", 0)?;
    let mut stages = Vec::new();
    let mut c_in = stem;
    for stage in 1.. {
        let block_key = |b: usize, i: usize| format!("features.{stage}.{b}.block.{i}.0.weight");
        let count = count(shapes, |b| block_key(b, 0));
        if count == 0 {
            break;
        }
        let stride = *crate::effnet_b::STAGE_STRIDES
            .get(stage - 1)
            .ok_or_else(|| format!("more stages ({stage}) than EfficientNet-B has"))?;
        let mut blocks = Vec::with_capacity(count);
        for b in 0..count {
            // Blocks with an expansion have four parts (expand, depthwise, SE, project).
            let expands = shapes.contains_key(&block_key(b, 3));
            let offset = usize::from(expands);
            let depthwise = shape(shapes, &block_key(b, offset))?;
            let (mid, kernel) = match depthwise {
                [m, 1, k, _] => (*m, *k),
                other => return Err(format!("{} has shape {other:?}", block_key(b, offset))),
            };
            let squeeze = dim(
                shapes,
                &format!("features.{stage}.{b}.block.{}.fc1.weight", offset + 1),
                0,
            )?;
            let c_out = dim(shapes, &block_key(b, offset + 2), 0)?;
            blocks.push(MbConvSpec {
                c_in,
                mid,
                c_out,
                kernel,
                stride: if b == 0 { stride } else { 1 },
                squeeze,
            });
            c_in = c_out;
        }
        stages.push(blocks);
    }
    if stages.is_empty() {
        return Err("no MBConv stages under features.".into());
    }
    let head_key = format!("features.{}.0.weight", stages.len() + 1);
    let config = EffNetBConfig {
        stem,
        head: dim(shapes, &head_key, 0)?,
        stages,
    };
    let name = (0..=7u8)
        .find(|&v| EffNetBConfig::b(v) == config)
        .map_or_else(
            || format!("EfficientNet (stem {}, head {})", config.stem, config.head),
            |v| format!("EfficientNet-B{v}"),
        );
    Ok((Architecture::EffNetB(config), name))
}

fn effnet_lite(shapes: &Shapes) -> Result<(Architecture, String), String> {
    let blocks = count(shapes, |b| format!("_blocks.{b}._depthwise_conv.weight"));
    let last_out = dim(
        shapes,
        &format!("_blocks.{}._project_conv.weight", blocks.saturating_sub(1)),
        0,
    )?;
    (0..=4u8)
        .map(EffNetConfig::lite)
        .find(|c| c.blocks.len() == blocks && c.blocks.last().is_some_and(|b| b.c_out == last_out))
        .map(|c| {
            let name = format!("EfficientNet-Lite{}", c.variant);
            (Architecture::EffNet(c), name)
        })
        .ok_or_else(|| {
            format!("{blocks} blocks ending in {last_out} channels match no EfficientNet-Lite0–4")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::VarBuilder;

    /// The shapes a network built from `arch` reads.
    fn shapes_of(arch: &Architecture) -> Shapes {
        let varmap = candle_nn::VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        arch.build(vb).expect("builds");
        let data = varmap.data().lock().expect("lock");
        data.iter()
            .map(|(k, v)| (k.clone(), v.dims().to_vec()))
            .collect()
    }

    #[test]
    fn every_preset_is_recovered_from_its_own_shapes() {
        let wide = ResNetConfig {
            widths: [128, 256, 512, 1024],
            expansion: 2,
            ..ResNetConfig::resnet50()
        };
        let resnet101 = ResNetConfig {
            blocks: [3, 4, 23, 3],
            ..ResNetConfig::resnet50()
        };
        let regnet_x = RegNetConfig {
            se_ratio: None,
            ..RegNetConfig::y_400mf()
        };
        for (arch, family, name) in [
            (
                Architecture::ResNet(ResNetConfig::resnet18()),
                Family::ResNet,
                "ResNet-18",
            ),
            (
                Architecture::ResNet(ResNetConfig::resnet50()),
                Family::ResNet,
                "ResNet-50",
            ),
            (
                Architecture::ResNet(resnet101),
                Family::ResNet,
                "ResNet-101",
            ),
            (
                Architecture::ResNet(wide),
                Family::ResNet,
                "Wide ResNet-50-2",
            ),
            (
                Architecture::ResNet(ResNetConfig::compact()),
                Family::ResNet,
                "ResNet-10",
            ),
            (
                Architecture::RegNet(RegNetConfig::y_400mf()),
                Family::RegNet,
                "RegNetY",
            ),
            (Architecture::RegNet(regnet_x), Family::RegNet, "RegNetX"),
            (
                Architecture::EffNet(EffNetConfig::lite(2)),
                Family::EffNetLite,
                "EfficientNet-Lite2",
            ),
            (
                Architecture::EffNetB(EffNetBConfig::b(0)),
                Family::EffNetB,
                "EfficientNet-B0",
            ),
            (
                Architecture::EffNetB(EffNetBConfig::b(4)),
                Family::EffNetB,
                "EfficientNet-B4",
            ),
            (
                Architecture::ConvNext(ConvNextConfig::tiny()),
                Family::ConvNext,
                "ConvNeXt-T",
            ),
            (
                Architecture::ConvNext(ConvNextConfig::base()),
                Family::ConvNext,
                "ConvNeXt-B",
            ),
        ] {
            let (found, found_name) = infer(family, &shapes_of(&arch)).expect("inferred");
            assert_eq!(found, arch, "{name}");
            assert!(found_name.starts_with(name), "{found_name} is not {name}");
        }
    }

    #[test]
    fn a_missing_stage_is_named() {
        let mut shapes = shapes_of(&Architecture::ResNet(ResNetConfig::resnet18()));
        shapes.retain(|k, _| !k.starts_with("layer3"));
        let err = infer(Family::ResNet, &shapes).expect_err("refused");
        assert!(err.contains("layer3"), "{err}");
    }
}
