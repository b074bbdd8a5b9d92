//! Projection scatter: the 2D projection (PCA) of every embedding, coloured by listing, label or
//! a metadata column, at any number of points (drawn by a worker into one texture, see
//! [`super::scatter_canvas`]); thumbnails on the points when zoomed in; hover shows the image;
//! click selects it; box and lasso selections limit the gallery to what they enclose; scroll to
//! zoom, drag to pan.

use super::scatter_canvas::{canvas_ui, Canvas};
use super::thumbnails::ThumbnailCache;
use crate::app::{Command, ProjectionResult, Session};
use crate::scatter::ScatterLayer;
use std::collections::HashMap;
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
}

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
    colour_by: ColourBy,
    pub(super) tool: Tool,
    /// Whether thumbnails are drawn on the points when few enough are in view.
    pub(super) show_thumbnails: bool,
    /// Number of items in the last box/lasso selection, and how long finding them took (ms).
    selected: Option<(usize, f64)>,
    /// (projection id, colouring) the layer was built for.
    layer_for: Option<(u64, ColourBy)>,
    pub(super) layer: Option<Arc<ScatterLayer>>,
    pub(super) legend: Vec<LegendEntry>,
    pub(super) canvas: Canvas,
}

impl Default for ScatterState {
    fn default() -> Self {
        Self {
            colour_by: ColourBy::default(),
            tool: Tool::default(),
            show_thumbnails: true,
            selected: None,
            layer_for: None,
            layer: None,
            legend: Vec::new(),
            canvas: Canvas::default(),
        }
    }
}

/// Categorical colours (Tableau 20, dark and light interleaved for neighbours to differ).
const PALETTE: [egui::Color32; 20] = [
    egui::Color32::from_rgb(31, 119, 180),
    egui::Color32::from_rgb(255, 127, 14),
    egui::Color32::from_rgb(44, 160, 44),
    egui::Color32::from_rgb(214, 39, 40),
    egui::Color32::from_rgb(148, 103, 189),
    egui::Color32::from_rgb(140, 86, 75),
    egui::Color32::from_rgb(227, 119, 194),
    egui::Color32::from_rgb(188, 189, 34),
    egui::Color32::from_rgb(23, 190, 207),
    egui::Color32::from_rgb(174, 199, 232),
    egui::Color32::from_rgb(255, 187, 120),
    egui::Color32::from_rgb(152, 223, 138),
    egui::Color32::from_rgb(255, 152, 150),
    egui::Color32::from_rgb(197, 176, 213),
    egui::Color32::from_rgb(196, 156, 148),
    egui::Color32::from_rgb(247, 182, 210),
    egui::Color32::from_rgb(219, 219, 141),
    egui::Color32::from_rgb(158, 218, 229),
    egui::Color32::from_rgb(127, 127, 127),
    egui::Color32::from_rgb(199, 199, 199),
];
const OTHER: egui::Color32 = egui::Color32::from_gray(110);

impl ScatterState {
    /// Rebuilds the coloured layer when the projection or the colouring changed.
    fn refresh(&mut self, session: &Session, result: &ProjectionResult) {
        let key = (result.id, self.colour_by.clone());
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
        };
        let mut palette: Vec<[u8; 3]> = PALETTE.iter().map(|c| [c.r(), c.g(), c.b()]).collect();
        palette.push([OTHER.r(), OTHER.g(), OTHER.b()]);
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

/// Colours points by a category: the most frequent categories get palette colours, the rest
/// (and items without a value) the grey at index `PALETTE.len()`.
fn categorical<'a>(
    count: usize,
    category: impl Fn(usize) -> Option<&'a str>,
) -> (Vec<u8>, Vec<LegendEntry>) {
    let mut frequency: HashMap<&str, usize> = HashMap::new();
    for id in 0..count {
        if let Some(v) = category(id) {
            *frequency.entry(v).or_default() += 1;
        }
    }
    let mut ranked: Vec<(&str, usize)> = frequency.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let coloured = if ranked.len() > PALETTE.len() {
        PALETTE.len() - 1
    } else {
        ranked.len()
    };
    let slot: HashMap<&str, u8> = ranked
        .iter()
        .take(coloured)
        .enumerate()
        .map(|(i, (name, _))| (*name, i as u8))
        .collect();
    let colours: Vec<u8> = (0..count)
        .map(|id| {
            category(id)
                .and_then(|v| slot.get(v).copied())
                .unwrap_or(PALETTE.len() as u8)
        })
        .collect();
    let mut legend: Vec<LegendEntry> = ranked
        .iter()
        .take(coloured)
        .enumerate()
        .map(|(i, (name, n))| LegendEntry {
            name: format!("{name} ({n})"),
            colour: PALETTE[i],
        })
        .collect();
    let others = count - ranked.iter().take(coloured).map(|(_, n)| n).sum::<usize>();
    if others > 0 {
        legend.push(LegendEntry {
            name: format!("other / none ({others})"),
            colour: OTHER,
        });
    }
    (colours, legend)
}

/// Draws the scatter view.
pub fn scatter_ui(
    ui: &mut egui::Ui,
    session: &Session,
    result: Option<&ProjectionResult>,
    state: &mut ScatterState,
    thumbnails: &mut ThumbnailCache,
    commands: &mut Vec<Command>,
) {
    let Some(result) = result else {
        ui.horizontal(|ui| {
            ui.label("Computing the PCA projection…");
            if ui.button("Compute again").clicked() {
                commands.push(Command::ComputeProjection);
            }
        });
        return;
    };
    state.refresh(session, result);
    controls_ui(ui, session, result, state, commands);
    ui.separator();
    canvas_ui(ui, session, result, state, thumbnails, commands);
}

fn controls_ui(
    ui: &mut egui::Ui,
    session: &Session,
    result: &ProjectionResult,
    state: &mut ScatterState,
    commands: &mut Vec<Command>,
) {
    ui.horizontal_wrapped(|ui| {
        let p = &result.projection;
        ui.label(format!(
            "PCA · {} points · explained variance {:.1}% + {:.1}% · {:.2} s",
            p.points.len(),
            100.0 * p.explained_variance_ratio[0],
            100.0 * p.explained_variance_ratio[1],
            result.duration_secs
        ))
        .on_hover_text(format!("saved as {}", result.csv_path.display()));
        ui.separator();
        let text = match &state.colour_by {
            ColourBy::Listing => "listing".to_string(),
            ColourBy::Label => "label".to_string(),
            ColourBy::Metadata(c) => c.clone(),
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
        if let Some((n, millis)) = state.selected {
            ui.separator();
            ui.label(format!("{n} selected"))
                .on_hover_text(format!("found in {millis:.1} ms"));
            if ui.small_button("Show in gallery").clicked() {
                commands.push(Command::ShowView(crate::app::View::Gallery));
            }
            if ui.small_button("Clear").clicked() {
                state.selected = None;
                state.canvas.clear_outline();
                commands.push(Command::SetGallerySubset(None));
            }
        }
    });
}
