//! The plugin without a host, for the in-process plugin tests: the audio-thread half
//! (`Realtime`) and the trainer thread started as the plugin starts them, run block by block
//! under the allocation checker; test tones and small learn settings.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ndarray::Array2;
use nice_assert_no_alloc::assert_no_alloc;
use nmf_separator::dsp::engine::MAX_SOURCES;
use nmf_separator::nmf::{Dictionary, SpectrogramKind};
use nmf_separator::plugin::params::{CaptureTarget, LearnSettings, SeparatorParams};
use nmf_separator::plugin::realtime::{Controls, Realtime};
use nmf_separator::plugin::status::Status;
use nmf_separator::plugin::trainer::{self, TrainerHandle};

pub const SR: f32 = 16_000.0;
pub const BLOCK: usize = 256;

pub fn small_learning() -> LearnSettings {
    LearnSettings {
        components_per_source: 4,
        mix_components: 4,
        beta: 1.0,
        n_fft: 512,
        iterations: 60,
        given_known: false,
        // These tests are about the plain dictionaries (tests/trained_plugin.rs trains).
        train_separator: false,
    }
}

pub fn dictionary(n_fft: usize, labels: &[&str]) -> Dictionary {
    let bins = n_fft / 2 + 1;
    let k = labels.len();
    Dictionary {
        w: Array2::from_shape_fn((bins, k), |(f, c)| {
            1.0 / (1.0 + (f as f32 - (c * bins / k) as f32).abs())
        }),
        sample_rate: SR as u32,
        n_fft,
        hop: n_fft / 4,
        beta: 1.0,
        spectrogram: SpectrogramKind::Magnitude,
        labels: labels.iter().map(|s| s.to_string()).collect(),
    }
}

/// A low harmonic tone (source A) or a high two-tone (source B), at [`SR`].
pub fn tone(low: bool, len: usize) -> Vec<f32> {
    tone_at(low, len, SR)
}

/// A tone pair at `rate` Hz: the low harmonic tone (`low`) or the high two-tone.
pub fn tone_at(low: bool, len: usize, rate: f32) -> Vec<f32> {
    let freqs: &[f32] = if low {
        &[220.0, 440.0, 660.0]
    } else {
        &[2500.0, 3700.0]
    };
    (0..len)
        .map(|i| {
            let t = i as f32 / rate;
            freqs
                .iter()
                .map(|f| (2.0 * std::f32::consts::PI * f * t).sin())
                .sum::<f32>()
                * 0.2
        })
        .collect()
}

pub struct Harness {
    pub rt: Realtime,
    pub _trainer: TrainerHandle,
    pub status: Arc<Status>,
    pub params: Arc<SeparatorParams>,
    pub controls: Controls,
}

impl Harness {
    pub fn new(params: SeparatorParams) -> Self {
        Self::at(params, SR)
    }

    /// A session at `rate` Hz.
    pub fn at(params: SeparatorParams, rate: f32) -> Self {
        let params = Arc::new(params);
        let status = Arc::new(Status::default());
        let (rt, trainer) = trainer::start(params.clone(), status.clone(), rate, 2);
        Self {
            rt,
            _trainer: trainer,
            status,
            params,
            controls: Controls::default(),
        }
    }

    /// Runs a mono signal on both channels; returns the main output (channel 0) and every
    /// source bus (channel 0), and whether the latency changed.
    pub fn run(&mut self, x: &[f32]) -> (Vec<f32>, Vec<Vec<f32>>, bool) {
        let mut main = vec![x.to_vec(), x.to_vec()];
        let mut src = vec![vec![vec![0.0f32; x.len()]; 2]; MAX_SOURCES];
        let mut changed = false;
        let mut start = 0;
        while start < x.len() {
            let end = (start + BLOCK).min(x.len());
            let (m0, m1) = main.split_at_mut(1);
            let mut m: [&mut [f32]; 2] = [&mut m0[0][start..end], &mut m1[0][start..end]];
            let mut chans: Vec<[&mut [f32]; 2]> = src
                .iter_mut()
                .map(|b| {
                    let (a, c) = b.split_at_mut(1);
                    [&mut a[0][start..end], &mut c[0][start..end]]
                })
                .collect();
            let mut buses: Vec<&mut [&mut [f32]]> =
                chans.iter_mut().map(|c| c.as_mut_slice()).collect();
            let rt = &mut self.rt;
            let controls = self.controls;
            changed |= assert_no_alloc(|| rt.process(&mut m, &mut buses, &controls));
            start = end;
        }
        let buses = src.into_iter().map(|mut b| b.swap_remove(0)).collect();
        (main.swap_remove(0), buses, changed)
    }

    /// Processes silence until `done()` or the timeout.
    pub fn wait(&mut self, what: &str, timeout: Duration, done: impl Fn(&Status) -> bool) {
        let t0 = Instant::now();
        let silence = vec![0.0f32; BLOCK];
        while !done(&self.status) {
            assert!(
                t0.elapsed() < timeout,
                "timed out waiting for {what}; status: {}",
                self.status.message()
            );
            self.run(&silence);
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    pub fn capture(&mut self, target: CaptureTarget, clip: &[f32]) {
        let learned = self.status.clips_learned.load(Ordering::Acquire);
        self.controls.target = target;
        self.controls.capture = true;
        self.run(clip);
        self.controls.capture = false;
        self.run(&[0.0; BLOCK]);
        self.wait("learning", Duration::from_secs(120), |s| {
            s.clips_learned.load(Ordering::Acquire) > learned
        });
        let sent = self.status.dictionaries_sent.load(Ordering::Acquire);
        self.wait("installation", Duration::from_secs(10), |s| {
            s.dictionaries_installed.load(Ordering::Acquire) >= sent
        });
    }
}

pub fn energy(x: &[f32]) -> f64 {
    x.iter().map(|&v| (v as f64).powi(2)).sum()
}

/// Sets a parameter as a host would (the test has no host; nice-plug's wrappers call this).
pub fn set_param<P: nice_plug::prelude::Param>(p: &P, v: P::Plain) {
    // SAFETY: the pointer is to a parameter of params that outlive this call; a parameter's
    // value is an atomic, read by the audio side and the live worker thread.
    unsafe {
        p.as_ptr()
            ._internal_set_normalized_value(p.preview_normalized(v));
    }
}
