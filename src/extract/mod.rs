//! The extract stage: every raw snapshot becomes `mentions/dict=<version>/<snapshot>.parquet`.
//!
//! Invariants: same snapshot + same dictionary ⇒ same bytes; a snapshot already extracted for
//! this dictionary version is skipped; an output file is written whole, so a stopped run leaves
//! only complete files and a re-run does the rest.

pub mod candidates;
pub mod dictionary;
pub mod eval;
pub mod matcher;

use std::sync::Arc;

use arrow::array::{
    Array, Date32Array, Int32Array, Int32Builder, RecordBatch, StringArray, StringBuilder,
};
use arrow::compute::take;
use futures::{StreamExt, TryStreamExt};

use crate::lake::events::{snapshots_in_order, EventKind};
use crate::lake::{mentions_path, schema, snapshot_path, Lake, LakeError};
pub use dictionary::{Dictionary, DictionaryError};
use matcher::{Found, Matcher, Scratch};

/// Errors of the extract stage.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(transparent)]
    Dictionary(#[from] DictionaryError),
    #[error("snapshot {path}: {reason}. Run `convlake verify` to check the lake")]
    Snapshot { path: String, reason: String },
}

/// What an extract run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtractSummary {
    pub dictionary_version: String,
    pub snapshots: u64,
    pub extracted: u64,
    pub skipped: u64,
    pub utterances: u64,
    pub text_bytes: u64,
    pub mentions: u64,
}

struct SnapshotResult {
    utterances: u64,
    text_bytes: u64,
    mentions: u64,
    parquet: bytes::Bytes,
}

fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T, String> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| format!("column {name} is missing or has the wrong type"))
}

/// Finds the mentions in one snapshot's rows (pure: same input, same output).
fn mentions_of(
    batches: &[RecordBatch],
    matcher: &Matcher,
    version: &str,
) -> Result<SnapshotResult, String> {
    let mut scratch = Scratch::default();
    let mut found: Vec<Found> = Vec::new();
    let mut rows: Vec<u32> = Vec::new();
    let mut product = StringBuilder::new();
    let mut matched = StringBuilder::new();
    let mut start = Int32Builder::new();
    let mut end = Int32Builder::new();
    let mut out = Vec::new();
    let (mut utterances, mut text_bytes, mut mentions) = (0u64, 0u64, 0u64);
    for batch in batches {
        let text = column::<StringArray>(batch, "text")?;
        rows.clear();
        for i in 0..batch.num_rows() {
            if text.is_null(i) {
                continue;
            }
            let t = text.value(i);
            utterances += 1;
            text_bytes += t.len() as u64;
            matcher.find(t, &mut scratch, &mut found);
            for f in &found {
                rows.push(i as u32);
                product.append_value(&matcher.products()[f.product as usize]);
                matched.append_value(&t[f.start_byte..f.end_byte]);
                start.append_value(f.start_char as i32);
                end.append_value(f.end_char as i32);
            }
        }
        mentions += rows.len() as u64;
        let idx = arrow::array::UInt32Array::from(rows.clone());
        let pick = |name: &str| -> Result<Arc<dyn Array>, String> {
            let col = batch
                .column_by_name(name)
                .ok_or_else(|| format!("column {name} is missing"))?;
            take(col.as_ref(), &idx, None).map_err(|e| e.to_string())
        };
        // Type checks up front give a clear message instead of a schema error.
        column::<StringArray>(batch, "conversation_id")?;
        column::<Date32Array>(batch, "conversation_date")?;
        column::<Int32Array>(batch, "utterance_index")?;
        let n = rows.len();
        let b = RecordBatch::try_new(
            schema::mentions_schema(),
            vec![
                pick("conversation_id")?,
                pick("conversation_date")?,
                pick("interaction_type")?,
                pick("participant")?,
                pick("utterance_index")?,
                Arc::new(product.finish()),
                Arc::new(matched.finish()),
                Arc::new(start.finish()),
                Arc::new(end.finish()),
                Arc::new(StringArray::from(vec![version; n])),
                pick("snapshot")?,
            ],
        )
        .map_err(|e| e.to_string())?;
        out.push(b);
    }
    let parquet = schema::to_parquet(&schema::mentions_schema(), &out)?;
    Ok(SnapshotResult {
        utterances,
        text_bytes,
        mentions,
        parquet,
    })
}

/// Extracts every recorded snapshot not yet extracted with this dictionary version.
/// `workers` snapshots are processed at once (CPU-bound work runs on blocking threads).
pub async fn extract(
    lake: &Lake,
    dict: &Dictionary,
    workers: usize,
) -> Result<ExtractSummary, ExtractError> {
    let events = lake.events().read_all().await?;
    let snapshots = snapshots_in_order(&events);
    let matcher = Arc::new(Matcher::new(dict));
    let version = dict.version.clone();
    let mut summary = ExtractSummary {
        dictionary_version: version.clone(),
        snapshots: snapshots.len() as u64,
        ..Default::default()
    };
    let mut todo = Vec::new();
    for (snap, _) in &snapshots {
        if lake.exists(&mentions_path(&version, snap)).await? {
            summary.skipped += 1;
        } else {
            todo.push(snap.clone());
        }
    }
    // Only per-snapshot counts are kept: memory does not grow with the lake.
    let results: Vec<(u64, u64, u64)> = futures::stream::iter(todo)
        .map(|snap| {
            let lake = lake.clone();
            let matcher = matcher.clone();
            let version = version.clone();
            async move {
                let raw_path = snapshot_path(&snap);
                let bytes = lake.get(&raw_path).await?;
                let bad = |reason: String| ExtractError::Snapshot {
                    path: raw_path.clone(),
                    reason,
                };
                let v = version.clone();
                let res = tokio::task::spawn_blocking(move || {
                    let batches = schema::from_parquet(bytes)?;
                    mentions_of(&batches, &matcher, &v)
                })
                .await
                .map_err(|e| bad(e.to_string()))?
                .map_err(bad)?;
                lake.put(&mentions_path(&version, &snap), res.parquet)
                    .await?;
                Ok::<_, ExtractError>((res.utterances, res.text_bytes, res.mentions))
            }
        })
        .buffer_unordered(workers.max(1))
        .try_collect()
        .await?;
    for (utterances, text_bytes, mentions) in results {
        summary.extracted += 1;
        summary.utterances += utterances;
        summary.text_bytes += text_bytes;
        summary.mentions += mentions;
    }
    if summary.extracted > 0 {
        lake.events()
            .append(vec![EventKind::Extracted {
                dictionary_version: version,
                snapshots: summary.extracted,
                mentions: summary.mentions,
            }])
            .await?;
    }
    Ok(summary)
}
