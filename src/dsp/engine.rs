//! The real-time separation engine: a streaming multi-bus STFT around the per-frame
//! activation solve. This is the exact code path of the plugin; the CLI's
//! `separate --realtime` and the tests drive it over plain slices.
//!
//! Every hop: one forward FFT per channel, one activation solve on the channels' mean
//! spectrogram (templates fixed, warm start from the previous frame), one Wiener mask per
//! source, one inverse FFT per source and channel, overlap-add. Input sample `t` leaves at
//! output sample `t + n_fft` ([`Engine::latency_samples`]).
//!
//! Nothing allocates, locks or does I/O after [`Engine::new`]: the FFT plans, windows and
//! buffers of every supported size are made there, and a new dictionary arrives already
//! prepared ([`PreparedDictionary`], built off the audio thread) and the old one is handed
//! back to the caller to be dropped elsewhere.

use std::sync::Arc;

use realfft::num_complex::Complex32;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

use super::mask::wiener_masks_in_place;
use super::window::{periodic_hann, squared_overlap};
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
    /// Source index (0..MAX_SOURCES) of every component.
    assignment: Vec<usize>,
    /// Activations of the latest frame (K): the warm start of the next one.
    h: Vec<f32>,
    n_fft: usize,
    hop: usize,
    /// Spectrogram exponent (1 magnitude, 2 power).
    exponent: f32,
    /// Which sources own at least one component.
    used: [bool; MAX_SOURCES],
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
        Ok(Self {
            solver: FrameSolver::new(dict.w.view(), dict.beta),
            assignment: assignment.to_vec(),
            h: vec![1.0 / k as f32; k],
            n_fft: dict.n_fft,
            hop: dict.hop,
            exponent: dict.spectrogram.exponent(),
            used,
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
    forward: Arc<dyn RealToComplex<f32>>,
    inverse: Arc<dyn ComplexToReal<f32>>,
    window: Vec<f32>,
    /// 1 / (n_fft * sum of squared windows overlapping a sample) for every supported hop
    /// is computed on use; this is the window for analysis and synthesis.
    fwd_scratch: Vec<Complex32>,
    inv_scratch: Vec<Complex32>,
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
    /// Pending output, `[source][channel][MAX n_fft]`, circular with `pos`.
    output_ring: Vec<Vec<Vec<f32>>>,
    /// Write position in the rings, 0..n_fft.
    pos: usize,
    frame: Vec<f32>,
    spectra: Vec<Vec<Complex32>>,
    masked: Vec<Complex32>,
    /// Mean spectrogram frame of the channels (n_bins).
    mag: Vec<f32>,
    /// Source models, then masks, `[source][n_bins]`.
    masks: Vec<Vec<f32>>,
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
        let mut planner = RealFftPlanner::<f32>::new();
        let plans: Vec<SizePlan> = FFT_SIZES
            .iter()
            .map(|&n| {
                let forward = planner.plan_fft_forward(n);
                let inverse = planner.plan_fft_inverse(n);
                SizePlan {
                    fwd_scratch: forward.make_scratch_vec(),
                    inv_scratch: inverse.make_scratch_vec(),
                    forward,
                    inverse,
                    window: periodic_hann(n),
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
            frame: vec![0.0; max_n],
            spectra: vec![vec![Complex32::default(); max_bins]; channels],
            masked: vec![Complex32::default(); max_bins],
            mag: vec![0.0; max_bins],
            masks: vec![vec![0.0; max_bins]; MAX_SOURCES],
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
            // Per-sample smoothed gains of this chunk.
            let target = self.params.effective_gains();
            for s in 0..MAX_SOURCES {
                let mut g = self.gains[s];
                for v in &mut self.gain_curve[s][..chunk] {
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
            for c in 0..channels {
                let out = &mut main[c][range.clone()];
                // Non-finite or subnormal input becomes silence, so it cannot poison the
                // spectra; the stream recovers within one frame.
                for (r, &x) in self.input_ring[c][p0..p0 + chunk]
                    .iter_mut()
                    .zip(out.iter())
                {
                    *r = if x.is_normal() { x } else { 0.0 };
                }
                out.fill(0.0);
                for s in 0..MAX_SOURCES {
                    let ring = &mut self.output_ring[s][c][p0..p0 + chunk];
                    for ((o, y), &g) in out
                        .iter_mut()
                        .zip(ring.iter_mut())
                        .zip(&self.gain_curve[s][..chunk])
                    {
                        *y = flush(*y);
                        *o += g * *y;
                    }
                    if let Some(bus) = sources
                        .get_mut(s)
                        .and_then(|b| b.get_mut(c))
                        .and_then(|b| b.get_mut(range.clone()))
                    {
                        bus.copy_from_slice(ring);
                    }
                    ring.fill(0.0);
                }
                out.iter_mut().for_each(|o| *o = flush(*o));
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

    /// Analysis of the newest n_fft input samples, activation solve, masks, synthesis added
    /// into the output rings.
    #[inline(always)]
    fn frame_body(&mut self) {
        let n = self.n_fft();
        let bins = n / 2 + 1;
        let start = self.pos; // oldest sample of the frame
        let channels = self.channels;
        let plan = &mut self.plans[self.size];
        let exponent = self.dict.as_ref().map_or(1.0, |d| d.exponent);
        let mag = &mut self.mag[..bins];
        mag.fill(0.0);
        for c in 0..channels {
            let ring = &self.input_ring[c];
            let frame = &mut self.frame[..n];
            let (older, newer) = ring[..n].split_at(start);
            let (f_newer, f_older) = frame.split_at_mut(n - start);
            let (w_newer, w_older) = plan.window.split_at(n - start);
            for ((f, &x), &w) in f_newer.iter_mut().zip(newer).zip(w_newer) {
                *f = x * w;
            }
            for ((f, &x), &w) in f_older.iter_mut().zip(older).zip(w_older) {
                *f = x * w;
            }
            let spec = &mut self.spectra[c][..bins];
            if plan
                .forward
                .process_with_scratch(frame, spec, &mut plan.fwd_scratch)
                .is_err()
            {
                spec.fill(Complex32::default());
            }
            for (m, x) in mag.iter_mut().zip(spec.iter()) {
                *m += if exponent == 2.0 {
                    x.norm_sqr()
                } else {
                    x.norm_sqr().sqrt()
                };
            }
        }
        let inv_c = 1.0 / channels.max(1) as f32;
        mag.iter_mut()
            .for_each(|m| *m = if m.is_finite() { *m * inv_c } else { 0.0 });

        let params = self.params;
        let mut used = [false; MAX_SOURCES];
        match self.dict.as_deref_mut() {
            Some(d) => {
                d.solver
                    .solve(mag, &mut d.h, params.iterations, params.sparsity);
                used = d.used;
                for m in self.masks.iter_mut() {
                    m[..bins].fill(0.0);
                }
                for (k, &s) in d.assignment.iter().enumerate() {
                    let hk = d.h[k];
                    for (o, &w) in self.masks[s][..bins].iter_mut().zip(d.solver.template(k)) {
                        *o += w * hk;
                    }
                }
                let [a, b, c, e] = &mut self.masks[..] else {
                    unreachable!("MAX_SOURCES masks")
                };
                let mut refs: [&mut [f32]; MAX_SOURCES] = [
                    &mut a[..bins],
                    &mut b[..bins],
                    &mut c[..bins],
                    &mut e[..bins],
                ];
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
            }
            None => {
                used[0] = true;
                self.masks[0][..bins].fill(1.0);
            }
        }

        let scale = self.ola_scale;
        for s in 0..MAX_SOURCES {
            if !used[s] {
                continue;
            }
            for c in 0..channels {
                let masked = &mut self.masked[..bins];
                for ((o, x), &m) in masked
                    .iter_mut()
                    .zip(&self.spectra[c][..bins])
                    .zip(&self.masks[s][..bins])
                {
                    *o = *x * m;
                }
                masked[0].im = 0.0;
                masked[bins - 1].im = 0.0;
                let frame = &mut self.frame[..n];
                if plan
                    .inverse
                    .process_with_scratch(masked, frame, &mut plan.inv_scratch)
                    .is_err()
                {
                    continue;
                }
                let ring = &mut self.output_ring[s][c];
                let (head, tail) = ring[..n].split_at_mut(start);
                let (f_tail, f_head) = frame.split_at(n - start);
                let (w_tail, w_head) = plan.window.split_at(n - start);
                for ((o, &y), &w) in tail.iter_mut().zip(f_tail).zip(w_tail) {
                    *o += y * w * scale;
                }
                for ((o, &y), &w) in head.iter_mut().zip(f_head).zip(w_head) {
                    *o += y * w * scale;
                }
            }
        }
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
