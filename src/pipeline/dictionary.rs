//! Commands that help maintain the dictionary: `diff-dictionary` and `candidates`.

use anyhow::Result;
use futures::StreamExt;

use super::extract;
use crate::aggregate::{self, diff};
use crate::cli::{CandidatesArgs, DiffArgs};
use crate::extract::candidates::CandidateFinder;
use crate::extract::Dictionary;
use crate::lake::Lake;

/// `convlake diff-dictionary OLD [NEW]`.
pub async fn diff_dictionary(lake: &Lake, current: &Dictionary, args: &DiffArgs) -> Result<()> {
    let old = Dictionary::load(&args.old)?;
    let new = match &args.new {
        Some(p) => Dictionary::load(p)?,
        None => current.clone(),
    };
    // Both versions need their partitions (extract skips what exists).
    extract(lake, &old, None).await?;
    extract(lake, &new, None).await?;
    let changes = diff::diff(lake, &old.version, &new.version, args.examples).await?;
    println!(
        "dictionary {} ({}) -> {} ({})",
        old.version, old.origin, new.version, new.origin
    );
    println!(
        "{:<28} {:>10} {:>10} {:>8} {:>14} {:>14} {:>8}",
        "product", "mentions", "→", "Δ", "conversations", "→", "Δ"
    );
    let mut changed = 0;
    for c in &changes {
        let dm = c.new_mentions - c.old_mentions;
        let dc = c.new_conversations - c.old_conversations;
        if dm != 0 || dc != 0 {
            changed += 1;
        }
        println!(
            "{:<28} {:>10} {:>10} {:>+8} {:>14} {:>14} {:>+8}",
            c.product,
            c.old_mentions,
            c.new_mentions,
            dm,
            c.old_conversations,
            c.new_conversations,
            dc
        );
    }
    for c in changes
        .iter()
        .filter(|c| !c.added.is_empty() || !c.removed.is_empty())
    {
        println!("\n{}:", c.product);
        for s in &c.added {
            println!("  + {s}");
        }
        for s in &c.removed {
            println!("  - {s}");
        }
    }
    println!("\n{changed} of {} products change", changes.len());
    Ok(())
}

/// `convlake candidates`.
pub async fn candidates(lake: &Lake, dict: &Dictionary, args: &CandidatesArgs) -> Result<()> {
    let ctx = aggregate::session(lake, &dict.version).await?;
    let mut stream = ctx
        .sql("SELECT text FROM utterances")
        .await?
        .execute_stream()
        .await?;
    let mut finder = CandidateFinder::new(dict);
    let mut texts = 0u64;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let col = arrow::compute::cast(batch.column(0), &arrow::datatypes::DataType::Utf8)?;
        if let Some(a) = col.as_any().downcast_ref::<arrow::array::StringArray>() {
            for t in a.iter().flatten() {
                finder.observe(t);
                texts += 1;
            }
        }
    }
    let top = finder.top(args.min_count, args.limit);
    if top.is_empty() {
        println!(
            "no phrase outside the dictionary recurs {} times or more in {texts} utterances",
            args.min_count
        );
        return Ok(());
    }
    println!("{:<36} {:>7}  example", "phrase", "count");
    for c in &top {
        println!(
            "{:<36} {:>7}  {}",
            c.phrase,
            c.count,
            c.examples.first().map(String::as_str).unwrap_or("")
        );
    }
    println!("({} candidates from {texts} utterances; add real products to the dictionary and run `convlake extract`)", top.len());
    Ok(())
}
