//! The lake's SQL tables: a DataFusion `SessionContext` over one lake and one dictionary version,
//! with `raw`, `utterances`, `mentions`, `mention_counts`, `conversation_mentions` and `events`
//! registered, and the views of `sql/` (`current_copies`, `utterances`, `mentions`). Every
//! command that reads the lake with SQL (query, report, export, candidates, demo, the aggregate
//! stage itself) opens it here.
//!
//! Invariant: a session reads only the lake's own store ([`LakeStores::for_lake_of`]), so no
//! SQL run in it can read another file.

use std::sync::Arc;

use arrow::array::{Int32Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::datasource::{MemTable, ViewTable};
use datafusion::error::DataFusionError;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};

use super::aggregates::{current_generation, Table};
use super::copies::current_copies;
use super::events::{snapshots_in_order, Event, EventKind};
use super::stores::LakeStores;
use super::{mentions_dir, schema, Lake, LakeError};

const CURRENT_COPIES_SQL: &str = include_str!("../../sql/current_copies.sql");
const UTTERANCES_SQL: &str = include_str!("../../sql/utterances.sql");
/// The `mentions` view: the mentions of every conversation's current copy.
pub const MENTIONS_SQL: &str = include_str!("../../sql/mentions.sql");

fn events_table(events: &[Event]) -> Result<MemTable, LakeError> {
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
    .map_err(|e| LakeError::Shape(e.to_string()))?;
    Ok(MemTable::try_new(schema, vec![vec![batch]])?)
}

fn snapshot_order_table(events: &[Event]) -> Result<MemTable, LakeError> {
    let batch = snapshot_order_batch(events)?;
    Ok(MemTable::try_new(batch.schema(), vec![vec![batch]])?)
}

/// Every recorded snapshot with the sequence number of the event that recorded it.
fn snapshot_order_batch(events: &[Event]) -> Result<RecordBatch, LakeError> {
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
    .map_err(|e| LakeError::Shape(e.to_string()))
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

/// An empty session with convlake's settings whose only object store is the lake's, confined
/// to it ([`LakeStores::for_lake_of`]): no SQL run in it can read another file.
fn lake_context(lake: &Lake) -> Result<SessionContext, LakeError> {
    let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
        .with_object_store_registry(Arc::new(LakeStores::for_lake_of(lake)?))
        .build_arc()?;
    Ok(SessionContext::new_with_config_rt(
        session_config(),
        runtime,
    ))
}

/// A DataFusion session over the lake, for one dictionary version.
pub async fn session(lake: &Lake, dictionary_version: &str) -> Result<SessionContext, LakeError> {
    let ctx = lake_context(lake)?;
    register_lake(&ctx, lake, dictionary_version, InMemory::Tables).await?;
    Ok(ctx)
}

/// A session whose `current_copies` is computed once, up front, into memory (one row per
/// conversation): for running several queries over `mentions`, each of which would otherwise
/// scan `raw` and rank the copies again.
pub async fn session_materialized(
    lake: &Lake,
    dictionary_version: &str,
) -> Result<SessionContext, LakeError> {
    let ctx = lake_context(lake)?;
    register_lake(&ctx, lake, dictionary_version, InMemory::Materialized).await?;
    Ok(ctx)
}

/// How the tables built in memory reach the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InMemory {
    /// `MemTable`s: the local engine reads them in place.
    Tables,
    /// As `Tables`, and `current_copies` is computed once into a `MemTable` instead of a view.
    Materialized,
    /// Views over `VALUES`: the plan carries the rows, so it can be serialized and shipped to
    /// a cluster (a `MemTable` cannot). Only `snapshot_order` is needed by the aggregates, so
    /// `events` is left out. (Only the Ballista engine builds it.)
    #[cfg_attr(not(feature = "ballista"), allow(dead_code))]
    Inline,
}

/// Registers the lake's tables and the views from `sql/` on `ctx`.
pub(crate) async fn register_lake(
    ctx: &SessionContext,
    lake: &Lake,
    dictionary_version: &str,
    in_memory: InMemory,
) -> Result<(), LakeError> {
    // An object-store lake is read through the session's object-store registry.
    lake.register_with(&ctx.runtime_env());
    let mentions = mentions_dir(dictionary_version);
    let topics = super::layout::topics_dir(dictionary_version);
    // Local listing tables need their directory; creating an empty one inside an existing lake
    // is harmless. (An object store has no directories: an empty prefix lists as an empty
    // table.)
    if let Some(root) = lake.local_dir() {
        for dir in ["raw", mentions.as_str(), topics.as_str()] {
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
    // Every snapshot's topics as extract wrote them (the aggregate keeps the current copies').
    ctx.register_parquet(
        "topics_all",
        lake.dir_url(&topics),
        ParquetReadOptions::default().schema(&schema::topics_schema()),
    )
    .await?;
    let events = lake.events().read_all().await?;
    // The aggregates are the generation the latest `aggregated` event names (empty tables
    // before the first aggregate of this version).
    let generation = current_generation(&events, dictionary_version);
    for table in Table::ALL {
        let table_schema = table.schema();
        match generation.as_ref().and_then(|g| g.path(table)) {
            Some(path) => {
                ctx.register_parquet(
                    table.name(),
                    lake.file_url(path),
                    ParquetReadOptions::default().schema(&table_schema),
                )
                .await?
            }
            // Not aggregated yet, or a generation from before the table.
            None => {
                ctx.register_table(
                    table.name(),
                    Arc::new(MemTable::try_new(table_schema, vec![vec![]])?),
                )?;
            }
        }
    }
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
    if in_memory == InMemory::Materialized {
        let rows = current_copies(lake, &events).await?;
        ctx.register_table(
            "current_copies",
            Arc::new(MemTable::try_new(rows.schema(), vec![vec![rows]])?),
        )?;
    } else {
        ctx.sql(CURRENT_COPIES_SQL).await?.collect().await?;
    }
    for view in [UTTERANCES_SQL, MENTIONS_SQL] {
        ctx.sql(view).await?.collect().await?;
    }
    Ok(())
}

/// A view whose plan holds `batch`'s rows as literals (`VALUES`, or an empty relation of the
/// same schema when there are none).
fn values_view(batch: &RecordBatch) -> Result<ViewTable, LakeError> {
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

/// The distinct conversations with text the lake holds (listing intervals overlap, so a
/// conversation active across a boundary is staged twice but counted once).
pub async fn conversations_with_text(ctx: &SessionContext) -> Result<i64, LakeError> {
    let batches = query(
        ctx,
        "SELECT COUNT(DISTINCT conversation_id) AS n FROM utterances",
    )
    .await?;
    Ok(batches
        .first()
        .and_then(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .map(|a| a.value(0))
        })
        .unwrap_or(0))
}

/// Conversations with text per day (the exposure product insights weigh counts by: a day whose
/// conversations are partly still ongoing, or a quiet Sunday, expects fewer mentions).
pub async fn conversations_per_day(
    ctx: &SessionContext,
) -> Result<std::collections::BTreeMap<chrono::NaiveDate, u64>, LakeError> {
    let batches = query(
        ctx,
        "SELECT CAST(conversation_date AS DATE), COUNT(DISTINCT conversation_id) FROM utterances \
         GROUP BY 1",
    )
    .await?;
    let mut out = std::collections::BTreeMap::new();
    for b in &batches {
        let shape = || LakeError::Shape("conversations per day: unexpected columns".into());
        let dates = b
            .column(0)
            .as_any()
            .downcast_ref::<arrow::array::Date32Array>()
            .ok_or_else(shape)?;
        let counts = b
            .column(1)
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or_else(shape)?;
        for i in 0..b.num_rows() {
            if let (Some(d), false) = (
                dates.value_as_date(i),
                arrow::array::Array::is_null(counts, i),
            ) {
                out.insert(d, u64::try_from(counts.value(i)).unwrap_or(0));
            }
        }
    }
    Ok(out)
}

/// Runs one SQL statement and collects the result.
pub async fn query(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>, LakeError> {
    Ok(ctx.sql(sql).await?.collect().await?)
}
