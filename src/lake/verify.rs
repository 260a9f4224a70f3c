//! `convlake verify`: checks that every file in the lake is whole and is what its name says, and
//! that every file the event log refers to exists. Damaged files are reported and moved to
//! `quarantine/<original path>` (never deleted), so the stage that wrote them writes them again.
//!
//! What is checked:
//! - event segments (`events/<seq>.jsonl`): every line parses; a line that is JSON but not a
//!   known event (a newer convlake) is reported, never quarantined;
//! - raw snapshots (`raw/<h0h1>/<blake3>.parquet`): the name is a blake3 in its right folder; the
//!   Parquet file opens and every row group decodes; the columns extract reads have their types;
//!   the `snapshot` column equals the file name (the name is the hash of the page *body*, not of
//!   the Parquet bytes, so it cannot be checked by re-hashing the file);
//! - mentions and aggregates: the Parquet files decode fully, and mentions name their snapshot
//!   and dictionary version;
//! - stored bodies (`bodies/<h0h1>/<blake3>.json`): re-hashed against their name;
//! - every snapshot event's raw file (and, for the analytics source, its manifest) exists;
//! - the checksum record `verify/checksums.json`: the blake3 of every immutable file (events, raw,
//!   mentions, bodies) when a verify last found it sound. A later verify re-hashes each file and
//!   reports one whose bytes changed since, which catches damage that still decodes.
//!
//! Invariants: verify never deletes; it moves a damaged file to `quarantine/<path>` (a numbered
//! suffix when that name is taken) with a rename (on an object store: a create-if-absent copy,
//! then the delete), so the lake holds it whole or not at all.

use std::collections::{BTreeMap, HashMap, HashSet};

use arrow::array::{Array, RecordBatch, StringArray};
use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::events::{Event, EventKind};
use super::schema::{mentions_schema, raw_schema};
use super::{content_hash, Lake, LakeError};

/// Where damaged files go: `quarantine/<original path>`.
pub const QUARANTINE_DIR: &str = "quarantine";
/// The checksum record written by each verify.
pub const CHECKSUMS_PATH: &str = "verify/checksums.json";
/// Files checked at once.
const PARALLEL: usize = 4;

/// One thing wrong in the lake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The lake path concerned.
    pub path: String,
    /// What is wrong with it.
    pub reason: String,
    /// Where the file was moved, when it was quarantined.
    pub quarantined_to: Option<String>,
}

/// What a verify found.
#[derive(Clone, Debug, Default)]
pub struct VerifyReport {
    /// The lake's directory.
    pub lake: String,
    pub event_segments: u64,
    pub events: u64,
    pub raw_snapshots: u64,
    /// Rows read from raw snapshots (every row group of every file).
    pub raw_rows: u64,
    pub mentions_files: u64,
    pub topics_files: u64,
    /// Mentions files rewritten since the last verify by the one-time extraction of a lake from
    /// before sentiment and topics (sound, with the added columns): recorded anew.
    pub reextracted: u64,
    pub aggregate_files: u64,
    pub bodies: u64,
    /// Files whose bytes were compared with the checksum record.
    pub checksummed: u64,
    /// Raw snapshots no event refers to (a fetch stopped between the write and the event; a later
    /// fetch adopts them). Not a problem.
    pub unrecorded: u64,
    /// Leftover staging files of interrupted writes (`<name>#<n>`); never read. Not a problem.
    pub leftover_temp_files: u64,
    /// Analytics conversations no present snapshot gives text, by the reason of their newest
    /// copy (`not-ready`, `archived`, `404`, `error`, `none`). Not a problem: a later fetch
    /// asks for them again.
    pub without_text: BTreeMap<String, u64>,
    /// Damaged or missing files.
    pub problems: Vec<Problem>,
    /// Why the checksum record could not be written (e.g. a full disk); the checks still count.
    pub record_error: Option<String>,
}

impl VerifyReport {
    /// True when nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

impl std::fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for p in &self.problems {
            match &p.quarantined_to {
                Some(q) => writeln!(f, "damaged: {}: {} (moved to {q})", p.path, p.reason)?,
                None => writeln!(f, "problem: {}: {}", p.path, p.reason)?,
            }
        }
        write!(
            f,
            "verify: {}: {} event segments ({} events), {} raw snapshots ({} rows), {} mentions files, {} topics files, {} aggregate files, {} bodies; {} files matched the checksum record; {} unrecorded snapshots, {} leftover temp files; ",
            self.lake,
            self.event_segments,
            self.events,
            self.raw_snapshots,
            self.raw_rows,
            self.mentions_files,
            self.topics_files,
            self.aggregate_files,
            self.bodies,
            self.checksummed,
            self.unrecorded,
            self.leftover_temp_files,
        )?;
        if self.leftover_temp_files > 0 {
            write!(
                f,
                "(temp files are unfinished writes of a killed run, ignored by every reader; delete the files whose names contain '#' when no convlake runs on this lake); "
            )?;
        }
        if self.reextracted > 0 {
            write!(
                f,
                "{} mentions files were extracted again since the last verify (a lake from before sentiment and topics, brought up to date once) and are recorded anew; ",
                self.reextracted
            )?;
        }
        write_without_text(f, &self.without_text)?;
        if let Some(e) = &self.record_error {
            write!(f, "the checksum record was not updated ({e}); ")?;
        }
        if self.is_clean() {
            write!(f, "the lake is sound")
        } else {
            let quarantined = self
                .problems
                .iter()
                .filter(|p| p.quarantined_to.is_some())
                .count();
            write!(
                f,
                "{} problems, {} files moved to {QUARANTINE_DIR}/. Run `convlake fetch` (same arguments), `convlake extract` and `convlake aggregate` again to rebuild what was moved",
                self.problems.len(),
                quarantined
            )
        }
    }
}

/// `N conversations without text (not ready: a, 404: b); ` when there are any.
fn write_without_text(
    f: &mut std::fmt::Formatter<'_>,
    by_reason: &BTreeMap<String, u64>,
) -> std::fmt::Result {
    let total: u64 = by_reason.values().sum();
    if total == 0 {
        return Ok(());
    }
    let name = |r: &str| match r {
        "not-ready" => "not ready".to_string(),
        "transcript-pending" => "transcript pending".to_string(),
        "permission" => "no permission".to_string(),
        "none" => "no recorded session".to_string(),
        other => other.to_string(),
    };
    let parts: Vec<String> = by_reason
        .iter()
        .map(|(r, n)| format!("{}: {n}", name(r)))
        .collect();
    write!(
        f,
        "{total} conversations without text ({}; a fetch that lists them again asks again, and every fetch asks for pending transcripts until --transcript-grace has passed); ",
        parts.join(", ")
    )
}

/// Notes what an analytics manifest says of its conversations' text: `None` once a present
/// snapshot gives a conversation text (the current view keeps that copy), else the reason of
/// its newest `missing:<reason>` entry.
fn note_texts(manifest: &serde_json::Value, texts: &mut HashMap<String, Option<String>>) {
    let entries = manifest.get("conversations").and_then(|c| c.as_array());
    for c in entries.into_iter().flatten() {
        let (Some(id), Some(text)) = (
            c.get("conversationId").and_then(|v| v.as_str()),
            c.get("text").and_then(|v| v.as_str()),
        ) else {
            continue;
        };
        let entry = texts.entry(id.to_string()).or_insert(Some(String::new()));
        match text.strip_prefix("missing:") {
            Some(reason) if entry.is_some() => *entry = Some(reason.to_string()),
            Some(_) => {}
            None => *entry = None,
        }
    }
}

/// Errors of `convlake verify`.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("verify found {0} problems in the lake (listed above)")]
    Problems(usize),
}

/// The verdict on one file.
enum Verdict {
    Sound {
        rows: u64,
    },
    /// Damaged: quarantine it.
    Damaged(String),
    /// Wrong but not to be moved (e.g. events of a newer convlake).
    Suspect(String),
}

/// Is `s` a lowercase blake3 hex digest?
fn is_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `prefix/<h0h1>/<hash>.<ext>` → the hash, when the name has that shape.
fn hashed_name<'a>(path: &'a str, prefix: &str, ext: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(prefix)?.strip_prefix('/')?;
    let (dir, file) = rest.split_once('/')?;
    let hash = file.strip_suffix(ext)?;
    (is_hash(hash) && dir.len() == 2 && hash.starts_with(dir)).then_some(hash)
}

/// Decodes every row group of a Parquet file.
fn read_parquet(bytes: Bytes) -> Result<Vec<RecordBatch>, String> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(|e| format!("not a readable Parquet file: {e}"))?;
    let expected: i64 = builder.metadata().file_metadata().num_rows();
    let groups = builder.metadata().num_row_groups();
    let reader = builder
        .with_batch_size(8192)
        .build()
        .map_err(|e| format!("cannot read its row groups: {e}"))?;
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("a row group does not decode: {e}"))?;
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    if rows as i64 != expected {
        return Err(format!(
            "{rows} rows decoded from {groups} row groups, the footer says {expected}"
        ));
    }
    Ok(batches)
}

/// Checks that `batches` carry `schema`'s columns with their types, and that the string column
/// `name` holds only `value`.
fn check_columns(
    batches: &[RecordBatch],
    schema: &arrow::datatypes::Schema,
    name: &str,
    value: &str,
) -> Result<(), String> {
    for b in batches {
        for field in schema.fields() {
            let Some(col) = b.column_by_name(field.name()) else {
                // A nullable column added since the file was written reads as NULL.
                if field.is_nullable()
                    && (crate::lake::schema::RAW_ADDED_COLUMNS.contains(&field.name().as_str())
                        || crate::lake::schema::MENTIONS_ADDED_COLUMNS
                            .contains(&field.name().as_str()))
                {
                    continue;
                }
                return Err(format!("column {} is missing", field.name()));
            };
            if col.data_type() != field.data_type() {
                return Err(format!(
                    "column {} is {}, expected {}",
                    field.name(),
                    col.data_type(),
                    field.data_type()
                ));
            }
        }
        let col = b
            .column_by_name(name)
            .and_then(|c| c.as_any().downcast_ref::<StringArray>())
            .ok_or_else(|| format!("column {name} is missing"))?;
        if let Some(i) = (0..col.len()).find(|&i| col.is_null(i) || col.value(i) != value) {
            let found = if col.is_null(i) { "null" } else { col.value(i) };
            return Err(format!(
                "row {i}: {name} is {found:?}, but the file name says {value:?}"
            ));
        }
    }
    Ok(())
}

/// What kind of file a lake path is, and how to check it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Event,
    Raw,
    Mentions,
    Topics,
    Aggregate,
    Body,
}

impl Kind {
    /// Files written once and never rewritten: their bytes go into the checksum record.
    fn immutable(self) -> bool {
        !matches!(self, Kind::Aggregate)
    }
}

fn check_event_segment(bytes: &[u8], events: &mut Vec<Event>) -> Verdict {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Verdict::Damaged("not UTF-8 text".into());
    };
    let mut n = 0;
    for (i, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        match serde_json::from_str::<Event>(line) {
            Ok(e) => {
                events.push(e);
                n += 1;
            }
            Err(e) => {
                let json: Option<serde_json::Value> = serde_json::from_str(line).ok();
                return match json.as_ref().and_then(|v| v.get("kind")?.as_str()) {
                    Some(kind) => Verdict::Suspect(format!(
                        "line {}: an event of kind {kind:?} that this convlake does not know ({e}); written by a newer version? Left in place",
                        i + 1
                    )),
                    None => Verdict::Damaged(format!("line {}: not an event: {e}", i + 1)),
                };
            }
        }
    }
    if !text.is_empty() && !text.ends_with('\n') {
        return Verdict::Damaged("the last line is cut off".into());
    }
    Verdict::Sound { rows: n }
}

fn check_file(kind: Kind, path: &str, bytes: Bytes) -> Verdict {
    let verdict = match kind {
        Kind::Event => unreachable!("event segments are checked in order by check_event_segment"),
        Kind::Body => match hashed_name(path, "bodies", ".json")
            .or_else(|| hashed_name(path, "bodies", ".json.zst"))
        {
            Some(h) if content_hash(&bytes) == h => Ok(0),
            Some(_) => Err("its content does not hash to its name".to_string()),
            None => Err("the name is not bodies/<h0h1>/<blake3>.json(.zst)".to_string()),
        },
        Kind::Raw => match hashed_name(path, "raw", ".parquet") {
            None => Err("the name is not raw/<h0h1>/<blake3>.parquet".to_string()),
            Some(h) => read_parquet(bytes).and_then(|b| {
                check_columns(&b, &raw_schema(), "snapshot", h)?;
                Ok(b.iter().map(|b| b.num_rows() as u64).sum())
            }),
        },
        Kind::Mentions => {
            let parts: Option<(&str, &str)> = path
                .strip_prefix("mentions/dict=")
                .and_then(|r| r.split_once('/'))
                .and_then(|(v, f)| Some((v, f.strip_suffix(".parquet")?)));
            match parts {
                None => Err("the name is not mentions/dict=<version>/<snapshot>.parquet".into()),
                Some((version, snap)) => read_parquet(bytes).and_then(|b| {
                    check_columns(&b, &mentions_schema(), "snapshot", snap)?;
                    check_columns(&b, &mentions_schema(), "dictionary_version", version)?;
                    Ok(b.iter().map(|b| b.num_rows() as u64).sum())
                }),
            }
        }
        Kind::Topics => {
            let parts: Option<&str> = path
                .strip_prefix("topics/dict=")
                .and_then(|r| r.split_once('/'))
                .and_then(|(_, f)| f.strip_suffix(".parquet"));
            match parts {
                None => Err("the name is not topics/dict=<version>/<snapshot>.parquet".into()),
                Some(snap) => read_parquet(bytes).and_then(|b| {
                    check_columns(&b, &super::schema::topics_schema(), "snapshot", snap)?;
                    Ok(b.iter().map(|b| b.num_rows() as u64).sum())
                }),
            }
        }
        Kind::Aggregate => read_parquet(bytes).map(|b| b.iter().map(|b| b.num_rows() as u64).sum()),
    };
    match verdict {
        Ok(rows) => Verdict::Sound { rows },
        Err(reason) => Verdict::Damaged(reason),
    }
}

/// Whether the mentions file at `path` has the columns added with sentiment (its footer says).
async fn rows_have_sentiment(lake: &Lake, path: &str) -> bool {
    let Ok(bytes) = lake.get(path).await else {
        return false;
    };
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes).is_ok_and(|b| {
        super::schema::MENTIONS_ADDED_COLUMNS
            .iter()
            .all(|c| b.schema().column_with_name(c).is_some())
    })
}

/// Moves a file to `quarantine/<path>` (or `quarantine/<path>.<n>` when taken); returns where.
async fn quarantine(lake: &Lake, path: &str) -> Result<String, LakeError> {
    for n in 0..1000 {
        let to = match n {
            0 => format!("{QUARANTINE_DIR}/{path}"),
            n => format!("{QUARANTINE_DIR}/{path}.{n}"),
        };
        if lake.move_if_absent(path, &to).await? {
            return Ok(to);
        }
    }
    Err(LakeError::Open {
        location: format!("{QUARANTINE_DIR}/{path}"),
        reason: "1000 quarantined copies of this file already exist".into(),
    })
}

/// Every file of the lake, including staging files, with the ones verify looks at classified.
async fn inventory(lake: &Lake) -> Result<(Vec<(Kind, String)>, u64), LakeError> {
    let mut files = Vec::new();
    let mut temp = 0;
    for (prefix, kind) in [
        ("events", Kind::Event),
        ("raw", Kind::Raw),
        ("mentions", Kind::Mentions),
        ("topics", Kind::Topics),
        ("aggregates", Kind::Aggregate),
        ("bodies", Kind::Body),
    ] {
        let all: Vec<object_store::ObjectMeta> = {
            use futures::TryStreamExt;
            lake.store()
                .list(Some(&Path::from(prefix)))
                .try_collect()
                .await
                .map_err(|cause| LakeError::List {
                    prefix: prefix.to_string(),
                    location: lake.location(),
                    cause,
                })?
        };
        for m in all {
            let p = m.location.to_string();
            if p.contains('#') {
                temp += 1;
                continue;
            }
            let keep = match kind {
                Kind::Event => p.ends_with(".jsonl"),
                Kind::Body => p.ends_with(".json") || p.ends_with(".json.zst"),
                _ => p.ends_with(".parquet"),
            };
            if keep {
                files.push((kind, p));
            }
        }
    }
    // object_store's local listing hides its own staging files (`x.parquet#1`), which a
    // writer killed mid-put leaves behind: count them from the directory itself.
    if let Some(root) = lake.local_dir() {
        temp = 0;
        let mut dirs = vec![root.to_path_buf()];
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                match e.file_type() {
                    Ok(t) if t.is_dir() => dirs.push(e.path()),
                    Ok(_) if e.file_name().to_string_lossy().contains('#') => temp += 1,
                    _ => {}
                }
            }
        }
    }
    files.sort_by(|a, b| a.1.cmp(&b.1));
    Ok((files, temp))
}

/// Checks the whole lake; with `quarantine`, moves damaged files to `quarantine/`.
pub async fn verify(lake: &Lake, quarantine_damaged: bool) -> Result<VerifyReport, LakeError> {
    let mut report = VerifyReport {
        lake: lake.location(),
        ..Default::default()
    };
    let record: BTreeMap<String, String> = match lake.exists(CHECKSUMS_PATH).await? {
        true => serde_json::from_slice(&lake.get(CHECKSUMS_PATH).await?).unwrap_or_else(|e| {
            report.problems.push(Problem {
                path: CHECKSUMS_PATH.into(),
                reason: format!(
                    "the checksum record is damaged ({e}); it is written again from this verify"
                ),
                quarantined_to: None,
            });
            BTreeMap::new()
        }),
        false => BTreeMap::new(),
    };
    let (files, temp) = inventory(lake).await?;
    report.leftover_temp_files = temp;
    let mut new_record = BTreeMap::new();
    let mut damaged: Vec<(String, String)> = Vec::new();

    // Event segments first, in order: the other checks need the events.
    let mut events = Vec::new();
    let mut segments = Vec::new();
    for (_, path) in files.iter().filter(|(k, _)| *k == Kind::Event) {
        let bytes = lake.get(path).await?;
        let hash = content_hash(&bytes);
        report.event_segments += 1;
        segments.push((path, hash, check_event_segment(&bytes, &mut events)));
    }
    // The one rewrite of a segment: an erasure replaced the ids it named with their hashes.
    let scrubbed: HashSet<&str> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Erased { segments, .. } => Some(segments.iter().map(String::as_str)),
            _ => None,
        })
        .flatten()
        .collect();
    let scrubbed: HashSet<String> = scrubbed.into_iter().map(String::from).collect();
    super::events::apply_erasures(&mut events);
    for (path, hash, verdict) in segments {
        match verdict {
            Verdict::Sound { .. } => {
                if let Some(old) = record
                    .get(path)
                    .filter(|old| **old != hash && !scrubbed.contains(path))
                {
                    report.problems.push(Problem {
                        path: path.clone(),
                        reason: format!("its bytes changed since the last verify (blake3 {old}, now {hash}); event segments are never rewritten. Left in place"),
                        quarantined_to: None,
                    });
                } else {
                    report.checksummed += u64::from(record.contains_key(path));
                    new_record.insert(path.clone(), hash);
                }
            }
            Verdict::Damaged(reason) => damaged.push((path.clone(), reason)),
            Verdict::Suspect(reason) => report.problems.push(Problem {
                path: path.clone(),
                reason,
                quarantined_to: None,
            }),
        }
    }
    report.events = events.len() as u64;

    // Everything else, a few files at once.
    let results: Vec<Result<(Kind, String, String, Verdict), LakeError>> =
        futures::stream::iter(files.iter().filter(|(k, _)| *k != Kind::Event).cloned())
            .map(|(kind, path)| async move {
                let bytes = lake.get(&path).await?;
                let hash = content_hash(&bytes);
                let p = path.clone();
                let verdict = tokio::task::spawn_blocking(move || check_file(kind, &p, bytes))
                    .await
                    .unwrap_or_else(|e| Verdict::Damaged(format!("checking it failed: {e}")));
                Ok((kind, path, hash, verdict))
            })
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
    let mut present: HashSet<String> = HashSet::new();
    let mut results = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    results.sort_by(|a, b| a.1.cmp(&b.1));
    for (kind, path, hash, verdict) in results {
        match kind {
            Kind::Raw => report.raw_snapshots += 1,
            Kind::Mentions => report.mentions_files += 1,
            Kind::Topics => report.topics_files += 1,
            Kind::Aggregate => report.aggregate_files += 1,
            Kind::Body => report.bodies += 1,
            Kind::Event => {}
        }
        match verdict {
            Verdict::Sound { rows } => {
                let changed = kind.immutable() && record.get(&path).is_some_and(|old| *old != hash);
                // The one rewrite of a mentions file: a lake from before sentiment and topics
                // has each snapshot extracted again once, and the new file has the columns.
                if changed && kind == Kind::Mentions && rows_have_sentiment(lake, &path).await {
                    report.reextracted += 1;
                    report.checksummed += 1;
                    new_record.insert(path.clone(), hash);
                    present.insert(path);
                    continue;
                }
                if changed {
                    damaged.push((
                        path.clone(),
                        format!(
                            "its bytes changed since the last verify found it sound (blake3 {}, now {hash})",
                            record[&path]
                        ),
                    ));
                    continue;
                }
                if kind == Kind::Raw {
                    report.raw_rows += rows;
                }
                if kind.immutable() {
                    report.checksummed += u64::from(record.contains_key(&path));
                    new_record.insert(path.clone(), hash);
                }
                present.insert(path);
            }
            Verdict::Damaged(reason) => damaged.push((path, reason)),
            Verdict::Suspect(reason) => report.problems.push(Problem {
                path,
                reason,
                quarantined_to: None,
            }),
        }
    }

    // Every file an event refers to must be there (and sound).
    let mut referenced = HashSet::new();
    let damaged_paths: HashSet<&str> = damaged.iter().map(|(p, _)| p.as_str()).collect();
    let mut texts: HashMap<String, Option<String>> = HashMap::new();
    // Quarantined snapshots a later fetch staged again are no longer gaps.
    let retired = super::events::retired_snapshots(&events);
    for e in &events {
        let EventKind::Snapshot {
            snapshot,
            path,
            source,
            ..
        } = &e.kind
        else {
            continue;
        };
        if retired.contains(snapshot) || !referenced.insert(path.clone()) {
            continue;
        }
        if !present.contains(path) && !damaged_paths.contains(path.as_str()) {
            report.problems.push(Problem {
                path: path.clone(),
                reason: format!(
                    "missing: event {}.{} records snapshot {snapshot} here",
                    e.seq, e.index
                ),
                quarantined_to: None,
            });
        }
        if source == "analytics" {
            let manifest = super::layout::body_path(snapshot);
            if !present.contains(&manifest) && !damaged_paths.contains(manifest.as_str()) {
                report.problems.push(Problem {
                    path: manifest,
                    reason: format!(
                        "missing: the manifest of snapshot {snapshot} (event {}.{})",
                        e.seq, e.index
                    ),
                    quarantined_to: None,
                });
            } else if present.contains(&manifest) {
                // The batch's records and texts, which the manifest names by hash.
                let named: serde_json::Value =
                    serde_json::from_slice(&lake.get(&manifest).await?).unwrap_or_default();
                if present.contains(path) {
                    note_texts(&named, &mut texts);
                }
                for (what, ext) in [("records", "json"), ("texts", "json.zst")] {
                    let Some(hash) = named.get(what).and_then(|h| h.as_str()) else {
                        continue;
                    };
                    let body = match ext {
                        "json" => super::layout::body_path(hash),
                        _ => super::layout::texts_path(hash),
                    };
                    if !present.contains(&body) && !damaged_paths.contains(body.as_str()) {
                        report.problems.push(Problem {
                            path: body,
                            reason: format!(
                                "missing: the {what} of snapshot {snapshot}, named in its manifest"
                            ),
                            quarantined_to: None,
                        });
                    }
                }
            }
        }
    }
    // The generation in force of each dictionary version: both files there and equal to the
    // hashes its `aggregated` event names (a damaged one was reported above; the next
    // `aggregate` publishes a whole one).
    let versions: std::collections::BTreeSet<&str> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Aggregated {
                dictionary_version, ..
            } => Some(dictionary_version.as_str()),
            _ => None,
        })
        .collect();
    for version in versions {
        let Some(g) = super::aggregates::current_generation(&events, version) else {
            continue;
        };
        for table in super::aggregates::Table::ALL {
            let Some(path) = g.path(table) else {
                continue;
            };
            if damaged_paths.contains(path) {
                continue;
            }
            if let Err(e) = g.read_table(lake, table).await {
                report.problems.push(Problem {
                    path: path.to_string(),
                    reason: format!("the aggregates in force (event {}): {e}", g.seq),
                    quarantined_to: None,
                });
            }
        }
    }
    for reason in texts.into_values().flatten() {
        *report.without_text.entry(reason).or_default() += 1;
    }
    report.unrecorded = present
        .iter()
        .filter(|p| p.starts_with("raw/") && !referenced.contains(*p))
        .count() as u64;

    for (path, reason) in damaged {
        let quarantined_to = if quarantine_damaged {
            Some(quarantine(lake, &path).await?)
        } else {
            None
        };
        report.problems.push(Problem {
            path,
            reason,
            quarantined_to,
        });
    }
    report.problems.sort_by(|a, b| a.path.cmp(&b.path));

    // Only sound files are recorded: a file written again after a quarantine starts afresh. A dry
    // run changes nothing in the lake.
    if !quarantine_damaged {
        return Ok(report);
    }
    let body = serde_json::to_vec_pretty(&new_record).map_err(|e| LakeError::Event {
        path: CHECKSUMS_PATH.into(),
        reason: e.to_string(),
    })?;
    if let Err(e) = lake.put(CHECKSUMS_PATH, Bytes::from(body)).await {
        report.record_error = Some(e.to_string());
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_names() {
        let h = "ab".to_string() + &"0".repeat(62);
        assert_eq!(
            hashed_name(&format!("raw/ab/{h}.parquet"), "raw", ".parquet"),
            Some(h.as_str())
        );
        assert_eq!(
            hashed_name(&format!("raw/cd/{h}.parquet"), "raw", ".parquet"),
            None
        );
        assert_eq!(hashed_name("raw/ab/x.parquet", "raw", ".parquet"), None);
    }

    #[tokio::test]
    async fn a_damaged_body_is_quarantined_and_a_sound_one_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open_local(dir.path()).unwrap();
        let good = Bytes::from("{\"a\":1}");
        let h = content_hash(&good);
        let good_path = format!("bodies/{}/{h}.json", &h[..2]);
        lake.put(&good_path, good).await.unwrap();
        let bad_path = format!("bodies/00/{}.json", "0".repeat(64));
        lake.put(&bad_path, Bytes::from("x")).await.unwrap();
        let r = verify(&lake, true).await.unwrap();
        assert_eq!(r.problems.len(), 1, "{r}");
        assert_eq!(r.problems[0].path, bad_path);
        assert!(!lake.exists(&bad_path).await.unwrap());
        assert!(lake
            .exists(&format!("{QUARANTINE_DIR}/{bad_path}"))
            .await
            .unwrap());
        let again = verify(&lake, true).await.unwrap();
        assert!(again.is_clean(), "{again}");
        assert_eq!(again.checksummed, 1);
        // Damage that keeps the name shape: the record catches it too.
        lake.put(&good_path, Bytes::from("{\"a\":2}"))
            .await
            .unwrap();
        let third = verify(&lake, false).await.unwrap();
        assert_eq!(third.problems.len(), 1, "{third}");
        assert!(
            lake.exists(&good_path).await.unwrap(),
            "dry run moves nothing"
        );
    }
}
