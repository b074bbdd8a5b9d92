//! The quadrant chart: L listings × V views, ordered listing by listing, and their cosine
//! similarity matrix; diagonal V×V blocks are intra-listing pairs, the rest inter-listing.

use super::stats::{pair_stats, PairStats};
use super::AnalysisError;
use natview_core::dataset::{group_by_listing, Item};
use natview_core::linalg::{similarity, Matrix};
use natview_core::rng::SplitMix64;
use serde::{Deserialize, Serialize};

/// Most listings one chart draws.
pub const MAX_LISTINGS: usize = 2_000;
/// Most views per listing one chart draws.
pub const MAX_VIEWS: usize = 64;
/// Most rows (listings × views) of a chart's square similarity matrix: 8,192 rows are a
/// 256 MiB matrix and, at 2 pixels a cell, a PNG 16,384 pixels wide.
pub const MAX_CHART_ROWS: usize = 8_192;
/// Most views per listing chosen from the data when none are asked for.
pub const AUTO_VIEWS_MAX: usize = 4;

/// Which listings and how many views to chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuadrantParams {
    /// Number of listings (L).
    pub listings: usize,
    /// Views per listing (V); listings with fewer views are not eligible. `None`: chosen from
    /// the data (see [`ViewsChoice::FromData`]).
    #[serde(default)]
    pub views: Option<usize>,
    /// Seed of the random choice of listings.
    pub seed: u64,
    /// Only listings whose items carry this label.
    pub label: Option<String>,
    /// Exactly these listings (by name), instead of a random choice.
    pub picked: Vec<String>,
}

impl Default for QuadrantParams {
    fn default() -> Self {
        Self {
            listings: 16,
            views: None,
            seed: 0,
            label: None,
            picked: Vec::new(),
        }
    }
}

/// How the views per listing of a chart were decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ViewsChoice {
    /// As asked.
    Asked,
    /// From the data: the view count of the median candidate listing (of the fewest-viewed
    /// picked listing when listings are picked), at least 2 and at most [`AUTO_VIEWS_MAX`],
    /// lowered while fewer than two listings have that many.
    FromData {
        /// The median (or, for picked listings, the smallest) view count seen.
        typical: usize,
        /// Whether the listings were picked (`typical` is then the smallest count).
        picked: bool,
    },
}

/// A computed quadrant chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuadrantChart {
    /// Listing names, in chart order.
    pub listings: Vec<String>,
    /// Views per listing.
    pub views: usize,
    /// How `views` was decided.
    pub views_choice: ViewsChoice,
    /// Row numbers (into the embedding matrix) in chart order: listing by listing.
    pub rows: Vec<usize>,
    /// Row-major `n × n` cosine similarities, `n = listings × views`.
    pub similarity: Vec<f32>,
    /// Intra/inter statistics over the off-diagonal pairs of the chart.
    pub stats: PairStats,
}

impl QuadrantChart {
    /// Side of the matrix.
    pub fn size(&self) -> usize {
        self.rows.len()
    }

    /// Similarity of chart positions `i` and `j`.
    pub fn at(&self, i: usize, j: usize) -> f32 {
        self.similarity[i * self.size() + j]
    }

    /// How many views per listing the chart uses and why, in words.
    pub fn views_note(&self) -> String {
        match self.views_choice {
            ViewsChoice::Asked => format!("{} views per listing, as asked", self.views),
            ViewsChoice::FromData { typical, picked } => format!(
                "{} views per listing, chosen from the data ({} {typical} view{}; at most \
                 {AUTO_VIEWS_MAX} unless asked)",
                self.views,
                if picked {
                    "the picked listings have at least"
                } else {
                    "the median listing has"
                },
                if typical == 1 { "" } else { "s" },
            ),
        }
    }
}

/// Why `listings` (name, item ids) can have no quadrant chart whatever is asked, in words;
/// `None` when at least two listings have two views or more.
pub fn why_no_quadrant_chart(listings: &[(String, Vec<usize>)]) -> Option<String> {
    let multi_view = listings.iter().filter(|(_, ids)| ids.len() >= 2).count();
    match multi_view {
        2.. => None,
        0 => Some(
            "No quadrant chart for this dataset: every listing has a single image. The chart \
             compares the views of each listing with each other and with other listings, so it \
             needs at least two listings with two or more images. In a folder dataset put each \
             listing's images in a subfolder of its own; a manifest names them in its `listing` \
             column."
                .into(),
        ),
        _ => Some(format!(
            "No quadrant chart for this dataset: only one of its {} listings has two or more \
             images, and the chart compares listings with each other (it needs at least two \
             listings with two or more images).",
            listings.len()
        )),
    }
}

/// Views per listing when none are asked for: see [`ViewsChoice::FromData`].
fn views_from_data(candidates: &[(String, Vec<usize>)], picked: bool) -> (usize, usize) {
    let mut counts: Vec<usize> = candidates.iter().map(|(_, rows)| rows.len()).collect();
    counts.sort_unstable();
    let typical = if picked {
        counts.first().copied().unwrap_or(0)
    } else {
        counts.get(counts.len() / 2).copied().unwrap_or(0)
    };
    let mut views = typical.clamp(2, AUTO_VIEWS_MAX);
    while views > 2 && counts.iter().filter(|&&n| n >= views).count() < 2 {
        views -= 1;
    }
    (views, typical)
}

/// Chooses listings per `params` and computes their similarity matrix and statistics.
pub fn quadrant_chart(
    matrix: &Matrix,
    items: &[Item],
    params: &QuadrantParams,
) -> Result<QuadrantChart, AnalysisError> {
    if params.views.is_some_and(|v| v < 2) || (params.listings < 2 && params.picked.is_empty()) {
        return Err(AnalysisError::NotEnoughData(
            "a quadrant chart needs at least 2 listings and 2 views per listing".into(),
        ));
    }
    if params.views.is_some_and(|v| v > MAX_VIEWS)
        || params.listings.max(params.picked.len()) > MAX_LISTINGS
    {
        return Err(AnalysisError::NotEnoughData(format!(
            "a quadrant chart draws at most {MAX_LISTINGS} listings and {MAX_VIEWS} views per \
             listing (asked: {} listings × {} views)",
            params.listings.max(params.picked.len()),
            params
                .views
                .map_or_else(|| "automatic".to_string(), |v| v.to_string())
        )));
    }
    let candidates: Vec<(String, Vec<usize>)> = group_by_listing(items)
        .into_iter()
        .filter(|(name, rows)| {
            let labelled = match &params.label {
                Some(label) => rows
                    .iter()
                    .any(|&r| items[r].label.as_deref() == Some(label)),
                None => true,
            };
            labelled && (params.picked.is_empty() || params.picked.contains(name))
        })
        .collect();
    let (views, views_choice) = match params.views {
        Some(views) => (views, ViewsChoice::Asked),
        None => {
            let picked = !params.picked.is_empty();
            let (views, typical) = views_from_data(&candidates, picked);
            (views, ViewsChoice::FromData { typical, picked })
        }
    };
    let mut eligible: Vec<(String, Vec<usize>)> = candidates
        .into_iter()
        .filter(|(_, rows)| rows.len() >= views)
        .collect();
    let chosen: Vec<(String, Vec<usize>)> = if params.picked.is_empty() {
        SplitMix64::new(params.seed).shuffle(&mut eligible);
        eligible.truncate(params.listings);
        eligible
    } else {
        let mut chosen = Vec::new();
        for name in &params.picked {
            match eligible.iter().find(|(l, _)| l == name) {
                Some(found) => chosen.push(found.clone()),
                None => {
                    return Err(AnalysisError::NotEnoughData(format!(
                        "listing `{name}` does not exist or has fewer than {views} views"
                    )))
                }
            }
        }
        chosen
    };
    if chosen.len() < 2 {
        return Err(AnalysisError::NotEnoughData(format!(
            "only {} listing(s) have at least {views} views{}",
            chosen.len(),
            params
                .label
                .as_ref()
                .map(|l| format!(" and label `{l}`"))
                .unwrap_or_default()
        )));
    }
    let n = chosen.len() * views;
    if n > MAX_CHART_ROWS {
        return Err(AnalysisError::NotEnoughData(format!(
            "{} listings × {views} views make a {n} × {n} matrix; a quadrant chart has at most \
             {MAX_CHART_ROWS} rows (e.g. 128 listings × 64 views): ask for fewer listings or views",
            chosen.len()
        )));
    }
    let rows: Vec<usize> = chosen
        .iter()
        .flat_map(|(_, rows)| rows[..views].iter().copied())
        .collect();
    let sub = matrix.select_rows(&rows);
    let sim = similarity(&sub, &sub)?;
    let (mut intra, mut inter) = (Vec::new(), Vec::new());
    for i in 0..n {
        for j in (i + 1)..n {
            if i / views == j / views {
                intra.push(sim[i * n + j]);
            } else {
                inter.push(sim[i * n + j]);
            }
        }
    }
    Ok(QuadrantChart {
        listings: chosen.into_iter().map(|(l, _)| l).collect(),
        views,
        views_choice,
        rows,
        similarity: sim,
        stats: pair_stats(&intra, &inter, false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(listing: &str) -> Item {
        Item {
            id: 0,
            path: "x.png".into(),
            listing: listing.into(),
            label: None,
            metadata: Default::default(),
        }
    }

    #[test]
    fn picked_listings_give_blocks_in_order_with_exact_statistics() {
        // Listing a: two copies of e1; listing b: two copies of e2; c has one view only.
        let items = vec![item("a"), item("b"), item("a"), item("b"), item("c")];
        let m = Matrix {
            rows: 5,
            dim: 2,
            data: vec![1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0],
        };
        let params = QuadrantParams {
            views: Some(2),
            picked: vec!["b".into(), "a".into()],
            ..Default::default()
        };
        let chart = quadrant_chart(&m, &items, &params).expect("chart");
        assert_eq!(chart.listings, vec!["b", "a"]);
        assert_eq!(chart.rows, vec![1, 3, 0, 2]);
        assert_eq!(chart.at(0, 1), 1.0);
        assert_eq!(chart.at(0, 2), 0.0);
        assert_eq!(chart.stats.intra_mean, 1.0);
        assert_eq!(chart.stats.inter_mean, 0.0);
        assert_eq!(chart.stats.auc, 1.0);
        let err = quadrant_chart(
            &m,
            &items,
            &QuadrantParams {
                views: Some(2),
                picked: vec!["c".into(), "a".into()],
                ..Default::default()
            },
        )
        .expect_err("c has one view");
        assert!(err.to_string().contains("`c`"));
    }

    /// `listings` listings named `l0`, `l1`, … of `views` items each, on the unit axes.
    fn listings_of(views: &[usize]) -> (Vec<Item>, Matrix) {
        let items: Vec<Item> = views
            .iter()
            .enumerate()
            .flat_map(|(l, &v)| (0..v).map(move |_| item(&format!("l{l}"))))
            .collect();
        let n = items.len();
        let data = (0..n)
            .flat_map(|i| [(i % 2) as f32, 1.0 - (i % 2) as f32])
            .collect();
        (
            items,
            Matrix {
                rows: n,
                dim: 2,
                data,
            },
        )
    }

    #[test]
    fn views_are_chosen_from_the_data_when_not_asked() {
        // Listings of three views: three per listing, said so.
        let (items, m) = listings_of(&[3, 3, 3, 2]);
        let chart = quadrant_chart(&m, &items, &QuadrantParams::default()).expect("chart");
        assert_eq!(chart.views, 3);
        assert_eq!(chart.listings.len(), 3);
        assert_eq!(
            chart.views_note(),
            "3 views per listing, chosen from the data (the median listing has 3 views; \
             at most 4 unless asked)"
        );
        // Many views: at most four unless asked for more.
        let (items, m) = listings_of(&[9, 7, 8]);
        let chart = quadrant_chart(&m, &items, &QuadrantParams::default()).expect("chart");
        assert_eq!(chart.views, 4);
        let asked = QuadrantParams {
            views: Some(7),
            ..Default::default()
        };
        let chart = quadrant_chart(&m, &items, &asked).expect("chart");
        assert_eq!((chart.views, chart.listings.len()), (7, 3));
        assert_eq!(chart.views_note(), "7 views per listing, as asked");
        // Mostly single images: two views, from the listings that have them.
        let (items, m) = listings_of(&[1, 1, 1, 2, 5]);
        let chart = quadrant_chart(&m, &items, &QuadrantParams::default()).expect("chart");
        assert_eq!((chart.views, chart.listings.len()), (2, 2));
        // Picked listings: as many views as the fewest-viewed of them has.
        let picked = QuadrantParams {
            picked: vec!["l0".into(), "l1".into()],
            ..Default::default()
        };
        let (items, m) = listings_of(&[3, 5]);
        let chart = quadrant_chart(&m, &items, &picked).expect("chart");
        assert_eq!(chart.views, 3);
        assert!(chart
            .views_note()
            .contains("the picked listings have at least 3 views"));
        // An explicit count too large for the data stays an error saying so.
        let (items, m) = listings_of(&[3, 3, 3]);
        let too_many = QuadrantParams {
            views: Some(4),
            ..Default::default()
        };
        let err = quadrant_chart(&m, &items, &too_many).expect_err("no listing has 4");
        assert_eq!(err.to_string(), "only 0 listing(s) have at least 4 views");
    }

    #[test]
    fn single_view_listings_are_explained_not_charted() {
        let (items, m) = listings_of(&[1, 1, 1, 1]);
        let why = why_no_quadrant_chart(&group_by_listing(&items)).expect("no chart");
        assert!(why.contains("every listing has a single image"), "{why}");
        assert!(why.contains("subfolder"), "{why}");
        let (one, _) = listings_of(&[1, 3, 1]);
        let why = why_no_quadrant_chart(&group_by_listing(&one)).expect("no chart");
        assert!(why.contains("only one of its 3 listings"), "{why}");
        let (two, _) = listings_of(&[1, 2, 2]);
        assert_eq!(why_no_quadrant_chart(&group_by_listing(&two)), None);
        // Asked all the same, the chart is a plain error rather than a panic.
        assert!(quadrant_chart(&m, &items, &QuadrantParams::default()).is_err());
    }

    #[test]
    fn charts_beyond_the_caps_are_refused_with_the_caps() {
        let (items, m) = listings_of(&[3, 3]);
        let err = quadrant_chart(
            &m,
            &items,
            &QuadrantParams {
                views: Some(MAX_VIEWS + 1),
                ..Default::default()
            },
        )
        .expect_err("too many views");
        assert!(
            err.to_string()
                .contains("at most 2000 listings and 64 views"),
            "{err}"
        );
        // 129 listings × 64 views: each allowed, their matrix is not.
        let (items, m) = listings_of(&[64; 129]);
        let err = quadrant_chart(
            &m,
            &items,
            &QuadrantParams {
                listings: 200,
                views: Some(64),
                ..Default::default()
            },
        )
        .expect_err("matrix too large");
        assert_eq!(
            err.to_string(),
            "129 listings × 64 views make a 8256 × 8256 matrix; a quadrant chart has at most \
             8192 rows (e.g. 128 listings × 64 views): ask for fewer listings or views"
        );
    }
}
