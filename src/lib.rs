pub mod dsp;
pub mod nmf;
pub mod plugin;

use plugin::{NmfSeparatorClap, NmfSeparatorVst3};

// The CLAP keeps the four source buses; the VST3 is main-only (see `plugin`'s documentation
// for the nice-plug 0.4.2 VST3 aux-bus issue this avoids).
nice_plug::nice_export_clap!(NmfSeparatorClap);
nice_plug::nice_export_vst3!(NmfSeparatorVst3);
