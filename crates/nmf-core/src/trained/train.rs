//! Training a separator from one clip per source: dictionaries from pitch-augmented clips of
//! the tonal sources ([`super::augment`]) and, for stereo clips, spatial covariances
//! ([`super::spatial`]).

use std::ops::ControlFlow;

use ndarray::{concatenate, Array2, Axis};
use realfft::num_complex::Complex32;

use super::augment::{shifted_copies, TONAL_THRESHOLD};
use super::model::{ModelSettings, SeparatorModel, SourceInfo};
use super::pitch::{pitch_share, ONE_PITCH_SHARE};
use super::spatial::{SpatialCovariance, DEFAULT_DIFFUSE_FLOOR};
use crate::dsp::learn_dictionary;
use crate::dsp::stft::{floored_mean_spectrogram, Stft};
use crate::nmf::{fit, semi, Dictionary, FitOptions, NmfError, Progress, SpectrogramKind};

/// One source's clip.
#[derive(Clone, Debug)]
pub struct TrainSource {
    /// Source name: the label of its components and the name of its output.
    pub name: String,
    /// `channels[c][sample]`, equal lengths; one or two channels.
    pub channels: Vec<Vec<f32>>,
    /// Whether the source is tonal (its clip is pitch-shifted); `None` measures it
    /// ([`TONAL_THRESHOLD`]).
    pub tonal: Option<bool>,
}

/// Settings of [`train`].
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// Dictionary learning of every source (K per source, beta, iterations, tolerance, seed).
    pub fit: FitOptions,
    /// Spectrogram kind.
    pub kind: SpectrogramKind,
    /// Pitch shifts (semitones) of the tonal sources' augmented copies; empty: none.
    pub shifts: Vec<f32>,
    /// Templates of an augmented source (its clip and copies hold several times the frames
    /// of the clip alone); `None`: twice `fit.n_components`, the better setting on the
    /// bench's held-back clips and on set A (docs: BENCHMARKS.md, "Trained separators").
    pub augmented_components: Option<usize>,
    /// Estimate the spatial model when a clip is stereo.
    pub spatial: bool,
    /// Diffuse floor of the spatial model.
    pub diffuse_floor: f32,
    /// Mask exponent where the spatial model is not used.
    pub mask_power: f32,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            fit: FitOptions::default(),
            kind: SpectrogramKind::Magnitude,
            shifts: super::augment::DEFAULT_SHIFTS.to_vec(),
            augmented_components: None,
            spatial: true,
            diffuse_floor: DEFAULT_DIFFUSE_FLOOR,
            mask_power: 2.0,
        }
    }
}

/// Progress of [`train`]: the source being learned and its fit's progress.
#[derive(Clone, Copy, Debug)]
pub struct TrainProgress {
    /// Index of the source being learned.
    pub source: usize,
    /// Number of sources.
    pub n_sources: usize,
    /// Its fit's progress.
    pub fit: Progress,
}

/// Trains a separator from `sources` (two or more; clips at `sample_rate` Hz) with frames of
/// `stft`. Per source: the mono downmix of its clip; a dictionary learned from it alone
/// (whose tonality decides, when the source does not say, whether it is tonal); for a tonal
/// source with `opts.shifts`, the dictionary is learned again from the clip and its shifted
/// copies together (their spectrograms side by side). With `opts.spatial`, when any clip is
/// stereo, every source gets spatial covariances: from its clip if stereo, diffuse (`I / 2`)
/// if mono.
///
/// # Errors
/// [`NmfError::InvalidInput`] for fewer than two sources, an empty, silent or ragged clip,
/// more than two channels, or a bad setting; [`NmfError::Cancelled`] if `observer` breaks.
pub fn train(
    sources: &[TrainSource],
    sample_rate: u32,
    stft: &Stft,
    opts: &TrainOptions,
    observer: &mut dyn FnMut(TrainProgress) -> ControlFlow<()>,
) -> Result<SeparatorModel, NmfError> {
    let bad = |m: String| Err(NmfError::InvalidInput(m));
    if sources.len() < 2 {
        return bad(format!(
            "a separator needs two or more sources, {} given",
            sources.len()
        ));
    }
    if !(opts.diffuse_floor.is_finite() && opts.diffuse_floor >= 0.0) {
        return bad("the diffuse floor must be 0 or more".into());
    }
    if opts.shifts.iter().any(|s| !s.is_finite() || s.abs() > 12.0) {
        return bad("pitch shifts must be within +-12 semitones".into());
    }
    for s in sources {
        let n = s.channels.first().map_or(0, Vec::len);
        if s.channels.is_empty() || s.channels.len() > 2 {
            return bad(format!(
                "{}: a clip has one or two channels, not {}",
                s.name,
                s.channels.len()
            ));
        }
        if s.channels.iter().any(|c| c.len() != n) {
            return bad(format!("{}: the channels differ in length", s.name));
        }
    }
    let n_sources = sources.len();
    let mut dicts = Vec::with_capacity(n_sources);
    let mut infos = Vec::with_capacity(n_sources);
    for (i, s) in sources.iter().enumerate() {
        let mut obs = |p: Progress| {
            observer(TrainProgress {
                source: i,
                n_sources,
                fit: p,
            })
        };
        let mono = mono(&s.channels);
        let (plain, _) = learn_dictionary(
            &mono,
            sample_rate,
            stft,
            opts.kind,
            &opts.fit,
            &s.name,
            &mut obs,
        )
        .map_err(|e| name_error(&s.name, e))?;
        let tonality = match s.tonal {
            Some(_) => None,
            None => Some(semi::tonality(plain.w.view())),
        };
        // Measured tonal sources are shifted unless their clip holds one pitch.
        let measured_tonal = s.tonal.is_none() && tonality.is_some_and(|t| t >= TONAL_THRESHOLD);
        let pitch_share = if measured_tonal {
            pitch_share(&mono, sample_rate)
        } else {
            None
        };
        let one_pitch = pitch_share.is_some_and(|p| p >= ONE_PITCH_SHARE);
        let tonal = s.tonal.unwrap_or(measured_tonal && !one_pitch);
        let shifts: Vec<f32> = if tonal {
            opts.shifts.iter().copied().filter(|&x| x != 0.0).collect()
        } else {
            Vec::new()
        };
        let dict = if shifts.is_empty() {
            plain
        } else {
            let specs: Vec<Array2<Complex32>> = shifted_copies(&mono, &shifts)
                .iter()
                .map(|c| stft.forward(c))
                .collect();
            let views: Vec<_> = specs.iter().map(|x| x.view()).collect();
            let all = concatenate(Axis(1), &views).expect("same number of bins");
            let v = floored_mean_spectrogram(&[&all], opts.kind.exponent());
            let fit_opts = FitOptions {
                n_components: opts
                    .augmented_components
                    .unwrap_or(2 * opts.fit.n_components),
                ..opts.fit.clone()
            };
            let fact = fit(v.view(), &fit_opts, &mut obs).map_err(|e| name_error(&s.name, e))?;
            Dictionary {
                labels: vec![s.name.clone(); fit_opts.n_components],
                w: fact.w,
                ..plain
            }
        };
        dicts.push(dict);
        infos.push(SourceInfo {
            name: s.name.clone(),
            tonality,
            shifts,
            pitch_share,
            clip_s: mono.len() as f32 / sample_rate as f32,
            channels: s.channels.len(),
        });
    }
    let spatial = (opts.spatial && sources.iter().any(|s| s.channels.len() == 2)).then(|| {
        sources
            .iter()
            .map(|s| match s.channels.as_slice() {
                [l, r] => SpatialCovariance::estimate(&stft.forward(l), &stft.forward(r)),
                _ => SpatialCovariance {
                    bins: vec![[0.5, 0.5, 0.0, 0.0]; stft.n_bins()],
                },
            })
            .collect()
    });
    let dictionary =
        Dictionary::concat(&dicts).map_err(|e| NmfError::InvalidInput(e.to_string()))?;
    Ok(SeparatorModel {
        dictionary,
        spatial,
        settings: ModelSettings {
            diffuse_floor: opts.diffuse_floor,
            mask_power: opts.mask_power,
            sources: infos,
        },
    })
}

fn name_error(name: &str, e: NmfError) -> NmfError {
    match e {
        NmfError::InvalidInput(m) => NmfError::InvalidInput(format!("{name}: {m}")),
        e => e,
    }
}

/// The mean of the channels.
fn mono(channels: &[Vec<f32>]) -> Vec<f32> {
    let n = channels.len().max(1) as f32;
    let len = channels.first().map_or(0, Vec::len);
    (0..len)
        .map(|i| channels.iter().map(|c| c[i]).sum::<f32>() / n)
        .collect()
}
