//! The analysts' judgements in a fine-tuning run: `same` pairs are extra positive pairs,
//! `different` pairs hard negatives (both images in the batch, so InfoNCE pushes them apart),
//! with a pull / triplet-margin term on both (`judged_loss`), `near-duplicate` pairs merge their two
//! listings into one (or the second image is dropped), and images with an excluding tag are
//! left out. A seeded fifth of the judged pairs is never trained on, so the report can show
//! whether the change carries over to pairs the run did not see; pairs touching held-out
//! listings are never trained on either.

use super::augment::{augment, AugmentParams};
use image::RgbImage;
use natview_core::rng::SplitMix64;
use natview_labels::{LabelStore, Verdict};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// What a run does with near-duplicate pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DuplicatePolicy {
    /// Their listings become one listing (the duplicate is another view of one item).
    #[default]
    Merge,
    /// The second image of each pair is left out of training.
    Drop,
}

impl std::str::FromStr for DuplicatePolicy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "merge" => Ok(DuplicatePolicy::Merge),
            "drop" => Ok(DuplicatePolicy::Drop),
            other => Err(format!(
                "unknown duplicate policy `{other}` (merge or drop)"
            )),
        }
    }
}

/// The judgements a run trains with (dataset-relative paths), stored in its configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judgements {
    /// Pairs judged to show the same item.
    pub same: Vec<(String, String)>,
    /// Pairs judged different.
    pub different: Vec<(String, String)>,
    /// Pairs judged near-duplicates.
    pub duplicates: Vec<(String, String)>,
    /// What to do with the near-duplicates.
    pub duplicate_policy: DuplicatePolicy,
    /// Images left out because of their tags.
    pub excluded: Vec<String>,
    /// The tags that exclude images.
    pub exclude_tags: Vec<String>,
    /// Margin of the `different` pairs' triplet term (see [`DEFAULT_MARGIN`]).
    pub margin: f64,
    /// Whether the run trains with them; `false` only measures how it moves the judged pairs
    /// (a run without `--labels` on a dataset that has verdicts).
    #[serde(default = "trains_by_default")]
    pub train: bool,
}

fn trains_by_default() -> bool {
    true
}

impl Default for Judgements {
    fn default() -> Self {
        Self {
            same: Vec::new(),
            different: Vec::new(),
            duplicates: Vec::new(),
            duplicate_policy: DuplicatePolicy::default(),
            excluded: Vec::new(),
            exclude_tags: Vec::new(),
            margin: DEFAULT_MARGIN,
            train: true,
        }
    }
}

impl Judgements {
    /// The verdicts of `store`, and the images carrying any of `exclude_tags`.
    pub fn from_store(
        store: &LabelStore,
        exclude_tags: &[String],
        duplicate_policy: DuplicatePolicy,
    ) -> Self {
        let mut judged = Judgements {
            duplicate_policy,
            exclude_tags: exclude_tags.to_vec(),
            ..Judgements::default()
        };
        for (a, b, verdict) in store.verdicts() {
            let pair = (a.to_string(), b.to_string());
            match verdict {
                Verdict::Same => judged.same.push(pair),
                Verdict::Different => judged.different.push(pair),
                Verdict::NearDuplicate => judged.duplicates.push(pair),
            }
        }
        judged.excluded = store
            .tagged_items()
            .filter(|(_, tags)| exclude_tags.iter().any(|t| tags.contains(t)))
            .map(|(path, _)| path.to_string())
            .collect();
        for list in [
            &mut judged.same,
            &mut judged.different,
            &mut judged.duplicates,
        ] {
            list.sort();
        }
        judged.excluded.sort();
        judged
    }

    /// Whether there is anything to use.
    pub fn is_empty(&self) -> bool {
        self.same.is_empty()
            && self.different.is_empty()
            && self.duplicates.is_empty()
            && self.excluded.is_empty()
    }

    /// The same verdicts, only measured (not trained on, nothing left out or merged).
    pub fn measured_only(mut self) -> Self {
        self.train = false;
        self.excluded.clear();
        self.duplicate_policy = DuplicatePolicy::Merge;
        self
    }

    /// One line for logs: how many of each.
    pub fn describe(&self) -> String {
        if !self.train {
            return format!(
                "{} same, {} different, {} near-duplicate pair(s), measured only (not trained on)",
                self.same.len(),
                self.different.len(),
                self.duplicates.len()
            );
        }
        format!(
            "{} same, {} different, {} near-duplicate pair(s) ({}), {} image(s) excluded by tag",
            self.same.len(),
            self.different.len(),
            self.duplicates.len(),
            match self.duplicate_policy {
                DuplicatePolicy::Merge => "listings merged",
                DuplicatePolicy::Drop => "second image dropped",
            },
            self.excluded.len()
        )
    }
}

/// Margin of the `different` pairs' triplet term: each image's cosine to the other stays this
/// far below its cosine to its own second view.
pub const DEFAULT_MARGIN: f64 = 0.1;

/// Share of the judged pairs kept out of training to check that the change carries over.
const UNTRAINED_SHARE: f64 = 0.2;

/// Judged pairs per step at most: this share of the batch for each of `same` and `different`.
const PAIRS_PER_BATCH: f64 = 0.25;

/// A judged pair whose images are both decoded.
#[derive(Clone)]
pub(super) struct ImagePair {
    pub verdict: Verdict,
    pub a: RgbImage,
    pub b: RgbImage,
    /// Whether the run trains on it.
    pub trained: bool,
}

/// The judged pairs of a run, with the images they need.
pub(super) struct JudgedPlan {
    /// Every judged pair with both images found (trained and not).
    pub pairs: Vec<ImagePair>,
    /// Indices into `pairs` of the trained `same` pairs.
    same: Vec<usize>,
    /// Indices into `pairs` of the trained `different` pairs.
    different: Vec<usize>,
    /// Judged pairs naming images that were not found (skipped or not in the dataset).
    pub missing: usize,
}

/// Splits `pairs` into trained and untrained by a seeded draw (stable for a seed).
fn untrained_by_draw(a: &str, b: &str, seed: u64) -> bool {
    let mut hash = seed ^ 0x6a09_e667_f3bc_c908;
    for byte in a.bytes().chain([0]).chain(b.bytes()) {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x1000_0000_01b3);
    }
    SplitMix64::new(hash).next_f64() < UNTRAINED_SHARE
}

impl JudgedPlan {
    /// Finds the images of the judged pairs (`image_of(path)` gives an image and whether its
    /// listing is trained on); pairs with an image in a held-out listing, and a seeded fifth
    /// of the others, are not trained on.
    pub fn new(
        judged: &Judgements,
        image_of: &dyn Fn(&str) -> Option<(RgbImage, bool)>,
        seed: u64,
    ) -> Self {
        let mut plan = JudgedPlan {
            pairs: Vec::new(),
            same: Vec::new(),
            different: Vec::new(),
            missing: 0,
        };
        let lists = [
            (Verdict::Same, &judged.same),
            (Verdict::Different, &judged.different),
            (Verdict::NearDuplicate, &judged.duplicates),
        ];
        for (verdict, list) in lists {
            for (a, b) in list {
                let (Some((ia, train_a)), Some((ib, train_b))) = (image_of(a), image_of(b)) else {
                    plan.missing += 1;
                    continue;
                };
                let trained = judged.train && train_a && train_b && !untrained_by_draw(a, b, seed);
                let index = plan.pairs.len();
                if trained {
                    match verdict {
                        Verdict::Same => plan.same.push(index),
                        Verdict::Different => plan.different.push(index),
                        Verdict::NearDuplicate => {}
                    }
                }
                plan.pairs.push(ImagePair {
                    verdict,
                    a: ia,
                    b: ib,
                    trained,
                });
            }
        }
        plan
    }

    /// Whether any pair is trained on per step.
    pub fn trains(&self) -> bool {
        !self.same.is_empty() || !self.different.is_empty()
    }

    /// The judged rows added to step `step`'s two views: `same` pairs as (view of a, view of
    /// b); each `different` pair as two rows (a, a′) and (b, b′). Their row numbers (from
    /// `first_row`) come back for the SimSiam terms.
    pub fn step_rows(
        &self,
        batch: usize,
        size_px: u32,
        seed: u64,
        step: usize,
        first_row: usize,
    ) -> (Vec<RgbImage>, Vec<RgbImage>, JudgedBatch) {
        let per = ((batch as f64 * PAIRS_PER_BATCH).ceil() as usize).max(1);
        let pick = |list: &[usize], salt: u64| -> Vec<usize> {
            if list.is_empty() {
                return Vec::new();
            }
            // Consecutive slices of a per-epoch seeded permutation, as for listings.
            let take = per.min(list.len());
            let per_epoch = (list.len() / take).max(1);
            let (epoch, slot) = (step / per_epoch, step % per_epoch);
            let mut order = list.to_vec();
            SplitMix64::new(seed ^ salt ^ (epoch as u64).wrapping_mul(0x9e37_79b9))
                .shuffle(&mut order);
            order[slot * take..(slot + 1) * take].to_vec()
        };
        let same = pick(&self.same, 0x5a3e);
        let different = pick(&self.different, 0xd1ff);
        let params = AugmentParams::natural_views();
        let rng_for = |i: usize| {
            SplitMix64::new(
                seed ^ 0x7e57
                    ^ (step as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
                    ^ (i as u64) << 32,
            )
        };
        let mut jobs: Vec<(&RgbImage, &RgbImage)> = same
            .iter()
            .map(|&i| (&self.pairs[i].a, &self.pairs[i].b))
            .collect();
        let positives = (first_row..first_row + jobs.len()).collect();
        let mut negatives = Vec::new();
        for &i in &different {
            let row = first_row + jobs.len();
            negatives.push((row, row + 1));
            jobs.push((&self.pairs[i].a, &self.pairs[i].a));
            jobs.push((&self.pairs[i].b, &self.pairs[i].b));
        }
        let views: Vec<(RgbImage, RgbImage)> = jobs
            .par_iter()
            .enumerate()
            .map(|(i, (x, y))| {
                let mut rng = rng_for(i);
                (
                    augment(x, size_px, &params, &mut rng),
                    augment(y, size_px, &params, &mut rng),
                )
            })
            .collect();
        let (first, second) = views.into_iter().unzip();
        (
            first,
            second,
            JudgedBatch {
                positives,
                negatives,
            },
        )
    }
}

/// Where a step's judged pairs are among its rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JudgedBatch {
    /// Rows whose two views are a judged `same` pair.
    pub positives: Vec<usize>,
    /// Pairs of rows (of the first view) that are judged `different`.
    pub negatives: Vec<(usize, usize)>,
}

/// How the judged pairs' cosine moved, by verdict and by whether the run trained on them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgedRow {
    /// The verdict.
    pub verdict: Verdict,
    /// Whether the run trained on these pairs (else: kept out, or in held-out listings).
    pub trained: bool,
    /// Number of pairs.
    pub pairs: usize,
    /// Mean cosine under the starting weights.
    pub before: f64,
    /// Mean cosine under the trained weights (`None` until the run finishes).
    pub after: Option<f64>,
}

impl JudgedRow {
    /// Whether the pairs moved the way the verdict asks (same and near-duplicate pairs
    /// closer, different pairs apart) by more than [`UNCHANGED_BELOW`]; `None` until the run
    /// finishes.
    pub fn movement(&self) -> Option<Movement> {
        let change = self.after? - self.before;
        if change.abs() < UNCHANGED_BELOW {
            return Some(Movement::Unchanged);
        }
        let closer = change > 0.0;
        let wanted_closer = self.verdict != Verdict::Different;
        Some(if closer == wanted_closer {
            Movement::Right
        } else {
            Movement::Wrong
        })
    }
}

/// A change of mean cosine smaller than this counts as none.
pub const UNCHANGED_BELOW: f64 = 0.001;

/// How a group of judged pairs moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Movement {
    /// The way the verdict asks.
    Right,
    /// Against it.
    Wrong,
    /// By less than [`UNCHANGED_BELOW`].
    Unchanged,
}

impl Movement {
    /// In words, for reports.
    pub fn describe(self) -> &'static str {
        match self {
            Movement::Right => "the right way",
            Movement::Wrong => "THE WRONG WAY",
            Movement::Unchanged => "unchanged",
        }
    }
}

/// Mean cosine per (verdict, trained) group, given each pair's cosine in `plan` order.
pub(super) fn judged_rows(plan: &JudgedPlan, cosines: &[f32]) -> Vec<JudgedRow> {
    let mut groups: Vec<JudgedRow> = Vec::new();
    for verdict in Verdict::ALL {
        for trained in [true, false] {
            let values: Vec<f64> = plan
                .pairs
                .iter()
                .zip(cosines)
                .filter(|(p, _)| p.verdict == verdict && p.trained == trained)
                .map(|(_, &c)| f64::from(c))
                .collect();
            if !values.is_empty() {
                groups.push(JudgedRow {
                    verdict,
                    trained,
                    pairs: values.len(),
                    before: values.iter().sum::<f64>() / values.len() as f64,
                    after: None,
                });
            }
        }
    }
    groups
}

/// The listing each training listing goes into once near-duplicate pairs merge theirs
/// (union of the two listings, named by the smaller name); only pairs of two training
/// listings merge.
pub(super) fn merged_listings(
    duplicates: &[(String, String)],
    listing_of: &dyn Fn(&str) -> Option<(String, bool)>,
) -> HashMap<String, String> {
    let mut parent: HashMap<String, String> = HashMap::new();
    fn root(parent: &mut HashMap<String, String>, x: &str) -> String {
        let mut x = x.to_string();
        while let Some(p) = parent.get(&x).cloned() {
            if p == x {
                break;
            }
            x = p;
        }
        x
    }
    for (a, b) in duplicates {
        let (Some((la, true)), Some((lb, true))) = (listing_of(a), listing_of(b)) else {
            continue;
        };
        for l in [&la, &lb] {
            parent.entry(l.clone()).or_insert_with(|| l.clone());
        }
        let (ra, rb) = (root(&mut parent, &la), root(&mut parent, &lb));
        if ra != rb {
            let (keep, other) = if ra < rb { (ra, rb) } else { (rb, ra) };
            parent.insert(other, keep);
        }
    }
    let names: Vec<String> = parent.keys().cloned().collect();
    names
        .into_iter()
        .map(|n| {
            let r = root(&mut parent, &n);
            (n, r)
        })
        .filter(|(n, r)| n != r)
        .collect()
}

/// The images a run leaves out: excluded by tag, and with [`DuplicatePolicy::Drop`] the
/// second image of each near-duplicate pair.
pub(super) fn left_out(judged: &Judgements) -> HashSet<String> {
    let mut out: HashSet<String> = judged.excluded.iter().cloned().collect();
    if judged.duplicate_policy == DuplicatePolicy::Drop {
        out.extend(judged.duplicates.iter().map(|(_, b)| b.clone()));
    }
    out
}

/// Applies `judged` to the training images (tagged images and, with
/// [`DuplicatePolicy::Drop`], second duplicates left out; with [`DuplicatePolicy::Merge`]
/// near-duplicate listings merged) and plans its judged pairs, looking their images up among
/// the training images (trained on) and the held-out ones (not).
pub(super) fn prepare(
    judged: &Judgements,
    images: &mut super::data::Images,
    eval: &super::data::Images,
    seed: u64,
) -> JudgedPlan {
    let key = |item: &natview_core::dataset::Item| item.path.to_string_lossy().into_owned();
    let out = if judged.train {
        left_out(judged)
    } else {
        HashSet::new()
    };
    for list in images.by_listing.values_mut() {
        list.retain(|(item, _)| !out.contains(&key(item)));
    }
    images.by_listing.retain(|_, list| !list.is_empty());
    if judged.train && judged.duplicate_policy == DuplicatePolicy::Merge {
        let mut listing_of: HashMap<String, (String, bool)> = HashMap::new();
        for (trained, set) in [(true, &*images), (false, eval)] {
            for (name, list) in &set.by_listing {
                for (item, _) in list {
                    listing_of.insert(key(item), (name.clone(), trained));
                }
            }
        }
        let merged = merged_listings(&judged.duplicates, &|p| listing_of.get(p).cloned());
        let mut moves: Vec<(String, String)> = merged.into_iter().collect();
        moves.sort();
        for (from, to) in moves {
            if let Some(list) = images.by_listing.remove(&from) {
                images.by_listing.entry(to).or_default().extend(list);
            }
        }
    }
    let mut lookup: HashMap<String, (&RgbImage, bool)> = HashMap::new();
    for (trained, set) in [(false, eval), (true, &*images)] {
        for list in set.by_listing.values() {
            for (item, image) in list {
                lookup.insert(key(item), (image, trained));
            }
        }
    }
    JudgedPlan::new(
        judged,
        &|p| {
            lookup
                .get(p)
                .map(|&(image, trained)| (image.clone(), trained))
        },
        seed,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use natview_labels::ItemRef;

    fn pair(a: &str, b: &str) -> (String, String) {
        (a.to_string(), b.to_string())
    }

    #[test]
    fn verdicts_and_excluding_tags_come_from_the_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = LabelStore::open(&dir.path().join("l.sqlite")).expect("open");
        let item = |path: &'static str| ItemRef {
            path,
            listing: &path[..1],
        };
        store
            .set_verdict(item("b/1"), item("a/1"), Some(Verdict::Same), None)
            .expect("v");
        store
            .set_verdict(item("a/2"), item("c/1"), Some(Verdict::Different), None)
            .expect("v");
        store
            .set_verdict(item("c/2"), item("d/1"), Some(Verdict::NearDuplicate), None)
            .expect("v");
        store.add_tag(item("d/2"), "off-topic").expect("tag");
        store.add_tag(item("a/3"), "blurry").expect("tag");
        let judged = Judgements::from_store(&store, &["off-topic".into()], DuplicatePolicy::Drop);
        assert_eq!(judged.same, vec![pair("a/1", "b/1")]);
        assert_eq!(judged.different, vec![pair("a/2", "c/1")]);
        assert_eq!(judged.duplicates, vec![pair("c/2", "d/1")]);
        assert_eq!(judged.excluded, vec!["d/2".to_string()]);
        let out = left_out(&judged);
        assert!(out.contains("d/2") && out.contains("d/1") && !out.contains("c/2"));
        assert!(judged
            .describe()
            .contains("1 same, 1 different, 1 near-duplicate"));
    }

    #[test]
    fn duplicates_merge_training_listings_transitively_but_not_held_out_ones() {
        let listing_of = |p: &str| {
            let l = p.split('/').next().unwrap_or("").to_string();
            Some((l.clone(), l != "held"))
        };
        let merged = merged_listings(
            &[
                pair("c/1", "b/1"),
                pair("b/2", "a/1"),
                pair("x/1", "held/1"),
            ],
            &listing_of,
        );
        let mut merged: Vec<(String, String)> = merged.into_iter().collect();
        merged.sort();
        assert_eq!(merged, vec![pair("b", "a"), pair("c", "a")]);
    }

    #[test]
    fn judged_rows_go_into_the_batch_with_their_negatives_marked() {
        let image = |v: u8| RgbImage::from_pixel(40, 40, image::Rgb([v, v, v]));
        let judged = Judgements {
            same: (0..6)
                .map(|i| pair(&format!("s{i}a"), &format!("s{i}b")))
                .collect(),
            different: (0..6)
                .map(|i| pair(&format!("d{i}a"), &format!("d{i}b")))
                .collect(),
            ..Judgements::default()
        };
        let lookup = |p: &str| (!p.starts_with("missing")).then(|| (image(p.len() as u8), true));
        let plan = JudgedPlan::new(&judged, &lookup, 3);
        assert_eq!(plan.pairs.len(), 12);
        assert!(plan.trains());
        // The split into trained / kept-out pairs is the same for the same seed.
        let again = JudgedPlan::new(&judged, &lookup, 3);
        let trained = |p: &JudgedPlan| p.pairs.iter().map(|x| x.trained).collect::<Vec<_>>();
        assert_eq!(trained(&plan), trained(&again));
        let (first, second, batch) = plan.step_rows(8, 32, 3, 0, 8);
        let negatives = batch.negatives;
        assert_eq!(
            batch.positives,
            (8..8 + plan.same.len().min(2)).collect::<Vec<_>>()
        );
        assert_eq!(first.len(), second.len());
        let same_rows = plan.same.len().min(2);
        let different = plan.different.len().min(2);
        assert_eq!(first.len(), same_rows + 2 * different);
        assert_eq!(negatives.len(), different);
        for (k, &(a, b)) in negatives.iter().enumerate() {
            assert_eq!((a, b), (8 + same_rows + 2 * k, 8 + same_rows + 2 * k + 1));
        }
        assert!(first.iter().all(|i| i.dimensions() == (32, 32)));
        // A pair with an image that is not there is counted, not planned.
        let judged = Judgements {
            same: vec![pair("missing/1", "s0a")],
            ..Judgements::default()
        };
        let plan = JudgedPlan::new(&judged, &lookup, 3);
        assert_eq!((plan.pairs.len(), plan.missing), (0, 1));
        assert!(!plan.trains());
    }
}
