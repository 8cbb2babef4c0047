//! `paytrace index balances`: the balance checkpoint stage (docs/architecture.md, "Balance
//! checkpoints"), and its run after `index evm` and `index btc` (during `follow` the sync's
//! pipeline runs it after each commit: `paytrace_indexer::stage::BalanceStage`).

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
    /// Do not compact the address indexes before a full build.
    #[arg(long)]
    pub no_compact: bool,
}

/// A major compaction of the address indexes (`--json` key `compaction`).
#[derive(Debug, Serialize)]
pub struct Compaction {
    /// Tables of `addr_in` and `addr_out` before.
    pub tables_before: usize,
    /// And after.
    pub tables_after: usize,
    /// Wall time in milliseconds.
    pub elapsed_ms: u64,
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
    /// Wall time in milliseconds (the stage only, without the compaction).
    pub elapsed_ms: u64,
    /// The compaction of the address indexes that preceded a full build (`null`: none).
    pub compaction: Option<Compaction>,
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
        if let Some(c) = &self.compaction {
            println!(
                "  address indexes compacted first: {} -> {} tables in {:.1}s",
                c.tables_before,
                c.tables_after,
                std::time::Duration::from_millis(c.elapsed_ms).as_secs_f64()
            );
        }
    }
}

/// Runs the stage on one chain: a full build when `rebuild` or when it never ran (preceded by
/// a compaction of the address indexes when `compact`), otherwise an incremental update.
pub(crate) fn run_stage(
    store: &Store,
    chain: ChainId,
    name: &str,
    interval: u64,
    rebuild: bool,
    compact: bool,
) -> anyhow::Result<StageReport> {
    let build = rebuild || store.balances_progress(chain)?.is_none();
    let compaction = if build && compact {
        let start = Instant::now();
        let (tables_before, tables_after) = store
            .compact_address_indexes()
            .context("compacting the address indexes")?;
        Some(Compaction {
            tables_before,
            tables_after,
            elapsed_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
        })
    } else {
        None
    };
    let start = Instant::now();
    let stats = if build {
        // Both address indexes: about two entries per transfer.
        let entries = store
            .counters(chain)?
            .values()
            .fold(0u64, |a, n| a.saturating_add(*n))
            .saturating_mul(2);
        let bar = super::progress::bar(&format!("balances {name}"), entries, "entries");
        let r = store.build_balances_with_progress(Some(chain), interval, &mut |n| {
            if let Some(b) = &bar {
                b.set_position(n.min(entries));
            }
        });
        super::progress::finish(bar.as_ref());
        r
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
        compaction,
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
        Some(run_stage(
            store,
            chain,
            name,
            BALANCE_INTERVAL,
            false,
            true,
        )?)
    };
    store.persist_for_reopen()?;
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
        let mut compact = !self.no_compact;
        for c in chains {
            let r = run_stage(&store, c.id, &c.name, self.interval, self.rebuild, compact)?;
            // The indexes hold every chain: compacted once is enough.
            compact &= r.compaction.is_none();
            reports.push(r);
        }
        store.persist_for_reopen()?;
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
