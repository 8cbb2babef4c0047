//! The `paytrace` command-line tool.

mod cmd;
mod output;
mod serve;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// mimalloc instead of the system allocator: indexing allocates and frees millions of small
/// keys and values per second (storage-engine buffers), where glibc's malloc spent a fifth of
/// the CPU time (see docs/benchmarks.md, Bitcoin indexing).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// paytrace: index chains, follow payouts, cluster addresses and flag risky flows.
#[derive(Debug, Parser)]
#[command(name = "paytrace", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    global: cmd::GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a commented example config file.
    Init(cmd::init::InitCmd),
    /// Index a block range of a chain.
    #[command(subcommand)]
    Index(cmd::index::IndexCmd),
    /// Keep indexing new blocks of a chain, handling reorgs.
    #[command(subcommand)]
    Follow(cmd::index::FollowCmd),
    /// Transfers in and out of an address, with totals per asset.
    Address(cmd::query::AddressCmd),
    /// Counts per chain and kind, last indexed block per chain.
    Stats(cmd::query::StatsCmd),
    /// Address labels: import, show, list.
    #[command(subcommand)]
    Labels(cmd::labels::LabelsCmd),
    /// Trace value forwards or backwards from an address or a transfer.
    Trace(cmd::trace::TraceCmd),
    /// Time-respecting paths between two addresses or to a category.
    Path(cmd::trace::PathCmd),
    /// Address clustering: run the heuristics, show a cluster, explain a merge.
    #[command(subcommand)]
    Cluster(cmd::cluster::ClusterCmd),
    /// Reports for finance teams: where payroll payouts went, convergence across payees.
    #[command(subcommand)]
    Report(cmd::report::ReportCmd),
    /// Offline demo: a payroll scenario with fake payees, indexed, traced and reported.
    Demo(cmd::demo::DemoCmd),
    /// Findings quality: seeded scenarios with ground truth (and AMLSim samples), scored per
    /// finding kind against the targets.
    Eval(cmd::eval::EvalCmd),
    /// Risk of an address (or a file of addresses): exposure, patterns, labels, as of a date.
    Screen(cmd::screen::ScreenCmd),
    /// Typology instances (peel chains, fan-in, cycles, ...) in the indexed transfers.
    Patterns(cmd::patterns::PatternsCmd),
    /// Import transfers from files.
    #[command(subcommand)]
    Import(cmd::import::ImportCmd),
    /// Alerts: list, acknowledge, close, evaluate the rules, deliver to webhooks.
    Alerts(cmd::alerts::AlertsCmd),
    /// Watchlist: addresses (and payers) screened by the alert rules.
    #[command(subcommand)]
    Watch(cmd::alerts::WatchCmd),
    /// The store itself: verify it, cut a damaged one back to its last intact state.
    #[command(subcommand)]
    Store(cmd::store::StoreCmd),
    /// Serve the HTTP API and the web UI over the store (optionally following chains).
    Serve(serve::ServeArgs),
    /// API keys of the server: create, list, revoke.
    #[command(subcommand)]
    Keys(cmd::keys::KeysCmd),
}

/// Exit statuses (docs/cli.md): 0 success, 1 any error (a bad command line included: clap's
/// own status 2 is not used), 3 `screen --fail-on` met. A closed stdout is a success.
fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with status 0; errors to stderr with status 1.
            let code = if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
            // Nothing more to say if even this cannot be printed.
            let _ = e.print();
            return code;
        }
    };
    cmd::init_tracing(cli.global.verbose);
    output::install_panic_hook();
    output::run_catching(|| match run(cli) {
        Ok(code) => code,
        Err(e) if output::is_stdout_closed(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    })
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Init(c) = &cli.command {
        return c.run(&cli.global).map(|()| ExitCode::SUCCESS);
    }
    let ctx = cmd::Context::load(&cli.global).context("loading configuration")?;
    match cli.command {
        Command::Init(_) => Ok(ExitCode::SUCCESS),
        Command::Index(c) => c.run(&ctx),
        Command::Follow(c) => c.run(&ctx),
        Command::Address(c) => c.run(&ctx),
        Command::Stats(c) => c.run(&ctx),
        Command::Labels(c) => c.run(&ctx),
        Command::Trace(c) => c.run(&ctx),
        Command::Path(c) => c.run(&ctx),
        Command::Cluster(c) => c.run(&ctx),
        Command::Report(c) => c.run(&ctx),
        Command::Demo(c) => c.run(&ctx),
        Command::Eval(c) => c.run(&ctx),
        Command::Screen(c) => c.run(&ctx),
        Command::Patterns(c) => c.run(&ctx),
        Command::Import(c) => c.run(&ctx),
        Command::Alerts(c) => c.run(&ctx),
        Command::Watch(c) => c.run(&ctx),
        Command::Store(c) => c.run(&ctx),
        Command::Serve(c) => c.run(&ctx),
        Command::Keys(c) => c.run(&ctx),
    }
}
