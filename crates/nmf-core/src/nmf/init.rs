//! Initial values of W and H for the offline fit.

use nalgebra::{DMatrix, SymmetricEigen};
use ndarray::{Array2, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

use super::beta::EPS;

/// How the offline fit chooses its starting point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Init {
    /// Uniform random entries in `[0, 1)` scaled by `sqrt(mean(V) / K)`, from the seed.
    Random,
    /// Non-negative double SVD with zeros filled by the mean of V (Boutsidis & Gallopoulos
    /// 2008, "SVD based initialization: a head start for nonnegative matrix factorization",
    /// Pattern Recognition 41(4), the NNDSVDa variant). The SVD is a randomized truncated one
    /// (Halko, Martinsson & Tropp 2011, SIAM Review 53(2), Algorithm 4.4) seeded by the seed.
    Nndsvda,
}

/// Returns `(W, H)`, shapes `(n_bins, k)` and `(k, n_frames)`, with every entry >= [`EPS`].
pub fn initialize(
    v: ArrayView2<f32>,
    k: usize,
    init: Init,
    seed: u64,
) -> (Array2<f32>, Array2<f32>) {
    match init {
        Init::Random => random(v, k, seed),
        Init::Nndsvda => nndsvda(v, k, seed),
    }
}

fn mean(v: ArrayView2<f32>) -> f64 {
    v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len().max(1) as f64
}

fn random(v: ArrayView2<f32>, k: usize, seed: u64) -> (Array2<f32>, Array2<f32>) {
    let (n_bins, n_frames) = v.dim();
    let scale = (mean(v) / k as f64).sqrt().max(f64::from(EPS)) as f32;
    let mut rng = Pcg64::seed_from_u64(seed);
    let w = Array2::from_shape_simple_fn((n_bins, k), || (scale * rng.gen::<f32>()).max(EPS));
    let h = Array2::from_shape_simple_fn((k, n_frames), || (scale * rng.gen::<f32>()).max(EPS));
    (w, h)
}

fn to_dmatrix(a: ArrayView2<f32>) -> DMatrix<f64> {
    DMatrix::from_fn(a.nrows(), a.ncols(), |i, j| f64::from(a[[i, j]]))
}

/// Orthonormal basis of the columns of `y` (thin QR).
fn orthonormalize(y: DMatrix<f64>) -> DMatrix<f64> {
    y.qr().q()
}

/// Truncated SVD `V ~ U diag(s) Vt` with `k` triplets, largest first.
fn truncated_svd(
    v: ArrayView2<f32>,
    k: usize,
    seed: u64,
) -> (DMatrix<f64>, Vec<f64>, DMatrix<f64>) {
    let vm = to_dmatrix(v);
    let (n_bins, n_frames) = vm.shape();
    let l = (k + 10).min(n_bins).min(n_frames);
    let mut rng = Pcg64::seed_from_u64(seed ^ 0x5eed_5eed);
    // Gaussian test matrix by Box-Muller from the seeded generator.
    let omega = DMatrix::from_fn(n_frames, l, |_, _| {
        let u1: f64 = rng.gen::<f64>().max(1e-300);
        let u2: f64 = rng.gen();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    });
    // V^T once, so that every product below is a plain (blocked, vectorized) GEMM.
    let vmt = vm.transpose();
    let mut q = orthonormalize(&vm * omega);
    for _ in 0..4 {
        let z = orthonormalize(&vmt * &q);
        q = orthonormalize(&vm * z);
    }
    let b = (&vmt * &q).transpose(); // l x n_frames
    let eig = SymmetricEigen::new(&b * b.transpose());
    let mut order: Vec<usize> = (0..l).collect();
    order.sort_by(|&i, &j| eig.eigenvalues[j].total_cmp(&eig.eigenvalues[i]));
    let k = k.min(l);
    let mut u = DMatrix::zeros(n_bins, k);
    let mut s = Vec::with_capacity(k);
    let mut vt = DMatrix::zeros(k, n_frames);
    for (r, &i) in order.iter().take(k).enumerate() {
        let sigma = eig.eigenvalues[i].max(0.0).sqrt();
        let ub = eig.eigenvectors.column(i);
        u.set_column(r, &(&q * ub));
        let row = if sigma > 0.0 {
            (ub.transpose() * &b) / sigma
        } else {
            ub.transpose() * &b * 0.0
        };
        vt.set_row(r, &row);
        s.push(sigma);
    }
    (u, s, vt)
}

fn nndsvda(v: ArrayView2<f32>, k: usize, seed: u64) -> (Array2<f32>, Array2<f32>) {
    let (n_bins, n_frames) = v.dim();
    let (u, s, vt) = truncated_svd(v, k, seed);
    let avg = mean(v) as f32;
    let mut w = Array2::from_elem((n_bins, k), avg.max(EPS));
    let mut h = Array2::from_elem((k, n_frames), avg.max(EPS));
    for j in 0..s.len() {
        let uc: Vec<f64> = u.column(j).iter().copied().collect();
        let vr: Vec<f64> = vt.row(j).iter().copied().collect();
        let (wc, hr): (Vec<f64>, Vec<f64>) = if j == 0 {
            // The leading singular pair of a non-negative matrix can be taken non-negative.
            let scale = s[0].sqrt();
            (
                uc.iter().map(|x| scale * x.abs()).collect(),
                vr.iter().map(|x| scale * x.abs()).collect(),
            )
        } else {
            let pos = |x: &f64| x.max(0.0);
            let neg = |x: &f64| (-x).max(0.0);
            let norm = |it: &mut dyn Iterator<Item = f64>| it.map(|x| x * x).sum::<f64>().sqrt();
            let (up, un) = (norm(&mut uc.iter().map(pos)), norm(&mut uc.iter().map(neg)));
            let (vp, vn) = (norm(&mut vr.iter().map(pos)), norm(&mut vr.iter().map(neg)));
            let (mp, mn) = (up * vp, un * vn);
            // The part (positive or negative) of u and v to keep, their norms and their product.
            type Part = fn(&f64) -> f64;
            let (fu, fv, nu, nv, m): (Part, Part, f64, f64, f64) = if mp >= mn {
                (|x| x.max(0.0), |x| x.max(0.0), up, vp, mp)
            } else {
                (|x| (-x).max(0.0), |x| (-x).max(0.0), un, vn, mn)
            };
            let lambda = (s[j] * m).sqrt();
            (
                uc.iter()
                    .map(|x| if nu > 0.0 { lambda * fu(x) / nu } else { 0.0 })
                    .collect(),
                vr.iter()
                    .map(|x| if nv > 0.0 { lambda * fv(x) / nv } else { 0.0 })
                    .collect(),
            )
        };
        for (f, x) in wc.iter().enumerate() {
            if *x > 0.0 {
                w[[f, j]] = *x as f32;
            }
        }
        for (n, x) in hr.iter().enumerate() {
            if *x > 0.0 {
                h[[j, n]] = *x as f32;
            }
        }
    }
    w.mapv_inplace(|x| x.max(EPS));
    h.mapv_inplace(|x| x.max(EPS));
    (w, h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nndsvda_is_close_on_a_rank_one_matrix() {
        let a = ndarray::Array1::from_iter((0..40).map(|i| 1.0 + (i as f32 * 0.3).sin().abs()));
        let b = ndarray::Array1::from_iter((0..60).map(|i| 0.5 + (i as f32 * 0.17).cos().abs()));
        let v = Array2::from_shape_fn((40, 60), |(i, j)| a[i] * b[j]);
        let (w, h) = initialize(v.view(), 1, Init::Nndsvda, 0);
        let err = (&w.dot(&h) - &v).mapv(|x| x * x).sum().sqrt() / v.mapv(|x| x * x).sum().sqrt();
        assert!(err < 1e-4, "relative error {err}");
    }
}
