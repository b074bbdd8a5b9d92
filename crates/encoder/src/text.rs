//! The text towers of CLIP (Hugging Face's `CLIPTextModel` and open_clip's) and SigLIP, in
//! natview's names: `token_embedding` `[V, D]`, `positional_embedding` `[1, N, D]`, pre-norm
//! blocks (`blocks.i.*`, as the vision transformers'), the final `norm`, and `projection`
//! (`weight` `[P, D]`, SigLIP's `head` also a `bias`) into the space the image tower's
//! embeddings share. CLIP's blocks are causal and a text's embedding is the normalised token
//! at its end-of-text marker, projected; SigLIP's attend both ways over the text padded to the
//! whole context and take the last position.

use super::layers::LayerNorm;
use super::transformer::{Block, BlockShape};
use candle_core::{Device, Result, Tensor};
use candle_nn::VarBuilder;

/// The shape of a text tower.
#[derive(Debug, Clone, PartialEq)]
pub struct TextConfig {
    /// Vocabulary size.
    pub vocab: usize,
    /// Longest token sequence (positions).
    pub context: usize,
    /// Number of blocks.
    pub depth: usize,
    /// The blocks' shape.
    pub(crate) blocks: BlockShape,
    /// Width of the projection into the joint space, when there is one.
    pub projection: Option<usize>,
    /// The end-of-text token whose output is the text's; `None`: the highest id in the
    /// sequence (CLIP's end-of-text token is its vocabulary's last).
    pub eos_token: Option<u32>,
    /// How a text is read: CLIP's causal way or SigLIP's.
    pub reading: TextReading,
    /// The id a text is padded with ([`TextReading::PaddedToContext`]; the tokenizer's).
    pub pad_token: Option<u32>,
}

/// How a tower reads a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextReading {
    /// CLIP: causal attention over the text's own tokens, the output at the end-of-text token.
    Causal,
    /// SigLIP: the text padded (with [`TextConfig::pad_token`]) to the whole context,
    /// attention both ways, the output at the last position.
    PaddedToContext,
}

impl TextConfig {
    /// Dimension of a text embedding.
    pub fn feature_dim(&self) -> usize {
        self.projection.unwrap_or(self.blocks.dim)
    }

    /// "text tower 12×512, 77 tokens, 512-d" (SigLIP's "…, padded to 64 tokens, …").
    pub fn describe(&self) -> String {
        let padded = match self.reading {
            TextReading::Causal => "",
            TextReading::PaddedToContext => "padded to ",
        };
        format!(
            "text tower {}×{}, {padded}{} tokens, {}-d",
            self.depth,
            self.blocks.dim,
            self.context,
            self.feature_dim()
        )
    }
}

/// A CLIP text tower.
#[derive(Debug, Clone)]
pub struct TextTower {
    config: TextConfig,
    token_embedding: Tensor,
    positions: Tensor,
    blocks: Vec<Block>,
    norm: LayerNorm,
    projection: Option<Tensor>,
    projection_bias: Option<Tensor>,
    /// The blocks' fused CPU evaluation form (when the tower is on the CPU).
    fused: Option<Vec<crate::transformer_cpu::FusedTransformerBlock>>,
}

impl TextTower {
    /// Builds the tower, reading its tensors through `vb`.
    pub fn new(config: &TextConfig, vb: VarBuilder) -> Result<Self> {
        let d = config.blocks.dim;
        let small = candle_nn::Init::Randn {
            mean: 0.0,
            stdev: 0.02,
        };
        let mut tower = Self {
            config: config.clone(),
            token_embedding: vb.get_with_hints((config.vocab, d), "token_embedding", small)?,
            positions: vb
                .get_with_hints((1, config.context, d), "positional_embedding", small)?
                .squeeze(0)?,
            blocks: (0..config.depth)
                .map(|i| Block::new(&config.blocks, vb.pp("blocks").pp(i.to_string())))
                .collect::<Result<_>>()?,
            norm: LayerNorm::new(d, config.blocks.eps, vb.pp("norm"))?,
            projection: config
                .projection
                .map(|p| {
                    vb.pp("projection").get_with_hints(
                        (p, d),
                        "weight",
                        candle_nn::init::DEFAULT_KAIMING_NORMAL,
                    )
                })
                .transpose()?,
            projection_bias: match config.projection {
                Some(p) if vb.contains_tensor("projection.bias") => {
                    Some(vb.pp("projection").get(p, "bias")?)
                }
                _ => None,
            },
            fused: None,
        };
        if tower.device().is_cpu() && super::conv::own_cpu_kernels() {
            tower.fused = Some(
                tower
                    .blocks
                    .iter()
                    .map(Block::fused)
                    .collect::<Result<Vec<_>>>()?,
            );
        }
        Ok(tower)
    }

    /// The configuration.
    pub fn config(&self) -> &TextConfig {
        &self.config
    }

    /// The device its tensors are on.
    pub fn device(&self) -> &Device {
        self.token_embedding.device()
    }

    /// The embedding (not normalised) of one token sequence (with its start and end markers);
    /// a sequence longer than the context keeps its first tokens and ends in its last.
    pub fn embed_ids(&self, ids: &[u32]) -> Result<Tensor> {
        let context = self.config.context;
        let mut ids: Vec<u32> = if ids.len() > context {
            let mut kept = ids[..context - 1].to_vec();
            kept.extend(ids.last());
            kept
        } else {
            ids.to_vec()
        };
        let causal = match self.config.reading {
            TextReading::Causal => true,
            TextReading::PaddedToContext => {
                let Some(pad) = self.config.pad_token else {
                    candle_core::bail!("no padding token for this text tower");
                };
                ids.resize(context, pad);
                false
            }
        };
        if ids.is_empty() {
            candle_core::bail!("no tokens");
        }
        if let Some(&bad) = ids.iter().find(|&&id| id as usize >= self.config.vocab) {
            candle_core::bail!(
                "token id {bad} is outside the vocabulary of {}",
                self.config.vocab
            );
        }
        let n = ids.len();
        let index = Tensor::new(ids.as_slice(), self.device())?;
        let mut x = self
            .token_embedding
            .index_select(&index, 0)?
            .add(&self.positions.narrow(0, 0, n)?)?
            .unsqueeze(0)?;
        match &self.fused {
            Some(fused) => {
                let d = self.config.blocks.dim;
                let mut values = x.flatten_all()?.to_vec1::<f32>()?;
                crate::transformer_cpu::forward_blocks(fused, &mut values, 1, n, causal);
                x = Tensor::from_vec(values, (1, n, d), self.device())?;
            }
            None => {
                for block in &self.blocks {
                    x = block.forward_t(&x, false, causal)?;
                }
            }
        }
        let x = self.norm.forward_t(&x, false)?.squeeze(0)?;
        let eos = match (self.config.reading, self.config.eos_token) {
            (TextReading::PaddedToContext, _) => Some(n - 1),
            (TextReading::Causal, Some(eos)) => ids.iter().position(|&id| id == eos),
            (TextReading::Causal, None) => None,
        }
        .unwrap_or_else(|| {
            ids.iter()
                .enumerate()
                .max_by_key(|(i, &id)| (id, std::cmp::Reverse(*i)))
                .map_or(0, |(i, _)| i)
        });
        let pooled = x.narrow(0, eos, 1)?;
        let out = match &self.projection {
            Some(weight) => pooled.matmul(&weight.t()?)?,
            None => pooled,
        };
        let out = match &self.projection_bias {
            Some(bias) => out.broadcast_add(bias)?,
            None => out,
        };
        out.squeeze(0)
    }
}
