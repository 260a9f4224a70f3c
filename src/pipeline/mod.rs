//! The commands: each maps its flags onto one stage, and `run`/`demo` compose the stages in
//! order. Stages meet in the lake; this module only passes settings and prints summaries.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{bail, Context as _, Result};
use chrono::{NaiveDate, Utc};

use crate::aggregate;
use crate::config::{
    self, AggregateConfig, BallistaRole, DashboardConfig, DbConfig, DemoConfig, FetchConfig,
    RunConfig, SimulateConfig,
};
use crate::extract::{self, Dictionary};
use crate::genesys::{self, ApiClient, Credentials, Endpoints, FetchOptions, RetryPolicy};
use crate::lake::aggregates::MentionCounts;
use crate::lake::Lake;
use crate::report;
use crate::secret::Secret;

mod dictionary;
mod present;
use crate::simulator::{self, SimConfig, SimProduct};
use crate::sync::{self, Target};
pub use dictionary::{candidates, dictionary_command, diff_dictionary, stage_dictionary, Need};
pub use present::{export, query, report};
use present::{payload, post, write_dashboard};

/// Loads the dictionary: the given file, else `data/products.toml`, else the embedded one.
pub fn load_dictionary(path: Option<&Path>) -> Result<Dictionary> {
    match path {
        Some(p) => Ok(Dictionary::load(p)?),
        None => {
            let local = Path::new("data/products.toml");
            if local.is_file() {
                Ok(Dictionary::load(local)?)
            } else {
                Ok(Dictionary::embedded())
            }
        }
    }
}

fn env_fallback(value: &Option<String>, other: &str) -> Option<String> {
    value
        .clone()
        .or_else(|| std::env::var(other).ok())
        .filter(|v| !v.is_empty())
}

/// A secret flag, else the secret in the environment variable `other` (read straight into a
/// [`Secret`]: it is never held as a plain string).
fn secret_fallback(value: &Option<Secret>, other: &str) -> Option<Secret> {
    value
        .clone()
        .or_else(|| std::env::var(other).ok().map(Secret::new))
        .filter(|v| !v.is_empty())
}

fn date_range(args: &FetchConfig) -> Result<(NaiveDate, NaiveDate)> {
    let to = args.to.unwrap_or_else(|| Utc::now().date_naive());
    let from = match args.from {
        Some(f) => f,
        None => to
            .checked_sub_days(chrono::Days::new(30))
            .with_context(|| {
                format!("--to {to} is too early to reach 30 days back; give --from")
            })?,
    };
    if from > to {
        bail!("--from {from} is after --to {to}");
    }
    Ok((from, to))
}

/// `convlake fetch`.
pub async fn fetch(lake: &Lake, args: &FetchConfig) -> Result<genesys::FetchSummary> {
    let id = env_fallback(&args.client_id, "GENESYSCLOUD_OAUTHCLIENT_ID");
    let secret = secret_fallback(&args.client_secret, "GENESYSCLOUD_OAUTHCLIENT_SECRET");
    let (Some(client_id), Some(secret)) = (id, secret) else {
        return Err(genesys::GenesysError::MissingCredentials.into());
    };
    let endpoints = Endpoints::resolve(
        &args.region,
        args.api_url.as_deref(),
        args.login_url.as_deref(),
    )?;
    let policy = RetryPolicy {
        max_attempts: args.max_attempts.max(1),
        timeout: std::time::Duration::from_secs(args.timeout.max(1)),
        ..RetryPolicy::default()
    };
    let client = ApiClient::new(
        endpoints,
        Credentials {
            client_id,
            client_secret: secret,
        },
        policy,
    )?;
    let media: Vec<String> = args
        .media
        .iter()
        .map(|m| m.trim().to_ascii_lowercase())
        .collect();
    if args.source == config::Source::Analytics {
        return fetch_analytics(lake, &client, args, media).await;
    }
    let (from, to) = date_range(args)?;
    let opts = FetchOptions {
        from,
        to,
        media,
        page_size: args.page_size.unwrap_or(100).clamp(1, 1000),
    };
    let s = genesys::fetch(lake, &client, &opts).await?;
    eprintln!(
        "fetch: {} pages, {} new snapshots, {} conversations, {} utterances, {:.1} MB ({} to {}){}",
        s.pages,
        s.new_snapshots,
        s.conversations,
        s.utterances,
        s.body_bytes as f64 / 1e6,
        from,
        to,
        if s.resumed_runs > 0 {
            ", resumed an unfinished run"
        } else {
            ""
        }
    );
    Ok(s)
}

/// The listing page size of an analytics fetch: `--page-size`, checked against what the
/// listing accepts (job results up to 1,000 a page, the details query up to 100), by default
/// the largest (one listing request per 1,000 conversations instead of one per 50).
fn listing_page_size(args: &FetchConfig) -> Result<u32> {
    use genesys::analytics::{JOB_RESULTS_MAX_PAGE, QUERY_MAX_PAGE};
    let (max, what) = match args.listing {
        config::Listing::Jobs => (JOB_RESULTS_MAX_PAGE, "details job results"),
        config::Listing::Query => (QUERY_MAX_PAGE, "the details query"),
    };
    match args.page_size {
        None => Ok(max),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => bail!(
            "--page-size {n}: {what} serve at most {max} conversations a page (GENESYS.md §2.1); use --page-size {max} or less"
        ),
    }
}

/// `convlake fetch --source analytics`: the range (explicit, or since the last completed
/// interval minus the lateness window), then the staging stage.
async fn fetch_analytics(
    lake: &Lake,
    client: &ApiClient,
    args: &FetchConfig,
    media: Vec<String>,
) -> Result<genesys::FetchSummary> {
    use genesys::analytics::Listing;
    use genesys::staging::{self, AnalyticsOptions};
    let midnight = |d: NaiveDate| d.and_time(chrono::NaiveTime::MIN).and_utc();
    let to = args.to.unwrap_or_else(|| Utc::now().date_naive());
    let end = midnight(
        to.checked_add_days(chrono::Days::new(1))
            .with_context(|| format!("--to {to} is past the last date convlake can handle"))?,
    );
    let (start, started_after) = if args.since_last {
        let events = lake.events().read_all().await?;
        match staging::last_complete(&events) {
            Some(last) => {
                let reach_back = chrono::Duration::from_std(args.lateness)
                    .ok()
                    .and_then(|l| last.checked_sub_signed(l));
                let Some(start) = reach_back else {
                    bail!(
                        "--lateness {:?} reaches back before the first date convlake can handle; use a shorter one (e.g. 24h or 7d)",
                        args.lateness
                    );
                };
                (start, None)
            }
            None => {
                let (from, _) = date_range(args)?;
                eprintln!("fetch: --since-last: no completed analytics interval in this lake yet; fetching from {from}");
                (midnight(from), Some(midnight(from)))
            }
        }
    } else {
        let (from, _) = date_range(args)?;
        (midnight(from), Some(midnight(from)))
    };
    if start >= end {
        bail!("nothing to fetch: the range starts at {start}, after its end {end}");
    }
    let opts = AnalyticsOptions {
        start,
        end,
        started_after,
        media,
        listing: match args.listing {
            config::Listing::Jobs => Listing::Jobs,
            config::Listing::Query => Listing::Query,
        },
        interval: chrono::Duration::days(i64::from(args.interval_days.max(1))),
        page_size: listing_page_size(args)?,
        batch_size: args.batch_size.max(1) as usize,
        transcript_grace: chrono::Duration::from_std(args.transcript_grace)
            .ok()
            .filter(|g| *g <= chrono::Duration::days(3650))
            .with_context(|| {
                format!(
                    "--transcript-grace {:?} is longer than ten years; use a window such as 72h or 30d",
                    args.transcript_grace
                )
            })?,
        concurrency: args.concurrency.max(1) as usize,
        job_poll_max: seconds_flag("--job-poll-max", args.job_poll_max, 0.01, 60.0)?,
        job_timeout: args.job_timeout,
        not_ready: genesys::transcripts::NotReadyPolicy {
            attempts: args.not_ready_attempts.max(1),
            wait: seconds_flag("--not-ready-wait", args.not_ready_wait, 0.0, 600.0)?,
        },
    };
    let s = staging::fetch(lake, client, &opts).await?;
    let minutes = (s.elapsed_ms as f64 / 60_000.0).max(1e-9);
    eprintln!(
        "fetch: analytics ({}) {} to {}: {} intervals ({} already done), {} pages, {} conversations ({} unchanged), {} transcripts, {} without transcript{}, {} new snapshots, {} utterances; {} API requests ({:.0}/min), {} 429s{}{}",
        opts.listing.as_str(),
        start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        s.intervals,
        s.intervals_skipped,
        s.pages,
        s.conversations,
        s.unchanged,
        s.transcripts,
        s.missing_transcripts,
        genesys::staging::reasons_text(&s.missing_by_reason),
        s.new_snapshots,
        s.utterances,
        s.requests,
        s.requests as f64 / minutes,
        s.too_many,
        if s.refused_records > 0 {
            format!(
                ", {} conversation records refused (named above)",
                s.refused_records
            )
        } else {
            String::new()
        },
        if s.resumed_runs > 0 {
            ", resumed an unfinished run"
        } else {
            ""
        }
    );
    for line in missing_text_notes(&s.missing_by_reason, args.transcript_grace) {
        eprintln!("fetch: note: {line}");
    }
    if s.refused_records > 0 {
        // Everything else is staged and recorded; the run still fails so a scheduler sees it.
        bail!(
            "{} conversation record(s) could not be staged: {}{}. Every other conversation was staged, and a re-run does not fetch them again; ask your Genesys administrator about these records (or report a bug if they look valid)",
            s.refused_records,
            s.refused.join("; "),
            if s.refused_records as usize > s.refused.len() { "; …" } else { "" }
        );
    }
    Ok(s)
}

/// What a user can do about the conversations a fetch staged without text, one line per reason
/// that has one.
fn missing_text_notes(
    by_reason: &std::collections::BTreeMap<String, u64>,
    grace: std::time::Duration,
) -> Vec<String> {
    let n = |r: &str| by_reason.get(r).copied().unwrap_or(0);
    let errors: u64 = by_reason
        .iter()
        .filter(|(r, _)| r.starts_with("error"))
        .map(|(_, n)| n)
        .sum();
    let hours = grace.as_secs() / 3600;
    let mut out = Vec::new();
    if n("transcript-pending") > 0 {
        out.push(format!(
            "{} voice conversations have no Speech & Text Analytics transcript yet; every later fetch asks for them again until they ended more than {hours}h ago (--transcript-grace), then counts them as untranscribed",
            n("transcript-pending")
        ));
    }
    if n("permission") > 0 {
        out.push(format!(
            "{} conversations were refused for a missing permission (403): give the OAuth client's role recording:recording:view (and speechAndTextAnalytics:data:view for voice), then fetch again",
            n("permission")
        ));
    }
    if n("archived") > 0 {
        out.push(format!(
            "{} digital conversations have only archived recordings (fileState ARCHIVED): restore them in Genesys Cloud, then fetch their dates again",
            n("archived")
        ));
    }
    if n("gone") > 0 {
        out.push(format!(
            "{} voice transcripts are gone (their presigned link answered 404: deleted with the recording, e.g. by retention); nothing to fetch",
            n("gone")
        ));
    }
    if errors > 0 {
        out.push(format!(
            "{errors} recordings carry a recordingErrorStatus and no text (reason error:<status> in the summary); Genesys cannot serve their text"
        ));
    }
    out
}

/// A seconds flag as a duration within `[min, max]`; NaN or infinity is a usage error naming
/// the flag, not a panic.
fn seconds_flag(flag: &str, v: f64, min: f64, max: f64) -> Result<std::time::Duration> {
    if !v.is_finite() {
        bail!("{flag} {v} is not a number of seconds");
    }
    Ok(std::time::Duration::from_secs_f64(v.clamp(min, max)))
}

fn workers(w: Option<usize>) -> usize {
    w.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
}

/// `convlake extract`.
pub async fn extract(
    lake: &Lake,
    dict: &Dictionary,
    w: Option<usize>,
) -> Result<extract::ExtractSummary> {
    extract_shard(lake, dict, w, None).await
}

/// `convlake extract [--shard i/n]`.
pub async fn extract_shard(
    lake: &Lake,
    dict: &Dictionary,
    w: Option<usize>,
    shard: Option<extract::Shard>,
) -> Result<extract::ExtractSummary> {
    let shard = shard.unwrap_or(extract::Shard::ALL);
    let s = extract::extract_shard(lake, dict, workers(w), shard).await?;
    let of = if shard.count > 1 {
        format!(" shard {shard}:")
    } else {
        String::new()
    };
    eprintln!(
        "extract:{of} dictionary {} ({}): {} snapshots extracted, {} already done, {} mentions in {} utterances",
        s.dictionary_version, dict.origin, s.extracted, s.skipped, s.mentions, s.utterances
    );
    if !s.missing.is_empty() {
        let shown: Vec<&str> = s
            .missing
            .iter()
            .take(5)
            .map(|m| &m[..m.len().min(16)])
            .collect();
        eprintln!(
            "extract: skipped {} recorded snapshot(s) whose file is absent (quarantined by `convlake verify`?): {}{}; nothing was written for them, and the next `convlake fetch` of their range stages their conversations again",
            s.missing.len(),
            shown.join(", "),
            if s.missing.len() > shown.len() { ", …" } else { "" }
        );
    }
    Ok(s)
}

/// `convlake aggregate`.
pub async fn aggregate(
    lake: &Lake,
    dict: &Dictionary,
    engine: &aggregate::Engine,
) -> Result<aggregate::AggregateSummary> {
    let s = aggregate::aggregate_with(lake, &dict.version, engine).await?;
    let on = match engine {
        aggregate::Engine::Local => String::new(),
        aggregate::Engine::Ballista { scheduler } => format!(" (on Ballista at {scheduler})"),
    };
    eprintln!(
        "aggregate: {} rows, {} mentions -> {}{on}",
        s.rows, s.mentions, s.path
    );
    Ok(s)
}

/// The engine `aggregate`'s flags ask for.
pub fn engine(args: &AggregateConfig) -> Result<aggregate::Engine> {
    match (args.engine, &args.scheduler) {
        (config::Engine::Local, None) => Ok(aggregate::Engine::Local),
        (config::Engine::Local, Some(s)) => bail!(
            "--scheduler {s} is only used with --engine ballista (CONVLAKE_ENGINE=ballista); add it, or drop --scheduler (CONVLAKE_SCHEDULER)"
        ),
        (config::Engine::Ballista, Some(s)) => Ok(aggregate::Engine::Ballista {
            scheduler: s.clone(),
        }),
        (config::Engine::Ballista, None) => {
            bail!("--engine ballista needs --scheduler df://HOST:PORT (or CONVLAKE_SCHEDULER)")
        }
    }
}

/// `convlake ballista scheduler|executor`, serving only the lake `lake` (`--lake`).
#[cfg(feature = "ballista")]
pub async fn ballista(role: &BallistaRole, lake: &str) -> Result<()> {
    use crate::aggregate::ballista::serve;
    match role {
        BallistaRole::Scheduler(a) => serve::scheduler(a, lake).await?,
        BallistaRole::Executor(a) => serve::executor(a, lake).await?,
    }
    Ok(())
}

/// `convlake ballista …` in a build without Ballista.
#[cfg(not(feature = "ballista"))]
pub async fn ballista(_role: &BallistaRole, _lake: &str) -> Result<()> {
    Err(aggregate::AggregateError::BallistaNotBuilt.into())
}

pub(crate) async fn counts(lake: &Lake, dict: &Dictionary) -> Result<MentionCounts> {
    match crate::lake::aggregates::read_mention_counts(lake, &dict.version).await? {
        Some(c) => Ok(c),
        None => bail!(
            "no aggregates for dictionary version {} in {}: run `convlake extract` and `convlake aggregate` first",
            dict.version,
            lake.location()
        ),
    }
}

fn target(db: &DbConfig) -> Result<Option<Target>> {
    let url = secret_fallback(&db.database_url, "POSTGRES_CONNECTION_STRING");
    url.map(|u| Target::new(u, &db.schema).map_err(Into::into))
        .transpose()
}

/// `convlake sync`.
pub async fn sync(lake: &Lake, dict: &Dictionary, db: &DbConfig) -> Result<sync::SyncSummary> {
    let Some(t) = target(db)? else {
        bail!(
            "no database: set DATABASE_URL (or POSTGRES_CONNECTION_STRING) or pass --database-url"
        );
    };
    sync_to(lake, dict, &t, &sync_options(db)).await
}

fn sync_options(db: &DbConfig) -> sync::SyncOptions {
    sync::SyncOptions {
        wait: db.wait,
        allow_empty: db.allow_empty,
    }
}

/// Syncs the lake's aggregates of `dict` to `t`, prints the summary (and a warning per table
/// that lost more than half its rows), and records a `synced` event, also when nothing changed,
/// so `events` lists every sync.
async fn sync_to(
    lake: &Lake,
    dict: &Dictionary,
    t: &Target,
    options: &sync::SyncOptions,
) -> Result<sync::SyncSummary> {
    let aggregates = sync::Aggregates::read(lake, &dict.version).await?;
    let s = sync::sync_with(t, &aggregates, &dict.version, options).await?;
    if s.unchanged {
        eprintln!(
            "sync: {} already holds these {} rows; nothing to do",
            t.describe(),
            s.rows
        );
    } else {
        eprintln!(
            "sync: {}: product_mentions {} rows ({} inserted, {} updated, {} deleted); conversation_mentions {} rows ({} changed)",
            t.describe(),
            s.rows,
            s.inserted,
            s.updated,
            s.deleted,
            s.conversation_rows,
            s.conversation_changes
        );
    }
    for warning in s.large_deletions() {
        eprintln!("warning: {warning}");
    }
    // The target's database is named without user or password: the lake never holds a secret.
    lake.events()
        .append(vec![crate::lake::EventKind::Synced {
            dictionary_version: dict.version.clone(),
            content_hash: aggregates.content_hash.clone(),
            inserted: s.inserted,
            updated: s.updated,
            deleted: s.deleted,
            database: Some(t.database()),
            schema: Some(t.schema().to_string()),
            conversation_changes: s.conversation_changes,
        }])
        .await
        .with_context(|| {
            format!(
                "{} is synced, but the `synced` event could not be written to the lake; a re-run records it",
                t.describe()
            )
        })?;
    Ok(s)
}

/// `convlake migrate`.
pub async fn migrate(db: &DbConfig) -> Result<()> {
    let Some(t) = target(db)? else {
        bail!(
            "no database: set DATABASE_URL (or POSTGRES_CONNECTION_STRING) or pass --database-url"
        );
    };
    let mut client = t.connect().await?;
    let applied = sync::migrate(&mut client, &t, db.wait).await?;
    if applied.is_empty() {
        eprintln!("migrate: {} is up to date", t.describe());
    } else {
        eprintln!(
            "migrate: applied {} to {}",
            applied.join(", "),
            t.describe()
        );
    }
    Ok(())
}

/// What `run` did, for the demo's summary.
pub struct RunSummary {
    pub fetch: genesys::FetchSummary,
    pub extract: extract::ExtractSummary,
    pub aggregate: aggregate::AggregateSummary,
    pub synced: Option<sync::SyncSummary>,
}

/// Set by the first Ctrl-C/SIGTERM: the current stage finishes, no new stage starts.
static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A stop asked for by Ctrl-C or SIGTERM: not a failure.
#[derive(Debug, thiserror::Error)]
#[error("stopped by a signal before {0}; the stages before it are complete and a re-run continues from there")]
struct StopRequested(&'static str);

fn check_stop(next: &'static str) -> Result<()> {
    if STOP.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(StopRequested(next).into());
    }
    Ok(())
}

/// Holds `<lake>/.convlake-run.lock` (an OS file lock, released when the process ends, even on
/// a crash) so two schedulers never run on one lake. On an object-store lake the lock lives in
/// the lake's local work directory, so it keeps schedulers on this machine apart; writers on
/// other machines are safe anyway (snapshots are content-addressed, event segments are
/// created with create-if-absent, the sync takes a PostgreSQL advisory lock).
pub struct LakeLock {
    _file: std::fs::File,
}

/// Takes the scheduler lock of a lake, or says who holds it.
pub fn lock_lake(lake: &Lake) -> Result<LakeLock> {
    use std::io::{Read, Seek, Write};
    let path = lake.work_dir()?.join(".convlake-run.lock");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    if file.try_lock().is_err() {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        bail!(
            "another convlake run ({}) is using the lake {}; stop it first, or use another --lake",
            holder.trim(),
            lake.location()
        );
    }
    file.set_len(0)?;
    file.rewind()?;
    write!(file, "pid {}", std::process::id())?;
    Ok(LakeLock { _file: file })
}

/// Waits for Ctrl-C or SIGTERM.
async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `convlake run`, once or `--every` DURATION. The first Ctrl-C/SIGTERM lets the current stage
/// finish and stops; a second one aborts at once (a sync in progress is rolled back by
/// PostgreSQL, a page being written is never recorded).
pub async fn run_command(lake: &Lake, dict: &Dictionary, args: &RunConfig) -> Result<()> {
    let _lock = lock_lake(lake)?;
    let work = async {
        let mut cycle = 0u64;
        loop {
            cycle += 1;
            let started = std::time::Instant::now();
            let s = match run(lake, dict, args).await {
                Ok(s) => s,
                Err(e) if e.is::<StopRequested>() => {
                    eprintln!("run: {e}");
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            let Some(every) = args.every else {
                return Ok::<(), anyhow::Error>(());
            };
            eprintln!(
                "cycle {cycle}: {} pages ({} new), {} snapshots extracted, {} mentions, sync: {}, {:.1} s",
                s.fetch.pages,
                s.fetch.new_snapshots,
                s.extract.extracted,
                s.aggregate.mentions,
                match &s.synced {
                    None => "skipped".to_string(),
                    Some(x) if x.unchanged => "unchanged".to_string(),
                    Some(x) => format!("{} changes", x.inserted + x.updated + x.deleted + x.conversation_changes),
                },
                started.elapsed().as_secs_f64()
            );
            let wait = every.saturating_sub(started.elapsed());
            let mut slept = std::time::Duration::ZERO;
            while slept < wait {
                if STOP.load(std::sync::atomic::Ordering::SeqCst) {
                    eprintln!("run: stopped after cycle {cycle}");
                    return Ok(());
                }
                let step = (wait - slept).min(std::time::Duration::from_millis(200));
                tokio::time::sleep(step).await;
                slept += step;
            }
        }
    };
    let signals = async {
        signal().await;
        STOP.store(true, std::sync::atomic::Ordering::SeqCst);
        eprintln!("run: stopping after the current stage (press Ctrl-C again to abort now)");
        signal().await;
    };
    tokio::select! {
        r = work => r,
        _ = signals => bail!("aborted by a second signal; a sync in progress was rolled back, and a re-run continues where this one stopped"),
    }
}

/// `convlake run`: one pass of every stage.
pub async fn run(lake: &Lake, dict: &Dictionary, args: &RunConfig) -> Result<RunSummary> {
    check_stop("fetch")?;
    let f = fetch(lake, &args.fetch).await?;
    check_stop("extract")?;
    let e = extract(lake, dict, args.workers).await?;
    check_stop("aggregate")?;
    let a = aggregate(lake, dict, &aggregate::Engine::Local).await?;
    check_stop("sync")?;
    let synced = match target(&args.db)? {
        Some(t) => Some(sync_to(lake, dict, &t, &sync_options(&args.db)).await?),
        None => {
            eprintln!("sync: skipped (no DATABASE_URL)");
            None
        }
    };
    report(lake, dict, &args.report).await?;
    check_stop("export")?;
    let (body, hash) = payload(lake, dict).await?;
    write_dashboard(lake, None, &body).await?;
    if args.dashboard.dashboard_url.is_some() {
        post(&args.dashboard, &body, &hash).await?;
    } else {
        eprintln!("export: no DASHBOARD_API_URL; payload written to reports/dashboard.json");
    }
    Ok(RunSummary {
        fetch: f,
        extract: e,
        aggregate: a,
        synced,
    })
}

/// The simulator's products: the dictionary's names and aliases.
pub(crate) fn sim_products(dict: &Dictionary) -> Vec<SimProduct> {
    dict.products
        .iter()
        .map(|p| SimProduct {
            name: p.name.clone(),
            aliases: p.aliases.clone(),
        })
        .collect()
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// `convlake simulate`: serves until Ctrl-C.
pub async fn simulate(dict: &Dictionary, args: &SimulateConfig) -> Result<()> {
    let mut cfg = SimConfig::new(sim_products(dict));
    cfg.conversations = args.conversations;
    if let Some(s) = args.start {
        cfg.start = s;
    }
    cfg.days = args.days.max(1);
    cfg.seed = args.seed;
    cfg.client_id = args.client_id.clone();
    cfg.client_secret = args.client_secret.clone();
    cfg.faults.rate_429 = args.fail_429;
    cfg.faults.rate_500 = args.fail_500;
    cfg.faults.drop_rate = args.drop_connections;
    cfg.faults.slow_rate = args.slow;
    cfg.faults.slow_ms = args.slow_ms;
    cfg.faults.not_ready_rate = args.not_ready;
    cfg.faults.not_ready_for_secs = args.not_ready_for;
    cfg.faults.revoke_tokens_after_secs = args.revoke_tokens_after;
    cfg.rate_limit_per_minute = args.rate_limit;
    cfg.token_ttl_secs = args.token_ttl.max(1);
    cfg.untranscribed_rate = args.untranscribed;
    cfg.lengths = args.lengths;
    cfg.job_polls = args.job_polls.max(1);
    cfg.max_query_interval_days = args.max_query_days.max(1);
    cfg.transcript_url_ttl_secs = args.transcript_url_ttl;
    cfg.traffic = args.traffic.clone();
    let sim = simulator::start(cfg.clone(), loopback(args.port)).await?;
    println!("{}", sim.url);
    eprintln!(
        "simulate: {} conversations from {} over {} days (seed {}); Ctrl-C to stop",
        cfg.conversations, cfg.start, cfg.days, cfg.seed
    );
    let missing = simulator::untranscribed(
        &cfg,
        cfg.start,
        cfg.start + chrono::Days::new(u64::from(cfg.days)),
    );
    eprintln!(
        "simulate: {} voice conversations have no transcript (transcripturl answers 404)",
        missing.len()
    );
    let c = simulator::shape_counts(
        &cfg,
        cfg.start,
        cfg.start + chrono::Days::new(u64::from(cfg.days)),
    );
    eprintln!(
        "simulate: {} callbacks, {} transferred calls, {} calls recorded twice, {} late and {} gone transcripts, {} archived and {} errored recordings, {} ongoing{}",
        c.callbacks,
        c.transfers,
        c.duplicated,
        c.late,
        c.gone,
        c.archived,
        c.errored,
        c.ongoing,
        if cfg.traffic.sta_permission { "" } else { "; no STA permission (transcripturl answers 403)" }
    );
    tokio::signal::ctrl_c().await?;
    sim.shutdown().await;
    Ok(())
}

/// Where `demo` keeps its lake unless `--lake` is given on its own command line (never
/// `CONVLAKE_LAKE`, which names the lake of real work).
pub const DEMO_LAKE: &str = "data/demo";
/// The PostgreSQL schema `demo` syncs into when DATABASE_URL is set (never `public` or
/// `CONVLAKE_DB_SCHEMA`).
pub const DEMO_SCHEMA: &str = "convlake_demo";
/// The file `demo` writes at the root of its lake, first: a lake without it that holds anything
/// is not the demo's, and `demo` refuses it.
pub const DEMO_MARKER: &str = "convlake-demo.txt";

/// Checks that `lake` is the demo's own (it holds [`DEMO_MARKER`]) or holds nothing yet, so a
/// demo never stages simulated conversations into a lake of real work.
async fn check_demo_lake(lake: &Lake) -> Result<()> {
    if lake.exists(DEMO_MARKER).await? {
        return Ok(());
    }
    let holds_something = match lake.local_dir() {
        // The scheduler lock is left by any command that took it, a demo that stopped early too.
        Some(dir) => std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .flatten()
            .any(|e| e.file_name() != ".convlake-run.lock"),
        None => {
            use futures::TryStreamExt;
            lake.store()
                .list(None)
                .try_next()
                .await
                .with_context(|| format!("listing {}", lake.location()))?
                .is_some()
        }
    };
    if holds_something {
        bail!(
            "{} is not a demo lake: it holds files but no {DEMO_MARKER}, so it may hold real data, and `convlake demo` never writes there. Run `convlake demo` without --lake (its lake is {DEMO_LAKE}), or give it a new or empty directory",
            lake.location()
        );
    }
    Ok(())
}

/// The connection string `demo` syncs to: DATABASE_URL (or POSTGRES_CONNECTION_STRING) when set.
fn demo_database_url() -> Option<Secret> {
    ["DATABASE_URL", "POSTGRES_CONNECTION_STRING"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|u| !u.is_empty()))
        .map(Secret::new)
}

/// `convlake demo`: the whole pipeline against the simulator, a local receiver and PostgreSQL.
/// It writes only its own lake ([`DEMO_LAKE`] or a `--lake` holding [`DEMO_MARKER`] or nothing)
/// and only the [`DEMO_SCHEMA`] schema of DATABASE_URL, or a throwaway cluster when unset.
pub async fn demo(lake: &Lake, dict: &Dictionary, args: &DemoConfig) -> Result<()> {
    check_demo_lake(lake).await?;
    let _lock = lock_lake(lake)?;
    lake.put_if_absent(
        DEMO_MARKER,
        bytes::Bytes::from_static(
            b"This lake was made by `convlake demo`: simulated conversations only.\n\
              `convlake demo` reuses it; delete the directory to start over.\n",
        ),
    )
    .await?;
    let started = std::time::Instant::now();
    let days = args.days.max(1);
    let today = Utc::now().date_naive();
    let mut cfg = SimConfig::new(sim_products(dict));
    cfg.conversations = args.conversations;
    cfg.start = today - chrono::Days::new(days as u64);
    cfg.days = days;
    cfg.seed = args.seed;
    cfg.client_id = Some("convlake-demo".into());
    cfg.client_secret = Some(Secret::new("demo-secret"));
    // The same realistic traffic `convlake simulate` serves by default.
    let cfg = cfg.with_real_traffic_mix();
    let sim = simulator::start(cfg.clone(), loopback(0)).await?;
    let receiver = report::start_receiver(loopback(0), 0).await?;
    eprintln!(
        "demo: simulator at {}, dashboard receiver at {}",
        sim.url, receiver.url
    );

    let mut cluster = None;
    let configured = demo_database_url();
    let database_url = match &configured {
        Some(u) => Some(u.clone()),
        // In the temp directory, not the lake: as root the server runs as `postgres`, who may
        // not be able to enter the lake's directory.
        None => match crate::pgtmp::TempCluster::start(&std::env::temp_dir()) {
            Ok(c) => {
                eprintln!(
                    "demo: started a throwaway PostgreSQL on 127.0.0.1:{} for this run",
                    c.port
                );
                let url = c.url.clone();
                cluster = Some(c);
                Some(url)
            }
            Err(e) => {
                eprintln!("demo: skipping the PostgreSQL sync: {e}");
                None
            }
        },
    };
    // Where the rows go, without the password, for the summary.
    let db_place = match &database_url {
        Some(u) => Some(Target::new(u.clone(), DEMO_SCHEMA)?.describe()),
        None => None,
    };
    let to = cfg.start + chrono::Days::new(days as u64 - 1);
    // Only what differs from `convlake run` without flags.
    let run_args = RunConfig {
        fetch: FetchConfig {
            from: Some(cfg.start),
            to: Some(to),
            api_url: Some(sim.url.clone()),
            client_id: Some("convlake-demo".into()),
            client_secret: Some("demo-secret".into()),
            ..FetchConfig::default()
        },
        db: DbConfig {
            database_url: database_url.clone(),
            schema: DEMO_SCHEMA.into(),
            wait: true,
            ..DbConfig::default()
        },
        dashboard: DashboardConfig {
            dashboard_url: Some(receiver.url.clone()),
            dashboard_token: Some("demo-token".into()),
        },
        ..RunConfig::default()
    };
    let mut result = run(lake, dict, &run_args).await;
    // Late transcripts: STA transcribes a call after it ends (hours in Genesys, seconds here).
    // The demo waits, then runs again as the next scheduled run would (`--since-last`): that run
    // asks for the pending transcripts again, whatever range it lists.
    let pending = match &result {
        Ok(s) => s
            .fetch
            .missing_by_reason
            .get(genesys::staging::TRANSCRIPT_PENDING)
            .copied()
            .unwrap_or(0),
        Err(_) => 0,
    };
    if pending > 0 {
        let wait = cfg.traffic.late_for_secs;
        eprintln!(
            "demo: {pending} calls have no transcript yet (Speech & Text Analytics transcribes a call after it ends: hours in Genesys, {wait:.0} s here); waiting, then running again as the next scheduled run would (--since-last), which asks for them again"
        );
        tokio::time::sleep(std::time::Duration::from_secs_f64(wait.max(0.0) + 0.5)).await;
        let mut again = run_args.clone();
        again.fetch.since_last = true;
        let first_listed = result.as_ref().map(|s| s.fetch.conversations).unwrap_or(0);
        result = run(lake, dict, &again).await.map(|mut s| {
            s.fetch.conversations = first_listed;
            s
        });
    }
    let db_rows = match (&result, &database_url) {
        (Ok(_), Some(url)) => count_db_rows(url).await.ok(),
        _ => None,
    };
    sim.shutdown().await;
    let received = receiver.received().len();
    receiver.shutdown().await;
    if let Some(mut c) = cluster {
        c.stop();
    }
    let summary = result?;

    let truth = simulator::ground_truth(
        &cfg,
        cfg.start,
        to + chrono::Days::new(1),
        &["voice", "chat", "email", "message"],
    );
    let rows = counts(lake, dict).await?.rows;
    let mut per_product: std::collections::BTreeMap<String, i64> = Default::default();
    for r in &rows {
        *per_product.entry(r.product.clone()).or_default() += r.mentions;
    }
    let expected = truth.totals_by_product();
    println!();
    // Listing intervals overlap (a conversation active across a boundary is listed twice), so
    // count the distinct conversations the lake holds.
    let ctx = crate::lake::tables::session(lake, &dict.version).await?;
    let distinct = crate::lake::tables::query(
        &ctx,
        "SELECT COUNT(DISTINCT conversation_id) AS n FROM utterances",
    )
    .await?
    .first()
    .and_then(|b| {
        b.column(0)
            .as_any()
            .downcast_ref::<arrow::array::Int64Array>()
            .map(|a| a.value(0))
    })
    .unwrap_or(0);
    println!(
        "convlake demo: {distinct} conversations with text ({} listed), {} snapshots, {} mentions",
        summary.fetch.conversations, summary.extract.snapshots, summary.aggregate.mentions
    );
    println!(
        "{:<24} {:>10} {:>14}",
        "product", "mentions", "ground truth"
    );
    for (p, n) in &per_product {
        println!(
            "{:<24} {:>10} {:>14}",
            p,
            n,
            expected.get(p).copied().unwrap_or(0)
        );
    }
    let exact = expected
        .iter()
        .all(|(p, n)| per_product.get(p).copied().unwrap_or(0) == *n as i64)
        && per_product.len() == expected.len();
    println!(
        "matches the simulator's ground truth: {}",
        if exact { "yes" } else { "NO" }
    );
    let at = |rel: &str| match lake.local_dir() {
        Some(root) => root.join(rel).display().to_string(),
        None => lake.file_url(rel),
    };
    println!("lake:       {}", lake.location());
    println!("snapshots:  {}", at("raw"));
    println!(
        "mentions:   {}",
        at(&crate::lake::mentions_dir(&dict.version))
    );
    println!("charts:     {} and trend.svg", at("reports/trend.png"));
    println!(
        "dashboard:  {} (and posted {} time(s) to the local receiver)",
        at("reports/dashboard.json"),
        received
    );
    match (db_rows, &db_place) {
        (Some(n), Some(place)) if configured.is_some() => println!(
            "postgres:   {n} rows in {DEMO_SCHEMA}.product_mentions of DATABASE_URL ({place}); other schemas untouched"
        ),
        (Some(n), Some(_)) => println!("postgres:   {n} rows were in {DEMO_SCHEMA}.product_mentions (throwaway cluster, now removed; set DATABASE_URL to keep them)"),
        _ => println!("postgres:   skipped (set DATABASE_URL or install PostgreSQL)"),
    }
    // The demo's lake is not the default one: the suggestion names it.
    println!("try:        convlake --lake {} query \"SELECT product, SUM(mentions) AS mentions FROM mention_counts GROUP BY product ORDER BY mentions DESC\"", lake.location());
    println!("took {:.1} s", started.elapsed().as_secs_f64());
    if !exact {
        bail!("the extracted counts differ from the simulator's ground truth");
    }
    Ok(())
}

async fn count_db_rows(url: &Secret) -> Result<i64> {
    let t = Target::new(url.clone(), DEMO_SCHEMA)?;
    let client = t.connect().await?;
    let row = client
        .query_one("SELECT count(*) FROM product_mentions", &[])
        .await?;
    Ok(row.get(0))
}
