//! The stage commands: `fetch`, `extract`, `aggregate`, `sync` and `migrate`, each running one
//! stage on its settings and printing its one-line summary.

use std::path::Path;

use anyhow::{bail, Context as _, Result};
use chrono::{NaiveDate, Utc};

use crate::aggregate;
use crate::config::{self, AggregateConfig, DbConfig, FetchConfig, GenesysConfig};
use crate::extract::{self, Dictionary};
use crate::genesys::{self, ApiClient, Credentials, Endpoints, FetchOptions, RetryPolicy};
use crate::lake::aggregates::MentionCounts;
use crate::lake::Lake;
use crate::secret::Secret;

use crate::sync::{self, Target};

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

/// A Genesys client from the connection settings: the flags, else GENESYSCLOUD_OAUTHCLIENT_ID
/// and GENESYSCLOUD_OAUTHCLIENT_SECRET for the credentials (what `fetch` and `dictionary push`
/// share).
pub fn api_client(args: &GenesysConfig) -> Result<ApiClient> {
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
    Ok(ApiClient::new(
        endpoints,
        Credentials {
            client_id,
            client_secret: secret,
        },
        policy,
    )?)
}

/// `convlake fetch`.
pub async fn fetch(lake: &Lake, args: &FetchConfig) -> Result<genesys::FetchSummary> {
    let client = api_client(&args.genesys())?;
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
        mask: masker(args)?,
        restore: args.restore,
    };
    let s = genesys::fetch(lake, &client, &opts).await?;
    privacy_lines(&s);
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

/// The masking rules of `--mask pii` (with the patterns of `--masks FILE`), or none.
fn masker(args: &FetchConfig) -> Result<Option<std::sync::Arc<crate::privacy::mask::Masker>>> {
    use crate::privacy::mask::Masker;
    let user = match &args.masks {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| {
                format!(
                    "cannot read the masks file {} (--masks, CONVLAKE_MASKS or `masks` in convlake.toml); check the path",
                    path.display()
                )
            })?;
            Masker::user_patterns_in(&text, &path.display().to_string())?
        }
        None => Vec::new(),
    };
    match args.mask {
        config::Mask::None if !user.is_empty() => bail!(
            "--masks {} names masking patterns but --mask is none: nothing would be masked; add --mask pii (or `mask = \"pii\"` in convlake.toml)",
            args.masks.as_deref().map(|p| p.display().to_string()).unwrap_or_default()
        ),
        config::Mask::None => Ok(None),
        config::Mask::Pii => Ok(Some(std::sync::Arc::new(Masker::pii(user)?))),
    }
}

/// What a fetch did about privacy: its masking, and erased conversations skipped or restored.
fn privacy_lines(s: &genesys::FetchSummary) {
    if let Some(m) = &s.masked {
        eprintln!("fetch: texts masked before staging ({m})");
    }
    if s.erased_skipped > 0 {
        eprintln!(
            "fetch: {} erased conversation(s) were sent again and not staged (`convlake fetch --restore` stages them again)",
            s.erased_skipped
        );
    }
    if s.restored > 0 {
        eprintln!(
            "fetch: --restore: {} erased conversation(s) staged again",
            s.restored
        );
    }
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
/// interval minus the lateness window), then the analytics fetch stage.
async fn fetch_analytics(
    lake: &Lake,
    client: &ApiClient,
    args: &FetchConfig,
    media: Vec<String>,
) -> Result<genesys::FetchSummary> {
    use genesys::analytics::Listing;
    use genesys::fetch::analytics::{self, AnalyticsOptions};
    let midnight = |d: NaiveDate| d.and_time(chrono::NaiveTime::MIN).and_utc();
    let to = args.to.unwrap_or_else(|| Utc::now().date_naive());
    let end = midnight(
        to.checked_add_days(chrono::Days::new(1))
            .with_context(|| format!("--to {to} is past the last date convlake can handle"))?,
    );
    let (start, started_after) = if args.since_last {
        let events = lake.events().read_all().await?;
        match analytics::last_complete(&events) {
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
        mask: masker(args)?,
        restore: args.restore,
    };
    let s = analytics::fetch(lake, client, &opts).await?;
    privacy_lines(&s);
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
        genesys::fetch::analytics::reasons_text(&s.missing_by_reason),
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
    eprintln!(
        "aggregate: {} topic rows, {} product-topic rows, {} co-mention rows; {} insight tests, {} flagged",
        s.topics, s.product_topics, s.co_mentions, s.tests, s.flagged
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

pub(crate) fn target(db: &DbConfig) -> Result<Option<Target>> {
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

pub(crate) fn sync_options(db: &DbConfig) -> sync::SyncOptions {
    sync::SyncOptions {
        wait: db.wait,
        allow_empty: db.allow_empty,
    }
}

/// Syncs the lake's aggregates of `dict` to `t`, prints the summary (and a warning per table
/// that lost more than half its rows), and records a `synced` event, also when nothing changed,
/// so `events` lists every sync.
pub(crate) async fn sync_to(
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
        eprintln!(
            "sync: product_topics {} rows, co_mentions {} rows, product_insights {} rows",
            s.topic_rows, s.co_mention_rows, s.insight_rows
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

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn the_range_defaults_to_thirty_days_and_refuses_a_reversed_one() {
        let cfg = FetchConfig {
            to: Some(day("2026-03-31")),
            ..FetchConfig::default()
        };
        assert_eq!(
            date_range(&cfg).unwrap(),
            (day("2026-03-01"), day("2026-03-31"))
        );
        let reversed = FetchConfig {
            from: Some(day("2026-04-02")),
            to: Some(day("2026-04-01")),
            ..FetchConfig::default()
        };
        let e = date_range(&reversed).unwrap_err().to_string();
        assert_eq!(e, "--from 2026-04-02 is after --to 2026-04-01");
        // The first day chrono knows: 30 days back does not exist, and the error says so.
        let early = FetchConfig {
            to: Some(NaiveDate::MIN),
            ..FetchConfig::default()
        };
        assert!(date_range(&early)
            .unwrap_err()
            .to_string()
            .contains("give --from"));
    }

    #[test]
    fn the_listing_page_size_is_checked_against_the_listing() {
        use genesys::analytics::{JOB_RESULTS_MAX_PAGE, QUERY_MAX_PAGE};
        let jobs = FetchConfig::default();
        assert_eq!(listing_page_size(&jobs).unwrap(), JOB_RESULTS_MAX_PAGE);
        let query = FetchConfig {
            listing: config::Listing::Query,
            ..FetchConfig::default()
        };
        assert_eq!(listing_page_size(&query).unwrap(), QUERY_MAX_PAGE);
        let too_big = FetchConfig {
            page_size: Some(QUERY_MAX_PAGE + 1),
            ..query
        };
        let e = listing_page_size(&too_big).unwrap_err().to_string();
        assert!(
            e.contains(&format!("use --page-size {QUERY_MAX_PAGE} or less")),
            "{e}"
        );
    }

    #[test]
    fn the_engine_needs_a_scheduler_exactly_when_it_is_ballista() {
        let local = AggregateConfig::default();
        assert!(matches!(engine(&local).unwrap(), aggregate::Engine::Local));
        let stray = AggregateConfig {
            scheduler: Some("df://h:1".into()),
            ..AggregateConfig::default()
        };
        assert!(engine(&stray)
            .unwrap_err()
            .to_string()
            .contains("only used with --engine ballista"));
        let ballista = AggregateConfig {
            engine: config::Engine::Ballista,
            scheduler: Some("df://h:1".into()),
        };
        assert!(matches!(
            engine(&ballista).unwrap(),
            aggregate::Engine::Ballista { scheduler } if scheduler == "df://h:1"
        ));
        let missing = AggregateConfig {
            engine: config::Engine::Ballista,
            scheduler: None,
        };
        assert!(engine(&missing)
            .unwrap_err()
            .to_string()
            .contains("needs --scheduler"));
    }

    #[test]
    fn seconds_flags_refuse_what_is_not_a_number_and_clamp_the_rest() {
        assert!(seconds_flag("--x", f64::NAN, 0.0, 1.0).is_err());
        assert!(seconds_flag("--x", f64::INFINITY, 0.0, 1.0).is_err());
        assert_eq!(
            seconds_flag("--x", 5.0, 0.0, 1.0).unwrap(),
            std::time::Duration::from_secs(1)
        );
    }

    #[test]
    fn notes_name_what_a_user_can_do_per_reason() {
        let mut by = std::collections::BTreeMap::new();
        by.insert("transcript-pending".to_string(), 2);
        by.insert("permission".to_string(), 1);
        by.insert("error:EMAIL_TRANSCRIPT_TOO_LARGE".to_string(), 3);
        let notes = missing_text_notes(&by, std::time::Duration::from_secs(72 * 3600));
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert!(notes[0].starts_with("2 voice conversations") && notes[0].contains("72h"));
        assert!(notes[1].contains("recording:recording:view"));
        assert!(notes[2].starts_with("3 recordings carry a recordingErrorStatus"));
        assert!(missing_text_notes(&Default::default(), Default::default()).is_empty());
    }
}
