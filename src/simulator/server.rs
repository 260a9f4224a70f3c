//! The simulator's HTTP server (axum): the router over the archive query ([`super::archive`]),
//! the real-API routes ([`super::analytics`]) and dictionary feedback
//! ([`super::dictionary_feedback`]), the middleware that counts requests, injects
//! network faults and stamps the correlation id, and OAuth client credentials.
//!
//! Invariants: every response carries `ININ-Correlation-Id`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::archive::{next_page, query, QUERY_PATH};
use super::dictionary_feedback;
use super::gen::uuid_like;
use super::respond::{json, not_found, oauth_error, unauthorized, CorrelationId};
use super::state::{lock, AppState, FeedbackStore, WINDOW};
use super::{analytics, Counters, SimConfig};

/// Builds the router; `counters` counts what was served.
pub(super) fn router(
    cfg: SimConfig,
    counters: Arc<Counters>,
    feedback: Arc<FeedbackStore>,
) -> Router {
    let state = Arc::new(AppState::new(cfg, counters, feedback));
    let router = Router::new()
        .route("/oauth/token", post(token))
        .route(QUERY_PATH, post(query))
        .route(&format!("{QUERY_PATH}/pages/{{cursor}}"), get(next_page))
        .route("/_sim/health", get(|| async { "ok" }));
    dictionary_feedback::routes(analytics::routes(router))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), correlate))
        .with_state(state)
}

/// Counts the request, injects network faults (slow responses, dropped connections) on API
/// and presigned-link requests, and stamps `ININ-Correlation-Id` on the response.
async fn correlate(State(st): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let c = &st.counters;
    c.requests.fetch_add(1, Ordering::Relaxed);
    let path = req.uri().path().to_string();
    let api = path.starts_with("/api/");
    let presigned = path.starts_with(analytics::PRESIGNED_PREFIX);
    let counter = if path == "/oauth/token" {
        Some(&c.tokens)
    } else if presigned {
        Some(&c.presigned)
    } else if path.starts_with("/api/v2/analytics/") {
        Some(&c.listing)
    } else if path.starts_with(dictionary_feedback::PATH) {
        Some(&c.dictionary_feedback)
    } else if path.starts_with("/api/v2/speechandtextanalytics/") {
        Some(&c.transcript_urls)
    } else if path.ends_with("/recordings") {
        Some(&c.recordings)
    } else {
        None
    };
    if let Some(counter) = counter {
        counter.fetch_add(1, Ordering::Relaxed);
    }
    if api {
        c.api_requests.fetch_add(1, Ordering::Relaxed);
    }
    let (slow, mut drop) = if api || presigned {
        st.network_fault()
    } else {
        (false, false)
    };
    if presigned {
        drop |= st.presigned_fault();
    }
    if slow {
        tokio::time::sleep(Duration::from_millis(st.cfg.faults.slow_ms)).await;
    }
    let id = CorrelationId(uuid_like(rand::random::<u64>()));
    req.extensions_mut().insert(id.clone());
    let mut resp = next.run(req).await;
    match resp.status() {
        StatusCode::TOO_MANY_REQUESTS => {
            c.too_many.fetch_add(1, Ordering::Relaxed);
        }
        StatusCode::UNAUTHORIZED => {
            c.unauthorized.fetch_add(1, Ordering::Relaxed);
        }
        _ => {}
    }
    if let Ok(v) = HeaderValue::from_str(&id.0) {
        resp.headers_mut()
            .insert(HeaderName::from_static("inin-correlation-id"), v);
    }
    if drop {
        return cut_off(resp).await;
    }
    resp
}

/// The response's status and headers, then half its body, then a broken connection.
async fn cut_off(resp: Response) -> Response {
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let half = bytes.slice(..bytes.len() / 2);
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(half),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection dropped (injected fault)",
        )),
    ];
    let mut resp = Response::from_parts(
        parts,
        axum::body::Body::from_stream(futures::stream::iter(chunks)),
    );
    resp.headers_mut()
        .remove(axum::http::header::CONTENT_LENGTH);
    resp
}

async fn token(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let accepted = basic_credentials(&headers).is_some_and(|(id, secret)| {
        !id.is_empty()
            && st.cfg.client_id.as_ref().is_none_or(|want| *want == id)
            && st
                .cfg
                .client_secret
                .as_ref()
                .is_none_or(|want| want.expose() == secret)
    });
    if !accepted {
        if !st.cfg.traffic.oauth_errors {
            return unauthorized();
        }
        // The login service answers in OAuth form (GENESYS.md §3; status and bodies as
        // GForceIndustries/GCCX-Utils printed them from login.mypurecloud.com).
        let known = basic_credentials(&headers).is_some_and(|(id, _)| {
            !id.is_empty() && st.cfg.client_id.as_ref().is_none_or(|want| *want == id)
        });
        let why = if known {
            "authentication failed"
        } else {
            "client not found"
        };
        return oauth_error("invalid_client", why);
    }
    let grant = url::form_urlencoded::parse(&body)
        .any(|(k, v)| k == "grant_type" && v == "client_credentials");
    if !grant {
        return oauth_error(
            "unsupported_grant_type",
            "grant_type must be client_credentials",
        );
    }
    let now = Instant::now();
    let token = format!("{:032x}", rand::random::<u128>());
    let lifetime = match st.cfg.faults.revoke_tokens_after_secs {
        Some(revoke) => revoke.min(st.cfg.token_ttl_secs),
        None => st.cfg.token_ttl_secs,
    };
    {
        let mut tokens = lock(&st.tokens);
        tokens.retain(|_, expiry| *expiry > now);
        // A lifetime past the clock's range (--token-ttl 99999999999999) lasts "forever".
        let far = now
            .checked_add(Duration::from_secs(lifetime))
            .unwrap_or_else(|| {
                now.checked_add(Duration::from_secs(100 * 365 * 86_400))
                    .unwrap_or(now)
            });
        tokens.insert(token.clone(), far);
    }
    st.counters.issue(&token);
    lock(&st.windows).retain(|_, (started, _)| now.duration_since(*started) < WINDOW);
    let body = serde_json::json!({
        "access_token": token,
        "token_type": "bearer",
        "expires_in": st.cfg.token_ttl_secs,
    });
    json(StatusCode::OK, body.to_string().into_bytes())
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, b64) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = String::from_utf8(STANDARD.decode(b64.trim()).ok()?).ok()?;
    let (id, secret) = raw.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::archive::tests::{
        cfg, launch, post_query, range_query, token, token_with_ttl,
    };
    use serde_json::{json, Value};

    #[tokio::test]
    async fn credentials_and_tokens_are_checked() {
        let sim = launch(cfg()).await;
        let http = reqwest::Client::new();
        let health = http
            .get(format!("{}/_sim/health", sim.url))
            .send()
            .await
            .unwrap();
        assert!(health.headers().contains_key("inin-correlation-id"));
        assert_eq!(health.text().await.unwrap(), "ok");
        let url = format!("{}/oauth/token", sim.url);
        for (id, secret) in [("cid", "wrong"), ("other", "csecret"), ("", "csecret")] {
            let resp = http
                .post(&url)
                .basic_auth(id, Some(secret))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 401);
            assert_eq!(
                resp.text().await.unwrap(),
                r#"{"message":"Invalid login credentials.","code":"bad.credentials","status":401}"#
            );
        }
        let no_auth = http
            .post(&url)
            .form(&[("grant_type", "client_credentials")]);
        assert_eq!(no_auth.send().await.unwrap().status(), 401);
        let bad_grant = http
            .post(&url)
            .basic_auth("cid", Some("csecret"))
            .form(&[("grant_type", "password")]);
        assert_eq!(bad_grant.send().await.unwrap().status(), 400);

        let q = range_query(None, 10);
        assert_eq!(
            post_query(&http, &sim, "not-a-token", &q).await.status(),
            401
        );
        let tok = token(&http, &sim).await;
        let resp = post_query(&http, &sim, &tok, &q).await;
        assert_eq!(resp.status(), 200);
        for h in [
            "inin-correlation-id",
            "inin-ratelimit-count",
            "inin-ratelimit-reset",
        ] {
            assert!(resp.headers().contains_key(h), "{h}");
        }
        assert!(sim.requests() >= 8);
        sim.shutdown().await;

        let mut short = cfg();
        short.token_ttl_secs = 1;
        let sim = launch(short).await;
        let tok = token_with_ttl(&http, &sim, 1).await;
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(post_query(&http, &sim, &tok, &q).await.status(), 401);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn login_errors_come_in_oauth_form() {
        let mut c = cfg();
        c.traffic.oauth_errors = true;
        let sim = launch(c).await;
        let http = reqwest::Client::new();
        let url = format!("{}/oauth/token", sim.url);
        let post = |id: &str, secret: &str, grant: &str| {
            http.post(&url)
                .basic_auth(id, Some(secret))
                .form(&[("grant_type", grant)])
                .send()
        };
        for (id, secret, grant, error, why) in [
            (
                "cid",
                "wrong",
                "client_credentials",
                "invalid_client",
                "authentication failed",
            ),
            (
                "other",
                "csecret",
                "client_credentials",
                "invalid_client",
                "client not found",
            ),
            (
                "cid",
                "csecret",
                "password",
                "unsupported_grant_type",
                "grant_type must be client_credentials",
            ),
        ] {
            let resp = post(id, secret, grant).await.unwrap();
            assert_eq!(resp.status(), 400, "{id} {secret} {grant}");
            let body: Value = resp.json().await.unwrap();
            assert_eq!(
                body,
                json!({"error": error, "description": why, "error_description": why})
            );
        }
        let ok = post("cid", "csecret", "client_credentials").await.unwrap();
        assert_eq!(ok.status(), 200);
        // A bad bearer token on the API is still the API's 401 bad.credentials.
        let q = range_query(None, 10);
        let resp = post_query(&http, &sim, "not-a-token", &q).await;
        assert_eq!(resp.status(), 401);
        assert_eq!(
            resp.json::<Value>().await.unwrap()["code"],
            "bad.credentials"
        );
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn faults_and_rate_limits() {
        let http = reqwest::Client::new();
        let q = range_query(None, 5);
        let mut c = cfg();
        c.faults.rate_429 = 1.0;
        let sim = launch(c).await;
        let tok = token(&http, &sim).await;
        let resp = post_query(&http, &sim, &tok, &q).await;
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers()["retry-after"], "1");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["code"], "too.many.requests.retry.after");
        assert_eq!(body["details"], json!([]));
        sim.shutdown().await;

        let mut c = cfg();
        c.faults.rate_500 = 1.0;
        let sim = launch(c).await;
        let tok = token(&http, &sim).await;
        assert_eq!(post_query(&http, &sim, &tok, &q).await.status(), 503);
        sim.shutdown().await;

        let mut c = cfg();
        c.faults.malformed_page = Some(1);
        c.rate_limit_per_minute = Some(3);
        let sim = launch(c).await;
        let tok = token(&http, &sim).await;
        let resp = post_query(&http, &sim, &tok, &q).await;
        assert_eq!(resp.headers()["inin-ratelimit-allowed"], "3");
        let first: Value = resp.json().await.unwrap();
        let next = format!("{}{}", sim.url, first["nextPageUri"].as_str().unwrap());
        let resp = http.get(&next).bearer_auth(&tok).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert!(serde_json::from_slice::<Value>(&resp.bytes().await.unwrap()).is_err());
        assert_eq!(post_query(&http, &sim, &tok, &q).await.status(), 200);
        let limited = post_query(&http, &sim, &tok, &q).await;
        assert_eq!(limited.status(), 429);
        let retry: u64 = limited.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry));
        sim.shutdown().await;
    }
}
