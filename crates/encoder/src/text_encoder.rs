//! Text queries for an image encoder with a text tower (CLIP, SigLIP): the model's tokenizer and
//! text tower, giving unit vectors in the space the image embeddings live in, so that a text
//! ranks images by cosine similarity.

use super::checkpoint::{self, TokenizerFile};
use super::sentencepiece::SentencePiece;
use super::text::{TextReading, TextTower};
use super::EncoderError;
use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use natview_core::linalg::l2_normalise;
use std::path::{Path, PathBuf};

/// A ready-to-run text encoder.
pub struct TextEncoder {
    tower: TextTower,
    tokenizer: Tokenizer,
    tokenizer_path: PathBuf,
    summary: String,
}

/// A model's tokenizer: a `tokenizer.json` or a sentencepiece model.
enum Tokenizer {
    Json(Box<tokenizers::Tokenizer>),
    SentencePiece(Box<SentencePiece>),
}

impl TextEncoder {
    /// The text tower and tokenizer of the model in `weights` (`key` as `--weights-key`); an
    /// error saying why when it has none.
    pub fn open(weights: &Path, key: Option<&str>, device: &Device) -> Result<Self, EncoderError> {
        let mut file = checkpoint::open_text(weights, key, device)?;
        let unreadable = |path: &Path, message: String| EncoderError::WeightsFile {
            path: path.to_path_buf(),
            message,
        };
        let (tokenizer, tokenizer_path) = match file.tokenizer {
            TokenizerFile::Json(path) => {
                let json = tokenizers::Tokenizer::from_file(&path).map_err(|e| {
                    unreadable(&path, format!("not a tokenizer.json natview reads: {e}"))
                })?;
                (Tokenizer::Json(Box::new(json)), path)
            }
            TokenizerFile::SentencePiece {
                model,
                lowercase,
                eos,
                pad,
            } => {
                let sp = SentencePiece::open(&model, lowercase, Some(&eos))
                    .map_err(|e| unreadable(&model, e))?;
                if file.config.reading == TextReading::PaddedToContext {
                    file.config.pad_token = Some(sp.piece_id(&pad).ok_or_else(|| {
                        unreadable(&model, format!("its padding piece {pad:?} is not in it"))
                    })?);
                }
                (Tokenizer::SentencePiece(Box::new(sp)), model)
            }
        };
        let vb = VarBuilder::from_tensors(file.tensors, DType::F32, device);
        let tower =
            TextTower::new(&file.config, vb).map_err(|e| EncoderError::WeightsMismatch {
                path: weights.to_path_buf(),
                model: "text tower".into(),
                message: e.to_string(),
            })?;
        Ok(Self {
            tower,
            tokenizer,
            tokenizer_path,
            summary: file.summary,
        })
    }

    /// Whether the encoder `spec` describes can rank images by text: its text tower and
    /// tokenizer in one line, or why not (in words, for the app's search box).
    pub fn availability(spec: &crate::EncoderSpec) -> Result<String, String> {
        match (&spec.weights, spec.model) {
            (Some(path), crate::ModelKind::Checkpoint) => {
                checkpoint::inspect_text(path, spec.weights_key.as_deref()).map_err(|e| {
                    let text = e.to_string();
                    text.split_once("no text search with this encoder: ")
                        .map_or(text.clone(), |(_, why)| why.to_string())
                })
            }
            _ => Err(format!(
                "{} has no text tower (CLIP and SigLIP models have one: File → Open encoder…)",
                spec.family()
            )),
        }
    }

    /// What it is, in one line ("text tower 12×512, 77 tokens, 512-d; tokenizer …").
    pub fn summary(&self) -> &str {
        &self.summary
    }

    /// Dimension of a text embedding (the image embeddings' in the joint space).
    pub fn dim(&self) -> usize {
        self.tower.config().feature_dim()
    }

    /// The token ids of `text`, with the start and end markers.
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>, EncoderError> {
        match &self.tokenizer {
            Tokenizer::Json(json) => json
                .encode(text, true)
                .map(|encoding| encoding.get_ids().to_vec())
                .map_err(|e| e.to_string()),
            Tokenizer::SentencePiece(sp) => sp.encode(text),
        }
        .map_err(|e| EncoderError::WeightsFile {
            path: self.tokenizer_path.clone(),
            message: format!("cannot tokenize {text:?}: {e}"),
        })
    }

    /// Unit-length embeddings of `texts`.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EncoderError> {
        texts
            .iter()
            .map(|text| {
                let ids = self.tokenize(text)?;
                let mut row = self.tower.embed_ids(&ids)?.to_vec1::<f32>()?;
                l2_normalise(&mut row);
                Ok(row)
            })
            .collect()
    }
}
