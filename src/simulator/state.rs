//! The server's shared state ([`AppState`]: issued tokens, rate-limit windows, fault counters,
//! details jobs, transcript-link and recording clocks, the id → index map, the dictionary
//! feedback entries; never the archive)
//! and the admission of an API request: injected faults, the bearer token, per-token limits.
//!
//! Invariants: injected faults are deterministic given the seed and the number of calls so far;
//! a poisoned lock is taken over, since no map here can be left inconsistent.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};

use super::gen::{Generator, Rng};
use super::respond::{error, too_many, unauthorized, CorrelationId, RateInfo};
use super::{Counters, SimConfig};

const STREAM_FAULT: u64 = 0xfa17;
const STREAM_NETWORK: u64 = 0xd809;
const STREAM_PRESIGNED: u64 = 0x5195;
pub(super) const WINDOW: Duration = Duration::from_secs(60);

pub(super) struct AppState {
    pub(super) cfg: SimConfig,
    pub(super) gen: Generator,
    /// Issued access tokens and when they stop working.
    pub(super) tokens: Mutex<HashMap<String, Instant>>,
    /// Per-token rate-limit window: (window start, requests in it).
    pub(super) windows: Mutex<HashMap<String, (Instant, u32)>>,
    /// Per-token window of the transcript-link endpoints (`Traffic::transcript_url_rate_limit`).
    transcript_windows: Mutex<HashMap<String, (Instant, u32)>>,
    pub(super) counters: Arc<Counters>,
    api_calls: AtomicU64,
    network_calls: AtomicU64,
    presigned_calls: AtomicU64,
    /// Details jobs, transcript links and recordings readiness.
    pub(super) analytics: AnalyticsState,
    /// The dictionary feedback entries (shared with the running simulator, for tests).
    pub(super) feedback: Arc<FeedbackStore>,
}

/// Mutable state of the real-API endpoints (`analytics.rs`).
pub(super) struct AnalyticsState {
    pub(super) jobs: Mutex<HashMap<String, Job>>,
    /// conversation id → index, built on first use.
    pub(super) ids: OnceLock<HashMap<String, usize>>,
    /// Digital conversations whose recordings were already asked for, and when first.
    pub(super) prepared: Mutex<HashMap<usize, std::time::Instant>>,
    /// Late voice transcripts: when each conversation's transcript was first asked for.
    pub(super) late: Mutex<HashMap<usize, std::time::Instant>>,
    pub(super) key: [u8; 32],
}

impl AnalyticsState {
    pub(super) fn new(cfg: &SimConfig) -> AnalyticsState {
        let key = *blake3::hash(format!("convlake-sim-s3|{}", cfg.seed).as_bytes()).as_bytes();
        AnalyticsState {
            jobs: Mutex::new(HashMap::new()),
            ids: OnceLock::new(),
            prepared: Mutex::new(HashMap::new()),
            late: Mutex::new(HashMap::new()),
            key,
        }
    }
}

pub(super) struct Job {
    pub(super) query: Listing,
    pub(super) polls: u32,
    pub(super) submitted: DateTime<Utc>,
    pub(super) cancelled: bool,
}

/// A parsed listing request: which conversations, in which window.
#[derive(Clone)]
pub(super) struct Listing {
    pub(super) start: DateTime<Utc>,
    pub(super) end: DateTime<Utc>,
    pub(super) filter: Filter,
    pub(super) start_of_day: bool,
    pub(super) limit: Option<usize>,
}

/// A details filter tree, reduced to what the simulator can decide.
#[derive(Clone, Debug)]
pub(super) enum Filter {
    All(Vec<Filter>),
    Any(Vec<Filter>),
    Media(String),
    ConversationId(String),
    True,
}

impl AppState {
    /// The state of a fresh server; `counters` counts what is served.
    pub(super) fn new(
        cfg: SimConfig,
        counters: Arc<Counters>,
        feedback: Arc<FeedbackStore>,
    ) -> AppState {
        AppState {
            feedback,
            gen: Generator::new(&cfg),
            analytics: AnalyticsState::new(&cfg),
            cfg,
            tokens: Mutex::new(HashMap::new()),
            windows: Mutex::new(HashMap::new()),
            transcript_windows: Mutex::new(HashMap::new()),
            counters,
            api_calls: AtomicU64::new(0),
            network_calls: AtomicU64::new(0),
            presigned_calls: AtomicU64::new(0),
        }
    }

    /// (slow, dropped) for one request: deterministic given the seed and the request count.
    pub(super) fn network_fault(&self) -> (bool, bool) {
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
    pub(super) fn presigned_fault(&self) -> bool {
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
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave a map of tokens or counters inconsistent.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One stored dictionary feedback entry (served by `dictionary_feedback`).
#[derive(Clone, Debug, PartialEq)]
pub struct DictionaryFeedbackEntry {
    pub id: String,
    pub term: String,
    pub dialect: String,
    pub boost_value: f64,
    pub example_phrases: Vec<String>,
    pub sounds_like: Vec<String>,
    /// The user id in `createdBy` (the seeded entries': an administrator's).
    pub created_by: String,
    pub date_created: DateTime<Utc>,
    pub date_modified: DateTime<Utc>,
    /// Times it was updated (`PUT`).
    pub updates: u32,
}

/// The dictionary feedback entries, shared by the server and [`super::RunningSimulator`] (for
/// tests), by id.
pub struct FeedbackStore {
    pub(super) entries: Mutex<BTreeMap<String, DictionaryFeedbackEntry>>,
}

impl FeedbackStore {
    /// A store holding `entries`.
    pub(super) fn new(entries: Vec<DictionaryFeedbackEntry>) -> FeedbackStore {
        FeedbackStore {
            entries: Mutex::new(entries.into_iter().map(|e| (e.id.clone(), e)).collect()),
        }
    }

    /// Every entry, by id.
    pub fn entries(&self) -> Vec<DictionaryFeedbackEntry> {
        lock(&self.entries).values().cloned().collect()
    }
}
