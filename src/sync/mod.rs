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

use std::fmt;

use futures::pin_mut;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Config, NoTls};

use arrow::array::{
    Array, Date32Array, Int64Array, LargeStringArray, RecordBatch, StringArray, StringViewArray,
};

use crate::lake::aggregates::current_generation;
use crate::lake::{schema, Lake, LakeError};
use crate::secret::Secret;

/// The migrations, in order: (file name, SQL).
pub const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_product_mentions.sql",
        include_str!("../../migrations/0001_product_mentions.sql"),
    ),
    (
        "0002_sync_state.sql",
        include_str!("../../migrations/0002_sync_state.sql"),
    ),
    (
        "0003_conversation_mentions.sql",
        include_str!("../../migrations/0003_conversation_mentions.sql"),
    ),
    (
        "0004_conversation_mentions_by_month.sql",
        include_str!("../../migrations/0004_conversation_mentions_by_month.sql"),
    ),
    (
        "0005_drop_type_date_index.sql",
        include_str!("../../migrations/0005_drop_type_date_index.sql"),
    ),
    (
        "0006_counts_bigint_names_text.sql",
        include_str!("../../migrations/0006_counts_bigint_names_text.sql"),
    ),
];

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

/// Where to sync: a connection string (a secret: it may hold a password) and a schema.
#[derive(Clone)]
pub struct Target {
    url: Secret,
    config: Config,
    schema: String,
    /// `sslrootcert`: an extra CA certificate (PEM) to trust besides the webpki roots.
    tls_root: Option<std::path::PathBuf>,
    /// TLS through rustls when `sslmode` is `require`, `verify-ca` or `verify-full`; the server
    /// certificate is always verified.
    use_tls: bool,
}

/// Splits convlake's TLS settings off a connection string: tokio-postgres knows `sslmode`
/// `disable|prefer|require` only, and not `sslrootcert`. Returns (string for tokio-postgres,
/// TLS wanted, root certificate file).
fn split_tls(conn: &str) -> (String, bool, Option<std::path::PathBuf>) {
    let mut want = false;
    let mut root = None;
    let mut mode = |v: &str| -> &'static str {
        match v {
            "require" | "verify-ca" | "verify-full" => {
                want = true;
                "require"
            }
            "disable" => "disable",
            _ => "prefer",
        }
    };
    if conn.starts_with("postgres://") || conn.starts_with("postgresql://") {
        let Ok(mut url) = url::Url::parse(conn) else {
            return (conn.to_string(), false, None);
        };
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let mut kept = Vec::new();
        for (k, v) in pairs {
            match k.as_str() {
                "sslrootcert" => root = Some(std::path::PathBuf::from(v)),
                "sslmode" => kept.push((k, mode(&v).to_string())),
                _ => kept.push((k, v)),
            }
        }
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(kept);
        }
        return (url.to_string(), want, root);
    }
    let mut parts = Vec::new();
    for token in conn.split_whitespace() {
        match token.split_once('=') {
            Some(("sslrootcert", v)) => root = Some(std::path::PathBuf::from(v)),
            Some(("sslmode", v)) => parts.push(format!("sslmode={}", mode(v))),
            _ => parts.push(token.to_string()),
        }
    }
    (parts.join(" "), want, root)
}

fn rustls_connector(
    root: Option<&std::path::Path>,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = root {
        let pem = std::fs::read(path)
            .map_err(|e| format!("cannot read sslrootcert {}: {e}", path.display()))?;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert =
                cert.map_err(|e| format!("{} is not a PEM certificate: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("{} holds an unusable certificate: {e}", path.display()))?;
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Target({})", self.describe())
    }
}

impl Target {
    /// Parses a connection string (URL or key=value form) and checks the schema name.
    pub fn new(url: Secret, schema: &str) -> Result<Target, SyncError> {
        let (plain, use_tls, tls_root) = split_tls(url.expose());
        let config: Config = plain
            .parse()
            .map_err(|e: tokio_postgres::Error| SyncError::BadUrl(e.to_string()))?;
        let ok = schema
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && schema
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            && schema.len() <= 63;
        if !ok {
            return Err(SyncError::BadSchema(schema.to_string()));
        }
        Ok(Target {
            url,
            config,
            schema: schema.to_string(),
            tls_root,
            use_tls,
        })
    }

    /// `user@host:port/db (schema s)`, never the password.
    pub fn describe(&self) -> String {
        format!(
            "{}@{} (schema {})",
            self.config.get_user().unwrap_or("?"),
            self.database(),
            self.schema
        )
    }

    /// `host:port/db`: the database without user or password, as the `synced` event records it.
    pub fn database(&self) -> String {
        let host = self
            .config
            .get_hosts()
            .first()
            .map(|h| match h {
                tokio_postgres::config::Host::Tcp(s) => s.clone(),
                #[cfg(unix)]
                tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
            })
            .unwrap_or_else(|| "localhost".into());
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        format!(
            "{}:{}/{}",
            host,
            port,
            self.config.get_dbname().unwrap_or("?")
        )
    }

    /// The schema the tables live in.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    fn db_err(&self, step: &str) -> impl Fn(tokio_postgres::Error) -> SyncError + '_ {
        let step = step.to_string();
        move |e| SyncError::Db {
            target: self.describe(),
            step: step.clone(),
            reason: pg_reason(&e),
        }
    }

    /// Connects, with `search_path` set to the schema (created if missing).
    pub async fn connect(&self) -> Result<Client, SyncError> {
        let mut config = self.config.clone();
        if config.get_application_name().is_none() {
            // Lets operators find convlake's sessions in pg_stat_activity.
            config.application_name("convlake");
        }
        let connect_err = |reason: String| SyncError::Connect {
            target: self.describe(),
            reason,
        };
        let client = if self.use_tls {
            let tls = rustls_connector(self.tls_root.as_deref()).map_err(connect_err)?;
            let (client, connection) = config
                .connect(tls)
                .await
                .map_err(|e| connect_err(pg_reason(&e)))?;
            drive(connection);
            client
        } else {
            let (client, connection) = config
                .connect(NoTls)
                .await
                .map_err(|e| connect_err(pg_reason(&e)))?;
            drive(connection);
            client
        };
        let q = format!(
            "CREATE SCHEMA IF NOT EXISTS \"{0}\"; SET search_path TO \"{0}\"",
            self.schema
        );
        client
            .batch_execute(&q)
            .await
            .map_err(self.db_err("selecting the schema"))?;
        let _ = &self.url; // the secret stays here, only `config` is used to connect
        Ok(client)
    }

    fn lock_key(&self) -> i64 {
        let h = blake3::hash(format!("convlake-sync:{}", self.schema).as_bytes());
        let mut b = [0u8; 8];
        b.copy_from_slice(&h.as_bytes()[..8]);
        i64::from_le_bytes(b)
    }
}

/// Runs a connection's I/O in the background until it closes.
fn drive<S, T>(connection: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %pg_reason(&e), "PostgreSQL connection closed");
        }
    });
}

fn pg_reason(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(inner) = src {
                s.push_str(": ");
                s.push_str(&inner.to_string());
                src = inner.source();
            }
            s
        }
    }
}

async fn lock(
    client: &tokio_postgres::Transaction<'_>,
    target: &Target,
    wait: bool,
) -> Result<(), SyncError> {
    let key = target.lock_key();
    if wait {
        client
            .execute("SELECT pg_advisory_xact_lock($1)", &[&key])
            .await
            .map_err(target.db_err("waiting for the sync lock"))?;
        return Ok(());
    }
    let row = client
        .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&key])
        .await
        .map_err(target.db_err("taking the sync lock"))?;
    if row.get::<_, bool>(0) {
        Ok(())
    } else {
        Err(SyncError::Busy(target.schema.clone()))
    }
}

/// Applies the migrations not yet applied; returns the names applied now.
pub async fn migrate(
    client: &mut Client,
    target: &Target,
    wait: bool,
) -> Result<Vec<String>, SyncError> {
    let tx = client
        .transaction()
        .await
        .map_err(target.db_err("starting the migration"))?;
    lock(&tx, target, wait).await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS convlake_migrations (
             name TEXT PRIMARY KEY,
             checksum TEXT NOT NULL,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .await
    .map_err(target.db_err("creating convlake_migrations"))?;
    let applied: std::collections::HashMap<String, String> = tx
        .query("SELECT name, checksum FROM convlake_migrations", &[])
        .await
        .map_err(target.db_err("reading convlake_migrations"))?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut done = Vec::new();
    for (name, sql) in MIGRATIONS {
        let checksum = blake3::hash(sql.as_bytes()).to_hex().to_string();
        match applied.get(*name) {
            Some(c) if *c == checksum => continue,
            Some(c) => {
                return Err(SyncError::EditedMigration {
                    file: format!("migrations/{name}"),
                    schema: target.schema.clone(),
                    applied: c.clone(),
                    current: checksum,
                })
            }
            None => {}
        }
        tx.batch_execute(sql)
            .await
            .map_err(target.db_err(&format!("applying migrations/{name}")))?;
        tx.execute(
            "INSERT INTO convlake_migrations (name, checksum) VALUES ($1, $2)",
            &[name, &checksum],
        )
        .await
        .map_err(target.db_err("recording a migration"))?;
        done.push(name.to_string());
    }
    tx.commit()
        .await
        .map_err(target.db_err("committing the migrations"))?;
    Ok(done)
}

/// A table the sync keeps equal to a lake file: its columns (in the file's order) and key.
struct TableSpec {
    table: &'static str,
    columns: &'static [(&'static str, Type)],
    key: usize,
}

const PRODUCT_MENTIONS: TableSpec = TableSpec {
    table: "product_mentions",
    columns: &[
        ("recorded_date", Type::DATE),
        ("interaction_type", Type::TEXT),
        ("product_name", Type::TEXT),
        ("mention_count", Type::INT8),
        ("conversation_count", Type::INT8),
        ("dictionary_version", Type::TEXT),
    ],
    key: 3,
};

const CONVERSATION_MENTIONS: TableSpec = TableSpec {
    table: "conversation_mentions",
    columns: &[
        ("conversation_id", Type::TEXT),
        ("conversation_date", Type::DATE),
        ("interaction_type", Type::TEXT),
        ("participant", Type::TEXT),
        ("product", Type::TEXT),
        ("mentions", Type::INT8),
        ("dictionary_version", Type::TEXT),
    ],
    key: 0,
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

    fn staging(&self) -> String {
        format!("incoming_{}", self.table)
    }

    fn create_staging(&self) -> String {
        let cols = self
            .columns
            .iter()
            .map(|(c, t)| {
                let ty = match *t {
                    Type::DATE => "DATE",
                    Type::INT8 => "BIGINT",
                    _ => "TEXT",
                };
                format!("{c} {ty} NOT NULL")
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
        }
    }

    fn accepts(ty: &Type) -> bool {
        <chrono::NaiveDate as ToSql>::accepts(ty)
            || <&str as ToSql>::accepts(ty)
            || <i64 as ToSql>::accepts(ty)
    }

    tokio_postgres::types::to_sql_checked!();
}

/// The earliest day PostgreSQL's `date` holds, 4714-11-24 BC, in days from 1970-01-01 (its
/// latest, in 5874897 AD, is beyond what chrono holds, which is checked anyway).
const PG_MIN_DAY: i32 = -2_440_588;

/// Column `name` (PostgreSQL type `ty`) of row `row` as it goes into COPY, or why it cannot:
/// every value arrives unchanged or the row is refused.
fn cell<'a>(col: &'a dyn Array, name: &str, ty: &Type, row: usize) -> Result<Cell<'a>, String> {
    if col.is_null(row) {
        return Err(format!("{name} is null"));
    }
    let any = col.as_any();
    let unexpected = || {
        format!(
            "{name} has Arrow type {}, expected {}",
            col.data_type(),
            match *ty {
                Type::DATE => "Date32",
                Type::INT8 => "Int64",
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
            if v < 0 {
                return Err(format!("{name} is {v}, and a count cannot be negative"));
            }
            Ok(Cell::Int(v))
        }
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
fn count(v: i64, what: &str) -> Result<u64, SyncError> {
    u64::try_from(v).map_err(|_| SyncError::Input(format!("{what} is {v}, below zero")))
}

/// A row count on its way into sync_state (BIGINT).
fn bigint(v: u64, what: &str) -> Result<i64, SyncError> {
    i64::try_from(v).map_err(|_| SyncError::Input(format!("{what} ({v}) does not fit in BIGINT")))
}

/// What `merge_table` did to one table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Merged {
    /// Rows in the table before, and after (= rows loaded).
    before: u64,
    rows: u64,
    inserted: u64,
    updated: u64,
    deleted: u64,
}

/// Loads one lake file (`path`, for messages) into the staging table and merges it.
async fn merge_table(
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
        let b = b?;
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
                .map(|(i, (name, ty))| cell(b.column(i).as_ref(), name, ty, r))
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
async fn month_partitions(
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
                schema = target.schema
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
    /// blake3 over both files.
    pub content_hash: String,
}

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
        let both = generation.read_both(lake).await?;
        Ok(Aggregates {
            counts_path: generation.mention_counts.clone(),
            mention_counts: both.mention_counts,
            detail_path: generation.conversation_mentions.clone(),
            conversation_mentions: both.conversation_mentions,
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
            "SELECT dictionary_version, content_hash, row_count, conversation_rows
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
    tx.execute(
        "INSERT INTO sync_state
             (dictionary_version, content_hash, row_count, inserted, updated, deleted, conversation_rows)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &dictionary_version,
            &content_hash,
            &bigint(counts.rows, "row_count")?,
            &bigint(counts.inserted, "inserted")?,
            &bigint(counts.updated, "updated")?,
            &bigint(counts.deleted, "deleted")?,
            &bigint(details.rows, "conversation_rows")?,
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_hide_the_password() {
        let t = Target::new(
            Secret::new("postgres://alice:s3cret@db.example:6543/analytics"),
            "convlake",
        )
        .unwrap();
        let d = format!("{} {:?}", t.describe(), t);
        assert!(!d.contains("s3cret"), "{d}");
        assert!(d.contains("alice@db.example:6543/analytics"), "{d}");
        assert_eq!(t.database(), "db.example:6543/analytics");
    }

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

    #[test]
    fn cells_refuse_what_postgres_cannot_hold_unchanged() {
        let ints = Int64Array::from(vec![Some(i64::MAX), Some(-1), None]);
        assert!(matches!(
            cell(&ints, "mentions", &Type::INT8, 0),
            Ok(Cell::Int(i64::MAX))
        ));
        assert!(cell(&ints, "mentions", &Type::INT8, 1)
            .unwrap_err()
            .contains("negative"));
        assert!(cell(&ints, "mentions", &Type::INT8, 2)
            .unwrap_err()
            .contains("mentions is null"));
        let texts = StringArray::from(vec![Some("ok"), Some("a\0b"), None]);
        assert!(matches!(
            cell(&texts, "product", &Type::TEXT, 0),
            Ok(Cell::Text("ok"))
        ));
        assert!(cell(&texts, "product", &Type::TEXT, 1)
            .unwrap_err()
            .contains("NUL"));
        assert!(cell(&texts, "product", &Type::TEXT, 2)
            .unwrap_err()
            .contains("null"));
        // 4714-11-24 BC is PostgreSQL's first day; chrono holds the day before, PostgreSQL not.
        let days = Date32Array::from(vec![-2_440_588, -2_440_589]);
        assert!(cell(&days, "d", &Type::DATE, 0).is_ok());
        assert!(cell(&days, "d", &Type::DATE, 1)
            .unwrap_err()
            .contains("outside the dates PostgreSQL holds"));
        assert!(cell(&days, "d", &Type::INT8, 0)
            .unwrap_err()
            .contains("expected Int64"));
    }

    #[test]
    fn tls_settings_are_split_off() {
        let (u, tls, root) =
            split_tls("postgres://u:p@h:5/db?sslmode=verify-full&sslrootcert=/ca.pem");
        assert_eq!(u, "postgres://u:p@h:5/db?sslmode=require");
        assert!(tls);
        assert_eq!(root.as_deref(), Some(std::path::Path::new("/ca.pem")));
        let (u, tls, root) = split_tls("postgres://u@h/db");
        assert_eq!(u, "postgres://u@h/db");
        assert!(!tls && root.is_none());
        let (u, tls, _) = split_tls("host=h user=u sslmode=require sslrootcert=/x");
        assert_eq!(u, "host=h user=u sslmode=require");
        assert!(tls);
    }

    #[test]
    fn schema_names_are_checked() {
        let url = || Secret::new("postgres://u@h/d");
        assert!(Target::new(url(), "public").is_ok());
        assert!(Target::new(url(), "t_01").is_ok());
        assert!(matches!(
            Target::new(url(), "a;drop"),
            Err(SyncError::BadSchema(_))
        ));
        assert!(matches!(
            Target::new(url(), ""),
            Err(SyncError::BadSchema(_))
        ));
    }

    #[test]
    fn migrations_are_numbered_in_order() {
        let names: Vec<_> = MIGRATIONS.iter().map(|(n, _)| *n).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        for (i, n) in names.iter().enumerate() {
            assert!(n.starts_with(&format!("{:04}_", i + 1)), "{n}");
        }
    }
}
