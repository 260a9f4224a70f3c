//! Keeping a table equal to a lake file: the table specs, each value's way into binary COPY,
//! and the merge (insert new, update changed, delete vanished), with the indexes set aside for a
//! first load and the monthly partitions of `conversation_mentions`. Every value arrives
//! unchanged or its row is refused with its key.

use futures::pin_mut;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

use arrow::array::{
    Array, Date32Array, Int64Array, LargeStringArray, RecordBatch, StringArray, StringViewArray,
};

use super::{SyncError, Target};

/// A table the sync keeps equal to a lake file: its columns (in the file's order) and key.
pub(super) struct TableSpec {
    pub(super) table: &'static str,
    columns: &'static [(&'static str, Type)],
    key: usize,
    /// Columns from this one on may be NULL (added after lakes were first written, so NULL in
    /// older aggregate files).
    nullable_from: usize,
}

pub(super) const PRODUCT_MENTIONS: TableSpec = TableSpec {
    table: "product_mentions",
    columns: &[
        ("recorded_date", Type::DATE),
        ("interaction_type", Type::TEXT),
        ("product_name", Type::TEXT),
        ("mention_count", Type::INT8),
        ("conversation_count", Type::INT8),
        ("dictionary_version", Type::TEXT),
        ("positive", Type::INT8),
        ("negative", Type::INT8),
        ("neutral", Type::INT8),
        ("unscored", Type::INT8),
        ("sentiment_mean", Type::FLOAT8),
    ],
    key: 3,
    nullable_from: 6,
};

pub(super) const CONVERSATION_MENTIONS: TableSpec = TableSpec {
    table: "conversation_mentions",
    columns: &[
        ("conversation_id", Type::TEXT),
        ("conversation_date", Type::DATE),
        ("interaction_type", Type::TEXT),
        ("participant", Type::TEXT),
        ("product", Type::TEXT),
        ("mentions", Type::INT8),
        ("dictionary_version", Type::TEXT),
        ("positive", Type::INT8),
        ("negative", Type::INT8),
        ("neutral", Type::INT8),
        ("unscored", Type::INT8),
        ("sentiment_milli", Type::INT8),
    ],
    key: 0,
    nullable_from: 7,
};

pub(super) const PRODUCT_TOPICS: TableSpec = TableSpec {
    table: "product_topics",
    columns: &[
        ("recorded_date", Type::DATE),
        ("product_name", Type::TEXT),
        ("topic", Type::TEXT),
        ("conversation_count", Type::INT8),
        ("dictionary_version", Type::TEXT),
    ],
    key: 3,
    nullable_from: 5,
};

pub(super) const CO_MENTIONS: TableSpec = TableSpec {
    table: "co_mentions",
    columns: &[
        ("week_start", Type::DATE),
        ("product_a", Type::TEXT),
        ("product_b", Type::TEXT),
        ("conversation_count", Type::INT8),
        ("dictionary_version", Type::TEXT),
    ],
    key: 3,
    nullable_from: 5,
};

pub(super) const PRODUCT_INSIGHTS: TableSpec = TableSpec {
    table: "product_insights",
    columns: &[
        ("product_name", Type::TEXT),
        ("time_window", Type::TEXT),
        ("kind", Type::TEXT),
        ("flagged", Type::BOOL),
        ("window_from", Type::DATE),
        ("window_to", Type::DATE),
        ("value", Type::FLOAT8),
        ("baseline", Type::FLOAT8),
        ("ratio", Type::FLOAT8),
        ("ratio_low", Type::FLOAT8),
        ("ratio_high", Type::FLOAT8),
        ("p_value", Type::FLOAT8),
        ("q_value", Type::FLOAT8),
        ("window_count", Type::INT8),
        ("baseline_count", Type::INT8),
        ("examples", Type::TEXT),
        ("dictionary_version", Type::TEXT),
        ("top_topic", Type::TEXT),
        ("top_topic_conversations", Type::INT8),
        ("topic_conversations", Type::INT8),
    ],
    key: 3,
    nullable_from: 17,
};

impl TableSpec {
    fn names(&self, cols: &[(&str, Type)], prefix: &str) -> String {
        cols.iter()
            .map(|(c, _)| format!("{prefix}{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn key_columns(&self) -> Vec<&'static str> {
        match self.key {
            // conversation_date is in the key because the table is partitioned by it.
            0 => vec![
                "conversation_id",
                "participant",
                "product",
                "conversation_date",
            ],
            n => self.columns[..n].iter().map(|(c, _)| *c).collect(),
        }
    }

    fn value_columns(&self) -> Vec<(&'static str, Type)> {
        let key = self.key_columns();
        self.columns
            .iter()
            .filter(|(c, _)| !key.contains(c))
            .cloned()
            .collect()
    }

    /// A batch of a file written before the nullable columns were added, with them as NULL.
    fn pad(&self, batch: RecordBatch) -> RecordBatch {
        let n = batch.num_columns();
        if n >= self.columns.len() || n < self.nullable_from {
            return batch;
        }
        let mut columns = batch.columns().to_vec();
        for (_, ty) in &self.columns[n..] {
            let arrow_type = match *ty {
                Type::INT8 => arrow::datatypes::DataType::Int64,
                Type::FLOAT8 => arrow::datatypes::DataType::Float64,
                Type::DATE => arrow::datatypes::DataType::Date32,
                _ => arrow::datatypes::DataType::Utf8,
            };
            columns.push(arrow::array::new_null_array(&arrow_type, batch.num_rows()));
        }
        let mut fields: Vec<arrow::datatypes::Field> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        for ((name, _), col) in self.columns[n..].iter().zip(&columns[n..]) {
            fields.push(arrow::datatypes::Field::new(
                *name,
                col.data_type().clone(),
                true,
            ));
        }
        let schema = std::sync::Arc::new(arrow::datatypes::Schema::new(fields));
        RecordBatch::try_new(schema, columns).unwrap_or(batch)
    }

    fn staging(&self) -> String {
        format!("incoming_{}", self.table)
    }

    fn create_staging(&self) -> String {
        let cols = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, (c, t))| {
                let ty = match *t {
                    Type::DATE => "DATE",
                    Type::INT8 => "BIGINT",
                    Type::FLOAT8 => "DOUBLE PRECISION",
                    Type::BOOL => "BOOLEAN",
                    _ => "TEXT",
                };
                let null = if i < self.nullable_from {
                    " NOT NULL"
                } else {
                    ""
                };
                format!("{c} {ty}{null}")
            })
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "CREATE TEMP TABLE {} ({cols}) ON COMMIT DROP",
            self.staging()
        )
    }

    fn upsert(&self) -> String {
        let all = self.names(self.columns, "");
        let key = self.key_columns().join(", ");
        let values = self.value_columns();
        let set = values
            .iter()
            .map(|(c, _)| format!("{c} = EXCLUDED.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let join = self
            .key_columns()
            .iter()
            .map(|c| format!("o.{c} = i.{c}"))
            .collect::<Vec<_>>()
            .join(" AND ");
        // Only new and changed rows reach ON CONFLICT: one hash join finds them, instead of a
        // primary-key probe per incoming row. (Inserted and updated rows are told apart by the
        // join, not by `xmax`, which a partitioned table does not return.)
        format!(
            "WITH changes AS MATERIALIZED (
                 SELECT {incoming}, o.{first_key} IS NULL AS is_new FROM {staging} i
                 LEFT JOIN {table} o ON {join}
                 WHERE o.{first_key} IS NULL OR ({current}) IS DISTINCT FROM ({changed})),
             upserted AS (
                 INSERT INTO {table} AS t ({all}, synced_at)
                 SELECT {all}, now() FROM changes
                 ON CONFLICT ({key}) DO UPDATE SET {set}, synced_at = EXCLUDED.synced_at
                 WHERE ({old}) IS DISTINCT FROM ({new})
                 RETURNING 1)
             SELECT (SELECT count(*) FROM changes WHERE is_new),
                    (SELECT count(*) FROM upserted) - (SELECT count(*) FROM changes WHERE is_new)",
            table = self.table,
            staging = self.staging(),
            incoming = self.names(self.columns, "i."),
            first_key = self.key_columns()[0],
            current = self.names(&values, "o."),
            changed = self.names(&values, "i."),
            old = self.names(&values, "t."),
            new = self.names(&values, "EXCLUDED."),
        )
    }

    fn delete_vanished(&self) -> String {
        let on = self
            .key_columns()
            .iter()
            .map(|c| format!("i.{c} = t.{c}"))
            .collect::<Vec<_>>()
            .join(" AND ");
        format!(
            "DELETE FROM {} t WHERE NOT EXISTS (SELECT 1 FROM {} i WHERE {on})",
            self.table,
            self.staging()
        )
    }
}

/// One value on its way into COPY.
#[derive(Debug)]
enum Cell<'a> {
    Date(chrono::NaiveDate),
    Text(&'a str),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
}

impl ToSql for Cell<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Cell::Date(d) => d.to_sql(ty, out),
            Cell::Text(s) => s.to_sql(ty, out),
            Cell::Int(i) => i.to_sql(ty, out),
            Cell::Float(f) => f.to_sql(ty, out),
            Cell::Bool(b) => b.to_sql(ty, out),
            Cell::Null => Ok(tokio_postgres::types::IsNull::Yes),
        }
    }

    fn accepts(ty: &Type) -> bool {
        <chrono::NaiveDate as ToSql>::accepts(ty)
            || <&str as ToSql>::accepts(ty)
            || <i64 as ToSql>::accepts(ty)
            || <f64 as ToSql>::accepts(ty)
            || <bool as ToSql>::accepts(ty)
    }

    tokio_postgres::types::to_sql_checked!();
}

/// Integer columns that are not counts: they may be below zero.
const SIGNED: [&str; 1] = ["sentiment_milli"];

/// The earliest day PostgreSQL's `date` holds, 4714-11-24 BC, in days from 1970-01-01 (its
/// latest, in 5874897 AD, is beyond what chrono holds, which is checked anyway).
const PG_MIN_DAY: i32 = -2_440_588;

/// Column `name` (PostgreSQL type `ty`) of row `row` as it goes into COPY, or why it cannot:
/// every value arrives unchanged or the row is refused.
fn cell<'a>(
    col: &'a dyn Array,
    name: &str,
    ty: &Type,
    nullable: bool,
    row: usize,
) -> Result<Cell<'a>, String> {
    if col.is_null(row) {
        return match nullable {
            true => Ok(Cell::Null),
            false => Err(format!("{name} is null")),
        };
    }
    let any = col.as_any();
    let unexpected = || {
        format!(
            "{name} has Arrow type {}, expected {}",
            col.data_type(),
            match *ty {
                Type::DATE => "Date32",
                Type::INT8 => "Int64",
                Type::FLOAT8 => "Float64",
                Type::BOOL => "Boolean",
                _ => "Utf8",
            }
        )
    };
    match *ty {
        Type::DATE => {
            let a = any.downcast_ref::<Date32Array>().ok_or_else(unexpected)?;
            let d = a
                .value_as_date(row)
                .filter(|_| a.value(row) >= PG_MIN_DAY)
                .ok_or_else(|| {
                    format!(
                        "{name} (day {} from 1970-01-01) is outside the dates PostgreSQL holds",
                        a.value(row)
                    )
                })?;
            Ok(Cell::Date(d))
        }
        Type::INT8 => {
            let v = any
                .downcast_ref::<Int64Array>()
                .ok_or_else(unexpected)?
                .value(row);
            if v < 0 && !SIGNED.contains(&name) {
                return Err(format!("{name} is {v}, and a count cannot be negative"));
            }
            Ok(Cell::Int(v))
        }
        Type::FLOAT8 => {
            let v = any
                .downcast_ref::<arrow::array::Float64Array>()
                .ok_or_else(unexpected)?
                .value(row);
            if !v.is_finite() {
                return Err(format!("{name} is {v}, not a number PostgreSQL compares"));
            }
            Ok(Cell::Float(v))
        }
        Type::BOOL => Ok(Cell::Bool(
            any.downcast_ref::<arrow::array::BooleanArray>()
                .ok_or_else(unexpected)?
                .value(row),
        )),
        _ => {
            let s = if let Some(a) = any.downcast_ref::<StringArray>() {
                a.value(row)
            } else if let Some(a) = any.downcast_ref::<LargeStringArray>() {
                a.value(row)
            } else if let Some(a) = any.downcast_ref::<StringViewArray>() {
                a.value(row)
            } else {
                return Err(unexpected());
            };
            if s.contains('\0') {
                return Err(format!(
                    "{name} contains a NUL character, which PostgreSQL text cannot hold"
                ));
            }
            Ok(Cell::Text(s))
        }
    }
}

/// `name=value` for each key column of row `row`, to name a refused row.
fn describe_key(spec: &TableSpec, batch: &RecordBatch, row: usize) -> String {
    let key = spec.key_columns();
    spec.columns
        .iter()
        .enumerate()
        .filter(|(_, (c, _))| key.contains(c))
        .map(|(i, (c, _))| {
            let col = batch.column(i);
            let value = if col.is_null(row) {
                "null".to_string()
            } else {
                arrow::util::display::array_value_to_string(col, row)
                    .unwrap_or_else(|_| "?".to_string())
            };
            format!("{c}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A count from PostgreSQL (`count(*)`, a row count in sync_state) as u64.
pub(super) fn count(v: i64, what: &str) -> Result<u64, SyncError> {
    u64::try_from(v).map_err(|_| SyncError::Input(format!("{what} is {v}, below zero")))
}

/// A row count on its way into sync_state (BIGINT).
pub(super) fn bigint(v: u64, what: &str) -> Result<i64, SyncError> {
    i64::try_from(v).map_err(|_| SyncError::Input(format!("{what} ({v}) does not fit in BIGINT")))
}

/// What `merge_table` did to one table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Merged {
    /// Rows in the table before, and after (= rows loaded).
    pub(super) before: u64,
    pub(super) rows: u64,
    pub(super) inserted: u64,
    pub(super) updated: u64,
    pub(super) deleted: u64,
}

/// Loads one lake file (`path`, for messages) into the staging table and merges it.
pub(super) async fn merge_table(
    tx: &tokio_postgres::Transaction<'_>,
    target: &Target,
    spec: &TableSpec,
    path: &str,
    batches: impl Iterator<Item = Result<RecordBatch, SyncError>> + Send,
) -> Result<Merged, SyncError> {
    // An empty table (the first sync) takes the rows straight from COPY: nothing to merge.
    let empty = !tx
        .query_one(
            &format!("SELECT EXISTS (SELECT 1 FROM {})", spec.table),
            &[],
        )
        .await
        .map_err(target.db_err(&format!("reading {}", spec.table)))?
        .get::<_, bool>(0);
    let mut rebuild = Vec::new();
    let copy_into = if empty {
        rebuild = set_indexes_aside(tx, target, spec.table).await?;
        format!("{} ({})", spec.table, spec.names(spec.columns, ""))
    } else {
        tx.batch_execute(&spec.create_staging())
            .await
            .map_err(target.db_err(&format!("creating the staging table for {}", spec.table)))?;
        spec.staging()
    };
    // After TRUNCATE in this transaction a plain table can be loaded frozen: no later pass of
    // VACUUM has to rewrite every page.
    let freeze = if rebuild.iter().any(|s| s == FROZEN) {
        ", FREEZE"
    } else {
        ""
    };
    let sink = tx
        .copy_in(&format!(
            "COPY {copy_into} FROM STDIN (FORMAT binary{freeze})"
        ))
        .await
        .map_err(target.db_err("starting COPY"))?;
    let types: Vec<Type> = spec.columns.iter().map(|(_, t)| t.clone()).collect();
    let writer = BinaryCopyInWriter::new(sink, &types);
    pin_mut!(writer);
    let mut rows = 0u64;
    for b in batches {
        let b = spec.pad(b?);
        if b.num_columns() != spec.columns.len() {
            return Err(SyncError::Input(format!(
                "{path} has {} columns, expected {} for {}",
                b.num_columns(),
                spec.columns.len(),
                spec.table
            )));
        }
        for r in 0..b.num_rows() {
            let cells = spec
                .columns
                .iter()
                .enumerate()
                .map(|(i, (name, ty))| {
                    cell(b.column(i).as_ref(), name, ty, i >= spec.nullable_from, r)
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|reason| SyncError::BadRow {
                    table: spec.table,
                    path: path.to_string(),
                    row: rows,
                    key: describe_key(spec, &b, r),
                    reason,
                })?;
            let refs: Vec<&(dyn ToSql + Sync)> =
                cells.iter().map(|c| c as &(dyn ToSql + Sync)).collect();
            writer
                .as_mut()
                .write(&refs)
                .await
                .map_err(target.db_err("copying rows"))?;
            rows += 1;
        }
    }
    writer
        .finish()
        .await
        .map_err(target.db_err("finishing COPY"))?;
    if empty {
        for statement in rebuild.iter().filter(|s| *s != FROZEN) {
            tx.batch_execute(statement)
                .await
                .map_err(target.db_err(&format!("rebuilding the indexes of {}", spec.table)))?;
        }
        return Ok(Merged {
            before: 0,
            rows,
            inserted: rows,
            ..Default::default()
        });
    }
    // Row counts for the planner: a fresh temporary table has no statistics.
    tx.batch_execute(&format!("ANALYZE {}", spec.staging()))
        .await
        .map_err(target.db_err(&format!("analyzing the staged rows of {}", spec.table)))?;
    let before = count(
        tx.query_one(&format!("SELECT count(*) FROM {}", spec.table), &[])
            .await
            .map_err(target.db_err(&format!("counting {}", spec.table)))?
            .get::<_, i64>(0),
        "count(*)",
    )?;
    let counts = tx
        .query_one(&spec.upsert(), &[])
        .await
        .map_err(target.db_err(&format!("merging into {}", spec.table)))?;
    let (inserted, updated) = (
        count(counts.get::<_, i64>(0), "inserted rows")?,
        count(counts.get::<_, i64>(1), "updated rows")?,
    );
    // Every incoming key is in the table now; when the table holds exactly as many rows as
    // came in, none vanished and the anti-join over the whole table can be skipped.
    let deleted = if before + inserted > rows {
        tx.execute(&spec.delete_vanished(), &[])
            .await
            .map_err(target.db_err(&format!("deleting vanished rows of {}", spec.table)))?
    } else {
        0
    };
    Ok(Merged {
        before,
        rows,
        inserted,
        updated,
        deleted,
    })
}

/// Marks, among the statements `set_indexes_aside` returns, that the table was truncated in
/// this transaction and can take `COPY … FREEZE`.
const FROZEN: &str = "-- frozen";

/// Before the first load into an empty table: drops its indexes and primary key (inside the
/// sync's transaction, so a failure puts them back) and returns the statements that rebuild
/// them after COPY. Building an index once over a million rows is several times faster than
/// maintaining five of them row by row (`bench sync`). Readers wait on the table's lock until
/// the commit, and then see every row and every index at once. A table that other tables'
/// foreign keys point at is left as it is.
async fn set_indexes_aside(
    tx: &tokio_postgres::Transaction<'_>,
    target: &Target,
    table: &str,
) -> Result<Vec<String>, SyncError> {
    let err = target.db_err(&format!("setting the indexes of {table} aside"));
    let referenced = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE confrelid = $1::text::regclass),
                    (SELECT relkind = 'r' FROM pg_class WHERE oid = $1::text::regclass)",
            &[&table],
        )
        .await
        .map_err(&err)?;
    if referenced.get::<_, bool>(0) {
        return Ok(Vec::new());
    }
    let plain = referenced.get::<_, Option<bool>>(1).unwrap_or(false);
    let indexes = tx
        .query(
            "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid),
                    c.conname::text, pg_get_constraintdef(c.oid)
             FROM pg_index i
             LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
             WHERE i.indrelid = $1::text::regclass
             ORDER BY c.conname IS NULL, i.indexrelid",
            &[&table],
        )
        .await
        .map_err(&err)?;
    let mut drop = Vec::new();
    let mut rebuild = vec!["SET LOCAL maintenance_work_mem = '256MB'".to_string()];
    for r in &indexes {
        let index: String = r.get(0);
        let definition: String = r.get(1);
        match (r.get::<_, Option<String>>(2), r.get::<_, Option<String>>(3)) {
            (Some(name), Some(constraint)) => {
                drop.push(format!("ALTER TABLE {table} DROP CONSTRAINT \"{name}\""));
                rebuild.push(format!(
                    "ALTER TABLE {table} ADD CONSTRAINT \"{name}\" {constraint}"
                ));
            }
            _ => {
                drop.push(format!("DROP INDEX {index}"));
                // A partitioned table's index reads `ON ONLY parent`, which would build it
                // for the parent alone; rebuilt on the parent, it covers every partition.
                rebuild.push(definition.replacen(" ON ONLY ", " ON ", 1));
            }
        }
    }
    for statement in &drop {
        tx.batch_execute(statement).await.map_err(&err)?;
    }
    if plain {
        tx.batch_execute(&format!("TRUNCATE {table}"))
            .await
            .map_err(&err)?;
        rebuild.push(FROZEN.to_string());
    }
    Ok(rebuild)
}

/// Gives every month in `detail` (conversation_mentions rows) its partition of
/// `conversation_mentions`, `conversation_mentions_yYYYYmMM`, before the rows are loaded: a new
/// partition takes over the rows of its month that were parked in `conversation_mentions_default`
/// and is then attached. Nothing to do when the table is not partitioned (a schema migrated
/// before 0004 by hand) or every month has its partition.
pub(super) async fn month_partitions(
    tx: &tokio_postgres::Transaction<'_>,
    target: &Target,
    detail: impl Iterator<Item = Result<RecordBatch, SyncError>>,
) -> Result<(), SyncError> {
    use chrono::Datelike;
    const TABLE: &str = "conversation_mentions";
    let err = target.db_err("creating the monthly partitions of conversation_mentions");
    let partitioned = tx
        .query_one(
            "SELECT relkind = 'p' FROM pg_class WHERE oid = $1::text::regclass",
            &[&TABLE],
        )
        .await
        .map_err(&err)?
        .get::<_, bool>(0);
    if !partitioned {
        return Ok(());
    }
    let mut months = std::collections::BTreeSet::new();
    for b in detail {
        let b = b?;
        let dates = b
            .column_by_name("conversation_date")
            .ok_or_else(|| {
                SyncError::Input("conversation_mentions: conversation_date is missing".into())
            })?
            .as_any()
            .downcast_ref::<arrow::array::Date32Array>()
            .ok_or_else(|| {
                SyncError::Input("conversation_mentions: conversation_date is not a date".into())
            })?;
        for d in dates.iter().flatten() {
            let day = arrow::temporal_conversions::date32_to_datetime(d)
                .ok_or_else(|| {
                    SyncError::Input(format!("conversation_mentions: date {d} is out of range"))
                })?
                .date();
            months.insert((day.year(), day.month()));
        }
    }
    let existing: std::collections::HashSet<String> = tx
        .query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = $1::text::regclass",
            &[&TABLE],
        )
        .await
        .map_err(&err)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for (year, month) in months {
        let name = format!("{TABLE}_y{year:04}m{month:02}");
        if existing.contains(&name) {
            continue;
        }
        let taken = tx
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
            .await
            .map_err(&err)?
            .get::<_, bool>(0);
        if taken {
            return Err(SyncError::Input(format!(
                "the table {name} exists in schema {schema} but is not a partition of {TABLE} (detached?), and this sync has rows for that month. Attach it again (ALTER TABLE {TABLE} ATTACH PARTITION {name} FOR VALUES FROM ('{year:04}-{month:02}-01') TO (…)), or rename or drop it, then re-run; nothing was changed",
                schema = target.schema()
            )));
        }
        let from = format!("{year:04}-{month:02}-01");
        let to = if month == 12 {
            format!("{:04}-01-01", year + 1)
        } else {
            format!("{year:04}-{:02}-01", month + 1)
        };
        let park = if existing.contains("conversation_mentions_default") {
            format!(
                "WITH moved AS (DELETE FROM {TABLE}_default
                     WHERE conversation_date >= '{from}' AND conversation_date < '{to}' RETURNING *)
                 INSERT INTO {name} SELECT * FROM moved;"
            )
        } else {
            String::new()
        };
        tx.batch_execute(&format!(
            "CREATE TABLE {name} (LIKE {TABLE} INCLUDING DEFAULTS);
             ALTER TABLE {name} ADD CHECK (conversation_date >= '{from}' AND conversation_date < '{to}');
             {park}
             ALTER TABLE {TABLE} ATTACH PARTITION {name} FOR VALUES FROM ('{from}') TO ('{to}');"
        ))
        .await
        .map_err(&err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_refuse_what_postgres_cannot_hold_unchanged() {
        let ints = Int64Array::from(vec![Some(i64::MAX), Some(-1), None]);
        assert!(matches!(
            cell(&ints, "mentions", &Type::INT8, false, 0),
            Ok(Cell::Int(i64::MAX))
        ));
        assert!(cell(&ints, "mentions", &Type::INT8, false, 1)
            .unwrap_err()
            .contains("negative"));
        assert!(cell(&ints, "mentions", &Type::INT8, false, 2)
            .unwrap_err()
            .contains("mentions is null"));
        let texts = StringArray::from(vec![Some("ok"), Some("a\0b"), None]);
        assert!(matches!(
            cell(&texts, "product", &Type::TEXT, false, 0),
            Ok(Cell::Text("ok"))
        ));
        assert!(cell(&texts, "product", &Type::TEXT, false, 1)
            .unwrap_err()
            .contains("NUL"));
        assert!(cell(&texts, "product", &Type::TEXT, false, 2)
            .unwrap_err()
            .contains("null"));
        // 4714-11-24 BC is PostgreSQL's first day; chrono holds the day before, PostgreSQL not.
        let days = Date32Array::from(vec![-2_440_588, -2_440_589]);
        assert!(cell(&days, "d", &Type::DATE, false, 0).is_ok());
        assert!(cell(&days, "d", &Type::DATE, false, 1)
            .unwrap_err()
            .contains("outside the dates PostgreSQL holds"));
        assert!(cell(&days, "d", &Type::INT8, false, 0)
            .unwrap_err()
            .contains("expected Int64"));
    }
}
