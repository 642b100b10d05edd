//! `nmfsep separate --model DIR` end to end on the Open-Unmix fixture model.

mod common;

use std::path::{Path, PathBuf};

use common::nmfsep;
use ndarray::{Array2, Array3};
use ndarray_npy::read_npy;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/openunmix")
}

fn mix() -> Vec<Vec<f32>> {
    let m: Array2<f32> = read_npy(fixtures().join("mix.npy")).unwrap();
    m.rows().into_iter().map(|r| r.to_vec()).collect()
}

#[test]
fn separates_a_stereo_file_like_python() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("mix.wav");
    let x = mix();
    nmfsep::audio::write_wav_f32(&input, 44100, &x).unwrap();
    let out = tmp.path().join("out");
    let model = fixtures().join("model");
    let o = nmfsep(&[
        "separate",
        input.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--wiener-win-len",
        "20",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let py: Array3<f32> = read_npy(fixtures().join("sep_niter1.npy")).unwrap();
    let peak = x.iter().flatten().fold(0.0f32, |m, v| m.max(v.abs()));
    for (j, name) in ["vocals", "drums"].iter().enumerate() {
        let a = nmfsep::audio::read_audio(&out.join(format!("{name}.wav"))).unwrap();
        assert_eq!(
            (a.sample_rate, a.n_channels(), a.len()),
            (44100, 2, x[0].len())
        );
        for c in 0..2 {
            let err = a.channels[c]
                .iter()
                .zip(py.slice(ndarray::s![j, c, ..]))
                .fold(0.0f32, |m, (p, q)| m.max((p - q).abs()));
            assert!(err <= 5e-4 * peak, "{name} channel {c}: {err}");
        }
    }
}

#[test]
fn mono_input_at_another_rate_keeps_its_format() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("mono.wav");
    let x = mix();
    let mono: Vec<f32> = x[0].iter().zip(&x[1]).map(|(l, r)| 0.5 * (l + r)).collect();
    nmfsep::audio::write_wav_f32(&input, 48000, std::slice::from_ref(&mono)).unwrap();
    let out = tmp.path().join("out");
    let model = fixtures().join("model");
    let o = nmfsep(&[
        "separate",
        input.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--targets",
        "vocals",
        "--residual",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("resampling"));
    for name in ["vocals", "residual"] {
        let a = nmfsep::audio::read_audio(&out.join(format!("{name}.wav"))).unwrap();
        assert_eq!(
            (a.sample_rate, a.n_channels(), a.len()),
            (48000, 1, mono.len())
        );
        assert!(a.peak() > 0.0 && a.peak().is_finite());
    }
    assert!(!out.join("drums.wav").exists());
}

#[test]
fn model_paths_are_told_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("mix.wav");
    nmfsep::audio::write_wav_f32(&input, 44100, &mix()).unwrap();
    let out = tmp.path().join("out");
    let run = |model: &Path| {
        nmfsep(&[
            "separate",
            input.to_str().unwrap(),
            "--model",
            model.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ])
    };
    let file = fixtures().join("model/vocals.json");
    let o = run(&file);
    assert_eq!(o.status.code(), Some(1));
    // A file is read as a trained NMF model (`nmfsep train`), which a JSON file is not.
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not an nmf-separator dictionary"));
    let o = run(tmp.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no separator.json"));
    assert!(!out.exists());
    // Open-Unmix options need --model.
    let o = nmfsep(&[
        "separate",
        input.to_str().unwrap(),
        "--niter",
        "2",
        "-s",
        "a=b.npz",
        "-o",
        "x",
    ]);
    assert_eq!(o.status.code(), Some(2));
}
