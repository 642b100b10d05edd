use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

use super::*;

/// Largest `|a - b| / |b|` over the entries (NaN if any is NaN).
fn max_rel(a: &Array2<f32>, b: &Array2<f32>) -> f32 {
    a.iter().zip(b).fold(0.0f32, |m, (x, y)| {
        let d = (x - y).abs() / y.abs();
        if d > m || d.is_nan() {
            d
        } else {
            m
        }
    })
}

/// A short fit (20 iterations from the same NNDSVDa start, the cost at every iteration)
/// gives the same W, H and cost history with every kernel variant as with the portable
/// one, for bin counts that are not a multiple of 32 (1025 pads to 1040: the AVX-512
/// model's half-width block; 300 to 304), K = 32 (two 16-wide blocks) and 7 (padded to
/// 16), 61 frames (a full and a partial tile) and the beta = 1 and general-beta factors.
///
/// The AVX2 + FMA variant runs the portable code compiled for AVX2: Rust neither fuses
/// nor reorders float operations, so it measured bit-identical to portable. The AVX-512
/// `model`, `project` and `accumulate` are intrinsics with FMA and their own summation
/// order: per matrix product the results differ by a few ulps, and 20 multiplicative
/// updates of W and H carry that to a largest elementwise relative difference of
/// 3.6e-6 (W) and 3.5e-6 (H); the costs (f64 sums of the f32 model) differ by at most
/// 9.3e-8 relative. The tolerances are about 4 and 5 times those.
#[test]
fn every_kernel_variant_fits_like_the_portable_one() {
    const TOL_WH: f32 = 1.5e-5;
    const TOL_COST: f64 = 5e-7;
    let variants: Vec<(String, Kernels)> = crate::simd::Isa::variants()
        .into_iter()
        .map(|isa| (format!("{isa:?}"), Kernels::new(isa)))
        .collect();
    let mut worst = vec![(0.0f32, 0.0f32, 0.0f64); variants.len()];
    for (n_bins, k) in [(1025, 32), (1025, 7), (300, 32), (300, 7)] {
        let mut rng = Pcg64::seed_from_u64((n_bins * 100 + k) as u64);
        let n_frames = 61;
        let w_true = Array2::from_shape_simple_fn((n_bins, k), || rng.gen::<f32>());
        let h_true = Array2::from_shape_simple_fn((k, n_frames), || {
            if rng.gen::<bool>() {
                rng.gen::<f32>()
            } else {
                0.0
            }
        });
        let v = w_true.dot(&h_true).mapv(|x| x + 0.1 * rng.gen::<f32>());
        for beta in [0.0, 1.0, 2.0, 0.5] {
            let opts = FitOptions {
                n_components: k,
                beta,
                max_iter: 20,
                tol: 0.0,
                seed: 3,
                init: Init::Nndsvda,
                sparsity: 0.0,
                cost_every: 1,
            };
            let (w0, h0) = initialize(v.view(), k, opts.init, opts.seed);
            let run = |kernels: Kernels| {
                let (mut w, mut h) = (w0.clone(), h0.clone());
                let (cost, _) =
                    run_updates(v.view(), &mut w, &mut h, true, &opts, kernels, &mut |_| {
                        ControlFlow::Continue(())
                    })
                    .unwrap();
                (w, h, cost)
            };
            let (w_ref, h_ref, cost_ref) = run(variants[0].1);
            for (i, (name, kernels)) in variants.iter().enumerate().skip(1) {
                let kernels = *kernels;
                let (w, h, cost) = run(kernels);
                let case = format!("{name}, {n_bins} bins, K {k}, beta {beta}");
                let (dw, dh) = (max_rel(&w, &w_ref), max_rel(&h, &h_ref));
                assert!(dw <= TOL_WH, "{case}: W differs by {dw:e} relative");
                assert!(dh <= TOL_WH, "{case}: H differs by {dh:e} relative");
                assert_eq!(cost.len(), cost_ref.len(), "{case}");
                let mut dc = 0.0f64;
                for (a, b) in cost.iter().zip(&cost_ref) {
                    assert_eq!(a.iteration, b.iteration, "{case}");
                    let d = (a.cost - b.cost).abs() / b.cost;
                    assert!(
                        d <= TOL_COST,
                        "{case}, iteration {}: cost differs by {d:e} relative",
                        a.iteration
                    );
                    dc = dc.max(d);
                }
                let o = &mut worst[i];
                *o = (o.0.max(dw), o.1.max(dh), o.2.max(dc));
            }
        }
    }
    for ((name, _), (dw, dh, dc)) in variants.iter().zip(worst).skip(1) {
        eprintln!(
            "{name}: largest relative difference to portable W {dw:e}, H {dh:e}, cost {dc:e}"
        );
    }
}
