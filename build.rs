//! Puts the git commit and its date into `convlake --version` (`CONVLAKE_VERSION`), e.g.
//! `0.1.0 (abc1234 2026-12-02)`, or `0.1.0 (unknown)` outside a git checkout or without git.
//! It never fails the build: every git error means "unknown".

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_string())
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let git_dir = Path::new(".git");
    let mut commit = None;
    if git_dir.exists() {
        // A new commit moves the ref HEAD points to (or HEAD itself when detached).
        println!("cargo:rerun-if-changed=.git/HEAD");
        if let Ok(head) = std::fs::read_to_string(git_dir.join("HEAD")) {
            if let Some(reference) = head.trim().strip_prefix("ref: ") {
                // The branch's ref is a loose file or a line of packed-refs. A loose file that
                // does not exist yet (the ref is packed until the next commit writes it) is
                // watched through its directory, whose listing changes when it appears: cargo
                // reruns the script on every build for a missing file, which would rebuild the
                // crate every time.
                let loose = format!(".git/{reference}");
                let dir = Path::new(&loose).parent().map(Path::to_path_buf);
                let watched = [Some(Path::new(&loose).to_path_buf()), dir]
                    .into_iter()
                    .flatten()
                    .chain([git_dir.join("packed-refs")]);
                for file in watched {
                    if file.exists() {
                        println!("cargo:rerun-if-changed={}", file.display());
                    }
                }
            }
        }
        commit = git(&["rev-parse", "--short=7", "HEAD"]).and_then(|hash| {
            let date = git(&["log", "-1", "--format=%cs", "HEAD"])?;
            Some(format!("{hash} {date}"))
        });
    }
    let version = env!("CARGO_PKG_VERSION");
    let commit = commit.unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=CONVLAKE_VERSION={version} ({commit})");
}
