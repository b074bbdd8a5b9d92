//! Quadrant chart: choose listings (random, by label, or picked) and views per listing; the
//! similarity heatmap with block borders, a legend and the intra/inter statistics; hovering a
//! cell shows both images and their similarity; clicking it selects the row's image; export
//! as PNG.

use super::theme;
use super::thumbnails::ThumbnailCache;
use crate::{Command, QuadrantResult, Session};
use natview_analysis::report::diverging_colour;
use natview_analysis::QuadrantParams;

/// How the listings of the chart are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListingChoice {
    /// A seeded random draw among listings with enough views.
    #[default]
    Random,
    /// A random draw among listings carrying one label.
    ByLabel,
    /// Exactly the listings picked by the user.
    Picked,
}

/// The quadrant view's own state.
pub struct QuadrantViewState {
    choice: ListingChoice,
    listings: usize,
    /// Views per listing: the count shown (the last chart's when chosen from the data).
    views: usize,
    /// Whether the views per listing are chosen from the data.
    auto_views: bool,
    seed: u64,
    label: Option<String>,
    picked: Vec<String>,
    pick_filter: String,
    loaded_from_result: Option<u64>,
    texture: Option<(u64, egui::TextureHandle)>,
}

impl Default for QuadrantViewState {
    fn default() -> Self {
        let params = QuadrantParams::default();
        Self {
            choice: ListingChoice::Random,
            listings: params.listings,
            views: params.views.unwrap_or(natview_analysis::AUTO_VIEWS_MAX),
            auto_views: params.views.is_none(),
            seed: params.seed,
            label: None,
            picked: Vec::new(),
            pick_filter: String::new(),
            loaded_from_result: None,
            texture: None,
        }
    }
}

impl QuadrantViewState {
    /// The parameters the controls describe.
    pub fn params(&self) -> QuadrantParams {
        QuadrantParams {
            listings: self.listings,
            views: (!self.auto_views).then_some(self.views),
            seed: self.seed,
            label: match self.choice {
                ListingChoice::ByLabel => self.label.clone(),
                _ => None,
            },
            picked: match self.choice {
                ListingChoice::Picked => self.picked.clone(),
                _ => Vec::new(),
            },
        }
    }

    /// Takes the controls from a computed chart (once per result).
    fn follow(&mut self, result: &QuadrantResult) {
        if self.loaded_from_result == Some(result.id) {
            return;
        }
        self.loaded_from_result = Some(result.id);
        let p = &result.params;
        self.views = result.chart.views;
        self.auto_views = p.views.is_none();
        self.seed = p.seed;
        if !p.picked.is_empty() {
            self.choice = ListingChoice::Picked;
            self.picked = p.picked.clone();
        } else {
            self.listings = p.listings;
            if p.label.is_some() {
                self.choice = ListingChoice::ByLabel;
                self.label = p.label.clone();
            }
        }
    }
}

/// Draws the quadrant chart view.
pub fn quadrant_ui(
    ui: &mut egui::Ui,
    session: &Session,
    result: Option<&QuadrantResult>,
    busy: bool,
    state: &mut QuadrantViewState,
    thumbnails: &mut ThumbnailCache,
    commands: &mut Vec<Command>,
) {
    // A dataset without two multi-view listings has no chart: say why instead of offering one.
    if let Some(why) = &session.quadrant_unavailable {
        ui.label(egui::RichText::new(why).color(theme::MUTED));
        return;
    }
    if let Some(result) = result {
        state.follow(result);
    }
    controls_ui(ui, session, state, busy, result.is_some(), commands);
    ui.separator();
    let Some(result) = result else {
        ui.label(
            egui::RichText::new(if busy {
                "Computing the chart…"
            } else {
                "Choose listings and press Draw."
            })
            .color(theme::MUTED),
        );
        return;
    };
    stats_ui(ui, result);
    chart_ui(ui, session, result, state, thumbnails, commands);
}

fn controls_ui(
    ui: &mut egui::Ui,
    session: &Session,
    state: &mut QuadrantViewState,
    busy: bool,
    has_result: bool,
    commands: &mut Vec<Command>,
) {
    ui.horizontal_wrapped(|ui| {
        ui.label("Listings:");
        ui.radio_value(&mut state.choice, ListingChoice::Random, "random");
        ui.add_enabled_ui(!session.distinct_labels.is_empty(), |ui| {
            ui.radio_value(&mut state.choice, ListingChoice::ByLabel, "by label");
        });
        ui.radio_value(&mut state.choice, ListingChoice::Picked, "picked");
        ui.separator();
        if state.choice != ListingChoice::Picked {
            ui.add(
                egui::DragValue::new(&mut state.listings)
                    .range(2..=128)
                    .prefix("listings "),
            );
        }
        if ui
            .add(
                egui::DragValue::new(&mut state.views)
                    .range(2..=16)
                    .prefix("views "),
            )
            .changed()
        {
            state.auto_views = false;
        }
        ui.checkbox(&mut state.auto_views, "auto").on_hover_text(
            "views per listing chosen from the data: the median listing's count, at most 4",
        );
        if state.choice == ListingChoice::ByLabel {
            let text = state
                .label
                .clone()
                .unwrap_or_else(|| "choose a label".into());
            egui::ComboBox::from_label("chart label")
                .selected_text(text)
                .show_ui(ui, |ui| {
                    for label in &session.distinct_labels {
                        ui.selectable_value(&mut state.label, Some(label.clone()), label);
                    }
                });
        }
        if state.choice != ListingChoice::Picked {
            ui.add(egui::DragValue::new(&mut state.seed).prefix("seed "));
        }
        let ready = match state.choice {
            ListingChoice::Random => true,
            ListingChoice::ByLabel => state.label.is_some(),
            ListingChoice::Picked => state.picked.len() >= 2,
        };
        if ui
            .add_enabled(ready && !busy, egui::Button::new("Draw"))
            .clicked()
        {
            commands.push(Command::ComputeQuadrant(state.params()));
        }
        if state.choice != ListingChoice::Picked
            && ui
                .add_enabled(ready && !busy, egui::Button::new("New draw"))
                .on_hover_text("another random choice of listings (next seed)")
                .clicked()
        {
            state.seed = state.seed.wrapping_add(1);
            commands.push(Command::ComputeQuadrant(state.params()));
        }
        ui.separator();
        if ui
            .add_enabled(has_result, egui::Button::new("Export PNG"))
            .on_hover_text("save the chart into the dataset's workspace")
            .clicked()
        {
            commands.push(Command::ExportQuadrant(None));
        }
        if ui
            .add_enabled(has_result, egui::Button::new("Export PNG as…"))
            .clicked()
        {
            if let Some(path) = rfd::FileDialog::new()
                .add_filter("PNG", &["png"])
                .set_file_name("quadrant.png")
                .save_file()
            {
                commands.push(Command::ExportQuadrant(Some(path)));
            }
        }
    });
    if state.choice == ListingChoice::Picked {
        picker_ui(ui, session, state);
    }
}

/// The picked listings and a searchable list to pick more from.
fn picker_ui(ui: &mut egui::Ui, session: &Session, state: &mut QuadrantViewState) {
    ui.horizontal_wrapped(|ui| {
        ui.label(format!("Picked ({}):", state.picked.len()));
        let mut remove = None;
        for (i, name) in state.picked.iter().enumerate() {
            if ui
                .small_button(format!("{name} ×"))
                .on_hover_text("remove")
                .clicked()
            {
                remove = Some(i);
            }
        }
        if let Some(i) = remove {
            state.picked.remove(i);
        }
        let selected_listing = session
            .selection
            .as_ref()
            .and_then(|s| s.item())
            .map(|id| session.set.items[id].listing.clone());
        if let Some(listing) = selected_listing {
            if !state.picked.contains(&listing)
                && ui.small_button("+ the selected image's listing").clicked()
            {
                state.picked.push(listing);
            }
        }
        if !state.picked.is_empty() && ui.small_button("clear").clicked() {
            state.picked.clear();
        }
    });
    ui.horizontal(|ui| {
        ui.label("Find listing");
        ui.add(
            egui::TextEdit::singleline(&mut state.pick_filter)
                .hint_text("name…")
                .desired_width(200.0),
        );
    });
    let needle = state.pick_filter.to_lowercase();
    if needle.is_empty() {
        return;
    }
    let matches: Vec<&(String, Vec<usize>)> = session
        .listings
        .iter()
        .filter(|(name, ids)| {
            let views = if state.auto_views { 2 } else { state.views };
            ids.len() >= views && name.to_lowercase().contains(&needle)
        })
        .take(200)
        .collect();
    egui::ScrollArea::vertical()
        .id_salt("listing-picker")
        .max_height(120.0)
        .show(ui, |ui| {
            for (name, ids) in matches {
                let mut on = state.picked.contains(name);
                if ui
                    .checkbox(&mut on, format!("{name} ({} views)", ids.len()))
                    .changed()
                {
                    if on {
                        state.picked.push(name.clone());
                    } else {
                        state.picked.retain(|p| p != name);
                    }
                }
            }
        });
}

fn stats_ui(ui: &mut egui::Ui, result: &QuadrantResult) {
    let chart = &result.chart;
    let s = &chart.stats;
    ui.horizontal_wrapped(|ui| {
        ui.strong(format!(
            "{} listings × {} views = {} blocks",
            chart.listings.len(),
            chart.views,
            chart.listings.len()
        ));
        ui.separator();
        ui.label(format!(
            "intra mean {:.3} (median {:.3}) · inter mean {:.3} (median {:.3}) · gap {:.3} · AUC {:.3}",
            s.intra_mean, s.intra_median, s.inter_mean, s.inter_median, s.gap, s.auc
        ));
        ui.label(
            egui::RichText::new(format!(
                "{} intra / {} inter pairs · {:.0} ms",
                s.intra_pairs, s.inter_pairs, result.duration_ms
            ))
            .small()
            .color(theme::MUTED),
        );
    });
    ui.label(egui::RichText::new(chart.views_note()).color(theme::MUTED));
}

fn chart_ui(
    ui: &mut egui::Ui,
    session: &Session,
    result: &QuadrantResult,
    state: &mut QuadrantViewState,
    thumbnails: &mut ThumbnailCache,
    commands: &mut Vec<Command>,
) {
    let chart = &result.chart;
    let n = chart.size();
    if n == 0 {
        return;
    }
    let texture = match &state.texture {
        Some((id, texture)) if *id == result.id => texture.clone(),
        _ => {
            let texture = ui.ctx().load_texture(
                format!("quadrant-{}", result.id),
                result.image.clone(),
                egui::TextureOptions::NEAREST,
            );
            state.texture = Some((result.id, texture.clone()));
            texture
        }
    };
    const LEGEND_PX: f32 = 90.0;
    const NAMES_PX: f32 = 150.0;
    let available = ui.available_size();
    let fit = |names_px: f32| {
        (available.x - LEGEND_PX - names_px - 8.0)
            .min(available.y - 8.0)
            .max(64.0)
    };
    // Listing names go left of the blocks when a block is tall enough for a line of text.
    let names_px = if fit(NAMES_PX) / chart.listings.len() as f32 >= 13.0 {
        NAMES_PX
    } else {
        0.0
    };
    let side = fit(names_px);
    let (rect, response) = ui.allocate_exact_size(
        egui::vec2(names_px + side + LEGEND_PX, side),
        egui::Sense::click(),
    );
    let matrix =
        egui::Rect::from_min_size(rect.min + egui::vec2(names_px, 0.0), egui::vec2(side, side));
    let painter = ui.painter_at(rect);
    if names_px > 0.0 {
        let block_px = side / chart.listings.len() as f32;
        for (b, name) in chart.listings.iter().enumerate() {
            let y = matrix.top() + (b as f32 + 0.5) * block_px;
            let mut job = egui::text::LayoutJob::simple_singleline(
                format!("{} {name}", b + 1),
                egui::FontId::proportional(11.0),
                theme::MUTED,
            );
            job.wrap = egui::text::TextWrapping {
                max_width: names_px - 8.0,
                max_rows: 1,
                break_anywhere: true,
                overflow_character: Some('…'),
            };
            let galley = painter.layout_job(job);
            let row = galley.rows.first().map_or(0.0, |r| r.height());
            painter.galley(
                egui::pos2(matrix.left() - 6.0 - galley.size().x, y - row / 2.0),
                galley,
                theme::MUTED,
            );
        }
    }
    painter.image(
        texture.id(),
        matrix,
        egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0)),
        egui::Color32::WHITE,
    );
    // Block borders between listings.
    let cell = side / n as f32;
    let border = egui::Stroke::new(1.0, egui::Color32::from_gray(30));
    for b in 0..=chart.listings.len() {
        let offset = (b * chart.views) as f32 * cell;
        painter.line_segment(
            [
                egui::pos2(matrix.left() + offset, matrix.top()),
                egui::pos2(matrix.left() + offset, matrix.bottom()),
            ],
            border,
        );
        painter.line_segment(
            [
                egui::pos2(matrix.left(), matrix.top() + offset),
                egui::pos2(matrix.right(), matrix.top() + offset),
            ],
            border,
        );
    }
    legend_ui(&painter, matrix.right() + 16.0, matrix, result.range);
    response.widget_info(|| {
        egui::WidgetInfo::labeled(
            egui::Role::Image,
            true,
            format!(
                "quadrant chart: {} blocks of {} views",
                chart.listings.len(),
                chart.views
            ),
        )
    });

    let hovered = response
        .hover_pos()
        .filter(|p| matrix.contains(*p))
        .map(|p| {
            let col = (((p.x - matrix.left()) / cell) as usize).min(n - 1);
            let row = (((p.y - matrix.top()) / cell) as usize).min(n - 1);
            (row, col)
        });
    let Some((row, col)) = hovered else {
        return;
    };
    let cell_rect = egui::Rect::from_min_size(
        egui::pos2(
            matrix.left() + col as f32 * cell,
            matrix.top() + row as f32 * cell,
        ),
        egui::vec2(cell, cell),
    );
    painter.rect_stroke(
        cell_rect.expand(1.5),
        0.0,
        egui::Stroke::new(2.0, egui::Color32::BLACK),
        egui::StrokeKind::Outside,
    );
    let (a, b) = (chart.rows[row], chart.rows[col]);
    if response.clicked() {
        commands.push(Command::Select(a));
    }
    let similarity = chart.at(row, col);
    let same = row / chart.views == col / chart.views;
    let texture_a = thumbnails.get(a);
    let texture_b = thumbnails.get(b);
    response.on_hover_ui_at_pointer(|ui| {
        ui.horizontal(|ui| {
            for (id, texture) in [(a, texture_a), (b, texture_b)] {
                ui.vertical(|ui| {
                    if let Some(texture) = texture {
                        ui.add(texture.image(egui::vec2(theme::THUMB_PX, theme::THUMB_PX)));
                    }
                    ui.label(
                        egui::RichText::new(format!(
                            "{}\nitem {id}",
                            session.set.items[id].listing
                        ))
                        .small(),
                    );
                });
            }
        });
        ui.label(
            egui::RichText::new(format!(
                "cosine {similarity:.3} · {}",
                if same {
                    "same listing"
                } else {
                    "different listings"
                }
            ))
            .strong(),
        );
        ui.label(
            egui::RichText::new("click: show the row image's neighbours")
                .small()
                .color(theme::MUTED),
        );
    });
}

/// The colour legend: a vertical red → yellow → green bar with its range.
fn legend_ui(painter: &egui::Painter, left: f32, matrix: egui::Rect, range: (f32, f32)) {
    const STEPS: usize = 48;
    let top = matrix.top() + 8.0;
    let height = (matrix.height() * 0.6).max(60.0);
    let step = height / STEPS as f32;
    for s in 0..STEPS {
        let t = 1.0 - (s as f32 + 0.5) / STEPS as f32;
        let [r, g, b] = diverging_colour(t);
        painter.rect_filled(
            egui::Rect::from_min_size(
                egui::pos2(left, top + s as f32 * step),
                egui::vec2(16.0, step + 0.5),
            ),
            0.0,
            egui::Color32::from_rgb(r, g, b),
        );
    }
    let text = |y: f32, value: f32| {
        painter.text(
            egui::pos2(left + 20.0, y),
            egui::Align2::LEFT_CENTER,
            format!("{value:.2}"),
            egui::FontId::proportional(12.0),
            theme::MUTED,
        );
    };
    text(top, range.1);
    text(top + height / 2.0, (range.0 + range.1) / 2.0);
    text(top + height, range.0);
    painter.text(
        egui::pos2(left, top + height + 16.0),
        egui::Align2::LEFT_TOP,
        "cosine",
        egui::FontId::proportional(12.0),
        theme::MUTED,
    );
}
