//! A uniform grid over 2-D points (built once per projection, O(N)): the point nearest the
//! pointer, the points in a box or a lasso, and the points in view, without looking at every
//! point — what makes hover, click and selection instant at a million points.

/// Points bucketed by grid cell (cells in row-major order, ids of a cell contiguous).
#[derive(Debug, Clone)]
pub struct PointGrid {
    min: [f32; 2],
    cell: f32,
    cols: usize,
    rows: usize,
    /// `starts[c]..starts[c + 1]` indexes `ids` for cell `c`.
    starts: Vec<u32>,
    ids: Vec<u32>,
}

/// Average points per cell aimed at.
const POINTS_PER_CELL: f64 = 4.0;
/// Cells along a side at most.
const MAX_SIDE: usize = 4096;

/// The bounds `[min_x, min_y, max_x, max_y]` of finite points (a unit box if there are none).
pub fn bounds_of(points: &[[f32; 2]]) -> [f32; 4] {
    let mut b = [f32::MAX, f32::MAX, f32::MIN, f32::MIN];
    for p in points
        .iter()
        .filter(|p| p[0].is_finite() && p[1].is_finite())
    {
        b[0] = b[0].min(p[0]);
        b[1] = b[1].min(p[1]);
        b[2] = b[2].max(p[0]);
        b[3] = b[3].max(p[1]);
    }
    if b[0] > b[2] {
        [0.0, 0.0, 1.0, 1.0]
    } else {
        b
    }
}

impl PointGrid {
    /// Buckets `points` (non-finite ones are left out of every query).
    pub fn build(points: &[[f32; 2]]) -> Self {
        let b = bounds_of(points);
        let (w, h) = ((b[2] - b[0]).max(1e-6), (b[3] - b[1]).max(1e-6));
        let cells = (points.len() as f64 / POINTS_PER_CELL).max(1.0);
        let cell = ((f64::from(w) * f64::from(h) / cells).sqrt() as f32)
            .max(w / MAX_SIDE as f32)
            .max(h / MAX_SIDE as f32)
            .max(1e-9);
        let cols = ((w / cell).floor() as usize + 1).min(MAX_SIDE);
        let rows = ((h / cell).floor() as usize + 1).min(MAX_SIDE);
        let mut grid = Self {
            min: [b[0], b[1]],
            cell,
            cols,
            rows,
            starts: vec![0; cols * rows + 1],
            ids: Vec::new(),
        };
        let cell_of: Vec<u32> = points
            .iter()
            .map(|p| match grid.cell_at(*p) {
                Some((c, r)) => (r * cols + c) as u32,
                None => u32::MAX,
            })
            .collect();
        for &c in cell_of.iter().filter(|&&c| c != u32::MAX) {
            grid.starts[c as usize + 1] += 1;
        }
        for c in 0..cols * rows {
            grid.starts[c + 1] += grid.starts[c];
        }
        let mut next = grid.starts.clone();
        grid.ids = vec![0; grid.starts[cols * rows] as usize];
        for (id, &c) in cell_of.iter().enumerate() {
            if c != u32::MAX {
                let at = &mut next[c as usize];
                grid.ids[*at as usize] = id as u32;
                *at += 1;
            }
        }
        grid
    }

    fn cell_at(&self, p: [f32; 2]) -> Option<(usize, usize)> {
        if !(p[0].is_finite() && p[1].is_finite()) {
            return None;
        }
        let c = ((p[0] - self.min[0]) / self.cell).floor();
        let r = ((p[1] - self.min[1]) / self.cell).floor();
        Some((
            (c.max(0.0) as usize).min(self.cols - 1),
            (r.max(0.0) as usize).min(self.rows - 1),
        ))
    }

    /// The range of cells covering `[x0, x1] × [y0, y1]` (clamped to the grid).
    fn cell_range(&self, x0: f64, y0: f64, x1: f64, y1: f64) -> (usize, usize, usize, usize) {
        let to_cell = |v: f64, min: f32, n: usize| {
            (((v - f64::from(min)) / f64::from(self.cell))
                .floor()
                .max(0.0) as usize)
                .min(n - 1)
        };
        (
            to_cell(x0, self.min[0], self.cols),
            to_cell(y0, self.min[1], self.rows),
            to_cell(x1, self.min[0], self.cols),
            to_cell(y1, self.min[1], self.rows),
        )
    }

    fn cell_ids(&self, c: usize, r: usize) -> &[u32] {
        let i = r * self.cols + c;
        &self.ids[self.starts[i] as usize..self.starts[i + 1] as usize]
    }

    /// Calls `visit` with every point id in cells overlapping the box (a superset of the points
    /// in it: callers test the points themselves when they need to).
    pub fn visit_cells_in(&self, x0: f64, y0: f64, x1: f64, y1: f64, mut visit: impl FnMut(u32)) {
        if x1 < f64::from(self.min[0]) || y1 < f64::from(self.min[1]) {
            return;
        }
        let max_x = f64::from(self.min[0]) + self.cols as f64 * f64::from(self.cell);
        let max_y = f64::from(self.min[1]) + self.rows as f64 * f64::from(self.cell);
        if x0 > max_x || y0 > max_y {
            return;
        }
        let (c0, r0, c1, r1) = self.cell_range(x0, y0, x1, y1);
        for r in r0..=r1 {
            for c in c0..=c1 {
                self.cell_ids(c, r).iter().for_each(|&id| visit(id));
            }
        }
    }

    /// Calls `visit` with every point id in cells overlapping the square of half-side
    /// `radius` around `at`, and its squared distance to `at`.
    fn visit_around(
        &self,
        points: &[[f32; 2]],
        at: [f64; 2],
        radius: f64,
        mut visit: impl FnMut(usize, f64),
    ) {
        self.visit_cells_in(
            at[0] - radius,
            at[1] - radius,
            at[0] + radius,
            at[1] + radius,
            |id| {
                let p = points[id as usize];
                let d = (f64::from(p[0]) - at[0]).powi(2) + (f64::from(p[1]) - at[1]).powi(2);
                visit(id as usize, d);
            },
        );
    }

    /// The point nearest `at` within `radius` (plot units), if any.
    pub fn nearest(&self, points: &[[f32; 2]], at: [f64; 2], radius: f64) -> Option<usize> {
        let mut best: Option<(usize, f64)> = None;
        self.visit_around(points, at, radius, |id, d| {
            if d <= radius * radius && best.is_none_or(|(_, bd)| d < bd) {
                best = Some((id, d));
            }
        });
        best.map(|(id, _)| id)
    }

    /// The `k` points nearest point `i` of `points` (itself excluded), nearest first: boxes of
    /// cells around it, doubled until they hold `k` points within their inner radius.
    pub fn k_nearest(&self, points: &[[f32; 2]], i: usize, k: usize) -> Vec<usize> {
        let p = points[i];
        if k == 0 || !(p[0].is_finite() && p[1].is_finite()) {
            return Vec::new();
        }
        let (at, mut radius) = ([f64::from(p[0]), f64::from(p[1])], f64::from(self.cell));
        let span = f64::from(self.cell) * (self.cols + self.rows) as f64;
        loop {
            let mut found: Vec<(f64, usize)> = Vec::new();
            self.visit_around(points, at, radius, |id, d| {
                if id != i {
                    found.push((d, id));
                }
            });
            let within = found.iter().filter(|(d, _)| *d <= radius * radius).count();
            if within >= k || radius > span {
                found.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                return found.into_iter().take(k).map(|(_, id)| id).collect();
            }
            radius *= 2.0;
        }
    }

    /// Ids of the points in the box with corners `a` and `b` (inclusive), ascending.
    pub fn in_box(&self, points: &[[f32; 2]], a: [f64; 2], b: [f64; 2]) -> Vec<usize> {
        let (x0, x1) = (a[0].min(b[0]), a[0].max(b[0]));
        let (y0, y1) = (a[1].min(b[1]), a[1].max(b[1]));
        let mut inside = vec![false; points.len()];
        self.visit_cells_in(x0, y0, x1, y1, |id| {
            let p = points[id as usize];
            let (x, y) = (f64::from(p[0]), f64::from(p[1]));
            if x >= x0 && x <= x1 && y >= y0 && y <= y1 {
                inside[id as usize] = true;
            }
        });
        ascending(&inside)
    }

    /// Ids of the points inside the polygon (even-odd rule, as
    /// [`points_in_polygon`](crate::points_in_polygon)), ascending. Cells an edge
    /// passes near are tested point by point; every other cell is wholly in or out, which one
    /// crossing count along its row decides.
    pub fn in_polygon(&self, points: &[[f32; 2]], polygon: &[[f64; 2]]) -> Vec<usize> {
        let Some([x0, y0, x1, y1]) = crate::polygon_bounds(polygon) else {
            return Vec::new();
        };
        let (c0, r0, c1, r1) = self.cell_range(x0, y0, x1, y1);
        let (cw, ch) = (c1 - c0 + 1, r1 - r0 + 1);
        // Cells an edge passes through or next to (the edge sampled at a quarter cell, each
        // sample's cell and its eight neighbours marked).
        let mut boundary = vec![false; cw * ch];
        let cell = f64::from(self.cell);
        for (i, a) in polygon.iter().enumerate() {
            let b = polygon[(i + 1) % polygon.len()];
            let length = ((b[0] - a[0]).powi(2) + (b[1] - a[1]).powi(2)).sqrt();
            let steps = ((length / (cell * 0.25)).ceil() as usize).max(1);
            for s in 0..=steps {
                let t = s as f64 / steps as f64;
                let (x, y) = (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t);
                let (c, r, _, _) = self.cell_range(x, y, x, y);
                for rr in r.saturating_sub(1)..=(r + 1).min(r1) {
                    for cc in c.saturating_sub(1)..=(c + 1).min(c1) {
                        if rr >= r0 && cc >= c0 {
                            boundary[(rr - r0) * cw + (cc - c0)] = true;
                        }
                    }
                }
            }
        }
        let mut inside = vec![false; points.len()];
        let mut crossings = Vec::new();
        for r in r0..=r1 {
            let yc = f64::from(self.min[1]) + (r as f64 + 0.5) * cell;
            crossings.clear();
            let mut j = polygon.len() - 1;
            for i in 0..polygon.len() {
                let (a, b) = (polygon[i], polygon[j]);
                if (a[1] > yc) != (b[1] > yc) {
                    crossings.push(a[0] + (yc - a[1]) * (b[0] - a[0]) / (b[1] - a[1]));
                }
                j = i;
            }
            crossings.sort_by(f64::total_cmp);
            let mut left = 0;
            for c in c0..=c1 {
                let here = self.cell_ids(c, r);
                if here.is_empty() {
                    continue;
                }
                if boundary[(r - r0) * cw + (c - c0)] {
                    for &id in here {
                        let p = points[id as usize];
                        let (x, y) = (f64::from(p[0]), f64::from(p[1]));
                        if crate::point_in_polygon(polygon, x, y) {
                            inside[id as usize] = true;
                        }
                    }
                    continue;
                }
                let xc = f64::from(self.min[0]) + (c as f64 + 0.5) * cell;
                while left < crossings.len() && crossings[left] < xc {
                    left += 1;
                }
                if left % 2 == 1 {
                    for &id in here {
                        inside[id as usize] = true;
                    }
                }
            }
        }
        ascending(&inside)
    }
}

/// The indices whose flag is set, ascending (one pass: no sort of a large selection).
fn ascending(flags: &[bool]) -> Vec<usize> {
    flags
        .iter()
        .enumerate()
        .filter(|(_, &f)| f)
        .map(|(i, _)| i)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{points_in_box, points_in_polygon};
    use natview_core::rng::SplitMix64;

    fn cloud(n: usize) -> Vec<[f32; 2]> {
        let mut rng = SplitMix64::new(7);
        (0..n)
            .map(|i| {
                // Two clusters of different density, and a far outlier.
                let (cx, s) = if i % 3 == 0 { (5.0, 0.3) } else { (-2.0, 2.0) };
                [
                    cx + s * (rng.next_f64() as f32 - 0.5),
                    s * (rng.next_f64() as f32 - 0.5),
                ]
            })
            .chain([[40.0, -30.0], [f32::NAN, 0.0]])
            .collect()
    }

    #[test]
    fn box_and_lasso_match_testing_every_point() {
        let points = cloud(20_000);
        let grid = PointGrid::build(&points);
        for (a, b) in [
            ([-1.0, -0.5], [5.1, 0.2]),
            ([-100.0, -100.0], [100.0, 100.0]),
        ] {
            assert_eq!(grid.in_box(&points, a, b), points_in_box(&points, a, b));
        }
        let star: Vec<[f64; 2]> = (0..40)
            .map(|k| {
                let angle = k as f64 * std::f64::consts::TAU / 40.0;
                let radius = if k % 2 == 0 { 3.0 } else { 1.2 };
                [1.0 + radius * angle.cos(), radius * angle.sin()]
            })
            .collect();
        let expected = points_in_polygon(&points, &star);
        assert!(expected.len() > 500, "{}", expected.len());
        assert_eq!(grid.in_polygon(&points, &star), expected);
        // A self-crossing bow tie (even-odd rule).
        let bow = [[-3.0, -1.0], [5.5, 1.0], [5.5, -1.0], [-3.0, 1.0]];
        assert_eq!(
            grid.in_polygon(&points, &bow),
            points_in_polygon(&points, &bow)
        );
    }

    #[test]
    fn nearest_finds_the_closest_point_within_the_radius_only() {
        let points = cloud(5_000);
        let grid = PointGrid::build(&points);
        let at = [4.9, 0.01];
        let brute = points
            .iter()
            .enumerate()
            .filter(|(_, p)| p[0].is_finite())
            .min_by(|a, b| {
                let d = |p: &[f32; 2]| {
                    (f64::from(p[0]) - at[0]).powi(2) + (f64::from(p[1]) - at[1]).powi(2)
                };
                d(a.1).total_cmp(&d(b.1))
            })
            .map(|(i, _)| i);
        assert_eq!(grid.nearest(&points, at, 0.5), brute);
        assert_eq!(grid.nearest(&points, [40.1, -30.0], 0.2), Some(5_000));
        assert_eq!(grid.nearest(&points, [20.0, 20.0], 1.0), None);
    }
}
