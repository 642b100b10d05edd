//! The audio-thread side: the engine, the capture buffer and the queue ends. Nothing here
//! allocates, locks or does I/O after construction.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::feed::EditorFeed;
use super::params::CaptureTarget;
use super::status::Status;
use crate::dsp::engine::{Engine, EngineParams, PreparedDictionary};

/// A finished capture travelling to the trainer thread: `len` frames of `channels`
/// interleaved channels in `buffer`.
pub(crate) struct Clip {
    pub buffer: Box<[f32]>,
    pub len: usize,
    pub channels: usize,
    pub target: CaptureTarget,
}

/// Channels a capture keeps for a session of `channels` channels: both of a stereo session
/// (for the spatial model of a trained separator), else the mono mix.
pub(crate) fn capture_channels(channels: usize) -> usize {
    if channels == 2 {
        2
    } else {
        1
    }
}

/// What the audio thread reads from the parameters once per block.
#[derive(Clone, Copy, Debug)]
pub struct Controls {
    pub engine: EngineParams,
    /// The capture parameter.
    pub capture: bool,
    /// The capture target parameter (taken when a capture starts).
    pub target: CaptureTarget,
}

impl Default for Controls {
    fn default() -> Self {
        Self {
            engine: EngineParams::default(),
            capture: false,
            target: CaptureTarget::Source1,
        }
    }
}

/// The audio-thread state. Made by [`super::trainer::start`].
pub struct Realtime {
    engine: Engine,
    /// The capture buffer we own (the other one is with the trainer thread or in a queue).
    capture: Option<Box<[f32]>>,
    /// Frames captured into `capture`.
    capture_len: usize,
    /// Channels a capture keeps ([`capture_channels`]), interleaved.
    capture_channels: usize,
    /// A capture is running.
    capturing: bool,
    /// Target of the running capture.
    target: CaptureTarget,
    /// Capture parameter of the previous block (edge detection).
    capture_param: bool,
    status: Arc<Status>,
    clip_tx: Sender<Clip>,
    /// Returned capture buffers.
    buf_rx: Receiver<Box<[f32]>>,
    dict_rx: Receiver<Option<Box<PreparedDictionary>>>,
    garbage_tx: Sender<Box<PreparedDictionary>>,
    /// A replaced dictionary the garbage queue did not take yet (never dropped here).
    held: Option<Box<PreparedDictionary>>,
    /// Meters and activations for the editor (published only while it is open).
    feed: Option<Arc<EditorFeed>>,
}

impl Realtime {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        engine: Engine,
        channels: usize,
        capture: Box<[f32]>,
        status: Arc<Status>,
        clip_tx: Sender<Clip>,
        buf_rx: Receiver<Box<[f32]>>,
        dict_rx: Receiver<Option<Box<PreparedDictionary>>>,
        garbage_tx: Sender<Box<PreparedDictionary>>,
    ) -> Self {
        Self {
            engine,
            capture: Some(capture),
            capture_len: 0,
            capture_channels: capture_channels(channels),
            capturing: false,
            target: CaptureTarget::Source1,
            capture_param: false,
            status,
            clip_tx,
            buf_rx,
            dict_rx,
            garbage_tx,
            held: None,
            feed: None,
        }
    }

    /// Publishes the input level, the latency and the activations (every hop) to `feed`
    /// while its editor is open. Call before processing starts (not on the audio thread).
    pub fn set_feed(&mut self, feed: Arc<EditorFeed>) {
        feed.publish_latency(self.latency_samples());
        self.feed = Some(feed);
    }

    /// The engine's latency, samples.
    pub fn latency_samples(&self) -> u32 {
        self.engine.latency_samples() as u32
    }

    /// The engine (for inspection).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Clears the stream state (not the capture).
    pub fn reset(&mut self) {
        self.engine.reset();
    }

    /// Processes one block in place: `main` holds the input on entry and the main mix on exit;
    /// `buses[s]` receives source s (may be empty). Returns true when the latency changed (a
    /// dictionary with another n_fft was installed). Real-time safe.
    pub fn process(
        &mut self,
        main: &mut [&mut [f32]],
        buses: &mut [&mut [&mut [f32]]],
        controls: &Controls,
    ) -> bool {
        let latency_before = self.engine.latency_samples();
        self.install_dictionaries();
        self.capture(main, controls);
        self.engine.set_params(&controls.engine);
        match self.feed.as_deref() {
            Some(feed) if feed.is_open() => {
                feed.publish_input(main);
                self.engine
                    .process_observed(main, buses, |h| feed.publish_activations(h));
                feed.publish_source_peaks(&self.engine.take_source_peaks());
            }
            _ => self.engine.process(main, buses),
        }
        if let Some(feed) = self.feed.as_deref() {
            feed.publish_latency(self.engine.latency_samples() as u32);
        }
        self.engine.latency_samples() != latency_before
    }

    /// Swaps in the queued prepared dictionaries and hands the replaced ones back. At most one
    /// replaced dictionary is ever held here: while one is held (its queue was full), no new
    /// dictionary is taken, so nothing is ever freed on the audio thread.
    fn install_dictionaries(&mut self) {
        if let Some(old) = self.held.take() {
            self.give_back(old);
        }
        while self.held.is_none() {
            let Ok(new) = self.dict_rx.try_recv() else {
                break;
            };
            if let Some(old) = self.engine.set_dictionary(new) {
                self.give_back(old);
            }
            self.status
                .dictionaries_installed
                .fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Sends a replaced dictionary to the trainer thread to be dropped there; keeps it in
    /// `held` when the queue is full. Only called while `held` is empty.
    fn give_back(&mut self, old: Box<PreparedDictionary>) {
        if let Err(e) = self.garbage_tx.try_send(old) {
            self.held = Some(e.into_inner());
        }
    }

    /// Records `main` (both channels of a stereo session, else the mono mix) while the capture parameter is on; sends the clip to
    /// the trainer thread when it goes off.
    fn capture(&mut self, main: &[&mut [f32]], controls: &Controls) {
        if controls.capture && !self.capture_param {
            // Capture starts: take a free buffer.
            if self.capture.is_none() {
                self.capture = self.buf_rx.try_recv().ok();
            }
            if self.capture.is_some() {
                self.capturing = true;
                self.capture_len = 0;
                self.target = controls.target;
            } else {
                self.status.captures_dropped.fetch_add(1, Ordering::AcqRel);
            }
        } else if !controls.capture && self.capture_param && self.capturing {
            // Capture ends: the trainer thread learns it.
            self.capturing = false;
            if let Some(buffer) = self.capture.take() {
                let clip = Clip {
                    buffer,
                    len: self.capture_len,
                    channels: self.capture_channels,
                    target: self.target,
                };
                if let Err(e) = self.clip_tx.try_send(clip) {
                    let clip = match e {
                        TrySendError::Full(c) | TrySendError::Disconnected(c) => c,
                    };
                    self.capture = Some(clip.buffer);
                    self.status.captures_dropped.fetch_add(1, Ordering::AcqRel);
                }
            }
            self.capture_len = 0;
        }
        self.capture_param = controls.capture;

        if self.capturing {
            if let Some(buf) = self.capture.as_deref_mut() {
                let cc = self.capture_channels;
                let len = main.first().map_or(0, |c| c.len());
                let frames = buf.len() / cc;
                let n = len.min(frames - self.capture_len.min(frames));
                let out = &mut buf[self.capture_len * cc..(self.capture_len + n) * cc];
                let finite = |x: f32| if x.is_finite() { x } else { 0.0 };
                if cc == 1 {
                    let inv = 1.0 / main.len().max(1) as f32;
                    out.fill(0.0);
                    for ch in main.iter() {
                        for (o, &x) in out.iter_mut().zip(ch.iter()) {
                            *o += finite(x) * inv;
                        }
                    }
                } else {
                    for (c, ch) in main.iter().take(cc).enumerate() {
                        for (o, &x) in out.iter_mut().skip(c).step_by(cc).zip(ch.iter()) {
                            *o = finite(x);
                        }
                    }
                    // A block with fewer channels than the session: its first one everywhere.
                    if let Some(first) = main.first().filter(|_| main.len() < cc) {
                        for c in main.len()..cc {
                            for (o, &x) in out.iter_mut().skip(c).step_by(cc).zip(first.iter()) {
                                *o = finite(x);
                            }
                        }
                    }
                }
                self.capture_len += n;
                self.status
                    .capture_len
                    .store(self.capture_len as u64, Ordering::Release);
            }
        }
    }
}

impl Drop for Realtime {
    fn drop(&mut self) {
        // Not on the audio thread (the plugin drops this in activate/deactivate).
        drop(self.held.take());
    }
}
