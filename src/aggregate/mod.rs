//! The aggregate stage and SQL over the lake: a DataFusion `SessionContext` with the lake's
//! tables registered (`utterances`, `mentions`, `mention_counts`, `events`), running the SQL
//! kept in `sql/`.
//!
//! Invariants: a conversation staged several times counts once (its newest copy, by event
//! order); the same lake and dictionary give a byte-identical `mention_counts.parquet`.

use std::sync::Arc;

use arrow::array::{
    Array, Date32Array, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};

use crate::lake::events::{snapshots_in_order, Event, EventKind};
use crate::lake::{
    content_hash, conversation_mentions_path, mention_counts_path, mentions_dir, schema, Lake,
    LakeError,
};

pub mod diff;

const CURRENT_COPIES_SQL: &str = include_str!("../../sql/current_copies.sql");
const UTTERANCES_SQL: &str = include_str!("../../sql/utterances.sql");
const MENTIONS_SQL: &str = include_str!("../../sql/mentions.sql");
/// The query that builds `mention_counts`.
pub const MENTION_COUNTS_SQL: &str = include_str!("../../sql/mention_counts.sql");
/// The query that builds `conversation_mentions`.
pub const CONVERSATION_MENTIONS_SQL: &str = include_str!("../../sql/conversation_mentions.sql");

/// Errors of the aggregate stage and of queries.
#[derive(Debug, thiserror::Error)]
pub enum AggregateError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("query failed: {0}")]
    Query(#[from] DataFusionError),
    #[error("the aggregates do not have the expected shape: {0}")]
    Shape(String),
}

/// What an aggregate run produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AggregateSummary {
    pub dictionary_version: String,
    pub rows: u64,
    pub mentions: u64,
    pub content_hash: String,
    pub path: String,
}

fn events_table(events: &[Event]) -> Result<MemTable, AggregateError> {
    let schema: SchemaRef = Arc::new(Schema::new(vec![
        Field::new("seq", DataType::Int64, false),
        Field::new("event_index", DataType::Int32, false),
        Field::new(
            "time",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new("kind", DataType::Utf8, false),
        Field::new("snapshot", DataType::Utf8, true),
        Field::new("detail", DataType::Utf8, false),
    ]));
    let seq = Int64Array::from_iter_values(events.iter().map(|e| e.seq as i64));
    let idx = Int32Array::from_iter_values(events.iter().map(|e| e.index as i32));
    let time = TimestampMillisecondArray::from_iter_values(
        events.iter().map(|e| e.time.timestamp_millis()),
    )
    .with_timezone("UTC");
    let kind = StringArray::from_iter_values(events.iter().map(|e| e.kind.name()));
    let snapshot = StringArray::from_iter(events.iter().map(|e| match &e.kind {
        EventKind::Snapshot { snapshot, .. } => Some(snapshot.as_str()),
        _ => None,
    }));
    let detail = StringArray::from_iter_values(
        events
            .iter()
            .map(|e| serde_json::to_string(&e.kind).unwrap_or_default()),
    );
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(seq),
            Arc::new(idx),
            Arc::new(time),
            Arc::new(kind),
            Arc::new(snapshot),
            Arc::new(detail),
        ],
    )
    .map_err(|e| AggregateError::Shape(e.to_string()))?;
    Ok(MemTable::try_new(schema, vec![vec![batch]])?)
}

fn snapshot_order_table(events: &[Event]) -> Result<MemTable, AggregateError> {
    let schema: SchemaRef = Arc::new(Schema::new(vec![
        Field::new("snapshot", DataType::Utf8, false),
        Field::new("seq", DataType::Int64, false),
    ]));
    let order = snapshots_in_order(events);
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from_iter_values(order.iter().map(|(s, _)| s))),
            Arc::new(Int64Array::from_iter_values(
                order.iter().map(|(_, q)| *q as i64),
            )),
        ],
    )
    .map_err(|e| AggregateError::Shape(e.to_string()))?;
    Ok(MemTable::try_new(schema, vec![vec![batch]])?)
}

/// A DataFusion session over the lake, for one dictionary version.
pub async fn session(
    lake: &Lake,
    dictionary_version: &str,
) -> Result<SessionContext, AggregateError> {
    session_with(lake, dictionary_version, false).await
}

/// A session whose `current_copies` is computed once, up front, into memory (one row per
/// conversation): for running several queries over `mentions`, each of which would otherwise
/// scan `raw` and rank the copies again.
pub async fn session_materialized(
    lake: &Lake,
    dictionary_version: &str,
) -> Result<SessionContext, AggregateError> {
    session_with(lake, dictionary_version, true).await
}

async fn session_with(
    lake: &Lake,
    dictionary_version: &str,
    materialize: bool,
) -> Result<SessionContext, AggregateError> {
    let config = SessionConfig::new()
        .with_target_partitions(std::thread::available_parallelism().map_or(2, |n| n.get()))
        .set_bool(
            "datafusion.execution.parquet.schema_force_view_types",
            false,
        )
        .set_bool("datafusion.sql_parser.map_string_types_to_utf8view", false)
        // raw/ is split into raw/<h0h1>/ directories.
        .set_bool(
            "datafusion.execution.listing_table_ignore_subdirectory",
            false,
        );
    let ctx = SessionContext::new_with_config(config);
    // An object-store lake is read through the session's object-store registry.
    lake.register_with(&ctx.runtime_env());
    let mentions = mentions_dir(dictionary_version);
    let counts_dir = format!("aggregates/dict={dictionary_version}");
    // Local listing tables need their directory; creating an empty one is harmless. (An object
    // store has no directories: an empty prefix lists as an empty table.)
    if let Some(root) = lake.local_dir() {
        for dir in ["raw", mentions.as_str(), counts_dir.as_str()] {
            std::fs::create_dir_all(root.join(dir)).map_err(|e| LakeError::Open {
                location: root.join(dir).display().to_string(),
                reason: e.to_string(),
            })?;
        }
    }
    let raw_schema = schema::raw_schema();
    ctx.register_parquet(
        "raw",
        lake.dir_url("raw"),
        ParquetReadOptions::default().schema(&raw_schema),
    )
    .await?;
    let mentions_schema = schema::mentions_schema();
    ctx.register_parquet(
        "mentions_all",
        lake.dir_url(&mentions),
        ParquetReadOptions::default().schema(&mentions_schema),
    )
    .await?;
    let counts_schema = schema::mention_counts_schema();
    // The file, not its folder: conversation_mentions.parquet lives beside it.
    ctx.register_parquet(
        "mention_counts",
        lake.file_url(&mention_counts_path(dictionary_version)),
        ParquetReadOptions::default().schema(&counts_schema),
    )
    .await?;
    let events = lake.events().read_all().await?;
    ctx.register_table("events", Arc::new(events_table(&events)?))?;
    ctx.register_table("snapshot_order", Arc::new(snapshot_order_table(&events)?))?;
    let current_copies = if materialize {
        CURRENT_COPIES_SQL.replacen("CREATE VIEW", "CREATE TABLE", 1)
    } else {
        CURRENT_COPIES_SQL.to_string()
    };
    for view in [current_copies.as_str(), UTTERANCES_SQL, MENTIONS_SQL] {
        ctx.sql(view).await?.collect().await?;
    }
    Ok(ctx)
}

/// Runs one SQL statement and collects the result.
pub async fn query(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>, AggregateError> {
    Ok(ctx.sql(sql).await?.collect().await?)
}

/// Casts batches to the declared schema (DataFusion may hand back view or dictionary types).
fn conform(
    batches: &[RecordBatch],
    target: &SchemaRef,
) -> Result<Vec<RecordBatch>, AggregateError> {
    batches
        .iter()
        .filter(|b| b.num_rows() > 0)
        .map(|b| {
            let cols = target
                .fields()
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    cast(b.column(i), f.data_type())
                        .map_err(|e| AggregateError::Shape(e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            RecordBatch::try_new(target.clone(), cols)
                .map_err(|e| AggregateError::Shape(e.to_string()))
        })
        .collect()
}

/// Runs `sql` and writes its result (conformed to `target`) to `path`; returns (rows, bytes).
async fn build(
    ctx: &SessionContext,
    lake: &Lake,
    sql: &str,
    target: &SchemaRef,
    path: &str,
) -> Result<(Vec<RecordBatch>, bytes::Bytes), AggregateError> {
    let batches = conform(&query(ctx, sql).await?, target)?;
    let bytes = schema::to_parquet(target, &batches).map_err(AggregateError::Shape)?;
    lake.put(path, bytes.clone()).await?;
    Ok((batches, bytes))
}

/// Builds `aggregates/dict=<version>/mention_counts.parquet` (and the per-conversation
/// `conversation_mentions.parquet`) from the current mentions.
pub async fn aggregate(
    lake: &Lake,
    dictionary_version: &str,
) -> Result<AggregateSummary, AggregateError> {
    let ctx = session_materialized(lake, dictionary_version).await?;
    let path = mention_counts_path(dictionary_version);
    let detail_schema = schema::conversation_mentions_schema();
    let (detail_batches, detail) = build(
        &ctx,
        lake,
        CONVERSATION_MENTIONS_SQL,
        &detail_schema,
        &conversation_mentions_path(dictionary_version),
    )
    .await?;
    // mention_counts.sql reads the detail just built, not the mentions again.
    ctx.register_table(
        "conversation_mentions",
        Arc::new(MemTable::try_new(
            detail_schema.clone(),
            vec![detail_batches],
        )?),
    )?;
    let (batches, bytes) = build(
        &ctx,
        lake,
        MENTION_COUNTS_SQL,
        &schema::mention_counts_schema(),
        &path,
    )
    .await?;
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let mentions: i64 = batches
        .iter()
        .filter_map(|b| {
            b.column(3)
                .as_any()
                .downcast_ref::<Int64Array>()
                .map(|a| a.iter().flatten().sum::<i64>())
        })
        .sum();
    let hash = aggregates_hash(&bytes, &detail);
    lake.events()
        .append(vec![EventKind::Aggregated {
            dictionary_version: dictionary_version.to_string(),
            rows: rows as u64,
            content_hash: hash.clone(),
        }])
        .await?;
    Ok(AggregateSummary {
        dictionary_version: dictionary_version.to_string(),
        rows: rows as u64,
        mentions: mentions as u64,
        content_hash: hash,
        path,
    })
}

/// The content hash of a version's aggregates: both files, in order.
pub fn aggregates_hash(mention_counts: &[u8], conversation_mentions: &[u8]) -> String {
    let mut h = blake3::Hasher::new();
    h.update(blake3::hash(mention_counts).as_bytes());
    h.update(blake3::hash(conversation_mentions).as_bytes());
    h.finalize().to_hex().to_string()
}

/// One row of `mention_counts`, as read back from the lake.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct CountRow {
    pub conversation_date: chrono::NaiveDate,
    pub interaction_type: String,
    pub product: String,
    pub mentions: i64,
    pub conversations: i64,
}

/// Reads the aggregates of one dictionary version with their content hash; `None` when
/// `aggregate` has not run for it.
pub async fn read_counts(
    lake: &Lake,
    dictionary_version: &str,
) -> Result<Option<(Vec<CountRow>, String)>, AggregateError> {
    let path = mention_counts_path(dictionary_version);
    if !lake.exists(&path).await? {
        return Ok(None);
    }
    let bytes = lake.get(&path).await?;
    let hash = content_hash(&bytes);
    let batches = schema::from_parquet(bytes).map_err(|reason| LakeError::Parquet {
        path: path.clone(),
        reason,
    })?;
    let mut out = Vec::new();
    let epoch = chrono::NaiveDate::default();
    for b in &batches {
        let shape = || AggregateError::Shape(format!("{path} has unexpected columns"));
        let date = b
            .column(0)
            .as_any()
            .downcast_ref::<Date32Array>()
            .ok_or_else(shape)?;
        let kind = b
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(shape)?;
        let product = b
            .column(2)
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(shape)?;
        let mentions = b
            .column(3)
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or_else(shape)?;
        let convs = b
            .column(4)
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or_else(shape)?;
        for i in 0..b.num_rows() {
            if date.is_null(i) {
                continue;
            }
            out.push(CountRow {
                conversation_date: epoch + chrono::Days::new(date.value(i) as u64),
                interaction_type: kind.value(i).to_string(),
                product: product.value(i).to_string(),
                mentions: mentions.value(i),
                conversations: convs.value(i),
            });
        }
    }
    Ok(Some((out, hash)))
}
