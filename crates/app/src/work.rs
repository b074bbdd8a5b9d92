//! The work of the app's background jobs other than opening a dataset, and the results they hand
//! to the views: quadrant charts (and their PNG export), projections, metrics, and queries by an
//! external image. Each function runs on a worker thread.

use natview_analysis::probe::{
    low_shot_probes, probe_classes, ClassSource, ProbeOptions, ProbeReport,
};
use natview_analysis::report::{colour_range, diverging_colour, save_quadrant_png, HeatmapOptions};
use natview_analysis::{quadrant_chart, QuadrantChart, QuadrantParams};
use natview_core::dataset::Dataset;
use natview_core::jobs::{CancelFlag, Progress, ProgressSink};
use natview_core::workspace::Workspace;
use natview_encoder::ModelKind;
use natview_pipeline::EvalReport;
use natview_pipeline::{embed_dataset, embed_query_image, evaluate, EmbeddingSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// A number no other result of this run carries (views key their textures and caches on it).
pub(super) fn next_result_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// A computed quadrant chart, ready to draw.
pub struct QuadrantResult {
    /// Unique per result.
    pub id: u64,
    /// The parameters it was computed with.
    pub params: QuadrantParams,
    /// The chart: listings, rows, similarities, statistics.
    pub chart: QuadrantChart,
    /// The colour range (1st–99th percentile of the off-diagonal similarities).
    pub range: (f32, f32),
    /// One pixel per cell, coloured red → yellow → green.
    pub image: egui::ColorImage,
    /// The model, described (for the export's caption).
    pub model: String,
    /// Computing time in milliseconds.
    pub duration_ms: f64,
}

/// Computes a quadrant chart and its cell image.
pub fn compute_quadrant(
    set: &EmbeddingSet,
    params: QuadrantParams,
    progress: &dyn ProgressSink,
) -> Result<QuadrantResult, String> {
    let started = Instant::now();
    progress.report(Progress {
        phase: "quadrant chart".into(),
        done: 0,
        total: 1,
    });
    let chart = quadrant_chart(&set.matrix, &set.items, &params).map_err(|e| e.to_string())?;
    let range = colour_range(&chart, &HeatmapOptions::default());
    let n = chart.size();
    let span = (range.1 - range.0).max(1e-6);
    let pixels: Vec<egui::Color32> = chart
        .similarity
        .iter()
        .map(|&v| {
            let [r, g, b] = diverging_colour((v - range.0) / span);
            egui::Color32::from_rgb(r, g, b)
        })
        .collect();
    Ok(QuadrantResult {
        id: next_result_id(),
        image: egui::ColorImage::new([n, n], pixels),
        params,
        chart,
        range,
        model: set.meta.encoder.describe(),
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
    })
}

/// Writes `chart` (coloured over `range`, captioned with `model`) as a PNG to `out`; returns
/// the file.
pub fn export_quadrant(
    chart: &QuadrantChart,
    range: (f32, f32),
    model: &str,
    out: &Path,
) -> Result<String, String> {
    let options = HeatmapOptions::for_chart(chart, model, Some(range));
    save_quadrant_png(chart, &options, out).map_err(|e| e.to_string())?;
    Ok(format!("quadrant chart → {}", out.display()))
}

/// Gathers the HTML report `request` asks for and writes it to `out`; returns the notice to
/// show.
pub fn export_report(
    inputs: &JobInputs,
    request: &natview_report::ReportRequest,
    out: &Path,
    progress: &dyn ProgressSink,
    cancel: &CancelFlag,
) -> Result<String, String> {
    let data = natview_report::gather_report(
        &inputs.dataset,
        &inputs.workspace,
        &inputs.run,
        request,
        progress,
        cancel,
    )
    .map_err(|e| e.to_string())?;
    let bytes = natview_report::write_report(&data, out).map_err(|e| e.to_string())?;
    Ok(format!(
        "report → {} ({:.1} MB)",
        out.display(),
        bytes as f64 / 1e6
    ))
}

/// Retrieval metrics of every encoder available for the dataset, the current one first.
pub struct MetricsResult {
    /// (short name, report) per encoder: the current model, the other encoders whose
    /// embeddings are in the workspace, then raw pixels.
    pub models: Vec<(String, EvalReport)>,
    /// Computing time in seconds (including embedding the pixels the first time).
    pub duration_secs: f64,
    /// Low-shot probes per encoder (same order as `models`), or why there are none.
    pub probes: Result<Vec<(String, ProbeReport)>, String>,
    /// Where the probes' classes came from.
    pub probe_classes: ClassSource,
    /// The current encoder's representation health, or why there is none.
    pub health: Result<HealthView, String>,
}

/// A health report with its hubs' names.
#[derive(Debug, Clone)]
pub struct HealthView {
    /// The report.
    pub report: natview_analysis::health::Health,
    /// Each top hub's path, in the report's order.
    pub hub_names: Vec<String>,
}

/// The health of `set`'s embeddings.
fn health_of(set: &EmbeddingSet) -> Result<HealthView, String> {
    let listings = natview_analysis::listing_numbers(&set.items);
    let report = natview_analysis::health::health(&set.matrix, &listings, Default::default())
        .map_err(|e| e.to_string())?;
    let hub_names = report
        .hubness
        .top
        .iter()
        .map(|hub| set.items[hub.row].path.display().to_string())
        .collect();
    Ok(HealthView { report, hub_names })
}

impl MetricsResult {
    /// The current model's report.
    pub fn current(&self) -> Option<&EvalReport> {
        self.models.first().map(|(_, r)| r)
    }
}

/// Evaluates the current model, then every other available encoder already embedded in the
/// workspace, then raw pixels (embedded now if needed: cheap), for one comparison table.
pub fn compute_metrics(
    set: &EmbeddingSet,
    dataset: &Dataset,
    workspace: &Workspace,
    run: &natview_pipeline::RunSettings,
    progress: &dyn ProgressSink,
    cancel: &CancelFlag,
) -> Result<MetricsResult, String> {
    let started = Instant::now();
    let current = set.meta.encoder.workspace_key();
    let others: Vec<_> = natview_train::catalogue::available_encoders(workspace)
        .into_iter()
        .filter(|e| e.name != current)
        .filter(|e| {
            e.spec.model == ModelKind::Pixels || workspace.embeddings_path(&e.name).is_file()
        })
        .collect();
    let total = 1 + others.len();
    progress.report(Progress {
        phase: format!("evaluating {current}"),
        done: 0,
        total,
    });
    // The probes' classes: the label column when it has two classes or more, else the
    // analysts' tags (read through a second connection to the store).
    let store = natview_labels::LabelStore::open(&workspace.labels_path()).ok();
    let labels = set.items.iter().filter_map(|i| i.label.as_deref());
    let distinct: std::collections::HashSet<&str> = labels.collect();
    let probe_classes = if distinct.len() >= 2 {
        ClassSource::Label
    } else {
        ClassSource::Tags
    };
    let mut probes: Result<Vec<(String, ProbeReport)>, String> = Ok(Vec::new());
    let mut add_probes = |name: &str, set: &EmbeddingSet| {
        if let Ok(list) = &mut probes {
            match probe(set, probe_classes, store.as_ref()) {
                Ok(report) => list.push((name.to_string(), report)),
                Err(e) => probes = Err(e),
            }
        }
    };
    add_probes(&current, set);
    let health = health_of(set);
    let mut models = vec![(current, evaluate(set).map_err(|e| e.to_string())?)];
    for (i, other) in others.into_iter().enumerate() {
        if cancel.is_cancelled() {
            return Err("cancelled".into());
        }
        let request = run.embed_request(other.spec.clone());
        let (other_set, _) = embed_dataset(dataset, workspace, &request, progress, cancel)
            .map_err(|e| e.to_string())?;
        progress.report(Progress {
            phase: format!("evaluating {}", other.name),
            done: 1 + i,
            total,
        });
        add_probes(&other.name, &other_set);
        models.push((other.name, evaluate(&other_set).map_err(|e| e.to_string())?));
    }
    Ok(MetricsResult {
        models,
        duration_secs: started.elapsed().as_secs_f64(),
        probes,
        probe_classes,
        health,
    })
}

/// The low-shot probes of one encoder's embeddings.
fn probe(
    set: &EmbeddingSet,
    source: ClassSource,
    store: Option<&natview_labels::LabelStore>,
) -> Result<ProbeReport, String> {
    let tags_of = |i: usize| {
        let key = set.items[i].path.to_string_lossy();
        store
            .and_then(|s| s.tags_of(&key))
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default()
    };
    let (class, names) = probe_classes(&set.items, source, &tags_of);
    low_shot_probes(
        &set.matrix,
        &class,
        &names,
        &natview_analysis::listing_numbers(&set.items),
        &ProbeOptions::default(),
    )
    .map_err(|e| match source {
        ClassSource::Label => e.to_string(),
        ClassSource::Tags => format!(
            "{e} (the dataset has no label column with 2+ classes, so the probes use the tags: \
             give images one tag each, e.g. with 1–9)"
        ),
    })
}

/// A query embedded on a worker: an image from outside the dataset, or a text.
pub enum QueryAnswer {
    /// An image file.
    Image(ImageQuery),
    /// A text.
    Text(crate::text_search::TextQuery),
}

/// An external image embedded for a query.
pub struct ImageQuery {
    /// The file.
    pub path: PathBuf,
    /// Its embedding.
    pub vector: Vec<f32>,
    /// Its thumbnail.
    pub thumbnail: Option<egui::ColorImage>,
}

/// Embeds an external image with the encoder of the session's embeddings (`meta`), decoded as
/// their images were.
pub fn embed_image_query(
    path: PathBuf,
    meta: &natview_pipeline::store::EmbeddingsMeta,
    force_cpu: bool,
) -> Result<ImageQuery, String> {
    let vector = embed_query_image(&path, meta, force_cpu).map_err(|e| e.to_string())?;
    let thumbnail = super::open_job::thumbnail_of(&path);
    Ok(ImageQuery {
        path,
        vector,
        thumbnail,
    })
}

/// Shared inputs of analysis jobs, cloned cheaply from the session.
#[derive(Clone)]
pub struct JobInputs {
    /// The embeddings.
    pub set: Arc<EmbeddingSet>,
    /// The dataset.
    pub dataset: Arc<Dataset>,
    /// The workspace.
    pub workspace: Workspace,
    /// The run's common settings (device, batch size).
    pub run: natview_pipeline::RunSettings,
}
