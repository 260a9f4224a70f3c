//! A private, throwaway PostgreSQL cluster for `demo`, `bench` and tests (and anyone without a
//! database at hand): `initdb` into a new directory with `scram-sha-256` authentication and a
//! random password, `pg_ctl start` on a free loopback port (as the `postgres` user when running
//! as root, through `runuser`), stopped and removed on drop.
//!
//! Invariants: the server never trusts a connection without the password (no `trust` on TCP, no
//! Unix socket); the password lives only in [`TempCluster::url`] (a [`Secret`]) and, for the
//! moment `initdb` reads it, in a 0600 file inside the cluster's 0700 directory.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::secret::Secret;

/// Errors starting the cluster; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum PgTmpError {
    #[error("no PostgreSQL server binaries (initdb, pg_ctl) on PATH or in /usr/lib/postgresql/*/bin. Install them (apt-get install postgresql) or set DATABASE_URL")]
    NotFound,
    #[error("{step} failed: {detail}")]
    Step { step: String, detail: String },
}

/// A running throwaway cluster.
pub struct TempCluster {
    bin: PathBuf,
    dir: PathBuf,
    as_postgres: bool,
    /// A connection string for it (user `postgres`, database `postgres`, with the password):
    /// hand it on through an environment variable or a connection, never print it.
    pub url: Secret,
    /// The loopback port the server listens on (127.0.0.1 only).
    pub port: u16,
    stopped: bool,
}

fn has_server_binaries(dir: &Path) -> bool {
    dir.join("initdb").is_file() && dir.join("pg_ctl").is_file()
}

/// The directory holding `initdb` and `pg_ctl`, newest version first.
pub fn find_bin_dir() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<(u32, PathBuf)> = entries
            .flatten()
            .filter_map(|e| {
                let v: u32 = e.file_name().to_str()?.parse().ok()?;
                Some((v, e.path().join("bin")))
            })
            .collect();
        versions.sort_by_key(|v| std::cmp::Reverse(v.0));
        candidates.extend(versions.into_iter().map(|(_, p)| p));
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path));
    }
    candidates.into_iter().find(|d| has_server_binaries(d))
}

fn is_root() -> bool {
    // `id -u` avoids an unsafe libc call for one number.
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> Result<u16, PgTmpError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| PgTmpError::Step {
            step: "finding a free port".into(),
            detail: e.to_string(),
        })
}

impl TempCluster {
    fn command(&self, tool: &str) -> Command {
        build_command(&self.bin, tool, self.as_postgres)
    }

    /// Creates and starts a cluster in a new directory under `parent`.
    pub fn start(parent: &Path) -> Result<TempCluster, PgTmpError> {
        Self::start_with(parent, "")
    }

    /// The directory of the cluster (its data directory is `data/` inside).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Like [`TempCluster::start`], with extra server options (`-c name=value …`).
    pub fn start_with(parent: &Path, extra_options: &str) -> Result<TempCluster, PgTmpError> {
        let bin = find_bin_dir().ok_or(PgTmpError::NotFound)?;
        let as_postgres = is_root();
        std::fs::create_dir_all(parent).map_err(|e| PgTmpError::Step {
            step: format!("creating {}", parent.display()),
            detail: e.to_string(),
        })?;
        // A new name every time, created (never reused) with mode 0700: nobody else can have
        // prepared it, even under a shared /tmp.
        let dir = parent.join(format!(
            "convlake-pg-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        private_dir(&dir)?;
        let dir = dir.canonicalize().unwrap_or(dir);
        let password = random_password();
        let pwfile = dir.join("pwfile");
        private_file(&pwfile, &password)?;
        if as_postgres {
            run(
                Command::new("chown").arg("-R").arg("postgres:").arg(&dir),
                "chown of the cluster directory to postgres",
            )?;
        }
        let port = free_port()?;
        let mut cluster = TempCluster {
            bin,
            dir,
            as_postgres,
            url: Secret::new(format!(
                "postgres://postgres:{password}@127.0.0.1:{port}/postgres"
            )),
            port,
            stopped: true,
        };
        let data = cluster.dir.join("data");
        let initdb = run(
            cluster
                .command("initdb")
                .arg("-D")
                .arg(&data)
                .arg("--auth=scram-sha-256")
                .arg(format!("--pwfile={}", pwfile.display()))
                .args(["-U", "postgres", "-E", "UTF8", "--no-sync"]),
            "initdb",
        );
        // The password is in `url` now; the file was only for initdb.
        let _ = std::fs::remove_file(&pwfile);
        if let Err(e) = initdb {
            let _ = std::fs::remove_dir_all(&cluster.dir);
            return Err(e);
        }
        // `-k ''`: no Unix socket, so every connection goes through scram on 127.0.0.1.
        let opts = format!(
            "-h 127.0.0.1 -p {port} -k '' -c password_encryption=scram-sha-256 -c fsync=off -c full_page_writes=off -c synchronous_commit=off {extra_options}"
        );
        let started = run(
            cluster
                .command("pg_ctl")
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(cluster.dir.join("server.log"))
                .args(["-o", &opts, "-w", "-t", "60", "start"]),
            "pg_ctl start",
        );
        cluster.stopped = false;
        if let Err(e) = started {
            // The server's own words are in its log, which dropping `cluster` removes (and
            // stops a half-started server).
            let log = std::fs::read_to_string(cluster.dir.join("server.log")).unwrap_or_default();
            let mut tail: Vec<&str> = log.lines().rev().take(5).collect();
            tail.reverse();
            return Err(match e {
                PgTmpError::Step { step, detail } => PgTmpError::Step {
                    step,
                    detail: format!("{detail}\n{}", tail.join("\n")),
                },
                other => other,
            });
        }
        Ok(cluster)
    }

    /// Stops the server and removes its directory.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "fast", "-w", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for TempCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// 32 random bytes as hex, from the thread's CSPRNG (ChaCha, seeded by the OS).
fn random_password() -> String {
    let (a, b) = (rand::random::<u128>(), rand::random::<u128>());
    format!("{a:032x}{b:032x}")
}

/// Creates a new directory that only its owner can enter; fails when it already exists.
fn private_dir(dir: &Path) -> Result<(), PgTmpError> {
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| PgTmpError::Step {
        step: format!("creating {}", dir.display()),
        detail: e.to_string(),
    })
}

/// Writes a new file that only its owner can read.
fn private_file(path: &Path, content: &str) -> Result<(), PgTmpError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .and_then(|mut f| f.write_all(content.as_bytes()))
        .map_err(|e| PgTmpError::Step {
            step: format!("writing the password file {}", path.display()),
            detail: e.to_string(),
        })
}

fn build_command(bin: &Path, tool: &str, as_postgres: bool) -> Command {
    if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(tool));
        c
    } else {
        Command::new(bin.join(tool))
    }
}

fn run(cmd: &mut Command, step: &str) -> Result<(), PgTmpError> {
    let out = cmd.output().map_err(|e| PgTmpError::Step {
        step: step.into(),
        detail: e.to_string(),
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(PgTmpError::Step {
            step: step.into(),
            detail: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stderr).trim(),
                String::from_utf8_lossy(&out.stdout).trim()
            ),
        })
    }
}
