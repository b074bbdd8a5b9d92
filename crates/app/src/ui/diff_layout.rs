//! The Diff view's aligned scatter: encoder A's layout and B's layout fitted onto it
//! (Procrustes), a slider that morphs one into the other, and every point coloured by how much
//! its neighbourhood changed (1 − Jaccard of its nearest neighbours under A and B). Points that
//! move far *and* glow red are the images the second encoder sees differently; a hover shows
//! the image, a click its neighbours.

use super::theme;
use super::thumbnails::ThumbnailCache;
use crate::diff_job::DiffResult;
use crate::Command;
use natview_train::diff_run::AlignedLayouts;

/// Points drawn at most (an even sample beyond; the most changed drawn last, on top).
const MAX_DRAWN: usize = 30_000;
/// Side of a point's square, in screen points.
const POINT_PX: f32 = 3.0;
/// Hover reach in screen points.
const HOVER_PX: f32 = 6.0;
/// Height of the canvas.
const CANVAS_HEIGHT: f32 = 360.0;

/// What the aligned scatter keeps between frames.
#[derive(Debug, Default)]
pub struct AlignedScatterState {
    /// 0 = A's layout, 1 = B's (aligned).
    pub morph: f32,
    /// The drawn sample of the current result, least changed first, and both layouts' bounds.
    cache: Option<DrawOrder>,
}

#[derive(Debug)]
struct DrawOrder {
    /// Which result it was made for (its run time's bits and size).
    key: (u64, usize),
    items: Vec<u32>,
    bounds: egui::Rect,
}

impl DrawOrder {
    fn new(layouts: &AlignedLayouts, key: (u64, usize)) -> Self {
        let n = layouts.a.len();
        let stride = n.div_ceil(MAX_DRAWN).max(1);
        let mut items: Vec<u32> = (0..n).step_by(stride).map(|i| i as u32).collect();
        items.sort_by(|&x, &y| layouts.change[x as usize].total_cmp(&layouts.change[y as usize]));
        let mut bounds = egui::Rect::NOTHING;
        for p in layouts.a.iter().chain(&layouts.b.points) {
            bounds.extend_with(egui::pos2(p[0], p[1]));
        }
        Self { key, items, bounds }
    }
}

/// Neighbourhood change 0 → a cool grey-blue, 1 → a hot red, through amber.
fn change_colour(change: f32) -> egui::Color32 {
    let t = change.clamp(0.0, 1.0);
    let stops = [
        (70.0, 110.0, 170.0),
        (235.0, 170.0, 40.0),
        (215.0, 48.0, 39.0),
    ];
    let (from, to, u) = if t < 0.5 {
        (stops[0], stops[1], t * 2.0)
    } else {
        (stops[1], stops[2], t * 2.0 - 1.0)
    };
    let mix = |a: f32, b: f32| (a + (b - a) * u) as u8;
    egui::Color32::from_rgb(mix(from.0, to.0), mix(from.1, to.1), mix(from.2, to.2))
}

/// Draws the aligned scatter of `result` (or why there is none).
pub fn aligned_scatter_ui(
    ui: &mut egui::Ui,
    result: &DiffResult,
    state: &mut AlignedScatterState,
    thumbnails: &mut ThumbnailCache,
    commands: &mut Vec<Command>,
) {
    let layouts = match &result.layouts {
        Ok(layouts) => layouts,
        Err(reason) => {
            ui.colored_label(theme::ERROR, format!("No aligned layouts: {reason}"));
            return;
        }
    };
    let key = (result.seconds.to_bits(), layouts.a.len());
    if state.cache.as_ref().is_none_or(|c| c.key != key) {
        state.cache = Some(DrawOrder::new(layouts, key));
    }
    let Some(order) = state.cache.as_ref() else {
        return;
    };
    ui.horizontal(|ui| {
        ui.label("A");
        ui.add(
            egui::Slider::new(&mut state.morph, 0.0..=1.0)
                .show_value(false)
                .text("B (aligned)"),
        )
        .on_hover_text(
            "morph A's layout into B's, fitted onto A's by rotation, reflection and scale",
        );
        if ui.small_button("A").clicked() {
            state.morph = 0.0;
        }
        if ui.small_button("B").clicked() {
            state.morph = 1.0;
        }
        ui.label(
            egui::RichText::new(format!(
                "{} · disparity after the fit {:.3} (0 = the same picture){}",
                layouts.method.label(),
                layouts.b.disparity,
                if order.items.len() < layouts.a.len() {
                    format!(
                        " · {} of {} points drawn",
                        order.items.len(),
                        layouts.a.len()
                    )
                } else {
                    String::new()
                }
            ))
            .small()
            .color(theme::MUTED),
        );
    });
    legend(ui);
    let (rect, response) = ui.allocate_exact_size(
        egui::vec2(ui.available_width(), CANVAS_HEIGHT),
        egui::Sense::click(),
    );
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 4.0, egui::Color32::from_gray(24));
    let frame = rect.shrink(12.0);
    let b = order.bounds;
    let scale = (frame.width() / b.width().max(1e-6)).min(frame.height() / b.height().max(1e-6));
    let (centre, mid) = (frame.center(), b.center());
    let t = state.morph;
    let at = |i: usize| -> egui::Pos2 {
        let (p, q) = (layouts.a[i], layouts.b.points[i]);
        let x = p[0] + (q[0] - p[0]) * t;
        let y = p[1] + (q[1] - p[1]) * t;
        // Screen y grows downwards; the layout's upwards.
        egui::pos2(
            centre.x + (x - mid.x) * scale,
            centre.y - (y - mid.y) * scale,
        )
    };
    let mut mesh = egui::Mesh::default();
    let mut hovered: Option<(usize, f32)> = None;
    let pointer = response.hover_pos();
    for &item in &order.items {
        let item = item as usize;
        let pos = at(item);
        mesh.add_colored_rect(
            egui::Rect::from_center_size(pos, egui::vec2(POINT_PX, POINT_PX)),
            change_colour(layouts.change[item]),
        );
        if let Some(pointer) = pointer {
            let d = pos.distance(pointer);
            if d < HOVER_PX && hovered.is_none_or(|(_, best)| d < best) {
                hovered = Some((item, d));
            }
        }
    }
    painter.add(egui::Shape::mesh(mesh));
    if let Some((item, _)) = hovered {
        painter.circle_stroke(at(item), 5.0, egui::Stroke::new(1.5, theme::SELECTED));
        let change = result.diff.items.get(item);
        let listing = result
            .diff
            .listings
            .iter()
            .find(|l| l.items.contains(&item));
        response.clone().on_hover_ui_at_pointer(|ui| {
            if let Some(thumb) = thumbnails.get(item) {
                ui.add(thumb.image(egui::vec2(96.0, 96.0)));
            }
            if let Some(l) = listing {
                ui.strong(
                    result
                        .listing_names
                        .get(l.listing)
                        .map_or("?", String::as_str),
                );
            }
            if let Some(c) = change {
                let rank = |r: Option<usize>| r.map_or_else(|| "–".into(), |r| r.to_string());
                ui.label(format!(
                    "neighbours kept {:.0} % · nearest same-listing view at rank {} → {}",
                    c.jaccard * 100.0,
                    rank(c.rank_a),
                    rank(c.rank_b)
                ));
            }
            ui.label(
                egui::RichText::new("click: its neighbours")
                    .small()
                    .color(theme::MUTED),
            );
        });
        if response.clicked() {
            commands.push(Command::Select(item));
        }
    }
}

fn legend(ui: &mut egui::Ui) {
    ui.horizontal(|ui| {
        ui.label(egui::RichText::new("neighbourhood change:").small());
        for (value, text) in [(0.0, "same neighbours"), (0.5, "half"), (1.0, "none kept")] {
            let (rect, _) = ui.allocate_exact_size(egui::vec2(10.0, 10.0), egui::Sense::hover());
            ui.painter().rect_filled(rect, 2.0, change_colour(value));
            ui.label(egui::RichText::new(text).small().color(theme::MUTED));
        }
    });
}
