//! A seeded, labeled evaluation corpus for the matcher: both text styles (cased, punctuated
//! chat/email and lowercase, unpunctuated voice ASR), every matching rule, and distractors that
//! a correct matcher must not count. Used by `convlake bench extract` and the tests; it is built
//! from the rules in the README, not from the simulator, so it checks the rules independently.

use std::collections::BTreeSet;

use super::dictionary::Dictionary;
use super::matcher::{normalize_key, Found, Matcher, Scratch};

/// The evaluation dictionary: names with camelCase, digits, shared prefixes and aliases.
pub const EVAL_DICTIONARY: &str = r#"
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
name = "Nimbus Hub Max"
[[product]]
name = "StreamBox Mini"
[[product]]
name = "X200 Tablet"
[[product]]
name = "Zentrix"
[[product]]
name = "Agent Assist Suite"
[[product]]
name = "Orbit Cam"
aliases = ["orbit camera"]
[[product]]
name = "Réseau Plus"
[[product]]
name = "Señal Total"
accents = "exact"
[[product]]
name = "Edge"
case_sensitive = true
aliases = ["acme edge"]
[[product]]
name = "アクメルーター"
[[product]]
name = "Velocity Scan Pad"
fuzzy = true
[[product]]
name = "Omnilink"
fuzzy = true
"#;

/// Products of the rules of issue 21, sampled by their own rules (not by the base sampler,
/// whose lowercase voice forms and near-misses assume case-insensitive, exact matching).
const RULE_PRODUCTS: &[&str] = &[
    "Réseau Plus",
    "Señal Total",
    "Edge",
    "アクメルーター",
    "Velocity Scan Pad",
    "Omnilink",
];

/// The rules samples are labeled with (`bench extract` scores each).
pub const RULES: &[&str] = &["base", "split", "scripts", "accents", "case", "fuzzy"];

/// One labeled text.
#[derive(Debug, Clone)]
pub struct Sample {
    pub style: Style,
    /// The rule the sample tests ([`RULES`]).
    pub rule: &'static str,
    pub text: String,
    /// (canonical product, start_char, end_char) of every true mention.
    pub gold: Vec<(String, usize, usize)>,
}

/// The text style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Style {
    Cased,
    Voice,
}

impl Style {
    pub fn name(self) -> &'static str {
        match self {
            Style::Cased => "chat/email (cased)",
            Style::Voice => "voice (ASR)",
        }
    }
}

/// A tiny seeded generator (SplitMix64) for corpora and benchmarks.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        // SplitMix64: fixed forever, so the corpus never changes with crate versions.
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
    fn pick_str<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// A sample under construction: text plus gold spans in characters.
struct Builder {
    text: String,
    chars: usize,
    gold: Vec<(String, usize, usize)>,
}

impl Builder {
    fn new() -> Self {
        Builder {
            text: String::new(),
            chars: 0,
            gold: Vec::new(),
        }
    }
    fn push(&mut self, s: &str) {
        self.text.push_str(s);
        self.chars += s.chars().count();
    }
    fn mention(&mut self, product: &str, surface: &str) {
        let start = self.chars;
        self.push(surface);
        self.gold.push((product.to_string(), start, self.chars));
    }
}

const CASED_BEFORE: &[&str] = &[
    "Hi, my ",
    "I bought the ",
    "Is the ",
    "We returned two ",
    "Honestly, the ",
    "Our team uses the ",
    "Can you help with my ",
    "The new ",
    "Why does the ",
    "I love the ",
];
const CASED_AFTER: &[&str] = &[
    " keeps dropping calls.",
    " is broken.",
    "? It won't start.",
    ", thanks!",
    " arrived yesterday.",
    " was a gift; it works.",
    " needs a firmware update.",
    "! Amazing.",
    " (the blue one) is fine.",
    " — still waiting.",
];
const VOICE_BEFORE: &[&str] = &[
    "yeah so my ",
    "i'm calling about the ",
    "uh the ",
    "we have two ",
    "i think the ",
    "okay and the ",
    "so basically my ",
    "right the ",
];
const VOICE_AFTER: &[&str] = &[
    " keeps dropping out",
    " is not working",
    " stopped charging",
    " yeah",
    " since monday",
    " and i want a refund",
    " um",
    " thank you",
];

/// A surface form of a name that must match, as (text before, the matched span, text after):
/// symbols and quotes around a name are not part of the mention.
fn positive_form(name: &str, style: Style, rng: &mut Rng) -> (String, String, String) {
    let words = split_words(name);
    let plain = |core: String| (String::new(), core, String::new());
    match style {
        Style::Voice => {
            // lowercase, word boundaries randomly spaced or joined
            let mut out = String::new();
            for (i, w) in words.iter().enumerate() {
                if i > 0 && rng.chance(0.6) {
                    out.push(' ');
                }
                out.push_str(&w.to_lowercase());
            }
            if rng.chance(0.15) {
                out.push('s');
            }
            plain(out)
        }
        Style::Cased => match rng.below(12) {
            0 => plain(name.to_uppercase()),
            1 => plain(name.to_lowercase()),
            2 => plain(words.join("-")),
            3 => plain(words.join("_").to_lowercase()),
            4 => plain(words.join("\n")),
            5 => plain(to_fullwidth(name)),
            6 => (String::new(), name.to_string(), "™".into()),
            7 => ("“".into(), name.to_string(), "”".into()),
            8 => plain(format!("{name}'s")),
            9 => plain(format!("{name}’s")),
            10 => plain(format!("{name}s")),
            _ => plain(name.to_string()),
        },
    }
}

fn to_fullwidth(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '!'..='~' => char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap_or(c),
            c => c,
        })
        .collect()
}

/// The words of a name: spaces, hyphens and camelCase/digit boundaries split.
fn split_words(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    for part in name.split(|c: char| c.is_whitespace() || c == '-') {
        let mut cur = String::new();
        let mut prev: Option<char> = None;
        for c in part.chars() {
            if let Some(p) = prev {
                if (p.is_lowercase() && c.is_uppercase()) || (p.is_numeric() != c.is_numeric()) {
                    words.push(std::mem::take(&mut cur));
                }
            }
            cur.push(c);
            prev = Some(c);
        }
        if !cur.is_empty() {
            words.push(cur);
        }
    }
    words
}

/// Texts that contain no mention although they look close. `form` must not start with another
/// product's whole name (then a glued suffix would leave a true mention of that product).
fn distractor(form: &str, style: Style, rng: &mut Rng) -> String {
    let words = split_words(form);
    let first = words.first().cloned().unwrap_or_default();
    let last = words.last().cloned().unwrap_or_default();
    let joined = words.concat();
    let d = match rng.below(5) {
        0 if words.len() > 1 => {
            // only one word of the name
            if rng.chance(0.5) {
                last.clone()
            } else {
                first.clone()
            }
        }
        1 => format!("{form}ble"), // glued suffix
        2 => format!("x{form}"),   // glued prefix
        // sentence end (voice text has no punctuation, so only in cased text)
        3 if words.len() > 1 && style == Style::Cased => {
            format!("{}. {}", words[0], words[1..].join(" "))
        }
        _ => {
            // A space where the name has no word boundary, leaving one letter on a side (a
            // split word keeps two on each side), or anywhere in a one-word name.
            let boundaries: Vec<usize> = words
                .iter()
                .scan(0, |acc, w| {
                    *acc += w.len();
                    Some(*acc)
                })
                .collect();
            let near_edge = |i: usize| {
                words.len() == 1
                    || boundaries
                        .iter()
                        .any(|&b| i == b + 1 || i + 1 == b || i == 1 || i + 1 == joined.len())
            };
            let inner: Vec<usize> = (1..joined.len())
                .filter(|i| !boundaries.contains(i) && joined.is_char_boundary(*i) && near_edge(*i))
                .collect();
            if inner.is_empty() {
                format!("{form}ble")
            } else {
                let cut = inner[rng.below(inner.len())];
                format!("{} {}", &joined[..cut], &joined[cut..])
            }
        }
    };
    match style {
        Style::Voice => d.to_lowercase().replace('.', ""),
        Style::Cased => d,
    }
}

/// The corpus: `n` samples per style, seeded.
pub fn corpus(seed: u64, n: usize) -> (Dictionary, Vec<Sample>) {
    let dict = Dictionary::parse(EVAL_DICTIONARY, "evaluation dictionary")
        .unwrap_or_else(|e| panic!("the evaluation dictionary is valid by construction: {e}"));
    let mut rng = Rng(seed);
    let mut forms: Vec<(String, String)> = Vec::new();
    for p in dict
        .products
        .iter()
        .filter(|p| !RULE_PRODUCTS.contains(&p.name.as_str()))
    {
        forms.push((p.name.clone(), p.name.clone()));
        for a in &p.aliases {
            forms.push((p.name.clone(), a.clone()));
        }
    }
    let mut out = Vec::new();
    for style in [Style::Cased, Style::Voice] {
        let (before, after) = match style {
            Style::Cased => (CASED_BEFORE, CASED_AFTER),
            Style::Voice => (VOICE_BEFORE, VOICE_AFTER),
        };
        for _ in 0..n {
            let mut b = Builder::new();
            let parts = 1 + rng.below(3);
            for i in 0..parts {
                if i > 0 {
                    b.push(if style == Style::Cased { " " } else { " and " });
                }
                let w: &str = before[rng.below(before.len())];
                b.push(w);
                let (product, form) = rng.pick(&forms).clone();
                // A distractor of a form that starts with another form ("Nimbus Hub Max",
                // "orbit camera") could contain a true mention of the shorter one.
                let key = normalize_key(&form);
                let extends_another = forms.iter().any(|(_, f)| {
                    let k = normalize_key(f);
                    k != key && key.starts_with(&k)
                });
                if rng.chance(0.25) && !extends_another {
                    b.push(&distractor(&form, style, &mut rng));
                } else {
                    let (before, core, after) = positive_form(&form, style, &mut rng);
                    b.push(&before);
                    b.mention(&product, &core);
                    b.push(&after);
                }
                let w: &str = after[rng.below(after.len())];
                b.push(w);
            }
            let text = if style == Style::Voice {
                b.text.replace(['?', '!', ',', '.', ';', '(', ')', '—'], "")
            } else {
                b.text.clone()
            };
            // Removing punctuation in voice text shifts offsets: rebuild the gold from scratch.
            let gold = if style == Style::Voice {
                realign(&b.text, &text, &b.gold)
            } else {
                b.gold
            };
            out.push(Sample {
                style,
                rule: "base",
                text,
                gold,
            });
        }
    }
    let multi: Vec<(String, String)> = forms
        .iter()
        .filter(|(p, f)| p == f && split_words(f).len() > 1)
        .cloned()
        .collect();
    for style in [Style::Cased, Style::Voice] {
        for i in 0..n {
            let rule = RULES[1 + i % (RULES.len() - 1)];
            out.push(rule_sample(rule, style, &multi, &mut rng));
        }
    }
    (dict, out)
}

/// Lowercase for voice text, as written for cased text.
fn styled(s: &str, style: Style) -> String {
    match style {
        Style::Voice => s.to_lowercase(),
        Style::Cased => s.to_string(),
    }
}

/// `word` with one edit (`op` 0–3: replace, delete, insert, swap) at a random place, always a
/// change; never an `s` added at the end (that is a plural, not an edit).
fn edit(word: &str, op: usize, rng: &mut Rng) -> String {
    const LETTERS: &[u8] = b"abcdefghijklmnopqrtuvwxyz";
    let mut c: Vec<char> = word.chars().collect();
    loop {
        let i = rng.below(c.len());
        let l = char::from(LETTERS[rng.below(LETTERS.len())]);
        match op {
            0 if c[i].to_ascii_lowercase() != l => c[i] = l,
            1 => {
                c.remove(i);
            }
            2 => c.insert(i, l),
            3 if i + 1 < c.len() && c[i] != c[i + 1] => c.swap(i, i + 1),
            _ => continue,
        }
        return c.into_iter().collect();
    }
}

/// One sample of a rule of issue 21: a positive form or a near miss (about one in three).
fn rule_sample(
    rule: &'static str,
    style: Style,
    multi: &[(String, String)],
    rng: &mut Rng,
) -> Sample {
    let mut b = Builder::new();
    let near = rng.chance(0.35);
    let (before, after) = match style {
        Style::Cased => (*rng.pick(CASED_BEFORE), *rng.pick(CASED_AFTER)),
        Style::Voice => (*rng.pick(VOICE_BEFORE), *rng.pick(VOICE_AFTER)),
    };
    let latin = |b: &mut Builder, product: &str, surface: Option<&str>, rng: &mut Rng| {
        b.push(before);
        match surface {
            Some(s) => b.mention(product, s),
            None => b.push(&distractor_of(product, style, rng)),
        }
        b.push(after);
    };
    match rule {
        "split" => {
            let (name, _) = rng.pick(multi).clone();
            let words = split_words(&name);
            // A word of four letters or more: split in two of two letters each, or not.
            let long: Vec<usize> = (0..words.len())
                .filter(|&i| words[i].chars().count() >= 4)
                .collect();
            let w = *rng.pick(&long);
            let mut parts: Vec<String> = words.iter().map(|x| styled(x, style)).collect();
            let len = parts[w].chars().count();
            let joiner = if style == Style::Cased && rng.chance(0.5) {
                "-"
            } else {
                " "
            };
            if near {
                // A part of one letter, or two splits in one word.
                let cut = if len >= 6 && rng.chance(0.5) {
                    let a: String = parts[w].chars().take(2).collect();
                    let m: String = parts[w].chars().skip(2).take(2).collect();
                    let z: String = parts[w].chars().skip(4).collect();
                    format!("{a}{joiner}{m}{joiner}{z}")
                } else {
                    let at = if rng.chance(0.5) { 1 } else { len - 1 };
                    let a: String = parts[w].chars().take(at).collect();
                    let z: String = parts[w].chars().skip(at).collect();
                    format!("{a}{joiner}{z}")
                };
                parts[w] = cut;
                b.push(before);
                b.push(&parts.join(" "));
                b.push(after);
            } else {
                let at = 2 + rng.below(len - 3);
                let a: String = parts[w].chars().take(at).collect();
                let z: String = parts[w].chars().skip(at).collect();
                parts[w] = format!("{a}{joiner}{z}");
                b.push(before);
                b.mention(&name, &parts.join(" "));
                b.push(after);
            }
        }
        "scripts" => {
            const AROUND: &[(&str, &str)] = &[
                ("私の", "が壊れました。"),
                ("我的", "坏了"),
                ("제 ", "를 샀어요"),
                ("", "ของฉันเสีย"),
                ("この", "は"),
            ];
            let (pre, post) = *rng.pick(AROUND);
            b.push(pre);
            if rng.chance(0.3) {
                // The Katakana name inside Japanese text.
                if near {
                    b.push("アクメルー"); // a shorter word, not the name
                } else {
                    b.mention("アクメルーター", "アクメルーター");
                }
            } else {
                let (name, _) = rng.pick(multi).clone();
                let surface = styled(&name, style);
                if near {
                    // Latin letters glued to the name are no boundary.
                    b.push(&format!("x{surface}"));
                } else {
                    b.mention(&name, &surface);
                }
            }
            b.push(post);
        }
        "accents" => {
            if rng.chance(0.5) {
                let forms = [
                    "reseau plus",
                    "RÉSEAU PLUS",
                    "Réseau-Plus",
                    "Reseau Plus",
                    "réseau plus",
                ];
                let f = styled(rng.pick_str(&forms[..]), style);
                // A near miss: one of its words alone.
                latin(&mut b, "Réseau Plus", (!near).then_some(f.as_str()), rng);
            } else {
                let f = if near {
                    styled(
                        rng.pick_str(&["Senal Total", "senal total", "SENAL TOTAL"]),
                        style,
                    )
                } else {
                    styled(
                        rng.pick_str(&["Señal Total", "SEÑAL TOTAL", "señal-total"]),
                        style,
                    )
                };
                b.push(before);
                if near {
                    b.push(&f); // accents = "exact": without the tilde it is another word
                } else {
                    b.mention("Señal Total", &f);
                }
                b.push(after);
            }
        }
        "case" => {
            b.push(before);
            if near || (style == Style::Voice && rng.chance(0.5)) {
                b.push(rng.pick_str(&["edge", "the edge of it", "cutting edge"]));
            } else if style == Style::Voice || rng.chance(0.3) {
                let f = styled(
                    rng.pick_str(&["acme edge", "Acme Edge", "ACME EDGE"]),
                    style,
                );
                b.mention("Edge", &f);
            } else {
                b.mention("Edge", rng.pick_str(&["Edge", "EDGE"][..]));
            }
            b.push(after);
        }
        _ => {
            // fuzzy
            let name = *rng.pick(&["Velocity Scan Pad", "Omnilink"]);
            let mut words: Vec<String> = name.split(' ').map(|w| styled(w, style)).collect();
            let long: Vec<usize> = (0..words.len()).filter(|&i| words[i].len() >= 6).collect();
            let short: Vec<usize> = (0..words.len()).filter(|&i| words[i].len() < 6).collect();
            b.push(before);
            if near {
                if !short.is_empty() && rng.chance(0.5) {
                    let i = *rng.pick(&short);
                    words[i] = edit(&words[i], rng.below(4), rng);
                } else {
                    let i = *rng.pick(&long);
                    let once = edit(&words[i], rng.below(4), rng);
                    // Two edits that do not undo each other (checked: two apart).
                    let mut twice = edit(&once, rng.below(3), rng);
                    while super::candidates::distance(&words[i], &twice, 2) < 2 {
                        twice = edit(&once, rng.below(3), rng);
                    }
                    words[i] = twice;
                }
                b.push(&words.join(" "));
            } else {
                for &i in &long {
                    if rng.chance(0.6) || i == *long.last().unwrap_or(&0) {
                        words[i] = edit(&words[i], rng.below(4), rng);
                    }
                }
                b.mention(name, &words.join(" "));
            }
            b.push(after);
        }
    }
    let mut text = b.text.clone();
    let mut gold = b.gold;
    if style == Style::Voice {
        text = b
            .text
            .replace(['?', '!', ',', '.', ';', '(', ')', '—', '。'], "");
        gold = realign(&b.text, &text, &gold);
    }
    Sample {
        style,
        rule,
        text,
        gold,
    }
}

/// A near miss of a product: one word of its name alone.
fn distractor_of(product: &str, style: Style, rng: &mut Rng) -> String {
    let words: Vec<&str> = product.split(' ').collect();
    styled(rng.pick_str(&words[..]), style)
}

/// Maps character spans of `before` onto `after`, which is `before` with some characters removed.
fn realign(
    before: &str,
    after: &str,
    gold: &[(String, usize, usize)],
) -> Vec<(String, usize, usize)> {
    let mut map = Vec::new(); // before char index -> after char index
    let mut a = after.chars().peekable();
    let mut j = 0;
    for c in before.chars() {
        map.push(j);
        if a.peek() == Some(&c) {
            a.next();
            j += 1;
        }
    }
    map.push(j);
    gold.iter()
        .map(|(p, s, e)| (p.clone(), map[*s], map[*e]))
        .collect()
}

/// Precision, recall and F1 of one style (and one rule, or `"all"`).
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    pub style: Style,
    pub rule: &'static str,
    pub samples: usize,
    pub gold: usize,
    pub true_positives: usize,
    pub false_positives: usize,
    pub false_negatives: usize,
}

impl Score {
    pub fn precision(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }
    pub fn recall(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        1.0
    } else {
        a as f64 / b as f64
    }
}

/// Each mention as (canonical product, start_char, end_char), as gold spans are written.
fn spans<'a>(
    m: &'a Matcher,
    found: &'a [Found],
) -> impl Iterator<Item = (String, usize, usize)> + 'a {
    found.iter().map(|f| {
        (
            m.products()[f.product as usize].clone(),
            f.start_char,
            f.end_char,
        )
    })
}

/// Scores the matcher on a corpus: a mention counts when product and span are exact. One score
/// per style (rule `"all"`).
pub fn score(dict: &Dictionary, samples: &[Sample]) -> Vec<Score> {
    score_where(dict, samples, None)
}

/// [`score`] per style and rule, in the order of [`RULES`].
pub fn score_by_rule(dict: &Dictionary, samples: &[Sample]) -> Vec<Score> {
    RULES
        .iter()
        .flat_map(|r| score_where(dict, samples, Some(r)))
        .collect()
}

fn score_where(dict: &Dictionary, samples: &[Sample], rule: Option<&'static str>) -> Vec<Score> {
    let m = Matcher::new(dict);
    let mut scratch = Scratch::default();
    let mut found: Vec<Found> = Vec::new();
    let mut out: Vec<Score> = Vec::new();
    for style in [Style::Cased, Style::Voice] {
        let mut s = Score {
            style,
            rule: rule.unwrap_or("all"),
            samples: 0,
            gold: 0,
            true_positives: 0,
            false_positives: 0,
            false_negatives: 0,
        };
        for sample in samples
            .iter()
            .filter(|x| x.style == style && rule.is_none_or(|r| x.rule == r))
        {
            m.find(&sample.text, &mut scratch, &mut found);
            let got: BTreeSet<(String, usize, usize)> = spans(&m, &found).collect();
            let want: BTreeSet<(String, usize, usize)> = sample.gold.iter().cloned().collect();
            s.samples += 1;
            s.gold += want.len();
            s.true_positives += got.intersection(&want).count();
            s.false_positives += got.difference(&want).count();
            s.false_negatives += want.difference(&got).count();
        }
        out.push(s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matcher_follows_the_rules_on_the_labeled_corpus() {
        let (dict, samples) = corpus(1, 2000);
        for s in score(&dict, &samples) {
            assert!(s.gold > 1000, "{s:?}");
            assert!(s.f1() >= 0.98, "{} F1 {:.4}: {s:?}", s.style.name(), s.f1());
        }
        for s in score_by_rule(&dict, &samples) {
            assert!(s.gold > 100 && s.samples > 200, "{s:?}");
            assert!(
                s.false_positives == 0 && s.false_negatives == 0,
                "{} {}: {s:?}; first misses: {:?}",
                s.style.name(),
                s.rule,
                misses(&dict, &samples, s.style, s.rule)
            );
        }
    }

    /// Up to five samples of a style and rule whose mentions the matcher gets wrong.
    fn misses(dict: &Dictionary, samples: &[Sample], style: Style, rule: &str) -> Vec<String> {
        let m = Matcher::new(dict);
        let (mut scratch, mut found) = (Scratch::default(), Vec::new());
        samples
            .iter()
            .filter(|x| x.style == style && x.rule == rule)
            .filter_map(|x| {
                m.find(&x.text, &mut scratch, &mut found);
                let got: Vec<(String, usize, usize)> = spans(&m, &found).collect();
                (got != x.gold).then(|| format!("{:?}: got {got:?}, gold {:?}", x.text, x.gold))
            })
            .take(5)
            .collect()
    }

    #[test]
    fn every_rule_has_positives_and_near_misses_in_both_styles() {
        let (_, samples) = corpus(4, 600);
        for style in [Style::Cased, Style::Voice] {
            for rule in RULES {
                let of: Vec<&Sample> = samples
                    .iter()
                    .filter(|s| s.style == style && s.rule == *rule)
                    .collect();
                assert!(of.iter().any(|s| !s.gold.is_empty()), "{rule} {style:?}");
                assert!(of.iter().any(|s| s.gold.is_empty()), "{rule} {style:?}");
            }
        }
        assert!(samples.iter().any(|s| s.text.contains("アクメルーター")));
        assert!(samples.iter().any(|s| s.text.contains("ของฉัน")));
    }

    #[test]
    fn gold_spans_slice_the_surface_forms() {
        let (_, samples) = corpus(2, 200);
        for s in &samples {
            for (_, a, b) in &s.gold {
                let span: String = s.text.chars().skip(*a).take(b - a).collect();
                assert!(!span.trim().is_empty(), "{s:?}");
            }
        }
    }

    #[test]
    fn the_corpus_is_deterministic() {
        let a = corpus(3, 50).1;
        let b = corpus(3, 50).1;
        assert_eq!(
            a.iter().map(|s| &s.text).collect::<Vec<_>>(),
            b.iter().map(|s| &s.text).collect::<Vec<_>>()
        );
    }
}
