//! The HTTP client every Genesys request goes through.
//!
//! - OAuth client credentials (Basic auth to `login.<domain>/oauth/token`), token cached until
//!   shortly before `expires_in`, a new token and one retry on 401;
//! - 429: wait `Retry-After` (plus jitter); 5xx, timeouts, dropped connections and bodies that
//!   fail validation (a truncated page): capped exponential backoff with jitter;
//! - pacing by `inin-ratelimit-*` so a long run spends the budget instead of hitting 429s;
//! - a timeout on every request. Secrets never appear in errors or logs.

use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::Rng;
use reqwest::{Method, StatusCode};
use tokio::sync::Mutex;
use url::Url;

use super::{region, GenesysError};
use crate::secret::Secret;

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
                url: u.to_string(),
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

/// A Genesys API client with a cached token.
pub struct ApiClient {
    http: reqwest::Client,
    endpoints: Endpoints,
    creds: Credentials,
    policy: RetryPolicy,
    token: Mutex<Option<CachedToken>>,
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

/// The `message` of a Genesys error body, or the body itself.
fn error_message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(String::from))
        .unwrap_or_else(|| short(body))
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get("retry-after")?.to_str().ok()?;
    v.trim().parse::<f64>().ok().map(Duration::from_secs_f64)
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
                url: endpoints.api.to_string(),
                reason: e.to_string(),
            })?;
        Ok(ApiClient {
            http,
            endpoints,
            creds,
            policy,
            token: Mutex::new(None),
        })
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
                url: path_or_url.to_string(),
                reason: e.to_string(),
            })?;
        if url.origin() != self.endpoints.api.origin() {
            return Err(GenesysError::BadUrl {
                url: path_or_url.to_string(),
                reason: format!(
                    "it points outside the API at {}; refusing to send the token there",
                    self.endpoints.api
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

    async fn token(&self, force_new: bool) -> Result<Secret, GenesysError> {
        let mut guard = self.token.lock().await;
        if !force_new {
            if let Some(t) = guard.as_ref() {
                if Instant::now() < t.renew_at {
                    return Ok(t.value.clone());
                }
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
                url: self.endpoints.login.to_string(),
                reason: e.to_string(),
            })?;
        let mut attempt = 0;
        loop {
            attempt += 1;
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
                            self.retry_or(attempt, &url, e.to_string()).await?;
                            continue;
                        }
                    }
                }
                Err(e) => {
                    self.retry_or(attempt, &url, e.to_string()).await?;
                    continue;
                }
            };
            if status.is_success() {
                #[derive(serde::Deserialize)]
                struct TokenResponse {
                    access_token: String,
                    expires_in: Option<u64>,
                }
                match serde_json::from_slice::<TokenResponse>(&body) {
                    Ok(t) => {
                        let ttl = t.expires_in.unwrap_or(86_400);
                        // Renew a minute early (or at 90% of a short lifetime).
                        let margin = (ttl / 10).min(60);
                        return Ok(CachedToken {
                            value: Secret::new(t.access_token),
                            renew_at: Instant::now() + Duration::from_secs(ttl - margin),
                        });
                    }
                    Err(e) => {
                        if attempt >= self.policy.max_attempts {
                            return Err(GenesysError::Malformed {
                                url: url.to_string(),
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
                        url: url.to_string(),
                        status: status.as_u16(),
                        attempts: attempt,
                        message: error_message(&body),
                    });
                }
                let wait = retry_after(&headers)
                    .map(|d| d.min(self.policy.max_delay))
                    .unwrap_or_else(|| self.backoff(attempt));
                tokio::time::sleep(wait).await;
                continue;
            }
            return Err(GenesysError::BadCredentials {
                url: url.to_string(),
                status: status.as_u16(),
                message: error_message(&body),
            });
        }
    }

    async fn retry_or(&self, attempt: u32, url: &Url, reason: String) -> Result<(), GenesysError> {
        if attempt >= self.policy.max_attempts {
            return Err(GenesysError::Unreachable {
                url: url.to_string(),
                attempts: attempt,
                reason,
            });
        }
        tracing::debug!(%url, attempt, %reason, "request failed, retrying");
        tokio::time::sleep(self.backoff(attempt)).await;
        Ok(())
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
        let url = self.resolve(path_or_url)?;
        let mut attempt = 0;
        let mut renewed = false;
        loop {
            attempt += 1;
            let token = self.token(false).await?;
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
                    self.retry_or(attempt, &url, e.to_string()).await?;
                    continue;
                }
            };
            let status = res.status();
            let headers = res.headers().clone();
            let body = match res.bytes().await {
                Ok(b) => b,
                Err(e) => {
                    self.retry_or(attempt, &url, format!("body cut off: {e}"))
                        .await?;
                    continue;
                }
            };
            if status.is_success() {
                self.pace(&headers).await;
                match validate(&body) {
                    Ok(()) => return Ok(body),
                    Err(reason) => {
                        if attempt >= self.policy.max_attempts {
                            return Err(GenesysError::Malformed {
                                url: url.to_string(),
                                attempts: attempt,
                                reason,
                            });
                        }
                        tracing::warn!(%url, attempt, %reason, "invalid page, retrying");
                        tokio::time::sleep(self.backoff(attempt)).await;
                        continue;
                    }
                }
            }
            if status == StatusCode::UNAUTHORIZED && !renewed {
                // Expired or revoked token: get a new one and retry once.
                renewed = true;
                attempt -= 1;
                self.token(true).await?;
                continue;
            }
            if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                if attempt >= self.policy.max_attempts {
                    return Err(GenesysError::GaveUp {
                        url: url.to_string(),
                        status: status.as_u16(),
                        attempts: attempt,
                        message: error_message(&body),
                    });
                }
                let wait = if status == StatusCode::TOO_MANY_REQUESTS {
                    let jitter = Duration::from_millis(rand::rng().random_range(0..250));
                    retry_after(&headers)
                        .map(|d| d.min(self.policy.max_delay))
                        .unwrap_or_else(|| self.backoff(attempt))
                        + jitter
                } else {
                    self.backoff(attempt)
                };
                tracing::debug!(%url, attempt, status = status.as_u16(), ?wait, "retrying");
                tokio::time::sleep(wait).await;
                continue;
            }
            return Err(GenesysError::Rejected {
                url: url.to_string(),
                status: status.as_u16(),
                message: error_message(&body),
            });
        }
    }

    /// When the rate-limit window is nearly spent, wait for it to reset.
    async fn pace(&self, headers: &reqwest::header::HeaderMap) {
        let (Some(count), Some(allowed), Some(reset)) = (
            header_u64(headers, "inin-ratelimit-count"),
            header_u64(headers, "inin-ratelimit-allowed"),
            header_u64(headers, "inin-ratelimit-reset"),
        ) else {
            return;
        };
        if allowed > 0 && allowed.saturating_sub(count) <= 2 {
            let wait = Duration::from_secs(reset.min(self.policy.max_delay.as_secs()) + 1);
            tracing::info!(?wait, count, allowed, "rate-limit budget spent; pausing");
            tokio::time::sleep(wait).await;
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
}
