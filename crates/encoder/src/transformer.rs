//! The pieces every transformer natview runs is made of (the vision transformers' and the
//! CLIP text towers' blocks): multi-head attention (optionally causal), the two-layer MLP and
//! the pre-norm block with optional layer scale, in timm's names (`norm1`, `attn.qkv` or
//! `attn.{q,k,v}`, `attn.proj`, `ls1.gamma`, `norm2`, `mlp.fc1`, `mlp.fc2`, `ls2.gamma`).

use super::layers::{LayerNorm, Linear};
use candle_core::{Result, Tensor, D};
use candle_nn::VarBuilder;

/// The non-linearity of a transformer's MLPs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TokenActivation {
    /// GELU with erf (PyTorch's `nn.GELU()`).
    Gelu,
    /// GELU's tanh approximation (`gelu_pytorch_tanh`, SigLIP).
    GeluTanh,
    /// `x · σ(1.702 x)` (OpenAI's CLIP).
    QuickGelu,
}

impl TokenActivation {
    fn apply(self, x: &Tensor) -> Result<Tensor> {
        match self {
            TokenActivation::Gelu => x.gelu_erf(),
            TokenActivation::GeluTanh => x.gelu(),
            TokenActivation::QuickGelu => x * candle_nn::ops::sigmoid(&(x * 1.702)?)?,
        }
    }

    /// Its name in summaries.
    pub fn name(self) -> &'static str {
        match self {
            TokenActivation::Gelu => "GELU",
            TokenActivation::GeluTanh => "GELU (tanh)",
            TokenActivation::QuickGelu => "QuickGELU",
        }
    }
}

/// The shape of a transformer's blocks.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BlockShape {
    /// Token width.
    pub dim: usize,
    /// Attention heads.
    pub heads: usize,
    /// MLP hidden width.
    pub mlp_dim: usize,
    /// One `attn.qkv` projection, or three.
    pub fused_qkv: bool,
    /// Whether q, k and v have biases.
    pub qkv_bias: bool,
    /// Whether the branches are scaled (`ls1.gamma`, `ls2.gamma`).
    pub layer_scale: bool,
    /// The MLP's non-linearity.
    pub activation: TokenActivation,
    /// LayerNorm epsilon.
    pub eps: f64,
}

/// Multi-head self-attention with its input and output projections.
#[derive(Debug, Clone)]
pub(crate) struct Attention {
    /// `[q; k; v]` in one projection, or three.
    qkv: Qkv,
    proj: Linear,
    heads: usize,
}

#[derive(Debug, Clone)]
enum Qkv {
    Fused(Linear),
    Separate([Linear; 3]),
}

impl Attention {
    fn new(config: &BlockShape, vb: VarBuilder) -> Result<Self> {
        let d = config.dim;
        let qkv = if config.fused_qkv {
            Qkv::Fused(Linear::with_bias(d, 3 * d, config.qkv_bias, vb.pp("qkv"))?)
        } else {
            let one = |name: &str| Linear::with_bias(d, d, config.qkv_bias, vb.pp(name));
            Qkv::Separate([one("q")?, one("k")?, one("v")?])
        };
        Ok(Self {
            qkv,
            proj: Linear::new(d, d, vb.pp("proj"))?,
            heads: config.heads,
        })
    }

    /// `[batch, tokens, D]` → `[batch, tokens, D]`.
    fn forward(&self, x: &Tensor, causal: bool) -> Result<Tensor> {
        let (b, t, d) = x.dims3()?;
        let heads = |x: Tensor| {
            x.reshape((b, t, self.heads, d / self.heads))?
                .transpose(1, 2)?
                .contiguous()
        };
        let (q, k, v) = match &self.qkv {
            Qkv::Fused(linear) => {
                let qkv = linear.forward(x)?;
                (
                    heads(qkv.narrow(2, 0, d)?)?,
                    heads(qkv.narrow(2, d, d)?)?,
                    heads(qkv.narrow(2, 2 * d, d)?)?,
                )
            }
            Qkv::Separate([q, k, v]) => (
                heads(q.forward(x)?)?,
                heads(k.forward(x)?)?,
                heads(v.forward(x)?)?,
            ),
        };
        let out = attend(&q, &k, &v, causal)?;
        self.proj.forward(&out.transpose(1, 2)?.reshape((b, t, d))?)
    }
}

/// Scaled dot-product attention of `[b, h, tq, hd]` queries over `[b, h, tk, hd]` keys and
/// values; `causal`: query i sees keys 0..=i only.
pub(crate) fn attend(q: &Tensor, k: &Tensor, v: &Tensor, causal: bool) -> Result<Tensor> {
    let hd = q.dim(D::Minus1)?;
    let mut scores = (q.matmul(&k.t()?)? * (hd as f64).powf(-0.5))?;
    if causal {
        let (tq, tk) = (q.dim(2)?, k.dim(2)?);
        let mask: Vec<f32> = (0..tq)
            .flat_map(|i| (0..tk).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
            .collect();
        let mask = Tensor::from_vec(mask, (tq, tk), q.device())?;
        scores = scores.broadcast_add(&mask)?;
    }
    candle_nn::ops::softmax_last_dim(&scores)?.matmul(v)
}

/// A transformer block's two-layer MLP.
#[derive(Debug, Clone)]
pub(crate) struct Mlp {
    fc1: Linear,
    fc2: Linear,
    activation: TokenActivation,
}

impl Mlp {
    pub(crate) fn new(
        dim: usize,
        hidden: usize,
        activation: TokenActivation,
        vb: VarBuilder,
    ) -> Result<Self> {
        Ok(Self {
            fc1: Linear::new(dim, hidden, vb.pp("fc1"))?,
            fc2: Linear::new(hidden, dim, vb.pp("fc2"))?,
            activation,
        })
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.fc2
            .forward(&self.activation.apply(&self.fc1.forward(x)?)?)
    }
}

/// A pre-norm transformer block `x + γ₁·attn(LN(x))`, then `+ γ₂·mlp(LN(·))`.
#[derive(Debug, Clone)]
pub(crate) struct Block {
    norm1: LayerNorm,
    attn: Attention,
    ls1: Option<Tensor>,
    norm2: LayerNorm,
    mlp: Mlp,
    ls2: Option<Tensor>,
}

impl Block {
    pub(crate) fn new(config: &BlockShape, vb: VarBuilder) -> Result<Self> {
        let d = config.dim;
        let scale = |name: &str| -> Result<Option<Tensor>> {
            config
                .layer_scale
                .then(|| vb.pp(name).get_with_hints(d, "gamma", candle_nn::init::ONE))
                .transpose()
        };
        Ok(Self {
            norm1: LayerNorm::new(d, config.eps, vb.pp("norm1"))?,
            attn: Attention::new(config, vb.pp("attn"))?,
            ls1: scale("ls1")?,
            norm2: LayerNorm::new(d, config.eps, vb.pp("norm2"))?,
            mlp: Mlp::new(d, config.mlp_dim, config.activation, vb.pp("mlp"))?,
            ls2: scale("ls2")?,
        })
    }

    /// This block's values for the fused CPU evaluation path.
    pub(crate) fn fused(&self) -> Result<crate::transformer_cpu::FusedTransformerBlock> {
        let vec = |t: &Tensor| t.flatten_all()?.to_vec1::<f32>();
        let norm = |n: &LayerNorm| -> Result<(Vec<f32>, Vec<f32>)> {
            Ok((vec(&n.weight)?, vec(&n.bias)?))
        };
        let dim = self.norm1.weight.dim(0)?;
        let qkv = match &self.attn.qkv {
            Qkv::Fused(linear) => linear.values_transposed()?,
            Qkv::Separate(parts) => {
                let weight = Tensor::cat(
                    &[&parts[0].weight_t, &parts[1].weight_t, &parts[2].weight_t],
                    1,
                )?;
                let mut bias = Vec::with_capacity(3 * dim);
                for part in parts {
                    bias.extend(part.bias_values()?);
                }
                (vec(&weight.contiguous()?)?, bias)
            }
        };
        let scale = |s: &Option<Tensor>| match s {
            Some(gamma) => vec(gamma),
            None => Ok(vec![1.0; dim]),
        };
        Ok(crate::transformer_cpu::FusedTransformerBlock {
            dim,
            heads: self.attn.heads,
            eps: self.norm1.eps as f32,
            activation: self.mlp.activation,
            ln1: norm(&self.norm1)?,
            ln2: norm(&self.norm2)?,
            qkv,
            proj: self.attn.proj.values_transposed()?,
            fc1: self.mlp.fc1.values_transposed()?,
            fc2: self.mlp.fc2.values_transposed()?,
            ls1: scale(&self.ls1)?,
            ls2: scale(&self.ls2)?,
        })
    }

    /// The block on `[batch, tokens, D]`; `causal` masks later tokens (text towers).
    pub(crate) fn forward_t(&self, x: &Tensor, train: bool, causal: bool) -> Result<Tensor> {
        let scaled = |h: Tensor, scale: &Option<Tensor>| match scale {
            Some(gamma) => h.broadcast_mul(gamma),
            None => Ok(h),
        };
        let h = self
            .attn
            .forward(&self.norm1.forward_t(x, train)?, causal)?;
        let x = (x + scaled(h, &self.ls1)?)?;
        let h = self.mlp.forward(&self.norm2.forward_t(&x, train)?)?;
        &x + scaled(h, &self.ls2)?
    }
}
