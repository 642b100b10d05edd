//! `nmfsep learn`: a dictionary from a clip, alone or given the dictionaries of known sources.

use super::*;

pub(super) fn learn(a: &LearnArgs) -> Result<()> {
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
pub(super) fn load_known(paths: &[(String, &Path)]) -> Result<(Dictionary, Option<Vec<f32>>)> {
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
pub(super) fn semi_options(
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
