//! `natview labels export` and `natview labels import`: the label store as CSV/JSONL files
//! that move between machines and datasets by dataset-relative path.

use super::commands::load;
use super::{CommonArgs, LabelsExportArgs, LabelsImportArgs};
use anyhow::bail;
use natview_core::dataset::demo_dataset_path;
use natview_core::workspace::Workspace;
use natview_labels::{import_labels, render_records, ExportFormat, LabelStore};
use std::collections::HashMap;
use std::io::Write;
/// `natview labels export`.
pub fn export(args: &LabelsExportArgs, common: &CommonArgs) -> anyhow::Result<()> {
    let format: ExportFormat = args
        .format
        .parse()
        .map_err(|e: String| anyhow::anyhow!(e))?;
    let path = match args.dataset.clone() {
        Some(path) => path,
        None => demo_dataset_path()?,
    };
    let dataset = load(&path)?;
    let workspace = Workspace::for_dataset(&dataset, common.workspace.as_deref());
    let store_path = workspace.labels_path();
    if !store_path.is_file() {
        bail!(
            "{}: no labels yet (tag images or give pair verdicts in the app first)",
            store_path.display()
        );
    }
    let store = LabelStore::open(&store_path)?;
    match &args.out {
        Some(out) if out.as_os_str() == "-" => {
            let bytes =
                render_records(&store.records()?, format).map_err(|e| anyhow::anyhow!(e))?;
            std::io::stdout().write_all(&bytes)?;
        }
        out => {
            let out = out.clone().unwrap_or_else(|| {
                workspace
                    .dir()
                    .join(format!("labels.{}", format.extension()))
            });
            let n = natview_labels::export_labels(&store, format, &out)?;
            println!("{n} label record(s) → {}", out.display());
        }
    }
    Ok(())
}

/// `natview labels import FILE [DATASET]`: adds the records of an export to the dataset's
/// store (the later of two versions of one fact wins; records naming items this dataset does
/// not have are counted and left out).
pub fn import(args: &LabelsImportArgs, common: &CommonArgs) -> anyhow::Result<()> {
    let path = match args.dataset.clone() {
        Some(path) => path,
        None => demo_dataset_path()?,
    };
    let dataset = load(&path)?;
    let workspace = Workspace::for_dataset(&dataset, common.workspace.as_deref());
    std::fs::create_dir_all(workspace.dir())?;
    let listings: HashMap<String, String> = dataset
        .items
        .iter()
        .map(|item| {
            (
                item.path.to_string_lossy().into_owned(),
                item.listing.clone(),
            )
        })
        .collect();
    let mut store = LabelStore::open(&workspace.labels_path())?;
    let report = import_labels(&mut store, &args.file, &|p: &str| listings.get(p).cloned())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{}: {} record(s) → {}: {} added, {} updated, {} already there",
            args.file.display(),
            report.records,
            store.path().display(),
            report.added,
            report.updated,
            report.unchanged
        );
        if report.not_in_dataset > 0 {
            println!(
                "{} record(s) name images this dataset does not have and were left out, e.g. {}",
                report.not_in_dataset,
                report.missing_examples.join(", ")
            );
        }
    }
    if report.records > 0 && report.not_in_dataset == report.records {
        bail!(
            "{}: none of its {} record(s) names an image of {} (paths are relative to the dataset root)",
            args.file.display(),
            report.records,
            path.display()
        );
    }
    Ok(())
}
