//! `paytrace index btc`: index a Bitcoin chain from blk*.dat files, a Bitcoin Core node, or an
//! Esplora server (docs/bitcoin.md).

use super::{
    Context,
    index::{Progress, install_signal_handler, runtime},
};
use anyhow::Context as _;
use clap::Args;
use paytrace_indexer::{
    ChainKind,
    btc::{
        BtcSource, BtcSummary, BtcSync, UtxoStore,
        blk::{BlkIndex, list_blk_files, read_xor_key},
        esplora::{EsploraCrawl, EsploraSource},
        rpc::{RpcSource, url_with_auth, url_with_cookie},
        sync::BlkSource,
    },
    evm::{RpcClient, RpcConfig},
    stage::{BalanceStage, Pipeline},
    sync::{StopSignal, SyncOptions},
};
use std::{path::PathBuf, process::ExitCode, time::Duration};

/// The request time limits of a node or Esplora server, as `index evm` takes them.
#[derive(Debug, Args)]
pub struct RequestTimes {
    /// Timeout of one request, in seconds [default: from config, 30].
    #[arg(long)]
    pub timeout_secs: Option<u64>,
    /// Total time for one request, retries included, in seconds: a node that hangs or keeps
    /// failing fails the run after about this long [default: from config, 60].
    #[arg(long)]
    pub deadline_secs: Option<u64>,
}

impl RequestTimes {
    /// The chain's config with the flags applied.
    fn apply(
        &self,
        mut c: paytrace_config::ChainConfig,
    ) -> anyhow::Result<paytrace_config::ChainConfig> {
        if let Some(v) = self.timeout_secs {
            anyhow::ensure!(v >= 1, "--timeout-secs must be at least 1");
            c.timeout_secs = v;
        }
        if let Some(v) = self.deadline_secs {
            anyhow::ensure!(v >= 1, "--deadline-secs must be at least 1");
            c.deadline_secs = v;
        }
        Ok(c)
    }
}

/// `paytrace index btc` arguments.
#[derive(Debug, Args)]
pub struct BtcIndexArgs {
    /// Chain name in the store (and config section).
    #[arg(long, default_value = "bitcoin")]
    pub chain: String,
    /// A Bitcoin Core `blocks/` directory: every blk*.dat, de-obfuscated with its xor.dat.
    #[arg(long, conflicts_with_all = ["blk_file", "rpc", "esplora"])]
    pub blocks_dir: Option<PathBuf>,
    /// One or more blk*.dat files (an xor.dat beside them is applied).
    #[arg(long, num_args = 1.., conflicts_with_all = ["rpc", "esplora"])]
    pub blk_file: Vec<PathBuf>,
    /// Bitcoin Core JSON-RPC URL (user:password@ in the URL, or --rpc-cookie/--rpc-user).
    #[arg(long, conflicts_with = "esplora")]
    pub rpc: Option<String>,
    /// The node's `.cookie` file.
    #[arg(long, requires = "rpc", conflicts_with = "rpc_user")]
    pub rpc_cookie: Option<PathBuf>,
    /// RPC user name.
    #[arg(long, requires_all = ["rpc", "rpc_password"])]
    pub rpc_user: Option<String>,
    /// RPC password.
    #[arg(
        long,
        requires = "rpc_user",
        env = "PAYTRACE_BTC_RPC_PASSWORD",
        hide_env_values = true
    )]
    pub rpc_password: Option<String>,
    /// Esplora REST base URL (crawls outward from --seed addresses).
    #[arg(long, requires = "seed")]
    pub esplora: Option<String>,
    /// Seed addresses of an Esplora crawl.
    #[arg(long, num_args = 1.., requires = "esplora")]
    pub seed: Vec<String>,
    /// Esplora crawl: how many hops outward from the seeds.
    #[arg(long, default_value_t = 1)]
    pub hops: u32,
    /// Esplora crawl: at most this many transactions.
    #[arg(long, default_value_t = 10_000)]
    pub max_txs: usize,
    /// First block [default: after the checkpoint, else the first block of the source].
    #[arg(long)]
    pub from: Option<u64>,
    /// Last block [default: the source's tip].
    #[arg(long)]
    pub to: Option<u64>,
    /// Height of the first block in blk files whose parent is unknown and that has no BIP34
    /// height.
    #[arg(long)]
    pub start_height: Option<u64>,
    /// Blocks per atomic commit.
    #[arg(long)]
    pub blocks_per_commit: Option<u64>,
    /// Ranges fetched and decoded ahead of the writer.
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Retries of a retryable RPC or Esplora failure.
    #[arg(long)]
    pub max_retries: Option<u32>,
    /// Request time limits.
    #[command(flatten)]
    pub times: RequestTimes,
    /// Do not update the balance checkpoints at the end (`paytrace index balances`).
    #[arg(long)]
    pub no_balances: bool,
    /// Ranges of at least this many transfers are written in bulk: ingested as sorted tables,
    /// without journal and memtables, under a crash marker [default: 65536; 0: every range].
    #[arg(long)]
    pub bulk_min_transfers: Option<usize>,
}

impl BtcIndexArgs {
    /// Runs the command.
    pub fn run(&self, ctx: &Context) -> anyhow::Result<ExitCode> {
        let cfg = self.times.apply(ctx.config.chain_or_default(&self.chain))?;
        // One engine worker: large ranges are ingested in bulk (see `Store::open_for_bulk`).
        let store = paytrace_indexer::Store::open_for_bulk(&ctx.data_dir)
            .with_context(|| format!("opening the store in {}", ctx.data_dir.display()))?;
        let chain = store.register_chain(&self.chain, ChainKind::Bitcoin)?;
        let utxo = UtxoStore::open(&store)?.with_bulk_min_transfers(
            self.bulk_min_transfers
                .unwrap_or(paytrace_indexer::btc::utxo::BULK_MIN_TRANSFERS),
        );
        let opts = SyncOptions {
            blocks_per_commit: self
                .blocks_per_commit
                .unwrap_or(if self.rpc.is_some() { 50 } else { 200 })
                .max(1),
            in_flight: self
                .concurrency
                .unwrap_or(cfg.concurrency.clamp(2, 8))
                .max(1),
            ..SyncOptions::default()
        };
        runtime()?.block_on(async {
            let stop = StopSignal::new();
            install_signal_handler(&stop);
            let esplora = self.esplora.clone().or(cfg.esplora_url.clone());
            if let Some(url) = esplora.filter(|_| !self.seed.is_empty()) {
                let src = EsploraSource::new(
                    &url,
                    self.max_retries.unwrap_or(cfg.max_retries),
                    Duration::from_secs(cfg.timeout_secs),
                )?
                .with_deadline(Duration::from_secs(cfg.deadline_secs));
                let crawl = EsploraCrawl::new(utxo, chain, src);
                let report = crawl
                    .crawl(&self.seed, self.hops, self.max_txs, &stop)
                    .await
                    .with_context(|| format!("crawling {url}"))?;
                super::balances::after_index(ctx, &store, chain, &self.chain, self.no_balances, &report, || {
                    println!(
                        "{}: esplora crawl wrote {} transactions ({} transfers) for {} addresses",
                        self.chain, report.txs, report.transfers, report.addresses
                    );
                    Ok(())
                })?;
                return Ok(ExitCode::SUCCESS);
            }
            let rpc_url = self.rpc.clone().or_else(|| {
                (self.blocks_dir.is_none() && self.blk_file.is_empty())
                    .then(|| cfg.rpc_url.clone())
                    .flatten()
            });
            let summary = if let Some(url) = rpc_url {
                let auth = RpcAuth {
                    cookie: self.rpc_cookie.clone(),
                    user: self.rpc_user.clone(),
                    password: self.rpc_password.clone(),
                };
                let rpc = rpc_client(&cfg, &url, &auth, &opts, self.max_retries)?;
                let src = RpcSource::new(rpc, self.start_height.unwrap_or(0));
                self.sync(ctx, utxo, src, chain, opts, stop).await?
            } else {
                let (files, xor) = if let Some(dir) = self.blocks_dir.clone().or(cfg.blocks_dir.clone()) {
                    (list_blk_files(&dir)?, read_xor_key(&dir)?)
                } else if let Some(first) = self.blk_file.first() {
                    let dir = first.parent().map(PathBuf::from).unwrap_or_default();
                    (self.blk_file.clone(), read_xor_key(&dir)?)
                } else {
                    anyhow::bail!(
                        "no Bitcoin source: pass --blocks-dir DIR, --blk-file FILE, --rpc URL or --esplora URL --seed ADDR (or set chains.{}.blocks_dir/rpc_url/esplora_url)",
                        self.chain
                    );
                };
                tracing::info!(files = files.len(), xor = xor.is_some(), "scanning blk files");
                let index = tokio::task::spawn_blocking(move || BlkIndex::scan(files, xor)).await??;
                let known = store
                    .checkpoint(chain)?
                    .map(|c| {
                        let mut h = c.hash.0;
                        h.reverse();
                        (h, c.number.0)
                    });
                let best = index.best_chain(known, self.start_height)?;
                tracing::info!(
                    blocks = index.len(),
                    best_chain = best.blocks.len(),
                    first_height = best.first_height,
                    side_blocks = best.skipped,
                    "blk files scanned"
                );
                self.sync(ctx, utxo, BlkSource::new(index, best), chain, opts, stop).await?
            };
            super::balances::after_index(ctx, &store, chain, &self.chain, self.no_balances, &summary, || {
                print_summary(ctx, &summary)
            })?;
            Ok(ExitCode::SUCCESS)
        })
    }

    async fn sync<S: BtcSource>(
        &self,
        _ctx: &Context,
        utxo: UtxoStore,
        src: S,
        chain: paytrace_indexer::ChainId,
        opts: SyncOptions,
        stop: StopSignal,
    ) -> anyhow::Result<BtcSummary> {
        if let (Some(f), Some(t)) = (self.from, self.to) {
            anyhow::ensure!(f <= t, "--from {f} is after --to {t}");
        }
        let sync = BtcSync::new(utxo, src, chain, &self.chain, opts, stop);
        let progress = Progress::new(&self.chain, None);
        let counter = std::sync::atomic::AtomicU64::new(0);
        let s = sync
            .index(self.from, self.to, &|c| progress.on_commit(c, &counter))
            .await
            .with_context(|| format!("indexing chain {:?}", self.chain))?;
        progress.finish();
        Ok(s)
    }
}

/// How to authenticate to Bitcoin Core.
struct RpcAuth {
    cookie: Option<PathBuf>,
    user: Option<String>,
    password: Option<String>,
}

/// A JSON-RPC client for a Bitcoin Core node: the URL with the cookie (flag, else config) or
/// user/password credentials, the chain's limits and retries.
fn rpc_client(
    cfg: &paytrace_config::ChainConfig,
    url: &str,
    auth: &RpcAuth,
    opts: &SyncOptions,
    max_retries: Option<u32>,
) -> anyhow::Result<RpcClient> {
    let cookie = auth.cookie.clone().or(cfg.rpc_cookie.clone());
    let url = match (&cookie, &auth.user, &auth.password) {
        (Some(c), _, _) => url_with_cookie(url, c)?,
        (None, Some(u), Some(p)) => url_with_auth(url, u, p)?,
        _ => url.to_owned(),
    };
    Ok(RpcClient::new(RpcConfig {
        url,
        concurrency: opts.in_flight,
        rps: cfg.rps,
        timeout: Duration::from_secs(cfg.timeout_secs),
        deadline: Duration::from_secs(cfg.deadline_secs),
        max_retries: max_retries.unwrap_or(cfg.max_retries),
        min_backoff: Duration::from_millis(100),
    })?)
}

/// `paytrace follow btc` arguments: keep a Bitcoin chain indexed from a Bitcoin Core node.
#[derive(Debug, Args)]
pub struct BtcFollowArgs {
    /// Chain name in the store (and config section).
    #[arg(long, default_value = "bitcoin")]
    pub chain: String,
    /// Bitcoin Core JSON-RPC URL [default: chains.<chain>.rpc_url].
    #[arg(long)]
    pub rpc: Option<String>,
    /// The node's `.cookie` file.
    #[arg(long, conflicts_with = "rpc_user")]
    pub rpc_cookie: Option<PathBuf>,
    /// RPC user name.
    #[arg(long, requires = "rpc_password")]
    pub rpc_user: Option<String>,
    /// RPC password.
    #[arg(
        long,
        requires = "rpc_user",
        env = "PAYTRACE_BTC_RPC_PASSWORD",
        hide_env_values = true
    )]
    pub rpc_password: Option<String>,
    /// First block when the chain has no checkpoint yet [default: 0].
    #[arg(long)]
    pub from: Option<u64>,
    /// Blocks to stay behind the tip [default: from config].
    #[arg(long)]
    pub confirmations: Option<u64>,
    /// Poll interval in milliseconds [default: from config].
    #[arg(long)]
    pub poll_interval_ms: Option<u64>,
    /// Blocks per atomic commit.
    #[arg(long)]
    pub blocks_per_commit: Option<u64>,
    /// Ranges fetched and decoded ahead of the writer.
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Retries of a retryable RPC failure within one step.
    #[arg(long)]
    pub max_retries: Option<u32>,
    /// Request time limits.
    #[command(flatten)]
    pub times: RequestTimes,
}

impl BtcFollowArgs {
    /// Runs the command: follows the tip until Ctrl-C / SIGTERM, then prints the summary.
    pub fn run(&self, ctx: &Context) -> anyhow::Result<ExitCode> {
        let cfg = self.times.apply(ctx.config.chain_or_default(&self.chain))?;
        let Some(url) = self.rpc.clone().or(cfg.rpc_url.clone()) else {
            anyhow::bail!(
                "no Bitcoin Core node: pass --rpc URL (or set chains.{}.rpc_url)",
                self.chain
            );
        };
        let store = ctx.open_store()?;
        let chain = store.register_chain(&self.chain, ChainKind::Bitcoin)?;
        let utxo = UtxoStore::open(&store)?;
        let opts = SyncOptions {
            blocks_per_commit: self.blocks_per_commit.unwrap_or(50).max(1),
            in_flight: self
                .concurrency
                .unwrap_or(cfg.concurrency.clamp(2, 8))
                .max(1),
            ..SyncOptions::default()
        };
        let auth = RpcAuth {
            cookie: self.rpc_cookie.clone(),
            user: self.rpc_user.clone(),
            password: self.rpc_password.clone(),
        };
        let rpc = rpc_client(&cfg, &url, &auth, &opts, self.max_retries)?;
        let confirmations = self.confirmations.unwrap_or(cfg.confirmations);
        let poll = Duration::from_millis(
            self.poll_interval_ms
                .unwrap_or(cfg.poll_interval_ms)
                .max(10),
        );
        runtime()?.block_on(async {
            let stop = StopSignal::new();
            install_signal_handler(&stop);
            let src = RpcSource::new(rpc, 0);
            // Alert rules are evaluated after committed steps (at most once per poll interval).
            let alerts = super::alerts::FollowHook::start(ctx.config.clone(), store.clone(), poll);
            // After each commit: the balance checkpoints of the blocks just committed (touched
            // addresses only), then the alert rules.
            let sync = BtcSync::new(utxo, src, chain, &self.chain, opts, stop).with_pipeline(
                Pipeline::new()
                    .with_stage(BalanceStage::default())
                    .with_stage(alerts.stage()),
            );
            tracing::info!(chain = %self.chain, confirmations, poll_ms = poll.as_millis(), "following the tip");
            let progress = Progress::new(&self.chain, None);
            let counter = std::sync::atomic::AtomicU64::new(0);
            let s = sync
                .follow(self.from, confirmations, poll, &|c| {
                    progress.on_commit(c, &counter);
                })
                .await;
            // No write left running, then a store the next read open does not write to.
            alerts.stop().await;
            store.persist_for_reopen()?;
            let s = s.with_context(|| format!("following chain {:?}", self.chain))?;
            progress.finish();
            print_summary(ctx, &s)?;
            Ok(ExitCode::SUCCESS)
        })
    }
}

fn print_summary(ctx: &Context, s: &BtcSummary) -> anyhow::Result<()> {
    if ctx.json {
        return ctx.print_json(s);
    }
    match (s.from, s.to) {
        (Some(f), Some(t)) => println!(
            "{}: indexed blocks {f}..={t} ({} blocks)",
            s.chain, s.stats.blocks
        ),
        _ => println!(
            "{}: nothing to index (checkpoint {})",
            s.chain,
            s.checkpoint.map_or("none".into(), |c| c.to_string())
        ),
    }
    let st = &s.stats;
    println!(
        "  {} txs, {} inputs ({} resolved, {} fetched, {} unresolved), {} outputs ({} OP_RETURN), {} transfers",
        st.txs,
        st.inputs,
        st.resolved_inputs,
        st.fetched_inputs,
        st.unresolved_inputs,
        st.outputs,
        st.op_returns,
        s.transfers
    );
    println!(
        "  {:.1}s, {} tx/s, {:.1} MB/s",
        Duration::from_millis(s.elapsed_ms).as_secs_f64(),
        s.txs_per_sec,
        // display only
        f64::from(u32::try_from(s.bytes_per_sec / 1000).unwrap_or(u32::MAX)) / 1000.0
    );
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
