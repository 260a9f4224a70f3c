//! The migrations embedded from `migrations/` and the advisory lock on the schema that
//! migrations and syncs take: migrations are applied in order in one transaction under the lock,
//! each recorded with its checksum, and one edited after it was applied is refused.

use tokio_postgres::Client;

use super::{SyncError, Target};

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
    (
        "0007_mention_sentiment.sql",
        include_str!("../../migrations/0007_mention_sentiment.sql"),
    ),
    (
        "0008_topics_co_mentions_insights.sql",
        include_str!("../../migrations/0008_topics_co_mentions_insights.sql"),
    ),
];

pub(super) async fn lock(
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
        Err(SyncError::Busy(target.schema().to_string()))
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
                    schema: target.schema().to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;

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
