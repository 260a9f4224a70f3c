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
    assert_eq!(local.len(), 2, "{local:?}");
    let local_totals = lake.totals().await;
    assert_eq!(
        local_totals,
        truth(&cfg, start_date(), start_date() + chrono::Days::new(9)),
        "the local engine against the simulator's ground truth"
    );

    let cluster = start_cluster(2, Vec::new()).await;
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

    let mut scheduler = tokio::process::Command::new(EXE)
        .args(["ballista", "scheduler", "--bind", "127.0.0.1:0"])
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

    let (lake, _) = simulated_lake(20).await;
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
