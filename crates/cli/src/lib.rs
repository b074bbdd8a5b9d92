//! natview-cli: the `natview` command line — its arguments, the dispatch of each subcommand
//! to the library crates, progress bars and tables — and the process set-up every natview
//! binary shares (allocator, thread pools). The `natview` binary is [`main`]; `natview-bench`
//! reuses [`CommonArgs`] and the dataset/embedding steps of [`commands`].

pub mod commands;
mod compare;
mod compare_eval;
mod diff;
mod finetune;
mod health;
mod interop;
mod labels;
pub mod limits;
pub mod output;
mod probe;
pub mod process;
pub mod project;
pub mod reference;
mod report;
mod review;
mod search;
mod shortcut;

use clap::{Args, Parser, Subcommand};
use natview_encoder::{EncoderSpec, ModelKind};
use natview_index::HnswParams;
use std::path::PathBuf;

/// natview: see what an image encoder learned about listings and their views.
#[derive(Debug, Parser)]
#[command(
    name = "natview",
    version,
    about = "Explore learned image representations: embed, index, neighbours, quadrant charts, \
             projections and retrieval metrics",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Dataset to open in the desktop app (default: the last one opened, else the built-in
    /// emoji demo).
    dataset: Option<PathBuf>,
    #[command(flatten)]
    common: CommonArgs,
}

impl Cli {
    /// Whether this run opens the desktop window (no subcommand, or `gui`).
    pub fn opens_window(&self) -> bool {
        matches!(&self.command, None | Some(Command::Gui { .. }))
    }

    /// The `--threads` asked for, if any.
    pub fn threads(&self) -> Option<usize> {
        self.common.threads.map(usize::from)
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The whole pipeline headless: embed → index → metrics beside the pixel baseline →
    /// quadrant chart PNG (default dataset: the built-in demo); with --html, one
    /// self-contained HTML file to share: metrics beside raw pixels, health, the quadrant
    /// chart, a projection, sample neighbours and, with --from, the diff.
    Report(report::ReportArgs),
    /// Embed every image of a dataset into the workspace (or, with --shard I/N, a 1/N share
    /// of them, for `natview merge`).
    Embed(interop::EmbedArgs),
    /// Bring in embeddings computed elsewhere (.npy, .safetensors, Parquet) as the dataset's
    /// `imported:NAME` model.
    Import(interop::ImportArgs),
    /// Write a model's embeddings with their items: TensorBoard projector, .npy, Parquet or
    /// JSON lines.
    Export(interop::ExportArgs),
    /// Join the shards of a `natview embed --shard I/N` job into the dataset's workspace.
    Merge(DatasetArgs),
    /// Build (or reload) the HNSW index of the embeddings.
    Index(IndexArgs),
    /// Nearest neighbours of an item or of an image file.
    #[command(alias = "neighbors")]
    Neighbours(NeighboursArgs),
    /// Rank the images by a text ("red sneakers"), with a CLIP encoder's text tower.
    Search(search::SearchArgs),
    /// Render the quadrant chart (intra/inter-listing similarity heatmap) as a PNG.
    Heatmap(HeatmapArgs),
    /// 2-D layout of the embeddings (PCA, UMAP or t-SNE): CSV `id,x,y`, quality, PNG.
    Project(project::ProjectArgs),
    /// Fine-tune with several self-supervised methods from the same start and compare them
    /// on the same held-out listings.
    Compare(compare::CompareArgs),
    /// A review queue: near-duplicates across listings, listing outliers, confusable listings
    /// or the unjudged pairs the model is least sure about.
    Review(review::ReviewArgs),
    /// Listing-retrieval metrics and intra/inter statistics.
    Eval(EvalArgs),
    /// What changed between two encoders of a dataset, listing by listing and image by image.
    Diff(diff::DiffArgs),
    /// Has the encoder learned the item or the augmentations: cosines of augmentations of
    /// one image, of natural views and of different listings, with a verdict.
    Shortcut(shortcut::ShortcutArgs),
    /// Is the embedding healthy: collapse, effective rank, alignment and uniformity,
    /// per-dimension variance, hubness, with a verdict.
    Health(health::HealthArgs),
    /// Self-supervised fine-tuning on natural views (SimSiam, InfoNCE, BYOL, MoBY or SwAV), with
    /// a held-out report.
    Finetune(finetune::FinetuneArgs),
    /// Open the desktop app (on DATASET, or the last dataset opened); the same as no
    /// subcommand.
    Gui {
        /// Dataset to open.
        dataset: Option<PathBuf>,
    },
    /// The analysts' labels (tags, notes, pair verdicts) of a dataset.
    Labels {
        #[command(subcommand)]
        action: LabelsAction,
    },
}

#[derive(Debug, Subcommand)]
enum LabelsAction {
    /// Write every tag, note and pair verdict as CSV or JSONL.
    Export(LabelsExportArgs),
    /// Add the labels of an export (CSV or JSONL, from this or another machine or dataset) to
    /// a dataset's store; items are matched by their path relative to the dataset root.
    Import(LabelsImportArgs),
}

#[derive(Debug, Args)]
struct LabelsImportArgs {
    /// The export to read (`natview labels export` writes it).
    file: PathBuf,
    /// Dataset (default: the built-in emoji demo).
    dataset: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct LabelsExportArgs {
    /// Dataset (default: the built-in emoji demo).
    dataset: Option<PathBuf>,
    /// csv or jsonl.
    #[arg(long, default_value = "csv")]
    format: String,
    /// Output file (default: labels.<format> in the workspace; `-` for standard output).
    #[arg(long, short)]
    out: Option<PathBuf>,
}

/// Options every command takes.
#[derive(Debug, Args, Clone)]
pub struct CommonArgs {
    /// Workspace folder (default: `.natview` inside a folder dataset, `.natview-<name>` beside a
    /// manifest).
    #[arg(long, global = true)]
    pub workspace: Option<PathBuf>,
    /// Encoder: effnet-lite0 (ImageNet-pretrained, the default), effnet-lite2 (ImageNet,
    /// shipped, stronger and slower), effnet-lite1, compact, resnet18, resnet50, regnety-400mf, checkpoint (the network the --weights
    /// hold, worked out from the file) or pixels (raw-pixel baseline), or imported:NAME for
    /// vectors brought in by `natview import`. Default: the model the --weights were trained
    /// as (natview finetune records it), else the network they hold; without --weights,
    /// effnet-lite0.
    #[arg(long, global = true)]
    pub model: Option<String>,
    /// Weights: a checkpoint as training code writes it (.pth/.pt/.ckpt/.bin from PyTorch,
    /// Lightning, timm, VISSL, MoCo/BYOL/DINO wrappers, or .safetensors); without --model,
    /// natview works out the network (ResNet, RegNetX/Y, ConvNeXt, EfficientNet-B or -Lite
    /// of any size) from the file and says what it found. Default: the model's weights
    /// shipped in models/ (effnet-lite0.safetensors, effnet-lite2.safetensors,
    /// compact-emoji.safetensors), found beside the executable,
    /// in $NATVIEW_MODELS, in PREFIX/share/natview/models or in ~/.local/share/natview/models;
    /// missing weights are an error (use --untrained for a random encoder).
    #[arg(long, global = true)]
    pub weights: Option<PathBuf>,
    /// The key prefix of the network to take from a checkpoint that holds several (e.g.
    /// `state_dict.module.encoder_k.`); natview lists them when it cannot choose.
    #[arg(long, global = true, requires = "weights")]
    pub weights_key: Option<String>,
    /// How a vision transformer's tokens become the embedding: cls (the class token), mean
    /// (the patch tokens' mean) or both (concatenated, DINOv2's linear-probe feature; twice as
    /// wide). Default: the family's (cls; mean for timm `fc_norm` models; SigLIP's attention
    /// pool). With `finetune --from`: the pooling trained (and recorded with the weights).
    #[arg(long, global = true, value_parser = parse_pool)]
    pub pool: Option<natview_encoder::VitPool>,
    /// Input size in pixels, 8 to 2,048 (default: 224 for effnet-lite0, ResNets and RegNetY,
    /// 240/260 for effnet-lite1/2, 64 for compact, 32 for pixels; fine-tuned --weights: the
    /// size they were trained at).
    #[arg(long, global = true, value_parser = limits::input_size)]
    pub size: Option<u32>,
    /// Use a randomly initialised encoder even where shipped weights exist.
    #[arg(long, global = true, conflicts_with = "weights")]
    pub untrained: bool,
    /// Seed of the random initialisation when no weights are given.
    #[arg(long, global = true, default_value_t = 0)]
    pub seed: u64,
    /// Precision to embed in: f32 (default), or f16 / bf16 — half precision, for a GPU (f16
    /// also runs on the CPU, slower than f32; bf16 needs a GPU). Embeddings in half precision
    /// are kept apart from f32 ones; fine-tuning always trains in f32.
    #[arg(long, global = true, value_parser = parse_precision)]
    pub precision: Option<natview_encoder::Precision>,
    /// Images per batch (default: 16 on the CPU, 64 on a GPU).
    #[arg(long, global = true)]
    pub batch: Option<usize>,
    /// Run on the CPU even when a GPU is available.
    #[arg(long, global = true)]
    pub cpu: bool,
    /// Save an embedding run's rows every N images (default 4096, and at least every two
    /// minutes): a run stopped by Ctrl-C, a kill or a crash continues from there when run again.
    #[arg(long, global = true, value_parser = clap::value_parser!(u64).range(1..))]
    pub checkpoint_every: Option<u64>,
    /// What decoding does with a photo's metadata: apply (EXIF orientation and ICC colour
    /// profiles applied: upright, sRGB), ignore (neither, as PIL and so torchvision's and
    /// timm's loaders read files by default: for an encoder trained on pixels read that way),
    /// ignore-orientation or ignore-icc. Default: as the workspace's embeddings were made, else
    /// apply; a different choice re-embeds (the embeddings record it).
    #[arg(long, global = true, value_parser = parse_image_metadata)]
    pub image_metadata: Option<natview_core::dataset::DecodeOptions>,
    /// No progress bars.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Worker threads for all compute (convolutions, matrix products, indexing, layouts);
    /// default: one per physical core (or RAYON_NUM_THREADS).
    #[arg(long, global = true, value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
}

/// `--image-metadata`: apply, ignore, ignore-orientation or ignore-icc.
fn parse_image_metadata(text: &str) -> Result<natview_core::dataset::DecodeOptions, String> {
    use natview_core::dataset::DecodeOptions;
    Ok(match text {
        "apply" => DecodeOptions::APPLY_ALL,
        "ignore" => DecodeOptions::AS_PIL,
        "ignore-orientation" => DecodeOptions {
            orientation: false,
            colour_profile: true,
        },
        "ignore-icc" => DecodeOptions {
            orientation: true,
            colour_profile: false,
        },
        other => {
            return Err(format!(
                "`{other}`: expected apply, ignore, ignore-orientation or ignore-icc"
            ))
        }
    })
}

/// A cancel flag that Ctrl-C sets (a second Ctrl-C, while the work so far is being saved,
/// leaves at once); the same flag for every caller of the process.
pub fn interrupt_flag() -> anyhow::Result<natview_core::jobs::CancelFlag> {
    use natview_core::jobs::CancelFlag;
    static FLAG: std::sync::OnceLock<CancelFlag> = std::sync::OnceLock::new();
    if let Some(flag) = FLAG.get() {
        return Ok(flag.clone());
    }
    let flag = CancelFlag::new();
    let handler_flag = flag.clone();
    ctrlc::set_handler(move || {
        if handler_flag.is_cancelled() {
            std::process::exit(130);
        }
        handler_flag.cancel();
    })
    .map_err(|e| anyhow::anyhow!("cannot install the Ctrl-C handler: {e}"))?;
    Ok(FLAG.get_or_init(|| flag).clone())
}

impl CommonArgs {
    /// The settings every job of the run shares (the window's jobs too).
    pub fn run_settings(&self) -> natview_pipeline::RunSettings {
        natview_pipeline::RunSettings {
            workspace: self.workspace.clone(),
            force_cpu: self.cpu,
            batch_size: self.batch,
            checkpoint_images: self
                .checkpoint_every
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            decode: self.image_metadata,
            precision: self.precision,
        }
    }

    /// What the --weights say about themselves (fine-tuned weights record their model and the
    /// input size they were trained at).
    pub fn recorded(&self) -> Option<natview_train::WeightsMeta> {
        let weights = self.weights.as_deref()?;
        natview_train::checkpoint::read_meta::<natview_train::WeightsMeta>(weights).ok()
    }

    /// The --model, else the model recorded in the --weights (natview's fine-tunes) or whose
    /// shipped weights they are, else a checkpoint whose network natview works out from the
    /// file; without --weights, EfficientNet-Lite0.
    pub fn model_kind(&self) -> anyhow::Result<ModelKind> {
        self.model_kind_for(self.weights.as_deref())
    }

    /// [`model_kind`](Self::model_kind) for these `weights` (`natview finetune --from FILE`).
    pub fn model_kind_for(&self, weights: Option<&std::path::Path>) -> anyhow::Result<ModelKind> {
        if let Some(name) = &self.model {
            return Ok(name.parse()?);
        }
        if let Some(meta) = weights.and_then(|w| {
            natview_train::checkpoint::read_meta::<natview_train::WeightsMeta>(w).ok()
        }) {
            return Ok(meta.model);
        }
        Ok(match weights {
            Some(path) => ModelKind::ALL
                .into_iter()
                .find(|&kind| natview_encoder::is_shipped_weights(kind, path))
                .unwrap_or(ModelKind::Checkpoint),
            None => ModelKind::EffnetLite0,
        })
    }

    /// Whether the options name an encoder (else each dataset gets its default one).
    pub fn chooses_encoder(&self) -> bool {
        self.model.is_some()
            || self.weights.is_some()
            || self.untrained
            || self.size.is_some()
            || self.pool.is_some()
    }

    /// The encoder for `dataset`: the one the options name, else the dataset's default (the
    /// shipped emoji fine-tune for emoji datasets, the pretrained EfficientNet-Lite0 else).
    pub fn spec_for(
        &self,
        dataset: &natview_core::dataset::Dataset,
    ) -> anyhow::Result<EncoderSpec> {
        if self.chooses_encoder() {
            self.spec()
        } else {
            Ok(self.with_precision(natview_train::catalogue::default_encoder_for(dataset)?))
        }
    }

    /// `spec` in the --precision asked for (see [`RunSettings::in_precision`]).
    ///
    /// [`RunSettings::in_precision`]: natview_pipeline::RunSettings::in_precision
    fn with_precision(&self, spec: EncoderSpec) -> EncoderSpec {
        self.run_settings().in_precision(spec)
    }

    /// The encoder the options name (weights shipped with the model unless --untrained).
    pub fn spec(&self) -> anyhow::Result<EncoderSpec> {
        self.named_spec().map(|spec| self.with_precision(spec))
    }

    /// [`spec`](Self::spec) before the --precision.
    fn named_spec(&self) -> anyhow::Result<EncoderSpec> {
        if let Some(name) = self
            .model
            .as_deref()
            .and_then(|m| m.strip_prefix("imported:"))
        {
            return Ok(EncoderSpec::imported(name));
        }
        let model = self.model_kind()?;
        if self.pool.is_some() && self.weights.is_none() {
            anyhow::bail!("--pool applies to a vision transformer given with --weights");
        }
        if model == ModelKind::Checkpoint {
            let weights = self.weights.as_deref().ok_or_else(|| {
                anyhow::anyhow!("--model checkpoint needs --weights FILE (the checkpoint)")
            })?;
            let recorded_size = self.recorded().map(|meta| meta.input_size_px);
            let spec = EncoderSpec {
                pool: self.pool,
                ..EncoderSpec::checkpoint(
                    weights,
                    self.weights_key.as_deref(),
                    self.size.or(recorded_size),
                )?
            };
            // A pooling the network cannot do is an error now, not after the dataset loads.
            spec.architecture()?;
            return Ok(spec);
        }
        // Fine-tuned weights embed at the size they were trained (and evaluated) at.
        let recorded_size = self
            .recorded()
            .filter(|meta| meta.model == model)
            .map(|meta| meta.input_size_px);
        let input_size_px = self
            .size
            .or(recorded_size)
            .unwrap_or(model.default_input_size_px());
        let weights = match &self.weights {
            Some(path) => Some(path.clone()),
            // Raw pixels have no weights; every network needs them unless --untrained.
            None if !self.untrained && model.has_network() => {
                Some(model.require_shipped_weights()?)
            }
            None => None,
        };
        Ok(EncoderSpec {
            model,
            input_size_px,
            weights,
            seed: self.seed,
            weights_key: self.weights_key.clone(),
            pool: self.pool,
            precision: natview_encoder::Precision::F32,
        })
    }
}

#[derive(Debug, Args)]
struct DatasetArgs {
    /// Dataset: a folder of listings, a flat folder, or a .csv/.jsonl manifest.
    dataset: PathBuf,
}

#[derive(Debug, Args, Clone, Copy)]
struct HnswArgs {
    /// HNSW links per node (M).
    #[arg(long = "m", default_value_t = 16)]
    max_connections: usize,
    /// HNSW candidate list while building.
    #[arg(long, default_value_t = 200)]
    ef_construction: usize,
    /// HNSW candidate list while searching.
    #[arg(long = "ef", default_value_t = 64)]
    ef_search: usize,
}

impl HnswArgs {
    fn params(self) -> HnswParams {
        HnswParams {
            max_connections: self.max_connections,
            ef_construction: self.ef_construction,
            ef_search: self.ef_search,
        }
    }
}

#[derive(Debug, Args)]
struct IndexArgs {
    #[command(flatten)]
    data: DatasetArgs,
    #[command(flatten)]
    hnsw: HnswArgs,
}

#[derive(Debug, Args)]
struct NeighboursArgs {
    #[command(flatten)]
    data: DatasetArgs,
    /// Query by item id (see items.jsonl).
    #[arg(long, conflicts_with_all = ["path", "image"])]
    id: Option<usize>,
    /// Query by an item's path as listed in the dataset.
    #[arg(long, conflicts_with = "image")]
    path: Option<PathBuf>,
    /// Query by an external image file.
    #[arg(long)]
    image: Option<PathBuf>,
    /// Number of neighbours, 1 to 10,000.
    #[arg(short, long, default_value_t = 10, value_parser = limits::neighbour_count)]
    k: usize,
    /// Exact (brute-force) search instead of HNSW.
    #[arg(long)]
    exact: bool,
    /// Ask a Milvus collection instead of the workspace's index: milvus://HOST:PORT/COLLECTION
    /// (https://… over TLS), filled by `natview export --milvus` with the same --model; one
    /// holding other embeddings is refused (needs the `milvus` feature; credentials as for
    /// export --milvus).
    #[arg(
        long,
        value_name = "milvus://HOST:PORT/COLLECTION",
        conflicts_with = "exact"
    )]
    backend: Option<String>,
    /// With --backend: only neighbours matching this Milvus filter, e.g. 'label == "animal"'
    /// (fields: id, path, listing, label, metadata["column"]).
    #[arg(long, requires = "backend")]
    filter: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    hnsw: HnswArgs,
}

#[derive(Debug, Args)]
struct HeatmapArgs {
    #[command(flatten)]
    data: DatasetArgs,
    /// Output PNG.
    #[arg(long, short)]
    out: PathBuf,
    /// Number of listings (chosen at random with --chart-seed), 2 to 2,000.
    #[arg(long, default_value_t = 16, value_parser = limits::chart_listings)]
    listings: usize,
    /// Views per listing, 2 to 64 (default: chosen from the data: the median listing's view
    /// count, at most 4).
    #[arg(long, value_parser = limits::chart_views)]
    views: Option<usize>,
    /// Seed of the choice of listings.
    #[arg(long, default_value_t = 0)]
    chart_seed: u64,
    /// Only listings with this label.
    #[arg(long)]
    label: Option<String>,
    /// Exactly these listings (comma-separated names).
    #[arg(long, value_delimiter = ',')]
    pick: Vec<String>,
    /// Fixed colour range LOW:HIGH (default: the 1st to 99th percentile of the chart's
    /// off-diagonal similarities).
    #[arg(long)]
    range: Option<String>,
}

#[derive(Debug, Args)]
struct EvalArgs {
    #[command(flatten)]
    data: DatasetArgs,
    /// Also evaluate the raw-pixel baseline and print it beside the model.
    #[arg(long)]
    baseline: bool,
    /// Only the listings held out when the weights were trained (`natview finetune`): those
    /// recorded in FILE (weights or a checkpoint), else in the weights evaluated. With
    /// `--untrained --heldout W` this gives the "before" column of the training report.
    #[arg(long, value_name = "FILE", num_args = 0..=1)]
    heldout: Option<Option<PathBuf>>,
    /// Also report retrieval for the queries of one kind of view only, e.g. `design=twemoji`
    /// (a held-out design; neighbours still come from every image).
    #[arg(long, value_name = "COLUMN=VALUE")]
    queries_where: Option<natview_core::dataset::ViewFilter>,
    /// Also run the low-shot probes: kNN and linear-probe accuracy trained on 1 %, 10 % and
    /// 100 % of the labelled images (seeded splits by listing), with the dataset's `label`
    /// column (default) or the analysts' `tags` as classes.
    #[arg(long, value_name = "label|tags", num_args = 0..=1, default_missing_value = "label")]
    probe: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let common = cli.common;
    match cli.command {
        None => open_window(cli.dataset, &common),
        Some(Command::Labels {
            action: LabelsAction::Export(a),
        }) => labels::export(&a, &common),
        Some(Command::Labels {
            action: LabelsAction::Import(a),
        }) => labels::import(&a, &common),
        Some(Command::Embed(a)) => interop::embed(&a, &common),
        Some(Command::Import(a)) => interop::import(&a, &common),
        Some(Command::Export(a)) => interop::export(&a, &common),
        Some(Command::Merge(a)) => interop::merge(&a.dataset, &common),
        Some(Command::Index(a)) => commands::index(&a, &common),
        Some(Command::Neighbours(a)) => commands::neighbours(&a, &common),
        Some(Command::Search(a)) => search::search(&a, &common),
        Some(Command::Heatmap(a)) => commands::heatmap(&a, &common),
        Some(Command::Project(a)) => project::run(&a, &common),
        Some(Command::Review(a)) => review::run(&a, &common),
        Some(Command::Compare(a)) => compare::run(&a, &common),
        Some(Command::Eval(a)) => commands::eval(&a, &common),
        Some(Command::Health(a)) => health::run(&a, &common),
        Some(Command::Diff(a)) => diff::run(&a, &common),
        Some(Command::Shortcut(a)) => shortcut::run(&a, &common),
        Some(Command::Report(a)) => report::run(&a, &common),
        Some(Command::Finetune(a)) => finetune::run(&a, &common),
        Some(Command::Gui { dataset }) => open_window(dataset, &common),
    }
}

/// Opens the desktop window on `dataset` (or an empty one).
#[cfg(feature = "gui")]
fn open_window(dataset: Option<PathBuf>, common: &CommonArgs) -> anyhow::Result<()> {
    let spec = if common.chooses_encoder() {
        Some(common.spec()?)
    } else {
        None
    };
    natview_app::run_window(dataset, spec, common.run_settings())
        .map_err(|e| anyhow::anyhow!("cannot open the window: {e}"))
}

/// In a build without the `gui` feature: says how to get the window.
#[cfg(not(feature = "gui"))]
fn open_window(_dataset: Option<PathBuf>, _common: &CommonArgs) -> anyhow::Result<()> {
    anyhow::bail!(
        "this natview was built without the window (--no-default-features); \
         rebuild with `cargo build --release` for the GUI, or run a subcommand (natview --help)"
    )
}

/// The `natview` binary: sets up the process, parses the command line and runs it; an error
/// is printed and exits with status 1.
pub fn main() {
    process::run_binary(Cli::opens_window, Cli::threads, run);
}

fn parse_pool(text: &str) -> Result<natview_encoder::VitPool, String> {
    text.parse()
}

fn parse_precision(text: &str) -> Result<natview_encoder::Precision, String> {
    text.parse()
        .map_err(|e: natview_encoder::EncoderError| e.to_string())
}
