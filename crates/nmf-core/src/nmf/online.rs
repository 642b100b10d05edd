//! The live learner of the free templates: a sliding-window refit of W_free off the audio
//! thread, W_known fixed.
//!
//! The audio thread solves each frame's activations with `[W_known | W_free]` as today and
//! hands the frame (its spectrum and activations) over; a worker owns an [`OnlineLearner`],
//! pushes the frames into its window of the last `window` frames and, every so many frames,
//! calls [`OnlineLearner::refit`]: a few multiplicative updates of the window's H and of
//! W_free with the overlap penalty of [`super::semi`], warm-started from the previous W_free
//! and from the activations the frames came with. The new W_free goes back to the audio
//! thread, which swaps it in at a frame boundary.
//!
//! Sources: the updates are Févotte & Idier 2011 (eq. 4.1-4.2, W restricted to the free
//! columns); learning W_free from a moving excerpt with W_known fixed is the online
//! semi-supervised setting of Duan, Mysore & Smaragdis 2012 ("Online PLCA for real-time
//! semi-supervised source separation", LVA/ICA 2012), here in the sliding-window form of
//! Joder, Weninger, Eyben, Virette & Schuller 2012 ("Real-time speech separation by
//! semi-supervised nonnegative matrix factorization", LVA/ICA 2012) rather than the
//! stochastic accumulated statistics of Lefèvre, Bach & Févotte 2011 ("Online algorithms for
//! nonnegative matrix factorization with the Itakura-Saito divergence", WASPAA 2011): a
//! window forgets a sound that has stopped, and the refit has a fixed cost.
//!
//! Allocation: everything is allocated in [`OnlineLearner::new`]; `push_frame`, `refit`,
//! `w_free` and `set_w_free` allocate nothing. The learner is deterministic for a seed.

use ndarray::{s, Array2, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

use super::beta::EPS;
use super::fit::WindowFit;
use super::semi::{dictionary_spectrum, known_share_with, overlap_weights_in_place};
use super::NmfError;

/// Settings of the [`OnlineLearner`].
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct OnlineOptions {
    /// Number of free templates K_free (>= 1).
    pub n_free: usize,
    /// Frames in the sliding window (>= 1).
    pub window: usize,
    /// Multiplicative-update iterations per refit.
    pub refit_iters: usize,
    /// Divergence beta.
    pub beta: f32,
    /// Weight of the overlap penalty ([`super::semi::SemiOptions::overlap`]).
    pub overlap: f32,
    /// Share floor q0 ([`super::semi::SemiOptions::share_floor`]).
    pub share_floor: f32,
    /// Seed of W_free's start.
    pub seed: u64,
    /// Iterations of each stage of the residual start of the first refits (0: none): H_known
    /// fitted with W_known alone on the window, then W_free and H_free from an NMF of the
    /// positive residual, as [`super::semi::SemiOptions::init_iter`] offline.
    #[serde(default)]
    pub init_iters: usize,
    /// Refits that begin with the residual start (the first ones).
    #[serde(default)]
    pub init_refits: usize,
}

impl Default for OnlineOptions {
    fn default() -> Self {
        Self {
            n_free: 16,
            window: 256,
            refit_iters: 10,
            beta: 1.0,
            overlap: super::semi::OVERLAP_WEIGHT,
            share_floor: 0.75,
            seed: 0,
            init_iters: 0,
            init_refits: 0,
        }
    }
}

/// Sliding-window learner of W_free (n_bins x K_free) next to a fixed W_known
/// (n_bins x K_known). Frames are n_bins spectrogram columns of the same kind as W_known
/// (the engine's floored mean spectrogram of the channels).
pub struct OnlineLearner {
    n_bins: usize,
    k_known: usize,
    opts: OnlineOptions,
    /// `[W_known | W_free]`, n_bins x K; the free part is the learner's newest estimate.
    w: Array2<f32>,
    /// Ring of the window's frames (window x n_bins) and activations (window x K).
    frames: Vec<f32>,
    acts: Vec<f32>,
    /// The refit's start of the window's activations (window x K, window order).
    start: Vec<f32>,
    /// Index of the oldest frame in the rings and number of frames held.
    head: usize,
    len: usize,
    /// Mean spectrum of the known source (n_bins), and scratch for the window's mean.
    known: Vec<f32>,
    mix_mean: Vec<f32>,
    /// Scratch of the penalty's bins: share, then weights (n_bins); prefix sums (n_bins + 1)
    /// and sorted ratios (n_bins).
    bins: Vec<f32>,
    prefix: Vec<f64>,
    sorted: Vec<f64>,
    fit: WindowFit,
    /// The residual start's fits (H_known alone; NMF of the residual), its residual frames
    /// (window x n_bins) and W_free scratch (n_bins x K_free); allocated only with
    /// `init_iters` > 0.
    init: Option<Box<ResidualStart>>,
    refits: u64,
}

struct ResidualStart {
    known: WindowFit,
    free: WindowFit,
    resid: Vec<f32>,
    w_free: Array2<f32>,
}

impl OnlineLearner {
    /// A learner for `w_known` (n_bins x K_known, K_known >= 1), with the known source's mean
    /// spectrum `known_spectrum` (n_bins; `None`: W_known's row sums). W_free starts uniform
    /// random in [0.1, 1.1) from `opts.seed`, unit L1 columns.
    ///
    /// # Errors
    /// [`NmfError::InvalidInput`] for empty or mismatched shapes, or zero sizes in `opts`.
    pub fn new(
        w_known: ArrayView2<f32>,
        known_spectrum: Option<&[f32]>,
        opts: OnlineOptions,
    ) -> Result<Self, NmfError> {
        let (n_bins, kk) = w_known.dim();
        if n_bins == 0 || kk == 0 || opts.n_free == 0 || opts.window == 0 {
            return Err(NmfError::InvalidInput(
                "the online learner needs bins, known and free components and a window".into(),
            ));
        }
        if known_spectrum.is_some_and(|c| c.len() != n_bins) {
            return Err(NmfError::InvalidInput(format!(
                "the known spectrum does not have the dictionary's {n_bins} bins"
            )));
        }
        let k = kk + opts.n_free;
        let mut w = Array2::<f32>::zeros((n_bins, k));
        w.slice_mut(s![.., ..kk]).assign(&w_known);
        let mut rng = Pcg64::seed_from_u64(opts.seed);
        for c in kk..k {
            let mut col = w.column_mut(c);
            col.iter_mut().for_each(|x| *x = rng.gen::<f32>() + 0.1);
            let sum: f32 = col.sum();
            col.mapv_inplace(|x| x / sum);
        }
        let known = known_spectrum
            .map(<[f32]>::to_vec)
            .unwrap_or_else(|| dictionary_spectrum(w_known));
        let init = (opts.init_iters > 0 && opts.init_refits > 0).then(|| {
            Box::new(ResidualStart {
                known: WindowFit::new(n_bins, opts.window, kk, kk, opts.beta),
                free: WindowFit::new(n_bins, opts.window, opts.n_free, 0, opts.beta),
                resid: vec![0.0; opts.window * n_bins],
                w_free: Array2::zeros((n_bins, opts.n_free)),
            })
        });
        Ok(Self {
            init,
            n_bins,
            k_known: kk,
            fit: WindowFit::new(n_bins, opts.window, k, kk, opts.beta),
            frames: vec![0.0; opts.window * n_bins],
            acts: vec![0.0; opts.window * k],
            start: vec![0.0; opts.window * k],
            head: 0,
            len: 0,
            known,
            mix_mean: vec![0.0; n_bins],
            bins: vec![0.0; n_bins],
            prefix: vec![0.0; n_bins + 1],
            sorted: vec![0.0; n_bins],
            w,
            opts,
            refits: 0,
        })
    }

    /// Number of bins.
    pub fn n_bins(&self) -> usize {
        self.n_bins
    }

    /// K_known + K_free.
    pub fn n_components(&self) -> usize {
        self.w.ncols()
    }

    /// Frames currently in the window (at most `window`).
    pub fn frames_held(&self) -> usize {
        self.len
    }

    /// Refits done so far.
    pub fn refits(&self) -> u64 {
        self.refits
    }

    /// The settings.
    pub fn options(&self) -> &OnlineOptions {
        &self.opts
    }

    /// Appends a frame: `v` its spectrum (n_bins, non-negative), `h` its activations
    /// (K = K_known + K_free) from the audio thread's solve, or `None` (then a flat start).
    /// The oldest frame leaves a full window. Allocates nothing.
    ///
    /// # Panics
    /// If a slice has the wrong length.
    pub fn push_frame(&mut self, v: &[f32], h: Option<&[f32]>) {
        let (nb, k, cap) = (self.n_bins, self.w.ncols(), self.opts.window);
        assert_eq!(v.len(), nb, "push_frame: spectrum length");
        let slot = if self.len < cap {
            self.len += 1;
            (self.head + self.len - 1) % cap
        } else {
            let s = self.head;
            self.head = (self.head + 1) % cap;
            s
        };
        self.frames[slot * nb..(slot + 1) * nb].copy_from_slice(v);
        let a = &mut self.acts[slot * k..(slot + 1) * k];
        match h {
            Some(h) => {
                assert_eq!(h.len(), k, "push_frame: activations length");
                a.copy_from_slice(h);
            }
            None => {
                let mean = v.iter().sum::<f32>() / nb as f32;
                a.fill((mean / k as f32).sqrt().max(EPS));
            }
        }
    }

    /// Refits W_free on the window (`opts.refit_iters` penalized MU iterations of the
    /// window's H and of W_free, W_known fixed) and returns the new W_free
    /// (n_bins x K_free). With no frame held, returns W_free unchanged. The free rows of the
    /// window's activations are first floored at 1e-3 of the window's largest activation,
    /// so that templates that went unused (a silent rest) can come back when their sound
    /// starts. Every refit starts from the audio thread's activations (the refined ones are
    /// not kept: measured better, BENCHMARKS.md "Live"); the first `opts.init_refits` refits
    /// begin with the residual start of [`OnlineOptions::init_iters`]. Allocates nothing.
    pub fn refit(&mut self) -> ArrayView2<'_, f32> {
        let (nb, k, kk, cap) = (self.n_bins, self.w.ncols(), self.k_known, self.opts.window);
        if self.len > 0 && self.opts.refit_iters > 0 {
            // The penalty's bins from the window's mean spectrum.
            self.mix_mean.fill(0.0);
            for i in 0..self.len {
                let slot = (self.head + i) % cap;
                for (m, &x) in self.mix_mean.iter_mut().zip(&self.frames[slot * nb..]) {
                    *m += x;
                }
            }
            let inv = 1.0 / self.len as f32;
            self.mix_mean.iter_mut().for_each(|m| *m *= inv);
            known_share_with(
                &self.mix_mean,
                &self.known,
                &mut self.prefix,
                &mut self.sorted,
                &mut self.bins,
            );
            overlap_weights_in_place(&mut self.bins, self.opts.share_floor);
            self.fit.set_penalty(self.opts.overlap.max(0.0), &self.bins);
            // The start of the window's activations: the audio thread's (the activations the
            // frames came with), free rows floored (wake-up floor), in window order.
            let top = self.acts[..self.len * k]
                .iter()
                .fold(0.0f32, |m, &x| m.max(x));
            let floor = (1e-3 * top).max(EPS);
            for i in 0..self.len {
                let slot = (self.head + i) % cap;
                let a = &mut self.start[i * k..(i + 1) * k];
                a.copy_from_slice(&self.acts[slot * k..(slot + 1) * k]);
                for x in &mut a[kk..] {
                    *x = x.max(floor);
                }
            }
            if self.refits < self.opts.init_refits as u64 {
                self.residual_start();
            }
            let (frames, start, head) = (&self.frames, &self.start, self.head);
            self.fit.load(self.len, |i| {
                let slot = (head + i) % cap;
                (
                    &frames[slot * nb..(slot + 1) * nb],
                    &start[i * k..(i + 1) * k],
                )
            });
            self.fit.set_w(self.w.view());
            self.fit.iterate(self.opts.refit_iters);
            self.fit.w_into(self.w.view_mut());
            self.refits += 1;
        }
        self.w_free()
    }

    /// The residual start (see [`OnlineOptions::init_iters`]) on the window: replaces W_free
    /// and the window's activations. Allocates nothing.
    fn residual_start(&mut self) {
        let Some(init) = self.init.as_deref_mut() else {
            return;
        };
        let (nb, k, kk, cap, n) = (
            self.n_bins,
            self.w.ncols(),
            self.k_known,
            self.opts.window,
            self.len,
        );
        let iters = self.opts.init_iters;
        let (frames, start, head) = (&self.frames, &self.start, self.head);
        init.known.load(n, |i| {
            let slot = (head + i) % cap;
            (
                &frames[slot * nb..(slot + 1) * nb],
                &start[i * k..i * k + kk],
            )
        });
        init.known.set_w(self.w.slice(s![.., ..kk]));
        init.known.iterate(iters);
        let top = (0..n)
            .flat_map(|i| {
                let slot = (head + i) % cap;
                frames[slot * nb..(slot + 1) * nb].iter().copied()
            })
            .fold(0.0f32, f32::max);
        for i in 0..n {
            let slot = (head + i) % cap;
            let hk = init.known.h_frame(i);
            let v = &frames[slot * nb..(slot + 1) * nb];
            let r = &mut init.resid[i * nb..(i + 1) * nb];
            for (f, (r, &x)) in r.iter_mut().zip(v).enumerate() {
                let y: f32 = (0..kk).map(|c| self.w[[f, c]] * hk[c]).sum();
                *r = (x - y).max(0.0) + 1e-6 * top;
            }
        }
        let resid = &init.resid;
        init.free.load(n, |i| {
            (
                &resid[i * nb..(i + 1) * nb],
                &start[i * k + kk..(i + 1) * k],
            )
        });
        init.free.set_w(self.w.slice(s![.., kk..]));
        init.free.iterate(iters);
        init.free.w_into(init.w_free.view_mut());
        self.w.slice_mut(s![.., kk..]).assign(&init.w_free);
        for i in 0..n {
            let a = &mut self.start[i * k..(i + 1) * k];
            a[..kk].copy_from_slice(init.known.h_frame(i));
            a[kk..].copy_from_slice(init.free.h_frame(i));
        }
    }

    /// The current W_free, n_bins x K_free.
    pub fn w_free(&self) -> ArrayView2<'_, f32> {
        self.w.slice(s![.., self.k_known..])
    }

    /// All templates `[W_known | W_free]`, n_bins x K.
    pub fn w(&self) -> ArrayView2<'_, f32> {
        self.w.view()
    }

    /// Replaces W_free (n_bins x K_free, e.g. restored with a project), entries floored at
    /// the epsilon. Allocates nothing.
    ///
    /// # Errors
    /// [`NmfError::InvalidInput`] if the shape differs or an entry is negative or not finite.
    pub fn set_w_free(&mut self, w_free: ArrayView2<f32>) -> Result<(), NmfError> {
        if w_free.dim() != (self.n_bins, self.opts.n_free) {
            return Err(NmfError::InvalidInput(format!(
                "W_free is {:?}, the learner holds {} bins x {} free components",
                w_free.dim(),
                self.n_bins,
                self.opts.n_free
            )));
        }
        if w_free.iter().any(|x| !(x.is_finite() && *x >= 0.0)) {
            return Err(NmfError::InvalidInput(
                "W_free has negative or non-finite values".into(),
            ));
        }
        let kk = self.k_known;
        self.w
            .slice_mut(s![.., kk..])
            .zip_mut_with(&w_free, |d, &x| *d = x.max(EPS));
        Ok(())
    }

    /// The penalized objective `D_beta(V | W H) + penalty` of the window as loaded at the
    /// last refit (for tests and diagnostics).
    pub fn window_objective(&mut self) -> f64 {
        self.fit.objective()
    }
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    use super::*;

    /// 64 bins: the known source lives in bins 0..32 (one template), the unknown one in bins
    /// 40..48 and only starts at frame 200. The rest's model is silent before, and comes back
    /// (explains most of the unknown energy) within a few refits after the start; a learner
    /// that is not refitted keeps its templates bit for bit.
    #[test]
    fn silent_rest_comes_back_and_freeze_keeps_templates() {
        let nb = 64;
        let mut wk = Array2::<f32>::from_elem((nb, 1), 1e-4);
        for f in 0..32 {
            wk[[f, 0]] = 1.0;
        }
        let unknown: Vec<f32> = (0..nb)
            .map(|f| if (40..48).contains(&f) { 1.0 } else { 0.0 })
            .collect();
        let opts = OnlineOptions {
            n_free: 2,
            window: 64,
            refit_iters: 10,
            ..OnlineOptions::default()
        };
        let mut learner = OnlineLearner::new(wk.view(), None, opts.clone()).unwrap();
        let mut frozen = OnlineLearner::new(wk.view(), None, opts).unwrap();
        let before = frozen.w_free().to_owned();
        let mut frame = vec![0.0f32; nb];
        let mut explained = 0.0;
        for t in 0..400 {
            let on = if t >= 200 { 1.0 } else { 0.0 };
            for f in 0..nb {
                frame[f] =
                    wk[[f, 0]] * (1.0 + 0.2 * ((t as f32) * 0.3).sin()) + on * unknown[f] + 1e-6;
            }
            learner.push_frame(&frame, None);
            frozen.push_frame(&frame, None);
            if (t + 1) % 16 == 0 {
                learner.refit();
            }
            if t == 399 {
                // Fraction of the unknown bins' energy in the free templates' span: fit the
                // frame with the learner's W by a few MU steps.
                let w = learner.w();
                let k = w.ncols();
                let mut h = vec![1.0f32; k];
                for _ in 0..200 {
                    let model: Vec<f32> = (0..nb)
                        .map(|f| (0..k).map(|c| w[[f, c]] * h[c]).sum::<f32>() + 1e-12)
                        .collect();
                    for c in 0..k {
                        let num: f32 = (0..nb).map(|f| w[[f, c]] * frame[f] / model[f]).sum();
                        let den: f32 = (0..nb).map(|f| w[[f, c]]).sum();
                        h[c] *= num / den;
                    }
                }
                let rest: f32 = (40..48)
                    .map(|f| (1..k).map(|c| w[[f, c]] * h[c]).sum::<f32>())
                    .sum();
                explained = rest / 8.0;
            }
        }
        assert!(learner.refits() > 0);
        assert!(
            explained > 0.8,
            "the rest explains {explained} of the new sound"
        );
        assert_eq!(frozen.refits(), 0);
        assert!(frozen
            .w_free()
            .iter()
            .zip(before.iter())
            .all(|(a, b)| a.to_bits() == b.to_bits()));
        // Fixed columns of the refitted learner did not move either.
        assert!(learner
            .w()
            .column(0)
            .iter()
            .zip(wk.column(0))
            .all(|(a, b)| a.to_bits() == b.to_bits()));
    }
}
