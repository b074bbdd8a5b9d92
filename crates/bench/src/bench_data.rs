//! `natview-bench vectors`: the inputs natview and its peers (PyTorch, FAISS, hnswlib,
//! scikit-learn) are benchmarked on, written as `.npy` so every side reads the same numbers.
//!
//! From a dataset of images it writes, into one folder:
//! - `base.npy`: the embeddings (default model) of every image and of `--views` augmented
//!   views of it (random resized crop, flip, colour jitter, greyscale, blur), image by image;
//! - `queries.npy`: embeddings of `--queries` further augmented views of random images (not in
//!   the base: the usual protocol of approximate-search benchmarks);
//! - `pca512.npy`: each base row's embedding beside its 16 × 16 grey pixel vector (256 + 256
//!   real features per view) — the 512-d input of the PCA case;
//! - `images-<model>.npy`: preprocessed input batches (normalised NCHW) for the embedding case;
//! - `meta.json`: what was written and how.

use anyhow::{bail, Context};
use clap::Args;
use natview_cli::CommonArgs;
use natview_core::dataset::{decode_rgb, load_dataset};
use natview_core::jobs::{Progress, ProgressSink};
use natview_core::linalg::{l2_normalise, Matrix};
use natview_core::npy;
use natview_core::rng::SplitMix64;
use natview_core::workspace::write_json_atomic;
use natview_encoder::{choose_device, images_tensor, square_resize, Encoder};
use natview_train::{augment, AugmentParams};
use rayon::prelude::*;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Arguments of `natview-bench vectors`.
#[derive(Debug, Args)]
pub struct VectorsArgs {
    /// Dataset whose images are embedded (e.g. data/emoji-full/manifest.csv).
    dataset: PathBuf,
    /// Output folder.
    #[arg(long, short)]
    out: PathBuf,
    /// Augmented views per image in the base (besides the image itself).
    #[arg(long, default_value_t = 13)]
    views: usize,
    /// Query vectors (augmented views of random images, not in the base).
    #[arg(long, default_value_t = 1000)]
    queries: usize,
    /// Preprocessed images written per model for the embedding case.
    #[arg(long, default_value_t = 256)]
    images: usize,
}

#[derive(Serialize)]
struct VectorsMeta {
    dataset: PathBuf,
    model: String,
    source_images: usize,
    views_per_image: usize,
    base_rows: usize,
    query_rows: usize,
    dim: usize,
    pca_dim: usize,
    image_batches: Vec<(String, Vec<usize>)>,
    seconds: f64,
}

/// Views embedded per batch while streaming (bounds memory to a few thousand small images).
const CHUNK: usize = 4096;
/// Side of the grey pixel vector appended for the PCA input.
const GREY_SIDE: u32 = 16;

/// Writes the benchmark inputs.
pub fn run(args: &VectorsArgs, common: &CommonArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let dataset = load_dataset(&args.dataset)?;
    let spec = common.spec()?;
    let device = choose_device(common.cpu);
    let encoder = Encoder::new(&spec, &device)?;
    let size = spec.input_size_px;
    let decode_px = (2 * size).max(128);
    let images: Vec<_> = dataset
        .items
        .par_iter()
        .filter_map(|item| decode_rgb(&dataset.item_path(item), decode_px).ok())
        .map(|im| square_resize(&im, decode_px))
        .collect();
    if images.len() < 2 {
        bail!("{}: fewer than 2 decodable images", args.dataset.display());
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let per_image = args.views + 1;
    let total = images.len() * per_image;
    // View `v` of image `i`: v = 0 is the image itself, the rest are seeded augmentations.
    let view = |i: usize, v: usize, salt: u64| {
        if v == 0 {
            square_resize(&images[i], size)
        } else {
            let mut rng = SplitMix64::new(common.seed ^ salt ^ ((i as u64) << 20) ^ v as u64);
            augment(&images[i], size, &AugmentParams::natural_views(), &mut rng)
        }
    };
    let dim = encoder.dim();
    let grey_dim = (GREY_SIDE * GREY_SIDE) as usize;
    let mut base = Vec::with_capacity(total * dim);
    let mut pca = Vec::with_capacity(total * (dim + grey_dim));
    let batch = common.batch.unwrap_or(16);
    let bar = natview_cli::output::Bar::new(common.quiet);
    for start in (0..total).step_by(CHUNK) {
        let end = (start + CHUNK).min(total);
        let views: Vec<_> = (start..end)
            .into_par_iter()
            .map(|r| view(r / per_image, r % per_image, 0))
            .collect();
        for (chunk_index, chunk) in views.chunks(batch).enumerate() {
            let rows = encoder.embed(chunk)?;
            for (row, image) in rows.iter().zip(chunk) {
                base.extend_from_slice(row);
                pca.extend_from_slice(row);
                pca.extend_from_slice(&grey_vector(image));
            }
            bar.report(Progress {
                phase: "views".into(),
                done: (start + (chunk_index + 1) * batch).min(end),
                total,
            });
        }
    }
    bar.finish();
    let mut rng = SplitMix64::new(common.seed ^ 0xA11CE);
    let query_views: Vec<_> = (0..args.queries)
        .map(|q| (rng.below(images.len()), q))
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|(i, q)| view(i, 1 + q, 0x9E37_79B9))
        .collect();
    let mut queries = Vec::with_capacity(args.queries * dim);
    for chunk in query_views.chunks(batch) {
        queries.extend(encoder.embed(chunk)?.into_iter().flatten());
    }
    let out = |name: &str| args.out.join(name);
    npy::write(&out("base.npy"), &[total, dim], &base)?;
    npy::write(&out("queries.npy"), &[args.queries, dim], &queries)?;
    npy::write(&out("pca512.npy"), &[total, dim + grey_dim], &pca)?;
    let mut image_batches = Vec::new();
    for model in ["compact", "resnet18", "effnet-lite0"] {
        let kind: natview_encoder::ModelKind = model.parse()?;
        let px = kind.default_input_size_px();
        let chosen: Vec<_> = images.iter().take(args.images).collect();
        let tensor = images_tensor(&chosen, px, kind.normalisation(), &candle_core::Device::Cpu)?;
        let shape = tensor.dims().to_vec();
        let data = tensor.flatten_all()?.to_vec1::<f32>()?;
        npy::write(&out(&format!("images-{model}.npy")), &shape, &data)?;
        image_batches.push((model.to_string(), shape));
    }
    let meta = VectorsMeta {
        dataset: args.dataset.clone(),
        model: spec.describe(),
        source_images: images.len(),
        views_per_image: per_image,
        base_rows: total,
        query_rows: args.queries,
        dim,
        pca_dim: dim + grey_dim,
        image_batches,
        seconds: started.elapsed().as_secs_f64(),
    };
    write_json_atomic(&out("meta.json"), &meta)?;
    if !common.quiet {
        println!(
            "vectors: {} base rows ({} images × {per_image} views) and {} queries of {} dims, {}-d PCA input → {} ({:.0} s)",
            total,
            images.len(),
            args.queries,
            dim,
            dim + grey_dim,
            args.out.display(),
            meta.seconds
        );
    }
    Ok(())
}

/// The view as a unit-length, mean-centred 16 × 16 grey vector.
fn grey_vector(image: &image::RgbImage) -> Vec<f32> {
    let small = square_resize(image, GREY_SIDE);
    let mut v: Vec<f32> = small
        .pixels()
        .map(|p| (0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32) / 255.0)
        .collect();
    let mean = v.iter().sum::<f32>() / v.len() as f32;
    v.iter_mut().for_each(|x| *x -= mean);
    l2_normalise(&mut v);
    v
}

/// Reads a 2-D `.npy` matrix, naming the file in errors.
pub fn read_matrix(path: &Path) -> anyhow::Result<Matrix> {
    let array = npy::read(path)?;
    if array.shape.len() != 2 {
        bail!(
            "{}: expected a 2-D array, got shape {:?}",
            path.display(),
            array.shape
        );
    }
    Ok(array.into_matrix())
}
