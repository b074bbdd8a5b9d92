//! The Metrics view's low-shot table: kNN and linear-probe accuracy of each encoder trained on
//! 1 %, 10 % and 100 % of the labelled images (the dataset's label column, else the tags).

use super::theme;
use crate::MetricsResult;
use natview_analysis::probe::{ClassSource, ProbeReport};

/// Draws the low-shot table (or why there is none).
pub fn probes_ui(ui: &mut egui::Ui, result: &MetricsResult) {
    ui.add_space(10.0);
    ui.heading("Low-shot probes");
    let probes = match &result.probes {
        Ok(probes) if !probes.is_empty() => probes,
        Ok(_) => return,
        Err(why) => {
            ui.label(egui::RichText::new(why).color(theme::MUTED));
            return;
        }
    };
    let first: &ProbeReport = &probes[0].1;
    ui.label(
        egui::RichText::new(format!(
            "{} classes from the {} · {} labelled images · trained on a share of the {} in the \
             pool, tested on {} images of other listings (split by listing, seeded; 1 % and 10 % \
             averaged over 3 draws) · the most common class alone scores {:.3}",
            first.classes.len(),
            match result.probe_classes {
                ClassSource::Label => "label column",
                ClassSource::Tags => "analysts' tags",
            },
            first.labelled,
            first.pool,
            first.test,
            first.majority
        ))
        .color(theme::MUTED),
    );
    egui::Grid::new("probes")
        .num_columns(1 + 2 * first.rows.len())
        .spacing(egui::vec2(14.0, 6.0))
        .striped(true)
        .show(ui, |ui| {
            ui.strong("encoder");
            for probe in ["kNN", "linear"] {
                for row in &first.rows {
                    ui.strong(format!("{probe} {}%", row.fraction * 100.0))
                        .on_hover_text(format!("trained on {} images", row.train_images));
                }
            }
            ui.end_row();
            let best = |pick: fn(&natview_analysis::probe::ProbeRow) -> f64, i: usize| {
                probes
                    .iter()
                    .filter_map(|(_, r)| r.rows.get(i).map(pick))
                    .fold(f64::MIN, f64::max)
            };
            for (name, report) in probes {
                ui.label(super::metrics::column_title(name))
                    .on_hover_text(name.as_str());
                let columns: [fn(&natview_analysis::probe::ProbeRow) -> f64; 2] =
                    [|r| r.knn, |r| r.linear];
                for pick in columns {
                    for (i, row) in report.rows.iter().enumerate() {
                        let value = pick(row);
                        let mut text = egui::RichText::new(format!("{value:.3}")).monospace();
                        if probes.len() > 1 && value == best(pick, i) {
                            text = text.strong();
                        }
                        ui.label(text);
                    }
                }
                ui.end_row();
            }
        });
}
