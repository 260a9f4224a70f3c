//! The connection target: a connection string (a secret) and a schema, with convlake's TLS
//! settings split off. Messages name the database without its password; over TLS the server
//! certificate is always verified (webpki roots, plus `sslrootcert` when given).

use std::fmt;

use tokio_postgres::{Client, Config, NoTls};

use super::SyncError;
use crate::secret::Secret;

/// Where to sync: a connection string (a secret: it may hold a password) and a schema.
#[derive(Clone)]
pub struct Target {
    url: Secret,
    config: Config,
    schema: String,
    /// `sslrootcert`: an extra CA certificate (PEM) to trust besides the webpki roots.
    tls_root: Option<std::path::PathBuf>,
    /// TLS through rustls when `sslmode` is `require`, `verify-ca` or `verify-full`; the server
    /// certificate is always verified.
    use_tls: bool,
}

/// Splits convlake's TLS settings off a connection string: tokio-postgres knows `sslmode`
/// `disable|prefer|require` only, and not `sslrootcert`. Returns (string for tokio-postgres,
/// TLS wanted, root certificate file).
fn split_tls(conn: &str) -> (String, bool, Option<std::path::PathBuf>) {
    let mut want = false;
    let mut root = None;
    let mut mode = |v: &str| -> &'static str {
        match v {
            "require" | "verify-ca" | "verify-full" => {
                want = true;
                "require"
            }
            "disable" => "disable",
            _ => "prefer",
        }
    };
    if conn.starts_with("postgres://") || conn.starts_with("postgresql://") {
        let Ok(mut url) = url::Url::parse(conn) else {
            return (conn.to_string(), false, None);
        };
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let mut kept = Vec::new();
        for (k, v) in pairs {
            match k.as_str() {
                "sslrootcert" => root = Some(std::path::PathBuf::from(v)),
                "sslmode" => kept.push((k, mode(&v).to_string())),
                _ => kept.push((k, v)),
            }
        }
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(kept);
        }
        return (url.to_string(), want, root);
    }
    let mut parts = Vec::new();
    for token in conn.split_whitespace() {
        match token.split_once('=') {
            Some(("sslrootcert", v)) => root = Some(std::path::PathBuf::from(v)),
            Some(("sslmode", v)) => parts.push(format!("sslmode={}", mode(v))),
            _ => parts.push(token.to_string()),
        }
    }
    (parts.join(" "), want, root)
}

fn rustls_connector(
    root: Option<&std::path::Path>,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = root {
        let pem = std::fs::read(path)
            .map_err(|e| format!("cannot read sslrootcert {}: {e}", path.display()))?;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert =
                cert.map_err(|e| format!("{} is not a PEM certificate: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("{} holds an unusable certificate: {e}", path.display()))?;
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Target({})", self.describe())
    }
}

impl Target {
    /// Parses a connection string (URL or key=value form) and checks the schema name.
    pub fn new(url: Secret, schema: &str) -> Result<Target, SyncError> {
        let (plain, use_tls, tls_root) = split_tls(url.expose());
        let config: Config = plain
            .parse()
            .map_err(|e: tokio_postgres::Error| SyncError::BadUrl(e.to_string()))?;
        let ok = schema
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && schema
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            && schema.len() <= 63;
        if !ok {
            return Err(SyncError::BadSchema(schema.to_string()));
        }
        Ok(Target {
            url,
            config,
            schema: schema.to_string(),
            tls_root,
            use_tls,
        })
    }

    /// `user@host:port/db (schema s)`, never the password.
    pub fn describe(&self) -> String {
        format!(
            "{}@{} (schema {})",
            self.config.get_user().unwrap_or("?"),
            self.database(),
            self.schema
        )
    }

    /// `host:port/db`: the database without user or password, as the `synced` event records it.
    pub fn database(&self) -> String {
        let host = self
            .config
            .get_hosts()
            .first()
            .map(|h| match h {
                tokio_postgres::config::Host::Tcp(s) => s.clone(),
                #[cfg(unix)]
                tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
            })
            .unwrap_or_else(|| "localhost".into());
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        format!(
            "{}:{}/{}",
            host,
            port,
            self.config.get_dbname().unwrap_or("?")
        )
    }

    /// The schema the tables live in.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    pub(super) fn db_err(&self, step: &str) -> impl Fn(tokio_postgres::Error) -> SyncError + '_ {
        let step = step.to_string();
        move |e| SyncError::Db {
            target: self.describe(),
            step: step.clone(),
            reason: pg_reason(&e),
        }
    }

    /// Connects, with `search_path` set to the schema (created if missing).
    pub async fn connect(&self) -> Result<Client, SyncError> {
        let mut config = self.config.clone();
        if config.get_application_name().is_none() {
            // Lets operators find convlake's sessions in pg_stat_activity.
            config.application_name("convlake");
        }
        let connect_err = |reason: String| SyncError::Connect {
            target: self.describe(),
            reason,
        };
        let client = if self.use_tls {
            let tls = rustls_connector(self.tls_root.as_deref()).map_err(connect_err)?;
            let (client, connection) = config
                .connect(tls)
                .await
                .map_err(|e| connect_err(pg_reason(&e)))?;
            drive(connection);
            client
        } else {
            let (client, connection) = config
                .connect(NoTls)
                .await
                .map_err(|e| connect_err(pg_reason(&e)))?;
            drive(connection);
            client
        };
        let q = format!(
            "CREATE SCHEMA IF NOT EXISTS \"{0}\"; SET search_path TO \"{0}\"",
            self.schema
        );
        client
            .batch_execute(&q)
            .await
            .map_err(self.db_err("selecting the schema"))?;
        let _ = &self.url; // the secret stays here, only `config` is used to connect
        Ok(client)
    }

    pub(super) fn lock_key(&self) -> i64 {
        let h = blake3::hash(format!("convlake-sync:{}", self.schema).as_bytes());
        let mut b = [0u8; 8];
        b.copy_from_slice(&h.as_bytes()[..8]);
        i64::from_le_bytes(b)
    }
}

/// Runs a connection's I/O in the background until it closes.
fn drive<S, T>(connection: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %pg_reason(&e), "PostgreSQL connection closed");
        }
    });
}

fn pg_reason(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(inner) = src {
                s.push_str(": ");
                s.push_str(&inner.to_string());
                src = inner.source();
            }
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_hide_the_password() {
        let t = Target::new(
            Secret::new("postgres://alice:s3cret@db.example:6543/analytics"),
            "convlake",
        )
        .unwrap();
        let d = format!("{} {:?}", t.describe(), t);
        assert!(!d.contains("s3cret"), "{d}");
        assert!(d.contains("alice@db.example:6543/analytics"), "{d}");
        assert_eq!(t.database(), "db.example:6543/analytics");
    }

    #[test]
    fn tls_settings_are_split_off() {
        let (u, tls, root) =
            split_tls("postgres://u:p@h:5/db?sslmode=verify-full&sslrootcert=/ca.pem");
        assert_eq!(u, "postgres://u:p@h:5/db?sslmode=require");
        assert!(tls);
        assert_eq!(root.as_deref(), Some(std::path::Path::new("/ca.pem")));
        let (u, tls, root) = split_tls("postgres://u@h/db");
        assert_eq!(u, "postgres://u@h/db");
        assert!(!tls && root.is_none());
        let (u, tls, _) = split_tls("host=h user=u sslmode=require sslrootcert=/x");
        assert_eq!(u, "host=h user=u sslmode=require");
        assert!(tls);
    }

    #[test]
    fn schema_names_are_checked() {
        let url = || Secret::new("postgres://u@h/d");
        assert!(Target::new(url(), "public").is_ok());
        assert!(Target::new(url(), "t_01").is_ok());
        assert!(matches!(
            Target::new(url(), "a;drop"),
            Err(SyncError::BadSchema(_))
        ));
        assert!(matches!(
            Target::new(url(), ""),
            Err(SyncError::BadSchema(_))
        ));
    }
}
