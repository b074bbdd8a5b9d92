//! Input that is not a widget's: files dropped on the window, and the tag keys 1–9.

use super::{Command, NatviewApp, Selection};
use natview_core::dataset::is_supported_extension;
use natview_labels::TAG_KEYS;
use std::path::PathBuf;

impl NatviewApp {
    /// Files dropped on the window: an image file is a query, a weights file (PyTorch
    /// checkpoint or safetensors) becomes the encoder, anything else opens as a dataset.
    pub(super) fn take_dropped_files(&mut self, ctx: &egui::Context) {
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        });
        if let Some(path) = dropped.into_iter().next() {
            if path.is_file() && is_supported_extension(&path) {
                self.commands.push(Command::QueryImage(path));
            } else if (path.is_file() && natview_encoder::checkpoint::is_weights_file(&path))
                || natview_encoder::checkpoint::is_model_folder(&path)
            {
                self.commands.push(Command::OpenEncoder(path));
            } else {
                self.commands.push(Command::Open(path));
            }
        }
    }

    /// Keys 1–9 toggle the tags of the label set on the selected item, Ctrl+Z undoes the last
    /// label change (when no text field has the keyboard). The tags go to the item the
    /// Neighbours panel shows as the query, and to nothing when it shows none.
    pub(super) fn take_tag_keys(&mut self, ctx: &egui::Context) {
        let Some(session) = &self.session else { return };
        if ctx.text_edit_focused() {
            return;
        }
        if ctx.input(|i| i.modifiers.command && i.key_pressed(egui::Key::Z)) {
            self.commands.push(Command::UndoLabel);
        }
        let Some(item) = session.selection.as_ref().and_then(Selection::item) else {
            return;
        };
        let Some(store) = &session.labels else { return };
        const KEYS: [egui::Key; TAG_KEYS] = [
            egui::Key::Num1,
            egui::Key::Num2,
            egui::Key::Num3,
            egui::Key::Num4,
            egui::Key::Num5,
            egui::Key::Num6,
            egui::Key::Num7,
            egui::Key::Num8,
            egui::Key::Num9,
        ];
        for (slot, key) in KEYS.iter().enumerate() {
            if ctx.input(|i| i.key_pressed(*key) && i.modifiers.is_none()) {
                let tag = store.tag_set()[slot].clone();
                self.commands.push(Command::ToggleTag { item, tag });
            }
        }
    }

    /// Picks up label changes another window or process made (at most twice a second).
    pub(super) fn refresh_labels(&mut self) {
        let now = std::time::Instant::now();
        if self
            .labels_checked
            .is_some_and(|t| now.duration_since(t) < std::time::Duration::from_millis(500))
        {
            return;
        }
        self.labels_checked = Some(now);
        let Some(store) = self.session.as_mut().and_then(|s| s.labels.as_mut()) else {
            return;
        };
        if let Err(e) = store.refresh() {
            self.error = Some(e.to_string());
        }
    }
}
