//! `convlake bench`: measured, not assumed. Three benchmarks, each printing one table (and JSON
//! with `--json FILE`):
//! - `pipeline` (the default): a seeded archive in the simulator, then every stage as its own
//!   process (so peak RSS is per stage), for one or more sizes side by side;
//! - `extract`: precision/recall/F1 and speed of the matcher on the labeled corpus with its
//!   dictionary (with `--baseline`, the tutorial's extractor on that same corpus and dictionary,
//!   side by side), and, separately, throughput of the snapshot → mentions transform with a
//!   1,000-product dictionary, per core;
//! - `sync`: 1,000,000 aggregate rows into PostgreSQL: first sync, no-change re-sync, a 10% change,
//!   against the tutorial's multi-row INSERT.

use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use arrow::array::{Date32Array, Int32Array, Int64Array, RecordBatch, StringArray};
use serde_json::json;

use crate::config::{BenchConfig, ExtractBenchConfig, PipelineBenchConfig, SyncBenchConfig};
use crate::extract::{self, eval, Dictionary};
use crate::lake::events::EventKind;
use crate::lake::{schema, snapshot_path, Lake};
use crate::pipeline::sim_products;
use crate::secret::Secret;
use crate::simulator::{self, SimConfig};
use crate::sync::{self, Target};

/// Runs `convlake bench`.
pub async fn run(args: &BenchConfig, dict: &Dictionary) -> Result<()> {
    match args {
        BenchConfig::Pipeline(p) => pipeline(p, dict).await,
        BenchConfig::Extract(e) => extract_bench(e).await,
        BenchConfig::Sync(s) => sync_bench(s).await,
    }
}

fn write_json(path: &Option<PathBuf>, value: &serde_json::Value) -> Result<()> {
    if let Some(p) = path {
        std::fs::write(p, serde_json::to_vec_pretty(value)?)
            .with_context(|| format!("writing {}", p.display()))?;
        eprintln!("bench: results written to {}", p.display());
    }
    Ok(())
}

/// Peak resident set size of this process so far, in kB (Linux; 0 elsewhere).
pub fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(String::from))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// CPU time (user plus system, every thread) this process has used so far, in milliseconds
/// (Linux; 0 elsewhere).
pub fn cpu_ms() -> u64 {
    // /proc/self/stat: the command name is in parentheses and may hold spaces, so fields are
    // counted after the last ')'; utime and stime are fields 14 and 15, in clock ticks (100 a
    // second on Linux).
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
            // After the ')': field 3 (state) is index 0, so field n is index n - 3.
            Some((ticks(14 - 3)? + ticks(15 - 3)?) * 10)
        })
        .unwrap_or(0)
}

/// Bytes stored under a prefix of the lake (a listing: works on disk and on object stores).
async fn stored_bytes(lake: &Lake, prefix: &str) -> Result<u64> {
    Ok(lake.list(prefix).await?.iter().map(|m| m.size).sum())
}

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

struct StageRun {
    name: &'static str,
    seconds: f64,
    /// CPU seconds the stage's process used (user plus system).
    cpu_seconds: f64,
    peak_rss_kb: u64,
    bytes_written: u64,
    stderr: String,
}

/// Runs one stage as a child process and measures it (time, peak RSS, bytes the lake grew by).
async fn stage(
    name: &'static str,
    lake: &Lake,
    spec: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<StageRun> {
    let before = stored_bytes(lake, "").await?;
    let (spec, args) = (
        spec.to_string(),
        args.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
    );
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut run =
        tokio::task::spawn_blocking(move || stage_process(name, &spec, &args, &env)).await??;
    run.bytes_written = stored_bytes(lake, "").await?.saturating_sub(before);
    Ok(run)
}

fn stage_process(
    name: &'static str,
    lake: &str,
    args: &[String],
    env: &[(String, String)],
) -> Result<StageRun> {
    let exe = std::env::current_exe().context("locating the convlake binary")?;
    let started = Instant::now();
    let mut cmd = Process::new(exe);
    cmd.arg("--lake")
        .arg(lake)
        .args(args)
        .env("CONVLAKE_REPORT_RSS", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .with_context(|| format!("running the {name} stage"))?;
    let seconds = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    if !out.status.success() {
        bail!("the {name} stage failed:\n{stderr}");
    }
    let peak_rss_kb = stderr
        .lines()
        .find_map(|l| l.strip_prefix("convlake-peak-rss-kb: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let cpu_ms: u64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("convlake-cpu-ms: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    Ok(StageRun {
        name,
        seconds,
        cpu_seconds: cpu_ms as f64 / 1e3,
        peak_rss_kb,
        bytes_written: 0,
        stderr,
    })
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

async fn pipeline(args: &PipelineBenchConfig, dict: &Dictionary) -> Result<()> {
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
        let mut cfg = SimConfig::new(sim_products(dict));
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

fn tempdir_in(base: Option<&Path>) -> Result<PathBuf> {
    let base = base
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("convlake-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

// ---------------------------------------------------------------------------------------------
// extract

use crate::extract::eval::Rng;

const SYLLABLES: &[&str] = &[
    "zor", "vex", "lum", "tra", "quin", "bel", "dax", "mir", "nox", "pel", "ryn", "sol", "tek",
    "ulm", "vor", "wex", "yal", "zen", "cor", "fyn",
];
const MODELS: &[&str] = &[
    "Pro", "Max", "Mini", "Hub", "Cam", "Box", "Suite", "Pad", "Dock", "One",
];
const FILLER: &[&str] = &[
    "the",
    "a",
    "my",
    "is",
    "not",
    "working",
    "since",
    "yesterday",
    "and",
    "i",
    "want",
    "to",
    "return",
    "it",
    "please",
    "help",
    "with",
    "order",
    "account",
    "billing",
    "thanks",
    "okay",
    "so",
    "we",
    "have",
    "an",
    "issue",
    "call",
    "back",
    "later",
    "today",
    "refund",
    "screen",
    "battery",
    "charging",
    "update",
    "install",
    "setup",
    "broken",
    "new",
];

/// A dictionary of `n` made-up products (one or two words plus a model word, some aliases).
fn big_dictionary(n: usize) -> Result<Dictionary> {
    let mut rng = Rng(7);
    let mut toml = String::new();
    let mut seen = std::collections::HashSet::new();
    let mut count = 0;
    while count < n {
        let brand: String = (0..2 + rng.below(2))
            .map(|_| SYLLABLES[rng.below(SYLLABLES.len())])
            .collect();
        let mut brand_chars = brand.chars();
        let brand = match brand_chars.next() {
            Some(c) => c.to_uppercase().collect::<String>() + brand_chars.as_str(),
            None => continue,
        };
        let name = format!("{brand} {}", MODELS[rng.below(MODELS.len())]);
        if !seen.insert(name.to_lowercase().replace(' ', "")) {
            continue;
        }
        toml.push_str(&format!("[[product]]\nname = \"{name}\"\n"));
        count += 1;
        if rng.below(5) == 0 {
            let alias = format!(
                "{} {}",
                brand.to_lowercase(),
                MODELS[rng.below(MODELS.len())].to_lowercase()
            );
            if seen.insert(alias.replace(' ', "")) {
                toml.push_str(&format!("aliases = [\"{alias}\"]\n"));
            }
        }
    }
    Ok(Dictionary::parse(
        &toml,
        "generated 1,000-product dictionary",
    )?)
}

/// Writes snapshots of about 1 MB of text each until `mb` MB, recording them in the log.
async fn write_text_snapshots(
    lake: &Lake,
    dict: &Dictionary,
    mb: usize,
    first_file: u64,
) -> Result<u64> {
    let mut rng = Rng(11 + first_file);
    let names: Vec<String> = dict.products.iter().map(|p| p.name.clone()).collect();
    let mut total = 0u64;
    let mut file_no = first_file;
    while total < (mb as u64) * 1_000_000 {
        let mut texts = Vec::new();
        let mut size = 0usize;
        while size < 1_000_000 {
            let mut t = String::new();
            for w in 0..(8 + rng.below(40)) {
                if w > 0 {
                    t.push(' ');
                }
                if rng.below(60) == 0 {
                    let n = &names[rng.below(names.len())];
                    if rng.below(2) == 0 {
                        t.push_str(&n.to_lowercase());
                    } else {
                        t.push_str(n);
                    }
                } else {
                    t.push_str(FILLER[rng.below(FILLER.len())]);
                }
            }
            size += t.len();
            texts.push(t);
        }
        let hash = crate::lake::content_hash(format!("bench-extract-{file_no}").as_bytes());
        let n = texts.len();
        let batch = RecordBatch::try_new(
            schema::raw_schema(),
            vec![
                Arc::new(StringArray::from_iter_values(
                    (0..n).map(|i| format!("c{file_no}-{}", i / 20)),
                )),
                Arc::new(StringArray::from(vec![None::<&str>; n])),
                Arc::new(Date32Array::from(vec![20_000; n])),
                Arc::new(StringArray::from(vec!["voice"; n])),
                Arc::new(StringArray::from(vec!["customer"; n])),
                Arc::new(Int32Array::from_iter_values(
                    (0..n).map(|i| (i % 20) as i32),
                )),
                Arc::new(Int64Array::from(vec![Some(0i64); n])),
                Arc::new(StringArray::from(texts)),
                Arc::new(StringArray::from(vec![hash.as_str(); n])),
                Arc::new(StringArray::from(vec![None::<&str>; n])),
            ],
        )?;
        let path = snapshot_path(&hash);
        lake.put(
            &path,
            schema::to_parquet(&schema::raw_schema(), &[batch]).map_err(anyhow::Error::msg)?,
        )
        .await?;
        lake.events()
            .append(vec![EventKind::Snapshot {
                snapshot: hash,
                path,
                source: "bench".into(),
                run: "bench".into(),
                page: file_no,
                next: None,
                conversations: (n / 20) as u64,
                utterances: n as u64,
                body_bytes: size as u64,
                new: true,
            }])
            .await?;
        total += size as u64;
        file_no += 1;
    }
    Ok(total)
}

/// The style's key in the corpus file and in the baseline's JSON.
fn style_key(style: eval::Style) -> &'static str {
    match style {
        eval::Style::Cased => "cased",
        eval::Style::Voice => "voice",
    }
}

/// Writes the labeled corpus as JSONL (style, text, gold spans in characters), the format
/// `bench/baseline.py` reads.
fn write_corpus(path: &Path, samples: &[eval::Sample]) -> Result<()> {
    let mut out = String::new();
    for s in samples {
        out.push_str(&serde_json::to_string(&json!({
            "style": style_key(s.style),
            "text": s.text,
            "gold": s.gold.iter().map(|(p, a, b)| json!([p, a, b])).collect::<Vec<_>>(),
        }))?);
        out.push('\n');
    }
    std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))
}

/// Seconds each style's timed matcher pass is repeated for, as `bench/baseline.py`'s
/// `--min-seconds` default, so both figures are measured the same way.
const MIN_SECONDS: f64 = 3.0;

/// convlake's matcher over the in-memory texts of one style, one thread, passes repeated until
/// `MIN_SECONDS`: the same measurement `bench/baseline.py` makes of the tutorial's extractor
/// (its function over in-memory texts, no file I/O), so the two figures compare. Returns
/// (bytes of text, passes, seconds).
fn matcher_passes(dict: &Dictionary, texts: &[&str]) -> (u64, u32, f64) {
    let m = extract::matcher::Matcher::new(dict);
    let mut scratch = extract::matcher::Scratch::default();
    let mut found = Vec::new();
    let bytes: u64 = texts.iter().map(|t| t.len() as u64).sum();
    // Warm-up outside the timing, as the baseline does.
    for t in texts.iter().take(8) {
        m.find(t, &mut scratch, &mut found);
    }
    let (mut passes, started) = (0u32, Instant::now());
    loop {
        for t in texts {
            m.find(t, &mut scratch, &mut found);
        }
        passes += 1;
        let secs = started.elapsed().as_secs_f64();
        if secs >= MIN_SECONDS || texts.is_empty() {
            return (bytes, passes, secs);
        }
    }
}

async fn extract_bench(args: &ExtractBenchConfig) -> Result<()> {
    let (eval_dict, samples) = eval::corpus(42, args.samples);
    if let Some(p) = &args.export_dictionary {
        std::fs::write(p, eval::EVAL_DICTIONARY)
            .with_context(|| format!("writing {}", p.display()))?;
        eprintln!("bench: evaluation dictionary written to {}", p.display());
    }
    if let Some(p) = &args.export_corpus {
        write_corpus(p, &samples)?;
        eprintln!(
            "bench: {} labeled samples written to {}",
            samples.len(),
            p.display()
        );
        return Ok(());
    }
    if args.export_dictionary.is_some() {
        return Ok(());
    }
    println!("convlake bench extract");
    println!(
        "quality on the labeled corpus ({} samples per style, seed 42):",
        args.samples
    );
    println!(
        "{:<22} {:>8} {:>10} {:>8} {:>8}",
        "style", "gold", "precision", "recall", "F1"
    );
    let mut quality = Vec::new();
    let scores = eval::score(&eval_dict, &samples);
    for s in &scores {
        println!(
            "{:<22} {:>8} {:>10.4} {:>8.4} {:>8.4}",
            s.style.name(),
            s.gold,
            s.precision(),
            s.recall(),
            s.f1()
        );
        quality.push(
            json!({"style": s.style.name(), "gold": s.gold, "precision": s.precision(),
            "recall": s.recall(), "f1": s.f1(), "true_positives": s.true_positives,
            "false_positives": s.false_positives, "false_negatives": s.false_negatives}),
        );
    }

    // Speed on the labeled corpus with its dictionary: the figure the baseline is compared
    // with (same texts, same dictionary, same method).
    let corpus_bytes: u64 = samples.iter().map(|s| s.text.len() as u64).sum();
    println!(
        "matcher speed on the labeled corpus ({:.2} MB, {}-product evaluation dictionary; in memory, one thread, each style repeated for {MIN_SECONDS} s):",
        corpus_bytes as f64 / 1e6,
        eval_dict.products.len()
    );
    let mut same_corpus = Vec::new();
    let (mut all_bytes, mut all_secs) = (0.0, 0.0);
    for style in [eval::Style::Cased, eval::Style::Voice] {
        let texts: Vec<&str> = samples
            .iter()
            .filter(|s| s.style == style)
            .map(|s| s.text.as_str())
            .collect();
        let (bytes, passes, secs) = matcher_passes(&eval_dict, &texts);
        let mbps = bytes as f64 * f64::from(passes) / 1e6 / secs.max(1e-9);
        all_bytes += bytes as f64 * f64::from(passes);
        all_secs += secs;
        println!(
            "  {:<22} {:>8.1} MB/s ({passes} passes)",
            style.name(),
            mbps
        );
        same_corpus.push(
            json!({"style": style_key(style), "bytes": bytes, "passes": passes,
            "seconds": secs, "mb_per_s": mbps}),
        );
    }
    let corpus_mbps = all_bytes / 1e6 / all_secs.max(1e-9);
    println!("  {:<22} {corpus_mbps:>8.1} MB/s", "all");

    // The baseline on exactly that corpus and dictionary, written out for it here (not the
    // default corpus `run_baseline.sh` would export, which differs when --samples does).
    let tmp = tempdir_in(None)?;
    let mut baseline = serde_json::Value::Null;
    if args.baseline {
        let corpus_file = tmp.join("corpus.jsonl");
        let dict_file = tmp.join("dictionary.toml");
        write_corpus(&corpus_file, &samples)?;
        std::fs::write(&dict_file, eval::EVAL_DICTIONARY)
            .with_context(|| format!("writing {}", dict_file.display()))?;
        let out = tmp.join("baseline.json");
        let status = Process::new("bash")
            .arg("bench/run_baseline.sh")
            .arg("--corpus")
            .arg(&corpus_file)
            .arg("--dictionary")
            .arg(&dict_file)
            .arg("--json")
            .arg(&out)
            .status()
            .context("running bench/run_baseline.sh (run from the repository root)")?;
        if !status.success() {
            bail!("bench/run_baseline.sh failed (see its output above; bench/README.md says what it needs)");
        }
        baseline = serde_json::from_slice(
            &std::fs::read(&out).with_context(|| format!("reading {}", out.display()))?,
        )
        .with_context(|| format!("{} is not the baseline's JSON", out.display()))?;
        println!(
            "the tutorial's extractor ({}) and convlake, same corpus ({} samples) and dictionary:",
            baseline["engine_description"].as_str().unwrap_or("?"),
            samples.len()
        );
        println!(
            "{:<22} {:>12} {:>12} {:>12} {:>14} {:>14} {:>8}",
            "style", "convlake F1", "base F1", "base F1", "convlake MB/s", "baseline MB/s", "ratio"
        );
        println!(
            "{:<22} {:>12} {:>12} {:>12}",
            "", "(span)", "(span)", "(count)"
        );
        let f1 = |v: &serde_json::Value| {
            v["f1"]
                .as_f64()
                .map_or_else(|| "n/a".to_string(), |f| format!("{f:.4}"))
        };
        let row = |name: &str, ours_f1: f64, ours_mbps: f64, theirs: &serde_json::Value| {
            let theirs_mbps = theirs["mb_per_s"].as_f64();
            println!(
                "{:<22} {:>12.4} {:>12} {:>12} {:>14.1} {:>14} {:>8}",
                name,
                ours_f1,
                f1(&theirs["span_level"]),
                f1(&theirs["count_level"]),
                ours_mbps,
                theirs_mbps.map_or_else(|| "n/a".to_string(), |t| format!("{t:.3}")),
                theirs_mbps
                    .filter(|t| *t > 0.0)
                    .map_or_else(|| "n/a".to_string(), |t| format!("{:.0}x", ours_mbps / t)),
            );
        };
        for (s, speed) in scores.iter().zip(&same_corpus) {
            let key = style_key(s.style);
            let ours = speed["mb_per_s"].as_f64().unwrap_or(0.0);
            row(s.style.name(), s.f1(), ours, &baseline["styles"][key]);
        }
        let (tp, fp, fn_) = scores.iter().fold((0, 0, 0), |(a, b, c), s| {
            (
                a + s.true_positives,
                b + s.false_positives,
                c + s.false_negatives,
            )
        });
        let overall = eval::Score {
            style: eval::Style::Cased,
            samples: samples.len(),
            gold: tp + fn_,
            true_positives: tp,
            false_positives: fp,
            false_negatives: fn_,
        };
        row("all", overall.f1(), corpus_mbps, &baseline["overall"]);
    }

    // Separately: the whole snapshot → mentions transform with a large dictionary, which has
    // no counterpart in the baseline (it includes Parquet I/O and a 1,000-product dictionary).
    let dict = big_dictionary(args.products)?;
    let lake = Lake::open_local(&tmp.join("lake"))?;
    // Memory against the number of snapshots: extract a quarter of them first, then all.
    let quarter = (args.mb / 4).max(1);
    let mut text = write_text_snapshots(&lake, &dict, quarter, 0).await?;
    let rss_before = peak_rss_kb();
    let mut d = dict.clone();
    d.version = format!("{}q", &dict.version[..12]);
    extract::extract(&lake, &d, 1).await?;
    let rss_quarter = peak_rss_kb();
    let snapshots_quarter = lake.events().read_all().await?.len();
    text += write_text_snapshots(&lake, &dict, args.mb.saturating_sub(quarter), 1_000_000).await?;
    let mut speed = Vec::new();
    println!(
        "extract stage throughput, separately (not comparable with the baseline): {:.0} MB of generated text in {} snapshots, {}-product dictionary (includes Parquet read, normalization, matching, Parquet write):",
        text as f64 / 1e6,
        lake.events().read_all().await?.len(),
        dict.products.len()
    );
    for workers in [1usize, 2] {
        // A fresh dictionary version each round, so everything is extracted again.
        let mut d = dict.clone();
        d.version = format!("{}w{workers}", &dict.version[..12]);
        let started = Instant::now();
        let s = extract::extract(&lake, &d, workers).await?;
        let secs = started.elapsed().as_secs_f64();
        let mbps = text as f64 / 1e6 / secs;
        println!(
            "  {workers} worker(s): {secs:.2} s, {mbps:.1} MB/s ({:.1} MB/s per worker), {} mentions",
            mbps / workers as f64,
            s.mentions
        );
        speed.push(
            json!({"workers": workers, "seconds": secs, "mb_per_s": mbps,
            "mb_per_s_per_worker": mbps / workers as f64, "mentions": s.mentions}),
        );
    }
    let snapshots_all = lake.events().read_all().await?.len();
    println!(
        "peak RSS: {} MB before extracting; {} MB after extracting {snapshots_quarter} snapshots; {} MB after extracting all {snapshots_all} (twice)",
        rss_before / 1024,
        rss_quarter / 1024,
        peak_rss_kb() / 1024
    );
    let _ = std::fs::remove_dir_all(&tmp);
    write_json(
        &args.json,
        &json!({"bench": "extract", "quality": quality,
        "same_corpus": {"samples": samples.len(), "bytes": corpus_bytes,
            "products": eval_dict.products.len(), "matcher": same_corpus,
            "mb_per_s": corpus_mbps, "baseline": baseline},
        "throughput_1000_products": {"throughput": speed, "text_bytes": text,
            "products": dict.products.len()},
        "peak_rss_kb": peak_rss_kb(), "peak_rss_kb_quarter": rss_quarter}),
    )
}

// ---------------------------------------------------------------------------------------------
// sync

/// Writes `rows` synthetic mention_counts rows (and an empty conversation_mentions) for `version`;
/// `changed_every` > 0 changes every n-th row's counts.
async fn write_aggregates(
    lake: &Lake,
    version: &str,
    rows: usize,
    changed_every: usize,
) -> Result<()> {
    // In the order `aggregate` writes mention_counts.parquet (ORDER BY conversation_date,
    // interaction_type, product), so the bench loads rows as a real sync receives them.
    let types = ["chat", "email", "message", "voice"];
    let products = 250usize;
    let days = rows.div_ceil(types.len() * products);
    let mut date = Vec::with_capacity(rows);
    let mut kind = Vec::with_capacity(rows);
    let mut product = Vec::with_capacity(rows);
    let mut mentions = Vec::with_capacity(rows);
    let mut convs = Vec::with_capacity(rows);
    let names: Vec<String> = (0..products).map(|p| format!("Product {p:03}")).collect();
    'outer: for d in 0..days {
        for t in types {
            for (p, name) in names.iter().enumerate() {
                let i = date.len();
                if i == rows {
                    break 'outer;
                }
                date.push(18_000 + d as i32);
                kind.push(t);
                product.push(name.as_str());
                let bump = i64::from(changed_every > 0 && i % changed_every == 0);
                mentions.push(((i * 7 + p) % 50) as i64 + 1 + bump);
                convs.push(((i * 3 + p) % 20) as i64 + 1);
            }
        }
    }
    let n = date.len();
    let batch = RecordBatch::try_new(
        schema::mention_counts_schema(),
        vec![
            Arc::new(Date32Array::from(date)),
            Arc::new(StringArray::from(kind)),
            Arc::new(StringArray::from(product)),
            Arc::new(Int64Array::from(mentions)),
            Arc::new(Int64Array::from(convs)),
            Arc::new(StringArray::from(vec![version; n])),
        ],
    )?;
    let counts = schema::to_parquet(&schema::mention_counts_schema(), &[batch])
        .map_err(anyhow::Error::msg)?;
    let empty = schema::to_parquet(&schema::conversation_mentions_schema(), &[])
        .map_err(anyhow::Error::msg)?;
    crate::lake::aggregates::store_and_publish(lake, version, counts, empty, n as u64).await?;
    Ok(())
}

async fn sync_bench(args: &SyncBenchConfig) -> Result<()> {
    let tmp = tempdir_in(None)?;
    let mut cluster = None;
    let url = match &args.database_url {
        Some(u) => u.expose().to_string(),
        None => {
            let c = crate::pgtmp::TempCluster::start(&tmp.join("pg"))?;
            let u = c.url.expose().to_string();
            cluster = Some(c);
            u
        }
    };
    let lake = Lake::open_local(&tmp.join("lake"))?;
    let schema_name = format!("bench_sync_{}", std::process::id());
    let target = Target::new(Secret::new(url.clone()), &schema_name)?;
    let version = "benchsync0000000";
    let mut results = Vec::new();
    println!("convlake bench sync: {} rows", args.rows);
    println!("{:<34} {:>9} {:>14}", "step", "seconds", "rows/s");
    let mut timed = |label: &str, secs: f64, rows: usize| {
        println!("{:<34} {:>9.3} {:>14.0}", label, secs, rows as f64 / secs);
        results.push(
            json!({"step": label, "seconds": secs, "rows": rows, "rows_per_s": rows as f64 / secs}),
        );
    };
    write_aggregates(&lake, version, args.rows, 0).await?;
    let t = Instant::now();
    let a = sync::Aggregates::read(&lake, version).await?;
    let s = sync::sync(&target, &a, version, true).await?;
    timed(
        "first sync (COPY + merge)",
        t.elapsed().as_secs_f64(),
        s.rows as usize,
    );
    let t = Instant::now();
    let a = sync::Aggregates::read(&lake, version).await?;
    let s2 = sync::sync(&target, &a, version, true).await?;
    let secs = t.elapsed().as_secs_f64();
    if !s2.unchanged {
        bail!("the no-change re-sync changed rows");
    }
    timed("no-change re-sync", secs, args.rows);
    write_aggregates(&lake, version, args.rows, 10).await?;
    let t = Instant::now();
    let a = sync::Aggregates::read(&lake, version).await?;
    let s3 = sync::sync(&target, &a, version, true).await?;
    timed(
        &format!("10% change ({} rows updated)", s3.updated),
        t.elapsed().as_secs_f64(),
        args.rows,
    );

    // The tutorial's way: multi-row INSERT statements (execute_values, 1,000 rows each).
    let client = target.connect().await?;
    client
        // The same table as product_mentions (its primary key and indexes), so both load into
        // the same structure.
        .batch_execute("CREATE TABLE bench_insert (LIKE product_mentions INCLUDING ALL)")
        .await?;
    let rows = crate::lake::aggregates::read_mention_counts(&lake, version)
        .await?
        .context("reading the bench aggregates")?
        .rows;
    let t = Instant::now();
    client.batch_execute("BEGIN").await?;
    for chunk in rows.chunks(1000) {
        let mut sql = String::from(
            "INSERT INTO bench_insert (recorded_date, interaction_type, product_name, mention_count, conversation_count, dictionary_version) VALUES ",
        );
        let mut params: Vec<Box<dyn tokio_postgres::types::ToSql + Sync + Send>> = Vec::new();
        for (i, r) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            let b = i * 6;
            sql.push_str(&format!(
                "(${},${},${},${},${},${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6
            ));
            params.push(Box::new(r.conversation_date));
            params.push(Box::new(r.interaction_type.clone()));
            params.push(Box::new(r.product.clone()));
            // BIGINT columns since migration 0006.
            params.push(Box::new(r.mentions));
            params.push(Box::new(r.conversations));
            params.push(Box::new(version.to_string()));
        }
        let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
            .iter()
            .map(|p| p.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        client.execute(sql.as_str(), &refs).await?;
    }
    client.batch_execute("COMMIT").await?;
    let insert_secs = t.elapsed().as_secs_f64();
    timed("multi-row INSERT (tutorial)", insert_secs, rows.len());
    let first = results[0]["seconds"].as_f64().unwrap_or(1.0);
    println!(
        "first sync is {:.1}x the multi-row INSERT's speed",
        insert_secs / first
    );
    client
        .batch_execute(&format!("DROP SCHEMA \"{schema_name}\" CASCADE"))
        .await?;
    if let Some(mut c) = cluster {
        c.stop();
    }
    let _ = std::fs::remove_dir_all(&tmp);
    write_json(
        &args.json,
        &json!({"bench": "sync", "rows": args.rows, "steps": results,
        "speedup_over_insert": insert_secs / first}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn cpu_time_and_peak_rss_are_read() {
        let before = cpu_ms();
        // Spin until the kernel has charged at least two clock ticks more (or give up after
        // a minute of wall time, so a broken reader fails instead of hanging).
        let mut x = 0u64;
        let started = Instant::now();
        while cpu_ms() < before + 20 && started.elapsed().as_secs() < 60 {
            for i in 0..100_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
            std::hint::black_box(x);
        }
        assert!(cpu_ms() >= before + 20);
        assert!(peak_rss_kb() > 0);
    }
}
