//! `--threads` of `nmfsep learn` and the offline `separate`: two threads give the one-thread
//! result within float rounding (learn) or to the bit (separate: with the dictionary fixed
//! nothing is summed across threads), and a bad count is refused before any work.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use nmf_core::nmf::Dictionary;

fn learn_threads(dir: &Path, source: &str, threads: &str) -> PathBuf {
    let out = dir.join(format!("{source}-{threads}.npz"));
    learn_to(
        &out,
        source,
        &["-k", "12", "--iterations", "100", "--threads", threads],
    )
}

/// The samples of a 32-bit float WAV file, channel after channel.
fn samples(path: &Path) -> Vec<f32> {
    let (spec, chans) = read_wav(path);
    assert_eq!(spec.sample_format, hound::SampleFormat::Float);
    chans.concat()
}

#[test]
fn two_threads_match_one() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let w1 = Dictionary::load(&learn_threads(d, "piano", "1")).unwrap().w;
    let w2 = Dictionary::load(&learn_threads(d, "piano", "2")).unwrap().w;
    let scale = w1.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let diff = w1
        .iter()
        .zip(&w2)
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        diff / scale <= 1e-5,
        "learn: W differs by {:e} relative",
        diff / scale
    );

    let bass = learn_threads(d, "bass", "1");
    let piano = d.join("piano-1.npz");
    let mix = example("mix.wav").display().to_string();
    for t in ["1", "2"] {
        ok(&nmfsep(&[
            "separate",
            &mix,
            "--source",
            &format!("piano={}", piano.display()),
            "--source",
            &format!("bass={}", bass.display()),
            "--iterations",
            "60",
            "--threads",
            t,
            "-o",
            &d.join(format!("sep{t}")).display().to_string(),
        ]));
    }
    for s in ["piano", "bass"] {
        let a = samples(&d.join("sep1").join(format!("{s}.wav")));
        let b = samples(&d.join("sep2").join(format!("{s}.wav")));
        assert!(a == b, "separate: {s}.wav differs between 1 and 2 threads");
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
