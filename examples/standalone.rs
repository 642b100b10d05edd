//! The plugin (CLAP variant, main + four source buses) as a standalone application with its
//! editor, through nice-plug's `standalone` wrapper:
//!
//! ```sh
//! cargo run --release --features standalone --example nmf-separator-standalone -- --backend dummy
//! ```
//!
//! (`--help` lists the wrapper's flags: `--backend auto|jack|alsa|dummy`, `--sample-rate`,
//! `--period-size`, `--dpi-scale`, ...). The binary is named `nmf-separator-standalone` so the
//! bundler does not take it for the plugin.
//!
//! The dummy backend has no audio input. For demonstrations and the screenshot script, the
//! environment variable `NMF_SEPARATOR_DEMO=1` wraps the plugin so that:
//!
//! - its input is a synthetic test signal instead of the (silent) backend input: a harmonic
//!   "tone" melody alone for 5 s, then filtered-noise "hats" alone for 5 s, then both mixed,
//!   looping every 20 s;
//! - once the editor is open, an autopilot drives it through the host's parameter system
//!   exactly as clicks would (begin/set/end gestures on `capture_target` and `capture` via the
//!   editor's `GuiContext`): it names Source 1 "Tone" and Source 2 "Hats" (persisted field
//!   `source_labels`), captures Source 1 during the tone section, waits for the trainer,
//!   captures Source 2 during the hats section, waits for the separator trained from the two
//!   captures (when "Train from the captures" is on, the default), and leaves the mix running.
//!
//! With `NMF_SEPARATOR_DEMO=live` the autopilot captures only Source 1: Source 2 is then
//! learned live (the hats), and it waits for three refits of the live rest before it prints
//! its marker line (the screenshot script's `docs/editor-live.png`).
//!
//! Without the variable the application is the plain plugin.

use std::error::Error;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nice_plug::context::gui::GuiContext;
use nice_plug::editor::dpi::NativeSize;
use nice_plug::editor::{HostMethods, SpawnedEditor};
use nice_plug::midi::PluginNoteEvent;
use nice_plug::prelude::*;
use nmf_separator::plugin::feed::EditorFeed;
use nmf_separator::plugin::params::{CaptureTarget, SeparatorParams};
use nmf_separator::plugin::status::Status;
use nmf_separator::plugin::NmfSeparatorClap;

type Inner = NmfSeparatorClap;

/// Sections of the demo signal, seconds.
const TONE_END_S: f64 = 5.0;
const HATS_END_S: f64 = 10.0;
const LOOP_S: f64 = 20.0;

fn demo_enabled() -> bool {
    std::env::var("NMF_SEPARATOR_DEMO").is_ok_and(|v| v == "1" || v == "live")
}

/// The demo that captures only Source 1 (the rest learned live).
fn demo_live() -> bool {
    std::env::var("NMF_SEPARATOR_DEMO").is_ok_and(|v| v == "live")
}

/// The plugin, optionally with the demo input and autopilot.
struct Standalone {
    inner: Inner,
    demo: bool,
    /// Samples of demo signal generated (the autopilot's clock).
    position: Arc<AtomicU64>,
    sample_rate: f32,
    noise: u32,
    hp: f32,
    lp: f32,
}

impl Default for Standalone {
    fn default() -> Self {
        Self {
            inner: Inner::default(),
            demo: demo_enabled(),
            position: Arc::new(AtomicU64::new(0)),
            sample_rate: 48_000.0,
            noise: 0x1234_5678,
            hp: 0.0,
            lp: 0.0,
        }
    }
}

impl Standalone {
    /// One sample of the demo signal at time `t` seconds.
    fn demo_sample(&mut self, n: u64) -> f32 {
        let t = n as f64 / self.sample_rate as f64;
        let tl = t % LOOP_S;
        let tone_on = !(TONE_END_S..HATS_END_S).contains(&tl);
        let hats_on = tl >= TONE_END_S;
        let mut y = 0.0f32;
        if tone_on {
            // A four-note melody (A2, C3, E3, G3), 0.5 s per note, 5 harmonics, plucked.
            let notes = [110.0f64, 130.81, 164.81, 196.0];
            let note = notes[((tl / 0.5) as usize) % notes.len()];
            let tn = tl % 0.5;
            let env = (-(tn * 4.0)).exp() as f32;
            for h in 1..=5 {
                let ph = 2.0 * std::f64::consts::PI * note * h as f64 * t;
                y += 0.18 * env * ph.sin() as f32 / h as f32;
            }
        }
        if hats_on {
            // High-passed noise bursts every 0.25 s.
            self.noise ^= self.noise << 13;
            self.noise ^= self.noise >> 17;
            self.noise ^= self.noise << 5;
            let w = (self.noise as f32 / u32::MAX as f32) * 2.0 - 1.0;
            self.lp += 0.35 * (w - self.lp);
            let hp = w - self.lp;
            self.hp += 0.6 * (hp - self.hp);
            let tb = tl % 0.25;
            let env = (-(tb * 30.0)).exp() as f32;
            y += 0.5 * env * self.hp;
        }
        y
    }
}

/// Passes the inner plugin's context calls to the wrapper's.
struct Activate<'a, C>(&'a mut C);

impl<C: ActivateContext<Standalone>> ActivateContext<Inner> for Activate<'_, C> {
    fn plugin_api(&self) -> PluginApi {
        self.0.plugin_api()
    }
    fn execute(&self, _task: ()) {}
    fn set_latency_samples(&self, samples: u32) {
        self.0.set_latency_samples(samples)
    }
    fn set_current_voice_capacity(&self, capacity: u32) {
        self.0.set_current_voice_capacity(capacity)
    }
}

struct Process<'a, C>(&'a mut C);

impl<C: ProcessContext<Standalone>> ProcessContext<Inner> for Process<'_, C> {
    fn plugin_api(&self) -> PluginApi {
        self.0.plugin_api()
    }
    fn execute_background(&self, _task: ()) {}
    fn execute_gui(&self, _task: ()) {}
    fn transport(&self) -> &Transport {
        self.0.transport()
    }
    fn next_event(&mut self) -> Option<PluginNoteEvent<Inner>> {
        None
    }
    fn try_send_event(
        &mut self,
        event: PluginNoteEvent<Inner>,
    ) -> Result<
        (),
        (
            PluginNoteEvent<Inner>,
            nice_plug::context::process::SendEventError,
        ),
    > {
        Err((
            event,
            nice_plug::context::process::SendEventError::NoOutputBuffer,
        ))
    }
    fn set_latency_samples(&self, samples: u32) {
        self.0.set_latency_samples(samples)
    }
    fn request_restart(&self) {
        self.0.request_restart()
    }
    fn set_current_voice_capacity(&self, capacity: u32) {
        self.0.set_current_voice_capacity(capacity)
    }
}

/// What the demo autopilot works with: parameters, trainer status, signal clock, feed.
type Autopilot = (
    Arc<SeparatorParams>,
    Arc<Status>,
    Arc<AtomicU64>,
    Arc<EditorFeed>,
);

/// The plugin's editor, plus the demo autopilot when enabled.
struct StandaloneEditor {
    inner: <Inner as Plugin>::Editor,
    autopilot: Option<Autopilot>,
}

impl Editor for StandaloneEditor {
    type Handle = <<Inner as Plugin>::Editor as Editor>::Handle;

    fn spawn(
        &self,
        parent: Option<ParentWindowHandle>,
        wait_for_parent: bool,
        fallback_scale_factor: Option<f64>,
        gui_context: GuiContext,
        host: Option<HostMethods>,
    ) -> Result<SpawnedEditor<Self::Handle>, Box<dyn Error>> {
        if let Some((params, status, position, sr)) = self.autopilot.clone() {
            let ctx = gui_context.clone();
            std::thread::spawn(move || autopilot(ctx, params, status, position, sr));
        }
        self.inner.spawn(
            parent,
            wait_for_parent,
            fallback_scale_factor,
            gui_context,
            host,
        )
    }

    fn size(&self) -> NativeSize<u32> {
        self.inner.size()
    }

    fn resize_hint(&self) -> ResizeHint {
        self.inner.resize_hint()
    }

    unsafe fn assume_standalone_in_process(&self) {
        unsafe { self.inner.assume_standalone_in_process() }
    }
}

/// Clicks through a capture of each section, like a user would.
fn autopilot(
    ctx: GuiContext,
    params: Arc<SeparatorParams>,
    status: Arc<Status>,
    position: Arc<AtomicU64>,
    feed: Arc<EditorFeed>,
) {
    while feed.sample_rate() <= 0.0 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let sample_rate = feed.sample_rate();
    let now_s = || position.load(Ordering::Acquire) as f64 / sample_rate as f64;
    let wait_until = |s: f64| {
        while now_s() < s {
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let wait_learned = |n: u64| {
        while status.clips_learned.load(Ordering::Acquire) < n
            && !status.message().contains("failed")
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    {
        let mut labels = params.source_labels.lock().clone();
        labels.set_name(0, "Tone".into());
        labels.set_name(1, "Hats".into());
        params.source_labels.set_external(labels);
    }
    let press = |param: &BoolParam, on: bool| {
        let setter = ctx.param_setter();
        setter.begin_set_parameter(param);
        setter.set_parameter(param, on);
        setter.end_set_parameter(param);
    };
    let target = |t: CaptureTarget| {
        let setter = ctx.param_setter();
        setter.begin_set_parameter(&params.capture_target);
        setter.set_parameter(&params.capture_target, t);
        setter.end_set_parameter(&params.capture_target);
    };
    let learned = status.clips_learned.load(Ordering::Acquire);
    target(CaptureTarget::Source1);
    wait_until(0.5);
    press(&params.capture, true);
    wait_until(TONE_END_S - 0.3);
    press(&params.capture, false);
    wait_learned(learned + 1);
    if demo_live() {
        while status.rest_refits.load(Ordering::Acquire) < 3 {
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("autopilot: both captures learned (Source 2 learned live)");
        return;
    }
    target(CaptureTarget::Source2);
    // The hats section, or the same section of a later loop when learning Source 1 outlasted
    // it (a loaded machine): the capture always holds the whole section.
    let mut start = TONE_END_S + 0.3;
    while now_s() > start {
        start += LOOP_S;
    }
    wait_until(start);
    press(&params.capture, true);
    wait_until(start + (HATS_END_S - 0.3) - (TONE_END_S + 0.3));
    press(&params.capture, false);
    wait_learned(learned + 2);
    // With "Train from the captures" on (the default), two sources captured alone start the
    // training of a separator: wait for it too, so the editor shows the finished model.
    if params.learn.lock().train_separator {
        while status.models_trained.load(Ordering::Acquire) < 1 {
            let message = status.message();
            if message.contains("failed") || message.contains("cancel") {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    eprintln!("autopilot: both captures learned");
}

impl Plugin for Standalone {
    const NAME: &'static str = "NMF Separator";
    const VENDOR: &'static str = Inner::VENDOR;
    const URL: &'static str = Inner::URL;
    const EMAIL: &'static str = Inner::EMAIL;
    const VERSION: &'static str = Inner::VERSION;
    const AUDIO_IO_LAYOUTS: &'static [AudioIOLayout] = Inner::AUDIO_IO_LAYOUTS;

    type SysExMessage = ();
    type BackgroundTask = ();
    type Editor = StandaloneEditor;

    fn params(&self) -> Arc<dyn Params> {
        self.inner.params()
    }

    fn editor(&mut self, _executor: AsyncExecutor<Self>) -> Option<Self::Editor> {
        let executor = AsyncExecutor::<Inner>::new(Arc::new(|_| {}), Arc::new(|_| {}));
        let inner = self.inner.editor(executor)?;
        let autopilot = self.demo.then(|| {
            (
                self.inner.separator_params().clone(),
                self.inner.status().clone(),
                self.position.clone(),
                self.inner.feed().clone(),
            )
        });
        Some(StandaloneEditor { inner, autopilot })
    }

    fn activate(
        &mut self,
        audio_io_layout: &AudioIOLayout,
        buffer_config: &BufferConfig,
        context: &mut impl ActivateContext<Self>,
    ) -> bool {
        self.sample_rate = buffer_config.sample_rate;
        self.inner
            .activate(audio_io_layout, buffer_config, &mut Activate(context))
    }

    fn reset(&mut self) {
        self.inner.reset()
    }

    fn process(
        &mut self,
        buffer: &mut Buffer,
        aux: &mut AuxiliaryBuffers,
        context: &mut impl ProcessContext<Self>,
    ) -> ProcessStatus {
        if self.demo {
            let start = self.position.load(Ordering::Relaxed);
            let n = buffer.samples();
            for i in 0..n {
                let y = self.demo_sample(start + i as u64);
                for ch in buffer.as_slice().iter_mut() {
                    ch[i] = y;
                }
            }
            self.position.store(start + n as u64, Ordering::Release);
        }
        self.inner.process(buffer, aux, &mut Process(context))
    }
}

fn main() {
    nice_plug::nice_export_standalone::<Standalone>();
}
