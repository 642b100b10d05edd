//! The plugin without a host: parameter ids, state round-trip, the capture -> trainer thread ->
//! audio thread pipeline, state loads after activation, load/export requests, and an
//! allocation-free audio path (dictionary swaps and captures included).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ndarray::Array2;
use nice_assert_no_alloc::assert_no_alloc;
use nice_plug::params::Params;
use nmf_separator::dsp::engine::{process_in_blocks, Engine, PreparedDictionary, MAX_SOURCES};
use nmf_separator::nmf::{Dictionary, SpectrogramKind};
use nmf_separator::plugin::params::{
    default_assignment, CaptureTarget, LearnSettings, SeparatorParams,
};
use nmf_separator::plugin::realtime::{Controls, Realtime};
use nmf_separator::plugin::status::Status;
use nmf_separator::plugin::trainer::{self, merge_learned, TrainerHandle};

/// The allocation checker. With the `assert_process_allocs` feature nice-plug installs this
/// same allocator itself (and a second one would not link).
#[cfg(not(feature = "assert_process_allocs"))]
#[global_allocator]
static ALLOCATOR: nice_assert_no_alloc::AllocDisabler = nice_assert_no_alloc::AllocDisabler;

const SR: f32 = 16_000.0;
const BLOCK: usize = 256;

fn small_learning() -> LearnSettings {
    LearnSettings {
        components_per_source: 4,
        mix_components: 4,
        beta: 1.0,
        n_fft: 512,
        iterations: 60,
        given_known: false,
    }
}

fn dictionary(n_fft: usize, labels: &[&str]) -> Dictionary {
    let bins = n_fft / 2 + 1;
    let k = labels.len();
    Dictionary {
        w: Array2::from_shape_fn((bins, k), |(f, c)| {
            1.0 / (1.0 + (f as f32 - (c * bins / k) as f32).abs())
        }),
        sample_rate: SR as u32,
        n_fft,
        hop: n_fft / 4,
        beta: 1.0,
        spectrogram: SpectrogramKind::Magnitude,
        labels: labels.iter().map(|s| s.to_string()).collect(),
    }
}

/// A low harmonic tone (source A) or a high two-tone (source B).
fn tone(low: bool, len: usize) -> Vec<f32> {
    let freqs: &[f32] = if low {
        &[220.0, 440.0, 660.0]
    } else {
        &[2500.0, 3700.0]
    };
    (0..len)
        .map(|i| {
            let t = i as f32 / SR;
            freqs
                .iter()
                .map(|f| (2.0 * std::f32::consts::PI * f * t).sin())
                .sum::<f32>()
                * 0.2
        })
        .collect()
}

struct Harness {
    rt: Realtime,
    _trainer: TrainerHandle,
    status: Arc<Status>,
    params: Arc<SeparatorParams>,
    controls: Controls,
}

impl Harness {
    fn new(params: SeparatorParams) -> Self {
        Self::at(params, SR)
    }

    /// A session at `rate` Hz.
    fn at(params: SeparatorParams, rate: f32) -> Self {
        let params = Arc::new(params);
        let status = Arc::new(Status::default());
        let (rt, trainer) = trainer::start(params.clone(), status.clone(), rate, 2);
        Self {
            rt,
            _trainer: trainer,
            status,
            params,
            controls: Controls::default(),
        }
    }

    /// Runs a mono signal on both channels; returns the main output (channel 0) and every
    /// source bus (channel 0), and whether the latency changed.
    fn run(&mut self, x: &[f32]) -> (Vec<f32>, Vec<Vec<f32>>, bool) {
        let mut main = vec![x.to_vec(), x.to_vec()];
        let mut src = vec![vec![vec![0.0f32; x.len()]; 2]; MAX_SOURCES];
        let mut changed = false;
        let mut start = 0;
        while start < x.len() {
            let end = (start + BLOCK).min(x.len());
            let (m0, m1) = main.split_at_mut(1);
            let mut m: [&mut [f32]; 2] = [&mut m0[0][start..end], &mut m1[0][start..end]];
            let mut chans: Vec<[&mut [f32]; 2]> = src
                .iter_mut()
                .map(|b| {
                    let (a, c) = b.split_at_mut(1);
                    [&mut a[0][start..end], &mut c[0][start..end]]
                })
                .collect();
            let mut buses: Vec<&mut [&mut [f32]]> =
                chans.iter_mut().map(|c| c.as_mut_slice()).collect();
            let rt = &mut self.rt;
            let controls = self.controls;
            changed |= assert_no_alloc(|| rt.process(&mut m, &mut buses, &controls));
            start = end;
        }
        let buses = src.into_iter().map(|mut b| b.swap_remove(0)).collect();
        (main.swap_remove(0), buses, changed)
    }

    /// Processes silence until `done()` or the timeout.
    fn wait(&mut self, what: &str, timeout: Duration, done: impl Fn(&Status) -> bool) {
        let t0 = Instant::now();
        let silence = vec![0.0f32; BLOCK];
        while !done(&self.status) {
            assert!(
                t0.elapsed() < timeout,
                "timed out waiting for {what}; status: {}",
                self.status.message()
            );
            self.run(&silence);
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn capture(&mut self, target: CaptureTarget, clip: &[f32]) {
        let learned = self.status.clips_learned.load(Ordering::Acquire);
        self.controls.target = target;
        self.controls.capture = true;
        self.run(clip);
        self.controls.capture = false;
        self.run(&[0.0; BLOCK]);
        self.wait("learning", Duration::from_secs(120), |s| {
            s.clips_learned.load(Ordering::Acquire) > learned
        });
        let sent = self.status.dictionaries_sent.load(Ordering::Acquire);
        self.wait("installation", Duration::from_secs(10), |s| {
            s.dictionaries_installed.load(Ordering::Acquire) >= sent
        });
    }
}

fn energy(x: &[f32]) -> f64 {
    x.iter().map(|&v| (v as f64).powi(2)).sum()
}

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

/// A tone pair at `rate` Hz: the low harmonic tone (`low`) or the high two-tone.
fn tone_at(low: bool, len: usize, rate: f32) -> Vec<f32> {
    let freqs: &[f32] = if low {
        &[220.0, 440.0, 660.0]
    } else {
        &[2500.0, 3700.0]
    };
    (0..len)
        .map(|i| {
            let t = i as f32 / rate;
            freqs
                .iter()
                .map(|f| (2.0 * std::f32::consts::PI * f * t).sin())
                .sum::<f32>()
                * 0.2
        })
        .collect()
}

/// A two-source dictionary learned at 44.1 kHz (n_fft 2048) from the two tones.
fn dictionary_at_44k1() -> Dictionary {
    let settings = LearnSettings {
        n_fft: 2048,
        ..small_learning()
    };
    let parts: Vec<Dictionary> = [(true, "Source 1"), (false, "Source 2")]
        .iter()
        .map(|&(low, label)| {
            let clip = tone_at(low, 44_100, 44_100.0);
            trainer::learn_capture(&clip, 44_100, &settings, label, 4, &mut |_| true).unwrap()
        })
        .collect();
    Dictionary::concat(&parts).unwrap()
}

/// A project saved with a 44.1 kHz dictionary, opened in a 48 kHz and a 96 kHz session: the
/// dictionary is mapped when it is prepared (the rule of `nmfsep separate`), the plugin's
/// outputs are those of the engine with the mapped dictionary (what `separate --realtime`
/// runs), each tone comes out on its own bus, the status carries the editor's note, and the
/// persisted dictionary is still the one learned at 44.1 kHz; back in a 44.1 kHz session it
/// is used as it is.
#[test]
fn a_project_at_44k1_separates_in_48k_and_96k_sessions_and_keeps_its_dictionary() {
    let original = dictionary_at_44k1();
    let saved = {
        let p = SeparatorParams::default();
        p.dictionary.replace_quietly(Some(original.clone()));
        p.assignment.replace_quietly(vec![0, 0, 0, 0, 1, 1, 1, 1]);
        serde_json::to_string(&nice_plug::prelude::PluginState {
            version: "test".into(),
            params: BTreeMap::new(),
            fields: p.serialize_fields(),
        })
        .unwrap()
    };
    for (rate, n_fft) in [(48_000u32, 2048usize), (96_000, 4096), (44_100, 2048)] {
        let state: nice_plug::prelude::PluginState = serde_json::from_str(&saved).unwrap();
        let params = SeparatorParams::default();
        params.deserialize_fields(&state.fields);
        let mut h = Harness::at(params, rate as f32);
        assert_eq!(original.n_fft_for(rate), n_fft);
        assert_eq!(h.rt.latency_samples() as usize, n_fft, "{rate} Hz");
        let expected_note = match rate {
            44_100 => String::new(),
            48_000 => "learned at 44100 Hz, mapped to 48000 Hz".to_string(),
            _ => "learned at 44100 Hz with n_fft 2048, mapped to 96000 Hz with n_fft 4096"
                .to_string(),
        };
        assert_eq!(h.status.mapping_note(), expected_note, "{rate} Hz");

        let len = rate as usize; // 1 s
        let mut mix = tone_at(true, len, rate as f32);
        mix.iter_mut()
            .zip(tone_at(false, len, rate as f32))
            .for_each(|(a, b)| *a += b);
        let (main, buses, _) = h.run(&mix);

        // The engine with the mapped dictionary, as `separate --realtime` runs it.
        let mapped = original.mapped_to(rate, n_fft).unwrap();
        let mut e = Engine::new(rate as f32, 2);
        e.set_dictionary(Some(Box::new(
            PreparedDictionary::new(&mapped, &[0, 0, 0, 0, 1, 1, 1, 1]).unwrap(),
        )));
        let (ref_main, ref_src) = process_in_blocks(&mut e, vec![mix.clone(), mix.clone()], BLOCK);
        assert_eq!(main, ref_main[0], "{rate} Hz: main differs from the engine");
        for s in 0..MAX_SOURCES {
            assert_eq!(
                buses[s], ref_src[s][0],
                "{rate} Hz: bus {s} differs from the engine"
            );
        }
        // Each tone on its own bus (after the first frames).
        for (low, own) in [(true, 0usize), (false, 1usize)] {
            let (_, buses, _) = h.run(&tone_at(low, len, rate as f32));
            let skip = 2 * n_fft;
            let (e_own, e_other) = (energy(&buses[own][skip..]), energy(&buses[1 - own][skip..]));
            println!("{rate} Hz, low tone {low}: own bus {e_own:.3}, other {e_other:.3}");
            assert!(
                e_own > 20.0 * e_other,
                "{rate} Hz, low tone {low}: own bus {e_own}, other {e_other}"
            );
        }
        // The project keeps the dictionary as learned.
        assert_eq!(
            h.params.dictionary.lock().as_ref(),
            Some(&original),
            "{rate} Hz"
        );
        let fields = h.params.serialize_fields();
        let back: Option<Dictionary> = serde_json::from_str(&fields["dictionary"]).unwrap();
        assert_eq!(back.as_ref(), Some(&original), "{rate} Hz: saved state");
    }
}

/// A state load after activation at another rate is mapped too (by the trainer thread).
#[test]
fn a_dictionary_loaded_at_another_rate_after_activation_is_mapped() {
    let mut h = Harness::at(SeparatorParams::default(), 48_000.0);
    let mut d = dictionary(1024, &["Source 1", "Source 2"]);
    d.sample_rate = 44_100;
    let mut fields = BTreeMap::new();
    fields.insert(
        "dictionary".to_string(),
        serde_json::to_string(&Some(d.clone())).unwrap(),
    );
    h.params.deserialize_fields(&fields);
    h.wait("installation", Duration::from_secs(10), |s| {
        s.dictionaries_installed.load(Ordering::Acquire) > 0
    });
    assert_eq!(h.rt.latency_samples(), 1024);
    assert_eq!(
        h.status.mapping_note(),
        "learned at 44100 Hz, mapped to 48000 Hz"
    );
    assert!(
        h.status.message().contains("mapped to 48000 Hz"),
        "{}",
        h.status.message()
    );
    assert_eq!(h.params.dictionary.lock().as_ref(), Some(&d));
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

/// Sets a parameter as a host would (the test has no host; nice-plug's wrappers call this).
fn set_param<P: nice_plug::prelude::Param>(p: &P, v: P::Plain) {
    // SAFETY: the pointer is to a parameter of params that outlive this call; a parameter's
    // value is an atomic, read by the audio side and the live worker thread.
    unsafe {
        p.as_ptr()
            ._internal_set_normalized_value(p.preview_normalized(v));
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

/// Mono signal `x` delayed by `d` samples (zeros in front), same length.
fn delayed(x: &[f32], d: usize) -> Vec<f32> {
    let mut y = vec![0.0f32; x.len()];
    y[d..].copy_from_slice(&x[..x.len() - d]);
    y
}

/// Plays `x` in pieces of 0.1 s with a short sleep after each, so the live worker thread
/// keeps up as in real time; returns the concatenated main output and buses (channel 0).
fn play(h: &mut Harness, x: &[f32]) -> (Vec<f32>, Vec<Vec<f32>>) {
    let piece = (0.1 * SR) as usize;
    let mut main = Vec::with_capacity(x.len());
    let mut buses: Vec<Vec<f32>> = (0..MAX_SOURCES)
        .map(|_| Vec::with_capacity(x.len()))
        .collect();
    for chunk in x.chunks(piece) {
        let (m, b, _) = h.run(chunk);
        main.extend_from_slice(&m);
        for (o, b) in buses.iter_mut().zip(b) {
            o.extend_from_slice(&b);
        }
        std::thread::sleep(Duration::from_millis(4));
    }
    (main, buses)
}

/// Low-passed white noise (a one-pole filter, cut-off about 250 Hz at 16 kHz): the known
/// source of the live-rest test, broadband and stationary as a captured noise is.
fn low_noise(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut y = 0.0f32;
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let x = ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0;
            y += 0.1 * (x - y);
            y
        })
        .collect()
}

/// One capture (Source 1, a low noise), then the mixture with a high two-tone: Source 2
/// learns the rest live (no further step), the buses add up to the input, a silent rest
/// comes back when the unknown sound starts, freeze stops the learning, the learned
/// templates persist with the state (a reopened project separates with them before any
/// refit), export and "keep as capture" work. The audio thread never allocates (the harness
/// checks every block). Thresholds from the figures the test prints (measured in the doc of
/// each bound).
#[test]
fn one_capture_gives_the_rest_live_and_it_persists() {
    let params = SeparatorParams::default();
    params.learn.replace_quietly(small_learning());
    let mut h = Harness::new(params);
    h.capture(CaptureTarget::Source1, &low_noise((2.0 * SR) as usize, 1));
    assert_eq!(
        h.status.live_source.load(Ordering::Acquire),
        2,
        "{}",
        h.status.message()
    );
    let latency = h.rt.latency_samples() as usize;

    // The known sound alone: the rest stays quiet.
    let known = low_noise((3.0 * SR) as usize, 2);
    let (_, buses) = play(&mut h, &known);
    let tail = known.len() / 2;
    let quiet = energy(&buses[1][tail..]) / energy(&known[tail..]);

    // The unknown sound starts: it comes out on Source 2 within a few refits.
    let refits0 = h.status.rest_refits.load(Ordering::Acquire);
    let n = (6.0 * SR) as usize;
    let (low, high) = (low_noise(n, 3), tone(false, n));
    let mix: Vec<f32> = low.iter().zip(&high).map(|(a, b)| a + b).collect();
    let (main, buses) = play(&mut h, &mix);
    let refits = h.status.rest_refits.load(Ordering::Acquire) - refits0;
    let last = n - (2.0 * SR) as usize;
    let err = |bus: &[f32], want: &[f32]| {
        let d: Vec<f32> = bus.iter().zip(want).map(|(a, b)| a - b).collect();
        energy(&d[last..]) / energy(&want[last..])
    };
    let (e_low, e_high) = (
        err(&buses[0], &delayed(&low, latency)),
        err(&buses[1], &delayed(&high, latency)),
    );
    println!(
        "known alone: rest/known energy {quiet:.4}; mixture: {refits} refits, relative \
         error Source 1 {e_low:.4}, Source 2 {e_high:.4}"
    );
    // The buses add up to the input (delayed), and the main output is their sum.
    let input = delayed(&mix, latency);
    for t in latency..n {
        let sum = buses[0][t] + buses[1][t];
        assert!(
            (sum - input[t]).abs() < 1e-4,
            "t {t}: {sum} vs {}",
            input[t]
        );
        assert!((main[t] - sum).abs() < 1e-4);
        assert_eq!(buses[2][t], 0.0);
    }
    assert!(refits > 2, "{refits} refits");
    assert!(quiet < QUIET_REST, "known alone: rest/known energy {quiet}");
    assert!(e_high < LIVE_ERROR, "Source 2 relative error {e_high}");
    assert!(e_low < KNOWN_ERROR, "Source 1 relative error {e_low}");

    // Freeze: no refit, the templates stand still.
    h.controls.engine.freeze = true;
    set_param(&h.params.freeze, true);
    play(&mut h, &mix[..(0.5 * SR) as usize]);
    std::thread::sleep(Duration::from_millis(50));
    let refits = h.status.rest_refits.load(Ordering::Acquire);
    let frozen = h
        .params
        .rest_templates
        .lock()
        .clone()
        .expect("templates learned");
    play(&mut h, &mix[..(2.0 * SR) as usize]);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(h.status.rest_refits.load(Ordering::Acquire), refits);
    assert_eq!(h.params.rest_templates.lock().as_ref(), Some(&frozen));
    assert_eq!(frozen.n_components(), 16);
    assert_eq!(frozen.labels[0], "Source 2");

    // The state round trip: a reopened project (frozen from the start, so no refit runs)
    // separates with the saved templates.
    let fields = h.params.serialize_fields();
    let reopened = SeparatorParams::default();
    reopened.deserialize_fields(&fields);
    assert_eq!(reopened.rest_templates.lock().as_ref(), Some(&frozen));
    set_param(&reopened.freeze, true);
    let mut h2 = Harness::new(reopened);
    h2.controls.engine.freeze = true;
    assert_eq!(h2.status.live_source.load(Ordering::Acquire), 2);
    let m = (2.0 * SR) as usize;
    let (_, buses) = play(&mut h2, &mix[..m]);
    let e2 = {
        let want = delayed(&high[..m], latency);
        let d: Vec<f32> = buses[1].iter().zip(&want).map(|(a, b)| a - b).collect();
        energy(&d[m / 2..]) / energy(&want[m / 2..])
    };
    assert_eq!(h2.status.rest_refits.load(Ordering::Acquire), 0);
    println!("reopened, frozen: Source 2 relative error {e2:.4}");
    assert!(e2 < LIVE_ERROR, "reopened: Source 2 {e2}");

    // Export, then keep as capture: Source 2 becomes a captured source.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rest.npz");
    h2.params
        .rest_export_path
        .set_external(path.display().to_string());
    h2.wait("export", Duration::from_secs(10), |_| path.exists());
    let exported = Dictionary::load(&path).unwrap();
    assert_eq!(exported.w, frozen.w);
    let installed = h2.status.dictionaries_installed.load(Ordering::Acquire);
    h2.params.rest_to_capture.set_external(true);
    h2.wait("keep as capture", Duration::from_secs(10), |s| {
        s.dictionaries_installed.load(Ordering::Acquire) > installed
    });
    let dict = h2.params.dictionary.lock().clone().unwrap();
    assert_eq!(dict.sources(), vec!["Source 1", "Source 2"]);
    assert_eq!(h2.status.live_source.load(Ordering::Acquire), 0);
}

/// Bound of the rest's energy while only the known noise plays, relative to the input's
/// (measured 0.320..0.333 in five runs: the exemplars take the noise's frame-to-frame
/// fluctuation that its 4 templates do not explain). Since the tonality rule
/// (`LiveOptions::for_known`) scales the learner's overlap weight by T^4, this broadband
/// noise is penalized less than before (0.237..0.239 with the weight unscaled); on the
/// bench's real noise the rule gains 0.17 dB (A_speech_noise live 11.81 against 11.64 with
/// `--rest-tonal-exponent 0`).
const QUIET_REST: f64 = 0.36;
/// Bound of the relative error energy of Source 1 (the known noise) in the mixture, last
/// 2 s. Measured with the default solver since the screening (at most 16 iterations per
/// frame): 0.349..0.375 in eight runs (the spread follows the worker's timing, 11 or 12
/// refits); 0.349..0.380 in six runs with the screening or the early exit turned off, so it
/// is the 16 iterations against 10 that move it. With the previous default (`flat+me`, 10 iterations)
/// 0.302..0.309, and 0.207 with the overlap weight unscaled.
const KNOWN_ERROR: f64 = 0.41;
/// Bound of the relative error energy of Source 2 (the two-tone learned live), last 2 s.
/// Measured with the screening default 0.151..0.162 live and 0.145..0.156 reopened and frozen
/// (eight and three runs; 0.151..0.164 with the screening or the early exit off); with the
/// previous default 0.131..0.134 live, 0.128 reopened and frozen; 0.090 with the overlap
/// weight unscaled.
const LIVE_ERROR: f64 = 0.18;

/// Incremental capture (`LearnSettings::given_known`): with the low noise captured as
/// Source 1, Source 2 is captured from the mixture (noise + two-tone, never alone); it then
/// learns only what the noise's templates do not explain, and separates the mixture much
/// better than the same capture learned whole (which takes the noise too). Both figures are
/// printed; the bounds are from them (see the constants).
#[test]
fn incremental_capture_learns_what_the_known_sources_do_not_explain() {
    let n = (3.0 * SR) as usize;
    let (low, high) = (low_noise(n, 5), tone(false, n));
    let mix: Vec<f32> = low.iter().zip(&high).map(|(a, b)| a + b).collect();
    let mut errors = Vec::new();
    for given in [false, true] {
        let params = SeparatorParams::default();
        params.learn.replace_quietly(LearnSettings {
            given_known: given,
            ..small_learning()
        });
        let mut h = Harness::new(params);
        h.capture(CaptureTarget::Source1, &low_noise((2.0 * SR) as usize, 1));
        h.capture(CaptureTarget::Source2, &mix);
        let dict = h.params.dictionary.lock().clone().unwrap();
        assert_eq!(dict.sources(), vec!["Source 1", "Source 2"]);
        assert_eq!(h.status.live_source.load(Ordering::Acquire), 0);
        let latency = h.rt.latency_samples() as usize;
        let (_, buses, _) = h.run(&mix);
        let want = delayed(&high, latency);
        let d: Vec<f32> = buses[1].iter().zip(&want).map(|(a, b)| a - b).collect();
        let e = energy(&d[n / 2..]) / energy(&want[n / 2..]);
        println!(
            "capture of Source 2 from the mixture, given_known {given}: relative error {e:.4}"
        );
        errors.push(e);
    }
    assert!(errors[1] < GIVEN_ERROR, "incremental: {}", errors[1]);
    assert!(
        errors[0] > 2.0 * errors[1],
        "whole {} vs incremental {}",
        errors[0],
        errors[1]
    );
}

/// Bound of Source 2's relative error energy after an incremental capture (measured 0.0163
/// with the semi-supervised fit's residual start and tonality-scaled penalty, 0.0076 before
/// them; the same capture learned whole: 0.380).
const GIVEN_ERROR: f64 = 0.025;
