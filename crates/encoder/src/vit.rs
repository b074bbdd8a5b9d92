//! Vision transformers: ViT (timm, Hugging Face), DINO/DINOv2 (with and without register
//! tokens), and the image towers of CLIP (Hugging Face, open_clip) and SigLIP, as one network
//! whose configuration says which parts a family has. Tensor names are timm's (the names
//! other layouts are renamed to when a checkpoint is opened):
//!
//! - `patch_embed.proj.{weight,bias}`: the p×p patch projection (a stride-p convolution,
//!   computed as a matrix product on the unfolded patches);
//! - `cls_token` `[1, 1, D]`, `reg_token` `[1, R, D]` (DINOv2's registers), `pos_embed`
//!   `[1, (1) + g², D]` (with the class token's position first when the family has one);
//! - `norm_pre` (CLIP's `ln_pre`), then `blocks.i.{norm1, attn.qkv | attn.{q,k,v}, attn.proj,
//!   ls1.gamma, norm2, mlp.fc1, mlp.fc2, ls2.gamma}` (pre-norm blocks, optional layer scale);
//! - `norm` (over every token, before pooling) or `fc_norm` (after mean pooling);
//! - `attn_pool.{latent, q, kv, proj, norm, mlp.fc1, mlp.fc2}` (SigLIP's attention pooling);
//! - `projection.weight` `[P, D]` (CLIP's image projection into the joint space).
//!
//! Tokens are `[class, registers…, patches…]`; positions are added to the class token (when
//! it has one) and the patches, never to registers. At an input size other than the one the
//! position grid was trained at, the grid is resampled as the family's library does
//! ([`PosResample`]). The embedding is the class token, the mean of the patch tokens, both
//! concatenated (DINOv2's linear-probe feature), or SigLIP's attention pool; then the
//! projection where there is one.

use super::layers::{LayerNorm, Linear};
use super::resample::{grid_matrix, PosResample};
use super::transformer::{attend, Block, BlockShape, Mlp, TokenActivation};
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

/// What a vision transformer's embedding is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum VitPool {
    /// The class token.
    Class,
    /// The mean of the patch tokens.
    Mean,
    /// The class token and the mean of the patch tokens, concatenated (2·D wide).
    ClassAndMean,
    /// SigLIP's multi-head attention pooling (`attn_pool.*`).
    Attention,
}

impl VitPool {
    /// Its name on the command line and in summaries.
    pub fn name(self) -> &'static str {
        match self {
            VitPool::Class => "cls",
            VitPool::Mean => "mean",
            VitPool::ClassAndMean => "cls+mean",
            VitPool::Attention => "attention",
        }
    }
}

impl std::str::FromStr for VitPool {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "cls" | "class" => Ok(VitPool::Class),
            "mean" | "avg" => Ok(VitPool::Mean),
            "both" | "cls+mean" | "cls-mean" => Ok(VitPool::ClassAndMean),
            "attention" | "map" => Ok(VitPool::Attention),
            other => Err(format!(
                "unknown pooling `{other}`: use cls, mean or both (class token and patch mean)"
            )),
        }
    }
}

/// Where the final LayerNorm sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FinalNorm {
    /// `norm`, over every token before pooling (timm's default, DINOv2, CLIP's `ln_post`).
    Tokens,
    /// `fc_norm`, on the pooled feature (timm with mean pooling).
    Pooled,
}

/// The shape of a vision transformer.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VitConfig {
    /// Patch side in pixels (14 or 16, …).
    pub patch: usize,
    /// Token width D.
    pub dim: usize,
    /// Number of blocks.
    pub depth: usize,
    /// Attention heads per block.
    pub heads: usize,
    /// Hidden width of the blocks' MLPs.
    pub mlp_dim: usize,
    /// Side of the position grid the weights were trained with.
    pub grid: usize,
    /// Whether there is a class token.
    pub class_token: bool,
    /// Whether `pos_embed` has a position for the class token (its first row).
    pub class_position: bool,
    /// Register tokens (DINOv2 with registers).
    pub registers: usize,
    /// Whether the patch projection has a bias (CLIP's has none).
    pub patch_bias: bool,
    /// Whether q, k and v are one `attn.qkv` tensor (timm) or three (`attn.q/k/v`).
    pub fused_qkv: bool,
    /// Whether the attention's input projections have biases.
    pub qkv_bias: bool,
    /// Whether the blocks scale their branches (`ls1.gamma`, `ls2.gamma`; DINOv2).
    pub layer_scale: bool,
    /// Whether a LayerNorm precedes the blocks (`norm_pre`; CLIP).
    pub norm_pre: bool,
    /// Where the final LayerNorm sits.
    pub final_norm: FinalNorm,
    /// How tokens become the embedding.
    pub pool: VitPool,
    /// Width of the image projection (`projection.weight`), when there is one.
    pub projection: Option<usize>,
    /// The MLPs' non-linearity.
    pub activation: TokenActivation,
    /// Every LayerNorm's epsilon.
    pub eps: f64,
    /// How the position grid is resampled for other input sizes.
    pub resample: PosResample,
}

impl VitConfig {
    /// timm's ViT-S/16 (22 M parameters, 384-d class token).
    pub fn small_16() -> Self {
        Self {
            patch: 16,
            dim: 384,
            depth: 12,
            heads: 6,
            mlp_dim: 1536,
            grid: 14,
            class_token: true,
            class_position: true,
            registers: 0,
            patch_bias: true,
            fused_qkv: true,
            qkv_bias: true,
            layer_scale: false,
            norm_pre: false,
            final_norm: FinalNorm::Tokens,
            pool: VitPool::Class,
            projection: None,
            activation: TokenActivation::Gelu,
            eps: 1e-6,
            resample: PosResample::Bicubic { antialias: true },
        }
    }

    /// timm's ViT-B/16 (86 M parameters, 768-d).
    pub fn base_16() -> Self {
        Self {
            dim: 768,
            heads: 12,
            mlp_dim: 3072,
            ..Self::small_16()
        }
    }

    /// Dimension of the embedding.
    pub fn feature_dim(&self) -> usize {
        match (self.projection, self.pool) {
            (Some(p), _) => p,
            (None, VitPool::ClassAndMean) => 2 * self.dim,
            (None, _) => self.dim,
        }
    }

    /// This network with its tokens pooled as `pool` says, or why it cannot be: the class
    /// token needs one, the attention pool needs SigLIP's head.
    pub fn with_pool(&self, pool: VitPool) -> std::result::Result<Self, String> {
        match pool {
            VitPool::Class | VitPool::ClassAndMean if !self.class_token => Err(format!(
                "--pool {}: this transformer has no class token (use --pool mean)",
                pool.name()
            )),
            VitPool::Attention if self.pool != VitPool::Attention => {
                Err("--pool attention: this transformer has no attention-pooling head".into())
            }
            _ if self.pool == VitPool::Attention && pool != VitPool::Attention => Err(format!(
                "--pool {}: SigLIP's tower is trained to pool with its attention head",
                pool.name()
            )),
            _ if self.projection.is_some() && pool != self.pool => Err(format!(
                "--pool {}: a CLIP image tower projects its class token into the text space",
                pool.name()
            )),
            _ => Ok(Self {
                pool,
                ..self.clone()
            }),
        }
    }

    /// The input size the position grid was trained at.
    pub fn input_size_px(&self) -> u32 {
        u32::try_from(self.grid * self.patch).unwrap_or(224)
    }

    /// The shape of its blocks.
    pub(crate) fn block_shape(&self) -> BlockShape {
        BlockShape {
            dim: self.dim,
            heads: self.heads,
            mlp_dim: self.mlp_dim,
            fused_qkv: self.fused_qkv,
            qkv_bias: self.qkv_bias,
            layer_scale: self.layer_scale,
            activation: self.activation,
            eps: self.eps,
        }
    }

    /// Tokens before the patches (class token and registers).
    pub fn prefix_tokens(&self) -> usize {
        usize::from(self.class_token) + self.registers
    }

    /// "ViT-S/16", "ViT-B/14 with 4 registers", … from the width, depth and patch.
    pub fn size_name(&self) -> String {
        let size = match (self.dim, self.depth) {
            (192, 12) => "Ti".to_string(),
            (384, 12) => "S".to_string(),
            (768, 12) => "B".to_string(),
            (1024, 24) => "L".to_string(),
            (1280, 32) => "H".to_string(),
            (1536, 40) => "g".to_string(),
            (d, n) => format!("{n}×{d}"),
        };
        format!("ViT-{size}/{}", self.patch)
    }
}

/// SigLIP's attention pooling: a learned query attends over the tokens, then a residual MLP.
#[derive(Debug, Clone)]
struct AttentionPool {
    latent: Tensor,
    q: Linear,
    kv: Linear,
    proj: Linear,
    norm: LayerNorm,
    mlp: Mlp,
    heads: usize,
}

impl AttentionPool {
    fn new(config: &VitConfig, vb: VarBuilder) -> Result<Self> {
        let d = config.dim;
        Ok(Self {
            latent: vb.get_with_hints((1, 1, d), "latent", candle_nn::init::ZERO)?,
            q: Linear::new(d, d, vb.pp("q"))?,
            kv: Linear::new(d, 2 * d, vb.pp("kv"))?,
            proj: Linear::new(d, d, vb.pp("proj"))?,
            norm: LayerNorm::new(d, config.eps, vb.pp("norm"))?,
            mlp: Mlp::new(d, config.mlp_dim, config.activation, vb.pp("mlp"))?,
            heads: config.heads,
        })
    }

    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let (b, t, d) = x.dims3()?;
        let hd = d / self.heads;
        let q = self
            .q
            .forward(&self.latent.broadcast_as((b, 1, d))?.contiguous()?)?
            .reshape((b, 1, self.heads, hd))?
            .transpose(1, 2)?
            .contiguous()?;
        let kv = self.kv.forward(x)?;
        let split = |i: usize| {
            kv.narrow(2, i * d, d)?
                .reshape((b, t, self.heads, hd))?
                .transpose(1, 2)?
                .contiguous()
        };
        let out = attend(&q, &split(0)?, &split(1)?, false)?
            .transpose(1, 2)?
            .reshape((b, 1, d))?;
        let h = self.proj.forward(&out)?;
        let h = (&h + self.mlp.forward(&self.norm.forward_t(&h, train)?)?)?;
        h.squeeze(1)
    }
}

/// A vision transformer returning its embedding `[batch, feature_dim]`.
#[derive(Debug, Clone)]
pub struct Vit {
    config: VitConfig,
    patch_weight_t: Tensor,
    patch_bias: Option<Tensor>,
    cls_token: Option<Tensor>,
    reg_token: Option<Tensor>,
    pos_embed: Tensor,
    norm_pre: Option<LayerNorm>,
    blocks: Vec<Block>,
    norm: LayerNorm,
    attn_pool: Option<AttentionPool>,
    projection: Option<Tensor>,
    /// The blocks' fused CPU evaluation form, once prepared.
    fused: Option<std::sync::Arc<Vec<crate::transformer_cpu::FusedTransformerBlock>>>,
}

impl Vit {
    /// Builds the network, reading (or creating) tensors through `vb` with timm's names.
    pub fn new(config: &VitConfig, vb: VarBuilder) -> Result<Self> {
        let d = config.dim;
        let p = config.patch;
        let patch = vb.pp("patch_embed").pp("proj");
        let patch_weight = patch.get_with_hints(
            (d, 3, p, p),
            "weight",
            candle_nn::init::DEFAULT_KAIMING_NORMAL,
        )?;
        let small = candle_nn::Init::Randn {
            mean: 0.0,
            stdev: 0.02,
        };
        let positions = usize::from(config.class_position) + config.grid * config.grid;
        let blocks = (0..config.depth)
            .map(|i| Block::new(&config.block_shape(), vb.pp("blocks").pp(i.to_string())))
            .collect::<Result<Vec<_>>>()?;
        let norm_name = match config.final_norm {
            FinalNorm::Tokens => "norm",
            FinalNorm::Pooled => "fc_norm",
        };
        Ok(Self {
            config: config.clone(),
            patch_weight_t: patch_weight.reshape((d, 3 * p * p))?.t()?,
            patch_bias: config
                .patch_bias
                .then(|| patch.get_with_hints(d, "bias", candle_nn::init::ZERO))
                .transpose()?,
            cls_token: config
                .class_token
                .then(|| vb.get_with_hints((1, 1, d), "cls_token", small))
                .transpose()?,
            reg_token: (config.registers > 0)
                .then(|| vb.get_with_hints((1, config.registers, d), "reg_token", small))
                .transpose()?,
            pos_embed: vb.get_with_hints((1, positions, d), "pos_embed", small)?,
            norm_pre: config
                .norm_pre
                .then(|| LayerNorm::new(d, config.eps, vb.pp("norm_pre")))
                .transpose()?,
            blocks,
            norm: LayerNorm::new(d, config.eps, vb.pp(norm_name))?,
            attn_pool: (config.pool == VitPool::Attention)
                .then(|| AttentionPool::new(config, vb.pp("attn_pool")))
                .transpose()?,
            projection: config
                .projection
                .map(|out| {
                    vb.pp("projection").get_with_hints(
                        (out, d),
                        "weight",
                        candle_nn::init::DEFAULT_KAIMING_NORMAL,
                    )
                })
                .transpose()?,
            fused: None,
        })
    }

    /// Readies the fused evaluation path of the blocks for f32 inputs on the CPU (our kernels
    /// in use).
    pub fn prepare_inference(&mut self, device: &candle_core::Device) -> Result<()> {
        if device.is_cpu() && super::conv::own_cpu_kernels() && self.fused.is_none() {
            let fused = self
                .blocks
                .iter()
                .map(Block::fused)
                .collect::<Result<Vec<_>>>()?;
            self.fused = Some(std::sync::Arc::new(fused));
        }
        Ok(())
    }

    /// The configuration this network was built from.
    pub fn config(&self) -> &VitConfig {
        &self.config
    }

    /// Number of stages for freezing: the patch embedding (0), then four groups of blocks.
    pub fn stages(&self) -> usize {
        5
    }

    /// Embeddings of a `[batch, 3, h, w]` normalised image tensor.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_frozen(x, train, 0)
    }

    /// The positions of a `gh × gw` patch grid `[1, gh·gw, D]`, resampled from the trained
    /// grid as the family's library does when the sizes differ.
    fn patch_positions(&self, gh: usize, gw: usize) -> Result<Tensor> {
        let d = self.config.dim;
        let g = self.config.grid;
        let first = usize::from(self.config.class_position);
        let grid = self.pos_embed.narrow(1, first, g * g)?;
        if (gh, gw) == (g, g) {
            return Ok(grid);
        }
        let m = grid_matrix((g, g), (gh, gw), self.config.resample);
        let m = Tensor::from_vec(m, (gh * gw, g * g), self.pos_embed.device())?;
        m.matmul(&grid.reshape((g * g, d))?)?
            .reshape((1, gh * gw, d))
    }

    /// The tokens entering the first block: `[batch, prefix + patches, D]`.
    fn embed_tokens(&self, x: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let (p, d) = (self.config.patch, self.config.dim);
        if c != 3 || h < p || w < p {
            candle_core::bail!("a ViT with {p}-pixel patches needs a 3-channel image of at least {p}×{p}, got {c}×{h}×{w}");
        }
        let (gh, gw) = (h / p, w / p);
        // Unfold non-overlapping patches (pixels past the last whole patch are dropped, as a
        // stride-p convolution does) into rows of (channel, y, x).
        let x = x.narrow(2, 0, gh * p)?.narrow(3, 0, gw * p)?;
        let patches = x
            .reshape((b, c, gh, p, gw, p))?
            .permute((0, 2, 4, 1, 3, 5))?
            .reshape((b * gh * gw, c * p * p))?
            .matmul(&self.patch_weight_t)?;
        let patches = match &self.patch_bias {
            Some(bias) => patches.broadcast_add(bias)?,
            None => patches,
        };
        let mut tokens = patches
            .reshape((b, gh * gw, d))?
            .broadcast_add(&self.patch_positions(gh, gw)?)?;
        let mut prefix = Vec::new();
        if let Some(cls) = &self.cls_token {
            let cls = if self.config.class_position {
                (cls + self.pos_embed.narrow(1, 0, 1)?)?
            } else {
                cls.clone()
            };
            prefix.push(cls.broadcast_as((b, 1, d))?.contiguous()?);
        }
        if let Some(reg) = &self.reg_token {
            prefix.push(
                reg.broadcast_as((b, self.config.registers, d))?
                    .contiguous()?,
            );
        }
        if !prefix.is_empty() {
            prefix.push(tokens);
            tokens = Tensor::cat(&prefix, 1)?;
        }
        Ok(tokens)
    }

    /// [`forward_t`](Self::forward_t) with the first `frozen` stages (the patch embedding =
    /// stage 0, then four equal groups of blocks) fixed: cut from the gradient.
    pub fn forward_frozen(&self, x: &Tensor, train: bool, frozen: usize) -> Result<Tensor> {
        let mut h = self.embed_tokens(x)?;
        if let Some(norm) = &self.norm_pre {
            h = norm.forward_t(&h, train && frozen == 0)?;
        }
        if frozen == 1 {
            h = h.detach();
        }
        if let Some(fused) = self
            .fused
            .as_deref()
            .filter(|_| !train && h.device().is_cpu() && h.dtype() == candle_core::DType::F32)
        {
            let (b, t, d) = h.dims3()?;
            let mut values = h.flatten_all()?.to_vec1::<f32>()?;
            crate::transformer_cpu::forward_blocks(fused, &mut values, b, t, false);
            let h = Tensor::from_vec(values, (b, t, d), h.device())?;
            return self.pool(&h, train);
        }
        let depth = self.blocks.len();
        for (i, block) in self.blocks.iter().enumerate() {
            let stage = 1 + (4 * i) / depth.max(1);
            h = block.forward_t(&h, train && stage >= frozen, false)?;
            let last_of_stage = i + 1 == depth || 1 + (4 * (i + 1)) / depth.max(1) != stage;
            if last_of_stage && stage + 1 == frozen {
                h = h.detach();
            }
        }
        self.pool(&h, train)
    }

    /// Final norm, pooling and projection of the last block's tokens.
    fn pool(&self, h: &Tensor, train: bool) -> Result<Tensor> {
        let config = &self.config;
        let prefix = config.prefix_tokens();
        let tokens = h.dim(1)?;
        let h = match config.final_norm {
            FinalNorm::Tokens => self.norm.forward_t(h, train)?,
            FinalNorm::Pooled => h.clone(),
        };
        let class = || h.narrow(1, 0, 1)?.squeeze(1);
        let mean = || h.narrow(1, prefix, tokens - prefix)?.mean(1);
        let pooled = match (config.pool, &self.attn_pool) {
            (VitPool::Attention, Some(pool)) => pool.forward(&h, train)?,
            (VitPool::Class, _) if config.class_token => class()?,
            (VitPool::ClassAndMean, _) if config.class_token => {
                Tensor::cat(&[class()?, mean()?], 1)?
            }
            _ => mean()?,
        };
        let pooled = match config.final_norm {
            FinalNorm::Pooled => self.norm.forward_t(&pooled, train)?,
            FinalNorm::Tokens => pooled,
        };
        match &self.projection {
            Some(weight) => pooled.matmul(&weight.t()?),
            None => Ok(pooled),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    fn tiny() -> VitConfig {
        VitConfig {
            patch: 8,
            dim: 32,
            depth: 4,
            heads: 2,
            mlp_dim: 64,
            grid: 4,
            registers: 2,
            layer_scale: true,
            ..VitConfig::small_16()
        }
    }

    #[test]
    fn tiny_vit_embeds_at_its_size_and_others_and_trains() {
        let varmap = candle_nn::VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let net = Vit::new(&tiny(), vb).expect("builds");
        let x = Tensor::randn(0f32, 1.0, (2, 3, 32, 32), &Device::Cpu).expect("input");
        let eval = net.forward_t(&x, false).expect("eval");
        let train = net.forward_t(&x, true).expect("train");
        assert_eq!(eval.dims(), &[2, 32]);
        let diff = crate::test_support::max_abs_diff(&train, &eval);
        assert!(diff < 1e-4, "layer norm paths differ by {diff}");
        let bigger = Tensor::randn(0f32, 1.0, (1, 3, 48, 40), &Device::Cpu).expect("input");
        assert_eq!(
            net.forward_t(&bigger, false).expect("eval").dims(),
            &[1, 32]
        );
        let loss = net
            .forward_frozen(&x, true, 2)
            .and_then(|f| f.sqr())
            .and_then(|f| f.sum_all())
            .expect("loss");
        let grads = loss.backward().expect("backward");
        let vars = varmap.data().lock().expect("lock");
        let frozen = vars.get("blocks.0.mlp.fc1.weight").expect("block 0");
        let trained = vars.get("blocks.3.mlp.fc1.weight").expect("block 3");
        assert!(grads.get(frozen.as_tensor()).is_none(), "stage 1 is frozen");
        assert!(grads.get(trained.as_tensor()).is_some(), "stage 4 trains");
        let mut fused_net = net.clone();
        fused_net.prepare_inference(&Device::Cpu).expect("fuse");
        let fused = fused_net.forward_t(&x, false).expect("fused");
        let diff = crate::test_support::max_abs_diff(&fused, &eval);
        assert!(diff < 1e-4, "fused path differs by {diff}");
        for name in [
            "cls_token",
            "reg_token",
            "pos_embed",
            "blocks.1.ls2.gamma",
            "norm.bias",
        ] {
            assert!(vars.contains_key(name), "{name}");
        }
    }
}
