//! `natview import`, `export`, `embed --shard` and `merge`: embeddings in and out of natview,
//! and embedding jobs shared between machines.

use super::commands::{embed_with, load};
use super::output::Bar;
use super::CommonArgs;
use anyhow::Context;
use clap::Args;
use natview_core::jobs::CancelFlag;
use natview_core::workspace::Workspace;
use natview_interop::{
    export as export_set, import_embeddings, merge_shards, shard_items, ExportFormat,
    ImportRequest, Shard,
};
use natview_pipeline::ensure_thumbnails;
use std::path::{Path, PathBuf};

/// `natview embed`.
#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// Dataset: a folder of listings, a flat folder, or a .csv/.jsonl manifest.
    dataset: PathBuf,
    /// Embed only share I of N (0-based; a contiguous 1/N of the items) into
    /// `<workspace>/shards/<model>/I-of-N`; `natview merge` joins the N shares.
    #[arg(long, value_name = "I/N")]
    shard: Option<Shard>,
}

/// `natview import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Dataset the vectors belong to.
    dataset: PathBuf,
    /// The vectors: .npy (N × D float16/32/64), .safetensors (an N × D tensor) or .parquet (a
    /// list-of-floats column, and a `path` column to match rows to images; without one, rows
    /// are matched to the dataset's images in order).
    #[arg(long)]
    embeddings: PathBuf,
    /// The name to keep them under (`--model imported:NAME`); default: the file's stem.
    #[arg(long)]
    name: Option<String>,
    /// Parquet: the vector column (default: the only list-of-floats column).
    #[arg(long)]
    column: Option<String>,
    /// Safetensors: the tensor (default: `embeddings`, or the only tensor).
    #[arg(long)]
    tensor: Option<String>,
}

/// `natview export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Dataset whose embeddings are exported (computed first if they are not in the
    /// workspace; choose them with --model, e.g. imported:NAME).
    dataset: PathBuf,
    /// tb-projector (TensorBoard's Embedding Projector folder), npy (embeddings.npy +
    /// items.jsonl), parquet or jsonl.
    #[arg(long, required_unless_present = "milvus")]
    format: Option<ExportFormat>,
    /// Write into a Milvus server instead (milvus://HOST:PORT, or https://HOST:PORT over TLS):
    /// batched idempotent upserts by item id into --collection, with an HNSW index and a record
    /// of the encoder and dataset; an interrupted export resumes. Credentials come from
    /// NATVIEW_MILVUS_TOKEN, or NATVIEW_MILVUS_USER and NATVIEW_MILVUS_PASSWORD (a CA
    /// certificate from NATVIEW_MILVUS_CA_CERT).
    #[arg(
        long,
        value_name = "milvus://HOST:PORT",
        requires = "collection",
        conflicts_with = "format"
    )]
    milvus: Option<String>,
    /// With --milvus: the collection (created when missing).
    #[arg(long)]
    collection: Option<String>,
    /// With --milvus: send every row again instead of resuming (a collection that holds other
    /// embeddings is dropped and written anew).
    #[arg(long, requires = "milvus")]
    restart: bool,
    #[command(flatten)]
    hnsw: super::HnswArgs,
    /// Output file (parquet, jsonl) or folder (tb-projector, npy); default: under
    /// `<workspace>/export/`.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// `natview embed [--shard I/N]`.
pub fn embed(args: &EmbedArgs, common: &CommonArgs) -> anyhow::Result<()> {
    let Some(shard) = args.shard else {
        return super::commands::embed(&args.dataset, common).map(|_| ());
    };
    let dataset = load(&args.dataset)?;
    let workspace = Workspace::for_dataset(&dataset, common.workspace.as_deref());
    let spec = common.spec_for(&dataset)?;
    let part = shard_items(&dataset, shard);
    let range = shard.range(dataset.items.len());
    eprintln!(
        "shard {}/{}: images {}..{} of {}",
        shard.index,
        shard.count,
        range.start,
        range.end,
        dataset.items.len()
    );
    let shard_workspace = shard.workspace(&workspace, &spec);
    embed_with(&part, &shard_workspace, spec, common)?;
    eprintln!(
        "shard written to {}; when all {} are there: natview merge {}",
        shard_workspace.dir().display(),
        shard.count,
        args.dataset.display()
    );
    Ok(())
}

/// `natview merge`.
pub fn merge(dataset_path: &Path, common: &CommonArgs) -> anyhow::Result<()> {
    let dataset = load(dataset_path)?;
    let workspace = Workspace::for_dataset(&dataset, common.workspace.as_deref());
    let spec = common.spec_for(&dataset)?;
    let (_, report) = merge_shards(&dataset, &workspace, &spec)?;
    println!(
        "merged {} shards: {} rows ({} images left out by the shards) → {}",
        report.shards,
        report.rows,
        report.left_out,
        report.path.display()
    );
    Ok(())
}

/// `natview import`.
pub fn import(args: &ImportArgs, common: &CommonArgs) -> anyhow::Result<()> {
    let dataset = load(&args.dataset)?;
    let workspace = Workspace::for_dataset(&dataset, common.workspace.as_deref());
    let request = ImportRequest {
        file: args.embeddings.clone(),
        name: args.name.clone(),
        column: args.column.clone(),
        tensor: args.tensor.clone(),
    };
    let (set, report) = import_embeddings(&dataset, &workspace, &request)?;
    println!(
        "imported {} × {} from {} (rows matched {}{}) → {}",
        set.matrix.rows,
        set.matrix.dim,
        args.embeddings.display(),
        if report.matched_by_path {
            "by the `path` column"
        } else {
            "in order"
        },
        if report.unmatched_rows > 0 {
            format!(
                "; {} rows for images not in the dataset left out",
                report.unmatched_rows
            )
        } else {
            String::new()
        },
        report.path.display()
    );
    println!(
        "use them with --model imported:{} (e.g. natview eval {} --model imported:{})",
        report.spec.imported_name(),
        args.dataset.display(),
        report.spec.imported_name()
    );
    Ok(())
}

/// `natview export`.
pub fn export(args: &ExportArgs, common: &CommonArgs) -> anyhow::Result<()> {
    let dataset = load(&args.dataset)?;
    let workspace = Workspace::for_dataset(&dataset, common.workspace.as_deref());
    let spec = common.spec_for(&dataset)?;
    let set = embed_with(&dataset, &workspace, spec, common)?;
    let Some(format) = args.format else {
        return export_to_milvus(args, &set, &workspace, common);
    };
    let thumbnails = if format == ExportFormat::TbProjector {
        let bar = Bar::new(common.quiet);
        let store = ensure_thumbnails(&dataset, &workspace, &set, &bar, &CancelFlag::new())
            .context("thumbnails for the projector's sprite")?;
        bar.finish();
        Some(store)
    } else {
        None
    };
    let out = args.out.clone().unwrap_or_else(|| {
        format.default_output(workspace.dir(), &set.meta.encoder.workspace_key())
    });
    let report = export_set(&set, format, &out, thumbnails.as_ref())?;
    println!(
        "exported {} rows × {} ({}){} → {}",
        report.rows,
        set.matrix.dim,
        format.name(),
        if report.sprite {
            " with a sprite of thumbnails"
        } else {
            ""
        },
        report.path.display()
    );
    Ok(())
}

/// `natview export --milvus URI --collection NAME`.
#[cfg(feature = "milvus")]
fn export_to_milvus(
    args: &ExportArgs,
    set: &natview_pipeline::EmbeddingSet,
    workspace: &Workspace,
    common: &CommonArgs,
) -> anyhow::Result<()> {
    use natview_interop::milvus::{Milvus, MilvusTarget, CONNECT_TIMEOUT};
    let (Some(uri), Some(collection)) = (&args.milvus, &args.collection) else {
        anyhow::bail!("give --format, or --milvus URI with --collection NAME");
    };
    let target = MilvusTarget::new(uri, collection).map_err(anyhow::Error::msg)?;
    let milvus = Milvus::connect(&target, CONNECT_TIMEOUT)?;
    let bar = Bar::new(common.quiet);
    let report = milvus.export(
        set,
        workspace,
        args.hnsw.params(),
        args.restart,
        &bar,
        &CancelFlag::new(),
    )?;
    bar.finish();
    if report.sent == 0 {
        println!(
            "{} already holds these embeddings ({} rows); --restart sends them again",
            target.display(),
            report.count
        );
        return Ok(());
    }
    println!(
        "exported {} rows to {} in {:.1} s ({:.0} rows/s){}; the collection holds {} rows",
        report.sent,
        target.display(),
        report.seconds,
        report.sent as f64 / report.seconds.max(1e-9),
        if report.resumed_from > 0 {
            format!(", resuming after row {}", report.resumed_from)
        } else {
            String::new()
        },
        report.count
    );
    Ok(())
}

#[cfg(not(feature = "milvus"))]
fn export_to_milvus(
    _args: &ExportArgs,
    _set: &natview_pipeline::EmbeddingSet,
    _workspace: &Workspace,
    _common: &CommonArgs,
) -> anyhow::Result<()> {
    anyhow::bail!("this natview was built without Milvus support (cargo feature `milvus`)")
}

/// `natview neighbours … --backend milvus://HOST:PORT/COLLECTION [--filter EXPR]`: the
/// neighbours come from Milvus with the fields stored beside them, once the collection is
/// known to hold this dataset's embeddings by this encoder; each answer's paths are checked
/// against the dataset's. The query is an item's vector or an image embedded here.
#[cfg(feature = "milvus")]
pub fn neighbours_from_backend(
    args: &super::NeighboursArgs,
    backend: &str,
    common: &CommonArgs,
) -> anyhow::Result<()> {
    use natview_interop::milvus::CONNECT_TIMEOUT;
    use natview_interop::milvus::{check_paths, CollectionRecord, Milvus, MilvusTarget};
    let target = MilvusTarget::parse(backend).map_err(anyhow::Error::msg)?;
    let dataset = load(&args.data.dataset)?;
    let milvus = Milvus::connect(&target, CONNECT_TIMEOUT)?;
    let workspace = Workspace::for_dataset(&dataset, common.workspace.as_deref());
    let spec = common.spec_for(&dataset)?;
    let set = embed_with(&dataset, &workspace, spec.clone(), common)?;
    milvus.check_holds(&CollectionRecord::of(&set))?;
    let item_id = match (&args.id, &args.path) {
        (Some(id), _) => Some(*id),
        (_, Some(path)) => Some(
            dataset
                .items
                .iter()
                .find(|i| i.path == *path || dataset.item_path(i) == *path)
                .map(|i| i.id)
                .with_context(|| format!("{}: not an image of this dataset", path.display()))?,
        ),
        _ => None,
    };
    let (query, what) = match (item_id, &args.image) {
        (Some(id), _) if id < set.matrix.rows => {
            (set.matrix.row(id).to_vec(), format!("item {id}"))
        }
        (Some(id), _) => anyhow::bail!(
            "item {id}: the dataset has {} items (0 to {})",
            set.matrix.rows,
            set.matrix.rows.saturating_sub(1)
        ),
        (None, Some(image)) => (
            natview_pipeline::embed_query_image(image, &set.meta, common.cpu)?,
            format!("image {}", image.display()),
        ),
        _ => anyhow::bail!("give a query: --id N, --path PATH or --image FILE"),
    };
    let started = std::time::Instant::now();
    let hits = milvus.neighbours(
        &query,
        item_id,
        args.k,
        args.hnsw.ef_search,
        args.filter.as_deref(),
    )?;
    let seconds = started.elapsed().as_secs_f64();
    check_paths(hits.iter().map(|h| (h.id, h.path.as_str())), &set.items)
        .map_err(|e| anyhow::anyhow!("{}: {e}", target.display()))?;
    let query_listing = item_id
        .and_then(|id| set.items.get(id))
        .map(|i| i.listing.clone());
    if args.json {
        let out = serde_json::json!({
            "query": what,
            "backend": target.display(),
            "filter": args.filter,
            "seconds": seconds,
            "neighbours": hits.iter().enumerate().map(|(rank, h)| serde_json::json!({
                "rank": rank + 1,
                "id": h.id,
                "similarity": h.similarity,
                "listing": h.listing,
                "same_listing": query_listing.as_deref() == Some(h.listing.as_str()),
                "label": h.label,
                "path": h.path,
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "neighbours of {what} — {}{} ({:.1} ms)",
        target.display(),
        args.filter
            .as_deref()
            .map(|f| format!(", filter {f}"))
            .unwrap_or_default(),
        seconds * 1e3
    );
    println!(
        "{:>4} {:>6} {:>10}  {:<5} {:<22}  path",
        "rank", "id", "similarity", "same", "listing"
    );
    for (rank, h) in hits.iter().enumerate() {
        let same = query_listing.as_deref() == Some(h.listing.as_str());
        println!(
            "{:>4} {:>6} {:>10.4}  {:<5} {:<22}  {}",
            rank + 1,
            h.id,
            h.similarity,
            if same { "yes" } else { "" },
            h.listing,
            h.path
        );
    }
    Ok(())
}

#[cfg(not(feature = "milvus"))]
pub fn neighbours_from_backend(
    _args: &super::NeighboursArgs,
    _backend: &str,
    _common: &CommonArgs,
) -> anyhow::Result<()> {
    anyhow::bail!("this natview was built without Milvus support (cargo feature `milvus`)")
}
