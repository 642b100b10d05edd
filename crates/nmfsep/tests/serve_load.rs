//! A bounded load test of `nmfsep serve` on loopback (ignored by default; the figures go to
//! the benchmarks, not into assertions): 20 job submissions at once, then 100 status polls
//! per second for 30 s. Every job must end `done` or have been refused with 429, and none
//! may be lost. Prints the peak memory of the server and of its separation processes and
//! the status latency percentiles.
//!
//! `cargo test -p nmfsep --test serve_load -- --ignored --nocapture`

mod common;

use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use common::example;
use common::serve::{Form, Server};

/// Resident set of process `pid` now and its peak (VmRSS, VmHWM), KiB.
fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Sum of the resident sets of the children of `pid`, KiB.
fn children_rss_kib(pid: u32) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // Fields after the command name in parentheses: state, ppid, ...
        let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let ppid: u32 = after
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if ppid == pid {
            total += rss_kib(child).map_or(0, |(now, _)| now);
        }
    }
    total
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[test]
#[ignore = "a load test of about 40 s; run with --ignored"]
fn twenty_jobs_and_status_polls() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Arc::new(Server::start(&tmp.path().join("data"), &[]));
    let pid = server.child.id();
    let piano = server.learn("piano", &example("train/piano.wav"));
    let bass = server.learn("bass", &example("train/bass.wav"));

    let sampling = Arc::new(Mutex::new((0u64, 0u64, true)));
    let sampler = {
        let s = sampling.clone();
        std::thread::spawn(move || loop {
            let (server_now, _) = rss_kib(pid).unwrap_or((0, 0));
            let children = children_rss_kib(pid);
            let mut g = s.lock().unwrap();
            g.0 = g.0.max(server_now);
            g.1 = g.1.max(server_now + children);
            if !g.2 {
                break;
            }
            drop(g);
            std::thread::sleep(Duration::from_millis(50));
        })
    };

    let t_start = Instant::now();
    let barrier = Arc::new(Barrier::new(20));
    let submitters: Vec<_> = (0..20)
        .map(|_| {
            let (server, barrier) = (server.clone(), barrier.clone());
            let (piano, bass) = (piano.clone(), bass.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let r = server.post_form(
                    "/api/jobs",
                    Form::new()
                        .file("mixture", &example("mix.wav"))
                        .text("source", &format!("piano={piano}"))
                        .text("source", &format!("bass={bass}")),
                );
                match r.status {
                    202 => Some(r.json()["id"].as_str().unwrap().to_string()),
                    429 => {
                        r.expect_error(429);
                        None
                    }
                    s => panic!("status {s}: {}", r.text()),
                }
            })
        })
        .collect();
    let results: Vec<Option<String>> = submitters.into_iter().map(|t| t.join().unwrap()).collect();
    let accepted: Vec<String> = results.iter().flatten().cloned().collect();
    let refused = results.iter().filter(|r| r.is_none()).count();
    assert_eq!(accepted.len() + refused, 20);
    assert!(!accepted.is_empty());

    // 100 polls per second for 30 s: 4 pollers of 25 per second, on the accepted jobs.
    let poll_for = Duration::from_secs(30);
    let latencies = Arc::new(Mutex::new(Vec::<f64>::new()));
    let t_poll = Instant::now();
    let pollers: Vec<_> = (0..4)
        .map(|k| {
            let (server, lat, ids) = (server.clone(), latencies.clone(), accepted.clone());
            std::thread::spawn(move || {
                let period = Duration::from_millis(40);
                let mut n = 0usize;
                while t_poll.elapsed() < poll_for {
                    let due = t_poll + period * n as u32 + Duration::from_millis(10 * k as u64);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let id = &ids[(n * 4 + k) % ids.len()];
                    let t = Instant::now();
                    let r = server.get(&format!("/api/jobs/{id}"));
                    let ms = t.elapsed().as_secs_f64() * 1e3;
                    assert_eq!(r.status, 200);
                    lat.lock().unwrap().push(ms);
                    n += 1;
                }
            })
        })
        .collect();
    for p in pollers {
        p.join().unwrap();
    }
    let polled_s = t_poll.elapsed().as_secs_f64();
    let mut done_at = 0.0;
    for id in &accepted {
        let j = server.wait_job(id, Duration::from_secs(600));
        assert_eq!(j["state"], "done", "{j}");
        done_at = t_start.elapsed().as_secs_f64();
    }
    let listed = server.get("/api/jobs").json();
    assert_eq!(
        listed.as_array().unwrap().len(),
        accepted.len(),
        "no job lost"
    );
    sampling.lock().unwrap().2 = false;
    sampler.join().unwrap();
    let (server_peak_sampled, total_peak) = {
        let g = sampling.lock().unwrap();
        (g.0, g.1)
    };
    let server_hwm = rss_kib(pid).map_or(0, |(_, hwm)| hwm);

    let mut lat = latencies.lock().unwrap().clone();
    lat.sort_by(f64::total_cmp);
    println!("jobs: {} accepted (all done), {refused} refused with 429, none lost; all done {done_at:.1} s after the submissions", accepted.len());
    println!(
        "status polls: {} in {polled_s:.1} s ({:.0}/s); latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        lat.len(),
        lat.len() as f64 / polled_s,
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.last().unwrap()
    );
    println!(
        "peak RSS: server {:.1} MiB (VmHWM; {:.1} MiB sampled), server + separation processes {:.1} MiB (sampled every 50 ms)",
        server_hwm as f64 / 1024.0,
        server_peak_sampled as f64 / 1024.0,
        total_peak as f64 / 1024.0
    );
}
