//! The fused update loop over a sliding window of frames, for the online learner: always the
//! one-thread pass (the learner runs beside the audio thread).

use ndarray::{Array2, ArrayView2};

use super::updates::{Fused, SemiState};
use crate::nmf::beta::gamma;
use crate::nmf::kernels::Kernels;

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
