//! The menu bar (File → Open, Query by image), the view tabs, and the welcome screen shown
//! before a dataset is open.

use super::theme;
use crate::{Command, View};
use natview_core::dataset::SUPPORTED_EXTENSIONS;
use natview_encoder::EncoderSpec;
use natview_train::catalogue::AvailableEncoder;

/// Draws the menu bar: File, the model picker (`encoders` on offer for the open dataset, if
/// one is open), and the encoder in use.
pub fn menu_bar_ui(
    ui: &mut egui::Ui,
    encoders: Option<&[AvailableEncoder]>,
    current: &EncoderSpec,
    previous: Option<&EncoderSpec>,
    commands: &mut Vec<Command>,
) {
    let has_session = encoders.is_some();
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
            if ui
                .button("Open encoder…")
                .on_hover_text(
                    "a checkpoint as your training code saved it (.pth/.pt/.ckpt/.bin: \
                     PyTorch, Lightning, timm, VISSL, MoCo/BYOL/DINO) or .safetensors; natview \
                     works out the network (or drop the file on the window)",
                )
                .clicked()
            {
                if let Some(path) = rfd::FileDialog::new()
                    .add_filter("weights", &natview_encoder::checkpoint::EXTENSIONS)
                    .pick_file()
                {
                    commands.push(Command::OpenEncoder(path));
                }
                ui.close();
            }
            if ui
                .button("Open encoder folder…")
                .on_hover_text(
                    "a Hugging Face model folder (config.json + model.safetensors, sharded or \
                     not), an open_clip hub folder, or a repository in the hub cache \
                     (models--org--name); or drop the folder on the window",
                )
                .clicked()
            {
                if let Some(path) = rfd::FileDialog::new().pick_folder() {
                    commands.push(Command::OpenEncoder(path));
                }
                ui.close();
            }
            ui.separator();
            if ui
                .add_enabled(has_session, egui::Button::new("Query by image…"))
                .on_hover_text("find the nearest neighbours of an image file (or drop it here)")
                .clicked()
            {
                if let Some(path) = rfd::FileDialog::new()
                    .add_filter("image", SUPPORTED_EXTENSIONS)
                    .pick_file()
                {
                    commands.push(Command::QueryImage(path));
                }
                ui.close();
            }
            if ui
                .add_enabled(has_session, egui::Button::new("Export report…"))
                .on_hover_text(
                    "one HTML file to share: metrics beside raw pixels, health, the quadrant \
                     chart, a projection, sample neighbours, and the last diff when its B is \
                     the current encoder",
                )
                .clicked()
            {
                if let Some(path) = rfd::FileDialog::new()
                    .add_filter("HTML", &["html"])
                    .set_file_name("natview-report.html")
                    .save_file()
                {
                    commands.push(Command::ExportReport(path));
                }
                ui.close();
            }
        });
        ui.menu_button("Model", |ui| {
            ui.label(
                egui::RichText::new("Embed with (embeddings of each are kept):")
                    .small()
                    .color(theme::MUTED),
            );
            for encoder in encoders.unwrap_or_default() {
                let chosen = encoder.spec == *current;
                if ui
                    .add_enabled(has_session, egui::Button::selectable(chosen, &encoder.name))
                    .on_hover_text(encoder.spec.describe())
                    .clicked()
                {
                    if !chosen {
                        commands.push(Command::UseEncoder(encoder.spec.clone()));
                    }
                    ui.close();
                }
            }
        });
        ui.separator();
        ui.label(
            egui::RichText::new(format!("encoder: {}", current.describe())).color(
                if current.is_untrained() {
                    theme::ERROR
                } else {
                    theme::MUTED
                },
            ),
        )
        .on_hover_text(
            "the encoder the gallery, neighbours, charts and metrics use (Model menu to switch)",
        );
        if let Some(previous) = previous.filter(|_| has_session) {
            if ui
                .small_button(format!("⇄ {}", previous.workspace_key()))
                .on_hover_text(
                    "flip to the encoder used before: the gallery, neighbours, projection and \
                     quadrant chart follow (embeddings are kept, so flipping back is quick)",
                )
                .clicked()
            {
                commands.push(Command::FlipEncoder);
            }
        }
    });
}

/// Draws the row of view tabs.
pub fn view_tabs_ui(ui: &mut egui::Ui, current: View, commands: &mut Vec<Command>) {
    ui.horizontal(|ui| {
        for view in View::ALL {
            if ui.selectable_label(current == view, view.title()).clicked() && current != view {
                commands.push(Command::ShowView(view));
            }
        }
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

/// Shown in a view that needs embeddings while the open dataset is still being embedded.
pub fn waiting_for_embeddings_ui(ui: &mut egui::Ui, view: &str, statuses: &[crate::JobStatus]) {
    ui.vertical_centered(|ui| {
        ui.add_space(ui.available_height() / 3.0);
        ui.heading(view);
        ui.label(format!(
            "{view} needs the embeddings: it opens as soon as they are ready. The gallery works \
             meanwhile."
        ));
        let open = statuses
            .iter()
            .find(|s| s.kind == crate::JobKind::Open)
            .and_then(|s| s.progress.as_ref());
        if let Some(p) = open {
            ui.add(
                egui::ProgressBar::new(p.done as f32 / p.total.max(1) as f32)
                    .desired_width(320.0)
                    .text(format!("{} {}/{}", p.phase, p.done, p.total)),
            );
        }
    });
}
