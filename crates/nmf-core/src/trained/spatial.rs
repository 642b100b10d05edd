//! The spatial model of a stereo source and the multichannel Wiener filter.
//!
//! Local Gaussian model (Duong, Vincent & Gribonval 2010, "Under-determined reverberant audio
//! source separation using a full-rank spatial covariance model", IEEE TASLP 18(7), eq. 1-4;
//! Ozerov & Févotte 2010, IEEE TASLP 18(3), sec. II): the STFT coefficient of source j's
//! stereo image at bin f, frame n is a zero-mean complex Gaussian vector with covariance
//! `v_j(f, n) R_j(f)`, `v_j` its power (from the NMF model) and `R_j(f)` its 2 x 2 spatial
//! covariance (a Hermitian matrix of trace 1, estimated once from the source's stereo clip).
//! The mixture's covariance is `Sigma(f, n) = sum_j v_j R_j`, and the minimum mean-square
//! error estimate of source j is the multichannel Wiener filter (eq. 4)
//! `y_j = v_j R_j Sigma^-1 x`.
//!
//! Two guards keep the filter stable when `v_j` is wrong, which it is wherever the NMF
//! explains one source with another's templates:
//! - a *diffuse floor*: `R_j` is replaced by `(R_j + floor I / 2) / (1 + floor)`, so that no
//!   source's covariance is singular (an almost pure pan otherwise gives unbounded gains);
//! - a regularization `eps I` of `Sigma`, shared among the sources (`eps / J` added to every
//!   `v_j R_j`), so that the filters of a bin add up to the identity exactly and the
//!   separated sources add up to the mixture.

use realfft::num_complex::Complex32;

/// Regularization of `Sigma` relative to its trace (the `eps` of the module documentation).
pub const SIGMA_EPS_REL: f32 = 1e-6;
/// Absolute floor of that regularization (silence; its square, the determinant, stays a
/// normal f32).
pub const SIGMA_EPS_ABS: f32 = 1e-15;
/// The diffuse floor the offline study found safe on every stereo case (0.1: +0.2 to
/// +1.1 dB over the mono mask in every run, where no floor lost 1.3 dB).
pub const DEFAULT_DIFFUSE_FLOOR: f32 = 0.1;

/// A 2 x 2 Hermitian matrix `[[a, b], [conj b, d]]` (a and d real).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Hermitian2 {
    /// Entry (1, 1), real.
    pub a: f32,
    /// Entry (2, 2), real.
    pub d: f32,
    /// Entry (1, 2); entry (2, 1) is its conjugate.
    pub b: Complex32,
}

impl Hermitian2 {
    /// The identity.
    pub const IDENTITY: Self = Self {
        a: 1.0,
        d: 1.0,
        b: Complex32 { re: 0.0, im: 0.0 },
    };

    /// The trace.
    #[inline(always)]
    pub fn trace(&self) -> f32 {
        self.a + self.d
    }

    /// `s * self`.
    #[inline(always)]
    pub fn scaled(&self, s: f32) -> Self {
        Self {
            a: self.a * s,
            d: self.d * s,
            b: self.b * s,
        }
    }

    /// `self + e I`.
    #[inline(always)]
    pub fn plus_identity(&self, e: f32) -> Self {
        Self {
            a: self.a + e,
            d: self.d + e,
            b: self.b,
        }
    }

    /// `self + other`.
    #[inline(always)]
    pub fn add(&self, o: &Self) -> Self {
        Self {
            a: self.a + o.a,
            d: self.d + o.d,
            b: self.b + o.b,
        }
    }

    /// The product with the vector `(x0, x1)`.
    #[inline(always)]
    pub fn apply(&self, x0: Complex32, x1: Complex32) -> (Complex32, Complex32) {
        (x0 * self.a + self.b * x1, self.b.conj() * x0 + x1 * self.d)
    }

    /// The inverse, or `None` if the determinant is not positive (not positive definite).
    #[inline(always)]
    pub fn inverse(&self) -> Option<Self> {
        let det = self.a * self.d - self.b.norm_sqr();
        if !(det > 0.0 && det.is_finite()) {
            return None;
        }
        let inv = 1.0 / det;
        if !inv.is_finite() {
            return None;
        }
        Some(Self {
            a: self.d * inv,
            d: self.a * inv,
            b: -self.b * inv,
        })
    }
}

/// The spatial covariances `R(f)` of one stereo source, one per frequency bin, trace 1.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SpatialCovariance {
    /// Per bin `[R11, R22, Re R12, Im R12]`.
    pub bins: Vec<[f32; 4]>,
}

impl SpatialCovariance {
    /// Estimates `R(f) = sum_n x(f, n) x(f, n)^H`, normalized to trace 1 (Duong et al. 2010,
    /// the rank-2 covariance of a source alone), from the two channels' STFTs (n_bins x
    /// n_frames each). A bin where the clip is silent gets the diffuse `I / 2`.
    ///
    /// # Panics
    /// If the shapes differ.
    pub fn estimate(left: &ndarray::Array2<Complex32>, right: &ndarray::Array2<Complex32>) -> Self {
        assert_eq!(left.dim(), right.dim());
        let bins = left
            .rows()
            .into_iter()
            .zip(right.rows())
            .map(|(l, r)| {
                let (mut a, mut d, mut b) = (0.0f64, 0.0f64, (0.0f64, 0.0f64));
                for (x0, x1) in l.iter().zip(r.iter()) {
                    a += f64::from(x0.norm_sqr());
                    d += f64::from(x1.norm_sqr());
                    // x0 conj(x1)
                    b.0 += f64::from(x0.re * x1.re + x0.im * x1.im);
                    b.1 += f64::from(x0.im * x1.re - x0.re * x1.im);
                }
                let t = a + d;
                if t > 0.0 && t.is_finite() {
                    [
                        (a / t) as f32,
                        (d / t) as f32,
                        (b.0 / t) as f32,
                        (b.1 / t) as f32,
                    ]
                } else {
                    [0.5, 0.5, 0.0, 0.0]
                }
            })
            .collect();
        Self { bins }
    }

    /// Number of frequency bins.
    pub fn n_bins(&self) -> usize {
        self.bins.len()
    }

    /// `R(f)` with the diffuse floor: `(R + floor I / 2) / (1 + floor)` (still trace 1).
    pub fn floored(&self, f: usize, floor: f32) -> Hermitian2 {
        let [a, d, re, im] = self.bins[f];
        let s = 1.0 / (1.0 + floor);
        Hermitian2 {
            a: (a + 0.5 * floor) * s,
            d: (d + 0.5 * floor) * s,
            b: Complex32::new(re * s, im * s),
        }
    }
}

/// The magnitude gain of a source's image in the mean of the two channels' magnitudes:
/// `(sqrt R11 + sqrt R22) / 2`. A source of power `v` and covariance `R` has channel
/// magnitudes about `sqrt(v R_cc)`, so its model in the mean-magnitude spectrogram that the
/// NMF fits is `sqrt(v)` times this, and `v = (model / gain)^2`.
#[inline(always)]
pub fn mean_magnitude_gain(r: &Hermitian2) -> f32 {
    0.5 * (r.a.max(0.0).sqrt() + r.d.max(0.0).sqrt())
}

/// The multichannel Wiener filter of one bin and frame: given the mixture `(x0, x1)`, the
/// source powers `v[j]` and floored covariances `r[j]`, writes every source's stereo estimate
/// into `out[j]` (module documentation: `C_j = v_j R_j + eps / J I`, `y_j = C_j (sum_i
/// C_i)^-1 x`, which add up to `x`). Where every power is zero the sources share the bin
/// equally. Does not allocate.
#[inline(always)]
pub fn wiener_bin(
    x0: Complex32,
    x1: Complex32,
    v: &[f32],
    r: &[Hermitian2],
    out: &mut [(Complex32, Complex32)],
) {
    let j = v.len().min(r.len()).min(out.len());
    if j == 0 {
        return;
    }
    let mut sigma = Hermitian2::default();
    for (vj, rj) in v.iter().zip(r).take(j) {
        let vj = if vj.is_finite() && *vj > 0.0 {
            *vj
        } else {
            0.0
        };
        sigma = sigma.add(&rj.scaled(vj));
    }
    let eps = (sigma.trace() * SIGMA_EPS_REL).max(SIGMA_EPS_ABS);
    let share = eps / j as f32;
    let sigma = sigma.plus_identity(eps);
    let Some(inv) = sigma.inverse() else {
        let s = 1.0 / j as f32;
        out.iter_mut().take(j).for_each(|o| *o = (x0 * s, x1 * s));
        return;
    };
    let (s0, s1) = inv.apply(x0, x1);
    for ((vj, rj), o) in v.iter().zip(r).zip(out.iter_mut()).take(j) {
        let vj = if vj.is_finite() && *vj > 0.0 {
            *vj
        } else {
            0.0
        };
        *o = rj.scaled(vj).plus_identity(share).apply(s0, s1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use rand::{Rng, SeedableRng};
    use rand_pcg::Pcg64;

    fn c(re: f32, im: f32) -> Complex32 {
        Complex32::new(re, im)
    }

    #[test]
    fn covariance_of_a_pure_pan() {
        let mut rng = Pcg64::seed_from_u64(3);
        let s = Array2::from_shape_simple_fn((5, 40), || c(rng.gen(), rng.gen()));
        let left = s.mapv(|x| x * 0.8);
        let right = s.mapv(|x| x * 0.6);
        let r = SpatialCovariance::estimate(&left, &right);
        for &[a, d, re, im] in &r.bins {
            assert!((a - 0.64).abs() < 1e-5 && (d - 0.36).abs() < 1e-5);
            assert!((re - 0.48).abs() < 1e-5 && im.abs() < 1e-5);
        }
        let f = r.floored(0, 0.1);
        assert!((f.trace() - 1.0).abs() < 1e-6);
        assert!(f.inverse().is_some());
    }

    /// The filters add up to the identity, whatever the powers; with two sources panned hard
    /// left and right and floored covariances, each takes mostly its own channel.
    #[test]
    fn wiener_outputs_add_up_and_follow_the_pan() {
        let mut rng = Pcg64::seed_from_u64(9);
        let left = Hermitian2 {
            a: 1.0,
            d: 0.0,
            b: c(0.0, 0.0),
        };
        let right = Hermitian2 {
            a: 0.0,
            d: 1.0,
            b: c(0.0, 0.0),
        };
        let floor = |r: &Hermitian2| {
            let s = 1.0 / 1.1;
            Hermitian2 {
                a: (r.a + 0.05) * s,
                d: (r.d + 0.05) * s,
                b: r.b * s,
            }
        };
        let r = [
            floor(&left),
            floor(&right),
            Hermitian2::IDENTITY.scaled(0.5),
        ];
        let mut out = [(c(0.0, 0.0), c(0.0, 0.0)); 3];
        for _ in 0..100 {
            let (x0, x1) = (c(rng.gen(), rng.gen()), c(rng.gen(), rng.gen()));
            let v = [
                rng.gen::<f32>() * 4.0,
                rng.gen::<f32>(),
                rng.gen::<f32>() * 0.1,
            ];
            wiener_bin(x0, x1, &v, &r, &mut out);
            let s0: Complex32 = out.iter().map(|o| o.0).sum();
            let s1: Complex32 = out.iter().map(|o| o.1).sum();
            assert!((s0 - x0).norm() < 1e-5 && (s1 - x1).norm() < 1e-5);
        }
        wiener_bin(c(1.0, 0.0), c(1.0, 0.0), &[1.0, 1.0, 0.0], &r, &mut out);
        assert!(out[0].0.re > 0.9 && out[0].1.re < 0.1, "{:?}", out[0]);
        assert!(out[1].1.re > 0.9 && out[1].0.re < 0.1, "{:?}", out[1]);
        // No power anywhere: equal shares.
        wiener_bin(c(3.0, 0.0), c(0.0, 3.0), &[0.0; 3], &r, &mut out);
        for o in &out {
            assert!((o.0.re - 1.0).abs() < 1e-4 && (o.1.im - 1.0).abs() < 1e-4);
        }
    }
}
