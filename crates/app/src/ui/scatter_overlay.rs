//! What the scatter's canvas draws over its raster and how a selection is drawn: rings on the
//! query and its neighbours, the legend, the background where the raster does not reach, and
//! the box or lasso being dragged.

use super::scatter::Tool;
use super::scatter_canvas::Transform;
use super::theme;
use crate::Session;

/// The parts of `rect` outside `covered` (at most four strips).
pub(super) fn uncovered(rect: egui::Rect, covered: Option<egui::Rect>) -> Vec<egui::Rect> {
    let Some(c) = covered
        .map(|c| c.intersect(rect))
        .filter(|c| c.is_positive())
    else {
        return vec![rect];
    };
    let strips = [
        egui::Rect::from_min_max(rect.min, egui::pos2(rect.max.x, c.min.y)),
        egui::Rect::from_min_max(egui::pos2(rect.min.x, c.max.y), rect.max),
        egui::Rect::from_min_max(
            egui::pos2(rect.min.x, c.min.y),
            egui::pos2(c.min.x, c.max.y),
        ),
        egui::Rect::from_min_max(
            egui::pos2(c.max.x, c.min.y),
            egui::pos2(rect.max.x, c.max.y),
        ),
    ];
    strips.into_iter().filter(|s| s.is_positive()).collect()
}

/// Rings around the selected item and its neighbours.
pub(super) fn highlight_selection(
    painter: &egui::Painter,
    session: &Session,
    points: &[[f32; 2]],
    transform: Transform,
) {
    let Some(selection) = &session.selection else {
        return;
    };
    for id in selection
        .item()
        .into_iter()
        .chain(selection.neighbours.iter().map(|n| n.id))
    {
        if let Some(p) = points.get(id) {
            let at = transform.to_screen([f64::from(p[0]), f64::from(p[1])]);
            painter.circle_stroke(at, 6.0, egui::Stroke::new(2.0, theme::SELECTED));
        }
    }
}

/// Most listings joined by lines in one frame.
const MAX_JOINED_LISTINGS: usize = 3_000;

/// Lines from each listing's first view to its other views, for the listings with a view on
/// screen (at most [`MAX_JOINED_LISTINGS`], the selected item's listing always).
pub(super) fn join_listings(
    painter: &egui::Painter,
    session: &Session,
    points: &[[f32; 2]],
    transform: Transform,
    rect: egui::Rect,
) {
    let selected_listing = session
        .selection
        .as_ref()
        .and_then(|s| s.item())
        .and_then(|id| session.set.items.get(id))
        .map(|item| item.listing.as_str());
    let stroke = egui::Stroke::new(
        1.0,
        egui::Color32::from_rgba_unmultiplied(230, 230, 230, 90),
    );
    let strong = egui::Stroke::new(2.0, theme::SELECTED);
    let mut joined = 0;
    for (name, ids) in &session.listings {
        if ids.len() < 2 {
            continue;
        }
        let screen: Vec<egui::Pos2> = ids
            .iter()
            .filter_map(|&id| points.get(id))
            .map(|p| transform.to_screen([f64::from(p[0]), f64::from(p[1])]))
            .collect();
        let is_selected = selected_listing == Some(name.as_str());
        if !is_selected
            && (joined >= MAX_JOINED_LISTINGS || !screen.iter().any(|p| rect.contains(*p)))
        {
            continue;
        }
        joined += 1;
        for &to in &screen[1..] {
            painter.line_segment([screen[0], to], if is_selected { strong } else { stroke });
        }
    }
}

/// The colour groups in the top-right corner.
pub(super) fn legend_ui(
    painter: &egui::Painter,
    rect: egui::Rect,
    legend: &[super::scatter::LegendEntry],
) {
    if legend.is_empty() {
        return;
    }
    let font = egui::FontId::proportional(12.0);
    let row = 16.0;
    let width = 230.0;
    let area = egui::Rect::from_min_size(
        rect.right_top() + egui::vec2(-width - 8.0, 8.0),
        egui::vec2(width, row * legend.len() as f32 + 8.0),
    );
    painter.rect_filled(area, 4.0, egui::Color32::from_black_alpha(225));
    for (i, entry) in legend.iter().enumerate() {
        let y = area.top() + 4.0 + row * i as f32 + row / 2.0;
        painter.circle_filled(egui::pos2(area.left() + 10.0, y), 4.0, entry.colour);
        painter.text(
            egui::pos2(area.left() + 20.0, y),
            egui::Align2::LEFT_CENTER,
            &entry.name,
            font.clone(),
            egui::Color32::from_gray(230),
        );
    }
}

/// Follows a box or lasso drag (read from the pointer directly: the shape starts where the
/// button went down and ends where it came up); returns the finished shape.
pub(super) fn selection_input(
    ctx: &egui::Context,
    rect: egui::Rect,
    transform: Transform,
    tool: Tool,
    drag: &mut Vec<[f64; 2]>,
) -> Option<Vec<[f64; 2]>> {
    if tool == Tool::Pan {
        drag.clear();
        return None;
    }
    let (pressed, down, released, origin, position) = ctx.input(|i| {
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
        if let Some(origin) = origin.filter(|o| rect.contains(*o)) {
            drag.push(transform.to_plot(origin));
        }
    }
    if (down || released) && !drag.is_empty() {
        if let Some(pos) = position {
            let p = transform.to_plot(pos);
            match tool {
                Tool::Box => {
                    drag.truncate(1);
                    drag.push(p);
                }
                _ => drag.push(p),
            }
        }
    }
    if released && drag.len() >= 2 {
        return Some(std::mem::take(drag));
    }
    if released {
        drag.clear();
    }
    None
}

/// The polygon drawn for a drag: the box's four corners, or the lasso path itself.
pub(super) fn outline_of(tool: Tool, drag: &[[f64; 2]]) -> Vec<[f64; 2]> {
    match (tool, drag.first(), drag.last()) {
        (Tool::Box, Some(&a), Some(&b)) => vec![a, [b[0], a[1]], b, [a[0], b[1]]],
        _ => drag.to_vec(),
    }
}
