//! `convlake diff-dictionary`: what a dictionary change does to the counts, per product, with
//! example snippets of mentions it adds and removes. Both versions must be extracted (the
//! command extracts them first); the comparison runs as SQL over the two `dict=` partitions.

use datafusion::prelude::{ParquetReadOptions, SessionContext};

use super::AggregateError;
use crate::lake::tables::{query, session};
use crate::lake::{mentions_dir, schema, Lake};

/// The change for one product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductChange {
    pub product: String,
    pub old_mentions: i64,
    pub new_mentions: i64,
    pub old_conversations: i64,
    pub new_conversations: i64,
    /// Snippets of mentions only the new dictionary finds.
    pub added: Vec<String>,
    /// Snippets of mentions only the old dictionary finds.
    pub removed: Vec<String>,
}

async fn register_old(ctx: &SessionContext, lake: &Lake, old: &str) -> Result<(), AggregateError> {
    let s = schema::mentions_schema();
    ctx.register_parquet(
        "mentions_old_all",
        lake.dir_url(&mentions_dir(old)),
        ParquetReadOptions::default().schema(&s),
    )
    .await?;
    ctx.sql(
        "CREATE VIEW mentions_old AS SELECT m.* FROM mentions_old_all m
         JOIN current_copies c ON m.conversation_id = c.conversation_id AND m.snapshot = c.snapshot",
    )
    .await?
    .collect()
    .await?;
    Ok(())
}

fn strings(batches: &[arrow::array::RecordBatch], col: usize) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches {
        let c = arrow::compute::cast(b.column(col), &arrow::datatypes::DataType::Utf8);
        if let Ok(c) = c {
            if let Some(a) = c.as_any().downcast_ref::<arrow::array::StringArray>() {
                out.extend((0..a.len()).map(|i| a.value(i).to_string()));
            }
        }
    }
    out
}

fn ints(batches: &[arrow::array::RecordBatch], col: usize) -> Vec<i64> {
    let mut out = Vec::new();
    for b in batches {
        if let Ok(c) = arrow::compute::cast(b.column(col), &arrow::datatypes::DataType::Int64) {
            if let Some(a) = c.as_any().downcast_ref::<arrow::array::Int64Array>() {
                out.extend((0..a.len()).map(|i| if a.is_valid(i) { a.value(i) } else { 0 }));
            }
        }
    }
    out
}

use arrow::array::Array;

const ONLY_IN: &str = "
SELECT product, snippet FROM (
  SELECT a.product,
         '…' || substr(u.text, greatest(a.start_char + 1 - 40, 1), a.start_char - greatest(a.start_char - 40, 0))
             || '[' || a.matched_text || ']'
             || substr(u.text, a.end_char + 1, 40) || '…' AS snippet,
         ROW_NUMBER() OVER (PARTITION BY a.product ORDER BY a.conversation_id, a.utterance_index, a.start_char) AS rn
  FROM {a} a
  LEFT JOIN {b} b
    ON a.snapshot = b.snapshot AND a.conversation_id = b.conversation_id
   AND a.utterance_index = b.utterance_index AND a.start_char = b.start_char
   AND a.end_char = b.end_char AND a.product = b.product
  JOIN utterances u
    ON u.snapshot = a.snapshot AND u.conversation_id = a.conversation_id
   AND u.utterance_index = a.utterance_index
  WHERE b.product IS NULL
) WHERE rn <= {n} ORDER BY product, rn";

/// Compares the mentions of two extracted dictionary versions.
pub async fn diff(
    lake: &Lake,
    old: &str,
    new: &str,
    examples: usize,
) -> Result<Vec<ProductChange>, AggregateError> {
    let ctx = session(lake, new).await?;
    register_old(&ctx, lake, old).await?;
    let totals = query(
        &ctx,
        "SELECT COALESCE(n.product, o.product) AS product,
                COALESCE(o.m, 0) AS old_m, COALESCE(n.m, 0) AS new_m,
                COALESCE(o.c, 0) AS old_c, COALESCE(n.c, 0) AS new_c
         FROM (SELECT product, COUNT(*) AS m, COUNT(DISTINCT conversation_id) AS c FROM mentions GROUP BY product) n
         FULL OUTER JOIN
              (SELECT product, COUNT(*) AS m, COUNT(DISTINCT conversation_id) AS c FROM mentions_old GROUP BY product) o
         ON n.product = o.product
         ORDER BY 1",
    )
    .await?;
    let n = examples.to_string();
    let added = query(
        &ctx,
        &ONLY_IN
            .replace("{a}", "mentions")
            .replace("{b}", "mentions_old")
            .replace("{n}", &n),
    )
    .await?;
    let removed = query(
        &ctx,
        &ONLY_IN
            .replace("{a}", "mentions_old")
            .replace("{b}", "mentions")
            .replace("{n}", &n),
    )
    .await?;
    let products = strings(&totals, 0);
    let (om, nm, oc, nc) = (
        ints(&totals, 1),
        ints(&totals, 2),
        ints(&totals, 3),
        ints(&totals, 4),
    );
    let pairs = |b: &[arrow::array::RecordBatch]| -> Vec<(String, String)> {
        strings(b, 0).into_iter().zip(strings(b, 1)).collect()
    };
    let (added, removed) = (pairs(&added), pairs(&removed));
    Ok(products
        .into_iter()
        .enumerate()
        .map(|(i, product)| ProductChange {
            added: added
                .iter()
                .filter(|(p, _)| *p == product)
                .map(|(_, s)| s.clone())
                .collect(),
            removed: removed
                .iter()
                .filter(|(p, _)| *p == product)
                .map(|(_, s)| s.clone())
                .collect(),
            old_mentions: om[i],
            new_mentions: nm[i],
            old_conversations: oc[i],
            new_conversations: nc[i],
            product,
        })
        .collect())
}
