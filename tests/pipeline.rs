//! The whole pipeline against the simulator and a real PostgreSQL, checked against the
//! simulator's ground truth.

mod common;

use common::*;
use tokio_postgres::NoTls;

async fn pg(schema: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&database_url(), NoTls)
        .await
        .expect("TEST_DATABASE_URL accepts connections");
    tokio::spawn(conn);
    client
        .batch_execute(&format!("SET search_path TO \"{schema}\""))
        .await
        .unwrap();
    client
}

/// (product, mentions, xmin) of every row: xmin changes whenever a row is rewritten.
async fn pg_rows(schema: &str) -> Vec<(String, String, String, i64, String)> {
    pg(schema)
        .await
        .query(
            "SELECT recorded_date::text, interaction_type, product_name, mention_count::bigint, xmin::text
             FROM product_mentions ORDER BY 1, 2, 3",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_matches_ground_truth_and_reruns_change_nothing() {
    let cfg = sim_config(300);
    let sim = start_sim(cfg.clone()).await;
    let lake = TestLake::new();
    let (from, to) = ("2026-03-01", "2026-03-10");

    let out = lake.fetch(&sim, from, to).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let raw_before = lake.files("raw");
    assert!(!raw_before.is_empty());
    lake.ok(&["extract"]).await;
    lake.ok(&["aggregate"]).await;

    let expected = truth(&cfg, start_date(), "2026-03-10".parse().unwrap());
    assert!(
        expected.values().sum::<u64>() > 100,
        "the simulator mentions products"
    );
    assert_eq!(lake.totals().await, expected);

    // Per day, interaction type and product too, with distinct conversations.
    let gt = convlake::simulator::ground_truth(
        &cfg,
        start_date(),
        "2026-03-11".parse().unwrap(),
        &["voice", "chat", "email", "message"],
    );
    let csv = lake
        .ok(&[
            "query",
            "SELECT conversation_date, interaction_type, product, mentions, conversations FROM mention_counts ORDER BY 1, 2, 3",
            "--format",
            "csv",
        ])
        .await;
    let got: Vec<String> = csv.lines().skip(1).map(String::from).collect();
    let want: Vec<String> = gt
        .rows
        .iter()
        .map(|((d, t, p), (m, c))| format!("{d},{t},{p},{m},{c}"))
        .collect();
    assert_eq!(got, want);

    // A second fetch of the same range stores no new file.
    let out = lake.fetch(&sim, from, to).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(" 0 new snapshots"),
        "{}",
        stderr(&out)
    );
    assert_eq!(lake.files("raw"), raw_before);
    // Extract skips what it has done.
    let out = lake.run(&["extract"]).await;
    assert!(
        stderr(&out).contains("0 snapshots extracted"),
        "{}",
        stderr(&out)
    );

    // Sync, then a second sync changes no row.
    let schema = fresh_schema();
    let url = database_url();
    let sync = ["sync", "--database-url", &url, "--schema", &schema];
    lake.ok(&sync).await;
    let rows = pg_rows(&schema).await;
    let mut db_totals = std::collections::BTreeMap::<String, u64>::new();
    for r in &rows {
        *db_totals.entry(r.2.clone()).or_default() += r.3 as u64;
    }
    assert_eq!(db_totals, expected);
    let out = lake.run(&sync).await;
    assert!(out.status.success());
    assert!(stderr(&out).contains("nothing to do"), "{}", stderr(&out));
    assert_eq!(pg_rows(&schema).await, rows, "no row was rewritten");

    // The schema has the contract's primary key and indexes, and migrations are recorded.
    let c = pg(&schema).await;
    let idx = first_column(
        &c,
        "SELECT indexname::text FROM pg_indexes WHERE schemaname = $1 AND tablename = 'product_mentions' ORDER BY 1",
        &[&schema],
    )
    .await;
    for contract in [
        "idx_mentions_date",
        "idx_mentions_type_product",
        "product_mentions_pkey",
    ] {
        assert!(idx.iter().any(|i| i == contract), "{contract} in {idx:?}");
    }
    let migrations: i64 = c
        .query_one("SELECT count(*) FROM convlake_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(migrations, convlake::sync::MIGRATIONS.len() as i64);

    // Report and export dry run.
    lake.ok(&["report"]).await;
    for f in ["reports/trend.png", "reports/trend.svg"] {
        let len = std::fs::metadata(lake.path().join(f)).unwrap().len();
        assert!(len > 5_000, "{f} is {len} bytes");
    }
    lake.ok(&["export", "--dry-run"]).await;
    let payload: serde_json::Value =
        serde_json::from_slice(&std::fs::read(lake.path().join("reports/dashboard.json")).unwrap())
            .unwrap();
    assert_eq!(payload["title"], "Genesys Cloud Product Mention Insights");
    let total: u64 = payload["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["mention_count"].as_u64().unwrap())
        .sum();
    assert_eq!(total, expected.values().sum::<u64>());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_fetches_count_each_conversation_once() {
    let cfg = sim_config(200);
    let sim = start_sim(cfg.clone()).await;
    let lake = TestLake::new();
    for (from, to) in [("2026-03-01", "2026-03-06"), ("2026-03-04", "2026-03-10")] {
        let out = lake.fetch(&sim, from, to).await;
        assert!(out.status.success(), "{}", stderr(&out));
    }
    lake.ok(&["extract"]).await;
    lake.ok(&["aggregate"]).await;
    assert_eq!(
        lake.totals().await,
        truth(&cfg, start_date(), "2026-03-10".parse().unwrap())
    );
    let n = lake
        .ok(&[
            "query",
            "SELECT COUNT(DISTINCT conversation_id) AS n FROM utterances",
            "--format",
            "csv",
        ])
        .await;
    assert_eq!(n.lines().nth(1), Some("200"));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_page_is_a_clear_error_and_a_rerun_resumes() {
    let mut cfg = sim_config(300);
    cfg.faults.malformed_page = Some(1);
    let sim = start_sim(cfg.clone()).await;
    let lake = TestLake::new();
    // The window and listing pages of 50 sit in the file a user keeps their settings in, so
    // that the ten days take several pages and the second one is the bad one; only the
    // server's address (a new port after the restart) is given on the command line.
    let settings = tempfile::tempdir().unwrap();
    let file = settings.path().join("convlake.toml");
    std::fs::write(
        &file,
        "[fetch]\npage-size = 50\nfrom = \"2026-03-01\"\nto = \"2026-03-10\"\nmedia = [\"voice\"]\n",
    )
    .unwrap();
    let config = [("CONVLAKE_CONFIG", file.to_str().unwrap())];
    let out = lake
        .run_env(
            &["fetch", "--api-url", &sim.url, "--max-attempts", "2"],
            &config,
        )
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("not a valid page") && err.contains("re-run resumes"),
        "{err}"
    );
    // The page before the bad one is staged and recorded; the lake reads fine.
    let raw = lake.files("raw");
    assert_eq!(raw.len(), 1, "{raw:?}");
    lake.ok(&["query", "SELECT COUNT(*) FROM events"]).await;
    sim.shutdown().await;

    // The server recovers: the re-run continues at the failed page and completes.
    cfg.faults.malformed_page = None;
    let sim = start_sim(cfg.clone()).await;
    let out = lake
        .run_env(&["fetch", "--api-url", &sim.url], &config)
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("resumed"), "{}", stderr(&out));
    lake.ok(&["extract"]).await;
    lake.ok(&["aggregate"]).await;
    let want = convlake::simulator::ground_truth(
        &cfg,
        start_date(),
        "2026-03-11".parse().unwrap(),
        &["voice"],
    )
    .totals_by_product();
    assert_eq!(lake.totals().await, want);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_server_errors_are_retried() {
    let mut cfg = sim_config(150);
    cfg.faults.rate_429 = 0.15;
    cfg.faults.rate_500 = 0.15;
    let sim = start_sim(cfg.clone()).await;
    let lake = TestLake::new();
    let out = lake.fetch(&sim, "2026-03-01", "2026-03-10").await;
    assert!(out.status.success(), "{}", stderr(&out));
    lake.ok(&["extract"]).await;
    lake.ok(&["aggregate"]).await;
    assert_eq!(
        lake.totals().await,
        truth(&cfg, start_date(), "2026-03-10".parse().unwrap())
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_and_unreachable_servers_fail_clearly() {
    let sim = start_sim(sim_config(10)).await;
    let lake = TestLake::new();
    let out = lake
        .run_env(
            &[
                "fetch",
                "--api-url",
                &sim.url,
                "--from",
                "2026-03-01",
                "--to",
                "2026-03-02",
            ],
            &[("GENESYS_CLIENT_SECRET", "wrong-secret-xyz")],
        )
        .await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("refused") && err.contains("check the client id and secret"),
        "{err}"
    );
    assert!(
        !err.contains("wrong-secret-xyz"),
        "the secret leaked: {err}"
    );
    sim.shutdown().await;

    let out = lake
        .run(&[
            "fetch",
            "--api-url",
            "http://127.0.0.1:9",
            "--from",
            "2026-03-01",
            "--to",
            "2026-03-02",
            "--max-attempts",
            "2",
        ])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot reach"), "{}", stderr(&out));

    let out = lake
        .run_env(
            &["fetch", "--api-url", "http://127.0.0.1:9"],
            &[("GENESYS_CLIENT_ID", "")],
        )
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("GENESYS_CLIENT_ID"),
        "{}",
        stderr(&out)
    );

    // Usage errors exit 2.
    let out = lake.run(&["fetch", "--from", "yesterday"]).await;
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_dictionary_is_a_clear_error_and_changes_nothing() {
    let cfg = sim_config(100);
    let sim = start_sim(cfg).await;
    let lake = TestLake::new();
    assert!(lake
        .fetch(&sim, "2026-03-01", "2026-03-10")
        .await
        .status
        .success());
    lake.ok(&["extract"]).await;
    let before = lake.files("");
    let bad = lake.path().join("../bad-products.toml");
    std::fs::write(
        &bad,
        "[[product]]\nname = \"Acme Router\"\n\n[[product]]\nname = \"acme router\"\n",
    )
    .unwrap();
    let out = lake
        .run(&["--dictionary", bad.to_str().unwrap(), "extract"])
        .await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("bad-products.toml:5") && err.contains("duplicate"),
        "{err}"
    );
    assert_eq!(lake.files(""), before, "the lake is untouched");

    let out = lake
        .run(&["--dictionary", "/nonexistent/products.toml", "extract"])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("/nonexistent/products.toml"));
    std::fs::remove_file(bad).unwrap();
    sim.shutdown().await;
}

/// The replay workflow as a user types it: `extract --dictionary new.toml` once, then every
/// later stage without the flag follows the lake's current dictionary, says so, and
/// `dictionary use` switches back without re-extracting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dictionary_change_is_followed_by_every_later_stage_without_repeating_the_flag() {
    let cfg = sim_config(150);
    let sim = start_sim(cfg.clone()).await;
    let lake = TestLake::new();
    assert!(lake
        .fetch(&sim, "2026-03-01", "2026-03-10")
        .await
        .status
        .success());
    let url = database_url();
    let schema = fresh_schema();
    let db = [
        ("DATABASE_URL", url.as_str()),
        ("CONVLAKE_DB_SCHEMA", schema.as_str()),
    ];
    lake.ok(&["extract"]).await;
    lake.ok(&["aggregate"]).await;
    assert!(lake.run_env(&["sync"], &db).await.status.success());
    let full = truth(&cfg, start_date(), "2026-03-10".parse().unwrap());
    assert_eq!(lake.totals().await, full);
    let default_version = convlake::extract::Dictionary::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/products.toml"
    )))
    .unwrap()
    .version;

    // A dictionary with one product only, extracted once with the flag.
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("new.toml");
    std::fs::write(
        &small,
        "[[product]]\nname = \"Acme Router\"\naliases = [\"acme wifi router\"]\n",
    )
    .unwrap();
    let d = small.to_str().unwrap();
    let out = lake.run(&["--dictionary", d, "extract"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let new_version = convlake::extract::Dictionary::load(&small).unwrap().version;
    assert_ne!(new_version, default_version);
    // The copy of its content is in the lake, so the file can go away.
    std::fs::remove_file(&small).unwrap();

    // Every later stage, without the flag, names the new version first and follows it.
    for args in [
        vec!["aggregate"],
        vec!["report"],
        vec!["export", "--dry-run"],
    ] {
        let out = lake.run(&args).await;
        let err = stderr(&out);
        assert!(out.status.success(), "{args:?}: {err}");
        let first = err.lines().next().unwrap_or_default();
        assert!(
            first.contains(&new_version) && first.contains("current dictionary"),
            "{args:?}: the first line names the version: {err}"
        );
    }
    let out = lake.run_env(&["sync"], &db).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).lines().next().unwrap().contains(&new_version));
    let totals = lake.totals().await;
    assert_eq!(totals.len(), 1, "{totals:?}");
    assert_eq!(totals.get("Acme Router"), full.get("Acme Router"));
    let rows = pg_rows(&schema).await;
    assert!(
        !rows.is_empty() && rows.iter().all(|r| r.2 == "Acme Router"),
        "the database follows the new dictionary"
    );
    let sum: i64 = rows.iter().map(|r| r.3).sum();
    assert_eq!(sum as u64, full["Acme Router"]);
    let payload: serde_json::Value =
        serde_json::from_slice(&std::fs::read(lake.path().join("reports/dashboard.json")).unwrap())
            .unwrap();
    assert!(
        payload.to_string().contains(&new_version),
        "the dashboard payload names the new version"
    );
    assert_eq!(
        std::fs::read_dir(lake.path().join("mentions"))
            .unwrap()
            .count(),
        2
    );

    // `dictionary list` shows both, the new one current; `show` prints its content.
    let list = lake.ok(&["dictionary", "list"]).await;
    let current: Vec<&str> = list.lines().filter(|l| l.starts_with('*')).collect();
    assert_eq!(current.len(), 1, "{list}");
    assert!(current[0].contains(&new_version), "{list}");
    assert!(list.contains(&default_version), "{list}");
    let shown = lake.ok(&["dictionary", "show"]).await;
    assert!(
        shown.contains("Acme Router") && !shown.contains("Nimbus"),
        "{shown}"
    );

    // Switch back without re-extracting: its aggregates are still in the lake.
    let before = lake.files("mentions");
    lake.ok(&["dictionary", "use", &default_version[..8]]).await;
    assert_eq!(lake.files("mentions"), before, "nothing was re-extracted");
    assert_eq!(lake.totals().await, full);
    let out = lake.run_env(&["sync"], &db).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = pg_rows(&schema).await;
    let products: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.2.as_str()).collect();
    assert_eq!(products.len(), full.len(), "{products:?}");

    // A version never extracted, asked for explicitly, says which command to run.
    let other = dir.path().join("other.toml");
    std::fs::write(&other, "[[product]]\nname = \"Zed Phone\"\n").unwrap();
    let out = lake
        .run(&["--dictionary", other.to_str().unwrap(), "aggregate"])
        .await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("never extracted") && err.contains("convlake extract --dictionary"),
        "{err}"
    );
    let out = lake.run(&["dictionary", "use", "0123456789abcdef"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("dictionary list"), "{}", stderr(&out));
    sim.shutdown().await;
}

/// A mistyped lake path is an error for every command that reads a lake, and nothing is
/// created there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_lake_path_is_an_error_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("lkae");
    let w = wrong.to_str().unwrap();
    for args in [
        vec!["extract"],
        vec!["aggregate"],
        vec!["sync", "--database-url", "postgres://nobody@127.0.0.1:1/x"],
        vec!["report"],
        vec!["export", "--dry-run"],
        vec!["query", "SELECT 1"],
        vec!["candidates"],
        vec!["verify"],
        vec!["dictionary", "list"],
    ] {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_convlake"));
        cmd.arg("--lake").arg(w).args(&args);
        cmd.env_remove("CONVLAKE_LAKE")
            .env_remove("CONVLAKE_DICTIONARY")
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        let out = cmd.output().await.unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("no lake at") && err.contains("--lake"),
            "{args:?}: {err}"
        );
        assert!(!wrong.exists(), "{args:?} created {w}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_posts_with_retries_and_query_formats_work() {
    let cfg = sim_config(100);
    let sim = start_sim(cfg).await;
    let lake = TestLake::new();
    assert!(lake
        .fetch(&sim, "2026-03-01", "2026-03-10")
        .await
        .status
        .success());
    lake.ok(&["extract"]).await;
    lake.ok(&["aggregate"]).await;
    let receiver = convlake::report::start_receiver("127.0.0.1:0".parse().unwrap(), 2)
        .await
        .unwrap();
    let out = lake
        .run_env(
            &["export", "--dashboard-url", &receiver.url],
            &[("DASHBOARD_API_TOKEN", "tok-123")],
        )
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("after 3 attempt"), "{}", stderr(&out));
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].authorization.as_deref(), Some("Bearer tok-123"));
    assert!(got[0]
        .idempotency_key
        .as_deref()
        .unwrap()
        .starts_with("convlake-"));
    assert_eq!(got[0].body["type"], "line_chart");
    receiver.shutdown().await;

    let json = lake
        .ok(&["query", "SELECT product, SUM(mentions) AS m FROM mention_counts GROUP BY product ORDER BY product", "--format", "json"])
        .await;
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v.as_array().unwrap().len() >= 2);
    let table = lake
        .ok(&["query", "SELECT COUNT(*) AS n FROM mentions"])
        .await;
    assert!(
        table.lines().next().map(str::trim) == Some("n") && table.contains("(1 row)"),
        "{table}"
    );
    let out = lake.run(&["query", "SELECT nope FROM mentions"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("nope"), "{}", stderr(&out));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_every_stage_on_a_throwaway_cluster() {
    let lake = TestLake::new();
    let out = lake.run(&["demo", "--conversations", "200"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("matches the simulator's ground truth: yes"),
        "{stdout}"
    );
    // The report's movers, in words: 30 days of flat simulated products usually have none.
    let movers = stdout
        .lines()
        .find_map(|l| l.strip_prefix("movers:     "))
        .unwrap_or_else(|| panic!("no movers line: {stdout}"));
    assert!(
        movers.starts_with("none beyond chance") || movers.contains(" -> "),
        "{movers}"
    );
    assert!(
        stdout.contains(
            "rows were in convlake_demo.product_mentions (throwaway cluster, now removed"
        ),
        "{stdout}\n{}",
        stderr(&out)
    );
    for f in [
        "reports/trend.png",
        "reports/trend.svg",
        "reports/dashboard.json",
    ] {
        assert!(lake.path().join(f).is_file(), "{f}");
    }
    assert!(!lake.files("raw").is_empty());
    assert!(
        lake.path().join("convlake-demo.txt").is_file(),
        "the demo marks its lake"
    );
}

#[test]
fn every_command_has_help() {
    for cmd in [
        "simulate",
        "fetch",
        "extract",
        "aggregate",
        "sync",
        "migrate",
        "report",
        "export",
        "query",
        "run",
        "demo",
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_convlake"))
            .args([cmd, "--help"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{cmd} --help");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage: convlake"),
            "{cmd}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extract_and_aggregate_are_byte_identical_across_runs_and_lakes() {
    let cfg = sim_config(150);
    let sim = start_sim(cfg).await;
    let a = TestLake::new();
    let out = a.fetch(&sim, "2026-03-01", "2026-03-10").await;
    assert!(out.status.success(), "{}", stderr(&out));
    sim.shutdown().await;
    // A second lake holding the same snapshots (their rows and the documents stored with
    // them, which voice sentiment is read from) and event log.
    let b = TestLake::new();
    for sub in ["raw", "bodies", "events"] {
        copy_dir(&a.path().join(sub), &b.path().join(sub));
    }
    for lake in [&a, &b] {
        lake.ok(&["extract"]).await;
        lake.ok(&["aggregate"]).await;
    }
    let derived = |l: &TestLake| {
        let mut v = l.files("mentions");
        v.extend(l.files("topics"));
        v.extend(l.files("aggregates"));
        v
    };
    let first = derived(&a);
    assert!(first.len() > 2);
    // Every table of the generation is there: the topics too.
    for table in [
        "conversation_topics",
        "product_topics",
        "co_mentions",
        "product_insights",
    ] {
        assert!(
            first.iter().any(|(p, _)| p.contains(&format!("/{table}/"))),
            "{table}: {first:?}"
        );
    }
    assert_eq!(first, derived(&b), "two lakes from the same snapshots");
    // Extracting again from scratch writes the same bytes.
    std::fs::remove_dir_all(a.path().join("mentions")).unwrap();
    std::fs::remove_dir_all(a.path().join("topics")).unwrap();
    a.ok(&["extract"]).await;
    a.ok(&["aggregate"]).await;
    assert_eq!(derived(&a), first, "a second run");
    // A lake extracted and verified by a convlake from before sentiment and topics: mentions
    // files without the two sentiment columns, no topics files. The next `extract` does those
    // snapshots again, once, the result is the same as a fresh lake's, and `verify` takes the
    // rewritten mentions files for what they are.
    std::fs::remove_dir_all(a.path().join("topics")).unwrap();
    for (path, _) in a.files("mentions") {
        let file = a.path().join(&path);
        let batches =
            convlake::lake::schema::from_parquet(std::fs::read(&file).unwrap().into()).unwrap();
        let old: Vec<arrow::array::RecordBatch> = batches
            .iter()
            .map(|b| {
                b.project(&(0..b.num_columns() - 2).collect::<Vec<_>>())
                    .unwrap()
            })
            .collect();
        let schema = std::sync::Arc::new(
            convlake::lake::schema::mentions_schema()
                .project(&(0..11).collect::<Vec<_>>())
                .unwrap(),
        );
        let bytes = convlake::lake::schema::to_parquet(&schema, &old).unwrap();
        std::fs::write(&file, &bytes).unwrap();
    }
    a.ok(&["verify"]).await;
    let again = stderr(&a.run(&["extract"]).await);
    let snapshots = a.files("raw").len();
    assert!(
        again.contains(&format!(
            ": {snapshots} snapshots extracted, 0 already done"
        )),
        "{again}"
    );
    a.ok(&["aggregate"]).await;
    assert_eq!(derived(&a), first, "after the upgrade");
    let verify = a.ok(&["verify"]).await;
    assert!(
        verify.contains(&format!(
            "{snapshots} mentions files were extracted again since the last verify"
        )) && verify.contains("the lake is sound"),
        "{verify}"
    );
    let quiet = stderr(&a.run(&["extract"]).await);
    assert!(
        quiet.contains(&format!(
            ": 0 snapshots extracted, {snapshots} already done"
        )),
        "{quiet}"
    );
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// `aggregate` killed with SIGKILL at a dozen points, each followed by `sync`: the lake always
/// has one whole generation in force (the previous one until the new one is published), and
/// PostgreSQL always equals it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregate_killed_anywhere_leaves_one_consistent_generation() {
    let cfg = sim_config(300);
    let sim = start_sim(cfg.clone()).await;
    let lake = TestLake::new();
    let url = database_url();
    let schema = fresh_schema();
    let db = [
        ("DATABASE_URL", url.as_str()),
        ("CONVLAKE_DB_SCHEMA", schema.as_str()),
    ];
    let day = |d: u64| (start_date() + chrono::Days::new(d)).to_string();
    assert!(lake.fetch(&sim, &day(0), &day(0)).await.status.success());
    lake.ok(&["extract"]).await;
    // One whole run, to learn how long aggregate takes here.
    let started = std::time::Instant::now();
    lake.ok(&["aggregate"]).await;
    let whole = started.elapsed();
    assert!(lake.run_env(&["sync"], &db).await.status.success());
    let points = 12u32;
    for i in 1..=points {
        // The lake grows by a day, so each aggregate would publish a new generation.
        let d = u64::from(i % 10);
        assert!(lake.fetch(&sim, &day(d), &day(d)).await.status.success());
        lake.ok(&["extract"]).await;
        let mut child = lake.spawn_env(&["aggregate"], &[]);
        // From right after the start to past the end of a whole run.
        tokio::time::sleep(whole.mul_f64(f64::from(i) / f64::from(points - 2))).await;
        let _ = child.start_kill();
        let _ = child.wait().await;
        let out = lake.run_env(&["sync"], &db).await;
        assert!(out.status.success(), "point {i}: {}", stderr(&out));
        // The lake's generation in force and the database agree row for row.
        let lake_rows = lake
            .query_lines(
                "SELECT CAST(conversation_date AS VARCHAR), interaction_type, product, mentions FROM mention_counts ORDER BY 1, 2, 3",
            )
            .await;
        let db_rows: Vec<String> = pg_rows(&schema)
            .await
            .iter()
            .map(|r| format!("{},{},{},{}", r.0, r.1, r.2, r.3))
            .collect();
        assert_eq!(lake_rows, db_rows, "point {i}");
        let verify = lake.run(&["verify", "--dry-run"]).await;
        assert!(verify.status.success(), "point {i}: {}", stderr(&verify));
    }
    // Finished at last, the numbers are the ground truth of what was fetched.
    lake.ok(&["aggregate"]).await;
    assert!(lake.run_env(&["sync"], &db).await.status.success());
    assert_eq!(
        lake.totals().await,
        truth(&cfg, start_date(), start_date() + chrono::Days::new(9))
    );
    sim.shutdown().await;
}

/// A snapshot quarantined by `verify` is a known gap: `extract` with a new dictionary skips
/// it and says so, the next fetch stages it again, and the numbers then equal a fault-free run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantined_snapshot_is_a_gap_that_the_next_fetch_fills() {
    let cfg = sim_config(200);
    let sim = start_sim(cfg.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let new = dir.path().join("new.toml");
    std::fs::write(
        &new,
        "[[product]]\nname = \"Acme Router\"\n[[product]]\nname = \"Nimbus Hub\"\n",
    )
    .unwrap();
    let new = new.to_str().unwrap();
    let (from, to) = ("2026-03-01", "2026-03-10");

    let clean = TestLake::new();
    assert!(clean.fetch(&sim, from, to).await.status.success());
    clean.ok(&["--dictionary", new, "extract"]).await;
    clean.ok(&["aggregate"]).await;
    let expected = clean.mention_count_lines().await;
    assert!(!expected.is_empty());

    let lake = TestLake::new();
    assert!(lake.fetch(&sim, from, to).await.status.success());
    lake.ok(&["extract"]).await;
    let raw = all_files(&lake.path().join("raw"));
    let bytes = std::fs::read(&raw[0]).unwrap();
    std::fs::write(&raw[0], &bytes[..bytes.len() - 10]).unwrap();
    assert_eq!(lake.run(&["verify"]).await.status.code(), Some(1));
    assert!(!raw[0].exists(), "verify moved the damaged snapshot");

    // Extract with a new dictionary works, names the gap, and writes nothing for it.
    let out = lake.run(&["--dictionary", new, "extract"]).await;
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("skipped 1 recorded snapshot") && err.contains("convlake fetch"),
        "{err}"
    );
    let snap = raw[0].file_stem().unwrap().to_str().unwrap().to_string();
    let version = convlake::extract::Dictionary::load(std::path::Path::new(new))
        .unwrap()
        .version;
    let partition = lake.files(&format!("mentions/dict={version}"));
    assert!(!partition.is_empty());
    assert!(!partition.iter().any(|(f, _)| f.contains(&snap)));
    lake.ok(&["aggregate"]).await;

    // The next fetch stages its conversations again (the same page, or a new one when the rest
    // of the page is unchanged: then the quarantined snapshot is retired); extract and
    // aggregate then equal the fault-free run, and the gap is closed.
    assert!(lake.fetch(&sim, from, to).await.status.success());
    let out = lake.run(&["--dictionary", new, "extract"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("skipped"), "{}", stderr(&out));
    lake.ok(&["aggregate"]).await;
    assert_eq!(lake.mention_count_lines().await, expected);
    let out = lake.run(&["verify"]).await;
    assert!(
        out.status.success(),
        "the gap is closed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    sim.shutdown().await;
}

/// A database of its own in the test cluster (dropped by the caller): the demo's schema
/// `convlake_demo` then cannot meet another test's.
async fn fresh_database() -> (String, String) {
    let name = fresh_schema();
    let (admin, conn) = tokio_postgres::connect(&database_url(), NoTls)
        .await
        .expect("TEST_DATABASE_URL accepts connections");
    tokio::spawn(conn);
    admin
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
        .unwrap();
    let mut url = url::Url::parse(&database_url()).expect("TEST_DATABASE_URL is a URL");
    url.set_path(&format!("/{name}"));
    (name, url.to_string())
}

async fn drop_database(name: &str) {
    let (admin, conn) = tokio_postgres::connect(&database_url(), NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let _ = admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await;
}

/// Every row of `schema.product_mentions` in the database at `url`, as text, sorted.
async fn table_lines(url: &str, schema: &str) -> Vec<String> {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(conn);
    client
        .query(
            &format!(
                "SELECT concat_ws(',', recorded_date, interaction_type, product_name, mention_count, conversation_count)
                 FROM \"{schema}\".product_mentions ORDER BY 1"
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// `convlake demo …` as a cron user would type it, with their real-work settings exported and
/// no `--lake` on the command line, from `cwd`.
async fn demo_with_env(
    cwd: &std::path::Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_convlake"));
    cmd.args(extra)
        .args(["demo", "--conversations", "200", "--days", "5"])
        .env_remove("DATABASE_URL")
        .env_remove("POSTGRES_CONNECTION_STRING")
        .env_remove("CONVLAKE_LAKE")
        .env_remove("CONVLAKE_DB_SCHEMA")
        .env_remove("DASHBOARD_API_URL")
        .env_remove("CONVLAKE_DICTIONARY")
        .current_dir(cwd);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().await.expect("the convlake binary runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_never_writes_the_lake_or_database_of_real_work() {
    // Real work: a lake filled as a user would (fetch, extract, aggregate, sync with
    // DATABASE_URL and CONVLAKE_DB_SCHEMA exported).
    let (db, db_url) = fresh_database().await;
    let schema = fresh_schema();
    let sim = start_sim(sim_config(80)).await;
    let real = TestLake::new();
    let out = real.fetch(&sim, "2026-03-01", "2026-03-10").await;
    assert!(out.status.success(), "{}", stderr(&out));
    sim.shutdown().await;
    real.ok(&["extract"]).await;
    real.ok(&["aggregate"]).await;
    let real_env = [
        ("DATABASE_URL", db_url.as_str()),
        ("CONVLAKE_DB_SCHEMA", schema.as_str()),
    ];
    let out = real.run_env(&["sync"], &real_env).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let files_before = real.files("");
    let rows_before = table_lines(&db_url, &schema).await;
    assert!(!rows_before.is_empty(), "the real table has rows");

    // The demo, with the real lake and database exported.
    let lake_path = real.path().display().to_string();
    let mut env = real_env.to_vec();
    env.push(("CONVLAKE_LAKE", lake_path.as_str()));
    let work = tempfile::tempdir().unwrap();
    let out = demo_with_env(work.path(), &[], &env).await;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{stdout}\n{}", stderr(&out));
    assert!(
        stdout.contains("matches the simulator's ground truth: yes"),
        "{stdout}"
    );
    assert_eq!(real.files(""), files_before, "the real lake, byte for byte");
    assert_eq!(
        table_lines(&db_url, &schema).await,
        rows_before,
        "the real table"
    );

    // Its lake is data/demo under the working directory, marked as the demo's.
    let demo_lake = work.path().join("data/demo");
    assert!(demo_lake.join("convlake-demo.txt").is_file());
    assert!(demo_lake.join("raw").is_dir() && demo_lake.join("events").is_dir());
    // Its rows are in convlake_demo, as the summary says; nothing went to public.
    let demo_rows = table_lines(&db_url, "convlake_demo").await;
    assert!(!demo_rows.is_empty());
    assert!(
        stdout.contains(&format!(
            "postgres:   {} rows in convlake_demo.product_mentions",
            demo_rows.len()
        )),
        "{stdout}"
    );
    let (client, conn) = tokio_postgres::connect(&db_url, NoTls).await.unwrap();
    tokio::spawn(conn);
    let public: Option<String> = client
        .query_one("SELECT to_regclass('public.product_mentions')::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(public, None, "no table in public");
    drop(client);

    // A --lake typed on the command line that holds real data is refused, and left alone.
    let out = demo_with_env(work.path(), &["--lake", &lake_path], &env).await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("is not a demo lake"), "{err}");
    assert_eq!(real.files(""), files_before);

    // The demo's own lake is accepted again (typed on the command line this time).
    let demo_spec = demo_lake.display().to_string();
    let out = demo_with_env(work.path(), &["--lake", &demo_spec], &env).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(table_lines(&db_url, &schema).await, rows_before);
    drop_database(&db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throwaway_cluster_refuses_a_connection_without_the_password() {
    // The system temp directory: as root the server runs as `postgres`, who must reach it.
    let cluster = convlake::pgtmp::TempCluster::start(&std::env::temp_dir())
        .expect("a throwaway cluster starts");
    assert_eq!(format!("{:?} {}", cluster.url, cluster.url), "*** ***");
    let good = cluster.url.expose().to_string();
    let (client, conn) = tokio_postgres::connect(&good, NoTls)
        .await
        .expect("the URL with the password connects");
    tokio::spawn(conn);
    let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    let port = cluster.port;
    for bad in [
        format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        format!("postgres://postgres:wrong@127.0.0.1:{port}/postgres"),
        format!("postgres://nobody@127.0.0.1:{port}/postgres"),
    ] {
        let e = tokio_postgres::connect(&bad, NoTls)
            .await
            .err()
            .unwrap_or_else(|| panic!("{bad} must be refused"));
        let text = format!("{e:?}").to_lowercase();
        assert!(
            text.contains("password") || text.contains("authentication"),
            "{bad}: {text}"
        );
    }
    // The password file was only for initdb; the directory is private.
    assert!(!cluster.dir().join("pwfile").exists());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(cluster.dir())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "{mode:o}");
    let dir = cluster.dir().to_path_buf();
    drop(client);
    drop(cluster);
    assert!(!dir.exists(), "removed on drop");
}

/// A user's scheduled setup: a `convlake.toml` in the working directory holds the lake, the
/// Genesys settings, the database and the schema (secrets as `${VAR}`), and the README's
/// commands run with no flags beyond the dates. The numbers are the ground truth's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_convlake_toml_in_the_working_directory_drives_every_stage() {
    let cfg = sim_config(150);
    let sim = start_sim(cfg.clone()).await;
    let home = tempfile::tempdir().unwrap();
    let schema = fresh_schema();
    std::fs::write(
        home.path().join("convlake.toml"),
        format!(
            "lake = \"lake\"\napi-url = {:?}\nclient-id = {CLIENT_ID:?}\nclient-secret = \"${{TEST_GENESYS_SECRET}}\"\ndatabase-url = \"${{TEST_DATABASE_URL}}\"\nschema = {schema:?}\n\n[fetch]\nfrom = \"2026-03-01\"\nto = \"2026-03-10\"\n",
            sim.url
        ),
    )
    .unwrap();
    let convlake = |args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_convlake"));
        cmd.args(args).current_dir(home.path());
        for var in [
            "CONVLAKE_LAKE",
            "CONVLAKE_CONFIG",
            "CONVLAKE_DICTIONARY",
            "DATABASE_URL",
            "POSTGRES_CONNECTION_STRING",
            "CONVLAKE_DB_SCHEMA",
            "DASHBOARD_API_URL",
            "GENESYS_CLIENT_ID",
            "GENESYS_CLIENT_SECRET",
            "GENESYSCLOUD_OAUTHCLIENT_ID",
            "GENESYSCLOUD_OAUTHCLIENT_SECRET",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("TEST_GENESYS_SECRET", CLIENT_SECRET)
            .env("TEST_DATABASE_URL", database_url());
        let out = cmd.output().expect("convlake runs");
        assert!(
            out.status.success(),
            "convlake {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    for stage in [
        &["fetch"][..],
        &["extract"],
        &["aggregate"],
        &["sync"],
        &["verify"],
    ] {
        convlake(stage);
    }
    assert!(
        home.path().join("lake/raw").is_dir(),
        "the lake is where the file says"
    );
    let expected = truth(&cfg, start_date(), "2026-03-10".parse().unwrap());
    assert!(expected.values().sum::<u64>() > 50);
    let csv = convlake(&["query", TOTALS_SQL, "--format", "csv"]);
    assert_eq!(parse_totals(&csv), expected);
    let mut db_totals = std::collections::BTreeMap::<String, u64>::new();
    for r in pg_rows(&schema).await {
        *db_totals.entry(r.2).or_default() += r.3 as u64;
    }
    assert_eq!(db_totals, expected, "synced into the file's schema");

    // What `config` shows for it: the file's values, the secrets masked.
    let shown = convlake(&["config"]);
    assert!(shown.contains(&format!("schema = {schema:?}")), "{shown}");
    assert!(!shown.contains(CLIENT_SECRET), "{shown}");
    assert!(!shown.contains(&database_url()), "{shown}");
}
