//! Trend charts: daily mentions per product as a line chart, written as `trend.png` and
//! `trend.svg`.
//!
//! Invariants: every day between the first and last date counts (a missing day is 0 for every
//! product); the top `top_n` products by total get their own line and the rest are summed into
//! "other"; the legend sits in a right-hand margin so it never covers a line; empty input still
//! gives a labelled chart; each file is written under a temporary name and renamed into place.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use chrono::{Datelike, NaiveDate};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;

use super::{DailyCount, ReportError};

/// Width of the rendered charts in pixels.
pub const CHART_WIDTH: u32 = 1200;
/// Height of the rendered charts in pixels.
pub const CHART_HEIGHT: u32 = 700;

/// Width of the right-hand margin that holds the legend.
const LEGEND_WIDTH: u32 = 250;
/// Vertical distance between legend entries.
const LEGEND_ROW: i32 = 26;
/// Label of the bucket that sums every product outside the top `top_n`.
const OTHER: &str = "other";
/// Title used when there is nothing to draw.
const EMPTY_TITLE: &str = "No product mentions in range";
/// Font family name under which the embedded font is registered.
const FONT: &str = "sans-serif";

static FONT_BYTES: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// Colour-blind-friendly palette (Tableau 10) for the product lines; cycled when there are more.
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
/// Colour of the "other" line, kept neutral so the named products stand out.
const OTHER_COLOUR: RGBColor = RGBColor(0x8c, 0x8c, 0x8c);

/// Paths of the chart files written by [`write_trend_charts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartFiles {
    /// The PNG rendering (`trend.png`, 1200x700).
    pub png: PathBuf,
    /// The SVG rendering (`trend.svg`, 1200x700).
    pub svg: PathBuf,
}

/// One line of the chart: a product (or "other") and its mentions on each day of the range.
#[derive(Debug, Clone, PartialEq)]
struct Series {
    name: String,
    values: Vec<u64>,
    colour: RGBColor,
}

/// Everything needed to draw the chart, computed from the rows without touching a backend.
#[derive(Debug, Clone, PartialEq)]
struct TrendPlot {
    title: String,
    /// Every day from the first to the last date in the rows, without gaps.
    dates: Vec<NaiveDate>,
    series: Vec<Series>,
}

/// Writes `trend.png` and `trend.svg` into `out_dir` (created if missing): daily mentions per
/// product, the top `top_n` products by total plus "other".
pub fn write_trend_charts(
    rows: &[DailyCount],
    out_dir: &Path,
    top_n: usize,
) -> Result<ChartFiles, ReportError> {
    register_font()?;
    std::fs::create_dir_all(out_dir).map_err(|source| ReportError::CreateDir {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let plot = build_plot(rows, top_n);
    let png = out_dir.join("trend.png");
    let svg = out_dir.join("trend.svg");
    write_png(&plot, out_dir, &png)?;
    write_svg(&plot, out_dir, &svg)?;
    tracing::info!(
        png = %png.display(),
        svg = %svg.display(),
        days = plot.dates.len(),
        lines = plot.series.len(),
        "wrote trend charts"
    );
    Ok(ChartFiles { png, svg })
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

/// Sums the rows per day and product, fills missing days with 0 and folds the tail into "other".
fn build_plot(rows: &[DailyCount], top_n: usize) -> TrendPlot {
    let (Some(first), Some(last)) = (
        rows.iter().map(|r| r.date).min(),
        rows.iter().map(|r| r.date).max(),
    ) else {
        return TrendPlot {
            title: EMPTY_TITLE.to_string(),
            dates: Vec::new(),
            series: Vec::new(),
        };
    };
    let dates: Vec<NaiveDate> = first.iter_days().take_while(|d| *d <= last).collect();

    let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
    for r in rows {
        *totals.entry(r.product.as_str()).or_default() += r.mentions;
    }
    // Largest total first; ties broken by name so the order is deterministic.
    let mut ranked: Vec<(&str, u64)> = totals.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let top: Vec<&str> = ranked.iter().take(top_n).map(|(name, _)| *name).collect();
    let has_other = ranked.len() > top.len();
    // A real product called "other" must not be confused with the bucket.
    let other_label = if top.contains(&OTHER) {
        "other products"
    } else {
        OTHER
    };

    let mut series: Vec<Series> = top
        .iter()
        .enumerate()
        .map(|(i, name)| Series {
            name: (*name).to_string(),
            values: vec![0; dates.len()],
            colour: PALETTE[i % PALETTE.len()],
        })
        .collect();
    if has_other {
        series.push(Series {
            name: other_label.to_string(),
            values: vec![0; dates.len()],
            colour: OTHER_COLOUR,
        });
    }
    let index_of: BTreeMap<&str, usize> = top.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    for r in rows {
        // `first` is the minimum date, so the difference is a valid non-negative index.
        let day = (r.date - first).num_days() as usize;
        let line = index_of
            .get(r.product.as_str())
            .copied()
            .unwrap_or(top.len());
        if let Some(value) = series.get_mut(line).and_then(|s| s.values.get_mut(day)) {
            *value += r.mentions;
        }
    }

    TrendPlot {
        title: format!("Product mentions per day, {first} to {last}"),
        dates,
        series,
    }
}

/// Renders the PNG under a temporary name (with a `.png` extension, which the encoder needs)
/// and renames it into place.
fn write_png(plot: &TrendPlot, out_dir: &Path, target: &Path) -> Result<(), ReportError> {
    let tmp = out_dir.join(format!(".trend.{}.tmp.png", unique_suffix()));
    let result = (|| {
        let backend = BitMapBackend::new(&tmp, (CHART_WIDTH, CHART_HEIGHT));
        let root = backend.into_drawing_area();
        draw(&root, plot)?;
        root.present().map_err(|e| e.to_string())
    })();
    if let Err(message) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(ReportError::Draw {
            path: target.to_path_buf(),
            message,
        });
    }
    std::fs::rename(&tmp, target).map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        ReportError::Write {
            path: target.to_path_buf(),
            source,
        }
    })
}

/// Renders the SVG into memory and writes it under a temporary name, then renames it.
fn write_svg(plot: &TrendPlot, out_dir: &Path, target: &Path) -> Result<(), ReportError> {
    let svg = render_svg(plot).map_err(|message| ReportError::Draw {
        path: target.to_path_buf(),
        message,
    })?;
    let tmp = out_dir.join(format!(".trend.{}.tmp.svg", unique_suffix()));
    let write = std::fs::write(&tmp, svg.as_bytes()).and_then(|()| std::fs::rename(&tmp, target));
    write.map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        ReportError::Write {
            path: target.to_path_buf(),
            source,
        }
    })
}

/// Process id plus a per-process counter, so concurrent writers never share a temporary file.
fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{}-{n}", std::process::id())
}

/// The SVG document for `plot`.
fn render_svg(plot: &TrendPlot) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (CHART_WIDTH, CHART_HEIGHT)).into_drawing_area();
        draw(&root, plot)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// The x axis: day indices 0..days as `f64`, with half a day of padding on each side (keeps the
/// end markers inside the plot and gives a single day a visible range), a labelled tick every
/// `step` days and a light grid line on every day when there are not too many.
struct DayAxis {
    days: usize,
    step: usize,
}

impl DayAxis {
    fn new(days: usize, step: usize) -> Self {
        DayAxis {
            days,
            step: step.max(1),
        }
    }
}

impl Ranged for DayAxis {
    type FormatOption = plotters::coord::ranged1d::DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let range = self.range();
        let fraction = (value - range.start) / (range.end - range.start);
        limit.0 + (fraction * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: plotters::coord::ranged1d::KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        let step = if hint.weight().allow_light_points() {
            if self.days > 92 {
                return Vec::new();
            }
            1
        } else {
            self.step
        };
        (0..self.days).step_by(step).map(|i| i as f64).collect()
    }

    fn range(&self) -> std::ops::Range<f64> {
        -0.5..(self.days.max(1) as f64 - 0.5)
    }
}

/// Picks a label step (in days) so that at most `max_labels` dates are labelled.
fn label_step(days: usize, max_labels: usize) -> usize {
    [1, 2, 7, 14, 28, 56, 91, 182, 364]
        .into_iter()
        .find(|step| days.div_ceil(*step) <= max_labels)
        .unwrap_or_else(|| days.div_ceil(max_labels.max(1)))
}

/// Draws the whole chart (title, axes, lines, legend) on any plotters backend.
fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, plot: &TrendPlot) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(err)?;
    let body = root
        .margin(12, 0, 0, 0)
        .titled(&plot.title, (FONT, 28).into_font().color(&BLACK))
        .map_err(err)?;
    let (width, _) = body.dim_in_pixel();
    let (chart_area, legend_area) = body.split_horizontally(width.saturating_sub(LEGEND_WIDTH));

    let days = plot.dates.len();
    let same_year = plot.dates.first().map(|d| d.year()) == plot.dates.last().map(|d| d.year());
    let (date_format, max_labels) = if same_year {
        ("%m-%d", 14)
    } else {
        ("%Y-%m-%d", 8)
    };
    let step = label_step(days, max_labels);
    let y_max = plot
        .series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .max()
        .unwrap_or(0);
    // Headroom above the highest point; at least 1 so an all-zero chart has a y range.
    let y_top = y_max + y_max / 10 + 1;

    let mut chart = ChartBuilder::on(&chart_area)
        .margin_top(10)
        .margin_left(10)
        .margin_right(20)
        .margin_bottom(10)
        .x_label_area_size(55)
        .y_label_area_size(75)
        .build_cartesian_2d(DayAxis::new(days, step), 0u64..y_top)
        .map_err(err)?;

    let dates = &plot.dates;
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
        .x_desc("Date")
        .y_desc("Mentions")
        .x_label_formatter(&format_date)
        .y_labels(8)
        .axis_desc_style((FONT, 18))
        .label_style((FONT, 14))
        .light_line_style(RGBColor(0xf3, 0xf3, 0xf3))
        .bold_line_style(RGBColor(0xdd, 0xdd, 0xdd))
        .draw()
        .map_err(err)?;

    // Few days leave room for bigger, easier-to-see markers.
    let marker = if days <= 7 { 6 } else { 4 };
    for series in &plot.series {
        let points = series
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| (i as f64, *v));
        chart
            .draw_series(LineSeries::new(
                points.clone(),
                series.colour.stroke_width(2),
            ))
            .map_err(err)?;
        chart
            .draw_series(points.map(|p| Circle::new(p, marker, series.colour.filled())))
            .map_err(err)?;
    }

    if plot.series.is_empty() {
        let (w, h) = chart.plotting_area().dim_in_pixel();
        let style = (FONT, 22)
            .into_font()
            .color(&RGBColor(0x66, 0x66, 0x66))
            .pos(Pos::new(HPos::Center, VPos::Center));
        let (x0, y0) = chart.plotting_area().get_base_pixel();
        root.draw(&Text::new(
            "No data to plot",
            (x0 + w as i32 / 2, y0 + h as i32 / 2),
            style,
        ))
        .map_err(err)?;
    }

    draw_legend(&legend_area, &plot.series).map_err(err)
}

/// Draws one entry per line (marker, swatch, name) in the right-hand margin.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    series: &[Series],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let (width, height) = area.dim_in_pixel();
    let top = 30;
    let header = (FONT, 17)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    area.draw(&Text::new("Products", (12, top), header))?;
    let fits = ((height as i32 - top - 20) / LEGEND_ROW).max(1) as usize;
    // When there are more lines than rows, the last row says how many were left out.
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
        area.draw(&PathElement::new(
            vec![(12, y), (42, y)],
            s.colour.stroke_width(3),
        ))?;
        area.draw(&Circle::new((27, y), 4, s.colour.filled()))?;
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

/// Shortens `name` with "…" until it is at most `max_width` pixels wide in `style`.
fn fit<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    name: &str,
    style: &TextStyle<'_>,
    max_width: u32,
) -> String {
    let width = |text: &str| {
        area.estimate_text_size(text, style)
            .map(|(w, _)| w)
            .unwrap_or(u32::MAX)
    };
    if width(name) <= max_width {
        return name.to_string();
    }
    let mut chars: Vec<char> = name.chars().collect();
    while !chars.is_empty() {
        chars.pop();
        let short: String = chars.iter().collect::<String>().trim_end().to_string() + "…";
        if width(&short) <= max_width {
            return short;
        }
    }
    "…".to_string()
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
