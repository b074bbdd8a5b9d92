//! A dataset's 2-D layouts for the CLI and the app alike: the saved layout when the workspace
//! has one made from the same embeddings with the same parameters, else a new one computed
//! ([`natview_analysis::projection::project`]), measured if asked, and saved.

use crate::EmbeddingSet;
use natview_analysis::layout::LayoutObserver;
use natview_analysis::projection::{project, ProjectionSpec};
use natview_analysis::quality::layout_quality;
use natview_analysis::{AnalysisError, Projection};
use natview_analysis::{ProjectionFiles, ProjectionMeta};
use natview_core::workspace::{Workspace, WorkspaceError};
use std::path::PathBuf;
use std::time::Instant;

/// Neighbours compared by the layout quality measures.
pub const QUALITY_K: usize = 10;

/// Errors of making a layout.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// The layout could not be computed.
    #[error(transparent)]
    Analysis(#[from] AnalysisError),
    /// The layout could not be saved.
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
}

/// A layout of a dataset's embeddings, with where it came from.
#[derive(Debug, Clone)]
pub struct DatasetLayout {
    /// The points.
    pub projection: Projection,
    /// What it was made from (time, quality).
    pub meta: ProjectionMeta,
    /// Its CSV in the workspace.
    pub csv_path: PathBuf,
    /// Read back from the workspace rather than computed.
    pub reused: bool,
    /// Why a saved layout was not used, if there was one.
    pub stale_reason: Option<String>,
}

/// What to do besides laying out.
#[derive(Debug, Clone, Copy, Default)]
pub struct LayoutOptions {
    /// Compute anew even when a saved layout matches.
    pub recompute: bool,
    /// Measure kNN preservation and trustworthiness on this many sampled points (also for a
    /// saved layout that was not measured).
    pub quality_sample: Option<usize>,
}

/// The layout of `set` made as `spec` says: the saved one, or a new one (saved before it is
/// returned).
pub fn dataset_layout(
    set: &EmbeddingSet,
    workspace: &Workspace,
    spec: &ProjectionSpec,
    options: LayoutOptions,
    observer: &mut dyn LayoutObserver,
) -> Result<DatasetLayout, LayoutError> {
    let model = set.meta.encoder.workspace_key();
    let fingerprint = &set.meta.embeddings_fingerprint;
    let rows = set.matrix.rows;
    let mut stale_reason = None;
    if !options.recompute {
        match workspace.load_projection(spec, &model, fingerprint, rows) {
            Ok(Some(saved)) => {
                let mut layout = DatasetLayout {
                    projection: saved.projection,
                    meta: saved.meta,
                    csv_path: saved.csv_path,
                    reused: true,
                    stale_reason: None,
                };
                if let (Some(sample), None) = (options.quality_sample, layout.meta.quality) {
                    layout.meta.quality = Some(measure(
                        set,
                        &layout.projection,
                        sample,
                        spec.seed,
                        observer,
                    )?);
                    workspace.save_projection(&layout.meta, &layout.projection)?;
                }
                return Ok(layout);
            }
            Ok(None) => {}
            Err(e) => stale_reason = Some(e.to_string()),
        }
    }
    let started = Instant::now();
    let projection = project(&set.matrix, spec, observer)?;
    let seconds = started.elapsed().as_secs_f64();
    let quality = options
        .quality_sample
        .map(|sample| measure(set, &projection, sample, spec.seed, observer))
        .transpose()?;
    let meta = ProjectionMeta {
        spec: *spec,
        model,
        embeddings_fingerprint: fingerprint.clone(),
        rows,
        seconds,
        explained_variance_ratio: projection.explained_variance_ratio,
        input_variance_kept: projection.input_variance_kept,
        quality,
    };
    let csv_path = workspace.save_projection(&meta, &projection)?;
    Ok(DatasetLayout {
        projection,
        meta,
        csv_path,
        reused: false,
        stale_reason,
    })
}

fn measure(
    set: &EmbeddingSet,
    projection: &Projection,
    sample: usize,
    seed: u64,
    observer: &mut dyn LayoutObserver,
) -> Result<natview_analysis::quality::LayoutQuality, AnalysisError> {
    observer.progress("measuring quality", 0, 1);
    layout_quality(&set.matrix, &projection.points, QUALITY_K, sample, seed)
}
