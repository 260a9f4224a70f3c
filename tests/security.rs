//! Security: known secrets (client secret, dashboard token, database password) and the
//! credentials the simulator issues (access tokens, presigned-link signatures) never appear in
//! any output, log, error or lake file, also when requests fail; `--help` never shows an
//! environment secret; lake paths come from hashes only; report.html escapes transcript text;
//! TLS certificates are verified.

mod common;

use std::path::Path;
use std::process::Output;

use base64::Engine;
use common::*;

const SECRET: &str = "sec-CLIENT-5ecr3t-91";
const TOKEN: &str = "sec-DASH-70ken-42";
const PASSWORD: &str = "sec-PG-pa55-13";
/// Credentials inside the dashboard URL itself.
const URL_PASSWORD: &str = "sec-URL-pa55-21";
const URL_KEY: &str = "sec-URL-k3y-34";

/// The role whose password is PASSWORD (made by [`password_role`]).
const ROLE: &str = "convlake_sec_test";

/// TEST_DATABASE_URL as the role [`ROLE`] with PASSWORD in it.
fn url_with_password() -> String {
    let mut u = url::Url::parse(&database_url()).unwrap();
    u.set_username(ROLE).unwrap();
    u.set_password(Some(PASSWORD)).unwrap();
    u.to_string()
}

/// Creates [`ROLE`] with PASSWORD (the throwaway cluster asks for passwords), allowed to create
/// schemas in the test database. Tests running at once may both create it: a duplicate is fine.
async fn password_role() {
    let admin = database_url();
    let db = url::Url::parse(&admin)
        .unwrap()
        .path()
        .trim_start_matches('/')
        .to_string();
    let db = if db.is_empty() {
        "postgres".to_string()
    } else {
        db
    };
    let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
        .await
        .expect("TEST_DATABASE_URL accepts connections");
    tokio::spawn(conn);
    if let Err(e) = client
        .batch_execute(&format!("CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'"))
        .await
    {
        let duplicate = e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_OBJECT)
            || e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION);
        assert!(duplicate, "creating {ROLE}: {e}");
    }
    client
        .batch_execute(&format!(
            "GRANT CREATE, CONNECT ON DATABASE \"{db}\" TO {ROLE}"
        ))
        .await
        .unwrap();
}

/// The secrets and the forms they could leak in, plus `issued`: what the simulators handed out
/// (bearer tokens, presigned-link signatures).
fn needles(issued: &[String]) -> Vec<String> {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{SECRET}"));
    let mut n = vec![
        SECRET.into(),
        TOKEN.into(),
        PASSWORD.into(),
        basic,
        url_with_password(),
        URL_PASSWORD.into(),
        URL_KEY.into(),
    ];
    n.extend(issued.iter().cloned());
    n
}

/// The credentials `sim` issued so far, as needles.
fn issued_by(sim: &convlake::simulator::RunningSimulator) -> Vec<String> {
    sim.issued_credentials()
        .iter()
        .map(|c| c.expose().to_string())
        .collect()
}

fn assert_clean(what: &str, bytes: &[u8], needles: &[String]) {
    for n in needles {
        assert!(
            !bytes.windows(n.len()).any(|w| w == n.as_bytes()),
            "{what} contains the secret {n:?}"
        );
    }
}

fn assert_output_clean(what: &str, out: &Output, needles: &[String]) {
    assert_clean(&format!("{what} stdout"), &out.stdout, needles);
    assert_clean(&format!("{what} stderr"), &out.stderr, needles);
}

/// Every file of a lake holds no needle (zstd-compressed texts are read decompressed) and has
/// a hash-derived path.
fn assert_lake_clean(lake: &TestLake, needles: &[String]) -> usize {
    let files = all_files(lake.path());
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        assert_clean(&f.display().to_string(), &bytes, needles);
        if f.extension().is_some_and(|e| e == "zst") {
            let content = zstd::decode_all(&bytes[..]).unwrap();
            assert_clean(&f.display().to_string(), &content, needles);
        }
        let rel = f.strip_prefix(lake.path()).unwrap().display().to_string();
        assert!(hash_derived(&rel), "{rel} is not a hash-derived lake path");
    }
    files.len()
}

/// Is `rel` one of the lake's hash-derived paths?
fn hash_derived(rel: &str) -> bool {
    let hex = |s: &str, n: Option<usize>| {
        !s.is_empty() && n.is_none_or(|n| s.len() == n) && s.bytes().all(|b| b.is_ascii_hexdigit())
    };
    let parts: Vec<&str> = rel.split('/').collect();
    match parts.as_slice() {
        ["events", f] => f
            .strip_suffix(".jsonl")
            .is_some_and(|h| h.len() == 20 && h.bytes().all(|b| b.is_ascii_digit())),
        ["raw", d, f] => {
            hex(d, Some(2))
                && f.strip_suffix(".parquet")
                    .is_some_and(|h| hex(h, Some(64)) && h.starts_with(d))
        }
        ["bodies", d, f] => {
            hex(d, Some(2))
                && f.strip_suffix(".json")
                    .or_else(|| f.strip_suffix(".json.zst"))
                    .is_some_and(|h| hex(h, Some(64)) && h.starts_with(d))
        }
        ["mentions", v, f] | ["topics", v, f] => {
            v.strip_prefix("dict=").is_some_and(|v| hex(v, None))
                && f.strip_suffix(".parquet").is_some_and(|h| hex(h, Some(64)))
        }
        ["aggregates", v, t, f] => {
            v.strip_prefix("dict=").is_some_and(|v| hex(v, None))
                && [
                    "mention_counts",
                    "conversation_mentions",
                    "conversation_topics",
                    "product_topics",
                    "co_mentions",
                    "product_insights",
                ]
                .contains(t)
                && f.strip_suffix(".parquet").is_some_and(|h| hex(h, Some(64)))
        }
        ["dictionaries", f] => f.strip_suffix(".toml").is_some_and(|v| hex(v, Some(16))),
        ["reports", _] | ["verify", "checksums.json"] | [".convlake-run.lock"] => true,
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_outputs_logs_errors_or_the_lake() {
    let mut cfg = sim_config(120);
    cfg.client_secret = Some(convlake::secret::Secret::new(SECRET));
    // Some presigned transcript GETs break off: the client's retry path logs the link (whose
    // query is its signature) at debug level, where reqwest's error text would carry it.
    cfg.faults.presigned_drop_rate = 0.3;
    let sim = start_sim(cfg.clone()).await;
    let receiver = convlake::report::start_receiver("127.0.0.1:0".parse().unwrap(), 1)
        .await
        .unwrap();
    let schema = fresh_schema();
    password_role().await;
    let db = url_with_password();
    let env = [
        ("GENESYS_CLIENT_SECRET", SECRET),
        ("DATABASE_URL", db.as_str()),
        ("DASHBOARD_API_URL", receiver.url.as_str()),
        ("DASHBOARD_API_TOKEN", TOKEN),
        ("CONVLAKE_DB_SCHEMA", schema.as_str()),
        // Every log line of every crate.
        ("RUST_LOG", "debug"),
    ];
    let lake = TestLake::new();
    let fetch = [
        "--api-url",
        sim.url.as_str(),
        "--from",
        "2026-03-01",
        "--to",
        "2026-03-10",
        "--not-ready-wait",
        "0",
    ];
    let mut outputs: Vec<(String, Output)> = Vec::new();
    let mut run = vec!["run"];
    run.extend(fetch);
    outputs.push(("run".into(), lake.run_env(&run, &env).await));
    assert!(outputs[0].1.status.success(), "{}", stderr(&outputs[0].1));
    let mut fetch_archive = vec!["-vvv", "fetch", "--source", "archive"];
    fetch_archive.extend(fetch);
    for args in [
        fetch_archive,
        vec!["-vvv", "extract"],
        vec!["-vvv", "aggregate"],
        vec!["-vvv", "sync"],
        vec!["-vvv", "report"],
        vec!["-vvv", "export"],
        vec!["-vvv", "export", "--dry-run"],
        vec!["query", "SELECT * FROM events", "--format", "json"],
        vec!["verify"],
    ] {
        let out = lake.run_env(&args, &env).await;
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        outputs.push((format!("{args:?}"), out));
    }
    assert!(
        receiver
            .received()
            .iter()
            .all(|r| r.authorization.as_deref() == Some(&format!("Bearer {TOKEN}"))),
        "the token did reach the dashboard"
    );
    // A dashboard URL that carries credentials itself (userinfo, a key in the query): export
    // names it without them.
    let mut keyed = url::Url::parse(&receiver.url).unwrap();
    keyed.set_username("dash").unwrap();
    keyed.set_password(Some(URL_PASSWORD)).unwrap();
    keyed.set_query(Some(&format!("key={URL_KEY}")));
    let out = lake
        .run_env(&["-vvv", "export", "--dashboard-url", keyed.as_str()], &env)
        .await;
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let mut shown = url::Url::parse(&receiver.url).unwrap();
    shown.set_query(None);
    assert!(
        err.contains(&format!("export: posted to {shown}?…")),
        "export names the dashboard, redacted: {err}"
    );
    outputs.push(("export to a URL with credentials".into(), out));
    let stats = sim.stats();
    assert!(
        stats.presigned > stats.transcript_urls,
        "no presigned GET failed, so its error path did not run: {stats:?}"
    );

    // Every presigned GET fails: the fetch stops with an error naming the link.
    let mut always = cfg.clone();
    always.faults.presigned_drop_rate = 1.0;
    let broken = start_sim(always).await;
    let broken_lake = TestLake::new();
    let out = broken_lake
        .run_env(
            &[
                "-vvv",
                "fetch",
                "--api-url",
                broken.url.as_str(),
                "--media",
                "voice",
                "--from",
                "2026-03-01",
                "--to",
                "2026-03-02",
                "--max-attempts",
                "2",
            ],
            &env,
        )
        .await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot reach http://") && err.contains("/_s3/transcripts/"),
        "the error names the (redacted) link and the failure: {err}"
    );
    assert!(!err.contains("X-Amz-"), "the link's query is shown: {err}");
    let broken_issued = issued_by(&broken);
    assert!(
        broken_issued.len() >= 2,
        "a token and a link were issued: {broken_issued:?}"
    );
    outputs.push(("fetch with failing presigned links".into(), out));

    // Failures print errors, never the secrets in them.
    let mut closed = url::Url::parse(&db).unwrap();
    closed.set_port(Some(9)).unwrap();
    let closed = closed.to_string();
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>);
    let failing: Vec<Case> = vec![
        (
            vec!["-vvv", "sync"],
            vec![("DATABASE_URL", closed.as_str())],
        ),
        (
            vec!["-vvv", "sync", "--database-url", closed.as_str()],
            vec![],
        ),
        (
            vec![
                "-vvv",
                "fetch",
                "--api-url",
                sim.url.as_str(),
                "--from",
                "2026-03-01",
                "--to",
                "2026-03-01",
            ],
            vec![("GENESYS_CLIENT_SECRET", "sec-CLIENT-wrong-77")],
        ),
        (
            vec![
                "-vvv",
                "export",
                "--dashboard-url",
                "http://127.0.0.1:9/api",
            ],
            vec![],
        ),
    ];
    for (args, extra) in failing {
        let mut e: Vec<(&str, &str)> = env.to_vec();
        e.extend(extra);
        let out = lake.run_env(&args, &e).await;
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(
            !stderr(&out).contains("sec-CLIENT-wrong-77"),
            "{args:?}: {}",
            stderr(&out)
        );
        outputs.push((format!("failing {args:?}"), out));
    }

    let mut issued = issued_by(&sim);
    assert!(
        issued.len() > 10,
        "the simulator issued tokens and links: {}",
        issued.len()
    );
    issued.extend(broken_issued);
    let needles = needles(&issued);
    for (what, out) in &outputs {
        assert_output_clean(what, out, &needles);
    }
    assert!(assert_lake_clean(&lake, &needles) > 20);
    assert_lake_clean(&broken_lake, &needles);
    receiver.shutdown().await;
    broken.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_never_shows_secret_values_from_the_environment() {
    let lake = TestLake::new();
    let db = url_with_password();
    let env = [
        ("GENESYS_CLIENT_SECRET", SECRET),
        ("GENESYSCLOUD_OAUTHCLIENT_SECRET", SECRET),
        ("DATABASE_URL", db.as_str()),
        ("POSTGRES_CONNECTION_STRING", db.as_str()),
        ("DASHBOARD_API_TOKEN", TOKEN),
    ];
    for cmd in [
        "fetch", "run", "sync", "migrate", "export", "simulate", "demo", "bench", "verify",
    ] {
        let out = lake.run_env(&[cmd, "--help"], &env).await;
        assert!(out.status.success(), "{cmd} --help");
        assert_output_clean(&format!("{cmd} --help"), &out, &needles(&[]));
    }
    let out = lake.run_env(&["--help"], &env).await;
    assert_output_clean("--help", &out, &needles(&[]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_html_report_escapes_transcript_text() {
    let (fake, url) = Fake::start().await;
    let hostile = r#"<script>alert("x")</script> my acme router <img src=x onerror=alert(1)> & "quotes" </td></table>"#;
    let page = serde_json::json!({"entities": [{"id": "c-<b>1</b>", "date": "2026-03-01T10:00:00Z",
        "type": "chat", "interactions": [{"participant": "customer", "transcript": hostile}]}]});
    fake.serve(
        "POST /api/v2/archiving/conversations/query",
        serde_json::to_vec(&page).unwrap(),
    );
    let lake = TestLake::new();
    let out = lake
        .run(&[
            "fetch",
            "--source",
            "archive",
            "--media",
            "chat",
            "--api-url",
            &url,
            "--from",
            "2026-03-01",
            "--to",
            "2026-03-01",
        ])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    lake.ok(&["extract"]).await;
    lake.ok(&["aggregate"]).await;
    lake.ok(&["report", "--from", "2026-03-01", "--to", "2026-03-01"])
        .await;
    let html = std::fs::read_to_string(lake.path().join("reports/report.html")).unwrap();
    assert!(
        html.contains("&lt;script&gt;alert"),
        "the snippet is shown, escaped"
    );
    for raw in ["<script", "<img", "</td></table>", "<b>1</b>"] {
        assert!(
            !html.contains(raw),
            "report.html contains {raw:?} unescaped"
        );
    }
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_certificates_are_verified() {
    // An HTTPS server with a self-signed certificate: fetch must refuse it.
    let dir = tempfile::tempdir().unwrap();
    let ok = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
        ])
        .current_dir(dir.path())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success());
    let port = free_port();
    let mut server = tokio::process::Command::new("openssl")
        .args([
            "s_server", "-quiet", "-www", "-key", "key.pem", "-cert", "cert.pem",
        ])
        .args(["-accept", &port.to_string()])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // The server must be up: otherwise "cannot reach" would only say that nothing listens.
    let mut up = false;
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            up = true;
            break;
        }
        assert!(
            server.try_wait().unwrap().is_none(),
            "openssl s_server exited before it listened"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        up,
        "the TLS server on port {port} never accepted a connection"
    );
    let lake = TestLake::new();
    let url = format!("https://127.0.0.1:{port}");
    let out = lake
        .run(&[
            "fetch",
            "--api-url",
            &url,
            "--from",
            "2026-03-01",
            "--to",
            "2026-03-01",
            "--max-attempts",
            "1",
        ])
        .await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    // The message says why: the TLS error from reqwest's source chain.
    assert!(err.contains("cannot reach"), "{err}");
    assert!(
        err.contains("certificate"),
        "the reason is the certificate: {err}"
    );
    assert!(!err.contains("Connection refused"), "{err}");
    server.start_kill().unwrap();
    let _ = server.wait().await;

    // No switch turns verification off in the sources.
    for f in all_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src")) {
        let text = std::fs::read_to_string(&f).unwrap();
        for bad in [
            "danger_accept_invalid",
            "dangerous()",
            "NoCertificateVerification",
        ] {
            assert!(!text.contains(bad), "{} uses {bad}", f.display());
        }
    }
}

#[test]
fn hash_derived_paths() {
    let h = format!("ab{}", "0".repeat(62));
    assert!(hash_derived(&format!("raw/ab/{h}.parquet")));
    assert!(!hash_derived(&format!("raw/cd/{h}.parquet")));
    assert!(!hash_derived("raw/ab/../../etc.parquet"));
    assert!(hash_derived("events/00000000000000000001.jsonl"));
}
