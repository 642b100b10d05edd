//! `/api/dictionaries`: learn a dictionary from a clip, list, get (JSON or `.npz`), delete.

use axum::extract::{Multipart, Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::db::{now, DictionaryRow};
use super::error::{ApiError, ApiResult};
use super::learn::{learn, LearnRequest, Learned};
use super::state::Shared;
use super::store::{is_id, new_id};
use super::upload::{check_audio, check_name, read_form};
use crate::nmf::Dictionary;

/// `POST /api/dictionaries` (multipart `name`, `clip`, optional `components`, `beta`,
/// `n_fft`): 201 with the dictionary once learned.
pub async fn create(State(st): State<Shared>, mp: Multipart) -> ApiResult<Response> {
    let mut form = read_form(&st.store, mp, &["clip"]).await?;
    let name = form
        .one("name")?
        .ok_or_else(|| ApiError::bad_request("the field \"name\" is missing"))?
        .to_string();
    check_name(&name, "dictionary")?;
    let req = LearnRequest {
        components: form.one("components")?.map(str::to_string),
        beta: form.one("beta")?.map(str::to_string),
        n_fft: form.one("n_fft")?.map(str::to_string),
    };
    let clip = form
        .files
        .remove("clip")
        .ok_or_else(|| ApiError::bad_request("the file \"clip\" is missing"))?;
    let info = check_audio(&clip, "clip").await?;
    let id = new_id();
    let dest = st.store.dictionary(&id);
    let _slot = st
        .learn_slots
        .acquire()
        .await
        .map_err(|e| ApiError::from(anyhow::anyhow!("{e}")))?;
    let t0 = std::time::Instant::now();
    match learn(&st.exe, clip.path(), &dest, &name, &req).await? {
        Learned::Ok => {}
        Learned::Refused(msg) => {
            let known = [
                (clip.path(), "the clip"),
                (dest.as_path(), "the dictionary"),
            ];
            return Err(ApiError::bad_request(st.store.redact(&msg, &known)));
        }
    }
    drop(clip);
    let loaded = {
        let dest = dest.clone();
        tokio::task::spawn_blocking(move || Dictionary::load(&dest))
            .await
            .map_err(|e| ApiError::from(anyhow::anyhow!("{e}")))?
    };
    let d = match loaded {
        Ok(d) => d,
        Err(e) => {
            let _ = std::fs::remove_file(&dest);
            return Err(ApiError::from(anyhow::anyhow!("{e}")));
        }
    };
    let row = DictionaryRow {
        id,
        name,
        components: d.n_components(),
        beta: d.beta,
        n_fft: d.n_fft,
        hop: d.hop,
        sample_rate: d.sample_rate,
        clip_seconds: info.seconds,
        created: now(),
    };
    if let Err(e) = st.db.insert_dictionary(&row) {
        let _ = std::fs::remove_file(&dest);
        return Err(e.into());
    }
    tracing::info!(dictionary = %row.id, name = %row.name, k = row.components,
        seconds = t0.elapsed().as_secs_f64(), "dictionary learned");
    Ok((StatusCode::CREATED, Json(row)).into_response())
}

/// `GET /api/dictionaries`.
pub async fn list(State(st): State<Shared>) -> ApiResult<Json<Vec<DictionaryRow>>> {
    Ok(Json(st.db.dictionaries()?))
}

fn find(st: &Shared, id: &str) -> ApiResult<DictionaryRow> {
    if !is_id(id) {
        return Err(ApiError::not_found("dictionary"));
    }
    st.db
        .dictionary(id)?
        .ok_or_else(|| ApiError::not_found("dictionary"))
}

/// `GET /api/dictionaries/{id}` (JSON) or `GET /api/dictionaries/{id}.npz` (the file).
pub async fn get(
    State(st): State<Shared>,
    Path(key): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    if let Some(id) = key.strip_suffix(".npz") {
        let row = find(&st, id)?;
        let file = st.store.dictionary(&row.id);
        let mut resp = super::files::serve_file(&file, req).await?;
        super::files::attachment(&mut resp, &format!("{}.npz", row.name));
        return Ok(resp);
    }
    Ok(Json(find(&st, &key)?).into_response())
}

/// `DELETE /api/dictionaries/{id}`: 204; 409 while a queued or running job uses it.
pub async fn delete(State(st): State<Shared>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let row = find(&st, &id)?;
    if st.db.dictionary_in_use(&row.id)? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "a queued or running job uses this dictionary; cancel it first",
        ));
    }
    st.db.delete_dictionary(&row.id)?;
    let _ = std::fs::remove_file(st.store.dictionary(&row.id));
    tracing::info!(dictionary = %row.id, "dictionary deleted");
    Ok(StatusCode::NO_CONTENT)
}
