//! The multichannel Wiener filter of a trained separator in the engine
//! ([`crate::trained::spatial`]): for a stereo stream, every source's stereo estimate per
//! bin is `C_j Sigma^-1 x` from its NMF power and spatial covariance, instead of one real
//! mask applied to both channels. Prepared off the audio thread; [`SpatialFrame::filter`]
//! does not allocate.

use rustfft::num_complex::Complex32;

use super::MAX_SOURCES;
use crate::trained::apply::source_power;
use crate::trained::spatial::{mean_magnitude_gain, wiener_bin, Hermitian2};
use crate::trained::SpatialCovariance;

/// Per source bus: floored covariances and magnitude gains per bin, and the spectrum of its
/// stereo estimate as one complex FFT input (`Y0 + i Y1`, n_fft).
pub struct SpatialFrame {
    r: [Vec<Hermitian2>; MAX_SOURCES],
    gain: [Vec<f32>; MAX_SOURCES],
    pub(super) out: [Vec<rustfft::num_complex::Complex32>; MAX_SOURCES],
}

impl SpatialFrame {
    /// From the covariances of every bus (`None`: a bus without a source, or a mono source,
    /// which gets the diffuse `I / 2`), with the diffuse `floor`, for frames of `n_fft`
    /// samples. Allocates.
    ///
    /// # Panics
    /// If a covariance does not have n_fft / 2 + 1 bins.
    pub fn new(covs: [Option<&SpatialCovariance>; MAX_SOURCES], floor: f32, n_fft: usize) -> Self {
        let bins = n_fft / 2 + 1;
        let diffuse = SpatialCovariance {
            bins: vec![[0.5, 0.5, 0.0, 0.0]; bins],
        };
        let r: [Vec<Hermitian2>; MAX_SOURCES] = std::array::from_fn(|s| {
            let c = covs[s].unwrap_or(&diffuse);
            assert_eq!(c.n_bins(), bins, "covariance bins");
            (0..bins).map(|f| c.floored(f, floor)).collect()
        });
        let gain = std::array::from_fn(|s| {
            r[s].iter()
                .map(|x| mean_magnitude_gain(x).max(f32::MIN_POSITIVE))
                .collect()
        });
        Self {
            r,
            gain,
            out: std::array::from_fn(|_| vec![Complex32::default(); n_fft]),
        }
    }

    /// Fills `self.out[s]` for every used source from the stereo pair spectrum `z` (the
    /// complex FFT of `x0 + i x1`, n_fft) and the source models `models[s]` (n_bins, in the
    /// spectrogram of `exponent`). Does not allocate.
    #[inline(always)]
    pub(super) fn filter(
        &mut self,
        z: &[Complex32],
        models: &[&mut [f32]; MAX_SOURCES],
        used: &[bool; MAX_SOURCES],
        exponent: f32,
    ) {
        let n = z.len();
        let half = n / 2;
        let mut idx = [0usize; MAX_SOURCES];
        let mut count = 0;
        for (s, &u) in used.iter().enumerate() {
            if u {
                idx[count] = s;
                count += 1;
            }
        }
        let mut v = [0.0f32; MAX_SOURCES];
        let mut r = [Hermitian2::default(); MAX_SOURCES];
        let mut y = [(Complex32::default(), Complex32::default()); MAX_SOURCES];
        for k in 0..=half {
            let (a, b) = (z[k], z[(n - k) % n]);
            // X0 = (Z[k] + conj Z[n-k]) / 2, X1 = (Z[k] - conj Z[n-k]) / 2i.
            let s = a + b.conj();
            let d = a - b.conj();
            let x0 = s * 0.5;
            let x1 = Complex32::new(0.5 * d.im, -0.5 * d.re);
            for (i, &src) in idx[..count].iter().enumerate() {
                r[i] = self.r[src][k];
                v[i] = source_power(models[src][k], exponent, self.gain[src][k], &r[i]);
            }
            wiener_bin(x0, x1, &v[..count], &r[..count], &mut y[..count]);
            for (i, &src) in idx[..count].iter().enumerate() {
                let (mut y0, mut y1) = y[i];
                if k == 0 || k == half {
                    // Real signals have real spectra at DC and Nyquist.
                    y0.im = 0.0;
                    y1.im = 0.0;
                }
                let out = &mut self.out[src];
                // Y0 + i Y1 at k, conj Y0 + i conj Y1 at n - k.
                out[k] = Complex32::new(y0.re - y1.im, y0.im + y1.re);
                if k > 0 && k < half {
                    out[n - k] = Complex32::new(y0.re + y1.im, -y0.im + y1.re);
                }
            }
        }
    }
}
