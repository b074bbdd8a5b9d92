//! Labelling: tags on the selected item (a label set bound to keys 1–9, plus free-text tags)
//! and a note, pair verdicts beside each neighbour, and the Labels view (rename the label set,
//! counts, export). Every change is a command; the app writes it to the store at once.

use super::theme;
use crate::{Command, Session};
use natview_labels::{ExportFormat, Verdict};

/// Text being edited in the labelling widgets.
#[derive(Default)]
pub struct LabellingState {
    /// The item whose note is in `note`.
    note_item: Option<usize>,
    /// The note being edited.
    note: String,
    /// A free-text tag being typed.
    free_tag: String,
    /// The label-set names being edited (key 1 first).
    tag_names: Vec<String>,
    /// The store `tag_names` were loaded from.
    tag_names_for: Option<std::path::PathBuf>,
}

/// Tags and note of the selected item.
pub fn item_labels_ui(
    ui: &mut egui::Ui,
    session: &Session,
    item: usize,
    state: &mut LabellingState,
    commands: &mut Vec<Command>,
) {
    let Some(store) = &session.labels else {
        return;
    };
    let key = session.item_key(item);
    ui.horizontal_wrapped(|ui| {
        ui.spacing_mut().item_spacing = egui::vec2(4.0, 4.0);
        for (slot, tag) in store.tag_set().iter().enumerate() {
            let on = store.has_tag(key, tag);
            let text = egui::RichText::new(format!("{} {tag}", slot + 1)).small();
            let response = ui
                .selectable_label(on, text)
                .on_hover_text(format!("key {}: toggle the tag “{tag}”", slot + 1));
            if response.clicked() {
                commands.push(Command::ToggleTag {
                    item,
                    tag: tag.clone(),
                });
            }
        }
        // Free-text tags the item carries (click to remove).
        if let Some(tags) = store.tags_of(key) {
            for tag in tags.iter().filter(|t| !store.tag_set().contains(t)) {
                if ui
                    .selectable_label(true, egui::RichText::new(tag).small())
                    .on_hover_text("click to remove this tag")
                    .clicked()
                {
                    commands.push(Command::ToggleTag {
                        item,
                        tag: tag.clone(),
                    });
                }
            }
        }
    });
    ui.horizontal(|ui| {
        let response = ui.add(
            egui::TextEdit::singleline(&mut state.free_tag)
                .hint_text("new tag…")
                .desired_width(140.0),
        );
        let entered = response.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        if (entered || ui.small_button("Add tag").clicked()) && !state.free_tag.trim().is_empty() {
            let tag = state.free_tag.trim().to_string();
            if !store.has_tag(key, &tag) {
                commands.push(Command::ToggleTag { item, tag });
            }
            state.free_tag.clear();
        }
    });
    if state.note_item != Some(item) {
        state.note_item = Some(item);
        state.note = store.note_of(key).unwrap_or_default().to_string();
    }
    let response = ui.add(
        egui::TextEdit::multiline(&mut state.note)
            .hint_text("note (saved when you leave the field)")
            .desired_rows(2)
            .desired_width(f32::INFINITY),
    );
    if response.lost_focus() && state.note.trim() != store.note_of(key).unwrap_or_default() {
        commands.push(Command::SetNote {
            item,
            note: state.note.clone(),
        });
    }
}

/// Short button texts of the verdicts.
fn verdict_text(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Same => "same",
        Verdict::Different => "diff",
        Verdict::NearDuplicate => "dup",
    }
}

/// The verdict buttons for the pair (query item, neighbour).
pub fn verdict_ui(
    ui: &mut egui::Ui,
    session: &Session,
    query: usize,
    neighbour: usize,
    commands: &mut Vec<Command>,
) {
    let Some(store) = &session.labels else {
        return;
    };
    let current = store.verdict_of(session.item_key(query), session.item_key(neighbour));
    ui.horizontal(|ui| {
        ui.spacing_mut().item_spacing.x = 2.0;
        for verdict in Verdict::ALL {
            let on = current == Some(verdict);
            let response = ui
                .selectable_label(on, egui::RichText::new(verdict_text(verdict)).small())
                .on_hover_text(format!(
                    "mark item {query} and item {neighbour} as {}{}",
                    verdict.as_str(),
                    if on { " (click again to clear)" } else { "" }
                ));
            if response.clicked() {
                commands.push(Command::SetVerdict {
                    query,
                    neighbour,
                    verdict: if on { None } else { Some(verdict) },
                });
            }
        }
    });
}

/// The Labels view: the label set (rename), counts, and exports.
pub fn labels_view_ui(
    ui: &mut egui::Ui,
    session: &Session,
    state: &mut LabellingState,
    commands: &mut Vec<Command>,
) {
    let Some(store) = &session.labels else {
        ui.label(egui::RichText::new("The label store is not open.").color(theme::ERROR));
        return;
    };
    ui.heading("Labels");
    ui.label(
        egui::RichText::new(format!(
            "Select an image, then press 1–9 to toggle a tag. Saved at once in {} (as {}).",
            store.path().display(),
            store.who()
        ))
        .color(theme::MUTED),
    );
    ui.add_space(8.0);
    if state.tag_names_for.as_deref() != Some(store.path()) {
        state.tag_names = store.tag_set().to_vec();
        state.tag_names_for = Some(store.path().to_path_buf());
    }
    let counts = store.tag_counts();
    let count_of = |tag: &str| counts.iter().find(|(t, _)| t == tag).map_or(0, |(_, n)| *n);
    egui::Grid::new("tag-set")
        .num_columns(3)
        .striped(true)
        .show(ui, |ui| {
            ui.strong("key");
            ui.strong("tag");
            ui.strong("items");
            ui.end_row();
            for slot in 0..state.tag_names.len() {
                let key_label = ui.label(format!("{}", slot + 1));
                let response = ui
                    .add(
                        egui::TextEdit::singleline(&mut state.tag_names[slot]).desired_width(200.0),
                    )
                    .labelled_by(key_label.id);
                if response.lost_focus() && state.tag_names[slot] != store.tag_set()[slot] {
                    if state.tag_names[slot].trim().is_empty() {
                        state.tag_names[slot] = store.tag_set()[slot].clone();
                    } else {
                        commands.push(Command::RenameTagKey {
                            key: slot + 1,
                            name: state.tag_names[slot].clone(),
                        });
                    }
                }
                ui.label(format!("{}", count_of(&store.tag_set()[slot])));
                ui.end_row();
            }
        });
    let free: Vec<&(String, usize)> = counts
        .iter()
        .filter(|(t, _)| !store.tag_set().contains(t))
        .collect();
    if !free.is_empty() {
        ui.add_space(8.0);
        ui.strong("Other tags");
        for (tag, n) in free {
            ui.label(format!("{tag}: {n}"));
        }
    }
    ui.add_space(8.0);
    ui.strong("Pair verdicts");
    let verdicts = store.verdict_counts();
    ui.label(
        verdicts
            .iter()
            .map(|(v, n)| format!("{}: {n}", v.as_str()))
            .collect::<Vec<_>>()
            .join(" · "),
    );
    ui.label(format!("notes: {}", store.note_count()));
    ui.add_space(8.0);
    ui.horizontal(|ui| {
        if ui.button("Export CSV").clicked() {
            commands.push(Command::ExportLabels(ExportFormat::Csv));
        }
        if ui.button("Export JSONL").clicked() {
            commands.push(Command::ExportLabels(ExportFormat::Jsonl));
        }
        ui.label(
            egui::RichText::new("into the workspace; or `natview labels export`")
                .color(theme::MUTED),
        );
    });
}
