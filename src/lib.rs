//! NMF Separator, the CLAP/VST3 plugin: sound separation with non-negative matrix factorization
//! in a DAW.
//!
//! - [`plugin`]: the nice-plug plugin (parameters, capture, trainer thread, state, editor);
//! - [`vst3_export`]: its VST3 factory (two classes) and bus layer.
//!
//! The numerics and the real-time engine are the `nmf_core` crate's, re-exported here as
//! [`nmf`], [`dsp`], [`metrics`], [`separator`], [`simd`] and [`aligned`]; the command-line tool is the
//! `nmfsep` crate.

pub mod plugin;
pub mod vst3_export;

// The core's modules under their usual names (the plugin and its tests use `crate::dsp`, ...).
pub use nmf_core::{aligned, dsp, metrics, nmf, simd, trained};

use plugin::NmfSeparatorClap;

// The CLAP: main + the four source buses. The VST3 factory (two classes, main-only and
// multi-out, behind the project's own bus layer) is `vst3_export`'s `GetPluginFactory`.
nice_plug::nice_export_clap!(NmfSeparatorClap);
