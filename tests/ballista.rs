//! `convlake aggregate --engine ballista` against a real cluster: a scheduler and two executors,
//! each its own `convlake ballista …` process on free loopback ports, reading a local lake
//! built from the simulator. The aggregates must be byte-identical to the local engine's, and
//! a wrong or dead scheduler must be a clear error.
#![cfg(feature = "ballista")]

mod common;

use std::time::Duration;

use common::*;
use convlake::simulator::SimConfig;

const EXE: &str = env!("CARGO_BIN_EXE_convlake");

/// A lake with two overlapping fetches (some conversations stored twice) and its mentions.
async fn simulated_lake(n: usize) -> (TestLake, SimConfig) {
    let cfg = sim_config(n);
    let sim = start_sim(cfg.clone()).await;
    let lake = TestLake::new();
    for (from, to) in [("2026-03-01", "2026-03-06"), ("2026-03-04", "2026-03-10")] {
        let out = lake.fetch(&sim, from, to).await;
        assert!(out.status.success(), "fetch failed:\n{}", stderr(&out));
    }
    sim.shutdown().await;
    lake.ok(&["extract"]).await;
    (lake, cfg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_of_processes_writes_the_local_engines_bytes() {
    let (lake, cfg) = simulated_lake(600).await;
    lake.ok(&["aggregate"]).await;
    let local = lake.files("aggregates");
    assert_eq!(local.len(), 6, "{local:?}");
    let local_totals = lake.totals().await;
    assert_eq!(
        local_totals,
        truth(&cfg, start_date(), start_date() + chrono::Days::new(9)),
        "the local engine against the simulator's ground truth"
    );

    // The nodes serve the lake they are started with, and no other.
    let cluster = start_cluster(2, lake_env(&lake)).await;
    std::fs::remove_dir_all(lake.path().join("aggregates")).unwrap();
    let out = lake
        .run(&[
            "aggregate",
            "--engine",
            "ballista",
            "--scheduler",
            &cluster.df_url(),
        ])
        .await;
    assert_aggregated_on(&cluster, &out);
    assert!(
        stderr(&out).contains(&format!("on Ballista at {}", cluster.df_url())),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        lake.files("aggregates"),
        local,
        "Ballista's aggregates differ from the local engine's"
    );
    assert_eq!(lake.totals().await, local_totals);

    // The same through the environment, as a scheduler would set it.
    let again = lake
        .run_env(
            &["aggregate"],
            &[
                ("CONVLAKE_ENGINE", "ballista"),
                ("CONVLAKE_SCHEDULER", &cluster.df_url()),
            ],
        )
        .await;
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(lake.files("aggregates"), local);

    // The nodes serve only their lake: a client aggregating another lake on this cluster is
    // refused, naming the lake the cluster serves, and nothing is written.
    let (other, _) = simulated_lake(20).await;
    let out = other
        .run(&[
            "aggregate",
            "--engine",
            "ballista",
            "--scheduler",
            &cluster.df_url(),
        ])
        .await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}\n{}", cluster.logs());
    let served = lake.path().canonicalize().unwrap().display().to_string();
    assert!(
        err.contains("outside the lake at") || err.contains("serves only the lake at"),
        "{err}"
    );
    assert!(err.contains(&served), "{err}");
    assert!(other.files("aggregates").is_empty());
    assert_eq!(lake.files("aggregates"), local);
}

/// The environment that tells a cluster's nodes which lake they serve.
fn lake_env(lake: &TestLake) -> Vec<(String, String)> {
    vec![(
        "CONVLAKE_LAKE".to_string(),
        lake.path().display().to_string(),
    )]
}

/// A free loopback port with nothing listening on it.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_or_dead_scheduler_is_a_clear_error() {
    let (lake, _) = simulated_lake(20).await;

    let dead = format!("df://127.0.0.1:{}", closed_port());
    let out = lake
        .run(&["aggregate", "--engine", "ballista", "--scheduler", &dead])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(&dead), "{err}");
    assert!(err.contains("convlake ballista scheduler"), "{err}");

    for bad in [
        "http://127.0.0.1:50050",
        "127.0.0.1:50050",
        "df://",
        "df://host/path",
    ] {
        let out = lake
            .run(&["aggregate", "--engine", "ballista", "--scheduler", bad])
            .await;
        assert_eq!(out.status.code(), Some(1), "{bad}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("df://scheduler.internal:50050"),
            "{bad}: {}",
            stderr(&out)
        );
    }

    let out = lake.run(&["aggregate", "--engine", "ballista"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--scheduler"), "{}", stderr(&out));

    let out = lake
        .run(&["aggregate", "--scheduler", "df://127.0.0.1:50050"])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--engine ballista"),
        "{}",
        stderr(&out)
    );

    // An executor whose scheduler never answers gives up, naming it.
    let port = closed_port();
    let out = lake
        .run(&[
            "ballista",
            "executor",
            "--scheduler",
            &format!("127.0.0.1:{port}"),
            "--bind",
            &format!("127.0.0.1:{}", closed_port()),
            "--connect-timeout",
            "1",
        ])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("127.0.0.1:{port}")),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_without_executors_says_to_start_one() {
    use tokio::io::AsyncBufReadExt;

    let (lake, _) = simulated_lake(20).await;
    let mut scheduler = tokio::process::Command::new(EXE)
        .args(["ballista", "scheduler", "--bind", "127.0.0.1:0"])
        .arg("--lake")
        .arg(lake.path())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(scheduler.stderr.take().unwrap()).lines();
    let addr = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(a) = line.strip_prefix("ballista scheduler listening on ") {
                return a.trim().to_string();
            }
        }
        panic!("the scheduler exited before listening");
    })
    .await
    .expect("the scheduler listens within 60 s");
    // Keep draining its stderr so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let out = lake
        .run(&[
            "aggregate",
            "--engine",
            "ballista",
            "--scheduler",
            &format!("df://{addr}"),
        ])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("0/1 executors"), "{err}");
    assert!(
        err.contains(&format!("convlake ballista executor --scheduler {addr}")),
        "{err}"
    );

    // A second scheduler on the same port is refused, naming it.
    let out = lake.run(&["ballista", "scheduler", "--bind", &addr]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains(&addr), "{}", stderr(&out));
    assert!(stderr(&out).contains("--bind"), "{}", stderr(&out));
    scheduler.kill().await.unwrap();
}

/// Ballista's defaults listen on loopback only: the scheduler's and the executor's `--bind`
/// (the executor's gRPC port shares its host). A node told to listen beyond loopback says
/// that the cluster has no authentication; on loopback it does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ballista_listens_on_loopback_unless_told_otherwise() {
    use clap::Parser;
    use convlake::cli::{BallistaRole, Cli, Command};
    use tokio::io::AsyncBufReadExt;

    let parsed = Cli::try_parse_from(["convlake", "ballista", "scheduler"]).unwrap();
    let Command::Ballista(b) = parsed.command else {
        panic!("not a ballista command")
    };
    let BallistaRole::Scheduler(s) = b.role else {
        panic!("not the scheduler")
    };
    assert!(s.bind.ip().is_loopback(), "scheduler default {}", s.bind);
    let parsed = Cli::try_parse_from([
        "convlake",
        "ballista",
        "executor",
        "--scheduler",
        "127.0.0.1:50050",
    ])
    .unwrap();
    let Command::Ballista(b) = parsed.command else {
        panic!("not a ballista command")
    };
    let BallistaRole::Executor(e) = b.role else {
        panic!("not the executor")
    };
    assert!(e.bind.ip().is_loopback(), "executor default {}", e.bind);

    let lake = TestLake::new();
    for (bind, warns) in [("127.0.0.1:0", false), ("0.0.0.0:0", true)] {
        let mut scheduler = tokio::process::Command::new(EXE)
            .args(["ballista", "scheduler", "--bind", bind])
            .arg("--lake")
            .arg(lake.path())
            .env_remove("CONVLAKE_SCHEDULER_BIND")
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(scheduler.stderr.take().unwrap()).lines();
        let seen = tokio::time::timeout(Duration::from_secs(60), async {
            let mut seen = Vec::new();
            while let Some(line) = lines.next_line().await.unwrap() {
                let last = line.contains("serving only the lake at");
                seen.push(line);
                if last {
                    return seen;
                }
            }
            panic!("the scheduler exited early:\n{}", seen.join("\n"));
        })
        .await
        .expect("the scheduler starts within 60 s");
        let text = seen.join("\n");
        assert_eq!(
            text.contains("no authentication") && text.contains("private network"),
            warns,
            "{bind}:\n{text}"
        );
        scheduler.kill().await.unwrap();
    }

    // An executor serves an existing lake only: a wrong --lake is refused at start, naming it.
    let missing = lake.path().join("no-such-lake");
    let out = tokio::process::Command::new(EXE)
        .args(["ballista", "executor", "--scheduler"])
        .arg(format!("127.0.0.1:{}", closed_port()))
        .arg("--bind")
        .arg(format!("127.0.0.1:{}", closed_port()))
        .args(["--connect-timeout", "1", "--lake"])
        .arg(&missing)
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("no-such-lake") && err.contains("--lake"),
        "{err}"
    );
}
