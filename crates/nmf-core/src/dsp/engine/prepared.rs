//! Dictionaries made ready for the audio thread: validation (the frame geometry rule of
//! [`FrameGeometry`]), the routing of components to source buses (the rule of
//! [`Dictionary::source_assignment`], or an explicit assignment), the solver, and the activations it warm-starts
//! from. Built off the audio thread ([`PreparedDictionary::new`] allocates); the engine only
//! reads it.

use super::live::LiveRest;
use super::spatial::SpatialFrame;
use super::MAX_SOURCES;
use ndarray::ArrayView2;

use crate::nmf::{Dictionary, FrameGeometry, FrameSolver, GeometryError};

/// Errors when preparing a dictionary for the engine.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum EngineError {
    /// The frame geometry is invalid.
    #[error("{0}")]
    Geometry(#[from] GeometryError),
    /// The assignment has another length than the dictionary has components.
    #[error("{components} components but {assigned} source assignments")]
    Assignment {
        /// Components of the dictionary (K).
        components: usize,
        /// Entries of the assignment.
        assigned: usize,
    },
    /// A component goes to a source index beyond the engine's sources.
    #[error("component {component} is assigned to source {index}, but there are only {MAX_SOURCES} sources")]
    SourceIndex {
        /// The component (0-based).
        component: usize,
        /// Its source index (0-based).
        index: usize,
    },
    /// The dictionary is at another sample rate than the session (map it first).
    #[error("dictionary learned at {dict} Hz, the session runs at {session} Hz")]
    SampleRate {
        /// The dictionary's rate, Hz.
        dict: u32,
        /// The session's rate, Hz.
        session: u32,
    },
    /// The dictionary is invalid; the message says why.
    #[error("{0}")]
    Dictionary(String),
}

/// Everything the audio thread needs from a dictionary, built off the audio thread.
pub struct PreparedDictionary {
    pub(super) solver: FrameSolver,
    /// Activations of the latest frame (K): the warm start of the next one.
    pub(super) h: Vec<f32>,
    /// Frame length and hop, validated: the engine's FFT size comes from here.
    pub(super) geometry: FrameGeometry,
    /// Spectrogram exponent (1 magnitude, 2 power).
    pub(super) exponent: f32,
    /// Which sources own at least one component.
    pub(super) used: [bool; MAX_SOURCES],
    /// The components of each source, in order.
    pub(super) groups: [Vec<usize>; MAX_SOURCES],
    /// The audio side of a source learned live, if any ([`super::live`]).
    pub(super) live: Option<LiveRest>,
    /// The spatial model of a trained separator, used on stereo streams ([`super::spatial`]).
    pub(super) spatial: Option<Box<SpatialFrame>>,
    /// The reconstruction templates of a trained separator
    /// ([`crate::trained::discriminative`]): the source models of the masks are built from
    /// them instead of the solver's templates.
    pub(super) reconstruction: Option<Box<FrameSolver>>,
}

impl PreparedDictionary {
    /// Prepares `dict` with `assignment[k]` = source index of component k. Allocates.
    ///
    /// # Errors
    /// For an invalid dictionary, an unsupported n_fft or hop, or a bad assignment.
    pub fn new(dict: &Dictionary, assignment: &[usize]) -> Result<Self, EngineError> {
        let geometry = dict.geometry()?;
        dict.validate()
            .map_err(|e| EngineError::Dictionary(e.to_string()))?;
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
            geometry,
            exponent: dict.spectrogram.exponent(),
            used,
            groups,
            live: None,
            spatial: None,
            reconstruction: None,
        })
    }

    /// Attaches a source learned live: its components must be the dictionary's last
    /// `live.n_components()` ones, after exactly `live.k_known()` others, all assigned to
    /// `live.source()`. The exemplar templates start flat. Allocates nothing more.
    ///
    /// # Errors
    /// [`EngineError::Dictionary`] if the layout does not match.
    pub fn with_live(mut self, mut live: LiveRest) -> Result<Self, EngineError> {
        let k = self.h.len();
        let (kk, kr, s) = (live.k_known(), live.n_components(), live.source());
        if kk + kr != k || s >= MAX_SOURCES || self.groups[s] != (kk..k).collect::<Vec<_>>() {
            return Err(EngineError::Dictionary(format!(
                "the live source {s} needs components {kk}..{k} of {k}, and only those"
            )));
        }
        live.reset(&mut self.solver);
        self.live = Some(live);
        Ok(self)
    }

    /// Attaches the spatial model of a trained separator: on a stereo stream every source is
    /// estimated by the multichannel Wiener filter of `spatial` instead of a mask.
    ///
    /// # Errors
    /// [`EngineError::Dictionary`] if `spatial` was made for another frame length.
    pub fn with_spatial(mut self, spatial: SpatialFrame) -> Result<Self, EngineError> {
        if spatial.out[0].len() != self.geometry.n_fft() {
            return Err(EngineError::Dictionary(format!(
                "the spatial model is for frames of {} samples, the dictionary's are {}",
                spatial.out[0].len(),
                self.geometry.n_fft()
            )));
        }
        self.spatial = Some(Box::new(spatial));
        Ok(self)
    }

    /// Attaches reconstruction templates `w` (n_bins x K, the shape of the dictionary): the
    /// masks' source models become `w h` with the activations `h` solved with the
    /// dictionary. Allocates.
    ///
    /// # Errors
    /// [`EngineError::Dictionary`] for another shape, non-finite or negative templates, or
    /// a dictionary with a source learned live (its residual is of the solver's models).
    pub fn with_reconstruction(mut self, w: ArrayView2<f32>) -> Result<Self, EngineError> {
        let (n_bins, k) = (self.solver.n_bins(), self.solver.n_components());
        if w.dim() != (n_bins, k) {
            return Err(EngineError::Dictionary(format!(
                "reconstruction templates of {:?} for a dictionary of {:?}",
                w.dim(),
                (n_bins, k)
            )));
        }
        if !w.iter().all(|x| x.is_finite() && *x >= 0.0) {
            return Err(EngineError::Dictionary(
                "reconstruction templates must be finite and non-negative".into(),
            ));
        }
        if self.live.is_some() {
            return Err(EngineError::Dictionary(
                "reconstruction templates do not go with a source learned live".into(),
            ));
        }
        self.reconstruction = Some(Box::new(FrameSolver::new(w, 1.0)));
        Ok(self)
    }

    /// Whether reconstruction templates are attached.
    pub fn has_reconstruction(&self) -> bool {
        self.reconstruction.is_some()
    }

    /// Whether a spatial model is attached.
    pub fn has_spatial(&self) -> bool {
        self.spatial.is_some()
    }

    /// The live source's audio side, if any.
    pub fn live(&self) -> Option<&LiveRest> {
        self.live.as_ref()
    }

    /// Prepares `dict`, assigning components to sources by label
    /// ([`assignment_by_labels`]).
    pub fn by_labels(dict: &Dictionary) -> Result<Self, EngineError> {
        Self::new(dict, &assignment_by_labels(dict))
    }

    /// Frame length, samples.
    pub fn n_fft(&self) -> usize {
        self.geometry.n_fft()
    }

    /// Frame length and hop.
    pub fn geometry(&self) -> FrameGeometry {
        self.geometry
    }

    /// Solver iterations run since this dictionary was prepared (frames x iterations without
    /// an early exit; fewer with [`crate::nmf::SolveRule::tol`]).
    pub fn solver_iterations(&self) -> u64 {
        self.solver.iterations_run()
    }

    /// The newest activations (K).
    pub fn activations(&self) -> &[f32] {
        &self.h
    }

    /// Back to the flat start `h = 1/K`, as after [`Self::new`].
    pub(super) fn reset(&mut self) {
        let k = self.h.len() as f32;
        self.h.iter_mut().for_each(|x| *x = 1.0 / k);
        if let Some(l) = self.live.as_mut() {
            l.reset(&mut self.solver);
        }
    }
}

/// Source index of each component from its label: the crate's routing rule
/// ([`Dictionary::source_assignment`]) over the [`MAX_SOURCES`] buses.
pub fn assignment_by_labels(dict: &Dictionary) -> Vec<usize> {
    dict.source_assignment(MAX_SOURCES)
}
