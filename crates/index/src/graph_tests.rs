//! Tests of the graph file reader: damaged files are refused (or read into a graph whose
//! search stays in bounds), never a panic.

#![allow(
    clippy::cast_possible_truncation,
    reason = "test data: seeded f64 normal draws narrowed to f32"
)]

use super::*;
use natview_core::linalg::l2_normalise;
use natview_testkit::{apply, arbitrary_bytes, config, mutations};
use proptest::prelude::*;
use std::sync::OnceLock;

/// `n` seeded unit vectors of `dim` values.
fn unit_rows(n: usize, dim: usize) -> Matrix {
    let mut rng = SplitMix64::new(7);
    let rows: Vec<Vec<f32>> = (0..n)
        .map(|_| {
            let mut v: Vec<f32> = (0..dim).map(|_| rng.next_normal() as f32).collect();
            l2_normalise(&mut v);
            v
        })
        .collect();
    Matrix::from_rows(&rows).expect("equal rows")
}

/// A small graph with upper layers (M = 2 puts a third of the nodes above layer 0).
fn small_graph() -> &'static (Matrix, Vec<u8>) {
    static GRAPH: OnceLock<(Matrix, Vec<u8>)> = OnceLock::new();
    GRAPH.get_or_init(|| {
        let rows = unit_rows(40, 4);
        let params = GraphParams {
            m: 2,
            ef_construction: 16,
            seed: 3,
        };
        let graph = Graph::build(&rows, params, 8, &mut |_| true).expect("built");
        assert!(graph.max_level >= 2, "the test graph needs upper layers");
        let bytes = graph.to_bytes();
        (rows, bytes)
    })
}

/// Searches every row of `rows` (and the zero vector) in `graph`: it must not panic.
fn search_all(graph: &Graph, rows: &Matrix) {
    for q in 0..rows.rows {
        if graph.dim() == rows.dim {
            let found = graph.search(rows.row(q), 5, 16);
            assert!(found.iter().all(|&(id, _)| id < graph.len()));
        }
    }
    if graph.dim() <= 1 << 16 {
        graph.search(&vec![0.0; graph.dim()], 3, 8);
    }
}

/// Offset of node `id`'s first upper-layer list (count, then `m` links) in the file.
fn upper_list_at(graph: &Graph, id: usize) -> usize {
    let header = MAGIC.len() + 6 * 8;
    let before: usize = graph.levels[..id].iter().map(|&l| l as usize).sum();
    header
        + graph.len()
        + graph.len() * graph.dim * 4
        + graph.layer0.len() * 4
        + before * (1 + graph.m) * 4
}

#[test]
fn a_valid_graph_reads_back_and_answers_as_built() {
    let (rows, bytes) = small_graph();
    let graph = Graph::from_bytes(bytes).expect("reads");
    assert_eq!(graph.to_bytes(), *bytes);
    assert_eq!(graph.search(rows.row(5), 1, 16)[0].0, 5);
}

#[test]
fn an_entry_point_below_the_top_layer_is_refused() {
    let (_, bytes) = small_graph();
    let graph = Graph::from_bytes(bytes).expect("reads");
    let low = (0..graph.len())
        .find(|&i| (graph.levels[i] as usize) < graph.max_level)
        .expect("a node below the top");
    let mut damaged = bytes.clone();
    let entry_at = MAGIC.len() + 4 * 8;
    damaged[entry_at..entry_at + 8].copy_from_slice(&(low as u64).to_le_bytes());
    let err = Graph::from_bytes(&damaged).err().expect("refused");
    assert!(err.contains("entry point is on layer"), "{err}");

    let mut damaged = bytes.clone();
    let top_at = MAGIC.len() + 5 * 8;
    damaged[top_at..top_at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(Graph::from_bytes(&damaged).is_err());
}

#[test]
fn an_upper_layer_link_to_a_node_absent_from_that_layer_is_refused() {
    let (_, bytes) = small_graph();
    let graph = Graph::from_bytes(bytes).expect("reads");
    let upper = (0..graph.len())
        .find(|&i| graph.levels[i] >= 1)
        .expect("a node on layer 1");
    let ground = (0..graph.len())
        .find(|&i| graph.levels[i] == 0)
        .expect("a node on layer 0 only");
    let at = upper_list_at(&graph, upper);
    let mut damaged = bytes.clone();
    damaged[at..at + 4].copy_from_slice(&1u32.to_le_bytes());
    let ground = u32::try_from(ground).expect("a u32 node id");
    damaged[at + 4..at + 8].copy_from_slice(&ground.to_le_bytes());
    let err = Graph::from_bytes(&damaged).err().expect("refused");
    assert!(err.contains("not on that layer"), "{err}");
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn damaged_graphs_are_refused_or_searched_safely(changes in mutations()) {
        let (rows, bytes) = small_graph();
        let damaged = apply(bytes, &changes);
        if let Ok(graph) = Graph::from_bytes(&damaged) {
            search_all(&graph, rows);
        }
        let shared: Arc<dyn SharedRows> = Arc::new(OwnedRows(rows.data.clone()));
        if let Ok(graph) = Graph::from_bytes_sharing(&damaged, shared) {
            search_all(&graph, rows);
        }
    }

    #[test]
    fn arbitrary_bytes_are_refused_or_searched_safely(bytes in arbitrary_bytes(512)) {
        let mut file = MAGIC.to_vec();
        file.extend_from_slice(&bytes);
        for candidate in [&bytes, &file] {
            if let Ok(graph) = Graph::from_bytes(candidate) {
                search_all(&graph, &small_graph().0);
            }
        }
    }
}

/// Rows owned by the test, shared with a graph.
struct OwnedRows(Vec<f32>);

impl SharedRows for OwnedRows {
    fn rows_data(&self) -> &[f32] {
        &self.0
    }
}
