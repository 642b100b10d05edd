//! Bounds of every size argument of `nmfsep`, in one place.
//!
//! Each bound is checked by clap while parsing (`value_parser`), so an out-of-range value
//! fails at once with one line and exit code 2, before any file is read:
//!
//! | argument | bound | why |
//! |---|---|---|
//! | `--n-fft` | a power of two, 512..=8192 samples | the STFT's and real-time engine's sizes ([`Stft::new`]) |
//! | `--hop` | 1..=4096 samples, and at most n_fft / 2 (checked with n_fft) | [`Stft::new`] |
//! | `--components` / `-k` | 1..=[`MAX_COMPONENTS`], and at most min(n_bins, n_frames) of the clip ([`check_components`]) | a rank above the spectrogram's smaller side adds no model, only time and memory |
//! | `--iterations` | 1..=[`MAX_ITERATIONS`] | an upper bound on a fit's run time |
//! | `--block` | 1..=[`MAX_BLOCK`] samples | the largest host block the real-time driver simulates |
//! | `--threads` | 1..=[`MAX_THREADS`] | a bound on the threads a fit starts |

use anyhow::{bail, Result};

use crate::dsp::Stft;

/// Largest number of components K: the number of bins of the largest frame (8192 / 2 + 1).
pub const MAX_COMPONENTS: usize = 8192 / 2 + 1;
/// Largest number of multiplicative-update iterations (of a whole fit, or per frame with
/// `--realtime`).
pub const MAX_ITERATIONS: usize = 10_000;
/// Largest host block of `separate --realtime`, samples.
pub const MAX_BLOCK: usize = 65_536;
/// Largest hop, samples (n_fft / 2 of the largest frame).
pub const MAX_HOP: usize = 8192 / 2;
/// Most threads of an offline fit (`--threads`).
pub const MAX_THREADS: usize = 1024;

fn parse_in(s: &str, lo: usize, hi: usize, unit: &str) -> Result<usize, String> {
    let v: usize = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number"))?;
    if !(lo..=hi).contains(&v) {
        return Err(format!("{v} is not in {lo}..={hi}{unit}"));
    }
    Ok(v)
}

/// clap parser of `--components`: 1..=[`MAX_COMPONENTS`].
pub fn components(s: &str) -> Result<usize, String> {
    parse_in(s, 1, MAX_COMPONENTS, "")
}

/// clap parser of `--iterations`: 1..=[`MAX_ITERATIONS`].
pub fn iterations(s: &str) -> Result<usize, String> {
    parse_in(s, 1, MAX_ITERATIONS, "")
}

/// clap parser of `--threads`: 1..=[`MAX_THREADS`].
pub fn threads(s: &str) -> Result<usize, String> {
    parse_in(s, 1, MAX_THREADS, " threads")
}

/// clap parser of a weight or exponent: a finite number >= 0.
pub fn non_negative(s: &str) -> Result<f32, String> {
    let v: f32 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))?;
    if !(v.is_finite() && v >= 0.0) {
        return Err(format!("{v} is not a finite number >= 0"));
    }
    Ok(v)
}

/// clap parser of `--block`: 1..=[`MAX_BLOCK`] samples.
pub fn block(s: &str) -> Result<usize, String> {
    parse_in(s, 1, MAX_BLOCK, " samples")
}

/// clap parser of `--hop`: 1..=[`MAX_HOP`] samples (the bound against n_fft is checked by
/// [`Stft::new`]).
pub fn hop(s: &str) -> Result<usize, String> {
    parse_in(s, 1, MAX_HOP, " samples (and at most n_fft / 2)")
}

/// clap parser of `--n-fft`: the frame lengths [`Stft::new`] accepts.
pub fn n_fft(s: &str) -> Result<usize, String> {
    let v = parse_in(s, 1, usize::MAX, "")?;
    Stft::new(v, 1).map(|_| v).map_err(|e| e.to_string())
}

/// Errors unless `k` components fit a spectrogram of `n_bins` x `n_frames`: K at most
/// min(n_bins, n_frames), the largest rank the spectrogram has.
///
/// # Errors
/// One line naming the bound and the clip's sizes.
pub fn check_components(k: usize, n_bins: usize, n_frames: usize) -> Result<()> {
    let max = n_bins.min(n_frames);
    if k > max {
        bail!(
            "--components {k} is more than this clip supports: at most {max} (the smaller of its {n_bins} frequency bins and {n_frames} frames)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        assert_eq!(components("16"), Ok(16));
        assert!(components("0").is_err());
        assert!(components("100000").is_err());
        assert!(iterations("10001").is_err());
        assert!(block("0").is_err());
        assert_eq!(n_fft("4096"), Ok(4096));
        assert!(n_fft("1000").is_err());
        assert!(n_fft("16384").is_err());
        assert!(hop("0").is_err());
        assert!(check_components(100, 1025, 99).is_err());
        assert!(check_components(99, 1025, 99).is_ok());
    }
}
