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

use crate::lake::aggregates::{
    current_generation, generation_hash, store_file, Generation, Stored, Table,
};
use crate::lake::events::{snapshots_in_order, Event, EventKind};
use crate::lake::{content_hash, mentions_dir, mentions_path, schema, Lake, LakeError};

#[cfg(feature = "ballista")]
pub mod ballista;
pub mod copies;
pub mod diff;
pub mod stores;

const CURRENT_COPIES_SQL: &str = include_str!("../../sql/current_copies.sql");
const UTTERANCES_SQL: &str = include_str!("../../sql/utterances.sql");
const MENTIONS_SQL: &str = include_str!("../../sql/mentions.sql");
/// The query that builds `mention_counts`.
pub const MENTION_COUNTS_SQL: &str = include_str!("../../sql/mention_counts.sql");
/// `mention_counts` from per-chunk parts of it (`mention_counts_parts`).
const MENTION_COUNTS_COMBINE_SQL: &str = include_str!("../../sql/mention_counts_combine.sql");
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
    #[error("this convlake was built without Ballista (the cargo feature `ballista`, off by default), so `--engine ballista` and `convlake ballista` are not available: use `--engine local` (the same files), or build it with `cargo build --release --features ballista` (or `cargo install --path . --features ballista`)")]
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

/// An empty session with convlake's settings whose only object store is the lake's, confined
/// to it ([`stores::LakeStores::for_lake_of`]): no SQL run in it can read another file.
fn lake_context(lake: &Lake) -> Result<SessionContext, AggregateError> {
    let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
        .with_object_store_registry(Arc::new(stores::LakeStores::for_lake_of(lake)?))
        .build_arc()?;
    Ok(SessionContext::new_with_config_rt(
        session_config(),
        runtime,
    ))
}

/// A DataFusion session over the lake, for one dictionary version.
pub async fn session(
    lake: &Lake,
    dictionary_version: &str,
) -> Result<SessionContext, AggregateError> {
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
) -> Result<SessionContext, AggregateError> {
    let ctx = lake_context(lake)?;
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
    /// `events` is left out. (Only the Ballista engine builds it.)
    #[cfg_attr(not(feature = "ballista"), allow(dead_code))]
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
    // Local listing tables need their directory; creating an empty one inside an existing lake
    // is harmless. (An object store has no directories: an empty prefix lists as an empty
    // table.)
    if let Some(root) = lake.local_dir() {
        for dir in ["raw", mentions.as_str()] {
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
    let events = lake.events().read_all().await?;
    // The aggregates are the generation the latest `aggregated` event names (empty tables
    // before the first aggregate of this version).
    let generation = current_generation(&events, dictionary_version);
    for (table, table_schema) in [
        (Table::MentionCounts, schema::mention_counts_schema()),
        (
            Table::ConversationMentions,
            schema::conversation_mentions_schema(),
        ),
    ] {
        match &generation {
            Some(g) => {
                ctx.register_parquet(
                    table.name(),
                    lake.file_url(g.path(table)),
                    ParquetReadOptions::default().schema(&table_schema),
                )
                .await?
            }
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
        let rows = copies::current_copies(lake, &events).await?;
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

/// Rows of each batch written: the file's bytes then depend only on its rows, not on how a
/// query happened to batch them (the aggregate runs in chunks locally and whole on a cluster).
const WRITE_BATCH_ROWS: usize = 8192;

/// A Parquet file being written from query results, conformed to `target` as they arrive, so
/// only the encoded file is held, not the rows.
struct Output {
    target: SchemaRef,
    sink: schema::ParquetSink,
    batches: arrow::compute::BatchCoalescer,
    rows: u64,
    /// The column whose values are summed (mention counts), if any.
    sum_column: Option<usize>,
    sum: i64,
}

/// What an [`Output`] wrote.
struct Built {
    rows: u64,
    sum: i64,
    bytes: bytes::Bytes,
}

impl Output {
    fn new(target: SchemaRef, sum_column: Option<usize>) -> Result<Output, AggregateError> {
        Ok(Output {
            sink: schema::ParquetSink::new(&target).map_err(AggregateError::Shape)?,
            batches: arrow::compute::BatchCoalescer::new(target.clone(), WRITE_BATCH_ROWS),
            target,
            rows: 0,
            sum_column,
            sum: 0,
        })
    }

    /// Runs `sql` and appends its rows.
    async fn run(&mut self, ctx: &SessionContext, sql: &str) -> Result<(), AggregateError> {
        use futures::StreamExt;
        let mut stream = ctx.sql(sql).await?.execute_stream().await?;
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            if batch.num_rows() > 0 {
                self.push(conform(&batch, &self.target)?)?;
            }
        }
        Ok(())
    }

    fn push(&mut self, batch: RecordBatch) -> Result<(), AggregateError> {
        self.rows += batch.num_rows() as u64;
        if let Some(col) = self.sum_column {
            let values = batch
                .column(col)
                .as_any()
                .downcast_ref::<Int64Array>()
                .ok_or_else(|| AggregateError::Shape(format!("column {col} is not Int64")))?;
            self.sum += values.iter().flatten().sum::<i64>();
        }
        let shape = |e: arrow::error::ArrowError| AggregateError::Shape(e.to_string());
        self.batches.push_batch(batch).map_err(shape)?;
        self.write_completed()
    }

    fn write_completed(&mut self) -> Result<(), AggregateError> {
        while let Some(batch) = self.batches.next_completed_batch() {
            self.sink.write(&batch).map_err(AggregateError::Shape)?;
        }
        Ok(())
    }

    /// Finishes the file (not stored yet: its name is its content).
    fn finish(mut self) -> Result<Built, AggregateError> {
        let shape = |e: arrow::error::ArrowError| AggregateError::Shape(e.to_string());
        self.batches.finish_buffered_batch().map_err(shape)?;
        self.write_completed()?;
        let bytes = self.sink.finish().map_err(AggregateError::Shape)?;
        Ok(Built {
            rows: self.rows,
            sum: self.sum,
            bytes,
        })
    }
}

/// Mentions files (bytes) per chunk of the local aggregate: each chunk's groups are complete (a
/// conversation's mentions all come from its current snapshot), so memory holds one chunk's
/// groups instead of the whole lake's. Chunks are consecutive runs of snapshot names, the
/// query's first sort key. 1 MiB is about 80 archive pages (8,000 conversations) or 110
/// details-job pages; each chunk costs a few milliseconds of planning, so smaller chunks are
/// slower and larger ones hold more (README, "Pipeline at scale").
pub const MENTION_BYTES_PER_CHUNK: u64 = 1 << 20;

/// Registers the `conversation_mentions` file at `path` as the table of that name.
async fn register_detail_file(
    ctx: &SessionContext,
    lake: &Lake,
    path: &str,
) -> Result<(), AggregateError> {
    ctx.deregister_table("conversation_mentions")?;
    ctx.register_parquet(
        "conversation_mentions",
        lake.file_url(path),
        ParquetReadOptions::default().schema(&schema::conversation_mentions_schema()),
    )
    .await?;
    Ok(())
}

/// Runs both aggregate queries once per chunk, over that chunk's mentions files and current
/// copies: `conversation_mentions`' ORDER BY starts with the snapshot, so the chunks, in order,
/// give its rows in order into `detail`, and `counts` gets the sum of the chunks' parts of
/// `mention_counts`. The session's tables are the whole lake's again afterwards.
async fn run_in_chunks(
    ctx: &SessionContext,
    lake: &Lake,
    chunks: &[Chunk],
    detail: &mut Output,
    counts: &mut Output,
) -> Result<(), AggregateError> {
    let whole_mentions = ctx.table_provider("mentions_all").await?;
    let whole_copies = ctx.table_provider("current_copies").await?;
    let copies = query(ctx, "SELECT conversation_id, snapshot FROM current_copies").await?;
    let mut parts = Vec::new();
    for chunk in chunks {
        register_chunk(ctx, lake, chunk, &copies).await?;
        let rows = query(ctx, CONVERSATION_MENTIONS_SQL)
            .await?
            .iter()
            .filter(|b| b.num_rows() > 0)
            .map(|b| conform(b, &detail.target))
            .collect::<Result<Vec<_>, _>>()?;
        for batch in &rows {
            detail.push(batch.clone())?;
        }
        ctx.deregister_table("conversation_mentions")?;
        ctx.register_table(
            "conversation_mentions",
            Arc::new(MemTable::try_new(detail.target.clone(), vec![rows])?),
        )?;
        parts.extend(query(ctx, MENTION_COUNTS_SQL).await?);
    }
    ctx.deregister_table("mentions_all")?;
    ctx.register_table("mentions_all", whole_mentions)?;
    ctx.deregister_table("current_copies")?;
    ctx.register_table("current_copies", whole_copies)?;
    replace_view(ctx, MENTIONS_SQL).await?;
    let parts = parts
        .iter()
        .filter(|b| b.num_rows() > 0)
        .map(|b| conform(b, &counts.target))
        .collect::<Result<Vec<_>, _>>()?;
    ctx.register_table(
        "mention_counts_parts",
        Arc::new(MemTable::try_new(counts.target.clone(), vec![parts])?),
    )?;
    counts.run(ctx, MENTION_COUNTS_COMBINE_SQL).await?;
    ctx.deregister_table("mention_counts_parts")?;
    Ok(())
}

/// One chunk of the local `conversation_mentions` query: consecutive snapshot names and
/// their mentions files.
struct Chunk {
    snapshots: std::collections::HashSet<String>,
    files: Vec<String>,
}

/// The recorded snapshots that have a mentions file, by name, in chunks of at least one file
/// and at most `per_chunk` bytes of them.
async fn chunks(
    ctx: &SessionContext,
    lake: &Lake,
    dictionary_version: &str,
    per_chunk: u64,
) -> Result<Vec<Chunk>, AggregateError> {
    // One listing, as `mentions_all` sees the folder.
    let present: std::collections::HashMap<String, u64> = lake
        .list(&mentions_dir(dictionary_version))
        .await?
        .into_iter()
        .map(|m| (m.location.to_string(), m.size))
        .collect();
    let mut names: Vec<String> = Vec::new();
    for batch in query(ctx, "SELECT snapshot FROM snapshot_order").await? {
        let col = batch
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| AggregateError::Shape("snapshot_order.snapshot is not text".into()))?;
        names.extend(col.iter().flatten().map(str::to_string));
    }
    names.sort_unstable();
    names.dedup();
    let mut chunks: Vec<Chunk> = Vec::new();
    let mut bytes = 0u64;
    for snapshot in names {
        let path = mentions_path(dictionary_version, &snapshot);
        let Some(&size) = present.get(&path) else {
            continue;
        };
        match chunks.last_mut() {
            Some(chunk) if bytes + size <= per_chunk => {
                bytes += size;
                chunk.files.push(path);
                chunk.snapshots.insert(snapshot);
            }
            _ => {
                bytes = size;
                chunks.push(Chunk {
                    files: vec![path],
                    snapshots: [snapshot].into_iter().collect(),
                });
            }
        }
    }
    Ok(chunks)
}

/// Points `mentions_all`, `current_copies` and the `mentions` view at one chunk.
async fn register_chunk(
    ctx: &SessionContext,
    lake: &Lake,
    chunk: &Chunk,
    copies: &[RecordBatch],
) -> Result<(), AggregateError> {
    use datafusion::datasource::file_format::options::ReadOptions;
    use datafusion::datasource::listing::{ListingTable, ListingTableConfig, ListingTableUrl};

    let urls = chunk
        .files
        .iter()
        .map(|f| ListingTableUrl::parse(lake.file_url(f)))
        .collect::<Result<Vec<_>, _>>()?;
    let options = ParquetReadOptions::default()
        .to_listing_options(&ctx.copied_config(), ctx.copied_table_options());
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(schema::mentions_schema());
    ctx.deregister_table("mentions_all")?;
    ctx.register_table("mentions_all", Arc::new(ListingTable::try_new(config)?))?;
    let mut mine = Vec::new();
    for batch in copies {
        let snaps = batch
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| AggregateError::Shape("current_copies.snapshot is not text".into()))?;
        let keep: arrow::array::BooleanArray = snaps
            .iter()
            .map(|s| Some(s.is_some_and(|s| chunk.snapshots.contains(s))))
            .collect();
        let part = arrow::compute::filter_record_batch(batch, &keep)
            .map_err(|e| AggregateError::Shape(e.to_string()))?;
        if part.num_rows() > 0 {
            mine.push(part);
        }
    }
    let schema = copies::current_copies_schema();
    ctx.deregister_table("current_copies")?;
    ctx.register_table(
        "current_copies",
        Arc::new(MemTable::try_new(schema, vec![mine])?),
    )?;
    // A view holds the tables it was created over: create it again over the chunk's.
    replace_view(ctx, MENTIONS_SQL).await
}

/// Runs a `CREATE VIEW` statement as `CREATE OR REPLACE VIEW`.
async fn replace_view(ctx: &SessionContext, sql: &str) -> Result<(), AggregateError> {
    let sql = sql.replacen("CREATE VIEW", "CREATE OR REPLACE VIEW", 1);
    ctx.sql(&sql).await?.collect().await?;
    Ok(())
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
    // A cluster runs the query whole (each chunk would rank every copy in raw again).
    let per_chunk = matches!(engine, Engine::Local).then_some(MENTION_BYTES_PER_CHUNK);
    aggregate_in(&ctx, lake, dictionary_version, per_chunk).await
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

/// Runs the aggregate queries on a prepared session and records the result; `per_chunk`:
/// bytes of mentions files per chunk, or `None` to run the queries whole. The
/// files are the same either way.
async fn aggregate_in(
    ctx: &SessionContext,
    lake: &Lake,
    dictionary_version: &str,
    per_chunk: Option<u64>,
) -> Result<AggregateSummary, AggregateError> {
    let started = std::time::Instant::now();
    let detail_schema = schema::conversation_mentions_schema();
    let counts_schema = schema::mention_counts_schema();
    let mut out = Output::new(detail_schema.clone(), None)?;
    let mut counts_out = Output::new(counts_schema.clone(), Some(3))?;
    let chunks = match per_chunk {
        Some(n) => chunks(ctx, lake, dictionary_version, n).await?,
        None => Vec::new(),
    };
    // The detail is stored first, under its content name, and nothing reads it through the
    // log until the `Aggregated` event below names it with its pair: a kill anywhere before
    // that event leaves the previous generation in force.
    let whole = chunks.len() <= 1;
    if whole {
        out.run(ctx, CONVERSATION_MENTIONS_SQL).await?;
    } else {
        run_in_chunks(ctx, lake, &chunks, &mut out, &mut counts_out).await?;
    }
    let detail = out.finish()?;
    let detail_file = store_file(
        lake,
        dictionary_version,
        Table::ConversationMentions,
        detail.bytes.clone(),
    )
    .await?;
    // `conversation_mentions` is the file just stored, as in every session; run whole,
    // mention_counts.sql reads it rather than the mentions again (several times smaller), from
    // the lake, so a cluster reads the same file.
    register_detail_file(ctx, lake, &detail_file.0).await?;
    if whole {
        counts_out.run(ctx, MENTION_COUNTS_SQL).await?;
    }
    tracing::debug!(
        "{}: {} rows in {} chunks",
        detail_file.0,
        detail.rows,
        chunks.len().max(1),
    );
    let counts = counts_out.finish()?;
    let hash = generation_hash(&counts.bytes, &detail.bytes);
    let counts_file = store_file(
        lake,
        dictionary_version,
        Table::MentionCounts,
        counts.bytes.clone(),
    )
    .await?;
    tracing::debug!(
        "{}: {} rows, {:.2?}",
        counts_file.0,
        counts.rows,
        started.elapsed()
    );
    let path = counts_file.0.clone();
    let (rows, mentions) = (counts.rows, counts.sum);
    crate::lake::aggregates::publish(
        lake,
        dictionary_version,
        Stored {
            mention_counts: counts_file,
            conversation_mentions: detail_file,
            rows,
            content_hash: hash.clone(),
        },
    )
    .await?;
    Ok(AggregateSummary {
        dictionary_version: dictionary_version.to_string(),
        rows,
        mentions: mentions as u64,
        content_hash: hash,
        path,
    })
}

/// The generation of a version's aggregates in force, from the lake's log.
pub async fn generation_of(
    lake: &Lake,
    dictionary_version: &str,
) -> Result<Option<Generation>, AggregateError> {
    let events = lake.events().read_all().await?;
    Ok(current_generation(&events, dictionary_version))
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
    let Some(generation) = generation_of(lake, dictionary_version).await? else {
        return Ok(None);
    };
    let path = generation.path(Table::MentionCounts).to_string();
    let bytes = generation.read(lake, Table::MentionCounts).await?;
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
            // Days before 1970 are negative: a legitimate date (1901, 1969), never a cast to
            // u64. Only a day count beyond chrono's range (about ±262,000 years, which no parsed
            // timestamp can produce) is refused, naming the file and the value.
            let days = date.value(i);
            let shifted = chrono::Days::new(u64::from(days.unsigned_abs()));
            let conversation_date = if days < 0 {
                epoch.checked_sub_days(shifted)
            } else {
                epoch.checked_add_days(shifted)
            }
            .ok_or_else(|| {
                AggregateError::Shape(format!(
                    "{path} row {i} has conversation_date {days} days from 1970-01-01, outside \
                     the dates convlake can represent; run `convlake aggregate` again"
                ))
            })?;
            out.push(CountRow {
                conversation_date,
                interaction_type: kind.value(i).to_string(),
                product: product.value(i).to_string(),
                mentions: mentions.value(i),
                conversations: convs.value(i),
            });
        }
    }
    Ok(Some((out, hash)))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A lake from the simulator: two overlapping fetches (so some conversations are stored
    /// twice and only their newest copy counts), then extract.
    pub(crate) async fn simulated_lake(
        dir: &std::path::Path,
        dict: &crate::extract::Dictionary,
    ) -> Lake {
        use crate::genesys::{self, ApiClient, Credentials, Endpoints, FetchOptions, RetryPolicy};
        let lake = Lake::open_local(dir).unwrap();
        let start = chrono::NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let mut cfg = crate::simulator::SimConfig::new(crate::pipeline::sim_products(dict));
        cfg.conversations = 400;
        cfg.start = start;
        cfg.days = 10;
        cfg.seed = 11;
        let sim = crate::simulator::start(cfg, ([127, 0, 0, 1], 0).into())
            .await
            .unwrap();
        let client = ApiClient::new(
            Endpoints::resolve("us-east-1", Some(&sim.url), None).unwrap(),
            Credentials {
                client_id: "unit".into(),
                client_secret: crate::secret::Secret::new("unit-secret"),
            },
            RetryPolicy::default(),
        )
        .unwrap();
        for (from, to) in [(0, 6), (4, 9)] {
            let opts = FetchOptions {
                from: start + chrono::Days::new(from),
                to: start + chrono::Days::new(to),
                media: genesys::fetch::MEDIA_TYPES
                    .iter()
                    .map(|m| m.to_string())
                    .collect(),
                page_size: 25,
            };
            genesys::fetch(&lake, &client, &opts).await.unwrap();
        }
        sim.shutdown().await;
        crate::extract::extract(&lake, dict, 2).await.unwrap();
        lake
    }

    /// A copy in a later snapshot replaces the earlier one, exactly as the SQL definition says.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn current_copies_from_dictionaries_equal_the_sql_view() {
        let dir = tempfile::tempdir().unwrap();
        let dict = crate::extract::Dictionary::embedded();
        let lake = simulated_lake(dir.path(), &dict).await;
        let ctx = session(&lake, &dict.version).await.unwrap();
        let sql = query(
            &ctx,
            "SELECT conversation_id, snapshot FROM current_copies ORDER BY conversation_id",
        )
        .await
        .unwrap();
        let sql = arrow::compute::concat_batches(&copies::current_copies_schema(), &sql).unwrap();
        let events = lake.events().read_all().await.unwrap();
        let rust = copies::current_copies(&lake, &events).await.unwrap();
        assert_eq!(rust, sql);
        // The overlap stored some conversations twice, so the newest copy was chosen.
        let stored = query(
            &ctx,
            "SELECT COUNT(*) FROM (SELECT DISTINCT conversation_id, snapshot FROM raw)",
        )
        .await
        .unwrap();
        let stored = stored[0]
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .value(0);
        assert!(
            stored as usize > rust.num_rows(),
            "{stored} copies, {} conversations",
            rust.num_rows()
        );
    }

    /// The aggregate run in chunks of one snapshot writes the bytes of the query run whole.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn chunked_and_whole_aggregates_write_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let dict = crate::extract::Dictionary::embedded();
        let lake = simulated_lake(dir.path(), &dict).await;
        let version = dict.version.as_str();
        let mut runs = Vec::new();
        // One file a chunk, a few, and all in one chunk (the whole query's path).
        for per_chunk in [None, Some(1), Some(20_000), Some(MENTION_BYTES_PER_CHUNK)] {
            let ctx = session_materialized(&lake, version).await.unwrap();
            let summary = aggregate_in(&ctx, &lake, version, per_chunk).await.unwrap();
            let g = generation_of(&lake, version).await.unwrap().unwrap();
            let both = g.read_both(&lake).await.unwrap();
            let bytes = vec![both.mention_counts, both.conversation_mentions];
            runs.push((per_chunk, summary, bytes));
        }
        let (_, whole, whole_bytes) = &runs[0];
        assert!(whole.rows > 20 && whole.mentions > 100, "{whole:?}");
        for (per_chunk, summary, bytes) in &runs[1..] {
            assert_eq!(summary, whole, "{per_chunk:?}");
            assert!(bytes == whole_bytes, "{per_chunk:?}: the files differ");
        }
        // The whole detail is sorted by its key within each snapshot, and the file reads back.
        let detail = schema::from_parquet(whole_bytes[1].clone()).unwrap();
        let n: usize = detail.iter().map(|b| b.num_rows()).sum();
        assert!(n > 100, "{n} rows");
    }
}
