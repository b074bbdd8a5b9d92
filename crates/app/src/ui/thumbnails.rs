//! Thumbnails on screen: the window asks for the items it draws; a worker
//! ([`ThumbnailLoader`]) reads them from the workspace's thumbnail file (or the image files, in
//! a preview); they are uploaded into a few texture atlas pages whose slots are reused least
//! recently drawn first, so memory stays bounded however many images the dataset has.

use crate::Session;
use natview_pipeline::thumbs::{ThumbnailLoader, THUMBNAIL_PX};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// Side of an atlas page in pixels.
const PAGE_PX: usize = 2048;
/// A slot: the thumbnail plus a one-pixel border repeating its edge (no bleeding when scaled).
const SLOT_PX: usize = THUMBNAIL_PX as usize + 2;
/// Slots along a page's side.
const SLOTS_PER_SIDE: usize = PAGE_PX / SLOT_PX;
/// Atlas pages at most: 4 × 961 thumbnails (64 MB of texture memory).
const MAX_PAGES: usize = 4;

/// A thumbnail in the atlas: its page and where it lies in it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AtlasThumb {
    /// The page texture.
    pub texture: egui::TextureId,
    /// The thumbnail's rectangle in texture coordinates (0–1).
    pub uv: egui::Rect,
}

impl AtlasThumb {
    /// An image widget showing the thumbnail at `size`.
    pub fn image(&self, size: egui::Vec2) -> egui::Image<'static> {
        egui::Image::from_texture(egui::load::SizedTexture::new(self.texture, size))
            .uv(self.uv)
            .fit_to_exact_size(size)
    }

    /// A key grouping thumbnails by atlas page (to draw a page's thumbnails together).
    pub fn texture_order(&self) -> u64 {
        match self.texture {
            egui::TextureId::Managed(id) => id,
            egui::TextureId::User(id) => id,
        }
    }

    /// Paints the thumbnail into `rect`.
    pub fn paint(&self, painter: &egui::Painter, rect: egui::Rect) {
        painter.image(self.texture, rect, self.uv, egui::Color32::WHITE);
    }
}

/// The atlas: pages, which item holds which slot, and when each slot was last drawn.
#[derive(Default)]
pub struct ThumbnailCache {
    loader: Option<ThumbnailLoader>,
    /// The session the atlas holds thumbnails of (its workspace and items fingerprint).
    source_for: Option<(PathBuf, String)>,
    pages: Vec<egui::TextureHandle>,
    slot_of: HashMap<usize, usize>,
    owner: Vec<Option<usize>>,
    last_drawn: Vec<u64>,
    free: Vec<usize>,
    /// Items that have no thumbnail (never asked for again).
    missing: HashSet<usize>,
    /// Items asked for in this frame, in drawing order.
    wanted: Vec<usize>,
    wanted_set: HashSet<usize>,
    frame: u64,
    uploads: u64,
    external: Option<(PathBuf, egui::TextureHandle)>,
}

impl ThumbnailCache {
    /// Call at the start of a frame: follows the open session (a new one starts afresh) and
    /// uploads what the worker read.
    pub fn begin_frame(&mut self, ctx: &egui::Context, session: Option<&Session>) {
        self.frame += 1;
        self.wanted.clear();
        self.wanted_set.clear();
        let Some(session) = session else {
            return;
        };
        let (dir, items) = (session.workspace.dir(), &session.set.meta.items_fingerprint);
        let same = self
            .source_for
            .as_ref()
            .is_some_and(|(d, i)| d == dir && i == items);
        if !same {
            self.forget_all();
            let loader = self.loader.get_or_insert_with(|| {
                let ctx = ctx.clone();
                ThumbnailLoader::new(move || ctx.request_repaint())
            });
            loader.set_source(session.thumbnails.clone());
            self.source_for = Some((dir.to_path_buf(), items.clone()));
        }
        let Some(loader) = &self.loader else {
            return;
        };
        for loaded in loader.take_ready() {
            match loaded.image {
                Some(image) => self.upload(ctx, loaded.id, &image),
                None => {
                    self.missing.insert(loaded.id);
                }
            }
        }
    }

    /// Call at the end of a frame: asks the worker for what was drawn without a thumbnail.
    pub fn end_frame(&mut self) {
        if let Some(loader) = &self.loader {
            loader.want(&self.wanted);
        }
    }

    fn forget_all(&mut self) {
        self.slot_of.clear();
        self.missing.clear();
        self.free = (0..self.owner.len()).rev().collect();
        self.owner.iter_mut().for_each(|o| *o = None);
    }

    /// A free slot, adding a page or reusing the slot drawn longest ago (never one drawn in
    /// this frame); `None` when every slot is on screen now.
    fn take_slot(&mut self, ctx: &egui::Context) -> Option<usize> {
        if let Some(slot) = self.free.pop() {
            return Some(slot);
        }
        if self.pages.len() < MAX_PAGES {
            let page = self.pages.len();
            self.pages.push(ctx.load_texture(
                format!("thumbnail-atlas-{page}"),
                egui::ColorImage::filled([PAGE_PX, PAGE_PX], egui::Color32::TRANSPARENT),
                egui::TextureOptions::LINEAR,
            ));
            let per_page = SLOTS_PER_SIDE * SLOTS_PER_SIDE;
            let first = page * per_page;
            self.owner.resize(first + per_page, None);
            self.last_drawn.resize(first + per_page, 0);
            self.free.extend((first + 1..first + per_page).rev());
            return Some(first);
        }
        let (slot, &drawn) = self
            .last_drawn
            .iter()
            .enumerate()
            .min_by_key(|(_, drawn)| **drawn)?;
        if drawn >= self.frame {
            return None;
        }
        if let Some(old) = self.owner[slot].take() {
            self.slot_of.remove(&old);
        }
        Some(slot)
    }

    fn upload(&mut self, ctx: &egui::Context, id: usize, image: &image::RgbImage) {
        if self.slot_of.contains_key(&id) {
            return;
        }
        let Some(slot) = self.take_slot(ctx) else {
            return;
        };
        let padded = padded_rgba(image);
        let per_page = SLOTS_PER_SIDE * SLOTS_PER_SIDE;
        let (page, within) = (slot / per_page, slot % per_page);
        let at = [
            (within % SLOTS_PER_SIDE) * SLOT_PX,
            (within / SLOTS_PER_SIDE) * SLOT_PX,
        ];
        self.pages[page].set_partial(at, padded, egui::TextureOptions::LINEAR);
        self.owner[slot] = Some(id);
        self.last_drawn[slot] = self.frame;
        self.slot_of.insert(id, slot);
        self.uploads += 1;
    }

    fn thumb_at(&self, slot: usize) -> AtlasThumb {
        let per_page = SLOTS_PER_SIDE * SLOTS_PER_SIDE;
        let (page, within) = (slot / per_page, slot % per_page);
        let x = (within % SLOTS_PER_SIDE * SLOT_PX + 1) as f32;
        let y = (within / SLOTS_PER_SIDE * SLOT_PX + 1) as f32;
        let side = THUMBNAIL_PX as f32;
        let scale = 1.0 / PAGE_PX as f32;
        AtlasThumb {
            texture: self.pages[page].id(),
            uv: egui::Rect::from_min_size(
                egui::pos2(x * scale, y * scale),
                egui::vec2(side * scale, side * scale),
            ),
        }
    }

    /// The thumbnail of item `id` if it is in the atlas; else asks for it (drawn once read:
    /// the window is woken) and returns `None`.
    pub fn get(&mut self, id: usize) -> Option<AtlasThumb> {
        if let Some(&slot) = self.slot_of.get(&id) {
            self.last_drawn[slot] = self.frame;
            return Some(self.thumb_at(slot));
        }
        if !self.missing.contains(&id) && self.wanted_set.insert(id) {
            self.wanted.push(id);
        }
        None
    }

    /// Item `id`'s thumbnail as a clickable `side` × `side` image, or a grey square while it
    /// loads.
    pub fn clickable(&mut self, ui: &mut egui::Ui, id: usize, side: f32) -> egui::Response {
        match self.get(id) {
            Some(thumb) => ui.add(
                thumb
                    .image(egui::vec2(side, side))
                    .sense(egui::Sense::click()),
            ),
            None => {
                let (rect, response) =
                    ui.allocate_exact_size(egui::vec2(side, side), egui::Sense::click());
                ui.painter()
                    .rect_filled(rect, 2.0, egui::Color32::from_gray(60));
                response
            }
        }
    }

    /// The texture of an external query image (kept while the same file is the query).
    pub fn external(
        &mut self,
        ctx: &egui::Context,
        path: &Path,
        image: Option<&egui::ColorImage>,
    ) -> Option<AtlasThumb> {
        let full = egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0));
        if let Some((cached, texture)) = &self.external {
            if cached == path {
                return Some(AtlasThumb {
                    texture: texture.id(),
                    uv: full,
                });
            }
        }
        let texture = ctx.load_texture(
            format!("query-{}", path.display()),
            image?.clone(),
            egui::TextureOptions::LINEAR,
        );
        let id = texture.id();
        self.external = Some((path.to_path_buf(), texture));
        Some(AtlasThumb {
            texture: id,
            uv: full,
        })
    }

    /// Number of thumbnails in the atlas now.
    pub fn len(&self) -> usize {
        self.slot_of.len()
    }

    /// Whether the atlas holds none.
    pub fn is_empty(&self) -> bool {
        self.slot_of.is_empty()
    }

    /// Thumbnails uploaded since the start (a thumbnail evicted and drawn again counts twice).
    pub fn uploads(&self) -> u64 {
        self.uploads
    }

    /// Whether thumbnails are asked for or being read.
    pub fn is_loading(&self) -> bool {
        !self.wanted.is_empty() || self.loader.as_ref().is_some_and(|l| l.is_busy())
    }
}

/// The thumbnail as RGBA with a one-pixel border repeating its edges.
fn padded_rgba(image: &image::RgbImage) -> egui::ColorImage {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let side = THUMBNAIL_PX as usize;
    let mut pixels = Vec::with_capacity(SLOT_PX * SLOT_PX);
    for y in 0..SLOT_PX {
        let sy = y.saturating_sub(1).min(side - 1).min(h.saturating_sub(1));
        for x in 0..SLOT_PX {
            let sx = x.saturating_sub(1).min(side - 1).min(w.saturating_sub(1));
            let p = image.get_pixel(sx as u32, sy as u32).0;
            pixels.push(egui::Color32::from_rgb(p[0], p[1], p[2]));
        }
    }
    egui::ColorImage::new([SLOT_PX, SLOT_PX], pixels)
}

/// A clickable thumbnail with an accessible name and a hover text; returns its response.
pub fn thumbnail_button(
    ui: &mut egui::Ui,
    texture: Option<AtlasThumb>,
    size_px: f32,
    name: String,
    hover: String,
    selected: bool,
) -> egui::Response {
    let size = egui::vec2(size_px, size_px);
    let response = match texture {
        Some(texture) => ui.add(
            texture
                .image(size)
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
