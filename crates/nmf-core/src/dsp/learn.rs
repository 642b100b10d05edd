//! Learning a dictionary from a clip of one source: the shared path of `nmfsep learn`, the
//! plugin's trainer thread and the tests.

use std::ops::ControlFlow;

use super::stft::{floored_mean_spectrogram, Stft};
use crate::nmf::{fit, Dictionary, Factorization, FitOptions, NmfError, Progress, SpectrogramKind};

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
