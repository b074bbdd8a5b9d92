//! `natview import`, `export`, `embed --shard` and `merge`: embeddings in and out of natview,
//! and embedding jobs shared between machines.

use super::commands::{embed_with, load};
use super::output::Bar;
use super::CommonArgs;
use anyhow::Context;
use clap::Args;
use natview::interop::{
    export as export_set, import_embeddings, merge_shards, shard_items, ExportFormat,
    ImportRequest, Shard,
};
use natview::jobs::CancelFlag;
use natview::pipeline::ensure_thumbnails;
use natview::workspace::Workspace;
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
    #[arg(long)]
    format: ExportFormat,
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
    let thumbnails = if args.format == ExportFormat::TbProjector {
        let bar = Bar::new(common.quiet);
        let store = ensure_thumbnails(&dataset, &workspace, &set, &bar, &CancelFlag::new())
            .context("thumbnails for the projector's sprite")?;
        bar.finish();
        Some(store)
    } else {
        None
    };
    let out = args.out.clone().unwrap_or_else(|| {
        args.format
            .default_output(workspace.dir(), &set.meta.encoder.workspace_key())
    });
    let report = export_set(&set, args.format, &out, thumbnails.as_ref())?;
    println!(
        "exported {} rows × {} ({}){} → {}",
        report.rows,
        set.matrix.dim,
        args.format.name(),
        if report.sprite {
            " with a sprite of thumbnails"
        } else {
            ""
        },
        report.path.display()
    );
    Ok(())
}
