//! Semi-supervised NMF: `V ~ [W_known | W_free] H`, W_known fixed, W_free learned from V.
//!
//! # The model
//! W_known (n_bins x K_known) comes from a capture of the known source(s); W_free
//! (n_bins x K_free) and all of H ((K_known + K_free) x n_frames) are fitted on the mixture V
//! by the multiplicative updates of Févotte & Idier 2011 (Neural Computation 23(9), eq. 4.1
//! for H, eq. 4.2 restricted to the free columns for W), the offline semi-supervised setting
//! of Smaragdis, Raj & Shashanka 2007 ("Supervised and semi-supervised separation of sounds
//! from single-channel mixtures", ICA 2007) that Duan, Mysore & Smaragdis 2012 make online.
//!
//! # Keeping W_free off the known source
//! Left alone, the free templates also learn whatever part of the known source W_known does
//! not represent (a piano clip with other notes than the mix: the free templates take the
//! new notes). The fit here adds a penalty that makes the free part pay for energy in the
//! bins that the known source dominates:
//!
//! `J = D_beta(V | W H) + mu * sum_{j free} (e^T w_j) * sum_n h_jn`,
//!
//! with per-bin weights `e_f = max(q_f - q0, 0) / (1 - q_f + 0.05)` from the known source's
//! long-term share `q_f` of the mixture in bin f ([`known_share`]): q_f is estimated from the
//! mean spectrum `c` of the known source (its capture, or W_known's row sums when only the
//! dictionary is at hand) and the mixture's mean spectrum `m` as `g c_f / m_f` with the
//! largest gain g that the mixture allows (`g c <= m` in all but 1 % of the bins, smoothed
//! over about a twelfth of an octave). Bins where the known source is expected to carry less
//! than q0 (default 75 %) of the energy are not penalized at all, so a broadband known
//! source (noise, drums) leaves the free part nearly unconstrained where the unknown source
//! lives. The term is linear in each factor, so it enters the MU denominators (an L1 weight
//! `mu e^T w_j` on row j of H, and `mu e_f sum_n h_jn` on W_free), as the L1 penalty of
//! Le Roux, Weninger & Hershey 2015 (MERL TR2015-023, eq. 9-10); it is invariant to the
//! scale exchange `w_j / s, h_j s`, so W_free's columns are renormalized to unit L1 norm
//! every iteration without changing J, and J does not increase (for beta = 1).
//!
//! The weight mu is scaled by the known dictionary's tonality ([`overlap_weight`]): the
//! penalty is needed where the capture misses parts of a tonal source (other notes), and
//! only costs where the known source is noise that its smooth templates explain anywhere.
//!
//! The fit starts from the residual ([`SemiOptions::init_iter`]): H_known fitted with
//! W_known alone, then W_free and H_free from a plain NMF of what W_known leaves
//! unexplained, so the free templates start on the unknown source.
//!
//! After the penalized fit, `release_iter` updates of H alone (W fixed, no penalty) let the
//! activations settle to the plain divergence on the final templates.
//!
//! Measured on the bench's set A (KL, 16 + 16 components, mask exponent 2, see
//! BENCHMARKS.md): the penalty lifts A_piano_bass from about 0.5 dB (no penalty) to about
//! 7 dB median SDR; at a fixed weight it cost A_speech_noise 0.25 dB against no penalty, with
//! the tonality scaling and the residual start A_speech_noise gains 0.8 dB over no penalty.

use std::ops::ControlFlow;

use ndarray::{s, Array1, Array2, ArrayView1, ArrayView2, Axis};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

use super::beta::EPS;
use super::fit::{run_updates_semi, CostPoint, FitOptions, Progress, SemiPenalty};
use super::init::Init;
use super::kernels::Kernels;
use super::NmfError;

/// Settings of [`fit_semi`].
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SemiOptions {
    /// Number of free components K_free (>= 1).
    pub n_free: usize,
    /// Divergence beta.
    pub beta: f32,
    /// Iterations of the penalized joint fit (H and W_free).
    pub max_iter: usize,
    /// Relative tolerance of the joint fit, as [`FitOptions::tol`].
    pub tol: f64,
    /// Seed of W_free's and H's random start.
    pub seed: u64,
    /// Weight mu of the overlap penalty (0 = the plain semi-supervised fit).
    pub overlap: f32,
    /// Share q0 of the known source below which a bin is not penalized.
    pub share_floor: f32,
    /// Updates of H alone after the joint fit, without the penalty.
    pub release_iter: usize,
    /// L1 penalty on all of H, as [`FitOptions::sparsity`].
    pub sparsity: f32,
    /// Iterations of each stage of the residual start (see [`fit_semi`]); 0 = the plain
    /// random start.
    #[serde(default = "default_init_iter")]
    pub init_iter: usize,
    /// Exponent p of the tonality scaling of the overlap weight: the fit uses
    /// `overlap * T^p` with `T = `[`tonality`]`(W_known)`; 0 = the weight `overlap` as given.
    #[serde(default = "default_tonal_exponent")]
    pub tonal_exponent: f32,
}

fn default_init_iter() -> usize {
    50
}

fn default_tonal_exponent() -> f32 {
    TONAL_EXPONENT
}

/// The default exponent p of the tonality scaling of the overlap weight, offline
/// ([`SemiOptions::tonal_exponent`]) and live ([`crate::dsp::engine::LiveOptions`]).
pub const TONAL_EXPONENT: f32 = 4.0;

/// The default weight of the overlap penalty that keeps the free templates off the bins the
/// known sources dominate ([`SemiOptions::overlap`], offline; [`super::OnlineOptions`], live;
/// `nmfsep separate --rest-overlap`).
pub const OVERLAP_WEIGHT: f32 = 5.0;

impl Default for SemiOptions {
    fn default() -> Self {
        Self {
            n_free: 16,
            beta: 1.0,
            max_iter: 200,
            tol: 0.0,
            seed: 0,
            overlap: OVERLAP_WEIGHT,
            share_floor: 0.75,
            release_iter: 30,
            sparsity: 0.0,
            init_iter: default_init_iter(),
            tonal_exponent: default_tonal_exponent(),
        }
    }
}

/// The result of [`fit_semi`].
#[derive(Clone, Debug)]
pub struct SemiFactorization {
    /// All templates, n_bins x (K_known + K_free): W_known's columns unchanged (bit for bit),
    /// then W_free's with unit L1 norm.
    pub w: Array2<f32>,
    /// Activations, (K_known + K_free) x n_frames.
    pub h: Array2<f32>,
    /// K_known.
    pub k_known: usize,
    /// Cost history of the joint fit (`J` above, penalty included), then of the release
    /// stage (the plain divergence), iterations counted on from the joint fit's.
    pub cost: Vec<CostPoint>,
    /// Iterations of the joint fit that ran.
    pub n_iter: usize,
}

impl SemiFactorization {
    /// W_free, n_bins x K_free.
    pub fn w_free(&self) -> ArrayView2<'_, f32> {
        self.w.slice(s![.., self.k_known..])
    }

    /// W_free in the dictionary convention (unit L2 columns, entries floored at [`EPS`])
    /// and the mean activation of each free component over the frames, with each column's
    /// scale moved into it (so `W h_mean` is unchanged): the templates and `H_mean` of a
    /// dictionary learned "given" the known ones (`nmfsep learn --given`, the plugin's
    /// incremental capture). Allocates.
    pub fn free_templates(&self) -> (Array2<f32>, Vec<f32>) {
        let mut w = self.w_free().to_owned();
        let h = self.h.slice(s![self.k_known.., ..]);
        let mut h_mean = mean_spectrum(h).to_vec();
        for (mut col, m) in w.axis_iter_mut(Axis(1)).zip(h_mean.iter_mut()) {
            let norm = col.iter().map(|x| x * x).sum::<f32>().sqrt();
            if norm > 0.0 {
                col.mapv_inplace(|x| (x / norm).max(EPS));
                *m *= norm;
            }
        }
        (w, h_mean)
    }
}

/// Mean over frames of a spectrogram (n_bins x n_frames), n_bins values.
pub fn mean_spectrum(v: ArrayView2<f32>) -> Array1<f32> {
    v.mean_axis(Axis(1))
        .unwrap_or_else(|| Array1::zeros(v.nrows()))
}

/// The long-term share q_f in [0, 1] of the known source in each bin of the mixture, from
/// the known source's mean spectrum `known` and the mixture's `mix` (n_bins each, same
/// spectrogram kind). The log ratio `ln(known_f / mix_f)` is smoothed over
/// `f +- max(1, f / 12)` bins; the known source is then scaled by the largest gain the
/// mixture allows in 99 % of the bins, `q_f = exp(r_f - quantile_0.99(r))`, clipped to 1.
///
/// # Panics
/// If the lengths differ.
pub fn known_share(mix: &[f32], known: &[f32]) -> Vec<f32> {
    let n = mix.len();
    let mut out = vec![0.0f32; n];
    known_share_with(
        mix,
        known,
        &mut vec![0.0; n + 1],
        &mut vec![0.0; n],
        &mut out,
    );
    out
}

/// [`known_share`] into `out` (n_bins) with caller-owned scratch `prefix` (n_bins + 1) and
/// `sorted` (n_bins): allocates nothing.
///
/// # Panics
/// If the lengths differ.
pub fn known_share_with(
    mix: &[f32],
    known: &[f32],
    prefix: &mut [f64],
    sorted: &mut [f64],
    out: &mut [f32],
) {
    let n = mix.len();
    assert!(
        known.len() == n && prefix.len() == n + 1 && sorted.len() == n && out.len() == n,
        "known_share: lengths differ"
    );
    if n == 0 {
        return;
    }
    prefix[0] = 0.0;
    for (i, (&m, &c)) in mix.iter().zip(known).enumerate() {
        let lr = (f64::from(c) + 1e-12).ln() - (f64::from(m) + 1e-12).ln();
        prefix[i + 1] = prefix[i] + lr;
    }
    for (f, x) in sorted.iter_mut().enumerate() {
        let w = (f / 12).max(1);
        let (a, b) = (f.saturating_sub(w), (f + w + 1).min(n));
        *x = (prefix[b] - prefix[a]) / (b - a) as f64;
    }
    for (o, &x) in out.iter_mut().zip(sorted.iter()) {
        *o = x as f32; // the smoothed log ratio, before sorting
    }
    sorted.sort_unstable_by(f64::total_cmp);
    // numpy's default (linear) quantile.
    let pos = 0.99 * (n - 1) as f64;
    let (i, frac) = (pos.floor() as usize, pos - pos.floor());
    let top = sorted[i] + frac * (sorted[(i + 1).min(n - 1)] - sorted[i]);
    for o in out.iter_mut() {
        *o = (f64::from(*o) - top).exp().min(1.0) as f32;
    }
}

/// The per-bin penalty weights `e_f = max(q_f - q0, 0) / (1 - q_f + 0.05)` of the overlap
/// penalty, from the shares of [`known_share`].
pub fn overlap_weights(share: &[f32], share_floor: f32) -> Vec<f32> {
    let mut e = share.to_vec();
    overlap_weights_in_place(&mut e, share_floor);
    e
}

/// [`overlap_weights`] in place: `share` becomes the weights. Allocates nothing.
pub fn overlap_weights_in_place(share: &mut [f32], share_floor: f32) {
    for q in share.iter_mut() {
        *q = (*q - share_floor).max(0.0) / (1.0 - *q + 0.05);
    }
}

/// The mean spectrum used for the known source when its capture is not at hand: the row sums
/// of W_known (n_bins), every template weighted alike.
pub fn dictionary_spectrum(w_known: ArrayView2<f32>) -> Vec<f32> {
    w_known.sum_axis(Axis(1)).to_vec()
}

/// Tonality `T = 1 - median_j F_j` in [0, 1] of a dictionary (n_bins x K): `F_j` is the
/// spectral flatness (geometric over arithmetic mean, Gray & Markel 1974) of template j, its
/// entries floored at 1e-6 of the template's largest. Near 0 for smooth broadband templates
/// (a noise capture), near 1 for harmonic ones (notes). Measured on the bench's set A
/// (`nmfsep learn -k 16 --beta 1`): noise 0.52, drums 0.90, piano 0.995.
pub fn tonality(w: ArrayView2<f32>) -> f32 {
    let mut flat: Vec<f64> = w
        .columns()
        .into_iter()
        .map(|col| {
            let top = col.iter().fold(0.0f32, |m, &x| m.max(x));
            let floor = f64::from(top) * 1e-6 + 1e-30;
            let n = col.len().max(1) as f64;
            let (mut logs, mut sum) = (0.0f64, 0.0f64);
            for &x in col {
                let x = f64::from(x.max(0.0)) + floor;
                logs += x.ln();
                sum += x;
            }
            ((logs / n).exp() / (sum / n)).clamp(0.0, 1.0)
        })
        .collect();
    if flat.is_empty() {
        return 0.0;
    }
    flat.sort_unstable_by(f64::total_cmp);
    let m = flat.len();
    let median = if m % 2 == 1 {
        flat[m / 2]
    } else {
        0.5 * (flat[m / 2 - 1] + flat[m / 2])
    };
    (1.0 - median) as f32
}

/// Fits `v` (n_bins x n_frames, non-negative) as `[w_known | W_free] H` with `w_known`
/// (n_bins x K_known, K_known >= 1) held fixed and `opts.n_free` free templates learned with
/// the overlap penalty of the module documentation. `known_spectrum` (n_bins) is the mean
/// spectrum of the known source's capture, in the spectrogram kind of `v`; `None` uses
/// [`dictionary_spectrum`]. The observer sees every iteration of the penalized fit and of the
/// release (not those of the residual start, [`SemiOptions::init_iter`] x 2 cheaper ones).
///
/// # Errors
/// [`NmfError::InvalidInput`] for a bad `v`, mismatched bins, K_free = 0 or no known
/// template; [`NmfError::Cancelled`] if the observer breaks.
pub fn fit_semi(
    v: ArrayView2<f32>,
    w_known: ArrayView2<f32>,
    known_spectrum: Option<ArrayView1<f32>>,
    opts: &SemiOptions,
    observer: &mut dyn FnMut(Progress) -> ControlFlow<()>,
) -> Result<SemiFactorization, NmfError> {
    let (n_bins, n_frames) = v.dim();
    super::fit::validate(v)?;
    if w_known.nrows() != n_bins || w_known.ncols() == 0 {
        return Err(NmfError::InvalidInput(format!(
            "the known dictionary has {} bins x {} components, the spectrogram {n_bins} bins",
            w_known.nrows(),
            w_known.ncols()
        )));
    }
    if opts.n_free == 0 {
        return Err(NmfError::InvalidInput(
            "the number of free components must be at least 1".into(),
        ));
    }
    if let Some(c) = known_spectrum {
        if c.len() != n_bins {
            return Err(NmfError::InvalidInput(format!(
                "the known spectrum has {} bins, the spectrogram {n_bins}",
                c.len()
            )));
        }
    }
    let (kk, kf) = (w_known.ncols(), opts.n_free);
    let k = kk + kf;
    // Start: W_free uniform in [0.1, 1.1) with unit L1 columns, H uniform in [0.1, 1.1)
    // times sqrt(mean(V) / K) (the scale of scikit-learn's random start); then, with
    // `init_iter`, the residual start refines it.
    let mut rng = Pcg64::seed_from_u64(opts.seed);
    let mut w = Array2::<f32>::zeros((n_bins, k));
    w.slice_mut(s![.., ..kk]).assign(&w_known);
    for c in kk..k {
        let mut col = w.column_mut(c);
        col.iter_mut().for_each(|x| *x = rng.gen::<f32>() + 0.1);
        let sum: f32 = col.sum();
        col.mapv_inplace(|x| (x / sum).max(EPS));
    }
    let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len() as f64;
    let scale = ((mean / k as f64).sqrt() as f32).max(EPS);
    let mut h = Array2::from_shape_simple_fn((k, n_frames), || (rng.gen::<f32>() + 0.1) * scale);

    let kernels = Kernels::detect();
    if opts.init_iter > 0 {
        residual_start(v, &mut w, &mut h, kk, opts, kernels)?;
    }

    let mix = mean_spectrum(v);
    let known: Vec<f32> = match known_spectrum {
        Some(c) => c.to_vec(),
        None => dictionary_spectrum(w_known),
    };
    let penalty = SemiPenalty {
        fixed: kk,
        weight: overlap_weight(opts, w_known),
        bins: overlap_weights(
            &known_share(mix.as_slice().expect("contiguous"), &known),
            opts.share_floor,
        ),
    };
    let fit_opts = FitOptions {
        n_components: k,
        beta: opts.beta,
        max_iter: opts.max_iter,
        tol: opts.tol,
        seed: opts.seed,
        init: Init::Random,
        sparsity: opts.sparsity,
        cost_every: 10,
    };
    let total = opts.max_iter + opts.release_iter;
    let (mut cost, n_iter) = run_updates_semi(
        v,
        &mut w,
        &mut h,
        true,
        &fit_opts,
        kernels,
        Some(&penalty),
        &mut |p| {
            observer(Progress {
                max_iter: total,
                ..p
            })
        },
    )?;
    if opts.release_iter > 0 {
        let release = FitOptions {
            max_iter: opts.release_iter,
            tol: 0.0,
            ..fit_opts
        };
        let (c2, _) = run_updates_semi(
            v,
            &mut w,
            &mut h,
            false,
            &release,
            kernels,
            None,
            &mut |p| {
                observer(Progress {
                    iteration: n_iter + p.iteration,
                    max_iter: total,
                    cost: p.cost,
                })
            },
        )?;
        cost.extend(c2.into_iter().map(|c| CostPoint {
            iteration: n_iter + c.iteration,
            cost: c.cost,
        }));
    }
    // The fused layout copies the fixed columns out and back without arithmetic.
    debug_assert!(w.slice(s![.., ..kk]) == w_known);
    Ok(SemiFactorization {
        w,
        h,
        k_known: kk,
        cost,
        n_iter,
    })
}

/// The overlap weight the fit uses: `opts.overlap * T^p` with T the [`tonality`] of
/// `w_known` and p = `opts.tonal_exponent` (p = 0: `opts.overlap`).
///
/// Why: the penalty guards against free templates learning the parts of the known source
/// that its dictionary lacks (the notes of a piano that the capture did not play). A noise
/// capture's smooth templates explain the noise wherever it is, and there the penalty only
/// pushes the unknown source's energy (the high bins of speech) into the known one. Measured
/// on set A (BENCHMARKS.md, "Semi-supervised separation"): p = 4 gives weights 0.4 (noise),
/// 3.3 (drums) and 4.9 (piano) of 5.
pub fn overlap_weight(opts: &SemiOptions, w_known: ArrayView2<f32>) -> f32 {
    tonal_weight(opts.overlap, opts.tonal_exponent, w_known)
}

/// The rule of [`overlap_weight`] on its own: `mu * T^p` with T the [`tonality`] of
/// `w_known` (n_bins x K_known); `p = 0` gives `mu`; negative `mu` counts as 0. Used by the
/// offline fit and by the live learner alike.
pub fn tonal_weight(mu: f32, exponent: f32, w_known: ArrayView2<f32>) -> f32 {
    let mu = mu.max(0.0);
    if exponent > 0.0 && mu > 0.0 {
        mu * tonality(w_known).powf(exponent)
    } else {
        mu
    }
}

/// The residual start of [`fit_semi`]: `opts.init_iter` updates of the known rows of `h`
/// with W_known alone, then `opts.init_iter` updates of a plain NMF (W_free, unit L1
/// columns, and its rows of `h`) of the positive residual `max(V - W_known H_known, 0)`
/// floored at 1e-6 of max(V). `w`, `h` come in with their random start and go out with the
/// fitted one; W_known's columns are not changed. The free templates thus start from what
/// the known source does not explain (as `learn --given` learns only that), not from noise.
fn residual_start(
    v: ArrayView2<f32>,
    w: &mut Array2<f32>,
    h: &mut Array2<f32>,
    kk: usize,
    opts: &SemiOptions,
    kernels: Kernels,
) -> Result<(), NmfError> {
    let k = w.ncols();
    let stage = |n_components| FitOptions {
        n_components,
        beta: opts.beta,
        max_iter: opts.init_iter,
        tol: 0.0,
        seed: opts.seed,
        init: Init::Random,
        sparsity: 0.0,
        cost_every: opts.init_iter.max(1),
    };
    let mut wk = w.slice(s![.., ..kk]).to_owned();
    let mut hk = h.slice(s![..kk, ..]).to_owned();
    run_updates_semi(
        v,
        &mut wk,
        &mut hk,
        false,
        &stage(kk),
        kernels,
        None,
        &mut |_| ControlFlow::Continue(()),
    )?;
    let top = v.iter().fold(0.0f32, |m, &x| m.max(x));
    let mut resid = wk.dot(&hk);
    resid.zip_mut_with(&v, |r, &x| *r = (x - *r).max(0.0) + 1e-6 * top);
    let mut wf = w.slice(s![.., kk..]).to_owned();
    let mut hf = h.slice(s![kk.., ..]).to_owned();
    let free = SemiPenalty {
        fixed: 0,
        weight: 0.0,
        bins: vec![0.0; v.nrows()],
    };
    run_updates_semi(
        resid.view(),
        &mut wf,
        &mut hf,
        true,
        &stage(k - kk),
        kernels,
        Some(&free),
        &mut |_| ControlFlow::Continue(()),
    )?;
    w.slice_mut(s![.., kk..]).assign(&wf);
    h.slice_mut(s![..kk, ..]).assign(&hk);
    h.slice_mut(s![kk.., ..]).assign(&hf);
    Ok(())
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;
    use rand::{Rng, SeedableRng};
    use rand_pcg::Pcg64;

    use super::*;

    /// Two synthetic sources on disjoint bins; the known one's templates must come back
    /// bit-identical, and the penalized objective (cost every 10 iterations) must not rise.
    #[test]
    fn fixed_columns_stay_and_cost_does_not_rise() {
        let mut rng = Pcg64::seed_from_u64(7);
        let (nb, n) = (120, 80);
        let wk = Array2::from_shape_fn((nb, 4), |(f, _)| {
            if f < 60 {
                rng.gen::<f32>() + 0.01
            } else {
                0.01
            }
        });
        let wu = Array2::from_shape_fn(
            (nb, 3),
            |(f, _)| {
                if f >= 40 {
                    rng.gen::<f32>()
                } else {
                    0.0
                }
            },
        );
        let hk = Array2::from_shape_fn((4, n), |_| rng.gen::<f32>());
        let hu = Array2::from_shape_fn((3, n), |_| rng.gen::<f32>());
        let v = wk.dot(&hk) + wu.dot(&hu) + 1e-3;
        let known = wk.dot(&hk).mean_axis(Axis(1)).unwrap();
        let opts = SemiOptions {
            n_free: 4,
            max_iter: 60,
            release_iter: 0,
            ..SemiOptions::default()
        };
        let fit = fit_semi(v.view(), wk.view(), Some(known.view()), &opts, &mut |_| {
            ControlFlow::Continue(())
        })
        .unwrap();
        let got = fit.w.slice(s![.., ..4]);
        assert!(
            got.iter()
                .zip(wk.iter())
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "W_known changed"
        );
        for pair in fit.cost.windows(2) {
            assert!(
                pair[1].cost <= pair[0].cost * (1.0 + 1e-6),
                "cost rose: {:?}",
                fit.cost
            );
        }
        assert!(fit.cost.last().unwrap().cost < 0.5 * fit.cost[0].cost);
        assert_eq!(fit.w_free().dim(), (nb, 4));
    }

    /// Flat templates have tonality 0, templates with a few peaks nearly 1; the overlap
    /// weight follows `overlap * T^p`, and p = 0 leaves it as given.
    #[test]
    fn tonality_scales_the_overlap_weight() {
        let flat = Array2::<f32>::from_elem((64, 3), 0.5);
        let peaks =
            Array2::from_shape_fn((64, 3), |(f, c)| if f % (8 + c) == 0 { 1.0 } else { 0.0 });
        assert!(tonality(flat.view()) < 1e-6, "{}", tonality(flat.view()));
        assert!(tonality(peaks.view()) > 0.99, "{}", tonality(peaks.view()));
        let opts = SemiOptions::default();
        assert!(overlap_weight(&opts, flat.view()) < 1e-5);
        let w = overlap_weight(&opts, peaks.view());
        assert!(w > 0.95 * opts.overlap && w <= opts.overlap, "{w}");
        let fixed = SemiOptions {
            tonal_exponent: 0.0,
            ..SemiOptions::default()
        };
        assert_eq!(overlap_weight(&fixed, flat.view()), fixed.overlap);
    }

    #[test]
    fn share_is_one_where_the_known_source_dominates() {
        let mix = vec![1.0f32; 200];
        let known: Vec<f32> = (0..200).map(|f| if f >= 100 { 1.0 } else { 0.1 }).collect();
        let q = known_share(&mix, &known);
        assert!(q[150] > 0.99 && q[50] < 0.15, "{} {}", q[150], q[50]);
        let e = overlap_weights(&q, 0.75);
        assert_eq!(e[50], 0.0);
        assert!((e[150] - 5.0).abs() < 1e-3, "{}", e[150]);
    }
}
