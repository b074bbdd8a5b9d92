//! The Metrics view's health section: the current encoder's verdict (healthy, complete or
//! dimensional collapse, hub-dominated), its figures with how to read them, the cumulative
//! share of variance over the principal axes, and the top hubs (a click shows one's
//! neighbours). Computed with the metrics, by `natview_analysis::health`.

use super::theme;
use crate::work::HealthView;
use crate::Command;
use natview_analysis::health::VerdictKind;

/// Hubs listed.
const HUBS_SHOWN: usize = 5;

/// Draws the health section.
pub fn health_ui(
    ui: &mut egui::Ui,
    health: &Result<HealthView, String>,
    commands: &mut Vec<Command>,
) {
    ui.heading("Representation health");
    let view = match health {
        Ok(view) => view,
        Err(e) => {
            ui.label(egui::RichText::new(format!("No health report: {e}")).color(theme::MUTED));
            return;
        }
    };
    let h = &view.report;
    let colour = match h.verdict.kind {
        VerdictKind::Healthy => theme::SAME_LISTING,
        VerdictKind::HubDominated => theme::SELECTED,
        VerdictKind::CompleteCollapse | VerdictKind::DimensionalCollapse => theme::ERROR,
    };
    ui.label(egui::RichText::new(&h.verdict.text).strong().color(colour));
    ui.label(
        egui::RichText::new(format!(
            "{} of {} images sampled · {} dimensions",
            h.rows, h.of_rows, h.dim
        ))
        .small()
        .color(theme::MUTED),
    );
    ui.add_space(4.0);
    ui.horizontal_top(|ui| {
        figures(ui, view);
        ui.add_space(16.0);
        cumulative_variance(ui, &h.spectrum);
    });
    if !h.hubness.top.is_empty() {
        ui.add_space(4.0);
        ui.label(
            egui::RichText::new("Top hubs (the images most often among the others' nearest):")
                .small(),
        );
        for (hub, name) in h.hubness.top.iter().zip(&view.hub_names).take(HUBS_SHOWN) {
            ui.horizontal(|ui| {
                if ui
                    .small_button("show")
                    .on_hover_text("select it and show its neighbours")
                    .clicked()
                {
                    commands.push(Command::Select(hub.row));
                }
                ui.label(format!(
                    "{name} — in {} of {} lists",
                    hub.occurrences, h.rows
                ));
            });
        }
    }
}

/// The figures, each with how to read it.
fn figures(ui: &mut egui::Ui, view: &HealthView) {
    let h = &view.report;
    let rows: Vec<(&str, String, &str)> = vec![
        (
            "effective rank",
            format!("{:.1}", h.effective_rank),
            "RankMe: exp of the entropy of the normalised singular values — how many directions the embedding really uses",
        ),
        (
            "axes for 95 %",
            format!("{} of {}", h.dims_for_95, h.dim),
            "principal axes that carry 95 % of the variance; a handful means dimensional collapse",
        ),
        (
            "total variance",
            format!("{:.3}", h.total_variance),
            "1 − ‖mean‖² of the unit embeddings; near 0 when they all point the same way",
        ),
        (
            "mean cosine",
            format!("{:.3}", h.mean_cosine),
            "between two random images",
        ),
        (
            "dead dimensions",
            h.dead_dims.to_string(),
            "dimensions whose variance is below a millionth of the largest",
        ),
        (
            "alignment",
            h.alignment.map_or("—".into(), |a| format!("{a:.3}")),
            "Wang & Isola: mean ‖a − b‖² between two views of one listing (lower: closer)",
        ),
        (
            "uniformity",
            format!("{:.3}", h.uniformity),
            "Wang & Isola: log E exp(−2‖a − b‖²) over random pairs (lower: spread more evenly)",
        ),
        (
            "hubness skew",
            format!("{:.2}", h.hubness.skewness),
            "skewness of how often each image is among the others' nearest; above ~3 a tail of hubs",
        ),
        (
            "top 1 % share",
            format!("{:.1} %", 100.0 * h.hubness.top_percent_share),
            "share of all nearest-neighbour lists the 1 % most listed images fill (1 % when even)",
        ),
    ];
    egui::Grid::new("health-figures")
        .num_columns(2)
        .spacing(egui::vec2(12.0, 4.0))
        .striped(true)
        .show(ui, |ui| {
            for (name, value, hint) in rows {
                ui.label(name).on_hover_text(hint);
                ui.label(egui::RichText::new(value).monospace());
                ui.end_row();
            }
        });
}

/// The cumulative share of variance over the principal axes (x: axes, log scale).
fn cumulative_variance(ui: &mut egui::Ui, spectrum: &[f64]) {
    let total: f64 = spectrum.iter().sum();
    ui.vertical(|ui| {
        ui.label(egui::RichText::new("variance explained by the first n axes").small());
        let (rect, _) = ui.allocate_exact_size(egui::vec2(260.0, 140.0), egui::Sense::hover());
        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, 2.0, egui::Color32::from_gray(30));
        if total <= 0.0 || spectrum.is_empty() {
            return;
        }
        let n = spectrum.len() as f32;
        let x_of = |axes: f32| rect.left() + rect.width() * ((axes).ln_1p() / n.ln_1p());
        let y_of = |share: f32| rect.bottom() - rect.height() * share;
        let mut running = 0.0;
        let points: Vec<egui::Pos2> = spectrum
            .iter()
            .enumerate()
            .map(|(i, v)| {
                running += v / total;
                egui::pos2(x_of((i + 1) as f32), y_of(running as f32))
            })
            .collect();
        painter.line_segment(
            [
                egui::pos2(rect.left(), y_of(0.95)),
                egui::pos2(rect.right(), y_of(0.95)),
            ],
            egui::Stroke::new(1.0, theme::MUTED),
        );
        painter.add(egui::Shape::line(
            points,
            egui::Stroke::new(2.0, theme::SAME_LISTING),
        ));
        let font = egui::FontId::proportional(10.0);
        painter.text(
            egui::pos2(rect.left() + 2.0, y_of(0.95) + 2.0),
            egui::Align2::LEFT_TOP,
            "95 %",
            font.clone(),
            theme::MUTED,
        );
        painter.text(
            rect.right_bottom() - egui::vec2(2.0, 2.0),
            egui::Align2::RIGHT_BOTTOM,
            format!("{} axes", spectrum.len()),
            font,
            theme::MUTED,
        );
    });
}

/// The augmentation-shortcut probe: a button that runs it for the current encoder, then its
/// verdict and the three distributions' quartiles.
pub fn shortcut_ui(
    ui: &mut egui::Ui,
    (result, busy): (Option<&crate::ShortcutResult>, bool),
    current: &natview_encoder::EncoderSpec,
    commands: &mut Vec<Command>,
) {
    ui.horizontal(|ui| {
        ui.strong("Augmentation-shortcut probe");
        let runnable = current.model != natview_encoder::ModelKind::Imported;
        if ui
            .add_enabled(runnable && !busy, egui::Button::new("Run"))
            .on_hover_text(
                "cosines of two augmentations of one image, of two natural views of one listing and of different listings, on 200 sampled listings: has the encoder learned the item or the augmentations?",
            )
            .clicked()
        {
            commands.push(Command::ComputeShortcut);
        }
        if busy {
            ui.label("augmenting and embedding…");
        } else if !runnable {
            ui.label(egui::RichText::new("needs an encoder, not imported vectors").color(theme::MUTED));
        }
    });
    let Some(result) = result.filter(|r| r.encoder == current.workspace_key()) else {
        return;
    };
    let r = &result.report;
    let colour = match r.kind {
        natview_train::shortcut::ShortcutKind::KeysOnTheItem => theme::SAME_LISTING,
        natview_train::shortcut::ShortcutKind::AugmentationShortcut => theme::ERROR,
        natview_train::shortcut::ShortcutKind::Undecided => theme::MUTED,
    };
    ui.label(egui::RichText::new(&r.text).color(colour));
    egui::Grid::new("shortcut-cosines")
        .num_columns(4)
        .spacing(egui::vec2(12.0, 2.0))
        .show(ui, |ui| {
            for heading in ["cosine", "p10", "median", "p90"] {
                ui.label(egui::RichText::new(heading).small().color(theme::MUTED));
            }
            ui.end_row();
            for (name, c) in [
                ("two augmentations of one image", &r.augmented),
                ("two natural views of one listing", &r.natural),
                ("images of different listings", &r.different),
            ] {
                ui.label(name);
                for v in [c.p10, c.median, c.p90] {
                    ui.label(egui::RichText::new(format!("{v:.3}")).monospace());
                }
                ui.end_row();
            }
        });
}
