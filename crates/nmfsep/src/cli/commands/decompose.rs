//! `nmfsep decompose`: unsupervised NMF of a mixture, one output per component or group.

use super::*;

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

pub(super) fn decompose(a: &DecomposeArgs) -> Result<()> {
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
        "decomposed {} ({:.1} s, {} Hz, {} ch) into {}, {} iterations, outputs {} -> {} ({:.1} s)",
        a.input.display(),
        audio.duration_s(),
        audio.sample_rate,
        audio.n_channels(),
        count(k, "component"),
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
