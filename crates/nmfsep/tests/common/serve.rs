//! Shared by the `serve*` tests: the real `nmfsep serve` process on a free loopback port
//! with a temporary data folder, a small HTTP client, multipart bodies and SDR.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{example, write_wav};

pub const EXE: &str = env!("CARGO_BIN_EXE_nmfsep");

/// A running server; killed (SIGKILL) when dropped.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub token: Option<String>,
    pub log: PathBuf,
}

impl Server {
    /// Starts `nmfsep serve --addr 127.0.0.1:0 --data-dir DATA ARGS` and waits for its
    /// `listening on` line. Its log goes to `DATA/../serve-N.log`.
    pub fn start(data: &Path, args: &[&str]) -> Server {
        Self::start_env(data, args, &[])
    }

    pub fn start_env(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let log = data.with_extension(format!("{}.log", std::process::id()));
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let mut cmd = Command::new(EXE);
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(data)
            .args(args)
            .env_remove("NMFSEP_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file);
        if !args.contains(&"--addr") {
            cmd.args(["--addr", "127.0.0.1:0"]);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start nmfsep serve");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| {
                panic!(
                    "no listening line: {line:?}; log: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            })
            .to_string();
        let token = args
            .iter()
            .position(|a| *a == "--token")
            .map(|i| args[i + 1].to_string());
        Server {
            child,
            base,
            token,
            log,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn auth(&self, r: ureq::Request) -> ureq::Request {
        match &self.token {
            Some(t) => r.set("Authorization", &format!("Bearer {t}")),
            None => r,
        }
    }

    pub fn get(&self, path: &str) -> Resp {
        call(self.auth(ureq::get(&self.url(path))), None)
    }

    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        let mut r = self.auth(ureq::get(&self.url(path)));
        for (k, v) in headers {
            r = r.set(k, v);
        }
        call(r, None)
    }

    pub fn delete(&self, path: &str) -> Resp {
        call(self.auth(ureq::delete(&self.url(path))), None)
    }

    pub fn post_form(&self, path: &str, form: impl std::borrow::Borrow<Form>) -> Resp {
        let (ct, body) = form.borrow().encode();
        call(
            self.auth(ureq::post(&self.url(path)))
                .set("Content-Type", &ct),
            Some(&body),
        )
    }

    /// Learns dictionary `name` from `clip`; returns its id.
    pub fn learn(&self, name: &str, clip: &Path) -> String {
        let r = self.post_form(
            "/api/dictionaries",
            Form::new().text("name", name).file("clip", clip),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()["id"].as_str().unwrap().to_string()
    }

    /// Polls job `id` until it is final (at most `limit`); returns its row.
    pub fn wait_job(&self, id: &str, limit: Duration) -> serde_json::Value {
        let t0 = Instant::now();
        loop {
            let j = self.get(&format!("/api/jobs/{id}")).json();
            let s = j["state"].as_str().unwrap_or("").to_string();
            if ["done", "failed", "cancelled"].contains(&s.as_str()) {
                return j;
            }
            assert!(t0.elapsed() < limit, "job {id} still {s} after {limit:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A response: status, headers we look at, body.
pub struct Resp {
    pub status: u16,
    pub content_type: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Asserts `status` and a JSON error body `{"error": "..."}`; returns the message.
    pub fn expect_error(&self, status: u16) -> String {
        assert_eq!(self.status, status, "body: {}", self.text());
        let j = self.json();
        j["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error field: {j}"))
            .to_string()
    }
}

fn call(r: ureq::Request, body: Option<&[u8]>) -> Resp {
    let r = r.timeout(Duration::from_secs(120));
    let res = match body {
        Some(b) => r.send_bytes(b),
        None => r.call(),
    };
    let resp = match res {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("request failed: {e}"),
    };
    let status = resp.status();
    let content_type = resp.header("content-type").unwrap_or("").to_string();
    let headers = resp
        .headers_names()
        .into_iter()
        .map(|n| {
            let v = resp.header(&n).unwrap_or("").to_string();
            (n, v)
        })
        .collect();
    let mut body = Vec::new();
    resp.into_reader()
        .take(1 << 30)
        .read_to_end(&mut body)
        .unwrap();
    Resp {
        status,
        content_type,
        headers,
        body,
    }
}

/// A multipart form.
#[derive(Default)]
pub struct Form {
    parts: Vec<(String, Option<String>, Vec<u8>)>,
}

impl Form {
    pub fn new() -> Form {
        Form::default()
    }

    pub fn text(mut self, name: &str, value: &str) -> Form {
        self.parts
            .push((name.to_string(), None, value.as_bytes().to_vec()));
        self
    }

    pub fn file(self, name: &str, path: &Path) -> Form {
        let bytes = std::fs::read(path).unwrap();
        let file_name = path.file_name().unwrap().to_string_lossy().into_owned();
        self.bytes(name, &file_name, bytes)
    }

    pub fn bytes(mut self, name: &str, file_name: &str, bytes: Vec<u8>) -> Form {
        self.parts
            .push((name.to_string(), Some(file_name.to_string()), bytes));
        self
    }

    pub fn encode(&self) -> (String, Vec<u8>) {
        let boundary = "nmfsep-test-boundary-7d3f1a";
        let mut body = Vec::new();
        for (name, file, data) in &self.parts {
            body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            match file {
                Some(f) => body.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                    )
                    .as_bytes(),
                ),
                None => body.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
                ),
            }
            body.extend_from_slice(data);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        (format!("multipart/form-data; boundary={boundary}"), body)
    }
}

/// Signal-to-distortion ratio of `estimate` against `reference` (all channels), dB:
/// 10 log10(sum s^2 / sum (s - s_hat)^2).
pub fn sdr(reference: &[Vec<f32>], estimate: &[Vec<f32>]) -> f64 {
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for (r, e) in reference.iter().zip(estimate) {
        for (a, b) in r.iter().zip(e) {
            num += f64::from(*a) * f64::from(*a);
            den += (f64::from(*a) - f64::from(*b)).powi(2);
        }
    }
    10.0 * (num / den.max(1e-20)).log10()
}

/// The example mixture repeated `times` times, as a WAV at `path` (a long job).
pub fn long_mixture(path: &Path, times: usize) {
    let a = nmfsep::audio::read_audio(&example("mix.wav")).unwrap();
    let chans: Vec<Vec<f32>> = a
        .channels
        .iter()
        .map(|c| c.iter().copied().cycle().take(c.len() * times).collect())
        .collect();
    write_wav(path, a.sample_rate, &chans);
}
