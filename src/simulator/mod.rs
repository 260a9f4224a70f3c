//! A seeded, Genesys-compatible HTTP server on loopback, used by `demo`, tests and benchmarks.
//!
//! It serves OAuth client credentials (`POST /oauth/token`), the real Genesys Cloud endpoints of
//! GENESYS.md §8 ([`analytics`]: details jobs and query, STA transcript links and documents,
//! recordings) and the archive query contract of GENESYS.md §9, with the §5 rate-limit headers,
//! normalised 429 bodies, `ININ-Correlation-Id` and injectable faults ([`Faults`]).
//!
//! Invariants:
//! - Conversations are a pure function of ([`SimConfig`], index) and are generated on demand
//!   ([`gen`]); the server holds tokens, rate-limit windows, submitted details jobs and an
//!   id → index map, never the archive.
//! - The same query returns byte-identical pages, and page cursors are stateless, so paging works
//!   across restarts of a simulator with the same configuration.
//! - [`ground_truth`] is exactly the set of mentions inserted into the text: near misses and
//!   filler words never match a product as a whole word.

mod analytics;
mod gen;
mod server;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::secret::Secret;

pub use gen::{
    conversation, ground_truth, untranscribed, Conversation, Generator, GroundTruth, Interaction,
    Media,
};

/// A product the simulator mentions: its canonical name and extra surface forms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimProduct {
    /// The canonical name, as written in the dictionary.
    pub name: String,
    /// Other spellings that count as this product.
    pub aliases: Vec<String>,
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
}

/// Utterances per conversation, by media type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
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
        }
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
        ];
        if !rates.into_iter().all(rate) {
            return bad("fault rates must be between 0 and 1");
        }
        if f.not_ready_for_secs
            .is_some_and(|s| !(s.is_finite() && s >= 0.0))
        {
            return bad("not_ready_for_secs must be a non-negative number of seconds");
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
    let app = server::router(cfg, counters.clone());
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
    })
}
