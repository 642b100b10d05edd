//! `nmfsep serve`: separation as a web service on one machine, with a page.
//!
//! A JSON API (axum on tokio) over dictionaries learned from uploaded clips and separation
//! jobs on uploaded mixtures, with the state in a data folder: SQLite tables ([`db`]) and
//! files under server-made names ([`store`]). Learning and separating run as `nmfsep learn`
//! and `nmfsep separate` processes of this executable, on a bounded pool ([`jobs`]), so the
//! results are the command line's. The page at `/` ([`page`]) uses the same API.
//!
//! Security: without a token the server listens on loopback only ([`config`]); with one,
//! every API call needs `Authorization: Bearer TOKEN` ([`routes`]). Uploads are limited in
//! size (413), must decode as audio (415), names must be plain (400); a full queue answers
//! 429; every error is `{"error": "..."}`.
//!
//! Crash safety: files are written under temporary names and renamed; at start, jobs a
//! previous run left queued or running are marked failed with the reason, and a lock file
//! keeps a second server off the same folder.
//!
//! Progress is reported by stage (see [`jobs`]): the separation process reports none.

pub mod api_dicts;
pub mod api_jobs;
pub mod archive;
pub mod config;
pub mod db;
pub mod error;
pub mod files;
pub mod jobs;
pub mod learn;
pub mod page;
pub mod routes;
pub mod sse;
pub mod state;
pub mod store;
pub mod upload;

use std::sync::Arc;

use anyhow::{Context, Result};

pub use config::ServeArgs;
use config::{Config, TOKEN_ENV};

/// Runs the server until Ctrl-C or SIGTERM.
///
/// # Errors
/// If the arguments break the token rule, the data folder cannot be used or the address
/// cannot be bound.
pub fn run(args: &ServeArgs) -> Result<()> {
    let cfg = Config::from_args(args, std::env::var(TOKEN_ENV).ok())?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,symphonia_core=off")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(serve(cfg))
}

async fn serve(cfg: Config) -> Result<()> {
    let store = store::Store::open(&cfg.data_dir)?;
    let db = Arc::new(db::Db::open(&store.database())?);
    for id in db.fail_interrupted()? {
        tracing::warn!(job = %id, "job interrupted by the previous run marked failed");
    }
    let exe = std::env::current_exe().context("cannot find the nmfsep executable")?;
    let ctx = Arc::new(jobs::WorkerContext {
        db: db.clone(),
        store: store.clone(),
        exe: exe.clone(),
        timeout: cfg.job_timeout,
    });
    let jobs = jobs::Jobs::start(ctx, cfg.workers, cfg.max_queue);
    let listener = tokio::net::TcpListener::bind(cfg.addr)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.addr))?;
    let addr = listener.local_addr()?;
    let st = Arc::new(state::AppState {
        learn_slots: tokio::sync::Semaphore::new(cfg.workers),
        cfg,
        db,
        store,
        jobs,
        exe,
    });
    let app = routes::router(st.clone());
    tracing::info!(%addr, data_dir = %st.cfg.data_dir.display(), token = st.cfg.token.is_some(), "listening");
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{addr}")?;
        out.flush()?;
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown())
        .await
        .context("the server stopped")?;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutting down");
}
