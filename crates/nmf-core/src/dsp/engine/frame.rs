//! The frame maths of the engine: the FFT plans and windows of every frame length, the
//! windowing of the input ring and the overlap-add into the output rings, and the frame body
//! (analysis of a channel pair in one complex FFT, the activation solve, the Wiener masks,
//! the synthesis of every source but the complement), compiled per instruction set through
//! [`crate::simd`].

use std::sync::Arc;

use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};

use super::{Engine, MAX_SOURCES};
use crate::dsp::mask::wiener_masks_in_place;
use crate::dsp::window::periodic_hann;
use crate::simd;

/// FFT plans, window and scratch for one frame length.
pub(super) struct SizePlan {
    /// Complex FFTs of length n_fft: one transform carries two real channels.
    pub(super) forward: Arc<dyn Fft<f32>>,
    pub(super) inverse: Arc<dyn Fft<f32>>,
    /// Periodic Hann window, for analysis and synthesis.
    pub(super) window: Vec<f32>,
    pub(super) scratch: Vec<Complex32>,
}

impl SizePlan {
    /// Plans for frames of `n` samples from `planner`. Allocates.
    pub(super) fn new(planner: &mut FftPlanner<f32>, n: usize) -> Self {
        let forward = planner.plan_fft_forward(n);
        let inverse = planner.plan_fft_inverse(n);
        let scratch = forward
            .get_inplace_scratch_len()
            .max(inverse.get_inplace_scratch_len());
        SizePlan {
            forward,
            inverse,
            window: periodic_hann(n),
            scratch: vec![Complex32::default(); scratch],
        }
    }
}

impl Engine {
    /// One STFT frame, compiled for the instruction set of the engine (the loops around the
    /// FFTs are simple enough for the compiler to vectorize; the solver dispatches on its own).
    pub(super) fn process_frame(&mut self) {
        let engine = self;
        simd::dispatch!(engine.isa, |engine: &mut Engine| { engine.frame_body() })
    }

    /// Analysis of the newest n_fft input samples, activation solve, masks, and synthesis of
    /// every used source but the complement, added into the output rings.
    ///
    /// Two real channels share one complex FFT: with `z = x0 + i x1` the spectrum is
    /// `Z = X0 + i X1`, and `X0[k] = (Z[k] + conj Z[n-k]) / 2`, `X1[k] = (Z[k] - conj
    /// Z[n-k]) / 2i` (Brigham, "The Fast Fourier Transform and its Applications", 1988,
    /// sec. 9.3). A mask `M` is real and the same for both channels, so the masked pair is
    /// `M Z` with `M` extended symmetrically (`M[n-k] = M[k]`), and one inverse FFT returns
    /// both masked channels as its real and imaginary parts.
    #[inline(always)]
    fn frame_body(&mut self) {
        let n = self.n_fft();
        let half = n / 2;
        let bins = half + 1;
        let start = self.pos; // ring index of the oldest sample of the frame
        let channels = self.channels;
        let Some(d) = self.dict.as_deref_mut() else {
            // Without a dictionary the whole input is source 1: nothing to transform.
            self.complement = 0;
            return;
        };
        let plan = &mut self.plans[self.size];
        let exponent = d.exponent;
        let mag = &mut self.mag[..bins];
        mag.fill(0.0);
        for (p, z) in self.spectra.iter_mut().enumerate() {
            let z = &mut z[..n];
            let (c0, c1) = (2 * p, 2 * p + 1);
            let stereo = c1 < channels;
            let window = &plan.window;
            window_frame(&self.input_ring[c0], start, window, z, |o, x| {
                *o = Complex32::new(x, 0.0)
            });
            if stereo {
                window_frame(&self.input_ring[c1], start, window, z, |o, x| o.im = x);
            }
            plan.forward.process_with_scratch(z, &mut plan.scratch);
            match (exponent == 2.0, stereo) {
                (true, true) => add_pair_spectrogram::<true, true>(z, mag),
                (true, false) => add_pair_spectrogram::<true, false>(z, mag),
                (false, true) => add_pair_spectrogram::<false, true>(z, mag),
                (false, false) => add_pair_spectrogram::<false, false>(z, mag),
            }
        }
        let inv_c = 1.0 / channels.max(1) as f32;
        mag.iter_mut()
            .for_each(|m| *m = if m.is_finite() { *m * inv_c } else { 0.0 });

        let params = self.params;
        d.solver.set_rule(params.solve_rule);
        if let Some(live) = d.live.as_mut() {
            live.before_frame(&mut d.solver);
        }
        d.solver
            .solve(mag, &mut d.h, params.iterations, params.sparsity);
        let used = d.used;
        let [a, b, c, e] = &mut self.masks[..] else {
            unreachable!("MAX_SOURCES masks")
        };
        let mut refs: [&mut [f32]; MAX_SOURCES] = [
            &mut a[..bins],
            &mut b[..bins],
            &mut c[..bins],
            &mut e[..bins],
        ];
        let groups: [&[usize]; MAX_SOURCES] = std::array::from_fn(|s| d.groups[s].as_slice());
        // The source models: of the reconstruction templates when a trained separator has
        // them, else of the solver's.
        d.reconstruction
            .as_deref()
            .unwrap_or(&d.solver)
            .group_models(&d.h, &groups, &mut refs);
        if let Some(live) = d.live.as_mut() {
            // The residual of the known sources becomes the rest's newest exemplar (for the
            // next frame; this frame's models are computed already).
            live.after_frame(&mut d.solver, mag, &d.h, &refs, &used, params.freeze);
        }
        // A stereo stream with a trained spatial model: the multichannel Wiener filter of
        // every source (`spatial`) instead of one mask for both channels.
        let spatial = match d.spatial.as_deref_mut() {
            Some(sp) if channels == 2 => {
                sp.filter(&self.spectra[0][..n], &refs, &used, exponent);
                true
            }
            _ => false,
        };
        if !spatial {
            // Sources without components take no part in the masks.
            let mut active: [&mut [f32]; MAX_SOURCES] = Default::default();
            let mut count = 0;
            for (s, r) in refs.iter_mut().enumerate() {
                if used[s] {
                    active[count] = std::mem::take(r);
                    count += 1;
                }
            }
            wiener_masks_in_place(&mut active[..count], params.mask_power / exponent);
        }

        // The masks of a bin sum to one and the windows overlap-add to one, so the sources
        // sum to the delayed input: the last used source is that input minus the others,
        // and needs no synthesis of its own.
        self.complement = (0..MAX_SOURCES).rev().find(|&s| used[s]).unwrap_or(0);
        let scale = self.ola_scale;
        for s in (0..MAX_SOURCES).filter(|&s| used[s] && s != self.complement) {
            if let (true, Some(sp)) = (spatial, d.spatial.as_deref_mut()) {
                let y = &mut sp.out[s][..n];
                plan.inverse.process_with_scratch(y, &mut plan.scratch);
                let window = &plan.window;
                overlap_add(&mut self.output_ring[s][0], start, window, y, scale, |y| {
                    y.re
                });
                overlap_add(&mut self.output_ring[s][1], start, window, y, scale, |y| {
                    y.im
                });
                continue;
            }
            let mask = &self.masks[s][..bins];
            for (p, z) in self.spectra.iter().enumerate() {
                let y = &mut self.synth[..n];
                let (y_low, y_high) = y.split_at_mut(bins);
                for ((o, x), &m) in y_low.iter_mut().zip(&z[..bins]).zip(mask) {
                    *o = x * m;
                }
                for ((o, x), &m) in y_high
                    .iter_mut()
                    .zip(&z[bins..n])
                    .zip(mask[1..half].iter().rev())
                {
                    *o = x * m;
                }
                plan.inverse.process_with_scratch(y, &mut plan.scratch);
                let (c0, c1) = (2 * p, 2 * p + 1);
                let window = &plan.window;
                overlap_add(&mut self.output_ring[s][c0], start, window, y, scale, |y| {
                    y.re
                });
                if c1 < channels {
                    overlap_add(&mut self.output_ring[s][c1], start, window, y, scale, |y| {
                        y.im
                    });
                }
            }
        }
    }
}

/// Writes the frame held by the circular `ring` (n_fft = `frame.len()` samples, the oldest at
/// index `start`) into `frame` in time order, windowed: `put(&mut frame[j], x[j] * window[j])`.
#[inline(always)]
fn window_frame<T>(
    ring: &[f32],
    start: usize,
    window: &[f32],
    frame: &mut [T],
    put: impl Fn(&mut T, f32),
) {
    let n = frame.len();
    let (f_first, f_second) = frame.split_at_mut(n - start);
    let (w_first, w_second) = window.split_at(n - start);
    for ((o, &x), &w) in f_first.iter_mut().zip(&ring[start..n]).zip(w_first) {
        put(o, x * w);
    }
    for ((o, &x), &w) in f_second.iter_mut().zip(&ring[..start]).zip(w_second) {
        put(o, x * w);
    }
}

/// Overlap-adds `take(frame[j]) * window[j] * scale` into the circular `ring`, time order
/// starting at index `start` (the inverse of [`window_frame`]'s indexing).
#[inline(always)]
fn overlap_add<T>(
    ring: &mut [f32],
    start: usize,
    window: &[f32],
    frame: &[T],
    scale: f32,
    take: impl Fn(&T) -> f32,
) {
    let n = frame.len();
    let (f_first, f_second) = frame.split_at(n - start);
    let (w_first, w_second) = window.split_at(n - start);
    let (r_second, r_first) = ring[..n].split_at_mut(start);
    for ((o, y), &w) in r_first.iter_mut().zip(f_first).zip(w_first) {
        *o += take(y) * w * scale;
    }
    for ((o, y), &w) in r_second.iter_mut().zip(f_second).zip(w_second) {
        *o += take(y) * w * scale;
    }
}

/// Adds the magnitude (or, with `POWER`, the power) spectrum of both channels of a pair to
/// `mag` (n_bins), from the pair's complex spectrum `z` (n_fft): `X0[k] = (Z[k] + conj
/// Z[n-k]) / 2` and `X1[k] = (Z[k] - conj Z[n-k]) / 2i`, with `Z[n] = Z[0]`. Without
/// `STEREO` the pair holds one channel and `X0 = Z`.
#[inline(always)]
fn add_pair_spectrogram<const POWER: bool, const STEREO: bool>(z: &[Complex32], mag: &mut [f32]) {
    let n = z.len();
    let half = n / 2;
    let bin = |a: Complex32, b: Complex32| {
        let (s_re, s_im) = (a.re + b.re, a.im - b.im);
        let (d_re, d_im) = (a.re - b.re, a.im + b.im);
        let p0 = 0.25 * (s_re * s_re + s_im * s_im);
        let p1 = 0.25 * (d_re * d_re + d_im * d_im);
        match (POWER, STEREO) {
            (true, true) => p0 + p1,
            (true, false) => p0,
            (false, true) => p0.sqrt() + p1.sqrt(),
            (false, false) => p0.sqrt(),
        }
    };
    mag[0] += bin(z[0], z[0]);
    // Bin k pairs with n - k: z[half..n] read backwards is z[n-1], ..., z[half].
    for ((m, &a), &b) in mag[1..=half]
        .iter_mut()
        .zip(&z[1..=half])
        .zip(z[half..n].iter().rev())
    {
        *m += bin(a, b);
    }
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;
    use rand::{Rng, SeedableRng};
    use rand_pcg::Pcg64;

    use super::super::{run_offline, EngineParams, PreparedDictionary};
    use super::*;
    use crate::nmf::{Dictionary, SpectrogramKind};
    use crate::simd::Isa;

    /// Runs an engine with `process_frame` forced to `isa` over `audio`, in blocks of 333.
    fn run(
        dict: &Dictionary,
        params: &EngineParams,
        audio: &[Vec<f32>],
        isa: Isa,
    ) -> (Vec<Vec<f32>>, Vec<Vec<Vec<f32>>>) {
        let mut engine = Engine::new(dict.sample_rate as f32, audio.len());
        engine.isa = isa;
        engine.set_params(params);
        engine.set_dictionary(Some(Box::new(PreparedDictionary::by_labels(dict).unwrap())));
        run_offline(&mut engine, audio, 333)
    }

    /// Every output signal of [`run_offline`] with its name.
    fn outputs<'a>(main: &'a [Vec<f32>], src: &'a [Vec<Vec<f32>>]) -> Vec<(String, &'a [f32])> {
        let main = main
            .iter()
            .enumerate()
            .map(|(c, x)| (format!("main channel {c}"), x.as_slice()));
        let src = src.iter().enumerate().flat_map(|(s, bus)| {
            bus.iter()
                .enumerate()
                .map(move |(c, x)| (format!("source {s} channel {c}"), x.as_slice()))
        });
        main.chain(src).collect()
    }

    /// Every variant of the frame body gives the same output as the portable one, for a
    /// stereo engine on a magnitude dictionary with the classical Wiener mask, and a
    /// three-channel one (a channel pair and a lone channel) on a power dictionary with a
    /// fractional mask exponent (`powf`).
    ///
    /// The variants compile the same source with different target features. Rust neither
    /// fuses multiply-adds nor reorders float operations, so vectorizing the loops cannot
    /// change a result; the FFTs (rustfft) and the solver choose their code by themselves,
    /// the same way in both engines. The outputs measured bit-identical (largest difference
    /// 0 over every output of both cases), so equality is required: any difference is a bug
    /// in a variant. (Explicit FMA or intrinsics in the frame body would change this to
    /// rounding-level differences and call for a tolerance.)
    #[test]
    fn every_frame_variant_matches_the_portable_one() {
        let variants = Isa::variants();
        for (channels, kind, mask_power, seed) in [
            (2, SpectrogramKind::Magnitude, 2.0, 1),
            (3, SpectrogramKind::Power, 1.5, 2),
        ] {
            let mut rng = Pcg64::seed_from_u64(seed);
            let (n_fft, k) = (2048, 12);
            let dict = Dictionary {
                w: Array2::from_shape_simple_fn((n_fft / 2 + 1, k), || rng.gen::<f32>() + 0.01),
                sample_rate: 44_100,
                n_fft,
                hop: n_fft / 4,
                beta: 1.0,
                spectrogram: kind,
                labels: (0..k).map(|i| format!("s{}", i % 4)).collect(),
            };
            let audio: Vec<Vec<f32>> = (0..channels)
                .map(|_| (0..30_000).map(|_| rng.gen::<f32>() * 2.0 - 1.0).collect())
                .collect();
            let params = EngineParams {
                mask_power,
                ..EngineParams::default()
            };
            let (main_ref, src_ref) = run(&dict, &params, &audio, Isa::PORTABLE);
            // Every source carries sound, so the comparison is not one of silences.
            for (s, bus) in src_ref.iter().enumerate() {
                for (c, x) in bus.iter().enumerate() {
                    assert!(x.iter().any(|&v| v.abs() > 1e-3), "source {s} channel {c}");
                }
            }
            for &isa in variants.iter().skip(1) {
                let (main, src) = run(&dict, &params, &audio, isa);
                let (got, want) = (outputs(&main, &src), outputs(&main_ref, &src_ref));
                assert_eq!(got.len(), want.len());
                for ((name, a), (_, b)) in got.into_iter().zip(want) {
                    assert_eq!(a.len(), b.len(), "{name}");
                    if let Some(i) = (0..a.len()).find(|&i| a[i] != b[i]) {
                        panic!(
                            "{isa:?}, {channels} channels, {kind:?}: {name}, sample {i}: {} \
                             vs portable {}",
                            a[i], b[i]
                        );
                    }
                }
            }
        }
    }
}
