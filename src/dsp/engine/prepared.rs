//! Dictionaries made ready for the audio thread: validation against what the engine can run,
//! the routing of components to source buses, the solver, and the activations it warm-starts
//! from. Built off the audio thread ([`PreparedDictionary::new`] allocates); the engine only
//! reads it.

use super::{FFT_SIZES, MAX_SOURCES};
use crate::nmf::{Dictionary, FrameSolver};

/// Errors when preparing a dictionary for the engine.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum EngineError {
    #[error("n_fft {0} is not supported by the real-time engine (512..8192, power of two)")]
    FftSize(usize),
    #[error("hop {hop} must divide n_fft {n_fft} and be at most n_fft/2")]
    Hop { n_fft: usize, hop: usize },
    #[error("{components} components but {assigned} source assignments")]
    Assignment { components: usize, assigned: usize },
    #[error("component {component} is assigned to source {index}, but there are only {MAX_SOURCES} sources")]
    SourceIndex { component: usize, index: usize },
    #[error("dictionary learned at {dict} Hz, the session runs at {session} Hz")]
    SampleRate { dict: u32, session: u32 },
    #[error("{0}")]
    Dictionary(String),
}

/// Everything the audio thread needs from a dictionary, built off the audio thread.
pub struct PreparedDictionary {
    pub(super) solver: FrameSolver,
    /// Activations of the latest frame (K): the warm start of the next one.
    pub(super) h: Vec<f32>,
    pub(super) n_fft: usize,
    pub(super) hop: usize,
    /// Spectrogram exponent (1 magnitude, 2 power).
    pub(super) exponent: f32,
    /// Which sources own at least one component.
    pub(super) used: [bool; MAX_SOURCES],
    /// The components of each source, in order.
    pub(super) groups: [Vec<usize>; MAX_SOURCES],
}

impl PreparedDictionary {
    /// Prepares `dict` with `assignment[k]` = source index of component k. Allocates.
    ///
    /// # Errors
    /// For an invalid dictionary, an unsupported n_fft or hop, or a bad assignment.
    pub fn new(dict: &Dictionary, assignment: &[usize]) -> Result<Self, EngineError> {
        dict.validate()
            .map_err(|e| EngineError::Dictionary(e.to_string()))?;
        if !FFT_SIZES.contains(&dict.n_fft) {
            return Err(EngineError::FftSize(dict.n_fft));
        }
        if dict.hop == 0 || dict.n_fft % dict.hop != 0 || dict.hop > dict.n_fft / 2 {
            return Err(EngineError::Hop {
                n_fft: dict.n_fft,
                hop: dict.hop,
            });
        }
        if assignment.len() != dict.n_components() {
            return Err(EngineError::Assignment {
                components: dict.n_components(),
                assigned: assignment.len(),
            });
        }
        let mut used = [false; MAX_SOURCES];
        for (component, &source) in assignment.iter().enumerate() {
            if source >= MAX_SOURCES {
                return Err(EngineError::SourceIndex {
                    component,
                    index: source,
                });
            }
            used[source] = true;
        }
        let k = dict.n_components();
        let groups = std::array::from_fn(|s| {
            (0..k)
                .filter(|&c| assignment[c] == s)
                .collect::<Vec<usize>>()
        });
        Ok(Self {
            solver: FrameSolver::new(dict.w.view(), dict.beta),
            h: vec![1.0 / k as f32; k],
            n_fft: dict.n_fft,
            hop: dict.hop,
            exponent: dict.spectrogram.exponent(),
            used,
            groups,
        })
    }

    /// Prepares `dict`, assigning components to sources by label in order of first appearance
    /// (labels beyond the fourth share source 4).
    pub fn by_labels(dict: &Dictionary) -> Result<Self, EngineError> {
        Self::new(dict, &assignment_by_labels(dict))
    }

    /// Frame length, samples.
    pub fn n_fft(&self) -> usize {
        self.n_fft
    }

    /// The newest activations (K).
    pub fn activations(&self) -> &[f32] {
        &self.h
    }

    /// Back to the flat start `h = 1/K`, as after [`Self::new`].
    pub(super) fn reset(&mut self) {
        let k = self.h.len() as f32;
        self.h.iter_mut().for_each(|x| *x = 1.0 / k);
    }
}

/// Source index of each component from its label (first label = source 0, ...).
pub fn assignment_by_labels(dict: &Dictionary) -> Vec<usize> {
    let names = dict.sources();
    dict.labels
        .iter()
        .map(|l| {
            names
                .iter()
                .position(|n| n == l)
                .unwrap_or(0)
                .min(MAX_SOURCES - 1)
        })
        .collect()
}
