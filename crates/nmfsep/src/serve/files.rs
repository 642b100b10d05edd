//! Sending stored files: tower-http's `ServeFile` (Range requests, so players can seek;
//! conditional requests) and the download name.

use std::path::Path;

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{HeaderValue, CONTENT_DISPOSITION};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;
use tower_http::services::ServeFile;

use super::error::{ApiError, ApiResult};

/// Answers `req` with the file at `path` (a server-made path).
///
/// # Errors
/// 404 if the file is missing.
pub async fn serve_file(path: &Path, req: Request) -> ApiResult<Response> {
    if !path.is_file() {
        return Err(ApiError::not_found("file"));
    }
    let resp = ServeFile::new(path)
        .oneshot(req)
        .await
        .map_err(|e| ApiError::from(anyhow::anyhow!("cannot send a file: {e}")))?;
    Ok(resp.map(Body::new).into_response())
}

/// Percent-encodes `s` for an RFC 8187 header parameter (`filename*=UTF-8''...`).
fn rfc8187(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Sets the download name of `resp` to `name` (shown inline, saved as `name`).
pub fn attachment(resp: &mut Response, name: &str) {
    if let Ok(v) = HeaderValue::from_str(&format!("inline; filename*=UTF-8''{}", rfc8187(name))) {
        resp.headers_mut().insert(CONTENT_DISPOSITION, v);
    }
}
