//! Whether a clip plays one pitch: a source captured holding a single note (a hum, a drone,
//! one piano note) is not pitch-shifted by the augmentation ([`super::augment`]). Shifting an
//! instrument that played a melody covers the neighbouring notes it will also play; shifting
//! a single held pitch invents notes the source never plays, and on the bench's case of three
//! piano notes (each note a source) it cost 0.8 dB (BENCHMARKS.md, "Trained separators").
//!
//! Method: every frame's pitch is the semitone (MIDI 21..=96, A4 = 440 Hz) whose harmonics
//! carry the most magnitude, by subharmonic summation (Hermes 1988, "Measurement of pitch by
//! subharmonic summation", J. Acoust. Soc. Am. 83(1), eq. 3 with a compression factor of 0.8
//! per harmonic, six harmonics). Over the frames within 10 dB of the loudest, the largest
//! share that falls on two adjacent semitones is the clip's *pitch share*. Frames of about
//! 186 ms resolve the lowest notes (a bass's E1 is 41 Hz).
//!
//! On the bench's set-A train clips (frames of 8192 at 44.1 kHz): each of the three single
//! piano notes 1.00; every other clip at most 0.77 (clarinet), most between 0.2 and 0.65.

use crate::dsp::stft::Stft;

/// A clip whose pitch share is at least this plays one pitch (midway between the single
/// notes' 1.00 and the clarinet's 0.77 on the set-A clips).
pub const ONE_PITCH_SHARE: f32 = 0.9;

/// Frames within this factor of the loudest frame's energy (-10 dB) take part.
const LOUD_FRAME_ENERGY: f32 = 0.1;

/// The lowest and highest candidate pitches, MIDI note numbers (A0 and C7).
const MIDI_RANGE: std::ops::RangeInclusive<i32> = 21..=96;

/// Harmonics summed per candidate, and the weight of each harmonic relative to the one below.
const HARMONICS: usize = 6;
const HARMONIC_WEIGHT: f32 = 0.8;

/// Frame duration aimed at, seconds.
const FRAME_S: f64 = 0.186;

/// The pitch share of `clip` (mono, at `sample_rate` Hz) in 0..=1 (see the module's text), or
/// `None` when the clip is shorter than one frame or silent.
pub fn pitch_share(clip: &[f32], sample_rate: u32) -> Option<f32> {
    let n_fft =
        (1usize << (f64::from(sample_rate) * FRAME_S).log2().round() as u32).clamp(512, 8192);
    if clip.len() < n_fft {
        return None;
    }
    let stft = Stft::new(n_fft, n_fft / 8).ok()?;
    let spec = stft.forward(clip);
    let mag = spec.mapv(|c| c.norm());
    let n_bins = mag.nrows();
    let energy: Vec<f32> = mag
        .columns()
        .into_iter()
        .map(|c| c.iter().map(|m| m * m).sum())
        .collect();
    let loudest = energy.iter().copied().fold(0.0f32, f32::max);
    if loudest <= 0.0 {
        return None;
    }
    let sr = sample_rate as f32;
    // The bins of every candidate's harmonics below Nyquist, with their weights.
    let candidates: Vec<Vec<(usize, f32)>> = MIDI_RANGE
        .map(|m| {
            let f0 = 440.0 * 2f32.powf((m - 69) as f32 / 12.0);
            (1..=HARMONICS)
                .map(|h| (h as f32 * f0, HARMONIC_WEIGHT.powi(h as i32 - 1)))
                .take_while(|&(f, _)| f < sr / 2.0)
                .map(|(f, w)| ((f * n_fft as f32 / sr).round() as usize, w))
                .filter(|&(b, _)| b + 1 < n_bins)
                .collect()
        })
        .collect();
    let mut counts = vec![0usize; candidates.len()];
    let mut loud = 0usize;
    for (frame, &e) in mag.columns().into_iter().zip(&energy) {
        if e < LOUD_FRAME_ENERGY * loudest {
            continue;
        }
        loud += 1;
        let score = |harmonics: &Vec<(usize, f32)>| -> f32 {
            harmonics
                .iter()
                .map(|&(b, w)| w * frame[b.max(1) - 1].max(frame[b]).max(frame[b + 1]))
                .sum()
        };
        let best = candidates
            .iter()
            .map(score)
            .enumerate()
            .fold((0, f32::MIN), |a, (i, s)| if s > a.1 { (i, s) } else { a });
        counts[best.0] += 1;
    }
    let pair = counts.windows(2).map(|w| w[0] + w[1]).max().unwrap_or(0);
    Some(pair as f32 / loud as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tone of `f0` Hz with five harmonics (amplitudes 1/h), `seconds` long.
    fn tone(f0: f32, seconds: f32, sr: u32) -> Vec<f32> {
        (0..(seconds * sr as f32) as usize)
            .map(|i| {
                let t = i as f32 / sr as f32;
                (1..=5)
                    .map(|h| (2.0 * std::f32::consts::PI * h as f32 * f0 * t).sin() / h as f32)
                    .sum::<f32>()
                    * 0.2
            })
            .collect()
    }

    #[test]
    fn a_held_note_is_one_pitch_and_a_melody_is_not() {
        let sr = 44_100;
        let held = tone(261.63, 3.0, sr);
        assert!(pitch_share(&held, sr).unwrap() >= ONE_PITCH_SHARE);
        // A low bass note too (E1, 41.2 Hz).
        let bass = tone(41.2, 3.0, sr);
        assert!(pitch_share(&bass, sr).unwrap() >= ONE_PITCH_SHARE);
        // C major scale, half a second per note.
        let melody: Vec<f32> = [0, 2, 4, 5, 7, 9, 11, 12]
            .iter()
            .flat_map(|&s| tone(261.63 * 2f32.powf(s as f32 / 12.0), 0.5, sr))
            .collect();
        let share = pitch_share(&melody, sr).unwrap();
        assert!(share < 0.5, "scale: {share}");
        assert_eq!(pitch_share(&held[..1000], sr), None);
        assert_eq!(pitch_share(&vec![0.0; 44_100], sr), None);
    }
}
