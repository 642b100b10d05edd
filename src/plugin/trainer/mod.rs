//! The trainer thread: learning from captured clips, loading, exporting and preparing
//! dictionaries, all off the audio thread. See the [module documentation of `plugin`](super).

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use ndarray::Axis;

use super::params::{
    default_assignment, effective_assignment, source_label, source_roles, LearnSettings,
    SeparatorParams, SourceMode, SourceRole, Watched, MIX_LABEL,
};
use super::realtime::{Clip, Realtime};
#[doc(no_inline)]
pub use super::status::Status;
use crate::dsp::engine::{
    live_pair, rest_dictionary, Engine, LiveOptions, LiveWorker, PreparedDictionary, MAX_SOURCES,
};
use crate::dsp::stft::Stft;
use crate::nmf::{Dictionary, FitOptions, Init, SpectrogramKind};

mod learning;
mod memory;

use learning::export_if_requested;
pub use learning::{learn_capture, learn_capture_given, merge_learned};

/// How often the trainer thread looks at the persisted fields for a state load, ms.
const POLL_MS: u64 = 20;
/// Capacity of the clip queue (audio -> trainer).
pub(crate) const CLIP_QUEUE: usize = 2;
/// Capacity of the dictionary queue (trainer -> audio).
pub(crate) const DICT_QUEUE: usize = 4;
/// Capacity of the queue returning replaced dictionaries (audio -> trainer). Larger than
/// `DICT_QUEUE` + 1 so the audio thread can always hand back what it replaced.
pub(crate) const GARBAGE_QUEUE: usize = 8;
/// Number of capture buffers (double buffering: one filling, one being copied out).
pub(crate) const CAPTURE_BUFFERS: usize = 2;
/// Capture capacity, seconds of audio at the session rate.
pub const CAPTURE_SECONDS: f32 = 30.0;
/// Capacity of the queue of live workers (trainer -> live worker thread).
const LIVE_QUEUE: usize = 2;
/// Longest wait of the live worker thread for a new worker before it polls the current
/// one, ms (frames arrive every hop, 5-20 ms; the frame queue holds 64).
const LIVE_POLL_MS: u64 = 5;

/// Owns the trainer thread and the live worker thread; dropping it stops them (cancelling a
/// running fit) and joins them.
pub struct TrainerHandle {
    status: Arc<Status>,
    thread: Option<JoinHandle<()>>,
    live_thread: Option<JoinHandle<()>>,
}

impl TrainerHandle {
    pub fn status(&self) -> &Arc<Status> {
        &self.status
    }
}

impl Drop for TrainerHandle {
    fn drop(&mut self) {
        self.status.quit.store(true, Ordering::Release);
        self.status.cancel.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(t) = self.live_thread.take() {
            let _ = t.join();
        }
        memory::release_freed_memory();
    }
}

/// A source learned live, on its way to the live worker thread: its [`LiveWorker`] and what
/// it publishes its templates as (`rest_templates`: the session's STFT, the source's label).
pub(crate) struct LiveJob {
    worker: LiveWorker,
    /// `rest_templates` without templates (`w` empty): sample rate, STFT, beta, kind.
    template: Dictionary,
    label: String,
}

/// The live worker thread: takes the newest [`LiveJob`] (the old one is dropped here, never
/// on the audio thread), polls its worker (frames in, refits, templates out to the audio
/// thread), sets its freeze from the `freeze` parameter, and after every refit writes the
/// new templates to the persisted `rest_templates`.
fn run_live_worker(
    params: Arc<SeparatorParams>,
    status: Arc<Status>,
    jobs: Receiver<Option<LiveJob>>,
) {
    let mut job: Option<LiveJob> = None;
    while !status.quit.load(Ordering::Acquire) {
        match jobs.recv_timeout(Duration::from_millis(LIVE_POLL_MS)) {
            Ok(j) => job = j,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        let Some(j) = job.as_mut() else { continue };
        j.worker.set_frozen(params.freeze.value());
        if j.worker.poll() > 0 {
            let w = j.worker.learner().w_free().to_owned();
            let k = w.ncols();
            params.rest_templates.replace_quietly(Some(Dictionary {
                w,
                labels: vec![j.label.clone(); k],
                ..j.template.clone()
            }));
            status.rest_refits.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// Makes the audio-thread side (engine, capture buffers, queues) and starts the trainer
/// thread for a session at `sample_rate` with `channels` channels. Allocates and spawns: call
/// it from `activate()`. The dictionary in `params` (if any) is prepared here and installed
/// before this returns.
pub fn start(
    params: Arc<SeparatorParams>,
    status: Arc<Status>,
    sample_rate: f32,
    channels: usize,
) -> (Realtime, TrainerHandle) {
    status.quit.store(false, Ordering::Release);
    status.cancel.store(false, Ordering::Release);
    let (clip_tx, clip_rx) = bounded::<Clip>(CLIP_QUEUE);
    let (buf_tx, buf_rx) = bounded::<Box<[f32]>>(CAPTURE_BUFFERS);
    let (dict_tx, dict_rx) = bounded::<Option<Box<PreparedDictionary>>>(DICT_QUEUE);
    let (garbage_tx, garbage_rx) = bounded::<Box<PreparedDictionary>>(GARBAGE_QUEUE);
    let (live_tx, live_rx) = bounded::<Option<LiveJob>>(LIVE_QUEUE);

    let capacity = ((sample_rate.max(1.0) * CAPTURE_SECONDS).ceil() as usize).max(1);
    let first = vec![0.0f32; capacity].into_boxed_slice();
    for _ in 1..CAPTURE_BUFFERS {
        let _ = buf_tx.try_send(vec![0.0f32; capacity].into_boxed_slice());
    }

    let mut trainer = Trainer {
        params,
        status: status.clone(),
        sample_rate,
        clip_rx,
        buf_tx,
        dict_tx,
        garbage_rx,
        live_tx,
        seen_dictionary: 0,
        seen_assignment: 0,
        seen_load: 0,
        seen_export: 0,
        seen_rest: 0,
        seen_rest_export: 0,
        seen_rest_capture: 0,
        seen_modes: [SourceMode::Auto; MAX_SOURCES],
        pending: None,
    };
    let mut engine = Engine::new(sample_rate, channels);
    trainer.seen_dictionary = trainer.params.dictionary.generation();
    trainer.seen_assignment = trainer.params.assignment.generation();
    trainer.seen_rest = trainer.params.rest_templates.generation();
    trainer.seen_modes = trainer.params.modes();
    if let Some((prepared, job)) = trainer.prepare_current() {
        engine.set_dictionary(prepared);
        trainer.send_job(job);
    }
    let live_thread = {
        let (params, status) = (trainer.params.clone(), status.clone());
        std::thread::Builder::new()
            .name("nmf-separator live".into())
            .spawn(move || run_live_worker(params, status, live_rx))
            .ok()
    };
    if live_thread.is_none() {
        status.say("could not start the live worker thread: a source learned live keeps its first templates");
    }
    let realtime = Realtime::new(
        engine,
        first,
        status.clone(),
        clip_tx,
        buf_rx,
        dict_rx,
        garbage_tx,
    );
    let thread = std::thread::Builder::new()
        .name("nmf-separator trainer".into())
        .spawn(move || trainer.run())
        .ok();
    if thread.is_none() {
        status.say("could not start the trainer thread: learning is unavailable");
    }
    (
        realtime,
        TrainerHandle {
            status,
            thread,
            live_thread,
        },
    )
}

struct Trainer {
    params: Arc<SeparatorParams>,
    status: Arc<Status>,
    sample_rate: f32,
    clip_rx: Receiver<Clip>,
    buf_tx: Sender<Box<[f32]>>,
    dict_tx: Sender<Option<Box<PreparedDictionary>>>,
    garbage_rx: Receiver<Box<PreparedDictionary>>,
    live_tx: Sender<Option<LiveJob>>,
    /// Generations of the persisted fields already acted upon.
    seen_dictionary: u64,
    seen_assignment: u64,
    seen_load: u64,
    seen_export: u64,
    seen_rest: u64,
    seen_rest_export: u64,
    seen_rest_capture: u64,
    /// The source modes of the dictionary prepared last.
    seen_modes: [SourceMode; MAX_SOURCES],
    /// A prepared dictionary the full queue did not take yet (newer ones replace it).
    pending: Option<Option<Box<PreparedDictionary>>>,
}

impl Trainer {
    fn run(mut self) {
        // Look at load/export requests that arrived with the state before activation.
        self.poll_state();
        while !self.status.quit.load(Ordering::Acquire) {
            let mut dropped = false;
            while let Ok(old) = self.garbage_rx.try_recv() {
                drop(old);
                dropped = true;
            }
            if dropped {
                memory::release_freed_memory();
            }
            self.flush_pending();
            match self.clip_rx.recv_timeout(Duration::from_millis(POLL_MS)) {
                Ok(clip) => self.learn(clip),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            self.poll_state();
        }
    }

    fn session_rate(&self) -> u32 {
        self.sample_rate.round() as u32
    }

    /// Prepares the persisted dictionary with its assignment and the source modes
    /// ([`source_roles`]): `Some((dict, live))` to install (`dict` `None` meaning no
    /// dictionary; `live` the worker of a source learned live, for the live worker thread),
    /// `None` when it cannot be used (message set). The components of sources that are not
    /// known are left out; a source learned live gets [`LiveOptions`]' K_free templates
    /// (the persisted `rest_templates` when they fit, else a random start) and exemplars
    /// after the known ones.
    fn prepare_current(&self) -> Option<(Option<Box<PreparedDictionary>>, Option<LiveJob>)> {
        self.status.live_source.store(0, Ordering::Release);
        let dict = self.params.dictionary.lock().clone();
        let Some(dict) = dict else {
            return Some((None, None));
        };
        let assignment = effective_assignment(&dict, &self.params.assignment.lock());
        // The persisted dictionary stays as it is (moving back to its own rate is lossless);
        // the engine gets it mapped onto the session's STFT.
        let (dict, note) = match dict.for_rate(self.session_rate()) {
            Ok(m) => m,
            Err(e) => {
                self.status.set_mapping(None);
                self.status.say(format!("dictionary not used: {e}"));
                return None;
            }
        };
        if let Some(n) = &note {
            self.status.say(format!("dictionary {n}"));
        }
        self.status.set_mapping(note);
        let has: [bool; MAX_SOURCES] = std::array::from_fn(|s| assignment.contains(&s));
        let roles = source_roles(self.params.modes(), has);
        let keep: Vec<usize> = (0..dict.n_components())
            .filter(|&c| roles[assignment[c]] == SourceRole::Known)
            .collect();
        if keep.is_empty() {
            self.status
                .say("no source is known (all off): the input stays on Source 1");
            return Some((None, None));
        }
        let known = Dictionary {
            w: dict.w.select(Axis(1), &keep),
            labels: keep.iter().map(|&c| dict.labels[c].clone()).collect(),
            ..dict.clone()
        };
        let known_assignment: Vec<usize> = keep.iter().map(|&c| assignment[c]).collect();
        let fail = |e: &dyn std::fmt::Display| {
            self.status.say(format!("dictionary not used: {e}"));
        };
        let Some(live_s) = roles.iter().position(|&r| r == SourceRole::Live) else {
            return match PreparedDictionary::new(&known, &known_assignment) {
                Ok(p) => Some((Some(Box::new(p)), None)),
                Err(e) => {
                    fail(&e);
                    None
                }
            };
        };
        let mut opts = LiveOptions {
            source: live_s,
            ..LiveOptions::default()
        };
        opts.learner.beta = known.beta;
        let (live, mut worker, mut w_free) = match live_pair(known.w.view(), None, opts.clone()) {
            Ok(p) => p,
            Err(e) => {
                fail(&e);
                return None;
            }
        };
        let label = source_label(live_s);
        let saved = self.params.rest_templates.lock().clone();
        if let Some(saved) = saved {
            let restored = saved
                .for_rate(self.session_rate())
                .ok()
                .map(|(d, _)| d)
                .filter(|d| known.compatible_with(d).is_ok() && d.w.dim() == w_free.dim());
            if let Some(d) = restored {
                if worker.set_w_free(d.w.view()).is_ok() {
                    w_free = worker.learner().w_free().to_owned();
                }
            }
        }
        let (d, a) = rest_dictionary(
            &known,
            &known_assignment,
            live_s,
            w_free.view(),
            live.exemplars(),
            &label,
        );
        match PreparedDictionary::new(&d, &a).and_then(|p| p.with_live(live)) {
            Ok(p) => {
                self.status
                    .live_source
                    .store(live_s as u32 + 1, Ordering::Release);
                let job = LiveJob {
                    worker,
                    template: Dictionary {
                        w: ndarray::Array2::zeros((0, 0)),
                        labels: Vec::new(),
                        ..known
                    },
                    label,
                };
                Some((Some(Box::new(p)), Some(job)))
            }
            Err(e) => {
                fail(&e);
                None
            }
        }
    }

    /// Hands a live worker (or none) to the live worker thread, which drops the old one.
    fn send_job(&self, job: Option<LiveJob>) {
        if self
            .live_tx
            .send_timeout(job, Duration::from_millis(500))
            .is_err()
        {
            self.status
                .say("the live worker thread does not answer: the rest keeps its templates");
        }
    }

    fn send(&mut self, prepared: Option<Box<PreparedDictionary>>) {
        // A newer dictionary replaces one still waiting.
        self.pending = Some(prepared);
        self.flush_pending();
    }

    fn flush_pending(&mut self) {
        if let Some(p) = self.pending.take() {
            match self.dict_tx.try_send(p) {
                Ok(()) => {
                    self.status.dictionaries_sent.fetch_add(1, Ordering::AcqRel);
                }
                Err(TrySendError::Full(p)) | Err(TrySendError::Disconnected(p)) => {
                    self.pending = Some(p)
                }
            }
        }
    }

    fn prepare_and_send(&mut self) {
        self.seen_modes = self.params.modes();
        if let Some((p, job)) = self.prepare_current() {
            self.send(p);
            self.send_job(job);
        }
    }

    /// Acts on state loads: a new dictionary or assignment, a load or an export request.
    fn poll_state(&mut self) {
        let g = self.params.load_path.generation();
        if g != self.seen_load {
            self.seen_load = g;
            let path = self.params.load_path.lock().clone();
            if !path.is_empty() {
                self.params.load_path.replace_quietly(String::new());
                match Dictionary::load(Path::new(&path)) {
                    Ok(d) => {
                        let a = default_assignment(&d);
                        self.status.say(format!(
                            "loaded {path}: {} components, sources {:?}",
                            d.n_components(),
                            d.sources()
                        ));
                        self.params.dictionary.replace_quietly(Some(d));
                        self.params.assignment.replace_quietly(a);
                        self.prepare_and_send();
                    }
                    Err(e) => self.status.say(format!("cannot load dictionary: {e}")),
                }
            }
        }
        let (gd, ga) = (
            self.params.dictionary.generation(),
            self.params.assignment.generation(),
        );
        let gr = self.params.rest_templates.generation();
        if (gd, ga, gr) != (self.seen_dictionary, self.seen_assignment, self.seen_rest)
            || self.params.modes() != self.seen_modes
        {
            self.seen_dictionary = gd;
            self.seen_assignment = ga;
            self.seen_rest = gr;
            self.prepare_and_send();
        }
        self.poll_rest_requests();
        export_if_requested(
            &self.status,
            &self.params.export_path,
            &mut self.seen_export,
            &self.params.dictionary,
            "the dictionary",
            "there is no dictionary yet",
        );
    }

    /// Acts on the requests about the learned templates of the source learned live: export
    /// them as a `.npz` dictionary (`rest_export_path`), or make them that source's captured
    /// components (`rest_to_capture`, merged as a capture is).
    fn poll_rest_requests(&mut self) {
        export_if_requested(
            &self.status,
            &self.params.rest_export_path,
            &mut self.seen_rest_export,
            &self.params.rest_templates,
            "the learned templates",
            "nothing has been learned live yet",
        );
        let g = self.params.rest_to_capture.generation();
        if g != self.seen_rest_capture {
            self.seen_rest_capture = g;
            if *self.params.rest_to_capture.lock() {
                self.params.rest_to_capture.replace_quietly(false);
                self.rest_to_capture();
            }
        }
    }

    /// The learned templates become the captured components of their source.
    fn rest_to_capture(&mut self) {
        let Some(rest) = self.params.rest_templates.lock().clone() else {
            self.status.say("nothing has been learned live yet");
            return;
        };
        let old = self.params.dictionary.lock().clone();
        let old_assignment = self.params.assignment.lock().clone();
        let label = rest.labels.first().cloned().unwrap_or_default();
        let (merged, assignment, note) = merge_learned(old.as_ref(), &old_assignment, rest);
        self.status.say(format!(
            "the learned templates are now the captured components of {label}{}",
            note.map(|n| format!(" ({n})")).unwrap_or_default()
        ));
        self.params.dictionary.replace_quietly(Some(merged));
        self.params.assignment.replace_quietly(assignment);
        self.prepare_and_send();
    }

    /// For an incremental capture into source `s`: the other sources' components of the
    /// persisted dictionary, mapped onto the capture's STFT (the session rate, the learning
    /// settings' n_fft), or `None` when there are none or they do not fit the settings
    /// (another beta or hop ratio: the capture is then learned whole).
    fn known_for_capture(&self, s: usize, settings: &LearnSettings) -> Option<Dictionary> {
        let dict = self.params.dictionary.lock().clone()?;
        let assignment = effective_assignment(&dict, &self.params.assignment.lock());
        let keep: Vec<usize> = (0..dict.n_components())
            .filter(|&c| assignment[c] != s)
            .collect();
        if keep.is_empty() {
            return None;
        }
        let mapped = dict.mapped_to(self.session_rate(), settings.n_fft).ok()?;
        let fits = mapped.beta == settings.beta
            && mapped.hop * 4 == mapped.n_fft
            && mapped.spectrogram == SpectrogramKind::Magnitude;
        fits.then(|| Dictionary {
            w: mapped.w.select(Axis(1), &keep),
            labels: keep.iter().map(|&c| mapped.labels[c].clone()).collect(),
            ..mapped
        })
    }

    fn learn(&mut self, clip: Clip) {
        let len = clip.len.min(clip.buffer.len());
        let samples = clip.buffer[..len].to_vec();
        // Hand the buffer back at once so the next capture can start while we learn.
        if self.buf_tx.try_send(clip.buffer).is_err() {
            nice_plug::nice_warn!("capture buffer queue full");
        }
        let settings = self.params.learn.lock().clone();
        let (label, k) = match clip.target.source() {
            Some(s) => (source_label(s), settings.components_per_source),
            None => (MIX_LABEL.to_string(), settings.mix_components),
        };
        self.status.cancel.store(false, Ordering::Release);
        self.status.progress.store(0.0, Ordering::Release);
        self.status.learning.store(true, Ordering::Release);
        let status = self.status.clone();
        let mut observer = |fraction: f32| {
            status.progress.store(fraction, Ordering::Release);
            !(status.cancel.load(Ordering::Acquire) || status.quit.load(Ordering::Acquire))
        };
        let given = match clip.target.source() {
            Some(s) if settings.given_known => self.known_for_capture(s, &settings),
            _ => None,
        };
        let learned = match &given {
            Some(known) => {
                learn_capture_given(&samples, known, &settings, &label, k, &mut observer)
            }
            None => learn_capture(
                &samples,
                self.session_rate(),
                &settings,
                &label,
                k,
                &mut observer,
            ),
        };
        drop(samples);
        memory::release_freed_memory();
        self.status.learning.store(false, Ordering::Release);
        match learned {
            Ok(new) => {
                let old = self.params.dictionary.lock().clone();
                let old_assignment = self.params.assignment.lock().clone();
                let (merged, assignment, note) = merge_learned(old.as_ref(), &old_assignment, new);
                self.status.say(format!(
                    "learned {k} components for {label} from {:.1} s{}; dictionary: {} components",
                    len as f32 / self.sample_rate.max(1.0),
                    note.map(|n| format!(" ({n})")).unwrap_or_default(),
                    merged.n_components()
                ));
                self.params.dictionary.replace_quietly(Some(merged));
                self.params.assignment.replace_quietly(assignment);
                // Sent first, then counted: whoever sees the count sees the dictionary sent
                // (preparing a live rest takes a few ms; tests wait on these counters).
                self.prepare_and_send();
                self.status.clips_learned.fetch_add(1, Ordering::AcqRel);
            }
            Err(e) => self.status.say(format!("learning {label} failed: {e}")),
        }
        self.status.progress.store(1.0, Ordering::Release);
    }
}
