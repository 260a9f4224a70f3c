//! `convlake demo`: the whole pipeline on an embedded default (the simulator, a local lake, a
//! dashboard receiver and PostgreSQL), writing only its own lake and schema.

use anyhow::{bail, Context as _, Result};
use chrono::Utc;

use super::report::movers_text;
use super::run::{lock_lake, run};
use super::simulate::loopback;
use super::stages::counts;
use crate::config::{DashboardConfig, DbConfig, DemoConfig, FetchConfig, RunConfig};
use crate::extract::Dictionary;
use crate::genesys;
use crate::lake::{layout, Lake};
use crate::report;
use crate::secret::Secret;
use crate::simulator::{self, SimConfig, SimProduct};
use crate::sync::Target;

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
    let mut cfg = SimConfig::new(SimProduct::of_dictionary(dict));
    cfg.conversations = args.conversations;
    cfg.start = today - chrono::Days::new(days as u64);
    cfg.days = days;
    cfg.seed = args.seed;
    cfg.scenario = args.scenario;
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
            .get(genesys::fetch::analytics::TRANSCRIPT_PENDING)
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
    let distinct = crate::lake::tables::conversations_with_text(&ctx).await?;
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
    println!("movers:     {}", movers_text(&summary.movers));
    let found = super::report::flagged_insights(lake, &dict.version, &ctx, &rows).await?;
    println!("insights:   {}", report::insights::insights_text(&found));
    let at = |rel: &str| match lake.local_dir() {
        Some(root) => root.join(rel).display().to_string(),
        None => lake.file_url(rel),
    };
    println!("lake:       {}", lake.location());
    println!("snapshots:  {}", at(layout::RAW_DIR));
    println!("mentions:   {}", at(&layout::mentions_dir(&dict.version)));
    println!(
        "report:     {} (charts beside it as .png and .svg: trend, share, sentiment, topics, co_mentions, one per insight)",
        at(&layout::report_path("report.html"))
    );
    println!(
        "dashboard:  {} (and posted {} time(s) to the local receiver)",
        at(layout::DASHBOARD_JSON),
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
