//! The real-time separation engine: a streaming multi-bus STFT around the per-frame
//! activation solve. This is the exact code path of the plugin; the CLI's
//! `separate --realtime` and the tests drive it over plain slices.
//!
//! Every hop: one forward FFT per channel, one activation solve on the channels' mean
//! spectrogram (templates fixed, warm start from the previous frame), one Wiener mask per
//! source, one inverse FFT per source and channel, overlap-add. Input sample `t` leaves at
//! output sample `t + n_fft` ([`Engine::latency_samples`]).
//!
//! Two exact shortcuts keep this cheap. A pair of channels shares one complex FFT each way
//! (their masks are the same real gains). The masks of a bin sum to one and the windows
//! overlap-add to one, so the sources sum to the delayed input: the last used source (the
//! *complement*) is computed as that input minus the other sources instead of being
//! synthesized. Both agree with the direct computation to rounding error, which
//! `tests/engine.rs` checks.
//!
//! Nothing allocates, locks or does I/O after [`Engine::new`]: the FFT plans, windows and
//! buffers of every supported size are made there, and a new dictionary arrives already
//! prepared ([`PreparedDictionary`], built off the audio thread) and the old one is handed
//! back to the caller to be dropped elsewhere.
//!
//! Where things are:
//! - this file: the [`Engine`] type, its construction, [`Engine::set_dictionary`] and the
//!   block loop ([`Engine::process_observed`]): the rings, and the mix of the sources into
//!   the main output and the source buses;
//! - `prepared`: [`PreparedDictionary`], validation and the routing of components to
//!   sources;
//! - `params`: [`EngineParams`], the live settings, and the effective gains after mute and
//!   solo;
//! - `gain`: the smoothing of those gains;
//! - `bypass`: the host bypass, a crossfade to the input delayed by the latency
//!   ([`EngineParams::bypass`]);
//! - `frame`: FFT plans, windowing and overlap-add, and the per-frame maths (pair FFTs,
//!   solve, masks, synthesis), compiled per instruction set through [`crate::simd`];
//! - `spatial`: the multichannel Wiener filter of a trained separator on stereo streams;
//! - `offline`: [`run_offline`] and [`process_in_blocks`], the drivers over whole signals.

mod bypass;
mod frame;
mod gain;
pub mod live;
mod offline;
mod params;
mod prepared;
mod spatial;

use rustfft::num_complex::Complex32;
use rustfft::FftPlanner;

pub use self::bypass::BYPASS_FADE_S;
use self::bypass::{BypassFade, Mix};
use self::frame::SizePlan;
use self::gain::GainSmoother;
pub use self::live::{live_pair, rest_dictionary, LiveOptions, LiveRest, LiveWorker};
pub use self::offline::{process_in_blocks, run_offline, run_offline_live};
pub use self::params::EngineParams;
pub use self::prepared::{assignment_by_labels, EngineError, PreparedDictionary};
pub use self::spatial::SpatialFrame;
use super::window::squared_overlap;
use crate::aligned::AlignedBuf;
use crate::nmf::FrameGeometry;
use crate::simd::Isa;

/// Output buses for sources.
pub const MAX_SOURCES: usize = 4;
/// Supported STFT frame lengths, samples (the rule lives with [`FrameGeometry`]).
pub use crate::nmf::FFT_SIZES;
/// Frame length used while no dictionary is loaded, samples.
pub const DEFAULT_N_FFT: usize = FrameGeometry::DEFAULT.n_fft();

/// The streaming separator. See the module documentation.
pub struct Engine {
    sample_rate: f32,
    channels: usize,
    plans: Vec<SizePlan>,
    /// Index into `plans` and `FFT_SIZES` of the current frame length.
    size: usize,
    hop: usize,
    /// Overlap-add normalization for the current size and hop.
    ola_scale: f32,
    /// Input history, `[channel][MAX n_fft]`, circular with `pos`.
    input_ring: Vec<Vec<f32>>,
    /// Pending output, `[source][channel][MAX n_fft]`, circular with `pos`. The complement
    /// source's ring stays zero.
    output_ring: Vec<Vec<Vec<f32>>>,
    /// Write position in the rings, 0..n_fft.
    pos: usize,
    /// Spectrum of every channel pair, `[pair][n_fft]`: the complex FFT of the windowed
    /// frame `x[2p] + i x[2p + 1]`.
    spectra: Vec<Vec<Complex32>>,
    /// A masked pair spectrum on its way to the time domain (n_fft).
    synth: Vec<Complex32>,
    /// Mean spectrogram frame of the channels (n_bins).
    mag: AlignedBuf,
    /// Source models, then masks, `[source][n_bins]`.
    masks: Vec<Vec<f32>>,
    /// The source that is not synthesized but computed as the delayed input minus the
    /// others (see [`Engine::process_observed`]).
    complement: usize,
    /// The complement of the current chunk, `[max hop]`.
    rest: Vec<f32>,
    /// The delayed input of the current chunk while bypassed or fading, `[max hop]`.
    dry: Vec<f32>,
    dict: Option<Box<PreparedDictionary>>,
    params: EngineParams,
    /// Smoothed main-output gains, per sample over the current chunk (at most one hop).
    gains: GainSmoother,
    /// The wet share of the output (host bypass).
    fade: BypassFade,
    /// Instruction set of the frame body ([`Isa::best`] outside the tests).
    isa: Isa,
    /// Blocks refused because their channels had different lengths.
    ragged_blocks: u64,
    /// Peak |sample| of every source (before its gain) since [`Engine::take_source_peaks`].
    peaks: [f32; MAX_SOURCES],
}

impl Engine {
    /// An engine for `channels` channels at `sample_rate` Hz. Allocates everything.
    pub fn new(sample_rate: f32, channels: usize) -> Self {
        let mut planner = FftPlanner::<f32>::new();
        let plans: Vec<SizePlan> = FFT_SIZES
            .iter()
            .map(|&n| SizePlan::new(&mut planner, n))
            .collect();
        let max_n = *FFT_SIZES.last().unwrap();
        let max_bins = max_n / 2 + 1;
        let params = EngineParams::default();
        let mut engine = Self {
            sample_rate,
            channels,
            plans,
            size: 0,
            hop: 0,
            ola_scale: 1.0,
            input_ring: vec![vec![0.0; max_n]; channels],
            output_ring: vec![vec![vec![0.0; max_n]; channels]; MAX_SOURCES],
            pos: 0,
            spectra: vec![vec![Complex32::default(); max_n]; channels.div_ceil(2)],
            synth: vec![Complex32::default(); max_n],
            mag: AlignedBuf::zeros(max_bins),
            masks: vec![vec![0.0; max_bins]; MAX_SOURCES],
            complement: 0,
            rest: vec![0.0; max_n / 2],
            dry: vec![0.0; max_n / 2],
            dict: None,
            gains: GainSmoother::new(sample_rate, params.effective_gains(), max_n / 2),
            fade: BypassFade::new(sample_rate, params.bypass, max_n / 2),
            params,
            isa: Isa::best(),
            ragged_blocks: 0,
            peaks: [0.0; MAX_SOURCES],
        };
        engine.configure(FrameGeometry::DEFAULT);
        engine
    }

    /// Channels this engine was made for.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Sample rate, Hz.
    pub fn sample_rate(&self) -> f32 {
        self.sample_rate
    }

    /// Current frame length, samples.
    pub fn n_fft(&self) -> usize {
        FFT_SIZES[self.size]
    }

    /// Delay from input to every output, samples: one frame (n_fft).
    pub fn latency_samples(&self) -> usize {
        self.n_fft()
    }

    /// Blocks [`Self::process`] refused, unprocessed, because their channels had different
    /// lengths (never from a host; counted so that a test can see them).
    pub fn ragged_blocks(&self) -> u64 {
        self.ragged_blocks
    }

    /// The peak |sample| of every source (before its gain in the main output, whether or
    /// not the host gave its bus) since the last call, and starts over: the level meters of
    /// the editor. Does not allocate.
    pub fn take_source_peaks(&mut self) -> [f32; MAX_SOURCES] {
        std::mem::take(&mut self.peaks)
    }

    /// The loaded dictionary, if any.
    pub fn dictionary(&self) -> Option<&PreparedDictionary> {
        self.dict.as_deref()
    }

    /// Switches to frames of `geometry` (valid by construction: there is no fallback).
    fn configure(&mut self, geometry: FrameGeometry) {
        let (size, n, hop) = (geometry.size_index(), geometry.n_fft(), geometry.hop());
        let changed = size != self.size || hop != self.hop;
        self.size = size;
        self.hop = hop;
        self.ola_scale = 1.0 / (n as f32 * squared_overlap(&self.plans[size].window, hop));
        if changed {
            self.clear_buffers();
        }
    }

    fn clear_buffers(&mut self) {
        self.input_ring.iter_mut().for_each(|r| r.fill(0.0));
        self.output_ring
            .iter_mut()
            .flatten()
            .for_each(|r| r.fill(0.0));
        self.pos = 0;
    }

    /// Installs a prepared dictionary and returns the previous one, which the caller should
    /// drop off the audio thread. Does not allocate. When the frame length or hop changes the
    /// stream restarts (buffers cleared) and [`Self::latency_samples`] changes.
    pub fn set_dictionary(
        &mut self,
        dict: Option<Box<PreparedDictionary>>,
    ) -> Option<Box<PreparedDictionary>> {
        self.configure(dict.as_ref().map_or(FrameGeometry::DEFAULT, |d| d.geometry));
        std::mem::replace(&mut self.dict, dict)
    }

    /// Sets the live parameters (taken from the next sample on; gains are smoothed).
    pub fn set_params(&mut self, params: &EngineParams) {
        self.params = *params;
        self.params.iterations = self
            .params
            .iterations
            .clamp(1, crate::nmf::SolveRule::MAX_ITERATIONS);
    }

    /// Clears the stream state: the output afterwards is as from a new engine with the same
    /// dictionary and parameters.
    pub fn reset(&mut self) {
        self.clear_buffers();
        self.gains.settle(self.params.effective_gains());
        self.fade.settle(self.params.bypass);
        if let Some(d) = self.dict.as_mut() {
            d.reset();
        }
    }

    /// Processes one block in place. On entry `main[c]` holds the input of channel c; on
    /// exit it holds the main output: the sum of the sources with their gains, mute and solo,
    /// or, while [`EngineParams::bypass`] is on, the input delayed by
    /// [`Self::latency_samples`] (with silent source buses; a toggle crossfades over
    /// [`BYPASS_FADE_S`]). `sources[s][c]` receives source s (only the buses and channels given are written; a
    /// bus may have fewer channels than main, or be empty). All slices of `main` must have
    /// the same length (a block whose channels differ is left untouched and counted in
    /// [`Self::ragged_blocks`]); channels beyond [`Self::channels`] are left untouched.
    pub fn process(&mut self, main: &mut [&mut [f32]], sources: &mut [&mut [&mut [f32]]]) {
        self.process_observed(main, sources, |_| {});
    }

    /// [`Self::process`], calling `on_frame(activations)` after every STFT frame (once per hop)
    /// while a dictionary is loaded; the editor's activation display is fed from here.
    pub fn process_observed(
        &mut self,
        main: &mut [&mut [f32]],
        sources: &mut [&mut [&mut [f32]]],
        mut on_frame: impl FnMut(&[f32]),
    ) {
        let len = main.first().map_or(0, |c| c.len());
        let channels = main.len().min(self.channels);
        if main.iter().any(|c| c.len() != len) {
            // A host never does this (one block length for all channels); if one did, the
            // block is left as it came and counted, so a test or a debugger can see it.
            self.ragged_blocks += 1;
            return;
        }
        let n = self.n_fft();
        let mut done = 0;
        while done < len {
            let to_hop = self.hop - self.pos % self.hop;
            let chunk = to_hop.min(len - done);
            let (p0, range) = (self.pos, done..done + chunk);
            self.gains.advance(self.params.effective_gains(), chunk);
            let mix = self.fade.advance(self.params.bypass, chunk);
            let complement = self.complement;
            for (c, main) in main.iter_mut().enumerate().take(channels) {
                let out = &mut main[range.clone()];
                let rest = &mut self.rest[..chunk];
                // The complement starts as the input of n_fft samples ago, which the ring
                // still holds; the new input takes its place. Non-finite or subnormal input
                // becomes silence, so it cannot poison the spectra; the stream recovers
                // within one frame.
                for ((r, x), &y) in rest
                    .iter_mut()
                    .zip(&mut self.input_ring[c][p0..p0 + chunk])
                    .zip(out.iter())
                {
                    *r = *x;
                    *x = if y.is_normal() { y } else { 0.0 };
                }
                if mix != Mix::Wet {
                    self.dry[..chunk].copy_from_slice(rest);
                }
                out.fill(0.0);
                for s in (0..MAX_SOURCES).filter(|&s| s != complement) {
                    let ring = &mut self.output_ring[s][c][p0..p0 + chunk];
                    for (((o, y), r), &g) in out
                        .iter_mut()
                        .zip(ring.iter_mut())
                        .zip(rest.iter_mut())
                        .zip(self.gains.curve(s, chunk))
                    {
                        *y = flush(*y);
                        *r -= *y;
                        *o += g * *y;
                    }
                    if let Some(bus) = bus_range(sources, s, c, range.clone()) {
                        bus.copy_from_slice(ring);
                    }
                    self.peaks[s] = peak_abs(ring, self.peaks[s]);
                    ring.fill(0.0);
                }
                for ((o, r), &g) in out
                    .iter_mut()
                    .zip(rest.iter_mut())
                    .zip(self.gains.curve(complement, chunk))
                {
                    *r = flush(*r);
                    *o = flush(*o + g * *r);
                }
                if let Some(bus) = bus_range(sources, complement, c, range.clone()) {
                    bus.copy_from_slice(rest);
                }
                self.peaks[complement] = peak_abs(rest, self.peaks[complement]);
                // A source that was synthesized before a dictionary change may be the
                // complement now: what it still had pending is part of the remainder.
                self.output_ring[complement][c][p0..p0 + chunk].fill(0.0);
                if mix != Mix::Wet {
                    self.bypass_mix(mix, out, sources, c, range.clone());
                }
            }
            self.pos += chunk;
            done += chunk;
            if self.pos.is_multiple_of(self.hop) {
                if self.pos == n {
                    self.pos = 0;
                }
                self.process_frame();
                if let Some(d) = self.dict.as_deref() {
                    on_frame(&d.h);
                }
            }
        }
    }
}

impl Engine {
    /// Mixes one channel's chunk toward the bypass: the main output `out` toward the delayed
    /// input (`self.dry`), every given bus toward silence, by the wet shares of the fade.
    fn bypass_mix(
        &self,
        mix: Mix,
        out: &mut [f32],
        sources: &mut [&mut [&mut [f32]]],
        c: usize,
        range: std::ops::Range<usize>,
    ) {
        let dry = &self.dry[..out.len()];
        if mix == Mix::Dry {
            out.copy_from_slice(dry);
            for s in 0..MAX_SOURCES {
                if let Some(bus) = bus_range(sources, s, c, range.clone()) {
                    bus.fill(0.0);
                }
            }
            return;
        }
        let wet = self.fade.curve(out.len());
        for ((o, &d), &w) in out.iter_mut().zip(dry).zip(wet) {
            *o = flush(d + w * (*o - d));
        }
        for s in 0..MAX_SOURCES {
            if let Some(bus) = bus_range(sources, s, c, range.clone()) {
                for (b, &w) in bus.iter_mut().zip(wet) {
                    *b = flush(w * *b);
                }
            }
        }
    }
}

/// The samples `range` of channel `c` of source bus `s`, if the host gave that bus and channel.
fn bus_range<'a>(
    sources: &'a mut [&mut [&mut [f32]]],
    s: usize,
    c: usize,
    range: std::ops::Range<usize>,
) -> Option<&'a mut [f32]> {
    sources.get_mut(s)?.get_mut(c)?.get_mut(range)
}

/// The larger of `start` and the largest |x| of `xs`.
#[inline]
fn peak_abs(xs: &[f32], start: f32) -> f32 {
    xs.iter().fold(start, |m, &x| m.max(x.abs()))
}

/// Subnormal values become zero (they cost CPU downstream and carry no sound).
#[inline(always)]
fn flush(x: f32) -> f32 {
    if x.abs() < f32::MIN_POSITIVE {
        0.0
    } else {
        x
    }
}
