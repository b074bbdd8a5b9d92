//! `natview eval --probe`: the low-shot probes of the model (and of raw pixels with
//! `--baseline`), as a table or in the JSON output.

use super::commands::{pixel_baseline, Embedded};
use super::CommonArgs;
use natview_analysis::listing_numbers;
use natview_analysis::probe::{
    low_shot_probes, probe_classes, ClassSource, ProbeOptions, ProbeReport,
};
use natview_labels::LabelStore;
use natview_pipeline::EmbeddingSet;

/// One encoder's probes.
#[derive(Debug, serde::Serialize)]
pub struct EncoderProbes {
    /// The encoder.
    pub encoder: String,
    /// Where the classes came from.
    pub classes_from: ClassSource,
    /// Its figures.
    pub report: ProbeReport,
}

/// Runs the probes on the model's embeddings (and raw pixels with `baseline`).
pub fn probes(
    embedded: &Embedded,
    source: &str,
    baseline: bool,
    common: &CommonArgs,
) -> anyhow::Result<Vec<EncoderProbes>> {
    let source: ClassSource = source.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    let store_path = embedded.workspace.labels_path();
    let store = match source {
        ClassSource::Tags if !store_path.is_file() => anyhow::bail!(
            "{}: no tags yet (tag images in the app, or probe with the label column)",
            store_path.display()
        ),
        ClassSource::Tags => Some(LabelStore::open(&store_path)?),
        ClassSource::Label => None,
    };
    let run = |set: &EmbeddingSet| -> anyhow::Result<EncoderProbes> {
        let keys: Vec<String> = set
            .items
            .iter()
            .map(|i| i.path.to_string_lossy().into_owned())
            .collect();
        let tags_of = |i: usize| {
            store
                .as_ref()
                .and_then(|s| s.tags_of(&keys[i]))
                .map(|t| t.iter().cloned().collect())
                .unwrap_or_default()
        };
        let (class, names) = probe_classes(&set.items, source, &tags_of);
        let report = low_shot_probes(
            &set.matrix,
            &class,
            &names,
            &listing_numbers(&set.items),
            &ProbeOptions {
                seed: common.seed,
                ..ProbeOptions::default()
            },
        )
        .map_err(|e| anyhow::anyhow!("{}: {e}", embedded.dataset.source.display()))?;
        Ok(EncoderProbes {
            encoder: set.meta.encoder.describe(),
            classes_from: source,
            report,
        })
    };
    let mut out = vec![run(&embedded.set)?];
    if let Some(pixels) = pixel_baseline(embedded, baseline, common)? {
        out.push(run(&pixels)?);
    }
    Ok(out)
}

/// Prints the probes as one table: a row per encoder, kNN and linear accuracy per fraction.
pub fn print_probes(probes: &[EncoderProbes]) {
    let Some(first) = probes.first() else { return };
    let r = &first.report;
    println!();
    println!(
        "low-shot probes ({} classes from the {}; {} labelled images, trained on a share of {} in \
         the pool, tested on {} of other listings; most common class {:.3}):",
        r.classes.len(),
        match first.classes_from {
            ClassSource::Label => "label column",
            ClassSource::Tags => "analysts' tags",
        },
        r.labelled,
        r.pool,
        r.test,
        r.majority
    );
    let fractions: Vec<String> = r
        .rows
        .iter()
        .map(|row| format!("{}% ({})", row.fraction * 100.0, row.train_images))
        .collect();
    print!("  {:<44}", "encoder");
    for f in &fractions {
        print!(" {:>15}", format!("kNN {f}"));
    }
    for f in &fractions {
        print!(" {:>15}", format!("linear {f}"));
    }
    println!();
    for p in probes {
        print!("  {:<44}", shorten(&p.encoder, 44));
        for row in &p.report.rows {
            print!(" {:>15.3}", row.knn);
        }
        for row in &p.report.rows {
            print!(" {:>15.3}", row.linear);
        }
        println!();
    }
}

fn shorten(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else {
        let kept: String = text.chars().take(width - 1).collect();
        format!("{kept}…")
    }
}
