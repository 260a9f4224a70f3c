//! What earlier fetches left to continue from, read from the event log and the lake: the
//! intervals and pages of an unfinished attempt of a run ([`resume_point`]), the checkpoints of
//! the query listing, the conversations the lake holds (by fingerprint, from the manifests),
//! the transcripts still pending, the quarantined snapshots staged again, the end of the last
//! complete interval (`--since-last`); and the reasons a conversation has no text.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::manifest::{body_path, Manifest, SOURCE};
use crate::genesys::analytics::Interval;
use crate::genesys::fetch::FetchError;
use crate::lake::events::EventKind;
use crate::lake::{snapshot_path, Event, Lake};

/// The reason recorded for recordings still being prepared.
pub(super) const NOT_READY: &str = "not-ready";
/// The reason recorded for a voice conversation whose recorded sessions have no STA transcript
/// (404) yet, inside `--transcript-grace`: later fetches ask it again.
pub const TRANSCRIPT_PENDING: &str = "transcript-pending";
/// The reason recorded for a voice conversation still without a transcript past the grace
/// window: it is not asked again unless a fetch lists it.
pub const UNTRANSCRIBED: &str = "untranscribed";
/// The reason recorded for a conversation still going on (no `conversationEnd`) whose text is
/// not there yet.
pub const ONGOING: &str = "ongoing";

/// The first 128 bits of a string's blake3: what the map of held conversations keeps instead
/// of the strings (ids, record hashes, text references), so that it takes about 60 bytes a
/// conversation instead of about 300 (a lake of 10 million conversations: 0.6 GB, not 3 GB).
pub(super) type Fingerprint = [u8; 16];

pub(super) fn fingerprint(s: &str) -> Fingerprint {
    let mut f = [0u8; 16];
    f.copy_from_slice(&blake3::hash(s.as_bytes()).as_bytes()[..16]);
    f
}

/// What the lake holds for a conversation: which record and which text (or reason it is
/// missing), compared by fingerprint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Held {
    pub(super) record: Fingerprint,
    text: Fingerprint,
    pub(super) missing: bool,
}

impl Held {
    pub(super) fn new(record: &str, text: &str) -> Held {
        Held {
            record: fingerprint(record),
            text: fingerprint(text),
            missing: text.starts_with("missing:"),
        }
    }

    /// Whether the lake holds exactly this record and text.
    pub(super) fn is(&self, record: &str, text: &str) -> bool {
        *self == Held::new(record, text)
    }
}

/// Held conversations by the fingerprint of their id.
pub(super) type HeldMap = HashMap<Fingerprint, Held>;

/// Where the record of a conversation held without text is: (the records file of its latest
/// manifest, its position there, its record hash). Kept only for conversations without text, so
/// a resumed run can ask them again without listing them.
pub(super) type Unread = HashMap<Fingerprint, (String, usize, String)>;

/// Where an unfinished run stopped.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Resume {
    pub(super) done: HashSet<String>,
    /// interval → (next page number, job, next cursor).
    pub(super) partial: HashMap<String, (u64, Option<String>, Option<String>)>,
    /// conversation id → the last `texts_missing` of this attempt of the run: (reason, requests
    /// so far, when it was recorded).
    pub(super) texts: HashMap<String, (String, u32, DateTime<Utc>)>,
}

/// The intervals already done and the pages already staged of the last unfinished attempt of
/// `run`; `None` when there is none (never started, or finished).
pub(super) fn resume_point(events: &[Event], run: &str) -> Option<Resume> {
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
            EventKind::TextsMissing {
                run: r,
                conversations,
                ..
            } if r == run => {
                let s = state.get_or_insert_with(Resume::default);
                for c in conversations {
                    s.texts.insert(
                        c.conversation_id.clone(),
                        (c.reason.clone(), c.attempts, e.time),
                    );
                }
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
/// Also returns where the records of the conversations held without text are.
pub(super) async fn load_held(
    lake: &Lake,
    events: &[Event],
) -> Result<(HeldMap, Unread), FetchError> {
    let mut held = HashMap::new();
    let mut unread = HashMap::new();
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
        for (i, c) in m.conversations.into_iter().enumerate() {
            let id = fingerprint(&c.conversation_id);
            let h = Held::new(&c.record, &c.text);
            if h.missing {
                unread.insert(id, (m.records.clone(), i, c.record));
            } else {
                unread.remove(&id);
            }
            held.insert(id, h);
        }
    }
    Ok((held, unread))
}

/// Recorded analytics snapshots whose raw file is gone (quarantined by `verify`) and whose
/// every conversation, by its manifest, the lake now holds in a present snapshot (this fetch
/// staged them again): the ones a `snapshots_replaced` event retires. Reads only the
/// manifests of absent snapshots, which are rare.
pub(super) async fn replaced_snapshots(
    lake: &Lake,
    events: &[Event],
    held: &HeldMap,
) -> Result<Vec<String>, FetchError> {
    let retired = crate::lake::events::retired_snapshots(events);
    let staged = lake.list_paths("raw/").await?;
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for e in events {
        let EventKind::Snapshot {
            snapshot, source, ..
        } = &e.kind
        else {
            continue;
        };
        if source != SOURCE
            || retired.contains(snapshot)
            || staged.contains(&snapshot_path(snapshot))
            || !seen.insert(snapshot.clone())
        {
            continue;
        }
        let path = body_path(snapshot);
        if !lake.exists(&path).await? {
            continue;
        }
        let Ok(m) = serde_json::from_slice::<Manifest>(&lake.get(&path).await?) else {
            continue;
        };
        if m.conversations
            .iter()
            .all(|c| held.contains_key(&fingerprint(&c.conversation_id)))
        {
            out.push(snapshot.clone());
        }
    }
    Ok(out)
}

/// The conversations whose newest `texts_missing` entry, of any analytics fetch, is
/// `transcript-pending`: (requests so far, when recorded), by id.
pub(super) fn pending_transcripts(events: &[Event]) -> HashMap<String, (u32, DateTime<Utc>)> {
    let mut out = HashMap::new();
    for e in events {
        let EventKind::TextsMissing {
            conversations,
            source,
            ..
        } = &e.kind
        else {
            continue;
        };
        if source != SOURCE {
            continue;
        }
        for c in conversations {
            if c.reason == TRANSCRIPT_PENDING {
                out.insert(c.conversation_id.clone(), (c.attempts, e.time));
            } else {
                out.remove(&c.conversation_id);
            }
        }
    }
    out
}

/// The plain name of a reason a conversation has no text (`not-ready` → "not ready").
pub fn reason_name(reason: &str) -> &str {
    match reason {
        NOT_READY => "not ready",
        TRANSCRIPT_PENDING => "transcript pending",
        "permission" => "no permission",
        "none" => "no recorded session",
        other => other,
    }
}

/// `" (not ready: 2, 404: 3)"`, the reasons of a count of conversations without text, for a
/// summary line (most useful first); empty when there is none.
pub fn reasons_text(by_reason: &std::collections::BTreeMap<String, u64>) -> String {
    const ORDER: [&str; 10] = [
        NOT_READY,
        TRANSCRIPT_PENDING,
        ONGOING,
        UNTRANSCRIBED,
        "archived",
        "gone",
        "permission",
        "404",
        "error",
        "none",
    ];
    // `error:<recordingErrorStatus>` ranks with `error`.
    let rank = |r: &str| {
        let kind = r.split(':').next().unwrap_or(r);
        ORDER.iter().position(|o| *o == kind).unwrap_or(ORDER.len())
    };
    let mut reasons: Vec<(&String, &u64)> = by_reason.iter().filter(|(_, n)| **n > 0).collect();
    if reasons.is_empty() {
        return String::new();
    }
    reasons.sort_by_key(|(r, _)| (rank(r), r.as_str()));
    let parts: Vec<String> = reasons
        .iter()
        .map(|(r, n)| format!("{}: {n}", reason_name(r)))
        .collect();
    format!(" ({})", parts.join(", "))
}

/// The query listing's checkpoint: the part of the interval being listed and its next page
/// number (from 1), `<start>/<end>#<number>`.
pub(super) fn query_checkpoint(part: &Interval, number: u32) -> String {
    format!("{}#{number}", part.iso())
}

/// Reads a [`query_checkpoint`]; `None` when it is not one, or not inside `iv` (then the
/// interval is listed again from its start).
pub(super) fn parse_query_checkpoint(next: &str, iv: &Interval) -> Option<(Interval, u32)> {
    let (range, number) = next.rsplit_once('#')?;
    let number: u32 = number.parse().ok().filter(|n| *n >= 1)?;
    let (a, b) = range.split_once('/')?;
    let t = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    };
    let part = Interval {
        start: t(a)?,
        end: t(b)?,
    };
    (part.start >= iv.start && part.end <= iv.end && part.start < part.end)
        .then_some((part, number))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::events::MissingText;

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
    fn query_checkpoints_round_trip_and_stay_inside_their_interval() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let iv = Interval {
            start: t("2026-03-01T00:00:00Z"),
            end: t("2026-03-08T00:00:00Z"),
        };
        let part = Interval {
            start: t("2026-03-02T00:00:00Z"),
            end: t("2026-03-03T00:00:00Z"),
        };
        let c = query_checkpoint(&part, 7);
        assert_eq!(parse_query_checkpoint(&c, &iv), Some((part, 7)));
        let outside = Interval {
            start: t("2026-02-28T00:00:00Z"),
            end: t("2026-03-02T00:00:00Z"),
        };
        assert_eq!(
            parse_query_checkpoint(&query_checkpoint(&outside, 2), &iv),
            None
        );
        for bad in [
            "",
            "x#1",
            &format!("{}#0", part.iso()),
            &format!("{}#-1", part.iso()),
        ] {
            assert_eq!(parse_query_checkpoint(bad, &iv), None, "{bad}");
        }
    }

    #[test]
    fn resume_remembers_the_texts_still_missing_of_the_unfinished_attempt() {
        let missing = |run: &str, id: &str, reason: &str, attempts| EventKind::TextsMissing {
            run: run.into(),
            source: SOURCE.into(),
            conversations: vec![MissingText {
                conversation_id: id.into(),
                reason: reason.into(),
                attempts,
            }],
        };
        let a = "2026-03-01T00:00:00.000Z/2026-03-02T00:00:00.000Z";
        let events = vec![
            ev(1, missing("r", "c1", NOT_READY, 1)),
            ev(2, missing("r", "c1", NOT_READY, 2)),
            ev(3, missing("x", "c2", NOT_READY, 1)),
            ev(4, done("r", a)),
        ];
        let r = resume_point(&events, "r").unwrap();
        assert_eq!(r.texts.len(), 1);
        assert_eq!(r.texts["c1"].0, NOT_READY);
        assert_eq!(r.texts["c1"].1, 2);
        // Only texts recorded: still an unfinished attempt.
        let r = resume_point(&events[..1], "r").unwrap();
        assert!(r.done.is_empty() && r.texts.contains_key("c1"));
        let mut by = std::collections::BTreeMap::new();
        by.insert("404".to_string(), 3);
        by.insert(NOT_READY.to_string(), 2);
        by.insert("archived".to_string(), 0);
        assert_eq!(reasons_text(&by), " (not ready: 2, 404: 3)");
        assert_eq!(reasons_text(&Default::default()), "");
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
