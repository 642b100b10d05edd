//! PyTorch checkpoints (`.pth`) read into ndarray: both the zip container of PyTorch >= 1.6
//! and the legacy pickle stream of earlier versions (the 2019 umxhq weights), through the
//! `pytorch-reader` crate. Only what a state dict of f32/f64 tensors needs.

use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2, ArrayD, IxDyn};
use pytorch_reader::{DType, PytorchReader};

/// A failure to read a checkpoint or one of its tensors; every message names the file, and
/// the tensor where there is one.
#[derive(Debug, thiserror::Error)]
pub enum PthError {
    /// The file cannot be opened or is not a readable PyTorch checkpoint (damaged, cut
    /// short, another format).
    #[error("{path}: not a readable PyTorch checkpoint: {message}")]
    Open { path: String, message: String },
    /// A tensor the model needs is not in the checkpoint.
    #[error("{path}: tensor {name:?} is missing")]
    Missing { path: String, name: String },
    /// A tensor has another shape than the model's settings ask for.
    #[error("{path}: tensor {name:?} has shape {found:?}, the model's settings need {expected:?}")]
    Shape {
        path: String,
        name: String,
        found: Vec<usize>,
        expected: Vec<usize>,
    },
    /// A tensor's bytes cannot be read (a damaged storage) or have an element type other
    /// than f32/f64.
    #[error("{path}: tensor {name:?}: {message}")]
    Read {
        path: String,
        name: String,
        message: String,
    },
}

/// An open checkpoint: tensor metadata parsed, bytes read on demand.
pub struct Checkpoint {
    path: PathBuf,
    reader: PytorchReader,
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint")
            .field("path", &self.path)
            .field("tensors", &self.reader.len())
            .finish()
    }
}

impl Checkpoint {
    /// Opens the checkpoint at `path` (format detected from the content).
    ///
    /// # Errors
    /// [`PthError::Open`] if the file cannot be read or parsed.
    pub fn open(path: &Path) -> Result<Self, PthError> {
        // The reader validates every length a file declares; a panic inside it on a hostile
        // file is still caught here and reported as a damaged file.
        let opened = std::panic::catch_unwind(|| PytorchReader::new(path));
        let reader = match opened {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                return Err(PthError::Open {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })
            }
            Err(_) => {
                return Err(PthError::Open {
                    path: path.display().to_string(),
                    message: "the file is damaged (the reader stopped on it)".into(),
                })
            }
        };
        Ok(Self {
            path: path.to_path_buf(),
            reader,
        })
    }

    /// The file this checkpoint was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The shape of tensor `name`.
    ///
    /// # Errors
    /// [`PthError::Missing`] if there is no such tensor.
    pub fn shape(&self, name: &str) -> Result<Vec<usize>, PthError> {
        self.reader
            .get(name)
            .map(|t| t.shape().to_vec())
            .ok_or_else(|| PthError::Missing {
                path: self.path.display().to_string(),
                name: name.into(),
            })
    }

    /// Tensor `name` as f32, checked to have shape `expected`.
    ///
    /// # Errors
    /// [`PthError::Missing`], [`PthError::Shape`], or [`PthError::Read`] for a damaged
    /// storage or an element type other than f32/f64.
    pub fn tensor(&self, name: &str, expected: &[usize]) -> Result<ArrayD<f32>, PthError> {
        let p = || self.path.display().to_string();
        let t = self.reader.get(name).ok_or_else(|| PthError::Missing {
            path: p(),
            name: name.into(),
        })?;
        if t.shape() != expected {
            return Err(PthError::Shape {
                path: p(),
                name: name.into(),
                found: t.shape().to_vec(),
                expected: expected.to_vec(),
            });
        }
        let read_err = |message: String| PthError::Read {
            path: p(),
            name: name.into(),
            message,
        };
        let bytes = t.read().map_err(|e| read_err(e.to_string()))?;
        let values: Vec<f32> = match t.dtype() {
            DType::F32 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            DType::F64 => bytes
                .chunks_exact(8)
                .map(|b| {
                    let a: [u8; 8] = b.try_into().expect("chunk of 8");
                    f64::from_le_bytes(a) as f32
                })
                .collect(),
            other => {
                return Err(read_err(format!(
                    "element type {other:?} is not supported (f32 or f64 expected)"
                )))
            }
        };
        if values.len() != expected.iter().product::<usize>() {
            return Err(read_err(format!(
                "holds {} values, its shape {expected:?} needs {}",
                values.len(),
                expected.iter().product::<usize>()
            )));
        }
        ArrayD::from_shape_vec(IxDyn(expected), values).map_err(|e| read_err(e.to_string()))
    }

    /// Tensor `name` of shape `[n]`.
    ///
    /// # Errors
    /// As [`Checkpoint::tensor`].
    pub fn vector(&self, name: &str, n: usize) -> Result<Array1<f32>, PthError> {
        Ok(self
            .tensor(name, &[n])?
            .into_dimensionality()
            .expect("checked shape"))
    }

    /// Tensor `name` of shape `[rows, cols]`.
    ///
    /// # Errors
    /// As [`Checkpoint::tensor`].
    pub fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<Array2<f32>, PthError> {
        Ok(self
            .tensor(name, &[rows, cols])?
            .into_dimensionality()
            .expect("checked shape"))
    }
}
