//! The key layouts natview recognises, each a renaming into the names natview's networks read
//! (torchvision's for ResNets and RegNets, the PyTorch port's for EfficientNet-Lite). A layout
//! is found by its anchor key: the prefix before the anchor is where the trunk lives in the
//! file (`module.encoder_q.`, `classy_state_dict.base_model.model.trunk.`, …).

use super::vit_layouts::{self, Part, Renamed};

/// The network family of a layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    /// ResNets (basic or bottleneck blocks, wide variants).
    ResNet,
    /// RegNetX and RegNetY.
    RegNet,
    /// EfficientNet-Lite0–4.
    EffNetLite,
    /// ConvNeXt of any depth and width.
    ConvNext,
    /// EfficientNet-B of any size.
    EffNetB,
    /// Vision transformers, by the library whose conventions they follow.
    Vit(VitFlavour),
}

/// Whose conventions a vision transformer follows (activation, LayerNorm epsilon, how its
/// positions are resampled), when a config file beside it does not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VitFlavour {
    /// timm, or Meta's DINO/DINOv2 code (told apart by DINOv2's `mask_token`).
    Timm,
    /// Hugging Face's ViT and DINOv2.
    HfVit,
    /// Hugging Face's CLIP and SigLIP image towers.
    HfClip,
    /// open_clip's image tower.
    OpenClip,
}

/// How a layout renames a key.
pub(crate) enum Rename {
    /// To one natview name, the tensor as stored.
    Plain(fn(&str) -> Option<String>),
    /// To natview names, each with its transformation.
    Parts(fn(&str) -> Option<Renamed>),
}

/// A key layout: its family, the key whose presence marks it, and the renaming.
pub(crate) struct Layout {
    /// How it is named in messages ("torchvision layout").
    pub name: &'static str,
    /// The family.
    pub family: Family,
    /// A key (relative to the trunk's prefix) every file of this layout has.
    pub anchor: &'static str,
    /// The natview name of a key relative to the prefix; `None` for keys that are not part
    /// of the trunk (classifier, projector, … heads).
    pub rename: Rename,
}

impl Layout {
    /// The natview names of a key relative to the prefix (with how each tensor is
    /// transformed); `None` for keys that are not part of the trunk.
    pub fn rename(&self, key: &str) -> Option<Renamed> {
        match self.rename {
            Rename::Plain(f) => f(key).map(|name| {
                // Layer scales are vectors to natview (torchvision stores ConvNeXt's as
                // [C, 1, 1]).
                let part = if name.ends_with("layer_scale") {
                    Part::Flat
                } else {
                    Part::Whole
                };
                vec![(name, part)]
            }),
            Rename::Parts(f) => f(key),
        }
    }
}

/// Every layout, most specific first.
pub(crate) const LAYOUTS: &[Layout] = &[
    Layout {
        name: "torchvision/timm layout",
        family: Family::ResNet,
        anchor: "layer1.0.conv1.weight",
        rename: Rename::Plain(resnet_torchvision),
    },
    Layout {
        // lightly's recipes: `nn.Sequential(*list(resnet.children())[:-1])`.
        name: "children-as-Sequential layout",
        family: Family::ResNet,
        anchor: "4.0.conv1.weight",
        rename: Rename::Plain(resnet_sequential),
    },
    Layout {
        name: "torchvision layout",
        family: Family::RegNet,
        anchor: "trunk_output.block1.block1-0.f.a.0.weight",
        rename: Rename::Plain(regnet_torchvision),
    },
    Layout {
        name: "classy-vision layout",
        family: Family::RegNet,
        anchor: "trunk_output.block1.block1-0.f.c.weight",
        rename: Rename::Plain(regnet_classy),
    },
    Layout {
        // classy-vision's RegNet as VISSL's `_feature_blocks`.
        name: "VISSL layout",
        family: Family::RegNet,
        anchor: "_feature_blocks.res2.block1-0.f.c.weight",
        rename: Rename::Plain(regnet_vissl),
    },
    Layout {
        name: "torchvision layout",
        family: Family::ConvNext,
        anchor: "features.1.0.block.0.weight",
        rename: Rename::Plain(convnext_torchvision),
    },
    Layout {
        name: "timm layout",
        family: Family::ConvNext,
        anchor: "stages.0.blocks.0.conv_dw.weight",
        rename: Rename::Plain(convnext_timm),
    },
    Layout {
        name: "torchvision layout",
        family: Family::EffNetB,
        anchor: "features.1.0.block.0.0.weight",
        rename: Rename::Plain(effnet_b_torchvision),
    },
    Layout {
        name: "EfficientNet-Lite PyTorch port layout",
        family: Family::EffNetLite,
        anchor: "_blocks.0._depthwise_conv.weight",
        rename: Rename::Plain(effnet_port),
    },
    Layout {
        name: "timm/DINOv2 layout",
        family: Family::Vit(VitFlavour::Timm),
        anchor: "patch_embed.proj.weight",
        rename: Rename::Parts(vit_layouts::timm),
    },
    Layout {
        name: "Hugging Face layout",
        family: Family::Vit(VitFlavour::HfVit),
        anchor: "embeddings.patch_embeddings.projection.weight",
        rename: Rename::Parts(vit_layouts::hf_vit),
    },
    Layout {
        name: "Hugging Face layout",
        family: Family::Vit(VitFlavour::HfClip),
        anchor: "vision_model.embeddings.patch_embedding.weight",
        rename: Rename::Parts(vit_layouts::hf_clip),
    },
    Layout {
        name: "open_clip layout",
        family: Family::Vit(VitFlavour::OpenClip),
        anchor: "visual.class_embedding",
        rename: Rename::Parts(vit_layouts::open_clip),
    },
];

fn first_component(key: &str) -> &str {
    key.split('.').next().unwrap_or("")
}

fn resnet_torchvision(key: &str) -> Option<String> {
    matches!(
        first_component(key),
        "conv1" | "bn1" | "layer1" | "layer2" | "layer3" | "layer4"
    )
    .then(|| key.to_string())
}

fn resnet_sequential(key: &str) -> Option<String> {
    let (head, rest) = key.split_once('.')?;
    let name = match head {
        "0" => "conv1",
        "1" => "bn1",
        "4" => "layer1",
        "5" => "layer2",
        "6" => "layer3",
        "7" => "layer4",
        _ => return None,
    };
    Some(format!("{name}.{rest}"))
}

fn regnet_torchvision(key: &str) -> Option<String> {
    matches!(first_component(key), "stem" | "trunk_output").then(|| key.to_string())
}

/// classy-vision (pycls) names → torchvision's: `stem.stem.N` → `stem.N`; a block's `proj`/`bn`
/// → `proj.0`/`proj.1`, `f.c`/`f.final_bn` → `f.c.0`/`f.c.1`, `f.se.excitation.0/2` →
/// `f.se.fc1/fc2`.
fn regnet_classy(key: &str) -> Option<String> {
    if let Some(rest) = key.strip_prefix("stem.stem.") {
        return Some(format!("stem.{rest}"));
    }
    let rest = key.strip_prefix("trunk_output.")?;
    Some(format!("trunk_output.{}", classy_block_key(rest)?))
}

/// `blockS.blockS-B.<classy block key>` → the torchvision block key.
fn classy_block_key(key: &str) -> Option<String> {
    let mut parts = key.splitn(3, '.');
    let (stage, block, rest) = (parts.next()?, parts.next()?, parts.next()?);
    const RENAMES: [(&str, &str); 6] = [
        ("proj.", "proj.0."),
        ("bn.", "proj.1."),
        ("f.c.", "f.c.0."),
        ("f.final_bn.", "f.c.1."),
        ("f.se.excitation.0.", "f.se.fc1."),
        ("f.se.excitation.2.", "f.se.fc2."),
    ];
    let renamed = RENAMES
        .iter()
        .find_map(|(from, to)| rest.strip_prefix(from).map(|r| format!("{to}{r}")))
        .unwrap_or_else(|| rest.to_string());
    Some(format!("{stage}.{block}.{renamed}"))
}

/// VISSL's `_feature_blocks.conv1` (the classy stem) and `_feature_blocks.resK` (classy stage
/// K − 1) → torchvision names.
fn regnet_vissl(key: &str) -> Option<String> {
    let rest = key.strip_prefix("_feature_blocks.")?;
    if let Some(stem) = rest.strip_prefix("conv1.stem.") {
        return Some(format!("stem.{stem}"));
    }
    let (stage, block_key) = rest.split_once('.')?;
    let k: usize = stage.strip_prefix("res")?.parse().ok()?;
    let classy = format!("block{}.{block_key}", k.checked_sub(1)?);
    Some(format!("trunk_output.{}", classy_block_key(&classy)?))
}

fn convnext_torchvision(key: &str) -> Option<String> {
    (key.starts_with("features.") || key.starts_with("classifier.0.")).then(|| key.to_string())
}

/// timm's ConvNeXt names → torchvision's: `stem.N` → `features.0.N`; stage S's blocks →
/// `features.{2S+1}` (`conv_dw` → `block.0`, `norm` → `block.2`, `mlp.fc1/fc2` → `block.3/5`,
/// `gamma` → `layer_scale`) and its downsampling → `features.{2S}`; `head.norm` (or
/// `norm_pre`) → `classifier.0`.
fn convnext_timm(key: &str) -> Option<String> {
    if let Some(rest) = key.strip_prefix("stem.") {
        return Some(format!("features.0.{rest}"));
    }
    for head in ["head.norm.", "norm_pre."] {
        if let Some(rest) = key.strip_prefix(head) {
            return Some(format!("classifier.0.{rest}"));
        }
    }
    let rest = key.strip_prefix("stages.")?;
    let (stage, rest) = rest.split_once('.')?;
    let stage: usize = stage.parse().ok()?;
    if let Some(down) = rest.strip_prefix("downsample.") {
        return Some(format!("features.{}.{down}", 2 * stage));
    }
    let rest = rest.strip_prefix("blocks.")?;
    let (block, rest) = rest.split_once('.')?;
    const RENAMES: [(&str, &str); 5] = [
        ("conv_dw.", "block.0."),
        ("norm.", "block.2."),
        ("mlp.fc1.", "block.3."),
        ("mlp.fc2.", "block.5."),
        ("gamma", "layer_scale"),
    ];
    let renamed = RENAMES
        .iter()
        .find_map(|(from, to)| rest.strip_prefix(from).map(|r| format!("{to}{r}")))?;
    Some(format!("features.{}.{block}.{renamed}", 2 * stage + 1))
}

/// torchvision's EfficientNet: everything under `features.` (the classifier is dropped).
fn effnet_b_torchvision(key: &str) -> Option<String> {
    key.starts_with("features.").then(|| key.to_string())
}

fn effnet_port(key: &str) -> Option<String> {
    matches!(
        first_component(key),
        "_conv_stem" | "_bn0" | "_blocks" | "_conv_head" | "_bn1" | "_fc"
    )
    .then(|| key.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classy_and_vissl_names_become_torchvision_names() {
        assert_eq!(
            regnet_classy("trunk_output.block2.block2-1.f.final_bn.running_var").as_deref(),
            Some("trunk_output.block2.block2-1.f.c.1.running_var")
        );
        assert_eq!(
            regnet_classy("trunk_output.block1.block1-0.bn.weight").as_deref(),
            Some("trunk_output.block1.block1-0.proj.1.weight")
        );
        assert_eq!(
            regnet_vissl("_feature_blocks.res3.block2-0.f.se.excitation.2.bias").as_deref(),
            Some("trunk_output.block2.block2-0.f.se.fc2.bias")
        );
        assert_eq!(
            regnet_vissl("_feature_blocks.conv1.stem.1.weight").as_deref(),
            Some("stem.1.weight")
        );
        assert_eq!(
            resnet_sequential("5.1.bn2.bias").as_deref(),
            Some("layer2.1.bn2.bias")
        );
        assert_eq!(resnet_torchvision("fc.weight"), None);
        assert_eq!(
            convnext_timm("stages.2.blocks.4.mlp.fc2.bias").as_deref(),
            Some("features.5.4.block.5.bias")
        );
        assert_eq!(
            convnext_timm("stages.1.downsample.1.weight").as_deref(),
            Some("features.2.1.weight")
        );
        assert_eq!(
            convnext_timm("stages.0.blocks.0.gamma").as_deref(),
            Some("features.1.0.layer_scale")
        );
        assert_eq!(convnext_timm("head.fc.weight"), None);
        assert_eq!(convnext_torchvision("classifier.2.weight"), None);
    }
}
