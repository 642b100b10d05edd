//! The `nmfsep` command-line tool of NMF Separator and what only a tool needs: audio files
//! ([`audio`]), PNG plots ([`plot`]) and the commands ([`cli`]). The numerics are `nmf_core`'s.

pub mod audio;
pub mod cli;
pub mod evaluate;
pub mod openunmix;
pub mod plot;
pub mod serve;

// The core's modules under their usual names, so `crate::nmf::...` reads as in the core.
pub use nmf_core::{dsp, nmf, trained};
