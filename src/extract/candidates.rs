//! `convlake candidates`: product-like phrases that recur but are not in the dictionary, so a
//! user can grow it. Two signals: capitalized multi-word terms (chat, email, messages) and the
//! words that follow cues such as "my", "the new", "broken" (voice text has no capitals).
//! Phrases the dictionary already matches are left out; memory is bounded by pruning rare
//! phrases when the table grows large.

use std::collections::HashMap;

use super::dictionary::Dictionary;
use super::matcher::{Found, Matcher, Scratch};

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
}
