use super::*;
use vst3::ComPtr;
use vst3::Steinberg::Vst::{IParamValueQueue, IParameterChanges};

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

// ------------------------------------------------------------------------------------------
// Parameters set on the controller while processing (the validator's bypass persistence test)

/// One parameter change at sample 0, as a host's `IParamValueQueue`.
struct Queue {
    id: ParamID,
    value: ParamValue,
}

impl Class for Queue {
    type Interfaces = (IParamValueQueue,);
}

impl IParamValueQueueTrait for Queue {
    unsafe fn getParameterId(&self) -> ParamID {
        self.id
    }

    unsafe fn getPointCount(&self) -> int32 {
        1
    }

    unsafe fn getPoint(&self, index: int32, offset: *mut int32, value: *mut ParamValue) -> tresult {
        if index != 0 || offset.is_null() || value.is_null() {
            return kInvalidArgument;
        }
        unsafe {
            *offset = 0;
            *value = self.value;
        }
        kResultOk
    }

    unsafe fn addPoint(&self, _offset: int32, _value: ParamValue, _index: *mut int32) -> tresult {
        vst3::Steinberg::kResultFalse
    }
}

/// A block's `inputParameterChanges` with at most one queue.
struct Changes {
    queue: Option<ComPtr<IParamValueQueue>>,
}

impl Class for Changes {
    type Interfaces = (IParameterChanges,);
}

impl IParameterChangesTrait for Changes {
    unsafe fn getParameterCount(&self) -> int32 {
        self.queue.is_some() as int32
    }

    unsafe fn getParameterData(&self, index: int32) -> *mut IParamValueQueue {
        match (&self.queue, index) {
            (Some(queue), 0) => queue.as_ptr(),
            _ => std::ptr::null_mut(),
        }
    }

    unsafe fn addParameterData(
        &self,
        _id: *const ParamID,
        _index: *mut int32,
    ) -> *mut IParamValueQueue {
        std::ptr::null_mut()
    }
}

const BLOCK: usize = 64;
const RATE: f64 = 48_000.0;

/// The id of the parameter flagged `kIsBypass`.
fn bypass_id<P: Vst3Plugin>(c: &Component<P>) -> ParamID {
    #[allow(clippy::unnecessary_cast)]
    let flag = vst3::Steinberg::Vst::ParameterInfo_::ParameterFlags_::kIsBypass as i32;
    let count = unsafe { c.getParameterCount() };
    (0..count)
        .find_map(|index| {
            let mut info: ParameterInfo = unsafe { std::mem::zeroed() };
            assert_eq!(unsafe { c.getParameterInfo(index, &mut info) }, kResultOk);
            (info.flags & flag != 0).then_some(info.id)
        })
        .expect("no kIsBypass parameter")
}

/// One `process` call: a stereo block of noise-free input through the main buses (the layer
/// backs the source buses, if any, with its scratch) or, with `audio` false, a parameter
/// flush without buffers as the validator sends it; `change` goes in `inputParameterChanges`.
fn process<P: Vst3Plugin>(c: &Component<P>, audio: bool, change: Option<(ParamID, f64)>) {
    let changes = ComWrapper::new(Changes {
        queue: change.map(|(id, value)| {
            ComWrapper::new(Queue { id, value })
                .to_com_ptr::<IParamValueQueue>()
                .unwrap()
        }),
    });
    let changes = changes.to_com_ptr::<IParameterChanges>().unwrap();
    let mut input = [[0.25f32; BLOCK]; 2];
    let mut output = [[0.0f32; BLOCK]; 2];
    let mut in_ptrs = [input[0].as_mut_ptr(), input[1].as_mut_ptr()];
    let mut out_ptrs = [output[0].as_mut_ptr(), output[1].as_mut_ptr()];
    let bus = |ptrs: &mut [*mut f32; 2]| AudioBusBuffers {
        numChannels: 2,
        silenceFlags: 0,
        __field0: AudioBusBuffers__type0 {
            channelBuffers32: ptrs.as_mut_ptr(),
        },
    };
    let mut inputs = bus(&mut in_ptrs);
    let mut outputs = bus(&mut out_ptrs);
    let mut data: ProcessData = unsafe { std::mem::zeroed() };
    #[allow(clippy::unnecessary_cast)]
    {
        data.processMode = vst3::Steinberg::Vst::ProcessModes_::kRealtime as int32;
        data.symbolicSampleSize = vst3::Steinberg::Vst::SymbolicSampleSizes_::kSample32 as int32;
    }
    if audio {
        data.numSamples = BLOCK as int32;
        data.numInputs = 1;
        data.numOutputs = 1;
        data.inputs = &mut inputs;
        data.outputs = &mut outputs;
    }
    data.inputParameterChanges = changes.as_ptr();
    assert_eq!(unsafe { c.process(&mut data) }, kResultOk);
    if audio {
        assert!(output.iter().flatten().all(|x| x.is_finite()));
    }
}

/// The controller returns what the host set while processing, until the processor takes the
/// parameter over (a block's parameter change) or processing stops (the value is applied).
fn controller_keeps_values_set_while_processing<P: Vst3Plugin>() {
    let c = Component::<P>::new();
    let bypass = bypass_id(&c);
    unsafe {
        assert_eq!(c.initialize(std::ptr::null_mut()), kResultOk);
        #[allow(clippy::unnecessary_cast)]
        let mut setup = ProcessSetup {
            processMode: vst3::Steinberg::Vst::ProcessModes_::kRealtime as int32,
            symbolicSampleSize: vst3::Steinberg::Vst::SymbolicSampleSizes_::kSample32 as int32,
            maxSamplesPerBlock: BLOCK as int32,
            sampleRate: RATE,
        };
        assert_eq!(c.setupProcessing(&mut setup), kResultOk);
        assert_eq!(IComponentTrait::setActive(&c, 1), kResultOk);
        assert_eq!(c.getParamNormalized(bypass), 0.0);
        assert_eq!(c.setProcessing(1), kResultOk);
        process(&c, true, None);

        // Set on the controller: read back at once, before the processor has it.
        assert_eq!(c.setParamNormalized(bypass, 1.0), kResultOk);
        assert_eq!(c.getParamNormalized(bypass), 1.0);
        assert_eq!(c.wrapper.getParamNormalized(bypass), 0.0);
        // A block without the change leaves the controller's value.
        process(&c, true, None);
        assert_eq!(c.getParamNormalized(bypass), 1.0);
        // The flush with the change: the processor has it, nothing is held any more.
        process(&c, false, Some((bypass, 1.0)));
        assert_eq!(c.controller.held(bypass), None);
        assert_eq!(c.wrapper.getParamNormalized(bypass), 1.0);
        assert_eq!(c.getParamNormalized(bypass), 1.0);

        // Off on the controller, never sent to the processor: applied when processing stops.
        assert_eq!(c.setParamNormalized(bypass, 0.0), kResultOk);
        process(&c, true, None);
        assert_eq!(c.getParamNormalized(bypass), 0.0);
        assert_eq!(c.wrapper.getParamNormalized(bypass), 1.0);
        assert_eq!(c.setProcessing(0), kResultOk);
        assert_eq!(c.controller.held(bypass), None);
        assert_eq!(c.wrapper.getParamNormalized(bypass), 0.0);
        assert_eq!(c.getParamNormalized(bypass), 0.0);

        // A later processor change (automation) wins over an older controller value.
        assert_eq!(c.setProcessing(1), kResultOk);
        assert_eq!(c.setParamNormalized(bypass, 1.0), kResultOk);
        process(&c, true, Some((bypass, 0.0)));
        assert_eq!(c.getParamNormalized(bypass), 0.0);

        // Values are snapped to the parameter's steps; bad values and unknown ids refused.
        assert_eq!(c.setParamNormalized(bypass, 0.8), kResultOk);
        assert_eq!(c.getParamNormalized(bypass), 1.0);
        assert_eq!(c.setParamNormalized(bypass, f64::NAN), kInvalidArgument);
        assert_eq!(c.getParamNormalized(bypass), 1.0);
        let unknown = (0..).find(|id| !known(&c, *id)).unwrap();
        assert_eq!(c.setParamNormalized(unknown, 0.5), kInvalidArgument);

        assert_eq!(c.setProcessing(0), kResultOk);
        assert_eq!(c.wrapper.getParamNormalized(bypass), 1.0);
        assert_eq!(IComponentTrait::setActive(&c, 0), kResultOk);
        assert_eq!(c.terminate(), kResultOk);
    }
}

fn known<P: Vst3Plugin>(c: &Component<P>, id: ParamID) -> bool {
    let count = unsafe { c.getParameterCount() };
    (0..count).any(|index| {
        let mut info: ParameterInfo = unsafe { std::mem::zeroed() };
        unsafe { c.getParameterInfo(index, &mut info) };
        info.id == id
    })
}

#[test]
fn controller_keeps_values_set_while_processing_main_class() {
    controller_keeps_values_set_while_processing::<NmfSeparatorVst3>();
}

#[test]
fn controller_keeps_values_set_while_processing_multi_out_class() {
    controller_keeps_values_set_while_processing::<NmfSeparatorClap>();
}

#[test]
fn a_state_load_drops_held_values() {
    let values = controller::ControllerValues::new([(7, 0), (3, 1), (3, 1), (11, 4)]);
    assert!(values.hold(3, 0.5));
    assert!(values.hold(11, 1.0));
    assert!(!values.hold(4, 1.0));
    assert_eq!(values.step_count(11), Some(4));
    assert_eq!(values.step_count(4), None);
    assert_eq!(values.held(3), Some(0.5));
    values.delivered(11);
    assert_eq!(values.held(11), None);
    values.clear();
    assert_eq!(values.held(3), None);
    let mut applied = Vec::new();
    assert!(values.hold(7, 0.25));
    values.take_pending(|id, v| applied.push((id, v)));
    assert_eq!(applied, [(7, 0.25)]);
    assert_eq!(values.held(7), None);
}
