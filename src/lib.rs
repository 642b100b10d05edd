pub mod dsp;
pub mod nmf;
