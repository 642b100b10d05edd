//! Learning a dictionary from a clip of one source, alone or given the templates of the
//! sources already known: the shared path of `nmfsep learn`, the plugin's trainer thread and
//! the tests.

use std::ops::ControlFlow;

use super::stft::{floored_mean_spectrogram, Stft};
use ndarray::ArrayView1;

use crate::nmf::{
    fit, fit_semi, Dictionary, Factorization, FitOptions, NmfError, Progress, SemiFactorization,
    SemiOptions, SpectrogramKind,
};

/// Learns `opts.n_components` templates from `clip` (mono samples at `sample_rate` Hz): the
/// STFT of `stft`, the spectrogram of `kind` with its floor
/// ([`super::stft::floored_mean_spectrogram`]), then [`fit`]. Every component is labelled
/// `label`. Returns the dictionary and the factorization (for plots: H and the cost curve).
///
/// # Errors
/// As [`fit`]: an empty or silent clip, K = 0, or a cancel from `observer`.
pub fn learn_dictionary(
    clip: &[f32],
    sample_rate: u32,
    stft: &Stft,
    kind: SpectrogramKind,
    opts: &FitOptions,
    label: &str,
    observer: &mut dyn FnMut(Progress) -> ControlFlow<()>,
) -> Result<(Dictionary, Factorization), NmfError> {
    if clip.is_empty() {
        return Err(NmfError::InvalidInput("the clip is empty".into()));
    }
    if !clip.iter().any(|x| x.is_finite() && *x != 0.0) {
        return Err(NmfError::InvalidInput("the clip is silent".into()));
    }
    let v = floored_mean_spectrogram(&[&stft.forward(clip)], kind.exponent());
    let fact = fit(v.view(), opts, observer)?;
    let dict = Dictionary {
        w: fact.w.clone(),
        sample_rate,
        n_fft: stft.n_fft(),
        hop: stft.hop(),
        beta: opts.beta,
        spectrogram: kind,
        labels: vec![label.to_string(); opts.n_components],
    };
    Ok((dict, fact))
}

/// Learns `opts.n_free` templates from `clip` (mono samples at `known.sample_rate` Hz) for
/// what the `known` templates do not explain: the STFT and spectrogram of `known`'s geometry
/// and kind, then [`fit_semi`] with `known.w` held fixed (`known_spectrum`, n_bins, the known
/// sources' mean spectrum `W @ H_mean` when it is known). Every new component is labelled
/// `label`; the dictionary has unit-L2 templates and returns beside it their mean
/// activations (K entries, the scale moved out of W) and the factorization. The one path of
/// `nmfsep learn --given` and the plugin's "Capture given the others".
///
/// # Errors
/// A clip shorter than one frame, or as [`fit_semi`] (a silent clip, a cancel).
pub fn learn_given(
    clip: &[f32],
    known: &Dictionary,
    known_spectrum: Option<ArrayView1<f32>>,
    opts: &SemiOptions,
    label: &str,
    observer: &mut dyn FnMut(Progress) -> ControlFlow<()>,
) -> Result<(Dictionary, Vec<f32>, SemiFactorization), NmfError> {
    if clip.len() < known.n_fft {
        return Err(NmfError::InvalidInput(format!(
            "the clip is too short ({} samples, at least n_fft = {} needed)",
            clip.len(),
            known.n_fft
        )));
    }
    let stft =
        Stft::new(known.n_fft, known.hop).map_err(|e| NmfError::InvalidInput(e.to_string()))?;
    let v = floored_mean_spectrogram(&[&stft.forward(clip)], known.spectrogram.exponent());
    let fact = fit_semi(v.view(), known.w.view(), known_spectrum, opts, observer)?;
    let (w, h_mean) = fact.free_templates();
    let dict = Dictionary {
        w,
        labels: vec![label.to_string(); opts.n_free],
        ..known.clone()
    };
    Ok((dict, h_mean, fact))
}
