//! Where the quality lost by mapping a dictionary to another sample rate comes from
//! (BENCHMARKS.md, "Dictionaries at another sample rate"). Studies, not checks: every test
//! here is ignored and prints a table. On the in-repo example (the first 4 s of
//! A_piano_bass), K = 16 per source, beta 1, 100 iterations to learn (tol 1e-4, seed 0) and to
//! separate (offline). Scores: mean SI-SDR of bass and piano (dB), then each.
//!
//! `cargo test --test mapping_study -- --ignored --nocapture --test-threads 1`

mod common;

use std::ops::ControlFlow;
use std::path::Path;

use common::resample;
use nmf_separator::dsp::{learn_dictionary, separate, SeparateOptions, Stft};
use nmf_separator::metrics::si_sdr;
use nmf_separator::nmf::{Dictionary, FitOptions, SpectrogramKind};
use nmfsep::audio::read_audio;

const NAMES: [&str; 2] = ["bass", "piano"];
const LEN: usize = 4 * 44_100;

/// Stems, mixture and train clips at one rate.
struct Material {
    rate: u32,
    stems: Vec<Vec<f32>>,
    mix: Vec<f32>,
    train: Vec<Vec<f32>>,
}

fn material(rate: u32) -> Material {
    let ex = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/piano_bass");
    let read = |rel: String| read_audio(&ex.join(rel)).unwrap().mono();
    let at = |x: Vec<f32>| {
        if rate == 44_100 {
            x
        } else {
            resample(&x, 44_100, rate)
        }
    };
    let stems: Vec<Vec<f32>> = NAMES
        .iter()
        .map(|s| at(read(format!("stems/{s}.wav"))[..LEN].to_vec()))
        .collect();
    let n = stems.iter().map(Vec::len).min().unwrap();
    let stems: Vec<Vec<f32>> = stems.into_iter().map(|s| s[..n].to_vec()).collect();
    let mix = (0..n).map(|i| stems.iter().map(|s| s[i]).sum()).collect();
    let train = NAMES
        .iter()
        .map(|s| at(read(format!("train/{s}.wav"))))
        .collect();
    Material {
        rate,
        stems,
        mix,
        train,
    }
}

fn learn(m: &Material, n_fft: usize) -> Dictionary {
    let opts = FitOptions {
        n_components: 16,
        beta: 1.0,
        max_iter: 100,
        ..FitOptions::default()
    };
    let stft = Stft::new(n_fft, n_fft / 4).unwrap();
    let parts: Vec<Dictionary> = NAMES
        .iter()
        .zip(&m.train)
        .map(|(s, c)| {
            learn_dictionary(
                c,
                m.rate,
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
    Dictionary::concat(&parts).unwrap()
}

fn scores(truth: &[Vec<f32>], est: &[Vec<f32>]) -> String {
    let s: Vec<f64> = truth
        .iter()
        .zip(est)
        .map(|(t, e)| {
            let n = t.len().min(e.len());
            si_sdr(&t[..n], &e[..n]) as f64
        })
        .collect();
    format!("{:.2} ({:.2} / {:.2})", (s[0] + s[1]) / 2.0, s[0], s[1])
}

/// Separates `m` with `d` as `nmfsep separate` does (mapped by the crate's rule).
fn separate_mapped(m: &Material, d: &Dictionary) -> String {
    let d = d.mapped_to(m.rate, d.n_fft_for(m.rate)).unwrap();
    separate_with(m, &d)
}

fn separate_with(m: &Material, d: &Dictionary) -> String {
    let opts = SeparateOptions {
        iterations: 100,
        ..SeparateOptions::default()
    };
    let est = separate(std::slice::from_ref(&m.mix), m.rate, d, &opts)
        .unwrap()
        .audio;
    let est: Vec<Vec<f32>> = est.into_iter().map(|mut e| e.swap_remove(0)).collect();
    scores(&m.stems, &est)
}

/// Every dictionary (learned at 44.1, 48 and 96 kHz) on the audio at every rate: the score
/// follows the dictionary, not the rate of the audio.
#[test]
#[ignore]
fn dictionaries_across_rates() {
    let rates = [(44_100u32, 2048usize), (48_000, 2048), (96_000, 4096)];
    let mats: Vec<Material> = rates.iter().map(|&(r, _)| material(r)).collect();
    for (m, &(r, n)) in mats.iter().zip(&rates) {
        let d = learn(m, n);
        for a in &mats {
            println!(
                "learned at {r} Hz, audio at {} Hz: {}",
                a.rate,
                separate_mapped(a, &d)
            );
        }
    }
}

/// The alternative to mapping: resample the audio to the dictionary's rate, separate there,
/// resample the sources back.
#[test]
#[ignore]
fn resampling_the_audio_instead() {
    let base = material(44_100);
    let d = learn(&base, 2048);
    for rate in [48_000u32, 96_000] {
        let m = material(rate);
        let opts = SeparateOptions {
            iterations: 100,
            ..SeparateOptions::default()
        };
        let down = resample(&m.mix, rate, 44_100);
        let est = separate(&[down], 44_100, &d, &opts).unwrap().audio;
        let est: Vec<Vec<f32>> = est.iter().map(|e| resample(&e[0], 44_100, rate)).collect();
        println!(
            "audio at {rate} Hz through 44.1 kHz: {}",
            scores(&m.stems, &est)
        );
    }
}

/// The 44.1 kHz dictionary mapped away and back, scored on the 44.1 kHz audio: what the
/// interpolation of the templates alone costs (the frame and the audio do not change).
#[test]
#[ignore]
fn round_trips() {
    let base = material(44_100);
    let d = learn(&base, 2048);
    println!("as learned: {}", separate_with(&base, &d));
    for (r, n) in [
        (48_000u32, 2048usize),
        (96_000, 4096),
        (44_100, 4096),
        (88_200, 4096),
    ] {
        let back = d.mapped_to(r, n).unwrap().mapped_to(44_100, 2048).unwrap();
        println!(
            "to {r} Hz / n_fft {n} and back: {}",
            separate_with(&base, &back)
        );
    }
}

/// Interpolations for the 44.1 kHz -> 48 kHz mapping (n_fft 2048 both), each at the target
/// bin's centre without averaging over its width, with the level of `Dictionary::mapped_to`.
/// Linear in log magnitude is what `mapped_to` does for such ratios since 2026-12-02 (its
/// line and the rule's then agree); the others are the alternatives it was chosen from.
#[test]
#[ignore]
fn interpolation_candidates() {
    let d = learn(&material(44_100), 2048);
    let m = material(48_000);
    let rule = d.mapped_to(48_000, 2048).unwrap();
    println!("Dictionary::mapped_to: {}", separate_with(&m, &rule));
    let r = 48_000.0 / 44_100.0;
    let last = d.n_bins() - 1;
    for variant in ["power", "magnitude", "log magnitude"] {
        let fwd = |v: f64| match variant {
            "power" => v * v,
            "magnitude" => v,
            _ => v.max(1e-30).ln(),
        };
        let inv = |v: f64| match variant {
            "power" => v.sqrt(),
            "magnitude" => v,
            _ => v.exp(),
        };
        let mut c = rule.clone();
        for k in 0..d.n_components() {
            let col: Vec<f64> = d.w.column(k).iter().map(|&v| f64::from(v)).collect();
            let level = f64::from(rule.w[[0, k]]) / col[0];
            for j in 0..c.n_bins() {
                let x = j as f64 * r;
                if x > last as f64 {
                    continue;
                }
                let i = (x.floor() as usize).min(last - 1);
                let t = x - i as f64;
                c.w[[j, k]] = (inv(fwd(col[i]) * (1.0 - t) + fwd(col[i + 1]) * t) * level) as f32;
            }
        }
        println!(
            "linear in {variant}, at the bin centre: {}",
            separate_with(&m, &c)
        );
    }
}
