//! The router: the page at `/`, the JSON API under `/api` (behind the token when one is
//! set), limits and timeouts, and JSON errors for everything unknown.

use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use super::error::json_error;
use super::state::Shared;
use super::{api_dicts, api_jobs, page, sse};

/// Longest handling of one request other than the event streams (uploads included).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// The whole application.
pub fn router(st: Shared) -> Router {
    let api = Router::new()
        .route("/health", get(health))
        .route(
            "/dictionaries",
            get(api_dicts::list).post(api_dicts::create),
        )
        .route(
            "/dictionaries/{key}",
            get(api_dicts::get).delete(api_dicts::delete),
        )
        .route("/jobs", get(api_jobs::list).post(api_jobs::create))
        .route("/jobs/{id}", get(api_jobs::get).delete(api_jobs::delete))
        .route("/jobs/{id}/stems/{file}", get(api_jobs::stem))
        .route("/jobs/{id}/stems.zip", get(api_jobs::zip))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        // Event streams last as long as their job: no timeout.
        .route("/jobs/{id}/events", get(sse::events))
        .fallback(api_not_found)
        .layer(middleware::from_fn_with_state(st.clone(), auth));
    Router::new()
        .nest("/api", api)
        .route("/", get(page::index))
        .route("/app.js", get(page::script))
        .route("/style.css", get(page::style))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(st.cfg.max_upload))
        .layer(TraceLayer::new_for_http())
        .with_state(st)
}

/// `GET /api/health`.
async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn api_not_found() -> Response {
    json_error(StatusCode::NOT_FOUND, "no such API route")
}

async fn not_found() -> Response {
    json_error(StatusCode::NOT_FOUND, "not found")
}

/// Compares two byte strings in time independent of where they differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// With a token set, every API call needs `Authorization: Bearer TOKEN`; a GET may give it
/// as the query parameter `access_token` instead (links, players and event streams of the
/// page cannot set headers).
async fn auth(State(st): State<Shared>, req: Request, next: Next) -> Response {
    let Some(token) = st.cfg.token.as_deref() else {
        return next.run(req).await;
    };
    let header_ok = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| same_secret(t.trim().as_bytes(), token.as_bytes()));
    let query_ok = req.method() == Method::GET
        && req.uri().query().is_some_and(|q| {
            q.split('&')
                .filter_map(|kv| kv.strip_prefix("access_token="))
                .any(|t| same_secret(t.as_bytes(), token.as_bytes()))
        });
    if header_ok || query_ok {
        return next.run(req).await;
    }
    let mut resp = json_error(
        StatusCode::UNAUTHORIZED,
        "missing or wrong token: send Authorization: Bearer TOKEN",
    );
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    resp.into_response()
}
