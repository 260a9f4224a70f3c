//! The dashboard payload (the tutorial's `{"title", "type", "data", "metadata"}` shape, extended
//! with provenance metadata and per-product, per-interaction-type series) and its upload.
//!
//! Invariants: the payload is a pure function of the rows and the metadata, with every list
//! sorted, so the same lake gives the same bytes; an upload carries an `Idempotency-Key` so that
//! retrying after a lost response cannot double-count; the bearer token appears only in the
//! `Authorization` header, never in an error or log (it is redacted from echoed response bodies).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::NaiveDate;
use serde_json::{json, Value};

use super::{DailyCount, ReportError};
use crate::secret::Secret;

/// Title of the dashboard widget, as in the original tutorial.
pub const DASHBOARD_TITLE: &str = "Genesys Cloud Product Mention Insights";
/// Name reported as `metadata.nlp_engine`: mentions come from the dictionary matcher.
pub const NLP_ENGINE: &str = "convlake-dictionary";
/// Longest slice of a server's response body quoted in an error.
const MAX_BODY_CHARS: usize = 500;

/// Provenance of a payload: where the data came from and which lake and dictionary produced it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PayloadMeta {
    /// Where the conversations came from (e.g. `archiving_api`, `simulator`).
    pub source: String,
    /// Version (content hash) of the product dictionary used for matching.
    pub dictionary_version: String,
    /// Content hash of the lake snapshot the counts were computed from.
    pub lake_hash: String,
    /// First day of the reported range, if bounded.
    pub from: Option<NaiveDate>,
    /// Last day of the reported range, if bounded.
    pub to: Option<NaiveDate>,
    /// Number of conversations in the range (with or without mentions).
    pub conversations: u64,
}

/// Result of a successful upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostOutcome {
    /// HTTP status of the accepted request (2xx).
    pub status: u16,
    /// Number of requests sent, including the successful one.
    pub attempts: u32,
}

/// The version of the payload's shape (`schema_version`; schemas/dashboard.json). 2 added
/// `sentiment` and `insights`; every field of 1 is kept.
pub const PAYLOAD_SCHEMA_VERSION: u64 = 2;

/// One product's sentiment over the payload's range.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProductSentiment {
    pub product: String,
    pub positive: u64,
    pub negative: u64,
    pub neutral: u64,
    pub unscored: u64,
    /// The mean score of the scored mentions; `None` when none is scored.
    pub mean: Option<f64>,
}

/// What a payload carries besides the daily counts: sentiment per product and the flagged
/// insights ([`super::insights`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PayloadExtras {
    pub sentiment: Vec<ProductSentiment>,
    pub insights: Vec<super::insights::Insight>,
}

/// Date -> (mentions, conversations) of one product in one interaction type.
type DailyPoints = BTreeMap<NaiveDate, (u64, u64)>;

/// Builds the dashboard payload: total mentions per product (`data`), provenance (`metadata`)
/// and daily points per product and interaction type (`series`), all sorted.
pub fn dashboard_payload(rows: &[DailyCount], meta: &PayloadMeta, extras: &PayloadExtras) -> Value {
    let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
    // (product, interaction type) -> date -> (mentions, conversations); duplicates are summed.
    let mut series: BTreeMap<(&str, &str), DailyPoints> = BTreeMap::new();
    for r in rows {
        *totals.entry(r.product.as_str()).or_default() += r.mentions;
        let point = series
            .entry((r.product.as_str(), r.interaction_type.as_str()))
            .or_default()
            .entry(r.date)
            .or_default();
        point.0 += r.mentions;
        point.1 += r.conversations;
    }

    let data: Vec<Value> = totals
        .iter()
        .map(|(product, mentions)| json!({"product_name": product, "mention_count": mentions}))
        .collect();
    let series: Vec<Value> = series
        .iter()
        .map(|((product, kind), points)| {
            let points: Vec<Value> = points
                .iter()
                .map(|(date, (mentions, conversations))| {
                    json!({
                        "date": date.format("%Y-%m-%d").to_string(),
                        "mentions": mentions,
                        "conversations": conversations,
                    })
                })
                .collect();
            json!({"product_name": product, "interaction_type": kind, "points": points})
        })
        .collect();
    let day = |d: Option<NaiveDate>| d.map(|d| d.format("%Y-%m-%d").to_string());

    let finite = |v: f64| if v.is_finite() { json!(v) } else { Value::Null };
    let mut sentiment = extras.sentiment.clone();
    sentiment.sort_by(|a, b| a.product.cmp(&b.product));
    let sentiment: Vec<Value> = sentiment
        .iter()
        .map(|s| {
            json!({
                "product_name": s.product,
                "positive": s.positive,
                "negative": s.negative,
                "neutral": s.neutral,
                "unscored": s.unscored,
                "sentiment_mean": s.mean.map_or(Value::Null, finite),
            })
        })
        .collect();
    let insights: Vec<Value> = extras
        .insights
        .iter()
        .map(|i| {
            json!({
                "kind": i.kind,
                "product_name": i.product,
                "window": i.window.as_str(),
                "from": i.from.format("%Y-%m-%d").to_string(),
                "to": i.to.format("%Y-%m-%d").to_string(),
                "value": finite(i.value),
                "baseline": finite(i.baseline),
                "ratio": finite(i.ratio),
                "interval": [finite(i.low), finite(i.high)],
                "p_value": finite(i.p_value),
                "q_value": finite(i.q_value),
                "counts": [i.counts.0, i.counts.1],
                "headline": i.headline(),
                "top_topic": i.topic.as_ref().map_or(Value::Null, |(name, n, of)| json!({
                    "topic": name,
                    "conversations": n,
                    "conversations_with_topics": of,
                })),
                "examples": i.examples.iter().map(|e| {
                    // The first mention of the insight's product in the utterance.
                    let (start, end) = e
                        .highlights
                        .iter()
                        .find(|h| h.2)
                        .map_or((0, 0), |h| (h.0, h.1));
                    json!({
                        "conversation_id": e.conversation_id,
                        "date": e.date.format("%Y-%m-%d").to_string(),
                        "interaction_type": e.interaction_type,
                        "participant": e.participant,
                        "text": e.text,
                        "start_char": start,
                        "end_char": end,
                    })
                }).collect::<Vec<_>>(),
            })
        })
        .collect();

    json!({
        "schema_version": PAYLOAD_SCHEMA_VERSION,
        "title": DASHBOARD_TITLE,
        "type": "line_chart",
        "data": data,
        "sentiment": sentiment,
        "insights": insights,
        "metadata": {
            "source": meta.source,
            "nlp_engine": NLP_ENGINE,
            "record_count": data.len(),
            "dictionary_version": meta.dictionary_version,
            "lake_hash": meta.lake_hash,
            "date_range": {"from": day(meta.from), "to": day(meta.to)},
            "conversations": meta.conversations,
        },
        "series": series,
    })
}

/// How hard [`post_dashboard`] tries; tests use shorter delays.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    /// Total number of requests, including the first.
    pub max_attempts: u32,
    /// Delay before the second attempt; doubled for each further attempt.
    pub base_delay: Duration,
    /// Upper bound for any delay, including a server's `Retry-After`.
    pub max_delay: Duration,
    /// Timeout of one request, connection to last byte.
    pub timeout: Duration,
}

impl RetryPolicy {
    /// 5 attempts, 0.2 s doubling backoff, `Retry-After` capped at 30 s, 30 s per request.
    pub const DEFAULT: RetryPolicy = RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(200),
        max_delay: Duration::from_secs(30),
        timeout: Duration::from_secs(30),
    };

    /// Delay after failed attempt number `attempt` (1-based): base, 2×base, 4×base, ...
    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// POSTs `payload` as JSON to `url` with an `Idempotency-Key` header and, when given, a bearer
/// token. Retries 429 (honouring `Retry-After` seconds up to 30 s), 5xx and connection errors
/// up to 5 attempts with 0.2 s doubling backoff; any other non-2xx status fails at once.
pub async fn post_dashboard(
    url: &str,
    token: Option<&Secret>,
    payload: &Value,
    idempotency_key: &str,
) -> Result<PostOutcome, ReportError> {
    post_with_policy(url, token, payload, idempotency_key, RetryPolicy::DEFAULT).await
}

/// [`post_dashboard`] with an explicit retry policy.
pub(crate) async fn post_with_policy(
    url: &str,
    token: Option<&Secret>,
    payload: &Value,
    idempotency_key: &str,
    policy: RetryPolicy,
) -> Result<PostOutcome, ReportError> {
    let target = reqwest::Url::parse(url).map_err(|e| ReportError::InvalidUrl {
        // Unparseable, yet it may carry a password or a key: cut what could be one.
        url: crate::secret::redact_url_str(url),
        reason: e.to_string(),
    })?;
    let shown = display_url(&target);
    if !matches!(target.scheme(), "http" | "https") {
        return Err(ReportError::InvalidUrl {
            url: shown,
            reason: format!("scheme {:?} is not http or https", target.scheme()),
        });
    }
    let client = reqwest::Client::builder()
        .timeout(policy.timeout)
        .build()
        .map_err(|e| ReportError::Client {
            url: shown.clone(),
            message: error_chain(&e),
        })?;

    let max_attempts = policy.max_attempts.max(1);
    let mut last = String::new();
    for attempt in 1..=max_attempts {
        let mut request = client
            .post(target.clone())
            .header("Idempotency-Key", idempotency_key)
            .json(payload);
        if let Some(token) = token {
            // bearer_auth marks the header sensitive, so reqwest never prints it.
            request = request.bearer_auth(token.expose());
        }
        let delay = match request.send().await {
            Ok(response) => {
                let status = response.status();
                if status.is_success() {
                    tracing::info!(url = %shown, status = status.as_u16(), attempts = attempt, "dashboard accepted payload");
                    return Ok(PostOutcome {
                        status: status.as_u16(),
                        attempts: attempt,
                    });
                }
                let retry_after = retry_after(response.headers());
                let body = quote_body(&response.text().await.unwrap_or_default(), token);
                let too_many = status == reqwest::StatusCode::TOO_MANY_REQUESTS;
                if !too_many && !status.is_server_error() {
                    return Err(ReportError::Rejected {
                        url: shown,
                        status: status.as_u16(),
                        body,
                    });
                }
                last = format!("HTTP {}: {body}", status.as_u16());
                match retry_after {
                    Some(wait) if too_many => wait.min(policy.max_delay),
                    _ => policy.backoff(attempt),
                }
            }
            Err(e) if e.is_builder() => {
                // The request could not even be built (e.g. a header value with a newline);
                // retrying cannot help. Header values are not part of the message.
                return Err(ReportError::Client {
                    url: shown,
                    message: error_chain(&e),
                });
            }
            Err(e) => {
                last = error_chain(&e);
                policy.backoff(attempt)
            }
        };
        if attempt < max_attempts {
            tracing::warn!(url = %shown, attempt, error = %last, delay_ms = delay.as_millis() as u64, "dashboard upload failed; retrying");
            tokio::time::sleep(delay).await;
        }
    }
    Err(ReportError::RetriesExhausted {
        url: shown,
        attempts: max_attempts,
        last,
    })
}

/// The URL without user info, query or fragment, which may carry credentials.
fn display_url(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    // These only fail for URLs that cannot have credentials (cannot-be-a-base), where there is
    // nothing to strip.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// `Retry-After` as a number of seconds (the HTTP-date form is ignored: backoff applies).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    let seconds: f64 = value.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(3600.0)))
}

/// The response body for an error message: token redacted, at most 500 characters.
fn quote_body(body: &str, token: Option<&Secret>) -> String {
    let body = match token {
        Some(t) if !t.is_empty() => body.replace(t.expose(), "***"),
        _ => body.to_string(),
    };
    let body = body.trim();
    if body.is_empty() {
        return "(empty response body)".to_string();
    }
    if body.chars().count() <= MAX_BODY_CHARS {
        body.to_string()
    } else {
        let mut quoted: String = body.chars().take(MAX_BODY_CHARS).collect();
        quoted.push('…');
        quoted
    }
}

/// A reqwest error with its causes ("error sending request" alone says little), without the
/// URL, which the caller's message already shows with credentials stripped.
fn error_chain(error: &reqwest::Error) -> String {
    let mut message = if error.is_timeout() {
        "request timed out".to_string()
    } else if error.is_connect() {
        "could not connect".to_string()
    } else if error.is_builder() {
        "invalid request".to_string()
    } else {
        "request failed".to_string()
    };
    let mut cause = std::error::Error::source(error);
    while let Some(e) = cause {
        message.push_str(": ");
        message.push_str(&e.to_string());
        cause = e.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::receiver::start_receiver;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 3, d).unwrap()
    }

    fn row(d: u32, kind: &str, product: &str, mentions: u64, conversations: u64) -> DailyCount {
        DailyCount {
            date: day(d),
            interaction_type: kind.to_string(),
            product: product.to_string(),
            mentions,
            conversations,
        }
    }

    fn rows() -> Vec<DailyCount> {
        vec![
            row(2, "voice", "Genesys Cloud CX", 4, 3),
            row(1, "chat", "Architect", 2, 2),
            row(1, "voice", "Genesys Cloud CX", 5, 4),
            row(2, "chat", "Genesys Cloud CX", 1, 1),
            row(3, "email", "Workforce Engagement", 7, 5),
            row(1, "voice", "Architect", 3, 1),
        ]
    }

    fn meta() -> PayloadMeta {
        PayloadMeta {
            source: "simulator".into(),
            dictionary_version: "dict-abc".into(),
            lake_hash: "lake-123".into(),
            from: Some(day(1)),
            to: Some(day(3)),
            conversations: 42,
        }
    }

    fn fast() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn payload_keeps_the_tutorial_shape() {
        let p = dashboard_payload(&rows(), &meta(), &PayloadExtras::default());
        assert_eq!(p["title"], DASHBOARD_TITLE);
        assert_eq!(p["type"], "line_chart");
        assert_eq!(
            p["data"],
            json!([
                {"product_name": "Architect", "mention_count": 5},
                {"product_name": "Genesys Cloud CX", "mention_count": 10},
                {"product_name": "Workforce Engagement", "mention_count": 7},
            ])
        );
        assert_eq!(
            p["metadata"],
            json!({
                "source": "simulator",
                "nlp_engine": "convlake-dictionary",
                "record_count": 3,
                "dictionary_version": "dict-abc",
                "lake_hash": "lake-123",
                "date_range": {"from": "2024-03-01", "to": "2024-03-03"},
                "conversations": 42,
            })
        );
        let series = p["series"].as_array().unwrap();
        let keys: Vec<(String, String)> = series
            .iter()
            .map(|s| {
                (
                    s["product_name"].as_str().unwrap().to_string(),
                    s["interaction_type"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert_eq!(keys.len(), 5);
        assert_eq!(
            series[3],
            json!({
                "product_name": "Genesys Cloud CX",
                "interaction_type": "voice",
                "points": [
                    {"date": "2024-03-01", "mentions": 5, "conversations": 4},
                    {"date": "2024-03-02", "mentions": 4, "conversations": 3},
                ],
            })
        );
    }

    #[test]
    fn payload_is_deterministic_regardless_of_row_order() {
        let a = serde_json::to_string(&dashboard_payload(
            &rows(),
            &meta(),
            &PayloadExtras::default(),
        ))
        .unwrap();
        let mut reversed = rows();
        reversed.reverse();
        let b = serde_json::to_string(&dashboard_payload(
            &reversed,
            &meta(),
            &PayloadExtras::default(),
        ))
        .unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn empty_payload_has_empty_lists_and_null_range() {
        let p = dashboard_payload(&[], &PayloadMeta::default(), &PayloadExtras::default());
        assert_eq!(p["data"], json!([]));
        assert_eq!(p["series"], json!([]));
        assert_eq!(p["metadata"]["record_count"], 0);
        assert_eq!(
            p["metadata"]["date_range"],
            json!({"from": null, "to": null})
        );
    }

    /// Sentiment of two products and one insight.
    fn extras() -> PayloadExtras {
        let day = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        PayloadExtras {
            sentiment: vec![
                ProductSentiment {
                    product: "Nimbus Hub".into(),
                    positive: 1,
                    negative: 0,
                    neutral: 1,
                    unscored: 1,
                    mean: Some(0.25),
                },
                ProductSentiment {
                    product: "Acme Router".into(),
                    positive: 0,
                    negative: 2,
                    neutral: 0,
                    unscored: 0,
                    mean: Some(-0.75),
                },
            ],
            insights: vec![crate::report::insights::Insight {
                kind: "spike",
                product: "Acme Router".into(),
                window: crate::report::insights::Window::Day,
                from: day,
                to: day,
                value: 42.0,
                baseline: 19.5,
                ratio: 2.15,
                low: 1.5,
                high: 3.1,
                p_value: 1e-4,
                q_value: 4e-4,
                counts: (90, 131),
                flagged: true,
                examples: vec![crate::report::Example {
                    product: "Acme Router".into(),
                    conversation_id: "conv-1".into(),
                    date: day,
                    interaction_type: "voice".into(),
                    participant: "customer".into(),
                    text: "my acme router keeps dropping".into(),
                    highlights: vec![(3, 14, true)],
                }],
                topic: Some(("connectivity".into(), 30, 41)),
            }],
        }
    }

    /// Golden file; refresh with `CONVLAKE_UPDATE_GOLDEN=1 cargo test --lib report`.
    #[test]
    fn payload_matches_golden_file() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden/dashboard_payload.json");
        let actual = serde_json::to_string_pretty(&dashboard_payload(&rows(), &meta(), &extras()))
            .unwrap()
            + "\n";
        if std::env::var_os("CONVLAKE_UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &actual).unwrap();
        }
        // Compared as JSON values: object key order depends on serde_json's `preserve_order`
        // feature, which another crate in the build may switch on.
        let expected: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(
            dashboard_payload(&rows(), &meta(), &extras()),
            expected,
            "payload differs from {}; rerun with CONVLAKE_UPDATE_GOLDEN=1 if the change is intended",
            path.display()
        );
    }

    #[test]
    fn backoff_doubles_from_200ms() {
        let p = RetryPolicy::DEFAULT;
        let delays: Vec<u128> = (1..=4).map(|a| p.backoff(a).as_millis()).collect();
        assert_eq!(delays, [200, 400, 800, 1600]);
        assert_eq!(p.backoff(20), Duration::from_secs(30));
    }

    #[test]
    fn long_bodies_are_truncated_and_tokens_redacted() {
        let token = Secret::new("tok-123");
        let quoted = quote_body(
            &format!("bad token tok-123 {}", "x".repeat(1000)),
            Some(&token),
        );
        assert!(!quoted.contains("tok-123"));
        assert!(quoted.starts_with("bad token *** x"));
        assert_eq!(quoted.chars().count(), MAX_BODY_CHARS + 1);
    }

    #[tokio::test]
    async fn retries_503_then_succeeds_with_token_and_key() {
        let receiver = start_receiver("127.0.0.1:0".parse().unwrap(), 2)
            .await
            .unwrap();
        let token = Secret::new("s3cret-token");
        let payload = dashboard_payload(&rows(), &meta(), &PayloadExtras::default());
        let outcome = post_dashboard(&receiver.url, Some(&token), &payload, "key-1")
            .await
            .unwrap();
        assert_eq!(
            outcome,
            PostOutcome {
                status: 200,
                attempts: 3
            }
        );
        assert_eq!(receiver.request_count(), 3);
        let seen = receiver.received();
        assert_eq!(seen.len(), 1);
        assert_eq!(
            seen[0].authorization.as_deref(),
            Some("Bearer s3cret-token")
        );
        assert_eq!(seen[0].idempotency_key.as_deref(), Some("key-1"));
        assert_eq!(seen[0].body, payload);
        receiver.shutdown().await;
    }

    #[tokio::test]
    async fn no_token_sends_no_authorization_header() {
        let receiver = start_receiver("127.0.0.1:0".parse().unwrap(), 0)
            .await
            .unwrap();
        let outcome = post_dashboard(&receiver.url, None, &json!({"a": 1}), "k")
            .await
            .unwrap();
        assert_eq!(outcome.attempts, 1);
        assert_eq!(receiver.received()[0].authorization, None);
        receiver.shutdown().await;
    }

    #[tokio::test]
    async fn gives_up_after_five_attempts() {
        let receiver = start_receiver("127.0.0.1:0".parse().unwrap(), 100)
            .await
            .unwrap();
        let token = Secret::new("s3cret-token");
        let err = post_with_policy(&receiver.url, Some(&token), &json!({}), "k", fast())
            .await
            .unwrap_err();
        assert_eq!(receiver.request_count(), 5);
        let message = err.to_string();
        assert!(
            matches!(err, ReportError::RetriesExhausted { attempts: 5, .. }),
            "{message}"
        );
        assert!(message.contains("503"), "{message}");
        assert!(message.contains(&receiver.url), "{message}");
        receiver.shutdown().await;
    }

    #[tokio::test]
    async fn connection_errors_are_retried() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let url = format!("http://127.0.0.1:{port}/api/dashboard");
        let err = post_with_policy(&url, None, &json!({}), "k", fast())
            .await
            .unwrap_err();
        let message = err.to_string();
        assert!(
            matches!(err, ReportError::RetriesExhausted { attempts: 5, .. }),
            "{message}"
        );
        assert!(message.contains("could not connect"), "{message}");
    }

    /// Serves `router` on a free loopback port and returns its base URL.
    async fn serve(router: axum::Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn client_errors_fail_at_once_with_the_body_and_without_the_token() {
        use axum::http::{HeaderMap, StatusCode};
        let hits = Arc::new(AtomicU32::new(0));
        let counter = hits.clone();
        let router = axum::Router::new().route(
            "/api/dashboard",
            axum::routing::post(move |headers: HeaderMap| {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    (
                        StatusCode::BAD_REQUEST,
                        format!("field 'data' is malformed (you sent {auth})"),
                    )
                }
            }),
        );
        let url = format!("{}/api/dashboard?api_key=in-query", serve(router).await);
        let token = Secret::new("s3cret-token");
        let err = post_dashboard(&url, Some(&token), &json!({}), "k")
            .await
            .unwrap_err();
        let message = err.to_string();
        assert_eq!(hits.load(Ordering::SeqCst), 1, "a 400 is not retried");
        assert!(
            matches!(err, ReportError::Rejected { status: 400, .. }),
            "{message}"
        );
        assert!(message.contains("HTTP 400"), "{message}");
        assert!(message.contains("field 'data' is malformed"), "{message}");
        assert!(!message.contains("s3cret-token"), "{message}");
        assert!(!message.contains("in-query"), "{message}");
        assert!(!format!("{err:?}").contains("s3cret-token"));
    }

    #[tokio::test]
    async fn too_many_requests_honours_retry_after() {
        use axum::http::StatusCode;
        let hits = Arc::new(AtomicU32::new(0));
        let counter = hits.clone();
        let router = axum::Router::new().route(
            "/",
            axum::routing::post(move || {
                let counter = counter.clone();
                async move {
                    if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                        (
                            StatusCode::TOO_MANY_REQUESTS,
                            [("retry-after", "1")],
                            "slow down",
                        )
                    } else {
                        (StatusCode::CREATED, [("retry-after", "0")], "ok")
                    }
                }
            }),
        );
        let url = format!("{}/", serve(router).await);
        let started = std::time::Instant::now();
        let outcome = post_with_policy(&url, None, &json!({}), "k", fast())
            .await
            .unwrap();
        assert_eq!(
            outcome,
            PostOutcome {
                status: 201,
                attempts: 2
            }
        );
        // The fast policy's backoff is 10 ms; only Retry-After explains a 1 s wait.
        assert!(started.elapsed() >= Duration::from_millis(900));
    }

    #[tokio::test]
    async fn invalid_urls_are_rejected_before_sending() {
        let err = post_dashboard("not a url", None, &json!({}), "k")
            .await
            .unwrap_err();
        assert!(matches!(err, ReportError::InvalidUrl { .. }));
        let err = post_dashboard("ftp://host/x", None, &json!({}), "k")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("not http or https"), "{err}");
    }
}
