//! The `convlake` binary: parse flags, run one command, map the outcome to an exit code
//! (0 success, 1 failure, 2 usage error).

use std::ffi::OsString;
use std::io::Write as _;
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};
use convlake::cli::config_file::{self, ConfigFile};
use convlake::cli::{Cli, Command};
use convlake::commands::{
    ballista, bench, curate, demo, privacy, query, report, run, simulate, stages, verify,
};
use convlake::config::{DiffConfig, ExtractConfig, GlobalConfig};
use convlake::lake::Lake;

fn init_logging(cli: &Cli) {
    let level = if cli.quiet {
        "error"
    } else {
        match cli.verbose {
            0 => "warn",
            1 => "info",
            2 => "debug",
            _ => "trace",
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("convlake={level}")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Runs the command on its settings: clap's structs end here, the commands see only
/// [`convlake::config`].
async fn dispatch(cli: Cli, lake_typed: bool) -> anyhow::Result<()> {
    let global = GlobalConfig {
        lake_typed,
        ..GlobalConfig::from(&cli)
    };
    // `extract` and `run` read the dictionary file (default data/products.toml); every later
    // stage uses the lake's current dictionary unless --dictionary is given.
    let explicit = global.dictionary.as_deref();
    let dict = || stages::load_dictionary(explicit);
    // Every command but fetch, run and demo reads an existing lake: a wrong path is an error
    // and nothing is created there.
    let existing = || Lake::open_existing(&global.lake);
    let lake = || Lake::open(&global.lake);
    let staged = |lake: &Lake, stage: &'static str, need: curate::Need| {
        let lake = lake.clone();
        async move { curate::stage_dictionary(&lake, explicit, stage, need).await }
    };
    use curate::Need::{Any, Extracted};
    match cli.command {
        Command::Simulate(a) => simulate::simulate(&dict()?, &a.into()).await,
        Command::Fetch(a) => stages::fetch(&lake()?, &a.source.into()).await.map(drop),
        Command::Extract(a) => {
            let a = ExtractConfig::from(a);
            stages::extract_shard(&existing().await?, &dict()?, a.workers, a.shard)
                .await
                .map(drop)
        }
        Command::Aggregate(a) => {
            let engine = stages::engine(&a.into())?;
            let lake = existing().await?;
            let d = staged(&lake, "aggregate", Extracted).await?;
            stages::aggregate(&lake, &d, &engine).await.map(drop)
        }
        Command::Sync(a) => {
            let lake = existing().await?;
            let d = staged(&lake, "sync", Extracted).await?;
            stages::sync(&lake, &d, &a.db.into()).await.map(drop)
        }
        Command::Migrate(a) => stages::migrate(&a.into()).await,
        Command::Report(a) => {
            let lake = existing().await?;
            let d = staged(&lake, "report", Extracted).await?;
            report::report(&lake, &d, &a.into()).await.map(drop)
        }
        Command::Export(a) => {
            let lake = existing().await?;
            let d = staged(&lake, "export", Extracted).await?;
            report::export(&lake, &d, &a.into()).await
        }
        Command::Query(a) => {
            let lake = existing().await?;
            let d = staged(&lake, "query", Any).await?;
            query::query(&lake, &d, &a.into()).await
        }
        Command::Run(a) => run::run_command(&lake()?, &dict()?, &a.into()).await,
        Command::Demo(a) => {
            // CONVLAKE_LAKE names the lake of real work: the demo never writes there.
            let spec = if global.lake_typed {
                global.lake.as_str()
            } else {
                demo::DEMO_LAKE
            };
            demo::demo(&Lake::open(spec)?, &dict()?, &a.into()).await
        }
        Command::Bench(a) => bench::run(&a.into(), &dict()?).await,
        Command::DiffDictionary(a) => {
            let a = DiffConfig::from(a);
            let lake = existing().await?;
            let d = match &a.new {
                Some(_) => dict()?,
                None => staged(&lake, "diff-dictionary", Any).await?,
            };
            curate::diff_dictionary(&lake, &d, &a).await
        }
        Command::Candidates(a) => {
            let lake = existing().await?;
            let d = staged(&lake, "candidates", Any).await?;
            curate::candidates(&lake, &d, &a.into()).await
        }
        Command::Dictionary(c) => {
            curate::dictionary_command(&existing().await?, explicit, &c.into()).await
        }
        Command::Verify(a) if a.erased => {
            let db = convlake::config::DbConfig {
                database_url: a.database_url,
                schema: a.schema,
                ..Default::default()
            };
            privacy::verify_erased(&existing().await?, &db).await
        }
        Command::Verify(a) => verify::verify_command(&existing().await?, a.dry_run).await,
        Command::Forget(a) => {
            let lake = existing().await?;
            // Not while a scheduled run fetches into the lake (it could stage them again).
            let _lock = run::lock_lake(&lake)?;
            if a.finish
                && a.conversation.is_empty()
                && a.file.is_empty()
                && a.participant_address.is_empty()
            {
                return privacy::finish(&lake, a.workers).await;
            }
            let req = privacy::ForgetRequest {
                conversations: a.conversation,
                files: a.file,
                participant_addresses: a.participant_address,
                workers: a.workers,
            };
            privacy::forget(&lake, &req).await
        }
        Command::Retain(a) => {
            let lake = existing().await?;
            let _lock = run::lock_lake(&lake)?;
            privacy::retain(&lake, a.older_than, a.dry_run, a.workers).await
        }
        Command::Ballista(a) => ballista::ballista(&a.role.into(), &global.lake).await,
        // Answered in `main` before the runtime starts (they need the parsed matches).
        Command::Config(_) | Command::Completions(_) | Command::Man(_) => Ok(()),
    }
}

/// The command tree with convlake.toml's values (when there is a file) as the defaults of its
/// arguments, and the file.
fn command_with_config(
    args: &[OsString],
) -> Result<(clap::Command, Option<ConfigFile>), config_file::ConfigError> {
    let cmd = Cli::command();
    let Some((path, by)) = config_file::find(args)? else {
        return Ok((cmd, None));
    };
    let file = ConfigFile::load(&path, &by, &cmd)?.with_run_for_config();
    Ok((file.apply(cmd), Some(file)))
}

/// `config`, `completions` and `man`: they print and exit, without logging or a runtime.
fn print_only(
    cli: &Cli,
    cmd: &clap::Command,
    matches: &clap::ArgMatches,
    file: Option<&ConfigFile>,
) -> Option<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    let written = match &cli.command {
        Command::Config(_) => {
            stdout.write_all(config_file::effective(cmd, matches, file).as_bytes())
        }
        Command::Completions(a) => convlake::cli::write_completions(a.shell, &mut stdout),
        Command::Man(a) => convlake::cli::write_man(a.dir.as_deref(), &mut stdout),
        _ => return None,
    };
    Some(match written.and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        // `convlake man | head`: the reader has what it wanted.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write the output: {e}");
            ExitCode::FAILURE
        }
    })
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let (mut cmd, file) = match command_with_config(&args) {
        Ok(found) => found,
        Err(e) => {
            // A broken settings file is a usage error, like a bad flag.
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let matches = match cmd.try_get_matches_from_mut(&args) {
        Ok(m) => m,
        Err(e) => e.exit(),
    };
    // A `${VAR}` that is not set matters only to a command that uses its setting.
    if let Some(Err(e)) = file.as_ref().map(|f| f.check_needed(&cmd, &matches)) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let lake_typed = matches.value_source("lake") == Some(ValueSource::CommandLine);
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    if let Some(code) = print_only(&cli, &cmd, &matches, file.as_ref()) {
        return code;
    }
    init_logging(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(dispatch(cli, lake_typed));
    if std::env::var_os("CONVLAKE_REPORT_RSS").is_some() {
        // For `convlake bench`, which runs each stage as a child process.
        eprintln!("convlake-peak-rss-kb: {}", bench::peak_rss_kb());
        eprintln!("convlake-cpu-ms: {}", bench::cpu_ms());
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
