//! A separator trained inside the plugin, through a real host (clack-host, the built bundle):
//! the training clips of the piano + bass example captured into Source 1 and Source 2 one
//! after the other, the trainer thread trains a separator from them in the background
//! while blocks keep coming, installs it, and the mix then separates with it: each bus
//! carries its source at the quality the offline `nmfsep train` + `nmfsep separate --model
//! --realtime` reach on the same clips. The project saves the model, and a fresh instance
//! loading that state gives the same output.
//!
//! Build the bundle first: `cargo xtask bundle nmf-separator --features assert_process_allocs`
//! (the feature makes any allocation in `process()` panic, so every block here, captures,
//! the swap to the trained model and the playback with it included, is checked).

mod common;

use std::time::{Duration, Instant};

use common::clap::*;
use common::*;
use nmf_separator::dsp::engine::{run_offline, Engine};
use nmf_separator::trained::realtime::prepare;

const BLOCK: usize = 512;
/// Iterations of every fit (the plain dictionaries and the training). Half the plugin's
/// default of 200, to keep the test's wall time down (the training then took 28.6 s of wall
/// time here, on 2 busy cores).
const ITERATIONS: usize = 100;
/// SI-SDR every bus must reach, dB. Offline on the same clips (`case_dir()`:
/// examples/piano_bass), `nmfsep train --iterations 100` (K 16, n_fft 2048, the default
/// pitch shifts; both sources tonal, so K 32 each) then `nmfsep separate --model
/// --realtime` measured piano 7.46 / bass 6.29 dB, and the plugin gives exactly that
/// model's output (checked below against the engine). The bound is the weaker figure less
/// 0.5 dB for a change of platform. On this example the trained separator is not better
/// than plain dictionaries (8.50 / 7.69 dB, tests/clap_host.rs); on the bench copy
/// A_piano_bass it is (offline 7.88 / 7.61 dB against 6.43 / 5.88): this test proves the
/// plugin trains and runs the separator end to end, not that training helps here.
const MIN_SI_SDR_DB: f64 = 5.8;
/// Plugin vs the library engine with the saved model, as a fraction of the input's peak.
const ENGINE_TOLERANCE: f32 = 1e-5;
/// Longest wait for the training, s (the CI machine has 2 cores shared by other tests).
const TRAIN_TIMEOUT_S: u64 = 600;

#[test]
fn captures_train_a_separator_that_separates_and_persists() {
    let dir = case_dir();
    let mix = read_wav(&dir.join("mix.wav"));
    let stems = read_stems(&dir);
    let input = vec![mix.clone(), mix.clone()];

    let mut host = Host::new();
    let learn = serde_json::json!({ "iterations": ITERATIONS });
    host.load_state(&serde_json::json!({
        "params": {},
        "fields": { "learn": learn.to_string() }
    }));
    host.activate(2, BLOCK);

    // Capture each training clip into its source, one after the other (the first is learned
    // while the second is captured).
    for (s, name) in STEMS.iter().enumerate() {
        let clip = read_wav(&dir.join("train").join(format!("{name}.wav")));
        let clip = vec![clip.clone(), clip];
        host.run(
            &clip,
            BLOCK,
            &[("capture_target", s as f64), ("capture", 1.0)],
        );
        host.run(&vec![vec![0.0; BLOCK]; 2], BLOCK, &[("capture", 0.0)]);
    }

    // Keep the audio running while the trainer learns and trains; poll the saved state.
    let started = Instant::now();
    let model = loop {
        host.idle(20, BLOCK, 10);
        if let Some(m) = host.saved_model() {
            break m;
        }
        assert!(
            started.elapsed() < Duration::from_secs(TRAIN_TIMEOUT_S),
            "no trained separator within {TRAIN_TIMEOUT_S} s"
        );
    };
    println!(
        "trained {} components for {:?} within {:.1} s of the last capture",
        model.dictionary.n_components(),
        model.source_names(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(model.source_names(), ["Source 1", "Source 2"]);
    // The captures are the same on both channels: kept as mono, no spatial model.
    assert!(model.spatial.is_none());
    assert!(model.settings.sources.iter().all(|s| s.channels == 1));
    assert_eq!(model.dictionary.n_fft, 2048);
    // Let the prepared model reach the audio thread (trainer poll: 20 ms).
    host.idle(25, BLOCK, 10);

    host.reset();
    let latency = host.latency() as usize;
    assert_eq!(latency, 2048);
    let after = host.run_compensated(&input, BLOCK, latency, &[]);
    // The library engine with the saved model (what `nmfsep separate --model --realtime`
    // runs) gives the same output.
    let mut engine = Engine::new(SR as f32, 2);
    engine.set_dictionary(Some(Box::new(prepare(&model, 2).unwrap())));
    let (_, reference) = run_offline(&mut engine, &input, 1024);
    for s in 0..STEMS.len() {
        let sdr = si_sdr(&after[1 + s][0], &stems[s]);
        let d = max_abs_diff(&after[1 + s][0], &reference[s][0]) / peak(&mix);
        println!(
            "trained: Source {} ({}): SI-SDR {sdr:.2} dB, {d:.2e} from the engine",
            s + 1,
            STEMS[s]
        );
        assert!(
            sdr > MIN_SI_SDR_DB,
            "Source {} ({}): SI-SDR {sdr:.2} dB, at least {MIN_SI_SDR_DB} dB expected",
            s + 1,
            STEMS[s]
        );
        assert!(
            d < ENGINE_TOLERANCE,
            "Source {}: {d} from the engine",
            s + 1
        );
    }
    assert!(max_abs_diff(&after[0][0], &mix) < 1e-4, "main = input");

    // State round trip: a fresh instance loading the saved state separates the same way.
    let bytes = host.save_state_bytes();
    drop(host);
    let mut fresh = Host::new();
    assert!(fresh.load_state_bytes(&bytes), "the saved state loads");
    fresh.activate(2, BLOCK);
    assert_eq!(fresh.latency() as usize, latency);
    let again = fresh.run_compensated(&input, BLOCK, latency, &[]);
    for port in 0..=STEMS.len() {
        let d = max_abs_diff(&again[port][0], &after[port][0]);
        assert!(
            d < 1e-6,
            "port {port}: {d} from the saved instance's output"
        );
    }
    assert_eq!(fresh.saved_model().as_ref(), Some(&model));
}
