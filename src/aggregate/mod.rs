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
use datafusion::datasource::{MemTable, ViewTable};
use datafusion::error::DataFusionError;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};

use crate::lake::events::{snapshots_in_order, Event, EventKind};
use crate::lake::{
    content_hash, conversation_mentions_path, mention_counts_path, mentions_dir, schema, Lake,
    LakeError,
};

#[cfg(feature = "ballista")]
pub mod ballista;
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
    #[cfg(feature = "ballista")]
    #[error(transparent)]
    Ballista(#[from] ballista::ClusterError),
    #[error("this convlake was built without Ballista (cargo feature `ballista`), so `--engine ballista` is not available: use `--engine local`, or rebuild with the default features")]
    BallistaNotBuilt,
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
    let batch = snapshot_order_batch(events)?;
    Ok(MemTable::try_new(batch.schema(), vec![vec![batch]])?)
}

/// Every recorded snapshot with the sequence number of the event that recorded it.
fn snapshot_order_batch(events: &[Event]) -> Result<RecordBatch, AggregateError> {
    let schema: SchemaRef = Arc::new(Schema::new(vec![
        Field::new("snapshot", DataType::Utf8, false),
        Field::new("seq", DataType::Int64, false),
    ]));
    let order = snapshots_in_order(events);
    RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from_iter_values(order.iter().map(|(s, _)| s))),
            Arc::new(Int64Array::from_iter_values(
                order.iter().map(|(_, q)| *q as i64),
            )),
        ],
    )
    .map_err(|e| AggregateError::Shape(e.to_string()))
}

/// The session settings every engine uses, so the local engine and Ballista plan the same SQL
/// over the same types.
///
/// DataFusion's own settings can be tuned through its environment variables
/// (`DATAFUSION_EXECUTION_BATCH_SIZE=16384`, …); the ones set here, which the results depend
/// on, win.
pub fn session_config() -> SessionConfig {
    let config = SessionConfig::from_env().unwrap_or_else(|e| {
        tracing::warn!("ignoring the DATAFUSION_* environment variables: {e}");
        SessionConfig::new()
    });
    let config = if std::env::var_os("DATAFUSION_EXECUTION_TARGET_PARTITIONS").is_some() {
        config
    } else {
        config.with_target_partitions(std::thread::available_parallelism().map_or(2, |n| n.get()))
    };
    config
        .set_bool(
            "datafusion.execution.parquet.schema_force_view_types",
            false,
        )
        .set_bool("datafusion.sql_parser.map_string_types_to_utf8view", false)
        // raw/ is split into raw/<h0h1>/ directories.
        .set_bool(
            "datafusion.execution.listing_table_ignore_subdirectory",
            false,
        )
}

/// A DataFusion session over the lake, for one dictionary version.
pub async fn session(
    lake: &Lake,
    dictionary_version: &str,
) -> Result<SessionContext, AggregateError> {
    let ctx = SessionContext::new_with_config(session_config());
    register_lake(&ctx, lake, dictionary_version, InMemory::Tables).await?;
    Ok(ctx)
}

/// A session whose `current_copies` is computed once, up front, into memory (one row per
/// conversation): for running several queries over `mentions`, each of which would otherwise
/// scan `raw` and rank the copies again.
pub async fn session_materialized(
    lake: &Lake,
    dictionary_version: &str,
) -> Result<SessionContext, AggregateError> {
    let ctx = SessionContext::new_with_config(session_config());
    register_lake(&ctx, lake, dictionary_version, InMemory::Materialized).await?;
    Ok(ctx)
}

/// How the tables built in memory reach the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum InMemory {
    /// `MemTable`s: the local engine reads them in place.
    Tables,
    /// As `Tables`, and `current_copies` is computed once into a `MemTable` instead of a view.
    Materialized,
    /// Views over `VALUES`: the plan carries the rows, so it can be serialized and shipped to
    /// a cluster (a `MemTable` cannot). Only `snapshot_order` is needed by the aggregates, so
    /// `events` is left out.
    Inline,
}

/// Registers the lake's tables and the views from `sql/` on `ctx`.
async fn register_lake(
    ctx: &SessionContext,
    lake: &Lake,
    dictionary_version: &str,
    in_memory: InMemory,
) -> Result<(), AggregateError> {
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
    let detail_schema = schema::conversation_mentions_schema();
    ctx.register_parquet(
        "conversation_mentions",
        lake.file_url(&conversation_mentions_path(dictionary_version)),
        ParquetReadOptions::default().schema(&detail_schema),
    )
    .await?;
    let events = lake.events().read_all().await?;
    match in_memory {
        InMemory::Tables | InMemory::Materialized => {
            ctx.register_table("events", Arc::new(events_table(&events)?))?;
            ctx.register_table("snapshot_order", Arc::new(snapshot_order_table(&events)?))?;
        }
        InMemory::Inline => {
            let order = snapshot_order_batch(&events)?;
            ctx.register_table("snapshot_order", Arc::new(values_view(&order)?))?;
        }
    }
    let current_copies = if in_memory == InMemory::Materialized {
        CURRENT_COPIES_SQL.replacen("CREATE VIEW", "CREATE TABLE", 1)
    } else {
        CURRENT_COPIES_SQL.to_string()
    };
    for view in [current_copies.as_str(), UTTERANCES_SQL, MENTIONS_SQL] {
        ctx.sql(view).await?.collect().await?;
    }
    Ok(())
}

/// A view whose plan holds `batch`'s rows as literals (`VALUES`, or an empty relation of the
/// same schema when there are none).
fn values_view(batch: &RecordBatch) -> Result<ViewTable, AggregateError> {
    use datafusion::common::{DFSchema, ScalarValue};
    use datafusion::logical_expr::{lit, EmptyRelation, Expr, LogicalPlan, LogicalPlanBuilder};

    let schema = Arc::new(DFSchema::try_from(batch.schema())?);
    let plan = if batch.num_rows() == 0 {
        LogicalPlan::EmptyRelation(EmptyRelation {
            produce_one_row: false,
            schema,
        })
    } else {
        let rows = (0..batch.num_rows())
            .map(|row| {
                batch
                    .columns()
                    .iter()
                    .map(|col| Ok(lit(ScalarValue::try_from_array(col, row)?)))
                    .collect::<Result<Vec<_>, DataFusionError>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        // VALUES names its columns column1, column2, …: give them the batch's names.
        let values = LogicalPlanBuilder::values_with_schema(rows, &schema)?;
        let named = values
            .schema()
            .columns()
            .into_iter()
            .zip(batch.schema().fields())
            .map(|(c, f)| Expr::Column(c).alias(f.name()))
            .collect::<Vec<_>>();
        values.project(named)?.build()?
    };
    Ok(ViewTable::new(plan, None))
}

/// Runs one SQL statement and collects the result.
pub async fn query(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>, AggregateError> {
    Ok(ctx.sql(sql).await?.collect().await?)
}

/// Casts a batch to the declared schema (DataFusion may hand back view or dictionary types).
fn conform(batch: &RecordBatch, target: &SchemaRef) -> Result<RecordBatch, AggregateError> {
    let cols = target
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            cast(batch.column(i), f.data_type()).map_err(|e| AggregateError::Shape(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(target.clone(), cols).map_err(|e| AggregateError::Shape(e.to_string()))
}

/// Runs `sql` and writes its result (conformed to `target`) to `path` as it arrives, so only
/// the encoded file is held, not the rows; returns the file and the sum of column
/// `sum_column`'s values, if one is given.
async fn build(
    ctx: &SessionContext,
    lake: &Lake,
    sql: &str,
    target: &SchemaRef,
    path: &str,
    sum_column: Option<usize>,
) -> Result<Built, AggregateError> {
    use futures::StreamExt;
    let started = std::time::Instant::now();
    let mut stream = ctx.sql(sql).await?.execute_stream().await?;
    let mut sink = schema::ParquetSink::new(target).map_err(AggregateError::Shape)?;
    let (mut rows, mut sum) = (0u64, 0i64);
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        if batch.num_rows() == 0 {
            continue;
        }
        let batch = conform(&batch, target)?;
        rows += batch.num_rows() as u64;
        if let Some(col) = sum_column {
            let values = batch
                .column(col)
                .as_any()
                .downcast_ref::<Int64Array>()
                .ok_or_else(|| {
                    AggregateError::Shape(format!("{path}: column {col} is not Int64"))
                })?;
            sum += values.iter().flatten().sum::<i64>();
        }
        sink.write(&batch).map_err(AggregateError::Shape)?;
    }
    let queried = started.elapsed();
    let bytes = sink.finish().map_err(AggregateError::Shape)?;
    lake.put(path, bytes.clone()).await?;
    tracing::debug!(
        "{path}: query and encoding {queried:.2?}, written {:.2?}",
        started.elapsed()
    );
    Ok(Built { rows, sum, bytes })
}

/// What [`build`] wrote.
struct Built {
    rows: u64,
    sum: i64,
    bytes: bytes::Bytes,
}

/// Where the aggregate queries run. The SQL, the output files and their bytes are the same.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Engine {
    /// DataFusion in this process.
    Local,
    /// A Ballista cluster, reached through its scheduler (`df://host:port`).
    Ballista { scheduler: String },
}

/// Builds `aggregates/dict=<version>/mention_counts.parquet` (and the per-conversation
/// `conversation_mentions.parquet`) from the current mentions, in this process.
pub async fn aggregate(
    lake: &Lake,
    dictionary_version: &str,
) -> Result<AggregateSummary, AggregateError> {
    aggregate_with(lake, dictionary_version, &Engine::Local).await
}

/// [`aggregate`] on the given engine.
pub async fn aggregate_with(
    lake: &Lake,
    dictionary_version: &str,
    engine: &Engine,
) -> Result<AggregateSummary, AggregateError> {
    let ctx = match engine {
        Engine::Local => session_materialized(lake, dictionary_version).await?,
        Engine::Ballista { scheduler } => {
            ballista_session(lake, dictionary_version, scheduler).await?
        }
    };
    aggregate_in(&ctx, lake, dictionary_version).await
}

#[cfg(feature = "ballista")]
async fn ballista_session(
    lake: &Lake,
    dictionary_version: &str,
    scheduler: &str,
) -> Result<SessionContext, AggregateError> {
    let ctx = ballista::connect(scheduler).await?;
    register_lake(&ctx, lake, dictionary_version, InMemory::Inline).await?;
    Ok(ctx)
}

#[cfg(not(feature = "ballista"))]
async fn ballista_session(
    _lake: &Lake,
    _dictionary_version: &str,
    _scheduler: &str,
) -> Result<SessionContext, AggregateError> {
    Err(AggregateError::BallistaNotBuilt)
}

/// Runs the aggregate queries on a prepared session and records the result.
async fn aggregate_in(
    ctx: &SessionContext,
    lake: &Lake,
    dictionary_version: &str,
) -> Result<AggregateSummary, AggregateError> {
    let path = mention_counts_path(dictionary_version);
    let detail_schema = schema::conversation_mentions_schema();
    let detail_path = conversation_mentions_path(dictionary_version);
    let detail = build(
        ctx,
        lake,
        CONVERSATION_MENTIONS_SQL,
        &detail_schema,
        &detail_path,
        None,
    )
    .await?;
    // mention_counts.sql reads the detail just written, not the mentions again (several times
    // smaller). It is read back from the lake rather than kept in memory, so memory holds only
    // one query's state at a time, and a cluster reads the same file.
    ctx.deregister_table("conversation_mentions")?;
    ctx.register_parquet(
        "conversation_mentions",
        lake.file_url(&detail_path),
        ParquetReadOptions::default().schema(&detail_schema),
    )
    .await?;
    let counts = build(
        ctx,
        lake,
        MENTION_COUNTS_SQL,
        &schema::mention_counts_schema(),
        &path,
        Some(3),
    )
    .await?;
    let (rows, mentions, bytes, detail) = (counts.rows, counts.sum, counts.bytes, detail.bytes);
    let hash = aggregates_hash(&bytes, &detail);
    lake.events()
        .append(vec![EventKind::Aggregated {
            dictionary_version: dictionary_version.to_string(),
            rows,
            content_hash: hash.clone(),
        }])
        .await?;
    Ok(AggregateSummary {
        dictionary_version: dictionary_version.to_string(),
        rows,
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
