//! A seeded, Genesys-compatible HTTP server on loopback, used by `demo`, tests and benchmarks.
//!
//! It serves OAuth client credentials (`POST /oauth/token`) and the archive query contract of
//! GENESYS.md §9 (`POST /api/v2/archiving/conversations/query` and `GET` of its `nextPageUri`),
//! with the §5 rate-limit headers, normalised 429 bodies and `ININ-Correlation-Id`.
//!
//! Invariants:
//! - Conversations are a pure function of ([`SimConfig`], index) and are generated on demand
//!   ([`gen`]); the server holds only tokens and rate-limit windows, never the archive.
//! - The same query returns byte-identical pages, and page cursors are stateless, so paging works
//!   across restarts of a simulator with the same configuration.
//! - [`ground_truth`] is exactly the set of mentions inserted into the text: near misses and
//!   filler words never match a product as a whole word.

mod gen;
mod server;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{Duration, NaiveDate, Utc};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::secret::Secret;

pub use gen::{
    conversation, ground_truth, Conversation, Generator, GroundTruth, Interaction, Media,
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
    /// The 0-based page index (within any one query) that returns truncated JSON with status 200.
    pub malformed_page: Option<usize>,
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
        }
    }

    fn validate(&self) -> Result<(), SimError> {
        let bad = |m: &str| Err(SimError::InvalidConfig(m.to_string()));
        let rate = |p: f64| (0.0..=1.0).contains(&p);
        if self.days == 0 {
            return bad("days must be at least 1");
        }
        if !rate(self.faults.rate_429) || !rate(self.faults.rate_500) {
            return bad("fault rates must be between 0 and 1");
        }
        if self.faults.rate_429 + self.faults.rate_500 > 1.0 {
            return bad("rate_429 + rate_500 must not exceed 1");
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

/// A simulator serving in a background task; stop it with [`RunningSimulator::shutdown`].
pub struct RunningSimulator {
    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub url: String,
    /// The bound address.
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
    requests: Arc<AtomicU64>,
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
        self.requests.load(Ordering::Relaxed)
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
    let requests = Arc::new(AtomicU64::new(0));
    let app = server::router(cfg, requests.clone());
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
        requests,
    })
}
