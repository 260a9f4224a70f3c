//! The staging area: one directory (or object-store prefix) that holds every page convlake
//! received, everything derived from it, and the append-only event log that says what happened.
//!
//! Invariants:
//! - every file is written whole (a single put: temp file + rename on a local disk), so a file is
//!   complete or absent, never partial;
//! - raw snapshots are named by the blake3 of the page body, so the same page is stored once;
//! - event-log segments are created with create-if-absent and never rewritten.
//!
//! All I/O goes through `object_store`, the same layer DataFusion reads through.

pub mod events;
pub mod schema;
pub mod verify;

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use url::Url;

pub use events::{Event, EventKind, EventLog};

/// Errors from the lake. Each names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("cannot open the lake at {location}: {reason}. Check the path exists and is writable, or pass --lake DIR")]
    Open { location: String, reason: String },
    #[error("cannot write {path} in the lake: {cause}. Check free disk space and permissions; nothing already staged was changed, so a re-run continues from here")]
    Write {
        path: String,
        cause: object_store::Error,
    },
    #[error("cannot read {path} from the lake: {cause}")]
    Read {
        path: String,
        cause: object_store::Error,
    },
    #[error("cannot list {prefix} in the lake: {cause}")]
    List {
        prefix: String,
        cause: object_store::Error,
    },
    #[error("{path} in the lake is not a valid Parquet file of the expected shape: {reason}. Run `convlake verify` to find and quarantine damaged files")]
    Parquet { path: String, reason: String },
    #[error("the event log segment {path} is damaged: {reason}")]
    Event { path: String, reason: String },
}

/// A handle on the lake: an object store plus the URL DataFusion uses to reach it.
#[derive(Clone, Debug)]
pub struct Lake {
    store: Arc<dyn ObjectStore>,
    url: Url,
    root: PathBuf,
}

impl Lake {
    /// Opens (creating if needed) a lake in a local directory.
    pub fn open_local(dir: &FsPath) -> Result<Lake, LakeError> {
        let open_err = |reason: String| LakeError::Open {
            location: dir.display().to_string(),
            reason,
        };
        std::fs::create_dir_all(dir).map_err(|e| open_err(e.to_string()))?;
        let root = dir.canonicalize().map_err(|e| open_err(e.to_string()))?;
        let store = LocalFileSystem::new_with_prefix(&root).map_err(|e| open_err(e.to_string()))?;
        let url = Url::from_directory_path(&root)
            .map_err(|()| open_err("not an absolute directory path".into()))?;
        Ok(Lake {
            store: Arc::new(store),
            url,
            root,
        })
    }

    /// The local directory of the lake.
    pub fn root(&self) -> &FsPath {
        &self.root
    }

    /// The object store behind the lake.
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// The URL of a directory inside the lake, with a trailing slash, for DataFusion listing tables.
    pub fn dir_url(&self, rel: &str) -> String {
        format!("{}{}/", self.url, rel.trim_matches('/'))
    }

    /// The URL of a file inside the lake.
    pub fn file_url(&self, rel: &str) -> String {
        format!("{}{}", self.url, rel.trim_start_matches('/'))
    }

    /// The base URL of the lake (`file:///…/`), the object-store key DataFusion resolves.
    pub fn base_url(&self) -> &Url {
        &self.url
    }

    /// Writes a whole file (replacing any previous content). Local: temp file + rename.
    pub async fn put(&self, rel: &str, bytes: Bytes) -> Result<(), LakeError> {
        self.store
            .put(&Path::from(rel), PutPayload::from_bytes(bytes))
            .await
            .map(|_| ())
            .map_err(|cause| LakeError::Write {
                path: rel.to_string(),
                cause,
            })
    }

    /// Creates a file only if absent. Returns `false` when it already existed.
    pub async fn put_if_absent(&self, rel: &str, bytes: Bytes) -> Result<bool, LakeError> {
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .store
            .put_opts(&Path::from(rel), PutPayload::from_bytes(bytes), opts)
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(cause) => Err(LakeError::Write {
                path: rel.to_string(),
                cause,
            }),
        }
    }

    /// True when a file exists.
    pub async fn exists(&self, rel: &str) -> Result<bool, LakeError> {
        match self.store.head(&Path::from(rel)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(cause) => Err(LakeError::Read {
                path: rel.to_string(),
                cause,
            }),
        }
    }

    /// Reads a whole file.
    pub async fn get(&self, rel: &str) -> Result<Bytes, LakeError> {
        let read_err = |cause| LakeError::Read {
            path: rel.to_string(),
            cause,
        };
        let res = self.store.get(&Path::from(rel)).await.map_err(read_err)?;
        res.bytes().await.map_err(read_err)
    }

    /// Lists every file under a prefix (recursively), sorted by path. Unfinished temp files
    /// (local staging files such as `x.parquet#1`) are left out.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, LakeError> {
        let p = Path::from(prefix);
        let mut items: Vec<ObjectMeta> =
            self.store
                .list(Some(&p))
                .try_collect()
                .await
                .map_err(|cause| LakeError::List {
                    prefix: prefix.to_string(),
                    cause,
                })?;
        items.retain(|m| !m.location.as_ref().contains('#'));
        items.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(items)
    }

    /// Removes a file (used by `gc` and for temporary outputs only, never for snapshots).
    pub async fn delete(&self, rel: &str) -> Result<(), LakeError> {
        match self.store.delete(&Path::from(rel)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(cause) => Err(LakeError::Write {
                path: rel.to_string(),
                cause,
            }),
        }
    }

    /// The event log of this lake.
    pub fn events(&self) -> EventLog {
        EventLog::new(self.clone())
    }
}

/// The lake path of the raw snapshot with this blake3 hash.
pub fn snapshot_path(hash: &str) -> String {
    format!("raw/{}/{}.parquet", &hash[..2.min(hash.len())], hash)
}

/// The lake directory of the mentions extracted with one dictionary version.
pub fn mentions_dir(dictionary_version: &str) -> String {
    format!("mentions/dict={dictionary_version}")
}

/// The lake path of one snapshot's mentions for one dictionary version.
pub fn mentions_path(dictionary_version: &str, snapshot: &str) -> String {
    format!("{}/{snapshot}.parquet", mentions_dir(dictionary_version))
}

/// The lake path of the aggregates for one dictionary version.
pub fn mention_counts_path(dictionary_version: &str) -> String {
    format!("aggregates/dict={dictionary_version}/mention_counts.parquet")
}

/// The lake path of the per-conversation aggregates for one dictionary version.
pub fn conversation_mentions_path(dictionary_version: &str) -> String {
    format!("aggregates/dict={dictionary_version}/conversation_mentions.parquet")
}

/// blake3 of some bytes as lowercase hex.
pub fn content_hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_if_absent_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open_local(dir.path()).unwrap();
        assert!(lake
            .put_if_absent("events/a", Bytes::from("1"))
            .await
            .unwrap());
        assert!(!lake
            .put_if_absent("events/a", Bytes::from("2"))
            .await
            .unwrap());
        assert_eq!(lake.get("events/a").await.unwrap(), Bytes::from("1"));
        assert!(lake.exists("events/a").await.unwrap());
        assert!(!lake.exists("events/b").await.unwrap());
    }

    #[test]
    fn paths_follow_the_layout() {
        assert_eq!(snapshot_path("abcdef"), "raw/ab/abcdef.parquet");
        assert_eq!(mentions_path("v1", "abc"), "mentions/dict=v1/abc.parquet");
        assert_eq!(
            mention_counts_path("v1"),
            "aggregates/dict=v1/mention_counts.parquet"
        );
    }
}
