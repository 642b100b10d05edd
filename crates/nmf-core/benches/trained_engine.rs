//! Real-time engine throughput with a trained separator against plain NMF, in one run: stereo
//! 48 kHz, n_fft 2048, hop 512, 4 sources of 32 templates each (K = 128, the size `nmfsep
//! train` makes for 4 tonal sources with its defaults: twice K 16 per augmented source), host
//! blocks of 512 samples, 30 s of noise. Four engines, interleaved, best of `ENGINE_ROUNDS`
//! runs (default 5):
//! - `plain`: the dictionary alone (one Wiener mask per source for both channels);
//! - `trained`: the same dictionary with a spatial model (the multichannel Wiener filter);
//! - `trained + W~`: also with discriminative reconstruction templates (`--discriminative`);
//! - `trained, mono input`: the trained model on a mono engine (masks; the spatial model is
//!   not used), for reference.
//!
//! The solver is the default rule without its early exit (which fires on noise after one
//! iteration): every frame runs all of its iterations, the most the default can cost.
//! Prints, for each, the real-time factor (seconds of audio per second of wall time of one
//! thread) and the time relative to `plain`.
//! Run with `cargo bench -p nmf-core --bench trained_engine`.

use std::time::Instant;

use ndarray::Array2;
use nmf_core::dsp::engine::{Engine, EngineParams, MAX_SOURCES};
use nmf_core::nmf::{Dictionary, SolveRule, SpectrogramKind};
use nmf_core::trained::{realtime, SeparatorModel, SpatialCovariance};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use realfft::num_complex::Complex32;

fn model(rng: &mut Pcg64, spatial: bool) -> SeparatorModel {
    let (n_fft, k) = (2048, 128);
    let bins = n_fft / 2 + 1;
    let dict = Dictionary {
        w: Array2::from_shape_simple_fn((bins, k), || rng.gen::<f32>() + 0.01),
        sample_rate: 48_000,
        n_fft,
        hop: 512,
        beta: 1.0,
        spectrogram: SpectrogramKind::Magnitude,
        labels: (0..k).map(|i| format!("s{}", i / 32)).collect(),
    };
    let mut m = SeparatorModel::from_dictionary(dict);
    if spatial {
        m.spatial = Some(
            (0..4)
                .map(|_| {
                    let g = rng.gen::<f32>();
                    let a = Array2::from_shape_simple_fn((bins, 16), || {
                        Complex32::new(rng.gen::<f32>() - 0.5, rng.gen::<f32>() - 0.5)
                    });
                    let b = Array2::from_shape_simple_fn((bins, 16), || {
                        Complex32::new(rng.gen::<f32>() - 0.5, rng.gen::<f32>() - 0.5)
                    });
                    SpatialCovariance::estimate(&(a.mapv(|v| v * g) + &b.mapv(|v| v * 0.2)), &a)
                })
                .collect(),
        );
    }
    m
}

/// Seconds of wall time to run `input` through `engine` in blocks of `block`.
fn run(engine: &mut Engine, input: &[Vec<f32>], block: usize) -> f64 {
    let channels = input.len();
    let mut main = vec![vec![0.0f32; block]; channels];
    let mut src = vec![vec![vec![0.0f32; block]; channels]; MAX_SOURCES];
    let t = Instant::now();
    let mut start = 0;
    while start + block <= input[0].len() {
        for (m, x) in main.iter_mut().zip(input) {
            m.copy_from_slice(&x[start..start + block]);
        }
        let mut m: Vec<&mut [f32]> = main.iter_mut().map(|c| c.as_mut_slice()).collect();
        let mut buses: Vec<Vec<&mut [f32]>> = src
            .iter_mut()
            .map(|b| b.iter_mut().map(|c| c.as_mut_slice()).collect())
            .collect();
        let mut refs: Vec<&mut [&mut [f32]]> = buses.iter_mut().map(|b| b.as_mut_slice()).collect();
        engine.process(&mut m, &mut refs);
        start += block;
    }
    t.elapsed().as_secs_f64()
}

fn main() {
    let sr = 48_000.0f32;
    let block = 512;
    let rounds: usize = std::env::var("ENGINE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let mut rng = Pcg64::seed_from_u64(1);
    let plain = model(&mut rng, false);
    let mut trained = model(&mut Pcg64::seed_from_u64(1), true);
    trained.dictionary = plain.dictionary.clone();
    let params = EngineParams {
        solve_rule: SolveRule {
            tol: 0.0,
            ..SolveRule::default()
        },
        ..EngineParams::default()
    };
    let seconds = 30.0;
    let len = (seconds * sr) as usize;
    let stereo: Vec<Vec<f32>> = (0..2)
        .map(|_| (0..len).map(|_| rng.gen::<f32>() - 0.5).collect())
        .collect();
    let mono = vec![stereo[0].clone()];
    let mut discriminative = trained.clone();
    discriminative.reconstruction = Some(plain.dictionary.w.mapv(|w| w * rng.gen::<f32>()));
    let mut engines: Vec<(&str, Engine, &[Vec<f32>], &SeparatorModel)> = vec![
        ("plain", Engine::new(sr, 2), &stereo, &plain),
        ("trained", Engine::new(sr, 2), &stereo, &trained),
        ("trained + W~", Engine::new(sr, 2), &stereo, &discriminative),
        ("trained, mono input", Engine::new(sr, 1), &mono, &trained),
    ];
    for (_, e, input, m) in engines.iter_mut() {
        let prepared = realtime::prepare(m, input.len()).expect("valid model");
        assert_eq!(
            prepared.has_spatial(),
            input.len() == 2 && m.spatial.is_some()
        );
        e.set_dictionary(Some(Box::new(prepared)));
        e.set_params(&params);
    }
    let mut best = vec![f64::INFINITY; engines.len()];
    for _ in 0..rounds {
        for (b, (_, e, input, _)) in best.iter_mut().zip(engines.iter_mut()) {
            e.reset();
            *b = b.min(run(e, input, block));
        }
    }
    println!(
        "engine, stereo {sr} Hz, n_fft 2048, hop 512, K 128 over 4 sources, blocks of {block}, \
         {} iterations per frame ({} without early exit), {seconds} s, best of {rounds}:",
        params.iterations, params.solve_rule
    );
    for (b, (name, _, _, _)) in best.iter().zip(&engines) {
        println!(
            "  {name:<20} {:>7.1}x real time, {:.2}x the time of plain",
            seconds as f64 / b,
            b / best[0]
        );
    }
}
