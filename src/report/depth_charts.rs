//! The charts of the report's deeper sections, as PNG and SVG: one per flagged insight (its
//! window against its baseline, day by day), `sentiment` (diverging bars per product: negative
//! to the left, neutral across the middle, positive to the right), `topics` (a heat map of
//! products by Speech and Text Analytics topic) and `co_mentions` (a heat map of the products
//! mentioned in the same conversations).
//!
//! Invariants: every number drawn is one of the data's (shares are of the counts shown beside
//! them); an empty input still gives a labelled chart that says there is nothing to plot; the
//! files are written like the other charts (temporary name, then renamed).

use std::collections::BTreeMap;

use chrono::{Days, NaiveDate};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::draw::{centred_note, fit, label_step, DayAxis, CHART_WIDTH, FONT};
use super::insights::{Insight, Window, BASELINE_DAYS};
use crate::lake::aggregates::CountRow;

/// Where a day of an insight's chart stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DayRole {
    /// In the insight's window.
    Window,
    /// In its baseline.
    Baseline,
    /// Neither (the weekdays between a day window's baseline days): drawn for context.
    Context,
}

/// One flagged insight's days, for its chart.
#[derive(Clone, Debug, PartialEq)]
pub struct InsightSeries {
    pub title: String,
    /// What `values` are, for the y axis.
    pub unit: &'static str,
    /// From the baseline's first day to the window's last, every day.
    pub days: Vec<(NaiveDate, f64, DayRole)>,
    /// What the baseline expects each window day to be (conversations a day, or the share).
    pub expected: f64,
}

/// Conversations (or negative and scored mentions) of one product per day, every type added.
fn per_day(rows: &[CountRow], product: &str) -> BTreeMap<NaiveDate, (u64, u64, u64)> {
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    let mut out: BTreeMap<NaiveDate, (u64, u64, u64)> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.product == product) {
        let e = out.entry(r.conversation_date).or_default();
        e.0 += n(r.conversations);
        e.1 += n(r.negative);
        e.2 += n(r.positive) + n(r.negative) + n(r.neutral);
    }
    out
}

/// The days of `insight`'s chart from the lake's `mention_counts` rows: conversations that
/// mention its product each day (a spike or drop), or the negative share of its scored mentions
/// (a sentiment shift), from its baseline's first day to its window's last.
pub fn insight_series(rows: &[CountRow], insight: &Insight) -> InsightSeries {
    let by_day = per_day(rows, &insight.product);
    let back = |d: NaiveDate, n: u64| d.checked_sub_days(Days::new(n));
    let to = insight.to;
    let (first, baseline): (Option<NaiveDate>, Vec<NaiveDate>) = match insight.window {
        Window::Day => (
            back(to, 28),
            (1..=4).filter_map(|k| back(to, 7 * k)).collect(),
        ),
        Window::Week => (
            back(to, 6 + BASELINE_DAYS),
            (7..7 + BASELINE_DAYS).filter_map(|k| back(to, k)).collect(),
        ),
    };
    let lake_first = rows.iter().map(|r| r.conversation_date).min().unwrap_or(to);
    let first = first.unwrap_or(to).max(lake_first).min(insight.from);
    let share = insight.kind == "sentiment_shift";
    let mut days = Vec::new();
    let mut d = first;
    while d <= to {
        let (conversations, negative, scored) = by_day.get(&d).copied().unwrap_or_default();
        let value = if share {
            if scored == 0 {
                0.0
            } else {
                negative as f64 * 100.0 / scored as f64
            }
        } else {
            conversations as f64
        };
        let role = if d >= insight.from {
            DayRole::Window
        } else if baseline.contains(&d) {
            DayRole::Baseline
        } else {
            DayRole::Context
        };
        days.push((d, value, role));
        match d.succ_opt() {
            Some(next) => d = next,
            None => break,
        }
    }
    let window_days = days
        .iter()
        .filter(|x| x.2 == DayRole::Window)
        .count()
        .max(1);
    let (unit, expected) = if share {
        (
            "Negative share of scored mentions (%)",
            insight.baseline * 100.0,
        )
    } else {
        (
            "Conversations mentioning it",
            insight.baseline / window_days as f64,
        )
    };
    let when = if insight.from == insight.to {
        format!("{}", insight.from)
    } else {
        format!("{} to {}", insight.from, insight.to)
    };
    InsightSeries {
        title: format!(
            "{}: {} ({}), {when}",
            insight.product,
            insight.kind.replace('_', " "),
            insight.window.as_str()
        ),
        unit,
        days,
        expected,
    }
}

/// Mentions of one product by the sign of their sentiment, over the report's range.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SentimentCounts {
    pub product: String,
    pub positive: u64,
    pub negative: u64,
    pub neutral: u64,
    pub unscored: u64,
}

impl SentimentCounts {
    pub fn scored(&self) -> u64 {
        self.positive + self.negative + self.neutral
    }
}

/// A heat map: a value for each (row, column) pair; `None` where none applies (the diagonal
/// of products against themselves).
#[derive(Clone, Debug, PartialEq)]
pub struct HeatMap {
    pub title: String,
    pub rows: Vec<String>,
    pub columns: Vec<String>,
    pub cells: Vec<Vec<Option<u64>>>,
    pub empty_note: &'static str,
}

/// Rows and columns at most: a heat map with more is cut to the largest, so it stays legible.
const MAX_HEAT: usize = 14;

/// The products by topic heat map from (product, topic, conversations) triples: the products
/// and topics with the most conversations first.
pub fn topics_heat(triples: &[(String, String, u64)]) -> HeatMap {
    let mut rows: BTreeMap<&str, u64> = BTreeMap::new();
    let mut cols: BTreeMap<&str, u64> = BTreeMap::new();
    for (p, t, n) in triples {
        *rows.entry(p).or_default() += n;
        *cols.entry(t).or_default() += n;
    }
    let top = |m: BTreeMap<&str, u64>| {
        let mut v: Vec<(&str, u64)> = m.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v.into_iter()
            .take(MAX_HEAT)
            .map(|(k, _)| k.to_string())
            .collect::<Vec<_>>()
    };
    let (rows, columns) = (top(rows), top(cols));
    let at: BTreeMap<(&str, &str), u64> = triples
        .iter()
        .map(|(p, t, n)| ((p.as_str(), t.as_str()), *n))
        .collect();
    let cells = rows
        .iter()
        .map(|r| {
            columns
                .iter()
                .map(|c| Some(at.get(&(r.as_str(), c.as_str())).copied().unwrap_or(0)))
                .collect()
        })
        .collect();
    HeatMap {
        title: "Topics per product (conversations where both occur)".into(),
        rows,
        columns,
        cells,
        empty_note: "No Speech and Text Analytics topics in range",
    }
}

/// The products by products heat map from (product a, product b, conversations) pairs (each
/// pair once): symmetric, the diagonal empty.
pub fn co_mentions_heat(pairs: &[(String, String, u64)]) -> HeatMap {
    let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
    let mut at: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for (a, b, n) in pairs {
        *totals.entry(a).or_default() += n;
        *totals.entry(b).or_default() += n;
        *at.entry((a.as_str(), b.as_str())).or_default() += n;
        *at.entry((b.as_str(), a.as_str())).or_default() += n;
    }
    let mut products: Vec<(&str, u64)> = totals.into_iter().collect();
    products.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let products: Vec<String> = products
        .into_iter()
        .take(MAX_HEAT)
        .map(|(p, _)| p.to_string())
        .collect();
    let cells = products
        .iter()
        .map(|r| {
            products
                .iter()
                .map(|c| (r != c).then(|| at.get(&(r.as_str(), c.as_str())).copied().unwrap_or(0)))
                .collect()
        })
        .collect();
    HeatMap {
        title: "Products mentioned together (conversations with both)".into(),
        rows: products.clone(),
        columns: products,
        cells,
        empty_note: "No conversation mentions two products in range",
    }
}

/// The size of an insight or sentiment chart.
pub(super) const SMALL_HEIGHT: u32 = 420;

/// The size of a heat map with `rows` rows.
pub(super) fn heat_size(rows: usize) -> (u32, u32) {
    (CHART_WIDTH, 140 + 40 * rows.max(2) as u32)
}

/// The size of the sentiment chart with `products` bars.
pub(super) fn sentiment_size(products: usize) -> (u32, u32) {
    (
        CHART_WIDTH,
        (150 + 44 * products.max(2) as u32).max(SMALL_HEIGHT),
    )
}

const WINDOW_COLOUR: RGBColor = RGBColor(0xe1, 0x57, 0x59);
const BASELINE_COLOUR: RGBColor = RGBColor(0x4e, 0x79, 0xa7);
const CONTEXT_COLOUR: RGBColor = RGBColor(0xd0, 0xd7, 0xde);
const NEGATIVE: RGBColor = RGBColor(0xcf, 0x22, 0x2e);
const NEUTRAL: RGBColor = RGBColor(0xbd, 0xc3, 0xc9);
const POSITIVE: RGBColor = RGBColor(0x1a, 0x7f, 0x37);
const GREY_TEXT: RGBColor = RGBColor(0x57, 0x60, 0x6a);

fn title<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    text: &str,
) -> Result<DrawingArea<DB, Shift>, DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    root.margin(12, 0, 0, 0)
        .titled(text, (FONT, 24).into_font().color(&BLACK))
}

/// An insight's chart: a bar per day (the window red, the baseline blue, other days light) and
/// a line across the window at what the baseline expects.
pub(super) fn draw_insight<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    s: &InsightSeries,
) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let body = title(root, &s.title).map_err(err)?;
    let n = s.days.len();
    let y_max = s
        .days
        .iter()
        .map(|d| d.1)
        .fold(s.expected, f64::max)
        .max(1.0);
    let mut chart = ChartBuilder::on(&body)
        .margin(10)
        .margin_right(30)
        .x_label_area_size(50)
        .y_label_area_size(75)
        .build_cartesian_2d(DayAxis::new(n, label_step(n, 10)), 0.0..y_max * 1.12)
        .map_err(err)?;
    let days = &s.days;
    let label = |x: &f64| -> String {
        let i = x.round();
        if i < 0.0 {
            return String::new();
        }
        days.get(i as usize)
            .map(|d| d.0.format("%b %d").to_string())
            .unwrap_or_default()
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc("Day (red: the window; blue: its baseline)")
        .y_desc(s.unit)
        .x_label_formatter(&label)
        .y_labels(6)
        .axis_desc_style((FONT, 16))
        .label_style((FONT, 14))
        .light_line_style(RGBColor(0xf3, 0xf3, 0xf3))
        .bold_line_style(RGBColor(0xdd, 0xdd, 0xdd))
        .draw()
        .map_err(err)?;
    chart
        .draw_series(s.days.iter().enumerate().map(|(i, (_, v, role))| {
            let colour = match role {
                DayRole::Window => WINDOW_COLOUR,
                DayRole::Baseline => BASELINE_COLOUR,
                DayRole::Context => CONTEXT_COLOUR,
            };
            let x = i as f64;
            Rectangle::new([(x - 0.38, 0.0), (x + 0.38, *v)], colour.filled())
        }))
        .map_err(err)?;
    let window: Vec<usize> = (0..n).filter(|&i| s.days[i].2 == DayRole::Window).collect();
    if let (Some(&a), Some(&b)) = (window.first(), window.last()) {
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(a as f64 - 0.5, s.expected), (b as f64 + 0.5, s.expected)],
                BLACK.stroke_width(2),
            )))
            .map_err(err)?;
        let note = (FONT, 14)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Right, VPos::Bottom));
        chart
            .draw_series(std::iter::once(Text::new(
                format!("expected {:.1}", s.expected),
                (b as f64 + 0.45, s.expected + y_max * 0.02),
                note,
            )))
            .map_err(err)?;
    }
    if n == 0 {
        let plotted = chart.plotting_area().strip_coord_spec();
        centred_note(root, &plotted, "No data to plot").map_err(err)?;
    }
    Ok(())
}

/// The sentiment chart: one diverging bar per product, negative to the left of the centre line,
/// neutral across it, positive to the right, as shares of the product's scored mentions.
pub(super) fn draw_sentiment<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    products: &[SentimentCounts],
) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let body = title(
        root,
        "Sentiment per product (share of scored mentions: negative, neutral, positive)",
    )
    .map_err(err)?;
    let (w, h) = body.dim_in_pixel();
    let (w, h) = (w as i32, h as i32);
    let label_w = 230;
    let right_w = 240;
    let plot_w = (w - label_w - right_w - 20).max(100);
    let centre = label_w + plot_w / 2;
    let half = plot_w / 2;
    let top = 30;
    let row = 44;
    let small = (FONT, 14).into_font().color(&GREY_TEXT);
    // The scale: −100% … 100% of scored mentions.
    for pct in [-100, -50, 0, 50, 100] {
        let x = centre + half * pct / 100;
        let colour = if pct == 0 {
            RGBColor(0x8c, 0x8c, 0x8c)
        } else {
            RGBColor(0xea, 0xee, 0xf2)
        };
        body.draw(&PathElement::new(
            vec![(x, top - 6), (x, top + row * products.len().max(1) as i32)],
            colour.stroke_width(1),
        ))
        .map_err(err)?;
        body.draw(&Text::new(
            format!("{}%", pct.abs()),
            (x, top - 10),
            small.clone().pos(Pos::new(HPos::Center, VPos::Bottom)),
        ))
        .map_err(err)?;
    }
    let name_style = (FONT, 16)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Right, VPos::Center));
    let count_style = (FONT, 14)
        .into_font()
        .color(&GREY_TEXT)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (k, p) in products.iter().enumerate() {
        let y = top + row * k as i32 + row / 2;
        let name = fit(&body, &p.product, &name_style, label_w as u32 - 16);
        body.draw(&Text::new(name, (label_w - 10, y), name_style.clone()))
            .map_err(err)?;
        let scored = p.scored();
        let summary = if scored == 0 {
            format!("no scored mentions ({} unscored)", p.unscored)
        } else {
            format!(
                "{:.0}% neg · {:.0}% pos · n={scored}",
                p.negative as f64 * 100.0 / scored as f64,
                p.positive as f64 * 100.0 / scored as f64
            )
        };
        body.draw(&Text::new(
            summary,
            (label_w + plot_w + 12, y),
            count_style.clone(),
        ))
        .map_err(err)?;
        if scored == 0 {
            continue;
        }
        let px = |n: u64| (n as f64 * half as f64 / scored as f64).round() as i32;
        let neutral_half = px(p.neutral) / 2;
        let (y0, y1) = (y - 13, y + 13);
        let segments = [
            (
                centre - neutral_half - px(p.negative),
                centre - neutral_half,
                NEGATIVE,
            ),
            (
                centre - neutral_half,
                centre - neutral_half + px(p.neutral),
                NEUTRAL,
            ),
            (
                centre - neutral_half + px(p.neutral),
                centre - neutral_half + px(p.neutral) + px(p.positive),
                POSITIVE,
            ),
        ];
        for (a, b, colour) in segments {
            if b > a {
                body.draw(&Rectangle::new([(a, y0), (b, y1)], colour.filled()))
                    .map_err(err)?;
            }
        }
    }
    if products.is_empty() {
        centred_note(root, &body, "No product mentions in range").map_err(err)?;
    }
    let legend = (FONT, 14)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    let ly = h - 18;
    for (i, (name, colour)) in [
        ("negative", NEGATIVE),
        ("neutral", NEUTRAL),
        ("positive", POSITIVE),
    ]
    .into_iter()
    .enumerate()
    {
        let x = label_w + 140 * i as i32;
        body.draw(&Rectangle::new(
            [(x, ly - 7), (x + 14, ly + 7)],
            colour.filled(),
        ))
        .map_err(err)?;
        body.draw(&Text::new(name, (x + 20, ly), legend.clone()))
            .map_err(err)?;
    }
    Ok(())
}

/// A heat map: a row label on the left, column labels on top, each cell shaded by its value
/// against the largest and labelled with it.
pub(super) fn draw_heat<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    m: &HeatMap,
) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let body = title(root, &m.title).map_err(err)?;
    if m.rows.is_empty() || m.columns.is_empty() {
        return centred_note(root, &body, m.empty_note).map_err(err);
    }
    let (w, _) = body.dim_in_pixel();
    let label_w = 230i32;
    let head = 70i32;
    let cell_w = ((w as i32 - label_w - 20) / m.columns.len() as i32).clamp(40, 160);
    let cell_h = 40i32;
    let max = m
        .cells
        .iter()
        .flatten()
        .flatten()
        .copied()
        .max()
        .unwrap_or(0)
        .max(1);
    let head_style = (FONT, 14)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Bottom));
    for (j, c) in m.columns.iter().enumerate() {
        let x = label_w + cell_w * j as i32 + cell_w / 2;
        let name = fit(&body, c, &head_style, cell_w as u32 - 6);
        body.draw(&Text::new(name, (x, head - 8), head_style.clone()))
            .map_err(err)?;
    }
    let row_style = (FONT, 15)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Right, VPos::Center));
    for (i, r) in m.rows.iter().enumerate() {
        let y = head + cell_h * i as i32;
        let name = fit(&body, r, &row_style, label_w as u32 - 16);
        body.draw(&Text::new(
            name,
            (label_w - 10, y + cell_h / 2),
            row_style.clone(),
        ))
        .map_err(err)?;
        for (j, v) in m.cells[i].iter().enumerate() {
            let x = label_w + cell_w * j as i32;
            let (fill, text) = match v {
                None => (RGBColor(0xf6, 0xf7, 0xf9), "–".to_string()),
                Some(v) => {
                    // White to the report's blue, by the value's share of the largest.
                    let t = *v as f64 / max as f64;
                    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * t).round() as u8;
                    (
                        RGBColor(mix(0xff, 0x2f), mix(0xff, 0x5d), mix(0xff, 0x8c)),
                        v.to_string(),
                    )
                }
            };
            body.draw(&Rectangle::new(
                [(x + 1, y + 1), (x + cell_w - 1, y + cell_h - 1)],
                fill.filled(),
            ))
            .map_err(err)?;
            let dark = matches!(v, Some(v) if (*v as f64 / max as f64) > 0.55);
            let style = (FONT, 14)
                .into_font()
                .color(if dark { &WHITE } else { &BLACK })
                .pos(Pos::new(HPos::Center, VPos::Center));
            body.draw(&Text::new(text, (x + cell_w / 2, y + cell_h / 2), style))
                .map_err(err)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    fn row(d: u32, product: &str, conversations: i64, negative: i64, scored: i64) -> CountRow {
        CountRow {
            conversation_date: day(d),
            interaction_type: "voice".into(),
            product: product.into(),
            mentions: conversations,
            conversations,
            positive: scored - negative,
            negative,
            neutral: 0,
            sentiment_milli: 0,
        }
    }

    fn insight(kind: &'static str, window: Window, from: u32, to: u32, baseline: f64) -> Insight {
        Insight {
            kind,
            product: "Acme".into(),
            window,
            from: day(from),
            to: day(to),
            value: 0.0,
            baseline,
            ratio: 1.0,
            low: 1.0,
            high: 1.0,
            p_value: 0.5,
            q_value: 0.5,
            counts: (0, 0),
            flagged: true,
            examples: Vec::new(),
            topic: None,
        }
    }

    /// A day window's chart runs from four weeks before it, its baseline is the same weekdays,
    /// and the values are the product's conversations (other products left out).
    #[test]
    fn insight_days_follow_the_window_and_baseline() {
        let mut rows: Vec<CountRow> = (1..=30).map(|d| row(d, "Acme", 2, 1, 4)).collect();
        rows.push(row(30, "Other", 50, 0, 0));
        rows.push(row(30, "Acme", 10, 9, 10));
        let s = insight_series(&rows, &insight("spike", Window::Day, 30, 30, 2.0));
        assert_eq!(s.days.first().map(|d| d.0), Some(day(2)));
        assert_eq!(s.days.last().map(|d| (d.0, d.1)), Some((day(30), 12.0)));
        let baseline: Vec<NaiveDate> = s
            .days
            .iter()
            .filter(|d| d.2 == DayRole::Baseline)
            .map(|d| d.0)
            .collect();
        assert_eq!(baseline, vec![day(2), day(9), day(16), day(23)]);
        assert_eq!(s.expected, 2.0);
        // A week's sentiment shift: shares in percent, its window's seven days, and a baseline
        // cut at the lake's first day.
        let s = insight_series(
            &rows,
            &insight("sentiment_shift", Window::Week, 24, 30, 0.25),
        );
        assert_eq!(s.days.first().map(|d| d.0), Some(day(1)));
        assert_eq!(s.days.iter().filter(|d| d.2 == DayRole::Window).count(), 7);
        assert_eq!(s.days.iter().filter(|d| d.2 == DayRole::Context).count(), 0);
        assert_eq!(s.days[0].1, 25.0);
        // Day 30: 10 negative of 14 scored.
        assert!((s.days.last().unwrap().1 - 1000.0 / 14.0).abs() < 1e-9);
        assert_eq!(s.expected, 25.0);
    }

    #[test]
    fn heat_maps_keep_every_pair_and_the_largest_first() {
        let t = |p: &str, q: &str, n: u64| (p.to_string(), q.to_string(), n);
        let m = topics_heat(&[t("A", "billing", 3), t("B", "setup", 9), t("A", "setup", 1)]);
        assert_eq!(m.rows, vec!["B", "A"]);
        assert_eq!(m.columns, vec!["setup", "billing"]);
        assert_eq!(
            m.cells,
            vec![vec![Some(9), Some(0)], vec![Some(1), Some(3)]]
        );
        let c = co_mentions_heat(&[t("A", "B", 4), t("A", "C", 1)]);
        assert_eq!(c.rows, vec!["A", "B", "C"]);
        assert_eq!(
            c.cells,
            vec![
                vec![None, Some(4), Some(1)],
                vec![Some(4), None, Some(0)],
                vec![Some(1), Some(0), None],
            ]
        );
        assert!(topics_heat(&[]).rows.is_empty());
    }
}
