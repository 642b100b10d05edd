//! Smoothing of the main-output gains, so that a gain, mute or solo change does not click:
//! a one-pole low-pass per source (time constant [`GAIN_SMOOTHING_S`]) that snaps to its
//! target once within [`GAIN_SNAP`].

use super::MAX_SOURCES;

/// Gain smoothing time constant, seconds.
const GAIN_SMOOTHING_S: f32 = 0.01;
/// Distance at which a smoothed gain jumps to its target (-80 dB below unity: inaudible).
const GAIN_SNAP: f32 = 1e-4;

/// The smoothed gain of every source and its per-sample curve over the current chunk.
pub(super) struct GainSmoother {
    /// Smoothed gains after the latest sample.
    gains: [f32; MAX_SOURCES],
    /// Per-sample gains of the current chunk, `[source][max chunk]`.
    curve: Vec<Vec<f32>>,
    /// Per-sample smoothing coefficient, `1 - exp(-1 / (tau fs))`.
    coef: f32,
}

impl GainSmoother {
    /// A smoother at `sample_rate` Hz, settled at `gains`, for chunks of at most `max_chunk`
    /// samples. Allocates.
    pub(super) fn new(sample_rate: f32, gains: [f32; MAX_SOURCES], max_chunk: usize) -> Self {
        Self {
            gains,
            curve: vec![vec![0.0; max_chunk]; MAX_SOURCES],
            coef: 1.0 - (-1.0 / (GAIN_SMOOTHING_S * sample_rate.max(1.0))).exp(),
        }
    }

    /// Settles every gain at `gains` at once.
    pub(super) fn settle(&mut self, gains: [f32; MAX_SOURCES]) {
        self.gains = gains;
    }

    /// Moves the gains `chunk` samples toward `target`, writing the per-sample gains to the
    /// curves ([`Self::curve`]). A settled gain is a constant curve (the smoother is a serial
    /// chain, so it runs only while a gain moves).
    pub(super) fn advance(&mut self, target: [f32; MAX_SOURCES], chunk: usize) {
        for ((curve, gain), &target) in self.curve.iter_mut().zip(&mut self.gains).zip(&target) {
            let curve = &mut curve[..chunk];
            let mut g = *gain;
            if g == target {
                curve.fill(g);
                continue;
            }
            for v in curve {
                g += (target - g) * self.coef;
                // In f32 the one-pole smoother stalls about 1.3e-5 short of its target (the
                // step falls below half an ulp), so unity never came back exactly: snap once
                // within GAIN_SNAP.
                if (target - g).abs() < GAIN_SNAP {
                    g = target;
                }
                *v = g;
            }
            *gain = g;
        }
    }

    /// The per-sample gains of source `s` over the first `chunk` samples of the latest
    /// [`Self::advance`].
    pub(super) fn curve(&self, s: usize, chunk: usize) -> &[f32] {
        &self.curve[s][..chunk]
    }
}
