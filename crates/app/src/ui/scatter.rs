//! Projection scatter: the 2-D layout (PCA, UMAP or t-SNE, chosen here; UMAP and t-SNE stream
//! in while they run) of every embedding, coloured by listing, label or
//! a metadata column, at any number of points (drawn by a worker into one texture, see
//! [`super::scatter_canvas`]); thumbnails on the points when zoomed in; hover shows the image;
//! click selects it; box and lasso selections limit the gallery to what they enclose; scroll to
//! zoom, drag to pan.

use super::scatter_canvas::{canvas_ui, Canvas};
use super::thumbnails::ThumbnailCache;
use crate::{Command, JobKind, ProjectionResult, Session};
use natview_analysis::projection::{ProjectionMethod, ProjectionSpec};
use natview_analysis::scatter::{full_palette, ScatterLayer, PALETTE};
use std::sync::Arc;

/// What the points are coloured by.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ColourBy {
    /// One colour per listing (cycling through the palette).
    #[default]
    Listing,
    /// The item's label.
    Label,
    /// A metadata column.
    Metadata(String),
    /// The SwAV cluster (prototype) of each image, when the encoder's weights carry SwAV's
    /// head.
    SwavCluster,
    /// How many of each point's 10 nearest neighbours in the embedding are also its nearest
    /// in the layout (computed on a worker when first picked).
    Faithfulness,
}

/// Neighbours compared per point for the faithfulness colouring.
pub const FAITHFULNESS_K: usize = 10;

/// What a drag on the plot does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tool {
    /// Drag pans, scroll zooms.
    #[default]
    Pan,
    /// Drag a box to select.
    Box,
    /// Draw a lasso to select.
    Lasso,
}

/// A colour group, for the legend.
pub(super) struct LegendEntry {
    pub(super) name: String,
    pub(super) colour: egui::Color32,
}

/// The scatter's own state.
pub struct ScatterState {
    /// The layout asked for (method and parameters).
    pub spec: ProjectionSpec,
    /// Draw lines joining the views of each listing in view.
    pub(super) join_listings: bool,
    colour_by: ColourBy,
    pub(super) tool: Tool,
    /// Whether thumbnails are drawn on the points when few enough are in view.
    pub(super) show_thumbnails: bool,
    /// Number of items in the last box/lasso selection, and how long finding them took (ms).
    selected: Option<(usize, f64)>,
    /// Each point's neighbourhood kept in the layout, for the projection with this id.
    faithfulness: Option<(u64, std::sync::Arc<Vec<f32>>)>,
    /// The projection whose faithfulness was asked for (once each).
    faithfulness_asked: Option<u64>,
    /// (projection id, colouring, faithfulness of) the layer was built for.
    layer_for: Option<(u64, ColourBy, Option<u64>)>,
    pub(super) layer: Option<Arc<ScatterLayer>>,
    pub(super) legend: Vec<LegendEntry>,
    pub(super) canvas: Canvas,
    /// The tag "Tag N selected" gives.
    bulk_tag: String,
    /// A bulk tag of the selection waiting for confirmation.
    confirm: Option<super::review::PendingTag>,
}

impl Default for ScatterState {
    fn default() -> Self {
        Self {
            spec: ProjectionSpec::new(ProjectionMethod::Pca),
            join_listings: false,
            colour_by: ColourBy::default(),
            tool: Tool::default(),
            show_thumbnails: true,
            selected: None,
            faithfulness: None,
            faithfulness_asked: None,
            layer_for: None,
            layer: None,
            legend: Vec::new(),
            canvas: Canvas::default(),
            bulk_tag: String::new(),
            confirm: None,
        }
    }
}

impl ScatterState {
    /// Rebuilds the coloured layer when the projection or the colouring changed.
    fn refresh(&mut self, session: &Session, result: &ProjectionResult) {
        let key = (
            result.id,
            self.colour_by.clone(),
            self.faithfulness.as_ref().map(|f| f.0),
        );
        if self.layer_for.as_ref() == Some(&key) {
            return;
        }
        let count = result.points.len();
        let (colours, legend) = match &self.colour_by {
            ColourBy::Listing => {
                let mut colours = vec![0u8; count];
                for (n, (_, ids)) in session.listings.iter().enumerate() {
                    for &id in ids.iter().filter(|&&id| id < count) {
                        colours[id] = (n % PALETTE.len()) as u8;
                    }
                }
                (colours, Vec::new())
            }
            ColourBy::Label => categorical(count, |id| session.set.items[id].label.as_deref()),
            ColourBy::Metadata(column) => categorical(count, |id| {
                session.set.items[id]
                    .metadata
                    .get(column)
                    .map(String::as_str)
            }),
            ColourBy::SwavCluster => {
                let names: Vec<String> = session
                    .set
                    .clusters
                    .as_ref()
                    .map(|c| c.iter().map(|k| format!("cluster {k}")).collect())
                    .unwrap_or_default();
                categorical(count, |id| names.get(id).map(String::as_str))
            }
            ColourBy::Faithfulness => match self.faithfulness_of(result.id) {
                // Eleven steps, red (none of the 10 kept) to green (all kept); grey meanwhile.
                Some(kept) => (
                    kept.iter()
                        .map(|&k| 1 + (k.clamp(0.0, 1.0) * 10.0).round() as u8)
                        .collect(),
                    [
                        (0.0, "no neighbour kept"),
                        (0.5, "half kept"),
                        (1.0, "all kept"),
                    ]
                    .into_iter()
                    .map(|(share, name)| {
                        let [r, g, b] = faithfulness_colour(share);
                        LegendEntry {
                            name: name.into(),
                            colour: egui::Color32::from_rgb(r, g, b),
                        }
                    })
                    .collect(),
                ),
                None => (vec![0; count], Vec::new()),
            },
        };
        let palette = if self.colour_by == ColourBy::Faithfulness {
            std::iter::once([110, 110, 110])
                .chain((0..=10).map(|step| faithfulness_colour(step as f32 / 10.0)))
                .collect()
        } else {
            full_palette()
        };
        self.layer = Some(Arc::new(ScatterLayer {
            points: result.points.clone(),
            grid: result.grid.clone(),
            colours,
            palette,
        }));
        self.legend = legend;
        self.layer_for = Some(key);
    }

    /// Shows every point again at the next frame (as a double-click does).
    pub fn reset_view(&mut self) {
        self.canvas.reset_view();
    }

    /// What a drag on the canvas does.
    pub fn set_tool(&mut self, tool: Tool) {
        self.tool = tool;
    }

    /// The last box/lasso selection: how many items, and how long finding them took (ms).
    pub fn last_selection(&self) -> Option<(usize, f64)> {
        self.selected
    }

    /// The canvas (what it shows now).
    pub fn canvas(&self) -> &Canvas {
        &self.canvas
    }

    /// Whether the canvas is drawing a raster for the current view.
    pub fn is_drawing(&self) -> bool {
        self.canvas.is_drawing()
    }

    /// Records a finished box/lasso selection.
    pub(super) fn selection_made(&mut self, count: usize, millis: f64) {
        self.selected = Some((count, millis));
    }
}

/// Red (0) through yellow to green (1).
fn faithfulness_colour(share: f32) -> [u8; 3] {
    let s = share.clamp(0.0, 1.0);
    let (r, g) = if s < 0.5 {
        (215.0, 48.0 + s * 2.0 * 167.0)
    } else {
        (
            215.0 - (s - 0.5) * 2.0 * 189.0,
            215.0 - (s - 0.5) * 2.0 * 63.0,
        )
    };
    [r as u8, g as u8, 60]
}

impl ScatterState {
    /// The faithfulness values of projection `id`, when computed.
    pub fn faithfulness_of(&self, id: u64) -> Option<&std::sync::Arc<Vec<f32>>> {
        self.faithfulness
            .as_ref()
            .filter(|(of, _)| *of == id)
            .map(|(_, v)| v)
    }

    /// Takes the faithfulness of projection `id` (from its worker job).
    pub fn set_faithfulness(&mut self, id: u64, values: std::sync::Arc<Vec<f32>>) {
        self.faithfulness = Some((id, values));
    }

    /// Whether projection `id`'s faithfulness should be computed now (asked once each).
    fn wants_faithfulness(&mut self, id: u64) -> bool {
        let wanted = self.colour_by == ColourBy::Faithfulness
            && self.faithfulness_of(id).is_none()
            && self.faithfulness_asked != Some(id);
        if wanted {
            self.faithfulness_asked = Some(id);
        }
        wanted
    }
}

/// Colours points by a category (see [`natview_analysis::scatter::categorical`]), with the legend in
/// egui colours.
fn categorical<'a>(
    count: usize,
    category: impl Fn(usize) -> Option<&'a str>,
) -> (Vec<u8>, Vec<LegendEntry>) {
    let c = natview_analysis::scatter::categorical(count, category);
    let legend = c
        .legend
        .into_iter()
        .map(|(name, [r, g, b])| LegendEntry {
            name,
            colour: egui::Color32::from_rgb(r, g, b),
        })
        .collect();
    (c.colours, legend)
}

/// Draws the scatter view.
pub fn scatter_ui(
    ui: &mut egui::Ui,
    session: &Session,
    result: Option<&ProjectionResult>,
    state: &mut ScatterState,
    (running, selection): (bool, Option<&[usize]>),
    thumbnails: &mut ThumbnailCache,
    commands: &mut Vec<Command>,
) {
    method_ui(ui, result, state, running, commands);
    let Some(result) = result else {
        ui.label(format!(
            "Computing the {} layout…",
            state.spec.method.label()
        ));
        return;
    };
    state.refresh(session, result);
    ui.label(
        egui::RichText::new(describe_result(result))
            .small()
            .color(super::theme::MUTED),
    )
    .on_hover_text(match &result.csv_path {
        Some(path) => format!("saved as {}", path.display()),
        None => "still running: the layout so far".to_string(),
    });
    // A finished layout (not one still streaming in) gets its faithfulness when asked for.
    if result.partial.is_none() && state.wants_faithfulness(result.id) {
        commands.push(Command::ComputeFaithfulness);
    }
    controls_ui(ui, session, state, (selection, result.id), commands);
    ui.separator();
    canvas_ui(ui, session, result, state, thumbnails, commands);
}

fn controls_ui(
    ui: &mut egui::Ui,
    session: &Session,
    state: &mut ScatterState,
    (selection, result_id): (Option<&[usize]>, u64),
    commands: &mut Vec<Command>,
) {
    ui.horizontal_wrapped(|ui| {
        let text = match &state.colour_by {
            ColourBy::Listing => "listing".to_string(),
            ColourBy::Label => "label".to_string(),
            ColourBy::Metadata(c) => c.clone(),
            ColourBy::SwavCluster => "SwAV cluster".to_string(),
            ColourBy::Faithfulness => "neighbourhood kept".to_string(),
        };
        egui::ComboBox::from_label("colour by")
            .selected_text(text)
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut state.colour_by, ColourBy::Listing, "listing");
                if !session.distinct_labels.is_empty() {
                    ui.selectable_value(&mut state.colour_by, ColourBy::Label, "label");
                }
                for column in &session.metadata_columns {
                    ui.selectable_value(
                        &mut state.colour_by,
                        ColourBy::Metadata(column.clone()),
                        column,
                    );
                }
                ui.selectable_value(
                    &mut state.colour_by,
                    ColourBy::Faithfulness,
                    "neighbourhood kept",
                )
                .on_hover_text(
                    "how many of each image's 10 nearest in the embedding are also its nearest in the layout: where the picture can be trusted (green) and where it lies (red)",
                );
                if session.set.clusters.is_some() {
                    ui.selectable_value(
                        &mut state.colour_by,
                        ColourBy::SwavCluster,
                        "SwAV cluster",
                    )
                    .on_hover_text("the prototype each image's projection is nearest to");
                }
            });
        ui.separator();
        ui.label("drag:");
        ui.selectable_value(&mut state.tool, Tool::Pan, "pan")
            .on_hover_text("drag to pan, scroll to zoom, double-click to see everything");
        ui.selectable_value(&mut state.tool, Tool::Box, "box select");
        ui.selectable_value(&mut state.tool, Tool::Lasso, "lasso select");
        ui.separator();
        ui.checkbox(&mut state.show_thumbnails, "images")
            .on_hover_text("draw thumbnails on the points once few enough are in view");
        ui.checkbox(&mut state.join_listings, "join listings")
            .on_hover_text(
                "lines between the views of each listing in view (up to 3,000 listings)",
            );
        if let Some((n, millis)) = state.selected {
            ui.separator();
            ui.label(format!("{n} selected"))
                .on_hover_text(format!("found in {millis:.1} ms"));
            if let (Some(ids), Some(kept)) = (selection, state.faithfulness_of(result_id)) {
                let sum: f32 = ids.iter().filter_map(|&i| kept.get(i)).sum();
                ui.label(format!(
                    "neighbourhood kept {:.0} %",
                    100.0 * sum / ids.len().max(1) as f32
                ))
                .on_hover_text(
                    "the selection's mean share of its 10 nearest neighbours in the embedding that the layout keeps",
                );
            }
            if ui.small_button("Show in gallery").clicked() {
                commands.push(Command::ShowView(crate::View::Gallery));
            }
            if ui.small_button("Clear").clicked() {
                state.selected = None;
                state.canvas.clear_outline();
                commands.push(Command::SetGallerySubset(None));
            }
            if let (Some(ids), Some(store)) = (selection, &session.labels) {
                if state.bulk_tag.is_empty() {
                    state.bulk_tag = store.tag_set()[0].clone();
                }
                egui::ComboBox::from_label("tag")
                    .selected_text(&state.bulk_tag)
                    .show_ui(ui, |ui| {
                        for tag in store.tag_set() {
                            ui.selectable_value(&mut state.bulk_tag, tag.clone(), tag);
                        }
                    });
                if ui
                    .small_button(format!("Tag {} selected…", ids.len()))
                    .clicked()
                {
                    state.confirm = Some(super::review::PendingTag::new(
                        session,
                        ids.to_vec(),
                        &state.bulk_tag,
                    ));
                }
            }
        }
    });
    super::bulk_confirm_ui(ui, session, &mut state.confirm, commands);
}

/// One line about a layout: method, points, time, and what the method reports.
fn describe_result(result: &ProjectionResult) -> String {
    let p = &result.projection;
    let mut text = format!("{} · {} points", result.spec.method.label(), p.points.len());
    if let Some((phase, done, total)) = &result.partial {
        text.push_str(&format!(" · so far: {phase} {done}/{total}"));
    }
    if result.spec.method == ProjectionMethod::Pca {
        text.push_str(&format!(
            " · explained variance {:.1}% + {:.1}%",
            100.0 * p.explained_variance_ratio[0],
            100.0 * p.explained_variance_ratio[1]
        ));
    }
    if let Some(q) = result.quality {
        text.push_str(&format!(
            " · kNN kept {:.3}, trustworthiness {:.3}",
            q.knn_preservation, q.trustworthiness
        ));
    }
    let when = if result.reused { "saved, made in" } else { "" };
    text.push_str(&format!(" · {when} {:.2} s", result.duration_secs));
    text
}

/// The method, its parameters, and Compute / Stop.
fn method_ui(
    ui: &mut egui::Ui,
    result: Option<&ProjectionResult>,
    state: &mut ScatterState,
    running: bool,
    commands: &mut Vec<Command>,
) {
    ui.horizontal_wrapped(|ui| {
        let spec = &mut state.spec;
        egui::ComboBox::from_label("layout")
            .selected_text(spec.method.label())
            .show_ui(ui, |ui| {
                for method in ProjectionMethod::ALL {
                    ui.selectable_value(&mut spec.method, method, method.label());
                }
            });
        match spec.method {
            ProjectionMethod::Pca => {}
            ProjectionMethod::Umap => {
                ui.add(
                    egui::DragValue::new(&mut spec.neighbours)
                        .range(2..=200)
                        .prefix("neighbours "),
                );
                ui.add(
                    egui::DragValue::new(&mut spec.min_dist)
                        .range(0.0..=0.99)
                        .speed(0.01)
                        .prefix("min_dist "),
                );
            }
            ProjectionMethod::Tsne => {
                ui.add(
                    egui::DragValue::new(&mut spec.perplexity)
                        .range(2.0..=200.0)
                        .prefix("perplexity "),
                );
            }
        }
        if spec.method != ProjectionMethod::Pca {
            let mut auto = spec.epochs.is_none();
            if ui.checkbox(&mut auto, "default epochs").changed() {
                spec.epochs = if auto { None } else { Some(200) };
            }
            if let Some(epochs) = &mut spec.epochs {
                ui.add(
                    egui::DragValue::new(epochs)
                        .range(1..=5000)
                        .prefix("epochs "),
                );
            }
            ui.add(egui::DragValue::new(&mut spec.seed).prefix("seed "));
        }
        let shown = result.map(|r| (r.spec, r.partial.is_some()));
        if running {
            if ui
                .button("Stop")
                .on_hover_text("keep the layout so far")
                .clicked()
            {
                commands.push(Command::CancelJob(JobKind::Projection));
            }
        } else if shown != Some((*spec, false))
            && ui
                .button("Compute")
                .on_hover_text("a saved layout with these parameters reopens at once")
                .clicked()
        {
            commands.push(Command::ComputeProjection(*spec));
        }
    });
}
