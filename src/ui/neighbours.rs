//! Neighbours: the selected image and its nearest neighbours with thumbnails, cosine
//! similarities, and a mark on the ones that are views of the same listing.

use super::theme;
use super::thumbnails::{item_hover_text, thumbnail_button, ThumbnailCache};
use crate::app::{Command, Session};

/// Draws the neighbours panel.
pub fn neighbours_ui(
    ui: &mut egui::Ui,
    session: &Session,
    thumbnails: &mut ThumbnailCache,
    commands: &mut Vec<Command>,
) {
    ui.heading("Neighbours");
    let Some(selection) = &session.selection else {
        ui.label(
            egui::RichText::new("Click any image to see its nearest neighbours.")
                .color(theme::MUTED),
        );
        return;
    };
    let ctx = ui.ctx().clone();
    let items = &session.set.items;
    let query = &items[selection.item];
    ui.horizontal(|ui| {
        let texture = thumbnails.get(&ctx, session, selection.item);
        thumbnail_button(
            ui,
            texture,
            theme::THUMB_PX,
            format!("query item {}", selection.item),
            item_hover_text(session, selection.item),
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
    let same = selection
        .neighbours
        .iter()
        .filter(|n| items[n.id].listing == query.listing)
        .count();
    ui.label(
        egui::RichText::new(format!(
            "{} nearest (HNSW, {:.2} ms) · {same} from the same listing",
            selection.neighbours.len(),
            selection.search_ms
        ))
        .small()
        .color(theme::MUTED),
    );
    ui.separator();
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .show(ui, |ui| {
            for (rank, neighbour) in selection.neighbours.iter().enumerate() {
                let item = &items[neighbour.id];
                let is_same = item.listing == query.listing;
                ui.horizontal(|ui| {
                    ui.label(
                        egui::RichText::new(format!("{:>2}", rank + 1))
                            .monospace()
                            .color(theme::MUTED),
                    );
                    let texture = thumbnails.get(&ctx, session, neighbour.id);
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
                        ui.label(
                            egui::RichText::new(format!("{:.3}", neighbour.similarity))
                                .monospace()
                                .strong(),
                        );
                        ui.label(&item.listing);
                        if is_same {
                            ui.label(
                                egui::RichText::new("same listing")
                                    .color(theme::SAME_LISTING)
                                    .strong(),
                            );
                        }
                    });
                });
            }
        });
}
