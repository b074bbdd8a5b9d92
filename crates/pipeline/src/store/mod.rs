//! The embedding files of a workspace: the finished matrix with what made it
//! (`embeddings.<model>.safetensors`) and the chunks of a run still under way, from which a
//! killed run resumes.

mod embeddings;
mod partial;

pub use embeddings::{EmbeddingStore, EmbeddingsMeta};
pub use partial::{read_chunk, Chunk, ChunkHeader, PartialRun, RunState};
