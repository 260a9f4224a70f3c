//! `convlake report` (charts and `report.html`) and `export` (the dashboard payload, posted or
//! written to a file).

use std::path::Path;

use anyhow::{bail, Context as _, Result};

use super::stages::counts;
use crate::config::{DashboardConfig, ExportConfig, Facet, ReportConfig};
use crate::extract::Dictionary;
use crate::lake::aggregates::{CountRow, MentionCounts};
use crate::lake::{layout, Lake};
use crate::report::{self, ChartOptions, DailyCount, PayloadMeta, ReportFilter};

pub(crate) fn daily(rows: &[CountRow]) -> Vec<DailyCount> {
    rows.iter()
        .map(|r| DailyCount {
            date: r.conversation_date,
            interaction_type: r.interaction_type.clone(),
            product: r.product.clone(),
            mentions: r.mentions.max(0) as u64,
            conversations: r.conversations.max(0) as u64,
        })
        .collect()
}

/// What `report` drew, and the movers it found.
pub struct ReportOutcome {
    pub files: report::ReportFiles,
    /// The changes beyond chance of the last week against the one before ([`report::movers`]),
    /// or why there is no comparison.
    pub movers: std::result::Result<Vec<report::Mover>, String>,
    /// The flagged product insights of the lake ([`report::insights`]).
    pub insights: Vec<report::insights::Insight>,
}

/// The movers as one line of plain text, for the summaries of `report` and `demo`.
pub fn movers_text(movers: &std::result::Result<Vec<report::Mover>, String>) -> String {
    match movers {
        Err(why) => format!("no comparison ({why})"),
        Ok(list) if list.is_empty() => {
            "none beyond chance, week over week (exact test per product, Benjamini-Hochberg at 5%)"
                .to_string()
        }
        Ok(list) => list
            .iter()
            .map(|m| {
                format!(
                    "{} {} -> {} ({})",
                    m.product,
                    m.last_week,
                    m.this_week,
                    m.evidence()
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// The lake's flagged insights, each with its example utterances: the `product_insights` of the
/// generation in force, or, for a generation written before that table, computed from its
/// `mention_counts` the same way (the next `aggregate` stores them).
pub(crate) async fn flagged_insights(
    lake: &Lake,
    dictionary_version: &str,
    ctx: &datafusion::prelude::SessionContext,
    rows: &[crate::lake::aggregates::CountRow],
) -> Result<Vec<report::insights::Insight>> {
    if let Some(mut stored) = report::insights::read_insights(lake, dictionary_version).await? {
        stored.retain(|i| i.flagged);
        return Ok(stored);
    }
    let exposure = crate::lake::tables::conversations_per_day(ctx).await?;
    let mut found = report::insights::of_counts(rows, &exposure);
    for i in &mut found {
        i.examples = crate::lake::insights::insight_examples(ctx, i).await?;
        i.topic = crate::lake::insights::insight_topic(ctx, i).await?;
    }
    Ok(found)
}

/// `convlake report`: `trend` and `share` charts (PNG and SVG) and `report.html` for a date
/// range (default: the last 30 days of data) and optional product / interaction-type filters.
pub async fn report(lake: &Lake, dict: &Dictionary, args: &ReportConfig) -> Result<ReportOutcome> {
    // A clear message when extract/aggregate have not run for this dictionary.
    let rows = counts(lake, dict).await?.rows;
    let ctx = crate::lake::tables::session(lake, &dict.version).await?;
    let filter = ReportFilter {
        from: args.from,
        to: args.to,
        product: args.product.clone(),
        interaction_type: args.interaction_type.clone(),
    };
    let mut data = report::load_report_data(&ctx, &filter, args.examples, &dict.version).await?;
    // Insights cover the whole lake (their baseline is the 28 days before its latest day), or
    // the filtered product.
    let found: Vec<report::insights::Insight> = flagged_insights(lake, &dict.version, &ctx, &rows)
        .await?
        .into_iter()
        .filter(|i| data.product.as_ref().is_none_or(|p| *p == i.product))
        .collect();
    data.insight_series = found
        .iter()
        .map(|i| report::insight_series(&rows, i))
        .collect();
    data.insights = found.clone();
    // Charts are drawn into a local directory: --out, the lake's reports/ when the lake is
    // local, otherwise a staging directory under the work dir whose files are then put into
    // the lake's reports/ (one whole-object put each) and removed.
    let (out, upload) = match (&args.out, lake.local_dir()) {
        (Some(out), _) => (out.clone(), false),
        (None, Some(root)) => (root.join("reports"), false),
        (None, None) => (
            lake.work_dir()?
                .join(format!("reports-{}", std::process::id())),
            true,
        ),
    };
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let opts = ChartOptions {
        top_n: args.top.max(1),
        facet_by_type: args.by == Facet::InteractionType,
        ..ChartOptions::default()
    };
    let mut files = report::write_report(&data, &out, &opts)?;
    if upload {
        let published = publish_reports(lake, &files).await;
        let _ = std::fs::remove_dir_all(&out);
        files = published?;
    }
    let range = match data.range {
        Some((from, to)) => format!("{from} to {to}"),
        None => "no conversations in the lake".to_string(),
    };
    eprintln!(
        "report: {range}: {} conversations, {} mentions -> {} (and trend, share, sentiment, topics, co_mentions{} as .png/.svg)",
        data.conversations,
        data.mentions(),
        files.html.display(),
        match files.insights.len() {
            0 => String::new(),
            1 => ", insight-1".to_string(),
            n => format!(", insight-1…{n}"),
        }
    );
    if data.range.is_some() && data.daily.is_empty() {
        eprintln!(
            "report: no product mentions in this range; widen --from/--to or drop the filters"
        );
    }
    let movers = report::movers(&data);
    eprintln!("report: movers: {}", movers_text(&movers));
    for line in report::insights::insights_text(&found).lines() {
        eprintln!("report: insights: {}", line.trim_start());
    }
    Ok(ReportOutcome {
        files,
        movers,
        insights: found,
    })
}

/// Puts a report drawn locally into the lake's `reports/`; returns the files as lake URLs.
async fn publish_reports(lake: &Lake, files: &report::ReportFiles) -> Result<report::ReportFiles> {
    let mut published = files.clone();
    let mut pairs = vec![
        (&files.trend.png, &mut published.trend.png),
        (&files.trend.svg, &mut published.trend.svg),
        (&files.share.png, &mut published.share.png),
        (&files.share.svg, &mut published.share.svg),
        (&files.sentiment.png, &mut published.sentiment.png),
        (&files.sentiment.svg, &mut published.sentiment.svg),
        (&files.topics.png, &mut published.topics.png),
        (&files.topics.svg, &mut published.topics.svg),
        (&files.co_mentions.png, &mut published.co_mentions.png),
        (&files.co_mentions.svg, &mut published.co_mentions.svg),
        (&files.html, &mut published.html),
    ];
    for (local, remote) in files.insights.iter().zip(published.insights.iter_mut()) {
        pairs.push((&local.png, &mut remote.png));
        pairs.push((&local.svg, &mut remote.svg));
    }
    for (local, remote) in pairs {
        let name = local
            .file_name()
            .and_then(|n| n.to_str())
            .context("a report file without a name")?;
        let bytes = std::fs::read(local).with_context(|| format!("reading {}", local.display()))?;
        let rel = layout::report_path(name);
        lake.put(&rel, bytes.into()).await?;
        *remote = std::path::PathBuf::from(lake.file_url(&rel));
    }
    Ok(published)
}

/// Writes the dashboard payload: to `out` when given, else to the lake's
/// `reports/dashboard.json` (a file in a local lake, one put on an object store). Returns where.
pub(crate) async fn write_dashboard(
    lake: &Lake,
    out: Option<&Path>,
    body: &serde_json::Value,
) -> Result<String> {
    match (out, lake.local_dir()) {
        (Some(p), _) => {
            write_json(p, body)?;
            Ok(p.display().to_string())
        }
        (None, Some(root)) => {
            let p = root.join(layout::DASHBOARD_JSON);
            write_json(&p, body)?;
            Ok(p.display().to_string())
        }
        (None, None) => {
            let rel = layout::DASHBOARD_JSON;
            lake.put(rel, serde_json::to_vec_pretty(body)?.into())
                .await?;
            Ok(lake.file_url(rel))
        }
    }
}

pub(crate) async fn payload(lake: &Lake, dict: &Dictionary) -> Result<(serde_json::Value, String)> {
    let MentionCounts {
        rows,
        file_hash: hash,
    } = counts(lake, dict).await?;
    let ctx = crate::lake::tables::session(lake, &dict.version).await?;
    let conversations = crate::lake::tables::conversations_with_text(&ctx).await?;
    let meta = PayloadMeta {
        source: "convlake".into(),
        dictionary_version: dict.version.clone(),
        lake_hash: hash.clone(),
        from: rows.iter().map(|r| r.conversation_date).min(),
        to: rows.iter().map(|r| r.conversation_date).max(),
        conversations: conversations.max(0) as u64,
    };
    // Sentiment per product over the whole range, and the flagged insights.
    let mut sentiment: std::collections::BTreeMap<&str, (report::ProductSentiment, i64)> =
        Default::default();
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    for r in &rows {
        let (s, sum) = sentiment.entry(r.product.as_str()).or_default();
        s.product = r.product.clone();
        s.positive += n(r.positive);
        s.negative += n(r.negative);
        s.neutral += n(r.neutral);
        let scored = n(r.positive) + n(r.negative) + n(r.neutral);
        s.unscored += n(r.mentions).saturating_sub(scored);
        *sum += r.sentiment_milli;
    }
    let sentiment = sentiment
        .into_values()
        .map(|(mut s, sum)| {
            let scored = s.positive + s.negative + s.neutral;
            s.mean = (scored > 0).then(|| sum as f64 / scored as f64 / 1000.0);
            s
        })
        .collect();
    let extras = report::PayloadExtras {
        sentiment,
        insights: flagged_insights(lake, &dict.version, &ctx, &rows).await?,
    };
    Ok((
        report::dashboard_payload(&daily(&rows), &meta, &extras),
        hash,
    ))
}

/// `convlake export`.
pub async fn export(lake: &Lake, dict: &Dictionary, args: &ExportConfig) -> Result<()> {
    let (body, hash) = payload(lake, dict).await?;
    if args.dry_run {
        let out = write_dashboard(lake, args.out.as_deref(), &body).await?;
        eprintln!("export: dry run, payload written to {out}");
        return Ok(());
    }
    post(&args.dashboard, &body, &hash).await
}

pub(crate) fn write_json(out: &Path, body: &serde_json::Value) -> Result<()> {
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = out.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(body)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, out).with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}

pub(crate) async fn post(d: &DashboardConfig, body: &serde_json::Value, hash: &str) -> Result<()> {
    let Some(url) = d.dashboard_url.as_deref() else {
        bail!("no dashboard: set DASHBOARD_API_URL or pass --dashboard-url (or use --dry-run to write the payload to a file)");
    };
    let key = format!("convlake-{}", &hash[..32.min(hash.len())]);
    let o = report::post_dashboard(url, d.dashboard_token.as_ref(), body, &key).await?;
    // The URL as configured may carry credentials (userinfo, a key in the query).
    eprintln!(
        "export: posted to {} ({} after {} attempt(s))",
        crate::secret::redact_url_str(url),
        o.status,
        o.attempts
    );
    Ok(())
}
