//! `paytrace index` and `paytrace follow`.

use super::Context;
use anyhow::Context as _;
use clap::{Args, Subcommand};
use paytrace_config::{ChainConfig, TraceMode, process_env};
use paytrace_indexer::{
    BlockNumber, ChainKind,
    evm::{EvmSource, RpcClient, RpcConfig, resolve_trace_mode},
    stage::{BalanceStage, Pipeline},
    sync::{
        Commit, EvmSync, FOLLOW_MAX_BACKOFF, StopSignal, SyncOptions, SyncSummary, follow_backoff,
    },
};
use std::{process::ExitCode, time::Duration};

/// Index a block range.
#[derive(Debug, Subcommand)]
pub enum IndexCmd {
    /// An EVM chain over JSON-RPC.
    Evm {
        /// Chain options.
        #[command(flatten)]
        chain: EvmChainArgs,
        /// First block [default: after the checkpoint, else 0].
        #[arg(long)]
        from: Option<u64>,
        /// Last block [default: the node's head].
        #[arg(long)]
        to: Option<u64>,
        /// Do not update the balance checkpoints at the end (`paytrace index balances`).
        #[arg(long)]
        no_balances: bool,
    },
    /// A Bitcoin chain from blk*.dat files, Bitcoin Core RPC or Esplora (docs/bitcoin.md).
    Btc(super::btc::BtcIndexArgs),
    /// Build or update the balance checkpoints that let traces skip replaying whole histories.
    Balances(super::balances::BalancesArgs),
}

/// Follow the head of a chain.
#[derive(Debug, Subcommand)]
pub enum FollowCmd {
    /// An EVM chain over JSON-RPC.
    Evm {
        /// Chain options.
        #[command(flatten)]
        chain: EvmChainArgs,
        /// First block when the chain has no checkpoint yet [default: 0].
        #[arg(long)]
        from: Option<u64>,
        /// Blocks to stay behind the head [default: from config, 12].
        #[arg(long)]
        confirmations: Option<u64>,
        /// Poll interval in milliseconds [default: from config, 1000].
        #[arg(long)]
        poll_interval_ms: Option<u64>,
    },
    /// A Bitcoin chain from a Bitcoin Core node (JSON-RPC).
    Btc(super::btc::BtcFollowArgs),
}

/// The chain and the overrides of its config section.
#[derive(Debug, Args)]
pub struct EvmChainArgs {
    /// Chain name (a section of the config, or any name with --rpc).
    #[arg(long)]
    pub chain: String,
    /// JSON-RPC URL (overrides the config and PAYTRACE_RPC_<NAME>).
    #[arg(long)]
    pub rpc: Option<String>,
    /// Blocks per atomic commit.
    #[arg(long)]
    pub blocks_per_commit: Option<u64>,
    /// HTTP requests in flight.
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Calls per JSON-RPC batch.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Requests per second limit.
    #[arg(long)]
    pub rps: Option<u32>,
    /// Retries of a retryable request failure before giving up.
    #[arg(long)]
    pub max_retries: Option<u32>,
    /// Timeout of one request, in seconds [default: from config, 30].
    #[arg(long)]
    pub timeout_secs: Option<u64>,
    /// Total time for one request, retries included, in seconds: a node that hangs or keeps
    /// failing fails the run after about this long [default: from config, 60].
    #[arg(long)]
    pub deadline_secs: Option<u64>,
    /// How internal transfers are read: auto, parity, geth, none.
    #[arg(long, value_parser = parse_trace_mode)]
    pub trace_mode: Option<TraceMode>,
}

fn parse_trace_mode(s: &str) -> Result<TraceMode, String> {
    match s {
        "auto" => Ok(TraceMode::Auto),
        "parity" => Ok(TraceMode::Parity),
        "geth" => Ok(TraceMode::Geth),
        "none" => Ok(TraceMode::None),
        _ => Err(format!(
            "unknown trace mode {s:?}: expected auto, parity, geth or none"
        )),
    }
}

impl EvmChainArgs {
    /// The arguments of `follow evm --chain NAME` without other flags (the config decides).
    pub fn for_chain(name: &str) -> Self {
        Self {
            chain: name.to_owned(),
            rpc: None,
            blocks_per_commit: None,
            concurrency: None,
            batch_size: None,
            rps: None,
            max_retries: None,
            timeout_secs: None,
            deadline_secs: None,
            trace_mode: None,
        }
    }

    /// The chain's config section with flags applied.
    pub fn resolve(&self, ctx: &Context) -> anyhow::Result<(ChainConfig, String)> {
        let mut c = ctx.config.chain_or_default(&self.chain);
        if let Some(v) = self.blocks_per_commit {
            anyhow::ensure!(v >= 1, "--blocks-per-commit must be at least 1");
            c.blocks_per_commit = v;
        }
        if let Some(v) = self.concurrency {
            anyhow::ensure!(v >= 1, "--concurrency must be at least 1");
            c.concurrency = v;
        }
        if let Some(v) = self.batch_size {
            anyhow::ensure!(v >= 1, "--batch-size must be at least 1");
            c.batch_size = v;
        }
        if let Some(v) = self.rps {
            anyhow::ensure!(v >= 1, "--rps must be at least 1");
            c.rps = Some(v);
        }
        if let Some(v) = self.max_retries {
            c.max_retries = v;
        }
        if let Some(v) = self.timeout_secs {
            anyhow::ensure!(v >= 1, "--timeout-secs must be at least 1");
            c.timeout_secs = v;
        }
        if let Some(v) = self.deadline_secs {
            anyhow::ensure!(v >= 1, "--deadline-secs must be at least 1");
            c.deadline_secs = v;
        }
        if let Some(v) = self.trace_mode {
            c.trace_mode = v;
        }
        let url = match &self.rpc {
            Some(u) => u.clone(),
            None => c.resolved_rpc_url(&self.chain, process_env)?.with_context(|| {
                format!(
                    "no RPC URL for chain {:?}: pass --rpc URL, set {}, or add chains.{}.rpc_url to the config",
                    self.chain,
                    paytrace_config::rpc_env_var(&self.chain),
                    self.chain
                )
            })?,
        };
        Ok((c, url))
    }

    /// The sync of this chain. `persistent` (follow): a retryable failure of the first
    /// questions to the node is logged and asked again until it works or a stop is asked.
    async fn sync(
        &self,
        ctx: &Context,
        stop: StopSignal,
        persistent: bool,
        store: Option<paytrace_indexer::Store>,
    ) -> anyhow::Result<(EvmSync, ChainConfig)> {
        let (cfg, url) = self.resolve(ctx)?;
        disable_transparent_huge_pages();
        let rpc = RpcClient::new(RpcConfig {
            url,
            concurrency: cfg.concurrency,
            rps: cfg.rps,
            timeout: Duration::from_secs(cfg.timeout_secs),
            deadline: Duration::from_secs(cfg.deadline_secs),
            max_retries: cfg.max_retries,
            min_backoff: Duration::from_millis(100),
        })?;
        let tokens = if cfg.all_tokens {
            None
        } else {
            Some(
                cfg.tokens
                    .iter()
                    .map(|t| {
                        t.address
                            .parse()
                            .with_context(|| format!("token address {:?}", t.address))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?,
            )
        };
        // The node is asked how it traces before the store is opened: a node that cannot
        // serve the chosen mode leaves no trace in the data directory.
        let mut backoff = follow_backoff(Duration::from_millis(cfg.poll_interval_ms));
        let trace_mode = loop {
            match resolve_trace_mode(&rpc, cfg.trace_mode).await {
                Ok(m) => break m,
                Err(e) if persistent && e.is_retryable() && !stop.is_stopped() => {
                    let wait = backoff.next().unwrap_or(FOLLOW_MAX_BACKOFF);
                    tracing::warn!(chain = %self.chain, error = %e, retry_in_ms = wait.as_millis(), "cannot reach the node; retrying");
                    stop.sleep(wait).await;
                }
                Err(e) => {
                    return Err(anyhow::Error::new(e)
                        .context(format!("connecting to the node of chain {:?}", self.chain)));
                }
            }
        };
        let store = match store {
            Some(s) => s,
            None => ctx.open_store()?,
        };
        let chain = store.register_chain(&self.chain, ChainKind::Evm)?;
        let source = EvmSource::with_trace_mode(
            rpc,
            chain,
            trace_mode,
            tokens,
            cfg.batch_size,
            cfg.logs_range,
        );
        let opts = SyncOptions {
            blocks_per_commit: cfg.blocks_per_commit,
            in_flight: cfg.concurrency.max(2),
            ..SyncOptions::default()
        };
        Ok((
            EvmSync::new(store, source, chain, &self.chain, opts, stop),
            cfg,
        ))
    }
}

/// Turns transparent huge pages off for this process (Linux). The EVM sync touches fresh memory
/// at a high rate (response bodies, parsed ranges, memtables): with huge pages the kernel zeroes
/// 2 MiB at every first touch, which took up to a third of the sync's CPU time on this machine
/// (see docs/benchmarks.md, EVM indexing). A failure only costs that time.
fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        tracing::debug!(error = %e, "cannot turn transparent huge pages off");
    }
}

/// Stops `stop` on Ctrl-C or SIGTERM.
pub(crate) fn install_signal_handler(stop: &StopSignal) {
    let stop = stop.clone();
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut term = match signal(SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM");
                    let _ = tokio::signal::ctrl_c().await;
                    stop.stop();
                    return;
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("stop requested; finishing the current commit");
        stop.stop();
    });
}

/// Progress: a bar on a terminal, structured log lines otherwise.
pub(crate) struct Progress {
    bar: Option<indicatif::ProgressBar>,
    chain: String,
}

impl Progress {
    pub(crate) fn new(chain: &str, total: Option<u64>) -> Self {
        use std::io::IsTerminal;
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = total.map_or_else(
                indicatif::ProgressBar::new_spinner,
                indicatif::ProgressBar::new,
            );
            bar.set_style(super::progress::style("blocks"));
            bar.set_prefix(chain.to_owned());
            bar
        });
        Self {
            bar,
            chain: chain.to_owned(),
        }
    }

    pub(crate) fn on_commit(&self, c: Commit, transfers_total: &std::sync::atomic::AtomicU64) {
        let n = u64::try_from(c.transfers).unwrap_or(u64::MAX);
        let total = transfers_total.fetch_add(n, std::sync::atomic::Ordering::Relaxed) + n;
        let blocks = c.last.0.saturating_sub(c.first.0).saturating_add(1);
        match &self.bar {
            Some(bar) => {
                bar.inc(blocks);
                bar.set_message(format!("{total} transfers"));
            }
            None => tracing::info!(
                chain = %self.chain,
                first = c.first.0,
                last = c.last.0,
                transfers = c.transfers,
                transfers_total = total,
                "committed range"
            ),
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn print_summary(ctx: &Context, s: &SyncSummary) -> anyhow::Result<()> {
    if ctx.json {
        return ctx.print_json(s);
    }
    match (s.from, s.to) {
        (Some(f), Some(t)) => println!(
            "{}: indexed blocks {f}..={t} ({} blocks)",
            s.chain, s.blocks
        ),
        _ => println!(
            "{}: nothing to index (checkpoint {})",
            s.chain,
            s.checkpoint.map_or("none".into(), |c| c.to_string())
        ),
    }
    let kinds: Vec<String> = s.by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!(
        "  transfers {} ({}) in {:.1}s, {} transfers/s",
        s.transfers,
        if kinds.is_empty() {
            "none".to_owned()
        } else {
            kinds.join(", ")
        },
        Duration::from_millis(s.elapsed_ms).as_secs_f64(),
        s.transfers_per_sec
    );
    let k = &s.skipped;
    println!(
        "  skipped: {} failed txs, {} reverted value frames, {} ERC-721 logs, {} malformed logs, {} removed logs",
        k.failed_txs, k.reverted_value_frames, k.erc721_logs, k.malformed_logs, k.removed_logs
    );
    if s.internal_transfers != "indexed" {
        println!(
            "  internal transfers: {}: the calls of {} transactions were not traced (index with \
             --trace-mode auto, parity or geth to include them)",
            s.internal_transfers, k.untraced_txs
        );
    }
    if s.reorgs > 0 {
        println!(
            "  reorgs handled: {} ({} blocks unwound)",
            s.reorgs, s.unwound_blocks
        );
    }
    if s.interrupted {
        println!("  interrupted: stopped cleanly after the last commit; re-run to resume");
    }
    Ok(())
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

impl IndexCmd {
    /// Runs the command.
    pub fn run(&self, ctx: &Context) -> anyhow::Result<ExitCode> {
        let (chain, from, to, no_balances) = match self {
            Self::Evm {
                chain,
                from,
                to,
                no_balances,
            } => (chain, from, to, *no_balances),
            Self::Btc(args) => return args.run(ctx),
            Self::Balances(args) => return args.run(ctx),
        };
        runtime()?.block_on(async {
            let stop = StopSignal::new();
            install_signal_handler(&stop);
            let (sync, _) = chain.sync(ctx, stop, false, None).await?;
            let store = sync.store().clone();
            if let (Some(f), Some(t)) = (from, to) {
                anyhow::ensure!(f <= t, "--from {f} is after --to {t}");
            }
            // The range is fixed at the start (the head as it is now without --to), so the
            // bar has a fixed total; blocks mined meanwhile are reported after it.
            let to = match to {
                Some(t) => BlockNumber(*t),
                None => sync
                    .source()
                    .head()
                    .await
                    .with_context(|| format!("reading the head of chain {:?}", chain.chain))?,
            };
            let start = match store.chain_by_name(&chain.chain)? {
                Some(c) => store
                    .checkpoint(c.id)?
                    .map_or(from.unwrap_or(0), |cp| cp.number.0.saturating_add(1)),
                None => from.unwrap_or(0),
            };
            let total = to.0.checked_sub(start).map(|d| d.saturating_add(1));
            let progress = Progress::new(&chain.chain, Some(total.unwrap_or(0)));
            let counter = std::sync::atomic::AtomicU64::new(0);
            let summary = sync
                .index(from.map(BlockNumber), Some(to), &|c| {
                    progress.on_commit(c, &counter)
                })
                .await
                .with_context(|| format!("indexing chain {:?}", chain.chain))?;
            progress.finish();
            if let Ok(head) = sync.source().head().await
                && head > to
                && !summary.interrupted
            {
                eprintln!(
                    "{}: {} block(s) were mined while indexing (head now {head}); run `paytrace index evm --chain {}` again or `paytrace follow evm` to keep up",
                    chain.chain,
                    head.0 - to.0,
                    chain.chain
                );
            }
            let id = store
                .chain_by_name(&chain.chain)?
                .with_context(|| format!("chain {:?} not registered", chain.chain))?
                .id;
            super::balances::after_index(
                ctx,
                &store,
                id,
                &chain.chain,
                no_balances,
                &summary,
                || print_summary(ctx, &summary),
            )?;
            Ok(ExitCode::SUCCESS)
        })
    }
}

/// Where and how `follow_evm` follows.
#[derive(Debug, Clone, Copy, Default)]
pub struct FollowOptions {
    /// Start block (default: after the checkpoint).
    pub from: Option<u64>,
    /// Confirmations [default: the chain's config].
    pub confirmations: Option<u64>,
    /// Poll interval [default: the chain's config].
    pub poll_interval_ms: Option<u64>,
}

/// Follows the head of an EVM chain until `stop`: the balance checkpoint and alert stages run
/// after each commit (the alert task is stopped before this returns). On `store` when given
/// (the server's), else on the store of the data dir. Returns the summary and the store (when
/// it was opened) for the caller to close.
pub async fn follow_evm(
    ctx: &Context,
    chain: &EvmChainArgs,
    store: Option<paytrace_indexer::Store>,
    opts: FollowOptions,
    stop: StopSignal,
    on_commit: &(dyn Fn(Commit) + Sync),
) -> (anyhow::Result<SyncSummary>, Option<paytrace_indexer::Store>) {
    let (sync, cfg) = match chain.sync(ctx, stop, true, store).await {
        Ok(s) => s,
        Err(e) => return (Err(e), None),
    };
    let confirmations = opts.confirmations.unwrap_or(cfg.confirmations);
    let poll = Duration::from_millis(
        opts.poll_interval_ms
            .unwrap_or(cfg.poll_interval_ms)
            .max(10),
    );
    // Alert rules are evaluated after committed steps (at most once per poll interval).
    let alerts = super::alerts::FollowHook::start(ctx.config.clone(), sync.store().clone(), poll);
    // After each commit: the balance checkpoints of the blocks just committed (touched
    // addresses only), then the alert rules.
    let sync = sync.with_pipeline(
        Pipeline::new()
            .with_stage(BalanceStage::default())
            .with_stage(alerts.stage()),
    );
    tracing::info!(chain = %chain.chain, confirmations, poll_ms = poll.as_millis(), "following the head");
    let store = sync.store().clone();
    let summary = sync
        .follow(opts.from.map(BlockNumber), confirmations, poll, on_commit)
        .await;
    // No write left running.
    alerts.stop().await;
    (
        summary.with_context(|| format!("following chain {:?}", chain.chain)),
        Some(store),
    )
}

impl FollowCmd {
    /// Runs the command.
    pub fn run(&self, ctx: &Context) -> anyhow::Result<ExitCode> {
        let (chain, from, confirmations, poll_interval_ms) = match self {
            Self::Evm {
                chain,
                from,
                confirmations,
                poll_interval_ms,
            } => (chain, from, confirmations, poll_interval_ms),
            Self::Btc(args) => return args.run(ctx),
        };
        runtime()?.block_on(async {
            let stop = StopSignal::new();
            install_signal_handler(&stop);
            let progress = Progress::new(&chain.chain, None);
            let counter = std::sync::atomic::AtomicU64::new(0);
            let (summary, store) = follow_evm(
                ctx,
                chain,
                None,
                FollowOptions {
                    from: *from,
                    confirmations: *confirmations,
                    poll_interval_ms: *poll_interval_ms,
                },
                stop,
                &|c| progress.on_commit(c, &counter),
            )
            .await;
            // A store the next read open does not write to.
            if let Some(store) = store {
                store.persist_for_reopen()?;
            }
            let summary = summary?;
            progress.finish();
            print_summary(ctx, &summary)?;
            Ok(ExitCode::SUCCESS)
        })
    }
}
