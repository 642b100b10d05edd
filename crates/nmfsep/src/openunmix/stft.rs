//! The STFT and inverse STFT as Open-Unmix computes them (`torch.stft` / `torch.istft` with
//! `center=True`, reflect padding of n_fft / 2 on both sides, the periodic Hann window, no
//! normalization): frame t covers samples t * hop - n_fft / 2 .. t * hop + n_fft / 2 of the
//! input, reflected at its ends, and there are len / hop + 1 frames. The inverse is the
//! weighted overlap-add divided by the summed squared window (Griffin and Lim 1984, eq. 6),
//! cut to the input's length. Frames are made and added block by block, so a long track
//! needs only its samples and its outputs in memory.

use std::sync::Arc;

use ndarray::{ArrayViewMut2, Axis};
use realfft::num_complex::Complex32;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

/// STFT settings and FFT plans.
pub struct UmxStft {
    /// Frame length, samples.
    pub n_fft: usize,
    /// Hop, samples.
    pub hop: usize,
    window: Vec<f32>,
    forward: Arc<dyn RealToComplex<f32>>,
    inverse: Arc<dyn ComplexToReal<f32>>,
}

impl std::fmt::Debug for UmxStft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UmxStft {{ n_fft: {}, hop: {} }}", self.n_fft, self.hop)
    }
}

impl UmxStft {
    /// Plans an STFT of `n_fft` (even) samples every `hop` (at most n_fft / 2) samples.
    pub fn new(n_fft: usize, hop: usize) -> Self {
        assert!(n_fft >= 2 && n_fft.is_multiple_of(2) && hop >= 1 && hop <= n_fft / 2);
        let mut planner = RealFftPlanner::<f32>::new();
        // Periodic Hann, as torch.hann_window(n_fft): 0.5 - 0.5 cos(2 pi n / n_fft).
        let window = (0..n_fft)
            .map(|n| {
                let x = 2.0 * std::f64::consts::PI * n as f64 / n_fft as f64;
                (0.5 - 0.5 * x.cos()) as f32
            })
            .collect();
        Self {
            n_fft,
            hop,
            window,
            forward: planner.plan_fft_forward(n_fft),
            inverse: planner.plan_fft_inverse(n_fft),
        }
    }

    /// Frequency bins, n_fft / 2 + 1.
    pub fn n_bins(&self) -> usize {
        self.n_fft / 2 + 1
    }

    /// Frames of a signal of `len` samples: len / hop + 1.
    pub fn n_frames(&self, len: usize) -> usize {
        len / self.hop + 1
    }

    /// The shortest signal reflect padding accepts: n_fft / 2 + 1 samples.
    pub fn min_len(&self) -> usize {
        self.n_fft / 2 + 1
    }

    /// Writes frames `t0 .. t0 + out.nrows()` of `signal` into `out` (frames x n_bins).
    ///
    /// # Panics
    /// If `signal` is shorter than [`UmxStft::min_len`].
    pub fn frames(&self, signal: &[f32], t0: usize, mut out: ArrayViewMut2<Complex32>) {
        let len = signal.len();
        assert!(
            len >= self.min_len(),
            "signal too short for reflect padding"
        );
        let half = (self.n_fft / 2) as isize;
        let mut buf = self.forward.make_input_vec();
        let mut spec = self.forward.make_output_vec();
        let mut scratch = self.forward.make_scratch_vec();
        for (k, mut row) in out.axis_iter_mut(Axis(0)).enumerate() {
            let start = ((t0 + k) * self.hop) as isize - half;
            for (n, b) in buf.iter_mut().enumerate() {
                let mut i = start + n as isize;
                if i < 0 {
                    i = -i;
                }
                if i >= len as isize {
                    i = 2 * (len as isize - 1) - i;
                }
                *b = signal[i as usize] * self.window[n];
            }
            self.forward
                .process_with_scratch(&mut buf, &mut spec, &mut scratch)
                .expect("sizes from the plan");
            for (o, s) in row.iter_mut().zip(&spec) {
                *o = *s;
            }
        }
    }
}

/// Overlap-add accumulator of the inverse STFT for one output signal of `len` samples.
pub struct OverlapAdd {
    len: usize,
    /// Windowed frames added up, in the padded time axis (n_fft / 2 samples ahead).
    acc: Vec<f32>,
    time: Vec<f32>,
    spec: Vec<Complex32>,
    scratch: Vec<Complex32>,
}

impl OverlapAdd {
    /// An empty accumulator for a signal of `len` samples.
    pub fn new(stft: &UmxStft, len: usize) -> Self {
        let n_frames = stft.n_frames(len);
        Self {
            len,
            acc: vec![0.0; stft.n_fft + stft.hop * (n_frames - 1)],
            time: stft.inverse.make_output_vec(),
            spec: stft.inverse.make_input_vec(),
            scratch: stft.inverse.make_scratch_vec(),
        }
    }

    /// Adds frame `t` (n_bins values) to the signal.
    pub fn add(&mut self, stft: &UmxStft, t: usize, frame: impl Iterator<Item = Complex32>) {
        for (s, v) in self.spec.iter_mut().zip(frame) {
            *s = v;
        }
        // The real inverse ignores the imaginary parts at 0 and Nyquist, as torch.istft does.
        let last = self.spec.len() - 1;
        self.spec[0].im = 0.0;
        self.spec[last].im = 0.0;
        stft.inverse
            .process_with_scratch(&mut self.spec, &mut self.time, &mut self.scratch)
            .expect("sizes from the plan");
        let norm = 1.0 / stft.n_fft as f32;
        let start = t * stft.hop;
        for ((a, x), w) in self.acc[start..start + stft.n_fft]
            .iter_mut()
            .zip(&self.time)
            .zip(&stft.window)
        {
            *a += x * norm * w;
        }
    }

    /// The signal: the sum divided by the summed squared window, cut to `len` samples.
    pub fn finish(mut self, stft: &UmxStft) -> Vec<f32> {
        let n_frames = stft.n_frames(self.len);
        let mut env = vec![0.0f32; self.acc.len()];
        for t in 0..n_frames {
            for (e, w) in env[t * stft.hop..t * stft.hop + stft.n_fft]
                .iter_mut()
                .zip(&stft.window)
            {
                *e += w * w;
            }
        }
        let half = stft.n_fft / 2;
        let mut out: Vec<f32> = self.acc.drain(half..half + self.len).collect();
        for (o, e) in out.iter_mut().zip(&env[half..]) {
            // The envelope is far from zero inside the cut (hop <= n_fft / 2); torch refuses a
            // window that is not, and so does this guard, by leaving the sample as it is.
            if *e > ENVELOPE_FLOOR {
                *o /= e;
            }
        }
        out
    }
}

/// Smallest summed squared window divided by (torch.istft's NOLA check uses 1e-11).
const ENVELOPE_FLOOR: f32 = 1e-11;
