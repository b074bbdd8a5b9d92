//! The Diff view: two encoders of the open dataset compared listing by listing — which
//! listings a fine-tune (or another model) improved, which it broke, with their views'
//! thumbnails (a click shows an image's neighbours) and held-out listings marked; both layouts
//! in one frame with a morph between them ([`super::diff_layout`]); the regressed listings sent
//! to the Review view as a queue.

use super::diff_layout::{aligned_scatter_ui, AlignedScatterState};
use super::theme;
use super::thumbnails::ThumbnailCache;
use crate::diff_job::DiffResult;
use crate::session::Session;
use crate::Command;
use natview_analysis::diff::{Change, ListingChange};
use natview_analysis::projection::ProjectionMethod;

/// Listings listed per tab.
const SHOWN: usize = 60;
/// Thumbnails per listing.
const VIEWS_SHOWN: usize = 6;
/// Thumbnail side in points.
const SIDE: f32 = 48.0;

/// What the view remembers between frames.
#[derive(Debug, Default)]
pub struct DiffViewState {
    /// Encoder A (before), by workspace key; `None`: the first offered.
    pub from: Option<String>,
    /// Encoder B (after); `None`: the current encoder.
    pub to: Option<String>,
    /// The list shown.
    pub tab: Option<Change>,
    /// The layout method of the aligned scatter; `None`: PCA.
    pub layout: Option<ProjectionMethod>,
    /// The aligned scatter's morph and drawing order.
    pub scatter: AlignedScatterState,
}

/// Draws the Diff view.
pub fn diff_ui(
    ui: &mut egui::Ui,
    session: &Session,
    result: Option<&DiffResult>,
    busy: bool,
    state: &mut DiffViewState,
    thumbnails: &mut ThumbnailCache,
    commands: &mut Vec<Command>,
) {
    ui.heading("Diff: what changed between two encoders");
    let names: Vec<&str> = session.encoders.iter().map(|e| e.name.as_str()).collect();
    if names.len() < 2 {
        ui.label(
            egui::RichText::new(
                "Only one encoder is on offer for this dataset: fine-tune one (Fine-tune) or open \
                 another (Model menu) to compare.",
            )
            .color(theme::MUTED),
        );
        return;
    }
    let current = session.set.meta.encoder.workspace_key();
    let to = state.to.clone().unwrap_or(current);
    let from = state.from.clone().unwrap_or_else(|| {
        names
            .iter()
            .find(|n| **n != to)
            .map_or_else(String::new, |n| n.to_string())
    });
    ui.horizontal(|ui| {
        let label = ui.label("A (before)");
        pick(ui, ("diff-from", label.id), &names, &from, &mut state.from);
        let label = ui.label("B (after)");
        pick(ui, ("diff-to", label.id), &names, &to, &mut state.to);
        let label = ui.label("layout");
        let method = state.layout.unwrap_or(ProjectionMethod::Pca);
        let mut picked = method;
        egui::ComboBox::from_id_salt(("diff-layout", label.id))
            .selected_text(method.label())
            .show_ui(ui, |ui| {
                for m in ProjectionMethod::ALL {
                    ui.selectable_value(&mut picked, m, m.label());
                }
            })
            .response
            .labelled_by(label.id);
        let enabled = !busy && from != to;
        let relayout = picked != method && result.is_some();
        state.layout = Some(picked);
        if ui
            .add_enabled(enabled, egui::Button::new("Compare"))
            .clicked()
            || (relayout && enabled)
        {
            commands.push(Command::ComputeDiff {
                from: from.clone(),
                to: to.clone(),
                layout: picked,
            });
        }
        if busy {
            ui.label("embedding and comparing…");
        }
    });
    let Some(result) = result else {
        ui.label(
            egui::RichText::new(
                "Pick two encoders and Compare: every image's nearest neighbours under each, and \
                 each listing's retrieval before and after.",
            )
            .color(theme::MUTED),
        );
        return;
    };
    summary(ui, result);
    ui.horizontal(|ui| {
        let regressed = result.regressed.as_ref().map_or(0, |q| q.pairs.len());
        if ui
            .add_enabled(
                regressed > 0,
                egui::Button::new(format!("Review the {regressed} regressed view(s)")),
            )
            .on_hover_text(
                "each beside the view of its listing it was nearest to under A: judge whether they show one item",
            )
            .clicked()
        {
            commands.push(Command::ReviewRegressed);
        }
    });
    egui::CollapsingHeader::new("Both layouts in one frame")
        .default_open(true)
        .show(ui, |ui| {
            aligned_scatter_ui(ui, result, &mut state.scatter, thumbnails, commands);
        });
    let tab = state.tab.get_or_insert(Change::Improved);
    ui.horizontal(|ui| {
        for (change, label) in [
            (Change::Improved, "Improved"),
            (Change::Regressed, "Regressed"),
            (Change::Unchanged, "Unchanged"),
        ] {
            let count = result.diff.with_change(change).count();
            ui.selectable_value(tab, change, format!("{label} ({count})"));
        }
    });
    ui.separator();
    let mut listed: Vec<&ListingChange> = result.diff.with_change(*tab).collect();
    if *tab == Change::Regressed {
        listed.reverse(); // most regressed first
    }
    for change in listed.iter().take(SHOWN) {
        listing_row(ui, result, change, thumbnails, commands);
    }
    if listed.len() > SHOWN {
        ui.label(
            egui::RichText::new(format!(
                "… and {} more (natview diff --json lists them all)",
                listed.len() - SHOWN
            ))
            .color(theme::MUTED),
        );
    }
}

/// A combo box of encoder names (labelled by the widget `label`) writing the choice into
/// `choice`.
fn pick(
    ui: &mut egui::Ui,
    (id, label): (&str, egui::Id),
    names: &[&str],
    shown: &str,
    choice: &mut Option<String>,
) {
    egui::ComboBox::from_id_salt(id)
        .selected_text(super::metrics::column_title(shown))
        .width(220.0)
        .show_ui(ui, |ui| {
            for name in names {
                if ui.selectable_label(*name == shown, *name).clicked() {
                    *choice = Some(name.to_string());
                }
            }
        })
        .response
        .labelled_by(label);
}

/// The figures over the whole dataset.
fn summary(ui: &mut egui::Ui, r: &DiffResult) {
    let d = &r.diff;
    ui.label(format!(
        "{} → {} · recall@{k} {:.3} → {:.3} · neighbourhoods kept (mean Jaccard of the {k} nearest) {:.3} · {:.1} s",
        super::metrics::column_title(&r.from),
        super::metrics::column_title(&r.to),
        d.recall.0,
        d.recall.1,
        d.mean_jaccard,
        r.seconds,
        k = d.k
    ));
    let held = |change: Change| {
        d.with_change(change)
            .filter(|l| r.held_out(l.listing))
            .count()
    };
    let mut line = format!(
        "listings: {} improved, {} regressed, {} unchanged (mean reciprocal rank of the nearest same-listing view moved by ≥ 0.1)",
        d.counts.0, d.counts.1, d.counts.2
    );
    if !r.heldout.is_empty() {
        line.push_str(&format!(
            "; held out from B's training: {} improved, {} regressed",
            held(Change::Improved),
            held(Change::Regressed)
        ));
    }
    ui.label(egui::RichText::new(line).color(theme::MUTED));
}

/// One listing: its name, figures under A and B, its views.
fn listing_row(
    ui: &mut egui::Ui,
    r: &DiffResult,
    l: &ListingChange,
    thumbnails: &mut ThumbnailCache,
    commands: &mut Vec<Command>,
) {
    ui.horizontal(|ui| {
        ui.vertical(|ui| {
            ui.set_width(300.0);
            let name = r.listing_names.get(l.listing).map_or("?", String::as_str);
            ui.horizontal(|ui| {
                ui.strong(name);
                if r.held_out(l.listing) {
                    ui.label(
                        egui::RichText::new("held out")
                            .small()
                            .color(theme::SELECTED),
                    )
                    .on_hover_text("never trained on by B");
                }
            });
            ui.label(
                egui::RichText::new(format!(
                    "MRR {:.2} → {:.2} · recall {:.2} → {:.2} · gap {:+.3} → {:+.3}",
                    l.mrr.0, l.mrr.1, l.recall.0, l.recall.1, l.gap.0, l.gap.1
                ))
                .small()
                .monospace(),
            );
        });
        for &item in l.items.iter().take(VIEWS_SHOWN) {
            let response = thumbnails.clickable(ui, item, SIDE);
            if response.on_hover_text("show its neighbours").clicked() {
                commands.push(Command::Select(item));
            }
        }
    });
    ui.add_space(2.0);
}
