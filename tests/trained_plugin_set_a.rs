//! The plugin's trained separator on the bench's set A, through a real host (clack-host, the
//! built bundle): every training clip of a case captured into its own source one after the
//! other, the trainer thread trains the separator (plugin defaults), and the case's mixture
//! then plays through it. Every bus must carry its source (SI-SDR bound per case, measured
//! below), the buses must equal the library engine's output with the saved model, and they
//! are written to `target/set-a-plugin/CASE/` for the bench's scorer:
//!
//! ```sh
//! cargo xtask bundle nmf-separator --features assert_process_allocs
//! cargo test --test trained_plugin_set_a -- --ignored --nocapture
//! python ../shared/bench/evaluate.py ../shared/bench/cases/A_band4 target/set-a-plugin/A_band4
//! ```
//!
//! Ignored by default: the bench (`../shared/bench`, or `$NMF_BENCH`) is not part of the
//! repository, and training four sources takes minutes on a debug build.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::clap::*;
use common::*;
use nmf_separator::dsp::engine::{run_offline, Engine};
use nmf_separator::trained::realtime::prepare;

const BLOCK: usize = 512;
/// Longest wait for the training, s.
const TRAIN_TIMEOUT_S: u64 = 1800;
/// Plugin vs the library engine with the saved model, as a fraction of the input's peak.
const ENGINE_TOLERANCE: f32 = 1e-5;

fn bench_case(case: &str) -> PathBuf {
    let bench = std::env::var_os("NMF_BENCH")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir().join("../shared/bench"));
    let dir = bench.join("cases").join(case);
    assert!(
        dir.join("mix.wav").exists(),
        "no bench case at {}",
        dir.display()
    );
    dir
}

/// Two channels: a stereo file as it is, a mono one on both.
fn stereo(mut x: Vec<Vec<f32>>) -> Vec<Vec<f32>> {
    if x.len() == 1 {
        x.push(x[0].clone());
    }
    x
}

fn write_wav(path: &Path, channels: &[Vec<f32>]) {
    let spec = hound::WavSpec {
        channels: channels.len() as u16,
        sample_rate: SR,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..channels[0].len() {
        for c in channels {
            w.write_sample(c[i]).unwrap();
        }
    }
    w.finalize().unwrap();
}

/// Captures, trains and separates `case` (sources in name order into Source 1, 2, ...);
/// asserts every bus's SI-SDR (mean over the case's channels) against `min_si_sdr_db`.
fn separate_through_the_plugin(case: &str, min_si_sdr_db: f64) {
    let dir = bench_case(case);
    let mut names: Vec<String> = std::fs::read_dir(dir.join("stems"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wav"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mix = read_channels(&dir.join("mix.wav"));
    let channels = mix.len();
    let input = stereo(mix.clone());

    let mut host = Host::new();
    host.activate(2, BLOCK);
    for (s, name) in names.iter().enumerate() {
        let clip = stereo(read_channels(
            &dir.join("train").join(format!("{name}.wav")),
        ));
        host.run(
            &clip,
            BLOCK,
            &[("capture_target", s as f64), ("capture", 1.0)],
        );
        host.run(&vec![vec![0.0; BLOCK]; 2], BLOCK, &[("capture", 0.0)]);
        // As a user playing one source after the other: the next capture starts once this
        // one is learned (the plugin holds two capture buffers and drops a capture that
        // finds none free).
        let asked = Instant::now();
        while host
            .saved_dictionary()
            .is_none_or(|(d, _)| d.sources().len() < s + 1)
        {
            host.idle(10, BLOCK, 10);
            assert!(
                asked.elapsed() < Duration::from_secs(TRAIN_TIMEOUT_S),
                "{name} not learned"
            );
        }
    }
    let started = Instant::now();
    let model = loop {
        host.idle(20, BLOCK, 10);
        // Training starts again as each capture arrives: wait for the one of every source.
        if let Some(m) = host
            .saved_model()
            .filter(|m| m.source_names().len() == names.len())
        {
            break m;
        }
        assert!(
            started.elapsed() < Duration::from_secs(TRAIN_TIMEOUT_S),
            "no trained separator within {TRAIN_TIMEOUT_S} s"
        );
    };
    println!(
        "{case}: trained {} components, spatial model {}, within {:.1} s of the last capture",
        model.dictionary.n_components(),
        model.spatial.is_some(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(model.source_names().len(), names.len());
    assert_eq!(model.spatial.is_some(), channels == 2);
    host.idle(25, BLOCK, 10);

    host.reset();
    let latency = host.latency() as usize;
    let after = host.run_compensated(&input, BLOCK, latency, &[]);
    let mut engine = Engine::new(SR as f32, 2);
    engine.set_dictionary(Some(Box::new(prepare(&model, 2).unwrap())));
    let (_, reference) = run_offline(&mut engine, &input, 1024);

    let out = target_dir().join("set-a-plugin").join(case);
    std::fs::create_dir_all(&out).unwrap();
    let peak = input.iter().map(|c| peak(c)).fold(0.0f32, f32::max);
    for (s, name) in names.iter().enumerate() {
        let bus = &after[1 + s][..channels];
        write_wav(&out.join(format!("{name}.wav")), bus);
        let stem = read_channels(&dir.join("stems").join(format!("{name}.wav")));
        let sdr = (0..channels)
            .map(|c| si_sdr(&bus[c], &stem[c]))
            .sum::<f64>()
            / channels as f64;
        let d = (0..2)
            .map(|c| max_abs_diff(&after[1 + s][c], &reference[s][c]))
            .fold(0.0f32, f32::max)
            / peak;
        println!(
            "{case}: Source {} ({name}): SI-SDR {sdr:.2} dB, {d:.2e} from the engine",
            s + 1
        );
        assert!(d < ENGINE_TOLERANCE, "{name}: {d} from the engine");
        assert!(
            sdr > min_si_sdr_db,
            "{case} {name}: SI-SDR {sdr:.2} dB, at least {min_si_sdr_db} dB expected"
        );
    }
}

/// Measured (debug bundle, plugin defaults): bass 7.69, piano 7.96 dB SI-SDR; the bench's
/// scorer gave the buses a median SDR of 9.42 dB (target 8.2 in real time). Bound: the
/// weaker bus less 0.5 dB.
#[test]
#[ignore = "needs ../shared/bench (or $NMF_BENCH) and minutes of training"]
fn set_a_piano_bass_through_the_plugin() {
    separate_through_the_plugin("A_piano_bass", 7.2);
}

/// Measured (debug bundle, plugin defaults, stereo captures: spatial model): bass 2.90,
/// drums 8.31, piano 1.61, sax 4.75 dB SI-SDR; the bench's scorer gave the buses a median
/// SDR of 5.23 dB (target 4.7 in real time). Bound: the weakest bus less 0.5 dB.
#[test]
#[ignore = "needs ../shared/bench (or $NMF_BENCH) and minutes of training"]
fn set_a_band4_through_the_plugin() {
    separate_through_the_plugin("A_band4", 1.1);
}
