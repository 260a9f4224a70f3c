//! The product matcher: whole-word, case-insensitive dictionary matching that holds up on
//! ASR text (lowercase, no punctuation, words split or joined).
//!
//! Text is reduced to a *key stream*: its letters and digits, NFKC-normalized and lowercased,
//! each remembering the original character it came from and what separated it from the previous
//! one (nothing, whitespace/hyphen/underscore, an apostrophe, or anything else). Names are reduced
//! the same way, remembering where their word boundaries are (spaces, hyphens, camelCase,
//! letter/digit changes). Aho-Corasick finds every candidate in the key stream; a candidate
//! counts only when
//! - it starts and ends at a word boundary of the text (`nimbus hubble` is not `Nimbus Hub`);
//! - inside it, the text has separators only where the name has a word boundary, and those are
//!   whitespace, hyphens or underscores (or the name's own separator, as in `AT&T`): sentence
//!   punctuation ends a name (`the Acme. Router` is no mention);
//! - the last word may carry a plural (`s`, `es`) or possessive (`'s`, `’s`).
//!
//! Overlapping candidates resolve to the longest; every occurrence counts. Offsets are character
//! offsets into the original text, so `text[start..end]` is the matched span.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use super::dictionary::Dictionary;
pub use super::normalize::normalize_key;
use super::normalize::{is_word_char, push_normalized, KEY_BYTE};

/// What separates a key character from the previous one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Gap {
    /// Adjacent letters or digits (or bytes of one character).
    None,
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

/// A compiled surface form.
#[derive(Debug)]
struct Pattern {
    product: u32,
    /// For each key byte: the separator the name has before it, if this is a word boundary
    /// (`Some("")` for a camelCase or letter/digit boundary, `Some(sep)` otherwise).
    boundary: Vec<Option<String>>,
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
    candidates: Vec<(usize, usize, u32)>,
    /// The key of ASCII text alone, for the quick check that most texts mention nothing.
    quick: Vec<u8>,
}

/// The compiled dictionary.
pub struct Matcher {
    ac: Option<AhoCorasick>,
    patterns: Vec<Pattern>,
    products: Vec<String>,
}

fn compile_form(form: &str) -> (String, Vec<Option<String>>) {
    let mut key = String::new();
    let mut boundary: Vec<Option<String>> = Vec::new();
    let mut sep = String::new();
    let mut prev: Option<char> = None;
    for c in form.chars() {
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
                (camel || digit_change).then(String::new)
            }
        };
        boundary.push(b);
        boundary.extend(std::iter::repeat_n(None, added - 1));
        sep.clear();
        prev = Some(c);
    }
    (key, boundary)
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
            for form in std::iter::once(&p.name).chain(p.aliases.iter()) {
                let (key, boundary) = compile_form(form);
                if key.is_empty() || !seen.insert(key.clone()) {
                    continue;
                }
                keys.push(key);
                patterns.push(Pattern {
                    product: i as u32,
                    boundary,
                });
            }
        }
        let ac = if keys.is_empty() {
            None
        } else {
            // Standard semantics + overlapping search: every candidate is seen, then validated;
            // a rejected long candidate never hides a valid shorter one.
            AhoCorasickBuilder::new()
                .match_kind(MatchKind::Standard)
                .kind(Some(aho_corasick::AhoCorasickKind::DFA))
                .build(&keys)
                .ok()
        };
        Matcher {
            ac,
            patterns,
            products,
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
        for (ci, (bi, c)) in text.char_indices().enumerate() {
            s.char_starts.push(bi);
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
                    Gap::None
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
        // digits) decides that: every candidate is a match of the automaton in the key, and the
        // non-overlapping search can use its prefilter. Only texts with a candidate pay for
        // the full scan (offsets and separators) below.
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
            if !ac.is_match(s.quick.as_slice()) {
                return;
            }
        }
        self.find_scanned(ac, text, s, out, false);
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
        let key = s.key.as_bytes();
        let n = key.len();
        s.candidates.clear();
        for m in ac.find_overlapping_iter(&s.key) {
            let (start, end) = (m.start(), m.end());
            let pat = &self.patterns[m.pattern().as_usize()];
            if Self::gap(text, s, start) == Gap::None {
                continue; // starts inside a word
            }
            let inside_ok =
                (start + 1..end).all(
                    |i| match (Self::gap(text, s, i), &pat.boundary[i - start]) {
                        (Gap::None, _) => true,
                        (_, None) => false,
                        (Gap::Joiner, Some(_)) => true,
                        (_, Some(sep)) => !sep.is_empty() && Self::sep_text(text, s, i) == sep,
                    },
                );
            if !inside_ok {
                continue;
            }
            let mut stop = end;
            let boundary_at = |i: usize| i >= n || Self::gap(text, s, i) != Gap::None;
            if !boundary_at(stop) {
                if key[stop] == b's' && boundary_at(stop + 1) {
                    stop += 1;
                } else if key[stop] == b'e'
                    && stop + 1 < n
                    && key[stop + 1] == b's'
                    && boundary_at(stop + 2)
                {
                    stop += 2;
                } else {
                    continue; // ends inside a word
                }
            } else if stop < n
                && Self::gap(text, s, stop) == Gap::Apostrophe
                && key[stop] == b's'
                && boundary_at(stop + 1)
            {
                stop += 1; // possessive
            }
            s.candidates.push((start, stop, pat.product));
        }
        // Within each group of overlapping candidates: longest first, then leftmost; keep those
        // that overlap nothing kept. Groups are small, so this stays linear in the text.
        s.candidates
            .sort_unstable_by_key(|c| (c.0, std::cmp::Reverse(c.1)));
        let mut kept: Vec<(usize, usize, u32)> = Vec::new();
        let mut group: Vec<(usize, usize, u32)> = Vec::new();
        let mut group_end = 0usize;
        let flush = |group: &mut Vec<(usize, usize, u32)>, kept: &mut Vec<(usize, usize, u32)>| {
            group.sort_by(|a, b| (b.1 - b.0).cmp(&(a.1 - a.0)).then(a.0.cmp(&b.0)));
            let first = kept.len();
            for &(a, b, p) in group.iter() {
                if kept[first..].iter().all(|&(x, y, _)| b <= x || a >= y) {
                    kept.push((a, b, p));
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
        out.extend(kept.into_iter().map(|(a, b, p)| {
            let (first, last) = (s.orig[a] as usize, s.orig[b - 1] as usize);
            Found {
                product: p,
                start_char: first,
                end_char: last + 1,
                start_byte: Self::byte_of(s, first),
                end_byte: Self::byte_of(s, last + 1),
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

    #[test]
    fn char_slice_uses_characters() {
        assert_eq!(char_slice("héllo wörld", 6, 11), "wörld");
        assert_eq!(char_slice("abc", 1, 1), "");
    }
}
