//! The augmentation-shortcut probe: has an encoder learned the item, or only to undo the
//! augmentations it was trained with? On sampled listings it compares three distributions of
//! cosine similarity — two augmentations of one image, two natural views of one listing, two
//! images of different listings — and measures how far natural views get from "different
//! listings" towards "augmentations of one image":
//!
//! `share = (mean natural − mean different) / (mean augmented − mean different)`.
//!
//! Near 1, a listing's photos sit as close as two crops of one photo: the encoder keys on the
//! item. Below [`SHORTCUT_SHARE`], augmentations of an image map together but natural views of
//! one item do not — an augmentation shortcut (raw pixels are the textbook case: a crop of an
//! image stays close to it, another photo of the item does not). When augmentations of one
//! image are hardly closer than different listings ([`MIN_AUGMENTATION_GAP`]) the probe cannot
//! tell.

use super::augment::{augment, AugmentParams};
use super::TrainError;
use natview_core::dataset::{decode_rgb_covering, group_by_listing, Dataset};
use natview_core::linalg::dot;
use natview_core::rng::SplitMix64;
use natview_encoder::Encoder;
use serde::Serialize;

/// Share of the augmentation gap below which natural views count as a shortcut.
pub const SHORTCUT_SHARE: f64 = 0.35;
/// Smallest gap between augmentations of one image and different listings the probe judges.
pub const MIN_AUGMENTATION_GAP: f64 = 0.05;
/// Example listings reported.
const EXAMPLES: usize = 8;

/// How the probe samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShortcutParams {
    /// Listings sampled (those with two views or more).
    pub listings: usize,
    /// The augmentations (natview's fine-tuning sets: [`AugmentParams::single_view`], the
    /// default here, or [`AugmentParams::natural_views`]).
    pub augment: AugmentParams,
    /// Seed of the sample and the augmentations.
    pub seed: u64,
}

impl Default for ShortcutParams {
    fn default() -> Self {
        Self {
            listings: 200,
            augment: AugmentParams::single_view(),
            seed: 0,
        }
    }
}

/// A distribution of cosine similarities.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cosines {
    /// Mean.
    pub mean: f64,
    /// 10th percentile.
    pub p10: f64,
    /// Median.
    pub median: f64,
    /// 90th percentile.
    pub p90: f64,
    /// The values (one per sampled listing).
    pub values: Vec<f32>,
}

impl Cosines {
    fn of(mut values: Vec<f32>) -> Self {
        let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / values.len().max(1) as f64;
        let sorted = {
            values.sort_by(f32::total_cmp);
            values.clone()
        };
        let at = |q: f64| {
            sorted
                .get(((sorted.len().saturating_sub(1)) as f64 * q).round() as usize)
                .map_or(f64::NAN, |&v| f64::from(v))
        };
        Self {
            mean,
            p10: at(0.1),
            median: at(0.5),
            p90: at(0.9),
            values,
        }
    }
}

/// What the probe concludes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ShortcutKind {
    /// Natural views sit near augmentations of one image.
    KeysOnTheItem,
    /// Augmentations map together, natural views do not.
    AugmentationShortcut,
    /// Augmentations of one image are hardly closer than different listings.
    Undecided,
}

/// One listing whose natural views are far apart compared with augmentations of its image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShortcutExample {
    /// The listing.
    pub listing: String,
    /// Its two views compared (item ids).
    pub views: (usize, usize),
    /// Cosine of two augmentations of the first view.
    pub augmented: f32,
    /// Cosine of the two views.
    pub natural: f32,
}

/// The probe's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShortcutReport {
    /// Two augmentations of one image.
    pub augmented: Cosines,
    /// Two natural views of one listing.
    pub natural: Cosines,
    /// Images of two different listings.
    pub different: Cosines,
    /// How far natural views get from different listings towards augmentations (see the
    /// module's note).
    pub natural_share: f64,
    /// The verdict.
    pub kind: ShortcutKind,
    /// The verdict in words, with the figures.
    pub text: String,
    /// Listings whose views are farthest apart relative to their augmentations.
    pub examples: Vec<ShortcutExample>,
    /// Sampled listings left out because an image did not decode.
    pub skipped: usize,
}

/// The verdict for the three means.
pub fn judge(augmented: f64, natural: f64, different: f64) -> (f64, ShortcutKind, String) {
    let gap = augmented - different;
    let share = (natural - different) / gap;
    if gap < MIN_AUGMENTATION_GAP {
        return (
            share,
            ShortcutKind::Undecided,
            format!(
                "undecided: augmentations of one image (mean cosine {augmented:.3}) are hardly \
                 closer than images of different listings ({different:.3})"
            ),
        );
    }
    let figures = format!(
        "natural views {natural:.3}, augmentations of one image {augmented:.3}, different \
         listings {different:.3}: natural views get {:.0} % of the way",
        100.0 * share
    );
    if share < SHORTCUT_SHARE {
        (
            share,
            ShortcutKind::AugmentationShortcut,
            format!("augmentation shortcut: {figures}"),
        )
    } else {
        (
            share,
            ShortcutKind::KeysOnTheItem,
            format!("keys on the item: {figures}"),
        )
    }
}

/// Runs the probe on `dataset` with `encoder`.
pub fn shortcut_probe(
    dataset: &Dataset,
    encoder: &Encoder,
    params: ShortcutParams,
) -> Result<ShortcutReport, TrainError> {
    let mut rng = SplitMix64::new(params.seed);
    let mut groups: Vec<(String, Vec<usize>)> = group_by_listing(&dataset.items)
        .into_iter()
        .filter(|(_, rows)| rows.len() >= 2)
        .collect();
    if groups.len() < 2 {
        return Err(TrainError::NotEnoughData(format!(
            "{}: the shortcut probe needs two listings with two views or more",
            dataset.source.display()
        )));
    }
    rng.shuffle(&mut groups);
    let size = encoder.spec().input_size_px;
    // An image that does not decode leaves its listing out (counted in the report).
    let decode = |item: usize| {
        let path = dataset.item_path(&dataset.items[item]);
        decode_rgb_covering(&path, size, size).ok().map(|d| d.image)
    };
    let mut skipped = 0;
    // Per sampled listing: views a, b, another listing's image c, two augmentations of a.
    let mut picks = Vec::new();
    let mut images = Vec::new();
    let others: Vec<usize> = groups.iter().map(|(_, rows)| rows[0]).collect();
    for (g, (name, rows)) in groups.iter().take(params.listings.max(1)).enumerate() {
        let a = rows[rng.below(rows.len())];
        let b = loop {
            let b = rows[rng.below(rows.len())];
            if b != a {
                break b;
            }
        };
        let c = others[(g + 1 + rng.below(others.len() - 1)) % others.len()];
        let (Some(image_a), Some(image_b), Some(image_c)) = (decode(a), decode(b), decode(c))
        else {
            skipped += 1;
            continue;
        };
        images.push(augment(&image_a, size, &params.augment, &mut rng));
        images.push(augment(&image_a, size, &params.augment, &mut rng));
        images.push(image_a);
        images.push(image_b);
        images.push(image_c);
        picks.push((name.clone(), a, b));
    }
    if picks.is_empty() {
        return Err(TrainError::NotEnoughData(format!(
            "{}: none of the sampled listings' images could be decoded",
            dataset.source.display()
        )));
    }
    let rows = encoder.embed(&images)?;
    let (mut augmented, mut natural, mut different) = (Vec::new(), Vec::new(), Vec::new());
    for chunk in rows.chunks_exact(5) {
        augmented.push(dot(&chunk[0], &chunk[1]));
        natural.push(dot(&chunk[2], &chunk[3]));
        different.push(dot(&chunk[2], &chunk[4]));
    }
    let mut examples: Vec<ShortcutExample> = picks
        .into_iter()
        .zip(augmented.iter().zip(&natural))
        .map(|((listing, a, b), (&aug, &nat))| ShortcutExample {
            listing,
            views: (a, b),
            augmented: aug,
            natural: nat,
        })
        .collect();
    examples.sort_by(|x, y| (x.natural - x.augmented).total_cmp(&(y.natural - y.augmented)));
    examples.truncate(EXAMPLES);
    let (augmented, natural, different) = (
        Cosines::of(augmented),
        Cosines::of(natural),
        Cosines::of(different),
    );
    let (natural_share, kind, text) = judge(augmented.mean, natural.mean, different.mean);
    Ok(ShortcutReport {
        augmented,
        natural,
        different,
        natural_share,
        kind,
        text,
        examples,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verdict_follows_how_far_natural_views_get() {
        // Natural views as close as augmentations: keys on the item.
        assert_eq!(judge(0.9, 0.85, 0.2).1, ShortcutKind::KeysOnTheItem);
        // Augmentations together, natural views like strangers: a shortcut.
        let (share, kind, text) = judge(0.9, 0.3, 0.2);
        assert_eq!(kind, ShortcutKind::AugmentationShortcut);
        assert!((share - 0.1 / 0.7).abs() < 1e-12);
        assert!(text.contains("14 %"), "{text}");
        // No gap to measure against.
        assert_eq!(judge(0.31, 0.3, 0.29).1, ShortcutKind::Undecided);
    }

    #[test]
    fn cosines_summarise_their_values() {
        let c = Cosines::of(vec![0.5, 0.1, 0.9, 0.3, 0.7]);
        assert!((c.mean - 0.5).abs() < 1e-6);
        assert_eq!(c.median, f64::from(0.5f32));
        assert_eq!(c.values, vec![0.1, 0.3, 0.5, 0.7, 0.9]);
    }
}
