//! The plugin without a host: parameter ids, state round-trip, the capture -> trainer thread ->
//! audio thread pipeline, state loads after activation, load/export requests, and an
//! allocation-free audio path (dictionary swaps and captures included).

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::plugin::*;
use nice_plug::params::Params;
use nmf_separator::nmf::Dictionary;
use nmf_separator::plugin::params::{default_assignment, CaptureTarget, SeparatorParams};
use nmf_separator::plugin::trainer::merge_learned;

/// The allocation checker. With the `assert_process_allocs` feature nice-plug installs this
/// same allocator itself (and a second one would not link).
#[cfg(not(feature = "assert_process_allocs"))]
#[global_allocator]
static ALLOCATOR: nice_assert_no_alloc::AllocDisabler = nice_assert_no_alloc::AllocDisabler;

#[test]
fn parameter_ids_are_stable() {
    let params = SeparatorParams::default();
    let mut ids: Vec<String> = params
        .param_map()
        .into_iter()
        .map(|(id, _, _)| id)
        .collect();
    ids.sort();
    let mut expected: Vec<String> = [
        "bypass",
        "iterations",
        "mask_power",
        "sparsity",
        "solver",
        "capture_target",
        "capture",
        "freeze",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for n in 1..=4 {
        for p in ["gain", "mute", "solo", "mode"] {
            expected.push(format!("{p}_{n}"));
        }
    }
    expected.sort();
    assert_eq!(ids, expected);
}

#[test]
fn persisted_fields_round_trip_and_mark_a_state_load() {
    let params = SeparatorParams::default();
    let dict = dictionary(512, &["Source 1", "Source 2", "Mix", "Mix"]);
    params.dictionary.replace_quietly(Some(dict.clone()));
    params.assignment.replace_quietly(vec![0, 1, 3, 3]);
    params.learn.replace_quietly(small_learning());
    let fields: BTreeMap<String, String> = params.serialize_fields();
    for key in [
        "dictionary",
        "assignment",
        "learn",
        "load_path",
        "export_path",
        "rest_templates",
        "rest_export_path",
        "rest_to_capture",
    ] {
        assert!(fields.contains_key(key), "missing {key}");
    }
    // Through the JSON of a whole nice-plug state object, as hosts store it.
    let state = nice_plug::prelude::PluginState {
        version: "test".into(),
        params: BTreeMap::new(),
        fields,
    };
    let json = serde_json::to_string(&state).unwrap();
    let state: nice_plug::prelude::PluginState = serde_json::from_str(&json).unwrap();

    let restored = SeparatorParams::default();
    let g0 = restored.dictionary.generation();
    restored.deserialize_fields(&state.fields);
    assert_eq!(restored.dictionary.lock().as_ref(), Some(&dict));
    assert_eq!(*restored.assignment.lock(), vec![0, 1, 3, 3]);
    assert_eq!(*restored.learn.lock(), small_learning());
    assert!(restored.dictionary.generation() > g0);
}

#[test]
fn default_assignment_rules() {
    let d = dictionary(
        512,
        &[
            "Source 2", "Mix", "Mix", "Mix", "Mix", "Mix", "piano", "drums", "Source 4",
        ],
    );
    assert_eq!(default_assignment(&d), vec![1, 0, 1, 2, 3, 0, 0, 1, 3]);
}

#[test]
fn merging_replaces_only_the_learned_label() {
    let old = dictionary(512, &["Source 1", "Source 2", "Source 1"]);
    let new = dictionary(512, &["Source 1", "Source 1"]);
    let (merged, assignment, note) = merge_learned(Some(&old), &[2, 1, 2], new);
    assert!(note.is_none());
    assert_eq!(merged.labels, vec!["Source 2", "Source 1", "Source 1"]);
    assert_eq!(assignment, vec![1, 0, 0]);
    assert_eq!(merged.w.column(0), old.w.column(1));

    // Another n_fft or sample rate: the old components are mapped onto the new STFT (the
    // one mapping rule, Dictionary::mapped_to) and kept.
    for (rate, n_fft) in [(SR as u32, 1024), (48_000, 512), (44_100, 2048)] {
        let mut other = dictionary(n_fft, &["Source 3"]);
        other.sample_rate = rate;
        let (merged, assignment, note) = merge_learned(Some(&old), &[2, 1, 2], other);
        let note = note.expect("a note on the mapping");
        assert!(note.contains("mapped to"), "{note}");
        assert_eq!((merged.sample_rate, merged.n_fft), (rate, n_fft));
        assert_eq!(
            merged.labels,
            vec!["Source 1", "Source 2", "Source 1", "Source 3"]
        );
        assert_eq!(assignment, vec![2, 1, 2, 2]);
        let mapped = old.mapped_to(rate, n_fft).unwrap();
        assert_eq!(merged.w.column(1), mapped.w.column(1));
    }
    // Another beta: the new dictionary replaces the old one.
    let mut other = dictionary(512, &["Source 3"]);
    other.beta = 2.0;
    let (merged, assignment, note) = merge_learned(Some(&old), &[], other);
    assert!(note.is_some());
    assert_eq!((merged.n_components(), assignment), (1, vec![2]));
}

#[test]
fn capture_learns_and_separates_without_stopping_audio() {
    let params = SeparatorParams::default();
    params.learn.replace_quietly(small_learning());
    let mut h = Harness::new(params);
    assert_eq!(h.rt.latency_samples(), 2048);
    let len = (2.0 * SR) as usize;

    h.capture(CaptureTarget::Source1, &tone(true, len));
    assert_eq!(
        h.rt.latency_samples(),
        512,
        "n_fft of the learned dictionary"
    );
    h.capture(CaptureTarget::Source2, &tone(false, len));
    let dict = h.params.dictionary.lock().clone().expect("a dictionary");
    assert_eq!(dict.n_components(), 8);
    assert_eq!(dict.sources(), vec!["Source 1", "Source 2"]);
    assert_eq!(*h.params.assignment.lock(), vec![0, 0, 0, 0, 1, 1, 1, 1]);

    // Each tone comes out on its own bus.
    for (low, own) in [(true, 0usize), (false, 1usize)] {
        let (_, buses, _) = h.run(&tone(low, len));
        let (e_own, e_other) = (energy(&buses[own][4096..]), energy(&buses[1 - own][4096..]));
        assert!(
            e_own > 20.0 * e_other,
            "tone low={low}: own bus {e_own}, other {e_other}"
        );
    }

    // Mute Source 2: the main output holds only Source 1.
    h.controls.engine.mute[1] = true;
    let mut mix = tone(true, len);
    mix.iter_mut()
        .zip(tone(false, len))
        .for_each(|(a, b)| *a += b);
    let (main, buses, _) = h.run(&mix);
    let diff: Vec<f32> = main.iter().zip(&buses[0]).map(|(m, s)| m - s).collect();
    assert!(energy(&diff[8192..]) < 1e-3 * energy(&main[8192..]));
    assert_eq!(h.status.captures_dropped.load(Ordering::Acquire), 0);
}

#[test]
fn whole_mix_capture_assigns_round_robin() {
    let params = SeparatorParams::default();
    params.learn.replace_quietly(small_learning());
    let mut h = Harness::new(params);
    let len = (1.5 * SR) as usize;
    let mut mix = tone(true, len);
    mix.iter_mut()
        .zip(tone(false, len))
        .for_each(|(a, b)| *a += b);
    h.capture(CaptureTarget::WholeMix, &mix);
    let dict = h.params.dictionary.lock().clone().unwrap();
    assert_eq!(dict.labels, vec!["Mix"; 4]);
    assert_eq!(*h.params.assignment.lock(), vec![0, 1, 2, 3]);
}

#[test]
fn state_load_after_activation_reaches_the_audio_thread() {
    let mut h = Harness::new(SeparatorParams::default());
    assert!(h.rt.engine().dictionary().is_none());
    // What nice-plug's state loader does: `PersistentField::set` via deserialize_fields.
    let dict = dictionary(1024, &["Source 1", "Source 2"]);
    let mut fields = BTreeMap::new();
    fields.insert(
        "dictionary".to_string(),
        serde_json::to_string(&Some(dict)).unwrap(),
    );
    h.params.deserialize_fields(&fields);
    let t0 = Instant::now();
    let mut changed = false;
    while h.rt.engine().dictionary().is_none() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "{}",
            h.status.message()
        );
        changed |= h.run(&[0.0; BLOCK]).2;
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(changed, "latency change reported");
    assert_eq!(h.rt.latency_samples(), 1024);

    // A state load with another assignment re-prepares it.
    let mut fields = BTreeMap::new();
    fields.insert("assignment".to_string(), "[3, 2]".to_string());
    h.params.deserialize_fields(&fields);
    let installed = h.status.dictionaries_installed.load(Ordering::Acquire);
    h.wait("re-preparation", Duration::from_secs(10), |s| {
        s.dictionaries_installed.load(Ordering::Acquire) > installed
    });
}

#[test]
fn dictionary_in_state_is_installed_at_activation() {
    let params = SeparatorParams::default();
    params
        .dictionary
        .set_external(Some(dictionary(4096, &["Source 1", "Source 3"])));
    let h = Harness::new(params);
    assert!(h.rt.engine().dictionary().is_some());
    assert_eq!(h.rt.latency_samples(), 4096);
}

#[test]
fn export_then_load_through_paths() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exported.npz");
    let dict = dictionary(512, &["piano", "drums", "piano"]);

    let params = SeparatorParams::default();
    params.dictionary.set_external(Some(dict.clone()));
    let mut h = Harness::new(params);
    h.params
        .export_path
        .set_external(path.to_string_lossy().into_owned());
    h.wait("export", Duration::from_secs(10), |_| path.exists());
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(Dictionary::load(&path).unwrap(), dict);

    let mut h2 = Harness::new(SeparatorParams::default());
    let mut fields = BTreeMap::new();
    fields.insert(
        "load_path".to_string(),
        serde_json::to_string(&path.to_string_lossy()).unwrap(),
    );
    h2.params.deserialize_fields(&fields);
    h2.wait("load", Duration::from_secs(10), |s| {
        s.dictionaries_installed.load(Ordering::Acquire) > 0
    });
    assert_eq!(h2.params.dictionary.lock().as_ref(), Some(&dict));
    assert_eq!(*h2.params.assignment.lock(), vec![0, 1, 0]);
    assert!(h2.params.load_path.lock().is_empty());
}

/// Every parameter's text round-trips as clap-validator's `param-conversions` test checks it:
/// value -> text -> value -> text gives the same text, and the last text gives the same value
/// again; and the value of the text is the shown value, to half a display step. Over 20001
/// normalized values per parameter, with the validator's own warning case (a gain of
/// normalized 0.8327, -0.05 dB, used to show "-0.0 dB", which came back as 0 dB, "0.0 dB").
#[test]
fn parameter_text_round_trips() {
    let params = SeparatorParams::default();
    let gain = &params.sources[0].gain_db;
    use nice_plug::params::Param;
    assert_eq!(gain.normalized_value_to_string(0.8327, true), "0.0 dB");
    assert_eq!(gain.normalized_value_to_string(0.0, true), "-60.0 dB");
    assert_eq!(
        gain.string_to_normalized_value("-0.0 dB"),
        Some(60.0 / 72.0)
    );
    assert_eq!(gain.string_to_normalized_value("-6dB"), Some(54.0 / 72.0));
    assert_eq!(gain.string_to_normalized_value("loud"), None);
    let n = 20_000;
    for (id, ptr, _) in params.param_map() {
        for i in 0..=n {
            let v = i as f32 / n as f32;
            // SAFETY: `ptr` points into `params`, alive for the whole test.
            unsafe {
                let text = ptr.normalized_value_to_string(v, true);
                let back = ptr
                    .string_to_normalized_value(&text)
                    .unwrap_or_else(|| panic!("{id}: {text:?} does not parse"));
                let text2 = ptr.normalized_value_to_string(back, true);
                assert_eq!(text, text2, "{id}: {v} -> {text:?} -> {back} -> {text2:?}");
                let back2 = ptr.string_to_normalized_value(&text2);
                assert_eq!(back2, Some(back), "{id}: {text2:?} parses differently");
                if id.starts_with("gain") {
                    let (shown, parsed) = (ptr.preview_plain(v), ptr.preview_plain(back));
                    assert!((shown - parsed).abs() < 0.051, "{id}: {shown} -> {parsed}");
                }
            }
        }
    }
}

/// A gain change reaches the engine at once: the engine's smoother is the only one (a
/// parameter smoother in front of it would ramp the value twice).
#[test]
fn gain_parameter_reaches_the_engine_unsmoothed() {
    let params = SeparatorParams::default();
    assert_eq!(params.engine_params().gain[0], 1.0);
    set_param(&params.sources[0].gain_db, -6.0);
    let g = params.engine_params().gain[0];
    assert_eq!(g, nice_plug::util::db_to_gain(-6.0), "{g}");
}

#[test]
fn source_roles_rule() {
    use nmf_separator::plugin::params::{source_roles, SourceMode as M, SourceRole as R};
    let auto = [M::Auto; 4];
    // One capture: the first empty source is the rest.
    assert_eq!(
        source_roles(auto, [true, false, false, false]),
        [R::Known, R::Live, R::Off, R::Off]
    );
    assert_eq!(
        source_roles(auto, [false, true, false, false]),
        [R::Live, R::Known, R::Off, R::Off]
    );
    // Two captures: as before the live rest existed, unless a source is set to live.
    assert_eq!(
        source_roles(auto, [true, true, false, false]),
        [R::Known, R::Known, R::Off, R::Off]
    );
    assert_eq!(
        source_roles(
            [M::Auto, M::Auto, M::Auto, M::Live],
            [true, true, false, false]
        ),
        [R::Known, R::Known, R::Off, R::Live]
    );
    // Nothing known: no rest (the input stays on Source 1).
    assert_eq!(source_roles(auto, [false; 4]), [R::Off; 4]);
    // Off and captured-without-components.
    assert_eq!(
        source_roles(
            [M::Auto, M::Off, M::Auto, M::Auto],
            [true, false, false, false]
        ),
        [R::Known, R::Off, R::Live, R::Off]
    );
    assert_eq!(
        source_roles(
            [M::Off, M::Captured, M::Auto, M::Auto],
            [true, false, true, false]
        ),
        [R::Off, R::Off, R::Known, R::Live]
    );
}
