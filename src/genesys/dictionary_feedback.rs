//! Speech and Text Analytics dictionary feedback (`/api/v2/speechandtextanalytics/dictionaryfeedback`):
//! the terms transcription should recognise, with how they sound and example phrases. The
//! client (list every page, get, create, update) goes through [`ApiClient`]; the rest is the
//! API's rules (docs/genesys-verified.md, "Dictionary feedback") as pure functions: which
//! phrases an entry may carry, and what `dictionary push` must send for a product.
//!
//! Invariants: an entry built here passes every limit the SDK models state (at most 10
//! soundsLike; none or 3 to 20 unique example phrases of 3 to 20 words, each containing the
//! term; boost 1.0 to 10.0; source `Manual`); the same product, utterances and existing entry
//! give the same entry, so a second push of an unchanged lake sends nothing.

use std::collections::HashMap;

use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{ApiClient, GenesysError};

/// The collection: `GET` lists (paged by `nextPage`), `POST` creates, `/{id}` reads, updates
/// (`PUT`) and deletes.
pub const PATH: &str = "/api/v2/speechandtextanalytics/dictionaryfeedback";
/// The listing's page size: the API's default (SDK v269: "Default is 500 per page").
pub const PAGE_SIZE: u32 = 500;
/// Entries an organization may store per dialect (SDK v269, `page_size` of the listing).
pub const MAX_TERMS_PER_DIALECT: usize = 1000;
/// soundsLike: "a list of up to 10 terms".
pub const MAX_SOUNDS_LIKE: usize = 10;
/// examplePhrases: "a list of at least 3 and up to 20 unique phrases".
pub const MIN_EXAMPLE_PHRASES: usize = 3;
pub const MAX_EXAMPLE_PHRASES: usize = 20;
/// An example phrase: "at least 3 words and up to 20 words".
pub const MIN_PHRASE_WORDS: usize = 3;
pub const MAX_PHRASE_WORDS: usize = 20;
/// boostValue: "Boost range is from 1.0 to 10.0. Default is 2.0".
pub const MIN_BOOST: f64 = 1.0;
pub const MAX_BOOST: f64 = 10.0;
pub const DEFAULT_BOOST: f64 = 2.0;
/// The only `source` the models allow, for the entry and for each phrase.
pub const SOURCE: &str = "Manual";
/// The permission of each operation (SDK docs: "Requires ALL permissions").
pub const PERMISSION_VIEW: &str = "speechAndTextAnalytics:dictionaryterm:view";
pub const PERMISSION_ADD: &str = "speechAndTextAnalytics:dictionaryterm:add";
pub const PERMISSION_EDIT: &str = "speechAndTextAnalytics:dictionaryterm:edit";

/// The phrases sent when the lake holds fewer than [`MIN_EXAMPLE_PHRASES`] usable utterances
/// for a product (`{term}` is replaced by the canonical name): the API takes no fewer.
pub const GENERATED_PHRASES: [&str; 3] = [
    "I am calling about {term}",
    "I have a question about {term}",
    "can you help me with {term}",
];

/// One example phrase as the API carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExamplePhrase {
    pub phrase: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// An entry of the listing (`ListedDictionaryFeedback`: no phrases, no soundsLike).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Listed {
    pub id: String,
    pub term: String,
    pub dialect: String,
    #[serde(default)]
    pub boost_value: Option<f64>,
}

/// A whole entry (`DictionaryFeedback`), as `GET /{id}`, `POST` and `PUT` answer.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub id: String,
    pub term: String,
    pub dialect: String,
    #[serde(default)]
    pub boost_value: Option<f64>,
    #[serde(default)]
    pub example_phrases: Vec<ExamplePhrase>,
    #[serde(default)]
    pub sounds_like: Vec<String>,
}

/// What convlake sends for one product.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    pub term: String,
    pub dialect: String,
    pub boost_value: f64,
    pub example_phrases: Vec<String>,
    pub sounds_like: Vec<String>,
}

impl Desired {
    /// The request body of `POST` and `PUT`.
    pub fn body(&self) -> Value {
        let mut body = json!({
            "term": self.term,
            "dialect": self.dialect,
            "boostValue": self.boost_value,
            "source": SOURCE,
            "soundsLike": self.sounds_like,
        });
        if !self.example_phrases.is_empty() {
            body["examplePhrases"] = self
                .example_phrases
                .iter()
                .map(|p| json!({"phrase": p, "source": SOURCE}))
                .collect();
        }
        body
    }

    /// What differs between this and `existing`, by field name (empty: nothing to send).
    /// Order does not matter: the API keeps lists, convlake compares them as sets.
    pub fn changes(&self, existing: &Entry) -> Vec<&'static str> {
        let sorted = |v: &mut Vec<String>| {
            v.sort();
            v.dedup();
        };
        let mut out = Vec::new();
        if existing.term != self.term {
            out.push("term");
        }
        let (mut want, mut have) = (self.sounds_like.clone(), existing.sounds_like.clone());
        sorted(&mut want);
        sorted(&mut have);
        if want != have {
            out.push("soundsLike");
        }
        let mut want = self.example_phrases.clone();
        let mut have: Vec<String> = existing
            .example_phrases
            .iter()
            .map(|p| p.phrase.clone())
            .collect();
        sorted(&mut want);
        sorted(&mut have);
        if want != have {
            out.push("examplePhrases");
        }
        out
    }
}

/// Whether entries of `dialect` take example phrases. SDK v269: examplePhrases are "not
/// applicable for English and Spanish dialects"; other dialects need 3 to 20.
pub fn takes_example_phrases(dialect: &str) -> bool {
    let language = dialect.split('-').next().unwrap_or("").trim();
    !(language.eq_ignore_ascii_case("en") || language.eq_ignore_ascii_case("es"))
}

fn words(s: &str) -> usize {
    s.split_whitespace().count()
}

fn contains_term(phrase: &str, term: &str) -> bool {
    phrase.to_lowercase().contains(&term.to_lowercase())
}

/// Whether `phrase` is an example phrase the API accepts for `term`.
pub fn valid_phrase(phrase: &str, term: &str) -> bool {
    (MIN_PHRASE_WORDS..=MAX_PHRASE_WORDS).contains(&words(phrase)) && contains_term(phrase, term)
}

/// The generated phrases for `term` ([`GENERATED_PHRASES`]).
pub fn generated_phrases(term: &str) -> Vec<String> {
    GENERATED_PHRASES
        .iter()
        .map(|t| t.replace("{term}", term))
        .collect()
}

/// An example phrase made from an utterance that mentions the product at characters
/// `[start, end)`: the mention is replaced by the term (the utterance may say an alias, a
/// sounds-like spelling or a split form of the name, and the API wants the term in the phrase),
/// then the phrase is cut to at most [`MAX_PHRASE_WORDS`] words around it. `None` when the
/// offsets do not fit the text, the phrase is shorter than [`MIN_PHRASE_WORDS`] words or
/// holds a redaction tag (`[card number]`).
pub fn phrase_from_utterance(text: &str, start: usize, end: usize, term: &str) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    if start >= end || end > chars.len() {
        return None;
    }
    let before: String = chars[..start].iter().collect();
    let after: String = chars[end..].iter().collect();
    let term_at = before.chars().count();
    let term_end = term_at + term.chars().count();
    let full = format!("{before}{term}{after}");
    // Words with their character ranges.
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut word_start = None;
    for (i, c) in full.chars().enumerate() {
        match (c.is_whitespace(), word_start) {
            (false, None) => word_start = Some(i),
            (true, Some(s)) => {
                spans.push((s, i));
                word_start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = word_start {
        spans.push((s, full.chars().count()));
    }
    let first = spans
        .iter()
        .position(|&(s, e)| e > term_at && s < term_end)?;
    let last = spans
        .iter()
        .rposition(|&(s, e)| e > term_at && s < term_end)?;
    let (mut lo, mut hi) = (first, last + 1);
    // Widen around the term, one word on each side in turn.
    while hi - lo < MAX_PHRASE_WORDS && (lo > 0 || hi < spans.len()) {
        lo = lo.saturating_sub(1);
        if hi - lo < MAX_PHRASE_WORDS && hi < spans.len() {
            hi += 1;
        }
    }
    let full: Vec<char> = full.chars().collect();
    let phrase: Vec<String> = spans[lo..hi]
        .iter()
        .map(|&(s, e)| full[s..e].iter().collect())
        .collect();
    let phrase = phrase.join(" ");
    if phrase.contains('[') || phrase.contains(']') || !valid_phrase(&phrase, term) {
        return None;
    }
    Some(phrase)
}

/// The example phrases of an entry for `term`: the real phrases `existing` already has (kept,
/// so an entry does not churn as the lake grows), then `candidates` (made from the lake's
/// utterances, best first) up to [`MAX_EXAMPLE_PHRASES`], unique regardless of case; when fewer
/// than [`MIN_EXAMPLE_PHRASES`] remain, the generated phrases fill up to that minimum.
pub fn choose_phrases(term: &str, existing: &[String], candidates: &[String]) -> Vec<String> {
    let generated = generated_phrases(term);
    let is_generated = |p: &str| generated.iter().any(|g| g.eq_ignore_ascii_case(p));
    let mut out: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let kept = existing.iter().filter(|p| !is_generated(p));
    for p in kept.chain(candidates.iter()) {
        if out.len() == MAX_EXAMPLE_PHRASES {
            break;
        }
        if valid_phrase(p, term) && seen.insert(p.to_lowercase()) {
            out.push(p.clone());
        }
    }
    for g in generated {
        if out.len() >= MIN_EXAMPLE_PHRASES {
            break;
        }
        if seen.insert(g.to_lowercase()) {
            out.push(g);
        }
    }
    out
}

/// The soundsLike of an entry: the product's sounds-like spellings without repeats (regardless
/// of case) or the term itself, at most [`MAX_SOUNDS_LIKE`] in the dictionary's order; the
/// second value is how many were left out.
pub fn choose_sounds_like(term: &str, sounds_like: &[String]) -> (Vec<String>, usize) {
    let mut seen = std::collections::HashSet::new();
    seen.insert(term.trim().to_lowercase());
    let unique: Vec<String> = sounds_like
        .iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && seen.insert(s.to_lowercase()))
        .collect();
    let dropped = unique.len().saturating_sub(MAX_SOUNDS_LIKE);
    (unique.into_iter().take(MAX_SOUNDS_LIKE).collect(), dropped)
}

/// Why an entry cannot be built for a product (checked before anything is sent).
pub fn check(d: &Desired) -> Result<(), String> {
    if d.term.trim().is_empty() {
        return Err("the term is empty".into());
    }
    if !(MIN_BOOST..=MAX_BOOST).contains(&d.boost_value) {
        return Err(format!(
            "boostValue {} is outside {MIN_BOOST} to {MAX_BOOST}",
            d.boost_value
        ));
    }
    if d.sounds_like.len() > MAX_SOUNDS_LIKE {
        return Err(format!("more than {MAX_SOUNDS_LIKE} soundsLike"));
    }
    let n = d.example_phrases.len();
    if takes_example_phrases(&d.dialect) {
        if !(MIN_EXAMPLE_PHRASES..=MAX_EXAMPLE_PHRASES).contains(&n) {
            return Err(format!(
                "{n} example phrases; the API takes {MIN_EXAMPLE_PHRASES} to {MAX_EXAMPLE_PHRASES}"
            ));
        }
        if let Some(p) = d.example_phrases.iter().find(|p| !valid_phrase(p, &d.term)) {
            return Err(format!(
                "no example phrase can be made: {p:?} needs {MIN_PHRASE_WORDS} to {MAX_PHRASE_WORDS} words and the term (is the name longer than {} words?)",
                MAX_PHRASE_WORDS - 5
            ));
        }
    } else if n > 0 {
        return Err(format!(
            "example phrases are not applicable in the dialect {}",
            d.dialect
        ));
    }
    Ok(())
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8], what: &str) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("not a valid {what}: {e}"))
}

fn malformed(url: &str, reason: String) -> GenesysError {
    GenesysError::Malformed {
        url: url.to_string(),
        attempts: 1,
        reason,
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    #[serde(default)]
    entities: Vec<Listed>,
    #[serde(default)]
    next_uri: Option<String>,
}

/// The `nextPage` key of a listing's `nextUri` (absolute or relative), if any.
fn next_page_key(next_uri: Option<&str>) -> Option<String> {
    let uri = next_uri.filter(|u| !u.is_empty())?;
    let url = url::Url::parse("http://x.invalid/").ok()?.join(uri).ok()?;
    let key = url
        .query_pairs()
        .find(|(k, _)| k == "nextPage")
        .map(|(_, v)| v.into_owned());
    key.filter(|k| !k.is_empty())
}

/// The path of one listing page.
pub fn list_path(dialect: &str, page_size: u32, next_page: Option<&str>) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let mut p = format!("{PATH}?dialect={}&pageSize={page_size}", enc(dialect));
    if let Some(k) = next_page {
        p.push_str("&nextPage=");
        p.push_str(&enc(k));
    }
    p
}

/// Every entry of `dialect`, all pages (the page after the last has no `nextUri`; a key seen
/// before ends the listing too, so a server that repeats itself cannot loop it forever).
pub async fn list(
    client: &ApiClient,
    dialect: &str,
    page_size: u32,
) -> Result<Vec<Listed>, GenesysError> {
    let validate = |b: &[u8]| parse::<Page>(b, "page of dictionary feedback").map(|_| ());
    let mut out = Vec::new();
    let mut key: Option<String> = None;
    let mut seen = std::collections::HashSet::new();
    loop {
        let path = list_path(dialect, page_size.max(1), key.as_deref());
        let body = client.send(Method::GET, &path, None, &validate).await?;
        let page: Page =
            parse(&body, "page of dictionary feedback").map_err(|r| malformed(&path, r))?;
        let empty = page.entities.is_empty();
        out.extend(page.entities);
        match next_page_key(page.next_uri.as_deref()) {
            Some(k) if !empty && seen.insert(k.clone()) => key = Some(k),
            _ => return Ok(out),
        }
    }
}

/// One entry by id; `None` when it does not exist (404).
pub async fn get(client: &ApiClient, id: &str) -> Result<Option<Entry>, GenesysError> {
    let path = format!("{PATH}/{}", encode_id(id));
    let validate = |b: &[u8]| parse::<Entry>(b, "dictionary feedback entry").map(|_| ());
    match client.send(Method::GET, &path, None, &validate).await {
        Ok(body) => parse(&body, "dictionary feedback entry")
            .map(Some)
            .map_err(|r| malformed(&path, r)),
        Err(GenesysError::Rejected { status, .. }) if status == StatusCode::NOT_FOUND.as_u16() => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Creates an entry; the entry as stored.
pub async fn create(client: &ApiClient, d: &Desired) -> Result<Entry, GenesysError> {
    let validate = |b: &[u8]| parse::<Entry>(b, "created dictionary feedback").map(|_| ());
    let body = client
        .send(Method::POST, PATH, Some(&d.body()), &validate)
        .await?;
    parse(&body, "created dictionary feedback").map_err(|r| malformed(PATH, r))
}

/// Replaces entry `id` with `d`; the entry as stored.
pub async fn update(client: &ApiClient, id: &str, d: &Desired) -> Result<Entry, GenesysError> {
    let path = format!("{PATH}/{}", encode_id(id));
    let validate = |b: &[u8]| parse::<Entry>(b, "updated dictionary feedback").map(|_| ());
    let body = client
        .send(Method::PUT, &path, Some(&d.body()), &validate)
        .await?;
    parse(&body, "updated dictionary feedback").map_err(|r| malformed(&path, r))
}

/// An id as one path segment (ids are UUIDs; anything else is escaped, never a path).
fn encode_id(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

// ---------------------------------------------------------------------------------------------
// `dictionary push`: what exists, what the dictionary and the lake want, the difference.

/// The lake file that records the entries convlake created (their ids): the API keeps no
/// marker a client can set (`source` takes only `Manual`, there is no label or description),
/// so, like Terraform's state, the ids are kept on convlake's side.
pub const LEDGER_PATH: &str = "genesys/dictionary_feedback.json";
const LEDGER_FORMAT: &str = "convlake.dictionary_feedback.v1";
/// Utterances read per product to find example phrases (some do not make one).
const CANDIDATE_UTTERANCES: usize = 3 * MAX_EXAMPLE_PHRASES;

/// One entry convlake created.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owned {
    pub id: String,
    pub term: String,
    pub dialect: String,
    pub created: chrono::DateTime<chrono::Utc>,
}

/// The entries convlake created, as [`LEDGER_PATH`] holds them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    pub format: String,
    pub entries: Vec<Owned>,
}

/// What can stop a push. Messages name the product or file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// `cause` is shown in the message, not as a source, so it is said once.
    #[error("{what}: {cause}{hint}")]
    Api {
        what: String,
        hint: String,
        cause: GenesysError,
    },
    #[error("{path} in the lake {lake} is not convlake's record of the entries it created ({reason}); move it aside and run `convlake dictionary push --dry-run`: without it every existing entry counts as not convlake's and is left alone")]
    Ledger {
        path: String,
        lake: String,
        reason: String,
    },
    #[error(transparent)]
    Lake(#[from] crate::lake::LakeError),
    #[error("no dictionary feedback entry can be made for {product:?}: {reason}. Nothing was sent; fix the product in the dictionary, then `convlake extract` and push again")]
    Invalid { product: String, reason: String },
    #[error("the lake {lake} keeps no copy of dictionary version {version}, so its products are unknown: run `convlake extract --dictionary FILE` with its file, then push again")]
    NoProducts { lake: String, version: String },
}

impl Ledger {
    /// The lake's record; empty when there is none yet.
    pub async fn load(lake: &crate::lake::Lake) -> Result<Ledger, PushError> {
        if !lake.exists(LEDGER_PATH).await? {
            return Ok(Ledger {
                format: LEDGER_FORMAT.into(),
                entries: Vec::new(),
            });
        }
        let bytes = lake.get(LEDGER_PATH).await?;
        let bad = |reason: String| PushError::Ledger {
            path: LEDGER_PATH.into(),
            lake: lake.location(),
            reason,
        };
        let ledger: Ledger = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        if ledger.format != LEDGER_FORMAT {
            return Err(bad(format!("format {:?}", ledger.format)));
        }
        Ok(ledger)
    }

    /// Writes the record whole (a lake file is complete or absent).
    pub async fn save(&self, lake: &crate::lake::Lake) -> Result<(), PushError> {
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        lake.put(LEDGER_PATH, bytes.into()).await?;
        Ok(())
    }

    fn owns(&self, id: &str) -> bool {
        self.entries.iter().any(|e| e.id == id)
    }
}

/// What a push does for one product.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// No entry for the term: create one.
    Create,
    /// convlake's entry differs in these fields.
    Update {
        id: String,
        changes: Vec<&'static str>,
    },
    /// convlake's entry already says it all.
    Unchanged { id: String },
    /// An entry for the term exists that convlake did not create: left alone.
    Skip { id: String },
}

/// One product's part of a push.
#[derive(Clone, Debug, PartialEq)]
pub struct Planned {
    pub product: String,
    pub action: Action,
    pub desired: Desired,
}

/// Everything a push would do, worked out from what exists and sent nothing yet.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub dialect: String,
    pub items: Vec<Planned>,
    /// Products whose sounds_like had more spellings than the API takes: (product, left out).
    pub trimmed: Vec<(String, usize)>,
    /// Entries the ledger holds in this dialect that Genesys no longer has (deleted there):
    /// forgotten, and their products created again.
    pub gone: Vec<Owned>,
    /// Terms of convlake's entries in this dialect whose product left the dictionary (kept).
    pub orphaned: Vec<String>,
    /// Products that had no usable utterance in the lake (generated phrases only).
    pub generated: Vec<String>,
    ledger: Ledger,
    listed: Vec<Listed>,
}

impl Plan {
    /// How many items take each action: (create, update, unchanged, skip).
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let mut c = (0, 0, 0, 0);
        for i in &self.items {
            match i.action {
                Action::Create => c.0 += 1,
                Action::Update { .. } => c.1 += 1,
                Action::Unchanged { .. } => c.2 += 1,
                Action::Skip { .. } => c.3 += 1,
            }
        }
        c
    }
}

fn api(what: String, hint: &str, cause: GenesysError) -> PushError {
    let hint = match &cause {
        GenesysError::Rejected { status: 403, .. } => format!(". {hint}"),
        GenesysError::Rejected { status: 401, .. } => ". The token was refused right after it was issued: check that the OAuth client is active and belongs to this organization and region (--region / GENESYSCLOUD_REGION, or --api-url)".to_string(),
        GenesysError::Rejected { status: 400, .. } => ". Nothing more was sent; fix what Genesys names (the dialect comes from --dialect, the rest from the dictionary) and push again".to_string(),
        _ => String::new(),
    };
    PushError::Api { what, hint, cause }
}

const VIEW_HINT: &str = "Give the OAuth client's role speechAndTextAnalytics:dictionaryterm:view (a push also needs :add and :edit)";

/// Example phrases per product from the lake: for each utterance that mentions it (the first
/// of a conversation, conversations in id order), the phrase [`phrase_from_utterance`] makes.
async fn lake_phrases(
    lake: &crate::lake::Lake,
    dict: &crate::extract::Dictionary,
) -> Result<HashMap<String, Vec<String>>, PushError> {
    let ctx = crate::lake::tables::session(lake, &dict.version).await?;
    let examples = crate::lake::examples::examples(&ctx, "true", CANDIDATE_UTTERANCES).await?;
    let terms: HashMap<&str, &str> = dict
        .products
        .iter()
        .map(|p| (p.name.as_str(), p.name.as_str()))
        .collect();
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for e in examples {
        let Some(term) = terms.get(e.product.as_str()) else {
            continue;
        };
        let Some(&(start, end, _)) = e.highlights.iter().find(|h| h.2) else {
            continue;
        };
        if let Some(p) = phrase_from_utterance(&e.text, start, end, term) {
            out.entry(e.product.clone()).or_default().push(p);
        }
    }
    Ok(out)
}

/// Works out a push of `dict`'s products into `dialect`: lists what exists (every page), reads
/// convlake's own entries in full, and compares. Sends nothing.
pub async fn plan(
    lake: &crate::lake::Lake,
    client: &ApiClient,
    dict: &crate::extract::Dictionary,
    dialect: &str,
) -> Result<Plan, PushError> {
    if dict.products.is_empty() {
        return Err(PushError::NoProducts {
            lake: lake.location(),
            version: dict.version.clone(),
        });
    }
    let ledger = Ledger::load(lake).await?;
    let listed = list(client, dialect, PAGE_SIZE).await.map_err(|e| {
        api(
            format!("listing the dictionary feedback of {dialect}"),
            VIEW_HINT,
            e,
        )
    })?;
    let phrases = if takes_example_phrases(dialect) {
        lake_phrases(lake, dict).await?
    } else {
        HashMap::new()
    };
    let mut plan = Plan {
        dialect: dialect.to_string(),
        ..Plan::default()
    };
    let same = |a: &str, b: &str| a.to_lowercase() == b.to_lowercase();
    plan.gone = ledger
        .entries
        .iter()
        .filter(|o| o.dialect == dialect && !listed.iter().any(|l| l.id == o.id))
        .cloned()
        .collect();
    for p in &dict.products {
        let ours = listed
            .iter()
            .find(|l| ledger.owns(&l.id) && same(&l.term, &p.name));
        let existing = match ours {
            Some(l) => get(client, &l.id).await.map_err(|e| {
                api(
                    format!(
                        "reading the dictionary feedback entry {} ({:?})",
                        l.id, l.term
                    ),
                    VIEW_HINT,
                    e,
                )
            })?,
            None => None,
        };
        let (sounds_like, dropped) = choose_sounds_like(&p.name, &p.sounds_like);
        if dropped > 0 {
            plan.trimmed.push((p.name.clone(), dropped));
        }
        let candidates = phrases.get(&p.name).map(Vec::as_slice).unwrap_or_default();
        let example_phrases = if takes_example_phrases(dialect) {
            let kept: Vec<String> = existing
                .iter()
                .flat_map(|e| e.example_phrases.iter().map(|x| x.phrase.clone()))
                .collect();
            if candidates.is_empty() {
                plan.generated.push(p.name.clone());
            }
            choose_phrases(&p.name, &kept, candidates)
        } else {
            Vec::new()
        };
        let boost_value = existing
            .as_ref()
            .and_then(|e| e.boost_value)
            .filter(|b| (MIN_BOOST..=MAX_BOOST).contains(b))
            .unwrap_or(DEFAULT_BOOST);
        let desired = Desired {
            term: p.name.clone(),
            dialect: dialect.to_string(),
            boost_value,
            example_phrases,
            sounds_like,
        };
        check(&desired).map_err(|reason| PushError::Invalid {
            product: p.name.clone(),
            reason,
        })?;
        let action = match &existing {
            Some(e) => match desired.changes(e) {
                c if c.is_empty() => Action::Unchanged { id: e.id.clone() },
                changes => Action::Update {
                    id: e.id.clone(),
                    changes,
                },
            },
            None => match listed
                .iter()
                .find(|l| !ledger.owns(&l.id) && same(&l.term, &p.name))
            {
                Some(f) => Action::Skip { id: f.id.clone() },
                None => Action::Create,
            },
        };
        plan.items.push(Planned {
            product: p.name.clone(),
            action,
            desired,
        });
    }
    plan.orphaned = listed
        .iter()
        .filter(|l| ledger.owns(&l.id))
        .filter(|l| !dict.products.iter().any(|p| same(&p.name, &l.term)))
        .map(|l| l.term.clone())
        .collect();
    plan.ledger = ledger;
    plan.listed = listed;
    Ok(plan)
}

/// What [`apply`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub created: usize,
    pub updated: usize,
}

/// Carries out `plan`: creates (recording each new id in the ledger at once, so an entry
/// convlake made is never mistaken for someone else's) and updates, in dictionary order,
/// stopping at the first refusal.
pub async fn apply(
    lake: &crate::lake::Lake,
    client: &ApiClient,
    plan: &Plan,
) -> Result<Applied, PushError> {
    let mut ledger = plan.ledger.clone();
    ledger.format = LEDGER_FORMAT.into();
    if !plan.gone.is_empty() {
        ledger
            .entries
            .retain(|o| !plan.gone.iter().any(|g| g.id == o.id));
        ledger.save(lake).await?;
    }
    let mut done = Applied::default();
    for item in &plan.items {
        match &item.action {
            Action::Create => {
                let entry = match create(client, &item.desired).await {
                    Ok(e) => e,
                    Err(e) => {
                        // A create retried after a dropped answer may have been stored: an
                        // entry for the term that appeared since the listing is this one.
                        match adopt(client, plan, &item.desired).await {
                            Some(found) => found,
                            None => {
                                return Err(api(
                                    format!(
                                        "creating the entry for {:?} ({} created, {} updated before it)",
                                        item.product, done.created, done.updated
                                    ),
                                    "Give the OAuth client's role speechAndTextAnalytics:dictionaryterm:add",
                                    e,
                                ))
                            }
                        }
                    }
                };
                ledger.entries.push(Owned {
                    id: entry.id,
                    term: entry.term,
                    dialect: entry.dialect,
                    created: chrono::Utc::now(),
                });
                ledger.save(lake).await?;
                done.created += 1;
            }
            Action::Update { id, .. } => {
                update(client, id, &item.desired).await.map_err(|e| {
                    api(
                        format!(
                            "updating the entry {id} for {:?} ({} created, {} updated before it)",
                            item.product, done.created, done.updated
                        ),
                        "Give the OAuth client's role speechAndTextAnalytics:dictionaryterm:edit",
                        e,
                    )
                })?;
                done.updated += 1;
            }
            Action::Unchanged { .. } | Action::Skip { .. } => {}
        }
    }
    Ok(done)
}

/// The entry for `d`'s term that appeared since the plan's listing, if one did.
async fn adopt(client: &ApiClient, plan: &Plan, d: &Desired) -> Option<Entry> {
    let now = list(client, &d.dialect, PAGE_SIZE).await.ok()?;
    let new = now.iter().find(|l| {
        l.term.to_lowercase() == d.term.to_lowercase() && !plan.listed.iter().any(|o| o.id == l.id)
    })?;
    get(client, &new.id).await.ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mention_becomes_a_phrase_with_the_term() {
        let text = "hi my cloud phone pro keeps dropping calls";
        let start = text.find("cloud").unwrap();
        let end = start + "cloud phone pro".len();
        assert_eq!(
            phrase_from_utterance(text, start, end, "CloudPhone Pro").as_deref(),
            Some("hi my CloudPhone Pro keeps dropping calls")
        );
        // Too short once cut: fewer than three words.
        assert_eq!(phrase_from_utterance("acme router", 0, 11, "Acme"), None);
        assert_eq!(
            phrase_from_utterance("x", 0, 5, "Acme"),
            None,
            "offsets past the text"
        );
        let redacted = "my card is [card number] and the acme router broke";
        let s = redacted.find("acme").unwrap();
        assert_eq!(
            phrase_from_utterance(redacted, s, s + 11, "Acme Router"),
            None
        );
    }

    #[test]
    fn long_utterances_are_cut_around_the_term() {
        let words: Vec<String> = (0..60).map(|i| format!("w{i}")).collect();
        let mut text = words[..30].join(" ");
        text.push_str(" nimbus hub ");
        text.push_str(&words[30..].join(" "));
        let start = text.find("nimbus").unwrap();
        let p = phrase_from_utterance(&text, start, start + 10, "Nimbus Hub").unwrap();
        assert_eq!(p.split_whitespace().count(), MAX_PHRASE_WORDS);
        assert!(p.contains("Nimbus Hub"), "{p}");
        assert!(p.starts_with("w21 ") && p.ends_with(" w38"), "{p}");
    }

    #[test]
    fn phrases_keep_what_exists_then_fill_from_the_lake_then_generate() {
        let term = "Nimbus Hub";
        let lake: Vec<String> = (0..30)
            .map(|i| format!("my Nimbus Hub number {i}"))
            .collect();
        let chosen = choose_phrases(term, &[], &lake);
        assert_eq!(chosen, lake[..MAX_EXAMPLE_PHRASES].to_vec());
        // An existing real phrase stays; generated ones and invalid ones do not.
        let existing = vec![
            "an older Nimbus Hub phrase".to_string(),
            "I am calling about Nimbus Hub".to_string(),
            "no term here at all".to_string(),
        ];
        let chosen = choose_phrases(term, &existing, &lake);
        assert_eq!(chosen[0], existing[0]);
        assert_eq!(chosen.len(), MAX_EXAMPLE_PHRASES);
        assert!(!chosen.contains(&existing[1]) && !chosen.contains(&existing[2]));
        // Nothing in the lake: the generated phrases, exactly the minimum.
        assert_eq!(choose_phrases(term, &[], &[]), generated_phrases(term));
        let one = ["MY nimbus hub broke".to_string()];
        let chosen = choose_phrases(term, &[], &[one[0].clone(), one[0].to_lowercase()]);
        assert_eq!(chosen.len(), MIN_EXAMPLE_PHRASES);
        assert_eq!(chosen[0], one[0]);
    }

    #[test]
    fn sounds_like_is_deduplicated_and_capped() {
        let many: Vec<String> = (0..14).map(|i| format!("s{i:02}")).collect();
        let (kept, dropped) = choose_sounds_like("T", &many);
        assert_eq!(kept, many[..MAX_SOUNDS_LIKE].to_vec());
        assert_eq!(dropped, 4);
        let (kept, dropped) =
            choose_sounds_like("Acme", &["acme".into(), "Akmee".into(), "akmee".into()]);
        assert_eq!((kept, dropped), (vec!["Akmee".to_string()], 0));
    }

    #[test]
    fn english_and_spanish_take_no_phrases() {
        for d in ["en-US", "en-AU", "es-US", "ES-es"] {
            assert!(!takes_example_phrases(d), "{d}");
        }
        for d in ["de-DE", "fr-CA", "ja-JP", "english"] {
            assert!(takes_example_phrases(d), "{d}");
        }
    }

    #[test]
    fn bodies_and_changes() {
        let d = Desired {
            term: "Acme".into(),
            dialect: "de-DE".into(),
            boost_value: DEFAULT_BOOST,
            example_phrases: generated_phrases("Acme"),
            sounds_like: vec!["Akmee".into()],
        };
        assert_eq!(check(&d), Ok(()));
        let body = d.body();
        assert_eq!(body["source"], "Manual");
        assert_eq!(body["examplePhrases"][2]["source"], "Manual");
        assert_eq!(body["soundsLike"], json!(["Akmee"]));
        let mut stored = Entry {
            id: "1".into(),
            term: "Acme".into(),
            dialect: "de-DE".into(),
            boost_value: Some(5.0),
            example_phrases: d
                .example_phrases
                .iter()
                .rev()
                .map(|p| ExamplePhrase {
                    phrase: p.clone(),
                    source: None,
                })
                .collect(),
            sounds_like: vec!["Akmee".into()],
        };
        assert!(
            d.changes(&stored).is_empty(),
            "order and boost do not count"
        );
        stored.sounds_like.push("Ackme".into());
        assert_eq!(d.changes(&stored), vec!["soundsLike"]);
        let english = Desired {
            dialect: "en-US".into(),
            ..d.clone()
        };
        assert!(check(&english).is_err());
        let english = Desired {
            example_phrases: vec![],
            ..english
        };
        assert_eq!(check(&english), Ok(()));
        assert!(english.body().get("examplePhrases").is_none());
    }

    #[test]
    fn next_page_keys_come_from_the_next_uri() {
        assert_eq!(
            next_page_key(Some("/api/v2/x?pageSize=2&nextPage=abc%3D")).as_deref(),
            Some("abc=")
        );
        assert_eq!(
            next_page_key(Some("https://api.example/api/v2/x?nextPage=k")).as_deref(),
            Some("k")
        );
        assert_eq!(next_page_key(Some("/api/v2/x?pageSize=2")), None);
        assert_eq!(next_page_key(None), None);
        assert_eq!(
            list_path("en-US", 500, Some("a b")),
            format!("{PATH}?dialect=en-US&pageSize=500&nextPage=a+b")
        );
    }

    /// Whatever the utterance and the mention, a phrase that comes out is one the API takes
    /// (random utterances from a fixed seed: no proptest in this crate's dependencies).
    #[test]
    fn made_phrases_are_valid() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let alphabet: Vec<char> = "ab cd ef[]., \u{e9}".chars().collect();
        for _ in 0..5000 {
            let mut text = String::new();
            for _ in 0..next(240) {
                text.push(alphabet[next(alphabet.len() as u64) as usize]);
            }
            let len = text.chars().count();
            let start = next(len as u64 + 1) as usize;
            let end = start + next(14) as usize;
            let term = ["Acme", "Nimbus Hub", "Agent Assist Suite", "X"][next(4) as usize];
            if let Some(p) = phrase_from_utterance(&text, start, end, term) {
                assert!(valid_phrase(&p, term), "{p:?} from {text:?}");
                assert!(!p.contains('[') && !p.contains("  "), "{p:?}");
            }
        }
    }
}
