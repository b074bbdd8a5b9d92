//! Neighbours: the query (an item, or an image file from outside the dataset) with its tags and
//! note, and its nearest neighbours with thumbnails, cosine similarities, a mark on the views of
//! the same listing, and verdict buttons for each pair.

use super::labelling::{item_labels_ui, verdict_ui, LabellingState};
use super::theme;
use super::thumbnails::{item_hover_text, thumbnail_button, ThumbnailCache};
use crate::{BackendEditor, Command, NeighbourBackend, Query, Session};

/// Draws the neighbours panel.
pub fn neighbours_ui(
    ui: &mut egui::Ui,
    session: &Session,
    labelling: &mut LabellingState,
    backend: &mut BackendEditor,
    thumbnails: &mut ThumbnailCache,
    commands: &mut Vec<Command>,
) {
    ui.heading("Neighbours");
    backend_ui(ui, backend, commands);
    let Some(selection) = &session.selection else {
        ui.label(
            egui::RichText::new(
                "Click any image to see its nearest neighbours, or drop an image file here.",
            )
            .color(theme::MUTED),
        );
        return;
    };
    let ctx = ui.ctx().clone();
    let items = &session.set.items;
    let query_listing = match &selection.query {
        Query::Item(id) => {
            let query = &items[*id];
            ui.horizontal(|ui| {
                let texture = thumbnails.get(*id);
                thumbnail_button(
                    ui,
                    texture,
                    theme::THUMB_PX,
                    format!("query item {id}"),
                    item_hover_text(session, *id),
                    true,
                );
                ui.vertical(|ui| {
                    ui.strong(&query.listing);
                    if let Some(label) = &query.label {
                        ui.label(egui::RichText::new(label).color(theme::MUTED));
                    }
                    ui.label(
                        egui::RichText::new(query.path.to_string_lossy())
                            .small()
                            .color(theme::MUTED),
                    );
                });
            });
            item_labels_ui(ui, session, *id, labelling, commands);
            Some(query.listing.as_str())
        }
        Query::Text { text } => {
            ui.vertical(|ui| {
                ui.strong(format!("Text: “{text}”"));
                ui.label(
                    egui::RichText::new("best matches through the encoder's text tower")
                        .small()
                        .color(theme::MUTED),
                );
            });
            None
        }
        Query::Image { path, thumbnail } => {
            ui.horizontal(|ui| {
                let texture = thumbnails.external(&ctx, path, thumbnail.as_ref());
                thumbnail_button(
                    ui,
                    texture,
                    theme::THUMB_PX,
                    "query image".into(),
                    path.display().to_string(),
                    true,
                );
                ui.vertical(|ui| {
                    ui.strong("Image from outside the dataset");
                    ui.label(
                        egui::RichText::new(path.to_string_lossy())
                            .small()
                            .color(theme::MUTED),
                    );
                });
            });
            None
        }
    };
    if !session.is_embedded() {
        ui.label(
            egui::RichText::new(
                "The dataset is still being embedded: its neighbours show once that is done.",
            )
            .color(theme::MUTED),
        );
        return;
    }
    let same = selection
        .neighbours
        .iter()
        .filter(|n| Some(items[n.id].listing.as_str()) == query_listing)
        .count();
    let mut summary = format!(
        "{} nearest ({}, {:.2} ms)",
        selection.neighbours.len(),
        selection.source,
        selection.search_ms
    );
    if query_listing.is_some() {
        summary.push_str(&format!(" · {same} from the same listing"));
    }
    ui.label(egui::RichText::new(summary).small().color(theme::MUTED));
    ui.separator();
    let query_item = selection.item();
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .show(ui, |ui| {
            for (rank, neighbour) in selection.neighbours.iter().enumerate() {
                let item = &items[neighbour.id];
                let is_same = Some(item.listing.as_str()) == query_listing;
                ui.horizontal(|ui| {
                    ui.label(
                        egui::RichText::new(format!("{:>2}", rank + 1))
                            .monospace()
                            .color(theme::MUTED),
                    );
                    let texture = thumbnails.get(neighbour.id);
                    let name = format!(
                        "neighbour {}: item {} ({:.3})",
                        rank + 1,
                        neighbour.id,
                        neighbour.similarity
                    );
                    let hover = item_hover_text(session, neighbour.id);
                    if thumbnail_button(ui, texture, theme::NEIGHBOUR_THUMB_PX, name, hover, false)
                        .clicked()
                    {
                        commands.push(Command::Select(neighbour.id));
                    }
                    ui.vertical(|ui| {
                        ui.horizontal(|ui| {
                            ui.label(
                                egui::RichText::new(format!("{:.3}", neighbour.similarity))
                                    .monospace()
                                    .strong(),
                            );
                            if is_same {
                                ui.label(
                                    egui::RichText::new("same listing")
                                        .color(theme::SAME_LISTING)
                                        .strong(),
                                );
                            }
                        });
                        ui.add(egui::Label::new(&item.listing).truncate());
                        if let Some(query) = query_item {
                            verdict_ui(ui, session, query, neighbour.id, commands);
                        }
                    });
                });
            }
        });
}

/// Where the neighbours come from: the in-process index, or a Milvus collection (with a filter
/// on its stored fields) that `natview export --milvus` filled.
fn backend_ui(ui: &mut egui::Ui, backend: &mut BackendEditor, commands: &mut Vec<Command>) {
    let title = match &backend.active {
        Some(active) => format!("Backend: {}", active.target),
        None => "Backend: this machine's index".to_string(),
    };
    egui::CollapsingHeader::new(title)
        .id_salt("neighbour backend")
        .show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.label("Milvus");
                ui.add(
                    egui::TextEdit::singleline(&mut backend.target)
                        .hint_text("milvus://127.0.0.1:19530/collection")
                        .desired_width(f32::INFINITY),
                );
            });
            ui.horizontal(|ui| {
                ui.label("Filter");
                ui.add(
                    egui::TextEdit::singleline(&mut backend.filter)
                        .hint_text("label == \"Animals & Nature\"")
                        .desired_width(f32::INFINITY),
                );
            });
            ui.horizontal(|ui| {
                let wanted = NeighbourBackend {
                    target: backend.target.trim().to_string(),
                    filter: backend.filter.trim().to_string(),
                };
                let ask = ui.add_enabled(
                    !wanted.target.is_empty() && backend.active.as_ref() != Some(&wanted),
                    egui::Button::new("Ask Milvus"),
                );
                if ask.clicked() {
                    commands.push(Command::SetNeighbourBackend(Some(wanted)));
                }
                if ui
                    .add_enabled(
                        backend.active.is_some(),
                        egui::Button::new("Use this machine"),
                    )
                    .clicked()
                {
                    commands.push(Command::SetNeighbourBackend(None));
                }
            });
        });
}
