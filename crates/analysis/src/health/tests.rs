//! Synthetic embeddings with known faults, and the verdicts they must get.

use super::*;

/// `n` unit rows of `dim` values: row `i` = normalise(`signal(i)` + `noise` · Gaussian).
fn rows(
    n: usize,
    dim: usize,
    noise: f64,
    seed: u64,
    signal: impl Fn(usize, &mut SplitMix64) -> Vec<f64>,
) -> Matrix {
    let mut rng = SplitMix64::new(seed);
    let mut data = Vec::with_capacity(n * dim);
    for i in 0..n {
        let base = signal(i, &mut rng);
        let v: Vec<f64> = base.iter().map(|b| b + noise * rng.next_normal()).collect();
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
        data.extend(v.iter().map(|x| (x / norm) as f32));
    }
    Matrix { rows: n, dim, data }
}

/// Listings of 4 views each.
fn listings(n: usize) -> Vec<usize> {
    (0..n).map(|i| i / 4).collect()
}

/// A listing's centre (random, shared by its 4 views), in all `dim` directions.
fn listing_centre(dim: usize) -> impl Fn(usize, &mut SplitMix64) -> Vec<f64> {
    move |i, _| {
        let mut own = SplitMix64::new(1000 + (i / 4) as u64);
        (0..dim).map(|_| own.next_normal()).collect()
    }
}

fn report(m: &Matrix) -> Health {
    health(m, &listings(m.rows), HealthParams::default()).expect("health")
}

#[test]
fn random_listings_in_every_direction_are_healthy() {
    let m = rows(800, 64, 0.3, 1, listing_centre(64));
    let h = report(&m);
    assert_eq!(h.verdict.kind, VerdictKind::Healthy, "{}", h.verdict.text);
    assert!(h.effective_rank > 40.0, "{}", h.effective_rank);
    assert!(h.dims_for_95 > 40, "{}", h.dims_for_95);
    // Views of a listing are closer than random pairs, and the rows spread over the sphere.
    let alignment = h.alignment.expect("listings of four");
    assert!(alignment < 0.3, "{alignment}");
    assert!(h.uniformity < -3.0, "{}", h.uniformity);
    assert!(h.mean_cosine.abs() < 0.05);
    assert_eq!(h.dead_dims, 0);
    assert_eq!(h.spectrum.len(), 64);
}

#[test]
fn three_directions_of_256_read_dimensional_collapse() {
    let m = rows(600, 256, 0.01, 2, |i, _| {
        let mut own = SplitMix64::new(i as u64 / 4);
        let mut v = vec![0f64; 256];
        for value in v.iter_mut().take(3) {
            *value = own.next_normal();
        }
        v
    });
    let h = report(&m);
    assert_eq!(
        h.verdict.kind,
        VerdictKind::DimensionalCollapse,
        "{}",
        h.verdict.text
    );
    assert!(
        h.verdict.text.contains("in 3 of 256 dimensions"),
        "{}",
        h.verdict.text
    );
    assert_eq!(h.dims_for_95, 3);
    // RankMe counts the faint noise directions too (singular values, not variances): far below
    // the healthy case's, not 3.
    assert!(h.effective_rank < 100.0, "{}", h.effective_rank);
}

#[test]
fn one_direction_reads_complete_collapse() {
    let m = rows(500, 128, 0.01, 3, |_, _| {
        let mut v = vec![0f64; 128];
        v[7] = 1.0;
        v
    });
    let h = report(&m);
    assert_eq!(
        h.verdict.kind,
        VerdictKind::CompleteCollapse,
        "{}",
        h.verdict.text
    );
    assert!(h.mean_cosine > 0.98, "{}", h.mean_cosine);
}

#[test]
fn rows_everybody_is_near_read_hub_dominated_and_are_named() {
    // Rows spread around a common direction u; five rows exactly at u are nearer to every row
    // than the rows are to each other.
    let dim = 128;
    let u: Vec<f64> = (0..dim).map(|j| if j == 0 { 1.0 } else { 0.0 }).collect();
    let m = rows(1000, dim, 0.0, 4, |i, rng| {
        if i % 200 == 0 {
            return u.clone();
        }
        (0..dim)
            .map(|j| 0.6 * u[j] + rng.next_normal() / (dim as f64).sqrt())
            .collect()
    });
    let h = report(&m);
    assert_eq!(
        h.verdict.kind,
        VerdictKind::HubDominated,
        "{}",
        h.verdict.text
    );
    let mut hubs: Vec<usize> = h.hubness.top.iter().take(5).map(|hub| hub.row).collect();
    hubs.sort_unstable();
    assert_eq!(hubs, vec![0, 200, 400, 600, 800]);
    assert!(h.hubness.skewness > 5.0, "{}", h.hubness.skewness);
}

#[test]
fn a_sample_is_used_above_the_limit_and_bad_input_is_refused() {
    let m = rows(300, 16, 0.3, 5, listing_centre(16));
    let params = HealthParams {
        sample: 100,
        ..HealthParams::default()
    };
    let h = health(&m, &listings(300), params).expect("health");
    assert_eq!((h.rows, h.of_rows), (100, 300));
    assert!(health(&m, &listings(299), params).is_err());
    let mut bad = m.clone();
    bad.data[20] = f32::NAN;
    let message = health(&bad, &listings(300), params)
        .expect_err("NaN")
        .to_string();
    assert!(message.contains("row 1"), "{message}");
    let tiny = Matrix {
        rows: 2,
        dim: 4,
        data: vec![1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0],
    };
    assert!(health(&tiny, &[0, 1], params).is_err());
}

#[test]
fn effective_rank_and_the_95_percent_count_follow_their_definitions() {
    assert!((effective_rank(&[1.0, 1.0, 1.0, 1.0]) - 4.0).abs() < 1e-9);
    assert!((effective_rank(&[1.0, 0.0, 0.0]) - 1.0).abs() < 1e-9);
    assert_eq!(dims_for_share(&[90.0, 6.0, 4.0], 0.95), 2);
    assert_eq!(dims_for_share(&[0.0, 0.0], 0.95), 0);
}
