//! The bundled VST3 in a VST3 host of the project's own (on the `vst3` bindings crate): the
//! factory's two classes and their buses, then the piano + bass example through the
//! multi-output class with the source buses active, deactivated with no buffers, deactivated
//! with null channel pointers, and only Source 2 active. Every main output must be the CLAP
//! plugin's main output (the same plugin type, loaded from the .clap), and every active source
//! bus the CLAP's bus, latency aligned.
//!
//! The state holds a dictionary learned from the example's training clips (piano -> Source 1,
//! bass -> Source 2) and `mute_2` on, so the main output is Source 1, not the input.
//!
//! Bundles: `NMFSEP_VST3` / `NMFSEP_CLAP`, or `$CARGO_TARGET_DIR/bundled/NMF Separator.vst3`
//! and `.clap`, built by `cargo xtask bundle nmf-separator --features assert_process_allocs`
//! (debug: any allocation in `process()`, the layer's or nice-plug's, aborts). A missing
//! bundle fails the tests.

mod common;

use std::cell::RefCell;
use std::ffi::{c_void, CString};
use std::path::PathBuf;

use clack_extensions::state::PluginState;
use clack_host::prelude::*;
use common::clap::padded;
use common::*;
use nmf_separator::dsp::engine::MAX_SOURCES;
use serde_json::Value;
use vst3::Steinberg::Vst::{
    AudioBusBuffers, AudioBusBuffers__type0, BusInfo, IAudioProcessor, IAudioProcessorTrait,
    IComponent, IComponentTrait, IHostApplication, IHostApplicationTrait, ProcessData,
    ProcessSetup, String128,
};
use vst3::Steinberg::{
    int32, int64, kInvalidArgument, kResultFalse, kResultOk, tresult, FUnknown, IBStream,
    IBStreamTrait, IPluginBaseTrait, IPluginFactory, IPluginFactory2, IPluginFactory2Trait,
    IPluginFactoryTrait, PClassInfo2, TUID,
};
use vst3::{Class, ComPtr, ComWrapper, Interface};

const OUT_BUSES: usize = 1 + MAX_SOURCES;
const BLOCK: usize = 512;
/// Seconds of the example's mix processed per run (keeps the test short).
const EXCERPT_SECONDS: f64 = 3.0;
/// VST3 vs CLAP output, absolute (the same code on the same input).
const TOLERANCE: f32 = 1e-6;

#[allow(clippy::unnecessary_cast)]
const K_AUDIO: i32 = vst3::Steinberg::Vst::MediaTypes_::kAudio as i32;
#[allow(clippy::unnecessary_cast)]
const K_INPUT: i32 = vst3::Steinberg::Vst::BusDirections_::kInput as i32;
#[allow(clippy::unnecessary_cast)]
const K_OUTPUT: i32 = vst3::Steinberg::Vst::BusDirections_::kOutput as i32;
#[allow(clippy::unnecessary_cast)]
const K_MAIN: i32 = vst3::Steinberg::Vst::BusTypes_::kMain as i32;
#[allow(clippy::unnecessary_cast)]
const K_AUX: i32 = vst3::Steinberg::Vst::BusTypes_::kAux as i32;

fn bundle(var: &str, name: &str) -> PathBuf {
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("bundled").join(name));
    assert!(
        path.exists(),
        "{} does not exist. Build it with\n    \
         cargo xtask bundle nmf-separator --features assert_process_allocs\n\
         (with the same CARGO_TARGET_DIR), or set {var}",
        path.display()
    );
    path
}

/// The library inside the .vst3 bundle (Linux layout; macOS and Windows use their own).
fn vst3_library() -> PathBuf {
    let bundle = bundle("NMFSEP_VST3", "NMF Separator.vst3");
    let dir = bundle
        .join("Contents")
        .join(format!("{}-linux", std::env::consts::ARCH));
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "so"))
        .unwrap_or_else(|| panic!("no .so in {}", dir.display()))
}

// ------------------------------------------------------------------------------------------
// Inputs and the reference

struct Example {
    /// Stereo input: the mix, and the mix at half level.
    input: Vec<Vec<f32>>,
    state: Value,
}

fn example() -> Example {
    let mix = read_wav(&case_dir().join("mix.wav"));
    let n = ((EXCERPT_SECONDS * SR as f64) as usize).min(mix.len());
    let mix = &mix[..n];
    let (dict, assignment) = learned(2048);
    let mut state = state_json(dict, assignment);
    state["params"] = serde_json::json!({"mute_2": {"bool": true}});
    Example {
        input: vec![mix.to_vec(), mix.iter().map(|x| 0.5 * x).collect()],
        state,
    }
}

// ------------------------------------------------------------------------------------------
// The CLAP plugin (the reference)

#[derive(Default)]
struct ClapShared;
impl SharedHandler<'_> for ClapShared {
    fn request_restart(&self) {}
    fn request_process(&self) {}
    fn request_callback(&self) {}
}
struct ClapHost;
impl HostHandlers for ClapHost {
    type Shared<'a> = ClapShared;
    type MainThread<'a> = ();
    type AudioProcessor<'a> = ();
}

/// The CLAP plugin's five output ports `[port][channel][sample]`, latency-compensated.
fn clap_outputs(ex: &Example, latency: usize) -> Vec<Vec<Vec<f32>>> {
    let path = bundle("NMFSEP_CLAP", "NMF Separator.clap");
    // SAFETY: our own plugin.
    let entry = unsafe { PluginEntry::load(&path) }.expect("cannot load the .clap");
    let info = HostInfo::new(
        "nmf-separator vst3 test",
        "tests",
        "https://example.invalid",
        "1",
    )
    .unwrap();
    let id = CString::new("com.nmf-separator.nmf-separator").unwrap();
    let mut instance =
        PluginInstance::<ClapHost>::new(|_| ClapShared, |_| (), &entry, &id, &info).unwrap();
    let json = serde_json::to_vec(&ex.state).unwrap();
    let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(&json);
    let state: PluginState = instance
        .plugin_shared_handle()
        .get_extension()
        .expect("state extension");
    state
        .load(&instance.plugin_handle(), &mut bytes.as_slice())
        .expect("state load");
    let config = PluginAudioConfiguration {
        sample_rate: SR as f64,
        min_frames_count: 1,
        max_frames_count: BLOCK as u32,
    };
    let stopped = instance.activate(|_, _| (), config).unwrap();
    let mut processor = stopped.start_processing().unwrap();

    let input = padded(&ex.input, latency);
    let len = input[0].len();
    let channels = input.len();
    let mut inbuf = vec![vec![0.0f32; BLOCK]; channels];
    let mut outbuf = vec![vec![vec![0.0f32; BLOCK]; channels]; OUT_BUSES];
    let mut out = vec![vec![Vec::with_capacity(len); channels]; OUT_BUSES];
    let mut in_ports = AudioPorts::with_capacity(channels, 1);
    let mut out_ports = AudioPorts::with_capacity(channels * OUT_BUSES, OUT_BUSES);
    let events = EventBuffer::new();
    let mut out_events = EventBuffer::new();
    let mut start = 0;
    while start < len {
        let n = BLOCK.min(len - start);
        for (d, s) in inbuf.iter_mut().zip(&input) {
            d[..n].copy_from_slice(&s[start..start + n]);
        }
        let inputs = in_ports.with_input_buffers([AudioPortBuffer {
            latency: 0,
            channels: AudioPortBufferType::f32_input_only(
                inbuf
                    .iter_mut()
                    .map(|c| InputChannel::variable(&mut c[..n])),
            ),
        }]);
        let mut outputs =
            out_ports.with_output_buffers(outbuf.iter_mut().map(|port| AudioPortBuffer {
                latency: 0,
                channels: AudioPortBufferType::f32_output_only(
                    port.iter_mut().map(|c| &mut c[..n]),
                ),
            }));
        processor
            .process(
                &inputs,
                &mut outputs,
                &events.as_input(),
                &mut out_events.as_output(),
                None,
                None,
            )
            .expect("CLAP process failed");
        for (dst, src) in out.iter_mut().zip(&outbuf) {
            for (d, s) in dst.iter_mut().zip(src) {
                d.extend_from_slice(&s[..n]);
            }
        }
        start += n;
    }
    instance.deactivate(processor.stop_processing());
    for ch in out.iter_mut().flatten() {
        ch.drain(..latency);
    }
    out
}

// ------------------------------------------------------------------------------------------
// A VST3 host

/// A memory `IBStream` (for `setState`/`getState`).
struct Stream {
    data: RefCell<Vec<u8>>,
    pos: RefCell<usize>,
}

impl Class for Stream {
    type Interfaces = (IBStream,);
}

impl IBStreamTrait for Stream {
    unsafe fn read(&self, buffer: *mut c_void, num_bytes: int32, read: *mut int32) -> tresult {
        let data = self.data.borrow();
        let mut pos = self.pos.borrow_mut();
        let n = (num_bytes.max(0) as usize).min(data.len() - *pos);
        unsafe { std::ptr::copy_nonoverlapping(data[*pos..].as_ptr(), buffer as *mut u8, n) };
        *pos += n;
        if !read.is_null() {
            unsafe { *read = n as int32 };
        }
        kResultOk
    }

    unsafe fn write(&self, buffer: *mut c_void, num_bytes: int32, written: *mut int32) -> tresult {
        let n = num_bytes.max(0) as usize;
        let mut data = self.data.borrow_mut();
        let mut pos = self.pos.borrow_mut();
        let bytes = unsafe { std::slice::from_raw_parts(buffer as *const u8, n) };
        data.truncate(*pos);
        data.extend_from_slice(bytes);
        *pos += n;
        if !written.is_null() {
            unsafe { *written = n as int32 };
        }
        kResultOk
    }

    unsafe fn seek(&self, pos: int64, mode: int32, result: *mut int64) -> tresult {
        let len = self.data.borrow().len() as int64;
        let mut cur = self.pos.borrow_mut();
        let new = match mode {
            0 => pos,
            1 => *cur as int64 + pos,
            2 => len + pos,
            _ => return kInvalidArgument,
        };
        if !(0..=len).contains(&new) {
            return kResultFalse;
        }
        *cur = new as usize;
        if !result.is_null() {
            unsafe { *result = new };
        }
        kResultOk
    }

    unsafe fn tell(&self, pos: *mut int64) -> tresult {
        unsafe { *pos = *self.pos.borrow() as int64 };
        kResultOk
    }
}

/// The host context: `IHostApplication` with a name.
struct HostApp(&'static str);

impl Class for HostApp {
    type Interfaces = (IHostApplication,);
}

impl IHostApplicationTrait for HostApp {
    unsafe fn getName(&self, name: *mut String128) -> tresult {
        let name = unsafe { &mut *name };
        name.fill(0);
        for (d, s) in name.iter_mut().zip(self.0.encode_utf16()) {
            *d = s;
        }
        kResultOk
    }

    unsafe fn createInstance(
        &self,
        _cid: *mut TUID,
        _iid: *mut TUID,
        _obj: *mut *mut c_void,
    ) -> tresult {
        kResultFalse
    }
}

struct Module {
    factory: ComPtr<IPluginFactory>,
}

fn load_module() -> Module {
    let path = vst3_library();
    let c = CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: our own library; it is never unloaded.
    let handle = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    assert!(!handle.is_null(), "dlopen {} failed", path.display());
    let sym = |name: &str| {
        let n = CString::new(name).unwrap();
        let p = unsafe { libc::dlsym(handle, n.as_ptr()) };
        assert!(!p.is_null(), "the library does not export {name}");
        p
    };
    let entry: extern "C" fn(*mut c_void) -> bool =
        unsafe { std::mem::transmute(sym("ModuleEntry")) };
    assert!(entry(handle), "ModuleEntry failed");
    assert!(!sym("ModuleExit").is_null());
    let get: extern "system" fn() -> *mut c_void =
        unsafe { std::mem::transmute(sym("GetPluginFactory")) };
    let factory = unsafe { ComPtr::from_raw(get() as *mut IPluginFactory) }.expect("no factory");
    Module { factory }
}

fn c_str(chars: &[std::ffi::c_char]) -> String {
    let bytes: Vec<u8> = chars
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn u16_str(chars: &[u16]) -> String {
    let len = chars.iter().position(|&c| c == 0).unwrap_or(chars.len());
    String::from_utf16_lossy(&chars[..len])
}

#[derive(Debug, Clone, PartialEq)]
struct Bus {
    name: String,
    channels: i32,
    bus_type: i32,
}

struct Instance {
    component: ComPtr<IComponent>,
    processor: ComPtr<IAudioProcessor>,
    _host: Option<ComWrapper<HostApp>>,
}

impl Instance {
    fn new(module: &Module, cid: &[u8; 16], host: Option<&'static str>) -> Self {
        let mut obj: *mut c_void = std::ptr::null_mut();
        let iid = IComponent::IID;
        let result = unsafe {
            module.factory.createInstance(
                cid.as_ptr() as *const std::ffi::c_char,
                iid.as_ptr() as *const std::ffi::c_char,
                &mut obj,
            )
        };
        assert_eq!(result, kResultOk, "createInstance");
        let component = unsafe { ComPtr::from_raw(obj as *mut IComponent) }.unwrap();
        let host = host.map(|name| ComWrapper::new(HostApp(name)));
        let context = host.as_ref().map_or(std::ptr::null_mut(), |h| {
            h.as_com_ref::<FUnknown>().unwrap().as_ptr()
        });
        assert_eq!(unsafe { component.initialize(context) }, kResultOk);
        let processor = component
            .cast::<IAudioProcessor>()
            .expect("IAudioProcessor");
        Self {
            component,
            processor,
            _host: host,
        }
    }

    fn buses(&self, dir: i32) -> Vec<Bus> {
        let n = unsafe { self.component.getBusCount(K_AUDIO, dir) };
        (0..n)
            .map(|i| {
                let mut info: BusInfo = unsafe { std::mem::zeroed() };
                let r = unsafe { self.component.getBusInfo(K_AUDIO, dir, i, &mut info) };
                assert_eq!(r, kResultOk);
                Bus {
                    name: u16_str(&info.name),
                    channels: info.channelCount,
                    bus_type: info.busType,
                }
            })
            .collect()
    }

    fn set_state(&self, state: &Value) {
        let stream = ComWrapper::new(Stream {
            data: RefCell::new(serde_json::to_vec(state).unwrap()),
            pos: RefCell::new(0),
        });
        let ptr = stream.as_com_ref::<IBStream>().unwrap().as_ptr();
        assert_eq!(
            unsafe { self.component.setState(ptr) },
            kResultOk,
            "setState"
        );
    }

    /// Arrangement (`channels` on every bus), bus activation, setup, activation.
    fn activate(&self, channels: usize, n_out: usize, active: &[bool]) -> usize {
        let arr = if channels == 2 {
            vst3::Steinberg::Vst::SpeakerArr::kStereo
        } else {
            vst3::Steinberg::Vst::SpeakerArr::kMono
        };
        let mut ins = [arr];
        let mut outs = vec![arr; n_out];
        let r = unsafe {
            self.processor.setBusArrangements(
                ins.as_mut_ptr(),
                1,
                outs.as_mut_ptr(),
                n_out as int32,
            )
        };
        assert_eq!(r, kResultOk, "setBusArrangements ({channels} channels)");
        for (i, &on) in active.iter().enumerate() {
            let r = unsafe {
                self.component
                    .activateBus(K_AUDIO, K_OUTPUT, i as int32 + 1, on as u8)
            };
            assert_eq!(r, kResultOk, "activateBus");
        }
        let mut setup = ProcessSetup {
            processMode: 0,
            symbolicSampleSize: 0,
            maxSamplesPerBlock: BLOCK as int32,
            sampleRate: SR as f64,
        };
        assert_eq!(
            unsafe { self.processor.setupProcessing(&mut setup) },
            kResultOk
        );
        assert_eq!(unsafe { self.component.setActive(1) }, kResultOk);
        assert_eq!(unsafe { self.processor.setProcessing(1) }, kResultOk);
        unsafe { self.processor.getLatencySamples() as usize }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        unsafe {
            self.processor.setProcessing(0);
            self.component.setActive(0);
            self.component.terminate();
        }
    }
}

/// What the host gives a source bus.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Aux {
    /// Active, with buffers.
    Active,
    /// Deactivated, 0 channels and a null channel array (JUCE 6, pedalboard).
    OffEmpty,
    /// Deactivated, its channel count and a null channel array.
    OffNullArray,
    /// Deactivated, its channel count and an array of null channel pointers.
    OffNullChannels,
}

/// Runs the input (plus `latency` zeros) in blocks of [`BLOCK`]; returns every output bus
/// `[bus][channel][sample]`, latency-compensated (empty for buses without buffers).
fn run_vst3(
    inst: &Instance,
    input: &[Vec<f32>],
    latency: usize,
    aux: &[Aux],
) -> Vec<Vec<Vec<f32>>> {
    let input = padded(input, latency);
    let channels = input.len();
    let len = input[0].len();
    let n_out = 1 + aux.len();
    let mut inbuf = vec![vec![0.0f32; BLOCK]; channels];
    let mut outbuf = vec![vec![vec![0.0f32; BLOCK]; channels]; n_out];
    let mut out = vec![vec![Vec::with_capacity(len); channels]; n_out];
    let mut in_ptrs: Vec<*mut f32> = inbuf.iter_mut().map(|c| c.as_mut_ptr()).collect();
    let mut out_ptrs: Vec<Vec<*mut f32>> = outbuf
        .iter_mut()
        .map(|b| b.iter_mut().map(|c| c.as_mut_ptr()).collect())
        .collect();
    let mut null_ptrs = vec![std::ptr::null_mut::<f32>(); channels];
    let with_buffers = |bus: usize| bus == 0 || aux[bus - 1] == Aux::Active;
    let mut start = 0;
    while start < len {
        let n = BLOCK.min(len - start);
        for (d, s) in inbuf.iter_mut().zip(&input) {
            d[..n].copy_from_slice(&s[start..start + n]);
        }
        // Garbage in every host buffer: the plugin must write each sample it is given.
        for ch in outbuf.iter_mut().flatten() {
            ch.fill(f32::NAN);
        }
        let mut in_bus = AudioBusBuffers {
            numChannels: channels as int32,
            silenceFlags: 0,
            __field0: AudioBusBuffers__type0 {
                channelBuffers32: in_ptrs.as_mut_ptr(),
            },
        };
        let mut out_buses: Vec<AudioBusBuffers> = (0..n_out)
            .map(|bus| {
                let (count, ptrs) = if with_buffers(bus) {
                    (channels, out_ptrs[bus].as_mut_ptr())
                } else {
                    match aux[bus - 1] {
                        Aux::OffEmpty => (0, std::ptr::null_mut()),
                        Aux::OffNullArray => (channels, std::ptr::null_mut()),
                        _ => (channels, null_ptrs.as_mut_ptr()),
                    }
                };
                AudioBusBuffers {
                    numChannels: count as int32,
                    silenceFlags: 0,
                    __field0: AudioBusBuffers__type0 {
                        channelBuffers32: ptrs,
                    },
                }
            })
            .collect();
        let mut data = ProcessData {
            processMode: 0,
            symbolicSampleSize: 0,
            numSamples: n as int32,
            numInputs: 1,
            numOutputs: n_out as int32,
            inputs: &mut in_bus,
            outputs: out_buses.as_mut_ptr(),
            inputParameterChanges: std::ptr::null_mut(),
            outputParameterChanges: std::ptr::null_mut(),
            inputEvents: std::ptr::null_mut(),
            outputEvents: std::ptr::null_mut(),
            processContext: std::ptr::null_mut(),
        };
        assert_eq!(
            unsafe { inst.processor.process(&mut data) },
            kResultOk,
            "process"
        );
        for (bus, (dst, src)) in out.iter_mut().zip(&outbuf).enumerate() {
            if with_buffers(bus) {
                for (d, s) in dst.iter_mut().zip(src) {
                    d.extend_from_slice(&s[..n]);
                }
            }
        }
        start += n;
    }
    for ch in out.iter_mut().flatten() {
        if !ch.is_empty() {
            ch.drain(..latency);
        }
    }
    out
}

fn class_infos(module: &Module) -> Vec<PClassInfo2> {
    let f2 = module
        .factory
        .cast::<IPluginFactory2>()
        .expect("IPluginFactory2");
    (0..unsafe { module.factory.countClasses() })
        .map(|i| {
            let mut info: PClassInfo2 = unsafe { std::mem::zeroed() };
            assert_eq!(unsafe { f2.getClassInfo2(i, &mut info) }, kResultOk);
            info
        })
        .collect()
}

const MAIN_CID: &[u8; 16] = b"NmfSeparatorVst3";
const MULTI_CID: &[u8; 16] = b"NmfSeparatorMult";

// ------------------------------------------------------------------------------------------
// Tests

#[test]
fn factory_lists_both_classes_and_their_buses() {
    let module = load_module();
    let infos = class_infos(&module);
    let listed: Vec<(String, [u8; 16], String)> = infos
        .iter()
        .map(|i| {
            (
                c_str(&i.name),
                i.cid.map(|b| b as u8),
                c_str(&i.subCategories),
            )
        })
        .collect();
    println!("classes: {listed:?}");
    assert_eq!(
        listed
            .iter()
            .map(|l| (l.0.as_str(), &l.1))
            .collect::<Vec<_>>(),
        [
            ("NMF Separator", MAIN_CID),
            ("NMF Separator Multi-Out", MULTI_CID)
        ]
    );
    assert!(listed.iter().all(|l| l.2 == "Fx|Tools"), "{listed:?}");

    let main = Instance::new(&module, MAIN_CID, None);
    let stereo = |name: &str, bus_type| Bus {
        name: name.into(),
        channels: 2,
        bus_type,
    };
    assert_eq!(main.buses(K_INPUT), [stereo("Input", K_MAIN)]);
    assert_eq!(main.buses(K_OUTPUT), [stereo("Output", K_MAIN)]);

    let multi = Instance::new(&module, MULTI_CID, Some("nmf-separator test host"));
    assert_eq!(multi.buses(K_INPUT), [stereo("Input", K_MAIN)]);
    let mut expected = vec![stereo("Output", K_MAIN)];
    expected.extend((1..=MAX_SOURCES).map(|s| stereo(&format!("Source {s}"), K_AUX)));
    assert_eq!(multi.buses(K_OUTPUT), expected);

    // Studio One greys out kAux outputs: there the source buses are kMain.
    let s1 = Instance::new(&module, MULTI_CID, Some("Studio One"));
    assert!(s1.buses(K_OUTPUT).iter().all(|b| b.bus_type == K_MAIN));

    // The mono layout: mono main and mono sources (uniform counts; see `plugin`'s docs).
    multi.activate(1, OUT_BUSES, &[true; MAX_SOURCES]);
    assert!(multi.buses(K_OUTPUT).iter().all(|b| b.channels == 1));
    assert_eq!(multi.buses(K_INPUT)[0].channels, 1);
}

/// One multi-out run against the CLAP's outputs: main always, sources on active buses.
fn check_case(
    name: &str,
    module: &Module,
    ex: &Example,
    clap: &[Vec<Vec<f32>>],
    latency: usize,
    aux: [Aux; MAX_SOURCES],
) {
    let inst = Instance::new(module, MULTI_CID, None);
    inst.set_state(&ex.state);
    let active = aux.map(|a| a == Aux::Active);
    let reported = inst.activate(2, OUT_BUSES, &active);
    assert_eq!(reported, latency, "{name}: latency");
    let out = run_vst3(&inst, &ex.input, latency, &aux);
    let scale = peak(&ex.input[0]);
    for c in 0..2 {
        let d = max_abs_diff(&out[0][c], &clap[0][c]);
        println!("{name}: main ch{c} vs CLAP: max diff {d:.2e}");
        assert!(
            d < TOLERANCE,
            "{name}: main ch{c} differs from the CLAP's by {d}"
        );
        // Separated: Source 2 is muted, so the main output is not the dry input.
        let dry = max_abs_diff(&out[0][c], &ex.input[c]) / scale;
        let vs_input = si_sdr(&out[0][c], &ex.input[c]);
        println!("{name}: main ch{c} vs input: max diff {dry:.3} of peak, SI-SDR {vs_input:.1} dB");
        assert!(
            dry > 0.1 && vs_input < 15.0,
            "{name}: main ch{c} is the dry input"
        );
        for s in 0..MAX_SOURCES {
            if aux[s] == Aux::Active {
                let d = max_abs_diff(&out[1 + s][c], &clap[1 + s][c]);
                println!("{name}: Source {} ch{c} vs CLAP: max diff {d:.2e}", s + 1);
                assert!(d < TOLERANCE, "{name}: Source {} ch{c}: {d}", s + 1);
            } else {
                assert!(out[1 + s][c].is_empty());
            }
        }
    }
}

#[test]
fn multi_out_separates_whatever_the_host_does_with_the_source_buses() {
    let ex = example();
    let latency = 2048;
    let clap = clap_outputs(&ex, latency);
    // The reference separates: Source 2 (bass) is there and the main output lacks it.
    assert!(peak(&clap[2][0]) > 0.05 * peak(&ex.input[0]));
    let module = load_module();
    use Aux::*;
    check_case("(a) all active", &module, &ex, &clap, latency, [Active; 4]);
    check_case(
        "(b) off, 0 channels",
        &module,
        &ex,
        &clap,
        latency,
        [OffEmpty; 4],
    );
    check_case(
        "(c) off, null pointers",
        &module,
        &ex,
        &clap,
        latency,
        [OffNullArray, OffNullArray, OffNullChannels, OffNullChannels],
    );
    check_case(
        "(d) only Source 2",
        &module,
        &ex,
        &clap,
        latency,
        [OffNullChannels, Active, OffEmpty, OffNullArray],
    );
}

#[test]
fn main_only_class_separates_like_the_clap_main_output() {
    let ex = example();
    let latency = 2048;
    let clap = clap_outputs(&ex, latency);
    let module = load_module();
    let inst = Instance::new(&module, MAIN_CID, None);
    inst.set_state(&ex.state);
    assert_eq!(inst.activate(2, 1, &[]), latency);
    let out = run_vst3(&inst, &ex.input, latency, &[]);
    for c in 0..2 {
        let d = max_abs_diff(&out[0][c], &clap[0][c]);
        println!("main-only: main ch{c} vs CLAP: max diff {d:.2e}");
        assert!(d < TOLERANCE, "main-only ch{c}: {d}");
    }
}
