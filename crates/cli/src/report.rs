//! `natview report [DATASET]`: the whole pipeline headless, printed; with `--html OUT.html
//! [--from A]`, one self-contained HTML file to share — the encoder's metrics beside raw
//! pixels, its health, the quadrant chart, a PCA layout, sample neighbours with thumbnails and,
//! with `--from`, what changed since encoder A (`natview_report`).

use super::commands::{load, main_job};
use super::diff::named_spec;
use super::output::Bar;
use super::CommonArgs;
use clap::Args;
use natview_core::dataset::demo_dataset_path;
use natview_core::jobs::CancelFlag;
use natview_core::workspace::Workspace;
use natview_report::{gather_report, write_report, ReportRequest};
use std::path::PathBuf;
use std::time::Instant;

/// `natview report` arguments.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Dataset: a folder of listings, a flat folder, or a .csv/.jsonl manifest (default: the
    /// built-in emoji demo).
    dataset: Option<PathBuf>,
    /// Write one self-contained HTML report (images and styles inside the file) here instead
    /// of printing the pipeline's figures.
    #[arg(long)]
    html: Option<PathBuf>,
    /// With --html, also show what changed since this encoder (before; the encoder reported
    /// on is the one after): a model name or a weights file, as `natview diff --from` takes it.
    #[arg(long, requires = "html")]
    from: Option<String>,
    /// Query images shown with their nearest neighbours.
    #[arg(long, default_value_t = 8)]
    samples: usize,
    /// Listings in the quadrant chart.
    #[arg(long, default_value_t = 16)]
    listings: usize,
}

/// Runs `natview report`.
pub fn run(args: &ReportArgs, common: &CommonArgs) -> anyhow::Result<()> {
    let Some(html) = &args.html else {
        return main_job(args.dataset.clone(), common);
    };
    let started = Instant::now();
    let path = match &args.dataset {
        Some(path) => path.clone(),
        None => demo_dataset_path()?,
    };
    let dataset = load(&path)?;
    let workspace = Workspace::for_dataset(&dataset, common.workspace.as_deref());
    let spec = common.spec_for(&dataset)?;
    // Named as the user would: the model or weights named, else the weights' file name.
    let name = common
        .model
        .clone()
        .or_else(|| common.weights.as_ref().map(|w| w.display().to_string()))
        .or_else(|| {
            spec.weights
                .as_ref()
                .and_then(|w| w.file_name())
                .map(|f| f.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| spec.model.name().to_string());
    let mut request = ReportRequest::new(path.display().to_string(), (name, spec));
    request.samples = args.samples;
    request.chart_listings = args.listings.max(2);
    request.seed = common.seed;
    if let Some(from) = &args.from {
        let (spec, _, _) = named_spec(from, common)?;
        request.from = Some((from.clone(), spec));
    }
    let bar = Bar::new(common.quiet);
    let data = gather_report(
        &dataset,
        &workspace,
        &common.run_settings(),
        &request,
        &bar,
        &CancelFlag::new(),
    )?;
    bar.finish();
    let bytes = write_report(&data, html)?;
    eprintln!(
        "wrote {} ({:.1} MB, {:.1} s): {}{}",
        html.display(),
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64(),
        data.health.verdict.text,
        data.diff.as_ref().map_or_else(String::new, |d| format!(
            "; {} → {}: {} improved, {} regressed",
            d.names.0, d.names.1, d.counts.0, d.counts.1
        ))
    );
    Ok(())
}
