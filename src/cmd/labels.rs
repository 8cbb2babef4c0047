//! `paytrace labels ...` (owned by the labels work, issue 6).

use super::Context;
use clap::Subcommand;
use std::process::ExitCode;

/// Label commands.
#[derive(Debug, Subcommand)]
pub enum LabelsCmd {
    /// List the imported label sources.
    Sources,
}

impl LabelsCmd {
    /// Runs the command.
    pub fn run(&self, _ctx: &Context) -> anyhow::Result<ExitCode> {
        anyhow::bail!("labels: not implemented yet")
    }
}
