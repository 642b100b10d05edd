//! Separators trained from one clip per source, beyond a plain dictionary per clip:
//!
//! - [`augment`]: pitch-shifted copies of tonal sources' clips, so that the dictionaries
//!   cover notes the clips never played;
//! - [`pitch`]: whether a clip plays one pitch (a held note is not shifted);
//! - [`spatial`]: every stereo source's spatial covariance per frequency and the
//!   multichannel Wiener filter with a diffuse floor (Duong, Vincent & Gribonval 2010);
//! - [`discriminative`]: reconstruction templates trained on synthetic mixtures of the clips
//!   (Weninger et al. 2014), kept only when they beat the plain ones on held-back mixtures;
//! - [`train()`]: the training of a [`SeparatorModel`] from the clips;
//! - [`model`]: the model and its `.npz` file (a dictionary file with extra arrays; a plain
//!   dictionary file loads as a model);
//! - [`apply`]: offline separation with a model; [`realtime`]: a model made ready for the
//!   real-time engine.

pub mod apply;
pub mod augment;
pub mod discriminative;
pub mod model;
pub mod pitch;
pub mod realtime;
pub mod spatial;
pub mod train;

pub use apply::{separate_with_model, ModelSeparateOptions};
pub use discriminative::DiscriminativeOptions;
pub use model::{DiscriminativeRecord, ModelSettings, SeparatorModel, SourceInfo};
pub use spatial::{SpatialCovariance, DEFAULT_DIFFUSE_FLOOR};
pub use train::{train, TrainOptions, TrainProgress, TrainSource, TrainStage};
