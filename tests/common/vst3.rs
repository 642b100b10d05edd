//! A VST3 host of the project's own on the `vst3` bindings crate, for the host tests: loads
//! the bundled `.vst3` library (`dlopen`, `ModuleEntry`, `GetPluginFactory`), lists the
//! factory's classes and buses, creates an instance with an optional `IHostApplication`, sets
//! its state through a memory `IBStream`, and runs audio in blocks with the source buses
//! active, deactivated or given null pointers, as hosts do.

use std::cell::RefCell;
use std::ffi::{c_void, CString};
use std::path::PathBuf;

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

use super::clap::padded;
use super::{target_dir, SR};

/// Samples per `process` call.
pub const BLOCK: usize = 512;

#[allow(clippy::unnecessary_cast)]
pub const K_AUDIO: i32 = vst3::Steinberg::Vst::MediaTypes_::kAudio as i32;
#[allow(clippy::unnecessary_cast)]
pub const K_INPUT: i32 = vst3::Steinberg::Vst::BusDirections_::kInput as i32;
#[allow(clippy::unnecessary_cast)]
pub const K_OUTPUT: i32 = vst3::Steinberg::Vst::BusDirections_::kOutput as i32;
#[allow(clippy::unnecessary_cast)]
pub const K_MAIN: i32 = vst3::Steinberg::Vst::BusTypes_::kMain as i32;
#[allow(clippy::unnecessary_cast)]
pub const K_AUX: i32 = vst3::Steinberg::Vst::BusTypes_::kAux as i32;

/// The bundle `name` under `$CARGO_TARGET_DIR/bundled`, or the path in the variable `var`;
/// fails the test when it does not exist.
pub fn bundle(var: &str, name: &str) -> PathBuf {
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
pub fn vst3_library() -> PathBuf {
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

/// A memory `IBStream` (for `setState`/`getState`).
pub struct Stream {
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
pub struct HostApp(&'static str);

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

/// The loaded `.vst3` library's plugin factory.
pub struct Module {
    pub factory: ComPtr<IPluginFactory>,
}

/// Loads the bundle's library ([`vst3_library`]) and calls its `ModuleEntry`.
pub fn load_module() -> Module {
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

/// A NUL-terminated C string field as text.
pub fn c_str(chars: &[std::ffi::c_char]) -> String {
    let bytes: Vec<u8> = chars
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A NUL-terminated UTF-16 string field (`String128`) as text.
pub fn u16_str(chars: &[u16]) -> String {
    let len = chars.iter().position(|&c| c == 0).unwrap_or(chars.len());
    String::from_utf16_lossy(&chars[..len])
}

/// One audio bus as `getBusInfo` describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Bus {
    pub name: String,
    pub channels: i32,
    pub bus_type: i32,
}

/// A plugin instance: the component, its processor and the host context it was given.
pub struct Instance {
    pub component: ComPtr<IComponent>,
    pub processor: ComPtr<IAudioProcessor>,
    _host: Option<ComWrapper<HostApp>>,
}

impl Instance {
    pub fn new(module: &Module, cid: &[u8; 16], host: Option<&'static str>) -> Self {
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

    pub fn buses(&self, dir: i32) -> Vec<Bus> {
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

    pub fn set_state(&self, state: &Value) {
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
    pub fn activate(&self, channels: usize, n_out: usize, active: &[bool]) -> usize {
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
pub enum Aux {
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
pub fn run_vst3(
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

/// `PClassInfo2` of every class of the factory.
pub fn class_infos(module: &Module) -> Vec<PClassInfo2> {
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
