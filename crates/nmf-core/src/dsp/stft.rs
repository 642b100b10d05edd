//! Offline short-time Fourier transform and its exact inverse, on `realfft`.
//!
//! Frames are centered (the signal is padded with n_fft/2 zeros at both ends, as librosa's
//! `center=True`), analysis and synthesis use the periodic Hann window, and the inverse
//! divides by the overlap-added squared window (Griffin & Lim 1984, IEEE TASSP 32(2),
//! eq. 6), so an unmodified STFT returns the signal to float rounding. Frame lengths and hops
//! follow the crate's one rule, [`FrameGeometry`].

use std::sync::Arc;

use ndarray::Array2;
use realfft::num_complex::Complex32;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

use super::window::periodic_hann;
use crate::nmf::{FrameGeometry, GeometryError};

/// Errors of STFT settings: those of the crate's one frame rule, [`FrameGeometry::new`].
pub type StftError = GeometryError;

/// STFT settings and plans. Cheap to clone (the plans are shared).
#[derive(Clone)]
pub struct Stft {
    n_fft: usize,
    hop: usize,
    window: Vec<f32>,
    forward: Arc<dyn RealToComplex<f32>>,
    inverse: Arc<dyn ComplexToReal<f32>>,
}

impl Stft {
    /// `n_fft`: frame length in samples; `hop`: samples between frames; they must follow
    /// [`FrameGeometry::new`] (n_fft a power of two 512..=8192, hop dividing it and at most
    /// n_fft/2).
    ///
    /// # Errors
    /// Those of [`FrameGeometry::new`].
    pub fn new(n_fft: usize, hop: usize) -> Result<Self, StftError> {
        Ok(Self::with_geometry(FrameGeometry::new(n_fft, hop)?))
    }

    /// The STFT of a validated frame geometry.
    pub fn with_geometry(geometry: FrameGeometry) -> Self {
        let (n_fft, hop) = (geometry.n_fft(), geometry.hop());
        let mut planner = RealFftPlanner::<f32>::new();
        Self {
            n_fft,
            hop,
            window: periodic_hann(n_fft),
            forward: planner.plan_fft_forward(n_fft),
            inverse: planner.plan_fft_inverse(n_fft),
        }
    }

    /// Frame length, samples.
    pub fn n_fft(&self) -> usize {
        self.n_fft
    }

    /// Hop, samples.
    pub fn hop(&self) -> usize {
        self.hop
    }

    /// n_fft / 2 + 1.
    pub fn n_bins(&self) -> usize {
        self.n_fft / 2 + 1
    }

    /// Number of frames for a signal of `len` samples: `1 + len / hop`.
    pub fn n_frames(&self, len: usize) -> usize {
        1 + len / self.hop
    }

    /// The complex STFT of `x`, n_bins x n_frames. Frame n is centered on sample n * hop.
    pub fn forward(&self, x: &[f32]) -> Array2<Complex32> {
        let (n, pad) = (self.n_fft, self.n_fft / 2);
        let frames = self.n_frames(x.len());
        let mut out = Array2::zeros((self.n_bins(), frames));
        let mut buf = self.forward.make_input_vec();
        let mut spec = self.forward.make_output_vec();
        let mut scratch = self.forward.make_scratch_vec();
        for t in 0..frames {
            for (i, b) in buf.iter_mut().enumerate() {
                let idx = (t * self.hop + i) as isize - pad as isize;
                let s = if idx >= 0 && (idx as usize) < x.len() {
                    x[idx as usize]
                } else {
                    0.0
                };
                *b = s * self.window[i];
            }
            self.forward
                .process_with_scratch(&mut buf, &mut spec, &mut scratch)
                .expect("buffer sizes come from the plan");
            out.column_mut(t)
                .iter_mut()
                .zip(&spec)
                .for_each(|(o, s)| *o = *s);
            debug_assert_eq!(buf.len(), n);
        }
        out
    }

    /// The signal of `len` samples whose STFT is closest to `spec` (n_bins x n_frames) in the
    /// least-squares sense; for an unmodified STFT, the original signal.
    ///
    /// # Panics
    /// If `spec` does not have n_bins rows.
    pub fn inverse(&self, spec: &Array2<Complex32>, len: usize) -> Vec<f32> {
        assert_eq!(
            spec.nrows(),
            self.n_bins(),
            "inverse STFT: wrong number of bins"
        );
        let (n, pad) = (self.n_fft, self.n_fft / 2);
        let total = (spec.ncols().saturating_sub(1)) * self.hop + n;
        let mut acc = vec![0.0f32; total.max(len + pad)];
        let mut norm = vec![0.0f32; acc.len()];
        let mut buf = self.inverse.make_input_vec();
        let mut frame = self.inverse.make_output_vec();
        let mut scratch = self.inverse.make_scratch_vec();
        let scale = 1.0 / n as f32;
        for t in 0..spec.ncols() {
            buf.iter_mut()
                .zip(spec.column(t))
                .for_each(|(b, s)| *b = *s);
            // A real signal has real DC and Nyquist bins; realfft rejects anything else.
            buf[0].im = 0.0;
            buf[n / 2].im = 0.0;
            self.inverse
                .process_with_scratch(&mut buf, &mut frame, &mut scratch)
                .expect("buffer sizes come from the plan");
            let start = t * self.hop;
            for i in 0..n {
                acc[start + i] += frame[i] * scale * self.window[i];
                norm[start + i] += self.window[i] * self.window[i];
            }
        }
        (0..len)
            .map(|i| {
                let j = i + pad;
                if j < acc.len() && norm[j] > 1e-8 {
                    acc[j] / norm[j]
                } else {
                    0.0
                }
            })
            .collect()
    }
}

/// |X|^p of a complex spectrogram (p = 1 magnitude, 2 power).
pub fn spectrogram(spec: &Array2<Complex32>, exponent: f32) -> Array2<f32> {
    if exponent == 1.0 {
        spec.mapv(|c| c.norm())
    } else if exponent == 2.0 {
        spec.mapv(|c| c.norm_sqr())
    } else {
        spec.mapv(|c| c.norm().powf(exponent))
    }
}

/// Floor added to a spectrogram before NMF, relative to its maximum: keeps every entry
/// positive (beta <= 0 divergences are undefined at zero) without changing the music; the
/// scikit-learn baseline of the bench adds the same `1e-6 * max(V)`.
pub const SPECTROGRAM_FLOOR_REL: f32 = 1e-6;

/// The mean over channels of `|X_c|^exponent` (n_bins x n_frames) plus
/// [`SPECTROGRAM_FLOOR_REL`] times its maximum (at least [`crate::nmf::EPS`]): the spectrogram
/// that learning and separation factorize.
///
/// # Panics
/// If `specs` is empty or the shapes differ.
pub fn floored_mean_spectrogram(specs: &[&Array2<Complex32>], exponent: f32) -> Array2<f32> {
    let mut v = Array2::<f32>::zeros(specs[0].dim());
    for x in specs {
        v += &spectrogram(x, exponent);
    }
    v /= specs.len() as f32;
    let floor =
        (v.iter().fold(0.0f32, |m, &x| m.max(x)) * SPECTROGRAM_FLOOR_REL).max(crate::nmf::EPS);
    v.mapv_inplace(|x| x + floor);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_is_exact() {
        let x: Vec<f32> = (0..20_000)
            .map(|i| ((i as f32 * 0.013).sin() + (i as f32 * 0.2).cos() * 0.3) * 0.5)
            .collect();
        for &(n, hop) in &[(512, 128), (2048, 512), (4096, 1024), (1024, 512)] {
            let s = Stft::new(n, hop).unwrap();
            let y = s.inverse(&s.forward(&x), x.len());
            let err = x
                .iter()
                .zip(&y)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(err < 1e-5, "n_fft {n} hop {hop}: max error {err}");
        }
    }

    #[test]
    fn rejects_bad_settings() {
        assert!(Stft::new(1000, 250).is_err());
        assert!(Stft::new(256, 64).is_err());
        assert!(Stft::new(2048, 2000).is_err());
        // Hops that do not divide n_fft are refused too: the engine could not run them.
        assert!(Stft::new(2048, 500).is_err());
    }
}
