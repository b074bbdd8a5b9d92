//! `natview project`: a 2-D layout (PCA, UMAP or t-SNE) of a dataset's embeddings, saved in the
//! workspace (reused when it matches), with its quality measures and a PNG for reports.

use super::commands::embed;
use super::output::Bar;
use super::CommonArgs;
use anyhow::Context;
use clap::Args;
use natview_analysis::projection::{ProjectionMethod, ProjectionSpec};
use natview_analysis::quality::DEFAULT_QUALITY_SAMPLE;
use natview_analysis::report::{save_projection_csv, save_scatter_png};
use natview_analysis::scatter::{categorical, Categories};
use natview_core::dataset::csv_field;
use natview_pipeline::layouts::{dataset_layout, LayoutOptions};
use natview_pipeline::EmbeddingSet;
use std::path::PathBuf;

/// `natview project` arguments.
#[derive(Debug, Args)]
pub struct ProjectArgs {
    /// Dataset: a folder of listings, a flat folder, or a .csv/.jsonl manifest.
    dataset: PathBuf,
    /// Projection method: pca, umap or tsne.
    #[arg(long, default_value = "pca")]
    method: String,
    #[command(flatten)]
    params: LayoutParams,
    /// Also copy the layout (CSV `id,x,y`) here; it is always saved in the workspace as
    /// projection-<method>-<parameters>.<model>.csv.
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// Draw the scatter into this PNG, coloured by --colour-by.
    #[arg(long)]
    png: Option<PathBuf>,
    /// What colours the PNG's points: label, listing, swav (the SwAV cluster of each image,
    /// with weights a SwAV run exported), or a metadata column.
    #[arg(long, default_value = "label")]
    colour_by: String,
    /// Measure kNN preservation and trustworthiness at k = 10.
    #[arg(long)]
    quality: bool,
    /// Query points the quality measures sample.
    #[arg(long, default_value_t = DEFAULT_QUALITY_SAMPLE)]
    quality_sample: usize,
    /// Write each image's faithfulness here as CSV `id,listing,path,kept`: the share of its 10
    /// nearest neighbours in the embedding that the layout keeps among its 10 nearest (where the
    /// picture can be trusted, 1, and where it lies, 0); prints the mean and the least faithful
    /// listings.
    #[arg(long)]
    faithfulness: Option<PathBuf>,
    /// Compute anew even when the workspace has this layout.
    #[arg(long)]
    recompute: bool,
}

/// Neighbours compared per point by `--faithfulness` (the app's colouring uses as many).
const FAITHFULNESS_K: usize = 10;

/// Writes each point's faithfulness (`natview_analysis::quality::point_faithfulness`) to `out`
/// and prints its mean and the least faithful listings.
fn write_faithfulness(
    set: &EmbeddingSet,
    points: &[[f32; 2]],
    out: &std::path::Path,
    quiet: bool,
) -> anyhow::Result<()> {
    let mut bar = Bar::new(quiet);
    let graph = natview_analysis::knn::knn_graph(&set.matrix, FAITHFULNESS_K, &mut bar)?;
    bar.finish();
    let grid = natview_analysis::scatter::PointGrid::build(points);
    let kept = natview_analysis::quality::point_faithfulness(&graph, points, &grid)?;
    let mut text = String::from("id,listing,path,kept\n");
    for (i, (item, k)) in set.items.iter().zip(&kept).enumerate() {
        text.push_str(&format!(
            "{i},{},{},{k:.2}\n",
            csv_field(&item.listing),
            csv_field(&item.path.display().to_string())
        ));
    }
    natview_core::workspace::write_atomic(out, text.as_bytes())
        .map_err(|e| anyhow::anyhow!("{}: {e}", out.display()))?;
    let mean = kept.iter().map(|&k| f64::from(k)).sum::<f64>() / kept.len().max(1) as f64;
    println!(
        "faithfulness: the layout keeps {:.1} % of each image's {FAITHFULNESS_K} nearest neighbours on average → {}",
        100.0 * mean,
        out.display()
    );
    let listing = natview_analysis::listing_numbers(&set.items);
    let mut by_listing: Vec<(f64, usize)> = natview_analysis::rows_by_listing(&listing)
        .iter()
        .filter(|rows| !rows.is_empty())
        .map(|rows| {
            let m = rows.iter().map(|&r| f64::from(kept[r])).sum::<f64>() / rows.len() as f64;
            (m, rows[0])
        })
        .collect();
    by_listing.sort_by(|a, b| a.0.total_cmp(&b.0));
    println!("least faithful listings (mean share kept):");
    for (m, row) in by_listing.iter().take(5) {
        println!("  {:<28} {:.2}", set.items[*row].listing, m);
    }
    Ok(())
}

/// The layout parameters `natview project` and `natview-bench layout` share.
#[derive(Debug, Args)]
pub struct LayoutParams {
    /// UMAP: neighbours per point.
    #[arg(long, default_value_t = 15)]
    neighbours: usize,
    /// UMAP: minimum distance between laid-out points.
    #[arg(long, default_value_t = 0.1)]
    min_dist: f32,
    /// t-SNE: perplexity (3 × perplexity neighbours per point).
    #[arg(long, default_value_t = 30.0)]
    perplexity: f32,
    /// UMAP: optimisation epochs (default 500 up to 10k points, else 200); t-SNE: iterations
    /// after early exaggeration (default 500).
    #[arg(long)]
    epochs: Option<usize>,
}

impl LayoutParams {
    /// The layout of `method` (pca, umap or tsne) with these parameters and `seed`.
    pub fn spec(&self, method: &str, seed: u64) -> anyhow::Result<ProjectionSpec> {
        Ok(ProjectionSpec {
            method: ProjectionMethod::parse(method)?,
            neighbours: self.neighbours,
            min_dist: self.min_dist,
            perplexity: self.perplexity,
            epochs: self.epochs,
            seed,
        })
    }
}

/// `natview project`. The global `--seed` seeds the layout too.
pub fn run(args: &ProjectArgs, common: &CommonArgs) -> anyhow::Result<()> {
    let spec = args.params.spec(&args.method, common.seed)?;
    spec.check()?;
    let embedded = embed(&args.dataset, common)?;
    let set = &embedded.set;
    let mut bar = Bar::new(common.quiet);
    let options = LayoutOptions {
        recompute: args.recompute,
        quality_sample: args.quality.then_some(args.quality_sample),
    };
    let layout = dataset_layout(set, &embedded.workspace, &spec, options, &mut bar)
        .with_context(|| format!("{} of {}", spec.describe(), args.dataset.display()))?;
    bar.finish();
    if let Some(reason) = &layout.stale_reason {
        eprintln!("the saved layout was not used: {reason}");
    }
    let (rows, dim) = (set.matrix.rows, set.matrix.dim);
    let how = if layout.reused {
        format!("saved layout (made in {:.2} s)", layout.meta.seconds)
    } else {
        format!("{:.2} s", layout.meta.seconds)
    };
    let detail = match (spec.method, layout.projection.input_variance_kept) {
        (ProjectionMethod::Pca, _) => format!(
            ", explained variance {:.1}% + {:.1}%",
            100.0 * layout.projection.explained_variance_ratio[0],
            100.0 * layout.projection.explained_variance_ratio[1]
        ),
        (_, Some(kept)) => format!(
            ", kNN graph in PCA-50 keeping {:.1}% of the variance",
            100.0 * kept
        ),
        _ => String::new(),
    };
    println!(
        "{} of {rows} × {dim}: {how}{detail} → {}",
        spec.describe(),
        layout.csv_path.display()
    );
    if let Some(q) = layout.meta.quality {
        println!(
            "quality at k = {} on {} points: kNN preservation {:.4}, trustworthiness {:.4}",
            q.k, q.sampled, q.knn_preservation, q.trustworthiness
        );
    }
    if let Some(out) = &args.out {
        save_projection_csv(&layout.projection, out)?;
        println!("layout → {}", out.display());
    }
    if let Some(out) = &args.faithfulness {
        write_faithfulness(set, &layout.projection.points, out, common.quiet)?;
    }
    if let Some(png) = &args.png {
        let categories = colour_by(set, &args.colour_by)?;
        let title = format!(
            "{} of {} ({} images)",
            spec.method.label(),
            args.dataset.display(),
            rows
        );
        let note = format!(
            "{} · model {} · coloured by {}",
            spec.describe(),
            set.meta.encoder.workspace_key(),
            args.colour_by
        );
        let (w, h) = save_scatter_png(&layout.projection.points, &categories, &title, &note, png)?;
        println!("scatter → {} ({w}×{h} px)", png.display());
    }
    Ok(())
}

/// Categories of the items by `what`: "label", "listing", "swav" (the SwAV cluster, for
/// weights a SwAV run exported), or a metadata column.
fn colour_by(set: &EmbeddingSet, what: &str) -> anyhow::Result<Categories> {
    let items = &set.items;
    Ok(match what {
        "label" => categorical(items.len(), |i| items[i].label.as_deref()),
        "listing" => categorical(items.len(), |i| Some(items[i].listing.as_str())),
        "swav" | "cluster" => {
            let Some(clusters) = &set.clusters else {
                anyhow::bail!(
                    "--colour-by swav: the encoder ({}) has no SwAV clusters; use weights from `natview finetune --method swav`",
                    set.meta.encoder.describe()
                );
            };
            let names: Vec<String> = clusters.iter().map(|k| format!("cluster {k}")).collect();
            categorical(items.len(), |i| names.get(i).map(String::as_str))
        }
        column => categorical(items.len(), |i| {
            items[i].metadata.get(column).map(String::as_str)
        }),
    })
}
