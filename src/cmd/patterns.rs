//! `paytrace patterns`: typology instances over the indexed (or imported) transfers.

use super::Context;
use anyhow::{Context as _, bail};
use clap::Args;
use paytrace_config::{ChainKind, Config};
use paytrace_indexer::{Address, Amount, Asset, BlockNumber, Transfer};
use paytrace_tracer::{
    patterns::{AssetThreshold, PatternKind, PatternParams, PatternReport, detect},
    report::parse_units,
};
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
    /// The horizon in seconds: window of fan-in / fan-out, scatter-gather phases, cycles and
    /// structuring [default: 86400 for fans, 7 days for cycles and structuring].
    #[arg(long)]
    pub window_secs: Option<u64>,
    /// Fan-in / fan-out: distinct counterparties at least, for both rules (unusual amounts and
    /// unusual degree) [default: 2 with unusual amounts, 5 for a degree burst].
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
    /// Structuring threshold in raw units for every asset without a `[[patterns.structuring]]`
    /// threshold in the config [default: none; structuring needs a threshold].
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

/// The structuring thresholds of the config in raw units.
fn config_thresholds(cfg: &Config) -> anyhow::Result<Vec<AssetThreshold>> {
    let mut out = Vec::new();
    for (i, s) in cfg.patterns.structuring.iter().enumerate() {
        let at = || {
            format!(
                "config [[patterns.structuring]] #{} ({}/{})",
                i + 1,
                s.chain,
                s.asset
            )
        };
        let chain = cfg.chains.get(&s.chain);
        let native_decimals = match chain.map(|c| c.kind) {
            Some(ChainKind::Bitcoin) => 8,
            _ => 18,
        };
        let (asset, declared) = if s.asset.eq_ignore_ascii_case("native") {
            (Asset::Native, Some(native_decimals))
        } else if let Some(t) = chain.and_then(|c| {
            c.tokens
                .iter()
                .find(|t| t.symbol == s.asset || t.address.eq_ignore_ascii_case(&s.asset))
        }) {
            let a: Address = t
                .address
                .parse()
                .map_err(|e| anyhow::anyhow!("{}: token address {:?}: {e}", at(), t.address))?;
            (Asset::Token(a), Some(t.decimals))
        } else if s.asset.starts_with("0x") {
            let a: Address = s
                .asset
                .parse()
                .map_err(|e| anyhow::anyhow!("{}: asset {:?}: {e}", at(), s.asset))?;
            (Asset::Token(a), None)
        } else {
            bail!(
                "{}: asset {:?} is not native, a token of chains.{}.tokens or a 0x address",
                at(),
                s.asset,
                s.chain
            );
        };
        let Some(decimals) = s.decimals.or(declared) else {
            bail!(
                "{}: the decimals of {} are unknown: set `decimals`",
                at(),
                s.asset
            );
        };
        let threshold = parse_units(&s.threshold, decimals)
            .map_err(|e| anyhow::anyhow!("{}: threshold {:?}: {e}", at(), s.threshold))?;
        out.push(AssetThreshold { asset, threshold });
    }
    Ok(out)
}

impl PatternsCmd {
    fn params(&self, cfg: &Config) -> anyhow::Result<PatternParams> {
        let mut p = PatternParams {
            kinds: self.types.clone(),
            max_instances: self.limit,
            ..PatternParams::default()
        };
        if let Some(v) = self.window_secs {
            p.set_horizon(v);
        }
        if let Some(v) = self.min_counterparties {
            p.fan_min_counterparties = v.max(1);
            p.fan_min_unusual = v.max(1);
        }
        p.fan_max_amount = self.max_amount;
        if let Some(v) = self.min_amount {
            p.fan_min_amount = v;
        }
        if let Some(v) = self.min_branches {
            p.sg_min_branches = v.max(1);
        }
        p.structuring_threshold = self.threshold;
        p.structuring_asset_thresholds = config_thresholds(cfg)?;
        if self.types.contains(&PatternKind::Structuring) && !p.has_structuring_threshold() {
            bail!(
                "structuring needs a reporting threshold: give --threshold RAW or set [[patterns.structuring]] in the config"
            );
        }
        Ok(p)
    }

    /// Runs the command.
    pub fn run(&self, ctx: &Context) -> anyhow::Result<ExitCode> {
        let mut p = self.params(&ctx.config)?;
        let store = ctx.open_store_read()?;
        p.assets = super::report::units(ctx, &store, &[])?.book(None);
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
            if r.instances.is_empty() {
                println!(
                    "searched {} in {} blocks {}..={} ({} transfers); {}",
                    if self.types.is_empty() {
                        "every type".to_owned()
                    } else {
                        self.types
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    },
                    self.chain
                        .as_deref()
                        .map_or_else(|| "every chain".to_owned(), |c| format!("chain {c}")),
                    self.from_block,
                    self.to_block
                        .map_or_else(|| "the last".to_owned(), |b| b.to_string()),
                    r.transfers_examined,
                    super::explain::chains_indexed(&store)?
                );
            }
            if !p.has_structuring_threshold() && p.kinds.is_empty() {
                println!(
                    "(structuring not checked: no threshold; see --threshold and [[patterns.structuring]])"
                );
            }
            for i in &r.instances {
                let kind = match i.cycle_kind {
                    Some(c) => format!("{} ({c})", i.kind),
                    None => i.kind.to_string(),
                };
                println!(
                    "{kind}\t{:.2}\t{}\t{} members\t{} .. {}\t{}",
                    i.score,
                    i.center,
                    i.members.len(),
                    super::time_arg::iso(i.first_time),
                    super::time_arg::iso(i.last_time),
                    i.summary
                );
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
