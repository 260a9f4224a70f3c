//! `convlake bench mask`: what `fetch --mask pii` costs per MB of text, on chat text where one
//! sentence in 50 holds personal data, on the same text once masked (nothing left to find: the
//! common case), and on the JSON of recordings lists as a fetch masks them (every string value).

use std::time::Instant;

use anyhow::Result;

use crate::config::MaskBenchConfig;
use crate::privacy::mask::{bench_corpus, Masker};

struct Row {
    what: &'static str,
    bytes: usize,
    seconds: f64,
    changed: usize,
}

fn time<F: FnMut() -> usize>(what: &'static str, bytes: usize, mut f: F) -> Row {
    // One untimed pass, so the first timed one does not pay for page faults.
    f();
    let started = Instant::now();
    let changed = f();
    Row {
        what,
        bytes,
        seconds: started.elapsed().as_secs_f64(),
        changed,
    }
}

/// Runs the benchmark and prints its table.
pub async fn mask_bench(args: &MaskBenchConfig) -> Result<()> {
    let masker = Masker::pii(Vec::new())?;
    let corpus = bench_corpus(args.megabytes.max(1) * 1_000_000, 42);
    let messages: Vec<&str> = corpus.lines().collect();
    let clean: Vec<String> = messages
        .iter()
        .map(|m| masker.text(m).into_owned())
        .collect();
    // Recordings lists of 20 messages each, the shape `digital_utterances` reads.
    let lists: Vec<Vec<u8>> = messages
        .chunks(20)
        .map(|chunk| {
            let transcript: Vec<serde_json::Value> = chunk
                .iter()
                .map(|m| {
                    serde_json::json!({
                        "messageText": m,
                        "purpose": "customer",
                        "timestamp": "2026-03-01T10:00:04.000Z",
                        "id": "5f0e2c1a-0000-4000-8000-000000000000",
                    })
                })
                .collect();
            serde_json::to_vec(&serde_json::json!([{
                "conversationId": "5f0e2c1a-0000-4000-8000-000000000001",
                "sessionId": "5f0e2c1a-0000-4000-8000-000000000002",
                "media": "message",
                "messagingTranscript": transcript,
            }]))
            .unwrap_or_default()
        })
        .collect();
    let text_bytes: usize = messages.iter().map(|m| m.len()).sum();
    let clean_bytes: usize = clean.iter().map(String::len).sum();
    let json_bytes: usize = lists.iter().map(Vec::len).sum();
    let rows = [
        time(
            "chat text, 1 sentence in 50 with personal data",
            text_bytes,
            || {
                messages
                    .iter()
                    .filter(|m| matches!(masker.text(m), std::borrow::Cow::Owned(_)))
                    .count()
            },
        ),
        time(
            "the same text masked (nothing to find)",
            clean_bytes,
            || {
                clean
                    .iter()
                    .filter(|m| matches!(masker.text(m), std::borrow::Cow::Owned(_)))
                    .count()
            },
        ),
        time(
            "recordings lists as fetched (JSON, 20 messages each)",
            json_bytes,
            || {
                lists
                    .iter()
                    .filter(|l| matches!(masker.json(l), Ok(Some(_))))
                    .count()
            },
        ),
    ];
    println!(
        "bench mask: masking rules {}, one core, {} messages",
        masker.id(),
        messages.len()
    );
    println!(
        "{:<54} {:>8} {:>9} {:>9} {:>10} {:>9}",
        "input", "MB", "seconds", "MB/s", "ms per MB", "changed"
    );
    let mut json = Vec::new();
    for r in &rows {
        let mb = r.bytes as f64 / 1e6;
        let rate = mb / r.seconds.max(1e-9);
        println!(
            "{:<54} {:>8.1} {:>9.3} {:>9.0} {:>10.2} {:>9}",
            r.what,
            mb,
            r.seconds,
            rate,
            1000.0 / rate.max(1e-9),
            r.changed
        );
        json.push(serde_json::json!({
            "input": r.what, "megabytes": mb, "seconds": r.seconds,
            "mb_per_second": rate, "changed": r.changed,
        }));
    }
    super::write_json(&args.json, &serde_json::json!({ "mask": json }))
}
