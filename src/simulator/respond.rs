//! The response helpers both route sets (the archive query and the real API) use: the request's
//! correlation id, JSON bodies, Genesys-shaped error bodies (GENESYS.md §5: 401, the normalised
//! 429 with `Retry-After`, the OAuth login errors, the 403 of a missing permission, the 404 of
//! an unknown path) and the
//! `inin-ratelimit-*` headers every successful API response carries.

use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Clone)]
pub(super) struct CorrelationId(pub(super) String);

/// The values of the `inin-ratelimit-*` headers.
pub(super) struct RateInfo {
    pub(super) count: u32,
    pub(super) allowed: u64,
    pub(super) reset: u64,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    message: String,
    code: &'a str,
    status: u16,
    #[serde(rename = "contextId", skip_serializing_if = "Option::is_none")]
    context_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<[(); 0]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<[(); 0]>,
}

/// Adds the `inin-ratelimit-*` headers to a successful API response.
pub(super) fn with_rate(mut resp: Response, rate: &RateInfo) -> Response {
    let h = resp.headers_mut();
    h.insert("inin-ratelimit-count", HeaderValue::from(rate.count));
    h.insert("inin-ratelimit-allowed", HeaderValue::from(rate.allowed));
    h.insert("inin-ratelimit-reset", HeaderValue::from(rate.reset));
    resp
}

pub(super) fn iso(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Serialises one of this module's plain structs (strings, integers, options, vectors), which
/// cannot fail, so the empty fallback is unreachable.
pub(super) fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

pub(super) fn json(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response()
}

pub(super) fn error(
    status: StatusCode,
    code: &str,
    message: String,
    corr: &CorrelationId,
) -> Response {
    let body = ErrorBody {
        message,
        code,
        status: status.as_u16(),
        context_id: Some(&corr.0),
        details: None,
        errors: None,
    };
    json(status, to_json(&body))
}

pub(super) fn bad_request(message: String, corr: &CorrelationId) -> Response {
    error(StatusCode::BAD_REQUEST, "bad.request", message, corr)
}

/// A login error in OAuth form: 400 `{error, description, error_description}`.
pub(super) fn oauth_error(error: &str, description: &str) -> Response {
    let body = serde_json::json!({
        "error": error,
        "description": description,
        "error_description": description,
    });
    json(StatusCode::BAD_REQUEST, body.to_string().into_bytes())
}

/// The body observed from Genesys for bad credentials and expired tokens (GENESYS.md §5).
pub(super) fn unauthorized() -> Response {
    let body = ErrorBody {
        message: "Invalid login credentials.".into(),
        code: "bad.credentials",
        status: 401,
        context_id: None,
        details: None,
        errors: None,
    };
    json(StatusCode::UNAUTHORIZED, to_json(&body))
}

/// The normalised 429 (GENESYS.md §5) with `Retry-After`.
pub(super) fn too_many(retry_after: u64, corr: &CorrelationId) -> Response {
    let body = ErrorBody {
        message: format!(
            "Rate limit exceeded the maximum. Retry the request in [{retry_after}] seconds"
        ),
        code: "too.many.requests.retry.after",
        status: 429,
        context_id: Some(&corr.0),
        details: Some([]),
        errors: Some([]),
    };
    let mut resp = json(StatusCode::TOO_MANY_REQUESTS, to_json(&body));
    resp.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(retry_after));
    resp
}

/// The missing-permission 403 of the platform API (code `missing.permissions`, as Genesys
/// answers an operation that needs ALL of its permissions; gildas/go-gcloudcx `errors.go`).
pub(super) fn missing_permission(permission: &str, corr: &CorrelationId) -> Response {
    let message = format!(
        "Unable to perform the requested action. You are missing the following permission(s): [{permission}]"
    );
    let body = serde_json::json!({
        "message": message,
        "code": "missing.permissions",
        "status": 403,
        "messageWithParams": "Unable to perform the requested action. You are missing the following permission(s): {permissions}",
        "messageParams": {"permissions": format!("[{permission}]")},
        "contextId": corr.0,
        "details": [],
        "errors": [],
    });
    json(StatusCode::FORBIDDEN, to_json(&body))
}

pub(super) async fn not_found(Extension(corr): Extension<CorrelationId>) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not.found",
        "no such resource".into(),
        &corr,
    )
}
