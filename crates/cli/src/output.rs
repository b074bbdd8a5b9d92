//! Terminal output: progress bars and tables.

use indicatif::{ProgressBar, ProgressStyle};
use natview_core::dataset::Skipped;
use natview_core::jobs::{Progress, ProgressSink};
use natview_pipeline::EvalReport;

/// An indicatif progress bar fed by pipeline progress reports.
pub struct Bar {
    bar: ProgressBar,
}

impl Bar {
    /// A bar on stderr, hidden when `quiet`.
    pub fn new(quiet: bool) -> Self {
        let bar = if quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(0)
        };
        if let Ok(style) =
            ProgressStyle::with_template("{msg:>10} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        Self { bar }
    }

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl ProgressSink for Bar {
    fn report(&self, progress: Progress) {
        self.bar.set_length(progress.total as u64);
        self.bar.set_position(progress.done as u64);
        self.bar.set_message(progress.phase);
    }

    fn notice(&self, message: &str) {
        if self.bar.is_hidden() {
            eprintln!("{message}");
        } else {
            self.bar.println(message);
        }
    }
}

impl natview_analysis::layout::LayoutObserver for Bar {
    fn progress(&mut self, phase: &str, done: usize, total: usize) -> bool {
        self.bar.set_length(total as u64);
        self.bar.set_position(done as u64);
        self.bar.set_message(phase.to_string());
        true
    }
}

/// Prints the skipped files: a summary line and the first few with reasons.
pub fn print_skipped(skipped: &[Skipped], details_in: &std::path::Path) {
    if skipped.is_empty() {
        return;
    }
    eprintln!("skipped {} file(s):", skipped.len());
    for s in skipped.iter().take(10) {
        eprintln!("  {s}");
    }
    if skipped.len() > 10 {
        eprintln!(
            "  … and {} more (all listed in {})",
            skipped.len() - 10,
            details_in.display()
        );
    }
}

/// Reads one metric from a report.
type MetricOf = fn(&EvalReport) -> f64;

/// Prints evaluation reports side by side (one column per model).
pub fn print_eval_table(reports: &[EvalReport]) {
    let names: Vec<String> = reports.iter().map(|r| r.model.clone()).collect();
    println!(
        "{} images, {} listings, {} retrieval queries (images whose listing has another view)",
        reports.first().map_or(0, |r| r.images),
        reports.first().map_or(0, |r| r.listings),
        reports.first().map_or(0, |r| r.retrieval.queries)
    );
    let width = 12;
    print!("{:<22}", "metric");
    for (i, _) in names.iter().enumerate() {
        print!("{:>width$}", format!("[{}]", i + 1));
    }
    println!();
    let rows: [(&str, MetricOf); 9] = [
        ("recall@1", |r| r.retrieval.recall_at_1),
        ("recall@5", |r| r.retrieval.recall_at_5),
        ("recall@10", |r| r.retrieval.recall_at_10),
        ("mAP@10", |r| r.retrieval.map_at_10),
        ("intra mean", |r| r.pairs.intra_mean),
        ("inter mean", |r| r.pairs.inter_mean),
        ("gap (intra-inter)", |r| r.pairs.gap),
        ("ROC AUC intra/inter", |r| r.pairs.auc),
        ("intra median", |r| r.pairs.intra_median),
    ];
    for (label, get) in rows {
        print!("{label:<22}");
        for r in reports {
            print!("{:>width$.4}", get(r));
        }
        println!();
    }
    if let Some(view) = reports.first().and_then(|r| r.view_retrieval.as_ref()) {
        println!(
            "queries where {} only ({} queries):",
            view.queries_where, view.retrieval.queries
        );
        let rows: [(&str, RetrievalColumn); 3] = [
            ("  recall@1", |m| m.recall_at_1),
            ("  recall@5", |m| m.recall_at_5),
            ("  mAP@10", |m| m.map_at_10),
        ];
        for (label, get) in rows {
            print!("{label:<22}");
            for r in reports {
                match &r.view_retrieval {
                    Some(v) => print!("{:>width$.4}", get(&v.retrieval)),
                    None => print!("{:>width$}", "-"),
                }
            }
            println!();
        }
    }
    for (i, name) in names.iter().enumerate() {
        println!("[{}] {name}", i + 1);
    }
    if let Some(r) = reports.iter().find(|r| r.pairs.inter_sampled) {
        println!(
            "inter-listing pairs: a random sample of {} (seed 0)",
            r.pairs.inter_pairs
        );
    }
}

/// Reads one figure out of a retrieval summary, for a table row.
type RetrievalColumn = fn(&natview_analysis::RetrievalMetrics) -> f64;

/// A job's device as its report names it ("CPU", "CUDA GPU"), with the GPU's name and memory in
/// use when it ran on one.
pub fn device_words(name: &str, force_cpu: bool) -> String {
    if name == "CPU" {
        name.to_string()
    } else {
        natview_encoder::device_status(&natview_encoder::choose_device(force_cpu))
    }
}
