//! What every handler shares.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::Semaphore;

use super::config::Config;
use super::db::Db;
use super::jobs::Jobs;
use super::store::Store;

/// The server's state.
pub struct AppState {
    pub cfg: Config,
    pub db: Arc<Db>,
    pub store: Store,
    pub jobs: Arc<Jobs>,
    /// The `nmfsep` executable run for learning and separating.
    pub exe: PathBuf,
    /// Learn runs allowed at once (as many as workers).
    pub learn_slots: Semaphore,
}

/// The state as handlers receive it.
pub type Shared = Arc<AppState>;
