//! A trained separator made ready for the real-time engine: its dictionary routed to the
//! source buses by label, its reconstruction templates if any, and, for a stereo stream, its
//! spatial model
//! ([`crate::dsp::engine::SpatialFrame`]). Runs off the audio thread (allocates).

use super::SeparatorModel;
use crate::dsp::engine::{
    assignment_by_labels, EngineError, PreparedDictionary, SpatialFrame, MAX_SOURCES,
};

/// Prepares `model` for an engine of `channels` channels: the dictionary with the routing
/// of [`assignment_by_labels`], and the spatial model when the stream is stereo and the
/// model has one.
///
/// # Errors
/// As [`PreparedDictionary::new`], or an invalid model.
pub fn prepare(model: &SeparatorModel, channels: usize) -> Result<PreparedDictionary, EngineError> {
    model
        .validate()
        .map_err(|e| EngineError::Dictionary(e.to_string()))?;
    let dict = &model.dictionary;
    let assignment = assignment_by_labels(dict);
    let mut prepared = PreparedDictionary::new(dict, &assignment)?;
    if let Some(w) = &model.reconstruction {
        prepared = prepared.with_reconstruction(w.view())?;
    }
    let Some(sp) = model.spatial.as_ref().filter(|_| channels == 2) else {
        return Ok(prepared);
    };
    let mut covs = [None; MAX_SOURCES];
    for (name, cov) in model.source_names().iter().zip(sp) {
        if let Some(k) = dict.labels.iter().position(|l| l == name) {
            covs[assignment[k]] = Some(cov);
        }
    }
    let frame = SpatialFrame::new(covs, model.settings.diffuse_floor, dict.n_fft);
    prepared.with_spatial(frame)
}
