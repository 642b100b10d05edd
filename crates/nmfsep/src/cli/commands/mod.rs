//! The work of each `nmfsep` command, on library types; errors carry one-line messages. One
//! file per command ([`learn`], [`separate`], [`decompose`]); this module holds what they
//! share (input reading, STFT settings, progress, plots, staged outputs).

mod decompose;
mod learn;
mod separate;

pub(crate) use separate::realtime_engine;

pub use decompose::parse_groups;

use std::io::IsTerminal;
use std::ops::ControlFlow;
use std::path::Path;
use std::time::Instant;

use anyhow::{anyhow, bail, Result};
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::Array2;
use realfft::num_complex::Complex32;

use super::limits::check_components;
use super::names::{check_output_name, same_file_name};
use super::output::{StagedDir, StagedFile};
use super::{ChannelsArg, Command, DecomposeArgs, FitArgs, LearnArgs, SeparateArgs, StftArgs};
use crate::audio::{read_audio_checked, write_wav_f32, Audio};
use crate::dsp::engine::{run_offline, Engine, EngineParams, PreparedDictionary, MAX_SOURCES};
use crate::dsp::learn_dictionary;
use crate::dsp::separate::mask_sources;
use crate::dsp::stft::floored_mean_spectrogram;
use crate::dsp::{self, spectrogram, ChannelMode, SeparateOptions, Stft};
use crate::nmf::{self, Dictionary, FitOptions, SolveRule, SpectrogramKind};

use crate::plot::{plot_factorization, PlotInput};

/// `n` and `noun`, in the plural unless `n` is 1 ("1 component", "16 components").
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Runs one command.
///
/// # Errors
/// Any failure, with a message naming the file or setting at fault.
pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Learn(a) => with_threads(a.threads, || learn::learn(&a)),
        // The real-time mode runs the plugin's engine, on the calling thread.
        Command::Separate(a) if a.realtime => separate::separate(&a),
        Command::Separate(a) => with_threads(a.threads, || separate::separate(&a)),
        Command::Decompose(a) => decompose::decompose(&a),
        Command::Evaluate(a) => super::evaluate::run(&a),
        Command::Train(a) => super::train::train(&a),
        Command::Serve(a) => crate::serve::run(&a),
    }
}

/// Runs `job` in a pool of `threads` threads (default: the cores the system reports), so
/// that its fits share their frame tiles out over them (see [`nmf::thread_pool`]).
fn with_threads<T: Send>(
    threads: Option<usize>,
    job: impl FnOnce() -> Result<T> + Send,
) -> Result<T> {
    let n = threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let pool = nmf::thread_pool(n).map_err(|e| anyhow!("--threads {n}: {e}"))?;
    pool.install(job)
}

/// Reads an audio file, prints a warning line on stderr for each sign of damage (see
/// [`read_audio_checked`]: a damaged file is used as far as it decodes), and rejects silence.
pub(crate) fn read_input(path: &Path) -> Result<Audio> {
    let (audio, warnings) = read_audio_checked(path)?;
    for w in warnings {
        eprintln!("nmfsep: warning: {w}");
    }
    if audio.peak() == 0.0 {
        bail!("{} is silent (all samples are zero)", path.display());
    }
    Ok(audio)
}

fn make_stft(a: &StftArgs) -> Result<Stft> {
    Ok(Stft::new(a.n_fft, a.hop)?)
}

fn kind(power: bool) -> SpectrogramKind {
    if power {
        SpectrogramKind::Power
    } else {
        SpectrogramKind::Magnitude
    }
}

/// The mean over channels of |X|^e, plus the floor 1e-6 * max (as the scikit-learn baseline),
/// n_bins x n_frames.
fn mean_spectrogram(specs: &[Array2<Complex32>], exponent: f32) -> Array2<f32> {
    floored_mean_spectrogram(&specs.iter().collect::<Vec<_>>(), exponent)
}

/// Fit settings from the command line (their bounds are checked while parsing, see
/// [`super::limits`]).
fn fit_options(k: usize, f: &FitArgs) -> FitOptions {
    FitOptions {
        n_components: k,
        beta: f.beta,
        max_iter: f.iterations,
        tol: f.tol,
        seed: f.seed,
        init: f.init.into(),
        sparsity: f.sparsity,
        cost_every: 10,
    }
}

/// Runs `job` with a progress bar on stderr fed by its fit observer (hidden when stderr is
/// not a terminal).
pub(crate) fn with_progress<T>(
    iterations: usize,
    job: impl FnOnce(&mut dyn FnMut(nmf::Progress) -> ControlFlow<()>) -> Result<T, nmf::NmfError>,
) -> Result<T> {
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(iterations as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "fitting NMF [{bar:40}] {pos}/{len} iterations {elapsed_precise} {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    let result = job(&mut |p| {
        bar.set_position(p.iteration as u64 + 1);
        if let Some(c) = p.cost {
            bar.set_message(format!("cost {c:.4e}"));
        }
        ControlFlow::Continue(())
    });
    bar.finish_and_clear();
    Ok(result?)
}

/// Fits W and H with a progress bar.
fn fit_with_progress(v: &Array2<f32>, k: usize, f: &FitArgs) -> Result<nmf::Factorization> {
    let opts = fit_options(k, f);
    with_progress(f.iterations, |observer| nmf::fit(v.view(), &opts, observer))
}

fn cost_title(beta: f32, n_iter: usize) -> String {
    format!("beta divergence (beta = {beta}), {n_iter} iterations")
}

/// Plots a whole factorization (W, H and the cost curve of divergence `beta`) and the
/// `spectrograms` of its outputs into the PNG file `path`.
fn plot_fit(
    path: &Path,
    sample_rate: u32,
    stft: &Stft,
    fact: &nmf::Factorization,
    beta: f32,
    spectrograms: Vec<(String, Array2<f32>)>,
) -> Result<()> {
    plot_factorization(
        path,
        &PlotInput {
            sample_rate,
            n_fft: stft.n_fft(),
            hop: stft.hop(),
            w: Some(fact.w.view()),
            h: Some(fact.h.view()),
            cost: &fact.cost,
            cost_title: cost_title(beta, fact.n_iter),
            spectrograms,
        },
    )?;
    Ok(())
}

/// Moves the staged output folder, then the staged plot, into place.
fn commit_outputs(dir: StagedDir, plot: Option<StagedFile>) -> Result<()> {
    dir.commit()?;
    if let Some(p) = plot {
        p.commit()?;
    }
    Ok(())
}

/// `(name, spectrogram)` of every output, for plots.
fn output_spectrograms(
    stft: &Stft,
    names: &[String],
    outputs: &[Vec<Vec<f32>>],
) -> Vec<(String, Array2<f32>)> {
    names
        .iter()
        .zip(outputs)
        .map(|(n, c)| (n.clone(), plot_spectrogram(stft, c)))
        .collect()
}

/// Magnitude spectrogram of the mono downmix of `channels`, for plots.
fn plot_spectrogram(stft: &Stft, channels: &[Vec<f32>]) -> Array2<f32> {
    let n = channels.len() as f32;
    let mono: Vec<f32> = (0..channels[0].len())
        .map(|i| channels.iter().map(|c| c[i]).sum::<f32>() / n)
        .collect();
    spectrogram(&stft.forward(&mono), 1.0)
}

fn check_png(p: Option<&Path>) -> Result<()> {
    if let Some(p) = p {
        let ok = p
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("png"));
        if !ok {
            bail!("--plot {} must end in .png", p.display());
        }
    }
    Ok(())
}

/// Parses `NAME=PATH`.
pub(crate) fn parse_source(s: &str) -> Result<(String, &Path)> {
    let (name, path) = s
        .split_once('=')
        .ok_or_else(|| anyhow!("--source {s:?} must be NAME=PATH"))?;
    check_output_name(name, "source")?;
    if name == nmf::dictionary::MIX_LABEL {
        // The routing rule spreads "Mix" components over every source.
        bail!("source name {name:?} is reserved for whole-mix components; choose another");
    }
    if path.is_empty() {
        bail!("--source {s:?} has no dictionary path");
    }
    Ok((name.to_string(), Path::new(path)))
}
