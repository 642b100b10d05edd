//! `nmfsep train` and `separate --model` end to end on examples/piano_bass: the model file,
//! the real-time path against the engine driven directly, the spatial model on a stereo
//! version of the example, and the quality of augmented dictionaries.

mod common;

use std::path::Path;

use common::{example, read_wav as read_wav_spec, run_ok as nmfsep};
use nmf_core::dsp::engine::{run_offline, Engine, EngineParams};
use nmf_core::metrics::si_sdr;
use nmf_core::nmf::Dictionary;
use nmf_core::trained::{realtime, SeparatorModel};

/// `channels[channel][sample]` of a WAV file.
fn read_wav(path: &Path) -> Vec<Vec<f32>> {
    read_wav_spec(path).1
}

/// A 32-bit float WAV file at the example's rate, 44.1 kHz.
fn write_wav(path: &Path, chans: &[Vec<f32>]) {
    common::write_wav(path, 44_100, chans)
}

/// The example's mono signal `rel`, panned with gains `(left, right)`, cut to `len` samples.
fn panned(rel: &str, gains: (f32, f32), len: usize) -> Vec<Vec<f32>> {
    let x = read_wav(&example(rel)).remove(0);
    let x = &x[..len.min(x.len())];
    vec![
        x.iter().map(|v| v * gains.0).collect(),
        x.iter().map(|v| v * gains.1).collect(),
    ]
}

/// Mean over sources and channels of the SI-SDR of the outputs in `dir`.
fn mean_si_sdr(dir: &Path, refs: &[(&str, Vec<Vec<f32>>)]) -> f64 {
    let mut s = Vec::new();
    for (name, r) in refs {
        let est = read_wav(&dir.join(format!("{name}.wav")));
        for (rc, ec) in r.iter().zip(&est) {
            s.push(si_sdr(rc, ec));
        }
    }
    s.iter().sum::<f64>() / s.len() as f64
}

const PIANO: (f32, f32) = (0.9, 0.25);
const BASS: (f32, f32) = (0.3, 0.85);

/// A stereo version of the example (piano left, bass right, clips and mixture panned alike):
/// the model file round-trips and is read as a dictionary too; the piano (tonal) is
/// augmented; `--realtime` equals the engine driven directly with the same model, sample for
/// sample; offline outputs add up to the input; the spatial model beats the mono masks.
#[test]
fn stereo_model_round_trip_realtime_equals_engine_and_spatial_helps() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    let train_len = 6 * 44_100;
    write_wav(
        &p("piano.wav"),
        &panned("train/piano.wav", PIANO, train_len),
    );
    write_wav(&p("bass.wav"), &panned("train/bass.wav", BASS, train_len));
    let len = 4 * 44_100;
    let stems = [
        ("piano", panned("stems/piano.wav", PIANO, len)),
        ("bass", panned("stems/bass.wav", BASS, len)),
    ];
    let mix: Vec<Vec<f32>> = (0..2)
        .map(|c| {
            (0..len)
                .map(|i| stems[0].1[c][i] + stems[1].1[c][i])
                .collect()
        })
        .collect();
    write_wav(&p("mix.wav"), &mix);
    let model_path = p("model.npz");
    let out = nmfsep(&[
        "train".as_ref(),
        "--source".as_ref(),
        format!("piano={}", p("piano.wav").display()).as_ref(),
        "--source".as_ref(),
        format!("bass={}", p("bass.wav").display()).as_ref(),
        "--iterations".as_ref(),
        "100".as_ref(),
        "-o".as_ref(),
        model_path.as_os_str(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("spatial model"), "{text}");

    let model = SeparatorModel::load(&model_path).unwrap();
    assert_eq!(model.source_names(), ["piano", "bass"]);
    // Both sources measure tonal: 32 templates each (twice the default 16).
    assert_eq!(model.dictionary.n_components(), 64);
    assert_eq!(model.settings.sources[0].shifts, [-2.0, -1.0, 1.0, 2.0]);
    assert_eq!(model.settings.sources[0].channels, 2);
    let sp = model
        .spatial
        .as_ref()
        .expect("stereo clips give a spatial model");
    // The piano's image is on the left: R11 / R22 = (0.9 / 0.25)^2 where it sounds.
    let [a, d, _, _] = sp[0].bins[40];
    assert!((a / d - (0.9f32 / 0.25).powi(2)).abs() < 0.1, "{a} {d}");
    // Read as a plain dictionary, and written back identically.
    assert_eq!(Dictionary::load(&model_path).unwrap(), model.dictionary);
    model.save(&p("again.npz")).unwrap();
    assert_eq!(SeparatorModel::load(&p("again.npz")).unwrap(), model);

    // --realtime through the CLI against the engine with the same model.
    nmfsep(&[
        "separate".as_ref(),
        p("mix.wav").as_os_str(),
        "--model".as_ref(),
        model_path.as_os_str(),
        "--realtime".as_ref(),
        "-o".as_ref(),
        p("rt").as_os_str(),
    ]);
    let mut engine = Engine::new(44_100.0, 2);
    engine.set_dictionary(Some(Box::new(realtime::prepare(&model, 2).unwrap())));
    engine.set_params(&EngineParams::default());
    engine.reset();
    assert!(engine.dictionary().unwrap().has_spatial());
    let (_, buses) = run_offline(&mut engine, &mix, 512);
    for (s, name) in ["piano", "bass"].iter().enumerate() {
        let got = read_wav(&p(&format!("rt/{name}.wav")));
        assert_eq!(got, buses[s], "{name}: CLI and engine differ");
    }

    // Offline, with and without the spatial model (a model trained with --no-spatial).
    nmfsep(&[
        "separate".as_ref(),
        p("mix.wav").as_os_str(),
        "--model".as_ref(),
        model_path.as_os_str(),
        "-o".as_ref(),
        p("off").as_os_str(),
    ]);
    let mut mono = model.clone();
    mono.spatial = None;
    mono.save(&p("mono.npz")).unwrap();
    nmfsep(&[
        "separate".as_ref(),
        p("mix.wav").as_os_str(),
        "--model".as_ref(),
        p("mono.npz").as_os_str(),
        "-o".as_ref(),
        p("off_mono").as_os_str(),
    ]);
    let outs: Vec<Vec<Vec<f32>>> = ["piano", "bass"]
        .iter()
        .map(|n| read_wav(&p(&format!("off/{n}.wav"))))
        .collect();
    for c in 0..2 {
        let err = (0..len)
            .map(|i| (outs[0][c][i] + outs[1][c][i] - mix[c][i]).abs())
            .fold(0.0f32, f32::max);
        assert!(err < 1e-4, "channel {c}: sources miss the input by {err}");
    }
    let spatial = mean_si_sdr(&p("off"), &stems);
    let masks = mean_si_sdr(&p("off_mono"), &stems);
    let rt = mean_si_sdr(&p("rt"), &stems);
    eprintln!(
        "SI-SDR offline spatial {spatial:.2}, mono masks {masks:.2}, realtime spatial {rt:.2}"
    );
    // Measured (K16, 100 iterations): spatial 6.84 dB, masks 4.39, real-time spatial 6.94.
    assert!(
        spatial > masks + 1.5,
        "spatial {spatial:.2} vs masks {masks:.2}"
    );
    assert!(
        rt > masks + 1.5,
        "real-time spatial {rt:.2} vs offline masks {masks:.2}"
    );
}

/// Quality on the example (7 s of the bench's A_piano_bass, mono): a separator trained with
/// 32 templates per augmented source (the piano and the bass both measure tonal, so both are
/// augmented by -2..+2 semitones) against plain `learn` + `separate` with the same K, beta and
/// iterations, offline and `--realtime`, mean SI-SDR of the two sources.
#[test]
fn trained_separator_quality_on_the_example() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    let clip = |s: &str| example(&format!("train/{s}.wav"));
    let model = p("model.npz");
    nmfsep(&[
        "train".as_ref(),
        "--source".as_ref(),
        format!("piano={}", clip("piano").display()).as_ref(),
        "--source".as_ref(),
        format!("bass={}", clip("bass").display()).as_ref(),
        "--augmented-components".as_ref(),
        "32".as_ref(),
        "-o".as_ref(),
        model.as_os_str(),
    ]);
    let mut plain = Vec::new();
    for s in ["piano", "bass"] {
        let d = p(&format!("{s}.npz"));
        nmfsep(&[
            "learn".as_ref(),
            clip(s).as_os_str(),
            "-o".as_ref(),
            d.as_os_str(),
        ]);
        plain.push(format!("{s}={}", d.display()));
    }
    let mix = example("mix.wav");
    let refs: Vec<(&str, Vec<Vec<f32>>)> = ["piano", "bass"]
        .iter()
        .map(|s| (*s, read_wav(&example(&format!("stems/{s}.wav")))))
        .collect();
    let mut scores = Vec::new();
    for (tag, args) in [
        (
            "model",
            vec!["--model".to_string(), model.display().to_string()],
        ),
        (
            "plain",
            vec![
                "--source".to_string(),
                plain[0].clone(),
                "--source".to_string(),
                plain[1].clone(),
            ],
        ),
    ] {
        for rt in [false, true] {
            let out = p(&format!("{tag}_{rt}"));
            let mut a: Vec<String> = vec!["separate".into(), mix.display().to_string()];
            a.extend(args.iter().cloned());
            if rt {
                a.push("--realtime".into());
            }
            a.extend(["-o".to_string(), out.display().to_string()]);
            nmfsep(&a);
            scores.push(mean_si_sdr(&out, &refs));
        }
    }
    let [model_off, model_rt, plain_off, plain_rt] = scores[..] else {
        unreachable!()
    };
    eprintln!(
        "SI-SDR trained offline {model_off:.2} realtime {model_rt:.2}; plain offline {plain_off:.2} realtime {plain_rt:.2}"
    );
    // Measured: trained 6.93 offline, 6.98 real-time; plain 8.05 and 8.05. On this excerpt
    // (6 s clips, 7 s of mixture) the augmented separator is the weaker one; on the whole
    // bench case it is the stronger (BENCHMARKS.md, "Trained separators"). The bounds guard
    // the trained path against regressions, 0.7 dB below the figures.
    assert!(model_off > 6.2, "trained offline {model_off:.2} dB");
    assert!(model_rt > 6.2, "trained real-time {model_rt:.2} dB");
}
