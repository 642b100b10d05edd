//! `nmfsep separate`: a mixture into the sources of dictionaries (offline or through the
//! real-time engine), optionally with a rest learned from the mixture.

use super::learn::{load_for_rate, semi_options};
use super::*;

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
        let (dict, spectrum) = load_for_rate(sources, audio.sample_rate)?;
        if spectrum.is_none() {
            eprintln!("nmfsep: note: a dictionary has no H_mean (older file): the rest's penalty uses the templates' row sums instead of the clip's mean spectrum; relearn it for better results");
        }

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
    let (known, spectrum) = load_for_rate(sources, audio.sample_rate)?;
    if spectrum.is_none() {
        eprintln!("nmfsep: note: a dictionary has no H_mean (older file): the rest's penalty uses the templates' row sums instead of the clip's mean spectrum; relearn it for better results");
    }

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

pub(super) fn separate(a: &SeparateArgs) -> Result<()> {
    if let Some(model) = &a.model {
        return super::super::separate_model::run(a, model);
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
    if a.realtime {
        SolveRule::check_iterations(iterations).map_err(|e| anyhow!("--iterations: {e}"))?;
    }
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

    let audio = read_input(&a.input)?;
    let (dict, _) = load_for_rate(&sources, audio.sample_rate)?;
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
pub(crate) fn realtime_engine(
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
