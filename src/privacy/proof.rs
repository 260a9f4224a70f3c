//! The proof of an erasure (`convlake verify --erased`): no file of the lake and no row of the
//! synced tables holds an erased conversation's id or one of its distinctive utterance texts.
//!
//! The lake records erased conversations only as hashes ([`erased_hash`] of the id, blake3 of
//! each text), so the check hashes what it reads and compares: every string of every Parquet
//! column (decoded), every string value of every JSON and JSON-lines file (zstd files
//! decompressed first), and every word-like token of any other file (HTML reports, SVG
//! charts, TOML), which is where an id shows up in free text.

use std::collections::HashSet;

use arrow::array::{Array, StringArray};
use serde_json::Value;

use crate::lake::content_hash;
use crate::lake::events::erased_hash;

/// What an erased conversation left in a file, if anything: a short description (never the
/// id or the text itself).
pub fn holds_erased(
    path: &str,
    bytes: &[u8],
    ids: &HashSet<String>,
    texts: &HashSet<String>,
) -> Option<String> {
    if ids.is_empty() && texts.is_empty() {
        return None;
    }
    let mut found = None;
    let mut check = |s: &str| {
        if found.is_none() {
            found = check_string(s, ids, texts);
        }
    };
    if bytes.starts_with(b"PAR1") {
        match crate::lake::schema::from_parquet(bytes::Bytes::copy_from_slice(bytes)) {
            Ok(batches) => {
                for b in &batches {
                    for col in b.columns() {
                        let Ok(col) = arrow::compute::cast(col, &arrow::datatypes::DataType::Utf8)
                        else {
                            continue;
                        };
                        let Some(s) = col.as_any().downcast_ref::<StringArray>() else {
                            continue;
                        };
                        for v in s.iter().flatten() {
                            check(v);
                        }
                    }
                }
            }
            Err(e) => return Some(format!("{path} cannot be read to check it ({e})")),
        }
        return found;
    }
    if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return match zstd::stream::decode_all(bytes) {
            Ok(plain) => holds_erased(path, &plain, ids, texts),
            Err(e) => Some(format!("{path} does not decompress to check it ({e})")),
        };
    }
    let text = String::from_utf8_lossy(bytes);
    if let Ok(v) = serde_json::from_str::<Value>(&text) {
        walk(&v, &mut check);
        return found;
    }
    if path.ends_with(".jsonl") {
        for line in text.lines() {
            match serde_json::from_str::<Value>(line) {
                Ok(v) => walk(&v, &mut check),
                Err(_) => check(line),
            }
        }
        return found;
    }
    check(&text);
    found
}

fn walk(v: &Value, check: &mut dyn FnMut(&str)) {
    match v {
        Value::String(s) => check(s),
        Value::Array(a) => a.iter().for_each(|x| walk(x, check)),
        Value::Object(o) => o.values().for_each(|x| walk(x, check)),
        _ => {}
    }
}

/// One string: the whole of it as an id or a text, any JSON it holds, and its tokens as ids.
fn check_string(s: &str, ids: &HashSet<String>, texts: &HashSet<String>) -> Option<String> {
    if ids.contains(&erased_hash(s)) {
        return Some("the id of an erased conversation".into());
    }
    if !texts.is_empty() && texts.contains(&content_hash(s.as_bytes())) {
        return Some("an utterance text of an erased conversation".into());
    }
    let t = s.trim_start();
    if (t.starts_with('[') || t.starts_with('{')) && s.len() > 2 {
        if let Ok(v) = serde_json::from_str::<Value>(s) {
            let mut found = None;
            walk(&v, &mut |x: &str| {
                if found.is_none() && x != s {
                    found = check_string(x, ids, texts);
                }
            });
            if found.is_some() {
                return found;
            }
        }
    }
    for token in s.split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_')) {
        if token.len() >= 4 && token != s && ids.contains(&erased_hash(token)) {
            return Some("the id of an erased conversation".into());
        }
    }
    // HTML escapes a text's quotes and apostrophes; the text is matched once unescaped.
    if !texts.is_empty() && s.contains('&') {
        let plain = s
            .replace("&#39;", "'")
            .replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&");
        if plain != s && texts.contains(&content_hash(plain.as_bytes())) {
            return Some("an utterance text of an erased conversation".into());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sets(ids: &[&str], texts: &[&str]) -> (HashSet<String>, HashSet<String>) {
        (
            ids.iter().map(|i| erased_hash(i)).collect(),
            texts.iter().map(|t| content_hash(t.as_bytes())).collect(),
        )
    }

    #[test]
    fn ids_and_texts_are_found_in_json_parquet_zstd_and_free_text() {
        let (ids, texts) = sets(&["c-0001-gone"], &["my secret order for the router"]);
        let hit = |path: &str, b: &[u8]| holds_erased(path, b, &ids, &texts);
        assert!(hit("x.json", br#"{"a": [{"conversationId": "c-0001-gone"}]}"#).is_some());
        assert!(hit("x.json", br#"{"a": "my secret order for the router"}"#).is_some());
        assert!(hit("x.json", br#"{"a": "c-0002-kept"}"#).is_none());
        assert!(hit("r.html", b"<td>c-0001-gone</td>").is_some());
        assert!(hit("r.html", b"<td>c-0001-gonex</td>").is_none());
        let packed = zstd::bulk::compress(br#"["c-0001-gone"]"#, 1).unwrap();
        assert!(hit("t.json.zst", &packed).is_some());
        // A JSON column inside Parquet (product_insights' examples).
        let schema = std::sync::Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("examples", arrow::datatypes::DataType::Utf8, false),
        ]));
        let batch = arrow::array::RecordBatch::try_new(
            schema.clone(),
            vec![std::sync::Arc::new(StringArray::from(vec![
                r#"[{"conversation_id":"c-0001-gone","text":"hi"}]"#,
            ]))],
        )
        .unwrap();
        let pq = crate::lake::schema::to_parquet(&schema, &[batch]).unwrap();
        assert!(hit("a.parquet", &pq).is_some());
        assert!(holds_erased("a.parquet", &pq, &HashSet::new(), &HashSet::new()).is_none());
    }
}
