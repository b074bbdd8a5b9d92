//! Representation health tracked during a run: every [`TrainConfig::health_every`] steps the
//! encoder embeds a fixed sample of images (held-out listings where there are enough) and
//! `natview_analysis::health` measures it. Collapse is judged relative to the run's start — an
//! untrained start is tightly clustered by nature, so an absolute verdict would stop every run
//! from scratch: the run stops (its checkpoint kept) when the effective rank stays below
//! [`COLLAPSE_SHARE`] of the start's for [`COLLAPSE_CHECKS`] checks in a row, unless
//! [`TrainConfig::collapse_stop`] is off.

use natview_analysis::health::{health, HealthParams};
use natview_core::linalg::Matrix;
use serde::{Deserialize, Serialize};

/// Images in the sample a run's health is measured on.
pub const HEALTH_SAMPLE: usize = 256;
/// Share of the start's effective rank below which a check counts as collapsed.
pub const COLLAPSE_SHARE: f64 = 0.25;
/// Collapsed checks in a row that stop a run.
pub const COLLAPSE_CHECKS: usize = 3;
/// Default steps between two checks.
pub const DEFAULT_HEALTH_EVERY: usize = 25;

/// One health check of a run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HealthPoint {
    /// Steps done when it was measured (0: the start).
    pub step: usize,
    /// RankMe's effective rank of the sample's embeddings.
    pub effective_rank: f64,
    /// Principal axes carrying 95 % of their variance.
    pub dims_for_95: usize,
    /// Total variance of the unit embeddings (near 0: one point).
    pub total_variance: f64,
    /// Alignment of natural views (mean squared distance), when the sample has listings of two
    /// views.
    pub alignment: Option<f64>,
    /// Uniformity (log of the mean Gaussian potential of random pairs).
    pub uniformity: f64,
}

/// Measures `rows` (unit embeddings of the sample) at `step`.
pub(crate) fn measure(rows: &Matrix, listings: &[usize], step: usize) -> Option<HealthPoint> {
    let params = HealthParams {
        sample: rows.rows,
        pairs: 5_000,
        ..HealthParams::default()
    };
    let h = health(rows, listings, params).ok()?;
    Some(HealthPoint {
        step,
        effective_rank: h.effective_rank,
        dims_for_95: h.dims_for_95,
        total_variance: h.total_variance,
        alignment: h.alignment,
        uniformity: h.uniformity,
    })
}

/// Watches the checks of one run for collapse relative to its first.
#[derive(Debug, Default)]
pub(crate) struct CollapseWatch {
    start: Option<HealthPoint>,
    below: usize,
}

impl CollapseWatch {
    /// Takes the next check; `Some(reason)` when the run has collapsed.
    pub fn observe(&mut self, point: &HealthPoint) -> Option<String> {
        let Some(start) = self.start else {
            self.start = Some(*point);
            return None;
        };
        if point.effective_rank < COLLAPSE_SHARE * start.effective_rank {
            self.below += 1;
        } else {
            self.below = 0;
        }
        (self.below >= COLLAPSE_CHECKS).then(|| {
            format!(
                "the embedding collapsed: effective rank {:.1} at step {}, under {:.0} % of the \
                 start's {:.1} for {} checks in a row (95 % of the variance in {} axes)",
                point.effective_rank,
                point.step,
                100.0 * COLLAPSE_SHARE,
                start.effective_rank,
                COLLAPSE_CHECKS,
                point.dims_for_95
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(step: usize, rank: f64) -> HealthPoint {
        HealthPoint {
            step,
            effective_rank: rank,
            dims_for_95: 3,
            total_variance: 0.5,
            alignment: None,
            uniformity: -1.0,
        }
    }

    #[test]
    fn a_run_stops_after_three_collapsed_checks_in_a_row_relative_to_its_start() {
        let mut watch = CollapseWatch::default();
        assert_eq!(watch.observe(&point(0, 40.0)), None);
        // A dip that recovers does not stop it.
        assert_eq!(watch.observe(&point(25, 8.0)), None);
        assert_eq!(watch.observe(&point(50, 9.0)), None);
        assert_eq!(watch.observe(&point(75, 30.0)), None);
        // Three in a row below a quarter of the start's 40 do.
        assert_eq!(watch.observe(&point(100, 9.9)), None);
        assert_eq!(watch.observe(&point(125, 5.0)), None);
        let reason = watch.observe(&point(150, 2.0)).expect("collapsed");
        assert!(
            reason.contains("step 150") && reason.contains("40.0"),
            "{reason}"
        );
    }

    #[test]
    fn a_tightly_clustered_start_is_not_collapse() {
        // An untrained start with a low rank that the run raises: never a stop.
        let mut watch = CollapseWatch::default();
        for (step, rank) in [(0, 3.0), (25, 2.5), (50, 6.0), (75, 12.0), (100, 20.0)] {
            assert_eq!(watch.observe(&point(step, rank)), None);
        }
    }

    #[test]
    fn measuring_a_sample_gives_its_effective_rank() {
        let rows: Vec<Vec<f32>> = (0..40)
            .map(|i| {
                let mut v = vec![0f32; 8];
                v[i % 8] = 1.0;
                v
            })
            .collect();
        let m = Matrix::from_rows(&rows).expect("rows");
        let listings: Vec<usize> = (0..40).map(|i| i / 2).collect();
        let p = measure(&m, &listings, 5).expect("measured");
        assert_eq!(p.step, 5);
        assert!(
            p.effective_rank > 6.0 && p.effective_rank <= 8.0,
            "{}",
            p.effective_rank
        );
    }
}
