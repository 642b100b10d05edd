//! The `.npz` file format of a dictionary (see the module documentation of [`super`]).

use std::fs::File;
use std::path::Path;

use ndarray::{Array1, Array2};
use ndarray_npy::{NpzReader, NpzWriter};
use serde::{Deserialize, Serialize};

use super::{Dictionary, DictionaryError, SpectrogramKind};

const FORMAT: &str = "nmf-separator-dictionary";
const VERSION: u32 = 1;

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

/// The error for a file at `path` that is not what it should be (a damaged or foreign
/// archive, a missing or misshapen array), naming the file.
pub(crate) fn format_error(path: &Path) -> impl Fn(&dyn std::fmt::Display) -> DictionaryError {
    let p = path.display().to_string();
    move |m| DictionaryError::Format {
        path: p.clone(),
        message: m.to_string(),
    }
}

/// Opens the `.npz` archive at `path`; errors name the file.
pub(crate) fn open_npz(path: &Path) -> Result<NpzReader<File>, DictionaryError> {
    let file = File::open(path).map_err(|e| DictionaryError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    NpzReader::new(file).map_err(|e| format_error(path)(&e))
}

impl Dictionary {
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
        let fmt = format_error(path);
        let mut npz = open_npz(path)?;
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
        let fmt = format_error(path);
        let mut npz = open_npz(path)?;
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
