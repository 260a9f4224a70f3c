//! The sync stage: make PostgreSQL's `product_mentions` equal the lake's `mention_counts`.
//!
//! Invariants: migrations (embedded from `migrations/`) are applied in order, each in a
//! transaction, recorded with their checksum; the sync loads the aggregates with binary COPY into
//! a temporary table and merges them (insert new, update changed, delete vanished) in one
//! transaction under an advisory lock, so readers never see a half-synced table, two syncs never
//! interleave, and a second sync of the same state changes no row.
//!
//! Every value reaches PostgreSQL as it is in the lake or not at all: a null, a negative count,
//! a date PostgreSQL cannot hold or a text with a NUL byte is an error naming the row, never a
//! clamped number or an empty string. A sync that would empty `product_mentions` while it holds
//! rows is refused (usually the aggregates of a wrong lake or dictionary) unless asked for.

mod merge;
mod migrate;
mod target;

use arrow::array::RecordBatch;

use crate::lake::aggregates::{current_generation, Table};
use crate::lake::{schema, Lake, LakeError};

use merge::{
    bigint, count, merge_table, month_partitions, TableSpec, CONVERSATION_MENTIONS, CO_MENTIONS,
    PRODUCT_INSIGHTS, PRODUCT_MENTIONS, PRODUCT_TOPICS,
};
use migrate::lock;
pub use migrate::{migrate, MIGRATIONS};
pub use target::Target;

/// Errors of the sync stage. They name the database without its password.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("invalid database URL ({0}); expected postgres://user@host:port/dbname")]
    BadUrl(String),
    #[error("cannot connect to PostgreSQL at {target}: {reason}. Check that the server runs and DATABASE_URL is right; nothing was changed")]
    Connect { target: String, reason: String },
    #[error("PostgreSQL error at {target} while {step}: {reason}. The transaction was rolled back; the previous state is intact, and a re-run converges")]
    Db {
        target: String,
        step: String,
        reason: String,
    },
    #[error("migration {file} was changed after it was applied to schema {schema} (checksum {applied} in the database, {current} now). Restore the file; add a new migration instead of editing an applied one")]
    EditedMigration {
        file: String,
        schema: String,
        applied: String,
        current: String,
    },
    #[error("another convlake sync holds the lock on schema {0}; it will finish soon. Re-run later, or pass --wait to wait for it")]
    Busy(String),
    #[error(
        "invalid schema name {0:?}: use letters, digits and underscores, starting with a letter"
    )]
    BadSchema(String),
    #[error("cannot sync: {0}")]
    Input(String),
    #[error("cannot sync row {row} of {path} into {table} ({key}): {reason}. The aggregates are damaged or were not written by convlake: run `convlake aggregate` again; nothing was changed")]
    BadRow {
        table: &'static str,
        path: String,
        /// 0-based row number in the file.
        row: u64,
        /// The row's key columns, `name=value`.
        key: String,
        reason: String,
    },
    #[error("refusing to empty {table} at {target}: it holds {held} rows and the aggregates of dictionary version {dictionary_version} ({path}) have none. That is usually the aggregates of a wrong lake (--lake / CONVLAKE_LAKE) or of a dictionary that matches nothing; check with `convlake query \"SELECT count(*) FROM mention_counts\"`. If the table really should be empty, re-run with --allow-empty (or CONVLAKE_ALLOW_EMPTY=1); nothing was changed")]
    WouldEmpty {
        table: &'static str,
        target: String,
        held: u64,
        dictionary_version: String,
        path: String,
    },
    #[error(transparent)]
    Lake(#[from] LakeError),
}

/// What a sync did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncSummary {
    /// Rows of `product_mentions` after the sync.
    pub rows: u64,
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
    /// Rows of `conversation_mentions` after the sync, and how many changed.
    pub conversation_rows: u64,
    pub conversation_changes: u64,
    /// True when the database already held exactly this state.
    pub unchanged: bool,
    /// Rows each table held before the sync, and rows of conversation_mentions deleted: what
    /// `large_deletions` compares.
    pub rows_before: u64,
    pub conversation_rows_before: u64,
    pub conversation_deleted: u64,
    /// Rows of `product_topics`, `co_mentions` and `product_insights` after the sync.
    pub topic_rows: u64,
    pub co_mention_rows: u64,
    pub insight_rows: u64,
}

impl SyncSummary {
    /// One line per table that lost more than half of its rows, with the counts: a user wants
    /// to hear about it even when the sync was right to do it.
    pub fn large_deletions(&self) -> Vec<String> {
        [
            ("product_mentions", self.deleted, self.rows_before),
            (
                "conversation_mentions",
                self.conversation_deleted,
                self.conversation_rows_before,
            ),
        ]
        .into_iter()
        .filter(|(_, deleted, before)| *before > 0 && deleted.saturating_mul(2) > *before)
        .map(|(table, deleted, before)| {
            format!(
                "sync deleted {deleted} of the {before} rows of {table} ({}%), leaving {}; if that is not expected, check the lake (--lake) and dictionary the aggregates came from",
                deleted.saturating_mul(100) / before,
                before.saturating_sub(deleted)
            )
        })
        .collect()
    }
}

/// How a sync behaves, beside what it syncs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncOptions {
    /// Wait for another sync holding the lock instead of failing with `Busy`.
    pub wait: bool,
    /// Let the sync empty `product_mentions` when it holds rows (refused otherwise).
    pub allow_empty: bool,
}

/// The aggregates of one dictionary version as read from the lake (still encoded: a sync that
/// finds the content hash unchanged never decodes them), and their content hash.
pub struct Aggregates {
    counts_path: String,
    mention_counts: bytes::Bytes,
    detail_path: String,
    conversation_mentions: bytes::Bytes,
    /// The generation's other tables that PostgreSQL holds (path, bytes); a generation written
    /// before them has none, and their PostgreSQL tables are then emptied.
    added: std::collections::BTreeMap<Table, (String, bytes::Bytes)>,
    /// The generation's hash (over every file).
    pub content_hash: String,
}

/// The added tables the sync keeps in PostgreSQL, with their specs.
const ADDED_SPECS: [(Table, &TableSpec); 3] = [
    (Table::ProductTopics, &PRODUCT_TOPICS),
    (Table::CoMentions, &CO_MENTIONS),
    (Table::ProductInsights, &PRODUCT_INSIGHTS),
];

/// A lake file's rows, decoded one batch at a time as they are loaded (memory holds the
/// encoded file and one batch, not every row); `column`: only that column.
fn decode(
    path: &str,
    bytes: &bytes::Bytes,
    column: Option<&str>,
) -> Result<impl Iterator<Item = Result<RecordBatch, SyncError>> + Send + use<>, SyncError> {
    let bad = {
        let path = path.to_string();
        move |reason: String| {
            SyncError::Lake(LakeError::Parquet {
                path: path.clone(),
                reason,
            })
        }
    };
    let columns = column.map(|c| [c]);
    let batches =
        schema::parquet_batches(bytes.clone(), columns.as_ref().map(|c| &c[..])).map_err(&bad)?;
    Ok(batches.map(move |b| b.map_err(&bad)))
}

impl Aggregates {
    /// Aggregates from the two files' bytes (`*_path` name them in messages), as `read` finds
    /// them in the lake.
    pub fn from_bytes(
        counts_path: &str,
        mention_counts: bytes::Bytes,
        detail_path: &str,
        conversation_mentions: bytes::Bytes,
    ) -> Aggregates {
        let content_hash =
            crate::lake::aggregates::generation_hash(&mention_counts, &conversation_mentions);
        Aggregates {
            counts_path: counts_path.to_string(),
            mention_counts,
            detail_path: detail_path.to_string(),
            conversation_mentions,
            added: std::collections::BTreeMap::new(),
            content_hash,
        }
    }

    /// Reads the generation of a version's aggregates that the lake's latest `aggregated`
    /// event names, checked against the hashes it records.
    pub async fn read(lake: &Lake, dictionary_version: &str) -> Result<Aggregates, SyncError> {
        let events = lake.events().read_all().await?;
        let Some(generation) = current_generation(&events, dictionary_version) else {
            return Err(SyncError::Input(format!(
                "no aggregates for dictionary version {dictionary_version} in {}: run `convlake aggregate` first",
                lake.location()
            )));
        };
        let mut all = generation.read_both(lake).await?;
        let added = ADDED_SPECS
            .iter()
            .filter_map(|(t, _)| {
                let path = generation.path(*t)?.to_string();
                Some((*t, (path, all.added.remove(t)?)))
            })
            .collect();
        Ok(Aggregates {
            counts_path: generation.mention_counts.clone(),
            mention_counts: all.mention_counts,
            detail_path: generation.conversation_mentions.clone(),
            conversation_mentions: all.conversation_mentions,
            added,
            content_hash: generation.content_hash,
        })
    }
}

/// Test hook for fault drills: hold the transaction open this long before committing.
const PAUSE_ENV: &str = "CONVLAKE_FAULT_SYNC_PAUSE_MS";

/// Makes `product_mentions` and `conversation_mentions` equal the lake's aggregates in one
/// transaction, waiting for the lock when `wait`; refuses to empty `product_mentions`.
pub async fn sync(
    target: &Target,
    aggregates: &Aggregates,
    dictionary_version: &str,
    wait: bool,
) -> Result<SyncSummary, SyncError> {
    let options = SyncOptions {
        wait,
        allow_empty: false,
    };
    sync_with(target, aggregates, dictionary_version, &options).await
}

/// True when the file has at least one row (decodes one column until the first row).
fn has_rows(
    batches: impl Iterator<Item = Result<RecordBatch, SyncError>>,
) -> Result<bool, SyncError> {
    for b in batches {
        if b?.num_rows() > 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `sync` with every option: makes `product_mentions` and `conversation_mentions` equal the
/// lake's aggregates in one transaction, or changes nothing.
pub async fn sync_with(
    target: &Target,
    aggregates: &Aggregates,
    dictionary_version: &str,
    options: &SyncOptions,
) -> Result<SyncSummary, SyncError> {
    let wait = options.wait;
    let content_hash = aggregates.content_hash.as_str();
    let mut client = target.connect().await?;
    migrate(&mut client, target, wait).await?;
    let tx = client
        .transaction()
        .await
        .map_err(target.db_err("starting the sync"))?;
    lock(&tx, target, wait).await?;
    // Joins of a million staged rows against the table stay in memory.
    tx.batch_execute("SET LOCAL work_mem = '128MB'")
        .await
        .map_err(target.db_err("starting the sync"))?;
    let last = tx
        .query_opt(
            "SELECT dictionary_version, content_hash, row_count, conversation_rows,
                    topic_rows, co_mention_rows, insight_rows
             FROM sync_state ORDER BY id DESC LIMIT 1",
            &[],
        )
        .await
        .map_err(target.db_err("reading sync_state"))?;
    if let Some(r) = last {
        if r.get::<_, String>(0) == dictionary_version && r.get::<_, String>(1) == content_hash {
            tx.rollback().await.map_err(target.db_err("finishing"))?;
            let rows = count(r.get::<_, i64>(2), "sync_state.row_count")?;
            let conversation_rows = count(r.get::<_, i64>(3), "sync_state.conversation_rows")?;
            return Ok(SyncSummary {
                rows,
                conversation_rows,
                unchanged: true,
                rows_before: rows,
                conversation_rows_before: conversation_rows,
                topic_rows: count(r.get::<_, i64>(4), "sync_state.topic_rows")?,
                co_mention_rows: count(r.get::<_, i64>(5), "sync_state.co_mention_rows")?,
                insight_rows: count(r.get::<_, i64>(6), "sync_state.insight_rows")?,
                ..Default::default()
            });
        }
    }
    let counts_path = aggregates.counts_path.as_str();
    let counts_bytes = &aggregates.mention_counts;
    // Checked before anything is loaded, so a refusal leaves the database as it was (the
    // transaction is rolled back when `tx` is dropped) and costs one column of an empty file.
    if !options.allow_empty
        && !has_rows(decode(
            counts_path,
            counts_bytes,
            Some("conversation_date"),
        )?)?
    {
        let held = count(
            tx.query_one("SELECT count(*) FROM product_mentions", &[])
                .await
                .map_err(target.db_err("counting product_mentions"))?
                .get::<_, i64>(0),
            "count(*)",
        )?;
        if held > 0 {
            tx.rollback().await.map_err(target.db_err("finishing"))?;
            return Err(SyncError::WouldEmpty {
                table: PRODUCT_MENTIONS.table,
                target: target.describe(),
                held,
                dictionary_version: dictionary_version.to_string(),
                path: counts_path.to_string(),
            });
        }
    }
    let counts = merge_table(
        &tx,
        target,
        &PRODUCT_MENTIONS,
        counts_path,
        decode(counts_path, counts_bytes, None)?,
    )
    .await?;
    let (path, detail) = (&aggregates.detail_path, &aggregates.conversation_mentions);
    month_partitions(
        &tx,
        target,
        decode(path, detail, Some("conversation_date"))?,
    )
    .await?;
    let details = merge_table(
        &tx,
        target,
        &CONVERSATION_MENTIONS,
        path,
        decode(path, detail, None)?,
    )
    .await?;
    // The other tables; one a generation lacks (written before it) is emptied.
    let mut added_rows = [0u64; ADDED_SPECS.len()];
    for (k, (table, spec)) in ADDED_SPECS.iter().enumerate() {
        let merged = match aggregates.added.get(table) {
            Some((path, bytes)) => {
                merge_table(&tx, target, spec, path, decode(path, bytes, None)?).await?
            }
            None => merge_table(&tx, target, spec, table.name(), std::iter::empty()).await?,
        };
        added_rows[k] = merged.rows;
    }
    let [topic_rows, co_mention_rows, insight_rows] = added_rows;
    tx.execute(
        "INSERT INTO sync_state
             (dictionary_version, content_hash, row_count, inserted, updated, deleted, conversation_rows,
              topic_rows, co_mention_rows, insight_rows)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            &dictionary_version,
            &content_hash,
            &bigint(counts.rows, "row_count")?,
            &bigint(counts.inserted, "inserted")?,
            &bigint(counts.updated, "updated")?,
            &bigint(counts.deleted, "deleted")?,
            &bigint(details.rows, "conversation_rows")?,
            &bigint(topic_rows, "topic_rows")?,
            &bigint(co_mention_rows, "co_mention_rows")?,
            &bigint(insight_rows, "insight_rows")?,
        ],
    )
    .await
    .map_err(target.db_err("recording sync_state"))?;
    if let Some(ms) = std::env::var(PAUSE_ENV).ok().and_then(|v| v.parse().ok()) {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
    tx.commit().await.map_err(target.db_err("committing"))?;
    Ok(SyncSummary {
        rows: counts.rows,
        inserted: counts.inserted,
        updated: counts.updated,
        deleted: counts.deleted,
        conversation_rows: details.rows,
        conversation_changes: details.inserted + details.updated + details.deleted,
        unchanged: false,
        rows_before: counts.before,
        conversation_rows_before: details.before,
        conversation_deleted: details.deleted,
        topic_rows,
        co_mention_rows,
        insight_rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_deletions_of_more_than_half_warn() {
        let s = |deleted, before, conversation_deleted, conversation_rows_before| SyncSummary {
            deleted,
            rows_before: before,
            conversation_deleted,
            conversation_rows_before,
            ..Default::default()
        };
        assert!(s(0, 0, 0, 0).large_deletions().is_empty());
        assert!(s(5, 10, 1, 3).large_deletions().is_empty());
        let w = s(6, 10, 3, 3).large_deletions();
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].starts_with("sync deleted 6 of the 10 rows of product_mentions (60%), leaving 4"),
            "{w:?}"
        );
        assert!(
            w[1].contains("3 of the 3 rows of conversation_mentions (100%)"),
            "{w:?}"
        );
    }
}
