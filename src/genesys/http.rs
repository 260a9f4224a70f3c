//! The HTTP client every Genesys request goes through.
//!
//! - OAuth client credentials (Basic auth to `login.<domain>/oauth/token`), token cached until
//!   shortly before `expires_in`, a new token and one retry on 401;
//! - 429: wait `Retry-After` (plus jitter); 5xx, timeouts, dropped connections and bodies that
//!   fail validation (a truncated page): capped exponential backoff with jitter;
//! - pacing by `inin-ratelimit-*`: requests from all tasks share one schedule spaced so that
//!   the remaining budget lasts until the window resets, so a long run spends the budget
//!   evenly instead of hitting 429s; a 429 pauses every task for `Retry-After`;
//! - a timeout on every request. Secrets never appear in errors or logs: URLs are shown through
//!   [`redact_url`] (no userinfo, no query: a presigned link's query is its signature) and
//!   reqwest's errors through [`http_error`] (reqwest would put the full URL in the text).
//!
//! Presigned links (transcript documents on S3) are fetched with [`ApiClient::get_presigned`]:
//! a plain GET with retries and no bearer token.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::Rng;
use reqwest::{Method, StatusCode};
use tokio::sync::Mutex;
use url::Url;

use super::voice::VoiceState;
use super::{region, GenesysError};
use crate::secret::{http_error, redact_url, redact_url_str, Secret};

/// OAuth client credentials.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub client_id: String,
    pub client_secret: Secret,
}

/// Where the API and the login server are.
#[derive(Clone, Debug)]
pub struct Endpoints {
    pub api: Url,
    pub login: Url,
}

impl Endpoints {
    /// Endpoints of a Genesys Cloud region, overridden by explicit URLs when given.
    /// With only `api_url`, the login URL is derived from it (`api.` → `login.`, else the same host).
    pub fn resolve(
        region: &str,
        api_url: Option<&str>,
        login_url: Option<&str>,
    ) -> Result<Endpoints, GenesysError> {
        let parse = |u: &str| {
            Url::parse(u).map_err(|e| GenesysError::BadUrl {
                url: redact_url_str(u),
                reason: e.to_string(),
            })
        };
        let api = match api_url {
            Some(u) => parse(u)?,
            None => {
                let domain = region::domain_of(region)
                    .ok_or_else(|| GenesysError::UnknownRegion(region.to_string()))?;
                parse(&format!("https://api.{domain}"))?
            }
        };
        let login = match (login_url, api_url) {
            (Some(u), _) => parse(u)?,
            (None, Some(_)) => {
                let mut l = api.clone();
                if let Some(host) = api.host_str() {
                    if let Some(rest) = host.strip_prefix("api.") {
                        let _ = l.set_host(Some(&format!("login.{rest}")));
                    }
                }
                l
            }
            (None, None) => {
                let domain = region::domain_of(region)
                    .ok_or_else(|| GenesysError::UnknownRegion(region.to_string()))?;
                parse(&format!("https://login.{domain}"))?
            }
        };
        Ok(Endpoints { api, login })
    }
}

/// How hard to try.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    /// First backoff; doubled each attempt.
    pub base_delay: Duration,
    /// Longest single wait, also the cap on `Retry-After`.
    pub max_delay: Duration,
    /// Timeout of one request, body included.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(60),
            timeout: Duration::from_secs(60),
        }
    }
}

struct CachedToken {
    value: Secret,
    renew_at: Instant,
}

/// The shared request schedule (see the module docs).
#[derive(Debug)]
struct Pacer {
    state: std::sync::Mutex<PaceState>,
}

#[derive(Debug)]
struct PaceState {
    /// The earliest time the next request may start.
    next_slot: Instant,
    /// The spacing between requests that makes the remaining budget last the window.
    interval: Duration,
    /// No request starts before this (after a 429 or a spent budget).
    paused_until: Instant,
}

impl Pacer {
    fn new() -> Pacer {
        let now = Instant::now();
        Pacer {
            state: std::sync::Mutex::new(PaceState {
                next_slot: now,
                interval: Duration::ZERO,
                paused_until: now,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PaceState> {
        // The state is three instants; a panic elsewhere cannot leave it inconsistent.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reserves the next slot and waits for it.
    async fn wait_turn(&self) {
        let at = {
            let mut s = self.lock();
            let at = Instant::now().max(s.next_slot).max(s.paused_until);
            s.next_slot = at.checked_add(s.interval).unwrap_or(at);
            at
        };
        tokio::time::sleep_until(at.into()).await;
    }

    /// Learns the budget from a response's `inin-ratelimit-*` headers.
    fn observe(&self, count: u64, allowed: u64, reset_secs: u64) -> bool {
        let remaining = allowed.saturating_sub(count);
        let mut s = self.lock();
        let now = Instant::now();
        if remaining <= 1 {
            let wait = Duration::from_secs(reset_secs).saturating_add(Duration::from_millis(250));
            s.paused_until = s.paused_until.max(now.checked_add(wait).unwrap_or(now));
            return true;
        }
        let window = Duration::from_secs(reset_secs.max(1));
        s.interval = window / u32::try_from(remaining).unwrap_or(u32::MAX);
        false
    }

    /// Stops every task until `wait` has passed.
    fn pause(&self, wait: Duration) {
        let mut s = self.lock();
        let now = Instant::now();
        s.paused_until = s.paused_until.max(now.checked_add(wait).unwrap_or(now));
    }
}

/// Request counts of one client, for summaries and benchmarks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// API requests sent (retries included), token requests not.
    pub requests: u64,
    /// Token requests.
    pub tokens: u64,
    /// 429 responses received.
    pub too_many: u64,
    /// 401 responses received (each followed by a new token).
    pub unauthorized: u64,
    /// Retries after 5xx, timeouts, dropped connections or invalid bodies.
    pub retries: u64,
    /// GETs of presigned links (not API requests).
    pub presigned: u64,
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    tokens: AtomicU64,
    too_many: AtomicU64,
    unauthorized: AtomicU64,
    retries: AtomicU64,
    presigned: AtomicU64,
}

/// Why a presigned link gave no document.
#[derive(Debug)]
pub enum PresignedError {
    /// 403 (the link expired or was refused): ask the API for a new link.
    Expired,
    /// 404, or S3's `NoSuchKey`: the document was deleted (with its recording, by retention).
    /// An outcome for this conversation, not a failure of the run.
    Gone,
    /// Anything else, after retries.
    Failed(GenesysError),
}

/// A Genesys API client with a cached token. Share it (`&ApiClient`) between concurrent tasks:
/// the token, the pacing and the counters are shared.
pub struct ApiClient {
    http: reqwest::Client,
    endpoints: Endpoints,
    creds: Credentials,
    policy: RetryPolicy,
    token: Mutex<Option<CachedToken>>,
    pacer: Pacer,
    counters: Counters,
    voice: VoiceState,
}

fn short(text: &[u8]) -> String {
    let s = String::from_utf8_lossy(text);
    let s = s.trim();
    if s.chars().count() > 300 {
        format!("{}…", s.chars().take(300).collect::<String>())
    } else {
        s.to_string()
    }
}

/// A refused token request's reason in one line: an OAuth error body
/// (`{"error":"invalid_client","description":…,"error_description":…}`, GENESYS.md §3) as
/// `invalid_client: <description>`, a Genesys one (`{message}`) as its message, anything else as
/// its first 200 characters. Never the request: the secret is in its header, not in the answer.
fn login_refusal(body: &[u8]) -> String {
    let one_line = |s: &str| {
        let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
        if s.chars().count() > 200 {
            format!("{}…", s.chars().take(200).collect::<String>())
        } else {
            s
        }
    };
    let v = serde_json::from_slice::<serde_json::Value>(body).ok();
    let field = |k: &str| {
        v.as_ref()
            .and_then(|v| v.get(k))
            .and_then(serde_json::Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    if let Some(code) = field("error") {
        return match field("error_description").or(field("description")) {
            Some(d) => one_line(&format!("{code}: {d}")),
            None => one_line(code),
        };
    }
    if let Some(m) = field("message") {
        return one_line(m);
    }
    let text = String::from_utf8_lossy(body);
    match one_line(&text) {
        t if t.is_empty() => "an empty answer".into(),
        t => t,
    }
}

/// The `message` of a Genesys error body, or the body itself.
fn error_message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(String::from))
        .unwrap_or_else(|| short(body))
}

/// The wait a `Retry-After` header asks for, at most `max`. A value that is not a
/// non-negative number of seconds (negative, NaN, an HTTP date) is ignored with a warning (the
/// caller backs off instead); a huge one is capped at `max`. Never panics.
fn retry_after(headers: &reqwest::header::HeaderMap, max: Duration) -> Option<Duration> {
    let v = headers.get("retry-after")?.to_str().ok()?;
    parse_retry_after(v, max)
}

fn parse_retry_after(v: &str, max: Duration) -> Option<Duration> {
    match v.trim().parse::<f64>() {
        Ok(secs) if secs >= 0.0 => {
            Some(Duration::try_from_secs_f64(secs).map_or(max, |d| d.min(max)))
        }
        _ => {
            tracing::warn!(
                value = v,
                "the server sent a Retry-After that is not a number of seconds; backing off instead"
            );
            None
        }
    }
}

/// Token lifetime assumed when `expires_in` is missing or unusable (Genesys's default).
const DEFAULT_TOKEN_TTL: u64 = 86_400;
/// The longest token lifetime Genesys grants (`accessTokenValiditySeconds` ≤ 172,800 s).
const MAX_TOKEN_TTL: u64 = 172_800;

/// The lifetime in seconds a token response's `expires_in` gives: missing means the default;
/// a negative, zero or non-numeric value is replaced by the default with a warning (a 401
/// still gets a new token); a lifetime over 48 h is capped at 48 h with a warning.
fn token_ttl(expires_in: Option<&serde_json::Value>, url: &Url) -> u64 {
    let Some(v) = expires_in.filter(|v| !v.is_null()) else {
        return DEFAULT_TOKEN_TTL;
    };
    let secs = v
        .as_f64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse::<f64>().ok()));
    match secs {
        Some(s) if s >= 1.0 && s <= MAX_TOKEN_TTL as f64 => s as u64,
        Some(s) if s > MAX_TOKEN_TTL as f64 => {
            tracing::warn!(url = %redact_url(url), expires_in = %v, "token lifetime over 48 h; renewing after 48 h");
            MAX_TOKEN_TTL
        }
        _ => {
            tracing::warn!(url = %redact_url(url), expires_in = %v, "the token response's expires_in is not a lifetime; assuming 24 h (a 401 still gets a new token)");
            DEFAULT_TOKEN_TTL
        }
    }
}

fn header_u64(headers: &reqwest::header::HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

impl ApiClient {
    /// A client for these endpoints and credentials.
    pub fn new(
        endpoints: Endpoints,
        creds: Credentials,
        policy: RetryPolicy,
    ) -> Result<ApiClient, GenesysError> {
        if creds.client_id.is_empty() || creds.client_secret.is_empty() {
            return Err(GenesysError::MissingCredentials);
        }
        let http = reqwest::Client::builder()
            .timeout(policy.timeout)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("convlake/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| GenesysError::BadUrl {
                url: redact_url(&endpoints.api),
                reason: http_error(e),
            })?;
        Ok(ApiClient {
            http,
            endpoints,
            creds,
            policy,
            token: Mutex::new(None),
            pacer: Pacer::new(),
            counters: Counters::default(),
            voice: VoiceState::default(),
        })
    }

    /// What this client sent so far.
    pub fn stats(&self) -> ClientStats {
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let c = &self.counters;
        ClientStats {
            requests: n(&c.requests),
            tokens: n(&c.tokens),
            too_many: n(&c.too_many),
            unauthorized: n(&c.unauthorized),
            retries: n(&c.retries),
            presigned: n(&c.presigned),
        }
    }

    /// What the transcript requests of this run learnt about the server (shared by every
    /// task, so a fallback found once holds for the rest of the run).
    pub fn voice_state(&self) -> &VoiceState {
        &self.voice
    }

    /// The API base URL.
    pub fn api_base(&self) -> &Url {
        &self.endpoints.api
    }

    /// Resolves a path or absolute URL against the API. An absolute URL must be on the API's
    /// own origin: the bearer token is never sent anywhere else.
    pub fn resolve(&self, path_or_url: &str) -> Result<Url, GenesysError> {
        let url = self
            .endpoints
            .api
            .join(path_or_url)
            .map_err(|e| GenesysError::BadUrl {
                url: redact_url_str(path_or_url),
                reason: e.to_string(),
            })?;
        if url.origin() != self.endpoints.api.origin() {
            return Err(GenesysError::BadUrl {
                url: redact_url_str(path_or_url),
                reason: format!(
                    "it points outside the API at {}; refusing to send the token there",
                    redact_url(&self.endpoints.api)
                ),
            });
        }
        Ok(url)
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .policy
            .base_delay
            .saturating_mul(1u32 << attempt.min(16).saturating_sub(1));
        let capped = exp.min(self.policy.max_delay);
        let jitter = rand::rng().random_range(0.5..1.0);
        capped.mul_f64(jitter)
    }

    /// The cached token, or a new one when it is due for renewal or is `stale` (the token a
    /// request was just refused with; concurrent refusals of the same token renew it once).
    async fn token(&self, stale: Option<&Secret>) -> Result<Secret, GenesysError> {
        let mut guard = self.token.lock().await;
        if let Some(t) = guard.as_ref() {
            let refused = stale.is_some_and(|s| s == &t.value);
            if !refused && Instant::now() < t.renew_at {
                return Ok(t.value.clone());
            }
        }
        let fresh = self.request_token().await?;
        let value = fresh.value.clone();
        *guard = Some(fresh);
        Ok(value)
    }

    async fn request_token(&self) -> Result<CachedToken, GenesysError> {
        let url = self
            .endpoints
            .login
            .join("/oauth/token")
            .map_err(|e| GenesysError::BadUrl {
                url: redact_url(&self.endpoints.login),
                reason: e.to_string(),
            })?;
        let shown = redact_url(&url);
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.counters.tokens.fetch_add(1, Ordering::Relaxed);
            let res = self
                .http
                .post(url.clone())
                .basic_auth(
                    &self.creds.client_id,
                    Some(self.creds.client_secret.expose()),
                )
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await;
            let (status, headers, body) = match res {
                Ok(r) => {
                    let status = r.status();
                    let headers = r.headers().clone();
                    match r.bytes().await {
                        Ok(b) => (status, headers, b),
                        Err(e) => {
                            self.retry_or(attempt, &shown, http_error(e)).await?;
                            continue;
                        }
                    }
                }
                Err(e) => {
                    self.retry_or(attempt, &shown, http_error(e)).await?;
                    continue;
                }
            };
            if status.is_success() {
                #[derive(serde::Deserialize)]
                struct TokenResponse {
                    access_token: String,
                    /// Read leniently: a server that sends `-5` or `"3600"` still gives a token.
                    expires_in: Option<serde_json::Value>,
                }
                match serde_json::from_slice::<TokenResponse>(&body) {
                    Ok(t) => {
                        let ttl = token_ttl(t.expires_in.as_ref(), &url);
                        // Renew a minute early (or at 90% of a short lifetime).
                        let margin = (ttl / 10).min(60);
                        let now = Instant::now();
                        let renew_at = now
                            .checked_add(Duration::from_secs(ttl.saturating_sub(margin)))
                            .unwrap_or(now);
                        return Ok(CachedToken {
                            value: Secret::new(t.access_token),
                            renew_at,
                        });
                    }
                    Err(e) => {
                        if attempt >= self.policy.max_attempts {
                            return Err(GenesysError::Malformed {
                                url: shown,
                                attempts: attempt,
                                reason: format!("token response: {e}"),
                            });
                        }
                        tokio::time::sleep(self.backoff(attempt)).await;
                        continue;
                    }
                }
            }
            if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                if attempt >= self.policy.max_attempts {
                    return Err(GenesysError::GaveUp {
                        url: shown,
                        status: status.as_u16(),
                        attempts: attempt,
                        message: error_message(&body),
                    });
                }
                let wait = retry_after(&headers, self.policy.max_delay)
                    .unwrap_or_else(|| self.backoff(attempt));
                tokio::time::sleep(wait).await;
                continue;
            }
            // The login server's base, as the user configured it (--region or --login-url).
            let login = redact_url(&self.endpoints.login);
            return Err(GenesysError::BadCredentials {
                url: login.trim_end_matches('/').to_string(),
                status: status.as_u16(),
                message: login_refusal(&body),
            });
        }
    }

    /// Waits before the next attempt, or gives up after the last. `shown` is the redacted URL
    /// and `reason` holds no URL (see [`http_error`]).
    async fn retry_or(
        &self,
        attempt: u32,
        shown: &str,
        reason: String,
    ) -> Result<(), GenesysError> {
        if attempt >= self.policy.max_attempts {
            return Err(GenesysError::Unreachable {
                url: shown.to_string(),
                attempts: attempt,
                reason,
            });
        }
        tracing::debug!(url = shown, attempt, %reason, "request failed, retrying");
        self.counters.retries.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(self.backoff(attempt)).await;
        Ok(())
    }

    /// A plain GET of a presigned link (no bearer token: the signature is the credential),
    /// retrying connection errors, timeouts, 5xx and bodies that fail `validate`.
    pub async fn get_presigned<T: Send + 'static>(
        &self,
        url: &str,
        read: fn(&[u8]) -> Result<T, String>,
    ) -> Result<(Bytes, T), PresignedError> {
        let parsed = Url::parse(url).map_err(|e| {
            PresignedError::Failed(GenesysError::BadUrl {
                url: redact_url_str(url),
                reason: e.to_string(),
            })
        })?;
        // The query is the signature, a credential for the next 10 minutes.
        let shown = redact_url(&parsed);
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.counters.presigned.fetch_add(1, Ordering::Relaxed);
            let res = self.http.get(parsed.clone()).send().await;
            let (status, body) = match res {
                Ok(r) => {
                    let status = r.status();
                    match r.bytes().await {
                        Ok(b) => (status, b),
                        Err(e) => {
                            self.retry_or(
                                attempt,
                                &shown,
                                format!("body cut off: {}", http_error(e)),
                            )
                            .await
                            .map_err(PresignedError::Failed)?;
                            continue;
                        }
                    }
                }
                Err(e) => {
                    self.retry_or(attempt, &shown, http_error(e))
                        .await
                        .map_err(PresignedError::Failed)?;
                    continue;
                }
            };
            // S3 answers a deleted key with 404 `<Code>NoSuchKey</Code>`.
            if status == StatusCode::NOT_FOUND
                || (status.is_client_error() && body.windows(9).any(|w| w == b"NoSuchKey"))
            {
                return Err(PresignedError::Gone);
            }
            if status == StatusCode::FORBIDDEN {
                return Err(PresignedError::Expired);
            }
            if status.is_success() {
                // A document is large (word-level detail): read on the blocking pool, so the
                // other requests in flight go on meanwhile.
                let checked = body.clone();
                let verdict = tokio::task::spawn_blocking(move || read(&checked))
                    .await
                    .unwrap_or_else(|e| Err(format!("reading the body failed: {e}")));
                match verdict {
                    Ok(value) => return Ok((body, value)),
                    Err(reason) => {
                        self.retry_or(attempt, &shown, reason)
                            .await
                            .map_err(|e| match e {
                                GenesysError::Unreachable {
                                    url,
                                    attempts,
                                    reason,
                                } => PresignedError::Failed(GenesysError::Malformed {
                                    url,
                                    attempts,
                                    reason,
                                }),
                                other => PresignedError::Failed(other),
                            })?;
                        continue;
                    }
                }
            }
            if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                self.retry_or(attempt, &shown, format!("status {status}"))
                    .await
                    .map_err(PresignedError::Failed)?;
                continue;
            }
            return Err(PresignedError::Failed(GenesysError::Rejected {
                url: shown,
                status: status.as_u16(),
                message: short(&body),
            }));
        }
    }

    /// Sends a request with retries and returns the body of the first success that passes
    /// `validate` (a body that fails it, such as truncated JSON, is retried like a 5xx).
    pub async fn send(
        &self,
        method: Method,
        path_or_url: &str,
        json_body: Option<&serde_json::Value>,
        validate: &(dyn Fn(&[u8]) -> Result<(), String> + Sync),
    ) -> Result<Bytes, GenesysError> {
        self.send_status(method, path_or_url, json_body, validate)
            .await
            .map(|(_, body)| body)
    }

    /// Like [`ApiClient::send`], with the success status (to tell 202 from 200).
    pub async fn send_status(
        &self,
        method: Method,
        path_or_url: &str,
        json_body: Option<&serde_json::Value>,
        validate: &(dyn Fn(&[u8]) -> Result<(), String> + Sync),
    ) -> Result<(StatusCode, Bytes), GenesysError> {
        let url = self.resolve(path_or_url)?;
        let shown = redact_url(&url);
        let mut attempt = 0;
        let mut renewed = false;
        loop {
            attempt += 1;
            let token = self.token(None).await?;
            self.pacer.wait_turn().await;
            self.counters.requests.fetch_add(1, Ordering::Relaxed);
            let mut req = self
                .http
                .request(method.clone(), url.clone())
                .bearer_auth(token.expose());
            if let Some(b) = json_body {
                req = req.json(b);
            }
            let res = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    renewed = false;
                    self.retry_or(attempt, &shown, http_error(e)).await?;
                    continue;
                }
            };
            let status = res.status();
            let headers = res.headers().clone();
            let body = match res.bytes().await {
                Ok(b) => b,
                Err(e) => {
                    renewed = false;
                    self.retry_or(attempt, &shown, format!("body cut off: {}", http_error(e)))
                        .await?;
                    continue;
                }
            };
            if status.is_success() {
                self.pace(&headers);
                match validate(&body) {
                    Ok(()) => return Ok((status, body)),
                    Err(reason) => {
                        if attempt >= self.policy.max_attempts {
                            return Err(GenesysError::Malformed {
                                url: shown,
                                attempts: attempt,
                                reason,
                            });
                        }
                        tracing::warn!(url = %shown, attempt, %reason, "invalid page, retrying");
                        self.counters.retries.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(self.backoff(attempt)).await;
                        continue;
                    }
                }
            }
            if status == StatusCode::UNAUTHORIZED {
                self.counters.unauthorized.fetch_add(1, Ordering::Relaxed);
            }
            if status == StatusCode::UNAUTHORIZED && !renewed {
                // Expired or revoked token: get a new one and retry once. A second 401 in a
                // row (with a token just issued) is an error; after any other answer, a later
                // 401 (the new token expired too) renews again.
                renewed = true;
                attempt -= 1;
                self.token(Some(&token)).await?;
                continue;
            }
            if status != StatusCode::UNAUTHORIZED {
                renewed = false;
            }
            if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                if attempt >= self.policy.max_attempts {
                    return Err(GenesysError::GaveUp {
                        url: shown,
                        status: status.as_u16(),
                        attempts: attempt,
                        message: error_message(&body),
                    });
                }
                let wait = if status == StatusCode::TOO_MANY_REQUESTS {
                    self.counters.too_many.fetch_add(1, Ordering::Relaxed);
                    let jitter = Duration::from_millis(rand::rng().random_range(0..250));
                    let wait = retry_after(&headers, self.policy.max_delay)
                        .unwrap_or_else(|| self.backoff(attempt))
                        .saturating_add(jitter);
                    // Every task waits: the budget is shared, retrying at once would storm.
                    self.pacer.pause(wait);
                    wait
                } else {
                    self.backoff(attempt)
                };
                self.counters.retries.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(url = %shown, attempt, status = status.as_u16(), ?wait, "retrying");
                tokio::time::sleep(wait).await;
                continue;
            }
            return Err(GenesysError::Rejected {
                url: shown,
                status: status.as_u16(),
                message: error_message(&body),
            });
        }
    }

    /// Spreads the remaining budget of the rate-limit window over the time until it resets.
    fn pace(&self, headers: &reqwest::header::HeaderMap) {
        let (Some(count), Some(allowed), Some(reset)) = (
            header_u64(headers, "inin-ratelimit-count"),
            header_u64(headers, "inin-ratelimit-allowed"),
            header_u64(headers, "inin-ratelimit-reset"),
        ) else {
            return;
        };
        let reset = reset.min(self.policy.max_delay.as_secs());
        if allowed > 0 && self.pacer.observe(count, allowed, reset) {
            tracing::debug!(count, allowed, reset, "rate-limit budget spent; pausing");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_from_region_and_overrides() {
        let e = Endpoints::resolve("eu-west-1", None, None).unwrap();
        assert_eq!(e.api.as_str(), "https://api.mypurecloud.ie/");
        assert_eq!(e.login.as_str(), "https://login.mypurecloud.ie/");
        let e = Endpoints::resolve("us-east-1", Some("http://127.0.0.1:9000"), None).unwrap();
        assert_eq!(e.login.as_str(), "http://127.0.0.1:9000/");
        let e = Endpoints::resolve("x", Some("https://api.example.com"), None).unwrap();
        assert_eq!(e.login.as_str(), "https://login.example.com/");
        assert!(matches!(
            Endpoints::resolve("mars-1", None, None),
            Err(GenesysError::UnknownRegion(_))
        ));
    }

    #[test]
    fn hostile_retry_after_values_are_bounded_or_ignored() {
        let max = Duration::from_secs(60);
        assert_eq!(parse_retry_after("2", max), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after(" 0.5 ", max),
            Some(Duration::from_millis(500))
        );
        assert_eq!(parse_retry_after("99999999999", max), Some(max));
        assert_eq!(parse_retry_after("1e300", max), Some(max));
        assert_eq!(parse_retry_after("inf", max), Some(max));
        for bad in ["-5", "-0.1", "NaN", "Wed, 21 Oct 2026 07:28:00 GMT", ""] {
            assert_eq!(parse_retry_after(bad, max), None, "{bad:?}");
        }
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "-5".parse().unwrap());
        assert_eq!(retry_after(&h, max), None);
    }

    #[test]
    fn hostile_expires_in_values_give_a_usable_lifetime() {
        let url = Url::parse("http://127.0.0.1:1/oauth/token").unwrap();
        let ttl = |v: serde_json::Value| token_ttl(Some(&v), &url);
        assert_eq!(token_ttl(None, &url), DEFAULT_TOKEN_TTL);
        assert_eq!(ttl(serde_json::json!(null)), DEFAULT_TOKEN_TTL);
        assert_eq!(ttl(serde_json::json!(3600)), 3600);
        assert_eq!(ttl(serde_json::json!("3600")), 3600);
        assert_eq!(ttl(serde_json::json!(2)), 2);
        for bad in [
            serde_json::json!(-5),
            serde_json::json!(0),
            serde_json::json!("soon"),
            serde_json::json!([1]),
        ] {
            assert_eq!(ttl(bad.clone()), DEFAULT_TOKEN_TTL, "{bad}");
        }
        assert_eq!(ttl(serde_json::json!(99_999_999_999u64)), MAX_TOKEN_TTL);
        assert_eq!(ttl(serde_json::json!(1e300)), MAX_TOKEN_TTL);
    }

    /// A login server that answers every token request with `body`, and the API with `{}`.
    async fn token_server(body: &'static str) -> String {
        let app = axum::Router::new()
            .route(
                "/oauth/token",
                axum::routing::post(move || async move {
                    ([("content-type", "application/json")], body)
                }),
            )
            .fallback(|| async { ([("content-type", "application/json")], "{}") });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    #[tokio::test]
    async fn a_token_with_a_negative_or_huge_lifetime_still_works() {
        for body in [
            r#"{"access_token":"t","token_type":"bearer","expires_in":-5}"#,
            r#"{"access_token":"t","token_type":"bearer","expires_in":99999999999999999999}"#,
            r#"{"access_token":"t","token_type":"bearer"}"#,
        ] {
            let url = token_server(body).await;
            let c = ApiClient::new(
                Endpoints::resolve("x", Some(&url), None).unwrap(),
                Credentials {
                    client_id: "id".into(),
                    client_secret: Secret::new("s"),
                },
                RetryPolicy::default(),
            )
            .unwrap();
            let ok = |_: &[u8]| Ok(());
            c.send(Method::GET, "/api/v2/x", None, &ok).await.unwrap();
            c.send(Method::GET, "/api/v2/x", None, &ok).await.unwrap();
            assert_eq!(c.stats().tokens, 1, "{body}");
        }
    }

    #[test]
    fn error_messages_prefer_the_genesys_message() {
        assert_eq!(
            error_message(br#"{"message":"Invalid login credentials.","code":"bad.credentials"}"#),
            "Invalid login credentials."
        );
        assert_eq!(error_message(b"plain"), "plain");
    }

    #[test]
    fn foreign_origins_are_refused() {
        let c = ApiClient::new(
            Endpoints::resolve("x", Some("http://127.0.0.1:1"), None).unwrap(),
            Credentials {
                client_id: "id".into(),
                client_secret: Secret::new("s"),
            },
            RetryPolicy::default(),
        )
        .unwrap();
        assert!(c.resolve("/api/v2/x?y=1").is_ok());
        assert!(c.resolve("http://127.0.0.1:1/next").is_ok());
        assert!(c.resolve("http://evil.example/next").is_err());
    }

    #[test]
    fn login_refusals_read_in_one_line() {
        assert_eq!(
            login_refusal(
                br#"{"error":"invalid_client","description":"authentication failed","error_description":"authentication failed"}"#
            ),
            "invalid_client: authentication failed"
        );
        assert_eq!(
            login_refusal(
                br#"{"error":"unauthorized_client","description":"grant type not\n allowed"}"#
            ),
            "unauthorized_client: grant type not allowed"
        );
        assert_eq!(
            login_refusal(br#"{"error":"invalid_grant"}"#),
            "invalid_grant"
        );
        assert_eq!(
            login_refusal(br#"{"message":"Invalid login credentials.","status":401}"#),
            "Invalid login credentials."
        );
        let html = format!("<html>\n<body>{}</body></html>", "x".repeat(500));
        let r = login_refusal(html.as_bytes());
        assert!(!r.contains('\n') && r.chars().count() == 201, "{r}");
        assert_eq!(login_refusal(b"  "), "an empty answer");
    }

    /// A login server that refuses every token request with `status` and `body`.
    async fn refusing_login(status: u16, body: &'static str) -> String {
        let app = axum::Router::new().route(
            "/oauth/token",
            axum::routing::post(move || async move {
                (
                    axum::http::StatusCode::from_u16(status).unwrap(),
                    [("content-type", "application/json")],
                    body,
                )
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    #[tokio::test]
    async fn an_oauth_refusal_says_what_to_check_without_the_secret() {
        for status in [400, 401] {
            let url = refusing_login(
                status,
                r#"{"error":"invalid_client","description":"authentication failed","error_description":"authentication failed"}"#,
            )
            .await;
            let c = ApiClient::new(
                Endpoints::resolve("x", Some(&url), None).unwrap(),
                Credentials {
                    client_id: "my-id".into(),
                    client_secret: Secret::new("very-secret-value"),
                },
                RetryPolicy::default(),
            )
            .unwrap();
            let ok = |_: &[u8]| Ok(());
            let e = c
                .send(Method::GET, "/api/v2/x", None, &ok)
                .await
                .unwrap_err();
            let msg = e.to_string();
            assert!(
                msg.starts_with(&format!(
                    "login to {url} refused (invalid_client: authentication failed"
                )),
                "{msg}"
            );
            for hint in [
                "GENESYS_CLIENT_ID",
                "GENESYSCLOUD_OAUTHCLIENT_SECRET",
                "--region",
            ] {
                assert!(msg.contains(hint), "{hint}: {msg}");
            }
            assert!(
                !msg.contains("very-secret-value") && !msg.contains('\n'),
                "{msg}"
            );
            assert_eq!(c.stats().tokens, 1, "a refusal is not retried");
        }
    }
}
