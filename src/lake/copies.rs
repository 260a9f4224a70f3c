//! `current_copies` computed from the raw files' dictionaries, for the local aggregate.
//!
//! The definition is `sql/current_copies.sql`: for every conversation, the snapshot recorded
//! last (by event order, then snapshot name) among those that hold it. Run as SQL it decodes
//! the `conversation_id` and `snapshot` of every utterance in the lake (5.7 million rows at
//! 100,000 conversations) to keep one row per conversation, and it peaked at 216 MB there.
//! Here each raw file's `conversation_id` column is read as a Parquet dictionary (the file's
//! distinct conversations, about a hundred), and the snapshot comes from the event log: the
//! same rows (a test checks them against the SQL), with memory for one entry per conversation.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{Array, DictionaryArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef};
use futures::{StreamExt, TryStreamExt};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::ProjectionMask;

use super::events::{snapshots_in_order, Event};
use super::{snapshot_path, Lake, LakeError};

/// Raw files read at once.
const READS_IN_FLIGHT: usize = 8;

/// The schema of `current_copies`.
pub fn current_copies_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("conversation_id", DataType::Utf8, false),
        Field::new("snapshot", DataType::Utf8, false),
    ]))
}

/// The distinct conversation ids of one raw file.
fn conversations_of(bytes: bytes::Bytes) -> Result<HashSet<String>, String> {
    // The raw schema with conversation_id as a dictionary: the reader hands back the column's
    // dictionary page and its indexes instead of a string per utterance.
    // The file's own columns (files written before a column was added lack it).
    let meta =
        ArrowReaderMetadata::load(&bytes, ArrowReaderOptions::new()).map_err(|e| e.to_string())?;
    let raw = meta.schema().clone();
    let fields: Vec<Field> = raw
        .fields()
        .iter()
        .map(|f| {
            let f = f.as_ref().clone();
            if f.name() == "conversation_id" {
                f.with_data_type(DataType::Dictionary(
                    Box::new(DataType::Int32),
                    Box::new(DataType::Utf8),
                ))
            } else {
                f
            }
        })
        .collect();
    let options = ArrowReaderOptions::new().with_schema(Arc::new(Schema::new(fields)));
    let meta = ArrowReaderMetadata::try_new(meta.metadata().clone(), options)
        .map_err(|e| e.to_string())?;
    let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(bytes, meta);
    let column = raw.index_of("conversation_id").map_err(|e| e.to_string())?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), [column]);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(64 * 1024)
        .build()
        .map_err(|e| e.to_string())?;
    let mut out: HashSet<String> = HashSet::new();
    for batch in reader {
        let batch = batch.map_err(|e| e.to_string())?;
        let ids = batch
            .column(0)
            .as_any()
            .downcast_ref::<DictionaryArray<Int32Type>>()
            .ok_or("conversation_id is not a string column")?;
        let values = ids
            .values()
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or("conversation_id is not a string column")?;
        // Only the entries some row uses (a dictionary may hold more).
        let mut used = vec![false; values.len()];
        for key in ids.keys().iter().flatten() {
            used[key as usize] = true;
        }
        for (i, used) in used.into_iter().enumerate() {
            if used && !values.is_null(i) && !out.contains(values.value(i)) {
                out.insert(values.value(i).to_string());
            }
        }
    }
    Ok(out)
}

/// The rows of `current_copies`, sorted by conversation id.
pub async fn current_copies(lake: &Lake, events: &[Event]) -> Result<RecordBatch, LakeError> {
    // What the SQL's listing of raw/ sees: recorded snapshots whose file is there (verify
    // quarantines damaged files; they are fetched again on the next run).
    let present = lake.list_paths("raw").await?;
    let mut order: Vec<(u64, String)> = snapshots_in_order(events)
        .into_iter()
        .map(|(snapshot, seq)| (seq, snapshot))
        .filter(|(_, s)| present.contains(&snapshot_path(s)))
        .collect();
    // Oldest first, so a later copy overwrites an earlier one: ORDER BY seq DESC, snapshot DESC.
    order.sort();
    let mut reads = futures::stream::iter(order.iter().map(|(_, s)| s.clone()))
        .map(|snapshot| async move {
            let path = snapshot_path(&snapshot);
            let bytes = lake.get(&path).await?;
            tokio::task::spawn_blocking(move || conversations_of(bytes))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r)
                .map_err(|reason| LakeError::Parquet { path, reason })
        })
        .buffered(READS_IN_FLIGHT);
    let mut newest: HashMap<String, usize> = HashMap::new();
    let mut i = 0;
    while let Some(ids) = reads.try_next().await? {
        for id in ids {
            newest.insert(id, i);
        }
        i += 1;
    }
    let mut rows: Vec<(String, usize)> = newest.into_iter().collect();
    rows.sort_unstable();
    let ids = StringArray::from_iter_values(rows.iter().map(|(id, _)| id));
    let snaps = StringArray::from_iter_values(rows.iter().map(|(_, i)| &order[*i].1));
    RecordBatch::try_new(
        current_copies_schema(),
        vec![Arc::new(ids), Arc::new(snaps)],
    )
    .map_err(|e| LakeError::Shape(e.to_string()))
}
