//! The sync stage: make PostgreSQL's `product_mentions` equal the lake's `mention_counts`.
//!
//! Invariants: migrations (embedded from `migrations/`) are applied in order, each in a
//! transaction, recorded with their checksum; the sync loads the aggregates with binary COPY into
//! a temporary table and merges them (insert new, update changed, delete vanished) in one
//! transaction under an advisory lock, so readers never see a half-synced table, two syncs never
//! interleave, and a second sync of the same state changes no row.

use std::fmt;

use futures::pin_mut;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Config, NoTls};

use crate::aggregate::CountRow;
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
}

/// Where to sync: a connection string (a secret: it may hold a password) and a schema.
#[derive(Clone)]
pub struct Target {
    url: Secret,
    config: Config,
    schema: String,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Target({})", self.describe())
    }
}

impl Target {
    /// Parses a connection string (URL or key=value form) and checks the schema name.
    pub fn new(url: Secret, schema: &str) -> Result<Target, SyncError> {
        let config: Config = url
            .expose()
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
        })
    }

    /// `user@host:port/db (schema s)`, never the password.
    pub fn describe(&self) -> String {
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
            "{}@{}:{}/{} (schema {})",
            self.config.get_user().unwrap_or("?"),
            host,
            port,
            self.config.get_dbname().unwrap_or("?"),
            self.schema
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
        let (client, connection) =
            self.config
                .connect(NoTls)
                .await
                .map_err(|e| SyncError::Connect {
                    target: self.describe(),
                    reason: pg_reason(&e),
                })?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %pg_reason(&e), "PostgreSQL connection closed");
            }
        });
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

/// What a sync did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncSummary {
    pub rows: u64,
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
    /// True when the database already held exactly this state.
    pub unchanged: bool,
}

/// Makes `product_mentions` equal `rows` in one transaction.
pub async fn sync(
    target: &Target,
    rows: &[CountRow],
    dictionary_version: &str,
    content_hash: &str,
    wait: bool,
) -> Result<SyncSummary, SyncError> {
    let mut client = target.connect().await?;
    migrate(&mut client, target, wait).await?;
    let tx = client
        .transaction()
        .await
        .map_err(target.db_err("starting the sync"))?;
    lock(&tx, target, wait).await?;
    let last = tx
        .query_opt(
            "SELECT dictionary_version, content_hash FROM sync_state ORDER BY id DESC LIMIT 1",
            &[],
        )
        .await
        .map_err(target.db_err("reading sync_state"))?;
    if let Some(r) = last {
        if r.get::<_, String>(0) == dictionary_version && r.get::<_, String>(1) == content_hash {
            tx.rollback().await.map_err(target.db_err("finishing"))?;
            return Ok(SyncSummary {
                rows: rows.len() as u64,
                unchanged: true,
                ..Default::default()
            });
        }
    }
    tx.batch_execute(
        "CREATE TEMP TABLE incoming (
             recorded_date DATE NOT NULL,
             interaction_type TEXT NOT NULL,
             product_name TEXT NOT NULL,
             mention_count INTEGER NOT NULL,
             conversation_count INTEGER NOT NULL,
             dictionary_version TEXT NOT NULL) ON COMMIT DROP",
    )
    .await
    .map_err(target.db_err("creating the staging table"))?;
    let sink = tx
        .copy_in("COPY incoming FROM STDIN (FORMAT binary)")
        .await
        .map_err(target.db_err("starting COPY"))?;
    let writer = BinaryCopyInWriter::new(
        sink,
        &[
            Type::DATE,
            Type::TEXT,
            Type::TEXT,
            Type::INT4,
            Type::INT4,
            Type::TEXT,
        ],
    );
    pin_mut!(writer);
    for r in rows {
        let mentions = i32::try_from(r.mentions).unwrap_or(i32::MAX);
        let convs = i32::try_from(r.conversations).unwrap_or(i32::MAX);
        let values: [&(dyn ToSql + Sync); 6] = [
            &r.conversation_date,
            &r.interaction_type,
            &r.product,
            &mentions,
            &convs,
            &dictionary_version,
        ];
        writer
            .as_mut()
            .write(&values)
            .await
            .map_err(target.db_err("copying rows"))?;
    }
    writer
        .finish()
        .await
        .map_err(target.db_err("finishing COPY"))?;
    let counts = tx
        .query_one(
            "WITH upserted AS (
                 INSERT INTO product_mentions AS t
                     (recorded_date, interaction_type, product_name, mention_count,
                      conversation_count, dictionary_version, synced_at)
                 SELECT recorded_date, interaction_type, product_name, mention_count,
                        conversation_count, dictionary_version, now()
                 FROM incoming
                 ON CONFLICT (recorded_date, interaction_type, product_name) DO UPDATE
                 SET mention_count = EXCLUDED.mention_count,
                     conversation_count = EXCLUDED.conversation_count,
                     dictionary_version = EXCLUDED.dictionary_version,
                     synced_at = EXCLUDED.synced_at
                 WHERE (t.mention_count, t.conversation_count, t.dictionary_version)
                       IS DISTINCT FROM
                       (EXCLUDED.mention_count, EXCLUDED.conversation_count, EXCLUDED.dictionary_version)
                 RETURNING (xmax = 0) AS inserted)
             SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted)
             FROM upserted",
            &[],
        )
        .await
        .map_err(target.db_err("merging rows"))?;
    let deleted = tx
        .execute(
            "DELETE FROM product_mentions t
             WHERE NOT EXISTS (
                 SELECT 1 FROM incoming i
                 WHERE i.recorded_date = t.recorded_date
                   AND i.interaction_type = t.interaction_type
                   AND i.product_name = t.product_name)",
            &[],
        )
        .await
        .map_err(target.db_err("deleting vanished rows"))?;
    let inserted = counts.get::<_, i64>(0) as u64;
    let updated = counts.get::<_, i64>(1) as u64;
    let n = rows.len() as i64;
    tx.execute(
        "INSERT INTO sync_state (dictionary_version, content_hash, row_count, inserted, updated, deleted)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &dictionary_version,
            &content_hash,
            &n,
            &(inserted as i64),
            &(updated as i64),
            &(deleted as i64),
        ],
    )
    .await
    .map_err(target.db_err("recording sync_state"))?;
    tx.commit().await.map_err(target.db_err("committing"))?;
    Ok(SyncSummary {
        rows: rows.len() as u64,
        inserted,
        updated,
        deleted,
        unchanged: false,
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
