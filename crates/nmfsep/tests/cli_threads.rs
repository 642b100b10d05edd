//! `--threads` of `nmfsep learn` and the offline `separate`: every thread count gives the
//! same bits (the fit's frame tiles are cut into chunks that depend on the number of frames
//! only, and their partial sums are added in chunk order), also for over-complete fits,
//! where any thread-dependent rounding would grow over the iterations; and a bad count is
//! refused before any work.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use nmf_core::nmf::Dictionary;

/// Thread counts compared with `--threads 1`.
const THREADS: [&str; 2] = ["2", "3"];

/// `learn` of a training clip with `k` components (tolerance 0: every iteration runs).
fn learn_threads(dir: &Path, source: &str, k: &str, threads: &str) -> PathBuf {
    let out = dir.join(format!("{source}-{k}-{threads}.npz"));
    learn_to(
        &out,
        source,
        &[
            "-k",
            k,
            "--iterations",
            "100",
            "--tol",
            "0",
            "--seed",
            "5",
            "--threads",
            threads,
        ],
    )
}

/// The samples of a 32-bit float WAV file, channel after channel.
fn samples(path: &Path) -> Vec<f32> {
    let (spec, chans) = read_wav(path);
    assert_eq!(spec.sample_format, hound::SampleFormat::Float);
    chans.concat()
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

/// `separate` of the example mix into `dir/NAME`, with `extra` arguments.
fn separate(dir: &Path, name: &str, threads: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(format!("{name}-{threads}"));
    let mix = example("mix.wav").display().to_string();
    let mut args = vec!["separate", &mix, "--iterations", "60", "--threads", threads];
    args.extend_from_slice(extra);
    let o = out.display().to_string();
    args.extend_from_slice(&["-o", &o]);
    ok(&nmfsep(&args));
    out
}

#[test]
fn every_thread_count_gives_the_same_bits() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // 40 templates for a 6 s bass line is over-complete; 12 for the piano is not.
    for (source, k) in [("bass", "40"), ("piano", "12")] {
        let w1 = Dictionary::load(&learn_threads(d, source, k, "1"))
            .unwrap()
            .w;
        for t in THREADS {
            let w = Dictionary::load(&learn_threads(d, source, k, t)).unwrap().w;
            assert_eq!(w.dim(), w1.dim());
            let same = w1.iter().zip(&w).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(
                same,
                "learn {source} -k {k}: W differs between 1 and {t} threads"
            );
        }
    }

    let piano = format!("piano={}", d.join("piano-12-1.npz").display());
    let bass = format!("bass={}", d.join("bass-40-1.npz").display());
    // W fixed (plain), and a rest of 24 templates learned from the mix with the piano's
    // fixed (the semi-supervised fit, over-complete).
    let plain: Vec<&str> = vec!["--source", &piano, "--source", &bass];
    let rest: Vec<&str> = vec![
        "--source",
        &piano,
        "--rest",
        "other",
        "--rest-components",
        "24",
    ];
    for (name, extra, outs) in [
        ("plain", &plain, ["piano", "bass"]),
        ("rest", &rest, ["piano", "other"]),
    ] {
        let one = separate(d, name, "1", extra);
        for t in THREADS {
            let many = separate(d, name, t, extra);
            for s in outs {
                let a = samples(&one.join(format!("{s}.wav")));
                let b = samples(&many.join(format!("{s}.wav")));
                assert!(
                    bits(&a) == bits(&b),
                    "separate {name}: {s}.wav differs between 1 and {t} threads"
                );
            }
        }
    }
}

#[test]
fn bad_thread_counts_are_refused() {
    let train = example("train/piano.wav").display().to_string();
    for (bad, says) in [("0", "not in 1..=1024"), ("two", "not a whole number")] {
        let out = nmfsep(&[
            "learn",
            &train,
            "-o",
            "/nonexistent/x.npz",
            "--threads",
            bad,
        ]);
        assert_eq!(out.status.code(), Some(2), "--threads {bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--threads") && err.contains(says), "{err}");
    }
    let out = nmfsep(&[
        "separate",
        &example("mix.wav").display().to_string(),
        "--source",
        "a=a.npz",
        "--realtime",
        "--threads",
        "2",
        "-o",
        "/nonexistent/out",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));
}
