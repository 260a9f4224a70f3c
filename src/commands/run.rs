//! `convlake run`: every stage in order, once or `--every` DURATION, under the lake's scheduler
//! lock; the first Ctrl-C/SIGTERM lets the current stage finish.

use anyhow::{bail, Context as _, Result};

use super::report::{payload, post, report, write_dashboard};
use super::stages::{aggregate, extract, fetch, sync_options, sync_to, target};
use crate::aggregate as aggregate_stage;
use crate::config::RunConfig;
use crate::extract::{self as extract_stage, Dictionary};
use crate::genesys;
use crate::lake::Lake;
use crate::sync;

/// What `run` did, for the demo's summary.
pub struct RunSummary {
    pub fetch: genesys::FetchSummary,
    pub extract: extract_stage::ExtractSummary,
    pub aggregate: aggregate_stage::AggregateSummary,
    pub synced: Option<sync::SyncSummary>,
    /// The movers the report found ([`crate::report::movers`]).
    pub movers: std::result::Result<Vec<crate::report::Mover>, String>,
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
    if let Some(age) = args.retention {
        check_stop("retain")?;
        super::privacy::retain(lake, age, false, args.workers).await?;
    }
    check_stop("extract")?;
    let e = extract(lake, dict, args.workers).await?;
    check_stop("aggregate")?;
    let a = aggregate(lake, dict, &aggregate_stage::Engine::Local).await?;
    check_stop("sync")?;
    let synced = match target(&args.db)? {
        Some(t) => Some(sync_to(lake, dict, &t, &sync_options(&args.db)).await?),
        None => {
            eprintln!("sync: skipped (no DATABASE_URL)");
            None
        }
    };
    let drawn = report(lake, dict, &args.report).await?;
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
        movers: drawn.movers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_scheduler_on_one_lake_is_refused_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open_local(dir.path()).unwrap();
        let held = lock_lake(&lake).unwrap();
        let e = lock_lake(&lake).err().unwrap().to_string();
        assert!(
            e.contains(&format!("pid {}", std::process::id()))
                && e.contains("another convlake run"),
            "{e}"
        );
        drop(held);
        // Released with its holder: the next run takes it.
        lock_lake(&lake).unwrap();
    }
}
