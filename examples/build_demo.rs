//! Builds natview's emoji dataset from the unpacked npm packages `emoji-datasource-google`,
//! `emoji-datasource-twitter` and `fluentui-emoji` (see `scripts/build-demo.sh`).
//!
//! Listing = one emoji; views = its image in each design (Noto, Twemoji, Fluent flat / modern /
//! high-contrast); label = category; metadata = subcategory, name, design, codepoint.
//! `--listings N` keeps N emoji (seeded random choice among those with every design);
//! `--full` keeps every emoji in every design it exists in.

use anyhow::{bail, Context};
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{imageops, ImageEncoder, RgbaImage};
use natview::dataset::rasterise_svg;
use natview::rng::SplitMix64;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

struct Args {
    google: PathBuf,
    twitter: PathBuf,
    fluent: PathBuf,
    out: PathBuf,
    listings: usize,
    full: bool,
    seed: u64,
    size_px: u32,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        google: PathBuf::new(),
        twitter: PathBuf::new(),
        fluent: PathBuf::new(),
        out: PathBuf::new(),
        listings: 480,
        full: false,
        seed: 0,
        size_px: 64,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--google" => args.google = value()?.into(),
            "--twitter" => args.twitter = value()?.into(),
            "--fluent" => args.fluent = value()?.into(),
            "--out" => args.out = value()?.into(),
            "--listings" => args.listings = value()?.parse()?,
            "--seed" => args.seed = value()?.parse()?,
            "--size" => args.size_px = value()?.parse()?,
            "--full" => args.full = true,
            other => bail!("unknown flag {other}"),
        }
    }
    if args.out.as_os_str().is_empty() {
        bail!("usage: build_demo --google DIR --twitter DIR --fluent DIR --out DIR [--listings N | --full] [--seed S] [--size PX]");
    }
    Ok(args)
}

fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

struct Emoji {
    name: String,
    short_names: Vec<String>,
    image: String,
    unified: String,
    category: String,
    subcategory: String,
    sort_order: u64,
    has_google: bool,
    has_twitter: bool,
}

fn read_emoji(google_root: &Path) -> anyhow::Result<Vec<Emoji>> {
    let path = google_root.join("emoji.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    let values: Vec<serde_json::Value> = serde_json::from_str(&text)?;
    let s = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
    Ok(values
        .iter()
        .map(|v| Emoji {
            name: s(v, "name"),
            short_names: v["short_names"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
            image: s(v, "image"),
            unified: s(v, "unified"),
            category: s(v, "category"),
            subcategory: s(v, "subcategory"),
            sort_order: v["sort_order"].as_u64().unwrap_or(0),
            has_google: v["has_img_google"].as_bool().unwrap_or(false),
            has_twitter: v["has_img_twitter"].as_bool().unwrap_or(false),
        })
        .collect())
}

/// Fluent file stems in one style folder.
fn fluent_names(dir: &Path) -> anyhow::Result<HashSet<String>> {
    let mut names = HashSet::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("{}", dir.display()))? {
        let path = entry?.path();
        if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
            names.insert(stem.to_string());
        }
    }
    Ok(names)
}

/// The Fluent file stem for an emoji in one style, if any.
fn fluent_match(emoji: &Emoji, names: &HashSet<String>) -> Option<String> {
    let mut candidates = vec![slug(&emoji.name)];
    candidates.extend(emoji.short_names.iter().map(|s| slug(s)));
    if let Some(country) = emoji.name.strip_suffix(" Flag") {
        candidates.push(format!("flag-{}", slug(country)));
    }
    let with_default: Vec<String> = candidates.iter().map(|c| format!("{c}-default")).collect();
    candidates.extend(with_default);
    candidates.into_iter().find(|c| names.contains(c))
}

fn save_png(image: &RgbaImage, path: &Path) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut bytes = Vec::new();
    PngEncoder::new_with_quality(&mut bytes, CompressionType::Best, FilterType::Adaptive)
        .write_image(
            image.as_raw(),
            image.width(),
            image.height(),
            image::ExtendedColorType::Rgba8,
        )?;
    std::fs::write(path, bytes)?;
    Ok(())
}

fn load_png(path: &Path, size_px: u32) -> anyhow::Result<RgbaImage> {
    let image = image::open(path)
        .with_context(|| format!("{}", path.display()))?
        .into_rgba8();
    Ok(if image.width() == size_px && image.height() == size_px {
        image
    } else {
        imageops::resize(&image, size_px, size_px, imageops::FilterType::Lanczos3)
    })
}

const FLUENT_STYLES: [(&str, &str); 3] = [
    ("flat", "fluent-flat"),
    ("modern", "fluent-modern"),
    ("high-contrast", "fluent-high-contrast"),
];

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let emoji = read_emoji(&args.google)?;
    let styles: Vec<HashSet<String>> = FLUENT_STYLES
        .iter()
        .map(|(dir, _)| fluent_names(&args.fluent.join("icons").join(dir)))
        .collect::<anyhow::Result<_>>()?;
    let google_dir = args.google.join("img/google/64");
    let twitter_dir = args.twitter.join("img/twitter/64");

    // Which designs exist for each emoji.
    let mut chosen: Vec<(&Emoji, Vec<Option<String>>)> = emoji
        .iter()
        .map(|e| {
            (
                e,
                styles.iter().map(|names| fluent_match(e, names)).collect(),
            )
        })
        .filter(|(e, fluent): &(&Emoji, Vec<Option<String>>)| {
            let base = e.has_google && e.has_twitter;
            if args.full {
                base || fluent.iter().any(Option::is_some)
            } else {
                base && fluent.iter().all(Option::is_some)
            }
        })
        .collect();
    if !args.full {
        SplitMix64::new(args.seed).shuffle(&mut chosen);
        chosen.truncate(args.listings);
    }
    chosen.sort_by_key(|(e, _)| e.sort_order);

    let mut used = HashSet::new();
    let mut rows = Vec::new();
    let mut failures = 0;
    for (e, fluent) in &chosen {
        let mut listing = slug(&e.name);
        if !used.insert(listing.clone()) {
            listing = format!("{listing}-{}", e.unified.to_lowercase());
            used.insert(listing.clone());
        }
        let mut views: Vec<(&str, anyhow::Result<RgbaImage>)> = Vec::new();
        if e.has_google {
            views.push(("noto", load_png(&google_dir.join(&e.image), args.size_px)));
        }
        if e.has_twitter {
            views.push((
                "twemoji",
                load_png(&twitter_dir.join(&e.image), args.size_px),
            ));
        }
        for ((dir, design), stem) in FLUENT_STYLES.iter().zip(fluent) {
            if let Some(stem) = stem {
                let path = args
                    .fluent
                    .join("icons")
                    .join(dir)
                    .join(format!("{stem}.svg"));
                let image = std::fs::read(&path)
                    .with_context(|| format!("{}", path.display()))
                    .and_then(|bytes| {
                        rasterise_svg(&bytes, args.size_px)
                            .map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))
                    });
                views.push((design, image));
            }
        }
        for (design, image) in views {
            match image {
                Ok(image) => {
                    let rel = format!("images/{listing}/{design}.png");
                    save_png(&image, &args.out.join(&rel))?;
                    let mut row = BTreeMap::new();
                    row.insert("path", rel);
                    row.insert("listing", listing.clone());
                    row.insert("label", e.category.clone());
                    row.insert("subcategory", e.subcategory.clone());
                    row.insert("name", e.name.to_lowercase());
                    row.insert("design", design.to_string());
                    row.insert("codepoint", e.unified.clone());
                    rows.push(row);
                }
                Err(err) => {
                    failures += 1;
                    eprintln!("skipped: {err:#}");
                }
            }
        }
    }
    let columns = [
        "path",
        "listing",
        "label",
        "subcategory",
        "name",
        "design",
        "codepoint",
    ];
    let mut writer = csv::Writer::from_path(args.out.join("manifest.csv"))?;
    writer.write_record(columns)?;
    for row in &rows {
        writer.write_record(
            columns
                .iter()
                .map(|c| row.get(c).map(String::as_str).unwrap_or("")),
        )?;
    }
    writer.flush()?;
    println!(
        "{} listings, {} images ({} failed) → {}",
        chosen.len(),
        rows.len(),
        failures,
        args.out.display()
    );
    Ok(())
}
