//! Command-line definitions (clap derive) and the mapping of subcommands to stages. Every flag a
//! scheduler would set can also come from the environment; flags win over the environment.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{defaults, parse_duration};
use crate::secret::{parse_secret, Secret};
use crate::simulator::Traffic;

pub mod config_file;
mod convert;

/// convlake: find which products your customers talk about, from Genesys Cloud conversations.
#[derive(Debug, Parser)]
// The help is 100 columns wide whatever the terminal, so the golden files under
// tests/golden/help/ match everywhere.
#[command(
    name = "convlake",
    version = env!("CONVLAKE_VERSION"),
    about,
    long_about = None,
    term_width = 100,
    max_term_width = 100
)]
pub struct Cli {
    /// The lake: a directory, or s3://bucket/prefix, gs://bucket/prefix, az://container/prefix,
    /// file:///dir (object stores take credentials and endpoint from AWS_*, GOOGLE_*, AZURE_*).
    #[arg(
        long,
        global = true,
        env = "CONVLAKE_LAKE",
        default_value = defaults::LAKE
    )]
    pub lake: String,

    /// The product dictionary (TOML). `extract` and `run` read it (default: data/products.toml
    /// when present, else the dictionary built into convlake); every later stage uses the
    /// lake's current dictionary (the one the last extract used) unless this is given.
    #[arg(long, global = true, env = "CONVLAKE_DICTIONARY")]
    pub dictionary: Option<PathBuf>,

    /// Settings file (TOML; keys are the long flag names). Default: convlake.toml in the working
    /// directory when present. Flags and environment variables win over it; `convlake config`
    /// shows what is in effect.
    #[arg(long, global = true, env = "CONVLAKE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// More logging (repeat for more); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve a Genesys-compatible API with seeded synthetic conversations on loopback.
    Simulate(SimulateArgs),
    /// Fetch conversations and stage every page as a Parquet snapshot.
    Fetch(FetchArgs),
    /// Find product mentions in every snapshot not yet extracted with this dictionary.
    Extract(ExtractArgs),
    /// Build mention_counts from the current mentions (DataFusion, SQL in sql/), in this process
    /// or on a Ballista cluster.
    Aggregate(AggregateArgs),
    /// Make PostgreSQL's product_mentions equal mention_counts (applies migrations first).
    Sync(SyncArgs),
    /// Apply the PostgreSQL migrations only.
    Migrate(DbArgs),
    /// Draw the trend charts (PNG and SVG).
    Report(ReportArgs),
    /// Post the summary to the dashboard API (or write it to a file with --dry-run).
    Export(ExportArgs),
    /// Run SQL over the lake's tables: utterances, mentions, mention_counts, events.
    Query(QueryArgs),
    /// The whole pipeline: fetch, extract, aggregate, sync, report, export.
    Run(RunArgs),
    /// Everything on an embedded default: simulator, local lake, PostgreSQL, dashboard receiver.
    Demo(DemoArgs),
    /// Benchmarks: the pipeline at scale, extraction quality and speed, the PostgreSQL sync.
    Bench(BenchArgs),
    /// Compare two dictionaries: mentions and conversations each product gains or loses, with examples.
    DiffDictionary(DiffArgs),
    /// Product-like phrases that recur in the transcripts but are not in the dictionary.
    Candidates(CandidatesArgs),
    /// The lake's dictionaries: list the versions it holds, show one, make an extracted one
    /// current again (without re-extracting), or push the current one to Genesys.
    #[command(subcommand)]
    Dictionary(DictionaryCommand),
    /// Check every file in the lake and every file the event log refers to; move damaged files
    /// to quarantine/ (never deleted). Exit 1 when something was wrong.
    Verify(VerifyArgs),
    /// Erase conversations from the lake: their snapshots are written again without them, the
    /// old files deleted, mentions and aggregates rebuilt; the next sync deletes their rows.
    Forget(ForgetArgs),
    /// Erase every conversation older than a retention window (e.g. --older-than 18m).
    Retain(RetainArgs),
    /// Run a Ballista scheduler or executor, for `aggregate --engine ballista`.
    Ballista(BallistaArgs),
    /// Print the effective settings of `run` (flags, environment, convlake.toml, defaults), each
    /// with where it came from; secrets are shown as ***.
    Config(RunArgs),
    /// Print a shell completion script to stdout.
    #[command(
        after_help = "Install: bash: convlake completions bash > ~/.local/share/bash-completion/completions/convlake\n         zsh:  convlake completions zsh > ~/.zfunc/_convlake (with ~/.zfunc in fpath)\n         fish: convlake completions fish > ~/.config/fish/completions/convlake.fish\n         PowerShell: convlake completions powershell >> $PROFILE"
    )]
    Completions(CompletionsArgs),
    /// Print the man page (roff) to stdout, or with --dir write one page per command.
    #[command(
        after_help = "Read it: convlake man | man -l -    Install: convlake man --dir /usr/local/share/man/man1"
    )]
    Man(ManArgs),
}

#[derive(Debug, Args, Clone)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args, Clone)]
pub struct ManArgs {
    /// Write convlake.1, convlake-fetch.1, … (one page per command) into this directory instead.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Writes the completion script for `shell` to `out`.
pub fn write_completions(
    shell: clap_complete::Shell,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    use clap::CommandFactory;
    // Into memory first: clap_complete panics when its writer fails (a closed pipe), and a
    // write error here is reported like any other.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "convlake", &mut script);
    out.write_all(&script)
}

/// Writes the man page of convlake to `out`, or with `dir` one page per command there.
pub fn write_man(
    dir: Option<&std::path::Path>,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    use clap::CommandFactory;
    match dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            clap_mangen::generate_to(Cli::command(), dir)
        }
        None => clap_mangen::Man::new(Cli::command()).render(out),
    }
}

/// Parses a day such as 2026-01-31.
pub fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|e| format!("{s:?} is not a date like 2026-01-31: {e}"))
}

/// Parses a share such as 0.05: a finite number from 0 to 1.
pub fn parse_share(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a share from 0.0 to 1.0")),
    }
}

/// Parses seconds such as 2.5: a finite number from 0 to a day.
pub fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if (0.0..=86_400.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a number of seconds from 0 to 86400")),
    }
}

/// Where `aggregate` runs its queries.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq, Default)]
pub enum EngineArg {
    /// DataFusion in this process.
    #[default]
    Local,
    /// An Apache DataFusion Ballista cluster (needs --scheduler).
    Ballista,
}

#[derive(Debug, Args, Clone, Default)]
pub struct AggregateArgs {
    /// Where the queries run: `local` (this process) or `ballista` (a cluster; see `convlake
    /// ballista`). The output files are the same.
    #[arg(long, value_enum, env = "CONVLAKE_ENGINE", default_value_t = EngineArg::Local)]
    pub engine: EngineArg,
    /// The Ballista scheduler, as df://HOST:PORT (port 50050 when left out).
    #[arg(
        long,
        env = "CONVLAKE_SCHEDULER",
        required_if_eq("engine", "ballista"),
        value_name = "df://HOST:PORT"
    )]
    pub scheduler: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct BallistaArgs {
    #[command(subcommand)]
    pub role: BallistaRole,
}

#[derive(Debug, Subcommand, Clone)]
pub enum BallistaRole {
    /// Plan queries and hand their tasks to executors (one per cluster; it lists only the
    /// lake --lake names).
    Scheduler(SchedulerArgs),
    /// Run tasks: read the lake (only the one --lake names), shuffle, send results (one or
    /// more per machine).
    Executor(ExecutorArgs),
}

#[derive(Debug, Args, Clone)]
pub struct SchedulerArgs {
    /// Address to listen on: gRPC for clients and executors, and HTTP /healthz and /readyz.
    /// Loopback by default: the cluster has no authentication, so listen on another address
    /// (e.g. 0.0.0.0:50050) only on a private network (convlake warns when you do).
    #[arg(
        long,
        env = "CONVLAKE_SCHEDULER_BIND",
        default_value = defaults::SCHEDULER_BIND
    )]
    pub bind: std::net::SocketAddr,
    /// Host name or address executors use to call back (default: the --bind address).
    #[arg(long, env = "CONVLAKE_SCHEDULER_HOST")]
    pub external_host: Option<String>,
    /// /readyz answers 200, and `aggregate` starts, only once this many executors have registered.
    #[arg(long, env = "CONVLAKE_MIN_EXECUTORS", default_value_t = defaults::MIN_EXECUTORS)]
    pub min_executors: usize,
}

#[derive(Debug, Args, Clone)]
pub struct ExecutorArgs {
    /// The scheduler to register with, HOST:PORT (or df://HOST:PORT).
    #[arg(long, env = "CONVLAKE_SCHEDULER")]
    pub scheduler: String,
    /// Address of this executor's Arrow Flight service, from which other executors and
    /// clients fetch shuffle data and results; its gRPC service listens on the same host.
    /// Loopback by default: the cluster has no authentication, so listen on another address
    /// only on a private network (convlake warns when you do).
    #[arg(
        long,
        env = "CONVLAKE_EXECUTOR_BIND",
        default_value = defaults::EXECUTOR_BIND
    )]
    pub bind: std::net::SocketAddr,
    /// Port of this executor's gRPC service, to which the scheduler pushes tasks (default: the
    /// --bind port + 1).
    #[arg(long, env = "CONVLAKE_EXECUTOR_GRPC_PORT")]
    pub grpc_port: Option<u16>,
    /// Host name or address the scheduler, the other executors and clients use to reach this
    /// executor (default: the address the scheduler sees it connect from).
    #[arg(long, env = "CONVLAKE_EXECUTOR_HOST")]
    pub external_host: Option<String>,
    /// Tasks run at once (default: the number of cores).
    #[arg(long, env = "CONVLAKE_EXECUTOR_CONCURRENCY")]
    pub concurrency: Option<usize>,
    /// Directory for shuffle and spill files (default: a temporary one, removed at exit).
    #[arg(long, env = "CONVLAKE_EXECUTOR_WORK_DIR")]
    pub work_dir: Option<PathBuf>,
    /// Seconds to wait for the scheduler to accept connections before giving up.
    #[arg(long, default_value_t = defaults::CONNECT_TIMEOUT_SECS)]
    pub connect_timeout: u64,
}

#[derive(Debug, Args, Clone)]
pub struct SimulateArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = defaults::SIM_PORT)]
    pub port: u16,
    /// Customers of chat, email and messaging type card numbers, e-mail addresses, phone
    /// numbers, IBANs and SSNs in the clear (instead of redaction tags): try `fetch --mask pii`.
    #[arg(long)]
    pub raw_pii: bool,
    /// Conversations over the whole period.
    #[arg(long, default_value_t = defaults::SIM_CONVERSATIONS)]
    pub conversations: usize,
    /// First day of data (default: 30 days before today).
    #[arg(long, value_parser = parse_date)]
    pub start: Option<NaiveDate>,
    /// Number of days of data.
    #[arg(long, default_value_t = defaults::DAYS)]
    pub days: u32,
    /// Seed: the same seed gives the same conversations.
    #[arg(long, default_value_t = defaults::SEED)]
    pub seed: u64,
    /// Accept only this client id (default: any non-empty one).
    #[arg(long)]
    pub client_id: Option<String>,
    /// Accept only this client secret (default: any non-empty one).
    #[arg(long, hide_env_values = true, value_parser = parse_secret)]
    pub client_secret: Option<Secret>,
    /// Share of API requests answered 429 (0.0–1.0).
    #[arg(long, default_value_t = 0.0, value_parser = parse_share)]
    pub fail_429: f64,
    /// Share of API requests answered 503 (0.0–1.0).
    #[arg(long, default_value_t = 0.0, value_parser = parse_share)]
    pub fail_500: f64,
    /// Share of requests whose connection drops after the headers (0.0–1.0).
    #[arg(long, default_value_t = 0.0, value_parser = parse_share)]
    pub drop_connections: f64,
    /// Share of responses delayed by --slow-ms (0.0–1.0).
    #[arg(long, default_value_t = 0.0, value_parser = parse_share)]
    pub slow: f64,
    /// Delay of a slow response, in milliseconds.
    #[arg(long, default_value_t = defaults::SIM_SLOW_MS)]
    pub slow_ms: u64,
    /// Requests a minute per token before 429 (default: unlimited; Genesys: 300).
    #[arg(long)]
    pub rate_limit: Option<u32>,
    /// Access-token lifetime in seconds (`expires_in`).
    #[arg(long, default_value_t = defaults::SIM_TOKEN_TTL_SECS)]
    pub token_ttl: u64,
    /// Tokens stop working after this many seconds whatever `expires_in` said (401 bad.credentials).
    #[arg(long)]
    pub revoke_tokens_after: Option<u64>,
    /// Share of voice conversations without a Speech & Text Analytics transcript (404).
    #[arg(long, default_value_t = defaults::SIM_UNTRANSCRIBED, value_parser = parse_share)]
    pub untranscribed: f64,
    /// Conversation lengths: short (quick tests) or realistic (voice 20–200 phrases, chat 5–60
    /// messages, email 1–5).
    #[arg(long, value_enum, default_value = "short")]
    pub lengths: LengthsArg,
    /// The story planted in the data: outage-and-launch (the dictionary's first product has an
    /// outage on the last three days: mentions x3, negative; its second is launched over the last
    /// seven: mentions x1.5 rising to x3, positive) or flat (none).
    #[arg(long, value_enum, default_value_t = ScenarioArg::OutageAndLaunch)]
    pub scenario: ScenarioArg,
    /// Share of digital conversations whose recordings are still being prepared on the first request.
    #[arg(long, default_value_t = defaults::SIM_NOT_READY, value_parser = parse_share)]
    pub not_ready: f64,
    /// The recordings --not-ready picks stay "being prepared" (202 or empty) for this many
    /// seconds after they were first asked for, then become ready (default: only the first
    /// request is refused).
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub not_ready_for: Option<f64>,
    /// Status polls before a details job is FULFILLED.
    #[arg(long, default_value_t = defaults::SIM_JOB_POLLS)]
    pub job_polls: u32,
    /// Longest interval the synchronous details query accepts, in days.
    #[arg(long, default_value_t = defaults::SIM_MAX_QUERY_DAYS)]
    pub max_query_days: u32,
    /// Lifetime of a presigned transcript link, in seconds.
    #[arg(long, default_value_t = defaults::SIM_TRANSCRIPT_URL_TTL_SECS)]
    pub transcript_url_ttl: u64,
    /// Share of voice conversations that are callbacks: a `callback` session, then the recorded
    /// `voice` one (0.0–1.0).
    #[arg(long, default_value_t = Traffic::MIX.callback_rate, value_parser = parse_share)]
    pub callbacks: f64,
    /// Share of voice conversations transferred to a second or third agent: one recorded
    /// customer and agent session per leg, each leg's transcript its own window (0.0–1.0).
    #[arg(long, default_value_t = Traffic::MIX.transfer_rate, value_parser = parse_share)]
    pub transfers: f64,
    /// The role lacks speechAndTextAnalytics:data:view: `transcripturl` answers 403
    /// missing.permissions, the plural `transcripturls` still works.
    #[arg(long)]
    pub no_sta_permission: bool,
    /// Share of transcribed calls whose transcript was deleted with its recording: the presigned
    /// link answers 404 NoSuchKey (0.0–1.0).
    #[arg(long, default_value_t = Traffic::MIX.gone_rate, value_parser = parse_share)]
    pub gone: f64,
    /// Share of digital conversations whose recording is archived (a stub without text).
    #[arg(long, default_value_t = Traffic::MIX.archived_rate, value_parser = parse_share)]
    pub archived: f64,
    /// Share of email conversations whose recording has recordingErrorStatus
    /// EMAIL_TRANSCRIPT_TOO_LARGE and no text (0.0–1.0).
    #[arg(long, default_value_t = Traffic::MIX.recording_error_rate, value_parser = parse_share)]
    pub recording_errors: f64,
    /// Share of the transcribed calls of the last day (the recent ones) whose transcript
    /// appears late: 404 until --late-for seconds after it was first asked for.
    #[arg(long, default_value_t = Traffic::MIX.late_rate, value_parser = parse_share)]
    pub late: f64,
    /// How long a late transcript answers 404, in seconds from the first request for it.
    #[arg(long, value_name = "SECS", default_value_t = Traffic::MIX.late_for_secs, value_parser = parse_seconds)]
    pub late_for: f64,
    /// Share of the last day's conversations still going on: no conversationEnd, no text yet.
    #[arg(long, default_value_t = Traffic::MIX.ongoing_rate, value_parser = parse_share)]
    pub ongoing: f64,
    /// Share of transcribed calls whose customer session has two recordings: transcripturls
    /// lists both, their transcripts hold the same phrases (0.0–1.0).
    #[arg(long, default_value_t = Traffic::MIX.duplicate_recording_rate, value_parser = parse_share)]
    pub duplicate_recordings: f64,
    /// Answer bad credentials on /oauth/token with the API's 401 bad.credentials body instead
    /// of the login service's OAuth form (400 invalid_client).
    #[arg(long)]
    pub api_login_errors: bool,
    /// Requests a minute per token to transcripturl(s), on top of --rate-limit (default:
    /// unlimited).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub transcript_url_rate_limit: Option<u32>,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Source {
    /// Genesys Cloud's analytics conversation details, STA transcripts and recordings.
    Analytics,
    /// The archive-query contract of the original tutorial (GENESYS.md §9).
    Archive,
}

/// How the analytics source lists conversations.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ListingArg {
    /// Asynchronous details jobs, paged by cursor (bulk and historical data).
    Jobs,
    /// The synchronous details query, paged by number (split hourly past 100,000 results).
    Query,
}

/// How to reach Genesys Cloud: the flags `fetch`, `run` and `dictionary push` share.
#[derive(Debug, Args, Clone)]
pub struct GenesysArgs {
    /// Genesys Cloud region: us-east-1, eu-west-1, … or a domain such as mypurecloud.ie.
    #[arg(long, env = "GENESYSCLOUD_REGION", default_value = defaults::REGION)]
    pub region: String,
    /// API base URL (overrides --region), e.g. the simulator's.
    #[arg(long, env = "GENESYS_API_URL")]
    pub api_url: Option<String>,
    /// Login base URL (default: derived from --api-url or --region).
    #[arg(long, env = "GENESYS_LOGIN_URL")]
    pub login_url: Option<String>,
    /// OAuth client id (also GENESYSCLOUD_OAUTHCLIENT_ID).
    #[arg(long, env = "GENESYS_CLIENT_ID")]
    pub client_id: Option<String>,
    /// OAuth client secret (also GENESYSCLOUD_OAUTHCLIENT_SECRET).
    #[arg(long, env = "GENESYS_CLIENT_SECRET", hide_env_values = true, value_parser = parse_secret)]
    pub client_secret: Option<Secret>,
    /// Attempts per request before giving up.
    #[arg(long, default_value_t = defaults::MAX_ATTEMPTS)]
    pub max_attempts: u32,
    /// Timeout of one request, in seconds.
    #[arg(long, default_value_t = defaults::TIMEOUT_SECS)]
    pub timeout: u64,
}

#[derive(Debug, Args, Clone)]
pub struct SourceArgs {
    /// Which API to read: `analytics` (Genesys Cloud: details jobs or query, STA transcripts,
    /// recordings) or `archive` (the tutorial's archive-query contract).
    #[arg(long, value_enum, default_value = "analytics", env = "CONVLAKE_SOURCE")]
    pub source: Source,
    /// First day (UTC, inclusive). Default: 30 days before --to.
    #[arg(long, value_parser = parse_date)]
    pub from: Option<NaiveDate>,
    /// Last day (UTC, inclusive). Default: today.
    #[arg(long, value_parser = parse_date)]
    pub to: Option<NaiveDate>,
    /// Interaction types, comma separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = defaults::MEDIA
    )]
    pub media: Vec<String>,
    #[command(flatten)]
    pub genesys: GenesysArgs,
    /// Conversations per listing page. Analytics jobs: 1–1000 (default 1000, the largest page
    /// Genesys serves, so a listing costs one request per 1,000 conversations); the details
    /// query: 1–100 (default 100); archive: default 100.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub page_size: Option<u32>,
    /// Analytics: conversations staged per batch (one snapshot each); a listing page of 1,000 is
    /// staged as several batches, so memory holds one batch's texts, not a page's.
    #[arg(long, default_value_t = defaults::BATCH_SIZE, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub batch_size: u32,
    /// Analytics: list with asynchronous details `jobs` or the synchronous details `query`.
    #[arg(long, value_enum, default_value = "jobs", env = "CONVLAKE_LISTING")]
    pub listing: ListingArg,
    /// Analytics: longest interval per job or query, in days (the query accepts at most 31).
    #[arg(long, default_value_t = defaults::INTERVAL_DAYS, value_parser = clap::value_parser!(u32).range(1..=31))]
    pub interval_days: u32,
    /// Analytics: transcript requests in flight at once.
    #[arg(long, default_value_t = defaults::CONCURRENCY, env = "CONVLAKE_CONCURRENCY", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub concurrency: u32,
    /// Analytics: start at the end of the last completed interval minus --lateness (instead of
    /// --from), so late transcripts and updated conversations are picked up.
    #[arg(long, conflicts_with = "from")]
    pub since_last: bool,
    /// Analytics: how far --since-last reaches back before the last completed interval
    /// (e.g. 24h, 90m, 2d).
    #[arg(long, default_value = defaults::LATENESS, value_parser = parse_duration)]
    pub lateness: std::time::Duration,
    /// Analytics: a voice conversation without a Speech & Text Analytics transcript yet (404;
    /// transcripts often appear hours after a call) is asked again by every later fetch until it
    /// is older than this (from its end), then counted as untranscribed (e.g. 72h, 7d).
    #[arg(long, default_value = defaults::TRANSCRIPT_GRACE, value_parser = parse_duration, env = "CONVLAKE_TRANSCRIPT_GRACE")]
    pub transcript_grace: std::time::Duration,
    /// Analytics: longest pause between two job-status polls, in seconds.
    #[arg(long, default_value_t = defaults::JOB_POLL_MAX_SECS, value_parser = parse_seconds)]
    pub job_poll_max: f64,
    /// Analytics: requests for recordings still being prepared (202 or empty) before giving up.
    #[arg(long, default_value_t = defaults::NOT_READY_ATTEMPTS)]
    pub not_ready_attempts: u32,
    /// Analytics: seconds between those requests.
    #[arg(long, default_value_t = defaults::NOT_READY_WAIT_SECS, value_parser = parse_seconds)]
    pub not_ready_wait: f64,
    /// Analytics: longest wait for a details job to leave QUEUED/PENDING before the fetch stops
    /// with an error (a re-run resumes), e.g. 30m, 1h, 90s.
    #[arg(long, default_value = defaults::JOB_TIMEOUT, value_parser = parse_duration, env = "CONVLAKE_JOB_TIMEOUT")]
    pub job_timeout: std::time::Duration,
    /// Mask personal data in every text and record before anything is written: `pii` replaces
    /// card numbers (Luhn-valid), e-mail addresses, phone numbers, US SSNs, IBANs and the
    /// --masks patterns with tags such as `[card number]` (README, "Privacy").
    #[arg(long, value_enum, default_value = "none", env = "CONVLAKE_MASK")]
    pub mask: MaskArg,
    /// Your own masking patterns: a TOML file (a masks file, or the dictionary file) with
    /// `[[mask]]` tables of `name`, `pattern` (a regex) and `replacement`.
    #[arg(long, env = "CONVLAKE_MASKS", value_name = "FILE")]
    pub masks: Option<PathBuf>,
    /// Stage conversations `convlake forget` or `retain` erased, if the source sends them
    /// again (by default they are skipped).
    #[arg(long)]
    pub restore: bool,
}

/// What `fetch --mask` masks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum MaskArg {
    /// Nothing: texts are stored as received.
    #[default]
    None,
    /// Card numbers, e-mail addresses, phone numbers, US SSNs, IBANs and the --masks patterns.
    Pii,
}

#[derive(Debug, Args, Clone)]
pub struct FetchArgs {
    #[command(flatten)]
    pub source: SourceArgs,
}

#[derive(Debug, Args, Clone)]
pub struct ExtractArgs {
    /// Snapshots processed at once (default: the number of cores).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Process only shard INDEX of COUNT (0-based, e.g. 0/3, 1/3, 2/3): a fixed share of the
    /// snapshots by hash, so COUNT workers together write exactly what one would.
    #[arg(long, env = "CONVLAKE_SHARD", value_parser = parse_shard)]
    pub shard: Option<crate::extract::Shard>,
}

fn parse_shard(s: &str) -> Result<crate::extract::Shard, String> {
    s.parse()
}

#[derive(Debug, Args, Clone)]
pub struct DbArgs {
    /// PostgreSQL connection string (also POSTGRES_CONNECTION_STRING). A secret: it may hold
    /// a password, so it is never printed (messages name user@host:port/db).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_parser = parse_secret)]
    pub database_url: Option<Secret>,
    /// Schema for every convlake table.
    #[arg(long, env = "CONVLAKE_DB_SCHEMA", default_value = defaults::DB_SCHEMA)]
    pub schema: String,
    /// Wait for another sync holding the lock instead of exiting.
    #[arg(long)]
    pub wait: bool,
    /// Let `sync` (and `run`) empty product_mentions when it holds rows. Without it such a sync
    /// is refused and changes nothing: aggregates with no rows usually come from a wrong
    /// --lake or a dictionary that matches nothing.
    #[arg(long, env = "CONVLAKE_ALLOW_EMPTY", value_parser = clap::builder::FalseyValueParser::new())]
    pub allow_empty: bool,
}

#[derive(Debug, Args, Clone)]
pub struct SyncArgs {
    #[command(flatten)]
    pub db: DbArgs,
}

/// How `convlake report` splits the trend chart.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq, Default)]
pub enum Facet {
    /// One chart with a line per product.
    #[default]
    None,
    /// One small chart per interaction type (voice, chat, …), sharing the legend.
    #[value(name = "interaction_type", alias = "interaction-type")]
    InteractionType,
}

#[derive(Debug, Args, Clone)]
pub struct ReportArgs {
    /// Output directory (default: <lake>/reports).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Products drawn separately; the rest are summed as "other".
    #[arg(long, default_value_t = defaults::REPORT_TOP)]
    pub top: usize,
    /// First day (inclusive). Default: 29 days before --to.
    #[arg(long, value_parser = parse_date)]
    pub from: Option<NaiveDate>,
    /// Last day (inclusive). Default: the last day with data.
    #[arg(long, value_parser = parse_date)]
    pub to: Option<NaiveDate>,
    /// Only this product (its canonical name, as in the dictionary).
    #[arg(long)]
    pub product: Option<String>,
    /// Only this interaction type (voice, chat, email, message, …).
    #[arg(long)]
    pub interaction_type: Option<String>,
    /// Split the trend chart: `--by interaction_type` draws one small chart per type.
    #[arg(long, value_enum, default_value = "none")]
    pub by: Facet,
    /// Example snippets shown per product in report.html.
    #[arg(long, default_value_t = defaults::EXAMPLES)]
    pub examples: usize,
}

#[derive(Debug, Args, Clone)]
pub struct DashboardArgs {
    /// Dashboard API endpoint that accepts the JSON summary.
    #[arg(long, env = "DASHBOARD_API_URL")]
    pub dashboard_url: Option<String>,
    /// Bearer token for the dashboard API.
    #[arg(long, env = "DASHBOARD_API_TOKEN", hide_env_values = true, value_parser = parse_secret)]
    pub dashboard_token: Option<Secret>,
}

#[derive(Debug, Args, Clone)]
pub struct ExportArgs {
    #[command(flatten)]
    pub dashboard: DashboardArgs,
    /// Write the payload to a file instead of posting it.
    #[arg(long)]
    pub dry_run: bool,
    /// Where --dry-run writes (default: <lake>/reports/dashboard.json).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Format {
    /// An aligned table with a row count; long text is shortened.
    Table,
    /// CSV with a header line.
    Csv,
    /// A JSON array of objects.
    Json,
    /// A Parquet file (needs --output).
    Parquet,
}

#[derive(Debug, Args, Clone)]
pub struct QueryArgs {
    /// The SQL, e.g. "SELECT product, SUM(mentions) FROM mention_counts GROUP BY product".
    #[arg(required_unless_present_any = ["file", "saved", "list"])]
    pub sql: Option<String>,
    /// Read the SQL from a file.
    #[arg(long, conflicts_with_all = ["sql", "saved"])]
    pub file: Option<PathBuf>,
    /// Run a saved query by name (see --list), e.g. top-products.
    #[arg(long, conflicts_with = "sql")]
    pub saved: Option<String>,
    /// List the saved queries and exit.
    #[arg(long, conflicts_with_all = ["sql", "file", "saved"])]
    pub list: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Write to this file instead of stdout.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub dashboard: DashboardArgs,
    /// Snapshots extracted at once (default: the number of cores).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Run the pipeline again every DURATION (e.g. 15m, 1h, 90s) until Ctrl-C or SIGTERM.
    #[arg(long, env = "CONVLAKE_EVERY", value_parser = parse_duration)]
    pub every: Option<std::time::Duration>,
    /// Erase conversations older than this after each fetch (90d, 12w, 18m for months, 2y),
    /// as `convlake retain --older-than` does; their PostgreSQL rows go in the same run's sync.
    #[arg(long, env = "CONVLAKE_RETENTION", value_name = "AGE")]
    pub retention: Option<crate::privacy::retention::Age>,
}

/// `convlake demo`. It never writes a lake or a database of real work: its lake is data/demo
/// (or a `--lake` typed on its command line that holds nothing or an earlier demo; never
/// CONVLAKE_LAKE), and with DATABASE_URL set it syncs into the schema `convlake_demo` only.
#[derive(Debug, Args, Clone)]
#[command(
    after_help = "Isolation: the lake is data/demo, or --lake given on this command line (never CONVLAKE_LAKE); a lake holding anything but an earlier demo is refused. With DATABASE_URL set the rows go to the schema convlake_demo only (never public or CONVLAKE_DB_SCHEMA); without it, to a throwaway PostgreSQL (scram-sha-256, random password) removed at the end."
)]
pub struct DemoArgs {
    /// Conversations the simulator generates.
    #[arg(long, default_value_t = defaults::DEMO_CONVERSATIONS)]
    pub conversations: usize,
    /// Days of data, ending yesterday.
    #[arg(long, default_value_t = defaults::DAYS)]
    pub days: u32,
    /// Simulator seed.
    #[arg(long, default_value_t = defaults::SEED)]
    pub seed: u64,
    /// The story planted in the data: outage-and-launch (the dictionary's first product has an
    /// outage on the last three days: mentions x3, negative; its second is launched over the last
    /// seven: mentions x1.5 rising to x3, positive) or flat (none).
    #[arg(long, value_enum, default_value_t = ScenarioArg::OutageAndLaunch)]
    pub scenario: ScenarioArg,
}

#[derive(Debug, Args, Clone)]
pub struct DiffArgs {
    /// The old dictionary (TOML).
    pub old: PathBuf,
    /// The new dictionary (default: --dictionary, else the lake's current one).
    pub new: Option<PathBuf>,
    /// Example snippets per product and direction.
    #[arg(long, default_value_t = defaults::EXAMPLES)]
    pub examples: usize,
}

#[derive(Debug, Args, Clone)]
pub struct CandidatesArgs {
    /// Show phrases seen at least this often.
    #[arg(long, default_value_t = defaults::MIN_COUNT)]
    pub min_count: u64,
    /// Show at most this many.
    #[arg(long, default_value_t = defaults::CANDIDATES_LIMIT)]
    pub limit: usize,
}

/// `convlake dictionary …`.
#[derive(Debug, Subcommand, Clone)]
pub enum DictionaryCommand {
    /// The dictionary versions the lake holds, the current one marked with `*`.
    List,
    /// Print a version's normalized content (default: the current one).
    Show {
        /// A version (16 hex digits, or a unique prefix of one).
        version: Option<String>,
    },
    /// Make an already extracted version the lake's current dictionary.
    Use {
        /// A version (16 hex digits, or a unique prefix of one).
        version: String,
    },
    /// Send the current dictionary's products to Genesys Speech and Text Analytics as
    /// dictionary feedback, so transcription learns them: creates the missing entries, updates
    /// the ones convlake created whose content changed, never touches any other entry.
    #[command(
        after_help = "Each product becomes one entry: term = the canonical name, soundsLike = its sounds_like (at most 10), and, in dialects other than English and Spanish, 3 to 20 example phrases from the lake's utterances that mention it. The OAuth client's role needs speechAndTextAnalytics:dictionaryterm:view, :add and :edit. The ids of the entries convlake created are kept in the lake (genesys/dictionary_feedback.json)."
    )]
    Push {
        /// The dialect of the entries ({language}-{country}, e.g. en-US, en-AU, de-DE).
        #[arg(long, env = "CONVLAKE_DIALECT", default_value = defaults::DIALECT)]
        dialect: String,
        /// Print what would be created and updated, and change nothing (it still reads the
        /// entries that exist, so it needs the credentials).
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        genesys: GenesysArgs,
    },
}

#[derive(Debug, Args, Clone)]
pub struct VerifyArgs {
    /// Only report: move nothing to quarantine/ and leave the checksum record as it is.
    #[arg(long)]
    pub dry_run: bool,
    /// Instead: check that no lake file and no row of the synced tables (with --database-url)
    /// holds an erased conversation's id or one of its texts.
    #[arg(long)]
    pub erased: bool,
    /// PostgreSQL connection string, for --erased (also POSTGRES_CONNECTION_STRING).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_parser = parse_secret)]
    pub database_url: Option<Secret>,
    /// Schema of convlake's tables, for --erased.
    #[arg(long, env = "CONVLAKE_DB_SCHEMA", default_value = defaults::DB_SCHEMA)]
    pub schema: String,
}

#[derive(Debug, Args, Clone)]
pub struct ForgetArgs {
    /// Conversation ids to erase (several, or comma separated).
    #[arg(long, value_delimiter = ',', num_args = 1.., value_name = "ID")]
    pub conversation: Vec<String>,
    /// A file of conversation ids, one per line (`#` comments allowed; `-` reads standard input).
    #[arg(long, value_name = "FILE")]
    pub file: Vec<PathBuf>,
    /// Erase every conversation whose records or texts hold this e-mail address or phone number.
    #[arg(long, value_name = "ADDRESS")]
    pub participant_address: Vec<String>,
    /// Only finish erasures an interrupted forget or retain left (what a re-run would do).
    #[arg(long)]
    pub finish: bool,
    /// Snapshots extracted at once when mentions are rebuilt (default: the number of cores).
    #[arg(long)]
    pub workers: Option<usize>,
}

#[derive(Debug, Args, Clone)]
pub struct RetainArgs {
    /// Erase conversations that started longer ago than this: 90d, 12w, 18m (months), 2y.
    #[arg(long, env = "CONVLAKE_RETENTION", value_name = "AGE")]
    pub older_than: crate::privacy::retention::Age,
    /// Only say how many conversations would be erased.
    #[arg(long)]
    pub dry_run: bool,
    /// Snapshots extracted at once when mentions are rebuilt (default: the number of cores).
    #[arg(long)]
    pub workers: Option<usize>,
}

/// Utterances per conversation, by media type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LengthsArg {
    /// Short conversations, quick to serve in tests: voice 8–40 phrases, chat 4–20 messages,
    /// email 1–4, messaging 3–15.
    #[default]
    Short,
    /// Contact-center lengths: voice 20–200 phrases, chat 5–60 messages, email 1–5, messaging
    /// 3–40.
    Realistic,
}

/// The story the simulator plants (the names of `simulator::Scenario`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ScenarioArg {
    // No doc comments: the flag's own help says what each is, and `demo --help` stays short.
    Flat,
    OutageAndLaunch,
}

/// Flags of `convlake bench`.
#[derive(Debug, Args, Clone)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: Option<BenchWhat>,
    #[command(flatten)]
    pub pipeline: PipelineBench,
}

#[derive(Debug, Subcommand, Clone)]
pub enum BenchWhat {
    /// Every stage against a seeded archive (the default).
    Pipeline(PipelineBench),
    /// Matcher quality (P/R/F1) and extract throughput with a 1,000-product dictionary.
    Extract(ExtractBench),
    /// PostgreSQL sync of 1,000,000 rows against multi-row INSERT.
    Sync(SyncBench),
    /// What `fetch --mask pii` costs per MB of text (one core).
    Mask(MaskBench),
}

#[derive(Debug, Args, Clone)]
pub struct MaskBench {
    /// Megabytes of chat text to mask.
    #[arg(long, default_value_t = 64)]
    pub megabytes: usize,
    /// Also write the results as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct PipelineBench {
    /// Conversations to generate; repeat for a side-by-side table (e.g. 10000 and 100000).
    #[arg(
        long = "conversations",
        default_value = defaults::BENCH_CONVERSATIONS,
        value_delimiter = ','
    )]
    pub conversations: Vec<usize>,
    /// PostgreSQL for the sync stage (default: a throwaway cluster).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_parser = parse_secret)]
    pub database_url: Option<Secret>,
    /// Also write the results as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Where the bench lakes go (default: a temporary directory, removed at the end).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Put the bench lakes on this object store instead, e.g. s3://bench/run1 (one lake per N
    /// under it, `<url>/lake-N`; credentials and endpoint from AWS_* as for --lake). The prefix
    /// should be empty: the lakes are left in place.
    #[arg(long)]
    pub lake_url: Option<String>,
    /// The fetch source: `analytics` (details jobs plus one transcript request per
    /// conversation, as against Genesys Cloud) or `archive` (the tutorial's bulk contract).
    #[arg(long, value_parser = ["analytics", "archive"], default_value = "analytics")]
    pub source: String,
    /// Transcript requests in flight during the analytics fetch.
    #[arg(long, default_value_t = defaults::BENCH_CONCURRENCY)]
    pub concurrency: u32,
    /// Conversation lengths of the generated archive.
    #[arg(long, value_enum, default_value = "realistic")]
    pub lengths: LengthsArg,
    /// Also run the aggregate stage on a Ballista cluster on loopback with this many executor
    /// processes (0: only the local engine). The nodes inherit this environment (AWS_* for an
    /// S3 lake).
    #[arg(long, default_value_t = 0)]
    pub ballista_executors: usize,
}

#[derive(Debug, Args, Clone)]
pub struct ExtractBench {
    /// MB of transcript text to extract.
    #[arg(long, default_value_t = defaults::BENCH_MB)]
    pub mb: usize,
    /// Products in the generated dictionary.
    #[arg(long, default_value_t = defaults::BENCH_PRODUCTS)]
    pub products: usize,
    /// Samples per style in the labeled corpus.
    #[arg(long, default_value_t = defaults::BENCH_SAMPLES)]
    pub samples: usize,
    /// Also run the tutorial's extractor (bench/run_baseline.sh, from the repository root) on
    /// the same labeled corpus and the same dictionary as convlake's matcher, and print both
    /// side by side (quality and speed).
    #[arg(long)]
    pub baseline: bool,
    /// Write the labeled corpus as JSONL (style, text, gold) and stop.
    #[arg(long)]
    pub export_corpus: Option<PathBuf>,
    /// Write the corpus dictionary as TOML.
    #[arg(long)]
    pub export_dictionary: Option<PathBuf>,
    /// Also write the results as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct SyncBench {
    /// Aggregate rows to sync.
    #[arg(long, default_value_t = defaults::BENCH_ROWS)]
    pub rows: usize,
    /// PostgreSQL (default: a throwaway cluster).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_parser = parse_secret)]
    pub database_url: Option<Secret>,
    /// Also write the results as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_that_are_not_numbers_are_refused() {
        for bad in ["NaN", "inf", "-1", "1.5", "", "x"] {
            assert!(parse_share(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_share("0.25"), Ok(0.25));
        for bad in ["NaN", "-inf", "-0.5", "1e9", ""] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_seconds("2.5"), Ok(2.5));
    }

    #[test]
    fn the_derived_debug_never_prints_a_secret() {
        let secret = "cli-SECRET-v4lue";
        let password = "cli-PG-pa55";
        let token = "cli-DASH-t0ken";
        let db = format!("postgres://alice:{password}@db.example/analytics");
        let cli = Cli::try_parse_from([
            "convlake",
            "run",
            "--client-id",
            "id",
            "--client-secret",
            secret,
            "--database-url",
            &db,
            "--dashboard-url",
            "http://127.0.0.1:9/api",
            "--dashboard-token",
            token,
        ])
        .unwrap();
        let Command::Run(run) = &cli.command else {
            panic!("not run: {cli:?}");
        };
        // Parsed into Secrets, and still there for the one place that sends them.
        assert_eq!(
            run.source.genesys.client_secret.as_ref().unwrap().expose(),
            secret
        );
        assert_eq!(run.db.database_url.as_ref().unwrap().expose(), db);
        assert_eq!(
            run.dashboard.dashboard_token.as_ref().unwrap().expose(),
            token
        );
        let shown = format!("{cli:?} {cli:#?}");
        for value in [secret, password, token, db.as_str()] {
            assert!(!shown.contains(value), "Debug shows {value:?}: {shown}");
        }
        assert!(shown.contains("***"), "{shown}");

        let sim = Cli::try_parse_from(["convlake", "simulate", "--client-secret", secret]).unwrap();
        assert!(!format!("{sim:?}").contains(secret));
    }

    #[test]
    fn the_cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
