//! `paytrace import transfers FILE`: parses the arguments, runs the ethereum-etl CSV source
//! ([`paytrace_indexer::etl`]) with a progress bar, and prints its report.

use super::Context;
use clap::{Args, Subcommand};
use paytrace_indexer::etl::{Pass, Progress, import_transfers};
use std::{path::PathBuf, process::ExitCode};

/// Import data from files.
#[derive(Debug, Subcommand)]
pub enum ImportCmd {
    /// Token transfers in the ethereum-etl `token_transfers` CSV schema: `token_address,
    /// from_address,to_address,value,transaction_hash,log_index,block_number` and optionally
    /// `block_timestamp` (Unix seconds or `YYYY-MM-DD HH:MM:SS[ UTC]`), in any column order.
    Transfers(TransfersArgs),
}

/// `import transfers`.
#[derive(Debug, Args)]
pub struct TransfersArgs {
    /// The CSV file.
    pub file: PathBuf,
    /// Chain name to import into (registered as an EVM chain on first use).
    #[arg(long, default_value = "imported")]
    pub chain: String,
    /// Fail on the first bad row (nothing imported) instead of skipping bad rows.
    #[arg(long)]
    pub strict: bool,
}

impl ImportCmd {
    /// Runs the command.
    pub fn run(&self, ctx: &Context) -> anyhow::Result<ExitCode> {
        let Self::Transfers(a) = self;
        let store = ctx.open_store()?;
        let mut bar = None;
        let r = import_transfers(&store, &a.file, &a.chain, a.strict, &mut |p| match p {
            Progress::Start { pass, bytes } => {
                let what = match pass {
                    Pass::Check => "checking",
                    Pass::Import => "importing",
                };
                bar = super::progress::bar(what, bytes, "bytes");
            }
            Progress::At { bytes } => {
                if let Some(b) = &bar {
                    b.set_position(bytes);
                }
            }
            Progress::Done => super::progress::finish(bar.take().as_ref()),
        })?;
        store.persist_for_reopen()?;
        if ctx.json {
            ctx.print_json(&r)?;
        } else {
            println!(
                "{}: imported {} of {} rows into chain {} (blocks {}..={})",
                r.file,
                r.imported,
                r.rows,
                r.chain,
                r.first_block.map_or("-".into(), |b| b.to_string()),
                r.last_block.map_or("-".into(), |b| b.to_string())
            );
            for x in &r.rejected {
                println!("  {}:{}: field {}: {}", r.file, x.line, x.field, x.reason);
            }
            if r.rejected_count > u64::try_from(r.rejected.len()).unwrap_or(0) {
                println!("  ... {} rejected rows in all", r.rejected_count);
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
