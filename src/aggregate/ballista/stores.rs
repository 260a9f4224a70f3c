//! The object stores a Ballista node reads the lake through: one registry, shared by the
//! client, the scheduler (which lists files while planning) and every executor (which reads
//! them), that builds a store for a URL it has not seen from the URL and the environment.
//!
//! `file://` lakes need the same path on every node (a shared mount); `s3://` lakes take their
//! endpoint and credentials from the usual `AWS_*` variables (`AWS_ENDPOINT_URL`,
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ALLOW_HTTP`), `gs://` from
//! `GOOGLE_*` and `az://` from `AZURE_*`, so each node is configured by its own environment.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use datafusion::error::DataFusionError;
use datafusion::execution::object_store::ObjectStoreRegistry;
use object_store::local::LocalFileSystem;
use object_store::ObjectStore;
use url::Url;

/// Object stores by `scheme://authority`, built on first use (see the module docs).
#[derive(Debug, Default)]
pub struct LakeStores {
    stores: RwLock<HashMap<String, Arc<dyn ObjectStore>>>,
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

impl ObjectStoreRegistry for LakeStores {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.stores
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(key(url), store)
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
}
