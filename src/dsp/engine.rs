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

use std::sync::Arc;

use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};

use super::mask::wiener_masks_in_place;
use super::window::{periodic_hann, squared_overlap};
use crate::aligned::AlignedBuf;
use crate::nmf::{Dictionary, FrameSolver};

/// Output buses for sources.
pub const MAX_SOURCES: usize = 4;
/// Supported STFT frame lengths, samples: the powers of two from 512 to 8192.
pub const FFT_SIZES: [usize; 5] = [512, 1024, 2048, 4096, 8192];
/// Frame length used while no dictionary is loaded, samples.
pub const DEFAULT_N_FFT: usize = 2048;
/// Gain smoothing time constant, seconds.
const GAIN_SMOOTHING_S: f32 = 0.01;
/// Distance at which a smoothed gain jumps to its target (-80 dB below unity: inaudible).
const GAIN_SNAP: f32 = 1e-4;

/// Errors when preparing a dictionary for the engine.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum EngineError {
    #[error("n_fft {0} is not supported by the real-time engine (512..8192, power of two)")]
    FftSize(usize),
    #[error("hop {hop} must divide n_fft {n_fft} and be at most n_fft/2")]
    Hop { n_fft: usize, hop: usize },
    #[error("{components} components but {assigned} source assignments")]
    Assignment { components: usize, assigned: usize },
    #[error("component {component} is assigned to source {index}, but there are only {MAX_SOURCES} sources")]
    SourceIndex { component: usize, index: usize },
    #[error("dictionary learned at {dict} Hz, the session runs at {session} Hz")]
    SampleRate { dict: u32, session: u32 },
    #[error("{0}")]
    Dictionary(String),
}

/// Everything the audio thread needs from a dictionary, built off the audio thread.
pub struct PreparedDictionary {
    solver: FrameSolver,
    /// Activations of the latest frame (K): the warm start of the next one.
    h: Vec<f32>,
    n_fft: usize,
    hop: usize,
    /// Spectrogram exponent (1 magnitude, 2 power).
    exponent: f32,
    /// Which sources own at least one component.
    used: [bool; MAX_SOURCES],
    /// The components of each source, in order.
    groups: [Vec<usize>; MAX_SOURCES],
}

impl PreparedDictionary {
    /// Prepares `dict` with `assignment[k]` = source index of component k. Allocates.
    ///
    /// # Errors
    /// For an invalid dictionary, an unsupported n_fft or hop, or a bad assignment.
    pub fn new(dict: &Dictionary, assignment: &[usize]) -> Result<Self, EngineError> {
        dict.validate()
            .map_err(|e| EngineError::Dictionary(e.to_string()))?;
        if !FFT_SIZES.contains(&dict.n_fft) {
            return Err(EngineError::FftSize(dict.n_fft));
        }
        if dict.hop == 0 || dict.n_fft % dict.hop != 0 || dict.hop > dict.n_fft / 2 {
            return Err(EngineError::Hop {
                n_fft: dict.n_fft,
                hop: dict.hop,
            });
        }
        if assignment.len() != dict.n_components() {
            return Err(EngineError::Assignment {
                components: dict.n_components(),
                assigned: assignment.len(),
            });
        }
        let mut used = [false; MAX_SOURCES];
        for (component, &source) in assignment.iter().enumerate() {
            if source >= MAX_SOURCES {
                return Err(EngineError::SourceIndex {
                    component,
                    index: source,
                });
            }
            used[source] = true;
        }
        let k = dict.n_components();
        let groups = std::array::from_fn(|s| {
            (0..k)
                .filter(|&c| assignment[c] == s)
                .collect::<Vec<usize>>()
        });
        Ok(Self {
            solver: FrameSolver::new(dict.w.view(), dict.beta),
            h: vec![1.0 / k as f32; k],
            n_fft: dict.n_fft,
            hop: dict.hop,
            exponent: dict.spectrogram.exponent(),
            used,
            groups,
        })
    }

    /// Prepares `dict`, assigning components to sources by label in order of first appearance
    /// (labels beyond the fourth share source 4).
    pub fn by_labels(dict: &Dictionary) -> Result<Self, EngineError> {
        Self::new(dict, &assignment_by_labels(dict))
    }

    /// Frame length, samples.
    pub fn n_fft(&self) -> usize {
        self.n_fft
    }

    /// The newest activations (K).
    pub fn activations(&self) -> &[f32] {
        &self.h
    }

    fn reset(&mut self) {
        let k = self.h.len() as f32;
        self.h.iter_mut().for_each(|x| *x = 1.0 / k);
    }
}

/// Source index of each component from its label (first label = source 0, ...).
pub fn assignment_by_labels(dict: &Dictionary) -> Vec<usize> {
    let names = dict.sources();
    dict.labels
        .iter()
        .map(|l| {
            names
                .iter()
                .position(|n| n == l)
                .unwrap_or(0)
                .min(MAX_SOURCES - 1)
        })
        .collect()
}

/// Live settings of the engine. Cheap to copy; set once per block.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EngineParams {
    /// Multiplicative-update iterations per frame (1..=50 in the plugin).
    pub iterations: usize,
    /// Mask exponent p on magnitude models.
    pub mask_power: f32,
    /// L1 penalty on the activations.
    pub sparsity: f32,
    /// Linear gain of each source in the main output.
    pub gain: [f32; MAX_SOURCES],
    /// Muted sources leave the main output (unless soloed).
    pub mute: [bool; MAX_SOURCES],
    /// When any source is soloed, only soloed sources reach the main output.
    pub solo: [bool; MAX_SOURCES],
}

impl Default for EngineParams {
    fn default() -> Self {
        Self {
            iterations: 10,
            mask_power: 2.0,
            sparsity: 0.0,
            gain: [1.0; MAX_SOURCES],
            mute: [false; MAX_SOURCES],
            solo: [false; MAX_SOURCES],
        }
    }
}

impl EngineParams {
    /// The gain of each source in the main output after mute and solo.
    pub fn effective_gains(&self) -> [f32; MAX_SOURCES] {
        let any_solo = self.solo.iter().any(|&s| s);
        let mut g = [0.0; MAX_SOURCES];
        for s in 0..MAX_SOURCES {
            let on = if any_solo {
                self.solo[s]
            } else {
                !self.mute[s]
            };
            g[s] = if on { self.gain[s] } else { 0.0 };
        }
        g
    }
}

/// FFT plans, window and scratch for one frame length.
struct SizePlan {
    /// Complex FFTs of length n_fft: one transform carries two real channels.
    forward: Arc<dyn Fft<f32>>,
    inverse: Arc<dyn Fft<f32>>,
    /// Periodic Hann window, for analysis and synthesis.
    window: Vec<f32>,
    scratch: Vec<Complex32>,
}

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
    dict: Option<Box<PreparedDictionary>>,
    params: EngineParams,
    /// Smoothed main-output gains and the per-sample smoothing coefficient.
    gains: [f32; MAX_SOURCES],
    /// Per-sample gains of the current chunk, `[source][max hop]`.
    gain_curve: Vec<Vec<f32>>,
    gain_coef: f32,
    simd: Simd,
}

impl Engine {
    /// An engine for `channels` channels at `sample_rate` Hz. Allocates everything.
    pub fn new(sample_rate: f32, channels: usize) -> Self {
        let mut planner = FftPlanner::<f32>::new();
        let plans: Vec<SizePlan> = FFT_SIZES
            .iter()
            .map(|&n| {
                let forward = planner.plan_fft_forward(n);
                let inverse = planner.plan_fft_inverse(n);
                let scratch = forward
                    .get_inplace_scratch_len()
                    .max(inverse.get_inplace_scratch_len());
                SizePlan {
                    forward,
                    inverse,
                    window: periodic_hann(n),
                    scratch: vec![Complex32::default(); scratch],
                }
            })
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
            dict: None,
            gains: params.effective_gains(),
            gain_curve: vec![vec![0.0; max_n / 2]; MAX_SOURCES],
            params,
            gain_coef: 1.0 - (-1.0 / (GAIN_SMOOTHING_S * sample_rate.max(1.0))).exp(),
            simd: Simd::detect(),
        };
        engine.configure(DEFAULT_N_FFT, DEFAULT_N_FFT / 4);
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

    /// The loaded dictionary, if any.
    pub fn dictionary(&self) -> Option<&PreparedDictionary> {
        self.dict.as_deref()
    }

    fn configure(&mut self, n_fft: usize, hop: usize) {
        let size = FFT_SIZES.iter().position(|&n| n == n_fft).unwrap_or(2);
        let n = FFT_SIZES[size];
        let hop = if hop == 0 || n % hop != 0 || hop > n / 2 {
            n / 4
        } else {
            hop
        };
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
        let (n, hop) = dict
            .as_ref()
            .map_or((DEFAULT_N_FFT, DEFAULT_N_FFT / 4), |d| (d.n_fft, d.hop));
        self.configure(n, hop);
        std::mem::replace(&mut self.dict, dict)
    }

    /// Sets the live parameters (taken from the next sample on; gains are smoothed).
    pub fn set_params(&mut self, params: &EngineParams) {
        self.params = *params;
        self.params.iterations = self.params.iterations.clamp(1, 200);
    }

    /// Clears the stream state: the output afterwards is as from a new engine with the same
    /// dictionary and parameters.
    pub fn reset(&mut self) {
        self.clear_buffers();
        self.gains = self.params.effective_gains();
        if let Some(d) = self.dict.as_mut() {
            d.reset();
        }
    }

    /// Processes one block in place. On entry `main[c]` holds the input of channel c; on
    /// exit it holds the main output: the sum of the sources with their gains, mute and solo.
    /// `sources[s][c]` receives source s (only the buses and channels given are written; a
    /// bus may have fewer channels than main, or be empty). All slices of `main` must have
    /// the same length; channels beyond [`Self::channels`] are left untouched.
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
            return;
        }
        let n = self.n_fft();
        let mut done = 0;
        while done < len {
            let to_hop = self.hop - self.pos % self.hop;
            let chunk = to_hop.min(len - done);
            let (p0, range) = (self.pos, done..done + chunk);
            // Per-sample smoothed gains of this chunk; a settled gain is a constant (the
            // smoother is a serial chain, so it runs only while a gain moves).
            let target = self.params.effective_gains();
            for s in 0..MAX_SOURCES {
                let curve = &mut self.gain_curve[s][..chunk];
                let mut g = self.gains[s];
                if g == target[s] {
                    curve.fill(g);
                    continue;
                }
                for v in curve {
                    g += (target[s] - g) * self.gain_coef;
                    // In f32 the one-pole smoother stalls about 1.3e-5 short of its target
                    // (the step falls below half an ulp), so unity never came back exactly:
                    // snap once within GAIN_SNAP.
                    if (target[s] - g).abs() < GAIN_SNAP {
                        g = target[s];
                    }
                    *v = g;
                }
                self.gains[s] = g;
            }
            let complement = self.complement;
            for c in 0..channels {
                let out = &mut main[c][range.clone()];
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
                out.fill(0.0);
                for s in (0..MAX_SOURCES).filter(|&s| s != complement) {
                    let ring = &mut self.output_ring[s][c][p0..p0 + chunk];
                    for (((o, y), r), &g) in out
                        .iter_mut()
                        .zip(ring.iter_mut())
                        .zip(rest.iter_mut())
                        .zip(&self.gain_curve[s][..chunk])
                    {
                        *y = flush(*y);
                        *r -= *y;
                        *o += g * *y;
                    }
                    if let Some(bus) = bus_range(sources, s, c, range.clone()) {
                        bus.copy_from_slice(ring);
                    }
                    ring.fill(0.0);
                }
                for ((o, r), &g) in out
                    .iter_mut()
                    .zip(rest.iter_mut())
                    .zip(&self.gain_curve[complement][..chunk])
                {
                    *r = flush(*r);
                    *o = flush(*o + g * *r);
                }
                if let Some(bus) = bus_range(sources, complement, c, range.clone()) {
                    bus.copy_from_slice(rest);
                }
                // A source that was synthesized before a dictionary change may be the
                // complement now: what it still had pending is part of the remainder.
                self.output_ring[complement][c][p0..p0 + chunk].fill(0.0);
            }
            self.pos += chunk;
            done += chunk;
            if self.pos % self.hop == 0 {
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

    /// One STFT frame, compiled for the best instruction set of the CPU (the loops around the
    /// FFTs are simple enough for the compiler to vectorize; the solver dispatches on its own).
    fn process_frame(&mut self) {
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx512f,avx2,fma")]
            unsafe fn avx512(e: &mut Engine) {
                e.frame_body()
            }
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2(e: &mut Engine) {
                e.frame_body()
            }
            match self.simd {
                // SAFETY: `Simd::detect` found these features on this CPU.
                Simd::Avx512 => return unsafe { avx512(self) },
                Simd::Avx2 => return unsafe { avx2(self) },
                Simd::Portable => {}
            }
        }
        self.frame_body()
    }

    /// Analysis of the newest n_fft input samples, activation solve, masks, and synthesis of
    /// every used source but the complement, added into the output rings.
    ///
    /// Two real channels share one complex FFT: with `z = x0 + i x1` the spectrum is
    /// `Z = X0 + i X1`, and `X0[k] = (Z[k] + conj Z[n-k]) / 2`, `X1[k] = (Z[k] - conj
    /// Z[n-k]) / 2i` (Brigham, "The Fast Fourier Transform and its Applications", 1988,
    /// sec. 9.3). A mask `M` is real and the same for both channels, so the masked pair is
    /// `M Z` with `M` extended symmetrically (`M[n-k] = M[k]`), and one inverse FFT returns
    /// both masked channels as its real and imaginary parts.
    #[inline(always)]
    fn frame_body(&mut self) {
        let n = self.n_fft();
        let half = n / 2;
        let bins = half + 1;
        let start = self.pos; // ring index of the oldest sample of the frame
        let channels = self.channels;
        let Some(d) = self.dict.as_deref_mut() else {
            // Without a dictionary the whole input is source 1: nothing to transform.
            self.complement = 0;
            return;
        };
        let plan = &mut self.plans[self.size];
        let exponent = d.exponent;
        let mag = &mut self.mag[..bins];
        mag.fill(0.0);
        for (p, z) in self.spectra.iter_mut().enumerate() {
            let z = &mut z[..n];
            let (c0, c1) = (2 * p, 2 * p + 1);
            let stereo = c1 < channels;
            let window = &plan.window;
            window_frame(&self.input_ring[c0], start, window, z, |o, x| {
                *o = Complex32::new(x, 0.0)
            });
            if stereo {
                window_frame(&self.input_ring[c1], start, window, z, |o, x| o.im = x);
            }
            plan.forward.process_with_scratch(z, &mut plan.scratch);
            match (exponent == 2.0, stereo) {
                (true, true) => add_pair_spectrogram::<true, true>(z, mag),
                (true, false) => add_pair_spectrogram::<true, false>(z, mag),
                (false, true) => add_pair_spectrogram::<false, true>(z, mag),
                (false, false) => add_pair_spectrogram::<false, false>(z, mag),
            }
        }
        let inv_c = 1.0 / channels.max(1) as f32;
        mag.iter_mut()
            .for_each(|m| *m = if m.is_finite() { *m * inv_c } else { 0.0 });

        let params = self.params;
        d.solver
            .solve(mag, &mut d.h, params.iterations, params.sparsity);
        let used = d.used;
        let [a, b, c, e] = &mut self.masks[..] else {
            unreachable!("MAX_SOURCES masks")
        };
        let mut refs: [&mut [f32]; MAX_SOURCES] = [
            &mut a[..bins],
            &mut b[..bins],
            &mut c[..bins],
            &mut e[..bins],
        ];
        let groups: [&[usize]; MAX_SOURCES] = std::array::from_fn(|s| d.groups[s].as_slice());
        d.solver.group_models(&d.h, &groups, &mut refs);
        // Sources without components take no part in the masks.
        let mut active: [&mut [f32]; MAX_SOURCES] = Default::default();
        let mut count = 0;
        for (s, r) in refs.iter_mut().enumerate() {
            if used[s] {
                active[count] = std::mem::take(r);
                count += 1;
            }
        }
        wiener_masks_in_place(&mut active[..count], params.mask_power / exponent);

        // The masks of a bin sum to one and the windows overlap-add to one, so the sources
        // sum to the delayed input: the last used source is that input minus the others,
        // and needs no synthesis of its own.
        self.complement = (0..MAX_SOURCES).rev().find(|&s| used[s]).unwrap_or(0);
        let scale = self.ola_scale;
        for s in (0..MAX_SOURCES).filter(|&s| used[s] && s != self.complement) {
            let mask = &self.masks[s][..bins];
            for (p, z) in self.spectra.iter().enumerate() {
                let y = &mut self.synth[..n];
                let (y_low, y_high) = y.split_at_mut(bins);
                for ((o, x), &m) in y_low.iter_mut().zip(&z[..bins]).zip(mask) {
                    *o = x * m;
                }
                for ((o, x), &m) in y_high
                    .iter_mut()
                    .zip(&z[bins..n])
                    .zip(mask[1..half].iter().rev())
                {
                    *o = x * m;
                }
                plan.inverse.process_with_scratch(y, &mut plan.scratch);
                let (c0, c1) = (2 * p, 2 * p + 1);
                let window = &plan.window;
                overlap_add(&mut self.output_ring[s][c0], start, window, y, scale, |y| {
                    y.re
                });
                if c1 < channels {
                    overlap_add(&mut self.output_ring[s][c1], start, window, y, scale, |y| {
                        y.im
                    });
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

/// Writes the frame held by the circular `ring` (n_fft = `frame.len()` samples, the oldest at
/// index `start`) into `frame` in time order, windowed: `put(&mut frame[j], x[j] * window[j])`.
#[inline(always)]
fn window_frame<T>(
    ring: &[f32],
    start: usize,
    window: &[f32],
    frame: &mut [T],
    put: impl Fn(&mut T, f32),
) {
    let n = frame.len();
    let (f_first, f_second) = frame.split_at_mut(n - start);
    let (w_first, w_second) = window.split_at(n - start);
    for ((o, &x), &w) in f_first.iter_mut().zip(&ring[start..n]).zip(w_first) {
        put(o, x * w);
    }
    for ((o, &x), &w) in f_second.iter_mut().zip(&ring[..start]).zip(w_second) {
        put(o, x * w);
    }
}

/// Overlap-adds `take(frame[j]) * window[j] * scale` into the circular `ring`, time order
/// starting at index `start` (the inverse of [`window_frame`]'s indexing).
#[inline(always)]
fn overlap_add<T>(
    ring: &mut [f32],
    start: usize,
    window: &[f32],
    frame: &[T],
    scale: f32,
    take: impl Fn(&T) -> f32,
) {
    let n = frame.len();
    let (f_first, f_second) = frame.split_at(n - start);
    let (w_first, w_second) = window.split_at(n - start);
    let (r_second, r_first) = ring[..n].split_at_mut(start);
    for ((o, y), &w) in r_first.iter_mut().zip(f_first).zip(w_first) {
        *o += take(y) * w * scale;
    }
    for ((o, y), &w) in r_second.iter_mut().zip(f_second).zip(w_second) {
        *o += take(y) * w * scale;
    }
}

/// Adds the magnitude (or, with `POWER`, the power) spectrum of both channels of a pair to
/// `mag` (n_bins), from the pair's complex spectrum `z` (n_fft): `X0[k] = (Z[k] + conj
/// Z[n-k]) / 2` and `X1[k] = (Z[k] - conj Z[n-k]) / 2i`, with `Z[n] = Z[0]`. Without
/// `STEREO` the pair holds one channel and `X0 = Z`.
#[inline(always)]
fn add_pair_spectrogram<const POWER: bool, const STEREO: bool>(z: &[Complex32], mag: &mut [f32]) {
    let n = z.len();
    let half = n / 2;
    let bin = |a: Complex32, b: Complex32| {
        let (s_re, s_im) = (a.re + b.re, a.im - b.im);
        let (d_re, d_im) = (a.re - b.re, a.im + b.im);
        let p0 = 0.25 * (s_re * s_re + s_im * s_im);
        let p1 = 0.25 * (d_re * d_re + d_im * d_im);
        match (POWER, STEREO) {
            (true, true) => p0 + p1,
            (true, false) => p0,
            (false, true) => p0.sqrt() + p1.sqrt(),
            (false, false) => p0.sqrt(),
        }
    };
    mag[0] += bin(z[0], z[0]);
    // Bin k pairs with n - k: z[half..n] read backwards is z[n-1], ..., z[half].
    for ((m, &a), &b) in mag[1..=half]
        .iter_mut()
        .zip(&z[1..=half])
        .zip(z[half..n].iter().rev())
    {
        *m += bin(a, b);
    }
}

/// Instruction sets [`Engine::process_frame`] is compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Simd {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Simd {
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
            if avx2 && is_x86_feature_detected!("avx512f") {
                return Self::Avx512;
            }
            if avx2 {
                return Self::Avx2;
            }
        }
        Self::Portable
    }
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

/// Runs `engine` over whole signals in blocks of `block` samples, as a host would, and
/// returns latency-compensated outputs of the input's length: `(main[channel],
/// sources[source][channel])`. Allocates (it is the offline driver).
pub fn run_offline(
    engine: &mut Engine,
    audio: &[Vec<f32>],
    block: usize,
) -> (Vec<Vec<f32>>, Vec<Vec<Vec<f32>>>) {
    let len = audio.first().map_or(0, |c| c.len());
    let latency = engine.latency_samples();
    let total = len + latency;
    let channels = audio.len();
    let main: Vec<Vec<f32>> = (0..channels)
        .map(|c| {
            let mut v = audio[c].clone();
            v.resize(total, 0.0);
            v
        })
        .collect();
    let (mut main, mut src) = process_in_blocks(engine, main, block);
    let cut = |v: &mut Vec<f32>| {
        v.drain(..latency);
    };
    main.iter_mut().for_each(cut);
    src.iter_mut().flatten().for_each(cut);
    (main, src)
}

/// Runs `engine` over whole signals `main[channel]` in blocks of `block` samples, as a host
/// would, without latency compensation: returns the main output (in place of the input) and
/// every source bus, `sources[source][channel]`. Allocates (it is an offline driver).
pub fn process_in_blocks(
    engine: &mut Engine,
    mut main: Vec<Vec<f32>>,
    block: usize,
) -> (Vec<Vec<f32>>, Vec<Vec<Vec<f32>>>) {
    let total = main.first().map_or(0, |c| c.len());
    let mut src = vec![vec![vec![0.0f32; total]; main.len()]; MAX_SOURCES];
    let block = block.max(1);
    let mut start = 0;
    while start < total {
        let end = (start + block).min(total);
        let mut m: Vec<&mut [f32]> = main.iter_mut().map(|c| &mut c[start..end]).collect();
        let mut buses: Vec<Vec<&mut [f32]>> = src
            .iter_mut()
            .map(|b| b.iter_mut().map(|c| &mut c[start..end]).collect())
            .collect();
        let mut bus_refs: Vec<&mut [&mut [f32]]> =
            buses.iter_mut().map(|b| b.as_mut_slice()).collect();
        engine.process(&mut m, &mut bus_refs);
        start = end;
    }
    (main, src)
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;
    use rand::{Rng, SeedableRng};
    use rand_pcg::Pcg64;

    use super::*;
    use crate::nmf::SpectrogramKind;

    /// Every variant of [`Engine::process_frame`] this CPU can run, Portable first.
    fn variants() -> Vec<Simd> {
        #[allow(unused_mut)]
        let mut v = vec![Simd::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
            if avx2 {
                v.push(Simd::Avx2);
            }
            if avx2 && is_x86_feature_detected!("avx512f") {
                v.push(Simd::Avx512);
            }
        }
        v
    }

    /// Runs an engine with `process_frame` forced to `simd` over `audio`, in blocks of 333.
    fn run(
        dict: &Dictionary,
        params: &EngineParams,
        audio: &[Vec<f32>],
        simd: Simd,
    ) -> (Vec<Vec<f32>>, Vec<Vec<Vec<f32>>>) {
        let mut engine = Engine::new(dict.sample_rate as f32, audio.len());
        engine.simd = simd;
        engine.set_params(params);
        engine.set_dictionary(Some(Box::new(PreparedDictionary::by_labels(dict).unwrap())));
        run_offline(&mut engine, audio, 333)
    }

    /// Every output signal of [`run_offline`] with its name.
    fn outputs<'a>(main: &'a [Vec<f32>], src: &'a [Vec<Vec<f32>>]) -> Vec<(String, &'a [f32])> {
        let main = main
            .iter()
            .enumerate()
            .map(|(c, x)| (format!("main channel {c}"), x.as_slice()));
        let src = src.iter().enumerate().flat_map(|(s, bus)| {
            bus.iter()
                .enumerate()
                .map(move |(c, x)| (format!("source {s} channel {c}"), x.as_slice()))
        });
        main.chain(src).collect()
    }

    /// Every variant of the frame body gives the same output as the portable one, for a
    /// stereo engine on a magnitude dictionary with the classical Wiener mask, and a
    /// three-channel one (a channel pair and a lone channel) on a power dictionary with a
    /// fractional mask exponent (`powf`).
    ///
    /// The variants compile the same source with different target features. Rust neither
    /// fuses multiply-adds nor reorders float operations, so vectorizing the loops cannot
    /// change a result; the FFTs (rustfft) and the solver choose their code by themselves,
    /// the same way in both engines. The outputs measured bit-identical (largest difference
    /// 0 over every output of both cases), so equality is required: any difference is a bug
    /// in a variant. (Explicit FMA or intrinsics in the frame body would change this to
    /// rounding-level differences and call for a tolerance.)
    #[test]
    fn every_frame_variant_matches_the_portable_one() {
        let variants = variants();
        for (channels, kind, mask_power, seed) in [
            (2, SpectrogramKind::Magnitude, 2.0, 1),
            (3, SpectrogramKind::Power, 1.5, 2),
        ] {
            let mut rng = Pcg64::seed_from_u64(seed);
            let (n_fft, k) = (2048, 12);
            let dict = Dictionary {
                w: Array2::from_shape_simple_fn((n_fft / 2 + 1, k), || rng.gen::<f32>() + 0.01),
                sample_rate: 44_100,
                n_fft,
                hop: n_fft / 4,
                beta: 1.0,
                spectrogram: kind,
                labels: (0..k).map(|i| format!("s{}", i % 4)).collect(),
            };
            let audio: Vec<Vec<f32>> = (0..channels)
                .map(|_| (0..30_000).map(|_| rng.gen::<f32>() * 2.0 - 1.0).collect())
                .collect();
            let params = EngineParams {
                mask_power,
                ..EngineParams::default()
            };
            let (main_ref, src_ref) = run(&dict, &params, &audio, Simd::Portable);
            // Every source carries sound, so the comparison is not one of silences.
            for (s, bus) in src_ref.iter().enumerate() {
                for (c, x) in bus.iter().enumerate() {
                    assert!(x.iter().any(|&v| v.abs() > 1e-3), "source {s} channel {c}");
                }
            }
            for &simd in variants.iter().skip(1) {
                let (main, src) = run(&dict, &params, &audio, simd);
                let (got, want) = (outputs(&main, &src), outputs(&main_ref, &src_ref));
                assert_eq!(got.len(), want.len());
                for ((name, a), (_, b)) in got.into_iter().zip(want) {
                    assert_eq!(a.len(), b.len(), "{name}");
                    if let Some(i) = (0..a.len()).find(|&i| a[i] != b[i]) {
                        panic!(
                            "{simd:?}, {channels} channels, {kind:?}: {name}, sample {i}: {} \
                             vs portable {}",
                            a[i], b[i]
                        );
                    }
                }
            }
        }
    }
}
