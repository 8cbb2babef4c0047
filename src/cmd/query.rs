//! `paytrace address` and `paytrace stats`.

use super::Context;
use clap::Args;
use std::process::ExitCode;

/// Transfers in and out of an address.
#[derive(Debug, Args)]
pub struct AddressCmd {
    /// The address.
    pub address: String,
    /// Only this chain.
    #[arg(long)]
    pub chain: Option<String>,
}

impl AddressCmd {
    /// Runs the command.
    pub fn run(&self, _ctx: &Context) -> anyhow::Result<ExitCode> {
        anyhow::bail!("address: not implemented yet")
    }
}

/// Store statistics.
#[derive(Debug, Args)]
pub struct StatsCmd {}

impl StatsCmd {
    /// Runs the command.
    pub fn run(&self, _ctx: &Context) -> anyhow::Result<ExitCode> {
        anyhow::bail!("stats: not implemented yet")
    }
}
