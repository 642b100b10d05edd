//! Real-time engine throughput: stereo 48 kHz, n_fft 2048, hop 512, K = 32 components over 4
//! sources, 10 solver iterations per frame, host blocks of 512 samples.
//! Runs every per-frame solver rule (`ENGINE_SOLVERS`, default `warm+mu,flat+me`: the rule of
//! version 1 and today's default) interleaved, best of 5 runs each, and prints for each the
//! real-time factor (seconds of audio per second of one core), the share of a core it needs,
//! the time of the process() calls against their deadline, and its CPU time relative to the
//! first rule.
//! Run with `cargo bench --bench engine`; `ENGINE_ITERS` and `ENGINE_BLOCK` override the
//! iterations per frame and the block size.

mod common;

use std::time::Instant;

use common::thread_cpu_seconds;

use ndarray::Array2;
use nmf_separator::dsp::engine::{Engine, EngineParams, PreparedDictionary, MAX_SOURCES};
use nmf_separator::nmf::{Dictionary, SolveRule, SpectrogramKind};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

fn main() {
    let sr = 48_000.0f32;
    let (n_fft, k) = (2048usize, 32usize);
    let block: usize = std::env::var("ENGINE_BLOCK")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512);
    let mut rng = Pcg64::seed_from_u64(1);
    let dict = Dictionary {
        w: Array2::from_shape_simple_fn((n_fft / 2 + 1, k), || rng.gen::<f32>() + 0.01),
        sample_rate: sr as u32,
        n_fft,
        hop: n_fft / 4,
        beta: 1.0,
        spectrogram: SpectrogramKind::Magnitude,
        labels: (0..k).map(|i| format!("Source {}", i % 4 + 1)).collect(),
    };
    let mut engine = Engine::new(sr, 2);
    engine.set_dictionary(Some(Box::new(
        PreparedDictionary::by_labels(&dict).expect("valid dictionary"),
    )));
    let iterations: usize = std::env::var("ENGINE_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let rules: Vec<SolveRule> = std::env::var("ENGINE_SOLVERS")
        .unwrap_or_else(|_| "warm+mu,flat+me".into())
        .split(',')
        .map(|r| {
            r.parse()
                .expect("ENGINE_SOLVERS: comma-separated rules like flat+me")
        })
        .collect();

    let seconds = 60.0f32;
    let len = (seconds * sr) as usize;
    let input: Vec<Vec<f32>> = (0..2)
        .map(|_| (0..len).map(|_| rng.gen::<f32>() - 0.5).collect())
        .collect();
    let mut main = vec![vec![0.0f32; block]; 2];
    let mut src = vec![vec![vec![0.0f32; block]; 2]; MAX_SOURCES];

    let mut best = vec![f64::INFINITY; rules.len()];
    // Mean solver iterations per frame of each rule's last run.
    let mut frame_iters = vec![0.0f64; rules.len()];
    let mut best_cpu = vec![f64::INFINITY; rules.len()];
    // Wall time of every process() call of each rule's last run: the deadline is the block's
    // length.
    let mut calls: Vec<Vec<f64>> = vec![Vec::with_capacity(len / block); rules.len()];
    // Interleaved: run r of every rule before run r + 1 of any, so that a change of the
    // machine's load touches all rules alike.
    for _ in 0..5 {
        for (i, rule) in rules.iter().enumerate() {
            engine.set_params(&EngineParams {
                iterations,
                solve_rule: *rule,
                ..EngineParams::default()
            });
            calls[i].clear();
            engine.reset();
            let iters0 = engine.dictionary().map_or(0, |d| d.solver_iterations());
            let t = Instant::now();
            let cpu = thread_cpu_seconds();
            let mut start = 0;
            while start + block <= len {
                for c in 0..2 {
                    main[c].copy_from_slice(&input[c][start..start + block]);
                }
                let mut m: Vec<&mut [f32]> = main.iter_mut().map(|c| c.as_mut_slice()).collect();
                let mut buses: Vec<Vec<&mut [f32]>> = src
                    .iter_mut()
                    .map(|b| b.iter_mut().map(|c| c.as_mut_slice()).collect())
                    .collect();
                let mut refs: Vec<&mut [&mut [f32]]> =
                    buses.iter_mut().map(|b| b.as_mut_slice()).collect();
                let call = Instant::now();
                engine.process(&mut m, &mut refs);
                calls[i].push(call.elapsed().as_secs_f64());
                start += block;
            }
            let run_iters = engine.dictionary().map_or(0, |d| d.solver_iterations()) - iters0;
            frame_iters[i] = run_iters as f64 / (len / (n_fft / 4)) as f64;
            best[i] = best[i].min(t.elapsed().as_secs_f64());
            best_cpu[i] = best_cpu[i].min(thread_cpu_seconds() - cpu);
        }
    }
    let audio_s = (len / block * block) as f64 / f64::from(sr);
    println!("engine: stereo {sr} Hz, n_fft {n_fft}, hop {}, K {k}, 4 sources, {iterations} iterations/frame, blocks of {block}", n_fft / 4);
    for (i, rule) in rules.iter().enumerate() {
        println!(
            "solver {rule}: {audio_s:.1} s of audio in {:.3} s wall, {:.3} s CPU of this thread (best of 5), {:.2} iterations/frame on average",
            best[i], best_cpu[i], frame_iters[i]
        );
        println!(
            "  {:.0}x real time ({:.3}% of one core) by CPU time; {:.0}x by wall time; CPU {:.3}x that of {}",
            audio_s / best_cpu[i],
            100.0 * best_cpu[i] / audio_s,
            audio_s / best[i],
            best_cpu[i] / best_cpu[0],
            rules[0]
        );
        let c = &mut calls[i];
        c.sort_by(f64::total_cmp);
        let at = |q: f64| c[((c.len() - 1) as f64 * q) as usize] * 1e6;
        let deadline = block as f64 / f64::from(sr) * 1e6;
        println!(
            "  per process() call of {block} samples ({deadline:.0} us of audio), last run: median {:.1} us, 99.9% {:.1} us, max {:.1} us",
            at(0.5),
            at(0.999),
            at(1.0)
        );
    }
}
