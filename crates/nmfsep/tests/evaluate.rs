//! BSS Eval v4 against museval 0.4.1 (fixture made by
//! `tests/fixtures/openunmix/make_fixtures.py`), through the library and the command.

use std::path::{Path, PathBuf};
use std::process::Command;

use ndarray::{Array2, Array3};
use ndarray_npy::read_npy;
use nmfsep::evaluate::{bss_eval_v4, nan_median};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/openunmix")
}

/// The fixture's references and estimates, exactly as the script builds them.
fn signals() -> (Vec<Array2<f64>>, Vec<Array2<f64>>) {
    let raw: Array3<i16> = read_npy(fixtures().join("refs.npy")).unwrap();
    let r = raw.mapv(|v| f64::from(v) / 32768.0);
    let (n_src, len, n_c) = r.dim();
    let mut state: u64 = 12345;
    let mut z = Array3::<f64>::zeros((n_src, len, n_c));
    for v in z.iter_mut() {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *v = (state >> 33) as f64 / 2f64.powi(31) - 0.5;
    }
    let refs: Vec<Array2<f64>> = (0..n_src)
        .map(|j| r.index_axis(ndarray::Axis(0), j).to_owned())
        .collect();
    let mut ests = Vec::new();
    for j in 0..n_src {
        let k = (j + 1) % n_src;
        let mut e = Array2::<f64>::zeros((len, n_c));
        for n in 0..len {
            for c in 0..n_c {
                let d = if n >= 3 { r[[j, n - 3, c]] } else { 0.0 };
                e[[n, c]] = r[[j, n, c]] + 0.3 * r[[k, n, c]] + 0.2 * d + 0.02 * z[[j, n, c]];
            }
        }
        ests.push(e);
    }
    ests[1].slice_mut(ndarray::s![35280..44100, ..]).fill(0.0);
    (refs, ests)
}

fn museval() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("museval.json")).unwrap())
        .unwrap()
}

const METRICS: [&str; 4] = ["SDR", "ISR", "SIR", "SAR"];

#[test]
fn matches_museval_frames_and_medians() {
    let (refs, ests) = signals();
    let m = museval();
    let scores = bss_eval_v4(&refs, &ests, 8820, 8820).unwrap();
    let mut worst_frame = 0.0f64;
    let mut worst_median = 0.0f64;
    for (j, s) in scores.iter().enumerate() {
        for (name, ours) in METRICS.iter().zip([&s.sdr, &s.isr, &s.sir, &s.sar]) {
            let frames = m["frames"][name][j].as_array().unwrap();
            assert_eq!(frames.len(), ours.len());
            for (t, (want, got)) in frames.iter().zip(ours.iter()).enumerate() {
                match want.as_f64() {
                    None => assert!(
                        got.is_nan(),
                        "source {j} {name} frame {t}: {got}, museval NaN"
                    ),
                    Some(w) => {
                        worst_frame = worst_frame.max((w - got).abs());
                        assert!(
                            (w - got).abs() <= 0.05,
                            "source {j} {name} frame {t}: {got} vs {w}"
                        );
                    }
                }
            }
            let want = m["median"][name][j].as_f64().unwrap();
            let got = nan_median(ours);
            worst_median = worst_median.max((want - got).abs());
            assert!(
                (want - got).abs() <= 0.01,
                "source {j} {name} median: {got} vs {want}"
            );
        }
    }
    eprintln!(
        "largest difference to museval: frames {worst_frame:.2e} dB, medians {worst_median:.2e} dB"
    );
}

fn write_dir(dir: &Path, names: &[&str], signals: &[Array2<f64>]) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, x) in names.iter().zip(signals) {
        let chans: Vec<Vec<f32>> = x
            .columns()
            .into_iter()
            .map(|c| c.iter().map(|v| *v as f32).collect())
            .collect();
        nmfsep::audio::write_wav_f32(&dir.join(format!("{name}.wav")), 44100, &chans).unwrap();
    }
}

#[test]
fn command_prints_json_close_to_museval() {
    let (refs, ests) = signals();
    let tmp = tempfile::tempdir().unwrap();
    let names = ["bass", "drums", "piano"];
    write_dir(&tmp.path().join("ref"), &names, &refs);
    write_dir(&tmp.path().join("est"), &names, &ests);
    let out = Command::new(env!("CARGO_BIN_EXE_nmfsep"))
        .args(["evaluate", "--json", "--win", "0.2", "--hop", "0.2"])
        .arg(tmp.path().join("ref"))
        .arg(tmp.path().join("est"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let m = museval();
    for (j, name) in names.iter().enumerate() {
        let src = &v["sources"][name];
        assert_eq!(src["frames"].as_array().unwrap().len(), 5);
        assert!(src["frames"][0]["metrics"]["SDR"].is_null());
        for metric in METRICS {
            let got = src["median"][metric].as_f64().unwrap();
            let want = m["median"][metric][j].as_f64().unwrap();
            // The files hold f32 samples, the fixture f64: a little slack.
            assert!(
                (got - want).abs() < 0.02,
                "{name} {metric}: {got} vs {want}"
            );
        }
    }
    // The table form, and a missing estimate named in the error.
    std::fs::remove_file(tmp.path().join("est/piano.wav")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_nmfsep"))
        .arg("evaluate")
        .arg(tmp.path().join("ref"))
        .arg(tmp.path().join("est"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no estimate named piano"));
}
