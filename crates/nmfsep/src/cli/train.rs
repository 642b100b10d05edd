//! `nmfsep train`: a separator from one clip per source ([`crate::trained`]).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{anyhow, bail, Result};
use clap::Args;

use super::commands::{parse_source, read_input, with_progress};
use super::limits::{self, check_components};
use super::names::same_file_name;
use super::output::StagedFile;
use super::{FitArgs, StftArgs};
use crate::dsp::Stft;
use crate::nmf::{FitOptions, SpectrogramKind};
use crate::trained::{self, DiscriminativeOptions, TrainOptions, TrainSource, TrainStage};

/// `nmfsep train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// A source as NAME=CLIP (repeat for each source, two or more): a clip of that source
    /// alone (WAV, FLAC, MP3, Ogg Vorbis), mono or stereo.
    #[arg(short, long = "source", value_name = "NAME=CLIP", required = true)]
    pub sources: Vec<String>,
    /// Output model (.npz; also readable as a dictionary).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Templates per source (1..4097).
    #[arg(short = 'k', long, default_value_t = 16, value_parser = limits::components)]
    pub components: usize,
    /// Pitch shifts in semitones of the copies a tonal source's clip is augmented with,
    /// comma-separated ("none" for no augmentation).
    #[arg(long, default_value = "-2,-1,1,2", allow_hyphen_values = true)]
    pub shifts: String,
    /// Templates of an augmented source [default: twice --components].
    #[arg(long, value_parser = limits::components)]
    pub augmented_components: Option<usize>,
    /// A source that is tonal (notes): its clip is augmented whatever its measured tonality
    /// (repeatable).
    #[arg(long, value_name = "NAME")]
    pub tonal: Vec<String>,
    /// A source that is not tonal (drums, noise): never augmented (repeatable). Sources named
    /// by neither option are measured.
    #[arg(long, value_name = "NAME")]
    pub atonal: Vec<String>,
    /// Do not estimate the spatial model of stereo clips.
    #[arg(long)]
    pub no_spatial: bool,
    /// Diffuse floor of the spatial model (0 = none).
    #[arg(long, default_value_t = trained::DEFAULT_DIFFUSE_FLOOR, value_parser = limits::non_negative)]
    pub diffuse_floor: f32,
    /// Exponent p of the Wiener masks where the spatial model is not used.
    #[arg(long, default_value_t = 2.0)]
    pub mask_power: f32,
    /// Also train discriminative reconstruction templates on synthetic mixtures of the clips
    /// (kept only when they beat the plain templates on mixtures of held-back parts of the
    /// clips). Off by default: on the bench's held-back cases they gained 0.1 dB on average
    /// and lost 0.3 dB on one, for a third more training time (BENCHMARKS.md).
    #[arg(long)]
    pub discriminative: bool,
    /// Most optimizer steps of the discriminative training.
    #[arg(long, default_value_t = DiscriminativeOptions::default().max_steps, value_parser = limits::iterations)]
    pub discriminative_steps: usize,
    #[command(flatten)]
    pub stft: StftArgs,
    #[command(flatten)]
    pub fit: FitArgs,
}

/// Parses `--shifts`.
fn parse_shifts(s: &str) -> Result<Vec<f32>> {
    let s = s.trim();
    if s.is_empty() || s.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    s.split(',')
        .map(|x| {
            let v: f32 = x
                .trim()
                .parse()
                .map_err(|_| anyhow!("--shifts: {x:?} is not a number of semitones"))?;
            if !(v.is_finite() && v.abs() <= 12.0) {
                bail!("--shifts: {v} is outside -12..12 semitones");
            }
            Ok(v)
        })
        .collect()
}

/// Runs `nmfsep train`.
///
/// # Errors
/// Bad arguments, unreadable or unusable clips, or a failed fit.
pub fn train(a: &TrainArgs) -> Result<()> {
    let t0 = Instant::now();
    let stft = Stft::new(a.stft.n_fft, a.stft.hop)?;
    let shifts = parse_shifts(&a.shifts)?;
    if !(a.mask_power.is_finite() && a.mask_power > 0.0) {
        bail!("--mask-power must be positive");
    }
    let mut named: Vec<(String, PathBuf)> = Vec::new();
    for s in &a.sources {
        let (name, path) = parse_source(s)?;
        if let Some((other, _)) = named.iter().find(|(n, _)| same_file_name(n, &name)) {
            bail!("source name {name:?} is given twice (as {other:?})");
        }
        named.push((name, path.to_path_buf()));
    }
    if named.len() < 2 {
        bail!(
            "a separator needs two or more --source, {} given",
            named.len()
        );
    }
    for n in a.tonal.iter().chain(&a.atonal) {
        if !named.iter().any(|(m, _)| m == n) {
            bail!("--tonal/--atonal {n:?} is not a source name");
        }
    }
    if let Some(n) = a.tonal.iter().find(|n| a.atonal.contains(n)) {
        bail!("{n:?} is given as both --tonal and --atonal");
    }
    let out = StagedFile::new(&a.output)?;
    let mut rate = None;
    let mut sources = Vec::new();
    for (name, path) in &named {
        let audio = read_input(path)?;
        if audio.n_channels() > 2 {
            bail!(
                "{}: {} channels; a clip has one or two",
                path.display(),
                audio.n_channels()
            );
        }
        match rate {
            None => rate = Some(audio.sample_rate),
            Some(r) if r != audio.sample_rate => bail!(
                "{} is {} Hz, {} is {r} Hz: the clips must share a sample rate",
                path.display(),
                audio.sample_rate,
                named[0].1.display()
            ),
            _ => {}
        }
        check_components(a.components, stft.n_bins(), stft.n_frames(audio.len()))?;
        let tonal = if a.tonal.contains(name) {
            Some(true)
        } else if a.atonal.contains(name) {
            Some(false)
        } else {
            None
        };
        sources.push(TrainSource {
            name: name.clone(),
            channels: audio.channels,
            tonal,
        });
    }
    let sample_rate = rate.expect("two or more sources");
    let opts = TrainOptions {
        fit: FitOptions {
            n_components: a.components,
            beta: a.fit.beta,
            max_iter: a.fit.iterations,
            tol: a.fit.tol,
            seed: a.fit.seed,
            init: a.fit.init.into(),
            sparsity: a.fit.sparsity,
            cost_every: 10,
        },
        kind: if a.fit.power {
            SpectrogramKind::Power
        } else {
            SpectrogramKind::Magnitude
        },
        shifts,
        augmented_components: a.augmented_components,
        spatial: !a.no_spatial,
        diffuse_floor: a.diffuse_floor,
        mask_power: a.mask_power,
        discriminative: a.discriminative.then(|| DiscriminativeOptions {
            max_steps: a.discriminative_steps,
            seed: a.fit.seed,
            ..DiscriminativeOptions::default()
        }),
    };
    // Each source runs up to two fits (alone, then augmented); then the discriminative
    // steps.
    let fits = 2 * a.fit.iterations * sources.len();
    let steps = opts.discriminative.as_ref().map_or(0, |d| d.max_steps);
    let model = with_progress(fits + steps, |observer| {
        trained::train(&sources, sample_rate, &stft, &opts, &mut |p| {
            let iteration = match p.stage {
                TrainStage::Dictionary => 2 * p.source * a.fit.iterations + p.fit.iteration,
                TrainStage::Discriminative => fits + p.fit.iteration,
            };
            observer(crate::nmf::Progress { iteration, ..p.fit })
        })
    })?;
    model.save(out.tmp())?;
    out.commit()?;
    for s in &model.settings.sources {
        let t = s
            .tonality
            .map_or_else(|| "given".to_string(), |t| format!("{t:.3}"));
        let shifts = if s.shifts.is_empty() {
            match s.pitch_share {
                Some(p) if p >= nmf_core::trained::pitch::ONE_PITCH_SHARE => {
                    format!("one pitch (share {p:.2}), not augmented")
                }
                _ => "not augmented".to_string(),
            }
        } else {
            format!("augmented by {:?} semitones", s.shifts)
        };
        println!(
            "  {}: {:.1} s, {} ch, tonality {t}, {shifts}",
            s.name, s.clip_s, s.channels
        );
    }
    if let Some(d) = &model.settings.discriminative {
        println!(
            "  discriminative templates: held-back mixtures {:.2} -> {:.2} dB SDR in {} steps, {}",
            d.held_back_sdr_before,
            d.held_back_sdr_after,
            d.steps,
            if d.kept {
                "kept"
            } else {
                "not better, not kept"
            }
        );
    }
    println!(
        "trained a separator of {} sources ({} components{}) -> {} ({:.1} s)",
        model.settings.sources.len(),
        model.dictionary.n_components(),
        if model.spatial.is_some() {
            ", spatial model"
        } else {
            ""
        },
        a.output.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifts_parse() {
        assert_eq!(parse_shifts("-2,-1,1,2").unwrap(), [-2.0, -1.0, 1.0, 2.0]);
        assert!(parse_shifts("none").unwrap().is_empty());
        assert!(parse_shifts("").unwrap().is_empty());
        assert!(parse_shifts("1,x").is_err());
        assert!(parse_shifts("13").is_err());
    }
}
