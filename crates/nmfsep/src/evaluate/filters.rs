//! The time-invariant distortion filters of BSS Eval v4 (museval 0.4.1,
//! `_compute_reference_correlations` and `_compute_projection_filters`; Vincent, Gribonval,
//! Févotte 2006, eqs. 4-6): least-squares filters of `filters_len` taps that best produce an
//! estimate's channels from delayed copies of the references, over the whole track.

use std::sync::Arc;

use realfft::num_complex::Complex64;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

use super::lu::{Lu, Singular};

/// Added to the Gram matrix's diagonal before solving (numpy's float64 epsilon, as museval).
pub const GRAM_EPS: f64 = f64::EPSILON;

/// FFTs of one length, with the spectra of every reference channel.
pub struct Correlator {
    n_fft: usize,
    forward: Arc<dyn RealToComplex<f64>>,
    inverse: Arc<dyn ComplexToReal<f64>>,
}

impl Correlator {
    /// FFTs long enough for linear correlations of `len`-sample signals at lags below
    /// `filters_len`: the next power of two from len + filters_len - 1, as museval.
    pub fn new(len: usize, filters_len: usize) -> Self {
        let n_fft = (len + filters_len - 1).next_power_of_two();
        let mut planner = RealFftPlanner::<f64>::new();
        Self {
            n_fft,
            forward: planner.plan_fft_forward(n_fft),
            inverse: planner.plan_fft_inverse(n_fft),
        }
    }

    /// The spectrum of `x` zero-padded to the FFT length.
    pub fn spectrum(&self, x: impl Iterator<Item = f64>) -> Vec<Complex64> {
        let mut buf = self.forward.make_input_vec();
        for (b, v) in buf.iter_mut().zip(x) {
            *b = v;
        }
        let mut out = self.forward.make_output_vec();
        self.forward
            .process(&mut buf, &mut out)
            .expect("plan sizes");
        out
    }

    /// r(k) = sum_n x[n + k] y[n] for k in -(max_lag - 1) .. max_lag - 1, from the spectra
    /// of x and y, as a vector indexed k + max_lag - 1.
    pub fn correlation(&self, x: &[Complex64], y: &[Complex64], max_lag: usize) -> Vec<f64> {
        let mut prod: Vec<Complex64> = x.iter().zip(y).map(|(a, b)| a * b.conj()).collect();
        // The inverse of a real signal's spectrum: DC and Nyquist are real.
        let last = prod.len() - 1;
        prod[0].im = 0.0;
        prod[last].im = 0.0;
        let mut time = self.inverse.make_output_vec();
        self.inverse
            .process(&mut prod, &mut time)
            .expect("plan sizes");
        let scale = 1.0 / self.n_fft as f64;
        (0..2 * max_lag - 1)
            .map(|i| {
                let k = i as isize - (max_lag as isize - 1);
                time[k.rem_euclid(self.n_fft as isize) as usize] * scale
            })
            .collect()
    }
}

/// The Gram matrix of the delayed reference channels, (P * L) x (P * L) for P channels of
/// all sources and L taps: entry ((p, a), (q, b)) = <x_p delayed by a, x_q delayed by b> =
/// r_pq(b - a). `spectra[p]` are the channels' spectra; `channels` picks which.
pub fn gram(corr: &Correlator, spectra: &[&[Complex64]], filters_len: usize) -> Vec<f64> {
    let l = filters_len;
    let p_n = spectra.len();
    let m = p_n * l;
    let mut g = vec![0.0; m * m];
    for p in 0..p_n {
        for q in p..p_n {
            let r = corr.correlation(spectra[p], spectra[q], l);
            for a in 0..l {
                for b in 0..l {
                    // r_pq(b - a) at index b - a + l - 1.
                    let v = r[b + l - 1 - a];
                    g[(p * l + a) * m + q * l + b] = v;
                    g[(q * l + b) * m + p * l + a] = v;
                }
            }
        }
    }
    for i in 0..m {
        g[i * m + i] += GRAM_EPS;
    }
    g
}

/// The filters that project an estimate with spectra `est` (one per channel) onto the
/// references with spectra `refs` given the factored Gram matrix of those references:
/// C[(p, a), c] = taps a of reference channel p into estimate channel c; returned as
/// `filters[c][p * L + a]`.
pub fn projection_filters(
    corr: &Correlator,
    gram: &Lu,
    refs: &[&[Complex64]],
    est: &[Vec<Complex64>],
    filters_len: usize,
) -> Vec<Vec<f64>> {
    let l = filters_len;
    est.iter()
        .map(|e| {
            // D[(p, a)] = <x_p delayed by a, e> = r_{x_p, e}(-a).
            let mut d = Vec::with_capacity(refs.len() * l);
            for x in refs {
                let r = corr.correlation(x, e, l);
                d.extend((0..l).map(|a| r[l - 1 - a]));
            }
            gram.solve(&mut d);
            d
        })
        .collect()
}

/// Factors a Gram matrix of size m.
///
/// # Errors
/// [`Singular`] if it has a zero pivot.
pub fn factor(g: Vec<f64>, m: usize) -> Result<Lu, Singular> {
    Lu::factor(g, m)
}
