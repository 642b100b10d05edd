//! Training a separator from one clip per source: dictionaries from pitch-augmented clips of
//! the tonal sources ([`super::augment`]), discriminative reconstruction templates
//! ([`super::discriminative`]) and, for stereo clips, spatial covariances
//! ([`super::spatial`]).

use std::ops::ControlFlow;

use ndarray::{concatenate, Array2, Axis};
use realfft::num_complex::Complex32;

use super::augment::{shifted_copies, TONAL_THRESHOLD};
use super::discriminative::{train_reconstruction, Analysis, DiscriminativeOptions};
use super::model::{DiscriminativeRecord, ModelSettings, SeparatorModel, SourceInfo};
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
    /// Discriminative reconstruction templates trained on mixtures of the clips; `None`
    /// (the default): not trained, as they did not help on the bench's held-back cases
    /// (docs: BENCHMARKS.md, "Trained separators").
    pub discriminative: Option<DiscriminativeOptions>,
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
            discriminative: None,
        }
    }
}

/// The stages of [`train`], in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrainStage {
    /// Learning the dictionary of one source after the other.
    Dictionary,
    /// Training the reconstruction templates on mixtures of the clips.
    Discriminative,
}

/// Progress of [`train`]: the stage, the source being learned and its fit's progress.
#[derive(Clone, Copy, Debug)]
pub struct TrainProgress {
    /// The stage.
    pub stage: TrainStage,
    /// Index of the source being learned (the last one in the discriminative stage).
    pub source: usize,
    /// Number of sources.
    pub n_sources: usize,
    /// The progress of the source's fit, or of the discriminative training (its steps).
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
    let mut clips = Vec::with_capacity(n_sources);
    let mut infos = Vec::with_capacity(n_sources);
    for (i, s) in sources.iter().enumerate() {
        let mut obs = |p: Progress| {
            observer(TrainProgress {
                stage: TrainStage::Dictionary,
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
            if opts.discriminative.is_some() {
                clips.push(stft.forward(&mono));
            }
            plain
        } else {
            let specs: Vec<Array2<Complex32>> = shifted_copies(&mono, &shifts)
                .iter()
                .map(|c| stft.forward(c))
                .collect();
            let views: Vec<_> = specs.iter().map(|x| x.view()).collect();
            let all = concatenate(Axis(1), &views).expect("same number of bins");
            if let Some(d) = &opts.discriminative {
                clips.push(held_back_last(&specs, d.held_back_share));
            }
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
    let (reconstruction, discriminative) = match &opts.discriminative {
        None => (None, None),
        Some(d) => {
            let mut groups = Vec::with_capacity(n_sources);
            let mut first = 0;
            for dict in &dicts {
                groups.push((first..first + dict.n_components()).collect::<Vec<_>>());
                first += dict.n_components();
            }
            let views: Vec<_> = clips.iter().map(|c| c.view()).collect();
            let mut obs = |p: Progress| {
                observer(TrainProgress {
                    stage: TrainStage::Discriminative,
                    source: n_sources - 1,
                    n_sources,
                    fit: p,
                })
            };
            let analysis = Analysis {
                w: dictionary.w.view(),
                beta: dictionary.beta,
                exponent: opts.kind.exponent(),
            };
            let r = train_reconstruction(&views, &groups, analysis, opts.mask_power, d, &mut obs)?;
            let record = DiscriminativeRecord {
                held_back_sdr_before: r.held_back_sdr_before as f32,
                held_back_sdr_after: r.held_back_sdr_after as f32,
                steps: r.steps,
                kept: r.templates.is_some(),
            };
            (r.templates, Some(record))
        }
    };
    Ok(SeparatorModel {
        dictionary,
        spatial,
        reconstruction,
        settings: ModelSettings {
            diffuse_floor: opts.diffuse_floor,
            mask_power: opts.mask_power,
            sources: infos,
            discriminative,
        },
    })
}

/// The frames of `specs` (the STFTs of a clip and its copies) side by side, the first
/// `1 - share` of every one first, then the last `share` of every one: the discriminative
/// training holds back the last `share` of the frames it is given.
fn held_back_last(specs: &[Array2<Complex32>], share: f32) -> Array2<Complex32> {
    let cut = |x: &Array2<Complex32>| ((x.ncols() as f32) * (1.0 - share)).round() as usize;
    let firsts = specs.iter().map(|x| x.slice(ndarray::s![.., ..cut(x)]));
    let lasts = specs.iter().map(|x| x.slice(ndarray::s![.., cut(x)..]));
    let views: Vec<_> = firsts.chain(lasts).collect();
    concatenate(Axis(1), &views).expect("same number of bins")
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
