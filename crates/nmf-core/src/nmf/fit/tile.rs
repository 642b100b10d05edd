//! One tile of the fused pass: the H update of up to [`TILE`] frames and their share of the
//! W numerator and denominator. Every pass ([`super::updates`], and the chunked ones of
//! [`super::parallel`] on one thread or several) runs its tiles through [`step_tile`].

use crate::nmf::beta::EPS;
use crate::nmf::kernels::Kernels;

use super::updates::TILE;

/// What every tile of one iteration reads: the spectrogram and W in their tiled layouts,
/// and the settings of the iteration.
pub(super) struct TileInputs<'a> {
    /// V frames-major (n_frames rounded up to TILE x fp).
    pub vt: &'a [f32],
    /// W^T (kp x fp) and W (fp x kp).
    pub wt: &'a [f32],
    pub wk: &'a [f32],
    /// Column sums of W (kp), the beta = 1 H denominator.
    pub colsum: &'a [f32],
    /// Per-component L1 weights of the semi-supervised penalty (kp), if any.
    pub lam: Option<&'a [f32]>,
    pub kernels: Kernels,
    pub n_bins: usize,
    pub n_frames: usize,
    pub k: usize,
    pub fp: usize,
    pub kp: usize,
    pub beta: f32,
    /// The exponent gamma(beta) of the updates.
    pub g: f32,
    /// L1 weight on H.
    pub lambda: f32,
    pub update_w: bool,
    /// Whether to return the divergence of the tile's first model.
    pub cost: bool,
}

/// The work buffers of one tile (one set per thread), allocated once.
pub(super) struct TileScratch {
    /// Factor tiles (TILE x fp): numerator factor, and denominator factor for beta != 1.
    pub ya: Vec<f32>,
    pub yb: Vec<f32>,
    /// W^T A and W^T B of a tile (TILE x kp).
    pub num_h: Vec<f32>,
    pub den_h: Vec<f32>,
}

impl TileScratch {
    pub(super) fn new(fp: usize, kp: usize, beta: f32) -> Self {
        Self {
            ya: vec![0.0; TILE * fp],
            yb: if beta == 1.0 {
                Vec::new()
            } else {
                vec![0.0; TILE * fp]
            },
            num_h: vec![0.0; TILE * kp],
            den_h: vec![0.0; TILE * kp],
        }
    }
}

/// Numerator (and for beta != 1 denominator) factors of the tile at frame `n0` from the
/// model in `s.ya`; returns the divergence of the valid entries if `cost`.
pub(super) fn factors(x: &TileInputs, s: &mut TileScratch, n0: usize, cost: bool) -> f64 {
    let (fp, n_bins) = (x.fp, x.n_bins);
    let n_valid = (x.n_frames - n0).min(TILE);
    let v = &x.vt[n0 * fp..(n0 + TILE) * fp];
    if x.beta == 1.0 {
        x.kernels
            .kl_ratio(v, &mut s.ya, fp, n_bins, TILE, n_valid, cost)
    } else {
        x.kernels.beta_factors(
            v, &mut s.ya, &mut s.yb, fp, n_bins, TILE, n_valid, x.beta, cost,
        )
    }
}

/// The tile at frame `n0` (`ht`: its TILE x kp activations, updated in place): the H update
/// with W_t (Févotte & Idier 2011, eq. 4.1, with the L1 term of Le Roux et al. 2015 in the
/// denominator), then, if `x.update_w`, the tile's part of the W numerator A H^T added to
/// `num_w` (fp x kp) and of the denominator (B H^T added to `den_w`, fp x kp; for beta = 1
/// the row sums of H added to `den_w[..kp]`), both with the updated H (eq. 4.2). Returns
/// `D_beta(V | W_t H_t)` of the tile if `x.cost`, else 0. Allocates nothing.
pub(super) fn step_tile(
    x: &TileInputs,
    s: &mut TileScratch,
    n0: usize,
    ht: &mut [f32],
    num_w: &mut [f32],
    den_w: &mut [f32],
) -> f64 {
    let (fp, kp, k, kern) = (x.fp, x.kp, x.k, x.kernels);
    let (beta, g, lambda) = (x.beta, x.g, x.lambda);
    let n_valid = (x.n_frames - n0).min(TILE);
    kern.model(x.wt, ht, &mut s.ya, fp, kp, TILE);
    let total = factors(x, s, n0, x.cost);
    kern.project(x.wk, &s.ya, &mut s.num_h, fp, kp, TILE);
    if beta != 1.0 {
        kern.project(x.wk, &s.yb, &mut s.den_h, fp, kp, TILE);
    }
    for t in 0..n_valid {
        let hrow = &mut ht[t * kp..t * kp + k];
        let num = &s.num_h[t * kp..t * kp + k];
        let den: &[f32] = if beta == 1.0 {
            &x.colsum[..k]
        } else {
            &s.den_h[t * kp..t * kp + k]
        };
        match x.lam {
            None => {
                for ((h, &n), &d) in hrow.iter_mut().zip(num).zip(den) {
                    let r = n / (d + lambda).max(EPS);
                    *h = (*h * if g == 1.0 { r } else { r.powf(g) }).max(EPS);
                }
            }
            Some(lam) => {
                for (((h, &n), &d), &l) in hrow.iter_mut().zip(num).zip(den).zip(&lam[..k]) {
                    let r = n / (d + lambda + l).max(EPS);
                    *h = (*h * if g == 1.0 { r } else { r.powf(g) }).max(EPS);
                }
            }
        }
    }
    if x.update_w {
        kern.model(x.wt, ht, &mut s.ya, fp, kp, TILE);
        factors(x, s, n0, false);
        kern.accumulate(&s.ya, ht, num_w, fp, kp, TILE);
        if beta == 1.0 {
            for t in 0..n_valid {
                let hrow = &ht[t * kp..(t + 1) * kp];
                for (d, &h) in den_w[..kp].iter_mut().zip(hrow) {
                    *d += h;
                }
            }
        } else {
            kern.accumulate(&s.yb, ht, den_w, fp, kp, TILE);
        }
    }
    total
}
