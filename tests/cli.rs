//! The command line as a user meets it: `--help` of every command against its golden file
//! (tests/golden/help/<command>.txt; refresh with `CONVLAKE_BLESS=1 cargo test --test cli`),
//! `--version`, `completions`, `man`, and convlake.toml with its precedence (flag > env > file >
//! default).
//!
//! Every run clears the environment (only PATH and HOME stay), so a CONVLAKE_* or DATABASE_URL
//! of the machine never shows in help (`[env: X=value]`) or changes a setting.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use clap::CommandFactory;

/// Runs convlake in `dir` with only PATH, HOME and `env` set.
fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_convlake"));
    cmd.env_clear().current_dir(dir).args(args);
    for var in ["PATH", "HOME"] {
        if let Some(v) = std::env::var_os(var) {
            cmd.env(var, v);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("convlake runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every command path: [] for convlake itself, ["fetch"], ["ballista", "scheduler"], …
fn command_paths(cmd: &clap::Command, prefix: &[String], out: &mut Vec<Vec<String>>) {
    out.push(prefix.to_vec());
    for sub in cmd.get_subcommands() {
        let mut path = prefix.to_vec();
        path.push(sub.get_name().to_string());
        command_paths(sub, &path, out);
    }
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/help")
}

#[test]
fn help_of_every_command_matches_its_golden_file() {
    let bless = std::env::var_os("CONVLAKE_BLESS").is_some();
    let dir = golden_dir();
    let empty = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    command_paths(&convlake::cli::Cli::command(), &[], &mut paths);
    assert!(paths.len() > 20, "{paths:?}");
    if bless {
        std::fs::create_dir_all(&dir).unwrap();
    }
    let mut expected_files = Vec::new();
    let mut failures = Vec::new();
    for path in &paths {
        let name = if path.is_empty() {
            "convlake".to_string()
        } else {
            path.join("-")
        };
        let file = dir.join(format!("{name}.txt"));
        expected_files.push(file.clone());
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        // An empty working directory: no convlake.toml changes a default.
        let out = run_in(empty.path(), &args, &[]);
        assert!(out.status.success(), "convlake {args:?}: {}", stderr(&out));
        let help = stdout(&out);
        if bless {
            std::fs::write(&file, &help).unwrap();
            continue;
        }
        match std::fs::read_to_string(&file) {
            Ok(golden) if golden == help => {}
            Ok(golden) => failures.push(format!(
                "`convlake {}` differs from {}:\n--- golden\n{golden}\n--- now\n{help}",
                args.join(" "),
                file.display()
            )),
            Err(e) => failures.push(format!("{}: {e}", file.display())),
        }
    }
    // A golden file of a command that no longer exists is stale.
    for entry in std::fs::read_dir(&dir).unwrap() {
        let file = entry.unwrap().path();
        if !expected_files.contains(&file) {
            if bless {
                std::fs::remove_file(&file).unwrap();
            } else {
                failures.push(format!("{} belongs to no command", file.display()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n\nIf the change is intended, refresh the golden files: CONVLAKE_BLESS=1 cargo test --test cli",
        failures.join("\n\n")
    );
}

#[test]
fn help_does_not_show_the_environment_or_depend_on_the_terminal() {
    let empty = tempfile::tempdir().unwrap();
    let plain = stdout(&run_in(empty.path(), &["run", "--help"], &[]));
    let set = stdout(&run_in(
        empty.path(),
        &["run", "--help"],
        &[
            ("COLUMNS", "40"),
            ("GENESYS_CLIENT_SECRET", "s3cr3t-in-env"),
        ],
    ));
    assert!(!set.contains("s3cr3t-in-env"), "{set}");
    // Only the shown env value differs; the width does not follow COLUMNS.
    let width = |s: &str| s.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    assert_eq!(width(&plain), width(&set));
    assert!(width(&plain) <= 100, "{plain}");
}

#[test]
fn version_names_the_commit_or_says_unknown() {
    let empty = tempfile::tempdir().unwrap();
    let out = run_in(empty.path(), &["--version"], &[]);
    assert!(out.status.success());
    let text = stdout(&out);
    let line = text.trim_end();
    let rest = line
        .strip_prefix(&format!("convlake {} (", env!("CARGO_PKG_VERSION")))
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("not `convlake VERSION (...)`: {line:?}"));
    if rest != "unknown" {
        let (hash, date) = rest.split_once(' ').expect("commit and date");
        assert_eq!(hash.len(), 7, "{line}");
        assert!(hash.chars().all(|c| c.is_ascii_hexdigit()), "{line}");
        assert!(
            chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok(),
            "{line}"
        );
    }
}

#[test]
fn completions_and_man_name_the_commands() {
    let empty = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = run_in(empty.path(), &["completions", shell], &[]);
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        for sub in ["fetch", "aggregate", "diff-dictionary", "scheduler"] {
            assert!(script.contains(sub), "{shell} completion lacks {sub}");
        }
    }
    let bad = run_in(empty.path(), &["completions", "tcsh"], &[]);
    assert_eq!(bad.status.code(), Some(2));

    let out = run_in(empty.path(), &["man"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let page = stdout(&out);
    assert!(page.contains(".TH convlake 1"), "{page}");
    for sub in ["fetch", "run", "verify", "completions"] {
        assert!(page.contains(sub), "man page lacks {sub}");
    }

    let dir = empty.path().join("man1");
    let out = run_in(empty.path(), &["man", "--dir", dir.to_str().unwrap()], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    for page in [
        "convlake.1",
        "convlake-fetch.1",
        "convlake-ballista-executor.1",
    ] {
        let text = std::fs::read_to_string(dir.join(page)).unwrap();
        assert!(text.contains(".TH"), "{page}");
    }
}

/// The line `convlake config` prints for `key`.
fn setting<'a>(config: &'a str, key: &str) -> &'a str {
    config
        .lines()
        .find(|l| l.starts_with(&format!("{key} =")) || l.starts_with(&format!("# {key} is")))
        .unwrap_or_else(|| panic!("no {key} in:\n{config}"))
}

#[test]
fn flags_win_over_the_environment_which_wins_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("convlake.toml"),
        "lake = \"from-file\"\nclient-secret = \"file-secret-value\"\nschema = \"file_schema\"\n\n[run]\nevery = \"15m\"\n",
    )
    .unwrap();
    let file = dir.path().join("convlake.toml");
    let file = file.to_str().unwrap();

    // The file alone (found in the working directory).
    let out = run_in(dir.path(), &["config"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let c = stdout(&out);
    assert!(
        setting(&c, "lake").starts_with("lake = \"from-file\""),
        "{c}"
    );
    assert!(setting(&c, "lake").ends_with("# file convlake.toml"), "{c}");
    assert!(setting(&c, "client-secret").contains("\"***\""), "{c}");
    assert!(
        setting(&c, "client-secret").ends_with("# file convlake.toml"),
        "{c}"
    );
    assert!(setting(&c, "every").starts_with("every = \"15m\""), "{c}");
    assert!(setting(&c, "region").ends_with("# default"), "{c}");
    assert!(!c.contains("file-secret-value"), "{c}");

    // The environment over the file.
    let env = [
        ("CONVLAKE_LAKE", "from-env"),
        ("GENESYS_CLIENT_SECRET", "env-secret-value"),
    ];
    let c = stdout(&run_in(dir.path(), &["config"], &env));
    assert!(
        setting(&c, "lake").starts_with("lake = \"from-env\""),
        "{c}"
    );
    assert!(setting(&c, "lake").ends_with("# env CONVLAKE_LAKE"), "{c}");
    assert!(
        setting(&c, "client-secret").ends_with("# env GENESYS_CLIENT_SECRET"),
        "{c}"
    );
    assert!(
        setting(&c, "schema").ends_with("# file convlake.toml"),
        "{c}"
    );
    assert!(!c.contains("env-secret-value"), "{c}");

    // A flag over both, with the file named explicitly from elsewhere.
    let other = tempfile::tempdir().unwrap();
    let c = stdout(&run_in(
        other.path(),
        &[
            "--config",
            file,
            "config",
            "--lake",
            "from-flag",
            "--client-secret",
            "flag-secret-value",
        ],
        &env,
    ));
    assert!(c.starts_with(&format!("# config file: {file}")), "{c}");
    assert!(
        setting(&c, "lake").starts_with("lake = \"from-flag\""),
        "{c}"
    );
    assert!(setting(&c, "lake").ends_with("# flag"), "{c}");
    assert!(setting(&c, "client-secret").ends_with("# flag"), "{c}");
    assert!(
        setting(&c, "schema").ends_with(&format!("# file {file}")),
        "{c}"
    );
    assert!(!c.contains("flag-secret-value"), "{c}");

    // CONVLAKE_CONFIG names it too.
    let c = stdout(&run_in(
        other.path(),
        &["config"],
        &[("CONVLAKE_CONFIG", file)],
    ));
    assert!(
        setting(&c, "lake").starts_with("lake = \"from-file\""),
        "{c}"
    );
}

#[test]
fn a_secret_in_the_file_may_come_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("c.toml");
    std::fs::write(
        &f,
        "# settings\ndatabase-url = \"postgres://u:${PG_PASS}@db.example/x\"\nregion = \"${REGION}\"\n",
    )
    .unwrap();
    let f = f.to_str().unwrap();
    let out = run_in(
        dir.path(),
        &["--config", f, "config"],
        &[("PG_PASS", "pa55"), ("REGION", "eu-west-1")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let c = stdout(&out);
    assert!(
        setting(&c, "region").starts_with("region = \"eu-west-1\""),
        "{c}"
    );
    assert!(setting(&c, "database-url").contains("\"***\""), "{c}");
    assert!(!c.contains("pa55"), "{c}");

    let out = run_in(dir.path(), &["--config", f, "config"], &[("REGION", "x")]);
    assert_eq!(out.status.code(), Some(2));
    let e = stderr(&out);
    assert!(e.contains(&format!("{f}:2")), "{e}");
    assert!(e.contains("PG_PASS"), "{e}");
}

#[test]
fn a_bad_file_names_the_file_the_line_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("c.toml");
    std::fs::write(
        &f,
        "lake = \"x\"\n[fetch]\nregion = \"eu-west-1\"\nregoin = \"x\"\n",
    )
    .unwrap();
    let f = f.to_str().unwrap();
    let out = run_in(dir.path(), &["--config", f, "verify"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let e = stderr(&out);
    assert!(
        e.contains(&format!("{f}:4: unknown key `regoin` in [fetch]")),
        "{e}"
    );

    std::fs::write(dir.path().join("c.toml"), "lake = \"x\"\nlake2 = [\n").unwrap();
    let out = run_in(dir.path(), &["--config", f, "verify"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let e = stderr(&out);
    assert!(
        e.contains(&format!("{f}:")) && e.contains("not valid TOML"),
        "{e}"
    );

    let out = run_in(dir.path(), &["--config", "missing.toml", "verify"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("missing.toml"), "{}", stderr(&out));
}

#[test]
fn a_command_reads_the_file_without_flags() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("nowhere-lake");
    let f = dir.path().join("settings.toml");
    std::fs::write(&f, format!("lake = {:?}\n", lake.to_str().unwrap())).unwrap();
    let out = run_in(
        dir.path(),
        &["--config", f.to_str().unwrap(), "verify"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let e = stderr(&out);
    assert!(e.contains(&format!("no lake at {}", lake.display())), "{e}");
    assert!(!lake.exists());
}

#[test]
fn an_unset_variable_in_the_file_matters_only_to_the_commands_that_use_it() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("nowhere-lake");
    std::fs::write(
        dir.path().join("convlake.toml"),
        format!(
            "lake = {:?}\nclient-secret = \"${{GENESYS_SECRET_NOT_SET}}\"\n",
            lake.to_str().unwrap()
        ),
    )
    .unwrap();
    // Any request goes to a closed loopback port, never the internet.
    const NOWHERE: &str = "http://127.0.0.1:9";
    const FETCH_NOWHERE: &[&str] = &[
        "fetch",
        "--from",
        "2026-03-01",
        "--api-url",
        NOWHERE,
        "--login-url",
        NOWHERE,
    ];
    // `verify` has no client secret: the lake's setting is read and the secret is not asked.
    let out = run_in(dir.path(), &["verify"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("no lake at {}", lake.display())),
        "{}",
        stderr(&out)
    );
    // `fetch` would use it: a usage error naming the file, the line and the variable.
    let out = run_in(dir.path(), FETCH_NOWHERE, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let e = stderr(&out);
    assert!(
        e.contains("convlake.toml:2") && e.contains("GENESYS_SECRET_NOT_SET"),
        "{e}"
    );
    // Unless the flag or the variable of its own gives it.
    let out = run_in(
        dir.path(),
        &[FETCH_NOWHERE, &["--client-secret", "x"]].concat(),
        &[],
    );
    assert!(
        !stderr(&out).contains("GENESYS_SECRET_NOT_SET"),
        "{}",
        stderr(&out)
    );
    let out = run_in(dir.path(), FETCH_NOWHERE, &[("GENESYS_CLIENT_SECRET", "x")]);
    assert!(
        !stderr(&out).contains("GENESYS_SECRET_NOT_SET"),
        "{}",
        stderr(&out)
    );
}
