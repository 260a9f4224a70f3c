//! Arrow schemas of the lake's tables and the one way convlake writes and reads Parquet.
//!
//! Writing is deterministic: the same batches give byte-identical files (fixed writer
//! properties, no timestamps), which is what lets replays be compared by hash.

use std::sync::Arc;

use arrow::array::{Date32Builder, Int32Builder, Int64Builder, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

/// Columns of a raw snapshot file: one row per utterance of every conversation on the page.
/// The `utterances` table is these rows, newest copy of each conversation only.
pub fn raw_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("conversation_id", DataType::Utf8, false),
        Field::new("communication_id", DataType::Utf8, true),
        Field::new("conversation_date", DataType::Date32, false),
        Field::new("interaction_type", DataType::Utf8, false),
        Field::new("participant", DataType::Utf8, false),
        Field::new("utterance_index", DataType::Int32, false),
        Field::new("start_ms", DataType::Int64, true),
        Field::new("text", DataType::Utf8, false),
        Field::new("snapshot", DataType::Utf8, false),
        Field::new("subtype", DataType::Utf8, true),
    ]))
}

/// Columns added to the raw-snapshot schema after lakes were first written: nullable, and
/// absent from older files (readers see NULL there).
pub const RAW_ADDED_COLUMNS: [&str; 1] = ["subtype"];

/// One utterance on its way into a raw snapshot.
pub struct RawRow<'a> {
    pub conversation_id: &'a str,
    pub communication_id: Option<&'a str>,
    pub conversation_date: chrono::NaiveDate,
    pub interaction_type: &'a str,
    pub participant: &'a str,
    pub utterance_index: i32,
    pub start_ms: Option<i64>,
    pub text: &'a str,
    /// What kind of `interaction_type` it is, when Genesys says (`callback` for a voice call
    /// that began as a callback); `None` otherwise.
    pub subtype: Option<&'a str>,
}

/// Builds a batch of the raw-snapshot schema, one utterance at a time; every source uses it.
pub struct RawRowsBuilder {
    conv: StringBuilder,
    comm: StringBuilder,
    date: Date32Builder,
    kind: StringBuilder,
    part: StringBuilder,
    idx: Int32Builder,
    start_ms: Int64Builder,
    text: StringBuilder,
    snap: StringBuilder,
    subtype: StringBuilder,
    snapshot: String,
}

impl RawRowsBuilder {
    /// A builder for the rows of one snapshot.
    pub fn new(snapshot: &str) -> Self {
        RawRowsBuilder {
            conv: StringBuilder::new(),
            comm: StringBuilder::new(),
            date: Date32Builder::new(),
            kind: StringBuilder::new(),
            part: StringBuilder::new(),
            idx: Int32Builder::new(),
            start_ms: Int64Builder::new(),
            text: StringBuilder::new(),
            snap: StringBuilder::new(),
            subtype: StringBuilder::new(),
            snapshot: snapshot.to_string(),
        }
    }

    /// Adds one utterance.
    pub fn push(&mut self, r: RawRow<'_>) {
        self.conv.append_value(r.conversation_id);
        self.comm.append_option(r.communication_id);
        // NaiveDate::default() is 1970-01-01, day 0 of Date32.
        self.date
            .append_value((r.conversation_date - chrono::NaiveDate::default()).num_days() as i32);
        self.kind.append_value(r.interaction_type);
        self.part.append_value(r.participant);
        self.idx.append_value(r.utterance_index);
        self.start_ms.append_option(r.start_ms);
        self.text.append_value(r.text);
        self.snap.append_value(&self.snapshot);
        self.subtype.append_option(r.subtype);
    }

    /// The batch.
    pub fn finish(mut self) -> Result<RecordBatch, String> {
        RecordBatch::try_new(
            raw_schema(),
            vec![
                Arc::new(self.conv.finish()),
                Arc::new(self.comm.finish()),
                Arc::new(self.date.finish()),
                Arc::new(self.kind.finish()),
                Arc::new(self.part.finish()),
                Arc::new(self.idx.finish()),
                Arc::new(self.start_ms.finish()),
                Arc::new(self.text.finish()),
                Arc::new(self.snap.finish()),
                Arc::new(self.subtype.finish()),
            ],
        )
        .map_err(|e| e.to_string())
    }
}

/// Columns of a mentions file (the `mentions` table contract).
pub fn mentions_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("conversation_id", DataType::Utf8, false),
        Field::new("conversation_date", DataType::Date32, false),
        Field::new("interaction_type", DataType::Utf8, false),
        Field::new("participant", DataType::Utf8, false),
        Field::new("utterance_index", DataType::Int32, false),
        Field::new("product", DataType::Utf8, false),
        Field::new("matched_text", DataType::Utf8, false),
        Field::new("start_char", DataType::Int32, false),
        Field::new("end_char", DataType::Int32, false),
        Field::new("dictionary_version", DataType::Utf8, false),
        Field::new("snapshot", DataType::Utf8, false),
        Field::new("sentiment", DataType::Float64, true),
        Field::new("sentiment_source", DataType::Utf8, true),
        Field::new("match_kind", DataType::Utf8, true),
    ]))
}

/// Columns added to the mentions schema after lakes were first written: nullable, and absent
/// from older files (readers see NULL there: unscored).
pub const MENTIONS_ADDED_COLUMNS: [&str; 3] = ["sentiment", "sentiment_source", "match_kind"];

/// Mentions by the sign of their sentiment (nullable: absent from aggregate files written
/// before them) and, last, the column that sums or averages the scores.
fn with_sentiment(mut fields: Vec<Field>, last: Field) -> SchemaRef {
    for name in ["positive", "negative", "neutral", "unscored"] {
        fields.push(Field::new(name, DataType::Int64, true));
    }
    fields.push(last);
    Arc::new(Schema::new(fields))
}

/// The first columns of `mention_counts` and of its parts: the key, the counts, the version.
fn counts_key_and_totals() -> Vec<Field> {
    vec![
        Field::new("conversation_date", DataType::Date32, false),
        Field::new("interaction_type", DataType::Utf8, false),
        Field::new("product", DataType::Utf8, false),
        Field::new("mentions", DataType::Int64, false),
        Field::new("conversations", DataType::Int64, false),
        Field::new("dictionary_version", DataType::Utf8, false),
    ]
}

/// Columns of `mention_counts`.
pub fn mention_counts_schema() -> SchemaRef {
    with_sentiment(
        counts_key_and_totals(),
        Field::new("sentiment_mean", DataType::Float64, true),
    )
}

/// Columns of one chunk's part of `mention_counts` (the local aggregate's intermediate, never
/// stored): its sums, the sentiment as integer thousandths.
pub fn mention_counts_parts_schema() -> SchemaRef {
    with_sentiment(
        counts_key_and_totals(),
        Field::new("sentiment_milli", DataType::Int64, true),
    )
}

/// Columns of `conversation_mentions` (per conversation, speaker and product).
pub fn conversation_mentions_schema() -> SchemaRef {
    with_sentiment(
        vec![
            Field::new("conversation_id", DataType::Utf8, false),
            Field::new("conversation_date", DataType::Date32, false),
            Field::new("interaction_type", DataType::Utf8, false),
            Field::new("participant", DataType::Utf8, false),
            Field::new("product", DataType::Utf8, false),
            Field::new("mentions", DataType::Int64, false),
            Field::new("dictionary_version", DataType::Utf8, false),
        ],
        Field::new("sentiment_milli", DataType::Int64, true),
    )
}

/// The key of a topic detected in an utterance: the first columns of a snapshot's topics file
/// (extract) and of `conversation_topics` (aggregate).
fn topic_fields() -> Vec<Field> {
    vec![
        Field::new("conversation_id", DataType::Utf8, false),
        Field::new("conversation_date", DataType::Date32, false),
        Field::new("interaction_type", DataType::Utf8, false),
        Field::new("participant", DataType::Utf8, false),
        Field::new("utterance_index", DataType::Int32, false),
        Field::new("topic", DataType::Utf8, false),
        // Where the topic's `transcriptPhrase` is in the utterance's text (characters,
        // `[start, end)`); NULL when Genesys gave none or it is not a part of the text.
        Field::new("phrase_start", DataType::Int32, true),
        Field::new("phrase_end", DataType::Int32, true),
    ]
}

/// Columns of a snapshot's topics file (`topics/dict=<version>/<snap>.parquet`): one row per
/// Speech and Text Analytics topic detected in one of its voice utterances.
pub fn topics_schema() -> SchemaRef {
    let mut fields = topic_fields();
    fields.push(Field::new("snapshot", DataType::Utf8, false));
    Arc::new(Schema::new(fields))
}

/// Columns of `conversation_topics`: the topics of the current copy of each conversation.
pub fn conversation_topics_schema() -> SchemaRef {
    Arc::new(Schema::new(topic_fields()))
}

/// Columns of `product_topics`: per day, product and topic, the conversations where both occur.
pub fn product_topics_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("conversation_date", DataType::Date32, false),
        Field::new("product", DataType::Utf8, false),
        Field::new("topic", DataType::Utf8, false),
        Field::new("conversations", DataType::Int64, false),
        Field::new("dictionary_version", DataType::Utf8, false),
    ]))
}

/// Columns of `co_mentions`: per ISO week (its Monday) and pair of products (`product_a` before
/// `product_b` by name), the conversations that mention both.
pub fn co_mentions_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("week", DataType::Date32, false),
        Field::new("product_a", DataType::Utf8, false),
        Field::new("product_b", DataType::Utf8, false),
        Field::new("conversations", DataType::Int64, false),
        Field::new("dictionary_version", DataType::Utf8, false),
    ]))
}

/// Columns of `product_insights`: every test of each product's latest day and week against its
/// baseline ([`crate::lake::insights`]), flagged or not, with the quotes of a flagged one.
pub fn product_insights_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("product", DataType::Utf8, false),
        // `day` or `week` (`window` is a reserved word in SQL).
        Field::new("time_window", DataType::Utf8, false),
        // `spike` or `drop` (the rate test, by its direction) or `sentiment_shift`.
        Field::new("kind", DataType::Utf8, false),
        Field::new("flagged", DataType::Boolean, false),
        Field::new("window_from", DataType::Date32, false),
        Field::new("window_to", DataType::Date32, false),
        Field::new("value", DataType::Float64, false),
        Field::new("baseline", DataType::Float64, false),
        Field::new("ratio", DataType::Float64, false),
        Field::new("ratio_low", DataType::Float64, false),
        Field::new("ratio_high", DataType::Float64, false),
        Field::new("p_value", DataType::Float64, false),
        Field::new("q_value", DataType::Float64, false),
        Field::new("window_count", DataType::Int64, false),
        Field::new("baseline_count", DataType::Int64, false),
        // A JSON array of the example utterances (conversation_id, date, interaction_type,
        // participant, text, highlights: [start, end, is_the_product] in characters).
        Field::new("examples", DataType::Utf8, false),
        Field::new("dictionary_version", DataType::Utf8, false),
        // Of a flagged insight's window: the STA topic in the utterances that name the product
        // in most conversations, in how many, and in how many they carry any (NULL: none).
        Field::new("top_topic", DataType::Utf8, true),
        Field::new("top_topic_conversations", DataType::Int64, true),
        Field::new("topic_conversations", DataType::Int64, true),
    ]))
}

/// The column that holds the bulk of a lake's bytes: transcript text, in raw snapshots.
const TEXT_COLUMN: &str = "text";

/// Integer columns written with delta encoding.
const DELTA_COLUMNS: [&str; 2] = ["utterance_index", "start_ms"];

/// How every file is written. Transcript text is zstd-compressed and not dictionary-encoded
/// (texts rarely repeat within a page, so a dictionary only adds a copy on every read). Every
/// other column is small (dictionary- and run-length-encoded ids, dates, types, offsets) and is
/// LZ4-compressed: a zstd column costs a compression and a decompression context each time it
/// is written or read, which for one page's snapshot cost more than decoding its columns
/// (`perf`, README "Lake file format").
fn writer_properties(schema: &SchemaRef) -> WriterProperties {
    let mut props = WriterProperties::builder()
        .set_compression(Compression::LZ4_RAW)
        .set_created_by(concat!("convlake ", env!("CARGO_PKG_VERSION")).to_string())
        .set_max_row_group_row_count(Some(64 * 1024));
    // Offsets and positions that grow along a conversation: delta encoding stores them in a
    // byte or two each, where a dictionary cannot (they rarely repeat).
    for name in DELTA_COLUMNS {
        if schema.column_with_name(name).is_some() {
            let col = parquet::schema::types::ColumnPath::from(name);
            props = props
                .set_column_dictionary_enabled(col.clone(), false)
                .set_column_encoding(col, parquet::basic::Encoding::DELTA_BINARY_PACKED);
        }
    }
    if schema.column_with_name(TEXT_COLUMN).is_some() {
        let text = parquet::schema::types::ColumnPath::from(TEXT_COLUMN);
        props = props
            .set_column_compression(text.clone(), Compression::ZSTD(ZstdLevel::default()))
            .set_column_dictionary_enabled(text, false);
    }
    props.build()
}

/// A Parquet file written batch by batch into memory, with the lake's writer properties: only
/// the encoded file is held, not the batches.
pub struct ParquetSink {
    writer: ArrowWriter<Vec<u8>>,
}

impl ParquetSink {
    pub fn new(schema: &SchemaRef) -> Result<ParquetSink, String> {
        let writer =
            ArrowWriter::try_new(Vec::new(), schema.clone(), Some(writer_properties(schema)))
                .map_err(|e| e.to_string())?;
        Ok(ParquetSink { writer })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), String> {
        self.writer.write(batch).map_err(|e| e.to_string())
    }

    /// The finished file.
    pub fn finish(self) -> Result<Bytes, String> {
        // Flushes the last row group and writes the footer.
        let buf = self.writer.into_inner().map_err(|e| e.to_string())?;
        Ok(Bytes::from(buf))
    }
}

/// Encodes batches (all of `schema`) as one Parquet file in memory.
pub fn to_parquet(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Bytes, String> {
    let mut sink = ParquetSink::new(schema)?;
    for b in batches {
        sink.write(b)?;
    }
    sink.finish()
}

/// The batches of a Parquet file held in memory, decoded one at a time as the caller takes
/// them; `names`: only these columns (in the file's column order), a name the file lacks being
/// an error naming it.
pub fn parquet_batches(
    bytes: Bytes,
    names: Option<&[&str]>,
) -> Result<impl Iterator<Item = Result<RecordBatch, String>> + Send + use<>, String> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| e.to_string())?;
    let builder = match names {
        Some(names) => {
            let fields = builder.schema().fields().clone();
            let roots = names
                .iter()
                .map(|name| {
                    fields
                        .iter()
                        .position(|f| f.name() == name)
                        .ok_or_else(|| format!("column {name} is missing"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let mask = parquet::arrow::ProjectionMask::roots(builder.parquet_schema(), roots);
            builder.with_projection(mask)
        }
        None => builder,
    };
    let reader = builder
        .with_batch_size(8192)
        .build()
        .map_err(|e| e.to_string())?;
    Ok(reader.map(|b| b.map_err(|e| e.to_string())))
}

/// Decodes a whole Parquet file held in memory.
pub fn from_parquet(bytes: Bytes) -> Result<Vec<RecordBatch>, String> {
    parquet_batches(bytes, None)?.collect()
}

/// Decodes the named columns of a Parquet file held in memory (in the file's column order); a
/// name the file lacks is an error naming it.
pub fn from_parquet_columns(bytes: Bytes, names: &[&str]) -> Result<Vec<RecordBatch>, String> {
    parquet_batches(bytes, Some(names))?.collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Date32Array, Int64Array, StringArray};

    #[test]
    fn raw_files_compress_text_with_zstd_and_the_rest_with_lz4() {
        use parquet::basic::Encoding;
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let mut rows = RawRowsBuilder::new("snap");
        for i in 0..500 {
            rows.push(RawRow {
                conversation_id: if i < 250 { "c1" } else { "c2" },
                communication_id: None,
                conversation_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 3).unwrap(),
                interaction_type: "voice",
                participant: if i % 2 == 0 { "customer" } else { "agent" },
                utterance_index: i % 250,
                start_ms: Some(i64::from(i) * 1500),
                text: &format!("utterance number {i} about the acme router"),
                subtype: None,
            });
        }
        let batch = rows.finish().unwrap();
        let bytes = to_parquet(&raw_schema(), std::slice::from_ref(&batch)).unwrap();
        let reader = SerializedFileReader::new(bytes.clone()).unwrap();
        let group = reader.metadata().row_group(0);
        for col in group.columns() {
            let name = col.column_path().string();
            let dictionary = col.dictionary_page_offset().is_some();
            match name.as_str() {
                "text" => {
                    assert!(matches!(col.compression(), Compression::ZSTD(_)), "{name}");
                    assert!(!dictionary, "{name} is dictionary-encoded");
                }
                "utterance_index" | "start_ms" => {
                    assert_eq!(col.compression(), Compression::LZ4_RAW, "{name}");
                    assert!(!dictionary, "{name} is dictionary-encoded");
                    let encodings: Vec<Encoding> = col.encodings().collect();
                    assert!(
                        encodings.contains(&Encoding::DELTA_BINARY_PACKED),
                        "{name}: {encodings:?}"
                    );
                }
                _ => assert_eq!(col.compression(), Compression::LZ4_RAW, "{name}"),
            }
        }
        assert_eq!(from_parquet(bytes).unwrap(), vec![batch]);
    }

    #[test]
    fn parquet_round_trip_is_deterministic() {
        let schema = mention_counts_schema();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Date32Array::from(vec![20000])),
                Arc::new(StringArray::from(vec!["voice"])),
                Arc::new(StringArray::from(vec!["Acme Router"])),
                Arc::new(Int64Array::from(vec![3])),
                Arc::new(Int64Array::from(vec![2])),
                Arc::new(StringArray::from(vec!["v"])),
                Arc::new(Int64Array::from(vec![1])),
                Arc::new(Int64Array::from(vec![1])),
                Arc::new(Int64Array::from(vec![0])),
                Arc::new(Int64Array::from(vec![1])),
                Arc::new(arrow::array::Float64Array::from(vec![Some(0.25)])),
            ],
        )
        .unwrap();
        let a = to_parquet(&schema, std::slice::from_ref(&batch)).unwrap();
        let b = to_parquet(&schema, std::slice::from_ref(&batch)).unwrap();
        assert_eq!(a, b);
        let back = from_parquet(a).unwrap();
        assert_eq!(back, vec![batch]);
    }
}
