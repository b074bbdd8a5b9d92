//! Large images for the Review view: the two images of the pair being judged (and the next
//! pair's, ahead of time), decoded from their files on a worker thread at up to
//! [`LARGE_PX`] pixels; until one arrives the view shows its 64-px thumbnail scaled up.

use natview_core::dataset::decode_rgb_covering;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver, Sender};

/// The longer side of a large image, in pixels.
pub const LARGE_PX: u32 = 360;

/// Textures kept at most (the pair shown, the next pair, and a few recent ones for going back).
const KEPT: usize = 12;

/// Large textures of items, loaded on request.
pub struct LargeImages {
    textures: HashMap<usize, (egui::TextureHandle, u64)>,
    pending: std::collections::HashSet<usize>,
    failed: std::collections::HashSet<usize>,
    sender: Sender<(usize, Option<egui::ColorImage>)>,
    receiver: Receiver<(usize, Option<egui::ColorImage>)>,
    clock: u64,
    /// Whose items these are (other items — another dataset, or the same one rescanned —
    /// start afresh: the textures are keyed by row id).
    for_items: Option<String>,
}

impl Default for LargeImages {
    fn default() -> Self {
        let (sender, receiver) = channel();
        Self {
            textures: HashMap::new(),
            pending: Default::default(),
            failed: Default::default(),
            sender,
            receiver,
            clock: 0,
            for_items: None,
        }
    }
}

impl LargeImages {
    /// Forgets everything when the items change (`items_fingerprint` of the session).
    pub fn follow(&mut self, items_fingerprint: &str) {
        if self.for_items.as_deref() != Some(items_fingerprint) {
            *self = Self {
                for_items: Some(items_fingerprint.to_string()),
                ..Self::default()
            };
        }
    }

    /// Takes the images the worker finished (uploading them as textures).
    pub fn receive(&mut self, ctx: &egui::Context) {
        while let Ok((id, image)) = self.receiver.try_recv() {
            self.pending.remove(&id);
            match image {
                Some(image) => {
                    let texture = ctx.load_texture(
                        format!("review-{id}"),
                        image,
                        egui::TextureOptions::LINEAR,
                    );
                    self.clock += 1;
                    self.textures.insert(id, (texture, self.clock));
                }
                None => {
                    self.failed.insert(id);
                }
            }
        }
        while self.textures.len() > KEPT {
            let oldest = self
                .textures
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(&id, _)| id);
            if let Some(id) = oldest {
                self.textures.remove(&id);
            }
        }
    }

    /// The large texture of item `id`, asking for it (from `path`) if it is not loaded.
    pub fn get(
        &mut self,
        ctx: &egui::Context,
        id: usize,
        path: PathBuf,
    ) -> Option<egui::TextureHandle> {
        self.clock += 1;
        if let Some((texture, used)) = self.textures.get_mut(&id) {
            *used = self.clock;
            return Some(texture.clone());
        }
        self.request(ctx, id, path);
        None
    }

    /// Starts loading item `id` unless it is loaded, loading or failed.
    pub fn request(&mut self, ctx: &egui::Context, id: usize, path: PathBuf) {
        if self.textures.contains_key(&id) || self.failed.contains(&id) || !self.pending.insert(id)
        {
            return;
        }
        let sender = self.sender.clone();
        let ctx = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("natview-review-image".into())
            .spawn(move || {
                let _ = sender.send((id, load(&path)));
                ctx.request_repaint();
            });
        if spawned.is_err() {
            self.pending.remove(&id);
            self.failed.insert(id);
        }
    }
}

/// Decodes `path` and scales it so that its longer side is at most [`LARGE_PX`].
fn load(path: &std::path::Path) -> Option<egui::ColorImage> {
    // A short side of LARGE_PX always covers a long side of LARGE_PX (the decoder's margin
    // doubles what is asked).
    let decoded = decode_rgb_covering(path, LARGE_PX, LARGE_PX / 2).ok()?;
    let rgb = natview_core::pixels::fit_within(&decoded.image, LARGE_PX);
    let size = [rgb.width() as usize, rgb.height() as usize];
    Some(egui::ColorImage::from_rgb(size, rgb.as_raw()))
}
