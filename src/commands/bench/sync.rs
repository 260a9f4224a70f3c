//! `bench sync`: aggregate rows into PostgreSQL (first sync, no-change re-sync, a 10% change)
//! against the tutorial's multi-row INSERT.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use arrow::array::{Date32Array, Int64Array, RecordBatch, StringArray};
use serde_json::json;

use crate::config::SyncBenchConfig;
use crate::lake::{schema, Lake};
use crate::secret::Secret;
use crate::sync::{self, Target};

use super::pipeline::tempdir_in;
use super::write_json;

/// Writes `rows` synthetic mention_counts rows (and an empty conversation_mentions) for `version`;
/// `changed_every` > 0 changes every n-th row's counts.
async fn write_aggregates(
    lake: &Lake,
    version: &str,
    rows: usize,
    changed_every: usize,
) -> Result<()> {
    // In the order `aggregate` writes mention_counts.parquet (ORDER BY conversation_date,
    // interaction_type, product), so the bench loads rows as a real sync receives them.
    let types = ["chat", "email", "message", "voice"];
    let products = 250usize;
    let days = rows.div_ceil(types.len() * products);
    let mut date = Vec::with_capacity(rows);
    let mut kind = Vec::with_capacity(rows);
    let mut product = Vec::with_capacity(rows);
    let mut mentions = Vec::with_capacity(rows);
    let mut convs = Vec::with_capacity(rows);
    let names: Vec<String> = (0..products).map(|p| format!("Product {p:03}")).collect();
    'outer: for d in 0..days {
        for t in types {
            for (p, name) in names.iter().enumerate() {
                let i = date.len();
                if i == rows {
                    break 'outer;
                }
                date.push(18_000 + d as i32);
                kind.push(t);
                product.push(name.as_str());
                let bump = i64::from(changed_every > 0 && i % changed_every == 0);
                mentions.push(((i * 7 + p) % 50) as i64 + 1 + bump);
                convs.push(((i * 3 + p) % 20) as i64 + 1);
            }
        }
    }
    let n = date.len();
    let batch = RecordBatch::try_new(
        schema::mention_counts_schema(),
        vec![
            Arc::new(Date32Array::from(date)),
            Arc::new(StringArray::from(kind)),
            Arc::new(StringArray::from(product)),
            Arc::new(Int64Array::from(mentions.clone())),
            Arc::new(Int64Array::from(convs)),
            Arc::new(StringArray::from(vec![version; n])),
            // The sentiment columns: a third of each row's mentions positive, the rest neutral.
            Arc::new(Int64Array::from_iter_values(mentions.iter().map(|m| m / 3))),
            Arc::new(Int64Array::from(vec![0; n])),
            Arc::new(Int64Array::from_iter_values(
                mentions.iter().map(|m| m - m / 3),
            )),
            Arc::new(Int64Array::from(vec![0; n])),
            Arc::new(arrow::array::Float64Array::from_iter_values(
                mentions.iter().map(|m| (m / 3) as f64 / *m as f64),
            )),
        ],
    )?;
    let counts = schema::to_parquet(&schema::mention_counts_schema(), &[batch])
        .map_err(anyhow::Error::msg)?;
    let empty = schema::to_parquet(&schema::conversation_mentions_schema(), &[])
        .map_err(anyhow::Error::msg)?;
    crate::lake::aggregates::store_and_publish(lake, version, counts, empty, n as u64).await?;
    Ok(())
}

pub(super) async fn sync_bench(args: &SyncBenchConfig) -> Result<()> {
    let tmp = tempdir_in(None)?;
    let mut cluster = None;
    let url = match &args.database_url {
        Some(u) => u.expose().to_string(),
        None => {
            let c = crate::pgtmp::TempCluster::start(&tmp.join("pg"))?;
            let u = c.url.expose().to_string();
            cluster = Some(c);
            u
        }
    };
    let lake = Lake::open_local(&tmp.join("lake"))?;
    let schema_name = format!("bench_sync_{}", std::process::id());
    let target = Target::new(Secret::new(url.clone()), &schema_name)?;
    let version = "benchsync0000000";
    let mut results = Vec::new();
    println!("convlake bench sync: {} rows", args.rows);
    println!("{:<34} {:>9} {:>14}", "step", "seconds", "rows/s");
    let mut timed = |label: &str, secs: f64, rows: usize| {
        println!("{:<34} {:>9.3} {:>14.0}", label, secs, rows as f64 / secs);
        results.push(
            json!({"step": label, "seconds": secs, "rows": rows, "rows_per_s": rows as f64 / secs}),
        );
    };
    write_aggregates(&lake, version, args.rows, 0).await?;
    let t = Instant::now();
    let a = sync::Aggregates::read(&lake, version).await?;
    let s = sync::sync(&target, &a, version, true).await?;
    timed(
        "first sync (COPY + merge)",
        t.elapsed().as_secs_f64(),
        s.rows as usize,
    );
    let t = Instant::now();
    let a = sync::Aggregates::read(&lake, version).await?;
    let s2 = sync::sync(&target, &a, version, true).await?;
    let secs = t.elapsed().as_secs_f64();
    if !s2.unchanged {
        bail!("the no-change re-sync changed rows");
    }
    timed("no-change re-sync", secs, args.rows);
    write_aggregates(&lake, version, args.rows, 10).await?;
    let t = Instant::now();
    let a = sync::Aggregates::read(&lake, version).await?;
    let s3 = sync::sync(&target, &a, version, true).await?;
    timed(
        &format!("10% change ({} rows updated)", s3.updated),
        t.elapsed().as_secs_f64(),
        args.rows,
    );

    // The tutorial's way: multi-row INSERT statements (execute_values, 1,000 rows each).
    let client = target.connect().await?;
    client
        // The same table as product_mentions (its primary key and indexes), so both load into
        // the same structure.
        .batch_execute("CREATE TABLE bench_insert (LIKE product_mentions INCLUDING ALL)")
        .await?;
    let rows = crate::lake::aggregates::read_mention_counts(&lake, version)
        .await?
        .context("reading the bench aggregates")?
        .rows;
    let t = Instant::now();
    client.batch_execute("BEGIN").await?;
    for chunk in rows.chunks(1000) {
        let mut sql = String::from(
            "INSERT INTO bench_insert (recorded_date, interaction_type, product_name, mention_count, conversation_count, dictionary_version) VALUES ",
        );
        let mut params: Vec<Box<dyn tokio_postgres::types::ToSql + Sync + Send>> = Vec::new();
        for (i, r) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            let b = i * 6;
            sql.push_str(&format!(
                "(${},${},${},${},${},${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6
            ));
            params.push(Box::new(r.conversation_date));
            params.push(Box::new(r.interaction_type.clone()));
            params.push(Box::new(r.product.clone()));
            // BIGINT columns since migration 0006.
            params.push(Box::new(r.mentions));
            params.push(Box::new(r.conversations));
            params.push(Box::new(version.to_string()));
        }
        let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
            .iter()
            .map(|p| p.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        client.execute(sql.as_str(), &refs).await?;
    }
    client.batch_execute("COMMIT").await?;
    let insert_secs = t.elapsed().as_secs_f64();
    timed("multi-row INSERT (tutorial)", insert_secs, rows.len());
    let first = results[0]["seconds"].as_f64().unwrap_or(1.0);
    println!(
        "first sync is {:.1}x the multi-row INSERT's speed",
        insert_secs / first
    );
    client
        .batch_execute(&format!("DROP SCHEMA \"{schema_name}\" CASCADE"))
        .await?;
    if let Some(mut c) = cluster {
        c.stop();
    }
    let _ = std::fs::remove_dir_all(&tmp);
    write_json(
        &args.json,
        &json!({"bench": "sync", "rows": args.rows, "steps": results,
        "speedup_over_insert": insert_secs / first}),
    )
}
