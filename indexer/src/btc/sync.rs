//! The Bitcoin sync loop: fetch and decode ranges concurrently, resolve inputs and commit them
//! in order (each range atomically with its checkpoint), detect reorgs by parent hash and
//! unwind with the undo data. Mirrors [`crate::sync::EvmSync`].

use super::{
    BtcError,
    blk::{BestChain, BlkIndex},
    decode::{DecodedBlock, decode_bytes},
    utxo::{FetchedPrevout, OutPoint, Prevout, RangeStats, UtxoStore, display_b256},
};
use crate::{
    model::{BlockNumber, BlockRef, ChainId},
    store::UnwindStats,
    sync::{Commit, StopSignal, SyncOptions},
};
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

/// Syncs one Bitcoin chain from a [`BtcSource`].
pub struct BtcSync<S> {
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

enum RangeEnd {
    Done,
    Reorg,
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
        Self {
            utxo,
            source: Arc::new(source),
            chain,
            name: name.to_owned(),
            opts,
            stop,
        }
    }

    /// Indexes from after the checkpoint (or `from`) up to `to` (default: the source's tip).
    pub async fn index(
        &self,
        from: Option<u64>,
        to: Option<u64>,
        on_commit: &(dyn Fn(Commit) + Sync),
    ) -> Result<BtcSummary, BtcError> {
        let started = Instant::now();
        let mut s = BtcSummary {
            chain: self.name.clone(),
            ..Default::default()
        };
        self.reconcile_into(&mut s).await?;
        let to = match to {
            Some(t) => Some(t),
            None => self.source.tip().await?,
        };
        if let Some(to) = to {
            self.run_to(from, to, &mut s, on_commit).await?;
        }
        self.utxo.store().persist()?;
        self.finish(started, &mut s)?;
        Ok(s)
    }

    /// Keeps indexing new blocks up to the source's tip minus `confirmations`, polling every
    /// `poll`, until the stop signal: each step first compares the checkpoint with the source
    /// (unwinding orphaned blocks), then indexes what is new. Retryable failures (connection
    /// errors, timeouts, 5xx, a block the node does not serve yet) back off and retry; the others
    /// end the run. Mirrors [`crate::sync::EvmSync::follow`].
    pub async fn follow(
        &self,
        from: Option<u64>,
        confirmations: u64,
        poll: std::time::Duration,
        on_commit: &(dyn Fn(Commit) + Sync),
    ) -> Result<BtcSummary, BtcError> {
        let started = Instant::now();
        let mut s = BtcSummary {
            chain: self.name.clone(),
            ..Default::default()
        };
        let mut backoff = crate::sync::follow_backoff(poll);
        let mut failures = 0u32;
        while !self.stop.is_stopped() {
            let blocks_before = s.stats.blocks;
            let step = self
                .follow_step(from, confirmations, &mut s, on_commit)
                .await;
            if s.stats.blocks > blocks_before {
                // A step that committed blocks before it failed: the node works, mostly.
                failures = 0;
                backoff = crate::sync::follow_backoff(poll);
            }
            match step {
                Ok(()) => {
                    failures = 0;
                    backoff = crate::sync::follow_backoff(poll);
                    self.utxo.store().persist()?;
                    self.stop.sleep(poll).await;
                }
                Err(e) if e.is_retryable() => {
                    failures = failures.saturating_add(1);
                    let wait = backoff.next().unwrap_or(crate::sync::FOLLOW_MAX_BACKOFF);
                    tracing::warn!(
                        chain = %self.name,
                        error = %e,
                        failures,
                        retry_in_ms = wait.as_millis(),
                        "follow step failed; retrying"
                    );
                    self.stop.sleep(wait).await;
                }
                Err(e) => return Err(e),
            }
        }
        self.utxo.store().persist()?;
        self.finish(started, &mut s)?;
        s.interrupted = true;
        Ok(s)
    }

    async fn follow_step(
        &self,
        from: Option<u64>,
        confirmations: u64,
        s: &mut BtcSummary,
        on_commit: &(dyn Fn(Commit) + Sync),
    ) -> Result<(), BtcError> {
        self.reconcile_into(s).await?;
        let Some(tip) = self.source.tip().await? else {
            return Ok(());
        };
        let Some(target) = tip.checked_sub(confirmations) else {
            return Ok(());
        };
        self.run_to(from, target, s, on_commit).await
    }

    /// [`Self::reconcile`], counted in the summary.
    async fn reconcile_into(&self, s: &mut BtcSummary) -> Result<(), BtcError> {
        if let Some((fork, st)) = self.reconcile().await? {
            s.reorgs += 1;
            s.unwound_blocks += st.blocks;
            tracing::info!(chain = %self.name, fork = fork.0, unwound_blocks = st.blocks, unwound_transfers = st.transfers, "reorg handled");
        }
        Ok(())
    }

    /// Indexes from after the checkpoint (or `from`) up to `to`, unwinding and going on when a
    /// reorg shows up on the way.
    async fn run_to(
        &self,
        from: Option<u64>,
        to: u64,
        s: &mut BtcSummary,
        on_commit: &(dyn Fn(Commit) + Sync),
    ) -> Result<(), BtcError> {
        loop {
            let cp = self.utxo.store().checkpoint(self.chain)?;
            let start = match (cp, from) {
                (Some(c), _) => c.number.0.saturating_add(1),
                (None, Some(f)) => f,
                (None, None) => self.source.first_height(),
            };
            if start > to || self.stop.is_stopped() {
                return Ok(());
            }
            match self.execute(start, to, cp, s, on_commit).await? {
                RangeEnd::Done => return Ok(()),
                RangeEnd::Reorg => {
                    if let Some((_, st)) = self.reconcile().await? {
                        s.reorgs += 1;
                        s.unwound_blocks += st.blocks;
                    } else {
                        return Err(BtcError::Malformed {
                            what: format!("chain {}", self.name),
                            message: "parent hash mismatch but the checkpoint block is still on the source's chain".into(),
                        });
                    }
                }
            }
        }
    }

    /// Fills the summary's rates, checkpoint and interruption flag at the end of a run.
    fn finish(&self, started: Instant, s: &mut BtcSummary) -> Result<(), BtcError> {
        s.interrupted = self.stop.is_stopped();
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        s.elapsed_ms = ms;
        s.txs_per_sec = s.stats.txs.saturating_mul(1000) / ms.max(1);
        s.bytes_per_sec = s.stats.bytes.saturating_mul(1000) / ms.max(1);
        s.checkpoint = self
            .utxo
            .store()
            .checkpoint(self.chain)?
            .map(|c| c.number.0);
        Ok(())
    }

    async fn execute(
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

    /// Compares the checkpoint with the source; on a difference walks back to the newest common
    /// block and unwinds to it (restoring spent outputs).
    pub async fn reconcile(&self) -> Result<Option<(BlockNumber, UnwindStats)>, BtcError> {
        let store = self.utxo.store();
        let Some(cp) = store.checkpoint(self.chain)? else {
            return Ok(None);
        };
        let mut n = cp.number.0;
        loop {
            let Some(stored) = store.block(self.chain, BlockNumber(n))? else {
                return Err(BtcError::NoUndo { block: n });
            };
            let remote = match self.source.hash_at(n).await? {
                // The source does not reach the checkpoint (fewer blk files, a node still
                // syncing): nothing to compare and nothing to index; never unwind for that.
                None if n == cp.number.0 => return Ok(None),
                None => {
                    return Err(BtcError::Malformed {
                        what: format!("block {n}"),
                        message:
                            "the source has no block at this height below a fork with the store"
                                .into(),
                    });
                }
                Some(h) => h,
            };
            if display_b256(&remote) == stored.hash {
                if n == cp.number.0 {
                    return Ok(None);
                }
                let (u, c) = (self.utxo.clone(), self.chain);
                let st = tokio::task::spawn_blocking(move || u.unwind(c, BlockNumber(n)))
                    .await
                    .map_err(task_err)??;
                tracing::info!(chain = %self.name, fork = n, removed_blocks = st.blocks, removed_transfers = st.transfers, "unwound orphaned blocks");
                return Ok(Some((BlockNumber(n), st)));
            }
            n = n.checked_sub(1).ok_or(BtcError::NoUndo { block: 0 })?;
        }
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
