//! The job queue and its workers.
//!
//! A bounded queue of job ids (full: the submission is refused with 429) feeds `workers`
//! tasks. A worker runs one job at a time as an `nmfsep separate` process of this same
//! executable, so a job gives exactly the command line's result, the separation never runs
//! on the async executor, a job is cancelled by killing its process, and the process dies
//! with the server (Linux's parent-death signal). Progress is reported by stage: 0 queued,
//! 0.1 running, 0.8 once the stems are written, 1 once the zip is written too.
//!
//! Every change of a job is written to the table first, then sent to the listeners of
//! [`Jobs::subscribe`] (the server-sent events).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, Context, Result};
use tokio::io::AsyncReadExt;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::archive::write_zip;
use super::db::{Db, JobRow, JobState};
use super::store::{stem_key, Store};

/// Progress once a worker took the job.
pub const PROGRESS_STARTED: f64 = 0.1;
/// Progress once the stems are written.
pub const PROGRESS_STEMS: f64 = 0.8;
/// Longest part of a failed process's error output kept, bytes.
const MAX_STDERR: usize = 16 * 1024;

/// The queue, the cancel handles of running jobs and the event channel.
pub struct Jobs {
    queue: mpsc::Sender<String>,
    cancels: Mutex<HashMap<String, oneshot::Sender<()>>>,
    events: broadcast::Sender<JobRow>,
}

/// Why a submission was not queued.
#[derive(Debug)]
pub enum SubmitError {
    /// The queue is full.
    Full,
    Other(anyhow::Error),
}

/// What a worker needs.
pub struct WorkerContext {
    pub db: Arc<Db>,
    pub store: Store,
    /// The `nmfsep` executable that runs the separations.
    pub exe: PathBuf,
    pub timeout: std::time::Duration,
}

impl Jobs {
    /// Starts `workers` workers on a queue of `capacity` waiting jobs.
    pub fn start(ctx: Arc<WorkerContext>, workers: usize, capacity: usize) -> Arc<Jobs> {
        let (tx, rx) = mpsc::channel::<String>(capacity);
        let (events, _) = broadcast::channel(1024);
        let jobs = Arc::new(Jobs {
            queue: tx,
            cancels: Mutex::new(HashMap::new()),
            events,
        });
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        for n in 0..workers {
            let (jobs, rx, ctx) = (jobs.clone(), rx.clone(), ctx.clone());
            tokio::spawn(async move {
                loop {
                    let next = rx.lock().await.recv().await;
                    let Some(id) = next else { break };
                    tracing::info!(worker = n, job = %id, "job started");
                    jobs.run(&ctx, &id).await;
                }
            });
        }
        jobs
    }

    /// Listeners of job changes (every change of every job, as its new row).
    pub fn subscribe(&self) -> broadcast::Receiver<JobRow> {
        self.events.subscribe()
    }

    /// Sends the current row of job `id` to the listeners.
    pub fn publish(&self, db: &Db, id: &str) {
        if let Ok(Some(row)) = db.job(id) {
            let _ = self.events.send(row);
        }
    }

    /// Inserts `job` (state queued) and queues it, or refuses it when the queue is full (then
    /// nothing is inserted).
    ///
    /// # Errors
    /// [`SubmitError::Full`] when `capacity` jobs are waiting.
    pub fn submit(&self, db: &Db, job: &JobRow) -> Result<(), SubmitError> {
        let permit = self.queue.try_reserve().map_err(|e| match e {
            mpsc::error::TrySendError::Full(()) => SubmitError::Full,
            mpsc::error::TrySendError::Closed(()) => {
                SubmitError::Other(anyhow!("the job queue is closed"))
            }
        })?;
        db.insert_job(job).map_err(SubmitError::Other)?;
        permit.send(job.id.clone());
        self.publish(db, &job.id);
        Ok(())
    }

    /// Cancels job `id` if it is queued or running; false if it was already final.
    ///
    /// # Errors
    /// If the table cannot be written.
    pub fn cancel(&self, db: &Db, id: &str) -> Result<bool> {
        let live = [JobState::Queued, JobState::Running];
        let p = db.job(id)?.map_or(0.0, |j| j.progress);
        if !db.transition(id, &live, JobState::Cancelled, p, Some("cancelled"))? {
            return Ok(false);
        }
        if let Some(tx) = self.lock_cancels().remove(id) {
            let _ = tx.send(());
        }
        self.publish(db, id);
        Ok(true)
    }

    fn lock_cancels(&self) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<()>>> {
        self.cancels.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs job `id` to its end (done, failed or cancelled).
    async fn run(&self, ctx: &WorkerContext, id: &str) {
        let (tx, rx) = oneshot::channel();
        self.lock_cancels().insert(id.to_string(), tx);
        let started = ctx.db.transition(
            id,
            &[JobState::Queued],
            JobState::Running,
            PROGRESS_STARTED,
            None,
        );
        match started {
            Ok(true) => {}
            Ok(false) => {
                // Cancelled while waiting.
                self.lock_cancels().remove(id);
                return;
            }
            Err(e) => {
                self.lock_cancels().remove(id);
                tracing::error!(job = %id, "cannot start: {e:#}");
                return;
            }
        }
        self.publish(&ctx.db, id);
        let outcome = self.separate(ctx, id, rx).await;
        self.lock_cancels().remove(id);
        let result = match outcome {
            Ok(Some(stems)) => ctx.db.finish(id, &stems).inspect(|&done| {
                if done {
                    tracing::info!(job = %id, "job done");
                }
            }),
            Ok(None) => Ok(false),
            Err(e) => {
                let msg = format!("{e:#}");
                tracing::warn!(job = %id, "job failed: {msg}");
                ctx.db.transition(
                    id,
                    &[JobState::Running],
                    JobState::Failed,
                    PROGRESS_STARTED,
                    Some(&msg),
                )
            }
        };
        match result {
            Ok(true) => {}
            Ok(false) => {
                // Cancelled meanwhile: leave no outputs.
                let _ = std::fs::remove_dir_all(ctx.store.stems_dir(id));
                let _ = std::fs::remove_file(ctx.store.zip(id));
                tracing::info!(job = %id, "job cancelled");
            }
            Err(e) => tracing::error!(job = %id, "cannot record the end of the job: {e:#}"),
        }
        self.publish(&ctx.db, id);
    }

    /// The separation of job `id`: `Ok(Some(stem names))` once its stems and zip are written,
    /// `Ok(None)` if cancelled.
    async fn separate(
        &self,
        ctx: &WorkerContext,
        id: &str,
        mut cancel: oneshot::Receiver<()>,
    ) -> Result<Option<Vec<String>>> {
        let job = ctx.db.job(id)?.context("the job vanished")?;
        let mixture = ctx
            .store
            .mixture(id)
            .context("the job's mixture file is missing")?;
        let mut names: Vec<String> = Vec::new();
        let mut args: Vec<std::ffi::OsString> = vec!["separate".into(), mixture.clone().into()];
        let dict_paths: Vec<PathBuf> = job
            .sources
            .iter()
            .map(|s| ctx.store.dictionary(&s.dictionary))
            .collect();
        for (i, s) in job.sources.iter().enumerate() {
            let dict = ctx.store.dictionary(&s.dictionary);
            if !dict.is_file() {
                return Err(anyhow!(
                    "dictionary {} of source {:?} was deleted",
                    s.dictionary,
                    s.name
                ));
            }
            let mut a = std::ffi::OsString::from(format!("{}=", stem_key(i)));
            a.push(dict.as_os_str());
            args.push("--source".into());
            args.push(a);
            names.push(s.name.clone());
        }
        if let Some(rest) = &job.rest {
            args.push("--rest".into());
            args.push(stem_key(names.len()).into());
            names.push(rest.clone());
        }
        if job.realtime {
            args.push("--realtime".into());
        }
        let out_dir = ctx.store.stems_dir(id);
        args.push("--output".into());
        args.push(out_dir.clone().into());

        let mut child = spawn_child(&ctx.exe, &args)?;
        let mut stderr = child.stderr.take().context("no error pipe")?;
        let err_text = tokio::spawn(async move {
            let mut buf = Vec::new();
            let _ = (&mut stderr)
                .take(MAX_STDERR as u64)
                .read_to_end(&mut buf)
                .await;
            // Drain the rest so the process never blocks on a full pipe.
            let _ = tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await;
            String::from_utf8_lossy(&buf).into_owned()
        });
        let status = tokio::select! {
            s = child.wait() => s.context("cannot wait for the separation process")?,
            _ = &mut cancel => {
                let _ = child.kill().await;
                return Ok(None);
            }
            () = tokio::time::sleep(ctx.timeout) => {
                let _ = child.kill().await;
                return Err(anyhow!("the separation took longer than {} s (--job-timeout-s)", ctx.timeout.as_secs()));
            }
        };
        let text = err_text.await.unwrap_or_default();
        if !status.success() {
            let labels: Vec<String> = job
                .sources
                .iter()
                .map(|s| format!("the dictionary of {:?}", s.name))
                .collect();
            let mut known: Vec<(&Path, &str)> = vec![(mixture.as_path(), "the mixture")];
            known.extend(
                dict_paths
                    .iter()
                    .map(PathBuf::as_path)
                    .zip(labels.iter().map(String::as_str)),
            );
            return Err(anyhow!(
                "{}",
                ctx.store.redact(&cli_error(&text, status), &known)
            ));
        }
        let files: Vec<PathBuf> = (0..names.len()).map(|i| ctx.store.stem(id, i)).collect();
        if let Some(missing) = files.iter().find(|f| !f.is_file()) {
            return Err(anyhow!(
                "the separation did not write {}",
                missing.file_name().unwrap_or_default().to_string_lossy()
            ));
        }
        ctx.db.set_progress(id, PROGRESS_STEMS)?;
        self.publish(&ctx.db, id);
        let zip = ctx.store.zip(id);
        let entries: Vec<(String, PathBuf)> = names.iter().cloned().zip(files).collect();
        tokio::task::spawn_blocking(move || write_zip(&zip, &entries))
            .await
            .context("the zip writer stopped")??;
        Ok(Some(names))
    }
}

/// Starts `exe args` with no input or output and its error output piped, killed when the
/// server dies (Linux) or when its handle is dropped.
fn spawn_child(exe: &Path, args: &[std::ffi::OsString]) -> Result<tokio::process::Child> {
    let mut cmd = tokio::process::Command::new(exe);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(target_os = "linux")]
    // SAFETY: prctl is async-signal-safe and touches only the child's own state.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
        .with_context(|| format!("cannot start {}", exe.display()))
}

/// The command line's error line(s) (`nmfsep: error: ...`) from its error output, or the
/// exit status if there is none.
pub fn cli_error(stderr: &str, status: std::process::ExitStatus) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("nmfsep: error: "))
        .collect();
    if lines.is_empty() {
        format!("the separation process ended with {status}")
    } else {
        lines.join("; ")
    }
}
