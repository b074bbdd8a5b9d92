use super::*;
use crate::layout::Unobserved;
use natview_core::linalg::l2_normalise;
use natview_core::rng::SplitMix64;
use natview_index::{HnswParams, NeighbourIndex};

/// `listings × views` unit vectors in 32-d: each listing's views around its own random centre
/// (cosine ≈ 0.9 within, ≈ 0 between); then planted faults:
/// - item 5 (listing 1) is an exact re-upload of item 0 (listing 0) with tiny noise, and item
///   9 (listing 2) one of item 0 too — one cluster of three across three listings;
/// - item 13 (listing 3) is a view of listing 30's item — an outlier in its listing;
/// - listings 10 and 11 share one centre — confusable (merged);
/// - listing 20's views 2 and 3 sit at another centre than its views 0 and 1 — split.
fn planted(listings: usize, views: usize) -> (Matrix, Vec<usize>) {
    let dim = 32;
    let mut rng = SplitMix64::new(7);
    let mut centres: Vec<Vec<f32>> = (0..listings)
        .map(|_| (0..dim).map(|_| rng.next_normal() as f32).collect())
        .collect();
    centres[11] = centres[10].clone();
    let mut other = SplitMix64::new(8);
    let elsewhere: Vec<f32> = (0..dim).map(|_| other.next_normal() as f32).collect();
    let mut rows = Vec::new();
    let mut listing = Vec::new();
    for (l, centre) in centres.iter().enumerate() {
        for view in 0..views {
            let centre = if l == 20 && view >= 2 {
                &elsewhere
            } else {
                centre
            };
            let mut v: Vec<f32> = centre
                .iter()
                .map(|c| c + 0.35 * rng.next_normal() as f32)
                .collect();
            l2_normalise(&mut v);
            rows.push(v);
            listing.push(l);
        }
    }
    let noisy = |rng: &mut SplitMix64, v: &[f32], s: f32| {
        let mut w: Vec<f32> = v.iter().map(|x| x + s * rng.next_normal() as f32).collect();
        l2_normalise(&mut w);
        w
    };
    rows[5] = noisy(&mut rng, &rows[0].clone(), 0.003);
    rows[9] = noisy(&mut rng, &rows[0].clone(), 0.003);
    rows[13] = noisy(&mut rng, &rows[30 * views].clone(), 0.2);
    (Matrix::from_rows(&rows).expect("rows"), listing)
}

fn input<'a>(
    matrix: &'a Matrix,
    listing: &'a [usize],
    source: &'a dyn NeighbourSource,
    judged: &'a dyn Fn(usize, usize) -> bool,
) -> ReviewInput<'a> {
    ReviewInput {
        matrix,
        listing,
        neighbours: source,
        judged,
    }
}

#[test]
fn planted_duplicates_come_out_as_one_cluster_with_hnsw_as_with_brute_force() {
    let (matrix, listing) = planted(60, 4);
    let none = |_: usize, _: usize| false;
    let index = NeighbourIndex::build(&matrix, HnswParams::default()).expect("index");
    for source in [&BruteForce as &dyn NeighbourSource, &index] {
        let input = input(&matrix, &listing, source, &none);
        let queue = review_queue(
            ReviewKind::NearDuplicates,
            &input,
            &ReviewOptions::default(),
            None,
            &mut Unobserved,
        )
        .expect("queue");
        assert_eq!(queue.clusters, vec![vec![0, 5, 9]], "{}", queue.summary);
        assert_eq!(queue.pairs.len(), 3);
        assert!(queue
            .pairs
            .iter()
            .all(|p| p.similarity > 0.99 && p.cluster == Some(0)));
        assert!(queue
            .pairs
            .windows(2)
            .all(|w| w[0].similarity >= w[1].similarity));
    }
    // Lowering the threshold on the same candidates lets more pairs in, never fewer.
    let input = input(&matrix, &listing, &BruteForce, &none);
    let candidates = cross_listing_neighbours(&input, 10, &mut Unobserved).expect("candidates");
    let strict = near_duplicates(&candidates, 0.95);
    let loose = near_duplicates(&candidates, 0.5);
    assert!(loose.pairs.len() > strict.pairs.len());
    // No pair joins two views of one listing, and each item's nearest is in the histogram.
    assert!(candidates
        .pairs
        .iter()
        .all(|&(a, b, _)| listing[a as usize] != listing[b as usize]));
    let counted: usize = strict.histogram.counts.iter().sum();
    assert_eq!(counted, matrix.rows);
    assert!(strict.histogram.count_from(0.95) >= 3);
}

#[test]
fn the_planted_outlier_and_confusable_listings_lead_their_queues() {
    let (matrix, listing) = planted(60, 4);
    let none = |_: usize, _: usize| false;
    let input = input(&matrix, &listing, &BruteForce, &none);
    let options = ReviewOptions::default();
    let outliers = review_queue(
        ReviewKind::ListingOutliers,
        &input,
        &options,
        None,
        &mut Unobserved,
    )
    .expect("outliers");
    // The split listing leads (its groups are farther apart than any stray view); the planted
    // stray view leads the rest.
    assert!(
        outliers.pairs[0].why.starts_with("split"),
        "{:?}",
        &outliers.pairs[..3]
    );
    let stray = outliers
        .pairs
        .iter()
        .find(|p| !p.why.starts_with("split"))
        .expect("a stray view");
    assert_eq!(stray.a, 13, "{:?}", &outliers.pairs[..3]);
    assert_eq!(listing[stray.b], 3);
    let confusable = review_queue(
        ReviewKind::ConfusableListings,
        &input,
        &options,
        None,
        &mut Unobserved,
    )
    .expect("confusable");
    let top = &confusable.pairs[0];
    let mut pair = [listing[top.a], listing[top.b]];
    pair.sort();
    assert_eq!(pair, [10, 11], "{:?}", &confusable.pairs[..3]);
    // The two listings that share a centre are merged; no other pair is.
    assert!(top.why.starts_with("merged"), "{}", top.why);
    assert_eq!(
        confusable
            .pairs
            .iter()
            .filter(|p| p.why.starts_with("merged"))
            .count(),
        1
    );
    // The split listing is in the outliers queue as one split, and only it.
    let splits: Vec<&ReviewPair> = outliers
        .pairs
        .iter()
        .filter(|p| p.why.starts_with("split"))
        .collect();
    assert_eq!(splits.len(), 1, "{splits:?}");
    assert_eq!((listing[splits[0].a], listing[splits[0].b]), (20, 20));
    assert!(
        splits[0].why.contains("groups of 2 and 2"),
        "{}",
        splits[0].why
    );
    // Coherence: the typical listing near 1, the split one and the one with a stray view lower.
    let coherence = listing_coherence(&input);
    let typical = coherence[40].expect("4 views");
    assert!((typical - 1.0).abs() < 0.2, "{typical}");
    assert!(coherence[20].expect("4 views") < 0.6, "{:?}", coherence[20]);
    assert!(
        coherence[3].expect("4 views") < typical,
        "{:?}",
        coherence[3]
    );
}

#[test]
fn hard_pairs_sit_at_the_boundary_and_leave_out_judged_pairs() {
    assert_eq!(
        decision_boundary(&[0.8, 0.9], &[0.1, 0.2]).map(|t| t > 0.2 && t <= 0.8),
        Some(true)
    );
    assert_eq!(decision_boundary(&[], &[0.1]), None);
    let (matrix, listing) = planted(60, 4);
    let none = |_: usize, _: usize| false;
    let queue = review_queue(
        ReviewKind::HardPairs,
        &input(&matrix, &listing, &BruteForce, &none),
        &ReviewOptions::default(),
        None,
        &mut Unobserved,
    )
    .expect("hard");
    assert!(queue.pairs.windows(2).all(|w| w[0].score <= w[1].score));
    // The outlier's same-listing pairs are hard (low similarity within its listing).
    let total: usize = queue
        .summary
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("count");
    let first = &queue.pairs[0];
    let judged = move |a: usize, b: usize| (a, b) == (first.a, first.b);
    let again = review_queue(
        ReviewKind::HardPairs,
        &input(&matrix, &listing, &BruteForce, &judged),
        &ReviewOptions::default(),
        None,
        &mut Unobserved,
    )
    .expect("hard");
    assert!(
        again.summary.contains(&format!("{} unjudged", total - 1)),
        "{}",
        again.summary
    );
    assert_ne!((again.pairs[0].a, again.pairs[0].b), (first.a, first.b));
}

#[test]
fn kinds_parse_by_name_and_bad_input_is_refused() {
    for kind in ReviewKind::ALL {
        assert_eq!(ReviewKind::parse(kind.name()), Ok(kind));
    }
    assert!(ReviewKind::parse("dupes")
        .unwrap_err()
        .contains("near-duplicates"));
    let (matrix, _) = planted(40, 3);
    let none = |_: usize, _: usize| false;
    let short = vec![0usize; 3];
    let error = review_queue(
        ReviewKind::NearDuplicates,
        &input(&matrix, &short, &BruteForce, &none),
        &ReviewOptions::default(),
        None,
        &mut Unobserved,
    )
    .expect_err("refused");
    assert!(error.to_string().contains("listing numbers"), "{error}");
    // A flat folder (one view per listing) has no outliers or confusable listings, and says so.
    let flat: Vec<usize> = (0..matrix.rows).collect();
    let queue = listing_outliers(&input(&matrix, &flat, &BruteForce, &none)).expect("outliers");
    assert!(queue.pairs.is_empty() && queue.summary.contains("3 or more views"));
}
