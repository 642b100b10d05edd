//! Open-Unmix inference against the Python reference (fixtures made by
//! `tests/fixtures/openunmix/make_fixtures.py` with openunmix 1.3.0), and the errors of
//! damaged or mismatched weights.

use std::path::{Path, PathBuf};

use ndarray::{Array2, Array3};
use ndarray_npy::read_npy;
use nmfsep::openunmix::model::OpenUnmix;
use nmfsep::openunmix::pth::{Checkpoint, PthError};
use nmfsep::openunmix::{separate, ModelFolder, SeparatorOptions, WienerOptions};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/openunmix")
}

fn mix() -> Vec<Vec<f32>> {
    let m: Array2<f32> = read_npy(fixtures().join("mix.npy")).unwrap();
    m.rows().into_iter().map(|r| r.to_vec()).collect()
}

/// Largest |ours - python| over targets, channels and samples, relative to the mixture peak.
fn max_error(niter: usize, win: usize, reference: &str) -> f32 {
    let models = ModelFolder::load(
        &fixtures().join("model"),
        &["vocals".into(), "drums".into()],
    )
    .unwrap();
    let input = mix();
    let peak = input.iter().flatten().fold(0.0f32, |m, x| m.max(x.abs()));
    let opts = SeparatorOptions {
        wiener: WienerOptions {
            iterations: niter,
            softmask: false,
            residual: false,
        },
        wiener_win_len: win,
    };
    let ours = separate(&models, &input, &opts, &mut |_| {});
    let py: Array3<f32> = read_npy(fixtures().join(reference)).unwrap();
    assert_eq!(ours.len(), py.shape()[0]);
    let mut err = 0.0f32;
    for (j, (name, chans)) in ours.iter().enumerate() {
        assert_eq!(name, ["vocals", "drums"][j]);
        for (c, ch) in chans.iter().enumerate() {
            assert_eq!(ch.len(), py.shape()[2]);
            for (a, b) in ch.iter().zip(py.slice(ndarray::s![j, c, ..])) {
                err = err.max((a - b).abs());
            }
        }
    }
    err / peak
}

#[test]
fn matches_python_without_em() {
    let e = max_error(0, 300, "sep_niter0.npy");
    eprintln!("niter 0: max error {e:.3e} of the mixture peak");
    assert!(e <= 5e-4, "max error {e} of the mixture peak");
}

#[test]
fn matches_python_with_one_em_iteration_in_blocks() {
    let e = max_error(1, 20, "sep_niter1.npy");
    eprintln!("niter 1: max error {e:.3e} of the mixture peak");
    assert!(e <= 5e-4, "max error {e} of the mixture peak");
}

#[test]
fn folder_lists_targets_and_reads_both_formats() {
    let dir = fixtures().join("model");
    assert_eq!(
        nmfsep::openunmix::folder::list_targets(&dir).unwrap(),
        ["drums", "vocals"]
    );
    let models = ModelFolder::load(&dir, &[]).unwrap();
    assert_eq!(models.targets[0].1.shape.max_bin, 1025);
    assert_eq!(models.targets[1].1.shape.max_bin, 744);
    // The same state dict in the zip and legacy formats reads to the same tensors.
    let zip = Checkpoint::open(&dir.join("vocals-1a2b3c4d.pth")).unwrap();
    let legacy = Checkpoint::open(&fixtures().join("formats/vocals-legacy.pth")).unwrap();
    for (name, shape) in [
        ("fc1.weight", vec![16, 2 * 744]),
        ("lstm.weight_hh_l2_reverse", vec![32, 8]),
        ("bn3.running_var", vec![2 * 1025]),
    ] {
        let a = zip.tensor(name, &shape).unwrap();
        let b = legacy.tensor(name, &shape).unwrap();
        assert_eq!(a, b, "{name}");
        assert!(a.iter().any(|v| *v != 0.0));
    }
}

#[test]
fn residual_adds_up_to_the_mixture_without_em() {
    let models = ModelFolder::load(&fixtures().join("model"), &["vocals".into()]).unwrap();
    let input = mix();
    let opts = SeparatorOptions {
        wiener: WienerOptions {
            iterations: 0,
            softmask: true,
            residual: true,
        },
        wiener_win_len: 300,
    };
    let out = separate(&models, &input, &opts, &mut |_| {});
    assert_eq!(out[1].0, "residual");
    let mut err = 0.0f32;
    for (c, x) in input.iter().enumerate() {
        for (i, v) in x.iter().enumerate() {
            err = err.max((out[0].1[c][i] + out[1].1[c][i] - v).abs());
        }
    }
    assert!(err < 1e-5, "sum differs from the mixture by {err}");
}

fn copy_model(to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(fixtures().join("model")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
    }
}

#[test]
fn damaged_weights_give_errors_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    for name in ["vocals-1a2b3c4d.pth", "drums-5e6f7a8b.pth"] {
        let bytes = std::fs::read(fixtures().join("model").join(name)).unwrap();
        // Cut short at several points, and with a stretch of bytes overwritten.
        let mut cases: Vec<Vec<u8>> = [0.0, 0.01, 0.3, 0.5, 0.9, 0.999]
            .iter()
            .map(|f| bytes[..(bytes.len() as f64 * f) as usize].to_vec())
            .collect();
        for at in [0.02, 0.4, 0.97] {
            let mut b = bytes.clone();
            let s = (b.len() as f64 * at) as usize;
            for x in &mut b[s..(s + 64).min(bytes.len())] {
                *x ^= 0x5a;
            }
            cases.push(b);
        }
        for (k, case) in cases.iter().enumerate() {
            let p = tmp.path().join(format!("{k}-{name}"));
            std::fs::write(&p, case).unwrap();
            let nb = 1025;
            let hidden = 16;
            match OpenUnmix::load(&p, nb, 2, hidden) {
                Err(e) => {
                    let msg = e.to_string();
                    assert!(msg.contains(&p.display().to_string()), "{msg}");
                }
                // An overwritten stretch inside a tensor's values can read as other numbers.
                Ok(_) => assert!(k >= 6, "case {k} of {name} loaded"),
            }
        }
    }
}

#[test]
fn missing_tensor_and_wrong_shape_are_named() {
    let e = OpenUnmix::load(&fixtures().join("formats/missing.pth"), 1025, 2, 16).unwrap_err();
    assert!(matches!(&e, PthError::Missing { .. }), "{e}");
    assert!(
        e.to_string().contains("missing.pth") && e.to_string().contains("is missing"),
        "{e}"
    );
    // The folder's JSON says hidden 32 while the weights have 16.
    let tmp = tempfile::tempdir().unwrap();
    copy_model(tmp.path());
    let json = tmp.path().join("vocals.json");
    let text = std::fs::read_to_string(&json)
        .unwrap()
        .replace("\"hidden_size\": 16", "\"hidden_size\": 32");
    std::fs::write(&json, text).unwrap();
    let e = ModelFolder::load(tmp.path(), &["vocals".into()]).unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.contains("vocals-1a2b3c4d.pth")
            && msg.contains("fc1.weight")
            && msg.contains("[16, 1488]"),
        "{msg}"
    );
    let e = ModelFolder::load(tmp.path(), &["bass".into()]).unwrap_err();
    assert!(format!("{e:#}").contains("no target \"bass\""), "{e:#}");
}
