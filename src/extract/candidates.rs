//! `convlake candidates`: product-like phrases that recur but are not in the dictionary, so a
//! user can grow it. Two signals: capitalized multi-word terms (chat, email, messages) and the
//! words that follow cues such as "my", "the new", "broken" (voice text has no capitals).
//! Phrases the dictionary already matches are left out; memory is bounded by pruning rare
//! phrases when the table grows large. Beside them, [`NearMisses`] collects the spellings that
//! come close to a product without matching it (one or two edits, a word split in two), so a
//! user can add the real ones as aliases.

use std::collections::{HashMap, HashSet};

use super::dictionary::Dictionary;
use super::matcher::{Found, Matcher, Scratch};
use super::normalize::normalize_key;

/// A phrase worth a look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub phrase: String,
    pub count: u64,
    pub examples: Vec<String>,
}

const STOP: &[&str] = &[
    "a",
    "an",
    "the",
    "my",
    "your",
    "our",
    "their",
    "his",
    "her",
    "its",
    "i",
    "we",
    "you",
    "he",
    "she",
    "it",
    "they",
    "me",
    "us",
    "them",
    "is",
    "are",
    "was",
    "were",
    "be",
    "been",
    "am",
    "and",
    "or",
    "but",
    "so",
    "if",
    "then",
    "to",
    "of",
    "in",
    "on",
    "at",
    "for",
    "with",
    "from",
    "by",
    "about",
    "as",
    "this",
    "that",
    "these",
    "those",
    "there",
    "here",
    "hi",
    "hello",
    "hey",
    "thanks",
    "thank",
    "please",
    "yes",
    "no",
    "ok",
    "okay",
    "yeah",
    "um",
    "uh",
    "just",
    "not",
    "do",
    "does",
    "did",
    "have",
    "has",
    "had",
    "can",
    "could",
    "will",
    "would",
    "should",
    "new",
    "old",
    "broken",
    "still",
    "again",
    "also",
    "very",
    "really",
    "since",
    "when",
    "what",
    "why",
    "how",
    "which",
    "who",
    "all",
    "any",
    "some",
    "one",
    "two",
    "it's",
    "i'm",
    "don't",
    "keeps",
    "won't",
    "isn't",
    "can't",
    "doesn't",
    "stopped",
    "working",
    "work",
    "works",
    "like",
    "get",
    "got",
    "need",
    "want",
    "today",
    "yesterday",
    "now",
    "order",
    "account",
    "help",
    "issue",
    "problem",
    "call",
    "dear",
    "regards",
    "team",
    "support",
    "customer",
    "agent",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "card",
    "number",
    "address",
    "password",
    "payment",
    "delivery",
    "refund",
    "name",
    "email",
    "phone number",
];

const CUES: &[&[&str]] = &[
    &["my"],
    &["the", "new"],
    &["a", "new"],
    &["my", "new"],
    &["broken"],
    &["bought"],
    &["bought", "a"],
    &["bought", "the"],
    &["ordered"],
    &["ordered", "a"],
    &["your"],
];

fn is_stop(w: &str) -> bool {
    STOP.contains(&w)
}

fn clean(token: &str) -> &str {
    token.trim_matches(|c: char| !c.is_alphanumeric())
}

/// Collects candidate phrases from texts.
pub struct CandidateFinder {
    matcher: Matcher,
    scratch: Scratch,
    found: Vec<Found>,
    counts: HashMap<String, (u64, Vec<String>)>,
    near: NearMisses,
}

/// A spelling close to a product that the dictionary does not match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NearMiss {
    pub product: String,
    /// As written (lowercased, words joined by single spaces).
    pub spelling: String,
    /// `1 edit`, `2 edits` or `split` (a word of the name written as two).
    pub kind: &'static str,
    pub count: u64,
    pub example: String,
}

/// Edits a word of a name may be off by and still be a near miss: none below four letters,
/// one below six, two from six.
fn edits_allowed(word: &str) -> usize {
    match word.chars().count() {
        0..=3 => 0,
        4 | 5 => 1,
        _ => 2,
    }
}

/// The optimal-string-alignment distance of two keys (a swap of neighbours is one edit),
/// `limit + 1` as soon as it is known to exceed `limit`.
pub(super) fn distance(a: &str, b: &str, limit: usize) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len().abs_diff(b.len()) > limit {
        return limit + 1;
    }
    let mut prev2: Vec<usize> = Vec::new();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(prev2[j - 2] + 1);
            }
            cur[j] = v;
        }
        if cur.iter().min().is_some_and(|&m| m > limit) {
            return limit + 1;
        }
        prev2 = std::mem::replace(&mut prev, cur);
    }
    prev[b.len()].min(limit + 1)
}

/// Every string `word` gives with up to two letters deleted (itself included).
fn deletions(word: &str) -> HashSet<String> {
    let chars: Vec<char> = word.chars().collect();
    let mut out = HashSet::new();
    out.insert(word.to_string());
    for i in 0..chars.len() {
        let one: Vec<char> = chars
            .iter()
            .enumerate()
            .filter(|(k, _)| *k != i)
            .map(|(_, c)| *c)
            .collect();
        for j in 0..one.len() {
            out.insert(
                one.iter()
                    .enumerate()
                    .filter(|(k, _)| *k != j)
                    .map(|(_, c)| *c)
                    .collect(),
            );
        }
        out.insert(one.into_iter().collect());
    }
    out
}

/// The words of a name as the matcher sees them (spaces, hyphens, camelCase and letter/digit
/// changes separate them), normalized.
fn name_words(form: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut prev: Option<char> = None;
    for c in form.chars() {
        let boundary = !c.is_alphanumeric()
            || prev.is_some_and(|p| {
                (p.is_lowercase() && c.is_uppercase()) || p.is_numeric() != c.is_numeric()
            });
        if boundary && !cur.is_empty() {
            out.push(normalize_key(&cur));
            cur.clear();
        }
        if c.is_alphanumeric() {
            cur.push(c);
            prev = Some(c);
        } else {
            prev = None;
        }
    }
    if !cur.is_empty() {
        out.push(normalize_key(&cur));
    }
    out.retain(|w| !w.is_empty());
    out
}

/// The edits a run of name words may be off by in all (at most two).
fn allowed(words: &[String]) -> usize {
    words.iter().map(|w| edits_allowed(w)).sum::<usize>().min(2)
}

/// Aligns a form's words with the run's words from `(run word, form word)` on: a run word holds
/// one form word within the edits it allows, or several exactly (joined), or two run words hold
/// one (split, once); two edits in all. Returns (one past the last run word, edits, split) when
/// the whole form is there with at least one edit or a split.
fn align_tokens(
    run: &[String],
    words: &[String],
    (t, nj): (usize, usize),
    edits: usize,
    split: bool,
) -> Option<(usize, usize, bool)> {
    if nj == words.len() {
        return (edits > 0 || split).then_some((t, edits, split));
    }
    let token = run.get(t)?;
    for g in 1..=(words.len() - nj).min(3) {
        let want = words[nj..nj + g].concat();
        // Words joined in the text are compared as written; an edit is looked for word by word.
        let limit = if g == 1 {
            edits_allowed(&want).min(2 - edits)
        } else {
            0
        };
        let d = distance(token, &want, limit);
        if d <= limit {
            if let Some(found) = align_tokens(run, words, (t + 1, nj + g), edits + d, split) {
                return Some(found);
            }
        }
        if !split && g == 1 {
            if let Some(next) = run.get(t + 1) {
                let joined = format!("{token}{next}");
                let d = distance(&joined, &want, limit);
                if d <= limit {
                    if let Some(found) = align_tokens(run, words, (t + 2, nj + g), edits + d, true)
                    {
                        return Some(found);
                    }
                }
            }
        }
    }
    None
}

/// Near misses of the dictionary's products, found word by word: a deletion index of every
/// name word (up to two letters deleted) finds the text words within two edits of one.
pub struct NearMisses {
    products: Vec<String>,
    /// Each form's product and word keys.
    forms: Vec<(u32, Vec<String>)>,
    /// Deletion variant → (form, word).
    index: HashMap<String, Vec<(u32, u16)>>,
    seen: HashMap<(u32, String), (&'static str, u64, String)>,
}

impl NearMisses {
    fn empty() -> Self {
        NearMisses {
            products: Vec::new(),
            forms: Vec::new(),
            index: HashMap::new(),
            seen: HashMap::new(),
        }
    }

    pub fn new(dict: &Dictionary) -> Self {
        let mut forms = Vec::new();
        let mut index: HashMap<String, Vec<(u32, u16)>> = HashMap::new();
        for (i, p) in dict.products.iter().enumerate() {
            for form in p.forms() {
                let words = name_words(form);
                let f = forms.len() as u32;
                // Every run of up to three words, joined: a text word may hold several.
                for a in 0..words.len() {
                    for b in a + 1..=(a + 3).min(words.len()) {
                        let joined = words[a..b].concat();
                        if allowed(&words[a..b]) == 0 && joined.chars().count() < 4 {
                            continue;
                        }
                        for d in deletions(&joined) {
                            let e = index.entry(d).or_default();
                            if !e.contains(&(f, a as u16)) {
                                e.push((f, a as u16));
                            }
                        }
                    }
                }
                forms.push((i as u32, words));
            }
        }
        NearMisses {
            products: dict.products.iter().map(|p| p.name.clone()).collect(),
            forms,
            index,
            seen: HashMap::new(),
        }
    }

    /// The forms one of whose words may be `token` (within two edits).
    fn lookup(&self, token: &str, out: &mut Vec<(u32, u16)>) {
        out.clear();
        for d in deletions(token) {
            if let Some(v) = self.index.get(&d) {
                out.extend(v);
            }
        }
        out.sort_unstable();
        out.dedup();
    }

    /// Looks at one text whose mentions are already blanked out (`|`).
    pub fn observe(&mut self, masked: &str, original: &str) {
        // Runs of words with nothing but spaces or hyphens between them.
        let mut runs: Vec<Vec<String>> = vec![Vec::new()];
        for raw in masked.split(|c: char| c.is_whitespace() || c == '-') {
            let key = normalize_key(raw);
            let glued =
                raw.starts_with(|c: char| !c.is_alphanumeric() && c != '\'') && !raw.is_empty();
            if raw.contains('|') || glued {
                runs.push(Vec::new());
            }
            if let Some(run) = runs
                .last_mut()
                .filter(|_| !key.is_empty() && !raw.contains('|'))
            {
                run.push(key);
            }
            if raw.ends_with(|c: char| !c.is_alphanumeric()) {
                runs.push(Vec::new());
            }
        }
        let mut hits = Vec::new();
        // Each near miss once per text, however many of its words lead to it.
        let mut here: HashSet<(u32, String)> = HashSet::new();
        let mut kinds: Vec<(u32, String, &'static str)> = Vec::new();
        for run in runs.iter().filter(|r| !r.is_empty()) {
            for i in 0..run.len() {
                // A word alone, or two words joined (a split).
                for joined in [false, true] {
                    if joined && i + 1 >= run.len() {
                        continue;
                    }
                    let token = if joined {
                        format!("{}{}", run[i], run[i + 1])
                    } else {
                        run[i].clone()
                    };
                    self.lookup(&token, &mut hits);
                    for &(f, j) in &hits {
                        for (p, spelling, kind) in self.try_form(run, i, f, j as usize) {
                            if here.insert((p, spelling.clone())) {
                                kinds.push((p, spelling, kind));
                            }
                        }
                    }
                }
            }
        }
        for (p, spelling, kind) in kinds {
            let e = self
                .seen
                .entry((p, spelling))
                .or_insert_with(|| (kind, 0, snippet(original)));
            e.1 += 1;
        }
        if self.seen.len() > MAX_PHRASES {
            self.seen.retain(|_, (_, n, _)| *n > 1);
        }
    }

    /// The form `f` whose word `j` is at or near run word `i`: aligned from each run word that
    /// may start it.
    fn try_form(
        &self,
        run: &[String],
        i: usize,
        f: u32,
        j: usize,
    ) -> Vec<(u32, String, &'static str)> {
        let (product, words) = &self.forms[f as usize];
        let mut out = Vec::new();
        for first in i.saturating_sub(2 * j)..=i {
            if let Some((end, edits, split)) = align_tokens(run, words, (first, 0), 0, false) {
                let kind = match (split, edits) {
                    (true, _) => "split",
                    (false, 1) => "1 edit",
                    _ => "2 edits",
                };
                out.push((*product, run[first..end].join(" "), kind));
            }
        }
        out
    }

    /// Per product, the spellings seen at least `min_count` times, most frequent first (at most
    /// `per_product` each).
    pub fn top(self, min_count: u64, per_product: usize) -> Vec<NearMiss> {
        let mut v: Vec<NearMiss> = self
            .seen
            .into_iter()
            .filter(|(_, (_, n, _))| *n >= min_count)
            .map(|((p, spelling), (kind, count, example))| NearMiss {
                product: self.products[p as usize].clone(),
                spelling,
                kind,
                count,
                example,
            })
            .collect();
        v.sort_by(|a, b| {
            a.product
                .cmp(&b.product)
                .then(b.count.cmp(&a.count))
                .then(a.spelling.cmp(&b.spelling))
        });
        let mut per: HashMap<String, usize> = HashMap::new();
        v.retain(|m| {
            let n = per.entry(m.product.clone()).or_default();
            *n += 1;
            *n <= per_product
        });
        v
    }
}

const MAX_PHRASES: usize = 200_000;

fn snippet(text: &str) -> String {
    let t: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if t.chars().count() > 120 {
        format!("{}…", t.chars().take(120).collect::<String>())
    } else {
        t
    }
}

impl CandidateFinder {
    /// A finder that skips what `dict` already matches.
    pub fn new(dict: &Dictionary) -> Self {
        CandidateFinder {
            matcher: Matcher::new(dict),
            scratch: Scratch::default(),
            found: Vec::new(),
            counts: HashMap::new(),
            near: NearMisses::new(dict),
        }
    }

    fn add(&mut self, words: &[&str], text: &str) {
        let words: Vec<&str> = words
            .iter()
            .copied()
            .skip_while(|w| is_stop(&w.to_lowercase()))
            .collect();
        if words.len() < 2 && words.first().is_none_or(|w| w.len() < 4) {
            return;
        }
        let phrase = words.join(" ");
        if words.iter().all(|w| is_stop(&w.to_lowercase())) {
            return;
        }
        self.matcher
            .find(&phrase, &mut self.scratch, &mut self.found);
        if !self.found.is_empty() {
            return; // already a product
        }
        let key = phrase.to_lowercase();
        let e = self.counts.entry(key).or_insert((0, Vec::new()));
        e.0 += 1;
        if e.1.len() < 3 {
            e.1.push(snippet(text));
        }
    }

    /// The text with known product mentions and redaction tags (`[card number]`) blanked out,
    /// so no part of them becomes a candidate.
    fn masked(&mut self, text: &str) -> String {
        self.matcher.find(text, &mut self.scratch, &mut self.found);
        let mut spans: Vec<(usize, usize)> = self
            .found
            .iter()
            .map(|f| (f.start_char, f.end_char))
            .collect();
        let mut open = None;
        for (i, c) in text.chars().enumerate() {
            match c {
                '[' => open = Some(i),
                ']' => {
                    if let Some(o) = open.take() {
                        spans.push((o, i + 1));
                    }
                }
                _ => {}
            }
        }
        // One pass over the text with the spans sorted: linear, whatever the number of spans.
        spans.sort_unstable();
        let mut next = spans.iter().peekable();
        let mut inside_until = 0usize;
        let mut out = String::with_capacity(text.len());
        for (i, c) in text.chars().enumerate() {
            while let Some(&&(a, b)) = next.peek() {
                if a > i {
                    break;
                }
                inside_until = inside_until.max(b);
                next.next();
            }
            if i < inside_until {
                out.push_str(" | ");
            } else {
                out.push(c);
            }
        }
        out
    }

    /// Looks at one text.
    pub fn observe(&mut self, original: &str) {
        let masked = self.masked(original);
        self.near.observe(&masked, original);
        let text = original;
        let tokens: Vec<&str> = masked.split_whitespace().collect();
        // Capitalized runs of two to four words (not counting a capitalized stop word).
        let mut run: Vec<&str> = Vec::new();
        let flush = |run: &mut Vec<&str>, this: &mut Self| {
            if run.len() >= 2 {
                let r: Vec<&str> = run.iter().take(4).copied().collect();
                this.add(&r, text);
            }
            run.clear();
        };
        for t in &tokens {
            let w = clean(t);
            let capital = w.chars().next().is_some_and(char::is_uppercase)
                && w.chars().any(char::is_lowercase);
            if capital && !(run.is_empty() && is_stop(&w.to_lowercase())) {
                run.push(w);
                if t.ends_with(['.', ',', '!', '?', ';', ':']) {
                    flush(&mut run, self);
                }
            } else {
                flush(&mut run, self);
            }
        }
        flush(&mut run, self);
        // Lowercase words after a cue: "my <x y>", "the new <x y>".
        let lower: Vec<String> = tokens.iter().map(|t| clean(t).to_lowercase()).collect();
        for i in 0..lower.len() {
            for cue in CUES {
                let end = i + cue.len();
                if end >= lower.len()
                    || lower[i..end]
                        .iter()
                        .map(String::as_str)
                        .ne(cue.iter().copied())
                {
                    continue;
                }
                let next: Vec<&str> = lower[end..]
                    .iter()
                    .take(3)
                    .take_while(|w| !w.is_empty() && !is_stop(w))
                    .map(String::as_str)
                    .collect();
                if next.len() >= 2 {
                    self.add(&next[..2], text);
                    if next.len() == 3 {
                        self.add(&next, text);
                    }
                }
            }
        }
        if self.counts.len() > MAX_PHRASES {
            self.counts.retain(|_, (n, _)| *n > 1);
        }
    }

    /// Phrases seen at least `min_count` times, most frequent first; and the near misses of
    /// each product seen as often (at most five per product).
    pub fn top_with_near_misses(
        mut self,
        min_count: u64,
        limit: usize,
    ) -> (Vec<Candidate>, Vec<NearMiss>) {
        let near = std::mem::replace(&mut self.near, NearMisses::empty());
        (self.top(min_count, limit), near.top(min_count, 5))
    }

    /// Phrases seen at least `min_count` times, most frequent first.
    pub fn top(self, min_count: u64, limit: usize) -> Vec<Candidate> {
        let mut v: Vec<Candidate> = self
            .counts
            .into_iter()
            .filter(|(_, (n, _))| *n >= min_count)
            .map(|(phrase, (count, examples))| Candidate {
                phrase,
                count,
                examples,
            })
            .collect();
        v.sort_by(|a, b| b.count.cmp(&a.count).then(a.phrase.cmp(&b.phrase)));
        // A shorter phrase inside a longer one with the same count adds nothing.
        let all = v.clone();
        v.retain(|c| {
            !all.iter().any(|o| {
                o.count == c.count
                    && o.phrase.len() > c.phrase.len()
                    && o.phrase.contains(&c.phrase)
            })
        });
        v.truncate(limit);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recurring_unknown_products_surface_and_known_ones_do_not() {
        let dict = Dictionary::parse("[[product]]\nname = \"Acme Router\"\n", "t").unwrap();
        let mut f = CandidateFinder::new(&dict);
        for _ in 0..4 {
            f.observe("Hi, my Zephyr Speaker keeps crackling. The Acme Router is fine.");
            f.observe("my acme router box is broken, [card number] here");
            f.observe("yeah so my solar charger stopped working");
        }
        f.observe("Once: the Blue Lagoon Mixer.");
        let top = f.top(3, 10);
        let phrases: Vec<&str> = top.iter().map(|c| c.phrase.as_str()).collect();
        assert!(phrases.contains(&"zephyr speaker"), "{phrases:?}");
        assert!(phrases.contains(&"solar charger"), "{phrases:?}");
        assert!(!phrases.iter().any(|p| p.contains("acme")), "{phrases:?}");
        assert!(
            !phrases
                .iter()
                .any(|p| p.contains("router") || p.contains("card")),
            "{phrases:?}"
        );
        assert!(!phrases.iter().any(|p| p.contains("lagoon")), "{phrases:?}");
        assert!(top.iter().all(|c| c.count >= 3 && !c.examples.is_empty()));
    }

    #[test]
    fn near_misses_name_their_product_with_counts_and_an_example() {
        let dict = Dictionary::parse(
            "[[product]]\nname = \"Quantum Headset\"\n[[product]]\nname = \"Zentrix\"\n[[product]]\nname = \"Nimbus Hub\"\n[[product]]\nname = \"StreamBox Mini\"\n",
            "t",
        )
        .unwrap();
        let mut f = CandidateFinder::new(&dict);
        for _ in 0..3 {
            f.observe("yeah my quantom headset is dead");
            f.observe("the qunatum hedset again");
            f.observe("a zen trix order");
            f.observe("my quantum headset works"); // a mention: no near miss
            f.observe("the nimbus hat"); // hub has three letters: never an edit
            f.observe("my quantum. headset"); // punctuation between: not one name
            f.observe("the stream box minix"); // camelCase words spaced are no split
            f.observe("the streambox minix");
        }
        f.observe("once: a zentrex");
        let (_, near) = f.top_with_near_misses(2, 10);
        let got: Vec<(&str, &str, &str, u64)> = near
            .iter()
            .map(|m| (m.product.as_str(), m.spelling.as_str(), m.kind, m.count))
            .collect();
        assert_eq!(
            got,
            [
                ("Quantum Headset", "quantom headset", "1 edit", 3),
                ("Quantum Headset", "qunatum hedset", "2 edits", 3),
                ("StreamBox Mini", "stream box minix", "1 edit", 3),
                ("StreamBox Mini", "streambox minix", "1 edit", 3),
                ("Zentrix", "zen trix", "split", 3),
            ]
        );
        assert_eq!(near[0].example, "yeah my quantom headset is dead");
    }

    #[test]
    fn distances_count_swaps_as_one() {
        assert_eq!(distance("quantum", "qunatum", 2), 1);
        assert_eq!(distance("quantum", "quantom", 2), 1);
        assert_eq!(distance("quantum", "kwantom", 2), 3);
        assert_eq!(distance("abc", "abc", 0), 0);
        assert!(deletions("abcd").contains("ab") && deletions("abcd").contains("abcd"));
    }
}
