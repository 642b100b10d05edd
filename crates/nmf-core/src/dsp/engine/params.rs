//! The engine's live settings ([`EngineParams`]) and how they make the main output: the gain
//! of each source after mute and solo.

use super::MAX_SOURCES;
use crate::nmf::SolveRule;

/// Live settings of the engine. Cheap to copy; set once per block.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EngineParams {
    /// Solver iterations per frame (1..=50 in the plugin), each one step of `solve_rule`; a
    /// maximum when the rule exits early (default [`SolveRule::DEFAULT_ITERATIONS`]).
    pub iterations: usize,
    /// How each frame's activations start and step ([`SolveRule::default`]: flat start,
    /// majorization-equalization steps, early exit; [`SolveRule::WARM_MU`] is the rule of
    /// version 1).
    pub solve_rule: SolveRule,
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
    /// Host bypass: the main output is the input delayed by the latency, the source buses
    /// are silent; a change crossfades (see `Engine::process`).
    pub bypass: bool,
    /// Freeze of a source learned live: no new frames reach its worker, so its learned
    /// templates stand still (its exemplars keep following the input; [`super::live`],
    /// "Freeze"); no effect without one.
    pub freeze: bool,
}

impl Default for EngineParams {
    fn default() -> Self {
        Self {
            iterations: SolveRule::DEFAULT_ITERATIONS,
            solve_rule: SolveRule::default(),
            mask_power: 2.0,
            sparsity: 0.0,
            gain: [1.0; MAX_SOURCES],
            mute: [false; MAX_SOURCES],
            solo: [false; MAX_SOURCES],
            bypass: false,
            freeze: false,
        }
    }
}

impl EngineParams {
    /// The gain of each source in the main output after mute and solo.
    pub fn effective_gains(&self) -> [f32; MAX_SOURCES] {
        let any_solo = self.solo.iter().any(|&s| s);
        let mut g = [0.0; MAX_SOURCES];
        for (((g, &gain), &solo), &mute) in
            g.iter_mut().zip(&self.gain).zip(&self.solo).zip(&self.mute)
        {
            let on = if any_solo { solo } else { !mute };
            *g = if on { gain } else { 0.0 };
        }
        g
    }
}
