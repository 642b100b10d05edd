//! Data augmentation of a source's clip before its dictionary is learned: pitch-shifted copies
//! by resampling, so that the templates cover notes the clip never played.
//!
//! A copy shifted by `s` semitones is the clip resampled by the factor `2^(-s/12)` and played
//! at the original rate: every partial moves by `2^(s/12)` in frequency (and the copy's
//! duration by the inverse). The timbre's formants move with it, which for a shift of one or
//! two semitones is close to what the instrument does on a neighbouring note. Only tonal
//! sources are shifted: a drum kit or a noise shifted in pitch is a different drum kit or
//! noise, and a dictionary that covers it also covers more of the other sources' sounds.
//! Tonal and non-tonal sources are told apart by the tonality of a dictionary learned from the
//! clip alone ([`crate::nmf::semi::tonality`]), or by the caller.

use rubato::audioadapter_buffers::direct::SequentialSliceOfVecs;
use rubato::{Fft, FixedSync, Resampler};

/// The default shifts, semitones: the set the offline study found best (wider sets and
/// octaves were not better).
pub const DEFAULT_SHIFTS: [f32; 4] = [-2.0, -1.0, 1.0, 2.0];

/// A dictionary whose tonality ([`crate::nmf::semi::tonality`], 1 - median spectral flatness
/// of its templates) is at least this comes from a tonal source (notes), whose clip is
/// shifted. Measured with 16 templates (beta 1) on the train clips of the bench's set A:
/// noise 0.52, drums 0.90 and 0.91 below; violin 0.951, bassoon 0.990, piano 0.991-0.995,
/// guitar and alto sax 0.992, tenor sax 0.995, speech 0.996, bass and clarinet 0.998 above.
/// The threshold sits midway in the gap between drums and violin.
pub const TONAL_THRESHOLD: f32 = 0.93;

/// Largest denominator of the rational resampling factor: the factor `2^(-s/12)` is
/// approximated by `p / q` with `q <= MAX_DENOMINATOR` (an error below 0.01 semitone for the
/// default shifts), so that the resampler works on small blocks.
pub const MAX_DENOMINATOR: usize = 256;

/// The best `(p, q)` with `p / q ~ x`, `1 <= q <= max_q`.
///
/// # Panics
/// If `x` is not finite and positive.
pub fn rational(x: f64, max_q: usize) -> (usize, usize) {
    assert!(x.is_finite() && x > 0.0, "factor {x}");
    let mut best = (x.round().max(1.0) as usize, 1usize);
    let mut err = (best.0 as f64 - x).abs();
    for q in 1..=max_q.max(1) {
        let p = (x * q as f64).round().max(1.0);
        let e = (p / q as f64 - x).abs();
        if e < err - 1e-15 {
            best = (p as usize, q);
            err = e;
        }
    }
    best
}

/// `clip` (mono samples) shifted by `semitones` in pitch by resampling (rubato's FFT
/// resampler, band-limited). The result has about `len * 2^(-semitones/12)` samples; a
/// shift of 0 returns the clip unchanged.
pub fn pitch_shift(clip: &[f32], semitones: f32) -> Vec<f32> {
    if semitones == 0.0 || clip.is_empty() {
        return clip.to_vec();
    }
    // Input rate q, output rate p: the copy holds p/q as many samples.
    let (p, q) = rational(2f64.powf(-f64::from(semitones) / 12.0), MAX_DENOMINATOR);
    let mut r = Fft::<f64>::new(q, p, 1024, 1, FixedSync::Both).expect("valid rates");
    let input = vec![clip.iter().map(|&v| f64::from(v)).collect::<Vec<f64>>()];
    let adapter = SequentialSliceOfVecs::new(&input, 1, clip.len()).expect("one channel");
    let len = r.process_all_needed_output_len(clip.len());
    let mut out = vec![vec![0.0f64; len]; 1];
    let mut out_adapter = SequentialSliceOfVecs::new_mut(&mut out, 1, len).expect("one channel");
    let (_, n) = r
        .process_all_into_buffer(&adapter, &mut out_adapter, clip.len(), None)
        .expect("buffer sized by the resampler");
    out[0][..n].iter().map(|&v| v as f32).collect()
}

/// The clip and its copies shifted by every entry of `shifts` (0 entries skipped).
pub fn shifted_copies(clip: &[f32], shifts: &[f32]) -> Vec<Vec<f32>> {
    std::iter::once(clip.to_vec())
        .chain(
            shifts
                .iter()
                .filter(|&&s| s != 0.0)
                .map(|&s| pitch_shift(clip, s)),
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rational_approximations_are_close() {
        for s in [-2.0f64, -1.0, 1.0, 2.0, 5.0] {
            let x = 2f64.powf(-s / 12.0);
            let (p, q) = rational(x, MAX_DENOMINATOR);
            assert!(q <= MAX_DENOMINATOR);
            let cents = 1200.0 * (p as f64 / q as f64 / x).log2();
            assert!(cents.abs() < 1.0, "shift {s}: {p}/{q} is {cents} cents off");
        }
        assert_eq!(rational(1.5, 8), (3, 2));
    }

    /// A sine at 440 Hz shifted by +2 semitones peaks at 440 * 2^(2/12) = 493.9 Hz, with the
    /// length scaled by 2^(-2/12).
    #[test]
    fn a_shifted_sine_moves_in_frequency() {
        let rate = 8000.0f32;
        let x: Vec<f32> = (0..16_000)
            .map(|i| (2.0 * std::f32::consts::PI * 440.0 * i as f32 / rate).sin())
            .collect();
        let y = pitch_shift(&x, 2.0);
        let ratio = y.len() as f32 / x.len() as f32;
        assert!((ratio - 2f32.powf(-2.0 / 12.0)).abs() < 0.01, "{ratio}");
        // Frequency from the zero crossings of the middle part.
        let mid = &y[2000..y.len() - 2000];
        let crossings = mid.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count();
        let f = crossings as f32 * rate / mid.len() as f32;
        let want = 440.0 * 2f32.powf(2.0 / 12.0);
        assert!((f - want).abs() < 3.0, "{f} Hz, want {want}");
        assert_eq!(shifted_copies(&x, &[0.0, 1.0]).len(), 2);
    }
}
