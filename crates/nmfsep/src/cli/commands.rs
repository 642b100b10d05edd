//! The work of each `nmfsep` command, on library types; errors carry one-line messages.

use std::io::IsTerminal;
use std::ops::ControlFlow;
use std::path::Path;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
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

/// Runs one command.
///
/// # Errors
/// Any failure, with a message naming the file or setting at fault.
pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Learn(a) => learn(&a),
        Command::Separate(a) => separate(&a),
        Command::Decompose(a) => decompose(&a),
        Command::Train(a) => super::train::train(&a),
    }
}

/// Reads an audio file, prints a warning line on stderr for each sign of damage (see
/// [`read_audio_checked`]: a damaged file is used as far as it decodes), and rejects silence.
pub(super) fn read_input(path: &Path) -> Result<Audio> {
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
pub(super) fn with_progress<T>(
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

fn learn(a: &LearnArgs) -> Result<()> {
    let t0 = Instant::now();
    let stft = make_stft(&a.stft)?;
    let label = match &a.label {
        Some(l) => l.clone(),
        None => a
            .output
            .file_stem()
            .and_then(|s| s.to_str())
            .map(str::to_string)
            .ok_or_else(|| anyhow!("cannot take a label from {}", a.output.display()))?,
    };
    if label.is_empty() {
        bail!("the label must not be empty");
    }
    check_png(a.plot.as_deref())?;
    let out = StagedFile::new(&a.output)?;
    let plot = a.plot.as_deref().map(StagedFile::new).transpose()?;

    if !a.given.is_empty() {
        return learn_given(a, &label, out, t0);
    }
    let audio = read_input(&a.input)?;
    check_components(a.components, stft.n_bins(), stft.n_frames(audio.len()))?;
    let kind = kind(a.fit.power);
    let opts = fit_options(a.components, &a.fit);
    let (dict, fact) = with_progress(a.fit.iterations, |observer| {
        learn_dictionary(
            &audio.mono(),
            audio.sample_rate,
            &stft,
            kind,
            &opts,
            &label,
            observer,
        )
    })?;
    let h_mean = nmf::semi::mean_spectrum(fact.h.view());
    dict.save_with_activation_means(out.tmp(), h_mean.as_slice())?;
    if let Some(p) = &plot {
        plot_fit(p.tmp(), audio.sample_rate, &stft, &fact, a.fit.beta, vec![])?;
    }
    out.commit()?;
    if let Some(p) = plot {
        p.commit()?;
    }
    println!(
        "learned {} components labelled {label:?} from {} ({:.1} s, {} Hz, {} ch) in {} iterations, cost {:.4e} -> {} ({:.1} s)",
        a.components,
        a.input.display(),
        audio.duration_s(),
        audio.sample_rate,
        audio.n_channels(),
        fact.n_iter,
        fact.cost.last().map_or(f64::NAN, |c| c.cost),
        a.output.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Loads dictionaries that must share STFT settings, beta and kind; returns their
/// concatenation and the known sources' mean spectrum `W @ H_mean` (n_bins), or `None` if a
/// file has no `H_mean`.
fn load_known(paths: &[(String, &Path)]) -> Result<(Dictionary, Option<Vec<f32>>)> {
    let mut dicts = Vec::new();
    let mut spectrum: Option<Vec<f32>> = Some(Vec::new());
    for (name, path) in paths {
        let mut d = Dictionary::load(path)?;
        d.labels.iter_mut().for_each(|l| l.clone_from(name));
        let m = Dictionary::load_activation_means(path)?;
        spectrum = match (spectrum, m) {
            (Some(mut acc), Some(m)) => {
                let c = d.w.dot(&ndarray::Array1::from(m));
                if acc.is_empty() {
                    acc = c.to_vec();
                } else {
                    acc.iter_mut().zip(&c).for_each(|(a, b)| *a += b);
                }
                Some(acc)
            }
            _ => None,
        };
        dicts.push(d);
    }
    for (d, (_, p)) in dicts.iter().zip(paths).skip(1) {
        let (f, fp) = (&dicts[0], paths[0].1);
        if (d.sample_rate, d.n_fft, d.hop, d.spectrogram)
            != (f.sample_rate, f.n_fft, f.hop, f.spectrogram)
            || d.beta != f.beta
        {
            bail!(
                "dictionaries do not match: {} is {} Hz, n_fft {}, hop {}, beta {}, {:?}; {} is {} Hz, n_fft {}, hop {}, beta {}, {:?}",
                fp.display(), f.sample_rate, f.n_fft, f.hop, f.beta, f.spectrogram,
                p.display(), d.sample_rate, d.n_fft, d.hop, d.beta, d.spectrogram
            );
        }
    }
    Ok((Dictionary::concat(&dicts)?, spectrum))
}

/// Semi-supervised settings from the command line.
fn semi_options(
    n_free: usize,
    beta: f32,
    iterations: usize,
    overlap: f32,
) -> Result<nmf::SemiOptions> {
    if n_free == 0 {
        bail!("--rest-components must be at least 1");
    }
    if !(overlap.is_finite() && overlap >= 0.0) {
        bail!("--rest-overlap must be 0 or more");
    }
    Ok(nmf::SemiOptions {
        n_free,
        beta,
        max_iter: iterations,
        overlap,
        ..nmf::SemiOptions::default()
    })
}

/// `learn --given`: only what the given dictionaries do not explain.
fn learn_given(a: &LearnArgs, label: &str, out: StagedFile, t0: Instant) -> Result<()> {
    let given: Vec<(String, &Path)> = a
        .given
        .iter()
        .map(|p| ("given".to_string(), p.as_path()))
        .collect();
    let (known, spectrum) = load_known(&given)?;
    let audio = read_input(&a.input)?;
    known
        .check_matches(audio.sample_rate, known.n_fft)
        .with_context(|| {
            format!(
                "{} does not fit {}",
                a.given[0].display(),
                a.input.display()
            )
        })?;
    if a.fit.iterations == 0 {
        bail!("--iterations must be at least 1");
    }
    let stft = Stft::new(known.n_fft, known.hop)?;
    let v = floored_mean_spectrogram(
        &[&stft.forward(&audio.mono())],
        known.spectrogram.exponent(),
    );
    let mut opts = semi_options(a.components, known.beta, a.fit.iterations, 5.0)?;
    opts.seed = a.fit.seed;
    opts.release_iter = 0;
    let fact = with_progress(a.fit.iterations, |observer| {
        nmf::fit_semi(
            v.view(),
            known.w.view(),
            spectrum
                .as_ref()
                .map(|s| ndarray::ArrayView1::from(s.as_slice())),
            &opts,
            observer,
        )
    })?;
    // Dictionary convention: unit L2 columns, the scale moved into the mean activations.
    let (w, h_mean) = fact.free_templates();
    let dict = Dictionary {
        w,
        labels: vec![label.to_string(); a.components],
        ..known.clone()
    };
    dict.save_with_activation_means(out.tmp(), Some(&h_mean))?;
    out.commit()?;
    println!(
        "learned {} components labelled {label:?} from {} ({:.1} s) given {} fixed components, {} iterations, cost {:.4e} -> {} ({:.1} s)",
        a.components,
        a.input.display(),
        audio.duration_s(),
        known.n_components(),
        fact.n_iter,
        fact.cost.last().map_or(f64::NAN, |c| c.cost),
        a.output.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `separate --rest`: the sources' templates fixed, the rest learned from the mixture.
fn separate_rest(
    a: &SeparateArgs,
    sources: &[(String, &Path)],
    rest: &str,
    iterations: usize,
    mut dir: StagedDir,
    t0: Instant,
) -> Result<()> {
    if a.channels == ChannelsArg::Independent {
        bail!("--rest fits the channels together; --channels independent is not available with it");
    }
    if a.plot.is_some() {
        bail!("--plot is not yet available with --rest");
    }
    let audio = read_input(&a.input)?;
    let outputs: Vec<(String, Vec<Vec<f32>>)> = if sources.is_empty() {
        // Nothing known: the rest is the whole input.
        vec![(rest.to_string(), audio.channels.clone())]
    } else if a.realtime {
        rest_realtime(a, sources, rest, iterations, &audio)?
    } else {
        let (dict, spectrum) = load_known(sources)?;
        if spectrum.is_none() {
            eprintln!("nmfsep: note: a dictionary has no H_mean (older file): the rest's penalty uses the templates' row sums instead of the clip's mean spectrum; relearn it for better results");
        }
        dict.check_matches(audio.sample_rate, dict.n_fft)
            .with_context(|| {
                format!(
                    "{} does not fit {}",
                    sources[0].1.display(),
                    a.input.display()
                )
            })?;
        let stft = Stft::new(dict.n_fft, dict.hop)?;
        let e = dict.spectrogram.exponent();
        let specs: Vec<Array2<Complex32>> =
            audio.channels.iter().map(|c| stft.forward(c)).collect();
        let v = mean_spectrogram(&specs, e);
        let mut opts = semi_options(a.rest_components, dict.beta, iterations, a.rest_overlap)?;
        opts.sparsity = a.sparsity;
        opts.init_iter = a.rest_init_iters;
        opts.tonal_exponent = a.rest_tonal_exponent;
        let fact = with_progress(iterations + opts.release_iter, |observer| {
            nmf::fit_semi(
                v.view(),
                dict.w.view(),
                spectrum
                    .as_ref()
                    .map(|s| ndarray::ArrayView1::from(s.as_slice())),
                &opts,
                observer,
            )
        })?;
        let (names, mut groups) = dsp::separate::groups_by_label(&dict);
        let kk = dict.n_components();
        groups.push((kk..kk + a.rest_components).collect());
        let refs: Vec<&Array2<Complex32>> = specs.iter().collect();
        let mut outs = mask_sources(
            &stft,
            &refs,
            fact.w.view(),
            fact.h.view(),
            &groups,
            e,
            a.mask_power,
            audio.len(),
        );
        // The rest is the input minus the sources, so that the outputs add up exactly.
        let known_outs = &outs[..names.len()];
        let rest_audio: Vec<Vec<f32>> = audio
            .channels
            .iter()
            .enumerate()
            .map(|(c, x)| {
                x.iter()
                    .enumerate()
                    .map(|(i, &s)| s - known_outs.iter().map(|o| o[c][i]).sum::<f32>())
                    .collect()
            })
            .collect();
        outs.pop();
        let mut v: Vec<(String, Vec<Vec<f32>>)> = names.into_iter().zip(outs).collect();
        v.push((rest.to_string(), rest_audio));
        v
    };
    for (name, chans) in &outputs {
        write_wav_f32(&dir.file(&format!("{name}.wav")), audio.sample_rate, chans)?;
    }
    dir.commit()?;
    println!(
        "separated {} ({:.1} s, {} Hz, {} ch) into {} (rest {rest:?}: {} learned templates) -> {} ({:.1} s)",
        a.input.display(),
        audio.duration_s(),
        audio.sample_rate,
        audio.n_channels(),
        outputs.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", "),
        if sources.is_empty() { 0 } else { a.rest_components },
        a.output.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `separate --realtime --rest`: the plugin's engine with the rest learned live, its worker
/// run in audio time ([`dsp::engine::run_offline_live`]): deterministic.
fn rest_realtime(
    a: &SeparateArgs,
    sources: &[(String, &Path)],
    rest: &str,
    iterations: usize,
    audio: &Audio,
) -> Result<Vec<(String, Vec<Vec<f32>>)>> {
    use dsp::engine::{live_pair, run_offline_live, LiveOptions};
    let (known, spectrum) = load_known(sources)?;
    if spectrum.is_none() {
        eprintln!("nmfsep: note: a dictionary has no H_mean (older file): the rest's penalty uses the templates' row sums instead of the clip's mean spectrum; relearn it for better results");
    }
    known
        .check_matches(audio.sample_rate, known.n_fft)
        .with_context(|| {
            format!(
                "{} does not fit {}",
                sources[0].1.display(),
                a.input.display()
            )
        })?;
    let names = known.sources();
    if names.len() + 1 > MAX_SOURCES {
        bail!(
            "--realtime --rest separates at most {} known sources and the rest",
            MAX_SOURCES - 1
        );
    }
    let mut opts = LiveOptions {
        source: names.len(),
        ..LiveOptions::default()
    };
    opts.learner.n_free = a.rest_components;
    opts.learner.beta = known.beta;
    opts.learner.overlap = a.rest_overlap;
    if let Some(n) = a.rest_exemplars {
        // Asked for: no tonality gate.
        opts.exemplars = n;
        opts.exemplar_max_tonality = f32::INFINITY;
    }
    opts.tonal_exponent = a.rest_tonal_exponent;
    opts.learner.window = a.rest_window.max(1);
    opts.learner.refit_iters = a.rest_refit_iters;
    opts.period = a.rest_period;
    opts.delay = a.rest_delay;
    opts.exemplar_penalty = a.rest_exemplar_penalty;
    opts.early_period = a.rest_early_period;
    opts.learner.init_iters = a.rest_init_iters;
    if !(opts.exemplar_penalty.is_finite() && opts.exemplar_penalty >= 0.0) {
        bail!("--rest-exemplar-penalty must be 0 or more");
    }
    semi_options(a.rest_components, known.beta, iterations, a.rest_overlap)?;
    let (live, mut worker, w_free) = live_pair(known.w.view(), spectrum.as_deref(), opts.clone())?;
    let (dict, assignment) = dsp::engine::rest_dictionary(
        &known,
        &known.source_assignment(MAX_SOURCES),
        names.len(),
        w_free.view(),
        live.exemplars(),
        rest,
    );
    let prepared = PreparedDictionary::new(&dict, &assignment)?.with_live(live)?;
    let mut engine = realtime_engine(a, audio, prepared, iterations);
    let (_, buses) = run_offline_live(&mut engine, &audio.channels, &mut worker);
    let l = engine.dictionary().and_then(|d| d.live());
    eprintln!(
        "nmfsep: live rest: {} refits applied, {} frames dropped",
        l.map_or(0, |l| l.applied()),
        l.map_or(0, |l| l.dropped_frames())
    );
    let mut out: Vec<(String, Vec<Vec<f32>>)> = names.into_iter().zip(buses.clone()).collect();
    out.push((rest.to_string(), buses[out.len()].clone()));
    Ok(out)
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
pub(super) fn parse_source(s: &str) -> Result<(String, &Path)> {
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

fn separate(a: &SeparateArgs) -> Result<()> {
    if let Some(m) = &a.model {
        return super::model_separate::separate_model(a, m);
    }
    let t0 = Instant::now();
    let mut sources: Vec<(String, &Path)> = Vec::new();
    for s in &a.sources {
        let (name, path) = parse_source(s)?;
        if let Some((other, _)) = sources.iter().find(|(n, _)| same_file_name(n, &name)) {
            bail!("source name {name:?} is given twice (as {other:?}; output file names differ in more than letter case)");
        }
        sources.push((name, path));
    }
    let iterations = a.iterations.unwrap_or(if a.realtime {
        SolveRule::DEFAULT_ITERATIONS
    } else {
        200
    });
    if a.realtime && a.channels == ChannelsArg::Independent {
        bail!(
            "--realtime shares activations across channels; --channels independent is offline only"
        );
    }
    if a.realtime && sources.len() > MAX_SOURCES {
        bail!(
            "--realtime separates at most {MAX_SOURCES} sources, {} given",
            sources.len()
        );
    }
    if !(a.mask_power.is_finite() && a.mask_power > 0.0) {
        bail!("--mask-power must be positive");
    }
    if let Some(rest) = &a.rest {
        check_output_name(rest, "rest")?;
        if sources.iter().any(|(n, _)| n == rest) {
            bail!("the rest name {rest:?} is also a source name");
        }
        let dir = StagedDir::new(&a.output)?;
        return separate_rest(a, &sources, rest, iterations, dir, t0);
    }
    check_png(a.plot.as_deref())?;
    let mut dir = StagedDir::new(&a.output)?;
    let plot = a.plot.as_deref().map(StagedFile::new).transpose()?;

    let mut dicts = Vec::new();
    for (name, path) in &sources {
        let mut d = Dictionary::load(path)?;
        d.labels.iter_mut().for_each(|l| l.clone_from(name));
        dicts.push(d);
    }
    let audio = read_input(&a.input)?;
    // Every dictionary is mapped onto the STFT of the first one at the input's rate (one rule:
    // Dictionary::n_fft_for and Dictionary::mapped_to).
    let n_fft = dicts[0].n_fft_for(audio.sample_rate);
    let mut notes: Vec<String> = Vec::new();
    for (d, (name, _)) in dicts.iter_mut().zip(&sources) {
        if let Some(note) = d.mapping_note(audio.sample_rate, n_fft) {
            notes.push(format!("{name} {note}"));
            *d = d.mapped_to(audio.sample_rate, n_fft)?;
        }
    }
    for (d, (_, p)) in dicts.iter().zip(&sources).skip(1) {
        let (f, fp) = (&dicts[0], sources[0].1);
        if let Err(e) = f.compatible_with(d) {
            bail!("{} and {} do not match: {e}", fp.display(), p.display());
        }
    }
    let dict = Dictionary::concat(&dicts)?;
    if !notes.is_empty() {
        println!(
            "mapped dictionaries to the input's STFT: {}",
            notes.join("; ")
        );
    }
    if a.realtime {
        return separate_realtime(a, &dict, &audio, iterations, dir, plot, t0);
    }
    let opts = SeparateOptions {
        iterations,
        mask_power: a.mask_power,
        sparsity: a.sparsity,
        channels: match a.channels {
            ChannelsArg::Shared => ChannelMode::Shared,
            ChannelsArg::Independent => ChannelMode::Independent,
        },
    };
    let sep = dsp::separate(&audio.channels, audio.sample_rate, &dict, &opts)?;
    for (name, chans) in sep.sources.iter().zip(&sep.audio) {
        let path = dir.file(&format!("{name}.wav"));
        write_wav_f32(&path, audio.sample_rate, chans)?;
    }
    if let Some(p) = &plot {
        let stft = Stft::new(dict.n_fft, dict.hop)?;
        plot_factorization(
            p.tmp(),
            &PlotInput {
                sample_rate: audio.sample_rate,
                n_fft: dict.n_fft,
                hop: dict.hop,
                w: None,
                h: Some(sep.h.view()),
                cost: &sep.cost,
                cost_title: cost_title(dict.beta, iterations),
                spectrograms: output_spectrograms(&stft, &sep.sources, &sep.audio),
            },
        )?;
    }
    commit_outputs(dir, plot)?;
    println!(
        "separated {} ({:.1} s, {} Hz, {} ch) into {} -> {} ({:.1} s)",
        a.input.display(),
        audio.duration_s(),
        audio.sample_rate,
        audio.n_channels(),
        sep.sources.join(", "),
        a.output.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The plugin's engine for `separate --realtime` on `audio` with `prepared`: `iterations`
/// solver steps per frame and the solver, mask exponent and sparsity of the arguments,
/// reset and ready for the file drivers.
pub(super) fn realtime_engine(
    a: &SeparateArgs,
    audio: &Audio,
    prepared: PreparedDictionary,
    iterations: usize,
) -> Engine {
    let mut engine = Engine::new(audio.sample_rate as f32, audio.n_channels());
    engine.set_dictionary(Some(Box::new(prepared)));
    engine.set_params(&EngineParams {
        iterations,
        solve_rule: a.solver,
        mask_power: a.mask_power,
        sparsity: a.sparsity,
        ..EngineParams::default()
    });
    engine.reset();
    engine
}

/// `separate --realtime`: the plugin's engine over the file in host-sized blocks.
fn separate_realtime(
    a: &SeparateArgs,
    dict: &Dictionary,
    audio: &Audio,
    iterations: usize,
    mut dir: StagedDir,
    plot: Option<StagedFile>,
    t0: Instant,
) -> Result<()> {
    let prepared = PreparedDictionary::by_labels(dict)?;
    let mut engine = realtime_engine(a, audio, prepared, iterations);
    let (_, sources) = run_offline(&mut engine, &audio.channels, a.block);
    if a.solver.tol > 0.0 {
        let frames = (audio.len() / dict.hop).max(1);
        let iters = engine.dictionary().map_or(0, |d| d.solver_iterations());
        println!(
            "solver {}: {:.2} iterations per frame on average (at most {iterations})",
            a.solver,
            iters as f64 / frames as f64
        );
    }
    let names = dict.sources();
    for (name, chans) in names.iter().zip(&sources) {
        write_wav_f32(&dir.file(&format!("{name}.wav")), audio.sample_rate, chans)?;
    }
    if let Some(p) = &plot {
        let stft = Stft::new(dict.n_fft, dict.hop)?;
        plot_factorization(
            p.tmp(),
            &PlotInput {
                sample_rate: audio.sample_rate,
                n_fft: dict.n_fft,
                hop: dict.hop,
                w: None,
                h: None,
                cost: &[],
                cost_title: String::new(),
                spectrograms: output_spectrograms(&stft, &names, &sources),
            },
        )?;
    }
    commit_outputs(dir, plot)?;
    println!(
        "separated {} ({:.1} s, {} Hz, {} ch) in real-time mode ({} iterations per frame, blocks of {}, latency {} samples compensated) into {} -> {} ({:.1} s)",
        a.input.display(),
        audio.duration_s(),
        audio.sample_rate,
        audio.n_channels(),
        iterations,
        a.block,
        engine.latency_samples(),
        names.join(", "),
        a.output.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Parses `--group` values ("melody=0,2 noise=1", repeatable) into named groups of component
/// indices < `k`; components in no group form a last group `rest`.
///
/// # Errors
/// On bad syntax or names, an index >= `k`, an index in two groups, a name used twice, or
/// a group named `rest` while some component is in no group.
pub fn parse_groups(specs: &[String], k: usize) -> Result<(Vec<String>, Vec<Vec<usize>>)> {
    let mut names: Vec<String> = Vec::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut owner: Vec<Option<usize>> = vec![None; k];
    for entry in specs.iter().flat_map(|s| s.split_whitespace()) {
        let (name, list) = entry
            .split_once('=')
            .ok_or_else(|| anyhow!("--group {entry:?} must be NAME=I,J,.."))?;
        check_output_name(name, "group")?;
        if let Some(other) = names.iter().find(|n| same_file_name(n, name)) {
            bail!("group name {name:?} is given twice (as {other:?}; output file names differ in more than letter case)");
        }
        let mut idx = Vec::new();
        for i in list.split(',').filter(|s| !s.is_empty()) {
            let i: usize = i
                .trim()
                .parse()
                .map_err(|_| anyhow!("--group {entry:?}: {i:?} is not a component index"))?;
            if i >= k {
                bail!(
                    "--group {entry:?}: component {i} is out of range (0..{})",
                    k - 1
                );
            }
            if let Some(g) = owner[i] {
                bail!("component {i} is in two groups ({} and {name})", names[g]);
            }
            owner[i] = Some(names.len());
            idx.push(i);
        }
        if idx.is_empty() {
            bail!("--group {entry:?} names no component");
        }
        names.push(name.to_string());
        groups.push(idx);
    }
    let rest: Vec<usize> = (0..k).filter(|&i| owner[i].is_none()).collect();
    if !rest.is_empty() {
        if names.iter().any(|n| same_file_name(n, "rest")) {
            bail!("components {rest:?} are in no group, and the name \"rest\" for them is taken");
        }
        names.push("rest".into());
        groups.push(rest);
    }
    Ok((names, groups))
}

fn decompose(a: &DecomposeArgs) -> Result<()> {
    let t0 = Instant::now();
    let stft = make_stft(&a.stft)?;
    let k = a.components;
    if !(a.mask_power.is_finite() && a.mask_power > 0.0) {
        bail!("--mask-power must be positive");
    }
    let (names, groups) = if a.groups.is_empty() {
        (
            (0..k).map(|i| format!("component_{i}")).collect(),
            (0..k).map(|i| vec![i]).collect(),
        )
    } else {
        parse_groups(&a.groups, k)?
    };
    check_png(a.plot.as_deref())?;
    let mut dir = StagedDir::new(&a.output)?;
    let plot = a.plot.as_deref().map(StagedFile::new).transpose()?;

    let audio = read_input(&a.input)?;
    check_components(k, stft.n_bins(), stft.n_frames(audio.len()))?;
    let e = kind(a.fit.power).exponent();
    let specs: Vec<Array2<Complex32>> = audio.channels.iter().map(|c| stft.forward(c)).collect();
    let v = mean_spectrogram(&specs, e);
    let fact = fit_with_progress(&v, k, &a.fit)?;
    let refs: Vec<&Array2<Complex32>> = specs.iter().collect();
    let outputs = mask_sources(
        &stft,
        &refs,
        fact.w.view(),
        fact.h.view(),
        &groups,
        e,
        a.mask_power,
        audio.len(),
    );
    for (name, chans) in names.iter().zip(&outputs) {
        let path = dir.file(&format!("{name}.wav"));
        write_wav_f32(&path, audio.sample_rate, chans)?;
    }
    if let Some(p) = &plot {
        let spectrograms = output_spectrograms(&stft, &names, &outputs);
        plot_fit(
            p.tmp(),
            audio.sample_rate,
            &stft,
            &fact,
            a.fit.beta,
            spectrograms,
        )?;
    }
    commit_outputs(dir, plot)?;
    println!(
        "decomposed {} ({:.1} s, {} Hz, {} ch) into {k} components, {} iterations, outputs {} -> {} ({:.1} s)",
        a.input.display(),
        audio.duration_s(),
        audio.sample_rate,
        audio.n_channels(),
        fact.n_iter,
        names.join(", "),
        a.output.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_parse_and_rest() {
        let (n, g) = parse_groups(&["melody=0,2 noise=1".into()], 5).unwrap();
        assert_eq!(n, ["melody", "noise", "rest"]);
        assert_eq!(g, vec![vec![0, 2], vec![1], vec![3, 4]]);
        let (n, _) = parse_groups(&["a=0".into(), "b=1".into()], 2).unwrap();
        assert_eq!(n, ["a", "b"]);
        assert!(parse_groups(&["a=0,5".into()], 5).is_err());
        assert!(parse_groups(&["a=0 b=0".into()], 5).is_err());
        assert!(parse_groups(&["a=0 a=1".into()], 5).is_err());
        assert!(parse_groups(&["rest=0".into()], 5).is_err());
        assert!(parse_groups(&["../x=0".into()], 5).is_err());
        assert!(parse_groups(&["a".into()], 5).is_err());
    }
}
