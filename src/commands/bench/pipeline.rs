//! `bench pipeline`: a seeded archive in the simulator, then every stage as its own process
//! (so peak RSS is per stage), for one or more sizes side by side.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use arrow::array::StringArray;
use serde_json::json;

use crate::config::PipelineBenchConfig;
use crate::extract::Dictionary;
use crate::lake::events::EventKind;
use crate::lake::{schema, Lake};
use crate::simulator::{self, SimConfig};

use super::probe::{stage, stored_bytes, StageRun};
use super::write_json;

/// The bytes of JSON the analytics source received and kept under `bodies/`: compressed
/// texts count at their size as received (the content size in their zstd frame header).
async fn received_json_bytes(lake: &Lake) -> Result<u64> {
    let mut total = 0;
    for m in lake.list("bodies").await? {
        let path = m.location.to_string();
        total += if path.ends_with(".zst") {
            let bytes = lake.get(&path).await?;
            match zstd::zstd_safe::get_frame_content_size(&bytes) {
                Ok(Some(n)) => n,
                _ => bail!("{path}: a zstd frame without its content size"),
            }
        } else {
            m.size
        };
    }
    Ok(total)
}

/// Total text bytes and utterances in the lake's raw snapshots (not timed).
async fn text_volume(lake: &Lake) -> Result<(u64, u64)> {
    let mut acc = (0, 0);
    for m in lake.list("raw").await? {
        let path = m.location.to_string();
        if !path.ends_with(".parquet") {
            continue;
        }
        let Ok(batches) = schema::from_parquet(lake.get(&path).await?) else {
            continue;
        };
        for b in batches {
            if let Some(t) = b
                .column_by_name("text")
                .and_then(|c| c.as_any().downcast_ref::<StringArray>())
            {
                acc.0 += t.value_data().len() as u64;
                acc.1 += b.num_rows() as u64;
            }
        }
    }
    Ok(acc)
}

pub(super) async fn pipeline(args: &PipelineBenchConfig, dict: &Dictionary) -> Result<()> {
    let tmp = tempdir_in(args.dir.as_deref())?;
    let mut cluster = None;
    let url = match &args.database_url {
        Some(u) => u.expose().to_string(),
        None => {
            let c = crate::pgtmp::TempCluster::start(&tmp.join("pg")).context(
                "starting a throwaway PostgreSQL for the sync stage (or pass --database-url)",
            )?;
            let u = c.url.expose().to_string();
            cluster = Some(c);
            u
        }
    };
    let mut results = Vec::new();
    let mut node_rss: Vec<(usize, Vec<(String, u64)>)> = Vec::new();
    for &n in &args.conversations {
        let spec = match &args.lake_url {
            Some(url) => format!("{}/lake-{n}", url.trim_end_matches('/')),
            None => tmp.join(format!("lake-{n}")).display().to_string(),
        };
        let lake = Lake::open(&spec)?;
        if !lake.list("events").await?.is_empty() {
            bail!(
                "the bench lake {} is not empty; give an empty --lake-url prefix",
                lake.location()
            );
        }
        let mut cfg = SimConfig::new(simulator::SimProduct::of_dictionary(dict));
        cfg.conversations = n;
        cfg.lengths = args.lengths;
        cfg.days = 30;
        cfg.start = chrono::Utc::now().date_naive() - chrono::Days::new(31);
        cfg.seed = 42;
        // Jobs are fulfilled at the first status poll: with the simulator's default of three
        // polls, the client's polling schedule (250 + 500 + 1,000 ms) would bound every 7-day
        // interval at 1.75 s, and the bench would time an invented job latency, not convlake.
        cfg.job_polls = 1;
        let to = cfg.start + chrono::Days::new(29);
        let sim = simulator::start(cfg.clone(), ([127, 0, 0, 1], 0).into()).await?;
        eprintln!(
            "bench: {n} conversations, simulator at {}, lake {}",
            sim.url,
            lake.location()
        );
        let (from_s, to_s) = (cfg.start.to_string(), to.to_string());
        let schema_name = format!("bench_{n}_{}", std::process::id());
        let creds = [
            ("GENESYS_CLIENT_ID", "bench"),
            ("GENESYS_CLIENT_SECRET", "bench"),
        ];
        let source = args.source.as_str();
        let concurrency = args.concurrency.to_string();
        let mut fetch_args = vec![
            "fetch",
            "--source",
            source,
            "--api-url",
            &sim.url,
            "--from",
            &from_s,
            "--to",
            &to_s,
        ];
        if source == "analytics" {
            fetch_args.extend(["--login-url", &sim.url, "--concurrency", &concurrency]);
        }
        let fetch = stage("fetch", &lake, &spec, &fetch_args, &creds).await?;
        sim.shutdown().await;
        let (text_bytes, utterances) = text_volume(&lake).await?;
        // The JSON received: the archive source counts it per page; the analytics source keeps
        // every body it received under bodies/.
        let archive_json: u64 = lake
            .events()
            .read_all()
            .await?
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Snapshot {
                    body_bytes,
                    new: true,
                    ..
                } => Some(*body_bytes),
                _ => None,
            })
            .sum();
        let json_bytes = archive_json + received_json_bytes(&lake).await?;
        // The connection string (it may hold a password) goes through the child's environment,
        // never its command line, which any local user can read in `ps`.
        let sync_args = ["sync", "--schema", &schema_name];
        let sync_env = [("DATABASE_URL", url.as_str())];
        let mut later = vec![
            stage("extract", &lake, &spec, &["extract"], &[]).await?,
            stage("aggregate", &lake, &spec, &["aggregate"], &[]).await?,
        ];
        if args.ballista_executors > 0 {
            let (run, nodes) = ballista_aggregate(&lake, &spec, args.ballista_executors).await?;
            later.push(run);
            node_rss.push((n, nodes));
        }
        later.extend([
            stage("sync", &lake, &spec, &sync_args, &sync_env).await?,
            stage("sync (no change)", &lake, &spec, &sync_args, &sync_env).await?,
        ]);
        let mentions = count_mentions(&lake, dict).await.unwrap_or(0);
        let lake_bytes = stored_bytes(&lake, "raw").await?;
        let mut stages = vec![fetch];
        stages.extend(later);
        results.push((
            n, text_bytes, utterances, json_bytes, lake_bytes, mentions, stages,
        ));
    }
    if let Some(mut c) = cluster {
        c.stop();
    }
    // The table.
    println!(
        "convlake bench pipeline ({} cores, lake: {})",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        match &args.lake_url {
            Some(u) => u.as_str(),
            None => "local disk",
        }
    );
    println!(
        "{:<20} {:>10} {:>9} {:>7} {:>12} {:>10} {:>10} {:>12} {:>10} {:>12}",
        "stage",
        "N",
        "wall s",
        "CPU s",
        "conv/s",
        "MB text/s",
        "MB/CPU-s",
        "rows/s",
        "peak RSS",
        "MB written"
    );
    let mut out_json = Vec::new();
    for (n, text_bytes, utterances, json_bytes, lake_bytes, mentions, stages) in &results {
        for s in stages {
            let rows = match s.name {
                "fetch" => *utterances,
                "extract" => *utterances,
                _ => *mentions,
            };
            // Text per CPU-second of the stage's own process, for the stages that handle text:
            // throughput per core, whatever else the machine is doing (the simulator's CPU is
            // not in a fetch's figure).
            // Only fetch and extract read the transcript text; aggregate and sync read mentions
            // and counts, so a text rate for them would be a number about nothing ("-").
            let text_stage = matches!(s.name, "fetch" | "extract");
            let per_cpu = if text_stage && s.cpu_seconds > 0.0 {
                format!("{:.1}", *text_bytes as f64 / 1e6 / s.cpu_seconds)
            } else {
                "-".to_string()
            };
            let per_s = if text_stage && s.seconds > 0.0 {
                format!("{:.1}", *text_bytes as f64 / 1e6 / s.seconds)
            } else {
                "-".to_string()
            };
            println!(
                "{:<20} {:>10} {:>9.2} {:>7.2} {:>12.0} {:>10} {:>10} {:>12.0} {:>8} MB {:>10.1}",
                s.name,
                n,
                s.seconds,
                s.cpu_seconds,
                *n as f64 / s.seconds,
                per_s,
                per_cpu,
                rows as f64 / s.seconds,
                s.peak_rss_kb / 1024,
                s.bytes_written as f64 / 1e6,
            );
            out_json.push(json!({
                "stage": s.name, "conversations": n, "seconds": s.seconds,
                "cpu_seconds": s.cpu_seconds,
                "text_mb_per_cpu_s": (text_stage && s.cpu_seconds > 0.0).then(|| *text_bytes as f64 / 1e6 / s.cpu_seconds),
                "conversations_per_s": *n as f64 / s.seconds,
                "text_mb_per_s": (text_stage && s.seconds > 0.0).then(|| *text_bytes as f64 / 1e6 / s.seconds),
                "rows_per_s": rows as f64 / s.seconds,
                "peak_rss_kb": s.peak_rss_kb, "bytes_written": s.bytes_written,
                "summary": s.stderr.lines().filter(|l| !l.starts_with("convlake-peak-rss-kb") && !l.starts_with("convlake-cpu-ms")).collect::<Vec<_>>().join("\n"),
            }));
        }
        println!(
            "N={n}: {:.1} MB of transcript text in {} utterances; {} mentions; raw JSON received {:.1} MB, raw snapshots on disk {:.1} MB ({:.0}%)",
            *text_bytes as f64 / 1e6,
            utterances,
            mentions,
            *json_bytes as f64 / 1e6,
            *lake_bytes as f64 / 1e6,
            100.0 * *lake_bytes as f64 / (*json_bytes).max(1) as f64
        );
        out_json.push(
            json!({"conversations": n, "text_bytes": text_bytes, "utterances": utterances,
            "mentions": mentions, "raw_json_bytes": json_bytes, "raw_snapshot_bytes": lake_bytes,
            "lake": args.lake_url.as_deref().unwrap_or("local disk")}),
        );
    }
    for (n, nodes) in &node_rss {
        println!(
            "N={n}: Ballista nodes' peak RSS: {}",
            nodes
                .iter()
                .map(|(name, kb)| format!("{name} {} MB", kb / 1024))
                .collect::<Vec<_>>()
                .join(", ")
        );
        out_json.push(json!({"conversations": n, "ballista_nodes_peak_rss_kb": nodes}));
    }
    write_json(
        &args.json,
        &json!({"bench": "pipeline", "results": out_json}),
    )?;
    if args.dir.is_none() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    Ok(())
}

/// The aggregate stage on a Ballista cluster of `executors` processes started for it (one task
/// slot each); returns the run (the client's RSS) and every node's peak RSS.
#[cfg(feature = "ballista")]
async fn ballista_aggregate(
    lake: &Lake,
    spec: &str,
    executors: usize,
) -> Result<(StageRun, Vec<(String, u64)>)> {
    use crate::aggregate::ballista::cluster::{ClusterOptions, LocalCluster};
    let exe = std::env::current_exe().context("locating the convlake binary")?;
    let options = ClusterOptions {
        executors,
        concurrency: Some(1),
        // The nodes read only the lake they are started with.
        env: vec![("CONVLAKE_LAKE".to_string(), spec.to_string())],
        ..ClusterOptions::default()
    };
    let cluster = tokio::task::spawn_blocking(move || LocalCluster::start(&exe, &options))
        .await?
        .context("starting a Ballista cluster on loopback for the bench")?;
    let url = cluster.df_url();
    let run = stage(
        "aggregate (ballista)",
        lake,
        spec,
        &["aggregate", "--engine", "ballista", "--scheduler", &url],
        &[],
    )
    .await?;
    Ok((run, cluster.peak_rss_kb()))
}

#[cfg(not(feature = "ballista"))]
async fn ballista_aggregate(
    _lake: &Lake,
    _spec: &str,
    _executors: usize,
) -> Result<(StageRun, Vec<(String, u64)>)> {
    Err(crate::aggregate::AggregateError::BallistaNotBuilt.into())
}

async fn count_mentions(lake: &Lake, dict: &Dictionary) -> Result<u64> {
    Ok(
        crate::lake::aggregates::read_mention_counts(lake, &dict.version)
            .await?
            .map(|c| c.rows.iter().map(|r| r.mentions.max(0) as u64).sum())
            .unwrap_or(0),
    )
}

pub(super) fn tempdir_in(base: Option<&Path>) -> Result<PathBuf> {
    let base = base
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("convlake-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

// ---------------------------------------------------------------------------------------------
// extract
