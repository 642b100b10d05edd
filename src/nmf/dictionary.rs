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

const FORMAT: &str = "nmf-separator-dictionary";
const VERSION: u32 = 1;

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

    /// Checks the internal consistency (shape, labels, finite non-negative values).
    pub fn validate(&self) -> Result<(), DictionaryError> {
        let bad = |m: String| Err(DictionaryError::Mismatch(m));
        if self.n_fft < 16 || self.hop == 0 || self.hop > self.n_fft {
            return bad(format!(
                "invalid STFT settings n_fft {} hop {}",
                self.n_fft, self.hop
            ));
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

    /// Joins dictionaries side by side (W = [W_1 .. W_n], labels concatenated).
    ///
    /// # Errors
    /// If they differ in sample rate, n_fft, hop, beta or spectrogram kind, or none is given.
    pub fn concat(dicts: &[Dictionary]) -> Result<Dictionary, DictionaryError> {
        let first = dicts
            .first()
            .ok_or_else(|| DictionaryError::Mismatch("no dictionary given".into()))?;
        for d in &dicts[1..] {
            if (d.sample_rate, d.n_fft, d.hop, d.spectrogram)
                != (first.sample_rate, first.n_fft, first.hop, first.spectrogram)
                || d.beta != first.beta
            {
                return Err(DictionaryError::Mismatch(format!(
                    "dictionaries differ: {} Hz/n_fft {}/hop {}/beta {}/{:?} versus {} Hz/n_fft {}/hop {}/beta {}/{:?}",
                    first.sample_rate, first.n_fft, first.hop, first.beta, first.spectrogram,
                    d.sample_rate, d.n_fft, d.hop, d.beta, d.spectrogram
                )));
            }
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

    /// Writes the `.npz` file described in the module documentation.
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
        let file = File::create(path).map_err(|e| io(&e))?;
        let mut npz = NpzWriter::new_compressed(file);
        npz.add_array("W", &self.w).map_err(|e| io(&e))?;
        npz.add_array("meta", &Array1::from(json))
            .map_err(|e| io(&e))?;
        if let Some(m) = h_mean {
            npz.add_array("H_mean", &Array1::from(m.to_vec()))
                .map_err(|e| io(&e))?;
        }
        npz.finish().map_err(|e| io(&e))?;
        Ok(())
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
