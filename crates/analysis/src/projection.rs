//! The 2-D projections natview offers — PCA, UMAP and t-SNE — behind one description
//! ([`ProjectionSpec`]) and one entry point ([`project`]): checks the input, reduces it to
//! [`LAYOUT_INPUT_DIM`] principal components, finds the kNN graph and runs the layout.

use super::knn::knn_graph;
use super::layout::LayoutObserver;
use super::pca::{pca_2d, pca_basis, Projection};
use super::tsne::{tsne, TsneParams};
use super::umap::{umap, UmapInit, UmapParams};
use super::AnalysisError;
use natview_core::linalg::{l2_normalise, Matrix};
use serde::{Deserialize, Serialize};

/// Principal components the neighbour graphs of UMAP and t-SNE are computed in.
pub const LAYOUT_INPUT_DIM: usize = 50;

/// A projection method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProjectionMethod {
    /// The first two principal components.
    Pca,
    /// UMAP (McInnes et al.), umap-learn's algorithm.
    Umap,
    /// t-SNE with openTSNE's schedule and FFT-interpolated repulsion.
    Tsne,
}

impl ProjectionMethod {
    /// Every method, in the order menus list them.
    pub const ALL: [ProjectionMethod; 3] = [Self::Pca, Self::Umap, Self::Tsne];

    /// The lowercase name used on the command line and in file names.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pca => "pca",
            Self::Umap => "umap",
            Self::Tsne => "tsne",
        }
    }

    /// The name shown to people.
    pub fn label(self) -> &'static str {
        match self {
            Self::Pca => "PCA",
            Self::Umap => "UMAP",
            Self::Tsne => "t-SNE",
        }
    }

    /// Parses a command-line name.
    pub fn parse(name: &str) -> Result<Self, AnalysisError> {
        Self::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name) || m.label().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                AnalysisError::BadInput(format!(
                    "unknown projection method `{name}` (choose pca, umap or tsne)"
                ))
            })
    }
}

/// A projection method with its main parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProjectionSpec {
    /// The method.
    pub method: ProjectionMethod,
    /// UMAP: neighbours per point (15).
    pub neighbours: usize,
    /// UMAP: minimum distance between laid-out points (0.1).
    pub min_dist: f32,
    /// t-SNE: perplexity (30; 3 × perplexity neighbours are used).
    pub perplexity: f32,
    /// UMAP: optimisation epochs; t-SNE: iterations after early exaggeration. `None`: the
    /// method's default (UMAP 500 up to 10k points, else 200; t-SNE 500).
    pub epochs: Option<usize>,
    /// Random seed (UMAP's sampling; t-SNE starts from PCA and uses it only for ties).
    pub seed: u64,
}

impl ProjectionSpec {
    /// The method with its default parameters.
    pub fn new(method: ProjectionMethod) -> Self {
        Self {
            method,
            neighbours: 15,
            min_dist: 0.1,
            perplexity: 30.0,
            epochs: None,
            seed: 0,
        }
    }

    /// A file-name-safe key naming the method and every parameter that changes its result,
    /// e.g. `umap-n15-d0.1-eauto-s0`.
    pub fn key(&self) -> String {
        let epochs = self
            .epochs
            .map_or_else(|| "auto".to_string(), |e| e.to_string());
        match self.method {
            ProjectionMethod::Pca => "pca".into(),
            ProjectionMethod::Umap => format!(
                "umap-n{}-d{}-e{epochs}-s{}",
                self.neighbours, self.min_dist, self.seed
            ),
            ProjectionMethod::Tsne => {
                format!("tsne-p{}-e{epochs}-s{}", self.perplexity, self.seed)
            }
        }
    }

    /// The parameters in words, e.g. "UMAP · 15 neighbours · min_dist 0.1 · seed 0".
    pub fn describe(&self) -> String {
        let epochs = self
            .epochs
            .map_or_else(String::new, |e| format!(" · {e} epochs"));
        match self.method {
            ProjectionMethod::Pca => "PCA".into(),
            ProjectionMethod::Umap => format!(
                "UMAP · {} neighbours · min_dist {}{epochs} · seed {}",
                self.neighbours, self.min_dist, self.seed
            ),
            ProjectionMethod::Tsne => format!(
                "t-SNE · perplexity {}{epochs} · seed {}",
                self.perplexity, self.seed
            ),
        }
    }

    /// Checks the parameters before any work.
    pub fn check(&self) -> Result<(), AnalysisError> {
        let bad = |m: String| Err(AnalysisError::BadInput(m));
        match self.method {
            ProjectionMethod::Pca => Ok(()),
            ProjectionMethod::Umap if self.neighbours < 2 => bad(format!(
                "UMAP needs at least 2 neighbours, got {}",
                self.neighbours
            )),
            ProjectionMethod::Umap if !(self.min_dist >= 0.0 && self.min_dist < 1.0) => bad(
                format!("UMAP's min_dist must be in [0, 1), got {}", self.min_dist),
            ),
            ProjectionMethod::Tsne if !(self.perplexity >= 1.0 && self.perplexity.is_finite()) => {
                bad(format!(
                    "t-SNE's perplexity must be ≥ 1, got {}",
                    self.perplexity
                ))
            }
            _ if self.epochs == Some(0) => bad("epochs must be at least 1".into()),
            _ => Ok(()),
        }
    }

    /// Neighbours per point the method's kNN graph needs.
    fn graph_neighbours(&self) -> usize {
        match self.method {
            ProjectionMethod::Pca => 0,
            ProjectionMethod::Umap => self.neighbours,
            ProjectionMethod::Tsne => (3.0 * self.perplexity).ceil() as usize,
        }
    }
}

/// Projects the rows of `matrix` (one embedding per row) to 2-D as `spec` says. Rows with a
/// non-finite value are refused (naming the first); UMAP and t-SNE need more rows than their
/// kNN graph has neighbours.
pub fn project(
    matrix: &Matrix,
    spec: &ProjectionSpec,
    observer: &mut dyn LayoutObserver,
) -> Result<Projection, AnalysisError> {
    spec.check()?;
    if let Some(at) = matrix.data.iter().position(|v| !v.is_finite()) {
        let dim = matrix.dim.max(1);
        return Err(AnalysisError::BadInput(format!(
            "row {} has a non-finite value ({}) in column {}",
            at / dim,
            matrix.data[at],
            at % dim
        )));
    }
    let use_umap = match spec.method {
        ProjectionMethod::Pca => {
            observer.progress("PCA", 0, 1);
            return pca_2d(matrix);
        }
        ProjectionMethod::Umap => true,
        ProjectionMethod::Tsne => false,
    };
    let k = spec.graph_neighbours();
    if matrix.rows <= k {
        return Err(AnalysisError::NotEnoughData(format!(
            "{} with {} needs more than {k} points (its neighbours per point), got {}",
            spec.method.label(),
            match spec.method {
                ProjectionMethod::Tsne => format!("perplexity {}", spec.perplexity),
                _ => format!("{} neighbours", spec.neighbours),
            },
            matrix.rows
        )));
    }
    if !observer.progress("PCA to 50 dimensions", 0, 1) {
        return Err(AnalysisError::Cancelled);
    }
    let LayoutInput {
        unit_rows: reduced,
        init,
        variance_kept: kept,
    } = layout_input(matrix)?;
    let knn = knn_graph(&reduced, k, observer)?;
    drop(reduced);
    let epochs = spec.epochs;
    let points = if use_umap {
        let params = UmapParams {
            neighbours: spec.neighbours,
            min_dist: spec.min_dist,
            epochs,
            init: UmapInit::Spectral,
            seed: spec.seed,
            ..UmapParams::default()
        };
        umap(&knn, &init, &params, observer)?
    } else {
        let defaults = TsneParams::default();
        let params = TsneParams {
            perplexity: spec.perplexity,
            iterations: epochs.unwrap_or(defaults.iterations),
            seed: spec.seed,
            ..defaults
        };
        tsne(&knn, &init, &params, observer)?
    };
    Ok(Projection {
        method: spec.method.name().into(),
        points,
        explained_variance_ratio: [0.0, 0.0],
        input_variance_kept: Some(kept),
    })
}

/// What UMAP and t-SNE start from: the rows in their first [`LAYOUT_INPUT_DIM`] principal
/// components, each scaled to unit length (neighbours by cosine = by Euclidean distance), and
/// the first two components as the initial layout.
#[derive(Debug, Clone)]
pub struct LayoutInput {
    /// `n × 50` unit rows (fewer columns when the input has fewer dimensions).
    pub unit_rows: Matrix,
    /// The 2-D PCA of the rows.
    pub init: Vec<[f32; 2]>,
    /// Share of the variance the components keep.
    pub variance_kept: f64,
}

/// Reduces `matrix` to the input of UMAP and t-SNE (see [`LayoutInput`]).
pub fn layout_input(matrix: &Matrix) -> Result<LayoutInput, AnalysisError> {
    let basis = pca_basis(matrix, LAYOUT_INPUT_DIM)?;
    let variance_kept: f64 = basis.explained_variance_ratio().iter().sum();
    let mut unit_rows = basis.project(matrix);
    let init = unit_rows
        .data
        .chunks_exact(unit_rows.dim)
        .map(|r| [r[0], r.get(1).copied().unwrap_or(0.0)])
        .collect();
    let dim = unit_rows.dim;
    unit_rows.data.chunks_exact_mut(dim).for_each(l2_normalise);
    Ok(LayoutInput {
        unit_rows,
        init,
        variance_kept,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Unobserved;
    use natview_core::rng::SplitMix64;

    /// `clusters` well-separated unit-norm clusters of `per` points in 32-D.
    fn clusters(clusters: usize, per: usize) -> Matrix {
        let mut rng = SplitMix64::new(9);
        let mut rows = Vec::new();
        for c in 0..clusters {
            for _ in 0..per {
                let mut row: Vec<f32> = (0..32).map(|_| 0.05 * rng.next_normal() as f32).collect();
                row[c] += 1.0;
                l2_normalise(&mut row);
                rows.push(row);
            }
        }
        Matrix::from_rows(&rows).expect("rows")
    }

    #[test]
    fn bad_inputs_get_clear_messages() {
        let few = clusters(2, 5);
        let umap_spec = ProjectionSpec::new(ProjectionMethod::Umap);
        let message = project(&few, &umap_spec, &mut Unobserved)
            .expect_err("10 < 15")
            .to_string();
        assert!(message.contains("needs more than 15 points"), "{message}");
        let tsne_spec = ProjectionSpec::new(ProjectionMethod::Tsne);
        let message = project(&few, &tsne_spec, &mut Unobserved)
            .expect_err("tsne")
            .to_string();
        assert!(message.contains("perplexity 30"), "{message}");
        let mut nan = clusters(4, 10);
        nan.data[5 * 32 + 3] = f32::NAN;
        let message = project(&nan, &umap_spec, &mut Unobserved)
            .expect_err("NaN")
            .to_string();
        assert!(
            message.contains("row 5") && message.contains("column 3"),
            "{message}"
        );
        let zero_epochs = ProjectionSpec {
            epochs: Some(0),
            ..umap_spec
        };
        assert!(project(&clusters(4, 10), &zero_epochs, &mut Unobserved).is_err());
    }

    #[test]
    fn duplicate_points_lay_out_finite_and_clusters_stay_apart() {
        // Every point twice: zero distances in the kNN graph.
        let base = clusters(4, 40);
        let ids: Vec<usize> = (0..base.rows).flat_map(|i| [i, i]).collect();
        let doubled = base.select_rows(&ids);
        for method in [ProjectionMethod::Umap, ProjectionMethod::Tsne] {
            let spec = ProjectionSpec {
                perplexity: 10.0,
                epochs: Some(150),
                ..ProjectionSpec::new(method)
            };
            let layout = project(&doubled, &spec, &mut Unobserved).expect("layout");
            assert!(
                layout.points.iter().flatten().all(|v| v.is_finite()),
                "{method:?}"
            );
            let q = crate::quality::layout_quality(&doubled, &layout.points, 10, 200, 0)
                .expect("quality");
            assert!(q.trustworthiness > 0.9, "{method:?}: {q:?}");
        }
    }
}
