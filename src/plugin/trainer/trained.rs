//! The trained separator on the trainer thread: every source's latest solo capture is kept;
//! once two or more sources hold one and the set changed, a separator is trained from them
//! in the background ([`crate::trained::train()`], the plain dictionaries separating
//! meanwhile), prepared for the engine ([`crate::trained::realtime::prepare`]) and sent in
//! place of the plain dictionary; it is exported on request.

use std::ops::ControlFlow;
use std::time::Instant;

use super::*;
use crate::dsp::engine::assignment_by_labels;
use crate::nmf::NmfError;
use crate::trained::{
    realtime::prepare, train, TrainOptions, TrainProgress, TrainSource, TrainStage,
};

/// Longest part of a capture kept for training (its first seconds), s: at most
/// 2 channels x 15 s x 48 kHz x 4 B = 5.8 MB per source.
pub const TRAIN_CLIP_SECONDS: f32 = 15.0;
/// A stereo capture whose channels differ by at most this fraction of its peak is kept as
/// one channel: a mono source on both channels has no spatial image to learn.
const DUAL_MONO_TOLERANCE: f32 = 1e-6;

/// Every source's latest solo capture kept for training, `channels[c][frame]`.
pub(super) type Captures = [Option<Vec<Vec<f32>>>; MAX_SOURCES];

/// The `frames` frames of `channels` interleaved channels of `buffer`, one vector per
/// channel, non-finite samples as 0.
pub(super) fn split_clip(buffer: &[f32], frames: usize, channels: usize) -> Vec<Vec<f32>> {
    let channels = channels.max(1);
    let frames = frames.min(buffer.len() / channels);
    (0..channels)
        .map(|c| {
            buffer[..frames * channels]
                .iter()
                .skip(c)
                .step_by(channels)
                .map(|&x| if x.is_finite() { x } else { 0.0 })
                .collect()
        })
        .collect()
}

/// The mean of the channels (what a capture learns its dictionary from).
pub(super) fn mono_mix(channels: &[Vec<f32>]) -> Vec<f32> {
    let Some(first) = channels.first() else {
        return Vec::new();
    };
    let inv = 1.0 / channels.len() as f32;
    let mut out = first.clone();
    for ch in &channels[1..] {
        out.iter_mut().zip(ch).for_each(|(o, &x)| *o += x);
    }
    out.iter_mut().for_each(|o| *o *= inv);
    out
}

/// A capture as kept for training: its first `max_frames` frames, one channel when both
/// are the same ([`DUAL_MONO_TOLERANCE`]).
fn for_training(mut channels: Vec<Vec<f32>>, max_frames: usize) -> Vec<Vec<f32>> {
    for c in &mut channels {
        c.truncate(max_frames);
        c.shrink_to_fit();
    }
    if let [l, r] = channels.as_slice() {
        let peak = l.iter().chain(r).fold(0.0f32, |m, x| m.max(x.abs()));
        let same = l
            .iter()
            .zip(r)
            .all(|(a, b)| (a - b).abs() <= DUAL_MONO_TOLERANCE * peak);
        if same {
            channels.truncate(1);
        }
    }
    channels
}

/// The fraction done of a training from its progress reports: every source runs up to two
/// fits (alone, then augmented), told apart by the iteration count starting again; then the
/// discriminative stage counts as one more fit.
struct Fraction {
    source: usize,
    iteration: usize,
    fit: usize,
}

impl Fraction {
    fn update(&mut self, p: &TrainProgress) -> f32 {
        let within = p.fit.iteration as f32 / p.fit.max_iter.max(1) as f32;
        let parts = (2 * p.n_sources.max(1) + 1) as f32;
        if p.stage == TrainStage::Discriminative {
            return (parts - 1.0 + within.min(1.0)) / parts;
        }
        if p.source != self.source {
            (self.source, self.fit) = (p.source, 0);
        } else if p.fit.iteration < self.iteration {
            self.fit = (self.fit + 1).min(1);
        }
        self.iteration = p.fit.iteration;
        ((2 * p.source + self.fit) as f32 + within.min(1.0)) / parts
    }
}

impl Trainer {
    /// Keeps the solo capture of source `s` for training (replacing its previous one); a
    /// training is due when two or more sources hold one.
    pub(super) fn keep_capture(&mut self, s: usize, channels: Vec<Vec<f32>>) {
        let max_frames = (self.sample_rate.max(1.0) * TRAIN_CLIP_SECONDS) as usize;
        self.captures[s] = Some(for_training(channels, max_frames));
        self.train_due = self.captures.iter().flatten().count() >= 2;
    }

    /// Forgets the kept captures (a project or dictionary file replaced the sources).
    pub(super) fn forget_captures(&mut self) {
        self.captures = Default::default();
        self.train_due = false;
    }

    /// Drops the trained model (its sources changed); the plain dictionary separates.
    pub(super) fn forget_model(&mut self) {
        if self.params.model.lock().is_some() {
            self.params.model.replace_quietly(None);
        }
    }

    /// Trains a separator from the kept captures when one is due, with the learning
    /// settings (K per source, beta, iterations, n_fft with hop n_fft / 4, NNDSVDa), the
    /// default pitch shifts and, in a stereo session with stereo captures, the spatial
    /// model; then installs it. `Status::training` and `Status::progress` show it running;
    /// `Status::cancel`, a new capture or a state load stops it.
    pub(super) fn train_if_due(&mut self) {
        if !self.train_due {
            return;
        }
        let settings = self.params.learn.lock().clone();
        if !settings.train_separator {
            return;
        }
        self.train_due = false;
        let captures = std::mem::take(&mut self.captures);
        let sources: Vec<TrainSource> = captures
            .iter()
            .enumerate()
            .filter_map(|(s, c)| {
                c.as_ref().map(|c| TrainSource {
                    name: source_label(s),
                    channels: c.clone(),
                    tonal: None,
                })
            })
            .collect();
        self.captures = captures;
        if sources.len() < 2 {
            return;
        }
        let stft = match Stft::new(settings.n_fft, settings.n_fft / 4) {
            Ok(s) => s,
            Err(e) => return self.status.say(format!("training: {e}")),
        };
        let opts = TrainOptions {
            fit: FitOptions {
                n_components: settings.components_per_source,
                beta: settings.beta,
                max_iter: settings.iterations.max(1),
                init: Init::Nndsvda,
                ..FitOptions::default()
            },
            spatial: self.channels == 2,
            ..TrainOptions::default()
        };
        let (gd, gm) = (
            self.params.dictionary.generation(),
            self.params.model.generation(),
        );
        self.status.cancel.store(false, Ordering::Release);
        self.status.progress.store(0.0, Ordering::Release);
        self.status.training.store(true, Ordering::Release);
        let started = Instant::now();
        let mut fraction = Fraction {
            source: usize::MAX,
            iteration: 0,
            fit: 0,
        };
        let (status, params, clips) = (&self.status, &self.params, &self.clip_rx);
        let mut observer = |p: TrainProgress| {
            status
                .progress
                .store(fraction.update(&p), Ordering::Release);
            let stop = status.cancel.load(Ordering::Acquire)
                || status.quit.load(Ordering::Acquire)
                || !clips.is_empty()
                || params.dictionary.generation() != gd
                || params.model.generation() != gm;
            if stop {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        };
        let trained = train(&sources, self.session_rate(), &stft, &opts, &mut observer);
        drop(sources);
        memory::release_freed_memory();
        self.status.training.store(false, Ordering::Release);
        self.status.progress.store(1.0, Ordering::Release);
        match trained {
            Ok(model) => {
                let n = model.source_names().len();
                let k = model.dictionary.n_components();
                self.params.model.replace_quietly(Some(model));
                self.prepare_and_send();
                self.status.say(format!(
                    "trained a separator of {n} sources ({k} components) in {:.1} s",
                    started.elapsed().as_secs_f64()
                ));
                // Sent first, then counted (tests wait on the count).
                self.status.models_trained.fetch_add(1, Ordering::AcqRel);
            }
            Err(NmfError::Cancelled) => {
                if self.status.cancel.load(Ordering::Acquire) {
                    self.status
                        .say("training cancelled: the plain dictionaries separate");
                }
            }
            Err(e) => self.status.say(format!("training failed: {e}")),
        }
    }

    /// The persisted trained model prepared for the engine, when it can separate: at the
    /// session rate (a model is not mapped: capture again to train one at this rate), and
    /// every source it has known by the source modes ([`source_roles`]) with no source
    /// learned live. `None` otherwise (the plain dictionary is then prepared).
    /// `Status::model_in_use` tells which.
    pub(super) fn prepare_model(&self) -> Option<Box<PreparedDictionary>> {
        self.status.model_in_use.store(false, Ordering::Release);
        let model = self.params.model.lock().clone()?;
        if model.dictionary.sample_rate != self.session_rate() {
            self.status.say(format!(
                "the trained separator is at {} Hz, the session at {} Hz: the plain \
                 dictionaries separate (capture again to train at this rate)",
                model.dictionary.sample_rate,
                self.session_rate()
            ));
            return None;
        }
        let assignment = assignment_by_labels(&model.dictionary);
        let has: [bool; MAX_SOURCES] = std::array::from_fn(|s| assignment.contains(&s));
        let roles = source_roles(self.params.modes(), has);
        let all_known = (0..MAX_SOURCES).all(|s| !has[s] || roles[s] == SourceRole::Known)
            && !roles.contains(&SourceRole::Live);
        if !all_known {
            return None;
        }
        match prepare(&model, self.channels) {
            Ok(p) => {
                self.status.set_mapping(None);
                self.status.model_in_use.store(true, Ordering::Release);
                Some(Box::new(p))
            }
            Err(e) => {
                self.status.say(format!("trained separator not used: {e}"));
                None
            }
        }
    }
}
