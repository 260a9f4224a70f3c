//! Speech and Text Analytics dictionary feedback (`/api/v2/speechandtextanalytics/dictionaryfeedback`):
//! list (paged by an opaque `nextPage` key, filtered by dialect and transcription engine),
//! create, read, update and delete, with the API's validation (docs/genesys-verified.md,
//! "Dictionary feedback"): a 400 `bad.request` naming the field, a 403 `missing.permissions`
//! naming the permission when the role may only view, a 404 for an unknown id.
//!
//! Invariants: the store starts with [`seeded`] entries that a person made in Genesys (not
//! convlake), so a test can prove a client leaves them alone; the listing is ordered by id and
//! its `nextPage` key is the last id served, so pages never shift when entries are added
//! between two requests; a listed entry never carries phrases or soundsLike
//! (`ListedDictionaryFeedback`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::gen::uuid_like;
use super::respond::{
    bad_request, error, iso, json as json_response, missing_permission, to_json, with_rate,
    CorrelationId,
};
use super::state::{lock, AppState, DictionaryFeedbackEntry};

pub(super) const PATH: &str = "/api/v2/speechandtextanalytics/dictionaryfeedback";
const DEFAULT_PAGE: usize = 500;
const MAX_PAGE: usize = 1000;
const MAX_PER_DIALECT: usize = 1000;
const MAX_SOUNDS_LIKE: usize = 10;
const PHRASES: std::ops::RangeInclusive<usize> = 3..=20;
const PHRASE_WORDS: std::ops::RangeInclusive<usize> = 3..=20;
const BOOST: std::ops::RangeInclusive<f64> = 1.0..=10.0;
/// Whoever made the seeded entries: a person, in the Genesys UI.
const ADMIN_USER: &str = "5f3e9c1a-0d4b-4e21-9a77-c0ffee000001";
/// The user the simulator attributes API changes to.
const API_USER: &str = "5f3e9c1a-0d4b-4e21-9a77-c0ffee0000a1";

type St = State<Arc<AppState>>;

impl DictionaryFeedbackEntry {
    fn user(id: &str) -> Value {
        json!({"id": id, "selfUri": format!("/api/v2/users/{id}")})
    }

    /// `ListedDictionaryFeedback`.
    fn listed(&self) -> Value {
        json!({
            "id": self.id,
            "term": self.term,
            "dialect": self.dialect,
            "boostValue": self.boost_value,
            "source": "Manual",
            "dateCreated": iso(self.date_created),
            "createdBy": Self::user(&self.created_by),
            "dateModified": iso(self.date_modified),
            "modifiedBy": Self::user(if self.updates > 0 { API_USER } else { &self.created_by }),
            "transcriptionEngine": "Genesys",
            "status": "Active",
            "selfUri": format!("{PATH}/{}", self.id),
        })
    }

    /// `DictionaryFeedback`.
    fn full(&self) -> Value {
        let mut v = self.listed();
        v["soundsLike"] = json!(self.sounds_like);
        if !self.example_phrases.is_empty() {
            v["examplePhrases"] = self
                .example_phrases
                .iter()
                .map(|p| json!({"phrase": p, "source": "Manual"}))
                .collect();
        }
        v
    }
}

/// The entries of a fresh simulator: made by an administrator in the Genesys UI, one of them
/// for a term in a dialect `dictionary push` writes by default.
pub fn seeded(seed: u64) -> Vec<DictionaryFeedbackEntry> {
    let at = |d: &str| {
        format!("{d}T09:30:00Z")
            .parse::<DateTime<Utc>>()
            .unwrap_or_default()
    };
    let entry = |i: u64, term: &str, dialect: &str, phrases: &[&str], sounds: &[&str]| {
        DictionaryFeedbackEntry {
            id: uuid_like(seed ^ (0xd1c7_0000 + i)),
            term: term.into(),
            dialect: dialect.into(),
            boost_value: 2.0,
            example_phrases: phrases.iter().map(|s| s.to_string()).collect(),
            sounds_like: sounds.iter().map(|s| s.to_string()).collect(),
            created_by: ADMIN_USER.into(),
            date_created: at("2026-01-12"),
            date_modified: at("2026-01-12"),
            updates: 0,
        }
    };
    vec![
        entry(1, "Genesys", "en-US", &[], &["Genesis"]),
        entry(2, "Genesys", "en-AU", &[], &["Genesis"]),
        entry(
            3,
            "Genesys",
            "de-DE",
            &[
                "Willkommen bei Genesys",
                "Danke für Ihren Anruf bei Genesys",
                "Genesys ist eine Plattform",
            ],
            &["Genesis"],
        ),
    ]
}

/// Registers the routes.
pub(super) fn routes(router: Router<Arc<AppState>>) -> Router<Arc<AppState>> {
    router.route(PATH, get(list).post(create)).route(
        &format!("{PATH}/{{id}}"),
        get(read).put(update).delete(remove),
    )
}

fn not_found(id: &str, corr: &CorrelationId) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not.found",
        format!("Dictionary feedback {id} not found"),
        corr,
    )
}

fn ok(body: Value, rate: &super::respond::RateInfo) -> Response {
    with_rate(json_response(StatusCode::OK, to_json(&body)), rate)
}

async fn list(
    State(st): St,
    Extension(corr): Extension<CorrelationId>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let rate = match st.admit(&headers, &corr) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let page_size = match q.get("pageSize").map(|s| s.parse::<usize>()) {
        None => DEFAULT_PAGE,
        Some(Ok(n)) if (1..=MAX_PAGE).contains(&n) => n,
        Some(_) => {
            return bad_request(
                format!("pageSize must be a whole number from 1 to {MAX_PAGE}"),
                &corr,
            )
        }
    };
    let engine = q.get("transcriptionEngine").map(String::as_str);
    if engine.is_some_and(|e| e != "Genesys" && e != "GenesysExtended") {
        return bad_request(
            "transcriptionEngine must be Genesys or GenesysExtended".into(),
            &corr,
        );
    }
    let dialect = q.get("dialect").filter(|d| !d.is_empty());
    let entries = lock(&st.feedback.entries);
    let matching: Vec<&DictionaryFeedbackEntry> = entries
        .values()
        .filter(|e| dialect.is_none_or(|d| e.dialect == *d))
        .filter(|_| engine != Some("GenesysExtended"))
        .collect();
    let after = q.get("nextPage").filter(|k| !k.is_empty());
    let rest: Vec<&&DictionaryFeedbackEntry> = matching
        .iter()
        .filter(|e| after.is_none_or(|k| e.id.as_str() > k.as_str()))
        .collect();
    let page: Vec<Value> = rest.iter().take(page_size).map(|e| e.listed()).collect();
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let mut base = format!("{PATH}?pageSize={page_size}");
    if let Some(d) = dialect {
        base.push_str(&format!("&dialect={}", enc(d)));
    }
    let mut body = json!({
        "entities": page,
        "pageSize": page_size,
        "total": matching.len(),
        "pageCount": matching.len().div_ceil(page_size),
        "selfUri": base,
    });
    if rest.len() > page_size {
        if let Some(last) = rest.get(page_size - 1) {
            body["nextUri"] = json!(format!("{base}&nextPage={}", enc(&last.id)));
        }
    }
    ok(body, &rate)
}

async fn read(
    State(st): St,
    Extension(corr): Extension<CorrelationId>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let rate = match st.admit(&headers, &corr) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    match lock(&st.feedback.entries).get(&id) {
        Some(e) => ok(e.full(), &rate),
        None => not_found(&id, &corr),
    }
}

/// A body the API accepts, read.
struct Valid {
    term: String,
    dialect: String,
    boost_value: f64,
    example_phrases: Vec<String>,
    sounds_like: Vec<String>,
}

fn dialect_ok(d: &str) -> bool {
    let b = d.as_bytes();
    b.len() == 5
        && b[0].is_ascii_lowercase()
        && b[1].is_ascii_lowercase()
        && b[2] == b'-'
        && b[3].is_ascii_uppercase()
        && b[4].is_ascii_uppercase()
}

/// The checks of the SDK models' descriptions (see the module docs).
fn validate(body: &[u8]) -> Result<Valid, String> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| format!("The request body is not valid JSON: {e}"))?;
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::trim);
    let term = text("term")
        .filter(|t| !t.is_empty())
        .ok_or("term is required")?
        .to_string();
    let dialect = text("dialect").ok_or("dialect is required")?.to_string();
    if !dialect_ok(&dialect) {
        return Err(format!(
            "dialect {dialect:?} is not valid: the format is {{language}}-{{country}}, ISO 639-1 and ISO 3166-1 alpha 2, such as en-US"
        ));
    }
    let boost_value = match v.get("boostValue") {
        None | Some(Value::Null) => 2.0,
        Some(b) => match b.as_f64() {
            Some(b) if BOOST.contains(&b) => b,
            _ => return Err(format!("boostValue {b} is outside the range 1.0 to 10.0")),
        },
    };
    if let Some(s) = v.get("source").filter(|s| !s.is_null()) {
        if s.as_str() != Some("Manual") {
            return Err(format!(
                "source {s} is not valid: the only source is Manual"
            ));
        }
    }
    let sounds_like: Vec<String> = match v.get("soundsLike") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|s| {
                s.as_str()
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .ok_or_else(|| format!("soundsLike holds {s}, not a word"))
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(format!("soundsLike must be a list, not {other}")),
    };
    if sounds_like.len() > MAX_SOUNDS_LIKE {
        return Err(format!(
            "soundsLike holds {} terms; at most {MAX_SOUNDS_LIKE} are allowed",
            sounds_like.len()
        ));
    }
    let phrases: Vec<&Value> = match v.get("examplePhrases") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.iter().collect(),
        Some(other) => return Err(format!("examplePhrases must be a list, not {other}")),
    };
    let language = &dialect[..2];
    let english_or_spanish = language == "en" || language == "es";
    if english_or_spanish && !phrases.is_empty() {
        return Err(format!(
            "examplePhrases are not applicable for the dialect {dialect} (English and Spanish dialects take none)"
        ));
    }
    if !english_or_spanish && !PHRASES.contains(&phrases.len()) {
        return Err(format!(
            "examplePhrases holds {} phrases; the dialect {dialect} needs at least 3 and up to 20 unique phrases",
            phrases.len()
        ));
    }
    let mut example_phrases: Vec<String> = Vec::new();
    for (i, p) in phrases.iter().enumerate() {
        let n = i + 1;
        let phrase = p
            .get("phrase")
            .and_then(Value::as_str)
            .map(str::trim)
            .ok_or_else(|| format!("examplePhrases[{n}] has no phrase"))?;
        if let Some(s) = p.get("source").filter(|s| !s.is_null()) {
            if s.as_str() != Some("Manual") {
                return Err(format!(
                    "examplePhrases[{n}].source {s} is not valid: the only source is Manual"
                ));
            }
        }
        let words = phrase.split_whitespace().count();
        if !PHRASE_WORDS.contains(&words) {
            return Err(format!(
                "Example phrase {n} ({phrase:?}) has {words} words; it needs at least 3 and up to 20"
            ));
        }
        if !phrase.to_lowercase().contains(&term.to_lowercase()) {
            return Err(format!(
                "Example phrase {n} ({phrase:?}) must contain the term {term:?}"
            ));
        }
        if example_phrases
            .iter()
            .any(|q| q.eq_ignore_ascii_case(phrase))
        {
            return Err(format!(
                "Example phrase {n} ({phrase:?}) is a repeat: the phrases must be unique"
            ));
        }
        example_phrases.push(phrase.to_string());
    }
    Ok(Valid {
        term,
        dialect,
        boost_value,
        example_phrases,
        sounds_like,
    })
}

/// Another entry with the same term and dialect (`except` is the entry being updated): a term
/// is in a dialect's dictionary once.
fn duplicate<'a>(
    entries: &'a BTreeMap<String, DictionaryFeedbackEntry>,
    v: &Valid,
    except: Option<&str>,
) -> Option<&'a DictionaryFeedbackEntry> {
    entries.values().find(|e| {
        Some(e.id.as_str()) != except
            && e.dialect == v.dialect
            && e.term.to_lowercase() == v.term.to_lowercase()
    })
}

/// The rate limit's answer for a change, or the 403 a role that may only view gets (naming the
/// permission `speechAndTextAnalytics:dictionaryterm:<what>`).
fn admit_change(
    st: &AppState,
    headers: &HeaderMap,
    corr: &CorrelationId,
    what: &str,
) -> Result<super::respond::RateInfo, Box<Response>> {
    let rate = st.admit(headers, corr)?;
    if st.cfg.dictionary_view_only {
        return Err(Box::new(missing_permission(
            &format!("speechAndTextAnalytics:dictionaryterm:{what}"),
            corr,
        )));
    }
    Ok(rate)
}

async fn create(
    State(st): St,
    Extension(corr): Extension<CorrelationId>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let rate = match admit_change(&st, &headers, &corr, "add") {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let v = match validate(&body) {
        Ok(v) => v,
        Err(m) => return bad_request(m, &corr),
    };
    let mut entries = lock(&st.feedback.entries);
    if let Some(d) = duplicate(&entries, &v, None) {
        return bad_request(
            format!(
                "The term {:?} already exists in the dialect {} (dictionary feedback {})",
                v.term, v.dialect, d.id
            ),
            &corr,
        );
    }
    if entries.values().filter(|e| e.dialect == v.dialect).count() >= MAX_PER_DIALECT {
        return bad_request(
            format!(
                "The dialect {} already holds {MAX_PER_DIALECT} dictionary terms, the most an organization may store",
                v.dialect
            ),
            &corr,
        );
    }
    let now = Utc::now();
    let e = DictionaryFeedbackEntry {
        id: uuid_like(rand::random::<u64>()),
        term: v.term,
        dialect: v.dialect,
        boost_value: v.boost_value,
        example_phrases: v.example_phrases,
        sounds_like: v.sounds_like,
        created_by: API_USER.into(),
        date_created: now,
        date_modified: now,
        updates: 0,
    };
    let body = e.full();
    entries.insert(e.id.clone(), e);
    ok(body, &rate)
}

async fn update(
    State(st): St,
    Extension(corr): Extension<CorrelationId>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let rate = match admit_change(&st, &headers, &corr, "edit") {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let mut entries = lock(&st.feedback.entries);
    if !entries.contains_key(&id) {
        return not_found(&id, &corr);
    }
    let v = match validate(&body) {
        Ok(v) => v,
        Err(m) => return bad_request(m, &corr),
    };
    if let Some(d) = duplicate(&entries, &v, Some(&id)) {
        return bad_request(
            format!(
                "The term {:?} already exists in the dialect {} (dictionary feedback {})",
                v.term, v.dialect, d.id
            ),
            &corr,
        );
    }
    let Some(e) = entries.get_mut(&id) else {
        return not_found(&id, &corr);
    };
    e.term = v.term;
    e.dialect = v.dialect;
    e.boost_value = v.boost_value;
    e.example_phrases = v.example_phrases;
    e.sounds_like = v.sounds_like;
    e.date_modified = Utc::now();
    e.updates += 1;
    ok(e.full(), &rate)
}

async fn remove(
    State(st): St,
    Extension(corr): Extension<CorrelationId>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let rate = match admit_change(&st, &headers, &corr, "delete") {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    match lock(&st.feedback.entries).remove(&id) {
        Some(_) => with_rate(json_response(StatusCode::NO_CONTENT, Vec::new()), &rate),
        None => not_found(&id, &corr),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::archive::tests::{cfg, launch, token};

    fn phrases(term: &str) -> Value {
        json!([
            {"phrase": format!("welcome to {term}"), "source": "Manual"},
            {"phrase": format!("thanks for calling {term}")},
            {"phrase": format!("{term} is a platform")},
        ])
    }

    #[tokio::test]
    async fn entries_are_validated_paged_and_kept() {
        let sim = launch(cfg()).await;
        let http = reqwest::Client::new();
        let tok = token(&http, &sim).await;
        let url = format!("{}{PATH}", sim.url);
        let post = |body: Value| http.post(&url).bearer_auth(&tok).json(&body).send();
        let message = |r: reqwest::Response| async move {
            let status = r.status().as_u16();
            let v: Value = r.json().await.unwrap();
            (
                status,
                v["message"].as_str().unwrap_or_default().to_string(),
            )
        };

        let eleven: Vec<String> = (0..11).map(|i| format!("a{i}")).collect();
        for (body, want) in [
            (json!({"dialect": "en-US"}), "term is required"),
            (
                json!({"term": "Acme", "dialect": "english"}),
                "dialect \"english\"",
            ),
            (
                json!({"term": "Acme", "dialect": "en-US", "boostValue": 11}),
                "boostValue",
            ),
            (
                json!({"term": "Acme", "dialect": "en-US", "source": "Import"}),
                "only source",
            ),
            (
                json!({"term": "Acme", "dialect": "en-US", "soundsLike": eleven}),
                "at most 10",
            ),
            (
                json!({"term": "Acme", "dialect": "en-US", "examplePhrases": phrases("Acme")}),
                "not applicable",
            ),
            (json!({"term": "Acme", "dialect": "de-DE"}), "at least 3"),
            (
                json!({"term": "Acme", "dialect": "de-DE", "examplePhrases": phrases("Other")}),
                "must contain the term",
            ),
            (
                json!({"term": "Genesys", "dialect": "en-US"}),
                "already exists",
            ),
        ] {
            let (status, m) = message(post(body.clone()).await.unwrap()).await;
            assert_eq!(status, 400, "{body}");
            assert!(m.contains(want), "{body}: {m}");
        }

        let created: Value = post(json!({
            "term": "Acme", "dialect": "de-DE", "examplePhrases": phrases("Acme"),
            "soundsLike": ["Akmee"], "source": "Manual"
        }))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        let id = created["id"].as_str().unwrap().to_string();
        assert_eq!(created["boostValue"], 2.0);
        assert_eq!(created["examplePhrases"][1]["source"], "Manual");

        // Pages of one: every de-DE entry once, the last page without nextUri.
        let mut seen = Vec::new();
        let mut next = format!("{url}?dialect=de-DE&pageSize=1");
        loop {
            let page: Value = http
                .get(&next)
                .bearer_auth(&tok)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(page["total"], 2);
            for e in page["entities"].as_array().unwrap() {
                assert!(e.get("examplePhrases").is_none() && e.get("soundsLike").is_none());
                seen.push(e["term"].as_str().unwrap().to_string());
            }
            match page["nextUri"].as_str() {
                Some(n) => next = format!("{}{n}", sim.url),
                None => break,
            }
        }
        seen.sort();
        assert_eq!(seen, ["Acme", "Genesys"]);

        let put = |body: Value| {
            http.put(format!("{url}/{id}"))
                .bearer_auth(&tok)
                .json(&body)
                .send()
        };
        let updated: Value = put(json!({
            "term": "Acme", "dialect": "de-DE", "examplePhrases": phrases("Acme"), "soundsLike": []
        }))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        assert_eq!(updated["soundsLike"], json!([]));
        let (status, m) = message(put(json!({"term": "Genesys", "dialect": "de-DE", "examplePhrases": phrases("Genesys")})).await.unwrap()).await;
        assert_eq!((status, m.contains("already exists")), (400, true), "{m}");
        let missing = http
            .get(format!("{url}/no-such-id"))
            .bearer_auth(&tok)
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), 404);
        let gone = http
            .delete(format!("{url}/{id}"))
            .bearer_auth(&tok)
            .send()
            .await
            .unwrap();
        assert_eq!(gone.status(), 204);
        let unauthorized = http.get(&url).send().await.unwrap();
        assert_eq!(unauthorized.status(), 401);
        sim.shutdown().await;

        let mut view_only = cfg();
        view_only.dictionary_view_only = true;
        let sim = launch(view_only).await;
        let tok = token(&http, &sim).await;
        let r = http
            .post(format!("{}{PATH}", sim.url))
            .bearer_auth(&tok)
            .json(&json!({"term": "Acme", "dialect": "en-US"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["code"], "missing.permissions");
        assert!(v["message"]
            .as_str()
            .unwrap()
            .contains("speechAndTextAnalytics:dictionaryterm:add"));
        let listed = http
            .get(format!("{}{PATH}", sim.url))
            .bearer_auth(&tok)
            .send()
            .await
            .unwrap();
        assert_eq!(listed.status(), 200, "viewing is allowed");
        sim.shutdown().await;
    }
}
