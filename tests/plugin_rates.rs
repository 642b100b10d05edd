//! The plugin without a host at another sample rate than its dictionary's: a project saved
//! at 44.1 kHz opened in 48 and 96 kHz sessions, and a dictionary loaded after activation.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::plugin::*;
use nice_plug::params::Params;
use nmf_separator::dsp::engine::{process_in_blocks, Engine, PreparedDictionary, MAX_SOURCES};
use nmf_separator::nmf::Dictionary;
use nmf_separator::plugin::params::{LearnSettings, SeparatorParams};
use nmf_separator::plugin::trainer;

/// The allocation checker. With the `assert_process_allocs` feature nice-plug installs this
/// same allocator itself (and a second one would not link).
#[cfg(not(feature = "assert_process_allocs"))]
#[global_allocator]
static ALLOCATOR: nice_assert_no_alloc::AllocDisabler = nice_assert_no_alloc::AllocDisabler;

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
