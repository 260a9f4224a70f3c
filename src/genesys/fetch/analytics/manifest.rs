//! What a batch of the analytics fetch stage leaves in `bodies/` (see [`super`] for the order
//! the files are written in): the lake paths of its records, texts and manifest, the
//! compression of its texts, the manifest itself, and the writing of content-addressed files.
//! Also the `source` name the stage records its events under.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::genesys::fetch::FetchError;
use crate::lake::{content_hash, Lake};

/// The `source` of this stage's events.
pub const SOURCE: &str = "analytics";
/// The `format` of the manifests this stage writes.
pub(super) const MANIFEST_FORMAT: &str = "convlake.analytics.v2";

pub use crate::lake::layout::{body_path, texts_path};

/// zstd level of stored texts: the fastest, which already gets most of the gain on JSON.
const TEXTS_ZSTD_LEVEL: i32 = 1;

/// Compresses a batch's texts on the blocking pool; returns them with the hash they are
/// stored under (that of the compressed bytes).
pub(super) async fn compress_texts(texts: Bytes) -> Result<(Bytes, String), String> {
    let packed = tokio::task::spawn_blocking(move || {
        zstd::bulk::compress(&texts, TEXTS_ZSTD_LEVEL).map(|b| {
            let hash = content_hash(&b);
            (Bytes::from(b), hash)
        })
    })
    .await;
    match packed {
        Ok(Ok(p)) => Ok(p),
        Ok(Err(e)) => Err(format!("compressing the batch's texts failed: {e}")),
        Err(e) => Err(format!("compressing the batch's texts failed: {e}")),
    }
}

/// One conversation in a batch manifest.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ManifestEntry {
    pub conversation_id: String,
    /// blake3 of the record as stored in the batch's records file.
    pub record: String,
    pub media_type: String,
    pub conversation_start: String,
    /// `doc:<hash>`, `recordings:<hash>` or `missing:<reason>`.
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub communication_id: Option<String>,
}

/// A batch manifest: what a snapshot was made of.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    pub format: String,
    /// blake3 of the JSON array of the batch's conversation records.
    pub records: String,
    /// blake3 of the batch's texts as stored (`bodies/<h0h1>/<hash>.json.zst`, the zstd of a
    /// JSON array with one element per conversation whose text is not `missing:`, in the order
    /// of `conversations`); none when every text is missing, and in v1 manifests, whose texts
    /// are files of their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub texts: Option<String>,
    pub conversations: Vec<ManifestEntry>,
}

/// Writes a content-addressed file unless the lake already holds it.
pub(super) async fn put_once(lake: &Lake, path: &str, bytes: Bytes) -> Result<(), FetchError> {
    if !lake.exists(path).await? {
        lake.put(path, bytes).await?;
    }
    Ok(())
}

/// Writes a body once under its content hash; returns the hash.
pub(super) async fn store_body(lake: &Lake, bytes: Bytes) -> Result<String, FetchError> {
    let hash = content_hash(&bytes);
    put_once(lake, &body_path(&hash), bytes).await?;
    Ok(hash)
}

/// The JSON array of `bodies`, each kept byte for byte as received (every one was checked to
/// be JSON when it arrived), so an element's blake3 is its `doc:`/`recordings:` hash.
pub(super) fn json_array(bodies: &[Bytes]) -> Bytes {
    let mut out = Vec::with_capacity(bodies.iter().map(|b| b.len() + 2).sum::<usize>() + 2);
    out.push(b'[');
    for (i, b) in bodies.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b",\n");
        }
        out.extend_from_slice(b);
    }
    out.push(b']');
    Bytes::from(out)
}
