//! The CLI's jobs: each loads the dataset, reuses or rebuilds what it needs in the workspace,
//! and prints where its outputs went.

use super::output::{print_eval_table, print_skipped, Bar};
use super::{CommonArgs, EvalArgs, HeatmapArgs, IndexArgs, NeighboursArgs};
use anyhow::{bail, Context};
use natview_analysis::report::{save_quadrant_png, HeatmapOptions};
use natview_analysis::{quadrant_chart, QuadrantParams};
use natview_core::dataset::{demo_dataset_path, load_dataset, Dataset, ViewFilter};
use natview_core::jobs::CancelFlag;
use natview_core::workspace::Workspace;
use natview_encoder::{EncoderSpec, ModelKind};
use natview_index::{exact_neighbours, Neighbour, NeighbourIndex};
use natview_pipeline::evaluate_rows_where;
use natview_pipeline::store::PartialRun;
use natview_pipeline::{
    embed_dataset, embed_query_image, ensure_index, EmbeddingSet, EvalReport, PipelineError,
};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Loads a dataset and prints a one-line summary.
pub fn load(path: &Path) -> anyhow::Result<Dataset> {
    let dataset = load_dataset(path)?;
    eprintln!(
        "dataset {}: {} images in {} listings ({:?})",
        path.display(),
        dataset.items.len(),
        dataset.listing_count(),
        dataset.kind
    );
    Ok(dataset)
}

/// A dataset with its workspace and embeddings (computed or reused).
pub struct Embedded {
    /// The dataset as loaded.
    pub dataset: Dataset,
    /// Its workspace.
    pub workspace: Workspace,
    /// Its embeddings with the chosen encoder.
    pub set: EmbeddingSet,
}

/// Embeds with the encoder described by `spec`, printing what happened.
pub fn embed_with(
    dataset: &Dataset,
    workspace: &Workspace,
    spec: EncoderSpec,
    common: &CommonArgs,
) -> anyhow::Result<EmbeddingSet> {
    if let Some(weights) = spec.weights.as_deref().filter(|w| {
        spec.model == ModelKind::Checkpoint || natview_encoder::checkpoint::is_pytorch_file(w)
    }) {
        let info = natview_encoder::checkpoint::inspect(weights, spec.weights_key.as_deref())?;
        eprintln!("encoder: {}", info.summary);
        eprintln!(
            "preprocessing: {}{}",
            info.preprocessing,
            if spec.input_size_px == info.input_size_px {
                String::new()
            } else {
                format!("; embedding at {} px (--size)", spec.input_size_px)
            }
        );
    }
    let request = common.run_settings().embed_request(spec);
    let bar = Bar::new(common.quiet);
    let result = embed_dataset(
        dataset,
        workspace,
        &request,
        &bar,
        &super::interrupt_flag()?,
    );
    bar.finish();
    let (set, report) = match result {
        Err(PipelineError::Cancelled) => anyhow::bail!(
            "stopped; the images embedded so far are saved in {}: run the same command again to continue",
            PartialRun::new(workspace, &request.spec.workspace_key())
                .dir()
                .display()
        ),
        other => other?,
    };
    let description = request.spec.describe();
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    if report.reused {
        eprintln!(
            "embeddings: reused {} ({description})",
            short_path(&workspace.embeddings_path(&request.spec.workspace_key()))
        );
    } else {
        if let Some(reason) = &report.stale_reason {
            eprintln!("embeddings: recomputing ({reason})");
        }
        eprintln!(
            "embeddings: {} images in {:.1} s ({:.0} images/s) on {} with {description} → {}",
            set.items.len(),
            report.duration_secs,
            set.items.len() as f64 / report.duration_secs.max(1e-9),
            super::output::device_words(report.device, common.cpu),
            short_path(&workspace.embeddings_path(&request.spec.workspace_key()))
        );
    }
    print_skipped(&report.skipped, &workspace.skipped_path());
    Ok(set)
}

fn short_path(path: &Path) -> String {
    path.display().to_string()
}

/// `natview embed`.
pub fn embed(path: &Path, common: &CommonArgs) -> anyhow::Result<Embedded> {
    let dataset = load(path)?;
    let workspace = Workspace::for_dataset(&dataset, common.workspace.as_deref());
    let spec = common.spec_for(&dataset)?;
    let remember = (spec.model == ModelKind::Checkpoint).then(|| spec.clone());
    let set = embed_with(&dataset, &workspace, spec, common)?;
    if let Some(spec) = remember {
        // The app's Model menu offers the checkpoints embedded with on this dataset.
        if let Err(e) = natview_train::catalogue::remember_checkpoint(&workspace, &spec) {
            eprintln!("warning: could not note the checkpoint in the workspace: {e}");
        }
    }
    Ok(Embedded {
        dataset,
        workspace,
        set,
    })
}

pub(super) fn index_for(
    embedded: &Embedded,
    hnsw: super::HnswArgs,
    common: &CommonArgs,
) -> anyhow::Result<NeighbourIndex> {
    let bar = Bar::new(common.quiet);
    let (index, report) = ensure_index(
        &embedded.workspace,
        &embedded.set,
        hnsw.params(),
        &bar,
        &CancelFlag::new(),
    )?;
    bar.finish();
    let base = embedded.workspace.dir().join(
        embedded
            .workspace
            .index_basename(&embedded.set.meta.encoder.workspace_key()),
    );
    if report.reused {
        eprintln!(
            "index: reloaded {}.* in {:.2} s",
            base.display(),
            report.duration_secs
        );
    } else {
        if let Some(reason) = &report.rebuilt_because {
            eprintln!("index: rebuilding ({reason})");
        }
        let p = index.params();
        eprintln!(
            "index: built HNSW over {} vectors (M={}, ef_construction={}) in {:.2} s → {}.*",
            index.len(),
            p.max_connections,
            p.ef_construction,
            report.duration_secs,
            base.display()
        );
    }
    Ok(index)
}

/// `natview index`.
pub(crate) fn index(args: &IndexArgs, common: &CommonArgs) -> anyhow::Result<()> {
    let embedded = embed(&args.data.dataset, common)?;
    index_for(&embedded, args.hnsw, common)?;
    Ok(())
}

/// `natview neighbours`.
pub(crate) fn neighbours(args: &NeighboursArgs, common: &CommonArgs) -> anyhow::Result<()> {
    if let Some(backend) = &args.backend {
        return super::interop::neighbours_from_backend(args, backend, common);
    }
    let embedded = embed(&args.data.dataset, common)?;
    let set = &embedded.set;
    let (query, exclude, label): (Vec<f32>, Option<usize>, String) =
        match (&args.id, &args.path, &args.image) {
            (Some(id), _, _) => {
                if *id >= set.items.len() {
                    bail!(
                        "item id {id} is out of range (the dataset has {} embedded images)",
                        set.items.len()
                    );
                }
                (
                    set.matrix.row(*id).to_vec(),
                    Some(*id),
                    format!("item {id} ({})", set.items[*id].path.display()),
                )
            }
            (_, Some(path), _) => {
                let found = set
                    .items
                    .iter()
                    .find(|i| i.path == *path || embedded.dataset.item_path(i) == *path);
                let Some(item) = found else {
                    bail!(
                        "{}: not an image of this dataset (or it was skipped)",
                        path.display()
                    );
                };
                (
                    set.matrix.row(item.id).to_vec(),
                    Some(item.id),
                    format!("item {} ({})", item.id, item.path.display()),
                )
            }
            (_, _, Some(image)) => (
                embed_query_image(image, &set.meta, common.cpu)?,
                None,
                format!("image {}", image.display()),
            ),
            _ => bail!("give a query: --id N, --path PATH or --image FILE"),
        };
    let found: Vec<Neighbour> = if args.exact {
        exact_neighbours(&set.matrix, &query, args.k, exclude)?
    } else {
        let index = index_for(&embedded, args.hnsw, common)?;
        match exclude {
            Some(id) => index.search_excluding(&query, id, args.k, None)?,
            None => index.search(&query, args.k, None)?,
        }
    };
    let query_listing = exclude.map(|id| set.items[id].listing.clone());
    print_ranked(
        set,
        &found,
        &Ranked {
            what: "neighbours",
            query: &label,
            search: if args.exact { "exact" } else { "hnsw" },
            query_listing: query_listing.as_deref(),
            json: args.json,
        },
    )
}

/// How a ranked list of items is printed.
pub(crate) struct Ranked<'a> {
    /// "neighbours" or "matches": the JSON key and the table's title.
    pub what: &'a str,
    /// What was asked ("item 7 (…)", "text \"red sneakers\"").
    pub query: &'a str,
    /// "hnsw" or "exact".
    pub search: &'a str,
    /// The query item's listing, to mark items of the same listing.
    pub query_listing: Option<&'a str>,
    /// JSON instead of a table.
    pub json: bool,
}

/// Prints `found` (best first) as a table or JSON.
pub(crate) fn print_ranked(
    set: &EmbeddingSet,
    found: &[Neighbour],
    how: &Ranked,
) -> anyhow::Result<()> {
    let same_listing = |listing: &str| how.query_listing == Some(listing);
    if how.json {
        let rows: Vec<serde_json::Value> = found
            .iter()
            .enumerate()
            .map(|(rank, n)| {
                let item = &set.items[n.id];
                serde_json::json!({
                    "rank": rank + 1,
                    "id": n.id,
                    "similarity": n.similarity,
                    "listing": item.listing,
                    "same_listing": same_listing(&item.listing),
                    "label": item.label,
                    "path": item.path,
                })
            })
            .collect();
        let mut out = serde_json::json!({
            "query": how.query,
            "model": set.meta.encoder.describe(),
            "search": how.search,
        });
        out[how.what] = serde_json::Value::Array(rows);
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "{} of {} — {}, {} search",
        how.what,
        how.query,
        set.meta.encoder.describe(),
        if how.search == "exact" {
            "exact"
        } else {
            "HNSW"
        }
    );
    let listing_width = found
        .iter()
        .map(|n| set.items[n.id].listing.chars().count())
        .max()
        .unwrap_or(0)
        .max("listing".len());
    println!(
        "{:>4} {:>6} {:>10}  {:<4}  {:<listing_width$}  path",
        "rank", "id", "similarity", "same", "listing"
    );
    for (rank, n) in found.iter().enumerate() {
        let item = &set.items[n.id];
        let same = if same_listing(&item.listing) {
            "yes"
        } else {
            ""
        };
        println!(
            "{:>4} {:>6} {:>10.4}  {:<4}  {:<listing_width$}  {}",
            rank + 1,
            n.id,
            n.similarity,
            same,
            item.listing,
            item.path.display()
        );
    }
    Ok(())
}

fn parse_range(text: &str) -> anyhow::Result<(f32, f32)> {
    let (lo, hi) = text
        .split_once(':')
        .with_context(|| format!("--range `{text}`: expected LOW:HIGH, e.g. 0.2:1.0"))?;
    let lo: f32 = lo
        .trim()
        .parse()
        .with_context(|| format!("--range `{text}`: bad LOW"))?;
    let hi: f32 = hi
        .trim()
        .parse()
        .with_context(|| format!("--range `{text}`: bad HIGH"))?;
    if hi <= lo {
        bail!("--range `{text}`: HIGH must be above LOW");
    }
    Ok((lo, hi))
}

/// Renders the quadrant chart of `set` to `out` and prints its statistics.
pub fn write_heatmap(
    set: &EmbeddingSet,
    params: &QuadrantParams,
    range: Option<(f32, f32)>,
    out: &Path,
) -> anyhow::Result<()> {
    let chart = quadrant_chart(&set.matrix, &set.items, params)?;
    let options = HeatmapOptions::for_chart(&chart, &set.meta.encoder.describe(), range);
    let (width, height) = save_quadrant_png(&chart, &options, out)?;
    let s = &chart.stats;
    println!(
        "quadrant chart ({} listings × {} views): intra mean {:.3} (median {:.3}), inter mean {:.3} (median {:.3}), gap {:.3}, AUC {:.3}",
        chart.listings.len(),
        chart.views,
        s.intra_mean,
        s.intra_median,
        s.inter_mean,
        s.inter_median,
        s.gap,
        s.auc
    );
    println!("views: {}", chart.views_note());
    println!("heatmap → {} ({width}×{height} px)", out.display());
    Ok(())
}

/// `natview heatmap`.
pub(crate) fn heatmap(args: &HeatmapArgs, common: &CommonArgs) -> anyhow::Result<()> {
    let range = args.range.as_deref().map(parse_range).transpose()?;
    let embedded = embed(&args.data.dataset, common)?;
    let params = QuadrantParams {
        listings: args.listings,
        views: args.views,
        seed: args.chart_seed,
        label: args.label.clone(),
        picked: args.pick.clone(),
    };
    write_heatmap(&embedded.set, &params, range, &args.out)
}

pub(super) fn eval_reports(
    embedded: &Embedded,
    baseline: bool,
    only: Option<&HashSet<String>>,
    queries: Option<&ViewFilter>,
    common: &CommonArgs,
) -> anyhow::Result<Vec<EvalReport>> {
    let mut reports = vec![evaluate_subset(&embedded.set, only, queries)?];
    if let Some(pixels) = pixel_baseline(embedded, baseline, common)? {
        reports.push(evaluate_subset(&pixels, only, queries)?);
    }
    Ok(reports)
}

/// The raw-pixel embeddings of the dataset when `baseline` asks for them (and the model is
/// not the pixel baseline itself).
pub(super) fn pixel_baseline(
    embedded: &Embedded,
    baseline: bool,
    common: &CommonArgs,
) -> anyhow::Result<Option<EmbeddingSet>> {
    if !baseline || embedded.set.meta.encoder.model == ModelKind::Pixels {
        return Ok(None);
    }
    embed_with(
        &embedded.dataset,
        &embedded.workspace,
        EncoderSpec::untrained(ModelKind::Pixels),
        common,
    )
    .map(Some)
}

/// Evaluates the whole set, or only the items of the listings in `only`.
fn evaluate_subset(
    set: &EmbeddingSet,
    only: Option<&HashSet<String>>,
    queries: Option<&ViewFilter>,
) -> anyhow::Result<EvalReport> {
    let Some(only) = only else {
        return Ok(evaluate_rows_where(
            &set.items,
            &set.matrix,
            set.meta.encoder.describe(),
            set.meta.encoder.is_untrained(),
            queries,
        )?);
    };
    let rows: Vec<usize> = set
        .items
        .iter()
        .enumerate()
        .filter(|(_, item)| only.contains(&item.listing))
        .map(|(row, _)| row)
        .collect();
    if rows.len() < 4 {
        bail!(
            "only {} image(s) of the held-out listings are in this dataset",
            rows.len()
        );
    }
    let items: Vec<_> = rows
        .iter()
        .enumerate()
        .map(|(id, &row)| {
            let mut item = set.items[row].clone();
            item.id = id;
            item
        })
        .collect();
    Ok(evaluate_rows_where(
        &items,
        &set.matrix.select_rows(&rows),
        format!("{} (held-out listings only)", set.meta.encoder.describe()),
        set.meta.encoder.is_untrained(),
        queries,
    )?)
}

/// The held-out listings recorded in weights or a checkpoint written by `natview finetune`.
fn heldout_listings(file: Option<&Path>, common: &CommonArgs) -> anyhow::Result<HashSet<String>> {
    /// The part of [`natview_train::WeightsMeta`] and of a checkpoint's metadata needed here.
    #[derive(serde::Deserialize)]
    struct Heldout {
        heldout: Vec<String>,
    }
    let weights = match file {
        Some(file) => file.to_path_buf(),
        None => match common.spec()?.weights {
            Some(weights) => weights,
            None => bail!(
                "--heldout needs weights trained by `natview finetune` (--weights FILE, or --heldout FILE)"
            ),
        },
    };
    let meta: Heldout = natview_train::checkpoint::read_meta(&weights)?;
    Ok(meta.heldout.into_iter().collect())
}

/// `natview eval`.
pub(crate) fn eval(args: &EvalArgs, common: &CommonArgs) -> anyhow::Result<()> {
    // `--untrained --heldout W`: the "before" column of W's run, so W's architecture.
    let mut common = common.clone();
    if let (None, Some(Some(file)), true) = (&common.model, &args.heldout, common.untrained) {
        if let Ok(meta) = natview_train::checkpoint::read_meta::<natview_train::WeightsMeta>(file) {
            common.model = Some(meta.model.name().to_string());
        }
    }
    let common = &common;
    let only = match &args.heldout {
        Some(file) => Some(heldout_listings(file.as_deref(), common)?),
        None => None,
    };
    let embedded = embed(&args.data.dataset, common)?;
    let reports = eval_reports(
        &embedded,
        args.baseline,
        only.as_ref(),
        args.queries_where.as_ref(),
        common,
    )?;
    let probes = match &args.probe {
        Some(source) => super::probe::probes(&embedded, source, args.baseline, common)?,
        None => Vec::new(),
    };
    if args.json && args.probe.is_some() {
        let out = serde_json::json!({ "reports": reports, "probes": probes });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        print_eval_table(&reports);
        super::probe::print_probes(&probes);
    }
    Ok(())
}

/// The main job: embed → index → eval (with the pixel baseline) → quadrant chart.
pub fn main_job(dataset: Option<PathBuf>, common: &CommonArgs) -> anyhow::Result<()> {
    let path = match dataset {
        Some(path) => path,
        None => demo_dataset_path()?,
    };
    let embedded = embed(&path, common)?;
    let hnsw = super::HnswArgs {
        max_connections: 16,
        ef_construction: 200,
        ef_search: 64,
    };
    index_for(&embedded, hnsw, common)?;
    let reports = eval_reports(&embedded, true, None, None, common)?;
    println!();
    print_eval_table(&reports);
    println!();
    let model = embedded.set.meta.encoder.model.name();
    let out = embedded
        .workspace
        .dir()
        .join(format!("quadrant.{model}.png"));
    write_heatmap(&embedded.set, &QuadrantParams::default(), None, &out)?;
    println!(
        "workspace: {} (items.jsonl, embeddings.*.safetensors, index.*, skipped.json)",
        embedded.workspace.dir().display()
    );
    Ok(())
}
