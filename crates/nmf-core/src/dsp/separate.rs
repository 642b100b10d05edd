//! Offline separation of multichannel audio with a dictionary.
//!
//! Channels share one set of activations by default: the NMF runs on the mean of the
//! channels' spectrograms, and every channel gets the same masks. This is what the real-time
//! engine does (one activation solve per hop whatever the channel count), it keeps a source's
//! stereo image intact (both channels of a source get the same gain per bin), and a
//! dictionary learned on a mono downmix applies unchanged. [`ChannelMode::Independent`] fits
//! each channel on its own instead, which can follow hard-panned sources better.

use ndarray::{Array2, ArrayView2, Axis};
use realfft::num_complex::Complex32;

use super::mask::wiener_masks_in_place;
use super::stft::{floored_mean_spectrogram, Stft};
use crate::nmf::{fit_activations, ActivationOptions, CostPoint, Dictionary, NmfError};

/// How channels share activations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ChannelMode {
    /// One H for all channels, from the mean spectrogram (the real-time engine's choice).
    #[default]
    Shared,
    /// One H per channel.
    Independent,
}

/// Settings of [`separate`].
#[derive(Clone, Debug)]
pub struct SeparateOptions {
    /// MU iterations of the activation fit.
    pub iterations: usize,
    /// Exponent p of the masks `Y_s^p / sum_j Y_j^p`, with Y_s the source's *magnitude* model
    /// (a power-spectrogram model is converted, so p means the same for both kinds).
    pub mask_power: f32,
    /// L1 penalty on H.
    pub sparsity: f32,
    /// Channel handling.
    pub channels: ChannelMode,
}

impl Default for SeparateOptions {
    fn default() -> Self {
        Self {
            iterations: 200,
            mask_power: 2.0,
            sparsity: 0.0,
            channels: ChannelMode::Shared,
        }
    }
}

/// The result of a separation.
#[derive(Clone, Debug)]
pub struct Separation {
    /// Source names, in the order of `audio`.
    pub sources: Vec<String>,
    /// `audio[source][channel][sample]`, same length as the input.
    pub audio: Vec<Vec<Vec<f32>>>,
    /// Activations of the first channel group (K x n_frames).
    pub h: Array2<f32>,
    /// Cost history of the activation fit.
    pub cost: Vec<CostPoint>,
}

/// Errors of separation.
#[derive(Debug, thiserror::Error)]
pub enum SeparateError {
    /// The input audio or settings are invalid; the message says why.
    #[error("{0}")]
    Input(String),
    /// The NMF fit failed.
    #[error(transparent)]
    Nmf(#[from] NmfError),
    /// The dictionaries cannot be used.
    #[error(transparent)]
    Dictionary(#[from] crate::nmf::DictionaryError),
    /// The STFT settings are invalid.
    #[error(transparent)]
    Stft(#[from] super::stft::StftError),
}

/// Groups the components into sources by the crate's routing rule,
/// [`Dictionary::source_assignment`], with as many sources as distinct labels; returns the
/// name of every non-empty source (the label of its first component) and its components.
/// Without "Source N" and "Mix" labels (the CLI labels every component with its `--source`
/// name) this is one source per label, in the order of [`Dictionary::sources`].
pub fn groups_by_label(dict: &Dictionary) -> (Vec<String>, Vec<Vec<usize>>) {
    let n = dict.sources().len().max(1);
    let mut groups = vec![Vec::new(); n];
    for (c, &s) in dict.source_assignment(n).iter().enumerate() {
        groups[s].push(c);
    }
    groups.retain(|g| !g.is_empty());
    let names = groups.iter().map(|g| dict.labels[g[0]].clone()).collect();
    (names, groups)
}

/// Masks the channels' STFTs with the source models of `w` (n_bins x K), `h` (K x n_frames)
/// grouped by `groups`, and returns `audio[source][channel]` of `len` samples each.
/// `exponent` is the spectrogram kind's exponent (1 magnitude, 2 power).
#[allow(clippy::too_many_arguments)] // the masking stage's inputs, each documented above
pub fn mask_sources(
    stft: &Stft,
    specs: &[&Array2<Complex32>],
    w: ArrayView2<f32>,
    h: ArrayView2<f32>,
    groups: &[Vec<usize>],
    exponent: f32,
    mask_power: f32,
    len: usize,
) -> Vec<Vec<Vec<f32>>> {
    let (n_bins, n_frames) = (w.nrows(), h.ncols());
    let mut models: Vec<Array2<f32>> = groups
        .iter()
        .map(|g| {
            let mut m = Array2::<f32>::zeros((n_bins, n_frames));
            for &k in g {
                let wk = w.column(k);
                let hk = h.row(k);
                ndarray::Zip::from(&mut m)
                    .and_broadcast(&wk.insert_axis(Axis(1)))
                    .and_broadcast(&hk.insert_axis(Axis(0)))
                    .for_each(|m, &a, &b| *m += a * b);
            }
            m
        })
        .collect();
    // Masks bin by bin; the mask exponent applies to magnitude models.
    let p = mask_power / exponent;
    let mut column: Vec<Vec<f32>> = vec![vec![0.0; n_bins]; groups.len()];
    for t in 0..n_frames {
        for (c, m) in column.iter_mut().zip(&models) {
            c.iter_mut().zip(m.column(t)).for_each(|(d, s)| *d = *s);
        }
        let mut refs: Vec<&mut [f32]> = column.iter_mut().map(|c| c.as_mut_slice()).collect();
        wiener_masks_in_place(&mut refs, p);
        for (c, m) in column.iter().zip(models.iter_mut()) {
            m.column_mut(t).iter_mut().zip(c).for_each(|(d, s)| *d = *s);
        }
    }
    models
        .iter()
        .map(|mask| {
            specs
                .iter()
                .map(|x| stft.inverse(&(*x * &mask.mapv(|m| Complex32::new(m, 0.0))), len))
                .collect()
        })
        .collect()
}

/// Separates `audio` (`audio[channel][sample]`, equal lengths) at `sample_rate` Hz into the
/// sources of `dict` (components grouped by label).
///
/// # Errors
/// If the audio is empty or silent, or the dictionary does not match the sample rate.
pub fn separate(
    audio: &[Vec<f32>],
    sample_rate: u32,
    dict: &Dictionary,
    opts: &SeparateOptions,
) -> Result<Separation, SeparateError> {
    dict.validate()?;
    dict.check_matches(sample_rate, dict.n_fft)?;
    let (names, groups) = groups_by_label(dict);
    let stft = Stft::new(dict.n_fft, dict.hop)?;
    let len = audio.first().map_or(0, |c| c.len());
    if len == 0 {
        return Err(SeparateError::Input("the audio is empty".into()));
    }
    let specs: Vec<Array2<Complex32>> = audio.iter().map(|c| stft.forward(c)).collect();
    let e = dict.spectrogram.exponent();
    let act = ActivationOptions {
        beta: dict.beta,
        max_iter: opts.iterations,
        tol: 0.0,
        sparsity: opts.sparsity,
        cost_every: 10,
    };
    let solve =
        |specs: &[&Array2<Complex32>]| -> Result<(Array2<f32>, Vec<CostPoint>), SeparateError> {
            Ok(fit_activations(
                floored_mean_spectrogram(specs, e).view(),
                dict.w.view(),
                &act,
            )?)
        };
    let mut out = vec![Vec::with_capacity(audio.len()); names.len()];
    let (h, cost) = match opts.channels {
        ChannelMode::Shared => {
            let refs: Vec<&Array2<Complex32>> = specs.iter().collect();
            let (h, cost) = solve(&refs)?;
            for (s, chans) in mask_sources(
                &stft,
                &refs,
                dict.w.view(),
                h.view(),
                &groups,
                e,
                opts.mask_power,
                len,
            )
            .into_iter()
            .enumerate()
            {
                out[s] = chans;
            }
            (h, cost)
        }
        ChannelMode::Independent => {
            let mut first = None;
            for x in &specs {
                let (h, cost) = solve(&[x])?;
                for (s, mut chans) in mask_sources(
                    &stft,
                    &[x],
                    dict.w.view(),
                    h.view(),
                    &groups,
                    e,
                    opts.mask_power,
                    len,
                )
                .into_iter()
                .enumerate()
                {
                    out[s].append(&mut chans);
                }
                first.get_or_insert((h, cost));
            }
            first.expect("at least one channel")
        }
    };
    Ok(Separation {
        sources: names,
        audio: out,
        h,
        cost,
    })
}
