//! `GET /api/jobs/{id}/events`: server-sent events of one job. Each event is named `job`
//! and carries the job's row as JSON (as `GET /api/jobs/{id}`): first the current one, then
//! one per change; the stream ends after the job's final state.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use tokio::sync::broadcast::error::RecvError;

use super::api_jobs::find;
use super::db::JobRow;
use super::error::ApiResult;
use super::state::Shared;

fn event(row: &JobRow) -> Event {
    Event::default()
        .event("job")
        .json_data(row)
        .unwrap_or_else(|_| Event::default().event("job"))
}

/// The event stream of job `id`.
pub async fn events(
    State(st): State<Shared>,
    Path(id): Path<String>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    // Subscribe before reading the row, so no change falls between the two.
    let rx = st.jobs.subscribe();
    let first = find(&st, &id)?;
    let id = first.id.clone();
    let init = (Some(first), rx, false, st);
    let s = stream::unfold(init, move |(pending, mut rx, ended, st)| {
        let id = id.clone();
        async move {
            if ended {
                return None;
            }
            if let Some(row) = pending {
                let fin = row.state.is_final();
                return Some((Ok(event(&row)), (None, rx, fin, st)));
            }
            loop {
                match rx.recv().await {
                    Ok(row) if row.id == id => {
                        let fin = row.state.is_final();
                        return Some((Ok(event(&row)), (None, rx, fin, st)));
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => {
                        // Missed changes: send the row as it is now.
                        let row = st.db.job(&id).ok().flatten()?;
                        let fin = row.state.is_final();
                        return Some((Ok(event(&row)), (None, rx, fin, st)));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        }
    });
    Ok(Sse::new(s).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
