//! The page of `nmfsep serve` in a real browser (Debian's chromium and chromium-driver,
//! driven over WebDriver): record a clip from a fake microphone and learn it, learn two
//! sources from files and separate the mixture through the page's own inputs, then check one
//! player per stem (played and paused from the keyboard), that a download link serves a WAV
//! and that a phone-sized window needs no sideways scrolling. Skipped, saying so, when
//! `chromedriver` is not installed. With `NMFSEP_SCREENSHOT=FILE.png` the finished page is
//! saved there (`docs/serve.png` is made that way).

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::example;
use common::serve::Server;
use fantoccini::key::Key;
use fantoccini::{ClientBuilder, Locator};

fn find_in_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn page_learns_separates_and_plays() {
    let Some(driver_exe) = find_in_path("chromedriver") else {
        println!("skipped: chromedriver not found (install chromium and chromium-driver)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), &[]);
    let port = free_port();
    let _driver = Driver(
        Command::new(driver_exe)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver"),
    );
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "chromedriver did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let profile = tmp.path().join("profile");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut caps = serde_json::Map::new();
        let mut args = vec![
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--autoplay-policy=no-user-gesture-required",
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
            "--window-size=1000,1500",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        args.push(format!("--user-data-dir={}", profile.display()));
        let mut opts = serde_json::json!({ "args": args });
        if let Some(bin) = find_in_path("chromium") {
            opts["binary"] = serde_json::json!(bin);
        }
        caps.insert("goog:chromeOptions".into(), opts);
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let c = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a WebDriver session");
        c.goto(&server.url("/")).await.unwrap();
        assert_eq!(c.title().await.unwrap(), "NMF Separator");

        let wait = Duration::from_secs(120);
        // Record a clip from the (fake) microphone and learn it, then delete it again.
        let record = c.find(Locator::Id("record-btn")).await.unwrap();
        record.click().await.unwrap();
        tokio::time::sleep(Duration::from_millis(2500)).await;
        record.click().await.unwrap();
        let note = c
            .find(Locator::Id("record-note"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(note.starts_with("Recorded"), "{note:?}");
        c.find(Locator::Id("dict-name"))
            .await
            .unwrap()
            .send_keys("tone")
            .await
            .unwrap();
        c.find(Locator::Id("learn-btn"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let t0 = Instant::now();
        while c
            .find_all(Locator::Css("#dict-list li"))
            .await
            .unwrap()
            .is_empty()
        {
            let status = c
                .find(Locator::Id("status"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert!(!status.starts_with("Could not"), "{status}");
            assert!(t0.elapsed() < wait, "learning the recording did not finish");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        c.find(Locator::Css("#dict-list li button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let t0 = Instant::now();
        while !c
            .find_all(Locator::Css("#dict-list li"))
            .await
            .unwrap()
            .is_empty()
        {
            assert!(
                t0.elapsed() < wait,
                "the recording's dictionary was not deleted"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for (i, name) in ["piano", "bass"].into_iter().enumerate() {
            c.find(Locator::Id("dict-name"))
                .await
                .unwrap()
                .send_keys(name)
                .await
                .unwrap();
            let clip = example(&format!("train/{name}.wav"))
                .canonicalize()
                .unwrap();
            c.find(Locator::Id("dict-clip"))
                .await
                .unwrap()
                .send_keys(&clip.to_string_lossy())
                .await
                .unwrap();
            c.find(Locator::Id("learn-btn"))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
            let t0 = Instant::now();
            while c
                .find_all(Locator::Css("#dict-list li"))
                .await
                .unwrap()
                .len()
                < i + 1
            {
                assert!(t0.elapsed() < wait, "learning {name} did not finish");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let mix = example("mix.wav").canonicalize().unwrap();
        c.find(Locator::Id("mix-file"))
            .await
            .unwrap()
            .send_keys(&mix.to_string_lossy())
            .await
            .unwrap();
        c.find(Locator::Id("rest-name"))
            .await
            .unwrap()
            .send_keys("rest")
            .await
            .unwrap();
        c.find(Locator::Id("separate-btn"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        c.wait()
            .at_most(wait)
            .for_element(Locator::Css("#result[data-ready=true]"))
            .await
            .expect("the job finished and its players loaded");

        let stems = c.find_all(Locator::Css("#stems .stem")).await.unwrap();
        let mut names = Vec::new();
        for s in &stems {
            names.push(s.attr("data-name").await.unwrap().unwrap());
        }
        assert_eq!(names, ["piano", "bass", "rest"]);
        // Every player decoded its stem and drew it; mute and solo are there for each.
        let loaded = c
            .execute(
                "return [...document.querySelectorAll('#stems .stem')].map(s => \
                 [s.querySelector('canvas').width > 0, s.querySelectorAll('button').length])",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(loaded, serde_json::json!([[true, 2], [true, 2], [true, 2]]));
        // Keyboard: the finished job moves the focus to Play, and Enter plays and pauses.
        let focused = c.active_element().await.unwrap();
        assert_eq!(
            focused.attr("id").await.unwrap().as_deref(),
            Some("play-btn")
        );
        let play_label = || async {
            c.find(Locator::Id("play-btn"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        };
        focused.send_keys(&Key::Enter.to_string()).await.unwrap();
        assert_eq!(play_label().await, "Pause");
        focused.send_keys(&Key::Enter.to_string()).await.unwrap();
        assert_eq!(play_label().await, "Play");

        // A download link serves a WAV.
        let href = c
            .find(Locator::Css("a.stem-download"))
            .await
            .unwrap()
            .prop("href")
            .await
            .unwrap()
            .unwrap();
        let mut wav = Vec::new();
        std::io::Read::read_to_end(
            &mut ureq::get(&href).call().unwrap().into_reader(),
            &mut wav,
        )
        .unwrap();
        assert_eq!(&wav[..4], b"RIFF");
        assert_eq!(&wav[8..12], b"WAVE");
        let jobs = c.find_all(Locator::Css("#job-list li")).await.unwrap();
        assert_eq!(jobs.len(), 1);

        if let Some(path) = std::env::var_os("NMFSEP_SCREENSHOT") {
            let png = c.screenshot().await.unwrap();
            std::fs::write(&path, png).unwrap();
        }
        // Readable on a phone-sized window: nothing wider than the screen.
        c.set_window_size(390, 844).await.unwrap();
        let overflow = c
            .execute(
                "return document.documentElement.scrollWidth - window.innerWidth",
                vec![],
            )
            .await
            .unwrap();
        assert!(
            overflow.as_f64().unwrap() <= 0.0,
            "horizontal overflow {overflow}"
        );
        if let Some(path) = std::env::var_os("NMFSEP_SCREENSHOT_PHONE") {
            let png = c.screenshot().await.unwrap();
            std::fs::write(&path, png).unwrap();
        }
        c.close().await.unwrap();
    });
}
