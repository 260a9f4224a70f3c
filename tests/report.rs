//! What users see: `convlake report` (charts and report.html, rendered in headless Chromium),
//! `convlake export` (payloads valid against schemas/dashboard.json, posted with retries) and
//! `convlake query` (tables, formats, saved queries, errors), plus the staged Parquet files read
//! by another engine (pyarrow). No database needed.
//!
//! Chromium and pyarrow are installed by `scripts/test` (Debian's `chromium`; pyarrow in
//! `target/test-venv`); `CONVLAKE_TEST_CHROMIUM` / `CONVLAKE_TEST_PYTHON` override the paths.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;

/// A lake with `n` simulated conversations over `days` days from START, fetched, extracted and
/// aggregated.
async fn staged_lake(days: u32, n: usize) -> TestLake {
    let mut cfg = sim_config(n);
    cfg.days = days;
    let sim = start_sim(cfg).await;
    let lake = TestLake::new();
    let to = (start_date() + chrono::Days::new(u64::from(days) - 1)).to_string();
    let out = lake.fetch(&sim, START, &to).await;
    assert!(out.status.success(), "{}", stderr(&out));
    lake.ok(&["extract"]).await;
    lake.ok(&["aggregate"]).await;
    sim.shutdown().await;
    lake
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

/// Asserts a chart PNG is a real picture: right width, many colours, not mostly white.
fn assert_picture(path: &Path) {
    let (w, _h, colours, ink) = png_stats(path);
    assert_eq!(w, 1200, "{}", path.display());
    assert!(
        colours > 20 && ink > 0.01,
        "{} looks blank: {colours} colours, {:.3} non-white",
        path.display(),
        ink
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_html_renders_in_chromium_with_charts_and_no_console_errors() {
    let lake = staged_lake(21, 400).await;
    let out = lake.path().join("out");
    let run = lake
        .run(&["report", "--out", path_str(&out), "--top", "5"])
        .await;
    assert!(run.status.success(), "{}", stderr(&run));
    let log = stderr(&run);
    assert!(log.contains("2026-03-01 to 2026-03-21"), "{log}");
    assert!(log.contains("report: movers: "), "{log}");

    for chart in [
        "trend.png",
        "share.png",
        "sentiment.png",
        "topics.png",
        "co_mentions.png",
    ] {
        assert_picture(&out.join(chart));
    }
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    // Trend, share, sentiment, topics and co-mentions, and one per flagged insight.
    assert_eq!(
        html.matches("<svg").count(),
        5 + html.matches("class=\"insight-chart\"").count(),
        "every chart inlined"
    );
    for forbidden in [
        "<script",
        "src=\"http",
        "href=\"http",
        "<img",
        "<link rel=\"stylesheet",
    ] {
        assert!(!html.contains(forbidden), "report.html has {forbidden:?}");
    }
    // Headline, movers over a 21-day range, the speaker table and highlighted examples.
    assert!(html.contains("id=\"headline\"") && html.contains("id=\"movers\""));
    assert!(!html.contains("needs at least 14 days"));
    assert!(html.contains("<table id=\"speakers\""));
    assert!(html.contains("<mark class=\"own\">"));
    let totals = lake.totals().await;
    let top = totals.iter().max_by_key(|(_, n)| **n).unwrap();
    assert!(html.contains(&html_escape::encode_text(top.0).to_string()));

    // A control page proves that console output is seen at all.
    let control_dir = tempfile::tempdir().unwrap();
    let control = control_dir.path().join("control.html");
    std::fs::write(
        &control,
        "<!DOCTYPE html><title>c</title><link rel=icon href='data:,'><script>console.error('control-error')</script>",
    )
    .unwrap();
    let seen = render(&control, control_dir.path()).await;
    assert!(
        seen.console.iter().any(|l| l.contains("control-error")),
        "console logging is not captured: {:?}",
        seen.console
    );

    let work = tempfile::tempdir().unwrap();
    let page = render(&out.join("report.html"), work.path()).await;
    assert!(
        page.console.is_empty(),
        "console messages: {:#?}",
        page.console
    );
    for id in [
        "trend",
        "share",
        "sentiment",
        "topics-per-product",
        "co-mentions",
    ] {
        assert!(page.dom.contains(&format!("id=\"{id}\"")), "no {id}");
    }
    assert_eq!(
        page.dom.matches("<svg").count(),
        html.matches("<svg").count()
    );
    assert!(page.dom.contains("<polyline") || page.dom.contains("<path"));
    let (w, h, colours, ink) = png_stats(&page.screenshot);
    assert_eq!((w, h), (1280, 2000));
    assert!(
        colours > 50 && ink > 0.2,
        "screenshot looks blank: {colours} colours, {ink:.3} non-white"
    );
    if let Some(keep) = std::env::var_os("CONVLAKE_KEEP_REPORT") {
        // For looking at the pictures by hand.
        let keep = PathBuf::from(keep);
        std::fs::create_dir_all(&keep).unwrap();
        for f in ["trend.png", "share.png", "report.html"] {
            std::fs::copy(out.join(f), keep.join(f)).unwrap();
        }
        std::fs::copy(&page.screenshot, keep.join("screenshot.png")).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_handles_empty_ranges_one_day_one_product_and_facets() {
    let lake = staged_lake(10, 200).await;
    let out = |name: &str| lake.path().join(name);

    // A range without data: a clear message, labelled charts, a page that says so.
    let run = lake
        .run(&[
            "report",
            "--out",
            path_str(&out("empty")),
            "--from",
            "2020-01-01",
            "--to",
            "2020-01-07",
        ])
        .await;
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(stderr(&run).contains("no product mentions in this range"));
    let html = std::fs::read_to_string(out("empty").join("report.html")).unwrap();
    assert!(html.contains("No product mentions in this range"));
    assert!(std::fs::read_to_string(out("empty").join("trend.svg"))
        .unwrap()
        .contains("No data to plot"));
    for chart in ["trend.png", "share.png"] {
        assert_picture(&out("empty").join(chart));
    }

    // One day.
    let run = lake
        .run(&[
            "report",
            "--out",
            path_str(&out("day")),
            "--from",
            START,
            "--to",
            START,
        ])
        .await;
    assert!(run.status.success(), "{}", stderr(&run));
    let svg = std::fs::read_to_string(out("day").join("trend.svg")).unwrap();
    assert!(svg.contains(&format!("{START} to {START}")));
    assert!(std::fs::read_to_string(out("day").join("report.html"))
        .unwrap()
        .contains("needs at least 14 days"));
    assert_picture(&out("day").join("trend.png"));

    // One product, spelled in lower case, and one interaction type.
    let totals = lake.totals().await;
    let product = totals.keys().next().unwrap().clone();
    let run = lake
        .run(&[
            "report",
            "--out",
            path_str(&out("one")),
            "--product",
            &product.to_lowercase(),
            "--interaction-type",
            "CHAT",
        ])
        .await;
    assert!(run.status.success(), "{}", stderr(&run));
    let svg = std::fs::read_to_string(out("one").join("share.svg")).unwrap();
    assert!(
        svg.contains(&format!("({product}, chat)")),
        "subtitle names the filters"
    );
    let others: Vec<_> = totals.keys().filter(|p| **p != product).collect();
    let trend = std::fs::read_to_string(out("one").join("trend.svg")).unwrap();
    assert!(others.iter().all(|p| !trend.contains(p.as_str())));
    assert_picture(&out("one").join("share.png"));

    // An unknown product is a clear error listing the known ones.
    let run = lake.run(&["report", "--product", "Nope 3000"]).await;
    assert_eq!(run.status.code(), Some(1));
    assert!(stderr(&run).contains("known:") && stderr(&run).contains(&product));

    // Faceted: one small chart per interaction type.
    let run = lake
        .run(&[
            "report",
            "--out",
            path_str(&out("facet")),
            "--by",
            "interaction_type",
        ])
        .await;
    assert!(run.status.success(), "{}", stderr(&run));
    let svg = std::fs::read_to_string(out("facet").join("trend.svg")).unwrap();
    for kind in ["voice", "chat", "email", "message"] {
        assert!(svg.contains(&format!(">\n{kind}\n</text>")), "panel {kind}");
    }
    assert_picture(&out("facet").join("trend.png"));
}

fn validator() -> jsonschema::Validator {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/dashboard.json"),
        )
        .unwrap(),
    )
    .unwrap();
    jsonschema::validator_for(&schema).expect("schemas/dashboard.json is a valid JSON Schema")
}

fn assert_valid(v: &jsonschema::Validator, payload: &serde_json::Value, what: &str) {
    let errors: Vec<String> = v
        .iter_errors(payload)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} violates schemas/dashboard.json: {errors:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_payload_matches_the_schema_and_posts_survive_failures() {
    let v = validator();
    let golden: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/dashboard_payload.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_valid(&v, &golden, "the golden payload");
    let mut broken = golden.clone();
    broken["metadata"]["record_count"] = serde_json::json!("3");
    assert!(!v.is_valid(&broken), "the schema checks types");

    // An empty lake's payload: a fetch of days with no conversations, extracted and
    // aggregated.
    let empty = TestLake::new();
    let sim = start_sim(sim_config(20)).await;
    let out = empty.fetch(&sim, "2026-01-01", "2026-01-02").await;
    assert!(out.status.success(), "{}", stderr(&out));
    sim.shutdown().await;
    empty.ok(&["extract"]).await;
    empty.ok(&["aggregate"]).await;
    let file = empty.path().join("p.json");
    empty
        .ok(&["export", "--dry-run", "--out", path_str(&file)])
        .await;
    let payload: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_valid(&v, &payload, "the empty lake's payload");

    let lake = staged_lake(10, 150).await;
    let file = lake.path().join("p.json");
    lake.ok(&["export", "--dry-run", "--out", path_str(&file)])
        .await;
    let dry: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_valid(&v, &dry, "the dry-run payload");

    // The receiver answers 503 twice; the third attempt lands, with the same key every time.
    let receiver = convlake::report::start_receiver("127.0.0.1:0".parse().unwrap(), 2)
        .await
        .unwrap();
    let run = lake
        .run_env(
            &["export", "--dashboard-url", &receiver.url],
            &[("DASHBOARD_API_TOKEN", "tok-123")],
        )
        .await;
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(
        !stderr(&run).contains("tok-123"),
        "the token is never printed"
    );
    assert_eq!(receiver.request_count(), 3);
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert_valid(&v, &got[0].body, "the posted payload");
    assert_eq!(got[0].body, dry, "posted and dry-run payloads agree");
    assert_eq!(got[0].authorization.as_deref(), Some("Bearer tok-123"));
    let hash = dry["metadata"]["lake_hash"].as_str().unwrap();
    assert_eq!(
        got[0].idempotency_key.as_deref(),
        Some(format!("convlake-{}", &hash[..32]).as_str())
    );
    receiver.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_prints_tables_runs_saved_queries_and_explains_errors() {
    let lake = staged_lake(10, 150).await;

    let list = lake.ok(&["query", "--list"]).await;
    for name in [
        "top-products",
        "daily-by-type",
        "customer-vs-agent",
        "sentiment-by-product",
        "topics-by-product",
        "insights",
    ] {
        let line = list
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{list}"));
        assert!(
            line.len() > name.len() + 10,
            "{name} has a description: {line:?}"
        );
        // Each runs on the lake as it is.
        let table = lake.ok(&["query", "--saved", name]).await;
        assert!(
            table.lines().last().unwrap_or("").ends_with("rows)"),
            "{name}: {table}"
        );
    }

    let totals = lake.totals().await;
    let table = lake.ok(&["query", "--saved", "top-products"]).await;
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("product") && lines[1].contains("-+-"),
        "{table}"
    );
    assert_eq!(
        *lines.last().unwrap(),
        format!("({} rows)", totals.len()),
        "{table}"
    );
    let widths: Vec<usize> = lines
        .iter()
        .filter(|l| l.contains(" | "))
        .map(|l| l.find(" | ").unwrap_or(0))
        .collect();
    assert_eq!(widths.len(), totals.len() + 1);
    assert!(widths.windows(2).all(|w| w[0] == w[1]), "aligned:\n{table}");

    let csv = lake
        .ok(&["query", "--saved", "customer-vs-agent", "--format", "csv"])
        .await;
    let mut speaker_totals = BTreeMap::new();
    for l in csv.lines().skip(1) {
        let cells: Vec<&str> = l.split(',').collect();
        let n: u64 = cells[1].parse().unwrap();
        let parts: u64 = cells[2..5].iter().map(|c| c.parse::<u64>().unwrap()).sum();
        assert_eq!(n, parts, "customer + agent + other = mentions: {l}");
        speaker_totals.insert(cells[0].trim_matches('"').to_string(), n);
    }
    assert_eq!(speaker_totals, totals);
    let daily = lake
        .ok(&["query", "--saved", "daily-by-type", "--format", "json"])
        .await;
    let rows: Vec<serde_json::Value> = serde_json::from_str(&daily).unwrap();
    let sum: u64 = rows.iter().map(|r| r["mentions"].as_u64().unwrap()).sum();
    assert_eq!(sum, totals.values().sum::<u64>());

    // Long text is cut in table mode.
    let text = lake
        .ok(&[
            "query",
            "SELECT text FROM utterances ORDER BY length(text) DESC LIMIT 1",
        ])
        .await;
    let row = text.lines().nth(2).unwrap();
    assert!(row.chars().count() <= 60 && row.ends_with('…'), "{row:?}");

    // Errors: DataFusion's message and the tables with their columns; exit 1; no backtrace.
    let bad = lake
        .run(&["query", "SELECT nope FROM mention_counts"])
        .await;
    assert_eq!(bad.status.code(), Some(1));
    let msg = stderr(&bad);
    assert!(msg.contains("nope"), "{msg}");
    assert!(msg.contains("available tables:"), "{msg}");
    assert!(
        msg.contains("mention_counts: conversation_date, interaction_type, product, mentions"),
        "{msg}"
    );
    assert!(msg.contains("utterances: conversation_id"), "{msg}");
    assert!(
        !msg.contains("panicked") && !msg.contains("backtrace"),
        "{msg}"
    );
    let unknown = lake.run(&["query", "--saved", "nope"]).await;
    assert_eq!(unknown.status.code(), Some(1));
    assert!(stderr(&unknown).contains("top-products"));
    let parquet_to_stdout = lake
        .run(&["query", "SELECT 1", "--format", "parquet"])
        .await;
    assert_eq!(parquet_to_stdout.status.code(), Some(1));
    assert!(stderr(&parquet_to_stdout).contains("--output"));
}

fn python() -> PathBuf {
    let path = std::env::var_os("CONVLAKE_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/python")
        });
    assert!(
        path.exists(),
        "{} is missing: run the suite with scripts/test, which installs pyarrow into target/test-venv",
        path.display()
    );
    path
}

/// Counts from the staged Parquet files, read by pyarrow (not DataFusion): rows of `raw`,
/// mentions per product from `mentions/`, mentions per product from `mention_counts`, and the
/// rows of a Parquet file `convlake query` wrote.
const PYARROW_COUNTS: &str = r#"
import glob, json, sys
import pyarrow.parquet as pq
lake, exported = sys.argv[1], sys.argv[2]
def read(pattern):
    files = sorted(glob.glob(f"{lake}/{pattern}", recursive=True))
    assert files, pattern
    return [pq.read_table(f) for f in files]
raw_rows = sum(t.num_rows for t in read("raw/**/*.parquet"))
mentions = {}
for t in read("mentions/dict=*/*.parquet"):
    for p in t.column("product").to_pylist():
        mentions[p] = mentions.get(p, 0) + 1
counts = {}
# The generation in force: the file the latest `aggregated` event names.
events = [json.loads(l) for f in sorted(glob.glob(f"{lake}/events/*.jsonl")) for l in open(f) if l.strip()]
current = [e for e in events if e["kind"] == "aggregated"][-1]["mention_counts"]
for t in [pq.read_table(f"{lake}/{current}")]:
    for p, n in zip(t.column("product").to_pylist(), t.column("mentions").to_pylist()):
        counts[p] = counts.get(p, 0) + n
out = pq.read_table(exported)
print(json.dumps({"raw": raw_rows, "mentions": mentions, "counts": counts,
                  "exported": {p: n for p, n in zip(out.column("product").to_pylist(), out.column("mentions").to_pylist())}}))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyarrow_reads_the_staged_parquet_and_agrees_with_query() {
    let lake = staged_lake(10, 150).await;
    let exported = lake.path().join("totals.parquet");
    lake.ok(&[
        "query",
        "SELECT product, SUM(mentions) AS mentions FROM mention_counts GROUP BY product",
        "--format",
        "parquet",
        "--output",
        path_str(&exported),
    ])
    .await;
    let out = tokio::process::Command::new(python())
        .args([
            "-c",
            PYARROW_COUNTS,
            path_str(lake.path()),
            path_str(&exported),
        ])
        .output()
        .await
        .expect("python runs");
    assert!(out.status.success(), "pyarrow failed: {}", stderr(&out));
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let as_map = |v: &serde_json::Value| -> BTreeMap<String, u64> {
        v.as_object()
            .unwrap()
            .iter()
            .map(|(k, n)| (k.clone(), n.as_u64().unwrap()))
            .collect()
    };

    let raw_rows = lake
        .ok(&["query", "SELECT COUNT(*) AS n FROM raw", "--format", "csv"])
        .await;
    assert_eq!(
        raw_rows.lines().nth(1).unwrap().parse::<u64>().unwrap(),
        seen["raw"].as_u64().unwrap()
    );
    // One fetch without overlaps: every staged mention is current.
    let mentions = lake
        .ok(&[
            "query",
            "SELECT product, COUNT(*) AS mentions FROM mentions GROUP BY product ORDER BY product",
            "--format",
            "csv",
        ])
        .await;
    assert_eq!(parse_totals(&mentions), as_map(&seen["mentions"]));
    let totals = lake.totals().await;
    assert_eq!(totals, as_map(&seen["counts"]));
    assert_eq!(totals, as_map(&seen["exported"]));
}

/// `convlake query` is read-only: each statement that would write a file (`COPY … TO`), open
/// a file as a table (`CREATE EXTERNAL TABLE`, a file named as a table), create, change or
/// drop a table, or change the session (`SET`) is refused with the reason and exit 1, inline
/// and from `--file`; the lake and the target paths are unchanged afterwards, and queries,
/// EXPLAIN and DESCRIBE still run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_refuses_every_statement_that_is_not_a_query() {
    let lake = staged_lake(3, 40).await;
    let outside = tempfile::tempdir().unwrap();
    // A file outside the lake that a query must not read.
    let private = outside.path().join("private.csv");
    std::fs::write(&private, "token\nneedle-7f3a9c\n").unwrap();
    let copied = outside.path().join("copied.csv");
    let in_lake = lake.path().join("aggregates").join("planted.parquet");
    let before = lake.files("");
    assert!(!before.is_empty());

    let (private_s, copied_s, in_lake_s) = (
        private.display().to_string(),
        copied.display().to_string(),
        in_lake.display().to_string(),
    );
    let refused = [
        format!("COPY (SELECT * FROM mention_counts) TO '{copied_s}' STORED AS CSV"),
        format!("COPY mention_counts TO '{in_lake_s}' STORED AS PARQUET"),
        format!("CREATE EXTERNAL TABLE leak (token VARCHAR) STORED AS CSV LOCATION '{private_s}'"),
        "CREATE TABLE copy_of_counts AS SELECT * FROM mention_counts".to_string(),
        "INSERT INTO mention_counts SELECT * FROM mention_counts".to_string(),
        "DROP TABLE mention_counts".to_string(),
        "SET datafusion.execution.target_partitions = 1".to_string(),
        "CREATE VIEW v AS SELECT 1".to_string(),
    ];
    for sql in &refused {
        let out = lake.run(&["query", sql]).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{sql}: {err}");
        assert!(err.contains("read-only"), "{sql}: {err}");
        assert!(
            err.contains("the lake's tables are convlake's"),
            "{sql}: {err}"
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).is_empty(),
            "{sql} printed a result"
        );
    }

    // The same from --file (a saved query from a colleague).
    let file = outside.path().join("colleague.sql");
    std::fs::write(&file, &refused[0]).unwrap();
    let out = lake
        .run(&["query", "--file", &file.display().to_string()])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("read-only"), "{}", stderr(&out));

    // A file named as a table (DataFusion's URL tables) is not a table here.
    for sql in [
        format!("SELECT * FROM '{private_s}'"),
        format!("SELECT * FROM 'file://{private_s}'"),
    ] {
        let out = lake.run(&["query", &sql, "--format", "csv"]).await;
        assert_eq!(out.status.code(), Some(1), "{sql}: {}", stderr(&out));
        let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
        assert!(!all.contains("needle-7f3a9c"), "{sql} read the file: {all}");
    }

    assert!(!copied.exists(), "COPY wrote {copied_s}");
    assert!(!in_lake.exists(), "COPY wrote into the lake");
    assert_eq!(
        std::fs::read_to_string(&private).unwrap(),
        "token\nneedle-7f3a9c\n"
    );
    assert_eq!(
        lake.files(""),
        before,
        "a refused statement changed the lake"
    );

    // Queries still run, EXPLAIN and DESCRIBE included, and the tables are intact.
    let explain = lake
        .ok(&["query", "EXPLAIN SELECT COUNT(*) FROM mention_counts"])
        .await;
    assert!(explain.contains("logical_plan"), "{explain}");
    let describe = lake.ok(&["query", "DESCRIBE mention_counts"]).await;
    assert!(describe.contains("interaction_type"), "{describe}");
    let totals = lake.totals().await;
    assert!(!totals.is_empty());
    assert_eq!(lake.files(""), before);
}
