//! Two 2-D layouts of the same items brought into one frame: B's layout moved onto A's by the
//! rotation or reflection that minimises the squared distances between each item's two
//! positions (orthogonal Procrustes, solved in closed form in two dimensions), after shifting it
//! onto A's centre and scaling it to A's spread. (The least-squares scale would shrink a layout
//! that fits A poorly towards its centre; matched spreads keep both pictures the same size, and
//! the disparity is the same either way.) Layouts have no meaningful orientation (PCA's axes may flip,
//! UMAP and t-SNE start anywhere), so a reflection is allowed; what remains after the fit is
//! what really moved.

use super::AnalysisError;
use serde::Serialize;

/// B's layout fitted onto A's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlignedLayout {
    /// B's points in A's frame, one per item.
    pub points: Vec<[f32; 2]>,
    /// The rotation applied (radians, counter-clockwise), after the reflection if any.
    pub angle: f64,
    /// Whether B's layout was mirrored (x → −x) before the rotation.
    pub reflected: bool,
    /// The uniform scale applied (B's spread about its centre made A's).
    pub scale: f64,
    /// Residual disparity, as scipy's `procrustes` defines it: the squared distances left after
    /// the least-squares fit over A's squared spread, `1 − (Σ ã·R b̃)² / (|ã|² |b̃|²)` (0 = the
    /// same picture up to the transform, 1 = nothing in common).
    pub disparity: f64,
}

/// Fits `moving` (B's layout) onto `reference` (A's); both give one point per item, in the same
/// order. Refuses layouts of different lengths, non-finite points, or a reference with every
/// point in one place.
pub fn procrustes_align(
    reference: &[[f32; 2]],
    moving: &[[f32; 2]],
) -> Result<AlignedLayout, AnalysisError> {
    if reference.len() != moving.len() {
        return Err(AnalysisError::BadInput(format!(
            "layouts of {} and {} points cannot be aligned: they must hold the same items",
            reference.len(),
            moving.len()
        )));
    }
    if let Some(at) = reference
        .iter()
        .chain(moving)
        .position(|p| !p[0].is_finite() || !p[1].is_finite())
    {
        return Err(AnalysisError::BadInput(format!(
            "point {} of the {} layout is not finite",
            at % reference.len().max(1),
            if at < reference.len() {
                "first"
            } else {
                "second"
            }
        )));
    }
    let (ca, cb) = (centre(reference), centre(moving));
    // Cross-covariance S = Σ b̃ ãᵀ and the spreads about the centres.
    let (mut s, mut spread_a, mut spread_b) = ([[0.0f64; 2]; 2], 0.0, 0.0);
    for (a, b) in reference.iter().zip(moving) {
        let a = [f64::from(a[0]) - ca[0], f64::from(a[1]) - ca[1]];
        let b = [f64::from(b[0]) - cb[0], f64::from(b[1]) - cb[1]];
        for r in 0..2 {
            for c in 0..2 {
                s[r][c] += b[r] * a[c];
            }
        }
        spread_a += a[0] * a[0] + a[1] * a[1];
        spread_b += b[0] * b[0] + b[1] * b[1];
    }
    if spread_a <= f64::EPSILON {
        return Err(AnalysisError::NotEnoughData(
            "the reference layout has every point in one place".into(),
        ));
    }
    // A rotation by θ maps b̃ to R b̃ with Σ ã·(R b̃) = cosθ (S00 + S11) + sinθ (S01 − S10); with
    // x mirrored first the amplitudes are (S11 − S00, −S01 − S10). Each is largest at
    // θ = atan2(sin amplitude, cos amplitude), where it equals their hypotenuse; the larger of
    // the two fits wins.
    let rotation = ((s[0][0] + s[1][1]), (s[0][1] - s[1][0]));
    let mirrored = ((s[1][1] - s[0][0]), (-s[0][1] - s[1][0]));
    let fit = |(c, d): (f64, f64)| (c.hypot(d), d.atan2(c));
    let (best_rotation, angle_rotation) = fit(rotation);
    let (best_mirrored, angle_mirrored) = fit(mirrored);
    let reflected = best_mirrored > best_rotation;
    let (trace, angle) = if reflected {
        (best_mirrored, angle_mirrored)
    } else {
        (best_rotation, angle_rotation)
    };
    let (scale, disparity) = if spread_b > f64::EPSILON {
        (
            (spread_a / spread_b).sqrt(),
            1.0 - trace * trace / (spread_a * spread_b),
        )
    } else {
        (0.0, 1.0)
    };
    let (sin, cos) = angle.sin_cos();
    let transform = |p: &[f32; 2]| -> [f64; 2] {
        let mut x = f64::from(p[0]) - cb[0];
        let y = f64::from(p[1]) - cb[1];
        if reflected {
            x = -x;
        }
        [
            ca[0] + scale * (cos * x - sin * y),
            ca[1] + scale * (sin * x + cos * y),
        ]
    };
    let points = moving
        .iter()
        .map(|b| {
            let t = transform(b);
            [t[0] as f32, t[1] as f32]
        })
        .collect();
    Ok(AlignedLayout {
        points,
        angle,
        reflected,
        scale,
        disparity: disparity.clamp(0.0, 1.0),
    })
}

/// The point `t` of the way from `a` to `b` (`t` = 0: A's layout, 1: B's aligned layout).
pub fn morph(a: &[[f32; 2]], b: &[[f32; 2]], t: f32) -> Vec<[f32; 2]> {
    let t = t.clamp(0.0, 1.0);
    a.iter()
        .zip(b)
        .map(|(p, q)| [p[0] + (q[0] - p[0]) * t, p[1] + (q[1] - p[1]) * t])
        .collect()
}

fn centre(points: &[[f32; 2]]) -> [f64; 2] {
    let n = points.len().max(1) as f64;
    let (x, y) = points.iter().fold((0.0, 0.0), |(x, y), p| {
        (x + f64::from(p[0]), y + f64::from(p[1]))
    });
    [x / n, y / n]
}

#[cfg(test)]
mod tests {
    use super::*;
    use natview_core::rng::SplitMix64;

    fn cloud(n: usize, seed: u64) -> Vec<[f32; 2]> {
        let mut rng = SplitMix64::new(seed);
        (0..n)
            .map(|_| {
                [
                    (rng.next_f64() * 10.0 - 5.0) as f32,
                    (rng.next_f64() * 4.0 - 2.0) as f32,
                ]
            })
            .collect()
    }

    fn moved(points: &[[f32; 2]], angle: f64, scale: f64, mirror: bool) -> Vec<[f32; 2]> {
        let (sin, cos) = angle.sin_cos();
        points
            .iter()
            .map(|p| {
                let x = if mirror {
                    -f64::from(p[0])
                } else {
                    f64::from(p[0])
                };
                let y = f64::from(p[1]);
                [
                    (scale * (cos * x - sin * y) + 7.0) as f32,
                    (scale * (sin * x + cos * y) - 3.0) as f32,
                ]
            })
            .collect()
    }

    fn max_distance(a: &[[f32; 2]], b: &[[f32; 2]]) -> f32 {
        a.iter()
            .zip(b)
            .map(|(p, q)| (p[0] - q[0]).hypot(p[1] - q[1]))
            .fold(0.0, f32::max)
    }

    #[test]
    fn a_rotated_scaled_shifted_copy_comes_back_exactly() {
        let a = cloud(200, 1);
        let b = moved(&a, 1.1, 3.5, false);
        let fit = procrustes_align(&a, &b).unwrap();
        assert!(!fit.reflected);
        assert!(max_distance(&a, &fit.points) < 1e-3, "{fit:?}");
        assert!(fit.disparity < 1e-9);
        assert!((fit.scale - 1.0 / 3.5).abs() < 1e-6);
    }

    #[test]
    fn a_mirrored_copy_is_recognised_as_such() {
        let a = cloud(200, 2);
        let b = moved(&a, -2.0, 0.25, true);
        let fit = procrustes_align(&a, &b).unwrap();
        assert!(fit.reflected);
        assert!(max_distance(&a, &fit.points) < 1e-3);
    }

    #[test]
    fn unrelated_layouts_keep_a_large_disparity_and_moved_points_stand_out() {
        let a = cloud(300, 3);
        let fit = procrustes_align(&a, &cloud(300, 4)).unwrap();
        assert!(fit.disparity > 0.8, "{}", fit.disparity);
        // Both pictures keep one size: B's spread is A's.
        let spread = |p: &[[f32; 2]]| {
            let c = centre(p);
            p.iter()
                .map(|q| (f64::from(q[0]) - c[0]).powi(2) + (f64::from(q[1]) - c[1]).powi(2))
                .sum::<f64>()
        };
        assert!((spread(&fit.points) / spread(&a) - 1.0).abs() < 1e-4);
        // Ten points moved by 5 units in an otherwise rotated copy: exactly those stay far.
        let mut b = moved(&a, 0.4, 2.0, false);
        for p in b.iter_mut().take(10) {
            p[0] += 10.0;
        }
        let fit = procrustes_align(&a, &b).unwrap();
        let far: Vec<usize> = (0..a.len())
            .filter(|&i| (a[i][0] - fit.points[i][0]).hypot(a[i][1] - fit.points[i][1]) > 2.0)
            .collect();
        assert_eq!(far, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn bad_layouts_are_refused_with_the_reason() {
        let a = cloud(5, 5);
        assert!(procrustes_align(&a, &a[..4]).is_err());
        assert!(procrustes_align(&[[1.0, 1.0]; 5], &a).is_err());
        let mut b = a.clone();
        b[2][1] = f32::NAN;
        let message = procrustes_align(&a, &b).unwrap_err().to_string();
        assert!(message.contains("point 2 of the second"), "{message}");
    }

    #[test]
    fn morph_runs_from_one_layout_to_the_other() {
        let (a, b) = (cloud(4, 6), cloud(4, 7));
        assert_eq!(morph(&a, &b, 0.0), a);
        assert!(max_distance(&morph(&a, &b, 1.0), &b) < 1e-5);
        let half = morph(&a, &b, 0.5);
        assert!((half[1][0] - (a[1][0] + b[1][0]) / 2.0).abs() < 1e-6);
    }
}
