//! The `slaflow` command line (contract section 9).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};

use slaflow::config::Config;
use slaflow::evidence::{
    EvidenceArgs, Verdict, VerifyArgs, YearArgs, evidence, evidence_year, verify,
};
use slaflow::replay::{ReplayArgs, replay};
use slaflow::time::{Millis, parse_flexible};

#[derive(Parser)]
#[command(
    name = "slaflow",
    version,
    about = "Turns monitoring and ticket events into SLA evidence"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The config and input files of `replay` and `evidence`.
#[derive(clap::Args)]
struct Inputs {
    /// Config file (TOML).
    #[arg(long)]
    config: PathBuf,
    /// Monitoring event files (NDJSON), each one stream.
    #[arg(long, num_args = 1..)]
    monitoring: Vec<PathBuf>,
    /// Ticket event files (NDJSON), each one stream.
    #[arg(long, num_args = 1..)]
    tickets: Vec<PathBuf>,
}

/// `slaflow evidence`'s arguments.
#[derive(clap::Args)]
struct EvidenceCommand {
    #[command(flatten)]
    inputs: Inputs,
    /// Customer id.
    #[arg(long)]
    customer: String,
    /// UTC calendar month, YYYY-MM.
    #[arg(long, required_unless_present = "year", conflicts_with = "year")]
    month: Option<String>,
    /// A year, YYYY: the annual pack (each month's pack, review.json and
    /// review.html, one manifest over every file).
    #[arg(long)]
    year: Option<i32>,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// Also print report.html to report.pdf (needs a headless Chromium).
    #[arg(long)]
    pdf: bool,
}

/// `slaflow demo`'s arguments.
#[derive(clap::Args)]
struct DemoCommand {
    /// Listen address (loopback).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Simulated minutes per real second.
    #[arg(long, default_value_t = 10)]
    speed: u32,
    /// Days of history generated before serving.
    #[arg(long, default_value_t = 3)]
    history_days: u32,
    /// Generator seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// The measurements of `slaflow bench`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Measurement {
    /// Memory per open ticket and per service source.
    Memory,
    /// Replay throughput on one core and on all.
    Replay,
    /// The JSON → Arrow decoder alone, with and without its fast path.
    Decode,
    /// Live throughput and incident latency (needs --brokers).
    Live,
    /// Memory of `slaflow run` under a 10× burst (needs --brokers).
    Burst,
    /// Replay of a year of hourly probes against the same records in a week.
    Span,
    /// Checkpoint bytes per interval, incremental against full, over the generated week.
    Checkpoint,
    /// The HTTP API with concurrent clients: SLA reports and availability series.
    Api,
    /// `slaflow run`'s live loop fed by an in-process mock broker, next to replay.
    LiveMock,
}

/// What a token from `slaflow token` may do beyond reading.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TokenScopeArg {
    /// Only the ingest endpoints.
    Ingest,
}

#[derive(Subcommand)]
enum Command {
    /// Embedded generator + engine + API + dashboard; no external services.
    Demo(DemoCommand),
    /// Live: consume both Kafka topics, publish incidents and dead letters.
    Run {
        /// Config file (TOML).
        #[arg(long)]
        config: PathBuf,
    },
    /// Measure throughput and memory; prints one Markdown table.
    Bench(BenchArgs),
    /// Write realistic generated traffic (and a matching config) for replay.
    Generate(GenerateArgs),
    /// Print a fresh random API token and the `[[api.tokens]]` lines for the config.
    Token {
        /// Limit the token to this customer's reports (default: admin).
        #[arg(long, conflicts_with = "scope")]
        customer: Option<String>,
        /// `ingest`: the token may only post to /v1/ingest/*.
        #[arg(long, value_enum)]
        scope: Option<TokenScopeArg>,
        /// With --scope ingest: customers whose services and tickets it may write
        /// (comma-separated; default: all).
        #[arg(long, value_delimiter = ',', requires = "scope")]
        customers: Vec<String>,
    },
    /// Write a customer's evidence pack for a month: reports (JSON, CSV, HTML),
    /// incidents, tickets and a manifest of every input's and output's SHA-256.
    Evidence(EvidenceCommand),
    /// Re-derive an evidence pack from its inputs and compare it byte for byte:
    /// prints "verified" (exit 0) or the first file and field that differ (exit 1).
    Verify {
        /// The pack's folder (holding manifest.json).
        dir: PathBuf,
        /// Config file, instead of the path the manifest records.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Monitoring files, instead of the paths the manifest records.
        #[arg(long, num_args = 1..)]
        monitoring: Vec<PathBuf>,
        /// Ticket files, instead of the paths the manifest records.
        #[arg(long, num_args = 1..)]
        tickets: Vec<PathBuf>,
        /// Kafka brokers to read a live pack's partitions from, instead of the
        /// config's `[kafka].brokers`.
        #[arg(long)]
        brokers: Option<String>,
    },
    /// OpenSLO v1: import SLO documents as [[slos]], or export the config's.
    Openslo {
        #[command(subcommand)]
        action: OpensloAction,
    },
    /// Replay NDJSON files and write all outputs to a directory.
    Replay {
        #[command(flatten)]
        inputs: Inputs,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Report period start (RFC 3339, epoch ms or YYYY-MM-DD).
        #[arg(long, value_parser = time_arg)]
        from: Option<Millis>,
        /// Report period end (RFC 3339, epoch ms or YYYY-MM-DD).
        #[arg(long, value_parser = time_arg)]
        to: Option<Millis>,
        /// Processing clock for the `future` check (default: the wall clock at
        /// start); set it to make a replay reproducible byte for byte.
        #[arg(long, value_parser = time_arg)]
        now: Option<Millis>,
    },
}

#[derive(Subcommand)]
enum OpensloAction {
    /// Print the [[slos]] of OpenSLO v1 SLO documents (YAML files; SLI documents
    /// given alongside resolve indicatorRef); refuses what slaflow cannot compute exactly.
    Import {
        /// OpenSLO YAML files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the config's [[slos]] as OpenSLO v1 Service and SLO documents.
    Export {
        /// Config file (TOML).
        #[arg(long)]
        config: PathBuf,
    },
}

// The hot path allocates per batch; mimalloc reuses memory instead of faulting in
// fresh pages (profiled: the system allocator spent ~20% zeroing pages). Built
// with `no_thp`: mimalloc no longer asks for transparent huge pages, whose 2 MiB
// faults (each zeroed whole) took 60% of the live loop's processing thread as
// small per-poll chunks were allocated and freed across threads.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn time_arg(s: &str) -> Result<Millis, String> {
    parse_flexible(s).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    init_tracing();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // The contract asks for one line: keep clap's message and its
            // "did you mean" tips, drop the usage block.
            let text = e.to_string();
            let lines = || text.lines().map(str::trim);
            let mut line = lines()
                .take_while(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            for tip in lines().filter(|l| l.starts_with("tip:")) {
                line = format!("{line} ({tip})");
            }
            eprintln!("slaflow: {line}");
            return ExitCode::from(2);
        }
    };
    match execute(cli.command) {
        Ok(code) => code,
        Err(e) => {
            // One line: each error type already names its cause.
            eprintln!("slaflow: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SLAFLOW_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour only on a terminal: log files and journald get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// `slaflow generate` options.
#[derive(clap::Args)]
struct GenerateArgs {
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// How many days of traffic.
    #[arg(long, default_value_t = 7)]
    days: u32,
    /// Random seed (same seed, same files).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// First instant (RFC 3339, epoch ms or YYYY-MM-DD).
    #[arg(long, value_parser = time_arg, default_value = "2026-11-02")]
    start: Millis,
    /// Monitoring files (streams), services split among them by key.
    #[arg(long, default_value_t = 1)]
    monitoring_files: u32,
}

/// `slaflow bench` options.
#[derive(clap::Args)]
struct BenchArgs {
    /// Days of generated traffic for the replay measurement.
    #[arg(long, default_value_t = 7)]
    days: u32,
    /// Cores for the parallel replay (default: all).
    #[arg(long)]
    threads: Option<usize>,
    /// Open tickets for the memory measurement.
    #[arg(long, default_value_t = 100_000)]
    tickets: usize,
    /// Services for the memory measurement.
    #[arg(long, default_value_t = 10_000)]
    services: usize,
    /// Services for the span measurement (a year of hourly probes each).
    #[arg(long, default_value_t = 1_000)]
    span_services: usize,
    /// Kafka brokers: adds live throughput, incident latency and memory under a
    /// burst through a real broker.
    #[arg(long)]
    brokers: Option<String>,
    /// Steady input rate (events/s) of the burst measurement; the burst is 10×.
    #[arg(long, default_value_t = 1_000)]
    burst_rate: u64,
    /// Concurrent clients of the API measurement.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Run only these measurements (comma-separated); default: all that apply.
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Measurement>,
}

/// Runs a command: `verify` exits 1 on a difference, the others succeed or fail.
fn execute(command: Command) -> anyhow::Result<ExitCode> {
    let done = |()| ExitCode::SUCCESS;
    match command {
        Command::Evidence(args) => evidence_command(args),
        Command::Verify {
            dir,
            config,
            monitoring,
            tickets,
            brokers,
        } => print_verdict(&VerifyArgs {
            dir,
            config,
            monitoring,
            tickets,
            brokers,
        }),
        Command::Demo(d) => {
            let args = slaflow::demo::DemoArgs {
                listen: d.listen,
                speed: d.speed.max(1),
                history_days: d.history_days,
                seed: d.seed,
            };
            slaflow::demo::demo(args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { config } => {
            let config = Arc::new(Config::load(&config)?);
            slaflow::run::run(config)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(args) => bench(args).map(done),
        Command::Token {
            customer,
            scope,
            customers,
        } => token(customer.as_deref(), scope, &customers).map(done),
        Command::Generate(args) => generate(&args),
        Command::Openslo { action } => openslo(action),
        Command::Replay {
            inputs,
            out,
            from,
            to,
            now,
        } => replay_files(
            &inputs.config,
            ReplayArgs {
                monitoring: inputs.monitoring,
                tickets: inputs.tickets,
                out,
                from,
                to,
                now: now.unwrap_or_else(slaflow::time::wall_now),
            },
        ),
    }
}

/// `slaflow evidence`: a month's pack, or with `--year` the annual one.
fn evidence_command(e: EvidenceCommand) -> anyhow::Result<ExitCode> {
    let now = slaflow::time::wall_now();
    match (e.month, e.year) {
        (None, Some(year)) => write_year(&YearArgs {
            config: e.inputs.config,
            monitoring: e.inputs.monitoring,
            tickets: e.inputs.tickets,
            customer: e.customer,
            year,
            out: e.out,
            pdf: e.pdf,
            now,
        }),
        (month, _) => write_evidence(&EvidenceArgs {
            config: e.inputs.config,
            monitoring: e.inputs.monitoring,
            tickets: e.inputs.tickets,
            customer: e.customer,
            // clap requires --month without --year.
            month: month.unwrap_or_default(),
            out: e.out,
            pdf: e.pdf,
            now,
        }),
    }
}

/// `slaflow openslo`: prints the translation, or every refusal on stderr (exit 1).
fn openslo(action: OpensloAction) -> anyhow::Result<ExitCode> {
    let printed = match action {
        OpensloAction::Import { files } => slaflow::openslo::import(&files).map(|slos| {
            let mut out = format!(
                "# [[slos]] imported from OpenSLO by slaflow {}\n",
                env!("CARGO_PKG_VERSION")
            );
            for s in slos {
                out.push('\n');
                out.push_str(&s.toml());
            }
            out
        }),
        OpensloAction::Export { config } => {
            slaflow::openslo::export(&Config::load(&config)?).map_err(|e| vec![e])
        }
    };
    match printed {
        Ok(text) => {
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Err(refusals) => {
            for r in refusals {
                eprintln!("slaflow: refused: {r}");
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `slaflow evidence`: writes the pack and says where.
fn write_evidence(args: &EvidenceArgs) -> anyhow::Result<ExitCode> {
    let m = evidence(args)?;
    println!(
        "evidence: {} {}–{}: {} → {}",
        m.customer,
        m.from,
        m.to,
        slaflow::text::count(m.outputs.len() as u64 + 1, "file"),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `slaflow evidence --year`: writes the annual pack and says where.
fn write_year(args: &YearArgs) -> anyhow::Result<ExitCode> {
    let m = evidence_year(args)?;
    let months = m.months.as_ref().map_or(0, Vec::len);
    println!(
        "evidence: {} {}: {}, {} → {}",
        m.customer,
        args.year,
        slaflow::text::count(months as u64, "monthly pack"),
        slaflow::text::count(m.outputs.len() as u64 + 1, "file"),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `slaflow verify`: "verified" (exit 0) or the first difference (exit 1).
fn print_verdict(args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    Ok(match verify(args)? {
        Verdict::Verified => {
            println!("verified");
            ExitCode::SUCCESS
        }
        Verdict::Differs(what) => {
            println!("differs: {what}");
            ExitCode::FAILURE
        }
    })
}

/// `slaflow generate`: writes the files and the replay command that reads them.
fn generate(args: &GenerateArgs) -> anyhow::Result<ExitCode> {
    let out = &args.out;
    let files = args.monitoring_files.max(1);
    let (monitoring, tickets) =
        slaflow::generate::write_files(out, args.days, args.seed, args.start, files)?;
    println!(
        "generate: {monitoring} monitoring and {tickets} ticket lines → {}",
        out.display()
    );
    println!(
        "replay with: slaflow replay --config {0}/config.toml --monitoring {0}/monitoring-*.ndjson --tickets {0}/tickets.ndjson --out {0}/results",
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `slaflow replay`: the counts on stdout, a warning on stderr when much of
/// the input was dead-lettered.
fn replay_files(config: &std::path::Path, args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let config = Arc::new(Config::load(config)?);
    let counts = replay(config, &args)?;
    if let Some(warning) = counts.deadletter_warning() {
        eprintln!("slaflow: warning: {warning}");
    }
    println!(
        "replay: read {} applied {} dead-lettered {} → {}",
        counts.read,
        counts.applied,
        counts.deadlettered(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs the chosen measurements and prints one Markdown table.
fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let threads = (args.threads)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let wanted = |m: Measurement| args.only.is_empty() || args.only.contains(&m);
    let live = [Measurement::Live, Measurement::Burst];
    if let Some(m) = live.iter().find(|m| args.only.contains(m))
        && args.brokers.is_none()
    {
        let name = m.to_possible_value().map(|v| v.get_name().to_owned());
        let name = name.unwrap_or_default();
        anyhow::bail!("--only {name} goes through a real broker: give --brokers HOST:PORT");
    }
    let mut rows = Vec::new();
    if wanted(Measurement::Memory) {
        rows.extend(slaflow::bench::memory_rows(
            args.tickets,
            args.services,
            slaflow::bench::MemoryGauge::RSS,
        ));
    }
    if wanted(Measurement::Replay) {
        rows.extend(slaflow::bench::replay_rows(args.days, threads));
    }
    if wanted(Measurement::Decode) {
        rows.extend(slaflow::bench::decode_rows(args.days));
    }
    if wanted(Measurement::Span) {
        rows.extend(slaflow::bench::span_rows(args.span_services));
    }
    if wanted(Measurement::Checkpoint) {
        rows.extend(slaflow::bench::checkpoint_rows(args.days));
    }
    if wanted(Measurement::Api) {
        rows.extend(slaflow::bench::api_rows(args.days, args.clients));
    }
    if wanted(Measurement::LiveMock) {
        rows.extend(slaflow::bench::mock_live_rows()?);
    }
    if let Some(brokers) = &args.brokers {
        if wanted(Measurement::Live) {
            rows.extend(slaflow::bench::live_rows(brokers)?);
        }
        if wanted(Measurement::Burst) {
            rows.extend(slaflow::bench::burst_rows(brokers, args.burst_rate)?);
        }
    }
    print!("{}", slaflow::bench::table(&rows));
    Ok(())
}

/// Prints a fresh token and its `[[api.tokens]]` lines.
fn token(
    customer: Option<&str>,
    scope: Option<TokenScopeArg>,
    customers: &[String],
) -> anyhow::Result<()> {
    use slaflow::api::auth::{fresh_token, token_entry};
    let prefix = match (customer, scope) {
        (Some(_), _) => "cust",
        (None, Some(TokenScopeArg::Ingest)) => "ingest",
        (None, None) => "admin",
    };
    let token = fresh_token(prefix).map_err(|e| anyhow::anyhow!("no OS randomness: {e}"))?;
    println!("{token}");
    println!();
    println!(
        "# Give the token above to its client; add these lines to the config (only the hash is stored):"
    );
    print!(
        "{}",
        token_entry(&token, customer, scope.is_some(), customers)
    );
    Ok(())
}
