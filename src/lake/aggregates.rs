//! The aggregates' generations: the files one `aggregate` run writes (`mention_counts`,
//! `conversation_mentions`, and since #20 `conversation_topics`, `product_topics`, `co_mentions`
//! and `product_insights`) are named by the blake3 of their bytes and published together by the
//! `Aggregated` event that names every hash.
//!
//! Invariants:
//! - a file of a generation is never rewritten (its name is its content), so a run killed at
//!   any point leaves the previous generation whole and in force;
//! - readers use the generation the latest `Aggregated` event of a dictionary version names,
//!   and check its hashes before they use a byte of it.

use std::collections::BTreeMap;

use arrow::array::{Array, Date32Array, Int64Array, StringArray};
use bytes::Bytes;

pub use super::events::TableFile;
use super::events::{Event, EventKind};
use super::{content_hash, schema, Lake, LakeError};

/// The tables of a generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    MentionCounts,
    ConversationMentions,
    ConversationTopics,
    ProductTopics,
    CoMentions,
    ProductInsights,
}

impl Table {
    /// Every table, in the order a generation's hash covers them.
    pub const ALL: [Table; 6] = [
        Table::MentionCounts,
        Table::ConversationMentions,
        Table::ConversationTopics,
        Table::ProductTopics,
        Table::CoMentions,
        Table::ProductInsights,
    ];

    /// The tables added after the first two: an older generation has none of them (readers
    /// see them empty), and the `aggregated` event names them in `tables`.
    pub const ADDED: [Table; 4] = [
        Table::ConversationTopics,
        Table::ProductTopics,
        Table::CoMentions,
        Table::ProductInsights,
    ];

    /// The table's name, as in `convlake query` and the lake's folders.
    pub fn name(self) -> &'static str {
        match self {
            Table::MentionCounts => "mention_counts",
            Table::ConversationMentions => "conversation_mentions",
            Table::ConversationTopics => "conversation_topics",
            Table::ProductTopics => "product_topics",
            Table::CoMentions => "co_mentions",
            Table::ProductInsights => "product_insights",
        }
    }

    /// The table's columns.
    pub fn schema(self) -> arrow::datatypes::SchemaRef {
        match self {
            Table::MentionCounts => schema::mention_counts_schema(),
            Table::ConversationMentions => schema::conversation_mentions_schema(),
            Table::ConversationTopics => schema::conversation_topics_schema(),
            Table::ProductTopics => schema::product_topics_schema(),
            Table::CoMentions => schema::co_mentions_schema(),
            Table::ProductInsights => schema::product_insights_schema(),
        }
    }
}

/// The lake path of a generation's file: `aggregates/dict=<v>/<table>/<blake3>.parquet`.
pub fn generation_file(dictionary_version: &str, table: Table, hash: &str) -> String {
    format!(
        "aggregates/dict={dictionary_version}/{}/{hash}.parquet",
        table.name()
    )
}

/// Where lakes written before generations kept a version's aggregates (one file per table,
/// rewritten by every run).
pub fn legacy_file(dictionary_version: &str, table: Table) -> String {
    format!(
        "aggregates/dict={dictionary_version}/{}.parquet",
        table.name()
    )
}

/// The hash of a generation of the first two tables only (generations written before the
/// others): both files' hashes, in order.
pub fn generation_hash(mention_counts: &[u8], conversation_mentions: &[u8]) -> String {
    generation_hash_of(
        &content_hash(mention_counts),
        &content_hash(conversation_mentions),
        &BTreeMap::new(),
    )
}

/// The hash of a generation from its files' hashes: the first two tables' hashes, in order,
/// then each added table's name and hash, in [`Table::ALL`] order (none: the hash of the pair,
/// as before the added tables).
pub fn generation_hash_of(
    mention_counts: &str,
    conversation_mentions: &str,
    added: &BTreeMap<Table, TableFile>,
) -> String {
    let raw = |hex: &str| {
        blake3::Hash::from_hex(hex)
            .map(|h| *h.as_bytes())
            .unwrap_or_else(|_| *blake3::hash(hex.as_bytes()).as_bytes())
    };
    let mut h = blake3::Hasher::new();
    h.update(&raw(mention_counts));
    h.update(&raw(conversation_mentions));
    for (table, file) in added {
        h.update(table.name().as_bytes());
        h.update(&raw(&file.hash));
    }
    h.finalize().to_hex().to_string()
}

/// One published generation of a dictionary version's aggregates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Generation {
    pub dictionary_version: String,
    /// The generation's hash (`Aggregated.content_hash`).
    pub content_hash: String,
    pub rows: u64,
    pub mention_counts: String,
    /// `None` for a legacy generation (checked through `content_hash` instead).
    pub mention_counts_hash: Option<String>,
    pub conversation_mentions: String,
    pub conversation_mentions_hash: Option<String>,
    /// The added tables' files (none in generations written before them).
    pub added: BTreeMap<Table, TableFile>,
    /// The segment of the event that published it.
    pub seq: u64,
}

/// The bytes of a generation, checked against its event.
#[derive(Clone, Debug)]
pub struct GenerationBytes {
    pub mention_counts: Bytes,
    pub conversation_mentions: Bytes,
    /// The added tables the generation has.
    pub added: BTreeMap<Table, Bytes>,
}

impl Generation {
    /// The path of one of its files; `None` for an added table this generation does not have.
    pub fn path(&self, table: Table) -> Option<&str> {
        match table {
            Table::MentionCounts => Some(&self.mention_counts),
            Table::ConversationMentions => Some(&self.conversation_mentions),
            t => self.added.get(&t).map(|f| f.path.as_str()),
        }
    }

    fn hash(&self, table: Table) -> Option<&str> {
        match table {
            Table::MentionCounts => self.mention_counts_hash.as_deref(),
            Table::ConversationMentions => self.conversation_mentions_hash.as_deref(),
            t => self.added.get(&t).map(|f| f.hash.as_str()),
        }
    }

    fn damaged(&self, table: Table, reason: String) -> LakeError {
        LakeError::Generation {
            path: self.path(table).map(str::to_string).unwrap_or_else(|| {
                format!(
                    "aggregates/dict={}/{}",
                    self.dictionary_version,
                    table.name()
                )
            }),
            version: self.dictionary_version.clone(),
            reason,
        }
    }

    /// Reads one file and checks it against the hash the event names; `None` for an added
    /// table this generation does not have.
    pub async fn read_table(&self, lake: &Lake, table: Table) -> Result<Option<Bytes>, LakeError> {
        let Some(path) = self.path(table) else {
            return Ok(None);
        };
        if !lake.exists(path).await? {
            return Err(self.damaged(table, "the file is missing".into()));
        }
        let bytes = lake.get(path).await?;
        if let Some(want) = self.hash(table) {
            let got = content_hash(&bytes);
            if got != want {
                return Err(self.damaged(
                    table,
                    format!("its blake3 is {got}, but the aggregated event names {want}"),
                ));
            }
        }
        Ok(Some(bytes))
    }

    /// Reads one file of the first two tables (which every generation has) and checks it.
    pub async fn read(&self, lake: &Lake, table: Table) -> Result<Bytes, LakeError> {
        self.read_table(lake, table)
            .await?
            .ok_or_else(|| self.damaged(table, "the generation has no such table".into()))
    }

    /// Reads every file and checks them (a legacy generation is checked as a pair).
    pub async fn read_both(&self, lake: &Lake) -> Result<GenerationBytes, LakeError> {
        let mention_counts = self.read(lake, Table::MentionCounts).await?;
        let conversation_mentions = self.read(lake, Table::ConversationMentions).await?;
        let mut added = BTreeMap::new();
        for table in Table::ADDED {
            if let Some(bytes) = self.read_table(lake, table).await? {
                added.insert(table, bytes);
            }
        }
        let pair = generation_hash_of(
            &content_hash(&mention_counts),
            &content_hash(&conversation_mentions),
            &self.added,
        );
        if pair != self.content_hash {
            return Err(self.damaged(
                Table::MentionCounts,
                format!(
                    "its files hash to {pair}, but the aggregated event names {} (a run of an older convlake was killed between the two files)",
                    self.content_hash
                ),
            ));
        }
        Ok(GenerationBytes {
            mention_counts,
            conversation_mentions,
            added,
        })
    }
}

/// The generation in force for a dictionary version: the one its latest `Aggregated` event
/// names, or `None` when it was never aggregated.
pub fn current_generation(events: &[Event], dictionary_version: &str) -> Option<Generation> {
    events.iter().rev().find_map(|e| match &e.kind {
        EventKind::Aggregated {
            dictionary_version: v,
            rows,
            content_hash,
            mention_counts,
            mention_counts_hash,
            conversation_mentions,
            conversation_mentions_hash,
            tables,
        } if v == dictionary_version => Some(Generation {
            dictionary_version: v.clone(),
            content_hash: content_hash.clone(),
            rows: *rows,
            mention_counts: mention_counts
                .clone()
                .unwrap_or_else(|| legacy_file(v, Table::MentionCounts)),
            mention_counts_hash: mention_counts_hash.clone(),
            conversation_mentions: conversation_mentions
                .clone()
                .unwrap_or_else(|| legacy_file(v, Table::ConversationMentions)),
            conversation_mentions_hash: conversation_mentions_hash.clone(),
            added: Table::ADDED
                .into_iter()
                .filter_map(|t| Some((t, tables.get(t.name())?.clone())))
                .collect(),
            seq: e.seq,
        }),
        _ => None,
    })
}

/// Stores one file of a generation under its content name (once: the same bytes are the same
/// file) and returns its path and hash. Nothing reads it until [`publish`] records it.
pub async fn store_file(
    lake: &Lake,
    dictionary_version: &str,
    table: Table,
    bytes: Bytes,
) -> Result<(String, String), LakeError> {
    let hash = content_hash(&bytes);
    let path = generation_file(dictionary_version, table, &hash);
    lake.put_if_absent(&path, bytes).await?;
    Ok((path, hash))
}

/// What [`publish`] needs: the stored files.
pub struct Stored {
    pub mention_counts: (String, String),
    pub conversation_mentions: (String, String),
    pub added: BTreeMap<Table, TableFile>,
    pub rows: u64,
    /// The generation hash (see [`generation_hash_of`]).
    pub content_hash: String,
}

/// Publishes a generation whose files are stored: one `Aggregated` event names them all.
pub async fn publish(
    lake: &Lake,
    dictionary_version: &str,
    stored: Stored,
) -> Result<u64, LakeError> {
    lake.events()
        .append(vec![EventKind::Aggregated {
            dictionary_version: dictionary_version.to_string(),
            rows: stored.rows,
            content_hash: stored.content_hash,
            mention_counts: Some(stored.mention_counts.0),
            mention_counts_hash: Some(stored.mention_counts.1),
            conversation_mentions: Some(stored.conversation_mentions.0),
            conversation_mentions_hash: Some(stored.conversation_mentions.1),
            tables: stored
                .added
                .into_iter()
                .map(|(t, f)| (t.name().to_string(), f))
                .collect(),
        }])
        .await
}

/// Stores and publishes a generation of the first two tables from their bytes (for benchmarks
/// and tests that write aggregates directly).
pub async fn store_and_publish(
    lake: &Lake,
    dictionary_version: &str,
    mention_counts: Bytes,
    conversation_mentions: Bytes,
    rows: u64,
) -> Result<Generation, LakeError> {
    let content_hash = generation_hash(&mention_counts, &conversation_mentions);
    let detail = store_file(
        lake,
        dictionary_version,
        Table::ConversationMentions,
        conversation_mentions,
    )
    .await?;
    let counts = store_file(
        lake,
        dictionary_version,
        Table::MentionCounts,
        mention_counts,
    )
    .await?;
    let stored = Stored {
        mention_counts: counts,
        conversation_mentions: detail,
        added: BTreeMap::new(),
        rows,
        content_hash,
    };
    publish(lake, dictionary_version, stored).await?;
    let events = lake.events().read_all().await?;
    current_generation(&events, dictionary_version).ok_or_else(|| LakeError::Generation {
        path: format!("aggregates/dict={dictionary_version}"),
        version: dictionary_version.to_string(),
        reason: "the aggregated event just written is not in the log".into(),
    })
}

/// The generation of a version's aggregates in force, from the lake's log.
pub async fn generation_of(
    lake: &Lake,
    dictionary_version: &str,
) -> Result<Option<Generation>, LakeError> {
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
    /// Mentions by the sign of their sentiment (0 in files written before the columns).
    pub positive: i64,
    pub negative: i64,
    pub neutral: i64,
    /// The sum of the scored mentions' scores in thousandths (exact: the scores are rounded
    /// to thousandths; 0 when none is scored, and in older files).
    pub sentiment_milli: i64,
}

/// `mention_counts` as read back, with the blake3 of its file (what the dashboard payload and
/// the report name; not the [`generation_hash`] of the pair, which the `aggregated` and `synced`
/// events record).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MentionCounts {
    pub rows: Vec<CountRow>,
    pub file_hash: String,
}

/// Reads the `mention_counts` of one dictionary version; `None` when `aggregate` has not run
/// for it.
pub async fn read_mention_counts(
    lake: &Lake,
    dictionary_version: &str,
) -> Result<Option<MentionCounts>, LakeError> {
    let Some(generation) = generation_of(lake, dictionary_version).await? else {
        return Ok(None);
    };
    let path = generation.mention_counts.clone();
    let bytes = generation.read(lake, Table::MentionCounts).await?;
    let hash = content_hash(&bytes);
    Ok(Some(MentionCounts {
        rows: count_rows(&path, bytes)?,
        file_hash: hash,
    }))
}

/// The rows of a `mention_counts` file (`path` names it in messages).
pub fn count_rows(path: &str, bytes: Bytes) -> Result<Vec<CountRow>, LakeError> {
    let path = path.to_string();
    let batches = schema::from_parquet(bytes).map_err(|reason| LakeError::Parquet {
        path: path.clone(),
        reason,
    })?;
    let mut out = Vec::new();
    let epoch = chrono::NaiveDate::default();
    for b in &batches {
        let shape = || LakeError::Shape(format!("{path} has unexpected columns"));
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
        // Added columns: absent from files written before them.
        let added = |name: &str| {
            b.column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
        };
        let (positive, negative, neutral) =
            (added("positive"), added("negative"), added("neutral"));
        let mean = b
            .column_by_name("sentiment_mean")
            .and_then(|c| c.as_any().downcast_ref::<arrow::array::Float64Array>());
        let at = |c: Option<&Int64Array>, i: usize| {
            c.filter(|c| !c.is_null(i)).map_or(0, |c| c.value(i))
        };
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
                LakeError::Shape(format!(
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
                positive: at(positive, i),
                negative: at(negative, i),
                neutral: at(neutral, i),
                // The mean times the scored mentions, back to the integer sum it came from.
                sentiment_milli: mean.filter(|c| !c.is_null(i)).map_or(0, |c| {
                    let scored = at(positive, i) + at(negative, i) + at(neutral, i);
                    (c.value(i) * scored as f64 * 1000.0).round() as i64
                }),
            });
        }
    }
    Ok(out)
}
