//! Discriminative reconstruction templates (Weninger, Le Roux, Hershey & Watanabe 2014,
//! "Discriminative NMF and its application to single-channel source separation",
//! Interspeech, sec. 3): the activations H still come from the analysis dictionary W, but
//! each source's model spectrum is built from reconstruction templates W~ (n_bins x K)
//! trained so that the Wiener masks of synthetic mixtures of the clips give back the clips.
//!
//! The training data are mixtures of random STFT frames of the sources' clips at random
//! gains (the first [`TrainingSet`] share of every clip); the last part of every clip is
//! held back and its mixtures decide when to stop and whether the templates are kept at all:
//! if they do not beat `W~ = W` on the held-back mixtures, the model keeps `W`.
//!
//! Loss (the negative mean SDR of the masked STFT frames with the mixture's phase, in dB):
//! `L = -(1/S) sum_s 10 log10(ref_s / err_s)`, `err_s = sum |m_s x - y_s|^2`,
//! `ref_s = sum |y_s|^2`, with the masks of [`crate::dsp::mask::wiener_masks_in_place`]:
//! `m_s = P_s / sum_j P_j`, `P_s = (W~_s h_s + MODEL_FLOOR)^q`. Its gradient is written out in
//! [`loss_and_gradient`] and checked against finite differences in the tests. The templates
//! are optimized as `W~ = exp(theta)` with Adam (Kingma & Ba 2015, Algorithm 1), so they stay
//! positive.

use std::ops::ControlFlow;

use ndarray::{Array2, ArrayView2, Axis, Zip};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use realfft::num_complex::{Complex32, Complex64};

use crate::dsp::stft::floored_mean_spectrogram;
use crate::nmf::{fit_activations, ActivationOptions, NmfError, Progress};

/// Floor added to every source model before the mask exponent, so that a mask and its
/// gradient are defined where a model is zero.
pub const MODEL_FLOOR: f64 = 1e-12;
/// Floor of an error energy in the SDR, so that a perfect estimate has a finite loss.
const ERROR_FLOOR: f64 = 1e-20;

/// Settings of [`train_reconstruction`].
#[derive(Clone, Debug)]
pub struct DiscriminativeOptions {
    /// Synthetic mixtures (STFT frames) to train on.
    pub mixtures: usize,
    /// Synthetic mixtures of the held-back parts, for early stopping.
    pub held_back_mixtures: usize,
    /// Share of every clip's frames held back (its last frames), in (0, 1).
    pub held_back_share: f32,
    /// Each source's gain in a mixture is uniform within +-`gain_db` dB.
    pub gain_db: f32,
    /// Iterations of the activation fit of the mixtures (as the offline separation).
    pub activation_iterations: usize,
    /// Most optimizer steps.
    pub max_steps: usize,
    /// Mixtures per step.
    pub batch: usize,
    /// Adam's step size on `ln W~`.
    pub learning_rate: f64,
    /// Steps between two evaluations on the held-back mixtures.
    pub check_every: usize,
    /// Evaluations without improvement before stopping.
    pub patience: usize,
    /// Seed of the mixtures and of the batches.
    pub seed: u64,
}

impl Default for DiscriminativeOptions {
    fn default() -> Self {
        Self {
            mixtures: 1024,
            held_back_mixtures: 256,
            held_back_share: 0.2,
            gain_db: 6.0,
            activation_iterations: 100,
            max_steps: 400,
            batch: 256,
            learning_rate: 0.003,
            check_every: 20,
            patience: 10,
            seed: 0,
        }
    }
}

/// The analysis side of a separator: its dictionary W (n_bins x K), the divergence its
/// activations are fitted with and the exponent of the spectrograms they are fitted to (1
/// magnitude, 2 power).
#[derive(Clone, Copy, Debug)]
pub struct Analysis<'a> {
    /// The dictionary W, n_bins x K.
    pub w: ArrayView2<'a, f32>,
    /// Beta of the divergence.
    pub beta: f32,
    /// Spectrogram exponent.
    pub exponent: f32,
}

/// What [`train_reconstruction`] found.
#[derive(Clone, Debug)]
pub struct Reconstruction {
    /// The trained templates W~ (n_bins x K), or `None` when they did not beat the analysis
    /// templates on the held-back mixtures.
    pub templates: Option<Array2<f32>>,
    /// Mean SDR (dB) of the held-back mixtures with `W~ = W`.
    pub held_back_sdr_before: f64,
    /// Mean SDR (dB) of the held-back mixtures with the kept templates.
    pub held_back_sdr_after: f64,
    /// Optimizer steps run.
    pub steps: usize,
}

/// Synthetic mixtures of STFT frames: the mixtures `x` (n_bins x B), every source's part
/// `y[s]` (n_bins x B, their sum is `x`) and the activations `h` (K x B) of the mixtures'
/// spectrogram given the analysis templates.
pub struct TrainingSet {
    x: Array2<Complex64>,
    y: Vec<Array2<Complex64>>,
    h: Array2<f64>,
}

impl TrainingSet {
    /// Mixes `count` frames: for each mixture, one random frame of every source's `clips[s]`
    /// (n_bins x n_frames, complex STFT) within `frames[s]`, scaled by a random gain within
    /// +-`gain_db` dB; then fits the activations of the mixtures' spectrogram with
    /// `analysis` in `iterations` multiplicative updates.
    ///
    /// # Errors
    /// From the activation fit (a silent set of mixtures, say).
    pub fn mix(
        clips: &[ArrayView2<Complex32>],
        frames: &[std::ops::Range<usize>],
        count: usize,
        gain_db: f32,
        analysis: Analysis,
        iterations: usize,
        rng: &mut Pcg64,
    ) -> Result<Self, NmfError> {
        let Analysis { w, beta, exponent } = analysis;
        let n_bins = w.nrows();
        let mut y = vec![Array2::<Complex32>::zeros((n_bins, count)); clips.len()];
        for b in 0..count {
            for ((clip, range), ys) in clips.iter().zip(frames).zip(y.iter_mut()) {
                let t = rng.gen_range(range.clone());
                let gain = 10f32.powf(rng.gen_range(-gain_db..=gain_db) / 20.0);
                Zip::from(ys.column_mut(b))
                    .and(clip.column(t))
                    .for_each(|o, &c| *o = c * gain);
            }
        }
        let mut x = Array2::<Complex32>::zeros((n_bins, count));
        y.iter().for_each(|ys| x += ys);
        let opts = ActivationOptions {
            beta,
            max_iter: iterations,
            tol: 0.0,
            sparsity: 0.0,
            cost_every: iterations.max(1),
        };
        let v = floored_mean_spectrogram(&[&x], exponent);
        let (h, _) = fit_activations(v.view(), w, &opts)?;
        let wide = |z: &Complex32| Complex64::new(z.re.into(), z.im.into());
        Ok(Self {
            x: x.map(wide),
            y: y.iter().map(|ys| ys.map(wide)).collect(),
            h: h.mapv(f64::from),
        })
    }

    /// Number of mixtures.
    pub fn len(&self) -> usize {
        self.x.ncols()
    }

    /// Whether the set holds no mixture.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The mixtures at `cols`, as a set of their own.
    fn select(&self, cols: &[usize]) -> Self {
        Self {
            x: self.x.select(Axis(1), cols),
            y: self.y.iter().map(|y| y.select(Axis(1), cols)).collect(),
            h: self.h.select(Axis(1), cols),
        }
    }
}

/// The loss `L` of the module documentation for templates `w_rec` (n_bins x K) whose
/// components `groups[s]` model source `s`, mask exponent `q`, on `set`; with `grad`, also
/// its gradient with respect to `w_rec` (same shape), by the chain rule:
/// - `dL/d err_s = 10 / (ln 10 S err_s)`, so `g_s = dL/dm_s = dL/d err_s 2 (m_s |x|^2 - Re(conj(x) y_s))`;
/// - through the normalization, `dL/dP_j = (g_j - sum_s g_s m_s) / sum_s P_s`;
/// - through the exponent, `dL/d model_j = q (model_j + MODEL_FLOOR)^(q-1) dL/dP_j`;
/// - through the product, `dL/dW~[:, k] = sum over mixtures of dL/d model_j h_k` for `k` in
///   `groups[j]`.
pub fn loss_and_gradient(
    w_rec: ArrayView2<f64>,
    groups: &[Vec<usize>],
    q: f64,
    set: &TrainingSet,
    grad: Option<&mut Array2<f64>>,
) -> f64 {
    let n_sources = groups.len();
    let models: Vec<Array2<f64>> = groups
        .iter()
        .map(|g| {
            let w = w_rec.select(Axis(1), g);
            let h = set.h.select(Axis(0), g);
            w.dot(&h).mapv(|m| m + MODEL_FLOOR)
        })
        .collect();
    // x^q and x^(q-1), with the common exponents exact and without `powf`.
    let pow = |v: f64, q: f64| match q {
        1.0 => v,
        2.0 => v * v,
        0.0 => 1.0,
        _ => v.powf(q),
    };
    let powers: Vec<Array2<f64>> = models.iter().map(|m| m.mapv(|v| pow(v, q))).collect();
    let mut total = Array2::<f64>::zeros(set.x.raw_dim());
    powers.iter().for_each(|p| total += p);
    let masks: Vec<Array2<f64>> = powers.iter().map(|p| p / &total).collect();
    let errors: Vec<f64> = masks
        .iter()
        .zip(&set.y)
        .map(|(m, y)| {
            Zip::from(m)
                .and(&set.x)
                .and(y)
                .fold(0.0, |acc, &m, x, y| acc + (x * m - y).norm_sqr())
                + ERROR_FLOOR
        })
        .collect();
    let refs: Vec<f64> = set
        .y
        .iter()
        .map(|y| y.iter().map(|z| z.norm_sqr()).sum::<f64>() + ERROR_FLOOR)
        .collect();
    let loss = errors
        .iter()
        .zip(&refs)
        .map(|(e, r)| 10.0 * (e / r).log10())
        .sum::<f64>()
        / n_sources as f64;
    let Some(grad) = grad else {
        return loss;
    };
    let scale = 10.0 / (std::f64::consts::LN_10 * n_sources as f64);
    let g: Vec<Array2<f64>> = masks
        .iter()
        .zip(&set.y)
        .zip(&errors)
        .map(|((m, y), e)| {
            let a = scale / e;
            let mut g = m.clone();
            Zip::from(&mut g)
                .and(&set.x)
                .and(y)
                .for_each(|g, x, y| *g = a * 2.0 * (*g * x.norm_sqr() - (x.conj() * y).re));
            g
        })
        .collect();
    let mut g_mean = Array2::<f64>::zeros(set.x.raw_dim());
    for (gs, m) in g.iter().zip(&masks) {
        g_mean += &(gs * m);
    }
    grad.fill(0.0);
    for (j, group) in groups.iter().enumerate() {
        let mut d = g[j].clone();
        Zip::from(&mut d)
            .and(&g_mean)
            .and(&total)
            .and(&models[j])
            .for_each(|d, &gm, &t, &model| *d = q * pow(model, q - 1.0) * (*d - gm) / t);
        let h = set.h.select(Axis(0), group);
        let gw = d.dot(&h.t());
        for (i, &k) in group.iter().enumerate() {
            grad.column_mut(k).assign(&gw.column(i));
        }
    }
    loss
}

/// Trains reconstruction templates for the dictionary of `analysis` (its components
/// `groups[s]` modelling source `s`) from `clips[s]` (n_bins x n_frames complex STFT of the
/// mono downmix of source `s`'s clip, the frames to hold back last), for masks of exponent
/// `mask_power` (the exponent on the models is `mask_power / exponent`). `observer` sees one
/// [`Progress`] per step and may cancel.
///
/// # Errors
/// [`NmfError::InvalidInput`] for fewer than two sources, a clip too short to hold frames
/// back, or a bad setting; [`NmfError::Cancelled`] if `observer` breaks.
pub fn train_reconstruction(
    clips: &[ArrayView2<Complex32>],
    groups: &[Vec<usize>],
    analysis: Analysis,
    mask_power: f32,
    opts: &DiscriminativeOptions,
    observer: &mut dyn FnMut(Progress) -> ControlFlow<()>,
) -> Result<Reconstruction, NmfError> {
    let Analysis { w, exponent, .. } = analysis;
    let bad = |m: &str| Err(NmfError::InvalidInput(m.to_string()));
    if clips.len() < 2 || clips.len() != groups.len() {
        return bad("discriminative training needs one clip per source, two or more");
    }
    if !(opts.held_back_share > 0.0 && opts.held_back_share < 1.0)
        || opts.batch == 0
        || opts.check_every == 0
        || !(opts.learning_rate.is_finite() && opts.learning_rate > 0.0)
    {
        return bad("bad discriminative training settings");
    }
    let mut train_frames = Vec::new();
    let mut held_frames = Vec::new();
    for c in clips {
        let n = c.ncols();
        let cut = ((n as f32) * (1.0 - opts.held_back_share)).round() as usize;
        if cut == 0 || cut >= n {
            return bad("a clip is too short to hold frames back");
        }
        train_frames.push(0..cut);
        held_frames.push(cut..n);
    }
    let mut rng = Pcg64::seed_from_u64(opts.seed);
    let it = opts.activation_iterations;
    let (count, gain) = (opts.mixtures, opts.gain_db);
    let train = TrainingSet::mix(clips, &train_frames, count, gain, analysis, it, &mut rng)?;
    let count = opts.held_back_mixtures;
    let held = TrainingSet::mix(clips, &held_frames, count, gain, analysis, it, &mut rng)?;
    let q = f64::from(mask_power / exponent);
    let w0 = w.mapv(f64::from);
    let mut theta = w0.mapv(|v| v.max(MODEL_FLOOR).ln());
    let before = -loss_and_gradient(w0.view(), groups, q, &held, None);
    let (mut best, mut best_theta, mut since_best) = (before, None, 0);
    let mut grad = Array2::<f64>::zeros(w0.raw_dim());
    let (mut m1, mut m2) = (grad.clone(), grad.clone());
    let (b1, b2, adam_eps) = (0.9f64, 0.999f64, 1e-8);
    let mut steps = 0;
    for step in 1..=opts.max_steps {
        let cols: Vec<usize> = (0..opts.batch)
            .map(|_| rng.gen_range(0..train.len()))
            .collect();
        let batch = train.select(&cols);
        let w_rec = theta.mapv(f64::exp);
        let loss = loss_and_gradient(w_rec.view(), groups, q, &batch, Some(&mut grad));
        // The gradient with respect to theta = ln W~.
        grad *= &w_rec;
        let (c1, c2) = (1.0 - b1.powi(step as i32), 1.0 - b2.powi(step as i32));
        Zip::from(&mut theta)
            .and(&mut m1)
            .and(&mut m2)
            .and(&grad)
            .for_each(|t, m, v, &g| {
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                *t -= opts.learning_rate * (*m / c1) / ((*v / c2).sqrt() + adam_eps);
            });
        steps = step;
        let progress = Progress {
            iteration: step,
            max_iter: opts.max_steps,
            cost: Some(loss),
        };
        if observer(progress).is_break() {
            return Err(NmfError::Cancelled);
        }
        if step % opts.check_every == 0 {
            let sdr = -loss_and_gradient(theta.mapv(f64::exp).view(), groups, q, &held, None);
            if sdr > best {
                (best, best_theta, since_best) = (sdr, Some(theta.clone()), 0);
            } else {
                since_best += 1;
                if since_best >= opts.patience {
                    break;
                }
            }
        }
    }
    Ok(Reconstruction {
        templates: best_theta.map(|t| t.mapv(|v| v.exp() as f32)),
        held_back_sdr_before: before,
        held_back_sdr_after: best,
        steps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small random problem: 2 sources of 2 components over 6 bins, 5 mixtures.
    fn problem(seed: u64) -> (Array2<f64>, Vec<Vec<usize>>, TrainingSet) {
        let mut rng = Pcg64::seed_from_u64(seed);
        let (n_bins, k, b) = (6, 4, 5);
        let w = Array2::from_shape_fn((n_bins, k), |_| rng.gen_range(0.1..1.0));
        let y: Vec<Array2<Complex64>> = (0..2)
            .map(|_| {
                Array2::from_shape_fn((n_bins, b), |_| {
                    Complex64::new(rng.gen_range(-1.0..1.0), rng.gen_range(-1.0..1.0))
                })
            })
            .collect();
        let x = &y[0] + &y[1];
        let h = Array2::from_shape_fn((k, b), |_| rng.gen_range(0.05..1.0));
        (w, vec![vec![0, 2], vec![1, 3]], TrainingSet { x, y, h })
    }

    #[test]
    fn the_gradient_matches_central_differences() {
        for (seed, q) in [(1, 2.0), (2, 1.0), (3, 1.5)] {
            let (w, groups, set) = problem(seed);
            let mut grad = Array2::zeros(w.raw_dim());
            loss_and_gradient(w.view(), &groups, q, &set, Some(&mut grad));
            let step = 1e-6;
            for ((f, k), &g) in grad.indexed_iter() {
                let mut plus = w.clone();
                plus[[f, k]] += step;
                let mut minus = w.clone();
                minus[[f, k]] -= step;
                let fd = (loss_and_gradient(plus.view(), &groups, q, &set, None)
                    - loss_and_gradient(minus.view(), &groups, q, &set, None))
                    / (2.0 * step);
                let tol = 1e-6 * (1.0 + fd.abs());
                assert!(
                    (fd - g).abs() < tol,
                    "seed {seed} q {q} [{f}, {k}]: analytic {g:e}, finite difference {fd:e}"
                );
            }
            assert!(
                grad.iter().any(|g| g.abs() > 1e-3),
                "a gradient of zero tests nothing"
            );
        }
    }

    #[test]
    fn masks_sum_to_one_and_the_loss_is_the_negative_mean_sdr() {
        let (w, groups, set) = problem(4);
        let q = 2.0;
        let models: Vec<Array2<f64>> = groups
            .iter()
            .map(|g| w.select(Axis(1), g).dot(&set.h.select(Axis(0), g)) + MODEL_FLOOR)
            .collect();
        let p: Vec<Array2<f64>> = models.iter().map(|m| m.mapv(|v| v * v)).collect();
        let total = &p[0] + &p[1];
        let mut sdr = 0.0;
        for (s, ps) in p.iter().enumerate() {
            let m = ps / &total;
            let err: f64 = Zip::from(&m)
                .and(&set.x)
                .and(&set.y[s])
                .fold(0.0, |a, &m, x, y| a + (x * m - y).norm_sqr());
            let r: f64 = set.y[s].iter().map(|z| z.norm_sqr()).sum();
            sdr += 10.0 * (r / err).log10() / 2.0;
        }
        let loss = loss_and_gradient(w.view(), &groups, q, &set, None);
        assert!((loss + sdr).abs() < 1e-9, "loss {loss}, mean SDR {sdr}");
    }

    /// Two sources with overlapping spectra and analysis templates that spread each over
    /// the other's bins: the trained templates must separate the held-back mixtures better,
    /// and the observer can cancel.
    #[test]
    fn training_beats_poor_templates_on_held_back_mixtures() {
        let mut rng = Pcg64::seed_from_u64(11);
        let (n_bins, n_frames) = (24, 300);
        let shape = |f: usize, centre: f32| (-((f as f32 - centre) / 3.0).powi(2)).exp() + 0.01;
        let clip = |centre: f32, rng: &mut Pcg64| {
            Array2::from_shape_fn((n_bins, n_frames), |(f, _)| {
                let phase = rng.gen_range(0.0..std::f32::consts::TAU);
                Complex32::from_polar(shape(f, centre) * rng.gen_range(0.5..1.5), phase)
            })
        };
        let clips = [clip(7.0, &mut rng), clip(14.0, &mut rng)];
        let views: Vec<_> = clips.iter().map(|c| c.view()).collect();
        // Each template is its source's shape, blurred towards the other source's.
        let w = Array2::from_shape_fn((n_bins, 2), |(f, k)| {
            let (own, other) = if k == 0 { (7.0, 14.0) } else { (14.0, 7.0) };
            shape(f, own) + 0.6 * shape(f, other)
        });
        let groups = [vec![0], vec![1]];
        let opts = DiscriminativeOptions {
            mixtures: 256,
            held_back_mixtures: 128,
            batch: 64,
            max_steps: 200,
            learning_rate: 0.03,
            ..DiscriminativeOptions::default()
        };
        let analysis = Analysis {
            w: w.view(),
            beta: 1.0,
            exponent: 1.0,
        };
        let r = train_reconstruction(&views, &groups, analysis, 2.0, &opts, &mut |_| {
            ControlFlow::Continue(())
        })
        .unwrap();
        assert!(
            r.held_back_sdr_after > r.held_back_sdr_before + 1.0,
            "{:.2} -> {:.2} dB",
            r.held_back_sdr_before,
            r.held_back_sdr_after
        );
        let t = r.templates.expect("better templates are kept");
        assert_eq!(t.dim(), w.dim());
        let cancelled = train_reconstruction(&views, &groups, analysis, 2.0, &opts, &mut |p| {
            if p.iteration >= 3 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        assert!(matches!(cancelled, Err(NmfError::Cancelled)));
    }
}
