//! Which 2D points fall inside a box or a lasso (a closed polygon), for selections made on a
//! projection.

/// Indices of the points inside the axis-aligned box spanned by two corners (edges included).
pub fn points_in_box(points: &[[f32; 2]], a: [f64; 2], b: [f64; 2]) -> Vec<usize> {
    let (x0, x1) = (a[0].min(b[0]), a[0].max(b[0]));
    let (y0, y1) = (a[1].min(b[1]), a[1].max(b[1]));
    points
        .iter()
        .enumerate()
        .filter(|(_, p)| {
            let (x, y) = (f64::from(p[0]), f64::from(p[1]));
            x >= x0 && x <= x1 && y >= y0 && y <= y1
        })
        .map(|(i, _)| i)
        .collect()
}

/// Indices of the points inside the polygon (even-odd rule; the polygon closes itself).
/// Fewer than three vertices enclose nothing.
pub fn points_in_polygon(points: &[[f32; 2]], polygon: &[[f64; 2]]) -> Vec<usize> {
    let Some([x0, y0, x1, y1]) = polygon_bounds(polygon) else {
        return Vec::new();
    };
    points
        .iter()
        .enumerate()
        .filter(|(_, p)| {
            let (x, y) = (f64::from(p[0]), f64::from(p[1]));
            x >= x0 && x <= x1 && y >= y0 && y <= y1 && point_in_polygon(polygon, x, y)
        })
        .map(|(i, _)| i)
        .collect()
}

/// The bounding box `[min_x, min_y, max_x, max_y]` of a polygon that can enclose anything
/// (three vertices or more; `None` otherwise).
pub fn polygon_bounds(polygon: &[[f64; 2]]) -> Option<[f64; 4]> {
    if polygon.len() < 3 {
        return None;
    }
    let mut b = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
    for v in polygon {
        b = [
            b[0].min(v[0]),
            b[1].min(v[1]),
            b[2].max(v[0]),
            b[3].max(v[1]),
        ];
    }
    Some(b)
}

/// Whether `(x, y)` is inside the polygon (even-odd rule; the polygon closes itself).
pub fn point_in_polygon(polygon: &[[f64; 2]], x: f64, y: f64) -> bool {
    if polygon.is_empty() {
        return false;
    }
    let mut inside = false;
    let mut j = polygon.len() - 1;
    for i in 0..polygon.len() {
        let ([xi, yi], [xj, yj]) = (polygon[i], polygon[j]);
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRID: [[f32; 2]; 5] = [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [0.5, 1.5], [3.0, 0.5]];

    #[test]
    fn a_box_takes_the_points_between_its_corners_in_any_order() {
        assert_eq!(points_in_box(&GRID, [2.0, 2.0], [0.5, 0.5]), vec![1, 2, 3]);
        assert_eq!(
            points_in_box(&GRID, [5.0, 5.0], [6.0, 6.0]),
            Vec::<usize>::new()
        );
    }

    #[test]
    fn a_lasso_takes_only_what_it_encloses() {
        // A triangle around (0,0), (1,1) and (0.5,1.5) but not (2,2) or (3,0.5).
        let triangle = [[-0.5, -0.5], [1.8, 1.2], [0.2, 2.0]];
        assert_eq!(points_in_polygon(&GRID, &triangle), vec![0, 1, 3]);
        // A concave "C": (1,1) sits in the notch and is left out.
        let c_shape = [
            [-1.0, -1.0],
            [4.0, -1.0],
            [4.0, 0.8],
            [0.8, 0.8],
            [0.8, 1.2],
            [4.0, 1.2],
            [4.0, 3.0],
            [-1.0, 3.0],
        ];
        assert_eq!(points_in_polygon(&GRID, &c_shape), vec![0, 2, 3, 4]);
        assert!(points_in_polygon(&GRID, &[[0.0, 0.0], [1.0, 1.0]]).is_empty());
    }
}
