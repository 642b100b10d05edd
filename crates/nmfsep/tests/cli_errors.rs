//! How the `nmfsep` binary refuses what it cannot do: one line on stderr, exit code 2 for a
//! usage error found while parsing and 1 otherwise, and nothing left behind.

mod common;

use std::path::Path;

use common::*;

/// `learn` refuses, in one line and before writing anything, a frame geometry the plugin would
/// refuse (the one rule, `FrameGeometry::new`), and `separate` a source name the routing rule
/// reserves.
#[test]
fn learn_refuses_what_the_plugin_would_refuse() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let s = |p: &Path| p.display().to_string();
    let bass = s(&example("train/bass.wav"));
    let out = s(&d.join("bass.npz"));
    // (hop 0 is refused by the argument parser, `limits::hop`; a hop that does not fit the
    // frame right after parsing: both are usage errors, exit code 2.)
    for (hop, n_fft) in [("500", "2048"), ("1536", "2048"), ("1000", "2048")] {
        let args: Vec<String> = ["learn", &bass, "-o", &out, "--n-fft", n_fft, "--hop", hop]
            .map(String::from)
            .to_vec();
        let msg = fails(d, &args, 2);
        assert!(
            msg.contains(&format!("hop {hop} must divide n_fft {n_fft}")),
            "{msg}"
        );
    }
    let args: Vec<String> = [
        "separate",
        &s(&example("mix.wav")),
        "--source",
        &format!("Mix={out}"),
        "-o",
        &s(&d.join("sep")),
    ]
    .map(String::from)
    .to_vec();
    let msg = fails(d, &args, 1);
    assert!(msg.contains("reserved"), "{msg}");
}

#[test]
fn bad_input_fails_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let s = |p: &Path| p.display().to_string();
    let piano = learn(d, "piano", &["--iterations", "20"]);
    let bass = learn(d, "bass", &["--iterations", "20"]);
    let bass_1024 = d.join("bass_1024.npz");
    ok(&nmfsep(&[
        "learn",
        &s(&example("train/bass.wav")),
        "--components",
        "4",
        "--iterations",
        "10",
        "--n-fft",
        "1024",
        "--hop",
        "256",
        "-o",
        &s(&bass_1024),
    ]));
    let bass_power = d.join("bass_power.npz");
    ok(&nmfsep(&[
        "learn",
        &s(&example("train/bass.wav")),
        "--components",
        "4",
        "--iterations",
        "10",
        "--power",
        "-o",
        &s(&bass_power),
    ]));
    let not_audio = d.join("notes.wav");
    std::fs::write(&not_audio, "this is not audio").unwrap();
    let empty = d.join("empty.wav");
    write_wav(&empty, 44100, &[vec![]]);
    let silent = d.join("silent.wav");
    write_wav(&silent, 44100, &[vec![0.0; 44100]]);
    let (_, mix) = read_wav(&example("mix.wav"));
    let mix_22k = d.join("mix_22k.wav");
    write_wav(&mix_22k, 22050, &mix);
    let a_file = d.join("a_file");
    std::fs::write(&a_file, "x").unwrap();
    let out = s(&d.join("out"));
    let mixp = s(&example("mix.wav"));
    let src = |n: &str, p: &Path| format!("{n}={}", s(p));
    let sep = |input: &str, sources: &[String], o: &str| -> Vec<String> {
        let mut a = vec!["separate".to_string(), input.to_string()];
        for x in sources {
            a.push("--source".into());
            a.push(x.clone());
        }
        a.extend(["-o".into(), o.into(), "--iterations".into(), "5".into()]);
        a
    };
    let both = [src("piano", &piano), src("bass", &bass)];
    let cases: Vec<(Vec<String>, &str)> = vec![
        (sep(&s(&d.join("missing.wav")), &both, &out), "missing.wav"),
        (
            sep(&s(&not_audio), &both, &out),
            "not an audio file this tool reads",
        ),
        (sep(&s(&empty), &both, &out), "no audio samples"),
        (sep(&s(&silent), &both, &out), "silent"),
        (
            sep(
                &mixp,
                &[src("piano", &piano), src("bass", &bass_power)],
                &out,
            ),
            "do not match",
        ),
        (
            sep(
                &mixp,
                &[src("piano", &piano), src("bass", &d.join("nope.npz"))],
                &out,
            ),
            "nope.npz",
        ),
        (
            sep(
                &mixp,
                &[src("piano", &piano), src("bass", &not_audio)],
                &out,
            ),
            "notes.wav",
        ),
        (
            sep(&mixp, &[src("piano", &piano), src("piano", &bass)], &out),
            "twice",
        ),
        (sep(&mixp, &both, &s(&a_file.join("out"))), "a_file"),
        (sep(&mixp, &both, &s(&a_file)), "not a folder"),
        (
            vec![
                "learn".into(),
                s(&silent),
                "-o".into(),
                s(&d.join("x.npz")),
                "--plot".into(),
                s(&d.join("x.png")),
            ],
            "silent",
        ),
        (
            vec![
                "learn".into(),
                s(&example("train/bass.wav")),
                "-o".into(),
                s(&d.join("no_dir/deeper/x.npz")),
            ],
            "does not exist",
        ),
        (
            vec![
                "decompose".into(),
                mixp.clone(),
                "--components".into(),
                "3".into(),
                "-o".into(),
                out.clone(),
                "--group".into(),
                "a=0,3".into(),
            ],
            "out of range",
        ),
        (
            vec![
                "decompose".into(),
                s(&empty),
                "--components".into(),
                "3".into(),
                "-o".into(),
                out.clone(),
            ],
            "no audio samples",
        ),
    ];
    for (args, needle) in &cases {
        let msg = fails(d, args, 1);
        assert!(msg.contains(needle), "{args:?}: {msg:?} lacks {needle:?}");
    }
    // A mixture at another rate, and dictionaries of another FFT size, are mapped (one line
    // says so) and the outputs still add up to the input.
    let mapped = d.join("mapped");
    let run = nmfsep(&sep(
        &s(&mix_22k),
        &[src("piano", &piano), src("bass", &bass_1024)],
        &s(&mapped),
    ));
    ok(&run);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        stdout.contains(
            "piano learned at 44100 Hz with n_fft 2048, mapped to 22050 Hz with n_fft 1024"
        ) && stdout.contains("bass learned at 44100 Hz, mapped to 22050 Hz"),
        "{stdout}"
    );
    let err = sum_error(
        &mix_22k,
        &[mapped.join("piano.wav"), mapped.join("bass.wav")],
    );
    assert!(err < 1e-4, "sum error {err}");
    std::fs::remove_dir_all(&mapped).unwrap();
    // Usage errors: exit code 2 (--block only goes with --realtime).
    fails(
        d,
        &sep(&mixp, &both, &s(&d.join("blk")))
            .into_iter()
            .chain(["--block".into(), "64".into()])
            .collect::<Vec<_>>(),
        2,
    );
    fails(d, &["learn".into(), mixp.clone()], 2);
    let msg = fails(
        d,
        &[
            "learn".into(),
            s(&example("train/bass.wav")),
            "-o".into(),
            s(&d.join("x.npz")),
            "--n-fft".into(),
            "1000".into(),
        ],
        2,
    );
    assert!(msg.contains("n_fft"), "{msg}");
    // An existing output folder is kept and only gets new files on success.
    let existing = d.join("existing");
    std::fs::create_dir(&existing).unwrap();
    fails(d, &sep(&s(&silent), &both, &s(&existing)), 1);
    assert!(existing.is_dir());
}

/// Every size argument is bounded while parsing (exit code 2, one line) and K by the clip
/// (exit code 1): nothing runs for minutes on a typo.
#[test]
fn size_arguments_are_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let s = |p: &Path| p.display().to_string();
    let bass = s(&example("train/bass.wav"));
    let mixp = s(&example("mix.wav"));
    let short = d.join("short.wav");
    let (_, mix) = read_wav(&example("mix.wav"));
    write_wav(&short, 44100, &[mix[0][..8820].to_vec()]);
    let npz = s(&d.join("x.npz"));
    let out = s(&d.join("out"));
    let learn_with = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = vec!["learn".into(), bass.clone(), "-o".into(), npz.clone()];
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    };
    let usage: Vec<(Vec<String>, &str)> = vec![
        (learn_with(&["--components", "100000"]), "1..=4097"),
        (learn_with(&["--components", "0"]), "1..=4097"),
        (learn_with(&["--n-fft", "16384"]), "n_fft"),
        (learn_with(&["--hop", "0"]), "--hop"),
        (learn_with(&["--iterations", "0"]), "--iterations"),
        (learn_with(&["--iterations", "1000000"]), "1..=10000"),
        (
            vec![
                "decompose".into(),
                mixp.clone(),
                "-k".into(),
                "5000".into(),
                "-o".into(),
                out.clone(),
            ],
            "1..=4097",
        ),
        (
            vec![
                "separate".into(),
                mixp.clone(),
                "--source".into(),
                format!("a={npz}"),
                "-o".into(),
                out.clone(),
                "--realtime".into(),
                "--block".into(),
                "100000".into(),
            ],
            "--block",
        ),
        (
            vec![
                "separate".into(),
                mixp.clone(),
                "--source".into(),
                format!("a={npz}"),
                "-o".into(),
                out.clone(),
                "--iterations".into(),
                "0".into(),
            ],
            "--iterations",
        ),
    ];
    for (args, needle) in &usage {
        let msg = fails(d, args, 2);
        assert!(msg.contains(needle), "{args:?}: {msg:?} lacks {needle:?}");
    }
    // 0.2 s at hop 512: 18 frames, so K <= 18.
    let msg = fails(
        d,
        &[
            "learn".into(),
            s(&short),
            "-k".into(),
            "19".into(),
            "-o".into(),
            npz.clone(),
        ],
        1,
    );
    assert!(msg.contains("at most 18"), "{msg}");
    let msg = fails(
        d,
        &[
            "decompose".into(),
            s(&short),
            "-k".into(),
            "40".into(),
            "-o".into(),
            out.clone(),
        ],
        1,
    );
    assert!(msg.contains("at most 18"), "{msg}");
    ok(&nmfsep(&[
        "learn",
        &s(&short),
        "-k",
        "18",
        "--iterations",
        "5",
        "-o",
        &npz,
    ]));
}

/// A WAV file cut short (its header announces 7.0 s, 0.2 s of data follow) is separated
/// from what it holds, with one warning line on stderr; a name that is a valid file name
/// everywhere (`note2_D#4`) works, names that are not are refused.
#[test]
fn truncated_input_and_portable_names() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let s = |p: &Path| p.display().to_string();
    let piano = learn(d, "piano", &["--iterations", "10"]);
    let bass = learn(d, "bass", &["--iterations", "10"]);
    // 44-byte header of a 16-bit mono 44.1 kHz file, then 8820 samples (0.2 s).
    let bytes = std::fs::read(example("mix.wav")).unwrap();
    assert_eq!(&bytes[36..40], b"data");
    let cut = d.join("cut.wav");
    std::fs::write(&cut, &bytes[..44 + 2 * 8820]).unwrap();
    let out = d.join("out");
    let run = nmfsep(&[
        "separate",
        &s(&cut),
        "--source",
        &format!("note2_D#4={}", s(&piano)),
        "--source",
        &format!("Bass (DI)={}", s(&bass)),
        "-o",
        &s(&out),
        "--iterations",
        "5",
    ]);
    ok(&run);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("read 0.2 s of the 7.0 s the header announces"),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    let outs = [out.join("note2_D#4.wav"), out.join("Bass (DI).wav")];
    let (_, y) = read_wav(&outs[0]);
    assert_eq!(y[0].len(), 8820, "every sample of the cut file is used");
    // The same samples in an intact file (hound refuses the cut one).
    let (_, mix) = read_wav(&example("mix.wav"));
    let intact = d.join("intact.wav");
    write_wav(&intact, 44100, &[mix[0][..8820].to_vec()]);
    let err = sum_error(&intact, &outs);
    assert!(err < 1e-4, "sum error {err}");
    // An intact file gives no warning.
    let run = nmfsep(&[
        "separate",
        &s(&example("mix.wav")),
        "--source",
        &format!("p={}", s(&piano)),
        "-o",
        &s(&d.join("out2")),
        "--iterations",
        "2",
    ]);
    ok(&run);
    assert!(
        run.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    for bad in [
        "a:b",
        "CON",
        "nul.x",
        "x.",
        "..",
        "a|b",
        "a/b",
        "tab\there",
        "a*",
    ] {
        let msg = fails(
            d,
            &[
                "separate".into(),
                s(&example("mix.wav")),
                "--source".into(),
                format!("{bad}={}", s(&piano)),
                "-o".into(),
                s(&d.join("bad")),
            ],
            1,
        );
        assert!(
            msg.contains("valid on Linux, macOS and Windows"),
            "{bad:?}: {msg}"
        );
    }
    // Names that differ only in case are one file on macOS and Windows.
    let msg = fails(
        d,
        &[
            "separate".into(),
            s(&example("mix.wav")),
            "--source".into(),
            format!("Piano={}", s(&piano)),
            "--source".into(),
            format!("piano={}", s(&bass)),
            "-o".into(),
            s(&d.join("bad")),
        ],
        1,
    );
    assert!(msg.contains("twice"), "{msg}");
}

/// What a new user meets first: an empty file and a file that is not audio are named as
/// such (not with the decoder's internals), `learn --hop 2048` (a hop as long as the frame)
/// is a usage error (exit code 2) that says why, one learned component is "1 component", and
/// `separate --help` ends with examples and says when `--source` may be left out.
#[test]
fn messages_a_new_user_meets() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let s = |p: &Path| p.display().to_string();
    let npz = s(&d.join("x.npz"));
    let empty = d.join("empty.wav");
    std::fs::write(&empty, b"").unwrap();
    let text = d.join("notes.mp3");
    std::fs::write(&text, "not audio at all").unwrap();
    for (file, says) in [
        (&empty, "is an empty file"),
        (
            &text,
            "is not an audio file this tool reads (WAV, FLAC, MP3, Ogg Vorbis)",
        ),
    ] {
        let msg = fails(d, &["learn".into(), s(file), "-o".into(), npz.clone()], 1);
        assert!(msg.contains(says), "{msg}");
        assert!(!msg.contains("probe"), "decoder internals: {msg}");
    }

    let bass = s(&example("train/bass.wav"));
    let msg = fails(
        d,
        &["learn", &bass, "--hop", "2048", "-o", &npz].map(String::from),
        2,
    );
    assert!(msg.contains("hop 2048 must divide n_fft 2048"), "{msg}");
    assert!(!msg.contains("1..=4096"), "{msg}");

    let out = run_ok(&["learn", &bass, "-k", "1", "--iterations", "5", "-o", &npz]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("learned 1 component "), "{stdout}");

    let help = run_ok(&["separate", "--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("Examples:")
            && help.contains("nmfsep separate mix.wav --source piano=piano.npz"),
        "{help}"
    );
    assert!(
        help.contains("At least one --source is required unless --rest or --model is given"),
        "{help}"
    );
    // And it is so: no --source and no --rest is a usage error.
    let msg = fails(
        d,
        &[
            "separate",
            &s(&example("mix.wav")),
            "-o",
            &s(&d.join("out")),
        ]
        .map(String::from),
        2,
    );
    assert!(msg.contains("--source"), "{msg}");
}
