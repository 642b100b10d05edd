use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

use super::equalize::*;
use super::*;
use crate::fastmath::{exp_f32, ln_f32};
use crate::simd::Isa;

#[test]
fn solve_rule_text_round_trips_and_rejects_others() {
    for rule in [
        SolveRule::FLAT_ME,
        SolveRule::WARM_MU,
        SolveRule {
            start: Start::Blend(0.25),
            step: Step::Equalized,
            tol: 0.0,
            screen: 0.0,
        },
        SolveRule {
            screen: 0.005,
            tol: 0.07,
            ..SolveRule::FLAT_ME
        },
        SolveRule {
            tol: 0.002,
            ..SolveRule::FLAT_ME
        },
        SolveRule {
            start: Start::Adaptive(2.0),
            ..SolveRule::FLAT_ME
        },
    ] {
        assert_eq!(rule.to_string().parse::<SolveRule>(), Ok(rule));
    }
    assert_eq!(SolveRule::FLAT_ME.to_string(), "flat+me");
    assert_eq!(SolveRule::WARM_MU.to_string(), "warm+mu");
    assert_eq!("flat+me@0.002".parse::<SolveRule>().unwrap().tol, 0.002);
    for bad in [
        "flat",
        "flat+xx",
        "cold+me",
        "blend:1.5+me",
        "blend:x+mu",
        "adapt:-1+me",
        "",
        "flat+me@-1",
        "flat+me@x",
        "flat+me+screen:1",
        "flat+me+screen:-0.1",
        "flat+me+sc:0.1",
        "flat+me+screen:0.1+screen:0.1",
    ] {
        assert!(bad.parse::<SolveRule>().is_err(), "{bad}");
    }
}

/// The adaptive start is the warm start on a frame that repeats the previous one and,
/// with a large gain, the flat start on a frame that changes: same h, bit for bit.
#[test]
fn adaptive_start_is_warm_on_a_repeat_and_flat_on_a_change() {
    let (n_bins, k) = (200, 6);
    let mut rng = Pcg64::seed_from_u64(9);
    let w = Array2::from_shape_simple_fn((n_bins, k), || rng.gen::<f32>() + 0.01);
    let frame = |rng: &mut Pcg64| -> Vec<f32> { (0..n_bins).map(|_| rng.gen::<f32>()).collect() };
    let (v1, v2) = (frame(&mut rng), frame(&mut rng));
    let solve_pair = |start: Start, second: &[f32]| {
        let mut solver = FrameSolver::new(w.view(), 1.0);
        solver.set_rule(SolveRule {
            start,
            ..SolveRule::FLAT_ME
        });
        let mut h = vec![0.0f32; k];
        solver.solve(&v1, &mut h, 5, 0.0);
        solver.solve(second, &mut h, 5, 0.0);
        h
    };
    assert_eq!(
        solve_pair(Start::Adaptive(1e3), &v1),
        solve_pair(Start::Warm, &v1)
    );
    assert_eq!(
        solve_pair(Start::Adaptive(1e3), &v2),
        solve_pair(Start::Blend(1.0), &v2)
    );
    assert_ne!(
        solve_pair(Start::Adaptive(1e3), &v2),
        solve_pair(Start::Warm, &v2)
    );
}

/// Group models against the direct sum, with a tail of bins outside the blocks, an empty
/// group and groups that interleave.
#[test]
fn group_models_match_the_direct_sum() {
    let (n_bins, k) = (300, 7);
    let mut rng = Pcg64::seed_from_u64(21);
    let w = Array2::from_shape_simple_fn((n_bins, k), || rng.gen::<f32>() + 0.01);
    let h: Vec<f32> = (0..k).map(|_| rng.gen::<f32>()).collect();
    let solver = FrameSolver::new(w.view(), 1.0);
    let groups: [&[usize]; 3] = [&[0, 3, 6], &[], &[1, 2, 4, 5]];
    let mut out = vec![vec![-1.0f32; n_bins]; 3];
    let mut refs: Vec<&mut [f32]> = out.iter_mut().map(|m| m.as_mut_slice()).collect();
    solver.group_models(&h, &groups, &mut refs);
    for (g, model) in groups.iter().zip(&out) {
        for f in 0..n_bins {
            let direct: f32 = g.iter().map(|&c| w[[f, c]] * h[c]).sum();
            assert!(
                (model[f] - direct).abs() <= 1e-5 * direct.max(1e-3),
                "bin {f}"
            );
        }
    }
}

/// Solves a warm-started sequence of random frames with the kernels of `isa`; returns every frame's h.
fn solve_frames(
    w: &Array2<f32>,
    frames: &[Vec<f32>],
    beta: f32,
    sparsity: f32,
    isa: Isa,
) -> Vec<Vec<f32>> {
    let mut solver = FrameSolver::new(w.view(), beta);
    solver.isa = isa;
    // The warm rule carries rounding from frame to frame (the measurement below).
    solver.set_rule(SolveRule::WARM_MU);
    let mut h = vec![1.0 / w.ncols() as f32; w.ncols()];
    frames
        .iter()
        .map(|v| {
            solver.solve(v, &mut h, 10, sparsity);
            h.clone()
        })
        .collect()
}

/// Every variant's activations equal the portable ones up to f32 rounding, for bin
/// counts with a partial block (1025 = 16 * 64 + 1, 300 = 4 * 64 + 44), an even and an
/// odd K (the fused kernel pairs components; `project` takes them by four), and the
/// beta = 1 fused path as well as the general one, without and with an L1 penalty (without
/// one, an error that scales a component's numerator and denominator alike cancels).
///
/// The variants differ only in rounding: FMA (x86) against a separate multiply and add
/// (portable) changes each product by at most half an ulp, so the sums over 300-1025 bins
/// behind every update differ by a few 1e-7 relative, and 60 multiplicative updates
/// (6 warm-started frames of 10) carry that into h. Measured largest elementwise relative
/// difference: 2.9e-6 (beta = 2; 1.2e-6 for the other betas), the same for AVX2 + FMA and
/// AVX-512 (they run the same operations in the same order). The tolerance is about 3.5
/// times that; a kernel that drops or misweights a component is off by far more.
#[test]
fn every_kernel_variant_matches_the_portable_one() {
    const TOL: f32 = 1e-5;
    let variants = Isa::variants();
    let mut worst = vec![0.0f32; variants.len()];
    for (n_bins, k) in [(1025, 32), (1025, 7), (300, 32), (300, 7)] {
        let mut rng = Pcg64::seed_from_u64((n_bins * 100 + k) as u64);
        let w = Array2::from_shape_simple_fn((n_bins, k), || rng.gen::<f32>() + 0.01);
        // Frames near the model (about half the components silent) plus noise, so that
        // some activations shrink over the iterations while others grow.
        let frames: Vec<Vec<f32>> = (0..6)
            .map(|_| {
                let h: Vec<f32> = (0..k)
                    .map(|_| {
                        if rng.gen::<bool>() {
                            rng.gen::<f32>()
                        } else {
                            0.0
                        }
                    })
                    .collect();
                (0..n_bins)
                    .map(|f| {
                        let y: f32 = (0..k).map(|c| w[[f, c]] * h[c]).sum();
                        y + 0.1 * rng.gen::<f32>()
                    })
                    .collect()
            })
            .collect();
        for beta in [0.0, 1.0, 2.0, 0.5] {
            for sparsity in [0.0, 50.0] {
                let reference = solve_frames(&w, &frames, beta, sparsity, Isa::PORTABLE);
                for (i, &kern) in variants.iter().enumerate().skip(1) {
                    let got = solve_frames(&w, &frames, beta, sparsity, kern);
                    for (t, (a, b)) in got.iter().zip(&reference).enumerate() {
                        for (c, (x, y)) in a.iter().zip(b).enumerate() {
                            let rel = (x - y).abs() / y.abs();
                            worst[i] = worst[i].max(rel);
                            assert!(
                                rel <= TOL,
                                "{kern:?}, {n_bins} bins, K {k}, beta {beta}, sparsity \
                                     {sparsity}, frame {t}, component {c}: {x} vs portable {y} \
                                     (relative {rel:e})"
                            );
                        }
                    }
                }
            }
        }
    }
    for (kern, d) in variants.iter().zip(worst).skip(1) {
        eprintln!("{kern:?}: largest relative difference to Portable {d:e}");
    }
}

/// The equalization factor is the root other than 1 of `x - 1 = r ln x`, on the far
/// side of r from 1 (a longer step than the multiplicative one), for r from 0.1 to 1e6 in
/// steps of 1/40 decade and around r = 1 where the series takes over. Below r of about
/// 0.05 the root (about e^(-1/r)) is below f32's normal range: x then comes out tiny or
/// zero, and the activation floor takes over; a zero, negative or NaN ratio gives about 0.
#[test]
fn equalized_factor_solves_the_equalization() {
    assert!(equalized_factor(1e-3) < 1e-6);
    for bad in [0.0, -1.0, f32::NAN, f32::NEG_INFINITY] {
        let x = equalized_factor(bad);
        assert!(x.is_finite() && (0.0..1e-30).contains(&x), "r {bad}: x {x}");
    }
    assert!(equalized_factor(f32::INFINITY).is_finite());
    assert_eq!(equalized_factor(1.0), 1.0);
    let near_one = (1..=40).flat_map(|i| {
        let d = 0.3 * i as f32 / 40.0;
        [1.0 + d, 1.0 / (1.0 + d)]
    });
    let decades = (-40..=240).map(|i| 10f32.powf(i as f32 / 40.0));
    let mut worst = 0.0f64;
    for r in decades.chain(near_one).filter(|&r| r != 1.0) {
        let x = equalized_factor(r);
        let (xd, rd) = (x as f64, r as f64);
        let resid = ((xd - 1.0) - rd * xd.ln()).abs() / (xd - 1.0).abs();
        worst = worst.max(resid);
        assert!(resid < 2e-5, "r {r}: x {x}, relative residual {resid:e}");
        assert!(
            (x - 1.0) * (r - 1.0) > 0.0 && (x - 1.0).abs() > (r - 1.0).abs(),
            "r {r}: x {x}"
        );
    }
    eprintln!("largest relative residual {worst:e}");
}

/// The branch-free exponential and logarithm agree with the standard library's to a few
/// f32 rounding errors over the ranges the equalization uses.
#[test]
fn branch_free_exp_and_ln_are_accurate() {
    for i in -8700..=8800 {
        let y = i as f32 / 100.0;
        let (got, want) = (exp_f32(y), y.exp());
        assert!(
            (got - want).abs() <= 4e-7 * want,
            "exp({y}): {got} vs {want}"
        );
    }
    for i in -380..=380 {
        let x = 10f32.powf(i as f32 / 10.0) * 1.2345;
        let (got, want) = (ln_f32(x), x.ln());
        assert!(
            (got - want).abs() <= 2e-7 * want.abs().max(1.0),
            "ln({x}): {got} vs {want}"
        );
    }
}

/// The equalization compiled for every instruction set of this CPU gives the same factors
/// as the scalar code, bit for bit.
#[test]
fn equalize_is_the_same_on_every_instruction_set() {
    let ratios: Vec<f32> = (-60..=200).map(|i| 10f32.powf(i as f32 / 37.0)).collect();
    let want: Vec<f32> = ratios.iter().map(|&r| equalized_factor(r)).collect();
    for isa in Isa::variants() {
        let mut got = ratios.clone();
        equalize(isa, &mut got);
        assert_eq!(got, want, "{isa:?}");
    }
}

fn kl(v: &[f32], w: &Array2<f32>, h: &[f32]) -> f64 {
    (0..v.len())
        .map(|f| {
            let y: f32 = (0..h.len()).map(|c| w[[f, c]] * h[c]).sum();
            crate::nmf::beta::elementwise(v[f], y, 1.0)
        })
        .sum()
}

/// From the same flat start, every equalization step lowers the KL cost of a frame (the
/// majorization guarantee, to f32 rounding), and ten of them end lower than ten
/// multiplicative updates. A flat start ignores the incoming h.
#[test]
fn equalization_descends_faster_than_multiplicative_updates() {
    let (n_bins, k) = (300, 12);
    let mut rng = Pcg64::seed_from_u64(5);
    let w = Array2::from_shape_simple_fn((n_bins, k), || rng.gen::<f32>() + 0.01);
    let truth: Vec<f32> = (0..k)
        .map(|c| {
            if c % 3 == 0 {
                2.0 * rng.gen::<f32>()
            } else {
                0.0
            }
        })
        .collect();
    let v: Vec<f32> = (0..n_bins)
        .map(|f| (0..k).map(|c| w[[f, c]] * truth[c]).sum::<f32>() * (0.9 + 0.2 * rng.gen::<f32>()))
        .collect();
    let mut solver = FrameSolver::new(w.view(), 1.0);
    assert_eq!(solver.rule(), SolveRule::default());
    solver.set_rule(SolveRule::FLAT_ME);
    let (mut h, mut prev) = (vec![0.0f32; k], f64::INFINITY);
    for it in 1..=10 {
        h.iter_mut().for_each(|x| *x = 7.0); // ignored by the flat start
        solver.solve(&v, &mut h, it, 0.0);
        let c = kl(&v, &w, &h);
        assert!(c <= prev * (1.0 + 1e-6), "iteration {it}: {c} after {prev}");
        prev = c;
    }
    solver.set_rule(SolveRule {
        start: Start::Flat,
        step: Step::Multiplicative,
        tol: 0.0,
        screen: 0.0,
    });
    let mut h_mu = vec![1.0f32; k];
    solver.solve(&v, &mut h_mu, 10, 0.0);
    let c_mu = kl(&v, &w, &h_mu);
    assert!(prev < c_mu, "equalization {prev} vs multiplicative {c_mu}");
}
/// Screening: on frames that use a third of the components, from a flat start,
/// - every iteration still lowers the KL cost (block-coordinate descent: the held
///   components are fixed, the others take the usual step), to f32 rounding;
/// - components are held in every frame (the held model is not zero) and every instruction set gives
///   the portable activations to f32 rounding (the tolerance of the kernel test above);
/// - with a threshold far below any used component's activation (1e-5) the result is the
///   unscreened one on the components above 1 % of the largest: measured 9.5e-5 relative
///   at most, the test allows 3e-4 (a held component is below 1e-5 of the largest and
///   would only have shrunk further);
/// - `active` stays a permutation of 0..K from frame to frame.
#[test]
fn screening_descends_holds_silent_components_and_matches_every_kernel() {
    let (n_bins, k) = (1025, 30);
    let mut rng = Pcg64::seed_from_u64(17);
    // Templates like a dictionary's: a few narrow peaks each (partials) over a low floor.
    let mut w = Array2::from_elem((n_bins, k), 1e-3f32);
    for c in 0..k {
        for _ in 0..5 {
            let centre = rng.gen_range(0..n_bins) as f32;
            for f in 0..n_bins {
                let d = (f as f32 - centre) / 3.0;
                w[[f, c]] += (-d * d).exp();
            }
        }
    }
    let frames: Vec<Vec<f32>> = (0..4)
        .map(|_| {
            let truth: Vec<f32> = (0..k)
                .map(|_| {
                    if rng.gen::<f32>() < 0.33 {
                        rng.gen()
                    } else {
                        0.0
                    }
                })
                .collect();
            (0..n_bins)
                .map(|f| {
                    (0..k).map(|c| w[[f, c]] * truth[c]).sum::<f32>()
                        * (0.9 + 0.2 * rng.gen::<f32>())
                })
                .collect()
        })
        .collect();
    let screened = SolveRule::default();
    assert!(screened.screen > 0.0);
    let solve_all = |rule: SolveRule, isa: Isa, iterations: usize| {
        let mut solver = FrameSolver::new(w.view(), 1.0);
        solver.isa = isa;
        solver.set_rule(SolveRule { tol: 0.0, ..rule });
        let mut h = vec![0.0f32; k];
        let mut held_in_every_frame = true;
        let out: Vec<Vec<f32>> = frames
            .iter()
            .map(|v| {
                solver.solve(v, &mut h, iterations, 0.0);
                held_in_every_frame &= solver.held.iter().sum::<f32>() > 0.0;
                h.clone()
            })
            .collect();
        let mut order = solver.active.clone();
        order.sort_unstable();
        assert_eq!(order, (0..k).collect::<Vec<_>>(), "active is a permutation");
        (out, held_in_every_frame)
    };
    // Descent, frame by frame.
    let mut solver = FrameSolver::new(w.view(), 1.0);
    solver.set_rule(SolveRule {
        tol: 0.0,
        ..screened
    });
    for (t, v) in frames.iter().enumerate() {
        let mut prev = f64::INFINITY;
        for it in 1..=16 {
            let mut h = vec![0.0f32; k];
            solver.solve(v, &mut h, it, 0.0);
            let c = kl(v, &w, &h);
            assert!(
                c <= prev * (1.0 + 1e-6),
                "frame {t}, iteration {it}: {c} after {prev}"
            );
            prev = c;
        }
    }
    // Held components, and the same activations on every instruction set.
    let (reference, held) = solve_all(screened, Isa::PORTABLE, 16);
    assert!(held, "a frame held no component");
    for isa in Isa::variants().into_iter().skip(1) {
        let (got, _) = solve_all(screened, isa, 16);
        for (a, b) in got.iter().flatten().zip(reference.iter().flatten()) {
            assert!(
                (a - b).abs() <= 1e-5 * b.abs(),
                "{isa:?}: {a} vs portable {b}"
            );
        }
    }
    // A tiny threshold gives the unscreened solve.
    let tiny = SolveRule {
        screen: 1e-5,
        ..screened
    };
    let (full, _) = solve_all(
        SolveRule {
            screen: 0.0,
            ..screened
        },
        Isa::PORTABLE,
        16,
    );
    let (close, held) = solve_all(tiny, Isa::PORTABLE, 16);
    assert!(
        held,
        "the tiny threshold held nothing in a frame: the test would not test it"
    );
    let mut worst = 0.0f32;
    for (a, b) in close.iter().zip(&full) {
        let max = b.iter().fold(0.0f32, |m, &x| m.max(x));
        for (x, y) in a.iter().zip(b) {
            if *y > 1e-2 * max {
                worst = worst.max((x - y).abs() / y);
            }
        }
    }
    eprintln!("screening at 1e-5: largest relative change of a component above 1 % of the frame's largest: {worst:e}");
    assert!(worst <= 3e-4, "{worst:e}");
}
