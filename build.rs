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
                // Only files that exist: cargo reruns the script on every build for a missing
                // one, and that would rebuild the crate every time.
                for file in [format!(".git/{reference}"), ".git/packed-refs".to_string()] {
                    if Path::new(&file).exists() {
                        println!("cargo:rerun-if-changed={file}");
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
