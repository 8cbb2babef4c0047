//! `paytrace index` and `paytrace follow`.

use super::Context;
use clap::Subcommand;
use std::process::ExitCode;

/// Index a block range.
#[derive(Debug, Subcommand)]
pub enum IndexCmd {
    /// An EVM chain over JSON-RPC.
    Evm {
        /// Chain name.
        #[arg(long)]
        chain: String,
    },
}

impl IndexCmd {
    /// Runs the command.
    pub fn run(&self, _ctx: &Context) -> anyhow::Result<ExitCode> {
        anyhow::bail!("index: not implemented yet")
    }
}

/// Follow the head of a chain.
#[derive(Debug, Subcommand)]
pub enum FollowCmd {
    /// An EVM chain over JSON-RPC.
    Evm {
        /// Chain name.
        #[arg(long)]
        chain: String,
    },
}

impl FollowCmd {
    /// Runs the command.
    pub fn run(&self, _ctx: &Context) -> anyhow::Result<ExitCode> {
        anyhow::bail!("follow: not implemented yet")
    }
}
