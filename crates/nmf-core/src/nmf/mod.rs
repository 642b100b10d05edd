//! Non-negative matrix factorization: pure numerics, no audio or plugin types.
//!
//! Conventions (the audio ones, not scikit-learn's): a spectrogram V is n_bins x n_frames,
//! the templates (dictionary) W are n_bins x K, the activations H are K x n_frames, and
//! V ~ W H.

pub mod beta;
pub mod dictionary;
pub mod fit;
pub mod init;
pub mod kernels;
pub mod online;
pub mod semi;
pub mod solve;

pub use beta::{divergence, divergence_naive, gamma, EPS};
pub use dictionary::{
    Dictionary, DictionaryError, FrameGeometry, GeometryError, SpectrogramKind, FFT_SIZES,
};
pub use fit::{
    fit, fit_activations, thread_pool, ActivationOptions, CostPoint, Factorization, FitOptions,
    Progress,
};
pub use init::Init;
pub use online::{OnlineLearner, OnlineOptions};
pub use semi::{fit_semi, SemiFactorization, SemiOptions};
pub use solve::{FrameSolver, SolveRule, Start, Step};

/// Errors of the NMF routines.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum NmfError {
    /// The input cannot be factorized; the message says why.
    #[error("{0}")]
    InvalidInput(String),
    /// The observer asked the fit to stop.
    #[error("cancelled")]
    Cancelled,
}
