//! `nmfsep train --discriminative` end to end on examples/piano_bass: the training reports
//! its held-back measurement, a kept set of reconstruction templates lands in the model file
//! as `Wr`, and `separate --model` (offline and `--realtime`) uses them: the outputs differ
//! from the same model without them and still add up to the input.

mod common;

use common::*;
use nmf_core::trained::SeparatorModel;

#[test]
fn discriminative_templates_reach_the_file_and_the_separation() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.npz");
    let out = run_ok(&[
        "train".to_string(),
        "--source".into(),
        format!("piano={}", example("train/piano.wav").display()),
        "--source".into(),
        format!("bass={}", example("train/bass.wav").display()),
        "--shifts".into(),
        "none".into(),
        "--iterations".into(),
        "50".into(),
        "--discriminative".into(),
        "--discriminative-steps".into(),
        "60".into(),
        "-o".into(),
        model.display().to_string(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("discriminative templates: held-back mixtures"),
        "{stdout}"
    );
    let m = SeparatorModel::load(&model).unwrap();
    let record = m
        .settings
        .discriminative
        .clone()
        .expect("the training is recorded");
    assert!(record.steps > 0 && record.steps <= 60);
    assert_eq!(record.kept, m.reconstruction.is_some());
    assert!(
        record.held_back_sdr_after >= record.held_back_sdr_before,
        "{record:?}"
    );
    // The same model with the templates forced in (they are kept only when they help on
    // held-back mixtures, which a short run need not reach) and without them.
    let mut with = m.clone();
    with.reconstruction = Some(m.dictionary.w.mapv(|w| w * 0.5) + 1e-3);
    let with_path = dir.path().join("with.npz");
    with.save(&with_path).unwrap();
    let mut without = m.clone();
    without.reconstruction = None;
    let without_path = dir.path().join("without.npz");
    without.save(&without_path).unwrap();
    let mix = example("mix.wav");
    for realtime in [false, true] {
        let mut outs = Vec::new();
        for (name, path) in [("with", &with_path), ("without", &without_path)] {
            let o = dir.path().join(format!("{name}_{realtime}"));
            let mut args = vec![
                "separate".to_string(),
                mix.display().to_string(),
                "--model".into(),
                path.display().to_string(),
                "-o".into(),
                o.display().to_string(),
            ];
            if realtime {
                args.push("--realtime".into());
            }
            run_ok(&args);
            let files = [o.join("piano.wav"), o.join("bass.wav")];
            let err = sum_error(&mix, &files);
            assert!(err < 1e-4, "{name} realtime {realtime}: sum error {err}");
            outs.push(read_wav(&files[0]).1);
        }
        let diff = outs[0][0]
            .iter()
            .zip(&outs[1][0])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            diff > 1e-3,
            "realtime {realtime}: the templates changed nothing ({diff})"
        );
    }
}
