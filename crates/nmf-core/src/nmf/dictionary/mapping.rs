//! Mapping a dictionary to another sample rate or frame length: the one rule `nmfsep separate`,
//! `--rest`, `--given` and the plugin apply.

use ndarray::Array2;

use super::{Dictionary, DictionaryError, SpectrogramKind, SAMPLE_RATES};

impl Dictionary {
    /// The templates mapped onto the bins of an STFT of `n_fft` samples (periodic Hann) at
    /// `sample_rate` Hz, so a dictionary learned at one sample rate or frame length applies at
    /// another. Returns a clone when it already [`fits`](Self::fits). The hop keeps its ratio to
    /// n_fft (`hop * n_fft / self.n_fft`, at least 1); beta, kind and labels are unchanged.
    ///
    /// Method (chosen over resampling the audio, see BENCHMARKS.md "Dictionaries at another
    /// sample rate"): target bin j is at f_j = j x sample_rate / n_fft Hz, which is the
    /// fractional bin x = f_j x self.n_fft / self.sample_rate of the dictionary. With the
    /// ratio r = (sample_rate / n_fft) / (self.sample_rate / self.n_fft) of the bin widths at
    /// most sqrt 2 (always so for the frame length [`Self::n_fft_for`] chooses), each template
    /// is interpolated linearly in log power at x (geometric interpolation of |X|^2: W itself
    /// for a power dictionary, W^2 for a magnitude one, then the square root; log floored at
    /// 1e-12 of the template's peak power). A Hann main lobe is close to a parabola in log
    /// power, so its peaks keep their height and width; linear interpolation in power, with
    /// an average over the target bin, blurred them and cost 0.67 dB of SI-SDR on the example
    /// at 48 kHz (BENCHMARKS.md, "Where the 96 kHz gap comes from"). For wider target bins
    /// (r > sqrt 2) the power is interpolated linearly and averaged over the target bin's
    /// width (r dictionary bins, 8 points per dictionary bin) so narrow peaks keep their
    /// energy. Bins above the
    /// dictionary's Nyquist frequency (x > self.n_fft / 2), which the dictionary says nothing
    /// about, get the floor `1e-6` times the (rescaled) template's maximum (as the spectrogram floor of
    /// learning, [`crate::dsp::stft::SPECTROGRAM_FLOOR_REL`]): nearly nothing, but positive, so
    /// a source can still claim energy there through its other bins.
    ///
    /// Level: the expected power of a stationary signal of power spectral density S(f) in a
    /// bin is S(f) x sample_rate x sum_n w[n]^2 (Heinzel, Ruediger & Schilling 2002,
    /// "Spectrum and spectral density estimation by the DFT...", eq. 20-24 with
    /// S2 = sum w^2; Harris 1978, Proc. IEEE 66(1), the window's equivalent noise bandwidth),
    /// and sum w^2 = 3 n_fft / 8 for the periodic Hann window. Power templates are scaled by
    /// (sample_rate x n_fft) / (self.sample_rate x self.n_fft), magnitude templates by its
    /// square root. (A steady sinusoid scales instead with (sum w)^2 = (n_fft / 2)^2; any
    /// per-template constant is absorbed by the activations H, so only the sparsity penalty
    /// sees the difference.)
    ///
    /// # Errors
    /// [`DictionaryError::Mismatch`] if either sample rate is outside
    /// [`SAMPLE_RATES`] or either frame length below 16 samples (the work grows with the
    /// ratio of the rates, so these bounds also bound its time).
    pub fn mapped_to(&self, sample_rate: u32, n_fft: usize) -> Result<Dictionary, DictionaryError> {
        if !SAMPLE_RATES.contains(&sample_rate) || n_fft < 16 {
            return Err(DictionaryError::Mismatch(format!(
                "cannot map a dictionary to {sample_rate} Hz, n_fft {n_fft}"
            )));
        }
        if !SAMPLE_RATES.contains(&self.sample_rate) || self.n_fft < 16 {
            return Err(DictionaryError::Mismatch(format!(
                "cannot map a dictionary learned at {} Hz, n_fft {}",
                self.sample_rate, self.n_fft
            )));
        }
        if self.fits(sample_rate, n_fft) {
            return Ok(self.clone());
        }
        let (sr_d, n_d) = (f64::from(self.sample_rate), self.n_fft as f64);
        let (sr_t, n_t) = (f64::from(sample_rate), n_fft as f64);
        let bins_t = n_fft / 2 + 1;
        let last = self.n_bins() - 1;
        // Dictionary bins per target bin.
        let r = (sr_t / n_t) / (sr_d / n_d);
        let power_scale = (sr_t * n_t) / (sr_d * n_d);
        let power = self.spectrogram == SpectrogramKind::Power;
        let mut w = Array2::<f32>::zeros((bins_t, self.n_components()));
        for k in 0..self.n_components() {
            let col = self.w.column(k);
            let p: Vec<f64> = col
                .iter()
                .map(|&v| {
                    if power {
                        f64::from(v)
                    } else {
                        f64::from(v) * f64::from(v)
                    }
                })
                .collect();
            let max = col.iter().fold(0.0f32, |m, &v| m.max(v));
            // Relative to the template's maximum after the level change.
            let level = if power {
                power_scale
            } else {
                power_scale.sqrt()
            };
            let floor = max * level as f32 * crate::dsp::stft::SPECTROGRAM_FLOOR_REL;
            let at = |x: f64| -> f64 {
                let x = x.clamp(0.0, last as f64);
                let i = (x.floor() as usize).min(last);
                let f = x - i as f64;
                if i == last {
                    p[last]
                } else {
                    p[i] * (1.0 - f) + p[i + 1] * f
                }
            };
            // Log power, floored at 1e-12 of the template's peak power (1e-6 in magnitude).
            let tiny = p.iter().fold(0.0f64, |m, &v| m.max(v)) * 1e-12;
            let lp: Vec<f64> = p
                .iter()
                .map(|&v| v.max(tiny).max(f64::MIN_POSITIVE).ln())
                .collect();
            let at_log = |x: f64| -> f64 {
                let x = x.clamp(0.0, last as f64);
                let i = (x.floor() as usize).min(last);
                let f = x - i as f64;
                if i == last {
                    lp[last].exp()
                } else {
                    (lp[i] * (1.0 - f) + lp[i + 1] * f).exp()
                }
            };
            if r <= std::f64::consts::SQRT_2 {
                for j in 0..bins_t {
                    let x = j as f64 * r;
                    w[[j, k]] = if x > last as f64 + 1e-9 {
                        floor
                    } else {
                        let pw = at_log(x) * power_scale;
                        let v = if power { pw } else { pw.sqrt() };
                        (v as f32).max(floor)
                    };
                }
                continue;
            }
            let points = if r > 1.0 {
                (r * 8.0).ceil() as usize
            } else {
                1
            };
            for j in 0..bins_t {
                let x = j as f64 * r;
                if x > last as f64 + 1e-9 {
                    w[[j, k]] = floor;
                    continue;
                }
                let pw = if points == 1 {
                    at(x)
                } else {
                    (0..points)
                        .map(|m| at(x + r * ((m as f64 + 0.5) / points as f64 - 0.5)))
                        .sum::<f64>()
                        / points as f64
                };
                let pw = pw * power_scale;
                let v = if power { pw } else { pw.sqrt() };
                w[[j, k]] = (v as f32).max(floor);
            }
        }
        Ok(Dictionary {
            w,
            sample_rate,
            n_fft,
            hop: (self.hop * n_fft / self.n_fft).max(1),
            ..self.clone()
        })
    }

    /// The frame length to map this dictionary to for audio at `sample_rate` Hz: the power of
    /// two (512..=8192) nearest, on a log scale, to `n_fft x sample_rate / self.sample_rate`,
    /// so frames keep about the same duration (and bins about the same width in Hz).
    pub fn n_fft_for(&self, sample_rate: u32) -> usize {
        let ideal = self.n_fft as f64 * f64::from(sample_rate) / f64::from(self.sample_rate);
        let e = ideal.max(1.0).log2().round().clamp(9.0, 13.0) as u32;
        1usize << e
    }

    /// One line saying how [`Self::mapped_to`] maps this dictionary, e.g. "learned at 44100 Hz,
    /// mapped to 48000 Hz" (with the frame lengths when they differ); `None` when it fits.
    pub fn mapping_note(&self, sample_rate: u32, n_fft: usize) -> Option<String> {
        if self.fits(sample_rate, n_fft) {
            return None;
        }
        Some(if self.n_fft == n_fft {
            format!(
                "learned at {} Hz, mapped to {sample_rate} Hz",
                self.sample_rate
            )
        } else {
            format!(
                "learned at {} Hz with n_fft {}, mapped to {sample_rate} Hz with n_fft {n_fft}",
                self.sample_rate, self.n_fft
            )
        })
    }

    /// This dictionary for audio at `sample_rate` Hz: [`Self::mapped_to`] onto the frame
    /// length [`Self::n_fft_for`] that rate, with the note of [`Self::mapping_note`] (`None`
    /// when it fits as it is). The one rule by which `nmfsep separate` (with or without a
    /// rest), `nmfsep learn --given` and the plugin use a dictionary at another rate.
    /// Allocates (a copy of the templates).
    ///
    /// # Errors
    /// As [`Self::mapped_to`] (a rate outside [`SAMPLE_RATES`]).
    pub fn for_rate(
        &self,
        sample_rate: u32,
    ) -> Result<(Dictionary, Option<String>), DictionaryError> {
        self.for_stft(sample_rate, self.n_fft_for(sample_rate))
    }

    /// [`Self::for_rate`] onto a given frame length `n_fft` (samples): how dictionaries used
    /// together all follow the first one's frame length.
    ///
    /// # Errors
    /// As [`Self::mapped_to`].
    pub fn for_stft(
        &self,
        sample_rate: u32,
        n_fft: usize,
    ) -> Result<(Dictionary, Option<String>), DictionaryError> {
        let note = self.mapping_note(sample_rate, n_fft);
        Ok((self.mapped_to(sample_rate, n_fft)?, note))
    }
}
