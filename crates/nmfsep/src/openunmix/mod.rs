//! Open-Unmix inference without Python or torch (Stöter, Uhlich, Liutkus, Mitsufuji 2019,
//! JOSS 4(41) 1667; open-unmix-pytorch 1.3.0): a port of the `OpenUnmix` network and the
//! `Separator` (STFT, Wiener filter with EM, inverse STFT) that reads the published model
//! folders (umxhq, umxl, ...) as `openunmix.utils.load_separator` does.
//!
//! One job per file: [`pth`] reads checkpoints into ndarray, [`lstm`] and [`model`] are the
//! network, [`stft`] the transforms, [`wiener`] the filter, [`folder`] the model folder,
//! [`separator`] the driver.

pub mod folder;
pub mod lstm;
pub mod model;
pub mod pth;
pub mod separator;
pub mod stft;
pub mod wiener;

pub use folder::{is_model_folder, ModelFolder};
pub use separator::{separate, Progress, SeparatorOptions};
pub use wiener::WienerOptions;
