//! The Review view: a queue of pairs to judge (near-duplicates across listings, listing
//! outliers, confusable listings, unlabelled hard pairs), one pair at a time with both images
//! large; keys S / D / U give a verdict and move on, Space skips, ← goes back, Ctrl+Z undoes.
//! Near-duplicates come with the histogram of each image's nearest other-listing cosine
//! (click it to move the threshold) and a button that tags a whole cluster.

use super::review_images::LargeImages;
use super::theme;
use super::thumbnails::ThumbnailCache;
use crate::{Command, ReviewRequest, ReviewResult, Session};
use natview_analysis::review::{ReviewKind, SimilarityHistogram};
use natview_labels::Verdict;

/// The Review view's state.
#[derive(Default)]
pub struct ReviewViewState {
    /// The queue asked for (kind, threshold, limit).
    pub request: ReviewRequest,
    /// The pair shown (index into the queue).
    cursor: usize,
    /// Where verdicts were given (queue index, the verdict), for going back on undo.
    judged_at: Vec<(usize, Option<Verdict>)>,
    /// Large images of the pairs.
    images: LargeImages,
    /// The tag a cluster gets from "Tag cluster".
    cluster_tag: String,
    /// A bulk tag waiting for confirmation.
    confirm: Option<PendingTag>,
}

impl ReviewViewState {
    /// A new queue arrived: start at its first pair.
    ///
    /// The request stays as the user left it (it may have changed while the job ran).
    pub fn queue_arrived(&mut self) {
        self.cursor = 0;
        self.judged_at.clear();
        self.confirm = None;
    }

    /// The pair shown (index into the queue).
    pub fn cursor(&self) -> usize {
        self.cursor
    }
}

/// Draws the Review view.
pub fn review_ui(
    ui: &mut egui::Ui,
    session: &Session,
    result: Option<&ReviewResult>,
    busy: bool,
    state: &mut ReviewViewState,
    thumbnails: &mut ThumbnailCache,
    commands: &mut Vec<Command>,
) {
    let ctx = ui.ctx().clone();
    state.images.follow(&session.set.meta.items_fingerprint);
    state.images.receive(&ctx);
    controls_ui(ui, result, busy, state, commands);
    let Some(result) = result.filter(|r| r.request.kind == state.request.kind) else {
        ui.add_space(theme::GAP_PX * 4.0);
        ui.label(
            egui::RichText::new(if busy {
                "Building the queue…"
            } else {
                "Press Find to build this queue."
            })
            .color(theme::MUTED),
        );
        return;
    };
    if let Some(histogram) = &result.queue.histogram {
        if let Some(threshold) = histogram_ui(ui, histogram, state.request.options.threshold) {
            state.request.options.threshold = threshold;
            commands.push(Command::ComputeReview(state.request));
        }
    }
    let pairs = &result.queue.pairs;
    let judged = session.labels.as_ref().map_or(0, |store| {
        pairs
            .iter()
            .filter(|p| {
                store
                    .verdict_of(session.item_key(p.a), session.item_key(p.b))
                    .is_some()
            })
            .count()
    });
    ui.label(format!(
        "{} — {:.2} s. {judged} of {} judged.",
        result.queue.summary,
        result.seconds,
        pairs.len()
    ));
    if pairs.is_empty() {
        ui.label(egui::RichText::new("Nothing to review here.").color(theme::MUTED));
        return;
    }
    state.cursor = state.cursor.min(pairs.len());
    if state.cursor == pairs.len() {
        ui.label(format!(
            "End of the queue: {judged} of {} pairs judged. ← goes back.",
            pairs.len()
        ));
        let pressed = keys(&ctx);
        if pressed.undo {
            back_to_undone_verdict(session, pairs, state);
        } else if pressed.back {
            state.cursor -= 1;
        }
        return;
    }
    let pair = &pairs[state.cursor];
    let current = session
        .labels
        .as_ref()
        .and_then(|store| store.verdict_of(session.item_key(pair.a), session.item_key(pair.b)));
    ui.horizontal(|ui| {
        ui.strong(format!("Pair {} of {}", state.cursor + 1, pairs.len()));
        ui.label(format!("cosine {:.3}", pair.similarity));
        ui.label(egui::RichText::new(&pair.why).color(theme::MUTED));
    });
    ui.horizontal(|ui| {
        for id in [pair.a, pair.b] {
            ui.vertical(|ui| image_card_ui(ui, session, id, state, thumbnails, commands));
        }
    });
    // The next pair's images load while this one is judged.
    if let Some(next) = pairs.get(state.cursor + 1) {
        for id in [next.a, next.b] {
            let path = session.dataset.item_path(&session.set.items[id]);
            state.images.request(&ctx, id, path);
        }
    }
    let pressed = keys(&ctx);
    let mut chosen: Option<Option<Verdict>> = None;
    ui.horizontal(|ui| {
        for (verdict, key) in [
            (Verdict::Same, "S"),
            (Verdict::Different, "D"),
            (Verdict::NearDuplicate, "U"),
        ] {
            let on = current == Some(verdict);
            if ui
                .selectable_label(on, format!("{key}  {}", verdict.as_str()))
                .on_hover_text(format!("mark this pair {} and go on", verdict.as_str()))
                .clicked()
            {
                chosen = Some(Some(verdict));
            }
        }
        if ui.button("Space  skip").clicked() {
            state.cursor += 1;
        }
        if ui
            .add_enabled(state.cursor > 0, egui::Button::new("←  back"))
            .clicked()
        {
            state.cursor -= 1;
        }
        if current.is_some() && ui.button("clear verdict").clicked() {
            chosen = Some(None);
        }
        ui.label(
            egui::RichText::new(match current {
                Some(v) => format!("judged: {v}"),
                None => "unjudged".into(),
            })
            .color(theme::MUTED),
        );
    });
    if let Some(v) = pressed.verdict {
        chosen = Some(Some(v));
    }
    if let Some(verdict) = chosen {
        commands.push(Command::SetVerdict {
            query: pair.a,
            neighbour: pair.b,
            verdict,
        });
        state.judged_at.push((state.cursor, verdict));
        state.cursor += 1;
    } else if pressed.skip {
        state.cursor += 1;
    } else if pressed.back && state.cursor > 0 {
        state.cursor -= 1;
    }
    if pressed.undo {
        back_to_undone_verdict(session, pairs, state);
    }
    if let Some(cluster) = pair.cluster.and_then(|c| result.queue.clusters.get(c)) {
        cluster_ui(ui, session, cluster, state, commands);
    }
}

/// After Ctrl+Z (already applied this frame): when it took back the last verdict given here,
/// the view returns to that pair; when it undid something else (a tag), it stays.
fn back_to_undone_verdict(
    session: &Session,
    pairs: &[natview_analysis::review::ReviewPair],
    state: &mut ReviewViewState,
) {
    let Some(&(at, given)) = state.judged_at.last() else {
        return;
    };
    let Some(pair) = pairs.get(at) else { return };
    let now = session
        .labels
        .as_ref()
        .and_then(|store| store.verdict_of(session.item_key(pair.a), session.item_key(pair.b)));
    if now != given {
        state.judged_at.pop();
        state.cursor = at;
    }
}

/// Kind, threshold, limit, Find / Stop.
fn controls_ui(
    ui: &mut egui::Ui,
    result: Option<&ReviewResult>,
    busy: bool,
    state: &mut ReviewViewState,
    commands: &mut Vec<Command>,
) {
    ui.horizontal_wrapped(|ui| {
        ui.heading("Review");
        let before = state.request.kind;
        egui::ComboBox::from_label("queue")
            .selected_text(state.request.kind.label())
            .show_ui(ui, |ui| {
                for kind in ReviewKind::ALL {
                    ui.selectable_value(&mut state.request.kind, kind, kind.label());
                }
            });
        if state.request.kind == ReviewKind::NearDuplicates {
            let label = ui.label("cosine ≥");
            let slider = ui
                .add(
                    egui::DragValue::new(&mut state.request.options.threshold)
                        .range(0.0..=1.0)
                        .speed(0.002)
                        .max_decimals(3),
                )
                .labelled_by(label.id);
            if slider.drag_stopped() || slider.lost_focus() {
                commands.push(Command::ComputeReview(state.request));
            }
        }
        let label = ui.label("at most");
        ui.add(
            egui::DragValue::new(&mut state.request.options.limit)
                .range(10..=100_000)
                .suffix(" pairs"),
        )
        .labelled_by(label.id);
        let stale = result.is_none_or(|r| r.request != state.request);
        if ui
            .add_enabled(
                !busy,
                egui::Button::new(if stale { "Find" } else { "Find again" }),
            )
            .clicked()
            || (before != state.request.kind && !busy)
        {
            commands.push(Command::ComputeReview(state.request));
        }
        if busy && ui.button("Stop").clicked() {
            commands.push(Command::CancelJob(crate::JobKind::Review));
        }
    });
}

/// One image of the pair, large, with its listing, path and tags.
fn image_card_ui(
    ui: &mut egui::Ui,
    session: &Session,
    id: usize,
    state: &mut ReviewViewState,
    thumbnails: &mut ThumbnailCache,
    commands: &mut Vec<Command>,
) {
    let ctx = ui.ctx().clone();
    let item = &session.set.items[id];
    let side = super::review_images::LARGE_PX as f32;
    let path = session.dataset.item_path(item);
    let response = match state.images.get(&ctx, id, path) {
        Some(texture) => {
            let size = texture.size_vec2();
            let scale = (side / size.x.max(size.y)).min(side / 64.0);
            ui.add(
                egui::Image::new(&texture)
                    .fit_to_exact_size(size * scale)
                    .sense(egui::Sense::click()),
            )
        }
        None => thumbnails.clickable(ui, id, side),
    };
    if response
        .on_hover_text("click: show its neighbours (and tag it with 1–9)")
        .clicked()
    {
        commands.push(Command::Select(id));
    }
    ui.strong(&item.listing);
    ui.label(
        egui::RichText::new(item.path.to_string_lossy())
            .small()
            .color(theme::MUTED),
    );
    if let Some(tags) = session
        .labels
        .as_ref()
        .and_then(|s| s.tags_of(session.item_key(id)))
    {
        let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
        ui.label(egui::RichText::new(tags.join(", ")).small());
    }
}

/// The duplicate cluster of the pair: its size and a bulk tag for all of it.
fn cluster_ui(
    ui: &mut egui::Ui,
    session: &Session,
    cluster: &[usize],
    state: &mut ReviewViewState,
    commands: &mut Vec<Command>,
) {
    let Some(store) = &session.labels else { return };
    if state.cluster_tag.is_empty() {
        state.cluster_tag = store.tag_set()[2].clone();
    }
    ui.separator();
    ui.horizontal_wrapped(|ui| {
        ui.label(format!("This pair's cluster has {} images.", cluster.len()));
        egui::ComboBox::from_label("tag")
            .selected_text(&state.cluster_tag)
            .show_ui(ui, |ui| {
                for tag in store.tag_set() {
                    ui.selectable_value(&mut state.cluster_tag, tag.clone(), tag);
                }
            });
        if ui
            .button(format!("Tag all {} images…", cluster.len()))
            .clicked()
        {
            state.confirm = Some(PendingTag::new(
                session,
                cluster.to_vec(),
                &state.cluster_tag,
            ));
        }
    });
    bulk_confirm_ui(ui, session, &mut state.confirm, commands);
}

/// A bulk tag waiting for its confirmation: the items (row ids of the session it was asked in,
/// recognised by its items fingerprint) and the tag.
pub struct PendingTag {
    items: Vec<usize>,
    tag: String,
    for_items: String,
}

impl PendingTag {
    /// Tag `items` of `session` with `tag`, once confirmed.
    pub fn new(session: &Session, items: Vec<usize>, tag: &str) -> Self {
        Self {
            items,
            tag: tag.to_string(),
            for_items: session.set.meta.items_fingerprint.clone(),
        }
    }
}

/// The confirmation of a bulk tag, naming the count; Yes sends [`Command::TagMany`]. A pending
/// tag asked for in another session (other items, other row ids) is dropped unasked.
pub fn bulk_confirm_ui(
    ui: &mut egui::Ui,
    session: &Session,
    confirm: &mut Option<PendingTag>,
    commands: &mut Vec<Command>,
) {
    if confirm
        .as_ref()
        .is_some_and(|p| p.for_items != session.set.meta.items_fingerprint)
    {
        *confirm = None;
    }
    let Some(PendingTag { items, tag, .. }) = confirm.as_ref() else {
        return;
    };
    let mut done = false;
    ui.horizontal(|ui| {
        ui.label(
            egui::RichText::new(format!("Tag {} images as `{tag}`?", items.len()))
                .color(theme::SELECTED),
        );
        if ui.button(format!("Yes, tag {}", items.len())).clicked() {
            commands.push(Command::TagMany {
                items: items.clone(),
                tag: tag.clone(),
                add: true,
            });
            done = true;
        }
        if ui.button("Cancel").clicked() {
            done = true;
        }
    });
    if done {
        *confirm = None;
    }
}

/// The keys of the Review view pressed this frame (none while a text field has the keyboard).
struct ReviewKeys {
    verdict: Option<Verdict>,
    skip: bool,
    back: bool,
    undo: bool,
}

fn keys(ctx: &egui::Context) -> ReviewKeys {
    if ctx.text_edit_focused() {
        return ReviewKeys {
            verdict: None,
            skip: false,
            back: false,
            undo: false,
        };
    }
    ctx.input(|i| {
        let plain = |key| i.key_pressed(key) && i.modifiers.is_none();
        ReviewKeys {
            verdict: if plain(egui::Key::S) {
                Some(Verdict::Same)
            } else if plain(egui::Key::D) {
                Some(Verdict::Different)
            } else if plain(egui::Key::U) {
                Some(Verdict::NearDuplicate)
            } else {
                None
            },
            skip: plain(egui::Key::Space) || plain(egui::Key::ArrowRight),
            back: plain(egui::Key::ArrowLeft) || plain(egui::Key::Backspace),
            undo: i.modifiers.command && i.key_pressed(egui::Key::Z),
        }
    })
}

/// The histogram of each image's nearest other-listing cosine with the threshold marked;
/// returns a new threshold when the user clicks on it.
fn histogram_ui(ui: &mut egui::Ui, histogram: &SimilarityHistogram, threshold: f32) -> Option<f32> {
    let width = ui.available_width().min(720.0);
    let (rect, response) = ui.allocate_exact_size(egui::vec2(width, 64.0), egui::Sense::click());
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 2.0, egui::Color32::from_gray(30));
    let bins = histogram.counts.len().max(1);
    let peak = histogram.counts.iter().copied().max().unwrap_or(1).max(1) as f32;
    let bar = rect.width() / bins as f32;
    let x_of =
        |v: f32| rect.left() + (v - histogram.lo) / (histogram.hi - histogram.lo) * rect.width();
    for (i, &count) in histogram.counts.iter().enumerate() {
        if count == 0 {
            continue;
        }
        // Square-root heights keep the small top-end bins visible.
        let h = (count as f32 / peak).sqrt() * (rect.height() - 14.0);
        let left = rect.left() + i as f32 * bar;
        let from = histogram.lo + i as f32 * (histogram.hi - histogram.lo) / bins as f32;
        let colour = if from >= threshold {
            theme::ERROR
        } else {
            egui::Color32::from_gray(150)
        };
        painter.rect_filled(
            egui::Rect::from_min_max(
                egui::pos2(left + 0.5, rect.bottom() - 12.0 - h),
                egui::pos2(left + bar - 0.5, rect.bottom() - 12.0),
            ),
            0.0,
            colour,
        );
    }
    let x = x_of(threshold);
    painter.line_segment(
        [
            egui::pos2(x, rect.top()),
            egui::pos2(x, rect.bottom() - 12.0),
        ],
        egui::Stroke::new(1.5, theme::SELECTED),
    );
    let font = egui::FontId::proportional(10.0);
    for v in [
        histogram.lo,
        0.5 * (histogram.lo + histogram.hi),
        histogram.hi,
    ] {
        painter.text(
            egui::pos2(
                x_of(v).clamp(rect.left() + 12.0, rect.right() - 12.0),
                rect.bottom(),
            ),
            egui::Align2::CENTER_BOTTOM,
            format!("{v:.2}"),
            font.clone(),
            theme::MUTED,
        );
    }
    let at = histogram.count_from(threshold);
    let response = response.on_hover_text(format!(
        "each image's nearest other-listing cosine; {at} image(s) at or above {threshold:.3}. Click to move the threshold."
    ));
    if response.clicked() {
        let pos = response.interact_pointer_pos()?;
        let t = histogram.lo + (pos.x - rect.left()) / rect.width() * (histogram.hi - histogram.lo);
        return Some(t.clamp(histogram.lo, histogram.hi));
    }
    None
}
