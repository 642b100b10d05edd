//! The multichannel Wiener filter of Open-Unmix with expectation-maximization refinement
//! (`openunmix.filtering.wiener` and `expectation_maximization`, 1.3.0; Nugraha, Liutkus,
//! Vincent 2016, "Multichannel audio source separation with deep neural networks", IEEE/ACM
//! TASLP 24(9), eqs. 11-14): each source j is modelled per bin as a zero-mean complex
//! Gaussian with power spectral density v_j(t, f) and spatial covariance R_j(f).
//!
//! One call filters one block of frames (the Separator's `wiener_win_len`); the block's
//! own scale and statistics, as in Python.
//!
//! One deliberate difference: Python's `atan2` helper writes 1 into the real part of every
//! mixture bin that is exactly 0 + 0j (digital silence) before the residual is formed, so
//! its `residual` output gets a click in silent frames (and, with EM, that value enters the
//! residual's spatial covariance in those frequency bins); here such bins stay zero.
//! Without `residual` the outputs are the same either way.

use ndarray::{Array3, Array4, ArrayView3, ArrayView4};
use realfft::num_complex::{Complex32, Complex64};

/// Floor added to power sums and, as its square root, to the mixture covariance's diagonal
/// (`eps` of `openunmix.filtering.wiener`).
pub const WIENER_EPS: f64 = 1e-10;

/// Mixtures louder than this many times 1 are scaled down to it before EM
/// (`scale_factor` of `openunmix.filtering.wiener`).
pub const WIENER_SCALE_FACTOR: f32 = 10.0;

/// How the sources' complex STFTs are made from their magnitude estimates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WienerOptions {
    /// EM iterations (0 = the magnitudes with the mixture's phase).
    pub iterations: usize,
    /// Start from the ratio mask v_j / sum v instead of the mixture's phase.
    pub softmask: bool,
    /// Add a source: the mixture minus the sum of the others.
    pub residual: bool,
}

/// Filters one block: `mags` (sources x frames x bins x channels, magnitude estimates) and
/// `mix` (frames x bins x channels, the mixture STFT) to the sources' STFTs, (sources [+ 1
/// with `residual`]) x frames x bins x channels. Channels: 1 or 2.
pub fn wiener(
    mags: ArrayView4<f32>,
    mix: ArrayView3<Complex32>,
    opts: &WienerOptions,
) -> Array4<Complex32> {
    let (n_src, n_t, n_f, n_c) = mags.dim();
    assert_eq!(mix.dim(), (n_t, n_f, n_c));
    assert!(n_c == 1 || n_c == 2, "1 or 2 channels");
    let n_out = n_src + usize::from(opts.residual);
    let mut y = Array4::<Complex32>::zeros((n_out, n_t, n_f, n_c));
    let eps = WIENER_EPS as f32;
    for t in 0..n_t {
        for f in 0..n_f {
            for c in 0..n_c {
                let x = mix[[t, f, c]];
                if opts.softmask {
                    let total: f32 = (0..n_src).map(|j| mags[[j, t, f, c]]).sum();
                    for j in 0..n_src {
                        y[[j, t, f, c]] = x * (mags[[j, t, f, c]] / (eps + total));
                    }
                } else {
                    let angle = x.im.atan2(x.re);
                    let (sin, cos) = angle.sin_cos();
                    for j in 0..n_src {
                        let m = mags[[j, t, f, c]];
                        y[[j, t, f, c]] = Complex32::new(m * cos, m * sin);
                    }
                }
                if opts.residual {
                    let sum: Complex32 = (0..n_src).map(|j| y[[j, t, f, c]]).sum();
                    y[[n_src, t, f, c]] = x - sum;
                }
            }
        }
    }
    if opts.iterations == 0 {
        return y;
    }
    // Scale so that the loudest bin is at most WIENER_SCALE_FACTOR, EM, scale back.
    let peak = mix.iter().fold(0.0f32, |m, x| m.max(x.norm_sqr())).sqrt();
    let max_abs = (peak / WIENER_SCALE_FACTOR).max(1.0);
    let x = mix.mapv(|v| v / max_abs);
    y.mapv_inplace(|v| v / max_abs);
    expectation_maximization(&mut y, x.view(), opts.iterations);
    y.mapv_inplace(|v| v * max_abs);
    y
}

/// `iterations` EM updates of the source STFTs `y` (sources x frames x bins x channels)
/// given the mixture `x` (frames x bins x channels).
fn expectation_maximization(
    y: &mut Array4<Complex32>,
    x: ArrayView3<Complex32>,
    iterations: usize,
) {
    let (n_src, n_t, n_f, n_c) = y.dim();
    let reg = WIENER_EPS.sqrt();
    let mut v = Array3::<f64>::zeros((n_src, n_t, n_f));
    // R[j][f] as a 2x2 (or 1x1) complex matrix, row-major.
    let mut r = vec![[Complex64::new(0.0, 0.0); 4]; n_src * n_f];
    for _ in 0..iterations {
        // Power spectral densities: the mean over channels of |y|^2.
        for j in 0..n_src {
            for t in 0..n_t {
                for f in 0..n_f {
                    let p: f64 = (0..n_c)
                        .map(|c| f64::from(y[[j, t, f, c]].norm_sqr()))
                        .sum();
                    v[[j, t, f]] = p / n_c as f64;
                }
            }
        }
        // Spatial covariances: sum_t y y^H / (eps + sum_t v).
        for j in 0..n_src {
            for f in 0..n_f {
                let mut acc = [Complex64::new(0.0, 0.0); 4];
                let mut weight = WIENER_EPS;
                for t in 0..n_t {
                    for a in 0..n_c {
                        let ya = c64(y[[j, t, f, a]]);
                        for b in 0..n_c {
                            acc[a * 2 + b] += ya * c64(y[[j, t, f, b]]).conj();
                        }
                    }
                    weight += v[[j, t, f]];
                }
                r[j * n_f + f] = acc.map(|z| z / weight);
            }
        }
        // Wiener gains v_j R_j Cxx^-1 applied to the mixture.
        for t in 0..n_t {
            for f in 0..n_f {
                let mut cxx = [Complex64::new(0.0, 0.0); 4];
                cxx[0] = Complex64::new(reg, 0.0);
                cxx[3] = Complex64::new(reg, 0.0);
                for j in 0..n_src {
                    let vj = v[[j, t, f]];
                    for (c, rr) in cxx.iter_mut().zip(&r[j * n_f + f]) {
                        *c += rr * vj;
                    }
                }
                let inv = invert(&cxx, n_c);
                for j in 0..n_src {
                    let rj = &r[j * n_f + f];
                    let vj = v[[j, t, f]];
                    for a in 0..n_c {
                        let mut out = Complex64::new(0.0, 0.0);
                        for i in 0..n_c {
                            let mut g = Complex64::new(0.0, 0.0);
                            for c in 0..n_c {
                                g += rj[a * 2 + c] * inv[c * 2 + i];
                            }
                            out += g * vj * c64(x[[t, f, i]]);
                        }
                        y[[j, t, f, a]] = Complex32::new(out.re as f32, out.im as f32);
                    }
                }
            }
        }
    }
}

fn c64(z: Complex32) -> Complex64 {
    Complex64::new(f64::from(z.re), f64::from(z.im))
}

/// Inverse of a 1x1 or 2x2 complex matrix (row-major in a 2x2 array), by the adjugate over
/// the determinant, as `openunmix.filtering._invert`.
fn invert(m: &[Complex64; 4], n_c: usize) -> [Complex64; 4] {
    let zero = Complex64::new(0.0, 0.0);
    if n_c == 1 {
        return [m[0].inv(), zero, zero, zero];
    }
    let det = m[0] * m[3] - m[1] * m[2];
    let inv_det = det.inv();
    [
        m[3] * inv_det,
        -m[1] * inv_det,
        -m[2] * inv_det,
        m[0] * inv_det,
    ]
}
