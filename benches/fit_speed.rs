//! Offline fit speed on the reference job of `shared/bench/speed_ref.py`: the set-A mixes
//! (mono mean) concatenated and tiled to 180 s at 44.1 kHz, STFT Hann n_fft 2048 hop 512
//! centered -> 1025 x 15504 magnitude frames (+1e-9), NMF K=32, beta 1, 200 iterations,
//! tol 0, NNDSVDa; timed on one thread, then in the same run on a pool of 2 threads (the
//! fit's frame tiles shared out, `nmf::thread_pool`), with the speed ratio and the largest
//! difference of W between the two.
//!
//! `cargo bench --bench fit_speed` (env `FIT_SPEED_ITERS` overrides the iteration count,
//! `FIT_SPEED_REPEAT` the number of timed runs, best kept, `FIT_SPEED_BETA` the beta,
//! `FIT_SPEED_THREADS` the second thread count, 0 to skip it, `FIT_SPEED_CASES` the folder of
//! the bench cases, default `../shared/bench/cases` beside the repository). Prints one JSON
//! line: `fit_s` is the one-thread time, `isa` the kernels' instruction set, `same_bits`
//! whether W and H of the two thread counts are the same bits.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use nmf_separator::dsp::{spectrogram, Stft};
use nmf_separator::nmf::{fit, thread_pool, Factorization, FitOptions, Init};

const SR: u32 = 44_100;

fn read_mono(path: &Path) -> Vec<f32> {
    let mut reader = hound::WavReader::open(path).expect("readable wav");
    let spec = reader.spec();
    assert_eq!(spec.sample_rate, SR, "{}: sample rate", path.display());
    let ch = spec.channels as usize;
    let samples: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
            reader
                .samples::<i32>()
                .map(|s| s.expect("sample") as f32 * scale)
                .collect()
        }
        hound::SampleFormat::Float => reader
            .samples::<f32>()
            .map(|s| s.expect("sample"))
            .collect(),
    };
    samples
        .chunks_exact(ch)
        .map(|fr| fr.iter().sum::<f32>() / ch as f32)
        .collect()
}

fn main() {
    let cases = std::env::var_os("FIT_SPEED_CASES").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/bench/cases"),
        PathBuf::from,
    );
    let mut mixes: Vec<PathBuf> = match std::fs::read_dir(&cases) {
        Ok(dir) => dir
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("A_"))
            .map(|e| e.path().join("mix.wav"))
            .filter(|p| p.exists())
            .collect(),
        Err(_) => Vec::new(),
    };
    if mixes.is_empty() {
        println!(
            "fit_speed: no set-A mixes under {} (../shared missing); nothing to time",
            cases.display()
        );
        return;
    }
    mixes.sort();
    let mut x: Vec<f32> = mixes.iter().flat_map(|p| read_mono(p)).collect();
    let target = 180 * SR as usize;
    let one = x.clone();
    while x.len() < target {
        x.extend_from_slice(&one);
    }
    x.truncate(target);

    let stft = Stft::new(2048, 512).expect("stft");
    let mut v = spectrogram(&stft.forward(&x), 1.0);
    v.mapv_inplace(|m| m + 1e-9);
    let (n_bins, n_frames) = v.dim();

    let iters: usize = std::env::var("FIT_SPEED_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let repeat: usize = std::env::var("FIT_SPEED_REPEAT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
        .max(1);
    let beta: f32 = std::env::var("FIT_SPEED_BETA")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let k = 32;
    let opts = FitOptions {
        n_components: k,
        beta,
        max_iter: iters,
        tol: 0.0,
        seed: 0,
        init: Init::Nndsvda,
        sparsity: 0.0,
        cost_every: 10,
    };
    let mut cont = |_| ControlFlow::Continue(());

    // Initialization alone (the same NNDSVDa the timed fit runs first).
    let t = Instant::now();
    let _ = fit(
        v.view(),
        &FitOptions {
            max_iter: 0,
            ..opts.clone()
        },
        &mut cont,
    )
    .expect("init");
    let init_s = t.elapsed().as_secs_f64();

    let timed = |threads: usize| -> (f64, Factorization) {
        let mut best = f64::INFINITY;
        let mut last = None;
        let pool = thread_pool(threads).expect("thread pool");
        for _ in 0..repeat {
            let mut cont = |_| ControlFlow::Continue(());
            let t = Instant::now();
            let res = if threads == 1 {
                fit(v.view(), &opts, &mut cont).expect("fit")
            } else {
                pool.install(|| fit(v.view(), &opts, &mut cont).expect("fit"))
            };
            best = best.min(t.elapsed().as_secs_f64());
            last = Some(res);
        }
        (best, last.expect("at least one run"))
    };
    let (best, res) = timed(1);
    // ~4 GEMMs of 2 n_bins n_frames K flops per iteration (W H twice, W^T R, R H^T).
    let flops = 4.0 * 2.0 * (n_bins * n_frames * k) as f64 * iters as f64;
    let loop_s = (best - init_s).max(1e-9);
    let threads: usize = std::env::var("FIT_SPEED_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let mut extra = String::new();
    if threads > 1 {
        let (best_n, res_n) = timed(threads);
        // Largest difference of W relative to its largest entry, and elementwise (entries
        // above 1e-3 of the largest).
        let scale = res.w.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let (mut d_max, mut d_elem) = (0.0f32, 0.0f32);
        for (a, b) in res.w.iter().zip(&res_n.w) {
            d_max = d_max.max((a - b).abs());
            if a.abs() > 1e-3 * scale {
                d_elem = d_elem.max((a - b).abs() / a.abs());
            }
        }
        let loop_n = (best_n - init_s).max(1e-9);
        let bits = |a: &ndarray::Array2<f32>| a.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let same_bits = bits(&res.w) == bits(&res_n.w) && bits(&res.h) == bits(&res_n.h);
        extra = format!(
            ", \"threads\": {threads}, \"fit_s_threads\": {best_n:.3}, \"ratio_fit\": {:.3}, \"ratio_loop\": {:.3}, \"same_bits\": {same_bits}, \"w_rel_diff_max\": {:.3e}, \"w_rel_diff_elementwise\": {d_elem:.3e}, \"final_cost_threads\": {:.6e}",
            best / best_n,
            loop_s / loop_n,
            d_max / scale,
            res_n.cost.last().map(|c| c.cost).unwrap_or(f64::NAN),
        );
    }
    println!(
        "{{\"isa\": \"{:?}\", \"shape\": [{n_bins}, {n_frames}], \"k\": {k}, \"beta\": {beta}, \"iterations\": {}, \"fit_s\": {:.3}, \"init_s\": {:.3}, \"gflops_fit\": {:.1}, \"gflops_loop\": {:.1}, \"final_cost\": {:.6e}, \"repeat\": {repeat}{extra}}}",
        nmf_separator::simd::Isa::best().level(),
        res.n_iter,
        best,
        init_s,
        flops / best / 1e9,
        flops / loop_s / 1e9,
        res.cost.last().map(|c| c.cost).unwrap_or(f64::NAN),
    );
}
