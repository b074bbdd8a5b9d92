//! Textures of thumbnails, uploaded on first use (only what scrolls into view) and kept.

use crate::app::Session;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Item id → uploaded texture; plus the texture of the last external query image.
#[derive(Default)]
pub struct ThumbnailCache {
    textures: HashMap<usize, egui::TextureHandle>,
    external: Option<(PathBuf, egui::TextureHandle)>,
}

impl ThumbnailCache {
    /// The texture of item `id`, uploading it the first time (`None` if it has no thumbnail).
    pub fn get(
        &mut self,
        ctx: &egui::Context,
        session: &Session,
        id: usize,
    ) -> Option<egui::TextureHandle> {
        if let Some(texture) = self.textures.get(&id) {
            return Some(texture.clone());
        }
        let image = session.thumbnails.get(id)?.as_ref()?;
        let texture = ctx.load_texture(
            format!("thumb-{id}"),
            image.clone(),
            egui::TextureOptions::LINEAR,
        );
        self.textures.insert(id, texture.clone());
        Some(texture)
    }

    /// The texture of an external query image (kept while the same file is the query).
    pub fn external(
        &mut self,
        ctx: &egui::Context,
        path: &Path,
        image: Option<&egui::ColorImage>,
    ) -> Option<egui::TextureHandle> {
        if let Some((cached, texture)) = &self.external {
            if cached == path {
                return Some(texture.clone());
            }
        }
        let texture = ctx.load_texture(
            format!("query-{}", path.display()),
            image?.clone(),
            egui::TextureOptions::LINEAR,
        );
        self.external = Some((path.to_path_buf(), texture.clone()));
        Some(texture)
    }

    /// Number of uploaded textures.
    pub fn len(&self) -> usize {
        self.textures.len()
    }

    /// Whether nothing was uploaded yet.
    pub fn is_empty(&self) -> bool {
        self.textures.is_empty()
    }
}

/// A clickable thumbnail with an accessible name and a hover text; returns its response.
pub fn thumbnail_button(
    ui: &mut egui::Ui,
    texture: Option<egui::TextureHandle>,
    size_px: f32,
    name: String,
    hover: String,
    selected: bool,
) -> egui::Response {
    let size = egui::vec2(size_px, size_px);
    let response = match texture {
        Some(texture) => ui.add(
            egui::Image::new(&texture)
                .fit_to_exact_size(size)
                .alt_text(name.clone())
                .sense(egui::Sense::click()),
        ),
        None => {
            let (rect, response) = ui.allocate_exact_size(size, egui::Sense::click());
            ui.painter()
                .rect_filled(rect, 2.0, egui::Color32::from_gray(60));
            response
        }
    };
    if selected {
        ui.painter().rect_stroke(
            response.rect.expand(1.0),
            2.0,
            egui::Stroke::new(2.0, super::theme::SELECTED),
            egui::StrokeKind::Outside,
        );
    }
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, true, name.clone()));
    response.on_hover_text(hover)
}

/// Hover text of an item: its listing, label and path.
pub fn item_hover_text(session: &Session, id: usize) -> String {
    let item = &session.set.items[id];
    let mut text = format!("{} · item {id}", item.listing);
    if let Some(label) = &item.label {
        text.push_str(&format!("\n{label}"));
    }
    text.push_str(&format!("\n{}", item.path.display()));
    text
}
