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

pub mod aggregates;
pub mod copies;
pub mod dictionaries;
pub mod events;
pub mod examples;
pub mod insights;
pub mod layout;
pub mod schema;
pub mod stats;
pub mod stores;
pub mod tables;
pub mod verify;

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use url::Url;

pub use events::{Event, EventKind, EventLog};
pub use layout::{mentions_dir, mentions_path, snapshot_path};

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
    #[error("cannot list {prefix} in the lake {location}: {cause}. Check that the lake is there and reachable (an object store: the bucket name, the endpoint and the credentials in AWS_*/GOOGLE_*/AZURE_*)")]
    List {
        prefix: String,
        location: String,
        cause: object_store::Error,
    },
    #[error("{path} in the lake is not a valid Parquet file of the expected shape: {reason}. Run `convlake verify` to find and quarantine damaged files")]
    Parquet { path: String, reason: String },
    #[error("no lake at {location} (nothing fetched yet, or a wrong --lake, CONVLAKE_LAKE or `lake` in convlake.toml): it has no event log. Run `convlake fetch` (or `convlake run`) to start one, or point --lake at an existing lake")]
    NoLake { location: String },
    #[error("the aggregates of dictionary version {version} are damaged: {path}: {reason}. Run `convlake aggregate` to write them again (the staged snapshots are intact)")]
    Generation {
        path: String,
        version: String,
        reason: String,
    },
    #[error("the event log segment {path} is damaged: {reason}")]
    Event { path: String, reason: String },
    #[error("cannot create {path} in the lake {location}: the object store does not support create-if-absent writes, which the event log needs so that two writers never overwrite each other. On S3 leave AWS_CONDITIONAL_PUT unset (or `etag`): AWS S3, MinIO, Cloudflare R2 and moto support If-None-Match")]
    NoConditionalPut { path: String, location: String },
    /// A query over the lake's tables ([`tables`]) failed.
    #[error("query failed: {0}")]
    Query(#[from] datafusion::error::DataFusionError),
    /// The lake's tables or aggregates read back with columns of another shape.
    #[error("the aggregates do not have the expected shape: {0}")]
    Shape(String),
}

/// A URL without user, password, query or fragment, for messages.
fn redact_url(s: &str) -> String {
    match Url::parse(s) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) => "(the --lake URL)".to_string(),
    }
}

/// Why an object store could not be set up, without the configuration values (which may hold
/// credentials): object_store's builder errors name the setting, not its value.
fn store_reason(e: &object_store::Error) -> String {
    format!("{e}. Check the AWS_*/GOOGLE_*/AZURE_* environment variables of that store")
}

/// A handle on the lake: an object store rooted at the lake, plus the URL DataFusion uses to
/// reach it.
#[derive(Clone)]
pub struct Lake {
    store: Arc<dyn ObjectStore>,
    url: Url,
    place: Place,
}

/// Where the lake lives.
#[derive(Clone)]
enum Place {
    /// A directory on this machine.
    Local(PathBuf),
    /// An object store (S3, GCS, Azure). `bucket` is the store at the bucket's root, as
    /// DataFusion's registry wants it (keyed by `scheme://bucket`); `store` is the same store
    /// under the lake's prefix.
    Remote { bucket: Arc<dyn ObjectStore> },
}

/// The schemes `--lake` accepts besides plain paths.
const SCHEMES: &str =
    "a directory, file:///dir, s3://bucket/prefix, gs://bucket/prefix or az://container/prefix";

// Never derived: an object store's Debug can print its credentials.
impl std::fmt::Debug for Lake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lake")
            .field("location", &self.location())
            .finish()
    }
}

impl Lake {
    /// Opens the lake named by `--lake`: a directory (created if needed), `file:///dir`,
    /// `s3://bucket/prefix`, `gs://bucket/prefix` or `az://container/prefix`. Object stores take
    /// their credentials, region and endpoint from the environment (`AWS_*`, `GOOGLE_*`,
    /// `AZURE_*`); an `http://` endpoint (a local MinIO or moto) is allowed.
    pub fn open(spec: &str) -> Result<Lake, LakeError> {
        let spec = spec.trim();
        let Some((scheme, _)) = spec.split_once("://") else {
            return Lake::open_local(FsPath::new(spec));
        };
        let open_err = |reason: String| LakeError::Open {
            location: redact_url(spec),
            reason,
        };
        let url = Url::parse(spec).map_err(|e| open_err(format!("not a URL: {e}")))?;
        match scheme.to_ascii_lowercase().as_str() {
            "file" => {
                let dir = url
                    .to_file_path()
                    .map_err(|()| open_err("not a local file:// path".into()))?;
                Lake::open_local(&dir)
            }
            scheme => match bucket_store(scheme, spec) {
                Some(bucket) => {
                    Lake::open_remote(url, bucket.map_err(|e| open_err(store_reason(&e)))?)
                }
                None => Err(open_err(format!(
                    "the scheme {scheme}:// is not supported; --lake takes {SCHEMES}"
                ))),
            },
        }
    }

    /// A lake at `url` (`scheme://bucket/prefix`) on an object store already built for that
    /// bucket (its root, not the prefix): for embedding convlake and for tests.
    pub fn on_store(url: &str, bucket: Arc<dyn ObjectStore>) -> Result<Lake, LakeError> {
        let url = Url::parse(url).map_err(|e| LakeError::Open {
            location: redact_url(url),
            reason: format!("not a URL: {e}"),
        })?;
        Lake::open_remote(url, bucket)
    }

    fn open_remote(url: Url, bucket: Arc<dyn ObjectStore>) -> Result<Lake, LakeError> {
        let prefix = url.path().trim_matches('/').to_string();
        let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
            bucket.clone()
        } else {
            Arc::new(PrefixStore::new(
                bucket.clone(),
                Path::from(prefix.as_str()),
            ))
        };
        let mut base = url.clone();
        base.set_query(None);
        base.set_fragment(None);
        base.set_path(&if prefix.is_empty() {
            "/".to_string()
        } else {
            format!("/{prefix}/")
        });
        Ok(Lake {
            store,
            url: base,
            place: Place::Remote { bucket },
        })
    }

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
            place: Place::Local(root),
        })
    }

    /// The lake's directory when it is on this machine; `None` on an object store.
    pub fn local_dir(&self) -> Option<&FsPath> {
        match &self.place {
            Place::Local(root) => Some(root),
            Place::Remote { .. } => None,
        }
    }

    /// What to call the lake in messages: its directory, or its URL (without credentials).
    pub fn location(&self) -> String {
        match &self.place {
            Place::Local(root) => root.display().to_string(),
            Place::Remote { .. } => redact_url(self.url.as_str()),
        }
    }

    /// A directory on this machine for what cannot live in an object store: the scheduler
    /// lock. The lake itself when local; otherwise
    /// `CONVLAKE_WORK_DIR`, or `<temp>/convlake-<hash of the lake URL>` (one per lake, so runs
    /// on one machine against one remote lake share it). Created if needed.
    pub fn work_dir(&self) -> Result<PathBuf, LakeError> {
        let dir = match &self.place {
            Place::Local(root) => return Ok(root.clone()),
            Place::Remote { .. } => match std::env::var_os("CONVLAKE_WORK_DIR") {
                Some(d) if !d.is_empty() => PathBuf::from(d),
                _ => std::env::temp_dir().join(format!(
                    "convlake-{}",
                    &content_hash(self.url.as_str().as_bytes())[..16]
                )),
            },
        };
        std::fs::create_dir_all(&dir).map_err(|e| LakeError::Open {
            location: dir.display().to_string(),
            reason: format!("cannot create the local work directory of the lake {}: {e}; set CONVLAKE_WORK_DIR to a writable directory", self.location()),
        })?;
        Ok(dir)
    }

    /// Makes the lake readable by a DataFusion session: an object-store lake is registered in
    /// the session's object-store registry under `scheme://bucket` (local files are built in).
    pub fn register_with(&self, runtime: &datafusion::execution::runtime_env::RuntimeEnv) {
        if let Place::Remote { bucket } = &self.place {
            let mut root = self.url.clone();
            root.set_path("/");
            runtime.register_object_store(&root, bucket.clone());
        }
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

    /// Opens a lake that must already hold an event log: for every command that reads the
    /// lake (all but `fetch`, `run` and `demo`). A wrong path is [`LakeError::NoLake`], and
    /// nothing is created there.
    pub async fn open_existing(spec: &str) -> Result<Lake, LakeError> {
        let trimmed = spec.trim();
        let local = match trimmed.split_once("://") {
            None => Some(PathBuf::from(trimmed)),
            Some((scheme, _)) if scheme.eq_ignore_ascii_case("file") => {
                Url::parse(trimmed).ok().and_then(|u| u.to_file_path().ok())
            }
            Some(_) => None,
        };
        if let Some(dir) = &local {
            if !dir.join(events::DIR).is_dir() {
                return Err(LakeError::NoLake {
                    location: dir.display().to_string(),
                });
            }
        }
        let lake = Lake::open(spec)?;
        if lake.events().is_empty().await? {
            return Err(LakeError::NoLake {
                location: lake.location(),
            });
        }
        Ok(lake)
    }

    /// Writes a whole file (replacing any previous content). Local: temp file + rename, then
    /// fsync (see [`Lake::sync_local`]).
    pub async fn put(&self, rel: &str, bytes: Bytes) -> Result<(), LakeError> {
        self.store
            .put(&Path::from(rel), PutPayload::from_bytes(bytes))
            .await
            .map(|_| ())
            .map_err(|cause| LakeError::Write {
                path: rel.to_string(),
                cause,
            })?;
        self.sync_local(rel).await
    }

    /// On a local lake, makes a file just written durable: the file and its directory (and
    /// the directory above, which may have been created for it) are fsynced, so the event that
    /// records the file is never on disk before the file itself. `CONVLAKE_FSYNC=off` skips
    /// it (for benchmarks and throwaway lakes; README, "Durability"). An object store's put is
    /// durable when it returns.
    async fn sync_local(&self, rel: &str) -> Result<(), LakeError> {
        let Place::Local(root) = &self.place else {
            return Ok(());
        };
        if !fsync_enabled() {
            return Ok(());
        }
        let file = root.join(rel);
        let done = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            std::fs::File::open(&file)?.sync_all()?;
            let mut dir = file.parent();
            for _ in 0..2 {
                let Some(d) = dir else { break };
                std::fs::File::open(d)?.sync_all()?;
                dir = d.parent();
            }
            Ok(())
        })
        .await;
        let err = |e: std::io::Error| LakeError::Write {
            path: rel.to_string(),
            cause: object_store::Error::Generic {
                store: "LocalFileSystem",
                source: Box::new(e),
            },
        };
        match done {
            Ok(r) => r.map_err(err),
            Err(join) => Err(err(std::io::Error::other(join.to_string()))),
        }
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
            Ok(_) => {
                self.sync_local(rel).await?;
                Ok(true)
            }
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(object_store::Error::NotImplemented { .. }) => Err(LakeError::NoConditionalPut {
                path: rel.to_string(),
                location: self.location(),
            }),
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
                    location: self.location(),
                    cause,
                })?;
        items.retain(|m| !m.location.as_ref().contains('#'));
        items.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(items)
    }

    /// The paths of every file under a prefix, as [`Lake::list`] sees them: one listing to
    /// check many files against, instead of a request per file.
    pub async fn list_paths(
        &self,
        prefix: &str,
    ) -> Result<std::collections::HashSet<String>, LakeError> {
        Ok(self
            .list(prefix)
            .await?
            .into_iter()
            .map(|m| m.location.to_string())
            .collect())
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

    /// Moves a file to `to` unless `to` exists (returns `false` then). Local: one rename. Object
    /// stores have no rename: the bytes are copied with create-if-absent, then the original is
    /// deleted, so `to` is whole or absent and the original stays until the copy is complete.
    pub async fn move_if_absent(&self, from: &str, to: &str) -> Result<bool, LakeError> {
        if self.local_dir().is_some() {
            return match self
                .store
                .rename_if_not_exists(&Path::from(from), &Path::from(to))
                .await
            {
                Ok(()) => Ok(true),
                Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
                Err(cause) => Err(LakeError::Write {
                    path: from.to_string(),
                    cause,
                }),
            };
        }
        let bytes = self.get(from).await?;
        if !self.put_if_absent(to, bytes).await? {
            return Ok(false);
        }
        self.delete(from).await?;
        Ok(true)
    }

    /// The event log of this lake.
    pub fn events(&self) -> EventLog {
        EventLog::new(self.clone())
    }
}

/// False when `CONVLAKE_FSYNC` is `off`, `0` or `false`: local writes are then not fsynced.
pub fn fsync_enabled() -> bool {
    !matches!(
        std::env::var("CONVLAKE_FSYNC")
            .unwrap_or_default()
            .to_ascii_lowercase()
            .as_str(),
        "off" | "0" | "false" | "no"
    )
}

/// blake3 of some bytes as lowercase hex.
pub fn content_hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// The object store of the bucket or container `url` names (`s3://bucket/…`, `gs://bucket/…`,
/// `az://container/…`), configured from the environment; `None` when the scheme is not an
/// object store's. The lake and every Ballista node build their stores here.
pub fn bucket_store(
    scheme: &str,
    url: &str,
) -> Option<Result<Arc<dyn ObjectStore>, object_store::Error>> {
    let built: Result<Arc<dyn ObjectStore>, object_store::Error> =
        match scheme.to_ascii_lowercase().as_str() {
            "s3" | "s3a" => s3_from_env(url).build().map(|s| Arc::new(s) as _),
            "gs" => GoogleCloudStorageBuilder::from_env()
                .with_url(url)
                .build()
                .map(|s| Arc::new(s) as _),
            "az" | "azure" | "abfs" | "abfss" | "adl" => MicrosoftAzureBuilder::from_env()
                .with_url(url)
                .build()
                .map(|s| Arc::new(s) as _),
            _ => return None,
        };
    Some(built)
}

/// An S3 store builder for `url` (`s3://bucket/…`) from the usual `AWS_*` variables: plain
/// HTTP is allowed when the endpoint (`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`,
/// `AWS_ENDPOINT`) is an `http://` URL (a local S3-compatible server), and the region defaults
/// to `us-east-1`.
pub fn s3_from_env(url: &str) -> AmazonS3Builder {
    let endpoint = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()));
    let allow_http = endpoint
        .as_deref()
        .is_some_and(|e| e.starts_with("http://"));
    let mut builder = AmazonS3Builder::from_env()
        .with_url(url)
        .with_allow_http(allow_http);
    let region_set = ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .iter()
        .any(|k| std::env::var(k).is_ok_and(|v| !v.is_empty()));
    if !region_set {
        builder = builder.with_region("us-east-1");
    }
    builder
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
            aggregates::generation_file("v1", aggregates::Table::MentionCounts, "ab"),
            "aggregates/dict=v1/mention_counts/ab.parquet"
        );
    }
}
