//! The object stores a session reads the lake through: one registry, shared by the local
//! engine's sessions (`query`, `report`, …), the Ballista client, the scheduler (which lists
//! files while planning) and every executor (which reads them).
//!
//! A local session opens only the lake's store, inside the lake ([`LakeStores::for_lake_of`]).
//! A node (`convlake ballista scheduler|executor`) serves one lake, the one `--lake`
//! (`CONVLAKE_LAKE`) names: [`LakeStores::for_lake`] opens only that lake's store, and only
//! inside it ([`Confined`]): a plan that names another bucket, another directory or the
//! filesystem root is refused, because anyone who can reach the cluster can send it plans.
//!
//! `file://` lakes need the same path on every node (a shared mount); `s3://` lakes take their
//! endpoint and credentials from the usual `AWS_*` variables (`AWS_ENDPOINT_URL`,
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ALLOW_HTTP`), `gs://` from
//! `GOOGLE_*` and `az://` from `AZURE_*`, so each node is configured by its own environment.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use datafusion::error::DataFusionError;
use datafusion::execution::object_store::ObjectStoreRegistry;
use futures::stream::{BoxStream, StreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};
use url::Url;

/// Object stores by `scheme://authority`: built on first use from the URL and the environment
/// (the client's default), or only the lake's (a node's, [`LakeStores::for_lake`]).
#[derive(Debug, Default)]
pub struct LakeStores {
    stores: RwLock<HashMap<String, Arc<dyn ObjectStore>>>,
    /// `Some` on a node: the one lake it serves; every other store is refused.
    lake: Option<LakeScope>,
}

/// The lake a node serves: its registry key, its prefix in that store, and how to name it.
#[derive(Debug, Clone)]
struct LakeScope {
    key: String,
    prefix: Path,
    location: String,
}

/// The registry key of a URL: its scheme and authority (`s3://bucket`, `file://`).
fn key(url: &Url) -> String {
    format!(
        "{}://{}",
        url.scheme(),
        &url[url::Position::BeforeHost..url::Position::AfterPort]
    )
}

/// Builds the object store that serves `url`, configured from the environment.
pub fn store_for_url(url: &Url) -> Result<Arc<dyn ObjectStore>, String> {
    let base = &url[..url::Position::BeforePath];
    if url.scheme() == "file" {
        return Ok(Arc::new(LocalFileSystem::new()));
    }
    match crate::lake::bucket_store(url.scheme(), base) {
        Some(built) => built.map_err(|e| e.to_string()),
        None => Err(format!(
            "{}:// is not a lake location convlake can read; use a local path (file://), s3://, gs:// or az://",
            url.scheme()
        )),
    }
}

/// A URL without user, password, query or fragment, for messages.
fn redacted(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

impl LakeStores {
    /// The registry of a node that serves the lake `spec` (`--lake`: a directory, `file:///dir`
    /// or `scheme://bucket/prefix`) and nothing else. A local lake must exist (the same path
    /// on every node); an object store is built from this node's environment.
    pub fn for_lake(spec: &str) -> Result<LakeStores, String> {
        let spec = spec.trim();
        let no_dir = |dir: &std::path::Path, e: std::io::Error| {
            format!("no lake directory at {} ({e}): a Ballista node serves the lake named by --lake (CONVLAKE_LAKE), which must be the same path on every node (a shared mount)", dir.display())
        };
        let local = match spec.split_once("://") {
            None => Some(std::path::PathBuf::from(spec)),
            Some((scheme, _)) if scheme.eq_ignore_ascii_case("file") => Some(
                Url::parse(spec)
                    .ok()
                    .and_then(|u| u.to_file_path().ok())
                    .ok_or_else(|| format!("--lake {spec:?} is not a local file:// path"))?,
            ),
            Some(_) => None,
        };
        let url = match local {
            // The real directory (no symlink, no `..`), so that the prefix is what is read.
            Some(dir) => {
                let dir = dir.canonicalize().map_err(|e| no_dir(&dir, e))?;
                Url::from_directory_path(&dir)
                    .map_err(|()| format!("{} is not an absolute directory", dir.display()))?
            }
            None => Url::parse(spec).map_err(|e| format!("--lake is not a URL: {e}"))?,
        };
        let store = store_for_url(&url)?;
        let prefix = match url.scheme() {
            "file" => {
                let dir = url
                    .to_file_path()
                    .map_err(|()| format!("--lake {spec:?} is not a local file:// path"))?;
                Path::from_absolute_path(&dir).map_err(|e| e.to_string())?
            }
            _ => Path::from(url.path().trim_matches('/')),
        };
        let location = match url.scheme() {
            "file" => url
                .to_file_path()
                .map(|p| {
                    p.components()
                        .collect::<std::path::PathBuf>()
                        .display()
                        .to_string()
                })
                .unwrap_or_else(|()| redacted(&url)),
            _ => redacted(&url),
        };
        let scope = LakeScope {
            key: key(&url),
            prefix,
            location,
        };
        let stores = LakeStores {
            stores: RwLock::new(HashMap::new()),
            lake: Some(scope.clone()),
        };
        stores.insert(scope.key.clone(), Arc::new(Confined::new(store, scope)));
        Ok(stores)
    }

    /// The registry of a session over `lake`: the lake's store only, confined to the lake (a
    /// local lake's directory; an object-store lake's bucket and prefix, whose store the lake
    /// registers itself, see `Lake::register_with`).
    pub fn for_lake_of(lake: &crate::lake::Lake) -> Result<LakeStores, DataFusionError> {
        let url = lake.base_url();
        let (prefix, store): (Path, Option<Arc<dyn ObjectStore>>) = match lake.local_dir() {
            Some(dir) => (
                Path::from_absolute_path(dir).map_err(|e| {
                    DataFusionError::Configuration(format!(
                        "cannot confine the session to the lake at {}: {e}",
                        dir.display()
                    ))
                })?,
                Some(Arc::new(LocalFileSystem::new())),
            ),
            None => (Path::from(url.path().trim_matches('/')), None),
        };
        let scope = LakeScope {
            key: key(url),
            prefix,
            location: lake.location(),
        };
        let stores = LakeStores {
            stores: RwLock::new(HashMap::new()),
            lake: Some(scope.clone()),
        };
        if let Some(store) = store {
            stores.insert(scope.key.clone(), Arc::new(Confined::new(store, scope)));
        }
        Ok(stores)
    }

    /// The lake a node serves, for its start-up line; `None` for the client's registry.
    pub fn lake_location(&self) -> Option<&str> {
        self.lake.as_ref().map(|s| s.location.as_str())
    }

    fn insert(&self, key: String, store: Arc<dyn ObjectStore>) -> Option<Arc<dyn ObjectStore>> {
        self.stores
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(key, store)
    }
}

impl ObjectStoreRegistry for LakeStores {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        match &self.lake {
            None => self.insert(key(url), store),
            // A node keeps its lake's store, confined; a store for anything else is not kept.
            Some(scope) if key(url) == scope.key => self.insert(
                scope.key.clone(),
                Arc::new(Confined::new(store, scope.clone())),
            ),
            Some(scope) => {
                tracing::warn!(
                    "not registering an object store for {}: convlake serves only the lake at {} here",
                    key(url),
                    scope.location
                );
                None
            }
        }
    }

    fn deregister_store(&self, url: &Url) -> datafusion::error::Result<Arc<dyn ObjectStore>> {
        self.stores
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&key(url))
            .ok_or_else(|| {
                DataFusionError::Configuration(format!("no object store registered for {url}"))
            })
    }

    fn get_store(&self, url: &Url) -> datafusion::error::Result<Arc<dyn ObjectStore>> {
        let key = key(url);
        if let Some(store) = self
            .stores
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&key)
        {
            return Ok(store.clone());
        }
        if let Some(scope) = &self.lake {
            return Err(DataFusionError::Configuration(format!(
                "refused {key}: convlake serves only the lake at {} here (--lake / CONVLAKE_LAKE); a Ballista cluster reads only the lake its nodes were started with",
                scope.location
            )));
        }
        let store = store_for_url(url).map_err(|reason| {
            DataFusionError::Configuration(format!(
                "cannot open the object store for {key}: {reason}"
            ))
        })?;
        // Two tasks may race to build the same store; the first one kept wins.
        Ok(self
            .stores
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entry(key)
            .or_insert(store)
            .clone())
    }
}

/// A store that serves only the paths under the lake's prefix: every other path (a parent,
/// a sibling directory, the filesystem root) is [`object_store::Error::PermissionDenied`].
/// Paths are compared by segment, and `object_store` paths hold no `..`.
#[derive(Debug)]
pub struct Confined {
    inner: Arc<dyn ObjectStore>,
    scope: LakeScope,
}

impl Confined {
    fn new(inner: Arc<dyn ObjectStore>, scope: LakeScope) -> Confined {
        Confined { inner, scope }
    }

    fn check(&self, path: &Path) -> object_store::Result<()> {
        if path.prefix_matches(&self.scope.prefix) {
            return Ok(());
        }
        Err(object_store::Error::PermissionDenied {
            path: path.to_string(),
            source: format!(
                "outside the lake at {}, the only one this session or Ballista node reads (--lake / CONVLAKE_LAKE)",
                self.scope.location
            )
            .into(),
        })
    }

    fn refused_stream<T: Send + 'static>(
        &self,
        path: &Path,
    ) -> Option<BoxStream<'static, object_store::Result<T>>> {
        self.check(path)
            .err()
            .map(|e| futures::stream::once(async move { Err(e) }).boxed())
    }
}

impl std::fmt::Display for Confined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Confined({}, {})", self.scope.key, self.scope.prefix)
    }
}

#[async_trait::async_trait]
#[deny(clippy::missing_trait_methods)]
impl ObjectStore for Confined {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.check(location)?;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.check(location)?;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.check(location)?;
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.check(location)?;
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        let scope = self.scope.clone();
        let inner = self.inner.clone();
        let checked = locations
            .map(move |location| {
                let location = location?;
                Confined::new(inner.clone(), scope.clone()).check(&location)?;
                Ok(location)
            })
            .boxed();
        self.inner.delete_stream(checked)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let prefix = prefix.cloned().unwrap_or_default();
        match self.refused_stream(&prefix) {
            Some(refused) => refused,
            None => self.inner.list(Some(&prefix)),
        }
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let prefix = prefix.cloned().unwrap_or_default();
        match self.refused_stream(&prefix) {
            Some(refused) => refused,
            None => self.inner.list_with_offset(Some(&prefix), offset),
        }
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let prefix = prefix.cloned().unwrap_or_default();
        self.check(&prefix)?;
        self.inner.list_with_delimiter(Some(&prefix)).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.check(from)?;
        self.check(to)?;
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.check(from)?;
        self.check(to)?;
        self.inner.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_urls_share_one_store_and_unknown_schemes_are_named() {
        let stores = LakeStores::default();
        let a = stores
            .get_store(&Url::parse("file:///tmp/a/raw/").unwrap())
            .unwrap();
        let b = stores
            .get_store(&Url::parse("file:///var/lake/").unwrap())
            .unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let err = stores
            .get_store(&Url::parse("ftp://host/lake/").unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("ftp://"), "{err}");
    }

    #[test]
    fn s3_stores_are_built_per_bucket_and_registered_ones_win() {
        let stores = LakeStores::default();
        let one = stores
            .get_store(&Url::parse("s3://bucket-one/lake/raw/").unwrap())
            .unwrap();
        let again = stores
            .get_store(&Url::parse("s3://bucket-one/other/").unwrap())
            .unwrap();
        let two = stores
            .get_store(&Url::parse("s3://bucket-two/lake/").unwrap())
            .unwrap();
        assert!(Arc::ptr_eq(&one, &again));
        assert!(!Arc::ptr_eq(&one, &two));
        assert!(one.to_string().contains("bucket-one"), "{one}");

        let mine: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let url = Url::parse("s3://bucket-one/").unwrap();
        stores.register_store(&url, mine.clone());
        assert!(Arc::ptr_eq(&stores.get_store(&url).unwrap(), &mine));
    }

    /// A node serves its lake and nothing else: files inside it are read; a path outside it
    /// (a sibling directory, a parent, the filesystem root) and another scheme or bucket are
    /// refused with a message that names the lake.
    #[tokio::test]
    async fn a_node_reads_its_lake_and_refuses_every_path_outside_it() {
        use object_store::ObjectStoreExt;

        let dir = tempfile::tempdir().unwrap();
        let lake = dir.path().join("lake");
        let outside = dir.path().join("lake-other");
        std::fs::create_dir_all(lake.join("raw")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(lake.join("raw/page.parquet"), b"inside").unwrap();
        std::fs::write(outside.join("secret.txt"), b"outside").unwrap();

        let stores = LakeStores::for_lake(&lake.display().to_string()).unwrap();
        let root = lake.canonicalize().unwrap();
        assert_eq!(
            stores.lake_location(),
            Some(root.display().to_string().as_str())
        );
        let store = stores.get_store(&Url::parse("file:///").unwrap()).unwrap();
        let inside = Path::from_absolute_path(root.join("raw/page.parquet")).unwrap();
        let got = store.get(&inside).await.unwrap().bytes().await.unwrap();
        assert_eq!(&got[..], b"inside");
        let listed: Vec<_> = store
            .list(Some(&Path::from_absolute_path(root.join("raw")).unwrap()))
            .collect()
            .await;
        assert_eq!(listed.len(), 1, "{listed:?}");

        let secret =
            Path::from_absolute_path(outside.canonicalize().unwrap().join("secret.txt")).unwrap();
        for path in [secret, Path::from("etc/passwd"), Path::from("")] {
            let err = store.get(&path).await.unwrap_err().to_string();
            assert!(err.contains("outside the lake at"), "{path}: {err}");
            assert!(err.contains(&root.display().to_string()), "{path}: {err}");
            let listed: Vec<_> = store.list(Some(&path)).collect().await;
            assert!(
                matches!(
                    listed.as_slice(),
                    [Err(object_store::Error::PermissionDenied { .. })]
                ),
                "{path}: {listed:?}"
            );
            assert!(store.head(&path).await.is_err(), "{path}");
            assert!(
                store.put(&path, b"x".to_vec().into()).await.is_err(),
                "{path}"
            );
        }
        assert_eq!(
            std::fs::read(outside.join("secret.txt")).unwrap(),
            b"outside"
        );

        for other in [
            "s3://another-bucket/lake/",
            "gs://bucket/x/",
            "http://host/",
        ] {
            let err = stores
                .get_store(&Url::parse(other).unwrap())
                .unwrap_err()
                .to_string();
            assert!(err.contains("serves only the lake at"), "{other}: {err}");
        }
        // A store registered for anything else is not kept; the lake's own stays confined.
        let mine: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        stores.register_store(&Url::parse("s3://another-bucket/").unwrap(), mine);
        assert!(stores
            .get_store(&Url::parse("s3://another-bucket/").unwrap())
            .is_err());

        let missing = dir.path().join("nope");
        let err = LakeStores::for_lake(&missing.display().to_string()).unwrap_err();
        assert!(err.contains("--lake") && err.contains("nope"), "{err}");
    }

    /// An object-store lake: only its bucket, and only under its prefix (a store registered
    /// for the bucket, as `Lake::register_with` does, is confined too).
    #[tokio::test]
    async fn a_bucket_lake_is_confined_to_its_bucket_and_prefix() {
        use object_store::ObjectStoreExt;

        let stores = LakeStores::for_lake("s3://bucket-one/lake").unwrap();
        assert_eq!(stores.lake_location(), Some("s3://bucket-one/lake"));
        let bucket = Url::parse("s3://bucket-one/").unwrap();
        let memory: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        stores.register_store(&bucket, memory.clone());
        let store = stores.get_store(&bucket).unwrap();
        store
            .put(&Path::from("lake/raw/a.parquet"), b"a".to_vec().into())
            .await
            .unwrap();
        memory
            .put(&Path::from("other/b.parquet"), b"b".to_vec().into())
            .await
            .unwrap();
        assert!(store.get(&Path::from("lake/raw/a.parquet")).await.is_ok());
        for path in ["other/b.parquet", "lake-2/x", ""] {
            let err = store.get(&Path::from(path)).await.unwrap_err();
            assert!(
                matches!(err, object_store::Error::PermissionDenied { .. }),
                "{path}: {err}"
            );
            assert!(err.to_string().contains("s3://bucket-one/lake"), "{err}");
        }
        assert!(stores
            .get_store(&Url::parse("s3://bucket-two/lake/").unwrap())
            .is_err());
    }

    /// A local engine's session over a lake reads the lake and nothing beside it.
    #[tokio::test]
    async fn a_session_over_a_local_lake_reads_only_the_lake() {
        use object_store::ObjectStoreExt;

        let dir = tempfile::tempdir().unwrap();
        let lake = crate::lake::Lake::open_local(&dir.path().join("lake")).unwrap();
        std::fs::write(dir.path().join("beside.txt"), b"private").unwrap();
        let stores = LakeStores::for_lake_of(&lake).unwrap();
        let store = stores.get_store(&Url::parse("file:///").unwrap()).unwrap();
        let root = lake.local_dir().unwrap().to_path_buf();
        std::fs::write(root.join("inside.txt"), b"ok").unwrap();
        let inside = Path::from_absolute_path(root.join("inside.txt")).unwrap();
        assert!(store.get(&inside).await.is_ok());
        let beside =
            Path::from_absolute_path(dir.path().canonicalize().unwrap().join("beside.txt"))
                .unwrap();
        let err = store.get(&beside).await.unwrap_err().to_string();
        assert!(err.contains("outside the lake at"), "{err}");
        assert!(stores
            .get_store(&Url::parse("s3://bucket/").unwrap())
            .is_err());
    }
}
