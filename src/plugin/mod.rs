//! The CLAP/VST3 plugin: glue between nice-plug and the real-time
//! [`Engine`](crate::dsp::Engine). The DSP lives
//! in [`crate::dsp`]; this module holds the parameters, the capture, the trainer thread and the
//! hand-over of dictionaries.
//!
//! # Two plugin types and where they are exported
//!
//! - [`NmfSeparatorClap`] (`Separator<true>`): main in/out plus four aux outputs "Source
//!   1".."Source 4" carrying the separated sources. Layouts: stereo main + 4 stereo aux, then
//!   mono main + 4 mono aux. Exported as the CLAP (id `com.nmf-separator.nmf-separator`; the
//!   CLAP wrapper skips a block when an aux output port has no buffer, so CLAP hosts must give
//!   all five output ports) and as the VST3 class "NMF Separator Multi-Out" (class id
//!   `NmfSeparatorMult`).
//! - [`NmfSeparatorVst3`] (`Separator<false>`): main in/out only (stereo, then mono), the VST3
//!   class "NMF Separator" (class id `NmfSeparatorVst3`), for hosts that use the main bus only.
//!
//! Both VST3 classes go through the project's own factory and bus layer,
//! [`crate::vst3_export`], because nice-plug 0.4.2's VST3 wrapper ignores `activateBus` and
//! skips the plugin's `process()` when an aux output has no buffers (see there). Its
//! `setBusArrangements` also indexes the aux outputs from 0 instead of 1 when there is a main
//! output, so a stereo main with mono aux buses would reject its own default arrangement: keep
//! the channel counts uniform across buses, as both layouts do.
//!
//! In both, the main output is the mix of the selected sources: every source with its gain,
//! minus muted ones, or only the soloed ones when any solo is on. With no dictionary, all the
//! input belongs to Source 1, so the main output is the input (delayed) times Source 1's gain.
//! Latency is `n_fft` samples of the dictionary (2048 without one), reported in `activate()`
//! and again from `process()` whenever a dictionary with another n_fft is installed.
//!
//! Bypass: the `bypass` parameter carries the host's bypass flag (CLAP
//! `CLAP_PARAM_IS_BYPASS`, VST3 `kIsBypass`, set by nice-plug for a
//! [`BoolParam::make_bypass`]). The engine does the bypass itself
//! ([`EngineParams::bypass`](crate::dsp::engine::EngineParams::bypass)): the main output is
//! the input delayed by the same latency, so the host's delay compensation holds, and the
//! source buses are silent (a bypassed separator separates nothing, and a mix of main and
//! buses does not get the input twice); a toggle crossfades linearly over 10 ms
//! ([`crate::dsp::engine::BYPASS_FADE_S`]). The separation keeps running underneath, so
//! un-bypassing continues from the current activations.
//!
//! # Threads and queues
//!
//! - Audio thread ([`realtime::Realtime`]): the engine, one capture buffer, queue ends.
//!   No allocation, lock or I/O (test with the `assert_process_allocs` feature).
//! - Trainer thread ([`trainer`]), the plugin's own `std::thread`, started in `activate()`
//!   (restarted on the next `activate()`, stopped and joined when the plugin is dropped; a
//!   running fit is cancelled). Never nice-plug's shared background executor.
//! - Live worker thread (the plugin's own `std::thread`, started and joined with the trainer
//!   thread): runs the [`LiveWorker`](crate::dsp::engine::LiveWorker) of the source learned
//!   live, if any (a poll every 5 ms: frames in, refits, templates out; see
//!   [`crate::dsp::engine::live`]), and writes the learned templates to the persisted
//!   `rest_templates` after every refit. The trainer thread prepares the live rest with the
//!   dictionary (`live_pair`, off the audio thread) and hands the worker over; the old worker
//!   is dropped on the live worker thread, the old audio side goes back with its dictionary.
//! - Queues (crossbeam bounded, `try_send`/`try_recv` on the audio side):
//!   clips audio -> trainer (capacity 2), capture buffers trainer -> audio (2: double
//!   buffering), prepared dictionaries trainer -> audio (4), replaced dictionaries
//!   audio -> trainer (8, dropped there), live workers trainer -> live worker thread (2);
//!   frames and template sets between the audio thread and the live worker through the
//!   preallocated hand-overs of [`crate::dsp::engine::live`].
//!
//! # Sources learned live
//!
//! Every source has a mode (`mode_N`): Auto (default), Captured, Learned live, Off; the rule
//! that turns modes into what the engine gets is [`params::source_roles`]. With the default
//! Auto everywhere, a user who captures only Source 1 (say, the noise) hears Source 1 on its
//! bus and everything else on Source 2, learned live from the input, with no further step; a
//! project with two or more captured sources separates as before (set a source to "Learned
//! live" to add a rest to them). The rest source has 16 learned templates and 4 exemplars
//! ([`crate::dsp::engine::LiveOptions`]' defaults; the known source's mean spectrum is taken
//! from its templates' row sums, as the plugin keeps no activations of a capture). `freeze`
//! stops the learning (the templates stand still; see [`crate::dsp::engine::live`]); the
//! learned templates persist with the project (`rest_templates`), a reopened project starts
//! from them, and they can be exported (`rest_export_path`) or made the source's captured
//! components (`rest_to_capture`).
//!
//! Capture: while the `capture` parameter is on, `process()` writes the input (both channels
//! of a stereo session, interleaved; else the mono mix) into a buffer of
//! [`trainer::CAPTURE_SECONDS`] (30 s) at the session rate, allocated in `activate()` (two of
//! them). When it goes off, the buffer, its length and the capture target (as it was when the
//! capture started) go to the trainer, which copies the clip out and hands the buffer straight
//! back, computes the STFT magnitude of its mono mix (n_fft from the learning settings,
//! hop n_fft/4, floor 1e-6 x max), fits K components (beta, NNDSVDa, 200 iterations) with
//! progress and cancel flags in [`Status`], labels them "Source N" (or "Mix" for a
//! whole-mix capture), merges them into the persisted dictionary (replacing that label's old
//! components; a dictionary at another sample rate or n_fft is first mapped onto the new
//! components' STFT, one learned with another beta or hop ratio is replaced whole), prepares a
//! [`PreparedDictionary`](crate::dsp::PreparedDictionary) and sends it. The audio thread
//! swaps it in with `Engine::set_dictionary` at the start of a block and sends the old one
//! back. The audio never stops while learning.
//!
//! - Editor (cargo feature `editor`, [`editor`]): the GUI thread. It reads the input level, the
//!   latency and one frame of activations per hop from [`feed::EditorFeed`] (atomics written
//!   by the audio thread only while the window is open, never waited on), and edits through
//!   parameter gestures and the persisted fields below (like a state load).
//!
//! # Parameter ids (stable)
//!
//! | id | name (pedalboard key) | type | range, default |
//! |----|------|------|----------------|
//! | `bypass` | Bypass (`bypass`) | bool, host bypass flag | false: main = input delayed by the latency, source buses silent; 10 ms crossfade |
//! | `iterations` | Iterations (`iterations`) | int | 1..50, 16: solver steps per frame (at most: the default solver exits early) |
//! | `mask_power` | Mask exponent (`mask_exponent`) | float | 0.5..4, 2: Wiener mask exponent |
//! | `sparsity` | Sparsity (`sparsity`) | float | 0..1, 0: L1 penalty on activations |
//! | `solver` | Solver (`solver`) | enum | "Flat, equalized" (default), "Warm, multiplicative (v1)": the per-frame activation solver |
//! | `gain_1`..`gain_4` | Source N gain (`source_N_gain_db`) | float, dB | -60..12, 0 (smoothed; -60 = silent; text one decimal, "-6.0 dB", never "-0.0", parses with or without "dB") |
//! | `mute_1`..`mute_4` | Source N mute (`source_N_mute`) | bool | false |
//! | `solo_1`..`solo_4` | Source N solo (`source_N_solo`) | bool | false |
//! | `capture_target` | Capture target (`capture_target`) | enum | "Source 1".."Source 4", "Whole mix"; default Source 1 |
//! | `capture` | Capture (`capture`) | bool | false: on records, off learns |
//! | `mode_1`..`mode_4` | Source N mode (`source_N_mode`) | enum | "Auto" (default), "Captured", "Learned live", "Off" ([`params::SourceMode`]) |
//! | `freeze` | Freeze (`freeze`) | bool | false: on stops the learning of the source learned live |
//!
//! In the state, an enum is stored by variant id: `capture_target` as `{"string": "source_1"}`
//! .. `"source_4"`, `"whole_mix"`; `solver` as `"flat_me"` or `"warm_mu"`; `mode_N` as
//! `"auto"`, `"captured"`, `"live"`, `"off"`. A project saved before the `solver` parameter
//! existed loads with the default solver; its `iterations` value is the number of steps per
//! frame of that solver. A project saved before `mode_N` and `freeze` existed loads with Auto
//! and no freeze: with two or more captured sources it sounds as it did, with one captured
//! source it now gets the rest learned live on the first empty source.
//!
//! # State (persisted fields)
//!
//! nice-plug's state is JSON: `{"version": "...", "params": {id: {"f32": x} | {"i32": n} |
//! {"bool": b}, ...}, "fields": {key: "<JSON text>"}}`; every value in `fields` is itself a
//! JSON document stored as a string. Keys:
//!
//! - `dictionary`: `null` or a [`Dictionary`](crate::nmf::Dictionary):
//!   `{"w": {"rows": n_fft/2+1, "cols": K, "data": [row-major f32]}, "sample_rate": Hz,
//!   "n_fft": n, "hop": h, "beta": b, "spectrogram": "magnitude"|"power", "labels": [K
//!   strings]}`. Its n_fft and hop must follow the frame rule of
//!   [`crate::nmf::FrameGeometry`] (n_fft a power of two 512..8192, the hop dividing it and
//!   at most n_fft/2). At another sample rate than the session's it is used mapped, by the
//!   same rule as `nmfsep separate` (`Dictionary::for_rate`: `Dictionary::mapped_to` onto
//!   `Dictionary::n_fft_for(session rate)`), when it is prepared (activation, state load,
//!   `.npz` load, after learning; on the trainer thread or in `activate()`, never on the audio
//!   thread). The field keeps the dictionary as it was learned, so a project moved back to
//!   its rate gets its templates unchanged; [`Status::mapping_note`] (shown by the editor
//!   next to the dictionary) says "learned at 44100 Hz, mapped to 48000 Hz".
//! - `assignment`: `[source index 0..=3 per component]`; when its length differs from K the
//!   default is used (the crate's routing rule, [`crate::nmf::Dictionary::source_assignment`]:
//!   "Source N" -> N-1, "Mix" round-robin, other labels by order of first appearance).
//! - `learn`: [`params::LearnSettings`] `{"components_per_source": 16, "mix_components": 16,
//!   "beta": 1.0, "n_fft": 2048, "iterations": 200, "given_known": false,
//!   "train_separator": true}`
//!   (`given_known`: incremental capture, a capture into Source N learns only what the other
//!   sources' components do not explain, by the fit of `nmfsep learn --given`; a project
//!   without the key loads with false. `train_separator`: train a separator from the
//!   captures, below).
//! - `load_path`: a `.npz` from `nmfsep learn` to load (replaces the dictionary, default
//!   assignment); emptied once read.
//! - `export_path`: where to write the dictionary as `.npz`; emptied once written.
//! - `source_labels`: [`params::SourceLabels`] `{"names": ["Tone", "", ...], "colors": [[r, g,
//!   b], ...]}`: the names and colors the editor shows for the sources ("" = "Source N").
//! - `rest_templates`: `null` or a dictionary as `dictionary` (K_free = 16 columns labelled
//!   with the live source's "Source N", at the session's sample rate and STFT): the learned
//!   templates of the source learned live, written by the live worker thread after every
//!   refit. When the live rest is prepared they are its start if their shape fits (mapped to
//!   the session like `dictionary`).
//! - `rest_export_path`: where to write `rest_templates` as `.npz`; emptied once written.
//! - `rest_to_capture`: `true` makes `rest_templates` the captured components of their
//!   source (merged into `dictionary` as a capture is); set back to `false` once done.
//! - `model`: `null` or a [`SeparatorModel`](crate::trained::SeparatorModel) (serde:
//!   `{"dictionary": {...as above}, "spatial": null | [{"bins": [[R11, R22, Re R12, Im
//!   R12], ...]} per source], "settings": {...}}`), the separator trained from the captures;
//!   validated when read (a damaged one is refused with the state).
//! - `model_export_path`: where to write `model` as a model `.npz`; emptied once written.
//!
//! # Trained separator
//!
//! The trainer keeps the first [`trainer::TRAIN_CLIP_SECONDS`] (15 s) of every source's
//! latest solo capture (both channels in a stereo session, one when they are the same; not
//! a whole-mix capture nor one learned given the other sources; in memory only). Once two or
//! more sources hold one and they changed, and `train_separator` is on, it trains a
//! separator from them ([`crate::trained::train()`] with the learning settings: K per
//! source, beta, iterations, n_fft; the default pitch shifts; the spatial model in a stereo
//! session) on the trainer thread, with `Status::training` and `Status::progress`; Cancel
//! (`Status::cancel`), a new capture or a state load stops it. The plain dictionaries
//! separate meanwhile. The model is saved as `model`, prepared
//! ([`crate::trained::realtime::prepare`]) and sent over the dictionary queue like a
//! dictionary; from then on it is what the trainer prepares in place of `dictionary` while
//! every source it has is Auto or Captured, none is learned live and the session runs at its
//! sample rate (`Status::model_in_use`). A new capture drops it (the plain dictionary
//! separates until the next training ends), as does loading a dictionary file.
//!
//! A state load can arrive on any thread, before or after `activate()`, and nice-plug 0.4.2 does
//! not call `activate()` again after it. So the persisted fields are [`params::Watched`]
//! values: the loader's `set` bumps a generation counter, and the trainer thread (which polls
//! every 20 ms) prepares the new dictionary and sends it to the audio thread; `activate()`
//! prepares the stored dictionary directly. The audio thread does nothing for a state load.
//!
//! # For host tests
//!
//! To load a dictionary, set the plugin state (CLAP `state.load`, VST3 `setState`, pedalboard
//! `raw_state`: JUCE wraps the VST3 component state in XML with its own base64, see
//! `tests/support/juce_state.py`, and `tests/support/pedalboard_smoke.py` for a working
//! example) to `{"params": {}, "fields": {"load_path": "\"/abs/path/dict.npz\""}}` or with
//! a `"dictionary"` field as above, then process audio: the new dictionary is installed within
//! a few blocks after ~20 ms of wall time (the trainer's poll), before or after activation. To
//! learn, set `capture_target`, turn `capture` on, process the clip, turn `capture` off and
//! keep processing; the fit takes seconds. The saved state then holds the learned dictionary.

#[cfg(feature = "editor")]
pub mod editor;
pub mod feed;
pub mod params;
pub mod realtime;
pub mod status;
pub mod trainer;

use std::sync::Arc;

use nice_plug::prelude::*;

use crate::dsp::engine::MAX_SOURCES;
use feed::EditorFeed;
use params::SeparatorParams;
use realtime::{Controls, Realtime};
pub use status::Status;
use trainer::TrainerHandle;

/// The plugin with four aux outputs (the CLAP, and the VST3 class "NMF Separator Multi-Out").
pub type NmfSeparatorClap = Separator<true>;
/// The plugin with the main output only (the VST3 class "NMF Separator").
pub type NmfSeparatorVst3 = Separator<false>;

/// The plugin; `AUX` selects the variant with the four source outputs.
pub struct Separator<const AUX: bool> {
    params: Arc<SeparatorParams>,
    status: Arc<Status>,
    /// Audio-thread state, made in `activate()`. Dropped before `trainer` (closes its queues).
    realtime: Option<Realtime>,
    trainer: Option<TrainerHandle>,
    /// Meters and activations for the editor (see [`feed`]).
    feed: Arc<EditorFeed>,
    /// Size and open state of the editor window.
    #[cfg(feature = "editor")]
    editor_state: Arc<nice_plug_egui::EguiEditorState>,
}

impl<const AUX: bool> Default for Separator<AUX> {
    fn default() -> Self {
        Self {
            params: Arc::new(SeparatorParams::default()),
            status: Arc::new(Status::default()),
            realtime: None,
            trainer: None,
            feed: Arc::new(EditorFeed::default()),
            #[cfg(feature = "editor")]
            editor_state: editor::default_state(),
        }
    }
}

impl<const AUX: bool> Separator<AUX> {
    /// Learning progress, messages and counters.
    pub fn status(&self) -> &Arc<Status> {
        &self.status
    }

    /// The parameters.
    pub fn separator_params(&self) -> &Arc<SeparatorParams> {
        &self.params
    }

    /// What the audio thread shows the editor.
    pub fn feed(&self) -> &Arc<EditorFeed> {
        &self.feed
    }
}

const SOURCE_NAMES: [&str; MAX_SOURCES] = ["Source 1", "Source 2", "Source 3", "Source 4"];
const STEREO: NonZeroU32 = new_nonzero_u32(2);
const MONO: NonZeroU32 = new_nonzero_u32(1);

/// Layouts of the CLAP variant: main plus four source buses, stereo then mono.
pub const AUX_LAYOUTS: &[AudioIOLayout] = &[
    AudioIOLayout {
        main_input_channels: Some(STEREO),
        main_output_channels: Some(STEREO),
        aux_output_ports: &[STEREO; MAX_SOURCES],
        names: PortNames {
            layout: Some("Stereo"),
            // No main port names: nice-plug 0.4.2's `main_output_name()` returns the
            // `main_input` name, so naming the input would name the output "Input" too. The
            // defaults are "Input" and "Output".
            main_input: None,
            main_output: None,
            aux_inputs: &[],
            aux_outputs: &SOURCE_NAMES,
        },
        ..AudioIOLayout::const_default()
    },
    AudioIOLayout {
        main_input_channels: Some(MONO),
        main_output_channels: Some(MONO),
        aux_output_ports: &[MONO; MAX_SOURCES],
        names: PortNames {
            layout: Some("Mono"),
            main_input: None,
            main_output: None,
            aux_inputs: &[],
            aux_outputs: &SOURCE_NAMES,
        },
        ..AudioIOLayout::const_default()
    },
];

/// Layouts of the VST3 variant: main only, stereo then mono.
pub const MAIN_LAYOUTS: &[AudioIOLayout] = &[
    AudioIOLayout {
        main_input_channels: Some(STEREO),
        main_output_channels: Some(STEREO),
        names: PortNames {
            layout: Some("Stereo"),
            ..PortNames::const_default()
        },
        ..AudioIOLayout::const_default()
    },
    AudioIOLayout {
        main_input_channels: Some(MONO),
        main_output_channels: Some(MONO),
        names: PortNames {
            layout: Some("Mono"),
            ..PortNames::const_default()
        },
        ..AudioIOLayout::const_default()
    },
];

impl<const AUX: bool> Plugin for Separator<AUX> {
    /// The same name for both; the VST3 factory names the multi-out class
    /// [`crate::vst3_export::MULTI_OUT_NAME`].
    const NAME: &'static str = "NMF Separator";
    const VENDOR: &'static str = "NMF Separator";
    const URL: &'static str = "https://example.invalid/nmf-separator";
    const EMAIL: &'static str = "nmf-separator@example.invalid";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    const AUDIO_IO_LAYOUTS: &'static [AudioIOLayout] = if AUX { AUX_LAYOUTS } else { MAIN_LAYOUTS };

    type SysExMessage = ();
    type BackgroundTask = ();
    #[cfg(feature = "editor")]
    type Editor = editor::SeparatorEditor;
    #[cfg(not(feature = "editor"))]
    type Editor = ();

    fn params(&self) -> Arc<dyn Params> {
        self.params.clone()
    }

    #[cfg(feature = "editor")]
    fn editor(&mut self, _async_executor: AsyncExecutor<Self>) -> Option<Self::Editor> {
        editor::create(
            self.params.clone(),
            self.status.clone(),
            self.feed.clone(),
            self.editor_state.clone(),
            AUX,
        )
    }

    fn activate(
        &mut self,
        audio_io_layout: &AudioIOLayout,
        buffer_config: &BufferConfig,
        context: &mut impl ActivateContext<Self>,
    ) -> bool {
        let channels = audio_io_layout
            .main_output_channels
            .or(audio_io_layout.main_input_channels)
            .map_or(2, NonZeroU32::get) as usize;
        // Stop the previous session's threads first (cancels a running fit).
        self.realtime = None;
        self.trainer = None;
        let (realtime, trainer) = trainer::start(
            self.params.clone(),
            self.status.clone(),
            buffer_config.sample_rate,
            channels,
        );
        context.set_latency_samples(realtime.latency_samples());
        self.feed.set_sample_rate(buffer_config.sample_rate);
        let mut realtime = realtime;
        realtime.set_feed(self.feed.clone());
        self.realtime = Some(realtime);
        self.trainer = Some(trainer);
        true
    }

    fn reset(&mut self) {
        if let Some(rt) = self.realtime.as_mut() {
            rt.reset();
        }
    }

    fn process(
        &mut self,
        buffer: &mut Buffer,
        aux: &mut AuxiliaryBuffers,
        context: &mut impl ProcessContext<Self>,
    ) -> ProcessStatus {
        #[cfg(feature = "editor")]
        self.feed.set_open(self.editor_state.is_open());
        let Some(rt) = self.realtime.as_mut() else {
            return ProcessStatus::Normal;
        };
        let controls = Controls {
            engine: self.params.engine_params(),
            capture: self.params.capture.value(),
            target: self.params.capture_target.value(),
        };
        let mut buses: [&mut [&mut [f32]]; MAX_SOURCES] = Default::default();
        if AUX {
            for (slot, bus) in buses.iter_mut().zip(aux.outputs.iter_mut()) {
                *slot = bus.as_slice();
            }
        }
        if rt.process(buffer.as_slice(), &mut buses, &controls) {
            context.set_latency_samples(rt.latency_samples());
        }
        ProcessStatus::Normal
    }
}

impl<const AUX: bool> Drop for Separator<AUX> {
    fn drop(&mut self) {
        // The audio side first: closing its queues ends the trainer loop; then join it.
        self.realtime = None;
        self.trainer = None;
    }
}

impl<const AUX: bool> ClapPlugin for Separator<AUX> {
    const CLAP_ID: &'static str = if AUX {
        "com.nmf-separator.nmf-separator"
    } else {
        "com.nmf-separator.nmf-separator-main"
    };
    const CLAP_DESCRIPTION: Option<&'static str> =
        Some("Separates sounds with non-negative matrix factorization");
    const CLAP_MANUAL_URL: Option<&'static str> = None;
    const CLAP_SUPPORT_URL: Option<&'static str> = None;
    const CLAP_FEATURES: &'static [ClapFeature] = &[
        ClapFeature::AudioEffect,
        ClapFeature::Stereo,
        ClapFeature::Mono,
        ClapFeature::Utility,
    ];
}

impl<const AUX: bool> Vst3Plugin for Separator<AUX> {
    const VST3_CLASS_ID: [u8; 16] = if AUX {
        *b"NmfSeparatorMult"
    } else {
        *b"NmfSeparatorVst3"
    };
    const VST3_SUBCATEGORIES: &'static [Vst3SubCategory] =
        &[Vst3SubCategory::Fx, Vst3SubCategory::Tools];
}
