//! Low-shot probes (the SEER-style evaluation of a representation): with class labels on some
//! images (the dataset's `label` column, or the analysts' tags), how well do a k-nearest-
//! neighbour classifier and a linear classifier on the frozen embeddings do when trained on
//! 1 %, 10 % and 100 % of the labelled images?
//!
//! The split is by listing (the views of one listing never sit on both sides, or kNN would
//! find a view's sibling): a seeded fifth of the labelled listings is the test set, the rest the
//! pool; each fraction draws its training images from the pool, several times with different
//! seeds, and the accuracies are averaged.

use super::AnalysisError;
use natview_core::linalg::{matmul, Matrix, Operand, Output};
use natview_core::rng::SplitMix64;
use natview_index::exact_search;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Settings of the probes.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeOptions {
    /// Shares of the pool to train on.
    pub fractions: Vec<f64>,
    /// Neighbours that vote in the kNN classifier.
    pub k: usize,
    /// Temperature of the kNN vote weights `exp(cos / τ)`.
    pub temperature: f32,
    /// Share of the labelled listings tested on.
    pub test_fraction: f64,
    /// Draws per fraction below 100 % (averaged).
    pub repeats: usize,
    /// Test images at most (a seeded sample beyond).
    pub max_test: usize,
    /// Pool images at most (a seeded sample beyond).
    pub max_pool: usize,
    /// Seed of the split and the draws.
    pub seed: u64,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        Self {
            fractions: vec![0.01, 0.1, 1.0],
            k: 20,
            temperature: 0.07,
            test_fraction: 0.2,
            repeats: 3,
            max_test: 5_000,
            max_pool: 50_000,
            seed: 0,
        }
    }
}

/// Accuracy at one training fraction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeRow {
    /// Share of the pool trained on.
    pub fraction: f64,
    /// Training images (per draw).
    pub train_images: usize,
    /// kNN accuracy on the test images (mean over draws).
    pub knn: f64,
    /// Linear-probe accuracy on the test images (mean over draws).
    pub linear: f64,
}

/// The probes of one embedding matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeReport {
    /// Class names (index = class number).
    pub classes: Vec<String>,
    /// Labelled images.
    pub labelled: usize,
    /// Images in the pool.
    pub pool: usize,
    /// Images tested on.
    pub test: usize,
    /// Accuracy of always answering the most common class of the pool.
    pub majority: f64,
    /// One row per fraction.
    pub rows: Vec<ProbeRow>,
}

/// Runs the probes on unit-length `matrix` rows; `class[i]` is item `i`'s class (`None`:
/// unlabelled), `listing[i]` its listing number.
pub fn low_shot_probes(
    matrix: &Matrix,
    class: &[Option<usize>],
    class_names: &[String],
    listing: &[usize],
    options: &ProbeOptions,
) -> Result<ProbeReport, AnalysisError> {
    if class.len() != matrix.rows || listing.len() != matrix.rows {
        return Err(AnalysisError::BadInput(format!(
            "{} embeddings but {} classes and {} listings",
            matrix.rows,
            class.len(),
            listing.len()
        )));
    }
    let labelled: Vec<usize> = (0..matrix.rows).filter(|&i| class[i].is_some()).collect();
    let distinct: std::collections::BTreeSet<usize> =
        labelled.iter().filter_map(|&i| class[i]).collect();
    if distinct.len() < 2 {
        return Err(AnalysisError::NotEnoughData(format!(
            "low-shot probes need images of at least 2 classes, got {} labelled image(s) in {} class(es)",
            labelled.len(),
            distinct.len()
        )));
    }
    // Split the labelled listings.
    let mut listings: Vec<usize> = labelled.iter().map(|&i| listing[i]).collect();
    listings.sort_unstable();
    listings.dedup();
    let mut rng = SplitMix64::new(options.seed ^ 0x009b_0be5);
    rng.shuffle(&mut listings);
    let test_count = ((listings.len() as f64 * options.test_fraction).round() as usize)
        .clamp(1, listings.len().saturating_sub(1).max(1));
    let test_listings: std::collections::HashSet<usize> =
        listings[..test_count].iter().copied().collect();
    let (mut test, mut pool): (Vec<usize>, Vec<usize>) = labelled
        .iter()
        .partition(|&&i| test_listings.contains(&listing[i]));
    for (list, cap) in [(&mut test, options.max_test), (&mut pool, options.max_pool)] {
        if list.len() > cap {
            rng.shuffle(list);
            list.truncate(cap);
            list.sort_unstable();
        }
    }
    if pool.is_empty() || test.is_empty() {
        return Err(AnalysisError::NotEnoughData(
            "too few labelled listings to split into training and test".into(),
        ));
    }
    let classes = class_names
        .len()
        .max(distinct.iter().max().map_or(0, |m| m + 1));
    let mut counts = vec![0usize; classes];
    for &i in &pool {
        counts[class[i].unwrap_or(0)] += 1;
    }
    let majority_class = (0..classes).max_by_key(|&c| counts[c]).unwrap_or(0);
    let truth: Vec<usize> = test.iter().map(|&i| class[i].unwrap_or(0)).collect();
    let majority =
        truth.iter().filter(|&&c| c == majority_class).count() as f64 / truth.len() as f64;
    let test_matrix = matrix.select_rows(&test);
    let mut rows = Vec::new();
    for &fraction in &options.fractions {
        let take = ((pool.len() as f64 * fraction).round() as usize).clamp(1, pool.len());
        let draws = if take == pool.len() {
            1
        } else {
            options.repeats.max(1)
        };
        let (mut knn, mut linear) = (0.0, 0.0);
        for draw in 0..draws {
            let mut chosen = pool.clone();
            SplitMix64::new(options.seed ^ (draw as u64 + 1).wrapping_mul(0x51_7cc1_b727))
                .shuffle(&mut chosen);
            chosen.truncate(take);
            let train = matrix.select_rows(&chosen);
            let labels: Vec<usize> = chosen.iter().map(|&i| class[i].unwrap_or(0)).collect();
            knn += accuracy(
                &knn_predict(&train, &labels, classes, &test_matrix, options)?,
                &truth,
            );
            linear += accuracy(
                &linear_predict(&train, &labels, classes, &test_matrix),
                &truth,
            );
        }
        rows.push(ProbeRow {
            fraction,
            train_images: take,
            knn: knn / draws as f64,
            linear: linear / draws as f64,
        });
    }
    Ok(ProbeReport {
        classes: (0..classes)
            .map(|c| {
                class_names
                    .get(c)
                    .cloned()
                    .unwrap_or_else(|| format!("class {c}"))
            })
            .collect(),
        labelled: labelled.len(),
        pool: pool.len(),
        test: test.len(),
        majority,
        rows,
    })
}

/// Where the probes' classes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClassSource {
    /// The dataset's `label` column.
    Label,
    /// The analysts' tags (images with exactly one tag; several tags leave an image out).
    Tags,
}

impl std::str::FromStr for ClassSource {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "label" | "labels" => Ok(ClassSource::Label),
            "tag" | "tags" => Ok(ClassSource::Tags),
            other => Err(format!("unknown probe classes `{other}` (label or tags)")),
        }
    }
}

/// Each item's class (`None`: no class) and the class names, from the `label` column or
/// from `tags_of(item)` (the item's tags; exactly one makes a class).
pub fn probe_classes(
    items: &[natview_core::dataset::Item],
    source: ClassSource,
    tags_of: &dyn Fn(usize) -> Vec<String>,
) -> (Vec<Option<usize>>, Vec<String>) {
    let names: Vec<Option<String>> = match source {
        ClassSource::Label => items.iter().map(|i| i.label.clone()).collect(),
        ClassSource::Tags => (0..items.len())
            .map(|i| {
                let mut tags = tags_of(i);
                (tags.len() == 1).then(|| tags.remove(0))
            })
            .collect(),
    };
    let mut distinct: Vec<String> = names.iter().flatten().cloned().collect();
    distinct.sort();
    distinct.dedup();
    let class = names
        .iter()
        .map(|n| n.as_ref().and_then(|n| distinct.binary_search(n).ok()))
        .collect();
    (class, distinct)
}

fn accuracy(predicted: &[usize], truth: &[usize]) -> f64 {
    predicted.iter().zip(truth).filter(|(p, t)| p == t).count() as f64 / truth.len().max(1) as f64
}

/// Weighted kNN vote (weights `exp(cos / τ)`, as DINO's kNN evaluation).
fn knn_predict(
    train: &Matrix,
    labels: &[usize],
    classes: usize,
    test: &Matrix,
    options: &ProbeOptions,
) -> Result<Vec<usize>, AnalysisError> {
    let k = options.k.min(train.rows).max(1);
    let found = exact_search(train, test, k).map_err(|e| AnalysisError::BadInput(e.to_string()))?;
    Ok(found
        .par_iter()
        .map(|neighbours| {
            let mut votes = vec![0f64; classes];
            for n in neighbours {
                votes[labels[n.id]] += f64::from((n.similarity / options.temperature).exp());
            }
            argmax(&votes)
        })
        .collect())
}

/// Iterations of the linear probe's optimiser.
const LINEAR_STEPS: usize = 300;
/// Its L2 penalty on the weights.
const LINEAR_WEIGHT_DECAY: f32 = 1e-3;

/// Multinomial logistic regression on standardised features (full batch, Adam), then the
/// most probable class of each test row.
fn linear_predict(train: &Matrix, labels: &[usize], classes: usize, test: &Matrix) -> Vec<usize> {
    let (n, d) = (train.rows, train.dim);
    // Standardise with the training rows' mean and spread.
    let mut mean = vec![0f32; d];
    for row in train.data.chunks_exact(d) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += v / n as f32;
        }
    }
    let mut spread = vec![0f32; d];
    for row in train.data.chunks_exact(d) {
        for ((s, v), m) in spread.iter_mut().zip(row).zip(&mean) {
            *s += (v - m) * (v - m) / n as f32;
        }
    }
    let scale: Vec<f32> = spread.iter().map(|s| 1.0 / (s.sqrt() + 1e-4)).collect();
    let standardise = |m: &Matrix| -> Vec<f32> {
        m.data
            .chunks_exact(d)
            .flat_map(|row| {
                row.iter()
                    .zip(&mean)
                    .zip(&scale)
                    .map(|((v, m), s)| (v - m) * s)
            })
            .collect()
    };
    let x = standardise(train);
    let mut w = vec![0f32; d * classes];
    let mut b = vec![0f32; classes];
    let (mut mw, mut vw) = (vec![0f32; w.len()], vec![0f32; w.len()]);
    let (mut mb, mut vb) = (vec![0f32; classes], vec![0f32; classes]);
    let (lr, beta1, beta2) = (0.05f32, 0.9f32, 0.999f32);
    let mut logits = vec![0f32; n * classes];
    for step in 1..=LINEAR_STEPS {
        // Softmax probabilities minus the one-hot targets, over n.
        affine(&x, d, &w, &b, classes, &mut logits);
        logits
            .par_chunks_mut(classes)
            .zip(labels.par_iter())
            .for_each(|(row, &label)| {
                let top = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut sum = 0.0;
                for v in row.iter_mut() {
                    *v = (*v - top).exp();
                    sum += *v;
                }
                for v in row.iter_mut() {
                    *v /= sum * n as f32;
                }
                row[label] -= 1.0 / n as f32;
            });
        // Gradients: Xᵀ G + λ W, and the column sums of G.
        let mut gw = vec![0f32; d * classes];
        matmul(
            d,
            classes,
            n,
            Output::rows(&mut gw, classes),
            Operand::transposed(&x, d),
            Operand::rows(&logits, classes),
            false,
        );
        let mut gb = vec![0f32; classes];
        for row in logits.chunks_exact(classes) {
            for (g, v) in gb.iter_mut().zip(row) {
                *g += v;
            }
        }
        for (g, wv) in gw.iter_mut().zip(&w) {
            *g += LINEAR_WEIGHT_DECAY * wv;
        }
        let (c1, c2) = (1.0 - beta1.powi(step as i32), 1.0 - beta2.powi(step as i32));
        let adam = |p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]| {
            for i in 0..p.len() {
                m[i] = beta1 * m[i] + (1.0 - beta1) * g[i];
                v[i] = beta2 * v[i] + (1.0 - beta2) * g[i] * g[i];
                p[i] -= lr * (m[i] / c1) / ((v[i] / c2).sqrt() + 1e-8);
            }
        };
        adam(&mut w, &gw, &mut mw, &mut vw);
        adam(&mut b, &gb, &mut mb, &mut vb);
    }
    let xt = standardise(test);
    let mut out = vec![0f32; test.rows * classes];
    affine(&xt, d, &w, &b, classes, &mut out);
    out.chunks_exact(classes)
        .map(|row| argmax(&row.iter().map(|&v| f64::from(v)).collect::<Vec<_>>()))
        .collect()
}

/// `out = x · w + b` for row-major `x` (`d` columns) and `w` (`d × classes`), in parallel
/// over blocks of rows.
fn affine(x: &[f32], d: usize, w: &[f32], b: &[f32], classes: usize, out: &mut [f32]) {
    const BLOCK: usize = 1024;
    out.par_chunks_mut(BLOCK * classes)
        .zip(x.par_chunks(BLOCK * d))
        .for_each(|(o, xb)| {
            let rows = xb.len() / d;
            matmul(
                rows,
                classes,
                d,
                Output::rows(o, classes),
                Operand::rows(xb, d),
                Operand::rows(w, classes),
                false,
            );
            for row in o.chunks_exact_mut(classes) {
                for (v, bias) in row.iter_mut().zip(b) {
                    *v += bias;
                }
            }
        });
}

fn argmax(values: &[f64]) -> usize {
    values
        .iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 {
                (i, v)
            } else {
                best
            }
        })
        .0
}

#[cfg(test)]
mod tests {
    use super::*;
    use natview_core::linalg::l2_normalise;

    /// `classes` classes of unit vectors in 16-d around their own centres (`spread` noise),
    /// two views per listing.
    fn labelled(
        classes: usize,
        per_class: usize,
        spread: f32,
    ) -> (Matrix, Vec<Option<usize>>, Vec<usize>) {
        let mut rng = SplitMix64::new(5);
        let centres: Vec<Vec<f32>> = (0..classes)
            .map(|_| (0..16).map(|_| rng.next_normal() as f32).collect())
            .collect();
        let mut rows = Vec::new();
        let mut class = Vec::new();
        let mut listing = Vec::new();
        for (c, centre) in centres.iter().enumerate() {
            for i in 0..per_class {
                let mut v: Vec<f32> = centre
                    .iter()
                    .map(|x| x + spread * rng.next_normal() as f32)
                    .collect();
                l2_normalise(&mut v);
                rows.push(v);
                class.push(Some(c));
                listing.push(c * per_class + i / 2);
            }
        }
        (Matrix::from_rows(&rows).expect("rows"), class, listing)
    }

    #[test]
    fn separable_classes_are_learned_and_more_labels_help_on_harder_ones() {
        let names: Vec<String> = (0..4).map(|c| format!("c{c}")).collect();
        let (matrix, class, listing) = labelled(4, 200, 0.3);
        let report = low_shot_probes(&matrix, &class, &names, &listing, &ProbeOptions::default())
            .expect("probes");
        assert_eq!(report.labelled, 800);
        assert_eq!(report.pool + report.test, 800);
        let full = report.rows.last().expect("100 %");
        assert!(full.knn > 0.95 && full.linear > 0.95, "{report:?}");
        assert!(report.majority < 0.5);
        // Harder classes: 100 % of the labels beats 1 % for both probes.
        let (matrix, class, listing) = labelled(4, 200, 1.6);
        let report = low_shot_probes(&matrix, &class, &names, &listing, &ProbeOptions::default())
            .expect("probes");
        let (one, all) = (&report.rows[0], &report.rows[2]);
        assert!(all.knn > one.knn && all.linear > one.linear, "{report:?}");
        assert!(all.linear > report.majority + 0.1, "{report:?}");
        // Same seed, same figures.
        let again = low_shot_probes(&matrix, &class, &names, &listing, &ProbeOptions::default())
            .expect("probes");
        assert_eq!(report, again);
    }

    #[test]
    fn one_class_or_mismatched_input_is_refused() {
        let (matrix, mut class, listing) = labelled(2, 10, 0.3);
        for c in class.iter_mut() {
            *c = Some(0);
        }
        let error = low_shot_probes(&matrix, &class, &[], &listing, &ProbeOptions::default())
            .expect_err("refused");
        assert!(error.to_string().contains("at least 2 classes"), "{error}");
        let error = low_shot_probes(
            &matrix,
            &class[..3],
            &[],
            &listing,
            &ProbeOptions::default(),
        )
        .expect_err("refused");
        assert!(error.to_string().contains("embeddings"), "{error}");
    }
}
