//! Fault drills: SIGKILL at random points of fetch, extract and sync; a full disk; network faults
//! at high rates; `convlake verify` and its quarantine. Each drill ends equal to an uninterrupted,
//! fault-free run. Bounded in time: every drill is a few seconds of a small simulator.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use convlake::lake::{EventKind, Lake};
use convlake::simulator::{Faults, SimConfig};
use rand::{Rng, SeedableRng};

const FROM: &str = "2026-03-01";
const TO: &str = "2026-03-10";

/// Fetch arguments of the analytics source over FROM..TO, small pages so a run has many
/// checkpoints.
fn analytics_args(url: &str) -> Vec<String> {
    [
        "fetch",
        "--source",
        "analytics",
        "--api-url",
        url,
        "--from",
        FROM,
        "--to",
        TO,
        "--page-size",
        "10",
        "--job-poll-max",
        "0.05",
        "--not-ready-wait",
        "0",
    ]
    .map(String::from)
    .to_vec()
}

fn archive_args(url: &str) -> Vec<String> {
    [
        "fetch",
        "--source",
        "archive",
        "--api-url",
        url,
        "--from",
        FROM,
        "--to",
        TO,
        "--page-size",
        "5",
    ]
    .map(String::from)
    .to_vec()
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// A lake fetched, extracted and aggregated without interruption: the reference.
async fn reference(args: &[String]) -> TestLake {
    let lake = TestLake::new();
    let out = lake.run(&refs(args)).await;
    assert!(out.status.success(), "{}", stderr(&out));
    lake.ok(&["extract"]).await;
    lake.ok(&["aggregate"]).await;
    lake
}

/// Every raw snapshot decodes completely and names itself; `convlake verify` agrees.
async fn assert_sound(lake: &TestLake) {
    for p in all_files(&lake.path().join("raw")) {
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if name.contains('#') {
            // An object_store staging file of a write cut short by the kill: never listed, never
            // read, never recorded (the rename is what publishes a file).
            continue;
        }
        let bytes = std::fs::read(&p).unwrap();
        let batches = convlake::lake::schema::from_parquet(bytes.into())
            .unwrap_or_else(|e| panic!("{} is partial or damaged: {e}", p.display()));
        let columns = convlake::lake::schema::raw_schema().fields().len();
        assert!(batches.iter().all(|b| b.num_columns() == columns));
    }
    let out = lake.run(&["verify"]).await;
    eprintln!("{}", String::from_utf8_lossy(&out.stdout).trim());
    assert!(
        out.status.success(),
        "verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
}

/// The files under `sub` are byte-identical in both lakes (staging files of writes cut short
/// by a kill aside: never listed, never read).
fn assert_same_files(lake: &TestLake, reference: &TestLake, sub: &str) {
    let published = |l: &TestLake| -> BTreeSet<(String, String)> {
        l.files(sub)
            .into_iter()
            .filter(|(p, _)| !p.contains('#'))
            .collect()
    };
    let (a, b) = (published(lake), published(reference));
    let extra: Vec<_> = a.difference(&b).collect();
    let missing: Vec<_> = b.difference(&a).collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "{sub}: differs from an uninterrupted run: extra {extra:?}, missing {missing:?}"
    );
}

/// conversation id → the recorded snapshots holding its rows.
async fn snapshots_by_conversation(lake: &TestLake) -> HashMap<String, BTreeSet<String>> {
    let l = Lake::open_local(lake.path()).unwrap();
    let events = lake.events().await;
    let mut out: HashMap<String, BTreeSet<String>> = HashMap::new();
    for (snap, _) in convlake::lake::events::snapshots_in_order(&events) {
        let bytes = l.get(&convlake::lake::snapshot_path(&snap)).await.unwrap();
        for b in convlake::lake::schema::from_parquet(bytes).unwrap() {
            let ids = b
                .column_by_name("conversation_id")
                .unwrap()
                .as_any()
                .downcast_ref::<arrow::array::StringArray>()
                .unwrap()
                .clone();
            for id in ids.iter().flatten() {
                out.entry(id.to_string()).or_default().insert(snap.clone());
            }
        }
    }
    out
}

/// Checkpoints recorded more than once: (run, interval, page) of listing pages and (run, page)
/// of archive pages. A page recorded twice was fetched again after it was stored.
fn pages_recorded_twice(events: &[convlake::lake::Event]) -> Vec<String> {
    let mut seen = BTreeMap::new();
    for e in events {
        let key = match &e.kind {
            EventKind::ListingPage {
                run,
                interval,
                page,
                ..
            } => format!("{run} {interval} {page}"),
            EventKind::Snapshot {
                run, page, source, ..
            } if source == "archive" => format!("{run} {page}"),
            _ => continue,
        };
        *seen.entry(key).or_insert(0) += 1;
    }
    seen.into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(k, n)| format!("{k} ×{n}"))
        .collect()
}

/// When a drill kills a run.
#[derive(Clone, Copy)]
enum KillAt {
    /// After a random delay in the range (ms): lands anywhere, startup included.
    Time(u64, u64),
    /// After the run wrote 1..=n more files into the lake (a page, a body, an event, a
    /// mentions file), plus a random 0..jitter ms: inside the work, never before it started.
    Progress(usize, u64),
}

fn files_in(lake: &TestLake) -> usize {
    all_files(lake.path()).len()
}

/// Runs `args` again and again, SIGKILLing each run at a seeded random point, up to `kills`
/// times or until a run finishes by itself; then once to the end. Returns the kills.
async fn kill_repeatedly(
    lake: &TestLake,
    args: &[String],
    env: &[(&str, &str)],
    kills: usize,
    at: KillAt,
    seed: u64,
) -> usize {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut killed = 0;
    while killed < kills {
        let before = files_in(lake);
        let mut child = lake.spawn_env(&refs(args), env);
        let point = async {
            match at {
                KillAt::Time(lo, hi) => {
                    tokio::time::sleep(Duration::from_millis(rng.random_range(lo..hi))).await
                }
                KillAt::Progress(n, jitter) => {
                    let want = before + rng.random_range(1..=n);
                    while files_in(lake) < want {
                        tokio::time::sleep(Duration::from_millis(3)).await;
                    }
                    tokio::time::sleep(Duration::from_millis(rng.random_range(0..jitter))).await
                }
            }
        };
        tokio::select! {
            _ = child.wait() => break, // finished before the kill: the drill is over
            _ = point => {
                child.start_kill().unwrap();
                if child.wait().await.unwrap().success() {
                    break; // it finished just before the kill landed
                }
                killed += 1;
            }
        }
    }
    let out = lake.run(&refs(args)).await;
    assert!(
        out.status.success(),
        "the run after {killed} kills completes: {}",
        stderr(&out)
    );
    killed
}

/// The simulator config of the kill drills: slow-ish responses so kills land mid-run.
fn slow_config(n: usize) -> SimConfig {
    let mut cfg = sim_config(n);
    cfg.faults = Faults {
        slow_rate: 0.5,
        slow_ms: 40,
        ..Faults::default()
    };
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_analytics_fetch_loses_and_repeats_nothing() {
    let t0 = Instant::now();
    let sim = start_sim(slow_config(300)).await;
    let args = analytics_args(&sim.url);
    let reference = reference(&args).await;
    let before = sim.stats();
    let text_requests_once = before.transcript_urls + before.recordings;

    let lake = TestLake::new();
    let killed = kill_repeatedly(&lake, &args, &[], 12, KillAt::Progress(6, 40), 0x5eed_f37c).await;
    assert!(killed >= 10, "only {killed} runs were killed mid-fetch");
    let after = sim.stats();

    assert_sound(&lake).await;
    let events = lake.events().await;
    assert_eq!(pages_recorded_twice(&events), Vec::<String>::new());
    // No conversation was staged twice: each is in exactly one recorded snapshot, as in the
    // uninterrupted run.
    let by_conv = snapshots_by_conversation(&lake).await;
    let twice: Vec<_> = by_conv.iter().filter(|(_, s)| s.len() > 1).collect();
    assert!(twice.is_empty(), "staged twice: {twice:?}");
    assert_eq!(
        by_conv.len(),
        snapshots_by_conversation(&reference).await.len()
    );
    // Text asked again only for the batches in flight when a run was killed: a page's batch is
    // written and recorded while the next page's texts are fetched, so a kill can lose two
    // pages of 10 (and fsyncing each file before its event makes that window longer); never
    // a conversation already stored.
    let text_requests = after.transcript_urls + after.recordings - text_requests_once;
    assert!(
        text_requests <= text_requests_once + killed as u64 * 20,
        "{text_requests} transcript requests for {text_requests_once} conversations over {killed} kills"
    );

    lake.ok(&["extract"]).await;
    lake.ok(&["aggregate"]).await;
    assert_eq!(
        lake.mention_count_lines().await,
        reference.mention_count_lines().await
    );
    let (a, b) = (fresh_schema(), fresh_schema());
    let url = database_url();
    reference
        .ok(&["sync", "--database-url", &url, "--schema", &a])
        .await;
    lake.ok(&["sync", "--database-url", &url, "--schema", &b])
        .await;
    let rows = product_mentions_lines(&b).await;
    assert!(!rows.is_empty());
    assert_eq!(rows, product_mentions_lines(&a).await);
    sim.shutdown().await;
    eprintln!(
        "analytics fetch drill: {killed} kills, {:.1}s",
        t0.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_archive_fetch_resumes_after_the_last_recorded_page() {
    let t0 = Instant::now();
    let sim = start_sim(slow_config(200)).await;
    // One interaction type: a fetch of several re-fetches the finished ones when resumed (see
    // the ignored test below).
    let mut args = archive_args(&sim.url);
    args.extend(["--media", "voice"].map(String::from));
    let size = args.iter().position(|a| a == "--page-size").unwrap() + 1;
    args[size] = "3".into();
    let reference = reference(&args).await;
    let lake = TestLake::new();
    let killed = kill_repeatedly(&lake, &args, &[], 10, KillAt::Progress(3, 40), 0xa2c4).await;
    assert!(killed >= 10, "only {killed} runs were killed mid-fetch");
    assert_sound(&lake).await;
    let events = lake.events().await;
    assert_eq!(pages_recorded_twice(&events), Vec::<String>::new());
    // A run killed inside a write can leave the store's staging file (`x.parquet#1`): never a
    // snapshot, invisible to every reader, and counted by verify.
    let temp = all_files(lake.path())
        .iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().contains('#'))
        .count();
    let report = lake.ok(&["verify"]).await;
    assert!(
        report.contains(&format!("{temp} leftover temp files")),
        "{report}"
    );
    assert_eq!(lake.files("raw"), reference.files("raw"));
    lake.ok(&["extract"]).await;
    lake.ok(&["aggregate"]).await;
    assert_eq!(
        lake.mention_count_lines().await,
        reference.mention_count_lines().await
    );
    sim.shutdown().await;
    eprintln!(
        "archive fetch drill: {killed} kills, {:.1}s",
        t0.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_archive_fetch_does_not_fetch_finished_types_again() {
    let sim = start_sim(slow_config(200)).await;
    let mut args = archive_args(&sim.url);
    args.extend(["--media", "voice,chat"].map(String::from));
    let lake = TestLake::new();
    let mut child = lake.spawn_env(&refs(&args), &[]);
    // Kill as soon as the first type is done.
    loop {
        let done = Lake::open_local(lake.path())
            .unwrap()
            .events()
            .read_all()
            .await
            .map(|e| {
                e.iter()
                    .any(|e| matches!(e.kind, EventKind::FetchDone { .. }))
            })
            .unwrap_or(false);
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let out = lake.run(&refs(&args)).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        pages_recorded_twice(&lake.events().await),
        Vec::<String>::new()
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_extract_and_sync_converges() {
    let t0 = Instant::now();
    let sim = start_sim(sim_config(300)).await;
    let args = analytics_args(&sim.url);
    let reference = reference(&args).await;
    let lake = TestLake::new();
    assert!(lake.run(&refs(&args)).await.status.success());
    sim.shutdown().await;

    // Extract: killed early and late; whatever was written is whole and equals a clean run's.
    let extract = vec!["extract".to_string(), "--workers".into(), "1".into()];
    let extract_kills =
        kill_repeatedly(&lake, &extract, &[], 6, KillAt::Progress(2, 5), 0xe7).await;
    assert!(
        extract_kills >= 3,
        "only {extract_kills} extracts were killed"
    );
    assert_same_files(&lake, &reference, "mentions");
    let aggregate = vec!["aggregate".to_string()];
    let aggregate_kills =
        kill_repeatedly(&lake, &aggregate, &[], 3, KillAt::Time(5, 150), 0xa9).await;
    assert_same_files(&lake, &reference, "aggregates");
    assert_sound(&lake).await;

    // Sync: killed before, during and after the merge (the transaction held open 1.5 s).
    let url = database_url();
    let (a, b) = (fresh_schema(), fresh_schema());
    reference
        .ok(&["sync", "--database-url", &url, "--schema", &a])
        .await;
    let sync: Vec<String> = ["sync", "--database-url", &url, "--schema", &b, "--wait"]
        .map(String::from)
        .to_vec();
    let pause = [("CONVLAKE_FAULT_SYNC_PAUSE_MS", "1500")];
    let killed = kill_repeatedly(&lake, &sync, &pause, 5, KillAt::Time(30, 1700), 0x5c).await;
    assert!(killed >= 4, "only {killed} syncs were killed");
    assert_eq!(
        product_mentions_lines(&b).await,
        product_mentions_lines(&a).await
    );
    let out = lake
        .run(&["sync", "--database-url", &url, "--schema", &b])
        .await;
    assert!(stderr(&out).contains("nothing to do"), "{}", stderr(&out));
    eprintln!(
        "extract/aggregate/sync drill: {extract_kills} + {aggregate_kills} + {killed} kills, {:.1}s",
        t0.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_quarantines_damage_and_a_later_fetch_restores_it() {
    let sim = start_sim(sim_config(120)).await;
    let lake = TestLake::new();
    let args = archive_args(&sim.url);
    assert!(lake.run(&refs(&args)).await.status.success());
    lake.ok(&["extract"]).await;
    lake.ok(&["aggregate"]).await;
    let clean = lake.mention_count_lines().await;
    let first = lake.ok(&["verify"]).await;
    assert!(first.contains("the lake is sound"), "{first}");
    let raw_before = lake.files("raw");

    // Damage: a truncated snapshot, a snapshot whose bytes changed but still decode (caught by
    // the checksum record), a mentions file of garbage, and a missing snapshot.
    let raw: Vec<_> = all_files(&lake.path().join("raw"));
    assert!(raw.len() >= 4);
    let truncated = &raw[0];
    let bytes = std::fs::read(truncated).unwrap();
    std::fs::write(truncated, &bytes[..bytes.len() / 2]).unwrap();
    let rewritten = &raw[1];
    let batches =
        convlake::lake::schema::from_parquet(std::fs::read(rewritten).unwrap().into()).unwrap();
    // Re-encode with a different row order: same name, same rows, different bytes.
    let reversed: Vec<_> = batches
        .iter()
        .map(|b| {
            let idx = arrow::array::UInt32Array::from_iter_values((0..b.num_rows() as u32).rev());
            arrow::compute::take_record_batch(b, &idx).unwrap()
        })
        .collect();
    let reencoded = convlake::lake::schema::to_parquet(&batches[0].schema(), &reversed).unwrap();
    assert_ne!(reencoded.to_vec(), std::fs::read(rewritten).unwrap());
    std::fs::write(rewritten, &reencoded).unwrap();
    let missing = &raw[2];
    std::fs::remove_file(missing).unwrap();
    let mentions = all_files(&lake.path().join("mentions"));
    std::fs::write(&mentions[0], b"PAR1 not really").unwrap();

    let rel = |p: &Path| p.strip_prefix(lake.path()).unwrap().display().to_string();
    let out = lake.run(&["verify", "--dry-run"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        lake.path().join(rel(truncated)).exists(),
        "dry run moves nothing"
    );

    let out = lake.run(&["verify"]).await;
    let report = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{report}");
    for p in [truncated, rewritten, &mentions[0]] {
        let r = rel(p);
        assert!(report.contains(&format!("damaged: {r}")), "{r}: {report}");
        assert!(!p.exists());
        assert!(
            lake.path().join("quarantine").join(&r).exists(),
            "{r} is kept in quarantine"
        );
    }
    assert!(
        report.contains(&format!("problem: {}: missing", rel(missing))),
        "{report}"
    );
    assert!(stderr(&out).contains("problems"), "{}", stderr(&out));

    // A completed archive run fetched again restores every page (the same bodies, the same
    // names); extract and aggregate rebuild the rest.
    assert!(lake.run(&refs(&args)).await.status.success());
    lake.ok(&["extract"]).await;
    lake.ok(&["aggregate"]).await;
    let after = lake.ok(&["verify"]).await;
    assert!(after.contains("the lake is sound"), "{after}");
    assert_eq!(lake.files("raw"), raw_before);
    assert_eq!(lake.mention_count_lines().await, clean);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantined_analytics_snapshot_is_fetched_again() {
    let sim = start_sim(sim_config(120)).await;
    let lake = TestLake::new();
    let args = analytics_args(&sim.url);
    assert!(lake.run(&refs(&args)).await.status.success());
    let raw_before = lake.files("raw");
    let raw = all_files(&lake.path().join("raw"));
    let bytes = std::fs::read(&raw[0]).unwrap();
    std::fs::write(&raw[0], &bytes[..bytes.len() - 10]).unwrap();
    let out = lake.run(&["verify"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(!raw[0].exists());
    let out = lake.run(&refs(&args)).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        lake.files("raw"),
        raw_before,
        "the quarantined snapshot is staged again"
    );
    sim.shutdown().await;
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs { dir })
    }

    fn resize(&self, size: &str) {
        let s = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.dir.path())
            .status()
            .unwrap();
        assert!(s.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_during_fetch_and_extract_is_a_clear_error_and_a_rerun_completes() {
    let sim = start_sim(sim_config(300)).await;
    let args = analytics_args(&sim.url);
    let reference = reference(&args).await;
    // What the files take on a disk: whole blocks.
    let size_of = |lake: &TestLake, sub: &str| -> u64 {
        use std::os::unix::fs::MetadataExt;
        all_files(&lake.path().join(sub))
            .iter()
            .map(|p| p.metadata().unwrap().blocks() * 512)
            .sum()
    };
    let fetched: u64 = ["raw", "bodies", "events"]
        .iter()
        .map(|s| size_of(&reference, s))
        .sum();

    // A disk with room for about half of the fetch.
    let Some(fs) = Tmpfs::mount(&format!("{}k", fetched / 2 / 1024)) else {
        eprintln!("SKIPPED: cannot mount a tmpfs here (not root?); the full-disk drill needs one");
        return;
    };
    let lake = TestLake {
        dir: tempfile::tempdir_in(fs.dir.path()).unwrap(),
    };
    let out = lake.run(&refs(&args)).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("No space left on device") && err.contains("free disk space"),
        "a clear error: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    // verify works on the full disk (its checksum record just cannot be updated).
    let out = lake.run(&["verify"]).await;
    assert!(
        out.status.success(),
        "the lake still verifies: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Room for the fetch, not for the mentions.
    fs.resize(&format!("{}k", (fetched + fetched / 10) / 1024 + 64));
    let out = lake.run(&refs(&args)).await;
    assert!(out.status.success(), "{}", stderr(&out));
    // Fill what is left, so extract runs out of space.
    let free = fs2_free(fs.dir.path());
    let filler = fs.dir.path().join("filler");
    std::fs::write(&filler, vec![0u8; free.saturating_sub(4096) as usize]).ok();
    let out = lake.run(&["extract"]).await;
    if out.status.success() {
        panic!("extract succeeded on a full disk: {}", stderr(&out));
    }
    let err = stderr(&out);
    assert!(err.contains("No space left on device"), "{err}");
    let out = lake.run(&["verify", "--dry-run"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // The user frees space (the filler, and the disk grows): the re-runs complete.
    std::fs::remove_file(&filler).unwrap();
    fs.resize(&format!("{}k", fetched * 2 / 1024 + 1024));
    lake.ok(&["extract"]).await;
    lake.ok(&["aggregate"]).await;
    assert_eq!(
        lake.mention_count_lines().await,
        reference.mention_count_lines().await
    );
    lake.ok(&["verify"]).await;
    drop(lake);
    sim.shutdown().await;
}

/// Free bytes of the file system holding `p` (`df`'s view).
fn fs2_free(p: &Path) -> u64 {
    let out = std::process::Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(p)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_faults_at_high_rates_change_nothing() {
    let t0 = Instant::now();
    let clean_sim = start_sim(sim_config(150)).await;
    let reference = reference(&analytics_args(&clean_sim.url)).await;
    let archive_reference = reference_archive(&clean_sim.url).await;
    clean_sim.shutdown().await;

    let mut cfg = sim_config(150);
    cfg.faults = Faults {
        rate_429: 0.03,
        rate_500: 0.2,
        drop_rate: 0.15,
        slow_rate: 0.02,
        slow_ms: 1500,
        ..Faults::default()
    };
    let sim = start_sim(cfg).await;
    let mut args = analytics_args(&sim.url);
    args.extend(["--timeout", "1", "--max-attempts", "12"].map(String::from));
    let lake = TestLake::new();
    let out = lake.run(&refs(&args)).await;
    assert!(out.status.success(), "{}", stderr(&out));
    lake.ok(&["extract"]).await;
    lake.ok(&["aggregate"]).await;
    assert_eq!(
        lake.mention_count_lines().await,
        reference.mention_count_lines().await
    );
    let stats = sim.stats();
    assert!(stats.too_many > 0, "429s were served: {stats:?}");

    let mut args = archive_args(&sim.url);
    args.extend(["--timeout", "1", "--max-attempts", "12"].map(String::from));
    let lake = TestLake::new();
    let out = lake.run(&refs(&args)).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(lake.files("raw"), archive_reference.files("raw"));
    sim.shutdown().await;
    eprintln!("network faults: {:.1}s", t0.elapsed().as_secs_f64());
}

async fn reference_archive(url: &str) -> TestLake {
    let lake = TestLake::new();
    let out = lake.run(&refs(&archive_args(url))).await;
    assert!(out.status.success(), "{}", stderr(&out));
    lake
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_recovers_is_a_clear_error_in_bounded_time() {
    for (name, faults) in [
        (
            "5xx",
            Faults {
                rate_500: 1.0,
                ..Faults::default()
            },
        ),
        (
            "dropped connections",
            Faults {
                drop_rate: 1.0,
                ..Faults::default()
            },
        ),
        (
            "a page that is always truncated",
            Faults {
                malformed_page: Some(0),
                ..Faults::default()
            },
        ),
        (
            "slow beyond the timeout",
            Faults {
                slow_rate: 1.0,
                slow_ms: 3000,
                ..Faults::default()
            },
        ),
    ] {
        let mut cfg = sim_config(40);
        cfg.faults = faults;
        let sim = start_sim(cfg).await;
        let lake = TestLake::new();
        for source in [analytics_args(&sim.url), archive_args(&sim.url)] {
            let mut args = source.clone();
            args.extend(["--timeout", "1", "--max-attempts", "3"].map(String::from));
            let t = Instant::now();
            let out = lake.run(&refs(&args)).await;
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(1), "{name} {}: {err}", args[2]);
            assert!(
                err.contains("after 3 attempts") && err.contains("re-run resumes"),
                "{name} {}: a clear error: {err}",
                args[2]
            );
            assert!(!err.contains(CLIENT_SECRET));
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "{name} {}: gave up in {:?}",
                args[2],
                t.elapsed()
            );
        }
        let out = lake.run(&["verify"]).await;
        assert!(out.status.success());
        sim.shutdown().await;
    }
}
