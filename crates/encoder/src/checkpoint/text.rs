//! The text tower beside an image tower in the same file or folder (Hugging Face's CLIP and
//! SigLIP, open_clip's CLIP), renamed into natview's names, with its configuration from its
//! shapes and the config files, and the tokenizer to use: the folder's `tokenizer.json`, its
//! sentencepiece `spiece.model` (SigLIP's, as transformers saves it), or for an open_clip file
//! without one the CLIP BPE vocabulary natview ships (the one inside the open_clip_torch wheel).

use super::layouts::{Family, VitFlavour};
use super::vit_layouts::{batched, block, one, Part, Renamed, HF_CLIP_BLOCK, OPEN_CLIP_BLOCK};
use super::{file_error, find_trunk, folder, infer::Shapes, Source};
use crate::text::{TextConfig, TextReading};
use crate::transformer::{BlockShape, TokenActivation};
use crate::EncoderError;
use candle_core::{Device, Tensor};
use natview_core::locate::Shipped;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The CLIP BPE tokenizer natview ships for open_clip files (see models/).
pub const SHIPPED_CLIP_TOKENIZER: &str = "clip-bpe-tokenizer.json";

/// A text tower found beside an image tower.
pub struct TextFile {
    /// Its shape.
    pub config: TextConfig,
    /// Its tensors under natview's names.
    pub tensors: HashMap<String, Tensor>,
    /// The tokenizer to use.
    pub tokenizer: TokenizerFile,
    /// One line: what it is and where its tokenizer comes from.
    pub summary: String,
}

/// Where a text tower's tokenizer is.
#[derive(Debug, Clone)]
pub enum TokenizerFile {
    /// A `tokenizer.json`.
    Json(PathBuf),
    /// A sentencepiece model with SigLIP's canonicalisation (`tokenizer_config.json`'s
    /// settings beside it).
    SentencePiece {
        /// The `spiece.model`.
        model: PathBuf,
        /// Whether texts are lower-cased first (`do_lower_case`).
        lowercase: bool,
        /// The end-of-text piece appended to every text.
        eos: String,
        /// The piece a text is padded with.
        pad: String,
    },
}

impl TokenizerFile {
    /// The file it reads.
    pub fn path(&self) -> &Path {
        match self {
            Self::Json(path) | Self::SentencePiece { model: path, .. } => path,
        }
    }

    /// A SigLIP folder's sentencepiece tokenizer, as its `tokenizer_config.json` describes it
    /// (transformers' `SiglipTokenizer` defaults where it is silent).
    fn sentencepiece(dir: &Path) -> Self {
        let config = folder::read_json(&dir.join("tokenizer_config.json")).unwrap_or_default();
        let piece = |key: &str, default: &str| {
            let value = &config[key];
            value
                .as_str()
                .or_else(|| value["content"].as_str())
                .unwrap_or(default)
                .to_string()
        };
        Self::SentencePiece {
            model: dir.join("spiece.model"),
            lowercase: config["do_lower_case"].as_bool().unwrap_or(true),
            eos: piece("eos_token", "</s>"),
            pad: piece("pad_token", "</s>"),
        }
    }
}

fn hf_clip_text(key: &str) -> Option<Renamed> {
    if key == "text_projection.weight" {
        return one("projection.weight");
    }
    let rest = key.strip_prefix("text_model.")?;
    match rest {
        "embeddings.token_embedding.weight" => return one("token_embedding"),
        "embeddings.position_embedding.weight" => return batched("positional_embedding"),
        _ => {}
    }
    if let Some(tail) = rest.strip_prefix("final_layer_norm.") {
        return one(format!("norm.{tail}"));
    }
    // SigLIP's projection into the joint space.
    if let Some(tail) = rest.strip_prefix("head.") {
        return one(format!("projection.{tail}"));
    }
    let (index, rest) = rest.strip_prefix("encoder.layers.")?.split_once('.')?;
    block(index, rest, HF_CLIP_BLOCK)
}

fn open_clip_text(key: &str) -> Option<Renamed> {
    match key {
        "token_embedding.weight" => return one("token_embedding"),
        "positional_embedding" => return batched("positional_embedding"),
        "text_projection" => return Some(vec![("projection.weight".into(), Part::Transpose)]),
        "text_projection.weight" => return one("projection.weight"),
        _ => {}
    }
    if let Some(tail) = key.strip_prefix("ln_final.") {
        return one(format!("norm.{tail}"));
    }
    let (index, rest) = key
        .strip_prefix("transformer.resblocks.")?
        .split_once('.')?;
    block(index, rest, OPEN_CLIP_BLOCK)
}

/// What [`open_text`] would open, without reading the tensors: the tower's shape and
/// tokenizer in one line, or why there is none.
pub fn inspect_text(path: &Path, key: Option<&str>) -> Result<String, EncoderError> {
    let source = Source::open(path)?;
    Ok(find_text(path, &source, key)?.summary)
}

/// Opens the text tower of the model in `path` (its image tower chosen as [`super::open`]
/// chooses it); an error saying why when it has none natview reads.
pub fn open_text(
    path: &Path,
    key: Option<&str>,
    device: &Device,
) -> Result<TextFile, EncoderError> {
    let mut source = Source::open(path)?;
    let found = find_text(path, &source, key)?;
    let mut tensors = HashMap::new();
    for (natview, original, part) in found.names {
        let tensor = source
            .load(&original, device)
            .and_then(|t| part.apply(t).map_err(|e| e.to_string()))
            .map_err(|m| file_error(path, format!("tensor `{original}`: {m}")))?;
        tensors.insert(natview, tensor);
    }
    Ok(TextFile {
        config: found.config,
        tensors,
        tokenizer: found.tokenizer,
        summary: found.summary,
    })
}

/// A text tower found in a file: its shape, natview name → name in the file, the tokenizer.
struct FoundText {
    config: TextConfig,
    names: Vec<(String, String, Part)>,
    tokenizer: TokenizerFile,
    summary: String,
}

fn find_text(path: &Path, source: &Source, key: Option<&str>) -> Result<FoundText, EncoderError> {
    let no_tower = |why: String| EncoderError::Checkpoint {
        path: path.to_path_buf(),
        message: format!("no text search with this encoder: {why}"),
    };
    let image = find_trunk(path, source, key)?;
    let (flavour, rename): (VitFlavour, fn(&str) -> Option<Renamed>) = match image.family {
        Family::Vit(f @ VitFlavour::HfClip) => (f, hf_clip_text),
        Family::Vit(f @ VitFlavour::OpenClip) => (f, open_clip_text),
        _ => {
            return Err(no_tower(format!(
                "{} has no text tower (CLIP and SigLIP models have one)",
                image.info.family
            )))
        }
    };
    let shapes = source.shapes();
    let siglip = shapes.keys().any(|k| k.ends_with("text_model.head.weight"));
    let mut renamed: Shapes = HashMap::new();
    let mut names = Vec::new();
    for (name, shape) in shapes.range(image.info.prefix.clone()..) {
        let Some(relative) = name.strip_prefix(&image.info.prefix) else {
            break;
        };
        for (natview, part) in rename(relative).unwrap_or_default() {
            let Some(shape) = part.shape(shape) else {
                return Err(file_error(path, format!("`{name}` has shape {shape:?}")));
            };
            renamed.insert(natview.clone(), shape);
            names.push((natview, name.clone(), part));
        }
    }
    let dir = folder::config_dir(path).unwrap_or_default();
    let configured = TextConfigured::read(&dir, flavour, siglip);
    let config = infer(&renamed, &configured).map_err(no_tower)?;
    let tokenizer = if dir.join("tokenizer.json").is_file() {
        TokenizerFile::Json(dir.join("tokenizer.json"))
    } else if siglip && dir.join("spiece.model").is_file() {
        TokenizerFile::sentencepiece(&dir)
    } else if flavour == VitFlavour::OpenClip {
        TokenizerFile::Json(
            natview_core::locate::find(Shipped::Models, SHIPPED_CLIP_TOKENIZER)
                .map_err(|e| no_tower(e.to_string()))?,
        )
    } else {
        let wanted = if siglip {
            "spiece.model or tokenizer.json"
        } else {
            "tokenizer.json"
        };
        return Err(no_tower(format!(
            "no {wanted} in {} (save the processor with the model)",
            dir.display()
        )));
    };
    let summary = format!(
        "{}; tokenizer {}",
        config.describe(),
        tokenizer.path().display()
    );
    Ok(FoundText {
        config,
        names,
        tokenizer,
        summary,
    })
}

/// What config files say about a text tower.
#[derive(Debug, Default)]
struct TextConfigured {
    heads: Option<usize>,
    activation: Option<TokenActivation>,
    eps: Option<f64>,
    eos: Option<u32>,
    default_activation: Option<TokenActivation>,
    siglip: bool,
}

impl TextConfigured {
    fn read(dir: &Path, flavour: VitFlavour, siglip: bool) -> Self {
        let json = |name: &str| folder::read_json(&dir.join(name));
        let mut out = TextConfigured {
            default_activation: Some(match flavour {
                _ if siglip => TokenActivation::GeluTanh,
                VitFlavour::HfClip => TokenActivation::QuickGelu,
                _ => TokenActivation::Gelu,
            }),
            siglip,
            ..Self::default()
        };
        if let Some(config) = json("config.json") {
            let text = &config["text_config"];
            out.heads = text["num_attention_heads"]
                .as_u64()
                .and_then(|h| usize::try_from(h).ok());
            out.eps = text["layer_norm_eps"].as_f64();
            out.activation = text["hidden_act"].as_str().and_then(folder::activation);
            // transformers pools at the end-of-text id unless it is the legacy 2.
            out.eos = text["eos_token_id"]
                .as_u64()
                .filter(|&id| id != 2)
                .and_then(|id| u32::try_from(id).ok());
        }
        if let Some(config) = json("open_clip_config.json") {
            let model = &config["model_cfg"];
            if model["quick_gelu"].as_bool() == Some(true) {
                out.activation = Some(TokenActivation::QuickGelu);
            }
            out.heads = model["text_cfg"]["heads"]
                .as_u64()
                .and_then(|h| usize::try_from(h).ok())
                .or(out.heads);
        }
        out
    }
}

fn infer(shapes: &Shapes, configured: &TextConfigured) -> Result<TextConfig, String> {
    let get = |k: &str| shapes.get(k).map(Vec::as_slice);
    let (vocab, dim) = match get("token_embedding") {
        Some([v, d]) => (*v, *d),
        _ => return Err("the file has no text tower".into()),
    };
    let context = match get("positional_embedding") {
        Some([1, n, d]) if *d == dim => *n,
        other => return Err(format!("the text positions have shape {other:?}")),
    };
    let depth = (0..)
        .take_while(|i| shapes.contains_key(&format!("blocks.{i}.norm1.weight")))
        .count();
    let mlp_dim = match get("blocks.0.mlp.fc1.weight") {
        Some([h, d]) if *d == dim => *h,
        other => return Err(format!("the text MLP has shape {other:?}")),
    };
    let fused_qkv = shapes.contains_key("blocks.0.attn.qkv.weight");
    let heads = configured
        .heads
        .filter(|h| *h > 0 && dim % h == 0)
        .unwrap_or((dim / 64).max(1));
    Ok(TextConfig {
        vocab,
        context,
        depth,
        blocks: BlockShape {
            dim,
            heads,
            mlp_dim,
            fused_qkv,
            qkv_bias: shapes.contains_key(if fused_qkv {
                "blocks.0.attn.qkv.bias"
            } else {
                "blocks.0.attn.q.bias"
            }),
            layer_scale: shapes.contains_key("blocks.0.ls1.gamma"),
            activation: configured
                .activation
                .or(configured.default_activation)
                .unwrap_or(TokenActivation::Gelu),
            eps: configured
                .eps
                .unwrap_or(if configured.siglip { 1e-6 } else { 1e-5 }),
        },
        projection: match get("projection.weight") {
            Some([p, d]) if *d == dim => Some(*p),
            _ => None,
        },
        eos_token: configured.eos,
        reading: if configured.siglip {
            TextReading::PaddedToContext
        } else {
            TextReading::Causal
        },
        pad_token: None,
    })
}
