//! `nmfsep serve` killed with SIGKILL in the middle of a job and restarted on the same data
//! folder: every finished job is still listed with its stems, the interrupted one ends
//! `failed` with a reason, and its separation process died with the server.

mod common;

use std::time::{Duration, Instant};

use common::example;
use common::serve::{long_mixture, Form, Server};

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            if String::from_utf8_lossy(&cmd).contains(needle) {
                found.push(pid);
            }
        }
    }
    found
}

#[test]
fn sigkill_mid_job_then_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let long = tmp.path().join("long.wav");
    long_mixture(&long, 20);

    let mut server = Server::start(&data, &["--workers", "1"]);
    // One server per data folder: a second one is refused with a clear message.
    let second = std::process::Command::new(common::serve::EXE)
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("another nmfsep serve"), "{err}");
    let piano = server.learn("piano", &example("train/piano.wav"));
    let bass = server.learn("bass", &example("train/bass.wav"));
    let submit = |server: &Server, mix: &std::path::Path| {
        let r = server.post_form(
            "/api/jobs",
            Form::new()
                .file("mixture", mix)
                .text("source", &format!("piano={piano}"))
                .text("source", &format!("bass={bass}"))
                .text("rest", "rest"),
        );
        assert_eq!(r.status, 202, "{}", r.text());
        r.json()["id"].as_str().unwrap().to_string()
    };
    let finished = submit(&server, &example("mix.wav"));
    assert_eq!(
        server.wait_job(&finished, Duration::from_secs(120))["state"],
        "done"
    );
    let before = server
        .get(&format!("/api/jobs/{finished}/stems/piano.wav"))
        .body;

    let running = submit(&server, &long);
    let queued = submit(&server, &long);
    let t0 = Instant::now();
    while server.get(&format!("/api/jobs/{running}")).json()["state"] != "running" {
        assert!(t0.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(20));
    }
    // Let the separation process get going, then kill the server.
    std::thread::sleep(Duration::from_millis(300));
    let marker = data.join("jobs").join(&running);
    assert!(
        !processes_mentioning(&marker.to_string_lossy()).is_empty(),
        "the separation process runs"
    );
    server.kill();
    let t0 = Instant::now();
    while !processes_mentioning(&marker.to_string_lossy()).is_empty() {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the separation process outlived the server"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let server = Server::start(&data, &["--workers", "1"]);
    let jobs = server.get("/api/jobs").json();
    assert_eq!(jobs.as_array().unwrap().len(), 3, "{jobs}");
    let f = server.get(&format!("/api/jobs/{finished}")).json();
    assert_eq!(f["state"], "done");
    assert_eq!(f["stems"], serde_json::json!(["piano", "bass", "rest"]));
    let after = server.get(&format!("/api/jobs/{finished}/stems/piano.wav"));
    assert_eq!(after.status, 200);
    assert_eq!(after.body, before);
    assert_eq!(
        server
            .get(&format!("/api/jobs/{finished}/stems.zip"))
            .status,
        200
    );
    for id in [&running, &queued] {
        let j = server.get(&format!("/api/jobs/{id}")).json();
        assert_eq!(j["state"], "failed", "{j}");
        assert!(j["error"].as_str().unwrap().contains("interrupted"), "{j}");
        server
            .get(&format!("/api/jobs/{id}/stems/piano.wav"))
            .expect_error(409);
    }
    // The service goes on: the dictionaries survived and a new job runs to the end.
    assert_eq!(
        server
            .get("/api/dictionaries")
            .json()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let again = submit(&server, &example("mix.wav"));
    assert_eq!(
        server.wait_job(&again, Duration::from_secs(120))["state"],
        "done"
    );
    // A failed job is deleted with its files.
    assert_eq!(server.delete(&format!("/api/jobs/{running}")).status, 204);
    assert!(!marker.exists());
}
