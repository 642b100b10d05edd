//! What the audio thread shows the editor: the input level, the live activations H (one frame
//! per hop), the latency and the session rate. Lock-free and allocation-free on the audio side:
//! fixed arrays of atomics allocated when the plugin is made, plus sequence counters.
//!
//! The activations go into a ring of [`FEED_FRAMES`] frames of up to [`FEED_COMPONENTS`] values
//! (f32 bits in `AtomicU32`), and `written` counts the frames published. A reader copies the
//! frames it has not seen and checks `written` again afterwards: a frame the writer may have
//! overwritten meanwhile (lapped) is dropped, so a torn frame is never shown. The audio thread
//! never waits for the reader.
//!
//! Publishing only happens while [`EditorFeed::is_open`] (the editor window exists); the
//! plugin sets that flag from the editor state once per block.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use atomic_float::AtomicF32;

use crate::dsp::engine::MAX_SOURCES;

/// Components kept per frame (the rest are not shown).
pub const FEED_COMPONENTS: usize = 128;
/// Frames kept in the ring (about 2.7 s at a 1024-sample hop and 48 kHz... the editor reads
/// 60 times a second, so a few dozen would do).
pub const FEED_FRAMES: usize = 128;

/// Shared between the audio thread (writer) and the editor (reader).
pub struct EditorFeed {
    /// The editor window is open: publish.
    open: AtomicBool,
    /// Peak of |input| since the editor last took it (f32 bits: for non-negative floats the bit
    /// patterns order like the values, so `fetch_max` on the bits is a max on the floats).
    input_peak: AtomicU32,
    /// Peak |sample| of every source since the editor last took it (the meters of the
    /// source rows).
    source_peaks: [AtomicF32; MAX_SOURCES],
    /// Latency now, samples.
    latency_samples: AtomicU32,
    /// Session sample rate, Hz (f32 bits); 0 before activation.
    sample_rate: AtomicU32,
    /// Frames published so far.
    written: AtomicU64,
    /// Number of components of every ring slot.
    lens: Box<[AtomicU32]>,
    /// `[FEED_FRAMES][FEED_COMPONENTS]` activations, f32 bits.
    frames: Box<[AtomicU32]>,
}

impl Default for EditorFeed {
    fn default() -> Self {
        Self {
            open: AtomicBool::new(false),
            input_peak: AtomicU32::new(0),
            source_peaks: std::array::from_fn(|_| AtomicF32::new(0.0)),
            latency_samples: AtomicU32::new(0),
            sample_rate: AtomicU32::new(0),
            written: AtomicU64::new(0),
            lens: (0..FEED_FRAMES).map(|_| AtomicU32::new(0)).collect(),
            frames: (0..FEED_FRAMES * FEED_COMPONENTS)
                .map(|_| AtomicU32::new(0))
                .collect(),
        }
    }
}

/// A reader's position in the activation stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FeedCursor(u64);

impl EditorFeed {
    /// Whether the editor is open (the audio thread publishes only then).
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Relaxed)
    }

    /// Set by the plugin from the editor state (or by tests).
    pub fn set_open(&self, open: bool) {
        self.open.store(open, Ordering::Relaxed);
    }

    /// Audio thread: the input block (all channels). No allocation, no lock.
    pub fn publish_input(&self, channels: &[&mut [f32]]) {
        let mut peak = 0.0f32;
        for ch in channels {
            for &x in ch.iter() {
                let a = x.abs();
                if a > peak && a.is_finite() {
                    peak = a;
                }
            }
        }
        self.input_peak.fetch_max(peak.to_bits(), Ordering::Relaxed);
    }

    /// Editor: the input peak since the last call (then resets it).
    pub fn take_input_peak(&self) -> f32 {
        f32::from_bits(self.input_peak.swap(0, Ordering::Relaxed))
    }

    /// Audio thread: the peaks of the sources over the last block(s)
    /// ([`crate::dsp::Engine::take_source_peaks`]). No allocation, no lock.
    pub fn publish_source_peaks(&self, peaks: &[f32; MAX_SOURCES]) {
        for (a, &p) in self.source_peaks.iter().zip(peaks) {
            if p.is_finite() {
                a.fetch_max(p, Ordering::Relaxed);
            }
        }
    }

    /// Editor: the peak of every source since the last call (then resets them).
    pub fn take_source_peaks(&self) -> [f32; MAX_SOURCES] {
        std::array::from_fn(|s| self.source_peaks[s].swap(0.0, Ordering::Relaxed))
    }

    /// Audio thread: the current latency and session rate.
    pub fn publish_latency(&self, samples: u32) {
        self.latency_samples.store(samples, Ordering::Relaxed);
    }

    /// Latency, samples.
    pub fn latency_samples(&self) -> u32 {
        self.latency_samples.load(Ordering::Relaxed)
    }

    /// Set in `activate()`.
    pub fn set_sample_rate(&self, hz: f32) {
        self.sample_rate.store(hz.to_bits(), Ordering::Relaxed);
    }

    /// Session rate, Hz (0 before activation).
    pub fn sample_rate(&self) -> f32 {
        f32::from_bits(self.sample_rate.load(Ordering::Relaxed))
    }

    /// Audio thread: one frame of activations (only the first [`FEED_COMPONENTS`] are kept).
    /// Wait-free: stores into the ring slot and bumps the counter.
    pub fn publish_activations(&self, h: &[f32]) {
        let n = self.written.load(Ordering::Relaxed);
        let slot = (n % FEED_FRAMES as u64) as usize;
        let k = h.len().min(FEED_COMPONENTS);
        let base = slot * FEED_COMPONENTS;
        for (dst, &x) in self.frames[base..base + k].iter().zip(h) {
            dst.store(x.to_bits(), Ordering::Relaxed);
        }
        self.lens[slot].store(k as u32, Ordering::Relaxed);
        self.written.store(n + 1, Ordering::Release);
    }

    /// Frames published so far.
    pub fn frames_written(&self) -> u64 {
        self.written.load(Ordering::Acquire)
    }

    /// Editor: calls `f(frame)` for every frame published since `cursor` (at most the ring's
    /// capacity, oldest first) and advances the cursor. Frames overwritten while being read are
    /// skipped. `scratch` holds one frame.
    pub fn read_new(
        &self,
        cursor: &mut FeedCursor,
        scratch: &mut Vec<f32>,
        mut f: impl FnMut(&[f32]),
    ) {
        let end = self.written.load(Ordering::Acquire);
        // Leave one slot of margin: the writer may be filling the oldest slot right now.
        let start = cursor.0.max(end.saturating_sub(FEED_FRAMES as u64 - 1));
        for i in start..end {
            let slot = (i % FEED_FRAMES as u64) as usize;
            let k = (self.lens[slot].load(Ordering::Relaxed) as usize).min(FEED_COMPONENTS);
            let base = slot * FEED_COMPONENTS;
            scratch.clear();
            scratch.extend(
                self.frames[base..base + k]
                    .iter()
                    .map(|a| f32::from_bits(a.load(Ordering::Relaxed))),
            );
            std::sync::atomic::fence(Ordering::Acquire);
            // Lapped while copying: this slot now holds frame i + FEED_FRAMES or later.
            if self.written.load(Ordering::Relaxed) >= i + FEED_FRAMES as u64 {
                continue;
            }
            f(scratch);
        }
        cursor.0 = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_come_out_in_order_and_laps_are_skipped() {
        let feed = EditorFeed::default();
        let mut cur = FeedCursor::default();
        let mut scratch = Vec::new();
        for i in 0..5 {
            feed.publish_activations(&[i as f32, 1.0]);
        }
        let mut got = Vec::new();
        feed.read_new(&mut cur, &mut scratch, |h| got.push(h.to_vec()));
        assert_eq!(got.len(), 5);
        assert_eq!(got[3], vec![3.0, 1.0]);
        // Far behind: only the newest FEED_FRAMES - 1 come out.
        for i in 0..(3 * FEED_FRAMES) {
            feed.publish_activations(&[i as f32]);
        }
        got.clear();
        feed.read_new(&mut cur, &mut scratch, |h| got.push(h.to_vec()));
        assert_eq!(got.len(), FEED_FRAMES - 1);
        assert_eq!(got.last().unwrap(), &vec![(3 * FEED_FRAMES - 1) as f32]);
    }

    #[test]
    fn input_peak_is_the_max_since_last_read() {
        let feed = EditorFeed::default();
        let mut a = [0.1f32, -0.5];
        let mut b = [0.2f32, 0.3];
        feed.publish_input(&[&mut a[..]]);
        feed.publish_input(&[&mut b[..]]);
        assert_eq!(feed.take_input_peak(), 0.5);
        assert_eq!(feed.take_input_peak(), 0.0);
    }
}
