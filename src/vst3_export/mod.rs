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
//! - `setParamNormalized` while processing holds the value for `getParamNormalized` until the
//!   processor takes it over (nice-plug drops it; see `controller.rs`);
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

mod component;
mod controller;
mod factory;
mod forward;

pub use component::Component;
pub use factory::*;

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
    INoteExpressionControllerTrait, IParamValueQueueTrait, IParameterChangesTrait,
    IProcessContextRequirements, IProcessContextRequirementsTrait, IUnitInfo, IUnitInfoTrait,
    IoMode, MediaType, NoteExpressionTypeID, NoteExpressionTypeInfo, NoteExpressionValue, ParamID,
    ParamValue, ParameterInfo, ProcessData, ProcessSetup, ProgramListID, ProgramListInfo,
    RoutingInfo, SpeakerArrangement, String128, TChar, UnitID, UnitInfo,
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

#[cfg(test)]
mod tests;
