//! Subcommands. Each area has its own args struct and a `run` that prints text, or JSON with
//! `--json` (stable keys, documented in docs/cli.md).

pub mod alerts;
pub use paytrace_app::{chain_view, explain};
pub mod balances;
pub mod btc;
pub mod cluster;
pub mod demo;
mod demo_rpc;
pub mod eval;
pub mod import;
pub mod index;
pub mod init;
pub mod keys;
pub mod labels;
pub mod patterns;
pub mod progress;
pub mod query;
pub mod report;
pub mod screen;
pub mod store;
pub mod time_arg;
pub mod trace;

use anyhow::Context as _;
use clap::Args;
use paytrace_config::{Config, DEFAULT_DATA_DIR};
use paytrace_indexer::{OpenMode, Store};
use serde::Serialize;
use std::path::PathBuf;

/// Flags every command accepts.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Config file (TOML). Without it, defaults apply and chains can be named with --rpc.
    #[arg(long, global = true, env = "PAYTRACE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory of the store [default: from config, else ./paytrace-data].
    #[arg(long, global = true, env = "PAYTRACE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// More log output (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// What every command gets: the loaded config, the data dir and the output mode.
pub struct Context {
    /// Loaded configuration (defaults when no file).
    pub config: Config,
    /// Data directory.
    pub data_dir: PathBuf,
    /// `--json` given.
    pub json: bool,
}

impl Context {
    /// Loads the config and resolves the data dir (flag/env > config > default).
    pub fn load(g: &GlobalArgs) -> anyhow::Result<Self> {
        let config = match &g.config {
            Some(p) => Config::load(p)?,
            None => Config::default(),
        };
        let data_dir = g
            .data_dir
            .clone()
            .or_else(|| config.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        Ok(Self {
            config,
            data_dir,
            json: g.json,
        })
    }

    /// Opens the store in the data dir for writing (created when missing).
    pub fn open_store(&self) -> anyhow::Result<Store> {
        Store::open(&self.data_dir)
            .with_context(|| format!("opening the store in {}", self.data_dir.display()))
    }

    /// Opens the existing store in the data dir for reading: a missing store is an error
    /// naming the path and the commands that create one; nothing is created or written.
    pub fn open_store_read(&self) -> anyhow::Result<Store> {
        Store::open_read(&self.data_dir)
            .with_context(|| format!("opening the store in {}", self.data_dir.display()))
    }

    /// [`Context::open_store_read`] for queries: a larger block cache
    /// ([`paytrace_indexer::QUERY_CACHE_BYTES`]) so that address-index seeks stay in memory.
    pub fn open_store_for_queries(&self) -> anyhow::Result<Store> {
        Store::open_with(
            &self.data_dir,
            OpenMode::Read,
            Some(paytrace_indexer::QUERY_CACHE_BYTES),
        )
        .with_context(|| format!("opening the store in {}", self.data_dir.display()))
    }

    /// Prints `value` as pretty JSON on stdout.
    pub fn print_json<T: Serialize>(&self, value: &T) -> anyhow::Result<()> {
        use std::io::Write as _;
        let mut out = crate::output::stdout();
        writeln!(out, "{}", serde_json::to_string_pretty(value)?)?;
        out.flush()?;
        Ok(())
    }
}

/// Prints `value` as indented JSON (as `--json` does), rewritten through `view` (Bitcoin
/// addresses and txids as Bitcoin shows them).
pub fn print_json_view<T: Serialize>(
    value: &T,
    view: &chain_view::ChainView,
) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = crate::output::stdout();
    writeln!(
        out,
        "{}",
        view.rewrite(&serde_json::to_string_pretty(value)?)
    )?;
    out.flush()?;
    Ok(())
}

/// Logs go to stderr: human-readable on a terminal, JSON lines otherwise.
pub fn init_tracing(verbose: u8) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    // The storage engine logs its housekeeping at info; keep it at warn unless asked.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{default},fjall=warn,lsm_tree=warn")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::io::stderr().is_terminal() {
        builder.init();
    } else {
        builder.json().init();
    }
}
