//! NMF Separator: sound separation with non-negative matrix factorization.
//!
//! - [`nmf`]: the numerics (beta divergence, multiplicative updates, the per-frame solver,
//!   dictionaries and their `.npz` format).
//! - [`dsp`]: STFT, Wiener masks, offline separation, learning, and the real-time [`dsp::Engine`].
//! - [`plugin`]: the CLAP/VST3 plugin on nice-plug.
//! - [`cli`], [`audio`], [`plot`]: the `nmfsep` command-line tool, audio files and PNG plots.
//! - [`metrics`]: SI-SDR for tests and benchmarks.
//! - [`simd`]: the CPU instruction set, detected once, and the one dispatch of the hot loops.

pub mod aligned;
pub mod audio;
pub mod cli;
pub mod dsp;
pub mod metrics;
pub mod nmf;
pub mod plot;
pub mod plugin;
pub mod simd;

use plugin::{NmfSeparatorClap, NmfSeparatorVst3};

// The CLAP keeps the four source buses; the VST3 is main-only (see `plugin`'s documentation
// for the nice-plug 0.4.2 VST3 aux-bus issue this avoids).
nice_plug::nice_export_clap!(NmfSeparatorClap);
nice_plug::nice_export_vst3!(NmfSeparatorVst3);
