//! The aggregate stage on an Apache DataFusion Ballista cluster, and the cluster itself.
//!
//! `convlake aggregate --engine ballista --scheduler df://host:50050` plans the same SQL from
//! `sql/` in a session whose query planner sends the plan to the scheduler; executors read
//! the lake's Parquet files themselves and the results come back to this process, which
//! writes the aggregate files exactly as the local engine does (same SQL, same sort, same
//! schema, same bytes). `convlake ballista scheduler` and `convlake ballista executor` run
//! the cluster from the same binary ([`serve`]); [`cluster::LocalCluster`] starts one on
//! loopback for benchmarks and tests.
//!
//! Invariant: the plan shipped to the cluster names only files (by URL) and literals; every
//! node resolves the URLs through [`stores::LakeStores`], so a node needs the lake's path
//! (or bucket and credentials), never this process's memory. A node reads only the lake its
//! `--lake` names, and listens on loopback unless `--bind` says otherwise.

pub mod cluster;
pub mod serve;
/// The registry every node and client reads the lake through (shared with the local engine).
pub use crate::lake::stores;

use std::sync::Arc;
use std::time::Duration;

use ::ballista::prelude::{SessionConfigExt, SessionContextExt};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::SessionContext;

pub use stores::LakeStores;

/// The port a scheduler listens on unless told otherwise.
pub const DEFAULT_SCHEDULER_PORT: u16 = 50050;

/// Errors of the Ballista engine and of the cluster commands; each names the address or the
/// flag at fault and the next step.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{given:?} is not a Ballista scheduler address like {example}: {reason}")]
    SchedulerUrl {
        given: String,
        example: &'static str,
        reason: String,
    },
    #[error("cannot reach the Ballista scheduler at {url}: {reason}. Start one with `convlake ballista scheduler --lake LAKE --bind ADDRESS:{port}` on that machine (ADDRESS on a private network: the cluster has no authentication), or fix --scheduler (CONVLAKE_SCHEDULER)")]
    Unreachable {
        url: String,
        port: u16,
        reason: String,
    },
    #[error("the Ballista scheduler at {url} is not ready ({status}): start executors with `convlake ballista executor --scheduler {host_port}` and try again")]
    NoExecutors {
        url: String,
        host_port: String,
        status: String,
    },
    #[error("{url} answered like something other than a Ballista scheduler ({status}); check --scheduler (CONVLAKE_SCHEDULER)")]
    NotAScheduler { url: String, status: String },
    #[error("cannot set up the Ballista session: {0}")]
    Setup(String),
    #[error("the Ballista {role} cannot listen on {addr}: {reason}. Is another process using that port? Pick another with --bind")]
    Bind {
        role: &'static str,
        addr: String,
        reason: String,
    },
    #[error("{0}")]
    Usage(String),
    #[error("the Ballista scheduler on {addr} stopped: {reason}")]
    SchedulerFailed { addr: String, reason: String },
    #[error("the Ballista executor stopped: {reason}. Check that the scheduler at {scheduler} is running (`convlake ballista scheduler`) and that the ports in --bind and --grpc-port are free")]
    ExecutorFailed { scheduler: String, reason: String },
    #[error(
        "cannot use {path} as the executor's work directory: {reason}. Pass a writable --work-dir"
    )]
    WorkDir { path: String, reason: String },
    #[error("the local Ballista cluster did not come up: {0}")]
    LocalCluster(String),
}

/// A scheduler's address, from `df://host[:port]` (or `host[:port]` where allowed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchedulerAddr {
    pub host: String,
    pub port: u16,
}

impl SchedulerAddr {
    /// Parses `df://host[:port]`; `bare` also accepts `host[:port]` (the executor's flag).
    pub fn parse(given: &str, bare: bool) -> Result<SchedulerAddr, ClusterError> {
        let example = if bare {
            "scheduler.internal:50050"
        } else {
            "df://scheduler.internal:50050"
        };
        let bad = |reason: String| ClusterError::SchedulerUrl {
            given: given.to_string(),
            example,
            reason,
        };
        let text = given.trim();
        let with_scheme = if text.contains("://") {
            text.to_string()
        } else if bare {
            format!("df://{text}")
        } else {
            return Err(bad("it has no df:// scheme".into()));
        };
        let url = url::Url::parse(&with_scheme).map_err(|e| bad(e.to_string()))?;
        if url.scheme() != "df" {
            return Err(bad(format!("the scheme is {}://, not df://", url.scheme())));
        }
        let host = match url.host_str() {
            Some(h) if !h.is_empty() => h.to_string(),
            _ => return Err(bad("it names no host".into())),
        };
        if !matches!(url.path(), "" | "/") || url.query().is_some() {
            return Err(bad("a scheduler address has no path or query".into()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("a scheduler address has no user or password".into()));
        }
        let port = url.port().unwrap_or(DEFAULT_SCHEDULER_PORT);
        if port == 0 {
            return Err(bad("port 0 is not a port a scheduler listens on".into()));
        }
        Ok(SchedulerAddr { host, port })
    }

    /// `df://host:port`, the form clients are given.
    pub fn df_url(&self) -> String {
        format!("df://{}:{}", self.host, self.port)
    }

    /// `host:port`, the form executors are given.
    pub fn host_port(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The scheduler's readiness probe (served on the same port as its gRPC service).
    fn readyz_url(&self) -> String {
        format!("http://{}:{}/readyz", self.host, self.port)
    }

    /// Asks the scheduler whether it is up and has executors, so a dead address or an empty
    /// cluster is a clear error now rather than a hung or obscure query later.
    pub async fn check_ready(&self) -> Result<(), ClusterError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ClusterError::Setup(e.to_string()))?;
        let response =
            client
                .get(self.readyz_url())
                .send()
                .await
                .map_err(|e| ClusterError::Unreachable {
                    url: self.df_url(),
                    port: self.port,
                    reason: error_chain(&e),
                })?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        let body = body.trim().to_string();
        if status.is_success() {
            return Ok(());
        }
        if status == reqwest::StatusCode::SERVICE_UNAVAILABLE && body.starts_with("not ready") {
            return Err(ClusterError::NoExecutors {
                url: self.df_url(),
                host_port: self.host_port(),
                status: body,
            });
        }
        Err(ClusterError::NotAScheduler {
            url: self.df_url(),
            status: format!("HTTP {status} on /readyz"),
        })
    }
}

/// An error and its causes on one line (reqwest hides the useful part in `source()`).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

/// A session whose queries run on the cluster behind `scheduler` (`df://host:port`), with
/// convlake's settings ([`crate::lake::tables::session_config`]). Fails early and clearly when the
/// scheduler is unreachable or has no executors.
pub async fn connect(scheduler: &str) -> Result<SessionContext, ClusterError> {
    forward_logs();
    let addr = SchedulerAddr::parse(scheduler, false)?;
    addr.check_ready().await?;
    SessionContext::remote_with_state(&addr.df_url(), session_state()?)
        .await
        .map_err(|e| ClusterError::Setup(e.to_string()))
}

/// The client's session state before Ballista's planner is added: convlake's settings with
/// Ballista's restrictions applied once, and the lake's object stores.
fn session_state() -> Result<datafusion::execution::SessionState, ClusterError> {
    let config = crate::lake::tables::session_config()
        .upgrade_for_ballista()
        .with_ballista_job_name("convlake aggregate");
    let runtime = RuntimeEnvBuilder::new()
        .with_object_store_registry(Arc::new(LakeStores::default()))
        .build_arc()
        .map_err(|e| ClusterError::Setup(e.to_string()))?;
    Ok(SessionStateBuilder::new()
        .with_default_features()
        .with_config(config)
        .with_runtime_env(runtime)
        .build())
}

/// Ballista logs through the `log` crate; this hands its records to `tracing`, under the
/// target `convlake::ballista`, so `-v`/`RUST_LOG` govern them like the rest of convlake.
struct ForwardLogs;

const LOG_TARGET: &str = "convlake::ballista";

impl log::Log for ForwardLogs {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        match metadata.level() {
            log::Level::Error => tracing::enabled!(target: LOG_TARGET, tracing::Level::ERROR),
            log::Level::Warn => tracing::enabled!(target: LOG_TARGET, tracing::Level::WARN),
            log::Level::Info => tracing::enabled!(target: LOG_TARGET, tracing::Level::INFO),
            log::Level::Debug => tracing::enabled!(target: LOG_TARGET, tracing::Level::DEBUG),
            log::Level::Trace => tracing::enabled!(target: LOG_TARGET, tracing::Level::TRACE),
        }
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let (from, args) = (record.target(), record.args());
        match record.level() {
            log::Level::Error => tracing::error!(target: LOG_TARGET, "{from}: {args}"),
            log::Level::Warn => tracing::warn!(target: LOG_TARGET, "{from}: {args}"),
            log::Level::Info => tracing::info!(target: LOG_TARGET, "{from}: {args}"),
            log::Level::Debug => tracing::debug!(target: LOG_TARGET, "{from}: {args}"),
            log::Level::Trace => tracing::trace!(target: LOG_TARGET, "{from}: {args}"),
        }
    }

    fn flush(&self) {}
}

/// Installs [`ForwardLogs`] once per process (a second call is a no-op).
pub fn forward_logs() {
    static LOGGER: ForwardLogs = ForwardLogs;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Trace);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduler_addresses_parse_or_say_what_is_wrong() {
        let a = SchedulerAddr::parse("df://10.0.0.5:50051", false).unwrap();
        assert_eq!((a.host.as_str(), a.port), ("10.0.0.5", 50051));
        assert_eq!(a.df_url(), "df://10.0.0.5:50051");
        let d = SchedulerAddr::parse("df://sched.internal", false).unwrap();
        assert_eq!(d.port, DEFAULT_SCHEDULER_PORT);
        let bare = SchedulerAddr::parse("sched.internal:6000", true).unwrap();
        assert_eq!(bare.host_port(), "sched.internal:6000");

        for (given, bare, says) in [
            ("sched.internal:50050", false, "no df:// scheme"),
            ("http://sched:50050", false, "not df://"),
            ("df://", false, "no host"),
            ("df://sched:50050/x", false, "no path"),
            ("df://sched:99999", false, "sched:99999"),
            ("df://sched:0", false, "port 0"),
            ("df://u:p@sched:1", false, "no user"),
        ] {
            let err = SchedulerAddr::parse(given, bare).unwrap_err().to_string();
            assert!(err.contains(given), "{err}");
            assert!(err.contains(says), "{given}: {err}");
        }
    }

    /// Ballista's standalone mode (scheduler and executor in this process, talking gRPC and
    /// Flight over loopback) writes byte-identical aggregates to the local engine's.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_standalone_cluster_writes_the_local_engines_bytes() {
        use super::super::{aggregate, aggregate_in};
        use crate::lake::tables::{register_lake, InMemory};

        let dir = tempfile::tempdir().unwrap();
        let dict = crate::extract::Dictionary::embedded();
        let lake = crate::testkit::simulated_lake(dir.path(), &dict).await;
        let version = dict.version.as_str();

        let local = aggregate(&lake, version).await.unwrap();
        let g = crate::lake::aggregates::generation_of(&lake, version)
            .await
            .unwrap()
            .unwrap();

        assert!(local.rows > 20 && local.mentions > 100, "{local:?}");

        let ctx = SessionContext::standalone_with_state(session_state().unwrap())
            .await
            .unwrap();
        register_lake(&ctx, &lake, version, InMemory::Inline)
            .await
            .unwrap();
        // The query really goes to the cluster, not to a local fallback.
        let plan = ctx
            .sql(super::super::CONVERSATION_MENTIONS_SQL)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        assert_eq!(plan.name(), "DistributedQueryExec", "{plan:?}");

        let remote = aggregate_in(&ctx, &lake, version, None).await.unwrap();
        assert_eq!(remote, local);
        // Files are named by their content: the cluster's generation is the local one's.
        let again = crate::lake::aggregates::generation_of(&lake, version)
            .await
            .unwrap()
            .unwrap();
        assert!(
            again.seq > g.seq,
            "the cluster's run published a generation"
        );
        assert_eq!(
            (&again.mention_counts, &again.conversation_mentions),
            (&g.mention_counts, &g.conversation_mentions),
            "the engines' files differ"
        );
        again.read_both(&lake).await.unwrap();
    }

    #[tokio::test]
    async fn an_unreachable_scheduler_is_named_with_the_next_step() {
        // A port nothing listens on: bind one, then close it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = connect(&format!("df://127.0.0.1:{port}"))
            .await
            .err()
            .expect("nothing listens there")
            .to_string();
        assert!(err.contains(&format!("df://127.0.0.1:{port}")), "{err}");
        assert!(err.contains("convlake ballista scheduler"), "{err}");
    }
}
