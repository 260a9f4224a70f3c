//! PostgreSQL sync: exact, idempotent, safe under concurrency and dropped connections.

mod common;

use common::*;
use std::time::Duration;
use tokio_postgres::NoTls;

async fn pg(schema: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&database_url(), NoTls)
        .await
        .expect("TEST_DATABASE_URL accepts connections");
    tokio::spawn(conn);
    client
        .batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS \"{schema}\"; SET search_path TO \"{schema}\""
        ))
        .await
        .unwrap();
    client
}

async fn lake_lines(lake: &TestLake, dict: &[&str]) -> Vec<String> {
    let mut args: Vec<&str> = dict.to_vec();
    args.extend([
        "query",
        "SELECT conversation_date, interaction_type, product, mentions, conversations FROM mention_counts ORDER BY 1, 2, 3",
        "--format",
        "csv",
    ]);
    lake.ok(&args)
        .await
        .lines()
        .skip(1)
        .map(String::from)
        .collect()
}

/// A lake with fetched, extracted and aggregated data.
async fn ready_lake(n: usize) -> TestLake {
    let sim = start_sim(sim_config(n)).await;
    let lake = TestLake::new();
    let out = lake.fetch(&sim, "2026-03-01", "2026-03-10").await;
    assert!(out.status.success(), "{}", stderr(&out));
    lake.ok(&["extract"]).await;
    lake.ok(&["aggregate"]).await;
    sim.shutdown().await;
    lake
}

fn small_dictionary(lake: &TestLake) -> String {
    let p = lake.path().join("small.toml");
    std::fs::write(
        &p,
        "[[product]]\nname = \"Acme Router\"\n[[product]]\nname = \"Nimbus Hub\"\n",
    )
    .unwrap();
    p.to_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dictionary_change_makes_the_tables_equal_the_new_aggregates() {
    let lake = ready_lake(200).await;
    let schema = fresh_schema();
    let url = database_url();
    lake.ok(&["sync", "--database-url", &url, "--schema", &schema])
        .await;
    assert_eq!(
        product_mentions_lines(&schema).await,
        lake_lines(&lake, &[]).await
    );

    let small = small_dictionary(&lake);
    let d = ["--dictionary", small.as_str()];
    lake.ok(&[d[0], d[1], "extract"]).await;
    lake.ok(&[d[0], d[1], "aggregate"]).await;
    lake.ok(&[
        d[0],
        d[1],
        "sync",
        "--database-url",
        &url,
        "--schema",
        &schema,
    ])
    .await;
    let want = lake_lines(&lake, &d).await;
    assert!(!want.is_empty());
    assert_eq!(product_mentions_lines(&schema).await, want);

    // conversation_mentions holds the per-conversation detail of the same mentions.
    let c = pg(&schema).await;
    let detail: i64 = c
        .query_one(
            "SELECT COALESCE(SUM(mentions), 0)::bigint FROM conversation_mentions",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let total: i64 = c
        .query_one(
            "SELECT COALESCE(SUM(mention_count), 0)::bigint FROM product_mentions",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(detail, total);
    let products: Vec<String> = c
        .query(
            "SELECT DISTINCT product FROM conversation_mentions ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(products, ["Acme Router", "Nimbus Hub"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_mid_sync_keeps_the_old_state_and_a_rerun_converges() {
    let lake = ready_lake(150).await;
    let schema = fresh_schema();
    let url = database_url();
    lake.ok(&["sync", "--database-url", &url, "--schema", &schema])
        .await;
    let before = product_mentions_lines(&schema).await;

    let small = small_dictionary(&lake);
    lake.ok(&["--dictionary", &small, "extract"]).await;
    lake.ok(&["--dictionary", &small, "aggregate"]).await;
    let args = [
        "--dictionary",
        &small,
        "sync",
        "--database-url",
        &url,
        "--schema",
        &schema,
    ];
    let sync = lake.run_env(&args, &[("CONVLAKE_FAULT_SYNC_PAUSE_MS", "6000")]);
    let killer = async {
        let admin = pg("public").await;
        for _ in 0..200 {
            let n = admin
                .execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                     WHERE application_name = 'convlake' AND state = 'idle in transaction'
                       AND query LIKE 'INSERT INTO sync_state%'",
                    &[],
                )
                .await
                .unwrap();
            if n > 0 {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    };
    let (out, killed) = tokio::join!(sync, killer);
    assert!(killed, "the sync's backend was found and terminated");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("previous state is intact"), "{err}");
    assert!(
        !err.contains("postgres://"),
        "no connection string in errors: {err}"
    );
    assert_eq!(
        product_mentions_lines(&schema).await,
        before,
        "the old state is intact"
    );

    lake.ok(&[
        "--dictionary",
        &small,
        "sync",
        "--database-url",
        &url,
        "--schema",
        &schema,
    ])
    .await;
    assert_eq!(
        product_mentions_lines(&schema).await,
        lake_lines(&lake, &["--dictionary", &small]).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_syncs_never_interleave() {
    let lake = ready_lake(150).await;
    let schema = fresh_schema();
    let url = database_url();
    let args = [
        "sync",
        "--database-url",
        &url,
        "--schema",
        &schema,
        "--wait",
    ];
    let first = lake.run_env(&args, &[("CONVLAKE_FAULT_SYNC_PAUSE_MS", "1500")]);
    let second = async {
        // Start once the first holds the lock.
        tokio::time::sleep(Duration::from_millis(700)).await;
        let busy = lake
            .run(&["sync", "--database-url", &url, "--schema", &schema])
            .await;
        let waited = lake.run(&args).await;
        (busy, waited)
    };
    let (a, (busy, waited)) = tokio::join!(first, second);
    assert!(a.status.success(), "{}", stderr(&a));
    assert_eq!(busy.status.code(), Some(1), "{}", stderr(&busy));
    assert!(
        stderr(&busy).contains("holds the lock"),
        "{}",
        stderr(&busy)
    );
    assert!(waited.status.success(), "{}", stderr(&waited));
    assert!(
        stderr(&waited).contains("nothing to do"),
        "{}",
        stderr(&waited)
    );
    assert_eq!(
        product_mentions_lines(&schema).await,
        lake_lines(&lake, &[]).await
    );
    let syncs: i64 = pg(&schema)
        .await
        .query_one("SELECT count(*) FROM sync_state", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(syncs, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_idempotent_and_an_edited_one_is_refused() {
    let lake = TestLake::new();
    let schema = fresh_schema();
    let url = database_url();
    let migrate = ["migrate", "--database-url", &url, "--schema", &schema];
    let out = lake.run(&migrate).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("applied 0001_product_mentions.sql"),
        "{}",
        stderr(&out)
    );
    let out = lake.run(&migrate).await;
    assert!(stderr(&out).contains("up to date"), "{}", stderr(&out));

    pg(&schema)
        .await
        .execute(
            "UPDATE convlake_migrations SET checksum = 'edited' WHERE name = '0002_sync_state.sql'",
            &[],
        )
        .await
        .unwrap();
    let out = lake.run(&migrate).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("migrations/0002_sync_state.sql was changed"),
        "{}",
        stderr(&out)
    );

    let out = lake
        .run(&[
            "migrate",
            "--database-url",
            "postgres://u:hunter2@127.0.0.1:9/db",
        ])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot connect"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("hunter2"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_queries_use_the_indexes() {
    let lake = TestLake::new();
    let schema = fresh_schema();
    let url = database_url();
    lake.ok(&["migrate", "--database-url", &url, "--schema", &schema])
        .await;
    let c = pg(&schema).await;
    // The tutorial's primary key and indexes, plus (product_name, recorded_date); migration 0005
    // dropped (interaction_type, recorded_date), whose query the primary key serves.
    let indexes = first_column(
        &c,
        "SELECT indexname::text FROM pg_indexes
         WHERE schemaname = $1 AND tablename = 'product_mentions' ORDER BY 1",
        &[&schema],
    )
    .await;
    assert_eq!(
        indexes,
        [
            "idx_mentions_date",
            "idx_mentions_product_date",
            "idx_mentions_type_product",
            "product_mentions_pkey"
        ]
    );
    // A realistic table: two years, four interaction types, 50 products.
    c.batch_execute(
        "INSERT INTO product_mentions (recorded_date, interaction_type, product_name, mention_count,
                                       conversation_count, dictionary_version)
         SELECT d::date, t, 'Product ' || p, (p * 7 + extract(doy FROM d)::int) % 40, 1, 'v'
         FROM generate_series('2025-01-01'::date, '2026-12-31'::date, '1 day') AS d,
              unnest(ARRAY['voice','chat','email','message']) AS t,
              generate_series(1, 50) AS p;
         ANALYZE product_mentions;",
    )
    .await
    .unwrap();
    let plan = |sql: &'static str| {
        let c = &c;
        async move {
            c.query(&format!("EXPLAIN {sql}"), &[])
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<_, String>(0))
                .collect::<Vec<_>>()
                .join("\n")
        }
    };
    // The sentiment of one product over a month (migration 0007's columns) is served by an
    // index without one of its own.
    let sentiment = plan(
        "SELECT recorded_date, SUM(positive), SUM(negative), SUM(neutral) FROM product_mentions
         WHERE product_name = 'Product 7' AND recorded_date BETWEEN '2026-03-01' AND '2026-03-31'
         GROUP BY recorded_date",
    )
    .await;
    assert!(
        sentiment.contains("Index") && !sentiment.contains("Seq Scan"),
        "{sentiment}"
    );
    let by_product = plan(
        "SELECT recorded_date, SUM(mention_count) FROM product_mentions
         WHERE product_name = 'Product 7' AND recorded_date BETWEEN '2026-03-01' AND '2026-03-31'
         GROUP BY recorded_date",
    )
    .await;
    assert!(
        by_product.contains("Index") && !by_product.contains("Seq Scan"),
        "{by_product}"
    );
    let by_type = plan(
        "SELECT product_name, SUM(mention_count) FROM product_mentions
         WHERE interaction_type = 'chat' AND recorded_date BETWEEN '2026-03-01' AND '2026-03-07'
         GROUP BY product_name",
    )
    .await;
    assert!(
        by_type.contains("Index") && !by_type.contains("Seq Scan"),
        "{by_type}"
    );
}

/// Runs openssl with `args` in `dir`.
fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_require_uses_tls_and_verifies_the_server_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let certs = tmp.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    openssl(
        &certs,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=convlake test CA",
        ],
    );
    openssl(
        &certs,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(
        certs.join("ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    openssl(
        &certs,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "ext",
        ],
    );
    // PostgreSQL insists on a private key only its owner can read.
    let _ = std::process::Command::new("chown")
        .args(["-R", "postgres:"])
        .arg(&certs)
        .status();
    std::fs::set_permissions(
        certs.join("server.key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let opts = format!(
        "-c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
        certs.join("server.crt").display(),
        certs.join("server.key").display()
    );
    let cluster = convlake::pgtmp::TempCluster::start_with(&tmp.path().join("pg"), &opts)
        .expect("a TLS-enabled throwaway cluster starts");
    let lake = TestLake::new();
    let ca = certs.join("ca.crt");
    let good = format!(
        "{}?sslmode=require&sslrootcert={}",
        cluster.url.expose(),
        ca.display()
    );
    let out = lake
        .run(&["migrate", "--database-url", &good, "--schema", "tls_check"])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));

    // Without the test CA the same server is refused: the certificate is verified.
    let out = lake
        .run(&[
            "migrate",
            "--database-url",
            &format!("{}?sslmode=require", cluster.url.expose()),
        ])
        .await;
    assert_eq!(out.status.code(), Some(1), "an unknown CA must be refused");
    let err = stderr(&out);
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_every_cycles_holds_the_lake_lock_and_stops_cleanly_on_sigterm() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let sim = start_sim(sim_config(60)).await;
    let lake = TestLake::new();
    let schema = fresh_schema();
    let url = database_url();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_convlake"))
        .arg("--lake")
        .arg(lake.path())
        .args([
            "run",
            "--every",
            "1s",
            "--api-url",
            &sim.url,
            "--from",
            "2026-03-01",
            "--to",
            "2026-03-10",
        ])
        .args(["--database-url", &url, "--schema", &schema])
        .env("GENESYS_CLIENT_ID", CLIENT_ID)
        .env("GENESYS_CLIENT_SECRET", CLIENT_SECRET)
        .env_remove("DASHBOARD_API_URL")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    // Two cycles: the second finds nothing new to sync.
    while seen
        .iter()
        .filter(|l: &&String| l.starts_with("cycle "))
        .count()
        < 2
    {
        match tokio::time::timeout(Duration::from_secs(120), lines.next_line()).await {
            Ok(Ok(Some(l))) => seen.push(l),
            other => panic!("no cycle lines ({other:?}): {seen:#?}"),
        }
    }
    let second = seen.iter().find(|l| l.starts_with("cycle 2:")).unwrap();
    assert!(second.contains("sync: unchanged"), "{second}");

    // A second scheduler on the same lake is refused while the first runs.
    let out = lake.run(&["run", "--api-url", &sim.url]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("another convlake run"),
        "{}",
        stderr(&out)
    );

    // SIGTERM: the current stage finishes and the process exits 0.
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    while let Ok(Some(l)) = lines.next_line().await {
        seen.push(l);
    }
    assert!(status.success(), "{status:?}: {seen:#?}");
    assert!(
        seen.iter()
            .any(|l| l.contains("stopping after the current stage")),
        "{seen:#?}"
    );
    assert_eq!(
        product_mentions_lines(&schema).await,
        lake_lines(&lake, &[]).await
    );
    sim.shutdown().await;
}

/// Every index and constraint of both tables, as PostgreSQL would recreate them.
async fn index_definitions(c: &tokio_postgres::Client, schema: &str) -> Vec<String> {
    c.query(
        "SELECT tablename || ': ' || indexdef FROM pg_indexes
         WHERE schemaname = $1 AND tablename IN ('product_mentions', 'conversation_mentions')
         UNION ALL
         SELECT conrelid::regclass::text || ': ' || conname || ' ' || pg_get_constraintdef(oid)
         FROM pg_constraint WHERE connamespace = $1::regnamespace
           AND conrelid::regclass::text IN ('product_mentions', 'conversation_mentions')
         ORDER BY 1",
        &[&schema],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_sync_puts_back_every_index_it_set_aside_for_the_bulk_load() {
    let lake = ready_lake(200).await;
    let schema = fresh_schema();
    let url = database_url();
    lake.ok(&["migrate", "--database-url", &url, "--schema", &schema])
        .await;
    let c = pg(&schema).await;
    // An index of the user's own is kept too.
    c.batch_execute(
        "CREATE INDEX my_bi_index ON conversation_mentions (interaction_type, product)",
    )
    .await
    .unwrap();
    let before = index_definitions(&c, &schema).await;
    assert!(before.len() >= 9, "{before:#?}");
    lake.ok(&["sync", "--database-url", &url, "--schema", &schema])
        .await;
    assert_eq!(index_definitions(&c, &schema).await, before);
    assert_eq!(
        product_mentions_lines(&schema).await,
        lake_lines(&lake, &[]).await
    );
    // The primary key is enforced again: a duplicate is refused.
    let dup = c
        .batch_execute(
            "INSERT INTO product_mentions (recorded_date, interaction_type, product_name, mention_count,
                                           conversation_count, dictionary_version)
             SELECT recorded_date, interaction_type, product_name, 1, 1, 'x' FROM product_mentions LIMIT 1",
        )
        .await;
    assert!(dup.is_err());
}

/// Rows of conversation_mentions: (month partition it lives in, conversation_id, participant,
/// product, mentions), sorted.
async fn detail_rows(c: &tokio_postgres::Client) -> Vec<(String, String, String, String, i64)> {
    let mut rows: Vec<_> = c
        .query(
            "SELECT tableoid::regclass::text, conversation_id, participant::text, product::text, mentions::bigint
             FROM conversation_mentions",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    rows.sort();
    rows
}

/// conversation_mentions is partitioned by month: an upgrade from the unpartitioned table keeps
/// its rows, the sync gives each month it loads its partition (taking over rows parked in the
/// default partition), a date-range query reads only its months, and the table equals the
/// lake's conversation_mentions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversation_mentions_is_partitioned_by_month() {
    let schema = fresh_schema();
    let c = pg(&schema).await;
    // A database migrated by an earlier convlake (0001–0003), with detail rows in it.
    c.batch_execute(
        "CREATE TABLE convlake_migrations (name TEXT PRIMARY KEY, checksum TEXT NOT NULL,
                                           applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .await
    .unwrap();
    for (name, sql) in &convlake::sync::MIGRATIONS[..3] {
        c.batch_execute(sql).await.unwrap();
        c.execute(
            "INSERT INTO convlake_migrations (name, checksum) VALUES ($1, $2)",
            &[name, &blake3::hash(sql.as_bytes()).to_hex().to_string()],
        )
        .await
        .unwrap();
    }
    c.batch_execute(
        "INSERT INTO conversation_mentions (conversation_id, conversation_date, interaction_type,
                                            participant, product, mentions, dictionary_version)
         VALUES ('old-feb', '2026-02-26', 'voice', 'customer', 'Acme Router', 2, 'v0'),
                ('old-mar', '2026-03-02', 'chat', 'agent', 'Nimbus Hub', 1, 'v0')",
    )
    .await
    .unwrap();
    let before = detail_rows(&c).await;
    assert_eq!(before.len(), 2);

    let url = database_url();
    let lake = TestLake::new();
    let out = lake
        .run(&["migrate", "--database-url", &url, "--schema", &schema])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("0004_conversation_mentions_by_month.sql"),
        "{}",
        stderr(&out)
    );
    let kind: String = c
        .query_one(
            "SELECT relkind::text FROM pg_class WHERE oid = 'conversation_mentions'::regclass",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(kind, "p", "conversation_mentions is partitioned");
    let upgraded = detail_rows(&c).await;
    assert_eq!(
        upgraded
            .iter()
            .map(|r| (r.0.as_str(), r.1.as_str()))
            .collect::<Vec<_>>(),
        [
            ("conversation_mentions_default", "old-feb"),
            ("conversation_mentions_default", "old-mar")
        ],
        "the upgrade keeps every row"
    );

    // A lake whose conversations span February and March.
    let mut cfg = sim_config(150);
    cfg.start = "2026-02-24".parse().unwrap();
    let sim = start_sim(cfg).await;
    let out = lake.fetch(&sim, "2026-02-24", "2026-03-05").await;
    assert!(out.status.success(), "{}", stderr(&out));
    sim.shutdown().await;
    lake.ok(&["extract"]).await;
    lake.ok(&["aggregate"]).await;
    // A row the lake also has, parked in the default partition before its month's partition
    // exists: the sync must move it, not trip over it.
    let first = lake
        .ok(&[
            "query",
            "SELECT conversation_id, conversation_date, interaction_type, participant, product FROM conversation_mentions WHERE conversation_date >= DATE '2026-03-01' ORDER BY 1, 4, 5 LIMIT 1",
            "--format",
            "csv",
        ])
        .await;
    let f: Vec<String> = first
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .map(String::from)
        .collect();
    c.execute(
        "INSERT INTO conversation_mentions (conversation_id, conversation_date, interaction_type,
                                            participant, product, mentions, dictionary_version)
         VALUES ($1, $2::text::date, $3, $4, $5, 999, 'v0')",
        &[&f[0], &f[1], &f[2], &f[3], &f[4]],
    )
    .await
    .unwrap();

    lake.ok(&["sync", "--database-url", &url, "--schema", &schema])
        .await;
    let partitions = first_column(
        &c,
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'conversation_mentions'::regclass ORDER BY 1",
        &[],
    )
    .await;
    assert_eq!(
        partitions,
        [
            "conversation_mentions_default",
            "conversation_mentions_y2026m02",
            "conversation_mentions_y2026m03"
        ]
    );
    let synced = detail_rows(&c).await;
    assert!(
        synced
            .iter()
            .all(|r| r.0 != "conversation_mentions_default"),
        "nothing is left in the default partition"
    );
    assert!(
        synced.iter().all(|r| !r.1.starts_with("old-")),
        "vanished rows are deleted"
    );
    assert!(
        synced.iter().all(|r| r.4 != 999),
        "the parked row was updated"
    );
    let lake_rows = lake
        .query_lines(
            "SELECT conversation_id, participant, product, mentions FROM conversation_mentions ORDER BY 1, 2, 3",
        )
        .await;
    let mut db_rows: Vec<String> = synced
        .iter()
        .map(|r| format!("{},{},{},{}", r.1, r.2, r.3, r.4))
        .collect();
    db_rows.sort();
    assert_eq!(db_rows, lake_rows);
    assert!(synced.iter().any(|r| r.0.ends_with("y2026m02")));
    assert!(synced.iter().any(|r| r.0.ends_with("y2026m03")));

    // A date-range query reads only the months it asks for, through the index.
    c.batch_execute("ANALYZE conversation_mentions")
        .await
        .unwrap();
    let plan: String = c
        .query(
            "EXPLAIN SELECT conversation_id, SUM(mentions) FROM conversation_mentions
             WHERE product = 'Acme Router' AND conversation_date BETWEEN '2026-03-01' AND '2026-03-03'
             GROUP BY conversation_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(plan.contains("conversation_mentions_y2026m03"), "{plan}");
    assert!(
        !plan.contains("y2026m02") && !plan.contains("_default"),
        "{plan}"
    );

    // Syncing the same state again changes nothing.
    let out = lake
        .run(&["sync", "--database-url", &url, "--schema", &schema])
        .await;
    assert!(stderr(&out).contains("nothing to do"), "{}", stderr(&out));
    assert_eq!(detail_rows(&c).await, synced);

    // A month detached for retention while the lake still has it: the sync names the table
    // instead of recreating the month; once it is dropped, the sync converges again.
    c.batch_execute(
        "ALTER TABLE conversation_mentions DETACH PARTITION conversation_mentions_y2026m02;
         DELETE FROM sync_state;",
    )
    .await
    .unwrap();
    let out = lake
        .run(&["sync", "--database-url", &url, "--schema", &schema])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("conversation_mentions_y2026m02 exists"),
        "{}",
        stderr(&out)
    );
    c.batch_execute("DROP TABLE conversation_mentions_y2026m02")
        .await
        .unwrap();
    lake.ok(&["sync", "--database-url", &url, "--schema", &schema])
        .await;
    let resynced = detail_rows(&c).await;
    assert_eq!(
        resynced
            .iter()
            .map(|r| (&r.0, &r.1, &r.2, &r.3, r.4))
            .collect::<Vec<_>>(),
        synced
            .iter()
            .map(|r| (&r.0, &r.1, &r.2, &r.3, r.4))
            .collect::<Vec<_>>()
    );
}

/// The PostgreSQL type of every column of `table` in `schema`, as "column type" lines.
async fn column_types(c: &tokio_postgres::Client, schema: &str, table: &str) -> Vec<String> {
    first_column(
        c,
        "SELECT column_name::text || ' ' || data_type::text FROM information_schema.columns
         WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
        &[&schema, &table],
    )
    .await
}

/// A database an earlier convlake migrated (0001–0005) and filled is migrated to BIGINT counts
/// and TEXT names, on the partitioned conversation_mentions and each partition too, keeping its
/// rows; the new build then syncs into it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_database_gets_bigint_counts_and_keeps_its_rows() {
    let schema = fresh_schema();
    let c = pg(&schema).await;
    c.batch_execute(
        "CREATE TABLE convlake_migrations (name TEXT PRIMARY KEY, checksum TEXT NOT NULL,
                                           applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .await
    .unwrap();
    let earlier: Vec<_> = convlake::sync::MIGRATIONS
        .iter()
        .filter(|(name, _)| *name < "0006")
        .collect();
    assert_eq!(earlier.len(), 5);
    for (name, sql) in earlier {
        c.batch_execute(sql).await.unwrap();
        c.execute(
            "INSERT INTO convlake_migrations (name, checksum) VALUES ($1, $2)",
            &[name, &blake3::hash(sql.as_bytes()).to_hex().to_string()],
        )
        .await
        .unwrap();
    }
    // Rows as the previous build left them: a month partition the sync created, and a row in
    // the default partition.
    c.batch_execute(
        "INSERT INTO product_mentions (recorded_date, interaction_type, product_name, mention_count,
                                       conversation_count, dictionary_version)
         VALUES ('2026-02-27', 'voice', 'Acme Router', 2147483647, 12, 'v0'),
                ('2026-02-28', 'chat', 'Nimbus Hub', 3, 2, 'v0');
         CREATE TABLE conversation_mentions_y2026m02 (LIKE conversation_mentions INCLUDING DEFAULTS);
         ALTER TABLE conversation_mentions ATTACH PARTITION conversation_mentions_y2026m02
             FOR VALUES FROM ('2026-02-01') TO ('2026-03-01');
         INSERT INTO conversation_mentions (conversation_id, conversation_date, interaction_type,
                                            participant, product, mentions, dictionary_version)
         VALUES ('old-feb', '2026-02-27', 'voice', 'customer', 'Acme Router', 2147483647, 'v0'),
                ('old-jan', '2026-01-30', 'chat', 'agent', 'Nimbus Hub', 1, 'v0');",
    )
    .await
    .unwrap();
    assert!(column_types(&c, &schema, "product_mentions")
        .await
        .contains(&"mention_count integer".to_string()));
    let old_rows = product_mentions_lines(&schema).await;
    let old_detail = detail_rows(&c).await;

    let url = database_url();
    let lake = TestLake::new();
    let out = lake
        .run(&["migrate", "--database-url", &url, "--schema", &schema])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("applied 0006_counts_bigint_names_text.sql"),
        "{}",
        stderr(&out)
    );
    let types = column_types(&c, &schema, "product_mentions").await;
    for want in [
        "interaction_type text",
        "product_name text",
        "mention_count bigint",
        "conversation_count bigint",
    ] {
        assert!(types.contains(&want.to_string()), "{want}: {types:?}");
    }
    for table in [
        "conversation_mentions",
        "conversation_mentions_default",
        "conversation_mentions_y2026m02",
    ] {
        let types = column_types(&c, &schema, table).await;
        for want in [
            "interaction_type text",
            "participant text",
            "product text",
            "mentions bigint",
        ] {
            assert!(
                types.contains(&want.to_string()),
                "{table} {want}: {types:?}"
            );
        }
    }
    assert_eq!(product_mentions_lines(&schema).await, old_rows);
    assert_eq!(detail_rows(&c).await, old_detail);

    // The new build syncs a lake into it: the tables equal the lake's aggregates.
    let sim = start_sim(sim_config(150)).await;
    let out = lake.fetch(&sim, "2026-03-01", "2026-03-10").await;
    assert!(out.status.success(), "{}", stderr(&out));
    sim.shutdown().await;
    lake.ok(&["extract"]).await;
    lake.ok(&["aggregate"]).await;
    let out = lake
        .run(&["sync", "--database-url", &url, "--schema", &schema])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("MB text/s"), "{}", stderr(&out));
    assert_eq!(
        product_mentions_lines(&schema).await,
        lake_lines(&lake, &[]).await
    );
    let detail: i64 = c
        .query_one("SELECT count(*) FROM conversation_mentions", &[])
        .await
        .unwrap()
        .get(0);
    let lake_detail = lake
        .query_lines("SELECT count(*) FROM conversation_mentions")
        .await;
    assert_eq!(lake_detail, [detail.to_string()]);
}

/// Aggregates written directly (the end-to-end path cannot produce three billion mentions in a
/// test): counts above i32::MAX arrive unchanged, and a row that cannot be stored is an error
/// naming it that leaves the tables as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_above_i32_max_round_trip_and_a_bad_row_is_named() {
    use arrow::array::{Date32Array, Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::{Field, Schema};
    use convlake::lake::schema;
    use convlake::sync::{Aggregates, SyncError, SyncOptions, Target};
    use std::sync::Arc;

    let big = i64::from(i32::MAX) + 852_516_353; // 3,000,000,000
    let huge = 5_000_000_000_i64;
    // 2026-03-02 as days from 1970-01-01.
    let day = (start_date() + chrono::Days::new(1)
        - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap())
    .num_days() as i32;
    let counts = |product: Option<&str>, mentions: i64| {
        // Nullable fields, so that a file with a null can be written at all; the columns of a
        // file written before the sentiment columns (the sync reads those as NULL).
        let s = schema::mention_counts_schema();
        let fields: Vec<Field> = s
            .fields()
            .iter()
            .take(6)
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect();
        let s = Arc::new(Schema::new(fields));
        let batch = RecordBatch::try_new(
            s.clone(),
            vec![
                Arc::new(Date32Array::from(vec![day, day])),
                Arc::new(StringArray::from(vec!["voice", "voice"])),
                Arc::new(StringArray::from(vec![Some("Acme Router"), product])),
                Arc::new(Int64Array::from(vec![big, mentions])),
                Arc::new(Int64Array::from(vec![huge, 1])),
                Arc::new(StringArray::from(vec!["vbig", "vbig"])),
            ],
        )
        .unwrap();
        schema::to_parquet(&s, &[batch]).unwrap()
    };
    let detail = {
        let s = schema::conversation_mentions_schema();
        let s = Arc::new(Schema::new(
            s.fields()
                .iter()
                .take(7)
                .map(|f| f.as_ref().clone())
                .collect::<Vec<Field>>(),
        ));
        let batch = RecordBatch::try_new(
            s.clone(),
            vec![
                Arc::new(StringArray::from(vec!["conv-1"])),
                Arc::new(Date32Array::from(vec![day])),
                Arc::new(StringArray::from(vec!["voice"])),
                Arc::new(StringArray::from(vec!["customer"])),
                Arc::new(StringArray::from(vec!["Acme Router"])),
                Arc::new(Int64Array::from(vec![huge])),
                Arc::new(StringArray::from(vec!["vbig"])),
            ],
        )
        .unwrap();
        schema::to_parquet(&s, &[batch]).unwrap()
    };
    let schema_name = fresh_schema();
    let target = Target::new(convlake::secret::Secret::new(database_url()), &schema_name).unwrap();
    let options = SyncOptions::default();
    let good = Aggregates::from_bytes(
        "mention_counts.parquet",
        counts(Some("Nimbus Hub"), 7),
        "conversation_mentions.parquet",
        detail.clone(),
    );
    let s = convlake::sync::sync_with(&target, &good, "vbig", &options)
        .await
        .unwrap();
    assert_eq!((s.rows, s.inserted), (2, 2));
    let want = vec![
        format!("2026-03-02,voice,Acme Router,{big},{huge}"),
        "2026-03-02,voice,Nimbus Hub,7,1".to_string(),
    ];
    assert_eq!(product_mentions_lines(&schema_name).await, want);
    let c = pg(&schema_name).await;
    let mentions: i64 = c
        .query_one("SELECT mentions FROM conversation_mentions", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(mentions, huge);
    // Files without the sentiment columns: NULL there, not zero and not an error.
    let unset: i64 = c
        .query_one(
            "SELECT count(*) FROM product_mentions WHERE positive IS NULL AND sentiment_mean IS NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(unset, 2);

    // A null product and a negative count: refused, naming the row; nothing changes.
    for (product, mentions, reason) in [
        (None, 7, "product_name is null"),
        (Some("Nimbus Hub"), -1, "mention_count is -1"),
    ] {
        let bad = Aggregates::from_bytes(
            "mention_counts.parquet",
            counts(product, mentions),
            "conversation_mentions.parquet",
            detail.clone(),
        );
        let err = convlake::sync::sync_with(&target, &bad, "vbig", &options)
            .await
            .unwrap_err();
        assert!(matches!(err, SyncError::BadRow { row: 1, .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains(reason), "{msg}");
        assert!(
            msg.contains("row 1 of mention_counts.parquet")
                && msg.contains("recorded_date=2026-03-02")
                && msg.contains("interaction_type=voice"),
            "{msg}"
        );
        assert!(msg.contains("nothing was changed"), "{msg}");
        assert_eq!(product_mentions_lines(&schema_name).await, want);
    }
}

/// Every sync, also one that changes nothing, appends a `synced` event that `query` shows,
/// naming host, port, database and schema; the password in the connection string never
/// reaches the lake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sync_is_a_synced_event_without_the_password() {
    let lake = ready_lake(120).await;
    let schema = fresh_schema();
    let mut url = url::Url::parse(&database_url()).unwrap();
    // The test cluster trusts loopback connections, so any password connects; one that is
    // already in TEST_DATABASE_URL is kept (and must not leak either).
    if url.password().is_none() {
        url.set_password(Some("pw-Xq7-never-in-the-lake")).unwrap();
    }
    let password = url.password().unwrap().to_string();
    let database = format!(
        "{}:{}{}",
        url.host_str().unwrap(),
        url.port().unwrap_or(5432),
        url.path()
    );
    let url = url.to_string();
    let first = lake
        .run(&["sync", "--database-url", &url, "--schema", &schema])
        .await;
    assert!(first.status.success(), "{}", stderr(&first));
    let second = lake
        .run(&["sync", "--database-url", &url, "--schema", &schema])
        .await;
    assert!(
        stderr(&second).contains("nothing to do"),
        "{}",
        stderr(&second)
    );

    let synced: Vec<_> = lake
        .events()
        .await
        .into_iter()
        .filter_map(|e| match e.kind {
            convlake::lake::EventKind::Synced {
                inserted,
                updated,
                deleted,
                database,
                schema,
                content_hash,
                ..
            } => Some((inserted, updated, deleted, database, schema, content_hash)),
            _ => None,
        })
        .collect();
    assert_eq!(synced.len(), 2, "{synced:?}");
    let rows = product_mentions_lines(&schema).await.len() as u64;
    assert!(rows > 0);
    assert_eq!((synced[0].0, synced[0].1, synced[0].2), (rows, 0, 0));
    assert_eq!((synced[1].0, synced[1].1, synced[1].2), (0, 0, 0));
    for s in &synced {
        assert_eq!(s.3.as_deref(), Some(database.as_str()));
        assert_eq!(s.4.as_deref(), Some(schema.as_str()));
    }
    assert_eq!(synced[0].5, synced[1].5, "the same aggregates");
    let c = pg(&schema).await;
    let hash: String = c
        .query_one(
            "SELECT content_hash FROM sync_state ORDER BY id DESC LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(synced[0].5, hash);

    // As a user lists them.
    let listed = lake
        .query_lines("SELECT kind, detail FROM events WHERE kind = 'synced' ORDER BY seq")
        .await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed.iter().all(|l| l.contains(&database)), "{listed:?}");

    // No file of the lake holds the password, nor the user-and-password part of the URL.
    for f in all_files(lake.path()) {
        let bytes = std::fs::read(lake.path().join(&f)).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(&password),
            "{} holds the password",
            f.display()
        );
    }
    for out in [&first, &second] {
        assert!(!stderr(out).contains(&password), "{}", stderr(out));
    }
}

/// A sync that would empty product_mentions is refused and changes nothing; --allow-empty (or
/// CONVLAKE_ALLOW_EMPTY) lets it, and a sync that deletes more than half of a table's rows
/// warns with the counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emptying_a_table_is_refused_unless_allowed_and_large_deletions_warn() {
    let lake = ready_lake(150).await;
    let schema = fresh_schema();
    let url = database_url();
    let sync = [
        "sync",
        "--database-url",
        url.as_str(),
        "--schema",
        schema.as_str(),
    ];
    let full = lake.path().join("full.toml");
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/products.toml"),
        &full,
    )
    .unwrap();
    let full = ["--dictionary", full.to_str().unwrap()];
    let with = |d: &[&str], args: &[&str]| -> Vec<String> {
        d.iter().chain(args).map(|s| s.to_string()).collect()
    };
    let run = |args: Vec<String>| {
        let lake = &lake;
        async move {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            lake.run(&refs).await
        }
    };
    for step in [["extract"], ["aggregate"]] {
        let out = run(with(&full, &step)).await;
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = run(with(&full, &sync)).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    let c = pg(&schema).await;
    let detail_count = || async {
        c.query_one("SELECT count(*) FROM conversation_mentions", &[])
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    let syncs = || async {
        c.query_one("SELECT count(*) FROM sync_state", &[])
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    let before = product_mentions_lines(&schema).await;
    let (details_before, syncs_before) = (detail_count().await, syncs().await);
    assert!(before.len() > 4, "{before:?}");

    // Aggregates with no rows: a dictionary that matches nothing.
    let nothing = lake.path().join("nothing.toml");
    std::fs::write(
        &nothing,
        "[[product]]\nname = \"Qwzx Nonexistent Gadget\"\n",
    )
    .unwrap();
    let nothing = ["--dictionary", nothing.to_str().unwrap()];
    for step in [["extract"], ["aggregate"]] {
        let out = run(with(&nothing, &step)).await;
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert!(lake_lines(&lake, &nothing).await.is_empty());
    for env in [vec![], vec![("CONVLAKE_ALLOW_EMPTY", "0")]] {
        let args = with(&nothing, &sync);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = lake.run_env(&refs, &env).await;
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("refusing to empty product_mentions"), "{err}");
        assert!(
            err.contains(&format!("holds {} rows", before.len())),
            "{err}"
        );
        assert!(
            err.contains("wrong lake") && err.contains("--allow-empty"),
            "{err}"
        );
        assert_eq!(product_mentions_lines(&schema).await, before);
        assert_eq!(detail_count().await, details_before);
        assert_eq!(syncs().await, syncs_before, "nothing recorded");
    }

    // Allowed through the environment: emptied, with a warning giving the counts.
    let args = with(&nothing, &sync);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = lake.run_env(&refs, &[("CONVLAKE_ALLOW_EMPTY", "1")]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(product_mentions_lines(&schema).await.is_empty());
    assert_eq!(detail_count().await, 0);
    let err = stderr(&out);
    let n = before.len();
    assert!(
        err.contains(&format!(
            "warning: sync deleted {n} of the {n} rows of product_mentions (100%), leaving 0"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{details_before} of the {details_before} rows of conversation_mentions"
        )),
        "{err}"
    );

    // Back to the full dictionary, then to two products: more than half of the rows go, and
    // the warning says how many; --allow-empty on the command line empties it again.
    let out = run(with(&full, &sync)).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(product_mentions_lines(&schema).await, before);
    let small = small_dictionary(&lake);
    let small = ["--dictionary", small.as_str()];
    for step in [["extract"], ["aggregate"]] {
        let out = run(with(&small, &step)).await;
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = run(with(&small, &sync)).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let after = product_mentions_lines(&schema).await.len();
    assert!(after > 0 && after * 2 < n, "{after} of {n}");
    // The summary line says how many rows went; the warning repeats it with the table's size.
    let err = stderr(&out);
    let deleted: usize = err
        .split(" deleted)")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("no deleted count in {err}"));
    assert!(deleted * 2 > n, "{deleted} of {n}");
    assert!(
        err.contains(&format!(
            "warning: sync deleted {deleted} of the {n} rows of product_mentions"
        )),
        "{err}"
    );
    let mut args = with(&nothing, &sync);
    args.push("--allow-empty".into());
    let out = run(args).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(product_mentions_lines(&schema).await.is_empty());

    // `run` takes the flag too.
    let help = lake.ok(&["run", "--help"]).await;
    assert!(
        help.contains("--allow-empty") && help.contains("CONVLAKE_ALLOW_EMPTY"),
        "{help}"
    );
}
