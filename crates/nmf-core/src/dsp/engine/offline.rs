//! Offline drivers: the engine run over whole signals in blocks, as a host would. Used by
//! the CLI's `separate --realtime`, the tests and the benchmarks. These allocate; the engine
//! itself does not.

use super::live::LiveWorker;
use super::{Engine, MAX_SOURCES};

/// Runs `engine` over whole signals in blocks of `block` samples, as a host would, and
/// returns latency-compensated outputs of the input's length: `(main[channel],
/// sources[source][channel])`. Allocates (it is the offline driver).
pub fn run_offline(
    engine: &mut Engine,
    audio: &[Vec<f32>],
    block: usize,
) -> (Vec<Vec<f32>>, Vec<Vec<Vec<f32>>>) {
    let latency = engine.latency_samples();
    let (main, src) = process_in_blocks(engine, padded(audio, latency), block);
    latency_compensated(main, src, latency)
}

/// [`run_offline`] for an engine with a source learned live, with its `worker` run in audio
/// time: the engine goes one hop at a time and the worker takes the frames and refits after
/// every hop, so every template set applies exactly at the frame it is stamped for and the
/// output is the same on every run. Allocates (it is the offline driver).
pub fn run_offline_live(
    engine: &mut Engine,
    audio: &[Vec<f32>],
    worker: &mut LiveWorker,
) -> (Vec<Vec<f32>>, Vec<Vec<Vec<f32>>>) {
    let latency = engine.latency_samples();
    let hop = engine.hop;
    let (main, src) = drive(
        engine,
        padded(audio, latency),
        // Up to the next frame boundary of the stream.
        |e, start| start + hop - e.pos % hop,
        || {
            worker.poll();
        },
    );
    latency_compensated(main, src, latency)
}

/// Runs `engine` over whole signals `main[channel]` in blocks of `block` samples, as a host
/// would, without latency compensation: returns the main output (in place of the input) and
/// every source bus, `sources[source][channel]`. Allocates (it is an offline driver).
pub fn process_in_blocks(
    engine: &mut Engine,
    main: Vec<Vec<f32>>,
    block: usize,
) -> (Vec<Vec<f32>>, Vec<Vec<Vec<f32>>>) {
    let block = block.max(1);
    drive(engine, main, |_, start| start + block, || {})
}

/// The input with `latency` zeros appended to every channel, so the delayed output is whole.
fn padded(audio: &[Vec<f32>], latency: usize) -> Vec<Vec<f32>> {
    audio
        .iter()
        .map(|c| {
            let mut v = Vec::with_capacity(c.len() + latency);
            v.extend_from_slice(c);
            v.resize(c.len() + latency, 0.0);
            v
        })
        .collect()
}

/// Drops the first `latency` samples of every output, so they line up with the input.
fn latency_compensated(
    mut main: Vec<Vec<f32>>,
    mut src: Vec<Vec<Vec<f32>>>,
    latency: usize,
) -> (Vec<Vec<f32>>, Vec<Vec<Vec<f32>>>) {
    let cut = |v: &mut Vec<f32>| {
        v.drain(..latency);
    };
    main.iter_mut().for_each(cut);
    src.iter_mut().flatten().for_each(cut);
    (main, src)
}

/// The block loop of the drivers: `next_end(engine, start)` says where the block starting at
/// `start` ends (clamped to the signal), `after_block` runs after every `process` call.
fn drive(
    engine: &mut Engine,
    mut main: Vec<Vec<f32>>,
    mut next_end: impl FnMut(&Engine, usize) -> usize,
    mut after_block: impl FnMut(),
) -> (Vec<Vec<f32>>, Vec<Vec<Vec<f32>>>) {
    let total = main.first().map_or(0, |c| c.len());
    let mut src = vec![vec![vec![0.0f32; total]; main.len()]; MAX_SOURCES];
    let mut start = 0;
    while start < total {
        let end = next_end(engine, start).min(total);
        let mut m: Vec<&mut [f32]> = main.iter_mut().map(|c| &mut c[start..end]).collect();
        let mut buses: Vec<Vec<&mut [f32]>> = src
            .iter_mut()
            .map(|b| b.iter_mut().map(|c| &mut c[start..end]).collect())
            .collect();
        let mut bus_refs: Vec<&mut [&mut [f32]]> =
            buses.iter_mut().map(|b| b.as_mut_slice()).collect();
        engine.process(&mut m, &mut bus_refs);
        after_block();
        start = end;
    }
    (main, src)
}
