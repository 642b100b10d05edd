//! Offline separation of multichannel audio with a dictionary.
//!
//! Channels share one set of activations by default: the NMF runs on the mean of the
//! channels' spectrograms, and every channel gets the same masks. This is what the real-time
//! engine does (one activation solve per hop whatever the channel count), it keeps a source's
//! stereo image intact (both channels of a source get the same gain per bin), and a
//! dictionary learned on a mono downmix applies unchanged. [`ChannelMode::Independent`] fits
//! each channel on its own instead, which can follow hard-panned sources better.

use ndarray::{Array2, ArrayView2};
use realfft::num_complex::Complex32;

use super::separator::{nmf_source_models, resynthesize, Separator, SupervisedNmf};
use super::stft::{floored_mean_spectrogram, Stft};
use crate::nmf::{ActivationOptions, CostPoint, Dictionary, NmfError};

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
/// `exponent` is the spectrogram kind's exponent (1 magnitude, 2 power). The NMF case of
/// [`super::separator::resynthesize`].
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
    let models = nmf_source_models(w, h, groups);
    resynthesize(stft, specs, models, exponent, mask_power, len)
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
    let stft = Stft::new(dict.n_fft, dict.hop)?;
    let len = audio.first().map_or(0, |c| c.len());
    if len == 0 {
        return Err(SeparateError::Input("the audio is empty".into()));
    }
    let specs: Vec<Array2<Complex32>> = audio.iter().map(|c| stft.forward(c)).collect();
    let e = dict.spectrogram.exponent();
    let mut separator = SupervisedNmf::new(
        dict,
        ActivationOptions {
            beta: dict.beta,
            max_iter: opts.iterations,
            tol: 0.0,
            sparsity: opts.sparsity,
            cost_every: 10,
        },
    );
    let names = separator.source_names();
    // One fit on the channels' floored mean spectrogram, masks for the channels of `specs`.
    let mut run = |specs: &[&Array2<Complex32>]| -> Result<_, SeparateError> {
        let v = floored_mean_spectrogram(specs, e);
        let models = separator.source_models(v.view())?;
        let out = resynthesize(&stft, specs, models, e, opts.mask_power, len);
        let (h, cost) = separator.take_activations();
        Ok((out, h, cost))
    };
    let (out, h, cost) = match opts.channels {
        ChannelMode::Shared => run(&specs.iter().collect::<Vec<_>>())?,
        ChannelMode::Independent => {
            let mut out = vec![Vec::with_capacity(audio.len()); names.len()];
            let mut first = None;
            for x in &specs {
                let (chans, h, cost) = run(&[x])?;
                for (o, mut c) in out.iter_mut().zip(chans) {
                    o.append(&mut c);
                }
                first.get_or_insert((h, cost));
            }
            let (h, cost) = first.expect("at least one channel");
            (out, h, cost)
        }
    };
    Ok(Separation {
        sources: names,
        audio: out,
        h,
        cost,
    })
}
