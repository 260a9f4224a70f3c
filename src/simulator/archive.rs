//! The archive query contract (GENESYS.md §9): `POST /api/v2/archiving/conversations/query`
//! and its pages, behind stateless page cursors.
//!
//! Invariants: a page is a pure function of its cursor and the configuration, so the same query
//! returns the same bytes, before and after a restart; the last page is never an empty one.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::gen::Media;
use super::respond::{bad_request, iso, json, to_json, with_rate, CorrelationId, RateInfo};
use super::state::AppState;

pub(super) const QUERY_PATH: &str = "/api/v2/archiving/conversations/query";
const SELECTABLE: [&str; 4] = ["id", "date", "type", "interactions"];

/// Where a query continues: the query itself plus the next conversation index and page number.
#[derive(Clone, Serialize, Deserialize)]
struct Cursor {
    select: Vec<String>,
    types: Vec<String>,
    start_ms: i64,
    end_ms: i64,
    size: usize,
    next: usize,
    page: usize,
}

#[derive(Deserialize)]
struct QueryRequest {
    #[serde(default)]
    select: Vec<String>,
    #[serde(rename = "where")]
    filter: Option<String>,
    #[serde(rename = "timeRange")]
    time_range: TimeRange,
    size: Option<i64>,
}

#[derive(Deserialize)]
struct TimeRange {
    start: String,
    end: String,
}

#[derive(Serialize)]
struct PageBody {
    entities: Vec<Entity>,
    #[serde(rename = "nextPageUri")]
    next_page_uri: Option<String>,
}

#[derive(Serialize)]
struct Entity {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    date: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    interactions: Option<Vec<InteractionBody>>,
}

#[derive(Serialize)]
struct InteractionBody {
    participant: &'static str,
    timestamp: String,
    transcript: String,
}

pub(super) async fn query(
    State(st): State<Arc<AppState>>,
    Extension(corr): Extension<CorrelationId>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let rate = match st.admit(&headers, &corr) {
        Ok(rate) => rate,
        Err(resp) => return *resp,
    };
    match parse_query(&body) {
        Ok(cursor) => st.page(&cursor, &rate, &corr),
        Err(msg) => bad_request(msg, &corr),
    }
}

pub(super) async fn next_page(
    State(st): State<Arc<AppState>>,
    Extension(corr): Extension<CorrelationId>,
    Path(cursor): Path<String>,
    headers: HeaderMap,
) -> Response {
    let rate = match st.admit(&headers, &corr) {
        Ok(rate) => rate,
        Err(resp) => return *resp,
    };
    let decoded = URL_SAFE_NO_PAD
        .decode(cursor.as_bytes())
        .ok()
        .and_then(|raw| serde_json::from_slice::<Cursor>(&raw).ok());
    match decoded {
        Some(c) if (1..=1000).contains(&c.size) => st.page(&c, &rate, &corr),
        _ => bad_request("invalid page cursor: start the query again".into(), &corr),
    }
}

impl AppState {
    fn page(&self, c: &Cursor, rate: &RateInfo, corr: &CorrelationId) -> Response {
        let (Some(from), Some(to)) = (
            DateTime::from_timestamp_millis(c.start_ms),
            DateTime::from_timestamp_millis(c.end_ms),
        ) else {
            return bad_request("timeRange is out of range".into(), corr);
        };
        let wanted = |m: Media| c.types.is_empty() || c.types.iter().any(|t| t == m.as_str());
        let has = |f: &str| c.select.is_empty() || c.select.iter().any(|s| s == f);
        let range = self.gen.index_range(from, to);
        let mut i = c.next.max(range.start);
        let mut entities = Vec::new();
        while i < range.end && entities.len() < c.size {
            if wanted(self.gen.media(i)) {
                let conv = self.gen.conversation(i);
                entities.push(Entity {
                    id: has("id").then_some(conv.id),
                    date: has("date").then(|| iso(conv.start)),
                    kind: has("type").then_some(conv.media.as_str()),
                    // A call that was never transcribed has no text in an archive either.
                    interactions: has("interactions").then(|| {
                        let text = if self.gen.has_text(i) {
                            conv.interactions
                        } else {
                            Vec::new()
                        };
                        text.into_iter()
                            .map(|it| InteractionBody {
                                participant: it.participant,
                                timestamp: iso(it.timestamp),
                                transcript: it.transcript,
                            })
                            .collect()
                    }),
                });
            }
            i += 1;
        }
        // Skip ahead so the last page is never an empty one.
        while i < range.end && !wanted(self.gen.media(i)) {
            i += 1;
        }
        let next_page_uri = (i < range.end).then(|| {
            let next = Cursor {
                next: i,
                page: c.page + 1,
                ..c.clone()
            };
            format!("{QUERY_PATH}/pages/{}", next.encode())
        });
        let mut body = to_json(&PageBody {
            entities,
            next_page_uri,
        });
        if self.cfg.faults.malformed_page == Some(c.page) {
            body.truncate(body.len() / 2);
        }
        with_rate(json(StatusCode::OK, body), rate)
    }
}

impl Cursor {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(to_json(self))
    }
}

/// Validates a query body and turns it into the cursor of its first page.
fn parse_query(body: &[u8]) -> Result<Cursor, String> {
    let q: QueryRequest =
        serde_json::from_slice(body).map_err(|e| format!("invalid query body: {e}"))?;
    if let Some(bad) = q.select.iter().find(|s| !SELECTABLE.contains(&s.as_str())) {
        return Err(format!(
            "unknown field {bad:?} in select; use {SELECTABLE:?}"
        ));
    }
    let size = q.size.unwrap_or(100);
    if !(1..=1000).contains(&size) {
        return Err(format!("size must be between 1 and 1000, got {size}"));
    }
    let time = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| format!("timeRange: {s:?} is not ISO-8601 with an offset: {e}"))
    };
    let (start, end) = (time(&q.time_range.start)?, time(&q.time_range.end)?);
    if end < start {
        return Err("timeRange.end is before timeRange.start".into());
    }
    let types = match q.filter.as_deref().map(str::trim) {
        None | Some("") => Vec::new(),
        Some(w) => parse_where(w)?
            .iter()
            .map(|m| m.as_str().to_string())
            .collect(),
    };
    Ok(Cursor {
        select: q.select,
        types,
        start_ms: start.timestamp_millis(),
        end_ms: end.timestamp_millis(),
        size: size as usize,
        next: 0,
        page: 0,
    })
}

#[derive(Debug, PartialEq)]
enum Lexeme {
    Word(String),
    Str(String),
    Sym(char),
}

/// Parses `type = 'x'` or `type IN ('a', 'b')` (keywords case-insensitive).
fn parse_where(w: &str) -> Result<Vec<Media>, String> {
    use Lexeme::{Str, Sym, Word};
    let unsupported = || {
        format!("unsupported where clause {w:?}: use type = 'voice' or type IN ('chat', 'email')")
    };
    let mut lex = Vec::new();
    let mut chars = w.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '=' | '(' | ')' | ',' => lex.push(Sym(c)),
            '\'' => {
                let s: String = chars.by_ref().take_while(|&c| c != '\'').collect();
                lex.push(Str(s));
            }
            c if c.is_alphabetic() => {
                let mut s = c.to_string();
                while let Some(c) = chars.next_if(|c| c.is_alphanumeric() || *c == '_') {
                    s.push(c);
                }
                lex.push(Word(s.to_ascii_lowercase()));
            }
            _ => return Err(unsupported()),
        }
    }
    if w.matches('\'').count() % 2 == 1 {
        return Err(unsupported());
    }
    let values: Vec<&String> = match lex.as_slice() {
        [Word(t), Sym('='), Str(v)] if t == "type" => vec![v],
        [Word(t), Word(kw), Sym('('), list @ .., Sym(')')] if t == "type" && kw == "in" => {
            let mut values = Vec::new();
            for (k, item) in list.iter().enumerate() {
                match (k % 2, item) {
                    (0, Str(v)) => values.push(v),
                    (1, Sym(',')) => {}
                    _ => return Err(unsupported()),
                }
            }
            if values.is_empty() || list.len() % 2 == 0 {
                return Err(unsupported());
            }
            values
        }
        _ => return Err(unsupported()),
    };
    values
        .into_iter()
        .map(|v| {
            Media::parse(v).ok_or_else(|| {
                format!("unknown interaction type {v:?}: use voice, chat, email or message")
            })
        })
        .collect()
}

#[cfg(test)]
pub(super) mod tests {
    //! Also the helpers of the server's tests.
    use super::*;
    use crate::secret::Secret;
    use crate::simulator::gen::Generator;
    use crate::simulator::{start, RunningSimulator, SimConfig, SimProduct};
    use chrono::NaiveDate;
    use serde_json::{json, Value};

    pub(in crate::simulator) fn cfg() -> SimConfig {
        let mut cfg = SimConfig::new(vec![
            SimProduct {
                name: "Acme Router".into(),
                aliases: vec!["acme wifi router".into()],
            },
            SimProduct {
                name: "CloudPhone Pro".into(),
                aliases: vec![],
            },
        ]);
        cfg.conversations = 300;
        cfg.start = NaiveDate::from_ymd_opt(2024, 3, 1).unwrap();
        cfg.client_id = Some("cid".into());
        cfg.client_secret = Some(Secret::new("csecret"));
        cfg
    }

    pub(in crate::simulator) async fn launch(cfg: SimConfig) -> RunningSimulator {
        start(cfg, "127.0.0.1:0".parse().unwrap()).await.unwrap()
    }

    pub(in crate::simulator) async fn token(
        http: &reqwest::Client,
        sim: &RunningSimulator,
    ) -> String {
        token_with_ttl(http, sim, 86_400).await
    }

    pub(in crate::simulator) async fn token_with_ttl(
        http: &reqwest::Client,
        sim: &RunningSimulator,
        ttl: u64,
    ) -> String {
        let resp = http
            .post(format!("{}/oauth/token", sim.url))
            .basic_auth("cid", Some("csecret"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["token_type"], "bearer");
        assert_eq!(body["expires_in"], ttl);
        body["access_token"].as_str().unwrap().to_string()
    }

    pub(in crate::simulator) fn range_query(filter: Option<&str>, size: i64) -> Value {
        let mut q = json!({
            "select": ["date", "id", "type", "interactions"],
            "timeRange": {"start": "2024-03-03T00:00:00Z", "end": "2024-03-10T00:00:00.000Z"},
            "size": size,
        });
        if let Some(f) = filter {
            q["where"] = json!(f);
        }
        q
    }

    pub(in crate::simulator) async fn post_query(
        http: &reqwest::Client,
        sim: &RunningSimulator,
        tok: &str,
        q: &Value,
    ) -> reqwest::Response {
        http.post(format!("{}{QUERY_PATH}", sim.url))
            .bearer_auth(tok)
            .json(q)
            .send()
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn paging_returns_each_conversation_once_and_is_deterministic() {
        let cfg = cfg();
        let gen = Generator::new(&cfg);
        let sim = launch(cfg).await;
        let http = reqwest::Client::new();
        let tok = token(&http, &sim).await;
        let q = range_query(Some("type IN ('voice', 'chat')"), 7);
        let first = post_query(&http, &sim, &tok, &q)
            .await
            .bytes()
            .await
            .unwrap();
        assert_eq!(
            first,
            post_query(&http, &sim, &tok, &q)
                .await
                .bytes()
                .await
                .unwrap()
        );

        let (from, to) = (
            "2024-03-03T00:00:00Z".parse().unwrap(),
            "2024-03-10T00:00:00Z".parse().unwrap(),
        );
        let expected: Vec<String> = gen
            .index_range(from, to)
            .filter(|&i| matches!(gen.media(i), Media::Voice | Media::Chat))
            .map(|i| gen.conversation(i).id)
            .collect();
        let mut seen = Vec::new();
        let mut body: Value = serde_json::from_slice(&first).unwrap();
        let mut pages = 1;
        loop {
            for e in body["entities"].as_array().unwrap() {
                assert!(matches!(e["type"].as_str(), Some("voice" | "chat")));
                let date = e["date"].as_str().unwrap();
                assert!(
                    date.ends_with('Z')
                        && date.len() == 24
                        && ("2024-03-03".."2024-03-10").contains(&date)
                );
                assert!(!e["interactions"].as_array().unwrap().is_empty());
                seen.push(e["id"].as_str().unwrap().to_string());
            }
            let Some(next) = body["nextPageUri"].as_str() else {
                break;
            };
            let url = format!("{}{next}", sim.url);
            let page = http
                .get(&url)
                .bearer_auth(&tok)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            let again = http
                .get(&url)
                .bearer_auth(&tok)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            assert_eq!(page, again);
            body = serde_json::from_slice(&page).unwrap();
            pages += 1;
        }
        assert!(expected.len() > 30);
        assert_eq!(seen, expected);
        assert_eq!(pages, expected.len().div_ceil(7));
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn bad_queries_get_400_with_a_json_body() {
        let sim = launch(cfg()).await;
        let http = reqwest::Client::new();
        let tok = token(&http, &sim).await;
        let mut bad: Vec<Value> = [
            "type LIKE 'voice'",
            "type = 'fax'",
            "type IN ()",
            "type IN ('voice',)",
            "type = 'voice' OR 1 = 1",
            "media = 'voice'",
            "type = 'voice",
        ]
        .iter()
        .map(|w| range_query(Some(w), 10))
        .collect();
        bad.push(range_query(None, 0));
        bad.push(range_query(None, 1001));
        bad.push(json!({"size": 10}));
        bad.push(json!({"select": ["id", "secret"], "timeRange": {"start": "2024-03-03T00:00:00Z", "end": "2024-03-04T00:00:00Z"}}));
        bad.push(json!({"timeRange": {"start": "2024-03-03", "end": "2024-03-04T00:00:00Z"}}));
        for q in &bad {
            let resp = post_query(&http, &sim, &tok, q).await;
            assert_eq!(resp.status(), 400, "{q}");
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["code"], "bad.request", "{q}");
        }
        let ok = post_query(
            &http,
            &sim,
            &tok,
            &range_query(Some("TYPE in ('email','message')"), 1000),
        )
        .await;
        assert_eq!(ok.status(), 200);
        let url = format!("{}{QUERY_PATH}/pages/not-a-cursor", sim.url);
        assert_eq!(
            http.get(url)
                .bearer_auth(&tok)
                .send()
                .await
                .unwrap()
                .status(),
            400
        );
        sim.shutdown().await;
    }

    #[test]
    fn where_clauses() {
        assert_eq!(parse_where("type = 'voice'"), Ok(vec![Media::Voice]));
        assert_eq!(
            parse_where("TYPE IN ( 'chat' ,'email')"),
            Ok(vec![Media::Chat, Media::Email])
        );
        for bad in [
            "type = voice",
            "type IN ('chat' 'email')",
            "type == 'chat'",
            "'chat' = type",
        ] {
            assert!(parse_where(bad).is_err(), "{bad}");
        }
    }
}
