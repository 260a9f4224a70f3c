//! Erasure: `convlake forget` and `convlake retain` remove whole conversations from the lake.
//!
//! Per erasure, in this order (a crash at any point leaves the old state or the new one, and a
//! re-run finishes it):
//! 1. every snapshot that holds one of the conversations is written again without them, under a
//!    new name: analytics batches as a new texts array, records array and manifest (named by
//!    their content, like a fetch's), archive pages as their rows under
//!    [`rewritten_name`]; then the new raw file. Nothing refers to these files yet;
//! 2. one `erased` event commits it: the old → new names, the conversations as hashes of their
//!    ids, the blake3 of their distinctive utterance texts, the event segments that named them.
//!    From here on every reader sees the new snapshots in the old ones' places
//!    ([`apply_erasures`]);
//! 3. [`finish`] (idempotent, run by every `forget` and `retain`, and safe to run again): the old
//!    bodies, manifests and raw files are deleted; their mentions and topics files are deleted
//!    and the new snapshots extracted with every dictionary version the lake extracted; the
//!    aggregates of every version whose generation in force holds an erased conversation are
//!    built again, and superseded aggregate files, reports and quarantined files that hold one
//!    are deleted; segments are scrubbed (the id replaced by its hash).
//!
//! The next `sync` deletes the conversations' PostgreSQL rows (they are no longer in the
//! aggregates). A fetch skips erased conversations ([`erased_conversations`]) unless `--restore`.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{new_null_array, Array, ArrayRef, BooleanArray, RecordBatch, StringArray};
use bytes::Bytes;
use serde_json::value::RawValue;

use crate::extract::Dictionary;
use crate::genesys::fetch::analytics::{Manifest, SOURCE as ANALYTICS};
use crate::lake::dictionaries::{current_dictionary, dictionaries};
use crate::lake::events::{
    apply_erasures, erased_conversations, erased_hash, erased_placeholder, snapshots_in_order,
    Event, EventKind, Rewrite,
};
use crate::lake::layout::{body_path, mentions_path, snapshot_path, texts_path, topics_path};
use crate::lake::{content_hash, schema, Lake, LakeError};

/// Why an erasure failed. Each names the file or the conversation and what to do.
#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("{path} in the lake cannot be read for the erasure: {reason}. Run `convlake verify` (it quarantines damaged files), then `convlake forget` again; nothing was erased yet")]
    Damaged { path: String, reason: String },
    #[error("rebuilding the mentions after the erasure failed: {0}. The erasure itself is recorded; run the same `convlake forget` again to finish it")]
    Extract(String),
    #[error("rebuilding the aggregates after the erasure failed: {0}. The erasure itself is recorded; run the same `convlake forget` again to finish it")]
    Aggregate(String),
}

/// The fault drills' hook (tests/privacy.rs): with `CONVLAKE_FAULT_FORGET_KILL_AT=N` set, the
/// process kills itself with SIGKILL at the Nth step of an erasure (each file written or
/// deleted, the commit, each rebuild), as `kill -9` would at that point.
const KILL_AT_ENV: &str = "CONVLAKE_FAULT_FORGET_KILL_AT";

fn step() {
    static STEPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let Some(at) = std::env::var(KILL_AT_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return;
    };
    if STEPS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == at {
        let _ = std::process::Command::new("kill")
            .args(["-9", &std::process::id().to_string()])
            .status();
        std::process::abort();
    }
}

/// Why conversations are erased: recorded with the erasure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Forget,
    Retention,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Reason::Forget => "forget",
            Reason::Retention => "retention",
        }
    }
}

/// What an erasure did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EraseSummary {
    /// Conversations erased by this run.
    pub erased: Vec<String>,
    /// Asked for but erased before (this run only finished what was left).
    pub already: Vec<String>,
    /// Asked for but in no snapshot of the lake.
    pub unknown: Vec<String>,
    pub snapshots_rewritten: u64,
    pub utterances_removed: u64,
    /// Files deleted (old snapshots, bodies, mentions, topics, superseded aggregates, reports,
    /// quarantined copies).
    pub files_deleted: u64,
    pub reports_deleted: Vec<String>,
    pub segments_scrubbed: u64,
    /// Dictionary versions whose mentions were extracted again, and whose aggregates were built again.
    pub versions_extracted: Vec<String>,
    pub versions_aggregated: Vec<String>,
}

/// The name of an archive page written again without some of its conversations (`erased`: the
/// [`erased_hash`] of those it held), and of the same page fetched again while they stay erased:
/// both give the same name, so a re-fetch finds the rewrite already stored.
pub fn rewritten_name(snapshot: &str, erased: &BTreeSet<String>) -> String {
    let mut key = format!("convlake-rewrite:{snapshot}");
    for h in erased {
        key.push(':');
        key.push_str(h);
    }
    content_hash(key.as_bytes())
}

/// A snapshot as the log records it.
struct Staged {
    snapshot: String,
    source: String,
}

fn staged_snapshots(events: &[Event]) -> Vec<Staged> {
    let source: HashMap<&str, &str> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Snapshot {
                snapshot, source, ..
            } => Some((snapshot.as_str(), source.as_str())),
            _ => None,
        })
        .collect();
    snapshots_in_order(events)
        .into_iter()
        .map(|(snapshot, _)| Staged {
            source: source.get(snapshot.as_str()).unwrap_or(&"").to_string(),
            snapshot,
        })
        .collect()
}

fn damaged(path: &str) -> impl Fn(String) -> EraseError + '_ {
    move |reason| EraseError::Damaged {
        path: path.to_string(),
        reason,
    }
}

/// The string values of a column, if it is one.
fn strings(batch: &RecordBatch, name: &str) -> Option<StringArray> {
    let col = batch.column_by_name(name)?;
    let col = arrow::compute::cast(col, &arrow::datatypes::DataType::Utf8).ok()?;
    col.as_any().downcast_ref::<StringArray>().cloned()
}

/// The rows of a raw snapshot file.
async fn raw_rows(lake: &Lake, snapshot: &str) -> Result<Option<Vec<RecordBatch>>, EraseError> {
    let path = snapshot_path(snapshot);
    if !lake.exists(&path).await? {
        return Ok(None);
    }
    let bytes = lake.get(&path).await?;
    schema::from_parquet(bytes)
        .map(Some)
        .map_err(damaged(&path))
}

async fn manifest(lake: &Lake, snapshot: &str) -> Result<Option<Manifest>, EraseError> {
    let path = body_path(snapshot);
    if !lake.exists(&path).await? {
        return Ok(None);
    }
    let bytes = lake.get(&path).await?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| damaged(&path)(format!("not a batch manifest: {e}")))
}

/// Every conversation id a staged snapshot holds (its rows, and for the analytics source every
/// manifest entry, with or without text), with the conversation's day.
pub async fn conversations_of_snapshot(
    lake: &Lake,
    snapshot: &str,
    source: &str,
) -> Result<Vec<(String, Option<chrono::NaiveDate>)>, EraseError> {
    let mut out: Vec<(String, Option<chrono::NaiveDate>)> = Vec::new();
    let mut seen = HashSet::new();
    let path = snapshot_path(snapshot);
    let rows = match lake.exists(&path).await? {
        true => Some(
            schema::from_parquet_columns(
                lake.get(&path).await?,
                &["conversation_id", "conversation_date"],
            )
            .map_err(damaged(&path))?,
        ),
        false => None,
    };
    if let Some(batches) = rows {
        for b in &batches {
            let Some(ids) = strings(b, "conversation_id") else {
                continue;
            };
            let days = b.column_by_name("conversation_date").and_then(|c| {
                c.as_any()
                    .downcast_ref::<arrow::array::Date32Array>()
                    .cloned()
            });
            for i in 0..ids.len() {
                let id = ids.value(i);
                if seen.insert(id.to_string()) {
                    let day = days.as_ref().and_then(|d| d.value_as_date(i));
                    out.push((id.to_string(), day));
                }
            }
        }
    }
    if source == ANALYTICS {
        if let Some(m) = manifest(lake, snapshot).await? {
            for e in &m.conversations {
                if seen.insert(e.conversation_id.clone()) {
                    let day = chrono::DateTime::parse_from_rfc3339(&e.conversation_start)
                        .ok()
                        .map(|t| t.with_timezone(&chrono::Utc).date_naive());
                    out.push((e.conversation_id.clone(), day));
                }
            }
        }
    }
    Ok(out)
}

/// One snapshot to write again.
struct Planned {
    old: String,
    source: String,
    /// The erased hashes of the conversations it loses.
    losing: BTreeSet<String>,
}

/// Erases `ids` from the lake (see the module doc) and finishes every earlier erasure.
pub async fn erase(
    lake: &Lake,
    ids: &[String],
    reason: Reason,
    workers: usize,
) -> Result<EraseSummary, EraseError> {
    let events = lake.events().read_all().await?;
    let before = erased_conversations(&events);
    let wanted: BTreeSet<String> = ids.iter().map(|s| s.trim().to_string()).collect();
    let mut summary = EraseSummary::default();

    // Which snapshots hold which of them.
    let mut planned = Vec::new();
    let mut found = HashSet::new();
    for s in staged_snapshots(&events) {
        let held = conversations_of_snapshot(lake, &s.snapshot, &s.source).await?;
        let losing: BTreeSet<String> = held
            .iter()
            .filter(|(id, _)| wanted.contains(id))
            .map(|(id, _)| {
                found.insert(id.clone());
                erased_hash(id)
            })
            .collect();
        if !losing.is_empty() {
            planned.push(Planned {
                old: s.snapshot,
                source: s.source,
                losing,
            });
        }
    }
    for id in &wanted {
        if !found.contains(id) {
            if before.contains(&erased_hash(id)) {
                summary.already.push(id.clone());
            } else {
                summary.unknown.push(id.clone());
            }
        }
    }
    if !planned.is_empty() {
        let texts = distinctive_texts(lake, &planned, &wanted).await?;
        let segments: BTreeSet<String> = events
            .iter()
            .filter(|e| match &e.kind {
                EventKind::TextsMissing { conversations, .. } => conversations
                    .iter()
                    .any(|m| wanted.contains(&m.conversation_id)),
                _ => false,
            })
            .map(|e| crate::lake::events::segment_path(e.seq))
            .collect();
        // The versions whose mentions of the old snapshots are to be rebuilt.
        let mut versions = BTreeSet::new();
        let listed = lake.list_paths("mentions").await?;
        for v in mention_versions(&listed) {
            if planned
                .iter()
                .any(|p| listed.contains(&mentions_path(&v, &p.old)))
            {
                versions.insert(v);
            }
        }
        // 1. The new files.
        let mut rewrites = Vec::new();
        for p in &planned {
            let r = rewrite(lake, p).await?;
            summary.utterances_removed += r.1;
            rewrites.push(r.0);
        }
        summary.snapshots_rewritten = rewrites.len() as u64;
        // 2. The commit.
        step();
        let mut erased: Vec<String> = found.iter().map(|id| erased_hash(id)).collect();
        erased.sort();
        lake.events()
            .append(vec![EventKind::Erased {
                reason: reason.as_str().into(),
                conversations: erased,
                texts,
                snapshots: rewrites,
                segments: segments.into_iter().collect(),
                versions: versions.into_iter().collect(),
            }])
            .await?;
        summary.erased = found.into_iter().collect();
        summary.erased.sort();
    }
    // 3. What follows from it (and from any erasure a crash left unfinished).
    finish(lake, workers, &mut summary).await?;
    Ok(summary)
}

/// The blake3 of the utterance texts of the erased conversations that no other conversation of
/// the lake's current copies holds (a template an agent says in every call is not evidence).
async fn distinctive_texts(
    lake: &Lake,
    planned: &[Planned],
    wanted: &BTreeSet<String>,
) -> Result<Vec<String>, EraseError> {
    let mut theirs: HashSet<String> = HashSet::new();
    for p in planned {
        for b in raw_rows(lake, &p.old).await?.unwrap_or_default() {
            let (Some(ids), Some(texts)) = (strings(&b, "conversation_id"), strings(&b, "text"))
            else {
                continue;
            };
            for i in 0..b.num_rows() {
                if wanted.contains(ids.value(i)) {
                    theirs.insert(texts.value(i).to_string());
                }
            }
        }
    }
    if theirs.is_empty() {
        return Ok(Vec::new());
    }
    // Texts other conversations hold too, anywhere in the lake.
    let mut shared = HashSet::new();
    for meta in lake.list("raw").await? {
        let path = meta.location.to_string();
        let Ok(batches) =
            schema::from_parquet_columns(lake.get(&path).await?, &["conversation_id", "text"])
        else {
            continue;
        };
        for b in batches {
            let (Some(ids), Some(texts)) = (strings(&b, "conversation_id"), strings(&b, "text"))
            else {
                continue;
            };
            for i in 0..b.num_rows() {
                if !wanted.contains(ids.value(i)) && theirs.contains(texts.value(i)) {
                    shared.insert(texts.value(i).to_string());
                }
            }
        }
    }
    let mut out: Vec<String> = theirs
        .iter()
        .filter(|t| !shared.contains(*t))
        .map(|t| content_hash(t.as_bytes()))
        .collect();
    out.sort();
    Ok(out)
}

/// Writes snapshot `p.old` again without its erased conversations; returns the rewrite and the
/// utterances it lost. Writing is idempotent (content-addressed names).
async fn rewrite(lake: &Lake, p: &Planned) -> Result<(Rewrite, u64), EraseError> {
    let keep = |id: &str| !p.losing.contains(&erased_hash(id));
    let new = match p.source.as_str() {
        ANALYTICS => match manifest(lake, &p.old).await? {
            Some(m) => rewrite_manifest(lake, &p.old, m, &keep).await?,
            None => rewritten_name(&p.old, &p.losing),
        },
        _ => rewritten_name(&p.old, &p.losing),
    };
    let rows = raw_rows(lake, &p.old).await?.unwrap_or_default();
    let mut kept = Vec::new();
    let mut lost = 0u64;
    let mut conversations = HashSet::new();
    for b in &rows {
        let ids = strings(b, "conversation_id").ok_or_else(|| {
            damaged(&snapshot_path(&p.old))("it has no conversation_id column".into())
        })?;
        let mask: BooleanArray = (0..ids.len()).map(|i| Some(keep(ids.value(i)))).collect();
        let f = arrow::compute::filter_record_batch(b, &mask)
            .map_err(|e| damaged(&snapshot_path(&p.old))(e.to_string()))?;
        lost += (b.num_rows() - f.num_rows()) as u64;
        if let Some(ids) = strings(&f, "conversation_id") {
            for i in 0..ids.len() {
                conversations.insert(ids.value(i).to_string());
            }
        }
        kept.push(as_raw(&f, &new).map_err(damaged(&snapshot_path(&p.old)))?);
    }
    let path = snapshot_path(&new);
    if !lake.exists(&path).await? {
        let bytes = schema::to_parquet(&schema::raw_schema(), &kept).map_err(damaged(&path))?;
        step();
        lake.put(&path, bytes).await?;
    }
    let utterances = kept.iter().map(|b| b.num_rows() as u64).sum();
    if p.source == ANALYTICS {
        if let Some(m) = manifest(lake, &new).await? {
            conversations.extend(m.conversations.into_iter().map(|e| e.conversation_id));
        }
    }
    Ok((
        Rewrite {
            old: p.old.clone(),
            new,
            path,
            conversations: conversations.len() as u64,
            utterances,
        },
        lost,
    ))
}

/// Rows of a raw file in today's raw schema (columns added since are NULL), with `snapshot` set
/// to the new name.
fn as_raw(batch: &RecordBatch, snapshot: &str) -> Result<RecordBatch, String> {
    let schema = schema::raw_schema();
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| {
            if f.name() == "snapshot" {
                return Arc::new(StringArray::from(vec![snapshot; batch.num_rows()])) as ArrayRef;
            }
            match batch.column_by_name(f.name()) {
                Some(c) => arrow::compute::cast(c, f.data_type())
                    .unwrap_or_else(|_| new_null_array(f.data_type(), batch.num_rows())),
                None => new_null_array(f.data_type(), batch.num_rows()),
            }
        })
        .collect();
    RecordBatch::try_new(schema, columns).map_err(|e| e.to_string())
}

/// Writes an analytics batch again without the conversations `keep` refuses: its texts and
/// records arrays and its manifest (v1 manifests keep their per-text files). Returns the new
/// snapshot name (the blake3 of the new manifest).
async fn rewrite_manifest(
    lake: &Lake,
    old: &str,
    m: Manifest,
    keep: &dyn Fn(&str) -> bool,
) -> Result<String, EraseError> {
    let records_path = body_path(&m.records);
    let records_bytes = lake.get(&records_path).await?;
    let records: Vec<&RawValue> = serde_json::from_slice(&records_bytes)
        .map_err(|e| damaged(&records_path)(format!("not a JSON array of records: {e}")))?;
    if records.len() != m.conversations.len() {
        return Err(damaged(&records_path)(format!(
            "it holds {} records and its manifest {} names {}",
            records.len(),
            body_path(old),
            m.conversations.len()
        )));
    }
    let texts = match &m.texts {
        Some(hash) => {
            let path = texts_path(hash);
            let packed = lake.get(&path).await?;
            Some(
                zstd::stream::decode_all(&packed[..])
                    .map_err(|e| damaged(&path)(format!("does not decompress: {e}")))?,
            )
        }
        None => None,
    };
    let parts: Vec<&RawValue> = match &texts {
        Some(t) => serde_json::from_slice(t).map_err(|e| {
            damaged(&texts_path(m.texts.as_deref().unwrap_or_default()))(format!(
                "not a JSON array of texts: {e}"
            ))
        })?,
        None => Vec::new(),
    };
    let mut parts = parts.into_iter();
    let mut entries = Vec::new();
    let mut kept_records = Vec::new();
    let mut kept_texts = Vec::new();
    for (entry, record) in m.conversations.iter().zip(records) {
        let part = match (&m.texts, entry.text.starts_with("missing:")) {
            (Some(_), false) => Some(parts.next().ok_or_else(|| {
                damaged(&body_path(old))("it names more texts than its texts file holds".into())
            })?),
            _ => None,
        };
        if !keep(&entry.conversation_id) {
            continue;
        }
        entries.push(entry.clone());
        kept_records.push(record);
        kept_texts.extend(part);
    }
    let texts_hash = if kept_texts.is_empty() {
        None
    } else {
        let bytes = join(&kept_texts);
        let packed = zstd::bulk::compress(&bytes, 1)
            .map_err(|e| damaged(&body_path(old))(format!("compressing its texts: {e}")))?;
        let hash = content_hash(&packed);
        put_once(lake, &texts_path(&hash), Bytes::from(packed)).await?;
        Some(hash)
    };
    let records = join(&kept_records);
    let records_hash = content_hash(&records);
    put_once(lake, &body_path(&records_hash), Bytes::from(records)).await?;
    let manifest = Manifest {
        format: m.format.clone(),
        records: records_hash,
        texts: if m.texts.is_some() { texts_hash } else { None },
        conversations: entries,
    };
    let bytes =
        serde_json::to_vec(&manifest).map_err(|e| damaged(&body_path(old))(e.to_string()))?;
    let snapshot = content_hash(&bytes);
    put_once(lake, &body_path(&snapshot), Bytes::from(bytes)).await?;
    Ok(snapshot)
}

fn join(parts: &[&RawValue]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.get().len() + 2).sum::<usize>() + 2);
    out.push(b'[');
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b",\n");
        }
        out.extend_from_slice(p.get().as_bytes());
    }
    out.push(b']');
    out
}

async fn put_once(lake: &Lake, path: &str, bytes: Bytes) -> Result<(), LakeError> {
    if !lake.exists(path).await? {
        step();
        lake.put(path, bytes).await?;
    }
    Ok(())
}

/// Deletes a file; counts it when it was there.
async fn remove(lake: &Lake, path: &str, summary: &mut EraseSummary) -> Result<(), LakeError> {
    if lake.exists(path).await? {
        step();
        lake.delete(path).await?;
        summary.files_deleted += 1;
    }
    Ok(())
}

/// Step 3 of every recorded erasure (see the module doc); does nothing when all is done.
pub async fn finish(
    lake: &Lake,
    workers: usize,
    summary: &mut EraseSummary,
) -> Result<(), EraseError> {
    let mut raw_events = read_unapplied(lake).await?;
    let mut rebuild: BTreeSet<String> = BTreeSet::new();
    let erasures: Vec<(Vec<Rewrite>, Vec<String>)> = raw_events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Erased {
                snapshots,
                segments,
                versions,
                ..
            } => {
                rebuild.extend(versions.iter().cloned());
                Some((snapshots.clone(), segments.clone()))
            }
            _ => None,
        })
        .collect();
    if erasures.is_empty() {
        return Ok(());
    }
    apply_erasures(&mut raw_events);
    let events = raw_events;
    let all_erased: HashSet<String> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Erased { conversations, .. } => Some(conversations.iter().cloned()),
            _ => None,
        })
        .flatten()
        .collect();
    let texts: HashSet<String> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Erased { texts, .. } => Some(texts.iter().cloned()),
            _ => None,
        })
        .flatten()
        .collect();
    let live: HashSet<String> = snapshots_in_order(&events)
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    // The body files the live manifests of rewritten snapshots name (an old batch whose erased
    // conversation had no text shares its texts file with the new one).
    let mut named = HashSet::new();
    for (rewrites, _) in &erasures {
        for r in rewrites {
            if live.contains(&r.new) {
                if let Some(m) = manifest(lake, &r.new).await? {
                    named.insert(body_path(&m.records));
                    named.extend(m.texts.iter().map(|t| texts_path(t)));
                }
            }
        }
    }
    let mut listed = lake.list_paths("mentions").await?;
    listed.extend(lake.list_paths("topics").await?);
    let versions = mention_versions(&listed);
    for (rewrites, _) in &erasures {
        for r in rewrites {
            if live.contains(&r.old) {
                // Restaged since (a `fetch --restore` of the same page): it is live again.
                continue;
            }
            // The old batch's bodies, then its manifest, then its rows: the manifest is what
            // names the bodies, so it goes after them.
            if let Some(m) = manifest(lake, &r.old).await.ok().flatten() {
                let mut files = vec![body_path(&m.records)];
                files.extend(m.texts.iter().map(|t| texts_path(t)));
                if m.texts.is_none() {
                    for e in &m.conversations {
                        if !all_erased.contains(&erased_hash(&e.conversation_id)) {
                            continue;
                        }
                        if let Some((_, h)) = e.text.split_once(':') {
                            if !e.text.starts_with("missing:") {
                                files.push(body_path(h));
                            }
                        }
                    }
                }
                for f in files {
                    if !named.contains(&f) {
                        remove(lake, &f, summary).await?;
                    }
                }
                remove(lake, &body_path(&r.old), summary).await?;
            }
            remove(lake, &snapshot_path(&r.old), summary).await?;
            for v in &versions {
                remove(lake, &mentions_path(v, &r.old), summary).await?;
                remove(lake, &topics_path(v, &r.old), summary).await?;
            }
        }
    }
    // Mentions of the new snapshots, with every version the lake extracted.
    let current = current_dictionary(&events).map(|d| d.version);
    rebuild.extend(current.iter().cloned());
    let mut rebuilt = Vec::new();
    for d in dictionaries(&events).into_iter().filter(|d| d.extracted) {
        if !rebuild.contains(&d.version) {
            continue;
        }
        let Some(dict) = lake_copy(lake, &d).await? else {
            tracing::warn!(
                version = %d.version,
                "the lake has no copy of this dictionary version; its mentions of the rewritten snapshots are not rebuilt"
            );
            continue;
        };
        let record = current.as_deref() == Some(d.version.as_str());
        step();
        let s = crate::extract::extract_files(lake, &dict, workers, record)
            .await
            .map_err(|e| EraseError::Extract(e.to_string()))?;
        if s.extracted > 0 {
            summary.versions_extracted.push(d.version.clone());
        }
        rebuilt.push(d.version);
    }
    // Aggregates: a generation in force that holds an erased conversation is built again.
    for v in &rebuilt {
        let Some(g) = crate::lake::aggregates::current_generation(&events, v) else {
            continue;
        };
        let mut holds = false;
        for t in crate::lake::aggregates::Table::ALL {
            if let Some(bytes) = g.read_table(lake, t).await.ok().flatten() {
                if super::proof::holds_erased("aggregates", &bytes, &all_erased, &texts).is_some() {
                    holds = true;
                    break;
                }
            }
        }
        if holds {
            step();
            crate::aggregate::aggregate(lake, v)
                .await
                .map_err(|e| EraseError::Aggregate(e.to_string()))?;
            summary.versions_aggregated.push(v.clone());
        }
    }
    // Files no generation in force names that hold an erased conversation: superseded
    // aggregates, reports, quarantined copies.
    let events = lake.events().read_all().await?;
    let mut in_force = HashSet::new();
    for v in &rebuilt {
        if let Some(g) = crate::lake::aggregates::current_generation(&events, v) {
            for t in crate::lake::aggregates::Table::ALL {
                if let Some(p) = g.path(t) {
                    in_force.insert(p.to_string());
                }
            }
        }
    }
    for prefix in ["aggregates", "reports", crate::lake::verify::QUARANTINE_DIR] {
        for meta in lake.list(prefix).await? {
            let path = meta.location.to_string();
            if in_force.contains(&path) {
                continue;
            }
            let bytes = lake.get(&path).await?;
            if super::proof::holds_erased(&path, &bytes, &all_erased, &texts).is_some() {
                step();
                lake.delete(&path).await?;
                summary.files_deleted += 1;
                if prefix == "reports" {
                    summary.reports_deleted.push(path);
                }
            }
        }
    }
    // Segments that named an erased conversation: the id becomes its hash.
    for (_, segments) in &erasures {
        for path in segments {
            if scrub_segment(lake, path, &all_erased).await? {
                summary.segments_scrubbed += 1;
            }
        }
    }
    Ok(())
}

/// A dictionary version from the lake's copy (`dictionaries/<version>.toml`); `None` when the
/// lake has none (lakes from before copies were kept).
async fn lake_copy(
    lake: &Lake,
    d: &crate::lake::dictionaries::LakeDictionary,
) -> Result<Option<Dictionary>, EraseError> {
    let Some(copy) = &d.copy else {
        return Ok(None);
    };
    if !lake.exists(copy).await? {
        return Ok(None);
    }
    let bytes = lake.get(copy).await?;
    let mut dict = Dictionary::parse(&String::from_utf8_lossy(&bytes), copy)
        .map_err(|e| damaged(copy)(e.to_string()))?;
    // A copy a convlake before issue 21 wrote has that convlake's version.
    if dict.v1_version.as_deref() == Some(d.version.as_str()) {
        dict.version = d.version.clone();
    }
    if dict.version != d.version {
        return Err(damaged(copy)(format!(
            "it holds dictionary version {}, not {}",
            dict.version, d.version
        )));
    }
    dict.origin = d.source.clone();
    Ok(Some(dict))
}

/// The dictionary versions of `dict=<version>` folders among lake paths.
fn mention_versions<S: AsRef<str>>(paths: impl IntoIterator<Item = S>) -> BTreeSet<String> {
    paths
        .into_iter()
        .filter_map(|p| {
            p.as_ref()
                .split('/')
                .nth(1)
                .and_then(|d| d.strip_prefix("dict="))
                .map(String::from)
        })
        .collect()
}

/// The log without erasures applied (the old names are what is to be deleted).
async fn read_unapplied(lake: &Lake) -> Result<Vec<Event>, LakeError> {
    lake.events().read_all_unapplied().await
}

/// Writes a segment again with every `texts_missing` entry of an erased conversation named by
/// its hash; returns whether it changed.
async fn scrub_segment(
    lake: &Lake,
    path: &str,
    erased: &HashSet<String>,
) -> Result<bool, LakeError> {
    if !lake.exists(path).await? {
        return Ok(false);
    }
    let bytes = lake.get(path).await?;
    let mut out = String::with_capacity(bytes.len());
    let mut changed = false;
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let mut event: Event = match serde_json::from_slice(line) {
            Ok(e) => e,
            Err(_) => {
                out.push_str(&String::from_utf8_lossy(line));
                out.push('\n');
                continue;
            }
        };
        if let EventKind::TextsMissing { conversations, .. } = &mut event.kind {
            for m in conversations.iter_mut() {
                if erased.contains(&erased_hash(&m.conversation_id)) {
                    m.conversation_id = erased_placeholder(&m.conversation_id);
                    changed = true;
                }
            }
        }
        out.push_str(
            &serde_json::to_string(&event).map_err(|e| LakeError::Event {
                path: path.to_string(),
                reason: e.to_string(),
            })?,
        );
        out.push('\n');
    }
    if changed {
        step();
        lake.put(path, Bytes::from(out)).await?;
    }
    Ok(changed)
}
