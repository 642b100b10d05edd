//! End-to-end tests of the `nmfsep` binary on examples/piano_bass: learn, separate (offline
//! and `--realtime`) and decompose give outputs that add up to the input, in mono and stereo,
//! and supervised separation reaches its quality threshold.

mod common;

use std::path::PathBuf;

use common::*;
use nmf_core::metrics::si_sdr;

#[test]
fn learn_separate_decompose_sum_to_input() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let piano = learn(
        d,
        "piano",
        &[
            "--iterations",
            "50",
            "--plot",
            &d.join("piano.png").display().to_string(),
        ],
    );
    let bass = learn(d, "bass", &["--iterations", "50"]);
    let png = std::fs::read(d.join("piano.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");

    let mix = example("mix.wav");
    let sep = d.join("sep");
    ok(&nmfsep(&[
        "separate".as_ref(),
        mix.as_os_str(),
        "--source".as_ref(),
        format!("piano={}", piano.display()).as_ref(),
        "--source".as_ref(),
        format!("bass={}", bass.display()).as_ref(),
        "-o".as_ref(),
        sep.as_os_str(),
        "--iterations".as_ref(),
        "50".as_ref(),
    ]));
    let outs = vec![sep.join("piano.wav"), sep.join("bass.wav")];
    let err = sum_error(&mix, &outs);
    assert!(err < 1e-4, "separate: sum error {err}");
    assert_eq!(listing(&sep).len(), 2);

    // The plugin's engine over the file, in odd host blocks: latency-compensated outputs of
    // the input's length that add up to it.
    let rt = d.join("rt");
    ok(&nmfsep(&[
        "separate".as_ref(),
        mix.as_os_str(),
        "--source".as_ref(),
        format!("piano={}", piano.display()).as_ref(),
        "--source".as_ref(),
        format!("bass={}", bass.display()).as_ref(),
        "-o".as_ref(),
        rt.as_os_str(),
        "--realtime".as_ref(),
        "--block".as_ref(),
        "37".as_ref(),
    ]));
    let outs = vec![rt.join("piano.wav"), rt.join("bass.wav")];
    let err = sum_error(&mix, &outs);
    assert!(err < 1e-4, "separate --realtime: sum error {err}");

    let dec = d.join("dec");
    ok(&nmfsep(&[
        "decompose".as_ref(),
        mix.as_os_str(),
        "--components".as_ref(),
        "4".as_ref(),
        "--beta".as_ref(),
        "1".as_ref(),
        "-o".as_ref(),
        dec.as_os_str(),
        "--group".as_ref(),
        "melody=0,2 noise=1".as_ref(),
        "--iterations".as_ref(),
        "50".as_ref(),
        "--plot".as_ref(),
        d.join("dec.png").as_os_str(),
    ]));
    let outs: Vec<PathBuf> = ["melody", "noise", "rest"]
        .iter()
        .map(|n| dec.join(format!("{n}.wav")))
        .collect();
    let err = sum_error(&mix, &outs);
    assert!(err < 1e-4, "decompose --group: sum error {err}");
    assert_eq!(listing(&dec).len(), 3);
    assert!(d.join("dec.png").is_file());

    // Without --group: one file per component.
    let comp = d.join("comp");
    ok(&nmfsep(&[
        "decompose".as_ref(),
        mix.as_os_str(),
        "--components".as_ref(),
        "3".as_ref(),
        "-o".as_ref(),
        comp.as_os_str(),
        "--iterations".as_ref(),
        "30".as_ref(),
    ]));
    let outs: Vec<PathBuf> = (0..3)
        .map(|i| comp.join(format!("component_{i}.wav")))
        .collect();
    let err = sum_error(&mix, &outs);
    assert!(err < 1e-4, "decompose: sum error {err}");

    // No temporary entries left anywhere.
    assert!(
        listing(d).iter().all(|p| !p
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(".nmfsep")),
        "{:?}",
        listing(d)
    );
}

#[test]
fn stereo_separation_keeps_channels_and_sums() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let piano = learn(d, "piano", &["--iterations", "30"]);
    let bass = learn(d, "bass", &["--iterations", "30"]);
    // Piano left, bass right, some of each in both.
    let (_, p) = read_wav(&example("stems/piano.wav"));
    let (_, b) = read_wav(&example("stems/bass.wav"));
    let left: Vec<f32> = p[0].iter().zip(&b[0]).map(|(x, y)| x + 0.3 * y).collect();
    let right: Vec<f32> = p[0].iter().zip(&b[0]).map(|(x, y)| 0.3 * x + y).collect();
    let mix = d.join("stereo.wav");
    write_wav(&mix, 44100, &[left, right]);
    for mode in ["shared", "independent"] {
        let out = d.join(format!("sep_{mode}"));
        ok(&nmfsep(&[
            "separate".as_ref(),
            mix.as_os_str(),
            "--source".as_ref(),
            format!("piano={}", piano.display()).as_ref(),
            "--source".as_ref(),
            format!("bass={}", bass.display()).as_ref(),
            "-o".as_ref(),
            out.as_os_str(),
            "--iterations".as_ref(),
            "30".as_ref(),
            "--channels".as_ref(),
            mode.as_ref(),
        ]));
        let err = sum_error(&mix, &[out.join("piano.wav"), out.join("bass.wav")]);
        assert!(err < 1e-4, "{mode}: sum error {err}");
    }
}

/// Supervised separation quality on examples/piano_bass (first 7 s of bench case
/// A_piano_bass; dictionaries from the first 6 s of its train/ clips), K = 16 per source,
/// beta = 1, 200 iterations, Wiener masks p = 2.
///
/// Measured SI-SDR (this code, `cargo test` dev profile, deterministic seed 0): piano 8.52 dB,
/// bass 7.73 dB. Thresholds are about 1 dB below. (For scale: the scikit-learn supervised baseline scores a median BSS-eval SDR
/// of 7.9 dB on the full 12 s case.)
#[test]
fn supervised_separation_quality() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let piano = learn(d, "piano", &["--iterations", "200"]);
    let bass = learn(d, "bass", &["--iterations", "200"]);
    let mix = example("mix.wav");
    let sep = d.join("sep");
    ok(&nmfsep(&[
        "separate".as_ref(),
        mix.as_os_str(),
        "--source".as_ref(),
        format!("piano={}", piano.display()).as_ref(),
        "--source".as_ref(),
        format!("bass={}", bass.display()).as_ref(),
        "-o".as_ref(),
        sep.as_os_str(),
    ]));
    let mut report = Vec::new();
    for (name, threshold) in [("piano", 7.5), ("bass", 6.7)] {
        let (_, est) = read_wav(&sep.join(format!("{name}.wav")));
        let (_, reference) = read_wav(&example(&format!("stems/{name}.wav")));
        let v = si_sdr(&reference[0], &est[0]);
        eprintln!("SI-SDR {name}: {v:.2} dB");
        report.push((name, v, threshold));
    }
    for (name, v, threshold) in report {
        assert!(v > threshold, "{name}: SI-SDR {v:.2} dB <= {threshold} dB");
    }
}

/// `learn -o` creates a missing output folder as `separate -o` does (its parent must exist).
#[test]
fn learn_creates_a_missing_output_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("fresh").join("bass.npz");
    ok(&nmfsep(&[
        "learn".to_string(),
        example("train/bass.wav").display().to_string(),
        "--components".into(),
        "4".into(),
        "--iterations".into(),
        "20".into(),
        "-o".into(),
        out.display().to_string(),
    ]));
    assert!(out.is_file());
    let names: Vec<_> = std::fs::read_dir(tmp.path().join("fresh"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["bass.npz"], "no staging file is left behind");
}
