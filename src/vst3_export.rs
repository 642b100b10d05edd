//! The VST3 export: the project's own factory and a thin COM layer in front of nice-plug's
//! VST3 [`Wrapper`], so that a multi-output VST3 keeps separating whatever the host does with
//! its source buses.
//!
//! # Why a layer (nice-plug 0.4.2)
//!
//! nice-plug's `IComponent::activateBus` accepts any state and forgets it, and its `process()`
//! builds the plugin's output slices straight from the host's `AudioBusBuffers`: an aux output
//! with a null `channelBuffers32` leaves empty slices, and any empty output slice makes it skip
//! the plugin's `process()` for the whole block (the host hears the dry input). Null entries in
//! a non-null channel array would be turned into slices over null pointers. The VST3 bus
//! documentation lets the host pass such buffers for inactive buses (Steinberg, "VST 3
//! Interfaces: VST busses" and `IComponent::activateBus`), and the number of buses of a VST3
//! component is fixed, so smaller layouts do not help.
//!
//! [`Component`] owns one nice-plug [`Wrapper`] and forwards every interface the wrapper
//! implements (`IComponent`, `IEditController`, `IAudioProcessor`, `IMidiMapping`,
//! `INoteExpressionController`, `IProcessContextRequirements`, `IUnitInfo`, `IInfoListener`)
//! unchanged, except:
//!
//! - `activateBus` records the state of every audio output bus (initially active, as the
//!   wrapper flags every bus `kDefaultActive`);
//! - `setupProcessing` preallocates scratch channels for every aux output bus: the largest aux
//!   channel count of the plugin's layouts x `maxSamplesPerBlock` samples;
//! - `setActive(true)` and `setBusArrangements` read back the channel count of every output
//!   bus of the chosen layout;
//! - `process` hands the wrapper its own copy of the output `AudioBusBuffers` array, always
//!   with every output bus of the layout, where each aux output that is inactive, has another
//!   channel count than the layout, a null channel array or a null channel pointer points at
//!   the scratch channels. So separation always runs, the main output carries the selected
//!   sources, and every active bus with valid buffers gets its source. No allocation, no lock:
//!   the scratch sits in an `AtomicRefCell` whose borrow in `process` is one atomic operation
//!   (when it fails, or for a block longer than `maxSamplesPerBlock`, the block goes to the
//!   wrapper as the host gave it);
//! - `getBusInfo` reports the source buses as `kMain` instead of `kAux` when the host's
//!   `IHostApplication::getName` contains "Studio One": Studio One greys out `kAux` outputs
//!   (iPlug2 issue 1268, "VST3 Multi outs are greyed out in Studio One", and its fix in pull
//!   request 1269, which does the same for that host only). The SDK allows several `kMain`
//!   buses as long as they come before any `kAux` bus ("VST 3 Interfaces: VST busses"); other
//!   hosts keep `kAux`, which they route as plugin outputs.
//!
//! # Classes
//!
//! The factory exports two classes (ids and state unchanged from the earlier main-only VST3,
//! so projects load):
//!
//! | name | class id | plugin | buses |
//! |------|----------|--------|-------|
//! | "NMF Separator" | `NmfSeparatorVst3` | [`NmfSeparatorVst3`] | main in/out (stereo or mono) |
//! | "NMF Separator Multi-Out" | `NmfSeparatorMult` | [`NmfSeparatorClap`] | main in/out + "Source 1".."Source 4" (all stereo or all mono) |
//!
//! The multi-out class is the CLAP's plugin type (`Separator<true>`), whose `Plugin::NAME`
//! stays "NMF Separator" for the CLAP; the factory gives its VST3 class the longer name.

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use atomic_refcell::AtomicRefCell;
use nice_plug::prelude::{Plugin, Vst3Plugin};
use nice_plug::wrapper::vst3::{PluginInfo, Wrapper};
use vst3::Steinberg::Vst::ChannelContext::{IInfoListener, IInfoListenerTrait};
use vst3::Steinberg::Vst::{
    AudioBusBuffers, AudioBusBuffers__type0, BusDirection, BusInfo, CString, CtrlNumber,
    IAttributeList, IAudioProcessor, IAudioProcessorTrait, IComponent, IComponentHandler,
    IComponentTrait, IEditController, IEditControllerTrait, IHostApplication,
    IHostApplicationTrait, IMidiMapping, IMidiMappingTrait, INoteExpressionController,
    INoteExpressionControllerTrait, IProcessContextRequirements, IProcessContextRequirementsTrait,
    IUnitInfo, IUnitInfoTrait, IoMode, MediaType, NoteExpressionTypeID, NoteExpressionTypeInfo,
    NoteExpressionValue, ParamID, ParamValue, ParameterInfo, ProcessData, ProcessSetup,
    ProgramListID, ProgramListInfo, RoutingInfo, SpeakerArrangement, String128, TChar, UnitID,
    UnitInfo,
};
use vst3::Steinberg::{
    int16, int32, kInvalidArgument, kResultOk, tresult, uint32, FIDString, FUnknown, IBStream,
    IPlugView, IPluginBaseTrait, IPluginFactory, IPluginFactory2, IPluginFactory2Trait,
    IPluginFactory3, IPluginFactory3Trait, IPluginFactoryTrait, PClassInfo, PClassInfo2,
    PClassInfoW, PFactoryInfo, TBool, TUID,
};
use vst3::{Class, ComRef, ComWrapper};

use crate::dsp::engine::MAX_SOURCES;
use crate::plugin::{NmfSeparatorClap, NmfSeparatorVst3};

/// Output buses of the largest class: main + one per source.
const MAX_OUTPUT_BUSES: usize = 1 + MAX_SOURCES;

#[allow(clippy::unnecessary_cast)]
const K_AUDIO: MediaType = vst3::Steinberg::Vst::MediaTypes_::kAudio as MediaType;
#[allow(clippy::unnecessary_cast)]
const K_OUTPUT: BusDirection = vst3::Steinberg::Vst::BusDirections_::kOutput as BusDirection;
#[allow(clippy::unnecessary_cast)]
const K_MAIN: i32 = vst3::Steinberg::Vst::BusTypes_::kMain as i32;

/// The VST3 class name of the multi-output class.
pub const MULTI_OUT_NAME: &str = "NMF Separator Multi-Out";

/// Number of aux output buses of `P`'s layouts (the same in all of them: VST3 bus counts are
/// fixed) and the largest aux channel count.
fn aux_shape<P: Plugin>() -> (usize, usize) {
    let layouts = P::AUDIO_IO_LAYOUTS;
    let buses = layouts.first().map_or(0, |l| l.aux_output_ports.len());
    let channels = layouts
        .iter()
        .flat_map(|l| l.aux_output_ports.iter())
        .map(|c| c.get() as usize)
        .max()
        .unwrap_or(0);
    (buses, channels)
}

/// Scratch channels for the aux outputs and the output bus array handed to the wrapper. Only
/// touched in `setupProcessing` (rebuilt) and `process` (used), which the VST3 call sequence
/// never runs at the same time; the `AtomicRefCell` around it checks that without blocking.
struct Scratch {
    /// `aux buses x max channels x max_block` samples (owns what `channels` points at).
    #[allow(dead_code)]
    samples: Vec<f32>,
    /// One pointer per aux channel into `samples` (bus-major).
    channels: Vec<*mut f32>,
    /// The output buses as given to the wrapper (main first).
    buses: Vec<AudioBusBuffers>,
    max_channels: usize,
    max_block: usize,
}

// SAFETY: the raw pointers point into `samples`, owned by the same struct, and are only
// dereferenced (by the wrapper) inside `process` while the `AtomicRefCell` is borrowed.
unsafe impl Send for Scratch {}
unsafe impl Sync for Scratch {}

impl Scratch {
    fn empty() -> Self {
        Self {
            samples: Vec::new(),
            channels: Vec::new(),
            buses: Vec::new(),
            max_channels: 0,
            max_block: 0,
        }
    }

    fn new(aux_buses: usize, max_channels: usize, max_block: usize) -> Self {
        let mut samples = vec![0.0f32; aux_buses * max_channels * max_block];
        let base = samples.as_mut_ptr();
        let channels = (0..aux_buses * max_channels)
            // SAFETY: every offset is inside `samples` (or one past its end when max_block is 0).
            .map(|c| unsafe { base.add(c * max_block) })
            .collect();
        let buses = (0..1 + aux_buses).map(|_| empty_bus()).collect();
        Self {
            samples,
            channels,
            buses,
            max_channels,
            max_block,
        }
    }
}

fn empty_bus() -> AudioBusBuffers {
    AudioBusBuffers {
        numChannels: 0,
        silenceFlags: 0,
        __field0: AudioBusBuffers__type0 {
            channelBuffers32: std::ptr::null_mut(),
        },
    }
}

/// True when `bus` has exactly `channels` non-null channel pointers.
///
/// # Safety
/// `bus.channelBuffers32`, when not null, points at `bus.numChannels` pointers.
unsafe fn has_buffers(bus: &AudioBusBuffers, channels: u32) -> bool {
    let ptrs = unsafe { bus.__field0.channelBuffers32 };
    if ptrs.is_null() || bus.numChannels < 0 || bus.numChannels as u32 != channels {
        return false;
    }
    (0..channels as usize).all(|c| unsafe { !(*ptrs.add(c)).is_null() })
}

/// One plugin instance: nice-plug's wrapper plus the bus bookkeeping described in the module
/// documentation.
pub struct Component<P: Vst3Plugin> {
    wrapper: Wrapper<P>,
    /// `activateBus` state of each audio output bus (index as in VST3: main first).
    active: [AtomicBool; MAX_OUTPUT_BUSES],
    /// Channel count of each output bus in the current layout.
    channels: [AtomicU32; MAX_OUTPUT_BUSES],
    /// Aux output buses of `P` and their largest channel count.
    aux_buses: usize,
    aux_max_channels: usize,
    /// Report the aux outputs as `kMain` (Studio One).
    aux_as_main: AtomicBool,
    scratch: AtomicRefCell<Scratch>,
}

impl<P: Vst3Plugin> Class for Component<P> {
    type Interfaces = (
        IComponent,
        IEditController,
        IAudioProcessor,
        IMidiMapping,
        INoteExpressionController,
        IProcessContextRequirements,
        IUnitInfo,
        IInfoListener,
    );
}

impl<P: Vst3Plugin> Default for Component<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Vst3Plugin> Component<P> {
    pub fn new() -> Self {
        let (aux_buses, aux_max_channels) = aux_shape::<P>();
        assert!(aux_buses < MAX_OUTPUT_BUSES, "too many output buses");
        let this = Self {
            wrapper: Wrapper::new(),
            active: std::array::from_fn(|_| AtomicBool::new(true)),
            channels: std::array::from_fn(|_| AtomicU32::new(0)),
            aux_buses,
            aux_max_channels,
            aux_as_main: AtomicBool::new(false),
            scratch: AtomicRefCell::new(Scratch::empty()),
        };
        this.read_channel_counts();
        this
    }

    /// Reads the channel count of every output bus of the wrapper's current layout.
    fn read_channel_counts(&self) {
        for (bus, count) in self.channels.iter().enumerate().take(1 + self.aux_buses) {
            let mut arr: SpeakerArrangement = 0;
            // SAFETY: `arr` is a valid out pointer.
            let ok = unsafe {
                self.wrapper
                    .getBusArrangement(K_OUTPUT, bus as int32, &mut arr)
            };
            count.store(
                if ok == kResultOk { arr.count_ones() } else { 0 },
                Ordering::Relaxed,
            );
        }
    }

    /// Whether the host's name asks for `kMain` source buses.
    fn host_wants_main_buses(context: *mut FUnknown) -> bool {
        // SAFETY: the host passes a valid FUnknown or null.
        let Some(context) = (unsafe { ComRef::from_raw(context) }) else {
            return false;
        };
        let Some(app) = context.cast::<IHostApplication>() else {
            return false;
        };
        let mut name: String128 = [0; 128];
        // SAFETY: `name` is a valid String128.
        if unsafe { app.getName(&mut name) } != kResultOk {
            return false;
        }
        let len = name.iter().position(|&c| c == 0).unwrap_or(name.len());
        let name = String::from_utf16_lossy(&name[..len]);
        name.to_lowercase().contains("studio one")
    }

    /// The block with every aux output bus backed by host or scratch buffers, then the
    /// wrapper's `process`. Returns `None` when the block must go to the wrapper unchanged.
    ///
    /// # Safety
    /// `data` is the host's valid `ProcessData`.
    unsafe fn process_with_scratch(&self, data: &ProcessData) -> Option<tresult> {
        if self.aux_buses == 0
            || data.numSamples <= 0
            || data.numOutputs <= 0
            || data.outputs.is_null()
        {
            // No aux bus to fix, or a parameter flush: the wrapper handles these.
            return None;
        }
        let mut scratch = self.scratch.try_borrow_mut().ok()?;
        let n = data.numSamples as usize;
        if n > scratch.max_block || scratch.buses.len() != 1 + self.aux_buses {
            return None;
        }
        let max_channels = scratch.max_channels;
        let host_outputs = data.numOutputs as usize;
        let Scratch {
            channels, buses, ..
        } = &mut *scratch;
        for (bus, slot) in buses.iter_mut().enumerate() {
            let host = if bus < host_outputs {
                // SAFETY: the host gives `numOutputs` buses.
                unsafe { *data.outputs.add(bus) }
            } else {
                empty_bus()
            };
            if bus == 0 {
                *slot = host;
                continue;
            }
            let count = self.channels[bus].load(Ordering::Relaxed);
            let active = self.active[bus].load(Ordering::Relaxed);
            // SAFETY: a host bus's channel array has `numChannels` entries.
            if active && unsafe { has_buffers(&host, count) } {
                *slot = host;
            } else {
                let count = (count as usize).min(max_channels);
                let first = (bus - 1) * max_channels;
                *slot = AudioBusBuffers {
                    numChannels: count as int32,
                    silenceFlags: 0,
                    __field0: AudioBusBuffers__type0 {
                        channelBuffers32: channels[first..].as_mut_ptr(),
                    },
                };
            }
        }
        let mut forwarded = *data;
        forwarded.numOutputs = buses.len() as int32;
        forwarded.outputs = buses.as_mut_ptr();
        // SAFETY: every output bus now has valid channel pointers for `n` samples.
        Some(unsafe { self.wrapper.process(&mut forwarded) })
    }
}

impl<P: Vst3Plugin> IPluginBaseTrait for Component<P> {
    unsafe fn initialize(&self, context: *mut FUnknown) -> tresult {
        if Self::host_wants_main_buses(context) {
            self.aux_as_main.store(true, Ordering::Relaxed);
        }
        unsafe { self.wrapper.initialize(context) }
    }

    unsafe fn terminate(&self) -> tresult {
        unsafe { self.wrapper.terminate() }
    }
}

impl<P: Vst3Plugin> IComponentTrait for Component<P> {
    unsafe fn getControllerClassId(&self, class_id: *mut TUID) -> tresult {
        unsafe { self.wrapper.getControllerClassId(class_id) }
    }

    unsafe fn setIoMode(&self, mode: IoMode) -> tresult {
        unsafe { self.wrapper.setIoMode(mode) }
    }

    unsafe fn getBusCount(&self, type_: MediaType, dir: BusDirection) -> int32 {
        unsafe { self.wrapper.getBusCount(type_, dir) }
    }

    unsafe fn getBusInfo(
        &self,
        type_: MediaType,
        dir: BusDirection,
        index: int32,
        bus: *mut BusInfo,
    ) -> tresult {
        let result = unsafe { self.wrapper.getBusInfo(type_, dir, index, bus) };
        if result == kResultOk
            && type_ == K_AUDIO
            && dir == K_OUTPUT
            && self.aux_as_main.load(Ordering::Relaxed)
        {
            // SAFETY: the wrapper checked and filled `bus`.
            unsafe { (*bus).busType = K_MAIN };
        }
        result
    }

    unsafe fn getRoutingInfo(
        &self,
        in_info: *mut RoutingInfo,
        out_info: *mut RoutingInfo,
    ) -> tresult {
        unsafe { self.wrapper.getRoutingInfo(in_info, out_info) }
    }

    unsafe fn activateBus(
        &self,
        type_: MediaType,
        dir: BusDirection,
        index: int32,
        state: TBool,
    ) -> tresult {
        let result = unsafe { self.wrapper.activateBus(type_, dir, index, state) };
        if result == kResultOk && type_ == K_AUDIO && dir == K_OUTPUT {
            if let Some(active) = usize::try_from(index).ok().and_then(|i| self.active.get(i)) {
                active.store(state != 0, Ordering::Relaxed);
            }
        }
        result
    }

    unsafe fn setActive(&self, state: TBool) -> tresult {
        if state != 0 {
            self.read_channel_counts();
        }
        unsafe { IComponentTrait::setActive(&self.wrapper, state) }
    }

    unsafe fn setState(&self, state: *mut IBStream) -> tresult {
        unsafe { IComponentTrait::setState(&self.wrapper, state) }
    }

    unsafe fn getState(&self, state: *mut IBStream) -> tresult {
        unsafe { IComponentTrait::getState(&self.wrapper, state) }
    }
}

impl<P: Vst3Plugin> IEditControllerTrait for Component<P> {
    unsafe fn setComponentState(&self, state: *mut IBStream) -> tresult {
        unsafe { self.wrapper.setComponentState(state) }
    }

    unsafe fn setState(&self, state: *mut IBStream) -> tresult {
        unsafe { IEditControllerTrait::setState(&self.wrapper, state) }
    }

    unsafe fn getState(&self, state: *mut IBStream) -> tresult {
        unsafe { IEditControllerTrait::getState(&self.wrapper, state) }
    }

    unsafe fn getParameterCount(&self) -> int32 {
        unsafe { self.wrapper.getParameterCount() }
    }

    unsafe fn getParameterInfo(&self, param_index: int32, info: *mut ParameterInfo) -> tresult {
        unsafe { self.wrapper.getParameterInfo(param_index, info) }
    }

    unsafe fn getParamStringByValue(
        &self,
        id: ParamID,
        value_normalized: ParamValue,
        string: *mut String128,
    ) -> tresult {
        unsafe {
            self.wrapper
                .getParamStringByValue(id, value_normalized, string)
        }
    }

    unsafe fn getParamValueByString(
        &self,
        id: ParamID,
        string: *mut TChar,
        value_normalized: *mut ParamValue,
    ) -> tresult {
        unsafe {
            self.wrapper
                .getParamValueByString(id, string, value_normalized)
        }
    }

    unsafe fn normalizedParamToPlain(
        &self,
        id: ParamID,
        value_normalized: ParamValue,
    ) -> ParamValue {
        unsafe { self.wrapper.normalizedParamToPlain(id, value_normalized) }
    }

    unsafe fn plainParamToNormalized(&self, id: ParamID, plain_value: ParamValue) -> ParamValue {
        unsafe { self.wrapper.plainParamToNormalized(id, plain_value) }
    }

    unsafe fn getParamNormalized(&self, id: ParamID) -> ParamValue {
        unsafe { self.wrapper.getParamNormalized(id) }
    }

    unsafe fn setParamNormalized(&self, id: ParamID, value: ParamValue) -> tresult {
        unsafe { self.wrapper.setParamNormalized(id, value) }
    }

    unsafe fn setComponentHandler(&self, handler: *mut IComponentHandler) -> tresult {
        unsafe { self.wrapper.setComponentHandler(handler) }
    }

    unsafe fn createView(&self, name: FIDString) -> *mut IPlugView {
        unsafe { self.wrapper.createView(name) }
    }
}

impl<P: Vst3Plugin> IAudioProcessorTrait for Component<P> {
    unsafe fn setBusArrangements(
        &self,
        inputs: *mut SpeakerArrangement,
        num_ins: int32,
        outputs: *mut SpeakerArrangement,
        num_outs: int32,
    ) -> tresult {
        let result = unsafe {
            self.wrapper
                .setBusArrangements(inputs, num_ins, outputs, num_outs)
        };
        self.read_channel_counts();
        result
    }

    unsafe fn getBusArrangement(
        &self,
        dir: BusDirection,
        index: int32,
        arr: *mut SpeakerArrangement,
    ) -> tresult {
        unsafe { self.wrapper.getBusArrangement(dir, index, arr) }
    }

    unsafe fn canProcessSampleSize(&self, symbolic_sample_size: int32) -> tresult {
        unsafe { self.wrapper.canProcessSampleSize(symbolic_sample_size) }
    }

    unsafe fn getLatencySamples(&self) -> uint32 {
        unsafe { self.wrapper.getLatencySamples() }
    }

    unsafe fn setupProcessing(&self, setup: *mut ProcessSetup) -> tresult {
        if !setup.is_null() && self.aux_buses > 0 {
            // SAFETY: checked for null; the host's setup.
            let max_block = unsafe { (*setup).maxSamplesPerBlock }.max(0) as usize;
            match self.scratch.try_borrow_mut() {
                Ok(mut scratch) => {
                    *scratch = Scratch::new(self.aux_buses, self.aux_max_channels, max_block)
                }
                // process() is running: the host broke the call sequence.
                Err(_) => return vst3::Steinberg::kResultFalse,
            }
        }
        unsafe { self.wrapper.setupProcessing(setup) }
    }

    unsafe fn setProcessing(&self, state: TBool) -> tresult {
        unsafe { self.wrapper.setProcessing(state) }
    }

    unsafe fn process(&self, data: *mut ProcessData) -> tresult {
        let forward = || {
            if !data.is_null() {
                // SAFETY: the host's ProcessData.
                if let Some(result) = unsafe { self.process_with_scratch(&*data) } {
                    return result;
                }
            }
            unsafe { self.wrapper.process(data) }
        };
        // The same checker as nice-plug's own process(), around this layer's code too.
        #[cfg(all(debug_assertions, feature = "assert_process_allocs"))]
        return nice_assert_no_alloc::assert_no_alloc(forward);
        #[cfg(not(all(debug_assertions, feature = "assert_process_allocs")))]
        return forward();
    }

    unsafe fn getTailSamples(&self) -> uint32 {
        unsafe { self.wrapper.getTailSamples() }
    }
}

impl<P: Vst3Plugin> IMidiMappingTrait for Component<P> {
    unsafe fn getMidiControllerAssignment(
        &self,
        bus_index: int32,
        channel: int16,
        midi_controller_number: CtrlNumber,
        id: *mut ParamID,
    ) -> tresult {
        unsafe {
            self.wrapper
                .getMidiControllerAssignment(bus_index, channel, midi_controller_number, id)
        }
    }
}

impl<P: Vst3Plugin> INoteExpressionControllerTrait for Component<P> {
    unsafe fn getNoteExpressionCount(&self, bus_index: int32, channel: int16) -> int32 {
        unsafe { self.wrapper.getNoteExpressionCount(bus_index, channel) }
    }

    unsafe fn getNoteExpressionInfo(
        &self,
        bus_index: int32,
        channel: int16,
        note_expression_index: int32,
        info: *mut NoteExpressionTypeInfo,
    ) -> tresult {
        unsafe {
            self.wrapper
                .getNoteExpressionInfo(bus_index, channel, note_expression_index, info)
        }
    }

    unsafe fn getNoteExpressionStringByValue(
        &self,
        bus_index: int32,
        channel: int16,
        id: NoteExpressionTypeID,
        value_normalized: NoteExpressionValue,
        string: *mut String128,
    ) -> tresult {
        unsafe {
            self.wrapper.getNoteExpressionStringByValue(
                bus_index,
                channel,
                id,
                value_normalized,
                string,
            )
        }
    }

    unsafe fn getNoteExpressionValueByString(
        &self,
        bus_index: int32,
        channel: int16,
        id: NoteExpressionTypeID,
        string: *const TChar,
        value_normalized: *mut NoteExpressionValue,
    ) -> tresult {
        unsafe {
            self.wrapper.getNoteExpressionValueByString(
                bus_index,
                channel,
                id,
                string,
                value_normalized,
            )
        }
    }
}

impl<P: Vst3Plugin> IProcessContextRequirementsTrait for Component<P> {
    unsafe fn getProcessContextRequirements(&self) -> uint32 {
        unsafe { self.wrapper.getProcessContextRequirements() }
    }
}

impl<P: Vst3Plugin> IUnitInfoTrait for Component<P> {
    unsafe fn getUnitCount(&self) -> int32 {
        unsafe { self.wrapper.getUnitCount() }
    }

    unsafe fn getUnitInfo(&self, unit_index: int32, info: *mut UnitInfo) -> tresult {
        unsafe { self.wrapper.getUnitInfo(unit_index, info) }
    }

    unsafe fn getProgramListCount(&self) -> int32 {
        unsafe { self.wrapper.getProgramListCount() }
    }

    unsafe fn getProgramListInfo(&self, list_index: int32, info: *mut ProgramListInfo) -> tresult {
        unsafe { self.wrapper.getProgramListInfo(list_index, info) }
    }

    unsafe fn getProgramName(
        &self,
        list_id: ProgramListID,
        program_index: int32,
        name: *mut String128,
    ) -> tresult {
        unsafe { self.wrapper.getProgramName(list_id, program_index, name) }
    }

    unsafe fn getProgramInfo(
        &self,
        list_id: ProgramListID,
        program_index: int32,
        attribute_id: CString,
        attribute_value: *mut String128,
    ) -> tresult {
        unsafe {
            self.wrapper
                .getProgramInfo(list_id, program_index, attribute_id, attribute_value)
        }
    }

    unsafe fn hasProgramPitchNames(&self, list_id: ProgramListID, program_index: int32) -> tresult {
        unsafe { self.wrapper.hasProgramPitchNames(list_id, program_index) }
    }

    unsafe fn getProgramPitchName(
        &self,
        list_id: ProgramListID,
        program_index: int32,
        midi_pitch: int16,
        name: *mut String128,
    ) -> tresult {
        unsafe {
            self.wrapper
                .getProgramPitchName(list_id, program_index, midi_pitch, name)
        }
    }

    unsafe fn getSelectedUnit(&self) -> UnitID {
        unsafe { self.wrapper.getSelectedUnit() }
    }

    unsafe fn selectUnit(&self, id: UnitID) -> tresult {
        unsafe { self.wrapper.selectUnit(id) }
    }

    unsafe fn getUnitByBus(
        &self,
        type_: MediaType,
        dir: BusDirection,
        bus_index: int32,
        channel: int32,
        unit_id: *mut UnitID,
    ) -> tresult {
        unsafe {
            self.wrapper
                .getUnitByBus(type_, dir, bus_index, channel, unit_id)
        }
    }

    unsafe fn setUnitProgramData(
        &self,
        list_or_unit_id: int32,
        program_index: int32,
        data: *mut IBStream,
    ) -> tresult {
        unsafe {
            self.wrapper
                .setUnitProgramData(list_or_unit_id, program_index, data)
        }
    }
}

impl<P: Vst3Plugin> IInfoListenerTrait for Component<P> {
    unsafe fn setChannelContextInfos(&self, list: *mut IAttributeList) -> tresult {
        unsafe { self.wrapper.setChannelContextInfos(list) }
    }
}

// ------------------------------------------------------------------------------------------
// The factory

/// The plugin factory: the two classes of the table in the module documentation.
pub struct Factory {
    infos: [PluginInfo; 2],
}

impl Class for Factory {
    type Interfaces = (IPluginFactory, IPluginFactory2, IPluginFactory3);
}

impl Default for Factory {
    fn default() -> Self {
        Self::new()
    }
}

impl Factory {
    pub fn new() -> Self {
        let main = PluginInfo::for_plugin::<NmfSeparatorVst3>();
        let mut multi = PluginInfo::for_plugin::<NmfSeparatorClap>();
        multi.name = MULTI_OUT_NAME;
        Self {
            infos: [main, multi],
        }
    }

    fn info(&self, index: int32) -> Option<&PluginInfo> {
        usize::try_from(index).ok().and_then(|i| self.infos.get(i))
    }

    /// A new instance of class `index` as the interface `iid`.
    unsafe fn create(index: usize, iid: FIDString, obj: *mut *mut c_void) -> tresult {
        fn query<P: Vst3Plugin>(iid: FIDString, obj: *mut *mut c_void) -> tresult {
            let component = ComWrapper::new(Component::<P>::new());
            let unknown = component.as_com_ref::<FUnknown>().unwrap();
            let ptr = unknown.as_ptr();
            // SAFETY: `ptr` is our live object; `iid` and `obj` are the host's.
            unsafe { ((*(*ptr).vtbl).queryInterface)(ptr, iid as *const TUID, obj) }
        }
        match index {
            0 => query::<NmfSeparatorVst3>(iid, obj),
            _ => query::<NmfSeparatorClap>(iid, obj),
        }
    }
}

impl IPluginFactoryTrait for Factory {
    unsafe fn getFactoryInfo(&self, info: *mut PFactoryInfo) -> tresult {
        if info.is_null() {
            return kInvalidArgument;
        }
        unsafe { *info = self.infos[0].create_factory_info() };
        kResultOk
    }

    unsafe fn countClasses(&self) -> int32 {
        self.infos.len() as int32
    }

    unsafe fn getClassInfo(&self, index: int32, info: *mut PClassInfo) -> tresult {
        match self.info(index) {
            Some(i) if !info.is_null() => {
                unsafe { *info = i.create_class_info() };
                kResultOk
            }
            _ => kInvalidArgument,
        }
    }

    unsafe fn createInstance(
        &self,
        cid: FIDString,
        iid: FIDString,
        obj: *mut *mut c_void,
    ) -> tresult {
        if cid.is_null() || iid.is_null() || obj.is_null() {
            return kInvalidArgument;
        }
        // SAFETY: a class id is 16 bytes.
        let cid = unsafe { &*(cid as *const [u8; 16]) };
        match self.infos.iter().position(|i| i.cid == cid) {
            Some(index) => unsafe { Self::create(index, iid, obj) },
            None => kInvalidArgument,
        }
    }
}

impl IPluginFactory2Trait for Factory {
    unsafe fn getClassInfo2(&self, index: int32, info: *mut PClassInfo2) -> tresult {
        match self.info(index) {
            Some(i) if !info.is_null() => {
                unsafe { *info = i.create_class_info_2() };
                kResultOk
            }
            _ => kInvalidArgument,
        }
    }
}

impl IPluginFactory3Trait for Factory {
    unsafe fn getClassInfoUnicode(&self, index: int32, info: *mut PClassInfoW) -> tresult {
        match self.info(index) {
            Some(i) if !info.is_null() => {
                unsafe { *info = i.create_class_info_unicode() };
                kResultOk
            }
            _ => kInvalidArgument,
        }
    }

    unsafe fn setHostContext(&self, _context: *mut FUnknown) -> tresult {
        kResultOk
    }
}

/// The VST3 module entry point: the plugin factory (one per call; the host releases it).
#[unsafe(no_mangle)]
pub extern "system" fn GetPluginFactory() -> *mut c_void {
    ComWrapper::new(Factory::new())
        .to_com_ptr::<IPluginFactory>()
        .unwrap()
        .into_raw() as *mut c_void
}

fn setup_loggers() {
    nice_plug::wrapper::setup_logger::<NmfSeparatorVst3>();
    nice_plug::wrapper::setup_logger::<NmfSeparatorClap>();
}

/// Linux (and other Unix) module entry, called once after loading the library.
#[unsafe(no_mangle)]
#[cfg(all(target_family = "unix", not(target_os = "macos")))]
pub extern "C" fn ModuleEntry(_lib_handle: *mut c_void) -> bool {
    setup_loggers();
    true
}

/// Linux (and other Unix) module exit, called once before unloading the library.
#[unsafe(no_mangle)]
#[cfg(all(target_family = "unix", not(target_os = "macos")))]
pub extern "C" fn ModuleExit() -> bool {
    true
}

/// macOS bundle entry.
#[unsafe(no_mangle)]
#[cfg(target_os = "macos")]
pub extern "C" fn bundleEntry(_bundle: *mut c_void) -> bool {
    setup_loggers();
    true
}

/// macOS bundle exit.
#[unsafe(no_mangle)]
#[cfg(target_os = "macos")]
pub extern "C" fn bundleExit() -> bool {
    true
}

/// Windows DLL entry.
#[unsafe(no_mangle)]
#[cfg(target_os = "windows")]
pub extern "system" fn InitDll() -> bool {
    setup_loggers();
    true
}

/// Windows DLL exit.
#[unsafe(no_mangle)]
#[cfg(target_os = "windows")]
pub extern "system" fn ExitDll() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_of_the_two_classes() {
        assert_eq!(aux_shape::<NmfSeparatorVst3>(), (0, 0));
        assert_eq!(aux_shape::<NmfSeparatorClap>(), (MAX_SOURCES, 2));
    }

    #[test]
    fn scratch_channels_are_disjoint_and_sized() {
        let mut s = Scratch::new(4, 2, 64);
        assert_eq!(s.samples.len(), 4 * 2 * 64);
        assert_eq!(s.channels.len(), 8);
        assert_eq!(s.buses.len(), 5);
        let base = s.samples.as_mut_ptr();
        for (c, p) in s.channels.iter().enumerate() {
            assert_eq!(*p, base.wrapping_add(c * 64));
        }
    }

    #[test]
    fn buffers_are_valid_only_with_the_layout_channel_count_and_no_null() {
        let mut a = [0.0f32; 4];
        let mut b = [0.0f32; 4];
        let mut ptrs = [a.as_mut_ptr(), b.as_mut_ptr()];
        let mut bus = AudioBusBuffers {
            numChannels: 2,
            silenceFlags: 0,
            __field0: AudioBusBuffers__type0 {
                channelBuffers32: ptrs.as_mut_ptr(),
            },
        };
        unsafe {
            assert!(has_buffers(&bus, 2));
            assert!(!has_buffers(&bus, 1));
            *bus.__field0.channelBuffers32.add(1) = std::ptr::null_mut();
            assert!(!has_buffers(&bus, 2));
            bus.__field0.channelBuffers32 = std::ptr::null_mut();
            assert!(!has_buffers(&bus, 2));
            bus.numChannels = 0;
            assert!(!has_buffers(&bus, 2));
        }
    }
}
