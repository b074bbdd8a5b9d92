//! Everything the report shows, computed once for the CLI and the app: the dataset embedded
//! with the encoder (and raw pixels, and encoder A when a diff is asked for), their retrieval
//! metrics, the encoder's health, the quadrant chart and a PCA layout rendered as PNGs, sample
//! neighbours, and the diff with both layouts in one frame — with every image it shows as a
//! small JPEG.

use crate::thumbs::Thumbnails;
use crate::{png_bytes, ReportError};
use natview_analysis::diff::{Change, DiffParams};
use natview_analysis::health::{health, Health, HealthParams};
use natview_analysis::layout::JobObserver;
use natview_analysis::projection::{ProjectionMethod, ProjectionSpec};
use natview_analysis::report::{render_quadrant_chart, render_scatter, HeatmapOptions};
use natview_analysis::scatter::{categorical, Categories};
use natview_analysis::{listing_numbers, quadrant_chart, QuadrantParams};
use natview_core::dataset::Dataset;
use natview_core::jobs::{CancelFlag, Progress, ProgressSink};
use natview_core::rng::SplitMix64;
use natview_core::workspace::Workspace;
use natview_encoder::{EncoderSpec, ModelKind};
use natview_pipeline::layouts::{dataset_layout, LayoutOptions};
use natview_pipeline::{embed_dataset, evaluate, EmbeddingSet, EvalReport, RunSettings};
use natview_train::diff_run::{aligned_layouts, AlignedLayouts, DiffRun};
use std::path::PathBuf;

/// What to report on.
#[derive(Debug, Clone)]
pub struct ReportRequest {
    /// The dataset's name as shown (its path).
    pub dataset_name: String,
    /// The encoder reported on (B of a diff), with its name.
    pub encoder: (String, EncoderSpec),
    /// Encoder A of a diff (before), with its name; `None`: no diff section.
    pub from: Option<(String, EncoderSpec)>,
    /// Query images shown with their nearest neighbours.
    pub samples: usize,
    /// Neighbours shown per query.
    pub neighbours: usize,
    /// Listings in the quadrant chart.
    pub chart_listings: usize,
    /// Listings listed per diff list (improved, regressed).
    pub diff_top: usize,
    /// Seed of every sample.
    pub seed: u64,
}

impl ReportRequest {
    /// A report on `encoder` with the default sizes.
    pub fn new(dataset_name: String, encoder: (String, EncoderSpec)) -> Self {
        Self {
            dataset_name,
            encoder,
            from: None,
            samples: 8,
            neighbours: 8,
            chart_listings: 16,
            diff_top: 10,
            seed: 0,
        }
    }
}

/// One image as the report shows it.
#[derive(Debug, Clone)]
pub struct Thumb {
    /// Its row.
    pub row: usize,
    /// Its listing.
    pub listing: String,
    /// Its file.
    pub path: PathBuf,
    /// The thumbnail as JPEG (`None` when it could not be read: shown as a note).
    pub jpeg: Option<Vec<u8>>,
}

/// A query and its nearest neighbours.
#[derive(Debug, Clone)]
pub struct NeighbourRow {
    /// The query image.
    pub query: Thumb,
    /// Its neighbours, nearest first: image, cosine, same listing as the query.
    pub neighbours: Vec<(Thumb, f32, bool)>,
}

/// A listing of the diff lists.
#[derive(Debug, Clone)]
pub struct DiffListing {
    /// Its name.
    pub name: String,
    /// Never trained on by B.
    pub held_out: bool,
    /// recall@k, mean reciprocal rank and gap under A and B.
    pub recall: (f64, f64),
    /// See `recall`.
    pub mrr: (f64, f64),
    /// See `recall`.
    pub gap: (f64, f64),
    /// Its first views.
    pub views: Vec<Thumb>,
}

/// The diff section.
#[derive(Debug, Clone)]
pub struct DiffSection {
    /// Encoder A's and B's names.
    pub names: (String, String),
    /// Neighbours compared per image.
    pub k: usize,
    /// recall@k under A and B.
    pub recall: (f64, f64),
    /// Mean Jaccard overlap of the images' neighbourhoods.
    pub mean_jaccard: f64,
    /// Listings improved, regressed, unchanged.
    pub counts: (usize, usize, usize),
    /// Held-out listings improved, regressed, in all (`None` when B records none).
    pub held_out: Option<(usize, usize, usize)>,
    /// A's PCA layout and B's fitted onto it, coloured by neighbourhood change, as PNGs.
    pub layouts_png: Option<(Vec<u8>, Vec<u8>)>,
    /// The Procrustes disparity left after the fit.
    pub disparity: Option<f64>,
    /// Most improved listings first.
    pub improved: Vec<DiffListing>,
    /// Most regressed listings first.
    pub regressed: Vec<DiffListing>,
}

/// Everything the report shows.
#[derive(Debug, Clone)]
pub struct ReportData {
    /// The dataset's name.
    pub dataset_name: String,
    /// Images and listings.
    pub images: usize,
    /// See `images`.
    pub listings: usize,
    /// The encoder, described.
    pub encoder: String,
    /// Its metrics, then raw pixels' (when the encoder is not the pixel baseline itself).
    pub metrics: Vec<EvalReport>,
    /// Its health.
    pub health: Health,
    /// The top hubs' images (with how many images each is a neighbour of).
    pub hubs: Vec<(Thumb, usize)>,
    /// The quadrant chart as PNG, or why there is none.
    pub quadrant_png: Result<Vec<u8>, String>,
    /// The PCA layout as PNG, or why there is none.
    pub projection_png: Result<Vec<u8>, String>,
    /// Sample queries with their neighbours.
    pub neighbours: Vec<NeighbourRow>,
    /// The diff, when encoder A was named.
    pub diff: Option<DiffSection>,
    /// natview's version.
    pub version: &'static str,
}

/// Computes everything `request` asks for (embeddings in the workspace reused, else computed
/// and saved).
pub fn gather_report(
    dataset: &Dataset,
    workspace: &Workspace,
    run: &RunSettings,
    request: &ReportRequest,
    progress: &dyn ProgressSink,
    cancel: &CancelFlag,
) -> Result<ReportData, ReportError> {
    let embed = |spec: &EncoderSpec| -> Result<EmbeddingSet, ReportError> {
        let (set, _) = embed_dataset(
            dataset,
            workspace,
            &run.embed_request(spec.clone()),
            progress,
            cancel,
        )?;
        Ok(set)
    };
    let set = embed(&request.encoder.1)?;
    let mut metrics = vec![evaluate(&set)?];
    if set.meta.encoder.model != ModelKind::Pixels {
        let pixels = embed(&EncoderSpec::untrained(ModelKind::Pixels))?;
        metrics.push(evaluate(&pixels)?);
    }
    let step = |phase: &str| {
        progress.report(Progress {
            phase: phase.into(),
            done: 0,
            total: 1,
        });
        if cancel.is_cancelled() {
            Err(ReportError::Cancelled)
        } else {
            Ok(())
        }
    };
    let mut observer = JobObserver::new(progress, cancel);
    step("health")?;
    let listing = listing_numbers(&set.items);
    let health = health(&set.matrix, &listing, HealthParams::default())?;
    let thumbs = Thumbnails::new(workspace, &set);
    let hubs = health
        .hubness
        .top
        .iter()
        .take(8)
        .map(|h| (thumbs.thumb(h.row), h.occurrences))
        .collect();
    step("quadrant chart")?;
    let model = set.meta.encoder.describe();
    let quadrant_png = quadrant_chart(
        &set.matrix,
        &set.items,
        &QuadrantParams {
            listings: request.chart_listings,
            seed: request.seed,
            ..QuadrantParams::default()
        },
    )
    .map_err(|e| e.to_string())
    .and_then(|chart| {
        let options = HeatmapOptions::for_chart(&chart, &model, None);
        png_bytes(&render_quadrant_chart(&chart, &options).0)
    });
    step("PCA layout")?;
    let spec = ProjectionSpec::new(ProjectionMethod::Pca);
    let projection_png = dataset_layout(
        &set,
        workspace,
        &spec,
        LayoutOptions::default(),
        &mut observer,
    )
    .map_err(|e| e.to_string())
    .and_then(|layout| {
        // By label when the dataset has labels, else by listing (the most frequent get
        // colours).
        let labelled = set.items.iter().any(|i| i.label.is_some());
        let (categories, note) = if labelled {
            let c = categorical(set.items.len(), |i| set.items[i].label.as_deref());
            (c, "coloured by label")
        } else {
            let c = categorical(set.items.len(), |i| Some(set.items[i].listing.as_str()));
            (c, "coloured by listing")
        };
        png_bytes(&render_scatter(
            &layout.projection.points,
            &categories,
            &format!("PCA of {model}"),
            note,
        ))
    });
    step("neighbours")?;
    let neighbours = sample_neighbours(&set, &listing, request, &thumbs)?;
    let diff = match &request.from {
        Some((name, spec)) => {
            let a = embed(spec)?;
            let b_weights = request.encoder.1.weights.clone();
            step("diff")?;
            let run = DiffRun::new(
                (a, set.clone()),
                (name.clone(), request.encoder.0.clone()),
                b_weights.as_deref(),
                DiffParams::default(),
            )?;
            let layouts = aligned_layouts(&run, workspace, ProjectionMethod::Pca, &mut observer);
            Some(diff_section(&run, layouts.ok().as_ref(), request, &thumbs)?)
        }
        None => None,
    };
    Ok(ReportData {
        dataset_name: request.dataset_name.clone(),
        images: set.items.len(),
        listings: listing.iter().max().map_or(0, |m| m + 1),
        encoder: model,
        metrics,
        health,
        hubs,
        quadrant_png,
        projection_png,
        neighbours,
        diff,
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// `request.samples` queries, each the first view of a seeded sample of listings with two or
/// more views, with their nearest neighbours (exact search).
fn sample_neighbours(
    set: &EmbeddingSet,
    listing: &[usize],
    request: &ReportRequest,
    thumbs: &Thumbnails,
) -> Result<Vec<NeighbourRow>, ReportError> {
    let groups = natview_analysis::rows_by_listing(listing);
    let several: Vec<&Vec<usize>> = groups.iter().filter(|g| g.len() >= 2).collect();
    let pool = if several.is_empty() {
        groups.iter().filter(|g| !g.is_empty()).collect()
    } else {
        several
    };
    let mut rng = SplitMix64::new(request.seed);
    let picked = rng.sample_sorted(pool.len(), request.samples.min(pool.len()));
    let mut rows = Vec::new();
    for p in picked {
        let query = pool[p][0];
        let found = natview_index::exact_neighbours(
            &set.matrix,
            set.matrix.row(query),
            request.neighbours,
            Some(query),
        )
        .map_err(|e| ReportError::Other(e.to_string()))?;
        rows.push(NeighbourRow {
            query: thumbs.thumb(query),
            neighbours: found
                .iter()
                .map(|n| {
                    (
                        thumbs.thumb(n.id),
                        n.similarity,
                        listing[n.id] == listing[query],
                    )
                })
                .collect(),
        });
    }
    Ok(rows)
}

fn diff_section(
    run: &DiffRun,
    layouts: Option<&AlignedLayouts>,
    request: &ReportRequest,
    thumbs: &Thumbnails,
) -> Result<DiffSection, ReportError> {
    let d = &run.diff;
    let listing_of = |l: &natview_analysis::diff::ListingChange| DiffListing {
        name: run.listing_name(l.listing).to_string(),
        held_out: run.held_out(l.listing),
        recall: l.recall,
        mrr: l.mrr,
        gap: l.gap,
        views: l.items.iter().take(5).map(|&i| thumbs.thumb(i)).collect(),
    };
    let held_out = (!run.heldout.is_empty()).then(|| {
        let held = |c: Change| d.with_change(c).filter(|l| run.held_out(l.listing)).count();
        let all = d
            .listings
            .iter()
            .filter(|l| run.held_out(l.listing))
            .count();
        (held(Change::Improved), held(Change::Regressed), all)
    });
    let layouts_png = match layouts {
        Some(l) => {
            let categories = change_categories(&l.change);
            let a = png_bytes(&render_scatter(
                &l.a,
                &categories,
                &format!("A: {}", run.from),
                "PCA; colour: how much of each image's neighbourhood B kept",
            ));
            let b = png_bytes(&render_scatter(
                &l.b.points,
                &categories,
                &format!("B: {}, fitted onto A", run.to),
                &format!("Procrustes disparity {:.3}", l.b.disparity),
            ));
            a.and_then(|a| b.map(|b| (a, b))).ok()
        }
        None => None,
    };
    Ok(DiffSection {
        names: (run.from.clone(), run.to.clone()),
        k: d.k,
        recall: d.recall,
        mean_jaccard: d.mean_jaccard,
        counts: d.counts,
        held_out,
        layouts_png,
        disparity: layouts.map(|l| l.b.disparity),
        improved: d
            .with_change(Change::Improved)
            .take(request.diff_top)
            .map(listing_of)
            .collect(),
        regressed: d
            .with_change(Change::Regressed)
            .rev()
            .take(request.diff_top)
            .map(listing_of)
            .collect(),
    })
}

/// Neighbourhood change in four bands, kept (blue) to changed (red), as scatter categories.
fn change_categories(change: &[f32]) -> Categories {
    const BANDS: [(&str, u8); 4] = [
        ("kept ≥ 80 % of its neighbours", 0),
        ("kept 50–80 %", 9),
        ("kept 20–50 %", 1),
        ("kept < 20 %", 3),
    ];
    let band = |c: f32| match c {
        c if c <= 0.2 => 0,
        c if c <= 0.5 => 1,
        c if c <= 0.8 => 2,
        _ => 3,
    };
    let mut counts = [0usize; 4];
    let colours = change
        .iter()
        .map(|&c| {
            let b = band(c);
            counts[b] += 1;
            BANDS[b].1
        })
        .collect();
    let palette = natview_analysis::scatter::full_palette();
    let legend = BANDS
        .iter()
        .zip(counts)
        .map(|((name, slot), n)| (format!("{name} ({n})"), palette[usize::from(*slot)]))
        .collect();
    Categories { colours, legend }
}
