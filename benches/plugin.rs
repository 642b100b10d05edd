//! Two figures of the plugin: how long learning a captured clip takes (10 s at 44.1 kHz,
//! K = 32, 200 iterations, as the trainer thread does it), and the memory of one instance
//! (48 kHz stereo, two 30 s capture buffers) at rest and at its peak while learning a full
//! 30 s capture. Memory is counted by a global allocator that tracks live and peak bytes of
//! every thread of the process. Run with `cargo bench --bench plugin`.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::thread_cpu_seconds;

use nmf_separator::dsp::engine::MAX_SOURCES;
use nmf_separator::dsp::{learn_dictionary, Stft};
use nmf_separator::nmf::{FitOptions, SpectrogramKind};
use nmf_separator::plugin::params::{CaptureTarget, SeparatorParams};
use nmf_separator::plugin::realtime::Controls;
use nmf_separator::plugin::status::Status;
use nmf_separator::plugin::trainer;
use nmfsep::audio::read_audio;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn learning_time() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/piano_bass/train");
    let piano = read_audio(&dir.join("piano.wav")).expect("example clip");
    let bass = read_audio(&dir.join("bass.wav")).expect("example clip");
    let sr = piano.sample_rate;
    let mut clip = piano.mono();
    clip.extend(bass.mono());
    clip.truncate(10 * sr as usize);
    let stft = Stft::new(2048, 512).expect("valid STFT");
    let opts = FitOptions {
        n_components: 32,
        beta: 1.0,
        max_iter: 200,
        tol: 0.0,
        ..FitOptions::default()
    };
    let (mut best_wall, mut best_cpu) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..3 {
        let (t, c) = (Instant::now(), thread_cpu_seconds());
        let (dict, fact) = learn_dictionary(
            &clip,
            sr,
            &stft,
            SpectrogramKind::Magnitude,
            &opts,
            "clip",
            &mut |_| ControlFlow::Continue(()),
        )
        .expect("learning works");
        best_wall = best_wall.min(t.elapsed().as_secs_f64());
        best_cpu = best_cpu.min(thread_cpu_seconds() - c);
        assert_eq!((dict.n_components(), fact.n_iter), (32, 200));
    }
    println!(
        "learn: {:.1} s clip at {sr} Hz (STFT 2048/512 + NMF K=32, beta 1, 200 iterations, NNDSVDa): {best_wall:.3} s wall, {best_cpu:.3} s CPU (best of 3)",
        clip.len() as f64 / f64::from(sr)
    );
}

fn instance_memory() {
    let sr = 48_000.0f32;
    let before = LIVE.load(Ordering::Relaxed);
    let params = Arc::new(SeparatorParams::default());
    let status = Arc::new(Status::default());
    let (mut rt, trainer) = trainer::start(params, status.clone(), sr, 2);
    let at_rest = LIVE.load(Ordering::Relaxed) - before;
    PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);

    // A full 30 s capture of noise, then learning it (default settings: 16 components).
    let block = 512;
    let mut left = vec![0.0f32; block];
    let mut right = vec![0.0f32; block];
    let mut src = vec![vec![vec![0.0f32; block]; 2]; MAX_SOURCES];
    let mut controls = Controls {
        capture: true,
        target: CaptureTarget::Source1,
        ..Controls::default()
    };
    let mut seed = 1u32;
    let blocks = (30.0 * sr) as usize / block;
    let learned = status.clips_learned.load(Ordering::Acquire);
    let t0 = Instant::now();
    for i in 0..blocks + 2000 {
        if i == blocks {
            controls.capture = false;
        }
        for (l, r) in left.iter_mut().zip(right.iter_mut()) {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            *l = (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
            *r = *l;
        }
        let mut main: [&mut [f32]; 2] = [&mut left, &mut right];
        let mut chans: Vec<Vec<&mut [f32]>> = src
            .iter_mut()
            .map(|b| b.iter_mut().map(|c| c.as_mut_slice()).collect())
            .collect();
        let mut buses: Vec<&mut [&mut [f32]]> =
            chans.iter_mut().map(|c| c.as_mut_slice()).collect();
        rt.process(&mut main, &mut buses, &controls);
        if i > blocks && status.clips_learned.load(Ordering::Acquire) > learned {
            break;
        }
        if i > blocks {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let learned_ok = status.clips_learned.load(Ordering::Acquire) > learned;
    let peak = PEAK.load(Ordering::Relaxed) - before;
    println!("memory of one instance (48 kHz stereo, two 30 s capture buffers, FFT plans 512..8192, engine buffers):");
    println!("  at rest after activation: {:.1} MiB", mib(at_rest));
    println!(
        "  peak while capturing 30 s and learning it (16 components, n_fft 2048): {:.1} MiB{} ({:.1} s)",
        mib(peak),
        if learned_ok { "" } else { " [learning did not finish in time]" },
        t0.elapsed().as_secs_f64()
    );
    drop(rt);
    drop(trainer);
}

fn main() {
    learning_time();
    instance_memory();
}
