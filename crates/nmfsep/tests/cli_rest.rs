//! `nmfsep separate --rest` and `learn --given` end to end on examples/piano_bass, and the
//! real-time solver's iteration bound.

mod common;

use common::*;

/// `separate --rest`: the known source's output plus the rest add up to the input (through
/// the real binary); `--rest` alone gives the input back; `learn --given` writes only the new
/// components with the new label; `--realtime --rest` says it is not yet available.
#[test]
fn rest_source_sums_to_input_and_learn_given() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let piano = learn(d, "piano", &["--iterations", "30"]);
    let mix = example("mix.wav");
    let out = d.join("out");
    let args: Vec<String> = vec![
        "separate".into(),
        mix.display().to_string(),
        "--source".into(),
        format!("piano={}", piano.display()),
        "--rest".into(),
        "bass".into(),
        "--rest-components".into(),
        "8".into(),
        "--iterations".into(),
        "20".into(),
        "-o".into(),
        out.display().to_string(),
    ];
    ok(&nmfsep(&args));
    let err = sum_error(&mix, &[out.join("piano.wav"), out.join("bass.wav")]);
    assert!(
        err < 1e-5,
        "outputs differ from the input by {err:e} relative"
    );

    let alone = d.join("alone");
    ok(&nmfsep(&[
        "separate".to_string(),
        mix.display().to_string(),
        "--rest".into(),
        "all".into(),
        "-o".into(),
        alone.display().to_string(),
    ]));
    assert!(sum_error(&mix, &[alone.join("all.wav")]) < 1e-6);

    let rest = d.join("rest.npz");
    ok(&nmfsep(&[
        "learn".to_string(),
        mix.display().to_string(),
        "--given".into(),
        piano.display().to_string(),
        "-k".into(),
        "4".into(),
        "--iterations".into(),
        "20".into(),
        "--name".into(),
        "bass".into(),
        "-o".into(),
        rest.display().to_string(),
    ]));
    let dict = nmf_core::nmf::Dictionary::load(&rest).unwrap();
    assert_eq!(dict.n_components(), 4);
    assert!(dict.labels.iter().all(|l| l == "bass"));

    // The live path (--realtime): the outputs add up to the input too.
    let mut rt = args.clone();
    let live = d.join("live");
    *rt.last_mut().unwrap() = live.display().to_string();
    rt.push("--realtime".into());
    ok(&nmfsep(&rt));
    let err = sum_error(&mix, &[live.join("piano.wav"), live.join("bass.wav")]);
    assert!(
        err < 1e-5,
        "live outputs differ from the input by {err:e} relative"
    );
}

/// `separate --realtime --iterations N` runs N iterations per frame at most, and refuses N
/// above the real-time solver's bound (it once clamped 500 to 200 and reported 500).
#[test]
fn realtime_iterations_run_as_given_or_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let piano = learn(d, "piano", &[]);
    let bass = learn(d, "bass", &[]);
    let mix = example("mix.wav").display().to_string();
    let sources = [
        "--source".to_string(),
        format!("piano={}", piano.display()),
        "--source".to_string(),
        format!("bass={}", bass.display()),
    ];
    let mut args: Vec<String> = vec!["separate".into(), mix.clone()];
    args.extend(sources.iter().cloned());
    let refused = [
        "--realtime",
        "--iterations",
        "500",
        "-o",
        &d.join("o500").display().to_string(),
    ]
    .map(String::from);
    let mut bad = args.clone();
    bad.extend(refused);
    let stderr = fails(d, &bad, 1);
    assert!(
        stderr.contains("1 to 50") && stderr.contains("500"),
        "{stderr}"
    );

    let mut good = args.clone();
    good.extend(
        [
            "--realtime",
            "--solver",
            "flat+me",
            "--iterations",
            "3",
            "-o",
            &d.join("o3").display().to_string(),
        ]
        .map(String::from),
    );
    let out = nmfsep(&good);
    ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("(3 iterations per frame"), "{stdout}");
}

/// `separate --rest` (offline and `--realtime`) and `learn --given` map a dictionary learned
/// at another sample rate as plain `separate` does (they once refused it).
#[test]
fn rest_and_given_map_a_dictionary_of_another_rate() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let piano = learn(d, "piano", &[]);
    // The mixture and the bass clip as if recorded at 48 kHz (the same samples, another rate).
    let (_, mix) = read_wav(&example("mix.wav"));
    let mix48 = d.join("mix48.wav");
    write_wav(&mix48, 48_000, &mix);
    let (_, bass) = read_wav(&example("train/bass.wav"));
    let bass48 = d.join("bass48.wav");
    write_wav(&bass48, 48_000, &bass);
    for realtime in [false, true] {
        let out_dir = d.join(format!("rest-{realtime}"));
        let mut args: Vec<String> = vec![
            "separate".into(),
            mix48.display().to_string(),
            "--source".into(),
            format!("piano={}", piano.display()),
            "--rest".into(),
            "bass".into(),
            "-o".into(),
            out_dir.display().to_string(),
        ];
        if realtime {
            args.push("--realtime".into());
        }
        let out = nmfsep(&args);
        ok(&out);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("piano learned at 44100 Hz, mapped to 48000 Hz"),
            "{stdout}"
        );
        let outputs = [out_dir.join("piano.wav"), out_dir.join("bass.wav")];
        let e = sum_error(&mix48, &outputs);
        assert!(
            e < 1e-4,
            "--rest (realtime {realtime}) outputs add up within {e}"
        );
    }
    let given = d.join("bass-given.npz");
    let out = nmfsep(&[
        "learn".to_string(),
        bass48.display().to_string(),
        "--given".into(),
        piano.display().to_string(),
        "--components".into(),
        "8".into(),
        "-o".into(),
        given.display().to_string(),
    ]);
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("mapped to 48000 Hz"));
    let dict = nmf_core::nmf::Dictionary::load(&given).unwrap();
    assert_eq!(dict.sample_rate, 48_000);
    assert_eq!(dict.n_components(), 8);
}
