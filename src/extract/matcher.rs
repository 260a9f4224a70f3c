//! The product matcher: whole-word, case-insensitive dictionary matching that holds up on
//! ASR text (lowercase, no punctuation, words split or joined) and in every script. The rules
//! are the README's ("Matching rules"); this is how they are kept fast.
//!
//! Text is reduced to a *key stream*: its letters and digits, NFKC-normalized, lowercased and
//! with Latin diacritics dropped, each remembering the original character it came from and what
//! separated it from the previous one (nothing, a change into or out of a script written
//! without spaces, whitespace/hyphen/underscore, an apostrophe, or anything else). Names are
//! reduced the same way, remembering where their word boundaries are (spaces, hyphens,
//! camelCase, letter/digit and script changes). Aho-Corasick finds every candidate in the key
//! stream; a candidate counts only when
//! - it starts and ends at a word boundary of the text (`nimbus hubble` is not `Nimbus Hub`),
//!   unless that end of the name is in a script without spaces;
//! - inside it, the text has separators only where the name has a word boundary, and those are
//!   whitespace, hyphens or underscores (or the name's own separator, as in `AT&T`), or one
//!   space or hyphen splits a word of the name with two letters on each side: sentence
//!   punctuation ends a name (`the Acme. Router` is no mention);
//! - a case-sensitive product's capitals are capitals, and an accent-exact product's
//!   diacritics are as written;
//! - the last word may carry a plural (`s`, `es`) or possessive (`'s`, `’s`).
//!
//! Fuzzy products add a second automaton of *pieces*: one edit leaves the first or the second
//! half of a word intact, or swaps the two letters where they meet, so every fuzzy match holds
//! a piece; around each piece the text's words are compared with the form's, word by word.
//!
//! Overlapping candidates resolve to the longest, then the strictest rule; every occurrence
//! counts. Offsets are character offsets into the original text, so `text[start..end]` is the
//! matched span.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind as AcKind};

use super::dictionary::{Accents, Dictionary};
pub use super::normalize::normalize_key;
use super::normalize::{
    is_mark, is_word_char, no_space_script, normalize_key_exact, push_normalized, KEY_BYTE,
};

/// What separates a key character from the previous one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Gap {
    /// Adjacent letters or digits (or bytes of one character).
    None,
    /// Adjacent letters of two scripts, one of them written without spaces (`のA`).
    Script,
    /// Only whitespace, hyphens or underscores.
    Joiner,
    /// Exactly one apostrophe.
    Apostrophe,
    /// Anything else, or the edge of the text.
    Other,
}

fn is_joiner(c: char) -> bool {
    c.is_whitespace() || matches!(c, '-' | '_' | '\u{2010}' | '\u{2011}')
}

fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '\u{2019}' | '\u{02BC}')
}

/// Which rule a mention was found by (`mentions.match_kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MatchKind {
    /// The canonical name (joined, split at its word boundaries, cased, plural…).
    Exact,
    /// An alias or a sounds-like spelling.
    Alias,
    /// A word of the name written as two words (`quantum head set`).
    Split,
    /// A fuzzy product's word one edit away (`quantom headset`).
    Fuzzy,
}

impl MatchKind {
    /// The value in `mentions.match_kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchKind::Exact => "exact",
            MatchKind::Alias => "alias",
            MatchKind::Split => "split",
            MatchKind::Fuzzy => "fuzzy",
        }
    }
}

/// A compiled surface form.
#[derive(Debug)]
struct Pattern {
    product: u32,
    /// For each key byte: the separator the name has before it, if this is a word boundary
    /// (`Some("")` for a camelCase, letter/digit or script boundary, `Some(sep)` otherwise).
    boundary: Vec<Option<String>>,
    /// For each key byte: a space or hyphen may split the name's word here (each part keeps
    /// two letters; only in names of two or more words).
    split_ok: Vec<bool>,
    /// For each key byte: the index of the name's word it belongs to.
    word: Vec<u16>,
    /// Key bytes whose text character must be a capital (a case-sensitive product's form
    /// with capitals: the first letter of each capitalised word).
    caps: Vec<u32>,
    /// The key with diacritics, when they must match exactly and the form has some.
    exact: Option<String>,
    /// The form starts (ends) with a letter of a script written without spaces: no word
    /// boundary is needed before (after) it.
    free_start: bool,
    free_end: bool,
    alias: bool,
}

/// One mention found in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Index into [`Matcher::products`].
    pub product: u32,
    /// Character offset of the first matched character.
    pub start_char: usize,
    /// Character offset one past the last matched character.
    pub end_char: usize,
    /// Byte offsets of the same span, so `&text[start_byte..end_byte]` is the matched text.
    pub start_byte: usize,
    pub end_byte: usize,
    /// The rule that found it.
    pub kind: MatchKind,
}

/// Reusable buffers for [`Matcher::find`], so a long run allocates once.
#[derive(Default)]
pub struct Scratch {
    key: String,
    /// Per key byte: the original character index it came from.
    orig: Vec<u32>,
    /// Per key byte (plus one past the end): the separator before it (left empty for ASCII
    /// text, whose separators are read from the text itself).
    gap: Vec<Gap>,
    /// Per key byte: start of the separator text (char index) before it, for exact comparison
    /// (left empty for ASCII text).
    gap_from: Vec<u32>,
    /// Byte offset of every original character (left empty for ASCII text, where the two agree).
    char_starts: Vec<usize>,
    ascii: bool,
    candidates: Vec<(usize, usize, u32, MatchKind)>,
    /// The key of ASCII text alone, for the quick check that most texts mention nothing.
    quick: Vec<u8>,
    /// Key ranges of the text's words (for fuzzy matching).
    words: Vec<(usize, usize)>,
}

/// A fuzzy product's form, word by word (words as the dictionary separates them).
#[derive(Debug)]
struct FuzzyForm {
    product: u32,
    /// Each word's key, letter by letter.
    words: Vec<Vec<char>>,
    /// Each word may differ by one edit (six or more letters).
    eligible: Vec<bool>,
    /// Each word's first text letter must be a capital (case-sensitive products).
    caps: Vec<bool>,
}

/// The automaton of fuzzy pieces: every fuzzy match contains one of them.
struct Fuzzy {
    ac: AhoCorasick,
    /// For each piece: the (form, word) it is of. One edit leaves the first or the second half
    /// of a word intact, or swaps the two letters where they meet (a piece of its own).
    pieces: Vec<Vec<(u32, u16)>>,
    forms: Vec<FuzzyForm>,
}

/// The compiled dictionary.
pub struct Matcher {
    ac: Option<AhoCorasick>,
    patterns: Vec<Pattern>,
    products: Vec<String>,
    fuzzy: Option<Fuzzy>,
}

/// A form compiled: its key and, per key byte, what [`Pattern`] keeps.
struct Compiled {
    key: String,
    boundary: Vec<Option<String>>,
    split_ok: Vec<bool>,
    word: Vec<u16>,
    /// Key bytes that start a word whose first letter is a capital in the form.
    capital_starts: Vec<u32>,
    first: Option<char>,
    last: Option<char>,
}

fn compile_form(form: &str) -> Compiled {
    let mut key = String::new();
    let mut boundary: Vec<Option<String>> = Vec::new();
    let mut word: Vec<u16> = Vec::new();
    let mut capital_starts = Vec::new();
    let mut sep = String::new();
    let mut prev: Option<char> = None;
    let mut first = None;
    let mut words = 0u16;
    for c in form.chars() {
        if is_mark(c) {
            continue;
        }
        if !is_word_char(c) {
            sep.push(c);
            continue;
        }
        let before = key.len();
        push_normalized(c, &mut key);
        let added = key.len() - before;
        if added == 0 {
            continue;
        }
        let b = match prev {
            None => None,
            Some(_) if !sep.is_empty() => {
                let s = sep.trim();
                Some(if s.chars().all(is_joiner) {
                    String::new()
                } else {
                    s.to_string()
                })
            }
            Some(p) => {
                let camel = p.is_lowercase() && c.is_uppercase();
                let digit_change = p.is_numeric() != c.is_numeric();
                let script = no_space_script(p) != no_space_script(c);
                (camel || digit_change || script).then(String::new)
            }
        };
        if prev.is_none() || b.is_some() {
            if prev.is_some() {
                words += 1;
            }
            if c.is_uppercase() {
                capital_starts.push(before as u32);
            }
        }
        boundary.push(b);
        boundary.extend(std::iter::repeat_n(None, added - 1));
        word.extend(std::iter::repeat_n(words, added));
        sep.clear();
        first.get_or_insert(c);
        prev = Some(c);
    }
    // A split needs two letters on each side, inside one word of a name of two or more words.
    let mut split_ok = vec![false; key.len()];
    if words > 0 {
        let starts: Vec<(usize, char)> = key.char_indices().collect();
        let mut i = 0;
        while i < starts.len() {
            let w = word[starts[i].0];
            let j = (i..starts.len())
                .find(|&j| word[starts[j].0] != w)
                .unwrap_or(starts.len());
            for k in i + 2..j.saturating_sub(1) {
                split_ok[starts[k].0] = true;
            }
            i = j;
        }
    }
    Compiled {
        key,
        boundary,
        split_ok,
        word,
        capital_starts,
        first,
        last: prev,
    }
}

/// The words of a form as the dictionary separates them (by anything that is not a letter or
/// digit, and between scripts), with their first characters.
fn form_words(form: &str) -> Vec<(String, char)> {
    let mut out: Vec<(String, char)> = Vec::new();
    let mut cur = String::new();
    let mut first = None;
    let mut prev: Option<char> = None;
    for c in form.chars().filter(|c| !is_mark(*c)) {
        let script_change = prev.is_some_and(|p| no_space_script(p) != no_space_script(c));
        if !is_word_char(c) || script_change {
            if let Some(f) = first.take() {
                out.push((normalize_key(&cur), f));
            }
            cur.clear();
        }
        if is_word_char(c) {
            first.get_or_insert(c);
            cur.push(c);
            prev = Some(c);
        } else {
            prev = None;
        }
    }
    if let Some(f) = first {
        out.push((normalize_key(&cur), f));
    }
    out.retain(|(k, _)| !k.is_empty());
    out
}

/// Whether `a` and `b` differ by exactly one edit: a letter inserted, deleted or replaced, or
/// two neighbours swapped.
fn one_edit<T: PartialEq>(a: &[T], b: &[T]) -> bool {
    fn inserted<T: PartialEq>(short: &[T], long: &[T]) -> bool {
        let i = short
            .iter()
            .zip(long)
            .position(|(x, y)| x != y)
            .unwrap_or(short.len());
        short[i..] == long[i + 1..]
    }
    match a.len().cmp(&b.len()) {
        std::cmp::Ordering::Equal => {
            let Some(i) = a.iter().zip(b).position(|(x, y)| x != y) else {
                return false;
            };
            a[i + 1..] == b[i + 1..]
                || (i + 1 < a.len()
                    && a[i] == b[i + 1]
                    && a[i + 1] == b[i]
                    && a[i + 2..] == b[i + 2..])
        }
        std::cmp::Ordering::Less => a.len() + 1 == b.len() && inserted(a, b),
        std::cmp::Ordering::Greater => b.len() + 1 == a.len() && inserted(b, a),
    }
}

/// Aligns a fuzzy form with text words from `(text word, letter, form word)` on: each form
/// word is a stretch of one text word (words joined in the text share one), equal to it, or
/// (six letters or more) one edit away, or for the last, with a plural ending; text words are
/// separated by whitespace, hyphens or a change of script (`spaced`), a capitalised word of a
/// case-sensitive form starts with a capital, and the form ends where a text word ends. Returns
/// the last text word used, when the form holds with at least one edit in all.
fn align(
    window: &[(Vec<char>, Vec<usize>)],
    spaced: &[bool],
    f: &FuzzyForm,
    cap_ok: &dyn Fn(usize) -> bool,
    (ti, off, nj): (usize, usize, usize),
    edits: usize,
) -> Option<usize> {
    if nj == f.words.len() {
        return (off == 0 && edits > 0 && ti > 0).then(|| ti - 1);
    }
    let (word, positions) = window.get(ti)?;
    if off == 0 && nj > 0 && !spaced[ti] {
        return None;
    }
    if f.caps[nj] && !positions.get(off).is_some_and(|&pos| cap_ok(pos)) {
        return None;
    }
    let rest = &word[off..];
    let w = &f.words[nj][..];
    let last = nj + 1 == f.words.len();
    for len in w.len().saturating_sub(1).max(1)..=(w.len() + 2).min(rest.len()) {
        let part = &rest[..len];
        let ends = len == rest.len();
        let plural =
            last && ends && part.starts_with(w) && matches!(part[w.len()..], ['s'] | ['e', 's']);
        let cost = if part == w || plural {
            0
        } else if f.eligible[nj] && one_edit(part, w) {
            1
        } else {
            continue;
        };
        let next = if ends {
            (ti + 1, 0, nj + 1)
        } else {
            (ti, off + len, nj + 1)
        };
        if let Some(found) = align(window, spaced, f, cap_ok, next, edits + cost) {
            return Some(found);
        }
    }
    None
}

impl Fuzzy {
    fn new(dict: &Dictionary) -> Option<Fuzzy> {
        let mut forms = Vec::new();
        let mut piece_ids: std::collections::HashMap<String, usize> = Default::default();
        let mut keys: Vec<String> = Vec::new();
        let mut pieces: Vec<Vec<(u32, u16)>> = Vec::new();
        for (i, p) in dict.products.iter().enumerate().filter(|(_, p)| p.fuzzy) {
            for form in p.forms() {
                let words = form_words(form);
                let cased = p.case_sensitive && form.chars().any(char::is_uppercase);
                let f = FuzzyForm {
                    product: i as u32,
                    eligible: words.iter().map(|(k, _)| k.chars().count() >= 6).collect(),
                    caps: words
                        .iter()
                        .map(|(_, c)| cased && c.is_uppercase())
                        .collect(),
                    words: words
                        .into_iter()
                        .map(|(k, _)| k.chars().collect())
                        .collect(),
                };
                let form_id = forms.len() as u32;
                for (w, chars) in f.words.iter().enumerate() {
                    if !f.eligible[w] {
                        continue;
                    }
                    let m = chars.len() / 2;
                    let mut swapped = chars.clone();
                    swapped.swap(m - 1, m);
                    for piece in [
                        chars[..m].iter().collect::<String>(),
                        chars[m..].iter().collect::<String>(),
                        swapped.iter().collect::<String>(),
                    ] {
                        let id = *piece_ids.entry(piece.clone()).or_insert_with(|| {
                            keys.push(piece);
                            pieces.push(Vec::new());
                            pieces.len() - 1
                        });
                        if !pieces[id].contains(&(form_id, w as u16)) {
                            pieces[id].push((form_id, w as u16));
                        }
                    }
                }
                forms.push(f);
            }
        }
        if keys.is_empty() {
            return None;
        }
        let ac = AhoCorasickBuilder::new()
            .match_kind(AcKind::Standard)
            .build(&keys)
            .ok()?;
        Some(Fuzzy { ac, pieces, forms })
    }
}

impl Matcher {
    /// Compiles a dictionary.
    pub fn new(dict: &Dictionary) -> Matcher {
        let mut keys: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut patterns = Vec::new();
        let mut products = Vec::new();
        for (i, p) in dict.products.iter().enumerate() {
            products.push(p.name.clone());
            for (f, form) in p.forms().enumerate() {
                let c = compile_form(form);
                if c.key.is_empty() || !seen.insert(c.key.clone()) {
                    continue;
                }
                // An all-lowercase alias of a case-sensitive product matches in any case.
                let caps = if p.case_sensitive && form.chars().any(char::is_uppercase) {
                    c.capital_starts.clone()
                } else {
                    Vec::new()
                };
                let exact = (p.accents == Accents::Exact)
                    .then(|| normalize_key_exact(form))
                    .filter(|e| *e != c.key);
                keys.push(c.key);
                patterns.push(Pattern {
                    product: i as u32,
                    boundary: c.boundary,
                    split_ok: c.split_ok,
                    word: c.word,
                    caps,
                    exact,
                    free_start: c.first.is_some_and(no_space_script),
                    free_end: c.last.is_some_and(no_space_script),
                    alias: f > 0,
                });
            }
        }
        let ac = if keys.is_empty() {
            None
        } else {
            // Standard semantics + overlapping search: every candidate is seen, then validated;
            // a rejected long candidate never hides a valid shorter one.
            AhoCorasickBuilder::new()
                .match_kind(AcKind::Standard)
                .kind(Some(aho_corasick::AhoCorasickKind::DFA))
                .build(&keys)
                .ok()
        };
        Matcher {
            ac,
            patterns,
            products,
            fuzzy: Fuzzy::new(dict),
        }
    }

    /// Canonical product names, indexed by [`Found::product`].
    pub fn products(&self) -> &[String] {
        &self.products
    }

    /// Builds the key stream of `text`; `general` takes the general path even for ASCII text.
    fn scan(text: &str, s: &mut Scratch, general: bool) {
        s.key.clear();
        s.orig.clear();
        s.gap.clear();
        s.gap_from.clear();
        s.char_starts.clear();
        s.ascii = !general && text.is_ascii();
        if s.ascii {
            Self::scan_ascii(text.as_bytes(), s);
            return;
        }
        let mut sep_kind = Gap::Other; // the text edge is a boundary
        let mut sep_len = 0usize;
        let mut sep_from = 0u32;
        let mut prev: Option<char> = None;
        for (ci, (bi, c)) in text.char_indices().enumerate() {
            s.char_starts.push(bi);
            if is_mark(c) {
                continue; // a combining accent belongs to its letter (decomposed text)
            }
            if is_word_char(c) {
                let before = s.key.len();
                push_normalized(c, &mut s.key);
                let added = s.key.len() - before;
                if added == 0 {
                    continue;
                }
                let first = if before == 0 {
                    Gap::Other
                } else if sep_len == 0 {
                    match prev {
                        Some(p) if no_space_script(p) != no_space_script(c) => Gap::Script,
                        _ => Gap::None,
                    }
                } else {
                    sep_kind
                };
                s.gap.push(first);
                s.gap_from.push(sep_from);
                for _ in 1..added {
                    s.gap.push(Gap::None);
                    s.gap_from.push(ci as u32);
                }
                s.orig.extend(std::iter::repeat_n(ci as u32, added));
                sep_len = 0;
                sep_kind = Gap::Joiner;
                prev = Some(c);
            } else {
                if sep_len == 0 {
                    sep_from = ci as u32;
                    sep_kind = if is_joiner(c) {
                        Gap::Joiner
                    } else if is_apostrophe(c) {
                        Gap::Apostrophe
                    } else {
                        Gap::Other
                    };
                } else if !(sep_kind == Gap::Joiner && is_joiner(c)) {
                    sep_kind = Gap::Other;
                }
                sep_len += 1;
            }
        }
        // The separator after the last key character (or the end of the text).
        s.gap.push(if sep_len == 0 { Gap::Other } else { sep_kind });
        s.gap_from.push(sep_from);
        s.char_starts.push(text.len());
    }

    /// The same as the general scan for ASCII text (most transcripts): one byte is one
    /// character, NFKC changes nothing, and no character-offset table is needed. Only the key
    /// and its positions are built, branch-free; separators are read from the text when a
    /// candidate asks ([`Matcher::gap`]).
    fn scan_ascii(text: &[u8], s: &mut Scratch) {
        let mut key = std::mem::take(&mut s.key).into_bytes();
        key.resize(text.len(), 0);
        s.orig.resize(text.len(), 0);
        let mut n = 0;
        {
            let (key, orig) = (&mut key[..], &mut s.orig[..]);
            for (i, &b) in text.iter().enumerate() {
                key[n] = b.to_ascii_lowercase();
                orig[n] = i as u32;
                n += usize::from(b.is_ascii_alphanumeric());
            }
        }
        key.truncate(n);
        s.orig.truncate(n);
        s.key = String::from_utf8(key).unwrap_or_default();
    }

    /// The separator before key byte `i` (`i` = the key's length: after the last one).
    fn gap(text: &str, s: &Scratch, i: usize) -> Gap {
        if !s.ascii {
            return s.gap[i];
        }
        let n = s.orig.len();
        if i == 0 || n == 0 {
            return Gap::Other; // the text's start
        }
        let from = s.orig[i - 1] as usize + 1;
        let sep = match s.orig.get(i) {
            Some(&to) => &text.as_bytes()[from..to as usize],
            None => &text.as_bytes()[from..],
        };
        let joiner = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'-' | b'_' | 0x0b | 0x0c);
        match sep {
            [] if i < n => Gap::None,
            [] => Gap::Other, // the text's end
            [b'\''] => Gap::Apostrophe,
            [first, ..] if joiner(first) && sep.iter().all(joiner) => Gap::Joiner,
            _ => Gap::Other,
        }
    }

    /// Byte offset of original character `c`.
    fn byte_of(s: &Scratch, c: usize) -> usize {
        if s.ascii {
            c
        } else {
            s.char_starts[c]
        }
    }

    /// The original character key byte `i` came from.
    fn char_at(text: &str, s: &Scratch, i: usize) -> char {
        let b = Self::byte_of(s, s.orig[i] as usize);
        text[b..].chars().next().unwrap_or(' ')
    }

    /// Separator text (trimmed) before key byte `i`.
    fn sep_text<'t>(text: &'t str, s: &Scratch, i: usize) -> &'t str {
        let from = if s.ascii {
            s.orig[i - 1] as usize + 1
        } else {
            Self::byte_of(s, s.gap_from[i] as usize)
        };
        let to = Self::byte_of(s, s.orig[i] as usize);
        text.get(from..to).unwrap_or("").trim()
    }

    /// Finds every mention in `text`, in order of position.
    pub fn find(&self, text: &str, s: &mut Scratch, out: &mut Vec<Found>) {
        out.clear();
        let Some(ac) = &self.ac else { return };
        // Most texts mention no product. For ASCII text the key alone (lowercased letters and
        // digits) decides that: every candidate is a match of the automaton in the key (or,
        // for fuzzy products, holds one of their pieces), and the non-overlapping search can
        // use its prefilter. Only texts with a candidate pay for the full scan below.
        if text.is_ascii() {
            // Branch-free: every byte is written, and the cursor moves past letters and digits.
            s.quick.resize(text.len(), 0);
            let mut n = 0;
            let quick = &mut s.quick[..];
            for &b in text.as_bytes() {
                let k = KEY_BYTE[usize::from(b)];
                quick[n] = k;
                n += usize::from(k != 0);
            }
            s.quick.truncate(n);
            if !ac.is_match(s.quick.as_slice())
                && !self
                    .fuzzy
                    .as_ref()
                    .is_some_and(|f| f.ac.is_match(s.quick.as_slice()))
            {
                return;
            }
        }
        self.find_scanned(ac, text, s, out, false);
    }

    /// Whether an exact candidate `[start, end)` of `pat` holds in the text: word boundaries,
    /// separators, capitals and accents. Returns its end (with a plural or possessive) and
    /// its kind.
    fn validate(
        &self,
        text: &str,
        s: &Scratch,
        pat: &Pattern,
        start: usize,
        end: usize,
    ) -> Option<(usize, MatchKind)> {
        let key = s.key.as_bytes();
        let n = key.len();
        if Self::gap(text, s, start) == Gap::None && !pat.free_start {
            return None; // starts inside a word
        }
        let mut split_word: Option<u16> = None;
        let mut split = false;
        for i in start + 1..end {
            let rel = i - start;
            let ok = match (Self::gap(text, s, i), &pat.boundary[rel]) {
                (Gap::None, _) => true,
                (Gap::Joiner | Gap::Script, Some(_)) => true,
                (Gap::Joiner, None) if pat.split_ok[rel] => {
                    // One space or hyphen inside a word of the name: a split word.
                    let sep = Self::sep_text(text, s, i);
                    let plain = sep.is_empty() || sep.chars().all(|c| is_joiner(c) && c != '_');
                    let first = split_word != Some(pat.word[rel]);
                    split_word = Some(pat.word[rel]);
                    split = true;
                    plain && first
                }
                (_, None) => false,
                (_, Some(sep)) => !sep.is_empty() && Self::sep_text(text, s, i) == sep,
            };
            if !ok {
                return None;
            }
        }
        for &off in &pat.caps {
            if !Self::char_at(text, s, start + off as usize).is_uppercase() {
                return None;
            }
        }
        if let Some(exact) = &pat.exact {
            let (first, last) = (s.orig[start] as usize, s.orig[end - 1] as usize);
            let span = &text[Self::byte_of(s, first)..Self::byte_of(s, last + 1)];
            if normalize_key_exact(span) != *exact {
                return None;
            }
        }
        let mut stop = end;
        let boundary_at = |i: usize| i >= n || Self::gap(text, s, i) != Gap::None;
        if !boundary_at(stop) {
            if pat.free_end {
                // A name in a script without spaces ends wherever it ends.
            } else if key[stop] == b's' && boundary_at(stop + 1) {
                stop += 1;
            } else if key[stop] == b'e'
                && stop + 1 < n
                && key[stop + 1] == b's'
                && boundary_at(stop + 2)
            {
                stop += 2;
            } else {
                return None; // ends inside a word
            }
        } else if stop < n
            && Self::gap(text, s, stop) == Gap::Apostrophe
            && key[stop] == b's'
            && boundary_at(stop + 1)
        {
            stop += 1; // possessive
        }
        let kind = if split {
            MatchKind::Split
        } else if pat.alias {
            MatchKind::Alias
        } else {
            MatchKind::Exact
        };
        Some((stop, kind))
    }

    /// Fuzzy candidates: around each piece of a fuzzy word, the text's words against the
    /// form's, each equal or (six letters or more) one edit away, at least one edit in all.
    fn fuzzy_candidates(&self, fuzzy: &Fuzzy, text: &str, s: &mut Scratch) {
        // A piece inside an exact candidate is that candidate's own word (most pieces are): the
        // exact match is as long and stricter, so only the other pieces are looked at.
        let exact = &s.candidates;
        let hits: Vec<(usize, usize, usize)> = fuzzy
            .ac
            .find_overlapping_iter(&s.key)
            .map(|m| (m.start(), m.end(), m.pattern().as_usize()))
            .filter(|&(a, b, _)| !exact.iter().any(|c| c.0 <= a && b <= c.1))
            .collect();
        if hits.is_empty() {
            return;
        }
        let n = s.key.len();
        let mut words = std::mem::take(&mut s.words);
        words.clear();
        for i in 0..n {
            if i == 0 || Self::gap(text, s, i) != Gap::None {
                if let Some(last) = words.last_mut() {
                    last.1 = i;
                }
                words.push((i, n));
            }
        }
        let word_key = |w: (usize, usize)| &s.key[w.0..w.1];
        let mut found: Vec<(usize, usize, u32, MatchKind)> = Vec::new();
        let mut tried: Vec<(usize, u32)> = Vec::new();
        for (a, b, piece) in hits {
            let k = words.partition_point(|w| w.0 <= a) - 1;
            if b > words[k].1 {
                continue; // the piece runs across words
            }
            for &(form, j) in &fuzzy.pieces[piece] {
                let f = &fuzzy.forms[form as usize];
                // The form starts at a text word: this one, or (its words spaced) up to `j`
                // words before it.
                for first in k.saturating_sub(j as usize)..=k {
                    if tried.contains(&(first, form)) {
                        continue;
                    }
                    tried.push((first, form));
                    // The text words from `first` on, letter by letter with their key bytes.
                    let window: Vec<(Vec<char>, Vec<usize>)> = words[first..]
                        .iter()
                        .take(f.words.len() + 1)
                        .map(|&(x, y)| s.key[x..y].char_indices().map(|(o, c)| (c, x + o)).unzip())
                        .collect();
                    let spaced: Vec<bool> = (first..first + window.len())
                        .map(|t| {
                            t == first
                                || matches!(
                                    Self::gap(text, s, words[t].0),
                                    Gap::Joiner | Gap::Script
                                )
                        })
                        .collect();
                    let cap_ok = |pos: usize| Self::char_at(text, s, pos).is_uppercase();
                    let Some(last) = align(&window, &spaced, f, &cap_ok, (0, 0, 0), 0) else {
                        continue;
                    };
                    let last = first + last;
                    let mut stop = words[last].1;
                    if last + 1 < words.len()
                        && Self::gap(text, s, words[last + 1].0) == Gap::Apostrophe
                        && word_key(words[last + 1]) == "s"
                    {
                        stop = words[last + 1].1; // possessive
                    }
                    found.push((words[first].0, stop, f.product, MatchKind::Fuzzy));
                }
            }
        }
        s.words = words;
        found.sort_unstable();
        found.dedup();
        s.candidates.extend(found);
    }

    /// [`Matcher::find`] without the quick check (`general`: see [`Matcher::scan`]).
    fn find_scanned(
        &self,
        ac: &AhoCorasick,
        text: &str,
        s: &mut Scratch,
        out: &mut Vec<Found>,
        general: bool,
    ) {
        out.clear();
        Self::scan(text, s, general);
        s.candidates.clear();
        for m in ac.find_overlapping_iter(&s.key) {
            let (start, end) = (m.start(), m.end());
            let pat = &self.patterns[m.pattern().as_usize()];
            if let Some((stop, kind)) = self.validate(text, s, pat, start, end) {
                s.candidates.push((start, stop, pat.product, kind));
            }
        }
        if let Some(fuzzy) = &self.fuzzy {
            self.fuzzy_candidates(fuzzy, text, s);
        }
        // Within each group of overlapping candidates: longest first, then the stricter rule
        // (exact before alias, split and fuzzy), then leftmost; keep those that overlap nothing
        // kept. Groups are small, so this stays linear in the text.
        s.candidates
            .sort_unstable_by_key(|c| (c.0, std::cmp::Reverse(c.1), c.3));
        type Cand = (usize, usize, u32, MatchKind);
        let mut kept: Vec<Cand> = Vec::new();
        let mut group: Vec<Cand> = Vec::new();
        let mut group_end = 0usize;
        let flush = |group: &mut Vec<Cand>, kept: &mut Vec<Cand>| {
            group.sort_by(|a, b| {
                (b.1 - b.0)
                    .cmp(&(a.1 - a.0))
                    .then(a.3.cmp(&b.3))
                    .then(a.0.cmp(&b.0))
            });
            let first = kept.len();
            for &(a, b, p, k) in group.iter() {
                if kept[first..].iter().all(|&(x, y, _, _)| b <= x || a >= y) {
                    kept.push((a, b, p, k));
                }
            }
            kept[first..].sort_unstable();
            group.clear();
        };
        for &c in &s.candidates {
            if !group.is_empty() && c.0 >= group_end {
                flush(&mut group, &mut kept);
            }
            group_end = if group.is_empty() {
                c.1
            } else {
                group_end.max(c.1)
            };
            group.push(c);
        }
        flush(&mut group, &mut kept);
        out.extend(kept.into_iter().map(|(a, b, p, kind)| {
            let (first, last) = (s.orig[a] as usize, s.orig[b - 1] as usize);
            Found {
                product: p,
                start_char: first,
                end_char: last + 1,
                start_byte: Self::byte_of(s, first),
                end_byte: Self::byte_of(s, last + 1),
                kind,
            }
        }));
    }
}

/// The characters `[start, end)` of `text`.
pub fn char_slice(text: &str, start: usize, end: usize) -> &str {
    let mut it = text
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(text.len()));
    let from = it.nth(start).unwrap_or(text.len());
    let to = if end > start {
        it.nth(end - start - 1).unwrap_or(text.len())
    } else {
        from
    };
    &text[from..to]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dict() -> Dictionary {
        Dictionary::parse(
            r#"
[[product]]
name = "Acme Router"
aliases = ["acme wifi router"]
[[product]]
name = "Quantum Headset"
[[product]]
name = "CloudPhone Pro"
aliases = ["cloud fone pro"]
[[product]]
name = "Nimbus Hub"
[[product]]
name = "AT&T Box"
"#,
            "test",
        )
        .unwrap()
    }

    fn found(text: &str) -> Vec<(String, String)> {
        let m = Matcher::new(&dict());
        let mut s = Scratch::default();
        let mut out = Vec::new();
        m.find(text, &mut s, &mut out);
        out.iter()
            .map(|f| {
                (
                    m.products()[f.product as usize].clone(),
                    char_slice(text, f.start_char, f.end_char).to_string(),
                )
            })
            .collect()
    }

    fn names(text: &str) -> Vec<String> {
        found(text).into_iter().map(|(p, _)| p).collect()
    }

    #[test]
    fn split_joined_and_cased_forms_match() {
        for t in [
            "my cloud phone pro died",
            "my CloudPhone-Pro died",
            "my cloudphonepro died",
            "my cloudphone pro died",
            "CLOUDPHONE PRO!",
            "a cloud\nphone\tpro",
            "acme_router",
        ] {
            assert_eq!(names(t).len(), 1, "{t:?}");
        }
        assert_eq!(found("My CloudPhone-Pro died")[0].1, "CloudPhone-Pro");
    }

    #[test]
    fn whole_words_only() {
        assert!(names("the nimbus hubble telescope").is_empty());
        assert!(names("my router is slow").is_empty());
        assert!(names("xacme router").is_empty());
        assert!(names("the Acme. Router").is_empty());
        assert!(names("the Acme, Router").is_empty());
        assert!(
            names("acmer outer").is_empty(),
            "separators only at name boundaries"
        );
    }

    #[test]
    fn plurals_and_possessives() {
        assert_eq!(found("two acme routers")[0].1, "acme routers");
        assert_eq!(
            found("the Quantum Headset's battery")[0].1,
            "Quantum Headset's"
        );
        assert_eq!(
            found("the Quantum Headset’s battery")[0].1,
            "Quantum Headset’s"
        );
        assert_eq!(found("quantum headsets' cases")[0].1, "quantum headsets");
        assert!(names("quantum headsetx").is_empty());
    }

    #[test]
    fn unicode_and_symbols() {
        assert_eq!(names("ＣｌｏｕｄＰｈｏｎｅ Ｐｒｏ"), ["CloudPhone Pro"]);
        assert_eq!(names("CloudPhone Pro™ rocks"), ["CloudPhone Pro"]);
        assert_eq!(names("“Acme Router”"), ["Acme Router"]);
        assert_eq!(names("an AT&T Box"), ["AT&T Box"]);
        assert_eq!(found("é acme router")[0].1, "acme router");
    }

    #[test]
    fn aliases_and_longest_match() {
        assert_eq!(names("my acme wifi router"), ["Acme Router"]);
        assert_eq!(found("my acme wifi router")[0].1, "acme wifi router");
        assert_eq!(names("cloud fone pro"), ["CloudPhone Pro"]);
        assert_eq!(
            names("acme router and acme router, quantum headset"),
            ["Acme Router", "Acme Router", "Quantum Headset"]
        );
    }

    #[test]
    fn byte_and_character_offsets_agree() {
        let m = Matcher::new(&dict());
        let mut s = Scratch::default();
        let mut out = Vec::new();
        for text in [
            "my acme router!",
            "é “Acme-Router’s” ＣｌｏｕｄＰｈｏｎｅ Ｐｒｏ",
            "acme\nrouter x",
        ] {
            m.find(text, &mut s, &mut out);
            assert!(!out.is_empty(), "{text}");
            for f in &out {
                assert_eq!(
                    &text[f.start_byte..f.end_byte],
                    char_slice(text, f.start_char, f.end_char),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn the_ascii_fast_paths_agree_with_the_general_scan() {
        use rand::{Rng, SeedableRng};
        let m = Matcher::new(&dict());
        let ac = m.ac.as_ref().unwrap();
        let pieces = [
            "acme",
            "Acme",
            "router",
            "Router's",
            "routers",
            "wifi",
            "cloud",
            "phone",
            "fone",
            "pro",
            "CloudPhone",
            "nimbus",
            "hub",
            "hubble",
            "AT",
            "&",
            "T",
            "box",
            "boxes",
            "quantum",
            "headset",
            "the",
            "my",
            "x",
            "acme router",
            "nimbus-hub",
            "AT&T box",
            "cloud fone pro",
            " ",
            " ",
            "-",
            "_",
            ".",
            "'",
            ",",
            "\n",
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let (mut s, mut quick, mut full, mut general) =
            (Scratch::default(), Vec::new(), Vec::new(), Vec::new());
        let mut with_mentions = 0;
        for _ in 0..20_000 {
            let len = rng.random_range(0..12);
            let text: String = (0..len)
                .map(|_| pieces[rng.random_range(0..pieces.len())])
                .collect();
            m.find(&text, &mut s, &mut quick);
            m.find_scanned(ac, &text, &mut s, &mut full, false);
            assert_eq!(quick, full, "{text:?}");
            // The ASCII scan reads separators lazily; the general one records them all.
            m.find_scanned(ac, &text, &mut s, &mut general, true);
            assert_eq!(full, general, "{text:?}");
            with_mentions += usize::from(!full.is_empty());
        }
        // The generated texts exercise both outcomes.
        assert!(with_mentions > 1_000, "{with_mentions}");
    }

    fn rules_dict() -> Dictionary {
        Dictionary::parse(
            r#"
[[product]]
name = "Acme Router"
[[product]]
name = "Quantum Headset"
fuzzy = true
[[product]]
name = "Réseau Plus"
[[product]]
name = "Café Noir"
accents = "exact"
[[product]]
name = "Edge"
case_sensitive = true
aliases = ["acme edge"]
[[product]]
name = "アクメルーター"
[[product]]
name = "Zentrix"
fuzzy = true
[[product]]
name = "Nimbus Hub"
fuzzy = true
"#,
            "rules",
        )
        .unwrap()
    }

    fn kinds(text: &str) -> Vec<(String, String, &'static str)> {
        let m = Matcher::new(&rules_dict());
        let mut s = Scratch::default();
        let mut out = Vec::new();
        m.find(text, &mut s, &mut out);
        let mut general = Vec::new();
        m.find_scanned(m.ac.as_ref().unwrap(), text, &mut s, &mut general, true);
        assert_eq!(out, general, "{text:?}: the ASCII and general scans agree");
        out.iter()
            .map(|f| {
                (
                    m.products()[f.product as usize].clone(),
                    char_slice(text, f.start_char, f.end_char).to_string(),
                    f.kind.as_str(),
                )
            })
            .collect()
    }

    fn one(text: &str) -> (String, String, &'static str) {
        let k = kinds(text);
        assert_eq!(k.len(), 1, "{text:?}: {k:?}");
        k[0].clone()
    }

    #[test]
    fn split_words_need_two_letters_on_each_side() {
        assert_eq!(one("my quantum head set died").1, "quantum head set");
        assert_eq!(one("my quantum head set died").2, "split");
        assert_eq!(one("the Quantum Head-Set").2, "split");
        assert_eq!(one("an ac me router").2, "split");
        assert_eq!(one("the acme router").2, "exact");
        for t in [
            "my quantum headse t",  // a part of one letter
            "my quantum h eadset",  // a part of one letter
            "my quantum he ad set", // two splits in one word
            "the zen trix",         // a one-word name is never split
            "my quantum head_set",  // only spaces and hyphens split
            "my quantum head. set", // punctuation ends a name
        ] {
            assert!(
                kinds(t).iter().all(|k| k.2 != "split"),
                "{t:?}: {:?}",
                kinds(t)
            );
        }
        // Both words of a name may each be split once.
        assert_eq!(one("quan tum head set").2, "split");
    }

    #[test]
    fn a_change_of_script_is_a_word_boundary() {
        assert_eq!(one("私のAcme Routerが壊れました").1, "Acme Router");
        assert_eq!(one("Acme Routerของฉันเสีย").1, "Acme Router");
        assert_eq!(one("제 Acme Router를 샀어요").1, "Acme Router");
        assert_eq!(one("我的Acme Router坏了").1, "Acme Router");
        // A name in a script without spaces matches wherever it is in that script's text.
        assert_eq!(one("私のアクメルーターが壊れました").1, "アクメルーター");
        assert_eq!(one("アクメルーターです").1, "アクメルーター");
        // Latin letters still need a boundary between them.
        assert!(kinds("私のxAcme Routerが").is_empty());
    }

    #[test]
    fn accents_are_ignored_unless_exact() {
        for t in [
            "reseau plus",
            "RÉSEAU PLUS",
            "Réseau-Plus",
            "le réseau plus",
        ] {
            assert_eq!(one(t).0, "Réseau Plus", "{t:?}");
        }
        assert_eq!(one("un café noir").0, "Café Noir");
        assert_eq!(one("un CAFÉ NOIR").0, "Café Noir");
        assert!(kinds("un cafe noir").is_empty(), "accents = exact");
        assert!(kinds("un cafè noir").is_empty(), "another accent");
    }

    #[test]
    fn decomposed_accents_belong_to_their_letters() {
        // NFD text, as some systems send it: e + U+0301.
        assert_eq!(one("le re\u{301}seau plus").0, "Réseau Plus");
        assert_eq!(one("un cafe\u{301} noir").1, "cafe\u{301} noir");
        assert!(kinds("un cafe noir").is_empty());
    }

    #[test]
    fn case_sensitive_products_need_their_capitals() {
        assert_eq!(one("I use Edge daily").0, "Edge");
        assert_eq!(one("EDGE crashed").0, "Edge");
        assert!(kinds("on the edge of my seat").is_empty());
        assert!(kinds("on the eDGE").is_empty());
        // An all-lowercase alias matches in any case.
        assert_eq!(one("my acme edge crashed").2, "alias");
        assert_eq!(one("my ACME EDGE crashed").0, "Edge");
    }

    #[test]
    fn fuzzy_words_may_differ_by_one_edit() {
        for (t, span) in [
            ("my quantom headset", "quantom headset"),   // replaced
            ("my qunatum headset", "qunatum headset"),   // swapped
            ("my quantm headset", "quantm headset"),     // deleted
            ("my quanttum headset", "quanttum headset"), // inserted
            ("my quantum hedset", "quantum hedset"),
            ("my quantom hedset now", "quantom hedset"), // one edit in each word
            ("my quantom headsets", "quantom headsets"),
            ("the quantom headset's case", "quantom headset's"),
            ("a zentirx", "zentirx"),
            ("my quantomheadset", "quantomheadset"), // joined words, one edit
            ("my quantumhedset died", "quantumhedset"),
            ("my quantom-headset", "quantom-headset"),
            ("a nixbushub", "nixbushub"), // joined, the edit in the first half of a word
            ("a nimbos hub", "nimbos hub"),
            ("a Zentrixx!", "Zentrixx"),
        ] {
            let (p, got, kind) = one(t);
            assert_eq!((got.as_str(), kind), (span, "fuzzy"), "{t:?} {p}");
        }
        for t in [
            "my quuantom headset", // two edits in one word
            "my qaunotum headset",
            "a nimbus hab",        // hub has three letters: never
            "a zentr",             // two deletions
            "my quantom. headset", // punctuation between the words
        ] {
            assert!(
                kinds(t).iter().all(|k| k.2 != "fuzzy"),
                "{t:?}: {:?}",
                kinds(t)
            );
        }
        assert_eq!(
            one("a nimbos hub").2,
            "fuzzy",
            "nimbus has six letters: one edit"
        );
        assert_eq!(one("the quantum headset").2, "exact");
    }

    #[test]
    fn one_edit_is_exactly_one() {
        let e = |a: &str, b: &str| {
            let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
            one_edit(&a, &b)
        };
        assert!(e("quantum", "quantom") && e("quantum", "qunatum") && e("quantum", "quantm"));
        assert!(e("quantum", "quanttum") && e("réseau", "réseu"));
        assert!(!e("quantum", "quantum") && !e("quantum", "qunatom") && !e("ab", "abcd"));
    }

    #[test]
    fn char_slice_uses_characters() {
        assert_eq!(char_slice("héllo wörld", 6, 11), "wörld");
        assert_eq!(char_slice("abc", 1, 1), "");
    }
}
