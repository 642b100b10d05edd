pub mod audio;
pub mod cli;
pub mod dsp;
pub mod metrics;
pub mod nmf;
pub mod plot;
