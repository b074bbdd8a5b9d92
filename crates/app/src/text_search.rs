//! Text search in the app: a text typed in the Gallery is embedded by the encoder's text tower
//! on a worker (the tower is opened once per encoder and kept), then ranks the dataset through
//! the index; the best matches show in the Gallery with their scores and in the Neighbours
//! panel.

use crate::{Session, NEIGHBOURS_K};
use natview_encoder::{choose_device, EncoderSpec, TextEncoder};
use natview_index::Neighbour;
use std::sync::Arc;

/// Matches shown in the Gallery for a text.
pub const TEXT_MATCHES_K: usize = 100;

/// A text embedded for a query, with the text encoder that did it (kept for the next one).
pub struct TextQuery {
    /// The text.
    pub text: String,
    /// Its embedding, in the image embeddings' space.
    pub vector: Vec<f32>,
    /// The encoder's text tower and tokenizer.
    pub encoder: Arc<TextEncoder>,
    /// The encoder spec it belongs to.
    pub spec: EncoderSpec,
}

/// Embeds `text` with `spec`'s text tower (`cached` when it is that spec's).
pub fn embed_text_query(
    text: String,
    spec: &EncoderSpec,
    cached: Option<(EncoderSpec, Arc<TextEncoder>)>,
) -> Result<TextQuery, String> {
    let encoder = match cached {
        Some((cached_spec, encoder)) if cached_spec == *spec => encoder,
        _ => {
            let Some(weights) = spec.weights.as_deref() else {
                return Err(TextEncoder::availability(spec)
                    .err()
                    .unwrap_or_else(|| "this encoder has no text tower".into()));
            };
            Arc::new(
                TextEncoder::open(weights, spec.weights_key.as_deref(), &choose_device(true))
                    .map_err(|e| e.to_string())?,
            )
        }
    };
    let vector = encoder
        .embed(&[text.as_str()])
        .map_err(|e| e.to_string())?
        .pop()
        .ok_or("the text tower gave no embedding")?;
    Ok(TextQuery {
        text,
        vector,
        encoder,
        spec: spec.clone(),
    })
}

/// The dataset ranked by a text.
#[derive(Debug, Clone, PartialEq)]
pub struct TextMatches {
    /// The text.
    pub text: String,
    /// The best matches, best first, with their cosine similarity to the text.
    pub matches: Vec<Neighbour>,
    /// Search time in milliseconds.
    pub search_ms: f64,
}

impl Session {
    /// Ranks the dataset by a text's embedding: the best [`TEXT_MATCHES_K`] for the Gallery,
    /// the first [`NEIGHBOURS_K`] as the Neighbours panel's selection.
    pub fn select_text(&mut self, text: String, vector: &[f32]) -> Result<(), String> {
        let started = std::time::Instant::now();
        let index = self
            .index
            .as_ref()
            .ok_or_else(|| "the dataset is still being embedded".to_string())?;
        if vector.len() != self.set.matrix.dim {
            return Err(format!(
                "the text tower gives {}-d vectors but the images' embeddings are {}-d",
                vector.len(),
                self.set.matrix.dim
            ));
        }
        let matches = index
            .search(vector, TEXT_MATCHES_K, None)
            .map_err(|e| e.to_string())?;
        let search_ms = started.elapsed().as_secs_f64() * 1000.0;
        self.selection = Some(crate::Selection {
            query: crate::Query::Text { text: text.clone() },
            neighbours: matches.iter().take(NEIGHBOURS_K).cloned().collect(),
            search_ms,
            source: "HNSW".into(),
        });
        self.text_matches = Some(TextMatches {
            text,
            matches,
            search_ms,
        });
        Ok(())
    }
}
