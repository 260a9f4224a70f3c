//! Scaling out: the lake on an S3-compatible object store (moto's S3 server on loopback), two
//! writers on one lake, the sharded extract, and DuckDB reading the lake.
//!
//! The S3 tests need moto (`pip install 'moto[server]'`) and duckdb in a Python environment
//! named by `CONVLAKE_TEST_S3_PYTHON`; `scripts/test` installs both into `target/s3-venv`.

mod common;

use std::collections::BTreeMap;
use std::process::Output;
use std::sync::Arc;

use common::*;
use convlake::lake::Lake;
use futures::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

const ACCESS_KEY: &str = "convlake-test-key";
/// A marker that must never appear in any output: see `no_secret_in`.
const SECRET_KEY: &str = "s3-secret-Zq9vXw1y";

fn python() -> String {
    std::env::var("CONVLAKE_TEST_S3_PYTHON").expect(
        "CONVLAKE_TEST_S3_PYTHON is not set: run the suite with scripts/test, which installs moto and duckdb into target/s3-venv",
    )
}

/// moto's S3 server on a free loopback port (tests/support/moto_s3.py), stopped on drop.
struct Moto {
    child: std::process::Child,
    endpoint: String,
    /// convlake's local work directory for these lakes (CONVLAKE_WORK_DIR), removed on drop.
    work: tempfile::TempDir,
}

impl Moto {
    fn start() -> Moto {
        use std::io::BufRead;
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/moto_s3.py");
        let mut child = std::process::Command::new(python())
            .arg(script)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the S3 test server starts (CONVLAKE_TEST_S3_PYTHON with moto installed)");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("moto_s3.py printed {line:?}, not a port"));
        Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            work: tempfile::tempdir().unwrap(),
        }
    }

    /// The environment convlake reads its S3 settings from.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_string()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_string()),
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("CONVLAKE_WORK_DIR", self.work.path().display().to_string()),
        ]
    }

    /// A store for one bucket, built here (not from the environment) for the test's own checks.
    fn store(&self, bucket: &str) -> AmazonS3 {
        AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region("us-east-1")
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_access_key_id(ACCESS_KEY)
            .with_secret_access_key(SECRET_KEY)
            .build()
            .unwrap()
    }

    /// Creates a bucket (moto accepts an unsigned `PUT /bucket`).
    async fn bucket(&self, name: &str) {
        let r = reqwest::Client::new()
            .put(format!("{}/{name}", self.endpoint))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "creating bucket {name}: {r:?}");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `convlake --lake <lake> args…` with the S3 settings and test credentials.
async fn convlake(lake: &str, args: &[&str], env: &[(&str, String)]) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_convlake"));
    cmd.arg("--lake").arg(lake).args(args);
    for k in [
        "DATABASE_URL",
        "POSTGRES_CONNECTION_STRING",
        "DASHBOARD_API_URL",
        "CONVLAKE_LAKE",
        "CONVLAKE_DICTIONARY",
        "CONVLAKE_SHARD",
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL_S3",
        "AWS_ENDPOINT",
    ] {
        cmd.env_remove(k);
    }
    cmd.env("GENESYS_CLIENT_ID", CLIENT_ID)
        .env("GENESYS_CLIENT_SECRET", CLIENT_SECRET);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    let out = cmd.output().await.expect("the convlake binary runs");
    no_secret_in(&format!("convlake {args:?}"), &out);
    out
}

async fn ok(lake: &str, args: &[&str], env: &[(&str, String)]) -> String {
    let out = convlake(lake, args, env).await;
    assert!(
        out.status.success(),
        "convlake --lake {lake} {args:?} failed ({:?}):\n{}",
        out.status.code(),
        stderr(&out)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The S3 secret key never reaches stdout or stderr.
fn no_secret_in(what: &str, out: &Output) {
    for (name, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        assert!(
            !String::from_utf8_lossy(bytes).contains(SECRET_KEY),
            "{what}: {name} contains the S3 secret key"
        );
    }
}

const MENTION_COUNTS: &str = "SELECT conversation_date, interaction_type, product, mentions, conversations FROM mention_counts ORDER BY 1, 2, 3";

fn csv_lines(csv: &str) -> Vec<String> {
    csv.lines().skip(1).map(String::from).collect()
}

/// A simulator config without recordings that need asking twice (not what these tests are about).
fn sim(n: usize) -> convlake::simulator::SimConfig {
    let mut cfg = sim_config(n);
    cfg.faults.not_ready_rate = 0.0;
    cfg
}

const FROM: &str = "2026-03-01";
const TO: &str = "2026-03-10";

/// Every object under a prefix of a bucket: path → blake3 of the bytes.
async fn objects(store: &AmazonS3, prefix: &str) -> BTreeMap<String, String> {
    let metas: Vec<_> = store
        .list(Some(&StorePath::from(prefix)))
        .try_collect()
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for m in metas {
        let bytes = store.get(&m.location).await.unwrap().bytes().await.unwrap();
        out.insert(
            m.location.to_string(),
            blake3::hash(&bytes).to_hex().to_string(),
        );
    }
    out
}

/// The whole pipeline on an S3 lake gives the local lake's mention_counts (and the simulator's
/// ground truth), syncs them to PostgreSQL, writes the reports into the bucket, and verifies;
/// a damaged file is quarantined on S3 as on disk, and rebuilt by the next extract.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_on_s3_equals_the_local_lake_and_verifies() {
    let moto = Moto::start();
    moto.bucket("lake").await;
    let env = moto.env();
    let cfg = sim(300);
    let sim = start_sim(cfg.clone()).await;
    let fetch = ["fetch", "--api-url", &sim.url, "--from", FROM, "--to", TO];

    // The reference: a local lake.
    let local = TestLake::new();
    local.ok(&fetch).await;
    local.ok(&["extract"]).await;
    local.ok(&["aggregate"]).await;
    let want = local.mention_count_lines().await;
    assert!(!want.is_empty());

    let s3 = "s3://lake/teams/analytics";
    ok(s3, &fetch, &env).await;
    ok(s3, &["extract"], &env).await;
    ok(s3, &["aggregate"], &env).await;
    let got = csv_lines(&ok(s3, &["query", MENTION_COUNTS, "--format", "csv"], &env).await);
    assert_eq!(
        got, want,
        "mention_counts on S3 differ from the local lake's"
    );
    let totals = parse_totals(&ok(s3, &["query", TOTALS_SQL, "--format", "csv"], &env).await);
    assert_eq!(totals, truth(&cfg, start_date(), TO.parse().unwrap()));

    // Everything lives under the prefix, in the lake's layout; the raw snapshots are the
    // local lake's files, byte for byte.
    let store = moto.store("lake");
    let all = objects(&store, "").await;
    assert!(
        all.keys().all(|k| k.starts_with("teams/analytics/")),
        "{all:?}"
    );
    let raw_s3: Vec<(String, String)> = objects(&store, "teams/analytics/raw")
        .await
        .into_iter()
        .map(|(k, h)| (k.trim_start_matches("teams/analytics/").to_string(), h))
        .collect();
    assert_eq!(raw_s3, local.files("raw"));

    // Sync into a fresh schema: the table equals mention_counts.
    let schema = fresh_schema();
    let db = [
        ("DATABASE_URL", database_url()),
        ("CONVLAKE_DB_SCHEMA", schema.clone()),
    ];
    let env_db: Vec<(&str, String)> = env.iter().cloned().chain(db).collect();
    ok(s3, &["sync"], &env_db).await;
    assert_eq!(product_mentions_lines(&schema).await, want);
    let again = convlake(s3, &["sync"], &env_db).await;
    assert!(
        stderr(&again).contains("nothing to do"),
        "{}",
        stderr(&again)
    );

    // Reports go into the bucket (and --out keeps them local).
    ok(s3, &["report"], &env).await;
    ok(s3, &["export", "--dry-run"], &env).await;
    let reports = objects(&store, "teams/analytics/reports").await;
    for name in [
        "trend.png",
        "trend.svg",
        "share.png",
        "share.svg",
        "report.html",
        "dashboard.json",
    ] {
        assert!(
            reports.contains_key(&format!("teams/analytics/reports/{name}")),
            "{name} missing from {reports:?}"
        );
    }
    let out = tempfile::tempdir().unwrap();
    ok(s3, &["report", "--out", out.path().to_str().unwrap()], &env).await;
    assert!(out.path().join("report.html").is_file());

    // verify passes on the S3 lake.
    let v = ok(s3, &["verify"], &env).await;
    assert!(v.contains("the lake is sound"), "{v}");
    assert!(v.contains("s3://lake/teams/analytics/"), "{v}");

    // A damaged mentions file is moved to quarantine/ (copy + delete on S3), then rebuilt.
    let victim = reports_free_key(&all, "teams/analytics/mentions/");
    store
        .put(
            &StorePath::from(victim.as_str()),
            PutPayload::from_static(b"not parquet"),
        )
        .await
        .unwrap();
    let bad = convlake(s3, &["verify"], &env).await;
    assert_eq!(bad.status.code(), Some(1), "{}", stderr(&bad));
    let rel = victim.trim_start_matches("teams/analytics/");
    let moved = format!("teams/analytics/quarantine/{rel}");
    let after = objects(&store, "teams/analytics").await;
    assert!(after.contains_key(&moved), "{moved} not in {after:?}");
    assert!(!after.contains_key(&victim));
    ok(s3, &["extract"], &env).await;
    let rebuilt = store
        .get(&StorePath::from(victim.as_str()))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        Some(&blake3::hash(&rebuilt).to_hex().to_string()),
        all.get(&victim),
        "extract wrote the quarantined file again, byte for byte"
    );
    let v = ok(s3, &["verify"], &env).await;
    assert!(v.contains("the lake is sound"), "{v}");
    sim.shutdown().await;
}

/// The first key under `prefix`.
fn reports_free_key(all: &BTreeMap<String, String>, prefix: &str) -> String {
    all.keys()
        .find(|k| k.starts_with(prefix) && k.ends_with(".parquet"))
        .unwrap_or_else(|| panic!("no file under {prefix}"))
        .clone()
}

/// One event without what differs between runs (position, time, job ids and cursors).
fn event_key(e: &convlake::lake::Event) -> String {
    let mut v = serde_json::to_value(&e.kind).unwrap();
    if let Some(o) = v.as_object_mut() {
        o.remove("job");
        o.remove("next");
    }
    v.to_string()
}

/// Two fetches at once on one S3 lake (different interaction types) lose no event: the log holds
/// exactly the events of the same two fetches run one after the other on a local lake. And many
/// writers appending at once (each with its own idea of the next segment number) never
/// overwrite each other: create-if-absent works against the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_on_one_s3_lake_lose_no_event() {
    let moto = Moto::start();
    moto.bucket("shared").await;
    let env = moto.env();
    let sim = start_sim(sim(200)).await;
    let fetch = |media: &'static str| {
        vec![
            "fetch".to_string(),
            "--api-url".into(),
            sim.url.clone(),
            "--from".into(),
            FROM.into(),
            "--to".into(),
            TO.into(),
            "--media".into(),
            media.into(),
            "--page-size".into(),
            "10".into(),
        ]
    };
    let (a, b) = (fetch("voice,chat"), fetch("email,message"));
    fn args(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }

    let local = TestLake::new();
    local.ok(&args(&a)).await;
    local.ok(&args(&b)).await;
    let mut want: Vec<String> = local.events().await.iter().map(event_key).collect();
    want.sort();

    let s3 = "s3://shared/lake";
    let (aa, ba) = (args(&a), args(&b));
    let (ra, rb) = tokio::join!(convlake(s3, &aa, &env), convlake(s3, &ba, &env));
    assert!(ra.status.success(), "{}", stderr(&ra));
    assert!(rb.status.success(), "{}", stderr(&rb));
    let lake = Lake::on_store(s3, Arc::new(moto.store("shared"))).unwrap();
    let events = lake.events().read_all().await.unwrap();
    let mut got: Vec<String> = events.iter().map(event_key).collect();
    got.sort();
    assert_eq!(got.len(), want.len());
    assert_eq!(got, want);

    // Eight writers, ten appends each, all at once.
    let mut tasks = Vec::new();
    for w in 0..8 {
        let lake = Lake::on_store(s3, Arc::new(moto.store("shared"))).unwrap();
        tasks.push(tokio::spawn(async move {
            let log = lake.events();
            for i in 0..10 {
                log.append(vec![convlake::lake::EventKind::FetchStarted {
                    source: format!("writer-{w}"),
                    runs: vec![i.to_string()],
                }])
                .await
                .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let after = lake.events().read_all().await.unwrap();
    let started: std::collections::BTreeSet<String> = after
        .iter()
        .filter_map(|e| match &e.kind {
            convlake::lake::EventKind::FetchStarted { source, runs } => {
                Some(format!("{source}/{}", runs[0]))
            }
            _ => None,
        })
        .collect();
    assert_eq!(started.len(), 80, "appends were lost");
    assert_eq!(after.len(), events.len() + 80);
    sim.shutdown().await;
}

/// DuckDB reads the lake's files (downloaded from the S3 server: its httpfs extension would be
/// downloaded from extensions.duckdb.org, which tests do not use) and gets convlake's numbers:
/// `mention_counts` as written, and `mentions` with the current-copy rule applied from the
/// event log and the raw snapshots, as in sql/current_copies.sql.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duckdb_reads_the_s3_lake_with_the_same_counts() {
    let moto = Moto::start();
    moto.bucket("duck").await;
    let env = moto.env();
    let sim = start_sim(sim(200)).await;
    let s3 = "s3://duck/lake";
    // Two overlapping archive fetches (each page is stored whole): some conversations are
    // staged twice, so the current-copy rule matters.
    for (from, to) in [(FROM, "2026-03-06"), ("2026-03-04", TO)] {
        ok(
            s3,
            &[
                "fetch",
                "--source",
                "archive",
                "--api-url",
                &sim.url,
                "--from",
                from,
                "--to",
                to,
            ],
            &env,
        )
        .await;
    }
    ok(s3, &["extract"], &env).await;
    ok(s3, &["aggregate"], &env).await;
    sim.shutdown().await;

    let by_product = |sql: &str| sql.to_string();
    let ours_counts = parse_totals(
        &ok(
            s3,
            &[
                "query",
                &by_product("SELECT product, SUM(mentions) AS n FROM mention_counts GROUP BY product ORDER BY product"),
                "--format",
                "csv",
            ],
            &env,
        )
        .await,
    );
    let ours_mentions = parse_totals(
        &ok(
            s3,
            &[
                "query",
                "SELECT product, COUNT(*) AS n FROM mentions GROUP BY product ORDER BY product",
                "--format",
                "csv",
            ],
            &env,
        )
        .await,
    );
    assert_eq!(ours_counts, ours_mentions);
    let staged_twice = parse_totals(
        &ok(
            s3,
            &[
                "query",
                "SELECT 'x' AS k, COUNT(*) AS n FROM (SELECT conversation_id FROM raw GROUP BY conversation_id HAVING COUNT(DISTINCT snapshot) > 1)",
                "--format",
                "csv",
            ],
            &env,
        )
        .await,
    );
    assert!(staged_twice["x"] > 0, "the fetches overlap");

    // A local copy of the lake, through the object store.
    let copy = tempfile::tempdir().unwrap();
    let store = moto.store("duck");
    let metas: Vec<_> = store
        .list(Some(&StorePath::from("lake")))
        .try_collect()
        .await
        .unwrap();
    for m in metas {
        let rel = m.location.as_ref().trim_start_matches("lake/");
        let dest = copy.path().join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        let bytes = store.get(&m.location).await.unwrap().bytes().await.unwrap();
        std::fs::write(dest, bytes).unwrap();
    }
    let script = r#"
import duckdb, sys, json
root = sys.argv[1]
con = duckdb.connect()
# The generation in force: the mention_counts file the latest `aggregated` event names.
current = con.sql(f"""
    SELECT mention_counts FROM read_json('{root}/events/*.jsonl', format='newline_delimited', union_by_name=true)
    WHERE kind = 'aggregated' ORDER BY seq DESC, "index" DESC LIMIT 1""").fetchall()[0][0]
counts = con.sql(f"""
    SELECT product, SUM(mentions) FROM read_parquet('{root}/{current}')
    GROUP BY product ORDER BY product""").fetchall()
# The current copy of each conversation: the snapshot recorded first at the highest log
# position (sql/current_copies.sql), from events/*.jsonl and the raw snapshots.
mentions = con.sql(f"""
    WITH ev AS (
        SELECT snapshot, MIN(seq) AS seq
        FROM read_json('{root}/events/*.jsonl', format='newline_delimited', union_by_name=true)
        WHERE kind = 'snapshot' GROUP BY snapshot),
    copies AS (
        SELECT DISTINCT conversation_id, snapshot FROM read_parquet('{root}/raw/*/*.parquet')),
    ranked AS (
        SELECT c.conversation_id, c.snapshot,
               ROW_NUMBER() OVER (PARTITION BY c.conversation_id ORDER BY ev.seq DESC, c.snapshot DESC) AS r
        FROM copies c JOIN ev USING (snapshot))
    SELECT m.product, COUNT(*)
    FROM read_parquet('{root}/mentions/*/*.parquet') m
    JOIN ranked USING (conversation_id, snapshot)
    WHERE ranked.r = 1
    GROUP BY m.product ORDER BY m.product""").fetchall()
print(json.dumps({"counts": {p: int(n) for p, n in counts}, "mentions": {p: int(n) for p, n in mentions}}))
"#;
    let out = std::process::Command::new(python())
        .args(["-c", script])
        .arg(copy.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "duckdb: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let read = |k: &str| -> BTreeMap<String, u64> {
        v[k].as_object()
            .unwrap()
            .iter()
            .map(|(p, n)| (p.clone(), n.as_u64().unwrap()))
            .collect()
    };
    assert_eq!(read("counts"), ours_counts, "mention_counts read by DuckDB");
    assert_eq!(read("mentions"), ours_mentions, "mentions read by DuckDB");
}

/// `extract --shard i/n` in three processes at once writes exactly the files one extract writes,
/// the aggregate is byte-identical, and a shard run again does nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_shards_in_parallel_equal_one_extract() {
    let sim = start_sim(sim(300)).await;
    let single = TestLake::new();
    single
        .ok(&[
            "fetch",
            "--api-url",
            &sim.url,
            "--from",
            FROM,
            "--to",
            TO,
            "--page-size",
            "10",
        ])
        .await;
    sim.shutdown().await;
    let sharded = TestLake::new();
    for f in all_files(single.path()) {
        let rel = f.strip_prefix(single.path()).unwrap();
        let dest = sharded.path().join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&f, dest).unwrap();
    }
    let snapshots = single.files("raw").len();
    assert!(snapshots >= 9, "enough snapshots to share: {snapshots}");

    single.ok(&["extract"]).await;
    let (a, b, c) = tokio::join!(
        sharded.run(&["extract", "--shard", "0/3"]),
        sharded.run(&["extract", "--shard", "1/3"]),
        sharded.run(&["extract", "--shard", "2/3"]),
    );
    let mut shares = 0;
    for (i, out) in [a, b, c].iter().enumerate() {
        assert!(out.status.success(), "shard {i}: {}", stderr(out));
        let err = stderr(out);
        assert!(err.contains(&format!("shard {i}/3")), "{err}");
        let n: usize = err
            .split(": ")
            .find_map(|p| p.split_once(" snapshots extracted, 0 already done"))
            .and_then(|(n, _)| n.parse().ok())
            .unwrap_or_else(|| panic!("shard {i}: {err}"));
        assert!(n > 0, "shard {i} got no snapshot");
        shares += n;
    }
    assert_eq!(shares, snapshots, "the shares cover every snapshot once");
    assert_eq!(sharded.files("mentions"), single.files("mentions"));

    // Each shard recorded its own extracted event.
    let shard_events: Vec<String> = sharded
        .events()
        .await
        .iter()
        .filter_map(|e| match &e.kind {
            convlake::lake::EventKind::Extracted { shard, .. } => shard.clone(),
            _ => None,
        })
        .collect();
    let mut sorted = shard_events.clone();
    sorted.sort();
    assert_eq!(sorted, ["0/3", "1/3", "2/3"]);

    single.ok(&["aggregate"]).await;
    sharded.ok(&["aggregate"]).await;
    assert_eq!(sharded.files("aggregates"), single.files("aggregates"));

    // A shard run again: nothing to do, nothing written, no event.
    let before = sharded.files("");
    let again = sharded.run(&["extract", "--shard", "1/3"]).await;
    assert!(again.status.success());
    assert!(
        stderr(&again).contains(": 0 snapshots extracted"),
        "{}",
        stderr(&again)
    );
    assert_eq!(sharded.files(""), before);
}

#[tokio::test]
async fn bad_shards_are_usage_errors_that_say_what_to_give() {
    let lake = TestLake::new();
    for (bad, says) in [
        ("3/3", "the index is 0 to 2"),
        ("1/0", "at least 1"),
        ("x/3", "not a whole number"),
        ("2", "INDEX/COUNT"),
        ("-1/3", "not a whole number"),
    ] {
        let out = lake.run(&["extract", &format!("--shard={bad}")]).await;
        assert_eq!(
            out.status.code(),
            Some(2),
            "--shard {bad}: {}",
            stderr(&out)
        );
        let err = stderr(&out);
        assert!(err.contains("--shard"), "{err}");
        assert!(err.contains(says), "--shard {bad}: {err}");
        assert!(err.contains("e.g. --shard 0/3"), "{err}");
    }
}

/// A lake URL convlake cannot use is an error naming it and what --lake takes.
#[tokio::test]
async fn unsupported_lake_urls_say_what_is_supported() {
    let out = convlake("ftp://host/lake", &["verify"], &[]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("ftp://host/lake"), "{err}");
    assert!(err.contains("s3://bucket/prefix"), "{err}");
}

/// Failures on S3 name the lake and what to do, and never print the secret key (checked on
/// every run by `convlake`): a bucket that does not exist, and a store configured without
/// create-if-absent writes, which the event log refuses to race.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_failures_are_clear_and_keep_the_secret() {
    let moto = Moto::start();
    moto.bucket("there").await;
    let env = moto.env();

    let out = convlake("s3://not-there/lake", &["extract"], &env).await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("s3://not-there/lake/"), "{err}");
    assert!(err.contains("the bucket name"), "{err}");

    let sim = start_sim(sim(20)).await;
    let mut no_cas = env.clone();
    no_cas.push(("AWS_CONDITIONAL_PUT", "disabled".to_string()));
    let out = convlake(
        "s3://there/lake",
        &[
            "fetch",
            "--source",
            "archive",
            "--api-url",
            &sim.url,
            "--from",
            FROM,
            "--to",
            TO,
        ],
        &no_cas,
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("create-if-absent"), "{err}");
    assert!(err.contains("s3://there/lake/"), "{err}");
    sim.shutdown().await;
}

/// `aggregate --engine ballista` on a cluster of processes (a scheduler and two executors)
/// that read an S3 lake through their own environment: the aggregates written to the bucket
/// are the local engine's, byte for byte, and the secret appears in no output.
#[cfg(feature = "ballista")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ballista_executors_read_the_s3_lake_and_write_the_local_engines_bytes() {
    let moto = Moto::start();
    moto.bucket("lake").await;
    let env = moto.env();
    let cfg = sim(300);
    let sim = start_sim(cfg.clone()).await;
    let s3 = "s3://lake/replay";
    ok(
        s3,
        &["fetch", "--api-url", &sim.url, "--from", FROM, "--to", TO],
        &env,
    )
    .await;
    sim.shutdown().await;
    ok(s3, &["extract"], &env).await;
    ok(s3, &["aggregate"], &env).await;
    let store = moto.store("lake");
    let local = objects(&store, "replay/aggregates").await;
    // A file per table of the generation.
    assert_eq!(local.len(), 6, "{local:?}");
    for key in local.keys() {
        store.delete(&StorePath::from(key.as_str())).await.unwrap();
    }
    assert!(objects(&store, "replay/aggregates").await.is_empty());

    // Each node reads the bucket through its own environment, and serves only this lake.
    let mut env_nodes: Vec<(String, String)> = moto
        .env()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    env_nodes.push(("CONVLAKE_LAKE".to_string(), s3.to_string()));
    let cluster = start_cluster(2, env_nodes).await;
    let out = convlake(
        s3,
        &[
            "aggregate",
            "--engine",
            "ballista",
            "--scheduler",
            &cluster.df_url(),
        ],
        &env,
    )
    .await;
    assert_aggregated_on(&cluster, &out);
    no_secret_in("aggregate --engine ballista", &out);
    assert!(
        !cluster.logs().contains(SECRET_KEY),
        "the secret key is in a node's log"
    );
    assert_eq!(
        objects(&store, "replay/aggregates").await,
        local,
        "Ballista's aggregates on S3 differ from the local engine's"
    );
    let totals = parse_totals(&ok(s3, &["query", TOTALS_SQL, "--format", "csv"], &env).await);
    assert_eq!(totals, truth(&cfg, start_date(), TO.parse().unwrap()));
}
