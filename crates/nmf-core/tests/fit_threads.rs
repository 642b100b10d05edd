//! The fit over several threads (run in a pool from `thread_pool`): the same bits for the
//! same number of threads, and for any number >= 2 (the tiles' chunks and their summing
//! order depend on the number of frames only); within 1e-5 relative of the one-thread fit;
//! a pool of one thread runs the one-thread fit itself.
//!
//! The data are of rank [`RANK`] and the fits have as many components, so that the
//! factorization is well determined: with more components than the data support, the free
//! directions let float rounding (the only difference between the thread counts) drift
//! further apart over the iterations.

use std::ops::ControlFlow;

use ndarray::Array2;
use nmf_core::nmf::{
    fit, fit_activations, fit_semi, thread_pool, ActivationOptions, Factorization, FitOptions,
    Init, Progress, SemiOptions,
};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

/// Largest difference from the one-thread fit, relative to the largest entry.
const TOLERANCE: f32 = 1e-5;

fn go(_: Progress) -> ControlFlow<()> {
    ControlFlow::Continue(())
}

/// Rank of the test data, and components of the fits.
const RANK: usize = 6;

/// A rank-[`RANK`] non-negative spectrogram-like matrix (n_bins x n_frames) plus a little
/// noise.
fn low_rank(n_bins: usize, n_frames: usize, seed: u64) -> Array2<f32> {
    let mut rng = Pcg64::seed_from_u64(seed);
    let w = Array2::from_shape_simple_fn((n_bins, RANK), || rng.gen::<f32>().powi(3));
    let h = Array2::from_shape_simple_fn((RANK, n_frames), || rng.gen::<f32>().powi(2));
    w.dot(&h).mapv(|x| x + 0.01 * rng.gen::<f32>())
}

fn opts(beta: f32, sparsity: f32) -> FitOptions {
    FitOptions {
        n_components: RANK,
        beta,
        max_iter: 60,
        tol: 0.0,
        seed: 3,
        init: Init::Nndsvda,
        sparsity,
        cost_every: 10,
    }
}

/// `job` in a fresh pool of `threads` threads.
fn in_pool<T: Send>(threads: usize, job: impl FnOnce() -> T + Send) -> T {
    thread_pool(threads).expect("pool").install(job)
}

/// max |a - b| / max |a|.
fn rel_diff(a: &Array2<f32>, b: &Array2<f32>) -> f32 {
    assert_eq!(a.dim(), b.dim());
    let scale = a.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let diff = a
        .iter()
        .zip(b)
        .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
    diff / scale
}

fn bits(a: &Array2<f32>) -> Vec<u32> {
    a.iter().map(|x| x.to_bits()).collect()
}

fn assert_same_bits(a: &Factorization, b: &Factorization, what: &str) {
    assert!(bits(&a.w) == bits(&b.w), "{what}: W differs");
    assert!(bits(&a.h) == bits(&b.h), "{what}: H differs");
    assert_eq!(a.cost, b.cost, "{what}: cost history differs");
}

#[test]
fn fit_agrees_across_thread_counts() {
    // 1000 frames: 21 tiles of 48 frames, in 21 chunks of one tile.
    // 2000 frames: 42 tiles, cut into 21 chunks of two.
    for (n_frames, beta, sparsity) in [(1000, 1.0, 0.0), (2000, 0.5, 0.0), (1000, 1.0, 0.2)] {
        let v = low_rank(257, n_frames, 11);
        let o = opts(beta, sparsity);
        let what = format!("{n_frames} frames, beta {beta}, sparsity {sparsity}");
        let serial = fit(v.view(), &o, &mut go).unwrap();
        let one = in_pool(1, || fit(v.view(), &o, &mut go).unwrap());
        assert_same_bits(&serial, &one, &format!("{what}, pool of 1 vs none"));
        let two = in_pool(2, || fit(v.view(), &o, &mut go).unwrap());
        let two_again = in_pool(2, || fit(v.view(), &o, &mut go).unwrap());
        let three = in_pool(3, || fit(v.view(), &o, &mut go).unwrap());
        assert_same_bits(&two, &two_again, &format!("{what}, 2 threads twice"));
        assert_same_bits(&two, &three, &format!("{what}, 2 vs 3 threads"));
        for (m, a, b) in [("W", &serial.w, &two.w), ("H", &serial.h, &two.h)] {
            let d = rel_diff(a, b);
            println!("{what}: {m} 1 vs 2 threads, relative difference {d:.2e}");
            assert!(d <= TOLERANCE, "{what}: {m} differs by {d:e} relative");
        }
        // The last costs agree as closely.
        let (c1, c2) = (serial.cost.last().unwrap(), two.cost.last().unwrap());
        assert!(((c1.cost - c2.cost) / c1.cost).abs() < 1e-5, "{what}: cost");
    }
}

#[test]
fn activations_are_the_same_bits_on_any_thread_count() {
    // With W fixed nothing is summed across tiles: every thread count gives the same H.
    let v = low_rank(257, 1500, 12);
    let w = fit(v.view(), &opts(1.0, 0.0), &mut go).unwrap().w;
    let a = ActivationOptions {
        max_iter: 40,
        ..ActivationOptions::default()
    };
    let (h1, c1) = fit_activations(v.view(), w.view(), &a).unwrap();
    let (h2, c2) = in_pool(2, || fit_activations(v.view(), w.view(), &a).unwrap());
    assert!(bits(&h1) == bits(&h2));
    assert_eq!(c1, c2);
}

#[test]
fn semi_supervised_fit_agrees_across_thread_counts() {
    let v = low_rank(257, 1200, 13);
    let known = fit(v.view(), &opts(1.0, 0.0), &mut go).unwrap().w;
    let known = known.slice(ndarray::s![.., ..3]).to_owned();
    let o = SemiOptions {
        n_free: RANK - 3,
        max_iter: 40,
        ..SemiOptions::default()
    };
    let one = fit_semi(v.view(), known.view(), None, &o, &mut go).unwrap();
    let two = in_pool(2, || {
        fit_semi(v.view(), known.view(), None, &o, &mut go).unwrap()
    });
    let three = in_pool(3, || {
        fit_semi(v.view(), known.view(), None, &o, &mut go).unwrap()
    });
    assert!(bits(&two.w) == bits(&three.w) && bits(&two.h) == bits(&three.h));
    assert!(bits(&one.w.slice(ndarray::s![.., ..3]).to_owned()) == bits(&known));
    for (m, a, b) in [("W", &one.w, &two.w), ("H", &one.h, &two.h)] {
        let d = rel_diff(a, b);
        println!("semi: {m} 1 vs 2 threads, relative difference {d:.2e}");
        assert!(d <= TOLERANCE, "semi: {m} differs by {d:e} relative");
    }
}

#[test]
fn zero_threads_is_refused() {
    let e = thread_pool(0).unwrap_err().to_string();
    assert!(e.contains("at least 1"), "{e}");
}
