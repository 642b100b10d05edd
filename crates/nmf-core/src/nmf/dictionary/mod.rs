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

mod file;

pub(crate) use file::{format_error, open_npz};
mod geometry;
mod mapping;

pub use geometry::{FrameGeometry, GeometryError, FFT_SIZES};

use ndarray::Array2;
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
    /// A file could not be read or written.
    #[error("cannot read or write {path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A file is not a dictionary of this format.
    #[error("{path} is not an nmf-separator dictionary: {message}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// Dictionaries or settings that cannot be used together; the message names both.
    #[error("{0}")]
    Mismatch(String),
}
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

/// The sample rates (Hz) a dictionary may be learned at or mapped to. A bound, not a
/// taste: mapping between rates costs in proportion to their ratio ([`Dictionary::mapped_to`]),
/// so a damaged file or project claiming 0 or 1 Hz must be refused, not mapped.
pub const SAMPLE_RATES: std::ops::RangeInclusive<u32> = 1_000..=768_000;

/// Templates W (n_bins x K) with everything needed to use them on audio.
///
/// Deserializing (from a project's state, say) runs [`Dictionary::validate`], so a
/// `Dictionary` read through serde always holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "unchecked::Fields")]
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

/// The serialized fields, before [`Dictionary::validate`].
mod unchecked {
    use super::{w_serde, Dictionary, DictionaryError, SpectrogramKind};
    use ndarray::Array2;
    use serde::Deserialize;

    #[derive(Deserialize)]
    pub struct Fields {
        #[serde(with = "w_serde")]
        w: Array2<f32>,
        sample_rate: u32,
        n_fft: usize,
        hop: usize,
        beta: f32,
        spectrogram: SpectrogramKind,
        labels: Vec<String>,
    }

    impl TryFrom<Fields> for Dictionary {
        type Error = DictionaryError;

        fn try_from(f: Fields) -> Result<Self, Self::Error> {
            let d = Dictionary {
                w: f.w,
                sample_rate: f.sample_rate,
                n_fft: f.n_fft,
                hop: f.hop,
                beta: f.beta,
                spectrogram: f.spectrogram,
                labels: f.labels,
            };
            d.validate()?;
            Ok(d)
        }
    }
}

/// Serde of templates as `{rows, cols, data}` (row-major), also used by the trained models.
pub(crate) mod w_serde {
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

    /// The same for optional templates (`null` when absent).
    pub mod option {
        use super::Flat;
        use ndarray::Array2;
        use serde::{Deserialize, Deserializer, Serialize, Serializer};

        pub fn serialize<S: Serializer>(w: &Option<Array2<f32>>, s: S) -> Result<S::Ok, S::Error> {
            w.as_ref()
                .map(|w| Flat {
                    rows: w.nrows(),
                    cols: w.ncols(),
                    data: w.iter().copied().collect(),
                })
                .serialize(s)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<Array2<f32>>, D::Error> {
            Option::<Flat>::deserialize(d)?
                .map(|f| Array2::from_shape_vec((f.rows, f.cols), f.data))
                .transpose()
                .map_err(serde::de::Error::custom)
        }
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
    /// values, a sample rate in [`SAMPLE_RATES`], a finite beta).
    ///
    /// # Errors
    /// [`DictionaryError::Mismatch`] naming the first rule broken.
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
        if !SAMPLE_RATES.contains(&self.sample_rate) {
            return bad(format!(
                "sample rate {} Hz is outside {}..={} Hz",
                self.sample_rate,
                SAMPLE_RATES.start(),
                SAMPLE_RATES.end()
            ));
        }
        if !self.beta.is_finite() {
            return bad(format!("beta {} is not finite", self.beta));
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
}

#[cfg(test)]
mod tests;
