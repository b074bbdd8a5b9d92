//! A sentencepiece tokenizer (`spiece.model`, as SigLIP's and T5's folders carry it, with no
//! `tokenizer.json`): the model file's protocol-buffer message read here (pieces, scores, the
//! unknown piece, the normaliser's precompiled character map), segmented by the `tokenizers`
//! crate's unigram model exactly as sentencepiece segments, and SigLIP's text canonicalisation
//! before it (lower case, ASCII punctuation removed, runs of white space collapsed), as
//! transformers' `SiglipTokenizer` does. The end-of-text id follows the pieces.

use std::path::Path;
use tokenizers::models::unigram::Unigram;
use tokenizers::normalizers::precompiled::Precompiled;
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::Tokenizer;

/// A piece's kind in a sentencepiece model (its `Type` enumeration).
const PIECE_UNKNOWN: u64 = 2;
/// sentencepiece's `ModelType::UNIGRAM`.
const MODEL_UNIGRAM: u64 = 1;

/// A sentencepiece unigram tokenizer with SigLIP's canonicalisation.
pub struct SentencePiece {
    tokenizer: Tokenizer,
    lowercase: bool,
    eos: Option<u32>,
}

/// What a `spiece.model` holds that tokenising needs.
#[derive(Debug, Default)]
struct ModelProto {
    pieces: Vec<(String, f64, u64)>,
    model_type: Option<u64>,
    byte_fallback: bool,
    charsmap: Vec<u8>,
}

impl SentencePiece {
    /// Reads `model` (a `spiece.model`); `lowercase` as the folder's tokenizer config says
    /// (`do_lower_case`), `eos` the end-of-text piece appended to every text (`</s>`).
    pub fn open(model: &Path, lowercase: bool, eos: Option<&str>) -> Result<Self, String> {
        let bytes = std::fs::read(model).map_err(|e| e.to_string())?;
        let proto = parse_model(&bytes)?;
        if proto.model_type.is_some_and(|t| t != MODEL_UNIGRAM) {
            return Err(format!(
                "a sentencepiece model of type {} (natview reads unigram models)",
                proto.model_type.unwrap_or_default()
            ));
        }
        let unk = proto
            .pieces
            .iter()
            .position(|(_, _, kind)| *kind == PIECE_UNKNOWN);
        let eos = match eos {
            Some(eos) => Some(
                proto
                    .pieces
                    .iter()
                    .position(|(piece, _, _)| piece == eos)
                    .and_then(|i| u32::try_from(i).ok())
                    .ok_or_else(|| format!("its end-of-text piece {eos:?} is not in the model"))?,
            ),
            None => None,
        };
        let vocab = proto
            .pieces
            .into_iter()
            .map(|(piece, score, _)| (piece, score))
            .collect();
        let model = Unigram::from(vocab, unk, proto.byte_fallback).map_err(|e| e.to_string())?;
        let mut tokenizer = Tokenizer::new(model);
        if !proto.charsmap.is_empty() {
            let precompiled = Precompiled::from(&proto.charsmap)
                .map_err(|e| format!("its normaliser's character map: {e}"))?;
            tokenizer
                .with_normalizer(Some(precompiled))
                .map_err(|e| e.to_string())?;
        }
        tokenizer.with_pre_tokenizer(Some(Metaspace::new('▁', PrependScheme::Always, true)));
        Ok(Self {
            tokenizer,
            lowercase,
            eos,
        })
    }

    /// The token ids of `text`, ending in the end-of-text id.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        let text = canonicalise(text, self.lowercase);
        let mut ids = if text.is_empty() {
            Vec::new()
        } else {
            self.tokenizer
                .encode(text.as_str(), false)
                .map_err(|e| e.to_string())?
                .get_ids()
                .to_vec()
        };
        ids.extend(self.eos);
        Ok(ids)
    }

    /// The id of `piece`, if the model has it.
    pub fn piece_id(&self, piece: &str) -> Option<u32> {
        self.tokenizer.token_to_id(piece)
    }
}

/// SigLIP's canonical text (big_vision's prompt canonicalisation): lower case (when asked),
/// ASCII punctuation removed, white space runs made one space, trimmed.
fn canonicalise(text: &str, lowercase: bool) -> String {
    let text = if lowercase {
        text.to_lowercase()
    } else {
        text.to_string()
    };
    let kept: String = text.chars().filter(|c| !c.is_ascii_punctuation()).collect();
    kept.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A protocol-buffer field: its number and value.
enum Field<'a> {
    Varint(u64),
    Fixed32(u32),
    Bytes(&'a [u8]),
}

/// The fields of one protocol-buffer message, in order.
fn fields(mut bytes: &[u8]) -> Result<Vec<(u64, Field<'_>)>, String> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let key = varint(&mut bytes)?;
        let (number, wire) = (key >> 3, key & 7);
        let value = match wire {
            0 => Field::Varint(varint(&mut bytes)?),
            1 => {
                take(&mut bytes, 8)?;
                continue;
            }
            2 => {
                let len = usize::try_from(varint(&mut bytes)?).map_err(|e| e.to_string())?;
                Field::Bytes(take(&mut bytes, len)?)
            }
            5 => {
                let raw = take(&mut bytes, 4)?;
                Field::Fixed32(u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]))
            }
            other => return Err(format!("not a sentencepiece model (wire type {other})")),
        };
        out.push((number, value));
    }
    Ok(out)
}

fn varint(bytes: &mut &[u8]) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes
            .split_first()
            .ok_or("not a sentencepiece model (truncated)")?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("not a sentencepiece model (bad varint)".into())
}

fn take<'a>(bytes: &mut &'a [u8], len: usize) -> Result<&'a [u8], String> {
    if bytes.len() < len {
        return Err("not a sentencepiece model (truncated)".into());
    }
    let (head, rest) = bytes.split_at(len);
    *bytes = rest;
    Ok(head)
}

/// Reads `ModelProto`: pieces (1), trainer spec (2: model type 3, byte fallback 35) and
/// normaliser spec (3: precompiled character map 2).
fn parse_model(bytes: &[u8]) -> Result<ModelProto, String> {
    let mut proto = ModelProto::default();
    for (number, value) in fields(bytes)? {
        let Field::Bytes(message) = value else {
            continue;
        };
        match number {
            1 => {
                let (mut piece, mut score, mut kind) = (None, 0.0, 1);
                for (n, v) in fields(message)? {
                    match (n, v) {
                        (1, Field::Bytes(text)) => {
                            piece = Some(String::from_utf8_lossy(text).into_owned())
                        }
                        (2, Field::Fixed32(bits)) => score = f64::from(f32::from_bits(bits)),
                        (3, Field::Varint(k)) => kind = k,
                        _ => {}
                    }
                }
                let piece = piece.ok_or("not a sentencepiece model (a piece without text)")?;
                proto.pieces.push((piece, score, kind));
            }
            2 => {
                for (n, v) in fields(message)? {
                    match (n, v) {
                        (3, Field::Varint(t)) => proto.model_type = Some(t),
                        (35, Field::Varint(b)) => proto.byte_fallback = b != 0,
                        _ => {}
                    }
                }
            }
            3 => {
                for (n, v) in fields(message)? {
                    if let (2, Field::Bytes(map)) = (n, v) {
                        proto.charsmap = map.to_vec();
                    }
                }
            }
            _ => {}
        }
    }
    if proto.pieces.is_empty() {
        return Err("not a sentencepiece model (no pieces)".into());
    }
    Ok(proto)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonicalises_as_siglip_does() {
        assert_eq!(
            canonicalise("  Two DOGS,\tplaying!  ", true),
            "two dogs playing"
        );
        assert_eq!(canonicalise("it's (grey)", false), "its grey");
        assert_eq!(canonicalise("café — naïve", true), "café — naïve");
    }

    #[test]
    fn refuses_what_is_not_a_model() {
        assert!(parse_model(b"").is_err());
        assert!(parse_model(&[0x0a, 0x05, 0x0a]).is_err());
        assert!(parse_model(&[0x0f]).is_err());
    }

    #[test]
    fn reads_pieces_scores_and_kinds() {
        // One piece: text "a", score 0.5, kind UNKNOWN.
        let mut piece = vec![0x0a, 0x01, b'a', 0x15];
        piece.extend(0.5f32.to_le_bytes());
        piece.extend([0x18, 0x02]);
        let mut model = vec![0x0a, piece.len() as u8];
        model.extend(&piece);
        let proto = parse_model(&model).expect("parses");
        assert_eq!(proto.pieces, vec![("a".to_string(), 0.5, 2)]);
    }
}
