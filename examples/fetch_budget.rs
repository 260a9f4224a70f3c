//! The rate-limit benchmark of the analytics source: a full `fetch` against a simulator that
//! allows 300 API requests a minute per token (Genesys Cloud's documented client-credentials
//! limit), reporting requests per conversation and the share of the budget used.
//!
//! ```sh
//! cargo run --example fetch_budget -- [conversations] [days] [rate-limit] [concurrency] [page sizes]
//! cargo run --example fetch_budget -- 1000 30 300 4 50,1000
//! ```
//! Each listing page size is one full fetch into a fresh lake from a fresh simulator with the
//! same data (the realistic traffic mix of `convlake simulate`: callbacks, transfers with 2–3
//! recorded sessions, archived and errored recordings, late and gone transcripts), so the sizes
//! are compared in one run. A rate limit of 0 is unlimited (request counts only).
//! Targets (issue 3): at most 1.05 API requests per voice conversation beyond the listing, at
//! least 90% of the budget used, no more than one 429 a minute. Issue 17: listing requests per
//! 1,000 conversations at page size 1,000 against 50.

use std::time::{Duration, Instant};

use chrono::{NaiveDate, NaiveTime};
use convlake::extract::Dictionary;
use convlake::genesys::analytics::Listing;
use convlake::genesys::fetch::analytics::{self, AnalyticsOptions};
use convlake::genesys::transcripts::NotReadyPolicy;
use convlake::genesys::{ApiClient, Credentials, Endpoints, RetryPolicy};
use convlake::lake::Lake;
use convlake::secret::Secret;
use convlake::simulator::{self, Media, SimConfig, SimProduct};

fn arg<T: std::str::FromStr>(n: usize, default: T) -> T {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let conversations: usize = arg(1, 1000);
    let days: u32 = arg(2, 30);
    let limit: u32 = arg(3, 300);
    let concurrency: usize = arg(4, 4);
    let sizes: Vec<u32> = std::env::args()
        .nth(5)
        .unwrap_or_else(|| "50,1000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();

    let products: Vec<SimProduct> = Dictionary::embedded()
        .products
        .iter()
        .map(|p| SimProduct {
            name: p.name.clone(),
            aliases: p.aliases.clone(),
        })
        .collect();
    let mut cfg = SimConfig::new(products).with_real_traffic_mix();
    cfg.conversations = conversations;
    cfg.start = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap_or_default();
    cfg.days = days;
    cfg.rate_limit_per_minute = (limit > 0).then_some(limit);
    cfg.untranscribed_rate = 0.03;
    cfg.faults.not_ready_rate = 0.05;

    let gen = simulator::Generator::new(&cfg);
    let voice = (0..gen.len())
        .filter(|&i| gen.media(i) == Media::Voice)
        .count();
    let digital = gen.len() - voice;
    println!(
        "fetch_budget: {conversations} conversations ({voice} voice, {digital} digital) over {days} days, limit {}, concurrency {concurrency}, realistic traffic mix",
        if limit > 0 { format!("{limit}/min") } else { "none".into() }
    );
    println!(
        "{:>9} {:>7} {:>9} {:>9} {:>12} {:>10} {:>12} {:>9} {:>8} {:>8} {:>5} {:>5}",
        "page size",
        "pages",
        "pages/1k",
        "listing",
        "listing/1k",
        "STA/voice",
        "rec/digital",
        "API reqs",
        "elapsed",
        "budget",
        "429s",
        "text"
    );
    for page_size in sizes {
        let sim = simulator::start(cfg.clone(), "127.0.0.1:0".parse()?).await?;
        let dir = tempfile::tempdir()?;
        let lake = Lake::open_local(dir.path())?;
        let client = ApiClient::new(
            Endpoints::resolve("us-east-1", Some(&sim.url), None)?,
            Credentials {
                client_id: "bench".into(),
                client_secret: Secret::new("bench-secret"),
            },
            RetryPolicy::default(),
        )?;
        let midnight = |d: NaiveDate| d.and_time(NaiveTime::MIN).and_utc();
        let start = midnight(cfg.start);
        let opts = AnalyticsOptions {
            start,
            end: start + chrono::Duration::days(i64::from(days)),
            started_after: Some(start),
            media: ["voice", "chat", "email", "message"]
                .map(String::from)
                .to_vec(),
            listing: Listing::Jobs,
            interval: chrono::Duration::days(7),
            page_size,
            batch_size: 100,
            transcript_grace: chrono::Duration::hours(72),
            concurrency,
            job_poll_max: Duration::from_secs(3),
            job_timeout: Duration::from_secs(30 * 60),
            not_ready: NotReadyPolicy::default(),
            mask: None,
            restore: false,
        };
        let started = Instant::now();
        let summary = analytics::fetch(&lake, &client, &opts).await?;
        let elapsed = started.elapsed();
        let s = sim.stats();
        sim.shutdown().await;
        let minutes = elapsed.as_secs_f64() / 60.0;
        let budget = match limit {
            0 => "-".to_string(),
            l => format!(
                "{:.1}%",
                100.0 * s.api_requests as f64 / (f64::from(l) * minutes)
            ),
        };
        println!(
            "{:>9} {:>7} {:>9.1} {:>9} {:>12.1} {:>10.3} {:>12.3} {:>9} {:>7.1}s {:>8} {:>5} {:>5}",
            page_size,
            summary.pages,
            1000.0 * summary.pages as f64 / conversations as f64,
            s.listing,
            1000.0 * s.listing as f64 / conversations as f64,
            s.transcript_urls as f64 / voice as f64,
            s.recordings as f64 / digital as f64,
            s.api_requests,
            elapsed.as_secs_f64(),
            budget,
            s.too_many,
            summary.transcripts,
        );
        eprintln!(
            "  page size {page_size}: {} presigned GETs, {} tokens, {} conversations staged, {} without text {:?}, {} snapshots",
            s.presigned,
            s.tokens,
            summary.conversations,
            summary.missing_transcripts,
            summary.missing_by_reason,
            summary.new_snapshots
        );
    }
    println!("pages: job result pages (listing_page checkpoints); listing: details requests (job submit, status polls, result pages, availability); STA/voice: transcripturl(s) requests per voice conversation (transfers ask each recorded session); rec/digital: recordings requests per digital conversation; budget: API requests over limit × minutes");
    Ok(())
}
