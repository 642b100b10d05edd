//! Signal processing around the NMF: windows, STFT, Wiener masks, offline separation and the
//! real-time engine. No host or plugin types, so the CLI and the tests drive exactly what the
//! plugin runs.

pub mod engine;
pub mod learn;
pub mod mask;
pub mod separate;
pub mod separator;
pub mod stft;
pub mod window;

pub use engine::{Engine, EngineParams, PreparedDictionary, MAX_SOURCES};
pub use learn::learn_dictionary;
pub use mask::wiener_masks_in_place;
pub use separate::{separate, ChannelMode, SeparateOptions, Separation};
pub use separator::{resynthesize, Separator, SupervisedNmf};
pub use stft::{spectrogram, Stft};
pub use window::periodic_hann;
