//! Deterministic synthetic conversations and the ground truth an extractor must reproduce.
//!
//! Invariants:
//! - Everything is a pure function of ([`SimConfig`], index), computed on demand with our own
//!   SplitMix64, so output never changes with crate versions and nothing is held in memory.
//! - Start times are strictly increasing in the index (when there are fewer conversations than
//!   milliseconds in the period) and lie in `[start, start + days)`, so a time range maps to an
//!   index range by binary search.
//! - Filler and template words never contain a product word, mentions are separated from their
//!   neighbours by a space or punctuation, and near misses are checked against the dictionary
//!   before they are written: a whole-word matcher finds exactly [`Conversation::mentions`].
//! - Every template carries a sentiment label (-1, 0, +1) and maybe a topic, as metadata; an
//!   utterance's label is the sign of the sum of its sentences' (free vocabulary sentences 0).
//! - A scenario ([`super::Scenario`]) draws only from streams of its own (`STREAM_STORY*`): its
//!   planted utterances lie strictly between two flat ones, and every flat utterance keeps its
//!   time and, unless an outage retells it, its text. Under the flat scenario every id, time and
//!   text is what it was before scenarios existed (pinned by a digest in the tests).

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use chrono::{DateTime, Duration, NaiveDate, Utc};

use super::story::{self, Plant, PlantedEvent};
use super::{Lengths, SimConfig, Traffic};

const STREAM_TIME: u64 = 0x7431;
const STREAM_PLAN: u64 = 0x9a2c;
const STREAM_TEXT: u64 = 0x3e57;
const STREAM_ID: u64 = 0x51d0;
const STREAM_STA: u64 = 0x57a0;
const STREAM_TRAFFIC: u64 = 0x7aff;
/// The scenario's planted utterances (how many, where) and, on a stream of their own, their text.
const STREAM_STORY: u64 = 0x5707;
const STREAM_STORY_TEXT: u64 = 0x57e7;

/// The longest a generated conversation lasts (emails: up to three 36-hour gaps), rounded up:
/// a conversation active at time `t` started after `t - MAX_SPAN`.
pub(crate) const MAX_SPAN: Duration = Duration::days(5);
/// Time from the last utterance to the end of the conversation.
const TAIL_MS: i64 = 4_000;

/// The SplitMix64 finaliser: a bijective 64-bit mix.
pub(crate) fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A tiny SplitMix64 generator; one independent stream per (seed, index, purpose).
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn stream(seed: u64, index: u64, purpose: u64) -> Self {
        Rng(splitmix(splitmix(seed ^ splitmix(index)) ^ purpose))
    }
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        splitmix(self.0)
    }
    /// Uniform in `0..n` (0 when `n == 0`).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }
    /// Uniform in `lo..=hi`.
    pub(crate) fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    /// A random element; callers only pass non-empty constant tables or check emptiness first.
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len()))
    }
}

/// A uuid-shaped (version 4 layout) string from a 64-bit value.
pub(crate) fn uuid_like(x: u64) -> String {
    let (a, b) = (splitmix(x), splitmix(!x));
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0x0fff,
        ((b >> 48) & 0x3fff) | 0x8000,
        b & 0xffff_ffff_ffff
    )
}

/// The channel of a conversation; `as_str` is the archive's `type` and the lake's `interaction_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Media {
    /// A phone call with an ASR transcript.
    Voice,
    /// A web chat.
    Chat,
    /// An email thread.
    Email,
    /// Asynchronous messaging (SMS, WhatsApp, web messaging).
    Message,
}

impl Media {
    /// Every media type.
    pub const ALL: [Media; 4] = [Media::Voice, Media::Chat, Media::Email, Media::Message];

    /// `"voice"`, `"chat"`, `"email"` or `"message"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Media::Voice => "voice",
            Media::Chat => "chat",
            Media::Email => "email",
            Media::Message => "message",
        }
    }

    /// The inverse of [`Media::as_str`].
    pub fn parse(s: &str) -> Option<Media> {
        Media::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// One utterance, message or email of a conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interaction {
    /// `"customer"`, `"agent"` or `"ivr"`.
    pub participant: &'static str,
    /// When it was said or sent; increases within a conversation.
    pub timestamp: DateTime<Utc>,
    /// The text (ASR style for voice, cased and punctuated otherwise).
    pub transcript: String,
}

/// One generated conversation, deterministic from (seed, index).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conversation {
    /// A uuid-like id.
    pub id: String,
    /// Start time; its UTC date is the conversation date.
    pub start: DateTime<Utc>,
    /// The channel.
    pub media: Media,
    /// Utterances in time order.
    pub interactions: Vec<Interaction>,
    /// Inserted mentions per canonical product name (sorted by name, counts > 0).
    pub mentions: Vec<(String, usize)>,
}

/// What a correct extractor must find for a date range and media filter.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroundTruth {
    /// (conversation date, interaction_type, product) -> (mentions, distinct conversations).
    pub rows: BTreeMap<(NaiveDate, String, String), (u64, u64)>,
}

impl GroundTruth {
    /// Total mentions per product over all dates and media.
    pub fn totals_by_product(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for ((_, _, product), (mentions, _)) in &self.rows {
            *out.entry(product.clone()).or_insert(0) += mentions;
        }
        out
    }
}

/// How conversation `index` is presented under [`SimConfig::traffic`] (see [`Traffic`]); all
/// false (one leg) with traffic off. Drawn from a stream of its own, so the text never changes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Shape {
    /// Voice: a callback (a `callback` session, then the recorded `voice` one).
    pub callback: bool,
    /// Voice: offsets (ms from the start) of the agent utterances that open the second and third
    /// legs of a transferred call; empty when the call was not transferred.
    pub transfers_at: Vec<i64>,
    /// Voice: the transcript link answers 404 `NoSuchKey` (deleted with its recording).
    pub gone: bool,
    /// Voice: the transcript appears `late_for_secs` after it was first asked for.
    pub late: bool,
    /// Digital: the recording is archived (a stub without text).
    pub archived: bool,
    /// Digital: the recording's `recordingErrorStatus` (no text).
    pub recording_error: Option<&'static str>,
    /// Still going on: no end, no text yet.
    pub ongoing: bool,
    /// Voice: the customer's session has two recordings, each with a transcript of the same
    /// phrases (the plural `transcripturls` lists both).
    pub duplicate_recording: bool,
}

impl Shape {
    /// Number of recorded legs (1 unless transferred).
    pub fn legs(&self) -> usize {
        self.transfers_at.len() + 1
    }
}

/// Generates conversation `index` (builds a [`Generator`]; reuse one for many conversations).
pub fn conversation(cfg: &SimConfig, index: usize) -> Conversation {
    Generator::new(cfg).conversation(index)
}

/// Ground truth for conversations starting in `[from, to_exclusive)` (UTC days) whose media is
/// in `media` (an empty slice means all media).
pub fn ground_truth(
    cfg: &SimConfig,
    from: NaiveDate,
    to_exclusive: NaiveDate,
    media: &[&str],
) -> GroundTruth {
    let gen = Generator::new(cfg);
    let midnight = |d: NaiveDate| d.and_time(chrono::NaiveTime::MIN).and_utc();
    let mut truth = GroundTruth::default();
    for i in gen.index_range(midnight(from), midnight(to_exclusive)) {
        let plan = gen.plan(i);
        if !media.is_empty() && !media.contains(&plan.media.as_str()) {
            continue;
        }
        if !gen.has_text(i) {
            continue;
        }
        let date = gen.start(i).date_naive();
        for (product, n) in gen.mention_counts(&plan) {
            let key = (date, plan.media.as_str().to_string(), product);
            let row = truth.rows.entry(key).or_insert((0, 0));
            row.0 += n as u64;
            row.1 += 1;
        }
    }
    truth
}

/// Ids of the voice conversations starting in `[from, to_exclusive)` that have no transcript
/// (their `transcripturl` answers 404; they are not in [`ground_truth`]). Ongoing conversations
/// are left out (their text is not there yet, whatever comes later).
pub fn untranscribed(cfg: &SimConfig, from: NaiveDate, to_exclusive: NaiveDate) -> Vec<String> {
    let gen = Generator::new(cfg);
    let midnight = |d: NaiveDate| d.and_time(chrono::NaiveTime::MIN).and_utc();
    gen.index_range(midnight(from), midnight(to_exclusive))
        .filter(|&i| !gen.has_transcript(i) && !gen.shape(i).ongoing)
        .map(|i| gen.id(i))
        .collect()
}

/// The events `cfg.scenario` planted in the data, in the order the generator applies them
/// (empty for [`super::Scenario::Flat`], and with fewer than three products). [`ground_truth`]
/// counts their mentions.
pub fn planted_events(cfg: &SimConfig) -> Vec<PlantedEvent> {
    let gen = Generator::new(cfg);
    gen.plants
        .iter()
        .map(|p| PlantedEvent {
            kind: p.kind.to_string(),
            product: gen.products[p.product].canonical.clone(),
            from: p.from,
            to: p.to,
            factor: p.last_factor(),
            sentiment: p.sentiment,
            topic: p.topic.map(str::to_string),
        })
        .collect()
}

/// The sentiment label (-1, 0 or 1) of each utterance of conversation `index`, in the order of
/// [`conversation`]`(cfg, index).interactions`: the sign of the sum of its sentences' labels.
pub fn utterance_labels(cfg: &SimConfig, index: usize) -> Vec<i8> {
    let (_, labels) = Generator::new(cfg).labelled(index);
    labels.into_iter().map(|l| l.sentiment).collect()
}

const VOCABULARY: &str = "able about above account actually after again against ago almost \
already also always amount another answer anything anyway appointment around arrive asked \
available away back balance bank before being believe best better between bill billing both \
bought break bring broken brother business busy calendar called came cancel cannot care case \
certain change charge charged check checked city clear close code color come coming complete \
confirm contact contract correct could country course credit customer daily damage date day days \
delivery department details did different does done down during each early easy either else \
email enough evening every everything exactly expect explain family fast fee few file find fine \
first fix follow form forward free friday friend full gave getting give glad good great green \
happen happy hear heard help here hold home hope hour hours house idea important information \
instead into issue item just keep kind know last late later learn least leave left less letter \
like line little live long look looking lost lot made mail make many maybe mean message minute \
minutes moment monday money month more morning most mother much must name need never new next \
nice night note nothing notice number office often okay once online only open order other over \
package paid paper part password past pay payment people perhaps person place plan please plus \
point possible post power price probably problem purchase question quick quite rather ready real \
really reason receipt receive recent record refund remember reply report request return right \
room said same saturday saw schedule second see seem send sent service several shipping short \
should show side simple since small some something soon sorry sound speak start status still \
store street sunday support sure system take talk team tell than thank thanks that then there \
thing think this thursday time today together told tomorrow took total transfer tried true try \
tuesday turn under understand update upgrade usual value very visit wait want warranty wednesday \
week weekend well went were what when where which while white window with without word work \
working would write wrong year yesterday your";

/// A sentence template and its labels: the sentiment a reader gives it (-1, 0 or +1) and the
/// Speech & Text Analytics topic it speaks of. Labels are metadata: they never change the text.
struct Tpl {
    text: &'static str,
    sentiment: i8,
    topic: Option<Topic>,
}

/// An STA topic: its short lowercase name and the phrase of the template that carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Topic {
    pub(crate) name: &'static str,
    pub(crate) phrase: &'static str,
}

/// A template without a topic.
const fn t(text: &'static str, sentiment: i8) -> Tpl {
    Tpl {
        text,
        sentiment,
        topic: None,
    }
}

/// A template about topic `name`, carried by `phrase` (words of the template).
const fn tt(text: &'static str, sentiment: i8, name: &'static str, phrase: &'static str) -> Tpl {
    Tpl {
        text,
        sentiment,
        topic: Some(Topic { name, phrase }),
    }
}

const CUSTOMER_1: &[Tpl] = &[
    tt(
        "Hi, my {P} keeps dropping calls.",
        -1,
        "connectivity",
        "keeps dropping calls",
    ),
    t("I bought two {Ps} last week and one stopped working.", -1),
    tt(
        "The {Pp} battery runs out too fast.",
        -1,
        "battery",
        "battery runs out",
    ),
    tt("Can you help me set up the {P}?", 0, "setup", "set up"),
    tt(
        "I want to return the {P} and get a refund.",
        0,
        "returns",
        "return",
    ),
    t("My {P}, which I ordered online, will not turn on.", -1),
    tt(
        "Does the {P} come with a warranty?",
        0,
        "warranty",
        "warranty",
    ),
    t("{P} is not working again.", -1),
    t("Where can I buy more {Ps} for the office?", 0),
];
const CUSTOMER_2: &[Tpl] = &[
    t("Is the {P} compatible with the {P}?", 0),
    t("I am comparing the {P} and the {P}.", 0),
    tt(
        "My {P} will not connect to the {P}.",
        -1,
        "connectivity",
        "will not connect",
    ),
    t("Should I get the {P}, or the {P}?", 0),
];
const AGENT_1: &[Tpl] = &[
    t("Thanks for calling about the {P}.", 1),
    tt(
        "Let me check the {P} settings for you.",
        0,
        "setup",
        "settings",
    ),
    t("Have you tried restarting the {P}?", 0),
    tt(
        "I can send a replacement {P} today.",
        0,
        "returns",
        "replacement",
    ),
    t("The {Pp} firmware was updated last month.", 0),
    tt(
        "Most people who buy {Ps} also ask about setup.",
        0,
        "setup",
        "setup",
    ),
];
const AGENT_2: &[Tpl] = &[
    tt(
        "The {P} and the {P} share the same charger.",
        0,
        "battery",
        "charger",
    ),
    t("Many customers upgrade from the {P} to the {P}.", 0),
    tt(
        "You can pair the {P} with the {P} in the settings menu.",
        0,
        "setup",
        "settings menu",
    ),
];
const IVR: &[Tpl] = &[
    t("Welcome to customer service.", 0),
    t("Please say the reason for your call.", 0),
    t("Your call may be recorded for quality purposes.", 0),
    t("Please hold while we connect you to an agent.", 0),
];
const CUSTOMER_FILLER: &[Tpl] = &[
    t("I have a question about my account.", 0),
    tt(
        "The delivery was late again.",
        -1,
        "delivery",
        "delivery was late",
    ),
    t("Can you check my order status?", 0),
    t("I already tried that twice.", 0),
    t("Thank you for your help.", 1),
    t("It worked yesterday but not today.", -1),
    tt("How long will the refund take?", 0, "billing", "refund"),
];
const AGENT_FILLER: &[Tpl] = &[
    t("Thank you for contacting us today.", 1),
    t("Could you confirm your name and postal code?", 0),
    t("I understand, that sounds frustrating.", -1),
    t("One moment while I check that.", 0),
    t("Is there anything else I can help with?", 0),
    t("I have updated your account.", 0),
];
const NEAR: &[Tpl] = &[
    t("My {N} is acting up again.", -1),
    t("I think the {N} is a different model.", 0),
    t("We talked about the {N} yesterday.", 0),
];
/// Redaction sentences count 0 whatever they say.
const PII: &[Tpl] = &[
    t("My card number is {PII}.", 0),
    t("You can reach me at {PII}.", 0),
    t("The card expires {PII}, my name is {PII}.", 0),
];
/// What customers of digital conversations type with [`SimConfig::raw_pii`]: (kind, text, whether
/// `--mask pii` masks it). The digit runs marked `false` fail the Luhn check: order and
/// tracking numbers, which masking keeps.
pub const RAW_PII: &[(&str, &str, bool)] = &[
    ("card", "4111 1111 1111 1111", true),
    ("card", "5500-0000-0000-0004", true),
    ("card", "378282246310005", true),
    ("not a card", "4111 1111 1111 1112", false),
    ("not a card", "7234-5678-9012-3456", false),
    ("email", "jane.doe+orders@example.com", true),
    ("email", "OMAR.K@Mail.Example.org", true),
    ("phone", "+44 20 7946 0958", true),
    ("phone", "(317) 555-0123", true),
    ("phone", "+1 317 555 0199", true),
    ("iban", "GB82 WEST 1234 5698 7654 32", true),
    ("iban", "DE89370400440532013000", true),
    ("ssn", "219-09-9999", true),
];
const PII_TAGS: &[&str] = &[
    "[card number]",
    "[card expiry date]",
    "[phone]",
    "[email]",
    "[name]",
    "[postal code]",
    "[user info]",
];
/// Planted by a scenario only (an outage): one product, clearly negative (a negative word of the
/// VADER lexicon, [`NEGATIVE_WORDS`]), about connectivity.
const STORY_NEGATIVE: &[Tpl] = &[
    tt(
        "My {P} keeps losing the connection, this is terrible.",
        -1,
        "connectivity",
        "keeps losing the connection",
    ),
    tt(
        "The {P} has been down all day and I am really angry.",
        -1,
        "connectivity",
        "has been down all day",
    ),
    tt(
        "I am so frustrated, the {P} will not connect at all.",
        -1,
        "connectivity",
        "will not connect",
    ),
    tt(
        "The {P} is offline again, this is awful.",
        -1,
        "connectivity",
        "is offline again",
    ),
    tt(
        "I am really disappointed, my {P} keeps dropping the connection.",
        -1,
        "connectivity",
        "keeps dropping the connection",
    ),
];
/// An agent's sentence naming a product during an outage (a scenario retells an agent's flat
/// sentence that names only that product as one of these): negative, about connectivity.
const STORY_AGENT_NEGATIVE: &[Tpl] = &[
    tt(
        "I am sorry, the {P} is down for everyone today, this outage is terrible.",
        -1,
        "connectivity",
        "is down for everyone",
    ),
    tt(
        "We know the {P} keeps losing the connection, it is awful and we are on it.",
        -1,
        "connectivity",
        "keeps losing the connection",
    ),
    tt(
        "Sorry, the {P} outage is horrible, it will connect again soon.",
        -1,
        "connectivity",
        "will connect again",
    ),
];
/// Planted by a scenario only (a launch): one product, clearly positive ([`POSITIVE_WORDS`]),
/// never a negation.
const STORY_POSITIVE: &[Tpl] = &[
    t("I love the new {P}, it is great.", 1),
    tt(
        "The {P} is excellent, setup was easy.",
        1,
        "setup",
        "setup was easy",
    ),
    t("Really happy with my {P}, thank you.", 1),
    t("The new {P} is amazing, I would buy it again.", 1),
    tt(
        "Setting up the {P} was perfect, it took two minutes.",
        1,
        "setup",
        "setting up",
    ),
];
/// Clearly negative words of the VADER sentiment lexicon; every [`STORY_NEGATIVE`] and
/// [`STORY_AGENT_NEGATIVE`] template has one.
const NEGATIVE_WORDS: &[&str] = &[
    "terrible",
    "awful",
    "angry",
    "frustrated",
    "disappointed",
    "horrible",
    "hate",
    "useless",
];
/// Clearly positive words of the VADER lexicon; every [`STORY_POSITIVE`] template has one.
const POSITIVE_WORDS: &[&str] = &["love", "great", "excellent", "happy", "amazing", "perfect"];
/// Greetings and sign-offs are formulae: they count 0.
const GREETINGS: &[Tpl] = &[t("Hello,", 0), t("Hi there,", 0), t("Good morning,", 0)];
const SIGNOFFS: &[Tpl] = &[t("Kind regards.", 0), t("Thanks.", 0), t("Best wishes.", 0)];
/// Glued onto a name to make a near miss; never "s"/"es", which would read as a plural.
const GLUE: &[&str] = &["ble", "x", "ington", "oid"];

/// A parsed template: literals that passed the vocabulary filter, words to replace, and slots.
enum Tok {
    Lit { cased: String, voice: String },
    Filler { cap: bool, post: String },
    Slot { slot: Slot, post: String },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    Plain,
    Plural,
    Possessive,
    Near,
    Pii,
}

struct Surface {
    /// As written in the dictionary.
    text: String,
    /// Lowercase words, split at spaces, punctuation and camelCase boundaries.
    words: Vec<String>,
}

struct Product {
    canonical: String,
    surfaces: Vec<Surface>,
}

/// A joined surface form and the offsets of its internal word boundaries.
struct Form {
    joined: String,
    bounds: Vec<usize>,
    product: usize,
}

/// The planned skeleton of a conversation (drawn from its own stream, so ground truth is cheap).
pub(crate) struct Plan {
    pub(crate) media: Media,
    utterances: Vec<Planned>,
}

struct Planned {
    participant: &'static str,
    offset_ms: i64,
    mentions: Vec<usize>,
    near_miss: bool,
    pii: bool,
    /// Planted by the scenario: one sentence of this sign naming `mentions[0]`.
    planted: Option<i8>,
    /// A flat sentence naming one product, which an event retells as one of its sentences of
    /// this sign (an outage: whoever names the product speaks of the outage).
    retold: Option<i8>,
}

/// The labels of an utterance: the sign of the sum of its sentences' sentiments, and the topic
/// of its first sentence that has one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Label {
    pub(crate) sentiment: i8,
    pub(crate) topic: Option<Topic>,
}

/// A rendered sentence and its template's labels (free vocabulary sentences: 0, no topic).
type Sentence = (String, i8, Option<Topic>);

// The plan's draws, named so that [`flat_rate`] follows them.
/// Share of voice calls that open with the IVR.
const IVR_RATE: f64 = 0.5;
/// Share of conversations that mention products at all.
const MENTIONING: f64 = 0.6;
/// Share of a mentioning conversation's human utterances with a mention.
const MENTION_RATE: f64 = 0.3;
/// Share of those with a second one.
const SECOND_MENTION: f64 = 0.3;

/// Utterances per conversation (inclusive) and the gap between two (ms, inclusive).
fn sizes(media: Media, realistic: bool) -> ((usize, usize), (usize, usize)) {
    match (media, realistic) {
        (Media::Voice, false) => ((8, 40), (2_000, 25_000)),
        (Media::Voice, true) => ((20, 200), (2_000, 25_000)),
        (Media::Chat, false) => ((4, 20), (5_000, 90_000)),
        (Media::Chat, true) => ((5, 60), (5_000, 90_000)),
        (Media::Email, false) => ((1, 4), (3_600_000, 36 * 3_600_000)),
        (Media::Email, true) => ((1, 5), (3_600_000, 36 * 3_600_000)),
        (Media::Message, false) => ((3, 15), (20_000, 3 * 3_600_000)),
        (Media::Message, true) => ((3, 40), (20_000, 3 * 3_600_000)),
    }
}

/// For a conversation of `media` before any scenario: the expected mentions of one of
/// `products` products, and the share of conversations with room for a planted utterance (two
/// utterances after the IVR to put it between). Follows [`Generator::plan`]'s draws exactly.
fn flat_rate(media: Media, lengths: Lengths, products: usize) -> (f64, f64) {
    let ((lo, hi), _) = sizes(media, lengths == Lengths::Realistic);
    let ivr = if media == Media::Voice { IVR_RATE } else { 0.0 };
    let (mut mentions, mut room) = (0.0, 0.0);
    for n in lo..=hi {
        for (first, p) in [(0, 1.0 - ivr), (1, ivr)] {
            let humans = n - first;
            let each = MENTION_RATE * (1.0 + SECOND_MENTION);
            // The plan gives one mention to a mentioning conversation that drew none.
            let none = (1.0 - MENTION_RATE).powi(humans as i32);
            mentions += p * MENTIONING * (each * humans as f64 + none);
            room += if n >= first + 2 { p } else { 0.0 };
        }
    }
    let k = (hi - lo + 1) as f64;
    (mentions / k / products.max(1) as f64, room / k)
}

/// A Poisson draw of mean `mean` (Knuth's product of uniforms; means here are small).
fn poisson(rng: &mut Rng, mean: f64) -> usize {
    let limit = (-mean).exp();
    let (mut k, mut p) = (0, rng.unit());
    while p > limit && k < 10_000 {
        k += 1;
        p *= rng.unit();
    }
    k
}

/// A conversation factory for one configuration; cheap to query for any index.
pub struct Generator {
    seed: u64,
    lengths: Lengths,
    untranscribed_rate: f64,
    traffic: Traffic,
    /// Start of the last day of the period: `ongoing_rate` picks among conversations after it.
    last_day: DateTime<Utc>,
    count: usize,
    origin: DateTime<Utc>,
    period_ms: i64,
    products: Vec<Product>,
    forms: HashMap<String, Vec<Form>>,
    max_window: usize,
    banned: Vec<String>,
    vocab: Vec<&'static str>,
    pii_tags: Vec<&'static str>,
    /// [`SimConfig::raw_pii`].
    raw_pii: bool,
    templates: HashMap<&'static str, Vec<Tok>>,
    /// The scenario's events (empty: flat).
    plants: Vec<Plant>,
    /// [`flat_rate`] by media ([`Media::ALL`] order).
    flat_rates: [(f64, f64); 4],
    /// The scenario templates that kept their sentiment word through the vocabulary filter
    /// (all of a set if the dictionary bans every one): customer negative, customer positive,
    /// agent negative.
    story_templates: [Vec<&'static Tpl>; 3],
}

/// Lowercase words of a product surface: split at non-alphanumerics and at camelCase humps.
fn split_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in s.chars() {
        if !c.is_alphanumeric() {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !cur.is_empty() {
            words.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_lowercase() || c.is_numeric();
        cur.extend(c.to_lowercase());
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

impl Generator {
    /// Prepares the dictionary forms, the filtered vocabulary and the parsed templates.
    pub fn new(cfg: &SimConfig) -> Self {
        let products: Vec<Product> = cfg
            .products
            .iter()
            .map(|p| Product {
                canonical: p.name.clone(),
                surfaces: std::iter::once(&p.name)
                    .chain(&p.aliases)
                    .map(|s| Surface {
                        text: s.clone(),
                        words: split_words(s),
                    })
                    .filter(|s| !s.words.is_empty())
                    .collect(),
            })
            // A product with no letters or digits cannot be written, so it is never mentioned.
            .filter(|p| !p.surfaces.is_empty())
            .collect();
        let mut forms: HashMap<String, Vec<Form>> = HashMap::new();
        let mut banned: Vec<String> = Vec::new();
        let mut max_window = 1;
        for (i, p) in products.iter().enumerate() {
            for s in &p.surfaces {
                let mut bounds = Vec::new();
                let mut joined = String::new();
                for w in &s.words {
                    if !joined.is_empty() {
                        bounds.push(joined.len());
                    }
                    joined.push_str(w);
                    banned.push(w.clone());
                }
                max_window = max_window.max(s.words.len() + 1);
                forms.entry(joined.clone()).or_default().push(Form {
                    joined,
                    bounds,
                    product: i,
                });
            }
        }
        banned.sort();
        banned.dedup();
        let products_len = products.len();
        let mut gen = Generator {
            seed: cfg.seed,
            lengths: cfg.lengths,
            untranscribed_rate: cfg.untranscribed_rate,
            traffic: cfg.traffic.clone(),
            last_day: cfg.start.and_time(chrono::NaiveTime::MIN).and_utc()
                + Duration::days(i64::from(cfg.days.max(1)) - 1),
            count: cfg.conversations,
            origin: cfg.start.and_time(chrono::NaiveTime::MIN).and_utc(),
            period_ms: i64::from(cfg.days.max(1)) * 86_400_000,
            products,
            forms,
            max_window,
            banned,
            vocab: Vec::new(),
            pii_tags: Vec::new(),
            raw_pii: cfg.raw_pii,
            templates: HashMap::new(),
            plants: story::plants(cfg.scenario, cfg.start, cfg.days, products_len),
            flat_rates: Media::ALL.map(|m| flat_rate(m, cfg.lengths, products_len)),
            story_templates: [Vec::new(), Vec::new(), Vec::new()],
        };
        gen.vocab = VOCABULARY
            .split_whitespace()
            .filter(|w| !gen.is_banned(w))
            .collect();
        gen.pii_tags = PII_TAGS
            .iter()
            .copied()
            .filter(|t| !split_words(t).iter().any(|w| gen.is_banned(w)))
            .collect();
        let all = [
            CUSTOMER_1,
            CUSTOMER_2,
            AGENT_1,
            AGENT_2,
            IVR,
            CUSTOMER_FILLER,
            AGENT_FILLER,
            NEAR,
            PII,
            GREETINGS,
            SIGNOFFS,
            STORY_NEGATIVE,
            STORY_POSITIVE,
            STORY_AGENT_NEGATIVE,
        ];
        for tpl in all.into_iter().flatten() {
            let toks = gen.parse_template(tpl.text);
            gen.templates.insert(tpl.text, toks);
        }
        let sets = [
            (STORY_NEGATIVE, NEGATIVE_WORDS),
            (STORY_POSITIVE, POSITIVE_WORDS),
            (STORY_AGENT_NEGATIVE, NEGATIVE_WORDS),
        ];
        for (k, (set, words)) in sets.into_iter().enumerate() {
            let kept: Vec<&'static Tpl> = set
                .iter()
                .filter(|tpl| gen.keeps_a_word(tpl.text, words))
                .collect();
            gen.story_templates[k] = if kept.is_empty() {
                set.iter().collect()
            } else {
                kept
            };
        }
        gen
    }

    /// True when template `text`, once parsed, still says one of `words` (the filter turns words
    /// that collide with the dictionary into filler).
    fn keeps_a_word(&self, text: &str, words: &[&str]) -> bool {
        self.templates.get(text).is_some_and(|toks| {
            toks.iter().any(|tok| match tok {
                Tok::Lit { voice, .. } => words.contains(&voice.as_str()),
                _ => false,
            })
        })
    }

    /// A word is banned if it equals a product word or contains one of three or more letters.
    fn is_banned(&self, word: &str) -> bool {
        let w = word.to_lowercase();
        self.banned
            .iter()
            .any(|b| *b == w || (b.len() >= 3 && w.contains(b.as_str())))
    }

    fn parse_template(&self, tpl: &str) -> Vec<Tok> {
        tpl.split_whitespace()
            .map(|tok| {
                if let Some((slot, post)) = tok.strip_prefix('{').and_then(|r| r.split_once('}')) {
                    let slot = match slot {
                        "Ps" => Slot::Plural,
                        "Pp" => Slot::Possessive,
                        "N" => Slot::Near,
                        "PII" => Slot::Pii,
                        _ => Slot::Plain,
                    };
                    return Tok::Slot {
                        slot,
                        post: post.to_string(),
                    };
                }
                let core: String = tok.chars().filter(|c| c.is_alphanumeric()).collect();
                if split_words(&core).iter().any(|w| self.is_banned(w)) {
                    let cap = core.starts_with(|c: char| c.is_uppercase());
                    let post = tok
                        .trim_start_matches(|c: char| c.is_alphanumeric())
                        .to_string();
                    Tok::Filler { cap, post }
                } else {
                    Tok::Lit {
                        cased: tok.to_string(),
                        voice: core.to_lowercase(),
                    }
                }
            })
            .collect()
    }

    /// Number of conversations in the whole period.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when the configuration has no conversations.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Start time of conversation `index`.
    ///
    /// `base(i) = floor(i*P/n)` and the jitter is below `floor(P/n)`; since
    /// `floor(a) + floor(b) <= floor(a + b)`, `start(i) < base(i+1) <= start(i+1)`.
    pub fn start(&self, index: usize) -> DateTime<Utc> {
        let n = self.count.max(1) as i128;
        let base = (index as i128 * self.period_ms as i128 / n) as i64;
        let slot = (self.period_ms as i128 / n) as usize;
        let jitter = Rng::stream(self.seed, index as u64, STREAM_TIME).below(slot) as i64;
        self.origin + Duration::milliseconds(base + jitter)
    }

    /// Indexes of conversations starting in `[from, to)`.
    pub fn index_range(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Range<usize> {
        let lower = |t: DateTime<Utc>| {
            let (mut lo, mut hi) = (0, self.count);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if self.start(mid) < t {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            lo
        };
        let lo = lower(from);
        lo..lower(to).max(lo)
    }

    /// The media of conversation `index` (the first draw of its plan stream).
    pub fn media(&self, index: usize) -> Media {
        Self::media_from(&mut Rng::stream(self.seed, index as u64, STREAM_PLAN))
    }

    fn media_from(rng: &mut Rng) -> Media {
        match rng.below(100) {
            0..=39 => Media::Voice,
            40..=64 => Media::Chat,
            65..=79 => Media::Email,
            _ => Media::Message,
        }
    }

    pub(crate) fn plan(&self, index: usize) -> Plan {
        let mut rng = Rng::stream(self.seed, index as u64, STREAM_PLAN);
        let media = Self::media_from(&mut rng);
        let ((lo, hi), gap_ms) = sizes(media, self.lengths == Lengths::Realistic);
        let n = rng.between(lo, hi);
        let ivr = media == Media::Voice && rng.chance(IVR_RATE);
        let mentioning = !self.products.is_empty() && rng.chance(MENTIONING);
        let mut offset_ms = 0i64;
        let mut utterances: Vec<Planned> = (0..n)
            .map(|k| {
                let participant = match (ivr, k) {
                    (true, 0) => "ivr",
                    _ if (k + usize::from(ivr)) % 2 == 0 => "customer",
                    _ => "agent",
                };
                if k > 0 {
                    offset_ms += rng.between(gap_ms.0, gap_ms.1) as i64;
                }
                let human = participant != "ivr";
                let mut mentions = Vec::new();
                if mentioning && human && rng.chance(MENTION_RATE) {
                    for _ in 0..1 + usize::from(rng.chance(SECOND_MENTION)) {
                        mentions.push(rng.below(self.products.len()));
                    }
                }
                let near_miss = human && !self.products.is_empty() && rng.chance(0.08);
                let pii = participant == "customer" && media != Media::Voice && rng.chance(0.1);
                Planned {
                    participant,
                    offset_ms,
                    mentions,
                    near_miss,
                    pii,
                    planted: None,
                    retold: None,
                }
            })
            .collect();
        if mentioning && utterances.iter().all(|u| u.mentions.is_empty()) {
            let k = usize::from(ivr) + rng.below(n - usize::from(ivr));
            utterances[k].mentions.push(rng.below(self.products.len()));
        }
        self.plant(index, media, ivr, &mut utterances);
        Plan { media, utterances }
    }

    /// Adds the scenario's utterances to conversation `index`'s plan: for each event on the
    /// conversation's day, a Poisson number of customer utterances of one mention each, with the
    /// mean that multiplies the product's expected mentions in conversations of this media by
    /// the event's factor. Each goes between two utterances after the IVR (never after the last,
    /// so the conversation's end and span stay), drawn from the story stream.
    fn plant(&self, index: usize, media: Media, ivr: bool, utterances: &mut Vec<Planned>) {
        let first = usize::from(ivr);
        let n = utterances.len();
        if self.plants.is_empty() || n < first + 2 {
            return;
        }
        let date = self.start(index).date_naive();
        for p in self
            .plants
            .iter()
            .filter(|p| p.retell && p.factor(date) > 1.0)
        {
            for u in utterances.iter_mut() {
                if u.mentions == [p.product] {
                    u.retold = Some(p.sentiment);
                }
            }
        }
        let (flat, room) = self.flat_rates[media as usize];
        let mut rng = Rng::stream(self.seed, index as u64, STREAM_STORY);
        // (slot: after utterance k, product, sentiment)
        let mut planted: Vec<(usize, usize, i8)> = Vec::new();
        for p in &self.plants {
            let extra = p.factor(date) - 1.0;
            if extra <= 0.0 || room <= 0.0 {
                continue;
            }
            for _ in 0..poisson(&mut rng, extra * flat / room) {
                planted.push((first + rng.below(n - 1 - first), p.product, p.sentiment));
            }
        }
        if planted.is_empty() {
            return;
        }
        planted.sort_by_key(|p| p.0);
        let offsets: Vec<i64> = utterances.iter().map(|u| u.offset_ms).collect();
        let old = std::mem::take(utterances);
        let mut planted = planted.into_iter().peekable();
        for (k, u) in old.into_iter().enumerate() {
            utterances.push(u);
            let mut here = Vec::new();
            while let Some(p) = planted.next_if(|p| p.0 == k) {
                here.push(p);
            }
            // Gaps are at least 2 s, so the planted offsets lie strictly between the two.
            let (a, b) = (
                offsets[k],
                offsets.get(k + 1).copied().unwrap_or(offsets[k]),
            );
            let m = here.len() as i64 + 1;
            for (j, (_, product, sentiment)) in here.into_iter().enumerate() {
                utterances.push(Planned {
                    participant: "customer",
                    offset_ms: a + (b - a) * (j as i64 + 1) / m,
                    mentions: vec![product],
                    near_miss: false,
                    pii: false,
                    planted: Some(sentiment),
                    retold: None,
                });
            }
        }
    }

    fn mention_counts(&self, plan: &Plan) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for p in plan.utterances.iter().flat_map(|u| &u.mentions) {
            *counts
                .entry(self.products[*p].canonical.clone())
                .or_insert(0) += 1;
        }
        counts
    }

    /// The seed everything is drawn from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The id of conversation `index` (the same as `conversation(index).id`, without the text).
    pub fn id(&self, index: usize) -> String {
        uuid_like(Rng::stream(self.seed, index as u64, STREAM_ID).next_u64())
    }

    /// When conversation `index` ends: its last utterance plus a few seconds.
    pub fn end(&self, index: usize) -> DateTime<Utc> {
        let last = self
            .plan(index)
            .utterances
            .last()
            .map_or(0, |u| u.offset_ms);
        self.start(index) + Duration::milliseconds(last + TAIL_MS)
    }

    /// False for the voice conversations that Speech & Text Analytics never transcribed
    /// (`SimConfig::untranscribed_rate` of them); digital conversations always have text.
    pub fn has_transcript(&self, index: usize) -> bool {
        self.untranscribed_rate <= 0.0
            || self.media(index) != Media::Voice
            || Rng::stream(self.seed, index as u64, STREAM_STA).unit() >= self.untranscribed_rate
    }

    /// How conversation `index` is presented (callback, transfer legs, gone, late, archived,
    /// errored, ongoing). Every draw is made whatever the rates, so one shape's rate never moves
    /// another's picks.
    pub fn shape(&self, index: usize) -> Shape {
        let t = &self.traffic;
        let mut r = Rng::stream(self.seed, index as u64, STREAM_TRAFFIC);
        let u: [f64; 9] = std::array::from_fn(|_| r.unit());
        let media = self.media(index);
        let voice = media == Media::Voice;
        let start = self.start(index);
        let ongoing = start >= self.last_day && u[7] < t.ongoing_rate;
        let transcribed = voice && !ongoing && self.has_transcript(index);
        let mut transfers_at = Vec::new();
        if voice && u[1] < t.transfer_rate {
            // Each new leg opens with its agent speaking; never the first agent utterance.
            let agents: Vec<i64> = self
                .plan(index)
                .utterances
                .iter()
                .filter(|u| u.participant == "agent")
                .map(|u| u.offset_ms)
                .skip(1)
                .collect();
            let legs = if u[2] < 0.5 { 3 } else { 2 };
            for k in 1..legs {
                if let Some(at) = agents.get(k * agents.len() / legs) {
                    if transfers_at.last() != Some(at) {
                        transfers_at.push(*at);
                    }
                }
            }
        }
        let archived = !voice && !ongoing && u[5] < t.archived_rate;
        let duplicate_recording =
            transcribed && transfers_at.is_empty() && u[8] < t.duplicate_recording_rate;
        Shape {
            callback: voice && u[0] < t.callback_rate,
            transfers_at,
            gone: transcribed && u[3] < t.gone_rate,
            // Transcripts come late for recent calls only: those of the period's last day.
            late: transcribed && start >= self.last_day && u[4] < t.late_rate,
            archived,
            recording_error: (media == Media::Email
                && !archived
                && !ongoing
                && u[6] < t.recording_error_rate)
                .then_some("EMAIL_TRANSCRIPT_TOO_LARGE"),
            ongoing,
            duplicate_recording,
        }
    }

    /// True when a correct client can (eventually) read conversation `index`'s text: transcribed,
    /// not gone, archived, errored or ongoing. Late transcripts count: they arrive.
    pub fn has_text(&self, index: usize) -> bool {
        let s = self.shape(index);
        self.has_transcript(index)
            && !s.gone
            && !s.archived
            && s.recording_error.is_none()
            && !s.ongoing
    }

    /// Generates conversation `index`.
    pub fn conversation(&self, index: usize) -> Conversation {
        self.labelled(index).0
    }

    /// Conversation `index` and the labels of its utterances (in `interactions` order). The
    /// scenario's planted utterances are written from a stream of their own, so every other
    /// utterance reads as in the flat data.
    pub(crate) fn labelled(&self, index: usize) -> (Conversation, Vec<Label>) {
        let plan = self.plan(index);
        let start = self.start(index);
        let mut idr = Rng::stream(self.seed, index as u64, STREAM_ID);
        let mut rng = Rng::stream(self.seed, index as u64, STREAM_TEXT);
        let mut story = Rng::stream(self.seed, index as u64, STREAM_STORY_TEXT);
        let (interactions, labels) = plan
            .utterances
            .iter()
            .map(|u| {
                let (transcript, label) = match u.planted {
                    Some(sign) => self.planted_utterance(plan.media, u, sign, &mut story),
                    None => self.utterance(plan.media, u, &mut rng, &mut story),
                };
                let it = Interaction {
                    participant: u.participant,
                    timestamp: start + Duration::milliseconds(u.offset_ms),
                    transcript,
                };
                (it, label)
            })
            .unzip();
        let conv = Conversation {
            id: uuid_like(idr.next_u64()),
            start,
            media: plan.media,
            interactions,
            mentions: self.mention_counts(&plan).into_iter().collect(),
        };
        (conv, labels)
    }

    /// Conversation `index` without its text (every `transcript` empty, no mentions): what a
    /// conversation record needs, at a fraction of the cost. Ids, times and speakers equal
    /// [`Generator::conversation`]'s.
    pub fn outline(&self, index: usize) -> Conversation {
        let plan = self.plan(index);
        let start = self.start(index);
        let mut idr = Rng::stream(self.seed, index as u64, STREAM_ID);
        Conversation {
            id: uuid_like(idr.next_u64()),
            start,
            media: plan.media,
            interactions: plan
                .utterances
                .iter()
                .map(|u| Interaction {
                    participant: u.participant,
                    timestamp: start + Duration::milliseconds(u.offset_ms),
                    transcript: String::new(),
                })
                .collect(),
            mentions: Vec::new(),
        }
    }

    /// One sentence from a template of `set` (an empty one, drawing nothing, if `set` is empty).
    fn sentence(
        &self,
        set: &'static [Tpl],
        voice: bool,
        products: &[usize],
        near: Option<&str>,
        rng: &mut Rng,
    ) -> Sentence {
        match rng.pick(set) {
            Some(tpl) => (
                self.render(tpl.text, voice, products, near, rng),
                tpl.sentiment,
                tpl.topic,
            ),
            None => (String::new(), 0, None),
        }
    }

    /// A flat utterance, drawn from `rng` (the text stream); a retold sentence is drawn from
    /// `story` after its flat one, which keeps the text stream's draws.
    fn utterance(
        &self,
        media: Media,
        u: &Planned,
        rng: &mut Rng,
        story: &mut Rng,
    ) -> (String, Label) {
        let voice = media == Media::Voice;
        let customer = u.participant == "customer";
        let mut special = Vec::new();
        if u.participant == "ivr" {
            special.push(self.sentence(IVR, voice, &[], None, rng));
        }
        if !u.mentions.is_empty() {
            let set = match (customer, u.mentions.len()) {
                (true, 1) => CUSTOMER_1,
                (true, _) => CUSTOMER_2,
                (false, 1) => AGENT_1,
                (false, _) => AGENT_2,
            };
            let flat = self.sentence(set, voice, &u.mentions, None, rng);
            special.push(match u.retold {
                Some(sign) => self.story_sentence(sign, !customer, voice, &u.mentions, story),
                None => flat,
            });
        }
        if u.near_miss {
            if let Some(near) = self.near_miss(voice, rng) {
                special.push(self.sentence(NEAR, voice, &[], Some(&near), rng));
            }
        }
        if u.pii && !self.pii_tags.is_empty() {
            special.push(self.sentence(PII, voice, &[], None, rng));
        }
        let fillers = match media {
            Media::Voice | Media::Message => rng.between(usize::from(special.is_empty()), 1),
            Media::Chat => rng.between(usize::from(special.is_empty()), 2),
            Media::Email => rng.between(2, 5),
        };
        let mut sentences: Vec<Sentence> = (0..fillers)
            .map(|_| {
                let set = if customer {
                    CUSTOMER_FILLER
                } else {
                    AGENT_FILLER
                };
                if u.participant != "ivr" && rng.chance(0.5) {
                    self.sentence(set, voice, &[], None, rng)
                } else {
                    (self.free_sentence(voice, rng), 0, None)
                }
            })
            .collect();
        for s in special {
            let at = rng.below(sentences.len() + 1);
            sentences.insert(at, s);
        }
        if media == Media::Email {
            sentences.insert(0, self.sentence(GREETINGS, voice, &[], None, rng));
            sentences.push(self.sentence(SIGNOFFS, voice, &[], None, rng));
        }
        join(sentences)
    }

    /// A scenario's sentence of sign `sign` naming `products` (one), a customer's or an agent's
    /// (agents only retell negatively; otherwise they get a customer's sentence).
    fn story_sentence(
        &self,
        sign: i8,
        agent: bool,
        voice: bool,
        products: &[usize],
        rng: &mut Rng,
    ) -> Sentence {
        let set = match (sign > 0, agent) {
            (false, true) => 2,
            (positive, _) => usize::from(positive),
        };
        match rng.pick(&self.story_templates[set]) {
            Some(tpl) => (
                self.render(tpl.text, voice, products, None, rng),
                tpl.sentiment,
                tpl.topic,
            ),
            None => (String::new(), 0, None),
        }
    }

    /// A planted utterance: one sentence of sign `sign` naming `u.mentions[0]` (an email gets a
    /// greeting and a sign-off around it).
    fn planted_utterance(
        &self,
        media: Media,
        u: &Planned,
        sign: i8,
        rng: &mut Rng,
    ) -> (String, Label) {
        let voice = media == Media::Voice;
        let mut sentences: Vec<Sentence> = Vec::new();
        if media == Media::Email {
            sentences.push(self.sentence(GREETINGS, voice, &[], None, rng));
        }
        sentences.push(self.story_sentence(sign, false, voice, &u.mentions, rng));
        if media == Media::Email {
            sentences.push(self.sentence(SIGNOFFS, voice, &[], None, rng));
        }
        join(sentences)
    }

    /// A voice-style sentence with a redaction tag such as `[card number]`, as Sensitive Data
    /// Redaction leaves in an STA transcript; it never contains a product word. `None` when the
    /// dictionary bans every tag.
    pub(crate) fn redaction_phrase(&self, rng: &mut Rng) -> Option<String> {
        if self.pii_tags.is_empty() {
            return None;
        }
        let tpl = rng.pick(PII)?;
        Some(self.render(tpl.text, true, &[], None, rng)).filter(|s| !s.is_empty())
    }

    /// Random vocabulary words (empty only if the dictionary bans the whole vocabulary).
    fn free_sentence(&self, voice: bool, rng: &mut Rng) -> String {
        let n = rng.between(4, 10);
        let mut words: Vec<String> = (0..n)
            .filter_map(|_| rng.pick(&self.vocab).map(|w| w.to_string()))
            .collect();
        if !voice {
            if let Some(first) = words.first_mut() {
                *first = capitalize(first);
            }
            if let Some(last) = words.last_mut() {
                last.push(if rng.chance(0.2) { '?' } else { '.' });
            }
        }
        words.join(" ")
    }

    fn render(
        &self,
        tpl: &str,
        voice: bool,
        products: &[usize],
        near: Option<&str>,
        rng: &mut Rng,
    ) -> String {
        let mut products = products.iter();
        let mut parts: Vec<String> = Vec::new();
        for tok in self.templates.get(tpl).map(Vec::as_slice).unwrap_or(&[]) {
            let (mut text, post) = match tok {
                Tok::Lit { cased, voice: v } => (if voice { v.clone() } else { cased.clone() }, ""),
                Tok::Filler { cap, post } => {
                    let w = rng.pick(&self.vocab).copied().unwrap_or("");
                    (
                        if *cap && !voice {
                            capitalize(w)
                        } else {
                            w.to_string()
                        },
                        post.as_str(),
                    )
                }
                Tok::Slot {
                    slot: Slot::Near,
                    post,
                } => (near.unwrap_or("").to_string(), post.as_str()),
                Tok::Slot {
                    slot: Slot::Pii,
                    post,
                } if self.raw_pii && !voice => (
                    rng.pick(RAW_PII).map(|p| p.1).unwrap_or("").to_string(),
                    post.as_str(),
                ),
                Tok::Slot {
                    slot: Slot::Pii,
                    post,
                } => (
                    rng.pick(&self.pii_tags).copied().unwrap_or("").to_string(),
                    post.as_str(),
                ),
                Tok::Slot { slot, post } => match products.next() {
                    Some(&p) => (self.mention(p, *slot, voice, rng), post.as_str()),
                    None => (String::new(), post.as_str()),
                },
            };
            if !voice {
                text.push_str(post);
            }
            if !text.is_empty() {
                parts.push(text);
            }
        }
        debug_assert!(
            products.next().is_none(),
            "template {tpl:?} has fewer slots than products"
        );
        parts.join(" ")
    }

    fn surface(&self, product: usize, rng: &mut Rng) -> Option<&Surface> {
        let surfaces = &self.products.get(product)?.surfaces;
        if surfaces.len() > 1 && rng.chance(0.3) {
            rng.pick(&surfaces[1..])
        } else {
            surfaces.first()
        }
    }

    /// A mention: dictionary spelling in cased text, randomly split or joined words in voice.
    fn mention(&self, product: usize, slot: Slot, voice: bool, rng: &mut Rng) -> String {
        let Some(s) = self.surface(product, rng) else {
            return String::new();
        };
        if voice {
            let mut out = String::new();
            for (k, w) in s.words.iter().enumerate() {
                if k > 0 && rng.chance(0.5) {
                    out.push(' ');
                }
                out.push_str(w);
            }
            return out;
        }
        let mut out = s.text.clone();
        match slot {
            Slot::Plural if !out.ends_with('s') => out.push('s'),
            Slot::Possessive => out.push_str("'s"),
            _ => {}
        }
        out
    }

    /// Something that looks like a product but must not be counted, or `None` if the one drawn
    /// would collide with the dictionary.
    fn near_miss(&self, voice: bool, rng: &mut Rng) -> Option<String> {
        let s = self.surface(rng.below(self.products.len()), rng)?;
        let text = match rng.below(3) {
            0 if s.words.len() >= 2 => s.words.last()?.clone(),
            2 if !voice && s.text.contains(' ') => {
                let spaces: Vec<usize> = s.text.match_indices(' ').map(|(i, _)| i).collect();
                let at = *rng.pick(&spaces)?;
                format!("{}.{}", &s.text[..at], &s.text[at..])
            }
            _ => {
                let glue = rng.pick(GLUE)?;
                let base = if voice {
                    s.words.join(" ")
                } else {
                    s.text.clone()
                };
                format!("{base}{glue}")
            }
        };
        self.count_matches(&text).is_empty().then_some(text)
    }

    /// A reference whole-word matcher: case-insensitive, words of a name may be joined or split
    /// at their boundaries, an optional plural `s`/`es` or possessive `'s`, and never across a
    /// sentence end. Returns matches per product index.
    pub(crate) fn count_matches(&self, text: &str) -> BTreeMap<usize, usize> {
        let mut counts = BTreeMap::new();
        for segment in text.split(['.', '!', '?', ';', ':']) {
            let tokens: Vec<String> = segment
                .split(|c: char| !c.is_alphanumeric())
                .filter(|t| !t.is_empty())
                .map(str::to_lowercase)
                .collect();
            let mut k = 0;
            'next: while k < tokens.len() {
                for w in (1..=self.max_window.min(tokens.len() - k)).rev() {
                    if let Some(p) = self.match_window(&tokens[k..k + w]) {
                        *counts.entry(p).or_insert(0) += 1;
                        k += w;
                        continue 'next;
                    }
                }
                k += 1;
            }
        }
        counts
    }

    fn match_window(&self, tokens: &[String]) -> Option<usize> {
        let concat = tokens.concat();
        let mut ends = Vec::new();
        let mut at = 0;
        for t in &tokens[..tokens.len().saturating_sub(1)] {
            at += t.len();
            ends.push(at);
        }
        let bases = [
            Some(concat.as_str()),
            concat.strip_suffix('s'),
            concat.strip_suffix("es"),
        ];
        for base in bases.into_iter().flatten() {
            for f in self.forms.get(base).into_iter().flatten() {
                if ends
                    .iter()
                    .all(|e| f.bounds.contains(e) || *e == f.joined.len())
                {
                    return Some(f.product);
                }
            }
        }
        None
    }
}

/// The text of an utterance (its non-empty sentences, space-separated) and its labels.
fn join(mut sentences: Vec<Sentence>) -> (String, Label) {
    sentences.retain(|s| !s.0.is_empty());
    let sum: i32 = sentences.iter().map(|s| i32::from(s.1)).sum();
    let label = Label {
        sentiment: sum.signum() as i8,
        topic: sentences.iter().find_map(|s| s.2),
    };
    let text: Vec<String> = sentences.into_iter().map(|s| s.0).collect();
    (text.join(" "), label)
}

fn capitalize(w: &str) -> String {
    let mut c = w.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::{Scenario, SimProduct};

    pub(crate) fn products() -> Vec<SimProduct> {
        let p = |name: &str, aliases: &[&str]| SimProduct {
            name: name.into(),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
        };
        vec![
            p("Acme Router", &["acme wifi router"]),
            p("Quantum Headset", &["quantum headphones"]),
            p("CloudPhone Pro", &["cloud fone pro"]),
            p("Agent Assist Suite", &[]),
            p("Nimbus Hub", &[]),
            p("StreamBox Mini", &["stream box mini"]),
        ]
    }

    #[test]
    fn an_outline_is_the_conversation_without_its_text() {
        let gen = Generator::new(&cfg(200));
        for i in 0..200 {
            let (full, outline) = (gen.conversation(i), gen.outline(i));
            assert_eq!(
                (&full.id, full.start, full.media),
                (&outline.id, outline.start, outline.media)
            );
            let speakers = |c: &Conversation| {
                c.interactions
                    .iter()
                    .map(|it| (it.participant, it.timestamp))
                    .collect::<Vec<_>>()
            };
            assert_eq!(speakers(&full), speakers(&outline));
            assert!(outline
                .interactions
                .iter()
                .all(|it| it.transcript.is_empty()));
        }
    }

    fn cfg(n: usize) -> SimConfig {
        let mut cfg = SimConfig::new(products());
        cfg.conversations = n;
        cfg.start = NaiveDate::from_ymd_opt(2024, 3, 1).unwrap_or_default();
        cfg
    }

    #[test]
    fn realistic_lengths_span_the_contact_center_ranges() {
        let mut c = cfg(2000);
        c.lengths = Lengths::Realistic;
        let gen = Generator::new(&c);
        let mut seen: HashMap<&str, (usize, usize)> = HashMap::new();
        for i in 0..gen.len() {
            let conv = gen.conversation(i);
            let n = conv.interactions.len();
            let e = seen.entry(conv.media.as_str()).or_insert((usize::MAX, 0));
            *e = (e.0.min(n), e.1.max(n));
        }
        let (lo, hi) = seen["voice"];
        assert!(
            (20..30).contains(&lo) && (181..=200).contains(&hi),
            "voice {lo}..{hi}"
        );
        let (lo, hi) = seen["chat"];
        assert!(
            (5..10).contains(&lo) && (51..=60).contains(&hi),
            "chat {lo}..{hi}"
        );
        let (lo, hi) = seen["email"];
        assert!(lo == 1 && hi == 5, "email {lo}..{hi}");
        let short = Generator::new(&cfg(2000));
        let longest = (0..short.len())
            .map(|i| short.conversation(i).interactions.len())
            .max();
        assert_eq!(longest, Some(40));
    }

    #[test]
    fn deterministic_and_seed_dependent() {
        let c = cfg(200);
        assert_eq!(conversation(&c, 17), conversation(&c, 17));
        let mut other = c.clone();
        other.seed = 7;
        assert_ne!(conversation(&c, 17), conversation(&other, 17));
    }

    #[test]
    fn starts_are_increasing_and_inside_the_period() {
        let c = cfg(1000);
        let gen = Generator::new(&c);
        let end = gen.origin + Duration::days(30);
        let mut prev = gen.origin - Duration::milliseconds(1);
        for i in 0..gen.len() {
            let s = gen.start(i);
            assert!(s > prev && s < end, "index {i}: {s}");
            prev = s;
        }
        let from = gen.origin + Duration::days(3);
        let to = gen.origin + Duration::days(5);
        let r = gen.index_range(from, to);
        assert!(r.clone().all(|i| gen.start(i) >= from && gen.start(i) < to));
        assert!(gen.start(r.start - 1) < from && gen.start(r.end) >= to);
    }

    #[test]
    fn mentions_are_exactly_what_a_whole_word_matcher_finds() {
        // Includes a dictionary that bans common words, so the filter is exercised.
        let mut tricky = products();
        tricky.push(SimProduct {
            name: "Account Helper".into(),
            aliases: vec!["Order Box".into()],
        });
        tricky.push(SimProduct {
            name: "Card".into(),
            aliases: vec![],
        });
        // And the scenario's planted and retold sentences.
        let scenarios = [Scenario::Flat, Scenario::OutageAndLaunch];
        for (prods, scenario) in [products(), tricky]
            .into_iter()
            .flat_map(|p| scenarios.map(|s| (p.clone(), s)))
        {
            let mut c = cfg(400);
            c.products = prods;
            c.scenario = scenario;
            let gen = Generator::new(&c);
            let (mut with, mut near) = (0, 0);
            for i in 0..gen.len() {
                let conv = gen.conversation(i);
                let mut found: BTreeMap<String, usize> = BTreeMap::new();
                for it in &conv.interactions {
                    for (p, n) in gen.count_matches(&it.transcript) {
                        *found.entry(gen.products[p].canonical.clone()).or_insert(0) += n;
                    }
                }
                let expected: BTreeMap<String, usize> = conv.mentions.iter().cloned().collect();
                assert_eq!(
                    found, expected,
                    "conversation {i}: {:#?}",
                    conv.interactions
                );
                with += usize::from(!conv.mentions.is_empty());
                near += usize::from(gen.plan(i).utterances.iter().any(|u| u.near_miss));
            }
            assert!((180..300).contains(&with), "{with} of 400 mention products");
            assert!(near > 50);
        }
    }

    #[test]
    fn vocabulary_never_contains_product_words() {
        let mut c = cfg(10);
        c.products.push(SimProduct {
            name: "HelpDesk".into(),
            aliases: vec!["Order".into()],
        });
        let gen = Generator::new(&c);
        for w in ["help", "order", "account"] {
            assert_eq!(gen.vocab.contains(&w), w == "account");
        }
        assert!(gen
            .vocab
            .iter()
            .all(|w| !w.contains("pro") && !w.contains("box")));
        assert!(!gen.vocab.contains(&"agent") && gen.vocab.len() > 200);
    }

    #[test]
    fn voice_is_lowercase_without_punctuation_and_text_is_cased() {
        let gen = Generator::new(&cfg(300));
        let mut media = BTreeMap::new();
        for i in 0..gen.len() {
            let conv = gen.conversation(i);
            *media.entry(conv.media).or_insert(0) += 1;
            for it in &conv.interactions {
                let t = &it.transcript;
                assert!(!t.is_empty() && !t.contains("  "), "{t:?}");
                if conv.media == Media::Voice {
                    assert!(
                        t.chars()
                            .all(|c| c == ' ' || c.is_lowercase() || c.is_numeric()),
                        "{t:?}"
                    );
                } else {
                    assert!(
                        t.ends_with(['.', '?']) && t.contains(char::is_uppercase),
                        "{t:?}"
                    );
                }
            }
            assert!(conv
                .interactions
                .windows(2)
                .all(|w| w[0].timestamp < w[1].timestamp));
        }
        assert!(media.values().all(|n| *n > 20), "{media:?}");
    }

    /// Everything a client reads of the first 300 conversations of a fixed configuration: ids,
    /// times, media, speakers and text. Pinned on the generator as it was before sentiment labels
    /// and scenarios came in: the flat scenario must not move a byte.
    fn flat_digest(c: &SimConfig) -> String {
        let gen = Generator::new(c);
        let mut h = blake3::Hasher::new();
        for i in 0..300 {
            let conv = gen.conversation(i);
            h.update(format!("{}|{}|{}\n", conv.id, conv.start, conv.media.as_str()).as_bytes());
            for it in &conv.interactions {
                let line = format!("{}|{}|{}\n", it.participant, it.timestamp, it.transcript);
                h.update(line.as_bytes());
            }
        }
        h.finalize().to_hex().to_string()
    }

    #[test]
    fn the_flat_text_never_moves() {
        let mut c = cfg(300);
        c.lengths = Lengths::Realistic;
        assert_eq!(
            flat_digest(&c),
            "176a58ce8ad6853631687bf047b3d030a3c561f70e581fffadf5230e62deb19f"
        );
        assert_eq!(
            flat_digest(&cfg(300)),
            "48b8638ba2ca1039a5da0deb9e234cd19adf17a842cd5509a5331c476537c071"
        );
    }

    fn story(n: usize) -> SimConfig {
        let mut c = cfg(n);
        c.scenario = Scenario::OutageAndLaunch;
        c
    }

    /// Mentions per day (index from the start) of product `p`, all media.
    fn daily(c: &SimConfig, p: &str) -> Vec<u64> {
        let truth = ground_truth(c, c.start, c.start + Duration::days(30), &[]);
        let mut out = vec![0; 30];
        for ((date, _, product), (n, _)) in &truth.rows {
            if product == p {
                out[(*date - c.start).num_days() as usize] += n;
            }
        }
        out
    }

    /// Mentions per media of product `p` per day over 30 days, `[day][media]` in
    /// [`Media::ALL`] order.
    fn daily_by_media(c: &SimConfig, p: &str) -> Vec<[u64; 4]> {
        let truth = ground_truth(c, c.start, c.start + Duration::days(30), &[]);
        let mut out = vec![[0; 4]; 30];
        for ((date, media, product), (n, _)) in &truth.rows {
            if product == p {
                let m = Media::parse(media).map_or(0, |m| m as usize);
                out[(*date - c.start).num_days() as usize][m] += n;
            }
        }
        out
    }

    fn mean(xs: &[u64]) -> f64 {
        xs.iter().sum::<u64>() as f64 / xs.len().max(1) as f64
    }

    /// (mentions of product `p`, those in utterances labelled `sign`) on days `days` (from the
    /// start), conversations with text only.
    fn labelled_mentions(c: &SimConfig, p: usize, days: Range<i64>, sign: i8) -> (usize, usize) {
        let gen = Generator::new(c);
        let (mut all, mut signed) = (0, 0);
        let day = |d: i64| {
            (c.start + Duration::days(d))
                .and_time(chrono::NaiveTime::MIN)
                .and_utc()
        };
        for i in gen.index_range(day(days.start), day(days.end)) {
            if !gen.has_text(i) {
                continue;
            }
            let (conv, labels) = gen.labelled(i);
            for (it, l) in conv.interactions.iter().zip(&labels) {
                let n = gen
                    .count_matches(&it.transcript)
                    .get(&p)
                    .copied()
                    .unwrap_or(0);
                all += n;
                signed += if l.sentiment == sign { n } else { 0 };
            }
        }
        (all, signed)
    }

    #[test]
    fn the_outage_triples_its_product_in_negative_sentences() {
        let c = story(3000);
        let names: Vec<String> = products().into_iter().map(|p| p.name).collect();
        let days = daily(&c, &names[0]);
        let (before, outage) = (mean(&days[..27]), mean(&days[27..]));
        let ratio = outage / before;
        assert!((2.4..=3.6).contains(&ratio), "{ratio}: {days:?}");
        // Every media, on ten times the conversations (email alone is a few mentions a day).
        let mut by_media = [[0u64; 2]; 4];
        for (d, row) in daily_by_media(&story(30_000), &names[0]).iter().enumerate() {
            for m in 0..4 {
                by_media[m][usize::from(d >= 27)] += row[m];
            }
        }
        for (m, [before, outage]) in Media::ALL.iter().zip(by_media) {
            let r = (outage as f64 / 3.0) / (before as f64 / 27.0);
            assert!((2.4..=3.6).contains(&r), "{}: {r}", m.as_str());
        }
        let (all, negative) = labelled_mentions(&c, 0, 27..30, -1);
        assert!(negative * 4 >= all * 3, "{negative} of {all} negative");
        // Before the outage it is mentioned as in the flat data.
        assert_eq!(days[..27], daily(&cfg(3000), &names[0])[..27]);
    }

    #[test]
    fn the_launch_rises_every_day_in_positive_sentences() {
        let c = story(3000);
        let launched = &products()[1].name;
        let days = daily(&c, launched);
        let early = mean(&days[..23]);
        assert!(days[29] as f64 >= 2.4 * early, "{early}: {days:?}");
        // On average over seeds, each of the last seven days has more mentions than the one
        // before (the expected rise is a quarter of a flat day a day).
        let mut sum = vec![0u64; 30];
        for seed in 100..120 {
            let mut c = c.clone();
            c.seed = seed;
            for (s, d) in sum.iter_mut().zip(daily(&c, launched)) {
                *s += d;
            }
        }
        let flat_mean = mean(&sum[..23]);
        for d in 23..30 {
            assert!(sum[d] > sum[d - 1], "day {d}: {sum:?}");
            let expected = flat_mean * (1.5 + 0.25 * (d - 23) as f64);
            let r = sum[d] as f64 / expected;
            assert!((0.85..1.15).contains(&r), "day {d}: {r}");
        }
        // Its positive share rises.
        let (all, positive) = labelled_mentions(&c, 1, 0..23, 1);
        let (all_last, positive_last) = labelled_mentions(&c, 1, 27..30, 1);
        let (early_share, late_share) = (
            positive as f64 / all as f64,
            positive_last as f64 / all_last as f64,
        );
        assert!(
            late_share > early_share + 0.3,
            "{early_share} -> {late_share}"
        );
    }

    #[test]
    fn products_no_event_names_are_exactly_as_in_the_flat_data() {
        let (flat, story_cfg) = (cfg(3000), story(3000));
        let (f, g) = (Generator::new(&flat), Generator::new(&story_cfg));
        for p in products().iter().skip(2) {
            assert_eq!(
                daily_by_media(&flat, &p.name),
                daily_by_media(&story_cfg, &p.name)
            );
        }
        let (mut planted, mut retold) = (0, 0);
        for i in 0..g.len() {
            let (a, la) = f.labelled(i);
            let (b, lb) = g.labelled(i);
            assert_eq!((&a.id, a.start, a.media), (&b.id, b.start, b.media));
            assert_eq!(g.end(i), f.end(i), "conversation {i} ends as before");
            let mut k = 0;
            for (it, l) in b.interactions.iter().zip(&lb) {
                if a.interactions.get(k).map(|x| x.timestamp) != Some(it.timestamp) {
                    // Planted: one customer sentence naming the outage's or the launch's product.
                    planted += 1;
                    assert_eq!(it.participant, "customer");
                    let found = g.count_matches(&it.transcript);
                    assert!(
                        found == [(0, 1)].into() || found == [(1, 1)].into(),
                        "{it:?}"
                    );
                    continue;
                }
                let flat_it = &a.interactions[k];
                if flat_it.transcript != it.transcript {
                    // Retold: it named the outage's product only, and now complains.
                    retold += 1;
                    let found = f.count_matches(&flat_it.transcript);
                    assert_eq!(found.keys().collect::<Vec<_>>(), [&0], "{flat_it:?}");
                    assert_eq!(g.count_matches(&it.transcript), found);
                    assert!(l.sentiment <= la[k].sentiment);
                } else {
                    assert_eq!(la[k], *l, "{it:?}");
                }
                k += 1;
            }
            assert_eq!(
                k,
                a.interactions.len(),
                "conversation {i} kept every utterance"
            );
        }
        assert!(
            planted > 500 && retold > 50,
            "{planted} planted, {retold} retold"
        );
    }

    #[test]
    fn the_planted_events_are_what_the_data_shows() {
        let c = story(300);
        let day = |n: i64| c.start + Duration::days(n);
        let events = planted_events(&c);
        assert_eq!(
            events,
            [
                PlantedEvent {
                    kind: "outage".into(),
                    product: "Acme Router".into(),
                    from: day(27),
                    to: day(29),
                    factor: 3.0,
                    sentiment: -1,
                    topic: Some("connectivity".into()),
                },
                PlantedEvent {
                    kind: "launch".into(),
                    product: "Quantum Headset".into(),
                    from: day(23),
                    to: day(29),
                    factor: 3.0,
                    sentiment: 1,
                    topic: None,
                },
            ]
        );
        assert_eq!(
            events[0].to_string(),
            "outage of Acme Router on 2024-03-28..2024-03-30: mentions x3, negative, topic connectivity"
        );
        assert!(planted_events(&cfg(300)).is_empty());
        // Two products: no story, the flat data.
        let mut two = story(300);
        two.products.truncate(2);
        assert!(planted_events(&two).is_empty());
        let mut flat_two = cfg(300);
        flat_two.products.truncate(2);
        let (a, b) = (Generator::new(&two), Generator::new(&flat_two));
        assert!((0..300).all(|i| a.conversation(i) == b.conversation(i)));
    }

    #[test]
    fn story_sentences_keep_their_sentiment_words_and_say_no_negation() {
        let shipped = SimProduct::of_dictionary(&crate::extract::Dictionary::embedded());
        for prods in [products(), shipped] {
            let mut c = story(10);
            c.products = prods;
            let gen = Generator::new(&c);
            let sets = [
                (STORY_NEGATIVE, NEGATIVE_WORDS),
                (STORY_POSITIVE, POSITIVE_WORDS),
                (STORY_AGENT_NEGATIVE, NEGATIVE_WORDS),
            ];
            for (k, (set, words)) in sets.into_iter().enumerate() {
                assert_eq!(gen.story_templates[k].len(), set.len());
                for tpl in set {
                    assert!(!tpl.text.contains(" not bad") && (tpl.sentiment > 0) == (k == 1));
                    let mut rng = Rng::stream(1, 2, 3);
                    for voice in [true, false] {
                        let text = gen.render(tpl.text, voice, &[0], None, &mut rng);
                        let said: Vec<String> = text
                            .split(|ch: char| !ch.is_alphanumeric())
                            .map(str::to_lowercase)
                            .collect();
                        assert!(words.iter().any(|w| said.iter().any(|s| s == w)), "{text}");
                        if let Some(t) = tpl.topic {
                            assert!(text.to_lowercase().contains(t.phrase), "{text}");
                        }
                    }
                }
                if k == 1 {
                    assert!(set.iter().all(|t| !t.text.contains(" not ")));
                }
            }
        }
    }

    #[test]
    fn labels_are_signs_per_utterance_and_follow_the_templates() {
        let c = cfg(300);
        let gen = Generator::new(&c);
        let mut seen = [0; 3];
        for i in 0..gen.len() {
            let (conv, labels) = gen.labelled(i);
            assert_eq!(labels.len(), conv.interactions.len());
            assert_eq!(
                utterance_labels(&c, i),
                labels.iter().map(|l| l.sentiment).collect::<Vec<_>>()
            );
            for (it, l) in conv.interactions.iter().zip(&labels) {
                seen[(l.sentiment + 1) as usize] += 1;
                // A sentence that thanks is positive, one that says it was late negative.
                if it.transcript == "Thank you for your help." {
                    assert_eq!(l.sentiment, 1);
                }
                if it.transcript == "The delivery was late again." {
                    assert_eq!(l.sentiment, -1);
                    assert_eq!(l.topic.map(|t| t.name), Some("delivery"));
                }
            }
        }
        assert!(seen.iter().all(|n| *n > 200), "{seen:?}");
    }

    #[test]
    fn ground_truth_is_the_sum_of_mentions() {
        let c = cfg(500);
        let gen = Generator::new(&c);
        let (from, to) = (c.start + Duration::days(2), c.start + Duration::days(9));
        let truth = ground_truth(&c, from, to, &["voice", "chat"]);
        let mut expected = GroundTruth::default();
        for i in 0..gen.len() {
            let conv = gen.conversation(i);
            let date = conv.start.date_naive();
            if date < from || date >= to || !matches!(conv.media, Media::Voice | Media::Chat) {
                continue;
            }
            for (p, n) in conv.mentions {
                let row = expected
                    .rows
                    .entry((date, conv.media.as_str().into(), p))
                    .or_default();
                row.0 += n as u64;
                row.1 += 1;
            }
        }
        assert!(!truth.rows.is_empty());
        assert_eq!(truth, expected);
        let all = ground_truth(&c, c.start, c.start + Duration::days(30), &[]);
        assert!(
            all.totals_by_product().values().sum::<u64>()
                > truth.totals_by_product().values().sum()
        );
    }
}
