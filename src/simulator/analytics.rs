//! The real Genesys Cloud endpoints (GENESYS.md §2, §8): analytics conversation details jobs
//! and the synchronous details query, Speech & Text Analytics transcript links (singular
//! `transcripturl` and plural `transcripturls`) with a local "S3" behind them, and conversation
//! recordings with chat, messaging and email transcripts, under the traffic shapes of
//! [`super::Traffic`].
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
//! - A voice call's phrases are built once ([`transcript`]); each recorded leg's document holds
//!   the phrases of its time window, so the legs partition the call, and the customer and agent
//!   sessions of a leg get the same document (one recording). Without a transfer only the
//!   customer's session is recorded, as before.
//! - A transcript's `analytics.sentiment[]` scores every external (customer) phrase with its
//!   utterance's label (a redaction: 0) and no internal one; `analytics.topics[]` has one entry
//!   per phrase whose utterance speaks of a topic, quoting the phrase's `text`. Neither takes a
//!   draw: the rest of the document is what it was before they came in.

use std::collections::HashMap;
use std::sync::Arc;

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

use super::gen::{uuid_like, Conversation, Generator, Label, Media, Rng, Shape, Topic, MAX_SPAN};
use super::respond::{
    bad_request, error, iso, json as json_response, missing_permission, to_json, with_rate,
    CorrelationId,
};
use super::state::{lock, AppState, Filter, Job, Listing};

/// Where the simulator's "S3" serves transcript documents.
pub(super) const PRESIGNED_PREFIX: &str = "/_s3/";

const JOBS: &str = "/api/v2/analytics/conversations/details/jobs";
const DETAILS_QUERY: &str = "/api/v2/analytics/conversations/details/query";
const STREAM_SESSION: u64 = 0x5e55;
const STREAM_DOC: u64 = 0xd0c5;
const STREAM_READY: u64 = 0x4ead;
const STREAM_LEG: u64 = 0x1e95;
const MAX_RESULTS_PAGE: usize = 1000;

type St = State<Arc<AppState>>;

impl Filter {
    /// `media`: the media types of the conversation's sessions (a callback has `callback` and
    /// `voice`); a segment filter on `mediaType` matches if any session has it.
    fn matches(&self, media: &[&str], id: &dyn Fn() -> String) -> bool {
        match self {
            Filter::All(fs) => fs.iter().all(|f| f.matches(media, id)),
            Filter::Any(fs) => fs.is_empty() || fs.iter().any(|f| f.matches(media, id)),
            Filter::Media(m) => media.iter().any(|s| m.eq_ignore_ascii_case(s)),
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
            "/api/v2/speechandtextanalytics/conversations/{cid}/communications/{sid}/transcripturls",
            get(transcript_urls),
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
            let shape = self.gen.shape(i);
            let medias: &[&str] = if shape.callback {
                &["callback", media.as_str()]
            } else {
                &[media.as_str()]
            };
            l.filter.matches(medias, &|| self.gen.id(i))
                && (shape.ongoing || self.gen.end(i) > l.start)
        })
    }

    /// Whether job results hold conversation `i`: with a `dataAvailabilityDate` set, only
    /// conversations that ended by then (an ongoing one has not ended).
    fn available(&self, i: usize) -> bool {
        match self.cfg.data_availability {
            None => true,
            Some(a) => !self.gen.shape(i).ongoing && self.gen.end(i) <= a,
        }
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
            format!("pageSize must be between 1 and {MAX_RESULTS_PAGE}, got {size}"),
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
    let mut it = st
        .matching(&listing, false, cursor.next)
        .filter(|&i| st.available(i));
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

/// One recorded leg of a voice call: the customer's voice session and the agent who spoke in it,
/// over `[start, end)` (the last leg's end is the conversation's).
struct Leg {
    /// The customer's voice session of this leg: the communication its recording belongs to.
    customer_sid: String,
    /// The agent participant and session of this leg.
    agent: (String, String),
    user: String,
    name: String,
    recording_id: String,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

/// The legs of voice conversation `i` (one unless transferred); leg 0 keeps the ids of [`ids`].
fn legs(gen: &Generator, i: usize, shape: &Shape) -> Vec<Leg> {
    let ids = ids(gen, i);
    let seed = gen_seed(gen);
    let start = gen.start(i);
    let mut bounds = vec![start];
    bounds.extend(
        shape
            .transfers_at
            .iter()
            .map(|ms| start + Duration::milliseconds(*ms)),
    );
    bounds.push(gen.end(i));
    let mut r = Rng::stream(seed, i as u64, STREAM_LEG);
    (0..shape.legs())
        .map(|j| {
            let (customer_sid, agent, user, name, recording_id) = if j == 0 {
                let rid = Rng::stream(seed, i as u64, STREAM_DOC).next_u64();
                (
                    ids.customer.1.clone(),
                    ids.agent.clone(),
                    ids.user.clone(),
                    agent_name(i),
                    uuid_like(rid),
                )
            } else {
                let mut id = || uuid_like(r.next_u64());
                (
                    id(),
                    (id(), id()),
                    uuid_like(seed ^ 0xa6e7 ^ ((i + j) as u64 % 17)),
                    agent_name(i + j),
                    id(),
                )
            };
            Leg {
                customer_sid,
                agent,
                user,
                name,
                recording_id,
                start: bounds[j],
                end: bounds[j + 1],
            }
        })
        .collect()
}

/// The presigned file suffix of a session's second recording.
const DUPLICATE: &str = ".r2";

/// The id of the second recording of a session with two (`Traffic::duplicate_recording_rate`).
fn duplicate_recording_id(gen: &Generator, i: usize) -> String {
    uuid_like(Rng::stream(gen_seed(gen), i as u64, STREAM_LEG ^ 0xd2).next_u64())
}

/// The session id of a callback conversation's `callback` session.
fn callback_sid(gen: &Generator, i: usize) -> String {
    uuid_like(Rng::stream(gen_seed(gen), i as u64, STREAM_LEG ^ 0xcb).next_u64())
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
    let shape = gen.shape(i);
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
    let legs = if media == Media::Voice {
        legs(gen, i, &shape)
    } else {
        Vec::new()
    };
    let mut customer_sessions = Vec::new();
    if shape.callback {
        let mut cb = session(
            &callback_sid(gen, i),
            "outbound",
            vec![segment(start, end, "interact", true)],
            false,
        );
        cb["mediaType"] = json!("callback");
        cb["callbackNumbers"] = json!([addr.trim_start_matches("tel:")]);
        cb["callbackScheduledTime"] = json!(iso(start));
        cb["callbackUserName"] = json!(format!("Customer {i}"));
        customer_sessions.push(cb);
    }
    if legs.len() > 1 {
        for (j, leg) in legs.iter().enumerate() {
            let from = if j == 0 { start } else { leg.start };
            let mut seg = segment(from, leg.end, "interact", false);
            if j + 1 < legs.len() {
                seg["disconnectType"] = json!("transfer");
            }
            customer_sessions.push(session(&leg.customer_sid, "inbound", vec![seg], true));
        }
    } else {
        customer_sessions.push(session(
            &ids.customer.1,
            "inbound",
            vec![segment(start, end, "interact", false)],
            media == Media::Voice,
        ));
    }
    let mut participants = vec![json!({
        "participantId": ids.customer.0,
        "participantName": "Customer",
        "purpose": "customer",
        "sessions": customer_sessions,
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
    if legs.len() > 1 {
        // A transferred call: one agent per leg, each agent's session recorded (the recording
        // of the leg, shared with the customer's session of the leg).
        for (j, leg) in legs.iter().enumerate() {
            let from = if j == 0 { first_human } else { leg.start };
            let mut seg = segment(from, leg.end, "interact", true);
            if j + 1 < legs.len() {
                seg["disconnectType"] = json!("transfer");
            }
            let mut agent = session(&leg.agent.1, "inbound", vec![seg], true);
            if !shape.ongoing || j + 1 < legs.len() {
                agent["metrics"] = json!([
                    {"name": "tTalk", "value": (leg.end - from).num_milliseconds(), "emitDate": iso(leg.end)},
                ]);
            }
            participants.push(json!({
                "participantId": leg.agent.0,
                "participantName": leg.name,
                "purpose": "agent",
                "userId": leg.user,
                "sessions": [agent],
            }));
        }
    } else {
        let mut agent = session(
            &ids.agent.1,
            "inbound",
            vec![segment(first_human, end, "interact", true)],
            false,
        );
        if !shape.ongoing {
            agent["metrics"] = json!([
                {"name": "tTalk", "value": (end - first_human).num_milliseconds(), "emitDate": iso(end)},
            ]);
        }
        participants.push(json!({
            "participantId": ids.agent.0,
            "participantName": agent_name(i),
            "purpose": "agent",
            "userId": ids.user,
            "sessions": [agent],
        }));
    }
    if attributes {
        if let Some(c) = participants.first_mut() {
            c["attributes"] = json!({ "language": "en-us" });
        }
    }
    if shape.ongoing {
        // Still going on: the segments open at the end stay open.
        for p in &mut participants {
            for s in p["sessions"].as_array_mut().into_iter().flatten() {
                for seg in s["segments"].as_array_mut().into_iter().flatten() {
                    if seg["segmentEnd"] == json!(iso(end)) {
                        if let Some(o) = seg.as_object_mut() {
                            o.remove("segmentEnd");
                        }
                    }
                }
            }
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
    if shape.ongoing {
        if let Some(o) = r.as_object_mut() {
            o.remove("conversationEnd");
        }
    }
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

/// Which leg of voice conversation `i` session `sid` belongs to (its customer or its agent
/// session); `None` for any other session (the callback session, ivr, acd, unknown ids).
fn leg_of(gen: &Generator, i: usize, sid: &str) -> Option<(Shape, Vec<Leg>, usize)> {
    if gen.media(i) != Media::Voice {
        return None;
    }
    let shape = gen.shape(i);
    let legs = legs(gen, i, &shape);
    // Without a transfer the agent's session is not recorded: only the customer's answers.
    let j = legs
        .iter()
        .position(|l| l.customer_sid == sid || (legs.len() > 1 && l.agent.1 == sid))?;
    Some((shape, legs, j))
}

impl AppState {
    /// Whether a late transcript of conversation `i` is still being made: the first transcript
    /// request for the conversation starts its clock.
    fn still_late(&self, i: usize) -> bool {
        let now = std::time::Instant::now();
        let first = *lock(&self.analytics.late).entry(i).or_insert(now);
        now.duration_since(first).as_secs_f64() < self.cfg.traffic.late_for_secs
    }

    /// The checks both transcript-link endpoints share, then the presigned link of the leg's
    /// recording; `Err` is the response to send.
    fn transcript_link(
        &self,
        cid: &str,
        sid: &str,
        headers: &HeaderMap,
        corr: &CorrelationId,
    ) -> Result<Vec<(String, String)>, Box<Response>> {
        let no_transcript = || {
            not_found(
                format!("no transcript for conversation {cid} communication {sid}"),
                corr,
            )
        };
        let Some(i) = self.index_of(cid) else {
            return Err(Box::new(not_found(
                format!("conversation {cid} not found"),
                corr,
            )));
        };
        let Some((shape, mut legs, j)) = leg_of(&self.gen, i, sid) else {
            return Err(Box::new(no_transcript()));
        };
        if shape.ongoing || !self.gen.has_transcript(i) {
            return Err(Box::new(no_transcript()));
        }
        if shape.late && self.still_late(i) {
            return Err(Box::new(no_transcript()));
        }
        let leg = legs.swap_remove(j);
        // (recording id, presigned file) of each recording of the communication.
        let mut files = vec![(leg.recording_id.clone(), leg.customer_sid.clone())];
        if shape.duplicate_recording {
            files.push((
                duplicate_recording_id(&self.gen, i),
                format!("{}{DUPLICATE}", leg.customer_sid),
            ));
        }
        let host = headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("127.0.0.1");
        let date = amz_date(Utc::now());
        let expires = self.cfg.transcript_url_ttl_secs;
        // Signed for the recording's communication: both sessions of a leg get one document.
        Ok(files
            .into_iter()
            .map(|(recording, file)| {
                let signature = sign(&self.analytics.key, cid, &file, &date, expires);
                self.counters.issue(&signature);
                let url = format!(
                    "http://{host}{PRESIGNED_PREFIX}transcripts/{cid}/{file}.json?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=SIMULATOR%2F{}%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date={date}&X-Amz-Expires={expires}&X-Amz-SignedHeaders=host&X-Amz-Signature={signature}",
                    &date[..8]
                );
                (recording, url)
            })
            .collect())
    }
}

/// `GET …/transcripturl`: needs ALL of `recording:recording:view` and
/// `speechAndTextAnalytics:data:view` (403 without the second, see [`super::Traffic`]).
async fn transcript_url(
    State(st): St,
    Extension(corr): Extension<CorrelationId>,
    Path((cid, sid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let rate = match st.admit_transcript(&headers, &corr) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    if !st.cfg.traffic.sta_permission {
        return missing_permission("speechAndTextAnalytics:data:view", &corr);
    }
    match st.transcript_link(&cid, &sid, &headers, &corr) {
        // The singular link is the communication's first recording.
        Ok(links) => with_rate(
            json_response(
                StatusCode::OK,
                json!({ "url": links.first().map(|l| &l.1) })
                    .to_string()
                    .into_bytes(),
            ),
            &rate,
        ),
        Err(resp) => *resp,
    }
}

/// `GET …/transcripturls` (plural): one link per recording of the communication; needs ANY
/// recording permission, so it works for a role without the STA one.
async fn transcript_urls(
    State(st): St,
    Extension(corr): Extension<CorrelationId>,
    Path((cid, sid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let rate = match st.admit_transcript(&headers, &corr) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    match st.transcript_link(&cid, &sid, &headers, &corr) {
        Ok(links) => {
            let urls: Vec<Value> = links
                .iter()
                .map(|(recording, url)| {
                    json!({
                        "recording": {
                            "id": recording,
                            "selfUri": format!("/api/v2/conversations/{cid}/recordings/{recording}"),
                        },
                        "url": url,
                    })
                })
                .collect();
            let body = json!({
                "conversation": {"id": cid, "selfUri": format!("/api/v2/conversations/{cid}")},
                "communicationId": sid,
                "urls": urls,
            });
            with_rate(json_response(StatusCode::OK, to_json(&body)), &rate)
        }
        Err(resp) => *resp,
    }
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
    let signed = file.strip_suffix(".json").unwrap_or(&file);
    let (Some(date), Some(expires), Some(signature)) = (
        q.get("X-Amz-Date"),
        q.get("X-Amz-Expires").and_then(|e| e.parse::<u64>().ok()),
        q.get("X-Amz-Signature"),
    ) else {
        return s3_error(StatusCode::FORBIDDEN, "AccessDenied", "Access Denied");
    };
    if *signature != sign(&st.analytics.key, &cid, signed, date, expires) {
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
    // A transcript deleted with its recording (retention): the link was issued, the key is gone.
    let Some(i) = st.index_of(&cid).filter(|&i| !st.gen.shape(i).gone) else {
        return s3_error(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        );
    };
    let (sid, copy) = match signed.strip_suffix(DUPLICATE) {
        Some(sid) => (sid, 1),
        None => (signed, 0),
    };
    json_response(StatusCode::OK, transcript_copy(&st.gen, i, sid, copy))
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

/// One phrase of a voice conversation's transcript, with the draws that present it.
struct Line {
    purpose: &'static str,
    /// The generated speaker was the IVR (an `internal` phrase in the IVR's window).
    ivr: bool,
    offset: i64,
    text: String,
    decorated: Option<String>,
    confidence: f64,
    word_confidence: Vec<f64>,
    duration: i64,
    /// The utterance's sentiment label (a redaction: 0).
    sentiment: i8,
    /// The utterance's topic, if it speaks of one.
    topic: Option<Topic>,
}

/// Everything the transcript documents of voice conversation `i` are made of: its phrases
/// (the utterances plus an occasional redacted one) in time order with their labels, then the
/// transcript id, drawn in that order from one stream (so a document is a pure function of the
/// conversation, whatever leg is asked for).
struct Transcript {
    conv: Conversation,
    lines: Vec<Line>,
    transcript_id: String,
}

fn transcript(gen: &Generator, i: usize) -> Transcript {
    let (conv, labels) = gen.labelled(i);
    let mut rng = Rng::stream(gen_seed(gen), i as u64, STREAM_DOC);
    // (purpose, ivr, offset ms, text, label) of every phrase, plus an occasional redacted one.
    let mut raw: Vec<(&'static str, bool, i64, String, Label)> = Vec::new();
    let mut redacted = rng.chance(0.15);
    for ((k, it), label) in conv.interactions.iter().enumerate().zip(labels) {
        let purpose = if it.participant == "customer" {
            "external"
        } else {
            "internal"
        };
        let offset = (it.timestamp - conv.start).num_milliseconds();
        raw.push((
            purpose,
            it.participant == "ivr",
            offset,
            it.transcript.clone(),
            label,
        ));
        if redacted && purpose == "external" {
            let next = conv.interactions.get(k + 1).map_or(offset + 3_000, |n| {
                (n.timestamp - conv.start).num_milliseconds()
            });
            if let Some(p) = gen.redaction_phrase(&mut rng) {
                raw.push(("external", false, (offset + next) / 2, p, Label::default()));
            }
            redacted = false;
        }
    }
    let nexts: Vec<i64> = (0..raw.len())
        .map(|k| raw.get(k + 1).map_or(raw[k].2 + 3_000, |n| n.2))
        .collect();
    let lines: Vec<Line> = raw
        .into_iter()
        .zip(nexts)
        .map(|((purpose, ivr, offset, text, label), next)| {
            let n = text.split_whitespace().count();
            let word_confidence = (0..n).map(|_| 0.8 + rng.unit() * 0.2).collect();
            let confidence = 0.85 + rng.unit() * 0.15;
            let decorated = rng.chance(0.5).then(|| decorate(&text));
            Line {
                purpose,
                ivr,
                offset,
                text,
                decorated,
                confidence,
                word_confidence,
                duration: ((next - offset) as f64 * 0.9) as i64,
                sentiment: label.sentiment,
                topic: label.topic,
            }
        })
        .collect();
    // Random sentiments of the first three customer phrases were drawn here before phrases had
    // labels; the draws stay so that the transcript id (and every document byte but the
    // analytics) is what it was.
    for _ in lines.iter().filter(|l| l.purpose == "external").take(3) {
        rng.below(3);
    }
    let transcript_id = uuid_like(rng.next_u64());
    Transcript {
        conv,
        lines,
        transcript_id,
    }
}

/// What a correct client stages from voice conversation `i`'s transcripts: (participant derived
/// from the document's windows, offset ms, `decoratedText` or else `text`) of every phrase.
pub(super) fn voice_utterances(gen: &Generator, i: usize) -> Vec<(&'static str, i64, String)> {
    transcript(gen, i)
        .lines
        .into_iter()
        .map(|l| {
            let who = match (l.purpose, l.ivr) {
                ("external", _) => "customer",
                (_, true) => "ivr",
                _ => "agent",
            };
            (who, l.offset, l.decorated.unwrap_or(l.text))
        })
        .collect()
}

/// For voice conversation `i`: (participant, staged text, sentiment) of every phrase, in
/// [`voice_utterances`]' order; the sentiment is that of the document's `analytics.sentiment[]`
/// entry (customer phrases only).
pub(super) fn voice_phrase_sentiments(
    gen: &Generator,
    i: usize,
) -> Vec<(&'static str, String, Option<i8>)> {
    let t = transcript(gen, i);
    voice_utterances(gen, i)
        .into_iter()
        .zip(t.lines)
        .map(|((who, _, text), l)| (who, text, (l.purpose == "external").then_some(l.sentiment)))
        .collect()
}

/// The STA transcript document (GENESYS.md §2.2) of the leg of voice conversation `i` whose
/// customer session is `sid` (leg 0 for any other id): the phrases said in the leg's window.
#[cfg(test)]
pub(super) fn transcript_document(gen: &Generator, i: usize, sid: &str) -> Vec<u8> {
    transcript_copy(gen, i, sid, 0)
}

/// [`transcript_document`] of recording `copy` of the session: a second recording of one
/// session (`copy` 1) is transcribed again, so its document holds the same phrases under
/// another transcript id.
fn transcript_copy(gen: &Generator, i: usize, sid: &str, copy: usize) -> Vec<u8> {
    let t = transcript(gen, i);
    let shape = gen.shape(i);
    let legs = legs(gen, i, &shape);
    let j = legs.iter().position(|l| l.customer_sid == sid).unwrap_or(0);
    let leg = &legs[j];
    let ids = ids(gen, i);
    let conv = &t.conv;
    let start_ms = conv.start.timestamp_millis();
    let (leg_start, leg_end) = (
        (leg.start - conv.start).num_milliseconds(),
        (leg.end - conv.start).num_milliseconds(),
    );
    let last = j + 1 == legs.len();
    let inside = |l: &Line| (j == 0 || l.offset >= leg_start) && (last || l.offset < leg_end);
    let mine: Vec<(usize, &Line)> = t
        .lines
        .iter()
        .enumerate()
        .filter(|(_, l)| inside(l))
        .collect();
    let phrases: Vec<StaPhrase> = mine
        .iter()
        .enumerate()
        .map(|(k, (_, l))| {
            let words: Vec<&str> = l.text.split_whitespace().collect();
            let per = l.duration / words.len().max(1) as i64;
            let words = words
                .iter()
                .zip(&l.word_confidence)
                .enumerate()
                .map(|(w, (word, confidence))| {
                    let off = l.offset + per * w as i64;
                    StaWord {
                        word,
                        confidence: *confidence,
                        offset: Ms { milliseconds: off },
                        start_time_ms: start_ms + off,
                        duration: Ms { milliseconds: per },
                    }
                })
                .collect();
            StaPhrase {
                phrase_index: k,
                participant_purpose: l.purpose,
                text: &l.text,
                decorated_text: l.decorated.clone(),
                stability: 1.0,
                confidence: l.confidence,
                offset: Ms {
                    milliseconds: l.offset,
                },
                start_time_ms: start_ms + l.offset,
                duration: Ms {
                    milliseconds: l.duration,
                },
                kind: "transcript",
                words,
                alternatives: [],
            }
        })
        .collect();
    // Genesys scores the customer: every external phrase, with its label.
    let sentiment: Vec<Value> = mine
        .iter()
        .enumerate()
        .filter(|(_, (_, l))| l.purpose == "external")
        .map(|(k, (_, l))| {
            json!({
                "participant": l.purpose,
                "phrase": l.text,
                "phraseIndex": k,
                "sentiment": l.sentiment,
                "startTimeMs": start_ms + l.offset,
                "offset": ms(l.offset),
                "duration": ms(l.duration),
                "type": "phrase",
            })
        })
        .collect();
    let topics: Vec<Value> = mine
        .iter()
        .filter_map(|(g, l)| {
            let topic = l.topic?;
            // Between 0.90 and 0.9999, fixed per phrase.
            let confidence = 0.9 + (splitmix_id(&t.transcript_id, 10_000 + g) % 1000) as f64 / 1e4;
            Some(json!({
                "participant": l.purpose,
                "topicId": topic_id(topic.name),
                "topicName": topic.name,
                "topicPhrase": topic.phrase,
                "transcriptPhrase": l.text,
                "confidence": confidence,
                "startTimeMs": start_ms + l.offset,
                "offset": ms(l.offset),
                "duration": ms(l.duration),
                "type": "topic",
            }))
        })
        .collect();
    // Who said the internal phrases: the participants' windows (epoch ms). The IVR speaks
    // first, then the call waits in the ACD queue, then the leg's agent answers.
    let (from_ms, to_ms) = (start_ms + leg_start, start_ms + leg_end);
    let mut participants = vec![json!({"participantPurpose": "customer",
        "initialDirection": "inbound", "ani": customer_address(Media::Voice, i),
        "dnis": SUPPORT_NUMBER, "startTimeMs": from_ms, "endTimeMs": to_ms})];
    let mut queue_from = from_ms;
    if j == 0 && t.lines.first().is_some_and(|l| l.ivr) {
        let ivr_end = start_ms + t.lines.get(1).map_or(0, |l| l.offset);
        participants.push(json!({"participantPurpose": "ivr", "flowId": ids.ivr.0,
            "flowVersion": "3.0", "initialDirection": "inbound",
            "startTimeMs": start_ms, "endTimeMs": ivr_end}));
        queue_from = ivr_end;
    }
    let answered = mine
        .iter()
        .find(|(_, l)| l.purpose == "internal" && !l.ivr)
        .map_or(queue_from, |(_, l)| start_ms + l.offset);
    if answered > queue_from {
        participants.push(json!({"participantPurpose": "acd", "queueId": ids.queue,
            "divisionId": ids.division, "initialDirection": "inbound",
            "startTimeMs": queue_from, "endTimeMs": answered}));
    }
    participants.push(json!({"participantPurpose": "agent", "userId": leg.user,
        "queueId": ids.queue, "divisionId": ids.division, "initialDirection": "inbound",
        "startTimeMs": answered, "endTimeMs": to_ms}));
    let transcript = StaTranscript {
        transcript_id: if j + copy == 0 {
            t.transcript_id.clone()
        } else {
            uuid_like(splitmix_id(&t.transcript_id, j + 100 * copy))
        },
        language: "en-us",
        program_id: uuid_like(gen_seed(gen) ^ 0x9a0),
        engine_id: "genesys",
        start_time: from_ms,
        duration: Ms {
            milliseconds: to_ms - from_ms,
        },
        phrases,
        analytics: json!({"sentiment": sentiment, "topics": topics, "acoustic": []}),
    };
    let head = json!({
        "organizationId": ids.org,
        "conversationId": conv.id,
        "communicationId": leg.customer_sid,
        "mediaType": "call",
        "conversationStartTime": start_ms,
        "startTime": from_ms,
        "duration": ms(to_ms - from_ms),
        "participants": participants,
    });
    to_json(&StaDocument {
        head,
        transcripts: [transcript],
    })
}

/// The id of an STA topic: the same for a name in every document and every configuration.
fn topic_id(name: &str) -> String {
    uuid_like(splitmix_id(name, 0x70_91c))
}

/// A 64-bit value derived from an id and a leg number.
fn splitmix_id(id: &str, j: usize) -> u64 {
    let h = blake3::hash(format!("{id}|{j}").as_bytes());
    u64::from_le_bytes(h.as_bytes()[..8].try_into().unwrap_or([0; 8]))
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
    let body = Value::Array(recordings_of(&st.gen, i));
    with_rate(json_response(StatusCode::OK, to_json(&body)), &rate)
}

/// The conversation's recordings: none while it goes on (recordings are made when it ends),
/// one per leg of a voice call, else the one digital recording (an archived stub or one with a
/// `recordingErrorStatus` and no text under those shapes).
fn recordings_of(gen: &Generator, i: usize) -> Vec<Value> {
    let shape = gen.shape(i);
    if shape.ongoing {
        return Vec::new();
    }
    let base = recording(gen, i);
    if gen.media(i) == Media::Voice {
        let legs = legs(gen, i, &shape);
        if legs.len() == 1 {
            if !shape.duplicate_recording {
                return vec![base];
            }
            let mut second = base.clone();
            second["id"] = json!(duplicate_recording_id(gen, i));
            return vec![base, second];
        }
        return legs
            .iter()
            .map(|leg| {
                let mut r = base.clone();
                r["id"] = json!(leg.recording_id);
                r["sessionId"] = json!(leg.customer_sid);
                r["startTime"] = json!(iso(leg.start));
                r["endTime"] = json!(iso(leg.end));
                r
            })
            .collect();
    }
    if shape.archived {
        // GENESYS.md §2.3: an archived recording is a stub: no sessionId, no transcript.
        let keep = ["id", "conversationId", "media", "startTime", "endTime"];
        let mut stub: serde_json::Map<String, Value> = base
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| keep.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let archived = gen.end(i) + Duration::days(90);
        stub.insert("fileState".into(), json!("ARCHIVED"));
        stub.insert("archiveDate".into(), json!(iso(archived)));
        stub.insert("archiveMedium".into(), json!("CLOUDARCHIVE"));
        stub.insert(
            "deleteDate".into(),
            json!(iso(archived + Duration::days(365))),
        );
        stub.insert("maxAllowedRestorationsForOrg".into(), json!(2));
        stub.insert("remainingRestorationsAllowedForOrg".into(), json!(2));
        return vec![Value::Object(stub)];
    }
    if let Some(status) = shape.recording_error {
        let mut r = base;
        if let Some(o) = r.as_object_mut() {
            for f in ["transcript", "messagingTranscript", "emailTranscript"] {
                o.remove(f);
            }
        }
        r["recordingErrorStatus"] = json!(status);
        return vec![r];
    }
    vec![base]
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
    use crate::simulator::{start, RunningSimulator, SimConfig, SimProduct};
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

    /// A client of a running simulator with a token (also used by `traffic_tests`).
    pub(super) struct Client {
        pub(super) http: reqwest::Client,
        pub(super) sim: RunningSimulator,
        pub(super) token: String,
    }

    impl Client {
        pub(super) async fn new(cfg: SimConfig) -> Client {
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
        pub(super) async fn get(&self, path: &str) -> reqwest::Response {
            self.http
                .get(format!("{}{path}", self.sim.url))
                .bearer_auth(&self.token)
                .send()
                .await
                .unwrap()
        }
        pub(super) async fn json(&self, path: &str) -> Value {
            let resp = self.get(path).await;
            assert_eq!(resp.status(), 200, "{path}");
            resp.json().await.unwrap()
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

    /// The draws behind a transcript document (ids, word confidences, decorated texts) pinned on
    /// the simulator as it was before phrase sentiment and topics came in: those only add.
    #[test]
    fn the_flat_transcript_draws_never_move() {
        let gen = Generator::new(&cfg());
        let mut h = blake3::Hasher::new();
        for i in (0..gen.len())
            .filter(|&i| gen.media(i) == Media::Voice)
            .take(60)
        {
            let t = transcript(&gen, i);
            h.update(t.transcript_id.as_bytes());
            for l in &t.lines {
                let line = format!(
                    "{}|{}|{}|{:?}|{}|{:?}|{}\n",
                    l.purpose,
                    l.offset,
                    l.text,
                    l.decorated,
                    l.confidence,
                    l.word_confidence,
                    l.duration
                );
                h.update(line.as_bytes());
            }
        }
        assert_eq!(
            h.finalize().to_hex().to_string(),
            "26c54446bf74b1dd23e4e043365cb2b9d2da17d757575f3fc519d114f1759f04"
        );
    }

    /// Every customer phrase is scored with its utterance's label (a redaction 0) and nothing
    /// else is; topics quote their phrase; in the outage, the product's phrases are about
    /// connectivity. Every leg and copy of every call, transfers included.
    #[test]
    fn sta_sentiment_and_topics_follow_the_labels() {
        let mut config = cfg();
        config.products.push(SimProduct {
            name: "Nimbus Hub".into(),
            aliases: vec![],
        });
        config.scenario = crate::simulator::Scenario::OutageAndLaunch;
        config.traffic = crate::simulator::Traffic::MIX;
        let gen = Generator::new(&config);
        let outage = config.start + Duration::days(i64::from(config.days) - 3);
        let (mut scored, mut redactions, mut connectivity) = (0, 0, 0);
        let mut topic_ids: HashMap<String, String> = HashMap::new();
        for i in (0..gen.len()).filter(|&i| gen.media(i) == Media::Voice) {
            let (conv, labels) = gen.labelled(i);
            let label_at: HashMap<i64, i8> = conv
                .interactions
                .iter()
                .zip(&labels)
                .map(|(it, l)| ((it.timestamp - conv.start).num_milliseconds(), l.sentiment))
                .collect();
            let in_outage = conv.start.date_naive() >= outage;
            for leg in legs(&gen, i, &gen.shape(i)) {
                for copy in [0, 1] {
                    let doc = transcript_copy(&gen, i, &leg.customer_sid, copy);
                    let doc: Value = serde_json::from_slice(&doc).unwrap();
                    let t = &doc["transcripts"][0];
                    let phrases = t["phrases"].as_array().unwrap();
                    let external: Vec<u64> = phrases
                        .iter()
                        .filter(|p| p["participantPurpose"] == "external")
                        .map(|p| p["phraseIndex"].as_u64().unwrap())
                        .collect();
                    let entries = t["analytics"]["sentiment"].as_array().unwrap();
                    let indexes: Vec<u64> = entries
                        .iter()
                        .map(|e| e["phraseIndex"].as_u64().unwrap())
                        .collect();
                    assert_eq!(indexes, external, "conversation {i}");
                    for e in entries {
                        let p = &phrases[e["phraseIndex"].as_u64().unwrap() as usize];
                        assert_eq!(
                            (&e["phrase"], &e["startTimeMs"]),
                            (&p["text"], &p["startTimeMs"])
                        );
                        assert_eq!(
                            (&e["participant"], &e["type"]),
                            (&json!("external"), &json!("phrase"))
                        );
                        let offset = p["offset"]["milliseconds"].as_i64().unwrap();
                        let want = label_at.get(&offset).copied().unwrap_or_else(|| {
                            redactions += 1;
                            0
                        });
                        assert_eq!(e["sentiment"], json!(want), "{p}");
                        scored += 1;
                    }
                    for topic in t["analytics"]["topics"].as_array().unwrap() {
                        let p = phrases
                            .iter()
                            .find(|p| p["startTimeMs"] == topic["startTimeMs"])
                            .unwrap();
                        assert_eq!(topic["transcriptPhrase"], p["text"]);
                        assert_eq!(topic["participant"], p["participantPurpose"]);
                        assert_eq!(topic["type"], "topic");
                        let c = topic["confidence"].as_f64().unwrap();
                        assert!((0.9..1.0).contains(&c), "{c}");
                        let name = topic["topicName"].as_str().unwrap().to_string();
                        let id = topic["topicId"].as_str().unwrap().to_string();
                        assert_eq!(topic_ids.entry(name.clone()).or_insert(id.clone()), &id);
                        let text = p["text"].as_str().unwrap();
                        let named = gen.count_matches(text).keys().copied().collect::<Vec<_>>();
                        if in_outage && name == "connectivity" && named == [0] {
                            connectivity += 1;
                        }
                    }
                }
            }
        }
        assert!(
            scored > 1000 && redactions > 10,
            "{scored} scored, {redactions} redactions"
        );
        assert!(
            connectivity > 20,
            "{connectivity} connectivity phrases in the outage"
        );
        assert!(topic_ids.len() >= 6, "{topic_ids:?}");
    }

    #[test]
    fn decorated_text_has_the_same_mentions_and_redactions_none() {
        let config = cfg();
        let gen = Generator::new(&config);
        let mut decorated = 0;
        for i in (0..gen.len()).filter(|&i| gen.media(i) == Media::Voice) {
            let doc: Value = serde_json::from_slice(&transcript_document(&gen, i, "")).unwrap();
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

#[cfg(test)]
mod traffic_tests {
    use super::*;
    use crate::simulator::{SimConfig, SimProduct, Traffic};
    use chrono::NaiveDate;

    fn cfg(traffic: Traffic) -> SimConfig {
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
        cfg.conversations = 200;
        cfg.days = 5;
        cfg.start = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        cfg.traffic = traffic;
        cfg
    }

    use super::tests::Client;

    fn link(gen: &Generator, i: usize, sid: &str, plural: bool) -> String {
        format!(
            "/api/v2/speechandtextanalytics/conversations/{}/communications/{sid}/transcripturl{}",
            gen.id(i),
            if plural { "s" } else { "" }
        )
    }

    fn voice(gen: &Generator) -> Vec<usize> {
        (0..gen.len())
            .filter(|&i| gen.media(i) == Media::Voice)
            .collect()
    }

    /// The voice sessions of a conversation record's participants with this purpose.
    fn sessions<'a>(r: &'a Value, purpose: &str) -> Vec<&'a Value> {
        r["participants"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["purpose"] == purpose)
            .flat_map(|p| p["sessions"].as_array().unwrap())
            .collect()
    }

    #[tokio::test]
    async fn callbacks_open_with_a_callback_session_and_match_the_voice_filter() {
        let config = cfg(Traffic {
            callback_rate: 1.0,
            ..Traffic::OFF
        });
        let gen = Generator::new(&config);
        let c = Client::new(config.clone()).await;
        let body = json!({"interval": "2026-03-01T00:00:00Z/2026-03-06T00:00:00Z",
            "segmentFilters": [{"type": "or", "predicates": [
                {"type": "dimension", "dimension": "mediaType", "operator": "matches", "value": "voice"}]}]});
        let job: Value = c
            .http
            .post(format!("{}{JOBS}", c.sim.url))
            .bearer_auth(&c.token)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let job = job["jobId"].as_str().unwrap();
        for _ in 0..3 {
            c.json(&format!("{JOBS}/{job}")).await;
        }
        let page = c.json(&format!("{JOBS}/{job}/results?pageSize=1000")).await;
        let convs = page["conversations"].as_array().unwrap();
        assert_eq!(convs.len(), voice(&gen).len());
        for r in convs {
            let customer = sessions(r, "customer");
            assert_eq!(customer.len(), 2, "{r}");
            assert_eq!(customer[0]["mediaType"], "callback");
            assert!(customer[0]["callbackNumbers"][0].as_str().is_some());
            assert!(customer[0]["callbackScheduledTime"].as_str().is_some());
            assert!(customer[0].get("recording").is_none());
            assert_eq!(customer[1]["mediaType"], "voice");
            assert_eq!(customer[1]["recording"], true);
            // The transcript is read from the recorded voice session, as without a callback.
            let sid = customer[1]["sessionId"].as_str().unwrap();
            let i = st_index(&gen, r);
            assert_eq!(sid, ids(&gen, i).customer.1);
        }
        assert_eq!(
            crate::simulator::callbacks(&config, config.start, config.start + Duration::days(5))
                .len(),
            convs.len()
        );
        // Deterministic: the same record twice.
        let i = voice(&gen)[0];
        assert_eq!(record(&gen, i, true), record(&gen, i, true));
        c.sim.shutdown().await;
    }

    fn st_index(gen: &Generator, r: &Value) -> usize {
        let id = r["conversationId"].as_str().unwrap();
        (0..gen.len()).find(|&i| gen.id(i) == id).unwrap()
    }

    #[tokio::test]
    async fn transferred_calls_have_a_recorded_session_per_leg_sharing_one_document() {
        let config = cfg(Traffic {
            transfer_rate: 1.0,
            ..Traffic::OFF
        });
        let gen = Generator::new(&config);
        let c = Client::new(config).await;
        let (mut three, mut checked) = (0, 0);
        for i in voice(&gen).into_iter().take(25) {
            let shape = gen.shape(i);
            let legs = shape.legs();
            assert!((2..=3).contains(&legs), "{shape:?}");
            three += usize::from(legs == 3);
            let r = record(&gen, i, true);
            let customer = sessions(&r, "customer");
            let agents = sessions(&r, "agent");
            assert_eq!((customer.len(), agents.len()), (legs, legs));
            let mut seen: Vec<(&'static str, i64, String)> = Vec::new();
            for (j, (cs, ag)) in customer.iter().zip(&agents).enumerate() {
                assert_eq!(cs["recording"], true);
                assert_eq!(ag["recording"], true);
                let transfer = cs["segments"][0]["disconnectType"] == "transfer";
                assert_eq!(transfer, j + 1 < legs);
                let csid = cs["sessionId"].as_str().unwrap();
                let asid = ag["sessionId"].as_str().unwrap();
                let url = |v: Value| v["url"].as_str().unwrap().to_string();
                let doc_c = c
                    .http
                    .get(url(c.json(&link(&gen, i, csid, false)).await))
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
                let doc_a = c
                    .http
                    .get(url(c.json(&link(&gen, i, asid, false)).await))
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
                assert_eq!(doc_c, doc_a, "one recording, one document");
                let doc: Value = serde_json::from_slice(&doc_c).unwrap();
                assert_eq!(doc["communicationId"], csid);
                let (from, to) = (
                    doc["startTime"].as_i64().unwrap(),
                    doc["startTime"].as_i64().unwrap()
                        + doc["duration"]["milliseconds"].as_i64().unwrap(),
                );
                for p in doc["transcripts"][0]["phrases"].as_array().unwrap() {
                    let t = p["startTimeMs"].as_i64().unwrap();
                    assert!(
                        t >= from && (t < to || j + 1 == legs),
                        "{t} not in {from}..{to}"
                    );
                    let who = if p["participantPurpose"] == "external" {
                        "customer"
                    } else {
                        "internal"
                    };
                    let text = p["decoratedText"]
                        .as_str()
                        .or(p["text"].as_str())
                        .unwrap()
                        .to_string();
                    seen.push((
                        who,
                        t - doc["conversationStartTime"].as_i64().unwrap(),
                        text,
                    ));
                }
                // The plural endpoint: one link per recording, the recording the list shows.
                let plural = c.json(&link(&gen, i, asid, true)).await;
                assert_eq!(plural["communicationId"], asid);
                assert_eq!(plural["conversation"]["id"], gen.id(i).as_str());
                let urls = plural["urls"].as_array().unwrap();
                assert_eq!(urls.len(), 1);
                let recs = c
                    .json(&format!("/api/v2/conversations/{}/recordings", gen.id(i)))
                    .await;
                let rec = recs
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|r| r["sessionId"] == csid)
                    .unwrap();
                assert_eq!(urls[0]["recording"]["id"], rec["id"]);
                assert_eq!(recs.as_array().unwrap().len(), legs);
            }
            // The legs partition the call: together they hold every phrase exactly once.
            let want: Vec<(&'static str, i64, String)> = voice_utterances(&gen, i)
                .into_iter()
                .map(|(w, o, t)| (if w == "customer" { w } else { "internal" }, o, t))
                .collect();
            assert_eq!(seen, want, "conversation {i}");
            checked += 1;
        }
        assert!(checked == 25 && three > 3 && three < 22, "{three}");
        c.sim.shutdown().await;
    }

    #[tokio::test]
    async fn without_the_sta_permission_the_singular_is_403_and_the_plural_works() {
        let config = cfg(Traffic {
            sta_permission: false,
            ..Traffic::OFF
        });
        let gen = Generator::new(&config);
        let c = Client::new(config).await;
        let i = voice(&gen)[0];
        let sid = ids(&gen, i).customer.1;
        let resp = c.get(&link(&gen, i, &sid, false)).await;
        assert_eq!(resp.status(), 403);
        let err: Value = resp.json().await.unwrap();
        assert_eq!(err["code"], "missing.permissions");
        assert_eq!(err["status"], 403);
        assert!(err["message"]
            .as_str()
            .unwrap()
            .contains("[speechAndTextAnalytics:data:view]"));
        let plural = c.json(&link(&gen, i, &sid, true)).await;
        let url = plural["urls"][0]["url"].as_str().unwrap();
        let doc: Value = c.http.get(url).send().await.unwrap().json().await.unwrap();
        assert_eq!(doc["conversationId"], gen.id(i).as_str());
        c.sim.shutdown().await;
    }

    #[tokio::test]
    async fn gone_links_answer_nosuchkey_and_late_transcripts_arrive() {
        let config = cfg(Traffic {
            gone_rate: 1.0,
            ..Traffic::OFF
        });
        let gen = Generator::new(&config);
        let c = Client::new(config.clone()).await;
        let i = voice(&gen)[0];
        let sid = ids(&gen, i).customer.1;
        let url = c.json(&link(&gen, i, &sid, false)).await["url"]
            .as_str()
            .unwrap()
            .to_string();
        let resp = c.http.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 404);
        assert!(resp
            .text()
            .await
            .unwrap()
            .contains("<Code>NoSuchKey</Code>"));
        let missing = crate::simulator::expected_missing(
            &config,
            config.start,
            config.start + Duration::days(5),
            &["voice"],
        );
        assert_eq!(missing.len(), voice(&gen).len());
        assert!(missing.iter().all(|(_, r)| *r == "gone"));
        c.sim.shutdown().await;

        let config = cfg(Traffic {
            late_rate: 1.0,
            late_for_secs: 0.5,
            ..Traffic::OFF
        });
        let gen = Generator::new(&config);
        let c = Client::new(config.clone()).await;
        // Late transcripts are the recent calls': a voice call of the period's last day.
        let i = (0..gen.len())
            .rev()
            .find(|&k| gen.media(k) == Media::Voice && gen.shape(k).late)
            .unwrap();
        let sid = ids(&gen, i).customer.1;
        assert_eq!(c.get(&link(&gen, i, &sid, false)).await.status(), 404);
        assert_eq!(c.get(&link(&gen, i, &sid, true)).await.status(), 404);
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        assert_eq!(c.get(&link(&gen, i, &sid, false)).await.status(), 200);
        // Late transcripts are not missing: a correct client stages them once they arrive.
        let end = config.start + Duration::days(5);
        assert!(crate::simulator::expected_missing(&config, config.start, end, &[]).is_empty());
        c.sim.shutdown().await;
    }

    #[tokio::test]
    async fn archived_and_errored_recordings_have_no_text() {
        let config = cfg(Traffic {
            archived_rate: 0.5,
            recording_error_rate: 1.0,
            ..Traffic::OFF
        });
        let gen = Generator::new(&config);
        let c = Client::new(config.clone()).await;
        let (mut archived, mut errored) = (0, 0);
        for i in (0..gen.len())
            .filter(|&i| gen.media(i) != Media::Voice)
            .take(40)
        {
            let recs = c
                .json(&format!("/api/v2/conversations/{}/recordings", gen.id(i)))
                .await;
            let r = &recs[0];
            let texts = ["transcript", "messagingTranscript", "emailTranscript"];
            let shape = gen.shape(i);
            if shape.archived {
                archived += 1;
                assert_eq!(r["fileState"], "ARCHIVED");
                assert_eq!(r["archiveMedium"], "CLOUDARCHIVE");
                assert!(r["archiveDate"].as_str().is_some() && r.get("sessionId").is_none());
                assert!(texts.iter().all(|t| r.get(*t).is_none()), "{r}");
            } else if gen.media(i) == Media::Email {
                errored += 1;
                assert_eq!(r["recordingErrorStatus"], "EMAIL_TRANSCRIPT_TOO_LARGE");
                assert!(texts.iter().all(|t| r.get(*t).is_none()), "{r}");
            } else {
                assert_eq!(r["fileState"], "AVAILABLE");
                assert!(texts.iter().any(|t| r.get(*t).is_some()), "{r}");
            }
        }
        assert!(archived > 5 && errored > 0, "{archived} {errored}");
        let end = config.start + Duration::days(5);
        let missing = crate::simulator::expected_missing(&config, config.start, end, &[]);
        let count = |r: &str| missing.iter().filter(|m| m.1 == r).count();
        let digital = (0..gen.len())
            .filter(|&i| gen.media(i) != Media::Voice)
            .count();
        assert!(count("archived") > 0 && count("error:EMAIL_TRANSCRIPT_TOO_LARGE") > 0);
        assert_eq!(
            count("archived") + count("error:EMAIL_TRANSCRIPT_TOO_LARGE"),
            {
                let emails = (0..gen.len())
                    .filter(|&i| gen.media(i) == Media::Email && !gen.shape(i).archived)
                    .count();
                (0..gen.len()).filter(|&i| gen.shape(i).archived).count() + emails
            }
        );
        assert!(count("archived") < digital);
        c.sim.shutdown().await;
    }

    #[tokio::test]
    async fn ongoing_conversations_have_no_end_and_no_text_and_availability_holds_back_results() {
        let mut config = cfg(Traffic {
            ongoing_rate: 1.0,
            ..Traffic::OFF
        });
        let last_day = config.start + Duration::days(4);
        let gen = Generator::new(&config);
        let on_last = |i: usize| gen.start(i).date_naive() == last_day;
        let v = *voice(&gen).iter().find(|&&i| on_last(i)).unwrap();
        let d = (0..gen.len())
            .find(|&i| on_last(i) && gen.media(i) != Media::Voice)
            .unwrap();
        assert!((0..gen.len()).all(|i| gen.shape(i).ongoing == on_last(i)));
        let r = record(&gen, v, true);
        assert!(r.get("conversationEnd").is_none());
        let open = sessions(&r, "customer")[0]["segments"][0].clone();
        assert!(open.get("segmentEnd").is_none() && open.get("segmentStart").is_some());
        // Availability just before the last conversation ends: job results hold it back.
        config.data_availability = Some(gen.end(d - 1) + Duration::milliseconds(1));
        let c = Client::new(config.clone()).await;
        let sid = ids(&gen, v).customer.1;
        assert_eq!(c.get(&link(&gen, v, &sid, false)).await.status(), 404);
        let recs = c
            .json(&format!("/api/v2/conversations/{}/recordings", gen.id(d)))
            .await;
        assert_eq!(recs, json!([]));
        let job: Value = c
            .http
            .post(format!("{}{JOBS}", c.sim.url))
            .bearer_auth(&c.token)
            .json(&json!({"interval": "2026-03-01T00:00:00Z/2026-03-06T00:00:00Z"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let job = job["jobId"].as_str().unwrap();
        for _ in 0..3 {
            c.json(&format!("{JOBS}/{job}")).await;
        }
        let page = c.json(&format!("{JOBS}/{job}/results?pageSize=1000")).await;
        let ids: Vec<&str> = page["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["conversationId"].as_str().unwrap())
            .collect();
        let want: Vec<String> = (0..gen.len())
            .filter(|&i| !on_last(i) && gen.end(i) <= config.data_availability.unwrap())
            .map(|i| gen.id(i))
            .collect();
        assert_eq!(ids, want);
        assert_eq!(
            page["dataAvailabilityDate"],
            iso(config.data_availability.unwrap()).as_str()
        );
        assert_eq!(
            c.get(&format!("{JOBS}/{job}/results?pageSize=1001"))
                .await
                .status(),
            400
        );
        let end = config.start + Duration::days(5);
        assert!(crate::simulator::expected_utterances(&config, last_day, end, &[]).is_empty());
        assert!(crate::simulator::expected_missing(&config, last_day, end, &[]).is_empty());
        c.sim.shutdown().await;
    }

    #[test]
    fn ivr_phrases_fall_in_the_ivr_window_and_agents_in_theirs() {
        let config = cfg(Traffic::OFF);
        let gen = Generator::new(&config);
        let mut ivr = 0;
        for i in voice(&gen) {
            let doc: Value = serde_json::from_slice(&transcript_document(&gen, i, "")).unwrap();
            let windows: Vec<(&str, i64, i64)> = doc["participants"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        p["participantPurpose"].as_str().unwrap(),
                        p["startTimeMs"].as_i64().unwrap(),
                        p["endTimeMs"].as_i64().unwrap(),
                    )
                })
                .collect();
            let start = doc["conversationStartTime"].as_i64().unwrap();
            let want = voice_utterances(&gen, i);
            let phrases = doc["transcripts"][0]["phrases"].as_array().unwrap();
            assert_eq!(phrases.len(), want.len());
            for (p, (who, offset, _)) in phrases.iter().zip(&want) {
                let t = p["startTimeMs"].as_i64().unwrap();
                assert_eq!(t - start, *offset);
                if p["participantPurpose"] == "internal" {
                    // Exactly one internal window holds an internal phrase: its speaker.
                    let holders: Vec<&str> = windows
                        .iter()
                        .filter(|w| w.0 != "customer" && w.1 <= t && t < w.2.max(w.1 + 1))
                        .map(|w| w.0)
                        .collect();
                    assert_eq!(holders, [*who], "conversation {i} at {t}: {windows:?}");
                    ivr += usize::from(*who == "ivr");
                } else {
                    assert_eq!(*who, "customer");
                }
            }
            // The derived speakers are the generated ones (plus redacted customer phrases).
            let conv = gen.conversation(i);
            let generated = |p: &str| {
                conv.interactions
                    .iter()
                    .filter(|u| u.participant == p)
                    .count()
            };
            let derived = |p: &str| want.iter().filter(|w| w.0 == p).count();
            assert_eq!(
                (derived("ivr"), derived("agent")),
                (generated("ivr"), generated("agent"))
            );
            assert!(derived("customer") >= generated("customer"));
        }
        assert!(ivr > 10, "{ivr}");
    }

    #[tokio::test]
    async fn a_session_recorded_twice_has_two_links_with_the_same_phrases() {
        let config = cfg(Traffic {
            duplicate_recording_rate: 1.0,
            ..Traffic::OFF
        });
        let gen = Generator::new(&config);
        let c = Client::new(config).await;
        let i = voice(&gen)[0];
        assert!(gen.shape(i).duplicate_recording);
        let sid = ids(&gen, i).customer.1;
        let plural = c.json(&link(&gen, i, &sid, true)).await;
        let urls = plural["urls"].as_array().unwrap();
        assert_eq!(urls.len(), 2);
        let recs = c
            .json(&format!("/api/v2/conversations/{}/recordings", gen.id(i)))
            .await;
        let rec_ids: Vec<&Value> = recs.as_array().unwrap().iter().map(|r| &r["id"]).collect();
        let url_ids: Vec<&Value> = urls.iter().map(|u| &u["recording"]["id"]).collect();
        assert_eq!(rec_ids, url_ids);
        assert_ne!(url_ids[0], url_ids[1]);
        let mut docs = Vec::new();
        for u in urls {
            let doc: Value = c
                .http
                .get(u["url"].as_str().unwrap())
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            docs.push(doc);
        }
        let t = |d: &Value| d["transcripts"][0].clone();
        assert_eq!(docs[0]["communicationId"], docs[1]["communicationId"]);
        assert_eq!(t(&docs[0])["phrases"], t(&docs[1])["phrases"]);
        assert_ne!(t(&docs[0])["transcriptId"], t(&docs[1])["transcriptId"]);
        // The singular link is the first recording's.
        let one = c.json(&link(&gen, i, &sid, false)).await;
        let doc: Value = c
            .http
            .get(one["url"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(doc, docs[0]);
        // Still one set of utterances to stage.
        assert_eq!(
            t(&doc)["phrases"].as_array().unwrap().len(),
            voice_utterances(&gen, i).len()
        );
        c.sim.shutdown().await;
    }

    #[tokio::test]
    async fn the_transcript_endpoints_have_their_own_rate_limit() {
        let config = cfg(Traffic {
            transcript_url_rate_limit: Some(2),
            ..Traffic::OFF
        });
        let gen = Generator::new(&config);
        let c = Client::new(config).await;
        let i = voice(&gen)[0];
        let sid = ids(&gen, i).customer.1;
        assert_eq!(c.get(&link(&gen, i, &sid, false)).await.status(), 200);
        assert_eq!(c.get(&link(&gen, i, &sid, true)).await.status(), 200);
        let over = c.get(&link(&gen, i, &sid, false)).await;
        assert_eq!(over.status(), 429);
        let retry: u64 = over.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry));
        let body: Value = over.json().await.unwrap();
        assert_eq!(body["code"], "too.many.requests.retry.after");
        // Other endpoints are not held back by it.
        c.json(&format!("/api/v2/conversations/{}/recordings", gen.id(i)))
            .await;
        c.sim.shutdown().await;
    }
}
