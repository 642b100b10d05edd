//! The editor's non-visual logic: routing edits, template curves, heat-map levels. No egui
//! types here, so the tests can drive it.

use crate::dsp::engine::MAX_SOURCES;
use crate::nmf::Dictionary;
use crate::plugin::params::{effective_assignment, SeparatorParams};

/// Lowest frequency of the template plots, Hz.
pub const PLOT_LOW_HZ: f32 = 30.0;
/// Dynamic range of the template plots and the heat map, dB.
pub const PLOT_RANGE_DB: f32 = 60.0;

/// The assignment the audio thread uses now for the persisted dictionary (the persisted one
/// when it fits, else the default); empty without a dictionary.
pub fn current_assignment(params: &SeparatorParams) -> Vec<usize> {
    let dict = params.dictionary.lock();
    match dict.as_ref() {
        Some(d) => effective_assignment(d, &params.assignment.lock()),
        None => Vec::new(),
    }
}

/// Moves `component` to `source` by writing the persisted `assignment` field the way a state
/// load does (bumping its generation): the trainer thread prepares the dictionary with the
/// new assignment and hands it to the audio thread, and the project saves it. Returns false
/// when nothing changed (no dictionary, index out of range, already there).
pub fn move_component(params: &SeparatorParams, component: usize, source: usize) -> bool {
    let mut a = current_assignment(params);
    if component >= a.len() || source >= MAX_SOURCES || a[component] == source {
        return false;
    }
    a[component] = source;
    params.assignment.set_external(a);
    true
}

/// Each template W_k resampled onto `points` log-spaced frequency bands from
/// [`PLOT_LOW_HZ`] to Nyquist (max over the bins of a band), as levels 0..=1 (0 = at least
/// [`PLOT_RANGE_DB`] below the template's peak). One `Vec` per component.
pub fn template_curves(dict: &Dictionary, points: usize) -> Vec<Vec<f32>> {
    let bins = dict.n_bins();
    let nyquist = dict.sample_rate as f32 / 2.0;
    let bin_hz = nyquist / (bins.max(2) - 1) as f32;
    let lo = PLOT_LOW_HZ.min(nyquist / 2.0).max(1.0);
    let ratio = nyquist / lo;
    (0..dict.n_components())
        .map(|k| {
            let col = dict.w.column(k);
            let peak = col.iter().copied().fold(0.0f32, f32::max).max(1e-30);
            (0..points)
                .map(|i| {
                    let f0 = lo * ratio.powf(i as f32 / points as f32);
                    let f1 = lo * ratio.powf((i + 1) as f32 / points as f32);
                    let b0 = ((f0 / bin_hz).floor() as usize).min(bins - 1);
                    let b1 = ((f1 / bin_hz).ceil() as usize).clamp(b0 + 1, bins);
                    let v = (b0..b1).map(|b| col[b]).fold(0.0f32, f32::max);
                    level(v / peak)
                })
                .collect()
        })
        .collect()
}

/// A linear amplitude ratio (1 = reference) as a 0..=1 display level over [`PLOT_RANGE_DB`].
pub fn level(ratio: f32) -> f32 {
    if ratio.is_nan() || ratio <= 0.0 {
        return 0.0;
    }
    ((20.0 * ratio.log10() + PLOT_RANGE_DB) / PLOT_RANGE_DB).clamp(0.0, 1.0)
}

/// Weight of every component in the heat map: the sum of its template, so that
/// `h_k * weight_k` is the component's contribution to the frame's spectrum.
pub fn component_weights(dict: &Dictionary) -> Vec<f32> {
    (0..dict.n_components())
        .map(|k| dict.w.column(k).sum())
        .collect()
}

/// Input meter ballistics: instant attack, `release_db_per_s` release. Returns the new
/// displayed level in dB (floor -90).
pub fn meter_step(shown_db: f32, peak: f32, dt_s: f32, release_db_per_s: f32) -> f32 {
    let db = if peak > 0.0 {
        (20.0 * peak.log10()).max(-90.0)
    } else {
        -90.0
    };
    db.max(shown_db - release_db_per_s * dt_s.max(0.0))
}

/// Seconds in `samples` at `sample_rate` (0 when the rate is unknown).
pub fn seconds(samples: u64, sample_rate: f32) -> f32 {
    if sample_rate > 0.0 {
        samples as f32 / sample_rate
    } else {
        0.0
    }
}
