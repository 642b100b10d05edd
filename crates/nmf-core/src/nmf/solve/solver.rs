//! [`FrameSolver`]: the preallocated state of the per-frame solve and its iterations.

use ndarray::ArrayView2;

use super::equalize::equalize;
use super::kernels::*;
use super::rule::{SolveRule, Start, Step, SCREEN_AFTER};
use super::H_FLOOR_REL;
use crate::aligned::AlignedBuf;
use crate::nmf::beta::{gamma, update_factors, EPS};
use crate::simd::Isa;

/// Solves `v ~ W h` for one STFT frame `v` (n_bins) with W (n_bins x K) fixed, by a fixed
/// number of iterations from a start chosen by its [`SolveRule`].
///
/// Every start has the frame's energy, `sum(W h) = sum(v)` (L1): the updates are invariant
/// to the scale of their starting point and can only grow or shrink it geometrically, so the
/// rescale lets an onset be followed at once. The K components may come from any number of
/// dictionaries; the solver treats them alike.
pub struct FrameSolver {
    n_bins: usize,
    k: usize,
    beta: f32,
    gamma: f32,
    /// W transposed: K rows of n_bins, so that every template is contiguous.
    wt: Vec<f32>,
    /// W in blocks of BLOCK bins: `wb[(b * K + c) * BLOCK + i] = W[b * BLOCK + i, c]` for the
    /// full blocks, so that the fused kernel streams contiguous memory.
    wb: AlignedBuf,
    /// Column sums of W (K): the beta = 1 denominator, and the rescale weights.
    colsum: Vec<f32>,
    /// Model W h of the latest iteration (n_bins).
    wh: Vec<f32>,
    /// Numerator factor v * (Wh)^(beta-2) (n_bins).
    a: Vec<f32>,
    /// Denominator factor (Wh)^(beta-1) (n_bins).
    b: Vec<f32>,
    /// W^T a and W^T b (K each).
    num: Vec<f32>,
    /// Partial sums of the fused beta = 1 kernel (K x LANES).
    partial: AlignedBuf,
    den: Vec<f32>,
    /// h before the latest iteration (K), for the early exit of [`SolveRule::tol`].
    h_prev: Vec<f32>,
    /// The previous frame (n_bins), for the spectral change of [`Start::Adaptive`].
    v_prev: Vec<f32>,
    /// The components still moving under [`SolveRule::screen`]: the first `n_active`
    /// entries (K; a permutation of 0..K that screening reorders).
    pub(super) active: Vec<usize>,
    /// Model of the held components, `sum over held k of W[:, k] h_k` (n_bins).
    pub(super) held: Vec<f32>,
    /// Iterations run since the solver was made (for benchmarks and tests).
    iterations_run: u64,
    /// Instruction set the kernels run with ([`Isa::best`] outside the tests).
    pub(super) isa: Isa,
    rule: SolveRule,
}

impl FrameSolver {
    /// Prepares a solver for templates `w` (n_bins x K) and divergence `beta`. Allocates.
    pub fn new(w: ArrayView2<f32>, beta: f32) -> Self {
        let (n_bins, k) = w.dim();
        let mut wt = vec![0.0; n_bins * k];
        for c in 0..k {
            for f in 0..n_bins {
                wt[c * n_bins + f] = w[[f, c]].max(EPS);
            }
        }
        let full = n_bins - n_bins % BLOCK;
        let mut wb = AlignedBuf::zeros(full * k);
        for b in 0..full / BLOCK {
            for c in 0..k {
                for i in 0..BLOCK {
                    wb[(b * k + c) * BLOCK + i] = wt[c * n_bins + b * BLOCK + i];
                }
            }
        }
        let colsum = (0..k)
            .map(|c| wt[c * n_bins..(c + 1) * n_bins].iter().sum())
            .collect();
        Self {
            n_bins,
            k,
            beta,
            gamma: gamma(beta),
            wt,
            wb,
            colsum,
            wh: vec![0.0; n_bins],
            a: vec![0.0; n_bins],
            b: vec![0.0; n_bins],
            num: vec![0.0; k],
            partial: AlignedBuf::zeros(k * LANES),
            den: vec![0.0; k],
            h_prev: vec![0.0; k],
            v_prev: vec![0.0; n_bins],
            active: (0..k).collect(),
            held: vec![0.0; n_bins],
            iterations_run: 0,
            isa: Isa::best(),
            rule: SolveRule::default(),
        }
    }

    /// The solve rule (default: [`SolveRule::default`]).
    pub fn rule(&self) -> SolveRule {
        self.rule
    }

    /// Sets the solve rule for the next frames. Does not allocate.
    pub fn set_rule(&mut self, rule: SolveRule) {
        self.rule = rule;
    }

    /// Iterations run by [`Self::solve`] since the solver was made: with an early-exit
    /// tolerance, fewer than frames x iterations.
    pub fn iterations_run(&self) -> u64 {
        self.iterations_run
    }

    /// Number of frequency bins.
    pub fn n_bins(&self) -> usize {
        self.n_bins
    }

    /// Number of components K.
    pub fn n_components(&self) -> usize {
        self.k
    }

    /// Template k (n_bins values).
    pub fn template(&self, k: usize) -> &[f32] {
        &self.wt[k * self.n_bins..(k + 1) * self.n_bins]
    }

    /// Replaces template `k` by `column` (n_bins, entries floored at [`EPS`]) in every copy the
    /// solver keeps (transposed, blocked, column sum). Does not allocate: the live learner
    /// swaps its templates in through here on the audio thread.
    ///
    /// # Panics
    /// If `k >= K` or `column` does not have n_bins values.
    pub fn set_template(&mut self, k: usize, column: &[f32]) {
        let (n, kk) = (self.n_bins, self.k);
        assert!(k < kk && column.len() == n, "set_template: shape");
        let row = &mut self.wt[k * n..(k + 1) * n];
        let mut sum = 0.0f32;
        for (o, &x) in row.iter_mut().zip(column) {
            *o = if x.is_finite() { x.max(EPS) } else { EPS };
            sum += *o;
        }
        self.colsum[k] = sum;
        let full = n - n % BLOCK;
        for b in 0..full / BLOCK {
            self.wb[(b * kk + k) * BLOCK..(b * kk + k + 1) * BLOCK]
                .copy_from_slice(&self.wt[k * n + b * BLOCK..k * n + (b + 1) * BLOCK]);
        }
    }

    /// Updates `h` (K; the previous frame's activations in, this frame's out) for the frame
    /// `v` (n_bins, non-negative) with `iterations` steps of the solver's [`SolveRule`] and L1
    /// penalty `sparsity` on h. A flat start ignores the incoming h.
    /// Does not allocate. A frame of zeros is handled (h falls to its floor).
    ///
    /// # Panics
    /// If `v` or `h` has the wrong length.
    pub fn solve(&mut self, v: &[f32], h: &mut [f32], iterations: usize, sparsity: f32) {
        assert_eq!(v.len(), self.n_bins);
        assert_eq!(h.len(), self.k);
        // Every start gets the frame's energy (L1): the flat h is sum(v) / sum(W).
        let v_sum: f32 = v.iter().sum();
        let col_total: f32 = self.colsum.iter().sum();
        if let Start::Flat = self.rule.start {
            h.fill(0.0);
        }
        let model_sum: f32 = h.iter().zip(&self.colsum).map(|(x, c)| x * c).sum();
        let flat = if v_sum > 0.0 && v_sum.is_finite() {
            v_sum / col_total
        } else {
            EPS
        };
        if let Start::Flat = self.rule.start {
            h.fill(flat.max(EPS));
        } else if model_sum > 0.0 && v_sum > 0.0 && v_sum.is_finite() {
            let r = v_sum / model_sum;
            let a = match self.rule.start {
                Start::Blend(a) => a,
                Start::Adaptive(g) => {
                    let (mut change, mut total) = (0.0f32, 0.0f32);
                    for (&x, &x0) in v.iter().zip(&self.v_prev) {
                        change += (x - x0).abs();
                        total += x + x0;
                    }
                    if total > 0.0 {
                        (g * change / total).min(1.0)
                    } else {
                        1.0
                    }
                }
                _ => 0.0,
            };
            h.iter_mut()
                .for_each(|x| *x = ((1.0 - a) * *x * r + a * flat).max(EPS));
        } else if !(model_sum.is_finite() && model_sum > 0.0) {
            h.iter_mut().for_each(|x| *x = EPS);
        }
        if let Start::Adaptive(_) = self.rule.start {
            self.v_prev.copy_from_slice(v);
        }
        let tol = self.rule.tol;
        let screening = self.rule.screen > 0.0 && self.beta == 1.0;
        if screening {
            self.held.fill(0.0);
        }
        let mut n_active = self.k;
        for it in 0..iterations {
            self.iterations_run += 1;
            if tol > 0.0 {
                self.h_prev.copy_from_slice(h);
            }
            if n_active < self.k {
                self.screened_step(v, h, n_active, sparsity);
            } else {
                self.full_step(v, h, sparsity);
            }
            if screening && it + 1 >= SCREEN_AFTER && it + 1 < iterations {
                n_active = self.screen(h, n_active);
            }
            if tol > 0.0 {
                let (mut change, mut total) = (0.0f32, 0.0f32);
                for (&x, &x0) in h.iter().zip(&self.h_prev) {
                    change += (x - x0).abs();
                    total += x;
                }
                if change <= tol * total {
                    break;
                }
            }
        }
        let floor = (h.iter().fold(0.0f32, |m, &x| m.max(x)) * H_FLOOR_REL).max(EPS);
        h.iter_mut().for_each(|x| {
            if !x.is_finite() {
                *x = floor;
            }
            *x = x.max(floor);
        });
    }

    /// One iteration of the rule's step on every component: the numerators and denominators
    /// of the multiplicative update over all K, then the step.
    fn full_step(&mut self, v: &[f32], h: &mut [f32], sparsity: f32) {
        if self.beta == 1.0 {
            kl_numerator(
                self.isa,
                &self.wt,
                h,
                v,
                &mut self.num,
                &mut self.partial,
                &self.wb,
            );
            self.den.copy_from_slice(&self.colsum);
        } else {
            model(self.isa, &self.wt, h, &mut self.wh);
            for (((a, b), &x), &y) in self
                .a
                .iter_mut()
                .zip(self.b.iter_mut())
                .zip(v)
                .zip(&self.wh)
            {
                (*a, *b) = update_factors(x, y, self.beta);
            }
            project(self.isa, &self.wt, &self.a, &mut self.num);
            project(self.isa, &self.wt, &self.b, &mut self.den);
        }
        let g = self.gamma;
        if self.rule.step == Step::Equalized && self.beta == 1.0 {
            // The ratios in place of the numerators, then their factors in one pass.
            for (n, &d) in self.num.iter_mut().zip(&self.den) {
                *n /= (d + sparsity).max(EPS);
            }
            equalize(self.isa, &mut self.num);
            h.iter_mut()
                .zip(&self.num)
                .for_each(|(x, &f)| *x = (*x * f).max(EPS));
        } else if g == 1.0 {
            let updates = h.iter_mut().zip(&self.num).zip(&self.den);
            updates.for_each(|((x, &n), &d)| *x = (*x * n / (d + sparsity).max(EPS)).max(EPS));
        } else {
            let updates = h.iter_mut().zip(&self.num).zip(&self.den);
            updates.for_each(|((x, &n), &d)| {
                *x = (*x * (n / (d + sparsity).max(EPS)).powf(g)).max(EPS)
            });
        }
    }

    /// One iteration of the rule's step on the moving components `active[..n_active]`
    /// (beta = 1), the held ones fixed: their model `held` joins the fused kernel's, and only
    /// the moving components' numerators are formed and updated.
    fn screened_step(&mut self, v: &[f32], h: &mut [f32], n_active: usize, sparsity: f32) {
        let active = &self.active[..n_active];
        kl_numerator_screened(
            self.isa,
            &self.wt,
            h,
            v,
            &mut self.num[..n_active],
            &mut self.partial,
            &self.wb,
            active,
            &self.held,
        );
        // The ratios, in the order of `active`, in place of the numerators.
        for (n, &c) in self.num.iter_mut().zip(active) {
            *n /= (self.colsum[c] + sparsity).max(EPS);
        }
        let ratios = &mut self.num[..n_active];
        match self.rule.step {
            Step::Equalized => {
                equalize(self.isa, ratios);
                for (&f, &c) in ratios.iter().zip(active) {
                    h[c] = (h[c] * f).max(EPS);
                }
            }
            Step::Multiplicative => {
                for (&r, &c) in ratios.iter().zip(active) {
                    h[c] = (h[c] * r).max(EPS);
                }
            }
        }
    }

    /// Holds every moving component below `rule.screen * max(h)`, adding its model
    /// `W[:, k] h_k` to `held` (zeroed when the frame's solve starts); returns the number
    /// still moving.
    fn screen(&mut self, h: &[f32], n_active: usize) -> usize {
        let n = self.n_bins;
        let threshold = h.iter().fold(0.0f32, |m, &x| m.max(x)) * self.rule.screen;
        let mut kept = 0;
        for i in 0..n_active {
            let c = self.active[i];
            if h[c] < threshold {
                let hc = h[c];
                for (y, &w) in self.held.iter_mut().zip(&self.wt[c * n..(c + 1) * n]) {
                    *y += w * hc;
                }
            } else {
                // A swap, not a copy: `active` stays a permutation for the next frames.
                self.active.swap(i, kept);
                kept += 1;
            }
        }
        kept
    }
}

impl FrameSolver {
    /// The model of each group of components, `models[g][f] = sum over k in groups[g] of
    /// W[f, k] h[k]` (n_bins each; an empty group gives zeros), accumulated in registers one
    /// block of bins at a time over the blocked copy of W. Always inlined, so that it is
    /// compiled for the instruction set of its caller.
    ///
    /// # Panics
    /// If a component index is out of range or a model is shorter than n_bins.
    #[inline(always)]
    pub fn group_models(&self, h: &[f32], groups: &[&[usize]], models: &mut [&mut [f32]]) {
        let (n, k) = (self.n_bins, self.k);
        let full = n - n % BLOCK;
        for (b, w_block) in self.wb.chunks_exact(k * BLOCK).enumerate() {
            for (group, model) in groups.iter().zip(models.iter_mut()) {
                let mut acc = [0.0f32; BLOCK];
                for &c in group.iter() {
                    let row: &[f32; BLOCK] = w_block[c * BLOCK..(c + 1) * BLOCK]
                        .try_into()
                        .expect("BLOCK values");
                    let hc = h[c];
                    for i in 0..BLOCK {
                        acc[i] += row[i] * hc;
                    }
                }
                model[b * BLOCK..(b + 1) * BLOCK].copy_from_slice(&acc);
            }
        }
        for (group, model) in groups.iter().zip(models.iter_mut()) {
            for (f, m) in model[full..n].iter_mut().enumerate() {
                *m = group
                    .iter()
                    .map(|&c| self.wt[c * n + full + f] * h[c])
                    .sum();
            }
        }
    }
}
