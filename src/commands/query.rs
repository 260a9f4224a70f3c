//! `convlake query`: read-only SQL over the lake's tables, the saved queries of `sql/saved/`,
//! and the output formats (an aligned table, CSV, JSON, Parquet).

use std::sync::Arc;

use anyhow::{bail, Context as _, Result};
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::SessionContext;

use crate::config::{Format, QueryConfig};
use crate::extract::Dictionary;
use crate::lake::Lake;

/// A query shipped in `sql/saved/`, runnable with `convlake query --saved NAME`.
pub struct SavedQuery {
    /// File name without `.sql`.
    pub name: &'static str,
    /// The SQL; its first comment line describes it.
    pub sql: &'static str,
}

/// The saved queries, in `--list` order.
pub const SAVED_QUERIES: &[SavedQuery] = &[
    SavedQuery {
        name: "top-products",
        sql: include_str!("../../sql/saved/top-products.sql"),
    },
    SavedQuery {
        name: "daily-by-type",
        sql: include_str!("../../sql/saved/daily-by-type.sql"),
    },
    SavedQuery {
        name: "customer-vs-agent",
        sql: include_str!("../../sql/saved/customer-vs-agent.sql"),
    },
    SavedQuery {
        name: "sentiment-by-product",
        sql: include_str!("../../sql/saved/sentiment-by-product.sql"),
    },
    SavedQuery {
        name: "topics-by-product",
        sql: include_str!("../../sql/saved/topics-by-product.sql"),
    },
    SavedQuery {
        name: "insights",
        sql: include_str!("../../sql/saved/insights.sql"),
    },
];

impl SavedQuery {
    /// The first comment line, without `--`.
    pub fn description(&self) -> &'static str {
        self.sql
            .lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix("--"))
            .map_or("", str::trim)
    }
}

/// Tables a user's SQL can name, in the order `query` lists them after an error.
const USER_TABLES: &[&str] = &["utterances", "mentions", "mention_counts", "events", "raw"];
/// Longest cell in table output, in characters; longer text ends in "…".
const MAX_CELL: usize = 60;

/// `convlake query`.
pub async fn query(lake: &Lake, dict: &Dictionary, args: &QueryConfig) -> Result<()> {
    if args.list {
        let width = SAVED_QUERIES
            .iter()
            .map(|q| q.name.len())
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for q in SAVED_QUERIES {
            out.push_str(&format!("{:<width$}  {}\n", q.name, q.description()));
        }
        out.push_str("\nrun one with: convlake query --saved NAME\n");
        return emit(args, out.as_bytes());
    }
    let sql = match (&args.sql, &args.file, &args.saved) {
        (_, Some(f), _) => {
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?
        }
        (_, _, Some(name)) => match SAVED_QUERIES.iter().find(|q| q.name == name.as_str()) {
            Some(q) => q.sql.to_string(),
            None => bail!(
                "no saved query {name:?}; saved queries: {} (see convlake query --list)",
                SAVED_QUERIES
                    .iter()
                    .map(|q| q.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
        (Some(s), None, None) => s.clone(),
        (None, None, None) => bail!("give a SQL string, --file FILE or --saved NAME"),
    };
    if args.format == Format::Parquet && args.output.is_none() {
        bail!("--format parquet writes a binary file: add --output FILE");
    }
    let ctx = crate::lake::tables::session(lake, &dict.version).await?;
    let (schema, batches) = match run_sql(&ctx, &sql).await {
        Ok(r) => r,
        // A refusal is not a mistake in the SQL: the table list would not help.
        Err(e) if e.starts_with("refused:") => bail!("{e}"),
        Err(e) => bail!("{}\n\n{}", e, describe_tables(&ctx).await),
    };
    let mut out: Vec<u8> = Vec::new();
    match args.format {
        Format::Table => out.extend(format_table(&schema, &batches)?.bytes()),
        Format::Csv => {
            let mut w = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut out);
            // An empty batch still writes the header line.
            w.write(&RecordBatch::new_empty(schema.clone()))?;
            for b in &batches {
                w.write(b)?;
            }
        }
        Format::Json => {
            let mut w = arrow::json::ArrayWriter::new(&mut out);
            for b in &batches {
                w.write(b)?;
            }
            w.finish()?;
            if batches.iter().all(|b| b.num_rows() == 0) {
                out = b"[]".to_vec();
            }
            out.push(b'\n');
        }
        Format::Parquet => {
            let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, schema.clone(), None)?;
            for b in &batches {
                w.write(b)?;
            }
            w.close()?;
        }
    }
    emit(args, &out)
}

fn emit(args: &QueryConfig, out: &[u8]) -> Result<()> {
    match &args.output {
        Some(p) => std::fs::write(p, out).with_context(|| format!("writing {}", p.display()))?,
        None => {
            use std::io::Write;
            std::io::stdout().write_all(out)?;
        }
    }
    Ok(())
}

/// What `query` may run: queries only (`SELECT`, `WITH`, `VALUES`, `EXPLAIN`, `DESCRIBE`).
/// DDL (`CREATE [EXTERNAL] TABLE`, `DROP`), DML (`INSERT`, `COPY … TO`) and
/// statements (`SET`, transactions, `PREPARE`) are refused: they would write files anywhere the
/// user can, open any file as a table, or change the session, and a saved query from a
/// colleague must not be able to do that. The lake's tables are written by convlake's stages.
fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// Runs one statement, read-only ([`read_only`]); the error is DataFusion's message, prefixed
/// with what failed, or why a statement that is not a query was refused.
async fn run_sql(ctx: &SessionContext, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>), String> {
    let message = |e: datafusion::error::DataFusionError| format!("query failed: {e}");
    // What `SessionContext::sql_with_options` does, in two steps so that a refusal gets its
    // own message: planning has no side effects; only executing the plan would.
    let plan = ctx
        .state()
        .create_logical_plan(sql)
        .await
        .map_err(message)?;
    if let Err(e) = read_only().verify_plan(&plan) {
        return Err(format!(
            "refused: convlake query is read-only ({}). It runs queries (SELECT, WITH, VALUES, EXPLAIN, DESCRIBE) over the lake's tables; it does not create, change or drop tables, write files (COPY … TO) or change settings (SET), because the lake's tables are convlake's, written only by its stages (fetch, extract, aggregate). To save a result, add --output FILE (with --format csv, json or parquet)",
            e.strip_backtrace()
        ));
    }
    let df = ctx.execute_logical_plan(plan).await.map_err(message)?;
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await.map_err(message)?;
    Ok((schema, batches))
}

/// "available tables:" and each table with its columns, for error messages.
async fn describe_tables(ctx: &SessionContext) -> String {
    let mut out = String::from("available tables:");
    for name in USER_TABLES {
        if let Ok(table) = ctx.table_provider(*name).await {
            let columns: Vec<String> = table
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
            out.push_str(&format!("\n  {name}: {}", columns.join(", ")));
        }
    }
    out
}

/// An aligned text table (numbers right-aligned, text cut at `MAX_CELL` characters, line
/// breaks shown as spaces) followed by the row count.
fn format_table(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<String> {
    let headers: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let numeric: Vec<bool> = schema
        .fields()
        .iter()
        .map(|f| f.data_type().is_numeric())
        .collect();
    let options = FormatOptions::default().with_null("NULL");
    let mut rows: Vec<Vec<String>> = Vec::new();
    for b in batches {
        let formatters = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()?;
        for i in 0..b.num_rows() {
            rows.push(
                formatters
                    .iter()
                    .map(|f| cell(&f.value(i).to_string()))
                    .collect(),
            );
        }
    }
    let len = |s: &str| s.chars().count();
    let widths: Vec<usize> = headers
        .iter()
        .enumerate()
        .map(|(c, h)| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |s| len(s)))
                .chain(std::iter::once(len(h)))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let pad = |s: &str, c: usize, right: bool| {
        let fill = " ".repeat(widths[c].saturating_sub(len(s)));
        if right {
            format!("{fill}{s}")
        } else {
            format!("{s}{fill}")
        }
    };
    let mut out = String::new();
    let line = |cells: Vec<String>| cells.join(" | ").trim_end().to_string() + "\n";
    out.push_str(&line(
        headers
            .iter()
            .enumerate()
            .map(|(c, h)| pad(h, c, numeric[c]))
            .collect(),
    ));
    out.push_str(
        &(widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("-+-")
            + "\n"),
    );
    for r in &rows {
        out.push_str(&line(
            r.iter()
                .enumerate()
                .map(|(c, v)| pad(v, c, numeric[c]))
                .collect(),
        ));
    }
    let n = rows.len();
    out.push_str(&format!("({n} row{})\n", if n == 1 { "" } else { "s" }));
    Ok(out)
}

/// One table cell: control characters as spaces, at most `MAX_CELL` characters.
fn cell(value: &str) -> String {
    let flat: String = value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() <= MAX_CELL {
        flat
    } else {
        flat.chars().take(MAX_CELL - 1).collect::<String>() + "…"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    #[test]
    fn tables_align_numbers_right_and_cut_long_text() {
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("product", DataType::Utf8, true),
            Field::new("mentions", DataType::Int64, true),
        ]));
        let long = "a very long transcript line\nwith a break ".repeat(5);
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec![
                    Some("Acme Router"),
                    Some(long.as_str()),
                    None,
                ])),
                Arc::new(Int64Array::from(vec![Some(7), Some(1234), None])),
            ],
        )
        .unwrap();
        let t = format_table(&schema, &[batch]).unwrap();
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[0].starts_with("product") && lines[0].ends_with("| mentions"),
            "{t}"
        );
        assert!(lines[1].contains("-+-"));
        assert!(lines[2].ends_with("|        7"), "{t}");
        assert!(lines[3].contains('…') && !lines[3].contains("\n"));
        assert_eq!(
            lines[3].split(" | ").next().unwrap().chars().count(),
            MAX_CELL
        );
        assert!(lines[4].contains("NULL"));
        assert_eq!(lines[5], "(3 rows)");
        let empty = format_table(&schema, &[]).unwrap();
        assert!(empty.ends_with("(0 rows)\n"));
    }

    #[test]
    fn saved_queries_have_descriptions() {
        for q in SAVED_QUERIES {
            assert!(
                !q.description().is_empty(),
                "{} needs a first comment line",
                q.name
            );
        }
        let names: Vec<_> = SAVED_QUERIES.iter().map(|q| q.name).collect();
        assert_eq!(
            names,
            [
                "top-products",
                "daily-by-type",
                "customer-vs-agent",
                "sentiment-by-product",
                "topics-by-product",
                "insights"
            ]
        );
    }
}
