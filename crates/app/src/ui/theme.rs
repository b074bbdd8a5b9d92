//! Every colour and size the views use, in one place.

use egui::Color32;

/// Marks a neighbour that is a view of the query's listing.
pub const SAME_LISTING: Color32 = Color32::from_rgb(26, 152, 80);
/// Outline of the selected thumbnail.
pub const SELECTED: Color32 = Color32::from_rgb(255, 190, 40);
/// Error text.
pub const ERROR: Color32 = Color32::from_rgb(215, 48, 39);
/// Secondary text.
pub const MUTED: Color32 = Color32::from_gray(140);
/// Side of a thumbnail in the gallery.
pub const THUMB_PX: f32 = 64.0;
/// Side of a thumbnail in the neighbours list.
pub const NEIGHBOUR_THUMB_PX: f32 = 56.0;
/// Gap between thumbnails.
pub const GAP_PX: f32 = 4.0;

/// Adds the bundled DejaVu Sans after egui's own fonts, so arrows, ellipses and other symbols in
/// dataset names and labels draw instead of showing as missing glyphs.
pub fn install_fonts(ctx: &egui::Context) {
    let families = [egui::FontFamily::Proportional, egui::FontFamily::Monospace]
        .into_iter()
        .map(|family| egui::epaint::text::InsertFontFamily {
            family,
            priority: egui::epaint::text::FontPriority::Lowest,
        })
        .collect();
    ctx.add_font(egui::epaint::text::FontInsert {
        name: "DejaVuSans".into(),
        data: egui::FontData::from_static(natview_analysis::report::BUNDLED_FONT),
        families,
    });
}
