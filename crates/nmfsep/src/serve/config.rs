//! `nmfsep serve` arguments and the rules checked before the server starts: the address,
//! the token rule (no listening beyond loopback without a token) and the limits.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

/// Environment variable read for the token when `--token` is not given.
pub const TOKEN_ENV: &str = "NMFSEP_TOKEN";

/// `nmfsep serve`.
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on. Port 0 picks a free port; the address in use is printed on
    /// stdout as `listening on http://ADDR`. An address other than loopback needs a token.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Folder of the service's state: the SQLite database, dictionaries, uploads and stems
    /// (created if missing).
    #[arg(long, default_value = "nmfsep-data")]
    pub data_dir: PathBuf,
    /// Every API call must then carry `Authorization: Bearer TOKEN` (default: the
    /// NMFSEP_TOKEN environment variable; none means loopback only, no authentication).
    #[arg(long)]
    pub token: Option<String>,
    /// Separations run at the same time (each in its own `nmfsep separate` process).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub workers: u16,
    /// Jobs waiting for a worker beyond which a new job is refused (429).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub max_queue: u16,
    /// Largest upload (a whole request), MiB; larger ones are refused (413).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub max_upload_mb: u32,
    /// Longest run of one separation, seconds; a job over it fails.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u32).range(1..=86400))]
    pub job_timeout_s: u32,
}

/// The settings the server runs with, once checked.
#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub token: Option<String>,
    pub workers: usize,
    pub max_queue: usize,
    /// Bytes.
    pub max_upload: usize,
    pub job_timeout: std::time::Duration,
}

impl Config {
    /// Checks the arguments: the token (from `--token`, else [`TOKEN_ENV`]) must be set when
    /// the address is not loopback, and must be printable ASCII without spaces.
    ///
    /// # Errors
    /// One line saying what to change.
    pub fn from_args(a: &ServeArgs, env_token: Option<String>) -> Result<Config> {
        let token = a.token.clone().or(env_token).filter(|t| !t.is_empty());
        if let Some(t) = &token {
            if !t.bytes().all(|b| b.is_ascii_graphic()) {
                bail!("the token must be printable ASCII without spaces");
            }
        }
        if !a.addr.ip().is_loopback() && token.is_none() {
            bail!(
                "refusing to listen on {} without a token: anyone on the network could use the service; \
                 give --token TOKEN (or set {TOKEN_ENV}), or listen on a loopback address such as 127.0.0.1",
                a.addr
            );
        }
        Ok(Config {
            addr: a.addr,
            data_dir: a.data_dir.clone(),
            token,
            workers: usize::from(a.workers),
            max_queue: usize::from(a.max_queue),
            max_upload: a.max_upload_mb as usize * 1024 * 1024,
            job_timeout: std::time::Duration::from_secs(u64::from(a.job_timeout_s)),
        })
    }
}
