//! `/api/jobs`: submit a separation, list, status, cancel or delete, stems and their zip.

use axum::extract::{Multipart, Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::db::{now, JobRow, JobSource, JobState};
use super::error::{ApiError, ApiResult};
use super::files::{attachment, serve_file};
use super::jobs::SubmitError;
use super::state::Shared;
use super::store::{is_id, new_id};
use super::upload::{check_audio, check_name, read_form};
use crate::cli::names::same_file_name;
use crate::dsp::engine::MAX_SOURCES;

fn parse_bool(v: Option<&str>, field: &str) -> ApiResult<bool> {
    match v.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
        None | Some("" | "false" | "0" | "off" | "no") => Ok(false),
        Some("true" | "1" | "on" | "yes") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "field {field:?} must be true or false, not {other:?}"
        ))),
    }
}

/// `POST /api/jobs` (multipart `mixture`, `source=NAME=DICTIONARY_ID` repeated, optional
/// `rest=NAME`, `realtime=true`): 202 `{"id", ...}` once queued; 429 if the queue is full.
pub async fn create(State(st): State<Shared>, mp: Multipart) -> ApiResult<Response> {
    let mut form = read_form(&st.store, mp, &["mixture"]).await?;
    let mut sources: Vec<JobSource> = Vec::new();
    let mut dicts = Vec::new();
    for s in form.all("source") {
        let (name, id) = s.split_once('=').ok_or_else(|| {
            ApiError::bad_request(format!("source {s:?} must be NAME=DICTIONARY_ID"))
        })?;
        check_name(name, "source")?;
        if !is_id(id) {
            return Err(ApiError::not_found("dictionary"));
        }
        let d = st
            .db
            .dictionary(id)?
            .ok_or_else(|| ApiError::not_found("dictionary"))?;
        if sources.iter().any(|o| same_file_name(&o.name, name)) {
            return Err(ApiError::bad_request(format!(
                "source name {name:?} is given twice"
            )));
        }
        sources.push(JobSource {
            name: name.to_string(),
            dictionary: d.id.clone(),
        });
        dicts.push(d);
    }
    let rest = form.one("rest")?.map(str::trim).filter(|r| !r.is_empty());
    if let Some(r) = rest {
        check_name(r, "rest")?;
        if sources.iter().any(|o| same_file_name(&o.name, r)) {
            return Err(ApiError::bad_request(format!(
                "the rest name {r:?} is also a source name"
            )));
        }
    }
    let rest = rest.map(str::to_string);
    if sources.is_empty() && rest.is_none() {
        return Err(ApiError::bad_request(
            "give at least one source=NAME=DICTIONARY_ID, or a rest",
        ));
    }
    if let Some(first) = dicts.first() {
        for d in &dicts[1..] {
            if (d.n_fft, d.hop, d.sample_rate) != (first.n_fft, first.hop, first.sample_rate)
                || d.beta != first.beta
            {
                return Err(ApiError::bad_request(format!(
                    "dictionaries {:?} and {:?} were learned with different settings (rate, n_fft, hop or beta)",
                    first.name, d.name
                )));
            }
        }
    }
    let realtime = parse_bool(form.one("realtime")?, "realtime")?;
    let limit = if rest.is_some() {
        MAX_SOURCES - 1
    } else {
        MAX_SOURCES
    };
    if realtime && sources.len() > limit {
        return Err(ApiError::bad_request(format!(
            "realtime separates at most {limit} sources{}",
            if rest.is_some() {
                " besides the rest"
            } else {
                ""
            }
        )));
    }
    let mixture = form
        .files
        .remove("mixture")
        .ok_or_else(|| ApiError::bad_request("the file \"mixture\" is missing"))?;
    let info = check_audio(&mixture, "mixture").await?;

    let id = new_id();
    let dir = st.store.job_dir(&id);
    let ext = mixture
        .path()
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("bin")
        .to_string();
    std::fs::create_dir_all(&dir).map_err(|e| ApiError::from(anyhow::Error::from(e)))?;
    if let Err(e) = mixture.persist(&dir.join(format!("mixture.{ext}"))) {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(ApiError::from(anyhow::Error::from(e)));
    }
    let job = JobRow {
        id: id.clone(),
        state: JobState::Queued,
        progress: 0.0,
        error: None,
        sources,
        rest,
        realtime,
        stems: Vec::new(),
        mixture_seconds: info.seconds,
        created: now(),
    };
    match st.jobs.submit(&st.db, &job) {
        Ok(()) => {
            tracing::info!(job = %id, seconds = info.seconds, "job queued");
            Ok((StatusCode::ACCEPTED, Json(job)).into_response())
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            match e {
                SubmitError::Full => Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "the job queue is full; try again later",
                )),
                SubmitError::Other(e) => Err(e.into()),
            }
        }
    }
}

/// `GET /api/jobs`: every job, newest first.
pub async fn list(State(st): State<Shared>) -> ApiResult<Json<Vec<JobRow>>> {
    Ok(Json(st.db.jobs()?))
}

/// The job `id`, or 404.
pub fn find(st: &Shared, id: &str) -> ApiResult<JobRow> {
    if !is_id(id) {
        return Err(ApiError::not_found("job"));
    }
    st.db.job(id)?.ok_or_else(|| ApiError::not_found("job"))
}

/// `GET /api/jobs/{id}`.
pub async fn get(State(st): State<Shared>, Path(id): Path<String>) -> ApiResult<Json<JobRow>> {
    Ok(Json(find(&st, &id)?))
}

/// `DELETE /api/jobs/{id}`: a queued or running job is cancelled (200 with its row); a
/// finished one is removed with its files (204).
pub async fn delete(State(st): State<Shared>, Path(id): Path<String>) -> ApiResult<Response> {
    let job = find(&st, &id)?;
    if !job.state.is_final() && st.jobs.cancel(&st.db, &job.id)? {
        tracing::info!(job = %job.id, "job cancelled");
        return Ok(Json(find(&st, &id)?).into_response());
    }
    st.db.delete_job(&job.id)?;
    let _ = std::fs::remove_dir_all(st.store.job_dir(&job.id));
    tracing::info!(job = %job.id, "job deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn done_job(st: &Shared, id: &str) -> ApiResult<JobRow> {
    let job = find(st, id)?;
    if job.state != JobState::Done {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "the job is {}, its stems are not ready",
                state_name(job.state)
            ),
        ));
    }
    Ok(job)
}

fn state_name(s: JobState) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// `GET /api/jobs/{id}/stems/{name}.wav` (Range requests work).
pub async fn stem(
    State(st): State<Shared>,
    Path((id, file)): Path<(String, String)>,
    req: Request,
) -> ApiResult<Response> {
    let job = done_job(&st, &id)?;
    let name = file
        .strip_suffix(".wav")
        .ok_or_else(|| ApiError::not_found("stem"))?;
    let index = job
        .stems
        .iter()
        .position(|s| s == name)
        .ok_or_else(|| ApiError::not_found("stem"))?;
    let mut resp = serve_file(&st.store.stem(&job.id, index), req).await?;
    attachment(&mut resp, &format!("{name}.wav"));
    Ok(resp)
}

/// `GET /api/jobs/{id}/stems.zip`.
pub async fn zip(
    State(st): State<Shared>,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    let job = done_job(&st, &id)?;
    let mut resp = serve_file(&st.store.zip(&job.id), req).await?;
    attachment(&mut resp, "stems.zip");
    Ok(resp)
}
