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
//! 4. the events `snapshot` and `listing_page` (the checkpoint), `texts_missing` for the
//!    conversations of the page asked for their text without getting it (reason and requests
//!    so far), and `interval_done` after the last page of an interval.
//!
//! Recordings still being prepared (202 or empty) are asked again after `--not-ready-wait`, up
//! to `--not-ready-attempts` requests in all. The wait survives a crash: the conversations are
//! staged without text and recorded in `texts_missing`, so a later attempt of the same run (a
//! re-run with the same arguments, even one that finds every interval done) asks them again,
//! continuing the count, until they have text or the attempts are spent. Another run that lists
//! them asks them again anyway, with its own count.
//!
//! Invariants: a conversation the lake already holds with the same record and text is neither
//! asked for its text again (unless its text was missing) nor staged again; a finished interval
//! of an unfinished run is not listed again; a job's pages resume from the recorded cursor, and
//! the query's from the recorded part and page number. Every loop over server answers is bounded:
//! a job QUEUED past `--job-timeout`, a repeated cursor, a job resubmitted more than
//! [`MAX_RESUBMITS`] times end the fetch with an error, and a re-run resumes.
//!
//! This module is the driver ([`fetch`] and its `Stage`: intervals, listing pages, texts,
//! deferred recordings). `batch` decides and writes a page's batch and its events, `manifest`
//! names the batch's files and writes them, `resume` reads what earlier fetches left (resume
//! points, held conversations, pending transcripts, query checkpoints). They use each other in
//! one direction only: this module → `resume` → `manifest`, this module → `batch` → `manifest`.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::Value;

use super::{FetchError, FetchSummary, MEDIA_TYPES};
use crate::genesys::analytics::{self, ConversationInfo, Interval, Listing, QUERY_MAX_RESULTS};
use crate::genesys::progress::Progress;
use crate::genesys::transcripts::{self, NotReadyPolicy, Outcome, Utterance};
use crate::genesys::{ApiClient, GenesysError};
use crate::lake::events::{EventKind, MissingText};
use crate::lake::{content_hash, snapshot_path, EventLog, Lake};

mod batch;
mod manifest;
mod resume;

use batch::{
    digest, flush, page_events, texts_missing_event, write_batch, Batch, Fetched, PageResult,
    Pending,
};
pub use manifest::{body_path, texts_path, Manifest, ManifestEntry, SOURCE};
use resume::{
    fingerprint, load_held, parse_query_checkpoint, pending_transcripts, query_checkpoint,
    replaced_snapshots, resume_point, Fingerprint, Held, HeldMap, Resume, Unread, NOT_READY,
};
pub use resume::{
    last_complete, reason_name, reasons_text, ONGOING, TRANSCRIPT_PENDING, UNTRANSCRIBED,
};

/// How often one interval's details job may be submitted again (its results expired or
/// vanished while paged) before the fetch gives up.
pub const MAX_RESUBMITS: u32 = 3;

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
    /// Conversations per staged batch (a listing page is staged as several batches).
    pub batch_size: usize,
    /// How long after its end a voice conversation without an STA transcript (404) is asked
    /// again by later fetches; older ones are `untranscribed`.
    pub transcript_grace: chrono::Duration,
    /// Transcript requests in flight at once.
    pub concurrency: usize,
    /// Longest pause between two job-status polls.
    pub job_poll_max: Duration,
    /// Longest wait for a details job to leave QUEUED/PENDING.
    pub job_timeout: Duration,
    /// Patience with recordings still being prepared.
    pub not_ready: NotReadyPolicy,
    /// Masks personal data in every record and text before anything is written.
    pub mask: Option<std::sync::Arc<crate::privacy::mask::Masker>>,
    /// Stage erased conversations again (`fetch --restore`) instead of skipping them.
    pub restore: bool,
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

/// The conversations to ask for their text again without listing them, rebuilt from their
/// stored records: those an unfinished attempt of this run recorded as not ready (requests not
/// spent), and those any fetch recorded as `transcript-pending` whose transcript may still
/// come (inside `--transcript-grace`; cron runs share this through the lake). Only where the
/// lake still lacks their text. Returns (when each is due, the conversation).
async fn asked_again(
    lake: &Lake,
    resume: &Resume,
    pending: &HashMap<String, (u32, DateTime<Utc>)>,
    held: &HeldMap,
    unread: &Unread,
    opts: &AnalyticsOptions,
) -> Result<Vec<(Instant, Item)>, FetchError> {
    /// (position in the records file, record hash, requests so far, recorded at, not ready)
    type Wanted<'a> = (usize, &'a str, u32, DateTime<Utc>, bool);
    let mut by_file: HashMap<&str, Vec<Wanted<'_>>> = HashMap::new();
    let mut want = |id: &str, attempts: u32, at: DateTime<Utc>, not_ready: bool| {
        let fp = fingerprint(id);
        if !held.get(&fp).is_some_and(|h| h.missing) {
            return;
        }
        if let Some((file, i, record)) = unread.get(&fp) {
            by_file.entry(file.as_str()).or_default().push((
                *i,
                record.as_str(),
                attempts,
                at,
                not_ready,
            ));
        }
    };
    for (id, (reason, attempts, at)) in &resume.texts {
        if reason == NOT_READY && *attempts < opts.not_ready.attempts {
            want(id, *attempts, *at, true);
        }
    }
    for (id, (attempts, at)) in pending {
        let not_ready = resume
            .texts
            .get(id)
            .is_some_and(|(r, n, _)| r == NOT_READY && *n < opts.not_ready.attempts);
        if !not_ready {
            want(id, *attempts, *at, false);
        }
    }
    let mut out = Vec::new();
    let now = (Instant::now(), Utc::now());
    for (file, wanted) in by_file {
        let path = body_path(file);
        let bad = |reason: String| FetchError::BadPage {
            url: path.clone(),
            page: 0,
            reason,
        };
        let records: Vec<Value> = serde_json::from_slice(&lake.get(&path).await?)
            .map_err(|e| bad(format!("damaged records file: {e}")))?;
        for (i, record_hash, attempts, at, not_ready) in wanted {
            let Some(record) = records.get(i) else {
                continue;
            };
            let info = analytics::conversation_info(record).map_err(&bad)?;
            if !not_ready && !in_grace(&info, opts.transcript_grace, now.1) {
                continue;
            }
            // Recordings: due one pause after the request recorded last (at once if that is
            // past). Transcripts: at once.
            let since = (now.1 - at).to_std().unwrap_or_default();
            let wait = match not_ready {
                true => opts.not_ready.wait.saturating_sub(since),
                false => Duration::ZERO,
            };
            let due = now.0.checked_add(wait).unwrap_or(now.0);
            out.push((
                due,
                Item {
                    info,
                    record: record.clone(),
                    record_hash: record_hash.to_string(),
                    attempts,
                },
            ));
        }
    }
    Ok(out)
}

/// Whether a voice conversation's transcript may still come: it ended (or, while ongoing,
/// started) less than `grace` before `now`.
fn in_grace(info: &ConversationInfo, grace: chrono::Duration, now: DateTime<Utc>) -> bool {
    let reference = info.end.unwrap_or(info.start);
    reference
        .checked_add_signed(grace)
        .is_none_or(|until| until > now)
}

/// One conversation of a listing page.
#[derive(Clone)]
struct Item {
    info: ConversationInfo,
    record: Value,
    record_hash: String,
    /// Requests for its text so far in this run (earlier attempts of the run included).
    attempts: u32,
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
    /// Requests for text so far in this run, by conversation (from earlier attempts of the run
    /// and this one).
    attempts: HashMap<Fingerprint, u32>,
    /// The conversations of this run still without text, and why.
    without_text: HashMap<Fingerprint, String>,
    summary: FetchSummary,
    progress: Progress,
    /// Erased conversations ([`crate::lake::events::erased_hash`]): skipped unless `restore`.
    erased: HashSet<String>,
    /// Erased conversations this fetch staged again (`--restore`).
    restored: std::collections::BTreeSet<String>,
}

impl Stage<'_> {
    fn wanted(&self, info: &ConversationInfo) -> bool {
        self.opts.media.contains(&info.media)
            && self.opts.started_after.is_none_or(|t| info.start >= t)
    }

    /// What a missing text means for this conversation: one still going on (no
    /// `conversationEnd`) is `ongoing`, not waited for (a fetch that lists it once it ended asks
    /// again); a voice conversation with no STA transcript (404) yet is `transcript-pending`
    /// inside the grace window (later fetches ask again), `untranscribed` past it.
    fn pending_or_untranscribed(&self, outcome: Outcome, info: &ConversationInfo) -> Outcome {
        match outcome {
            Outcome::Missing { reason }
                if info.end.is_none() && (reason == "404" || reason == NOT_READY) =>
            {
                Outcome::Missing {
                    reason: ONGOING.into(),
                }
            }
            Outcome::Missing { reason } if reason == "404" && info.media == "voice" => {
                let pending = in_grace(info, self.opts.transcript_grace, Utc::now());
                Outcome::Missing {
                    reason: if pending {
                        TRANSCRIPT_PENDING
                    } else {
                        UNTRANSCRIBED
                    }
                    .into(),
                }
            }
            other => other,
        }
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
            // A record without an id or with an unreadable start is refused by name; the rest
            // of the page is staged (one bad record must not block the interval forever).
            let info = match analytics::conversation_info(&record) {
                Ok(info) => info,
                Err(reason) => {
                    tracing::warn!(url, page, "refusing a conversation record: {reason}");
                    self.progress.println(format!(
                        "fetch: warning: page {page} of {url}: refusing a conversation record: {reason}"
                    ));
                    self.summary.refused_records += 1;
                    if self.summary.refused.len() < 5 {
                        self.summary
                            .refused
                            .push(format!("page {page} of {url}: {reason}"));
                    }
                    continue;
                }
            };
            if !self.wanted(&info) || !ids.insert(info.id.clone()) {
                continue;
            }
            if !self.erased.is_empty() {
                let hash = crate::lake::events::erased_hash(&info.id);
                if self.erased.contains(&hash) {
                    if !self.opts.restore {
                        self.summary.erased_skipped += 1;
                        continue;
                    }
                    self.restored.insert(hash);
                }
            }
            warn_odd_start(&info, &self.progress);
            let mut record = record;
            if let Some(m) = &self.opts.mask {
                m.json_value(&mut record);
            }
            let bytes = serde_json::to_vec(&record).map_err(|e| bad(e.to_string()))?;
            items.push(Item {
                record_hash: content_hash(&bytes),
                attempts: self
                    .attempts
                    .get(&fingerprint(&info.id))
                    .copied()
                    .unwrap_or(0),
                info,
                record,
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
                        let outcome = this.pending_or_untranscribed(this.text(info).await?, info);
                        digest(outcome, info.clone(), this.opts.mask.clone())
                            .await
                            .map_err(bad)
                    };
                    (n, fetched.await)
                })
                .buffer_unordered(self.opts.concurrency.max(1))
                .collect()
                .await;
        outcomes.sort_by_key(|(n, _)| *n);
        let outcomes = outcomes.into_iter().map(|(_, o)| o);
        let mut result = PageResult {
            masked: self.opts.mask.as_ref().map(|m| m.id()),
            ..Default::default()
        };
        let mut entries = Vec::new();
        let mut texts: Vec<(usize, Result<Vec<Utterance>, String>)> = Vec::new();
        let mut bodies: Vec<Bytes> = Vec::new();
        for (&k, fetched) in asks.iter().zip(outcomes) {
            let Fetched {
                outcome,
                stored,
                body,
                utterances,
            } = fetched?;
            let stored = stored.unwrap_or_default();
            let item = &items[k];
            let id = fingerprint(&item.info.id);
            let attempts = item.attempts.saturating_add(1);
            self.attempts.insert(id, attempts);
            let (text, communication_id) = match &outcome {
                Outcome::Voice { documents } => {
                    result.transcripts += 1;
                    // The first document's communication; each utterance row has its own.
                    let first = documents.first().map(|d| d.communication_id.clone());
                    (format!("doc:{stored}"), first)
                }
                Outcome::Digital { .. } => {
                    result.transcripts += 1;
                    (format!("recordings:{stored}"), None)
                }
                Outcome::Missing { reason } => {
                    if reason == NOT_READY && attempts < self.opts.not_ready.attempts {
                        let mut again = item.clone();
                        again.attempts = attempts;
                        let now = Instant::now();
                        let due = now.checked_add(self.opts.not_ready.wait).unwrap_or(now);
                        self.deferred.push((due, again));
                    } else {
                        result.missing += 1;
                    }
                    result.missing_texts.push(MissingText {
                        conversation_id: item.info.id.clone(),
                        reason: reason.clone(),
                        attempts,
                    });
                    (format!("missing:{reason}"), None)
                }
            };
            match &outcome {
                Outcome::Missing { reason } => {
                    self.without_text.insert(id, reason.clone());
                }
                _ => {
                    self.without_text.remove(&id);
                }
            }
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
            bodies.extend(body);
            texts.push((k, utterances));
        }
        self.summary.transcripts += result.transcripts;
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
        // Cursors of the current job seen so far: a repeated one would page forever.
        let mut seen: HashSet<String> = cursor.iter().cloned().collect();
        let mut resubmits = 0u32;
        let (poll_max, timeout) = (self.opts.job_poll_max, self.opts.job_timeout);
        loop {
            let job_id = match &job {
                Some(j) => j.clone(),
                None => {
                    let submitted = async {
                        let j = analytics::submit_job(client, iv, &self.opts.media).await?;
                        analytics::wait_for_job(client, &j, poll_max, timeout).await?;
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
                    resubmits += 1;
                    if resubmits > MAX_RESUBMITS {
                        self.flush_pending(&log, iv, writing.take()).await?;
                        return Err(FetchError::JobResubmitted {
                            interval: iv.iso(),
                            job: job_id,
                            times: resubmits,
                        });
                    }
                    tracing::info!(job = %job_id, "the recorded job is gone; submitting a new one");
                    (page, job, cursor) = (0, None, None);
                    seen.clear();
                    continue;
                }
                Err(e) => {
                    self.flush_pending(&log, iv, writing.take()).await?;
                    return Err(e.into());
                }
            };
            let url = analytics::results_path(&job_id, cursor.as_deref(), self.opts.page_size);
            let listed = results.conversations.len() as u64;
            let mut next = results.cursor.filter(|c| !c.is_empty());
            // A cursor sent again: this page is staged as the job's last (so a re-run lists the
            // interval again with a new job, instead of resuming into the loop), then the fetch
            // stops with an error.
            let repeated = next.take_if(|c| !seen.insert(c.clone()));
            let size = self.opts.page_size;
            let following = async {
                match &next {
                    Some(c) => Some(analytics::job_page(client, &job_id, Some(c), size).await),
                    None => None,
                }
            };
            // The page is staged in batches of `batch_size`: the next listing page is asked for
            // while the first batch's texts are fetched, and each batch is written while the
            // next one's texts are fetched.
            let mut records = results.conversations;
            let mut chunks = Vec::new();
            let size_of_batch = self.opts.batch_size.max(1);
            while records.len() > size_of_batch {
                let rest = records.split_off(size_of_batch);
                chunks.push(std::mem::replace(&mut records, rest));
            }
            chunks.push(records);
            let batches = chunks.len();
            let mut following = Some(following);
            for (b, chunk) in chunks.into_iter().enumerate() {
                let ask_ahead = async {
                    match following.take() {
                        Some(f) => Some(f.await),
                        None => None,
                    }
                };
                let (prepared, asked, flushed) = futures::join!(
                    self.prepare_page(chunk, &url, page),
                    ask_ahead,
                    flush(lake, &log, &run, iv, writing.take()),
                );
                // The previous batch is recorded even when this one failed.
                if let Some((new, utterances)) = flushed? {
                    self.count_written(new, utterances);
                }
                if let Some(a) = asked {
                    ahead = a;
                }
                let (r, batch) = prepared?;
                totals.1 += r.transcripts;
                totals.2 += r.missing;
                writing = Some(Pending {
                    result: r,
                    batch,
                    page,
                    job: job_id.clone(),
                    next: next.clone(),
                    listed,
                    checkpoint: b + 1 == batches,
                });
            }
            // (It borrows the cursor and the job id; it was awaited with the first batch.)
            drop(following);
            totals.0 += listed;
            self.summary.pages += 1;
            self.progress.update(&self.summary, &self.client.stats());
            match next {
                Some(c) => {
                    cursor = Some(c);
                    page += 1;
                }
                None => {
                    self.flush_pending(&log, iv, writing.take()).await?;
                    return match repeated {
                        Some(cursor) => Err(FetchError::CursorRepeated {
                            job: job_id,
                            interval: iv.iso(),
                            cursor,
                        }),
                        None => Ok(()),
                    };
                }
            }
        }
    }

    /// Lists one interval with the synchronous query, splitting it when the API refuses it
    /// (over 100,000 results or too long). Resumes from the recorded checkpoint `part#number`
    /// (see [`query_checkpoint`]): parts are listed in time order, so what is left is that part
    /// from that page on, then the rest of the interval after it.
    async fn interval_by_query(
        &mut self,
        iv: &Interval,
        resume: Option<(u64, Option<String>, Option<String>)>,
        totals: &mut (u64, u64, u64),
    ) -> Result<(), FetchError> {
        let log = self.lake.events();
        let size = self.opts.page_size.clamp(1, analytics::QUERY_MAX_PAGE);
        let from = resume.and_then(|(page, _, next)| {
            let (part, number) = parse_query_checkpoint(next.as_deref()?, iv)?;
            Some((page, part, number))
        });
        // Parts still to list, the next one last.
        let (mut queue, mut page_no, mut first_number) = match from {
            Some((page, part, number)) => {
                tracing::info!(part = %part.iso(), number, "resuming the details query");
                let rest = Interval {
                    start: part.end,
                    end: iv.end,
                };
                let mut q = Vec::new();
                if rest.start < rest.end {
                    q.push(rest);
                }
                q.push(part);
                (q, page, Some(number))
            }
            None => (vec![*iv], 0u64, None),
        };
        while let Some(part) = queue.pop() {
            let mut number = first_number.take().unwrap_or(1);
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
                // The checkpoint: the next page of this part, else the first of the next part.
                let next = match last {
                    false => Some(query_checkpoint(&part, number.saturating_add(1))),
                    true => queue.last().map(|q| query_checkpoint(q, 1)),
                };
                log.append(page_events(
                    &self.run,
                    iv,
                    page_no,
                    None,
                    next,
                    &r,
                    Some(listed),
                ))
                .await?;
                page_no += 1;
                if last {
                    break;
                }
                number = number.checked_add(1).ok_or_else(|| FetchError::BadPage {
                    url: analytics::QUERY_PATH.into(),
                    page: page_no,
                    reason: "the details query never reached its last page".into(),
                })?;
            }
        }
        Ok(())
    }
}

/// Warns, naming the conversation, about a start before 1970 or more than a day in the future:
/// kept as it is (its day is counted as given), but likely a damaged record.
fn warn_odd_start(info: &ConversationInfo, progress: &Progress) {
    let now = Utc::now();
    let future = now
        .checked_add_signed(chrono::Duration::days(1))
        .unwrap_or(now);
    if info.start.timestamp() < 0 || info.start > future {
        progress.println(format!(
            "fetch: warning: conversation {} starts at {}, {}; kept as it is",
            info.id,
            info.start
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            if info.start > future {
                "in the future"
            } else {
                "before 1970"
            }
        ));
    }
}

/// Fetches every interval of the range into the lake (see the module docs).
pub async fn fetch(
    lake: &Lake,
    client: &ApiClient,
    opts: &AnalyticsOptions,
) -> Result<FetchSummary, FetchError> {
    for m in &opts.media {
        if !MEDIA_TYPES.contains(&m.as_str()) {
            return Err(FetchError::BadMedia(m.clone()));
        }
    }
    let started = Instant::now();
    let log = lake.events();
    let history = log.read_all().await?;
    let run = run_key(opts);
    let resume = resume_point(&history, &run);
    let (held, unread) = load_held(lake, &history).await?;
    let intervals = Interval::split(opts.start, opts.end, opts.interval);
    let resume = resume.unwrap_or_default();
    // Recordings an earlier attempt of this run was still waiting for, and transcripts any
    // fetch is still waiting for: asked again (when due), whether or not their interval is
    // listed again.
    let pending = pending_transcripts(&history);
    let waiting = asked_again(lake, &resume, &pending, &held, &unread, opts).await?;
    drop(unread);
    let mut attempts = HashMap::new();
    let mut without_text = HashMap::new();
    for (id, (reason, n, _)) in &resume.texts {
        let fp = fingerprint(id);
        attempts.insert(fp, *n);
        if held.get(&fp).is_some_and(|h| h.missing) {
            without_text.insert(fp, reason.clone());
        }
    }
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
        deferred: waiting,
        attempts,
        without_text,
        summary: FetchSummary {
            masked: opts.mask.as_ref().map(|m| m.id()),
            ..Default::default()
        },
        progress: Progress::new(intervals.len() as u64, skipped),
        erased: crate::lake::events::erased_conversations(&history),
        restored: Default::default(),
    };
    if !resume.done.is_empty() || !resume.partial.is_empty() || !resume.texts.is_empty() {
        stage.summary.resumed_runs = 1;
        stage.progress.println(format!(
            "fetch: resuming an unfinished run ({} intervals already done, {} conversations still waiting for their recordings)",
            resume.done.len(),
            stage.deferred.len()
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
                        Ok(j) => {
                            analytics::wait_for_job(client, &j, opts.job_poll_max, opts.job_timeout)
                                .await
                                .map(|()| j)
                        }
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
            Listing::Query => {
                stage
                    .interval_by_query(iv, resume.partial.get(&key).cloned(), &mut totals)
                    .await?
            }
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
        let mut events = Vec::new();
        if let Some((snapshot, new)) = &r.snapshot {
            events.push(EventKind::Snapshot {
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
                masked: r.masked.clone(),
            });
        }
        events.extend(texts_missing_event(&run, &r));
        if !events.is_empty() {
            log.append(events).await?;
        }
    }
    for reason in stage.without_text.values() {
        *stage
            .summary
            .missing_by_reason
            .entry(reason.clone())
            .or_default() += 1;
    }
    stage.summary.missing_transcripts = stage.without_text.len() as u64;
    let replaced = replaced_snapshots(lake, &history, &stage.held).await?;
    if !replaced.is_empty() {
        stage.progress.println(format!(
            "fetch: {} quarantined snapshot(s) fully staged again; retired from the lake's gaps",
            replaced.len()
        ));
        log.append(vec![EventKind::SnapshotsReplaced {
            snapshots: replaced,
        }])
        .await?;
    }
    if !stage.restored.is_empty() {
        stage.summary.restored = stage.restored.len() as u64;
        log.append(vec![EventKind::Restored {
            conversations: std::mem::take(&mut stage.restored).into_iter().collect(),
        }])
        .await?;
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

    /// What the fake details-jobs server answers for results.
    #[derive(Clone, Copy)]
    enum Results {
        /// Every page, whatever the cursor, sends cursor `loop` again.
        RepeatCursor,
        /// The first page of a job sends cursor `c1`; `c1` answers 404 (the job expired).
        ExpireAfterFirstPage,
    }

    /// A fake Genesys API for the details jobs: token, availability, submit, FULFILLED status,
    /// results as `mode` says. Returns the base URL and the count of submitted jobs.
    async fn fake_jobs_api(
        mode: Results,
    ) -> (String, std::sync::Arc<std::sync::atomic::AtomicU64>) {
        use axum::response::IntoResponse;
        use std::sync::atomic::Ordering;
        let submitted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let count = submitted.clone();
        let handler = move |req: axum::extract::Request| {
            let count = count.clone();
            async move {
                let path = req.uri().path().to_string();
                let query = req.uri().query().unwrap_or("").to_string();
                let json = |status: u16, body: String| {
                    (
                        axum::http::StatusCode::from_u16(status).unwrap(),
                        [("content-type", "application/json")],
                        body,
                    )
                        .into_response()
                };
                if path == "/oauth/token" {
                    return json(200, r#"{"access_token":"t","expires_in":86400}"#.into());
                }
                if path.ends_with("/jobs/availability") {
                    return json(
                        200,
                        r#"{"dataAvailabilityDate":"2030-01-01T00:00:00Z"}"#.into(),
                    );
                }
                if req.method() == axum::http::Method::POST {
                    let n = count.fetch_add(1, Ordering::SeqCst);
                    return json(202, format!(r#"{{"jobId":"job{n}"}}"#));
                }
                if !path.ends_with("/results") {
                    return json(200, r#"{"state":"FULFILLED"}"#.into());
                }
                let has_cursor = query.contains("cursor=");
                match mode {
                    Results::RepeatCursor => {
                        json(200, r#"{"conversations":[],"cursor":"loop"}"#.into())
                    }
                    Results::ExpireAfterFirstPage if has_cursor => json(
                        404,
                        r#"{"message":"job not found","code":"not.found","status":404}"#.into(),
                    ),
                    Results::ExpireAfterFirstPage => {
                        json(200, r#"{"conversations":[],"cursor":"c1"}"#.into())
                    }
                }
            }
        };
        let app = axum::Router::new().fallback(handler);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, submitted)
    }

    fn options() -> AnalyticsOptions {
        AnalyticsOptions {
            start: "2026-03-01T00:00:00Z".parse().unwrap(),
            end: "2026-03-02T00:00:00Z".parse().unwrap(),
            started_after: None,
            media: vec!["voice".into()],
            listing: Listing::Jobs,
            interval: chrono::Duration::days(1),
            page_size: 10,
            batch_size: 100,
            transcript_grace: chrono::Duration::hours(72),
            concurrency: 1,
            job_poll_max: Duration::from_millis(10),
            job_timeout: Duration::from_secs(5),
            not_ready: NotReadyPolicy::default(),
            mask: None,
            restore: false,
        }
    }

    fn client(url: &str) -> ApiClient {
        ApiClient::new(
            crate::genesys::Endpoints::resolve("x", Some(url), None).unwrap(),
            crate::genesys::Credentials {
                client_id: "id".into(),
                client_secret: crate::secret::Secret::new("s"),
            },
            crate::genesys::RetryPolicy {
                max_attempts: 2,
                base_delay: Duration::from_millis(1),
                ..Default::default()
            },
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_repeated_cursor_ends_the_fetch_and_a_rerun_lists_the_interval_with_a_new_job() {
        let (url, submitted) = fake_jobs_api(Results::RepeatCursor).await;
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open_local(dir.path()).unwrap();
        let c = client(&url);
        let e = fetch(&lake, &c, &options()).await.unwrap_err();
        assert!(
            matches!(&e, FetchError::CursorRepeated { cursor, .. } if cursor == "loop"),
            "{e}"
        );
        assert!(e.to_string().contains("re-run"), "{e}");
        // Two pages (the first, then the one at the cursor that came back), then the stop.
        assert!(c.stats().requests < 10, "{:?}", c.stats());
        let events = lake.events().read_all().await.unwrap();
        let run = run_key(&options());
        let r = resume_point(&events, &run).unwrap();
        let (_, _, next) = &r.partial
            [&Interval::split(options().start, options().end, options().interval)[0].iso()];
        assert_eq!(
            next, &None,
            "the last page is recorded without the repeated cursor"
        );
        // The re-run submits a new job for the interval (and meets the same broken server).
        let before = submitted.load(std::sync::atomic::Ordering::SeqCst);
        assert!(matches!(
            fetch(&lake, &c, &options()).await,
            Err(FetchError::CursorRepeated { .. })
        ));
        assert_eq!(
            submitted.load(std::sync::atomic::Ordering::SeqCst),
            before + 1
        );
    }

    #[tokio::test]
    async fn a_job_that_keeps_expiring_is_resubmitted_three_times_then_an_error() {
        let (url, submitted) = fake_jobs_api(Results::ExpireAfterFirstPage).await;
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open_local(dir.path()).unwrap();
        let e = fetch(&lake, &client(&url), &options()).await.unwrap_err();
        assert!(
            matches!(&e, FetchError::JobResubmitted { times, .. } if *times == MAX_RESUBMITS + 1),
            "{e}"
        );
        // The first job and three resubmissions.
        assert_eq!(
            submitted.load(std::sync::atomic::Ordering::SeqCst),
            u64::from(MAX_RESUBMITS) + 1
        );
    }
}
