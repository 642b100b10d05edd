//! The valid STFT frame geometry (FFT size and hop): the one rule the STFT, dictionaries, the
//! real-time engine and the command-line tool apply.

/// STFT frame lengths the crate supports, samples: the powers of two from 512 to 8192 (the
/// real-time engine plans an FFT for each).
pub const FFT_SIZES: [usize; 5] = [512, 1024, 2048, 4096, 8192];

/// Errors of an STFT frame geometry (see [`FrameGeometry::new`]).
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum GeometryError {
    /// The FFT size is not one of [`FFT_SIZES`].
    #[error("n_fft must be a power of two between 512 and 8192 samples, got {0}")]
    FftSize(usize),
    /// The hop does not divide the FFT size or exceeds half of it.
    #[error("hop {hop} must divide n_fft {n_fft} and be at most n_fft/2 (a power of two from 1 to {half})", half = n_fft / 2)]
    Hop {
        /// FFT size, samples.
        n_fft: usize,
        /// Hop, samples.
        hop: usize,
    },
}

/// A valid STFT frame geometry: frame length n_fft and hop, samples. [`Self::new`] is the
/// only place the rule lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FrameGeometry {
    /// Index of n_fft in [`FFT_SIZES`].
    size: usize,
    hop: usize,
}

impl FrameGeometry {
    /// n_fft 2048, hop 512: the defaults of the CLI and of the engine without a dictionary.
    pub const DEFAULT: FrameGeometry = FrameGeometry { size: 2, hop: 512 };

    /// Checks the rule: n_fft is one of [`FFT_SIZES`], and the hop divides n_fft and is at
    /// most n_fft/2 (so it is a power of two from 1 to n_fft/2). The real-time engine needs
    /// both (its rings hold whole hops and it plans an FFT per size); with an integer
    /// n_fft/hop >= 2 the squared periodic Hann windows overlap-add to a constant (Harris
    /// 1978, Proc. IEEE 66(1), section IV), which the offline inverse STFT and the engine's
    /// overlap-add use.
    ///
    /// # Errors
    /// [`GeometryError::FftSize`] or [`GeometryError::Hop`], whose messages name the rule.
    pub fn new(n_fft: usize, hop: usize) -> Result<Self, GeometryError> {
        let size = FFT_SIZES
            .iter()
            .position(|&n| n == n_fft)
            .ok_or(GeometryError::FftSize(n_fft))?;
        if hop == 0 || !n_fft.is_multiple_of(hop) || hop > n_fft / 2 {
            return Err(GeometryError::Hop { n_fft, hop });
        }
        Ok(Self { size, hop })
    }

    /// Frame length, samples.
    pub const fn n_fft(self) -> usize {
        FFT_SIZES[self.size]
    }

    /// Hop, samples.
    pub const fn hop(self) -> usize {
        self.hop
    }

    /// Frequency bins, n_fft / 2 + 1.
    pub const fn n_bins(self) -> usize {
        self.n_fft() / 2 + 1
    }

    /// Index of n_fft in [`FFT_SIZES`].
    pub const fn size_index(self) -> usize {
        self.size
    }
}
