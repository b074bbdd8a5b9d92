//! Status bar: each running job with its progress and a cancel button, else a summary of the
//! open dataset; the current error (shown once, with a dismiss button) and notices.

use super::theme;
use crate::{Command, JobStatus, Session};

/// Draws the status bar (`device`: where jobs run, in words).
pub fn status_bar_ui(
    ui: &mut egui::Ui,
    session: Option<&Session>,
    device: &str,
    jobs: &[JobStatus],
    error: Option<&str>,
    notice: Option<&str>,
    commands: &mut Vec<Command>,
) {
    ui.horizontal(|ui| {
        for job in jobs {
            // A static bar, no spinner: an animation would repaint the (software-rendered)
            // window every frame and slow the job it shows by a third on two cores.
            match &job.progress {
                Some(p) if p.total > 1 => {
                    let fraction = p.done as f32 / p.total as f32;
                    ui.add(
                        egui::ProgressBar::new(fraction)
                            .desired_width(220.0)
                            .text(format!("{} {}/{}", p.phase, p.done, p.total)),
                    )
                    .on_hover_text(&job.title);
                }
                Some(p) => {
                    ui.label(&p.phase).on_hover_text(&job.title);
                }
                None => {
                    ui.label(&job.title);
                }
            }
            if ui
                .small_button("Cancel")
                .on_hover_text(format!("stop {}", job.title))
                .clicked()
            {
                commands.push(Command::CancelJob(job.kind));
            }
            ui.separator();
        }
        if let Some(session) = session {
            let meta = &session.set.meta;
            ui.label(format!(
                "{} images · {} listings · {} · on {device}",
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
        } else if jobs.is_empty() {
            ui.label(egui::RichText::new("no dataset open").color(theme::MUTED));
        }
        if let Some(notice) = notice {
            ui.separator();
            ui.label(egui::RichText::new(notice).color(theme::SAME_LISTING));
            if ui.small_button("OK").clicked() {
                commands.push(Command::DismissNotice);
            }
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
