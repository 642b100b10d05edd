//! The trained separator and its file.
//!
//! # File format (version 1)
//! A NumPy `.npz` archive that is also a dictionary file ([`crate::nmf::dictionary`]): its
//! `W` and `meta` arrays are those of the dictionary (so `Dictionary::load` and every tool
//! that reads dictionaries read a model as its dictionary), plus
//! - `model`: uint8, the UTF-8 bytes of a JSON object `{"format": "nmf-separator-model",
//!   "version": 1, "settings": {...}}` ([`ModelSettings`]: the diffuse floor, the mask
//!   exponent, and per source its name, tonality, the pitch shifts its clip was augmented
//!   with and the clip's length and channel count);
//! - optionally `R`: float32, shape (n_sources, n_bins, 4), the spatial covariance of every
//!   source per bin as `[R11, R22, Re R12, Im R12]` (trace 1, before the diffuse floor), in
//!   the order of `settings.sources`;
//! - optionally `Wr`: float32, the shape of `W`, the discriminative reconstruction templates
//!   ([`super::discriminative`]) that build the source models of the masks from the
//!   activations of `W`.
//!
//! A plain dictionary file (no `model` array) loads as a model without a spatial part.

use std::fs::File;
use std::path::Path;

use ndarray::{Array1, Array2, Array3};
use ndarray_npy::NpzWriter;
use serde::{Deserialize, Serialize};

use super::spatial::{SpatialCovariance, DEFAULT_DIFFUSE_FLOOR};
use crate::nmf::dictionary::{format_error, open_npz};
use crate::nmf::{Dictionary, DictionaryError};

const FORMAT: &str = "nmf-separator-model";
/// Relative slack of the check `|R12|^2 <= R11 R22` of a stored covariance (rounding of an
/// estimate in f32 and of its text form).
const COVARIANCE_SLACK: f32 = 1e-3;
const VERSION: u32 = 1;

/// What training did for one source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// Source name (the label of its components).
    pub name: String,
    /// Tonality of a dictionary learned from the clip alone ([`crate::nmf::semi::tonality`]),
    /// or `None` when the caller said whether the source is tonal.
    pub tonality: Option<f32>,
    /// Pitch shifts (semitones) of the copies its dictionary also learned from; empty when
    /// the clip was not augmented.
    pub shifts: Vec<f32>,
    /// The clip's pitch share ([`super::pitch::pitch_share`]) when its tonality was measured
    /// and found tonal; at [`super::pitch::ONE_PITCH_SHARE`] or above the clip plays one
    /// pitch and is not augmented. `None` in files written before it was measured.
    #[serde(default)]
    pub pitch_share: Option<f32>,
    /// Length of the clip, seconds.
    pub clip_s: f32,
    /// Channels of the clip.
    pub channels: usize,
}

/// Settings of a trained separator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelSettings {
    /// Diffuse floor of the spatial covariances ([`super::spatial`]).
    pub diffuse_floor: f32,
    /// Exponent p of the Wiener masks where the spatial model is not used.
    pub mask_power: f32,
    /// One entry per source, in the order of the dictionary's sources.
    pub sources: Vec<SourceInfo>,
    /// What the discriminative training measured on the held-back mixtures, when it ran.
    #[serde(default)]
    pub discriminative: Option<DiscriminativeRecord>,
}

/// The held-back measurements of the discriminative training ([`super::discriminative`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiscriminativeRecord {
    /// Mean SDR (dB) of the held-back mixtures with the analysis templates.
    pub held_back_sdr_before: f32,
    /// Mean SDR (dB) of the held-back mixtures with the templates kept.
    pub held_back_sdr_after: f32,
    /// Optimizer steps run.
    pub steps: usize,
    /// Whether trained templates were kept (they beat the analysis templates).
    pub kept: bool,
}

/// A separator trained from one clip per source: the dictionary (components labelled with
/// their source's name) and, when clips were stereo, every source's spatial covariances.
///
/// Deserializing (from a project's state, say) runs [`SeparatorModel::validate`], so a
/// `SeparatorModel` read through serde always holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "unchecked::Fields")]
pub struct SeparatorModel {
    /// The templates of every source (n_bins x K).
    pub dictionary: Dictionary,
    /// Per source (order of `settings.sources`): its spatial covariances (n_bins each).
    pub spatial: Option<Vec<SpatialCovariance>>,
    /// Discriminative reconstruction templates W~ (the shape of the dictionary's W): the
    /// masks' source models are `W~ h` with the activations `h` of W
    /// ([`super::discriminative`]); `None`: the masks use W.
    #[serde(default, with = "crate::nmf::dictionary::w_serde::option")]
    pub reconstruction: Option<Array2<f32>>,
    /// Settings and training record.
    pub settings: ModelSettings,
}

/// The serialized fields, before [`SeparatorModel::validate`].
mod unchecked {
    use super::{ModelSettings, SeparatorModel, SpatialCovariance};
    use crate::nmf::{Dictionary, DictionaryError};
    use ndarray::Array2;
    use serde::Deserialize;

    #[derive(Deserialize)]
    pub struct Fields {
        dictionary: Dictionary,
        spatial: Option<Vec<SpatialCovariance>>,
        #[serde(default, with = "crate::nmf::dictionary::w_serde::option")]
        reconstruction: Option<Array2<f32>>,
        settings: ModelSettings,
    }

    impl TryFrom<Fields> for SeparatorModel {
        type Error = DictionaryError;

        fn try_from(f: Fields) -> Result<Self, Self::Error> {
            let m = SeparatorModel {
                dictionary: f.dictionary,
                spatial: f.spatial,
                reconstruction: f.reconstruction,
                settings: f.settings,
            };
            m.validate()?;
            Ok(m)
        }
    }
}

#[derive(Serialize, Deserialize)]
struct ModelMeta {
    format: String,
    version: u32,
    settings: ModelSettings,
}

impl SeparatorModel {
    /// A model that is only `dict` (no spatial part): what a plain dictionary file loads as.
    pub fn from_dictionary(dict: Dictionary) -> Self {
        let sources = dict
            .sources()
            .into_iter()
            .map(|name| SourceInfo {
                name,
                tonality: None,
                shifts: Vec::new(),
                pitch_share: None,
                clip_s: 0.0,
                channels: 0,
            })
            .collect();
        Self {
            dictionary: dict,
            spatial: None,
            reconstruction: None,
            settings: ModelSettings {
                diffuse_floor: DEFAULT_DIFFUSE_FLOOR,
                mask_power: 2.0,
                sources,
                discriminative: None,
            },
        }
    }

    /// The templates of the masks' source models: the reconstruction templates when the
    /// model has them, else the dictionary's W (n_bins x K).
    pub fn mask_templates(&self) -> ndarray::ArrayView2<'_, f32> {
        self.reconstruction
            .as_ref()
            .map_or_else(|| self.dictionary.w.view(), |w| w.view())
    }

    /// Source names, in order.
    pub fn source_names(&self) -> Vec<String> {
        self.settings
            .sources
            .iter()
            .map(|s| s.name.clone())
            .collect()
    }

    /// Checks that the parts agree: a valid dictionary whose sources are the settings'
    /// sources, and one spatial covariance of n_bins bins per source.
    ///
    /// # Errors
    /// [`DictionaryError::Mismatch`] naming the disagreement.
    pub fn validate(&self) -> Result<(), DictionaryError> {
        self.dictionary.validate()?;
        let names = self.source_names();
        if self.dictionary.sources() != names {
            return Err(DictionaryError::Mismatch(format!(
                "the model's sources {names:?} are not its dictionary's {:?}",
                self.dictionary.sources()
            )));
        }
        if !(self.settings.diffuse_floor.is_finite() && self.settings.diffuse_floor >= 0.0) {
            return Err(DictionaryError::Mismatch(
                "the diffuse floor must be 0 or more".into(),
            ));
        }
        if let Some(wr) = &self.reconstruction {
            if wr.dim() != self.dictionary.w.dim() {
                return Err(DictionaryError::Mismatch(format!(
                    "the reconstruction templates are {:?}, the dictionary {:?}",
                    wr.dim(),
                    self.dictionary.w.dim()
                )));
            }
            if !wr.iter().all(|x| x.is_finite() && *x >= 0.0) {
                return Err(DictionaryError::Mismatch(
                    "the reconstruction templates must be finite and non-negative".into(),
                ));
            }
        }
        if let Some(sp) = &self.spatial {
            let n = self.dictionary.n_bins();
            if sp.len() != names.len() || sp.iter().any(|r| r.n_bins() != n) {
                return Err(DictionaryError::Mismatch(format!(
                    "the spatial model needs {} sources of {n} bins",
                    names.len()
                )));
            }
            if sp
                .iter()
                .flat_map(|r| r.bins.iter().flatten())
                .any(|x| !x.is_finite())
            {
                return Err(DictionaryError::Mismatch(
                    "the spatial model is not finite".into(),
                ));
            }
            // A covariance is positive semi-definite: R11, R22 >= 0 and |R12|^2 <= R11 R22
            // (a damaged one would give the Wiener filter negative powers or NaN gains).
            let psd = |&[a, d, re, im]: &[f32; 4]| {
                a >= 0.0 && d >= 0.0 && re * re + im * im <= a * d * (1.0 + COVARIANCE_SLACK)
            };
            if !sp.iter().all(|r| r.bins.iter().all(psd)) {
                return Err(DictionaryError::Mismatch(
                    "a spatial covariance is not positive semi-definite".into(),
                ));
            }
        }
        Ok(())
    }

    /// Writes the file of the module documentation, complete or not at all (a sibling
    /// `.NAME.partial` renamed into place).
    ///
    /// # Errors
    /// An invalid model, or I/O errors.
    pub fn save(&self, path: &Path) -> Result<(), DictionaryError> {
        self.validate()?;
        let io = |e: &dyn std::fmt::Display| DictionaryError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let d = &self.dictionary;
        // The dictionary's `meta`, as `Dictionary::save` writes it (a test reads a model
        // with `Dictionary::load`).
        let meta = serde_json::json!({
            "format": "nmf-separator-dictionary",
            "version": 1,
            "sample_rate": d.sample_rate,
            "n_fft": d.n_fft,
            "hop": d.hop,
            "beta": d.beta,
            "spectrogram": d.spectrogram,
            "labels": d.labels,
        });
        let model = ModelMeta {
            format: FORMAT.into(),
            version: VERSION,
            settings: self.settings.clone(),
        };
        let meta = serde_json::to_vec(&meta).map_err(|e| io(&e))?;
        let model = serde_json::to_vec(&model).map_err(|e| io(&e))?;
        let name = path
            .file_name()
            .map_or_else(|| "model.npz".into(), |n| n.to_string_lossy().into_owned());
        let partial = path.with_file_name(format!(".{name}.partial"));
        let write = || -> Result<(), DictionaryError> {
            let file = File::create(&partial).map_err(|e| io(&e))?;
            let mut npz = NpzWriter::new_compressed(file);
            npz.add_array("W", &d.w).map_err(|e| io(&e))?;
            npz.add_array("meta", &Array1::from(meta))
                .map_err(|e| io(&e))?;
            npz.add_array("model", &Array1::from(model))
                .map_err(|e| io(&e))?;
            if let Some(sp) = &self.spatial {
                let n = d.n_bins();
                let r = Array3::from_shape_fn((sp.len(), n, 4), |(j, f, i)| sp[j].bins[f][i]);
                npz.add_array("R", &r).map_err(|e| io(&e))?;
            }
            if let Some(wr) = &self.reconstruction {
                npz.add_array("Wr", wr).map_err(|e| io(&e))?;
            }
            npz.finish().map_err(|e| io(&e))?;
            std::fs::rename(&partial, path).map_err(|e| io(&e))
        };
        write().inspect_err(|_| {
            let _ = std::fs::remove_file(&partial);
        })
    }

    /// Reads a model file, or a plain dictionary file as a model without spatial part.
    ///
    /// # Errors
    /// If the file cannot be read, is neither, or its parts disagree ([`Self::validate`]).
    pub fn load(path: &Path) -> Result<Self, DictionaryError> {
        let dictionary = Dictionary::load(path)?;
        let fmt = format_error(path);
        let mut npz = open_npz(path)?;
        let names = npz.names().map_err(|e| fmt(&e))?;
        let has = |n: &str| names.iter().any(|x| x == n || *x == format!("{n}.npy"));
        if !has("model") {
            return Ok(Self::from_dictionary(dictionary));
        }
        let bytes: Array1<u8> = npz
            .by_name("model")
            .or_else(|_| npz.by_name("model.npy"))
            .map_err(|e| fmt(&e))?;
        let meta: ModelMeta = serde_json::from_slice(&bytes.to_vec()).map_err(|e| fmt(&e))?;
        if meta.format != FORMAT {
            return Err(fmt(&format!("format is {:?}", meta.format)));
        }
        if meta.version != VERSION {
            return Err(fmt(&format!(
                "model version {} is not supported (this build reads {VERSION})",
                meta.version
            )));
        }
        let spatial = if has("R") {
            let r: Array3<f32> = npz
                .by_name("R")
                .or_else(|_| npz.by_name("R.npy"))
                .map_err(|e| fmt(&e))?;
            if r.dim().2 != 4 {
                return Err(fmt(&"R must have 4 entries per bin"));
            }
            Some(
                r.outer_iter()
                    .map(|src| SpatialCovariance {
                        bins: src.outer_iter().map(|b| [b[0], b[1], b[2], b[3]]).collect(),
                    })
                    .collect(),
            )
        } else {
            None
        };
        let reconstruction = if has("Wr") {
            let wr: Array2<f32> = npz
                .by_name("Wr")
                .or_else(|_| npz.by_name("Wr.npy"))
                .map_err(|e| fmt(&e))?;
            Some(wr)
        } else {
            None
        };
        let model = Self {
            dictionary,
            spatial,
            reconstruction,
            settings: meta.settings,
        };
        model.validate().map_err(|e| fmt(&e))?;
        Ok(model)
    }
}
