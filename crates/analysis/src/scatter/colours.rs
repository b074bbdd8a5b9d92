//! Categorical colours for scatters, shared by the app and the CLI's PNGs: the most frequent
//! categories get palette colours, the rest (and points without a value) one grey.

use std::collections::HashMap;

/// Categorical colours (Tableau 20, dark and light interleaved for neighbours to differ).
pub const PALETTE: [[u8; 3]; 20] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [188, 189, 34],
    [23, 190, 207],
    [174, 199, 232],
    [255, 187, 120],
    [152, 223, 138],
    [255, 152, 150],
    [197, 176, 213],
    [196, 156, 148],
    [247, 182, 210],
    [219, 219, 141],
    [158, 218, 229],
    [127, 127, 127],
    [199, 199, 199],
];

/// The grey of points outside the coloured categories (palette index `PALETTE.len()`).
pub const OTHER: [u8; 3] = [110, 110, 110];

/// [`PALETTE`] followed by [`OTHER`]: what a [`super::ScatterLayer`]'s indices refer to.
pub fn full_palette() -> Vec<[u8; 3]> {
    let mut palette = PALETTE.to_vec();
    palette.push(OTHER);
    palette
}

/// A palette index per point and the legend (name with its count, colour).
#[derive(Debug, Clone, PartialEq)]
pub struct Categories {
    /// Palette index of each point.
    pub colours: Vec<u8>,
    /// "name (count)" and colour of each coloured category, then "other / none (count)".
    pub legend: Vec<(String, [u8; 3])>,
}

/// Colours `count` points by `category`: the most frequent categories (ties by name) get
/// palette colours, the rest and points without a value [`OTHER`].
pub fn categorical<'a>(count: usize, category: impl Fn(usize) -> Option<&'a str>) -> Categories {
    let mut frequency: HashMap<&str, usize> = HashMap::new();
    for id in 0..count {
        if let Some(v) = category(id) {
            *frequency.entry(v).or_default() += 1;
        }
    }
    let mut ranked: Vec<(&str, usize)> = frequency.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let coloured = if ranked.len() > PALETTE.len() {
        PALETTE.len() - 1
    } else {
        ranked.len()
    };
    let slot: HashMap<&str, u8> = ranked
        .iter()
        .take(coloured)
        .enumerate()
        .map(|(i, (name, _))| (*name, i as u8))
        .collect();
    let colours: Vec<u8> = (0..count)
        .map(|id| {
            category(id)
                .and_then(|v| slot.get(v).copied())
                .unwrap_or(PALETTE.len() as u8)
        })
        .collect();
    let mut legend: Vec<(String, [u8; 3])> = ranked
        .iter()
        .take(coloured)
        .enumerate()
        .map(|(i, (name, n))| (format!("{name} ({n})"), PALETTE[i]))
        .collect();
    let others = count - ranked.iter().take(coloured).map(|(_, n)| n).sum::<usize>();
    if others > 0 {
        legend.push((format!("other / none ({others})"), OTHER));
    }
    Categories { colours, legend }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frequent_categories_come_first_and_the_rest_is_grey() {
        let values = [Some("b"), Some("a"), Some("b"), None, Some("c"), Some("b")];
        let c = categorical(values.len(), |i| values[i]);
        assert_eq!(c.colours, vec![0, 1, 0, 20, 2, 0]);
        assert_eq!(c.legend[0], ("b (3)".to_string(), PALETTE[0]));
        assert_eq!(
            c.legend.last(),
            Some(&("other / none (1)".to_string(), OTHER))
        );
    }
}
