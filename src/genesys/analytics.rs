//! Listing conversations with the Analytics conversation details API (GENESYS.md §2.1):
//! asynchronous jobs (`POST …/details/jobs`, poll the state, page the results by cursor) or the
//! synchronous query (`POST …/details/query` with `paging`), filtered by media type with
//! segment filters, over intervals the API accepts.
//!
//! Records are kept as JSON values (the lake stores them as received); [`ConversationInfo`]
//! pulls out what the transcript step needs.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{ApiClient, GenesysError};

/// `POST` submits a details job; `/{jobId}` is its status, `/{jobId}/results` its pages.
pub const JOBS_PATH: &str = "/api/v2/analytics/conversations/details/jobs";
/// `GET`: `{dataAvailabilityDate}`.
pub const AVAILABILITY_PATH: &str = "/api/v2/analytics/conversations/details/jobs/availability";
/// The synchronous details query.
pub const QUERY_PATH: &str = "/api/v2/analytics/conversations/details/query";
/// The synchronous query's largest page.
pub const QUERY_MAX_PAGE: u32 = 100;
/// The largest page of job results asked for. The SDK definitions give `pageSize` of
/// `getAnalyticsConversationsDetailsJobResults` no range ("The desired maximum number of
/// results", an optional integer, in the Python and JavaScript SDKs); clients tested on live
/// organizations page 1,000 (Estuary's `source-genesys`; a Go SDK client): see
/// docs/genesys-verified.md.
pub const JOB_RESULTS_MAX_PAGE: u32 = 1000;
/// The synchronous query pages through at most this many results.
pub const QUERY_MAX_RESULTS: u64 = 100_000;
/// The shortest interval a too-large synchronous query is split into.
pub const MIN_INTERVAL: chrono::Duration = chrono::Duration::hours(1);

/// How conversations are listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listing {
    /// Asynchronous details jobs with cursor paging (bulk and historical data).
    Jobs,
    /// The synchronous details query with page numbers (recent data, small ranges).
    Query,
}

impl Listing {
    /// `"jobs"` or `"query"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Listing::Jobs => "jobs",
            Listing::Query => "query",
        }
    }
}

/// A half-open time interval `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Interval {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Interval {
    /// The ISO-8601 `start/end` form the API takes.
    pub fn iso(&self) -> String {
        format!("{}/{}", iso(self.start), iso(self.end))
    }

    /// Consecutive intervals of at most `step` covering `[start, end)`.
    pub fn split(
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: chrono::Duration,
    ) -> Vec<Interval> {
        let step = step.max(MIN_INTERVAL);
        let mut out = Vec::new();
        let mut a = start;
        while a < end {
            let b = (a + step).min(end);
            out.push(Interval { start: a, end: b });
            a = b;
        }
        out
    }

    /// The two halves (on a whole hour), or `None` when the interval is an hour or shorter.
    pub fn halves(&self) -> Option<(Interval, Interval)> {
        let len = self.end - self.start;
        if len <= MIN_INTERVAL {
            return None;
        }
        let hours = (len.num_hours() / 2).max(1);
        let mid = self.start + chrono::Duration::hours(hours);
        (mid < self.end).then_some((
            Interval {
                start: self.start,
                end: mid,
            },
            Interval {
                start: mid,
                end: self.end,
            },
        ))
    }
}

/// `segmentFilters` keeping conversations with a session of one of these media types.
pub fn media_filter(media: &[String]) -> Value {
    let predicates: Vec<Value> = media
        .iter()
        .map(|m| {
            json!({"type": "dimension", "dimension": "mediaType", "operator": "matches", "value": m})
        })
        .collect();
    json!([{ "type": "or", "predicates": predicates }])
}

/// The body of `POST …/details/jobs`.
pub fn job_body(interval: &Interval, media: &[String]) -> Value {
    json!({
        "interval": interval.iso(),
        "order": "asc",
        "orderBy": "conversationStart",
        "segmentFilters": media_filter(media),
    })
}

/// The body of `POST …/details/query` for one page (numbered from 1).
pub fn query_body(interval: &Interval, media: &[String], page_size: u32, page: u32) -> Value {
    json!({
        "interval": interval.iso(),
        "order": "asc",
        "orderBy": "conversationStart",
        "segmentFilters": media_filter(media),
        "paging": {"pageSize": page_size.clamp(1, QUERY_MAX_PAGE), "pageNumber": page},
    })
}

/// One page of job results.
#[derive(Debug, Deserialize)]
pub struct JobPage {
    #[serde(default)]
    pub conversations: Vec<Value>,
    #[serde(default)]
    pub cursor: Option<String>,
    #[serde(rename = "dataAvailabilityDate", default)]
    pub data_availability_date: Option<String>,
}

/// One page of the synchronous query (`conversations` is absent when nothing matched).
#[derive(Debug, Deserialize)]
pub struct QueryPage {
    #[serde(default)]
    pub conversations: Vec<Value>,
    #[serde(rename = "totalHits", default)]
    pub total_hits: u64,
}

#[derive(Debug, Deserialize)]
struct JobStatus {
    state: String,
    #[serde(rename = "errorMessage", default)]
    error_message: Option<String>,
}

/// What the transcript step needs from a conversation record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConversationInfo {
    pub id: String,
    pub start: DateTime<Utc>,
    /// `conversationEnd`; `None` while the conversation is ongoing (or the value is unreadable).
    pub end: Option<DateTime<Utc>>,
    /// `voice` when any session is voice (a callback's customer has a `callback` session, then
    /// the `voice` call: GENESYS.md §2.2); otherwise the media type of the customer's first
    /// session, else of the first session, else `unknown`.
    pub media: String,
    /// `Some("callback")` when any session has mediaType `callback`.
    pub subtype: Option<String>,
    /// Every recorded voice session (customer and agent, all participants) to ask for a
    /// transcript, each once: recorded customer sessions first, then the others, each group by
    /// its first segment's start (sessions without one last, in record order).
    pub voice_sessions: Vec<VoiceSession>,
    /// The customer's addresses (email, phone), to tell who sent an email.
    pub customer_addresses: Vec<String>,
}

/// A recorded voice session of a conversation: a communication STA may have transcribed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoiceSession {
    /// The `sessionId`, the `communicationId` of the transcript endpoints.
    pub id: String,
    /// The `purpose` of the participant the session belongs to (`customer`, `agent`, …).
    pub purpose: String,
    /// The start of the session's first segment, for ordering.
    pub start: Option<DateTime<Utc>>,
}

fn is_customer(purpose: &str) -> bool {
    matches!(purpose, "customer" | "external")
}

fn time_of(v: Option<&Value>) -> Option<DateTime<Utc>> {
    v.and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// Reads the fields convlake needs from an `AnalyticsConversation`.
pub fn conversation_info(record: &Value) -> Result<ConversationInfo, String> {
    let id = record
        .get("conversationId")
        .and_then(Value::as_str)
        .ok_or("a conversation record has no conversationId")?
        .to_string();
    let start = record
        .get("conversationStart")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("conversation {id} has no conversationStart"))?;
    let start = DateTime::parse_from_rfc3339(start)
        .map_err(|e| format!("conversation {id}: conversationStart {start:?}: {e}"))?
        .with_timezone(&Utc);
    let mut customer_media = None;
    let mut first_media = None;
    let mut any_voice = false;
    let mut callback = false;
    // (not the customer's, no start, start, record order, session): the order to ask in.
    type Ranked = (bool, bool, Option<DateTime<Utc>>, usize, VoiceSession);
    let mut voice: Vec<Ranked> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut addresses = Vec::new();
    let participants = record
        .get("participants")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for p in participants {
        let purpose = p.get("purpose").and_then(Value::as_str).unwrap_or("");
        let customer = is_customer(purpose);
        for s in p
            .get("sessions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let m = s.get("mediaType").and_then(Value::as_str).unwrap_or("");
            if first_media.is_none() && !m.is_empty() {
                first_media = Some(m.to_string());
            }
            if customer && customer_media.is_none() && !m.is_empty() {
                customer_media = Some(m.to_string());
            }
            any_voice |= m == "voice";
            callback |= m == "callback";
            if customer {
                for key in ["addressFrom", "ani"] {
                    if let Some(a) = s.get(key).and_then(Value::as_str) {
                        addresses.push(a.to_ascii_lowercase());
                    }
                }
            }
            let recorded = s.get("recording").and_then(Value::as_bool) == Some(true);
            let sid = s.get("sessionId").and_then(Value::as_str);
            // Which session STA transcribed is undocumented, and a transferred call has several
            // recorded ones, each with its transcript: every recorded voice session is asked;
            // unrecorded sessions have nothing to transcribe.
            if let (Some(sid), true, true) = (sid, m == "voice", recorded) {
                if seen.insert(sid.to_string()) {
                    let first = time_of(
                        s.get("segments")
                            .and_then(Value::as_array)
                            .and_then(|segs| segs.first())
                            .and_then(|seg| seg.get("segmentStart")),
                    );
                    let n = voice.len();
                    voice.push((
                        !customer,
                        first.is_none(),
                        first,
                        n,
                        VoiceSession {
                            id: sid.to_string(),
                            purpose: purpose.to_string(),
                            start: first,
                        },
                    ));
                }
            }
        }
    }
    voice.sort_by_key(|r| (r.0, r.1, r.2, r.3));
    let media = if any_voice {
        "voice".to_string()
    } else {
        customer_media
            .or(first_media)
            .unwrap_or_else(|| "unknown".into())
    };
    Ok(ConversationInfo {
        id,
        start,
        end: time_of(record.get("conversationEnd")),
        media,
        subtype: callback.then(|| "callback".to_string()),
        voice_sessions: voice.into_iter().map(|r| r.4).collect(),
        customer_addresses: addresses,
    })
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8], what: &str) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("not a valid {what}: {e}"))
}

/// Submits a details job and returns its id.
pub async fn submit_job(
    client: &ApiClient,
    interval: &Interval,
    media: &[String],
) -> Result<String, GenesysError> {
    #[derive(Deserialize)]
    struct Submitted {
        #[serde(rename = "jobId")]
        job_id: String,
    }
    let validate = |b: &[u8]| parse::<Submitted>(b, "job submission").map(|_| ());
    let body = client
        .send(
            Method::POST,
            JOBS_PATH,
            Some(&job_body(interval, media)),
            &validate,
        )
        .await?;
    parse::<Submitted>(&body, "job submission")
        .map(|s| s.job_id)
        .map_err(|reason| GenesysError::Malformed {
            url: JOBS_PATH.into(),
            attempts: 1,
            reason,
        })
}

/// Polls a job until it is FULFILLED: after 250 ms, then doubling up to `max_poll`. A job still
/// QUEUED or PENDING after `timeout` is an error ([`GenesysError::JobTimeout`]).
pub async fn wait_for_job(
    client: &ApiClient,
    job: &str,
    max_poll: Duration,
    timeout: Duration,
) -> Result<(), GenesysError> {
    let path = format!("{JOBS_PATH}/{job}");
    let validate = |b: &[u8]| parse::<JobStatus>(b, "job status").map(|_| ());
    let mut wait = Duration::from_millis(250).min(max_poll);
    let started = std::time::Instant::now();
    loop {
        tokio::time::sleep(wait).await;
        let body = client.send(Method::GET, &path, None, &validate).await?;
        let status: JobStatus =
            parse(&body, "job status").map_err(|reason| GenesysError::Malformed {
                url: path.clone(),
                attempts: 1,
                reason,
            })?;
        match status.state.as_str() {
            "FULFILLED" => return Ok(()),
            "QUEUED" | "PENDING" => {
                let waited = started.elapsed();
                if waited >= timeout {
                    return Err(GenesysError::JobTimeout {
                        job: job.to_string(),
                        state: status.state,
                        waited_secs: waited.as_secs(),
                        timeout_secs: timeout.as_secs(),
                    });
                }
                // Never sleep past the deadline.
                wait = wait.min(timeout.saturating_sub(waited));
            }
            other => {
                return Err(GenesysError::JobFailed {
                    job: job.to_string(),
                    state: other.to_string(),
                    message: status.error_message.unwrap_or_default(),
                })
            }
        }
        wait = wait
            .saturating_mul(2)
            .min(max_poll)
            .max(Duration::from_millis(1));
    }
}

/// The results path of a job page (`page_size` kept within 1..=[`JOB_RESULTS_MAX_PAGE`]).
pub fn results_path(job: &str, cursor: Option<&str>, page_size: u32) -> String {
    let page_size = page_size.clamp(1, JOB_RESULTS_MAX_PAGE);
    let mut p = format!("{JOBS_PATH}/{job}/results?pageSize={page_size}");
    if let Some(c) = cursor {
        p.push_str("&cursor=");
        p.push_str(&url::form_urlencoded::byte_serialize(c.as_bytes()).collect::<String>());
    }
    p
}

/// One page of a job's results.
pub async fn job_page(
    client: &ApiClient,
    job: &str,
    cursor: Option<&str>,
    page_size: u32,
) -> Result<JobPage, GenesysError> {
    let path = results_path(job, cursor, page_size);
    let validate = |b: &[u8]| parse::<JobPage>(b, "page of job results").map(|_| ());
    let body = client.send(Method::GET, &path, None, &validate).await?;
    parse(&body, "page of job results").map_err(|reason| GenesysError::Malformed {
        url: path,
        attempts: 1,
        reason,
    })
}

/// One page of the synchronous query.
pub async fn query_page(
    client: &ApiClient,
    interval: &Interval,
    media: &[String],
    page_size: u32,
    page: u32,
) -> Result<QueryPage, GenesysError> {
    let body_json = query_body(interval, media, page_size, page);
    let validate = |b: &[u8]| parse::<QueryPage>(b, "page of the details query").map(|_| ());
    let body = client
        .send(Method::POST, QUERY_PATH, Some(&body_json), &validate)
        .await?;
    parse(&body, "page of the details query").map_err(|reason| GenesysError::Malformed {
        url: QUERY_PATH.into(),
        attempts: 1,
        reason,
    })
}

/// `dataAvailabilityDate`: job results hold the data up to this time.
pub async fn availability(client: &ApiClient) -> Result<DateTime<Utc>, GenesysError> {
    #[derive(Deserialize)]
    struct Availability {
        #[serde(rename = "dataAvailabilityDate")]
        date: DateTime<Utc>,
    }
    let validate = |b: &[u8]| parse::<Availability>(b, "availability").map(|_| ());
    let body = client
        .send(Method::GET, AVAILABILITY_PATH, None, &validate)
        .await?;
    parse::<Availability>(&body, "availability")
        .map(|a| a.date)
        .map_err(|reason| GenesysError::Malformed {
            url: AVAILABILITY_PATH.into(),
            attempts: 1,
            reason,
        })
}

/// True for the query's 400s that a shorter interval avoids (too many results, too long).
pub fn needs_shorter_interval(e: &GenesysError) -> bool {
    match e {
        GenesysError::Rejected {
            status: 400,
            message,
            ..
        } => {
            message.contains("Pagination may not exceed")
                || message.contains("does not exceed")
                || message.contains("interval")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_split_into_intervals_and_halves() {
        let iv = Interval::split(
            t("2026-03-01T00:00:00Z"),
            t("2026-03-17T00:00:00Z"),
            chrono::Duration::days(7),
        );
        assert_eq!(iv.len(), 3);
        assert_eq!(iv[2].start, t("2026-03-15T00:00:00Z"));
        assert_eq!(
            iv[0].iso(),
            "2026-03-01T00:00:00.000Z/2026-03-08T00:00:00.000Z"
        );
        let (a, b) = iv[2].halves().unwrap();
        assert_eq!((a.end, b.end), (t("2026-03-16T00:00:00Z"), iv[2].end));
        let hour = Interval {
            start: t("2026-03-01T00:00:00Z"),
            end: t("2026-03-01T01:00:00Z"),
        };
        assert!(hour.halves().is_none());
    }

    #[test]
    fn records_give_the_sessions_to_ask() {
        let rec = json!({
            "conversationId": "c1",
            "conversationStart": "2026-03-01T10:00:00.000Z",
            "participants": [
                {"purpose": "ivr", "sessions": [{"sessionId": "s0", "mediaType": "voice"}]},
                {"purpose": "agent", "sessions": [{"sessionId": "s2", "mediaType": "voice", "recording": true}]},
                {"purpose": "customer", "sessions": [{"sessionId": "s1", "mediaType": "voice", "recording": true, "ani": "tel:+1"}]},
            ]
        });
        let info = conversation_info(&rec).unwrap();
        assert_eq!(info.media, "voice");
        assert_eq!(info.subtype, None);
        assert_eq!(info.end, None, "ongoing: no conversationEnd");
        let ids: Vec<&str> = info.voice_sessions.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["s1", "s2"]);
        assert_eq!(info.voice_sessions[1].purpose, "agent");
        assert_eq!(info.customer_addresses, ["tel:+1"]);
        assert!(conversation_info(&json!({"conversationId": "x"})).is_err());
    }

    #[test]
    fn a_callback_is_voice_with_subtype_callback() {
        let rec = json!({
            "conversationId": "cb",
            "conversationStart": "2026-03-01T10:00:00.000Z",
            "conversationEnd": "2026-03-01T10:20:00.000Z",
            "participants": [
                {"purpose": "customer", "sessions": [
                    {"sessionId": "k1", "mediaType": "callback"},
                    {"sessionId": "v1", "mediaType": "voice", "recording": true,
                     "segments": [{"segmentStart": "2026-03-01T10:05:00.000Z"}]}]},
                {"purpose": "agent", "sessions": [
                    {"sessionId": "k2", "mediaType": "callback"},
                    {"sessionId": "v2", "mediaType": "voice", "recording": true}]},
            ]
        });
        let info = conversation_info(&rec).unwrap();
        assert_eq!(info.media, "voice");
        assert_eq!(info.subtype.as_deref(), Some("callback"));
        assert_eq!(info.end, Some(t("2026-03-01T10:20:00Z")));
        let ids: Vec<&str> = info.voice_sessions.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["v1", "v2"]);
        assert_eq!(
            info.voice_sessions[0].start,
            Some(t("2026-03-01T10:05:00Z"))
        );
        // A callback not yet placed (no voice session) keeps its own media type.
        let pending = json!({
            "conversationId": "cb2",
            "conversationStart": "2026-03-01T10:00:00.000Z",
            "participants": [{"purpose": "customer", "sessions": [{"sessionId": "k", "mediaType": "callback"}]}]
        });
        let info = conversation_info(&pending).unwrap();
        assert_eq!(
            (info.media.as_str(), info.subtype.as_deref()),
            ("callback", Some("callback"))
        );
        assert!(info.voice_sessions.is_empty());
        // Chat and email keep the customer's media type.
        let chat = json!({
            "conversationId": "ch",
            "conversationStart": "2026-03-01T10:00:00.000Z",
            "participants": [
                {"purpose": "acd", "sessions": [{"mediaType": "email"}]},
                {"purpose": "customer", "sessions": [{"mediaType": "chat"}]}]
        });
        assert_eq!(conversation_info(&chat).unwrap().media, "chat");
    }

    #[test]
    fn a_transfer_gives_every_recorded_session_customer_first_then_by_start() {
        let seg = |t: &str| json!([{"segmentStart": t}]);
        let rec = json!({
            "conversationId": "tr",
            "conversationStart": "2026-03-01T10:00:00.000Z",
            "participants": [
                {"purpose": "agent", "sessions": [{"sessionId": "a2", "mediaType": "voice", "recording": true, "segments": seg("2026-03-01T10:09:00Z")}]},
                {"purpose": "agent", "sessions": [{"sessionId": "a1", "mediaType": "voice", "recording": true, "segments": seg("2026-03-01T10:01:00Z")}]},
                {"purpose": "customer", "sessions": [
                    {"sessionId": "c2", "mediaType": "voice", "recording": true, "segments": seg("2026-03-01T10:08:00Z")},
                    {"sessionId": "c0", "mediaType": "voice", "recording": true},
                    {"sessionId": "c1", "mediaType": "voice", "recording": true, "segments": seg("2026-03-01T10:00:30Z")},
                    {"sessionId": "c1", "mediaType": "voice", "recording": true},
                    {"sessionId": "cx", "mediaType": "voice", "recording": false}]},
                {"purpose": "ivr", "sessions": [{"sessionId": "i", "mediaType": "voice"}]},
            ]
        });
        let info = conversation_info(&rec).unwrap();
        let got: Vec<(&str, &str)> = info
            .voice_sessions
            .iter()
            .map(|s| (s.id.as_str(), s.purpose.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("c1", "customer"),
                ("c2", "customer"),
                ("c0", "customer"),
                ("a1", "agent"),
                ("a2", "agent")
            ]
        );
    }

    #[test]
    fn hostile_conversation_starts_are_kept_or_refused_by_name() {
        for (start, year) in [
            ("1901-03-01T10:00:00.000Z", 1901),
            ("1969-12-31T23:59:59.999Z", 1969),
            ("2199-01-01T00:00:00Z", 2199),
            ("9999-12-31T23:59:59.999Z", 9999),
        ] {
            let info =
                conversation_info(&json!({"conversationId": "c1", "conversationStart": start}))
                    .unwrap();
            assert_eq!(chrono::Datelike::year(&info.start), year);
        }
        for bad in [
            json!("yesterday"),
            json!("+275760-09-13T00:00:00Z"),
            json!(17),
            json!(null),
        ] {
            let e = conversation_info(&json!({"conversationId": "c9", "conversationStart": bad}))
                .unwrap_err();
            assert!(e.contains("c9"), "{e}");
        }
    }

    /// A details-jobs server whose jobs stay QUEUED forever.
    async fn stuck_jobs_server() -> String {
        let app = axum::Router::new()
            .route(
                "/oauth/token",
                axum::routing::post(|| async {
                    r#"{"access_token":"t","token_type":"bearer","expires_in":86400}"#
                }),
            )
            .fallback(|| async {
                (
                    [("content-type", "application/json")],
                    r#"{"state":"QUEUED"}"#,
                )
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    #[tokio::test]
    async fn a_job_queued_past_its_timeout_is_a_clear_error() {
        let url = stuck_jobs_server().await;
        let client = ApiClient::new(
            crate::genesys::Endpoints::resolve("x", Some(&url), None).unwrap(),
            crate::genesys::Credentials {
                client_id: "id".into(),
                client_secret: crate::secret::Secret::new("s"),
            },
            crate::genesys::RetryPolicy::default(),
        )
        .unwrap();
        let e = wait_for_job(
            &client,
            "job-1",
            Duration::from_millis(40),
            Duration::from_millis(300),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&e, GenesysError::JobTimeout { job, state, .. } if job == "job-1" && state == "QUEUED"),
            "{e}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains("job-1") && msg.contains("--job-timeout") && msg.contains("re-run"),
            "{msg}"
        );
        // Polled several times, not once, and not without end.
        assert!(client.stats().requests >= 3, "{:?}", client.stats());
    }

    #[test]
    fn bodies_follow_the_api() {
        let iv = Interval {
            start: t("2026-03-01T00:00:00Z"),
            end: t("2026-03-02T00:00:00Z"),
        };
        let q = query_body(&iv, &["voice".into(), "chat".into()], 500, 2);
        assert_eq!(q["paging"], json!({"pageSize": 100, "pageNumber": 2}));
        assert_eq!(q["segmentFilters"][0]["predicates"][1]["value"], "chat");
        assert_eq!(
            results_path("j", Some("a+b/c"), 100),
            format!("{JOBS_PATH}/j/results?pageSize=100&cursor=a%2Bb%2Fc")
        );
        assert_eq!(
            results_path("j", None, 1000),
            format!("{JOBS_PATH}/j/results?pageSize=1000")
        );
        assert_eq!(
            results_path("j", None, 5000),
            format!("{JOBS_PATH}/j/results?pageSize={JOB_RESULTS_MAX_PAGE}")
        );
        assert_eq!(
            results_path("j", None, 0),
            format!("{JOBS_PATH}/j/results?pageSize=1")
        );
    }
}
