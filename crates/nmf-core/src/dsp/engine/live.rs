//! A source "learned live": the rest of the input, next to sources whose templates are known.
//!
//! The rest source owns two kinds of components in the engine's dictionary:
//! - **learned templates** (K_free): refitted by a worker ([`LiveWorker`], an
//!   [`OnlineLearner`] on the frames seen so far) and handed back to the audio thread, which
//!   swaps them into the frame solver at a frame boundary;
//! - **recent exemplars** (K_ex, default 4): the audio thread's own residuals of the last
//!   frames, `r_t = max(v_t - sum_known W h_t, 0) / (1 + mu e)`, unit L1 norm, where `e` is the
//!   overlap weight of [`crate::nmf::semi::overlap_weights`] (bins the known source
//!   dominates, as the worker last estimated them). Frame t is solved with the exemplars of
//!   frames t-1, t-2, ..., so the rest source can explain a sound the learned templates have not
//!   seen yet (an onset, a new note or phoneme): a sound changes little from one hop to the
//!   next. This is the causal form of exemplar-based NMF (Gemmeke, Virtanen & Hurmalainen
//!   2011, "Exemplar-based sparse representations for noise robust automatic speech
//!   recognition", IEEE TASLP 19(7)), with the exemplars taken from the input's own
//!   unexplained part.
//!
//! Measured in the numpy simulation (`benches/semi/history.py`) on the bench's set A: the
//! learned templates alone, even fully refitted on all past frames every 0.5 s, reach only
//! about 7.6 dB on A_speech_noise (a template learned from the past does not explain the next
//! phoneme). With the exemplars, `separate --realtime --rest` reaches 11.5 dB on
//! A_speech_noise and 10.6 dB on A_drums_guitar (BENCHMARKS.md, "Live"); on A_piano_bass,
//! where the exemplars carry piano notes that the piano dictionary lacks into the rest, the
//! early refits, the residual start and the tonality rule bring it to 4.55 dB (the same
//! table).
//!
//! Hand-overs: frames go to the worker through a bounded channel of preallocated
//! [`LiveFrame`] buffers (the audio thread takes an empty one from a pool, fills it, sends it;
//! the worker sends it back to the pool), and templates come back as preallocated
//! [`LiveTemplates`] the same way. Nothing on the audio thread allocates, locks or waits: a
//! full channel drops the frame (counted in [`LiveRest::dropped_frames`]).
//!
//! Freeze ([`super::EngineParams::freeze`]): while it is on, the audio thread sends no
//! frames to the worker, so the worker's window and refit count stand still and the learned
//! templates do not change (what a user asks for when the rest "sounds right" and should not
//! drift, e.g. while only the known noise plays for a long time). A template set the worker
//! sent before the freeze still applies at its stamped frame (it was learned before). The
//! exemplars keep following the input: they are not learned state but the residual of the
//! last K_ex hops (about 40 ms at 48 kHz, n_fft 2048), the part that lets the rest take a
//! sound its templates have not seen; without them the rest loses about 4 dB on
//! A_speech_noise (7.6 against 11.5 dB above), and on a reopened project they would start
//! flat. Turning freeze off resumes where the worker stood.
//!
//! Each template set carries the frame index from which it applies (`apply_at`): a refit
//! started after frame t takes effect at frame `t + 1 + delay`, or later if the worker is
//! late. A driver that polls the worker after every frame (the file driver of
//! `separate --realtime --rest`) is therefore deterministic.

use crossbeam_channel::{bounded, Receiver, Sender};
use ndarray::ArrayView2;

use crate::nmf::online::{OnlineLearner, OnlineOptions};
use crate::nmf::semi::{known_share_with, overlap_weights_in_place};
use crate::nmf::{FrameSolver, NmfError};

/// Settings of a live rest source.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    /// Source bus of the rest.
    pub source: usize,
    /// The worker's learner (K_free, window, refit iterations, penalty).
    pub learner: OnlineOptions,
    /// Recent-residual exemplar templates (K_ex >= 0).
    pub exemplars: usize,
    /// Frames between two refits of the worker (0: no refits, the learned templates stay
    /// as they start).
    pub period: usize,
    /// Frames from the end of a refit's data to the frame its templates apply to.
    pub delay: usize,
    /// Frames between two refits while the worker's window is not yet full (0: `period`;
    /// never longer than `period`, which is used when it is the shorter).
    pub early_period: usize,
    /// Weight of the overlap weights on the exemplars (`mu` above).
    pub exemplar_penalty: f32,
    /// Exponent p of the tonality scaling of the learner's overlap weight
    /// (`learner.overlap * T^p`, as offline: [`crate::nmf::semi::tonal_weight`]; 0 = the
    /// weight as given).
    pub tonal_exponent: f32,
    /// Tonality T of the known dictionary from which the rest gets no exemplars (above 1:
    /// never). See [`LiveOptions::for_known`].
    pub exemplar_max_tonality: f32,
}

impl LiveOptions {
    /// The settings a rest next to the known dictionary `w_known` (n_bins x K_known) runs
    /// with, from its tonality T ([`crate::nmf::semi::tonality`]); [`live_pair`] applies it,
    /// so the plugin and `separate --realtime --rest` follow the same rule:
    /// - the learner's overlap weight becomes `learner.overlap * T^p` (p =
    ///   `tonal_exponent`), the offline fit's rule ([`crate::nmf::semi::overlap_weight`]);
    /// - no exemplars if `T >= exemplar_max_tonality`. A tonal capture (notes) is an
    ///   incomplete dictionary of its source: the notes it did not play are in the known
    ///   source's residual, so residual exemplars carry them into the rest. A noise or drum
    ///   capture explains its source everywhere, and there the exemplars are what lets the
    ///   rest follow a new sound at once.
    ///
    /// Measured on the bench's set A (BENCHMARKS.md, "Live"): T is 0.52 (noise), 0.90
    /// (drums), 0.995 (piano); with exemplars A_piano_bass falls below 0 dB, without them
    /// A_speech_noise loses about 2 dB. The limit 0.98 lies between drums and piano (the
    /// geometric middle of 1 - T).
    pub fn for_known(&self, w_known: ArrayView2<f32>) -> LiveOptions {
        let mut o = self.clone();
        let t = crate::nmf::semi::tonality(w_known);
        o.learner.overlap =
            crate::nmf::semi::tonal_weight(self.learner.overlap, self.tonal_exponent, w_known);
        o.tonal_exponent = 0.0;
        if t >= self.exemplar_max_tonality {
            o.exemplars = 0;
        }
        o
    }
}

impl Default for LiveOptions {
    fn default() -> Self {
        Self {
            source: 1,
            learner: OnlineOptions {
                window: 256,
                refit_iters: 5,
                init_iters: 50,
                init_refits: 1,
                ..OnlineOptions::default()
            },
            exemplars: 4,
            period: 64,
            delay: 16,
            early_period: 32,
            exemplar_penalty: 0.0,
            tonal_exponent: crate::nmf::semi::TONAL_EXPONENT,
            exemplar_max_tonality: 0.98,
        }
    }
}

/// One frame on its way to the worker.
pub struct LiveFrame {
    /// Index of the frame in the stream (0, 1, ...).
    pub index: u64,
    /// The frame's spectrogram column (n_bins).
    pub v: Vec<f32>,
    /// Its activations for `[W_known | W_free]` (K_known + K_free).
    pub h: Vec<f32>,
}

/// Learned templates on their way to the audio thread.
pub struct LiveTemplates {
    /// First frame they apply to.
    pub apply_at: u64,
    /// W_free, K_free templates of n_bins, template after template.
    pub w_free: Vec<f32>,
    /// Overlap weights e (n_bins) for the exemplars.
    pub weights: Vec<f32>,
}

/// Frames in flight between the audio thread and the worker.
const FRAME_SLOTS: usize = 64;
/// Template sets in flight.
const TEMPLATE_SLOTS: usize = 4;

/// The audio thread's side of a live rest source, owned by a
/// [`super::PreparedDictionary`].
pub struct LiveRest {
    opts: LiveOptions,
    n_bins: usize,
    /// Components `[known | free | exemplars]`: K_known, then K_free, then K_ex.
    k_known: usize,
    k_free: usize,
    /// Next exemplar slot to overwrite, and exemplars written so far.
    next_ex: usize,
    /// Overlap weights for the exemplars (n_bins), from the worker.
    weights: Vec<f32>,
    /// Residual scratch (n_bins).
    residual: Vec<f32>,
    frame: u64,
    pending: Option<Box<LiveTemplates>>,
    frames_tx: Sender<Box<LiveFrame>>,
    frames_pool: Receiver<Box<LiveFrame>>,
    templates_rx: Receiver<Box<LiveTemplates>>,
    templates_back: Sender<Box<LiveTemplates>>,
    spare_frame: Option<Box<LiveFrame>>,
    spare_templates: Option<Box<LiveTemplates>>,
    dropped: u64,
    applied: u64,
}

/// The worker's side: the learner and the other ends of the channels.
pub struct LiveWorker {
    learner: OnlineLearner,
    period: usize,
    /// The refit period while the window fills, resolved from the options once: `period`
    /// when `LiveOptions::early_period` is 0 or longer.
    early_period: usize,
    delay: usize,
    since_refit: usize,
    last_index: Option<u64>,
    frames_rx: Receiver<Box<LiveFrame>>,
    frames_pool: Sender<Box<LiveFrame>>,
    templates_tx: Sender<Box<LiveTemplates>>,
    templates_free: Receiver<Box<LiveTemplates>>,
    /// Penalty scratch (n_bins each) and prefix sums / sorted ratios for the known share.
    mix_sum: Vec<f64>,
    frames_seen: u64,
    known: Vec<f32>,
    prefix: Vec<f64>,
    sorted: Vec<f64>,
    share: Vec<f32>,
    mix_mean: Vec<f32>,
    share_floor: f32,
    frozen: bool,
}

/// A live rest source for `w_known` (n_bins x K_known) with the known source's mean spectrum
/// `known_spectrum` (n_bins; `None`: W_known's row sums), under `opts.for_known(w_known)`
/// ([`LiveOptions::for_known`]): the audio side, the worker side, and the starting W_free
/// (n_bins x K_free, the learner's random start from `opts.learner.seed`) to put into the
/// dictionary, with [`LiveRest::exemplars`] exemplar columns after it. Allocates
/// everything.
///
/// # Errors
/// [`NmfError::InvalidInput`] as [`OnlineLearner::new`].
pub fn live_pair(
    w_known: ArrayView2<f32>,
    known_spectrum: Option<&[f32]>,
    opts: LiveOptions,
) -> Result<(LiveRest, LiveWorker, ndarray::Array2<f32>), NmfError> {
    let opts = opts.for_known(w_known);
    let learner = OnlineLearner::new(w_known, known_spectrum, opts.learner.clone())?;
    let (n_bins, k_known) = w_known.dim();
    let k_free = opts.learner.n_free;
    let k = k_known + k_free;
    let (frames_tx, frames_rx) = bounded(FRAME_SLOTS);
    let (pool_tx, pool_rx) = bounded(FRAME_SLOTS);
    for _ in 0..FRAME_SLOTS {
        let _ = pool_tx.try_send(Box::new(LiveFrame {
            index: 0,
            v: vec![0.0; n_bins],
            h: vec![0.0; k],
        }));
    }
    let (templates_tx, templates_rx) = bounded(TEMPLATE_SLOTS);
    let (back_tx, back_rx) = bounded(TEMPLATE_SLOTS);
    for _ in 0..TEMPLATE_SLOTS {
        let _ = back_tx.try_send(Box::new(LiveTemplates {
            apply_at: 0,
            w_free: vec![0.0; n_bins * k_free],
            weights: vec![0.0; n_bins],
        }));
    }
    let w_free = learner.w_free().to_owned();
    let known = known_spectrum.map_or_else(
        || crate::nmf::semi::dictionary_spectrum(w_known),
        <[f32]>::to_vec,
    );
    let share_floor = opts.learner.share_floor;
    let rest = LiveRest {
        n_bins,
        k_known,
        k_free,
        next_ex: 0,
        weights: vec![0.0; n_bins],
        residual: vec![0.0; n_bins],
        frame: 0,
        pending: None,
        frames_tx,
        frames_pool: pool_rx,
        templates_rx,
        templates_back: back_tx,
        spare_frame: None,
        spare_templates: None,
        dropped: 0,
        applied: 0,
        opts: opts.clone(),
    };
    let worker = LiveWorker {
        learner,
        period: opts.period,
        early_period: match opts.early_period {
            0 => opts.period,
            e => e.min(opts.period),
        },
        delay: opts.delay,
        since_refit: 0,
        last_index: None,
        frames_rx,
        frames_pool: pool_tx,
        templates_tx,
        templates_free: back_rx,
        mix_sum: vec![0.0; n_bins],
        frames_seen: 0,
        known,
        prefix: vec![0.0; n_bins + 1],
        sorted: vec![0.0; n_bins],
        share: vec![0.0; n_bins],
        mix_mean: vec![0.0; n_bins],
        share_floor,
        frozen: false,
    };
    Ok((rest, worker, w_free))
}

impl LiveRest {
    /// Source bus of the rest.
    pub fn source(&self) -> usize {
        self.opts.source
    }

    /// Components of the rest source in the dictionary: K_free + K_ex.
    pub fn n_components(&self) -> usize {
        self.k_free + self.opts.exemplars
    }

    /// K_ex, the exemplar templates after the rule of [`LiveOptions::for_known`] (the
    /// dictionary's last columns; [`rest_dictionary`]'s `exemplars`).
    pub fn exemplars(&self) -> usize {
        self.opts.exemplars
    }

    /// The settings in force (after [`LiveOptions::for_known`]).
    pub fn options(&self) -> &LiveOptions {
        &self.opts
    }

    /// K_known.
    pub fn k_known(&self) -> usize {
        self.k_known
    }

    /// Frames the worker could not take (its channel was full).
    pub fn dropped_frames(&self) -> u64 {
        self.dropped
    }

    /// Template sets swapped in so far.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// Before the solve of a frame: swaps in the newest template set that is due. Does not
    /// allocate.
    pub(super) fn before_frame(&mut self, solver: &mut FrameSolver) {
        loop {
            if self.pending.is_none() {
                self.pending = self.templates_rx.try_recv().ok();
            }
            let Some(p) = self.pending.as_deref() else {
                break;
            };
            if p.apply_at > self.frame {
                break;
            }
            let nb = self.n_bins;
            for j in 0..self.k_free {
                solver.set_template(self.k_known + j, &p.w_free[j * nb..(j + 1) * nb]);
            }
            self.weights.copy_from_slice(&p.weights);
            self.applied += 1;
            let done = self.pending.take().expect("pending");
            // The channel holds every set there is, so this cannot fail; if it did, the set
            // would be kept rather than freed on the audio thread.
            if let Err(e) = self.templates_back.try_send(done) {
                self.spare_templates = Some(e.into_inner());
            }
        }
    }

    /// After the solve of frame `v` (n_bins) with activations `h` (K) and the model `W h`
    /// of every source (`models[s]`, n_bins; `used[s]` for the sources with components):
    /// the residual of the known sources becomes the newest exemplar for the next frame,
    /// and the frame goes to the worker (not while `frozen`: see the module documentation).
    /// Does not allocate.
    pub(super) fn after_frame(
        &mut self,
        solver: &mut FrameSolver,
        v: &[f32],
        h: &[f32],
        models: &[&mut [f32]],
        used: &[bool],
        frozen: bool,
    ) {
        let k_ex = self.opts.exemplars;
        if k_ex > 0 {
            let pen = self.opts.exemplar_penalty;
            let peak = v.iter().fold(0.0f32, |m, &x| m.max(x));
            self.residual.copy_from_slice(v);
            for (s, m) in models.iter().enumerate() {
                if used.get(s).copied().unwrap_or(false) && s != self.opts.source {
                    for (r, &y) in self.residual.iter_mut().zip(m.iter()) {
                        *r -= y;
                    }
                }
            }
            let mut sum = 0.0f32;
            for (r, &e) in self.residual.iter_mut().zip(&self.weights) {
                *r = r.max(0.0) / (1.0 + pen * e) + 1e-9 * peak;
                sum += *r;
            }
            if sum > 0.0 && sum.is_finite() {
                let inv = 1.0 / sum;
                self.residual.iter_mut().for_each(|r| *r *= inv);
                let slot = self.k_known + self.k_free + self.next_ex;
                solver.set_template(slot, &self.residual);
                self.next_ex = (self.next_ex + 1) % k_ex;
            }
        }
        if self.opts.period > 0 && !frozen {
            let buf = self
                .spare_frame
                .take()
                .map_or_else(|| self.frames_pool.try_recv(), Ok);
            match buf {
                Ok(mut f) => {
                    f.index = self.frame;
                    f.v.copy_from_slice(v);
                    let k = self.k_known + self.k_free;
                    f.h.copy_from_slice(&h[..k]);
                    if let Err(e) = self.frames_tx.try_send(f) {
                        // Cannot happen (the channel holds every buffer there is); kept,
                        // not dropped here, so the audio thread never frees memory.
                        self.spare_frame = Some(e.into_inner());
                        self.dropped += 1;
                    }
                }
                Err(_) => self.dropped += 1,
            }
        }
        self.frame += 1;
    }

    /// Back to the state of a new stream: exemplars cleared to flat, frame count 0 (the
    /// learned templates stay).
    pub(super) fn reset(&mut self, solver: &mut FrameSolver) {
        let flat = 1.0 / self.n_bins as f32;
        self.residual.fill(flat);
        for j in 0..self.opts.exemplars {
            solver.set_template(self.k_known + self.k_free + j, &self.residual);
        }
        self.next_ex = 0;
    }
}

impl LiveWorker {
    /// Takes every frame waiting, and refits every `period` frames, sending the templates
    /// stamped `last frame + 1 + delay`. Returns the number of refits done. Allocates
    /// nothing (it may run on any thread; the plugin runs it on a worker thread).
    pub fn poll(&mut self) -> usize {
        let mut refits = 0;
        while let Ok(f) = self.frames_rx.try_recv() {
            self.learner.push_frame(&f.v, Some(&f.h));
            for (m, &x) in self.mix_sum.iter_mut().zip(&f.v) {
                *m += f64::from(x);
            }
            self.frames_seen += 1;
            self.last_index = Some(f.index);
            let _ = self.frames_pool.try_send(f);
            self.since_refit += 1;
            let period = if self.learner.frames_held() < self.learner.options().window {
                self.early_period
            } else {
                self.period
            };
            if self.period > 0 && self.since_refit >= period && !self.frozen {
                self.since_refit = 0;
                if self.refit_and_send() {
                    refits += 1;
                }
            }
        }
        refits
    }

    /// Stops (or resumes) the refits: frames are still taken, templates stay.
    pub fn set_frozen(&mut self, frozen: bool) {
        self.frozen = frozen;
    }

    /// The learner (W_free, refit count).
    pub fn learner(&self) -> &OnlineLearner {
        &self.learner
    }

    /// Replaces the learner's W_free (n_bins x K_free: templates restored with a project;
    /// the audio side must start from the same ones, e.g. through [`rest_dictionary`]).
    /// Allocates nothing.
    ///
    /// # Errors
    /// As [`OnlineLearner::set_w_free`].
    pub fn set_w_free(&mut self, w_free: ArrayView2<f32>) -> Result<(), NmfError> {
        self.learner.set_w_free(w_free)
    }

    /// Whether refits are stopped ([`Self::set_frozen`]).
    pub fn is_frozen(&self) -> bool {
        self.frozen
    }

    fn refit_and_send(&mut self) -> bool {
        let Ok(mut t) = self.templates_free.try_recv() else {
            return false; // the audio thread still holds every set: skip this refit
        };
        self.learner.refit();
        let w = self.learner.w_free();
        let nb = w.nrows();
        for j in 0..w.ncols() {
            for (o, &x) in t.w_free[j * nb..(j + 1) * nb].iter_mut().zip(w.column(j)) {
                *o = x;
            }
        }
        // Overlap weights from the mean of every frame seen (the exemplars' penalty).
        let inv = 1.0 / self.frames_seen.max(1) as f64;
        for (m, &s) in self.mix_mean.iter_mut().zip(&self.mix_sum) {
            *m = (s * inv) as f32;
        }
        known_share_with(
            &self.mix_mean,
            &self.known,
            &mut self.prefix,
            &mut self.sorted,
            &mut self.share,
        );
        overlap_weights_in_place(&mut self.share, self.share_floor);
        t.weights.copy_from_slice(&self.share);
        t.apply_at = self.last_index.map_or(0, |i| i + 1) + self.delay as u64;
        self.templates_tx.try_send(t).is_ok()
    }
}

/// The engine's dictionary for a rest source learned live next to `known` (every component
/// of it known, `known_assignment[k]` its source): `[W_known | w_free | exemplars]` with
/// `w_free` (n_bins x K_free, e.g. the third value of [`live_pair`]) and `exemplars` flat
/// columns (1/n_bins; the engine overwrites them), the rest's components labelled `label`
/// and assigned to `source`. The layout [`super::PreparedDictionary::with_live`] expects.
/// Allocates.
///
/// # Panics
/// If `w_free` does not have `known`'s bins or the assignment is not one entry per
/// component.
pub fn rest_dictionary(
    known: &crate::nmf::Dictionary,
    known_assignment: &[usize],
    source: usize,
    w_free: ArrayView2<f32>,
    exemplars: usize,
    label: &str,
) -> (crate::nmf::Dictionary, Vec<usize>) {
    let (n_bins, kk) = known.w.dim();
    assert_eq!(w_free.nrows(), n_bins, "rest_dictionary: bins");
    assert_eq!(known_assignment.len(), kk, "rest_dictionary: assignment");
    let k_free = w_free.ncols();
    let k = kk + k_free + exemplars;
    let mut w = ndarray::Array2::<f32>::from_elem((n_bins, k), 1.0 / n_bins as f32);
    w.slice_mut(ndarray::s![.., ..kk]).assign(&known.w);
    w.slice_mut(ndarray::s![.., kk..kk + k_free])
        .assign(&w_free);
    let mut labels = known.labels.clone();
    labels.resize(k, label.to_string());
    let mut assignment = known_assignment.to_vec();
    assignment.resize(k, source);
    (
        crate::nmf::Dictionary {
            w,
            labels,
            ..known.clone()
        },
        assignment,
    )
}
