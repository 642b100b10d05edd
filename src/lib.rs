//! NMF Separator: sound separation with non-negative matrix factorization.
//!
//! - [`nmf`]: the numerics (beta divergence, multiplicative updates, the per-frame solver,
//!   dictionaries and their `.npz` format).
//! - [`dsp`]: STFT, Wiener masks, offline separation, learning, and the real-time [`dsp::Engine`].
//! - [`plugin`]: the CLAP/VST3 plugin on nice-plug; [`vst3_export`]: its VST3 factory and bus
//!   layer.
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
pub mod vst3_export;

use plugin::NmfSeparatorClap;

// The CLAP: main + the four source buses. The VST3 factory (two classes, main-only and
// multi-out, behind the project's own bus layer) is `vst3_export`'s `GetPluginFactory`.
nice_plug::nice_export_clap!(NmfSeparatorClap);
