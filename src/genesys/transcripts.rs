//! The text of a conversation (GENESYS.md §2.2, §2.3):
//! - voice: `GET …/speechandtextanalytics/conversations/{id}/communications/{sessionId}/transcripturl`,
//!   then at once a plain GET of the presigned link (no bearer token; it expires in 10 minutes,
//!   so a 403 gets a new link). 404 means "no transcript": an outcome, not an error;
//! - chat, messaging, email: `GET /api/v2/conversations/{id}/recordings?formatId=NONE`, whose
//!   recordings carry `transcript`, `messagingTranscript` or `emailTranscript`; a 202 or an
//!   empty body means "still being prepared" and is asked again after a pause.
//!
//! The documents are turned into utterances: speaker, offset from the conversation start in
//! milliseconds, and text (`decoratedText` when present). Redaction tags stay as they are.

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;

use super::archive::participant_role;
use super::http::PresignedError;
use super::{ApiClient, GenesysError};

/// What asking for a conversation's text gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// An STA transcript document of this communication, and its phrases when it has the
    /// common shape (read as it arrived; otherwise it is read the lenient way).
    Voice {
        communication_id: String,
        document: Bytes,
        phrases: Option<StaPhrases>,
    },
    /// The recordings list (with transcripts) of a digital conversation.
    Digital { body: Bytes },
    /// No text: `404` (no STA transcript, or no such conversation), `none` (no recorded
    /// session to ask), `not-ready` (the recordings stayed empty or 202), `archived` (only
    /// archived stubs, `fileState: ARCHIVED`), `error` (only recordings with a
    /// `recordingErrorStatus`).
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

/// The recordings path of a conversation, text only.
pub fn recordings_path(conversation: &str) -> String {
    format!("/api/v2/conversations/{conversation}/recordings?formatId=NONE")
}

fn json_ok(b: &[u8]) -> Result<(), String> {
    serde_json::from_slice::<serde::de::IgnoredAny>(b)
        .map(|_| ())
        .map_err(|e| format!("not valid JSON: {e}"))
}

/// The STA transcript of a voice conversation: the first of `sessions` that has one.
pub async fn voice(
    client: &ApiClient,
    conversation: &str,
    sessions: &[String],
) -> Result<Outcome, GenesysError> {
    #[derive(Deserialize)]
    struct TranscriptUrl {
        url: String,
    }
    let validate_url = |b: &[u8]| {
        serde_json::from_slice::<TranscriptUrl>(b)
            .map(|_| ())
            .map_err(|e| format!("not a transcript URL: {e}"))
    };
    for sid in sessions {
        let path = transcript_url_path(conversation, sid);
        // A link that expired before we used it (a long pause) is asked for again, twice at most.
        for attempt in 1..=3 {
            let body = match client.send(Method::GET, &path, None, &validate_url).await {
                Ok(b) => b,
                Err(GenesysError::Rejected { status: 404, .. }) => break,
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
                    return Ok(Outcome::Voice {
                        communication_id: sid.clone(),
                        document,
                        phrases,
                    })
                }
                Err(PresignedError::Expired) if attempt < 3 => continue,
                Err(PresignedError::Expired) => {
                    return Err(GenesysError::GaveUp {
                        url: path,
                        status: 403,
                        attempts: attempt,
                        message: "the presigned transcript link kept expiring before it could be read (links last 10 minutes; is the machine's clock or the network very slow?)".into(),
                    })
                }
                Err(PresignedError::Failed(e)) => return Err(e),
            }
        }
    }
    Ok(Outcome::Missing {
        reason: if sessions.is_empty() { "none" } else { "404" }.into(),
    })
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
            Err(e) => return Err(e),
        };
        let empty = body.iter().all(u8::is_ascii_whitespace)
            || serde_json::from_slice::<Vec<Value>>(&body).is_ok_and(|v| v.is_empty());
        if status != StatusCode::ACCEPTED && !empty {
            if let Some(reason) = no_text_reason(&body) {
                return Ok(Outcome::Missing {
                    reason: reason.into(),
                });
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
/// `recordingErrorStatus` (`error`). GENESYS.md §2.3: neither is a transcript.
fn no_text_reason(body: &[u8]) -> Option<&'static str> {
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
    let failed = |r: &Value| {
        r.get("recordingErrorStatus")
            .is_some_and(|v| !v.is_null() && v.as_str() != Some(""))
    };
    if recordings.iter().any(archived) {
        Some("archived")
    } else if recordings.iter().any(failed) {
        Some("error")
    } else {
        None
    }
}

/// One utterance of a conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Utterance {
    /// customer, agent, ivr or unknown.
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

/// Reads a received STA document once: its phrases when it has the common shape (borrowed,
/// typed fields that skip what convlake does not use, the word-level detail being most of a
/// document), `None` for another shape of valid JSON (a field of another type, say: read the
/// lenient way later, which gives the same result for the common shape), an error when it is
/// not JSON at all (the body is asked for again).
pub fn read_sta(document: &[u8]) -> Result<Option<StaPhrases>, String> {
    let Ok(doc) = serde_json::from_slice::<StaDocument<'_>>(document) else {
        return json_ok(document).map(|()| None);
    };
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
                    participant_role(p.participant_purpose.as_deref()),
                    p.start_time_ms,
                    text.to_string(),
                )
            })
        })
        .collect();
    Ok(Some(StaPhrases {
        conversation_start_time: doc.conversation_start_time,
        phrases,
    }))
}

/// An STA transcript document, the fields convlake reads.
#[derive(Deserialize)]
struct StaDocument<'a> {
    #[serde(rename = "conversationStartTime")]
    conversation_start_time: Option<i64>,
    #[serde(default, borrow)]
    transcripts: Vec<StaTranscript<'a>>,
}

#[derive(Deserialize)]
struct StaTranscript<'a> {
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
            out.push(Utterance {
                participant: participant_role(p.get("participantPurpose").and_then(Value::as_str)),
                start_ms: offset_ms(p.get("startTimeMs").and_then(Value::as_i64), origin),
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
        for doc in docs {
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
        assert_eq!(no_text_reason(archived), Some("archived"));
        let failed = br#"[{"id": "r", "fileState": "AVAILABLE", "recordingErrorStatus": "EMAIL_TRANSCRIPT_TOO_LARGE"}]"#;
        assert_eq!(no_text_reason(failed), Some("error"));
        let text = br#"[{"fileState": "ARCHIVED"}, {"transcript": [{"body": "hi"}]}]"#;
        assert_eq!(no_text_reason(text), None);
        assert_eq!(no_text_reason(br#"[{"fileState": "AVAILABLE"}]"#), None);
    }
}
