//! Gallery: every image, grouped by listing into cards, filtered by text and label, or limited
//! to a selection made in the projection; only the rows in view are laid out (virtual
//! scrolling), so the full emoji set scrolls smoothly.

use super::theme;
use super::thumbnails::{item_hover_text, thumbnail_button, ThumbnailCache};
use crate::app::{Command, Session};
use std::collections::HashSet;

/// The gallery's own state: filters and the listings they let through.
#[derive(Default)]
pub struct GalleryState {
    /// Text that a listing's name, label, metadata or paths must contain (case-insensitive).
    pub filter: String,
    /// Only listings with this label.
    pub label: Option<String>,
    /// Only these items (a box or lasso selection in the projection), if set.
    subset: Option<Vec<usize>>,
    /// `subset` as a set, for lookups while drawing.
    subset_lookup: HashSet<usize>,
    /// Changes whenever `subset` does (part of the cache key).
    subset_generation: u64,
    /// (filter, label, items fingerprint, subset generation) the cached list was computed for.
    cached_for: Option<(String, Option<String>, String, u64)>,
    /// Indices into `session.listings` that pass the filters.
    visible: Vec<usize>,
    /// Set when the list changed: the next frame shows it from the top.
    scroll_to_top: bool,
}

impl GalleryState {
    fn refresh(&mut self, session: &Session) {
        let items_fingerprint = &session.set.meta.items_fingerprint;
        let key = (
            self.filter.clone(),
            self.label.clone(),
            items_fingerprint.clone(),
            self.subset_generation,
        );
        if self.cached_for.as_ref() == Some(&key) {
            return;
        }
        let needle = self.filter.to_lowercase();
        let items = &session.set.items;
        self.visible = session
            .listings
            .iter()
            .enumerate()
            .filter(|(_, (name, ids))| {
                let subset_ok =
                    self.subset.is_none() || ids.iter().any(|i| self.subset_lookup.contains(i));
                let label_ok = match &self.label {
                    Some(label) => ids
                        .iter()
                        .any(|&i| items[i].label.as_deref() == Some(label)),
                    None => true,
                };
                let text_ok = needle.is_empty()
                    || name.to_lowercase().contains(&needle)
                    || ids.iter().any(|&i| {
                        let item = &items[i];
                        item.label
                            .as_deref()
                            .is_some_and(|l| l.to_lowercase().contains(&needle))
                            || item
                                .metadata
                                .values()
                                .any(|v| v.to_lowercase().contains(&needle))
                            || item.path.to_string_lossy().to_lowercase().contains(&needle)
                    });
                subset_ok && label_ok && text_ok
            })
            .map(|(index, _)| index)
            .collect();
        self.cached_for = Some(key);
        self.scroll_to_top = true;
    }

    /// Limits the gallery to these items (`None`: show all).
    pub fn set_subset(&mut self, subset: Option<Vec<usize>>) {
        self.subset_lookup = subset.iter().flatten().copied().collect();
        self.subset = subset;
        self.subset_generation += 1;
    }

    /// The items the gallery is limited to, if any.
    pub fn subset(&self) -> Option<&[usize]> {
        self.subset.as_deref()
    }

    /// Whether item `id` is shown (it is in the subset, or there is none).
    fn shows(&self, id: usize) -> bool {
        self.subset.is_none() || self.subset_lookup.contains(&id)
    }

    /// Number of listings that pass the filters (after the last frame).
    pub fn visible_listings(&self) -> usize {
        self.visible.len()
    }
}

/// Draws the gallery.
pub fn gallery_ui(
    ui: &mut egui::Ui,
    session: &Session,
    state: &mut GalleryState,
    thumbnails: &mut ThumbnailCache,
    commands: &mut Vec<Command>,
) {
    state.refresh(session);
    ui.horizontal(|ui| {
        ui.label("Filter");
        ui.add(
            egui::TextEdit::singleline(&mut state.filter)
                .hint_text("name, label, metadata…")
                .desired_width(220.0),
        );
        let current = state.label.clone().unwrap_or_else(|| "all labels".into());
        egui::ComboBox::from_label("label")
            .selected_text(current)
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut state.label, None, "all labels");
                for label in &session.distinct_labels {
                    ui.selectable_value(&mut state.label, Some(label.clone()), label);
                }
            });
        ui.label(
            egui::RichText::new(format!(
                "{} of {} listings",
                state.visible.len(),
                session.listings.len()
            ))
            .color(theme::MUTED),
        );
    });
    if let Some(subset) = &state.subset {
        ui.horizontal(|ui| {
            ui.label(
                egui::RichText::new(format!(
                    "Showing the {} image(s) selected in the projection",
                    subset.len()
                ))
                .color(theme::SELECTED),
            );
            if ui.small_button("Show all").clicked() {
                commands.push(Command::SetGallerySubset(None));
            }
        });
    }
    ui.separator();
    state.refresh(session);

    let max_views = session
        .listings
        .iter()
        .map(|(_, ids)| ids.len())
        .max()
        .unwrap_or(1)
        .min(8);
    let card_width = max_views as f32 * (theme::THUMB_PX + theme::GAP_PX) + 12.0;
    let per_row = ((ui.available_width() / card_width).floor() as usize).max(1);
    let row_height = theme::THUMB_PX + 26.0;
    let rows = state.visible.len().div_ceil(per_row);
    let selected = session.selection.as_ref().and_then(|s| s.item());
    let ctx = ui.ctx().clone();
    let mut scroll = egui::ScrollArea::vertical();
    if std::mem::take(&mut state.scroll_to_top) {
        scroll = scroll.vertical_scroll_offset(0.0);
    }
    scroll
        .auto_shrink([false, false])
        .show_rows(ui, row_height, rows, |ui, range| {
            for row in range {
                ui.horizontal(|ui| {
                    for &listing in state.visible.iter().skip(row * per_row).take(per_row) {
                        let (name, ids) = &session.listings[listing];
                        ui.allocate_ui(egui::vec2(card_width, row_height), |ui| {
                            // Fixed card width, so columns line up whatever the number of views.
                            ui.set_min_width(card_width);
                            ui.vertical(|ui| {
                                ui.add(
                                    egui::Label::new(egui::RichText::new(name).small()).truncate(),
                                );
                                ui.horizontal(|ui| {
                                    ui.spacing_mut().item_spacing.x = theme::GAP_PX;
                                    for &id in ids.iter().filter(|&&id| state.shows(id)).take(8) {
                                        let texture = thumbnails.get(&ctx, session, id);
                                        let response = thumbnail_button(
                                            ui,
                                            texture,
                                            theme::THUMB_PX,
                                            format!("item {id}"),
                                            item_hover_text(session, id),
                                            selected == Some(id),
                                        );
                                        if response.clicked() {
                                            commands.push(Command::Select(id));
                                        }
                                    }
                                });
                            });
                        });
                    }
                });
            }
        });
}
