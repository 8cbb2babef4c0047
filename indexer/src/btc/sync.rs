//! The Bitcoin sync loop: fetch and decode ranges concurrently, resolve inputs and commit them
//! in order (each range atomically with its checkpoint), detect reorgs by parent hash and
//! unwind with the undo data: the generic [`ChainSync`] over a [`BtcSource`].

use super::{
    BtcError,
    blk::{BestChain, BlkIndex},
    decode::{DecodedBlock, decode_bytes},
    utxo::{FetchedPrevout, OutPoint, Prevout, RangeStats, UtxoStore, display_b256},
};
use crate::{
    chain::{Absent, ChainSource, ChainSync, RangeEnd, ReorgFailure, RunSummary},
    model::{BlockNumber, BlockRef, ChainId},
    stage::Pipeline,
    store::{KeyspaceOp, Store, UnwindStats},
    sync::{Commit, StopSignal, SyncOptions},
};
use alloy_primitives::B256;
use futures::StreamExt;
use serde::Serialize;
use std::{collections::HashMap, future::Future, sync::Arc, time::Instant};

/// A source of blocks by height.
pub trait BtcSource: Send + Sync + 'static {
    /// The height to start at when the chain has no checkpoint and none is given.
    fn first_height(&self) -> u64;
    /// The height of the best tip (`None` when there are no blocks).
    fn tip(&self) -> impl Future<Output = Result<Option<u64>, BtcError>> + Send;
    /// The hash (internal byte order) of the best-chain block at `height`, if any.
    fn hash_at(
        &self,
        height: u64,
    ) -> impl Future<Output = Result<Option<[u8; 32]>, BtcError>> + Send;
    /// Blocks `from..=to`, decoded, in height order.
    fn blocks(
        &self,
        from: u64,
        to: u64,
    ) -> impl Future<Output = Result<Vec<DecodedBlock>, BtcError>> + Send;
    /// Whether [`BtcSource::prevouts`] can resolve prevouts the store lacks.
    fn fetches_prevouts(&self) -> bool {
        false
    }
    /// Prevouts of outputs the store does not hold (e.g. `getrawtransaction` of the spent tx).
    fn prevouts(
        &self,
        missing: Vec<OutPoint>,
    ) -> impl Future<Output = Result<HashMap<OutPoint, FetchedPrevout>, BtcError>> + Send {
        let _ = missing;
        async { Ok(HashMap::new()) }
    }
}

/// What a run did (the `--json` summary of `paytrace index btc`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct BtcSummary {
    /// Chain name.
    pub chain: String,
    /// First block indexed by this run.
    pub from: Option<u64>,
    /// Last block indexed by this run.
    pub to: Option<u64>,
    /// Checkpoint after the run.
    pub checkpoint: Option<u64>,
    /// Blocks, transactions, inputs and outputs processed.
    #[serde(flatten)]
    pub stats: RangeStats,
    /// Transfers written.
    pub transfers: u64,
    /// Reorgs handled.
    pub reorgs: u64,
    /// Blocks removed by reorgs.
    pub unwound_blocks: u64,
    /// Wall time in milliseconds.
    pub elapsed_ms: u64,
    /// Transactions per second.
    pub txs_per_sec: u64,
    /// Block bytes per second.
    pub bytes_per_sec: u64,
    /// Stopped early by a signal.
    pub interrupted: bool,
}

/// Syncs one Bitcoin chain from a [`BtcSource`]: the generic [`ChainSync`] over a
/// [`BtcChain`].
pub struct BtcSync<S> {
    sync: ChainSync<BtcChain<S>>,
}

/// A Bitcoin [`BtcSource`] as a [`ChainSource`]: decoded blocks fetched concurrently, inputs
/// resolved against the UTXO set (range N+1 prepared while range N commits), spent outputs
/// restored on unwind.
pub struct BtcChain<S> {
    utxo: UtxoStore,
    source: Arc<S>,
    chain: ChainId,
    name: String,
    opts: SyncOptions,
    stop: StopSignal,
}

struct Committed {
    first: u64,
    last: u64,
    stats: RangeStats,
    transfers: usize,
}

fn task_err(e: tokio::task::JoinError) -> BtcError {
    BtcError::Malformed {
        what: "worker task".into(),
        message: e.to_string(),
    }
}

impl<S: BtcSource> BtcSync<S> {
    /// A sync of `chain` (named `name`) from `source`.
    pub fn new(
        utxo: UtxoStore,
        source: S,
        chain: ChainId,
        name: &str,
        opts: SyncOptions,
        stop: StopSignal,
    ) -> Self {
        let btc = BtcChain {
            utxo,
            source: Arc::new(source),
            chain,
            name: name.to_owned(),
            opts,
            stop: stop.clone(),
        };
        Self {
            sync: ChainSync::new(btc, stop),
        }
    }

    /// Runs `pipeline`'s stages (e.g. balance checkpoints) after each commit.
    pub fn with_pipeline(mut self, pipeline: Pipeline) -> Self {
        self.sync = self.sync.with_pipeline(pipeline);
        self
    }

    /// Indexes from after the checkpoint (or `from`) up to `to` (default: the source's tip).
    pub async fn index(
        &self,
        from: Option<u64>,
        to: Option<u64>,
        on_commit: &(dyn Fn(Commit) + Sync),
    ) -> Result<BtcSummary, BtcError> {
        self.sync
            .index(from.map(BlockNumber), to.map(BlockNumber), on_commit)
            .await
    }

    /// Keeps indexing new blocks up to the source's tip minus `confirmations`, polling every
    /// `poll`, until the stop signal: each step first compares the checkpoint with the source
    /// (unwinding orphaned blocks), then indexes what is new. Retryable failures (connection
    /// errors, timeouts, 5xx, a block the node does not serve yet) back off and retry; the others
    /// end the run.
    pub async fn follow(
        &self,
        from: Option<u64>,
        confirmations: u64,
        poll: std::time::Duration,
        on_commit: &(dyn Fn(Commit) + Sync),
    ) -> Result<BtcSummary, BtcError> {
        self.sync
            .follow(from.map(BlockNumber), confirmations, poll, on_commit)
            .await
    }

    /// Compares the checkpoint with the source; on a difference walks back to the newest common
    /// block and unwinds to it (restoring spent outputs).
    pub async fn reconcile(&self) -> Result<Option<(BlockNumber, UnwindStats)>, BtcError> {
        self.sync.reconcile().await
    }
}

impl RunSummary for BtcSummary {
    fn blocks(&self) -> u64 {
        self.stats.blocks
    }

    fn reorged(&mut self, st: &UnwindStats) {
        self.reorgs += 1;
        self.unwound_blocks += st.blocks;
    }

    fn finish(&mut self, started: Instant, checkpoint: Option<BlockRef>, interrupted: bool) {
        self.interrupted = interrupted;
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.elapsed_ms = ms;
        self.txs_per_sec = self.stats.txs.saturating_mul(1000) / ms.max(1);
        self.bytes_per_sec = self.stats.bytes.saturating_mul(1000) / ms.max(1);
        self.checkpoint = checkpoint.map(|c| c.number.0);
    }
}

impl<S: BtcSource> ChainSource for BtcChain<S> {
    type Error = BtcError;
    type Summary = BtcSummary;

    fn store(&self) -> &Store {
        self.utxo.store()
    }

    fn chain(&self) -> ChainId {
        self.chain
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn new_summary(&self) -> BtcSummary {
        BtcSummary {
            chain: self.name.clone(),
            ..Default::default()
        }
    }

    fn is_retryable(e: &BtcError) -> bool {
        e.is_retryable()
    }

    fn reconciles_on_start(&self) -> bool {
        true
    }

    async fn tip(&self) -> Result<Option<BlockNumber>, BtcError> {
        Ok(self.source.tip().await?.map(BlockNumber))
    }

    async fn hash_at(&self, n: BlockNumber) -> Result<Option<B256>, BtcError> {
        Ok(self.source.hash_at(n.0).await?.map(|h| display_b256(&h)))
    }

    fn start(
        &self,
        cp: Option<BlockRef>,
        from: Option<BlockNumber>,
    ) -> Result<BlockNumber, BtcError> {
        Ok(BlockNumber(match (cp, from) {
            (Some(c), _) => c.number.0.saturating_add(1),
            (None, Some(f)) => f.0,
            (None, None) => self.source.first_height(),
        }))
    }

    async fn execute(
        &self,
        start: BlockNumber,
        to: BlockNumber,
        checkpoint: Option<BlockRef>,
        s: &mut BtcSummary,
        on_commit: &(dyn Fn(Commit) + Sync),
    ) -> Result<RangeEnd, BtcError> {
        self.execute_range(start.0, to.0, checkpoint, s, on_commit)
            .await
    }

    async fn unwind(
        &self,
        to: BlockNumber,
        extra: Vec<KeyspaceOp>,
    ) -> Result<UnwindStats, BtcError> {
        let (u, c) = (self.utxo.clone(), self.chain);
        tokio::task::spawn_blocking(move || u.unwind_with(c, to, extra))
            .await
            .map_err(task_err)?
    }

    fn on_absent(&self, n: BlockNumber, at_checkpoint: bool) -> Result<Absent, BtcError> {
        if at_checkpoint {
            // The source does not reach the checkpoint (fewer blk files, a node still
            // syncing): nothing to compare and nothing to index; never unwind for that.
            return Ok(Absent::Keep);
        }
        Err(BtcError::Malformed {
            what: format!("block {}", n.0),
            message: "the source has no block at this height below a fork with the store".into(),
        })
    }

    fn reorg_failure(&self, f: ReorgFailure) -> BtcError {
        match f {
            ReorgFailure::NotRemembered(block) => BtcError::NoUndo { block },
            ReorgFailure::NoCommonAncestor => BtcError::NoUndo { block: 0 },
        }
    }

    fn unresolved_reorg(&self) -> Option<BtcError> {
        Some(BtcError::Malformed {
            what: format!("chain {}", self.name),
            message: "parent hash mismatch but the checkpoint block is still on the source's chain"
                .into(),
        })
    }
}

impl<S: BtcSource> BtcChain<S> {
    async fn execute_range(
        &self,
        start: u64,
        to: u64,
        checkpoint: Option<BlockRef>,
        s: &mut BtcSummary,
        on_commit: &(dyn Fn(Commit) + Sync),
    ) -> Result<RangeEnd, BtcError> {
        let step = self.opts.blocks_per_commit.max(1);
        let units = std::iter::successors(Some(start), move |a: &u64| {
            a.checked_add(step).filter(|n| *n <= to)
        })
        .map(move |a| (a, a.saturating_add(step - 1).min(to)));
        let mut fetched = futures::stream::iter(units)
            .map(|(a, b)| {
                let src = Arc::clone(&self.source);
                tokio::spawn(async move { src.blocks(a, b).await })
            })
            .buffered(self.opts.in_flight.max(1));
        let mut prev = checkpoint.map(|c| c.hash);
        // Range N+1 is prepared (inputs resolved, encoded) while range N commits: `pending`
        // holds the outputs N creates, which the store does not show until its commit.
        let mut pending: Arc<HashMap<OutPoint, Prevout>> = Arc::new(HashMap::new());
        let mut inflight: Option<tokio::task::JoinHandle<Result<Committed, BtcError>>> = None;
        let mut end = RangeEnd::Done;
        while let Some(joined) = fetched.next().await {
            let blocks = joined.map_err(task_err)??;
            let (Some(first), Some(last)) = (blocks.first(), blocks.last()) else {
                continue;
            };
            if let Some(p) = prev
                && display_b256(&first.prev) != p
            {
                tracing::warn!(chain = %self.name, block = first.height, "parent hash mismatch: reorg");
                end = RangeEnd::Reorg;
                break;
            }
            let (first_h, last_h, last_hash) = (first.height, last.height, last.hash);
            let fetched_prevouts = if self.source.fetches_prevouts() {
                let (u, c, b, p) = (self.utxo.clone(), self.chain, blocks, Arc::clone(&pending));
                let (missing, blocks) =
                    tokio::task::spawn_blocking(move || u.missing(c, &b, &p).map(|m| (m, b)))
                        .await
                        .map_err(task_err)??;
                let extra = if missing.is_empty() {
                    HashMap::new()
                } else {
                    self.source.prevouts(missing).await?
                };
                (extra, blocks)
            } else {
                (HashMap::new(), blocks)
            };
            let (u, c, p) = (self.utxo.clone(), self.chain, Arc::clone(&pending));
            let started = Instant::now();
            let mut prepared = tokio::task::spawn_blocking(move || {
                u.prepare_after(c, &fetched_prevouts.1, &fetched_prevouts.0, &p)
            })
            .await
            .map_err(task_err)??;
            let prepared_at = Instant::now();
            // Outputs of this range for the next one, and its encoding under way while the
            // previous range is still being written.
            pending = Arc::new(std::mem::take(&mut prepared.created));
            let u = self.utxo.clone();
            let encoding = tokio::task::spawn_blocking(move || u.encode(prepared));
            // The previous range must be in the store before this one is written.
            if let Some(h) = inflight.take() {
                self.committed(h.await.map_err(task_err)??, s, on_commit);
            }
            tracing::debug!(
                chain = %self.name,
                first = first_h,
                prepare_ms = prepared_at.duration_since(started).as_millis(),
                commit_wait_ms = prepared_at.elapsed().as_millis(),
                "range prepared"
            );
            let u = self.utxo.clone();
            inflight = Some(tokio::spawn(async move {
                let encoded = encoding.await.map_err(task_err)??;
                tokio::task::spawn_blocking(move || {
                    let n = encoded.transfers();
                    u.write(encoded).map(|stats| Committed {
                        first: first_h,
                        last: last_h,
                        stats,
                        transfers: n,
                    })
                })
                .await
                .map_err(task_err)?
            }));
            prev = Some(display_b256(&last_hash));
            if self.stop.is_stopped() {
                break;
            }
        }
        if let Some(h) = inflight.take() {
            self.committed(h.await.map_err(task_err)??, s, on_commit);
        }
        Ok(end)
    }

    fn committed(&self, c: Committed, s: &mut BtcSummary, on_commit: &(dyn Fn(Commit) + Sync)) {
        s.from = Some(s.from.map_or(c.first, |x| x.min(c.first)));
        s.to = Some(s.to.map_or(c.last, |x| x.max(c.last)));
        s.stats.merge(&c.stats);
        s.transfers += u64::try_from(c.transfers).unwrap_or(u64::MAX);
        tracing::debug!(chain = %self.name, first = c.first, last = c.last, txs = c.stats.txs, "committed range");
        on_commit(Commit {
            first: BlockNumber(c.first),
            last: BlockNumber(c.last),
            transfers: c.transfers,
        });
    }
}

/// Blocks from `blk*.dat` files, in best-chain order.
pub struct BlkSource {
    index: Arc<BlkIndex>,
    chain: Arc<BestChain>,
}

impl BlkSource {
    /// A source over a scanned index and its best chain.
    pub fn new(index: BlkIndex, chain: BestChain) -> Self {
        Self {
            index: Arc::new(index),
            chain: Arc::new(chain),
        }
    }

    /// The best chain.
    pub fn best_chain(&self) -> &BestChain {
        &self.chain
    }

    /// Reads and decodes blocks `from..=to` (blocking).
    pub fn read_blocks(
        index: &BlkIndex,
        chain: &BestChain,
        from: u64,
        to: u64,
    ) -> Result<Vec<DecodedBlock>, BtcError> {
        let mut out = Vec::new();
        for h in from..=to {
            let e = chain.at(h).ok_or(BtcError::MissingBlock { height: h })?;
            let bytes = index.read(e.loc)?;
            let d = decode_bytes(&bytes, h, &|| index.describe(e.loc))?;
            if d.hash != e.hash {
                return Err(BtcError::Decode {
                    what: index.describe(e.loc),
                    message: "block hash differs from the scanned header".into(),
                });
            }
            out.push(d);
        }
        Ok(out)
    }
}

impl BtcSource for BlkSource {
    fn first_height(&self) -> u64 {
        self.chain.first_height
    }

    async fn tip(&self) -> Result<Option<u64>, BtcError> {
        Ok(self.chain.tip())
    }

    async fn hash_at(&self, height: u64) -> Result<Option<[u8; 32]>, BtcError> {
        Ok(self.chain.at(height).map(|e| e.hash))
    }

    async fn blocks(&self, from: u64, to: u64) -> Result<Vec<DecodedBlock>, BtcError> {
        let (i, c) = (Arc::clone(&self.index), Arc::clone(&self.chain));
        tokio::task::spawn_blocking(move || Self::read_blocks(&i, &c, from, to))
            .await
            .map_err(task_err)?
    }
}
