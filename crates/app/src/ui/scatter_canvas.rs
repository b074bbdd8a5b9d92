//! The scatter's canvas: every point drawn by a worker into one texture
//! ([`ScatterRasteriser`]); the frame only moves and scales the last texture to the current
//! view (so panning costs the same at a thousand or a million points) and asks for a new one;
//! thumbnails on the points the worker picked; hover, click, box and lasso through the
//! projection's grid.

use super::scatter::{ScatterState, Tool};
use super::scatter_overlay::{
    highlight_selection, join_listings, legend_ui, outline_of, selection_input, uncovered,
};
use super::theme;
use super::thumbnails::{AtlasThumb, ThumbnailCache};
use crate::{Command, ProjectionResult, Session};
use natview_analysis::scatter::{
    RasterMode, ScatterLayer, ScatterRasteriser, ScatterStyle, ScatterView,
};
use std::sync::Arc;

/// Side of a thumbnail drawn on a point, in screen points.
const THUMB_ON_POINT: f32 = 40.0;
/// Hover and click reach, in screen points.
const PICK_RADIUS: f32 = 8.0;
/// Rasters cover this share of the canvas's width and height beyond each edge, so that a pan
/// shows what is already drawn and only every few frames needs (and uploads) a new raster.
const MARGIN: f32 = 0.25;

/// Where the canvas looks: the plot point at its centre and the plot units per screen point.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Camera {
    centre: [f64; 2],
    units_per_point: f64,
}

/// The raster on screen.
struct Shown {
    layer: Arc<ScatterLayer>,
    view: ScatterView,
    texture: egui::TextureHandle,
    thumbnails: Vec<u32>,
    in_view: usize,
    mode: RasterMode,
    millis: f64,
}

/// The canvas's own state (inside [`ScatterState`]).
#[derive(Default)]
pub struct Canvas {
    camera: Option<Camera>,
    /// The projection the camera was fitted to.
    camera_for: Option<u64>,
    rasteriser: Option<ScatterRasteriser>,
    shown: Option<Shown>,
    /// The last request (view, layer, style), to ask again only when something changed.
    requested: Option<(ScatterView, usize, ScatterStyle)>,
    /// The box corners or lasso path being drawn, in plot coordinates.
    drag: Vec<[f64; 2]>,
    /// The outline of the last selection (kept on screen until cleared).
    outline: Vec<[f64; 2]>,
    /// The thumbnails drawn on points in the last frame: where, and which item.
    drawn_thumbs: Vec<(egui::Rect, usize)>,
    /// A box or lasso selection being found on a worker: its items and time (ms).
    selecting: Option<std::sync::mpsc::Receiver<(Vec<usize>, f64)>>,
}

impl Canvas {
    /// Shows every point again at the next frame (as a double-click does).
    pub fn reset_view(&mut self) {
        self.camera = None;
    }

    /// Forgets the outline of the last selection.
    pub fn clear_outline(&mut self) {
        self.outline.clear();
    }

    /// Points in view in the raster on screen, if one is.
    pub fn in_view(&self) -> Option<usize> {
        self.shown.as_ref().map(|s| s.in_view)
    }

    /// The thumbnails drawn on points in the last frame: where, and which item.
    pub fn drawn_thumbnails(&self) -> &[(egui::Rect, usize)] {
        &self.drawn_thumbs
    }

    /// Whether a raster is being drawn for the current view, or a selection found.
    pub fn is_drawing(&self) -> bool {
        self.selecting.is_some() || self.rasteriser.as_ref().is_some_and(|r| r.is_busy())
    }
}

/// Maps between screen points and plot units for one frame.
#[derive(Debug, Clone, Copy)]
pub(super) struct Transform {
    rect: egui::Rect,
    camera: Camera,
}

impl Transform {
    pub(super) fn to_screen(self, p: [f64; 2]) -> egui::Pos2 {
        let c = self.rect.center();
        let s = 1.0 / self.camera.units_per_point;
        egui::pos2(
            c.x + ((p[0] - self.camera.centre[0]) * s) as f32,
            c.y - ((p[1] - self.camera.centre[1]) * s) as f32,
        )
    }

    pub(super) fn to_plot(self, pos: egui::Pos2) -> [f64; 2] {
        let c = self.rect.center();
        let u = self.camera.units_per_point;
        [
            self.camera.centre[0] + f64::from(pos.x - c.x) * u,
            self.camera.centre[1] - f64::from(pos.y - c.y) * u,
        ]
    }

    /// The view of `area` (screen points) at `pixels_per_point`.
    fn view_of(self, area: egui::Rect, pixels_per_point: f32) -> ScatterView {
        let top_left = self.to_plot(area.left_top());
        let bottom_right = self.to_plot(area.right_bottom());
        ScatterView {
            min: [top_left[0], bottom_right[1]],
            max: [bottom_right[0], top_left[1]],
            width: (area.width() * pixels_per_point).round().max(1.0) as usize,
            height: (area.height() * pixels_per_point).round().max(1.0) as usize,
        }
    }

    /// Whether `view` shows all of the canvas at this transform's scale.
    fn is_covered_by(self, view: &ScatterView, pixels_per_point: f32) -> bool {
        let shown = self.view_of(self.rect, pixels_per_point);
        let scale = |v: &ScatterView| (v.max[0] - v.min[0]) / v.width as f64;
        let same_scale = (scale(view) / scale(&shown) - 1.0).abs() < 1e-3;
        same_scale
            && view.min[0] <= shown.min[0]
            && view.min[1] <= shown.min[1]
            && view.max[0] >= shown.max[0]
            && view.max[1] >= shown.max[1]
    }
}

/// A camera showing every point with a margin.
fn fit(points: &[[f32; 2]], rect: egui::Rect) -> Camera {
    let b = natview_analysis::scatter::bounds_of(points);
    let (w, h) = (f64::from(b[2] - b[0]), f64::from(b[3] - b[1]));
    let span = |extent: f64, screen: f32| extent.max(1e-9) * 1.08 / f64::from(screen.max(1.0));
    Camera {
        centre: [f64::from(b[0] + b[2]) / 2.0, f64::from(b[1] + b[3]) / 2.0],
        units_per_point: span(w, rect.width()).max(span(h, rect.height())),
    }
}

/// Draws the canvas and handles its input.
pub(super) fn canvas_ui(
    ui: &mut egui::Ui,
    session: &Session,
    result: &ProjectionResult,
    state: &mut ScatterState,
    thumbnails: &mut ThumbnailCache,
    commands: &mut Vec<Command>,
) {
    let Some(layer) = state.layer.clone() else {
        return;
    };
    let points = &result.points;
    let (rect, response) =
        ui.allocate_exact_size(ui.available_size(), egui::Sense::click_and_drag());
    response.widget_info(|| {
        egui::WidgetInfo::labeled(
            egui::Role::Image,
            true,
            format!("projection of {} points", points.len()),
        )
    });
    let canvas = &mut state.canvas;
    if canvas.camera_for != Some(result.id) || canvas.camera.is_none() {
        canvas.camera = Some(fit(points, rect));
        canvas.camera_for = Some(result.id);
    }
    let mut camera = canvas.camera.unwrap_or_else(|| fit(points, rect));
    let ctx = ui.ctx().clone();

    // Zoom around the pointer, pan by dragging, double-click to see everything.
    if let Some(pointer) = response.hover_pos() {
        let (scroll, pinch) = ctx.input(|i| (i.smooth_scroll_delta.y, i.zoom_delta()));
        let factor = (-f64::from(scroll) * 0.0015).exp() / f64::from(pinch);
        if (factor - 1.0).abs() > 1e-6 {
            let before = Transform { rect, camera }.to_plot(pointer);
            camera.units_per_point *= factor;
            let after = Transform { rect, camera }.to_plot(pointer);
            camera.centre[0] += before[0] - after[0];
            camera.centre[1] += before[1] - after[1];
        }
    }
    if response.double_clicked() {
        camera = fit(points, rect);
    }
    if state.tool == Tool::Pan && response.dragged() {
        let delta = response.drag_delta();
        camera.centre[0] -= f64::from(delta.x) * camera.units_per_point;
        camera.centre[1] += f64::from(delta.y) * camera.units_per_point;
    }
    canvas.camera = Some(camera);
    let transform = Transform { rect, camera };

    if let Some(polygon) = selection_input(&ctx, rect, transform, state.tool, &mut canvas.drag) {
        // Found on a worker: a lasso around most of a million points takes tens of ms.
        canvas.outline = outline_of(state.tool, &polygon);
        let (send, receive) = std::sync::mpsc::channel();
        let (tool, worker_layer, worker_ctx) = (state.tool, layer.clone(), ctx.clone());
        let spawned = std::thread::Builder::new()
            .name("natview-selection".into())
            .spawn(move || {
                let started = std::time::Instant::now();
                let points = &worker_layer.points;
                let ids = match tool {
                    Tool::Box => {
                        let (a, b) = (polygon[0], polygon[polygon.len() - 1]);
                        worker_layer.grid.in_box(points, a, b)
                    }
                    _ => worker_layer.grid.in_polygon(points, &polygon),
                };
                let _ = send.send((ids, started.elapsed().as_secs_f64() * 1000.0));
                worker_ctx.request_repaint();
            });
        canvas.selecting = spawned.ok().map(|_| receive);
    }
    if let Some(receive) = &canvas.selecting {
        match receive.try_recv() {
            Ok((ids, millis)) => {
                let count = ids.len();
                commands.push(Command::SetGallerySubset(Some(ids)));
                canvas.selecting = None;
                state.selection_made(count, millis);
            }
            Err(std::sync::mpsc::TryRecvError::Empty) => {}
            Err(std::sync::mpsc::TryRecvError::Disconnected) => canvas.selecting = None,
        }
    }
    let canvas = &mut state.canvas;

    // The newest raster, and a new one when the view, the colours or the style changed.
    let pixels_per_point = ctx.pixels_per_point();
    let rasteriser = canvas.rasteriser.get_or_insert_with(|| {
        let ctx = ctx.clone();
        ScatterRasteriser::new(move || ctx.request_repaint())
    });
    if let Some((done_layer, raster)) = rasteriser.take() {
        let image = egui::ColorImage::from_rgba_premultiplied(
            [raster.view.width, raster.view.height],
            &raster.rgba,
        );
        // Nearest: the raster is shown pixel for pixel (apart from the frames of a zoom), and
        // software renderers sample one texel instead of four.
        let options = egui::TextureOptions::NEAREST;
        let texture = match canvas.shown.take() {
            Some(mut shown) => {
                shown.texture.set(image, options);
                shown.texture
            }
            None => ctx.load_texture("scatter", image, options),
        };
        canvas.shown = Some(Shown {
            layer: done_layer,
            view: raster.view,
            texture,
            thumbnails: raster.thumbnails,
            in_view: raster.in_view,
            mode: raster.mode,
            millis: raster.millis,
        });
    }
    let background = ui.visuals().extreme_bg_color;
    let style = ScatterStyle {
        point_radius_px: 2.5 * pixels_per_point,
        thumbnail_cell_px: (THUMB_ON_POINT + 16.0) * pixels_per_point,
        thumbnails_below: if state.show_thumbnails { 40_000 } else { 0 },
        inset_px: (MARGIN * rect.width().min(rect.height()) * pixels_per_point) as usize,
        background: [background.r(), background.g(), background.b()],
        ..ScatterStyle::default()
    };
    // A new raster only when the last one asked for no longer covers the canvas at this scale
    // (or the colours or the style changed): most frames of a pan reuse the one on screen.
    let layer_key = Arc::as_ptr(&layer) as usize;
    let still_good = canvas.requested.as_ref().is_some_and(|(view, key, asked)| {
        *key == layer_key && *asked == style && transform.is_covered_by(view, pixels_per_point)
    });
    if !still_good {
        let margin = MARGIN * rect.width().min(rect.height());
        let view = transform.view_of(rect.expand(margin), pixels_per_point);
        rasteriser.request(layer.clone(), view, style);
        canvas.requested = Some((view, layer_key, style));
    }

    let painter = ui.painter_at(rect);
    let mut drawn_thumbs: Vec<(egui::Rect, usize)> = Vec::new();
    let placed = canvas.shown.as_ref().map(|shown| {
        egui::Rect::from_two_pos(
            transform.to_screen([shown.view.min[0], shown.view.max[1]]),
            transform.to_screen([shown.view.max[0], shown.view.min[1]]),
        )
    });
    // The raster is opaque: the background is painted only where it does not reach.
    for strip in uncovered(rect, placed) {
        painter.rect_filled(strip, 0.0, background);
    }
    if let (Some(shown), Some(placed)) = (&canvas.shown, placed) {
        let full = egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0));
        painter.image(shown.texture.id(), placed, full, egui::Color32::WHITE);
        if state.show_thumbnails && Arc::ptr_eq(&shown.layer, &layer) {
            let mut on_screen: Vec<(AtlasThumb, egui::Rect, usize)> = Vec::new();
            for &id in &shown.thumbnails {
                let id = id as usize;
                let p = points[id];
                let at = transform.to_screen([f64::from(p[0]), f64::from(p[1])]);
                if !rect.contains(at) {
                    continue;
                }
                if let Some(thumb) = thumbnails.get(id) {
                    let square =
                        egui::Rect::from_center_size(at, egui::Vec2::splat(THUMB_ON_POINT));
                    on_screen.push((thumb, square, id));
                }
            }
            // All frames first (plain squares in the point's colour, under the images), then
            // the images page by page: a software renderer pays per draw call and every change
            // of texture starts one, and plain squares tessellate to four vertices where a
            // rounded stroke takes dozens.
            for (_, square, id) in &on_screen {
                painter.rect_filled(square.expand(2.0), 0.0, point_colour(&layer, *id));
            }
            on_screen.sort_by_key(|(thumb, _, _)| thumb.texture_order());
            for (thumb, square, _) in &on_screen {
                thumb.paint(&painter, *square);
            }
            drawn_thumbs.extend(on_screen.iter().map(|&(_, square, id)| (square, id)));
        }
        let mode = match shown.mode {
            RasterMode::Discs => "points",
            RasterMode::Density => "density",
        };
        let status = painter.layout_no_wrap(
            format!(
                "{} in view · {mode} · drawn in {:.0} ms",
                shown.in_view, shown.millis
            ),
            egui::FontId::proportional(11.0),
            theme::MUTED,
        );
        let at = rect.left_bottom() + egui::vec2(6.0, -6.0 - status.size().y);
        painter.rect_filled(
            egui::Rect::from_min_size(at, status.size()).expand(3.0),
            3.0,
            egui::Color32::from_black_alpha(190),
        );
        painter.galley(at, status, theme::MUTED);
    }
    if state.join_listings {
        join_listings(&painter, session, points, transform, rect);
    }
    highlight_selection(&painter, session, points, transform);
    let outline = if canvas.drag.len() >= 2 {
        outline_of(state.tool, &canvas.drag)
    } else {
        canvas.outline.clone()
    };
    if outline.len() >= 2 {
        let screen: Vec<egui::Pos2> = outline.iter().map(|&p| transform.to_screen(p)).collect();
        painter.add(egui::Shape::closed_line(
            screen,
            egui::Stroke::new(1.5, theme::SELECTED),
        ));
    }
    legend_ui(&painter, rect, &state.legend);
    canvas.drawn_thumbs.clone_from(&drawn_thumbs);

    // Hover: a thumbnail under the pointer, else the point nearest it; a click selects it.
    let Some(pointer) = response.hover_pos() else {
        return;
    };
    let hovered = drawn_thumbs
        .iter()
        .rev()
        .find(|(r, _)| r.contains(pointer))
        .map(|&(_, id)| id)
        .or_else(|| {
            layer.grid.nearest(
                points,
                transform.to_plot(pointer),
                f64::from(PICK_RADIUS) * camera.units_per_point,
            )
        });
    let Some(id) = hovered else {
        return;
    };
    if state.tool == Tool::Pan && response.clicked() {
        commands.push(Command::Select(id));
    }
    let texture = thumbnails.get(id);
    let item = &session.set.items[id];
    response.on_hover_ui_at_pointer(|ui| {
        if let Some(texture) = texture {
            ui.add(texture.image(egui::vec2(theme::THUMB_PX * 1.5, theme::THUMB_PX * 1.5)));
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

fn point_colour(layer: &ScatterLayer, id: usize) -> egui::Color32 {
    let slot = layer.colours.get(id).copied().unwrap_or(0) as usize;
    let [r, g, b] = layer.palette.get(slot).copied().unwrap_or([128, 128, 128]);
    egui::Color32::from_rgb(r, g, b)
}
