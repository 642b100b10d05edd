//! [`Component`]: one nice-plug VST3 wrapper behind the bus layer (bus states, scratch buffers
//! for inactive or missing source buses, the Studio One bus type).

use super::*;

/// One plugin instance: nice-plug's wrapper plus the bus bookkeeping described in the module
/// documentation.
pub struct Component<P: Vst3Plugin> {
    pub(super) wrapper: Wrapper<P>,
    /// `activateBus` state of each audio output bus (index as in VST3: main first).
    pub(super) active: [AtomicBool; MAX_OUTPUT_BUSES],
    /// Channel count of each output bus in the current layout.
    pub(super) channels: [AtomicU32; MAX_OUTPUT_BUSES],
    /// Aux output buses of `P` and their largest channel count.
    pub(super) aux_buses: usize,
    pub(super) aux_max_channels: usize,
    /// Report the aux outputs as `kMain` (Studio One).
    pub(super) aux_as_main: AtomicBool,
    pub(super) scratch: AtomicRefCell<Scratch>,
    /// Values set on the controller while processing, until the processor takes them over.
    pub(super) controller: controller::ControllerValues,
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
        let wrapper = Wrapper::new();
        let controller = controller::ControllerValues::new(parameter_ids(&wrapper));
        let this = Self {
            wrapper,
            active: std::array::from_fn(|_| AtomicBool::new(true)),
            channels: std::array::from_fn(|_| AtomicU32::new(0)),
            aux_buses,
            aux_max_channels,
            aux_as_main: AtomicBool::new(false),
            scratch: AtomicRefCell::new(Scratch::empty()),
            controller,
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
        self.controller.clear();
        unsafe { IComponentTrait::setState(&self.wrapper, state) }
    }

    unsafe fn getState(&self, state: *mut IBStream) -> tresult {
        unsafe { IComponentTrait::getState(&self.wrapper, state) }
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
        if state != 0 {
            // Before the wrapper starts dropping controller values.
            self.controller.set_processing(true);
            return unsafe { self.wrapper.setProcessing(state) };
        }
        let result = unsafe { self.wrapper.setProcessing(state) };
        self.controller.set_processing(false);
        // Values the host set on the controller and never sent to the processor.
        self.controller.take_pending(|id, value| {
            // SAFETY: a parameter id of the wrapper; processing stopped, so it applies it.
            unsafe { self.wrapper.setParamNormalized(id, value) };
        });
        result
    }

    unsafe fn process(&self, data: *mut ProcessData) -> tresult {
        let forward = || {
            if data.is_null() {
                return unsafe { self.wrapper.process(data) };
            }
            // SAFETY: the host's ProcessData.
            let result = match unsafe { self.process_with_scratch(&*data) } {
                Some(result) => result,
                None => unsafe { self.wrapper.process(data) },
            };
            // SAFETY: as above; the wrapper has applied the block's parameter changes.
            unsafe { self.controller.delivered_in(&*data) };
            result
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

/// The id and step count of every parameter the wrapper reports.
fn parameter_ids<P: Vst3Plugin>(wrapper: &Wrapper<P>) -> Vec<(ParamID, int32)> {
    // SAFETY: indices below the wrapper's count; `info` is a valid out pointer.
    let count = unsafe { wrapper.getParameterCount() };
    (0..count)
        .filter_map(|index| {
            let mut info: ParameterInfo = unsafe { std::mem::zeroed() };
            (unsafe { wrapper.getParameterInfo(index, &mut info) } == kResultOk)
                .then_some((info.id, info.stepCount))
        })
        .collect()
}
