//! A Ballista cluster on loopback made of child processes (`convlake ballista scheduler` and
//! `convlake ballista executor`), for `convlake bench` and the integration tests: a real
//! cluster, one process per node, that is gone when the value is dropped.
//!
//! Start-up waits on facts, not on sleeps: the scheduler binds port 0 and prints the port it
//! got; the cluster is up when the scheduler's `/readyz` answers 200, which it does once the
//! requested number of executors has registered. An executor whose port was taken in the
//! meantime exits, and is started again on other ports.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{ClusterError, SchedulerAddr};

/// How a [`LocalCluster`] is started.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// Executors to start (each its own process).
    pub executors: usize,
    /// Task slots per executor (`--concurrency`); `None`: every core.
    pub concurrency: Option<usize>,
    /// Extra environment for every node (object-store settings, `RUST_LOG`), and
    /// `CONVLAKE_LAKE`, the lake the nodes serve (they read no other).
    pub env: Vec<(String, String)>,
    /// How long start-up may take before it is an error.
    pub timeout: Duration,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            executors: 2,
            concurrency: None,
            env: Vec::new(),
            timeout: Duration::from_secs(120),
        }
    }
}

struct Node {
    name: String,
    child: Child,
    log: PathBuf,
}

/// A running scheduler and its executors; dropping it kills them all.
pub struct LocalCluster {
    /// Where clients and executors reach the scheduler.
    pub scheduler: SchedulerAddr,
    nodes: Vec<Node>,
    dir: PathBuf,
}

/// Two ports nothing listens on right now (both held until both are chosen, so they differ).
fn free_ports() -> Result<(u16, u16), ClusterError> {
    let bind = || {
        TcpListener::bind("127.0.0.1:0").map_err(|e| {
            ClusterError::LocalCluster(format!("cannot find a free loopback port: {e}"))
        })
    };
    let (a, b) = (bind()?, bind()?);
    let port = |l: &TcpListener| {
        l.local_addr()
            .map(|a| a.port())
            .map_err(|e| ClusterError::LocalCluster(e.to_string()))
    };
    Ok((port(&a)?, port(&b)?))
}

/// Whether the scheduler's `/readyz` answers 200 (HTTP/1.1 on its gRPC port).
fn ready(addr: &SchedulerAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect((addr.host.as_str(), addr.port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!(
        "GET /readyz HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        addr.host_port()
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

impl LocalCluster {
    /// Starts a scheduler and `options.executors` executors from the `convlake` binary `exe`
    /// and waits until all executors have registered.
    pub fn start(exe: &Path, options: &ClusterOptions) -> Result<LocalCluster, ClusterError> {
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "convlake-cluster-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| {
            ClusterError::LocalCluster(format!("cannot create {}: {e}", dir.display()))
        })?;
        let mut cluster = LocalCluster {
            scheduler: SchedulerAddr {
                host: "127.0.0.1".into(),
                port: 0,
            },
            nodes: Vec::new(),
            dir,
        };
        let deadline = Instant::now() + options.timeout;
        let executors = options.executors.max(1).to_string();
        cluster.spawn(
            exe,
            options,
            "scheduler",
            &[
                "ballista",
                "scheduler",
                "--bind",
                "127.0.0.1:0",
                "--min-executors",
                &executors,
            ],
        )?;
        cluster.scheduler.port = cluster.wait_for_scheduler_port(deadline)?;
        for i in 0..options.executors.max(1) {
            cluster.spawn_executor(exe, options, i)?;
        }
        let mut restarts = 0;
        loop {
            if ready(&cluster.scheduler) {
                return Ok(cluster);
            }
            // A node that died: the scheduler is fatal; an executor (its port was taken
            // between choosing and binding it) gets new ports, a few times.
            for i in 0..cluster.nodes.len() {
                if let Ok(Some(status)) = cluster.nodes[i].child.try_wait() {
                    let name = cluster.nodes[i].name.clone();
                    if name == "scheduler" || restarts >= 3 * options.executors.max(1) {
                        return Err(ClusterError::LocalCluster(format!(
                            "the {name} exited ({status}):\n{}",
                            cluster.logs()
                        )));
                    }
                    restarts += 1;
                    let index: usize = name
                        .trim_start_matches("executor-")
                        .parse()
                        .unwrap_or(restarts);
                    cluster.nodes.remove(i);
                    cluster.spawn_executor(exe, options, index)?;
                    break;
                }
            }
            if Instant::now() >= deadline {
                return Err(ClusterError::LocalCluster(format!(
                    "the scheduler at {} did not report {} executors within {} s:\n{}",
                    cluster.scheduler.df_url(),
                    options.executors.max(1),
                    options.timeout.as_secs(),
                    cluster.logs()
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn spawn(
        &mut self,
        exe: &Path,
        options: &ClusterOptions,
        name: &str,
        args: &[&str],
    ) -> Result<(), ClusterError> {
        let log = self.dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).map_err(|e| {
            ClusterError::LocalCluster(format!("cannot create {}: {e}", log.display()))
        })?;
        let mut cmd = Command::new(exe);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file);
        for (k, v) in &options.env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().map_err(|e| {
            ClusterError::LocalCluster(format!("cannot start {}: {e}", exe.display()))
        })?;
        self.nodes.push(Node {
            name: name.to_string(),
            child,
            log,
        });
        Ok(())
    }

    fn spawn_executor(
        &mut self,
        exe: &Path,
        options: &ClusterOptions,
        index: usize,
    ) -> Result<(), ClusterError> {
        let (flight, grpc) = free_ports()?;
        let work_dir = self.dir.join(format!("work-{index}-{flight}"));
        let bind = format!("127.0.0.1:{flight}");
        let grpc = grpc.to_string();
        let scheduler = self.scheduler.host_port();
        let work = work_dir.display().to_string();
        let mut args = vec![
            "ballista",
            "executor",
            "--scheduler",
            &scheduler,
            "--bind",
            &bind,
            "--grpc-port",
            &grpc,
            "--work-dir",
            &work,
        ];
        let concurrency = options.concurrency.map(|c| c.to_string());
        if let Some(c) = &concurrency {
            args.extend(["--concurrency", c.as_str()]);
        }
        self.spawn(exe, options, &format!("executor-{index}"), &args)
    }

    /// Reads the port the scheduler bound from its log line `ballista scheduler listening on`.
    fn wait_for_scheduler_port(&mut self, deadline: Instant) -> Result<u16, ClusterError> {
        const LINE: &str = "ballista scheduler listening on ";
        loop {
            let log = std::fs::read_to_string(&self.nodes[0].log).unwrap_or_default();
            if let Some(port) = log
                .lines()
                .find_map(|l| l.strip_prefix(LINE))
                .and_then(|addr| addr.trim().rsplit(':').next())
                .and_then(|p| p.parse().ok())
            {
                return Ok(port);
            }
            if let Ok(Some(status)) = self.nodes[0].child.try_wait() {
                return Err(ClusterError::LocalCluster(format!(
                    "the scheduler exited ({status}):\n{log}"
                )));
            }
            if Instant::now() >= deadline {
                return Err(ClusterError::LocalCluster(format!(
                    "the scheduler did not start listening in time:\n{log}"
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `df://127.0.0.1:PORT`, for `convlake aggregate --scheduler`.
    pub fn df_url(&self) -> String {
        self.scheduler.df_url()
    }

    /// Every node's log (its stderr), for a failure message.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| {
                format!(
                    "--- {} ---\n{}",
                    n.name,
                    std::fs::read_to_string(&n.log).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Peak resident set size of every node so far, in kB (Linux; 0 elsewhere).
    pub fn peak_rss_kb(&self) -> Vec<(String, u64)> {
        self.nodes
            .iter()
            .map(|n| {
                let kb = std::fs::read_to_string(format!("/proc/{}/status", n.child.id()))
                    .ok()
                    .and_then(|s| {
                        s.lines()
                            .find(|l| l.starts_with("VmHWM:"))
                            .and_then(|l| l.split_whitespace().nth(1))
                            .and_then(|v| v.parse().ok())
                    })
                    .unwrap_or(0);
                (n.name.clone(), kb)
            })
            .collect()
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.child.kill();
            let _ = node.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
