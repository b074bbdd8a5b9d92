//! `natview search`: rank a dataset's images by a text, through the text tower of the
//! encoder that embedded them (CLIP); the text is embedded into the images' space and looked up
//! in the same HNSW index as image neighbours.

use super::commands::{embed, index_for, print_ranked, Ranked};
use super::{limits, CommonArgs, DatasetArgs, HnswArgs};
use anyhow::{bail, Context};
use clap::Args;
use natview_encoder::{choose_device, TextEncoder};
use natview_index::exact_neighbours;

/// `natview search` options.
#[derive(Debug, Args)]
pub struct SearchArgs {
    #[command(flatten)]
    data: DatasetArgs,
    /// The text to look for, e.g. "red sneakers".
    #[arg(long)]
    text: String,
    /// Number of images, 1 to 10,000.
    #[arg(short, long, default_value_t = 20, value_parser = limits::neighbour_count)]
    k: usize,
    /// Exact (brute-force) ranking instead of HNSW.
    #[arg(long)]
    exact: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    hnsw: HnswArgs,
}

/// Runs `natview search`.
pub fn search(args: &SearchArgs, common: &CommonArgs) -> anyhow::Result<()> {
    if args.text.trim().is_empty() {
        bail!("--text is empty: give the words to look for");
    }
    let embedded = embed(&args.data.dataset, common)?;
    let spec = &embedded.set.meta.encoder;
    let Some(weights) = spec.weights.as_deref() else {
        bail!(
            "{} has no text tower: text search needs a CLIP model (--weights FOLDER_OR_FILE of a \
             Hugging Face CLIP folder or an open_clip checkpoint)",
            spec.describe()
        );
    };
    let started = std::time::Instant::now();
    let text = TextEncoder::open(weights, spec.weights_key.as_deref(), &choose_device(true))?;
    let opened = started.elapsed();
    eprintln!("text: {}", text.summary());
    let started = std::time::Instant::now();
    let query = text
        .embed(&[args.text.as_str()])?
        .pop()
        .context("the text tower gave no embedding")?;
    let text_time = started.elapsed();
    let set = &embedded.set;
    if query.len() != set.matrix.dim {
        bail!(
            "the text tower gives {}-d vectors but the images' embeddings are {}-d",
            query.len(),
            set.matrix.dim
        );
    }
    let index = (!args.exact)
        .then(|| index_for(&embedded, args.hnsw, common))
        .transpose()?;
    let started = std::time::Instant::now();
    let found = match &index {
        None => exact_neighbours(&set.matrix, &query, args.k, None)?,
        Some(index) => index.search(&query, args.k, None)?,
    };
    eprintln!(
        "text query: tower opened in {:.0} ms, text embedded in {:.1} ms, {} search over {} \
         images in {:.2} ms",
        opened.as_secs_f64() * 1000.0,
        text_time.as_secs_f64() * 1000.0,
        if args.exact { "exact" } else { "HNSW" },
        set.matrix.rows,
        started.elapsed().as_secs_f64() * 1000.0
    );
    print_ranked(
        set,
        &found,
        &Ranked {
            what: "matches",
            query: &format!("text {:?}", args.text),
            search: if args.exact { "exact" } else { "hnsw" },
            query_listing: None,
            json: args.json,
        },
    )
}
