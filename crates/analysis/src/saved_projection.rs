//! Saved 2-D layouts: `projection-<key>.<model>.csv` (`id,x,y`) with a sidecar
//! `projection-<key>.<model>.json` saying what it was made from (method and parameters, the
//! model, the embeddings' fingerprint, row count, time, quality), so a finished layout reopens
//! at once and a stale one is recomputed instead of shown.

use crate::projection::ProjectionSpec;
use crate::quality::LayoutQuality;
use crate::Projection;
use natview_core::workspace::{write_atomic, write_json_atomic, Workspace, WorkspaceError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What a saved layout was made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectionMeta {
    /// Method and parameters.
    pub spec: ProjectionSpec,
    /// The model's workspace key.
    pub model: String,
    /// Fingerprint of the embeddings laid out.
    pub embeddings_fingerprint: String,
    /// Points (one per embedding row).
    pub rows: usize,
    /// Computing time in seconds.
    pub seconds: f64,
    /// PCA's explained variance ratios (zeros for the other methods).
    #[serde(default)]
    pub explained_variance_ratio: [f64; 2],
    /// UMAP / t-SNE: variance kept by the principal components their graph was built in.
    #[serde(default)]
    pub input_variance_kept: Option<f64>,
    /// Neighbourhood preservation, when it was measured.
    #[serde(default)]
    pub quality: Option<LayoutQuality>,
}

/// A layout read back from the workspace.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedProjection {
    /// What it was made from.
    pub meta: ProjectionMeta,
    /// The layout.
    pub projection: Projection,
    /// Its CSV file.
    pub csv_path: PathBuf,
}

/// The saved layouts of a workspace (implemented for [`Workspace`], whose file names it uses).
pub trait ProjectionFiles {
    /// The CSV of a layout of `model`'s embeddings made as `spec` says.
    fn projection_csv(&self, spec: &ProjectionSpec, model: &str) -> PathBuf;

    /// Saves a layout and what it was made from (CSV first, then the sidecar, each through a
    /// temporary file and a rename: a sidecar only ever describes a complete CSV).
    fn save_projection(
        &self,
        meta: &ProjectionMeta,
        projection: &Projection,
    ) -> Result<PathBuf, WorkspaceError>;

    /// The saved layout made as `spec` says from the embeddings with `fingerprint`; `Ok(None)`
    /// when there is none, and [`WorkspaceError::Stale`] when the saved one was made from other
    /// embeddings or its files are damaged (the caller recomputes and says why).
    fn load_projection(
        &self,
        spec: &ProjectionSpec,
        model: &str,
        fingerprint: &str,
        rows: usize,
    ) -> Result<Option<SavedProjection>, WorkspaceError>;
}

impl ProjectionFiles for Workspace {
    fn projection_csv(&self, spec: &ProjectionSpec, model: &str) -> PathBuf {
        self.projection_path(&spec.key(), model)
    }

    fn save_projection(
        &self,
        meta: &ProjectionMeta,
        projection: &Projection,
    ) -> Result<PathBuf, WorkspaceError> {
        let csv = self.projection_csv(&meta.spec, &meta.model);
        let sidecar = csv.with_extension("json");
        // A sidecar left from an earlier layout must not describe the CSV being replaced.
        if sidecar.exists() {
            std::fs::remove_file(&sidecar).map_err(|e| WorkspaceError::io(&sidecar, e))?;
        }
        write_projection_csv(&csv, projection)?;
        write_json_atomic(&sidecar, meta).map_err(|e| WorkspaceError::io(&sidecar, e))?;
        Ok(csv)
    }

    fn load_projection(
        &self,
        spec: &ProjectionSpec,
        model: &str,
        fingerprint: &str,
        rows: usize,
    ) -> Result<Option<SavedProjection>, WorkspaceError> {
        let csv_path = self.projection_csv(spec, model);
        let sidecar = csv_path.with_extension("json");
        if !sidecar.exists() {
            return Ok(None);
        }
        let stale = |reason: String| WorkspaceError::Stale {
            path: sidecar.clone(),
            reason,
        };
        let text =
            std::fs::read_to_string(&sidecar).map_err(|e| WorkspaceError::io(&sidecar, e))?;
        let meta: ProjectionMeta =
            serde_json::from_str(&text).map_err(|e| stale(format!("unreadable: {e}")))?;
        if meta.embeddings_fingerprint != fingerprint {
            return Err(stale("made from other embeddings".into()));
        }
        if meta.rows != rows || meta.spec != *spec {
            return Err(stale(format!(
                "made for {} points as {}, not {rows} as {}",
                meta.rows,
                meta.spec.describe(),
                spec.describe()
            )));
        }
        let points = read_projection_csv(&csv_path, rows)?;
        let projection = Projection {
            method: spec.method.name().into(),
            points,
            explained_variance_ratio: meta.explained_variance_ratio,
            input_variance_kept: meta.input_variance_kept,
        };
        Ok(Some(SavedProjection {
            meta,
            projection,
            csv_path,
        }))
    }
}

/// Writes `id,x,y` rows (temp file + rename).
pub fn write_projection_csv(path: &Path, projection: &Projection) -> Result<(), WorkspaceError> {
    use std::fmt::Write as _;
    let mut csv = String::with_capacity(24 * projection.points.len() + 8);
    csv.push_str("id,x,y\n");
    for (id, p) in projection.points.iter().enumerate() {
        let _ = writeln!(csv, "{id},{},{}", p[0], p[1]);
    }
    write_atomic(path, csv.as_bytes()).map_err(|e| WorkspaceError::io(path, e))
}

/// Reads `id,x,y` rows written by [`write_projection_csv`]: ids `0..rows` in order, finite
/// coordinates; anything else names the line at fault.
pub fn read_projection_csv(path: &Path, rows: usize) -> Result<Vec<[f32; 2]>, WorkspaceError> {
    let text = std::fs::read_to_string(path).map_err(|e| WorkspaceError::io(path, e))?;
    let stale = |reason: String| WorkspaceError::Stale {
        path: path.to_path_buf(),
        reason,
    };
    let mut lines = text.lines();
    if lines.next().map(str::trim) != Some("id,x,y") {
        return Err(stale("the first line is not `id,x,y`".into()));
    }
    // A row takes at least 6 bytes (`0,0,0\n`): never reserve more than the file can hold.
    let mut points = Vec::with_capacity(rows.min(text.len() / 6));
    for (number, line) in lines.enumerate() {
        if points.len() == rows {
            return Err(stale(format!("more than {rows} points for {rows} rows")));
        }
        let parsed = (|| {
            let mut fields = line.split(',');
            let id: usize = fields.next()?.trim().parse().ok()?;
            let x: f32 = fields.next()?.trim().parse().ok()?;
            let y: f32 = fields.next()?.trim().parse().ok()?;
            (fields.next().is_none() && x.is_finite() && y.is_finite()).then_some((id, [x, y]))
        })();
        match parsed {
            Some((id, p)) if id == points.len() => points.push(p),
            _ => {
                return Err(stale(format!(
                    "line {} is not `id,x,y` with id {} and finite x, y: {line:?}",
                    number + 2,
                    points.len()
                )))
            }
        }
    }
    if points.len() != rows {
        return Err(stale(format!("{} points for {rows} rows", points.len())));
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projection::{ProjectionMethod, ProjectionSpec};

    fn meta(spec: ProjectionSpec, rows: usize) -> ProjectionMeta {
        ProjectionMeta {
            spec,
            model: "m".into(),
            embeddings_fingerprint: "f1".into(),
            rows,
            seconds: 1.5,
            explained_variance_ratio: [0.0, 0.0],
            input_variance_kept: Some(0.9),
            quality: None,
        }
    }

    #[test]
    fn a_saved_layout_reopens_and_goes_stale_with_other_embeddings() {
        let dir = tempfile::tempdir().expect("tempdir");
        let workspace = Workspace::at(dir.path());
        let spec = ProjectionSpec::new(ProjectionMethod::Umap);
        let projection = Projection {
            method: "umap".into(),
            points: vec![[0.5, -1.25], [3.0, 4.0], [1e-7, 2e6]],
            explained_variance_ratio: [0.0, 0.0],
            input_variance_kept: Some(0.9),
        };
        let csv = workspace
            .save_projection(&meta(spec, 3), &projection)
            .expect("save");
        assert!(
            csv.ends_with("projection-umap-n15-d0.1-eauto-s0.m.csv"),
            "{csv:?}"
        );
        let back = workspace
            .load_projection(&spec, "m", "f1", 3)
            .expect("load")
            .expect("saved");
        assert_eq!(back.projection, projection);
        assert!(workspace.load_projection(&spec, "m", "f2", 3).is_err());
        let other = ProjectionSpec { seed: 1, ..spec };
        assert!(workspace
            .load_projection(&other, "m", "f1", 3)
            .expect("none")
            .is_none());
        std::fs::write(&csv, "id,x,y\n0,1,2\n1,NaN,3\n2,0,0\n").expect("damage");
        let message = workspace
            .load_projection(&spec, "m", "f1", 3)
            .expect_err("damaged")
            .to_string();
        assert!(message.contains("line 3"), "{message}");
    }

    proptest::proptest! {
        #![proptest_config(natview_testkit::config())]

        #[test]
        fn damaged_projection_files_are_refused_or_hold_every_point(
            changes in natview_testkit::mutations(),
            rows in 0usize..12,
        ) {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("p.csv");
            let projection = Projection {
                method: "pca".into(),
                points: (0..8).map(|i| [i as f32 * 0.25, -(i as f32)]).collect(),
                explained_variance_ratio: [0.0, 0.0],
                input_variance_kept: None,
            };
            write_projection_csv(&path, &projection).expect("write");
            let bytes = std::fs::read(&path).expect("read");
            std::fs::write(&path, natview_testkit::apply(&bytes, &changes)).expect("write");
            for expected in [rows, 8, usize::MAX] {
                if let Ok(points) = read_projection_csv(&path, expected) {
                    proptest::prop_assert_eq!(points.len(), expected);
                    proptest::prop_assert!(points.iter().flatten().all(|v| v.is_finite()));
                }
            }
        }
    }
}
