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
        "learned {} labelled {label:?} from {} ({:.1} s, {} Hz, {} ch) in {} iterations, cost {:.4e} -> {} ({:.1} s)",
        count(a.components, "component"),
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

/// Loads the dictionaries of `paths` (name, file) for audio at `sample_rate` Hz, labels each
/// one's components with its name and joins them: every dictionary is mapped onto the frame
/// length the first takes at that rate (the core's one rule, [`Dictionary::for_stft`] and
/// [`Dictionary::n_fft_for`]) and must then be [compatible](Dictionary::compatible_with) with
/// the first. Prints one line naming every mapped dictionary. Also returns the known sources'
/// mean spectrum `W @ H_mean` (n_bins, on the mapped templates), or `None` if a file has no
/// `H_mean`.
pub(super) fn load_for_rate(
    paths: &[(String, &Path)],
    sample_rate: u32,
) -> Result<(Dictionary, Option<Vec<f32>>)> {
    let mut dicts: Vec<Dictionary> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut spectrum: Option<Vec<f32>> = Some(Vec::new());
    for (name, path) in paths {
        let loaded = Dictionary::load(path)?;
        let n_fft = dicts
            .first()
            .map_or_else(|| loaded.n_fft_for(sample_rate), |f| f.n_fft);
        let (mut d, note) = loaded.for_stft(sample_rate, n_fft)?;
        if let Some(note) = note {
            notes.push(format!("{name} {note}"));
        }
        d.labels.iter_mut().for_each(|l| l.clone_from(name));
        if let Some(first) = dicts.first() {
            if let Err(e) = first.compatible_with(&d) {
                bail!(
                    "{} and {} do not match: {e}",
                    paths[0].1.display(),
                    path.display()
                );
            }
        }
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
    if !notes.is_empty() {
        println!(
            "mapped dictionaries to the input's STFT: {}",
            notes.join("; ")
        );
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
    let audio = read_input(&a.input)?;
    let (known, spectrum) = load_for_rate(&given, audio.sample_rate)?;
    if a.fit.iterations == 0 {
        bail!("--iterations must be at least 1");
    }
    let mut opts = semi_options(
        a.components,
        known.beta,
        a.fit.iterations,
        nmf::semi::OVERLAP_WEIGHT,
    )?;
    opts.seed = a.fit.seed;
    opts.release_iter = 0;
    let (dict, h_mean, fact) = with_progress(a.fit.iterations, |observer| {
        dsp::learn::learn_given(
            &audio.mono(),
            &known,
            spectrum
                .as_ref()
                .map(|s| ndarray::ArrayView1::from(s.as_slice())),
            &opts,
            label,
            observer,
        )
    })?;
    dict.save_with_activation_means(out.tmp(), Some(&h_mean))?;
    out.commit()?;
    println!(
        "learned {} labelled {label:?} from {} ({:.1} s) given {} fixed, {} iterations, cost {:.4e} -> {} ({:.1} s)",
        count(a.components, "component"),
        a.input.display(),
        audio.duration_s(),
        count(known.n_components(), "component"),
        fact.n_iter,
        fact.cost.last().map_or(f64::NAN, |c| c.cost),
        a.output.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}
