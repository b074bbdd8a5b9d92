//! A vision transformer's configuration from its tensors (timm names, after a layout's
//! renaming): width and patch from the patch projection, depth from the blocks, the grid from
//! the position table, which optional parts it has from which tensors exist. What shapes do
//! not say (attention heads, activation, LayerNorm epsilon, how positions are resampled) is
//! the convention of the library the layout comes from, until a config file beside the
//! weights says otherwise ([`super::folder`]).

use super::infer::Shapes;
use super::layouts::VitFlavour;
use crate::{
    Architecture, FinalNorm, Normalisation, PosResample, TokenActivation, VitConfig, VitPool,
};

/// The transformer `shapes` describe, and its human name ("DINOv2 ViT-S/14 with 4 registers").
pub(crate) fn vit(shapes: &Shapes, flavour: VitFlavour) -> Result<(Architecture, String), String> {
    let get = |key: &str| shapes.get(key).map(Vec::as_slice);
    let (dim, patch) = match get("patch_embed.proj.weight") {
        Some([d, 3, p, q]) if p == q => (*d, *p),
        Some(s) => {
            return Err(format!(
                "the patch projection has shape {s:?}, not [D, 3, p, p]"
            ))
        }
        None => return Err("no patch projection".into()),
    };
    let depth = (0..)
        .take_while(|i| shapes.contains_key(&format!("blocks.{i}.norm1.weight")))
        .count();
    if depth == 0 {
        return Err("no transformer blocks".into());
    }
    let fused_qkv = shapes.contains_key("blocks.0.attn.qkv.weight");
    if !fused_qkv && !shapes.contains_key("blocks.0.attn.q.weight") {
        return Err("block 0 has no attention projections".into());
    }
    let qkv_bias = shapes.contains_key(if fused_qkv {
        "blocks.0.attn.qkv.bias"
    } else {
        "blocks.0.attn.q.bias"
    });
    let mlp_dim = match get("blocks.0.mlp.fc1.weight") {
        Some([hidden, d]) if *d == dim => *hidden,
        other => return Err(format!("block 0's MLP has shape {other:?}")),
    };
    let class_token = shapes.contains_key("cls_token");
    let registers = match get("reg_token") {
        Some([1, r, d]) if *d == dim => *r,
        Some(s) => return Err(format!("the register tokens have shape {s:?}")),
        None => 0,
    };
    let positions = match get("pos_embed") {
        Some([1, n, d]) if *d == dim => *n,
        other => return Err(format!("the position table has shape {other:?}")),
    };
    let square = |n: usize| {
        let g = (n as f64).sqrt().round() as usize;
        (g * g == n && g > 0).then_some(g)
    };
    let (class_position, grid) = match (class_token, positions.checked_sub(1).and_then(square)) {
        (true, Some(g)) => (true, g),
        _ => match square(positions) {
            Some(g) => (false, g),
            None => {
                return Err(format!(
                    "{positions} positions are no square grid (with or without a class token)"
                ))
            }
        },
    };
    let final_norm = if shapes.contains_key("norm.weight") {
        FinalNorm::Tokens
    } else if shapes.contains_key("fc_norm.weight") {
        FinalNorm::Pooled
    } else {
        return Err("no final LayerNorm (`norm` or `fc_norm`)".into());
    };
    let attention_pool = shapes.contains_key("attn_pool.latent");
    let pool = match (attention_pool, final_norm, class_token) {
        (true, _, _) => VitPool::Attention,
        (false, FinalNorm::Pooled, _) | (false, _, false) => VitPool::Mean,
        (false, FinalNorm::Tokens, true) => VitPool::Class,
    };
    let layer_scale = shapes.contains_key("blocks.0.ls1.gamma");
    let meta_dinov2 = shapes.contains_key("mask_token");
    let (kind, activation, eps, resample) = match flavour {
        VitFlavour::Timm if meta_dinov2 => (
            "DINOv2 ",
            TokenActivation::Gelu,
            1e-6,
            PosResample::BicubicOffset { offset: 0.1 },
        ),
        VitFlavour::Timm => (
            "",
            TokenActivation::Gelu,
            1e-6,
            PosResample::Bicubic { antialias: true },
        ),
        VitFlavour::HfVit if layer_scale => (
            "DINOv2 ",
            TokenActivation::Gelu,
            1e-6,
            // Hugging Face resamples with antialiasing only in its with-registers model.
            PosResample::Bicubic {
                antialias: registers > 0,
            },
        ),
        VitFlavour::HfVit => (
            "",
            TokenActivation::Gelu,
            1e-12,
            PosResample::Bicubic { antialias: false },
        ),
        VitFlavour::HfClip if attention_pool => (
            "SigLIP ",
            TokenActivation::GeluTanh,
            1e-6,
            PosResample::Bicubic { antialias: false },
        ),
        VitFlavour::HfClip => (
            "CLIP ",
            TokenActivation::QuickGelu,
            1e-5,
            PosResample::Bicubic { antialias: false },
        ),
        VitFlavour::OpenClip => (
            "CLIP (open_clip) ",
            TokenActivation::Gelu,
            1e-5,
            PosResample::Bicubic { antialias: true },
        ),
    };
    let projection = match get("projection.weight") {
        Some([out, d]) if *d == dim => Some(*out),
        Some(s) => return Err(format!("the image projection has shape {s:?}")),
        None => None,
    };
    let config = VitConfig {
        patch,
        dim,
        depth,
        // Every family natview knows uses 64-wide heads; a config file overrides it.
        heads: (dim / 64).max(1),
        mlp_dim,
        grid,
        class_token,
        class_position,
        registers,
        patch_bias: shapes.contains_key("patch_embed.proj.bias"),
        fused_qkv,
        qkv_bias,
        layer_scale,
        norm_pre: shapes.contains_key("norm_pre.weight"),
        final_norm,
        pool,
        projection,
        activation,
        eps,
        resample,
    };
    Ok((Architecture::Vit(config.clone()), name(kind, &config)))
}

/// The input size and normalisation a family is evaluated with when no config says: CLIP's
/// statistics for CLIP, 0.5/0.5 for SigLIP, ImageNet's otherwise; DINOv2 at 224 px (its
/// evaluation crop, not the 518-px grid it was trained at last), others at their grid's size.
pub(crate) fn standard_input(
    config: &VitConfig,
    flavour: VitFlavour,
    name: &str,
) -> (u32, Normalisation) {
    const CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
    const CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_6, 0.275_777_1];
    let size = if name.starts_with("DINOv2") {
        224
    } else {
        config.input_size_px()
    };
    let normalisation = match flavour {
        VitFlavour::HfClip if config.pool == VitPool::Attention => Normalisation::MeanStd {
            mean: [0.5; 3],
            std: [0.5; 3],
        },
        VitFlavour::HfClip | VitFlavour::OpenClip => Normalisation::MeanStd {
            mean: CLIP_MEAN,
            std: CLIP_STD,
        },
        VitFlavour::Timm | VitFlavour::HfVit => Normalisation::ImageNet,
    };
    (size, normalisation)
}

/// "DINOv2 ViT-S/14 with 4 registers", "CLIP ViT-B/32 image tower", …
pub(crate) fn name(kind: &str, config: &VitConfig) -> String {
    let mut name = format!("{kind}{}", config.size_name());
    if config.registers > 0 {
        name.push_str(&format!(" with {} registers", config.registers));
    }
    if config.projection.is_some() || config.pool == VitPool::Attention {
        name.push_str(" image tower");
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::VarBuilder;

    fn shapes_of(config: &VitConfig) -> Shapes {
        let varmap = candle_nn::VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        Architecture::Vit(config.clone()).build(vb).expect("builds");
        let data = varmap.data().lock().expect("lock");
        data.iter()
            .map(|(k, v)| (k.clone(), v.dims().to_vec()))
            .collect()
    }

    #[test]
    fn vits_are_recovered_from_their_shapes() {
        let small = VitConfig::small_16();
        let (found, name) = vit(&shapes_of(&small), VitFlavour::Timm).expect("inferred");
        assert_eq!(found, Architecture::Vit(small.clone()));
        assert_eq!(name, "ViT-S/16");
        let clip = VitConfig {
            patch: 32,
            grid: 7,
            dim: 768,
            heads: 12,
            mlp_dim: 3072,
            fused_qkv: false,
            patch_bias: false,
            norm_pre: true,
            projection: Some(512),
            activation: TokenActivation::QuickGelu,
            eps: 1e-5,
            resample: PosResample::Bicubic { antialias: false },
            ..small.clone()
        };
        let (found, name) = vit(&shapes_of(&clip), VitFlavour::HfClip).expect("inferred");
        assert_eq!(found, Architecture::Vit(clip));
        assert_eq!(name, "CLIP ViT-B/32 image tower");
        let registers = VitConfig {
            patch: 14,
            grid: 37,
            registers: 4,
            layer_scale: true,
            resample: PosResample::Bicubic { antialias: true },
            ..small
        };
        let (found, name) = vit(&shapes_of(&registers), VitFlavour::HfVit).expect("inferred");
        assert_eq!(found, Architecture::Vit(registers));
        assert_eq!(name, "DINOv2 ViT-S/14 with 4 registers");
    }
}
