//! Metrics: listing retrieval (recall@1/5/10, mAP@10) and intra/inter similarity (gap, ROC AUC)
//! of every encoder embedded for the dataset (the current one first, raw pixels last), with bars
//! to compare at a glance.

use super::theme;
use crate::{Command, FinetuneOutcome, MetricsResult};
use natview_encoder::EncoderSpec;
use natview_pipeline::EvalReport;

/// One metric: its name, how to read it, and its value in a report.
struct Metric {
    name: &'static str,
    hint: &'static str,
    value: fn(&EvalReport) -> f64,
    /// The range the bar spans.
    scale: (f64, f64),
    /// Whether higher is better (the best column is then shown in bold).
    higher_is_better: bool,
}

const METRICS: [Metric; 8] = [
    Metric {
        name: "recall@1",
        hint: "share of images whose nearest neighbour is a view of the same listing",
        value: |r| r.retrieval.recall_at_1,
        scale: (0.0, 1.0),
        higher_is_better: true,
    },
    Metric {
        name: "recall@5",
        hint: "a view of the same listing among the 5 nearest",
        value: |r| r.retrieval.recall_at_5,
        scale: (0.0, 1.0),
        higher_is_better: true,
    },
    Metric {
        name: "recall@10",
        hint: "a view of the same listing among the 10 nearest",
        value: |r| r.retrieval.recall_at_10,
        scale: (0.0, 1.0),
        higher_is_better: true,
    },
    Metric {
        name: "mAP@10",
        hint: "mean average precision of the 10 nearest, same listing = relevant",
        value: |r| r.retrieval.map_at_10,
        scale: (0.0, 1.0),
        higher_is_better: true,
    },
    Metric {
        name: "intra mean",
        hint: "mean cosine between views of one listing",
        value: |r| r.pairs.intra_mean,
        scale: (-1.0, 1.0),
        higher_is_better: false,
    },
    Metric {
        name: "inter mean",
        hint: "mean cosine between images of different listings",
        value: |r| r.pairs.inter_mean,
        scale: (-1.0, 1.0),
        higher_is_better: false,
    },
    Metric {
        name: "gap",
        hint: "intra mean − inter mean: how far apart the two distributions sit",
        value: |r| r.pairs.gap,
        scale: (0.0, 1.0),
        higher_is_better: true,
    },
    Metric {
        name: "ROC AUC",
        hint: "chance that a random intra pair is more similar than a random inter pair",
        value: |r| r.pairs.auc,
        scale: (0.5, 1.0),
        higher_is_better: true,
    },
];

/// A column title short enough for the table (the full name is in its tooltip): fine-tuned
/// encoders are named by their workspace key, which spells out every training option.
pub(super) fn column_title(name: &str) -> String {
    const MAX: usize = 28;
    match name.split_once('@') {
        Some((model, _)) if name.chars().count() > MAX => format!("{model} fine-tuned…"),
        _ => name.to_string(),
    }
}

/// Draws the metrics view; `finetune` is the last fine-tune of the open dataset, whose
/// held-out before / after table comes first.
pub fn metrics_ui(
    ui: &mut egui::Ui,
    result: Option<&MetricsResult>,
    shortcut: (Option<&crate::ShortcutResult>, bool),
    busy: bool,
    finetune: Option<&FinetuneOutcome>,
    current: &EncoderSpec,
    commands: &mut Vec<Command>,
) {
    if let Some(outcome) = finetune {
        super::finetune_report_ui(ui, outcome, current, commands);
        ui.separator();
    }
    ui.horizontal(|ui| {
        ui.heading("Retrieval metrics");
        if ui
            .add_enabled(!busy, egui::Button::new("Recompute"))
            .clicked()
        {
            commands.push(Command::ComputeMetrics);
        }
    });
    let Some(result) = result else {
        ui.horizontal(|ui| {
            if busy {
                // No spinner: its animation repaints the window every frame, which takes CPU
                // time from the job on a two-core machine.
                ui.label("Evaluating the model and the raw-pixel baseline…");
            } else {
                ui.label(egui::RichText::new("No metrics yet.").color(theme::MUTED));
            }
        });
        return;
    };
    let Some(model) = result.current() else {
        return;
    };
    ui.label(
        egui::RichText::new(format!(
            "{} images, {} listings · listing retrieval by exact search (the image itself excluded) · every encoder embedded for this dataset, the current one first · {:.1} s",
            model.images, model.listings, result.duration_secs
        ))
        .color(theme::MUTED),
    );
    if model.untrained {
        ui.label(
            egui::RichText::new("The model is untrained (random weights): expect little.")
                .color(theme::ERROR),
        );
    }
    ui.add_space(8.0);
    let columns: Vec<(&str, &EvalReport)> = result
        .models
        .iter()
        .map(|(name, report)| (name.as_str(), report))
        .collect();
    egui::Grid::new("metrics")
        .num_columns(1 + 2 * columns.len())
        .spacing(egui::vec2(16.0, 6.0))
        .striped(true)
        .show(ui, |ui| {
            ui.strong("metric");
            for (name, report) in &columns {
                ui.strong(column_title(name))
                    .on_hover_text(format!("{name}\n{}", report.model));
                ui.label("");
            }
            ui.end_row();
            for metric in &METRICS {
                ui.label(metric.name).on_hover_text(metric.hint);
                let values: Vec<f64> = columns.iter().map(|(_, r)| (metric.value)(r)).collect();
                let best = values.iter().copied().fold(f64::MIN, f64::max);
                for (i, value) in values.iter().enumerate() {
                    let mut text = egui::RichText::new(format!("{value:.3}")).monospace();
                    if values.len() > 1 && *value == best && metric.higher_is_better {
                        text = text.strong();
                    }
                    ui.label(text);
                    let fraction =
                        ((value - metric.scale.0) / (metric.scale.1 - metric.scale.0)) as f32;
                    let colour = if i == 0 {
                        theme::SAME_LISTING
                    } else {
                        theme::MUTED
                    };
                    bar(ui, fraction, colour);
                }
                ui.end_row();
            }
        });
    ui.add_space(8.0);
    ui.label(
        egui::RichText::new(format!(
            "pairs: {} intra, {} inter{}",
            model.pairs.intra_pairs,
            model.pairs.inter_pairs,
            if model.pairs.inter_sampled {
                " (sampled)"
            } else {
                ""
            }
        ))
        .small()
        .color(theme::MUTED),
    );
    ui.add_space(12.0);
    super::health::health_ui(ui, &result.health, commands);
    ui.add_space(8.0);
    super::health::shortcut_ui(ui, shortcut, current, commands);
    ui.add_space(12.0);
    super::probes::probes_ui(ui, result);
}

/// A horizontal bar filled to `fraction` (clamped to 0–1).
fn bar(ui: &mut egui::Ui, fraction: f32, colour: egui::Color32) {
    let (rect, _) = ui.allocate_exact_size(egui::vec2(120.0, 10.0), egui::Sense::hover());
    let painter = ui.painter();
    painter.rect_filled(rect, 2.0, egui::Color32::from_gray(50));
    let mut filled = rect;
    filled.set_width(rect.width() * fraction.clamp(0.0, 1.0));
    painter.rect_filled(filled, 2.0, colour);
}

#[cfg(test)]
mod tests {
    use super::column_title;

    #[test]
    fn long_fine_tuned_names_are_shortened_and_short_names_kept() {
        assert_eq!(column_title("effnet-lite0"), "effnet-lite0");
        assert_eq!(column_title("compact@mine"), "compact@mine");
        assert_eq!(
            column_title("effnet-lite0@finetuned.effnet-lite0.infonce.from-x.300x32.96px"),
            "effnet-lite0 fine-tuned…"
        );
    }
}
