//! Flags into plain settings ([`crate::config`]): conversions that cannot fail and do no I/O.
//! Every check that can fail runs later, where the command uses the setting.

use super::*;
use crate::config::{
    self, AggregateConfig, CandidatesConfig, DashboardConfig, DbConfig, DemoConfig,
    DictionaryAction, DiffConfig, ExecutorConfig, ExportConfig, ExtractBenchConfig, ExtractConfig,
    FetchConfig, GenesysConfig, PipelineBenchConfig, QueryConfig, ReportConfig, RunConfig,
    SchedulerConfig, SimulateConfig, SyncBenchConfig,
};
use crate::simulator::{Lengths, Scenario};

impl From<Source> for config::Source {
    fn from(s: Source) -> Self {
        match s {
            Source::Analytics => config::Source::Analytics,
            Source::Archive => config::Source::Archive,
        }
    }
}

impl From<ListingArg> for config::Listing {
    fn from(l: ListingArg) -> Self {
        match l {
            ListingArg::Jobs => config::Listing::Jobs,
            ListingArg::Query => config::Listing::Query,
        }
    }
}

impl From<EngineArg> for config::Engine {
    fn from(e: EngineArg) -> Self {
        match e {
            EngineArg::Local => config::Engine::Local,
            EngineArg::Ballista => config::Engine::Ballista,
        }
    }
}

impl From<Facet> for config::Facet {
    fn from(f: Facet) -> Self {
        match f {
            Facet::None => config::Facet::None,
            Facet::InteractionType => config::Facet::InteractionType,
        }
    }
}

impl From<Format> for config::Format {
    fn from(f: Format) -> Self {
        match f {
            Format::Table => config::Format::Table,
            Format::Csv => config::Format::Csv,
            Format::Json => config::Format::Json,
            Format::Parquet => config::Format::Parquet,
        }
    }
}

impl From<LengthsArg> for Lengths {
    fn from(l: LengthsArg) -> Self {
        match l {
            LengthsArg::Short => Lengths::Short,
            LengthsArg::Realistic => Lengths::Realistic,
        }
    }
}

impl From<ScenarioArg> for Scenario {
    fn from(s: ScenarioArg) -> Self {
        match s {
            ScenarioArg::Flat => Scenario::Flat,
            ScenarioArg::OutageAndLaunch => Scenario::OutageAndLaunch,
        }
    }
}

impl From<&Cli> for config::GlobalConfig {
    fn from(c: &Cli) -> Self {
        config::GlobalConfig {
            lake: c.lake.clone(),
            dictionary: c.dictionary.clone(),
            // Set by `main`, which sees where the value came from.
            lake_typed: false,
        }
    }
}

impl From<SourceArgs> for FetchConfig {
    fn from(a: SourceArgs) -> Self {
        FetchConfig {
            source: a.source.into(),
            from: a.from,
            to: a.to,
            media: a.media,
            region: a.genesys.region,
            api_url: a.genesys.api_url,
            login_url: a.genesys.login_url,
            client_id: a.genesys.client_id,
            client_secret: a.genesys.client_secret,
            page_size: a.page_size,
            batch_size: a.batch_size,
            max_attempts: a.genesys.max_attempts,
            timeout: a.genesys.timeout,
            listing: a.listing.into(),
            interval_days: a.interval_days,
            concurrency: a.concurrency,
            since_last: a.since_last,
            lateness: a.lateness,
            transcript_grace: a.transcript_grace,
            job_poll_max: a.job_poll_max,
            not_ready_attempts: a.not_ready_attempts,
            not_ready_wait: a.not_ready_wait,
            job_timeout: a.job_timeout,
            mask: match a.mask {
                MaskArg::None => crate::config::Mask::None,
                MaskArg::Pii => crate::config::Mask::Pii,
            },
            masks: a.masks,
            restore: a.restore,
        }
    }
}

impl From<GenesysArgs> for GenesysConfig {
    fn from(a: GenesysArgs) -> Self {
        GenesysConfig {
            region: a.region,
            api_url: a.api_url,
            login_url: a.login_url,
            client_id: a.client_id,
            client_secret: a.client_secret,
            max_attempts: a.max_attempts,
            timeout: a.timeout,
        }
    }
}

impl From<ExtractArgs> for ExtractConfig {
    fn from(a: ExtractArgs) -> Self {
        ExtractConfig {
            workers: a.workers,
            shard: a.shard,
        }
    }
}

impl From<AggregateArgs> for AggregateConfig {
    fn from(a: AggregateArgs) -> Self {
        AggregateConfig {
            engine: a.engine.into(),
            scheduler: a.scheduler,
        }
    }
}

impl From<DbArgs> for DbConfig {
    fn from(a: DbArgs) -> Self {
        DbConfig {
            database_url: a.database_url,
            schema: a.schema,
            wait: a.wait,
            allow_empty: a.allow_empty,
        }
    }
}

impl From<DashboardArgs> for DashboardConfig {
    fn from(a: DashboardArgs) -> Self {
        DashboardConfig {
            dashboard_url: a.dashboard_url,
            dashboard_token: a.dashboard_token,
        }
    }
}

impl From<ReportArgs> for ReportConfig {
    fn from(a: ReportArgs) -> Self {
        ReportConfig {
            out: a.out,
            top: a.top,
            from: a.from,
            to: a.to,
            product: a.product,
            interaction_type: a.interaction_type,
            by: a.by.into(),
            examples: a.examples,
        }
    }
}

impl From<ExportArgs> for ExportConfig {
    fn from(a: ExportArgs) -> Self {
        ExportConfig {
            dashboard: a.dashboard.into(),
            dry_run: a.dry_run,
            out: a.out,
        }
    }
}

impl From<QueryArgs> for QueryConfig {
    fn from(a: QueryArgs) -> Self {
        QueryConfig {
            sql: a.sql,
            file: a.file,
            saved: a.saved,
            list: a.list,
            format: a.format.into(),
            output: a.output,
        }
    }
}

impl From<RunArgs> for RunConfig {
    fn from(a: RunArgs) -> Self {
        RunConfig {
            fetch: a.source.into(),
            db: a.db.into(),
            dashboard: a.dashboard.into(),
            workers: a.workers,
            every: a.every,
            retention: a.retention,
            report: ReportConfig::default(),
        }
    }
}

impl From<DemoArgs> for DemoConfig {
    fn from(a: DemoArgs) -> Self {
        DemoConfig {
            conversations: a.conversations,
            days: a.days,
            seed: a.seed,
            scenario: a.scenario.into(),
        }
    }
}

impl From<SimulateArgs> for SimulateConfig {
    fn from(a: SimulateArgs) -> Self {
        SimulateConfig {
            traffic: Traffic {
                callback_rate: a.callbacks,
                transfer_rate: a.transfers,
                sta_permission: !a.no_sta_permission,
                gone_rate: a.gone,
                archived_rate: a.archived,
                recording_error_rate: a.recording_errors,
                late_rate: a.late,
                late_for_secs: a.late_for,
                ongoing_rate: a.ongoing,
                duplicate_recording_rate: a.duplicate_recordings,
                oauth_errors: !a.api_login_errors,
                transcript_url_rate_limit: a.transcript_url_rate_limit,
            },
            port: a.port,
            raw_pii: a.raw_pii,
            conversations: a.conversations,
            start: a.start,
            days: a.days,
            seed: a.seed,
            client_id: a.client_id,
            client_secret: a.client_secret,
            fail_429: a.fail_429,
            fail_500: a.fail_500,
            drop_connections: a.drop_connections,
            slow: a.slow,
            slow_ms: a.slow_ms,
            rate_limit: a.rate_limit,
            token_ttl: a.token_ttl,
            revoke_tokens_after: a.revoke_tokens_after,
            untranscribed: a.untranscribed,
            lengths: a.lengths.into(),
            scenario: a.scenario.into(),
            not_ready: a.not_ready,
            not_ready_for: a.not_ready_for,
            job_polls: a.job_polls,
            max_query_days: a.max_query_days,
            transcript_url_ttl: a.transcript_url_ttl,
        }
    }
}

impl From<DiffArgs> for DiffConfig {
    fn from(a: DiffArgs) -> Self {
        DiffConfig {
            old: a.old,
            new: a.new,
            examples: a.examples,
        }
    }
}

impl From<CandidatesArgs> for CandidatesConfig {
    fn from(a: CandidatesArgs) -> Self {
        CandidatesConfig {
            min_count: a.min_count,
            limit: a.limit,
        }
    }
}

impl From<DictionaryCommand> for DictionaryAction {
    fn from(c: DictionaryCommand) -> Self {
        match c {
            DictionaryCommand::List => DictionaryAction::List,
            DictionaryCommand::Show { version } => DictionaryAction::Show { version },
            DictionaryCommand::Use { version } => DictionaryAction::Use { version },
            DictionaryCommand::Push {
                dialect,
                dry_run,
                genesys,
            } => DictionaryAction::Push {
                dialect,
                dry_run,
                genesys: genesys.into(),
            },
        }
    }
}

impl From<SchedulerArgs> for SchedulerConfig {
    fn from(a: SchedulerArgs) -> Self {
        SchedulerConfig {
            bind: a.bind,
            external_host: a.external_host,
            min_executors: a.min_executors,
        }
    }
}

impl From<ExecutorArgs> for ExecutorConfig {
    fn from(a: ExecutorArgs) -> Self {
        ExecutorConfig {
            scheduler: a.scheduler,
            bind: a.bind,
            grpc_port: a.grpc_port,
            external_host: a.external_host,
            concurrency: a.concurrency,
            work_dir: a.work_dir,
            connect_timeout: a.connect_timeout,
        }
    }
}

impl From<BallistaRole> for config::BallistaRole {
    fn from(r: BallistaRole) -> Self {
        match r {
            BallistaRole::Scheduler(a) => config::BallistaRole::Scheduler(a.into()),
            BallistaRole::Executor(a) => config::BallistaRole::Executor(a.into()),
        }
    }
}

impl From<PipelineBench> for PipelineBenchConfig {
    fn from(a: PipelineBench) -> Self {
        PipelineBenchConfig {
            conversations: a.conversations,
            database_url: a.database_url,
            json: a.json,
            dir: a.dir,
            lake_url: a.lake_url,
            source: if a.source == "archive" {
                config::Source::Archive
            } else {
                config::Source::Analytics
            },
            concurrency: a.concurrency,
            lengths: a.lengths.into(),
            ballista_executors: a.ballista_executors,
        }
    }
}

impl From<ExtractBench> for ExtractBenchConfig {
    fn from(a: ExtractBench) -> Self {
        ExtractBenchConfig {
            mb: a.mb,
            products: a.products,
            samples: a.samples,
            baseline: a.baseline,
            export_corpus: a.export_corpus,
            export_dictionary: a.export_dictionary,
            json: a.json,
        }
    }
}

impl From<SyncBench> for SyncBenchConfig {
    fn from(a: SyncBench) -> Self {
        SyncBenchConfig {
            rows: a.rows,
            database_url: a.database_url,
            json: a.json,
        }
    }
}

impl From<BenchArgs> for config::BenchConfig {
    fn from(a: BenchArgs) -> Self {
        match a.what {
            None => config::BenchConfig::Pipeline(a.pipeline.into()),
            Some(BenchWhat::Pipeline(p)) => config::BenchConfig::Pipeline(p.into()),
            Some(BenchWhat::Extract(e)) => config::BenchConfig::Extract(e.into()),
            Some(BenchWhat::Sync(s)) => config::BenchConfig::Sync(s.into()),
            Some(BenchWhat::Mask(m)) => config::BenchConfig::Mask(config::MaskBenchConfig {
                megabytes: m.megabytes,
                json: m.json,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, FromArgMatches};

    use super::*;
    use crate::config::{BenchConfig, GlobalConfig};

    /// The command tree without environment variables, so the test sees only the defaults
    /// whatever the environment of the test process holds.
    fn without_env(mut cmd: clap::Command) -> clap::Command {
        cmd = cmd.mut_args(|a| a.env(None));
        let names: Vec<String> = cmd
            .get_subcommands()
            .map(|s| s.get_name().to_string())
            .collect();
        for name in names {
            cmd = cmd.mut_subcommand(name, without_env);
        }
        cmd
    }

    fn parse(args: &[&str]) -> Cli {
        let mut cmd = without_env(Cli::command());
        let matches = cmd
            .try_get_matches_from_mut(std::iter::once("convlake").chain(args.iter().copied()))
            .unwrap();
        Cli::from_arg_matches(&matches).unwrap()
    }

    #[test]
    fn no_flags_give_the_defaults() {
        let cli = parse(&["run"]);
        assert_eq!(GlobalConfig::from(&cli), GlobalConfig::default());
        let Command::Run(run) = parse(&["run"]).command else {
            unreachable!()
        };
        assert_eq!(RunConfig::from(run), RunConfig::default());
        let Command::Fetch(f) = parse(&["fetch"]).command else {
            unreachable!()
        };
        assert_eq!(FetchConfig::from(f.source), FetchConfig::default());
        let Command::Extract(e) = parse(&["extract"]).command else {
            unreachable!()
        };
        assert_eq!(ExtractConfig::from(e), ExtractConfig::default());
        let Command::Aggregate(a) = parse(&["aggregate"]).command else {
            unreachable!()
        };
        assert_eq!(AggregateConfig::from(a), AggregateConfig::default());
        let Command::Sync(s) = parse(&["sync"]).command else {
            unreachable!()
        };
        assert_eq!(DbConfig::from(s.db), DbConfig::default());
        let Command::Report(r) = parse(&["report"]).command else {
            unreachable!()
        };
        assert_eq!(ReportConfig::from(r), ReportConfig::default());
        let Command::Export(x) = parse(&["export"]).command else {
            unreachable!()
        };
        assert_eq!(ExportConfig::from(x), ExportConfig::default());
        let Command::Query(q) = parse(&["query", "--list"]).command else {
            unreachable!()
        };
        let q = QueryConfig::from(q);
        assert_eq!(
            q,
            QueryConfig {
                list: true,
                ..QueryConfig::default()
            }
        );
        let Command::Demo(d) = parse(&["demo"]).command else {
            unreachable!()
        };
        assert_eq!(DemoConfig::from(d), DemoConfig::default());
        let Command::Simulate(s) = parse(&["simulate"]).command else {
            unreachable!()
        };
        assert_eq!(SimulateConfig::from(s), SimulateConfig::default());
        let Command::Candidates(c) = parse(&["candidates"]).command else {
            unreachable!()
        };
        assert_eq!(CandidatesConfig::from(c), CandidatesConfig::default());
        let Command::Dictionary(d) = parse(&["dictionary", "push"]).command else {
            unreachable!()
        };
        assert_eq!(
            DictionaryAction::from(d),
            DictionaryAction::Push {
                dialect: "en-US".into(),
                dry_run: false,
                genesys: GenesysConfig::default(),
            }
        );
        let Command::Bench(b) = parse(&["bench"]).command else {
            unreachable!()
        };
        let BenchConfig::Pipeline(p) = BenchConfig::from(b) else {
            unreachable!()
        };
        assert_eq!(p.conversations, vec![100_000]);
        assert_eq!(p.source, config::Source::Analytics);
        assert_eq!(p.lengths, Lengths::Realistic);
    }

    #[test]
    fn scenario_names_are_the_simulators() {
        for v in ScenarioArg::value_variants() {
            let name = v.to_possible_value().unwrap().get_name().to_string();
            assert_eq!(Scenario::from(*v).to_string(), name);
        }
        assert_eq!(ScenarioArg::value_variants().len(), Scenario::ALL.len());
        let Command::Simulate(s) = parse(&["simulate", "--scenario", "flat"]).command else {
            unreachable!()
        };
        assert_eq!(SimulateConfig::from(s).scenario, Scenario::Flat);
        let Command::Demo(d) = parse(&["demo", "--scenario", "flat"]).command else {
            unreachable!()
        };
        assert_eq!(DemoConfig::from(d).scenario, Scenario::Flat);
    }

    #[test]
    fn flags_reach_the_settings() {
        let Command::Run(run) = parse(&[
            "run",
            "--source",
            "archive",
            "--listing",
            "query",
            "--media",
            "voice,chat",
            "--lateness",
            "2h",
            "--every",
            "15m",
            "--schema",
            "analytics",
        ])
        .command
        else {
            unreachable!()
        };
        let run = RunConfig::from(run);
        assert_eq!(run.fetch.source, config::Source::Archive);
        assert_eq!(run.fetch.listing, config::Listing::Query);
        assert_eq!(run.fetch.media, ["voice", "chat"]);
        assert_eq!(run.fetch.lateness, std::time::Duration::from_secs(7200));
        assert_eq!(run.every, Some(std::time::Duration::from_secs(900)));
        assert_eq!(run.db.schema, "analytics");
    }
}
