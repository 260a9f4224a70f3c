//! The aggregate stage: `mention_counts` and `conversation_mentions` from the current mentions,
//! with DataFusion over the lake's tables ([`crate::lake::tables`]), running the SQL kept in
//! `sql/`.
//!
//! Invariants: a conversation staged several times counts once (its newest copy, by event
//! order); the same lake and dictionary give a byte-identical `mention_counts.parquet`.

use std::sync::Arc;

use arrow::array::{Array, Int64Array, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::SchemaRef;
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::prelude::{ParquetReadOptions, SessionContext};

use crate::lake::aggregates::{generation_hash_of, store_file, Stored, Table, TableFile};
use crate::lake::tables::{query, session_materialized, MENTIONS_SQL};
#[cfg(feature = "ballista")]
use crate::lake::tables::{register_lake, InMemory};
use crate::lake::{mentions_dir, mentions_path, schema, Lake, LakeError};

#[cfg(feature = "ballista")]
pub mod ballista;
pub mod diff;

/// The query that builds `mention_counts`.
pub const MENTION_COUNTS_SQL: &str = include_str!("../../sql/mention_counts.sql");
/// One chunk's part of `mention_counts` (its sums).
const MENTION_COUNTS_PARTS_SQL: &str = include_str!("../../sql/mention_counts_parts.sql");
/// `mention_counts` from per-chunk parts of it (`mention_counts_parts`).
const MENTION_COUNTS_COMBINE_SQL: &str = include_str!("../../sql/mention_counts_combine.sql");
/// The query that builds `conversation_mentions`.
pub const CONVERSATION_MENTIONS_SQL: &str = include_str!("../../sql/conversation_mentions.sql");
/// The query that builds `conversation_topics`.
pub const CONVERSATION_TOPICS_SQL: &str = include_str!("../../sql/conversation_topics.sql");
/// The query that builds `product_topics` (from `conversation_mentions` and
/// `conversation_topics`).
pub const PRODUCT_TOPICS_SQL: &str = include_str!("../../sql/product_topics.sql");
/// The query that builds `co_mentions` (from `conversation_mentions`).
pub const CO_MENTIONS_SQL: &str = include_str!("../../sql/co_mentions.sql");

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
    /// Rows of `conversation_topics`, `product_topics` and `co_mentions`.
    pub topics: u64,
    pub product_topics: u64,
    pub co_mentions: u64,
    /// Tests in `product_insights`, and how many of them are flagged.
    pub tests: u64,
    pub flagged: u64,
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

/// Registers a generation's file at `path` as its table.
async fn register_file(
    ctx: &SessionContext,
    lake: &Lake,
    table: Table,
    path: &str,
) -> Result<(), AggregateError> {
    ctx.deregister_table(table.name())?;
    ctx.register_parquet(
        table.name(),
        lake.file_url(path),
        ParquetReadOptions::default().schema(&table.schema()),
    )
    .await?;
    Ok(())
}

/// Runs `sql` whole into a file of `table`, stores it and registers it as the table; returns
/// its path and hash, and its rows.
async fn build_table(
    ctx: &SessionContext,
    lake: &Lake,
    dictionary_version: &str,
    table: Table,
    sql: &str,
) -> Result<(TableFile, u64), AggregateError> {
    let mut out = Output::new(table.schema(), None)?;
    out.run(ctx, sql).await?;
    let built = out.finish()?;
    let (path, hash) = store_file(lake, dictionary_version, table, built.bytes).await?;
    register_file(ctx, lake, table, &path).await?;
    Ok((TableFile { path, hash }, built.rows))
}

/// `product_insights`: every test of each product's latest day and week
/// ([`crate::lake::insights`]) from the `mention_counts` just built, weighed by the conversations
/// with text per day, each flagged one with its quotes.
async fn insights_file(
    ctx: &SessionContext,
    counts_path: &str,
    counts: bytes::Bytes,
    dictionary_version: &str,
) -> Result<(bytes::Bytes, u64, u64), AggregateError> {
    let rows = crate::lake::aggregates::count_rows(counts_path, counts)?;
    let exposure = crate::lake::tables::conversations_per_day(ctx).await?;
    let mut found = crate::lake::insights::tests_of_counts(&rows, &exposure);
    for i in found.iter_mut().filter(|i| i.flagged) {
        i.examples = crate::lake::insights::insight_examples(ctx, i).await?;
        i.topic = crate::lake::insights::insight_topic(ctx, i).await?;
    }
    let flagged = found.iter().filter(|i| i.flagged).count() as u64;
    let batch = crate::lake::insights::to_batch(&found, dictionary_version)
        .map_err(AggregateError::Shape)?;
    let table = schema::product_insights_schema();
    let bytes = schema::to_parquet(&table, &[batch]).map_err(AggregateError::Shape)?;
    Ok((bytes, found.len() as u64, flagged))
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
        parts.extend(query(ctx, MENTION_COUNTS_PARTS_SQL).await?);
    }
    ctx.deregister_table("mentions_all")?;
    ctx.register_table("mentions_all", whole_mentions)?;
    ctx.deregister_table("current_copies")?;
    ctx.register_table("current_copies", whole_copies)?;
    replace_view(ctx, MENTIONS_SQL).await?;
    let parts_schema = schema::mention_counts_parts_schema();
    let parts = parts
        .iter()
        .filter(|b| b.num_rows() > 0)
        .map(|b| conform(b, &parts_schema))
        .collect::<Result<Vec<_>, _>>()?;
    ctx.register_table(
        "mention_counts_parts",
        Arc::new(MemTable::try_new(parts_schema, vec![parts])?),
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
    let schema = crate::lake::copies::current_copies_schema();
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
    register_file(ctx, lake, Table::ConversationMentions, &detail_file.0).await?;
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
    // The other tables, each stored under its content name like the two above (and read by the
    // next through the lake).
    let mut added = std::collections::BTreeMap::new();
    let (topics, topic_rows) = build_table(
        ctx,
        lake,
        dictionary_version,
        Table::ConversationTopics,
        CONVERSATION_TOPICS_SQL,
    )
    .await?;
    added.insert(Table::ConversationTopics, topics);
    let (product_topics, product_topic_rows) = build_table(
        ctx,
        lake,
        dictionary_version,
        Table::ProductTopics,
        PRODUCT_TOPICS_SQL,
    )
    .await?;
    added.insert(Table::ProductTopics, product_topics);
    let (co, co_rows) = build_table(
        ctx,
        lake,
        dictionary_version,
        Table::CoMentions,
        CO_MENTIONS_SQL,
    )
    .await?;
    added.insert(Table::CoMentions, co);
    let (insights, tests, flagged) = insights_file(
        ctx,
        Table::MentionCounts.name(),
        counts.bytes.clone(),
        dictionary_version,
    )
    .await?;
    let (path, hash) =
        store_file(lake, dictionary_version, Table::ProductInsights, insights).await?;
    added.insert(Table::ProductInsights, TableFile { path, hash });
    let counts_file = store_file(
        lake,
        dictionary_version,
        Table::MentionCounts,
        counts.bytes.clone(),
    )
    .await?;
    let hash = generation_hash_of(&counts_file.1, &detail_file.1, &added);
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
            added,
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
        topics: topic_rows,
        product_topics: product_topic_rows,
        co_mentions: co_rows,
        tests,
        flagged,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::simulated_lake;

    /// A copy in a later snapshot replaces the earlier one, exactly as the SQL definition says.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn current_copies_from_dictionaries_equal_the_sql_view() {
        let dir = tempfile::tempdir().unwrap();
        let dict = crate::extract::Dictionary::embedded();
        let lake = simulated_lake(dir.path(), &dict).await;
        let ctx = crate::lake::tables::session(&lake, &dict.version)
            .await
            .unwrap();
        let sql = query(
            &ctx,
            "SELECT conversation_id, snapshot FROM current_copies ORDER BY conversation_id",
        )
        .await
        .unwrap();
        let sql =
            arrow::compute::concat_batches(&crate::lake::copies::current_copies_schema(), &sql)
                .unwrap();
        let events = lake.events().read_all().await.unwrap();
        let rust = crate::lake::copies::current_copies(&lake, &events)
            .await
            .unwrap();
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
            let g = crate::lake::aggregates::generation_of(&lake, version)
                .await
                .unwrap()
                .unwrap();
            let both = g.read_both(&lake).await.unwrap();
            assert_eq!(both.added.len(), Table::ADDED.len(), "{per_chunk:?}");
            let mut bytes = vec![both.mention_counts, both.conversation_mentions];
            bytes.extend(both.added.into_values());
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
