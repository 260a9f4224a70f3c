//! The report's charts, as PNG and SVG: `trend` (daily mentions per product, one line per
//! product, optionally one small chart per interaction type) and `share` (mentions by
//! interaction type, stacked by product).
//!
//! Invariants: every day of the range counts (a day without data is 0 for every product); a
//! line has at most `MAX_POINTS` points whatever the range (a range longer than that is drawn
//! in buckets of whole weeks, months or years, each point the sum of its days), so a lake whose
//! dates span 1901 to 9999 draws in the same time and memory as one month; the
//! top `top_n` products by total get their own colour, the same in every chart, and the rest are
//! summed into "other", so no mention is lost or counted twice; the legend sits in a right-hand
//! margin so it never covers the data; empty input still gives a labelled chart that says there
//! is nothing to plot; each file is written under a temporary name and renamed into place.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use chrono::{Datelike, NaiveDate};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;

use super::depth_charts::{self as depth, HeatMap, InsightSeries, SentimentCounts};
use super::draw::{centred_note, fit, label_step, DayAxis, FONT};
pub use super::draw::{CHART_HEIGHT, CHART_WIDTH};
use super::{DailyCount, ReportError};

/// Width of the right-hand margin that holds the legend.
const LEGEND_WIDTH: u32 = 250;
/// Vertical distance between legend entries.
const LEGEND_ROW: i32 = 26;
/// Label of the bucket that sums every product outside the top `top_n`.
const OTHER: &str = "other";
/// Title used when there is nothing to draw.
const EMPTY_TITLE: &str = "No product mentions in range";
/// Height of one row of small charts in a faceted trend chart.
const PANEL_HEIGHT: u32 = 320;
/// Most points on a trend line. A chart is 1200 pixels wide, so more than this many points
/// cannot be told apart anyway; a longer range (a conversation dated 1901 next to ones from
/// this year, or `--from 1901-01-01 --to 2199-12-31`) is summed into buckets of several days
/// rather than allocating and drawing one point per day for centuries.
const MAX_POINTS: u64 = 1000;
/// Bucket sizes in days tried in order (day, week, two weeks, four weeks, quarter, half year,
/// year); past a year, buckets are whole multiples of 364 days.
const BUCKET_DAYS: [u64; 7] = [1, 7, 14, 28, 91, 182, 364];

static FONT_BYTES: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// Colour-blind-friendly palette (Tableau 10) for the products; cycled when there are more.
const PALETTE: [RGBColor; 10] = [
    RGBColor(0x4e, 0x79, 0xa7),
    RGBColor(0xf2, 0x8e, 0x2b),
    RGBColor(0xe1, 0x57, 0x59),
    RGBColor(0x76, 0xb7, 0xb2),
    RGBColor(0x59, 0xa1, 0x4f),
    RGBColor(0xed, 0xc9, 0x48),
    RGBColor(0xb0, 0x7a, 0xa1),
    RGBColor(0xff, 0x9d, 0xa7),
    RGBColor(0x9c, 0x75, 0x5f),
    RGBColor(0x1b, 0x1b, 0x6b),
];
/// Colour of the "other" bucket, kept neutral so the named products stand out.
const OTHER_COLOUR: RGBColor = RGBColor(0x8c, 0x8c, 0x8c);

/// Paths of one chart's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartFiles {
    /// The PNG rendering (1200 pixels wide).
    pub png: PathBuf,
    /// The SVG rendering, same size.
    pub svg: PathBuf,
}

/// What the report's charts show, beyond the rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChartOptions {
    /// Products drawn separately; the rest are summed as "other" (at least 1).
    pub top_n: usize,
    /// The days on the x axis (both inclusive); default: the first to the last day in the rows.
    /// Rows outside it are ignored.
    pub range: Option<(NaiveDate, NaiveDate)>,
    /// One small trend chart per interaction type instead of one chart.
    pub facet_by_type: bool,
    /// Appended to the titles, e.g. "voice only".
    pub subtitle: Option<String>,
}

/// The files written by [`write_report_charts`], and the SVG documents for inlining.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportCharts {
    /// `trend.png` and `trend.svg`.
    pub trend: ChartFiles,
    /// `share.png` and `share.svg`.
    pub share: ChartFiles,
    /// The content of `trend.svg`.
    pub trend_svg: String,
    /// The content of `share.svg`.
    pub share_svg: String,
}

/// One product (or "other") and its mentions on each day of the range (trend) or in each
/// interaction type (share).
#[derive(Debug, Clone, PartialEq)]
struct Series {
    name: String,
    values: Vec<u64>,
    colour: RGBColor,
}

/// One small chart of a faceted trend chart: the values of every series in one interaction type.
#[derive(Debug, Clone, PartialEq)]
struct Panel {
    title: String,
    /// Indexed like `TrendPlot::series`, then by day.
    values: Vec<Vec<u64>>,
}

/// Everything needed to draw the trend chart, computed from the rows without touching a backend.
#[derive(Debug, Clone, PartialEq)]
struct TrendPlot {
    title: String,
    /// The first day of every bucket of the range, without gaps (every day when
    /// `bucket_days` is 1).
    dates: Vec<NaiveDate>,
    /// Days summed into one point: 1 unless the range has more than `MAX_POINTS` days.
    bucket_days: u64,
    /// Per product, the sum over interaction types; also the legend.
    series: Vec<Series>,
    /// Empty unless faceted by interaction type.
    panels: Vec<Panel>,
    size: (u32, u32),
}

/// Everything needed to draw the share chart.
#[derive(Debug, Clone, PartialEq)]
struct SharePlot {
    title: String,
    /// Interaction types, most mentions first.
    categories: Vec<String>,
    /// Per product, mentions in each category.
    series: Vec<Series>,
}

/// A chart to render on any backend.
#[derive(Clone, Copy)]
enum Figure<'a> {
    Trend(&'a TrendPlot),
    Share(&'a SharePlot),
    Insight(&'a InsightSeries),
    Sentiment(&'a [SentimentCounts]),
    Heat(&'a HeatMap),
}

impl Figure<'_> {
    fn size(&self) -> (u32, u32) {
        match self {
            Figure::Trend(p) => p.size,
            Figure::Share(_) => (CHART_WIDTH, CHART_HEIGHT),
            Figure::Insight(_) => (CHART_WIDTH, depth::SMALL_HEIGHT),
            Figure::Sentiment(p) => depth::sentiment_size(p.len()),
            Figure::Heat(m) => depth::heat_size(m.rows.len()),
        }
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        match self {
            Figure::Trend(p) => draw(root, p),
            Figure::Share(p) => draw_share(root, p),
            Figure::Insight(s) => depth::draw_insight(root, s),
            Figure::Sentiment(p) => depth::draw_sentiment(root, p),
            Figure::Heat(m) => depth::draw_heat(root, m),
        }
    }
}

/// The files and SVG documents of the report's deeper charts: one per flagged insight
/// (`insight-1` …), `sentiment`, `topics` and `co_mentions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepthCharts {
    /// Per flagged insight, in the order given.
    pub insights: Vec<(ChartFiles, String)>,
    pub sentiment: (ChartFiles, String),
    pub topics: (ChartFiles, String),
    pub co_mentions: (ChartFiles, String),
}

/// Writes the deeper charts into `out_dir` (created if missing).
pub fn write_depth_charts(
    insights: &[InsightSeries],
    sentiment: &[SentimentCounts],
    topics: &HeatMap,
    co_mentions: &HeatMap,
    out_dir: &Path,
) -> Result<DepthCharts, ReportError> {
    let insights = insights
        .iter()
        .enumerate()
        .map(|(i, s)| write_figure(Figure::Insight(s), out_dir, &format!("insight-{}", i + 1)))
        .collect::<Result<Vec<_>, _>>()?;
    // The charts of insights an earlier report had and this one has not would be read as
    // this report's.
    if let Ok(dir) = std::fs::read_dir(out_dir) {
        for entry in dir.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let stale = name
                .strip_prefix("insight-")
                .and_then(|rest| rest.rsplit_once('.'))
                .filter(|(_, ext)| *ext == "png" || *ext == "svg")
                .and_then(|(k, _)| k.parse::<usize>().ok())
                .is_some_and(|k| k > insights.len());
            if stale {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    Ok(DepthCharts {
        insights,
        sentiment: write_figure(Figure::Sentiment(sentiment), out_dir, "sentiment")?,
        topics: write_figure(Figure::Heat(topics), out_dir, "topics")?,
        co_mentions: write_figure(Figure::Heat(co_mentions), out_dir, "co_mentions")?,
    })
}

/// Writes `trend.png` and `trend.svg` into `out_dir` (created if missing): daily mentions per
/// product, the top `top_n` products by total plus "other".
pub fn write_trend_charts(
    rows: &[DailyCount],
    out_dir: &Path,
    top_n: usize,
) -> Result<ChartFiles, ReportError> {
    let opts = ChartOptions {
        top_n,
        ..ChartOptions::default()
    };
    Ok(write_figure(Figure::Trend(&build_trend(rows, &opts)), out_dir, "trend")?.0)
}

/// Writes the report's charts into `out_dir` (created if missing): `trend.png`/`.svg` and
/// `share.png`/`.svg`.
pub fn write_report_charts(
    rows: &[DailyCount],
    out_dir: &Path,
    opts: &ChartOptions,
) -> Result<ReportCharts, ReportError> {
    let trend = build_trend(rows, opts);
    let share = build_share(rows, opts);
    let (trend_files, trend_svg) = write_figure(Figure::Trend(&trend), out_dir, "trend")?;
    let (share_files, share_svg) = write_figure(Figure::Share(&share), out_dir, "share")?;
    Ok(ReportCharts {
        trend: trend_files,
        share: share_files,
        trend_svg,
        share_svg,
    })
}

/// Writes `<name>.png` and `<name>.svg`; returns their paths and the SVG document.
fn write_figure(
    figure: Figure<'_>,
    out_dir: &Path,
    name: &str,
) -> Result<(ChartFiles, String), ReportError> {
    register_font()?;
    std::fs::create_dir_all(out_dir).map_err(|source| ReportError::CreateDir {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let png = out_dir.join(format!("{name}.png"));
    let svg = out_dir.join(format!("{name}.svg"));
    write_png(figure, out_dir, &png)?;
    let document = write_svg(figure, out_dir, &svg)?;
    tracing::info!(png = %png.display(), svg = %svg.display(), "wrote {name} chart");
    Ok((ChartFiles { png, svg }, document))
}

/// Registers the embedded font once per process so no system font library is needed.
fn register_font() -> Result<(), ReportError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(ReportError::Font)
    }
}

/// The products with their own colour (largest total first, ties by name) and the label of the
/// "other" bucket when some products are left out.
fn rank_products(rows: &[&DailyCount], top_n: usize) -> (Vec<String>, Option<&'static str>) {
    let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
    for r in rows {
        *totals.entry(r.product.as_str()).or_default() += r.mentions;
    }
    let mut ranked: Vec<(&str, u64)> = totals.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let top: Vec<String> = ranked
        .iter()
        .take(top_n.max(1))
        .map(|(name, _)| (*name).to_string())
        .collect();
    // A real product called "other" must not be confused with the bucket.
    let other = (ranked.len() > top.len()).then(|| {
        if top.iter().any(|t| t == OTHER) {
            "other products"
        } else {
            OTHER
        }
    });
    (top, other)
}

/// Empty series (all zeros, `len` values) for the ranked products and the "other" bucket.
fn empty_series(top: &[String], other: Option<&str>, len: usize) -> Vec<Series> {
    let mut series: Vec<Series> = top
        .iter()
        .enumerate()
        .map(|(i, name)| Series {
            name: name.clone(),
            values: vec![0; len],
            colour: PALETTE[i % PALETTE.len()],
        })
        .collect();
    if let Some(label) = other {
        series.push(Series {
            name: label.to_string(),
            values: vec![0; len],
            colour: OTHER_COLOUR,
        });
    }
    series
}

/// Index of `product`'s series: its rank, or the "other" bucket after the ranked ones.
fn series_index(top: &[String], product: &str) -> usize {
    top.iter().position(|t| t == product).unwrap_or(top.len())
}

fn with_subtitle(title: String, opts: &ChartOptions) -> String {
    match &opts.subtitle {
        Some(s) if !s.is_empty() => format!("{title} ({s})"),
        _ => title,
    }
}

/// The range of the chart and the rows inside it; `None` when there is neither a range nor data.
fn in_range<'a>(
    rows: &'a [DailyCount],
    opts: &ChartOptions,
) -> Option<(NaiveDate, NaiveDate, Vec<&'a DailyCount>)> {
    let (first, last) = match opts.range {
        Some(r) => r,
        None => (
            rows.iter().map(|r| r.date).min()?,
            rows.iter().map(|r| r.date).max()?,
        ),
    };
    let inside = rows
        .iter()
        .filter(|r| r.date >= first && r.date <= last)
        .collect();
    Some((first, last, inside))
}

/// Sums the rows per day and product (and per interaction type when faceted), fills missing
/// days with 0 and folds the tail into "other". Kept for the unit tests' older entry point.
#[cfg(test)]
fn build_plot(rows: &[DailyCount], top_n: usize) -> TrendPlot {
    build_trend(
        rows,
        &ChartOptions {
            top_n,
            ..ChartOptions::default()
        },
    )
}

/// Days in one bucket so that `days` days give at most `MAX_POINTS` points.
fn bucket_days(days: u64) -> u64 {
    let fits = |b: u64| days.div_ceil(b) <= MAX_POINTS;
    BUCKET_DAYS
        .into_iter()
        .find(|b| fits(*b))
        .unwrap_or_else(|| {
            let years = days.div_ceil(MAX_POINTS).div_ceil(364);
            years * 364
        })
}

/// The first day of every bucket of `bucket` days from `first` to `last` (both inclusive);
/// empty when `last` is before `first`. Checked: a bucket that would start past the last
/// representable date ends the list instead of panicking.
fn bucket_starts(first: NaiveDate, last: NaiveDate, bucket: u64) -> Vec<NaiveDate> {
    let Ok(days) = u64::try_from((last - first).num_days() + 1) else {
        return Vec::new();
    };
    (0..days.div_ceil(bucket))
        .map_while(|i| first.checked_add_days(chrono::Days::new(i * bucket)))
        .collect()
}

fn build_trend(rows: &[DailyCount], opts: &ChartOptions) -> TrendPlot {
    let size = (CHART_WIDTH, CHART_HEIGHT);
    let Some((first, last, rows)) = in_range(rows, opts) else {
        return TrendPlot {
            title: with_subtitle(EMPTY_TITLE.to_string(), opts),
            dates: Vec::new(),
            bucket_days: 1,
            series: Vec::new(),
            panels: Vec::new(),
            size,
        };
    };
    let span = u64::try_from((last - first).num_days() + 1).unwrap_or(0);
    let bucket = bucket_days(span);
    let dates = bucket_starts(first, last, bucket);
    let (top, other) = rank_products(&rows, opts.top_n);
    let mut series = if rows.is_empty() {
        Vec::new()
    } else {
        empty_series(&top, other, dates.len())
    };

    // Panels: interaction types, most mentions first (ties by name).
    let mut type_totals: BTreeMap<&str, u64> = BTreeMap::new();
    for r in &rows {
        *type_totals.entry(r.interaction_type.as_str()).or_default() += r.mentions;
    }
    let mut types: Vec<(&str, u64)> = type_totals.into_iter().collect();
    types.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut panels: Vec<Panel> = if opts.facet_by_type {
        types
            .iter()
            .map(|(t, _)| Panel {
                title: (*t).to_string(),
                values: vec![vec![0; dates.len()]; series.len()],
            })
            .collect()
    } else {
        Vec::new()
    };

    for r in &rows {
        // `first` is at most r.date (rows are filtered to the range), so the offset is not
        // negative; `get_mut` below drops anything past the last bucket.
        let offset = u64::try_from((r.date - first).num_days()).unwrap_or(u64::MAX);
        let day = usize::try_from(offset / bucket).unwrap_or(usize::MAX);
        let line = series_index(&top, &r.product);
        if let Some(value) = series.get_mut(line).and_then(|s| s.values.get_mut(day)) {
            *value += r.mentions;
        }
        let panel = types.iter().position(|(t, _)| *t == r.interaction_type);
        if let Some(value) = panel
            .and_then(|p| panels.get_mut(p))
            .and_then(|p| p.values.get_mut(line))
            .and_then(|v| v.get_mut(day))
        {
            *value += r.mentions;
        }
    }

    let per = match bucket {
        1 => "day".to_string(),
        7 => "week".to_string(),
        n => format!("{n} days"),
    };
    let title = if rows.is_empty() {
        format!("{EMPTY_TITLE}, {first} to {last}")
    } else if panels.is_empty() {
        format!("Product mentions per {per}, {first} to {last}")
    } else {
        format!("Product mentions per {per} by interaction type, {first} to {last}")
    };
    let size = if panels.len() > 1 {
        let (_, rows) = grid(panels.len());
        (
            CHART_WIDTH,
            (80 + rows as u32 * PANEL_HEIGHT).max(CHART_HEIGHT),
        )
    } else {
        size
    };
    TrendPlot {
        title: with_subtitle(title, opts),
        dates,
        bucket_days: bucket,
        series,
        panels,
        size,
    }
}

/// Columns and rows of the grid of small charts.
fn grid(panels: usize) -> (usize, usize) {
    let cols = match panels {
        0 | 1 => 1,
        2..=4 => 2,
        _ => 3,
    };
    (cols, panels.div_ceil(cols).max(1))
}

/// Mentions per interaction type (most first), stacked by product.
fn build_share(rows: &[DailyCount], opts: &ChartOptions) -> SharePlot {
    let Some((first, last, rows)) = in_range(rows, opts) else {
        return SharePlot {
            title: with_subtitle(EMPTY_TITLE.to_string(), opts),
            categories: Vec::new(),
            series: Vec::new(),
        };
    };
    let mut type_totals: BTreeMap<&str, u64> = BTreeMap::new();
    for r in &rows {
        *type_totals.entry(r.interaction_type.as_str()).or_default() += r.mentions;
    }
    let mut types: Vec<(&str, u64)> = type_totals.into_iter().collect();
    types.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let categories: Vec<String> = types.iter().map(|(t, _)| (*t).to_string()).collect();
    let (top, other) = rank_products(&rows, opts.top_n);
    let mut series = if rows.is_empty() {
        Vec::new()
    } else {
        empty_series(&top, other, categories.len())
    };
    for r in &rows {
        let line = series_index(&top, &r.product);
        let column = categories.iter().position(|c| *c == r.interaction_type);
        if let Some(value) = column.and_then(|c| series.get_mut(line)?.values.get_mut(c)) {
            *value += r.mentions;
        }
    }
    let title = if rows.is_empty() {
        format!("{EMPTY_TITLE}, {first} to {last}")
    } else {
        format!("Mentions by interaction type and product, {first} to {last}")
    };
    SharePlot {
        title: with_subtitle(title, opts),
        categories,
        series,
    }
}

/// Renders the PNG into memory (plotters draws into an RGB buffer; the `png` crate encodes it,
/// so the build has no image library), writes it under a temporary name and renames it.
fn write_png(figure: Figure<'_>, out_dir: &Path, target: &Path) -> Result<(), ReportError> {
    let png = render_png(figure).map_err(|message| ReportError::Draw {
        path: target.to_path_buf(),
        message,
    })?;
    let tmp = out_dir.join(format!(".chart.{}.tmp.png", unique_suffix()));
    let write = std::fs::write(&tmp, &png).and_then(|()| std::fs::rename(&tmp, target));
    write.map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        ReportError::Write {
            path: target.to_path_buf(),
            source,
        }
    })
}

/// The PNG file for `figure`: 8-bit RGB.
fn render_png(figure: Figure<'_>) -> Result<Vec<u8>, String> {
    let (width, height) = figure.size();
    let mut pixels = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
        figure.draw(&root)?;
        root.present().map_err(|e| e.to_string())?;
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    // A filter chosen per row, as the `image` crate did (the files are byte for byte the ones
    // it wrote), half the size of a fixed filter for these flat-coloured charts.
    encoder.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
    encoder
        .write_header()
        .and_then(|mut w| w.write_image_data(&pixels))
        .map_err(|e| format!("cannot encode the PNG: {e}"))?;
    Ok(out)
}

/// Renders the SVG into memory and writes it under a temporary name, then renames it.
fn write_svg(figure: Figure<'_>, out_dir: &Path, target: &Path) -> Result<String, ReportError> {
    let svg = render_svg(figure).map_err(|message| ReportError::Draw {
        path: target.to_path_buf(),
        message,
    })?;
    let tmp = out_dir.join(format!(".chart.{}.tmp.svg", unique_suffix()));
    let write = std::fs::write(&tmp, svg.as_bytes()).and_then(|()| std::fs::rename(&tmp, target));
    write.map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        ReportError::Write {
            path: target.to_path_buf(),
            source,
        }
    })?;
    Ok(svg)
}

/// Process id plus a per-process counter, so concurrent writers never share a temporary file.
fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{}-{n}", std::process::id())
}

/// The SVG document for `figure`.
fn render_svg(figure: Figure<'_>) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, figure.size()).into_drawing_area();
        figure.draw(&root)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// Draws the title and splits off the legend margin; returns (chart area, legend area).
type Areas<DB> = (DrawingArea<DB, Shift>, DrawingArea<DB, Shift>);
fn frame<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
) -> Result<Areas<DB>, DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let body = root
        .margin(12, 0, 0, 0)
        .titled(title, (FONT, 28).into_font().color(&BLACK))?;
    let (width, _) = body.dim_in_pixel();
    Ok(body.split_horizontally(width.saturating_sub(LEGEND_WIDTH)))
}

/// Draws the whole trend chart (title, one or several plots, legend) on any plotters backend.
fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, plot: &TrendPlot) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let (chart_area, legend_area) = frame(root, &plot.title).map_err(err)?;
    let y_max = if plot.panels.is_empty() {
        plot.series
            .iter()
            .flat_map(|s| s.values.iter().copied())
            .max()
    } else {
        // Small charts share the y axis so their heights compare honestly.
        plot.panels
            .iter()
            .flat_map(|p| p.values.iter().flatten().copied())
            .max()
    }
    .unwrap_or(0);
    // Headroom above the highest point; at least 1 so an all-zero chart has a y range.
    let y_top = y_max + y_max / 10 + 1;
    let x_desc = match plot.bucket_days {
        1 => "Date".to_string(),
        n => format!("Date (each point sums {n} days from that date)"),
    };

    if plot.panels.is_empty() {
        let lines: Vec<(RGBColor, &[u64])> = plot
            .series
            .iter()
            .map(|s| (s.colour, s.values.as_slice()))
            .collect();
        let plotted =
            draw_lines(&chart_area, None, &x_desc, &plot.dates, &lines, y_top).map_err(err)?;
        if plot.series.is_empty() {
            centred_note(root, &plotted, "No data to plot").map_err(err)?;
        }
    } else {
        let (cols, rows) = grid(plot.panels.len());
        let cells = chart_area.split_evenly((rows, cols));
        for (cell, panel) in cells.iter().zip(&plot.panels) {
            let lines: Vec<(RGBColor, &[u64])> = plot
                .series
                .iter()
                .zip(&panel.values)
                .map(|(s, v)| (s.colour, v.as_slice()))
                .collect();
            draw_lines(
                cell,
                Some(&panel.title),
                &x_desc,
                &plot.dates,
                &lines,
                y_top,
            )
            .map_err(err)?;
        }
    }
    draw_legend(&legend_area, &plot.series, false).map_err(err)
}

/// One line chart (dates on x, mentions on y) in `area`; `caption` makes it a small chart of a
/// grid. Returns the plotting area (inside the axes).
fn draw_lines<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    caption: Option<&str>,
    x_desc: &str,
    dates: &[NaiveDate],
    lines: &[(RGBColor, &[u64])],
    y_top: u64,
) -> Result<DrawingArea<DB, Shift>, DrawingAreaErrorKind<DB::ErrorType>> {
    let small = caption.is_some();
    let days = dates.len();
    let same_year = dates.first().map(|d| d.year()) == dates.last().map(|d| d.year());
    let (date_format, max_labels) = match (same_year, small) {
        (true, false) => ("%m-%d", 14),
        (true, true) => ("%m-%d", 6),
        (false, false) => ("%Y-%m-%d", 8),
        (false, true) => ("%Y-%m-%d", 3),
    };
    let step = label_step(days, max_labels);

    let mut builder = ChartBuilder::on(area);
    builder
        .margin_top(10)
        .margin_left(10)
        .margin_right(20)
        .margin_bottom(10)
        .x_label_area_size(if small { 40 } else { 55 })
        .y_label_area_size(if small { 60 } else { 75 });
    if let Some(caption) = caption {
        builder.caption(caption, (FONT, 18).into_font().color(&BLACK));
    }
    let mut chart = builder.build_cartesian_2d(DayAxis::new(days, step), 0u64..y_top)?;

    let format_date = |x: &f64| -> String {
        let i = x.round();
        if i < 0.0 {
            return String::new();
        }
        dates
            .get(i as usize)
            .map(|d| d.format(date_format).to_string())
            .unwrap_or_default()
    };
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc("Mentions")
        .x_label_formatter(&format_date)
        .y_labels(if small { 5 } else { 8 })
        .axis_desc_style((FONT, if small { 14 } else { 18 }))
        .label_style((FONT, if small { 12 } else { 14 }))
        .light_line_style(RGBColor(0xf3, 0xf3, 0xf3))
        .bold_line_style(RGBColor(0xdd, 0xdd, 0xdd))
        .draw()?;

    // Few days leave room for bigger, easier-to-see markers.
    let marker = match (days <= 7, small) {
        (true, false) => 6,
        (true, true) => 4,
        (false, false) => 4,
        (false, true) => 2,
    };
    for (colour, values) in lines {
        let points = values.iter().enumerate().map(|(i, v)| (i as f64, *v));
        chart.draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))?;
        chart.draw_series(points.map(|p| Circle::new(p, marker, colour.filled())))?;
    }
    Ok(chart.plotting_area().strip_coord_spec())
}

/// Draws the share chart: one stacked bar per interaction type, a segment per product.
fn draw_share<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    plot: &SharePlot,
) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let (chart_area, legend_area) = frame(root, &plot.title).map_err(err)?;
    let n = plot.categories.len();
    let totals: Vec<u64> = (0..n)
        .map(|c| plot.series.iter().map(|s| s.values[c]).sum())
        .collect();
    let y_max = totals.iter().copied().max().unwrap_or(0);
    let y_top = y_max + y_max / 10 + 1;

    let mut chart = ChartBuilder::on(&chart_area)
        .margin_top(10)
        .margin_left(10)
        .margin_right(20)
        .margin_bottom(10)
        .x_label_area_size(55)
        .y_label_area_size(75)
        .build_cartesian_2d(DayAxis::new(n, 1), 0u64..y_top)
        .map_err(err)?;
    let categories = &plot.categories;
    let format_category = |x: &f64| -> String {
        let i = x.round();
        if i < 0.0 {
            return String::new();
        }
        categories.get(i as usize).cloned().unwrap_or_default()
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc("Interaction type")
        .y_desc("Mentions")
        .x_label_formatter(&format_category)
        .y_labels(8)
        .axis_desc_style((FONT, 18))
        .label_style((FONT, 15))
        .light_line_style(RGBColor(0xf3, 0xf3, 0xf3))
        .bold_line_style(RGBColor(0xdd, 0xdd, 0xdd))
        .draw()
        .map_err(err)?;

    // Bars are narrower when there are few, so one bar does not fill the whole chart.
    let half = if n <= 2 { 0.25 } else { 0.35 };
    for (c, total) in totals.iter().enumerate() {
        let x = c as f64;
        let mut base = 0u64;
        for s in &plot.series {
            let v = s.values[c];
            if v == 0 {
                continue;
            }
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x - half, base), (x + half, base + v)],
                    s.colour.filled(),
                )))
                .map_err(err)?;
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x - half, base), (x + half, base + v)],
                    WHITE.stroke_width(1),
                )))
                .map_err(err)?;
            base += v;
        }
        let label = (FONT, 15)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Bottom));
        chart
            .draw_series(std::iter::once(Text::new(
                total.to_string(),
                (x, *total),
                label,
            )))
            .map_err(err)?;
    }
    if plot.series.is_empty() {
        let plotted = chart.plotting_area().strip_coord_spec();
        centred_note(root, &plotted, "No data to plot").map_err(err)?;
    }
    draw_legend(&legend_area, &plot.series, true).map_err(err)
}

/// Draws one entry per series (a line with a marker, or a filled square for bar charts, and the
/// name) in the right-hand margin.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    series: &[Series],
    bars: bool,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let (width, height) = area.dim_in_pixel();
    let top = 30;
    let header = (FONT, 17)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    area.draw(&Text::new("Products", (12, top), header))?;
    let fits = ((height as i32 - top - 20) / LEGEND_ROW).max(1) as usize;
    // When there are more entries than rows, the last row says how many were left out.
    let shown = if series.len() > fits {
        fits - 1
    } else {
        series.len()
    };
    let label = (FONT, 15)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (i, s) in series.iter().take(shown).enumerate() {
        let y = top + LEGEND_ROW * (i as i32 + 1);
        if bars {
            area.draw(&Rectangle::new(
                [(20, y - 7), (34, y + 7)],
                s.colour.filled(),
            ))?;
        } else {
            area.draw(&PathElement::new(
                vec![(12, y), (42, y)],
                s.colour.stroke_width(3),
            ))?;
            area.draw(&Circle::new((27, y), 4, s.colour.filled()))?;
        }
        let name = fit(area, &s.name, &label, width.saturating_sub(70));
        area.draw(&Text::new(name, (50, y), label.clone()))?;
    }
    if shown < series.len() {
        let y = top + LEGEND_ROW * (shown as i32 + 1);
        let more = format!("+{} more", series.len() - shown);
        area.draw(&Text::new(more, (50, y), label.clone()))?;
    }
    if series.is_empty() {
        area.draw(&Text::new("(none)", (12, top + LEGEND_ROW), label))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 3, d).unwrap()
    }

    fn row(d: u32, kind: &str, product: &str, mentions: u64) -> DailyCount {
        DailyCount {
            date: day(d),
            interaction_type: kind.to_string(),
            product: product.to_string(),
            mentions,
            conversations: mentions.min(3),
        }
    }

    /// Several products over two weeks with a gap day and two interaction types.
    fn sample() -> Vec<DailyCount> {
        let mut rows = Vec::new();
        for d in 1..=14 {
            if d == 6 {
                continue; // a day without data
            }
            rows.push(row(d, "voice", "Genesys Cloud CX", 10 + u64::from(d % 4)));
            rows.push(row(d, "chat", "Genesys Cloud CX", 3));
            rows.push(row(d, "voice", "Architect", 5 + u64::from(d % 3)));
            rows.push(row(d, "email", "Workforce Engagement", u64::from(d) / 2));
        }
        rows
    }

    /// Renders `plot` into an in-memory RGB buffer and counts its distinct colours.
    fn distinct_colours(plot: &TrendPlot) -> usize {
        register_font().unwrap();
        let mut buf = vec![0u8; (CHART_WIDTH * CHART_HEIGHT * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut buf, (CHART_WIDTH, CHART_HEIGHT))
                .into_drawing_area();
            draw(&root, plot).unwrap();
            root.present().unwrap();
        }
        buf.chunks(3)
            .map(|p| (p[0], p[1], p[2]))
            .collect::<BTreeSet<_>>()
            .len()
    }

    /// True when the SVG has a text element whose content is exactly `text`.
    fn has_text(svg: &str, text: &str) -> bool {
        svg.contains(&format!(">\n{text}\n</text>"))
    }

    fn assert_chart_files(files: &ChartFiles, title: &str, names: &[&str]) -> String {
        let png = std::fs::read(&files.png).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
        // A blank 1200x700 PNG compresses to a few KB; text and lines make it much larger.
        assert!(
            png.len() > 10_000,
            "PNG suspiciously small: {} bytes",
            png.len()
        );
        let svg = std::fs::read_to_string(&files.svg).unwrap();
        assert!(svg.starts_with("<svg"), "SVG starts with {:?}", &svg[..20]);
        assert!(svg.contains(title), "SVG lacks title {title:?}");
        for name in names {
            assert!(svg.contains(name), "SVG lacks {name:?}");
        }
        assert!(has_text(&svg, "Date") && has_text(&svg, "Mentions"));
        let leftovers: Vec<_> = std::fs::read_dir(files.png.parent().unwrap())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
        svg
    }

    #[test]
    fn multi_product_chart_fills_gaps_and_writes_both_files() {
        let rows = sample();
        let plot = build_plot(&rows, 5);
        assert_eq!(plot.dates.len(), 14);
        let names: Vec<_> = plot.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["Genesys Cloud CX", "Architect", "Workforce Engagement"]
        );
        // Interaction types are summed; the missing day is 0.
        assert_eq!(plot.series[0].values[0], 10 + 1 + 3);
        assert!(plot.series.iter().all(|s| s.values[5] == 0));
        assert!(distinct_colours(&plot) > 20);

        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("charts");
        let files = write_trend_charts(&rows, &out, 5).unwrap();
        assert_eq!(files.png, out.join("trend.png"));
        assert_eq!(files.svg, out.join("trend.svg"));
        let svg = assert_chart_files(
            &files,
            "Product mentions per day, 2024-03-01 to 2024-03-14",
            &names,
        );
        assert!(has_text(&svg, "03-01"), "date labels use %m-%d");
        assert!(!has_text(&svg, "other"));
    }

    #[test]
    fn empty_input_draws_a_labelled_chart() {
        let plot = build_plot(&[], 5);
        assert_eq!(plot.title, EMPTY_TITLE);
        assert!(plot.series.is_empty());
        assert!(distinct_colours(&plot) > 5, "chart must not be blank");

        let dir = tempfile::tempdir().unwrap();
        let files = write_trend_charts(&[], dir.path(), 5).unwrap();
        let svg = assert_chart_files(&files, EMPTY_TITLE, &["No data to plot"]);
        assert!(svg.contains(EMPTY_TITLE));
    }

    #[test]
    fn one_day_renders_with_padding() {
        let rows = vec![
            row(7, "voice", "Architect", 4),
            row(7, "chat", "Genesys Cloud CX", 9),
        ];
        let plot = build_plot(&rows, 5);
        assert_eq!(plot.dates, vec![day(7)]);
        assert!(distinct_colours(&plot) > 20);
        let dir = tempfile::tempdir().unwrap();
        let files = write_trend_charts(&rows, dir.path(), 5).unwrap();
        let svg = assert_chart_files(
            &files,
            "Product mentions per day, 2024-03-07 to 2024-03-07",
            &["Architect", "Genesys Cloud CX"],
        );
        assert!(has_text(&svg, "03-07"));
    }

    #[test]
    fn one_product_chart() {
        let rows: Vec<_> = (1..=5)
            .map(|d| row(d, "voice", "Architect", u64::from(d)))
            .collect();
        let plot = build_plot(&rows, 3);
        assert_eq!(plot.series.len(), 1);
        assert_eq!(plot.series[0].values, vec![1, 2, 3, 4, 5]);
        let dir = tempfile::tempdir().unwrap();
        let files = write_trend_charts(&rows, dir.path(), 3).unwrap();
        assert_chart_files(
            &files,
            "Product mentions per day, 2024-03-01 to 2024-03-05",
            &["Architect"],
        );
    }

    #[test]
    fn products_beyond_top_n_are_summed_into_other() {
        let mut rows = sample();
        rows.push(row(2, "chat", "Speech Analytics", 2));
        rows.push(row(3, "chat", "Predictive Routing", 1));
        rows.push(row(3, "voice", "Speech Analytics", 1));
        let plot = build_plot(&rows, 2);
        let names: Vec<_> = plot.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["Genesys Cloud CX", "Architect", OTHER]);
        let other = &plot.series[2];
        assert_eq!(other.colour, OTHER_COLOUR);
        // Day 2: Workforce Engagement 1 + Speech Analytics 2; day 3: WE 1 + PR 1 + SA 1.
        assert_eq!(&other.values[1..3], &[3, 3]);
        let total: u64 = rows.iter().map(|r| r.mentions).sum();
        let drawn: u64 = plot.series.iter().flat_map(|s| s.values.iter()).sum();
        assert_eq!(total, drawn, "no mention is lost or counted twice");

        let dir = tempfile::tempdir().unwrap();
        let files = write_trend_charts(&rows, dir.path(), 2).unwrap();
        let svg = assert_chart_files(&files, "Product mentions per day", &names);
        assert!(has_text(&svg, "other"));
        assert!(!svg.contains("Speech Analytics"));
    }

    #[test]
    fn share_and_facets_keep_every_mention_and_the_same_colours() {
        let mut rows = sample();
        rows.push(row(2, "chat", "Speech Analytics", 2));
        let opts = ChartOptions {
            top_n: 2,
            facet_by_type: true,
            ..ChartOptions::default()
        };
        let total: u64 = rows.iter().map(|r| r.mentions).sum();

        let share = build_share(&rows, &opts);
        assert_eq!(share.categories, ["voice", "email", "chat"]);
        let stacked: u64 = share.series.iter().flat_map(|s| s.values.iter()).sum();
        assert_eq!(stacked, total);
        let trend = build_trend(&rows, &opts);
        let names = |s: &[Series]| {
            s.iter()
                .map(|s| (s.name.clone(), s.colour))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(&share.series),
            names(&trend.series),
            "same products, same colours"
        );

        let titles: Vec<_> = trend.panels.iter().map(|p| p.title.as_str()).collect();
        assert_eq!(titles, ["voice", "email", "chat"]);
        let faceted: u64 = trend
            .panels
            .iter()
            .flat_map(|p| p.values.iter().flatten())
            .sum();
        assert_eq!(faceted, total);
        assert!(trend.size.1 >= CHART_HEIGHT);

        let dir = tempfile::tempdir().unwrap();
        let charts = write_report_charts(&rows, dir.path(), &opts).unwrap();
        assert!(has_text(&charts.trend_svg, "voice") && has_text(&charts.share_svg, "email"));
        assert!(has_text(&charts.share_svg, "Interaction type"));

        // A range without rows: labelled, with the range in the title, nothing plotted.
        let empty = ChartOptions {
            range: Some((day(20), day(21))),
            ..opts
        };
        let plot = build_trend(&rows, &empty);
        assert!(plot.series.is_empty() && plot.title.contains("2024-03-20 to 2024-03-21"));
        assert!(distinct_colours(&plot) > 5);
        assert!(build_share(&rows, &empty).series.is_empty());
    }

    #[test]
    fn a_product_named_other_is_not_merged_with_the_bucket() {
        let rows = vec![
            row(1, "voice", "other", 9),
            row(1, "voice", "Architect", 1),
            row(1, "voice", "Speech Analytics", 1),
        ];
        let plot = build_plot(&rows, 1);
        let names: Vec<_> = plot.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["other", "other products"]);
    }

    #[test]
    fn long_ranges_keep_labels_sparse_and_years_visible() {
        assert_eq!(label_step(1, 14), 1);
        assert_eq!(label_step(14, 14), 1);
        assert_eq!(label_step(30, 14), 7);
        assert_eq!(label_step(365, 8), 56);
        let rows = vec![
            DailyCount {
                date: NaiveDate::from_ymd_opt(2023, 12, 20).unwrap(),
                interaction_type: "voice".into(),
                product: "Architect".into(),
                mentions: 2,
                conversations: 1,
            },
            row(10, "voice", "Architect", 3),
        ];
        let dir = tempfile::tempdir().unwrap();
        let files = write_trend_charts(&rows, dir.path(), 3).unwrap();
        let svg = std::fs::read_to_string(files.svg).unwrap();
        assert!(
            has_text(&svg, "2023-12-20"),
            "multi-year ranges show the year"
        );
    }

    #[test]
    fn centuries_are_drawn_in_bounded_buckets_and_keep_every_mention() {
        let at = |y: i32, m: u32, d: u32, n: u64| DailyCount {
            date: NaiveDate::from_ymd_opt(y, m, d).unwrap(),
            interaction_type: "voice".into(),
            product: "Architect".into(),
            mentions: n,
            conversations: 1,
        };
        let rows = vec![
            at(1901, 1, 1, 2),
            at(1969, 12, 31, 3),
            at(2026, 3, 1, 4),
            at(2199, 12, 31, 5),
        ];
        let plot = build_plot(&rows, 3);
        assert!(
            plot.dates.len() as u64 <= MAX_POINTS,
            "{}",
            plot.dates.len()
        );
        assert_eq!(plot.bucket_days, 182, "1901..2199 in half years");
        assert_eq!(plot.dates[0], rows[0].date);
        let drawn: u64 = plot.series.iter().flat_map(|s| s.values.iter()).sum();
        assert_eq!(drawn, 14, "no mention lost in the buckets");
        assert!(plot
            .title
            .starts_with("Product mentions per 182 days, 1901-01-01 to 2199-12-31"));
        let dir = tempfile::tempdir().unwrap();
        let files = write_trend_charts(&rows, dir.path(), 3).unwrap();
        assert!(std::fs::read_to_string(files.svg)
            .unwrap()
            .contains("1901-01-01"));

        // The widest range chrono has: still at most MAX_POINTS points, nothing lost.
        let ends = vec![
            DailyCount {
                date: NaiveDate::MIN,
                ..rows[0].clone()
            },
            DailyCount {
                date: NaiveDate::MAX,
                ..rows[3].clone()
            },
        ];
        let plot = build_plot(&ends, 3);
        assert!(plot.dates.len() as u64 <= MAX_POINTS && plot.bucket_days.is_multiple_of(364));
        let drawn: u64 = plot.series.iter().flat_map(|s| s.values.iter()).sum();
        assert_eq!(drawn, 7);
        assert!(distinct_colours(&plot) > 5);

        // Up to MAX_POINTS days stay daily; a range given backwards draws an empty chart.
        assert_eq!(bucket_days(MAX_POINTS), 1);
        assert_eq!(bucket_days(MAX_POINTS + 1), 7);
        let backwards = ChartOptions {
            range: Some((day(10), day(1))),
            top_n: 3,
            ..ChartOptions::default()
        };
        assert!(build_trend(&sample(), &backwards).dates.is_empty());
    }

    #[test]
    fn legend_names_are_shortened_to_fit() {
        register_font().unwrap();
        let mut svg = String::new();
        let root = SVGBackend::with_string(&mut svg, (300, 100)).into_drawing_area();
        let style = (FONT, 15).into_font().into_text_style(&root);
        assert_eq!(fit(&root, "Architect", &style, 190), "Architect");
        let long = "Workforce Engagement Management Suite";
        let short = fit(&root, long, &style, 190);
        assert!(short.ends_with('…') && short.len() < long.len(), "{short}");
        assert!(root.estimate_text_size(&short, &style).unwrap().0 <= 190);
    }
}
