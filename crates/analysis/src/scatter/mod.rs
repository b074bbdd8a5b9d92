//! Scatters of millions of points, headless: a grid for picking and selection ([`PointGrid`]),
//! a rasteriser drawing every point into one image with density shading and choosing the points
//! that get thumbnails ([`rasterise`]), and a worker that draws off the window's thread
//! ([`ScatterRasteriser`]).

mod colours;
mod grid;
mod raster;
mod worker;

pub use colours::{categorical, full_palette, Categories, OTHER, PALETTE};
pub use grid::{bounds_of, PointGrid};
pub use raster::{rasterise, Raster, RasterMode, ScatterLayer, ScatterStyle, ScatterView};
pub use worker::ScatterRasteriser;
