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

#[cfg(test)]
mod tests {
    use super::*;

    /// A step in gain follows one one-pole smoother (time constant [`GAIN_SMOOTHING_S`]) and
    /// lands exactly on its target once within [`GAIN_SNAP`], at the time the formula gives.
    #[test]
    fn a_gain_step_is_smoothed_once_and_lands_on_time() {
        let fs = 48_000.0f32;
        let (from, to) = (1.0f32, 0.5f32);
        let mut gains = [from; MAX_SOURCES];
        gains[1] = 0.25;
        let mut s = GainSmoother::new(fs, gains, 8192);
        let mut target = gains;
        target[0] = to;
        s.advance(target, 8192);
        let curve = s.curve(0, 8192);
        let coef = 1.0 - (-1.0 / (GAIN_SMOOTHING_S * fs)).exp();
        // One smoother: the first sample moves by coef of the distance (two in series would
        // move by about coef^2 / 2).
        assert!(
            ((from - curve[0]) / (from - to) - coef).abs() < 1e-4,
            "{}",
            curve[0]
        );
        // After one time constant, 1/e of the distance is left.
        let tau = (GAIN_SMOOTHING_S * fs) as usize;
        let left = (curve[tau - 1] - to) / (from - to);
        assert!((left - (-1.0f32).exp()).abs() < 2e-3, "{left}");
        // It snaps onto the target where the distance falls below GAIN_SNAP: after
        // tau ln(distance / GAIN_SNAP) samples, within a few samples of f32 rounding.
        let landed = curve
            .iter()
            .position(|&g| g == to)
            .expect("reaches its target");
        let expected = GAIN_SMOOTHING_S * fs * ((from - to) / GAIN_SNAP).ln();
        assert!(
            (landed as f32 - expected).abs() < 3.0,
            "{landed} vs {expected}"
        );
        assert!(curve[landed..].iter().all(|&g| g == to));
        // A source whose gain does not change stays constant.
        assert!(s.curve(1, 8192).iter().all(|&g| g == 0.25));
    }
}
