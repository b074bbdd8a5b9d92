//! natview's own HNSW graph (Malkov & Yashunin 2016, with hnswlib's neighbour heuristic) over
//! L2-normalised vectors, searched by cosine similarity.
//!
//! Why not hnsw_rs: measured side by side (BENCHMARKS.md), hnsw_rs 0.3.5 built 2.3× slower than
//! hnswlib and answered 2.3× fewer queries/s at equal recall. Its search keeps visited nodes in a
//! SipHash `HashMap`, allocates an `Arc` per candidate and takes a `RwLock` per neighbour list.
//! This graph keeps vectors and links in flat arrays, marks visited nodes in a reusable
//! epoch array, never allocates per candidate, and uses an AVX2/FMA dot product when the CPU
//! has one.
//!
//! Parallel build: levels are drawn up front (seeded), the node with the highest level is
//! inserted first and stays the entry point, then the others are inserted in parallel. Links
//! are atomics, so readers never block; a per-node mutex serialises writers of one list.

use natview_core::linalg::{dot_kernel, DotFn, Matrix};
use natview_core::rng::SplitMix64;
use rayon::prelude::*;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU32, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};
use std::sync::Arc;
use std::sync::Mutex;

/// A node and its distance (`1 − cosine`) to the query.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    distance: f32,
    id: u32,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.distance
            .total_cmp(&other.distance)
            .then(self.id.cmp(&other.id))
    }
}

/// Marks of visited nodes, cleared in O(1) by bumping an epoch.
struct Visited {
    marks: Vec<u16>,
    epoch: u16,
}

impl Visited {
    fn new(n: usize) -> Self {
        Self {
            marks: vec![0; n],
            epoch: 0,
        }
    }

    fn reset(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.marks.iter_mut().for_each(|m| *m = 0);
            self.epoch = 1;
        }
    }

    /// Marks `id`; returns whether it was unmarked.
    #[inline]
    fn insert(&mut self, id: u32) -> bool {
        let mark = &mut self.marks[id as usize];
        let fresh = *mark != self.epoch;
        *mark = self.epoch;
        fresh
    }
}

/// Reusable per-search scratch: visited marks and the two heaps.
struct Scratch {
    visited: Visited,
    candidates: BinaryHeap<Reverse<Candidate>>,
    results: BinaryHeap<Candidate>,
    links: Vec<u32>,
}

impl Scratch {
    fn new(n: usize) -> Self {
        Self {
            visited: Visited::new(n),
            candidates: BinaryHeap::new(),
            results: BinaryHeap::new(),
            links: Vec::new(),
        }
    }
}

/// The graph's shape parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraphParams {
    /// Links per node on the upper layers (M); layer 0 holds up to 2M.
    pub m: usize,
    /// Candidate list while inserting.
    pub ef_construction: usize,
    /// Seed of the level draw.
    pub seed: u64,
}

/// Row-major vectors owned elsewhere that a graph can search without a copy of its own (an
/// embedding matrix the app holds anyway).
pub trait SharedRows: Send + Sync {
    /// The rows, back to back.
    fn rows_data(&self) -> &[f32];
}

/// The vectors a graph searches: its own copy, or rows shared with their owner.
enum Vectors {
    Owned(Vec<f32>),
    Shared(Arc<dyn SharedRows>),
}

impl Vectors {
    #[inline]
    fn as_slice(&self) -> &[f32] {
        match self {
            Vectors::Owned(v) => v,
            Vectors::Shared(rows) => rows.rows_data(),
        }
    }
}

/// An HNSW graph over a copy of the vectors (or over shared rows, see [`SharedRows`]).
pub struct Graph {
    dim: usize,
    m: usize,
    ef_construction: usize,
    vectors: Vectors,
    levels: Vec<u8>,
    /// Layer 0: per node `1 + 2M` slots, the count then the links.
    layer0: Vec<AtomicU32>,
    /// Layers 1..=level of each node: `level × (1 + M)` slots, each layer's count then links.
    upper: Vec<Box<[AtomicU32]>>,
    locks: Vec<Mutex<()>>,
    entry: u32,
    max_level: usize,
    scratch: Mutex<Vec<Scratch>>,
    dot: DotFn,
}

/// Rows compared when a graph starts sharing vectors (evenly spread, first and last included).
const CHECKED_ROWS: usize = 64;

/// The indices of the rows compared among `n`.
fn sampled_rows(n: usize) -> impl Iterator<Item = usize> {
    let step = (n / CHECKED_ROWS).max(1);
    (0..n).step_by(step).chain(n.checked_sub(1))
}

fn check_same_rows(own: &[f32], shared: &[f32], dim: usize) -> Result<(), String> {
    if own.len() != shared.len() {
        return Err(format!(
            "the shared vectors hold {} values, the graph {}",
            shared.len(),
            own.len()
        ));
    }
    let n = own.len() / dim.max(1);
    for row in sampled_rows(n) {
        let range = row * dim..(row + 1) * dim;
        if own[range.clone()] != shared[range] {
            return Err(format!(
                "row {row} differs from the vectors the graph was built from"
            ));
        }
    }
    Ok(())
}

fn check_same_stored_rows(stored: &[u8], shared: &[f32], dim: usize) -> Result<(), String> {
    if stored.len() != shared.len() * 4 {
        return Err(format!(
            "the embeddings hold {} values, the graph file {}",
            shared.len(),
            stored.len() / 4
        ));
    }
    let n = shared.len() / dim.max(1);
    for row in sampled_rows(n) {
        for (k, &value) in shared[row * dim..(row + 1) * dim].iter().enumerate() {
            let at = (row * dim + k) * 4;
            let b = &stored[at..at + 4];
            if f32::from_le_bytes([b[0], b[1], b[2], b[3]]).to_bits() != value.to_bits() {
                return Err(format!("row {row} differs from the embeddings"));
            }
        }
    }
    Ok(())
}

/// Highest level a node may get (a 2⁶⁴-node graph would not reach it with M ≥ 2).
const LEVEL_CAP: usize = 32;

/// The level drawn for `u` in (0, 1]: ⌊-ln(u) · mult⌋, at most [`LEVEL_CAP`].
#[expect(
    clippy::cast_possible_truncation,
    reason = "the float-to-int `as` floors on purpose and saturates (NaN to 0), and \
              .min(LEVEL_CAP) keeps the level at most 32, which fits a u8"
)]
fn level_for(u: f64, mult: f64) -> u8 {
    ((-u.ln() * mult) as usize).min(LEVEL_CAP) as u8
}

impl Graph {
    /// An empty graph over `vectors` (rows L2-normalised); levels drawn, nothing linked yet.
    fn empty(vectors: &Matrix, params: GraphParams) -> Self {
        let n = vectors.rows;
        let m = params.m.max(2);
        let mult = 1.0 / (m as f64).ln();
        let mut rng = SplitMix64::new(params.seed);
        let levels: Vec<u8> = (0..n)
            .map(|_| {
                let u = 1.0 - rng.next_f64(); // (0, 1]
                level_for(u, mult)
            })
            .collect();
        #[expect(
            clippy::cast_possible_truncation,
            reason = "i < levels.len() = vectors.rows: at most u32::MAX, which build checks \
                      before calling this (read passes no rows)"
        )]
        let (entry, max_level) = levels
            .iter()
            .enumerate()
            .max_by_key(|&(i, &l)| (l, Reverse(i)))
            .map_or((0, 0), |(i, &l)| (i as u32, l as usize));
        let upper = levels
            .iter()
            .map(|&l| {
                (0..l as usize * (1 + m))
                    .map(|_| AtomicU32::new(0))
                    .collect()
            })
            .collect();
        Self {
            dim: vectors.dim,
            m,
            ef_construction: params.ef_construction.max(1),
            vectors: Vectors::Owned(vectors.data.clone()),
            layer0: (0..n * (1 + 2 * m)).map(|_| AtomicU32::new(0)).collect(),
            upper,
            levels,
            locks: (0..n).map(|_| Mutex::new(())).collect(),
            entry,
            max_level,
            scratch: Mutex::new(Vec::new()),
            dot: dot_kernel(),
        }
    }

    /// Builds the graph, inserting in parallel in chunks of `chunk` nodes and calling
    /// `after_chunk(nodes_done)` between chunks (`false` stops the build: `None`). Node ids are
    /// `u32`: more rows than that are refused (`None`) rather than truncated; the caller
    /// (`NeighbourIndex`) says so before calling.
    pub fn build(
        vectors: &Matrix,
        params: GraphParams,
        chunk: usize,
        after_chunk: &mut dyn FnMut(usize) -> bool,
    ) -> Option<Self> {
        let n = vectors.rows;
        let Ok(ids) = u32::try_from(n) else {
            return None;
        };
        let graph = Self::empty(vectors, params);
        if n == 0 {
            return Some(graph);
        }
        // The entry node goes first (nothing to link); the rest in order, in parallel.
        let order: Vec<u32> = (0..ids).filter(|&i| i != graph.entry).collect();
        let mut done = 1;
        for block in order.chunks(chunk.max(1)) {
            block
                .par_iter()
                .for_each_init(|| Scratch::new(n), |scratch, &id| graph.insert(id, scratch));
            done += block.len();
            if !after_chunk(done) {
                return None;
            }
        }
        Some(graph)
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.levels.len()
    }

    /// Whether the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    /// Dimension of the vectors.
    pub fn dim(&self) -> usize {
        self.dim
    }

    #[inline]
    fn vector(&self, id: u32) -> &[f32] {
        let start = id as usize * self.dim;
        &self.vectors.as_slice()[start..start + self.dim]
    }

    /// Searches `rows` from now on instead of the graph's own copy of the vectors (which is
    /// dropped). They must be the vectors the graph was built from: same length, and the rows
    /// checked (a sample of them) are equal.
    pub fn share_rows(&mut self, rows: Arc<dyn SharedRows>) -> Result<(), String> {
        check_same_rows(self.vectors.as_slice(), rows.rows_data(), self.dim)?;
        self.vectors = Vectors::Shared(rows);
        Ok(())
    }

    #[inline]
    fn distance(&self, query: &[f32], id: u32) -> f32 {
        1.0 - (self.dot)(query, self.vector(id))
    }

    /// The slots (count, then links) of `id` on `layer`.
    #[inline]
    fn slots(&self, id: u32, layer: usize) -> &[AtomicU32] {
        if layer == 0 {
            let width = 1 + 2 * self.m;
            &self.layer0[id as usize * width..(id as usize + 1) * width]
        } else {
            let width = 1 + self.m;
            &self.upper[id as usize][(layer - 1) * width..layer * width]
        }
    }

    /// Copies the links of `id` on `layer` into `out`.
    #[inline]
    fn read_links(&self, id: u32, layer: usize, out: &mut Vec<u32>) {
        let slots = self.slots(id, layer);
        let count = (slots[0].load(Acquire) as usize).min(slots.len() - 1);
        out.clear();
        out.extend(slots[1..=count].iter().map(|s| s.load(Relaxed)));
    }

    fn write_links(&self, id: u32, layer: usize, links: &[u32]) {
        let slots = self.slots(id, layer);
        let count = links.len().min(slots.len() - 1);
        for (slot, &link) in slots[1..=count].iter().zip(links) {
            slot.store(link, Relaxed);
        }
        #[expect(
            clippy::cast_possible_truncation,
            reason = "count < slots.len(), 1 + 2M at most, and M is at most 4096 in every graph \
                      (HnswParams::check allows 255, read 4096)"
        )]
        let stored = count as u32;
        slots[0].store(stored, Release);
    }

    /// Greedy descent on one layer: the closest node reachable from `start`.
    fn greedy(
        &self,
        query: &[f32],
        mut best: Candidate,
        layer: usize,
        links: &mut Vec<u32>,
    ) -> Candidate {
        loop {
            let mut improved = false;
            self.read_links(best.id, layer, links);
            for &next in links.iter() {
                let distance = self.distance(query, next);
                if distance < best.distance {
                    best = Candidate { distance, id: next };
                    improved = true;
                }
            }
            if !improved {
                return best;
            }
        }
    }

    /// Best-first search of one layer from `start`, keeping `ef` results in `scratch.results`.
    fn search_layer(
        &self,
        query: &[f32],
        start: Candidate,
        ef: usize,
        layer: usize,
        s: &mut Scratch,
    ) {
        s.visited.reset();
        s.candidates.clear();
        s.results.clear();
        s.visited.insert(start.id);
        s.candidates.push(Reverse(start));
        s.results.push(start);
        let mut links = std::mem::take(&mut s.links);
        while let Some(Reverse(current)) = s.candidates.pop() {
            let worst = s.results.peek().map_or(f32::INFINITY, |c| c.distance);
            if current.distance > worst && s.results.len() >= ef {
                break;
            }
            self.read_links(current.id, layer, &mut links);
            for (i, &next) in links.iter().enumerate() {
                if let Some(&ahead) = links.get(i + 1) {
                    prefetch(self.vector(ahead));
                }
                if !s.visited.insert(next) {
                    continue;
                }
                let distance = self.distance(query, next);
                let worst = s.results.peek().map_or(f32::INFINITY, |c| c.distance);
                if s.results.len() < ef || distance < worst {
                    let found = Candidate { distance, id: next };
                    s.candidates.push(Reverse(found));
                    s.results.push(found);
                    if s.results.len() > ef {
                        s.results.pop();
                    }
                }
            }
        }
        s.links = links;
    }

    /// hnswlib's heuristic: from candidates sorted nearest first, keep one unless it is closer
    /// to an already kept node than to the target; at most `limit`.
    fn select(&self, sorted: &[Candidate], limit: usize, kept: &mut Vec<Candidate>) {
        kept.clear();
        for &c in sorted {
            if kept.len() >= limit {
                break;
            }
            let v = self.vector(c.id);
            if kept
                .iter()
                .all(|k| 1.0 - (self.dot)(v, self.vector(k.id)) >= c.distance)
            {
                kept.push(c);
            }
        }
    }

    fn insert(&self, id: u32, s: &mut Scratch) {
        let query = self.vector(id);
        let level = self.levels[id as usize] as usize;
        let mut current = Candidate {
            distance: self.distance(query, self.entry),
            id: self.entry,
        };
        let mut links = Vec::new();
        for layer in (level + 1..=self.max_level).rev() {
            current = self.greedy(query, current, layer, &mut links);
        }
        let mut kept = Vec::new();
        for layer in (0..=level.min(self.max_level)).rev() {
            self.search_layer(query, current, self.ef_construction, layer, s);
            let mut found: Vec<Candidate> = s.results.drain().filter(|c| c.id != id).collect();
            found.sort_unstable();
            if let Some(&nearest) = found.first() {
                current = nearest;
            }
            self.select(&found, self.m, &mut kept);
            let ids: Vec<u32> = kept.iter().map(|c| c.id).collect();
            let capacity = if layer == 0 { 2 * self.m } else { self.m };
            self.set_own_links(id, layer, &ids, capacity, &mut links, &mut kept);
            for &other in &ids {
                self.link_back(other, id, layer, capacity, &mut links, &mut kept);
            }
        }
    }

    /// Sets the links of a node being inserted. Nodes inserted meanwhile may already have
    /// linked back to it (they reached it through a higher layer): their links are kept beside
    /// `chosen` (pruned with the heuristic beyond `capacity`), else they could become
    /// unreachable.
    fn set_own_links(
        &self,
        id: u32,
        layer: usize,
        chosen: &[u32],
        capacity: usize,
        links: &mut Vec<u32>,
        kept: &mut Vec<Candidate>,
    ) {
        let _own = self.lock(id);
        self.read_links(id, layer, links);
        if links.is_empty() {
            self.write_links(id, layer, chosen);
            return;
        }
        for &c in chosen {
            if !links.contains(&c) {
                links.push(c);
            }
        }
        self.write_pruned(id, layer, links, capacity, kept);
    }

    /// Writes `links` as the list of `node`, first pruned to `capacity` with the heuristic if
    /// longer. The caller holds the node's lock.
    fn write_pruned(
        &self,
        node: u32,
        layer: usize,
        links: &[u32],
        capacity: usize,
        kept: &mut Vec<Candidate>,
    ) {
        if links.len() <= capacity {
            self.write_links(node, layer, links);
            return;
        }
        let v = self.vector(node);
        let mut candidates: Vec<Candidate> = links
            .iter()
            .map(|&id| Candidate {
                distance: self.distance(v, id),
                id,
            })
            .collect();
        candidates.sort_unstable();
        self.select(&candidates, capacity, kept);
        let ids: Vec<u32> = kept.iter().map(|c| c.id).collect();
        self.write_links(node, layer, &ids);
    }

    /// Adds `new` to the links of `node`, pruning with the heuristic when the list is full.
    fn link_back(
        &self,
        node: u32,
        new: u32,
        layer: usize,
        capacity: usize,
        links: &mut Vec<u32>,
        kept: &mut Vec<Candidate>,
    ) {
        let _guard = self.lock(node);
        self.read_links(node, layer, links);
        if links.contains(&new) {
            return;
        }
        links.push(new);
        self.write_pruned(node, layer, links, capacity, kept);
    }

    fn lock(&self, id: u32) -> std::sync::MutexGuard<'_, ()> {
        // A poisoned lock only means another insertion panicked; the links are still valid.
        self.locks[id as usize]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The `k` nearest nodes to `query` as `(id, cosine similarity)`, best first, searching
    /// with a candidate list of `max(ef, k)`.
    pub fn search(&self, query: &[f32], k: usize, ef: usize) -> Vec<(usize, f32)> {
        if self.is_empty() || k == 0 {
            return Vec::new();
        }
        let mut s = self
            .scratch
            .lock()
            .ok()
            .and_then(|mut pool| pool.pop())
            .unwrap_or_else(|| Scratch::new(self.len()));
        let mut current = Candidate {
            distance: self.distance(query, self.entry),
            id: self.entry,
        };
        let mut links = std::mem::take(&mut s.links);
        for layer in (1..=self.max_level).rev() {
            current = self.greedy(query, current, layer, &mut links);
        }
        s.links = links;
        self.search_layer(query, current, ef.max(k), 0, &mut s);
        let mut found: Vec<Candidate> = s.results.drain().collect();
        found.sort_unstable();
        found.truncate(k);
        if let Ok(mut pool) = self.scratch.lock() {
            pool.push(s);
        }
        found
            .into_iter()
            .map(|c| (c.id as usize, 1.0 - c.distance))
            .collect()
    }

    /// The graph as bytes (see [`from_bytes`](Self::from_bytes)).
    pub fn to_bytes(&self) -> Vec<u8> {
        let words = self.layer0.len() + self.upper.iter().map(|u| u.len()).sum::<usize>();
        let vectors = self.vectors.as_slice();
        let mut out = Vec::with_capacity(64 + self.len() + 4 * (vectors.len() + words));
        out.extend_from_slice(MAGIC);
        for v in [
            self.len(),
            self.dim,
            self.m,
            self.ef_construction,
            self.entry as usize,
            self.max_level,
        ] {
            out.extend_from_slice(&(v as u64).to_le_bytes());
        }
        out.extend_from_slice(&self.levels);
        for v in vectors {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for slot in self
            .layer0
            .iter()
            .chain(self.upper.iter().flat_map(|u| u.iter()))
        {
            out.extend_from_slice(&slot.load(Relaxed).to_le_bytes());
        }
        out
    }

    /// Reads a graph written by [`to_bytes`](Self::to_bytes), checking every count and link.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        Self::read(bytes, None)
    }

    /// [`from_bytes`](Self::from_bytes) over `rows` (the vectors it was built from, owned
    /// elsewhere): the file's copy of the vectors is compared on a sample of rows, not loaded.
    pub fn from_bytes_sharing(bytes: &[u8], rows: Arc<dyn SharedRows>) -> Result<Self, String> {
        Self::read(bytes, Some(rows))
    }

    /// Reads and fully validates a graph file: every size with checked arithmetic, every
    /// allocation after the bytes it is made from were found in the file, the entry point on
    /// the top layer, and every link to a node present on the link's layer (a search over what
    /// this returns stays in bounds however the file was damaged).
    fn read(bytes: &[u8], shared: Option<Arc<dyn SharedRows>>) -> Result<Self, String> {
        let mut reader = Reader { bytes, at: 0 };
        if reader.take(MAGIC.len())? != MAGIC {
            return Err("not a natview HNSW graph (bad magic)".into());
        }
        let mut header = [0usize; 6];
        for h in &mut header {
            *h = usize::try_from(reader.u64()?).map_err(|_| "header value too large")?;
        }
        let [n, dim, m, ef_construction, entry, max_level] = header;
        if !(2..=4096).contains(&m) || dim == 0 || n > u32::MAX as usize {
            return Err(format!("implausible header (n {n}, dim {dim}, M {m})"));
        }
        if max_level > LEVEL_CAP {
            return Err(format!(
                "top layer {max_level} is above the highest possible ({LEVEL_CAP})"
            ));
        }
        if (n == 0 && (entry != 0 || max_level != 0)) || (n > 0 && entry >= n) {
            return Err(format!("entry point {entry} is not one of the {n} nodes"));
        }
        let levels = reader.take(n)?.to_vec();
        if levels.iter().any(|&l| l as usize > max_level) {
            return Err("a node's level exceeds the graph's".into());
        }
        if let Some(&top) = levels.get(entry) {
            if top as usize != max_level {
                return Err(format!(
                    "the entry point is on layer {top}, the graph's top layer is {max_level}"
                ));
            }
        }
        let stored = reader.take(
            n.checked_mul(dim)
                .and_then(|x| x.checked_mul(4))
                .ok_or("too large")?,
        )?;
        let mut graph = Self::empty(
            &Matrix {
                rows: 0,
                dim,
                data: Vec::new(),
            },
            GraphParams {
                m,
                ef_construction,
                seed: 0,
            },
        );
        graph.vectors = match shared {
            Some(rows) => {
                check_same_stored_rows(stored, rows.rows_data(), dim)?;
                Vectors::Shared(rows)
            }
            None => Vectors::Owned(
                stored
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
            ),
        };
        let layer0 = read_links_block(&mut reader, n, 2 * m, &levels, false)?;
        let mut upper = Vec::with_capacity(n);
        for &level in &levels {
            upper.push(read_links_block(
                &mut reader,
                level as usize,
                m,
                &levels,
                true,
            )?);
        }
        if reader.at != bytes.len() {
            return Err(format!(
                "{} unexpected bytes at the end",
                bytes.len() - reader.at
            ));
        }
        graph.layer0 = layer0.into_vec();
        graph.upper = upper;
        graph.locks = (0..n).map(|_| Mutex::new(())).collect();
        graph.levels = levels;
        graph.entry = u32::try_from(entry).map_err(|_| format!("entry point {entry} too large"))?;
        graph.max_level = max_level;
        Ok(graph)
    }
}

/// Reads `lists` neighbour lists of `capacity` links (each a count, then the slots): the
/// layer-0 lists of every node, or (`upper`) one node's lists on layers 1, 2, …. Checks every
/// count, and that every link names a node present on its list's layer (`levels[id] ≥ layer`).
fn read_links_block(
    reader: &mut Reader<'_>,
    lists: usize,
    capacity: usize,
    levels: &[u8],
    upper: bool,
) -> Result<Box<[AtomicU32]>, String> {
    let words = lists
        .checked_mul(capacity + 1)
        .and_then(|w| w.checked_mul(4))
        .ok_or("too large")?;
    let bytes = reader.take(words)?;
    let values: Vec<u32> = bytes
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    for (i, list) in values.chunks_exact(capacity + 1).enumerate() {
        let layer = if upper { i + 1 } else { 0 };
        let count = list[0] as usize;
        let links = list.get(1..=count).ok_or_else(|| {
            format!("a neighbour list on layer {layer} holds {count} links, at most {capacity}")
        })?;
        if let Some(&bad) = links.iter().find(|&&id| {
            levels
                .get(id as usize)
                .is_none_or(|&l| (l as usize) < layer)
        }) {
            return Err(format!(
                "a neighbour list on layer {layer} links to node {bad}, which is not on that layer"
            ));
        }
    }
    Ok(values.into_iter().map(AtomicU32::new).collect())
}

const MAGIC: &[u8] = b"NVHNSW01";

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(len).ok_or("length overflow")?;
        let out = self
            .bytes
            .get(self.at..end)
            .ok_or("the file is truncated")?;
        self.at = end;
        Ok(out)
    }

    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ]))
    }
}

#[inline]
fn prefetch(v: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint and never faults; the pointer comes from a live slice.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch(v.as_ptr() as *const i8, _MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}

#[cfg(test)]
#[path = "graph_tests.rs"]
mod tests;
