//! The training data of a run: decoded images by listing, the held-out split, and the two
//! views of each listing that make a step's positive pairs.

use super::*;

/// Images kept in memory for training: the shorter side at most this many times the input size.
const KEEP_SCALE: u32 = 2;

/// Decoded training data: the images of each listing.
pub(super) struct Images {
    /// Listing name → its items' images (in dataset order), undecodable items left out.
    pub(super) by_listing: HashMap<String, Vec<(Item, RgbImage)>>,
}

impl Images {
    /// Splits into the training images (listings not in `heldout`, without the views that
    /// `holdout_view` picks) and the evaluation images (every view of the `heldout` listings).
    pub(super) fn split(
        self,
        heldout: &std::collections::HashSet<&String>,
        holdout_view: Option<&ViewFilter>,
    ) -> (Images, Images) {
        let (mut train, mut eval) = (HashMap::new(), HashMap::new());
        for (name, list) in self.by_listing {
            if heldout.contains(&name) {
                eval.insert(name, list);
                continue;
            }
            let kept: Vec<_> = list
                .into_iter()
                .filter(|(item, _)| holdout_view.is_none_or(|f| !f.matches(item)))
                .collect();
            if !kept.is_empty() {
                train.insert(name, kept);
            }
        }
        (Images { by_listing: train }, Images { by_listing: eval })
    }
}

pub(super) fn load_images(dataset: &Dataset, size_px: u32) -> Images {
    let keep = size_px * KEEP_SCALE;
    let decoded: Vec<Option<(Item, RgbImage)>> = dataset
        .items
        .par_iter()
        .map(|item| {
            let image = decode_rgb_covering(&dataset.item_path(item), keep, keep)
                .ok()?
                .image;
            let (w, h) = image.dimensions();
            let short = w.min(h);
            let image = if short > keep {
                let scale = f64::from(keep) / f64::from(short);
                natview_core::pixels::resize_rgb(
                    &image,
                    ((f64::from(w) * scale).round() as u32).max(1),
                    ((f64::from(h) * scale).round() as u32).max(1),
                )
            } else {
                image
            };
            Some((item.clone(), image))
        })
        .collect();
    let mut by_listing: HashMap<String, Vec<(Item, RgbImage)>> = HashMap::new();
    for (item, image) in decoded.into_iter().flatten() {
        by_listing
            .entry(item.listing.clone())
            .or_default()
            .push((item, image));
    }
    Images { by_listing }
}

/// The held-out items and images, in a stable order.
pub(super) fn heldout_set<'a>(
    images: &'a Images,
    heldout: &[String],
) -> (Vec<Item>, Vec<&'a RgbImage>) {
    let mut items = Vec::new();
    let mut refs = Vec::new();
    for name in heldout {
        if let Some(list) = images.by_listing.get(name) {
            for (item, image) in list {
                let mut item = item.clone();
                item.id = items.len();
                items.push(item);
                refs.push(image);
            }
        }
    }
    (items, refs)
}

/// Two views of each listing in `batch`: two different natural views when there are, else two
/// augmentations of the one image.
pub(super) fn views(
    images: &Images,
    batch: &[&String],
    size_px: u32,
    seed: u64,
    step: usize,
) -> (Vec<RgbImage>, Vec<RgbImage>) {
    let pairs: Vec<(RgbImage, RgbImage)> = batch
        .par_iter()
        .enumerate()
        .map(|(i, name)| {
            let mut rng = SplitMix64::new(
                seed ^ (step as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (i as u64) << 40,
            );
            let list = &images.by_listing[*name];
            if list.len() >= 2 {
                let a = rng.below(list.len());
                let mut b = rng.below(list.len() - 1);
                if b >= a {
                    b += 1;
                }
                let params = AugmentParams::natural_views();
                (
                    augment(&list[a].1, size_px, &params, &mut rng),
                    augment(&list[b].1, size_px, &params, &mut rng),
                )
            } else {
                let params = AugmentParams::single_view();
                (
                    augment(&list[0].1, size_px, &params, &mut rng),
                    augment(&list[0].1, size_px, &params, &mut rng),
                )
            }
        })
        .collect();
    pairs.into_iter().unzip()
}

/// The listings of step `step`: consecutive slices of a per-epoch seeded permutation.
pub(super) fn step_listings(
    train: &[String],
    batch: usize,
    seed: u64,
    step: usize,
) -> Vec<&String> {
    let per_epoch = (train.len() / batch).max(1);
    let epoch = step / per_epoch;
    let slot = step % per_epoch;
    let mut order: Vec<usize> = (0..train.len()).collect();
    SplitMix64::new(seed ^ (epoch as u64).wrapping_mul(0xd1b5_4a32_d192_ed03)).shuffle(&mut order);
    order[slot * batch..((slot + 1) * batch).min(order.len())]
        .iter()
        .map(|&i| &train[i])
        .collect()
}
