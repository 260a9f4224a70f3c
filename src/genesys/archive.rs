//! The tutorial's archive-query contract (GENESYS.md §9): `POST /api/v2/archiving/conversations/query`
//! with `select/where/timeRange/size`, then GET of `nextPageUri` until it is null.
//!
//! Not a real Genesys Cloud endpoint; some teams front their own archive with it, and the
//! simulator serves it. A page becomes Arrow rows of the raw-snapshot schema.

use arrow::array::RecordBatch;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::lake::schema::{RawRow, RawRowsBuilder};

/// The query path.
pub const QUERY_PATH: &str = "/api/v2/archiving/conversations/query";

/// One page of the archive contract.
#[derive(Debug, Deserialize)]
pub struct ArchivePage {
    #[serde(default)]
    pub entities: Vec<ArchiveEntity>,
    #[serde(rename = "nextPageUri", default)]
    pub next_page_uri: Option<String>,
}

/// One conversation on a page.
#[derive(Debug, Deserialize)]
pub struct ArchiveEntity {
    pub id: String,
    pub date: DateTime<Utc>,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub interactions: Vec<ArchiveInteraction>,
}

/// One utterance of a conversation.
#[derive(Debug, Deserialize)]
pub struct ArchiveInteraction {
    #[serde(default)]
    pub participant: Option<String>,
    #[serde(default)]
    pub timestamp: Option<DateTime<Utc>>,
    #[serde(default)]
    pub transcript: Option<String>,
}

/// The request body for one interaction type over `[start, end)`.
pub fn query_body(
    interaction_type: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    size: u32,
) -> serde_json::Value {
    serde_json::json!({
        "select": ["date", "id", "type", "interactions"],
        "where": format!("type = '{}'", interaction_type.replace('\'', "''")),
        "timeRange": {
            "start": start.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "end": end.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        },
        "size": size,
    })
}

/// Parses a page body, with an error that says what is wrong where.
pub fn parse_page(body: &[u8]) -> Result<ArchivePage, String> {
    serde_json::from_slice(body).map_err(|e| format!("not a valid archive page: {e}"))
}

/// Maps the participant labels of a source onto convlake's: customer, agent, ivr, acd, unknown.
/// `acd` (the queue: hold messages, position announcements) is its own role, not `ivr`, so that
/// a queue's recorded prompts are not counted as the flow's self-service speech.
pub fn participant_role(label: Option<&str>) -> &'static str {
    match label.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
        Some("customer" | "external") => "customer",
        Some("agent" | "user" | "internal") => "agent",
        Some("acd") => "acd",
        Some("ivr" | "botflow" | "bot" | "system") => "ivr",
        _ => "unknown",
    }
}

/// The page's utterances as one batch of the raw-snapshot schema.
pub fn page_to_batch(page: &ArchivePage, snapshot: &str) -> Result<RecordBatch, String> {
    let mut rows = RawRowsBuilder::new(snapshot);
    // A conversation listed twice on one page counts once: its last copy wins.
    let last: std::collections::HashMap<&str, usize> = page
        .entities
        .iter()
        .enumerate()
        .map(|(i, e)| (e.id.as_str(), i))
        .collect();
    for (n, e) in page.entities.iter().enumerate() {
        if last.get(e.id.as_str()) != Some(&n) {
            continue;
        }
        let media = e.kind.trim().to_ascii_lowercase();
        for (i, it) in e.interactions.iter().enumerate() {
            let Some(t) = it.transcript.as_deref().filter(|t| !t.trim().is_empty()) else {
                continue;
            };
            rows.push(RawRow {
                conversation_id: &e.id,
                communication_id: None,
                conversation_date: e.date.date_naive(),
                interaction_type: &media,
                participant: participant_role(it.participant.as_deref()),
                utterance_index: i as i32,
                start_ms: it.timestamp.map(|ts| (ts - e.date).num_milliseconds()),
                text: t,
                subtype: None,
            });
        }
    }
    rows.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Array;

    const PAGE: &str = r#"{"entities":[{"id":"c1","date":"2026-01-02T10:00:00.000Z","type":"Voice",
        "interactions":[{"participant":"customer","timestamp":"2026-01-02T10:00:01.500Z","transcript":"my acme router"},
                        {"participant":"agent","timestamp":"2026-01-02T10:00:03.000Z","transcript":""},
                        {"participant":"ivr","transcript":"press one"}]}],
        "nextPageUri":"/next/1"}"#;

    #[test]
    fn a_page_becomes_utterance_rows() {
        let page = parse_page(PAGE.as_bytes()).unwrap();
        assert_eq!(page.next_page_uri.as_deref(), Some("/next/1"));
        let b = page_to_batch(&page, "h").unwrap();
        assert_eq!(b.num_rows(), 2, "the empty transcript is skipped");
        let starts = b
            .column(6)
            .as_any()
            .downcast_ref::<arrow::array::Int64Array>()
            .unwrap();
        assert_eq!(starts.value(0), 1500);
        assert!(starts.is_null(1));
        let kinds = b
            .column(3)
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .unwrap();
        assert_eq!(kinds.value(0), "voice");
    }

    #[test]
    fn missing_fields_are_named() {
        let err = parse_page(br#"{"entities":[{"date":"2026-01-02T10:00:00Z","type":"voice"}]}"#)
            .unwrap_err();
        assert!(err.contains("missing field `id`"), "{err}");
        assert!(parse_page(br#"{"entities":[{"id":"#).is_err());
    }

    #[test]
    fn labels_map_onto_the_five_roles() {
        let cases = [
            (Some("Customer"), "customer"),
            (Some("external"), "customer"),
            (Some("agent"), "agent"),
            (Some("user"), "agent"),
            (Some("internal"), "agent"),
            (Some(" ACD "), "acd"),
            (Some("ivr"), "ivr"),
            (Some("botflow"), "ivr"),
            (Some("voicemail"), "unknown"),
            (None, "unknown"),
        ];
        for (label, role) in cases {
            assert_eq!(participant_role(label), role, "{label:?}");
        }
    }

    #[test]
    fn query_body_quotes_the_type() {
        let start = "2026-01-01T00:00:00Z".parse().unwrap();
        let end = "2026-01-02T00:00:00Z".parse().unwrap();
        let b = query_body("voice", start, end, 100);
        assert_eq!(b["where"], "type = 'voice'");
        assert_eq!(b["timeRange"]["end"], "2026-01-02T00:00:00.000Z");
    }
}
