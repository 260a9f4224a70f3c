//! Reporting: turns the lake's product mentions into charts (PNG and SVG), a self-contained
//! `report.html`, a dashboard JSON payload and an HTTP upload of that payload; plus a tiny local
//! dashboard receiver for `convlake demo` and tests.
//!
//! Invariants:
//! - A chart file is complete or absent: each file is written under a temporary name in the
//!   output directory and renamed into place.
//! - Same rows + same metadata ⇒ same payload bytes: everything in the payload is sorted; the
//!   same data gives the same `report.html` (no clock in it).
//! - Text from the lake is HTML-escaped before it reaches `report.html`.
//! - The dashboard token only ever travels in the `Authorization` header; it never appears in an
//!   error, a log line or the payload.

mod chart;
mod dashboard;
mod data;
mod depth_charts;
mod draw;
mod html;
mod receiver;

pub use crate::lake::{insights, stats};

use std::path::{Path, PathBuf};

pub use chart::{
    write_depth_charts, write_report_charts, write_trend_charts, ChartFiles, ChartOptions,
    DepthCharts, ReportCharts, CHART_HEIGHT, CHART_WIDTH,
};
pub use dashboard::{
    dashboard_payload, post_dashboard, PayloadExtras, PayloadMeta, PostOutcome, ProductSentiment,
    DASHBOARD_TITLE, NLP_ENGINE, PAYLOAD_SCHEMA_VERSION,
};
pub use data::{load_report_data, Example, ReportData, ReportFilter, SpeakerCounts, DEFAULT_DAYS};
pub use depth_charts::{
    co_mentions_heat, insight_series, topics_heat, DayRole, HeatMap, InsightSeries, SentimentCounts,
};
pub use html::{highlight, movers, render_html, Mover, PageCharts};
pub use receiver::{start_receiver, ReceivedRequest, Receiver, RECEIVER_PATH};

/// Mentions of one product in one interaction type on one day, as aggregated from the lake.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct DailyCount {
    /// Day the conversations started (UTC).
    pub date: chrono::NaiveDate,
    /// Interaction type (e.g. `voice`, `chat`, `email`).
    pub interaction_type: String,
    /// Canonical product name from the dictionary.
    pub product: String,
    /// Number of mentions of the product that day.
    pub mentions: u64,
    /// Number of distinct conversations mentioning the product that day.
    pub conversations: u64,
}

/// Paths of everything [`write_report`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportFiles {
    /// `trend.png` and `trend.svg`.
    pub trend: ChartFiles,
    /// `share.png` and `share.svg`.
    pub share: ChartFiles,
    /// `insight-1.png` and `.svg`, … one per flagged insight.
    pub insights: Vec<ChartFiles>,
    /// `sentiment.png` and `.svg`.
    pub sentiment: ChartFiles,
    /// `topics.png` and `.svg`.
    pub topics: ChartFiles,
    /// `co_mentions.png` and `.svg`.
    pub co_mentions: ChartFiles,
    /// `report.html`.
    pub html: PathBuf,
}

/// Writes the charts and `report.html` (charts inlined) for `data` into `out_dir`.
pub fn write_report(
    data: &ReportData,
    out_dir: &Path,
    opts: &ChartOptions,
) -> Result<ReportFiles, ReportError> {
    let mut opts = opts.clone();
    opts.range = data.range;
    if opts.subtitle.is_none() {
        let parts: Vec<&str> = [data.product.as_deref(), data.interaction_type.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        if !parts.is_empty() {
            opts.subtitle = Some(parts.join(", "));
        }
    }
    let charts = write_report_charts(&data.daily, out_dir, &opts)?;
    let depth = write_depth_charts(
        &data.insight_series,
        &data.sentiment,
        &topics_heat(&data.topics),
        &co_mentions_heat(&data.co_mentions),
        out_dir,
    )?;
    let page = render_html(
        data,
        &PageCharts {
            trend: &charts.trend_svg,
            share: &charts.share_svg,
            insights: depth.insights.iter().map(|(_, svg)| svg.as_str()).collect(),
            sentiment: &depth.sentiment.1,
            topics: &depth.topics.1,
            co_mentions: &depth.co_mentions.1,
        },
    );
    let html = out_dir.join("report.html");
    let tmp = out_dir.join(format!(".report.{}.tmp.html", std::process::id()));
    std::fs::write(&tmp, page.as_bytes())
        .and_then(|()| std::fs::rename(&tmp, &html))
        .map_err(|source| {
            let _ = std::fs::remove_file(&tmp);
            ReportError::Write {
                path: html.clone(),
                source,
            }
        })?;
    Ok(ReportFiles {
        trend: charts.trend,
        share: charts.share,
        insights: depth.insights.into_iter().map(|(files, _)| files).collect(),
        sentiment: depth.sentiment.0,
        topics: depth.topics.0,
        co_mentions: depth.co_mentions.0,
        html,
    })
}

/// Errors from reading the report's data, drawing charts and uploading the dashboard payload.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The chart output directory could not be created.
    #[error("cannot create chart directory {path}: {source}; check the path and its permissions")]
    CreateDir {
        /// Directory that was being created.
        path: PathBuf,
        /// Underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Plotters failed while drawing or encoding a chart.
    #[error("cannot draw chart {path}: {message}; check that the directory is writable and has free space")]
    Draw {
        /// Chart file being produced.
        path: PathBuf,
        /// What plotters reported.
        message: String,
    },
    /// A chart file could not be written or moved into place.
    #[error("cannot write chart {path}: {source}; check that the directory is writable and has free space")]
    Write {
        /// File being written.
        path: PathBuf,
        /// Underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The font embedded in the binary could not be registered with plotters (a build problem).
    #[error("the embedded chart font (assets/DejaVuSans.ttf) is not a valid font; rebuild convlake with an intact assets/ directory")]
    Font,
    /// A report filter (date range, product, interaction type) cannot be satisfied.
    #[error("{0}")]
    Filter(String),
    /// A query for the report failed.
    #[error("cannot read {what} from the lake: {message}")]
    Query {
        /// Which part of the report was being read.
        what: String,
        /// What DataFusion reported.
        message: String,
    },
    /// The dashboard URL is not a valid http(s) URL.
    #[error("dashboard URL {url:?} is not valid: {reason}; pass a full URL such as https://host/api/dashboard")]
    InvalidUrl {
        /// URL as given.
        url: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The HTTP client could not be constructed (TLS setup).
    #[error("cannot set up the HTTP client for {url}: {message}")]
    Client {
        /// Dashboard URL.
        url: String,
        /// What reqwest reported.
        message: String,
    },
    /// The dashboard refused the payload with a status that retrying will not fix.
    #[error("dashboard {url} rejected the payload with HTTP {status}: {body}; check the dashboard token and URL")]
    Rejected {
        /// Dashboard URL.
        url: String,
        /// HTTP status code.
        status: u16,
        /// Start of the response body (at most 500 characters, token redacted).
        body: String,
    },
    /// Every attempt failed with a retryable error (429, 5xx, connection problem).
    #[error("dashboard {url} did not accept the payload after {attempts} attempts; last error: {last}; check that the dashboard is up and retry later")]
    RetriesExhausted {
        /// Dashboard URL.
        url: String,
        /// Number of attempts made.
        attempts: u32,
        /// Description of the last failure.
        last: String,
    },
}
