//! Offline NMF with multiplicative updates: `V ~ W H`, with W learned or held fixed.
//!
//! The updates are those of Févotte & Idier 2011 (Neural Computation 23(9), eq. 4.1-4.2 with
//! the exponent gamma(beta) of eq. 4.5), with an optional L1 penalty `lambda * sum(H)` added to
//! the denominator of the H update (Le Roux, Weninger & Hershey 2015, "Sparse NMF -
//! half-baked or well done?", MERL TR2015-023, eq. 9-10 without the normalization gradient).

use std::ops::ControlFlow;

use ndarray::{Array2, ArrayView2, Axis};

use super::beta::{gamma, EPS};
use super::init::{initialize, Init};
use super::kernels::{Kernels, TILE_STEP};
use super::NmfError;

/// Settings of [`fit`].
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct FitOptions {
    /// Number of components K (columns of W, rows of H). At least 1.
    pub n_components: usize,
    /// The beta of the divergence: 0 Itakura-Saito, 1 Kullback-Leibler, 2 Euclidean, or any real.
    pub beta: f32,
    /// Maximum number of iterations (one H update then one W update each).
    pub max_iter: usize,
    /// Stop when the decrease of the error sqrt(2 D) (D the cost) between two evaluations
    /// (every 10 iterations), relative to its initial value, is below this: scikit-learn's
    /// rule for its multiplicative updates, so `tol` means the same in both. 0 runs every
    /// iteration.
    pub tol: f64,
    /// Seed of the initialization; the fit is deterministic for a given seed.
    pub seed: u64,
    /// Starting point.
    pub init: Init,
    /// L1 penalty weight lambda on H (0 = none). With a penalty, W's columns are kept at unit
    /// L2 norm at every iteration so that the penalty cannot be dodged by scaling.
    pub sparsity: f32,
    /// Evaluate the cost every this many iterations (>= 1). The cost pass costs about as much
    /// as a quarter of an iteration; the tolerance is checked at the same points.
    pub cost_every: usize,
}

impl Default for FitOptions {
    fn default() -> Self {
        Self {
            n_components: 16,
            beta: 1.0,
            max_iter: 200,
            tol: 1e-4,
            seed: 0,
            init: Init::Nndsvda,
            sparsity: 0.0,
            cost_every: 10,
        }
    }
}

/// One point of the cost history.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CostPoint {
    /// Number of completed iterations when the cost was taken.
    pub iteration: usize,
    /// `D_beta(V | W H) + lambda * sum(H)`.
    pub cost: f64,
}

/// Progress report passed to the observer of a fit, once per iteration.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// Completed iterations.
    pub iteration: usize,
    /// The iteration budget.
    pub max_iter: usize,
    /// The newest evaluated cost.
    pub cost: Option<f64>,
}

/// The result of a fit.
#[derive(Clone, Debug)]
pub struct Factorization {
    /// Templates, n_bins x K, columns of unit L2 norm.
    pub w: Array2<f32>,
    /// Activations, K x n_frames.
    pub h: Array2<f32>,
    /// Cost history, first point at iteration 0, last point at `n_iter`.
    pub cost: Vec<CostPoint>,
    /// Iterations run.
    pub n_iter: usize,
}

pub(crate) fn validate(v: ArrayView2<f32>) -> Result<(), NmfError> {
    if v.nrows() == 0 || v.ncols() == 0 {
        return Err(NmfError::InvalidInput("the spectrogram is empty".into()));
    }
    if v.iter().any(|x| !(x.is_finite() && *x >= 0.0)) {
        return Err(NmfError::InvalidInput(
            "the spectrogram has negative or non-finite values".into(),
        ));
    }
    if !v.iter().any(|&x| x > 0.0) {
        return Err(NmfError::InvalidInput(
            "the spectrogram is all zeros (silent audio)".into(),
        ));
    }
    Ok(())
}

/// Learns W (n_bins x K) and H (K x n_frames) from a non-negative spectrogram `v`
/// (n_bins x n_frames). The observer sees every iteration and may stop the fit with
/// `ControlFlow::Break`, which returns [`NmfError::Cancelled`].
///
/// # Errors
/// [`NmfError::InvalidInput`] for an empty, all-zero, negative or non-finite `v`, or K = 0.
pub fn fit(
    v: ArrayView2<f32>,
    opts: &FitOptions,
    observer: &mut dyn FnMut(Progress) -> ControlFlow<()>,
) -> Result<Factorization, NmfError> {
    validate(v)?;
    if opts.n_components == 0 {
        return Err(NmfError::InvalidInput(
            "the number of components must be at least 1".into(),
        ));
    }
    let (mut w, mut h) = initialize(v, opts.n_components, opts.init, opts.seed);
    let (cost, n_iter) = run_updates(v, &mut w, &mut h, true, opts, Kernels::detect(), observer)?;
    normalize_columns(&mut w, &mut h);
    Ok(Factorization { w, h, cost, n_iter })
}

/// Settings of [`fit_activations`].
#[derive(Clone, Debug)]
pub struct ActivationOptions {
    /// Divergence beta.
    pub beta: f32,
    /// Maximum number of H updates.
    pub max_iter: usize,
    /// Relative tolerance, as in [`FitOptions::tol`].
    pub tol: f64,
    /// L1 penalty weight on H.
    pub sparsity: f32,
    /// Cost evaluation period in iterations.
    pub cost_every: usize,
}

impl Default for ActivationOptions {
    fn default() -> Self {
        Self {
            beta: 1.0,
            max_iter: 200,
            tol: 1e-4,
            sparsity: 0.0,
            cost_every: 10,
        }
    }
}

/// Solves for H (K x n_frames) with the templates `w` (n_bins x K) held fixed, over a whole
/// spectrogram `v` (n_bins x n_frames). H starts from the constant `sqrt(mean(V) / K)` (as
/// scikit-learn does when W is given). Returns H and the cost history.
///
/// # Errors
/// [`NmfError::InvalidInput`] for a bad `v`, or if `w` has another number of bins.
pub fn fit_activations(
    v: ArrayView2<f32>,
    w: ArrayView2<f32>,
    opts: &ActivationOptions,
) -> Result<(Array2<f32>, Vec<CostPoint>), NmfError> {
    validate(v)?;
    if w.nrows() != v.nrows() || w.ncols() == 0 {
        return Err(NmfError::InvalidInput(format!(
            "the dictionary has {} bins x {} components, the spectrogram {} bins",
            w.nrows(),
            w.ncols(),
            v.nrows()
        )));
    }
    let k = w.ncols();
    let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len() as f64;
    let mut h = Array2::from_elem((k, v.ncols()), ((mean / k as f64).sqrt() as f32).max(EPS));
    let mut w = w.to_owned();
    let fit_opts = FitOptions {
        n_components: k,
        beta: opts.beta,
        max_iter: opts.max_iter,
        tol: opts.tol,
        seed: 0,
        init: Init::Random,
        sparsity: opts.sparsity,
        cost_every: opts.cost_every,
    };
    let (cost, _) = run_updates(
        v,
        &mut w,
        &mut h,
        false,
        &fit_opts,
        Kernels::detect(),
        &mut |_| ControlFlow::Continue(()),
    )?;
    Ok((h, cost))
}

/// Scales W's columns to unit L2 norm and moves the scale into H's rows (W H is unchanged).
pub fn normalize_columns(w: &mut Array2<f32>, h: &mut Array2<f32>) {
    for (mut col, mut row) in w.axis_iter_mut(Axis(1)).zip(h.axis_iter_mut(Axis(0))) {
        let norm = col.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            col.mapv_inplace(|x| (x / norm).max(EPS));
            row.mapv_inplace(|x| (x * norm).max(EPS));
        }
    }
}

/// Tile width in frames of the fused pass: a tile of factors (fp x TILE floats, about
/// 200 KB for 1025 bins) and the matching spectrogram frames stay in a 1 MB L2 cache.
const TILE: usize = 4 * TILE_STEP;

fn round_up(x: usize, m: usize) -> usize {
    x.div_ceil(m) * m
}

/// The state of the fused update loop, in the tiled layouts of [`super::kernels`],
/// allocated once before the first iteration.
struct Fused {
    n_bins: usize,
    n_frames: usize,
    k: usize,
    fp: usize,
    kp: usize,
    /// V frames-major, n_frames rounded up to TILE x fp, zero-padded.
    vt: Vec<f32>,
    /// W^T, kp x fp, zero-padded.
    wt: Vec<f32>,
    /// W, fp x kp, zero-padded.
    wk: Vec<f32>,
    /// H^T, frames rounded up to TILE x kp, zero-padded (padding stays 0).
    ht: Vec<f32>,
    /// Factor tiles (TILE x fp): numerator factor, and denominator factor for beta != 1.
    ya: Vec<f32>,
    yb: Vec<f32>,
    /// W^T A and W^T B of a tile (TILE x kp).
    num_h: Vec<f32>,
    den_h: Vec<f32>,
    /// Column sums of W (kp), the beta = 1 H denominator.
    colsum: Vec<f32>,
    /// Accumulated A H^T and B H^T (fp x kp); for beta = 1 `den_w` holds the row sums of H (kp).
    num_w: Vec<f32>,
    den_w: Vec<f32>,
    kernels: Kernels,
    /// Semi-supervised state: fixed leading columns and the overlap penalty (see
    /// [`SemiPenalty`]); `None` for a plain fit.
    semi: Option<SemiState>,
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

struct SemiState {
    fixed: usize,
    /// e_f * weight, fp entries (padding 0).
    bins: Vec<f32>,
    /// Per-component L1 weights on H, kp entries: 0 for fixed columns, weight * e^T w_j else.
    lam: Vec<f32>,
    /// Row sums of H (kp), for the penalty's W gradient.
    hsum: Vec<f32>,
}

impl Fused {
    fn new(
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
            ya: vec![0.0; TILE * fp],
            yb: if beta == 1.0 {
                Vec::new()
            } else {
                vec![0.0; TILE * fp]
            },
            num_h: vec![0.0; TILE * kp],
            den_h: vec![0.0; TILE * kp],
            colsum: vec![0.0; kp],
            num_w: vec![0.0; fp * kp],
            den_w: vec![0.0; fp * kp],
            kernels,
            semi: None,
        };
        s.set_w(w.view());
        for ((c, n), &x) in h.indexed_iter() {
            s.ht[n * kp + c] = x;
        }
        s
    }

    fn set_w(&mut self, w: ArrayView2<f32>) {
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

    /// Numerator (and for beta != 1 denominator) factors of the tile at frame `n0` from the
    /// model in `ya`; returns the divergence of the valid entries if `cost`.
    fn factors(&mut self, n0: usize, beta: f32, cost: bool) -> f64 {
        let (fp, n_bins) = (self.fp, self.n_bins);
        let n_valid = (self.n_frames - n0).min(TILE);
        let v = &self.vt[n0 * fp..(n0 + TILE) * fp];
        if beta == 1.0 {
            self.kernels
                .kl_ratio(v, &mut self.ya, fp, n_bins, TILE, n_valid, cost)
        } else {
            self.kernels.beta_factors(
                v,
                &mut self.ya,
                &mut self.yb,
                fp,
                n_bins,
                TILE,
                n_valid,
                beta,
                cost,
            )
        }
    }

    /// One iteration, fused over tiles of frames: H update with W_t, then the W numerator
    /// and denominator with H_{t+1}, then the W update. Returns `D_beta(V | W_t H_t)` if
    /// `cost` (else 0). Allocates nothing.
    fn iterate(&mut self, beta: f32, g: f32, lambda: f32, update_w: bool, cost: bool) -> f64 {
        let (fp, kp, k, kern) = (self.fp, self.kp, self.k, self.kernels);
        let mut total = 0.0f64;
        self.update_semi_lambda();
        if update_w {
            self.num_w.fill(0.0);
            self.den_w.fill(0.0);
        }
        for n0 in (0..self.n_frames).step_by(TILE) {
            let n_valid = (self.n_frames - n0).min(TILE);
            // H update of the tile (Févotte & Idier 2011, eq. 4.1 with the L1 term of
            // Le Roux et al. 2015 in the denominator).
            let ht = n0 * kp..(n0 + TILE) * kp;
            kern.model(&self.wt, &self.ht[ht.clone()], &mut self.ya, fp, kp, TILE);
            total += self.factors(n0, beta, cost);
            kern.project(&self.wk, &self.ya, &mut self.num_h, fp, kp, TILE);
            if beta != 1.0 {
                kern.project(&self.wk, &self.yb, &mut self.den_h, fp, kp, TILE);
            }
            for t in 0..n_valid {
                let hrow = &mut self.ht[(n0 + t) * kp..(n0 + t) * kp + k];
                let num = &self.num_h[t * kp..t * kp + k];
                let den: &[f32] = if beta == 1.0 {
                    &self.colsum[..k]
                } else {
                    &self.den_h[t * kp..t * kp + k]
                };
                match &self.semi {
                    None => {
                        for ((x, &n), &d) in hrow.iter_mut().zip(num).zip(den) {
                            let r = n / (d + lambda).max(EPS);
                            *x = (*x * if g == 1.0 { r } else { r.powf(g) }).max(EPS);
                        }
                    }
                    Some(semi) => {
                        for (((x, &n), &d), &l) in
                            hrow.iter_mut().zip(num).zip(den).zip(&semi.lam[..k])
                        {
                            let r = n / (d + lambda + l).max(EPS);
                            *x = (*x * if g == 1.0 { r } else { r.powf(g) }).max(EPS);
                        }
                    }
                }
            }
            if update_w {
                // W numerator and denominator (eq. 4.2) with the updated H of the tile.
                kern.model(&self.wt, &self.ht[ht.clone()], &mut self.ya, fp, kp, TILE);
                self.factors(n0, beta, false);
                kern.accumulate(
                    &self.ya,
                    &self.ht[ht.clone()],
                    &mut self.num_w,
                    fp,
                    kp,
                    TILE,
                );
                if beta == 1.0 {
                    for t in 0..n_valid {
                        let hrow = &self.ht[(n0 + t) * kp..(n0 + t + 1) * kp];
                        for (s, &x) in self.den_w[..kp].iter_mut().zip(hrow) {
                            *s += x;
                        }
                    }
                } else {
                    kern.accumulate(&self.yb, &self.ht[ht], &mut self.den_w, fp, kp, TILE);
                }
            }
        }
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
    fn semi_penalty(&mut self) -> f64 {
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
    fn cost(&mut self, beta: f32) -> f64 {
        let (fp, kp) = (self.fp, self.kp);
        let mut total = 0.0;
        for n0 in (0..self.n_frames).step_by(TILE) {
            let ht = &self.ht[n0 * kp..(n0 + TILE) * kp];
            self.kernels.model(&self.wt, ht, &mut self.ya, fp, kp, TILE);
            total += self.factors(n0, beta, true);
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

/// The fused update loop over a window of at most `capacity` frames whose contents change
/// between fits, with every buffer allocated once: the core of
/// [`super::online::OnlineLearner`]. The first `fixed` columns of W stay fixed, the others
/// carry the overlap penalty of [`SemiPenalty`] and are kept at unit L1 norm.
pub(crate) struct WindowFit {
    state: Fused,
    capacity: usize,
    beta: f32,
}

impl WindowFit {
    /// Buffers for `n_bins` bins, up to `capacity` frames (>= 1), `k` components of which
    /// the first `fixed` are held fixed, divergence `beta`.
    pub(crate) fn new(n_bins: usize, capacity: usize, k: usize, fixed: usize, beta: f32) -> Self {
        let v = Array2::<f32>::zeros((n_bins, capacity.max(1)));
        let w = Array2::<f32>::zeros((n_bins, k));
        let h = Array2::<f32>::zeros((k, capacity.max(1)));
        let mut state = Fused::new(v.view(), &w, &h, beta, Kernels::detect());
        let kp = state.kp;
        state.semi = Some(SemiState {
            fixed: fixed.min(k),
            bins: vec![0.0; state.fp],
            lam: vec![0.0; kp],
            hsum: vec![0.0; kp],
        });
        Self {
            state,
            capacity: capacity.max(1),
            beta,
        }
    }

    /// Loads `n_frames` (<= capacity) frames: `frame(n)` gives frame n's spectrum (n_bins)
    /// and its activations (k). Frames past `n_frames` are zeroed.
    pub(crate) fn load<'a>(
        &mut self,
        n_frames: usize,
        mut frame: impl FnMut(usize) -> (&'a [f32], &'a [f32]),
    ) {
        let st = &mut self.state;
        let n_frames = n_frames.min(self.capacity);
        let (fp, kp, nb, k) = (st.fp, st.kp, st.n_bins, st.k);
        for n in 0..n_frames {
            let (v, h) = frame(n);
            st.vt[n * fp..n * fp + nb].copy_from_slice(&v[..nb]);
            st.ht[n * kp..n * kp + k].copy_from_slice(&h[..k]);
        }
        let old = st.n_frames;
        for n in n_frames..old.max(n_frames) {
            st.vt[n * fp..(n + 1) * fp].fill(0.0);
            st.ht[n * kp..(n + 1) * kp].fill(0.0);
        }
        st.n_frames = n_frames;
    }

    /// Sets W (n_bins x k).
    pub(crate) fn set_w(&mut self, w: ArrayView2<f32>) {
        self.state.set_w(w);
    }

    /// Sets the penalty: `weight * bins[f]` per bin (n_bins).
    pub(crate) fn set_penalty(&mut self, weight: f32, bins: &[f32]) {
        if let Some(semi) = &mut self.state.semi {
            for (b, &e) in semi.bins.iter_mut().zip(bins) {
                *b = weight * e.max(0.0);
            }
        }
    }

    /// Runs `n` penalized iterations (H, then the free columns of W) on the loaded frames.
    pub(crate) fn iterate(&mut self, n: usize) {
        let beta = self.beta();
        let g = gamma(beta);
        if self.state.n_frames == 0 {
            return;
        }
        for _ in 0..n {
            self.state.iterate(beta, g, 0.0, true, false);
        }
    }

    fn beta(&self) -> f32 {
        self.beta
    }

    /// Penalized objective of the loaded state: `D_beta(V | W H) + penalty`.
    pub(crate) fn objective(&mut self) -> f64 {
        let beta = self.beta();
        self.state.cost(beta) + self.state.semi_penalty()
    }

    /// Copies W (n_bins x k) out.
    pub(crate) fn w_into(&self, mut w: ndarray::ArrayViewMut2<f32>) {
        let st = &self.state;
        for ((f, c), x) in w.indexed_iter_mut() {
            *x = st.wk[f * st.kp + c];
        }
    }

    /// Activations of loaded frame n (k values).
    pub(crate) fn h_frame(&self, n: usize) -> &[f32] {
        let st = &self.state;
        &st.ht[n * st.kp..n * st.kp + st.k]
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
fn run_updates(
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

#[cfg(test)]
mod tests {
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
}
