//! `convlake ballista scheduler` and `convlake ballista executor`: Ballista's own scheduler and
//! executor (the library entry points of `ballista-scheduler` and `ballista-executor`), set up
//! to read the lake through [`LakeStores`].
//!
//! The scheduler plans each query (listing the lake's files, so it must reach the lake too)
//! and pushes tasks to executors; an executor runs them, reading Parquet from the lake and
//! serving shuffle data and results over Arrow Flight on its `--bind` port. Both stop cleanly
//! on Ctrl-C or SIGTERM.
//!
//! A cluster has no authentication: whoever reaches its ports can run plans on it. So both
//! listen on loopback unless `--bind` says otherwise (with a warning), and each node reads only
//! the lake `--lake` (`CONVLAKE_LAKE`) names ([`LakeStores::for_lake`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ballista_core::utils::default_session_builder;
use ballista_executor::executor_process::{start_executor_process, ExecutorProcessConfig};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::{create_scheduler, start_grpc_service_with_listener};
use ballista_scheduler::SessionBuilder;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::SessionConfig;
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};

use super::{forward_logs, ClusterError, LakeStores, SchedulerAddr};
use crate::config::{ExecutorConfig, SchedulerConfig as SchedulerSettings};

/// Warns, on stderr, when a node listens beyond loopback: the cluster has no authentication.
fn warn_if_exposed(role: &str, bind: &SocketAddr) {
    if !bind.ip().is_loopback() {
        eprintln!(
            "warning: the Ballista {role} listens on {bind}, beyond this machine. A Ballista cluster has no authentication: anyone who reaches this port can run queries that read the lake. Keep the cluster on a private network (firewall the ports), or bind 127.0.0.1"
        );
    }
}

/// The registry of a node serving the lake `lake` (`--lake`), or a usage error naming it.
fn node_stores(lake: &str) -> Result<Arc<LakeStores>, ClusterError> {
    LakeStores::for_lake(lake)
        .map(Arc::new)
        .map_err(ClusterError::Usage)
}

/// Runs a scheduler, serving the lake `lake` (`--lake`), until Ctrl-C or SIGTERM.
pub async fn scheduler(args: &SchedulerSettings, lake: &str) -> Result<(), ClusterError> {
    forward_logs();
    let stores = node_stores(lake)?;
    let lake_location = stores.lake_location().unwrap_or(lake).to_string();
    if args.min_executors == 0 {
        return Err(ClusterError::Usage(
            "--min-executors must be at least 1: a scheduler with no executors cannot run a query"
                .into(),
        ));
    }
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .map_err(|e| ClusterError::Bind {
            role: "scheduler",
            addr: args.bind.to_string(),
            reason: e.to_string(),
        })?;
    let bound = listener
        .local_addr()
        .map_err(|e| ClusterError::SchedulerFailed {
            addr: args.bind.to_string(),
            reason: e.to_string(),
        })?;
    let failed = |reason: String| ClusterError::SchedulerFailed {
        addr: bound.to_string(),
        reason,
    };

    // Ballista's default session, with the lake's object stores: the scheduler lists and
    // inspects the Parquet files while it plans.
    let session_builder: SessionBuilder = Arc::new(move |config: SessionConfig| {
        let state = default_session_builder(config)?;
        let runtime = RuntimeEnvBuilder::from_runtime_env(state.runtime_env())
            .with_object_store_registry(stores.clone())
            .build_arc()?;
        Ok(SessionStateBuilder::new_from_existing(state)
            .with_runtime_env(runtime)
            .build())
    });
    let mut config = SchedulerConfig::default()
        .with_hostname(
            args.external_host
                .clone()
                .unwrap_or_else(|| bound.ip().to_string()),
        )
        .with_port(bound.port())
        .with_override_session_builder(session_builder);
    config.bind_host = bound.ip().to_string();
    config.min_ready_executors = args.min_executors;
    config.validate().map_err(|e| failed(e.to_string()))?;
    let config = Arc::new(config);
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let server = create_scheduler::<LogicalPlanNode, PhysicalPlanNode>(cluster, config)
        .await
        .map_err(|e| failed(e.to_string()))?;

    // Tools (and the tests) read the bound address from this line; keep its shape.
    eprintln!("ballista scheduler listening on {bound}");
    warn_if_exposed("scheduler", &bound);
    eprintln!("ballista scheduler: serving only the lake at {lake_location}");
    eprintln!(
        "ballista scheduler: start executors with `convlake ballista executor --lake LAKE --scheduler HOST:{port}` (the same lake), then run `convlake aggregate --engine ballista --scheduler df://HOST:{port}` (HOST: this machine's name or address)",
        port = bound.port()
    );
    tokio::select! {
        served = start_grpc_service_with_listener(listener, server) => {
            served.map_err(|e| failed(e.to_string()))
        }
        _ = shutdown_signal() => {
            eprintln!("ballista scheduler: stopping");
            Ok(())
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The executor's work directory for shuffle files, and whether we remove it at exit.
fn work_dir(given: &Option<PathBuf>) -> Result<(PathBuf, bool), ClusterError> {
    let (path, ours) = match given {
        Some(p) => (p.clone(), false),
        None => (
            std::env::temp_dir().join(format!("convlake-executor-{}", std::process::id())),
            true,
        ),
    };
    std::fs::create_dir_all(&path).map_err(|e| ClusterError::WorkDir {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    Ok((path, ours))
}

/// Waits until the scheduler accepts TCP connections, up to `timeout`. (Ballista's own
/// connect-timeout loop never gives up, so convlake waits here and then connects once.)
async fn wait_for_scheduler(addr: &SchedulerAddr, timeout: Duration) -> Result<(), ClusterError> {
    let started = Instant::now();
    loop {
        let attempt = tokio::time::timeout(
            Duration::from_secs(2),
            tokio::net::TcpStream::connect((addr.host.as_str(), addr.port)),
        )
        .await;
        let reason = match attempt {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "no answer within 2 s".to_string(),
        };
        if started.elapsed() >= timeout {
            return Err(ClusterError::Unreachable {
                url: addr.host_port(),
                port: addr.port,
                reason: format!("{reason} (waited {} s)", timeout.as_secs()),
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Runs an executor, reading only the lake `lake` (`--lake`), until Ctrl-C, SIGTERM or the
/// scheduler tells it to stop.
pub async fn executor(args: &ExecutorConfig, lake: &str) -> Result<(), ClusterError> {
    forward_logs();
    let stores = node_stores(lake)?;
    let scheduler = SchedulerAddr::parse(&args.scheduler, true)?;
    let bind: SocketAddr = args.bind;
    if bind.port() == 0 {
        return Err(ClusterError::Usage(format!(
            "--bind {bind}: an executor needs a fixed port, because the scheduler and the other executors connect to it"
        )));
    }
    let grpc_port = match args.grpc_port {
        Some(p) => p,
        None => bind.port().checked_add(1).ok_or_else(|| {
            ClusterError::Usage(format!(
                "--bind {bind}: no room for the gRPC port after it; pass --grpc-port"
            ))
        })?,
    };
    if grpc_port == 0 || grpc_port == bind.port() {
        return Err(ClusterError::Usage(format!(
            "--grpc-port {grpc_port} must be a fixed port other than the --bind port {}",
            bind.port()
        )));
    }
    if args.concurrency == Some(0) {
        return Err(ClusterError::Usage(
            "--concurrency must be at least 1 (leave it out to use every core)".into(),
        ));
    }
    let (work_dir, remove_work_dir) = work_dir(&args.work_dir)?;
    wait_for_scheduler(&scheduler, Duration::from_secs(args.connect_timeout)).await?;

    let lake_location = stores.lake_location().unwrap_or(lake).to_string();
    let temp_dir = work_dir.clone();
    let mut config = ExecutorProcessConfig {
        bind_host: bind.ip().to_string(),
        external_host: args.external_host.clone(),
        port: bind.port(),
        grpc_port,
        scheduler_host: scheduler.host.clone(),
        scheduler_port: scheduler.port,
        // 0: connect once; wait_for_scheduler has waited already.
        scheduler_connect_timeout_seconds: 0,
        work_dir: Some(work_dir.display().to_string()),
        print_thread_info: false,
        // Spill and shuffle files in the work directory; the lake through LakeStores.
        override_runtime_producer: Some(Arc::new(move |_config: &SessionConfig| {
            RuntimeEnvBuilder::new()
                .with_temp_file_path(temp_dir.clone())
                .with_object_store_registry(stores.clone())
                .build_arc()
        })),
        ..ExecutorProcessConfig::default()
    };
    if let Some(n) = args.concurrency {
        config.vcores = n;
    }
    warn_if_exposed("executor", &bind);
    eprintln!(
        "ballista executor: {} task slots, Arrow Flight on {bind}, gRPC on {}:{grpc_port}, work directory {}, scheduler {}, serving only the lake at {lake_location}",
        config.vcores,
        bind.ip(),
        work_dir.display(),
        scheduler.host_port()
    );
    let result = start_executor_process(Arc::new(config)).await;
    if remove_work_dir {
        let _ = std::fs::remove_dir_all(&work_dir);
    }
    result.map_err(|e| ClusterError::ExecutorFailed {
        scheduler: scheduler.host_port(),
        reason: e.to_string(),
    })?;
    eprintln!("ballista executor: stopped");
    Ok(())
}
