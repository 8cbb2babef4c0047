//! The sync loop: fetch ranges concurrently, write them in order, each atomically with its
//! checkpoint; detect reorgs by parent hash and unwind (after reth's stages and ord's reorg
//! handling).
//!
//! There is one stage today, "transfers": `execute` moves the checkpoint forward to a target,
//! `unwind` moves it back to a block, removing everything above it. The checkpoint and the data
//! it covers are written in one batch, so the store never claims more than it holds.

use crate::chain::{Absent, ChainSource, ChainSync, RangeEnd, ReorgFailure, RunSummary};
use crate::stage::Pipeline;
use crate::{
    evm::FetchedRange,
    evm::{DecodeStats, EvmSource, SourceError, TraceMode},
    model::{Address, Asset, BlockNumber, BlockRef, ChainId, TransferKind},
    store::{KeyspaceOp, PreparedRange, Store, StoreError, UnwindStats},
};
use alloy_primitives::B256;
use futures::StreamExt;
use serde::Serialize;
use std::{
    collections::{BTreeMap, BTreeSet, HashSet},
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};
use tokio::{sync::Notify, task::JoinHandle};

/// Why syncing stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The source failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The requested start would leave unindexed blocks between the checkpoint and it.
    #[error(
        "chain {chain} is indexed up to block {checkpoint}; starting at {from} would leave a gap \
         (run with --from {next}, or use a new --data-dir)"
    )]
    Gap {
        /// Chain name.
        chain: String,
        /// Last indexed block.
        checkpoint: u64,
        /// Requested start.
        from: u64,
        /// The block to start at instead.
        next: u64,
    },
    /// A reorg reaches below the blocks the store remembers.
    #[error(
        "reorg deeper than the remembered blocks: block {block} differs and nothing older is known"
    )]
    DeepReorg {
        /// Lowest block checked.
        block: u64,
    },
    /// The node's chain does not share block {block} with the store (another chain?).
    #[error(
        "the node's block {block} differs from the stored one and no common ancestor exists: is --rpc the same chain?"
    )]
    NoCommonAncestor {
        /// Block.
        block: u64,
    },
    /// A worker task panicked or was cancelled (a bug).
    #[error("worker task failed: {0}")]
    Task(String),
}

impl SyncError {
    /// Whether trying again later may succeed (node unreachable, rate limits, transient I/O).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Store(e) => e.is_retryable(),
            Self::Source(e) => e.is_retryable(),
            Self::Gap { .. }
            | Self::DeepReorg { .. }
            | Self::NoCommonAncestor { .. }
            | Self::Task(_) => false,
        }
    }
}

/// Tuning of a sync run.
#[derive(Clone, Copy, Debug)]
pub struct SyncOptions {
    /// Most blocks per fetch unit and per atomic commit.
    pub blocks_per_commit: u64,
    /// Fetch units in flight at once.
    pub in_flight: usize,
    /// Re-fetches of a unit whose answers were inconsistent (a reorg while fetching).
    pub unit_retries: u32,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            blocks_per_commit: 100,
            in_flight: 8,
            unit_retries: 5,
        }
    }
}

/// Transfers the EVM sync aims at per fetch unit and commit (see
/// [`EvmSync::with_transfers_per_commit`]).
pub const TRANSFERS_PER_COMMIT: u64 = 8_000;

/// Transfers committed since the last journal sync above which the sync loop syncs the
/// journal while it waits for the next fetched range (see [`EvmSync::index`]).
const SYNC_WHEN_IDLE_TRANSFERS: usize = 4_000;

/// A stop request shared between a signal handler and the sync loop.
#[derive(Clone, Debug, Default)]
pub struct StopSignal {
    flag: Arc<AtomicBool>,
    notify: Arc<Notify>,
}

impl StopSignal {
    /// A fresh, unset signal.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the loop to stop after the current commit.
    pub fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// Whether a stop was asked.
    pub fn is_stopped(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Sleeps for `d` or until a stop is asked.
    pub async fn sleep(&self, d: Duration) {
        if self.is_stopped() {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(d) => {}
            () = self.notify.notified() => {}
        }
    }
}

/// One committed range, for progress display.
#[derive(Clone, Copy, Debug)]
pub struct Commit {
    /// First block.
    pub first: BlockNumber,
    /// Last block (the new checkpoint).
    pub last: BlockNumber,
    /// Transfers written.
    pub transfers: usize,
}

/// What a run did. Serialised as the `--json` summary of `index` and `follow`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SyncSummary {
    /// Chain name.
    pub chain: String,
    /// First block indexed by this run (absent when nothing was to do).
    pub from: Option<u64>,
    /// Last block indexed by this run.
    pub to: Option<u64>,
    /// Checkpoint after the run.
    pub checkpoint: Option<u64>,
    /// Blocks written.
    pub blocks: u64,
    /// Transfers written.
    pub transfers: u64,
    /// Transfers written per kind.
    pub by_kind: BTreeMap<TransferKind, u64>,
    /// What the decoder skipped.
    pub skipped: DecodeStats,
    /// Reorgs handled.
    pub reorgs: u64,
    /// Blocks removed by reorgs.
    pub unwound_blocks: u64,
    /// Trace mode used.
    pub trace_mode: Option<TraceMode>,
    /// Whether internal transfers were read: `indexed`, or `skipped (trace mode none)` when
    /// the user chose no traces (`skipped.untraced_txs` counts the transactions not traced).
    pub internal_transfers: String,
    /// Wall time in milliseconds.
    pub elapsed_ms: u64,
    /// Transfers per second over the run.
    pub transfers_per_sec: u64,
    /// Stopped early by a signal.
    pub interrupted: bool,
}

impl SyncSummary {
    fn add(&mut self, r: &PreparedRange, stats: &DecodeStats) {
        if let (Some(f), Some(l)) = (r.blocks().first(), r.blocks().last()) {
            self.from = Some(self.from.map_or(f.number.0, |x| x.min(f.number.0)));
            self.to = Some(self.to.map_or(l.number.0, |x| x.max(l.number.0)));
        }
        self.blocks += u64::try_from(r.blocks().len()).unwrap_or(u64::MAX);
        self.transfers += u64::try_from(r.len()).unwrap_or(u64::MAX);
        for (kind, n) in r.by_kind() {
            *self.by_kind.entry(*kind).or_default() += n;
        }
        self.skipped.merge(stats);
    }
}

impl RunSummary for SyncSummary {
    fn blocks(&self) -> u64 {
        self.blocks
    }

    fn reorged(&mut self, st: &UnwindStats) {
        self.reorgs += 1;
        self.unwound_blocks += st.blocks;
    }

    fn finish(&mut self, started: Instant, checkpoint: Option<BlockRef>, interrupted: bool) {
        self.interrupted = interrupted;
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.elapsed_ms = ms;
        self.transfers_per_sec = self
            .transfers
            .saturating_mul(1000)
            .checked_div(ms.max(1))
            .unwrap_or(0);
        self.checkpoint = checkpoint.map(|c| c.number.0);
    }
}

/// Aborts a spawned task when dropped, so an abandoned pipeline stops fetching.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

/// Syncs one EVM chain into the store: the generic [`ChainSync`] over an [`EvmChain`].
pub struct EvmSync {
    sync: ChainSync<EvmChain>,
}

impl EvmSync {
    /// A sync of chain `chain` (named `name`) from `source` into `store`.
    pub fn new(
        store: Store,
        source: EvmSource,
        chain: ChainId,
        name: &str,
        opts: SyncOptions,
        stop: StopSignal,
    ) -> Self {
        let evm = EvmChain {
            store,
            source: Arc::new(source),
            chain,
            name: name.to_owned(),
            opts,
            transfers_per_commit: TRANSFERS_PER_COMMIT,
            stop: stop.clone(),
            known_tokens: std::sync::Mutex::new(None),
            evm_chain_id: tokio::sync::OnceCell::new(),
        };
        Self {
            sync: ChainSync::new(evm, stop),
        }
    }

    /// Sets the transfers aimed at per fetch unit and commit (default
    /// [`TRANSFERS_PER_COMMIT`]). Units are sized from the transfers per block seen so far
    /// (the first ones are single blocks, so that commits start early), within
    /// `1..=blocks_per_commit` blocks: memory (at most `in_flight` units) and the commits left
    /// after the last fetch stay bounded whatever the range and the chain's density.
    pub fn with_transfers_per_commit(mut self, n: u64) -> Self {
        self.sync.source_mut().transfers_per_commit = n.max(1);
        self
    }

    /// The source.
    pub fn source(&self) -> &EvmSource {
        &self.sync.source().source
    }

    /// The store it writes to (for hooks that read it between steps, e.g. alert rules).
    pub fn store(&self) -> &Store {
        &self.sync.source().store
    }

    /// Runs `pipeline`'s stages (e.g. balance checkpoints) after each commit.
    pub fn with_pipeline(mut self, pipeline: Pipeline) -> Self {
        self.sync = self.sync.with_pipeline(pipeline);
        self
    }

    /// Indexes `from..=to` (resuming after the checkpoint). `from` defaults to the block after
    /// the checkpoint, else 0; `to` to the node's head.
    pub async fn index(
        &self,
        from: Option<BlockNumber>,
        to: Option<BlockNumber>,
        on_commit: &(dyn Fn(Commit) + Sync),
    ) -> Result<SyncSummary, SyncError> {
        self.sync.index(from, to, on_commit).await
    }

    /// Follows the head: indexes up to head − `confirmations`, polls every `poll`, handles
    /// reorgs, until stopped. Retryable failures (node down) are logged and retried.
    pub async fn follow(
        &self,
        from: Option<BlockNumber>,
        confirmations: u64,
        poll: Duration,
        on_commit: &(dyn Fn(Commit) + Sync),
    ) -> Result<SyncSummary, SyncError> {
        self.sync.follow(from, confirmations, poll, on_commit).await
    }

    /// Compares the checkpoint block with the node; on a difference walks back to the newest
    /// common block and unwinds to it. Returns the fork point and what was removed.
    pub async fn reconcile(&self) -> Result<Option<(BlockNumber, UnwindStats)>, SyncError> {
        self.sync.reconcile().await
    }
}

/// The EVM JSON-RPC source as a [`ChainSource`]: blocks, receipts and traces fetched
/// concurrently in units sized by the chain's density, new tokens' metadata committed with
/// their first transfers.
pub struct EvmChain {
    store: Store,
    source: Arc<EvmSource>,
    chain: ChainId,
    name: String,
    opts: SyncOptions,
    transfers_per_commit: u64,
    stop: StopSignal,
    /// The tokens of this chain whose metadata is in the store (loaded at the first commit).
    known_tokens: std::sync::Mutex<Option<HashSet<Address>>>,
    /// The node's EIP-155 chain id (asked once, when the first new token shows up).
    evm_chain_id: tokio::sync::OnceCell<Option<u64>>,
}

/// Token metadata read concurrently when a range brings new tokens.
const TOKEN_META_IN_FLIGHT: usize = 8;

impl ChainSource for EvmChain {
    type Error = SyncError;
    type Summary = SyncSummary;

    fn store(&self) -> &Store {
        &self.store
    }

    fn chain(&self) -> ChainId {
        self.chain
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn new_summary(&self) -> SyncSummary {
        let mode = self.source.trace_mode();
        SyncSummary {
            chain: self.name.clone(),
            trace_mode: Some(mode),
            internal_transfers: internal_transfers(mode).to_owned(),
            ..Default::default()
        }
    }

    fn is_retryable(e: &SyncError) -> bool {
        e.is_retryable()
    }

    fn reconciles_on_start(&self) -> bool {
        false
    }

    async fn tip(&self) -> Result<Option<BlockNumber>, SyncError> {
        Ok(Some(self.source.head().await?))
    }

    async fn hash_at(&self, n: BlockNumber) -> Result<Option<B256>, SyncError> {
        match self.source.header(n).await {
            Ok(remote) => Ok(Some(remote.hash)),
            Err(SourceError::MissingBlock { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn start(
        &self,
        cp: Option<BlockRef>,
        from: Option<BlockNumber>,
    ) -> Result<BlockNumber, SyncError> {
        self.start_block(cp, from)
    }

    async fn execute(
        &self,
        start: BlockNumber,
        to: BlockNumber,
        checkpoint: Option<BlockRef>,
        summary: &mut SyncSummary,
        on_commit: &(dyn Fn(Commit) + Sync),
    ) -> Result<RangeEnd, SyncError> {
        self.execute_range(start, to, checkpoint, summary, on_commit)
            .await
    }

    async fn unwind(
        &self,
        to: BlockNumber,
        extra: Vec<KeyspaceOp>,
    ) -> Result<UnwindStats, SyncError> {
        let store = self.store.clone();
        let chain = self.chain;
        tokio::task::spawn_blocking(move || store.unwind_with(chain, to, extra))
            .await
            .map_err(|e| SyncError::Task(e.to_string()))?
            .map_err(SyncError::from)
    }

    fn on_absent(&self, _n: BlockNumber, _at_checkpoint: bool) -> Result<Absent, SyncError> {
        Ok(Absent::Differs)
    }

    fn reorg_failure(&self, f: ReorgFailure) -> SyncError {
        match f {
            ReorgFailure::NotRemembered(block) => SyncError::DeepReorg { block },
            ReorgFailure::NoCommonAncestor => SyncError::NoCommonAncestor { block: 0 },
        }
    }

    fn unresolved_reorg(&self) -> Option<SyncError> {
        None
    }
}

impl EvmChain {
    fn start_block(
        &self,
        cp: Option<BlockRef>,
        from: Option<BlockNumber>,
    ) -> Result<BlockNumber, SyncError> {
        match (cp, from) {
            (None, f) => Ok(f.unwrap_or_default()),
            (Some(cp), None) => Ok(cp.number.next().unwrap_or(cp.number)),
            (Some(cp), Some(f)) => {
                let next = cp.number.0.saturating_add(1);
                if f.0 > next {
                    Err(SyncError::Gap {
                        chain: self.name.clone(),
                        checkpoint: cp.number.0,
                        from: f.0,
                        next,
                    })
                } else {
                    Ok(BlockNumber(next))
                }
            }
        }
    }

    /// Execute: fetch `start..=to` in units, concurrently, and commit them in order.
    async fn execute_range(
        &self,
        start: BlockNumber,
        to: BlockNumber,
        checkpoint: Option<BlockRef>,
        summary: &mut SyncSummary,
        on_commit: &(dyn Fn(Commit) + Sync),
    ) -> Result<RangeEnd, SyncError> {
        // Short ranges are cut finer so that every fetch slot works and writes overlap fetches.
        let len = to.0.saturating_sub(start.0).saturating_add(1);
        let slots = u64::try_from(self.opts.in_flight.max(1)).unwrap_or(u64::MAX);
        let max_step = self.opts.blocks_per_commit.min(len.div_ceil(slots)).max(1);
        // Units are cut lazily (when a fetch slot frees up), sized by the transfers per block
        // of the units fetched so far: the first ones are single blocks, so that commits
        // start early, and later ones aim at `transfers_per_commit` transfers each.
        let density = Arc::new(Density::default());
        let target = self.transfers_per_commit;
        let units = {
            let density = Arc::clone(&density);
            futures::stream::unfold(Some(start.0), move |next| {
                let unit = next.map(|s| {
                    let left = to.0.saturating_sub(s).saturating_add(1);
                    let step = taper(density.step(target, max_step), left, slots);
                    let e = s.saturating_add(step - 1).min(to.0);
                    ((s, e), e.checked_add(1).filter(|n| *n <= to.0))
                });
                std::future::ready(unit)
            })
        };
        let retries = self.opts.unit_retries;
        let in_flight = self.opts.in_flight.max(1);
        let source = Arc::clone(&self.source);
        let chain = self.chain;
        // The fetches are driven by their own task, so that fetch slots are refilled while a
        // commit runs (a stream is only advanced when polled: driven from the commit loop, no
        // new unit would start during a commit). Ranges come out in order; at most
        // `in_flight` units are fetched and one more waits for the commit.
        let (ranges_tx, mut ranges) = tokio::sync::mpsc::channel::<Result<_, SyncError>>(1);
        let _producer = AbortOnDrop(tokio::spawn(async move {
            let mut fetched = units
                .map(move |(a, b)| {
                    let src = Arc::clone(&source);
                    let density = Arc::clone(&density);
                    AbortOnDrop(tokio::spawn(async move {
                        let r = fetch_unit(&src, a, b, retries).await?;
                        density.add(r.blocks.len(), r.transfers.len());
                        let tokens: BTreeSet<Address> = r
                            .transfers
                            .iter()
                            .filter_map(|t| match t.asset {
                                Asset::Token(a) => Some(a),
                                Asset::Native => None,
                            })
                            .collect();
                        // Encoding for the store happens here, in parallel; only the commit is
                        // serial.
                        let prepared = PreparedRange::new(chain, r.blocks, &r.transfers)?;
                        Ok::<_, SyncError>((prepared, r.stats, tokens))
                    }))
                })
                .buffered(in_flight);
            while let Some(joined) = fetched.next().await {
                let r = joined
                    .map_err(|e| SyncError::Task(e.to_string()))
                    .and_then(|r| r);
                let failed = r.is_err();
                if ranges_tx.send(r).await.is_err() || failed {
                    break;
                }
            }
        }));
        let mut prev = checkpoint;
        // Transfers committed since the journal was last synced to disk. While no fetched
        // range waits, the journal is synced, so that the sync at the end of the run (on the
        // critical path) has little left to write.
        let mut unsynced = 0usize;
        loop {
            let r = match ranges.try_recv() {
                Ok(r) => r,
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => {
                    if unsynced >= SYNC_WHEN_IDLE_TRANSFERS {
                        unsynced = 0;
                        let store = self.store.clone();
                        let sync_started = Instant::now();
                        tokio::task::spawn_blocking(move || store.persist())
                            .await
                            .map_err(|e| SyncError::Task(e.to_string()))??;
                        tracing::debug!(
                            sync_ms = sync_started.elapsed().as_millis(),
                            "synced the journal while waiting for a range"
                        );
                    }
                    match ranges.recv().await {
                        Some(r) => r,
                        None => break,
                    }
                }
                Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => break,
            };
            let (range, stats, tokens) = r?;
            if let (Some(p), Some(first)) = (prev, range.blocks().first())
                && first.parent != p.hash
            {
                tracing::warn!(chain = %self.name, block = first.number.0, "parent hash mismatch: reorg");
                return Ok(RangeEnd::Reorg);
            }
            let (Some(first), Some(last)) = (
                range.blocks().first().copied(),
                range.blocks().last().copied(),
            ) else {
                continue;
            };
            summary.add(&range, &stats);
            let (range, new_tokens) = self.with_token_meta(range, tokens).await?;
            let transfers = range.len();
            unsynced = unsynced.saturating_add(transfers);
            let store = self.store.clone();
            let write_started = Instant::now();
            tokio::task::spawn_blocking(move || store.write_prepared(range))
                .await
                .map_err(|e| SyncError::Task(e.to_string()))??;
            self.tokens_committed(new_tokens);
            tracing::debug!(
                write_ms = write_started.elapsed().as_millis(),
                chain = %self.name, first = first.number.0, last = last.number.0, transfers, "committed range");
            on_commit(Commit {
                first: first.number,
                last: last.number,
                transfers,
            });
            prev = Some(last);
            if self.stop.is_stopped() {
                break;
            }
        }
        Ok(RangeEnd::Done)
    }

    /// Adds the metadata of the tokens of `tokens` not seen before on this chain to `range`'s
    /// batch, so that a token's metadata commits together with its first transfers. Returns
    /// the range and those tokens (for [`EvmChain::tokens_committed`] once it is written).
    async fn with_token_meta(
        &self,
        range: PreparedRange,
        tokens: BTreeSet<Address>,
    ) -> Result<(PreparedRange, Vec<Address>), SyncError> {
        if tokens.is_empty() {
            return Ok((range, Vec::new()));
        }
        let new: Vec<Address> = {
            let mut known = self
                .known_tokens
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if known.is_none() {
                let stored = self
                    .store
                    .token_metas()?
                    .into_iter()
                    .filter(|(c, _, _)| *c == self.chain)
                    .map(|(_, a, _)| a)
                    .collect();
                *known = Some(stored);
            }
            let known = known.get_or_insert_with(HashSet::new);
            tokens.into_iter().filter(|t| !known.contains(t)).collect()
        };
        if new.is_empty() {
            return Ok((range, new));
        }
        let chain_id = *self
            .evm_chain_id
            .get_or_try_init(|| self.source.evm_chain_id())
            .await?;
        let source = &self.source;
        let metas: Vec<_> = futures::stream::iter(new.iter().copied())
            .map(|t| async move { source.token_meta(chain_id, &t).await })
            .buffered(TOKEN_META_IN_FLIGHT)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
        let ops = new
            .iter()
            .zip(&metas)
            .map(|(t, m)| self.store.token_meta_op(self.chain, t, m))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((range.with_extra(ops), new))
    }

    /// Records tokens whose metadata was committed.
    fn tokens_committed(&self, tokens: Vec<Address>) {
        if tokens.is_empty() {
            return;
        }
        self.known_tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_or_insert_with(HashSet::new)
            .extend(tokens);
    }
}

/// The `internal_transfers` value of a summary in trace mode `mode`.
pub fn internal_transfers(mode: TraceMode) -> &'static str {
    match mode {
        TraceMode::Parity | TraceMode::Geth => "indexed",
        TraceMode::None => "skipped (trace mode none)",
    }
}

/// The longest wait between two failed steps of `follow`.
pub const FOLLOW_MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Waits between failed steps of `follow` (EVM and Bitcoin): exponential from the poll
/// interval up to [`FOLLOW_MAX_BACKOFF`], with jitter, never giving up (a follower outlives
/// node outages). Rebuilt after each successful step.
pub fn follow_backoff(poll: Duration) -> impl Iterator<Item = Duration> + Send {
    use backon::BackoffBuilder as _;
    backon::ExponentialBuilder::default()
        .with_min_delay(poll)
        .with_max_delay(FOLLOW_MAX_BACKOFF.max(poll))
        .without_max_times()
        .with_jitter()
        .build()
}

/// Transfers per block seen by the fetches of one run.
#[derive(Debug, Default)]
struct Density {
    blocks: std::sync::atomic::AtomicU64,
    transfers: std::sync::atomic::AtomicU64,
}

impl Density {
    fn add(&self, blocks: usize, transfers: usize) {
        let b = u64::try_from(blocks).unwrap_or(u64::MAX);
        let t = u64::try_from(transfers).unwrap_or(u64::MAX);
        self.blocks.fetch_add(b, Ordering::Relaxed);
        self.transfers.fetch_add(t, Ordering::Relaxed);
    }

    /// Blocks for the next unit: one before anything was fetched, then as many as hold about
    /// `target` transfers, within `1..=max`.
    fn step(&self, target: u64, max: u64) -> u64 {
        let blocks = self.blocks.load(Ordering::Relaxed);
        let transfers = self.transfers.load(Ordering::Relaxed);
        if blocks == 0 {
            return 1;
        }
        target
            .saturating_mul(blocks)
            .checked_div(transfers)
            .unwrap_or(max)
            .clamp(1, max.max(1))
    }
}

/// The blocks of the next unit: `step`, but at most a `slots`-th of the `left` blocks of the
/// range (at least one). Units taper off towards the end of a range, so that the fetches
/// finish together and the commits left after the last fetch are small.
fn taper(step: u64, left: u64, slots: u64) -> u64 {
    step.min(left.div_ceil(slots.max(1))).max(1)
}

async fn fetch_unit(
    src: &EvmSource,
    a: u64,
    b: u64,
    retries: u32,
) -> Result<FetchedRange, SyncError> {
    use backon::BackoffBuilder as _;
    let mut backoff = backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(5))
        .with_max_times(usize::try_from(retries).unwrap_or(usize::MAX))
        .with_jitter()
        .build();
    let mut attempt = 0u32;
    loop {
        match src.fetch_range(BlockNumber(a), BlockNumber(b)).await {
            Ok(r) => return Ok(r),
            Err(e @ (SourceError::Inconsistent { .. } | SourceError::MissingBlock { .. })) => {
                let Some(wait) = backoff.next() else {
                    return Err(e.into());
                };
                attempt += 1;
                tracing::warn!(from = a, to = b, error = %e, attempt, retry_in_ms = wait.as_millis(), "re-fetching range");
                tokio::time::sleep(wait).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Density, taper};

    #[test]
    fn units_taper_off_towards_the_end_of_the_range() {
        assert_eq!(
            taper(5, 1_000, 8),
            5,
            "far from the end: the density's step"
        );
        assert_eq!(taper(5, 24, 8), 3);
        assert_eq!(taper(5, 9, 8), 2);
        assert_eq!(taper(5, 8, 8), 1);
        assert_eq!(taper(5, 1, 8), 1, "at least one block");
        assert_eq!(taper(0, 100, 8), 1);
        assert_eq!(taper(5, 10, 0), 5, "no slots counts as one");
    }

    #[test]
    fn units_start_single_then_aim_at_the_transfer_target() {
        let d = Density::default();
        assert_eq!(d.step(8_000, 100), 1, "nothing fetched yet");
        d.add(1, 1_250);
        assert_eq!(d.step(8_000, 100), 6);
        assert_eq!(d.step(8_000, 5), 5, "capped by blocks_per_commit");
        d.add(3, 0);
        assert_eq!(d.step(8_000, 100), 25, "density is averaged over all units");
        let empty = Density::default();
        empty.add(10, 0);
        assert_eq!(
            empty.step(8_000, 100),
            100,
            "empty blocks: the largest unit"
        );
        let dense = Density::default();
        dense.add(1, 50_000);
        assert_eq!(dense.step(8_000, 100), 1, "at least one block");
    }
}
