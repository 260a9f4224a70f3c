//! The event log: `events/<seq>.jsonl`, immutable numbered segments (20-digit zero-padded).
//!
//! A segment is created once with create-if-absent; a writer that loses the race for a number
//! takes the next one, so two writers never overwrite each other's events. Every other view of
//! the lake (which snapshots exist and in which order, which fetch runs finished) derives from it.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{Lake, LakeError};

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The segment number this event was written in.
    pub seq: u64,
    /// Position of the event inside its segment.
    pub index: u32,
    /// When it was written (UTC).
    pub time: DateTime<Utc>,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What an event records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// A page was received and is stored at `path` (written before this event).
    Snapshot {
        snapshot: String,
        path: String,
        source: String,
        /// The fetch run (a hash of source, range and filter) this page belongs to.
        run: String,
        /// 0-based page number within the run.
        page: u64,
        /// Where the next page is, if any: what a resumed run continues from.
        next: Option<String>,
        conversations: u64,
        utterances: u64,
        body_bytes: u64,
        /// False when the same page was already stored (same content, same name).
        new: bool,
        /// The masking rules its texts went through before anything was written (`pii-v1`,
        /// `pii-v1+<hash of the user patterns>`); absent when it was stored as received.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        masked: Option<String>,
    },
    /// An archive fetch of several runs (one per interaction type) began; a fetch of the same
    /// runs started again before all of them finished continues this one.
    FetchStarted { source: String, runs: Vec<String> },
    /// A fetch run saw its last page.
    FetchDone {
        run: String,
        source: String,
        interaction_type: String,
        from: String,
        to: String,
        pages: u64,
        conversations: u64,
    },
    /// A listing page of an analytics fetch was processed; its changed conversations (if any)
    /// are in `snapshot`. A resumed run continues after the last page of an unfinished interval.
    ListingPage {
        run: String,
        /// The interval (`start/end`, ISO-8601) the page belongs to.
        interval: String,
        /// 0-based page number within the interval.
        page: u64,
        /// The details job (jobs listing).
        job: Option<String>,
        /// What the next page is: the job's cursor, or the next page number of the query.
        next: Option<String>,
        conversations: u64,
        /// New or changed conversations staged from this page.
        changed: u64,
        snapshot: Option<String>,
    },
    /// An interval of an analytics fetch was listed completely.
    IntervalDone {
        run: String,
        source: String,
        listing: String,
        interval: String,
        media: String,
        conversations: u64,
        /// Transcripts (voice documents or digital recordings) fetched.
        transcripts: u64,
        /// Conversations whose text could not be had (voice 404, recordings never ready).
        missing_transcripts: u64,
        /// False when the interval ends after the data lake's `dataAvailabilityDate`.
        complete: bool,
    },
    /// Conversations of an analytics fetch asked for their text without getting it, and why
    /// (`not-ready`, `404`, `archived`, `error`, `none`), with the requests so far in this run.
    /// The conversations are staged without text (`missing:<reason>` in their manifest); a
    /// later attempt of the same run asks the `not-ready` ones again, even when every interval
    /// is done, until they have text or `attempts` reaches `--not-ready-attempts`.
    TextsMissing {
        run: String,
        source: String,
        conversations: Vec<MissingText>,
    },
    /// Recorded snapshots whose file was quarantined and whose every conversation a later fetch
    /// staged again: retired, so `extract` and `verify` no longer count them as gaps.
    SnapshotsReplaced { snapshots: Vec<String> },
    /// Mentions were extracted from snapshots with one dictionary version. The latest
    /// `extracted` (or `dictionary_selected`) event names the lake's current dictionary.
    Extracted {
        dictionary_version: String,
        snapshots: u64,
        mentions: u64,
        /// `i/n` when one shard of a sharded extract wrote these (absent otherwise).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        shard: Option<String>,
        /// Where the dictionary came from (its path, or "embedded …"); absent in lakes written
        /// before the lake kept its dictionaries.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dictionary_source: Option<String>,
        /// The lake path of the copy of its normalized content (`dictionaries/<version>.toml`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dictionary_copy: Option<String>,
        /// Recorded snapshots skipped because their file is absent (quarantined by `verify`).
        #[serde(default, skip_serializing_if = "is_zero")]
        missing_snapshots: u64,
    },
    /// `convlake dictionary use VERSION` made an already extracted version current again.
    DictionarySelected {
        dictionary_version: String,
        dictionary_source: String,
    },
    /// The aggregates of one dictionary version were built: one generation of two files, both
    /// named by their content and published by this event.
    Aggregated {
        dictionary_version: String,
        rows: u64,
        /// The hash of the generation (both files' hashes, in order).
        content_hash: String,
        /// The lake path of `mention_counts` and the blake3 of its bytes (absent in lakes
        /// written before generations: then `aggregates/dict=<v>/mention_counts.parquet`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mention_counts: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mention_counts_hash: Option<String>,
        /// The lake path of `conversation_mentions` and the blake3 of its bytes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        conversation_mentions: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        conversation_mentions_hash: Option<String>,
        /// The generation's other tables (`conversation_topics`, `product_topics`,
        /// `co_mentions`, `product_insights`) by name: each file's lake path and blake3. Empty in
        /// generations written before them (readers then see those tables empty).
        #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        tables: std::collections::BTreeMap<String, TableFile>,
    },
    /// Conversations were erased from the lake (`convlake forget`, `convlake retain`): every
    /// snapshot that held one was written again without it under a new name (`snapshots`: old
    /// → new), the old files are deleted, and readers see the new snapshot in the old one's
    /// place in the log (see [`apply_erasures`]). No id and no text is recorded: the erased
    /// conversations as [`erased_hash`] of their ids, their utterance texts as blake3 hashes
    /// (the proof `convlake verify --erased` looks for).
    Erased {
        /// `forget` or `retention`.
        reason: String,
        conversations: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        texts: Vec<String>,
        snapshots: Vec<Rewrite>,
        /// Event segments that named an erased conversation (in `texts_missing`): written
        /// again with the id replaced by its hash, the one rewrite of a segment there is.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        segments: Vec<String>,
        /// The dictionary versions that had mentions of the old snapshots: the new ones are
        /// extracted with each.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        versions: Vec<String>,
    },
    /// `fetch --restore` staged erased conversations again: later fetches no longer skip them.
    Restored { conversations: Vec<String> },
    /// The aggregates were synced to PostgreSQL.
    Synced {
        dictionary_version: String,
        content_hash: String,
        inserted: u64,
        updated: u64,
        deleted: u64,
        /// `host:port/database`, never user or password.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        database: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        schema: Option<String>,
        /// Rows of conversation_mentions inserted, updated or deleted.
        #[serde(default)]
        conversation_changes: u64,
    },
}

/// One file of an aggregates generation, as its `aggregated` event names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableFile {
    pub path: String,
    /// The blake3 of its bytes.
    pub hash: String,
}

/// One snapshot an erasure wrote again: the old name, the new one and its raw file, and what the
/// new one holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rewrite {
    pub old: String,
    pub new: String,
    pub path: String,
    pub conversations: u64,
    pub utterances: u64,
}

/// The name an erased conversation is recorded under: the blake3 of its id (with a prefix, so
/// it is never the hash of anything else the lake names).
pub fn erased_hash(conversation_id: &str) -> String {
    super::content_hash(format!("convlake-erased:{conversation_id}").as_bytes())
}

/// What an erased conversation's id is replaced with where a file must keep its place.
pub fn erased_placeholder(conversation_id: &str) -> String {
    format!("erased:{}", erased_hash(conversation_id))
}

/// The erased conversations (their [`erased_hash`]) that a later `fetch --restore` did not
/// bring back: fetches skip them.
pub fn erased_conversations(events: &[Event]) -> std::collections::HashSet<String> {
    let mut out = std::collections::HashSet::new();
    for e in events {
        match &e.kind {
            EventKind::Erased { conversations, .. } => out.extend(conversations.iter().cloned()),
            EventKind::Restored { conversations } => {
                for c in conversations {
                    out.remove(c);
                }
            }
            _ => {}
        }
    }
    out
}

/// Puts each erasure's new snapshots in the place of the old ones in the events before it
/// (snapshot events and listing pages), so that every reader sees the lake as if the erased
/// conversations had never been fetched: the order of copies (newest wins) is kept. Chained
/// erasures compose. Entries of `texts_missing` scrubbed by an erasure are left out.
pub fn apply_erasures(events: &mut [Event]) {
    if !events
        .iter()
        .any(|e| matches!(e.kind, EventKind::Erased { .. }))
    {
        return;
    }
    // Walking backwards, `map` holds what each name became by the erasures after this point.
    let mut map: std::collections::HashMap<String, Rewrite> = std::collections::HashMap::new();
    for e in events.iter_mut().rev() {
        match &mut e.kind {
            EventKind::Erased { snapshots, .. } => {
                for r in snapshots.iter() {
                    let to = map.get(&r.new).cloned().unwrap_or_else(|| r.clone());
                    map.insert(r.old.clone(), to);
                }
            }
            EventKind::Snapshot {
                snapshot,
                path,
                conversations,
                utterances,
                ..
            } => {
                if let Some(r) = map.get(snapshot.as_str()) {
                    snapshot.clone_from(&r.new);
                    path.clone_from(&r.path);
                    *conversations = r.conversations;
                    *utterances = r.utterances;
                }
            }
            EventKind::ListingPage {
                snapshot: Some(snapshot),
                ..
            } => {
                if let Some(r) = map.get(snapshot.as_str()) {
                    snapshot.clone_from(&r.new);
                }
            }
            EventKind::TextsMissing { conversations, .. } => {
                conversations.retain(|m| !m.conversation_id.starts_with("erased:"));
            }
            _ => {}
        }
    }
}

/// One conversation of a [`EventKind::TextsMissing`] event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingText {
    pub conversation_id: String,
    /// `not-ready`, `404`, `archived`, `error` or `none` (no recorded session to ask).
    pub reason: String,
    /// Requests for its text so far in this run (every attempt of the run counts).
    pub attempts: u32,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl EventKind {
    /// The `kind` tag as written in the log.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Snapshot { .. } => "snapshot",
            EventKind::FetchStarted { .. } => "fetch_started",
            EventKind::FetchDone { .. } => "fetch_done",
            EventKind::ListingPage { .. } => "listing_page",
            EventKind::IntervalDone { .. } => "interval_done",
            EventKind::TextsMissing { .. } => "texts_missing",
            EventKind::SnapshotsReplaced { .. } => "snapshots_replaced",
            EventKind::Extracted { .. } => "extracted",
            EventKind::DictionarySelected { .. } => "dictionary_selected",
            EventKind::Aggregated { .. } => "aggregated",
            EventKind::Erased { .. } => "erased",
            EventKind::Restored { .. } => "restored",
            EventKind::Synced { .. } => "synced",
        }
    }
}

/// Reader and appender of a lake's event log.
#[derive(Clone, Debug)]
pub struct EventLog {
    lake: Lake,
    /// The next segment number to try; learned from a listing, bumped on every write.
    next: Arc<AtomicU64>,
}

pub(super) const DIR: &str = "events";

pub(crate) fn segment_path(seq: u64) -> String {
    format!("{DIR}/{seq:020}.jsonl")
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let file = name.rsplit('/').next()?;
    let digits = file.strip_suffix(".jsonl")?;
    if digits.len() != 20 {
        return None;
    }
    digits.parse().ok()
}

impl EventLog {
    pub(super) fn new(lake: Lake) -> Self {
        EventLog {
            lake,
            next: Arc::new(AtomicU64::new(0)),
        }
    }

    async fn segment_numbers(&self) -> Result<Vec<u64>, LakeError> {
        let mut seqs: Vec<u64> = self
            .lake
            .list(DIR)
            .await?
            .iter()
            .filter_map(|m| parse_segment_name(m.location.as_ref()))
            .collect();
        seqs.sort_unstable();
        Ok(seqs)
    }

    /// True when the log has no segment: the lake was never written.
    pub async fn is_empty(&self) -> Result<bool, LakeError> {
        Ok(self.segment_numbers().await?.is_empty())
    }

    /// Appends events as one new segment and returns its number.
    pub async fn append(&self, kinds: Vec<EventKind>) -> Result<u64, LakeError> {
        if self.next.load(Ordering::SeqCst) == 0 {
            let last = self.segment_numbers().await?.last().copied().unwrap_or(0);
            self.next.fetch_max(last + 1, Ordering::SeqCst);
        }
        let time = Utc::now();
        loop {
            let seq = self.next.fetch_add(1, Ordering::SeqCst);
            let mut body = String::new();
            for (index, kind) in kinds.iter().enumerate() {
                let event = Event {
                    seq,
                    index: index as u32,
                    time,
                    kind: kind.clone(),
                };
                let line = serde_json::to_string(&event).map_err(|e| LakeError::Event {
                    path: segment_path(seq),
                    reason: e.to_string(),
                })?;
                body.push_str(&line);
                body.push('\n');
            }
            if self
                .lake
                .put_if_absent(&segment_path(seq), Bytes::from(body))
                .await?
            {
                return Ok(seq);
            }
            // Another writer took this number: learn the newest and try after it.
            let last = self.segment_numbers().await?.last().copied().unwrap_or(seq);
            self.next.fetch_max(last + 1, Ordering::SeqCst);
        }
    }

    /// Reads the whole log, oldest first, as every reader sees it: erasures applied (see
    /// [`apply_erasures`]).
    pub async fn read_all(&self) -> Result<Vec<Event>, LakeError> {
        let mut events = self.read_all_unapplied().await?;
        apply_erasures(&mut events);
        Ok(events)
    }

    /// Reads the whole log as written, oldest first. Segments are fetched a few at once (on an
    /// object store each is a request) and parsed in order.
    pub async fn read_all_unapplied(&self) -> Result<Vec<Event>, LakeError> {
        use futures::{StreamExt, TryStreamExt};
        let seqs = self.segment_numbers().await?;
        let segments: Vec<(String, Bytes)> = futures::stream::iter(seqs)
            .map(|seq| {
                let path = segment_path(seq);
                async move {
                    let bytes = self.lake.get(&path).await?;
                    Ok::<_, LakeError>((path, bytes))
                }
            })
            .buffered(READ_AHEAD)
            .try_collect()
            .await?;
        let mut out = Vec::new();
        for (path, bytes) in segments {
            for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let event: Event = serde_json::from_slice(line).map_err(|e| LakeError::Event {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                out.push(event);
            }
        }
        Ok(out)
    }
}

/// Segments fetched at once by `read_all`.
const READ_AHEAD: usize = 16;

/// The stored snapshots in the order they were first recorded: (snapshot hash, seq of first
/// event). Retired snapshots (see [`retired_snapshots`]) are left out.
pub fn snapshots_in_order(events: &[Event]) -> Vec<(String, u64)> {
    let retired = retired_snapshots(events);
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for e in events {
        if let EventKind::Snapshot { snapshot, .. } = &e.kind {
            if !retired.contains(snapshot) && seen.insert(snapshot.clone()) {
                out.push((snapshot.clone(), e.seq));
            }
        }
    }
    out
}

/// Snapshots a `snapshots_replaced` event retired: their file was quarantined and a later fetch
/// staged all their conversations again in other snapshots.
pub fn retired_snapshots(events: &[Event]) -> std::collections::HashSet<String> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::SnapshotsReplaced { snapshots } => Some(snapshots.iter().cloned()),
            _ => None,
        })
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seq: u64, kind: EventKind) -> Event {
        Event {
            seq,
            index: 0,
            time: Utc::now(),
            kind,
        }
    }

    fn snapshot(name: &str) -> EventKind {
        EventKind::Snapshot {
            snapshot: name.into(),
            path: format!("raw/{name}"),
            source: "archive".into(),
            run: "r".into(),
            page: 0,
            next: None,
            conversations: 3,
            utterances: 30,
            body_bytes: 1,
            new: true,
            masked: None,
        }
    }

    fn erased(pairs: &[(&str, &str)], ids: &[&str]) -> EventKind {
        EventKind::Erased {
            reason: "forget".into(),
            conversations: ids.iter().map(|i| erased_hash(i)).collect(),
            texts: Vec::new(),
            snapshots: pairs
                .iter()
                .map(|(o, n)| Rewrite {
                    old: o.to_string(),
                    new: n.to_string(),
                    path: format!("raw/{n}"),
                    conversations: 2,
                    utterances: 20,
                })
                .collect(),
            segments: Vec::new(),
            versions: Vec::new(),
        }
    }

    #[test]
    fn erasures_put_new_snapshots_in_the_old_ones_places_and_compose() {
        let mut events = vec![
            at(1, snapshot("a")),
            at(2, snapshot("b")),
            at(3, erased(&[("a", "a2")], &["x"])),
            at(4, erased(&[("a2", "a3"), ("b", "b2")], &["y"])),
            // Staged again after the erasures (`fetch --restore`): left as it is.
            at(5, snapshot("a")),
            at(
                6,
                EventKind::Restored {
                    conversations: vec![erased_hash("x")],
                },
            ),
        ];
        apply_erasures(&mut events);
        let order: Vec<String> = snapshots_in_order(&events)
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        assert_eq!(order, ["a3", "b2", "a"]);
        match &events[0].kind {
            EventKind::Snapshot {
                path,
                conversations,
                utterances,
                ..
            } => {
                assert_eq!(
                    (path.as_str(), *conversations, *utterances),
                    ("raw/a3", 2, 20)
                );
            }
            other => panic!("{other:?}"),
        }
        let still: Vec<String> = erased_conversations(&events).into_iter().collect();
        assert_eq!(still, [erased_hash("y")], "x was restored");
        assert_ne!(erased_hash("x"), erased_hash("y"));
        assert_eq!(
            erased_placeholder("x"),
            format!("erased:{}", erased_hash("x"))
        );
    }

    fn done(run: &str) -> EventKind {
        EventKind::FetchDone {
            run: run.into(),
            source: "archive".into(),
            interaction_type: "voice".into(),
            from: "2026-01-01".into(),
            to: "2026-01-02".into(),
            pages: 1,
            conversations: 1,
        }
    }

    #[tokio::test]
    async fn two_writers_never_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open_local(dir.path()).unwrap();
        let a = lake.events();
        let b = lake.events();
        let sa = a.append(vec![done("a")]).await.unwrap();
        let sb = b.append(vec![done("b")]).await.unwrap();
        let sa2 = a.append(vec![done("a2"), done("a3")]).await.unwrap();
        assert!(sa < sb && sb < sa2);
        let all = lake.events().read_all().await.unwrap();
        assert_eq!(all.len(), 4);
        assert_eq!(all[3].index, 1);
        let runs: Vec<_> = all
            .iter()
            .map(|e| match &e.kind {
                EventKind::FetchDone { run, .. } => run.clone(),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(runs, ["a", "b", "a2", "a3"]);
    }

    #[test]
    fn segment_names_are_zero_padded() {
        assert_eq!(segment_path(7), "events/00000000000000000007.jsonl");
        assert_eq!(
            parse_segment_name("events/00000000000000000007.jsonl"),
            Some(7)
        );
        assert_eq!(parse_segment_name("events/7.jsonl"), None);
    }
}
