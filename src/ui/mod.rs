//! The views of the desktop app, one file each. Views draw from the session and push
//! [`Command`](crate::app::Command)s; they never compute in the frame.

mod gallery;
mod menu;
mod neighbours;
mod status_bar;
pub mod theme;
mod thumbnails;

pub use gallery::{gallery_ui, GalleryState};
pub use menu::{menu_bar_ui, welcome_ui};
pub use neighbours::neighbours_ui;
pub use status_bar::status_bar_ui;
pub use thumbnails::ThumbnailCache;
