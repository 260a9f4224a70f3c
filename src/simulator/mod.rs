//! A seeded, Genesys-compatible HTTP server on loopback, used by `demo`, tests and benchmarks.
//!
//! It serves OAuth client credentials (`POST /oauth/token`), the real Genesys Cloud endpoints of
//! GENESYS.md §8 ([`analytics`]: details jobs and query, STA transcript links and documents,
//! recordings; [`dictionary_feedback`]: Speech and Text Analytics dictionary feedback, with
//! entries a person made already there) and the archive query contract of GENESYS.md §9, with the §5 rate-limit headers,
//! normalised 429 bodies, `ININ-Correlation-Id` and injectable faults ([`Faults`]). It also
//! serves the shapes of real traffic ([`Traffic`]: callbacks, transferred calls, sessions
//! recorded twice, archived and errored recordings, late and deleted transcripts, a role without
//! the STA permission, ongoing conversations, OAuth-shaped login errors, per-endpoint limits).
//! A [`Scenario`] plants a story in the data (an outage, a launch: [`planted_events`]), and every
//! utterance has a sentiment label that the STA documents' phrase sentiment follows.
//!
//! Invariants:
//! - Conversations are a pure function of ([`SimConfig`], index) and are generated on demand
//!   ([`gen`]); the server holds tokens, rate-limit windows, submitted details jobs and an
//!   id → index map, never the archive.
//! - The same query returns byte-identical pages, and page cursors are stateless, so paging works
//!   across restarts of a simulator with the same configuration.
//! - [`ground_truth`] is exactly the set of mentions inserted into the text: near misses and
//!   filler words never match a product as a whole word.
//! - Traffic shapes change how a conversation is presented and whether its text can be read,
//!   never the text: [`expected_utterances`] is what a correct client stages (each phrase once),
//!   [`expected_missing`] what it counts as missing and why, and [`ground_truth`] counts only
//!   conversations with text.
//! - [`ground_truth`] includes the planted events' mentions; a product no event names is
//!   mentioned exactly as under [`Scenario::Flat`].

mod analytics;
mod archive;
mod dictionary_feedback;
mod gen;
mod respond;
mod server;
mod state;
mod story;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::secret::Secret;

pub use dictionary_feedback::seeded as seeded_dictionary_feedback;
pub use gen::{
    conversation, ground_truth, planted_events, untranscribed, utterance_labels, Conversation,
    Generator, GroundTruth, Interaction, Media, Shape, RAW_PII,
};
pub use state::DictionaryFeedbackEntry;
pub use story::{PlantedEvent, Scenario, UnknownScenario};

/// One utterance a correct client stages, exactly as it reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedUtterance {
    /// The conversation.
    pub conversation_id: String,
    /// `customer`, `agent` or `ivr` (voice: from the transcript's participant windows).
    pub participant: &'static str,
    /// Milliseconds from the conversation's start.
    pub offset_ms: i64,
    /// Voice: `decoratedText` when the phrase has one, else `text`; digital: the message body.
    pub text: String,
}

/// How many conversations of a range have each traffic shape (see [`Traffic`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShapeCounts {
    /// Voice callbacks.
    pub callbacks: usize,
    /// Transferred voice calls (2 or 3 recorded legs).
    pub transfers: usize,
    /// Voice conversations never transcribed (404).
    pub untranscribed: usize,
    /// Transcripts deleted with their recording (presigned 404).
    pub gone: usize,
    /// Transcripts that appear late.
    pub late: usize,
    /// Archived digital recordings.
    pub archived: usize,
    /// Digital recordings with a `recordingErrorStatus`.
    pub errored: usize,
    /// Conversations still going on.
    pub ongoing: usize,
    /// Voice sessions with two recordings (the same phrases twice).
    pub duplicated: usize,
}

fn day_range(gen: &Generator, from: NaiveDate, to_exclusive: NaiveDate) -> std::ops::Range<usize> {
    let midnight = |d: NaiveDate| d.and_time(chrono::NaiveTime::MIN).and_utc();
    gen.index_range(midnight(from), midnight(to_exclusive))
}

fn media_wanted(gen: &Generator, i: usize, media: &[&str]) -> bool {
    media.is_empty() || media.contains(&gen.media(i).as_str())
}

/// Every utterance a correct client stages for conversations starting in `[from, to_exclusive)`
/// (UTC days) whose media is in `media` (empty: all), in conversation then time order: each
/// voice phrase once (transferred legs and their agent sessions de-duplicated, IVR phrases as
/// `ivr`), each digital message once. Conversations without text ([`expected_missing`], and
/// ongoing ones) are left out; late transcripts are in (they arrive).
pub fn expected_utterances(
    cfg: &SimConfig,
    from: NaiveDate,
    to_exclusive: NaiveDate,
    media: &[&str],
) -> Vec<ExpectedUtterance> {
    let gen = Generator::new(cfg);
    let mut out = Vec::new();
    for i in day_range(&gen, from, to_exclusive) {
        if !media_wanted(&gen, i, media) || !gen.has_text(i) {
            continue;
        }
        let id = gen.id(i);
        if gen.media(i) == Media::Voice {
            for (participant, offset_ms, text) in analytics::voice_utterances(&gen, i) {
                out.push(ExpectedUtterance {
                    conversation_id: id.clone(),
                    participant,
                    offset_ms,
                    text,
                });
            }
        } else {
            let conv = gen.conversation(i);
            for it in conv.interactions {
                out.push(ExpectedUtterance {
                    conversation_id: id.clone(),
                    participant: it.participant,
                    offset_ms: (it.timestamp - conv.start).num_milliseconds(),
                    text: it.transcript,
                });
            }
        }
    }
    out
}

/// For voice conversation `index`: (participant, text, sentiment) of every utterance a correct
/// client stages from its transcripts, in [`expected_utterances`]' order. The sentiment is the
/// transcript's (`analytics.sentiment[]`): the phrase's label for customer phrases (0 for a
/// redaction), `None` for agent and IVR phrases, which Genesys does not score.
pub fn voice_phrase_sentiments(
    cfg: &SimConfig,
    index: usize,
) -> Vec<(&'static str, String, Option<i8>)> {
    analytics::voice_phrase_sentiments(&Generator::new(cfg), index)
}

/// The conversations starting in `[from, to_exclusive)` whose media is in `media` (empty: all)
/// that a correct client counts as missing, with the reason: `"404"` (never transcribed),
/// `"gone"` (presigned 404), `"archived"`, `"error:<recordingErrorStatus>"`. Late transcripts
/// and ongoing conversations are not missing: their text comes later.
pub fn expected_missing(
    cfg: &SimConfig,
    from: NaiveDate,
    to_exclusive: NaiveDate,
    media: &[&str],
) -> Vec<(String, &'static str)> {
    let gen = Generator::new(cfg);
    let mut out = Vec::new();
    for i in day_range(&gen, from, to_exclusive) {
        if !media_wanted(&gen, i, media) {
            continue;
        }
        let s = gen.shape(i);
        let reason = if s.ongoing {
            None
        } else if !gen.has_transcript(i) {
            Some("404")
        } else if s.gone {
            Some("gone")
        } else if s.archived {
            Some("archived")
        } else {
            s.recording_error.map(|e| match e {
                "EMAIL_TRANSCRIPT_TOO_LARGE" => "error:EMAIL_TRANSCRIPT_TOO_LARGE",
                _ => "error",
            })
        };
        if let Some(r) = reason {
            out.push((gen.id(i), r));
        }
    }
    out
}

/// Ids of the voice callbacks starting in `[from, to_exclusive)` (a client's `subtype`
/// `callback`).
pub fn callbacks(cfg: &SimConfig, from: NaiveDate, to_exclusive: NaiveDate) -> Vec<String> {
    let gen = Generator::new(cfg);
    day_range(&gen, from, to_exclusive)
        .filter(|&i| gen.shape(i).callback)
        .map(|i| gen.id(i))
        .collect()
}

/// Counts of each traffic shape among the conversations starting in `[from, to_exclusive)`.
pub fn shape_counts(cfg: &SimConfig, from: NaiveDate, to_exclusive: NaiveDate) -> ShapeCounts {
    let gen = Generator::new(cfg);
    let mut c = ShapeCounts::default();
    for i in day_range(&gen, from, to_exclusive) {
        let s = gen.shape(i);
        c.callbacks += usize::from(s.callback);
        c.transfers += usize::from(s.legs() > 1);
        c.untranscribed += usize::from(!s.ongoing && !gen.has_transcript(i));
        c.gone += usize::from(s.gone);
        c.late += usize::from(s.late);
        c.archived += usize::from(s.archived);
        c.errored += usize::from(s.recording_error.is_some());
        c.ongoing += usize::from(s.ongoing);
        c.duplicated += usize::from(s.duplicate_recording);
    }
    c
}

/// A product the simulator mentions: its canonical name and extra surface forms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimProduct {
    /// The canonical name, as written in the dictionary.
    pub name: String,
    /// Other spellings that count as this product.
    pub aliases: Vec<String>,
}

impl SimProduct {
    /// The products of a dictionary: its names and aliases.
    pub fn of_dictionary(dict: &crate::extract::Dictionary) -> Vec<SimProduct> {
        dict.products
            .iter()
            .map(|p| SimProduct {
                name: p.name.clone(),
                aliases: p.aliases.clone(),
            })
            .collect()
    }
}

/// Injected failures on API calls (never on `/oauth/token`).
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Probability that a request gets 429 with `Retry-After: 1` and the normalised body.
    pub rate_429: f64,
    /// Probability that a request gets 503.
    pub rate_500: f64,
    /// The 0-based page index (within any one query, details job or details query) that returns
    /// truncated JSON with status 200.
    pub malformed_page: Option<usize>,
    /// Probability that a request's connection is dropped: the status line arrives, then the body
    /// breaks off (also on the presigned transcript links).
    pub drop_rate: f64,
    /// Probability that a GET of a presigned transcript link (only those) breaks off the same
    /// way: the client's error path for presigned links, whose URL carries a signature.
    pub presigned_drop_rate: f64,
    /// Probability that a response is delayed by `slow_ms`.
    pub slow_rate: f64,
    /// The delay of a slow response, in milliseconds.
    pub slow_ms: u64,
    /// Probability that a digital conversation's recordings are "still being prepared" on the
    /// first request: 202 with an empty body, or 200 with an empty body.
    pub not_ready_rate: f64,
    /// The recordings `not_ready_rate` picks stay "being prepared" for this many seconds after
    /// they were first asked for (each conversation its own clock), then become ready; `None`:
    /// only the first request is refused.
    pub not_ready_for_secs: Option<f64>,
    /// Tokens stop working this many seconds after they were issued, whatever `expires_in` said
    /// (a revoked or early-expired token): the next API call gets 401 `bad.credentials`.
    pub revoke_tokens_after_secs: Option<u64>,
}

/// The shapes of real contact-center traffic (GENESYS.md §2.2, §2.3, §3, §6), each a share of
/// the conversations it applies to, picked per conversation from (seed, index) on a stream of
/// its own: the text a conversation holds never changes, only how it is presented and whether
/// it can be read. [`Traffic::OFF`] (the [`SimConfig::new`] default) is the documented happy path;
/// [`Traffic::MIX`] is the realistic mix `convlake simulate` and `convlake demo` serve.
#[derive(Clone, Debug, PartialEq)]
pub struct Traffic {
    /// Share of voice conversations that are callbacks: the customer's first session has
    /// `mediaType: "callback"` (`callbackNumbers`, `callbackScheduledTime`, not recorded), then
    /// comes the recorded `voice` session. A `mediaType` filter matches either session.
    pub callback_rate: f64,
    /// Share of voice conversations transferred to a second (half of them a third) agent: one
    /// recorded customer voice session per leg (its own `sessionId`, segments covering the leg,
    /// `disconnectType: "transfer"` on earlier legs), each with its own recorded agent session;
    /// each leg's transcript holds only the phrases of its window, and the agent session of a
    /// leg answers with the same document as the customer's (the same recording).
    pub transfer_rate: f64,
    /// False: the role lacks `speechAndTextAnalytics:data:view`, so the singular `transcripturl`
    /// answers 403 `missing.permissions`; the plural `transcripturls` (recording permissions
    /// only) still works.
    pub sta_permission: bool,
    /// Share of transcribed voice conversations whose transcript was deleted with its recording:
    /// the link is issued, the presigned GET answers 404 `NoSuchKey`. They have no text.
    pub gone_rate: f64,
    /// Share of digital conversations whose recording is archived: the recordings list holds a
    /// stub (`fileState: ARCHIVED`, `archiveDate`, `archiveMedium`, no `sessionId`, no text).
    pub archived_rate: f64,
    /// Share of email conversations (not archived) whose recording has `recordingErrorStatus:
    /// EMAIL_TRANSCRIPT_TOO_LARGE` and no `emailTranscript` (the only value of the SDK's enum,
    /// so chat and messaging never get one).
    pub recording_error_rate: f64,
    /// Share of the transcribed voice conversations of the period's last day (the recent calls)
    /// whose transcript appears late: `transcripturl(s)` answers 404 until `late_for_secs` after
    /// the first transcript request for the conversation, then serves it.
    pub late_rate: f64,
    /// How long a late transcript stays 404, in seconds (from the first request for it).
    pub late_for_secs: f64,
    /// Share of the conversations starting on the last day of the period that are still going
    /// on: no `conversationEnd`, no `segmentEnd` on their open segments, no transcript (404) and
    /// an empty recordings list. They have no text yet.
    pub ongoing_rate: f64,
    /// Share of transcribed voice calls (not transferred) whose customer session has two
    /// recordings: the plural `transcripturls` gives two links whose documents hold the same
    /// phrases (a client must not stage them twice); the singular gives the first.
    pub duplicate_recording_rate: f64,
    /// Login errors in OAuth form (`{"error":"invalid_client","description",
    /// "error_description"}`, status 400) instead of the API's 401 `bad.credentials`.
    pub oauth_errors: bool,
    /// Requests a minute per token to `transcripturl` and `transcripturls` together, on top of
    /// the per-token limit (real 429, `Retry-After`, normalised body); `None` is unlimited.
    pub transcript_url_rate_limit: Option<u32>,
}

impl Traffic {
    /// Every shape off: the documented happy path.
    pub const OFF: Traffic = Traffic {
        callback_rate: 0.0,
        transfer_rate: 0.0,
        sta_permission: true,
        gone_rate: 0.0,
        archived_rate: 0.0,
        recording_error_rate: 0.0,
        late_rate: 0.0,
        late_for_secs: 0.0,
        ongoing_rate: 0.0,
        duplicate_recording_rate: 0.0,
        oauth_errors: false,
        transcript_url_rate_limit: None,
    };

    /// A realistic mix (the defaults of `convlake simulate` and the demo's traffic). Late
    /// transcripts stay 404 for 5 s only, so a demo run sees them arrive.
    pub const MIX: Traffic = Traffic {
        callback_rate: 0.08,
        transfer_rate: 0.12,
        sta_permission: true,
        gone_rate: 0.01,
        archived_rate: 0.03,
        recording_error_rate: 0.02,
        late_rate: 0.25,
        late_for_secs: 5.0,
        ongoing_rate: 0.02,
        duplicate_recording_rate: 0.02,
        oauth_errors: true,
        transcript_url_rate_limit: None,
    };

    /// [`Traffic::MIX`].
    pub fn mix() -> Traffic {
        Traffic::MIX
    }
}

impl Default for Traffic {
    fn default() -> Self {
        Traffic::OFF
    }
}

/// Everything that determines what the simulator serves.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Total conversations over the whole period.
    pub conversations: usize,
    /// The first day (UTC).
    pub start: NaiveDate,
    /// Number of days; conversations start in `[start, start + days)`.
    pub days: u32,
    /// Seed for all generated data.
    pub seed: u64,
    /// The accepted client id; `None` accepts any non-empty id.
    pub client_id: Option<String>,
    /// The accepted client secret; `None` accepts any secret.
    pub client_secret: Option<Secret>,
    /// Access-token lifetime in seconds.
    pub token_ttl_secs: u64,
    /// Requests per token per 60 s window before a real 429; `None` is unlimited.
    pub rate_limit_per_minute: Option<u32>,
    /// The product dictionary mentions are drawn from.
    pub products: Vec<SimProduct>,
    /// Injected failures.
    pub faults: Faults,
    /// Share of voice conversations that have no Speech & Text Analytics transcript: their
    /// `transcripturl` answers 404, the archive serves them without interactions, and the ground
    /// truth leaves them out (see [`untranscribed`]).
    pub untranscribed_rate: f64,
    /// Status polls a details job answers before it is FULFILLED (QUEUED, then PENDING).
    pub job_polls: u32,
    /// The longest interval the synchronous details query accepts, in days.
    pub max_query_interval_days: u32,
    /// The most results the synchronous details query pages through (`pageSize*pageNumber`).
    pub max_query_results: usize,
    /// Lifetime of a presigned transcript link, in seconds (Genesys: 600).
    pub transcript_url_ttl_secs: u64,
    /// `dataAvailabilityDate` of the analytics data lake; `None` is "now".
    pub data_availability: Option<DateTime<Utc>>,
    /// How long conversations are (utterances per conversation).
    pub lengths: Lengths,
    /// The shapes of real traffic (callbacks, transfers, archived and late texts, ...).
    pub traffic: Traffic,
    /// The story the data tells ([`Scenario::Flat`]: none; see [`planted_events`]).
    pub scenario: Scenario,
    /// The role may only view dictionary feedback: creating, updating and deleting an entry
    /// answer 403 `missing.permissions` naming `speechAndTextAnalytics:dictionaryterm:add`
    /// (`:edit`, `:delete`).
    pub dictionary_view_only: bool,
    /// Customers of chat, email and messaging type personal data as it is (card numbers, some
    /// with a wrong check digit, e-mail addresses, phone numbers, IBANs, SSNs: [`RAW_PII`])
    /// where the flat data has Genesys's redaction tags: what `fetch --mask pii` is for.
    pub raw_pii: bool,
}

/// Utterances per conversation, by media type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Lengths {
    /// Short conversations, quick to serve in tests: voice 8–40 phrases, chat 4–20 messages,
    /// email 1–4, messaging 3–15.
    #[default]
    Short,
    /// Contact-center lengths: voice 20–200 phrases, chat 5–60 messages, email 1–5, messaging
    /// 3–40.
    Realistic,
}

impl SimConfig {
    /// Defaults: 500 conversations over the 30 days before today (UTC), seed 42, 24 h tokens,
    /// no rate limit, no faults, any credentials.
    pub fn new(products: Vec<SimProduct>) -> Self {
        SimConfig {
            conversations: 500,
            start: Utc::now().date_naive() - Duration::days(30),
            days: 30,
            seed: 42,
            client_id: None,
            client_secret: None,
            token_ttl_secs: 86_400,
            rate_limit_per_minute: None,
            products,
            faults: Faults::default(),
            untranscribed_rate: 0.0,
            job_polls: 3,
            max_query_interval_days: 31,
            max_query_results: 100_000,
            transcript_url_ttl_secs: 600,
            data_availability: None,
            lengths: Lengths::Short,
            traffic: Traffic::OFF,
            scenario: Scenario::Flat,
            dictionary_view_only: false,
            raw_pii: false,
        }
    }

    /// This configuration with the realistic traffic mix ([`Traffic::MIX`]).
    pub fn with_real_traffic_mix(mut self) -> Self {
        self.traffic = Traffic::MIX;
        self
    }

    fn validate(&self) -> Result<(), SimError> {
        let bad = |m: &str| Err(SimError::InvalidConfig(m.to_string()));
        let rate = |p: f64| (0.0..=1.0).contains(&p);
        if self.days == 0 {
            return bad("days must be at least 1");
        }
        let f = &self.faults;
        let rates = [
            f.rate_429,
            f.rate_500,
            f.drop_rate,
            f.presigned_drop_rate,
            f.slow_rate,
            f.not_ready_rate,
            self.untranscribed_rate,
            self.traffic.callback_rate,
            self.traffic.transfer_rate,
            self.traffic.gone_rate,
            self.traffic.archived_rate,
            self.traffic.recording_error_rate,
            self.traffic.late_rate,
            self.traffic.ongoing_rate,
            self.traffic.duplicate_recording_rate,
        ];
        if !rates.into_iter().all(rate) {
            return bad("fault rates must be between 0 and 1");
        }
        if f.not_ready_for_secs
            .is_some_and(|s| !(s.is_finite() && s >= 0.0))
        {
            return bad("not_ready_for_secs must be a non-negative number of seconds");
        }
        let late = self.traffic.late_for_secs;
        if !(late.is_finite() && late >= 0.0) {
            return bad("late_for_secs must be a non-negative number of seconds");
        }
        if self.traffic.transcript_url_rate_limit == Some(0) {
            return bad("transcript_url_rate_limit must be positive");
        }
        if f.rate_429 + f.rate_500 + f.drop_rate > 1.0 {
            return bad("the 429, 5xx and dropped-connection rates must not sum to more than 1");
        }
        if self.job_polls == 0 || self.max_query_interval_days == 0 || self.max_query_results == 0 {
            return bad(
                "job_polls, max_query_interval_days and max_query_results must be positive",
            );
        }
        if self.token_ttl_secs == 0 || self.rate_limit_per_minute == Some(0) {
            return bad("token_ttl_secs and rate_limit_per_minute must be positive");
        }
        Ok(())
    }
}

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The listening socket could not be opened.
    #[error("simulator: cannot listen on {addr}: {source} (is the port in use? use port 0 for a free one)")]
    Bind {
        /// The requested address.
        addr: SocketAddr,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The configuration is unusable.
    #[error("simulator: invalid configuration: {0}")]
    InvalidConfig(String),
}

/// What the simulator served so far, by kind of request; for tests and benchmarks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Every HTTP request, injected faults included.
    pub requests: u64,
    /// Requests under `/api/` (the ones the rate limit counts).
    pub api_requests: u64,
    /// `POST /oauth/token`.
    pub tokens: u64,
    /// Analytics details requests: jobs (submit, status, results, availability) and queries.
    pub listing: u64,
    /// `GET …/transcripturl`.
    pub transcript_urls: u64,
    /// `GET /api/v2/conversations/{id}/recordings`.
    pub recordings: u64,
    /// Requests to the dictionary feedback endpoints.
    pub dictionary_feedback: u64,
    /// GETs of presigned transcript links (not API requests).
    pub presigned: u64,
    /// Responses with status 429 (injected or over the rate limit).
    pub too_many: u64,
    /// Responses with status 401.
    pub unauthorized: u64,
    /// The `interval` of every details job submitted, in order.
    pub job_intervals: Vec<String>,
    /// `(interval, pageNumber)` of every details query answered, in order.
    pub query_pages: Vec<(String, u64)>,
}

/// Live counters behind [`SimStats`].
#[derive(Default)]
pub(crate) struct Counters {
    requests: AtomicU64,
    api_requests: AtomicU64,
    tokens: AtomicU64,
    listing: AtomicU64,
    transcript_urls: AtomicU64,
    recordings: AtomicU64,
    dictionary_feedback: AtomicU64,
    presigned: AtomicU64,
    too_many: AtomicU64,
    unauthorized: AtomicU64,
    job_intervals: Mutex<Vec<String>>,
    query_pages: Mutex<Vec<(String, u64)>>,
    /// Every access token and presigned-link signature handed out, for tests that check that
    /// none of them leaks.
    issued: Mutex<Vec<Secret>>,
}

impl Counters {
    /// Records a credential the simulator issued.
    pub(crate) fn issue(&self, credential: &str) {
        if let Ok(mut v) = self.issued.lock() {
            v.push(Secret::new(credential));
        }
    }
}

impl Counters {
    fn snapshot(&self) -> SimStats {
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let list = |m: &Mutex<Vec<String>>| m.lock().map(|v| v.clone()).unwrap_or_default();
        SimStats {
            requests: n(&self.requests),
            api_requests: n(&self.api_requests),
            tokens: n(&self.tokens),
            listing: n(&self.listing),
            transcript_urls: n(&self.transcript_urls),
            recordings: n(&self.recordings),
            dictionary_feedback: n(&self.dictionary_feedback),
            presigned: n(&self.presigned),
            too_many: n(&self.too_many),
            unauthorized: n(&self.unauthorized),
            job_intervals: list(&self.job_intervals),
            query_pages: self
                .query_pages
                .lock()
                .map(|v| v.clone())
                .unwrap_or_default(),
        }
    }
}

/// A simulator serving in a background task; stop it with [`RunningSimulator::shutdown`].
pub struct RunningSimulator {
    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub url: String,
    /// The bound address.
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
    counters: Arc<Counters>,
    feedback: Arc<state::FeedbackStore>,
}

impl RunningSimulator {
    /// Stops accepting connections and waits for in-flight requests to finish.
    pub async fn shutdown(self) {
        // The receiver lives in the server task; if it is gone the server has already stopped.
        let _ = self.stop.send(());
        if let Err(e) = self.task.await {
            tracing::warn!("simulator task ended abnormally: {e}");
        }
    }

    /// Total HTTP requests served so far, including injected faults.
    pub fn requests(&self) -> u64 {
        self.counters.requests.load(Ordering::Relaxed)
    }

    /// Requests served so far, by kind.
    pub fn stats(&self) -> SimStats {
        self.counters.snapshot()
    }

    /// The dictionary feedback entries it holds now, by id (the seeded ones included).
    pub fn dictionary_feedback(&self) -> Vec<DictionaryFeedbackEntry> {
        self.feedback.entries()
    }

    /// Every credential issued so far: access tokens and the signatures (`X-Amz-Signature`) of
    /// presigned transcript links. Tests look for them in outputs, logs and the lake.
    pub fn issued_credentials(&self) -> Vec<Secret> {
        self.counters
            .issued
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default()
    }
}

/// Binds `addr` (use port 0 for a free port) and serves in a spawned tokio task.
pub async fn start(cfg: SimConfig, addr: SocketAddr) -> Result<RunningSimulator, SimError> {
    cfg.validate()?;
    let bind_err = |source| SimError::Bind { addr, source };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(bind_err)?;
    let local = listener.local_addr().map_err(bind_err)?;
    let counters = Arc::new(Counters::default());
    let feedback = Arc::new(state::FeedbackStore::new(dictionary_feedback::seeded(
        cfg.seed,
    )));
    let app = server::router(cfg, counters.clone(), feedback.clone());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!("simulator server failed: {e}");
        }
    });
    tracing::debug!("simulator listening on {local}");
    Ok(RunningSimulator {
        url: format!("http://{local}"),
        addr: local,
        stop,
        task,
        counters,
        feedback,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(traffic: Traffic) -> SimConfig {
        let p = |name: &str, aliases: &[&str]| SimProduct {
            name: name.into(),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
        };
        let mut cfg = SimConfig::new(vec![
            p("Acme Router", &["acme wifi router"]),
            p("CloudPhone Pro", &[]),
            p("Nimbus Hub", &[]),
        ]);
        cfg.conversations = 1500;
        cfg.days = 6;
        cfg.start = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap_or_default();
        cfg.untranscribed_rate = 0.03;
        cfg.traffic = traffic;
        cfg
    }

    /// What a correct client stages (voice phrases as the STA documents give them, digital
    /// messages) under the realistic mix, pinned on the simulator as it was before sentiment labels
    /// and scenarios came in: the flat scenario must not move a byte of it.
    #[test]
    fn the_flat_staged_text_never_moves() {
        let mix = cfg(Traffic::MIX);
        let end = mix.start + Duration::days(2);
        let mut h = blake3::Hasher::new();
        for u in expected_utterances(&mix, mix.start, end, &[]) {
            let line = format!(
                "{}|{}|{}|{}\n",
                u.conversation_id, u.participant, u.offset_ms, u.text
            );
            h.update(line.as_bytes());
        }
        assert_eq!(
            h.finalize().to_hex().to_string(),
            "14040dc2f46169558de357e95d7919a29c7acfbcf7ff5ec7470cd64c2a1f5360"
        );
    }

    /// The phrase sentiments line up with what a client stages: same speakers and texts, a
    /// sentiment for the customer's phrases only; digital conversations have a label per message.
    #[test]
    fn phrase_sentiments_follow_the_staged_utterances() {
        let mut c = cfg(Traffic::MIX);
        c.scenario = Scenario::OutageAndLaunch;
        let gen = Generator::new(&c);
        let end = c.start + Duration::days(6);
        let staged = expected_utterances(&c, c.start, end, &["voice"]);
        let mut k = 0;
        let mut seen = [0; 3];
        for i in (0..gen.len()).filter(|&i| gen.has_text(i)) {
            if gen.media(i) != Media::Voice {
                let n = gen.conversation(i).interactions.len();
                assert_eq!(utterance_labels(&c, i).len(), n);
                continue;
            }
            for (who, text, sentiment) in voice_phrase_sentiments(&c, i) {
                let u = &staged[k];
                assert_eq!((u.participant, &u.text), (who, &text));
                assert_eq!(sentiment.is_some(), who == "customer", "{text}");
                if let Some(s) = sentiment {
                    seen[(s + 1) as usize] += 1;
                }
                k += 1;
            }
        }
        assert_eq!(k, staged.len());
        assert!(seen.iter().all(|n| *n > 50), "{seen:?}");
        assert_eq!(planted_events(&c).len(), 2);
    }

    #[test]
    fn traffic_changes_the_presentation_never_the_text() {
        let (off, mix) = (cfg(Traffic::OFF), cfg(Traffic::MIX));
        let (a, b) = (Generator::new(&off), Generator::new(&mix));
        for i in 0..off.conversations {
            assert_eq!(a.conversation(i), b.conversation(i));
            assert_eq!(b.shape(i), b.shape(i));
            assert_eq!(a.shape(i), Shape::default());
        }
        let end = mix.start + Duration::days(6);
        assert_eq!(
            expected_utterances(&mix, mix.start, end, &[]),
            expected_utterances(&mix, mix.start, end, &[])
        );
        // Every shape of the mix is there.
        let c = shape_counts(&mix, mix.start, end);
        for (what, n) in [
            ("callbacks", c.callbacks),
            ("transfers", c.transfers),
            ("gone", c.gone),
            ("late", c.late),
            ("archived", c.archived),
            ("errored", c.errored),
            ("ongoing", c.ongoing),
            ("untranscribed", c.untranscribed),
            ("duplicated", c.duplicated),
        ] {
            assert!(n > 0, "no {what} in {c:?}");
        }
    }

    #[test]
    fn the_expected_utterances_hold_exactly_the_ground_truth() {
        let mix = cfg(Traffic::MIX);
        let gen = Generator::new(&mix);
        let end = mix.start + Duration::days(6);
        let expected = expected_utterances(&mix, mix.start, end, &[]);
        let missing = expected_missing(&mix, mix.start, end, &[]);
        let mut found: std::collections::BTreeMap<String, u64> = Default::default();
        let mut with_text = std::collections::BTreeSet::new();
        for u in &expected {
            with_text.insert(u.conversation_id.clone());
            for (p, n) in gen.count_matches(&u.text) {
                *found.entry(mix.products[p].name.clone()).or_default() += n as u64;
            }
        }
        let truth = ground_truth(&mix, mix.start, end, &[]);
        assert_eq!(found, truth.totals_by_product());
        // Missing, ongoing and readable conversations partition the range.
        let ongoing = (0..gen.len()).filter(|&i| gen.shape(i).ongoing).count();
        assert!(missing.iter().all(|(id, _)| !with_text.contains(id)));
        assert_eq!(with_text.len() + missing.len() + ongoing, gen.len());
        let reasons: std::collections::BTreeSet<&str> = missing.iter().map(|m| m.1).collect();
        assert_eq!(
            reasons.into_iter().collect::<Vec<_>>(),
            [
                "404",
                "archived",
                "error:EMAIL_TRANSCRIPT_TOO_LARGE",
                "gone"
            ]
        );
        // IVR phrases are staged as ivr; voice text is what a client reads (decorated or not).
        assert!(expected.iter().any(|u| u.participant == "ivr"));
        assert!(expected
            .iter()
            .any(|u| u.text.ends_with('.') && u.text.contains(char::is_uppercase)));
        // untranscribed() agrees with the "404" reasons.
        let mut a = untranscribed(&mix, mix.start, end);
        let mut b: Vec<String> = missing
            .iter()
            .filter(|m| m.1 == "404")
            .map(|m| m.0.clone())
            .collect();
        a.sort();
        b.sort();
        assert_eq!(a, b);
        // A media filter keeps only that media.
        let voice = expected_utterances(&mix, mix.start, end, &["voice"]);
        assert!(!voice.is_empty() && voice.len() < expected.len());
    }
}
