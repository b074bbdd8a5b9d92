//! An encoder diff as the CLI, the app and the report run it: two embedding sets of the same
//! images (checked), each listing's name, the listings B's weights record as held out from its
//! training, the diff itself ([`natview_analysis::diff`]) and, on request, both encoders'
//! layouts in one frame (B's fitted onto A's, [`natview_analysis::align`]).

use crate::checkpoint::heldout_listings;
use natview_analysis::align::{procrustes_align, AlignedLayout};
use natview_analysis::diff::{encoder_diff, DiffParams, EncoderDiff};
use natview_analysis::layout::LayoutObserver;
use natview_analysis::projection::{ProjectionMethod, ProjectionSpec};
use natview_analysis::{listing_numbers, AnalysisError};
use natview_core::workspace::Workspace;
use natview_pipeline::layouts::{dataset_layout, LayoutError, LayoutOptions};
use natview_pipeline::EmbeddingSet;
use std::collections::HashSet;
use std::path::Path;

/// Errors of a diff run.
#[derive(Debug, thiserror::Error)]
pub enum DiffRunError {
    /// The two sets do not hold the same images.
    #[error(
        "{from} and {to} embedded different images (a file was skipped by one of them); embed both again"
    )]
    DifferentImages {
        /// Encoder A's name.
        from: String,
        /// Encoder B's name.
        to: String,
    },
    /// The diff could not be computed.
    #[error(transparent)]
    Analysis(#[from] AnalysisError),
    /// A layout could not be made or saved.
    #[error(transparent)]
    Layout(#[from] LayoutError),
}

/// Two encoders' embeddings of one dataset and what changed between them.
#[derive(Debug, Clone)]
pub struct DiffRun {
    /// Encoder A's name (as the caller names it).
    pub from: String,
    /// Encoder B's name.
    pub to: String,
    /// A's embeddings.
    pub a: EmbeddingSet,
    /// B's embeddings (the same items in the same order).
    pub b: EmbeddingSet,
    /// The comparison.
    pub diff: EncoderDiff,
    /// Each dense listing number's name.
    pub listing_names: Vec<String>,
    /// Listings B's weights record as held out from its training (empty when B is not a
    /// natview fine-tune).
    pub heldout: HashSet<String>,
}

impl DiffRun {
    /// Diffs `a` against `b` (named `names`); `b_weights` is B's weights file, whose held-out
    /// listings are read when it is a natview fine-tune.
    pub fn new(
        (a, b): (EmbeddingSet, EmbeddingSet),
        names: (String, String),
        b_weights: Option<&Path>,
        params: DiffParams,
    ) -> Result<Self, DiffRunError> {
        if a.items
            .iter()
            .map(|i| &i.path)
            .ne(b.items.iter().map(|i| &i.path))
        {
            return Err(DiffRunError::DifferentImages {
                from: names.0,
                to: names.1,
            });
        }
        let listings = listing_numbers(&a.items);
        let mut listing_names = vec![String::new(); listings.iter().max().map_or(0, |m| m + 1)];
        for (item, &l) in a.items.iter().zip(&listings) {
            if listing_names[l].is_empty() {
                listing_names[l].clone_from(&item.listing);
            }
        }
        let diff = encoder_diff(&a.matrix, &b.matrix, &listings, params)?;
        Ok(Self {
            from: names.0,
            to: names.1,
            a,
            b,
            diff,
            listing_names,
            heldout: b_weights.map(heldout_listings).unwrap_or_default(),
        })
    }

    /// Whether dense listing number `listing` was held out from B's training.
    pub fn held_out(&self, listing: usize) -> bool {
        self.listing_names
            .get(listing)
            .is_some_and(|name| self.heldout.contains(name))
    }

    /// Listing number `listing`'s name ("?" for a number out of range).
    pub fn listing_name(&self, listing: usize) -> &str {
        self.listing_names.get(listing).map_or("?", String::as_str)
    }
}

/// Both encoders' layouts in A's frame.
#[derive(Debug, Clone)]
pub struct AlignedLayouts {
    /// The layout method.
    pub method: ProjectionMethod,
    /// A's layout.
    pub a: Vec<[f32; 2]>,
    /// B's layout fitted onto A's.
    pub b: AlignedLayout,
    /// How much each item's neighbourhood changed: `1 − Jaccard` of its nearest neighbours
    /// under A and B (0 = the same neighbours, 1 = none in common).
    pub change: Vec<f32>,
}

/// Lays out A's and B's embeddings with `method` (the workspace's saved layouts reused, new
/// ones saved) and fits B's layout onto A's.
pub fn aligned_layouts(
    run: &DiffRun,
    workspace: &Workspace,
    method: ProjectionMethod,
    observer: &mut dyn LayoutObserver,
) -> Result<AlignedLayouts, DiffRunError> {
    let spec = ProjectionSpec::new(method);
    let options = LayoutOptions::default();
    let a = dataset_layout(&run.a, workspace, &spec, options, observer)?;
    let b = dataset_layout(&run.b, workspace, &spec, options, observer)?;
    let aligned = procrustes_align(&a.projection.points, &b.projection.points)?;
    Ok(AlignedLayouts {
        method,
        a: a.projection.points,
        b: aligned,
        change: run
            .diff
            .items
            .iter()
            .map(|i| (1.0 - i.jaccard) as f32)
            .collect(),
    })
}
