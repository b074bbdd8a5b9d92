use super::*;
use crate::layout::Unobserved;

use crate::test_support::{brute_knn, first_two, gaussian_clusters};

/// Every point's `k` nearest others in the layout (brute force).
fn layout_knn(points: &[[f32; 2]], k: usize) -> Vec<Vec<usize>> {
    (0..points.len())
        .map(|i| {
            let mut d: Vec<(f32, usize)> = (0..points.len())
                .filter(|&j| j != i)
                .map(|j| {
                    let (dx, dy) = (points[i][0] - points[j][0], points[i][1] - points[j][1]);
                    (dx * dx + dy * dy, j)
                })
                .collect();
            d.sort_by(|x, y| x.0.total_cmp(&y.0));
            d[..k].iter().map(|&(_, j)| j).collect()
        })
        .collect()
}

/// Share of every point's 10 nearest input neighbours among its 10 nearest in the layout.
fn knn_preservation(knn: &KnnGraph, points: &[[f32; 2]]) -> f64 {
    let low = layout_knn(points, 10);
    let hits: usize = (0..knn.n)
        .map(|i| {
            let high = &knn.neighbours(i).0[..10];
            low[i]
                .iter()
                .filter(|&&j| high.contains(&(j as u32)))
                .count()
        })
        .sum();
    hits as f64 / (10 * knn.n) as f64
}

/// Records what the layout reports; stops at `stop_at` optimisation epochs when given.
#[derive(Default)]
struct Recorder {
    phases: Vec<String>,
    epochs_seen: usize,
    stop_at: Option<usize>,
    want_snapshot: bool,
    snapshots: Vec<Vec<[f32; 2]>>,
}

impl LayoutObserver for Recorder {
    fn progress(&mut self, phase: &str, done: usize, _total: usize) -> bool {
        if self.phases.last().map(String::as_str) != Some(phase) {
            self.phases.push(phase.to_string());
        }
        if phase == "optimising" {
            self.epochs_seen = done;
            if self.stop_at.is_some_and(|s| done >= s) {
                return false;
            }
        }
        true
    }
    fn wants_snapshot(&mut self) -> bool {
        self.want_snapshot
    }
    fn snapshot(&mut self, points: Vec<[f32; 2]>) {
        self.snapshots.push(points);
    }
}

fn small_params(seed: u64) -> UmapParams {
    UmapParams {
        epochs: Some(100),
        seed,
        ..UmapParams::default()
    }
}

#[test]
fn ab_fit_matches_umap_learn() {
    let (a, b) = find_ab_params(1.0, 0.1);
    assert!(
        (a - 1.577).abs() < 0.002 && (b - 0.895).abs() < 0.002,
        "a = {a}, b = {b}"
    );
    let (a, b) = find_ab_params(1.0, 0.5);
    assert!(
        (a - 0.583).abs() < 0.003 && (b - 1.334).abs() < 0.003,
        "a = {a}, b = {b}"
    );
}

#[test]
fn separated_clusters_stay_separated() {
    let dim = 20;
    let (rows, labels) = gaussian_clusters(8, 100, dim, 1);
    let knn = brute_knn(&rows, dim, 15);
    let points = umap(
        &knn,
        &first_two(&rows, dim),
        &UmapParams::default(),
        &mut Unobserved,
    )
    .expect("layout");
    assert!(points.iter().flatten().all(|v| v.is_finite()));
    let preserved = knn_preservation(&knn, &points);
    // umap-learn (n_neighbors = 16) keeps 0.75 of such data's neighbourhoods.
    assert!(preserved > 0.65, "kNN preservation {preserved}");
    let nearest = layout_knn(&points, 1);
    let same = (0..points.len())
        .filter(|&i| labels[nearest[i][0]] == labels[i])
        .count();
    assert!(
        same as f64 >= 0.95 * points.len() as f64,
        "{same} of 800 in own cluster"
    );
}

#[test]
fn spectral_init_converges_on_a_connected_graph() {
    // Overlapping clusters: one connected fuzzy graph, so the spectral start is used.
    let dim = 10;
    let mut rng = SplitMix64::new(5);
    let rows: Vec<f32> = (0..600)
        .flat_map(|i| {
            let t = i as f64 / 600.0 * 6.0;
            let mut v: Vec<f32> = (0..dim)
                .map(|_| (0.05 * rng.next_normal()) as f32)
                .collect();
            v[0] += t.cos() as f32;
            v[1] += t.sin() as f32;
            v[2] += (0.3 * t) as f32;
            v
        })
        .collect();
    let knn = brute_knn(&rows, dim, 15);
    let mut recorder = Recorder::default();
    let points = umap(
        &knn,
        &first_two(&rows, dim),
        &small_params(0),
        &mut recorder,
    )
    .expect("layout");
    assert!(recorder.phases.iter().any(|p| p == "spectral init"));
    assert!(
        !recorder.phases.iter().any(|p| p.starts_with("PCA init")),
        "{:?}",
        recorder.phases
    );
    assert!(knn_preservation(&knn, &points) > 0.5);
}

#[test]
fn same_seed_same_layout_for_any_thread_count() {
    let dim = 20;
    let (rows, _) = gaussian_clusters(4, 100, dim, 2);
    let knn = brute_knn(&rows, dim, 15);
    let pca = first_two(&rows, dim);
    let run = |threads: usize, seed: u64, init: UmapInit| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool");
        let params = UmapParams {
            init,
            ..small_params(seed)
        };
        pool.install(|| umap(&knn, &pca, &params, &mut Unobserved).expect("layout"))
    };
    for init in [UmapInit::Spectral, UmapInit::Pca] {
        let first = run(2, 7, init);
        assert_eq!(first, run(2, 7, init));
        assert_eq!(first, run(1, 7, init));
        assert_eq!(first, run(3, 7, init));
        assert_ne!(first, run(2, 8, init));
    }
}

#[test]
fn bad_input_is_refused() {
    let dim = 5;
    let (rows, _) = gaussian_clusters(2, 20, dim, 3);
    let knn = brute_knn(&rows, dim, 10);
    let pca = first_two(&rows, dim);
    let is_bad = |r: Result<Vec<[f32; 2]>, AnalysisError>, needle: &str| match r {
        Err(AnalysisError::BadInput(m)) => assert!(m.contains(needle), "{m}"),
        other => panic!("expected BadInput about {needle}, got {other:?}"),
    };
    let params = UmapParams::default(); // 15 neighbours, the graph has 10
    is_bad(umap(&knn, &pca, &params, &mut Unobserved), "10 neighbours");
    let params = UmapParams {
        neighbours: 10,
        ..small_params(0)
    };
    is_bad(umap(&knn, &pca[1..], &params, &mut Unobserved), "39 points");
    let mut nan = pca.clone();
    nan[7][1] = f32::NAN;
    is_bad(umap(&knn, &nan, &params, &mut Unobserved), "point 7");
    let mut broken = knn.clone();
    broken.indices[3] = 1000;
    is_bad(umap(&broken, &pca, &params, &mut Unobserved), "point 0");
    let mut broken = knn.clone();
    broken.distances[25] = -1.0;
    is_bad(umap(&broken, &pca, &params, &mut Unobserved), "point 2");
    let odd = UmapParams {
        min_dist: 2.0,
        ..params.clone()
    };
    is_bad(umap(&knn, &pca, &odd, &mut Unobserved), "min_dist");
    let one = UmapParams {
        neighbours: 1,
        ..params.clone()
    };
    is_bad(umap(&knn, &pca, &one, &mut Unobserved), "at least 2");
    let tiny = KnnGraph {
        n: 3,
        k: 3,
        indices: vec![1, 2, 1, 0, 2, 0, 0, 1, 0],
        distances: vec![1.0; 9],
    };
    let three = UmapParams {
        neighbours: 3,
        ..params
    };
    assert!(matches!(
        umap(&tiny, &pca[..3], &three, &mut Unobserved),
        Err(AnalysisError::NotEnoughData(_))
    ));
}

#[test]
fn duplicate_points_give_finite_layouts() {
    let dim = 5;
    let (mut rows, _) = gaussian_clusters(3, 40, dim, 4);
    // The first 30 rows become one point, repeated.
    let first: Vec<f32> = rows[..dim].to_vec();
    for r in 1..30 {
        rows[r * dim..(r + 1) * dim].copy_from_slice(&first);
    }
    let knn = brute_knn(&rows, dim, 15);
    assert_eq!(knn.distances[0], 0.0);
    for init in [UmapInit::Spectral, UmapInit::Pca] {
        let params = UmapParams {
            init,
            ..small_params(0)
        };
        let points = umap(&knn, &first_two(&rows, dim), &params, &mut Unobserved).expect("layout");
        assert!(points.iter().flatten().all(|v| v.is_finite()));
    }
    // Every point the same.
    let same = vec![1.0f32; 20 * dim];
    let knn = brute_knn(&same, dim, 15);
    let points = umap(
        &knn,
        &first_two(&same, dim),
        &small_params(0),
        &mut Unobserved,
    )
    .expect("layout");
    assert!(points.iter().flatten().all(|v| v.is_finite()));
}

#[test]
fn cancel_stops_and_snapshots_arrive() {
    let dim = 10;
    let (rows, _) = gaussian_clusters(3, 50, dim, 6);
    let knn = brute_knn(&rows, dim, 15);
    let pca = first_two(&rows, dim);
    let mut recorder = Recorder {
        stop_at: Some(5),
        want_snapshot: true,
        ..Recorder::default()
    };
    let result = umap(&knn, &pca, &small_params(0), &mut recorder);
    assert!(matches!(result, Err(AnalysisError::Cancelled)));
    assert_eq!(recorder.epochs_seen, 5);
    assert!(!recorder.snapshots.is_empty());
    assert!(recorder.snapshots.iter().all(|s| s.len() == 150));

    let mut recorder = Recorder {
        want_snapshot: true,
        ..Recorder::default()
    };
    let points = umap(&knn, &pca, &small_params(0), &mut recorder).expect("layout");
    assert_eq!(recorder.snapshots.last(), Some(&points));
    assert_eq!(recorder.epochs_seen, 100);
}
