//! A listing page's batch: the texts received for its conversations (hashed and read into
//! utterances on arrival), the batch decided from them, and its writing (texts, records,
//! manifest, utterance rows; see [`super`] for the order), followed by its events
//! (`snapshot`, `listing_page`, `texts_missing`).

use arrow::array::RecordBatch;
use bytes::Bytes;
use serde_json::Value;

use super::manifest::{
    body_path, compress_texts, json_array, put_once, store_body, texts_path, Manifest,
    ManifestEntry, MANIFEST_FORMAT, SOURCE,
};
use crate::genesys::analytics::{ConversationInfo, Interval};
use crate::genesys::fetch::FetchError;
use crate::genesys::transcripts::{self, Outcome, Utterance};
use crate::lake::events::{EventKind, MissingText};
use crate::lake::schema::{self, RawRow, RawRowsBuilder};
use crate::lake::{content_hash, snapshot_path, EventLog, Lake};

/// A conversation's text as received, the hash it is stored under in `bodies/` (none when
/// there was no text), and its utterances, read as soon as the text arrived (an unreadable text
/// is an error of the page, reported once the page is assembled).
pub(super) struct Fetched {
    pub(super) outcome: Outcome,
    pub(super) stored: Option<String>,
    /// The text as it is stored (masked when the fetch masks), whose blake3 is `stored`.
    pub(super) body: Option<Bytes>,
    pub(super) utterances: Result<Vec<Utterance>, String>,
}

/// The utterances of a received text (phrases read on arrival are moved into them).
fn utterances_of(outcome: &mut Outcome, info: &ConversationInfo) -> Result<Vec<Utterance>, String> {
    match outcome {
        Outcome::Voice { documents } => transcripts::merge_voice(documents, info.start),
        Outcome::Digital { body } => {
            transcripts::digital_utterances(body, info.start, &info.customer_addresses)
        }
        Outcome::Missing { .. } => Ok(Vec::new()),
    }
}

/// Hashes a received text and reads its utterances on the blocking pool: the page's other
/// requests keep going on the runtime meanwhile, and two texts are read on two cores.
/// With `mask`, the stored body and the utterances are masked: the utterances are read from
/// the text as received (an e-mail's sender tells whose it is), then each is masked with the
/// same rules as the body's strings, so a stored voice body read again gives the same texts.
pub(super) async fn digest(
    mut outcome: Outcome,
    info: ConversationInfo,
    mask: Option<std::sync::Arc<crate::privacy::mask::Masker>>,
) -> Result<Fetched, String> {
    tokio::task::spawn_blocking(move || {
        let mut body = match &outcome {
            Outcome::Voice { documents } => Some(transcripts::voice_body(documents)),
            Outcome::Digital { body } => Some(body.clone()),
            Outcome::Missing { .. } => None,
        };
        let mut utterances = utterances_of(&mut outcome, &info);
        if let Some(m) = &mask {
            if let Some(b) = &body {
                if let Some(masked) = m.json(b)? {
                    body = Some(Bytes::from(masked));
                }
            }
            if let Ok(us) = &mut utterances {
                for u in us.iter_mut() {
                    if let std::borrow::Cow::Owned(t) = m.text(&u.text) {
                        u.text = t;
                    }
                }
            }
        }
        let stored = body.as_ref().map(|b| content_hash(b));
        Ok(Fetched {
            outcome,
            stored,
            body,
            utterances,
        })
    })
    .await
    .map_err(|e| format!("reading a received text failed: {e}"))?
}

/// What staging one page did.
#[derive(Default)]
pub(super) struct PageResult {
    pub(super) changed: u64,
    pub(super) snapshot: Option<(String, bool)>,
    pub(super) utterances: u64,
    pub(super) transcripts: u64,
    pub(super) missing: u64,
    /// The page's conversations asked for their text without getting it (`texts_missing`).
    pub(super) missing_texts: Vec<MissingText>,
    /// The masking rules its texts went through (see [`EventKind::Snapshot`]).
    pub(super) masked: Option<String>,
}

/// The `texts_missing` event of a page's conversations without text, if any.
pub(super) fn texts_missing_event(run: &str, r: &PageResult) -> Option<EventKind> {
    (!r.missing_texts.is_empty()).then(|| EventKind::TextsMissing {
        run: run.to_string(),
        source: SOURCE.into(),
        conversations: r.missing_texts.clone(),
    })
}

/// The events of a staged batch of `run`: its snapshot, its texts still missing and, for the
/// last batch of a listing page, the page's checkpoint (`checkpoint`: the page's conversations).
pub(super) fn page_events(
    run: &str,
    interval: &Interval,
    page: u64,
    job: Option<&str>,
    next: Option<String>,
    r: &PageResult,
    checkpoint: Option<u64>,
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
            masked: r.masked.clone(),
        });
    }
    if let Some(listed) = checkpoint {
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
    }
    events.extend(texts_missing_event(run, r));
    events
}

/// A staged batch still to be written, and its events still to be appended. A listing page is
/// staged as one or more batches; only its last one carries the page's checkpoint
/// (`listing_page`), so a crash between them re-lists the page, and the conversations already
/// staged cost nothing (they are held unchanged).
pub(super) struct Pending {
    pub(super) result: PageResult,
    pub(super) batch: Option<Batch>,
    pub(super) page: u64,
    pub(super) job: String,
    pub(super) next: Option<String>,
    /// Conversations on the listing page (counted on its checkpoint).
    pub(super) listed: u64,
    /// The page's last batch: append its `listing_page` checkpoint.
    pub(super) checkpoint: bool,
}

/// Writes a pending page's batch, then appends its events (so the checkpoint follows the
/// files). Returns, when it had a batch, whether the raw file was new and its utterances.
pub(super) async fn flush(
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
        checkpoint,
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
        &result,
        checkpoint.then_some(listed),
    ))
    .await?;
    Ok(counted)
}

/// A page's batch, decided (every text fetched and read) but not yet written.
pub(super) struct Batch {
    pub(super) url: String,
    pub(super) page: u64,
    pub(super) entries: Vec<ManifestEntry>,
    /// The texts of the entries that have one, in entry order, as received.
    pub(super) texts: Vec<Bytes>,
    /// The conversation records of the entries, in entry order.
    pub(super) records: Vec<Value>,
    pub(super) rows: Vec<(ConversationInfo, Vec<Utterance>)>,
}

/// Writes a batch: texts, records, manifest, rows (the caller records the events after).
/// Returns the snapshot, whether its raw file is new, and its utterances.
pub(super) async fn write_batch(
    lake: &Lake,
    batch: Batch,
) -> Result<(String, bool, u64), FetchError> {
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
                subtype: info.subtype.as_deref(),
            });
        }
    }
    out.finish()
}
