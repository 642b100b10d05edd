//! [`Status`]: the state the plugin, its editor, the audio thread and the trainer thread
//! share (progress, flags, counters and the latest message). Everything the audio thread
//! touches is atomic.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};
use std::sync::Mutex;

use atomic_float::AtomicF32;

/// State shared by the plugin, the audio thread and the trainer thread. Everything the audio
/// thread touches is atomic.
#[derive(Default)]
pub struct Status {
    /// A fit of a capture is running.
    pub learning: AtomicBool,
    /// Progress of the running or last fit, 0..=1.
    pub progress: AtomicF32,
    /// A separator is being trained from the kept captures (progress in `progress`).
    pub training: AtomicBool,
    /// Separators trained successfully (and sent to the audio thread).
    pub models_trained: AtomicU64,
    /// The trained separator (persisted `model`) is what the dictionary prepared last is
    /// made of; false when the plain dictionary is.
    pub model_in_use: AtomicBool,
    /// Set to stop the running fit or training (checked every iteration).
    pub cancel: AtomicBool,
    /// Set to end the trainer thread.
    pub quit: AtomicBool,
    /// Dictionaries (or "no dictionary") sent to the audio thread.
    pub dictionaries_sent: AtomicU64,
    /// Dictionaries installed by the audio thread.
    pub dictionaries_installed: AtomicU64,
    /// Clips learned successfully.
    pub clips_learned: AtomicU64,
    /// Captures lost because no buffer or queue slot was free.
    pub captures_dropped: AtomicU32,
    /// Samples in the capture running now (audio thread).
    pub capture_len: AtomicU64,
    /// Template sets of the source learned live published by the live worker thread (into
    /// the persisted `rest_templates`).
    pub rest_refits: AtomicU64,
    /// The source learned live in the dictionary prepared last, as `s + 1`; 0 for none.
    pub live_source: AtomicU32,
    /// Latest human-readable message (errors, what was learned/loaded/exported).
    pub message: Mutex<String>,
    /// How the dictionary in use was mapped to the session ("learned at 44100 Hz, mapped to
    /// 48000 Hz", from [`crate::nmf::Dictionary::mapping_note`]); empty when it fits as it is
    /// or there is none. Written by the trainer thread whenever it prepares a dictionary.
    pub mapping: Mutex<String>,
}

impl Status {
    /// The latest message.
    pub fn message(&self) -> String {
        self.message
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How the dictionary in use was mapped to the session, or "" (see [`Self::mapping`]).
    pub fn mapping_note(&self) -> String {
        self.mapping
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn set_mapping(&self, note: Option<String>) {
        *self.mapping.lock().unwrap_or_else(|e| e.into_inner()) = note.unwrap_or_default();
    }

    pub(crate) fn say(&self, m: impl Into<String>) {
        let m = m.into();
        nice_plug::nice_log!("{m}");
        *self.message.lock().unwrap_or_else(|e| e.into_inner()) = m;
    }
}
