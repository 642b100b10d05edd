//! The plugin without a host with a source learned live: one capture gives the rest live
//! (and it persists), and an incremental capture learns only what the known sources do not
//! explain. The audio thread never allocates (the harness checks every block).

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::plugin::*;
use nice_plug::params::Params;
use nmf_separator::dsp::engine::MAX_SOURCES;
use nmf_separator::nmf::Dictionary;
use nmf_separator::plugin::params::{CaptureTarget, LearnSettings, SeparatorParams};

/// The allocation checker. With the `assert_process_allocs` feature nice-plug installs this
/// same allocator itself (and a second one would not link).
#[cfg(not(feature = "assert_process_allocs"))]
#[global_allocator]
static ALLOCATOR: nice_assert_no_alloc::AllocDisabler = nice_assert_no_alloc::AllocDisabler;

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
