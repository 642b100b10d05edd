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
