//! A CLAP host on clack-host for the host tests: loads the bundled `.clap`, activates it with
//! the main and source ports of a configuration, sets parameters, saves and loads state and
//! processes blocks. Shared by the CLAP host test, the VST3 comparison and the soak test.
#![allow(dead_code)]

use super::*;
use clack_extensions::audio_ports::{AudioPortFlags, AudioPortInfoBuffer, PluginAudioPorts};
use clack_extensions::audio_ports_config::{AudioPortsConfigBuffer, PluginAudioPortsConfig};
use clack_extensions::latency::{HostLatency, HostLatencyImpl, PluginLatency};
use clack_extensions::params::{ParamInfoBuffer, ParamInfoFlags, PluginParams};
use clack_extensions::state::PluginState;
use clack_extensions::thread_check::{HostThreadCheck, HostThreadCheckImpl};
use clack_host::events::event_types::ParamValueEvent;
use clack_host::prelude::*;
use nmf_separator::dsp::engine::MAX_SOURCES;
use nmf_separator::nmf::Dictionary;
use serde_json::Value;
use std::cell::Cell;
use std::ffi::CString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

pub const PLUGIN_ID: &str = "com.nmf-separator.nmf-separator";
/// Output ports: main ("Mix") then the four sources.
pub const OUT_PORTS: usize = 1 + MAX_SOURCES;

// ------------------------------------------------------------------------------------------
// Files

pub fn bundle_path() -> PathBuf {
    if let Some(p) = std::env::var_os("NMFSEP_CLAP") {
        return PathBuf::from(p);
    }
    target_dir().join("bundled").join("NMF Separator.clap")
}

/// The bundle's library (on Linux and Windows the `.clap` is the library itself).
pub fn bundle() -> PathBuf {
    let path = bundle_path();
    assert!(
        path.exists(),
        "the CLAP bundle {} does not exist. Build it with\n    \
         cargo xtask bundle nmf-separator --features assert_process_allocs\n\
         (with the same CARGO_TARGET_DIR), or point NMFSEP_CLAP at a .clap file",
        path.display()
    );
    if path.is_dir() {
        // macOS bundle: Contents/MacOS/<name>
        let macos = path.join("Contents").join("MacOS");
        if let Some(e) = std::fs::read_dir(&macos)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok())
        {
            return e.path();
        }
    }
    path
}

/// nice-plug's CLAP parameter id: a hash of the string id.
pub fn param_hash(id: &str) -> u32 {
    let mut hash: u32 = 0;
    for b in id.bytes() {
        hash = hash.wrapping_mul(31).wrapping_add(b as u32);
    }
    hash & !(1 << 31)
}

// ------------------------------------------------------------------------------------------
// The host

#[derive(Default)]
pub struct Shared {
    /// True while the host is inside `process()` (for the thread-check extension).
    pub in_audio: AtomicBool,
    pub callback_requested: AtomicBool,
    pub restarts_requested: AtomicU32,
}

impl SharedHandler<'_> for Shared {
    fn request_restart(&self) {
        self.restarts_requested.fetch_add(1, Ordering::SeqCst);
    }
    fn request_process(&self) {}
    fn request_callback(&self) {
        self.callback_requested.store(true, Ordering::SeqCst);
    }
}

impl HostThreadCheckImpl for Shared {
    fn is_main_thread(&self) -> bool {
        !self.in_audio.load(Ordering::SeqCst)
    }
    fn is_audio_thread(&self) -> bool {
        self.in_audio.load(Ordering::SeqCst)
    }
}

#[derive(Default)]
pub struct MainThread {
    pub latency_changes: Cell<u32>,
}

impl MainThreadHandler<'_> for MainThread {}

impl HostLatencyImpl for MainThread {
    fn changed(&self) {
        self.latency_changes.set(self.latency_changes.get() + 1);
    }
}

pub struct TestHost;

impl HostHandlers for TestHost {
    type Shared<'a> = Shared;
    type MainThread<'a> = MainThread;
    type AudioProcessor<'a> = ();

    fn declare_extensions(builder: &mut HostExtensions<Self>, _shared: &Self::Shared<'_>) {
        builder.register::<HostLatency>();
        builder.register::<HostThreadCheck>();
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Port {
    pub name: String,
    pub channels: u32,
    pub main: bool,
}

/// One plugin instance, driven from the test thread (main and audio thread in turn).
pub struct Host {
    pub instance: PluginInstance<TestHost>,
    pub processor: Option<StartedPluginAudioProcessor<TestHost>>,
    pub channels: usize,
    pub max_block: usize,
    pub input: Vec<Vec<f32>>,
    pub output: Vec<Vec<Vec<f32>>>,
    pub input_ports: AudioPorts,
    pub output_ports: AudioPorts,
    pub events: EventBuffer,
    pub out_events: EventBuffer,
    pub steady_time: u64,
}

impl Host {
    pub fn new() -> Self {
        let path = bundle();
        // SAFETY: the bundle is our own plugin.
        let entry = unsafe { PluginEntry::load(&path) }
            .unwrap_or_else(|e| panic!("cannot load {}: {e:?}", path.display()));
        let factory = entry.get_plugin_factory().expect("no plugin factory");
        let ids: Vec<String> = factory
            .plugin_descriptors()
            .filter_map(|d| d.id().map(|i| i.to_string_lossy().into_owned()))
            .collect();
        assert_eq!(
            ids,
            [PLUGIN_ID],
            "the .clap should export exactly the multi-output plugin"
        );
        let info = HostInfo::new(
            "nmf-separator test host",
            "tests",
            "https://example.invalid",
            "1",
        )
        .unwrap();
        let id = CString::new(PLUGIN_ID).unwrap();
        let instance = PluginInstance::<TestHost>::new(
            |_| Shared::default(),
            |_| MainThread::default(),
            &entry,
            &id,
            &info,
        )
        .expect("instantiation failed");
        Self {
            instance,
            processor: None,
            channels: 0,
            max_block: 0,
            input: Vec::new(),
            output: Vec::new(),
            input_ports: AudioPorts::with_capacity(2, 1),
            output_ports: AudioPorts::with_capacity(2 * OUT_PORTS, OUT_PORTS),
            events: EventBuffer::with_capacity(16),
            out_events: EventBuffer::with_capacity(64),
            steady_time: 0,
        }
    }

    pub fn ext<
        E: clack_host::extensions::Extension<
            ExtensionSide = clack_host::extensions::PluginExtensionSide,
        >,
    >(
        &self,
        name: &str,
    ) -> E {
        self.instance
            .plugin_shared_handle()
            .get_extension::<E>()
            .unwrap_or_else(|| panic!("the plugin lacks the {name} extension"))
    }

    pub fn ports(&mut self, input: bool) -> Vec<Port> {
        let ext: PluginAudioPorts = self.ext("audio-ports");
        let handle = self.instance.plugin_handle();
        let mut buf = AudioPortInfoBuffer::new();
        (0..ext.count(&handle, input))
            .map(|i| {
                let p = ext.get(&handle, i, input, &mut buf).expect("port info");
                Port {
                    name: String::from_utf8_lossy(p.name).into_owned(),
                    channels: p.channel_count,
                    main: p.flags.contains(AudioPortFlags::IS_MAIN),
                }
            })
            .collect()
    }

    /// The audio-ports-config entries: (id, name, main input channels, main output channels).
    pub fn configs(&mut self) -> Vec<(ClapId, String, u32, u32)> {
        let ext: PluginAudioPortsConfig = self.ext("audio-ports-config");
        let handle = self.instance.plugin_handle();
        let mut buf = AudioPortsConfigBuffer::new();
        (0..ext.count(&handle))
            .map(|i| {
                let c = ext.get(&handle, i, &mut buf).expect("config");
                (
                    c.id,
                    String::from_utf8_lossy(c.name).into_owned(),
                    c.main_input.map_or(0, |m| m.channel_count),
                    c.main_output.map_or(0, |m| m.channel_count),
                )
            })
            .collect()
    }

    pub fn select_config(&mut self, id: ClapId) {
        let ext: PluginAudioPortsConfig = self.ext("audio-ports-config");
        ext.select(&self.instance.plugin_handle(), id)
            .expect("the plugin refused its own audio ports config");
    }

    /// Every parameter: (id, module/name, min, max, default).
    pub fn params(&mut self) -> Vec<(u32, String, f64, f64, f64)> {
        let ext: PluginParams = self.ext("params");
        let handle = self.instance.plugin_handle();
        let mut buf = ParamInfoBuffer::new();
        (0..ext.count(&handle))
            .map(|i| {
                let p = ext.get_info(&handle, i, &mut buf).expect("param info");
                (
                    p.id.get(),
                    format!(
                        "{}/{}",
                        String::from_utf8_lossy(p.module),
                        String::from_utf8_lossy(p.name)
                    ),
                    p.min_value,
                    p.max_value,
                    p.default_value,
                )
            })
            .collect()
    }

    /// The CLAP flags of every parameter: (id, flags).
    pub fn param_flags(&mut self) -> Vec<(u32, ParamInfoFlags)> {
        let ext: PluginParams = self.ext("params");
        let handle = self.instance.plugin_handle();
        let mut buf = ParamInfoBuffer::new();
        (0..ext.count(&handle))
            .map(|i| {
                let p = ext.get_info(&handle, i, &mut buf).expect("param info");
                (p.id.get(), p.flags)
            })
            .collect()
    }

    pub fn param_value(&mut self, id: &str) -> f64 {
        let ext: PluginParams = self.ext("params");
        ext.get_value(&self.instance.plugin_handle(), ClapId::new(param_hash(id)))
            .unwrap_or_else(|| panic!("no value for parameter {id}"))
    }

    pub fn load_state(&mut self, state: &Value) {
        let json = serde_json::to_vec(state).unwrap();
        // nice-plug's CLAP state: the JSON's length (u64 LE), then the JSON.
        let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(&json);
        let ext: PluginState = self.ext("state");
        ext.load(&self.instance.plugin_handle(), &mut bytes.as_slice())
            .expect("state load failed");
        self.main_thread_callbacks();
    }

    /// Hands the plugin raw state bytes as a host would; returns whether it accepted them.
    pub fn load_state_bytes(&mut self, bytes: &[u8]) -> bool {
        let ext: PluginState = self.ext("state");
        let ok = ext
            .load(&self.instance.plugin_handle(), &mut &bytes[..])
            .is_ok();
        self.main_thread_callbacks();
        ok
    }

    /// The raw state bytes the plugin saves.
    pub fn save_state_bytes(&mut self) -> Vec<u8> {
        let ext: PluginState = self.ext("state");
        let mut bytes = Vec::new();
        ext.save(&self.instance.plugin_handle(), &mut bytes)
            .expect("state save failed");
        bytes
    }

    pub fn save_state(&mut self) -> Value {
        let ext: PluginState = self.ext("state");
        let mut bytes = Vec::new();
        ext.save(&self.instance.plugin_handle(), &mut bytes)
            .expect("state save failed");
        assert!(bytes.len() > 8, "empty state");
        let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        assert_eq!(len, bytes.len() - 8, "state length prefix");
        serde_json::from_slice(&bytes[8..]).expect("state is not JSON")
    }

    /// The trained separator of the saved state, if any.
    pub fn saved_model(&mut self) -> Option<nmf_separator::trained::SeparatorModel> {
        let state = self.save_state();
        let field = state["fields"]["model"].as_str()?;
        serde_json::from_str(field).expect("the saved model parses")
    }

    /// Runs `n` stereo blocks of `block` samples of silence, sleeping `ms` after each, so
    /// that the trainer thread works while audio keeps coming.
    pub fn idle(&mut self, n: usize, block: usize, ms: u64) {
        let silence = vec![vec![0.0; block]; 2];
        for _ in 0..n {
            self.run(&silence, block, &[]);
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
    }

    /// The dictionary and assignment of the saved state.
    pub fn saved_dictionary(&mut self) -> Option<(Dictionary, Vec<usize>)> {
        let state = self.save_state();
        let fields = &state["fields"];
        let dict: Option<Dictionary> =
            serde_json::from_str(fields["dictionary"].as_str()?).expect("dictionary field");
        let assignment: Vec<usize> =
            serde_json::from_str(fields["assignment"].as_str()?).expect("assignment field");
        dict.map(|d| (d, assignment))
    }

    /// [`Self::saved_dictionary`], `None` instead of a panic when the saved fields do not
    /// parse (as after a damaged state was accepted field by field).
    pub fn saved_dictionary_lenient(&mut self) -> Option<(Dictionary, Vec<usize>)> {
        let state = self.save_state();
        let fields = &state["fields"];
        let dict: Option<Dictionary> = serde_json::from_str(fields["dictionary"].as_str()?).ok()?;
        let assignment: Vec<usize> = serde_json::from_str(fields["assignment"].as_str()?).ok()?;
        dict.map(|d| (d, assignment))
    }

    pub fn restarts(&self) -> u32 {
        self.instance
            .access_shared_handler(|s| s.restarts_requested.load(Ordering::SeqCst))
    }

    pub fn latency(&mut self) -> u32 {
        let ext: PluginLatency = self.ext("latency");
        ext.get(&self.instance.plugin_handle())
    }

    pub fn main_thread_callbacks(&mut self) {
        let requested = self
            .instance
            .access_shared_handler(|s| s.callback_requested.swap(false, Ordering::SeqCst));
        if requested {
            self.instance.call_on_main_thread_callback();
        }
    }

    pub fn activate(&mut self, channels: usize, max_block: usize) {
        self.activate_at(channels, max_block, SR);
    }

    /// Activates at `rate` Hz.
    pub fn activate_at(&mut self, channels: usize, max_block: usize, rate: u32) {
        let config = PluginAudioConfiguration {
            sample_rate: f64::from(rate),
            min_frames_count: 1,
            max_frames_count: max_block as u32,
        };
        let stopped = self
            .instance
            .activate(|_, _| (), config)
            .expect("activation failed");
        self.processor = Some(stopped.start_processing().expect("start_processing failed"));
        self.channels = channels;
        self.max_block = max_block;
        self.input = vec![vec![0.0; max_block]; channels];
        self.output = vec![vec![vec![0.0; max_block]; channels]; OUT_PORTS];
    }

    pub fn deactivate(&mut self) {
        if let Some(p) = self.processor.take() {
            self.instance.deactivate(p.stop_processing());
        }
    }

    pub fn reset(&mut self) {
        self.processor.as_mut().unwrap().reset();
    }

    /// One block: `input[c][..n]` in, every output port's channels appended to `out[port][c]`;
    /// `params` (string id, plain value) are sent as events at the block's first sample.
    pub fn process_block(
        &mut self,
        input: &[&[f32]],
        params: &[(&str, f64)],
        out: &mut [Vec<Vec<f32>>],
    ) {
        let n = input[0].len();
        assert!(n <= self.max_block && n > 0);
        for (dst, src) in self.input.iter_mut().zip(input) {
            dst[..n].copy_from_slice(src);
        }
        // Garbage in the outputs: the plugin must write every sample of every port.
        for ch in self.output.iter_mut().flatten() {
            ch[..n].fill(f32::NAN);
        }
        self.events.clear();
        for &(id, value) in params {
            self.events.push(&ParamValueEvent::new(
                0,
                ClapId::new(param_hash(id)),
                Pckn::match_all(),
                value,
            ));
        }
        self.out_events.clear();
        let processor = self.processor.as_mut().expect("not active");
        let inputs = self.input_ports.with_input_buffers([AudioPortBuffer {
            latency: 0,
            channels: AudioPortBufferType::f32_input_only(
                self.input
                    .iter_mut()
                    .map(|c| InputChannel::variable(&mut c[..n])),
            ),
        }]);
        let mut outputs = self
            .output_ports
            .with_output_buffers(self.output.iter_mut().map(|port| AudioPortBuffer {
                latency: 0,
                channels: AudioPortBufferType::f32_output_only(
                    port.iter_mut().map(|c| &mut c[..n]),
                ),
            }));
        processor.access_shared_handler(|s| s.in_audio.store(true, Ordering::SeqCst));
        let status = processor.process(
            &inputs,
            &mut outputs,
            &self.events.as_input(),
            &mut self.out_events.as_output(),
            Some(self.steady_time),
            None,
        );
        processor.access_shared_handler(|s| s.in_audio.store(false, Ordering::SeqCst));
        status.expect("process failed");
        self.steady_time += n as u64;
        for (dst, src) in out.iter_mut().zip(&self.output) {
            for (d, s) in dst.iter_mut().zip(src) {
                d.extend_from_slice(&s[..n]);
            }
        }
        self.main_thread_callbacks();
    }

    /// Runs `input` (channels) through in blocks of `block` samples; `params` go with the first
    /// block. Returns the raw outputs `[port][channel][sample]` (not latency-compensated).
    pub fn run(
        &mut self,
        input: &[Vec<f32>],
        block: usize,
        params: &[(&str, f64)],
    ) -> Vec<Vec<Vec<f32>>> {
        let len = input[0].len();
        let mut out = vec![vec![Vec::with_capacity(len); self.channels]; OUT_PORTS];
        let mut start = 0;
        while start < len {
            let end = (start + block).min(len);
            let slices: Vec<&[f32]> = input.iter().map(|c| &c[start..end]).collect();
            let p = if start == 0 { params } else { &[] };
            self.process_block(&slices, p, &mut out);
            start = end;
        }
        out
    }

    /// Runs `input` followed by `latency` zeros and drops the first `latency` output samples:
    /// the outputs aligned with the input.
    pub fn run_compensated(
        &mut self,
        input: &[Vec<f32>],
        block: usize,
        latency: usize,
        params: &[(&str, f64)],
    ) -> Vec<Vec<Vec<f32>>> {
        let mut out = self.run(&padded(input, latency), block, params);
        for ch in out.iter_mut().flatten() {
            ch.drain(..latency);
        }
        out
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.deactivate();
    }
}

/// Every channel of `input` followed by `latency` zeros (so that the latency-compensated
/// outputs cover the whole input).
pub fn padded(input: &[Vec<f32>], latency: usize) -> Vec<Vec<f32>> {
    input
        .iter()
        .map(|c| {
            let mut v = c.clone();
            v.resize(c.len() + latency, 0.0);
            v
        })
        .collect()
}
