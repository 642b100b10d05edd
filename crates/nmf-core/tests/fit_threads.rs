//! The fit over several threads (run in a pool from `thread_pool`): W, H and the cost
//! history are the same bits for every number of threads, one included (the tiles' chunks
//! and their summing order depend on the number of frames only), and a pool of one thread
//! runs the same fit as no pool.
//!
//! The data are of rank [`RANK`]; the fits have as many components, or more (over-complete:
//! the free directions amplify any difference of float rounding over the iterations, which
//! is where a thread-dependent summing order showed).

use std::ops::ControlFlow;

use ndarray::Array2;
use nmf_core::nmf::{
    fit, fit_activations, fit_semi, thread_pool, ActivationOptions, CostPoint, Factorization,
    FitOptions, Init, Progress, SemiOptions,
};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

fn go(_: Progress) -> ControlFlow<()> {
    ControlFlow::Continue(())
}

/// Rank of the test data.
const RANK: usize = 6;

/// The thread counts compared with the fit outside any pool.
const POOLS: [usize; 4] = [1, 2, 3, 4];

/// A rank-[`RANK`] non-negative spectrogram-like matrix (n_bins x n_frames) plus a little
/// noise.
fn low_rank(n_bins: usize, n_frames: usize, seed: u64) -> Array2<f32> {
    let mut rng = Pcg64::seed_from_u64(seed);
    let w = Array2::from_shape_simple_fn((n_bins, RANK), || rng.gen::<f32>().powi(3));
    let h = Array2::from_shape_simple_fn((RANK, n_frames), || rng.gen::<f32>().powi(2));
    w.dot(&h).mapv(|x| x + 0.01 * rng.gen::<f32>())
}

fn opts(k: usize, beta: f32, sparsity: f32) -> FitOptions {
    FitOptions {
        n_components: k,
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

fn bits(a: &Array2<f32>) -> Vec<u32> {
    a.iter().map(|x| x.to_bits()).collect()
}

fn assert_same_bits(a: &Factorization, b: &Factorization, what: &str) {
    same_bits((&a.w, &a.h, &a.cost), (&b.w, &b.h, &b.cost), what);
}

type Fit<'a> = (&'a Array2<f32>, &'a Array2<f32>, &'a [CostPoint]);

fn same_bits(a: Fit, b: Fit, what: &str) {
    assert!(bits(a.0) == bits(b.0), "{what}: W differs");
    assert!(bits(a.1) == bits(b.1), "{what}: H differs");
    assert_eq!(a.2, b.2, "{what}: cost history differs");
}

#[test]
fn fit_is_the_same_bits_on_any_thread_count() {
    // 1000 frames: 21 tiles of 48 frames, in 21 chunks of one tile; 2000 frames: 42 tiles,
    // in 21 chunks of two; 3100 frames: 65 tiles, in 22 chunks of three (the last of two).
    // K 20 on rank-6 data is over-complete.
    let cases = [
        (1000, RANK, 1.0, 0.0),
        (2000, RANK, 0.5, 0.0),
        (1000, RANK, 1.0, 0.2),
        (3100, 20, 1.0, 0.0),
        (2000, 20, 0.5, 0.0),
    ];
    for (n_frames, k, beta, sparsity) in cases {
        let v = low_rank(257, n_frames, 11);
        let o = opts(k, beta, sparsity);
        let what = format!("{n_frames} frames, K {k}, beta {beta}, sparsity {sparsity}");
        let serial = fit(v.view(), &o, &mut go).unwrap();
        for threads in POOLS {
            let pooled = in_pool(threads, || fit(v.view(), &o, &mut go).unwrap());
            assert_same_bits(&serial, &pooled, &format!("{what}: no pool vs {threads}"));
        }
    }
}

#[test]
fn activations_are_the_same_bits_on_any_thread_count() {
    // With W fixed nothing is summed across tiles: every thread count gives the same H.
    let v = low_rank(257, 1500, 12);
    let w = fit(v.view(), &opts(RANK, 1.0, 0.0), &mut go).unwrap().w;
    let a = ActivationOptions {
        max_iter: 40,
        ..ActivationOptions::default()
    };
    let (h1, c1) = fit_activations(v.view(), w.view(), &a).unwrap();
    for threads in POOLS {
        let (h, c) = in_pool(threads, || fit_activations(v.view(), w.view(), &a).unwrap());
        assert!(bits(&h1) == bits(&h), "{threads} threads: H differs");
        assert_eq!(c1, c, "{threads} threads: cost history differs");
    }
}

#[test]
fn semi_supervised_fit_is_the_same_bits_on_any_thread_count() {
    // The known part has 3 templates of the rank-6 data; the free part of 8 is over-complete.
    let v = low_rank(257, 1200, 13);
    let known = fit(v.view(), &opts(RANK, 1.0, 0.0), &mut go).unwrap().w;
    let known = known.slice(ndarray::s![.., ..3]).to_owned();
    let o = SemiOptions {
        n_free: 8,
        max_iter: 40,
        ..SemiOptions::default()
    };
    let one = fit_semi(v.view(), known.view(), None, &o, &mut go).unwrap();
    assert!(bits(&one.w.slice(ndarray::s![.., ..3]).to_owned()) == bits(&known));
    for threads in POOLS {
        let pooled = in_pool(threads, || {
            fit_semi(v.view(), known.view(), None, &o, &mut go).unwrap()
        });
        same_bits(
            (&one.w, &one.h, &one.cost),
            (&pooled.w, &pooled.h, &pooled.cost),
            &format!("semi: no pool vs {threads}"),
        );
    }
}

#[test]
fn zero_threads_is_refused() {
    let e = thread_pool(0).unwrap_err().to_string();
    assert!(e.contains("at least 1"), "{e}");
}
