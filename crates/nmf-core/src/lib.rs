//! The numerics and signal processing of NMF Separator, free of any host, GUI, command-line or
//! audio-file crate, so the plugin, the `nmfsep` tool and the tests run the same code.
//!
//! - [`nmf`]: beta divergence, multiplicative updates, the per-frame solver, semi-supervised and
//!   online learners, dictionaries and their `.npz` format.
//! - [`dsp`]: periodic Hann window, STFT, Wiener masks, offline separation, learning, and the
//!   real-time [`dsp::Engine`].
//! - [`trained`]: separators trained from one clip per source (augmented dictionaries,
//!   spatial model, model file).
//! - [`metrics`]: SI-SDR for tests and benchmarks.
//! - [`simd`]: the CPU instruction set, detected once, and the one dispatch of the hot loops;
//!   [`aligned`]: cache-line aligned buffers for those kernels.

#![warn(missing_docs)]

pub mod aligned;
pub mod dsp;
pub mod fastmath;
pub mod metrics;
pub mod nmf;
pub mod simd;
pub mod trained;
