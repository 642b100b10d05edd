//! Parameters (automatable, stable ids) and persisted fields (serde JSON in the plugin state).
//!
//! See the [module documentation of `plugin`](super) for the list of ids and fields as a host
//! sees them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use nice_plug::params::persist::PersistentField;
use nice_plug::prelude::*;
use serde::{Deserialize, Serialize};

use crate::dsp::engine::{EngineParams, MAX_SOURCES};
use crate::nmf::{Dictionary, SolveRule};
use crate::trained::SeparatorModel;

/// The per-frame activation solver (parameter `solver`).
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SolverChoice {
    /// [`SolveRule::DEFAULT`]: a flat start every frame, majorization-equalization steps,
    /// screening of silent components and an early exit (the default since the screening solver;
    /// BENCHMARKS.md "Real-time solver" and "Screening").  A project saved with this choice
    /// before the screening keeps its `iterations` value, now the most a frame runs.
    #[id = "flat_me"]
    #[name = "Flat, equalized"]
    FlatEqualized,
    /// [`SolveRule::WARM_MU`]: the previous frame's activations and multiplicative updates,
    /// the solver of version 1.
    #[id = "warm_mu"]
    #[name = "Warm, multiplicative (v1)"]
    WarmMultiplicative,
}

impl SolverChoice {
    /// The engine's rule for this choice.
    pub fn rule(self) -> SolveRule {
        match self {
            Self::FlatEqualized => SolveRule::DEFAULT,
            Self::WarmMultiplicative => SolveRule::WARM_MU,
        }
    }
}

/// What a source is made of (parameters `mode_1`..`mode_4`).
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceMode {
    /// Captured when the source has components; else, the first source without components
    /// is learned live when exactly one source is captured (a noise capture alone gives
    /// "the noise" and "everything else"), and takes no part otherwise. See
    /// [`source_roles`].
    #[id = "auto"]
    #[name = "Auto"]
    Auto,
    /// Its captured (or loaded) components; silent without any.
    #[id = "captured"]
    #[name = "Captured"]
    Captured,
    /// Learned live from the input: the rest of what the captured sources do not explain
    /// (its captured components, if any, are not used).
    #[id = "live"]
    #[name = "Learned live"]
    Live,
    /// Takes no part: its components are not used and its bus is silent.
    #[id = "off"]
    #[name = "Off"]
    Off,
}

/// What a source does in the engine, from its [`SourceMode`] ([`source_roles`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceRole {
    /// Its components are fixed templates.
    Known,
    /// The rest source, learned live.
    Live,
    /// No components.
    Off,
}

/// The role of every source, from the modes and from which sources have components in the
/// dictionary (`has_components`). The plugin's one rule:
/// - `Captured`: known with components, else off;
/// - `Off`: off;
/// - `Live`: the rest source (only the first such one; later ones are off);
/// - `Auto`: known with components; the first `Auto` source without components is the
///   rest source when no source is set to `Live` and exactly one source is known (so a
///   project with two or more captured sources separates as it did before the live rest
///   existed); else off.
///
/// A rest source needs at least one known source: with none, it is off.
pub fn source_roles(
    modes: [SourceMode; MAX_SOURCES],
    has_components: [bool; MAX_SOURCES],
) -> [SourceRole; MAX_SOURCES] {
    let mut roles = [SourceRole::Off; MAX_SOURCES];
    for s in 0..MAX_SOURCES {
        if has_components[s] && matches!(modes[s], SourceMode::Auto | SourceMode::Captured) {
            roles[s] = SourceRole::Known;
        }
    }
    let known = roles.iter().filter(|&&r| r == SourceRole::Known).count();
    if known == 0 {
        return roles;
    }
    let live = match modes.iter().position(|&m| m == SourceMode::Live) {
        Some(s) => Some(s),
        None if known == 1 => {
            (0..MAX_SOURCES).find(|&s| modes[s] == SourceMode::Auto && !has_components[s])
        }
        None => None,
    };
    if let Some(s) = live {
        roles[s] = SourceRole::Live;
    }
    roles
}

/// What a capture learns.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureTarget {
    /// Learn `components_per_source` templates labelled "Source 1".
    #[id = "source_1"]
    #[name = "Source 1"]
    Source1,
    #[id = "source_2"]
    #[name = "Source 2"]
    Source2,
    #[id = "source_3"]
    #[name = "Source 3"]
    Source3,
    #[id = "source_4"]
    #[name = "Source 4"]
    Source4,
    /// Learn `mix_components` templates labelled "Mix" from the whole mixture; they are given to
    /// sources by the persisted `assignment` (default round-robin).
    #[id = "whole_mix"]
    #[name = "Whole mix"]
    WholeMix,
}

impl CaptureTarget {
    /// The source index (0..4), or `None` for the whole mix.
    pub fn source(self) -> Option<usize> {
        match self {
            Self::Source1 => Some(0),
            Self::Source2 => Some(1),
            Self::Source3 => Some(2),
            Self::Source4 => Some(3),
            Self::WholeMix => None,
        }
    }
}

/// Settings of the offline learning done by the trainer thread. Structural, hence not
/// automatable: persisted as the JSON field `learn`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LearnSettings {
    /// Templates learned per captured source (K of the fit).
    pub components_per_source: usize,
    /// Templates learned from a whole-mix capture.
    pub mix_components: usize,
    /// Beta of the divergence (0 Itakura-Saito, 1 Kullback-Leibler, 2 Euclidean).
    pub beta: f32,
    /// STFT frame length, samples (512..8192, power of two); the hop is n_fft / 4. All sources
    /// of one dictionary share it: learning with another n_fft starts a new dictionary.
    pub n_fft: usize,
    /// Iterations of the offline fit.
    pub iterations: usize,
    /// Incremental capture: a capture into Source N learns only what the other sources'
    /// components (fixed) do not explain, so it need not be solo (the fit of `nmfsep learn
    /// --given`). Off by default: a solo clip is best learned whole.
    pub given_known: bool,
    /// Train a separator ([`crate::trained::train()`]) from the sources' latest solo
    /// captures in the background once two or more sources hold one.
    pub train_separator: bool,
}

impl Default for LearnSettings {
    fn default() -> Self {
        Self {
            components_per_source: 16,
            mix_components: 16,
            beta: 1.0,
            n_fft: 2048,
            iterations: 200,
            given_known: false,
            train_separator: true,
        }
    }
}

/// A persisted value whose every `set` by the state loader bumps a generation counter, so that
/// the trainer thread notices a state load without the audio thread doing anything (nice-plug
/// 0.4.2 does not call `activate()` again after a state load, and may load state on the audio
/// thread). Writes by the plugin itself use [`Self::replace_quietly`].
pub struct Watched<T> {
    value: Mutex<T>,
    generation: AtomicU64,
}

impl<T: Default> Default for Watched<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T> Watched<T> {
    pub fn new(value: T) -> Self {
        Self {
            value: Mutex::new(value),
            generation: AtomicU64::new(0),
        }
    }

    /// Number of external `set`s so far.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Locks the value (never on the audio thread).
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.value.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the value as an external change (bumps the generation), like a state load.
    pub fn set_external(&self, v: T) {
        *self.lock() = v;
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Sets the value without bumping the generation (the plugin's own bookkeeping).
    pub fn replace_quietly(&self, v: T) {
        *self.lock() = v;
    }
}

impl<'a, T> PersistentField<'a, T> for Watched<T>
where
    T: Serialize + Deserialize<'a> + Send + Sync,
{
    fn set(&self, new_value: T) {
        self.set_external(new_value);
    }

    fn map<F, R>(&self, f: F) -> R
    where
        F: Fn(&T) -> R,
    {
        f(&self.lock())
    }
}

/// Names and colors of the sources, as the editor shows them (persisted field
/// `source_labels`). Missing or empty entries fall back to the defaults.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SourceLabels {
    /// Display name of each source ("" = "Source N").
    pub names: Vec<String>,
    /// sRGB color of each source.
    pub colors: Vec<[u8; 3]>,
}

/// Default source colors: orange, sky blue, green, purple.
pub const DEFAULT_SOURCE_COLORS: [[u8; 3]; MAX_SOURCES] = [
    [240, 150, 60],
    [80, 170, 240],
    [110, 200, 110],
    [200, 120, 220],
];

impl SourceLabels {
    /// Name of source `s` (0..4).
    pub fn name(&self, s: usize) -> String {
        match self.names.get(s) {
            Some(n) if !n.trim().is_empty() => n.clone(),
            _ => source_label(s),
        }
    }

    /// Color of source `s` (0..4).
    pub fn color(&self, s: usize) -> [u8; 3] {
        self.colors
            .get(s)
            .copied()
            .unwrap_or(DEFAULT_SOURCE_COLORS[s % MAX_SOURCES])
    }

    /// Sets the name of source `s`, filling the entries before it with defaults.
    pub fn set_name(&mut self, s: usize, name: String) {
        while self.names.len() <= s {
            self.names.push(String::new());
        }
        self.names[s] = name;
    }

    /// Sets the color of source `s`.
    pub fn set_color(&mut self, s: usize, color: [u8; 3]) {
        while self.colors.len() <= s {
            let i = self.colors.len();
            self.colors.push(DEFAULT_SOURCE_COLORS[i % MAX_SOURCES]);
        }
        self.colors[s] = color;
    }
}

/// Mix, mute and solo of one source (ids `gain_N`, `mute_N`, `solo_N`, N = 1..4).
#[derive(Params)]
pub struct SourceParams {
    /// Level of the source in the main output, dB (smoothed by the engine).
    #[id = "gain"]
    pub gain_db: FloatParam,
    #[id = "mute"]
    pub mute: BoolParam,
    #[id = "solo"]
    pub solo: BoolParam,
    /// Captured, learned live, off, or automatic ([`SourceMode`]).
    #[id = "mode"]
    pub mode: EnumParam<SourceMode>,
}

/// Lowest gain, dB: at or below it the source is silent.
pub const MIN_GAIN_DB: f32 = -60.0;
/// Highest gain, dB.
pub const MAX_GAIN_DB: f32 = 12.0;

/// Resolution of the gain, dB: its step and the precision of its text.
pub const GAIN_STEP_DB: f32 = 0.1;

/// The text of a gain of `db` dB (without the unit, which the host adds): rounded to
/// [`GAIN_STEP_DB`], one decimal, and never "-0.0", so value -> text -> value -> text gives the
/// same text (clap-validator's `param-conversions` test; a gain just below 0 dB rounded to
/// "-0.0", which parsed back to 0 dB and then showed "0.0").
pub fn gain_to_text(db: f32) -> String {
    let r = (db / GAIN_STEP_DB).round() * GAIN_STEP_DB;
    // -0.0 + 0.0 is +0.0: a rounded negative zero shows as "0.0".
    format!("{:.1}", r + 0.0)
}

/// The gain in dB of a text such as "-3.5", "-3.5 dB" or "-3.5dB" (case and spaces ignored);
/// `None` if it holds no number.
pub fn text_to_gain(text: &str) -> Option<f32> {
    let t = text.trim();
    let cut = t.len().saturating_sub(2);
    let t = match t.get(cut..) {
        Some(unit) if unit.eq_ignore_ascii_case("db") => &t[..cut],
        _ => t,
    };
    let v: f32 = t.trim().parse().ok()?;
    v.is_finite().then_some(v)
}

impl SourceParams {
    /// The parameters of source index `s` (0..4). Names are unique ("Source 1 gain", ...):
    /// some hosts (pedalboard) key parameters by name.
    pub fn new(s: usize) -> Self {
        Self {
            gain_db: FloatParam::new(
                format!("Source {} gain", s + 1),
                0.0,
                FloatRange::Linear {
                    min: MIN_GAIN_DB,
                    max: MAX_GAIN_DB,
                },
            )
            .with_step_size(GAIN_STEP_DB)
            .with_unit(" dB")
            .with_value_to_string(Arc::new(gain_to_text))
            .with_string_to_value(Arc::new(text_to_gain)),
            mute: BoolParam::new(format!("Source {} mute", s + 1), false),
            solo: BoolParam::new(format!("Source {} solo", s + 1), false),
            mode: EnumParam::new(format!("Source {} mode", s + 1), SourceMode::Auto),
        }
    }
}

/// All parameters and persisted fields.
#[derive(Params)]
pub struct SeparatorParams {
    /// Host bypass: the input delayed by the latency on the main output, silent source buses.
    #[id = "bypass"]
    pub bypass: BoolParam,
    /// Solver iterations per STFT frame; a maximum under the default rule's early exit.
    #[id = "iterations"]
    pub iterations: IntParam,
    /// Exponent of the Wiener masks.
    #[id = "mask_power"]
    pub mask_power: FloatParam,
    /// L1 penalty on the activations.
    #[id = "sparsity"]
    pub sparsity: FloatParam,
    /// The per-frame activation solver.
    #[id = "solver"]
    pub solver: EnumParam<SolverChoice>,
    #[nested(array, group = "Source")]
    pub sources: [SourceParams; MAX_SOURCES],
    /// What the next capture learns.
    #[id = "capture_target"]
    pub capture_target: EnumParam<CaptureTarget>,
    /// On: the input is recorded (up to the capture capacity); off: the recording is learned.
    #[id = "capture"]
    pub capture: BoolParam,
    /// The source learned live stops learning: its templates stand still (see
    /// [`crate::dsp::engine::live`], "Freeze").
    #[id = "freeze"]
    pub freeze: BoolParam,

    /// The dictionary (templates and labels), `null` when none.
    #[persist = "dictionary"]
    pub dictionary: Watched<Option<Dictionary>>,
    /// Source index (0..=3) of every component of `dictionary`; when its length differs from
    /// the number of components, the default assignment is used (see [`default_assignment`]).
    #[persist = "assignment"]
    pub assignment: Watched<Vec<usize>>,
    /// Learning settings.
    #[persist = "learn"]
    pub learn: Watched<LearnSettings>,
    /// A path to a `.npz` dictionary (from `nmfsep learn`) to load; emptied once loaded.
    #[persist = "load_path"]
    pub load_path: Watched<String>,
    /// A path to write the current dictionary to as `.npz`; emptied once written.
    #[persist = "export_path"]
    pub export_path: Watched<String>,
    /// Names and colors of the sources, set in the editor.
    #[persist = "source_labels"]
    pub source_labels: Watched<SourceLabels>,
    /// The learned templates of the source learned live (K_free components labelled with
    /// its "Source N", at the session's STFT), `null` before the first refit. Written by the
    /// live worker thread after every refit, read when the live rest is prepared (a project
    /// reopens with what was learned).
    #[persist = "rest_templates"]
    pub rest_templates: Watched<Option<Dictionary>>,
    /// A path to write `rest_templates` to as `.npz` (a dictionary like `nmfsep learn`
    /// writes); emptied once written.
    #[persist = "rest_export_path"]
    pub rest_export_path: Watched<String>,
    /// Set to true to make the learned templates the rest source's captured components
    /// (merged into `dictionary` like a capture); set back to false once done.
    #[persist = "rest_to_capture"]
    pub rest_to_capture: Watched<bool>,
    /// The separator trained from the sources' latest captures
    /// ([`crate::trained::train()`]; its sources are the "Source N" labels), `null` when
    /// none. Separates in place of `dictionary` while the sources it was trained for are
    /// the known ones (see [`crate::plugin::trainer`]).
    #[persist = "model"]
    pub model: Watched<Option<SeparatorModel>>,
    /// A path to write `model` to as a model `.npz` ([`SeparatorModel::save`]); emptied once
    /// written.
    #[persist = "model_export_path"]
    pub model_export_path: Watched<String>,
}

impl Default for SeparatorParams {
    fn default() -> Self {
        Self {
            bypass: BoolParam::new("Bypass", false).make_bypass(),
            iterations: IntParam::new(
                "Iterations",
                SolveRule::DEFAULT_ITERATIONS as i32,
                IntRange::Linear {
                    min: 1,
                    max: SolveRule::MAX_ITERATIONS as i32,
                },
            ),
            mask_power: FloatParam::new(
                "Mask exponent",
                2.0,
                FloatRange::Linear { min: 0.5, max: 4.0 },
            )
            .with_step_size(0.01),
            sparsity: FloatParam::new("Sparsity", 0.0, FloatRange::Linear { min: 0.0, max: 1.0 })
                .with_step_size(0.001),
            solver: EnumParam::new("Solver", SolverChoice::FlatEqualized),
            sources: [0, 1, 2, 3].map(SourceParams::new),
            capture_target: EnumParam::new("Capture target", CaptureTarget::Source1),
            capture: BoolParam::new("Capture", false),
            freeze: BoolParam::new("Freeze", false),
            dictionary: Watched::default(),
            assignment: Watched::default(),
            learn: Watched::default(),
            load_path: Watched::default(),
            export_path: Watched::default(),
            source_labels: Watched::default(),
            rest_templates: Watched::default(),
            rest_export_path: Watched::default(),
            rest_to_capture: Watched::default(),
            model: Watched::default(),
            model_export_path: Watched::default(),
        }
    }
}

impl SeparatorParams {
    /// The engine settings of the current parameter values (gains unsmoothed: the engine's
    /// one smoother ramps them).
    pub fn engine_params(&self) -> EngineParams {
        let mut p = EngineParams {
            iterations: self.iterations.value().max(1) as usize,
            solve_rule: self.solver.value().rule(),
            mask_power: self.mask_power.value(),
            sparsity: self.sparsity.value(),
            bypass: self.bypass.value(),
            freeze: self.freeze.value(),
            ..EngineParams::default()
        };
        for (s, src) in self.sources.iter().enumerate() {
            // Unsmoothed: the engine's one smoother ramps gain, mute and solo changes alike.
            let db = src.gain_db.value();
            p.gain[s] = if db <= MIN_GAIN_DB {
                0.0
            } else {
                nice_plug::util::db_to_gain(db)
            };
            p.mute[s] = src.mute.value();
            p.solo[s] = src.solo.value();
        }
        p
    }
}

impl SeparatorParams {
    /// The mode parameter of every source.
    pub fn modes(&self) -> [SourceMode; MAX_SOURCES] {
        std::array::from_fn(|s| self.sources[s].mode.value())
    }
}

/// The assignment used when the persisted one does not fit the dictionary: the crate's one
/// routing rule, [`Dictionary::source_assignment`] over the [`MAX_SOURCES`] buses ("Source N"
/// to source N, "Mix" round robin, other labels in order of first appearance).
pub fn default_assignment(dict: &Dictionary) -> Vec<usize> {
    dict.source_assignment(MAX_SOURCES)
}

pub use crate::nmf::dictionary::{source_label, MIX_LABEL};

/// Source index of a "Source N" label (N = 1..=4).
pub fn source_label_index(label: &str) -> Option<usize> {
    crate::nmf::dictionary::source_label_index(label, MAX_SOURCES)
}

/// The assignment for `dict`: the persisted one when it has one valid entry per component,
/// else [`default_assignment`].
pub fn effective_assignment(dict: &Dictionary, persisted: &[usize]) -> Vec<usize> {
    if persisted.len() == dict.n_components() && persisted.iter().all(|&s| s < MAX_SOURCES) {
        persisted.to_vec()
    } else {
        default_assignment(dict)
    }
}

/// Shared handle, for the trainer thread.
pub type SharedParams = Arc<SeparatorParams>;
