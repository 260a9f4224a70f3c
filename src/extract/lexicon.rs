//! The lexicon scorer: the sentiment of a mention Genesys did not score (chat, email and
//! messaging text; voice phrases without an STA sentiment event), from VADER (Hutto & Gilbert,
//! "VADER: A Parsimonious Rule-based Model for Sentiment Analysis of Social Media Text", ICWSM
//! 2014; the `vader_sentiment` crate, MIT).
//!
//! What is scored is the sentence that holds the mention (an email's other paragraphs say other
//! things; at most [`REACH`] bytes either side), and only when it reads as English: VADER's lexicon is English, so a sentence in
//! another language stays unscored (NULL) rather than scored wrongly. The score is VADER's
//! `compound` (−1…1), rounded to three decimals so sums of scores are exact (the aggregates add
//! them as integer thousandths, whatever the order).

use std::sync::OnceLock;

use vader_sentiment::SentimentIntensityAnalyzer;

/// `sentiment_source` of a value from the STA transcript.
pub const SOURCE_GENESYS: &str = "genesys";
/// `sentiment_source` of a value from this scorer.
pub const SOURCE_LEXICON: &str = "lexicon";

/// Common English function words: a sentence with one of them (and more of them than of the
/// other languages' below) reads as English.
const ENGLISH: &[&str] = &[
    "the",
    "to",
    "is",
    "my",
    "it",
    "and",
    "not",
    "you",
    "for",
    "of",
    "in",
    "with",
    "on",
    "this",
    "that",
    "was",
    "have",
    "has",
    "can",
    "will",
    "do",
    "does",
    "me",
    "your",
    "we",
    "be",
    "are",
    "but",
    "so",
    "just",
    "please",
    "thanks",
    "thank",
    "i",
    "am",
    "an",
    "at",
    "what",
    "how",
    "why",
    "when",
    "keeps",
    "again",
    "been",
    "all",
    "very",
    "really",
    "would",
    "could",
    "did",
    "its",
    "it's",
    "i'm",
    "don't",
    "doesn't",
    "won't",
    "can't",
    "they",
    "our",
    "from",
    "get",
    "got",
    "who",
    "about",
    "also",
    "ask",
    "buy",
    "people",
    "most",
    "more",
    "some",
    "any",
    "there",
    "here",
    "their",
    "them",
    "he",
    "she",
    "his",
    "her",
    "if",
    "or",
    "as",
    "by",
    "up",
    "out",
    "yes",
    "like",
    "one",
    "new",
    "now",
    "need",
    "want",
    "help",
    "order",
    "call",
    "calling",
    "hello",
    "hi",
    "which",
    "where",
    "there's",
    "these",
    "those",
    "were",
    "had",
    "should",
    "may",
    "might",
    "must",
    "after",
    "before",
    "still",
    "only",
    "same",
    "other",
    "than",
    "then",
    "too",
    "much",
    "many",
    "each",
    "every",
    "over",
    "into",
    "try",
    "tried",
    "work",
    "works",
    "working",
    "worked",
    "today",
    "yesterday",
    "tomorrow",
    "week",
    "day",
    "time",
    "back",
    "said",
    "says",
    "say",
    "let",
    "check",
    "sure",
    "okay",
    "ok",
    "well",
    "good",
    "great",
    "bad",
    "sorry",
    "know",
    "think",
];

/// Function words of the other languages contact centers write in most (Spanish, French,
/// German, Portuguese, Italian, Dutch) that English does not use.
const OTHER: &[&str] = &[
    "de", "la", "el", "que", "y", "en", "los", "las", "un", "una", "es", "por", "con", "para",
    "mi", "le", "les", "des", "et", "est", "pas", "je", "mon", "ma", "une", "der", "die", "das",
    "und", "ist", "nicht", "ich", "mit", "mein", "meine", "ein", "eine", "não", "é", "o", "os",
    "uma", "il", "che", "di", "non", "è", "het", "een", "niet", "ik", "mijn", "funciona", "ne",
];

fn analyzer() -> &'static SentimentIntensityAnalyzer<'static> {
    static A: OnceLock<SentimentIntensityAnalyzer<'static>> = OnceLock::new();
    A.get_or_init(SentimentIntensityAnalyzer::new)
}

/// Whether a sentence reads as English: mostly Latin letters, at least one English function
/// word, and more of them than of the other languages' function words.
pub fn looks_english(sentence: &str) -> bool {
    let letters = sentence.chars().filter(|c| c.is_alphabetic()).count();
    let latin = sentence.chars().filter(|c| c.is_ascii_alphabetic()).count();
    if letters == 0 || latin * 10 < letters * 8 {
        return false;
    }
    let (mut english, mut other) = (0usize, 0usize);
    for word in sentence
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
    {
        let w = word.to_lowercase();
        if ENGLISH.contains(&w.as_str()) {
            english += 1;
        } else if OTHER.contains(&w.as_str()) {
            other += 1;
        }
    }
    english > 0 && english > other
}

/// How far from a mention the sentence around it may reach, in bytes each side: text without
/// sentence ends (ASR transcripts have no punctuation) is scored on the words near the mention,
/// and each mention costs the same however long its utterance is.
pub const REACH: usize = 200;

/// The sentence of `text` that holds bytes `start..end` (a mention): from after the sentence
/// end (`.`, `!`, `?` or a line break) before it to the one after it, included, but no more
/// than [`REACH`] bytes either side (cut at a space when there is one).
pub fn sentence_around(text: &str, start: usize, end: usize) -> &str {
    let is_end = |c: char| matches!(c, '.' | '!' | '?' | '\n' | '\r');
    let floor = |mut i: usize| {
        i = i.min(text.len());
        while !text.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let start = floor(start);
    let end = floor(end.max(start));
    let lo = floor(start.saturating_sub(REACH));
    let hi = floor(end.saturating_add(REACH));
    let from = match text[lo..start]
        .char_indices()
        .rev()
        .find(|&(_, c)| is_end(c))
    {
        Some((i, c)) => lo + i + c.len_utf8(),
        // Cut short: start after a space, not inside a word.
        None if lo > 0 => text[lo..start].find(' ').map_or(start, |i| lo + i + 1),
        None => 0,
    };
    let to = match text[end..hi].char_indices().find(|&(_, c)| is_end(c)) {
        Some((i, c)) => end + i + c.len_utf8(),
        None if hi < text.len() => text[end..hi].rfind(' ').map_or(end, |i| end + i),
        None => text.len(),
    };
    text[from..to].trim()
}

/// VADER's compound score of an English sentence, rounded to thousandths; `None` when it does
/// not read as English (or the scorer fails on it).
pub fn score(sentence: &str) -> Option<f64> {
    if !looks_english(sentence) {
        return None;
    }
    // No lexicon word: 0, as the reference VADER gives (the Rust port subtracts the punctuation
    // emphasis from a zero sum, so a question without sentiment words came out negative).
    if nothing_to_score(sentence) {
        return Some(0.0);
    }
    let a = analyzer();
    // The crate indexes tokens by hand; a failure on odd text is no score, never a crash.
    let compound = std::panic::catch_unwind(|| {
        a.polarity_scores(sentence)
            .get("compound")
            .copied()
            .unwrap_or(0.0)
    })
    .ok()?;
    compound
        .is_finite()
        .then(|| (compound.clamp(-1.0, 1.0) * 1000.0).round() / 1000.0)
}

/// The score of the sentence holding bytes `start..end` of `text`.
pub fn score_mention(text: &str, start: usize, end: usize) -> Option<f64> {
    score(sentence_around(text, start, end))
}

/// Whether VADER would find nothing to score in an ASCII sentence: none of its words is in the
/// lexicon (VADER then gives 0, whatever the punctuation), so it need not run.
fn nothing_to_score(sentence: &str) -> bool {
    sentence.is_ascii()
        && sentence
            .split(|c: char| c.is_ascii_whitespace())
            .map(|w| w.trim_matches(|c: char| c.is_ascii_punctuation()))
            .filter(|w| !w.is_empty())
            .all(|w| !vader_sentiment::LEXICON.contains_key(&unicase::UniCase::new(w)))
}

/// [`score_mention`] for many mentions: sentences already scored (scripted lines repeat: "thanks
/// for calling about the …") are not scored again. The same results as [`score_mention`].
#[derive(Default)]
pub struct Scorer {
    memo: std::collections::HashMap<Box<str>, Option<f64>>,
}

/// Sentences a [`Scorer`] remembers before it starts over (bounded memory).
const MEMO_LIMIT: usize = 50_000;

impl Scorer {
    pub fn score_mention(&mut self, text: &str, start: usize, end: usize) -> Option<f64> {
        let sentence = sentence_around(text, start, end);
        if let Some(s) = self.memo.get(sentence) {
            return *s;
        }
        let s = score(sentence);
        if self.memo.len() >= MEMO_LIMIT {
            self.memo.clear();
        }
        self.memo.insert(sentence.into(), s);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-labelled contact-center sentences (written for this test, not by the simulator):
    /// what customers and agents type about products, with the sign a reader gives them.
    const LABELLED: &[(&str, i8)] = &[
        (
            "My Acme Router keeps dropping the connection, this is terrible.",
            -1,
        ),
        ("I love the new headset, it works great.", 1),
        (
            "The router arrived broken and nobody answers my emails.",
            -1,
        ),
        ("Thanks, the replacement works perfectly now!", 1),
        ("I am very disappointed with the battery life.", -1),
        ("Setup was easy and the sound is excellent.", 1),
        ("This is the third time the modem failed, I'm angry.", -1),
        ("Great service, thank you so much for the quick help.", 1),
        ("The app is useless, it crashes every time I open it.", -1),
        ("I'm happy with the upgrade, everything is faster.", 1),
        ("Your support is awful and the device is worse.", -1),
        ("The camera is amazing, best purchase this year.", 1),
        ("I hate that the charger stopped working after a week.", -1),
        ("Perfect, the hub connected on the first try.", 1),
        ("It's a horrible experience, I want a refund.", -1),
        ("The new firmware fixed everything, good job.", 1),
        ("The speaker sounds bad and the volume is stuck.", -1),
        ("I really like the design of the watch.", 1),
        ("Worst phone I ever had, the screen cracked on day one.", -1),
        ("The agent was friendly and solved my problem.", 1),
        ("I'm frustrated, the order is late again.", -1),
        ("Excellent quality, I would recommend it to friends.", 1),
        ("The headset is uncomfortable and hurts my ears.", -1),
        ("Nice, the tracking link works now.", 1),
        ("It is not working and I am upset.", -1),
        ("I am glad the refund came through so fast.", 1),
        ("The keyboard is a disaster, keys stick all the time.", -1),
        ("Wonderful, the new plan saves me money.", 1),
        ("The delivery was a mess and the box was damaged.", -1),
        ("I appreciate your help with the setup.", 1),
        ("my router is not good at all", -1),
        ("the quantum headset is really great", 1),
        ("i am so annoyed the tablet died again", -1),
        ("thank you that was very helpful", 1),
        ("the update ruined my phone", -1),
        ("love it best speaker ever", 1),
        ("the charger is a waste of money", -1),
        ("super happy with the new laptop", 1),
        ("the printer is stupid and slow", -1),
        ("everything is fine now thanks", 1),
    ];

    #[test]
    fn signs_agree_with_the_labelled_sample() {
        let mut agree = 0;
        let mut misses = Vec::new();
        for (text, label) in LABELLED {
            let s = score(text).unwrap_or_else(|| panic!("{text:?} was not scored"));
            let sign = if s > 0.05 {
                1
            } else if s < -0.05 {
                -1
            } else {
                0
            };
            if sign == *label {
                agree += 1;
            } else {
                misses.push((text, s));
            }
        }
        let share = agree as f64 / LABELLED.len() as f64;
        eprintln!(
            "lexicon: {agree}/{} signs agree; misses: {misses:?}",
            LABELLED.len()
        );
        assert!(share >= 0.8, "{agree}/{} agree: {misses:?}", LABELLED.len());
    }

    #[test]
    fn other_languages_and_scripts_stay_unscored() {
        for text in [
            "Mi Acme Router no funciona desde ayer.",
            "Mon routeur ne marche pas, c'est nul.",
            "Mein Router ist kaputt und das nervt.",
            "私のAcme Routerが壊れました",
            "Acme Routerของฉันเสีย",
            "",
            "1234 5678",
        ] {
            assert_eq!(score(text), None, "{text:?}");
        }
        assert!(score("The router is great.").is_some());
    }

    #[test]
    fn the_sentence_around_a_mention_is_scored() {
        let text = "Hello. I love my Acme Router! But the delivery was awful.\nRegards";
        let at = text.find("Acme").unwrap();
        assert_eq!(sentence_around(text, at, at + 11), "I love my Acme Router!");
        assert!(score_mention(text, at, at + 11).unwrap() > 0.3);
        let late = text.find("delivery").unwrap();
        assert!(score_mention(text, late, late + 8).unwrap() < -0.3);
        // A long text without sentence ends: the words near the mention, whole.
        let long = format!(
            "{}my router is terrible{}",
            "word ".repeat(100),
            " word".repeat(100)
        );
        let at = long.find("router").unwrap();
        let s = sentence_around(&long, at, at + 6);
        assert!(
            s.len() <= 2 * REACH + 6 && s.contains("my router is terrible"),
            "{s}"
        );
        assert!(
            s.split(' ')
                .all(|w| w == "word" || "my router is terrible".contains(w)),
            "{s}"
        );
        // Out-of-range and odd offsets never panic.
        assert_eq!(sentence_around("abc", 10, 2), "abc");
        assert_eq!(sentence_around("é!x", 3, 3), "x");
    }

    #[test]
    fn the_scorer_gives_the_plain_scores() {
        let mut scorer = Scorer::default();
        let texts = LABELLED.iter().map(|(t, _)| t.to_string()).chain([
            "Is the router here yet?".to_string(),
            "the box is on the table!!!".to_string(),
            "Mi router no funciona.".to_string(),
            "I love it 😁 really".to_string(),
        ]);
        for t in texts {
            for _ in 0..2 {
                let plain = score_mention(&t, 0, 1);
                assert_eq!(scorer.score_mention(&t, 0, 1), plain, "{t}");
            }
        }
    }

    #[test]
    fn scores_are_thousandths_and_odd_text_never_panics() {
        for text in [
            "!!!",
            "the",
            "not",
            "kind of",
            "at least",
            "but",
            "without a doubt",
            ":) :(",
            "THE ROUTER IS GREAT but bad",
            "so so so so",
            "never so good",
            "the 😁",
        ] {
            if let Some(s) = score(text) {
                assert!((-1.0..=1.0).contains(&s));
                assert_eq!((s * 1000.0).round() / 1000.0, s, "{text}");
            }
        }
    }
}
