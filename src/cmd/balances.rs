//! `paytrace index balances`: the balance checkpoint stage (docs/architecture.md, "Balance
//! checkpoints"), and the hook that runs it after `index evm`, `index btc` and each `follow`
//! step.

use super::Context;
use anyhow::Context as _;
use clap::Args;
use paytrace_indexer::{BALANCE_INTERVAL, BalanceStats, ChainId, Store};
use serde::Serialize;
use std::{process::ExitCode, time::Instant};

/// Build or update the balance checkpoints.
#[derive(Debug, Args)]
pub struct BalancesArgs {
    /// Only this chain [default: every chain].
    #[arg(long)]
    pub chain: Option<String>,
    /// History entries of an (address, chain) between two checkpoints.
    #[arg(long, default_value_t = BALANCE_INTERVAL)]
    pub interval: u64,
    /// Rebuild from scratch instead of updating the blocks indexed since the last run.
    #[arg(long)]
    pub rebuild: bool,
}

/// What the stage did on one chain (`--json` keys, docs/cli.md).
#[derive(Debug, Serialize)]
pub struct StageReport {
    /// Chain name.
    pub chain: String,
    /// `build` (from scratch) or `update` (blocks since the stage's progress).
    pub mode: &'static str,
    /// Block up to which the checkpoints are complete.
    pub progress: Option<u64>,
    /// Counts.
    #[serde(flatten)]
    pub stats: BalanceStats,
    /// Wall time in milliseconds.
    pub elapsed_ms: u64,
}

impl StageReport {
    fn print(&self) {
        println!(
            "{}: balance checkpoints {} in {:.1}s: {} addresses, {} entries replayed, {} checkpoints written ({} bytes), {} removed, progress {}",
            self.chain,
            self.mode,
            std::time::Duration::from_millis(self.elapsed_ms).as_secs_f64(),
            self.stats.addresses,
            self.stats.entries,
            self.stats.checkpoints,
            self.stats.bytes,
            self.stats.removed,
            self.progress.map_or("none".into(), |p| p.to_string()),
        );
    }
}

/// Runs the stage on one chain: a full build when `rebuild` or when it never ran, otherwise
/// an incremental update.
pub(crate) fn run_stage(
    store: &Store,
    chain: ChainId,
    name: &str,
    interval: u64,
    rebuild: bool,
) -> anyhow::Result<StageReport> {
    let start = Instant::now();
    let build = rebuild || store.balances_progress(chain)?.is_none();
    let stats = if build {
        store.build_balances(Some(chain), interval)
    } else {
        store.update_balances(chain, interval)
    }
    .with_context(|| format!("balance checkpoints of chain {name:?}"))?;
    let elapsed_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    let progress = store.balances_progress(chain)?.map(|b| b.0);
    tracing::info!(
        chain = name,
        build,
        addresses = stats.addresses,
        checkpoints = stats.checkpoints,
        elapsed_ms,
        "balance checkpoints"
    );
    Ok(StageReport {
        chain: name.to_owned(),
        mode: if build { "build" } else { "update" },
        progress,
        stats,
        elapsed_ms,
    })
}

/// After `index evm` / `index btc`: runs the stage on `chain` unless `skip`, then prints the
/// sync summary `summary` (as JSON with a `balances` key added) or the stage's line after it.
pub(crate) fn after_index<T: Serialize>(
    ctx: &Context,
    store: &Store,
    chain: ChainId,
    name: &str,
    skip: bool,
    summary: &T,
    print_summary: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let report = if skip {
        None
    } else {
        Some(run_stage(store, chain, name, BALANCE_INTERVAL, false)?)
    };
    if ctx.json {
        let mut v = serde_json::to_value(summary)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("balances".into(), serde_json::to_value(&report)?);
        }
        return ctx.print_json(&v);
    }
    print_summary()?;
    if let Some(r) = report {
        r.print();
    }
    Ok(())
}

/// During `follow`: brings the checkpoints of `chain` up to date after a committed step (a
/// failure is logged, never stops the follower: traces then replay from further back).
pub(crate) fn after_commit(store: &Store, chain: ChainId, name: &str) {
    if let Err(e) = run_stage(store, chain, name, BALANCE_INTERVAL, false) {
        tracing::warn!(chain = name, error = %format!("{e:#}"), "balance checkpoints not updated");
    }
}

impl BalancesArgs {
    /// Runs the command.
    pub fn run(&self, ctx: &Context) -> anyhow::Result<ExitCode> {
        anyhow::ensure!(self.interval >= 1, "--interval must be at least 1");
        let store = ctx.open_store()?;
        let chains = match &self.chain {
            Some(n) => vec![
                store
                    .chain_by_name(n)?
                    .with_context(|| format!("no chain {n:?} in the store"))?,
            ],
            None => store.chains()?,
        };
        let mut reports = Vec::new();
        for c in chains {
            reports.push(run_stage(
                &store,
                c.id,
                &c.name,
                self.interval,
                self.rebuild,
            )?);
        }
        store.persist()?;
        if ctx.json {
            ctx.print_json(&serde_json::json!({ "chains": reports }))?;
        } else if reports.is_empty() {
            println!("no chain indexed: nothing to do");
        } else {
            for r in &reports {
                r.print();
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
