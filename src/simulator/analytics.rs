//! The real Genesys Cloud endpoints (GENESYS.md §2, §8): analytics conversation details jobs
//! and the synchronous details query, Speech & Text Analytics transcript links with a local
//! "S3" behind them, and conversation recordings with chat, messaging and email transcripts.
//!
//! Invariants:
//! - A conversation record, transcript document or recording is a pure function of
//!   (configuration, conversation index): the same request gives the same bytes.
//! - Jobs use "activity in the interval" semantics (a conversation spanning two intervals is in
//!   both); the query returns conversations "that started on a day touched by the interval" and
//!   were active in it. Both order by `conversationStart`.
//! - Result cursors are stateless (the next conversation index), so a job's pages never shift.
//! - Presigned links carry their issue time and a keyed signature; they expire after
//!   `transcript_url_ttl_secs` (403) and refuse an `Authorization` header (400), as S3 does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::gen::{uuid_like, Conversation, Generator, Media, Rng, MAX_SPAN};
use super::server::{
    bad_request, error, iso, json as json_response, lock, to_json, with_rate, AppState,
    CorrelationId,
};
use super::SimConfig;

/// Where the simulator's "S3" serves transcript documents.
pub(super) const PRESIGNED_PREFIX: &str = "/_s3/";

const JOBS: &str = "/api/v2/analytics/conversations/details/jobs";
const DETAILS_QUERY: &str = "/api/v2/analytics/conversations/details/query";
const STREAM_SESSION: u64 = 0x5e55;
const STREAM_DOC: u64 = 0xd0c5;
const STREAM_READY: u64 = 0x4ead;
const MAX_RESULTS_PAGE: usize = 1000;

type St = State<Arc<AppState>>;

/// Mutable server state for these endpoints.
pub(super) struct AnalyticsState {
    jobs: Mutex<HashMap<String, Job>>,
    /// conversation id → index, built on first use.
    ids: OnceLock<HashMap<String, usize>>,
    /// Digital conversations whose recordings were already asked for, and when first.
    prepared: Mutex<HashMap<usize, std::time::Instant>>,
    key: [u8; 32],
}

impl AnalyticsState {
    pub(super) fn new(cfg: &SimConfig) -> AnalyticsState {
        let key = *blake3::hash(format!("convlake-sim-s3|{}", cfg.seed).as_bytes()).as_bytes();
        AnalyticsState {
            jobs: Mutex::new(HashMap::new()),
            ids: OnceLock::new(),
            prepared: Mutex::new(HashMap::new()),
            key,
        }
    }
}

struct Job {
    query: Listing,
    polls: u32,
    submitted: DateTime<Utc>,
    cancelled: bool,
}

/// A parsed listing request: which conversations, in which window.
#[derive(Clone)]
struct Listing {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    filter: Filter,
    start_of_day: bool,
    limit: Option<usize>,
}

/// A details filter tree, reduced to what the simulator can decide.
#[derive(Clone, Debug)]
enum Filter {
    All(Vec<Filter>),
    Any(Vec<Filter>),
    Media(String),
    ConversationId(String),
    True,
}

impl Filter {
    fn matches(&self, media: Media, id: &dyn Fn() -> String) -> bool {
        match self {
            Filter::All(fs) => fs.iter().all(|f| f.matches(media, id)),
            Filter::Any(fs) => fs.is_empty() || fs.iter().any(|f| f.matches(media, id)),
            Filter::Media(m) => m.eq_ignore_ascii_case(media.as_str()),
            Filter::ConversationId(c) => *c == id(),
            Filter::True => true,
        }
    }
}

/// Registers the routes on the server's router.
pub(super) fn routes(router: Router<Arc<AppState>>) -> Router<Arc<AppState>> {
    router
        .route(JOBS, axum::routing::post(submit_job))
        .route(&format!("{JOBS}/availability"), get(availability))
        .route(
            &format!("{JOBS}/{{job}}"),
            get(job_status).delete(cancel_job),
        )
        .route(&format!("{JOBS}/{{job}}/results"), get(job_results))
        .route(DETAILS_QUERY, axum::routing::post(details_query))
        .route(
            "/api/v2/speechandtextanalytics/conversations/{cid}/communications/{sid}/transcripturl",
            get(transcript_url),
        )
        .route(
            &format!("{PRESIGNED_PREFIX}transcripts/{{cid}}/{{file}}"),
            get(presigned),
        )
        .route("/api/v2/conversations/{cid}/recordings", get(recordings))
}

// ---------------------------------------------------------------------------------------------
// Request parsing

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListingBody {
    interval: Option<String>,
    #[serde(default)]
    segment_filters: Vec<Value>,
    #[serde(default)]
    conversation_filters: Vec<Value>,
    order: Option<String>,
    #[serde(default)]
    start_of_day_interval_matching: bool,
    limit: Option<i64>,
    paging: Option<Paging>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Paging {
    page_size: Option<i64>,
    page_number: Option<i64>,
}

fn parse_interval(s: &str) -> Result<(DateTime<Utc>, DateTime<Utc>), String> {
    let (a, b) = s
        .split_once('/')
        .ok_or_else(|| format!("interval {s:?} must be two ISO-8601 times separated by '/'"))?;
    let t = |x: &str| {
        DateTime::parse_from_rfc3339(x.trim())
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| format!("interval: {x:?} is not an ISO-8601 time: {e}"))
    };
    let (start, end) = (t(a)?, t(b)?);
    if end <= start {
        return Err(format!("interval {s:?} ends before it starts"));
    }
    Ok((start, end))
}

fn parse_filter(v: &Value) -> Result<Filter, String> {
    let kind = v.get("type").and_then(Value::as_str).unwrap_or("and");
    let mut parts = Vec::new();
    for p in v
        .get("predicates")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        parts.push(parse_predicate(p)?);
    }
    for c in v
        .get("clauses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        parts.push(parse_filter(c)?);
    }
    match kind {
        "and" => Ok(Filter::All(parts)),
        "or" => Ok(Filter::Any(parts)),
        other => Err(format!("filter type {other:?} must be \"and\" or \"or\"")),
    }
}

fn parse_predicate(p: &Value) -> Result<Filter, String> {
    let operator = p
        .get("operator")
        .and_then(Value::as_str)
        .unwrap_or("matches");
    if !["matches", "exists", "notExists"].contains(&operator) {
        return Err(format!(
            "predicate operator {operator:?} must be matches, exists or notExists"
        ));
    }
    let dimension = p.get("dimension").and_then(Value::as_str);
    let value = p.get("value").and_then(Value::as_str);
    Ok(match (dimension, operator, value) {
        (Some("mediaType"), "matches", Some(v)) => Filter::Media(v.to_string()),
        (Some("conversationId"), "matches", Some(v)) => Filter::ConversationId(v.to_string()),
        _ => Filter::True,
    })
}

fn parse_listing(body: &[u8]) -> Result<(Listing, ListingBody), String> {
    let b: ListingBody =
        serde_json::from_slice(body).map_err(|e| format!("invalid query body: {e}"))?;
    let interval = b
        .interval
        .as_deref()
        .ok_or("interval is required, e.g. 2026-03-01T00:00:00.000Z/2026-03-08T00:00:00.000Z")?;
    let (start, end) = parse_interval(interval)?;
    if let Some(o) = b.order.as_deref() {
        if !["asc", "unordered"].contains(&o) {
            return Err(format!(
                "order {o:?}: the simulator supports asc and unordered"
            ));
        }
    }
    let mut filters = Vec::new();
    for f in b.segment_filters.iter().chain(&b.conversation_filters) {
        filters.push(parse_filter(f)?);
    }
    let limit = match b.limit {
        Some(n) if n < 1 => return Err(format!("limit must be positive, got {n}")),
        n => n.map(|n| n as usize),
    };
    Ok((
        Listing {
            start,
            end,
            filter: Filter::All(filters),
            start_of_day: b.start_of_day_interval_matching,
            limit,
        },
        b,
    ))
}

// ---------------------------------------------------------------------------------------------
// Listing

fn midnight(t: DateTime<Utc>) -> DateTime<Utc> {
    t.date_naive().and_time(NaiveTime::MIN).and_utc()
}

impl AppState {
    /// Indexes of conversations with activity in the listing's interval that pass its filter,
    /// from `from_index` on, in start order. `touched_days` adds the query's rule: the
    /// conversation started on a day the interval touches.
    fn matching(
        &self,
        l: &Listing,
        touched_days: bool,
        from_index: usize,
    ) -> impl Iterator<Item = usize> + '_ {
        let l = l.clone();
        let range = self.gen.index_range(l.start - MAX_SPAN, l.end);
        let first_day = midnight(l.start);
        let last_day_end = midnight(l.end - Duration::milliseconds(1)) + Duration::days(1);
        (range.start.max(from_index)..range.end).filter(move |&i| {
            let start = self.gen.start(i);
            if touched_days && !(start >= first_day && start < last_day_end) {
                return false;
            }
            if l.start_of_day && start < first_day {
                return false;
            }
            let media = self.gen.media(i);
            l.filter.matches(media, &|| self.gen.id(i)) && self.gen.end(i) > l.start
        })
    }

    fn availability_date(&self) -> DateTime<Utc> {
        self.cfg.data_availability.unwrap_or_else(Utc::now)
    }

    fn index_of(&self, id: &str) -> Option<usize> {
        let ids = self
            .analytics
            .ids
            .get_or_init(|| (0..self.gen.len()).map(|i| (self.gen.id(i), i)).collect());
        ids.get(id).copied()
    }
}

fn not_found(what: String, corr: &CorrelationId) -> Response {
    error(StatusCode::NOT_FOUND, "not.found", what, corr)
}

async fn submit_job(
    State(st): St,
    Extension(corr): Extension<CorrelationId>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let rate = match st.admit(&headers, &corr) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let (listing, raw) = match parse_listing(&body) {
        Ok(l) => l,
        Err(m) => return bad_request(m, &corr),
    };
    let job_id = uuid_like(rand::random::<u64>());
    if let Some(i) = raw.interval {
        lock(&st.counters.job_intervals).push(i);
    }
    lock(&st.analytics.jobs).insert(
        job_id.clone(),
        Job {
            query: listing,
            polls: 0,
            submitted: Utc::now(),
            cancelled: false,
        },
    );
    let body = json!({ "jobId": job_id });
    with_rate(
        json_response(StatusCode::ACCEPTED, body.to_string().into_bytes()),
        &rate,
    )
}

async fn availability(
    State(st): St,
    Extension(corr): Extension<CorrelationId>,
    headers: HeaderMap,
) -> Response {
    let rate = match st.admit(&headers, &corr) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let body = json!({ "dataAvailabilityDate": iso(st.availability_date()) });
    with_rate(
        json_response(StatusCode::OK, body.to_string().into_bytes()),
        &rate,
    )
}

async fn job_status(
    State(st): St,
    Extension(corr): Extension<CorrelationId>,
    Path(job): Path<String>,
    headers: HeaderMap,
) -> Response {
    let rate = match st.admit(&headers, &corr) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let mut jobs = lock(&st.analytics.jobs);
    let Some(j) = jobs.get_mut(&job) else {
        return not_found(format!("no details job {job}"), &corr);
    };
    j.polls += 1;
    let state = job_state(j, st.cfg.job_polls);
    let mut body = json!({ "state": state, "submissionDate": iso(j.submitted) });
    if state == "FULFILLED" {
        body["completionDate"] = json!(iso(j.submitted));
        body["expirationDate"] = json!(iso(j.submitted + Duration::days(1)));
    }
    with_rate(
        json_response(StatusCode::OK, body.to_string().into_bytes()),
        &rate,
    )
}

fn job_state(j: &Job, polls: u32) -> &'static str {
    if j.cancelled {
        "CANCELLED"
    } else if j.polls >= polls {
        "FULFILLED"
    } else if j.polls <= 1 {
        "QUEUED"
    } else {
        "PENDING"
    }
}

async fn cancel_job(
    State(st): St,
    Extension(corr): Extension<CorrelationId>,
    Path(job): Path<String>,
    headers: HeaderMap,
) -> Response {
    let rate = match st.admit(&headers, &corr) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    match lock(&st.analytics.jobs).get_mut(&job) {
        Some(j) => {
            j.cancelled = true;
            with_rate(StatusCode::NO_CONTENT.into_response(), &rate)
        }
        None => not_found(format!("no details job {job}"), &corr),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResultsParams {
    cursor: Option<String>,
    page_size: Option<usize>,
}

/// Where the next results page starts: a conversation index and the page number.
#[derive(Serialize, Deserialize)]
struct ResultsCursor {
    next: usize,
    page: usize,
    sent: usize,
}

async fn job_results(
    State(st): St,
    Extension(corr): Extension<CorrelationId>,
    Path(job): Path<String>,
    Query(params): Query<ResultsParams>,
    headers: HeaderMap,
) -> Response {
    let rate = match st.admit(&headers, &corr) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let listing = {
        let jobs = lock(&st.analytics.jobs);
        let Some(j) = jobs.get(&job) else {
            return not_found(format!("no details job {job}"), &corr);
        };
        let state = job_state(j, st.cfg.job_polls);
        if state != "FULFILLED" {
            return bad_request(
                format!("details job {job} is {state}; poll its status until FULFILLED"),
                &corr,
            );
        }
        j.query.clone()
    };
    let size = params.page_size.unwrap_or(100);
    if !(1..=MAX_RESULTS_PAGE).contains(&size) {
        return bad_request(
            format!("pageSize must be between 1 and {MAX_RESULTS_PAGE}"),
            &corr,
        );
    }
    let cursor = match params.cursor.as_deref() {
        None => ResultsCursor {
            next: 0,
            page: 0,
            sent: 0,
        },
        Some(c) => match URL_SAFE_NO_PAD
            .decode(c.as_bytes())
            .ok()
            .and_then(|raw| serde_json::from_slice::<ResultsCursor>(&raw).ok())
        {
            Some(c) => c,
            None => return bad_request(format!("invalid cursor {c:?}"), &corr),
        },
    };
    let cap = listing.limit.unwrap_or(usize::MAX);
    let take = size.min(cap.saturating_sub(cursor.sent));
    let mut it = st.matching(&listing, false, cursor.next);
    let indexes: Vec<usize> = it.by_ref().take(take).collect();
    let more = cursor.sent + indexes.len() < cap && it.next().is_some();
    let conversations: Vec<Value> = indexes.iter().map(|&i| record(&st.gen, i, true)).collect();
    let mut body = json!({
        "conversations": conversations,
        "dataAvailabilityDate": iso(st.availability_date()),
    });
    if more {
        let next = ResultsCursor {
            next: indexes.last().map_or(cursor.next, |i| i + 1),
            page: cursor.page + 1,
            sent: cursor.sent + indexes.len(),
        };
        body["cursor"] = json!(URL_SAFE_NO_PAD.encode(to_json(&next)));
    }
    let mut bytes = body.to_string().into_bytes();
    if st.cfg.faults.malformed_page == Some(cursor.page) {
        bytes.truncate(bytes.len() / 2);
    }
    with_rate(json_response(StatusCode::OK, bytes), &rate)
}

async fn details_query(
    State(st): St,
    Extension(corr): Extension<CorrelationId>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let rate = match st.admit(&headers, &corr) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let (listing, raw) = match parse_listing(&body) {
        Ok(l) => l,
        Err(m) => return bad_request(m, &corr),
    };
    let max_days = st.cfg.max_query_interval_days;
    if listing.end - listing.start > Duration::days(i64::from(max_days)) {
        let m = format!("You must specify a search interval as part of your query that does not exceed {max_days} days.");
        return bad_request(m, &corr);
    }
    let paging = raw.paging.unwrap_or(Paging {
        page_size: None,
        page_number: None,
    });
    let size = paging.page_size.unwrap_or(25);
    let number = paging.page_number.unwrap_or(1);
    if !(1..=100).contains(&size) {
        return bad_request(
            format!("paging.pageSize must be between 1 and 100, got {size}"),
            &corr,
        );
    }
    if number < 1 {
        return bad_request(
            format!("paging.pageNumber must be at least 1, got {number}"),
            &corr,
        );
    }
    lock(&st.counters.query_pages).push((raw.interval.clone().unwrap_or_default(), number as u64));
    let (size, number) = (size as usize, number as usize);
    if size * number > st.cfg.max_query_results {
        let m = format!(
            "Pagination may not exceed {} results.",
            st.cfg.max_query_results
        );
        return bad_request(m, &corr);
    }
    let all: Vec<usize> = st.matching(&listing, true, 0).collect();
    let total = all.len();
    let conversations: Vec<Value> = all
        .iter()
        .skip(size * (number - 1))
        .take(size)
        .map(|&i| record(&st.gen, i, false))
        .collect();
    let body = if conversations.is_empty() {
        json!({ "totalHits": total })
    } else {
        json!({ "conversations": conversations, "totalHits": total })
    };
    let mut bytes = body.to_string().into_bytes();
    if st.cfg.faults.malformed_page == Some(number - 1) {
        bytes.truncate(bytes.len() / 2);
    }
    with_rate(json_response(StatusCode::OK, bytes), &rate)
}

// ---------------------------------------------------------------------------------------------
// Conversation records

/// The ids of a conversation's participants and sessions, derived from its index.
struct Ids {
    division: String,
    customer: (String, String),
    ivr: (String, String),
    acd: (String, String),
    agent: (String, String),
    user: String,
    queue: String,
    org: String,
}

fn ids(gen: &Generator, i: usize) -> Ids {
    let mut r = Rng::stream(gen_seed(gen), i as u64, STREAM_SESSION);
    let mut pair = || (uuid_like(r.next_u64()), uuid_like(r.next_u64()));
    let customer = pair();
    let ivr = pair();
    let acd = pair();
    let agent = pair();
    let seed = gen_seed(gen);
    let user = uuid_like(seed ^ 0xa6e7 ^ (i as u64 % 17));
    let queue = uuid_like(seed ^ 0x9e3e ^ gen.media(i) as u64);
    Ids {
        division: uuid_like(seed ^ 0xd1f),
        customer,
        ivr,
        acd,
        agent,
        user,
        queue,
        org: uuid_like(seed ^ 0x0e6),
    }
}

fn gen_seed(gen: &Generator) -> u64 {
    gen.seed()
}

fn customer_address(media: Media, i: usize) -> String {
    match media {
        Media::Voice | Media::Message => format!("tel:+1555{:07}", i % 10_000_000),
        Media::Email => format!("customer{i}@example.com"),
        Media::Chat => format!("Customer {i}"),
    }
}

const SUPPORT_ADDRESS: &str = "support@convlake.example";
const SUPPORT_NUMBER: &str = "tel:+18005550100";

fn agent_name(i: usize) -> String {
    format!("Agent {}", i % 17 + 1)
}

/// An `AnalyticsConversation` (with participant `attributes` when `attributes` is set: job
/// results carry them, the synchronous query does not).
fn record(gen: &Generator, i: usize, attributes: bool) -> Value {
    let conv = gen.outline(i);
    let media = conv.media;
    let ids = ids(gen, i);
    let start = conv.start;
    let end = gen.end(i);
    let first_human = conv
        .interactions
        .iter()
        .find(|it| it.participant != "ivr")
        .map_or(start, |it| it.timestamp);
    let m = media.as_str();
    let addr = customer_address(media, i);
    let (to_addr, provider) = match media {
        Media::Voice => (SUPPORT_NUMBER, "Edge"),
        Media::Email => (SUPPORT_ADDRESS, "PureCloud Email"),
        Media::Chat => ("Support", "PureCloud Webchat v2"),
        Media::Message => (SUPPORT_NUMBER, "PureCloud Messaging"),
    };
    let segment = |from: DateTime<Utc>, to: DateTime<Utc>, kind: &str, queue: bool| {
        let mut s = json!({
            "segmentStart": iso(from),
            "segmentEnd": iso(to),
            "segmentType": kind,
        });
        if queue {
            s["queueId"] = json!(ids.queue);
        }
        s
    };
    let session = |sid: &str, direction: &str, segments: Vec<Value>, recording: bool| {
        let mut s = json!({
            "sessionId": sid,
            "mediaType": m,
            "direction": direction,
            "provider": provider,
            "segments": segments,
        });
        match media {
            Media::Voice => {
                s["ani"] = json!(addr);
                s["dnis"] = json!(to_addr);
            }
            Media::Email | Media::Message | Media::Chat => {
                s["addressFrom"] = json!(addr);
                s["addressTo"] = json!(to_addr);
            }
        }
        if media == Media::Message {
            s["messageType"] = json!("webmessaging");
        }
        if recording {
            s["recording"] = json!(true);
        }
        s
    };
    let mut participants = vec![json!({
        "participantId": ids.customer.0,
        "participantName": "Customer",
        "purpose": "customer",
        "sessions": [session(
            &ids.customer.1,
            "inbound",
            vec![segment(start, end, "interact", false)],
            media == Media::Voice,
        )],
    })];
    let has_ivr = conv
        .interactions
        .first()
        .is_some_and(|f| f.participant == "ivr");
    if has_ivr {
        participants.push(json!({
            "participantId": ids.ivr.0,
            "participantName": "Main IVR",
            "purpose": "ivr",
            "sessions": [session(&ids.ivr.1, "inbound", vec![segment(start, first_human, "ivr", false)], false)],
        }));
    }
    participants.push(json!({
        "participantId": ids.acd.0,
        "participantName": "Support",
        "purpose": "acd",
        "sessions": [session(&ids.acd.1, "inbound", vec![segment(start, first_human, "interact", true)], false)],
    }));
    let mut agent = session(
        &ids.agent.1,
        "inbound",
        vec![segment(first_human, end, "interact", true)],
        false,
    );
    agent["metrics"] = json!([
        {"name": "tTalk", "value": (end - first_human).num_milliseconds(), "emitDate": iso(end)},
    ]);
    participants.push(json!({
        "participantId": ids.agent.0,
        "participantName": agent_name(i),
        "purpose": "agent",
        "userId": ids.user,
        "sessions": [agent],
    }));
    if attributes {
        if let Some(c) = participants.first_mut() {
            c["attributes"] = json!({ "language": "en-us" });
        }
    }
    let mut r = json!({
        "conversationId": conv.id,
        "conversationStart": iso(start),
        "conversationEnd": iso(end),
        "originatingDirection": "inbound",
        "divisionIds": [ids.division],
        "participants": participants,
    });
    if media == Media::Voice {
        r["mediaStatsMinConversationMos"] = json!(4.41);
    }
    r
}

// ---------------------------------------------------------------------------------------------
// Speech & Text Analytics

fn amz_date(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

fn sign(key: &[u8; 32], cid: &str, sid: &str, date: &str, expires: u64) -> String {
    blake3::keyed_hash(key, format!("{cid}|{sid}|{date}|{expires}").as_bytes()).to_hex()[..64]
        .to_string()
}

async fn transcript_url(
    State(st): St,
    Extension(corr): Extension<CorrelationId>,
    Path((cid, sid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let rate = match st.admit(&headers, &corr) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let Some(i) = st.index_of(&cid) else {
        return not_found(format!("conversation {cid} not found"), &corr);
    };
    let ids = ids(&st.gen, i);
    if st.gen.media(i) != Media::Voice || sid != ids.customer.1 || !st.gen.has_transcript(i) {
        return not_found(
            format!("no transcript for conversation {cid} communication {sid}"),
            &corr,
        );
    }
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let date = amz_date(Utc::now());
    let expires = st.cfg.transcript_url_ttl_secs;
    let signature = sign(&st.analytics.key, &cid, &sid, &date, expires);
    st.counters.issue(&signature);
    let url = format!(
        "http://{host}{PRESIGNED_PREFIX}transcripts/{cid}/{sid}.json?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=SIMULATOR%2F{}%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date={date}&X-Amz-Expires={expires}&X-Amz-SignedHeaders=host&X-Amz-Signature={signature}",
        &date[..8]
    );
    with_rate(
        json_response(
            StatusCode::OK,
            json!({ "url": url }).to_string().into_bytes(),
        ),
        &rate,
    )
}

fn s3_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    (
        status,
        [(CONTENT_TYPE, HeaderValue::from_static("application/xml"))],
        body,
    )
        .into_response()
}

async fn presigned(
    State(st): St,
    Path((cid, file)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if headers.contains_key(AUTHORIZATION) {
        return s3_error(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified",
        );
    }
    let sid = file.strip_suffix(".json").unwrap_or(&file);
    let (Some(date), Some(expires), Some(signature)) = (
        q.get("X-Amz-Date"),
        q.get("X-Amz-Expires").and_then(|e| e.parse::<u64>().ok()),
        q.get("X-Amz-Signature"),
    ) else {
        return s3_error(StatusCode::FORBIDDEN, "AccessDenied", "Access Denied");
    };
    if *signature != sign(&st.analytics.key, &cid, sid, date, expires) {
        return s3_error(
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        );
    }
    let issued = chrono::NaiveDateTime::parse_from_str(date, "%Y%m%dT%H%M%SZ")
        .map(|t| t.and_utc())
        .unwrap_or_default();
    // A lifetime past chrono's range never expires (checked, never an overflow).
    let expiry = i64::try_from(expires)
        .ok()
        .and_then(Duration::try_seconds)
        .and_then(|d| issued.checked_add_signed(d));
    if expiry.is_some_and(|e| Utc::now() > e) {
        return s3_error(StatusCode::FORBIDDEN, "AccessDenied", "Request has expired");
    }
    let Some(i) = st.index_of(&cid) else {
        return s3_error(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        );
    };
    json_response(StatusCode::OK, transcript_document(&st.gen, i))
}

/// Capitalised and punctuated, as STA's `decoratedText`: the words (and so the mentions) are
/// those of `text`.
fn decorate(text: &str) -> String {
    let mut c = text.chars();
    let mut out: String = c
        .next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default();
    out.push('.');
    out
}

fn ms(n: i64) -> Value {
    json!({ "milliseconds": n })
}

/// The STA transcript document (GENESYS.md §2.2) of voice conversation `i`.
pub(super) fn transcript_document(gen: &Generator, i: usize) -> Vec<u8> {
    let conv = gen.conversation(i);
    let ids = ids(gen, i);
    let start_ms = conv.start.timestamp_millis();
    let end_ms = gen.end(i).timestamp_millis();
    let mut rng = Rng::stream(gen_seed(gen), i as u64, STREAM_DOC);
    // (purpose, offset ms, text) of every phrase, plus an occasional redacted one.
    let mut lines: Vec<(&str, i64, String)> = Vec::new();
    let mut redacted = rng.chance(0.15);
    for (k, it) in conv.interactions.iter().enumerate() {
        let purpose = if it.participant == "customer" {
            "external"
        } else {
            "internal"
        };
        let offset = (it.timestamp - conv.start).num_milliseconds();
        lines.push((purpose, offset, it.transcript.clone()));
        if redacted && purpose == "external" {
            let next = conv.interactions.get(k + 1).map_or(offset + 3_000, |n| {
                (n.timestamp - conv.start).num_milliseconds()
            });
            if let Some(p) = gen.redaction_phrase(&mut rng) {
                lines.push(("external", (offset + next) / 2, p));
            }
            redacted = false;
        }
    }
    let phrases: Vec<StaPhrase> = lines
        .iter()
        .enumerate()
        .map(|(k, (purpose, offset, text))| {
            let next = lines.get(k + 1).map_or(offset + 3_000, |n| n.1);
            let words: Vec<&str> = text.split_whitespace().collect();
            let dur = ((next - offset) as f64 * 0.9) as i64;
            let per = dur / words.len().max(1) as i64;
            let words = words
                .iter()
                .enumerate()
                .map(|(w, word)| {
                    let off = offset + per * w as i64;
                    StaWord {
                        word,
                        confidence: 0.8 + rng.unit() * 0.2,
                        offset: Ms { milliseconds: off },
                        start_time_ms: start_ms + off,
                        duration: Ms { milliseconds: per },
                    }
                })
                .collect();
            let confidence = 0.85 + rng.unit() * 0.15;
            StaPhrase {
                phrase_index: k,
                participant_purpose: purpose,
                text,
                decorated_text: rng.chance(0.5).then(|| decorate(text)),
                stability: 1.0,
                confidence,
                offset: Ms {
                    milliseconds: *offset,
                },
                start_time_ms: start_ms + offset,
                duration: Ms { milliseconds: dur },
                kind: "transcript",
                words,
                alternatives: [],
            }
        })
        .collect();
    let sentiment: Vec<Value> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.0 == "external")
        .take(3)
        .map(|(k, (purpose, offset, text))| {
            json!({
                "participant": purpose,
                "phrase": text,
                "phraseIndex": k,
                "sentiment": (rng.below(3) as i64) - 1,
                "startTimeMs": start_ms + offset,
                "offset": ms(*offset),
                "duration": ms(2_000),
                "type": "phrase",
            })
        })
        .collect();
    let ivr = conv
        .interactions
        .first()
        .is_some_and(|f| f.participant == "ivr");
    let mut participants = vec![
        json!({"participantPurpose": "customer", "initialDirection": "inbound",
               "ani": customer_address(Media::Voice, i), "dnis": SUPPORT_NUMBER,
               "startTimeMs": start_ms, "endTimeMs": end_ms}),
        json!({"participantPurpose": "agent", "userId": ids.user, "queueId": ids.queue,
               "divisionId": ids.division, "initialDirection": "inbound",
               "startTimeMs": start_ms, "endTimeMs": end_ms}),
    ];
    if ivr {
        participants.push(json!({"participantPurpose": "ivr", "flowId": ids.ivr.0,
            "flowVersion": "3.0", "initialDirection": "inbound",
            "startTimeMs": start_ms, "endTimeMs": start_ms + lines.get(1).map_or(0, |l| l.1)}));
    }
    let transcript = StaTranscript {
        transcript_id: uuid_like(rng.next_u64()),
        language: "en-us",
        program_id: uuid_like(gen_seed(gen) ^ 0x9a0),
        engine_id: "genesys",
        start_time: start_ms,
        duration: Ms {
            milliseconds: end_ms - start_ms,
        },
        phrases,
        analytics: json!({"sentiment": sentiment, "topics": [], "acoustic": []}),
    };
    let head = json!({
        "organizationId": ids.org,
        "conversationId": conv.id,
        "communicationId": ids.customer.1,
        "mediaType": "call",
        "conversationStartTime": start_ms,
        "startTime": start_ms,
        "duration": ms(end_ms - start_ms),
        "participants": participants,
    });
    to_json(&StaDocument {
        head,
        transcripts: [transcript],
    })
}

/// An STA transcript document as served: typed, so that the word-level detail (most of the
/// bytes) is written straight out rather than built as JSON values first.
#[derive(Serialize)]
struct StaDocument<'a> {
    #[serde(flatten)]
    head: Value,
    transcripts: [StaTranscript<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StaTranscript<'a> {
    transcript_id: String,
    language: &'static str,
    program_id: String,
    engine_id: &'static str,
    start_time: i64,
    duration: Ms,
    phrases: Vec<StaPhrase<'a>>,
    analytics: Value,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StaPhrase<'a> {
    phrase_index: usize,
    participant_purpose: &'a str,
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    decorated_text: Option<String>,
    stability: f64,
    confidence: f64,
    offset: Ms,
    start_time_ms: i64,
    duration: Ms,
    #[serde(rename = "type")]
    kind: &'static str,
    words: Vec<StaWord<'a>>,
    alternatives: [u8; 0],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StaWord<'a> {
    word: &'a str,
    confidence: f64,
    offset: Ms,
    start_time_ms: i64,
    duration: Ms,
}

#[derive(Serialize)]
struct Ms {
    milliseconds: i64,
}

// ---------------------------------------------------------------------------------------------
// Recordings

async fn recordings(
    State(st): St,
    Extension(corr): Extension<CorrelationId>,
    Path(cid): Path<String>,
    headers: HeaderMap,
) -> Response {
    let rate = match st.admit(&headers, &corr) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let Some(i) = st.index_of(&cid) else {
        return not_found(format!("conversation {cid} not found"), &corr);
    };
    let media = st.gen.media(i);
    let mut rng = Rng::stream(gen_seed(&st.gen), i as u64, STREAM_READY);
    let not_ready = media != Media::Voice && rng.unit() < st.cfg.faults.not_ready_rate;
    let still_preparing = not_ready && {
        let now = std::time::Instant::now();
        let mut prepared = lock(&st.analytics.prepared);
        match (prepared.entry(i), st.cfg.faults.not_ready_for_secs) {
            (std::collections::hash_map::Entry::Vacant(v), _) => {
                v.insert(now);
                true
            }
            // Validated finite and non-negative; a huge value saturates instead of panicking.
            (std::collections::hash_map::Entry::Occupied(o), Some(secs)) => {
                now.duration_since(*o.get()).as_secs_f64() < secs
            }
            (std::collections::hash_map::Entry::Occupied(_), None) => false,
        }
    };
    if still_preparing {
        // Still being prepared: 202 or an empty 200, both without a body.
        let status = if rng.chance(0.5) {
            StatusCode::ACCEPTED
        } else {
            StatusCode::OK
        };
        return with_rate((status, Bytes::new()).into_response(), &rate);
    }
    let body = Value::Array(vec![recording(&st.gen, i)]);
    with_rate(json_response(StatusCode::OK, to_json(&body)), &rate)
}

/// The conversation's one `Recording`, with its transcript field for digital media.
fn recording(gen: &Generator, i: usize) -> Value {
    let conv: Conversation = gen.conversation(i);
    let ids = ids(gen, i);
    let end = gen.end(i);
    let mut rng = Rng::stream(gen_seed(gen), i as u64, STREAM_DOC);
    let media = match conv.media {
        Media::Voice => "audio",
        Media::Chat => "chat",
        Media::Email => "email",
        Media::Message => "messaging",
    };
    let mut r = json!({
        "id": uuid_like(rng.next_u64()),
        "conversationId": conv.id,
        "sessionId": ids.customer.1,
        "media": media,
        "startTime": iso(conv.start),
        "endTime": iso(end),
        "fileState": "AVAILABLE",
        "maxAllowedRestorationsForOrg": 2,
        "remainingRestorationsAllowedForOrg": 2,
    });
    let addr = customer_address(conv.media, i);
    let agent = json!({"id": ids.user, "name": agent_name(i), "displayName": agent_name(i)});
    let entries: Vec<Value> = conv
        .interactions
        .iter()
        .map(|it| {
            let customer = it.participant == "customer";
            let id = uuid_like(rng.next_u64());
            match conv.media {
                Media::Chat => {
                    let mut m = json!({
                        "id": id,
                        "message": id,
                        "chat": conv.id,
                        "body": it.transcript,
                        "bodyType": "standard",
                        "type": "message",
                        "utc": it.timestamp.timestamp_millis().to_string(),
                        "senderCommunicationId": if customer { &ids.customer.1 } else { &ids.agent.1 },
                        "participantPurpose": if customer { "customer" } else { "agent" },
                    });
                    if !customer {
                        m["user"] = agent.clone();
                    }
                    m
                }
                Media::Message => {
                    let mut m = json!({
                        "id": id,
                        "timestamp": iso(it.timestamp),
                        "from": if customer { addr.as_str() } else { SUPPORT_NUMBER },
                        "to": if customer { SUPPORT_NUMBER } else { addr.as_str() },
                        "purpose": if customer { "customer" } else { "agent" },
                        "participantId": if customer { &ids.customer.0 } else { &ids.agent.0 },
                        "messageText": it.transcript,
                        "messageMediaAttachments": [],
                    });
                    if !customer {
                        m["fromUser"] = agent.clone();
                    }
                    m
                }
                Media::Email | Media::Voice => {
                    let (from, to) = if customer {
                        (json!({"email": addr, "name": format!("Customer {i}")}),
                         json!({"email": SUPPORT_ADDRESS, "name": "Support"}))
                    } else {
                        (json!({"email": SUPPORT_ADDRESS, "name": agent_name(i)}),
                         json!({"email": addr, "name": format!("Customer {i}")}))
                    };
                    json!({
                        "id": id,
                        "time": iso(it.timestamp),
                        "subject": "Your support request",
                        "from": from,
                        "to": [to],
                        "cc": [],
                        "bcc": [],
                        "textBody": it.transcript,
                        "htmlBody": format!("<p>{}</p>", html_escape(&it.transcript)),
                        "attachments": [],
                    })
                }
            }
        })
        .collect();
    match conv.media {
        Media::Voice => {}
        Media::Chat => r["transcript"] = Value::Array(entries),
        Media::Message => r["messagingTranscript"] = Value::Array(entries),
        Media::Email => r["emailTranscript"] = Value::Array(entries),
    }
    r
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::{start, RunningSimulator, SimProduct};
    use chrono::NaiveDate;

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
        cfg.conversations = 400;
        cfg.days = 10;
        cfg.start = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        cfg.untranscribed_rate = 0.2;
        cfg
    }

    struct Client {
        http: reqwest::Client,
        sim: RunningSimulator,
        token: String,
    }

    impl Client {
        async fn new(cfg: SimConfig) -> Client {
            let sim = start(cfg, "127.0.0.1:0".parse().unwrap()).await.unwrap();
            let http = reqwest::Client::new();
            let body: Value = http
                .post(format!("{}/oauth/token", sim.url))
                .basic_auth("id", Some("secret"))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let token = body["access_token"].as_str().unwrap().to_string();
            Client { http, sim, token }
        }
        async fn get(&self, path: &str) -> reqwest::Response {
            self.http
                .get(format!("{}{path}", self.sim.url))
                .bearer_auth(&self.token)
                .send()
                .await
                .unwrap()
        }
        async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
            self.http
                .post(format!("{}{path}", self.sim.url))
                .bearer_auth(&self.token)
                .json(body)
                .send()
                .await
                .unwrap()
        }
    }

    fn media_filter(media: &[&str]) -> Value {
        let predicates: Vec<Value> = media
            .iter()
            .map(|m| json!({"type": "dimension", "dimension": "mediaType", "operator": "matches", "value": m}))
            .collect();
        json!([{ "type": "or", "predicates": predicates }])
    }

    #[tokio::test]
    async fn jobs_go_through_their_states_and_page_by_cursor() {
        let c = Client::new(cfg()).await;
        let gen = Generator::new(&cfg());
        let interval = "2026-03-02T00:00:00.000Z/2026-03-04T00:00:00.000Z";
        let resp = c
            .post(
                JOBS,
                &json!({"interval": interval, "segmentFilters": media_filter(&["voice", "email"])}),
            )
            .await;
        assert_eq!(resp.status(), 202);
        assert!(resp.headers().contains_key("inin-ratelimit-count"));
        let job = resp.json::<Value>().await.unwrap()["jobId"]
            .as_str()
            .unwrap()
            .to_string();
        let early = c.get(&format!("{JOBS}/{job}/results")).await;
        assert_eq!(early.status(), 400);
        let mut states = Vec::new();
        for _ in 0..3 {
            let s: Value = c.get(&format!("{JOBS}/{job}")).await.json().await.unwrap();
            states.push(s["state"].as_str().unwrap().to_string());
        }
        assert_eq!(states, ["QUEUED", "PENDING", "FULFILLED"]);

        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                None => format!("{JOBS}/{job}/results?pageSize=7"),
                Some(c) => format!("{JOBS}/{job}/results?pageSize=7&cursor={c}"),
            };
            let page: Value = c.get(&path).await.json().await.unwrap();
            let keys: Vec<&String> = page.as_object().unwrap().keys().collect();
            assert!(keys.len() <= 3, "{keys:?}");
            for conv in page["conversations"].as_array().unwrap() {
                ids.push(conv["conversationId"].as_str().unwrap().to_string());
                let media = conv["participants"][0]["sessions"][0]["mediaType"]
                    .as_str()
                    .unwrap();
                assert!(media == "voice" || media == "email");
            }
            match page["cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => break,
            }
        }
        // Activity in the interval: everything that started before its end and ended after
        // its start, including conversations that started the day before.
        let (a, b) = parse_interval(interval).unwrap();
        let want: Vec<String> = (0..gen.len())
            .filter(|&i| matches!(gen.media(i), Media::Voice | Media::Email))
            .filter(|&i| gen.start(i) < b && gen.end(i) > a)
            .map(|i| gen.id(i))
            .collect();
        assert_eq!(ids, want);
        assert!(
            (0..gen.len()).any(|i| gen.start(i) < a && gen.end(i) > a && ids.contains(&gen.id(i)))
        );
        let avail: Value = c
            .get(&format!("{JOBS}/availability"))
            .await
            .json()
            .await
            .unwrap();
        assert!(avail["dataAvailabilityDate"]
            .as_str()
            .unwrap()
            .ends_with('Z'));
        assert_eq!(c.get(&format!("{JOBS}/nope")).await.status(), 404);
        assert_eq!(c.sim.stats().job_intervals, [interval]);
        c.sim.shutdown().await;
    }

    #[tokio::test]
    async fn the_query_pages_and_enforces_its_limits() {
        let mut config = cfg();
        config.max_query_results = 30;
        config.max_query_interval_days = 7;
        let c = Client::new(config).await;
        let q = |interval: &str, size: i64, number: i64| {
            json!({"interval": interval, "paging": {"pageSize": size, "pageNumber": number},
                   "segmentFilters": media_filter(&["chat"])})
        };
        let day = "2026-03-03T00:00:00Z/2026-03-04T00:00:00Z";
        let first: Value = c
            .post(DETAILS_QUERY, &q(day, 10, 1))
            .await
            .json()
            .await
            .unwrap();
        let total = first["totalHits"].as_u64().unwrap();
        assert!(total > 5 && total <= 30, "{total}");
        for conv in first["conversations"].as_array().unwrap() {
            assert!(conv["conversationStart"]
                .as_str()
                .unwrap()
                .starts_with("2026-03-03"));
            assert!(conv["participants"][0].get("attributes").is_none());
        }
        let empty: Value = c
            .post(DETAILS_QUERY, &q(day, 10, 3))
            .await
            .json()
            .await
            .unwrap();
        assert!(empty.get("conversations").is_none() && empty["totalHits"] == total);
        for (body, msg) in [
            (q(day, 101, 1), "pageSize"),
            (q(day, 10, 4), "Pagination may not exceed 30 results."),
            (
                q("2026-03-01T00:00:00Z/2026-03-09T00:00:00Z", 10, 1),
                "does not exceed 7 days",
            ),
            (json!({"paging": {"pageSize": 10}}), "interval"),
        ] {
            let resp = c.post(DETAILS_QUERY, &body).await;
            assert_eq!(resp.status(), 400, "{body}");
            let err: Value = resp.json().await.unwrap();
            assert!(err["message"].as_str().unwrap().contains(msg), "{err}");
        }
        // Hours of the same day only return what was active in each hour.
        let hour: Value = c
            .post(
                DETAILS_QUERY,
                &q("2026-03-03T10:00:00Z/2026-03-03T11:00:00Z", 10, 1),
            )
            .await
            .json()
            .await
            .unwrap();
        assert!(hour["totalHits"].as_u64().unwrap() < total);
        c.sim.shutdown().await;
    }

    #[tokio::test]
    async fn transcript_links_expire_and_untranscribed_calls_are_404() {
        let mut config = cfg();
        config.transcript_url_ttl_secs = 1;
        let gen = Generator::new(&config);
        let c = Client::new(config).await;
        let voice: Vec<usize> = (0..gen.len())
            .filter(|&i| gen.media(i) == Media::Voice)
            .collect();
        let with = *voice.iter().find(|&&i| gen.has_transcript(i)).unwrap();
        let without = *voice.iter().find(|&&i| !gen.has_transcript(i)).unwrap();
        let path = |i: usize, sid: &str| {
            format!(
                "/api/v2/speechandtextanalytics/conversations/{}/communications/{sid}/transcripturl",
                gen.id(i)
            )
        };
        let sid = ids(&gen, with).customer.1;
        let resp = c.get(&path(with, &sid)).await;
        assert_eq!(resp.status(), 200);
        let url = resp.json::<Value>().await.unwrap()["url"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(url.contains("X-Amz-Expires=1"), "{url}");
        // With a bearer token S3 refuses; without, it serves the document.
        let with_auth = c.http.get(&url).bearer_auth(&c.token).send().await.unwrap();
        assert_eq!(with_auth.status(), 400);
        let doc: Value = c.http.get(&url).send().await.unwrap().json().await.unwrap();
        assert_eq!(doc["conversationId"], gen.id(with).as_str());
        let phrases = doc["transcripts"][0]["phrases"].as_array().unwrap();
        assert!(phrases.len() >= gen.conversation(with).interactions.len());
        for p in phrases {
            assert!(matches!(
                p["participantPurpose"].as_str(),
                Some("internal" | "external")
            ));
            assert!(
                p["startTimeMs"].as_i64().unwrap()
                    >= doc["conversationStartTime"].as_i64().unwrap()
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        let expired = c.http.get(&url).send().await.unwrap();
        assert_eq!(expired.status(), 403);
        assert!(expired
            .text()
            .await
            .unwrap()
            .contains("Request has expired"));

        let sid = ids(&gen, without).customer.1;
        let resp = c.get(&path(without, &sid)).await;
        assert_eq!(resp.status(), 404);
        assert_eq!(resp.json::<Value>().await.unwrap()["code"], "not.found");
        assert_eq!(c.get(&path(with, "not-a-session")).await.status(), 404);
        c.sim.shutdown().await;
    }

    #[test]
    fn decorated_text_has_the_same_mentions_and_redactions_none() {
        let config = cfg();
        let gen = Generator::new(&config);
        let mut decorated = 0;
        for i in (0..gen.len()).filter(|&i| gen.media(i) == Media::Voice) {
            let doc: Value = serde_json::from_slice(&transcript_document(&gen, i)).unwrap();
            for p in doc["transcripts"][0]["phrases"].as_array().unwrap() {
                let text = p["text"].as_str().unwrap();
                if let Some(d) = p["decoratedText"].as_str() {
                    decorated += 1;
                    assert_eq!(gen.count_matches(d), gen.count_matches(text), "{d}");
                }
            }
            let all: usize = doc["transcripts"][0]["phrases"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    gen.count_matches(p["text"].as_str().unwrap())
                        .values()
                        .sum::<usize>()
                })
                .sum();
            let want: usize = gen.conversation(i).mentions.iter().map(|m| m.1).sum();
            assert_eq!(all, want, "conversation {i}");
        }
        assert!(decorated > 100);
    }

    #[tokio::test]
    async fn recordings_carry_the_digital_transcripts() {
        let mut config = cfg();
        config.faults.not_ready_rate = 1.0;
        let gen = Generator::new(&config);
        let c = Client::new(config).await;
        for media in [Media::Chat, Media::Email, Media::Message, Media::Voice] {
            let i = (0..gen.len()).find(|&i| gen.media(i) == media).unwrap();
            let path = format!(
                "/api/v2/conversations/{}/recordings?formatId=NONE",
                gen.id(i)
            );
            if media != Media::Voice {
                let first = c.get(&path).await;
                assert!(matches!(first.status().as_u16(), 200 | 202));
                assert!(first.bytes().await.unwrap().is_empty());
            }
            let recs: Value = c.get(&path).await.json().await.unwrap();
            let r = &recs[0];
            let n = gen.conversation(i).interactions.len();
            let field = match media {
                Media::Chat => "transcript",
                Media::Email => "emailTranscript",
                Media::Message => "messagingTranscript",
                Media::Voice => {
                    assert_eq!(r["media"], "audio");
                    continue;
                }
            };
            assert_eq!(r[field].as_array().unwrap().len(), n, "{media:?}");
        }
        assert_eq!(
            c.get("/api/v2/conversations/nope/recordings")
                .await
                .status(),
            404
        );
        c.sim.shutdown().await;
    }
}
