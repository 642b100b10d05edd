//! The service's tables in SQLite (`DATA_DIR/nmfsep.sqlite`): dictionaries and jobs.
//!
//! The database holds the state; files live beside it under server-made names (see
//! [`super::store`]). Writes are single statements, so a process killed at any point leaves
//! each row either before or after the change (SQLite's journal, WAL mode).

use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

/// A learned dictionary, as listed by the API.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DictionaryRow {
    pub id: String,
    pub name: String,
    /// Number of templates K.
    pub components: usize,
    pub beta: f32,
    pub n_fft: usize,
    pub hop: usize,
    /// Hz.
    pub sample_rate: u32,
    /// Length of the clip it was learned from, seconds.
    pub clip_seconds: f64,
    /// Unix time, seconds.
    pub created: i64,
}

/// One source of a job: output name and dictionary id.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct JobSource {
    pub name: String,
    pub dictionary: String,
}

/// Where a job stands.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Done,
    Failed,
    Cancelled,
}

impl JobState {
    fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> JobState {
        match s {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "done" => JobState::Done,
            "cancelled" => JobState::Cancelled,
            _ => JobState::Failed,
        }
    }

    /// True once the job will not change any more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Done | JobState::Failed | JobState::Cancelled
        )
    }
}

/// A separation job, as the API shows it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct JobRow {
    pub id: String,
    pub state: JobState,
    /// 0..1.
    pub progress: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub sources: Vec<JobSource>,
    pub rest: Option<String>,
    pub realtime: bool,
    /// Output names, in order (the sources, then the rest); set once done.
    pub stems: Vec<String>,
    /// Length of the mixture, seconds.
    pub mixture_seconds: f64,
    /// Unix time, seconds.
    pub created: i64,
}

/// The database, shared by the handlers and the workers (one connection behind a lock;
/// every call is one short statement).
pub struct Db {
    conn: Mutex<Connection>,
}

/// Unix time now, seconds.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS dictionaries (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    components INTEGER NOT NULL,
    beta REAL NOT NULL,
    n_fft INTEGER NOT NULL,
    hop INTEGER NOT NULL,
    sample_rate INTEGER NOT NULL,
    clip_seconds REAL NOT NULL,
    created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    progress REAL NOT NULL,
    error TEXT,
    sources TEXT NOT NULL,
    rest TEXT,
    realtime INTEGER NOT NULL,
    stems TEXT NOT NULL,
    mixture_seconds REAL NOT NULL,
    created INTEGER NOT NULL,
    seq INTEGER NOT NULL
);
";

fn dictionary_row(r: &Row) -> rusqlite::Result<DictionaryRow> {
    Ok(DictionaryRow {
        id: r.get(0)?,
        name: r.get(1)?,
        components: r.get::<_, i64>(2)? as usize,
        beta: r.get::<_, f64>(3)? as f32,
        n_fft: r.get::<_, i64>(4)? as usize,
        hop: r.get::<_, i64>(5)? as usize,
        sample_rate: r.get::<_, i64>(6)? as u32,
        clip_seconds: r.get(7)?,
        created: r.get(8)?,
    })
}

fn job_row(r: &Row) -> rusqlite::Result<JobRow> {
    let json = |i: usize| -> rusqlite::Result<String> { r.get(i) };
    let sources: Vec<JobSource> = serde_json::from_str(&json(4)?).unwrap_or_default();
    let stems: Vec<String> = serde_json::from_str(&json(7)?).unwrap_or_default();
    Ok(JobRow {
        id: r.get(0)?,
        state: JobState::parse(&r.get::<_, String>(1)?),
        progress: r.get(2)?,
        error: r.get(3)?,
        sources,
        rest: r.get(5)?,
        realtime: r.get::<_, i64>(6)? != 0,
        stems,
        mixture_seconds: r.get(8)?,
        created: r.get(9)?,
    })
}

const DICT_COLS: &str =
    "id, name, components, beta, n_fft, hop, sample_rate, clip_seconds, created";
const JOB_COLS: &str =
    "id, state, progress, error, sources, rest, realtime, stems, mixture_seconds, created";

impl Db {
    /// Opens (or creates) the database at `path`.
    ///
    /// # Errors
    /// If the file cannot be opened or is not a database of this service.
    pub fn open(path: &Path) -> Result<Db> {
        let conn = Connection::open(path)
            .with_context(|| format!("cannot open the database {}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)
            .with_context(|| format!("cannot set up the tables of {}", path.display()))?;
        Ok(Db {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written: go on.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Jobs a previous run left `queued` or `running` (it stopped or was killed) end as
    /// `failed` with the reason; returns their ids.
    pub fn fail_interrupted(&self) -> Result<Vec<String>> {
        let c = self.lock();
        let ids: Vec<String> = c
            .prepare("SELECT id FROM jobs WHERE state IN ('queued', 'running') ORDER BY seq")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        c.execute(
            "UPDATE jobs SET state = 'failed', error = CASE state WHEN 'running' THEN \
             'interrupted: the server stopped while the job was running; submit it again' ELSE \
             'interrupted: the server stopped before the job started; submit it again' END \
             WHERE state IN ('queued', 'running')",
            [],
        )?;
        Ok(ids)
    }

    pub fn insert_dictionary(&self, d: &DictionaryRow) -> Result<()> {
        self.lock().execute(
            &format!("INSERT INTO dictionaries ({DICT_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
            params![
                d.id,
                d.name,
                d.components as i64,
                f64::from(d.beta),
                d.n_fft as i64,
                d.hop as i64,
                i64::from(d.sample_rate),
                d.clip_seconds,
                d.created
            ],
        )?;
        Ok(())
    }

    pub fn dictionaries(&self) -> Result<Vec<DictionaryRow>> {
        let c = self.lock();
        let mut st = c.prepare(&format!(
            "SELECT {DICT_COLS} FROM dictionaries ORDER BY created, rowid"
        ))?;
        let rows = st.query_map([], dictionary_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn dictionary(&self, id: &str) -> Result<Option<DictionaryRow>> {
        let c = self.lock();
        Ok(c.query_row(
            &format!("SELECT {DICT_COLS} FROM dictionaries WHERE id = ?1"),
            [id],
            dictionary_row,
        )
        .optional()?)
    }

    /// True if a queued or running job uses dictionary `id`.
    pub fn dictionary_in_use(&self, id: &str) -> Result<bool> {
        // Ids are hexadecimal, so the pattern holds no wildcard.
        let pattern = format!("%\"{id}\"%");
        let c = self.lock();
        let n: i64 = c.query_row(
            "SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running') AND sources LIKE ?1",
            [pattern],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    /// Removes dictionary `id`; false if there was none.
    pub fn delete_dictionary(&self, id: &str) -> Result<bool> {
        Ok(self
            .lock()
            .execute("DELETE FROM dictionaries WHERE id = ?1", [id])?
            > 0)
    }

    pub fn insert_job(&self, j: &JobRow) -> Result<()> {
        let c = self.lock();
        c.execute(
            &format!(
                "INSERT INTO jobs ({JOB_COLS}, seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, \
                 (SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs))"
            ),
            params![
                j.id,
                j.state.as_str(),
                j.progress,
                j.error,
                serde_json::to_string(&j.sources)?,
                j.rest,
                i64::from(j.realtime),
                serde_json::to_string(&j.stems)?,
                j.mixture_seconds,
                j.created
            ],
        )?;
        Ok(())
    }

    pub fn jobs(&self) -> Result<Vec<JobRow>> {
        let c = self.lock();
        let mut st = c.prepare(&format!("SELECT {JOB_COLS} FROM jobs ORDER BY seq DESC"))?;
        let rows = st.query_map([], job_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn job(&self, id: &str) -> Result<Option<JobRow>> {
        let c = self.lock();
        Ok(c.query_row(
            &format!("SELECT {JOB_COLS} FROM jobs WHERE id = ?1"),
            [id],
            job_row,
        )
        .optional()?)
    }

    /// Moves job `id` from one of the states `from` to `to` with `progress` and `error`;
    /// false if the job was in none of `from` (e.g. cancelled meanwhile).
    pub fn transition(
        &self,
        id: &str,
        from: &[JobState],
        to: JobState,
        progress: f64,
        error: Option<&str>,
    ) -> Result<bool> {
        let list = from
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        let n = self.lock().execute(
            &format!(
                "UPDATE jobs SET state = ?2, progress = ?3, error = ?4 WHERE id = ?1 AND state IN ({list})"
            ),
            params![id, to.as_str(), progress, error],
        )?;
        Ok(n > 0)
    }

    /// Sets the progress of a running job.
    pub fn set_progress(&self, id: &str, progress: f64) -> Result<()> {
        self.lock().execute(
            "UPDATE jobs SET progress = ?2 WHERE id = ?1 AND state = 'running'",
            params![id, progress],
        )?;
        Ok(())
    }

    /// Marks running job `id` done with its outputs `stems`; false if it was not running.
    pub fn finish(&self, id: &str, stems: &[String]) -> Result<bool> {
        let n = self.lock().execute(
            "UPDATE jobs SET state = 'done', progress = 1.0, error = NULL, stems = ?2 \
             WHERE id = ?1 AND state = 'running'",
            params![id, serde_json::to_string(stems)?],
        )?;
        Ok(n > 0)
    }

    /// Removes job `id`; false if there was none.
    pub fn delete_job(&self, id: &str) -> Result<bool> {
        Ok(self
            .lock()
            .execute("DELETE FROM jobs WHERE id = ?1", [id])?
            > 0)
    }
}
