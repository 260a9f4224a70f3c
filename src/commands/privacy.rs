//! `convlake forget`, `convlake retain` and `convlake verify --erased`: erase conversations on
//! request or by age, and prove that nothing of them is left (see [`crate::privacy::erase`]).

use std::collections::{BTreeSet, HashSet};
use std::path::Path;

use anyhow::{bail, Context, Result};
use chrono::NaiveDate;

use crate::config::DbConfig;
use crate::lake::events::{erased_conversations, snapshots_in_order, EventKind};
use crate::lake::Lake;
use crate::privacy::erase::{self, EraseSummary, Reason};
pub use crate::privacy::retention::Age;

/// What `convlake forget` is asked to erase.
#[derive(Clone, Debug, Default)]
pub struct ForgetRequest {
    pub conversations: Vec<String>,
    pub files: Vec<std::path::PathBuf>,
    pub participant_addresses: Vec<String>,
    pub workers: Option<usize>,
}

fn workers(w: Option<usize>) -> usize {
    w.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
}

/// Conversation ids from a file: one per line; blank lines and `#` comments are skipped.
fn ids_in_file(path: &Path) -> Result<Vec<String>> {
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin())
            .context("cannot read conversation ids from standard input")?
    } else {
        std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read {} (--file): check the path; it holds one conversation id per line",
                path.display()
            )
        })?
    };
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

/// An address as compared: lower case, without `tel:`/`mailto:`/`sip:`; a phone number as its
/// digits only.
fn normal_address(s: &str) -> String {
    let s = s.trim().to_lowercase();
    let s = ["tel:", "mailto:", "sip:"]
        .iter()
        .fold(s.as_str(), |s, p| s.strip_prefix(p).unwrap_or(s))
        .to_string();
    if s.contains('@') {
        s
    } else {
        s.chars().filter(char::is_ascii_digit).collect()
    }
}

fn address_matches(value: &str, wanted: &str) -> bool {
    let v = normal_address(value);
    if wanted.contains('@') {
        return v == wanted || value.to_lowercase().contains(wanted);
    }
    // A phone number: the same digits, with or without the country code.
    wanted.len() >= 7
        && !v.is_empty()
        && (v == wanted || v.ends_with(wanted) || wanted.ends_with(&v) && v.len() >= 7)
}

/// The conversations whose records (analytics) or texts (archive) hold one of `addresses`.
async fn conversations_with_addresses(
    lake: &Lake,
    addresses: &[String],
) -> Result<(BTreeSet<String>, bool)> {
    let wanted: Vec<String> = addresses.iter().map(|a| normal_address(a)).collect();
    for (a, w) in addresses.iter().zip(&wanted) {
        if w.is_empty() || (!w.contains('@') && w.len() < 7) {
            bail!("--participant-address {a:?} is neither an e-mail address nor a phone number of 7 digits or more");
        }
    }
    let events = lake.events().read_all().await?;
    let masked = events.iter().any(|e| {
        matches!(
            &e.kind,
            EventKind::Snapshot {
                masked: Some(_),
                ..
            }
        )
    });
    let source: std::collections::HashMap<String, String> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Snapshot {
                snapshot, source, ..
            } => Some((snapshot.clone(), source.clone())),
            _ => None,
        })
        .collect();
    let mut found = BTreeSet::new();
    for (snap, _) in snapshots_in_order(&events) {
        if source.get(&snap).map(String::as_str) == Some(crate::genesys::fetch::analytics::SOURCE) {
            let path = crate::lake::layout::body_path(&snap);
            if !lake.exists(&path).await? {
                continue;
            }
            let manifest: crate::genesys::fetch::analytics::Manifest =
                serde_json::from_slice(&lake.get(&path).await?).with_context(|| {
                    format!("{path} is not a batch manifest; run `convlake verify`")
                })?;
            let records_path = crate::lake::layout::body_path(&manifest.records);
            let records: Vec<serde_json::Value> =
                serde_json::from_slice(&lake.get(&records_path).await?).with_context(|| {
                    format!("{records_path} is not a JSON array of records; run `convlake verify`")
                })?;
            for (entry, record) in manifest.conversations.iter().zip(&records) {
                let mut hit = false;
                walk_strings(record, &mut |s| {
                    hit |= wanted.iter().any(|w| address_matches(s, w))
                });
                if hit {
                    found.insert(entry.conversation_id.clone());
                }
            }
        }
        // Every source: the address written in a text.
        let raw = crate::lake::snapshot_path(&snap);
        if !lake.exists(&raw).await? {
            continue;
        }
        let batches = crate::lake::schema::from_parquet_columns(
            lake.get(&raw).await?,
            &["conversation_id", "text"],
        )
        .map_err(|e| anyhow::anyhow!("{raw}: {e}; run `convlake verify`"))?;
        for b in batches {
            let ids = b
                .column(0)
                .as_any()
                .downcast_ref::<arrow::array::StringArray>();
            let texts = b
                .column(1)
                .as_any()
                .downcast_ref::<arrow::array::StringArray>();
            let (Some(ids), Some(texts)) = (ids, texts) else {
                continue;
            };
            for i in 0..b.num_rows() {
                let t = texts.value(i).to_lowercase();
                if wanted
                    .iter()
                    .any(|w| w.contains('@') && t.contains(w.as_str()))
                {
                    found.insert(ids.value(i).to_string());
                }
            }
        }
    }
    Ok((found, masked))
}

fn walk_strings(v: &serde_json::Value, f: &mut dyn FnMut(&str)) {
    match v {
        serde_json::Value::String(s) => f(s),
        serde_json::Value::Array(a) => a.iter().for_each(|x| walk_strings(x, f)),
        serde_json::Value::Object(o) => o.values().for_each(|x| walk_strings(x, f)),
        _ => {}
    }
}

fn short(id: &str) -> &str {
    &id[..id.len().min(40)]
}

fn print_summary(what: &str, s: &EraseSummary) {
    if !s.erased.is_empty() {
        let shown: Vec<&str> = s.erased.iter().take(5).map(|i| short(i)).collect();
        eprintln!(
            "{what}: erased {} conversation(s) ({}{}): {} snapshot(s) written again without them, {} utterances removed",
            s.erased.len(),
            shown.join(", "),
            if s.erased.len() > shown.len() { ", …" } else { "" },
            s.snapshots_rewritten,
            s.utterances_removed
        );
    }
    for id in &s.already {
        eprintln!(
            "{what}: {} was erased before; finished what was left of it",
            short(id)
        );
    }
    if s.files_deleted > 0
        || !s.versions_extracted.is_empty()
        || !s.versions_aggregated.is_empty()
        || s.segments_scrubbed > 0
    {
        eprintln!(
            "{what}: {} file(s) deleted; mentions extracted again with {} dictionary version(s), aggregates built again for {}; {} event segment(s) scrubbed",
            s.files_deleted,
            s.versions_extracted.len(),
            s.versions_aggregated.len(),
            s.segments_scrubbed
        );
    }
    for r in &s.reports_deleted {
        eprintln!("{what}: {r} quoted an erased conversation and was deleted; run `convlake report` to draw it again");
    }
    if !s.erased.is_empty() {
        eprintln!(
            "{what}: run `convlake sync` to delete their rows from PostgreSQL, and `convlake verify --erased` to check that nothing of them is left"
        );
    }
}

/// `convlake forget --finish`: what an interrupted erasure left.
pub async fn finish(lake: &Lake, w: Option<usize>) -> Result<()> {
    let mut s = EraseSummary::default();
    erase::finish(lake, workers(w), &mut s).await?;
    print_summary("forget", &s);
    if s.files_deleted == 0 && s.segments_scrubbed == 0 && s.versions_aggregated.is_empty() {
        eprintln!("forget: no erasure was left unfinished");
    }
    Ok(())
}

/// `convlake forget`.
pub async fn forget(lake: &Lake, req: &ForgetRequest) -> Result<()> {
    let mut ids: BTreeSet<String> = req
        .conversations
        .iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    for f in &req.files {
        ids.extend(ids_in_file(f)?);
    }
    if !req.participant_addresses.is_empty() {
        let (found, masked) =
            conversations_with_addresses(lake, &req.participant_addresses).await?;
        if found.is_empty() {
            bail!(
                "no conversation in the lake {} holds the address(es) {}{}",
                lake.location(),
                req.participant_addresses.join(", "),
                if masked {
                    " (the lake's texts and records were masked with --mask, so addresses are not stored: erase by --conversation ID)"
                } else {
                    ""
                }
            );
        }
        eprintln!(
            "forget: {} conversation(s) hold {}",
            found.len(),
            req.participant_addresses.join(", ")
        );
        ids.extend(found);
    }
    if ids.is_empty() && req.files.is_empty() {
        bail!("nothing to forget: name conversations with --conversation ID, --file FILE (one id per line) or --participant-address ADDRESS");
    }
    let ids: Vec<String> = ids.into_iter().collect();
    let s = erase::erase(lake, &ids, Reason::Forget, workers(req.workers)).await?;
    print_summary("forget", &s);
    if !s.unknown.is_empty() {
        let shown: Vec<&str> = s.unknown.iter().take(5).map(|i| short(i)).collect();
        bail!(
            "{} conversation id(s) are in no snapshot of the lake {} ({}{}): check the ids (`convlake query \"SELECT DISTINCT conversation_id FROM utterances\"` lists them){}",
            s.unknown.len(),
            lake.location(),
            shown.join(", "),
            if s.unknown.len() > shown.len() { ", …" } else { "" },
            if s.erased.is_empty() { "; nothing was erased" } else { "; the others were erased" }
        );
    }
    Ok(())
}

/// The conversations of the lake that started before `cutoff`.
async fn older_than(lake: &Lake, cutoff: NaiveDate) -> Result<Vec<String>> {
    let events = lake.events().read_all().await?;
    let source: std::collections::HashMap<String, String> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Snapshot {
                snapshot, source, ..
            } => Some((snapshot.clone(), source.clone())),
            _ => None,
        })
        .collect();
    let mut out = BTreeSet::new();
    for (snap, _) in snapshots_in_order(&events) {
        let src = source.get(&snap).cloned().unwrap_or_default();
        for (id, day) in erase::conversations_of_snapshot(lake, &snap, &src).await? {
            if day.is_some_and(|d| d < cutoff) {
                out.insert(id);
            }
        }
    }
    Ok(out.into_iter().collect())
}

/// `convlake retain --older-than AGE`: erases every conversation that started before today
/// minus AGE (UTC); with `dry_run`, only says how many.
pub async fn retain(lake: &Lake, age: Age, dry_run: bool, w: Option<usize>) -> Result<()> {
    let cutoff = age.cutoff(chrono::Utc::now().date_naive());
    let ids = older_than(lake, cutoff).await?;
    if dry_run {
        eprintln!(
            "retain: {} conversation(s) started before {cutoff} (older than {age}); --dry-run: nothing erased",
            ids.len()
        );
        return Ok(());
    }
    eprintln!(
        "retain: {} conversation(s) started before {cutoff} (older than {age})",
        ids.len()
    );
    let s = erase::erase(lake, &ids, Reason::Retention, workers(w)).await?;
    print_summary("retain", &s);
    Ok(())
}

/// `convlake verify --erased`: no lake file and no row of the synced tables holds an erased
/// conversation's id or one of its distinctive texts, and no erasure is unfinished.
pub async fn verify_erased(lake: &Lake, db: &DbConfig) -> Result<()> {
    let raw_events = lake.events().read_all_unapplied().await?;
    let ids: HashSet<String> = raw_events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Erased { conversations, .. } => Some(conversations.iter().cloned()),
            _ => None,
        })
        .flatten()
        .collect();
    let restored: HashSet<String> = {
        let now = erased_conversations(&raw_events);
        ids.difference(&now).cloned().collect()
    };
    let ids: HashSet<String> = ids.difference(&restored).cloned().collect();
    let texts: HashSet<String> = raw_events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Erased { texts, .. } => Some(texts.iter().cloned()),
            _ => None,
        })
        .flatten()
        .collect();
    let mut problems = Vec::new();
    let mut files = 0u64;
    for meta in lake.list("").await? {
        let path = meta.location.to_string();
        files += 1;
        let bytes = lake.get(&path).await?;
        if let Some(what) = crate::privacy::proof::holds_erased(&path, &bytes, &ids, &texts) {
            problems.push(format!("{path}: {what}"));
        }
    }
    let mut rows = 0u64;
    let mut checked_db = None;
    if let Some(t) = super::stages::target(db)? {
        let client = t.connect().await?;
        let columns = client
            .query(
                "SELECT table_name, column_name FROM information_schema.columns \
                 WHERE table_schema = $1 AND data_type IN ('text', 'character varying', 'json', 'jsonb') \
                 ORDER BY table_name, column_name",
                &[&t.schema()],
            )
            .await
            .with_context(|| format!("cannot list the tables of {}", t.describe()))?;
        for row in columns {
            let (table, column): (String, String) = (row.get(0), row.get(1));
            let sql = format!(
                "SELECT \"{}\"::text FROM \"{}\".\"{}\" WHERE \"{}\" IS NOT NULL",
                column.replace('"', "\"\""),
                t.schema().replace('"', "\"\""),
                table.replace('"', "\"\""),
                column.replace('"', "\"\"")
            );
            let values = client
                .query(sql.as_str(), &[])
                .await
                .with_context(|| format!("cannot read {table}.{column} in {}", t.describe()))?;
            for v in values {
                rows += 1;
                let s: String = v.get(0);
                if let Some(what) =
                    crate::privacy::proof::holds_erased("row", s.as_bytes(), &ids, &texts)
                {
                    problems.push(format!(
                        "{} table {table}, column {column}: {what}",
                        t.describe()
                    ));
                    break;
                }
            }
        }
        checked_db = Some(t.describe());
    }
    // An erasure a crash left unfinished: its old snapshots still there.
    let mut unfinished = 0u64;
    let live: HashSet<String> = snapshots_in_order(&lake.events().read_all().await?)
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    for e in &raw_events {
        if let EventKind::Erased { snapshots, .. } = &e.kind {
            for r in snapshots {
                if !live.contains(&r.old)
                    && lake.exists(&crate::lake::snapshot_path(&r.old)).await?
                {
                    unfinished += 1;
                }
            }
        }
    }
    if unfinished > 0 {
        problems.push(format!(
            "{unfinished} snapshot(s) an erasure replaced are still in the lake: an erasure was interrupted; run `convlake forget --finish` to complete it"
        ));
    }
    eprintln!(
        "verify --erased: {} erased conversation(s), {} distinctive text(s); {} lake file(s) checked{}",
        ids.len(),
        texts.len(),
        files,
        match &checked_db {
            Some(d) => format!(", {rows} values of the synced tables in {d}"),
            None => ", no database (set DATABASE_URL or --database-url to check the synced tables too)".into(),
        }
    );
    if problems.is_empty() {
        println!("verify --erased: nothing of an erased conversation is left");
        return Ok(());
    }
    for p in &problems {
        println!("verify --erased: {p}");
    }
    bail!(
        "{} place(s) still hold an erased conversation (listed above): run `convlake forget --finish`, then `convlake sync` for the database",
        problems.len()
    )
}
