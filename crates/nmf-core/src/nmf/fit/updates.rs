//! The fused, frame-tiled multiplicative-update loop behind [`super::fit`],
//! [`super::fit_activations`], the semi-supervised fit and the online learner's window.

use std::ops::ControlFlow;

use ndarray::{Array2, ArrayView2};

use super::parallel::{available_threads, ParallelPass, SerialPass};
use super::tile::{factors, step_tile, TileInputs, TileScratch};
use super::*;
use crate::nmf::beta::{gamma, EPS};
use crate::nmf::kernels::{Kernels, TILE_STEP};
use crate::nmf::NmfError;

/// Tile width in frames of the fused pass: a tile of factors (fp x TILE floats, about
/// 200 KB for 1025 bins) and the matching spectrogram frames stay in a 1 MB L2 cache.
pub(super) const TILE: usize = 4 * TILE_STEP;

pub(super) fn round_up(x: usize, m: usize) -> usize {
    x.div_ceil(m) * m
}

/// The state of the fused update loop, in the tiled layouts of [`super::kernels`],
/// allocated once before the first iteration.
pub(super) struct Fused {
    pub(super) n_bins: usize,
    pub(super) n_frames: usize,
    pub(super) k: usize,
    pub(super) fp: usize,
    pub(super) kp: usize,
    /// V frames-major, n_frames rounded up to TILE x fp, zero-padded.
    pub(super) vt: Vec<f32>,
    /// W^T, kp x fp, zero-padded.
    pub(super) wt: Vec<f32>,
    /// W, fp x kp, zero-padded.
    pub(super) wk: Vec<f32>,
    /// H^T, frames rounded up to TILE x kp, zero-padded (padding stays 0).
    pub(super) ht: Vec<f32>,
    /// The tile buffers of the one-thread pass.
    pub(super) scratch: TileScratch,
    /// Column sums of W (kp), the beta = 1 H denominator.
    pub(super) colsum: Vec<f32>,
    /// Accumulated A H^T and B H^T (fp x kp); for beta = 1 `den_w` holds the row sums of H (kp).
    pub(super) num_w: Vec<f32>,
    pub(super) den_w: Vec<f32>,
    pub(super) kernels: Kernels,
    /// Semi-supervised state: fixed leading columns and the overlap penalty (see
    /// [`SemiPenalty`]); `None` for a plain fit.
    pub(super) semi: Option<SemiState>,
    /// How the tiles of a pass are run and their W sums reduced.
    pub(super) pass: Pass,
}

/// How [`Fused::iterate`] runs its tiles.
pub(super) enum Pass {
    /// All tiles in order into one set of W accumulators (the online learner's window).
    Plain,
    /// In fixed chunks of tiles on the calling thread: the same bits as [`Pass::Parallel`].
    Serial(SerialPass),
    /// In fixed chunks of tiles over the threads of the current rayon pool.
    Parallel(ParallelPass),
}

/// The overlap penalty of the semi-supervised fit ([`super::semi`]): the first `fixed`
/// columns of W are held fixed, and the objective gains
/// `weight * sum_{j >= fixed} (e^T w_j) * sum_n h_jn`, where `e` (n_bins, >= 0) weights the
/// bins that the fixed (known) source dominates. The term is invariant to the scale exchange
/// `w_j / s, h_j * s`, so the free columns can be renormalized (unit L1) at every iteration
/// without changing the objective.
#[derive(Clone, Debug)]
pub(crate) struct SemiPenalty {
    /// Number of leading columns of W that stay fixed.
    pub fixed: usize,
    /// Weight of the penalty (dimensionless: relative to the KL gradient's denominator).
    pub weight: f32,
    /// Per-bin weights e_f, n_bins entries.
    pub bins: Vec<f32>,
}

pub(super) struct SemiState {
    pub(super) fixed: usize,
    /// e_f * weight, fp entries (padding 0).
    pub(super) bins: Vec<f32>,
    /// Per-component L1 weights on H, kp entries: 0 for fixed columns, weight * e^T w_j else.
    pub(super) lam: Vec<f32>,
    /// Row sums of H (kp), for the penalty's W gradient.
    pub(super) hsum: Vec<f32>,
}

impl Fused {
    pub(super) fn new(
        v: ArrayView2<f32>,
        w: &Array2<f32>,
        h: &Array2<f32>,
        beta: f32,
        kernels: Kernels,
    ) -> Self {
        let (n_bins, n_frames) = v.dim();
        let k = w.ncols();
        let (fp, kp, np) = (
            round_up(n_bins, 16),
            round_up(k, 16),
            round_up(n_frames, TILE),
        );
        let mut vt = vec![0.0f32; np * fp];
        // Transpose by blocks of frames so that both sides stay in cache.
        for n0 in (0..n_frames).step_by(64) {
            let n1 = (n0 + 64).min(n_frames);
            for f in 0..n_bins {
                let row = v.row(f);
                for n in n0..n1 {
                    vt[n * fp + f] = row[n];
                }
            }
        }
        let mut s = Self {
            n_bins,
            n_frames,
            k,
            fp,
            kp,
            vt,
            wt: vec![0.0; kp * fp],
            wk: vec![0.0; fp * kp],
            ht: vec![0.0; np * kp],
            scratch: TileScratch::new(fp, kp, beta),
            colsum: vec![0.0; kp],
            num_w: vec![0.0; fp * kp],
            den_w: vec![0.0; fp * kp],
            kernels,
            semi: None,
            pass: Pass::Plain,
        };
        s.set_w(w.view());
        for ((c, n), &x) in h.indexed_iter() {
            s.ht[n * kp + c] = x;
        }
        s
    }

    pub(super) fn set_w(&mut self, w: ArrayView2<f32>) {
        for ((f, c), &x) in w.indexed_iter() {
            self.wk[f * self.kp + c] = x;
            self.wt[c * self.fp + f] = x;
        }
        self.update_colsum();
    }

    fn update_colsum(&mut self) {
        for (c, s) in self.colsum.iter_mut().enumerate() {
            *s = self.wt[c * self.fp..c * self.fp + self.n_bins].iter().sum();
        }
    }

    fn write_back(&self, w: &mut Array2<f32>, h: &mut Array2<f32>) {
        for ((f, c), x) in w.indexed_iter_mut() {
            *x = self.wk[f * self.kp + c];
        }
        for ((c, n), x) in h.indexed_iter_mut() {
            *x = self.ht[n * self.kp + c];
        }
    }

    /// One iteration, fused over tiles of frames: H update with W_t, then the W numerator
    /// and denominator with H_{t+1}, then the W update. Returns `D_beta(V | W_t H_t)` if
    /// `cost` (else 0). Allocates nothing.
    pub(super) fn iterate(
        &mut self,
        beta: f32,
        g: f32,
        lambda: f32,
        update_w: bool,
        cost: bool,
    ) -> f64 {
        let (fp, kp, k) = (self.fp, self.kp, self.k);
        self.update_semi_lambda();
        if update_w {
            self.num_w.fill(0.0);
            self.den_w.fill(0.0);
        }
        let x = TileInputs {
            vt: &self.vt,
            wt: &self.wt,
            wk: &self.wk,
            colsum: &self.colsum,
            lam: self.semi.as_ref().map(|s| s.lam.as_slice()),
            kernels: self.kernels,
            n_bins: self.n_bins,
            n_frames: self.n_frames,
            k,
            fp,
            kp,
            beta,
            g,
            lambda,
            update_w,
            cost,
        };
        let total = match &mut self.pass {
            Pass::Parallel(p) => p.run(&x, &mut self.ht, &mut self.num_w, &mut self.den_w),
            Pass::Serial(p) => p.run(
                &x,
                &mut self.scratch,
                &mut self.ht,
                &mut self.num_w,
                &mut self.den_w,
            ),
            Pass::Plain => {
                let mut total = 0.0f64;
                for n0 in (0..self.n_frames).step_by(TILE) {
                    let ht = &mut self.ht[n0 * kp..(n0 + TILE) * kp];
                    let (num_w, den_w) = (&mut self.num_w, &mut self.den_w);
                    total += step_tile(&x, &mut self.scratch, n0, ht, num_w, den_w);
                }
                total
            }
        };
        if update_w {
            let fixed = self.semi.as_ref().map_or(0, |s| s.fixed);
            if let Some(semi) = &mut self.semi {
                // Row sums of the updated H: the W gradient of the overlap penalty.
                semi.hsum.fill(0.0);
                for row in self.ht.chunks_exact(kp).take(self.n_frames) {
                    for (s, &x) in semi.hsum.iter_mut().zip(row) {
                        *s += x;
                    }
                }
            }
            for f in 0..self.n_bins {
                let pen = self.semi.as_ref().map_or(0.0, |s| s.bins[f]);
                for c in fixed..k {
                    let i = f * kp + c;
                    let mut d = if beta == 1.0 {
                        self.den_w[c]
                    } else {
                        self.den_w[i]
                    };
                    if let Some(semi) = &self.semi {
                        d += pen * semi.hsum[c];
                    }
                    let r = self.num_w[i] / d.max(EPS);
                    let x = (self.wk[i] * if g == 1.0 { r } else { r.powf(g) }).max(EPS);
                    self.wk[i] = x;
                    self.wt[c * fp + f] = x;
                }
            }
            if self.semi.is_some() {
                self.normalize_free_l1();
            } else if lambda > 0.0 {
                self.normalize_columns();
            }
            self.update_colsum();
        }
        total
    }

    /// Recomputes the per-component H penalty `weight * e^T w_j` of the free columns.
    fn update_semi_lambda(&mut self) {
        let fp = self.fp;
        if let Some(semi) = &mut self.semi {
            for c in 0..self.k {
                semi.lam[c] = if c < semi.fixed {
                    0.0
                } else {
                    let col = &self.wt[c * fp..(c + 1) * fp];
                    col.iter().zip(&semi.bins).map(|(w, e)| w * e).sum()
                };
            }
        }
    }

    /// The overlap penalty `sum_j lam_j * sum_n h_jn` of the current state (0 if none).
    pub(super) fn semi_penalty(&mut self) -> f64 {
        self.update_semi_lambda();
        let Some(semi) = &self.semi else { return 0.0 };
        let mut total = 0.0f64;
        for row in self.ht.chunks_exact(self.kp).take(self.n_frames) {
            for (&x, &l) in row[..self.k].iter().zip(&semi.lam) {
                total += f64::from(x) * f64::from(l);
            }
        }
        total
    }

    /// Scales the free columns (index >= `fixed`) of W to unit L1 norm and moves the scale
    /// into H (W H unchanged); the fixed columns are not touched.
    fn normalize_free_l1(&mut self) {
        let (fp, kp) = (self.fp, self.kp);
        let fixed = self.semi.as_ref().map_or(0, |s| s.fixed);
        for c in fixed..self.k {
            let col = &mut self.wt[c * fp..c * fp + self.n_bins];
            let norm: f32 = col.iter().sum();
            if norm > 0.0 {
                for (f, x) in col.iter_mut().enumerate() {
                    *x = (*x / norm).max(EPS);
                    self.wk[f * kp + c] = *x;
                }
                for n in 0..self.n_frames {
                    let x = &mut self.ht[n * kp + c];
                    *x = (*x * norm).max(EPS);
                }
            }
        }
    }

    /// [`normalize_columns`] on the internal layouts.
    fn normalize_columns(&mut self) {
        let (fp, kp) = (self.fp, self.kp);
        for c in 0..self.k {
            let col = &mut self.wt[c * fp..c * fp + self.n_bins];
            let norm = col.iter().map(|x| x * x).sum::<f32>().sqrt();
            if norm > 0.0 {
                for (f, x) in col.iter_mut().enumerate() {
                    *x = (*x / norm).max(EPS);
                    self.wk[f * kp + c] = *x;
                }
                for n in 0..self.n_frames {
                    let x = &mut self.ht[n * kp + c];
                    *x = (*x * norm).max(EPS);
                }
            }
        }
    }

    /// `D_beta(V | W H)` of the current state (one model pass, no update).
    pub(super) fn cost(&mut self, beta: f32) -> f64 {
        let (fp, kp) = (self.fp, self.kp);
        let x = TileInputs {
            vt: &self.vt,
            wt: &self.wt,
            wk: &self.wk,
            colsum: &self.colsum,
            lam: None,
            kernels: self.kernels,
            n_bins: self.n_bins,
            n_frames: self.n_frames,
            k: self.k,
            fp,
            kp,
            beta,
            g: 1.0,
            lambda: 0.0,
            update_w: false,
            cost: true,
        };
        let mut total = 0.0;
        for n0 in (0..self.n_frames).step_by(TILE) {
            let ht = &self.ht[n0 * kp..(n0 + TILE) * kp];
            self.kernels
                .model(&self.wt, ht, &mut self.scratch.ya, fp, kp, TILE);
            total += factors(&x, &mut self.scratch, n0, true);
        }
        total
    }

    fn h_sum(&self) -> f64 {
        self.ht
            .chunks_exact(self.kp)
            .take(self.n_frames)
            .flat_map(|row| &row[..self.k])
            .map(|&x| f64::from(x))
            .sum()
    }
}

/// The multiplicative-update loop shared by [`fit`] and [`fit_activations`].
///
/// Each iteration is one fused pass over tiles of frames (the H update is separable per
/// frame): for a tile, the model W_t H_t, its factors, the H update from W^T A, then the
/// model W_t H_{t+1} and the accumulation of the W numerator A H^T, so that V is read once
/// per iteration and every tile stays in cache. This is the same algorithm as two separate
/// full passes (H update with W_t, then W update with H_{t+1}). The cost D_beta(V | W_t H_t)
/// (+ lambda sum H_t) is taken from the first model of the pass every `cost_every`
/// iterations; a tolerance stop therefore happens after the update of the iteration whose
/// cost met it, and the history ends with the cost of the returned W, H. `kernels` is
/// [`Kernels::detect`] outside the tests.
pub(super) fn run_updates(
    v: ArrayView2<f32>,
    w: &mut Array2<f32>,
    h: &mut Array2<f32>,
    update_w: bool,
    opts: &FitOptions,
    kernels: Kernels,
    observer: &mut dyn FnMut(Progress) -> ControlFlow<()>,
) -> Result<(Vec<CostPoint>, usize), NmfError> {
    run_updates_semi(v, w, h, update_w, opts, kernels, None, observer)
}

/// [`run_updates`] with the semi-supervised options: with `semi`, the first `semi.fixed`
/// columns of `w` stay bit-identical, the others are renormalized to unit L1 norm after every
/// W update (instead of the L2 normalization of a sparse fit), and the cost history includes
/// the overlap penalty of [`SemiPenalty`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_updates_semi(
    v: ArrayView2<f32>,
    w: &mut Array2<f32>,
    h: &mut Array2<f32>,
    update_w: bool,
    opts: &FitOptions,
    kernels: Kernels,
    semi: Option<&SemiPenalty>,
    observer: &mut dyn FnMut(Progress) -> ControlFlow<()>,
) -> Result<(Vec<CostPoint>, usize), NmfError> {
    let beta = opts.beta;
    let g = gamma(beta);
    let lambda = opts.sparsity.max(0.0);
    let every = opts.cost_every.max(1);
    if lambda > 0.0 && semi.is_none() {
        normalize_columns(w, h);
    }
    let mut state = Fused::new(v, w, h, beta, kernels);
    if let Some(p) = semi {
        let mut bins = vec![0.0f32; state.fp];
        for (b, &e) in bins.iter_mut().zip(&p.bins) {
            *b = p.weight * e.max(0.0);
        }
        state.semi = Some(SemiState {
            fixed: p.fixed.min(state.k),
            bins,
            lam: vec![0.0; state.kp],
            hsum: vec![0.0; state.kp],
        });
    }
    // The tiles run in chunks that depend on the number of frames only, on one thread or
    // several, so that the result does not depend on the number of threads.
    let threads = available_threads();
    let n_tiles = state.n_frames.div_ceil(TILE);
    let (fp, kp) = (state.fp, state.kp);
    state.pass = if threads > 1 && n_tiles > 1 {
        Pass::Parallel(ParallelPass::new(n_tiles, fp, kp, beta, update_w, threads))
    } else {
        Pass::Serial(SerialPass::new(n_tiles, fp, kp, beta, update_w))
    };
    let mut history: Vec<CostPoint> = Vec::with_capacity(opts.max_iter / every + 2);
    let mut iteration = 0;
    while iteration < opts.max_iter {
        let want_cost = iteration % every == 0;
        let penalty = if want_cost {
            let l1 = if lambda > 0.0 {
                f64::from(lambda) * state.h_sum()
            } else {
                0.0
            };
            l1 + state.semi_penalty()
        } else {
            0.0
        };
        let d = state.iterate(beta, g, lambda, update_w, want_cost);
        let mut converged = false;
        if want_cost {
            let c = d + penalty;
            if let (Some(first), Some(last)) = (history.first(), history.last()) {
                let (e0, e1, e) = (root_cost(first.cost), root_cost(last.cost), root_cost(c));
                converged = opts.tol > 0.0 && (e1 - e) / e0.max(f64::MIN_POSITIVE) < opts.tol;
            }
            history.push(CostPoint { iteration, cost: c });
        }
        iteration += 1;
        if observer(Progress {
            iteration,
            max_iter: opts.max_iter,
            cost: history.last().map(|c| c.cost),
        })
        .is_break()
        {
            return Err(NmfError::Cancelled);
        }
        if converged {
            break;
        }
    }
    if history.last().map(|c| c.iteration) != Some(iteration) {
        let c = state.cost(beta) + f64::from(lambda) * state.h_sum() + state.semi_penalty();
        history.push(CostPoint { iteration, cost: c });
    }
    state.write_back(w, h);
    Ok((history, iteration))
}

/// The error the tolerance test compares: `sqrt(2 D)`, as scikit-learn's multiplicative-update
/// solver does (`_beta_divergence(..., square_root=True)` in `sklearn.decomposition._nmf`),
/// so that a tolerance means the same in both. (Near convergence the relative decrease of
/// sqrt(2 D) is that of D times sqrt(D0 / D) / 2, D0 the initial cost: a test on D stops
/// earlier whenever the fit has lowered the cost less than fourfold.)
fn root_cost(d: f64) -> f64 {
    (2.0 * d.max(0.0)).sqrt()
}
