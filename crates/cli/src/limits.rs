//! Caps on the command line's size arguments, each refused with a message that says the range
//! and why: chart sizes, neighbour counts and image sides that would otherwise ask for
//! unbounded memory.

/// A whole number in `min..=max`; `Err` says it is out of range and `why`.
fn count_in(text: &str, min: usize, max: usize, why: &str) -> Result<usize, String> {
    let n: usize = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a whole number"))?;
    if (min..=max).contains(&n) {
        Ok(n)
    } else {
        Err(format!("{n} is out of range: {why}"))
    }
}

/// `heatmap --listings`: up to the chart's cap.
pub(super) fn chart_listings(text: &str) -> Result<usize, String> {
    use natview_analysis::{MAX_CHART_ROWS, MAX_LISTINGS};
    count_in(
        text,
        2,
        MAX_LISTINGS,
        &format!(
            "a quadrant chart takes 2 to {MAX_LISTINGS} listings (its matrix has listings × views \
             rows on a side, at most {MAX_CHART_ROWS})"
        ),
    )
}

/// `heatmap --views`: up to the chart's cap.
pub(super) fn chart_views(text: &str) -> Result<usize, String> {
    use natview_analysis::{MAX_CHART_ROWS, MAX_VIEWS};
    count_in(
        text,
        2,
        MAX_VIEWS,
        &format!(
            "a quadrant chart takes 2 to {MAX_VIEWS} views per listing (its matrix has listings × \
             views rows on a side, at most {MAX_CHART_ROWS})"
        ),
    )
}

/// Most neighbours one query lists.
const MAX_NEIGHBOURS: usize = 10_000;

/// `neighbours -k`: a list a person reads (and a search that stays small).
pub(super) fn neighbour_count(text: &str) -> Result<usize, String> {
    count_in(
        text,
        1,
        MAX_NEIGHBOURS,
        &format!("a query lists 1 to {MAX_NEIGHBOURS} neighbours"),
    )
}

/// Largest image side `bench expand` writes: 4,096 pixels (48 MiB a decoded image).
const MAX_WRITTEN_PX: usize = 4_096;

/// `bench expand --size`: the side of the images written.
pub fn written_size(text: &str) -> Result<u32, String> {
    count_in(
        text,
        8,
        MAX_WRITTEN_PX,
        &format!("written images are 8 to {MAX_WRITTEN_PX} pixels a side"),
    )
    .map(|n| n as u32)
}

/// Largest encoder input natview runs: 2,048 pixels a side (a batch of 16 such images is
/// already 0.8 GB of input before the network's own activations).
const MAX_INPUT_PX: usize = 2_048;

/// `--size`: an encoder input size natview can hold in memory.
pub(super) fn input_size(text: &str) -> Result<u32, String> {
    count_in(
        text,
        8,
        MAX_INPUT_PX,
        &format!(
            "the encoder input is 8 to {MAX_INPUT_PX} pixels a side (a batch of larger images \
             needs many GB)"
        ),
    )
    .map(|n| n as u32)
}
