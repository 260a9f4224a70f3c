//! The settings of every command, as plain values: what the flags, the environment and
//! convlake.toml said, after parsing and before any check that can fail.
//!
//! `cli` turns flags into these by conversions that cannot fail and do no I/O; the commands and
//! stages read only these, never clap. The defaults live here once ([`defaults`]): clap's
//! `default_value`s name the same constants as the `Default` impls, and a unit test in `cli`
//! checks that parsing no flags gives `Default`. Checks that can fail (a date range, a page
//! size against the listing, credentials) stay where the command runs them, so users see the
//! same errors in the same order.

use std::path::PathBuf;
use std::time::Duration;

use chrono::NaiveDate;

use crate::extract::Shard;
use crate::secret::Secret;
use crate::simulator::{Lengths, Scenario, Traffic};

/// Every default a flag has, in one place.
pub mod defaults {
    pub const LAKE: &str = "data/lake";
    pub const MEDIA: &str = "voice,chat,email,message";
    pub const REGION: &str = "us-east-1";
    pub const BATCH_SIZE: u32 = 100;
    pub const MAX_ATTEMPTS: u32 = 8;
    pub const TIMEOUT_SECS: u64 = 60;
    pub const INTERVAL_DAYS: u32 = 7;
    pub const CONCURRENCY: u32 = 4;
    pub const LATENESS: &str = "24h";
    pub const TRANSCRIPT_GRACE: &str = "72h";
    pub const JOB_POLL_MAX_SECS: f64 = 3.0;
    pub const NOT_READY_ATTEMPTS: u32 = 5;
    pub const NOT_READY_WAIT_SECS: f64 = 10.0;
    pub const JOB_TIMEOUT: &str = "30m";
    pub const DB_SCHEMA: &str = "public";
    pub const REPORT_TOP: usize = 8;
    pub const EXAMPLES: usize = 3;
    pub const DEMO_CONVERSATIONS: usize = 2000;
    pub const DAYS: u32 = 30;
    pub const SEED: u64 = 42;
    pub const SIM_PORT: u16 = 8089;
    pub const SIM_CONVERSATIONS: usize = 500;
    pub const SIM_SLOW_MS: u64 = 2000;
    pub const SIM_TOKEN_TTL_SECS: u64 = 86_400;
    pub const SIM_UNTRANSCRIBED: f64 = 0.03;
    pub const SIM_NOT_READY: f64 = 0.05;
    pub const SIM_JOB_POLLS: u32 = 3;
    pub const SIM_MAX_QUERY_DAYS: u32 = 31;
    pub const SIM_TRANSCRIPT_URL_TTL_SECS: u64 = 600;
    /// The story `simulate` and `demo` plant in their data.
    pub const SCENARIO: crate::simulator::Scenario = crate::simulator::Scenario::OutageAndLaunch;
    pub const MIN_COUNT: u64 = 3;
    pub const CANDIDATES_LIMIT: usize = 30;
    pub const SCHEDULER_BIND: &str = "127.0.0.1:50050";
    pub const EXECUTOR_BIND: &str = "127.0.0.1:50051";
    pub const MIN_EXECUTORS: usize = 1;
    pub const CONNECT_TIMEOUT_SECS: u64 = 30;
    pub const BENCH_CONVERSATIONS: &str = "100000";
    pub const BENCH_CONCURRENCY: u32 = 16;
    pub const BENCH_MB: usize = 200;
    pub const BENCH_PRODUCTS: usize = 1000;
    pub const BENCH_SAMPLES: usize = 5000;
    pub const BENCH_ROWS: usize = 1_000_000;
    /// The dialect `dictionary push` writes entries in.
    pub const DIALECT: &str = "en-US";
}

/// A duration like `15m`, `1h30m`, `90s` or `2d` (how every duration flag is written).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration like 15m, 1h30m, 90s or 2d");
    let mut total = 0u64;
    let mut num = String::new();
    for c in s.trim().chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().map_err(|_| bad())?;
        num.clear();
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        total = total
            .checked_add(n.checked_mul(unit).ok_or_else(bad)?)
            .ok_or_else(bad)?;
    }
    if !num.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// A default duration of [`defaults`] (written there as the flag's text).
fn default_duration(text: &str) -> Duration {
    parse_duration(text).unwrap_or_else(|e| unreachable!("the default {text}: {e}"))
}

/// The media types of a comma-separated list as the flag takes it.
fn media_list(text: &str) -> Vec<String> {
    text.split(',').map(str::to_string).collect()
}

/// The settings every command shares (`--lake`, `--dictionary`).
#[derive(Clone, Debug, PartialEq)]
pub struct GlobalConfig {
    pub lake: String,
    pub dictionary: Option<PathBuf>,
    /// `--lake` was typed on this command line (not taken from CONVLAKE_LAKE, the file or the
    /// default): the only way `demo` accepts a lake other than its own.
    pub lake_typed: bool,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            lake: defaults::LAKE.to_string(),
            dictionary: None,
            lake_typed: false,
        }
    }
}

/// Where `fetch` reads conversations from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Source {
    /// The real Genesys Cloud API: analytics details jobs (or query), then the texts.
    #[default]
    Analytics,
    /// The tutorial's archive-query contract.
    Archive,
}

impl Source {
    /// The value of `--source` that names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Analytics => "analytics",
            Source::Archive => "archive",
        }
    }
}

/// How the analytics source lists conversations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Listing {
    #[default]
    Jobs,
    Query,
}

/// `fetch`'s settings (and the fetch part of `run`).
#[derive(Clone, Debug, PartialEq)]
pub struct FetchConfig {
    pub source: Source,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub media: Vec<String>,
    pub region: String,
    pub api_url: Option<String>,
    pub login_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub page_size: Option<u32>,
    pub batch_size: u32,
    pub max_attempts: u32,
    pub timeout: u64,
    pub listing: Listing,
    pub interval_days: u32,
    pub concurrency: u32,
    pub since_last: bool,
    pub lateness: Duration,
    pub transcript_grace: Duration,
    pub job_poll_max: f64,
    pub not_ready_attempts: u32,
    pub not_ready_wait: f64,
    pub job_timeout: Duration,
    pub mask: Mask,
    pub masks: Option<std::path::PathBuf>,
    pub restore: bool,
}

/// What a fetch masks before anything is written (`--mask`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mask {
    /// Texts are stored as received.
    #[default]
    None,
    /// Card numbers, e-mail addresses, phone numbers, US SSNs, IBANs and the `--masks`
    /// patterns are replaced by tags (`[card number]`, `[email]`, …).
    Pii,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            source: Source::default(),
            from: None,
            to: None,
            media: media_list(defaults::MEDIA),
            region: defaults::REGION.to_string(),
            api_url: None,
            login_url: None,
            client_id: None,
            client_secret: None,
            page_size: None,
            batch_size: defaults::BATCH_SIZE,
            max_attempts: defaults::MAX_ATTEMPTS,
            timeout: defaults::TIMEOUT_SECS,
            listing: Listing::default(),
            interval_days: defaults::INTERVAL_DAYS,
            concurrency: defaults::CONCURRENCY,
            since_last: false,
            lateness: default_duration(defaults::LATENESS),
            transcript_grace: default_duration(defaults::TRANSCRIPT_GRACE),
            job_poll_max: defaults::JOB_POLL_MAX_SECS,
            not_ready_attempts: defaults::NOT_READY_ATTEMPTS,
            not_ready_wait: defaults::NOT_READY_WAIT_SECS,
            job_timeout: default_duration(defaults::JOB_TIMEOUT),
            mask: Mask::None,
            masks: None,
            restore: false,
        }
    }
}

impl FetchConfig {
    /// The connection part of these settings (what `dictionary push` shares with `fetch`).
    pub fn genesys(&self) -> GenesysConfig {
        GenesysConfig {
            region: self.region.clone(),
            api_url: self.api_url.clone(),
            login_url: self.login_url.clone(),
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            max_attempts: self.max_attempts,
            timeout: self.timeout,
        }
    }
}

/// How to reach Genesys Cloud: region or URLs, OAuth client credentials, retries. `fetch` and
/// `dictionary push` take the same flags, variables and convlake.toml keys for them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenesysConfig {
    pub region: String,
    pub api_url: Option<String>,
    pub login_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub max_attempts: u32,
    pub timeout: u64,
}

impl Default for GenesysConfig {
    fn default() -> Self {
        FetchConfig::default().genesys()
    }
}

/// `extract`'s settings.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ExtractConfig {
    pub workers: Option<usize>,
    pub shard: Option<Shard>,
}

/// The engine `aggregate` runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Engine {
    #[default]
    Local,
    Ballista,
}

/// `aggregate`'s settings.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AggregateConfig {
    pub engine: Engine,
    pub scheduler: Option<String>,
}

/// The PostgreSQL target of `sync`, `migrate` and `run`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbConfig {
    pub database_url: Option<Secret>,
    pub schema: String,
    pub wait: bool,
    pub allow_empty: bool,
}

impl Default for DbConfig {
    fn default() -> Self {
        DbConfig {
            database_url: None,
            schema: defaults::DB_SCHEMA.to_string(),
            wait: false,
            allow_empty: false,
        }
    }
}

/// The dashboard API `export` and `run` post to.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct DashboardConfig {
    pub dashboard_url: Option<String>,
    pub dashboard_token: Option<Secret>,
}

/// How `report` splits its charts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Facet {
    #[default]
    None,
    InteractionType,
}

/// `report`'s settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportConfig {
    pub out: Option<PathBuf>,
    pub top: usize,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub product: Option<String>,
    pub interaction_type: Option<String>,
    pub by: Facet,
    pub examples: usize,
}

impl Default for ReportConfig {
    fn default() -> Self {
        ReportConfig {
            out: None,
            top: defaults::REPORT_TOP,
            from: None,
            to: None,
            product: None,
            interaction_type: None,
            by: Facet::None,
            examples: defaults::EXAMPLES,
        }
    }
}

/// `export`'s settings.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ExportConfig {
    pub dashboard: DashboardConfig,
    pub dry_run: bool,
    pub out: Option<PathBuf>,
}

/// What `query` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Table,
    Csv,
    Json,
    Parquet,
}

/// `query`'s settings.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct QueryConfig {
    pub sql: Option<String>,
    pub file: Option<PathBuf>,
    pub saved: Option<String>,
    pub list: bool,
    pub format: Format,
    pub output: Option<PathBuf>,
}

/// `run`'s settings: every stage's, and the schedule.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct RunConfig {
    pub fetch: FetchConfig,
    pub db: DbConfig,
    pub dashboard: DashboardConfig,
    pub workers: Option<usize>,
    pub every: Option<Duration>,
    /// Erase conversations older than this after each fetch.
    pub retention: Option<crate::privacy::retention::Age>,
    /// The charts `run` draws (no flags of its own: the report's defaults).
    pub report: ReportConfig,
}

/// `demo`'s settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoConfig {
    pub conversations: usize,
    pub days: u32,
    pub seed: u64,
    pub scenario: Scenario,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            conversations: defaults::DEMO_CONVERSATIONS,
            days: defaults::DAYS,
            seed: defaults::SEED,
            scenario: defaults::SCENARIO,
        }
    }
}

/// `simulate`'s settings.
#[derive(Clone, Debug, PartialEq)]
pub struct SimulateConfig {
    pub port: u16,
    pub raw_pii: bool,
    pub conversations: usize,
    pub start: Option<NaiveDate>,
    pub days: u32,
    pub seed: u64,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub fail_429: f64,
    pub fail_500: f64,
    pub drop_connections: f64,
    pub slow: f64,
    pub slow_ms: u64,
    pub rate_limit: Option<u32>,
    pub token_ttl: u64,
    pub revoke_tokens_after: Option<u64>,
    pub untranscribed: f64,
    pub lengths: Lengths,
    pub not_ready: f64,
    pub not_ready_for: Option<f64>,
    pub job_polls: u32,
    pub max_query_days: u32,
    pub transcript_url_ttl: u64,
    pub traffic: Traffic,
    pub scenario: Scenario,
}

impl Default for SimulateConfig {
    fn default() -> Self {
        SimulateConfig {
            raw_pii: false,
            port: defaults::SIM_PORT,
            conversations: defaults::SIM_CONVERSATIONS,
            start: None,
            days: defaults::DAYS,
            seed: defaults::SEED,
            client_id: None,
            client_secret: None,
            fail_429: 0.0,
            fail_500: 0.0,
            drop_connections: 0.0,
            slow: 0.0,
            slow_ms: defaults::SIM_SLOW_MS,
            rate_limit: None,
            token_ttl: defaults::SIM_TOKEN_TTL_SECS,
            revoke_tokens_after: None,
            untranscribed: defaults::SIM_UNTRANSCRIBED,
            lengths: Lengths::Short,
            not_ready: defaults::SIM_NOT_READY,
            not_ready_for: None,
            job_polls: defaults::SIM_JOB_POLLS,
            max_query_days: defaults::SIM_MAX_QUERY_DAYS,
            transcript_url_ttl: defaults::SIM_TRANSCRIPT_URL_TTL_SECS,
            traffic: Traffic::MIX,
            scenario: defaults::SCENARIO,
        }
    }
}

/// `diff-dictionary`'s settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiffConfig {
    pub old: PathBuf,
    pub new: Option<PathBuf>,
    pub examples: usize,
}

/// `candidates`' settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CandidatesConfig {
    pub min_count: u64,
    pub limit: usize,
}

impl Default for CandidatesConfig {
    fn default() -> Self {
        CandidatesConfig {
            min_count: defaults::MIN_COUNT,
            limit: defaults::CANDIDATES_LIMIT,
        }
    }
}

/// `dictionary list|show|use|push`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DictionaryAction {
    List,
    Show {
        version: Option<String>,
    },
    Use {
        version: String,
    },
    /// Send the products to Genesys Speech and Text Analytics as dictionary feedback.
    Push {
        dialect: String,
        dry_run: bool,
        genesys: GenesysConfig,
    },
}

/// `ballista scheduler`'s settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchedulerConfig {
    pub bind: std::net::SocketAddr,
    pub external_host: Option<String>,
    pub min_executors: usize,
}

/// `ballista executor`'s settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecutorConfig {
    pub scheduler: String,
    pub bind: std::net::SocketAddr,
    pub grpc_port: Option<u16>,
    pub external_host: Option<String>,
    pub concurrency: Option<usize>,
    pub work_dir: Option<PathBuf>,
    pub connect_timeout: u64,
}

/// `ballista scheduler|executor`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BallistaRole {
    Scheduler(SchedulerConfig),
    Executor(ExecutorConfig),
}

/// Which benchmark `bench` runs.
#[derive(Clone, Debug, PartialEq)]
pub enum BenchConfig {
    Pipeline(PipelineBenchConfig),
    Extract(ExtractBenchConfig),
    Sync(SyncBenchConfig),
    Mask(MaskBenchConfig),
}

/// `bench mask`'s settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaskBenchConfig {
    pub megabytes: usize,
    pub json: Option<PathBuf>,
}

/// `bench pipeline`'s settings.
#[derive(Clone, Debug, PartialEq)]
pub struct PipelineBenchConfig {
    pub conversations: Vec<usize>,
    pub database_url: Option<Secret>,
    pub json: Option<PathBuf>,
    pub dir: Option<PathBuf>,
    pub lake_url: Option<String>,
    pub source: Source,
    pub concurrency: u32,
    pub lengths: Lengths,
    pub ballista_executors: usize,
}

/// `bench extract`'s settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtractBenchConfig {
    pub mb: usize,
    pub products: usize,
    pub samples: usize,
    pub baseline: bool,
    pub export_corpus: Option<PathBuf>,
    pub export_dictionary: Option<PathBuf>,
    pub json: Option<PathBuf>,
}

/// `bench sync`'s settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncBenchConfig {
    pub rows: usize,
    pub database_url: Option<Secret>,
    pub json: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("15").is_err());
        assert!(parse_duration("0m").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn the_default_durations_parse() {
        for text in [
            defaults::LATENESS,
            defaults::TRANSCRIPT_GRACE,
            defaults::JOB_TIMEOUT,
        ] {
            assert!(parse_duration(text).is_ok(), "{text}");
        }
    }
}
