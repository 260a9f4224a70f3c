//! The extract stage: every raw snapshot becomes `mentions/dict=<version>/<snapshot>.parquet`,
//! and its voice conversations' Speech and Text Analytics topics (from the stored documents)
//! `topics/dict=<version>/<snapshot>.parquet` (written first; no rows when it has none).
//!
//! Invariants: same snapshot + same dictionary ⇒ same bytes; a snapshot already extracted for
//! this dictionary version is skipped; an output file is written whole, so a stopped run leaves
//! only complete files and a re-run does the rest.
//!
//! Sharding (`--shard i/n`): shard `i` takes the snapshots whose hash, read as a number, is `i`
//! modulo `n`. The shares are disjoint and together cover every snapshot, and each output is a
//! pure function of (snapshot, dictionary), so n workers write exactly the files one worker
//! would; `aggregate` reads the `mentions/` files, not the workers' events, so it sees every
//! shard's output, and a shard run again skips what it already wrote.

pub mod candidates;
pub mod dictionary;
pub mod eval;
pub mod lexicon;
pub mod matcher;
mod normalize;
mod stored;

use std::sync::Arc;

use arrow::array::{
    Array, Date32Array, Float64Builder, Int32Array, Int32Builder, RecordBatch, StringArray,
    StringBuilder,
};
use arrow::compute::take;
use futures::{StreamExt, TryStreamExt};

use crate::lake::dictionaries::{current_dictionary, dictionary_copy_path};
use crate::lake::events::{snapshots_in_order, EventKind};
use crate::lake::layout::{topics_dir, topics_path};
use crate::lake::{mentions_dir, mentions_path, schema, snapshot_path, Lake, LakeError};
pub use dictionary::{Dictionary, DictionaryError};
use matcher::{Found, Matcher, Scratch};

/// Errors of the extract stage.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(transparent)]
    Dictionary(#[from] DictionaryError),
    #[error("snapshot {path}: {reason}. Run `convlake verify` to check the lake")]
    Snapshot { path: String, reason: String },
}

/// One worker's share of the snapshots: `index` of `count` (0-based, `0/3`, `1/3`, `2/3`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// The whole lake: one worker.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Whether this shard takes the snapshot with this (hex blake3) hash: the first 16 hex
    /// digits as a number, modulo the shard count. Blake3 spreads snapshots evenly.
    pub fn takes(&self, snapshot: &str) -> bool {
        if self.count <= 1 {
            return true;
        }
        let head = &snapshot[..snapshot.len().min(16)];
        // Snapshot names are blake3 hex (verify checks them); anything else goes to shard 0
        // so that no snapshot is left out.
        let n = u64::from_str_radix(head, 16).unwrap_or(0);
        n % u64::from(self.count) == u64::from(self.index)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// Parses `i/n` with `0 <= i < n`, e.g. `0/3`; the message says what is wrong.
    fn from_str(s: &str) -> Result<Shard, String> {
        let usage = "give the shard as INDEX/COUNT with 0 <= INDEX < COUNT, e.g. --shard 0/3, 1/3 and 2/3 for three workers (a Kubernetes indexed Job: --shard $JOB_COMPLETION_INDEX/3)";
        let (i, n) = s
            .trim()
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not a shard: {usage}"))?;
        let index: u32 = i
            .trim()
            .parse()
            .map_err(|_| format!("{s:?}: the shard index {i:?} is not a whole number; {usage}"))?;
        let count: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("{s:?}: the shard count {n:?} is not a whole number; {usage}"))?;
        if count == 0 {
            return Err(format!(
                "{s:?}: the shard count must be at least 1; {usage}"
            ));
        }
        if index >= count {
            return Err(format!(
                "{s:?}: shard indexes are 0-based, so with {count} shards the index is 0 to {}; {usage}",
                count - 1
            ));
        }
        Ok(Shard { index, count })
    }
}

/// What an extract run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtractSummary {
    pub dictionary_version: String,
    pub snapshots: u64,
    pub extracted: u64,
    pub skipped: u64,
    pub utterances: u64,
    pub text_bytes: u64,
    pub mentions: u64,
    /// Recorded snapshots whose file is absent (quarantined): skipped, nothing written.
    pub missing: Vec<String>,
}

struct SnapshotResult {
    utterances: u64,
    text_bytes: u64,
    mentions: u64,
    parquet: bytes::Bytes,
    /// The snapshot's topics file (`topics_schema`; no rows when it has none).
    topics: bytes::Bytes,
}

/// Rows `idx` of column `name` of `batch`.
fn pick_rows(
    batch: &RecordBatch,
    name: &str,
    idx: &arrow::array::UInt32Array,
) -> Result<Arc<dyn Array>, String> {
    let col = batch
        .column_by_name(name)
        .ok_or_else(|| format!("column {name} is missing"))?;
    take(col.as_ref(), idx, None).map_err(|e| e.to_string())
}

/// Where `words` are in `text`, in characters `[start, end)`: exactly, else ignoring case (STA
/// quotes a topic's words from a phrase's plain `text`, lower case, while the staged utterance
/// is its capitalised `decoratedText`); `None` when they are not in it.
fn find_words(text: &str, words: &str) -> Option<(usize, usize)> {
    if let Some(at) = text.find(words) {
        let start = text[..at].chars().count();
        return Some((start, start + words.chars().count()));
    }
    let fold = |c: char| c.to_lowercase();
    let text: Vec<char> = text.chars().collect();
    let words: Vec<char> = words.chars().collect();
    if words.is_empty() || words.len() > text.len() {
        return None;
    }
    (0..=text.len() - words.len())
        .find(|&i| {
            text[i..i + words.len()]
                .iter()
                .zip(&words)
                .all(|(a, b)| fold(*a).eq(fold(*b)))
        })
        .map(|i| (i, i + words.len()))
}

/// The STA topics of one snapshot's voice utterances, gathered row by row.
#[derive(Default)]
struct TopicRows {
    rows: Vec<u32>,
    topic: StringBuilder,
    start: Int32Builder,
    end: Int32Builder,
}

impl TopicRows {
    /// Adds the topics of row `row`, whose text is `text`.
    fn push(
        &mut self,
        row: usize,
        text: &str,
        topics: &[crate::genesys::transcripts::PhraseTopic],
    ) {
        for t in topics {
            self.rows.push(row as u32);
            self.topic.append_value(&t.name);
            // Character offsets of the quoted words in the text, when they are part of it.
            let span = t.phrase.as_deref().and_then(|p| find_words(text, p));
            match span.and_then(|(a, b)| Some((i32::try_from(a).ok()?, i32::try_from(b).ok()?))) {
                Some((a, b)) => {
                    self.start.append_value(a);
                    self.end.append_value(b);
                }
                None => {
                    self.start.append_null();
                    self.end.append_null();
                }
            }
        }
    }

    /// The batch of `batch`'s rows gathered so far (and clears them for the next batch).
    fn finish(&mut self, batch: &RecordBatch) -> Result<RecordBatch, String> {
        let idx = arrow::array::UInt32Array::from(std::mem::take(&mut self.rows));
        let pick = |name: &str| pick_rows(batch, name, &idx);
        RecordBatch::try_new(
            schema::topics_schema(),
            vec![
                pick("conversation_id")?,
                pick("conversation_date")?,
                pick("interaction_type")?,
                pick("participant")?,
                pick("utterance_index")?,
                Arc::new(self.topic.finish()),
                Arc::new(self.start.finish()),
                Arc::new(self.end.finish()),
                pick("snapshot")?,
            ],
        )
        .map_err(|e| e.to_string())
    }
}

fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T, String> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| format!("column {name} is missing or has the wrong type"))
}

/// The raw columns extract reads.
const EXTRACT_COLUMNS: [&str; 7] = [
    "conversation_id",
    "conversation_date",
    "interaction_type",
    "participant",
    "utterance_index",
    "text",
    "snapshot",
];

/// Finds the mentions in one snapshot's rows (pure: same input, same output), each with its
/// sentiment: its STA phrase's (`genesys`) where the stored transcript scored it, else the
/// lexicon's for an English sentence (`lexicon`), else none.
fn mentions_of(
    batches: &[RecordBatch],
    matcher: &Matcher,
    version: &str,
    voice: &mut stored::VoiceAnalytics,
) -> Result<SnapshotResult, String> {
    let mut scratch = Scratch::default();
    let mut found: Vec<Found> = Vec::new();
    let mut rows: Vec<u32> = Vec::new();
    let mut product = StringBuilder::new();
    let mut matched = StringBuilder::new();
    let mut start = Int32Builder::new();
    let mut end = Int32Builder::new();
    let mut sentiment = Float64Builder::new();
    let mut source = StringBuilder::new();
    let mut kind = StringBuilder::new();
    let mut scorer = lexicon::Scorer::default();
    let mut topics = TopicRows::default();
    let mut topic_batches = Vec::new();
    let mut out = Vec::new();
    let (mut utterances, mut text_bytes, mut mentions) = (0u64, 0u64, 0u64);
    for batch in batches {
        let text = column::<StringArray>(batch, "text")?;
        let conversation = column::<StringArray>(batch, "conversation_id")?;
        let index = column::<Int32Array>(batch, "utterance_index")?;
        rows.clear();
        for i in 0..batch.num_rows() {
            if text.is_null(i) {
                continue;
            }
            let t = text.value(i);
            utterances += 1;
            text_bytes += t.len() as u64;
            matcher.find(t, &mut scratch, &mut found);
            let conv = conversation.value(i);
            let wants_topics = voice.has_topics(conv);
            if found.is_empty() && !wants_topics {
                continue;
            }
            let analytics = voice.of(conv, index.value(i), t);
            let sta = analytics.and_then(|a| a.sentiment);
            if let Some(a) = analytics.filter(|_| wants_topics) {
                topics.push(i, t, &a.topics);
            }
            for f in &found {
                rows.push(i as u32);
                product.append_value(&matcher.products()[f.product as usize]);
                kind.append_value(f.kind.as_str());
                matched.append_value(&t[f.start_byte..f.end_byte]);
                start.append_value(f.start_char as i32);
                end.append_value(f.end_char as i32);
                match sta {
                    Some(s) => {
                        sentiment.append_value(s);
                        source.append_value(lexicon::SOURCE_GENESYS);
                    }
                    None => match scorer.score_mention(t, f.start_byte, f.end_byte) {
                        Some(s) => {
                            sentiment.append_value(s);
                            source.append_value(lexicon::SOURCE_LEXICON);
                        }
                        None => {
                            sentiment.append_null();
                            source.append_null();
                        }
                    },
                }
            }
        }
        mentions += rows.len() as u64;
        let idx = arrow::array::UInt32Array::from(rows.clone());
        let pick = |name: &str| pick_rows(batch, name, &idx);
        // Type checks up front give a clear message instead of a schema error.
        column::<Date32Array>(batch, "conversation_date")?;
        let n = rows.len();
        let b = RecordBatch::try_new(
            schema::mentions_schema(),
            vec![
                pick("conversation_id")?,
                pick("conversation_date")?,
                pick("interaction_type")?,
                pick("participant")?,
                pick("utterance_index")?,
                Arc::new(product.finish()),
                Arc::new(matched.finish()),
                Arc::new(start.finish()),
                Arc::new(end.finish()),
                Arc::new(StringArray::from(vec![version; n])),
                pick("snapshot")?,
                Arc::new(sentiment.finish()),
                Arc::new(source.finish()),
                Arc::new(kind.finish()),
            ],
        )
        .map_err(|e| e.to_string())?;
        out.push(b);
        topic_batches.push(topics.finish(batch)?);
    }
    let parquet = schema::to_parquet(&schema::mentions_schema(), &out)?;
    let topics = schema::to_parquet(&schema::topics_schema(), &topic_batches)?;
    Ok(SnapshotResult {
        utterances,
        text_bytes,
        mentions,
        parquet,
        topics,
    })
}

/// Extracts every recorded snapshot not yet extracted with this dictionary version.
/// `workers` snapshots are processed at once (CPU-bound work runs on blocking threads).
pub async fn extract(
    lake: &Lake,
    dict: &Dictionary,
    workers: usize,
) -> Result<ExtractSummary, ExtractError> {
    extract_shard(lake, dict, workers, Shard::ALL).await
}

/// [`extract`] for one shard's share of the snapshots; `snapshots` and `skipped` in the summary
/// count that share only.
pub async fn extract_shard(
    lake: &Lake,
    dict: &Dictionary,
    workers: usize,
    shard: Shard,
) -> Result<ExtractSummary, ExtractError> {
    extract_run(lake, dict, workers, shard, true).await
}

/// [`extract`] that writes the files only: with `record` false no `extracted` event is
/// appended, so the lake's current dictionary stays what it was (an erasure extracts the
/// snapshots it wrote with every version the lake holds, not only the current one).
pub async fn extract_files(
    lake: &Lake,
    dict: &Dictionary,
    workers: usize,
    record: bool,
) -> Result<ExtractSummary, ExtractError> {
    extract_run(lake, dict, workers, Shard::ALL, record).await
}

async fn extract_run(
    lake: &Lake,
    dict: &Dictionary,
    workers: usize,
    shard: Shard,
    record: bool,
) -> Result<ExtractSummary, ExtractError> {
    let events = lake.events().read_all().await?;
    // The analytics source's snapshots have their texts stored next to them (`bodies/`).
    let analytics: Arc<std::collections::HashSet<String>> = Arc::new(
        events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Snapshot {
                    snapshot, source, ..
                } if source == crate::genesys::fetch::analytics::SOURCE => Some(snapshot.clone()),
                _ => None,
            })
            .collect(),
    );
    let snapshots: Vec<(String, u64)> = snapshots_in_order(&events)
        .into_iter()
        .filter(|(snap, _)| shard.takes(snap))
        .collect();
    let matcher = Arc::new(Matcher::new(dict));
    let version = dict.version.clone();
    let mut summary = ExtractSummary {
        dictionary_version: version.clone(),
        snapshots: snapshots.len() as u64,
        ..Default::default()
    };
    // One listing instead of a request per snapshot (which an object store makes slow). A
    // snapshot is done when both its files are there: its topics file is written first, so a
    // mentions file without one was written by a convlake before topics and sentiment (#20),
    // and that snapshot is extracted again, once.
    let done = lake.list_paths(&mentions_dir(&version)).await?;
    let topics_done = lake.list_paths(&topics_dir(&version)).await?;
    // A recorded snapshot whose file is absent (quarantined by `verify`) is a known gap: it is
    // skipped and named, and the next fetch stages its conversations again.
    let present = lake.list_paths("raw").await?;
    let mut todo = Vec::new();
    for (snap, _) in &snapshots {
        if done.contains(&mentions_path(&version, snap))
            && topics_done.contains(&topics_path(&version, snap))
        {
            summary.skipped += 1;
        } else if !present.contains(&snapshot_path(snap)) {
            summary.missing.push(snap.clone());
        } else {
            todo.push(snap.clone());
        }
    }
    // Only per-snapshot counts are kept: memory does not grow with the lake.
    let results: Vec<(u64, u64, u64)> = futures::stream::iter(todo)
        .map(|snap| {
            let lake = lake.clone();
            let matcher = matcher.clone();
            let version = version.clone();
            let analytics = analytics.clone();
            async move {
                let raw_path = snapshot_path(&snap);
                let bytes = lake.get(&raw_path).await?;
                let bad = |reason: String| ExtractError::Snapshot {
                    path: raw_path.clone(),
                    reason,
                };
                let voice = match analytics.contains(&snap) {
                    true => stored::load(&lake, &snap)
                        .await
                        .map_err(|e| bad(format!("its stored texts cannot be read ({e})")))?,
                    false => None,
                };
                let v = version.clone();
                let res = tokio::task::spawn_blocking(move || {
                    let mut voice = voice.unwrap_or_default();
                    // Every column but communication_id and start_ms, which mentions lack.
                    let batches = schema::from_parquet_columns(bytes, &EXTRACT_COLUMNS)?;
                    mentions_of(&batches, &matcher, &v, &mut voice)
                })
                .await
                .map_err(|e| bad(e.to_string()))?
                .map_err(bad)?;
                lake.put(&topics_path(&version, &snap), res.topics).await?;
                lake.put(&mentions_path(&version, &snap), res.parquet)
                    .await?;
                Ok::<_, ExtractError>((res.utterances, res.text_bytes, res.mentions))
            }
        })
        .buffer_unordered(workers.max(1))
        .try_collect()
        .await?;
    for (utterances, text_bytes, mentions) in results {
        summary.extracted += 1;
        summary.utterances += utterances;
        summary.text_bytes += text_bytes;
        summary.mentions += mentions;
    }
    // The lake's current dictionary is the one the latest extraction used: recorded when this
    // run extracted something or changed which dictionary is current, with a copy of its
    // normalized content so later stages (and `dictionary show`) need no file.
    let current = current_dictionary(&events).map(|c| c.version);
    if record && (summary.extracted > 0 || current.as_deref() != Some(version.as_str())) {
        let copy = dictionary_copy_path(&version);
        lake.put_if_absent(&copy, bytes::Bytes::from(dict.to_toml()))
            .await?;
        lake.events()
            .append(vec![EventKind::Extracted {
                dictionary_version: version,
                snapshots: summary.extracted,
                mentions: summary.mentions,
                shard: (shard.count > 1).then(|| shard.to_string()),
                dictionary_source: Some(dict.origin.clone()),
                dictionary_copy: Some(copy),
                missing_snapshots: summary.missing.len() as u64,
            }])
            .await?;
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_words_are_found_exactly_or_ignoring_case() {
        assert_eq!(
            find_words("My router keeps dropping.", "keeps"),
            Some((10, 15))
        );
        assert_eq!(
            find_words(
                "The delivery was late again.",
                "the delivery was late again"
            ),
            Some((0, 27))
        );
        assert_eq!(find_words("Ünïcode Wörds here", "wörds"), Some((8, 13)));
        assert_eq!(find_words("short", "much longer words"), None);
        assert_eq!(find_words("no match here", "router"), None);
        assert_eq!(find_words("text", ""), Some((0, 0)));
    }

    #[test]
    fn shards_parse_and_reject_bad_values() {
        assert_eq!("1/3".parse(), Ok(Shard { index: 1, count: 3 }));
        assert_eq!(" 0/1 ".parse(), Ok(Shard::ALL));
        for bad in ["3/3", "4/3", "1/0", "a/3", "1/b", "-1/3", "1", "", "1/3/5"] {
            let e = bad.parse::<Shard>().unwrap_err();
            assert!(e.contains("INDEX/COUNT"), "{bad}: {e}");
        }
        assert!("3/3".parse::<Shard>().unwrap_err().contains("0 to 2"));
    }

    #[test]
    fn shards_partition_the_snapshots() {
        let snaps: Vec<String> = (0..600)
            .map(|i| crate::lake::content_hash(format!("s{i}").as_bytes()))
            .collect();
        for n in 1..=5u32 {
            let mut sizes = vec![0usize; n as usize];
            for s in &snaps {
                let owners: Vec<u32> = (0..n)
                    .filter(|&i| Shard { index: i, count: n }.takes(s))
                    .collect();
                assert_eq!(owners.len(), 1, "{s} has owners {owners:?} of {n}");
                sizes[owners[0] as usize] += 1;
            }
            // Even enough that n workers share the work.
            let fair = snaps.len() / n as usize;
            assert!(
                sizes.iter().all(|&k| k > fair * 2 / 3),
                "{n} shards: {sizes:?}"
            );
        }
    }
}
