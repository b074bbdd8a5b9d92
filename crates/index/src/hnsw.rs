//! The HNSW index: natview's own graph (`graph.rs`) with cosine similarity on unit vectors,
//! built in parallel, saved next to its parameters and the fingerprint of the embeddings it was
//! built from.

use super::graph::{Graph, GraphParams, SharedRows};
use super::{IndexError, Neighbour};
use natview_core::linalg::Matrix;
use natview_core::workspace::{write_atomic, write_json_atomic};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// HNSW construction and search parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HnswParams {
    /// Links per node and layer (M).
    pub max_connections: usize,
    /// Candidate list size while building.
    pub ef_construction: usize,
    /// Default candidate list size while searching.
    pub ef_search: usize,
}

impl Default for HnswParams {
    fn default() -> Self {
        Self {
            max_connections: 16,
            ef_construction: 200,
            ef_search: 64,
        }
    }
}

impl HnswParams {
    /// Checks the parameters once, before any work.
    pub fn check(self) -> Result<Self, IndexError> {
        if !(2..=255).contains(&self.max_connections) {
            return Err(IndexError::Params(format!(
                "max_connections must be in 2..=255, got {}",
                self.max_connections
            )));
        }
        if self.ef_construction == 0 || self.ef_search == 0 {
            return Err(IndexError::Params("ef values must be positive".into()));
        }
        Ok(self)
    }
}

/// What is saved beside the graph file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct IndexManifest {
    /// 1 = natview's own graph file (`<basename>.graph`); absent (0) = an hnsw_rs dump written by
    /// earlier natview builds (rebuilt on open).
    #[serde(default)]
    format: u32,
    params: HnswParams,
    embeddings_fingerprint: String,
    count: usize,
    dim: usize,
}

/// The graph file format written by this version.
const FORMAT: u32 = 1;

/// An HNSW index over unit vectors, searched by cosine similarity.
pub struct NeighbourIndex {
    graph: Graph,
    params: HnswParams,
}

/// Most vectors one index holds: node ids are `u32`.
pub const MAX_ROWS: usize = u32::MAX as usize;

/// Rows inserted between two progress reports while building.
pub const BUILD_CHUNK: usize = 2048;

impl NeighbourIndex {
    /// Builds the index over the rows of `embeddings` (ids = row numbers), in parallel.
    pub fn build(embeddings: &Matrix, params: HnswParams) -> Result<Self, IndexError> {
        Self::build_with_progress(embeddings, params, &mut |_| true)
    }

    /// Builds the index in chunks of [`BUILD_CHUNK`] rows (each inserted in parallel), calling
    /// `after_chunk(rows_done)` between chunks; returning `false` from it cancels the build.
    pub fn build_with_progress(
        embeddings: &Matrix,
        params: HnswParams,
        after_chunk: &mut dyn FnMut(usize) -> bool,
    ) -> Result<Self, IndexError> {
        let params = params.check()?;
        // Node ids are u32 in the graph (and its file): refuse before allocating anything.
        if embeddings.rows > MAX_ROWS {
            return Err(IndexError::TooManyRows {
                rows: embeddings.rows,
                max: MAX_ROWS,
            });
        }
        let graph = Graph::build(
            embeddings,
            GraphParams {
                m: params.max_connections,
                ef_construction: params.ef_construction,
                seed: 0,
            },
            BUILD_CHUNK,
            after_chunk,
        )
        .ok_or(IndexError::Cancelled)?;
        Ok(Self { graph, params })
    }

    /// Number of indexed vectors.
    pub fn len(&self) -> usize {
        self.graph.len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.graph.is_empty()
    }

    /// Dimension of the indexed vectors.
    pub fn dim(&self) -> usize {
        self.graph.dim()
    }

    /// The parameters it was built with.
    pub fn params(&self) -> HnswParams {
        self.params
    }

    /// The `k` nearest items to a unit-length `query`; `ef` defaults to the index's `ef_search`
    /// and is raised to at least `k`.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: Option<usize>,
    ) -> Result<Vec<Neighbour>, IndexError> {
        if query.len() != self.dim() {
            return Err(IndexError::Dimension {
                expected: self.dim(),
                got: query.len(),
            });
        }
        let ef = ef.unwrap_or(self.params.ef_search).max(k);
        Ok(self
            .graph
            .search(query, k, ef)
            .into_iter()
            .map(|(id, similarity)| Neighbour { id, similarity })
            .collect())
    }

    /// The `k` nearest other items to item `id` (whose vector is `query`).
    pub fn search_excluding(
        &self,
        query: &[f32],
        id: usize,
        k: usize,
        ef: Option<usize>,
    ) -> Result<Vec<Neighbour>, IndexError> {
        let mut found = self.search(query, k + 1, ef.map(|e| e.max(k + 1)))?;
        found.retain(|n| n.id != id);
        found.truncate(k);
        Ok(found)
    }

    /// Saves the graph as `<dir>/<basename>.graph` plus `<basename>.json`. The old parameter
    /// file is removed first and the new one written last (each through a temporary file and a
    /// rename), so a crash in between leaves no index that claims to match.
    pub fn save(
        &self,
        dir: &Path,
        basename: &str,
        embeddings_fingerprint: &str,
    ) -> Result<(), IndexError> {
        let io_error = |path: &Path, message: String| IndexError::Io {
            path: path.to_path_buf(),
            message,
        };
        let manifest_path = manifest_path(dir, basename);
        if manifest_path.exists() {
            std::fs::remove_file(&manifest_path)
                .map_err(|e| io_error(&manifest_path, e.to_string()))?;
        }
        let graph_path = graph_path(dir, basename);
        write_atomic(&graph_path, &self.graph.to_bytes())
            .map_err(|e| io_error(&graph_path, format!("cannot write index: {e}")))?;
        // hnsw_rs dumps of earlier versions are no longer read.
        for ext in ["hnsw.data", "hnsw.graph"] {
            let _ = std::fs::remove_file(dir.join(format!("{basename}.{ext}")));
        }
        let manifest = IndexManifest {
            format: FORMAT,
            params: self.params,
            embeddings_fingerprint: embeddings_fingerprint.to_string(),
            count: self.len(),
            dim: self.dim(),
        };
        write_json_atomic(&manifest_path, &manifest)
            .map_err(|e| io_error(&manifest_path, e.to_string()))
    }

    /// Whether an index was saved under `dir/basename` (it may still be stale or damaged).
    pub fn is_saved(dir: &Path, basename: &str) -> bool {
        manifest_path(dir, basename).exists()
    }

    /// Loads an index saved by [`save`](Self::save), refusing it unless it was built from the
    /// embeddings with `expected_fingerprint` and with the requested construction parameters.
    pub fn load(
        dir: &Path,
        basename: &str,
        expected_fingerprint: &str,
        params: HnswParams,
    ) -> Result<Self, IndexError> {
        Self::load_over(dir, basename, expected_fingerprint, params, None)
    }

    /// [`load`](Self::load) searching `rows` (the embeddings it was built from, held by the
    /// caller anyway) instead of a second copy read from the file.
    pub fn load_sharing(
        dir: &Path,
        basename: &str,
        expected_fingerprint: &str,
        params: HnswParams,
        rows: Arc<dyn SharedRows>,
    ) -> Result<Self, IndexError> {
        Self::load_over(dir, basename, expected_fingerprint, params, Some(rows))
    }

    /// Searches `rows` from now on instead of the index's own copy of the vectors: they must be
    /// the vectors it was built from.
    pub fn share_rows(&mut self, rows: Arc<dyn SharedRows>) -> Result<(), IndexError> {
        self.graph.share_rows(rows).map_err(IndexError::Mismatch)
    }

    fn load_over(
        dir: &Path,
        basename: &str,
        expected_fingerprint: &str,
        params: HnswParams,
        shared: Option<Arc<dyn SharedRows>>,
    ) -> Result<Self, IndexError> {
        let manifest_path = manifest_path(dir, basename);
        let text = std::fs::read_to_string(&manifest_path).map_err(|e| IndexError::Io {
            path: manifest_path.clone(),
            message: e.to_string(),
        })?;
        let manifest: IndexManifest = serde_json::from_str(&text).map_err(|e| IndexError::Io {
            path: manifest_path.clone(),
            message: format!("unreadable index parameters: {e}"),
        })?;
        let stale = |reason: String| IndexError::Stale {
            path: manifest_path.clone(),
            reason,
        };
        if manifest.embeddings_fingerprint != expected_fingerprint {
            return Err(stale("built from other embeddings".into()));
        }
        if manifest.params.max_connections != params.max_connections
            || manifest.params.ef_construction != params.ef_construction
        {
            return Err(stale(format!(
                "built with M={} ef_construction={}, asked for M={} ef_construction={}",
                manifest.params.max_connections,
                manifest.params.ef_construction,
                params.max_connections,
                params.ef_construction
            )));
        }
        if manifest.format != FORMAT {
            return Err(stale(
                "saved by an earlier natview in another format".into(),
            ));
        }
        let graph_path = graph_path(dir, basename);
        let io = |e: std::io::Error| IndexError::Io {
            path: graph_path.clone(),
            message: e.to_string(),
        };
        let file = std::fs::File::open(&graph_path).map_err(io)?;
        // Mapped, not read: only the links are copied out (and, without shared rows, the
        // vectors); nothing of the file stays resident afterwards.
        // SAFETY: index files are replaced by renames, never rewritten in place.
        let bytes = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        let graph = match shared {
            Some(rows) => Graph::from_bytes_sharing(&bytes, rows),
            None => Graph::from_bytes(&bytes),
        }
        .map_err(|message| IndexError::Io {
            path: graph_path.clone(),
            message: format!("cannot load index: {message}"),
        })?;
        if graph.len() != manifest.count || (!graph.is_empty() && graph.dim() != manifest.dim) {
            return Err(stale(format!(
                "graph holds {} vectors of dimension {}, expected {} of {}",
                graph.len(),
                graph.dim(),
                manifest.count,
                manifest.dim
            )));
        }
        Ok(Self {
            graph,
            params: HnswParams {
                ef_search: params.ef_search,
                ..manifest.params
            },
        })
    }
}

fn graph_path(dir: &Path, basename: &str) -> PathBuf {
    dir.join(format!("{basename}.graph"))
}

fn manifest_path(dir: &Path, basename: &str) -> PathBuf {
    dir.join(format!("{basename}.json"))
}

#[cfg(test)]
#[allow(
    clippy::cast_possible_truncation,
    reason = "test data: seeded f64 normal draws narrowed to f32"
)]
mod tests {
    use super::*;
    use crate::exact_neighbours;
    use natview_core::linalg::l2_normalise;
    use natview_core::rng::SplitMix64;

    fn clustered(n: usize, dim: usize, seed: u64) -> Matrix {
        let mut rng = SplitMix64::new(seed);
        let centres: Vec<Vec<f32>> = (0..10)
            .map(|_| (0..dim).map(|_| rng.next_normal() as f32).collect())
            .collect();
        let rows: Vec<Vec<f32>> = (0..n)
            .map(|i| {
                let mut v: Vec<f32> = centres[i % 10]
                    .iter()
                    .map(|c| c + 0.5 * rng.next_normal() as f32)
                    .collect();
                l2_normalise(&mut v);
                v
            })
            .collect();
        Matrix::from_rows(&rows).expect("equal rows")
    }

    #[test]
    fn hnsw_agrees_with_exact_search_and_survives_save_and_reload() {
        let data = clustered(600, 32, 1);
        let index = NeighbourIndex::build(&data, HnswParams::default()).expect("builds");
        let dir = tempfile::tempdir().expect("tempdir");
        index.save(dir.path(), "index.test", "fp1").expect("saves");
        let reloaded = NeighbourIndex::load(dir.path(), "index.test", "fp1", HnswParams::default())
            .expect("reloads");
        assert_eq!(reloaded.len(), 600);
        let mut hits = 0;
        for q in 0..100 {
            let exact: Vec<usize> = exact_neighbours(&data, data.row(q), 10, None)
                .expect("exact")
                .iter()
                .map(|n| n.id)
                .collect();
            let a = index.search(data.row(q), 10, None).expect("search");
            let b = reloaded.search(data.row(q), 10, None).expect("search");
            assert_eq!(a, b, "reloaded index answers like the built one");
            assert_eq!(a[0].id, q, "a vector is its own nearest neighbour");
            hits += a.iter().filter(|n| exact.contains(&n.id)).count();
        }
        assert!(
            hits as f64 / 1000.0 > 0.95,
            "recall@10 {}",
            hits as f64 / 1000.0
        );
    }

    #[test]
    fn more_rows_than_u32_ids_is_a_clear_error_before_any_work() {
        // Only the row count is looked at before the refusal: no data needed.
        let huge = Matrix {
            rows: MAX_ROWS + 1,
            dim: 0,
            data: Vec::new(),
        };
        let err = NeighbourIndex::build(&huge, HnswParams::default())
            .err()
            .expect("refused");
        assert!(matches!(err, IndexError::TooManyRows { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "4294967296 vectors: an HNSW index holds at most 4294967295 (u32 node ids); \
             search exactly or split the dataset"
        );
    }

    #[test]
    fn stale_or_damaged_index_is_refused() {
        let data = clustered(50, 8, 2);
        let index = NeighbourIndex::build(&data, HnswParams::default()).expect("builds");
        let dir = tempfile::tempdir().expect("tempdir");
        index.save(dir.path(), "ix", "fp1").expect("saves");
        let err = NeighbourIndex::load(dir.path(), "ix", "other", HnswParams::default())
            .err()
            .expect("stale");
        assert!(err.to_string().contains("stale"), "{err}");
        std::fs::write(dir.path().join("ix.graph"), b"garbage").expect("write");
        let err = NeighbourIndex::load(dir.path(), "ix", "fp1", HnswParams::default())
            .err()
            .expect("damaged");
        assert!(err.to_string().contains("ix.graph"), "{err}");
    }
}
