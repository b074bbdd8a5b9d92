//! Projection scatter: the 2D projection (PCA) of every embedding, coloured by listing, label or
//! a metadata column; hover shows the image; click selects it; box and lasso selections limit
//! the gallery to what they enclose; scroll to zoom, drag to pan.

use super::theme;
use super::thumbnails::ThumbnailCache;
use crate::analysis::{points_in_box, points_in_polygon};
use crate::app::{Command, ProjectionResult, Session};
use egui_plot::{Legend, Plot, PlotPoint, PlotPoints, Points, Polygon};
use std::collections::HashMap;

/// What the points are coloured by.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ColourBy {
    /// One colour per listing (cycling through the palette).
    #[default]
    Listing,
    /// The item's label.
    Label,
    /// A metadata column.
    Metadata(String),
}

/// What a drag on the plot does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tool {
    /// Drag pans, scroll zooms.
    #[default]
    Pan,
    /// Drag a box to select.
    Box,
    /// Draw a lasso to select.
    Lasso,
}

/// One colour group of points.
struct Group {
    name: String,
    colour: egui::Color32,
    points: Vec<PlotPoint>,
}

/// The scatter's own state.
#[derive(Default)]
pub struct ScatterState {
    colour_by: ColourBy,
    tool: Tool,
    /// The box corners or lasso path being drawn, in plot coordinates.
    drag: Vec<[f64; 2]>,
    /// Number of items in the last box/lasso selection.
    selected: Option<usize>,
    /// The outline of the last selection (kept on screen until cleared).
    outline: Vec<[f64; 2]>,
    /// (projection id, colouring) the groups were built for.
    groups_for: Option<(u64, ColourBy)>,
    groups: Vec<Group>,
}

/// Categorical colours (Tableau 20, dark and light interleaved for neighbours to differ).
const PALETTE: [egui::Color32; 20] = [
    egui::Color32::from_rgb(31, 119, 180),
    egui::Color32::from_rgb(255, 127, 14),
    egui::Color32::from_rgb(44, 160, 44),
    egui::Color32::from_rgb(214, 39, 40),
    egui::Color32::from_rgb(148, 103, 189),
    egui::Color32::from_rgb(140, 86, 75),
    egui::Color32::from_rgb(227, 119, 194),
    egui::Color32::from_rgb(188, 189, 34),
    egui::Color32::from_rgb(23, 190, 207),
    egui::Color32::from_rgb(174, 199, 232),
    egui::Color32::from_rgb(255, 187, 120),
    egui::Color32::from_rgb(152, 223, 138),
    egui::Color32::from_rgb(255, 152, 150),
    egui::Color32::from_rgb(197, 176, 213),
    egui::Color32::from_rgb(196, 156, 148),
    egui::Color32::from_rgb(247, 182, 210),
    egui::Color32::from_rgb(219, 219, 141),
    egui::Color32::from_rgb(158, 218, 229),
    egui::Color32::from_rgb(127, 127, 127),
    egui::Color32::from_rgb(199, 199, 199),
];
const OTHER: egui::Color32 = egui::Color32::from_gray(110);

impl ScatterState {
    /// Rebuilds the colour groups when the projection or the colouring changed.
    fn refresh(&mut self, session: &Session, result: &ProjectionResult) {
        let key = (result.id, self.colour_by.clone());
        if self.groups_for.as_ref() == Some(&key) {
            return;
        }
        let points = &result.projection.points;
        let at = |id: usize| PlotPoint::new(f64::from(points[id][0]), f64::from(points[id][1]));
        self.groups = match &self.colour_by {
            ColourBy::Listing => {
                let mut groups: Vec<Group> = PALETTE
                    .iter()
                    .map(|&colour| Group {
                        name: String::new(),
                        colour,
                        points: Vec::new(),
                    })
                    .collect();
                for (n, (_, ids)) in session.listings.iter().enumerate() {
                    groups[n % PALETTE.len()]
                        .points
                        .extend(ids.iter().map(|&id| at(id)));
                }
                groups
            }
            ColourBy::Label => {
                categorical(points.len(), at, |id| session.set.items[id].label.clone())
            }
            ColourBy::Metadata(column) => categorical(points.len(), at, |id| {
                session.set.items[id].metadata.get(column).cloned()
            }),
        };
        self.groups_for = Some(key);
    }
}

/// Groups points by a category: the most frequent categories get colours, the rest (and items
/// without a value) are grey.
fn categorical(
    count: usize,
    at: impl Fn(usize) -> PlotPoint,
    category: impl Fn(usize) -> Option<String>,
) -> Vec<Group> {
    let values: Vec<Option<String>> = (0..count).map(&category).collect();
    let mut frequency: HashMap<&str, usize> = HashMap::new();
    for v in values.iter().flatten() {
        *frequency.entry(v.as_str()).or_default() += 1;
    }
    let mut ranked: Vec<(&str, usize)> = frequency.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let coloured = if ranked.len() > PALETTE.len() {
        PALETTE.len() - 1
    } else {
        ranked.len()
    };
    let slot: HashMap<&str, usize> = ranked
        .iter()
        .take(coloured)
        .enumerate()
        .map(|(i, (name, _))| (*name, i))
        .collect();
    let mut groups: Vec<Group> = ranked
        .iter()
        .take(coloured)
        .enumerate()
        .map(|(i, (name, n))| Group {
            name: format!("{name} ({n})"),
            colour: PALETTE[i],
            points: Vec::new(),
        })
        .collect();
    let mut other = Group {
        name: "other / none".into(),
        colour: OTHER,
        points: Vec::new(),
    };
    for (id, value) in values.iter().enumerate() {
        match value.as_deref().and_then(|v| slot.get(v)) {
            Some(&i) => groups[i].points.push(at(id)),
            None => other.points.push(at(id)),
        }
    }
    if !other.points.is_empty() {
        groups.push(other);
    }
    groups
}

/// Draws the scatter view.
pub fn scatter_ui(
    ui: &mut egui::Ui,
    session: &Session,
    result: Option<&ProjectionResult>,
    state: &mut ScatterState,
    thumbnails: &mut ThumbnailCache,
    commands: &mut Vec<Command>,
) {
    let Some(result) = result else {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label("Computing the PCA projection…");
            if ui.button("Compute again").clicked() {
                commands.push(Command::ComputeProjection);
            }
        });
        return;
    };
    controls_ui(ui, session, result, state, commands);
    state.refresh(session, result);
    ui.separator();
    plot_ui(ui, session, result, state, thumbnails, commands);
}

fn controls_ui(
    ui: &mut egui::Ui,
    session: &Session,
    result: &ProjectionResult,
    state: &mut ScatterState,
    commands: &mut Vec<Command>,
) {
    ui.horizontal_wrapped(|ui| {
        let p = &result.projection;
        ui.label(format!(
            "PCA · {} points · explained variance {:.1}% + {:.1}% · {:.2} s",
            p.points.len(),
            100.0 * p.explained_variance_ratio[0],
            100.0 * p.explained_variance_ratio[1],
            result.duration_secs
        ))
        .on_hover_text(format!("saved as {}", result.csv_path.display()));
        ui.separator();
        let text = match &state.colour_by {
            ColourBy::Listing => "listing".to_string(),
            ColourBy::Label => "label".to_string(),
            ColourBy::Metadata(c) => c.clone(),
        };
        egui::ComboBox::from_label("colour by")
            .selected_text(text)
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut state.colour_by, ColourBy::Listing, "listing");
                if !session.distinct_labels.is_empty() {
                    ui.selectable_value(&mut state.colour_by, ColourBy::Label, "label");
                }
                for column in &session.metadata_columns {
                    ui.selectable_value(
                        &mut state.colour_by,
                        ColourBy::Metadata(column.clone()),
                        column,
                    );
                }
            });
        ui.separator();
        ui.label("drag:");
        ui.selectable_value(&mut state.tool, Tool::Pan, "pan")
            .on_hover_text("drag to pan, scroll to zoom, double-click to reset");
        ui.selectable_value(&mut state.tool, Tool::Box, "box select");
        ui.selectable_value(&mut state.tool, Tool::Lasso, "lasso select");
        if let Some(n) = state.selected {
            ui.separator();
            ui.label(format!("{n} selected"));
            if ui.small_button("Show in gallery").clicked() {
                commands.push(Command::ShowView(crate::app::View::Gallery));
            }
            if ui.small_button("Clear").clicked() {
                state.selected = None;
                state.outline.clear();
                commands.push(Command::SetGallerySubset(None));
            }
        }
    });
}

fn plot_ui(
    ui: &mut egui::Ui,
    session: &Session,
    result: &ProjectionResult,
    state: &mut ScatterState,
    thumbnails: &mut ThumbnailCache,
    commands: &mut Vec<Command>,
) {
    let selecting = state.tool != Tool::Pan;
    let show_legend = state.colour_by != ColourBy::Listing;
    let mut plot = Plot::new("projection")
        .data_aspect(1.0)
        .show_x(false)
        .show_y(false)
        .allow_drag(!selecting)
        .allow_boxed_zoom(false)
        // The wheel zooms (around the pointer) rather than pans, as in other scatter viewers.
        .allow_scroll(false)
        .x_axis_label("PC 1")
        .y_axis_label("PC 2");
    if show_legend {
        plot = plot.legend(Legend::default());
    }
    let groups = &state.groups;
    let drag = &mut state.drag;
    let last_outline = &state.outline;
    let tool = state.tool;
    let highlighted: Vec<usize> = session
        .selection
        .as_ref()
        .map(|s| {
            s.item()
                .into_iter()
                .chain(s.neighbours.iter().map(|n| n.id))
                .collect()
        })
        .unwrap_or_default();
    let points = &result.projection.points;
    let response = plot.show(ui, |plot_ui| {
        if plot_ui.response().hovered() {
            let scroll = plot_ui.ctx().input(|i| i.smooth_scroll_delta.y);
            if scroll != 0.0 {
                let factor = (scroll * 0.0015).exp();
                plot_ui.zoom_bounds_around_hovered(egui::vec2(factor, factor));
            }
        }
        for group in groups {
            plot_ui.points(
                Points::new(group.name.clone(), PlotPoints::Borrowed(&group.points))
                    .color(group.colour)
                    .radius(2.5)
                    .filled(true)
                    .allow_hover(false),
            );
        }
        if !highlighted.is_empty() {
            let ring: Vec<[f64; 2]> = highlighted
                .iter()
                .map(|&id| [f64::from(points[id][0]), f64::from(points[id][1])])
                .collect();
            plot_ui.points(
                Points::new("", ring)
                    .color(theme::SELECTED)
                    .radius(6.0)
                    .filled(false)
                    .allow_hover(false),
            );
        }
        let mut finished = None;
        if selecting {
            // Read the pointer directly: the shape starts where the button went down (a drag is
            // only recognised after the pointer moved a little) and ends where it came up.
            let plot_rect = plot_ui.response().rect;
            let (pressed, down, released, origin, position) = plot_ui.ctx().input(|i| {
                (
                    i.pointer.primary_pressed(),
                    i.pointer.primary_down(),
                    i.pointer.primary_released(),
                    i.pointer.press_origin(),
                    i.pointer.latest_pos(),
                )
            });
            if pressed {
                drag.clear();
                if let Some(origin) = origin.filter(|o| plot_rect.contains(*o)) {
                    let p = plot_ui.plot_from_screen(origin);
                    drag.push([p.x, p.y]);
                }
            }
            if (down || released) && !drag.is_empty() {
                if let Some(pos) = position {
                    let p = plot_ui.plot_from_screen(pos);
                    match tool {
                        Tool::Box => {
                            drag.truncate(1);
                            drag.push([p.x, p.y]);
                        }
                        _ => drag.push([p.x, p.y]),
                    }
                }
            }
            if released && drag.len() >= 2 {
                finished = Some(std::mem::take(drag));
            } else if released {
                drag.clear();
            }
        } else if drag.len() >= 2 {
            drag.clear();
        }
        let outline = if drag.len() >= 2 {
            outline_of(tool, drag)
        } else {
            last_outline.clone()
        };
        if outline.len() >= 2 {
            plot_ui.polygon(
                Polygon::new("", outline)
                    .fill_color(theme::SELECTED.gamma_multiply(0.15))
                    .stroke(egui::Stroke::new(1.5, theme::SELECTED))
                    .allow_hover(false),
            );
        }
        finished
    });
    let response_for_label = response.response.clone();
    response_for_label.widget_info(|| {
        egui::WidgetInfo::labeled(
            egui::Role::Image,
            true,
            format!("projection of {} points", points.len()),
        )
    });
    if let Some(path) = response.inner {
        let ids = match tool {
            Tool::Box => points_in_box(points, path[0], path[path.len() - 1]),
            _ => points_in_polygon(points, &path),
        };
        state.selected = Some(ids.len());
        state.outline = outline_of(tool, &path);
        commands.push(Command::SetGallerySubset(Some(ids)));
    }
    // Hover: the point nearest the pointer (within 8 px) shows its image; a click selects it.
    let transform = response.transform;
    let Some(pointer) = response.response.hover_pos() else {
        return;
    };
    let nearest = points
        .iter()
        .enumerate()
        .map(|(id, p)| {
            let screen =
                transform.position_from_point(&PlotPoint::new(f64::from(p[0]), f64::from(p[1])));
            (id, screen.distance_sq(pointer))
        })
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .filter(|(_, d)| *d <= 64.0)
        .map(|(id, _)| id);
    let Some(id) = nearest else {
        return;
    };
    if !selecting && response.response.clicked() {
        commands.push(Command::Select(id));
    }
    let ctx = ui.ctx().clone();
    let texture = thumbnails.get(&ctx, session, id);
    let item = &session.set.items[id];
    response.response.on_hover_ui_at_pointer(|ui| {
        if let Some(texture) = texture {
            ui.add(
                egui::Image::new(&texture)
                    .fit_to_exact_size(egui::vec2(theme::THUMB_PX * 1.5, theme::THUMB_PX * 1.5)),
            );
        }
        ui.strong(&item.listing);
        if let Some(label) = &item.label {
            ui.label(label);
        }
        ui.label(
            egui::RichText::new(format!("item {id} · click to show its neighbours"))
                .small()
                .color(theme::MUTED),
        );
    });
}

/// The polygon drawn for a drag: the box's four corners, or the lasso path itself.
fn outline_of(tool: Tool, drag: &[[f64; 2]]) -> Vec<[f64; 2]> {
    match (tool, drag.first(), drag.last()) {
        (Tool::Box, Some(&a), Some(&b)) => vec![a, [b[0], a[1]], b, [a[0], b[1]]],
        _ => drag.to_vec(),
    }
}
