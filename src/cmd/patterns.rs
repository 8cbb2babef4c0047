//! `paytrace patterns`: typology instances over the indexed (or imported) transfers.

use super::Context;
use anyhow::Context as _;
use clap::Args;
use paytrace_indexer::{Amount, BlockNumber, Transfer};
use paytrace_tracer::patterns::{PatternKind, PatternParams, PatternReport, detect};
use serde::Serialize;
use std::process::ExitCode;

/// List detected typology instances.
#[derive(Debug, Args)]
pub struct PatternsCmd {
    /// Only these types (repeatable or comma-separated): peel, pass-through, fan-in, fan-out,
    /// scatter-gather, gather-scatter, cycle, structuring.
    #[arg(long = "type", value_delimiter = ',', value_parser = parse_kind)]
    pub types: Vec<PatternKind>,
    /// Only this chain [default: every chain].
    #[arg(long)]
    pub chain: Option<String>,
    /// First block.
    #[arg(long, default_value_t = 0)]
    pub from_block: u64,
    /// Last block.
    #[arg(long)]
    pub to_block: Option<u64>,
    /// Fan-in / fan-out window in seconds [default: 86400].
    #[arg(long)]
    pub window_secs: Option<u64>,
    /// Fan-in / fan-out: distinct counterparties at least [default: 5].
    #[arg(long)]
    pub min_counterparties: Option<usize>,
    /// Fan and scatter/gather detectors: only transfers of at most this many raw units.
    #[arg(long)]
    pub max_amount: Option<Amount>,
    /// Fan and scatter/gather detectors: only transfers of at least this many raw units.
    #[arg(long)]
    pub min_amount: Option<Amount>,
    /// Scatter-gather / gather-scatter: branches at least [default: 3].
    #[arg(long)]
    pub min_branches: Option<usize>,
    /// Structuring threshold in raw units [default: 10000000000].
    #[arg(long)]
    pub threshold: Option<Amount>,
    /// List at most this many instances per type.
    #[arg(long, default_value_t = 1_000)]
    pub limit: usize,
}

fn parse_kind(s: &str) -> Result<PatternKind, String> {
    s.parse()
        .map_err(|e: paytrace_tracer::patterns::UnknownPattern| e.to_string())
}

#[derive(Serialize)]
struct Out<'a> {
    parameters: &'a PatternParams,
    transfers_examined: usize,
    truncated: usize,
    instances: &'a [paytrace_tracer::patterns::PatternInstance],
}

impl PatternsCmd {
    fn params(&self) -> PatternParams {
        let mut p = PatternParams {
            kinds: self.types.clone(),
            max_instances: self.limit,
            ..PatternParams::default()
        };
        if let Some(v) = self.window_secs {
            p.fan_window_secs = v;
        }
        if let Some(v) = self.min_counterparties {
            p.fan_min_counterparties = v.max(1);
        }
        p.fan_max_amount = self.max_amount;
        if let Some(v) = self.min_amount {
            p.fan_min_amount = v;
        }
        if let Some(v) = self.min_branches {
            p.sg_min_branches = v.max(1);
        }
        if let Some(v) = self.threshold {
            p.structuring_threshold = v;
        }
        p
    }

    /// Runs the command.
    pub fn run(&self, ctx: &Context) -> anyhow::Result<ExitCode> {
        let store = ctx.open_store_read()?;
        let chains = match &self.chain {
            Some(n) => vec![
                store
                    .chain_by_name(n)?
                    .with_context(|| format!("chain {n:?} is not in the store"))?,
            ],
            None => store.chains()?,
        };
        let mut ts: Vec<Transfer> = Vec::new();
        let hi = BlockNumber(self.to_block.unwrap_or(u64::MAX));
        for c in chains {
            for t in store.range_transfers(c.id, BlockNumber(self.from_block), hi) {
                ts.push(t?);
            }
        }
        let p = self.params();
        let r: PatternReport = detect(&ts, &p);
        if ctx.json {
            ctx.print_json(&Out {
                parameters: &p,
                transfers_examined: r.transfers_examined,
                truncated: r.truncated,
                instances: &r.instances,
            })?;
        } else {
            println!(
                "{} instances in {} transfers{}",
                r.instances.len(),
                r.transfers_examined,
                if r.truncated > 0 {
                    format!(" ({} more not listed)", r.truncated)
                } else {
                    String::new()
                }
            );
            for i in &r.instances {
                println!(
                    "{}\t{:.2}\t{}\t{} members\t{}",
                    i.kind,
                    i.score,
                    i.center,
                    i.members.len(),
                    i.summary
                );
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
