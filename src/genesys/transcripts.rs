//! The text of a conversation (GENESYS.md §2.2, §2.3):
//! - voice: every recorded voice session (a transferred or consulted call has several, each with
//!   its own transcript) is asked with
//!   `GET …/speechandtextanalytics/conversations/{id}/communications/{sessionId}/transcripturl`,
//!   then at once a plain GET of the presigned link (no bearer token; it expires in 10 minutes,
//!   so a 403 gets a new link). A 403 on `transcripturl` itself (the role lacks
//!   `speechAndTextAnalytics:data:view`) switches the run to the plural `…/transcripturls`,
//!   which needs only recording permissions and gives one link per recording. 404 means "no
//!   transcript" and a presigned 404 (`NoSuchKey`) "gone": outcomes, not errors. The documents
//!   are de-duplicated (same bytes, same recording, or same communication and transcripts) and
//!   their utterances merged in time order ([`merge_voice`]);
//! - chat, messaging, email: `GET /api/v2/conversations/{id}/recordings?formatId=NONE`, whose
//!   recordings carry `transcript`, `messagingTranscript` or `emailTranscript`; a 202 or an
//!   empty body means "still being prepared" and is asked again after a pause.
//!
//! The documents are turned into utterances: speaker, offset from the conversation start in
//! milliseconds, and text (`decoratedText` when present). Redaction tags stay as they are.
//! Speakers: `external` phrases are the customer's; an `internal` phrase is labelled with the
//! purpose (`agent`, `ivr`, `acd`) of the document's internal participant whose
//! `startTimeMs`–`endTimeMs` window holds the phrase's `startTimeMs`, and stays `agent` when no
//! window does; a phrase with no purpose is `unknown`.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;

use super::analytics::VoiceSession;
use super::archive::participant_role;
use super::http::PresignedError;
use super::{ApiClient, GenesysError};

/// One STA transcript document as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoiceDocument {
    /// The communication (session) it was asked for.
    pub communication_id: String,
    /// The recording it belongs to, when the plural `transcripturls` named it.
    pub recording_id: Option<String>,
    /// The document as received.
    pub document: Bytes,
    /// Its phrases when it has the common shape (read as it arrived; otherwise it is read the
    /// lenient way).
    pub phrases: Option<StaPhrases>,
}

/// What asking for a conversation's text gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The STA transcript documents of the recorded voice sessions that have one, de-duplicated,
    /// in the order the sessions were asked (never empty).
    Voice { documents: Vec<VoiceDocument> },
    /// The recordings list (with transcripts) of a digital conversation.
    Digital { body: Bytes },
    /// No text: `404` (no STA transcript for any recorded session, or no such conversation: it
    /// may appear later), `none` (no recorded session to ask), `gone` (the presigned link
    /// answered 404 / `NoSuchKey`: deleted with its recording), `permission` (a 403 no fallback
    /// cures), `not-ready` (the recordings stayed empty or 202), `archived` (only archived
    /// stubs, `fileState: ARCHIVED`), `error:<recordingErrorStatus>` (only recordings with an
    /// error status, e.g. `error:EMAIL_TRANSCRIPT_TOO_LARGE`).
    Missing { reason: String },
}

/// How patiently to wait for recordings still being prepared.
#[derive(Clone, Copy, Debug)]
pub struct NotReadyPolicy {
    /// Requests in all, the first included.
    pub attempts: u32,
    /// Pause between them.
    pub wait: Duration,
}

impl Default for NotReadyPolicy {
    /// MakingChatbots' numbers: every 10 s, up to 5 times.
    fn default() -> Self {
        NotReadyPolicy {
            attempts: 5,
            wait: Duration::from_secs(10),
        }
    }
}

/// The `transcripturl` path of one communication.
pub fn transcript_url_path(conversation: &str, communication: &str) -> String {
    format!(
        "/api/v2/speechandtextanalytics/conversations/{conversation}/communications/{communication}/transcripturl"
    )
}

/// The plural `transcripturls` path of one communication (one link per recording).
pub fn transcript_urls_path(conversation: &str, communication: &str) -> String {
    format!("{}s", transcript_url_path(conversation, communication))
}

/// The recordings path of a conversation, text only.
pub fn recordings_path(conversation: &str) -> String {
    format!("/api/v2/conversations/{conversation}/recordings?formatId=NONE")
}

fn json_ok(b: &[u8]) -> Result<(), String> {
    serde_json::from_slice::<serde::de::IgnoredAny>(b)
        .map(|_| ())
        .map_err(|e| format!("not valid JSON: {e}"))
}

/// Why a recorded session gave no document, worst last: a reason that may change (404)
/// outranks one that will not (gone), and one the user must act on (permission) outranks both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Miss {
    Gone,
    NotFound,
    Permission,
}

impl Miss {
    fn reason(self) -> &'static str {
        match self {
            Miss::Gone => "gone",
            Miss::NotFound => "404",
            Miss::Permission => "permission",
        }
    }
}

/// What one session's singular `transcripturl` gave.
enum Single {
    Document(VoiceDocument),
    Miss(Miss),
    /// 403: the role lacks `speechAndTextAnalytics:data:view`.
    Forbidden,
}

/// The message of a link that kept expiring before it was read.
fn kept_expiring(path: String, attempts: u32) -> GenesysError {
    GenesysError::GaveUp {
        url: path,
        status: 403,
        attempts,
        message: "the presigned transcript link kept expiring before it could be read (links last 10 minutes; is the machine's clock or the network very slow?)".into(),
    }
}

/// The STA transcripts of a voice conversation: every one of `sessions` is asked (recorded
/// customer sessions first), and the documents of those that have one are kept, de-duplicated
/// ([`dedup_documents`]). With none, the reason is the worst of the sessions' (`permission`,
/// then `404`, then `gone`), or `none` when there is no recorded session.
pub async fn voice(
    client: &ApiClient,
    conversation: &str,
    sessions: &[VoiceSession],
) -> Result<Outcome, GenesysError> {
    let mut documents = Vec::new();
    let mut recordings = HashSet::new();
    let mut worst: Option<Miss> = None;
    // The customer sessions asked so far: (start, whether they gave a transcript).
    let mut customer_legs: Vec<(Option<DateTime<Utc>>, bool)> = Vec::new();
    for session in sessions {
        let customer = matches!(session.purpose.as_str(), "customer" | "external");
        if !customer && covered(&customer_legs, session.start) {
            // An STA transcript holds both sides of its call: the agent's session of a leg
            // whose customer session was transcribed gives the same recording again. Not
            // asking saves a request (and a presigned GET) per recorded agent leg.
            continue;
        }
        let sid = session.id.as_str();
        let got = documents.len();
        let miss =
            session_documents(client, conversation, sid, &mut recordings, &mut documents).await?;
        if customer {
            customer_legs.push((session.start, documents.len() > got));
        }
        if documents.len() == got {
            worst = worst.max(miss);
        }
    }
    if !documents.is_empty() {
        return Ok(Outcome::Voice {
            documents: dedup_documents(documents),
        });
    }
    let reason = match worst {
        Some(m) => m.reason(),
        None if sessions.is_empty() => "none",
        // Every link named a recording already read: cannot happen with no document.
        None => "404",
    };
    Ok(Outcome::Missing {
        reason: reason.into(),
    })
}

/// Whether an agent (or other non-customer) session starting at `start` falls in a customer
/// leg that gave a transcript: the latest customer session that started at or before it did.
/// A session without a start is never covered (it is asked).
fn covered(customer_legs: &[(Option<DateTime<Utc>>, bool)], start: Option<DateTime<Utc>>) -> bool {
    let Some(start) = start else {
        return false;
    };
    customer_legs
        .iter()
        .filter_map(|(s, got)| s.map(|s| (s, *got)))
        .filter(|(s, _)| *s <= start)
        .max_by_key(|(s, _)| *s)
        .is_some_and(|(_, got)| got)
}

/// Asks one session's transcripts into `out`; the reason when it added none (`None` when its
/// recordings were all read already through another session).
async fn session_documents(
    client: &ApiClient,
    conversation: &str,
    sid: &str,
    recordings: &mut HashSet<String>,
    out: &mut Vec<VoiceDocument>,
) -> Result<Option<Miss>, GenesysError> {
    let state = client.voice_state();
    if !state.uses_plural() {
        match singular(client, conversation, sid).await? {
            Single::Document(d) => {
                out.push(d);
                return Ok(None);
            }
            Single::Miss(m) => return Ok(Some(m)),
            Single::Forbidden => {
                if state.switch_to_plural() {
                    tracing::warn!(
                        "transcripturl answered 403 (the OAuth client's role lacks speechAndTextAnalytics:data:view): this run asks transcripturls instead, which needs only recording:recording:view; add speechAndTextAnalytics:data:view to the role to use transcripturl"
                    );
                }
            }
        }
    }
    plural(client, conversation, sid, recordings, out).await
}

/// One session through the singular `transcripturl`.
async fn singular(
    client: &ApiClient,
    conversation: &str,
    sid: &str,
) -> Result<Single, GenesysError> {
    #[derive(Deserialize)]
    struct TranscriptUrl {
        url: String,
    }
    let validate_url = |b: &[u8]| {
        serde_json::from_slice::<TranscriptUrl>(b)
            .map(|_| ())
            .map_err(|e| format!("not a transcript URL: {e}"))
    };
    let path = transcript_url_path(conversation, sid);
    // A link that expired before we used it (a long pause) is asked for again, twice at most.
    for attempt in 1..=3 {
        let body = match client.send(Method::GET, &path, None, &validate_url).await {
            Ok(b) => b,
            Err(GenesysError::Rejected { status: 404, .. }) => {
                return Ok(Single::Miss(Miss::NotFound))
            }
            Err(GenesysError::Rejected { status: 403, .. }) => return Ok(Single::Forbidden),
            Err(e) => return Err(e),
        };
        let url = serde_json::from_slice::<TranscriptUrl>(&body)
            .map_err(|e| GenesysError::Malformed {
                url: path.clone(),
                attempts: 1,
                reason: e.to_string(),
            })?
            .url;
        match client.get_presigned(&url, read_sta).await {
            Ok((document, phrases)) => {
                return Ok(Single::Document(VoiceDocument {
                    communication_id: sid.to_string(),
                    recording_id: None,
                    document,
                    phrases,
                }))
            }
            Err(PresignedError::Expired) if attempt < 3 => continue,
            Err(PresignedError::Expired) => return Err(kept_expiring(path, attempt)),
            Err(PresignedError::Gone) => return Ok(Single::Miss(Miss::Gone)),
            Err(PresignedError::Failed(e)) => return Err(e),
        }
    }
    Err(kept_expiring(path, 3))
}

/// The plural `transcripturls` answer: `{conversation, communicationId, urls:[{recording:{id},
/// url}]}`. Entries without a link are skipped.
#[derive(Deserialize)]
struct TranscriptUrls {
    #[serde(default)]
    urls: Option<Vec<Value>>,
}

/// One session through the plural `transcripturls`: one document per recording, each recording
/// once in a conversation (`recordings`).
async fn plural(
    client: &ApiClient,
    conversation: &str,
    sid: &str,
    recordings: &mut HashSet<String>,
    out: &mut Vec<VoiceDocument>,
) -> Result<Option<Miss>, GenesysError> {
    let validate = |b: &[u8]| {
        serde_json::from_slice::<TranscriptUrls>(b)
            .map(|_| ())
            .map_err(|e| format!("not a list of transcript URLs: {e}"))
    };
    let path = transcript_urls_path(conversation, sid);
    let mut gone = false;
    let mut found = false;
    // Links that expired before they were read are asked for again, twice at most.
    for attempt in 1..=3 {
        let body = match client.send(Method::GET, &path, None, &validate).await {
            Ok(b) => b,
            Err(GenesysError::Rejected { status: 404, .. }) => return Ok(Some(Miss::NotFound)),
            Err(GenesysError::Rejected { status: 403, .. }) => {
                if client.voice_state().first_permission_refusal() {
                    tracing::warn!(
                        "transcripturls answered 403: add recording:recording:view (or recording:recordingSegment:view) to the OAuth client's role to read voice transcripts; until then they are counted missing (permission)"
                    );
                }
                return Ok(Some(Miss::Permission));
            }
            Err(e) => return Err(e),
        };
        let links: Vec<(Option<String>, String)> = serde_json::from_slice::<TranscriptUrls>(&body)
            .map_err(|e| GenesysError::Malformed {
                url: path.clone(),
                attempts: 1,
                reason: e.to_string(),
            })?
            .urls
            .unwrap_or_default()
            .iter()
            .filter_map(|u| {
                let url = u.get("url").and_then(Value::as_str)?.to_string();
                let rid = u
                    .get("recording")
                    .and_then(|r| r.get("id"))
                    .and_then(Value::as_str)
                    .map(String::from);
                Some((rid, url))
            })
            .collect();
        if links.is_empty() && !found && !gone {
            return Ok(Some(Miss::NotFound));
        }
        let mut expired = false;
        for (rid, url) in links {
            if rid.as_ref().is_some_and(|r| recordings.contains(r)) {
                // Read already (from another session's list, or before a link expired).
                found = true;
                continue;
            }
            match client.get_presigned(&url, read_sta).await {
                Ok((document, phrases)) => {
                    if let Some(r) = &rid {
                        recordings.insert(r.clone());
                    }
                    found = true;
                    out.push(VoiceDocument {
                        communication_id: sid.to_string(),
                        recording_id: rid,
                        document,
                        phrases,
                    });
                }
                Err(PresignedError::Expired) => expired = true,
                Err(PresignedError::Gone) => gone = true,
                Err(PresignedError::Failed(e)) => return Err(e),
            }
        }
        if !expired {
            return Ok(if found {
                None
            } else if gone {
                Some(Miss::Gone)
            } else {
                Some(Miss::NotFound)
            });
        }
        if attempt == 3 {
            return Err(kept_expiring(path, attempt));
        }
    }
    Err(kept_expiring(path, 3))
}

/// What tells two documents of a conversation apart: the `communicationId` inside (else the
/// session asked) and the sorted `transcriptId`s; `None` when it has no transcript ids.
fn document_identity(d: &VoiceDocument) -> Option<(String, Vec<String>)> {
    let (communication, mut ids) = match &d.phrases {
        Some(p) => (p.communication_id.clone(), p.transcript_ids.clone()),
        None => {
            let v: Value = serde_json::from_slice(&d.document).ok()?;
            let ids = v
                .get("transcripts")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|t| t.get("transcriptId").and_then(Value::as_str))
                .map(String::from)
                .collect();
            let c = v
                .get("communicationId")
                .and_then(Value::as_str)
                .map(String::from);
            (c, ids)
        }
    };
    if ids.is_empty() {
        return None;
    }
    ids.sort();
    Some((
        communication.unwrap_or_else(|| d.communication_id.clone()),
        ids,
    ))
}

/// The documents with repeats removed, the first kept: the same bytes, the same recording, or
/// the same `communicationId` and `transcriptId`s (two recordings of one session, or one
/// transcript reached through two sessions, would otherwise double every utterance).
pub fn dedup_documents(documents: Vec<VoiceDocument>) -> Vec<VoiceDocument> {
    let mut bytes = HashSet::new();
    let mut recordings = HashSet::new();
    let mut identities = HashSet::new();
    documents
        .into_iter()
        .filter(|d| {
            let new_bytes = bytes.insert(*blake3::hash(&d.document).as_bytes());
            let new_recording = d
                .recording_id
                .as_ref()
                .is_none_or(|r| recordings.insert(r.clone()));
            let new_identity = document_identity(d).is_none_or(|i| identities.insert(i));
            new_bytes && new_recording && new_identity
        })
        .collect()
}

/// What is stored for a voice conversation's text: its document as received, or, when it has
/// several, the JSON array of them in order (a document is an object, so the two never meet).
pub fn voice_body(documents: &[VoiceDocument]) -> Bytes {
    match documents {
        [one] => one.document.clone(),
        many => {
            let mut out = Vec::with_capacity(many.iter().map(|d| d.document.len() + 2).sum());
            out.push(b'[');
            for (i, d) in many.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(&d.document);
            }
            out.push(b']');
            Bytes::from(out)
        }
    }
}

/// The utterances of a voice conversation's documents (phrases read on arrival are moved out
/// of them), merged: one document's in phrase order; several documents' in time order (by
/// offset, stable; phrases without a time last), a phrase repeated in two documents (same
/// start, speaker and text) kept once. Each utterance carries its document's communication.
pub fn merge_voice(
    documents: &mut [VoiceDocument],
    conversation_start: DateTime<Utc>,
) -> Result<Vec<Utterance>, String> {
    let mut legs = Vec::with_capacity(documents.len());
    for d in documents.iter_mut() {
        let utterances = match d.phrases.take() {
            Some(p) => p.utterances(&d.communication_id, conversation_start),
            None => voice_utterances(&d.document, &d.communication_id, conversation_start)?,
        };
        legs.push(utterances.into_iter().map(|u| (u, ())).collect());
    }
    Ok(merge_legs(legs).into_iter().map(|(u, ())| u).collect())
}

/// The merge of [`merge_voice`], each utterance carrying something of its own along.
fn merge_legs<T>(legs: Vec<Vec<(Utterance, T)>>) -> Vec<(Utterance, T)> {
    if legs.len() == 1 {
        return legs.into_iter().next().unwrap_or_default();
    }
    let mut out: Vec<(Utterance, T)> = Vec::new();
    // (start, speaker, text) → the document it was first seen in.
    let mut seen: HashMap<(i64, &'static str, String), usize> = HashMap::new();
    for (n, leg) in legs.into_iter().enumerate() {
        for (u, extra) in leg {
            if let Some(start) = u.start_ms {
                let first = *seen
                    .entry((start, u.participant, u.text.clone()))
                    .or_insert(n);
                if first != n {
                    continue;
                }
            }
            out.push((u, extra));
        }
    }
    out.sort_by_key(|(u, _)| (u.start_ms.is_none(), u.start_ms));
    out
}

/// What Speech and Text Analytics said about one staged voice utterance: the sentiment of its
/// phrase (`analytics.sentiment[]`: −1, 0 or 1, kept as given to the thousandth and clamped to
/// −1…1; `None` when the phrase has no sentiment event) and the topics detected in it
/// (`analytics.topics[]`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PhraseAnalytics {
    pub sentiment: Option<f64>,
    pub topics: Vec<PhraseTopic>,
}

/// One STA topic detected in a phrase: its name and the words of the phrase that matched it
/// (`transcriptPhrase`; `None` when Genesys gave none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhraseTopic {
    pub name: String,
    pub phrase: Option<String>,
}

/// The utterances a fetch staged from a stored voice body (one document, or the JSON array of
/// several: [`voice_body`]), in the order of [`merge_voice`] (so position `i` is the row with
/// `utterance_index` `i`), each with its phrase's analytics. `Ok(None)` when a document is not
/// in the common shape (read the lenient way: no analytics are read from it).
pub fn voice_analytics(
    body: &[u8],
    conversation_start: DateTime<Utc>,
) -> Result<Option<Vec<(Utterance, PhraseAnalytics)>>, String> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let documents: Vec<&[u8]> = if first == Some(&b'[') {
        let many: Vec<&serde_json::value::RawValue> =
            serde_json::from_slice(body).map_err(|e| format!("not a list of documents: {e}"))?;
        many.into_iter().map(|d| d.get().as_bytes()).collect()
    } else {
        vec![body]
    };
    let mut legs = Vec::with_capacity(documents.len());
    for d in documents {
        let Some(phrases) = read_sta(d)? else {
            return Ok(None);
        };
        let Ok(analytics) = serde_json::from_slice::<AnalyticsDocument<'_>>(d) else {
            return Ok(None);
        };
        let extras = analytics.per_phrase();
        let utterances = phrases.utterances("", conversation_start);
        if extras.len() != utterances.len() {
            return Ok(None);
        }
        legs.push(utterances.into_iter().zip(extras).collect());
    }
    Ok(Some(merge_legs(legs)))
}

/// The fields of an STA document that [`voice_analytics`] reads besides the phrases.
#[derive(Deserialize)]
struct AnalyticsDocument<'a> {
    #[serde(default, borrow)]
    transcripts: Vec<AnalyticsTranscript<'a>>,
}

#[derive(Deserialize)]
struct AnalyticsTranscript<'a> {
    #[serde(default, borrow)]
    phrases: Vec<AnalyticsPhrase<'a>>,
    #[serde(default, borrow)]
    analytics: Option<TranscriptAnalytics<'a>>,
}

#[derive(Deserialize)]
struct AnalyticsPhrase<'a> {
    #[serde(default, borrow, rename = "decoratedText")]
    decorated_text: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    text: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "phraseIndex")]
    phrase_index: Option<i64>,
    #[serde(rename = "startTimeMs")]
    start_time_ms: Option<i64>,
}

#[derive(Deserialize)]
struct TranscriptAnalytics<'a> {
    #[serde(default)]
    sentiment: Vec<SentimentEvent>,
    #[serde(default, borrow)]
    topics: Vec<TopicEvent<'a>>,
}

#[derive(Deserialize)]
struct SentimentEvent {
    #[serde(rename = "phraseIndex")]
    phrase_index: Option<i64>,
    sentiment: Option<f64>,
}

#[derive(Deserialize)]
struct TopicEvent<'a> {
    #[serde(default, borrow, rename = "topicName")]
    topic_name: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "startTimeMs")]
    start_time_ms: Option<i64>,
    #[serde(default, borrow, rename = "transcriptPhrase")]
    transcript_phrase: Option<std::borrow::Cow<'a, str>>,
}

impl AnalyticsDocument<'_> {
    /// The analytics of every phrase [`read_sta`] keeps (those with text), in its order. A
    /// sentiment event belongs to the phrase whose `phraseIndex` it names (a phrase without
    /// that field is numbered by its position in its transcript); a topic to the phrase whose
    /// text is its `transcriptPhrase`, else to the one whose time span (its start to the next
    /// phrase's) holds the topic's start.
    fn per_phrase(&self) -> Vec<PhraseAnalytics> {
        let mut out = Vec::new();
        for t in &self.transcripts {
            let empty = TranscriptAnalytics {
                sentiment: Vec::new(),
                topics: Vec::new(),
            };
            let a = t.analytics.as_ref().unwrap_or(&empty);
            let sentiment: HashMap<i64, f64> = a
                .sentiment
                .iter()
                .filter_map(|e| {
                    let s = e.sentiment.filter(|s| s.is_finite())?;
                    Some((
                        e.phrase_index?,
                        (s.clamp(-1.0, 1.0) * 1000.0).round() / 1000.0,
                    ))
                })
                .collect();
            let texts: Vec<&str> = t
                .phrases
                .iter()
                .map(|p| {
                    p.decorated_text
                        .as_deref()
                        .filter(|s| !s.trim().is_empty())
                        .or(p.text.as_deref())
                        .unwrap_or("")
                })
                .collect();
            let mut topics: Vec<Vec<PhraseTopic>> = vec![Vec::new(); t.phrases.len()];
            for e in &a.topics {
                let Some(name) = e.topic_name.as_deref().filter(|n| !n.trim().is_empty()) else {
                    continue;
                };
                let phrase = e
                    .transcript_phrase
                    .as_deref()
                    .map(str::trim)
                    .filter(|tp| !tp.is_empty());
                // The phrase whose text is the topic's words; else the first that holds them
                // (Genesys quotes the words that matched, which may be part of a phrase).
                // Of the phrases that `fits`, the last to start by the topic's start (a phrase
                // said twice is told apart by time), else the first.
                let pick = |fits: &dyn Fn(usize) -> bool| {
                    let timed = e.start_time_ms.and_then(|at| {
                        (0..t.phrases.len()).rev().find(|&k| {
                            fits(k) && t.phrases[k].start_time_ms.is_some_and(|s| s <= at)
                        })
                    });
                    timed.or_else(|| (0..t.phrases.len()).find(|&k| fits(k)))
                };
                let by_text = phrase.and_then(|tp| {
                    pick(&|k| texts[k] == tp || t.phrases[k].text.as_deref() == Some(tp))
                        .or_else(|| pick(&|k| texts[k].contains(tp)))
                });
                let by_time = || {
                    let at = e.start_time_ms?;
                    t.phrases
                        .iter()
                        .enumerate()
                        .rposition(|(_, p)| p.start_time_ms.is_some_and(|s| s <= at))
                };
                if let Some(k) = by_text.or_else(by_time) {
                    if !topics[k].iter().any(|n| n.name == name) {
                        topics[k].push(PhraseTopic {
                            name: name.to_string(),
                            phrase: phrase.map(str::to_string),
                        });
                    }
                }
            }
            for (k, p) in t.phrases.iter().enumerate() {
                if texts[k].trim().is_empty() {
                    continue;
                }
                let index = p.phrase_index.unwrap_or(k as i64);
                out.push(PhraseAnalytics {
                    sentiment: sentiment.get(&index).copied(),
                    topics: std::mem::take(&mut topics[k]),
                });
            }
        }
        out
    }
}

/// The recordings (with transcripts) of a chat, messaging or email conversation.
pub async fn digital(
    client: &ApiClient,
    conversation: &str,
    policy: NotReadyPolicy,
) -> Result<Outcome, GenesysError> {
    let path = recordings_path(conversation);
    let validate = |b: &[u8]| {
        if b.iter().all(u8::is_ascii_whitespace) {
            Ok(())
        } else {
            json_ok(b)
        }
    };
    for attempt in 1..=policy.attempts.max(1) {
        let (status, body) = match client
            .send_status(Method::GET, &path, None, &validate)
            .await
        {
            Ok(r) => r,
            Err(GenesysError::Rejected { status: 404, .. }) => {
                return Ok(Outcome::Missing {
                    reason: "404".into(),
                })
            }
            Err(GenesysError::Rejected { status: 403, .. }) => {
                if client.voice_state().first_recordings_refusal() {
                    tracing::warn!(
                        "the conversation recordings answered 403: add recording:recording:view (or recording:recordingSegment:view) to the OAuth client's role to read chat, messaging and email text; until then it is counted missing (permission)"
                    );
                }
                return Ok(Outcome::Missing {
                    reason: "permission".into(),
                });
            }
            Err(e) => return Err(e),
        };
        let empty = body.iter().all(u8::is_ascii_whitespace)
            || serde_json::from_slice::<Vec<Value>>(&body).is_ok_and(|v| v.is_empty());
        if status != StatusCode::ACCEPTED && !empty {
            if let Some(reason) = no_text_reason(&body) {
                return Ok(Outcome::Missing { reason });
            }
            return Ok(Outcome::Digital { body });
        }
        if attempt < policy.attempts {
            tracing::debug!(conversation, attempt, "recordings still being prepared");
            tokio::time::sleep(policy.wait).await;
        }
    }
    Ok(Outcome::Missing {
        reason: "not-ready".into(),
    })
}

/// Why a recordings list holds no text at all, when it holds none: every recording is an
/// archived stub (`archived`: restore it in Genesys, then fetch again) or carries a
/// `recordingErrorStatus` (`error:<status>`, the first one's). GENESYS.md §2.3: neither is a
/// transcript.
fn no_text_reason(body: &[u8]) -> Option<String> {
    let recordings: Vec<Value> = serde_json::from_slice(body).ok()?;
    let has_text = |r: &Value| {
        ["transcript", "messagingTranscript", "emailTranscript"]
            .iter()
            .any(|k| {
                r.get(*k)
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty())
            })
    };
    if recordings.is_empty() || recordings.iter().any(has_text) {
        return None;
    }
    let archived = |r: &Value| {
        r.get("fileState")
            .and_then(Value::as_str)
            .is_some_and(|s| s.eq_ignore_ascii_case("ARCHIVED"))
    };
    let failure = |r: &Value| match r.get("recordingErrorStatus")? {
        Value::Null => None,
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(s.trim().to_string()),
        other => Some(other.to_string()),
    };
    let state = |r: &Value, want: &str| {
        r.get("fileState")
            .and_then(Value::as_str)
            .is_some_and(|s| s.eq_ignore_ascii_case(want))
    };
    if recordings
        .iter()
        .any(|r| state(r, "UPLOADING") || state(r, "RESTORING"))
    {
        // Being uploaded, or restored from the archive: the text comes once it is there.
        Some("not-ready".into())
    } else if recordings.iter().any(archived) {
        Some("archived".into())
    } else if let Some(status) = recordings.iter().find_map(failure) {
        Some(format!("error:{status}"))
    } else if recordings.iter().all(|r| state(r, "DELETED")) {
        Some("gone".into())
    } else {
        // Recordings without any transcript array and nothing that says why: their text is
        // still being prepared (never a silent success with no utterances).
        Some("not-ready".into())
    }
}

/// One utterance of a conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Utterance {
    /// customer, agent, ivr, acd or unknown.
    pub participant: &'static str,
    /// Milliseconds from the conversation start.
    pub start_ms: Option<i64>,
    pub text: String,
    /// The communication (session) the text belongs to.
    pub communication_id: Option<String>,
}

/// Epoch milliseconds, or an offset from the conversation start when the value is too small to
/// be a date (some documents use offsets). A difference out of range (hostile times, such as a
/// start in 1901 and a phrase in the year 200000) is no offset, never an overflow.
fn offset_ms(value: Option<i64>, origin_ms: i64) -> Option<i64> {
    value.and_then(|v| {
        if v > 100_000_000_000 {
            v.checked_sub(origin_ms)
        } else {
            Some(v)
        }
    })
}

/// The utterances of an STA transcript document, in phrase order. `conversation_start` is the
/// record's start, used when the document has no `conversationStartTime`.
pub fn voice_utterances(
    document: &[u8],
    communication_id: &str,
    conversation_start: DateTime<Utc>,
) -> Result<Vec<Utterance>, String> {
    match read_sta(document) {
        Ok(Some(phrases)) => Ok(phrases.utterances(communication_id, conversation_start)),
        _ => voice_utterances_lenient(document, communication_id, conversation_start),
    }
}

/// The phrases of an STA transcript document in the common shape: what convlake reads of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaPhrases {
    conversation_start_time: Option<i64>,
    /// The document's `communicationId` and `transcriptId`s (to tell repeated documents).
    communication_id: Option<String>,
    transcript_ids: Vec<String>,
    /// (speaker, `startTimeMs`, text) of every phrase with text.
    phrases: Vec<(&'static str, Option<i64>, String)>,
}

impl StaPhrases {
    /// The utterances, in phrase order. `conversation_start` is the record's start, used when
    /// the document has no `conversationStartTime`.
    pub fn utterances(
        self,
        communication_id: &str,
        conversation_start: DateTime<Utc>,
    ) -> Vec<Utterance> {
        let origin = self
            .conversation_start_time
            .unwrap_or_else(|| conversation_start.timestamp_millis());
        self.phrases
            .into_iter()
            .map(|(participant, start, text)| Utterance {
                participant,
                start_ms: offset_ms(start, origin),
                text,
                communication_id: Some(communication_id.to_string()),
            })
            .collect()
    }
}

/// An internal participant's time in the call (a document's `participants[]` entry).
#[derive(Clone, Copy, Debug)]
struct Window {
    role: &'static str,
    start: i64,
    end: Option<i64>,
}

/// The windows of a document's internal participants (agent, ivr, acd): those with a
/// `startTimeMs`; without `endTimeMs` a window lasts to the end of the call.
fn windows<'a>(
    participants: impl Iterator<Item = (Option<&'a str>, Option<i64>, Option<i64>)>,
) -> Vec<Window> {
    participants
        .filter_map(|(purpose, start, end)| {
            let role = participant_role(purpose);
            matches!(role, "agent" | "ivr" | "acd").then_some(Window {
                role,
                start: start?,
                end,
            })
        })
        .collect()
}

/// A phrase's speaker: `external` → customer; `internal` → the role of the internal
/// participant whose window holds the phrase's start (the latest-starting one when several do;
/// a window holds its start and its end, so at a hand-over the newcomer wins), else `agent`
/// (what STA's `internal` meant before windows were read); anything else as
/// [`participant_role`] maps it.
fn phrase_role(purpose: Option<&str>, start: Option<i64>, windows: &[Window]) -> &'static str {
    let internal = purpose.is_some_and(|p| p.trim().eq_ignore_ascii_case("internal"));
    if !internal {
        return participant_role(purpose);
    }
    start
        .and_then(|t| {
            windows
                .iter()
                .filter(|w| w.start <= t && w.end.is_none_or(|e| t <= e))
                .max_by_key(|w| w.start)
        })
        .map_or("agent", |w| w.role)
}

/// Reads a received STA document once: its phrases when it has the common shape (borrowed,
/// typed fields that skip what convlake does not use, the word-level detail being most of a
/// document), `None` for another shape of valid JSON (a field of another type, say: read the
/// lenient way later, which gives the same result for the common shape), an error when it is
/// not JSON at all (the body is asked for again).
pub fn read_sta(document: &[u8]) -> Result<Option<StaPhrases>, String> {
    let Ok(doc) = serde_json::from_slice::<StaDocument<'_>>(document) else {
        return json_ok(document).map(|()| None);
    };
    let windows = windows(
        doc.participants
            .iter()
            .map(|p| (p.purpose.as_deref(), p.start_time_ms, p.end_time_ms)),
    );
    let phrases = doc
        .transcripts
        .iter()
        .flat_map(|t| &t.phrases)
        .filter_map(|p| {
            let text = p
                .decorated_text
                .as_deref()
                .filter(|s| !s.trim().is_empty())
                .or(p.text.as_deref())
                .unwrap_or("");
            (!text.trim().is_empty()).then(|| {
                (
                    phrase_role(p.participant_purpose.as_deref(), p.start_time_ms, &windows),
                    p.start_time_ms,
                    text.to_string(),
                )
            })
        })
        .collect();
    Ok(Some(StaPhrases {
        conversation_start_time: doc.conversation_start_time,
        communication_id: doc.communication_id.map(|c| c.into_owned()),
        transcript_ids: doc
            .transcripts
            .iter()
            .filter_map(|t| t.transcript_id.as_deref().map(String::from))
            .collect(),
        phrases,
    }))
}

/// An STA transcript document, the fields convlake reads.
#[derive(Deserialize)]
struct StaDocument<'a> {
    #[serde(rename = "conversationStartTime")]
    conversation_start_time: Option<i64>,
    #[serde(default, borrow, rename = "communicationId")]
    communication_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    participants: Vec<StaParticipant<'a>>,
    #[serde(default, borrow)]
    transcripts: Vec<StaTranscript<'a>>,
}

#[derive(Deserialize)]
struct StaParticipant<'a> {
    #[serde(default, borrow, rename = "participantPurpose")]
    purpose: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "startTimeMs")]
    start_time_ms: Option<i64>,
    #[serde(rename = "endTimeMs")]
    end_time_ms: Option<i64>,
}

#[derive(Deserialize)]
struct StaTranscript<'a> {
    #[serde(default, borrow, rename = "transcriptId")]
    transcript_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    phrases: Vec<StaPhrase<'a>>,
}

#[derive(Deserialize)]
struct StaPhrase<'a> {
    #[serde(default, borrow, rename = "decoratedText")]
    decorated_text: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    text: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow, rename = "participantPurpose")]
    participant_purpose: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "startTimeMs")]
    start_time_ms: Option<i64>,
}

/// [`voice_utterances`] over a generic JSON value: missing or wrongly typed fields are skipped.
fn voice_utterances_lenient(
    document: &[u8],
    communication_id: &str,
    conversation_start: DateTime<Utc>,
) -> Result<Vec<Utterance>, String> {
    let doc: Value =
        serde_json::from_slice(document).map_err(|e| format!("not a transcript document: {e}"))?;
    let origin = doc
        .get("conversationStartTime")
        .and_then(Value::as_i64)
        .unwrap_or_else(|| conversation_start.timestamp_millis());
    let windows = windows(
        doc.get("participants")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|p| {
                (
                    p.get("participantPurpose").and_then(Value::as_str),
                    p.get("startTimeMs").and_then(Value::as_i64),
                    p.get("endTimeMs").and_then(Value::as_i64),
                )
            }),
    );
    let mut out = Vec::new();
    for t in doc
        .get("transcripts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for p in t
            .get("phrases")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let text = p
                .get("decoratedText")
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
                .or_else(|| p.get("text").and_then(Value::as_str))
                .unwrap_or("");
            if text.trim().is_empty() {
                continue;
            }
            let start = p.get("startTimeMs").and_then(Value::as_i64);
            out.push(Utterance {
                participant: phrase_role(
                    p.get("participantPurpose").and_then(Value::as_str),
                    start,
                    &windows,
                ),
                start_ms: offset_ms(start, origin),
                text: text.to_string(),
                communication_id: Some(communication_id.to_string()),
            });
        }
    }
    Ok(out)
}

/// A time given as an ISO-8601 string or as epoch milliseconds (a number or a string of digits).
fn time_ms(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse::<i64>().ok().or_else(|| {
            DateTime::parse_from_rfc3339(s)
                .ok()
                .map(|t| t.timestamp_millis())
        }),
        _ => None,
    }
}

fn email_address(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.to_ascii_lowercase()),
        Value::Object(o) => o
            .get("email")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase),
        _ => None,
    }
}

/// The utterances of a recordings list: chat `transcript`, `messagingTranscript` and
/// `emailTranscript` entries, in order. An email is the customer's when its sender is one of
/// `customer_addresses`.
pub fn digital_utterances(
    body: &[u8],
    conversation_start: DateTime<Utc>,
    customer_addresses: &[String],
) -> Result<Vec<Utterance>, String> {
    let recordings: Vec<Value> =
        serde_json::from_slice(body).map_err(|e| format!("not a list of recordings: {e}"))?;
    let origin = conversation_start.timestamp_millis();
    let at = |v: Option<&Value>| time_ms(v).and_then(|t| t.checked_sub(origin));
    let mut out = Vec::new();
    for r in &recordings {
        let session = r.get("sessionId").and_then(Value::as_str).map(String::from);
        let mut push = |participant, start_ms, text: Option<&str>| {
            if let Some(t) = text.filter(|t| !t.trim().is_empty()) {
                out.push(Utterance {
                    participant,
                    start_ms,
                    text: t.to_string(),
                    communication_id: session.clone(),
                });
            }
        };
        let entries = |key: &str| -> Vec<Value> {
            r.get(key)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        for m in entries("transcript") {
            let purpose = m.get("participantPurpose").and_then(Value::as_str);
            push(
                participant_role(purpose),
                at(m.get("utc")),
                m.get("body").and_then(Value::as_str),
            );
        }
        for m in entries("messagingTranscript") {
            let purpose = m.get("purpose").and_then(Value::as_str);
            push(
                participant_role(purpose),
                at(m.get("timestamp")),
                m.get("messageText").and_then(Value::as_str),
            );
        }
        for m in entries("emailTranscript") {
            let from = email_address(m.get("from"));
            let customer = from.is_some_and(|f| {
                customer_addresses
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(&f))
            });
            push(
                if customer { "customer" } else { "agent" },
                at(m.get("time")),
                m.get("textBody").and_then(Value::as_str),
            );
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases_become_utterances_with_offsets_and_decorated_text() {
        let doc = br#"{"conversationStartTime": 1772359200000, "transcripts": [{"phrases": [
            {"participantPurpose": "internal", "text": "hello how can i help", "startTimeMs": 1772359201000},
            {"participantPurpose": "external", "text": "my card is [card number]", "decoratedText": "My card is [card number].", "startTimeMs": 1772359205500},
            {"participantPurpose": "external", "text": "  "}
        ]}]}"#;
        let start: DateTime<Utc> = "2026-03-01T10:00:00Z".parse().unwrap();
        let u = voice_utterances(doc, "s1", start).unwrap();
        assert_eq!(u.len(), 2);
        assert_eq!((u[0].participant, u[0].start_ms), ("agent", Some(1000)));
        assert_eq!(u[1].participant, "customer");
        assert_eq!(u[1].text, "My card is [card number].");
        assert_eq!(u[1].start_ms, Some(5500));
        assert!(voice_utterances(b"{", "s", start).is_err());
    }

    #[test]
    fn odd_shapes_read_like_the_lenient_reader() {
        let start: DateTime<Utc> = "2026-03-01T10:00:00Z".parse().unwrap();
        let docs: [&[u8]; 6] = [
            // A string start time, a float offset, a numeric purpose: skipped, not fatal.
            br#"{"conversationStartTime": "soon", "transcripts": [{"phrases": [
                {"participantPurpose": 7, "text": "a", "startTimeMs": 1.5},
                {"participantPurpose": "external", "text": "b", "startTimeMs": 1772359201000}]}]}"#,
            br#"{"transcripts": {"not": "a list"}}"#,
            br#"{"transcripts": [{"phrases": null}, {"phrases": [{"text": "Acme \u00e9 \"x\""}]}]}"#,
            br#"{"transcripts": [{"phrases": [{"decoratedText": " ", "text": "plain", "words": [{"word": "plain", "confidence": 0.9}]}]}]}"#,
            br#"[]"#,
            br#"{}"#,
        ];
        let typed: [&[u8]; 3] = [
            // Participant windows: IVR, then the queue, then an agent; one without an end.
            br#"{"conversationStartTime": 1772359200000, "participants": [
                {"participantPurpose": "customer", "startTimeMs": 1772359200000, "endTimeMs": 1772359300000},
                {"participantPurpose": "ivr", "startTimeMs": 1772359200000, "endTimeMs": 1772359210000},
                {"participantPurpose": "acd", "startTimeMs": 1772359210000, "endTimeMs": 1772359220000},
                {"participantPurpose": "agent", "startTimeMs": 1772359220000}],
              "transcripts": [{"transcriptId": "t1", "phrases": [
                {"participantPurpose": "internal", "text": "press one", "startTimeMs": 1772359201000},
                {"participantPurpose": "internal", "text": "you are caller 3", "startTimeMs": 1772359210000},
                {"participantPurpose": "internal", "text": "hello", "startTimeMs": 1772359230000},
                {"participantPurpose": "external", "text": "hi", "startTimeMs": 1772359231000},
                {"participantPurpose": "internal", "text": "no time"},
                {"text": "nobody"}]}]}"#,
            // Windows without a start, or with a null end; an internal phrase before every window.
            br#"{"participants": [{"participantPurpose": "ivr", "endTimeMs": 5000},
                {"participantPurpose": "acd", "startTimeMs": 3000, "endTimeMs": null}],
              "transcripts": [{"phrases": [
                {"participantPurpose": "internal", "text": "early", "startTimeMs": 1000},
                {"participantPurpose": "internal", "text": "queued", "startTimeMs": 4000}]}]}"#,
            // No participants at all: internal stays agent.
            br#"{"transcripts": [{"phrases": [{"participantPurpose": "Internal", "text": "x", "startTimeMs": 1}]}]}"#,
        ];
        for doc in typed {
            assert!(
                read_sta(doc).unwrap().is_some(),
                "read the typed way: {}",
                String::from_utf8_lossy(doc)
            );
        }
        let roles = |doc: &[u8]| -> Vec<&'static str> {
            voice_utterances(doc, "s", start)
                .unwrap()
                .iter()
                .map(|u| u.participant)
                .collect()
        };
        assert_eq!(
            roles(typed[0]),
            ["ivr", "acd", "agent", "customer", "agent", "unknown"]
        );
        assert_eq!(roles(typed[1]), ["agent", "acd"]);
        assert_eq!(roles(typed[2]), ["agent"]);
        // A participant window of another type: the whole document is read the lenient way.
        let odd_window: &[u8] = br#"{"participants": [{"participantPurpose": "ivr", "startTimeMs": "0"}],
            "transcripts": [{"phrases": [{"participantPurpose": "internal", "text": "x", "startTimeMs": 1}]}]}"#;
        assert_eq!(read_sta(odd_window).unwrap(), None);
        assert_eq!(roles(odd_window), ["agent"]);
        for doc in docs.into_iter().chain(typed).chain([odd_window]) {
            assert_eq!(
                voice_utterances(doc, "s", start),
                voice_utterances_lenient(doc, "s", start),
                "{}",
                String::from_utf8_lossy(doc)
            );
        }
        let u = voice_utterances(docs[2], "s", start).unwrap();
        assert_eq!(u[0].text, "Acme é \"x\"");
        assert_eq!(
            voice_utterances(docs[3], "s", start).unwrap()[0].text,
            "plain"
        );
    }

    #[test]
    fn recordings_become_utterances() {
        let body = br#"[
          {"sessionId": "c", "media": "chat", "transcript": [
             {"body": "Hi, my Acme Router.", "participantPurpose": "customer", "utc": "1772359202000"},
             {"body": "Hello.", "participantPurpose": "agent", "utc": "1772359203000"}]},
          {"sessionId": "m", "media": "messaging", "messagingTranscript": [
             {"messageText": "Hey", "purpose": "customer", "timestamp": "2026-03-01T10:00:04.000Z"}]},
          {"sessionId": "e", "media": "email", "emailTranscript": [
             {"textBody": "Dear team", "from": {"email": "Me@Example.com"}, "time": "2026-03-01T11:00:00Z"},
             {"textBody": "Dear customer", "from": {"email": "support@x"}, "time": "2026-03-01T12:00:00Z"}]}
        ]"#;
        let start: DateTime<Utc> = "2026-03-01T10:00:00Z".parse().unwrap();
        let u = digital_utterances(body, start, &["me@example.com".into()]).unwrap();
        let got: Vec<(&str, Option<i64>)> = u.iter().map(|u| (u.participant, u.start_ms)).collect();
        assert_eq!(
            got,
            [
                ("customer", Some(2000)),
                ("agent", Some(3000)),
                ("customer", Some(4000)),
                ("customer", Some(3_600_000)),
                ("agent", Some(7_200_000)),
            ]
        );
        assert_eq!(u[2].communication_id.as_deref(), Some("m"));
    }

    #[test]
    fn hostile_times_give_no_offset_instead_of_overflowing() {
        assert_eq!(offset_ms(Some(i64::MAX), i64::MIN), None);
        assert_eq!(
            offset_ms(Some(200_000_000_000), -2_000_000_000_000),
            Some(2_200_000_000_000)
        );
        assert_eq!(offset_ms(Some(5), i64::MIN), Some(5));
        let body = format!(
            r#"[{{"sessionId": "c", "transcript": [{{"body": "hi", "participantPurpose": "customer", "utc": "{}"}}]}}]"#,
            i64::MAX
        );
        let start: DateTime<Utc> = "1901-03-01T10:00:00Z".parse().unwrap();
        let u = digital_utterances(body.as_bytes(), start, &[]).unwrap();
        assert_eq!(u[0].start_ms, None);
    }

    #[test]
    fn archived_and_failed_recordings_are_missing_with_their_reason() {
        let archived =
            br#"[{"id": "r", "fileState": "ARCHIVED", "archiveDate": "2026-01-01T00:00:00Z"}]"#;
        assert_eq!(no_text_reason(archived).as_deref(), Some("archived"));
        let failed = br#"[{"id": "r", "fileState": "AVAILABLE", "recordingErrorStatus": ""},
            {"id": "q", "fileState": "AVAILABLE", "recordingErrorStatus": "EMAIL_TRANSCRIPT_TOO_LARGE"}]"#;
        assert_eq!(
            no_text_reason(failed).as_deref(),
            Some("error:EMAIL_TRANSCRIPT_TOO_LARGE")
        );
        let text = br#"[{"fileState": "ARCHIVED"}, {"transcript": [{"body": "hi"}]}]"#;
        assert_eq!(no_text_reason(text), None);
        // Nothing says why there is no text: still being prepared, asked again.
        assert_eq!(
            no_text_reason(br#"[{"fileState": "AVAILABLE"}]"#).as_deref(),
            Some("not-ready")
        );
        assert_eq!(
            no_text_reason(br#"[{"fileState": "ARCHIVED"}, {"fileState": "RESTORING"}]"#)
                .as_deref(),
            Some("not-ready")
        );
        assert_eq!(
            no_text_reason(br#"[{"fileState": "DELETED", "deleteDate": "2026-01-01T00:00:00Z"}]"#)
                .as_deref(),
            Some("gone")
        );
    }

    fn doc(communication: &str, transcript: &str, phrases: &[(&str, i64, &str)]) -> VoiceDocument {
        let phrases: Vec<Value> = phrases
            .iter()
            .map(|(who, at, text)| {
                serde_json::json!({"participantPurpose": who, "startTimeMs": 1772359200000i64 + at, "text": text})
            })
            .collect();
        let body = serde_json::json!({
            "conversationStartTime": 1772359200000i64,
            "communicationId": communication,
            "transcripts": [{"transcriptId": transcript, "phrases": phrases}],
        });
        let document = Bytes::from(serde_json::to_vec(&body).unwrap());
        VoiceDocument {
            communication_id: communication.into(),
            recording_id: None,
            phrases: read_sta(&document).unwrap(),
            document,
        }
    }

    /// A document with STA analytics: phrases (who, ms, text), sentiment (phraseIndex, value)
    /// and topics (name, transcriptPhrase or none, startTimeMs offset).
    fn analysed(
        phrases: &[(&str, i64, &str)],
        sentiment: &[(i64, f64)],
        topics: &[(&str, Option<&str>, i64)],
    ) -> Bytes {
        let t0 = 1772359200000i64;
        let body = serde_json::json!({
            "conversationStartTime": t0,
            "transcripts": [{
                "phrases": phrases.iter().enumerate().map(|(k, (who, at, text))| serde_json::json!(
                    {"phraseIndex": k, "participantPurpose": who, "startTimeMs": t0 + at, "text": text})).collect::<Vec<_>>(),
                "analytics": {
                    "sentiment": sentiment.iter().map(|(k, v)| serde_json::json!(
                        {"participant": "external", "phraseIndex": k, "sentiment": v})).collect::<Vec<_>>(),
                    "topics": topics.iter().map(|(name, phrase, at)| serde_json::json!(
                        {"topicName": name, "transcriptPhrase": phrase, "startTimeMs": t0 + at})).collect::<Vec<_>>(),
                }
            }]
        });
        Bytes::from(serde_json::to_vec(&body).unwrap())
    }

    #[test]
    fn voice_analytics_follow_the_staged_utterances() {
        let start = DateTime::from_timestamp_millis(1772359200000).unwrap();
        // Phrase 1 has no text (not staged), so the sentiment of phraseIndex 2 belongs to the
        // second staged utterance; a topic is placed by its text, another by its time.
        let one = analysed(
            &[
                ("external", 0, "my router keeps dropping"),
                ("internal", 1_000, " "),
                ("external", 2_000, "this is terrible"),
                ("internal", 3_000, "let me check"),
            ],
            &[(0, -1.0), (2, -1.0), (3, 0.4), (9, 1.0)],
            &[
                ("connectivity", Some("my router keeps dropping"), 0),
                ("support", None, 3_500),
                ("", None, 0),
                // Part of a phrase, as Genesys quotes the words that matched.
                ("complaint", Some("terrible"), 2_100),
            ],
        );
        let rows = voice_analytics(&one, start).unwrap().unwrap();
        let mut merged = merge_voice(
            &mut [VoiceDocument {
                communication_id: "c".into(),
                recording_id: None,
                phrases: None,
                document: one.clone(),
            }],
            start,
        )
        .unwrap();
        // The same utterances, in the same order, as the fetch staged.
        for m in &mut merged {
            m.communication_id = None;
        }
        let staged: Vec<Utterance> = rows
            .iter()
            .map(|(u, _)| Utterance {
                communication_id: None,
                ..u.clone()
            })
            .collect();
        assert_eq!(staged, merged);
        let topic = |name: &str, phrase: Option<&str>| PhraseTopic {
            name: name.to_string(),
            phrase: phrase.map(str::to_string),
        };
        let got: Vec<(Option<f64>, Vec<PhraseTopic>)> = rows
            .into_iter()
            .map(|(_, a)| (a.sentiment, a.topics))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    Some(-1.0),
                    vec![topic("connectivity", Some("my router keeps dropping"))]
                ),
                (Some(-1.0), vec![topic("complaint", Some("terrible"))]),
                (Some(0.4), vec![topic("support", None)]),
            ]
        );
        // Two documents (a transfer): merged in time order, a repeated phrase kept once.
        let two = analysed(
            &[
                ("external", 2_000, "this is terrible"),
                ("external", 5_000, "thanks a lot"),
            ],
            &[(0, -1.0), (1, 1.0)],
            &[],
        );
        let mut body = b"[".to_vec();
        body.extend_from_slice(&two);
        body.push(b',');
        body.extend_from_slice(&one);
        body.push(b']');
        let rows = voice_analytics(&body, start).unwrap().unwrap();
        let texts: Vec<(&str, Option<f64>)> = rows
            .iter()
            .map(|(u, a)| (u.text.as_str(), a.sentiment))
            .collect();
        assert_eq!(
            texts,
            vec![
                ("my router keeps dropping", Some(-1.0)),
                ("this is terrible", Some(-1.0)),
                ("let me check", Some(0.4)),
                ("thanks a lot", Some(1.0)),
            ]
        );
        // Not a transcript: an error; another shape of JSON: no analytics.
        assert!(voice_analytics(b"{nope", start).is_err());
        assert_eq!(
            voice_analytics(br#"{"transcripts": 3}"#, start).unwrap(),
            None
        );
    }

    #[test]
    fn documents_of_a_transfer_merge_in_time_order_without_repeats() {
        let start: DateTime<Utc> = "2026-03-01T10:00:00Z".parse().unwrap();
        let first = doc(
            "s1",
            "t1",
            &[
                ("internal", 1000, "hello"),
                ("external", 2000, "my router"),
                ("internal", 9000, "transferring you"),
            ],
        );
        // The second agent's session repeats the hand-over phrase, then goes on.
        let second = doc(
            "s2",
            "t2",
            &[
                ("internal", 9000, "transferring you"),
                ("internal", 10000, "second agent here"),
                ("external", 5000, "it blinks"),
            ],
        );
        let mut docs = vec![first.clone(), second.clone()];
        let u = merge_voice(&mut docs, start).unwrap();
        let got: Vec<(Option<i64>, &str, Option<&str>)> = u
            .iter()
            .map(|u| (u.start_ms, u.text.as_str(), u.communication_id.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                (Some(1000), "hello", Some("s1")),
                (Some(2000), "my router", Some("s1")),
                (Some(5000), "it blinks", Some("s2")),
                (Some(9000), "transferring you", Some("s1")),
                (Some(10000), "second agent here", Some("s2")),
            ]
        );
        // The lenient reading (phrases not read on arrival) merges the same way.
        let mut lenient: Vec<VoiceDocument> = [first.clone(), second]
            .into_iter()
            .map(|mut d| {
                d.phrases = None;
                d
            })
            .collect();
        assert_eq!(merge_voice(&mut lenient, start).unwrap(), u);
        // One document keeps its phrase order, and a phrase said twice in it stays twice.
        let mut one = vec![doc(
            "s1",
            "t1",
            &[
                ("external", 3000, "yes"),
                ("external", 3000, "yes"),
                ("internal", 1000, "late"),
            ],
        )];
        let u = merge_voice(&mut one, start).unwrap();
        let texts: Vec<&str> = u.iter().map(|u| u.text.as_str()).collect();
        assert_eq!(texts, ["yes", "yes", "late"]);
        assert!(merge_voice(&mut [], start).unwrap().is_empty());
    }

    #[test]
    fn repeated_documents_are_kept_once() {
        let a = doc("s1", "t1", &[("internal", 1, "a")]);
        let same_bytes = VoiceDocument {
            communication_id: "s9".into(),
            ..a.clone()
        };
        // Another rendering of the same transcript (other bytes, same communication and id).
        let same_transcript = doc("s1", "t1", &[("internal", 1, "a"), ("external", 2, "b")]);
        let mut rec1 = doc("s2", "t2", &[("internal", 5, "c")]);
        rec1.recording_id = Some("r1".into());
        let mut rec1_again = doc("s3", "t3", &[("internal", 6, "d")]);
        rec1_again.recording_id = Some("r1".into());
        let other = doc("s1", "t4", &[("internal", 7, "e")]);
        let kept = dedup_documents(vec![
            a.clone(),
            same_bytes,
            same_transcript,
            rec1.clone(),
            rec1_again,
            other.clone(),
        ]);
        assert_eq!(kept, [a.clone(), rec1, other]);
        // Documents without transcript ids differ by their bytes only.
        let bare = |t: &str| VoiceDocument {
            communication_id: "s".into(),
            recording_id: None,
            document: Bytes::from(format!(
                r#"{{"transcripts": [{{"phrases": [{{"text": "{t}"}}]}}]}}"#
            )),
            phrases: None,
        };
        assert_eq!(
            dedup_documents(vec![bare("x"), bare("y"), bare("x")]).len(),
            2
        );
        // What is stored: one document as it came, several as their array.
        assert_eq!(voice_body(std::slice::from_ref(&a)), a.document);
        let both = voice_body(&[a.clone(), bare("x")]);
        let v: Vec<Value> = serde_json::from_slice(&both).unwrap();
        assert_eq!(v.len(), 2);
    }

    /// A fake STA API: `routes` maps a path (the API's or a presigned `/s3/…` link) to a status
    /// and a body in which `{base}` is the server's URL. Every request is counted by path.
    async fn sta_server(
        routes: Vec<(String, u16, String)>,
    ) -> (
        String,
        std::sync::Arc<std::sync::Mutex<HashMap<String, u32>>>,
    ) {
        use axum::response::IntoResponse;
        let hits = std::sync::Arc::new(std::sync::Mutex::new(HashMap::<String, u32>::new()));
        let counted = hits.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let url = base.clone();
        let routes: HashMap<String, (u16, String)> = routes
            .into_iter()
            .map(|(p, st, b)| (p, (st, b.replace("{base}", &base))))
            .collect();
        let handler = move |req: axum::extract::Request| {
            let routes = routes.clone();
            let hits = counted.clone();
            async move {
                let path = req.uri().path().to_string();
                if path == "/oauth/token" {
                    return (
                        axum::http::StatusCode::OK,
                        r#"{"access_token":"t","expires_in":86400}"#.to_string(),
                    )
                        .into_response();
                }
                *hits.lock().unwrap().entry(path.clone()).or_default() += 1;
                let (status, body) = routes
                    .get(&path)
                    .cloned()
                    .unwrap_or((404, r#"{"message":"not found","status":404}"#.to_string()));
                (axum::http::StatusCode::from_u16(status).unwrap(), body).into_response()
            }
        };
        let app = axum::Router::new().fallback(handler);
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, hits)
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

    fn sessions(ids: &[&str]) -> Vec<VoiceSession> {
        ids.iter()
            .map(|id| VoiceSession {
                id: id.to_string(),
                purpose: "customer".into(),
                start: None,
            })
            .collect()
    }

    fn sta_doc(communication: &str, text: &str) -> String {
        format!(
            r#"{{"conversationStartTime": 1772359200000, "communicationId": "{communication}", "transcripts": [{{"transcriptId": "t-{communication}", "phrases": [{{"participantPurpose": "external", "startTimeMs": 1772359201000, "text": "{text}"}}]}}]}}"#
        )
    }

    fn link(conversation: &str, sid: &str) -> (String, u16, String) {
        (
            transcript_url_path(conversation, sid),
            200,
            format!(r#"{{"url": "{{base}}/s3/{sid}?X-Amz-Signature=abc"}}"#),
        )
    }

    fn texts(o: &Outcome) -> Vec<String> {
        match o {
            Outcome::Voice { documents } => {
                let mut docs = documents.clone();
                merge_voice(&mut docs, "2026-03-01T10:00:00Z".parse().unwrap())
                    .unwrap()
                    .into_iter()
                    .map(|u| u.text)
                    .collect()
            }
            other => panic!("not voice: {other:?}"),
        }
    }

    #[tokio::test]
    async fn every_recorded_session_is_asked_and_gone_or_missing_ones_leave_the_rest() {
        let (url, hits) = sta_server(vec![
            link("c", "s1"),
            ("/s3/s1".into(), 200, sta_doc("s1", "first leg")),
            link("c", "s2"),
            // Deleted with its recording: S3's NoSuchKey.
            (
                "/s3/s2".into(),
                404,
                "<Error><Code>NoSuchKey</Code></Error>".into(),
            ),
            link("c", "s4"),
            ("/s3/s4".into(), 200, sta_doc("s4", "second leg")),
            // s3 has no transcript (404 from the API).
        ])
        .await;
        let c = client(&url);
        let o = voice(&c, "c", &sessions(&["s1", "s2", "s3", "s4"]))
            .await
            .unwrap();
        assert_eq!(texts(&o), ["first leg", "second leg"]);
        let h = hits.lock().unwrap().clone();
        assert_eq!(h[&transcript_url_path("c", "s3")], 1);
        assert_eq!(h["/s3/s2"], 1, "a presigned 404 is not retried");
        // Only gone and 404: 404 wins (it may still appear); only gone: gone; nothing: none.
        let o = voice(&c, "c", &sessions(&["s2", "s3"])).await.unwrap();
        assert_eq!(
            o,
            Outcome::Missing {
                reason: "404".into()
            }
        );
        let o = voice(&c, "c", &sessions(&["s2"])).await.unwrap();
        assert_eq!(
            o,
            Outcome::Missing {
                reason: "gone".into()
            }
        );
        let o = voice(&c, "c", &[]).await.unwrap();
        assert_eq!(
            o,
            Outcome::Missing {
                reason: "none".into()
            }
        );
        assert!(!c.voice_state().uses_plural());
    }

    #[tokio::test]
    async fn a_403_on_transcripturl_switches_the_run_to_transcripturls_once() {
        let forbidden =
            r#"{"message":"missing permission speechAndTextAnalytics:data:view","status":403}"#;
        let urls = |sid: &str, recordings: &[&str]| {
            let entries: Vec<String> = recordings
                .iter()
                .map(|r| {
                    format!(r#"{{"recording": {{"id": "{r}", "selfUri": "/api/v2/recordings/{r}"}}, "url": "{{base}}/s3/{r}?sig=1"}}"#)
                })
                .collect();
            (
                transcript_urls_path("c", sid),
                200,
                format!(
                    r#"{{"conversation": {{"id": "c"}}, "communicationId": "{sid}", "urls": [{}]}}"#,
                    entries.join(",")
                ),
            )
        };
        let (url, hits) = sta_server(vec![
            (transcript_url_path("c", "s1"), 403, forbidden.into()),
            (transcript_url_path("c", "s2"), 403, forbidden.into()),
            // Two recordings of s1; s2's list names r2 again (one recording, two sessions).
            urls("s1", &["r1", "r2"]),
            urls("s2", &["r2", "r3"]),
            ("/s3/r1".into(), 200, sta_doc("s1", "part one")),
            ("/s3/r2".into(), 200, sta_doc("s1b", "part two")),
            ("/s3/r3".into(), 200, sta_doc("s2", "part three")),
        ])
        .await;
        let c = client(&url);
        let o = voice(&c, "c", &sessions(&["s1", "s2"])).await.unwrap();
        assert!(c.voice_state().uses_plural());
        let Outcome::Voice { documents } = &o else {
            panic!("{o:?}")
        };
        let recs: Vec<Option<&str>> = documents
            .iter()
            .map(|d| d.recording_id.as_deref())
            .collect();
        assert_eq!(recs, [Some("r1"), Some("r2"), Some("r3")]);
        assert_eq!(texts(&o).len(), 3);
        // A later conversation goes straight to the plural: the singular was asked once.
        voice(&c, "c", &sessions(&["s1", "s2"])).await.unwrap();
        let h = hits.lock().unwrap().clone();
        assert_eq!(h[&transcript_url_path("c", "s1")], 1);
        assert!(!h.contains_key(&transcript_url_path("c", "s2")));
        assert_eq!(
            h["/s3/r2"], 2,
            "r2 read once a conversation, not once per session"
        );
        // A 403 is a refusal, not a token problem: no new token, no retry.
        let s = c.stats();
        assert_eq!((s.tokens, s.unauthorized, s.retries), (1, 0, 0), "{s:?}");
    }

    #[tokio::test]
    async fn a_403_the_plural_does_not_cure_is_missing_permission() {
        let forbidden = r#"{"message":"forbidden","status":403}"#;
        let (url, _) = sta_server(vec![
            (transcript_url_path("c", "s1"), 403, forbidden.into()),
            (transcript_urls_path("c", "s1"), 403, forbidden.into()),
            // An empty list: nothing for this session.
            (
                transcript_urls_path("c", "s2"),
                200,
                r#"{"communicationId": "s2", "urls": []}"#.into(),
            ),
        ])
        .await;
        let c = client(&url);
        let o = voice(&c, "c", &sessions(&["s1", "s2"])).await.unwrap();
        assert_eq!(
            o,
            Outcome::Missing {
                reason: "permission".into()
            }
        );
        let o = voice(&c, "c", &sessions(&["s2"])).await.unwrap();
        assert_eq!(
            o,
            Outcome::Missing {
                reason: "404".into()
            }
        );
    }

    #[tokio::test]
    async fn refused_recordings_are_missing_permission_and_errored_ones_name_their_status() {
        let (url, _) = sta_server(vec![
            (
                "/api/v2/conversations/d1/recordings".into(),
                403,
                r#"{"message":"forbidden","status":403}"#.into(),
            ),
            (
                "/api/v2/conversations/d2/recordings".into(),
                200,
                r#"[{"id": "r", "fileState": "AVAILABLE", "recordingErrorStatus": "EMAIL_TRANSCRIPT_TOO_LARGE"}]"#.into(),
            ),
            (
                "/api/v2/conversations/d3/recordings".into(),
                200,
                r#"[{"id": "r", "fileState": "ARCHIVED", "archiveDate": "2026-01-01T00:00:00Z"}]"#.into(),
            ),
        ])
        .await;
        let c = client(&url);
        let once = NotReadyPolicy {
            attempts: 1,
            wait: Duration::ZERO,
        };
        for (id, reason) in [
            ("d1", "permission"),
            ("d2", "error:EMAIL_TRANSCRIPT_TOO_LARGE"),
            ("d3", "archived"),
            ("d4", "404"),
        ] {
            assert_eq!(
                digital(&c, id, once).await.unwrap(),
                Outcome::Missing {
                    reason: reason.into()
                },
                "{id}"
            );
        }
    }

    #[test]
    fn an_agent_leg_is_asked_only_when_its_customer_leg_gave_no_transcript() {
        let t = |s: &str| Some(s.parse::<DateTime<Utc>>().unwrap());
        let legs = [
            (t("2026-03-01T10:00:00Z"), true),
            (t("2026-03-01T10:10:00Z"), false),
        ];
        // The first leg's agent: its customer leg was transcribed.
        assert!(covered(&legs, t("2026-03-01T10:01:00Z")));
        // The second leg's agent: its customer leg gave nothing, so the agent's is asked.
        assert!(!covered(&legs, t("2026-03-01T10:11:00Z")));
        // Before any customer leg, or without a start: asked.
        assert!(!covered(&legs, t("2026-03-01T09:59:00Z")));
        assert!(!covered(&legs, None));
        assert!(!covered(&[], t("2026-03-01T10:01:00Z")));
    }
}
