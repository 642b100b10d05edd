//! Supervised separation of the in-repo example (examples/piano_bass, a 7 s excerpt of the
//! bench case A_piano_bass): dictionaries learned from the train clips, then the offline fit
//! and the real-time engine, scored by SI-SDR against the ground-truth stems.
//!
//! Measured on 2026-11-22 (K = 16 per source, beta 1, n_fft 2048, hop 512, seed 0):
//! offline 200 iterations: SI-SDR bass 7.73 dB, piano 8.52 dB (BSS-eval median SDR 9.90 dB;
//! scikit-learn's supervised baseline on the same excerpt: SI-SDR 7.65 / 8.45, SDR 9.83);
//! real time, blocks of 512, version 1's rule (10 iterations per frame): bass 7.70 dB, piano
//! 8.50 dB; the default rule of 2026-12-02 (`flat+me+screen:0.01@0.07`, at most 16): bass
//! 7.71 dB, piano 8.50 dB.
//!
//! The drums + guitar example (examples/drums_guitar, 7 s of A_drums_guitar; same settings),
//! measured on 2026-12-02: mean SI-SDR offline 5.28 dB (drums 4.71, guitar 5.84); real time
//! with the first flat+me default (flat + ME, 10 iterations) 5.27 dB (4.62, 5.92), with
//! today's (flat + ME with screening and early exit, at most 16) 5.27 dB (4.65, 5.89); with version 1's
//! (warm + MU, 10 iterations) 4.26 dB (3.49, 5.04). The test asks for the default within
//! 0.3 dB of offline and at least 0.6 dB above version 1.

mod common;

use std::ops::ControlFlow;
use std::path::Path;

use common::resample;
use nmf_separator::dsp::engine::{run_offline, Engine, EngineParams, PreparedDictionary};
use nmf_separator::dsp::{learn_dictionary, separate, SeparateOptions, Stft};
use nmf_separator::metrics::si_sdr;
use nmf_separator::nmf::{Dictionary, FitOptions, SolveRule, SpectrogramKind};
use nmfsep::audio::read_audio;

const SOURCES: [&str; 2] = ["bass", "piano"];

/// Largest shortfall of the default real-time solver's mean SI-SDR under the offline fit on
/// the drums + guitar example (measured: see the module documentation).
const REALTIME_GAP_DB: f64 = 0.3;
/// Smallest gain of the default solver over version 1's on that example.
const SOLVER_GAIN_DB: f64 = 0.6;

fn example(rel: &str) -> std::path::PathBuf {
    example_in("piano_bass", rel)
}

fn example_in(case: &str, rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(case)
        .join(rel)
}

fn learned_dictionary() -> Dictionary {
    learned_dictionary_of("piano_bass", &SOURCES)
}

/// Dictionaries of `sources` (K = 16 each, beta 1, 200 iterations) learned from the train
/// clips of `examples/<case>`, joined in that order.
fn learned_dictionary_of(case: &str, sources: &[&str]) -> Dictionary {
    let stft = Stft::new(2048, 512).unwrap();
    let opts = FitOptions {
        n_components: 16,
        beta: 1.0,
        max_iter: 200,
        ..FitOptions::default()
    };
    let dicts: Vec<Dictionary> = sources
        .iter()
        .map(|s| {
            let clip = read_audio(&example_in(case, &format!("train/{s}.wav"))).unwrap();
            learn_dictionary(
                &clip.mono(),
                clip.sample_rate,
                &stft,
                SpectrogramKind::Magnitude,
                &opts,
                s,
                &mut |_| ControlFlow::Continue(()),
            )
            .unwrap()
            .0
        })
        .collect();
    Dictionary::concat(&dicts).unwrap()
}

#[test]
fn offline_and_realtime_separation_reach_the_measured_quality() {
    let dict = learned_dictionary();
    let mix = read_audio(&example("mix.wav")).unwrap();
    let stems: Vec<Vec<f32>> = SOURCES
        .iter()
        .map(|s| {
            read_audio(&example(&format!("stems/{s}.wav")))
                .unwrap()
                .channels
                .remove(0)
        })
        .collect();

    let offline = separate(
        &mix.channels,
        mix.sample_rate,
        &dict,
        &SeparateOptions::default(),
    )
    .unwrap();
    assert_eq!(offline.sources, SOURCES);

    let mut engine = Engine::new(mix.sample_rate as f32, 1);
    engine.set_dictionary(Some(Box::new(
        PreparedDictionary::by_labels(&dict).unwrap(),
    )));
    engine.set_params(&EngineParams::default());
    engine.reset();
    let (main, realtime) = run_offline(&mut engine, &mix.channels, 512);

    for (i, s) in SOURCES.iter().enumerate() {
        let off = si_sdr(&stems[i], &offline.audio[i][0]);
        let rt = si_sdr(&stems[i], &realtime[i][0]);
        println!("{s}: offline SI-SDR {off:.2} dB, realtime {rt:.2} dB");
        // Thresholds about 1 dB under the measured values (see the module doc).
        assert!(off > 6.7, "{s}: offline SI-SDR {off:.2} dB");
        assert!(
            rt > off - 1.0,
            "{s}: realtime {rt:.2} dB is more than 1 dB under offline {off:.2} dB"
        );
    }
    // The outputs add back up to the input, offline and in real time.
    let input = &mix.channels[0];
    let peak = input.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    for t in 0..input.len() {
        let off: f32 = offline.audio.iter().map(|s| s[0][t]).sum();
        let rt: f32 = realtime[..2].iter().map(|s| s[0][t]).sum();
        assert!(
            (off - input[t]).abs() < 1e-4 * peak
                && (rt - input[t]).abs() < 1e-4 * peak
                && (main[0][t] - input[t]).abs() < 1e-4 * peak,
            "sample {t}"
        );
    }
}

/// The real-time solver at onsets: on the drums + guitar example, the default
/// per-frame rule (flat start, majorization-equalization steps, screening, early exit; at most
/// 16 iterations) stays close to the offline fit, and clearly above the warm-started
/// multiplicative updates of version 1 (10 iterations), which lag at every drum hit. Same
/// dictionaries, blocks of 512. Thresholds: see the
/// module documentation for the measured values.
#[test]
fn realtime_default_solver_is_near_offline_at_onsets() {
    const DG: [&str; 2] = ["drums", "guitar"];
    let dict = learned_dictionary_of("drums_guitar", &DG);
    let mix = read_audio(&example_in("drums_guitar", "mix.wav")).unwrap();
    let stems: Vec<Vec<f32>> = DG
        .iter()
        .map(|s| {
            read_audio(&example_in("drums_guitar", &format!("stems/{s}.wav")))
                .unwrap()
                .channels
                .remove(0)
        })
        .collect();
    let offline = separate(
        &mix.channels,
        mix.sample_rate,
        &dict,
        &SeparateOptions::default(),
    )
    .unwrap();
    let realtime = |rule: SolveRule, iterations: usize| {
        let mut engine = Engine::new(mix.sample_rate as f32, 1);
        engine.set_dictionary(Some(Box::new(
            PreparedDictionary::by_labels(&dict).unwrap(),
        )));
        engine.set_params(&EngineParams {
            iterations,
            solve_rule: rule,
            ..EngineParams::default()
        });
        engine.reset();
        run_offline(&mut engine, &mix.channels, 512).1
    };
    let (new, old) = (
        realtime(SolveRule::default(), SolveRule::DEFAULT_ITERATIONS),
        realtime(SolveRule::WARM_MU, 10),
    );
    let mean = |audio: &[Vec<Vec<f32>>]| {
        DG.iter()
            .enumerate()
            .map(|(i, s)| {
                let v = si_sdr(&stems[i], &audio[i][0]);
                println!("  {s}: {v:.2} dB");
                v
            })
            .sum::<f64>()
            / DG.len() as f64
    };
    println!("offline:");
    let off = mean(&offline.audio);
    println!("real time, {}:", SolveRule::default());
    let rt_new = mean(&new);
    println!("real time, {}:", SolveRule::WARM_MU);
    let rt_old = mean(&old);
    println!(
        "mean SI-SDR: offline {off:.2} dB, real time {rt_new:.2} dB (default), {rt_old:.2} dB (v1)"
    );
    assert!(
        rt_new > off - REALTIME_GAP_DB,
        "real time {rt_new:.2} dB is more than {REALTIME_GAP_DB} dB under offline {off:.2} dB"
    );
    assert!(
        rt_new > rt_old + SOLVER_GAIN_DB,
        "default solver {rt_new:.2} dB does not beat v1's {rt_old:.2} dB by {SOLVER_GAIN_DB} dB"
    );
}

/// Mean of the sources' SI-SDR (the median of two), dB, and each source's.
fn scores(stems: &[Vec<f32>], est: &[Vec<Vec<f32>>]) -> (f64, Vec<f64>) {
    let s: Vec<f64> = stems
        .iter()
        .zip(est)
        .map(|(t, e)| si_sdr(t, &e[0]) as f64)
        .collect();
    (s.iter().sum::<f64>() / s.len() as f64, s)
}

/// Dictionaries travel: the example (7 s of A_piano_bass) resampled with rubato to 48 kHz and
/// 96 kHz, separated with dictionaries learned at 44.1 kHz from the original train clips and
/// mapped by `Dictionary::mapped_to` (to n_fft 2048 at 48 kHz, 4096 at 96 kHz:
/// `Dictionary::n_fft_for`), against dictionaries learned from the train clips resampled to
/// the target rate with the same STFT. K = 16, beta 1, 100 iterations (offline fit),
/// 4 s of mixture. Measured (the table in BENCHMARKS.md, "Dictionaries at another sample
/// rate"; mean SI-SDR of the two sources), with the log-power interpolation of `mapped_to`:
/// 48 kHz mapped 7.80 dB vs native 7.05 dB (+0.75); 96 kHz mapped 7.80 dB vs native 7.89 dB
/// (-0.10). (With the earlier linear-power interpolation: 7.25 at both, -0.64 at 96 kHz.)
/// Bound: 0.5 dB at both rates.
#[test]
fn dictionaries_learned_at_44k1_work_at_48k_and_96k() {
    let opts = FitOptions {
        n_components: 16,
        beta: 1.0,
        max_iter: 100,
        ..FitOptions::default()
    };
    let learn = |clips: &[Vec<f32>], rate: u32, n_fft: usize| -> Dictionary {
        let stft = Stft::new(n_fft, n_fft / 4).unwrap();
        let dicts: Vec<Dictionary> = SOURCES
            .iter()
            .zip(clips)
            .map(|(s, clip)| {
                learn_dictionary(
                    clip,
                    rate,
                    &stft,
                    SpectrogramKind::Magnitude,
                    &opts,
                    s,
                    &mut |_| ControlFlow::Continue(()),
                )
                .unwrap()
                .0
            })
            .collect();
        Dictionary::concat(&dicts).unwrap()
    };
    let read = |rel: &str| read_audio(&example(rel)).unwrap().channels.remove(0);
    let train: Vec<Vec<f32>> = SOURCES
        .iter()
        .map(|s| read(&format!("train/{s}.wav")))
        .collect();
    let excerpt = 4 * 44_100;
    let stems: Vec<Vec<f32>> = SOURCES
        .iter()
        .map(|s| read(&format!("stems/{s}.wav"))[..excerpt].to_vec())
        .collect();
    let original = learn(&train, 44_100, 2048);
    let sep_opts = SeparateOptions {
        iterations: 100,
        ..SeparateOptions::default()
    };
    for rate in [48_000u32, 96_000] {
        let stems_t: Vec<Vec<f32>> = stems.iter().map(|s| resample(s, 44_100, rate)).collect();
        let len = stems_t.iter().map(Vec::len).min().unwrap();
        let mix: Vec<f32> = (0..len).map(|i| stems_t[0][i] + stems_t[1][i]).collect();
        let n_fft = original.n_fft_for(rate);
        let mapped = original.mapped_to(rate, n_fft).unwrap();
        let train_t: Vec<Vec<f32>> = train.iter().map(|c| resample(c, 44_100, rate)).collect();
        let native = learn(&train_t, rate, n_fft);
        assert_eq!((mapped.n_fft, mapped.hop), (native.n_fft, native.hop));
        let run = |d: &Dictionary| {
            separate(std::slice::from_ref(&mix), rate, d, &sep_opts)
                .unwrap()
                .audio
        };
        let truth: Vec<Vec<f32>> = stems_t.iter().map(|s| s[..len].to_vec()).collect();
        let (m, ms) = scores(&truth, &run(&mapped));
        let (n, ns) = scores(&truth, &run(&native));
        println!(
            "| {rate} | {n_fft} | {:.2} / {:.2} | {n:.2} | {:.2} / {:.2} | {m:.2} | {:+.2} |",
            ns[0],
            ns[1],
            ms[0],
            ms[1],
            m - n
        );
        let margin = 0.5;
        assert!(
            m >= n - margin,
            "{rate} Hz: mapped {m:.2} dB is more than {margin} dB under native {n:.2} dB"
        );
    }
}

/// Where the 96 kHz gap of `dictionaries_learned_at_44k1_work_at_48k_and_96k` comes from:
/// the same comparison over several seeds of the learning (the seed of NNDSVDa's randomized
/// SVD), with the 44.1 kHz row (the original dictionaries on the original audio) as the
/// reference of what mapping should preserve. Not run by default (a few minutes):
///
/// `cargo test --test separation_quality seeds -- --ignored --nocapture`
///
/// `NMFSEP_TRAVEL_CASE` (a bench case folder with `stems/` and `train/`, default the in-repo
/// example), `NMFSEP_TRAVEL_SECONDS` (the excerpt, default 4; 0 = all) and
/// `NMFSEP_TRAVEL_SEEDS` (default 6) choose the material. Prints one row per seed and rate,
/// then the mean and standard deviation of mapped - native per rate.
#[test]
#[ignore]
fn mapped_versus_native_over_seeds() {
    let env = |k: &str, d: usize| -> usize {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let case = std::env::var_os("NMFSEP_TRAVEL_CASE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| example(""));
    let seconds = env("NMFSEP_TRAVEL_SECONDS", 4);
    let seeds = env("NMFSEP_TRAVEL_SEEDS", 6) as u64;
    let mut names: Vec<String> = std::fs::read_dir(case.join("stems"))
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            let stem = p.file_stem()?.to_string_lossy().into_owned();
            (p.extension()? == "wav").then_some(stem)
        })
        .collect();
    names.sort();
    let read = |rel: String| {
        let a = read_audio(&case.join(rel)).unwrap();
        assert_eq!(a.sample_rate, 44_100);
        a.mono()
    };
    let train: Vec<Vec<f32>> = names
        .iter()
        .map(|s| read(format!("train/{s}.wav")))
        .collect();
    let mut stems: Vec<Vec<f32>> = names
        .iter()
        .map(|s| read(format!("stems/{s}.wav")))
        .collect();
    let len = stems.iter().map(Vec::len).min().unwrap();
    let len = if seconds == 0 {
        len
    } else {
        len.min(seconds * 44_100)
    };
    stems.iter_mut().for_each(|s| s.truncate(len));
    let sep_opts = SeparateOptions {
        iterations: 100,
        ..SeparateOptions::default()
    };
    let learn = |clips: &[Vec<f32>], rate: u32, n_fft: usize, seed: u64| -> Dictionary {
        let opts = FitOptions {
            n_components: 16,
            beta: 1.0,
            max_iter: 100,
            seed,
            ..FitOptions::default()
        };
        let stft = Stft::new(n_fft, n_fft / 4).unwrap();
        let dicts: Vec<Dictionary> = names
            .iter()
            .zip(clips)
            .map(|(s, clip)| {
                learn_dictionary(
                    clip,
                    rate,
                    &stft,
                    SpectrogramKind::Magnitude,
                    &opts,
                    s,
                    &mut |_| ControlFlow::Continue(()),
                )
                .unwrap()
                .0
            })
            .collect();
        Dictionary::concat(&dicts).unwrap()
    };
    let mean_sdr = |truth: &[Vec<f32>], mix: &[f32], rate: u32, d: &Dictionary| -> f64 {
        let est = separate(&[mix.to_vec()], rate, d, &sep_opts).unwrap().audio;
        scores(truth, &est).0
    };
    // Resampled material, once per rate.
    let rates = [48_000u32, 96_000];
    // (stems, mixture, train clips) at each rate.
    type Material = (Vec<Vec<f32>>, Vec<f32>, Vec<Vec<f32>>);
    let material: Vec<Material> = rates
        .iter()
        .map(|&rate| {
            let st: Vec<Vec<f32>> = stems.iter().map(|s| resample(s, 44_100, rate)).collect();
            let n = st.iter().map(Vec::len).min().unwrap();
            let st: Vec<Vec<f32>> = st.into_iter().map(|s| s[..n].to_vec()).collect();
            let mix: Vec<f32> = (0..n).map(|i| st.iter().map(|s| s[i]).sum()).collect();
            let tr = train.iter().map(|c| resample(c, 44_100, rate)).collect();
            (st, mix, tr)
        })
        .collect();
    let mix44: Vec<f32> = (0..len).map(|i| stems.iter().map(|s| s[i]).sum()).collect();
    println!(
        "case {}, {} sources, {:.1} s",
        case.display(),
        names.len(),
        len as f32 / 44_100.0
    );
    println!("| seed | 44.1 kHz original | 48k native | 48k mapped | 96k native | 96k mapped |");
    println!("|---|---|---|---|---|---|");
    let mut diffs = vec![Vec::new(); rates.len()];
    let mut natives = vec![Vec::new(); rates.len()];
    let mut originals = Vec::new();
    for seed in 0..seeds {
        let original = learn(&train, 44_100, 2048, seed);
        let o = mean_sdr(&stems, &mix44, 44_100, &original);
        originals.push(o);
        let mut row = format!("| {seed} | {o:.2} |");
        for (r, &rate) in rates.iter().enumerate() {
            let (st, mix, tr) = &material[r];
            let n_fft = original.n_fft_for(rate);
            let mapped = original.mapped_to(rate, n_fft).unwrap();
            let native = learn(tr, rate, n_fft, seed);
            let (n, m) = (
                mean_sdr(st, mix, rate, &native),
                mean_sdr(st, mix, rate, &mapped),
            );
            row.push_str(&format!(" {n:.2} | {m:.2} |"));
            diffs[r].push(m - n);
            natives[r].push(n);
        }
        println!("{row}");
    }
    let stats = |v: &[f64]| {
        let m = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len().max(2) - 1) as f64;
        (m, var.sqrt())
    };
    let (om, os) = stats(&originals);
    println!("44.1 kHz original: mean {om:.2} dB, sd {os:.2}");
    for (r, &rate) in rates.iter().enumerate() {
        let (dm, ds) = stats(&diffs[r]);
        let (nm, ns) = stats(&natives[r]);
        println!(
            "{rate} Hz: native mean {nm:.2} dB (sd {ns:.2}); mapped - native mean {dm:+.2} dB, sd {ds:.2}, min {:+.2}, max {:+.2}",
            diffs[r].iter().copied().fold(f64::INFINITY, f64::min),
            diffs[r].iter().copied().fold(f64::NEG_INFINITY, f64::max)
        );
    }
}
