//! The key layouts of vision transformers, renamed into timm's names (see the `vit` module):
//! timm and Meta's DINO/DINOv2 (nearly timm's already), Hugging Face's ViT and DINOv2
//! (`embeddings.*`, `encoder.layer.N.*`), Hugging Face's CLIP and SigLIP (`vision_model.*`,
//! with `visual_projection` beside it) and open_clip (`visual.*`). A renamed key may carry a
//! transformation for its tensor ([`Part`]): open_clip's `[D, P]` projection is transposed,
//! SigLIP's packed pooling projections are split, tokens and positions stored without their
//! batch dimension get it.

/// How a file's tensor becomes the one natview reads under its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    /// As stored.
    Whole,
    /// Transposed (a `[in, out]` matrix stored for `x @ W`).
    Transpose,
    /// Rows `start .. start + len` of the first dimension, in thirds: `(first, count)` of 3.
    Thirds(usize, usize),
    /// With a leading batch dimension of 1 (and a token dimension for a vector): `[D]` →
    /// `[1, 1, D]`, `[N, D]` → `[1, N, D]`.
    Batched,
    /// Flattened to a vector (layer scales stored as `[C, 1, 1]`).
    Flat,
}

impl Part {
    /// The shape after the transformation, or `None` when it does not apply to `shape`.
    pub fn shape(self, shape: &[usize]) -> Option<Vec<usize>> {
        match (self, shape) {
            (Part::Whole, s) => Some(s.to_vec()),
            (Part::Transpose, [a, b]) => Some(vec![*b, *a]),
            (Part::Thirds(first, count), [rows, rest @ ..]) if rows % 3 == 0 => {
                let third = rows / 3;
                (first + count <= 3).then(|| {
                    let mut out = vec![third * count];
                    out.extend_from_slice(rest);
                    out
                })
            }
            (Part::Batched, [d]) => Some(vec![1, 1, *d]),
            (Part::Batched, [n, d]) => Some(vec![1, *n, *d]),
            (Part::Batched, s @ [1, _, _]) => Some(s.to_vec()),
            (Part::Flat, s) => Some(vec![s.iter().product()]),
            _ => None,
        }
    }

    /// Applies the transformation to a tensor.
    pub fn apply(self, t: candle_core::Tensor) -> candle_core::Result<candle_core::Tensor> {
        match self {
            Part::Whole => Ok(t),
            Part::Transpose => t.t()?.contiguous(),
            Part::Thirds(first, count) => {
                let third = t.dim(0)? / 3;
                t.narrow(0, first * third, count * third)?.contiguous()
            }
            Part::Batched | Part::Flat => match self.shape(t.dims()) {
                Some(shape) => t.reshape(shape),
                None => candle_core::bail!("cannot reshape {:?}", t.dims()),
            },
        }
    }
}

/// A renamed key: natview's name and how its tensor is transformed.
pub(crate) type Renamed = Vec<(String, Part)>;

pub(crate) fn one(name: impl Into<String>) -> Option<Renamed> {
    Some(vec![(name.into(), Part::Whole)])
}

pub(crate) fn batched(name: &str) -> Option<Renamed> {
    Some(vec![(name.to_string(), Part::Batched)])
}

/// Renames the block-relative key `rest` of block `index` with `pairs` (prefix in the file →
/// prefix in timm's block).
pub(crate) fn block(index: &str, rest: &str, pairs: &[(&str, &str)]) -> Option<Renamed> {
    pairs.iter().find_map(|(from, to)| {
        rest.strip_prefix(from)
            .and_then(|tail| one(format!("blocks.{index}.{to}{tail}")))
    })
}

/// timm's and Meta's (DINO, DINOv2) names: timm's already, but for Meta's `register_tokens`.
/// The classifier (`head.*`) is dropped; `mask_token` is kept to tell Meta's files apart.
pub(crate) fn timm(key: &str) -> Option<Renamed> {
    match key {
        "cls_token" | "pos_embed" | "reg_token" | "mask_token" => return batched(key),
        "register_tokens" => return batched("reg_token"),
        _ => {}
    }
    if key.starts_with("attn_pool.latent") {
        return batched("attn_pool.latent");
    }
    let first = key.split('.').next().unwrap_or("");
    matches!(
        first,
        "patch_embed" | "norm_pre" | "blocks" | "norm" | "fc_norm" | "attn_pool"
    )
    .then(|| vec![(key.to_string(), Part::Whole)])
}

/// Hugging Face's `ViTModel` and `Dinov2Model` (with registers too).
pub(crate) fn hf_vit(key: &str) -> Option<Renamed> {
    if let Some(rest) = key.strip_prefix("embeddings.") {
        return match rest {
            "cls_token" => batched("cls_token"),
            "mask_token" => batched("mask_token"),
            "register_tokens" => batched("reg_token"),
            "position_embeddings" => batched("pos_embed"),
            _ => rest
                .strip_prefix("patch_embeddings.projection.")
                .and_then(|tail| one(format!("patch_embed.proj.{tail}"))),
        };
    }
    if let Some(rest) = key.strip_prefix("layernorm.") {
        return one(format!("norm.{rest}"));
    }
    let rest = key.strip_prefix("encoder.layer.")?;
    let (index, rest) = rest.split_once('.')?;
    block(
        index,
        rest,
        &[
            ("layernorm_before.", "norm1."),
            ("layernorm_after.", "norm2."),
            ("norm1.", "norm1."),
            ("norm2.", "norm2."),
            ("attention.attention.query.", "attn.q."),
            ("attention.attention.key.", "attn.k."),
            ("attention.attention.value.", "attn.v."),
            ("attention.output.dense.", "attn.proj."),
            ("intermediate.dense.", "mlp.fc1."),
            ("output.dense.", "mlp.fc2."),
            ("mlp.fc1.", "mlp.fc1."),
            ("mlp.fc2.", "mlp.fc2."),
            ("layer_scale1.lambda1", "ls1.gamma"),
            ("layer_scale2.lambda1", "ls2.gamma"),
        ],
    )
}

/// Hugging Face's `CLIPModel` / `CLIPVisionModel(WithProjection)` and `SiglipModel` /
/// `SiglipVisionModel`: the image tower under `vision_model.`, CLIP's projection beside it.
pub(crate) fn hf_clip(key: &str) -> Option<Renamed> {
    if key == "visual_projection.weight" {
        return one("projection.weight");
    }
    let rest = key.strip_prefix("vision_model.")?;
    if let Some(e) = rest.strip_prefix("embeddings.") {
        return match e {
            "class_embedding" => batched("cls_token"),
            "position_embedding.weight" => batched("pos_embed"),
            _ => e
                .strip_prefix("patch_embedding.")
                .and_then(|tail| one(format!("patch_embed.proj.{tail}"))),
        };
    }
    for (from, to) in [("pre_layrnorm.", "norm_pre."), ("post_layernorm.", "norm.")] {
        if let Some(tail) = rest.strip_prefix(from) {
            return one(format!("{to}{tail}"));
        }
    }
    if let Some(head) = rest.strip_prefix("head.") {
        return siglip_head(head);
    }
    let rest = rest.strip_prefix("encoder.layers.")?;
    let (index, rest) = rest.split_once('.')?;
    block(index, rest, HF_CLIP_BLOCK)
}

/// Hugging Face's CLIP/SigLIP encoder layer names → timm's block names.
pub(crate) const HF_CLIP_BLOCK: &[(&str, &str)] = &[
    ("layer_norm1.", "norm1."),
    ("layer_norm2.", "norm2."),
    ("self_attn.q_proj.", "attn.q."),
    ("self_attn.k_proj.", "attn.k."),
    ("self_attn.v_proj.", "attn.v."),
    ("self_attn.out_proj.", "attn.proj."),
    ("mlp.fc1.", "mlp.fc1."),
    ("mlp.fc2.", "mlp.fc2."),
];

/// open_clip's residual attention block names → timm's block names.
pub(crate) const OPEN_CLIP_BLOCK: &[(&str, &str)] = &[
    ("ln_1.", "norm1."),
    ("ln_2.", "norm2."),
    ("attn.in_proj_weight", "attn.qkv.weight"),
    ("attn.in_proj_bias", "attn.qkv.bias"),
    ("attn.out_proj.", "attn.proj."),
    ("mlp.c_fc.", "mlp.fc1."),
    ("mlp.c_proj.", "mlp.fc2."),
    ("ls_1.gamma", "ls1.gamma"),
    ("ls_2.gamma", "ls2.gamma"),
];

/// SigLIP's attention-pooling head (`nn.MultiheadAttention` with packed projections).
fn siglip_head(key: &str) -> Option<Renamed> {
    let split = |kind: &str| {
        Some(vec![
            (format!("attn_pool.q.{kind}"), Part::Thirds(0, 1)),
            (format!("attn_pool.kv.{kind}"), Part::Thirds(1, 2)),
        ])
    };
    match key {
        "probe" => batched("attn_pool.latent"),
        "attention.in_proj_weight" => split("weight"),
        "attention.in_proj_bias" => split("bias"),
        _ => [
            ("attention.out_proj.", "attn_pool.proj."),
            ("layernorm.", "attn_pool.norm."),
            ("mlp.fc1.", "attn_pool.mlp.fc1."),
            ("mlp.fc2.", "attn_pool.mlp.fc2."),
        ]
        .iter()
        .find_map(|(from, to)| key.strip_prefix(from).and_then(|t| one(format!("{to}{t}")))),
    }
}

/// open_clip's `VisionTransformer` under `visual.`.
pub(crate) fn open_clip(key: &str) -> Option<Renamed> {
    let rest = key.strip_prefix("visual.")?;
    match rest {
        "class_embedding" => return batched("cls_token"),
        "positional_embedding" => return batched("pos_embed"),
        "conv1.weight" => return one("patch_embed.proj.weight"),
        "proj" => return Some(vec![("projection.weight".into(), Part::Transpose)]),
        _ => {}
    }
    for (from, to) in [("ln_pre.", "norm_pre."), ("ln_post.", "norm.")] {
        if let Some(tail) = rest.strip_prefix(from) {
            return one(format!("{to}{tail}"));
        }
    }
    let rest = rest.strip_prefix("transformer.resblocks.")?;
    let (index, rest) = rest.split_once('.')?;
    block(index, rest, OPEN_CLIP_BLOCK)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(renamed: Option<Renamed>) -> Option<String> {
        renamed.and_then(|r| r.first().map(|(n, _)| n.clone()))
    }

    #[test]
    fn each_layout_reaches_timms_names() {
        assert_eq!(
            name(hf_vit("encoder.layer.3.attention.attention.key.bias")).as_deref(),
            Some("blocks.3.attn.k.bias")
        );
        assert_eq!(
            name(hf_vit("encoder.layer.0.layer_scale2.lambda1")).as_deref(),
            Some("blocks.0.ls2.gamma")
        );
        assert_eq!(
            name(hf_vit("encoder.layer.1.output.dense.weight")).as_deref(),
            Some("blocks.1.mlp.fc2.weight")
        );
        assert_eq!(name(hf_vit("pooler.dense.weight")), None);
        assert_eq!(
            name(hf_clip(
                "vision_model.encoder.layers.2.self_attn.out_proj.bias"
            ))
            .as_deref(),
            Some("blocks.2.attn.proj.bias")
        );
        assert_eq!(name(hf_clip("text_model.final_layer_norm.weight")), None);
        assert_eq!(
            hf_clip("vision_model.head.attention.in_proj_bias"),
            Some(vec![
                ("attn_pool.q.bias".to_string(), Part::Thirds(0, 1)),
                ("attn_pool.kv.bias".to_string(), Part::Thirds(1, 2)),
            ])
        );
        assert_eq!(
            open_clip("visual.proj"),
            Some(vec![("projection.weight".to_string(), Part::Transpose)])
        );
        assert_eq!(
            name(open_clip(
                "visual.transformer.resblocks.11.mlp.c_proj.weight"
            ))
            .as_deref(),
            Some("blocks.11.mlp.fc2.weight")
        );
        assert_eq!(name(timm("head.weight")), None);
        assert_eq!(name(timm("register_tokens")).as_deref(), Some("reg_token"));
    }

    #[test]
    fn parts_reshape_split_and_transpose() {
        assert_eq!(Part::Batched.shape(&[768]), Some(vec![1, 1, 768]));
        assert_eq!(Part::Batched.shape(&[197, 768]), Some(vec![1, 197, 768]));
        assert_eq!(Part::Transpose.shape(&[768, 512]), Some(vec![512, 768]));
        assert_eq!(Part::Thirds(1, 2).shape(&[96, 32]), Some(vec![64, 32]));
        assert_eq!(Part::Thirds(0, 1).shape(&[10]), None);
        assert_eq!(Part::Flat.shape(&[96, 1, 1]), Some(vec![96]));
    }
}
