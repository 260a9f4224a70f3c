//! Masks personal data in text before it is written anywhere. A [`Masker`] finds IBANs, e-mail
//! addresses, payment card numbers, US social security numbers and phone numbers, then the
//! user's own patterns (`[[mask]]` tables in a masks file or in the product dictionary), and
//! replaces each with a tag in Genesys Cloud's redaction style: `[iban]`, `[email]`,
//! `[card number]`, `[ssn]`, `[phone number]`, or the pattern's replacement.
//!
//! Invariants:
//! - The output is the input with exactly the spans of [`Masker::find`] replaced by their tags;
//!   a text with nothing to mask comes back borrowed and unchanged, without an allocation.
//! - Masking is idempotent. A tag already in the text is a masked span and is never looked
//!   into, and the detectors run again on what is left until they find nothing more, so
//!   masking masked text changes nothing.
//! - A number is judged whole: the longest run of digit groups joined by separators is a card,
//!   an SSN or a phone number as a whole or not at all. Part of a longer number (an order or
//!   tracking number, a card number that fails its check) is never masked on its own.
//! - The same rules have the same [`Masker::id`], which is recorded with every fetch, so the
//!   lake says how its text was masked.
//!
//! Most texts hold no personal data. A text without an `@` and with fewer than seven digits
//! (every built-in item has more) is passed over after two vectorised scans.

use std::borrow::Cow;
use std::ops::Range;
use std::path::Path;

use aho_corasick::{AhoCorasick, MatchKind};
use regex::{Regex, RegexSet};
use serde_json::Value;

/// The version of the built-in detectors, the first part of [`Masker::id`]. Bump it when what
/// they find changes, so text masked by different rules can be told apart.
pub const PII_VERSION: &str = "pii-v1";

/// JSON keys whose string values are never masked. They carry the identifiers, times, URIs and
/// enums the fetch reads (conversation and participant ids, interval times, `nextUri`,
/// `cursor`, media types, purposes). Masking one would break paging and joins, and none holds
/// text a person typed or said. `*X` is any key ending in `X`; the others match exactly. Keys
/// are case-sensitive, and an array inherits the key it is the value of.
pub const STRUCTURAL_KEYS: &[&str] = &[
    "id",
    "*Id",
    "*Ids",
    "*Uri",
    "*Url",
    "*Time",
    "*Date",
    "*Start",
    "*End",
    "uri",
    "url",
    "selfUri",
    "utc",
    "time",
    "timestamp",
    "date",
    "type",
    "mediaType",
    "purpose",
    "participantPurpose",
    "direction",
    "state",
    "status",
    "format",
    "language",
    "dialect",
    "programId",
    "cursor",
];

/// Whether string values under this JSON key are left as they are ([`STRUCTURAL_KEYS`]).
pub fn is_structural(key: &str) -> bool {
    STRUCTURAL_KEYS.iter().any(|k| match k.strip_prefix('*') {
        Some(suffix) => key.ends_with(suffix),
        None => key == *k,
    })
}

/// Fewer ASCII digits than this in a text and it cannot hold a card, IBAN, SSN or phone number.
const MIN_DIGITS: usize = 7;

/// How many times the detectors run again on what is left (each run after the first only
/// happens when the one before found something; two are almost always enough).
const MAX_ROUNDS: usize = 16;

/// One user-defined pattern: a name, a regex, and its replacement (e.g. "[account number]").
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct UserPattern {
    /// Names the pattern in errors; `[name]` is the default replacement.
    pub name: String,
    /// A regex in the `regex` crate's syntax.
    pub pattern: String,
    /// What every match becomes, taken literally (`$1` is not expanded: a captured part of the
    /// match would put back what is being masked).
    pub replacement: String,
}

/// What can be wrong with user patterns or the file they come from.
#[derive(Debug, thiserror::Error)]
pub enum MaskError {
    #[error("cannot read the masks file {file}: {cause}; check the path, or leave the masks file out to mask only the built-in personal data")]
    Read {
        file: String,
        // In the message and not named `source`: as the error's source, the chain would print
        // it twice.
        cause: std::io::Error,
    },
    #[error("{file}:{line}: not valid TOML: {message}")]
    Malformed {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{file}:{line}: unknown key `{key}` in a [[mask]] table; its keys are name, pattern and replacement (optional)")]
    UnknownKey {
        file: String,
        line: usize,
        key: String,
    },
    #[error("{file}:{line}: {message}")]
    Invalid {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{}mask pattern `{name}` ('{pattern}') is not a valid regex: {message}; fix it (syntax: https://docs.rs/regex/latest/regex/#syntax)", located(.file, .line))]
    BadPattern {
        name: String,
        pattern: String,
        /// The file and line it was read from; `None` for patterns not read from a file.
        file: Option<String>,
        line: Option<usize>,
        message: String,
    },
    #[error("the mask patterns together are too large to compile ({message}); use fewer or simpler patterns")]
    TooLarge { message: String },
}

/// `file:line: ` (or `file: `, or nothing) in front of an error message.
fn located(file: &Option<String>, line: &Option<usize>) -> String {
    match (file, line) {
        (Some(f), Some(l)) => format!("{f}:{l}: "),
        (Some(f), None) => format!("{f}: "),
        _ => String::new(),
    }
}

/// What a found item is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Iban,
    Email,
    Card,
    Ssn,
    Phone,
    /// The user pattern at this index.
    User(usize),
}

/// The built-in kinds, in the order they are looked for.
const BUILTIN: [Kind; 5] = [Kind::Iban, Kind::Email, Kind::Card, Kind::Ssn, Kind::Phone];

impl Kind {
    /// The tag of a built-in kind; `None` for a user pattern (see [`Masker::tag`]).
    pub fn builtin_tag(self) -> Option<&'static str> {
        match self {
            Kind::Iban => Some("[iban]"),
            Kind::Email => Some("[email]"),
            Kind::Card => Some("[card number]"),
            Kind::Ssn => Some("[ssn]"),
            Kind::Phone => Some("[phone number]"),
            Kind::User(_) => None,
        }
    }
}

/// One item found in a text: its byte range and what it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub range: Range<usize>,
    pub kind: Kind,
}

/// The compiled masking rules: the built-in PII detectors plus user patterns.
#[derive(Clone, Debug)]
pub struct Masker {
    user: Vec<UserPattern>,
    regexes: Vec<Regex>,
    /// All user patterns at once: whether a text without built-in candidates needs them.
    any_user: Option<RegexSet>,
    /// Every tag a masker writes: found in a text, it is a span already masked.
    tags: AhoCorasick,
    id: String,
}

impl Masker {
    /// The built-in detectors plus these user patterns, applied in their order after them.
    pub fn pii(user: Vec<UserPattern>) -> Result<Masker, MaskError> {
        let regexes = user
            .iter()
            .map(|p| compile(p, None, None))
            .collect::<Result<Vec<_>, _>>()?;
        let any_user = if user.is_empty() {
            None
        } else {
            let set = RegexSet::new(user.iter().map(|p| &p.pattern)).map_err(|e| {
                MaskError::TooLarge {
                    message: regex_message(&e),
                }
            })?;
            Some(set)
        };
        let mut tags: Vec<&str> = BUILTIN.iter().filter_map(|k| k.builtin_tag()).collect();
        tags.extend(
            user.iter()
                .map(|p| p.replacement.as_str())
                .filter(|r| !r.is_empty()),
        );
        tags.sort_unstable();
        tags.dedup();
        let tags = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&tags)
            .map_err(|e| MaskError::TooLarge {
                message: e.to_string(),
            })?;
        let id = if user.is_empty() {
            PII_VERSION.to_string()
        } else {
            // Strings in a fixed struct order: serialization cannot fail; an empty canonical
            // form would still give a stable (if less useful) id rather than a panic.
            let canonical = serde_json::to_vec(&user).unwrap_or_default();
            let hex = blake3::hash(&canonical).to_hex();
            format!("{PII_VERSION}+{}", &hex[..12])
        };
        Ok(Masker {
            user,
            regexes,
            any_user,
            tags,
            id,
        })
    }

    /// Reads user patterns from a TOML file: `[[mask]]` tables with keys name, pattern and
    /// replacement (optional, default `[<name>]`); every other key or table of the file is left
    /// alone, so the same tables can live in the product dictionary. An unknown key in a
    /// `[[mask]]` table is an error naming the key and its line; each pattern is compiled so a
    /// bad one is reported with the file and line. `file` names the text in errors.
    pub fn user_patterns_in(text: &str, file: &str) -> Result<Vec<UserPattern>, MaskError> {
        let doc = toml_edit::ImDocument::parse(text).map_err(|e| {
            let mut message = e.message().trim().replace('\n', "; ");
            if message.contains("escape") {
                message.push_str(" (write a regex in single quotes, 'ACC-\\d{6}', so its backslashes stay as written)");
            }
            MaskError::Malformed {
                file: file.to_string(),
                line: e.span().map_or(1, |s| line_of(text, s.start)),
                message,
            }
        })?;
        let Some((mask_key, item)) = doc.as_table().get_key_value("mask") else {
            return Ok(Vec::new());
        };
        let mask_line = mask_key.span().map_or(1, |s| line_of(text, s.start));
        let invalid = |line: usize, message: String| MaskError::Invalid {
            file: file.to_string(),
            line,
            message,
        };
        let mut tables: Vec<(&dyn toml_edit::TableLike, usize)> = Vec::new();
        if let Some(array) = item.as_array_of_tables() {
            for t in array.iter() {
                let line = t.span().map_or(mask_line, |s| line_of(text, s.start));
                tables.push((t as &dyn toml_edit::TableLike, line));
            }
        } else if let Some(array) = item.as_array() {
            for v in array.iter() {
                let line = v.span().map_or(mask_line, |s| line_of(text, s.start));
                let Some(t) = v.as_inline_table() else {
                    return Err(invalid(line, "`mask` must hold tables: write each pattern as a [[mask]] table with name and pattern".into()));
                };
                tables.push((t as &dyn toml_edit::TableLike, line));
            }
        } else {
            return Err(invalid(
                mask_line,
                "`mask` must be [[mask]] tables, each with name and pattern".into(),
            ));
        }
        let mut patterns = Vec::with_capacity(tables.len());
        for (table, table_line) in tables {
            let mut name: Option<(String, usize)> = None;
            let mut pattern: Option<(String, usize)> = None;
            let mut replacement: Option<(String, usize)> = None;
            for (key, value) in table.iter() {
                let line = table
                    .get_key_value(key)
                    .and_then(|(k, _)| k.span())
                    .map_or(table_line, |s| line_of(text, s.start));
                let slot = match key {
                    "name" => &mut name,
                    "pattern" => &mut pattern,
                    "replacement" => &mut replacement,
                    _ => {
                        return Err(MaskError::UnknownKey {
                            file: file.to_string(),
                            line,
                            key: key.to_string(),
                        })
                    }
                };
                let Some(s) = value.as_str() else {
                    return Err(invalid(line, format!("`{key}` must be a string (a regex is best written in single quotes, which keep backslashes as written)")));
                };
                *slot = Some((s.to_string(), line));
            }
            let Some((name, _)) = name.filter(|(n, _)| !n.trim().is_empty()) else {
                return Err(invalid(table_line, "a [[mask]] table has no `name` (or an empty one); give each pattern a name: it names the pattern in errors and makes the default replacement `[name]`".into()));
            };
            let Some((pattern, pattern_line)) = pattern else {
                return Err(invalid(
                    table_line,
                    format!("mask `{name}` has no `pattern`; add the regex to find"),
                ));
            };
            if pattern.is_empty() {
                return Err(invalid(
                    pattern_line,
                    format!("mask `{name}` has an empty pattern; add the regex to find"),
                ));
            }
            let replacement = replacement.map_or_else(|| format!("[{name}]"), |(r, _)| r);
            let p = UserPattern {
                name,
                pattern,
                replacement,
            };
            compile(&p, Some(file), Some(pattern_line))?;
            patterns.push(p);
        }
        Ok(patterns)
    }

    /// [`Masker::user_patterns_in`] on a file.
    pub fn user_patterns_file(path: &Path) -> Result<Vec<UserPattern>, MaskError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|cause| MaskError::Read {
            file: file.clone(),
            cause,
        })?;
        Masker::user_patterns_in(&text, &file)
    }

    /// A short stable identity of the rules, recorded with every fetch: "pii-v1" with no user
    /// patterns, "pii-v1+<first 12 hex of blake3 of the user patterns' canonical JSON>" otherwise.
    pub fn id(&self) -> String {
        self.id.clone()
    }

    /// The user patterns, in the order they apply.
    pub fn user_patterns(&self) -> &[UserPattern] {
        &self.user
    }

    /// The tag that replaces an item of this kind.
    pub fn tag(&self, kind: Kind) -> &str {
        match kind {
            Kind::User(i) => self.user.get(i).map_or("", |p| p.replacement.as_str()),
            builtin => builtin.builtin_tag().unwrap_or(""),
        }
    }

    /// The items to mask in `s`: sorted, not overlapping, each on character boundaries.
    pub fn find(&self, s: &str) -> Vec<Found> {
        let b = s.as_bytes();
        let email = memchr::memchr(b'@', b).is_some();
        let numbers = b.iter().filter(|c| c.is_ascii_digit()).count() >= MIN_DIGITS;
        if !email && !numbers && !self.any_user.as_ref().is_some_and(|set| set.is_match(s)) {
            return Vec::new();
        }
        let mut claims: Vec<Claim> = self
            .tags
            .find_iter(s)
            .map(|m| Claim {
                range: m.range(),
                kind: None,
            })
            .collect();
        let runs = if numbers { digit_runs(b) } else { Vec::new() };
        let mut gap_runs = Vec::new();
        let mut new = Vec::new();
        for _ in 0..MAX_ROUNDS {
            let before = claims.len();
            for kind in BUILTIN {
                let wanted = if kind == Kind::Email { email } else { numbers };
                if !wanted {
                    continue;
                }
                for (lo, hi) in gaps(&claims, s.len()) {
                    let g = Gap { s, b, lo, hi };
                    match kind {
                        Kind::Email => emails(g, &mut new),
                        _ => {
                            runs_in(&runs, lo, hi, &mut gap_runs);
                            if gap_runs.is_empty() {
                                continue;
                            }
                            match kind {
                                Kind::Iban => ibans(g, &gap_runs, &mut new),
                                Kind::Card => cards(g, &gap_runs, &mut new),
                                Kind::Ssn => ssns(g, &gap_runs, &mut new),
                                _ => phones(g, &gap_runs, &mut new),
                            }
                        }
                    }
                }
                merge(&mut claims, &mut new, kind);
            }
            for (i, re) in self.regexes.iter().enumerate() {
                for (lo, hi) in gaps(&claims, s.len()) {
                    // Claims are on character boundaries: tags and regex matches are whole
                    // strings, the detectors end on ASCII bytes or whole characters.
                    let Some(gap) = s.get(lo..hi) else { continue };
                    new.extend(
                        re.find_iter(gap)
                            .filter(|m| !m.is_empty())
                            .map(|m| lo + m.start()..lo + m.end()),
                    );
                }
                merge(&mut claims, &mut new, Kind::User(i));
            }
            if claims.len() == before {
                break;
            }
        }
        claims
            .into_iter()
            .filter_map(|c| {
                c.kind.map(|kind| Found {
                    range: c.range,
                    kind,
                })
            })
            .collect()
    }

    /// Masks one text. Returns Cow::Borrowed when nothing was found (the common case does not
    /// allocate).
    pub fn text<'a>(&self, s: &'a str) -> Cow<'a, str> {
        let found = self.find(s);
        if found.is_empty() {
            return Cow::Borrowed(s);
        }
        let mut out = String::with_capacity(s.len());
        let mut at = 0;
        for f in &found {
            out.push_str(&s[at..f.range.start]);
            out.push_str(self.tag(f.kind));
            at = f.range.end;
        }
        out.push_str(&s[at..]);
        Cow::Owned(out)
    }

    /// Masks a JSON document: every string value is masked with [`Masker::text`], except values
    /// of [`STRUCTURAL_KEYS`]; object keys are never changed, and a voice phrase whose `text` or
    /// `decoratedText` changed loses its `words`. `None` when nothing changed (keep the bytes as
    /// received); otherwise the same bytes with only the changed strings rewritten (key order,
    /// numbers and spacing stay as they were). Errors only when the bytes are not JSON.
    pub fn json(&self, bytes: &[u8]) -> Result<Option<Vec<u8>>, String> {
        serde_json::from_slice::<serde::de::IgnoredAny>(bytes).map_err(|e| e.to_string())?;
        let quick = self.regexes.is_empty()
            && memchr::memchr(b'@', bytes).is_none()
            && memchr::memmem::find(bytes, b"\\u").is_none()
            && bytes.iter().filter(|c| c.is_ascii_digit()).count() < MIN_DIGITS;
        if quick {
            return Ok(None);
        }
        let mut walk = JsonWalk {
            m: self,
            b: bytes,
            pos: 0,
            edits: Vec::new(),
        };
        walk.value(None)?;
        if walk.edits.is_empty() {
            return Ok(None);
        }
        let mut edits = walk.edits;
        edits.sort_unstable_by_key(|e| e.0);
        let mut out = Vec::with_capacity(bytes.len() + 64);
        let mut at = 0;
        for (start, end, new) in edits {
            out.extend_from_slice(&bytes[at..start]);
            out.extend_from_slice(&new);
            at = end;
        }
        out.extend_from_slice(&bytes[at..]);
        Ok(Some(out))
    }

    /// [`Masker::json`] on a parsed value, in place; returns whether anything changed.
    pub fn json_value(&self, v: &mut Value) -> bool {
        self.value_at(v, None)
    }

    fn value_at(&self, v: &mut Value, key: Option<&str>) -> bool {
        match v {
            Value::String(s) => {
                if key.is_some_and(is_structural) {
                    return false;
                }
                match self.text(s) {
                    Cow::Owned(new) if new != *s => {
                        *s = new;
                        true
                    }
                    _ => false,
                }
            }
            Value::Array(items) => {
                let mut changed = false;
                for item in items {
                    changed |= self.value_at(item, key);
                }
                changed
            }
            Value::Object(map) => {
                let mut changed = false;
                let mut text_changed = false;
                for (k, item) in map.iter_mut() {
                    let is_text = is_phrase_text(k) && item.is_string();
                    let c = self.value_at(item, Some(k));
                    changed |= c;
                    text_changed |= is_text && c;
                }
                if text_changed {
                    if let Some(Value::Array(words)) = map.get_mut("words") {
                        words.clear();
                    }
                }
                changed
            }
            _ => false,
        }
    }
}

/// `text` and `decoratedText`: the keys of a voice phrase whose change drops its `words`, whose
/// tokens would otherwise spell out what was masked, one word each.
fn is_phrase_text(key: &str) -> bool {
    key == "text" || key == "decoratedText"
}

/// Compiles one user pattern; the error names it, and the file and line when known.
fn compile(p: &UserPattern, file: Option<&str>, line: Option<usize>) -> Result<Regex, MaskError> {
    Regex::new(&p.pattern).map_err(|e| MaskError::BadPattern {
        name: p.name.clone(),
        pattern: p.pattern.clone(),
        file: file.map(str::to_string),
        line,
        message: regex_message(&e),
    })
}

/// The one line of a regex error that says what is wrong (its syntax errors draw a caret
/// diagram over several lines).
fn regex_message(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: ").map(str::to_string))
        .unwrap_or_else(|| text.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Line (1-based) of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&c| c == b'\n')
        .count()
        + 1
}

/// A span taken: by a detector (`kind`), or a tag already in the text (`None`, kept as is).
struct Claim {
    range: Range<usize>,
    kind: Option<Kind>,
}

/// Adds a detector's finds (made in the gaps, so they overlap nothing) to the claims.
fn merge(claims: &mut Vec<Claim>, new: &mut Vec<Range<usize>>, kind: Kind) {
    if new.is_empty() {
        return;
    }
    claims.extend(new.drain(..).map(|range| Claim {
        range,
        kind: Some(kind),
    }));
    claims.sort_unstable_by_key(|c| c.range.start);
}

/// The stretches between claims (sorted, not overlapping).
fn gaps(claims: &[Claim], len: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::with_capacity(claims.len() + 1);
    let mut lo = 0;
    for c in claims {
        if c.range.start > lo {
            out.push((lo, c.range.start));
        }
        lo = lo.max(c.range.end);
    }
    if len > lo {
        out.push((lo, len));
    }
    out
}

/// The maximal runs of ASCII digits, as `(start, end)`.
fn digit_runs(b: &[u8]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            runs.push((start, i));
        } else {
            i += 1;
        }
    }
    runs
}

/// The digit runs within `lo..hi`, cut at its ends.
fn runs_in(runs: &[(usize, usize)], lo: usize, hi: usize, out: &mut Vec<(usize, usize)>) {
    out.clear();
    let first = runs.partition_point(|r| r.1 <= lo);
    for &(a, z) in &runs[first..] {
        if a >= hi {
            break;
        }
        out.push((a.max(lo), z.min(hi)));
    }
}

/// A stretch of the text between masked spans. Detectors see it as a whole text: the masked
/// span next to it reads as the start or end of the text, as a tag's `[` or `]` does once the
/// text is masked (which is what makes masking idempotent).
#[derive(Clone, Copy)]
struct Gap<'a> {
    s: &'a str,
    b: &'a [u8],
    lo: usize,
    hi: usize,
}

impl Gap<'_> {
    fn at(&self, i: usize) -> Option<u8> {
        (i >= self.lo && i < self.hi).then(|| self.b[i])
    }
    fn before(&self, i: usize) -> Option<u8> {
        (i > self.lo && i <= self.hi).then(|| self.b[i - 1])
    }
    fn digit(&self, i: usize) -> bool {
        self.at(i).is_some_and(|c| c.is_ascii_digit())
    }
}

fn alnum(c: Option<u8>) -> bool {
    c.is_some_and(|c| c.is_ascii_alphanumeric())
}

/// What joins two parts of one number: a space, `-`, `.`, `,`, `:` or `/`.
const JOINERS: &[u8] = b" -.,:/";

/// Whether a number starting at `i` would be the tail of a longer one: a digit (or, with
/// `letters`, a letter) touches it, or a joiner after a digit does.
fn joined_left(g: Gap, i: usize, letters: bool) -> bool {
    match g.before(i) {
        Some(c) if c.is_ascii_digit() || (letters && c.is_ascii_alphabetic()) => true,
        Some(c) if JOINERS.contains(&c) => g.before(i - 1).is_some_and(|d| d.is_ascii_digit()),
        _ => false,
    }
}

/// Whether a number ending at `end` would be the head of a longer one.
fn joined_right(g: Gap, end: usize, letters: bool) -> bool {
    match g.at(end) {
        Some(c) if c.is_ascii_digit() || (letters && c.is_ascii_alphabetic()) => true,
        Some(c) if JOINERS.contains(&c) => g.digit(end + 1),
        _ => false,
    }
}

/// IBANs: country letters, check digits, 11 to 30 letters and digits (alone, or the whole in
/// groups of four split by single spaces), passing the ISO 7064 mod-97 check.
fn ibans(g: Gap, runs: &[(usize, usize)], out: &mut Vec<Range<usize>>) {
    let word_end = |q: usize| {
        let mut e = q;
        while alnum(g.at(e)) {
            e += 1;
        }
        e
    };
    let mut next = g.lo;
    for &(rs, re) in runs {
        if rs < next + 2 || re - rs < 2 {
            continue;
        }
        let p = rs - 2;
        let letters = g.b[p].is_ascii_alphabetic() && g.b[p + 1].is_ascii_alphabetic();
        if !letters || alnum(g.before(p)) {
            continue;
        }
        // Where it may end: after the first word, or after each further group of four.
        let mut ends = [0usize; 10];
        let mut n = 1;
        ends[0] = word_end(p);
        if ends[0] - p == 4 {
            let mut e = ends[0];
            while n < ends.len() && g.at(e) == Some(b' ') && alnum(g.at(e + 1)) {
                let t = word_end(e + 1);
                if t - (e + 1) > 4 {
                    break;
                }
                ends[n] = t;
                n += 1;
                if t - (e + 1) < 4 {
                    break;
                }
                e = t;
            }
        }
        if let Some(&end) = ends[..n].iter().rev().find(|&&e| iban_valid(&g.b[p..e])) {
            out.push(p..end);
            next = end;
        }
    }
}

/// The length, the check digits and the mod-97 check of an IBAN candidate (spaces ignored).
/// It also needs seven digits: every national format has a numeric account number, and it
/// keeps a code like `XY12` followed by four-letter words out.
fn iban_valid(s: &[u8]) -> bool {
    let chars = || s.iter().copied().filter(|c| *c != b' ');
    let n = chars().count();
    if !(15..=34).contains(&n) || chars().filter(u8::is_ascii_digit).count() < MIN_DIGITS {
        return false;
    }
    let mut r: u32 = 0;
    for c in chars().skip(4).chain(chars().take(4)) {
        r = if c.is_ascii_digit() {
            (r * 10 + u32::from(c - b'0')) % 97
        } else {
            (r * 100 + u32::from(c.to_ascii_uppercase() - b'A') + 10) % 97
        };
    }
    r == 1
}

/// E-mail addresses: a local part of letters, digits and `._%+-`, and `_` which real addresses
/// use (not starting or ending with a dot), `@`, then dot-separated labels of letters, digits and hyphens whose last has two or
/// more letters. Letters include non-ASCII ones (`josé@example.com`).
fn emails(g: Gap, out: &mut Vec<Range<usize>>) {
    let local_char = |c: char| {
        c.is_ascii_alphanumeric() || "._%+-_".contains(c) || (!c.is_ascii() && c.is_alphanumeric())
    };
    let domain_char = |c: char| {
        c.is_ascii_alphanumeric() || c == '-' || c == '.' || (!c.is_ascii() && c.is_alphanumeric())
    };
    let mut next = g.lo;
    for at in memchr::memchr_iter(b'@', &g.b[g.lo..g.hi]).map(|i| g.lo + i) {
        if at < next {
            continue;
        }
        let mut start = at;
        for (i, c) in g.s[next..at].char_indices().rev() {
            if !local_char(c) {
                break;
            }
            start = next + i;
        }
        while start < at && g.b[start] == b'.' {
            start += 1;
        }
        if start == at || g.b[at - 1] == b'.' {
            continue;
        }
        let mut end = at + 1;
        for (i, c) in g.s[at + 1..g.hi].char_indices() {
            if !domain_char(c) {
                break;
            }
            end = at + 1 + i + c.len_utf8();
        }
        let domain = g.s[at + 1..end].trim_end_matches(['.', '-']);
        // The longest run of well-formed labels that ends in a top-level name.
        let mut best = None;
        let mut labels = 0;
        let mut pos = at + 1;
        for label in domain.split('.') {
            if label.is_empty() || label.starts_with('-') || label.ends_with('-') {
                break;
            }
            labels += 1;
            pos += label.len();
            if labels >= 2 && label.chars().count() >= 2 && label.chars().all(char::is_alphabetic) {
                best = Some(pos);
            }
            pos += 1;
        }
        if let Some(end) = best {
            out.push(start..end);
            next = end;
        }
    }
}

/// Payment card numbers: a whole run of 13 to 19 digits, single spaces or hyphens between
/// groups, passing the Luhn check (or that run followed by an expiry, see [`before_expiry`]).
/// Runs that fail it are order or tracking numbers and stay.
fn cards(g: Gap, runs: &[(usize, usize)], out: &mut Vec<Range<usize>>) {
    let mut i = 0;
    while i < runs.len() {
        let start = runs[i].0;
        let mut end = runs[i].1;
        let mut digits = end - start;
        let mut j = i;
        while j + 1 < runs.len() && runs[j + 1].0 == end + 1 && matches!(g.b[end], b' ' | b'-') {
            j += 1;
            end = runs[j].1;
            digits += end - runs[j].0;
        }
        i = j + 1;
        // A `+` in front makes it an international phone number.
        let touched = g
            .before(start)
            .is_some_and(|c| c.is_ascii_alphabetic() || c == b'+')
            || g.at(end).is_some_and(|c| c.is_ascii_alphabetic());
        if touched {
            continue;
        }
        if (13..=19).contains(&digits) && luhn(&g.b[start..end]) {
            out.push(start..end);
        } else if let Some(card_end) = before_expiry(g, runs, i - 1, start) {
            out.push(start..card_end);
        }
    }
}

/// A card number typed with its expiry after a space (`4111 1111 1111 1111 12/27`): the month
/// ends the run, so the run without it is tried. Only then, so that a long number that fails
/// its check is never cut into a card.
fn before_expiry(g: Gap, runs: &[(usize, usize)], last: usize, start: usize) -> Option<usize> {
    let (ms, me) = runs[last];
    let month = me - ms <= 2 && g.at(me) == Some(b'/') && g.digit(me + 1);
    if !month || ms < start + 2 || g.b[ms - 1] != b' ' {
        return None;
    }
    let end = ms - 1;
    let digits = g.b[start..end]
        .iter()
        .filter(|c| c.is_ascii_digit())
        .count();
    ((13..=19).contains(&digits) && luhn(&g.b[start..end])).then_some(end)
}

/// The Luhn check over the digits of `s` (other bytes skipped).
fn luhn(s: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, c) in s.iter().rev().filter(|c| c.is_ascii_digit()).enumerate() {
        let d = u32::from(c - b'0');
        sum += if i % 2 == 1 {
            let d2 = d * 2;
            if d2 > 9 {
                d2 - 9
            } else {
                d2
            }
        } else {
            d
        };
    }
    sum.is_multiple_of(10)
}

/// US social security numbers: `ddd-dd-dddd` (hyphens or spaces), with an area other than 000,
/// 666 and 900–999, a group other than 00 and a serial other than 0000, not part of a longer
/// number.
fn ssns(g: Gap, runs: &[(usize, usize)], out: &mut Vec<Range<usize>>) {
    let mut next = g.lo;
    for w in runs.windows(3) {
        let [(a0, a1), (b0, b1), (c0, c1)] = [w[0], w[1], w[2]];
        if a1 - a0 != 3 || b1 - b0 != 2 || c1 - c0 != 4 || b0 != a1 + 1 || c0 != b1 + 1 {
            continue;
        }
        let sep = g.b[a1];
        if !matches!(sep, b'-' | b' ') || g.b[b1] != sep || a0 < next {
            continue;
        }
        if joined_left(g, a0, false) || joined_right(g, c1, false) {
            continue;
        }
        let num = |r: Range<usize>| {
            g.b[r]
                .iter()
                .fold(0u32, |n, c| n * 10 + u32::from(c - b'0'))
        };
        let area = num(a0..a1);
        if area == 0 || area == 666 || area >= 900 || num(b0..b1) == 0 || num(c0..c1) == 0 {
            continue;
        }
        out.push(a0..c1);
        next = c1;
    }
}

/// One group of a phone number: digits, or digits in parentheses.
#[derive(Clone, Copy)]
struct Group {
    start: usize,
    end: usize,
    digits: usize,
    paren: bool,
    /// The separator before it; `None` for the first and next to a parenthesis.
    sep: Option<u8>,
}

/// More groups than any phone number has: the number is longer than a phone number.
const MAX_GROUPS: usize = 12;

/// The groups of a number from `q`: digits or `(digits)`, joined by one space, `-` or `.`
/// (or nothing next to a parenthesis), as long as it goes on.
fn groups(g: Gap, mut q: usize, out: &mut Vec<Group>) {
    out.clear();
    let mut sep = None;
    while out.len() < MAX_GROUPS {
        let group = if g.at(q) == Some(b'(') {
            let mut e = q + 1;
            while g.digit(e) {
                e += 1;
            }
            if e == q + 1 || g.at(e) != Some(b')') {
                break;
            }
            Group {
                start: q,
                end: e + 1,
                digits: e - q - 1,
                paren: true,
                sep,
            }
        } else if g.digit(q) {
            let mut e = q;
            while g.digit(e) {
                e += 1;
            }
            Group {
                start: q,
                end: e,
                digits: e - q,
                paren: false,
                sep,
            }
        } else {
            break;
        };
        out.push(group);
        let e = group.end;
        match g.at(e) {
            Some(c @ (b' ' | b'-' | b'.')) if g.digit(e + 1) || g.at(e + 1) == Some(b'(') => {
                sep = Some(c);
                q = e + 1;
            }
            Some(b'(') => {
                sep = None;
                q = e;
            }
            Some(c) if c.is_ascii_digit() && group.paren => {
                sep = None;
                q = e;
            }
            _ => break,
        }
    }
}

/// Phone numbers: international (`+` and 8 to 15 digits), North American national, national
/// with a trunk `0` (10 to 12 digits in up to five groups, 10 or 11 in one), and `tel:` URIs. The
/// number must be whole: no letter, digit or joined digit group on either side.
fn phones(g: Gap, runs: &[(usize, usize)], out: &mut Vec<Range<usize>>) {
    let mut next = g.lo;
    let mut gs = Vec::new();
    for &(rs, _) in runs {
        if rs < next {
            continue;
        }
        if let Some(r) = phone_at(g, rs, &mut gs) {
            if r.start >= next {
                next = r.end;
                out.push(r);
            }
        }
    }
}

/// The phone number whose first digit run starts at `rs`, with the `tel:`, `+` or `(` in front.
fn phone_at(g: Gap, rs: usize, gs: &mut Vec<Group>) -> Option<Range<usize>> {
    let mut s0 = rs;
    if g.before(s0) == Some(b'(') {
        s0 -= 1;
    }
    if g.before(s0) == Some(b'+') {
        s0 -= 1;
    }
    if s0 >= g.lo + 4 && g.b[s0 - 4..s0].eq_ignore_ascii_case(b"tel:") {
        return tel(g, s0 - 4).map(|end| s0 - 4..end);
    }
    if g.b[s0] == b'+' {
        return international(g, s0, gs).map(|end| s0..end);
    }
    national(g, s0, gs).map(|end| s0..end).or_else(|| {
        // `(` that opens no area code: the number starts at its digits.
        (s0 < rs)
            .then(|| national(g, rs, gs).map(|end| rs..end))
            .flatten()
    })
}

/// A `tel:` URI from `t`: an optional `+`, then digits and visual separators.
fn tel(g: Gap, t: usize) -> Option<usize> {
    if alnum(g.before(t)) {
        return None;
    }
    let mut e = t + 4;
    if g.at(e) == Some(b'+') {
        e += 1;
    }
    let body = e;
    let mut digits = 0;
    while let Some(c) = g.at(e) {
        match c {
            b'0'..=b'9' => digits += 1,
            b'(' | b')' | b'-' | b'.' => {}
            _ => break,
        }
        e += 1;
    }
    while e > body && matches!(g.b[e - 1], b'-' | b'.' | b'(') {
        e -= 1;
    }
    ((7..=15).contains(&digits) && !alnum(g.at(e))).then_some(e)
}

/// `+` and 8 to 15 digits in groups, at most one of them in parentheses.
fn international(g: Gap, plus: usize, gs: &mut Vec<Group>) -> Option<usize> {
    if alnum(g.before(plus)) {
        return None;
    }
    groups(g, plus + 1, gs);
    let last = gs.last()?;
    let digits: usize = gs.iter().map(|x| x.digits).sum();
    let parens = gs.iter().filter(|x| x.paren).count();
    let ok = (8..=15).contains(&digits) && parens <= 1 && !joined_right(g, last.end, true);
    ok.then_some(last.end)
}

/// A national number from `start`: North American, or with a trunk `0`.
fn national(g: Gap, start: usize, gs: &mut Vec<Group>) -> Option<usize> {
    if joined_left(g, start, true) {
        return None;
    }
    groups(g, start, gs);
    let last = gs.last()?;
    if joined_right(g, last.end, true) {
        return None;
    }
    (north_american(g, gs) || trunk(g, gs)).then_some(last.end)
}

/// `[1 ](ddd) ddd-dddd`, `ddd-ddd-dddd`, `ddd.ddd.dddd`, `ddd ddd dddd`.
fn north_american(g: Gap, gs: &[Group]) -> bool {
    let rest = match gs {
        [one, rest @ ..] if rest.len() == 3 && !one.paren && one.digits == 1 => {
            if g.b[one.start] != b'1' {
                return false;
            }
            rest
        }
        _ => gs,
    };
    match rest {
        [area, exchange, line] => {
            area.digits == 3
                && !exchange.paren
                && exchange.digits == 3
                && (exchange.sep.is_some() || area.paren)
                && !line.paren
                && line.digits == 4
                && line.sep.is_some()
        }
        _ => false,
    }
}

/// A national number with a trunk `0`: 10 or 11 digits in one group (`07700900123`), or 10 to
/// 12 in two to five groups of two or more digits split by spaces or hyphens (`020 7946 0958`,
/// `07700 900123`, `01 23 45 67 89`, and German mobiles such as `0151-12345678`, which have
/// 12); the first group may be in parentheses.
fn trunk(g: Gap, gs: &[Group]) -> bool {
    let Some(first) = gs.first() else {
        return false;
    };
    let digits: usize = gs.iter().map(|x| x.digits).sum();
    g.b[first.start + usize::from(first.paren)] == b'0'
        && gs.len() <= 5
        && (10..=if gs.len() == 1 { 11 } else { 12 }).contains(&digits)
        && gs.iter().all(|x| x.digits >= 2)
        && gs[1..].iter().all(|x| !x.paren && x.sep != Some(b'.'))
}

/// Walks a JSON document already checked to be valid, recording the strings to rewrite.
struct JsonWalk<'m, 'b> {
    m: &'m Masker,
    b: &'b [u8],
    pos: usize,
    /// `(start, end, new bytes)`; each replaces a string token, or a `words` array.
    edits: Vec<(usize, usize, Vec<u8>)>,
}

impl<'b> JsonWalk<'_, 'b> {
    fn ws(&mut self) {
        while matches!(self.b.get(self.pos), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.pos += 1;
        }
    }

    /// The end (after the closing quote) of the string token starting at `start`.
    fn string_end(&self, start: usize) -> usize {
        let mut i = start + 1;
        while let Some(k) = memchr::memchr2(b'"', b'\\', &self.b[i.min(self.b.len())..]) {
            if self.b[i + k] == b'\\' {
                i += k + 2;
            } else {
                return i + k + 1;
            }
        }
        self.b.len()
    }

    /// The text of the string token `start..end`.
    fn string(&self, start: usize, end: usize) -> Result<Cow<'b, str>, String> {
        let b: &'b [u8] = self.b;
        let inner = &b[start + 1..end - 1];
        if memchr::memchr(b'\\', inner).is_none() {
            return std::str::from_utf8(inner)
                .map(Cow::Borrowed)
                .map_err(|e| e.to_string());
        }
        serde_json::from_slice::<String>(&b[start..end])
            .map(Cow::Owned)
            .map_err(|e| e.to_string())
    }

    /// One value at `pos`, under `key`; whether anything in it changed. The recursion is as
    /// deep as the document, which serde_json's check has limited to 128 levels.
    fn value(&mut self, key: Option<&str>) -> Result<bool, String> {
        self.ws();
        match self.b.get(self.pos) {
            Some(b'{') => self.object(),
            Some(b'[') => {
                self.pos += 1;
                let mut changed = false;
                loop {
                    self.ws();
                    match self.b.get(self.pos) {
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(changed);
                        }
                        Some(b',') => self.pos += 1,
                        Some(_) => changed |= self.value(key)?,
                        None => return Err("the JSON ends inside an array".into()),
                    }
                }
            }
            Some(b'"') => {
                let start = self.pos;
                let end = self.string_end(start);
                self.pos = end;
                if key.is_some_and(is_structural) {
                    return Ok(false);
                }
                let text = self.string(start, end)?;
                match self.m.text(&text) {
                    Cow::Owned(new) if new != *text => {
                        let bytes = serde_json::to_vec(&new).map_err(|e| e.to_string())?;
                        self.edits.push((start, end, bytes));
                        Ok(true)
                    }
                    _ => Ok(false),
                }
            }
            Some(_) => {
                while let Some(c) = self.b.get(self.pos) {
                    if matches!(c, b',' | b']' | b'}' | b' ' | b'\n' | b'\r' | b'\t') {
                        break;
                    }
                    self.pos += 1;
                }
                Ok(false)
            }
            None => Err("the JSON ends where a value should be".into()),
        }
    }

    fn object(&mut self) -> Result<bool, String> {
        self.pos += 1;
        let mut changed = false;
        let mut text_changed = false;
        let mut words = None;
        loop {
            self.ws();
            match self.b.get(self.pos) {
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                Some(b',') => {
                    self.pos += 1;
                    continue;
                }
                Some(b'"') => {}
                _ => return Err("expected a key in a JSON object".into()),
            }
            let ks = self.pos;
            let ke = self.string_end(ks);
            let key = self.string(ks, ke)?;
            self.pos = ke;
            self.ws();
            if self.b.get(self.pos) != Some(&b':') {
                return Err("expected `:` after a key in a JSON object".into());
            }
            self.pos += 1;
            self.ws();
            let vstart = self.pos;
            let is_text = is_phrase_text(&key) && self.b.get(vstart) == Some(&b'"');
            let c = self.value(Some(&key))?;
            changed |= c;
            text_changed |= is_text && c;
            if key == "words" && self.b.get(vstart) == Some(&b'[') {
                words = Some((vstart, self.pos));
            }
        }
        if let (true, Some((ws, we))) = (text_changed, words) {
            self.edits.retain(|e| !(e.0 >= ws && e.1 <= we));
            self.edits.push((ws, we, b"[]".to_vec()));
        }
        Ok(changed)
    }
}

/// A corpus of contact-center chat for measuring masking speed: messages of one to three
/// ordinary sentences (some with order numbers, prices, times, dates and versions), about one
/// sentence in 50 with a planted item: a valid or an invalid card number, an e-mail address,
/// a phone number, an IBAN or an SSN. At least `bytes` long (whole messages, one a line);
/// the same `seed` gives the same text.
pub fn bench_corpus(bytes: usize, seed: u64) -> String {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut out = String::with_capacity(bytes + 512);
    while out.len() < bytes {
        let sentences = rng.random_range(1..=3);
        for i in 0..sentences {
            if i > 0 {
                out.push(' ');
            }
            if rng.random_ratio(1, 50) {
                out.push_str(&planted_sentence(&mut rng));
            } else {
                out.push_str(&ordinary_sentence(&mut rng));
            }
        }
        out.push('\n');
    }
    out
}

fn pick<'a, R: rand::Rng>(rng: &mut R, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

fn digits<R: rand::Rng>(rng: &mut R, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

fn ordinary_sentence<R: rand::Rng>(rng: &mut R) -> String {
    const OPENERS: &[&str] = &[
        "Hi",
        "Hello",
        "Hi there",
        "Good morning",
        "Thanks",
        "Okay",
        "Sorry",
        "Well",
    ];
    const SUBJECTS: &[&str] = &[
        "my Acme Router",
        "the Quantum Headset",
        "the CloudPhone Pro",
        "my order",
        "the replacement",
        "the invoice",
        "my account",
        "the mobile app",
        "the delivery",
        "the refund",
    ];
    const PROBLEMS: &[&str] = &[
        "stopped working yesterday",
        "keeps disconnecting every few minutes",
        "still has not arrived",
        "was charged twice",
        "shows an error when I try to log in",
        "arrived with a cracked screen",
        "is much slower since the update",
        "never showed up on my statement",
        "was sent to the wrong address",
        "does not pair with my laptop",
    ];
    const TAILS: &[&str] = &[
        "",
        " and I need it fixed",
        ", which is really frustrating",
        " even after a restart",
        " since last Tuesday",
        " for the third time this month",
    ];
    const AGENT: &[&str] = &[
        "I am sorry to hear that, let me look into it for you.",
        "Thank you for your patience while I check this.",
        "Could you please confirm the name on the account?",
        "I can see the order in our system now.",
        "Let me transfer you to our billing team.",
        "Is there anything else I can help you with today?",
        "I have escalated this to our technical team.",
        "You should receive a confirmation shortly.",
        "Have you tried turning it off and on again?",
        "That is covered by the warranty, so there is no charge.",
    ];
    match rng.random_range(0..10) {
        0..=3 => format!(
            "{}, {} {}{}.",
            pick(rng, OPENERS),
            pick(rng, SUBJECTS),
            pick(rng, PROBLEMS),
            pick(rng, TAILS)
        ),
        4..=7 => pick(rng, AGENT).to_string(),
        8 => match rng.random_range(0..5) {
            0 => format!(
                "My order #{} arrived but the box was damaged.",
                digits(rng, 5)
            ),
            1 => format!(
                "It was ${},{}.{} on the website.",
                rng.random_range(1..10),
                digits(rng, 3),
                digits(rng, 2)
            ),
            2 => format!(
                "I updated to version {}.{}.{} this morning.",
                rng.random_range(1..10),
                rng.random_range(0..20),
                rng.random_range(0..100)
            ),
            3 => format!(
                "The delivery window was 10:30 to 12:00 on 2026-03-{:02}.",
                rng.random_range(1..29)
            ),
            _ => format!(
                "I called at {}:{:02} and waited {} minutes.",
                rng.random_range(8..18),
                rng.random_range(0..60),
                rng.random_range(5..90)
            ),
        },
        _ => format!(
            "{} {} {}.",
            pick(rng, OPENERS),
            pick(rng, SUBJECTS),
            pick(rng, PROBLEMS)
        ),
    }
}

/// A card number of 16 digits with a valid (or, `valid = false`, a wrong) Luhn digit, in one
/// of the usual layouts.
fn card_number<R: rand::Rng>(rng: &mut R, valid: bool) -> String {
    let mut d = format!("4{}", digits(rng, 14));
    let check = (0..10u8)
        .find(|c| luhn(format!("{d}{c}").as_bytes()))
        .unwrap_or(0);
    let check = if valid { check } else { (check + 1) % 10 };
    d.push(char::from(b'0' + check));
    let groups: Vec<&str> = (0..4).map(|i| &d[i * 4..i * 4 + 4]).collect();
    match rng.random_range(0..3) {
        0 => groups.join(" "),
        1 => groups.join("-"),
        _ => d,
    }
}

fn planted_sentence<R: rand::Rng>(rng: &mut R) -> String {
    const FIRST: &[&str] = &["john", "maria", "wei", "fatima", "lucas", "anna"];
    const LAST: &[&str] = &["smith", "garcia", "chen", "khan", "muller", "rossi"];
    const DOMAINS: &[&str] = &["example.com", "mail.example.co.uk", "example.org"];
    match rng.random_range(0..6) {
        0 => format!("My card number is {}.", card_number(rng, true)),
        1 => format!(
            "The tracking number they gave me is {}, is that right?",
            card_number(rng, false)
        ),
        2 => format!(
            "You can email me at {}.{}@{} if that is easier.",
            pick(rng, FIRST),
            pick(rng, LAST),
            pick(rng, DOMAINS)
        ),
        3 => {
            let phone = match rng.random_range(0..6) {
                0 => format!("+44 20 {} {}", digits(rng, 4), digits(rng, 4)),
                1 => format!("+1 (317) {}-{}", digits(rng, 3), digits(rng, 4)),
                2 => format!(
                    "({}) {}-{}",
                    rng.random_range(200..999),
                    digits(rng, 3),
                    digits(rng, 4)
                ),
                3 => format!(
                    "{}.{}.{}",
                    rng.random_range(200..999),
                    digits(rng, 3),
                    digits(rng, 4)
                ),
                4 => format!("07700 {}", digits(rng, 6)),
                _ => format!("+49151{}", digits(rng, 8)),
            };
            format!("Please call me back on {phone} after five.")
        }
        4 => {
            let bban = format!("WEST{}", digits(rng, 14));
            let rem = (0..100u32)
                .find(|c| iban_valid(format!("GB{c:02}{bban}").as_bytes()))
                .unwrap_or(0);
            let iban = format!("GB{rem:02}{bban}");
            let grouped: Vec<&str> = iban
                .as_bytes()
                .chunks(4)
                .map(|c| std::str::from_utf8(c).unwrap_or(""))
                .collect();
            format!(
                "The refund should go to {}, that is my IBAN.",
                grouped.join(" ")
            )
        }
        _ => format!(
            "My social security number is {:03}-{:02}-{:04}.",
            rng.random_range(1..666),
            rng.random_range(1..100),
            rng.random_range(1..10000)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pii() -> Masker {
        Masker::pii(Vec::new()).unwrap()
    }

    fn account() -> UserPattern {
        UserPattern {
            name: "account".into(),
            pattern: r"ACC-\d{6}".into(),
            replacement: "[account number]".into(),
        }
    }

    /// `item` in a sentence is masked to `tag`, the rest of the sentence kept.
    fn assert_masked(m: &Masker, item: &str, tag: &str) {
        let s = format!("Here it is: {item} thanks");
        assert_eq!(
            m.text(&s),
            format!("Here it is: {tag} thanks"),
            "{item:?} should be {tag}"
        );
    }

    /// `item` (alone and in a sentence) is kept byte for byte, without an allocation.
    fn assert_kept(m: &Masker, item: &str) {
        for s in [item.to_string(), format!("Here it is: {item} thanks")] {
            let out = m.text(&s);
            assert!(
                matches!(out, Cow::Borrowed(_)),
                "{s:?} should be kept, got {out:?}"
            );
        }
    }

    #[test]
    fn valid_cards_are_masked_in_every_layout() {
        let m = pii();
        for card in [
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "4111111111111111",
            "3782 822463 10005",
            "4000 0000 0000 0000 006",
            "6304000000000000018",
            "4222222222222",
        ] {
            assert!(luhn(card.as_bytes()));
            assert_masked(&m, card, "[card number]");
        }
        // Its trailing separator is not part of it.
        assert_eq!(
            m.text("card 4111-1111-1111-1111- ok"),
            "card [card number]- ok"
        );
        // Nor is the expiry typed after it.
        assert_eq!(
            m.text("4111 1111 1111 1111 12/27 cvv 123"),
            "[card number] 12/27 cvv 123"
        );
        assert_eq!(m.text("4111111111111111 1/27"), "[card number] 1/27");
    }

    #[test]
    fn invalid_cards_and_touching_runs_are_kept() {
        let m = pii();
        for card in [
            "4111 1111 1111 1112",
            "4111-1111-1111-1112",
            "4111111111111112",
            "3782 822463 10006",
            "4000 0000 0000 0000 007",
            // Valid digits, but part of something longer.
            "x4111111111111111",
            "4111111111111111abc",
            "12 4111 1111 1111 1111",
            "4111 1111 1111 1112 12/27",
            "4111 1111 1111 1111 123/27",
        ] {
            assert_kept(&m, card);
        }
    }

    #[test]
    fn emails_are_masked() {
        let m = pii();
        for email in [
            "john@example.com",
            "first.last+tag@sub.example.co.uk",
            "JOHN.DOE@EXAMPLE.COM",
            "a_b%c-d@my-host.example.org",
            "josé@exemple.fr",
        ] {
            assert_masked(&m, email, "[email]");
        }
        assert_eq!(
            m.text("write to mailto:x@y.com now"),
            "write to mailto:[email] now"
        );
        assert_eq!(m.text("(john@example.com)."), "([email]).");
        assert_eq!(
            m.text("end of sentence x@y.com."),
            "end of sentence [email]."
        );
    }

    #[test]
    fn things_with_an_at_that_are_not_emails_are_kept() {
        let m = pii();
        for s in [
            "@handle",
            "a@b",
            "user@localhost",
            "x@y.c",
            "@ noon",
            ".@x.com",
            "a.@x.com",
        ] {
            assert_kept(&m, s);
        }
    }

    #[test]
    fn phones_are_masked_in_each_form() {
        let m = pii();
        for phone in [
            "+44 20 7946 0958",
            "+1 (317) 555-0123",
            "+4915112345678",
            "+44 (0)20 7946 0958",
            "+33 1 23 45 67 89",
            "(317) 555-0123",
            "(317)555-0123",
            "317-555-0123",
            "317.555.0123",
            "317 555 0123",
            "1-317-555-0123",
            "1 (317) 555-0123",
            "020 7946 0958",
            "07700 900123",
            "0151-12345678",
            "07700900123",
            "0201234567",
            "01 23 45 67 89",
            "(020) 7946 0958",
        ] {
            assert_masked(&m, phone, "[phone number]");
        }
        assert_masked(&m, "tel:+13175550123", "[phone number]");
        assert_masked(&m, "TEL:+1-317-555-0123", "[phone number]");
        assert_eq!(m.text("Call 317-555-0123."), "Call [phone number].");
    }

    #[test]
    fn dates_times_prices_versions_and_short_numbers_are_not_phones() {
        let m = pii();
        for s in [
            "2026-03-01",
            "2026-03-01T10:00:00.000Z",
            "2026-03-01 10:00:00",
            "01-03-2026 10:00",
            "03.01.2026",
            "in 2026",
            "1,299.00",
            "$12,345,678.00",
            "1.2.3",
            "10.0.19041.1234",
            "192.168.100.200",
            "order #12345",
            "10:30 to 12:00",
            "+1 555",
            "hotel:3175550123",
            "ph317-555-0123",
            "317-555-01234",
            "12-317-555-0123",
        ] {
            assert_kept(&m, s);
        }
    }

    #[test]
    fn ssns_are_masked_unless_impossible() {
        let m = pii();
        assert_masked(&m, "123-45-6789", "[ssn]");
        assert_masked(&m, "123 45 6789", "[ssn]");
        for s in [
            "000-12-3456",
            "666-12-3456",
            "900-12-3456",
            "123-00-4567",
            "123-45-0000",
            "1123-45-6789",
            "123-45-67890",
            "123-45 6789",
        ] {
            assert_kept(&m, s);
        }
    }

    #[test]
    fn ibans_are_masked_when_their_check_holds() {
        let m = pii();
        for iban in [
            "GB82 WEST 1234 5698 7654 32",
            "DE89370400440532013000",
            "DE89 3704 0044 0532 0130 00",
            "gb82west12345698765432",
            "NL91ABNA0417164300",
            "FR1420041010050500013M02606",
        ] {
            assert_masked(&m, iban, "[iban]");
        }
        assert_eq!(
            m.text("GB82 WEST 1234 5698 7654 32 then some more text"),
            "[iban] then some more text"
        );
        // Followed by words of four letters: the longest valid prefix is the IBAN.
        assert_eq!(
            m.text("to BE68 5390 0754 7034 then more."),
            "to [iban] then more."
        );
        for s in [
            "GB83 WEST 1234 5698 7654 32",
            "DE88370400440532013000",
            "XGB82WEST12345698765432",
            "GB82WEST12345698765432X",
        ] {
            assert_kept(&m, s);
        }
    }

    #[test]
    fn user_patterns_apply_after_the_builtins_and_never_inside_a_tag() {
        let number = UserPattern {
            name: "number".into(),
            pattern: "(?i)number".into(),
            replacement: "[n]".into(),
        };
        let m = Masker::pii(vec![account(), number]).unwrap();
        assert_eq!(
            m.text("ref ACC-123456 and ACC-654321, card 4111111111111111"),
            "ref [account number] and [account number], card [card number]"
        );
        assert_eq!(m.text("a NUMBER: 12"), "a [n]: 12");
        // An empty match is ignored.
        let empty = UserPattern {
            name: "maybe".into(),
            pattern: r"x*".into(),
            replacement: "[x]".into(),
        };
        let m = Masker::pii(vec![empty]).unwrap();
        assert_eq!(m.text("abxxc"), "ab[x]c");
        assert!(matches!(m.text("abc"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_bad_regex_is_an_error_naming_the_pattern() {
        let bad = UserPattern {
            name: "account".into(),
            pattern: r"ACC-(\d{6}".into(),
            replacement: "[account number]".into(),
        };
        let e = Masker::pii(vec![bad]).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, MaskError::BadPattern { ref name, .. } if name == "account"));
        assert!(
            msg.contains("`account`") && msg.contains("unclosed group"),
            "{msg}"
        );
        assert!(!msg.contains('\n'), "{msg}");

        let toml = "[[mask]]\nname = \"account\"\npattern = 'ACC-(\\d{6}'\n";
        let msg = Masker::user_patterns_in(toml, "masks.toml")
            .unwrap_err()
            .to_string();
        assert!(
            msg.starts_with("masks.toml:3: mask pattern `account`"),
            "{msg}"
        );
    }

    #[test]
    fn user_patterns_are_read_from_the_mask_tables_of_a_dictionary() {
        let toml = r#"version = 3
# products first
[[product]]
name = "Acme Router"
aliases = ["acme wifi router"]

[[mask]]
name = "account"
pattern = 'ACC-\d{6}'
replacement = "[account number]"

[[product]]
name = "Quantum Headset"

[[mask]]
name = "ticket"
pattern = '(?i)tkt-\d+'

[settings]
anything = true
"#;
        let got = Masker::user_patterns_in(toml, "products.toml").unwrap();
        assert_eq!(
            got,
            vec![
                account(),
                UserPattern {
                    name: "ticket".into(),
                    pattern: r"(?i)tkt-\d+".into(),
                    replacement: "[ticket]".into(),
                },
            ]
        );
        let inline = "mask = [{ name = \"account\", pattern = 'ACC-\\d{6}', replacement = \"[account number]\" }]";
        assert_eq!(
            Masker::user_patterns_in(inline, "m.toml").unwrap(),
            vec![account()]
        );
        assert_eq!(
            Masker::user_patterns_in("[[product]]\nname = \"x\"\n", "p.toml").unwrap(),
            Vec::new()
        );
    }

    #[test]
    fn a_masks_file_with_an_unknown_key_or_bad_toml_names_the_file_and_line() {
        let toml = "[[mask]]\nname = \"account\"\npattern = 'ACC-\\d{6}'\nreplace = \"[acct]\"\n";
        let e = Masker::user_patterns_in(toml, "masks.toml").unwrap_err();
        assert!(
            matches!(e, MaskError::UnknownKey { ref key, line: 4, .. } if key == "replace"),
            "{e:?}"
        );
        assert!(e
            .to_string()
            .starts_with("masks.toml:4: unknown key `replace`"));

        let e = Masker::user_patterns_in("[[mask]]\nname = \"a\"\n", "masks.toml").unwrap_err();
        assert!(e.to_string().contains("mask `a` has no `pattern`"), "{e}");
        let e = Masker::user_patterns_in("[[mask]]\npattern = \"a\"\n", "masks.toml").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("masks.toml:1: a [[mask]] table has no `name`"),
            "{e}"
        );
        let e = Masker::user_patterns_in("[[mask]]\nname = 3\n", "masks.toml").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("masks.toml:2: `name` must be a string"),
            "{e}"
        );
        let e = Masker::user_patterns_in("mask = \"x\"\n", "masks.toml").unwrap_err();
        assert!(
            e.to_string().starts_with("masks.toml:1: `mask` must be"),
            "{e}"
        );
        // A regex in a basic string: `\d` is not a TOML escape.
        let e = Masker::user_patterns_in(
            "\n[[mask]]\nname = \"a\"\npattern = \"\\d+\"\n",
            "masks.toml",
        )
        .unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("masks.toml:4: not valid TOML"), "{msg}");
        assert!(msg.contains("single quotes"), "{msg}");

        let e = Masker::user_patterns_file(Path::new("/nonexistent/masks.toml")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("cannot read the masks file /nonexistent/masks.toml"),
            "{e}"
        );
    }

    #[test]
    fn the_id_names_the_rules() {
        assert_eq!(pii().id(), "pii-v1");
        let a = Masker::pii(vec![account()]).unwrap().id();
        assert_eq!(a.len(), "pii-v1+".len() + 12);
        assert!(a.starts_with("pii-v1+"));
        assert!(a["pii-v1+".len()..].bytes().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a, Masker::pii(vec![account()]).unwrap().id());
        let mut other = account();
        other.replacement = "[acct]".into();
        assert_ne!(a, Masker::pii(vec![other]).unwrap().id());
    }

    #[test]
    fn text_without_anything_to_mask_is_borrowed() {
        let m = Masker::pii(vec![account()]).unwrap();
        for s in [
            "",
            "Hello, my Acme Router stopped working yesterday.",
            "Order #12345 on 2026-03-01 at 10:30, $1,299.00, version 1.2.3.",
            "Already masked: [card number] and [email] and [account number].",
        ] {
            assert!(matches!(m.text(s), Cow::Borrowed(x) if x == s), "{s:?}");
        }
    }

    #[test]
    fn json_masks_text_and_keeps_structure() {
        let m = pii();
        let doc = br#"{"id":"6d1c-1","conversationId":"c-1","conversationStart":"2026-03-01T10:00:00.000Z","selfUri":"/api/v2/conversations/c-1","conversationIds":["+44 20 7946 0958"],"participants":[{"purpose":"customer","messages":[{"body":"my card is 4111 1111 1111 1111, mail me at john@example.com","from":"john@example.com","messageTime":"2026-03-01T10:00:05.000Z","big":123456789012345678901234567890,"n":1.0e3}]}],"note":"nothing here"}"#;
        let out = m.json(doc).unwrap().expect("something to mask");
        let expected = br#"{"id":"6d1c-1","conversationId":"c-1","conversationStart":"2026-03-01T10:00:00.000Z","selfUri":"/api/v2/conversations/c-1","conversationIds":["+44 20 7946 0958"],"participants":[{"purpose":"customer","messages":[{"body":"my card is [card number], mail me at [email]","from":"[email]","messageTime":"2026-03-01T10:00:05.000Z","big":123456789012345678901234567890,"n":1.0e3}]}],"note":"nothing here"}"#;
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(expected)
        );

        // The parsed form gives the same document.
        let mut v: Value = serde_json::from_slice(doc).unwrap();
        assert!(m.json_value(&mut v));
        assert_eq!(v, serde_json::from_slice::<Value>(&out).unwrap());

        // Nothing to mask, though ids and times have plenty of digits.
        let plain = br#"{"conversationId":"c-1","startTime":"2026-03-01T10:00:00.000Z","conversationIds":["tel:+13175550123"],"body":"thanks, bye","n":[1234567,8]}"#;
        assert_eq!(m.json(plain).unwrap(), None);
        let mut v: Value = serde_json::from_slice(plain).unwrap();
        assert!(!m.json_value(&mut v));
        assert!(m.json(b"{\"body\": ").is_err());
        assert!(m.json(b"not json").is_err());
        // Escapes are read and written as JSON.
        let escaped = br#"{"body":"line\nmail: john\u0040example.com \"quoted\""}"#;
        let out = m.json(escaped).unwrap().expect("escaped address");
        assert_eq!(
            out,
            br#"{"body":"line\nmail: [email] \"quoted\""}"#.to_vec()
        );
    }

    #[test]
    fn a_masked_voice_phrase_loses_its_words() {
        let m = pii();
        let doc = br#"{"phrases":[{"text":"my card is 4111 1111 1111 1111","words":[{"word":"4111","confidence":0.9},{"word":"1111"}],"startTimeMs":1},{"decoratedText":"Call 317-555-0123.","words":[{"word":"call"}]},{"text":"no thanks","words":[{"word":"no"},{"word":"thanks"}]}]}"#;
        let out = m.json(doc).unwrap().expect("two phrases change");
        let v: Value = serde_json::from_slice(&out).unwrap();
        let phrases = v["phrases"].as_array().unwrap();
        assert_eq!(phrases[0]["text"], "my card is [card number]");
        assert_eq!(phrases[0]["words"], serde_json::json!([]));
        assert_eq!(phrases[0]["startTimeMs"], 1);
        assert_eq!(phrases[1]["decoratedText"], "Call [phone number].");
        assert_eq!(phrases[1]["words"], serde_json::json!([]));
        assert_eq!(phrases[2]["words"].as_array().unwrap().len(), 2);

        let mut parsed: Value = serde_json::from_slice(doc).unwrap();
        assert!(m.json_value(&mut parsed));
        assert_eq!(parsed, v);
    }

    #[test]
    fn structural_keys() {
        for k in [
            "id",
            "conversationId",
            "userIds",
            "nextUri",
            "imageUrl",
            "startTime",
            "endDate",
            "segmentStart",
            "segmentEnd",
            "selfUri",
            "type",
            "cursor",
            "participantPurpose",
        ] {
            assert!(is_structural(k), "{k}");
        }
        for k in [
            "body", "text", "from", "name", "address", "weekend", "restart", "ID", "words",
        ] {
            assert!(!is_structural(k), "{k}");
        }
    }

    /// Texts mixing the corpus with cases where finds sit next to each other.
    fn tricky_texts() -> Vec<String> {
        let mut texts: Vec<String> = bench_corpus(200_000, 11)
            .lines()
            .map(str::to_string)
            .collect();
        texts.extend(
            [
                "4111111111111111-0151-12345678",
                "+44 20 7946 0958a@b.com",
                "x@y.com4111111111111111",
                "ACC-1234567 ACC-123456ACC-654321",
                "GB82WEST12345698765432@example.com",
                "[card number]4111111111111111[email]john@example.com",
                "tel:+13175550123 and 317-555-0123 and 123-45-6789",
                "josé@exemple.fr, 電話07700900123です",
                "[email] number [phone number]",
            ]
            .map(str::to_string),
        );
        texts
    }

    #[test]
    fn masking_is_idempotent() {
        for m in [pii(), Masker::pii(vec![account()]).unwrap()] {
            for s in tricky_texts() {
                let once = m.text(&s).into_owned();
                let twice = m.text(&once);
                assert!(
                    matches!(twice, Cow::Borrowed(_)),
                    "{s:?} -> {once:?} -> {twice:?}"
                );
            }
        }
    }

    #[test]
    fn the_output_is_the_input_with_exactly_the_spans_replaced() {
        let m = Masker::pii(vec![account()]).unwrap();
        let mut kinds = std::collections::HashSet::new();
        for s in tricky_texts() {
            let found = m.find(&s);
            let mut rebuilt = String::new();
            let mut at = 0;
            for f in &found {
                assert!(
                    f.range.start >= at && f.range.start < f.range.end,
                    "{s:?}: {found:?}"
                );
                assert!(s.is_char_boundary(f.range.start) && s.is_char_boundary(f.range.end));
                rebuilt.push_str(&s[at..f.range.start]);
                rebuilt.push_str(m.tag(f.kind));
                at = f.range.end;
                kinds.insert(f.kind);
            }
            rebuilt.push_str(&s[at..]);
            assert_eq!(m.text(&s), rebuilt);
        }
        assert_eq!(kinds.len(), 6, "{kinds:?}");
    }

    #[test]
    fn the_bench_corpus_is_deterministic_and_its_planted_items_are_masked() {
        let corpus = bench_corpus(300_000, 42);
        assert!(corpus.len() >= 300_000);
        assert_eq!(corpus, bench_corpus(300_000, 42));
        assert_ne!(corpus, bench_corpus(300_000, 43));
        assert!(corpus.contains('@'));
        let masked = pii().text(&corpus).into_owned();
        for tag in [
            "[iban]",
            "[email]",
            "[card number]",
            "[ssn]",
            "[phone number]",
        ] {
            assert!(masked.contains(tag), "{tag}");
        }
        assert!(!masked.contains('@'));
        // What is left of card-like numbers fails the Luhn check (the planted invalid cards).
        let cardlike = Regex::new(r"\b\d{4}[ -]?\d{4}[ -]?\d{4}[ -]?\d{4}\b").unwrap();
        let left: Vec<&str> = cardlike.find_iter(&masked).map(|m| m.as_str()).collect();
        assert!(!left.is_empty());
        assert!(left.iter().all(|c| !luhn(c.as_bytes())), "{left:?}");
    }

    #[test]
    fn a_masker_is_shared_across_threads() {
        fn shared<T: Clone + Send + Sync>() {}
        shared::<Masker>();
    }

    /// `cargo test --release --lib privacy::mask -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn throughput() {
        let corpus = bench_corpus(64 << 20, 1);
        let m = pii();
        let lines: Vec<&str> = corpus.lines().collect();
        for _ in 0..2 {
            let t = std::time::Instant::now();
            let mut changed = 0usize;
            for line in &lines {
                changed += usize::from(matches!(m.text(line), Cow::Owned(_)));
            }
            let secs = t.elapsed().as_secs_f64();
            println!(
                "per message: {:.0} MB/s ({} messages, {changed} masked)",
                corpus.len() as f64 / secs / 1e6,
                lines.len()
            );
            let t = std::time::Instant::now();
            let out = m.text(&corpus);
            let secs = t.elapsed().as_secs_f64();
            println!(
                "whole corpus: {:.0} MB/s ({} bytes out)",
                corpus.len() as f64 / secs / 1e6,
                out.len()
            );
        }
        let plain: String = lines
            .iter()
            .filter(|l| m.find(l).is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join("\n");
        let t = std::time::Instant::now();
        let mut n = 0;
        for line in plain.lines() {
            n += m.text(line).len();
        }
        println!(
            "messages with nothing to mask: {:.0} MB/s ({n} bytes)",
            plain.len() as f64 / t.elapsed().as_secs_f64() / 1e6
        );
    }
}
