//! The menu bar (File → Open) and the welcome screen shown before a dataset is open.

use super::theme;
use crate::app::Command;

/// Draws the menu bar.
pub fn menu_bar_ui(ui: &mut egui::Ui, commands: &mut Vec<Command>) {
    egui::MenuBar::new().ui(ui, |ui| {
        ui.menu_button("File", |ui| {
            if ui.button("Open folder…").clicked() {
                if let Some(path) = rfd::FileDialog::new().pick_folder() {
                    commands.push(Command::Open(path));
                }
                ui.close();
            }
            if ui.button("Open manifest…").clicked() {
                if let Some(path) = rfd::FileDialog::new()
                    .add_filter("manifest", &["csv", "jsonl", "ndjson"])
                    .pick_file()
                {
                    commands.push(Command::Open(path));
                }
                ui.close();
            }
        });
    });
}

/// Shown while no dataset is open.
pub fn welcome_ui(ui: &mut egui::Ui, opening: bool) {
    ui.vertical_centered(|ui| {
        ui.add_space(ui.available_height() / 3.0);
        ui.heading("natview");
        if opening {
            ui.label("Opening the dataset…");
        } else {
            ui.label(
                egui::RichText::new(
                    "Open a folder of listings or a manifest (File → Open), or drop one here.",
                )
                .color(theme::MUTED),
            );
        }
    });
}
