//! Whole-signal sample-rate conversion for the tool (rubato's FFT resampler), keeping the
//! signal's duration: the output has round(len * to / from) samples.

use anyhow::{anyhow, Result};
use rubato::audioadapter_buffers::direct::SequentialSliceOfVecs;
use rubato::{Fft, FixedSync, Resampler};

/// Frames per chunk of the resampler.
const CHUNK: usize = 1024;

/// `channels[c][sample]` at `from` Hz to `to` Hz.
///
/// # Errors
/// If the resampler cannot be built for these rates.
pub fn resample(channels: &[Vec<f32>], from: u32, to: u32) -> Result<Vec<Vec<f32>>> {
    if from == to {
        return Ok(channels.to_vec());
    }
    let n_c = channels.len();
    let len = channels.first().map_or(0, Vec::len);
    let mut r = Fft::<f32>::new(from as usize, to as usize, CHUNK, n_c, FixedSync::Input)
        .map_err(|e| anyhow!("cannot resample from {from} Hz to {to} Hz: {e}"))?;
    let input = SequentialSliceOfVecs::new(channels, n_c, len)
        .map_err(|e| anyhow!("resampler input: {e}"))?;
    let out = r
        .process_all(&input, len, None)
        .map_err(|e| anyhow!("resampling from {from} Hz to {to} Hz: {e}"))?;
    let want = (len as f64 * f64::from(to) / f64::from(from)).round() as usize;
    let data = out.take_data();
    let frames = data.len() / n_c.max(1);
    Ok((0..n_c)
        .map(|c| {
            let mut v: Vec<f32> = (0..frames).map(|i| data[i * n_c + c]).collect();
            v.resize(want, 0.0);
            v
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_duration_and_a_low_tone() {
        let from = 48_000u32;
        let to = 44_100u32;
        let x: Vec<f32> = (0..48_000)
            .map(|n| (2.0 * std::f32::consts::PI * 440.0 * n as f32 / from as f32).sin())
            .collect();
        let y = resample(&[x], from, to).unwrap();
        assert_eq!(y[0].len(), 44_100);
        // Compare with the tone at the new rate away from the edges.
        let err = (2000..42_000)
            .map(|n| {
                let want = (2.0 * std::f32::consts::PI * 440.0 * n as f32 / to as f32).sin();
                (y[0][n] - want).abs()
            })
            .fold(0.0f32, f32::max);
        assert!(err < 1e-2, "max error {err}");
    }
}
