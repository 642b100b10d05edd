//! Helpers shared by the `nmfsep` binary's tests: the example audio, running the binary,
//! learning a dictionary from an example clip, reading and writing WAV files, and the checks
//! every separation shares (the outputs add up to the input, a failure leaves nothing behind).
#![allow(dead_code)]

pub mod serve;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `examples/<case>/<rel>` at the repository root.
pub fn example_in(case: &str, rel: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .join("examples")
        .join(case)
        .join(rel)
}

/// `examples/piano_bass/<rel>`, the example most tests use.
pub fn example(rel: &str) -> PathBuf {
    example_in("piano_bass", rel)
}

/// Runs the `nmfsep` binary built with these tests and returns its output, whatever its
/// exit code.
pub fn nmfsep<S: AsRef<OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nmfsep"))
        .args(args)
        .output()
        .expect("run nmfsep")
}

/// Fails the test, with the command's stderr and stdout, unless it exited with success.
pub fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "nmfsep failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
}

/// [`nmfsep`] that must succeed ([`ok`]); returns its output.
pub fn run_ok<S: AsRef<OsStr>>(args: &[S]) -> Output {
    let out = nmfsep(args);
    ok(&out);
    out
}

/// Learns `examples/piano_bass/train/<source>.wav` into the file `out` with the options
/// `args`, and checks that the file was written.
pub fn learn_to(out: &Path, source: &str, args: &[&str]) -> PathBuf {
    let train = example(&format!("train/{source}.wav"));
    let mut all: Vec<String> = vec!["learn".into(), train.display().to_string()];
    all.extend(args.iter().map(|s| s.to_string()));
    all.extend(["-o".into(), out.display().to_string()]);
    ok(&nmfsep(&all));
    assert!(out.is_file(), "{out:?} was not written");
    out.to_path_buf()
}

/// Learns `<dir>/<source>.npz` from the example's train clip with K = 16 and beta = 1 (the
/// README's settings), plus the options `extra`.
pub fn learn(dir: &Path, source: &str, extra: &[&str]) -> PathBuf {
    let mut args = vec!["--components", "16", "--beta", "1"];
    args.extend_from_slice(extra);
    learn_to(&dir.join(format!("{source}.npz")), source, &args)
}

/// `channels[channel][sample]` and the spec of a WAV file, full scale +-1.
pub fn read_wav(path: &Path) -> (hound::WavSpec, Vec<Vec<f32>>) {
    let mut r = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let spec = r.spec();
    let n = spec.channels as usize;
    let flat: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => r.samples::<f32>().map(Result::unwrap).collect(),
        hound::SampleFormat::Int => {
            let scale = (1u64 << (spec.bits_per_sample - 1)) as f32;
            r.samples::<i32>()
                .map(|s| s.unwrap() as f32 / scale)
                .collect()
        }
    };
    let chans = (0..n)
        .map(|c| flat.iter().skip(c).step_by(n).copied().collect())
        .collect();
    (spec, chans)
}

/// Writes `chans[channel][sample]` as a 32-bit float WAV file at `rate` Hz.
pub fn write_wav(path: &Path, rate: u32, chans: &[Vec<f32>]) {
    let spec = hound::WavSpec {
        channels: chans.len() as u16,
        sample_rate: rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..chans.first().map_or(0, Vec::len) {
        for c in chans {
            w.write_sample(c[i]).unwrap();
        }
    }
    w.finalize().unwrap();
}

/// ||sum of outputs - input|| / ||input|| over all channels; checks on the way that every
/// output has the input's rate, channels and length and is 32-bit float.
pub fn sum_error(input: &Path, outputs: &[PathBuf]) -> f64 {
    let (ispec, x) = read_wav(input);
    let mut sum = vec![vec![0.0f64; x[0].len()]; x.len()];
    for o in outputs {
        let (spec, y) = read_wav(o);
        assert_eq!(spec.sample_rate, ispec.sample_rate, "{o:?} sample rate");
        assert_eq!(spec.channels, ispec.channels, "{o:?} channels");
        assert_eq!(
            spec.sample_format,
            hound::SampleFormat::Float,
            "{o:?} format"
        );
        assert_eq!(spec.bits_per_sample, 32, "{o:?} bits");
        assert_eq!(y[0].len(), x[0].len(), "{o:?} length");
        for (s, c) in sum.iter_mut().zip(&y) {
            s.iter_mut().zip(c).for_each(|(a, b)| *a += f64::from(*b));
        }
    }
    let (mut num, mut den) = (0.0, 0.0);
    for (s, c) in sum.iter().zip(&x) {
        for (a, b) in s.iter().zip(c) {
            num += (a - f64::from(*b)).powi(2);
            den += f64::from(*b).powi(2);
        }
    }
    (num / den).sqrt()
}

/// Every path under `dir`, sorted (to check that failures leave nothing behind).
pub fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(listing(&p));
        }
        out.push(p);
    }
    out.sort();
    out
}

/// Runs a failing command and checks: exit code `code`, one line `nmfsep: error: ...`, and
/// that the folder `d` is unchanged. Returns the stderr.
pub fn fails(d: &Path, args: &[String], code: i32) -> String {
    let before = listing(d);
    let out = nmfsep(args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(code), "{args:?}: stderr {stderr}");
    assert!(stderr.starts_with("nmfsep: error: "), "{args:?}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    assert_eq!(listing(d), before, "{args:?} left files behind");
    stderr
}
