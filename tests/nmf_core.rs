//! Properties of the NMF core on seeded synthetic data: monotone cost, agreement with a
//! naive reference implementation, exact low-rank recovery, fixed templates left untouched,
//! determinism, input errors and cancellation.

#![allow(clippy::needless_range_loop)] // channel and bus loops read clearer by index

use std::ops::ControlFlow;

use ndarray::{Array2, ArrayView2};
use nmf_separator::nmf::{
    divergence, divergence_naive, fit, fit_activations, gamma, init::initialize, ActivationOptions,
    FitOptions, FrameSolver, Init, NmfError, SolveRule, EPS,
};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

const BETAS: [f32; 6] = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0];

fn random(rows: usize, cols: usize, seed: u64) -> Array2<f32> {
    let mut rng = Pcg64::seed_from_u64(seed);
    Array2::from_shape_simple_fn((rows, cols), || rng.gen::<f32>() + 0.01)
}

fn go(_: nmf_separator::nmf::Progress) -> ControlFlow<()> {
    ControlFlow::Continue(())
}

fn opts(k: usize, beta: f32, iters: usize) -> FitOptions {
    FitOptions {
        n_components: k,
        beta,
        max_iter: iters,
        tol: 0.0,
        seed: 7,
        init: Init::Random,
        sparsity: 0.0,
        cost_every: 1,
    }
}

/// Largest relative increase between consecutive cost points (0 if monotone).
fn worst_increase(costs: &[f64]) -> f64 {
    costs
        .windows(2)
        .map(|p| (p[1] - p[0]) / p[0].abs().max(1e-300))
        .fold(0.0, f64::max)
}

/// f32 rounding of the model and of the f64 sums lets a converged cost wobble by about
/// 1e-7 relative; anything above this is a real increase.
const MONOTONE_SLACK: f64 = 1e-6;

#[test]
fn cost_never_increases_for_every_beta() {
    let v = random(37, 53, 1);
    for &beta in &BETAS {
        let res = fit(v.view(), &opts(5, beta, 150), &mut go).unwrap();
        let costs: Vec<f64> = res.cost.iter().map(|c| c.cost).collect();
        assert_eq!(
            costs.len(),
            151,
            "one cost point per iteration, plus the final one"
        );
        let worst = worst_increase(&costs);
        assert!(
            worst <= MONOTONE_SLACK,
            "beta {beta}: cost rose by {worst:e} (relative)"
        );
        assert!(
            costs.last().unwrap() < &(0.9 * costs[0]),
            "beta {beta}: no progress"
        );
    }
}

/// With the L1 penalty and W renormalized to unit columns after every W update, the
/// penalized cost is not guaranteed to decrease: the renormalization rescales H and so
/// changes lambda * sum(H) (Le Roux et al. 2015 discuss this). What does hold is the
/// monotonicity of the penalized H problem with W fixed (the MU with the penalty in the
/// denominator is a majorization-minimization step), so that is tested for every beta.
#[test]
fn penalized_activation_cost_never_increases() {
    let v = random(37, 53, 2);
    let w = random(37, 5, 3);
    for &beta in &BETAS {
        for &lambda in &[0.1f32, 1.0] {
            let (_, cost) = fit_activations(
                v.view(),
                w.view(),
                &ActivationOptions {
                    beta,
                    max_iter: 150,
                    tol: 0.0,
                    sparsity: lambda,
                    cost_every: 1,
                },
            )
            .unwrap();
            let costs: Vec<f64> = cost.iter().map(|c| c.cost).collect();
            let worst = worst_increase(&costs);
            assert!(
                worst <= MONOTONE_SLACK,
                "beta {beta} lambda {lambda}: cost rose by {worst:e}"
            );
        }
    }
}

/// The full penalized fit (W renormalized after every W update) is not monotone in general:
/// measured on this seeded data, beta 0 to 2 happen to decrease at every iteration, but
/// beta 3 rises by about 5% (relative) at some iteration. So only progress is asserted
/// here, for beta in [0, 2]; the increase for beta 3 is printed, not asserted.
#[test]
fn penalized_fit_makes_progress() {
    let v = random(37, 53, 4);
    for &beta in &BETAS {
        let o = FitOptions {
            sparsity: 0.5,
            ..opts(5, beta, 150)
        };
        let res = fit(v.view(), &o, &mut go).unwrap();
        let costs: Vec<f64> = res.cost.iter().map(|c| c.cost).collect();
        eprintln!(
            "beta {beta}: sparse fit worst relative increase {:e}, final/initial {:.3}",
            worst_increase(&costs),
            costs.last().unwrap() / costs[0]
        );
        if beta <= 2.0 {
            assert!(costs.last().unwrap() < &(0.9 * costs[0]), "beta {beta}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Naive reference: Févotte & Idier 2011, eq. 4.1-4.2 with gamma(beta), triple loops, f64.
// ---------------------------------------------------------------------------------------

struct Naive {
    w: Vec<Vec<f64>>, // n_bins x K
    h: Vec<Vec<f64>>, // K x n_frames
}

fn to_f64(a: ArrayView2<f32>) -> Vec<Vec<f64>> {
    a.rows()
        .into_iter()
        .map(|r| r.iter().map(|&x| f64::from(x)).collect())
        .collect()
}

impl Naive {
    fn model(&self) -> Vec<Vec<f64>> {
        let (nf, k, nn) = (self.w.len(), self.h.len(), self.h[0].len());
        let mut y = vec![vec![0.0; nn]; nf];
        for f in 0..nf {
            for n in 0..nn {
                let mut s = 0.0;
                for c in 0..k {
                    s += self.w[f][c] * self.h[c][n];
                }
                y[f][n] = s.max(f64::from(EPS));
            }
        }
        y
    }

    fn cost(&self, v: &[Vec<f64>], beta: f64) -> f64 {
        let y = self.model();
        let eps = f64::from(EPS);
        let mut total = 0.0;
        for (vr, yr) in v.iter().zip(&y) {
            for (&x, &m) in vr.iter().zip(yr) {
                total += if beta == 0.0 {
                    let x = x.max(eps);
                    x / m - (x / m).ln() - 1.0
                } else if beta == 1.0 {
                    if x > 0.0 {
                        x * (x / m).ln() - x + m
                    } else {
                        m
                    }
                } else {
                    (x.powf(beta) + (beta - 1.0) * m.powf(beta) - beta * x * m.powf(beta - 1.0))
                        / (beta * (beta - 1.0))
                };
            }
        }
        total
    }

    fn iterate(&mut self, v: &[Vec<f64>], beta: f64) {
        let g = f64::from(gamma(beta as f32));
        let eps = f64::from(EPS);
        let (nf, k, nn) = (self.w.len(), self.h.len(), self.h[0].len());
        // eq. 4.1: H <- H .* [W^T (V .* Y^(beta-2)) ./ W^T Y^(beta-1)]^gamma
        let y = self.model();
        for c in 0..k {
            for n in 0..nn {
                let (mut num, mut den) = (0.0, 0.0);
                for f in 0..nf {
                    num += self.w[f][c] * v[f][n] * y[f][n].powf(beta - 2.0);
                    den += self.w[f][c] * y[f][n].powf(beta - 1.0);
                }
                self.h[c][n] = (self.h[c][n] * (num / den.max(eps)).powf(g)).max(eps);
            }
        }
        // eq. 4.2: W <- W .* [(V .* Y^(beta-2)) H^T ./ Y^(beta-1) H^T]^gamma, Y = W H_new
        let y = self.model();
        for f in 0..nf {
            for c in 0..k {
                let (mut num, mut den) = (0.0, 0.0);
                for n in 0..nn {
                    num += v[f][n] * y[f][n].powf(beta - 2.0) * self.h[c][n];
                    den += y[f][n].powf(beta - 1.0) * self.h[c][n];
                }
                self.w[f][c] = (self.w[f][c] * (num / den.max(eps)).powf(g)).max(eps);
            }
        }
    }

    /// Unit-L2 columns of W, the scale moved into H (what `fit` returns).
    fn normalize(&mut self) {
        for c in 0..self.h.len() {
            let norm = self.w.iter().map(|r| r[c] * r[c]).sum::<f64>().sqrt();
            self.w.iter_mut().for_each(|r| r[c] /= norm);
            self.h[c].iter_mut().for_each(|x| *x *= norm);
        }
    }
}

fn rel_diff(a: ArrayView2<f32>, b: &[Vec<f64>]) -> f64 {
    let mut num = 0.0;
    let mut den = 0.0;
    for (ra, rb) in a.rows().into_iter().zip(b) {
        for (&x, &y) in ra.iter().zip(rb) {
            num += (f64::from(x) - y).powi(2);
            den += y * y;
        }
    }
    (num / den).sqrt()
}

#[test]
fn fast_fit_matches_naive_reference() {
    // Shapes that exercise the padding of bins (not a multiple of 16), components and a
    // ragged last tile of frames.
    let (nf, nn, k) = (45, 70, 5);
    let iters = 20;
    let v = random(nf, nn, 11);
    let vd = to_f64(v.view());
    for &beta in &BETAS {
        let o = opts(k, beta, iters);
        let res = fit(v.view(), &o, &mut go).unwrap();
        let (w0, h0) = initialize(v.view(), k, Init::Random, o.seed);
        let mut naive = Naive {
            w: to_f64(w0.view()),
            h: to_f64(h0.view()),
        };
        let mut costs = Vec::new();
        for _ in 0..iters {
            costs.push(naive.cost(&vd, f64::from(beta)));
            naive.iterate(&vd, f64::from(beta));
        }
        costs.push(naive.cost(&vd, f64::from(beta)));
        naive.normalize();
        let (dw, dh) = (
            rel_diff(res.w.view(), &naive.w),
            rel_diff(res.h.view(), &naive.h),
        );
        assert!(
            dw < 1e-4 && dh < 1e-4,
            "beta {beta}: W off by {dw:e}, H by {dh:e}"
        );
        assert_eq!(res.cost.len(), costs.len());
        for (p, c) in res.cost.iter().zip(&costs) {
            let d = (p.cost - c).abs() / c.abs();
            assert!(
                d < 1e-5,
                "beta {beta} iteration {}: cost {} vs {c}",
                p.iteration,
                p.cost
            );
        }
    }
}

#[test]
fn divergence_matches_naive() {
    let v = random(33, 41, 21);
    let w = random(33, 6, 22);
    let h = random(6, 41, 23);
    let y = w.dot(&h);
    let mut v0 = v.clone();
    v0[[3, 4]] = 0.0; // a zero observation
    for &beta in &[0.0f32, 0.5, 1.0, 1.5, 2.0, 3.0, -0.5] {
        for vv in [&v, &v0] {
            let a = divergence(vv.view(), y.view(), beta);
            let b = divergence_naive(vv.view(), w.view(), h.view(), beta);
            assert!(
                (a - b).abs() <= 1e-5 * b.abs(),
                "beta {beta}: {a} vs naive {b}"
            );
        }
    }
}

#[test]
fn exact_low_rank_data_is_reconstructed() {
    let (w0, h0) = (random(60, 4, 31), random(4, 90, 32));
    let v = w0.dot(&h0);
    let norm = v.mapv(|x| x * x).sum().sqrt();
    for &beta in &[1.0f32, 2.0] {
        let o = FitOptions {
            n_components: 4,
            beta,
            max_iter: 3000,
            tol: 0.0,
            seed: 0,
            init: Init::Nndsvda,
            sparsity: 0.0,
            cost_every: 100,
        };
        let res = fit(v.view(), &o, &mut go).unwrap();
        let err = (&res.w.dot(&res.h) - &v).mapv(|x| x * x).sum().sqrt() / norm;
        eprintln!("beta {beta}: relative reconstruction error {err:e}");
        // Measured about 1e-3 for beta 1 and 2 after 3000 iterations (MU converges
        // sublinearly); the threshold leaves room for another seed of the init.
        assert!(err < 1e-2, "beta {beta}: relative error {err}");
    }
}

#[test]
fn fixed_templates_are_left_untouched() {
    let v = random(40, 30, 41);
    let w = random(40, 6, 42);
    let before = w.clone();
    let (h, cost) = fit_activations(
        v.view(),
        w.view(),
        &ActivationOptions {
            beta: 1.0,
            max_iter: 50,
            tol: 0.0,
            sparsity: 0.0,
            cost_every: 1,
        },
    )
    .unwrap();
    assert_eq!(w, before);
    // The last cost must be that of the given W (bit-for-bit the same values) with the
    // returned H: a fit that rescaled or updated W internally would not match.
    let c = divergence(v.view(), w.dot(&h).view(), 1.0);
    let last = cost.last().unwrap().cost;
    assert!((c - last).abs() <= 1e-6 * c, "{c} vs {last}");

    let mut solver = FrameSolver::new(w.view(), 1.0);
    let mut hf = vec![1.0f32; 6];
    for n in 0..30 {
        let frame: Vec<f32> = v.column(n).to_vec();
        solver.solve(&frame, &mut hf, 20, 0.1);
    }
    for c in 0..6 {
        let col: Vec<u32> = w.column(c).iter().map(|x| x.to_bits()).collect();
        let t: Vec<u32> = solver.template(c).iter().map(|x| x.to_bits()).collect();
        assert_eq!(col, t, "template {c} changed");
    }
}

#[test]
fn frame_solver_matches_fit_activations_on_one_frame() {
    let w = random(50, 4, 51);
    let v = random(50, 1, 52);
    for &beta in &[0.5f32, 1.0, 2.0] {
        let (h, _) = fit_activations(
            v.view(),
            w.view(),
            &ActivationOptions {
                beta,
                max_iter: 3000,
                tol: 0.0,
                sparsity: 0.0,
                cost_every: 1000,
            },
        )
        .unwrap();
        let mut solver = FrameSolver::new(w.view(), beta);
        // To convergence: every one of the 3000 iterations runs (no early exit or screening).
        solver.set_rule(SolveRule::FLAT_ME);
        let mut hf = vec![0.3f32; 4];
        let frame: Vec<f32> = v.column(0).to_vec();
        solver.solve(&frame, &mut hf, 3000, 0.0);
        for c in 0..4 {
            let (a, b) = (h[[c, 0]], hf[c]);
            assert!(
                (a - b).abs() <= 1e-3 * (a.abs() + b.abs()) + 1e-6,
                "beta {beta} component {c}: {a} vs {b}"
            );
        }
    }
}

#[test]
fn fit_is_deterministic_for_a_seed() {
    let v = random(30, 40, 61);
    for init in [Init::Random, Init::Nndsvda] {
        let o = FitOptions {
            init,
            ..opts(4, 1.0, 30)
        };
        let a = fit(v.view(), &o, &mut go).unwrap();
        let b = fit(v.view(), &o, &mut go).unwrap();
        assert_eq!(a.w, b.w);
        assert_eq!(a.h, b.h);
        assert_eq!(a.cost, b.cost);
    }
    let a = fit(v.view(), &opts(4, 1.0, 30), &mut go).unwrap();
    let c = fit(
        v.view(),
        &FitOptions {
            seed: 8,
            ..opts(4, 1.0, 30)
        },
        &mut go,
    )
    .unwrap();
    assert_ne!(a.w, c.w, "another seed should give another random start");
}

#[test]
fn bad_input_is_rejected() {
    let o = opts(2, 1.0, 5);
    fn invalid<T>(r: Result<T, NmfError>) -> bool {
        matches!(r, Err(NmfError::InvalidInput(_)))
    }
    assert!(invalid(fit(
        Array2::<f32>::zeros((0, 5)).view(),
        &o,
        &mut go
    )));
    assert!(invalid(fit(
        Array2::<f32>::zeros((5, 0)).view(),
        &o,
        &mut go
    )));
    assert!(invalid(fit(
        Array2::<f32>::zeros((4, 5)).view(),
        &o,
        &mut go
    )));
    let mut neg = random(4, 5, 71);
    neg[[1, 2]] = -1.0;
    assert!(invalid(fit(neg.view(), &o, &mut go)));
    let mut nan = random(4, 5, 72);
    nan[[0, 0]] = f32::NAN;
    assert!(invalid(fit(nan.view(), &o, &mut go)));
    let mut inf = random(4, 5, 73);
    inf[[3, 4]] = f32::INFINITY;
    assert!(invalid(fit(inf.view(), &o, &mut go)));
    let good = random(4, 5, 74);
    assert!(invalid(fit(
        good.view(),
        &FitOptions {
            n_components: 0,
            ..o.clone()
        },
        &mut go
    )));
    let a = ActivationOptions::default();
    assert!(invalid(
        fit_activations(good.view(), random(3, 2, 75).view(), &a).map(|_| ())
    ));
    assert!(invalid(
        fit_activations(nan.view(), random(4, 2, 76).view(), &a).map(|_| ())
    ));
    assert!(invalid(
        fit_activations(
            Array2::<f32>::zeros((4, 5)).view(),
            random(4, 2, 77).view(),
            &a
        )
        .map(|_| ())
    ));
}

#[test]
fn observer_can_cancel() {
    let v = random(20, 30, 81);
    let mut calls = Vec::new();
    let r = fit(v.view(), &opts(3, 1.0, 100), &mut |p| {
        calls.push(p.iteration);
        if p.iteration >= 3 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    assert!(matches!(r, Err(NmfError::Cancelled)), "{r:?}");
    assert_eq!(
        calls.len(),
        3,
        "the observer is not called after it asked to stop"
    );
    assert!(calls.windows(2).all(|p| p[1] == p[0] + 1));
    // Without a break the observer sees every iteration once.
    let mut n = 0;
    fit(v.view(), &opts(3, 1.0, 17), &mut |_| {
        n += 1;
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(n, 17);
}

#[test]
fn tolerance_stops_early_and_history_ends_at_the_result() {
    let v = random(30, 40, 91);
    let o = FitOptions {
        tol: 1e-3,
        cost_every: 5,
        ..opts(4, 1.0, 1000)
    };
    let res = fit(v.view(), &o, &mut go).unwrap();
    assert!(res.n_iter < 1000, "stopped at {}", res.n_iter);
    let last = res.cost.last().unwrap();
    assert_eq!(last.iteration, res.n_iter);
    let c = divergence(v.view(), res.w.dot(&res.h).view(), 1.0);
    assert!((c - last.cost).abs() <= 1e-5 * c, "{c} vs {}", last.cost);
}
