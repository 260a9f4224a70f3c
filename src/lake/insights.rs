//! Product insights: for each product and each of the latest complete day and week, its
//! mentions against a baseline of the 28 days before, and its share of negative mentions
//! against the baseline's; only changes beyond chance are flagged (`spike`, `drop`,
//! `sentiment_shift`: the negative share rose).
//!
//! - **Windows.** `day`: the latest complete day `D`; its baseline the same weekday in each of
//!   the four weeks before (`D−7`, `D−14`, `D−21`, `D−28`), so a Monday is compared with
//!   Mondays. `week`: `D−6…D`; its baseline `D−34…D−7` (four whole weeks, the same weekday mix).
//!   Baseline days before the lake's first day are not counted.
//! - **Counts.** What is counted is conversations that mention the product, not mentions: one
//!   conversation's mentions come together (a customer who names a product names it again), so
//!   mention counts vary more than a Poisson count and would flag noise. The exposure of a set
//!   of days is its conversations with text (all products, all types). With `x₁` conversations
//!   over exposure `t₁` and `x₀` over `t₀`, under "the rate per conversation did not change" `x₁` given `n = x₁ + x₀` is Binomial(n, t₁/(t₁+t₀)) (the
//!   exact conditional test of two Poisson rates, exposure-weighted); the p-value is two-sided
//!   (the outcomes no likelier than `x₁`). The rate ratio `(x₁/t₁)/(x₀/t₀)` has the log-scale
//!   95% interval.
//! - **Negative share.** Negative mentions among the scored ones, window against baseline:
//!   the two-proportion z-test (pooled), one-sided (a `sentiment_shift` is the share rising:
//!   customers unhappier; a share falling is not an alarm), its variance inflated by the mentions per
//!   conversation (the design effect of clustered mentions at its largest); flagged only when
//!   the share moved by at least [`MIN_SHARE_CHANGE`].
//! - **Across products, windows and kinds** the p-values are adjusted together with
//!   Benjamini–Hochberg; a finding is flagged when its q-value is below [`ALPHA`] and it has
//!   enough data: [`MIN_COUNT`] mentions in window and baseline together (and at least one in
//!   the baseline), [`MIN_SCORED`] scored mentions on each side for a sentiment shift.
//!
//! Deterministic: the same rows give the same insights, in the same order.

use std::collections::BTreeMap;

use chrono::{Days, NaiveDate};

use super::examples::{date_literal, examples, ints, literal, strings};
use super::stats::benjamini_hochberg;

/// The false-discovery rate at which findings are flagged.
pub const ALPHA: f64 = 0.05;
/// Mentions in window and baseline together below which a product's count is not tested.
pub const MIN_COUNT: u64 = 10;
/// Scored mentions each side needs before a negative-share shift is tested.
pub const MIN_SCORED: u64 = 10;
/// Days of baseline before each window.
pub const BASELINE_DAYS: u64 = 28;
/// The smallest change of the negative share (in share points: 0.10 is ten percentage points)
/// flagged as a sentiment shift: a smaller one is not news to a product manager even when it is
/// beyond chance.
pub const MIN_SHARE_CHANGE: f64 = 0.10;

/// One product's counts on one day (all interaction types).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DayCounts {
    pub mentions: u64,
    /// Conversations that mention the product (each counted once a day).
    pub conversations: u64,
    pub negative: u64,
    /// Mentions with a sentiment (positive, negative or neutral).
    pub scored: u64,
}

/// A window an insight is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Window {
    Day,
    Week,
}

impl Window {
    pub fn as_str(self) -> &'static str {
        match self {
            Window::Day => "day",
            Window::Week => "week",
        }
    }

    /// The window's days and its baseline's (both inclusive) for the latest complete day `d`.
    fn days(self, d: NaiveDate) -> (Vec<NaiveDate>, Vec<NaiveDate>) {
        let back = |n: u64| d.checked_sub_days(Days::new(n));
        match self {
            Window::Day => (vec![d], (1..=4).filter_map(|k| back(7 * k)).collect()),
            Window::Week => (
                (0..7).rev().filter_map(back).collect(),
                (7..7 + BASELINE_DAYS).rev().filter_map(back).collect(),
            ),
        }
    }
}

/// A flagged change.
#[derive(Clone, Debug, PartialEq)]
pub struct Insight {
    /// `spike`, `drop` or `sentiment_shift`.
    pub kind: &'static str,
    pub product: String,
    pub window: Window,
    /// The window's first and last day.
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Conversations mentioning the product in the window, or its negative share of scored
    /// mentions (0…1) for a sentiment shift.
    pub value: f64,
    /// What the baseline predicts for the window: conversations at the baseline's rate per
    /// conversation with text, times the window's conversations; or the baseline's negative
    /// share.
    pub baseline: f64,
    /// Window over baseline (rates, or shares) with its 95% interval.
    pub ratio: f64,
    pub low: f64,
    pub high: f64,
    pub p_value: f64,
    pub q_value: f64,
    /// The counts behind it: (window, baseline) mentions, or (window, baseline) scored mentions.
    pub counts: (u64, u64),
    /// Whether the change is beyond chance and large enough to report (see the module's rules);
    /// `product_insights` keeps every test, flagged or not.
    pub flagged: bool,
    /// Up to five utterances of the window that mention the product (the negative ones for a
    /// sentiment shift), for a flagged insight; filled by the caller from the lake
    /// ([`insight_examples`]), empty here.
    pub examples: Vec<super::examples::Example>,
    /// For a flagged insight, the Speech and Text Analytics topic detected in the utterances
    /// that mention the product in most of the window's conversations: (topic, its
    /// conversations, the conversations whose mentions carry any topic); `None` when none does
    /// (filled by the caller, like `examples`).
    pub topic: Option<(String, u64, u64)>,
}

impl Insight {
    /// The finding in plain words, e.g. "Acme Router mentions ×3.1 (95% CI 2.4–4.0) on
    /// 2026-11-30: 62 against 20 expected from the 4 same weekdays before (p = 2e-12)".
    pub fn headline(&self) -> String {
        let base = self.headline_numbers();
        match &self.topic {
            Some((topic, n, of)) => {
                format!("{base}; top topic {topic} ({n} of {of} conversations whose mentions carry one)")
            }
            None => base,
        }
    }

    /// The headline without the topic.
    fn headline_numbers(&self) -> String {
        let when = if self.from == self.to {
            format!("on {}", self.from)
        } else {
            format!("in {}…{}", self.from, self.to)
        };
        match self.kind {
            "sentiment_shift" => format!(
                "{} negative share {:.0}% {when}, against {:.0}% in the 28 days before ({} and {} scored mentions; ×{:.2}, 95% CI {:.2}–{:.2}; p = {:.2e}, q = {:.2e})",
                self.product,
                self.value * 100.0,
                self.baseline * 100.0,
                self.counts.0,
                self.counts.1,
                self.ratio,
                self.low,
                self.high,
                self.p_value,
                self.q_value
            ),
            kind => format!(
                "{} {} ×{:.2} (95% CI {:.2}–{:.2}) {when}: {} conversations mention it against {:.1} expected from the 28 days before ({} mentions; p = {:.2e}, q = {:.2e})",
                self.product,
                if kind == "spike" { "up" } else { "down" },
                self.ratio,
                self.low,
                self.high,
                self.value,
                self.baseline,
                self.counts.0,
                self.p_value,
                self.q_value
            ),
        }
    }
}

/// `ln(e^x + e^y)` without overflow.
fn log_add(x: f64, y: f64) -> f64 {
    let (hi, lo) = if x > y { (x, y) } else { (y, x) };
    if lo == f64::NEG_INFINITY {
        return hi;
    }
    hi + (lo - hi).exp().ln_1p()
}

/// `ln Γ(x)` for x > 0 (Lanczos, g = 7), for binomial coefficients of large counts.
fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + 7.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The exact two-sided p-value of `k` successes in Binomial(n, p): the total probability of
/// the outcomes no likelier than `k` (with a relative tolerance for ties).
pub fn binomial_two_sided(k: u64, n: u64, p: f64) -> f64 {
    if n == 0 || !(0.0..=1.0).contains(&p) {
        return 1.0;
    }
    if p == 0.0 || p == 1.0 {
        let certain = if p == 0.0 { 0 } else { n };
        return if k == certain { 1.0 } else { 0.0 };
    }
    let (lp, lq) = (p.ln(), (1.0 - p).ln());
    let ln_n = ln_gamma(n as f64 + 1.0);
    let log_pmf = |i: u64| {
        ln_n - ln_gamma(i as f64 + 1.0) - ln_gamma((n - i) as f64 + 1.0)
            + i as f64 * lp
            + (n - i) as f64 * lq
    };
    let at = log_pmf(k) + 1e-7;
    let mut total = f64::NEG_INFINITY;
    for i in 0..=n {
        let l = log_pmf(i);
        if l <= at {
            total = log_add(total, l);
        }
    }
    total.exp().min(1.0)
}

/// The complementary error function (Abramowitz & Stegun 7.1.26; absolute error below 1.5e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let r = poly * (-z * z).exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// The two-sided p-value that `k1` of `n1` and `k0` of `n0` come from one proportion (the
/// pooled two-proportion z-test).
pub fn two_proportion_p(k1: u64, n1: u64, k0: u64, n0: u64) -> f64 {
    two_proportion_p_inflated(k1, n1, k0, n0, 1.0)
}

/// [`two_proportion_p`] with the variance multiplied by `deff` (clustered observations).
pub fn two_proportion_p_inflated(k1: u64, n1: u64, k0: u64, n0: u64, deff: f64) -> f64 {
    if n1 == 0 || n0 == 0 {
        return 1.0;
    }
    let (p1, p0) = (k1 as f64 / n1 as f64, k0 as f64 / n0 as f64);
    let pooled = (k1 + k0) as f64 / (n1 + n0) as f64;
    let se = (deff.max(1.0) * pooled * (1.0 - pooled) * (1.0 / n1 as f64 + 1.0 / n0 as f64)).sqrt();
    if se == 0.0 {
        return 1.0;
    }
    erfc(((p1 - p0) / se).abs() / std::f64::consts::SQRT_2).min(1.0)
}

/// The ratio of two rates or shares with its log-scale 95% interval (`a/ta` over `b/tb`, with
/// `a`, `b` the counts); `None` when a count is 0.
fn ratio_interval(a: u64, ta: f64, b: u64, tb: f64) -> Option<(f64, f64, f64)> {
    if a == 0 || b == 0 {
        return None;
    }
    let ratio = (a as f64 / ta) / (b as f64 / tb);
    let half = 1.96 * (1.0 / a as f64 + 1.0 / b as f64).sqrt();
    Some((ratio, (ratio.ln() - half).exp(), (ratio.ln() + half).exp()))
}

/// The flagged insights of per-product daily counts (see [`all_tests`]).
pub fn insights(
    counts: &BTreeMap<String, BTreeMap<NaiveDate, DayCounts>>,
    exposure: &BTreeMap<NaiveDate, u64>,
    first: NaiveDate,
    last: NaiveDate,
) -> Vec<Insight> {
    let mut all = all_tests(counts, exposure, first, last);
    all.retain(|i| i.flagged);
    all
}

/// Every test of per-product daily counts (flagged or not), for the latest complete day `last`
/// of a lake whose first day is `first`. Ordered by window (day first), kind, then product.
pub fn all_tests(
    counts: &BTreeMap<String, BTreeMap<NaiveDate, DayCounts>>,
    exposure: &BTreeMap<NaiveDate, u64>,
    first: NaiveDate,
    last: NaiveDate,
) -> Vec<Insight> {
    // Every test of the report, before the adjustment: (kind is a rate test, product, window,
    // from, to, window counts, baseline counts, window days, baseline days, p-value).
    struct Test<'a> {
        rate: bool,
        product: &'a String,
        window: Window,
        from: NaiveDate,
        to: NaiveDate,
        w: DayCounts,
        b: DayCounts,
        t1: f64,
        t0: f64,
        p: f64,
    }
    let mut tests: Vec<Test<'_>> = Vec::new();
    for window in [Window::Day, Window::Week] {
        let (days, base) = window.days(last);
        let base: Vec<NaiveDate> = base.into_iter().filter(|d| *d >= first).collect();
        if base.is_empty() || days.first().is_none_or(|d| *d < first) {
            continue;
        }
        let weight = |which: &[NaiveDate]| {
            which
                .iter()
                .map(|d| exposure.get(d).copied().unwrap_or(0))
                .sum::<u64>() as f64
        };
        let (t1, t0) = (weight(&days), weight(&base));
        if t1 <= 0.0 || t0 <= 0.0 {
            continue;
        }
        let (from, to) = (days[0], days[days.len() - 1]);
        let sum = |by_day: &BTreeMap<NaiveDate, DayCounts>, which: &[NaiveDate]| {
            which.iter().fold(DayCounts::default(), |mut acc, d| {
                if let Some(c) = by_day.get(d) {
                    acc.mentions += c.mentions;
                    acc.conversations += c.conversations;
                    acc.negative += c.negative;
                    acc.scored += c.scored;
                }
                acc
            })
        };
        for (product, by_day) in counts {
            let (w, b) = (sum(by_day, &days), sum(by_day, &base));
            let test = |rate: bool, p: f64| Test {
                rate,
                product,
                window,
                from,
                to,
                w: w.clone(),
                b: b.clone(),
                t1,
                t0,
                p,
            };
            let (x1, x0) = (w.conversations, b.conversations);
            if x1 + x0 >= MIN_COUNT && x0 > 0 {
                let p = binomial_two_sided(x1, x1 + x0, t1 / (t1 + t0));
                tests.push(test(true, p));
            }
            if w.scored >= MIN_SCORED && b.scored >= MIN_SCORED {
                // Mentions come in clusters (one conversation's share a mood), so the share's
                // variance is inflated by the mentions per conversation (the design effect at
                // its largest): z / √deff.
                let deff = ((w.mentions + b.mentions) as f64 / (x1 + x0).max(1) as f64).max(1.0);
                let p = two_proportion_p_inflated(w.negative, w.scored, b.negative, b.scored, deff);
                // One-sided: a shift is the negative share rising (customers unhappier).
                let rising = w.negative * b.scored > b.negative * w.scored;
                let p = if rising { p / 2.0 } else { 1.0 - p / 2.0 };
                tests.push(test(false, p));
            }
        }
    }
    // One adjustment over every test of the report (both windows, both kinds), so that a report
    // of flat products flags anything at most about 5% of the time.
    let q = benjamini_hochberg(&tests.iter().map(|t| t.p).collect::<Vec<_>>());
    let mut out = Vec::new();
    for (t, q) in tests.into_iter().zip(q) {
        let share = |c: &DayCounts| c.negative as f64 / c.scored.max(1) as f64;
        let flagged =
            q < ALPHA && (t.rate || (share(&t.w) - share(&t.b)).abs() >= MIN_SHARE_CHANGE);
        let (w, b) = (&t.w, &t.b);
        let insight = if t.rate {
            let expected = b.conversations as f64 * t.t1 / t.t0;
            let (ratio, low, high) = ratio_interval(w.conversations, t.t1, b.conversations, t.t0)
                .unwrap_or((0.0, 0.0, 0.0));
            Insight {
                kind: if w.conversations as f64 > expected {
                    "spike"
                } else {
                    "drop"
                },
                product: t.product.clone(),
                window: t.window,
                from: t.from,
                to: t.to,
                value: w.conversations as f64,
                baseline: expected,
                ratio,
                low,
                high,
                p_value: t.p,
                q_value: q,
                counts: (w.mentions, b.mentions),
                flagged,
                examples: Vec::new(),
                topic: None,
            }
        } else {
            let (s1, s0) = (w.scored as f64, b.scored as f64);
            let (ratio, low, high) =
                ratio_interval(w.negative, s1, b.negative, s0).unwrap_or((0.0, 0.0, 0.0));
            Insight {
                kind: "sentiment_shift",
                product: t.product.clone(),
                window: t.window,
                from: t.from,
                to: t.to,
                value: w.negative as f64 / s1,
                baseline: b.negative as f64 / s0,
                ratio,
                low,
                high,
                p_value: t.p,
                q_value: q,
                counts: (w.scored, b.scored),
                flagged,
                examples: Vec::new(),
                topic: None,
            }
        };
        out.push(insight);
    }
    out.sort_by(|a, b| (a.window, a.kind, &a.product).cmp(&(b.window, b.kind, &b.product)));
    out
}

/// The insights of a lake's `mention_counts` rows (every interaction type added up), for its
/// latest day, weighed by `exposure` (conversations with text per day:
/// [`crate::lake::tables::conversations_per_day`]), so that a last day whose conversations
/// are partly still ongoing (no text yet) expects fewer mentions instead of looking like a drop.
pub fn of_counts(
    rows: &[crate::lake::aggregates::CountRow],
    exposure: &BTreeMap<NaiveDate, u64>,
) -> Vec<Insight> {
    let mut all = tests_of_counts(rows, exposure);
    all.retain(|i| i.flagged);
    all
}

/// Every test [`of_counts`] makes, flagged or not: the rows of `product_insights`.
pub fn tests_of_counts(
    rows: &[crate::lake::aggregates::CountRow],
    exposure: &BTreeMap<NaiveDate, u64>,
) -> Vec<Insight> {
    let mut counts: BTreeMap<String, BTreeMap<NaiveDate, DayCounts>> = BTreeMap::new();
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    for r in rows {
        let c = counts
            .entry(r.product.clone())
            .or_default()
            .entry(r.conversation_date)
            .or_default();
        c.mentions += n(r.mentions);
        c.conversations += n(r.conversations);
        c.negative += n(r.negative);
        c.scored += n(r.positive) + n(r.negative) + n(r.neutral);
    }
    let first = rows.iter().map(|r| r.conversation_date).min();
    let last = rows.iter().map(|r| r.conversation_date).max();
    match (first, last) {
        (Some(first), Some(last)) => all_tests(&counts, exposure, first, last),
        _ => Vec::new(),
    }
}

/// The flagged insights in words, one per line (or a sentence saying there are none).
pub fn insights_text(found: &[Insight]) -> String {
    if found.is_empty() {
        return "none beyond chance (each product's latest day and week against the 28 days before, Benjamini-Hochberg at 5%)".to_string();
    }
    found
        .iter()
        .map(|i| format!("{} ({}): {}", i.kind, i.window.as_str(), i.headline()))
        .collect::<Vec<_>>()
        .join("\n            ")
}

/// The rows of `product_insights` ([`super::schema::product_insights_schema`]), in the order
/// given.
pub fn to_batch(
    found: &[Insight],
    dictionary_version: &str,
) -> Result<arrow::array::RecordBatch, String> {
    use arrow::array::{
        BooleanArray, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
    };
    use std::sync::Arc;
    let day = |d: NaiveDate| {
        i32::try_from((d - NaiveDate::default()).num_days())
            .map_err(|_| format!("{d} is outside the dates a lake file holds"))
    };
    let float =
        |f: fn(&Insight) -> f64| Arc::new(Float64Array::from_iter_values(found.iter().map(f)));
    let count = |v: u64| i64::try_from(v).map_err(|_| format!("count {v} does not fit in Int64"));
    let examples = found
        .iter()
        .map(|i| serde_json::to_string(&i.examples).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(
        super::schema::product_insights_schema(),
        vec![
            Arc::new(StringArray::from_iter_values(
                found.iter().map(|i| &i.product),
            )),
            Arc::new(StringArray::from_iter_values(
                found.iter().map(|i| i.window.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(found.iter().map(|i| i.kind))),
            Arc::new(BooleanArray::from(
                found.iter().map(|i| i.flagged).collect::<Vec<_>>(),
            )),
            Arc::new(Date32Array::from(
                found
                    .iter()
                    .map(|i| day(i.from))
                    .collect::<Result<Vec<_>, _>>()?,
            )),
            Arc::new(Date32Array::from(
                found
                    .iter()
                    .map(|i| day(i.to))
                    .collect::<Result<Vec<_>, _>>()?,
            )),
            float(|i| i.value),
            float(|i| i.baseline),
            float(|i| i.ratio),
            float(|i| i.low),
            float(|i| i.high),
            float(|i| i.p_value),
            float(|i| i.q_value),
            Arc::new(Int64Array::from(
                found
                    .iter()
                    .map(|i| count(i.counts.0))
                    .collect::<Result<Vec<_>, _>>()?,
            )),
            Arc::new(Int64Array::from(
                found
                    .iter()
                    .map(|i| count(i.counts.1))
                    .collect::<Result<Vec<_>, _>>()?,
            )),
            Arc::new(StringArray::from(examples)),
            Arc::new(StringArray::from_iter_values(
                found.iter().map(|_| dictionary_version),
            )),
            Arc::new(StringArray::from(
                found
                    .iter()
                    .map(|i| i.topic.as_ref().map(|t| t.0.clone()))
                    .collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(
                found
                    .iter()
                    .map(|i| i.topic.as_ref().map(|t| count(t.1)).transpose())
                    .collect::<Result<Vec<_>, _>>()?,
            )),
            Arc::new(Int64Array::from(
                found
                    .iter()
                    .map(|i| i.topic.as_ref().map(|t| count(t.2)).transpose())
                    .collect::<Result<Vec<_>, _>>()?,
            )),
        ],
    )
    .map_err(|e| e.to_string())
}

/// The SQL condition on `mentions` of an insight's window: its product and days, and for a
/// sentiment shift the negative mentions.
fn window_mentions(insight: &Insight) -> String {
    let mut wanted = format!(
        "product = {} AND conversation_date BETWEEN {} AND {}",
        literal(&insight.product),
        date_literal(insight.from),
        date_literal(insight.to)
    );
    if insight.kind == "sentiment_shift" {
        wanted.push_str(" AND sentiment < -0.05");
    }
    wanted
}

/// Examples an insight carries.
pub const INSIGHT_EXAMPLES: usize = 5;

/// Up to [`INSIGHT_EXAMPLES`] utterances of an insight's window that mention its product, from
/// different conversations: for a sentiment shift the negative ones, otherwise any (in
/// conversation order, so the same lake gives the same quotes).
pub async fn insight_examples(
    ctx: &datafusion::prelude::SessionContext,
    insight: &Insight,
) -> Result<Vec<super::examples::Example>, super::LakeError> {
    let wanted = window_mentions(insight);
    let mut out = examples(ctx, &wanted, INSIGHT_EXAMPLES).await?;
    out.retain(|e| e.product == insight.product);
    Ok(out)
}

/// The STA topic detected in the utterances that mention `insight`'s product in most of its
/// window's conversations (for a sentiment shift, in its negative mentions), with in how many,
/// and how many conversations have such an utterance with any topic; `None` when none has. The
/// topic must be in the utterance that names the product: a conversation's other topics may be
/// about another product it mentions.
pub async fn insight_topic(
    ctx: &datafusion::prelude::SessionContext,
    insight: &Insight,
) -> Result<Option<(String, u64, u64)>, super::LakeError> {
    let wanted = window_mentions(insight);
    let sql = format!(
        "WITH m AS (SELECT DISTINCT conversation_id, utterance_index FROM mentions \
                    WHERE {wanted}), \
              t AS (SELECT DISTINCT t.conversation_id, t.topic FROM conversation_topics t \
                    JOIN m ON m.conversation_id = t.conversation_id \
                     AND m.utterance_index = t.utterance_index) \
         SELECT topic, COUNT(*) AS n, (SELECT COUNT(DISTINCT conversation_id) FROM t) AS of \
         FROM t GROUP BY topic ORDER BY n DESC, topic LIMIT 1"
    );
    let batches = super::tables::query(ctx, &sql).await?;
    let Some(b) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Ok(None);
    };
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    Ok(Some((
        strings(b, 0)[0].clone(),
        n(ints(b, 1)[0]),
        n(ints(b, 2)[0]),
    )))
}

/// The `product_insights` of a dictionary version's generation in force, in its order; `None`
/// when it was never aggregated or its generation was written before the table.
pub async fn read_insights(
    lake: &super::Lake,
    dictionary_version: &str,
) -> Result<Option<Vec<Insight>>, super::LakeError> {
    use super::aggregates::{generation_of, Table};
    let Some(g) = generation_of(lake, dictionary_version).await? else {
        return Ok(None);
    };
    let Some(bytes) = g.read_table(lake, Table::ProductInsights).await? else {
        return Ok(None);
    };
    let path = g
        .path(Table::ProductInsights)
        .unwrap_or_default()
        .to_string();
    let bad = |reason: String| super::LakeError::Parquet {
        path: path.clone(),
        reason,
    };
    let batches = super::schema::from_parquet(bytes).map_err(bad)?;
    from_batches(&batches).map(Some).map_err(bad)
}

/// `product_insights` rows read back (a file of [`to_batch`]'s columns).
pub fn from_batches(batches: &[arrow::array::RecordBatch]) -> Result<Vec<Insight>, String> {
    use arrow::array::{Array, BooleanArray, Date32Array, Float64Array, Int64Array, StringArray};
    fn col<'a, T: 'static>(b: &'a arrow::array::RecordBatch, name: &str) -> Result<&'a T, String> {
        b.column_by_name(name)
            .and_then(|c| c.as_any().downcast_ref::<T>())
            .ok_or_else(|| format!("product_insights: column {name} is missing or mistyped"))
    }
    let mut out = Vec::new();
    for b in batches {
        let product = col::<StringArray>(b, "product")?;
        let window = col::<StringArray>(b, "time_window")?;
        let kind = col::<StringArray>(b, "kind")?;
        let flagged = col::<BooleanArray>(b, "flagged")?;
        let from = col::<Date32Array>(b, "window_from")?;
        let to = col::<Date32Array>(b, "window_to")?;
        let f = |name: &str| col::<Float64Array>(b, name);
        let (value, baseline, ratio) = (f("value")?, f("baseline")?, f("ratio")?);
        let (low, high, p, q) = (
            f("ratio_low")?,
            f("ratio_high")?,
            f("p_value")?,
            f("q_value")?,
        );
        let wc = col::<Int64Array>(b, "window_count")?;
        let bc = col::<Int64Array>(b, "baseline_count")?;
        let examples = col::<StringArray>(b, "examples")?;
        let topic = col::<StringArray>(b, "top_topic")?;
        let topic_n = col::<Int64Array>(b, "top_topic_conversations")?;
        let topic_of = col::<Int64Array>(b, "topic_conversations")?;
        for r in 0..b.num_rows() {
            let date = |a: &Date32Array| {
                a.value_as_date(r)
                    .ok_or_else(|| format!("product_insights row {r}: a date out of range"))
            };
            out.push(Insight {
                kind: match kind.value(r) {
                    "spike" => "spike",
                    "drop" => "drop",
                    "sentiment_shift" => "sentiment_shift",
                    other => return Err(format!("product_insights row {r}: kind {other:?}")),
                },
                product: product.value(r).to_string(),
                window: match window.value(r) {
                    "day" => Window::Day,
                    "week" => Window::Week,
                    other => return Err(format!("product_insights row {r}: window {other:?}")),
                },
                from: date(from)?,
                to: date(to)?,
                value: value.value(r),
                baseline: baseline.value(r),
                ratio: ratio.value(r),
                low: low.value(r),
                high: high.value(r),
                p_value: p.value(r),
                q_value: q.value(r),
                counts: (
                    u64::try_from(wc.value(r)).unwrap_or(0),
                    u64::try_from(bc.value(r)).unwrap_or(0),
                ),
                flagged: !flagged.is_null(r) && flagged.value(r),
                examples: serde_json::from_str(examples.value(r))
                    .map_err(|e| format!("product_insights row {r}: examples: {e}"))?,
                topic: (!topic.is_null(r)).then(|| {
                    let n = |a: &Int64Array| {
                        u64::try_from(if a.is_null(r) { 0 } else { a.value(r) }).unwrap_or(0)
                    };
                    (topic.value(r).to_string(), n(topic_n), n(topic_of))
                }),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Per product, per day.
    type Counts = BTreeMap<String, BTreeMap<NaiveDate, DayCounts>>;

    fn poisson(rng: &mut u64, mean: f64) -> u64 {
        // Knuth's method is fine for the small means of these tests.
        let mut next = || {
            *rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((*rng >> 11) as f64) / ((1u64 << 53) as f64)
        };
        let limit = (-mean).exp();
        let (mut k, mut p) = (0u64, next());
        while p > limit {
            k += 1;
            p *= next();
        }
        k
    }

    /// `products` flat products over `days` days at `mean` mentions a day, a third negative and
    /// nine in ten scored; `spike` multiplies product 0's last `spike_days` days.
    fn lake(
        seed: u64,
        products: usize,
        days: u64,
        mean: f64,
        spike: f64,
        spike_days: u64,
    ) -> (Counts, BTreeMap<NaiveDate, u64>, NaiveDate, NaiveDate) {
        let first = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
        let last = first + Days::new(days - 1);
        let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut out = BTreeMap::new();
        for p in 0..products {
            let mut by_day = BTreeMap::new();
            for d in 0..days {
                let boosted = p == 0 && d + spike_days >= days;
                let m = if boosted { mean * spike } else { mean };
                let (neg, neu) = (poisson(&mut rng, m / 3.0), poisson(&mut rng, m * 2.0 / 3.0));
                let scored = neg + neu;
                let unscored = poisson(&mut rng, m / 9.0);
                by_day.insert(
                    first + Days::new(d),
                    DayCounts {
                        mentions: scored + unscored,
                        conversations: scored + unscored,
                        negative: neg,
                        scored,
                    },
                );
            }
            out.insert(format!("P{p}"), by_day);
        }
        let exposure = (0..days).map(|d| (first + Days::new(d), 100)).collect();
        (out, exposure, first, last)
    }

    #[test]
    fn binomial_and_proportion_tests_match_known_values() {
        // Binomial(10, ½): P(X ≤ 1 or X ≥ 9) = 22/1024.
        assert!((binomial_two_sided(1, 10, 0.5) - 22.0 / 1024.0).abs() < 1e-9);
        assert!((binomial_two_sided(5, 10, 0.5) - 1.0).abs() < 1e-9);
        // Asymmetric: Binomial(4, 0.2), k = 3: outcomes 2, 3, 4 are no likelier than... only
        // 3 and 4 (P(2) = 0.1536 > P(3) = 0.0256).
        let p = binomial_two_sided(3, 4, 0.2);
        assert!((p - (0.0256 + 0.0016)).abs() < 1e-9, "{p}");
        assert!((two_proportion_p(50, 100, 50, 100) - 1.0).abs() < 1e-6);
        // z = 1.96 gives p ≈ 0.05.
        assert!((erfc(1.96 / std::f64::consts::SQRT_2) - 0.05).abs() < 1e-3);
        assert!(binomial_two_sided(3000, 4000, 0.5) < 1e-100);
    }

    #[test]
    fn flat_products_are_rarely_flagged_and_an_outage_always_is() {
        let runs = 400;
        let flagged = (0..runs)
            .filter(|&seed| {
                let (c, e, first, last) = lake(seed, 8, 35, 20.0, 1.0, 0);
                !insights(&c, &e, first, last).is_empty()
            })
            .count();
        // One 5% false-discovery rate over all the report's tests: about one flat report in
        // twenty flags anything.
        eprintln!("insights: {flagged} of {runs} flat lakes flagged something");
        assert!(flagged as u64 * 100 <= runs * 8, "{flagged} of {runs}");
        let mut others = 0;
        for seed in 0..50 {
            let (c, e, first, last) = lake(seed, 8, 35, 20.0, 3.0, 3);
            let found = insights(&c, &e, first, last);
            for w in [Window::Day, Window::Week] {
                assert!(
                    found
                        .iter()
                        .any(|i| i.kind == "spike" && i.product == "P0" && i.window == w),
                    "seed {seed}, {w:?}: {found:?}"
                );
            }
            others += found.iter().filter(|i| i.product != "P0").count();
        }
        // Benjamini-Hochberg bounds the share of false findings among the findings (5%), so
        // with two to four true ones a lake, about one false one in six lakes.
        eprintln!("insights: {others} findings about flat products in 50 lakes with an outage");
        assert!(others <= 15, "{others}");
    }

    #[test]
    fn windows_compare_like_with_like_and_respect_the_lake_start() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        let (w, b) = Window::Day.days(d);
        assert_eq!(w, vec![d]);
        assert!(b.iter().all(|x| (d - *x).num_days() % 7 == 0));
        let (w, b) = Window::Week.days(d);
        assert_eq!((w.len(), b.len()), (7, 28));
        assert_eq!(*w.last().unwrap(), d);
        assert_eq!((w[0] - *b.last().unwrap()).num_days(), 1);
        // Five days of data: no baseline for either window, so nothing is tested.
        let (c, e, first, last) = lake(1, 3, 5, 20.0, 3.0, 2);
        assert!(insights(&c, &e, first, last).is_empty());
        // A last day with half its conversations still without text expects half the
        // mentions: no drop.
        let (c, mut e, first, last) = lake(2, 3, 35, 20.0, 1.0, 0);
        let halved: Counts = c
            .into_iter()
            .map(|(p, mut by_day)| {
                let d = by_day.get_mut(&last).unwrap();
                *d = DayCounts {
                    mentions: d.mentions / 2,
                    conversations: d.conversations / 2,
                    negative: d.negative / 2,
                    scored: d.scored / 2,
                };
                (p, by_day)
            })
            .collect();
        e.insert(last, 50);
        assert!(insights(&halved, &e, first, last)
            .iter()
            .all(|i| i.kind != "drop"));
    }
}
