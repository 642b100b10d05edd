//! The learned dictionary and its file format.
//!
//! # File format (version 1)
//! A NumPy `.npz` archive (zip of `.npy` files) with two arrays:
//! - `W`: float32, shape (n_bins, K), the templates, one column per component, where
//!   n_bins = n_fft / 2 + 1 (bin f is at f * sample_rate / n_fft Hz);
//! - `meta`: uint8, the UTF-8 bytes of a JSON object
//!   `{"format": "nmf-separator-dictionary", "version": 1, "sample_rate": Hz, "n_fft": samples,
//!     "hop": samples, "beta": real, "spectrogram": "magnitude"|"power", "labels": [one source
//!     label per component]}`.
//!
//! - optionally `H_mean`: float32, shape (K,), the mean over the clip's frames of each
//!   component's activation (written by `nmfsep learn`): `W @ H_mean` is the source's mean
//!   spectrum, which the semi-supervised fit ([`super::semi`]) needs. Older files lack it;
//!   readers that do not know it ignore it.
//!
//! In Python: `d = np.load("piano.npz"); W = d["W"]; meta = json.loads(bytes(d["meta"]))`.
//!
//! # Dictionary rules
//! The rules every part of the crate applies to dictionaries live here, once:
//! - the valid STFT frame geometry, [`FrameGeometry::new`] (used by the STFT, the
//!   dictionary, the real-time engine and the CLI, so `nmfsep learn` refuses what the plugin
//!   would refuse);
//! - when two dictionaries can be used together, [`Dictionary::compatible_with`];
//! - how components are routed to sources by label, [`Dictionary::source_assignment`].

use std::fs::File;
use std::path::Path;

use ndarray::{Array1, Array2};
use ndarray_npy::{NpzReader, NpzWriter};
use serde::{Deserialize, Serialize};

/// What the spectrogram holds: |X| or |X|^2 of the STFT X. The NMF model and its templates
/// are only meaningful for the kind they were learned on, so the kind travels with W.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SpectrogramKind {
    /// |X|, the default (and scikit-learn/librosa tutorials' choice).
    #[default]
    Magnitude,
    /// |X|^2.
    Power,
}

impl SpectrogramKind {
    /// The exponent applied to |X|: 1 or 2.
    pub fn exponent(self) -> f32 {
        match self {
            Self::Magnitude => 1.0,
            Self::Power => 2.0,
        }
    }
}

/// Errors of dictionary files and compatibility checks.
#[derive(Debug, thiserror::Error)]
pub enum DictionaryError {
    #[error("cannot read or write {path}: {message}")]
    Io { path: String, message: String },
    #[error("{path} is not an nmf-separator dictionary: {message}")]
    Format { path: String, message: String },
    #[error("{0}")]
    Mismatch(String),
}

/// STFT frame lengths the crate supports, samples: the powers of two from 512 to 8192 (the
/// real-time engine plans an FFT for each).
pub const FFT_SIZES: [usize; 5] = [512, 1024, 2048, 4096, 8192];

/// Errors of an STFT frame geometry (see [`FrameGeometry::new`]).
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum GeometryError {
    #[error("n_fft must be a power of two between 512 and 8192 samples, got {0}")]
    FftSize(usize),
    #[error("hop {hop} must divide n_fft {n_fft} and be at most n_fft/2 (a power of two from 1 to {half})", half = n_fft / 2)]
    Hop { n_fft: usize, hop: usize },
}

/// A valid STFT frame geometry: frame length n_fft and hop, samples. [`Self::new`] is the
/// only place the rule lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FrameGeometry {
    /// Index of n_fft in [`FFT_SIZES`].
    size: usize,
    hop: usize,
}

impl FrameGeometry {
    /// n_fft 2048, hop 512: the defaults of the CLI and of the engine without a dictionary.
    pub const DEFAULT: FrameGeometry = FrameGeometry { size: 2, hop: 512 };

    /// Checks the rule: n_fft is one of [`FFT_SIZES`], and the hop divides n_fft and is at
    /// most n_fft/2 (so it is a power of two from 1 to n_fft/2). The real-time engine needs
    /// both (its rings hold whole hops and it plans an FFT per size); with an integer
    /// n_fft/hop >= 2 the squared periodic Hann windows overlap-add to a constant (Harris
    /// 1978, Proc. IEEE 66(1), section IV), which the offline inverse STFT and the engine's
    /// overlap-add use.
    ///
    /// # Errors
    /// [`GeometryError::FftSize`] or [`GeometryError::Hop`], whose messages name the rule.
    pub fn new(n_fft: usize, hop: usize) -> Result<Self, GeometryError> {
        let size = FFT_SIZES
            .iter()
            .position(|&n| n == n_fft)
            .ok_or(GeometryError::FftSize(n_fft))?;
        if hop == 0 || !n_fft.is_multiple_of(hop) || hop > n_fft / 2 {
            return Err(GeometryError::Hop { n_fft, hop });
        }
        Ok(Self { size, hop })
    }

    /// Frame length, samples.
    pub const fn n_fft(self) -> usize {
        FFT_SIZES[self.size]
    }

    /// Hop, samples.
    pub const fn hop(self) -> usize {
        self.hop
    }

    /// Frequency bins, n_fft / 2 + 1.
    pub const fn n_bins(self) -> usize {
        self.n_fft() / 2 + 1
    }

    /// Index of n_fft in [`FFT_SIZES`].
    pub const fn size_index(self) -> usize {
        self.size
    }
}

const FORMAT: &str = "nmf-separator-dictionary";
const VERSION: u32 = 1;

/// Label of the components learned from a whole-mix capture (see
/// [`Dictionary::source_assignment`]).
pub const MIX_LABEL: &str = "Mix";

/// `"Source N"` label of source index `s` (N = s + 1).
pub fn source_label(s: usize) -> String {
    format!("Source {}", s + 1)
}

/// Source index of a `"Source N"` label with N = 1..=`max_sources`.
pub fn source_label_index(label: &str, max_sources: usize) -> Option<usize> {
    let n: usize = label.strip_prefix("Source ")?.trim().parse().ok()?;
    (1..=max_sources).contains(&n).then(|| n - 1)
}

/// Templates W (n_bins x K) with everything needed to use them on audio.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dictionary {
    /// Templates, n_bins x K, n_bins = n_fft / 2 + 1.
    #[serde(with = "w_serde")]
    pub w: Array2<f32>,
    /// Sample rate of the audio it was learned on, Hz.
    pub sample_rate: u32,
    /// STFT frame length, samples.
    pub n_fft: usize,
    /// STFT hop, samples.
    pub hop: usize,
    /// Beta of the divergence it was learned with.
    pub beta: f32,
    /// Spectrogram kind it was learned on.
    pub spectrogram: SpectrogramKind,
    /// Source label of every component (K entries).
    pub labels: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct Meta {
    format: String,
    version: u32,
    sample_rate: u32,
    n_fft: usize,
    hop: usize,
    beta: f32,
    spectrogram: SpectrogramKind,
    labels: Vec<String>,
}

mod w_serde {
    use ndarray::Array2;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Flat {
        rows: usize,
        cols: usize,
        data: Vec<f32>,
    }

    pub fn serialize<S: Serializer>(w: &Array2<f32>, s: S) -> Result<S::Ok, S::Error> {
        Flat {
            rows: w.nrows(),
            cols: w.ncols(),
            data: w.iter().copied().collect(),
        }
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Array2<f32>, D::Error> {
        let f = Flat::deserialize(d)?;
        Array2::from_shape_vec((f.rows, f.cols), f.data).map_err(serde::de::Error::custom)
    }
}

impl Dictionary {
    /// Number of components K.
    pub fn n_components(&self) -> usize {
        self.w.ncols()
    }

    /// Number of bins (n_fft / 2 + 1).
    pub fn n_bins(&self) -> usize {
        self.w.nrows()
    }

    /// The distinct source labels, in order of first appearance.
    pub fn sources(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for l in &self.labels {
            if !out.contains(l) {
                out.push(l.clone());
            }
        }
        out
    }

    /// The STFT frame geometry.
    ///
    /// # Errors
    /// If n_fft and hop break the rule of [`FrameGeometry::new`].
    pub fn geometry(&self) -> Result<FrameGeometry, GeometryError> {
        FrameGeometry::new(self.n_fft, self.hop)
    }

    /// Checks the internal consistency (frame geometry, shape, labels, finite non-negative
    /// values).
    pub fn validate(&self) -> Result<(), DictionaryError> {
        let bad = |m: String| Err(DictionaryError::Mismatch(m));
        if let Err(e) = self.geometry() {
            return bad(e.to_string());
        }
        if self.w.nrows() != self.n_fft / 2 + 1 {
            return bad(format!(
                "W has {} rows, expected n_fft/2+1 = {}",
                self.w.nrows(),
                self.n_fft / 2 + 1
            ));
        }
        if self.w.ncols() == 0 || self.labels.len() != self.w.ncols() {
            return bad(format!(
                "W has {} components but {} labels",
                self.w.ncols(),
                self.labels.len()
            ));
        }
        if self.w.iter().any(|x| !(x.is_finite() && *x >= 0.0)) {
            return bad("W has negative or non-finite values".into());
        }
        if self.sample_rate == 0 || !self.beta.is_finite() {
            return bad("invalid sample rate or beta".into());
        }
        Ok(())
    }

    /// Errors unless the dictionary was learned at `sample_rate` Hz with frames of `n_fft`
    /// samples: templates describe frequency bins, which move with either.
    pub fn check_matches(&self, sample_rate: u32, n_fft: usize) -> Result<(), DictionaryError> {
        if self.sample_rate != sample_rate {
            return Err(DictionaryError::Mismatch(format!(
                "dictionary learned at {} Hz, audio is {} Hz (resample the audio or learn again)",
                self.sample_rate, sample_rate
            )));
        }
        if self.n_fft != n_fft {
            return Err(DictionaryError::Mismatch(format!(
                "dictionary has n_fft {}, expected {}",
                self.n_fft, n_fft
            )));
        }
        Ok(())
    }

    /// True if the templates apply as they are to an STFT of `n_fft` samples at `sample_rate`
    /// Hz (same bin frequencies); otherwise [`Self::mapped_to`] maps them.
    pub fn fits(&self, sample_rate: u32, n_fft: usize) -> bool {
        self.sample_rate == sample_rate && self.n_fft == n_fft
    }

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
    /// [`DictionaryError::Mismatch`] if `sample_rate` is 0 or `n_fft` < 16.
    pub fn mapped_to(&self, sample_rate: u32, n_fft: usize) -> Result<Dictionary, DictionaryError> {
        if sample_rate == 0 || n_fft < 16 {
            return Err(DictionaryError::Mismatch(format!(
                "cannot map a dictionary to {sample_rate} Hz, n_fft {n_fft}"
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

    /// Errors unless `self` and `other` can be used together (joined, merged, or one replace
    /// the other's components): same sample rate, n_fft, hop, beta and spectrogram kind.
    /// The message names both settings.
    pub fn compatible_with(&self, other: &Dictionary) -> Result<(), DictionaryError> {
        if (self.sample_rate, self.n_fft, self.hop, self.spectrogram)
            != (other.sample_rate, other.n_fft, other.hop, other.spectrogram)
            || self.beta != other.beta
        {
            return Err(DictionaryError::Mismatch(format!(
                "dictionaries differ: {} Hz/n_fft {}/hop {}/beta {}/{:?} versus {} Hz/n_fft {}/hop {}/beta {}/{:?}",
                self.sample_rate, self.n_fft, self.hop, self.beta, self.spectrogram,
                other.sample_rate, other.n_fft, other.hop, other.beta, other.spectrogram
            )));
        }
        Ok(())
    }

    /// The source index of every component (K entries, each below `max_sources`) from its
    /// label: the one routing rule of the crate.
    /// - `"Source N"` (the plugin's labels, N = 1..=`max_sources`) goes to source N-1;
    /// - [`MIX_LABEL`] (components learned from a whole mixture) are spread round robin over
    ///   the sources, the first to source 0;
    /// - every other label takes, in order of first appearance among these labels, source
    ///   0, 1, ...; labels beyond the last source share it.
    ///
    /// Without "Source N" and "Mix" labels this is the order of [`Self::sources`].
    ///
    /// # Panics
    /// If `max_sources` is 0.
    pub fn source_assignment(&self, max_sources: usize) -> Vec<usize> {
        assert!(max_sources > 0, "at least one source");
        let mut others: Vec<&str> = Vec::new();
        let mut mix = 0usize;
        self.labels
            .iter()
            .map(|l| {
                if let Some(n) = source_label_index(l, max_sources) {
                    n
                } else if l == MIX_LABEL {
                    mix += 1;
                    (mix - 1) % max_sources
                } else {
                    let i = match others.iter().position(|o| *o == l) {
                        Some(i) => i,
                        None => {
                            others.push(l);
                            others.len() - 1
                        }
                    };
                    i.min(max_sources - 1)
                }
            })
            .collect()
    }

    /// Joins dictionaries side by side (W = [W_1 .. W_n], labels concatenated).
    ///
    /// # Errors
    /// If they are not [compatible](Self::compatible_with), or none is given.
    pub fn concat(dicts: &[Dictionary]) -> Result<Dictionary, DictionaryError> {
        let first = dicts
            .first()
            .ok_or_else(|| DictionaryError::Mismatch("no dictionary given".into()))?;
        for d in &dicts[1..] {
            first.compatible_with(d)?;
        }
        let views: Vec<_> = dicts.iter().map(|d| d.w.view()).collect();
        let w = ndarray::concatenate(ndarray::Axis(1), &views)
            .map_err(|e| DictionaryError::Mismatch(e.to_string()))?;
        Ok(Dictionary {
            w,
            labels: dicts
                .iter()
                .flat_map(|d| d.labels.iter().cloned())
                .collect(),
            ..first.clone()
        })
    }

    /// Writes the `.npz` file described in the module documentation. The file appears at
    /// `path` complete or not at all: it is written to a sibling `.NAME.partial` and renamed
    /// (a reader polling for the export, such as a host or a test, never sees half a file).
    pub fn save(&self, path: &Path) -> Result<(), DictionaryError> {
        self.save_with_activation_means(path, None)
    }

    /// [`Dictionary::save`] with the optional `H_mean` array (K entries): the mean activation
    /// of every component over the clip it was learned from.
    ///
    /// # Errors
    /// I/O errors, or `h_mean` without one entry per component.
    pub fn save_with_activation_means(
        &self,
        path: &Path,
        h_mean: Option<&[f32]>,
    ) -> Result<(), DictionaryError> {
        if h_mean.is_some_and(|m| m.len() != self.n_components()) {
            return Err(DictionaryError::Mismatch(format!(
                "H_mean must have one entry per component ({})",
                self.n_components()
            )));
        }
        let io = |e: &dyn std::fmt::Display| DictionaryError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let meta = Meta {
            format: FORMAT.into(),
            version: VERSION,
            sample_rate: self.sample_rate,
            n_fft: self.n_fft,
            hop: self.hop,
            beta: self.beta,
            spectrogram: self.spectrogram,
            labels: self.labels.clone(),
        };
        let json = serde_json::to_vec(&meta).map_err(|e| io(&e))?;
        let name = path.file_name().map_or_else(
            || "dictionary.npz".into(),
            |n| n.to_string_lossy().into_owned(),
        );
        let partial = path.with_file_name(format!(".{name}.partial"));
        let write = || -> Result<(), DictionaryError> {
            let file = File::create(&partial).map_err(|e| io(&e))?;
            let mut npz = NpzWriter::new_compressed(file);
            npz.add_array("W", &self.w).map_err(|e| io(&e))?;
            npz.add_array("meta", &Array1::from(json))
                .map_err(|e| io(&e))?;
            if let Some(m) = h_mean {
                npz.add_array("H_mean", &Array1::from(m.to_vec()))
                    .map_err(|e| io(&e))?;
            }
            npz.finish().map_err(|e| io(&e))?;
            std::fs::rename(&partial, path).map_err(|e| io(&e))
        };
        write().inspect_err(|_| {
            let _ = std::fs::remove_file(&partial);
        })
    }

    /// Reads a `.npz` dictionary and validates it.
    pub fn load(path: &Path) -> Result<Dictionary, DictionaryError> {
        let p = path.display().to_string();
        let file = File::open(path).map_err(|e| DictionaryError::Io {
            path: p.clone(),
            message: e.to_string(),
        })?;
        let fmt = |m: &dyn std::fmt::Display| DictionaryError::Format {
            path: p.clone(),
            message: m.to_string(),
        };
        let mut npz = NpzReader::new(file).map_err(|e| fmt(&e))?;
        let w: Array2<f32> = npz
            .by_name("W")
            .or_else(|_| npz.by_name("W.npy"))
            .map_err(|e| fmt(&e))?;
        let meta: Array1<u8> = npz
            .by_name("meta")
            .or_else(|_| npz.by_name("meta.npy"))
            .map_err(|e| fmt(&e))?;
        let meta: Meta = serde_json::from_slice(meta.as_slice().unwrap_or(&meta.to_vec()))
            .map_err(|e| fmt(&e))?;
        if meta.format != FORMAT {
            return Err(fmt(&format!("format is {:?}", meta.format)));
        }
        if meta.version != VERSION {
            return Err(fmt(&format!(
                "version {} is not supported (this build reads {VERSION})",
                meta.version
            )));
        }
        let d = Dictionary {
            w,
            sample_rate: meta.sample_rate,
            n_fft: meta.n_fft,
            hop: meta.hop,
            beta: meta.beta,
            spectrogram: meta.spectrogram,
            labels: meta.labels,
        };
        d.validate().map_err(|e| fmt(&e))?;
        Ok(d)
    }

    /// Reads the optional `H_mean` array (K entries) of a dictionary file: `Ok(None)` when
    /// the file has none (files written before it existed).
    ///
    /// # Errors
    /// If the file cannot be read, or `H_mean` is not K finite non-negative float32 values.
    pub fn load_activation_means(path: &Path) -> Result<Option<Vec<f32>>, DictionaryError> {
        let p = path.display().to_string();
        let fmt = |m: &dyn std::fmt::Display| DictionaryError::Format {
            path: p.clone(),
            message: m.to_string(),
        };
        let file = File::open(path).map_err(|e| DictionaryError::Io {
            path: p.clone(),
            message: e.to_string(),
        })?;
        let mut npz = NpzReader::new(file).map_err(|e| fmt(&e))?;
        let names = npz.names().map_err(|e| fmt(&e))?;
        if !names.iter().any(|n| n == "H_mean" || n == "H_mean.npy") {
            return Ok(None);
        }
        let m: Array1<f32> = npz
            .by_name("H_mean")
            .or_else(|_| npz.by_name("H_mean.npy"))
            .map_err(|e| fmt(&e))?;
        let w: Array2<f32> = npz
            .by_name("W")
            .or_else(|_| npz.by_name("W.npy"))
            .map_err(|e| fmt(&e))?;
        if m.len() != w.ncols() || m.iter().any(|x| !(x.is_finite() && *x >= 0.0)) {
            return Err(fmt(
                &"H_mean must hold one finite non-negative value per component",
            ));
        }
        Ok(Some(m.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(kind: SpectrogramKind) -> Dictionary {
        Dictionary {
            w: Array2::from_elem((1025, 2), 1.0),
            sample_rate: 44_100,
            n_fft: 2048,
            hop: 512,
            beta: 1.0,
            spectrogram: kind,
            labels: vec!["a".into(), "b".into()],
        }
    }

    #[test]
    fn mapping_moves_bins_scales_levels_and_floors_above_nyquist() {
        let d = flat(SpectrogramKind::Power);
        assert_eq!(d.mapped_to(44_100, 2048).unwrap(), d);
        assert!(d.mapping_note(44_100, 2048).is_none());
        assert_eq!(d.n_fft_for(48_000), 2048);
        assert_eq!(d.n_fft_for(96_000), 4096);
        assert_eq!(d.n_fft_for(22_050), 1024);
        // Twice the rate and twice the frame: same bin width, bins 0..=1024 inside the
        // dictionary's Nyquist, power x4 (sample_rate x n_fft), magnitude x2.
        let m = d.mapped_to(88_200, 4096).unwrap();
        assert_eq!((m.n_bins(), m.hop), (2049, 1024));
        assert!((m.w[[100, 0]] - 4.0).abs() < 1e-5 && (m.w[[1024, 1]] - 4.0).abs() < 1e-5);
        assert!((m.w[[1025, 0]] - 4e-6).abs() < 1e-9, "{}", m.w[[1025, 0]]);
        let mag = flat(SpectrogramKind::Magnitude)
            .mapped_to(88_200, 4096)
            .unwrap();
        assert!((mag.w[[100, 0]] - 2.0).abs() < 1e-5);
        // Twice the rate, same frame: bins above 1024 are beyond the dictionary's Nyquist.
        let up = d.mapped_to(88_200, 2048).unwrap();
        assert!((up.w[[512, 0]] - 2.0).abs() < 1e-5);
        assert!((up.w[[513, 0]] - 2e-6).abs() < 1e-9, "{}", up.w[[513, 0]]);
        assert_eq!(
            up.mapping_note(44_100, 2048).as_deref(),
            Some("learned at 88200 Hz, mapped to 44100 Hz")
        );
        // A peak keeps its place in Hz: bin 100 at 44.1 kHz (2153 Hz) is bin 91.9 at 48 kHz.
        let mut p = flat(SpectrogramKind::Power);
        p.w.fill(0.0);
        p.w[[100, 0]] = 1.0;
        let q = p.mapped_to(48_000, 2048).unwrap();
        let peak = (0..q.n_bins())
            .max_by(|&a, &b| q.w[[a, 0]].total_cmp(&q.w[[b, 0]]))
            .unwrap();
        assert_eq!(peak, 92);
    }

    #[test]
    fn frame_geometry_follows_one_rule() {
        for (n_fft, hop) in [
            (512, 256),
            (2048, 512),
            (2048, 1024),
            (2048, 1),
            (8192, 2048),
        ] {
            let g = FrameGeometry::new(n_fft, hop).unwrap();
            assert_eq!(
                (g.n_fft(), g.hop(), g.n_bins()),
                (n_fft, hop, n_fft / 2 + 1)
            );
            assert_eq!(FFT_SIZES[g.size_index()], n_fft);
        }
        for n_fft in [0, 256, 1000, 16384] {
            assert_eq!(
                FrameGeometry::new(n_fft, 128),
                Err(GeometryError::FftSize(n_fft))
            );
        }
        // `nmfsep learn --hop 500` once wrote such a dictionary, which the plugin refused.
        for hop in [0, 500, 1536, 2048, 4096] {
            assert_eq!(
                FrameGeometry::new(2048, hop),
                Err(GeometryError::Hop { n_fft: 2048, hop })
            );
        }
        assert_eq!(
            FrameGeometry::DEFAULT,
            FrameGeometry::new(2048, 512).unwrap()
        );
    }

    fn dictionary(labels: &[&str]) -> Dictionary {
        Dictionary {
            w: Array2::from_elem((257, labels.len()), 0.5),
            sample_rate: 44_100,
            n_fft: 512,
            hop: 128,
            beta: 1.0,
            spectrogram: SpectrogramKind::Magnitude,
            labels: labels.iter().map(|l| l.to_string()).collect(),
        }
    }

    #[test]
    fn validation_applies_the_frame_rule() {
        let mut d = dictionary(&["a"]);
        assert!(d.validate().is_ok());
        d.hop = 100;
        let e = d.validate().unwrap_err().to_string();
        assert!(e.contains("hop 100 must divide n_fft 512"), "{e}");
    }

    #[test]
    fn routing_by_label() {
        let d = dictionary(&["piano", "bass", "piano", "drums", "sax", "voice"]);
        assert_eq!(d.source_assignment(4), vec![0, 1, 0, 2, 3, 3]);
        assert_eq!(d.source_assignment(5), vec![0, 1, 0, 2, 3, 4]);
        let d = dictionary(&["Source 3", "Mix", "Mix", "x", "Source 1", "Source 9"]);
        assert_eq!(d.source_assignment(4), vec![2, 0, 1, 0, 0, 1]);
    }

    #[test]
    fn compatibility_names_both_settings() {
        let a = dictionary(&["a"]);
        let mut b = dictionary(&["b"]);
        assert!(a.compatible_with(&b).is_ok());
        b.beta = 2.0;
        let e = a.compatible_with(&b).unwrap_err().to_string();
        assert!(e.contains("beta 1") && e.contains("beta 2"), "{e}");
        assert!(Dictionary::concat(&[a, b]).is_err());
    }
}
