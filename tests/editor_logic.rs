//! The editor's non-visual logic: routing edits reach the audio thread and change which bus
//! gets a component's energy, the editor feed publishes without allocating or locking, and the
//! state the editor writes (assignment, source names and colors, learning settings)
//! round-trips through the plugin state.
#![cfg(feature = "editor")]

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ndarray::Array2;
use nice_assert_no_alloc::assert_no_alloc;
use nice_plug::params::Params;
use nmf_separator::dsp::engine::{Engine, PreparedDictionary, MAX_SOURCES};
use nmf_separator::nmf::{Dictionary, SpectrogramKind};
use nmf_separator::plugin::editor::logic::{
    current_assignment, level, meter_step, move_component, template_curves,
};
use nmf_separator::plugin::feed::{EditorFeed, FeedCursor};
use nmf_separator::plugin::params::{LearnSettings, SeparatorParams, SourceLabels};
use nmf_separator::plugin::realtime::Controls;
use nmf_separator::plugin::status::Status;
use nmf_separator::plugin::trainer;

/// The allocation checker. With the `assert_process_allocs` feature nice-plug installs this
/// same allocator itself (and a second one would not link).
#[cfg(not(feature = "assert_process_allocs"))]
#[global_allocator]
static ALLOCATOR: nice_assert_no_alloc::AllocDisabler = nice_assert_no_alloc::AllocDisabler;

const SR: f32 = 16_000.0;
const N_FFT: usize = 512;

/// Two narrow-band templates: component 0 around 1 kHz, component 1 around 4 kHz.
fn two_band_dictionary() -> Dictionary {
    let bins = N_FFT / 2 + 1;
    let hz = |f: f32| (f / (SR / N_FFT as f32)) as usize;
    let (b0, b1) = (hz(1000.0), hz(4000.0));
    Dictionary {
        w: Array2::from_shape_fn((bins, 2), |(f, k)| {
            let c = if k == 0 { b0 } else { b1 };
            1e-3 + 1.0 / (1.0 + (f as f32 - c as f32).powi(2))
        }),
        sample_rate: SR as u32,
        n_fft: N_FFT,
        hop: N_FFT / 4,
        beta: 1.0,
        spectrogram: SpectrogramKind::Magnitude,
        labels: vec!["Source 1".into(), "Source 1".into()],
    }
}

/// A 4 kHz sine (component 1's band only).
fn high_tone(len: usize) -> Vec<f32> {
    (0..len)
        .map(|n| 0.5 * (2.0 * std::f32::consts::PI * 4000.0 * n as f32 / SR).sin())
        .collect()
}

/// Energy per source bus after running `x` through `engine`.
fn bus_energy(engine: &mut Engine, x: &[f32]) -> [f32; MAX_SOURCES] {
    let mut main = x.to_vec();
    let mut out = vec![vec![0.0f32; x.len()]; MAX_SOURCES];
    {
        let mut m: [&mut [f32]; 1] = [&mut main];
        let [a, b, c, d] = &mut out[..] else {
            unreachable!()
        };
        let mut b0: [&mut [f32]; 1] = [a];
        let mut b1: [&mut [f32]; 1] = [b];
        let mut b2: [&mut [f32]; 1] = [c];
        let mut b3: [&mut [f32]; 1] = [d];
        let mut buses: [&mut [&mut [f32]]; MAX_SOURCES] = [&mut b0, &mut b1, &mut b2, &mut b3];
        engine.process(&mut m, &mut buses);
    }
    let skip = 2 * N_FFT;
    let mut e = [0.0f32; MAX_SOURCES];
    for (s, bus) in out.iter().enumerate() {
        e[s] = bus[skip..].iter().map(|v| v * v).sum();
    }
    e
}

/// Moving a component with the editor's routing edit writes the persisted assignment; the
/// trainer thread prepares it and the audio thread installs it; the component's energy then
/// leaves on the other bus. Checked at the engine level with the assignment the edit wrote.
#[test]
fn routing_edit_moves_the_component_energy_to_another_bus() {
    let params = SeparatorParams::default();
    params.dictionary.set_external(Some(two_band_dictionary()));
    assert_eq!(current_assignment(&params), vec![0, 0]);
    let generation = params.assignment.generation();
    assert!(move_component(&params, 1, 2));
    assert!(
        params.assignment.generation() > generation,
        "edit = state-load path"
    );
    assert_eq!(*params.assignment.lock(), vec![0, 2]);
    assert!(!move_component(&params, 1, 2), "no-op edit");
    assert!(!move_component(&params, 5, 1), "out of range");

    let dict = params.dictionary.lock().clone().unwrap();
    let x = high_tone(16_000);
    let mut before = Engine::new(SR, 1);
    before.set_dictionary(Some(Box::new(
        PreparedDictionary::new(&dict, &[0, 0]).unwrap(),
    )));
    let e0 = bus_energy(&mut before, &x);
    let mut after = Engine::new(SR, 1);
    let assignment = current_assignment(&params);
    after.set_dictionary(Some(Box::new(
        PreparedDictionary::new(&dict, &assignment).unwrap(),
    )));
    let e1 = bus_energy(&mut after, &x);
    assert!(e0[0] > 100.0 * e0[2], "before: {e0:?}");
    assert!(e1[2] > 10.0 * e1[0], "after: {e1:?}");
}

/// The same edit through the running plugin pipeline: the trainer thread notices the new
/// assignment generation and the audio thread installs the re-prepared dictionary.
#[test]
fn routing_edit_reaches_the_audio_thread() {
    let params = Arc::new(SeparatorParams::default());
    params.dictionary.set_external(Some(two_band_dictionary()));
    let status = Arc::new(Status::default());
    let (mut rt, _trainer) = trainer::start(params.clone(), status.clone(), SR, 1);
    let feed = Arc::new(EditorFeed::default());
    rt.set_feed(feed.clone());
    feed.set_open(true);
    let installed = status.dictionaries_installed.load(Ordering::Acquire);
    assert!(move_component(&params, 1, 3));
    let x = high_tone(N_FFT * 40);
    let controls = Controls::default();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut energy = [0.0f32; MAX_SOURCES];
    let mut buf = vec![0.0f32; 256];
    let mut out = vec![vec![0.0f32; 256]; MAX_SOURCES];
    while status.dictionaries_installed.load(Ordering::Acquire) == installed {
        assert!(Instant::now() < deadline, "the edit never arrived");
        std::thread::sleep(Duration::from_millis(5));
        buf.fill(0.0);
        let mut m: [&mut [f32]; 1] = [&mut buf];
        let mut empty: [&mut [&mut [f32]]; 0] = [];
        rt.process(&mut m, &mut empty, &controls);
    }
    for chunk in x.chunks(256) {
        buf[..chunk.len()].copy_from_slice(chunk);
        let mut m: [&mut [f32]; 1] = [&mut buf[..chunk.len()]];
        let [a, b, c, d] = &mut out[..] else {
            unreachable!()
        };
        let mut b0: [&mut [f32]; 1] = [&mut a[..chunk.len()]];
        let mut b1: [&mut [f32]; 1] = [&mut b[..chunk.len()]];
        let mut b2: [&mut [f32]; 1] = [&mut c[..chunk.len()]];
        let mut b3: [&mut [f32]; 1] = [&mut d[..chunk.len()]];
        let mut buses: [&mut [&mut [f32]]; MAX_SOURCES] = [&mut b0, &mut b1, &mut b2, &mut b3];
        rt.process(&mut m, &mut buses, &controls);
        for (s, bus) in out.iter().enumerate() {
            energy[s] += bus[..chunk.len()].iter().map(|v| v * v).sum::<f32>();
        }
    }
    assert!(energy[3] > 10.0 * energy[0], "{energy:?}");
    // The open editor got one activation frame per hop, two components wide.
    let mut cursor = FeedCursor::default();
    let mut scratch = Vec::new();
    let mut frames = 0;
    feed.read_new(&mut cursor, &mut scratch, |h| {
        assert_eq!(h.len(), 2);
        frames += 1;
    });
    assert!(frames > 20, "{frames} frames");
    assert_eq!(feed.latency_samples(), N_FFT as u32);
}

/// Publishing the input level and the activations is allocation-free (and lock-free: only
/// atomics), in the engine's per-hop callback too.
#[test]
fn feed_publishing_does_not_allocate() {
    let feed = EditorFeed::default();
    feed.set_open(true);
    let dict = two_band_dictionary();
    let mut engine = Engine::new(SR, 1);
    engine.set_dictionary(Some(Box::new(
        PreparedDictionary::new(&dict, &[0, 1]).unwrap(),
    )));
    let mut block = high_tone(4096);
    let h: Vec<f32> = (0..200).map(|i| i as f32).collect();
    assert_no_alloc(|| {
        for _ in 0..1000 {
            feed.publish_activations(&h);
        }
        let mut m: [&mut [f32]; 1] = [&mut block];
        feed.publish_input(&m);
        let mut empty: [&mut [&mut [f32]]; 0] = [];
        engine.process_observed(&mut m, &mut empty, |h| feed.publish_activations(h));
        feed.publish_latency(engine.latency_samples() as u32);
    });
    assert_eq!(
        feed.frames_written(),
        1000 + 4096 / (N_FFT as u64 / 4),
        "one frame per hop"
    );
    assert!(feed.take_input_peak() > 0.49);
}

/// Assignment, source labels and learning settings written by the editor survive a save and
/// a load of the plugin state (serde JSON fields).
#[test]
fn editor_state_round_trips() {
    let params = SeparatorParams::default();
    params.dictionary.set_external(Some(two_band_dictionary()));
    assert!(move_component(&params, 0, 3));
    let mut labels = SourceLabels::default();
    labels.set_name(1, "Drums".into());
    labels.set_color(2, [1, 2, 3]);
    params.source_labels.set_external(labels.clone());
    let learn = LearnSettings {
        components_per_source: 7,
        n_fft: 4096,
        ..LearnSettings::default()
    };
    params.learn.set_external(learn.clone());

    let fields = params.serialize_fields();
    let json = serde_json::to_string(&fields).unwrap();
    let back: std::collections::BTreeMap<String, String> = serde_json::from_str(&json).unwrap();
    let restored = SeparatorParams::default();
    let generation = restored.assignment.generation();
    restored.deserialize_fields(&back);
    assert_eq!(*restored.assignment.lock(), vec![3, 0]);
    assert!(restored.assignment.generation() > generation);
    assert_eq!(*restored.source_labels.lock(), labels);
    assert_eq!(restored.source_labels.lock().name(1), "Drums");
    assert_eq!(restored.source_labels.lock().name(0), "Source 1");
    assert_eq!(restored.source_labels.lock().color(2), [1, 2, 3]);
    assert_eq!(*restored.learn.lock(), learn);
    assert_eq!(current_assignment(&restored), vec![3, 0]);
}

#[test]
fn template_curves_and_meter() {
    let d = two_band_dictionary();
    let curves = template_curves(&d, 48);
    assert_eq!(curves.len(), 2);
    let peak_at = |c: &Vec<f32>| {
        c.iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0
    };
    assert!(
        peak_at(&curves[0]) < peak_at(&curves[1]),
        "1 kHz left of 4 kHz"
    );
    assert!(curves.iter().flatten().all(|v| (0.0..=1.0).contains(v)));
    assert_eq!(level(1.0), 1.0);
    assert_eq!(level(0.0), 0.0);
    // Instant attack, 30 dB/s release.
    assert!((meter_step(-90.0, 1.0, 0.1, 30.0) - 0.0).abs() < 1e-4);
    assert!((meter_step(0.0, 0.0, 0.1, 30.0) + 3.0).abs() < 1e-4);
}
