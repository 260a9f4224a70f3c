//! The presentation commands: `report` (charts), `export` (the dashboard payload) and `query`
//! (SQL over the lake).

use std::path::Path;

use anyhow::{bail, Context as _, Result};

use super::counts;
use crate::aggregate::{self, CountRow};
use crate::cli::{DashboardArgs, ExportArgs, Format, QueryArgs, ReportArgs};
use crate::extract::Dictionary;
use crate::lake::Lake;
use crate::report::{self, DailyCount, PayloadMeta};
use crate::secret::Secret;

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

/// `convlake report`.
pub async fn report(
    lake: &Lake,
    dict: &Dictionary,
    args: &ReportArgs,
) -> Result<report::ChartFiles> {
    let (rows, _) = counts(lake, dict).await?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| lake.root().join("reports"));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let files = report::write_trend_charts(&daily(&rows), &out, args.top.max(1))?;
    eprintln!(
        "report: {} and {}",
        files.png.display(),
        files.svg.display()
    );
    Ok(files)
}

pub(crate) async fn payload(lake: &Lake, dict: &Dictionary) -> Result<(serde_json::Value, String)> {
    let (rows, hash) = counts(lake, dict).await?;
    let ctx = aggregate::session(lake, &dict.version).await?;
    let convs = aggregate::query(
        &ctx,
        "SELECT COUNT(DISTINCT conversation_id) AS n FROM utterances",
    )
    .await?;
    let conversations = convs
        .first()
        .and_then(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .map(|a| a.value(0))
        })
        .unwrap_or(0);
    let meta = PayloadMeta {
        source: "convlake".into(),
        dictionary_version: dict.version.clone(),
        lake_hash: hash.clone(),
        from: rows.iter().map(|r| r.conversation_date).min(),
        to: rows.iter().map(|r| r.conversation_date).max(),
        conversations: conversations.max(0) as u64,
    };
    Ok((report::dashboard_payload(&daily(&rows), &meta), hash))
}

/// `convlake export`.
pub async fn export(lake: &Lake, dict: &Dictionary, args: &ExportArgs) -> Result<()> {
    let (body, hash) = payload(lake, dict).await?;
    if args.dry_run {
        let out = args
            .out
            .clone()
            .unwrap_or_else(|| lake.root().join("reports").join("dashboard.json"));
        write_json(&out, &body)?;
        eprintln!("export: dry run, payload written to {}", out.display());
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

pub(crate) async fn post(d: &DashboardArgs, body: &serde_json::Value, hash: &str) -> Result<()> {
    let Some(url) = d.dashboard_url.as_deref() else {
        bail!("no dashboard: set DASHBOARD_API_URL or pass --dashboard-url (or use --dry-run to write the payload to a file)");
    };
    let token = d.dashboard_token.clone().map(Secret::new);
    let key = format!("convlake-{}", &hash[..32.min(hash.len())]);
    let o = report::post_dashboard(url, token.as_ref(), body, &key).await?;
    eprintln!(
        "export: posted to {url} ({} after {} attempt(s))",
        o.status, o.attempts
    );
    Ok(())
}

/// `convlake query`.
pub async fn query(lake: &Lake, dict: &Dictionary, args: &QueryArgs) -> Result<()> {
    let sql = match (&args.sql, &args.file) {
        (_, Some(f)) => {
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?
        }
        (Some(s), None) => s.clone(),
        (None, None) => bail!("give a SQL string or --file FILE"),
    };
    let ctx = aggregate::session(lake, &dict.version).await?;
    let batches = aggregate::query(&ctx, &sql).await?;
    let mut out: Vec<u8> = Vec::new();
    match args.format {
        Format::Table => {
            let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
            out.extend(
                arrow::util::pretty::pretty_format_batches(&batches)?
                    .to_string()
                    .bytes(),
            );
            out.extend(format!("\n({rows} row{})\n", if rows == 1 { "" } else { "s" }).bytes());
        }
        Format::Csv => {
            let mut w = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut out);
            for b in &batches {
                w.write(b)?;
            }
        }
        Format::Json => {
            let mut w = arrow::json::ArrayWriter::new(&mut out);
            for b in &batches {
                w.write(b)?;
            }
            w.finish()?;
            if batches.iter().all(|b| b.num_rows() == 0) {
                out = b"[]".to_vec();
            }
            out.push(b'\n');
        }
    }
    match &args.output {
        Some(p) => std::fs::write(p, &out).with_context(|| format!("writing {}", p.display()))?,
        None => {
            use std::io::Write;
            std::io::stdout().write_all(&out)?;
        }
    }
    Ok(())
}
