//! The numbers behind `report.html`, read with SQL from the lake's tables (`utterances`,
//! `mentions`, `mention_counts`) in a DataFusion session the caller opened.
//!
//! Invariants: every query sees the same filter (date range, product, interaction type), so the
//! headline, the charts, the tables and the examples agree; the examples are chosen by
//! conversation id, not by time of the run, so the same lake gives the same report.

use std::collections::BTreeMap;

use arrow::array::RecordBatch;
use chrono::NaiveDate;
use datafusion::prelude::SessionContext;

use super::{DailyCount, ReportError};
pub use crate::lake::examples::Example;
use crate::lake::examples::{date_literal, dates, ints, literal, strings};

/// Days in the default range: the last 30 days of data.
pub const DEFAULT_DAYS: u64 = 30;

/// What the report covers; `None` means "not filtered" (or, for dates, the default range).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportFilter {
    /// First day, inclusive. Default: `DEFAULT_DAYS - 1` days before `to`, not before the data.
    pub from: Option<NaiveDate>,
    /// Last day, inclusive. Default: the last day with conversations.
    pub to: Option<NaiveDate>,
    /// Only this product (canonical name; matched case-insensitively).
    pub product: Option<String>,
    /// Only this interaction type (matched case-insensitively).
    pub interaction_type: Option<String>,
}

/// Mentions of one product by speaker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpeakerCounts {
    /// Canonical product name.
    pub product: String,
    /// Mentions in what customers said or wrote.
    pub customer: u64,
    /// Mentions in what agents said or wrote.
    pub agent: u64,
    /// Mentions by anyone else (IVR, unknown).
    pub other: u64,
}

/// Everything `report.html` shows, for one filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportData {
    /// The days covered (both inclusive); `None` when the lake holds no conversations.
    pub range: Option<(NaiveDate, NaiveDate)>,
    /// The product filter, as the dictionary spells it.
    pub product: Option<String>,
    /// The interaction-type filter, as the lake spells it.
    pub interaction_type: Option<String>,
    /// Mentions per day, interaction type and product in the range.
    pub daily: Vec<DailyCount>,
    /// Conversations in the range (of the filtered interaction type), with or without mentions.
    pub conversations: u64,
    /// Conversations in the range that mention a (the filtered) product.
    pub conversations_with_mentions: u64,
    /// Mentions per product and speaker, most mentioned product first.
    pub speakers: Vec<SpeakerCounts>,
    /// A few examples per product, grouped by product in the order of `speakers`.
    pub examples: Vec<Example>,
    /// Version of the dictionary the mentions come from.
    pub dictionary_version: String,
    /// The flagged product insights ([`super::insights`]), in the order they are shown.
    /// Filled by the caller (they cover the whole lake).
    pub insights: Vec<super::insights::Insight>,
    /// The days of each insight's chart, in the order of `insights` (filled by the caller).
    pub insight_series: Vec<super::InsightSeries>,
    /// Mentions by sentiment per product in the range, by product name.
    pub sentiment: Vec<super::SentimentCounts>,
    /// (product, STA topic, conversations where both occur) in the range.
    pub topics: Vec<(String, String, u64)>,
    /// (product a, product b, conversations that mention both) in the range, a before b.
    pub co_mentions: Vec<(String, String, u64)>,
}

impl ReportData {
    /// Total mentions in the range.
    pub fn mentions(&self) -> u64 {
        self.daily.iter().map(|r| r.mentions).sum()
    }
}

/// Reads the report's data: resolves the date range (default: the last 30 days of data) and the
/// filters (case-insensitively, to the spelling in the lake), then runs one query per section.
/// An unknown product or interaction type is an error that lists the known ones.
pub async fn load_report_data(
    ctx: &SessionContext,
    filter: &ReportFilter,
    examples_per_product: usize,
    dictionary_version: &str,
) -> Result<ReportData, ReportError> {
    if let (Some(from), Some(to)) = (filter.from, filter.to) {
        if from > to {
            return Err(ReportError::Filter(format!(
                "--from {from} is after --to {to}"
            )));
        }
    }
    let product = match &filter.product {
        Some(p) => Some(resolve(ctx, "product", "mention_counts", p).await?),
        None => None,
    };
    let interaction_type = match &filter.interaction_type {
        Some(t) => Some(resolve(ctx, "interaction_type", "utterances", t).await?),
        None => None,
    };
    let mut data = ReportData {
        product,
        interaction_type,
        dictionary_version: dictionary_version.to_string(),
        ..ReportData::default()
    };

    let bounds = run(
        ctx,
        "the range of the data",
        "SELECT MIN(conversation_date), MAX(conversation_date) FROM utterances",
    )
    .await?;
    let first_day = bounds
        .first()
        .and_then(|b| dates(b, 0).first().copied().flatten());
    let last_day = bounds
        .first()
        .and_then(|b| dates(b, 1).first().copied().flatten());
    let to = match (filter.to, last_day) {
        (Some(t), _) => t,
        (None, Some(last)) => last.max(filter.from.unwrap_or(last)),
        (None, None) => match filter.from {
            Some(f) => f,
            // No data and no dates asked for: an empty report that says so.
            None => return Ok(data),
        },
    };
    let from = filter.from.unwrap_or_else(|| {
        // Checked: `to` may be the first day chrono can represent; the range then starts there.
        let default = to
            .checked_sub_days(chrono::Days::new(DEFAULT_DAYS - 1))
            .unwrap_or(NaiveDate::MIN);
        first_day.map_or(default, |f| default.max(f.min(to)))
    });
    data.range = Some((from, to));

    let mut conditions = vec![
        format!("conversation_date >= {}", date_literal(from)),
        format!("conversation_date <= {}", date_literal(to)),
    ];
    if let Some(t) = &data.interaction_type {
        conditions.push(format!("interaction_type = {}", literal(t)));
    }
    let conversations_where = conditions.join(" AND ");
    if let Some(p) = &data.product {
        conditions.push(format!("product = {}", literal(p)));
    }
    let mentions_where = conditions.join(" AND ");

    let daily = run(
        ctx,
        "the daily counts",
        &format!(
            "SELECT conversation_date, interaction_type, product, mentions, conversations \
             FROM mention_counts WHERE {mentions_where} ORDER BY 1, 2, 3"
        ),
    )
    .await?;
    for b in &daily {
        let (d, t, p, m, c) = (
            dates(b, 0),
            strings(b, 1),
            strings(b, 2),
            ints(b, 3),
            ints(b, 4),
        );
        for i in 0..b.num_rows() {
            let Some(date) = d[i] else { continue };
            data.daily.push(DailyCount {
                date,
                interaction_type: t[i].clone(),
                product: p[i].clone(),
                mentions: m[i].max(0) as u64,
                conversations: c[i].max(0) as u64,
            });
        }
    }

    data.conversations = count(
        ctx,
        "the conversations",
        &format!(
            "SELECT COUNT(DISTINCT conversation_id) FROM utterances WHERE {conversations_where}"
        ),
    )
    .await?;
    data.conversations_with_mentions = count(
        ctx,
        "the conversations with mentions",
        &format!("SELECT COUNT(DISTINCT conversation_id) FROM mentions WHERE {mentions_where}"),
    )
    .await?;

    let speakers = run(
        ctx,
        "the mentions by speaker",
        &format!(
            "SELECT product, participant, COUNT(*) FROM mentions WHERE {mentions_where} \
             GROUP BY product, participant"
        ),
    )
    .await?;
    let mut by_product: BTreeMap<String, SpeakerCounts> = BTreeMap::new();
    for b in &speakers {
        let (p, who, n) = (strings(b, 0), strings(b, 1), ints(b, 2));
        for i in 0..b.num_rows() {
            let entry = by_product
                .entry(p[i].clone())
                .or_insert_with(|| SpeakerCounts {
                    product: p[i].clone(),
                    ..SpeakerCounts::default()
                });
            let n = n[i].max(0) as u64;
            match who[i].as_str() {
                "customer" => entry.customer += n,
                "agent" => entry.agent += n,
                _ => entry.other += n,
            }
        }
    }
    let mut speakers: Vec<SpeakerCounts> = by_product.into_values().collect();
    speakers.sort_by(|a, b| {
        let total = |s: &SpeakerCounts| s.customer + s.agent + s.other;
        total(b).cmp(&total(a)).then(a.product.cmp(&b.product))
    });
    data.speakers = speakers;

    let sentiment = run(
        ctx,
        "the sentiment per product",
        &format!(
            "SELECT product, SUM(positive), SUM(negative), SUM(neutral), SUM(unscored) \
             FROM mention_counts WHERE {mentions_where} GROUP BY product ORDER BY product"
        ),
    )
    .await?;
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    for b in &sentiment {
        let (p, pos, neg, neu, uns) = (
            strings(b, 0),
            ints(b, 1),
            ints(b, 2),
            ints(b, 3),
            ints(b, 4),
        );
        for i in 0..b.num_rows() {
            data.sentiment.push(super::SentimentCounts {
                product: p[i].clone(),
                positive: n(pos[i]),
                negative: n(neg[i]),
                neutral: n(neu[i]),
                unscored: n(uns[i]),
            });
        }
    }
    let triples = |batches: &[RecordBatch]| {
        let mut out = Vec::new();
        for b in batches {
            let (a, c, k) = (strings(b, 0), strings(b, 1), ints(b, 2));
            for i in 0..b.num_rows() {
                out.push((a[i].clone(), c[i].clone(), n(k[i])));
            }
        }
        out
    };
    let topics = run(
        ctx,
        "the topics per product",
        &format!(
            "SELECT m.product, t.topic, COUNT(DISTINCT m.conversation_id) \
             FROM (SELECT DISTINCT conversation_id, product FROM conversation_mentions \
                   WHERE {mentions_where}) AS m \
             JOIN (SELECT DISTINCT conversation_id, topic FROM conversation_topics) AS t \
               ON m.conversation_id = t.conversation_id \
             GROUP BY m.product, t.topic ORDER BY 1, 2"
        ),
    )
    .await?;
    data.topics = triples(&topics);
    let with_product = match &data.product {
        Some(p) => format!(
            "WHERE a.product = {} OR b.product = {}",
            literal(p),
            literal(p)
        ),
        None => String::new(),
    };
    let co = run(
        ctx,
        "the products mentioned together",
        &format!(
            "WITH p AS (SELECT DISTINCT conversation_id, product FROM conversation_mentions \
                        WHERE {conversations_where}) \
             SELECT a.product, b.product, COUNT(*) FROM p AS a \
             JOIN p AS b ON a.conversation_id = b.conversation_id AND a.product < b.product \
             {with_product} GROUP BY a.product, b.product ORDER BY 1, 2"
        ),
    )
    .await?;
    data.co_mentions = triples(&co);

    if examples_per_product > 0 {
        data.examples = examples(ctx, &mentions_where, examples_per_product).await?;
        let order: BTreeMap<&str, usize> = data
            .speakers
            .iter()
            .enumerate()
            .map(|(i, s)| (s.product.as_str(), i))
            .collect();
        // Stable: within a product the examples keep the query's order.
        data.examples
            .sort_by_key(|e| order.get(e.product.as_str()).copied().unwrap_or(usize::MAX));
    }
    Ok(data)
}

/// Up to `n` example utterances per product ([`crate::lake::examples::examples`]).
async fn examples(
    ctx: &SessionContext,
    mentions_where: &str,
    n: usize,
) -> Result<Vec<Example>, ReportError> {
    crate::lake::examples::examples(ctx, mentions_where, n)
        .await
        .map_err(|e| ReportError::Query {
            what: "the examples".into(),
            message: e.to_string(),
        })
}

/// The spelling in the lake of `wanted` in `column` of `table` (case-insensitive), or an error
/// that lists what is there.
async fn resolve(
    ctx: &SessionContext,
    column: &str,
    table: &str,
    wanted: &str,
) -> Result<String, ReportError> {
    let batches = run(
        ctx,
        "the known values",
        &format!("SELECT DISTINCT {column} FROM {table} ORDER BY 1"),
    )
    .await?;
    let known: Vec<String> = batches.iter().flat_map(|b| strings(b, 0)).collect();
    let wanted_lower = wanted.trim().to_lowercase();
    if let Some(found) = known.iter().find(|k| k.to_lowercase() == wanted_lower) {
        return Ok(found.clone());
    }
    let flag = column.replace('_', "-");
    Err(ReportError::Filter(if known.is_empty() {
        format!("--{flag} {wanted:?}: the lake has no {table} yet; run `convlake fetch`, `extract` and `aggregate` first")
    } else {
        format!(
            "--{flag} {wanted:?} does not occur in the lake; known: {}",
            known.join(", ")
        )
    }))
}

async fn run(ctx: &SessionContext, what: &str, sql: &str) -> Result<Vec<RecordBatch>, ReportError> {
    let query = |e: datafusion::error::DataFusionError| ReportError::Query {
        what: what.to_string(),
        message: e.to_string(),
    };
    ctx.sql(sql)
        .await
        .map_err(query)?
        .collect()
        .await
        .map_err(query)
}

async fn count(ctx: &SessionContext, what: &str, sql: &str) -> Result<u64, ReportError> {
    let batches = run(ctx, what, sql).await?;
    Ok(batches
        .first()
        .and_then(|b| ints(b, 0).first().copied())
        .unwrap_or(0)
        .max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_double_single_quotes() {
        assert_eq!(literal("Bob's Router"), "'Bob''s Router'");
    }

    /// Every date chrono holds becomes SQL that DataFusion reads back as the same day.
    #[tokio::test]
    async fn date_literals_round_trip_for_any_year() {
        let ctx = SessionContext::new();
        for d in [
            NaiveDate::MIN,
            NaiveDate::from_ymd_opt(-1, 12, 31).unwrap(),
            NaiveDate::from_ymd_opt(0, 1, 1).unwrap(),
            NaiveDate::from_ymd_opt(1901, 1, 1).unwrap(),
            NaiveDate::from_ymd_opt(1969, 12, 31).unwrap(),
            NaiveDate::from_ymd_opt(2199, 12, 31).unwrap(),
            NaiveDate::from_ymd_opt(9999, 12, 31).unwrap(),
            NaiveDate::from_ymd_opt(10000, 1, 1).unwrap(),
            NaiveDate::MAX,
        ] {
            let batches = run(&ctx, "a date", &format!("SELECT {}", date_literal(d)))
                .await
                .unwrap();
            assert_eq!(dates(&batches[0], 0), vec![Some(d)], "{d}");
        }
    }
}
