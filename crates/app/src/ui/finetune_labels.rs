//! The Fine-tune view's labels: whether the run trains with the analysts' verdicts, which tags
//! exclude images, what near-duplicates become; and, after a run, how the judged pairs'
//! cosines moved.

use super::theme;
use crate::Session;
use natview_labels::Verdict;
use natview_train::{DuplicatePolicy, JudgedRow, Judgements, Movement};
use std::collections::BTreeSet;

/// The labels part of the fine-tune settings.
#[derive(Debug, Clone, Default)]
pub struct LabelsChoice {
    /// Train with the verdicts and exclusions.
    pub use_labels: bool,
    /// Tags whose images are left out.
    pub exclude: BTreeSet<String>,
    /// What near-duplicate pairs become.
    pub duplicates: DuplicatePolicy,
}

impl LabelsChoice {
    /// The judgements a run gets (`None` when there are none).
    /// Without "train with the verdicts" the verdicts are only measured: the report still
    /// shows how the run moved the judged pairs.
    pub fn judgements(&self, session: &Session) -> Option<Judgements> {
        let store = session.labels.as_ref()?;
        if !self.use_labels {
            let measured =
                Judgements::from_store(store, &[], DuplicatePolicy::Merge).measured_only();
            let any = !measured.same.is_empty()
                || !measured.different.is_empty()
                || !measured.duplicates.is_empty();
            return any.then_some(measured);
        }
        let exclude: Vec<String> = self.exclude.iter().cloned().collect();
        Some(Judgements::from_store(store, &exclude, self.duplicates)).filter(|j| !j.is_empty())
    }
}

/// The labels rows of the settings form (inside its grid).
pub fn labels_form_ui(ui: &mut egui::Ui, session: &Session, choice: &mut LabelsChoice) {
    let Some(store) = &session.labels else { return };
    let counts = store.verdict_counts();
    let count = |v: Verdict| counts.iter().find(|(x, _)| *x == v).map_or(0, |c| c.1);
    let (same, different, duplicates) = (
        count(Verdict::Same),
        count(Verdict::Different),
        count(Verdict::NearDuplicate),
    );
    let label = ui.label("Labels");
    ui.checkbox(
        &mut choice.use_labels,
        format!(
            "train with the verdicts: {same} same (positives), {different} different (hard \
             negatives), {duplicates} near-duplicate"
        ),
    )
    .labelled_by(label.id)
    .on_hover_text(
        "a fifth of the judged pairs is kept out of training; the report shows how both groups moved",
    );
    ui.end_row();
    if !choice.use_labels {
        return;
    }
    ui.label("Near-duplicates");
    ui.horizontal(|ui| {
        ui.radio_value(
            &mut choice.duplicates,
            DuplicatePolicy::Merge,
            "merge their listings",
        );
        ui.radio_value(
            &mut choice.duplicates,
            DuplicatePolicy::Drop,
            "drop the second image",
        );
    });
    ui.end_row();
    ui.label("Leave out images tagged");
    ui.horizontal_wrapped(|ui| {
        let tags = store.tag_counts();
        if tags.is_empty() {
            ui.label(egui::RichText::new("no tags yet").color(theme::MUTED));
        }
        for (tag, n) in tags {
            let mut on = choice.exclude.contains(&tag);
            if ui.checkbox(&mut on, format!("{tag} ({n})")).changed() {
                if on {
                    choice.exclude.insert(tag);
                } else {
                    choice.exclude.remove(&tag);
                }
            }
        }
    });
    ui.end_row();
}

/// How the judged pairs' mean cosine moved (same and near-duplicate pairs should rise,
/// different pairs fall), for pairs trained on and pairs kept out.
pub fn judged_report_ui(ui: &mut egui::Ui, rows: &[JudgedRow], missing: usize) {
    if rows.is_empty() {
        return;
    }
    ui.add_space(6.0);
    ui.strong("Judged pairs, mean cosine");
    egui::Grid::new("finetune-judged")
        .num_columns(6)
        .spacing(egui::vec2(16.0, 4.0))
        .striped(true)
        .show(ui, |ui| {
            for title in ["verdict", "pairs", "", "before", "after", "moved"] {
                ui.strong(title);
            }
            ui.end_row();
            for row in rows {
                ui.label(row.verdict.as_str());
                ui.monospace(row.pairs.to_string());
                ui.label(if row.trained {
                    "trained on"
                } else {
                    "not trained on"
                });
                ui.monospace(format!("{:.3}", row.before));
                ui.monospace(row.after.map_or("-".to_string(), |a| format!("{a:.3}")));
                match row.movement() {
                    Some(Movement::Wrong) => ui.colored_label(theme::ERROR, "the wrong way"),
                    Some(m) => ui.label(m.describe()),
                    None => ui.label("-"),
                };
                ui.end_row();
            }
        });
    if missing > 0 {
        ui.label(
            egui::RichText::new(format!(
                "{missing} judged pair(s) name images this run does not have"
            ))
            .color(theme::MUTED),
        );
    }
}
