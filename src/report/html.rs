//! `report.html`: one self-contained page (styles and charts inline, no script, no external
//! request) with the headline numbers, the charts, mentions by speaker per product and example
//! snippets with the matched words highlighted.
//!
//! Invariants: every piece of text that comes from the lake (transcripts, product names,
//! interaction types, conversation ids) is HTML-escaped, and a Content-Security-Policy forbids
//! scripts and external loads in case anything slipped through; the page is a pure function of
//! its inputs (no clock), so the same lake gives the same bytes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::NaiveDate;

use super::data::{Example, ReportData};
use super::stats;

/// Characters of context kept before the first highlighted mention of a long example.
const CONTEXT_BEFORE: usize = 120;
/// Characters kept after it.
const CONTEXT_AFTER: usize = 180;
/// Products listed under "top products".
const TOP_PRODUCTS: usize = 3;
/// Products listed under "biggest movers".
const MOVERS: usize = 3;
/// Mentions in both weeks together a product needs before its change is tested: below it, no
/// change is evidence of anything.
pub const MOVER_MIN_MENTIONS: u64 = 10;
/// The false discovery rate across the products tested (Benjamini–Hochberg).
pub const MOVER_FDR: f64 = 0.05;

/// One product's change between the last 7 days of the range and the 7 days before, with the
/// evidence that it is more than chance ([`super::stats`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Mover {
    /// Canonical product name.
    pub product: String,
    /// Mentions in the last 7 days of the range.
    pub this_week: u64,
    /// Mentions in the 7 days before those.
    pub last_week: u64,
    /// The exact two-sided p-value of "the rate did not change".
    pub p_value: f64,
    /// The p-value adjusted across every product tested (Benjamini–Hochberg).
    pub q_value: f64,
}

impl Mover {
    fn change(&self) -> i64 {
        self.this_week as i64 - self.last_week as i64
    }

    /// The evidence in words: the rate ratio with its 95% interval (when both weeks have
    /// mentions) and the p-value, e.g. `×9.00 (95% 1.14–71.04), p = 0.021`.
    pub fn evidence(&self) -> String {
        let ratio = match stats::rate_ratio(self.this_week, self.last_week) {
            Some((r, lo, hi)) => format!("×{r:.2} (95% {lo:.2}–{hi:.2}), "),
            None => String::new(),
        };
        let p = if self.p_value < 0.001 {
            "p < 0.001".to_string()
        } else {
            format!("p = {:.3}", self.p_value)
        };
        format!("{ratio}{p}")
    }
}

/// The products whose mentions changed between the last two weeks of the range by more than
/// chance: every product with at least [`MOVER_MIN_MENTIONS`] in the two weeks is tested, and
/// those whose adjusted p-value is at most [`MOVER_FDR`] are listed, strongest evidence first.
/// `Err` explains why there is no comparison (range under 14 days).
pub fn movers(data: &ReportData) -> Result<Vec<Mover>, String> {
    let Some((from, to)) = data.range else {
        return Err("no data".into());
    };
    let days = (to - from).num_days() + 1;
    if days < 14 {
        return Err(format!(
            "week over week needs at least 14 days in the range; this one has {days}"
        ));
    }
    // The range has 14 days or more, so both starts are on or after `from`: checked anyway,
    // so a range at chrono's first representable day cannot panic.
    let (Some(this_start), Some(last_start)) = (
        to.checked_sub_days(chrono::Days::new(6)),
        to.checked_sub_days(chrono::Days::new(13)),
    ) else {
        return Err(format!(
            "the range {from} to {to} starts too early to compare weeks"
        ));
    };
    let mut weeks: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for r in &data.daily {
        let entry = weeks.entry(r.product.as_str()).or_default();
        if r.date >= this_start && r.date <= to {
            entry.0 += r.mentions;
        } else if r.date >= last_start && r.date < this_start {
            entry.1 += r.mentions;
        }
    }
    let tested: Vec<(&str, u64, u64, f64)> = weeks
        .into_iter()
        .filter(|(_, (a, b))| a + b >= MOVER_MIN_MENTIONS)
        .map(|(p, (a, b))| (p, a, b, stats::equal_rate_p(a, b)))
        .collect();
    let q = stats::benjamini_hochberg(&tested.iter().map(|t| t.3).collect::<Vec<_>>());
    let mut out: Vec<Mover> = tested
        .into_iter()
        .zip(q)
        .filter(|(_, q)| *q <= MOVER_FDR)
        .map(|((p, this_week, last_week, p_value), q_value)| Mover {
            product: p.to_string(),
            this_week,
            last_week,
            p_value,
            q_value,
        })
        .collect();
    out.sort_by(|a, b| {
        a.p_value
            .total_cmp(&b.p_value)
            .then(b.change().abs().cmp(&a.change().abs()))
            .then(a.product.cmp(&b.product))
    });
    out.truncate(MOVERS);
    Ok(out)
}

/// Escapes text for an HTML element body or a double-quoted attribute.
fn esc(s: &str) -> String {
    html_escape::encode_double_quoted_attribute(s).into_owned()
}

/// Renders `text` with the highlighted spans (character offsets) wrapped in `<mark>`; the
/// product's own mentions get class `own`. Long texts are cut around the first own mention.
pub fn highlight(example: &Example) -> String {
    let chars: Vec<char> = example.text.chars().collect();
    let mut spans: Vec<(usize, usize, bool)> = example
        .highlights
        .iter()
        .copied()
        .filter(|(s, e, _)| s < e && *e <= chars.len())
        .collect();
    spans.sort();
    let anchor = spans
        .iter()
        .find(|s| s.2)
        .or(spans.first())
        .map_or(0, |s| s.0);
    let start = anchor.saturating_sub(CONTEXT_BEFORE);
    let end = (anchor + CONTEXT_AFTER).min(chars.len()).max(start);
    let slice = |a: usize, b: usize| -> String { chars[a..b].iter().collect() };

    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    let mut cursor = start;
    for (s, e, own) in spans {
        // Spans outside the window, or overlapping one already written, are left plain.
        if s < cursor || s >= end {
            continue;
        }
        let e = e.min(end);
        out.push_str(&esc(&slice(cursor, s)));
        let class = if own { "own" } else { "other" };
        let _ = write!(out, "<mark class=\"{class}\">{}</mark>", esc(&slice(s, e)));
        cursor = e;
    }
    out.push_str(&esc(&slice(cursor, end)));
    if end < chars.len() {
        out.push('…');
    }
    out
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "–".into()
    } else {
        format!("{:.0}%", part as f64 * 100.0 / whole as f64)
    }
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

const STYLE: &str = r#"
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; margin: 0;
       color: #1f2328; background: #f6f7f9; }
main { max-width: 1240px; margin: 0 auto; padding: 24px 32px 48px; }
h1 { font-size: 1.8rem; margin: 0 0 4px; }
h2 { font-size: 1.3rem; margin: 36px 0 12px; border-bottom: 1px solid #d0d7de; padding-bottom: 6px; }
h3 { font-size: 1.05rem; margin: 20px 0 8px; }
.sub { color: #57606a; margin: 0 0 20px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(210px, 1fr)); gap: 14px; }
.card { background: #fff; border: 1px solid #d0d7de; border-radius: 8px; padding: 14px 16px; }
.card .label { color: #57606a; font-size: .85rem; text-transform: uppercase; letter-spacing: .04em; }
.card .value { font-size: 2rem; font-weight: 600; margin-top: 4px; }
.card ol, .card ul { margin: 6px 0 0; padding-left: 20px; }
.card li { margin: 2px 0; }
.up { color: #1a7f37; } .down { color: #cf222e; }
.note { color: #57606a; font-style: italic; }
figure { background: #fff; border: 1px solid #d0d7de; border-radius: 8px; margin: 0 0 18px; padding: 8px; }
figure svg { display: block; width: 100%; height: auto; }
figcaption { color: #57606a; font-size: .9rem; padding: 4px 8px; }
table { border-collapse: collapse; background: #fff; width: 100%; border: 1px solid #d0d7de; }
th, td { padding: 6px 10px; border-bottom: 1px solid #eaeef2; text-align: left; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
.bar { display: flex; height: 10px; min-width: 160px; border-radius: 5px; overflow: hidden; background: #eaeef2; }
.c { background: #4e79a7; } .a { background: #f28e2b; } .o { background: #8c8c8c; }
.sw { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin: 0 4px 0 8px; }
.examples { list-style: none; padding: 0; margin: 0; }
.examples li { background: #fff; border: 1px solid #d0d7de; border-radius: 8px; padding: 10px 14px; margin: 0 0 10px; }
.meta { color: #57606a; font-size: .85rem; margin-bottom: 4px; }
.text { white-space: pre-wrap; overflow-wrap: anywhere; }
mark.own { background: #ffe08a; padding: 0 2px; border-radius: 3px; font-weight: 600; }
mark.other { background: #dbe9f7; padding: 0 2px; border-radius: 3px; }
footer { color: #57606a; font-size: .8rem; margin-top: 40px; }
.evidence { margin: 4px 0 8px; }
figure.insight-chart { margin: 8px 0 12px; }
#sentiment-table { margin-bottom: 18px; }
"#;

/// The SVG documents the page inlines (made by our chart code, whose text plotters escapes);
/// an empty one is left out.
#[derive(Debug, Clone, Default)]
pub struct PageCharts<'a> {
    pub trend: &'a str,
    pub share: &'a str,
    /// One per flagged insight, in the order of `ReportData::insights`.
    pub insights: Vec<&'a str>,
    pub sentiment: &'a str,
    pub topics: &'a str,
    pub co_mentions: &'a str,
}

/// The whole page, with `charts` inlined.
pub fn render_html(data: &ReportData, charts: &PageCharts<'_>) -> String {
    let (trend_svg, share_svg) = (charts.trend, charts.share);
    let mut h = String::new();
    let range_text = match data.range {
        Some((from, to)) if from == to => format!("{from}"),
        Some((from, to)) => format!("{from} to {to}"),
        None => "no data".to_string(),
    };
    let mut filters = Vec::new();
    if let Some(p) = &data.product {
        filters.push(format!("product {}", esc(p)));
    }
    if let Some(t) = &data.interaction_type {
        filters.push(format!("interaction type {}", esc(t)));
    }
    let filter_text = if filters.is_empty() {
        "all products and interaction types".to_string()
    } else {
        filters.join(", ")
    };

    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    h.push_str("<link rel=\"icon\" href=\"data:,\">\n");
    let _ = writeln!(h, "<title>Product mentions, {}</title>", esc(&range_text));
    let _ = writeln!(h, "<style>{STYLE}</style>\n</head>\n<body>\n<main>");
    let _ = writeln!(h, "<h1>Product mentions, {}</h1>", esc(&range_text));
    let _ = writeln!(h, "<p class=\"sub\">{filter_text}</p>");

    if data.range.is_none() {
        h.push_str("<p class=\"note\" id=\"empty\">The lake holds no conversations yet. Run <code>convlake fetch</code>, <code>convlake extract</code> and <code>convlake aggregate</code>, then <code>convlake report</code> again.</p>\n");
    } else if data.daily.is_empty() {
        h.push_str("<p class=\"note\" id=\"empty\">No product mentions in this range. Widen it with <code>--from</code>/<code>--to</code> or drop the filters.</p>\n");
    }

    insights(&mut h, data, &charts.insights);
    headline(&mut h, data);
    sentiment(&mut h, data, charts.sentiment);
    figure(
        &mut h,
        "topics-per-product",
        "Topics per product",
        charts.topics,
        "Conversations in which the product is mentioned and Speech and Text Analytics detected the topic (voice conversations with STA; the largest products and topics).",
    );
    figure(
        &mut h,
        "co-mentions",
        "Products mentioned together",
        charts.co_mentions,
        "Conversations that mention both products of a cell, in the range.",
    );

    h.push_str("<h2>Charts</h2>\n");
    let _ = writeln!(
        h,
        "<figure id=\"trend\">{}<figcaption>Mentions per day per product; products outside the top are summed as “other”.</figcaption></figure>",
        strip_xml_prolog(trend_svg)
    );
    let _ = writeln!(
        h,
        "<figure id=\"share\">{}<figcaption>Mentions by interaction type, stacked by product.</figcaption></figure>",
        strip_xml_prolog(share_svg)
    );

    speakers(&mut h, data);
    examples(&mut h, data);

    let _ = writeln!(
        h,
        "<footer>Generated by convlake from the lake's current conversations; dictionary version <code>{}</code>.</footer>",
        esc(&data.dictionary_version)
    );
    h.push_str("</main>\n</body>\n</html>\n");
    h
}

/// A section with one inlined chart (left out when it has no SVG).
fn figure(h: &mut String, id: &str, heading: &str, svg: &str, caption: &str) {
    if svg.is_empty() {
        return;
    }
    let _ = writeln!(
        h,
        "<h2>{}</h2>\n<figure id=\"{id}\">{}<figcaption>{}</figcaption></figure>",
        esc(heading),
        strip_xml_prolog(svg),
        esc(caption)
    );
}

/// Sentiment per product: the diverging bars and the counts behind them.
fn sentiment(h: &mut String, data: &ReportData, svg: &str) {
    if data.sentiment.is_empty() {
        return;
    }
    figure(
        h,
        "sentiment",
        "Sentiment per product",
        svg,
        "Each product's scored mentions: negative to the left of the centre line, neutral across it, positive to the right. Voice: the sentiment Genesys gave the phrase; other text: a lexicon (VADER) for English sentences; other languages are not scored.",
    );
    h.push_str("<table id=\"sentiment-table\"><thead><tr><th>Product</th><th class=\"n\">Negative</th><th class=\"n\">Neutral</th><th class=\"n\">Positive</th><th class=\"n\">Not scored</th></tr></thead><tbody>");
    for s in &data.sentiment {
        let scored = s.scored();
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"n\">{} ({})</td><td class=\"n\">{} ({})</td><td class=\"n\">{} ({})</td><td class=\"n\">{}</td></tr>",
            esc(&s.product),
            thousands(s.negative),
            pct(s.negative, scored),
            thousands(s.neutral),
            pct(s.neutral, scored),
            thousands(s.positive),
            pct(s.positive, scored),
            thousands(s.unscored)
        );
    }
    h.push_str("</tbody></table>\n");
}

/// An insight's evidence in plain words.
fn evidence(i: &crate::lake::insights::Insight) -> String {
    let days = match i.window {
        crate::lake::insights::Window::Day => "the same weekday in each of the 4 weeks before",
        crate::lake::insights::Window::Week => "the 28 days before",
    };
    let chance = format!(
        "A difference at least this large would arise by chance with probability {:.1e} if nothing had changed ({:.1e} after allowing for every product and window tested).",
        i.p_value, i.q_value
    );
    match i.kind {
        "sentiment_shift" => format!(
            "{:.0}% of the {} scored mentions in the window were negative, against {:.0}% of the {} in {days}. {chance}",
            i.value * 100.0,
            i.counts.0,
            i.baseline * 100.0,
            i.counts.1
        ),
        _ => format!(
            "{} conversations mentioned it; at the rate of {days} (per conversation with text), {:.1} were expected: {:.2} times as many (95% interval {:.2} to {:.2}). {chance}",
            i.value, i.baseline, i.ratio, i.low, i.high
        ),
    }
}

/// The flagged insights, first on the page: each kind, window and its evidence in words, its
/// chart (`charts`, in the same order) and its quotes.
fn insights(h: &mut String, data: &ReportData, charts: &[&str]) {
    if data.range.is_none() {
        return;
    }
    h.push_str("<section class=\"card\" id=\"insights\"><div class=\"label\">What changed</div>");
    if data.insights.is_empty() {
        h.push_str("<p class=\"note\">Nothing beyond chance: each product's latest day and week against the 28 days before (same weekdays), Benjamini–Hochberg at 5% over every test.</p>");
    } else {
        h.push_str("<ul>");
        for (k, i) in data.insights.iter().enumerate() {
            let _ = write!(
                h,
                "<li class=\"insight {}\"><b>{}</b> ({}): {}",
                esc(i.kind),
                esc(&i.kind.replace('_', " ")),
                esc(i.window.as_str()),
                esc(&i.headline())
            );
            let _ = write!(h, "<p class=\"evidence\">{}</p>", esc(&evidence(i)));
            if let Some(svg) = charts.get(k).filter(|s| !s.is_empty()) {
                let _ = write!(
                    h,
                    "<figure class=\"insight-chart\">{}</figure>",
                    strip_xml_prolog(svg)
                );
            }
            if !i.examples.is_empty() {
                h.push_str("<ul class=\"examples\">");
                for e in &i.examples {
                    example_item(h, e);
                }
                h.push_str("</ul>");
            }
            h.push_str("</li>");
        }
        h.push_str("</ul>");
    }
    h.push_str("</section>\n");
}

/// Inline SVG must not carry an XML declaration.
fn strip_xml_prolog(svg: &str) -> &str {
    match svg.trim_start().strip_prefix("<?xml") {
        Some(rest) => rest.split_once("?>").map_or(svg, |(_, body)| body),
        None => svg,
    }
}

fn headline(h: &mut String, data: &ReportData) {
    let mentions = data.mentions();
    h.push_str("<section class=\"cards\" id=\"headline\">\n");
    let card = |h: &mut String, label: &str, value: String| {
        let _ = writeln!(
            h,
            "<div class=\"card\"><div class=\"label\">{label}</div><div class=\"value\">{value}</div></div>"
        );
    };
    card(h, "Conversations", thousands(data.conversations));
    card(h, "Mentions", thousands(mentions));
    card(
        h,
        "Conversations with a mention",
        format!(
            "{} <small>({})</small>",
            thousands(data.conversations_with_mentions),
            pct(data.conversations_with_mentions, data.conversations)
        ),
    );

    let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
    for r in &data.daily {
        *totals.entry(r.product.as_str()).or_default() += r.mentions;
    }
    let mut ranked: Vec<(&str, u64)> = totals.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    h.push_str("<div class=\"card\" id=\"top-products\"><div class=\"label\">Top products</div>");
    if ranked.is_empty() {
        h.push_str("<p class=\"note\">none in range</p>");
    } else {
        h.push_str("<ol>");
        for (p, n) in ranked.iter().take(TOP_PRODUCTS) {
            let _ = write!(
                h,
                "<li>{} — {} ({})</li>",
                esc(p),
                thousands(*n),
                pct(*n, mentions)
            );
        }
        h.push_str("</ol>");
    }
    h.push_str("</div>\n");

    h.push_str("<div class=\"card\" id=\"movers\"><div class=\"label\">Biggest movers, week over week</div>");
    match movers(data) {
        Err(why) => {
            let _ = write!(h, "<p class=\"note\">{}</p>", esc(&why));
        }
        Ok(list) if list.is_empty() => {
            let _ = write!(
                h,
                "<p class=\"note\">no change beyond chance (each product with at least {MOVER_MIN_MENTIONS} mentions in the two weeks, an exact test of the two counts, Benjamini–Hochberg at {:.0}%)</p>",
                MOVER_FDR * 100.0
            );
        }
        Ok(list) => {
            h.push_str("<ul>");
            for m in list {
                let change = m.change();
                let (class, sign) = if change > 0 {
                    ("up", "▲ +")
                } else {
                    ("down", "▼ ")
                };
                let rel = if m.last_week == 0 {
                    "new".to_string()
                } else {
                    format!("{:+.0}%", change as f64 * 100.0 / m.last_week as f64)
                };
                let _ = write!(
                    h,
                    "<li>{} <span class=\"{class}\">{sign}{change} ({rel})</span> <small>{} → {}; {}</small></li>",
                    esc(&m.product),
                    m.last_week,
                    m.this_week,
                    esc(&m.evidence())
                );
            }
            h.push_str("</ul>");
        }
    }
    h.push_str("</div>\n</section>\n");
}

fn speakers(h: &mut String, data: &ReportData) {
    h.push_str("<h2>Who mentions each product</h2>\n");
    if data.speakers.is_empty() {
        h.push_str("<p class=\"note\">No mentions in this range.</p>\n");
        return;
    }
    h.push_str("<table id=\"speakers\">\n<thead><tr><th>Product</th><th class=\"n\">Mentions</th><th class=\"n\">Customer</th><th class=\"n\">Agent</th><th class=\"n\">Other</th><th class=\"n\">Customer share</th><th><span class=\"sw c\"></span>customer <span class=\"sw a\"></span>agent <span class=\"sw o\"></span>other</th></tr></thead>\n<tbody>\n");
    for s in &data.speakers {
        let total = s.customer + s.agent + s.other;
        let width = |n: u64| {
            if total == 0 {
                0.0
            } else {
                n as f64 * 100.0 / total as f64
            }
        };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td><div class=\"bar\"><span class=\"c\" style=\"width:{:.1}%\"></span><span class=\"a\" style=\"width:{:.1}%\"></span><span class=\"o\" style=\"width:{:.1}%\"></span></div></td></tr>",
            esc(&s.product),
            thousands(total),
            thousands(s.customer),
            thousands(s.agent),
            thousands(s.other),
            pct(s.customer, total),
            width(s.customer),
            width(s.agent),
            width(s.other),
        );
    }
    h.push_str("</tbody>\n</table>\n");
}

fn examples(h: &mut String, data: &ReportData) {
    h.push_str("<h2>Examples</h2>\n");
    if data.examples.is_empty() {
        h.push_str("<p class=\"note\">No examples in this range.</p>\n");
        return;
    }
    h.push_str("<div id=\"examples\">\n");
    let mut current: Option<&str> = None;
    for e in &data.examples {
        if current != Some(e.product.as_str()) {
            if current.is_some() {
                h.push_str("</ul>\n");
            }
            let _ = writeln!(h, "<h3>{}</h3>\n<ul class=\"examples\">", esc(&e.product));
            current = Some(e.product.as_str());
        }
        example_item(h, e);
    }
    h.push_str("</ul>\n</div>\n");
}

/// One example utterance as a list item: day, type, speaker, conversation, highlighted text.
fn example_item(h: &mut String, e: &Example) {
    let _ = writeln!(
        h,
        "<li><div class=\"meta\">{} · {} · {} · conversation <code>{}</code></div><div class=\"text\">{}</div></li>",
        day(e.date),
        esc(&e.interaction_type),
        esc(&e.participant),
        esc(&e.conversation_id),
        highlight(e)
    );
}

fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::DailyCount;

    /// Charts that are empty SVG documents.
    fn empty_charts() -> PageCharts<'static> {
        PageCharts {
            trend: "<svg></svg>",
            share: "<svg></svg>",
            ..PageCharts::default()
        }
    }

    fn example(text: &str, highlights: Vec<(usize, usize, bool)>) -> Example {
        Example {
            product: "Acme Router".into(),
            conversation_id: "c-1".into(),
            date: NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
            interaction_type: "chat".into(),
            participant: "customer".into(),
            text: text.into(),
            highlights,
        }
    }

    #[test]
    fn highlights_use_character_offsets_and_escape_everything() {
        // "é" is one character but two bytes: offsets are characters.
        let text = "é <script>alert(1)</script> my acme router & Nimbus Hub";
        let start = text.chars().position(|c| c == 'a').unwrap();
        let start = text.chars().skip(start + 1).position(|c| c == 'a').unwrap() + start + 1;
        let own = (start, start + "acme router".len(), true);
        let nimbus = text.chars().count() - "Nimbus Hub".len();
        let html = highlight(&example(text, vec![own, (nimbus, nimbus + 10, false)]));
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(
            html.contains("<mark class=\"own\">acme router</mark>"),
            "{html}"
        );
        assert!(
            html.contains("&amp; <mark class=\"other\">Nimbus Hub</mark>"),
            "{html}"
        );
    }

    #[test]
    fn long_texts_are_cut_around_the_mention_and_bad_offsets_ignored() {
        let text = format!("{}Acme Router{}", "x".repeat(500), "y".repeat(500));
        let html = highlight(&example(&text, vec![(500, 511, true), (2000, 2010, true)]));
        assert!(html.starts_with('…') && html.ends_with('…'));
        assert!(html.contains("<mark class=\"own\">Acme Router</mark>"));
        assert!(html.chars().count() < CONTEXT_BEFORE + CONTEXT_AFTER + 50);
    }

    fn data(days: &[(u32, &str, u64)], from: u32, to: u32) -> ReportData {
        let d = |n: u32| NaiveDate::from_ymd_opt(2026, 3, n).unwrap();
        ReportData {
            range: Some((d(from), d(to))),
            daily: days
                .iter()
                .map(|(n, p, m)| DailyCount {
                    date: d(*n),
                    interaction_type: "voice".into(),
                    product: (*p).into(),
                    mentions: *m,
                    conversations: 1,
                })
                .collect(),
            ..ReportData::default()
        }
    }

    #[test]
    fn movers_are_the_changes_beyond_chance() {
        let d = data(
            &[
                (2, "A", 5),
                (10, "A", 1),
                (16, "A", 9),
                (3, "B", 4),
                (20, "C", 2),
                (9, "D", 20),
                (17, "D", 22),
            ],
            1,
            21,
        );
        // Weeks: 15..=21 and 8..=14. A: 9 vs 1 (p = 22/1024); B: 0 vs 0 (day 3 is older);
        // C: 2 vs 0, too few to test; D: 22 vs 20, chance. Two tested, A's q = 2·22/1024.
        let m = movers(&d).unwrap();
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!(
            (m[0].product.as_str(), m[0].this_week, m[0].last_week),
            ("A", 9, 1)
        );
        assert!((m[0].p_value - 22.0 / 1024.0).abs() < 1e-12);
        assert!((m[0].q_value - 44.0 / 1024.0).abs() < 1e-12);
        assert!(movers(&data(&[(1, "A", 1)], 1, 1))
            .unwrap_err()
            .contains("14 days"));
        let html = render_html(&d, &empty_charts());
        assert!(html.contains("1 → 9; ×9.00 (95% "), "{html}");
        assert!(html.contains("p = 0.021"), "{html}");
    }

    /// Poisson counts with mean `lambda` from a seeded generator (Knuth's method).
    fn poisson(state: &mut u64, lambda: f64) -> u64 {
        let limit = (-lambda).exp();
        let mut k = 0;
        let mut prod = 1.0;
        loop {
            // xorshift64*
            *state ^= *state >> 12;
            *state ^= *state << 25;
            *state ^= *state >> 27;
            let u = (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64;
            prod *= u;
            if prod <= limit {
                return k;
            }
            k += 1;
        }
    }

    /// 28 days of `products` products, each with `daily` mentions a day on average; the last
    /// week's rate of product 0 is multiplied by `factor`.
    fn poisson_data(seed: u64, products: usize, daily: f64, factor: f64) -> ReportData {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let names: Vec<String> = (0..products).map(|i| format!("P{i}")).collect();
        let mut days = Vec::new();
        for day in 1..=28u32 {
            for (i, name) in names.iter().enumerate() {
                let lambda = if i == 0 && day >= 22 {
                    daily * factor
                } else {
                    daily
                };
                days.push((day, name.as_str(), poisson(&mut state, lambda)));
            }
        }
        data(&days, 1, 28)
    }

    #[test]
    fn flat_products_are_almost_never_movers_and_a_tripling_always_is() {
        // 500 reports of 8 flat products at 30 mentions a day: the adjusted test may flag a
        // week by chance in at most 5% of them (the FDR is the chance of any flag on flat data).
        let flagged = (0..500)
            .filter(|&seed| {
                !movers(&poisson_data(seed, 8, 30.0, 1.0))
                    .unwrap()
                    .is_empty()
            })
            .count();
        assert!(flagged <= 25, "{flagged} of 500 flat reports flag a mover");
        // One product at three times its rate in the last week is found every time, and alone.
        for seed in 0..100 {
            let m = movers(&poisson_data(seed, 8, 30.0, 3.0)).unwrap();
            assert!(m.iter().any(|m| m.product == "P0"), "seed {seed}: {m:?}");
        }
    }

    #[test]
    fn page_is_self_contained_and_escapes_names() {
        let mut d = data(&[(1, "<b>Evil</b>", 3)], 1, 1);
        d.speakers = vec![crate::report::SpeakerCounts {
            product: "<b>Evil</b>".into(),
            customer: 2,
            agent: 1,
            other: 0,
        }];
        let html = render_html(&d, &empty_charts());
        assert!(!html.contains("<b>Evil"), "product names are escaped");
        assert!(html.contains("&lt;b&gt;Evil"));
        assert!(
            !html.contains("http://") && !html.contains("https://") && !html.contains("<script")
        );
        assert!(
            html.contains("14 days"),
            "one day gives a clear note on movers"
        );
        let empty = render_html(&ReportData::default(), &empty_charts());
        assert!(empty.contains("no conversations yet"));
    }
}
