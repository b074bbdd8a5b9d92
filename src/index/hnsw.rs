//! The HNSW index: hnsw_rs with a cosine distance for unit vectors, built in parallel, saved
//! next to its parameters and the fingerprint of the embeddings it was built from.

use super::{IndexError, Neighbour};
use crate::linalg::{dot, Matrix};
use crate::workspace::write_json_atomic;
use hnsw_rs::api::AnnT;
use hnsw_rs::hnswio::HnswIo;
use hnsw_rs::prelude::{Distance, Hnsw};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Cosine distance `1 − a·b` for L2-normalised vectors, clamped at 0 (rounding can push a
/// vector's distance to itself a hair below zero, which hnsw_rs's own dot distance rejects).
#[derive(Debug, Clone, Copy, Default)]
pub struct UnitCosine;

impl Distance<f32> for UnitCosine {
    fn eval(&self, va: &[f32], vb: &[f32]) -> f32 {
        (1.0 - dot(va, vb)).max(0.0)
    }
}

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

/// What is saved beside the hnsw_rs dump.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct IndexManifest {
    params: HnswParams,
    embeddings_fingerprint: String,
    count: usize,
    dim: usize,
}

type HnswRef<'a> = Hnsw<'a, f32, UnitCosine>;

self_cell::self_cell!(
    /// An index reloaded from disk together with the reader it borrows from.
    struct LoadedHnsw {
        owner: HnswIo,
        #[not_covariant]
        dependent: HnswRef,
    }
);

enum Graph {
    Built(Hnsw<'static, f32, UnitCosine>),
    Loaded(LoadedHnsw),
}

/// An HNSW index over unit vectors, searched by cosine similarity.
pub struct NeighbourIndex {
    graph: Graph,
    params: HnswParams,
    count: usize,
    dim: usize,
}

/// Layers in the graph (hnsw_rs's maximum).
const MAX_LAYERS: usize = 16;

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
        let mut hnsw = Hnsw::new(
            params.max_connections,
            embeddings.rows.max(1),
            MAX_LAYERS,
            params.ef_construction,
            UnitCosine,
        );
        for start in (0..embeddings.rows).step_by(BUILD_CHUNK) {
            let end = (start + BUILD_CHUNK).min(embeddings.rows);
            let rows: Vec<(&[f32], usize)> = (start..end).map(|i| (embeddings.row(i), i)).collect();
            hnsw.parallel_insert_slice(&rows);
            if !after_chunk(end) {
                return Err(IndexError::Cancelled);
            }
        }
        hnsw.set_searching_mode(true);
        Ok(Self {
            graph: Graph::Built(hnsw),
            params,
            count: embeddings.rows,
            dim: embeddings.dim,
        })
    }

    /// Number of indexed vectors.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Dimension of the indexed vectors.
    pub fn dim(&self) -> usize {
        self.dim
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
        if query.len() != self.dim {
            return Err(IndexError::Dimension {
                expected: self.dim,
                got: query.len(),
            });
        }
        let ef = ef.unwrap_or(self.params.ef_search).max(k);
        let found = match &self.graph {
            Graph::Built(h) => h.search(query, k, ef),
            Graph::Loaded(l) => l.with_dependent(|_, h| h.search(query, k, ef)),
        };
        Ok(found
            .into_iter()
            .map(|n| Neighbour {
                id: n.d_id,
                similarity: 1.0 - n.distance,
            })
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

    /// Saves the graph as `<dir>/<basename>.hnsw.{graph,data}` plus `<basename>.json`. The old
    /// parameter file is removed first and the new one written last, so a crash in between
    /// leaves no index that claims to match.
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
        let tmp_dir = dir.join(format!(".tmp-{basename}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp_dir);
        std::fs::create_dir_all(&tmp_dir).map_err(|e| io_error(&tmp_dir, e.to_string()))?;
        let dumped = match &self.graph {
            Graph::Built(h) => h.file_dump(&tmp_dir, basename),
            Graph::Loaded(l) => l.with_dependent(|_, h| h.file_dump(&tmp_dir, basename)),
        }
        .map_err(|e| io_error(&tmp_dir, format!("cannot write index: {e}")))?;
        for ext in ["hnsw.data", "hnsw.graph"] {
            let from = tmp_dir.join(format!("{dumped}.{ext}"));
            let to = dir.join(format!("{basename}.{ext}"));
            std::fs::rename(&from, &to).map_err(|e| io_error(&to, e.to_string()))?;
        }
        let _ = std::fs::remove_dir_all(&tmp_dir);
        let manifest = IndexManifest {
            params: self.params,
            embeddings_fingerprint: embeddings_fingerprint.to_string(),
            count: self.count,
            dim: self.dim,
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
        let graph_path = dir.join(format!("{basename}.hnsw.graph"));
        // hnsw_rs asserts (panics) on some malformed dumps: turn that into an error.
        let loaded = std::panic::catch_unwind(|| {
            LoadedHnsw::try_new(HnswIo::new(dir, basename), |io| {
                io.load_hnsw_with_dist(UnitCosine)
            })
        });
        let mut loaded = match loaded {
            Ok(Ok(l)) => l,
            Ok(Err(e)) => {
                return Err(IndexError::Io {
                    path: graph_path,
                    message: format!("cannot load index: {e}"),
                })
            }
            Err(_) => {
                return Err(IndexError::Io {
                    path: graph_path,
                    message: "cannot load index: the file is damaged".into(),
                })
            }
        };
        let (count, dim) = loaded.with_dependent_mut(|_, h| {
            h.set_searching_mode(true);
            (
                h.get_nb_point(),
                h.get_point_indexation().get_data_dimension(),
            )
        });
        if count != manifest.count || (count > 0 && dim != manifest.dim) {
            return Err(stale(format!(
                "graph holds {count} vectors of dimension {dim}, expected {} of {}",
                manifest.count, manifest.dim
            )));
        }
        Ok(Self {
            graph: Graph::Loaded(loaded),
            params: HnswParams {
                ef_search: params.ef_search,
                ..manifest.params
            },
            count,
            dim: manifest.dim,
        })
    }
}

fn manifest_path(dir: &Path, basename: &str) -> PathBuf {
    dir.join(format!("{basename}.json"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::exact_neighbours;
    use crate::linalg::l2_normalise;
    use crate::rng::SplitMix64;

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
    fn stale_or_damaged_index_is_refused() {
        let data = clustered(50, 8, 2);
        let index = NeighbourIndex::build(&data, HnswParams::default()).expect("builds");
        let dir = tempfile::tempdir().expect("tempdir");
        index.save(dir.path(), "ix", "fp1").expect("saves");
        let err = NeighbourIndex::load(dir.path(), "ix", "other", HnswParams::default())
            .err()
            .expect("stale");
        assert!(err.to_string().contains("stale"), "{err}");
        std::fs::write(dir.path().join("ix.hnsw.graph"), b"garbage").expect("write");
        let err = NeighbourIndex::load(dir.path(), "ix", "fp1", HnswParams::default())
            .err()
            .expect("damaged");
        assert!(err.to_string().contains("ix.hnsw.graph"), "{err}");
    }
}
