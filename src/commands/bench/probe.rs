//! Process probes: what a process has used so far (peak RSS, CPU time), and a stage run as a
//! child process and measured.

use std::process::Command as Process;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};

use crate::lake::Lake;

/// Peak resident set size of this process so far, in kB (Linux; 0 elsewhere).
pub fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(String::from))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// CPU time (user plus system, every thread) this process has used so far, in milliseconds
/// (Linux; 0 elsewhere).
pub fn cpu_ms() -> u64 {
    // /proc/self/stat: the command name is in parentheses and may hold spaces, so fields are
    // counted after the last ')'; utime and stime are fields 14 and 15, in clock ticks (100 a
    // second on Linux).
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
            // After the ')': field 3 (state) is index 0, so field n is index n - 3.
            Some((ticks(14 - 3)? + ticks(15 - 3)?) * 10)
        })
        .unwrap_or(0)
}

/// Bytes stored under a prefix of the lake (a listing: works on disk and on object stores).
pub(super) async fn stored_bytes(lake: &Lake, prefix: &str) -> Result<u64> {
    Ok(lake.list(prefix).await?.iter().map(|m| m.size).sum())
}

pub(super) struct StageRun {
    pub(super) name: &'static str,
    pub(super) seconds: f64,
    /// CPU seconds the stage's process used (user plus system).
    pub(super) cpu_seconds: f64,
    pub(super) peak_rss_kb: u64,
    pub(super) bytes_written: u64,
    pub(super) stderr: String,
}

/// Runs one stage as a child process and measures it (time, peak RSS, bytes the lake grew by).
pub(super) async fn stage(
    name: &'static str,
    lake: &Lake,
    spec: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<StageRun> {
    let before = stored_bytes(lake, "").await?;
    let (spec, args) = (
        spec.to_string(),
        args.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
    );
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut run =
        tokio::task::spawn_blocking(move || stage_process(name, &spec, &args, &env)).await??;
    run.bytes_written = stored_bytes(lake, "").await?.saturating_sub(before);
    Ok(run)
}

fn stage_process(
    name: &'static str,
    lake: &str,
    args: &[String],
    env: &[(String, String)],
) -> Result<StageRun> {
    let exe = std::env::current_exe().context("locating the convlake binary")?;
    let started = Instant::now();
    let mut cmd = Process::new(exe);
    cmd.arg("--lake")
        .arg(lake)
        .args(args)
        .env("CONVLAKE_REPORT_RSS", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .with_context(|| format!("running the {name} stage"))?;
    let seconds = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    if !out.status.success() {
        bail!("the {name} stage failed:\n{stderr}");
    }
    let peak_rss_kb = stderr
        .lines()
        .find_map(|l| l.strip_prefix("convlake-peak-rss-kb: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let cpu_ms: u64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("convlake-cpu-ms: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    Ok(StageRun {
        name,
        seconds,
        cpu_seconds: cpu_ms as f64 / 1e3,
        peak_rss_kb,
        bytes_written: 0,
        stderr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn cpu_time_and_peak_rss_are_read() {
        let before = cpu_ms();
        // Spin until the kernel has charged at least two clock ticks more (or give up after
        // a minute of wall time, so a broken reader fails instead of hanging).
        let mut x = 0u64;
        let started = Instant::now();
        while cpu_ms() < before + 20 && started.elapsed().as_secs() < 60 {
            for i in 0..100_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
            std::hint::black_box(x);
        }
        assert!(cpu_ms() >= before + 20);
        assert!(peak_rss_kb() > 0);
    }
}
