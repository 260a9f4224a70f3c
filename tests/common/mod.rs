//! The shared harness for integration tests: a temp lake, the simulator on a free loopback
//! port, the real `convlake` binary, and a fresh PostgreSQL schema per test.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use chrono::NaiveDate;
use convlake::extract::Dictionary;
use convlake::simulator::{self, RunningSimulator, SimConfig, SimProduct};

pub const CLIENT_ID: &str = "test-client";
pub const CLIENT_SECRET: &str = "test-secret-value";

/// The database every test uses (a fresh schema each). The test command (`scripts/test`)
/// starts a throwaway cluster and sets it; the database tests never skip.
pub fn database_url() -> String {
    std::env::var("TEST_DATABASE_URL").expect(
        "TEST_DATABASE_URL is not set: run the suite with scripts/test, which starts a throwaway PostgreSQL",
    )
}

/// A schema name no other test uses.
pub fn fresh_schema() -> String {
    format!(
        "t_{}",
        &blake3::hash(format!("{:?}{}", std::time::SystemTime::now(), rand_u64()).as_bytes())
            .to_hex()[..16]
    )
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::process::id() as u64);
    h.finish()
}

pub fn products() -> Vec<SimProduct> {
    Dictionary::embedded()
        .products
        .iter()
        .map(|p| SimProduct {
            name: p.name.clone(),
            aliases: p.aliases.clone(),
        })
        .collect()
}

pub const START: &str = "2026-03-01";

pub fn start_date() -> NaiveDate {
    START.parse().unwrap()
}

/// A small simulator config: `n` conversations over 10 days from START.
pub fn sim_config(n: usize) -> SimConfig {
    let mut cfg = SimConfig::new(products());
    cfg.conversations = n;
    cfg.start = start_date();
    cfg.days = 10;
    cfg.seed = 7;
    cfg.client_id = Some(CLIENT_ID.into());
    cfg.client_secret = Some(convlake::secret::Secret::new(CLIENT_SECRET));
    cfg
}

pub async fn start_sim(cfg: SimConfig) -> RunningSimulator {
    simulator::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("simulator starts")
}

/// Ground truth per product over [from, to] (inclusive), all media.
pub fn truth(cfg: &SimConfig, from: NaiveDate, to: NaiveDate) -> BTreeMap<String, u64> {
    simulator::ground_truth(
        cfg,
        from,
        to + chrono::Days::new(1),
        &["voice", "chat", "email", "message"],
    )
    .totals_by_product()
}

/// A temp lake and a way to run the binary against it.
pub struct TestLake {
    pub dir: tempfile::TempDir,
}

impl TestLake {
    pub fn new() -> TestLake {
        TestLake {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `convlake --lake <lake> args…` with the test credentials in the environment.
    pub async fn run(&self, args: &[&str]) -> Output {
        self.run_env(args, &[]).await
    }

    pub async fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_convlake"));
        cmd.arg("--lake").arg(self.path()).args(args);
        cmd.env("GENESYS_CLIENT_ID", CLIENT_ID)
            .env("GENESYS_CLIENT_SECRET", CLIENT_SECRET)
            .env_remove("DATABASE_URL")
            .env_remove("POSTGRES_CONNECTION_STRING")
            .env_remove("DASHBOARD_API_URL")
            .env_remove("CONVLAKE_LAKE")
            .env_remove("CONVLAKE_DICTIONARY")
            .env_remove("GENESYSCLOUD_OAUTHCLIENT_ID")
            .env_remove("GENESYSCLOUD_OAUTHCLIENT_SECRET");
        for (k, v) in env {
            cmd.env(k, v);
        }
        // Use the repository's dictionary whatever the working directory.
        cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
        cmd.output().await.expect("the convlake binary runs")
    }

    /// Runs and asserts success, returning stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            out.status.success(),
            "convlake {args:?} failed ({:?}):\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Fetch args for the simulator over [from, to].
    pub async fn fetch(&self, sim: &RunningSimulator, from: &str, to: &str) -> Output {
        self.run(&["fetch", "--api-url", &sim.url, "--from", from, "--to", to])
            .await
    }

    /// Every file under a lake directory, relative, sorted, with its blake3. The object
    /// store's staging files (`x.parquet#1`, left by a writer killed mid-put; no reader sees
    /// them) are left out: `assert_sound` and verify account for them.
    pub fn files(&self, sub: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        collect(&self.path().join(sub), self.path(), &mut out);
        out.sort();
        out
    }

    /// `SELECT product, SUM(mentions)` from mention_counts as a map.
    pub async fn totals(&self) -> BTreeMap<String, u64> {
        let csv = self.ok(&["query", TOTALS_SQL, "--format", "csv"]).await;
        parse_totals(&csv)
    }
}

/// Mentions per product from mention_counts (parse the CSV with [`parse_totals`]).
pub const TOTALS_SQL: &str =
    "SELECT product, SUM(mentions) AS mentions FROM mention_counts GROUP BY product ORDER BY product";

/// A Ballista scheduler and `executors` executor processes of the test binary on loopback (one
/// task slot each), with `env` for every node; gone when dropped.
#[cfg(feature = "ballista")]
pub async fn start_cluster(
    executors: usize,
    env: Vec<(String, String)>,
) -> convlake::aggregate::ballista::cluster::LocalCluster {
    use convlake::aggregate::ballista::cluster::{ClusterOptions, LocalCluster};
    let options = ClusterOptions {
        executors,
        // Executors on a small machine: one task slot each keeps the load predictable.
        concurrency: Some(1),
        env,
        timeout: std::time::Duration::from_secs(180),
    };
    tokio::task::spawn_blocking(move || {
        LocalCluster::start(Path::new(env!("CARGO_BIN_EXE_convlake")), &options)
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Asserts that `aggregate --engine ballista` on `cluster` succeeded; when it did not, shows its
/// stderr and every node's log.
#[cfg(feature = "ballista")]
pub fn assert_aggregated_on(
    cluster: &convlake::aggregate::ballista::cluster::LocalCluster,
    out: &Output,
) {
    assert!(
        out.status.success(),
        "aggregate on Ballista failed:\n{}\n{}",
        stderr(out),
        cluster.logs()
    );
}

pub fn parse_totals(csv: &str) -> BTreeMap<String, u64> {
    csv.lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (p, n) = l.rsplit_once(',').unwrap();
            (p.trim_matches('"').to_string(), n.parse().unwrap())
        })
        .collect()
}

fn collect(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p: PathBuf = e.path();
        if p.is_dir() {
            collect(&p, root, out);
        } else if e.file_name().to_string_lossy().contains('#') {
            continue;
        } else {
            // A file can vanish between the listing and the read while a convlake process
            // writes next to the test (a temp file renamed into place): skip it.
            let bytes = match std::fs::read(&p) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => panic!("reading {}: {e}", p.display()),
            };
            out.push((
                p.strip_prefix(root).unwrap().display().to_string(),
                blake3::hash(&bytes).to_hex().to_string(),
            ));
        }
    }
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

// ---- Fault drills and bad input (tests/faults.rs, tests/bad_input.rs, tests/security.rs) ----

impl TestLake {
    /// Starts `convlake --lake <lake> args…` (test credentials, output discarded) without
    /// waiting, so that a drill can SIGKILL it (`Child::start_kill` sends SIGKILL on Unix).
    pub fn spawn_env(&self, args: &[&str], env: &[(&str, &str)]) -> tokio::process::Child {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_convlake"));
        cmd.arg("--lake").arg(self.path()).args(args);
        cmd.env("GENESYS_CLIENT_ID", CLIENT_ID)
            .env("GENESYS_CLIENT_SECRET", CLIENT_SECRET)
            .env_remove("DATABASE_URL")
            .env_remove("POSTGRES_CONNECTION_STRING")
            .env_remove("DASHBOARD_API_URL")
            .env_remove("CONVLAKE_LAKE")
            .env_remove("CONVLAKE_DICTIONARY");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        cmd.spawn().expect("the convlake binary starts")
    }

    /// Every row of mention_counts as CSV lines, sorted.
    pub async fn mention_count_lines(&self) -> Vec<String> {
        self.query_lines(
            "SELECT conversation_date, interaction_type, product, mentions, conversations FROM mention_counts ORDER BY 1, 2, 3",
        )
        .await
    }

    /// The rows of `convlake query SQL` as CSV lines, without the header.
    pub async fn query_lines(&self, sql: &str) -> Vec<String> {
        self.ok(&["query", sql, "--format", "csv"])
            .await
            .lines()
            .skip(1)
            .map(String::from)
            .collect()
    }

    /// The lake's event log, read in-process.
    pub async fn events(&self) -> Vec<convlake::lake::Event> {
        convlake::lake::Lake::open_local(self.path())
            .unwrap()
            .events()
            .read_all()
            .await
            .unwrap()
    }
}

/// The first column (text) of every row `sql` returns, in its order.
pub async fn first_column(
    c: &tokio_postgres::Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Vec<String> {
    c.query(sql, params)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Every row of `product_mentions` in `schema` as CSV lines, sorted.
pub async fn product_mentions_lines(schema: &str) -> Vec<String> {
    let (client, conn) = tokio_postgres::connect(&database_url(), tokio_postgres::NoTls)
        .await
        .expect("TEST_DATABASE_URL accepts connections");
    tokio::spawn(conn);
    client
        .query(
            &format!(
                "SELECT recorded_date::text, interaction_type::text, product_name::text, mention_count::bigint, conversation_count::bigint
                 FROM \"{schema}\".product_mentions ORDER BY 1, 2, 3"
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{},{},{},{},{}",
                r.get::<_, String>(0),
                r.get::<_, String>(1),
                r.get::<_, String>(2),
                r.get::<_, i64>(3),
                r.get::<_, i64>(4)
            )
        })
        .collect()
}

/// Every file under `dir`, recursively (relative paths, sorted), staging files included.
pub fn all_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(d) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

/// A fake API: `POST /oauth/token` always succeeds; every other `METHOD /path` answers what the
/// test put in `routes` (status 200), else 404.
#[derive(Clone, Default)]
pub struct Fake {
    pub routes: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>>,
    /// `METHOD /path` of every request, in order.
    pub seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

async fn fake_handle(
    axum::extract::State(f): axum::extract::State<Fake>,
    req: axum::extract::Request,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let key = format!("{} {}", req.method(), req.uri().path());
    f.seen.lock().unwrap().push(key.clone());
    if key == "POST /oauth/token" {
        return (
            [("content-type", "application/json")],
            r#"{"access_token":"fake-token","token_type":"bearer","expires_in":86400}"#,
        )
            .into_response();
    }
    match f.routes.lock().unwrap().get(&key) {
        Some(body) => ([("content-type", "application/json")], body.clone()).into_response(),
        None => (
            axum::http::StatusCode::NOT_FOUND,
            [("content-type", "application/json")],
            r#"{"message":"not found","code":"not.found","status":404}"#,
        )
            .into_response(),
    }
}

impl Fake {
    pub async fn start() -> (Fake, String) {
        let fake = Fake::default();
        let app = axum::Router::new()
            .fallback(fake_handle)
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (fake, url)
    }

    pub fn serve(&self, route: &str, body: Vec<u8>) {
        self.routes.lock().unwrap().insert(route.to_string(), body);
    }

    pub fn count(&self, route: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|r| *r == route)
            .count()
    }
}

/// Pixels of a PNG: (width, height, distinct colours, share of pixels that are not white).
pub fn png_stats(path: &Path) -> (u32, u32, usize, f64) {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let pixels = &buf[..info.buffer_size()];
    let mut colours = std::collections::HashSet::new();
    let mut not_white = 0usize;
    let mut total = 0usize;
    for p in pixels.chunks(channels) {
        let rgb = (p[0], p[1 % channels], p[2 % channels]);
        colours.insert(rgb);
        total += 1;
        if rgb != (255, 255, 255) {
            not_white += 1;
        }
    }
    (
        info.width,
        info.height,
        colours.len(),
        not_white as f64 / total.max(1) as f64,
    )
}

pub fn chromium() -> PathBuf {
    let path = std::env::var_os("CONVLAKE_TEST_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.exists(),
        "{} is missing: run the suite with scripts/test, which installs Debian's chromium",
        path.display()
    );
    path
}

/// What headless Chromium saw of a page: its console lines, the DOM and a screenshot.
pub struct Rendered {
    pub console: Vec<String>,
    pub dom: String,
    pub screenshot: PathBuf,
}

/// Loads `page` in headless Chromium twice (a fresh profile each): once for a 1280x2000
/// screenshot, once to dump the DOM; console messages come from the logs of both.
pub async fn render(page: &Path, work: &Path) -> Rendered {
    let url = format!("file://{}", page.display());
    let screenshot = work.join("screenshot.png");
    let base = |profile: &str| {
        let mut cmd = tokio::process::Command::new(chromium());
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", work.join(profile).display()));
        cmd
    };
    let shot = base("profile-shot")
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg("--window-size=1280,2000")
        .arg(&url)
        .output()
        .await
        .expect("chromium runs");
    let dump = base("profile-dom")
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .await
        .expect("chromium runs");
    assert!(
        dump.status.success(),
        "chromium --dump-dom failed: {}",
        stderr(&dump)
    );
    let console = [&shot, &dump]
        .iter()
        .flat_map(|o| {
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .filter(|l| l.contains(":CONSOLE"))
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect();
    Rendered {
        console,
        dom: String::from_utf8_lossy(&dump.stdout).into_owned(),
        screenshot,
    }
}
