//! The Fine-tune view: choose the start model, method, steps and what to hold out; watch the
//! loss curve while it trains (Cancel keeps the checkpoint); then the held-out before / after /
//! pixels table and a switch between the two encoders.

use super::theme;
use crate::{Command, FinetuneOutcome, FinetuneSettings, JobKind, LiveTraining, Session};
use egui_plot::{Line, Plot, PlotPoints};
use natview_encoder::EncoderSpec;
use natview_train::{EvalSummary, Method};

/// What the view keeps between frames.
#[derive(Debug, Default)]
pub struct FinetuneViewState {
    settings: Option<FinetuneSettings>,
    /// The "never train on" field as typed (`COLUMN=VALUE`, or blank).
    holdout_view_text: String,
    /// Whether and how the run uses the analysts' labels.
    labels: super::finetune_labels::LabelsChoice,
}

impl FinetuneViewState {
    /// The settings the form shows (for tests and the start button).
    pub fn settings(&self) -> Option<&FinetuneSettings> {
        self.settings.as_ref()
    }

    /// Whether the run trains with the analysts' labels (as the checkbox would set it).
    pub fn use_labels(&mut self, on: bool) {
        self.labels.use_labels = on;
    }
}

/// Draws the Fine-tune view. `current` is the encoder in use, `live` the running fine-tune's
/// state, `last` how the last one ended.
pub fn finetune_ui(
    ui: &mut egui::Ui,
    session: &Session,
    current: &EncoderSpec,
    live: Option<&LiveTraining>,
    last: Option<&FinetuneOutcome>,
    state: &mut FinetuneViewState,
    commands: &mut Vec<Command>,
) {
    let trainable: Vec<&EncoderSpec> = session
        .encoders
        .iter()
        .map(|e| &e.spec)
        .filter(|s| s.model.has_network())
        .collect();
    let settings = state.settings.get_or_insert_with(|| {
        let from = if current.model.has_network() {
            current.clone()
        } else {
            crate::fallback_spec()
        };
        FinetuneSettings::starting_from(from)
    });
    ui.heading("Fine-tune on natural views");
    ui.label(
        egui::RichText::new(
            "Two views of one listing are a positive pair. Listings held out are never trained \
             on; the report compares them before and after, beside raw pixels.",
        )
        .color(theme::MUTED),
    );
    ui.add_space(6.0);
    let running = live.is_some();
    ui.add_enabled_ui(!running, |ui| {
        settings_form(
            ui,
            session,
            &trainable,
            settings,
            &mut state.holdout_view_text,
            &mut state.labels,
        );
    });
    let view_filter = parse_view_filter(&state.holdout_view_text);
    ui.add_space(6.0);
    ui.horizontal(|ui| {
        let valid = view_filter.is_ok();
        if ui
            .add_enabled(!running && valid, egui::Button::new("Start fine-tune"))
            .on_hover_text("trains on a worker; the app stays usable")
            .clicked()
        {
            if let (Some(settings), Ok(filter)) = (&state.settings, &view_filter) {
                let mut settings = settings.clone();
                settings.holdout_view = filter.clone();
                settings.judgements = state.labels.judgements(session);
                commands.push(Command::StartFinetune(Box::new(settings)));
            }
        }
        if running
            && ui
                .button("Cancel fine-tune")
                .on_hover_text("stops after the current step and keeps the checkpoint")
                .clicked()
        {
            commands.push(Command::CancelJob(JobKind::Finetune));
        }
        if let Err(e) = &view_filter {
            ui.colored_label(theme::ERROR, e);
        }
    });
    if let Some(live) = live {
        ui.add_space(6.0);
        live_ui(ui, live);
    } else if let Some(last) = last {
        ui.add_space(6.0);
        ui.separator();
        loss_plot(
            ui,
            &last.report.loss_curve,
            natview_train::LOSS_BLOCK,
            "loss (mean of 10 steps)",
        );
        if let Some(reason) = &last.report.collapse {
            ui.colored_label(theme::ERROR, format!("Stopped: {reason}."));
        }
        health_plot(ui, &last.report.health);
        finetune_report_ui(ui, last, current, commands);
    }
}

fn settings_form(
    ui: &mut egui::Ui,
    session: &Session,
    trainable: &[&EncoderSpec],
    settings: &mut FinetuneSettings,
    holdout_view_text: &mut String,
    labels: &mut super::finetune_labels::LabelsChoice,
) {
    egui::Grid::new("finetune-settings")
        .num_columns(2)
        .spacing(egui::vec2(12.0, 6.0))
        .show(ui, |ui| {
            let label = ui.label("Start from");
            let mut chosen = settings.from.clone();
            egui::ComboBox::from_id_salt("finetune-from")
                .selected_text(chosen.workspace_key())
                .show_ui(ui, |ui| {
                    for spec in trainable {
                        ui.selectable_value(&mut chosen, (*spec).clone(), spec.workspace_key());
                    }
                })
                .response
                .labelled_by(label.id);
            if chosen != settings.from {
                let keep = settings.clone();
                *settings = FinetuneSettings {
                    method: keep.method,
                    steps: keep.steps,
                    batch_size: keep.batch_size,
                    collapse_stop: keep.collapse_stop,
                    ..FinetuneSettings::starting_from(chosen)
                };
            }
            ui.end_row();

            ui.label("Method");
            ui.horizontal(|ui| {
                ui.radio_value(&mut settings.method, Method::InfoNce, "InfoNCE")
                    .on_hover_text("SimCLR/MoBY-style: in-batch negatives, temperature 0.2");
                ui.radio_value(&mut settings.method, Method::SimSiam, "SimSiam")
                    .on_hover_text("predictor + stop-gradient, no negatives");
                ui.radio_value(&mut settings.method, Method::Byol, "BYOL")
                    .on_hover_text("predictor + a momentum (EMA) target network, no negatives");
                ui.radio_value(&mut settings.method, Method::Moby, "MoBY")
                    .on_hover_text(
                        "momentum target + contrastive loss against a queue of its keys",
                    );
                ui.radio_value(&mut settings.method, Method::Swav, "SwAV")
                    .on_hover_text("online clustering: swapped prediction of Sinkhorn assignments");
            });
            ui.end_row();

            setting_row(
                ui,
                "Steps",
                None,
                egui::DragValue::new(&mut settings.steps).range(1..=100_000),
            );
            setting_row(
                ui,
                "Listings per step",
                Some("two views of each listing per step"),
                egui::DragValue::new(&mut settings.batch_size).range(2..=1024),
            );
            setting_row(
                ui,
                "Learning rate",
                None,
                egui::DragValue::new(&mut settings.learning_rate)
                    .range(1e-5..=1.0)
                    .speed(0.001),
            );
            setting_row(
                ui,
                "Input size (px)",
                Some("smaller trains faster; the fine-tuned encoder embeds at this size"),
                egui::DragValue::new(&mut settings.input_size_px).range(32..=512),
            );
            setting_row(
                ui,
                "Freeze stages",
                Some("the first N stages stay fixed (stage 0 is the stem)"),
                egui::DragValue::new(&mut settings.freeze).range(0..=8),
            );
            setting_row(
                ui,
                "Held-out listings",
                None,
                egui::DragValue::new(&mut settings.heldout_fraction)
                    .range(0.05..=0.5)
                    .speed(0.01)
                    .fixed_decimals(2),
            );
            setting_row(
                ui,
                "Never train on",
                Some(
                    "a whole kind of view kept out of training (e.g. design=twemoji); the report \
                     then gives recall@1 for queries of that kind",
                ),
                egui::TextEdit::singleline(holdout_view_text)
                    .hint_text(match session.metadata_columns.first() {
                        Some(column) => format!("{column}=VALUE (blank: none)"),
                        None => "COLUMN=VALUE (blank: none)".to_string(),
                    })
                    .desired_width(220.0),
            );
            super::finetune_labels::labels_form_ui(ui, session, labels);
            ui.label("Resume");
            let checkpoint = settings.checkpoint_path(&session.workspace);
            let can_resume = checkpoint.is_file();
            if !can_resume {
                settings.resume = false;
            }
            ui.add_enabled(
                can_resume,
                egui::Checkbox::new(&mut settings.resume, "continue the saved checkpoint"),
            )
            .on_hover_text(checkpoint.display().to_string());
            ui.end_row();
            ui.label("Collapse");
            ui.checkbox(
                &mut settings.collapse_stop,
                "stop if the embedding collapses",
            )
            .on_hover_text(format!(
                "health is checked on held-out images every few steps; the run stops (its \
                     checkpoint kept) when the effective rank stays under {:.0} % of the start's \
                     for {} checks in a row",
                100.0 * natview_train::COLLAPSE_SHARE,
                natview_train::COLLAPSE_CHECKS
            ));
            ui.end_row();
        });
}

/// One row of the settings grid: its name, then `widget` labelled by it (for screen readers
/// and tests), with a tooltip where `hint` is given.
fn setting_row(ui: &mut egui::Ui, name: &str, hint: Option<&str>, widget: impl egui::Widget) {
    let label = ui.label(name);
    let response = ui.add(widget).labelled_by(label.id);
    if let Some(hint) = hint {
        response.on_hover_text(hint);
    }
    ui.end_row();
}

fn parse_view_filter(text: &str) -> Result<Option<natview_core::dataset::ViewFilter>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|e: String| e)
}

fn live_ui(ui: &mut egui::Ui, live: &LiveTraining) {
    let fraction = if live.total > 0 {
        live.step as f32 / live.total as f32
    } else {
        0.0
    };
    let eta = if live.steps_per_sec > 0.0 && live.total > live.step {
        format!(
            " · about {:.0} s left",
            (live.total - live.step) as f64 / live.steps_per_sec
        )
    } else {
        String::new()
    };
    ui.add(egui::ProgressBar::new(fraction).text(format!(
        "{} · step {}/{} · {:.2} steps/s{eta}",
        live.phase, live.step, live.total, live.steps_per_sec
    )));
    loss_plot(ui, &live.losses, 1, "loss per step");
    health_plot(ui, &live.health);
}

/// The effective rank of the embedding at each health check (a collapse shows as a fall
/// towards 1).
fn health_plot(ui: &mut egui::Ui, health: &[natview_train::HealthPoint]) {
    if health.is_empty() {
        return;
    }
    let points: Vec<[f64; 2]> = health
        .iter()
        .map(|p| [p.step as f64, p.effective_rank])
        .collect();
    let last = health[health.len() - 1];
    ui.label(
        egui::RichText::new(format!(
            "health (held-out sample): effective rank {:.1} at step {} (start {:.1}); 95 % of the variance in {} axes; uniformity {:.3}",
            last.effective_rank, last.step, health[0].effective_rank, last.dims_for_95, last.uniformity
        ))
        .small(),
    )
    .on_hover_text(format!(
        "The run stops, keeping its checkpoint, when the effective rank stays under {:.0} % of the start's for {} checks in a row.",
        100.0 * natview_train::COLLAPSE_SHARE,
        natview_train::COLLAPSE_CHECKS
    ));
    Plot::new("finetune-health")
        .height(110.0)
        .allow_scroll(false)
        .x_axis_label("step")
        .y_axis_label("effective rank")
        .include_y(0.0)
        .show(ui, |plot| {
            plot.line(Line::new("effective rank", PlotPoints::from(points)));
        });
}

/// The loss curve; each value covers `steps_per_point` steps (plotted at the block's last step).
fn loss_plot(ui: &mut egui::Ui, losses: &[f32], steps_per_point: usize, name: &str) {
    if losses.is_empty() {
        return;
    }
    let points: Vec<[f64; 2]> = losses
        .iter()
        .enumerate()
        .map(|(i, &l)| [((i + 1) * steps_per_point) as f64, f64::from(l)])
        .collect();
    Plot::new("finetune-loss")
        .height(180.0)
        .allow_scroll(false)
        .x_axis_label("step")
        .y_axis_label("loss")
        .show(ui, |plot| {
            plot.line(Line::new(name.to_string(), PlotPoints::from(points)));
        });
}

/// Reads one figure out of a held-out summary.
type SummaryColumn = fn(&EvalSummary) -> f64;

/// The held-out report of a fine-tune (before / after / pixels), with buttons to use the
/// fine-tuned encoder or flip back to the one before. Also shown in the Metrics view.
pub fn finetune_report_ui(
    ui: &mut egui::Ui,
    outcome: &FinetuneOutcome,
    current: &EncoderSpec,
    commands: &mut Vec<Command>,
) {
    let report = &outcome.report;
    ui.strong(format!(
        "Fine-tune of {}: {} steps in {:.0} s on {} · held out: {} listings, {} images, never trained on",
        outcome.settings.from.workspace_key(),
        report.steps_done,
        report.train_secs,
        report.device,
        report.heldout_listings,
        report.heldout_images
    ));
    let after = report.after.as_ref();
    let rows: [(&str, SummaryColumn); 5] = [
        ("recall@1", |s| s.recall_at_1),
        ("recall@5", |s| s.recall_at_5),
        ("recall@10", |s| s.recall_at_10),
        ("gap", |s| s.gap),
        ("ROC AUC", |s| s.auc),
    ];
    egui::Grid::new("finetune-report")
        .num_columns(4)
        .spacing(egui::vec2(16.0, 4.0))
        .striped(true)
        .show(ui, |ui| {
            for title in ["held out", "before", "after", "pixels"] {
                ui.strong(title);
            }
            ui.end_row();
            let mut row = |name: String, value: &dyn Fn(&EvalSummary) -> Option<f64>| {
                ui.label(name);
                let cell = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
                ui.monospace(cell(value(&report.before)));
                ui.monospace(cell(after.and_then(value)));
                ui.monospace(cell(value(&report.pixels)));
                ui.end_row();
            };
            for (name, value) in rows {
                row(name.to_string(), &|s| Some(value(s)));
            }
            if let Some(view) = &report.holdout_view {
                row(format!("recall@1, {view} queries"), &|s| s.view_recall_at_1);
            }
        });
    super::finetune_labels::judged_report_ui(ui, &report.judged, report.judged_missing);
    match &outcome.trained {
        Some(trained) => {
            ui.horizontal(|ui| {
                if *current != *trained && ui.button("Use the fine-tuned encoder").clicked() {
                    commands.push(Command::UseEncoder(trained.clone()));
                }
                if *current == *trained
                    && ui
                        .button(format!("Back to {}", outcome.settings.from.workspace_key()))
                        .on_hover_text("back to the encoder it started from (Model menu too)")
                        .clicked()
                {
                    commands.push(Command::UseEncoder(outcome.settings.from.clone()));
                }
            });
        }
        None => {
            ui.label(
                egui::RichText::new(format!(
                    "Stopped after step {}: the checkpoint is kept ({}); tick Resume to continue.",
                    report.steps_done,
                    outcome.checkpoint.display()
                ))
                .color(theme::MUTED),
            );
        }
    }
}
