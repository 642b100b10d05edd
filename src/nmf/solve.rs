//! Per-frame activation solve with the templates held fixed: the inner loop of real-time
//! separation. Nothing here allocates after [`FrameSolver::new`].

use ndarray::ArrayView2;

use super::beta::{gamma, update_factors, EPS};

/// Relative floor of a frame's activations: after a solve every entry of h is at least
/// `H_FLOOR_REL * max(h)` (and [`EPS`]), so that a component that fell silent keeps a
/// foothold and the multiplicative updates can bring it back when its sound returns.
pub const H_FLOOR_REL: f32 = 1e-9;

/// Solves `v ~ W h` for one STFT frame `v` (n_bins) with W (n_bins x K) fixed, by a fixed
/// number of multiplicative updates (Févotte & Idier 2011, eq. 4.1 with gamma(beta)).
///
/// The warm start h (from the previous frame) is first rescaled so that `sum(W h) = sum(v)`:
/// multiplicative updates are invariant to the scale of their starting point and can only
/// grow or shrink it geometrically, so the rescale lets an onset be followed at once.
pub struct FrameSolver {
    n_bins: usize,
    k: usize,
    beta: f32,
    gamma: f32,
    /// W transposed: K rows of n_bins, so that every template is contiguous.
    wt: Vec<f32>,
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
    den: Vec<f32>,
    kernels: Kernels,
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
        let colsum = (0..k)
            .map(|c| wt[c * n_bins..(c + 1) * n_bins].iter().sum())
            .collect();
        Self {
            n_bins,
            k,
            beta,
            gamma: gamma(beta),
            wt,
            colsum,
            wh: vec![0.0; n_bins],
            a: vec![0.0; n_bins],
            b: vec![0.0; n_bins],
            num: vec![0.0; k],
            den: vec![0.0; k],
            kernels: Kernels::detect(),
        }
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

    /// Updates `h` (K, warm start in, solution out) for the frame `v` (n_bins, non-negative)
    /// with `iterations` multiplicative updates and L1 penalty `sparsity` on h.
    /// Does not allocate. A frame of zeros is handled (h falls to its floor).
    ///
    /// # Panics
    /// If `v` or `h` has the wrong length.
    pub fn solve(&mut self, v: &[f32], h: &mut [f32], iterations: usize, sparsity: f32) {
        assert_eq!(v.len(), self.n_bins);
        assert_eq!(h.len(), self.k);
        // Rescale the warm start so that the model has the frame's energy (L1).
        let v_sum: f32 = v.iter().sum();
        let model_sum: f32 = h.iter().zip(&self.colsum).map(|(x, c)| x * c).sum();
        if model_sum > 0.0 && v_sum > 0.0 && v_sum.is_finite() {
            let r = v_sum / model_sum;
            h.iter_mut().for_each(|x| *x = (*x * r).max(EPS));
        } else if !(model_sum > 0.0) || !model_sum.is_finite() {
            h.iter_mut().for_each(|x| *x = EPS);
        }
        for _ in 0..iterations {
            self.kernels.model(&self.wt, h, &mut self.wh);
            if self.beta == 1.0 {
                for ((a, &x), &y) in self.a.iter_mut().zip(v).zip(&self.wh) {
                    *a = x / y;
                }
                self.kernels.project(&self.wt, &self.a, &mut self.num);
                self.den.copy_from_slice(&self.colsum);
            } else {
                for (((a, b), &x), &y) in self
                    .a
                    .iter_mut()
                    .zip(self.b.iter_mut())
                    .zip(v)
                    .zip(&self.wh)
                {
                    (*a, *b) = update_factors(x, y, self.beta);
                }
                self.kernels.project(&self.wt, &self.a, &mut self.num);
                self.kernels.project(&self.wt, &self.b, &mut self.den);
            }
            let g = self.gamma;
            for ((x, &n), &d) in h.iter_mut().zip(&self.num).zip(&self.den) {
                let r = n / (d + sparsity).max(EPS);
                *x = (*x * if g == 1.0 { r } else { r.powf(g) }).max(EPS);
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

    /// Writes the model of the components `range` (W_range h_range, n_bins) into `out`.
    pub fn partial_model(&self, h: &[f32], range: std::ops::Range<usize>, out: &mut [f32]) {
        out.fill(0.0);
        for c in range {
            let hc = h[c];
            for (o, &w) in out.iter_mut().zip(self.template(c)) {
                *o += w * hc;
            }
        }
    }
}

/// The two inner products of the solve, compiled for the best instruction set found at run
/// time (AVX2 + FMA on x86-64 when present, else the portable build).
#[derive(Clone, Copy)]
struct Kernels {
    #[cfg(target_arch = "x86_64")]
    avx2: bool,
}

impl Kernels {
    fn detect() -> Self {
        Self {
            #[cfg(target_arch = "x86_64")]
            avx2: is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
        }
    }

    /// `wh = max(W h, EPS)` with `wt` = W^T (K x n_bins).
    #[inline]
    fn model(&self, wt: &[f32], h: &[f32], wh: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: the CPU supports AVX2 and FMA (checked in `detect`).
            return unsafe { model_avx2(wt, h, wh) };
        }
        model_generic(wt, h, wh)
    }

    /// `out[k] = sum_f W[f, k] x[f]` with `wt` = W^T (K x n_bins).
    #[inline]
    fn project(&self, wt: &[f32], x: &[f32], out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: as above.
            return unsafe { project_avx2(wt, x, out) };
        }
        project_generic(wt, x, out)
    }
}

#[inline(always)]
fn model_generic(wt: &[f32], h: &[f32], wh: &mut [f32]) {
    let n = wh.len();
    wh.fill(0.0);
    for (row, &hc) in wt.chunks_exact(n).zip(h) {
        for (y, &w) in wh.iter_mut().zip(row) {
            *y += w * hc;
        }
    }
    wh.iter_mut().for_each(|y| *y = y.max(EPS));
}

#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    // 16 independent partial sums let the compiler keep them in vector registers.
    const L: usize = 16;
    let mut acc = [0.0f32; L];
    let (ac, ar) = a.split_at(a.len() - a.len() % L);
    let (bc, br) = b.split_at(ac.len());
    for (x, y) in ac.chunks_exact(L).zip(bc.chunks_exact(L)) {
        for i in 0..L {
            acc[i] += x[i] * y[i];
        }
    }
    let tail: f32 = ar.iter().zip(br).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

#[inline(always)]
fn project_generic(wt: &[f32], x: &[f32], out: &mut [f32]) {
    for (o, row) in out.iter_mut().zip(wt.chunks_exact(x.len())) {
        *o = dot(row, x);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn model_avx2(wt: &[f32], h: &[f32], wh: &mut [f32]) {
    model_generic(wt, h, wh)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn project_avx2(wt: &[f32], x: &[f32], out: &mut [f32]) {
    project_generic(wt, x, out)
}
