//! Draws a scatter of up to millions of points into one RGBA image for the window to show as a
//! single texture (no shape per point): anti-aliased discs when few points are in view, density
//! shading (mean colour of a pixel's points, opacity by log count) when many are. It also picks
//! the points to show thumbnails on: one per screen cell, the same point for the same cell
//! whichever way the view moved (a fixed pseudo-random rank per point).

use super::PointGrid;
use std::sync::Arc;

/// The part of the plane shown and the pixels it is drawn into.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScatterView {
    /// Lower-left corner in plot units.
    pub min: [f64; 2],
    /// Upper-right corner in plot units.
    pub max: [f64; 2],
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
}

impl ScatterView {
    /// Pixels per plot unit along x and y.
    pub fn scale(&self) -> [f64; 2] {
        [
            self.width as f64 / (self.max[0] - self.min[0]).max(1e-12),
            self.height as f64 / (self.max[1] - self.min[1]).max(1e-12),
        ]
    }

    /// A point's position in pixels from the top-left corner (y grows downwards).
    pub fn to_pixel(&self, p: [f32; 2]) -> [f64; 2] {
        let s = self.scale();
        [
            (f64::from(p[0]) - self.min[0]) * s[0],
            (self.max[1] - f64::from(p[1])) * s[1],
        ]
    }
}

/// How points are drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScatterStyle {
    /// Radius of a point drawn as a disc, in pixels.
    pub point_radius_px: f32,
    /// At most this many points in view are drawn as discs; more are density-shaded.
    pub discs_below: usize,
    /// Side of the screen cells that each get one thumbnail, in pixels.
    pub thumbnail_cell_px: f32,
    /// Thumbnails are picked when at most this many points are in view (0: never).
    pub thumbnails_below: usize,
    /// A border of this many pixels drawn around what is on screen (so that small pans need no
    /// new raster); points there do not count as in view.
    pub inset_px: usize,
    /// The opaque background (RGB): the raster covers the canvas in one layer.
    pub background: [u8; 3],
}

impl Default for ScatterStyle {
    fn default() -> Self {
        Self {
            point_radius_px: 2.5,
            discs_below: 60_000,
            thumbnail_cell_px: 56.0,
            thumbnails_below: 40_000,
            inset_px: 0,
            background: [0, 0, 0],
        }
    }
}

/// The points of a scatter with their colours (a palette index each) and grid.
#[derive(Debug)]
pub struct ScatterLayer {
    /// Positions in plot units.
    pub points: Arc<Vec<[f32; 2]>>,
    /// The grid over `points`.
    pub grid: Arc<PointGrid>,
    /// Palette index of each point.
    pub colours: Vec<u8>,
    /// The palette (RGB).
    pub palette: Vec<[u8; 3]>,
}

/// How a raster was drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RasterMode {
    /// Every point in view as a disc.
    Discs,
    /// Density shading, one pixel per point.
    Density,
}

/// A drawn scatter.
#[derive(Debug, Clone)]
pub struct Raster {
    /// What it shows.
    pub view: ScatterView,
    /// The style it was drawn with.
    pub style: ScatterStyle,
    /// `width × height` premultiplied RGBA pixels, row by row from the top.
    pub rgba: Vec<u8>,
    /// Points in view.
    pub in_view: usize,
    /// How they were drawn.
    pub mode: RasterMode,
    /// The points to show thumbnails on (empty when too many are in view).
    pub thumbnails: Vec<u32>,
    /// Time taken, in milliseconds.
    pub millis: f64,
}

/// A fixed pseudo-random rank of a point (thumbnail picks do not favour low ids).
fn rank(id: u32) -> u64 {
    let mut z = u64::from(id).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Draws `layer` as seen through `view`.
pub fn rasterise(layer: &ScatterLayer, view: ScatterView, style: ScatterStyle) -> Raster {
    let started = std::time::Instant::now();
    let (w, h) = (view.width, view.height);
    let radius = f64::from(style.point_radius_px);
    let margin = (radius + 1.0) / view.scale()[0].max(1e-12);
    let mut visible: Vec<(u32, f32, f32)> = Vec::new();
    layer.grid.visit_cells_in(
        view.min[0] - margin,
        view.min[1] - margin,
        view.max[0] + margin,
        view.max[1] + margin,
        |id| {
            let [x, y] = view.to_pixel(layer.points[id as usize]);
            if x > -radius - 1.0
                && y > -radius - 1.0
                && x < w as f64 + radius + 1.0
                && y < h as f64 + radius + 1.0
            {
                visible.push((id, x as f32, y as f32));
            }
        },
    );
    let inset = style.inset_px.min(w / 2).min(h / 2) as f32;
    let (right, bottom) = (w as f32 - inset, h as f32 - inset);
    let in_view = visible
        .iter()
        .filter(|&&(_, x, y)| x >= inset && y >= inset && x < right && y < bottom)
        .count();
    let colour = |id: u32| {
        let slot = layer.colours.get(id as usize).copied().unwrap_or(0) as usize;
        layer.palette.get(slot).copied().unwrap_or([128, 128, 128])
    };
    let (rgba, mode) = if in_view <= style.discs_below {
        // Drawn in id order: the same point is on top whatever the view.
        visible.sort_unstable_by_key(|v| v.0);
        let radius = style.point_radius_px;
        let rgba = draw_discs(&visible, w, h, radius, style.background, colour);
        (rgba, RasterMode::Discs)
    } else {
        let rgba = draw_density(&visible, w, h, style.background, colour);
        (rgba, RasterMode::Density)
    };
    let thumbnails = if in_view <= style.thumbnails_below {
        pick_thumbnails(&visible, w, h, style.thumbnail_cell_px)
    } else {
        Vec::new()
    };
    Raster {
        view,
        style,
        rgba,
        in_view,
        mode,
        thumbnails,
        millis: started.elapsed().as_secs_f64() * 1000.0,
    }
}

/// An opaque image of the background colour.
fn filled(w: usize, h: usize, background: [u8; 3]) -> Vec<u8> {
    let [r, g, b] = background;
    [r, g, b, 255].repeat(w * h)
}

fn draw_discs(
    visible: &[(u32, f32, f32)],
    w: usize,
    h: usize,
    radius: f32,
    background: [u8; 3],
    colour: impl Fn(u32) -> [u8; 3],
) -> Vec<u8> {
    let mut rgba = filled(w, h, background);
    let reach = radius.ceil() as i64 + 1;
    for &(id, x, y) in visible {
        let [r, g, b] = colour(id);
        let (cx, cy) = (x.floor() as i64, y.floor() as i64);
        for py in (cy - reach).max(0)..(cy + reach + 1).min(h as i64) {
            for px in (cx - reach).max(0)..(cx + reach + 1).min(w as i64) {
                let dx = px as f32 + 0.5 - x;
                let dy = py as f32 + 0.5 - y;
                let coverage = (radius + 0.5 - (dx * dx + dy * dy).sqrt()).clamp(0.0, 1.0);
                if coverage <= 0.0 {
                    continue;
                }
                let at = (py as usize * w + px as usize) * 4;
                let keep = 1.0 - coverage;
                for (k, c) in [r, g, b, 255].into_iter().enumerate() {
                    let old = f32::from(rgba[at + k]);
                    rgba[at + k] = (f32::from(c) * coverage + old * keep).round() as u8;
                }
            }
        }
    }
    rgba
}

fn draw_density(
    visible: &[(u32, f32, f32)],
    w: usize,
    h: usize,
    background: [u8; 3],
    colour: impl Fn(u32) -> [u8; 3],
) -> Vec<u8> {
    // Per pixel: count and colour sums.
    let mut acc = vec![[0u32; 4]; w * h];
    for &(id, x, y) in visible {
        if x < 0.0 || y < 0.0 {
            continue;
        }
        let (px, py) = (x as usize, y as usize);
        if px >= w || py >= h {
            continue;
        }
        let [r, g, b] = colour(id);
        let a = &mut acc[py * w + px];
        a[0] += 1;
        a[1] += u32::from(r);
        a[2] += u32::from(g);
        a[3] += u32::from(b);
    }
    let max = acc.iter().map(|a| a[0]).max().unwrap_or(0).max(1);
    let log_max = (1.0 + max as f32).ln();
    let mut rgba = filled(w, h, background);
    let bg = background.map(f32::from);
    for (a, out) in acc.iter().zip(rgba.chunks_exact_mut(4)) {
        if a[0] == 0 {
            continue;
        }
        let n = a[0] as f32;
        let alpha = 0.35 + 0.65 * ((1.0 + n).ln() / log_max);
        for k in 0..3 {
            out[k] = (a[k + 1] as f32 / n * alpha + bg[k] * (1.0 - alpha)) as u8;
        }
    }
    rgba
}

fn pick_thumbnails(visible: &[(u32, f32, f32)], w: usize, h: usize, cell_px: f32) -> Vec<u32> {
    let cell = cell_px.max(8.0);
    let cols = (w as f32 / cell).ceil() as usize;
    let rows = (h as f32 / cell).ceil() as usize;
    let mut best: Vec<Option<(u64, u32)>> = vec![None; cols * rows];
    for &(id, x, y) in visible {
        if x < 0.0 || y < 0.0 || x >= w as f32 || y >= h as f32 {
            continue;
        }
        let c = ((x / cell) as usize).min(cols - 1) + ((y / cell) as usize).min(rows - 1) * cols;
        let r = rank(id);
        if best[c].is_none_or(|(br, _)| r < br) {
            best[c] = Some((r, id));
        }
    }
    best.into_iter().flatten().map(|(_, id)| id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(points: Vec<[f32; 2]>, colours: Vec<u8>) -> ScatterLayer {
        let grid = Arc::new(PointGrid::build(&points));
        ScatterLayer {
            points: Arc::new(points),
            grid,
            colours,
            palette: vec![[255, 0, 0], [0, 0, 255]],
        }
    }

    fn view(w: usize, h: usize) -> ScatterView {
        ScatterView {
            min: [0.0, 0.0],
            max: [10.0, 10.0],
            width: w,
            height: h,
        }
    }

    fn pixel(r: &Raster, x: usize, y: usize) -> [u8; 4] {
        let at = (y * r.view.width + x) * 4;
        [r.rgba[at], r.rgba[at + 1], r.rgba[at + 2], r.rgba[at + 3]]
    }

    #[test]
    fn few_points_are_discs_in_their_colour_at_their_place() {
        let l = layer(vec![[2.0, 8.0], [7.5, 2.5], [50.0, 50.0]], vec![0, 1, 0]);
        let r = rasterise(&l, view(100, 100), ScatterStyle::default());
        assert_eq!(r.mode, RasterMode::Discs);
        assert_eq!(r.in_view, 2);
        // (2, 8) → pixel (20, 20): red; (7.5, 2.5) → (75, 75): blue; elsewhere transparent.
        assert_eq!(pixel(&r, 20, 20), [255, 0, 0, 255]);
        assert_eq!(pixel(&r, 75, 75), [0, 0, 255, 255]);
        assert_eq!(
            pixel(&r, 50, 50),
            [0, 0, 0, 255],
            "the background elsewhere"
        );
        let mut picked = r.thumbnails.clone();
        picked.sort_unstable();
        assert_eq!(picked, vec![0, 1]);
    }

    #[test]
    fn many_points_are_density_shaded_and_denser_pixels_are_more_opaque() {
        let mut points = vec![[1.05f32, 8.95]; 500];
        points.extend(std::iter::repeat_n([5.05f32, 5.05], 5));
        let l = layer(points, vec![1; 505]);
        let style = ScatterStyle {
            discs_below: 10,
            thumbnails_below: 0,
            ..ScatterStyle::default()
        };
        let r = rasterise(&l, view(100, 100), style);
        assert_eq!(r.mode, RasterMode::Density);
        assert_eq!(r.in_view, 505);
        let dense = pixel(&r, 10, 10);
        let sparse = pixel(&r, 50, 49);
        assert_eq!(dense, [0, 0, 255, 255]);
        assert!(sparse[2] > 0 && sparse[2] < dense[2], "{sparse:?}");
        assert_eq!(sparse[0], 0);
        assert_eq!(pixel(&r, 80, 80), [0, 0, 0, 255]);
        assert!(r.thumbnails.is_empty());
    }

    #[test]
    fn one_thumbnail_per_cell_and_the_same_pick_after_panning() {
        let points: Vec<[f32; 2]> = (0..400)
            .map(|i| [(i % 20) as f32 * 0.5 + 0.1, (i / 20) as f32 * 0.5 + 0.1])
            .collect();
        let l = layer(points, vec![0; 400]);
        let style = ScatterStyle {
            thumbnail_cell_px: 25.0,
            ..ScatterStyle::default()
        };
        let r = rasterise(&l, view(100, 100), style);
        assert_eq!(r.thumbnails.len(), 16, "4 × 4 cells of 25 px");
        // Panning by exactly one cell (2.5 units) keeps the picks of the cells still in view.
        let moved = ScatterView {
            min: [2.5, 0.0],
            max: [12.5, 10.0],
            ..view(100, 100)
        };
        let r2 = rasterise(&l, moved, style);
        let common = r2
            .thumbnails
            .iter()
            .filter(|id| r.thumbnails.contains(id))
            .count();
        assert_eq!(common, 12, "three columns of cells stay in view");
    }
}
