//! Rendered reports: the quadrant chart as a PNG, and the text painter it uses.

mod heatmap;
mod text;

pub use heatmap::{
    colour_range, diverging_colour, render_quadrant_chart, HeatmapLayout, HeatmapOptions, GREEN,
    RED, YELLOW,
};
pub use text::{TextPainter, BUNDLED_FONT};
