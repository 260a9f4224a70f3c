//! `convlake.toml`: an optional file that holds any setting a flag or an environment variable
//! can. Precedence: a flag, then its environment variable, then the file, then the built-in
//! default. The file's values become the defaults of clap's arguments before the command line is
//! parsed, so clap's own precedence (flag > env > default) gives exactly that order.
//!
//! Where convlake finds it: `--config FILE`, else `CONVLAKE_CONFIG`, else `convlake.toml` in the
//! working directory when there is one (none is fine). A file named by `--config` or
//! `CONVLAKE_CONFIG` must exist.
//!
//! Format: keys are the long flag names (`client-id`, or `client_id`: `_` and `-` are the same).
//! A key at the top level applies to every command that has that flag; a key under a command's
//! table (`[fetch]`, `[run]`, `[ballista.executor]`, `[bench.pipeline]`) applies to that
//! command only, and wins over a top-level one. Values are strings, numbers, booleans (for
//! switches such as `allow-empty = true`) or arrays (for lists such as `media`):
//!
//! ```toml
//! lake = "/srv/convlake/lake"
//! dictionary = "/srv/convlake/products.toml"
//! region = "eu-west-1"
//! client-id = "6d1c…"
//! client-secret = "${GENESYS_SECRET}"      # read from the environment when convlake starts
//! database-url = "${DATABASE_URL_PROD}"
//! schema = "convlake"
//! dashboard-url = "https://dash.example/api/mentions"
//! dashboard-token = "${DASH_TOKEN}"
//! media = ["voice", "chat"]
//!
//! [run]
//! every = "15m"
//! ```
//!
//! `${NAME}` anywhere in a string is replaced by the environment variable NAME, so secrets need
//! not be written into the file. A missing one is an error naming it, for a command that uses
//! the setting and gets no flag or variable of its own for it ([`ConfigFile::check_needed`]). Relative paths are relative
//! to the working directory, as on the command line. A key no command has, a table that is not a
//! command, or a malformed file is an error naming the file and the line. `convlake config`
//! prints the effective settings of `run` (which include every fetch, sync and export setting)
//! with where each came from; it sees top-level keys and those under `[run]`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgMatches, Command};

use crate::secret::Secret;

/// The file looked for in the working directory.
pub const DEFAULT_FILE: &str = "convlake.toml";
/// The environment variable that names the file.
pub const ENV: &str = "CONVLAKE_CONFIG";

/// What can be wrong with a config file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source} (it was named by {by}; fix the path or unset it)")]
    Read {
        path: PathBuf,
        by: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: not valid TOML: {message}")]
    Malformed {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}:{line}: unknown key `{key}`{context}: keys are the long flag names (see `convlake {command}--help`)")]
    UnknownKey {
        path: PathBuf,
        line: usize,
        key: String,
        context: String,
        command: String,
    },
    #[error("{path}:{line}: `{key}`: {message}")]
    BadValue {
        path: PathBuf,
        line: usize,
        key: String,
        message: String,
    },
    #[error("{path}:{line}: `{key}` refers to the environment variable {var}, which is not set: set it, or write the value into the file")]
    MissingVar {
        path: PathBuf,
        line: usize,
        key: String,
        var: String,
    },
}

/// One setting from the file: the command path it applies to (empty: every command with the
/// flag), the argument's id, and its values.
#[derive(Debug, Clone)]
struct Entry {
    scope: Vec<String>,
    id: String,
    values: Vec<String>,
    /// `(line, key, variable)` when the value names an environment variable that is not set:
    /// an error only for a command that uses the setting without a flag or variable of its own
    /// (`convlake query` does not need `client-secret = "${GENESYS_SECRET}"`).
    missing: Option<(usize, String, String)>,
}

/// A parsed config file.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    /// Where it was read from, as found.
    pub path: PathBuf,
    entries: Vec<Entry>,
}

/// Finds the config file for these command-line arguments: `--config FILE` among them, else
/// `CONVLAKE_CONFIG`, else `convlake.toml` in the working directory. `Ok(None)`: there is none.
pub fn find(args: &[OsString]) -> Result<Option<(PathBuf, String)>, ConfigError> {
    let mut named = None;
    // The flag is global, so it may follow the subcommand; `--` ends the flags.
    let mut it = args.iter().skip(1);
    while let Some(arg) = it.next() {
        let Some(text) = arg.to_str() else { continue };
        if text == "--" {
            break;
        }
        if text == "--config" {
            named = it.next().map(PathBuf::from);
        } else if let Some(v) = text.strip_prefix("--config=") {
            named = Some(PathBuf::from(v));
        }
    }
    if let Some(path) = named {
        return Ok(Some((path, "--config".to_string())));
    }
    if let Some(path) = std::env::var_os(ENV).filter(|v| !v.is_empty()) {
        return Ok(Some((PathBuf::from(path), ENV.to_string())));
    }
    let here = PathBuf::from(DEFAULT_FILE);
    Ok(here
        .is_file()
        .then(|| (here, "the working directory".to_string())))
}

/// Line (1-based) of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

impl ConfigFile {
    /// Reads and checks the file against `cmd` (the unparsed command tree): every key must name
    /// a flag of the command whose table it is in, or of some command when at the top level.
    pub fn load(path: &Path, by: &str, cmd: &Command) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            by: by.to_string(),
            source,
        })?;
        Self::parse(path, &text, cmd)
    }

    /// [`ConfigFile::load`] on text already read.
    pub fn parse(path: &Path, text: &str, cmd: &Command) -> Result<Self, ConfigError> {
        let doc = toml_edit::ImDocument::parse(text).map_err(|e| ConfigError::Malformed {
            path: path.to_path_buf(),
            line: e.span().map_or(1, |s| line_of(text, s.start)),
            message: e.message().trim().to_string(),
        })?;
        let mut file = ConfigFile {
            path: path.to_path_buf(),
            entries: Vec::new(),
        };
        file.read_table(text, doc.as_table(), &[], cmd)?;
        Ok(file)
    }

    fn read_table(
        &mut self,
        text: &str,
        table: &dyn toml_edit::TableLike,
        scope: &[String],
        cmd: &Command,
    ) -> Result<(), ConfigError> {
        for (name, item) in table.iter() {
            let line = table
                .get_key_value(name)
                .and_then(|(k, _)| k.span())
                .map_or(1, |s| line_of(text, s.start));
            let key = name.replace('_', "-");
            if let Some(sub) = item.as_table_like() {
                let found = cmd_at(cmd, scope).is_some_and(|c| c.find_subcommand(&key).is_some());
                if !found || key == "help" {
                    return Err(self.unknown(line, name, scope, "(not a command)"));
                }
                let mut inner = scope.to_vec();
                inner.push(key);
                self.read_table(text, sub, &inner, cmd)?;
                continue;
            }
            let id = if scope.is_empty() {
                anywhere(cmd, &key)
            } else {
                cmd_at(cmd, scope).and_then(|c| settable(c, &key))
            };
            let Some(id) = id else {
                return Err(self.unknown(line, name, scope, ""));
            };
            let (values, missing) = match self.values(line, name, item) {
                Ok(values) => (values, None),
                Err(ConfigError::MissingVar { line, key, var, .. }) => {
                    (Vec::new(), Some((line, key, var)))
                }
                Err(e) => return Err(e),
            };
            self.entries.push(Entry {
                scope: scope.to_vec(),
                id,
                values,
                missing,
            });
        }
        Ok(())
    }

    fn unknown(&self, line: usize, name: &str, scope: &[String], what: &str) -> ConfigError {
        let (context, command) = if scope.is_empty() {
            (format!(" {what}").trim_end().to_string(), String::new())
        } else {
            let table = scope.join(".");
            (
                format!(" in [{table}] {what}").trim_end().to_string(),
                format!("{} ", scope.join(" ")),
            )
        };
        ConfigError::UnknownKey {
            path: self.path.clone(),
            line,
            key: name.to_string(),
            context,
            command,
        }
    }

    fn values(
        &self,
        line: usize,
        key: &str,
        item: &toml_edit::Item,
    ) -> Result<Vec<String>, ConfigError> {
        let bad = |message: &str| ConfigError::BadValue {
            path: self.path.clone(),
            line,
            key: key.to_string(),
            message: message.to_string(),
        };
        let Some(value) = item.as_value() else {
            return Err(bad("expected a string, number, boolean or array"));
        };
        let scalar = |v: &toml_edit::Value| -> Result<String, ConfigError> {
            match v {
                toml_edit::Value::String(s) => self.expand(line, key, s.value()),
                toml_edit::Value::Integer(i) => Ok(i.value().to_string()),
                toml_edit::Value::Float(f) => Ok(f.value().to_string()),
                toml_edit::Value::Boolean(b) => Ok(b.value().to_string()),
                toml_edit::Value::Datetime(d) => Ok(d.value().to_string()),
                _ => Err(bad("expected a string, number or boolean")),
            }
        };
        match value {
            toml_edit::Value::Array(a) => a.iter().map(scalar).collect(),
            v => Ok(vec![scalar(v)?]),
        }
    }

    /// Replaces every `${NAME}` with the environment variable NAME.
    fn expand(&self, line: usize, key: &str, s: &str) -> Result<String, ConfigError> {
        let mut out = String::new();
        let mut rest = s;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                return Err(ConfigError::BadValue {
                    path: self.path.clone(),
                    line,
                    key: key.to_string(),
                    message: "`${` without a closing `}`".to_string(),
                });
            };
            let var = &after[..end];
            match std::env::var(var) {
                Ok(v) => out.push_str(&v),
                Err(_) => {
                    return Err(ConfigError::MissingVar {
                        path: self.path.clone(),
                        line,
                        key: key.to_string(),
                        var: var.to_string(),
                    })
                }
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// `cmd` with the file's values as the defaults of its arguments.
    pub fn apply(&self, cmd: Command) -> Command {
        self.apply_at(cmd, &[])
    }

    fn apply_at(&self, mut cmd: Command, path: &[String]) -> Command {
        // Top-level keys first, then the command's own table, which wins.
        let own = self
            .entries
            .iter()
            .filter(|e| e.scope.is_empty())
            .chain(self.entries.iter().filter(|e| e.scope == path));
        for entry in own.filter(|e| e.missing.is_none()) {
            if !cmd.get_arguments().any(|a| a.get_id() == entry.id.as_str()) {
                continue;
            }
            let values = entry.values.clone();
            cmd = cmd.mut_arg(&entry.id, |arg| {
                // A secret's value must not appear in `--help` as its default.
                let secret = arg.is_hide_env_values_set();
                let arg = arg.required(false).default_values(values);
                if secret {
                    arg.hide_default_value(true)
                } else {
                    arg
                }
            });
        }
        let names: Vec<String> = cmd
            .get_subcommands()
            .map(|s| s.get_name().to_string())
            .collect();
        for name in names {
            let mut inner = path.to_vec();
            inner.push(name.clone());
            cmd = cmd.mut_subcommand(&name, |sub| self.apply_at(sub, &inner));
        }
        cmd
    }

    /// The error for a setting the parsed command needs whose `${VAR}` is not set: the command
    /// has the argument, the file sets it for that command, and neither a flag nor the
    /// argument's own environment variable gave it a value.
    pub fn check_needed(&self, cmd: &Command, matches: &ArgMatches) -> Result<(), ConfigError> {
        let mut path: Vec<String> = Vec::new();
        let mut level = Some((cmd, matches));
        while let Some((c, m)) = level {
            for e in &self.entries {
                let Some((line, key, var)) = &e.missing else {
                    continue;
                };
                let applies = e.scope.is_empty() || e.scope == path;
                if !applies || !c.get_arguments().any(|a| a.get_id() == e.id.as_str()) {
                    continue;
                }
                let given = matches!(
                    m.value_source(&e.id),
                    Some(ValueSource::CommandLine | ValueSource::EnvVariable)
                );
                if !given {
                    return Err(ConfigError::MissingVar {
                        path: self.path.clone(),
                        line: *line,
                        key: key.clone(),
                        var: var.clone(),
                    });
                }
            }
            level = m
                .subcommand()
                .and_then(|(name, sub)| Some((c.find_subcommand(name)?, sub)));
            if let Some((c, _)) = level {
                path.push(c.get_name().to_string());
            }
        }
        Ok(())
    }

    /// Whether the file sets argument `id` of the command at `path`.
    pub fn sets(&self, path: &[&str], id: &str) -> bool {
        self.entries.iter().any(|e| {
            e.id == id
                && (e.scope.is_empty()
                    || e.scope.iter().map(String::as_str).eq(path.iter().copied()))
        })
    }

    /// `[run]`'s entries, applied to `config` as well (see the module doc).
    pub fn with_run_for_config(mut self) -> Self {
        let extra: Vec<Entry> = self
            .entries
            .iter()
            .filter(|e| e.scope == ["run"])
            .map(|e| Entry {
                scope: vec!["config".to_string()],
                ..e.clone()
            })
            .collect();
        self.entries.extend(extra);
        self
    }
}

/// The text `convlake config` prints: every setting of `run` and the global ones, as TOML one
/// could paste into a config file, each followed by where its value came from (`flag`, `env
/// NAME`, `file PATH`, `default`); secrets masked. `cmd` is the command the matches came from
/// (with the file applied, and built: parsed with `try_get_matches_from_mut`).
pub fn effective(cmd: &Command, matches: &ArgMatches, file: Option<&ConfigFile>) -> String {
    let mut out = match file {
        Some(f) => format!("# config file: {}\n", f.path.display()),
        None => format!(
            "# no config file (--config FILE, {ENV}, or {DEFAULT_FILE} in the working directory)\n"
        ),
    };
    let mut lines = Vec::new();
    for arg in cmd.get_arguments() {
        lines.extend(setting(arg, matches, &[], file));
    }
    if let (Some(("config", sub)), Some(sub_cmd)) =
        (matches.subcommand(), cmd.find_subcommand("config"))
    {
        // The global arguments were propagated into it: print them once.
        let global = |id: &clap::Id| cmd.get_arguments().any(|a| a.get_id() == id);
        for arg in sub_cmd.get_arguments().filter(|a| !global(a.get_id())) {
            lines.extend(setting(arg, sub, &["config"], file));
        }
    }
    let width = lines
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0);
    for (line, source) in lines {
        let pad = width - line.chars().count();
        out.push_str(&format!("{line}{:pad$}  # {source}\n", ""));
    }
    out
}

fn setting(
    arg: &clap::Arg,
    matches: &ArgMatches,
    path: &[&str],
    file: Option<&ConfigFile>,
) -> Option<(String, String)> {
    let id = arg.get_id().as_str();
    let long = arg.get_long()?;
    // Verbosity is a property of one invocation, not a setting worth listing.
    if NOT_SETTINGS.contains(&id) || matches!(id, "verbose" | "quiet") {
        return None;
    }
    let env_name = || {
        arg.get_env()
            .map_or_else(String::new, |e| e.to_string_lossy().into_owned())
    };
    let source = match matches.value_source(id) {
        Some(ValueSource::CommandLine) => "flag".to_string(),
        Some(ValueSource::EnvVariable) => format!("env {}", env_name()),
        Some(ValueSource::DefaultValue) => match file {
            Some(f) if f.sets(path, id) => format!("file {}", f.path.display()),
            _ => "default".to_string(),
        },
        _ => "default".to_string(),
    };
    let values: Vec<String> = match matches.try_get_raw(id) {
        Ok(Some(raw)) => raw
            .map(|v| {
                let v = v.to_string_lossy().into_owned();
                if arg.is_hide_env_values_set() {
                    Secret::new(v).to_string()
                } else {
                    v
                }
            })
            .collect(),
        _ => Vec::new(),
    };
    let quoted: Vec<String> = values.iter().map(|v| toml_string(v)).collect();
    let line = match quoted.len() {
        0 => format!("# {long} is not set"),
        1 if !matches!(arg.get_action(), clap::ArgAction::Append) => {
            format!("{long} = {}", quoted[0])
        }
        _ => format!("{long} = [{}]", quoted.join(", ")),
    };
    Some((line, source))
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    toml_edit::Value::from(s).to_string().trim().to_string()
}

/// The command at `path` under `cmd`.
fn cmd_at<'a>(cmd: &'a Command, path: &[String]) -> Option<&'a Command> {
    path.iter()
        .try_fold(cmd, |c, name| c.find_subcommand(name.as_str()))
}

/// Flags that exist on the command line only: a file cannot set them and `config` does not list
/// them.
const NOT_SETTINGS: &[&str] = &["help", "version", "config"];

/// The id of `cmd`'s argument whose long flag is `long`, when a file may set it.
fn settable(cmd: &Command, long: &str) -> Option<String> {
    cmd.get_arguments()
        .find(|a| a.get_long() == Some(long))
        .map(|a| a.get_id().as_str())
        .filter(|id| !NOT_SETTINGS.contains(id))
        .map(str::to_string)
}

/// The id of the argument with long flag `long` in `cmd` or any command under it.
fn anywhere(cmd: &Command, long: &str) -> Option<String> {
    settable(cmd, long).or_else(|| cmd.get_subcommands().find_map(|s| anywhere(s, long)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd() -> Command {
        Command::new("t")
            .arg(
                clap::Arg::new("lake")
                    .long("lake")
                    .default_value("data/lake"),
            )
            .subcommand(
                Command::new("fetch")
                    .arg(clap::Arg::new("region").long("region"))
                    .arg(clap::Arg::new("client_id").long("client-id")),
            )
            .subcommand(Command::new("run").arg(clap::Arg::new("region").long("region")))
    }

    #[test]
    fn a_command_table_wins_over_the_top_level() {
        let f = ConfigFile::parse(
            Path::new("c.toml"),
            "region = \"a\"\n[fetch]\nregion = \"b\"\nclient_id = \"x\"\n",
            &cmd(),
        )
        .unwrap();
        let m = f.apply(cmd()).try_get_matches_from(["t", "fetch"]).unwrap();
        let (_, sub) = m.subcommand().unwrap();
        assert_eq!(sub.get_one::<String>("region").unwrap(), "b");
        assert_eq!(sub.get_one::<String>("client_id").unwrap(), "x");
        let m = f.apply(cmd()).try_get_matches_from(["t", "run"]).unwrap();
        let (_, sub) = m.subcommand().unwrap();
        assert_eq!(sub.get_one::<String>("region").unwrap(), "a");
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let e = ConfigFile::parse(Path::new("c.toml"), "lake = \"x\"\n\nnope = 1\n", &cmd())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("c.toml:3: unknown key `nope`"), "{e}");
        let e = ConfigFile::parse(Path::new("c.toml"), "[run]\nclient-id = \"x\"\n", &cmd())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("c.toml:2: unknown key `client-id` in [run]"),
            "{e}"
        );
        let e = ConfigFile::parse(Path::new("c.toml"), "lake = \n", &cmd())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("c.toml:1: not valid TOML"), "{e}");
        let e = ConfigFile::parse(Path::new("c.toml"), "[nope]\nx = 1\n", &cmd())
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown key `nope` (not a command)"), "{e}");
    }
}
