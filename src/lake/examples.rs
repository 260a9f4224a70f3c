//! Reading utterances back for people: example utterances that mention a product (with every
//! mention in them, to highlight), and the small helpers that turn SQL results into Rust values
//! and Rust values into SQL literals. `report` shows the examples; `aggregate` stores those of
//! each insight in `product_insights`.
//!
//! Invariant: examples are chosen by conversation id, not by time of the run, so the same lake
//! gives the same examples.

use arrow::array::{Array, ArrayRef, Date32Array, Int64Array, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use chrono::{Datelike, NaiveDate};
use datafusion::prelude::SessionContext;

use super::tables::query;
use super::LakeError;

/// One utterance that mentions a product, with where every mention in it is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Example {
    /// The product this is an example of.
    pub product: String,
    /// Conversation the utterance belongs to.
    pub conversation_id: String,
    /// Day of the conversation.
    pub date: NaiveDate,
    /// Interaction type (voice, chat, …).
    pub interaction_type: String,
    /// Who spoke or wrote it (customer, agent, …).
    pub participant: String,
    /// The utterance text as staged (untrusted: escape before showing it).
    pub text: String,
    /// Every mention in `text`: character offsets `[start, end)` and whether it is `product`.
    pub highlights: Vec<(usize, usize, bool)>,
}

/// Up to `n` example utterances per product, from different conversations, each with every
/// mention in it (of any product) so all matched words can be highlighted.
pub async fn examples(
    ctx: &SessionContext,
    mentions_where: &str,
    n: usize,
) -> Result<Vec<Example>, LakeError> {
    let sql = format!(
        "WITH firsts AS (
             SELECT product, conversation_id, MIN(utterance_index) AS utterance_index
             FROM mentions WHERE {mentions_where}
             GROUP BY product, conversation_id
         ), picked AS (
             SELECT product, conversation_id, utterance_index,
                    ROW_NUMBER() OVER (PARTITION BY product ORDER BY conversation_id) AS pick
             FROM firsts
         )
         SELECT p.product, u.conversation_id, u.conversation_date, u.interaction_type,
                u.participant, u.text, m.product AS matched, m.start_char, m.end_char
         FROM picked AS p
         JOIN utterances AS u
           ON u.conversation_id = p.conversation_id AND u.utterance_index = p.utterance_index
         JOIN mentions AS m
           ON m.conversation_id = p.conversation_id AND m.utterance_index = p.utterance_index
         WHERE p.pick <= {n}
         ORDER BY p.product, p.pick, m.start_char, m.end_char"
    );
    let batches = query(ctx, &sql).await?;
    let mut out: Vec<Example> = Vec::new();
    for b in &batches {
        let (product, conv, date, kind) =
            (strings(b, 0), strings(b, 1), dates(b, 2), strings(b, 3));
        let (who, text, matched) = (strings(b, 4), strings(b, 5), strings(b, 6));
        let (start, end) = (ints(b, 7), ints(b, 8));
        for i in 0..b.num_rows() {
            let span = (
                start[i].max(0) as usize,
                end[i].max(0) as usize,
                matched[i] == product[i],
            );
            match out.last_mut() {
                Some(e) if e.product == product[i] && e.conversation_id == conv[i] => {
                    e.highlights.push(span)
                }
                _ => out.push(Example {
                    product: product[i].clone(),
                    conversation_id: conv[i].clone(),
                    date: date[i].unwrap_or_default(),
                    interaction_type: kind[i].clone(),
                    participant: who[i].clone(),
                    text: text[i].clone(),
                    highlights: vec![span],
                }),
            }
        }
    }
    Ok(out)
}

/// A SQL string literal.
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A SQL date: `DATE 'YYYY-MM-DD'` for years 0 to 9999; outside them (which chrono writes as
/// `-0001-…` or `+10000-…`, a form SQL does not parse) the day number since 1970 cast to a
/// date, which is the same Date32 value.
pub fn date_literal(d: NaiveDate) -> String {
    if (0..=9999).contains(&d.year()) {
        format!("DATE '{}'", d.format("%Y-%m-%d"))
    } else {
        let days = (d - NaiveDate::default()).num_days();
        format!("CAST(CAST({days} AS INT) AS DATE)")
    }
}

/// Column `i` cast to `to` (DataFusion may hand back view, dictionary or other integer types);
/// `None` when the column is missing or cannot be cast.
pub fn column_as(batch: &RecordBatch, i: usize, to: &DataType) -> Option<ArrayRef> {
    (i < batch.num_columns())
        .then(|| cast(batch.column(i), to).ok())
        .flatten()
}

pub fn strings(batch: &RecordBatch, i: usize) -> Vec<String> {
    let col = column_as(batch, i, &DataType::Utf8);
    match col
        .as_ref()
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
    {
        Some(a) => (0..a.len())
            .map(|j| {
                if a.is_null(j) {
                    String::new()
                } else {
                    a.value(j).to_string()
                }
            })
            .collect(),
        None => vec![String::new(); batch.num_rows()],
    }
}

pub fn ints(batch: &RecordBatch, i: usize) -> Vec<i64> {
    let col = column_as(batch, i, &DataType::Int64);
    match col
        .as_ref()
        .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
    {
        Some(a) => (0..a.len())
            .map(|j| if a.is_null(j) { 0 } else { a.value(j) })
            .collect(),
        None => vec![0; batch.num_rows()],
    }
}

pub fn dates(batch: &RecordBatch, i: usize) -> Vec<Option<NaiveDate>> {
    let col = column_as(batch, i, &DataType::Date32);
    let epoch = NaiveDate::default();
    match col
        .as_ref()
        .and_then(|c| c.as_any().downcast_ref::<Date32Array>())
    {
        Some(a) => (0..a.len())
            .map(|j| {
                (!a.is_null(j))
                    .then(|| epoch.checked_add_signed(chrono::Duration::days(a.value(j).into())))
                    .flatten()
            })
            .collect(),
        None => vec![None; batch.num_rows()],
    }
}
