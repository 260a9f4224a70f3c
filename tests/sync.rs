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
        cluster.url,
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
            &format!("{}?sslmode=require", cluster.url),
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
async fn detail_rows(c: &tokio_postgres::Client) -> Vec<(String, String, String, String, i32)> {
    let mut rows: Vec<_> = c
        .query(
            "SELECT tableoid::regclass::text, conversation_id, participant, product, mentions
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
