//! `convlake simulate`: the Genesys-compatible simulator on loopback, until Ctrl-C.

use std::net::SocketAddr;

use anyhow::Result;

use crate::config::SimulateConfig;
use crate::extract::Dictionary;
use crate::simulator::{self, Scenario, SimConfig, SimProduct};

/// A loopback address (port 0: any free one).
pub(crate) fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// `convlake simulate`: serves until Ctrl-C.
pub async fn simulate(dict: &Dictionary, args: &SimulateConfig) -> Result<()> {
    let mut cfg = SimConfig::new(SimProduct::of_dictionary(dict));
    cfg.conversations = args.conversations;
    if let Some(s) = args.start {
        cfg.start = s;
    }
    cfg.days = args.days.max(1);
    cfg.seed = args.seed;
    cfg.client_id = args.client_id.clone();
    cfg.client_secret = args.client_secret.clone();
    cfg.faults.rate_429 = args.fail_429;
    cfg.faults.rate_500 = args.fail_500;
    cfg.faults.drop_rate = args.drop_connections;
    cfg.faults.slow_rate = args.slow;
    cfg.faults.slow_ms = args.slow_ms;
    cfg.faults.not_ready_rate = args.not_ready;
    cfg.faults.not_ready_for_secs = args.not_ready_for;
    cfg.faults.revoke_tokens_after_secs = args.revoke_tokens_after;
    cfg.rate_limit_per_minute = args.rate_limit;
    cfg.token_ttl_secs = args.token_ttl.max(1);
    cfg.untranscribed_rate = args.untranscribed;
    cfg.lengths = args.lengths;
    cfg.job_polls = args.job_polls.max(1);
    cfg.max_query_interval_days = args.max_query_days.max(1);
    cfg.transcript_url_ttl_secs = args.transcript_url_ttl;
    cfg.traffic = args.traffic.clone();
    cfg.scenario = args.scenario;
    cfg.raw_pii = args.raw_pii;
    let sim = simulator::start(cfg.clone(), loopback(args.port)).await?;
    println!("{}", sim.url);
    eprintln!(
        "simulate: {} conversations from {} over {} days (seed {}, scenario {}); Ctrl-C to stop",
        cfg.conversations, cfg.start, cfg.days, cfg.seed, cfg.scenario
    );
    let events = simulator::planted_events(&cfg);
    if events.is_empty() && cfg.scenario != Scenario::Flat {
        eprintln!(
            "simulate: scenario {} needs at least 3 products and the dictionary has {}: the data is flat",
            cfg.scenario,
            cfg.products.len()
        );
    }
    for e in &events {
        eprintln!("simulate: planted {e}");
    }
    let missing = simulator::untranscribed(
        &cfg,
        cfg.start,
        cfg.start + chrono::Days::new(u64::from(cfg.days)),
    );
    eprintln!(
        "simulate: {} voice conversations have no transcript (transcripturl answers 404)",
        missing.len()
    );
    let c = simulator::shape_counts(
        &cfg,
        cfg.start,
        cfg.start + chrono::Days::new(u64::from(cfg.days)),
    );
    eprintln!(
        "simulate: {} callbacks, {} transferred calls, {} calls recorded twice, {} late and {} gone transcripts, {} archived and {} errored recordings, {} ongoing{}",
        c.callbacks,
        c.transfers,
        c.duplicated,
        c.late,
        c.gone,
        c.archived,
        c.errored,
        c.ongoing,
        if cfg.traffic.sta_permission { "" } else { "; no STA permission (transcripturl answers 403)" }
    );
    tokio::signal::ctrl_c().await?;
    sim.shutdown().await;
    Ok(())
}
