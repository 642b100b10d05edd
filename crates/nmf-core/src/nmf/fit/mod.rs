//! Offline NMF with multiplicative updates: `V ~ W H`, with W learned or held fixed.
//!
//! The updates are those of Févotte & Idier 2011 (Neural Computation 23(9), eq. 4.1-4.2 with
//! the exponent gamma(beta) of eq. 4.5), with an optional L1 penalty `lambda * sum(H)` added to
//! the denominator of the H update (Le Roux, Weninger & Hershey 2015, "Sparse NMF -
//! half-baked or well done?", MERL TR2015-023, eq. 9-10 without the normalization gradient).

use std::ops::ControlFlow;

use ndarray::{Array2, ArrayView2, Axis};

use super::beta::EPS;
use super::init::{initialize, Init};
use super::kernels::Kernels;
use super::NmfError;

mod parallel;
mod tile;
mod updates;
mod window;

pub use parallel::thread_pool;
use updates::run_updates;
pub(crate) use updates::{run_updates_semi, SemiPenalty};
pub(crate) use window::WindowFit;

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
/// Called on a thread of a rayon pool (`thread_pool(n)?.install(|| fit(..))`, see
/// [`thread_pool`]) the frame tiles of each iteration are shared out over the pool's
/// threads; called anywhere else, or in a pool of one thread, the fit runs on the calling
/// thread alone. W, H and the cost history are the same bits for every number of threads:
/// the tiles are cut into chunks that depend on the number of frames only, and the chunks'
/// partial sums of W's numerator and denominator are added in chunk order.
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

#[cfg(test)]
mod tests;
