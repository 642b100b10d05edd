//! `nmfsep evaluate REFERENCE_DIR ESTIMATE_DIR`: BSS Eval v4 scores (see
//! [`crate::evaluate`]) of each estimate against the reference of the same name.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use ndarray::Array2;
use serde_json::{json, Map, Value};

use super::EvaluateArgs;
use crate::audio::{read_audio_checked, Audio};
use crate::evaluate::{bss_eval_v4, nan_median, windows, SourceScores};

const AUDIO_EXTENSIONS: [&str; 4] = ["wav", "flac", "mp3", "ogg"];

/// Audio files of `dir` by file stem, in name order.
fn audio_files(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let p = e?.path();
        let ext = p
            .extension()
            .and_then(|x| x.to_str())
            .map(str::to_ascii_lowercase);
        if p.is_file() && ext.is_some_and(|x| AUDIO_EXTENSIONS.contains(&x.as_str())) {
            if let Some(stem) = p.file_stem().and_then(|s| s.to_str()) {
                out.push((stem.to_string(), p.clone()));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn read(path: &Path) -> Result<Audio> {
    let (a, warnings) = read_audio_checked(path)?;
    for w in warnings {
        eprintln!("nmfsep: warning: {w}");
    }
    Ok(a)
}

fn to_array(a: &Audio) -> Array2<f64> {
    Array2::from_shape_fn((a.len(), a.n_channels()), |(i, c)| {
        f64::from(a.channels[c][i])
    })
}

fn seconds_to_samples(s: f64, rate: u32, what: &str) -> Result<usize> {
    if !(s.is_finite() && s > 0.0) {
        bail!("--{what} must be a positive number of seconds");
    }
    Ok(((s * f64::from(rate)).round() as usize).max(1))
}

/// Runs `evaluate`.
///
/// # Errors
/// Unreadable folders or files, a reference without an estimate, differing sample rates or
/// channel counts, or references whose distortion filters are undefined.
pub fn run(a: &EvaluateArgs) -> Result<()> {
    let t0 = Instant::now();
    let refs = audio_files(&a.reference)?;
    if refs.is_empty() {
        bail!(
            "{}: no audio files (wav, flac, mp3, ogg)",
            a.reference.display()
        );
    }
    let ests = audio_files(&a.estimate)?;
    let mut names = Vec::new();
    let (mut ref_arrays, mut est_arrays) = (Vec::new(), Vec::new());
    let mut rate = None;
    for (name, rp) in &refs {
        let Some((_, ep)) = ests.iter().find(|(n, _)| n == name) else {
            bail!(
                "{}: no estimate named {name} (for reference {})",
                a.estimate.display(),
                rp.display()
            );
        };
        let r = read(rp)?;
        let e = read(ep)?;
        let want = *rate.get_or_insert(r.sample_rate);
        for (x, p) in [(&r, rp), (&e, ep)] {
            if x.sample_rate != want {
                bail!(
                    "{}: {} Hz, the first reference has {want} Hz",
                    p.display(),
                    x.sample_rate
                );
            }
        }
        if e.n_channels() != r.n_channels() {
            bail!(
                "{}: {} channels, its reference {} has {}",
                ep.display(),
                e.n_channels(),
                rp.display(),
                r.n_channels()
            );
        }
        if let Some(first) = ref_arrays.first() {
            let first: &Array2<f64> = first;
            if r.len() != first.nrows() || r.n_channels() != first.ncols() {
                bail!(
                    "{}: {} samples x {} channels, the first reference has {} x {}",
                    rp.display(),
                    r.len(),
                    r.n_channels(),
                    first.nrows(),
                    first.ncols()
                );
            }
        }
        names.push(name.clone());
        ref_arrays.push(to_array(&r));
        est_arrays.push(to_array(&e));
    }
    for (name, ep) in &ests {
        if !names.contains(name) {
            eprintln!(
                "nmfsep: warning: {} has no reference; not scored",
                ep.display()
            );
        }
    }
    let rate = rate.expect("one reference at least");
    let win = seconds_to_samples(a.win, rate, "win")?;
    let hop = seconds_to_samples(a.hop, rate, "hop")?;
    let scores = bss_eval_v4(&ref_arrays, &est_arrays, win, hop)?;
    let len = ref_arrays[0].nrows();
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&to_json(&names, &scores, len, win, hop, rate))?
        );
    } else {
        print_table(&names, &scores, windows(len, win, hop).len(), a.win);
        println!("({:.1} s)", t0.elapsed().as_secs_f64());
    }
    Ok(())
}

fn metric_map(v: [f64; 4]) -> Value {
    // NaN and infinities have no JSON number: null, as a skipped window.
    let num = |x: f64| if x.is_finite() { json!(x) } else { Value::Null };
    json!({"SDR": num(v[0]), "ISR": num(v[1]), "SIR": num(v[2]), "SAR": num(v[3])})
}

fn medians(s: &SourceScores) -> [f64; 4] {
    [
        nan_median(&s.sdr),
        nan_median(&s.isr),
        nan_median(&s.sir),
        nan_median(&s.sar),
    ]
}

/// `{"sources": {NAME: {"median": {...}, "frames": [{"time", "duration", "metrics"}]}}}`.
fn to_json(
    names: &[String],
    scores: &[SourceScores],
    len: usize,
    win: usize,
    hop: usize,
    rate: u32,
) -> Value {
    let wins = windows(len, win, hop);
    let mut sources = Map::new();
    for (name, s) in names.iter().zip(scores) {
        let frames: Vec<Value> = wins
            .iter()
            .enumerate()
            .map(|(t, &(a, b))| {
                json!({
                    "time": a as f64 / f64::from(rate),
                    "duration": (b - a) as f64 / f64::from(rate),
                    "metrics": metric_map([s.sdr[t], s.isr[t], s.sir[t], s.sar[t]]),
                })
            })
            .collect();
        sources.insert(
            name.clone(),
            json!({"median": metric_map(medians(s)), "frames": frames}),
        );
    }
    json!({ "sources": sources })
}

fn print_table(names: &[String], scores: &[SourceScores], n_win: usize, win_s: f64) {
    let width = names.iter().map(String::len).max().unwrap_or(6).max(6);
    println!("BSS Eval v4, median over {n_win} windows of {win_s} s (dB)");
    println!(
        "{:<width$} {:>8} {:>8} {:>8} {:>8}",
        "source", "SDR", "ISR", "SIR", "SAR"
    );
    for (name, s) in names.iter().zip(scores) {
        let m = medians(s);
        println!(
            "{:<width$} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            name, m[0], m[1], m[2], m[3]
        );
    }
}
