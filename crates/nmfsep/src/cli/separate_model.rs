//! `nmfsep separate MIX --model PATH`: the model is told apart by what the path holds. A
//! folder with `separator.json` is an Open-Unmix model (see [`crate::openunmix`]); a file
//! is a trained NMF model, which this build does not run yet.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Result};
use indicatif::{ProgressBar, ProgressStyle};

use super::names::check_output_name;
use super::output::StagedDir;
use super::resample::resample;
use super::SeparateArgs;
use crate::audio::{read_audio_checked, write_wav_f32};
use crate::openunmix::{self, ModelFolder, SeparatorOptions, WienerOptions};

/// Runs `separate` with `--model`.
///
/// # Errors
/// A path that is not a model, a model that does not load, an unreadable input, or an
/// output that cannot be written.
pub fn run(a: &SeparateArgs, model: &Path) -> Result<()> {
    if openunmix::is_model_folder(model) {
        return open_unmix(a, model);
    }
    if model.is_file() {
        return super::model_separate::separate_model(a, model);
    }
    if model.is_dir() {
        bail!(
            "{}: not an Open-Unmix model folder (it has no {})",
            model.display(),
            openunmix::folder::SEPARATOR_JSON
        );
    }
    bail!("{}: no such model file or folder", model.display());
}

fn open_unmix(a: &SeparateArgs, dir: &Path) -> Result<()> {
    let t0 = Instant::now();
    if !a.sources.is_empty() || a.rest.is_some() || a.realtime {
        bail!("--model separates with the model alone: leave out --source, --rest and --realtime");
    }
    let targets: Vec<String> = a
        .targets
        .iter()
        .flat_map(|t| t.split(','))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect();
    for t in &targets {
        check_output_name(t, "target")?;
    }
    let models = ModelFolder::load(dir, &targets)?;
    let opts = SeparatorOptions {
        wiener: WienerOptions {
            iterations: a.niter,
            softmask: a.softmask,
            residual: a.residual,
        },
        wiener_win_len: a.wiener_win_len,
    };
    if models.targets.len() + usize::from(a.residual) == 1 && a.niter > 0 {
        bail!("the EM refinement (--niter > 0) needs two targets or more: add one, or --residual, or use --niter 0");
    }
    let mut out_dir = StagedDir::new(&a.output)?;
    let (audio, warnings) = read_audio_checked(&a.input)?;
    for w in warnings {
        eprintln!("nmfsep: warning: {w}");
    }
    let model_rate = models.config.sample_rate.round() as u32;
    let n_c = models.config.nb_channels;
    let (in_rate, in_len, in_channels, duration) = (
        audio.sample_rate,
        audio.len(),
        audio.n_channels(),
        audio.duration_s(),
    );
    let mut input: Vec<Vec<f32>> = match (in_channels, n_c) {
        (c, m) if c == m => audio.channels,
        (1, 2) => vec![audio.channels[0].clone(), audio.channels[0].clone()],
        (2, 1) => vec![audio.mono()],
        (c, m) => bail!(
            "{} has {c} channels; the model takes {m} (mono input is duplicated, stereo mixed down for a mono model)",
            a.input.display()
        ),
    };
    if in_rate != model_rate {
        println!(
            "resampling {} from {in_rate} Hz to the model's {model_rate} Hz (outputs are resampled back)",
            a.input.display(),
        );
        input = resample(&input, in_rate, model_rate)?;
    }
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(1)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} {elapsed_precise}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let separated = openunmix::separate(&models, &input, &opts, &mut |p| {
        bar.set_message(p.stage);
        bar.set_length(p.total as u64);
        bar.set_position(p.done as u64);
    });
    bar.finish_and_clear();
    drop(input);
    let mut names = Vec::new();
    for (name, chans) in separated {
        let mut chans = if in_rate != model_rate {
            resample(&chans, model_rate, in_rate)?
        } else {
            chans
        };
        for c in &mut chans {
            c.resize(in_len, 0.0);
        }
        let chans = match (in_channels, n_c) {
            (1, 2) => vec![chans[0]
                .iter()
                .zip(&chans[1])
                .map(|(l, r)| 0.5 * (l + r))
                .collect()],
            (2, 1) => vec![chans[0].clone(), chans[0].clone()],
            _ => chans,
        };
        write_wav_f32(&out_dir.file(&format!("{name}.wav")), in_rate, &chans)?;
        names.push(name);
    }
    out_dir.commit()?;
    println!(
        "separated {} ({:.1} s, {} Hz, {} ch) with Open-Unmix {} into {} -> {} ({:.1} s)",
        a.input.display(),
        duration,
        in_rate,
        in_channels,
        dir.display(),
        names.join(", "),
        a.output.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}
