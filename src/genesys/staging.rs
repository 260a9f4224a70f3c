//! The fetch stage of the real Genesys Cloud source (`--source analytics`): list conversations
//! interval by interval (details jobs or query), fetch the text of every new or changed one,
//! and stage each listing page as one batch.
//!
//! Per batch, in this order (a crash leaves complete files and no event, or everything):
//! 1. the batch's texts (transcript documents and recordings lists as received, a JSON array in
//!    manifest order, zstd-compressed: `bodies/<h0h1>/<blake3>.json.zst`) and its conversation
//!    records (a JSON array, `bodies/<h0h1>/<blake3>.json`): two files a batch, not one per
//!    conversation, so a lake on an object store takes two PUTs per page and a local one two
//!    inodes;
//! 2. the manifest `bodies/<h0h1>/<snapshot>.json`: the hashes of both arrays and, for each
//!    conversation, its record's hash and its text (`doc:<hash>`, `recordings:<hash>` — the
//!    blake3 of the text as received — or `missing:<reason>`); the snapshot name is the blake3 of
//!    the manifest, so unchanged data gets the same name. (Manifests of format v1, from before,
//!    have no `texts`: each text is its own file, named by its hash);
//! 3. the utterance rows `raw/<h0h1>/<snapshot>.parquet` (the raw-snapshot schema, every
//!    utterance of each conversation of the batch in this one file);
//! 4. the events `snapshot` and `listing_page` (the checkpoint), and `interval_done` after the
//!    last page of an interval.
//!
//! Invariants: a conversation the lake already holds with the same record and text is neither
//! asked for its text again (unless its text was missing) nor staged again; a finished interval
//! of an unfinished run is not listed again; a job's pages resume from the recorded cursor.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::analytics::{self, ConversationInfo, Interval, Listing, QUERY_MAX_RESULTS};
use super::fetch::{FetchError, FetchSummary};
use super::progress::Progress;
use super::transcripts::{self, NotReadyPolicy, Outcome, Utterance};
use super::{ApiClient, GenesysError};
use crate::lake::events::EventKind;
use crate::lake::schema::{self, RawRow, RawRowsBuilder};
use crate::lake::{content_hash, snapshot_path, Event, EventLog, Lake};

/// The `source` of this stage's events.
pub const SOURCE: &str = "analytics";
const MANIFEST_FORMAT: &str = "convlake.analytics.v2";

/// What to fetch and how.
#[derive(Clone, Debug)]
pub struct AnalyticsOptions {
    /// Start of the range (inclusive).
    pub start: DateTime<Utc>,
    /// End of the range (exclusive).
    pub end: DateTime<Utc>,
    /// Keep only conversations that started at or after this time (an explicit `--from`);
    /// `None` keeps everything with activity in the range (`--since-last`).
    pub started_after: Option<DateTime<Utc>>,
    /// Media types: voice, chat, email, message.
    pub media: Vec<String>,
    pub listing: Listing,
    /// Longest interval per job or query.
    pub interval: chrono::Duration,
    /// Conversations per listing page.
    pub page_size: u32,
    /// Transcript requests in flight at once.
    pub concurrency: usize,
    /// Longest pause between two job-status polls.
    pub job_poll_max: Duration,
    /// Patience with recordings still being prepared.
    pub not_ready: NotReadyPolicy,
}

/// The lake path of a stored body (records or a manifest; in v1 lakes also a single text).
pub fn body_path(hash: &str) -> String {
    format!("bodies/{}/{}.json", &hash[..2.min(hash.len())], hash)
}

/// The lake path of a batch's texts: their JSON array, zstd-compressed (JSON with word-level
/// detail shrinks about tenfold), named by the blake3 of the stored bytes.
pub fn texts_path(hash: &str) -> String {
    format!("bodies/{}/{}.json.zst", &hash[..2.min(hash.len())], hash)
}

/// zstd level of stored texts: the fastest, which already gets most of the gain on JSON.
const TEXTS_ZSTD_LEVEL: i32 = 1;

/// Compresses a batch's texts on the blocking pool; returns them with the hash they are
/// stored under (that of the compressed bytes).
async fn compress_texts(texts: Bytes) -> Result<(Bytes, String), String> {
    let packed = tokio::task::spawn_blocking(move || {
        zstd::bulk::compress(&texts, TEXTS_ZSTD_LEVEL).map(|b| {
            let hash = content_hash(&b);
            (Bytes::from(b), hash)
        })
    })
    .await;
    match packed {
        Ok(Ok(p)) => Ok(p),
        Ok(Err(e)) => Err(format!("compressing the batch's texts failed: {e}")),
        Err(e) => Err(format!("compressing the batch's texts failed: {e}")),
    }
}

/// One conversation in a batch manifest.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ManifestEntry {
    pub conversation_id: String,
    /// blake3 of the record as stored in the batch's records file.
    pub record: String,
    pub media_type: String,
    pub conversation_start: String,
    /// `doc:<hash>`, `recordings:<hash>` or `missing:<reason>`.
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub communication_id: Option<String>,
}

/// A batch manifest: what a snapshot was made of.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    pub format: String,
    /// blake3 of the JSON array of the batch's conversation records.
    pub records: String,
    /// blake3 of the batch's texts as stored (`bodies/<h0h1>/<hash>.json.zst`, the zstd of a
    /// JSON array with one element per conversation whose text is not `missing:`, in the order
    /// of `conversations`); none when every text is missing, and in v1 manifests, whose texts
    /// are files of their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub texts: Option<String>,
    pub conversations: Vec<ManifestEntry>,
}

/// The first 128 bits of a string's blake3: what the map of held conversations keeps instead
/// of the strings (ids, record hashes, text references), so that it takes about 60 bytes a
/// conversation instead of about 300 (a lake of 10 million conversations: 0.6 GB, not 3 GB).
type Fingerprint = [u8; 16];

fn fingerprint(s: &str) -> Fingerprint {
    let mut f = [0u8; 16];
    f.copy_from_slice(&blake3::hash(s.as_bytes()).as_bytes()[..16]);
    f
}

/// What the lake holds for a conversation: which record and which text (or reason it is
/// missing), compared by fingerprint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Held {
    record: Fingerprint,
    text: Fingerprint,
    missing: bool,
}

impl Held {
    fn new(record: &str, text: &str) -> Held {
        Held {
            record: fingerprint(record),
            text: fingerprint(text),
            missing: text.starts_with("missing:"),
        }
    }

    /// Whether the lake holds exactly this record and text.
    fn is(&self, record: &str, text: &str) -> bool {
        *self == Held::new(record, text)
    }
}

/// Held conversations by the fingerprint of their id.
type HeldMap = HashMap<Fingerprint, Held>;

/// Where an unfinished run stopped.
#[derive(Debug, Default, PartialEq, Eq)]
struct Resume {
    done: HashSet<String>,
    /// interval → (next page number, job, next cursor).
    partial: HashMap<String, (u64, Option<String>, Option<String>)>,
}

fn run_key(o: &AnalyticsOptions) -> String {
    let mut media = o.media.clone();
    media.sort();
    let key = format!(
        "{SOURCE}|{}|{}|{}|{}|{}|{}|{:?}",
        o.listing.as_str(),
        media.join(","),
        o.start.timestamp_millis(),
        o.end.timestamp_millis(),
        o.interval.num_seconds(),
        o.page_size,
        o.started_after.map(|t| t.timestamp_millis()),
    );
    content_hash(key.as_bytes())[..16].to_string()
}

/// The intervals already done and the pages already staged of the last unfinished attempt of
/// `run`; `None` when there is none (never started, or finished).
fn resume_point(events: &[Event], run: &str) -> Option<Resume> {
    let mut state: Option<Resume> = None;
    for e in events {
        match &e.kind {
            EventKind::FetchDone { run: r, .. } if r == run => state = None,
            EventKind::ListingPage {
                run: r,
                interval,
                page,
                job,
                next,
                ..
            } if r == run => {
                state
                    .get_or_insert_with(Resume::default)
                    .partial
                    .insert(interval.clone(), (page + 1, job.clone(), next.clone()));
            }
            EventKind::IntervalDone {
                run: r, interval, ..
            } if r == run => {
                let s = state.get_or_insert_with(Resume::default);
                s.partial.remove(interval);
                s.done.insert(interval.clone());
            }
            _ => {}
        }
    }
    state
}

/// The end of the last complete interval of any analytics fetch (for `--since-last`).
pub fn last_complete(events: &[Event]) -> Option<DateTime<Utc>> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::IntervalDone {
                interval,
                complete: true,
                source,
                ..
            } if source == SOURCE => interval
                .split_once('/')
                .and_then(|(_, end)| DateTime::parse_from_rfc3339(end).ok())
                .map(|t| t.with_timezone(&Utc)),
            _ => None,
        })
        .max()
}

/// Every conversation the lake holds, from the manifests of the recorded analytics snapshots
/// (a later manifest wins).
/// A snapshot whose raw file is gone (moved to `quarantine/` by `convlake verify`) or whose
/// manifest is gone holds nothing: its conversations are fetched and staged again.
async fn load_held(lake: &Lake, events: &[Event]) -> Result<HeldMap, FetchError> {
    let mut held = HashMap::new();
    let mut seen = HashSet::new();
    let staged = lake.list_paths("raw/").await?;
    for e in events {
        let EventKind::Snapshot {
            snapshot, source, ..
        } = &e.kind
        else {
            continue;
        };
        if source != SOURCE || !seen.insert(snapshot.clone()) {
            continue;
        }
        if !staged.contains(&snapshot_path(snapshot)) {
            continue;
        }
        let path = body_path(snapshot);
        if !lake.exists(&path).await? {
            continue;
        }
        let bytes = lake.get(&path).await?;
        let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| FetchError::BadPage {
            url: path.clone(),
            page: 0,
            reason: format!("damaged manifest: {e}"),
        })?;
        for c in m.conversations {
            held.insert(
                fingerprint(&c.conversation_id),
                Held::new(&c.record, &c.text),
            );
        }
    }
    Ok(held)
}

/// Writes a content-addressed file unless the lake already holds it.
async fn put_once(lake: &Lake, path: &str, bytes: Bytes) -> Result<(), FetchError> {
    if !lake.exists(path).await? {
        lake.put(path, bytes).await?;
    }
    Ok(())
}

/// Writes a body once under its content hash; returns the hash.
async fn store_body(lake: &Lake, bytes: Bytes) -> Result<String, FetchError> {
    let hash = content_hash(&bytes);
    put_once(lake, &body_path(&hash), bytes).await?;
    Ok(hash)
}

/// The JSON array of `bodies`, each kept byte for byte as received (every one was checked to
/// be JSON when it arrived), so an element's blake3 is its `doc:`/`recordings:` hash.
fn json_array(bodies: &[Bytes]) -> Bytes {
    let mut out = Vec::with_capacity(bodies.iter().map(|b| b.len() + 2).sum::<usize>() + 2);
    out.push(b'[');
    for (i, b) in bodies.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b",\n");
        }
        out.extend_from_slice(b);
    }
    out.push(b']');
    Bytes::from(out)
}

/// A conversation's text as received, the hash it is stored under in `bodies/` (none when
/// there was no text), and its utterances, read as soon as the text arrived (an unreadable text
/// is an error of the page, reported once the page is assembled).
struct Fetched {
    outcome: Outcome,
    stored: Option<String>,
    utterances: Result<Vec<Utterance>, String>,
}

/// The utterances of a received text (phrases read on arrival are moved into them).
fn utterances_of(outcome: &mut Outcome, info: &ConversationInfo) -> Result<Vec<Utterance>, String> {
    match outcome {
        Outcome::Voice {
            communication_id,
            document,
            phrases,
        } => match phrases.take() {
            Some(p) => Ok(p.utterances(communication_id, info.start)),
            None => transcripts::voice_utterances(document, communication_id, info.start),
        },
        Outcome::Digital { body } => {
            transcripts::digital_utterances(body, info.start, &info.customer_addresses)
        }
        Outcome::Missing { .. } => Ok(Vec::new()),
    }
}

/// Hashes a received text and reads its utterances on the blocking pool: the page's other
/// requests keep going on the runtime meanwhile, and two texts are read on two cores.
async fn digest(mut outcome: Outcome, info: ConversationInfo) -> Result<Fetched, String> {
    tokio::task::spawn_blocking(move || {
        let body = match &outcome {
            Outcome::Voice { document, .. } => Some(document),
            Outcome::Digital { body } => Some(body),
            Outcome::Missing { .. } => None,
        };
        let stored = body.map(|b| content_hash(b));
        let utterances = utterances_of(&mut outcome, &info);
        Fetched {
            outcome,
            stored,
            utterances,
        }
    })
    .await
    .map_err(|e| format!("reading a received text failed: {e}"))
}

/// One conversation of a listing page.
#[derive(Clone)]
struct Item {
    info: ConversationInfo,
    record: Value,
    record_hash: String,
    /// Further requests for recordings still being prepared.
    retries_left: u32,
}

/// What staging one page did.
#[derive(Default)]
struct PageResult {
    changed: u64,
    snapshot: Option<(String, bool)>,
    utterances: u64,
    transcripts: u64,
    missing: u64,
}

/// Shared state of one fetch.
struct Stage<'a> {
    lake: &'a Lake,
    client: &'a ApiClient,
    opts: &'a AnalyticsOptions,
    run: String,
    held: HeldMap,
    /// Conversations whose recordings were still being prepared: asked again once due, with a
    /// later batch, so that waiting for them never idles the budget.
    deferred: Vec<(Instant, Item)>,
    summary: FetchSummary,
    progress: Progress,
}

impl Stage<'_> {
    fn wanted(&self, info: &ConversationInfo) -> bool {
        self.opts.media.contains(&info.media)
            && self.opts.started_after.is_none_or(|t| info.start >= t)
    }

    async fn text(&self, info: &ConversationInfo) -> Result<Outcome, GenesysError> {
        if info.media == "voice" {
            transcripts::voice(self.client, &info.id, &info.voice_sessions).await
        } else {
            let once = NotReadyPolicy {
                attempts: 1,
                wait: Duration::ZERO,
            };
            transcripts::digital(self.client, &info.id, once).await
        }
    }

    /// Stages the new or changed conversations of one listing page as one batch.
    async fn stage_page(
        &mut self,
        records: Vec<Value>,
        url: &str,
        page: u64,
    ) -> Result<PageResult, FetchError> {
        let (mut result, batch) = self.prepare_page(records, url, page).await?;
        if let Some(batch) = batch {
            let (snapshot, new, utterances) = write_batch(self.lake, batch).await?;
            self.count_written(new, utterances);
            result.utterances = utterances;
            result.snapshot = Some((snapshot, new));
        }
        Ok(result)
    }

    /// Counts a written batch into the summary.
    fn count_written(&mut self, new: bool, utterances: u64) {
        self.summary.new_snapshots += u64::from(new);
        self.summary.utterances += utterances;
    }

    /// Writes a pending page (see [`flush`]) and counts it.
    async fn flush_pending(
        &mut self,
        log: &EventLog,
        iv: &Interval,
        pending: Option<Pending>,
    ) -> Result<(), FetchError> {
        if let Some((new, utterances)) = flush(self.lake, log, &self.run, iv, pending).await? {
            self.count_written(new, utterances);
        }
        Ok(())
    }

    /// Fetches the text of the new or changed conversations of one listing page and decides
    /// its batch, writing nothing: the batch is complete (every text read into utterances)
    /// before any of it reaches the lake.
    async fn prepare_page(
        &mut self,
        records: Vec<Value>,
        url: &str,
        page: u64,
    ) -> Result<(PageResult, Option<Batch>), FetchError> {
        let bad = |reason: String| FetchError::BadPage {
            url: url.to_string(),
            page,
            reason,
        };
        let mut items = Vec::new();
        let mut ids = HashSet::new();
        for record in records {
            let info = analytics::conversation_info(&record).map_err(bad)?;
            if !self.wanted(&info) || !ids.insert(info.id.clone()) {
                continue;
            }
            let bytes = serde_json::to_vec(&record).map_err(|e| bad(e.to_string()))?;
            items.push(Item {
                record_hash: content_hash(&bytes),
                info,
                record,
                retries_left: self.opts.not_ready.attempts.saturating_sub(1),
            });
        }
        let listed = items.len();
        self.summary.conversations += listed as u64;
        // Deferred conversations that are due join this batch; one listed again here is asked
        // with this page and leaves the queue.
        self.deferred.retain(|(_, d)| !ids.contains(&d.info.id));
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.deferred)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        self.deferred = later;
        for (_, item) in due {
            if ids.insert(item.info.id.clone()) {
                items.push(item);
            }
        }
        // Ask for text only where the lake lacks it or the conversation changed.
        let asks: Vec<usize> = (0..items.len())
            .filter(|&k| {
                k >= listed
                    || match self.held.get(&fingerprint(&items[k].info.id)) {
                        Some(h) => h.record != fingerprint(&items[k].record_hash) || h.missing,
                        None => true,
                    }
            })
            .collect();
        // Unordered, so one conversation waiting for its recordings does not hold up the
        // others; the results are put back in page order.
        let this = &*self;
        let items_ref = &items;
        let mut outcomes: Vec<(usize, Result<Fetched, FetchError>)> =
            futures::stream::iter(asks.iter().copied().enumerate())
                .map(|(n, k)| async move {
                    let fetched = async {
                        let info = &items_ref[k].info;
                        let outcome = this.text(info).await?;
                        digest(outcome, info.clone()).await.map_err(bad)
                    };
                    (n, fetched.await)
                })
                .buffer_unordered(self.opts.concurrency.max(1))
                .collect()
                .await;
        outcomes.sort_by_key(|(n, _)| *n);
        let outcomes = outcomes.into_iter().map(|(_, o)| o);
        let mut result = PageResult::default();
        let mut entries = Vec::new();
        let mut texts: Vec<(usize, Result<Vec<Utterance>, String>)> = Vec::new();
        let mut bodies: Vec<Bytes> = Vec::new();
        for (&k, fetched) in asks.iter().zip(outcomes) {
            let Fetched {
                outcome,
                stored,
                utterances,
            } = fetched?;
            let stored = stored.unwrap_or_default();
            let item = &items[k];
            let (text, communication_id) = match &outcome {
                Outcome::Voice {
                    communication_id, ..
                } => {
                    result.transcripts += 1;
                    (format!("doc:{stored}"), Some(communication_id.clone()))
                }
                Outcome::Digital { .. } => {
                    result.transcripts += 1;
                    (format!("recordings:{stored}"), None)
                }
                Outcome::Missing { reason } => {
                    if reason == "not-ready" && item.retries_left > 0 {
                        let mut again = item.clone();
                        again.retries_left -= 1;
                        self.deferred
                            .push((Instant::now() + self.opts.not_ready.wait, again));
                    } else {
                        result.missing += 1;
                    }
                    (format!("missing:{reason}"), None)
                }
            };
            let unchanged = self
                .held
                .get(&fingerprint(&item.info.id))
                .is_some_and(|h| h.is(&item.record_hash, &text));
            if unchanged {
                continue;
            }
            entries.push(ManifestEntry {
                conversation_id: item.info.id.clone(),
                record: item.record_hash.clone(),
                media_type: item.info.media.clone(),
                conversation_start: item
                    .info
                    .start
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                text,
                communication_id,
            });
            match outcome {
                Outcome::Voice { document, .. } => bodies.push(document),
                Outcome::Digital { body } => bodies.push(body),
                Outcome::Missing { .. } => {}
            }
            texts.push((k, utterances));
        }
        self.summary.transcripts += result.transcripts;
        self.summary.missing_transcripts += result.missing;
        self.summary.unchanged += listed.saturating_sub(entries.len()) as u64;
        if entries.is_empty() {
            return Ok((result, None));
        }
        let mut rows = Vec::with_capacity(texts.len());
        let mut batch_records = Vec::with_capacity(texts.len());
        for (k, utterances) in texts {
            let item = &items[k];
            let utterances =
                utterances.map_err(|e| bad(format!("conversation {}: {e}", item.info.id)))?;
            rows.push((item.info.clone(), utterances));
            batch_records.push(item.record.clone());
        }
        for e in &entries {
            self.held.insert(
                fingerprint(&e.conversation_id),
                Held::new(&e.record, &e.text),
            );
        }
        result.changed = entries.len() as u64;
        let batch = Batch {
            url: url.to_string(),
            page,
            entries,
            texts: bodies,
            records: batch_records,
            rows,
        };
        Ok((result, Some(batch)))
    }

    /// Lists one interval with a details job, resuming its pages when a job is recorded.
    async fn interval_by_job(
        &mut self,
        iv: &Interval,
        resume: Option<(u64, Option<String>, Option<String>)>,
        prepared: Option<String>,
        totals: &mut (u64, u64, u64),
    ) -> Result<(), FetchError> {
        let log = self.lake.events();
        let (mut page, mut job, mut cursor) = match resume {
            Some((p, Some(j), Some(c))) => (p, Some(j), Some(c)),
            _ => (0, prepared, None),
        };
        // The next page, asked for while the current one is staged.
        let mut ahead = None;
        let client = self.client;
        let lake = self.lake;
        let run = self.run.clone();
        // The previous page: its batch is written and its events appended while this page's
        // texts are fetched, so the API is never idle while the lake is written.
        let mut writing: Option<Pending> = None;
        loop {
            let job_id = match &job {
                Some(j) => j.clone(),
                None => {
                    let submitted = async {
                        let j = analytics::submit_job(client, iv, &self.opts.media).await?;
                        analytics::wait_for_job(client, &j, self.opts.job_poll_max).await?;
                        Ok::<_, GenesysError>(j)
                    }
                    .await;
                    match submitted {
                        Ok(j) => {
                            job = Some(j.clone());
                            j
                        }
                        Err(e) => {
                            self.flush_pending(&log, iv, writing.take()).await?;
                            return Err(e.into());
                        }
                    }
                }
            };
            let result = match ahead.take() {
                Some(r) => r,
                None => {
                    analytics::job_page(client, &job_id, cursor.as_deref(), self.opts.page_size)
                        .await
                }
            };
            let results = match result {
                Ok(r) => r,
                // The recorded job expired or is unknown: list the interval again with a new
                // job (what was staged stays; unchanged conversations cost nothing).
                Err(GenesysError::Rejected {
                    status: 404 | 400, ..
                }) if cursor.is_some() => {
                    tracing::info!(job = %job_id, "the recorded job is gone; submitting a new one");
                    (page, job, cursor) = (0, None, None);
                    continue;
                }
                Err(e) => {
                    self.flush_pending(&log, iv, writing.take()).await?;
                    return Err(e.into());
                }
            };
            let url = analytics::results_path(&job_id, cursor.as_deref(), self.opts.page_size);
            let listed = results.conversations.len() as u64;
            let next = results.cursor.filter(|c| !c.is_empty());
            let size = self.opts.page_size;
            let following = async {
                match &next {
                    Some(c) => Some(analytics::job_page(client, &job_id, Some(c), size).await),
                    None => None,
                }
            };
            let (prepared, following, flushed) = futures::join!(
                self.prepare_page(results.conversations, &url, page),
                following,
                flush(lake, &log, &run, iv, writing.take()),
            );
            // The previous page is recorded even when this one failed.
            if let Some((new, utterances)) = flushed? {
                self.count_written(new, utterances);
            }
            let (r, batch) = prepared?;
            ahead = following;
            totals.0 += listed;
            totals.1 += r.transcripts;
            totals.2 += r.missing;
            self.summary.pages += 1;
            self.progress.update(&self.summary, &self.client.stats());
            writing = Some(Pending {
                result: r,
                batch,
                page,
                job: job_id.clone(),
                next: next.clone(),
                listed,
            });
            match next {
                Some(c) => {
                    cursor = Some(c);
                    page += 1;
                }
                None => {
                    self.flush_pending(&log, iv, writing.take()).await?;
                    return Ok(());
                }
            }
        }
    }

    /// Lists one interval with the synchronous query, splitting it when the API refuses it
    /// (over 100,000 results or too long).
    async fn interval_by_query(
        &mut self,
        iv: &Interval,
        totals: &mut (u64, u64, u64),
    ) -> Result<(), FetchError> {
        let log = self.lake.events();
        let size = self.opts.page_size.clamp(1, analytics::QUERY_MAX_PAGE);
        let mut queue = vec![*iv];
        let mut page_no = 0u64;
        while let Some(part) = queue.pop() {
            let mut number = 1u32;
            loop {
                let res =
                    analytics::query_page(self.client, &part, &self.opts.media, size, number).await;
                let split = match &res {
                    Err(e) => analytics::needs_shorter_interval(e),
                    Ok(p) => number == 1 && p.total_hits > QUERY_MAX_RESULTS,
                };
                if split {
                    if let Some((a, b)) = part.halves() {
                        tracing::info!(interval = %part.iso(), "splitting the query interval");
                        queue.push(b);
                        queue.push(a);
                        break;
                    }
                }
                let p = res?;
                let listed = p.conversations.len() as u64;
                let last = listed == 0 || u64::from(size) * u64::from(number) >= p.total_hits;
                let r = self
                    .stage_page(p.conversations, analytics::QUERY_PATH, page_no)
                    .await?;
                totals.0 += listed;
                totals.1 += r.transcripts;
                totals.2 += r.missing;
                self.summary.pages += 1;
                self.progress.update(&self.summary, &self.client.stats());
                let next = (!last).then(|| format!("{}#{}", part.iso(), number + 1));
                log.append(page_events(&self.run, iv, page_no, None, next, listed, &r))
                    .await?;
                page_no += 1;
                if last {
                    break;
                }
                number += 1;
            }
        }
        Ok(())
    }
}

/// The events of a staged page of `run`.
fn page_events(
    run: &str,
    interval: &Interval,
    page: u64,
    job: Option<&str>,
    next: Option<String>,
    listed: u64,
    r: &PageResult,
) -> Vec<EventKind> {
    let mut events = Vec::new();
    if let Some((snapshot, new)) = &r.snapshot {
        events.push(EventKind::Snapshot {
            snapshot: snapshot.clone(),
            path: snapshot_path(snapshot),
            source: SOURCE.into(),
            run: run.to_string(),
            page,
            next: next.clone(),
            conversations: r.changed,
            utterances: r.utterances,
            body_bytes: 0,
            new: *new,
        });
    }
    events.push(EventKind::ListingPage {
        run: run.to_string(),
        interval: interval.iso(),
        page,
        job: job.map(String::from),
        next,
        conversations: listed,
        changed: r.changed,
        snapshot: r.snapshot.as_ref().map(|(s, _)| s.clone()),
    });
    events
}

/// A staged page whose batch is still to be written and whose events are still to be appended.
struct Pending {
    result: PageResult,
    batch: Option<Batch>,
    page: u64,
    job: String,
    next: Option<String>,
    listed: u64,
}

/// Writes a pending page's batch, then appends its events (so the checkpoint follows the
/// files). Returns, when it had a batch, whether the raw file was new and its utterances.
async fn flush(
    lake: &Lake,
    log: &EventLog,
    run: &str,
    iv: &Interval,
    pending: Option<Pending>,
) -> Result<Option<(bool, u64)>, FetchError> {
    let Some(Pending {
        mut result,
        batch,
        page,
        job,
        next,
        listed,
    }) = pending
    else {
        return Ok(None);
    };
    let mut counted = None;
    if let Some(batch) = batch {
        let (snapshot, new, utterances) = write_batch(lake, batch).await?;
        result.utterances = utterances;
        result.snapshot = Some((snapshot, new));
        counted = Some((new, utterances));
    }
    log.append(page_events(
        run,
        iv,
        page,
        Some(&job),
        next,
        listed,
        &result,
    ))
    .await?;
    Ok(counted)
}

/// A page's batch, decided (every text fetched and read) but not yet written.
struct Batch {
    url: String,
    page: u64,
    entries: Vec<ManifestEntry>,
    /// The texts of the entries that have one, in entry order, as received.
    texts: Vec<Bytes>,
    /// The conversation records of the entries, in entry order.
    records: Vec<Value>,
    rows: Vec<(ConversationInfo, Vec<Utterance>)>,
}

/// Writes a batch: texts, records, manifest, rows (the caller records the events after).
/// Returns the snapshot, whether its raw file is new, and its utterances.
async fn write_batch(lake: &Lake, batch: Batch) -> Result<(String, bool, u64), FetchError> {
    let bad = |reason: String| FetchError::BadPage {
        url: batch.url.clone(),
        page: batch.page,
        reason,
    };
    let texts_hash = match batch.texts.is_empty() {
        true => None,
        false => {
            let (bytes, hash) = compress_texts(json_array(&batch.texts))
                .await
                .map_err(bad)?;
            put_once(lake, &texts_path(&hash), bytes).await?;
            Some(hash)
        }
    };
    let records_bytes = serde_json::to_vec(&batch.records).map_err(|e| bad(e.to_string()))?;
    let records_hash = store_body(lake, Bytes::from(records_bytes)).await?;
    let manifest = Manifest {
        format: MANIFEST_FORMAT.into(),
        records: records_hash,
        texts: texts_hash,
        conversations: batch.entries,
    };
    let manifest_bytes = serde_json::to_vec(&manifest).map_err(|e| bad(e.to_string()))?;
    let snapshot = content_hash(&manifest_bytes);
    put_once(lake, &body_path(&snapshot), Bytes::from(manifest_bytes)).await?;
    let rows = to_batch(&batch.rows, &snapshot).map_err(bad)?;
    let utterances = rows.num_rows() as u64;
    let path = snapshot_path(&snapshot);
    let new = !lake.exists(&path).await?;
    if new {
        let bytes = schema::to_parquet(&rows.schema(), std::slice::from_ref(&rows)).map_err(bad)?;
        lake.put(&path, bytes).await?;
    }
    Ok((snapshot, new, utterances))
}

/// The batch's utterances as rows of the raw-snapshot schema.
fn to_batch(
    rows: &[(ConversationInfo, Vec<Utterance>)],
    snapshot: &str,
) -> Result<RecordBatch, String> {
    let mut out = RawRowsBuilder::new(snapshot);
    for (info, utterances) in rows {
        for (i, u) in utterances.iter().enumerate() {
            out.push(RawRow {
                conversation_id: &info.id,
                communication_id: u.communication_id.as_deref(),
                conversation_date: info.start.date_naive(),
                interaction_type: &info.media,
                participant: u.participant,
                utterance_index: i as i32,
                start_ms: u.start_ms,
                text: &u.text,
            });
        }
    }
    out.finish()
}

/// Fetches every interval of the range into the lake (see the module docs).
pub async fn fetch(
    lake: &Lake,
    client: &ApiClient,
    opts: &AnalyticsOptions,
) -> Result<FetchSummary, FetchError> {
    for m in &opts.media {
        if !super::fetch::MEDIA_TYPES.contains(&m.as_str()) {
            return Err(FetchError::BadMedia(m.clone()));
        }
    }
    let started = Instant::now();
    let log = lake.events();
    let history = log.read_all().await?;
    let run = run_key(opts);
    let resume = resume_point(&history, &run);
    let held = load_held(lake, &history).await?;
    let intervals = Interval::split(opts.start, opts.end, opts.interval);
    let resume = resume.unwrap_or_default();
    let skipped = intervals
        .iter()
        .filter(|iv| resume.done.contains(&iv.iso()))
        .count() as u64;
    let mut stage = Stage {
        lake,
        client,
        opts,
        run: run.clone(),
        held,
        deferred: Vec::new(),
        summary: FetchSummary::default(),
        progress: Progress::new(intervals.len() as u64, skipped),
    };
    if !resume.done.is_empty() || !resume.partial.is_empty() {
        stage.summary.resumed_runs = 1;
        stage.progress.println(format!(
            "fetch: resuming an unfinished run ({} intervals already done)",
            resume.done.len()
        ));
    }
    let available = match opts.listing {
        Listing::Jobs => {
            let a = analytics::availability(client).await?;
            if a < opts.end {
                stage.progress.println(format!(
                    "fetch: note: the analytics data lake holds conversations up to {} (dataAvailabilityDate); \
                     later ones are not in job results yet. Fetch again later (--since-last) or use --listing query for recent data",
                    a.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ));
            }
            stage.summary.data_availability = Some(a);
            Some(a)
        }
        Listing::Query => None,
    };
    let media = opts.media.join(",");
    let mut total_conversations = 0;
    // The job of the next interval is submitted and waited for while this one is paged and its
    // texts fetched, so the time Genesys takes to prepare a job (seconds to minutes) overlaps
    // with work instead of adding to it. (interval, FULFILLED job)
    let mut prepared: Option<(String, String)> = None;
    for (n, iv) in intervals.iter().enumerate() {
        let key = iv.iso();
        if resume.done.contains(&key) {
            stage.summary.intervals_skipped += 1;
            continue;
        }
        let mut totals = (0u64, 0u64, 0u64);
        match opts.listing {
            Listing::Jobs => {
                let ready = prepared.take().filter(|(k, _)| *k == key).map(|(_, j)| j);
                let next = intervals[n + 1..].iter().find(|v| {
                    let k = v.iso();
                    !resume.done.contains(&k) && !resume.partial.contains_key(&k)
                });
                let lookahead = async {
                    let v = next?;
                    let job = analytics::submit_job(client, v, &opts.media).await;
                    let job = match job {
                        Ok(j) => analytics::wait_for_job(client, &j, opts.job_poll_max)
                            .await
                            .map(|()| j),
                        Err(e) => Err(e),
                    };
                    // A failure here is met again, and reported, when that interval's turn comes.
                    job.inspect_err(
                        |e| tracing::debug!(error = %e, "submitting the next job early"),
                    )
                    .ok()
                    .map(|j| (v.iso(), j))
                };
                let (listed, next_job) = tokio::join!(
                    stage.interval_by_job(
                        iv,
                        resume.partial.get(&key).cloned(),
                        ready,
                        &mut totals
                    ),
                    lookahead
                );
                listed?;
                prepared = next_job;
            }
            Listing::Query => stage.interval_by_query(iv, &mut totals).await?,
        }
        total_conversations += totals.0;
        stage.summary.intervals += 1;
        let complete = available.is_none_or(|a| iv.end <= a);
        log.append(vec![EventKind::IntervalDone {
            run: run.clone(),
            source: SOURCE.into(),
            listing: opts.listing.as_str().into(),
            interval: key.clone(),
            media: media.clone(),
            conversations: totals.0,
            transcripts: totals.1,
            missing_transcripts: totals.2,
            complete,
        }])
        .await?;
        let s = client.stats();
        let minutes = started.elapsed().as_secs_f64() / 60.0;
        stage.progress.interval_done(format!(
            "fetch: interval {}/{} {}: {} conversations, {} transcripts, {} without text; {} requests ({:.0}/min), {} 429s",
            n + 1,
            intervals.len(),
            key,
            totals.0,
            totals.1,
            totals.2,
            s.requests,
            s.requests as f64 / minutes.max(1e-9),
            s.too_many,
        ));
    }
    // Conversations still waiting for their recordings: one last batch each time some are due.
    while let Some(due) = stage.deferred.iter().map(|(at, _)| *at).min() {
        tokio::time::sleep_until(due.into()).await;
        let r = stage
            .stage_page(Vec::new(), "deferred recordings", 0)
            .await?;
        if let Some((snapshot, new)) = &r.snapshot {
            log.append(vec![EventKind::Snapshot {
                snapshot: snapshot.clone(),
                path: snapshot_path(snapshot),
                source: SOURCE.into(),
                run: run.clone(),
                page: 0,
                next: None,
                conversations: r.changed,
                utterances: r.utterances,
                body_bytes: 0,
                new: *new,
            }])
            .await?;
        }
    }
    log.append(vec![EventKind::FetchDone {
        run,
        source: SOURCE.into(),
        interaction_type: media,
        from: opts
            .start
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        to: opts
            .end
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        pages: stage.summary.pages,
        conversations: total_conversations,
    }])
    .await?;
    stage.progress.finish();
    let s = client.stats();
    stage.summary.requests = s.requests;
    stage.summary.too_many = s.too_many;
    stage.summary.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(stage.summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(seq: u64, kind: EventKind) -> Event {
        Event {
            seq,
            index: 0,
            time: Utc::now(),
            kind,
        }
    }

    fn page(run: &str, interval: &str, page: u64, next: Option<&str>) -> EventKind {
        EventKind::ListingPage {
            run: run.into(),
            interval: interval.into(),
            page,
            job: Some("j".into()),
            next: next.map(String::from),
            conversations: 1,
            changed: 1,
            snapshot: None,
        }
    }

    fn done(run: &str, interval: &str) -> EventKind {
        EventKind::IntervalDone {
            run: run.into(),
            source: SOURCE.into(),
            listing: "jobs".into(),
            interval: interval.into(),
            media: "voice".into(),
            conversations: 1,
            transcripts: 1,
            missing_transcripts: 0,
            complete: true,
        }
    }

    #[test]
    fn held_conversations_compare_by_fingerprint() {
        let h = Held::new("rec1", "doc:abc");
        assert!(h.is("rec1", "doc:abc"));
        assert!(!h.is("rec2", "doc:abc"));
        assert!(!h.is("rec1", "doc:abd"));
        assert!(!h.missing);
        assert!(Held::new("rec1", "missing:not-ready").missing);
        assert_ne!(fingerprint("conv-a"), fingerprint("conv-b"));
        assert_eq!(fingerprint("conv-a"), fingerprint("conv-a"));
    }

    #[test]
    fn resume_skips_done_intervals_and_continues_pages() {
        let a = "2026-03-01T00:00:00.000Z/2026-03-02T00:00:00.000Z";
        let b = "2026-03-02T00:00:00.000Z/2026-03-03T00:00:00.000Z";
        let events = vec![
            ev(1, page("r", a, 0, None)),
            ev(2, done("r", a)),
            ev(3, page("r", b, 0, Some("c1"))),
            ev(4, page("x", b, 0, Some("zz"))),
        ];
        let r = resume_point(&events, "r").unwrap();
        assert!(r.done.contains(a));
        assert_eq!(
            r.partial.get(b),
            Some(&(1, Some("j".into()), Some("c1".into())))
        );
        let mut finished = events.clone();
        finished.push(ev(
            5,
            EventKind::FetchDone {
                run: "r".into(),
                source: SOURCE.into(),
                interaction_type: "voice".into(),
                from: String::new(),
                to: String::new(),
                pages: 2,
                conversations: 2,
            },
        ));
        assert_eq!(resume_point(&finished, "r"), None);
        assert_eq!(
            last_complete(&finished),
            Some("2026-03-02T00:00:00Z".parse().unwrap())
        );
    }
}
