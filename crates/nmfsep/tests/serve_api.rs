//! `nmfsep serve` over real HTTP: the whole flow on the repository's piano and bass example
//! (stems scored against `nmfsep separate` with dictionaries learned by `nmfsep learn`),
//! every refused input, and the token rule.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::example;
use common::serve::{sdr, Form, Server, EXE};
use nmfsep::audio::read_audio;

fn run_cli(args: &[&std::ffi::OsStr]) {
    let out = Command::new(EXE).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "nmfsep {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn full_flow_matches_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), &[]);
    assert_eq!(server.get("/api/health").status, 200);

    let piano = server.learn("piano", &example("train/piano.wav"));
    let bass = server.learn("bass", &example("train/bass.wav"));
    let list = server.get("/api/dictionaries").json();
    assert_eq!(list.as_array().unwrap().len(), 2);
    let d = server.get(&format!("/api/dictionaries/{piano}")).json();
    assert_eq!(d["name"], "piano");
    assert_eq!(d["components"], 16);

    let r = server.post_form(
        "/api/jobs",
        Form::new()
            .file("mixture", &example("mix.wav"))
            .text("source", &format!("piano={piano}"))
            .text("source", &format!("bass={bass}")),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();

    // The event stream: the job's rows until its final state, progress never going back.
    let events = server.get(&format!("/api/jobs/{id}/events"));
    assert_eq!(events.status, 200);
    assert!(events.content_type.starts_with("text/event-stream"));
    let rows: Vec<serde_json::Value> = events
        .text()
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let last = rows.last().expect("at least one event");
    assert_eq!(last["state"], "done", "{rows:?}");
    let progress: Vec<f64> = rows
        .iter()
        .map(|r| r["progress"].as_f64().unwrap())
        .collect();
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    assert_eq!(*progress.last().unwrap(), 1.0);

    let job = server.wait_job(&id, Duration::from_secs(5));
    assert_eq!(job["stems"], serde_json::json!(["piano", "bass"]));
    let jobs = server.get("/api/jobs").json();
    assert!(jobs
        .as_array()
        .unwrap()
        .iter()
        .any(|j| j["id"] == id.as_str()));

    // The command line with the same settings.
    let cli = tmp.path().join("cli");
    std::fs::create_dir_all(&cli).unwrap();
    for name in ["piano", "bass"] {
        run_cli(&[
            "learn".as_ref(),
            example(&format!("train/{name}.wav")).as_os_str(),
            "-o".as_ref(),
            cli.join(format!("{name}.npz")).as_os_str(),
        ]);
    }
    let s_piano = format!("piano={}", cli.join("piano.npz").display());
    let s_bass = format!("bass={}", cli.join("bass.npz").display());
    run_cli(&[
        "separate".as_ref(),
        example("mix.wav").as_os_str(),
        "-s".as_ref(),
        s_piano.as_ref(),
        "-s".as_ref(),
        s_bass.as_ref(),
        "-o".as_ref(),
        cli.join("out").as_os_str(),
    ]);

    // The service's dictionary file is the command line's format and content.
    let npz = server.get(&format!("/api/dictionaries/{piano}.npz"));
    assert_eq!(npz.status, 200);
    let served = tmp.path().join("served_piano.npz");
    std::fs::write(&served, &npz.body).unwrap();
    let a = nmfsep::nmf::Dictionary::load(&served).unwrap();
    let b = nmfsep::nmf::Dictionary::load(&cli.join("piano.npz")).unwrap();
    assert_eq!(a.w, b.w);

    let mix = read_audio(&example("mix.wav")).unwrap();
    let mut sum = vec![vec![0.0f32; mix.len()]; mix.n_channels()];
    for name in ["piano", "bass"] {
        let r = server.get(&format!("/api/jobs/{id}/stems/{name}.wav"));
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.content_type.starts_with("audio/"), "{}", r.content_type);
        assert_eq!(&r.body[..4], b"RIFF");
        let path = tmp.path().join(format!("served_{name}.wav"));
        std::fs::write(&path, &r.body).unwrap();
        let got = read_audio(&path).unwrap();
        let want = read_audio(&cli.join(format!("out/{name}.wav"))).unwrap();
        let truth = read_audio(&example(&format!("stems/{name}.wav"))).unwrap();
        let (sdr_served, sdr_cli) = (
            sdr(&truth.channels, &got.channels),
            sdr(&truth.channels, &want.channels),
        );
        println!("{name}: SDR served {sdr_served:.3} dB, command line {sdr_cli:.3} dB");
        assert!(
            (sdr_served - sdr_cli).abs() < 0.05,
            "{name}: {sdr_served} vs {sdr_cli}"
        );
        assert!(sdr_served > 0.0, "{name}: {sdr_served}");
        for (s, c) in sum.iter_mut().zip(&got.channels) {
            s.iter_mut().zip(c).for_each(|(a, b)| *a += b);
        }
    }
    let err = sum
        .iter()
        .zip(&mix.channels)
        .flat_map(|(s, m)| s.iter().zip(m).map(|(a, b)| (a - b).abs()))
        .fold(0.0f32, f32::max);
    assert!(err < 1e-4, "stems add up to the mixture within {err}");

    // Range requests (players seek).
    let part = server.get_with(
        &format!("/api/jobs/{id}/stems/bass.wav"),
        &[("Range", "bytes=0-99")],
    );
    assert_eq!(part.status, 206);
    assert_eq!(part.body.len(), 100);

    // The zip holds every stem under its name.
    let z = server.get(&format!("/api/jobs/{id}/stems.zip"));
    assert_eq!(z.status, 200);
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(z.body)).unwrap();
    let mut names: Vec<String> = archive.file_names().map(str::to_string).collect();
    names.sort();
    assert_eq!(names, ["bass.wav", "piano.wav"]);
    let mut entry = archive.by_name("piano.wav").unwrap();
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
    assert_eq!(
        bytes,
        std::fs::read(tmp.path().join("served_piano.wav")).unwrap()
    );
    drop(entry);

    // realtime=true runs the plugin's engine, as `nmfsep separate --realtime`.
    let r = server.post_form(
        "/api/jobs",
        Form::new()
            .file("mixture", &example("mix.wav"))
            .text("source", &format!("piano={piano}"))
            .text("source", &format!("bass={bass}"))
            .text("realtime", "true"),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let rt = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        server.wait_job(&rt, Duration::from_secs(120))["state"],
        "done"
    );
    run_cli(&[
        "separate".as_ref(),
        example("mix.wav").as_os_str(),
        "-s".as_ref(),
        s_piano.as_ref(),
        "-s".as_ref(),
        s_bass.as_ref(),
        "--realtime".as_ref(),
        "-o".as_ref(),
        cli.join("rt").as_os_str(),
    ]);
    for name in ["piano", "bass"] {
        let r = server.get(&format!("/api/jobs/{rt}/stems/{name}.wav"));
        let path = tmp.path().join(format!("served_rt_{name}.wav"));
        std::fs::write(&path, &r.body).unwrap();
        let got = read_audio(&path).unwrap();
        let want = read_audio(&cli.join(format!("rt/{name}.wav"))).unwrap();
        let truth = read_audio(&example(&format!("stems/{name}.wav"))).unwrap();
        let (a, b) = (
            sdr(&truth.channels, &got.channels),
            sdr(&truth.channels, &want.channels),
        );
        println!("{name} (realtime): SDR served {a:.3} dB, command line {b:.3} dB");
        assert!((a - b).abs() < 0.05, "{name}: {a} vs {b}");
    }
    assert_eq!(server.delete(&format!("/api/jobs/{rt}")).status, 204);

    // A dictionary in use by no live job can go; a finished job is deleted with its files.
    assert_eq!(server.delete(&format!("/api/jobs/{id}")).status, 204);
    server.get(&format!("/api/jobs/{id}")).expect_error(404);
    assert!(!tmp.path().join("data/jobs").join(&id).exists());
    assert_eq!(
        server.delete(&format!("/api/dictionaries/{bass}")).status,
        204
    );
    server
        .get(&format!("/api/dictionaries/{bass}"))
        .expect_error(404);
    assert!(file_names(&tmp.path().join("data/tmp")).is_empty());
}

#[test]
fn refuses_bad_input_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = Server::start(&data, &["--max-upload-mb", "1"]);
    let text = b"this is not audio at all, just some text\n".repeat(20);

    // Not audio: 415, nothing created.
    let r = server.post_form(
        "/api/dictionaries",
        Form::new()
            .text("name", "piano")
            .bytes("clip", "clip.wav", text.clone()),
    );
    r.expect_error(415);
    assert_eq!(
        server.get("/api/dictionaries").json(),
        serde_json::json!([])
    );

    // An empty file: 415.
    server
        .post_form(
            "/api/dictionaries",
            Form::new()
                .text("name", "e")
                .bytes("clip", "e.wav", Vec::new()),
        )
        .expect_error(415);

    // Silence: 400.
    let silent = tmp.path().join("silent.wav");
    common::write_wav(&silent, 44100, &[vec![0.0; 44100]]);
    server
        .post_form(
            "/api/dictionaries",
            Form::new().text("name", "s").file("clip", &silent),
        )
        .expect_error(400);

    // Names with a path in them: 400.
    for bad in ["../../etc/x", "a/b", "..", "x\\y", ""] {
        let msg = server
            .post_form(
                "/api/dictionaries",
                Form::new()
                    .text("name", bad)
                    .file("clip", &example("train/piano.wav")),
            )
            .expect_error(400);
        assert!(!msg.is_empty());
    }
    // Over the limit (1 MiB): 413.
    let big = vec![0u8; 3 * 1024 * 1024];
    server
        .post_form(
            "/api/dictionaries",
            Form::new()
                .text("name", "big")
                .bytes("clip", "big.wav", big),
        )
        .expect_error(413);
    assert_eq!(
        server.get("/api/dictionaries").json(),
        serde_json::json!([])
    );

    // Settings the command line refuses: 400 with its reason, no server path in it.
    let msg = server
        .post_form(
            "/api/dictionaries",
            Form::new()
                .text("name", "p")
                .text("components", "0")
                .file("clip", &example("train/piano.wav")),
        )
        .expect_error(400);
    assert!(msg.contains("components") || msg.contains("0"), "{msg}");
    assert!(!msg.contains(&*data.to_string_lossy()), "{msg}");
    let msg = server
        .post_form(
            "/api/dictionaries",
            Form::new()
                .text("name", "p")
                .text("n_fft", "1000")
                .file("clip", &example("train/piano.wav")),
        )
        .expect_error(400);
    assert!(msg.contains("1000"), "{msg}");
    assert_eq!(
        server.get("/api/dictionaries").json(),
        serde_json::json!([])
    );

    let piano = server.learn("piano", &example("train/piano.wav"));
    let mix = example("mix.wav");
    let job = |f: Form| server.post_form("/api/jobs", f);
    job(Form::new()
        .bytes("mixture", "mix.wav", text.clone())
        .text("source", &format!("piano={piano}")))
    .expect_error(415);
    job(Form::new()
        .file("mixture", &mix)
        .text("source", &format!("../../etc/x={piano}")))
    .expect_error(400);
    job(Form::new()
        .file("mixture", &mix)
        .text("source", &format!("piano={piano}"))
        .text("rest", "a/b"))
    .expect_error(400);
    job(Form::new()
        .file("mixture", &mix)
        .text("source", &format!("piano={piano}"))
        .text("rest", "Piano"))
    .expect_error(400);
    job(Form::new()
        .file("mixture", &mix)
        .text("source", "piano=../../dictionaries/x"))
    .expect_error(404);
    job(Form::new()
        .file("mixture", &mix)
        .text("source", &format!("piano={}", "0".repeat(32))))
    .expect_error(404);
    job(Form::new().file("mixture", &mix)).expect_error(400);
    job(Form::new().text("source", &format!("piano={piano}"))).expect_error(400);
    job(Form::new()
        .file("mixture", &mix)
        .text("source", &format!("piano={piano}"))
        .text("realtime", "maybe"))
    .expect_error(400);
    assert_eq!(server.get("/api/jobs").json(), serde_json::json!([]));

    // Unknown ids and routes: 404 with a JSON error.
    let zeros = "0".repeat(32);
    for path in [
        format!("/api/jobs/{zeros}"),
        "/api/jobs/..%2F..%2Fetc".to_string(),
        format!("/api/jobs/{zeros}/stems/piano.wav"),
        format!("/api/jobs/{zeros}/stems.zip"),
        format!("/api/jobs/{zeros}/events"),
        format!("/api/dictionaries/{zeros}"),
        format!("/api/dictionaries/{zeros}.npz"),
        "/api/nothing".to_string(),
    ] {
        server.get(&path).expect_error(404);
    }
    server
        .delete(&format!("/api/jobs/{zeros}"))
        .expect_error(404);

    // Nothing was left behind by the refused uploads.
    assert!(file_names(&data.join("tmp")).is_empty());
    assert!(file_names(&data.join("jobs")).is_empty());
    assert_eq!(file_names(&data.join("dictionaries")).len(), 1);
}

#[test]
fn a_full_queue_answers_429_and_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = Server::start(&data, &["--workers", "1", "--max-queue", "1"]);
    let piano = server.learn("piano", &example("train/piano.wav"));
    let (mut accepted, mut refused) = (Vec::new(), 0);
    for _ in 0..4 {
        let r = server.post_form(
            "/api/jobs",
            Form::new()
                .file("mixture", &example("mix.wav"))
                .text("source", &format!("piano={piano}"))
                .text("rest", "rest"),
        );
        match r.status {
            202 => accepted.push(r.json()["id"].as_str().unwrap().to_string()),
            429 => {
                r.expect_error(429);
                refused += 1;
            }
            s => panic!("status {s}: {}", r.text()),
        }
    }
    assert!(refused >= 1, "4 jobs at once on 1 worker and a queue of 1");
    assert!(accepted.len() >= 2, "{accepted:?}");
    for id in &accepted {
        let j = server.wait_job(id, Duration::from_secs(300));
        assert_eq!(j["state"], "done", "{j}");
    }
    assert_eq!(
        server.get("/api/jobs").json().as_array().unwrap().len(),
        accepted.len()
    );
    assert_eq!(file_names(&data.join("jobs")).len(), accepted.len());
}

#[test]
fn cancel_stops_a_running_job() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let long = tmp.path().join("long.wav");
    common::serve::long_mixture(&long, 12);
    let server = Server::start(&data, &["--workers", "1"]);
    let piano = server.learn("piano", &example("train/piano.wav"));
    let submit = || {
        let r = server.post_form(
            "/api/jobs",
            Form::new()
                .file("mixture", &long)
                .text("source", &format!("piano={piano}"))
                .text("rest", "rest"),
        );
        assert_eq!(r.status, 202, "{}", r.text());
        r.json()["id"].as_str().unwrap().to_string()
    };
    let (a, b) = (submit(), submit());
    // b waits behind a: cancel it while queued, then a while running.
    let r = server.delete(&format!("/api/jobs/{b}"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["state"], "cancelled");
    let t0 = std::time::Instant::now();
    while server.get(&format!("/api/jobs/{a}")).json()["state"] != "running" {
        assert!(t0.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(20));
    }
    let r = server.delete(&format!("/api/jobs/{a}"));
    assert_eq!(r.json()["state"], "cancelled");
    server
        .get(&format!("/api/jobs/{a}/stems.zip"))
        .expect_error(409);
    // A dictionary stays while no live job uses it, then it can go.
    std::thread::sleep(Duration::from_millis(300));
    assert!(!data.join("jobs").join(&a).join("stems.zip").exists());
    assert_eq!(
        server.wait_job(&b, Duration::from_secs(1))["state"],
        "cancelled"
    );
    assert_eq!(
        server.delete(&format!("/api/dictionaries/{piano}")).status,
        204
    );
}

#[test]
fn token_rule() {
    let tmp = tempfile::tempdir().unwrap();
    // Beyond loopback without a token: refused at start, non-zero exit, a clear message.
    let out = Command::new(EXE)
        .args(["serve", "--addr", "0.0.0.0:0", "--data-dir"])
        .arg(tmp.path().join("a"))
        .env_remove("NMFSEP_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("without a token") && err.contains("--token"),
        "{err}"
    );

    // With a token every API call needs it; the page itself does not.
    let server = Server::start(&tmp.path().join("b"), &["--token", "s3cret-token"]);
    let bare = |path: &str, headers: &[(&str, &str)]| {
        let mut r = ureq::get(&server.url(path));
        for (k, v) in headers {
            r = r.set(k, v);
        }
        match r.call() {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(s, r)) => {
                let j: serde_json::Value = r.into_json().unwrap();
                assert!(j["error"].is_string());
                s
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(bare("/api/health", &[]), 401);
    assert_eq!(bare("/api/jobs", &[("Authorization", "Bearer wrong")]), 401);
    assert_eq!(bare("/api/jobs", &[("Authorization", "s3cret-token")]), 401);
    assert_eq!(
        bare("/api/jobs", &[("Authorization", "Bearer s3cret-token")]),
        200
    );
    assert_eq!(bare("/api/jobs?access_token=s3cret-token", &[]), 200);
    assert_eq!(bare("/", &[]), 200);
    assert_eq!(server.get("/api/health").status, 200);
    drop(server);

    // The token may come from NMFSEP_TOKEN, which allows any address.
    let server = Server::start_env(
        &tmp.path().join("c"),
        &["--addr", "0.0.0.0:0"],
        &[("NMFSEP_TOKEN", "from-env")],
    );
    let port = server.base.rsplit(':').next().unwrap().to_string();
    let local = format!("http://127.0.0.1:{port}/api/health");
    let status = |auth: Option<&str>| {
        let mut r = ureq::get(&local);
        if let Some(a) = auth {
            r = r.set("Authorization", a);
        }
        match r.call() {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(s, _)) => s,
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(status(None), 401);
    assert_eq!(status(Some("Bearer from-env")), 200);
}
