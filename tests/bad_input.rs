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
        &Expect::Fails(&["not-a-dir", "cannot open the lake"]),
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
