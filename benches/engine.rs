//! Real-time engine throughput: stereo 48 kHz, n_fft 2048, hop 512, K = 32 components over 4
//! sources, host blocks of 512 samples.
//! Runs every per-frame solver rule (`ENGINE_SOLVERS`, default
//! `warm+mu/10,flat+me/10,flat+me+screen:0.01@0.07/16`: the rule of version 1, the first
//! first flat+me default and today's default, each with its iterations per frame) interleaved, best of `ENGINE_ROUNDS` runs each (default 5),
//! and prints for each the real-time factor (seconds of audio per second of one core), the
//! share of a core it needs, the time of the process() calls against their deadline, and its
//! CPU time relative to the first rule.
//! Then, in the same rounds, the engine with a source learned live : 16 known
//! components on source 1 and a rest source on source 2 with 16 learned templates and the
//! default exemplars (`LiveOptions::default()`), its `LiveWorker` polled on the same thread
//! after every block as the file driver does (`run_offline_live`), under the default solver
//! rule without its early exit (on white noise it fires for the supervised engine, not the
//! live one). Beside it, the supervised engine with 32 fixed components on 2 sources (16 + 16), the
//! same buses as the live run. It prints the audio thread's CPU (the blocks' CPU minus the
//! worker's) relative to both supervised engines under that rule, and the worker's CPU as a
//! share of one core at real-time rate. The worker is timed by the thread's CPU clock around
//! every poll (two clock reads per block, counted in the worker's time).
//! Run with `cargo bench --bench engine`; `ENGINE_ITERS` and `ENGINE_BLOCK` override the
//! iterations per frame and the block size, `ENGINE_ROUNDS` the number of interleaved runs
//! (5 by default) whose best counts. A rule of `ENGINE_SOLVERS` may carry its own
//! iteration count as `RULE/N` (e.g. `warm+mu,flat+me@0.07/16`: an early exit with at most
//! 16 iterations beside version 1's 10). With `ENGINE_INPUT` (an audio file) and
//! `ENGINE_DICTIONARIES` (its sources' `.npz` dictionaries, comma-separated) it also runs
//! every rule on that material, where an early exit's iteration count is that of music.

mod common;

use std::path::Path;
use std::time::Instant;

use common::thread_cpu_seconds;

use ndarray::Array2;
use nmf_separator::dsp::engine::{
    live_pair, Engine, EngineParams, LiveOptions, LiveWorker, PreparedDictionary, MAX_SOURCES,
};
use nmf_separator::nmf::dictionary::source_label;
use nmf_separator::nmf::{Dictionary, SolveRule, SpectrogramKind};
use nmfsep::audio::read_audio;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

/// A random dictionary of `k` components (n_bins x k, entries in [0.01, 1.01)) whose labels
/// spread the components over `sources` buses in turn.
fn random_dictionary(rng: &mut Pcg64, n_fft: usize, k: usize, sources: usize) -> Dictionary {
    Dictionary {
        w: Array2::from_shape_simple_fn((n_fft / 2 + 1, k), || rng.gen::<f32>() + 0.01),
        sample_rate: 48_000,
        n_fft,
        hop: n_fft / 4,
        beta: 1.0,
        spectrogram: SpectrogramKind::Magnitude,
        labels: (0..k)
            .map(|i| format!("Source {}", i % sources + 1))
            .collect(),
    }
}

/// An engine whose source 2 is learned live next to `known` (all on source 1), laid out as
/// `separate --realtime --rest` does: `[known | learned | exemplars]`; and its worker.
fn live_engine(known: &Dictionary, sr: f32, params: &EngineParams) -> (Engine, LiveWorker) {
    let opts = LiveOptions::default();
    let (live, worker, w_free) =
        live_pair(known.w.view(), None, opts.clone()).expect("valid live source");
    let (bins, kk) = known.w.dim();
    let k = kk + opts.learner.n_free + live.exemplars();
    let mut w = Array2::<f32>::from_elem((bins, k), 1.0 / bins as f32);
    w.slice_mut(ndarray::s![.., ..kk]).assign(&known.w);
    w.slice_mut(ndarray::s![.., kk..kk + opts.learner.n_free])
        .assign(&w_free);
    let dict = Dictionary {
        w,
        labels: (0..k)
            .map(|i| if i < kk { "known" } else { "rest" }.to_string())
            .collect(),
        ..known.clone()
    };
    let assignment: Vec<usize> = (0..k).map(|i| usize::from(i >= kk)).collect();
    let prepared = PreparedDictionary::new(&dict, &assignment)
        .expect("valid dictionary")
        .with_live(live)
        .expect("live layout");
    let mut engine = Engine::new(sr, 2);
    engine.set_dictionary(Some(Box::new(prepared)));
    engine.set_params(params);
    engine.reset();
    (engine, worker)
}

/// One timed run of `engine` over `input` in blocks of `block`, with `worker` polled after
/// every block: wall seconds, CPU seconds of this thread for everything, CPU seconds of the
/// polls, solver iterations, and the wall time of every process() call into `calls`.
fn run(
    engine: &mut Engine,
    mut worker: Option<&mut LiveWorker>,
    input: &[Vec<f32>],
    block: usize,
    calls: &mut Vec<f64>,
) -> (f64, f64, f64, u64) {
    let (len, channels) = (input[0].len(), input.len());
    let mut main = vec![vec![0.0f32; block]; channels];
    let mut src = vec![vec![vec![0.0f32; block]; channels]; MAX_SOURCES];
    calls.clear();
    let iters0 = engine.dictionary().map_or(0, |d| d.solver_iterations());
    let mut worker_cpu = 0.0;
    let t = Instant::now();
    let cpu = thread_cpu_seconds();
    let mut start = 0;
    while start + block <= len {
        for (m, x) in main.iter_mut().zip(input) {
            m.copy_from_slice(&x[start..start + block]);
        }
        let mut m: Vec<&mut [f32]> = main.iter_mut().map(|c| c.as_mut_slice()).collect();
        let mut buses: Vec<Vec<&mut [f32]>> = src
            .iter_mut()
            .map(|b| b.iter_mut().map(|c| c.as_mut_slice()).collect())
            .collect();
        let mut refs: Vec<&mut [&mut [f32]]> = buses.iter_mut().map(|b| b.as_mut_slice()).collect();
        let call = Instant::now();
        engine.process(&mut m, &mut refs);
        calls.push(call.elapsed().as_secs_f64());
        if let Some(w) = worker.as_deref_mut() {
            let c0 = thread_cpu_seconds();
            w.poll();
            worker_cpu += thread_cpu_seconds() - c0;
        }
        start += block;
    }
    let iters = engine.dictionary().map_or(0, |d| d.solver_iterations()) - iters0;
    (
        t.elapsed().as_secs_f64(),
        thread_cpu_seconds() - cpu,
        worker_cpu,
        iters,
    )
}

/// Median, 99.9 % and largest of `calls` (seconds), microseconds.
fn call_quantiles(calls: &mut [f64]) -> (f64, f64, f64) {
    calls.sort_by(f64::total_cmp);
    let at = |q: f64| calls[((calls.len() - 1) as f64 * q) as usize] * 1e6;
    (at(0.5), at(0.999), at(1.0))
}

/// The rules of `ENGINE_SOLVERS` on real material (an early exit's cost depends on
/// the signal, and the noise above makes it exit after one iteration): `ENGINE_INPUT`, an audio
/// file, separated with the dictionaries of `ENGINE_DICTIONARIES` (comma-separated `.npz`
/// files, one source each, in bus order) in blocks of `block` samples, best of `rounds` interleaved
/// runs of every rule. Prints each rule's real-time factor, its mean iterations per frame and
/// its CPU time relative to the first rule. Does nothing unless both variables are set.
fn music(rules: &[(SolveRule, usize, String)], block: usize, rounds: usize) {
    let (Ok(input), Ok(dicts)) = (
        std::env::var("ENGINE_INPUT"),
        std::env::var("ENGINE_DICTIONARIES"),
    ) else {
        return;
    };
    let audio = read_audio(Path::new(&input)).expect("ENGINE_INPUT: an audio file");
    let dicts: Vec<Dictionary> = dicts
        .split(',')
        .enumerate()
        .map(|(s, p)| {
            let mut d = Dictionary::load(Path::new(p)).expect("ENGINE_DICTIONARIES: .npz files");
            d.labels.iter_mut().for_each(|l| *l = source_label(s));
            d
        })
        .collect();
    let dict = Dictionary::concat(&dicts).expect("compatible dictionaries");
    let sr = audio.sample_rate as f32;
    let mut engine = Engine::new(sr, audio.n_channels());
    engine.set_dictionary(Some(Box::new(
        PreparedDictionary::by_labels(&dict).expect("valid dictionary"),
    )));
    let len = audio.len();
    let frames = (len / dict.hop) as f64;
    let mut best_cpu = vec![f64::INFINITY; rules.len()];
    let mut frame_iters = vec![0.0f64; rules.len()];
    let mut calls = Vec::with_capacity(len / block);
    for _ in 0..rounds {
        for (i, (rule, iters, _)) in rules.iter().enumerate() {
            engine.set_params(&EngineParams {
                iterations: *iters,
                solve_rule: *rule,
                ..EngineParams::default()
            });
            engine.reset();
            let (_, cpu, _, run_iters) = run(&mut engine, None, &audio.channels, block, &mut calls);
            frame_iters[i] = run_iters as f64 / frames;
            best_cpu[i] = best_cpu[i].min(cpu);
        }
    }
    let audio_s = (len / block * block) as f64 / f64::from(sr);
    println!(
        "on {input}: {} channel(s), {sr} Hz, {audio_s:.1} s, n_fft {}, hop {}, K {} over {} sources, blocks of {block}",
        audio.n_channels(),
        dict.n_fft,
        dict.hop,
        dict.n_components(),
        dicts.len()
    );
    for (i, (_, iters, rule)) in rules.iter().enumerate() {
        println!(
            "  solver {rule} (at most {iters} iterations): {:.0}x real time by CPU time (best of {rounds}), {:.2} iterations/frame on average, CPU {:.3}x that of {}",
            audio_s / best_cpu[i],
            frame_iters[i],
            best_cpu[i] / best_cpu[0],
            rules[0].2
        );
    }
}

fn main() {
    let sr = 48_000.0f32;
    let (n_fft, k) = (2048usize, 32usize);
    let block: usize = std::env::var("ENGINE_BLOCK")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512);
    let rounds: usize = std::env::var("ENGINE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let mut rng = Pcg64::seed_from_u64(1);
    let dict = random_dictionary(&mut rng, n_fft, k, 4);
    let mut engine = Engine::new(sr, 2);
    engine.set_dictionary(Some(Box::new(
        PreparedDictionary::by_labels(&dict).expect("valid dictionary"),
    )));
    let iterations: usize = std::env::var("ENGINE_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(SolveRule::DEFAULT_ITERATIONS);
    // (rule, iterations per frame, its text as given)
    let rules: Vec<(SolveRule, usize, String)> = std::env::var("ENGINE_SOLVERS")
        .unwrap_or_else(|_| {
            format!(
                "{}/10,{}/10,{}/{}",
                SolveRule::WARM_MU,
                SolveRule::FLAT_ME,
                SolveRule::default(),
                SolveRule::DEFAULT_ITERATIONS
            )
        })
        .split(',')
        .map(|r| {
            let (rule, iters) = match r.split_once('/') {
                Some((rule, n)) => (
                    rule,
                    n.parse().expect("ENGINE_SOLVERS: RULE/N, N iterations"),
                ),
                None => (r, iterations),
            };
            let parsed = rule
                .parse()
                .expect("ENGINE_SOLVERS: comma-separated rules like flat+me");
            (parsed, iters, r.to_string())
        })
        .collect();

    let seconds = 60.0f32;
    let len = (seconds * sr) as usize;
    let input: Vec<Vec<f32>> = (0..2)
        .map(|_| (0..len).map(|_| rng.gen::<f32>() - 0.5).collect())
        .collect();

    // The live setup: 16 known components, the default rule without its early exit,
    // on both sides: on this white noise the supervised engine exits after one iteration and
    // the live one does not, which would set 1 iteration against 16. Every iteration runs, the
    // most the default can cost.
    let live_params = EngineParams {
        iterations,
        solve_rule: SolveRule {
            tol: 0.0,
            ..SolveRule::default()
        },
        ..EngineParams::default()
    };
    let known = random_dictionary(&mut rng, n_fft, 16, 1);
    let pair = random_dictionary(&mut rng, n_fft, 32, 2);
    let mut pair_engine = Engine::new(sr, 2);
    pair_engine.set_dictionary(Some(Box::new(
        PreparedDictionary::by_labels(&pair).expect("valid dictionary"),
    )));
    pair_engine.set_params(&live_params);
    let (mut best_pair, mut best_pair_cpu) = (f64::INFINITY, f64::INFINITY);
    let mut pair_calls = Vec::with_capacity(len / block);
    // Best of the rounds of the audio thread's CPU (blocks minus polls) and, separately, of the
    // worker's; the applied template sets and dropped frames of the last run.
    let (mut best_live, mut best_live_cpu, mut best_worker_cpu) =
        (f64::INFINITY, f64::INFINITY, f64::INFINITY);
    let mut live_calls = Vec::with_capacity(len / block);
    let (mut refits, mut applied, mut dropped, mut live_iters) = (0u64, 0u64, 0u64, 0u64);

    let mut best = vec![f64::INFINITY; rules.len()];
    // Mean solver iterations per frame of each rule's last run.
    let mut frame_iters = vec![0.0f64; rules.len()];
    let mut best_cpu = vec![f64::INFINITY; rules.len()];
    // Wall time of every process() call of each rule's last run: the deadline is the block's
    // length.
    let mut calls: Vec<Vec<f64>> = vec![Vec::with_capacity(len / block); rules.len()];
    // Interleaved: run r of every rule (and setup) before run r + 1 of any, so that a change
    // of the machine's load touches all alike.
    for _ in 0..rounds {
        for (i, (rule, rule_iters, _)) in rules.iter().enumerate() {
            engine.set_params(&EngineParams {
                iterations: *rule_iters,
                solve_rule: *rule,
                ..EngineParams::default()
            });
            engine.reset();
            let (wall, cpu, _, run_iters) = run(&mut engine, None, &input, block, &mut calls[i]);
            frame_iters[i] = run_iters as f64 / (len / (n_fft / 4)) as f64;
            best[i] = best[i].min(wall);
            best_cpu[i] = best_cpu[i].min(cpu);
        }
        pair_engine.reset();
        let (wall, cpu, _, _) = run(&mut pair_engine, None, &input, block, &mut pair_calls);
        best_pair = best_pair.min(wall);
        best_pair_cpu = best_pair_cpu.min(cpu);
        // A fresh live source every run (built outside the timing), so that every run does
        // the same work from an empty window.
        let (mut live, mut worker) = live_engine(&known, sr, &live_params);
        let refits0 = worker.learner().refits();
        let (wall, cpu, worker_cpu, iters) =
            run(&mut live, Some(&mut worker), &input, block, &mut live_calls);
        best_live = best_live.min(wall);
        best_live_cpu = best_live_cpu.min(cpu - worker_cpu);
        best_worker_cpu = best_worker_cpu.min(worker_cpu);
        refits = worker.learner().refits() - refits0;
        let l = live.dictionary().and_then(|d| d.live()).expect("live");
        (applied, dropped, live_iters) = (l.applied(), l.dropped_frames(), iters);
    }
    let audio_s = (len / block * block) as f64 / f64::from(sr);
    let deadline = block as f64 / f64::from(sr) * 1e6;
    println!("engine: stereo {sr} Hz, n_fft {n_fft}, hop {}, K {k}, 4 sources, white noise, {iterations} iterations/frame unless a rule gives its own, blocks of {block}", n_fft / 4);
    for (i, (_, iters, rule)) in rules.iter().enumerate() {
        println!(
            "solver {rule} (at most {iters} iterations): {audio_s:.1} s of audio in {:.3} s wall, {:.3} s CPU of this thread (best of {rounds}), {:.2} iterations/frame on average",
            best[i], best_cpu[i], frame_iters[i]
        );
        println!(
            "  {:.0}x real time ({:.3}% of one core) by CPU time; {:.0}x by wall time; CPU {:.3}x that of {}",
            audio_s / best_cpu[i],
            100.0 * best_cpu[i] / audio_s,
            audio_s / best[i],
            best_cpu[i] / best_cpu[0],
            rules[0].2
        );
        let (med, q999, max) = call_quantiles(&mut calls[i]);
        println!(
            "  per process() call of {block} samples ({deadline:.0} us of audio), last run: median {med:.1} us, 99.9% {q999:.1} us, max {max:.1} us"
        );
    }

    let live_rule = live_params.solve_rule;
    let opts = LiveOptions::default();
    println!(
        "live rest: solver {live_rule}, {iterations} iterations/frame; 16 known components on source 1, rest on source 2 with {} learned + {} exemplar templates (K {}); worker window {}, {} iterations every {} frames",
        opts.learner.n_free,
        opts.exemplars,
        16 + opts.learner.n_free + opts.exemplars,
        opts.learner.window,
        opts.learner.refit_iters,
        opts.period
    );
    println!(
        "  supervised, K 32 on 2 sources: {audio_s:.1} s of audio in {best_pair:.3} s wall, {best_pair_cpu:.3} s CPU (best of {rounds})"
    );
    let sup4 = rules
        .iter()
        .position(|(r, n, _)| *r == live_rule && *n == iterations)
        .map(|i| best_cpu[i]);
    println!(
        "  live audio thread: {audio_s:.1} s of audio in {best_live:.3} s wall (worker included), {best_live_cpu:.3} s CPU without the worker (best of {rounds}), {:.2} iterations/frame on average",
        live_iters as f64 / (len / (n_fft / 4)) as f64
    );
    println!(
        "  audio thread CPU {:.3}x that of the supervised engine with K 32 on 2 sources{} (target <= 1.5x)",
        best_live_cpu / best_pair_cpu,
        sup4.map_or_else(String::new, |c| format!(
            ", {:.3}x that with K 32 on 4 sources",
            best_live_cpu / c
        ))
    );
    let (med, q999, max) = call_quantiles(&mut live_calls);
    println!(
        "  per process() call of {block} samples ({deadline:.0} us of audio), last run: median {med:.1} us, 99.9% {q999:.1} us, max {max:.1} us"
    );
    println!(
        "  worker (LiveWorker::poll after every block): {best_worker_cpu:.3} s CPU for {audio_s:.1} s of audio (best of {rounds}) = {:.3}% of one core at real-time rate (target <= 5%); {refits} refits, {:.2} ms CPU per refit (all polls over refits); {applied} template sets applied, {dropped} frames dropped",
        100.0 * best_worker_cpu / audio_s,
        1e3 * best_worker_cpu / refits.max(1) as f64
    );
    music(&rules, block, rounds);
}
