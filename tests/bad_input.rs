//! The bad-input corpus (`tests/bad_input/`): malformed and hostile pages served by a tiny fake
//! server, broken and hostile dictionaries, invalid command-line values and damaged lakes. Each
//! case gets a clear message naming the input, a non-zero exit where it is fatal, and nothing
//! already staged is lost.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use common::*;

const ARCHIVE_QUERY: &str = "POST /api/v2/archiving/conversations/query";
const DETAILS_QUERY: &str = "POST /api/v2/analytics/conversations/details/query";

fn corpus(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/bad_input")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn corpus_path(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/bad_input")
        .join(name)
        .display()
        .to_string()
}

fn archive_fetch(url: &str, day: &str) -> Vec<String> {
    [
        "fetch",
        "--source",
        "archive",
        "--media",
        "voice",
        "--api-url",
        url,
        "--from",
        day,
        "--to",
        day,
        "--max-attempts",
        "2",
        "--timeout",
        "5",
    ]
    .map(String::from)
    .to_vec()
}

fn analytics_fetch(url: &str, day: &str) -> Vec<String> {
    [
        "fetch",
        "--source",
        "analytics",
        "--listing",
        "query",
        "--interval-days",
        "1",
        "--media",
        "chat",
        "--api-url",
        url,
        "--from",
        day,
        "--to",
        day,
        "--max-attempts",
        "2",
        "--timeout",
        "5",
        "--not-ready-wait",
        "0",
    ]
    .map(String::from)
    .to_vec()
}

async fn run(lake: &TestLake, args: &[String]) -> Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    lake.run(&args).await
}

/// Every file of the lake with its hash.
fn staged(lake: &TestLake) -> Vec<(String, String)> {
    ["raw", "events", "bodies", "mentions", "aggregates"]
        .iter()
        .flat_map(|d| lake.files(d))
        .collect()
}

/// Every file staged before is still there, unchanged.
fn assert_kept(lake: &TestLake, before: &[(String, String)], case: &str) {
    let now: HashMap<String, String> = staged(lake).into_iter().collect();
    for (path, hash) in before {
        assert_eq!(
            now.get(path),
            Some(hash),
            "{case}: {path} was staged before and is lost or changed"
        );
    }
}

/// How a case must end.
enum Expect<'a> {
    /// Exit 1 with every fragment in stderr.
    Fails(&'a [&'a str]),
    /// Exit 0; the rows show this conversation id (or value) afterwards.
    Kept(&'a str),
}

fn check(case: &str, out: &Output, expect: &Expect<'_>) {
    let err = stderr(out);
    match expect {
        Expect::Fails(fragments) => {
            assert_eq!(out.status.code(), Some(1), "{case}: {err}");
            for f in *fragments {
                assert!(err.contains(f), "{case}: the message names {f:?}: {err}");
            }
            assert!(!err.contains("panicked"), "{case}: {err}");
        }
        Expect::Kept(_) => {
            assert!(out.status.success(), "{case}: not fatal: {err}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_hostile_archive_pages() {
    let (fake, url) = Fake::start().await;
    let lake = TestLake::new();
    fake.serve(ARCHIVE_QUERY, corpus("archive/good.json"));
    let out = run(&lake, &archive_fetch(&url, "2026-02-01")).await;
    assert!(out.status.success(), "{}", stderr(&out));
    const PAGE: &str = "/api/v2/archiving/conversations/query";
    let page = PAGE;
    let cases: &[(&str, Expect)] = &[
        ("truncated.json", Expect::Fails(&[page, "not a valid"])),
        (
            "entities_not_an_array.json",
            Expect::Fails(&[page, "invalid type"]),
        ),
        (
            "transcript_is_a_number.json",
            Expect::Fails(&[page, "invalid type: integer `42`"]),
        ),
        (
            "id_is_a_number.json",
            Expect::Fails(&[page, "invalid type"]),
        ),
        (
            "missing_id.json",
            Expect::Fails(&[page, "missing field `id`"]),
        ),
        (
            "missing_date.json",
            Expect::Fails(&[page, "missing field `date`"]),
        ),
        (
            "invalid_utf8.json",
            Expect::Fails(&[page, "invalid unicode"]),
        ),
        ("empty_body.json", Expect::Fails(&[page, "EOF"])),
        (
            "html_error_page.json",
            Expect::Fails(&[page, "not a valid"]),
        ),
        ("date_out_of_range.json", Expect::Fails(&[page])),
        ("date_not_a_date.json", Expect::Fails(&[page])),
        ("unknown_type.json", Expect::Kept("hologram")),
        ("unknown_participant.json", Expect::Kept("unknown")),
        ("empty_page.json", Expect::Kept("")),
        ("date_year_zero.json", Expect::Kept("c-ancient")),
        ("duplicate_conversation_ids.json", Expect::Kept("c-dup")),
        ("hostile_ids.json", Expect::Kept("convlake-escape")),
    ];
    for (n, (file, expect)) in cases.iter().enumerate() {
        let before = staged(&lake);
        fake.serve(ARCHIVE_QUERY, corpus(&format!("archive/{file}")));
        // A day of its own per case: its own run, nothing to resume.
        let day = format!("2026-03-{:02}", n + 1);
        let out = run(&lake, &archive_fetch(&url, &day)).await;
        check(file, &out, expect);
        assert_kept(&lake, &before, file);
        if let Expect::Kept(id) = expect {
            let sql =
                "SELECT conversation_id, interaction_type, participant FROM utterances ORDER BY 1";
            let rows = lake.ok(&["query", sql, "--format", "csv"]).await;
            assert!(rows.contains(id), "{file}: kept: {rows}");
        }
    }
    // The hostile ids are data, never paths.
    assert!(!std::path::Path::new("/tmp/convlake-escape").exists());
    for (path, _) in staged(&lake) {
        assert!(!path.contains(".."), "{path}");
    }
    // Everything staged extracts and aggregates.
    lake.ok(&["extract"]).await;
    lake.ok(&["aggregate"]).await;
    let out = lake.run(&["verify"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_listed_twice_on_a_page_counts_once() {
    let (fake, url) = Fake::start().await;
    let lake = TestLake::new();
    fake.serve(
        ARCHIVE_QUERY,
        corpus("archive/duplicate_conversation_ids.json"),
    );
    let out = run(&lake, &archive_fetch(&url, "2026-03-01")).await;
    assert!(out.status.success(), "{}", stderr(&out));
    lake.ok(&["extract"]).await;
    lake.ok(&["aggregate"]).await;
    assert_eq!(lake.totals().await.get("Acme Router"), Some(&1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_whose_next_page_loops_is_stopped() {
    let (fake, url) = Fake::start().await;
    let lake = TestLake::new();
    fake.serve(ARCHIVE_QUERY, corpus("archive/next_page_loops.json"));
    fake.serve(
        "GET /api/v2/archiving/conversations/query/page/0",
        corpus("archive/next_page_loops.json"),
    );
    let t = Instant::now();
    let child = lake.spawn_env(
        &archive_fetch(&url, "2026-03-01")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        &[],
    );
    let out = tokio::time::timeout(Duration::from_secs(15), child.wait_with_output()).await;
    let pages = fake.count("GET /api/v2/archiving/conversations/query/page/0");
    assert!(
        out.is_ok(),
        "fetch still running after {:?} and {pages} requests of the same page",
        t.elapsed()
    );
    assert!(!out.unwrap().unwrap().status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_analytics_listings_and_recordings() {
    let (fake, url) = Fake::start().await;
    let lake = TestLake::new();
    fake.serve(DETAILS_QUERY, corpus("analytics/good.json"));
    let recordings = |id: &str| format!("GET /api/v2/conversations/{id}/recordings");
    fake.serve(&recordings("a-1"), corpus("analytics/recordings_good.json"));
    fake.serve(
        &recordings("a-holo"),
        corpus("analytics/recordings_good.json"),
    );
    let out = run(&lake, &analytics_fetch(&url, "2026-03-01")).await;
    assert!(out.status.success(), "{}", stderr(&out));
    const Q: &str = "/api/v2/analytics/conversations/details/query";
    let q = Q;
    let cases: &[(&str, Option<&str>, Expect)] = &[
        (
            "missing_conversation_id.json",
            None,
            Expect::Fails(&[q, "no conversationId"]),
        ),
        (
            "conversation_start_not_a_date.json",
            None,
            Expect::Fails(&[q, "a-1", "last tuesday"]),
        ),
        (
            "conversations_is_an_object.json",
            None,
            Expect::Fails(&[q, "invalid type"]),
        ),
        (
            "good.json",
            Some("recordings_wrong_type.json"),
            Expect::Fails(&["a-1", "recordings"]),
        ),
        (
            "good.json",
            Some("recordings_invalid_utf8.json"),
            Expect::Fails(&["a-1", "recordings"]),
        ),
        ("unknown_media_type.json", None, Expect::Kept("a-1")),
        ("duplicate_conversation_ids.json", None, Expect::Kept("a-1")),
    ];
    for (n, (listing, recs, expect)) in cases.iter().enumerate() {
        let case = format!("{listing} + {recs:?}");
        let before = staged(&lake);
        // The conversations start on the case's own day: a run of its own.
        let day = format!("2026-04-{:02}", n + 1);
        let on_day = |b: Vec<u8>| replace(&b, b"2026-03-01", day.as_bytes());
        fake.serve(
            DETAILS_QUERY,
            on_day(corpus(&format!("analytics/{listing}"))),
        );
        fake.serve(
            &recordings("a-1"),
            corpus(&format!(
                "analytics/{}",
                recs.unwrap_or("recordings_good.json")
            )),
        );
        let out = run(&lake, &analytics_fetch(&url, &day)).await;
        check(&case, &out, expect);
        assert_kept(&lake, &before, &case);
    }
    lake.ok(&["extract"]).await;
    lake.ok(&["aggregate"]).await;
    let out = lake.run(&["verify"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// `b` with every `from` replaced by `to` (bytes: some corpus files are not UTF-8).
fn replace(b: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// A lake with one small staged page, extracted with the default dictionary.
async fn small_lake() -> TestLake {
    let (fake, url) = Fake::start().await;
    let lake = TestLake::new();
    fake.serve(ARCHIVE_QUERY, corpus("archive/good.json"));
    let out = run(&lake, &archive_fetch(&url, "2026-02-01")).await;
    assert!(out.status.success(), "{}", stderr(&out));
    lake.ok(&["extract"]).await;
    lake.ok(&["aggregate"]).await;
    lake
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_and_hostile_dictionaries() {
    let lake = small_lake().await;
    let before = staged(&lake);
    let fatal: &[(&str, &[&str])] = &[
        ("empty_name.toml", &["empty_name.toml", "name"]),
        ("blank_alias.toml", &["blank_alias.toml", "alias"]),
        ("syntax_error.toml", &["syntax_error.toml", "line 2"]),
        ("no_products.toml", &["no_products.toml", "no [[product]]"]),
        (
            "name_is_a_number.toml",
            &["name_is_a_number.toml", "string"],
        ),
        ("not_utf8.toml", &["not_utf8.toml", "UTF-8"]),
        (
            "fuzzy_not_a_bool.toml",
            &["fuzzy_not_a_bool.toml:4:", "expected a boolean"],
        ),
        (
            "accents_unknown.toml",
            &["accents_unknown.toml:3:", "`strict`", "`exact`"],
        ),
        (
            "sounds_like_not_a_list.toml",
            &["sounds_like_not_a_list.toml:3:", "sequence"],
        ),
        ("punctuation_only.toml", &["punctuation_only.toml", "empty"]),
        (
            "duplicate_names.toml",
            &["duplicate_names.toml", "acme router"],
        ),
        (
            "does_not_exist.toml",
            &["does_not_exist.toml", "cannot read"],
        ),
    ];
    for (file, fragments) in fatal {
        let path = corpus_path(&format!("dictionary/{file}"));
        let out = lake.run(&["--dictionary", &path, "extract"]).await;
        check(file, &out, &Expect::Fails(fragments));
        assert_kept(&lake, &before, file);
    }

    // Hostile but valid: regex characters, SQL and HTML in names are plain text.
    let path = corpus_path("dictionary/hostile_names.toml");
    lake.ok(&["--dictionary", &path, "extract"]).await;
    lake.ok(&["--dictionary", &path, "aggregate"]).await;
    let totals = lake
        .ok(&[
            "--dictionary",
            &path,
            "query",
            "SELECT product, SUM(mentions) AS n FROM mention_counts GROUP BY product",
            "--format",
            "csv",
        ])
        .await;
    assert_eq!(
        parse_totals(&totals).get("Acme Router"),
        Some(&1),
        "{totals}"
    );

    // Huge: 20,000 products, and one with 5,000 aliases.
    let t = Instant::now();
    let mut huge = String::new();
    for i in 0..20_000 {
        huge.push_str(&format!("[[product]]\nname = \"Widget Model {i:05}\"\n"));
    }
    huge.push_str("[[product]]\nname = \"Acme Router\"\naliases = [");
    for i in 0..5_000 {
        huge.push_str(&format!("\"acme router variant {i}\", "));
    }
    huge.push_str("\"acme rooter\"]\n");
    let p = lake.path().join("huge.toml");
    std::fs::write(&p, &huge).unwrap();
    let p = p.display().to_string();
    lake.ok(&["--dictionary", &p, "extract"]).await;
    lake.ok(&["--dictionary", &p, "aggregate"]).await;
    let totals = lake
        .ok(&[
            "--dictionary",
            &p,
            "query",
            "SELECT product, SUM(mentions) AS n FROM mention_counts GROUP BY product",
            "--format",
            "csv",
        ])
        .await;
    assert_eq!(
        parse_totals(&totals).get("Acme Router"),
        Some(&1),
        "{totals}"
    );
    eprintln!(
        "huge dictionary ({} KB): {:.1}s",
        huge.len() / 1024,
        t.elapsed().as_secs_f64()
    );
    assert_kept(&lake, &before, "valid dictionaries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_50_mb_transcript() {
    let (fake, url) = Fake::start().await;
    let lake = TestLake::new();
    let t = Instant::now();
    let chunk = "the customer says my acme router keeps dropping and the line is noisy ";
    let text = chunk.repeat(50 * 1024 * 1024 / chunk.len());
    let page = serde_json::json!({"entities": [{"id": "c-huge", "date": "2026-03-01T10:00:00Z",
        "type": "voice", "interactions": [{"participant": "customer", "transcript": text}]}]});
    fake.serve(ARCHIVE_QUERY, serde_json::to_vec(&page).unwrap());
    let out = run(&lake, &archive_fetch(&url, "2026-03-01")).await;
    assert!(out.status.success(), "{}", stderr(&out));
    lake.ok(&["extract"]).await;
    lake.ok(&["aggregate"]).await;
    let totals = lake.totals().await;
    assert_eq!(
        totals.get("Acme Router"),
        Some(&((50 * 1024 * 1024 / chunk.len()) as u64))
    );
    eprintln!("50 MB transcript: {:.1}s", t.elapsed().as_secs_f64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_command_line_values() {
    let lake = TestLake::new();
    let usage: &[(&[&str], &[&str])] = &[
        (
            &["fetch", "--from", "2026-13-45"],
            &["2026-13-45", "--from"],
        ),
        (&["fetch", "--to", "31/01/2026"], &["31/01/2026"]),
        (&["fetch", "--lateness", "5x"], &["5x", "duration"]),
        (&["run", "--every", "0m"], &["0m", "duration"]),
        (&["fetch", "--interval-days", "40"], &["40"]),
        (&["fetch", "--concurrency", "0"], &["0"]),
        (&["fetch", "--source", "ftp"], &["ftp"]),
        (&["fetch", "--timeout", "-5"], &["-5"]),
        (&["report", "--from", "yesterday"], &["yesterday"]),
    ];
    for (args, fragments) in usage {
        let out = lake.run(args).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        for f in *fragments {
            assert!(err.contains(f), "{args:?}: names {f:?}: {err}");
        }
    }
    let fatal: &[(&[&str], &[&str])] = &[
        (
            &["fetch", "--from", "2026-03-10", "--to", "2026-03-01"],
            &["2026-03-10", "2026-03-01"],
        ),
        (&["fetch", "--api-url", "not a url"], &["not a url"]),
        (
            &["fetch", "--api-url", "ftp://example.com"],
            &["ftp://example.com"],
        ),
        (&["fetch", "--region", "mars-north-1"], &["mars-north-1"]),
        (
            &["fetch", "--source", "archive", "--media", "hologram"],
            &["hologram"],
        ),
    ];
    for (args, fragments) in fatal {
        let mut a = args.to_vec();
        if !a.contains(&"--api-url") && !a.contains(&"--region") {
            a.extend(["--api-url", "http://127.0.0.1:9"]);
        }
        let out = lake.run(&a).await;
        check(&format!("{a:?}"), &out, &Expect::Fails(fragments));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_and_newer_lakes() {
    // A lake path that is a file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_convlake"))
        .arg("--lake")
        .arg(&file)
        .arg("extract")
        .output()
        .await
        .unwrap();
    check(
        "lake is a file",
        &out,
        &Expect::Fails(&["not-a-dir", "no lake at"]),
    );

    // A lake directory this user cannot read (run as `nobody`: root reads everything).
    let lake = small_lake().await;
    let before = staged(&lake);
    let mode = |m: u32| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(lake.path(), std::fs::Permissions::from_mode(m)).unwrap();
    };
    mode(0o711);
    std::fs::set_permissions(
        lake.path().join("events"),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let out = tokio::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_convlake"))
        .arg("--lake")
        .arg(lake.path())
        .arg("extract")
        .current_dir("/")
        .output()
        .await
        .unwrap();
    mode(0o755);
    check(
        "unreadable lake",
        &out,
        &Expect::Fails(&["events", "Permission denied"]),
    );
    assert_kept(&lake, &before, "unreadable lake");

    // A lake written by a newer convlake: an event kind this version does not know.
    let lake = small_lake().await;
    let before = staged(&lake);
    let next = lake.files("events").len() + 1;
    std::fs::write(
        lake.path().join(format!("events/{next:020}.jsonl")),
        corpus("lake/newer_event_kind.jsonl"),
    )
    .unwrap();
    let out = lake.run(&["extract"]).await;
    check(
        "newer event kind",
        &out,
        &Expect::Fails(&[&format!("{next:020}.jsonl"), "compacted"]),
    );
    let out = lake.run(&["verify"]).await;
    let report = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(report.contains("newer version"), "{report}");
    assert!(
        lake.path()
            .join(format!("events/{next:020}.jsonl"))
            .exists(),
        "a newer lake's events are never quarantined"
    );
    assert_kept(&lake, &before, "newer lake");

    // A damaged segment: named, and verify quarantines it so the lake works again.
    let lake = small_lake().await;
    let next = lake.files("events").len() + 1;
    let seg = format!("events/{next:020}.jsonl");
    std::fs::write(lake.path().join(&seg), corpus("lake/damaged_segment.jsonl")).unwrap();
    let out = lake.run(&["extract"]).await;
    check("damaged segment", &out, &Expect::Fails(&[&seg, "damaged"]));
    let out = lake.run(&["verify"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(lake.path().join("quarantine").join(&seg).exists());
    lake.ok(&["extract"]).await;
    lake.ok(&["verify"]).await;
}

// ---- Odd dates, hostile Retry-After, and every command on every lake of the corpus ----

/// An archive page of one voice conversation per date (id `c-<date>`), each mentioning Acme
/// Router once.
fn dated_page(dates: &[&str]) -> Vec<u8> {
    let entities: Vec<serde_json::Value> = dates
        .iter()
        .map(|d| {
            serde_json::json!({"id": format!("c-{d}"), "date": format!("{d}T10:00:00.000Z"),
                "type": "voice", "interactions": [{"participant": "customer",
                "timestamp": format!("{d}T10:00:00.000Z"), "transcript": "my acme router is broken"}]})
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({"entities": entities, "nextPageUri": null})).unwrap()
}

/// One answer of a [`Scripted`] route.
#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn ok(body: Vec<u8>) -> Reply {
        Reply {
            status: 200,
            headers: Vec::new(),
            body,
        }
    }

    fn too_many(retry_after: &str) -> Reply {
        Reply {
            status: 429,
            headers: vec![("retry-after", retry_after.to_string())],
            body: br#"{"message":"rate limited","code":"too.many.requests","status":429}"#.to_vec(),
        }
    }
}

/// A fake API whose routes follow a script: each request of `METHOD /path` takes the next
/// reply, and the last one repeats (so a route can answer 429 once, then 200). `POST
/// /oauth/token` always succeeds.
#[derive(Clone, Default)]
struct Scripted {
    routes: std::sync::Arc<std::sync::Mutex<HashMap<String, std::collections::VecDeque<Reply>>>>,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

async fn scripted_handle(
    axum::extract::State(s): axum::extract::State<Scripted>,
    req: axum::extract::Request,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let key = format!("{} {}", req.method(), req.uri().path());
    s.seen.lock().unwrap().push(key.clone());
    if key == "POST /oauth/token" {
        return (
            [("content-type", "application/json")],
            r#"{"access_token":"fake-token","token_type":"bearer","expires_in":86400}"#,
        )
            .into_response();
    }
    let reply = {
        let mut routes = s.routes.lock().unwrap();
        routes.get_mut(&key).and_then(|q| {
            if q.len() > 1 {
                q.pop_front()
            } else {
                q.front().cloned()
            }
        })
    };
    let Some(reply) = reply else {
        return (
            axum::http::StatusCode::NOT_FOUND,
            r#"{"message":"not found","code":"not.found","status":404}"#,
        )
            .into_response();
    };
    let mut response = (
        axum::http::StatusCode::from_u16(reply.status).unwrap(),
        [("content-type", "application/json")],
        reply.body,
    )
        .into_response();
    for (k, v) in reply.headers {
        response
            .headers_mut()
            .insert(k, axum::http::HeaderValue::from_str(&v).unwrap());
    }
    response
}

impl Scripted {
    async fn start() -> (Scripted, String) {
        let s = Scripted::default();
        let app = axum::Router::new()
            .fallback(scripted_handle)
            .with_state(s.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (s, url)
    }

    fn script(&self, route: &str, replies: Vec<Reply>) {
        self.routes
            .lock()
            .unwrap()
            .insert(route.to_string(), replies.into());
    }

    fn count(&self, route: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|r| *r == route)
            .count()
    }
}

/// Fails the test when a convlake process panicked: exit code 101 (Rust's panic exit) or
/// "panicked" in its stderr. Any other outcome (success, or a clear error) passes.
fn assert_no_panic(case: &str, out: &Output) {
    let err = stderr(out);
    assert_ne!(out.status.code(), Some(101), "{case} panicked:\n{err}");
    assert!(!err.contains("panicked"), "{case} panicked:\n{err}");
}

/// Conversations dated 1901, 1969 (before the Unix epoch), 2199 and 9999 are data like any
/// other: extract, aggregate, report, export, query and run all work on them and keep their
/// dates, each in a lake of its own and all together (a chart spanning 1901 to 9999).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversations_dated_1901_1969_2199_and_9999() {
    let all = ["1901-01-01", "1969-12-31", "2199-12-31", "9999-12-31"];
    let mut cases: Vec<(&str, Vec<&str>)> = all.iter().map(|d| (*d, vec![*d])).collect();
    cases.push(("all four", all.to_vec()));
    for (case, dates) in cases {
        let (fake, url) = Fake::start().await;
        let lake = TestLake::new();
        fake.serve(ARCHIVE_QUERY, dated_page(&dates));
        // The window is the conversations' own day (the first one's for "all four", whose
        // page the server returns whatever the window).
        let fetch = archive_fetch(&url, dates[0]);
        let out = run(&lake, &fetch).await;
        assert!(out.status.success(), "{case}: fetch: {}", stderr(&out));
        lake.ok(&["extract"]).await;
        lake.ok(&["aggregate"]).await;
        let rows = lake
            .query_lines("SELECT CAST(conversation_date AS VARCHAR), mentions FROM mention_counts ORDER BY 1")
            .await;
        let want: Vec<String> = dates.iter().map(|d| format!("{d},1")).collect();
        assert_eq!(rows, want, "{case}: the dates are kept as they are");

        // The report covers the data's last 30 days by default, and any range asked for.
        let out = lake.run(&["report"]).await;
        assert!(out.status.success(), "{case}: report: {}", stderr(&out));
        let html = std::fs::read_to_string(lake.path().join("reports/report.html")).unwrap();
        assert!(html.contains(dates[dates.len() - 1]), "{case}: {html:.400}");
        let out = lake
            .run(&["report", "--from", "1901-01-01", "--to", "9999-12-31"])
            .await;
        assert!(
            out.status.success(),
            "{case}: wide report: {}",
            stderr(&out)
        );
        let svg = std::fs::read_to_string(lake.path().join("reports/trend.svg")).unwrap();
        assert!(
            svg.contains("1901-01-01 to 9999-12-31"),
            "{case}: chart title"
        );
        // Bounded: about 1,000 points per line, not 3 million days.
        assert!(
            svg.len() < 5_000_000,
            "{case}: trend.svg is {} bytes",
            svg.len()
        );
        assert!(
            stderr(&out).contains(&format!("{} mentions", dates.len())),
            "{case}: every mention counts in the wide range: {}",
            stderr(&out)
        );

        let out = lake.run(&["export", "--dry-run"]).await;
        assert!(out.status.success(), "{case}: export: {}", stderr(&out));
        let payload: serde_json::Value = serde_json::from_slice(
            &std::fs::read(lake.path().join("reports/dashboard.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(
            payload["metadata"]["date_range"]["from"], dates[0],
            "{case}"
        );
        assert_eq!(
            payload["metadata"]["date_range"]["to"],
            dates[dates.len() - 1],
            "{case}"
        );
        lake.ok(&["query", "--saved", "daily-by-type", "--format", "csv"])
            .await;

        let mut run_args = fetch.clone();
        run_args[0] = "run".into();
        let out = run(&lake, &run_args).await;
        assert!(out.status.success(), "{case}: run: {}", stderr(&out));
        assert_eq!(
            lake.totals().await.get("Acme Router"),
            Some(&(dates.len() as u64))
        );
    }
}

/// One lake of the corpus, with the fetch arguments (pointing at its own fake server, kept
/// running) that `fetch` and `run` use on it.
struct CorpusLake {
    name: &'static str,
    lake: TestLake,
    fetch: Vec<String>,
    _fake: Option<Fake>,
    _scripted: Option<Scripted>,
}

/// Every lake of the corpus: each odd page that stages, the failed pages, the analytics
/// listings, each odd date, hostile Retry-After values (negative; huge, which a fetch is
/// killed while waiting out), an event log written by a newer convlake, a damaged segment,
/// and a directory with no lake in it.
async fn corpus_lakes() -> Vec<CorpusLake> {
    let mut lakes = Vec::new();
    let archive_lake = |name, fake: Fake, url: &str, lake, day: &str| CorpusLake {
        name,
        lake,
        fetch: archive_fetch(url, day),
        _fake: Some(fake),
        _scripted: None,
    };

    // Odd archive pages that stage, one day each, in one lake; then the pages that fail.
    let (fake, url) = Fake::start().await;
    let lake = TestLake::new();
    let kept = [
        "good.json",
        "unknown_type.json",
        "unknown_participant.json",
        "empty_page.json",
        "date_year_zero.json",
        "duplicate_conversation_ids.json",
        "hostile_ids.json",
    ];
    for (n, file) in kept.iter().enumerate() {
        fake.serve(ARCHIVE_QUERY, corpus(&format!("archive/{file}")));
        let out = run(
            &lake,
            &archive_fetch(&url, &format!("2026-03-{:02}", n + 1)),
        )
        .await;
        assert!(out.status.success(), "{file}: {}", stderr(&out));
    }
    lakes.push(archive_lake(
        "odd archive pages",
        fake,
        &url,
        lake,
        "2026-03-01",
    ));
    let (fake, url) = Fake::start().await;
    let lake = TestLake::new();
    fake.serve(ARCHIVE_QUERY, corpus("archive/good.json"));
    run(&lake, &archive_fetch(&url, "2026-02-01")).await;
    for (n, file) in [
        "truncated.json",
        "entities_not_an_array.json",
        "transcript_is_a_number.json",
        "missing_id.json",
        "invalid_utf8.json",
        "html_error_page.json",
        "date_out_of_range.json",
        "date_not_a_date.json",
    ]
    .iter()
    .enumerate()
    {
        fake.serve(ARCHIVE_QUERY, corpus(&format!("archive/{file}")));
        let out = run(
            &lake,
            &archive_fetch(&url, &format!("2026-03-{:02}", n + 1)),
        )
        .await;
        assert_no_panic(file, &out);
    }
    // `fetch` and `run` on this lake meet the last failing page again.
    lakes.push(archive_lake(
        "failed archive pages",
        fake,
        &url,
        lake,
        "2026-03-08",
    ));

    // Analytics listings and recordings.
    let (fake, url) = Fake::start().await;
    let lake = TestLake::new();
    fake.serve(
        "GET /api/v2/conversations/a-1/recordings",
        corpus("analytics/recordings_good.json"),
    );
    for (n, file) in [
        "good.json",
        "unknown_media_type.json",
        "duplicate_conversation_ids.json",
        "conversation_start_not_a_date.json",
    ]
    .iter()
    .enumerate()
    {
        let day = format!("2026-04-{:02}", n + 1);
        let body = replace(
            &corpus(&format!("analytics/{file}")),
            b"2026-03-01",
            day.as_bytes(),
        );
        fake.serve(DETAILS_QUERY, body);
        assert_no_panic(file, &run(&lake, &analytics_fetch(&url, &day)).await);
    }
    lakes.push(CorpusLake {
        name: "analytics listings",
        lake,
        fetch: analytics_fetch(&url, "2026-04-01"),
        _fake: Some(fake),
        _scripted: None,
    });

    // Odd dates, together in one lake (each alone: `conversations_dated_1901_1969_2199_and_9999`).
    let (fake, url) = Fake::start().await;
    let lake = TestLake::new();
    for date in ["1901-01-01", "1969-12-31", "2199-12-31", "9999-12-31"] {
        fake.serve(ARCHIVE_QUERY, dated_page(&[date]));
        let out = run(&lake, &archive_fetch(&url, date)).await;
        assert!(out.status.success(), "{date}: {}", stderr(&out));
    }
    lakes.push(archive_lake(
        "dated 1901, 1969, 2199 and 9999",
        fake,
        &url,
        lake,
        "9999-12-31",
    ));

    // A negative Retry-After: not a wait; the client backs off and the retry succeeds.
    let (scripted, url) = Scripted::start().await;
    let lake = TestLake::new();
    scripted.script(
        ARCHIVE_QUERY,
        vec![
            Reply::too_many("-5"),
            Reply::ok(corpus("archive/good.json")),
        ],
    );
    let fetch = archive_fetch(&url, "2026-03-01");
    let out = run(&lake, &fetch).await;
    assert_no_panic("Retry-After: -5", &out);
    assert!(out.status.success(), "Retry-After: -5: {}", stderr(&out));
    assert_eq!(scripted.count(ARCHIVE_QUERY), 2, "retried once");
    lakes.push(CorpusLake {
        name: "negative Retry-After",
        lake,
        fetch,
        _fake: None,
        _scripted: Some(scripted),
    });

    // A huge Retry-After on the second page: the fetch waits (bounded by the client's longest
    // wait), alive, and is killed while it waits; the lake keeps the first page.
    let (scripted, url) = Scripted::start().await;
    let lake = TestLake::new();
    const PAGE_1: &str = "/api/v2/archiving/conversations/query/page/1";
    let mut first =
        serde_json::from_slice::<serde_json::Value>(&corpus("archive/good.json")).unwrap();
    first["nextPageUri"] = PAGE_1.into();
    scripted.script(
        ARCHIVE_QUERY,
        vec![Reply::ok(serde_json::to_vec(&first).unwrap())],
    );
    let second = dated_page(&["2026-03-01"]);
    scripted.script(
        &format!("GET {PAGE_1}"),
        vec![
            Reply::too_many("99999999999999999999999999"),
            Reply::ok(second),
        ],
    );
    let fetch = archive_fetch(&url, "2026-03-01");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_convlake"))
        .arg("--lake")
        .arg(lake.path())
        .args(&fetch)
        .env("GENESYS_CLIENT_ID", CLIENT_ID)
        .env("GENESYS_CLIENT_SECRET", CLIENT_SECRET)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let started = Instant::now();
    while scripted.count(&format!("GET {PAGE_1}")) == 0
        && started.elapsed() < Duration::from_secs(30)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        scripted.count(&format!("GET {PAGE_1}")),
        1,
        "the 429 was sent"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let early = child.try_wait().unwrap();
    child.start_kill().unwrap();
    let out = child.wait_with_output().await.unwrap();
    assert_no_panic("Retry-After: 10^26", &out);
    if let Some(status) = early {
        // Ending at once is fine too, with a clear error rather than a panic.
        assert_ne!(status.code(), Some(101), "{}", stderr(&out));
    }
    lakes.push(CorpusLake {
        name: "huge Retry-After",
        lake,
        fetch,
        _fake: None,
        _scripted: Some(scripted),
    });

    // Damaged and foreign lakes.
    for (name, file) in [
        ("newer event kind", "lake/newer_event_kind.jsonl"),
        ("damaged segment", "lake/damaged_segment.jsonl"),
    ] {
        let (fake, url) = Fake::start().await;
        let lake = TestLake::new();
        fake.serve(ARCHIVE_QUERY, corpus("archive/good.json"));
        run(&lake, &archive_fetch(&url, "2026-02-01")).await;
        let next = lake.files("events").len() + 1;
        std::fs::write(
            lake.path().join(format!("events/{next:020}.jsonl")),
            corpus(file),
        )
        .unwrap();
        lakes.push(archive_lake(name, fake, &url, lake, "2026-02-01"));
    }
    let (fake, url) = Fake::start().await;
    lakes.push(archive_lake(
        "no lake",
        fake,
        &url,
        TestLake::new(),
        "2026-02-01",
    ));
    lakes
}

/// Every command on every lake of the corpus ends without a panic: no exit code 101 and no
/// "panicked" in stderr. Success is not required (a clear error is fine). Within a lake the
/// commands run in order, so later ones see what earlier ones made (extract before aggregate,
/// …); the lakes run three at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_on_every_lake_ends_without_a_panic() {
    use futures::StreamExt as _;
    let t = Instant::now();
    let lakes = corpus_lakes().await;
    let built = t.elapsed();
    let runs: usize = futures::stream::iter(lakes.iter().map(every_command))
        .buffer_unordered(3)
        .collect::<Vec<usize>>()
        .await
        .into_iter()
        .sum();
    eprintln!(
        "{runs} commands on {} lakes: {:.1}s (lakes built in {:.1}s)",
        lakes.len(),
        t.elapsed().as_secs_f64(),
        built.as_secs_f64()
    );
}

/// Runs every command on one lake of the corpus, asserting none panics; returns how many ran.
async fn every_command(l: &CorpusLake) -> usize {
    let schema = fresh_schema();
    let report_dir = l.lake.path().join("wide-report").display().to_string();
    let parquet = l.lake.path().join("out.parquet").display().to_string();
    let hostile = corpus_path("dictionary/hostile_names.toml");
    #[rustfmt::skip]
    let fixed: &[&[&str]] = &[
        &["extract"],
        &["aggregate"],
        &["report"],
        // Every day from 1901 to 9999, faceted: the chart's buckets keep it bounded.
        &["report", "--from", "1901-01-01", "--to", "9999-12-31", "--by", "interaction-type", "--out", &report_dir],
        &["export", "--dry-run"],
        &["query", "SELECT * FROM mention_counts", "--format", "csv"],
        &["query", "SELECT * FROM utterances", "--format", "json"],
        &["query", "SELECT * FROM mentions", "--format", "parquet", "--output", &parquet],
        &["query", "--saved", "daily-by-type"],
        &["candidates", "--min-count", "1"],
        &["diff-dictionary", &hostile],
        &["dictionary", "list"],
        &["verify", "--dry-run"],
    ];
    let mut commands: Vec<Vec<String>> = fixed
        .iter()
        .map(|c| c.iter().map(|s| s.to_string()).collect())
        .collect();
    if let Ok(db) = std::env::var("TEST_DATABASE_URL") {
        commands.push(
            ["sync", "--database-url", &db, "--schema", &schema]
                .map(String::from)
                .to_vec(),
        );
    }
    commands.push(l.fetch.clone());
    let mut run_args = l.fetch.clone();
    run_args[0] = "run".into();
    commands.push(run_args);
    commands.push(vec!["verify".into()]);
    for c in &commands {
        let out = run(&l.lake, c).await;
        assert_no_panic(&format!("{}: convlake {}", l.name, c.join(" ")), &out);
    }
    commands.len()
}
