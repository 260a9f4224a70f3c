//! The rate-limit benchmark of the analytics source: a full `fetch` against a simulator that
//! allows 300 API requests a minute per token (Genesys Cloud's documented client-credentials
//! limit), reporting requests per conversation and the share of the budget used.
//!
//! ```sh
//! cargo run --example fetch_budget -- [conversations] [days] [rate-limit] [concurrency]
//! cargo run --example fetch_budget -- 1000 30 300 4
//! ```
//! Targets (issue 3): at most 1.05 API requests per voice conversation beyond the listing, at
//! least 90% of the budget used, no more than one 429 a minute.

use std::time::{Duration, Instant};

use chrono::{NaiveDate, NaiveTime};
use convlake::extract::Dictionary;
use convlake::genesys::analytics::Listing;
use convlake::genesys::staging::{self, AnalyticsOptions};
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

    let products: Vec<SimProduct> = Dictionary::embedded()
        .products
        .iter()
        .map(|p| SimProduct {
            name: p.name.clone(),
            aliases: p.aliases.clone(),
        })
        .collect();
    let mut cfg = SimConfig::new(products);
    cfg.conversations = conversations;
    cfg.start = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap_or_default();
    cfg.days = days;
    cfg.rate_limit_per_minute = Some(limit);
    cfg.untranscribed_rate = 0.03;
    cfg.faults.not_ready_rate = 0.05;
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
        page_size: 50,
        concurrency,
        job_poll_max: Duration::from_secs(3),
        job_timeout: Duration::from_secs(30 * 60),
        not_ready: NotReadyPolicy::default(),
    };
    let started = Instant::now();
    let summary = staging::fetch(&lake, &client, &opts).await?;
    let elapsed = started.elapsed();
    let s = sim.stats();
    sim.shutdown().await;

    let gen = simulator::Generator::new(&cfg);
    let voice = (0..gen.len())
        .filter(|&i| gen.media(i) == Media::Voice)
        .count();
    let digital = gen.len() - voice;
    let minutes = elapsed.as_secs_f64() / 60.0;
    let budget = f64::from(limit) * minutes;
    println!("fetch_budget: {conversations} conversations over {days} days, limit {limit}/min, concurrency {concurrency}");
    println!(
        "  elapsed                          {:.1} s",
        elapsed.as_secs_f64()
    );
    println!(
        "  API requests (simulator)         {} ({:.1}/min)",
        s.api_requests,
        s.api_requests as f64 / minutes
    );
    println!("    listing (jobs, polls, pages)   {}", s.listing);
    println!("    transcripturl                  {}", s.transcript_urls);
    println!("    recordings                     {}", s.recordings);
    println!("  presigned GETs (not API)         {}", s.presigned);
    println!("  token requests                   {}", s.tokens);
    println!(
        "  requests per voice conversation  {:.3} beyond the listing ({} voice)",
        s.transcript_urls as f64 / voice as f64,
        voice
    );
    println!(
        "  requests per digital conversation {:.3} ({} digital)",
        s.recordings as f64 / digital as f64,
        digital
    );
    println!(
        "  requests per conversation, all   {:.3}",
        s.api_requests as f64 / conversations as f64
    );
    println!(
        "  budget used                      {:.1}% ({} of {:.0})",
        100.0 * s.api_requests as f64 / budget,
        s.api_requests,
        budget
    );
    println!(
        "  429s                             {} ({:.2}/min)",
        s.too_many,
        s.too_many as f64 / minutes
    );
    println!(
        "  staged                           {} conversations, {} transcripts, {} without, {} snapshots",
        summary.conversations, summary.transcripts, summary.missing_transcripts, summary.new_snapshots
    );
    Ok(())
}
