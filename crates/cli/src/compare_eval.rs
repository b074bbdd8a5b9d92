//! What `natview compare` measures on the held-out listings beyond each run's own report: the
//! starting weights, every method's trained weights and raw pixels embed the same held-out
//! images; the same listings are drawn as one quadrant chart per encoder, in one colour range
//! so that the charts compare at a glance; and where the held-out images carry labels (the
//! `label` column), the low-shot probes (kNN and linear, 1 / 10 / 100 % of the labelled pool)
//! run on them.

use natview_analysis::probe::{low_shot_probes, probe_classes, ClassSource, ProbeOptions};
use natview_analysis::report::{save_quadrant_png, HeatmapOptions};
use natview_analysis::{listing_numbers, quadrant_chart, PairStats, QuadrantChart, QuadrantParams};
use natview_core::dataset::{decode_rgb_covering, group_by_listing, Dataset, Item};
use natview_core::linalg::Matrix;
use natview_encoder::{choose_device, Encoder, EncoderSpec};
use std::path::{Path, PathBuf};

pub use natview_analysis::probe::ProbeReport;

/// The held-out listings' images, decoded once.
pub struct HeldOut {
    items: Vec<Item>,
    images: Vec<image::RgbImage>,
}

impl HeldOut {
    /// The listings `natview finetune` holds out for `fraction` and `seed` (the same split),
    /// decoded at `size_px`; undecodable images are skipped with a message.
    pub fn new(dataset: &Dataset, fraction: f64, seed: u64, size_px: u32) -> anyhow::Result<Self> {
        let names: Vec<String> = group_by_listing(&dataset.items)
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        let held: std::collections::HashSet<String> =
            natview_train::split_listings(&names, fraction, seed)
                .1
                .into_iter()
                .collect();
        let (mut items, mut images) = (Vec::new(), Vec::new());
        for item in dataset.items.iter().filter(|i| held.contains(&i.listing)) {
            let path = dataset.item_path(item);
            // Covering the input after a crop of down to 7/8 of the short side.
            match decode_rgb_covering(&path, size_px.max(64), size_px * 8 / 7 + 1) {
                Ok(decoded) => {
                    let image = decoded.image;
                    items.push(item.clone());
                    images.push(image);
                }
                Err(e) => eprintln!("compare: skipping {}: {e}", path.display()),
            }
        }
        if items.is_empty() {
            anyhow::bail!("no held-out images to compare on (--heldout {fraction})");
        }
        Ok(Self { items, images })
    }

    /// Held-out images.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Unit-length embeddings of the held-out images by `spec`'s encoder.
    pub fn embed(&self, spec: &EncoderSpec, force_cpu: bool) -> anyhow::Result<Matrix> {
        let encoder = Encoder::new(spec, &choose_device(force_cpu))?;
        let mut rows = Vec::with_capacity(self.images.len());
        for chunk in self.images.chunks(32) {
            // Already unit length (`Encoder::embed` normalises).
            rows.extend(encoder.embed(chunk)?);
        }
        Matrix::from_rows(&rows).ok_or_else(|| anyhow::anyhow!("embeddings of unequal length"))
    }

    /// The low-shot probes on `matrix` (rows = held-out images), if the held-out images have
    /// labels of two classes or more.
    pub fn probe(&self, matrix: &Matrix, seed: u64) -> Option<ProbeReport> {
        let (class, names) = probe_classes(&self.items, ClassSource::Label, &|_| Vec::new());
        low_shot_probes(
            matrix,
            &class,
            &names,
            &listing_numbers(&self.items),
            &ProbeOptions {
                seed,
                ..ProbeOptions::default()
            },
        )
        .ok()
    }
}

/// One encoder's quadrant chart, as written.
#[derive(Debug, serde::Serialize)]
pub struct ChartFile {
    /// The PNG.
    pub path: PathBuf,
    /// Intra/inter statistics of the charted pairs.
    pub stats: PairStats,
}

/// Draws one quadrant chart per `(name, title, matrix)` on the same held-out listings (chosen
/// by `seed` from the first matrix's chart, up to 12 listings of up to 4 views) in one colour
/// range, as `quadrant-<name>.png` in `out_dir`.
pub fn quadrant_charts(
    held: &HeldOut,
    encoders: &[(String, String, Matrix)],
    seed: u64,
    out_dir: &Path,
) -> anyhow::Result<Vec<ChartFile>> {
    // Views per listing from the data (the median held-out listing's count, at most 4), up
    // to 12 listings; the other encoders chart the same listings and views.
    let mut params = QuadrantParams {
        listings: 12,
        views: None,
        seed,
        label: None,
        picked: Vec::new(),
    };
    let mut charts: Vec<QuadrantChart> = Vec::new();
    for (_, _, matrix) in encoders {
        let chart = quadrant_chart(matrix, &held.items, &params)?;
        params.picked = chart.listings.clone();
        params.views = Some(chart.views);
        charts.push(chart);
    }
    let range = shared_range(&charts);
    let mut files = Vec::new();
    for ((name, title, _), chart) in encoders.iter().zip(&charts) {
        let path = out_dir.join(format!("quadrant-{name}.png"));
        let mut options = HeatmapOptions::for_chart(chart, title, Some(range));
        options.title = format!("{} — held-out listings", options.title);
        save_quadrant_png(chart, &options, &path)?;
        files.push(ChartFile {
            path,
            stats: chart.stats,
        });
    }
    Ok(files)
}

/// The lowest and highest off-diagonal similarity over all charts.
fn shared_range(charts: &[QuadrantChart]) -> (f32, f32) {
    let (mut low, mut high) = (f32::INFINITY, f32::NEG_INFINITY);
    for chart in charts {
        let n = chart.size();
        for i in 0..n {
            for j in (0..n).filter(|&j| j != i) {
                low = low.min(chart.at(i, j));
                high = high.max(chart.at(i, j));
            }
        }
    }
    if low < high {
        (low, high)
    } else {
        (low - 0.5, low + 0.5)
    }
}
