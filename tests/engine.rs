//! The real-time engine over plain slices: latency, reconstruction, block-size independence,
//! reset, allocation-freedom, bad input and the host bypass.

use ndarray::Array2;
use nice_assert_no_alloc::assert_no_alloc;
use nmf_separator::dsp::engine::{
    process_in_blocks, run_offline, Engine, EngineParams, PreparedDictionary, BYPASS_FADE_S,
    MAX_SOURCES,
};
use nmf_separator::nmf::{Dictionary, SpectrogramKind};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

/// The allocation checker. With the `assert_process_allocs` feature nice-plug installs this
/// same allocator itself (and a second one would not link).
#[cfg(not(feature = "assert_process_allocs"))]
#[global_allocator]
static ALLOCATOR: nice_assert_no_alloc::AllocDisabler = nice_assert_no_alloc::AllocDisabler;

const SR: f32 = 44_100.0;

/// A random dictionary of `k` components spread over `sources` labels.
fn random_dictionary(n_fft: usize, k: usize, sources: usize, seed: u64) -> Dictionary {
    let mut rng = Pcg64::seed_from_u64(seed);
    let bins = n_fft / 2 + 1;
    Dictionary {
        w: Array2::from_shape_simple_fn((bins, k), || rng.gen::<f32>() + 0.01),
        sample_rate: SR as u32,
        n_fft,
        hop: n_fft / 4,
        beta: 1.0,
        spectrogram: SpectrogramKind::Magnitude,
        labels: (0..k).map(|i| format!("s{}", i % sources)).collect(),
    }
}

fn noise(channels: usize, len: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = Pcg64::seed_from_u64(seed);
    (0..channels)
        .map(|_| (0..len).map(|_| rng.gen::<f32>() * 2.0 - 1.0).collect())
        .collect()
}

fn engine_with(dict: Option<&Dictionary>, channels: usize) -> Engine {
    let mut e = Engine::new(SR, channels);
    if let Some(d) = dict {
        e.set_dictionary(Some(Box::new(PreparedDictionary::by_labels(d).unwrap())));
    }
    e
}

/// Runs without latency compensation: raw outputs as a host sees them.
fn run_raw(
    engine: &mut Engine,
    input: &[Vec<f32>],
    block: usize,
) -> (Vec<Vec<f32>>, Vec<Vec<Vec<f32>>>) {
    process_in_blocks(engine, input.to_vec(), block)
}

#[test]
fn impulse_comes_out_at_the_reported_latency() {
    for n_fft in [512, 2048, 4096] {
        let dict = random_dictionary(n_fft, 6, 3, 1);
        for d in [None, Some(&dict)] {
            let mut e = engine_with(d, 1);
            let latency = e.latency_samples();
            assert_eq!(latency, d.map_or(2048, |d| d.n_fft));
            let mut x = vec![0.0f32; 3 * latency + 1000];
            x[777] = 1.0;
            let (main, src) = run_raw(&mut e, &[x], 256);
            let peak = main[0].iter().enumerate().fold((0, 0.0f32), |b, (i, &v)| {
                if v.abs() > b.1 {
                    (i, v.abs())
                } else {
                    b
                }
            });
            assert_eq!(
                peak.0,
                777 + latency,
                "n_fft {n_fft}, dictionary {}",
                d.is_some()
            );
            assert!((main[0][777 + latency] - 1.0).abs() < 1e-4);
            let sum: f32 = (0..MAX_SOURCES).map(|s| src[s][0][777 + latency]).sum();
            assert!(
                (sum - 1.0).abs() < 1e-4,
                "sources sum to {sum} at the impulse"
            );
        }
    }
}

#[test]
fn sources_sum_to_the_delayed_input() {
    let dict = random_dictionary(2048, 12, 4, 2);
    let input = noise(2, 30_000, 3);
    let mut e = engine_with(Some(&dict), 2);
    let (main, src) = run_offline(&mut e, &input, 333);
    for c in 0..2 {
        let mut err = 0.0f32;
        for i in 0..input[c].len() {
            let sum: f32 = (0..MAX_SOURCES).map(|s| src[s][c][i]).sum();
            err = err
                .max((sum - input[c][i]).abs())
                .max((main[c][i] - input[c][i]).abs());
        }
        assert!(err < 1e-5, "channel {c}: max error {err}");
    }
    // The sources really differ from one another (the masks are not trivial).
    let energy = |s: usize| src[s][0].iter().map(|x| x * x).sum::<f32>();
    let total: f32 = input[0].iter().map(|x| x * x).sum();
    for s in 0..4 {
        assert!(
            energy(s) < 0.9 * total && energy(s) > 1e-4 * total,
            "source {s}: {} of {total}",
            energy(s)
        );
    }
}

/// The engine synthesizes every used source but the last, which it computes as the delayed
/// input minus the others. Swapping the assignment moves a group of components between the
/// two roles: its output must not change. The two channels share one complex FFT, so a
/// silent channel must stay silent next to a loud one.
#[test]
fn the_complement_source_equals_its_synthesis_and_channels_do_not_leak() {
    let dict = random_dictionary(2048, 8, 2, 13);
    let mut input = noise(2, 20_000, 14);
    input[1].iter_mut().for_each(|x| *x = 0.0);
    let run = |assignment: &[usize]| {
        let mut e = Engine::new(SR, 2);
        e.set_dictionary(Some(Box::new(
            PreparedDictionary::new(&dict, assignment).unwrap(),
        )));
        run_offline(&mut e, &input, 512).1
    };
    // Components alternate between the groups, as the labels of `random_dictionary` do.
    let first: Vec<usize> = (0..8).map(|k| k % 2).collect();
    let swapped: Vec<usize> = (0..8).map(|k| 1 - k % 2).collect();
    let (a, b) = (run(&first), run(&swapped));
    let peak = input[0].iter().fold(0.0f32, |m, x| m.max(x.abs()));
    for (synthesized, complement) in [(&a[0][0], &b[1][0]), (&b[0][0], &a[1][0])] {
        let err = synthesized
            .iter()
            .zip(complement)
            .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(
            err < 1e-5 * peak,
            "complement differs from synthesis by {err}"
        );
        let energy: f32 = synthesized.iter().map(|x| x * x).sum();
        assert!(energy > 1.0, "the group is silent");
    }
    let leak = a
        .iter()
        .chain(&b)
        .flat_map(|s| s[1].iter())
        .fold(0.0f32, |m, x| m.max(x.abs()));
    assert!(leak < 1e-5 * peak, "channel 1 is silent but outputs {leak}");
}

#[test]
fn output_does_not_depend_on_block_size_and_reset_reproduces_it() {
    let dict = random_dictionary(1024, 8, 2, 4);
    let input = noise(2, 12_000, 5);
    let mut reference = None;
    for block in [1, 37, 512, 4096] {
        let mut e = engine_with(Some(&dict), 2);
        let out = run_raw(&mut e, &input, block);
        match &reference {
            None => reference = Some(out),
            Some(r) => assert!(*r == out, "block size {block} changes the output"),
        }
    }
    let mut e = engine_with(Some(&dict), 2);
    let first = run_raw(&mut e, &input, 100);
    e.reset();
    let second = run_raw(&mut e, &input, 100);
    assert!(first == second, "reset does not reproduce the output");
    assert!(reference.unwrap() == first);
}

#[test]
fn mute_solo_and_gain_shape_the_main_output() {
    let dict = random_dictionary(1024, 8, 2, 6);
    let input = noise(1, 20_000, 7);
    let mut e = engine_with(Some(&dict), 1);
    let mut p = EngineParams::default();
    p.solo[1] = true;
    p.mute[1] = true; // solo wins over mute
    p.gain[1] = 0.5;
    e.set_params(&p);
    e.reset();
    let (main, src) = run_offline(&mut e, &input, 256);
    let err = main[0]
        .iter()
        .zip(&src[1][0])
        .map(|(m, s)| (m - 0.5 * s).abs())
        .fold(0.0f32, f32::max);
    assert!(err < 1e-6, "main is not half of source 2: {err}");
}

#[test]
fn processing_does_not_allocate() {
    let dict = random_dictionary(2048, 32, 4, 8);
    let mut e = engine_with(Some(&dict), 2);
    let mut main = noise(2, 4096, 9);
    let mut src = vec![vec![vec![0.0f32; 4096]; 2]; MAX_SOURCES];
    let mut m: Vec<&mut [f32]> = main.iter_mut().map(|c| c.as_mut_slice()).collect();
    let mut buses: Vec<Vec<&mut [f32]>> = src
        .iter_mut()
        .map(|b| b.iter_mut().map(|c| c.as_mut_slice()).collect())
        .collect();
    let mut refs: Vec<&mut [&mut [f32]]> = buses.iter_mut().map(|b| b.as_mut_slice()).collect();
    let params = EngineParams {
        iterations: 20,
        ..EngineParams::default()
    };
    let other =
        Box::new(PreparedDictionary::by_labels(&random_dictionary(4096, 8, 2, 10)).unwrap());
    let mut old = None;
    assert_no_alloc(|| {
        e.set_params(&params);
        for _ in 0..3 {
            e.process(&mut m, &mut refs);
        }
        old = e.set_dictionary(Some(other));
        e.process(&mut m, &mut refs);
        e.reset();
        e.process(&mut m, &mut refs);
    });
    assert!(old.is_some());
    assert_eq!(e.latency_samples(), 4096);
}

#[test]
fn bad_input_gives_finite_normal_output_and_recovers_within_one_window() {
    let dict = random_dictionary(2048, 8, 2, 11);
    let mut e = engine_with(Some(&dict), 1);
    let n = e.latency_samples();
    let mut x = noise(1, 6 * n, 12).remove(0);
    for (i, v) in x.iter_mut().enumerate().take(n) {
        *v = match i % 4 {
            0 => f32::NAN,
            1 => f32::INFINITY,
            2 => 1e-40,
            _ => f32::NEG_INFINITY,
        };
    }
    let (main, src) = run_raw(&mut e, &[x.clone()], 64);
    for v in main[0].iter().chain(src.iter().flatten().flatten()) {
        assert!(
            v.is_finite() && (*v == 0.0 || v.is_normal()),
            "bad output value {v}"
        );
    }
    // One window after the bad input ends, the main output is the delayed input again.
    let from = n + n; // first clean input sample is n; one window later
    for i in from..x.len() - n {
        assert!(
            (main[0][i + n] - x[i]).abs() < 1e-5,
            "sample {i}: {} vs {}",
            main[0][i + n],
            x[i]
        );
    }
    let energy: f32 = src[0][0][3 * n..].iter().map(|v| v * v).sum();
    assert!(energy > 0.0);
}

/// A block whose channels differ in length is refused, left as it came, and counted; the
/// next well-formed block is processed as usual.
#[test]
fn ragged_blocks_are_counted_and_left_untouched() {
    let dict = random_dictionary(1024, 8, 2, 12);
    let mut e = engine_with(Some(&dict), 2);
    assert_eq!(e.ragged_blocks(), 0);
    let (mut left, mut right) = (vec![0.25f32; 100], vec![0.5f32; 99]);
    let mut bus = vec![vec![-1.0f32; 100]; 2];
    {
        let mut main: Vec<&mut [f32]> = vec![&mut left, &mut right];
        let mut chans: Vec<&mut [f32]> = bus.iter_mut().map(|c| c.as_mut_slice()).collect();
        let mut buses: Vec<&mut [&mut [f32]]> = vec![chans.as_mut_slice()];
        e.process(&mut main, &mut buses);
    }
    assert_eq!(e.ragged_blocks(), 1);
    assert!(left.iter().all(|&x| x == 0.25) && right.iter().all(|&x| x == 0.5));
    assert!(bus.iter().flatten().all(|&x| x == -1.0));
    let _ = run_raw(&mut e, &noise(2, 3000, 13), 256);
    assert_eq!(e.ragged_blocks(), 1);
}

/// The engine takes its frame geometry from the dictionary, which the one frame rule
/// validated: no size can fall back to another.
#[test]
fn the_engine_refuses_a_dictionary_the_frame_rule_refuses() {
    let mut dict = random_dictionary(1024, 8, 2, 14);
    dict.hop = 200;
    assert!(PreparedDictionary::by_labels(&dict).is_err());
    dict.hop = 128;
    let mut e = engine_with(Some(&dict), 2);
    assert_eq!(e.latency_samples(), 1024);
    e.set_dictionary(None);
    assert_eq!(e.latency_samples(), 2048);
}

/// Runs `input` in blocks of `block` samples with `params_at(block start)` set before each
/// block, without latency compensation, checking that no block allocates.
fn run_with_params(
    engine: &mut Engine,
    input: &[Vec<f32>],
    block: usize,
    params_at: impl Fn(usize) -> EngineParams,
) -> (Vec<Vec<f32>>, Vec<Vec<Vec<f32>>>) {
    let len = input[0].len();
    let mut main = input.to_vec();
    let mut src = vec![vec![vec![0.0f32; len]; input.len()]; MAX_SOURCES];
    let mut start = 0;
    while start < len {
        let end = (start + block).min(len);
        let mut m: Vec<&mut [f32]> = main.iter_mut().map(|c| &mut c[start..end]).collect();
        let mut buses: Vec<Vec<&mut [f32]>> = src
            .iter_mut()
            .map(|b| b.iter_mut().map(|c| &mut c[start..end]).collect())
            .collect();
        let mut refs: Vec<&mut [&mut [f32]]> = buses.iter_mut().map(|b| b.as_mut_slice()).collect();
        let p = params_at(start);
        assert_no_alloc(|| {
            engine.set_params(&p);
            engine.process(&mut m, &mut refs);
        });
        start = end;
    }
    (main, src)
}

/// Bypassed, the main output is the input delayed by exactly the reported latency (the
/// dictionary's n_fft, not the default) and the buses are silent; the separation keeps
/// running underneath, so after un-bypassing (and the fade) the outputs are those of an engine
/// that was never bypassed.
#[test]
fn bypass_outputs_the_input_delayed_by_the_latency_and_resumes_exactly() {
    let dict = random_dictionary(4096, 8, 2, 15);
    let input = noise(2, 60_000, 16);
    let fade = (BYPASS_FADE_S * SR).round() as usize;
    let (on, off) = (10_000, 40_000);
    let bypass_at = |t: usize| EngineParams {
        bypass: (on..off).contains(&t),
        ..EngineParams::default()
    };
    let mut e = engine_with(Some(&dict), 2);
    let latency = e.latency_samples();
    assert_eq!(latency, 4096);
    let (main, src) = run_with_params(&mut e, &input, 250, bypass_at);
    let mut r = engine_with(Some(&dict), 2);
    let (ref_main, ref_src) = run_with_params(&mut r, &input, 250, |_| EngineParams::default());
    for c in 0..2 {
        // Fully bypassed: exactly the input of `latency` samples ago, silent buses.
        for t in on + fade + 1..off {
            assert_eq!(main[c][t], input[c][t - latency], "ch{c} sample {t}");
            for (s, bus) in src.iter().enumerate() {
                assert_eq!(bus[c][t], 0.0, "source {s} ch{c} sample {t} while bypassed");
            }
        }
        // Before the toggle and after the fade back: the engine that was never bypassed.
        for t in (0..on).chain(off + fade + 1..input[c].len()) {
            assert_eq!(main[c][t], ref_main[c][t], "ch{c} sample {t}");
            for s in 0..MAX_SOURCES {
                assert_eq!(
                    src[s][c][t], ref_src[s][c][t],
                    "source {s} ch{c} sample {t}"
                );
            }
        }
        // During the fades the buses are between silence and their processed value.
        let bus_energy: f32 = src[0][c][on..on + fade].iter().map(|x| x * x).sum();
        let ref_energy: f32 = ref_src[0][c][on..on + fade].iter().map(|x| x * x).sum();
        assert!(
            bus_energy > 0.05 * ref_energy && bus_energy < 0.95 * ref_energy,
            "ch{c}: bus energy {bus_energy} during the fade vs {ref_energy}"
        );
    }
}

/// A toggle crossfades over BYPASS_FADE_S: on a sine whose processed output is silent (its
/// source muted), bypassing ramps the delayed sine in and back out without a step larger than
/// the sine's own slope plus the ramp's; a switch without a fade would jump by up to the
/// amplitude.
#[test]
fn bypass_toggles_without_a_step() {
    let amp = 0.5f32;
    let f = 440.0f32;
    let len = 40_000;
    let x: Vec<f32> = (0..len)
        .map(|i| amp * (2.0 * std::f32::consts::PI * f * i as f32 / SR).sin())
        .collect();
    let fade = (BYPASS_FADE_S * SR).round() as usize;
    let (on, off) = (10_003, 25_117);
    let params_at = |t: usize| {
        let mut p = EngineParams {
            bypass: (on..off).contains(&t),
            ..EngineParams::default()
        };
        // Without a dictionary everything is source 1: muted, the processed main is silent.
        p.mute[0] = true;
        p
    };
    for block in [64, 997] {
        let mut e = Engine::new(SR, 1);
        e.set_params(&params_at(0));
        e.reset();
        let latency = e.latency_samples();
        let (main, _) = run_with_params(&mut e, std::slice::from_ref(&x), block, params_at);
        let y = &main[0];
        let slope = amp * 2.0 * std::f32::consts::PI * f / SR;
        let bound = 1.05 * (slope + amp / fade as f32);
        let step = y
            .windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .fold(0.0f32, f32::max);
        assert!(
            step <= bound,
            "block {block}: a step of {step} (bound {bound})"
        );
        // The toggles take effect at the block boundary at or after them, fade for
        // BYPASS_FADE_S, and reach the delayed sine and silence exactly.
        let start = on.next_multiple_of(block);
        let stop = off.next_multiple_of(block);
        assert!(
            y[..start].iter().all(|&v| v == 0.0),
            "block {block}: sound before the bypass"
        );
        let mid = start + fade / 2;
        assert!(
            (y[mid].abs() - 0.5 * x[mid - latency].abs()).abs() < 0.01,
            "block {block}: halfway through the fade {} vs {}",
            y[mid],
            x[mid - latency]
        );
        for t in start + fade + 1..stop {
            assert_eq!(y[t], x[t - latency], "block {block} sample {t}");
        }
        assert!(
            y[stop + fade + 1..].iter().all(|&v| v == 0.0),
            "block {block}: sound after"
        );
    }
}

/// A source learned live: the engine's frame work (exemplars, frame hand-over,
/// template swap) and the worker's refits allocate nothing; template sets arrive and are
/// applied; the outputs still add up to the delayed input; while frozen
/// ([`EngineParams::freeze`], blocks 20..40) no refit happens and W_free stays bit for bit,
/// and the learning resumes afterwards.
#[test]
fn live_rest_processing_does_not_allocate_and_sums_to_input() {
    use nmf_separator::dsp::engine::{live_pair, LiveOptions};
    let known = random_dictionary(2048, 8, 1, 21);
    let opts = LiveOptions {
        source: 1,
        period: 8,
        delay: 2,
        ..LiveOptions::default()
    };
    let (live, mut worker, w_free) = live_pair(known.w.view(), None, opts.clone()).unwrap();
    let kk = known.n_components();
    let (dict, assignment) = nmf_separator::dsp::engine::rest_dictionary(
        &known,
        &vec![0; kk],
        1,
        w_free.view(),
        live.exemplars(),
        "rest",
    );
    assert_eq!(
        assignment,
        (0..dict.n_components())
            .map(|i| usize::from(i >= kk))
            .collect::<Vec<_>>()
    );
    let prepared = PreparedDictionary::new(&dict, &assignment)
        .unwrap()
        .with_live(live)
        .unwrap();
    let mut e = Engine::new(SR, 2);
    e.set_dictionary(Some(Box::new(prepared)));
    const BLOCKS: usize = 60;
    let input = noise(2, BLOCKS * 512, 22);
    let mut main = input.clone();
    let mut src = vec![vec![vec![0.0f32; input[0].len()]; 2]; MAX_SOURCES];
    // Blocks of one hop, sliced beforehand (the slice vectors allocate); the engine and the
    // worker, polled after every block as the file driver does, run under assert_no_alloc.
    let mut block_main: Vec<Vec<&mut [f32]>> = (0..BLOCKS).map(|_| Vec::new()).collect();
    for c in main.iter_mut() {
        for (i, x) in c.chunks_mut(512).enumerate() {
            block_main[i].push(x);
        }
    }
    let mut block_src: Vec<Vec<Vec<&mut [f32]>>> = (0..BLOCKS)
        .map(|_| (0..MAX_SOURCES).map(|_| Vec::new()).collect())
        .collect();
    for (s, bus) in src.iter_mut().enumerate() {
        for c in bus.iter_mut() {
            for (i, x) in c.chunks_mut(512).enumerate() {
                block_src[i][s].push(x);
            }
        }
    }
    let mut block_refs: Vec<Vec<&mut [&mut [f32]]>> = block_src
        .iter_mut()
        .map(|b| b.iter_mut().map(|c| c.as_mut_slice()).collect())
        .collect();
    let mut refits = 0;
    let checksum = |w: ndarray::ArrayView2<f32>| {
        w.iter()
            .fold(0u64, |a, x| a.rotate_left(5) ^ u64::from(x.to_bits()))
    };
    let (mut at_freeze, mut at_thaw) = ((0, 0), (0, 0));
    assert_no_alloc(|| {
        for (i, (bm, bs)) in block_main.iter_mut().zip(block_refs.iter_mut()).enumerate() {
            if i == 20 || i == 40 {
                let now = (refits, checksum(worker.learner().w_free()));
                if i == 20 {
                    at_freeze = now;
                } else {
                    at_thaw = now;
                }
                e.set_params(&EngineParams {
                    freeze: i == 20,
                    ..EngineParams::default()
                });
            }
            e.process(bm, bs);
            refits += worker.poll();
        }
    });
    assert!(at_freeze.0 >= 2, "{} refits before the freeze", at_freeze.0);
    assert_eq!(at_thaw, at_freeze, "refits or W_free changed while frozen");
    assert!(refits > at_thaw.0, "no refit after the freeze ended");
    drop(block_refs);
    drop(block_src);
    drop(block_main);
    let src_out = src;
    assert!(refits >= 4, "only {refits} refits");
    let live = e.dictionary().unwrap().live().unwrap();
    assert!(
        live.applied() >= 3,
        "only {} template sets applied",
        live.applied()
    );
    assert_eq!(live.dropped_frames(), 0);
    // Sources add up to the input delayed by the latency.
    let lat = e.latency_samples();
    let mut err = 0.0f32;
    for c in 0..2 {
        for i in lat..input[0].len() {
            let sum = src_out[0][c][i] + src_out[1][c][i];
            err = err.max((sum - input[c][i - lat]).abs());
        }
    }
    assert!(err < 1e-4, "sources differ from the delayed input by {err}");
}
