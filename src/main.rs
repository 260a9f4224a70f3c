//! The `convlake` binary: parse flags, run one command, map the outcome to an exit code
//! (0 success, 1 failure, 2 usage error).

use std::process::ExitCode;

use clap::Parser;
use convlake::cli::{Cli, Command};
use convlake::lake::Lake;
use convlake::pipeline;

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

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let dict = || pipeline::load_dictionary(cli.dictionary.as_deref());
    let lake = || Lake::open(&cli.lake);
    match &cli.command {
        Command::Simulate(a) => pipeline::simulate(&dict()?, a).await,
        Command::Fetch(a) => pipeline::fetch(&lake()?, &a.source).await.map(drop),
        Command::Extract(a) => pipeline::extract_shard(&lake()?, &dict()?, a.workers, a.shard)
            .await
            .map(drop),
        Command::Aggregate(a) => {
            let engine = pipeline::engine(a)?;
            pipeline::aggregate(&lake()?, &dict()?, &engine)
                .await
                .map(drop)
        }
        Command::Sync(a) => pipeline::sync(&lake()?, &dict()?, &a.db).await.map(drop),
        Command::Migrate(a) => pipeline::migrate(a).await,
        Command::Report(a) => pipeline::report(&lake()?, &dict()?, a).await.map(drop),
        Command::Export(a) => pipeline::export(&lake()?, &dict()?, a).await,
        Command::Query(a) => pipeline::query(&lake()?, &dict()?, a).await,
        Command::Run(a) => pipeline::run_command(&lake()?, &dict()?, a).await,
        Command::Demo(a) => pipeline::demo(&lake()?, &dict()?, a).await,
        Command::Bench(a) => convlake::bench::run(a, &dict()?).await,
        Command::DiffDictionary(a) => pipeline::diff_dictionary(&lake()?, &dict()?, a).await,
        Command::Candidates(a) => pipeline::candidates(&lake()?, &dict()?, a).await,
        Command::Verify(a) => Ok(convlake::lake::verify::run(&lake()?, a.dry_run).await?),
        Command::Ballista(a) => pipeline::ballista(a).await,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
    let result = runtime.block_on(dispatch(cli));
    if std::env::var_os("CONVLAKE_REPORT_RSS").is_some() {
        // For `convlake bench`, which runs each stage as a child process.
        eprintln!("convlake-peak-rss-kb: {}", convlake::bench::peak_rss_kb());
        eprintln!("convlake-cpu-ms: {}", convlake::bench::cpu_ms());
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
