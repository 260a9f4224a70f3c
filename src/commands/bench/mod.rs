//! `convlake bench`: measured, not assumed. Three benchmarks, each printing one table (and JSON
//! with `--json FILE`):
//! - `pipeline` (the default): a seeded archive in the simulator, then every stage as its own
//!   process (so peak RSS is per stage), for one or more sizes side by side;
//! - `extract`: precision/recall/F1 and speed of the matcher on the labeled corpus with its
//!   dictionary (with `--baseline`, the tutorial's extractor on that same corpus and dictionary,
//!   side by side), and, separately, throughput of the snapshot → mentions transform with a
//!   1,000-product dictionary, per core;
//! - `sync`: 1,000,000 aggregate rows into PostgreSQL: first sync, no-change re-sync, a 10% change,
//!   against the tutorial's multi-row INSERT;
//! - `mask`: what `fetch --mask pii` costs per MB of text.

mod extract;
mod mask;
mod pipeline;
pub mod probe;
mod sync;

use std::path::PathBuf;

use anyhow::{Context as _, Result};

use crate::config::BenchConfig;
use crate::extract::Dictionary;

pub use probe::{cpu_ms, peak_rss_kb};

/// Runs `convlake bench`.
pub async fn run(args: &BenchConfig, dict: &Dictionary) -> Result<()> {
    match args {
        BenchConfig::Pipeline(p) => pipeline::pipeline(p, dict).await,
        BenchConfig::Extract(e) => extract::extract_bench(e).await,
        BenchConfig::Sync(s) => sync::sync_bench(s).await,
        BenchConfig::Mask(m) => mask::mask_bench(m).await,
    }
}

pub(super) fn write_json(path: &Option<PathBuf>, value: &serde_json::Value) -> Result<()> {
    if let Some(p) = path {
        std::fs::write(p, serde_json::to_vec_pretty(value)?)
            .with_context(|| format!("writing {}", p.display()))?;
        eprintln!("bench: results written to {}", p.display());
    }
    Ok(())
}
