//! The simulator's HTTP routes (axum): OAuth client credentials, the archive query with stateless
//! page cursors, per-token rate limits and fault injection.
//!
//! Invariants: every response carries `ININ-Correlation-Id`; successful API responses carry the
//! `inin-ratelimit-*` headers; a page is a pure function of its cursor and the configuration, so
//! the same query returns the same bytes, before and after a restart.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::gen::{uuid_like, Generator, Media, Rng};
use super::{analytics, Counters, SimConfig};

const QUERY_PATH: &str = "/api/v2/archiving/conversations/query";
const STREAM_FAULT: u64 = 0xfa17;
const STREAM_NETWORK: u64 = 0xd809;
const STREAM_PRESIGNED: u64 = 0x5195;
const SELECTABLE: [&str; 4] = ["id", "date", "type", "interactions"];
const WINDOW: Duration = Duration::from_secs(60);

pub(super) struct AppState {
    pub(super) cfg: SimConfig,
    pub(super) gen: Generator,
    /// Issued access tokens and when they stop working.
    tokens: Mutex<HashMap<String, Instant>>,
    /// Per-token rate-limit window: (window start, requests in it).
    windows: Mutex<HashMap<String, (Instant, u32)>>,
    /// Per-token window of the transcript-link endpoints (`Traffic::transcript_url_rate_limit`).
    transcript_windows: Mutex<HashMap<String, (Instant, u32)>>,
    pub(super) counters: Arc<Counters>,
    api_calls: AtomicU64,
    network_calls: AtomicU64,
    presigned_calls: AtomicU64,
    /// Details jobs, transcript links and recordings readiness.
    pub(super) analytics: analytics::AnalyticsState,
}

#[derive(Clone)]
pub(super) struct CorrelationId(pub(super) String);

/// The values of the `inin-ratelimit-*` headers.
pub(super) struct RateInfo {
    count: u32,
    allowed: u64,
    reset: u64,
}

/// Where a query continues: the query itself plus the next conversation index and page number.
#[derive(Clone, Serialize, Deserialize)]
struct Cursor {
    select: Vec<String>,
    types: Vec<String>,
    start_ms: i64,
    end_ms: i64,
    size: usize,
    next: usize,
    page: usize,
}

#[derive(Deserialize)]
struct QueryRequest {
    #[serde(default)]
    select: Vec<String>,
    #[serde(rename = "where")]
    filter: Option<String>,
    #[serde(rename = "timeRange")]
    time_range: TimeRange,
    size: Option<i64>,
}

#[derive(Deserialize)]
struct TimeRange {
    start: String,
    end: String,
}

#[derive(Serialize)]
struct PageBody {
    entities: Vec<Entity>,
    #[serde(rename = "nextPageUri")]
    next_page_uri: Option<String>,
}

#[derive(Serialize)]
struct Entity {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    date: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    interactions: Option<Vec<InteractionBody>>,
}

#[derive(Serialize)]
struct InteractionBody {
    participant: &'static str,
    timestamp: String,
    transcript: String,
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

/// Builds the router; `counters` counts what was served.
pub(super) fn router(cfg: SimConfig, counters: Arc<Counters>) -> Router {
    let state = Arc::new(AppState {
        gen: Generator::new(&cfg),
        analytics: analytics::AnalyticsState::new(&cfg),
        cfg,
        tokens: Mutex::new(HashMap::new()),
        windows: Mutex::new(HashMap::new()),
        transcript_windows: Mutex::new(HashMap::new()),
        counters,
        api_calls: AtomicU64::new(0),
        network_calls: AtomicU64::new(0),
        presigned_calls: AtomicU64::new(0),
    });
    let router = Router::new()
        .route("/oauth/token", post(token))
        .route(QUERY_PATH, post(query))
        .route(&format!("{QUERY_PATH}/pages/{{cursor}}"), get(next_page))
        .route("/_sim/health", get(|| async { "ok" }));
    analytics::routes(router)
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

async fn query(
    State(st): State<Arc<AppState>>,
    Extension(corr): Extension<CorrelationId>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let rate = match st.admit(&headers, &corr) {
        Ok(rate) => rate,
        Err(resp) => return *resp,
    };
    match parse_query(&body) {
        Ok(cursor) => st.page(&cursor, &rate, &corr),
        Err(msg) => bad_request(msg, &corr),
    }
}

async fn next_page(
    State(st): State<Arc<AppState>>,
    Extension(corr): Extension<CorrelationId>,
    Path(cursor): Path<String>,
    headers: HeaderMap,
) -> Response {
    let rate = match st.admit(&headers, &corr) {
        Ok(rate) => rate,
        Err(resp) => return *resp,
    };
    let decoded = URL_SAFE_NO_PAD
        .decode(cursor.as_bytes())
        .ok()
        .and_then(|raw| serde_json::from_slice::<Cursor>(&raw).ok());
    match decoded {
        Some(c) if (1..=1000).contains(&c.size) => st.page(&c, &rate, &corr),
        _ => bad_request("invalid page cursor: start the query again".into(), &corr),
    }
}

async fn not_found(Extension(corr): Extension<CorrelationId>) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not.found",
        "no such resource".into(),
        &corr,
    )
}

impl AppState {
    /// (slow, dropped) for one request: deterministic given the seed and the request count.
    fn network_fault(&self) -> (bool, bool) {
        let f = &self.cfg.faults;
        if f.slow_rate <= 0.0 && f.drop_rate <= 0.0 {
            return (false, false);
        }
        let n = self.network_calls.fetch_add(1, Ordering::Relaxed);
        let mut rng = Rng::stream(self.cfg.seed, n, STREAM_NETWORK);
        (rng.unit() < f.slow_rate, rng.unit() < f.drop_rate)
    }

    /// Whether this presigned-link GET breaks off: deterministic given the seed and the number
    /// of presigned GETs so far.
    fn presigned_fault(&self) -> bool {
        let rate = self.cfg.faults.presigned_drop_rate;
        if rate <= 0.0 {
            return false;
        }
        let n = self.presigned_calls.fetch_add(1, Ordering::Relaxed);
        Rng::stream(self.cfg.seed, n, STREAM_PRESIGNED).unit() < rate
    }

    /// Fault injection, then bearer authentication, then the rate limit.
    pub(super) fn admit(
        &self,
        headers: &HeaderMap,
        corr: &CorrelationId,
    ) -> Result<RateInfo, Box<Response>> {
        if let Some(resp) = self.fault(corr) {
            return Err(Box::new(resp));
        }
        let token = bearer(headers).ok_or_else(|| Box::new(unauthorized()))?;
        let valid = lock(&self.tokens)
            .get(&token)
            .is_some_and(|expiry| *expiry > Instant::now());
        if !valid {
            return Err(Box::new(unauthorized()));
        }
        self.rate(&token)
            .map_err(|retry| Box::new(too_many(retry, corr)))
    }

    /// [`AppState::admit`], then the transcript-link endpoints' own per-token limit.
    pub(super) fn admit_transcript(
        &self,
        headers: &HeaderMap,
        corr: &CorrelationId,
    ) -> Result<RateInfo, Box<Response>> {
        let rate = self.admit(headers, corr)?;
        let Some(limit) = self.cfg.traffic.transcript_url_rate_limit else {
            return Ok(rate);
        };
        let token = bearer(headers).unwrap_or_default();
        let now = Instant::now();
        let mut windows = lock(&self.transcript_windows);
        let w = windows.entry(token).or_insert((now, 0));
        if now.duration_since(w.0) >= WINDOW {
            *w = (now, 0);
        }
        w.1 = w.1.saturating_add(1);
        if w.1 > limit {
            let left = WINDOW.saturating_sub(now.duration_since(w.0));
            let retry = (left.as_secs() + u64::from(left.subsec_nanos() > 0)).max(1);
            return Err(Box::new(too_many(retry, corr)));
        }
        Ok(rate)
    }

    /// Deterministic given the seed and the number of API calls so far.
    fn fault(&self, corr: &CorrelationId) -> Option<Response> {
        let f = &self.cfg.faults;
        if f.rate_429 <= 0.0 && f.rate_500 <= 0.0 {
            return None;
        }
        let n = self.api_calls.fetch_add(1, Ordering::Relaxed);
        let u = Rng::stream(self.cfg.seed, n, STREAM_FAULT).unit();
        if u < f.rate_429 {
            Some(too_many(1, corr))
        } else if u < f.rate_429 + f.rate_500 {
            let msg = "The service is currently unavailable (injected fault)".to_string();
            Some(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "service.unavailable",
                msg,
                corr,
            ))
        } else {
            None
        }
    }

    /// Counts the request in the token's 60 s window; `Err(seconds)` when over the budget.
    fn rate(&self, token: &str) -> Result<RateInfo, u64> {
        let now = Instant::now();
        let mut windows = lock(&self.windows);
        let w = windows.entry(token.to_string()).or_insert((now, 0));
        if now.duration_since(w.0) >= WINDOW {
            *w = (now, 0);
        }
        w.1 = w.1.saturating_add(1);
        let left = WINDOW.saturating_sub(now.duration_since(w.0));
        let reset = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        match self.cfg.rate_limit_per_minute {
            Some(limit) if w.1 > limit => Err(reset.max(1)),
            limit => Ok(RateInfo {
                count: w.1,
                allowed: limit.map_or(u64::from(u32::MAX), u64::from),
                reset,
            }),
        }
    }

    fn page(&self, c: &Cursor, rate: &RateInfo, corr: &CorrelationId) -> Response {
        let (Some(from), Some(to)) = (
            DateTime::from_timestamp_millis(c.start_ms),
            DateTime::from_timestamp_millis(c.end_ms),
        ) else {
            return bad_request("timeRange is out of range".into(), corr);
        };
        let wanted = |m: Media| c.types.is_empty() || c.types.iter().any(|t| t == m.as_str());
        let has = |f: &str| c.select.is_empty() || c.select.iter().any(|s| s == f);
        let range = self.gen.index_range(from, to);
        let mut i = c.next.max(range.start);
        let mut entities = Vec::new();
        while i < range.end && entities.len() < c.size {
            if wanted(self.gen.media(i)) {
                let conv = self.gen.conversation(i);
                entities.push(Entity {
                    id: has("id").then_some(conv.id),
                    date: has("date").then(|| iso(conv.start)),
                    kind: has("type").then_some(conv.media.as_str()),
                    // A call that was never transcribed has no text in an archive either.
                    interactions: has("interactions").then(|| {
                        let text = if self.gen.has_text(i) {
                            conv.interactions
                        } else {
                            Vec::new()
                        };
                        text.into_iter()
                            .map(|it| InteractionBody {
                                participant: it.participant,
                                timestamp: iso(it.timestamp),
                                transcript: it.transcript,
                            })
                            .collect()
                    }),
                });
            }
            i += 1;
        }
        // Skip ahead so the last page is never an empty one.
        while i < range.end && !wanted(self.gen.media(i)) {
            i += 1;
        }
        let next_page_uri = (i < range.end).then(|| {
            let next = Cursor {
                next: i,
                page: c.page + 1,
                ..c.clone()
            };
            format!("{QUERY_PATH}/pages/{}", next.encode())
        });
        let mut body = to_json(&PageBody {
            entities,
            next_page_uri,
        });
        if self.cfg.faults.malformed_page == Some(c.page) {
            body.truncate(body.len() / 2);
        }
        with_rate(json(StatusCode::OK, body), rate)
    }
}

/// Adds the `inin-ratelimit-*` headers to a successful API response.
pub(super) fn with_rate(mut resp: Response, rate: &RateInfo) -> Response {
    let h = resp.headers_mut();
    h.insert("inin-ratelimit-count", HeaderValue::from(rate.count));
    h.insert("inin-ratelimit-allowed", HeaderValue::from(rate.allowed));
    h.insert("inin-ratelimit-reset", HeaderValue::from(rate.reset));
    resp
}

impl Cursor {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(to_json(self))
    }
}

/// Validates a query body and turns it into the cursor of its first page.
fn parse_query(body: &[u8]) -> Result<Cursor, String> {
    let q: QueryRequest =
        serde_json::from_slice(body).map_err(|e| format!("invalid query body: {e}"))?;
    if let Some(bad) = q.select.iter().find(|s| !SELECTABLE.contains(&s.as_str())) {
        return Err(format!(
            "unknown field {bad:?} in select; use {SELECTABLE:?}"
        ));
    }
    let size = q.size.unwrap_or(100);
    if !(1..=1000).contains(&size) {
        return Err(format!("size must be between 1 and 1000, got {size}"));
    }
    let time = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| format!("timeRange: {s:?} is not ISO-8601 with an offset: {e}"))
    };
    let (start, end) = (time(&q.time_range.start)?, time(&q.time_range.end)?);
    if end < start {
        return Err("timeRange.end is before timeRange.start".into());
    }
    let types = match q.filter.as_deref().map(str::trim) {
        None | Some("") => Vec::new(),
        Some(w) => parse_where(w)?
            .iter()
            .map(|m| m.as_str().to_string())
            .collect(),
    };
    Ok(Cursor {
        select: q.select,
        types,
        start_ms: start.timestamp_millis(),
        end_ms: end.timestamp_millis(),
        size: size as usize,
        next: 0,
        page: 0,
    })
}

#[derive(Debug, PartialEq)]
enum Lexeme {
    Word(String),
    Str(String),
    Sym(char),
}

/// Parses `type = 'x'` or `type IN ('a', 'b')` (keywords case-insensitive).
fn parse_where(w: &str) -> Result<Vec<Media>, String> {
    use Lexeme::{Str, Sym, Word};
    let unsupported = || {
        format!("unsupported where clause {w:?}: use type = 'voice' or type IN ('chat', 'email')")
    };
    let mut lex = Vec::new();
    let mut chars = w.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '=' | '(' | ')' | ',' => lex.push(Sym(c)),
            '\'' => {
                let s: String = chars.by_ref().take_while(|&c| c != '\'').collect();
                lex.push(Str(s));
            }
            c if c.is_alphabetic() => {
                let mut s = c.to_string();
                while let Some(c) = chars.next_if(|c| c.is_alphanumeric() || *c == '_') {
                    s.push(c);
                }
                lex.push(Word(s.to_ascii_lowercase()));
            }
            _ => return Err(unsupported()),
        }
    }
    if w.matches('\'').count() % 2 == 1 {
        return Err(unsupported());
    }
    let values: Vec<&String> = match lex.as_slice() {
        [Word(t), Sym('='), Str(v)] if t == "type" => vec![v],
        [Word(t), Word(kw), Sym('('), list @ .., Sym(')')] if t == "type" && kw == "in" => {
            let mut values = Vec::new();
            for (k, item) in list.iter().enumerate() {
                match (k % 2, item) {
                    (0, Str(v)) => values.push(v),
                    (1, Sym(',')) => {}
                    _ => return Err(unsupported()),
                }
            }
            if values.is_empty() || list.len() % 2 == 0 {
                return Err(unsupported());
            }
            values
        }
        _ => return Err(unsupported()),
    };
    values
        .into_iter()
        .map(|v| {
            Media::parse(v).ok_or_else(|| {
                format!("unknown interaction type {v:?}: use voice, chat, email or message")
            })
        })
        .collect()
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

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

pub(super) fn iso(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Serialises one of this module's plain structs (strings, integers, options, vectors), which
/// cannot fail, so the empty fallback is unreachable.
pub(super) fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave a map of tokens or counters inconsistent.
    m.lock().unwrap_or_else(PoisonError::into_inner)
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
fn oauth_error(error: &str, description: &str) -> Response {
    let body = serde_json::json!({
        "error": error,
        "description": description,
        "error_description": description,
    });
    json(StatusCode::BAD_REQUEST, body.to_string().into_bytes())
}

/// The body observed from Genesys for bad credentials and expired tokens (GENESYS.md §5).
fn unauthorized() -> Response {
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
fn too_many(retry_after: u64, corr: &CorrelationId) -> Response {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use crate::simulator::{start, RunningSimulator, SimProduct};
    use chrono::NaiveDate;
    use serde_json::{json, Value};

    fn cfg() -> SimConfig {
        let mut cfg = SimConfig::new(vec![
            SimProduct {
                name: "Acme Router".into(),
                aliases: vec!["acme wifi router".into()],
            },
            SimProduct {
                name: "CloudPhone Pro".into(),
                aliases: vec![],
            },
        ]);
        cfg.conversations = 300;
        cfg.start = NaiveDate::from_ymd_opt(2024, 3, 1).unwrap();
        cfg.client_id = Some("cid".into());
        cfg.client_secret = Some(Secret::new("csecret"));
        cfg
    }

    async fn launch(cfg: SimConfig) -> RunningSimulator {
        start(cfg, "127.0.0.1:0".parse().unwrap()).await.unwrap()
    }

    async fn token(http: &reqwest::Client, sim: &RunningSimulator) -> String {
        token_with_ttl(http, sim, 86_400).await
    }

    async fn token_with_ttl(http: &reqwest::Client, sim: &RunningSimulator, ttl: u64) -> String {
        let resp = http
            .post(format!("{}/oauth/token", sim.url))
            .basic_auth("cid", Some("csecret"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["token_type"], "bearer");
        assert_eq!(body["expires_in"], ttl);
        body["access_token"].as_str().unwrap().to_string()
    }

    fn range_query(filter: Option<&str>, size: i64) -> Value {
        let mut q = json!({
            "select": ["date", "id", "type", "interactions"],
            "timeRange": {"start": "2024-03-03T00:00:00Z", "end": "2024-03-10T00:00:00.000Z"},
            "size": size,
        });
        if let Some(f) = filter {
            q["where"] = json!(f);
        }
        q
    }

    async fn post_query(
        http: &reqwest::Client,
        sim: &RunningSimulator,
        tok: &str,
        q: &Value,
    ) -> reqwest::Response {
        http.post(format!("{}{QUERY_PATH}", sim.url))
            .bearer_auth(tok)
            .json(q)
            .send()
            .await
            .unwrap()
    }

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
    async fn paging_returns_each_conversation_once_and_is_deterministic() {
        let cfg = cfg();
        let gen = Generator::new(&cfg);
        let sim = launch(cfg).await;
        let http = reqwest::Client::new();
        let tok = token(&http, &sim).await;
        let q = range_query(Some("type IN ('voice', 'chat')"), 7);
        let first = post_query(&http, &sim, &tok, &q)
            .await
            .bytes()
            .await
            .unwrap();
        assert_eq!(
            first,
            post_query(&http, &sim, &tok, &q)
                .await
                .bytes()
                .await
                .unwrap()
        );

        let (from, to) = (
            "2024-03-03T00:00:00Z".parse().unwrap(),
            "2024-03-10T00:00:00Z".parse().unwrap(),
        );
        let expected: Vec<String> = gen
            .index_range(from, to)
            .filter(|&i| matches!(gen.media(i), Media::Voice | Media::Chat))
            .map(|i| gen.conversation(i).id)
            .collect();
        let mut seen = Vec::new();
        let mut body: Value = serde_json::from_slice(&first).unwrap();
        let mut pages = 1;
        loop {
            for e in body["entities"].as_array().unwrap() {
                assert!(matches!(e["type"].as_str(), Some("voice" | "chat")));
                let date = e["date"].as_str().unwrap();
                assert!(
                    date.ends_with('Z')
                        && date.len() == 24
                        && ("2024-03-03".."2024-03-10").contains(&date)
                );
                assert!(!e["interactions"].as_array().unwrap().is_empty());
                seen.push(e["id"].as_str().unwrap().to_string());
            }
            let Some(next) = body["nextPageUri"].as_str() else {
                break;
            };
            let url = format!("{}{next}", sim.url);
            let page = http
                .get(&url)
                .bearer_auth(&tok)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            let again = http
                .get(&url)
                .bearer_auth(&tok)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            assert_eq!(page, again);
            body = serde_json::from_slice(&page).unwrap();
            pages += 1;
        }
        assert!(expected.len() > 30);
        assert_eq!(seen, expected);
        assert_eq!(pages, expected.len().div_ceil(7));
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn bad_queries_get_400_with_a_json_body() {
        let sim = launch(cfg()).await;
        let http = reqwest::Client::new();
        let tok = token(&http, &sim).await;
        let mut bad: Vec<Value> = [
            "type LIKE 'voice'",
            "type = 'fax'",
            "type IN ()",
            "type IN ('voice',)",
            "type = 'voice' OR 1 = 1",
            "media = 'voice'",
            "type = 'voice",
        ]
        .iter()
        .map(|w| range_query(Some(w), 10))
        .collect();
        bad.push(range_query(None, 0));
        bad.push(range_query(None, 1001));
        bad.push(json!({"size": 10}));
        bad.push(json!({"select": ["id", "secret"], "timeRange": {"start": "2024-03-03T00:00:00Z", "end": "2024-03-04T00:00:00Z"}}));
        bad.push(json!({"timeRange": {"start": "2024-03-03", "end": "2024-03-04T00:00:00Z"}}));
        for q in &bad {
            let resp = post_query(&http, &sim, &tok, q).await;
            assert_eq!(resp.status(), 400, "{q}");
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["code"], "bad.request", "{q}");
        }
        let ok = post_query(
            &http,
            &sim,
            &tok,
            &range_query(Some("TYPE in ('email','message')"), 1000),
        )
        .await;
        assert_eq!(ok.status(), 200);
        let url = format!("{}{QUERY_PATH}/pages/not-a-cursor", sim.url);
        assert_eq!(
            http.get(url)
                .bearer_auth(&tok)
                .send()
                .await
                .unwrap()
                .status(),
            400
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

    #[test]
    fn where_clauses() {
        assert_eq!(parse_where("type = 'voice'"), Ok(vec![Media::Voice]));
        assert_eq!(
            parse_where("TYPE IN ( 'chat' ,'email')"),
            Ok(vec![Media::Chat, Media::Email])
        );
        for bad in [
            "type = voice",
            "type IN ('chat' 'email')",
            "type == 'chat'",
            "'chat' = type",
        ] {
            assert!(parse_where(bad).is_err(), "{bad}");
        }
    }
}
