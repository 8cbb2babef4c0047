//! `paytrace trace` and `paytrace path` (owned by the tracer work, issue 7).

use super::Context;
use clap::Args;
use std::process::ExitCode;

/// Trace value forwards or backwards.
#[derive(Debug, Args)]
pub struct TraceCmd {
    /// Address or transaction hash (optionally `TX:INDEX`).
    pub seed: String,
}

impl TraceCmd {
    /// Runs the command.
    pub fn run(&self, _ctx: &Context) -> anyhow::Result<ExitCode> {
        anyhow::bail!("trace: not implemented yet")
    }
}

/// Paths between addresses.
#[derive(Debug, Args)]
pub struct PathCmd {
    /// Source address.
    pub from: String,
    /// Target address.
    pub to: Option<String>,
}

impl PathCmd {
    /// Runs the command.
    pub fn run(&self, _ctx: &Context) -> anyhow::Result<ExitCode> {
        anyhow::bail!("path: not implemented yet")
    }
}
