//! API errors: a status and a JSON body `{"error": "..."}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error answered to a client.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Human-readable message.
    pub message: String,
}

impl ApiError {
    /// 400.
    pub fn bad_request(m: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: m.into(),
        }
    }
    /// 401.
    pub fn unauthorized(m: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            message: m.into(),
        }
    }
    /// 403.
    pub fn forbidden(m: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::FORBIDDEN,
            message: m.into(),
        }
    }
    /// 404.
    pub fn not_found(m: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: m.into(),
        }
    }
    /// 429.
    pub fn too_many_requests(m: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: m.into(),
        }
    }
    /// 503.
    pub fn unavailable(m: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: m.into(),
        }
    }
    /// 500: only for faults of slaflow itself, never for client input.
    pub fn internal(m: impl std::fmt::Display) -> Self {
        tracing::error!(error = %m, "internal error answering a request");
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "internal error".into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response()
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(e: axum::extract::rejection::QueryRejection) -> Self {
        ApiError::bad_request(e.body_text())
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(e: axum::extract::rejection::JsonRejection) -> Self {
        // A body over the limit is 413, one that stalled 408; any other
        // unreadable body is a bad request.
        let status = match e.status() {
            StatusCode::PAYLOAD_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
            _ if body_stalled(&e) => StatusCode::REQUEST_TIMEOUT,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError {
            status,
            message: e.body_text(),
        }
    }
}

impl From<axum::extract::rejection::BytesRejection> for ApiError {
    fn from(e: axum::extract::rejection::BytesRejection) -> Self {
        let status = if body_stalled(&e) {
            StatusCode::REQUEST_TIMEOUT
        } else {
            e.status()
        };
        ApiError {
            status,
            message: e.body_text(),
        }
    }
}

/// Whether reading the body failed because the client stopped sending it
/// (`RequestBodyTimeoutLayer`) or sent it too slowly ([`super::deadline::BodyDeadline`]):
/// the client's fault, so 408, not a 5xx.
fn body_stalled(e: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(e), |e| e.source()).any(|e| {
        e.is::<tower_http::timeout::TimeoutError>() || e.is::<super::deadline::BodyDeadline>()
    })
}

/// Turns every error answer that is not JSON yet (a 413 from the body limit, a
/// timeout, a 405) into `{"error": "..."}` with the same status.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let message = status.canonical_reason().unwrap_or("error");
    let mut json = (status, Json(serde_json::json!({ "error": message }))).into_response();
    for (name, value) in response.headers() {
        // Keep e.g. `Allow` on a 405; the body's own headers are replaced.
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            json.headers_mut().insert(name.clone(), value.clone());
        }
    }
    json
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(e: axum::extract::rejection::PathRejection) -> Self {
        ApiError::bad_request(e.body_text())
    }
}

impl From<crate::ingest::IntakeError> for ApiError {
    /// Events not handed on: 503, so the sender retries.
    fn from(e: crate::ingest::IntakeError) -> Self {
        ApiError::unavailable(e.to_string())
    }
}
