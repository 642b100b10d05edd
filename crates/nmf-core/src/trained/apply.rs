//! Offline separation with a trained separator: the activations fitted on the mean of the
//! channels' spectrograms (as [`crate::dsp::separate()`]), then, for a stereo input and a
//! model with a spatial part, the multichannel Wiener filter ([`super::spatial`]); otherwise
//! the Wiener masks of the plain separation. The source models of both are built from the
//! model's mask templates ([`SeparatorModel::mask_templates`]).

use ndarray::Array2;
use realfft::num_complex::Complex32;

use super::model::SeparatorModel;
use super::spatial::{mean_magnitude_gain, wiener_bin, Hermitian2};
use crate::dsp::separate::{groups_by_label, mask_sources, SeparateError, Separation};
use crate::dsp::stft::{floored_mean_spectrogram, Stft};
use crate::nmf::{fit_activations, ActivationOptions};

/// Settings of [`separate_with_model`].
#[derive(Clone, Debug)]
pub struct ModelSeparateOptions {
    /// Multiplicative-update iterations of the activation fit.
    pub iterations: usize,
    /// Use the spatial model when the input is stereo and the model has one.
    pub spatial: bool,
}

impl Default for ModelSeparateOptions {
    fn default() -> Self {
        Self {
            iterations: 200,
            spatial: true,
        }
    }
}

/// Separates `audio` (`audio[channel][sample]`, equal lengths, at `sample_rate` Hz) with
/// `model`. The outputs add up to the input (masks sum to one; the spatial filters of a bin
/// sum to the identity).
///
/// # Errors
/// An empty input, an invalid model, or one trained at another sample rate.
pub fn separate_with_model(
    audio: &[Vec<f32>],
    sample_rate: u32,
    model: &SeparatorModel,
    opts: &ModelSeparateOptions,
) -> Result<Separation, SeparateError> {
    model.validate()?;
    let dict = &model.dictionary;
    dict.check_matches(sample_rate, dict.n_fft)?;
    let (names, groups) = groups_by_label(dict);
    let stft = Stft::new(dict.n_fft, dict.hop)?;
    let len = audio.first().map_or(0, Vec::len);
    if len == 0 {
        return Err(SeparateError::Input("the audio is empty".into()));
    }
    let specs: Vec<Array2<Complex32>> = audio.iter().map(|c| stft.forward(c)).collect();
    let refs: Vec<&Array2<Complex32>> = specs.iter().collect();
    let e = dict.spectrogram.exponent();
    let act = ActivationOptions {
        beta: dict.beta,
        max_iter: opts.iterations,
        tol: 0.0,
        sparsity: 0.0,
        cost_every: 10,
    };
    let (h, cost) = fit_activations(
        floored_mean_spectrogram(&refs, e).view(),
        dict.w.view(),
        &act,
    )?;
    let spatial = match (&model.spatial, specs.as_slice()) {
        (Some(sp), [l, r]) if opts.spatial => Some((sp, l, r)),
        _ => None,
    };
    let out = match spatial {
        None => mask_sources(
            &stft,
            &refs,
            model.mask_templates(),
            h.view(),
            &groups,
            e,
            model.settings.mask_power,
            len,
        ),
        Some((sp, l, r)) => {
            // Covariances in the order of the groups (the dictionary's sources).
            let order = model.source_names();
            let covs: Vec<&super::spatial::SpatialCovariance> = names
                .iter()
                .map(|n| &sp[order.iter().position(|o| o == n).expect("validated")])
                .collect();
            let floor = model.settings.diffuse_floor;
            let (n_bins, n_frames) = l.dim();
            let j = groups.len();
            let mut est: Vec<[Array2<Complex32>; 2]> = (0..j)
                .map(|_| {
                    [
                        Array2::zeros((n_bins, n_frames)),
                        Array2::zeros((n_bins, n_frames)),
                    ]
                })
                .collect();
            let mut v = vec![0.0f32; j];
            let mut rs = vec![Hermitian2::default(); j];
            let mut gains = vec![0.0f32; j];
            let mut y = vec![(Complex32::default(), Complex32::default()); j];
            let w = model.mask_templates();
            for f in 0..n_bins {
                for s in 0..j {
                    rs[s] = covs[s].floored(f, floor);
                    gains[s] = mean_magnitude_gain(&rs[s]).max(f32::MIN_POSITIVE);
                }
                for t in 0..n_frames {
                    for (s, g) in groups.iter().enumerate() {
                        let m: f32 = g.iter().map(|&k| w[[f, k]] * h[[k, t]]).sum();
                        v[s] = source_power(m, e, gains[s], &rs[s]);
                    }
                    wiener_bin(l[[f, t]], r[[f, t]], &v, &rs, &mut y);
                    for (s, ys) in y.iter().enumerate() {
                        est[s][0][[f, t]] = ys.0;
                        est[s][1][[f, t]] = ys.1;
                    }
                }
            }
            est.iter()
                .map(|[a, b]| vec![stft.inverse(a, len), stft.inverse(b, len)])
                .collect()
        }
    };
    Ok(Separation {
        sources: names,
        audio: out,
        h,
        cost,
    })
}

/// The power `v` of a source whose model in the fitted spectrogram (exponent `e`: 1 the mean
/// of the channels' magnitudes, 2 of their powers) is `m`, with covariance `r` and
/// [`mean_magnitude_gain`] `gain`: `(m / gain)^2` for magnitudes, `m / mean(R11, R22)` for
/// powers.
#[inline(always)]
pub fn source_power(m: f32, e: f32, gain: f32, r: &Hermitian2) -> f32 {
    if e == 2.0 {
        m / (0.5 * r.trace()).max(f32::MIN_POSITIVE)
    } else {
        let a = m / gain;
        a * a
    }
}
