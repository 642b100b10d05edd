//! The egui editor (cargo feature `editor`, on by default).
//!
//! Left column: capture (target, start/stop, input meter, captured seconds, learning progress
//! with Cancel), the trained separator (its "trained" badge, training progress with Cancel,
//! export of the model file), learning settings, engine settings and dictionary files. Right: the learned
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

mod capture;
mod learning;
mod live;
pub mod logic;
mod routing;
mod templates;
mod trained;

use templates::draw_template;

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
    /// Where the trained separator is exported.
    model_path: String,
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
            model_path: String::from("model.npz"),
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
                // The left column scrolls when the window is too short for all its panels.
                egui::ScrollArea::vertical()
                    .id_salt("left column")
                    .show(ui, |ui| {
                        self.capture_panel(ui, setter);
                        ui.add_space(6.0);
                        self.trained_panel(ui);
                        ui.add_space(6.0);
                        self.learning_panel(ui, setter);
                        ui.add_space(6.0);
                        self.files_panel(ui);
                    });
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
}
