//! Status bar: the running job with its progress and a cancel button, or a summary of the open
//! dataset; the current error, shown once, with a dismiss button.

use super::theme;
use crate::app::{Command, Session};
use crate::jobs::Progress;

/// Draws the status bar. `job` is the running job's title and last progress report.
pub fn status_bar_ui(
    ui: &mut egui::Ui,
    session: Option<&Session>,
    job: Option<(&str, Option<&Progress>)>,
    error: Option<&str>,
    commands: &mut Vec<Command>,
) {
    ui.horizontal(|ui| {
        if let Some((title, progress)) = job {
            ui.spinner();
            match progress {
                Some(p) if p.total > 0 => {
                    let fraction = p.done as f32 / p.total as f32;
                    ui.add(
                        egui::ProgressBar::new(fraction)
                            .desired_width(220.0)
                            .text(format!("{} {}/{}", p.phase, p.done, p.total)),
                    );
                }
                _ => {
                    ui.label(title);
                }
            }
            if ui.button("Cancel").clicked() {
                commands.push(Command::CancelJob);
            }
        } else if let Some(session) = session {
            let meta = &session.set.meta;
            ui.label(format!(
                "{} images · {} listings · {}",
                session.set.items.len(),
                session.listings.len(),
                meta.encoder.describe()
            ));
            if !session.skipped.is_empty() {
                ui.label(
                    egui::RichText::new(format!("· {} file(s) skipped", session.skipped.len()))
                        .color(theme::MUTED),
                )
                .on_hover_text(
                    session
                        .skipped
                        .iter()
                        .take(20)
                        .map(|s| s.to_string())
                        .collect::<Vec<_>>()
                        .join("\n"),
                );
            }
        } else {
            ui.label(egui::RichText::new("no dataset open").color(theme::MUTED));
        }
        if let Some(error) = error {
            ui.separator();
            ui.label(egui::RichText::new(error).color(theme::ERROR));
            if ui.small_button("Dismiss").clicked() {
                commands.push(Command::DismissError);
            }
        }
    });
}
