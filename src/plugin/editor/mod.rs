//! The egui editor (cargo feature `editor`, on by default).
//!
//! Left column: capture (target, start/stop, input meter, captured seconds, learning progress
//! with Cancel), learning settings, engine settings and dictionary files. Right: the learned
//! templates W_k as small log-frequency spectra colored by their source, the live activations H
//! as a scrolling heat map, the source learned live (its templates drawn as they change,
//! Freeze, Export, Keep as capture), the component-to-source routing matrix and one strip
//! per source (name, color, gain, mute, solo, mode, level meter) with the latency. The
//! meters read the per-source peaks the audio thread writes into atomics
//! ([`EditorFeed::take_source_peaks`]); the live templates are re-read from the persisted
//! `rest_templates` after every refit the live worker thread publishes.
//!
//! Every edit goes through the host: parameters with `begin_set_parameter` / `set_parameter` /
//! `end_set_parameter` gestures, structural settings through the persisted fields (the
//! `assignment`, `learn`, `load_path`, `export_path` and `source_labels` fields of
//! [`SeparatorParams`], set like a state load so the trainer thread acts on them and the project
//! saves them). The editor reads the activations and the input level from the
//! [`EditorFeed`] (lock-free, fed once per hop by the audio thread while the window is open).

pub mod logic;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use egui::{
    self, Color32, ColorImage, CornerRadius, Pos2, Rect, RichText, Sense, Stroke, TextureHandle,
    TextureOptions, Vec2,
};
use nice_plug::context::gui::GuiContext;
use nice_plug::editor::dpi::LogicalSize;
use nice_plug::prelude::*;
use nice_plug_egui::resizable_window::ResizableWindow;
use nice_plug_egui::widgets::ParamSlider;
use nice_plug_egui::{
    create_egui_editor, EguiEditor, EguiEditorState, EguiNiceSettings, NiceEguiApp,
};

use super::feed::{EditorFeed, FeedCursor};
use super::params::{CaptureTarget, LearnSettings, SeparatorParams, SourceLabels};
use super::status::Status;
use super::trainer::CAPTURE_SECONDS;
use crate::dsp::engine::{FFT_SIZES, MAX_SOURCES};
use logic::{component_weights, current_assignment, level, meter_step, move_component, seconds};

/// The editor type of the plugin.
pub type SeparatorEditor = EguiEditor<SeparatorApp>;

/// Default window size, logical pixels.
pub const DEFAULT_SIZE: (f32, f32) = (1040.0, 720.0);
/// Smallest window size, logical pixels.
pub const MIN_SIZE: (f32, f32) = (760.0, 540.0);
/// Frames of activation history in the heat map.
const HISTORY: usize = 320;
/// Points per template plot.
const CURVE_POINTS: usize = 48;

/// The editor state of a new plugin instance (size and zoom 1).
pub fn default_state() -> Arc<EguiEditorState> {
    EguiEditorState::from_size(LogicalSize::new(DEFAULT_SIZE.0, DEFAULT_SIZE.1), 1.0)
}

/// Makes the editor.
pub fn create(
    params: Arc<SeparatorParams>,
    status: Arc<Status>,
    feed: Arc<EditorFeed>,
    state: Arc<EguiEditorState>,
    aux: bool,
) -> Option<SeparatorEditor> {
    let settings = EguiNiceSettings::new()
        .with_tile("NMF Separator")
        .with_resize_hint(
            ResizeHint::resizable().with_min_logical_size(LogicalSize::new(MIN_SIZE.0, MIN_SIZE.1)),
        );
    create_egui_editor(
        state,
        nice_plug_egui::RepaintNotifier::new(),
        settings,
        SeparatorApp::new(params, status, feed, aux),
    )
}

/// Cached view of the dictionary (re-read when the trainer sent a new one).
#[derive(Default)]
struct DictView {
    key: (u64, u64, u64),
    curves: Vec<Vec<f32>>,
    weights: Vec<f32>,
    labels: Vec<String>,
    n_fft: usize,
    sample_rate: u32,
    /// How the trainer mapped it to the session ("learned at 44100 Hz, mapped to 48000 Hz"),
    /// or "".
    mapping: String,
}

/// The editor's state between frames.
pub struct SeparatorApp {
    params: Arc<SeparatorParams>,
    status: Arc<Status>,
    feed: Arc<EditorFeed>,
    aux: bool,
    gui: Option<GuiContext>,
    last_frame: Option<Instant>,
    meter_db: f32,
    meter_hold_db: f32,
    hold_time: f32,
    /// Last capture length shown after a capture ended, seconds.
    last_capture_s: f32,
    cursor: FeedCursor,
    scratch: Vec<f32>,
    /// Activation history, newest last, `HISTORY` columns.
    history: std::collections::VecDeque<Vec<f32>>,
    heat: Option<TextureHandle>,
    dict: DictView,
    path: String,
    /// Level of every source row, dB (smoothed like the input meter).
    source_db: [f32; MAX_SOURCES],
    /// Curves of the templates of the source learned live, and the refit count they are of.
    rest_curves: Vec<Vec<f32>>,
    rest_key: Option<u64>,
}

impl SeparatorApp {
    fn new(
        params: Arc<SeparatorParams>,
        status: Arc<Status>,
        feed: Arc<EditorFeed>,
        aux: bool,
    ) -> Self {
        Self {
            params,
            status,
            feed,
            aux,
            gui: None,
            last_frame: None,
            meter_db: -90.0,
            meter_hold_db: -90.0,
            hold_time: 0.0,
            last_capture_s: 0.0,
            cursor: FeedCursor::default(),
            scratch: Vec::with_capacity(super::feed::FEED_COMPONENTS),
            history: std::collections::VecDeque::with_capacity(HISTORY + 1),
            heat: None,
            dict: DictView::default(),
            path: String::from("dictionary.npz"),
            source_db: [-90.0; MAX_SOURCES],
            rest_curves: Vec::new(),
            rest_key: None,
        }
    }

    fn refresh_dictionary(&mut self) {
        let key = (
            self.status.dictionaries_sent.load(Ordering::Acquire),
            self.params.dictionary.generation(),
            self.status.clips_learned.load(Ordering::Acquire),
        );
        if key == self.dict.key && self.dict.key != (0, 0, 0) {
            return;
        }
        let d = self.params.dictionary.lock().clone();
        self.dict = match d {
            Some(d) => DictView {
                key,
                curves: logic::template_curves(&d, CURVE_POINTS),
                weights: component_weights(&d),
                labels: d.labels.clone(),
                n_fft: d.n_fft,
                sample_rate: d.sample_rate,
                mapping: self.status.mapping_note(),
            },
            None => DictView {
                key,
                ..DictView::default()
            },
        };
        if self.dict.key == (0, 0, 0) {
            // Make sure an empty start is not taken for "already read".
            self.dict.key = (0, 0, 1);
        }
    }

    /// Re-reads the learned templates of the source learned live after every refit the
    /// live worker thread published (or a state load).
    fn refresh_rest(&mut self) {
        let key = self.status.rest_refits.load(Ordering::Acquire)
            + self.params.rest_templates.generation();
        if self.rest_key == Some(key) {
            return;
        }
        self.rest_key = Some(key);
        let d = self.params.rest_templates.lock().clone();
        self.rest_curves = d
            .map(|d| logic::template_curves(&d, CURVE_POINTS))
            .unwrap_or_default();
    }

    fn pull_feed(&mut self, dt: f32) {
        let peak = self.feed.take_input_peak();
        self.meter_db = meter_step(self.meter_db, peak, dt, 30.0);
        if self.meter_db >= self.meter_hold_db {
            self.meter_hold_db = self.meter_db;
            self.hold_time = 0.0;
        } else {
            self.hold_time += dt;
            if self.hold_time > 1.5 {
                self.meter_hold_db = self.meter_db;
            }
        }
        let peaks = self.feed.take_source_peaks();
        for (db, &p) in self.source_db.iter_mut().zip(&peaks) {
            *db = meter_step(*db, p, dt, 30.0);
        }
        let history = &mut self.history;
        self.feed
            .read_new(&mut self.cursor, &mut self.scratch, |h| {
                let mut col = if history.len() >= HISTORY {
                    history.pop_front().unwrap_or_default()
                } else {
                    Vec::new()
                };
                col.clear();
                col.extend_from_slice(h);
                history.push_back(col);
            });
    }
}

fn source_color(labels: &SourceLabels, s: usize) -> Color32 {
    let [r, g, b] = labels.color(s);
    Color32::from_rgb(r, g, b)
}

/// A parameter change as a complete host gesture.
fn set_param<P: Param>(setter: &ParamSetter, param: &P, value: P::Plain) {
    setter.begin_set_parameter(param);
    setter.set_parameter(param, value);
    setter.end_set_parameter(param);
}

impl NiceEguiApp for SeparatorApp {
    fn build(
        &mut self,
        egui_ctx: egui::Context,
        nice_gui_ctx: GuiContext,
        _frame: &mut nice_plug_egui::Frame,
    ) -> Result<(), nice_plug_egui::baseview::HandlerError> {
        let mut style = (*egui_ctx.global_style()).clone();
        style.spacing.item_spacing = Vec2::new(8.0, 6.0);
        egui_ctx.set_global_style(style);
        self.gui = Some(nice_gui_ctx);
        // A new window has a new egui context: textures of the previous one are gone.
        self.heat = None;
        self.feed.set_open(true);
        Ok(())
    }

    fn editor_closed(&mut self) {
        self.feed.set_open(false);
        self.heat = None;
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut nice_plug_egui::Frame) {
        let Some(gui) = self.gui.clone() else {
            return;
        };
        let setter = gui.param_setter();
        let now = Instant::now();
        let dt = self
            .last_frame
            .map_or(0.0, |t| now.duration_since(t).as_secs_f32());
        self.last_frame = Some(now);
        self.pull_feed(dt);
        self.refresh_dictionary();
        self.refresh_rest();
        ui.ctx().request_repaint_after(Duration::from_millis(30));

        ResizableWindow::new("nmf-separator-editor")
            .min_size(Vec2::new(MIN_SIZE.0, MIN_SIZE.1))
            .show(ui, |ui| {
                egui::Frame::new()
                    .inner_margin(egui::Margin::same(8))
                    .show(ui, |ui| self.contents(ui, &setter));
            });
    }
}

impl SeparatorApp {
    fn contents(&mut self, ui: &mut egui::Ui, setter: &ParamSetter) {
        self.header(ui);
        ui.separator();
        ui.horizontal_top(|ui| {
            ui.vertical(|ui| {
                ui.set_width(300.0);
                self.capture_panel(ui, setter);
                ui.add_space(6.0);
                self.learning_panel(ui, setter);
                ui.add_space(6.0);
                self.files_panel(ui);
            });
            ui.separator();
            ui.vertical(|ui| {
                self.components_panel(ui);
                ui.add_space(6.0);
                self.live_panel(ui, setter);
                ui.add_space(6.0);
                self.routing_panel(ui, setter);
            });
        });
    }

    fn header(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.heading(RichText::new("NMF Separator").strong());
            ui.label(if self.aux {
                "main mix + 4 source outputs"
            } else {
                "main mix"
            });
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                let zoom = ui.ctx().zoom_factor();
                for z in [2.0f32, 1.5, 1.0] {
                    if ui
                        .selectable_label((zoom - z).abs() < 0.01, format!("{:.0}%", z * 100.0))
                        .clicked()
                    {
                        ui.ctx().set_zoom_factor(z);
                    }
                }
                ui.label("Scale");
            });
        });
        let msg = self.status.message();
        ui.label(
            RichText::new(if msg.is_empty() { "Ready." } else { &msg })
                .color(ui.visuals().weak_text_color()),
        );
    }

    fn capture_panel(&mut self, ui: &mut egui::Ui, setter: &ParamSetter) {
        let p = self.params.clone();
        let labels = p.source_labels.lock().clone();
        ui.group(|ui| {
            ui.set_width(ui.available_width());
            ui.label(RichText::new("Capture").strong());
            let target = p.capture_target.value();
            let capturing = p.capture.value();
            ui.horizontal_wrapped(|ui| {
                ui.label("Target");
                for (i, t) in [
                    CaptureTarget::Source1,
                    CaptureTarget::Source2,
                    CaptureTarget::Source3,
                    CaptureTarget::Source4,
                    CaptureTarget::WholeMix,
                ]
                .into_iter()
                .enumerate()
                {
                    let name = if i < MAX_SOURCES {
                        labels.name(i)
                    } else {
                        "Whole mix".to_string()
                    };
                    let mut text = RichText::new(name);
                    if i < MAX_SOURCES {
                        text = text.color(source_color(&labels, i));
                    }
                    let r = ui.add_enabled(!capturing, egui::Button::selectable(target == t, text));
                    if r.clicked() && target != t {
                        set_param(setter, &p.capture_target, t);
                    }
                }
            });
            ui.horizontal(|ui| {
                let (label, color) = if capturing {
                    ("Stop and learn", Color32::from_rgb(240, 80, 70))
                } else {
                    ("Capture", ui.visuals().text_color())
                };
                let learning = self.status.learning.load(Ordering::Acquire);
                let button = egui::Button::new(RichText::new(label).color(color).strong())
                    .min_size(Vec2::new(130.0, 26.0));
                if ui.add_enabled(capturing || !learning, button).clicked() {
                    set_param(setter, &p.capture, !capturing);
                }
                let sr = self.feed.sample_rate();
                let len = self.status.capture_len.load(Ordering::Acquire);
                let secs = seconds(len, sr);
                if capturing {
                    self.last_capture_s = secs;
                }
                ui.label(format!(
                    "{:.1} s / {:.0} s",
                    if capturing { secs } else { self.last_capture_s },
                    CAPTURE_SECONDS
                ));
            });
            self.meter(ui);
            if self.status.learning.load(Ordering::Acquire) {
                ui.horizontal(|ui| {
                    let progress = self.status.progress.load(Ordering::Acquire);
                    ui.add(
                        egui::ProgressBar::new(progress)
                            .desired_width(ui.available_width() - 80.0)
                            .text(format!("learning {:.0}%", progress * 100.0)),
                    );
                    if ui.button("Cancel").clicked() {
                        self.status.cancel.store(true, Ordering::Release);
                    }
                });
            } else {
                let n = self.status.clips_learned.load(Ordering::Acquire);
                ui.label(format!("Clips learned: {n}"));
            }
        });
    }

    fn meter(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.label("Input");
            let width = ui.available_width() - 70.0;
            let (rect, _) = ui.allocate_exact_size(Vec2::new(width, 14.0), Sense::hover());
            let painter = ui.painter();
            painter.rect_filled(rect, CornerRadius::same(2), Color32::from_gray(30));
            let x = |db: f32| rect.left() + rect.width() * ((db + 60.0) / 60.0).clamp(0.0, 1.0);
            let fill = Rect::from_min_max(rect.min, Pos2::new(x(self.meter_db), rect.max.y));
            let color = if self.meter_db > -1.0 {
                Color32::from_rgb(230, 70, 60)
            } else if self.meter_db > -12.0 {
                Color32::from_rgb(230, 200, 60)
            } else {
                Color32::from_rgb(90, 200, 110)
            };
            painter.rect_filled(fill, CornerRadius::same(2), color);
            let hx = x(self.meter_hold_db);
            painter.line_segment(
                [Pos2::new(hx, rect.top()), Pos2::new(hx, rect.bottom())],
                Stroke::new(1.5, Color32::WHITE),
            );
            ui.label(if self.meter_db <= -89.0 {
                "-inf dB".to_string()
            } else {
                format!("{:.1} dB", self.meter_db)
            });
        });
    }

    fn learning_panel(&mut self, ui: &mut egui::Ui, setter: &ParamSetter) {
        let p = self.params.clone();
        ui.group(|ui| {
            ui.set_width(ui.available_width());
            ui.label(RichText::new("Learning").strong());
            let old = p.learn.lock().clone();
            let mut s: LearnSettings = old.clone();
            egui::Grid::new("learn")
                .num_columns(2)
                .spacing([10.0, 4.0])
                .show(ui, |ui| {
                    ui.label("Components per source");
                    ui.add(egui::DragValue::new(&mut s.components_per_source).range(1..=64));
                    ui.end_row();
                    ui.label("Components (whole mix)");
                    ui.add(egui::DragValue::new(&mut s.mix_components).range(1..=128));
                    ui.end_row();
                    ui.label("Beta (0 IS, 1 KL, 2 EU)");
                    ui.add(
                        egui::DragValue::new(&mut s.beta)
                            .range(0.0..=2.0)
                            .speed(0.01)
                            .max_decimals(2),
                    );
                    ui.end_row();
                    ui.label("FFT size");
                    egui::ComboBox::from_id_salt("n_fft")
                        .selected_text(s.n_fft.to_string())
                        .show_ui(ui, |ui| {
                            for n in FFT_SIZES {
                                ui.selectable_value(&mut s.n_fft, n, n.to_string());
                            }
                        });
                    ui.end_row();
                    ui.label("Iterations (fit)");
                    ui.add(egui::DragValue::new(&mut s.iterations).range(10..=2000));
                    ui.end_row();
                    ui.label("Capture given the others");
                    ui.checkbox(&mut s.given_known, "").on_hover_text(
                        "A capture into a source learns only what the other sources' \
                             templates do not explain (it need not be solo)",
                    );
                    ui.end_row();
                });
            if s != old {
                p.learn.set_external(s);
            }
            ui.separator();
            ui.label(RichText::new("Separation").strong());
            egui::Grid::new("engine")
                .num_columns(2)
                .spacing([10.0, 4.0])
                .show(ui, |ui| {
                    ui.label("Iterations per frame");
                    ui.add(ParamSlider::for_param(&p.iterations, setter).with_width(110.0));
                    ui.end_row();
                    ui.label("Mask exponent");
                    ui.add(ParamSlider::for_param(&p.mask_power, setter).with_width(110.0));
                    ui.end_row();
                    ui.label("Sparsity");
                    ui.add(ParamSlider::for_param(&p.sparsity, setter).with_width(110.0));
                    ui.end_row();
                    ui.label("Solver");
                    ui.add(ParamSlider::for_param(&p.solver, setter).with_width(110.0));
                    ui.end_row();
                });
        });
    }

    fn files_panel(&mut self, ui: &mut egui::Ui) {
        ui.group(|ui| {
            ui.set_width(ui.available_width());
            ui.label(RichText::new("Dictionary file (.npz, nmfsep format)").strong());
            ui.add(
                egui::TextEdit::singleline(&mut self.path)
                    .desired_width(ui.available_width())
                    .hint_text("/path/to/dictionary.npz"),
            );
            ui.horizontal(|ui| {
                let path = self.path.trim().to_string();
                if ui
                    .add_enabled(!path.is_empty(), egui::Button::new("Load"))
                    .on_hover_text("Replace the dictionary (default routing)")
                    .clicked()
                {
                    self.params.load_path.set_external(path.clone());
                }
                if ui
                    .add_enabled(
                        !path.is_empty() && !self.dict.labels.is_empty(),
                        egui::Button::new("Save"),
                    )
                    .clicked()
                {
                    self.params.export_path.set_external(path);
                }
                if !self.dict.labels.is_empty() {
                    ui.label(format!(
                        "{} comp., {} Hz, n_fft {}",
                        self.dict.labels.len(),
                        self.dict.sample_rate,
                        self.dict.n_fft
                    ));
                }
            });
            if !self.dict.labels.is_empty() && !self.dict.mapping.is_empty() {
                ui.label(
                    RichText::new(&self.dict.mapping)
                        .small()
                        .color(Color32::from_gray(170)),
                )
                .on_hover_text(
                    "The dictionary was learned at another sample rate: its templates are \
                     mapped onto this session's frequencies. The project keeps the original.",
                );
            }
        });
    }

    fn components_panel(&mut self, ui: &mut egui::Ui) {
        let labels = self.params.source_labels.lock().clone();
        let assignment = current_assignment(&self.params);
        let k = self.dict.curves.len();
        ui.label(RichText::new(format!("Templates W (log frequency, {k} components)")).strong());
        if k == 0 {
            ui.label("No dictionary yet: capture a source and stop to learn, or load a file.");
        }
        let width = ui.available_width();
        let cols = ((width + 4.0) / 84.0).floor().max(1.0) as usize;
        // Minus the scroll bar's room.
        let cell = Vec2::new((width - 12.0) / cols as f32 - 4.0, 44.0);
        let rows = k.div_ceil(cols);
        let max_rows = 3usize;
        egui::ScrollArea::vertical()
            .id_salt("templates")
            .max_height((cell.y + 4.0) * max_rows.min(rows.max(1)) as f32 - 4.0)
            .show(ui, |ui| {
                egui::Grid::new("templates_grid")
                    .spacing([4.0, 4.0])
                    .show(ui, |ui| {
                        for (i, curve) in self.dict.curves.iter().enumerate() {
                            let s = assignment.get(i).copied().unwrap_or(0);
                            let color = source_color(&labels, s);
                            let (rect, resp) = ui.allocate_exact_size(cell, Sense::hover());
                            draw_template(ui, rect, curve, color, i);
                            resp.on_hover_text(format!(
                                "component {}: {} -> {}",
                                i + 1,
                                self.dict.labels.get(i).map(String::as_str).unwrap_or(""),
                                labels.name(s)
                            ));
                            if (i + 1) % cols == 0 {
                                ui.end_row();
                            }
                        }
                    });
            });
        ui.add_space(4.0);
        ui.label(RichText::new("Activations H (components x time)").strong());
        self.heat_map(ui, &assignment, &labels);
    }

    fn heat_map(&mut self, ui: &mut egui::Ui, assignment: &[usize], labels: &SourceLabels) {
        let k = self.dict.weights.len().min(super::feed::FEED_COMPONENTS);
        let width = ui.available_width();
        let height = (k as f32 * 6.0).clamp(60.0, 220.0);
        let (rect, _) = ui.allocate_exact_size(Vec2::new(width, height), Sense::hover());
        ui.painter()
            .rect_filled(rect, CornerRadius::ZERO, Color32::from_gray(12));
        if k == 0 {
            return;
        }
        // Energy of each component in each frame, dB relative to the loudest in view.
        let mut max = 0.0f32;
        for col in &self.history {
            for (j, &h) in col.iter().take(k).enumerate() {
                max = max.max(h * self.dict.weights[j]);
            }
        }
        let mut pixels = vec![Color32::BLACK; HISTORY * k];
        let offset = HISTORY - self.history.len();
        for (c, col) in self.history.iter().enumerate() {
            for j in 0..k.min(col.len()) {
                let v = if max > 0.0 {
                    level(col[j] * self.dict.weights[j] / max)
                } else {
                    0.0
                };
                let [r, g, b] = labels.color(assignment.get(j).copied().unwrap_or(0));
                let a = v * v;
                pixels[j * HISTORY + offset + c] = Color32::from_rgb(
                    (r as f32 * a) as u8,
                    (g as f32 * a) as u8,
                    (b as f32 * a) as u8,
                );
            }
        }
        let image = ColorImage::new([HISTORY, k], pixels);
        match self.heat.as_mut() {
            Some(t) if t.size() == [HISTORY, k] => t.set(image, TextureOptions::NEAREST),
            _ => {
                self.heat = Some(ui.ctx().load_texture(
                    "activations",
                    image,
                    TextureOptions::NEAREST,
                ))
            }
        }
        if let Some(t) = &self.heat {
            ui.painter().image(
                t.id(),
                rect,
                Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)),
                Color32::WHITE,
            );
        }
        if self.history.is_empty() {
            ui.painter().text(
                rect.center(),
                egui::Align2::CENTER_CENTER,
                "waiting for audio",
                egui::FontId::proportional(13.0),
                Color32::GRAY,
            );
        }
    }

    /// The source learned live: its templates as they are now (they change with every
    /// refit), Freeze, export and "keep as capture".
    fn live_panel(&mut self, ui: &mut egui::Ui, setter: &ParamSetter) {
        let p = self.params.clone();
        let live = self.status.live_source.load(Ordering::Acquire) as usize;
        let labels = p.source_labels.lock().clone();
        ui.horizontal(|ui| {
            if live == 0 {
                ui.label(RichText::new("Learned live: none").strong());
                ui.label(
                    RichText::new("(capture one source: the first empty one learns the rest)")
                        .small()
                        .color(Color32::from_gray(170)),
                );
                return;
            }
            let s = live - 1;
            ui.label(
                RichText::new(format!("Learned live: {}", labels.name(s)))
                    .strong()
                    .color(source_color(&labels, s)),
            );
            let frozen = p.freeze.value();
            if ui
                .add(egui::Button::selectable(
                    frozen,
                    RichText::new(if frozen { "Frozen" } else { "Freeze" }).color(if frozen {
                        Color32::from_rgb(120, 190, 255)
                    } else {
                        ui.visuals().text_color()
                    }),
                ))
                .on_hover_text("Stop learning: the learned templates stand still")
                .clicked()
            {
                set_param(setter, &p.freeze, !frozen);
            }
            let path = self.path.trim().to_string();
            if ui
                .add_enabled(
                    !path.is_empty() && !self.rest_curves.is_empty(),
                    egui::Button::new("Export"),
                )
                .on_hover_text("Write the learned templates to the file path below (.npz)")
                .clicked()
            {
                p.rest_export_path.set_external(path);
            }
            if ui
                .add_enabled(
                    !self.rest_curves.is_empty(),
                    egui::Button::new("Keep as capture"),
                )
                .on_hover_text("Make the learned templates this source's captured components")
                .clicked()
            {
                p.rest_to_capture.set_external(true);
            }
            ui.label(format!(
                "{} refits",
                self.status.rest_refits.load(Ordering::Acquire)
            ));
        });
        if live == 0 || self.rest_curves.is_empty() {
            return;
        }
        let color = source_color(&labels, live - 1);
        let n = self.rest_curves.len();
        let width = ui.available_width();
        let cell = Vec2::new(((width - 4.0) / n as f32 - 4.0).max(20.0), 30.0);
        ui.horizontal(|ui| {
            ui.spacing_mut().item_spacing.x = 4.0;
            for (i, curve) in self.rest_curves.iter().enumerate() {
                let (rect, _) = ui.allocate_exact_size(cell, Sense::hover());
                draw_template(ui, rect, curve, color, i);
            }
        });
    }

    /// A small level bar of `db` (-60..0 dB).
    fn row_meter(ui: &mut egui::Ui, db: f32, color: Color32) {
        let (rect, resp) = ui.allocate_exact_size(Vec2::new(46.0, 10.0), Sense::hover());
        let painter = ui.painter();
        painter.rect_filled(rect, CornerRadius::same(2), Color32::from_gray(30));
        let x = rect.left() + rect.width() * ((db + 60.0) / 60.0).clamp(0.0, 1.0);
        painter.rect_filled(
            Rect::from_min_max(rect.min, Pos2::new(x, rect.max.y)),
            CornerRadius::same(2),
            color,
        );
        resp.on_hover_text(if db <= -89.0 {
            "-inf dB".to_string()
        } else {
            format!("{db:.1} dB")
        });
    }

    fn routing_panel(&mut self, ui: &mut egui::Ui, setter: &ParamSetter) {
        let p = self.params.clone();
        let mut labels = p.source_labels.lock().clone();
        let old_labels = labels.clone();
        let assignment = current_assignment(&p);
        let k = assignment.len();
        ui.horizontal(|ui| {
            ui.label(RichText::new("Routing (click a cell to move a component)").strong());
            let latency = self.feed.latency_samples();
            let sr = self.feed.sample_rate();
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                ui.label(format!(
                    "Latency {latency} samples ({:.1} ms)",
                    seconds(latency as u64, sr) * 1000.0
                ));
            });
        });
        let name_w = 380.0;
        let cell_w = ((ui.available_width() - name_w - 250.0) / k.max(1) as f32).clamp(6.0, 18.0);
        egui::ScrollArea::horizontal()
            .id_salt("routing")
            .show(ui, |ui| {
                egui::Grid::new("routing_grid")
                    .spacing([6.0, 4.0])
                    .show(ui, |ui| {
                        for s in 0..MAX_SOURCES {
                            let src = &p.sources[s];
                            ui.horizontal(|ui| {
                                let mut c = labels.color(s);
                                if ui.color_edit_button_srgb(&mut c).changed() {
                                    labels.set_color(s, c);
                                }
                                let mut name = labels.name(s);
                                if ui
                                    .add(egui::TextEdit::singleline(&mut name).desired_width(90.0))
                                    .changed()
                                {
                                    labels.set_name(s, name);
                                }
                                let mute = src.mute.value();
                                if ui
                                    .add(egui::Button::selectable(
                                        mute,
                                        RichText::new("M").color(if mute {
                                            Color32::from_rgb(240, 90, 80)
                                        } else {
                                            ui.visuals().text_color()
                                        }),
                                    ))
                                    .on_hover_text("Mute")
                                    .clicked()
                                {
                                    set_param(setter, &src.mute, !mute);
                                }
                                let solo = src.solo.value();
                                if ui
                                    .add(egui::Button::selectable(
                                        solo,
                                        RichText::new("S").color(if solo {
                                            Color32::from_rgb(240, 210, 70)
                                        } else {
                                            ui.visuals().text_color()
                                        }),
                                    ))
                                    .on_hover_text("Solo")
                                    .clicked()
                                {
                                    set_param(setter, &src.solo, !solo);
                                }
                            });
                            ui.add(ParamSlider::for_param(&src.gain_db, setter).with_width(90.0));
                            let color = source_color(&labels, s);
                            ui.add(ParamSlider::for_param(&src.mode, setter).with_width(80.0))
                                .on_hover_text(
                                    "Auto: captured, or the rest learned live when this is \
                                     the first empty source and one source is captured",
                                );
                            Self::row_meter(ui, self.source_db[s], color);
                            let (rect, resp) = ui.allocate_exact_size(
                                Vec2::new(cell_w * k as f32, 16.0),
                                Sense::click(),
                            );
                            let painter = ui.painter();
                            for (j, &a) in assignment.iter().enumerate() {
                                let cell = Rect::from_min_size(
                                    Pos2::new(rect.left() + j as f32 * cell_w, rect.top()),
                                    Vec2::new(cell_w - 1.0, 16.0),
                                );
                                painter.rect_filled(
                                    cell,
                                    CornerRadius::same(2),
                                    if a == s {
                                        color
                                    } else {
                                        Color32::from_gray(45)
                                    },
                                );
                            }
                            if resp.clicked() {
                                if let Some(pos) = resp.interact_pointer_pos() {
                                    let j = ((pos.x - rect.left()) / cell_w) as usize;
                                    move_component(&p, j, s);
                                }
                            }
                            let n = assignment.iter().filter(|&&a| a == s).count();
                            ui.label(format!("{n}"));
                            ui.end_row();
                        }
                    });
            });
        if labels != old_labels {
            p.source_labels.set_external(labels);
        }
    }
}

fn draw_template(ui: &egui::Ui, rect: Rect, curve: &[f32], color: Color32, index: usize) {
    let painter = ui.painter();
    painter.rect_filled(rect, CornerRadius::same(3), Color32::from_gray(22));
    if curve.len() >= 2 {
        let n = curve.len() - 1;
        let pts: Vec<Pos2> = curve
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                Pos2::new(
                    rect.left() + 2.0 + (rect.width() - 4.0) * i as f32 / n as f32,
                    rect.bottom() - 2.0 - (rect.height() - 4.0) * v,
                )
            })
            .collect();
        let mut fill = pts.clone();
        fill.push(Pos2::new(rect.right() - 2.0, rect.bottom() - 2.0));
        fill.push(Pos2::new(rect.left() + 2.0, rect.bottom() - 2.0));
        for w in pts.windows(2) {
            let quad = vec![
                w[0],
                w[1],
                Pos2::new(w[1].x, rect.bottom() - 2.0),
                Pos2::new(w[0].x, rect.bottom() - 2.0),
            ];
            painter.add(egui::Shape::convex_polygon(
                quad,
                color.gamma_multiply(0.25),
                Stroke::NONE,
            ));
        }
        painter.add(egui::Shape::line(pts, Stroke::new(1.2, color)));
    }
    painter.text(
        rect.left_top() + Vec2::new(3.0, 1.0),
        egui::Align2::LEFT_TOP,
        format!("{}", index + 1),
        egui::FontId::proportional(10.0),
        Color32::from_gray(170),
    );
}
