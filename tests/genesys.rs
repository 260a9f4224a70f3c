//! The real Genesys Cloud source (`--source analytics`) against the simulator: details jobs and
//! the details query, STA transcripts, digital recordings, faults, resume and `--since-last`,
//! checked against the simulator's ground truth.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use convlake::simulator::{self, RunningSimulator, SimConfig};

/// `n` conversations over `days` days from START, with untranscribed calls and slow recordings.
fn config(n: usize, days: u32) -> SimConfig {
    let mut cfg = sim_config(n);
    cfg.days = days;
    cfg.untranscribed_rate = 0.06;
    cfg.faults.not_ready_rate = 0.1;
    cfg.job_polls = 2;
    cfg
}

fn last_day(cfg: &SimConfig) -> String {
    (cfg.start + chrono::Days::new(u64::from(cfg.days) - 1)).to_string()
}

/// Fetch arguments for the simulator over the whole configured period.
fn fetch_args<'a>(sim: &'a RunningSimulator, to: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "fetch",
        "--api-url",
        sim.url.as_str(),
        "--from",
        START,
        "--to",
        to,
        "--not-ready-wait",
        "0.05",
    ];
    a.extend_from_slice(extra);
    a
}

async fn fetch_ok(lake: &TestLake, args: &[&str]) -> String {
    let out = lake.run(args).await;
    assert!(
        out.status.success(),
        "convlake {args:?} failed:\n{}",
        stderr(&out)
    );
    stderr(&out)
}

/// mention_counts as `date,type,product,mentions,conversations` lines.
async fn counts(lake: &TestLake) -> Vec<String> {
    lake.ok(&["extract"]).await;
    lake.ok(&["aggregate"]).await;
    let csv = lake
        .ok(&[
            "query",
            "SELECT conversation_date, interaction_type, product, mentions, conversations FROM mention_counts ORDER BY 1, 2, 3",
            "--format",
            "csv",
        ])
        .await;
    csv.lines().skip(1).map(String::from).collect()
}

/// The simulator's ground truth in the same form.
fn truth_rows(cfg: &SimConfig) -> Vec<String> {
    let end = cfg.start + chrono::Days::new(u64::from(cfg.days));
    simulator::ground_truth(cfg, cfg.start, end, &["voice", "chat", "email", "message"])
        .rows
        .iter()
        .map(|((d, t, p), (m, c))| format!("{d},{t},{p},{m},{c}"))
        .collect()
}

/// Every current utterance (without the snapshot it came from), as CSV.
async fn utterances(lake: &TestLake) -> String {
    lake.ok(&[
        "query",
        "SELECT conversation_id, communication_id, conversation_date, interaction_type, participant, utterance_index, start_ms, text FROM utterances ORDER BY 1, 6",
        "--format",
        "csv",
    ])
    .await
}

fn untranscribed(cfg: &SimConfig) -> usize {
    simulator::untranscribed(
        cfg,
        cfg.start,
        cfg.start + chrono::Days::new(u64::from(cfg.days)),
    )
    .len()
}

async fn scalar(lake: &TestLake, sql: &str) -> String {
    let csv = lake.ok(&["query", sql, "--format", "csv"]).await;
    csv.lines().nth(1).unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_week_range_of_all_media_gives_exactly_the_ground_truth() {
    let cfg = config(500, 21);
    let sim = start_sim(cfg.clone()).await;
    let lake = TestLake::new();
    let to = last_day(&cfg);
    let err = fetch_ok(&lake, &fetch_args(&sim, &to, &[])).await;
    let missing = untranscribed(&cfg);
    assert!(missing > 3, "the simulator leaves some calls untranscribed");
    // The 404s are reported in the summary and recorded in the log.
    assert!(
        err.contains(&format!("{missing} without transcript")),
        "{err}"
    );
    assert!(err.contains("3 intervals (0 already done)"), "{err}");
    assert!(
        err.contains(&format!("(untranscribed: {missing})")),
        "{err}"
    );
    let mut manifests_missing = 0;
    let bodies = lake.files("bodies");
    let mut manifests = 0;
    let mut a_texts_file = None;
    for (path, _) in &bodies {
        let body = std::fs::read(lake.path().join(path)).unwrap();
        if let Ok(m) = serde_json::from_slice::<serde_json::Value>(&body) {
            if m["format"] == "convlake.analytics.v2" {
                manifests += 1;
                let conversations = m["conversations"].as_array().unwrap();
                manifests_missing += conversations
                    .iter()
                    // A month old, past the 72 h --transcript-grace: untranscribed.
                    .filter(|c| c["text"] == "missing:untranscribed")
                    .count();
                // The batch's texts: one JSON array, an element per conversation with text.
                let with_text = conversations
                    .iter()
                    .filter(|c| !c["text"].as_str().unwrap().starts_with("missing:"))
                    .count();
                let hash = m["texts"].as_str().unwrap();
                let texts_path = format!("bodies/{}/{hash}.json.zst", &hash[..2]);
                let packed = std::fs::read(lake.path().join(&texts_path)).unwrap();
                let texts: Vec<serde_json::Value> =
                    serde_json::from_slice(&zstd::decode_all(&packed[..]).unwrap()).unwrap();
                assert_eq!(texts.len(), with_text, "{texts_path}");
                a_texts_file = Some(texts_path);
            }
        }
    }
    assert_eq!(manifests_missing, missing);
    // Three bodies a batch (texts, records, manifest), not one a conversation.
    assert_eq!(bodies.len(), 3 * manifests, "{bodies:?}");
    assert_eq!(counts(&lake).await, truth_rows(&cfg));
    // Every conversation of the range is listed once in utterances.
    let stats = sim.stats();
    let voice_with_text = scalar(
        &lake,
        "SELECT COUNT(DISTINCT conversation_id) FROM utterances WHERE interaction_type = 'voice'",
    )
    .await;
    let voice: usize = (0..500)
        .filter(|&i| convlake::simulator::conversation(&cfg, i).media == simulator::Media::Voice)
        .count();
    assert_eq!(voice_with_text, (voice - missing).to_string());
    // One transcripturl per voice conversation, no presigned link fetched twice.
    assert_eq!(stats.transcript_urls as usize, voice);
    assert_eq!(stats.presigned as usize, voice - missing);

    // A second fetch stores nothing new and asks only for the missing transcripts again.
    let raw = lake.files("raw");
    let err = fetch_ok(&lake, &fetch_args(&sim, &to, &[])).await;
    assert!(err.contains(" 0 new snapshots"), "{err}");
    assert_eq!(lake.files("raw"), raw);
    let again = sim.stats();
    assert_eq!(
        (again.transcript_urls - stats.transcript_urls) as usize,
        missing
    );
    assert_eq!(again.recordings, stats.recordings);
    sim.shutdown().await;

    // verify names a batch's texts file that went missing.
    let texts_path = a_texts_file.unwrap();
    std::fs::remove_file(lake.path().join(&texts_path)).unwrap();
    let out = lake.run(&["verify", "--dry-run"]).await;
    let report = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains(&format!(
            "problem: {texts_path}: missing: the texts of snapshot"
        )),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_and_expiring_tokens_still_give_the_ground_truth() {
    let mut cfg = config(300, 10);
    cfg.faults.rate_429 = 0.04;
    cfg.faults.rate_500 = 0.05;
    cfg.faults.drop_rate = 0.05;
    cfg.faults.slow_rate = 0.05;
    cfg.faults.slow_ms = 2_500;
    // "Every minute", scaled down: tokens say they last a minute but stop working after 2 s.
    cfg.token_ttl_secs = 60;
    cfg.faults.revoke_tokens_after_secs = Some(2);
    // Short-lived transcript links, but long enough that a loaded CI machine (slow responses of
    // 2.5 s, shared pauses after 429s) does not see three expiries of one link in a row.
    cfg.transcript_url_ttl_secs = 8;
    let sim = start_sim(cfg.clone()).await;
    let lake = TestLake::new();
    let to = last_day(&cfg);
    let err = fetch_ok(
        &lake,
        &fetch_args(&sim, &to, &["--timeout", "2", "--concurrency", "6"]),
    )
    .await;
    assert_eq!(counts(&lake).await, truth_rows(&cfg), "{err}");
    let s = sim.stats();
    assert!(s.unauthorized > 0 && s.tokens > 1, "{s:?}");
    assert!(s.too_many > 0, "{s:?}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_details_query_splits_intervals_over_the_result_cap() {
    let mut cfg = config(300, 10);
    cfg.max_query_results = 40;
    let sim = start_sim(cfg.clone()).await;
    let lake = TestLake::new();
    let to = last_day(&cfg);
    let err = fetch_ok(
        &lake,
        &fetch_args(&sim, &to, &["--listing", "query", "--page-size", "20"]),
    )
    .await;
    assert_eq!(counts(&lake).await, truth_rows(&cfg), "{err}");
    // Page 3 of 20 passes the cap of 40: the interval is halved until each half fits.
    let pages = sim.stats().query_pages;
    let intervals: std::collections::BTreeSet<&String> = pages.iter().map(|(i, _)| i).collect();
    assert!(
        intervals.len() > 4,
        "split into shorter intervals: {intervals:?}"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_fetch_resumes_without_listing_a_finished_interval_again() {
    let mut cfg = config(400, 21);
    cfg.job_polls = 1;
    let sim = start_sim(cfg.clone()).await;
    let to = last_day(&cfg);
    // Pages of 20 staged in batches of 7: the kill can fall between two batches of a page.
    let extra = [
        "--interval-days",
        "2",
        "--page-size",
        "20",
        "--batch-size",
        "7",
    ];

    // Reference: one uninterrupted run into its own lake.
    let reference = TestLake::new();
    fetch_ok(&reference, &fetch_args(&sim, &to, &extra)).await;
    let jobs_before = sim.stats().job_intervals.len();
    assert_eq!(jobs_before, 11);

    // Kill a run once three intervals are done.
    let lake = TestLake::new();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_convlake"))
        .arg("--lake")
        .arg(lake.path())
        .args(fetch_args(&sim, &to, &extra))
        .env("GENESYS_CLIENT_ID", CLIENT_ID)
        .env("GENESYS_CLIENT_SECRET", CLIENT_SECRET)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let done_intervals = |lake: &TestLake| -> Vec<String> {
        let mut out = Vec::new();
        for (path, _) in lake.files("events") {
            let text = std::fs::read_to_string(lake.path().join(path)).unwrap_or_default();
            for line in text.lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                if v["kind"] == "interval_done" {
                    out.push(v["interval"].as_str().unwrap().to_string());
                }
            }
        }
        out
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while done_intervals(&lake).len() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the fetch made no progress"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().await.unwrap();
    let finished = done_intervals(&lake);
    assert!(finished.len() < 11, "killed before the end");

    let err = fetch_ok(&lake, &fetch_args(&sim, &to, &extra)).await;
    assert!(err.contains("resumed"), "{err}");
    let jobs: Vec<String> = sim.stats().job_intervals[jobs_before..].to_vec();
    let mut per: BTreeMap<&String, usize> = BTreeMap::new();
    for j in &jobs {
        *per.entry(j).or_default() += 1;
    }
    for f in &finished {
        assert_eq!(per.get(f), Some(&1), "{f} was listed again: {jobs:?}");
    }
    assert_eq!(per.len(), 11);
    // Submitted again: at most the interval being listed when the run was killed and the next
    // one, whose job is submitted ahead while the current one is listed.
    assert!(per.values().filter(|&&n| n > 1).count() <= 2, "{jobs:?}");
    assert!(per.values().all(|&n| n <= 2), "{jobs:?}");
    // The same utterances and the same counts as the uninterrupted run. (Batches can differ:
    // recordings still being prepared join whichever batch is staged when they are due.)
    assert_eq!(utterances(&lake).await, utterances(&reference).await);
    assert_eq!(counts(&lake).await, counts(&reference).await);
    assert_eq!(counts(&lake).await, truth_rows(&cfg));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_recordings_and_since_last_pick_up_what_was_missing() {
    let mut cfg = config(200, 10);
    cfg.faults.not_ready_rate = 0.3;
    let sim = start_sim(cfg.clone()).await;
    let lake = TestLake::new();
    let to = last_day(&cfg);
    // One request per conversation: recordings still being prepared are given up on.
    let err = fetch_ok(
        &lake,
        &fetch_args(&sim, &to, &["--not-ready-attempts", "1"]),
    )
    .await;
    let missing = untranscribed(&cfg);
    assert!(
        !err.contains(&format!(" {missing} without transcript")),
        "{err}"
    );
    assert_ne!(counts(&lake).await, truth_rows(&cfg));

    // --since-last reaches back a lateness window before the last completed interval; a wide
    // window takes in the whole range and the late recordings.
    let before = sim.stats().job_intervals.len();
    let err = fetch_ok(
        &lake,
        &[
            "fetch",
            "--api-url",
            &sim.url,
            "--to",
            &to,
            "--since-last",
            "--lateness",
            "10d",
            "--not-ready-wait",
            "0.05",
        ],
    )
    .await;
    assert!(
        err.contains(&format!(" {missing} without transcript")),
        "{err}"
    );
    let jobs = sim.stats().job_intervals[before..].to_vec();
    // (The next interval's job is submitted while one is listed, so the order can vary.)
    assert!(
        jobs.iter()
            .any(|j| j.starts_with("2026-03-01T00:00:00.000Z/")),
        "{jobs:?}"
    );
    assert_eq!(counts(&lake).await, truth_rows(&cfg));

    // With the default 24 h, only the last day is listed again, and nothing is new.
    let before = sim.stats().job_intervals.len();
    let err = fetch_ok(
        &lake,
        &["fetch", "--api-url", &sim.url, "--to", &to, "--since-last"],
    )
    .await;
    assert!(err.contains(" 0 new snapshots"), "{err}");
    let jobs = sim.stats().job_intervals[before..].to_vec();
    assert_eq!(
        jobs,
        ["2026-03-10T00:00:00.000Z/2026-03-11T00:00:00.000Z"],
        "{err}"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regions_map_to_their_hosts_and_unknown_ones_are_usage_errors() {
    use convlake::genesys::region::REGIONS;
    use convlake::genesys::Endpoints;
    for (name, domain) in REGIONS {
        for key in [name.to_string(), name.replace('-', "_"), domain.to_string()] {
            let e = Endpoints::resolve(&key, None, None).unwrap();
            assert_eq!(e.api.as_str(), format!("https://api.{domain}/"), "{key}");
            assert_eq!(
                e.login.as_str(),
                format!("https://login.{domain}/"),
                "{key}"
            );
        }
    }
    assert_eq!(REGIONS.len(), 18);
    let e = Endpoints::resolve("eu-central-1", None, None).unwrap();
    assert_eq!(e.api.host_str(), Some("api.mypurecloud.de"));

    let lake = TestLake::new();
    let out = lake
        .run_env(
            &["fetch", "--from", START, "--to", START],
            &[("GENESYSCLOUD_REGION", "mars-1")],
        )
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("unknown region \"mars-1\""),
        "{}",
        stderr(&out)
    );
}

/// The Python interpreter with `purecloudplatformclientv2`: `CONVLAKE_SDK_PYTHON`, else the
/// venv `scripts/test` creates.
fn sdk_python() -> std::path::PathBuf {
    if let Ok(p) = std::env::var("CONVLAKE_SDK_PYTHON") {
        return p.into();
    }
    let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/sdk-venv/bin/python");
    assert!(
        venv.exists(),
        "no Python with the Genesys SDK: run scripts/test, which installs purecloudplatformclientv2 into target/sdk-venv"
    );
    venv
}

/// Runs tests/sdk/sdk_check.py against a simulator serving `cfg`; its JSON summary.
async fn sdk_check(cfg: &SimConfig, extra: &[&str]) -> serde_json::Value {
    let sim = start_sim(cfg.clone()).await;
    let out = tokio::process::Command::new(sdk_python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/sdk/sdk_check.py"
        ))
        .args([
            sim.url.as_str(),
            CLIENT_ID,
            CLIENT_SECRET,
            "2026-03-02T00:00:00.000Z/2026-03-05T00:00:00.000Z",
        ])
        .args(extra)
        .output()
        .await
        .unwrap();
    sim.shutdown().await;
    assert!(
        out.status.success(),
        "the SDK check failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_python_sdk_reads_every_simulated_endpoint() {
    // The real traffic shapes, frequent enough to appear in three days of 300 conversations;
    // late transcripts arrive at once (the script asks once).
    let mut cfg = sim_config(300);
    cfg.untranscribed_rate = 0.1;
    cfg.traffic = simulator::Traffic {
        callback_rate: 0.25,
        transfer_rate: 0.35,
        gone_rate: 0.1,
        archived_rate: 0.1,
        recording_error_rate: 0.4,
        duplicate_recording_rate: 0.2,
        late_for_secs: 0.0,
        ..simulator::Traffic::MIX
    };
    let seen = sdk_check(&cfg, &[]).await;
    let (from, to) = ("2026-03-02".parse().unwrap(), "2026-03-05".parse().unwrap());
    let gen = simulator::Generator::new(&cfg);
    let range = gen.index_range(
        "2026-03-02T00:00:00Z".parse().unwrap(),
        "2026-03-05T00:00:00Z".parse().unwrap(),
    );
    let voice: Vec<usize> = range
        .clone()
        .filter(|&i| gen.media(i) == simulator::Media::Voice)
        .collect();
    let missing = simulator::expected_missing(&cfg, from, to, &[]);
    let reason = |r: &str| missing.iter().filter(|m| m.1 == r).count();
    // Recorded voice sessions: the customer's, plus one customer and one agent per leg when
    // transferred.
    let sessions = |i: &usize| match gen.shape(*i).legs() {
        1 => 1,
        legs => 2 * legs,
    };
    let transferred = voice.iter().filter(|&&i| gen.shape(i).legs() > 1).count();
    // Sessions recorded twice whose transcripts can be read (the gone ones cannot).
    let duplicated = voice
        .iter()
        .filter(|&&i| gen.shape(i).duplicate_recording && !gen.shape(i).gone)
        .count();
    for (what, n) in [
        ("404", reason("404")),
        ("gone", reason("gone")),
        ("archived", reason("archived")),
        ("errored", reason("error:EMAIL_TRANSCRIPT_TOO_LARGE")),
        ("transfers", transferred),
        ("duplicated", duplicated),
    ] {
        assert!(n > 0, "no {what} in the range: make the rates larger");
    }
    assert_eq!(seen["query"], range.len());
    assert!(
        seen["job"].as_u64().unwrap() >= range.len() as u64,
        "{seen}"
    );
    assert_eq!(seen["missing"], reason("404"), "{seen}");
    assert_eq!(seen["gone"], reason("gone"), "{seen}");
    assert_eq!(
        seen["transcripts"],
        voice.len() - reason("404") - reason("gone")
    );
    assert_eq!(
        seen["callbacks"],
        simulator::callbacks(&cfg, from, to).len()
    );
    assert_eq!(seen["transfers"], transferred);
    assert_eq!(seen["archived"], reason("archived"));
    assert_eq!(seen["errored"], reason("error:EMAIL_TRANSCRIPT_TOO_LARGE"));
    assert_eq!(
        seen["plural"],
        voice
            .iter()
            .filter(|&&i| gen.has_transcript(i))
            .map(sessions)
            .sum::<usize>()
    );
    assert_eq!(seen["forbidden"], 0);
    assert_eq!(seen["duplicated"], duplicated);
    // The dictionary feedback a person made, read through SpeechTextAnalyticsApi's models.
    let feedback = simulator::seeded_dictionary_feedback(cfg.seed);
    assert_eq!(seen["dictionary_feedback"], feedback.len());
    assert_eq!(
        seen["dictionary_feedback_phrases"],
        feedback
            .iter()
            .map(|e| e.example_phrases.len())
            .sum::<usize>()
    );
    assert_eq!(
        seen["dictionary_feedback_en_us"],
        feedback.iter().filter(|e| e.dialect == "en-US").count()
    );
    assert_eq!(
        seen["states"],
        serde_json::json!(["QUEUED", "PENDING", "FULFILLED"])
    );

    // A role without speechAndTextAnalytics:data:view: the singular link is 403 for every
    // recorded session, the plural one reads the same transcripts.
    cfg.traffic.sta_permission = false;
    let without = sdk_check(&cfg, &["--expect-no-sta"]).await;
    assert_eq!(
        without["forbidden"],
        voice.iter().map(sessions).sum::<usize>()
    );
    for k in ["transcripts", "missing", "gone", "plural", "duplicated"] {
        assert_eq!(without[k], seen[k], "{k}");
    }
}

/// The kinds of the lake's events, in order.
async fn event_kinds(lake: &TestLake) -> Vec<&'static str> {
    lake.events().await.iter().map(|e| e.kind.name()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_killed_while_recordings_are_prepared_loses_nothing_on_the_same_rerun() {
    // Every digital conversation's recordings stay "being prepared" for 4 s after they were
    // first asked for; every call has its transcript.
    let mut cfg = sim_config(80);
    cfg.job_polls = 1;
    cfg.faults.not_ready_rate = 1.0;
    cfg.faults.not_ready_for_secs = Some(4.0);
    let sim = start_sim(cfg.clone()).await;
    let to = last_day(&cfg);
    // Patient: 60 requests 0.25 s apart.
    let args = [
        "fetch",
        "--api-url",
        sim.url.as_str(),
        "--from",
        START,
        "--to",
        &to,
        "--job-poll-max",
        "0.05",
        "--not-ready-attempts",
        "60",
        "--not-ready-wait",
        "0.25",
    ];
    let lake = TestLake::new();
    let mut child = lake.spawn_env(&args, &[]);
    // Kill it once every interval is listed and it only waits for recordings.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let kinds = event_kinds(&lake).await;
        if kinds.iter().filter(|k| **k == "interval_done").count() == 2 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the fetch ended before the kill: {kinds:?}"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the fetch made no progress: {kinds:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let kinds = event_kinds(&lake).await;
    assert!(
        !kinds.contains(&"fetch_done"),
        "the fetch ended before the kill"
    );
    assert!(kinds.contains(&"texts_missing"), "{kinds:?}");
    // The kill landed in the wait: verify counts the conversations still without text.
    let out = lake.run(&["verify"]).await;
    let verified = String::from_utf8_lossy(&out.stdout).to_string() + &stderr(&out);
    assert!(
        verified.contains("conversations without text (not ready: "),
        "{verified}"
    );
    let jobs_before = sim.stats().job_intervals.len();
    let recordings_before = sim.stats().recordings;

    // The same command again: every interval is done, yet the waiting ones are asked again.
    let err = fetch_ok(&lake, &args).await;
    assert!(err.contains("resumed an unfinished run"), "{err}");
    assert!(err.contains(" 0 without transcript,"), "{err}");
    assert_eq!(
        sim.stats().job_intervals.len(),
        jobs_before,
        "no interval is listed again"
    );
    assert!(sim.stats().recordings > recordings_before);
    let out = lake.run(&["verify"]).await;
    let verified = String::from_utf8_lossy(&out.stdout).to_string() + &stderr(&out);
    assert!(out.status.success(), "{verified}");
    assert!(!verified.contains("without text"), "{verified}");
    // Every conversation's text is staged: the simulator's ground truth, row for row.
    assert_eq!(counts(&lake).await, truth_rows(&cfg));
    let expected: u64 = truth(&cfg, cfg.start, cfg.start + chrono::Days::new(9))
        .values()
        .sum();
    let staged: u64 = lake.totals().await.values().sum();
    assert_eq!(staged, expected);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_query_listing_resumes_from_its_checkpoint() {
    let mut cfg = sim_config(300);
    cfg.days = 10;
    let sim = start_sim(cfg.clone()).await;
    let to = last_day(&cfg);
    let args = fetch_args(
        &sim,
        &to,
        &[
            "--listing",
            "query",
            "--interval-days",
            "10",
            "--page-size",
            "10",
        ],
    );
    let lake = TestLake::new();
    let mut child = lake.spawn_env(&args, &[]);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while event_kinds(&lake)
        .await
        .iter()
        .filter(|k| **k == "listing_page")
        .count()
        < 8
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the fetch made no progress"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let kinds = event_kinds(&lake).await;
    assert!(!kinds.contains(&"interval_done"), "killed before the end");
    let pages_before = sim.stats().query_pages.len();
    let recorded: Vec<u64> = lake
        .events()
        .await
        .iter()
        .filter_map(|e| match &e.kind {
            convlake::lake::EventKind::ListingPage { page, .. } => Some(*page),
            _ => None,
        })
        .collect();

    let err = fetch_ok(&lake, &args).await;
    assert!(err.contains("resumed an unfinished run"), "{err}");
    // The re-run starts at the page after the last recorded one, not at page 1.
    let asked = sim.stats().query_pages[pages_before..].to_vec();
    let first = asked.first().expect("the re-run asked for pages");
    assert_eq!(
        first.1,
        recorded.len() as u64 + 1,
        "{asked:?} after {recorded:?}"
    );
    assert!(
        asked.iter().all(|(_, n)| *n > recorded.len() as u64),
        "{asked:?}"
    );
    assert_eq!(counts(&lake).await, truth_rows(&cfg));
    sim.shutdown().await;
}

/// Rewrites every raw file of the lake without the `subtype` column, as convlake wrote them
/// before the column existed (the file names stay: they are the manifests' hashes).
fn drop_subtype_column(lake: &TestLake) -> usize {
    let mut n = 0;
    for (path, _) in lake.files("raw") {
        let full = lake.path().join(&path);
        let bytes = bytes::Bytes::from(std::fs::read(&full).unwrap());
        let reader =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
        let old_fields: Vec<_> = reader
            .schema()
            .fields()
            .iter()
            .filter(|f| f.name() != "subtype")
            .cloned()
            .collect();
        let schema = std::sync::Arc::new(arrow::datatypes::Schema::new(old_fields));
        let mut out = Vec::new();
        let mut writer =
            parquet::arrow::ArrowWriter::try_new(&mut out, schema.clone(), None).unwrap();
        for batch in reader.build().unwrap() {
            let batch = batch.unwrap();
            let i = batch.schema().index_of("subtype").unwrap();
            let mut columns = batch.columns().to_vec();
            columns.remove(i);
            writer
                .write(&arrow::array::RecordBatch::try_new(schema.clone(), columns).unwrap())
                .unwrap();
        }
        writer.close().unwrap();
        std::fs::write(&full, out).unwrap();
        n += 1;
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lake_written_before_the_subtype_column_reads_as_before() {
    let cfg = config(120, 5);
    let sim = start_sim(cfg.clone()).await;
    let lake = TestLake::new();
    let to = last_day(&cfg);
    fetch_ok(&lake, &fetch_args(&sim, &to, &[])).await;
    let before = counts(&lake).await;
    assert!(drop_subtype_column(&lake) > 0);
    // Every stage reads the old files: the new column is NULL there.
    assert_eq!(
        scalar(
            &lake,
            "SELECT count(*) - count(subtype) > 0 FROM utterances"
        )
        .await,
        "true"
    );
    lake.ok(&["verify"]).await;
    // A new dictionary forces a fresh extract and aggregate over the old files.
    let dict = lake.path().join("other.toml");
    std::fs::write(
        &dict,
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/data/products.toml"))
            .unwrap()
            + "\n[[product]]\nname = \"Zzyzx Unlisted\"\n",
    )
    .unwrap();
    lake.ok(&["extract", "--dictionary", dict.to_str().unwrap()])
        .await;
    assert_eq!(counts(&lake).await, before);
    // A fetch of the same range over the old files stages nothing again.
    let err = fetch_ok(&lake, &fetch_args(&sim, &to, &[])).await;
    assert!(err.contains("0 new snapshots"), "{err}");
}

/// The reason each conversation of the lake is held without text, from the manifests of its
/// snapshots in log order (a later copy wins): what `verify` and a re-run read.
async fn held_without_text(lake: &TestLake) -> BTreeMap<String, String> {
    let mut text: BTreeMap<String, String> = BTreeMap::new();
    for e in lake.events().await {
        if let convlake::lake::events::EventKind::Snapshot { snapshot, .. } = &e.kind {
            let path = lake
                .path()
                .join(format!("bodies/{}/{snapshot}.json", &snapshot[..2]));
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let m: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            for c in m["conversations"].as_array().into_iter().flatten() {
                text.insert(
                    c["conversationId"].as_str().unwrap().to_string(),
                    c["text"].as_str().unwrap().to_string(),
                );
            }
        }
    }
    text.into_iter()
        .filter_map(|(id, t)| t.strip_prefix("missing:").map(|r| (id, r.to_string())))
        .collect()
}

/// Every current utterance as (conversation, speaker, offset, text), sorted.
async fn staged_utterances(lake: &TestLake) -> Vec<(String, String, i64, String)> {
    let json = lake
        .ok(&[
            "query",
            "SELECT conversation_id, participant, start_ms, text FROM utterances",
            "--format",
            "json",
        ])
        .await;
    let rows: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    let mut out: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r["conversation_id"].as_str().unwrap().to_string(),
                r["participant"].as_str().unwrap().to_string(),
                r["start_ms"].as_i64().unwrap(),
                r["text"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

/// The simulator's utterances in the same form.
fn expected_utterances(cfg: &SimConfig) -> Vec<(String, String, i64, String)> {
    let end = cfg.start + chrono::Days::new(u64::from(cfg.days));
    let all = ["voice", "chat", "email", "message"];
    let mut expected: Vec<_> = simulator::expected_utterances(cfg, cfg.start, end, &all)
        .into_iter()
        .map(|u| {
            (
                u.conversation_id,
                u.participant.to_string(),
                u.offset_ms,
                u.text,
            )
        })
        .collect();
    expected.sort();
    expected
}

/// Three days up to yesterday (recent calls: inside the 72 h transcript grace), every shape of
/// real traffic switched on at a high rate.
fn real_traffic(n: usize) -> SimConfig {
    let mut cfg = sim_config(n);
    cfg.start = chrono::Utc::now().date_naive() - chrono::Days::new(3);
    cfg.days = 3;
    cfg.untranscribed_rate = 0.05;
    cfg.faults.not_ready_rate = 0.1;
    cfg.job_polls = 1;
    cfg.traffic = simulator::Traffic {
        callback_rate: 0.3,
        transfer_rate: 0.3,
        gone_rate: 0.08,
        archived_rate: 0.1,
        recording_error_rate: 0.3,
        // Late calls are the last day's: half of them.
        late_rate: 0.5,
        late_for_secs: 2.0,
        ongoing_rate: 0.1,
        duplicate_recording_rate: 0.2,
        transcript_url_rate_limit: Some(600),
        ..simulator::Traffic::MIX
    };
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_traffic_stages_every_utterance_once_and_names_every_missing_text() {
    let cfg = real_traffic(240);
    let sim = start_sim(cfg.clone()).await;
    let lake = TestLake::new();
    let (from, to) = (cfg.start.to_string(), last_day(&cfg));
    let end = cfg.start + chrono::Days::new(u64::from(cfg.days));
    let all = ["voice", "chat", "email", "message"];
    let gen = simulator::Generator::new(&cfg);
    let shapes = simulator::shape_counts(&cfg, cfg.start, end);
    assert!(
        shapes.callbacks > 3 && shapes.transfers > 3 && shapes.late > 2 && shapes.ongoing > 0,
        "{shapes:?}"
    );
    // The day's fetch, as a user types it.
    let args = [
        "fetch",
        "--api-url",
        sim.url.as_str(),
        "--from",
        from.as_str(),
        "--to",
        to.as_str(),
        "--not-ready-wait",
        "0.05",
    ];
    let err = fetch_ok(&lake, &args).await;
    assert!(err.contains("transcript pending: "), "{err}");
    assert!(
        err.contains(
            "have no Speech & Text Analytics transcript yet; every later fetch asks for them again"
        ),
        "{err}"
    );
    // Before the late transcripts exist, the lake lacks them.
    assert!(staged_utterances(&lake).await.len() < expected_utterances(&cfg).len());
    // The next scheduled fetch, once they exist: it lists only the last day again, and asks
    // for every pending transcript whatever its range.
    tokio::time::sleep(Duration::from_secs_f64(cfg.traffic.late_for_secs + 0.5)).await;
    let err = fetch_ok(
        &lake,
        &["fetch", "--api-url", sim.url.as_str(), "--since-last"],
    )
    .await;
    assert!(err.contains("1 intervals"), "{err}");

    // Every utterance the simulator made is staged exactly once: transferred legs and their
    // agents' copies of the same recording, a session recorded twice, IVR phrases as `ivr`.
    let expected = expected_utterances(&cfg);
    let staged = staged_utterances(&lake).await;
    assert_eq!(staged.len(), expected.len());
    assert!(
        staged == expected,
        "the staged utterances differ from the simulator's"
    );
    assert!(staged.iter().any(|u| u.1 == "ivr"));

    // Every conversation without text is counted under its reason.
    let now = chrono::Utc::now();
    let index: BTreeMap<String, usize> = (0..gen.len()).map(|i| (gen.id(i), i)).collect();
    let mut want: BTreeMap<String, String> =
        simulator::expected_missing(&cfg, cfg.start, end, &all)
            .into_iter()
            .map(|(id, reason)| {
                let reason = match reason {
                    // No STA transcript: pending inside the 72 h grace, then untranscribed.
                    "404" if gen.end(index[&id]) + chrono::Duration::hours(72) > now => {
                        "transcript-pending".to_string()
                    }
                    "404" => "untranscribed".to_string(),
                    other => other.to_string(),
                };
                (id, reason)
            })
            .collect();
    for i in 0..gen.len() {
        if gen.shape(i).ongoing {
            want.insert(gen.id(i), "ongoing".into());
        }
    }
    assert_eq!(held_without_text(&lake).await, want);
    let by_reason = want
        .values()
        .fold(BTreeMap::<&str, u64>::new(), |mut m, r| {
            *m.entry(r.as_str()).or_default() += 1;
            m
        });
    for reason in [
        "gone",
        "archived",
        "error:EMAIL_TRANSCRIPT_TOO_LARGE",
        "ongoing",
    ] {
        assert!(
            by_reason.get(reason).copied().unwrap_or(0) > 0,
            "{by_reason:?}"
        );
    }
    // `verify` counts them too.
    let report = lake.ok(&["verify"]).await;
    let gone = format!("gone: {}", by_reason["gone"]);
    assert!(report.contains(&gone), "{report}");

    // Callbacks are voice, with subtype `callback`.
    let mut callbacks: Vec<String> = simulator::callbacks(&cfg, cfg.start, end)
        .into_iter()
        .filter(|id| !want.contains_key(id))
        .collect();
    callbacks.sort();
    let staged_callbacks = lake
        .query_lines(
            "SELECT DISTINCT conversation_id FROM utterances WHERE subtype = 'callback' AND interaction_type = 'voice' ORDER BY 1",
        )
        .await;
    assert_eq!(staged_callbacks, callbacks);
    // And the counts are the ground truth's.
    assert_eq!(counts(&lake).await, truth_rows(&cfg));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_without_the_sta_permission_reads_every_transcript_through_transcripturls() {
    let mut cfg = real_traffic(120);
    cfg.traffic.sta_permission = false;
    cfg.traffic.late_rate = 0.0;
    // A tight limit on the transcript endpoints, alongside the per-token one.
    cfg.traffic.transcript_url_rate_limit = Some(120);
    let sim = start_sim(cfg.clone()).await;
    let lake = TestLake::new();
    let (from, to) = (cfg.start.to_string(), last_day(&cfg));
    let args = [
        "fetch",
        "--api-url",
        sim.url.as_str(),
        "--from",
        from.as_str(),
        "--to",
        to.as_str(),
        "--not-ready-wait",
        "0.05",
    ];
    let err = fetch_ok(&lake, &args).await;
    // Said once, with the permission to add, and the run carries on with the plural endpoint.
    assert_eq!(
        err.matches("this run asks transcripturls instead").count(),
        1,
        "{err}"
    );
    assert!(err.contains("speechAndTextAnalytics:data:view"), "{err}");
    assert!(!err.contains("no permission"), "{err}");
    assert_eq!(staged_utterances(&lake).await, expected_utterances(&cfg));
    assert_eq!(counts(&lake).await, truth_rows(&cfg));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oauth_refusal_is_one_line_that_says_what_to_check() {
    let mut cfg = sim_config(10);
    cfg.traffic.oauth_errors = true;
    let sim = start_sim(cfg.clone()).await;
    let lake = TestLake::new();
    let out = lake
        .run_env(
            &[
                "fetch",
                "--api-url",
                sim.url.as_str(),
                "--from",
                START,
                "--to",
                START,
            ],
            &[("GENESYS_CLIENT_SECRET", "not-the-secret-42")],
        )
        .await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let line = err
        .lines()
        .find(|l| l.contains("refused"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        line.contains("invalid_client: authentication failed"),
        "{line}"
    );
    assert!(
        line.contains("check the client id and secret") && line.contains("region"),
        "{line}"
    );
    assert!(
        !err.contains("not-the-secret-42"),
        "the secret leaked: {err}"
    );
    assert!(!err.contains("error_description"), "raw OAuth body: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_pages_hold_a_thousand_conversations_staged_in_batches() {
    let mut cfg = config(2_300, 7);
    cfg.untranscribed_rate = 0.0;
    cfg.faults.not_ready_rate = 0.0;
    let sim = start_sim(cfg.clone()).await;
    let lake = TestLake::new();
    let to = last_day(&cfg);
    // A page size the API does not serve is refused before any request, with the limit.
    for (extra, limit) in [
        (
            vec!["--listing", "query", "--page-size", "500"],
            "at most 100",
        ),
        (vec!["--page-size", "5000"], "1..=1000"),
    ] {
        let out = lake.run(&fetch_args(&sim, &to, &extra)).await;
        assert!(!out.status.success());
        assert!(stderr(&out).contains(limit), "{}", stderr(&out));
    }
    assert_eq!(sim.stats().api_requests, 0);
    fetch_ok(&lake, &fetch_args(&sim, &to, &[])).await;
    let events = lake.events().await;
    let pages = events
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                convlake::lake::events::EventKind::ListingPage { .. }
            )
        })
        .count();
    let snapshots = events
        .iter()
        .filter(|e| matches!(e.kind, convlake::lake::events::EventKind::Snapshot { .. }))
        .count();
    // 2,300 conversations in one 7-day interval: 3 listing pages (1,000 a page, not 46 of
    // 50), staged as 23 batches of 100.
    assert_eq!(pages, 3);
    assert_eq!(snapshots, 23);
    assert_eq!(sim.stats().job_intervals.len(), 1);
    assert_eq!(counts(&lake).await, truth_rows(&cfg));
    // Nothing is staged twice.
    let err = fetch_ok(&lake, &fetch_args(&sim, &to, &[])).await;
    assert!(err.contains("0 new snapshots"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_results_hold_what_the_data_lake_has_and_a_later_fetch_completes_the_range() {
    let mut cfg = config(200, 8);
    cfg.untranscribed_rate = 0.0;
    let available =
        chrono::NaiveDate::parse_from_str(START, "%Y-%m-%d").unwrap() + chrono::Days::new(5);
    cfg.data_availability = Some(available.and_hms_opt(0, 0, 0).unwrap().and_utc());
    let to = last_day(&cfg);
    let lake = TestLake::new();
    let sim = start_sim(cfg.clone()).await;
    let err = fetch_ok(&lake, &fetch_args(&sim, &to, &["--interval-days", "1"])).await;
    assert!(err.contains("dataAvailabilityDate"), "{err}");
    // Only what the analytics data lake held: fewer than all conversations.
    assert_ne!(counts(&lake).await, truth_rows(&cfg));
    sim.shutdown().await;
    // Later the data lake has caught up; the scheduled fetch lists from the last complete
    // interval on.
    cfg.data_availability = None;
    let sim = start_sim(cfg.clone()).await;
    let url = sim.url.clone();
    let err = fetch_ok(
        &lake,
        &[
            "fetch",
            "--api-url",
            url.as_str(),
            "--since-last",
            "--to",
            to.as_str(),
            "--interval-days",
            "1",
            "--not-ready-wait",
            "0.05",
        ],
    )
    .await;
    assert!(
        err.contains("2026-03-05T00:00:00Z to 2026-03-09T00:00:00Z"),
        "{err}"
    );
    assert_eq!(counts(&lake).await, truth_rows(&cfg));
}
