//! The host bypass: a linear crossfade between the engine's outputs (wet) and the input
//! delayed by the engine's latency (dry), so that a bypassed plugin keeps its reported latency
//! (the host's delay compensation stays right) and a toggle does not click.
//!
//! While bypassed the main output is the delayed input and the source buses are silent (a
//! bypassed separator separates nothing; a bus carrying the dry signal too would double it in
//! a mix of the buses). The engine keeps separating underneath, so un-bypassing resumes from
//! the current activations, not from a cold start.
//!
//! The fade is equal-gain (`out = dry + w (wet - dry)`, w from 0 to 1 over [`BYPASS_FADE_S`]):
//! dry and wet are correlated (with every gain at unity the wet main output *is* the delayed
//! input, to rounding), so equal gain, not equal power, keeps the level through the fade.

/// Length of the bypass crossfade, seconds (10 ms).
pub const BYPASS_FADE_S: f32 = 0.01;

/// The wet share of the output and its per-sample curve over the current chunk.
pub(super) struct BypassFade {
    /// Wet share after the latest sample, 0 (bypassed) ..= 1 (processing).
    wet: f32,
    /// Change of the wet share per sample, `1 / (BYPASS_FADE_S fs)`.
    step: f32,
    /// Per-sample wet share of the current chunk, `[max chunk]`.
    curve: Vec<f32>,
}

/// How a chunk mixes wet and dry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mix {
    /// The engine's outputs only (not bypassed, no fade running).
    Wet,
    /// The delayed input on the main output, silent buses.
    Dry,
    /// A fade is running: use [`BypassFade::curve`].
    Fading,
}

impl BypassFade {
    /// A fade at `sample_rate` Hz, settled (bypassed or not), for chunks of at most
    /// `max_chunk` samples. Allocates.
    pub(super) fn new(sample_rate: f32, bypassed: bool, max_chunk: usize) -> Self {
        let fade_samples = (BYPASS_FADE_S * sample_rate.max(1.0)).round().max(1.0);
        Self {
            wet: if bypassed { 0.0 } else { 1.0 },
            step: 1.0 / fade_samples,
            curve: vec![0.0; max_chunk],
        }
    }

    /// Jumps to the end of the fade (after a reset there is nothing to fade from).
    pub(super) fn settle(&mut self, bypassed: bool) {
        self.wet = if bypassed { 0.0 } else { 1.0 };
    }

    /// Moves the wet share `chunk` samples toward its target (0 when `bypassed`, else 1) and
    /// says how the chunk mixes; while [`Mix::Fading`], [`Self::curve`] holds the per-sample
    /// shares.
    pub(super) fn advance(&mut self, bypassed: bool, chunk: usize) -> Mix {
        let target = if bypassed { 0.0 } else { 1.0 };
        if self.wet == target {
            return if bypassed { Mix::Dry } else { Mix::Wet };
        }
        let step = if bypassed { -self.step } else { self.step };
        let mut w = self.wet;
        for v in &mut self.curve[..chunk] {
            w = (w + step).clamp(0.0, 1.0);
            *v = w;
        }
        self.wet = w;
        Mix::Fading
    }

    /// The per-sample wet shares of the first `chunk` samples of the latest fading
    /// [`Self::advance`].
    pub(super) fn curve(&self, chunk: usize) -> &[f32] {
        &self.curve[..chunk]
    }
}
